"""`mnmcu verify` and `mnmcu bench` as a user runs them."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from mnmcu.graph import load_graph

from ..conftest import run_mnmcu
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
    positions = [op.index for op in graph.ops if op.opcode in ("MAX_POOL_2D", "CONCATENATION")]
    result = run_mnmcu("verify", str(odd_models["odd"]))
    line = one_error_line(result, "MAX_POOL_2D", "CONCATENATION")
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
