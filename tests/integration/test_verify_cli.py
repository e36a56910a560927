"""`mnmcu verify` and `mnmcu bench` as a user runs them."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from mnmcu.graph import load_graph

from ..conftest import run_mnmcu, tensorflow_int8
from .test_cli_errors import odd_models, one_error_line  # noqa: F401  (fixture)

pytestmark = pytest.mark.slow

if shutil.which("gcc") is None:
    pytest.skip("gcc is not installed: apt-get install gcc", allow_module_level=True)


@pytest.mark.parametrize("arch", ["v1", "v3-small"])
def test_verify_is_bit_exact_against_both_references(
    int8_models: dict[str, Path], arch: str, tmp_path: Path
) -> None:
    result = run_mnmcu(
        "verify", str(int8_models[arch]), "--count", "20", "--json", "--keep", str(tmp_path / "c")
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["bit_exact"] is True
    assert report["inputs"] == 20 and report["input_kinds"]["min"] == 1
    assert report["litert_mismatches"] == 0 and report["tflm_mismatches"] == 0
    assert report["sanitized"] is True
    # the kept sources are the generated model, banner first
    header = (tmp_path / "c" / "aot" / "mnmcu_model_model.h").read_text()
    assert header.lstrip().startswith("/*") and report["sha256"] in header


def test_verify_names_unsupported_ops_and_positions(odd_models: dict[str, Path]) -> None:  # noqa: F811
    graph = load_graph(odd_models["odd"])
    positions = [op.index for op in graph.ops if op.opcode in ("SUB", "MAXIMUM")]
    assert len(positions) == 2
    result = run_mnmcu("verify", str(odd_models["odd"]))
    line = one_error_line(result, "SUB", "MAXIMUM")
    for p in positions:
        assert f"at op {p}" in line


def test_bench_plan_needs_at_most_0_6_of_the_tflm_arena() -> None:
    result = run_mnmcu("bench", "--json")
    assert result.returncode == 0, result.stderr
    rows = {r["name"]: r for r in json.loads(result.stdout)}
    assert set(rows) == {"vww", "v2-0.35-96", "v3s-0.75-96"}
    vww = rows["vww"]
    assert vww["macs"] == 7_489_664
    assert vww["aot_arena_bytes"] <= 0.6 * vww["tflm_arena_bytes"]
    for r in rows.values():
        assert r["aot_arena_bytes"] < r["tflm_arena_bytes"]


@pytest.fixture(scope="module")
def fc_stack(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Three fully connected layers (640 outputs last), full int8, made with TensorFlow.

    LiteRT requantizes FULLY_CONNECTED in double precision, TFLite Micro in fixed
    point: on this model they differ by one in a few output bytes of some inputs.
    """
    import keras
    import numpy as np

    keras.utils.set_random_seed(3)
    inputs = keras.Input((8, 8, 10), batch_size=1)
    x = keras.layers.Flatten()(inputs)
    x = keras.layers.Dense(256, activation="relu")(x)
    x = keras.layers.Dense(128, activation="relu")(x)
    model = keras.Model(inputs, keras.layers.Dense(640)(x))
    rng = np.random.default_rng(0)
    samples = (rng.normal(0, 1, (1, 8, 8, 10)).astype(np.float32) for _ in range(32))
    path = tmp_path_factory.mktemp("fc") / "fc_stack.tflite"
    path.write_bytes(tensorflow_int8(model, samples))
    return path


def test_verify_tells_the_references_apart_from_the_aot_runtime(fc_stack: Path) -> None:
    args = ("verify", str(fc_stack), "--count", "20", "--no-sanitize", "--layers")
    result = run_mnmcu(*args, "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    # the AOT runtime follows TFLite Micro (--arithmetic tflm, the default); LiteRT
    # differs from both on a few bytes
    assert report["arithmetic"] == "tflm"
    assert report["tflm_mismatches"] == 0 and report["litert_mismatches"] > 0
    assert report["reference_mismatches"] == report["litert_mismatches"]
    assert report["bit_exact"] is True and report["references_agree"] is False
    # --layers: every input the references disagree on, each split at a FULLY_CONNECTED
    splits = report["reference_splits"]
    assert len(splits) == report["reference_mismatch_inputs"] > 1
    fc_ops = {op.index for op in load_graph(fc_stack).ops if op.opcode == "FULLY_CONNECTED"}
    assert all(s["layer"]["opcode"] == "FULLY_CONNECTED" for s in splits)
    assert {s["layer"]["op"] for s in splits} <= fc_ops
    assert [d["layer"] for d in report["bad_layers"]] == [None]

    text = run_mnmcu(*args)
    assert text.returncode == 0, text.stderr
    lines = text.stdout.splitlines()
    assert lines[1].startswith("the two references disagree: LiteRT and TFLite Micro differ in ")
    first = splits[0]
    assert f"  input {first['input']}: op {first['layer']['op']} FULLY_CONNECTED" in lines[2]
    assert "not the AOT runtime's" in lines[-1]

    # without --layers only the first input the references disagree on is traced
    brief = json.loads(run_mnmcu(*args[:-1], "--json").stdout)
    assert brief["reference_splits"] == splits[:1]

    # --arithmetic litert: the AOT runtime follows LiteRT instead, still bit-exact
    other = json.loads(run_mnmcu(*args, "--arithmetic", "litert", "--json").stdout)
    assert other["litert_mismatches"] == 0
    assert other["tflm_mismatches"] == report["reference_mismatches"]
    assert other["bit_exact"] is True
