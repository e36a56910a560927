"""What mnmcu refuses: argument limits, output folders, --force, concurrent commands.

Each refusal is one ``error:`` line on stderr, a non-zero exit status and no
traceback, and leaves the user's files as they were. No test trains a model.
"""

from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from mnmcu.model.spec import ModelSpec
from mnmcu.outdir import FILES_MANIFEST, sha256_of
from mnmcu.paths import data_dir

from ..conftest import REPO, run_mnmcu
from .test_cli_errors import one_error_line

SAMPLE = data_dir("firmware") / "sample" / "mnmcu_sample.tflite"


def tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def image_folder(root: Path, classes: tuple[str, ...], count: int = 3) -> Path:
    from PIL import Image

    for k, name in enumerate(classes):
        (root / name).mkdir(parents=True)
        for i in range(count):
            Image.new("RGB", (36, 36), (60 * k, 20 * i, 0)).save(root / name / f"{i}.png")
    return root


def model_folder(root: Path) -> Path:
    """A model folder as 'mnmcu model' writes it, without building the Keras model."""
    root.mkdir(parents=True)
    spec = ModelSpec(arch="v1", alpha=0.25, resolution=32, classes=2)
    (root / "model.json").write_text(json.dumps(spec.to_dict()))
    return root


# --------------------------------------------------------------------------
# numbers
# --------------------------------------------------------------------------


def test_too_many_classes(tmp_path: Path) -> None:
    result = run_mnmcu("model", "--classes", "10000000", "--out", str(tmp_path / "m"))
    one_error_line(result, "classes 10000000", "at most 1000", code=2)
    assert not (tmp_path / "m").exists()
    result = run_mnmcu("build", "--board", "qemu-m4", "--classes", "10000000")
    one_error_line(result, "classes 10000000", "at most 1000", code=2)


@pytest.mark.parametrize("value", ["nan", "inf", "-5", "0"])
def test_latency_limit_must_be_a_positive_finite_number(value: str) -> None:
    result = run_mnmcu("fit", "--board", "qemu-m4", "--max-latency-ms", value)
    one_error_line(result, "--max-latency-ms", repr(value), code=2)


@pytest.mark.parametrize(
    "args",
    [
        ("train", "nowhere", "--lr", "nan"),
        ("hil", "--board", "qemu-m4", "--timeout", "nan"),
        ("sim", "--board", "qemu-m4", "--timeout", "inf"),
        ("train", "x", "--seed", "-1"),
        ("fit", "--board", "qemu-m4", "--classes", "1001"),
        ("monitor", "--baud", "0"),
    ],
    ids=["lr-nan", "hil-timeout-nan", "sim-timeout-inf", "seed-negative", "fit-classes", "baud"],
)
def test_numeric_options_are_finite_and_in_range(args: tuple[str, ...]) -> None:
    one_error_line(run_mnmcu(*args), f"'{args[-2]}'", code=2)


def test_byte_budget_overflow() -> None:
    result = run_mnmcu("fit", "--board", "qemu-m4", "--ram-budget", "9" * 400)
    one_error_line(result, "--ram-budget", "too large", code=2)


# --------------------------------------------------------------------------
# data and classes, checked before training
# --------------------------------------------------------------------------


def test_out_inside_the_dataset_is_refused(tmp_path: Path) -> None:
    data = image_folder(tmp_path / "data", ("cat", "dog"))
    before = sorted(p.name for p in data.iterdir())
    result = run_mnmcu(
        "build", "--board", "qemu-m4", "--data", str(data), "--out", str(data / "out")
    )
    one_error_line(result, str(data / "out"), "inside the dataset folder", code=2)
    model = model_folder(tmp_path / "model")
    result = run_mnmcu("train", str(model), "--data", str(data), "--out", str(data / "trained"))
    one_error_line(result, "inside the dataset folder", code=2)
    assert sorted(p.name for p in data.iterdir()) == before


def test_classes_must_match_the_class_folders(tmp_path: Path) -> None:
    data = image_folder(tmp_path / "data", ("cat", "dog"))
    out = tmp_path / "out"
    result = run_mnmcu(
        "-q",
        "build",
        "--board",
        "qemu-m4",
        "--data",
        str(data),
        "--classes",
        "3",
        "--out",
        str(out),
    )
    one_error_line(result, "--classes 3", "2 class folders (cat, dog)", "--classes 2", code=2)
    assert not out.exists()


def test_class_folder_names_are_checked_before_training(tmp_path: Path) -> None:
    data = image_folder(tmp_path / "data", ("cat", "chien noir"))
    out = tmp_path / "out"
    start = time.monotonic()
    result = run_mnmcu("-q", "build", "--board", "qemu-m4", "--data", str(data), "--out", str(out))
    one_error_line(result, "class folder 'chien noir'", "spaces", code=2)
    assert not out.exists()
    assert "train" not in result.stderr and time.monotonic() - start < 120


# --------------------------------------------------------------------------
# ports and reports
# --------------------------------------------------------------------------


def test_hil_report_folder_is_refused_before_the_run(tmp_path: Path) -> None:
    report = tmp_path / "reports"
    report.mkdir()
    result = run_mnmcu("hil", "--model", str(SAMPLE), "--port", "loop://", "--report", str(report))
    one_error_line(result, f"--report {report} is a folder", "report.json", code=2)
    assert list(report.iterdir()) == []


@pytest.mark.parametrize(
    "args", [("monitor",), ("hil", "--model", str(SAMPLE))], ids=["monitor", "hil"]
)
def test_no_port_is_guessed(args: tuple[str, ...]) -> None:
    result = run_mnmcu(*args, timeout=60)
    one_error_line(result, "no --port given", "ports seen:", "--port", code=2)


# --------------------------------------------------------------------------
# verify and quantize
# --------------------------------------------------------------------------


def test_verify_names_the_batch_of_a_batch_4_model(tmp_path: Path) -> None:
    data = SAMPLE.read_bytes()
    shape = struct.pack("<5i", 4, 1, 32, 32, 3)  # the input's shape vector
    assert data.count(shape) == 1
    model = tmp_path / "batch4.tflite"
    model.write_bytes(data.replace(shape, struct.pack("<5i", 4, 4, 32, 32, 3)))
    result = run_mnmcu("verify", str(model), "--count", "3", "--no-sanitize")
    # Only the input says batch 4: the model's own shapes disagree, which is named.
    line = one_error_line(result, "[4, 16, 16, 3]")
    assert "array" not in line


def test_verify_keep_names_its_own_option(tmp_path: Path) -> None:
    keep = tmp_path / "keep"
    keep.mkdir()
    (keep / "mine.txt").write_text("the user's")
    result = run_mnmcu("verify", str(SAMPLE), "--keep", str(keep), "--count", "3")
    line = one_error_line(result, str(keep), "--keep")
    assert "--out" not in line and "--force" not in line
    assert tree(keep) == {"mine.txt": b"the user's"}


def test_quantize_names_a_truncated_keras_file(tmp_path: Path) -> None:
    model = model_folder(tmp_path / "m")
    (model / "model.keras").write_bytes(b"PK\x03\x04" + b"\x00" * 60)
    result = run_mnmcu("quantize", str(model))
    one_error_line(result, "model.keras", "damaged or truncated")
    assert "File not found" not in result.stderr


# --------------------------------------------------------------------------
# emit: failed runs, --force, concurrent runs
# --------------------------------------------------------------------------


def test_a_failed_emit_leaves_no_folder(tmp_path: Path) -> None:
    bogus = tmp_path / "bogus.tflite"
    bogus.write_bytes(b"\x00" * 64)
    out = tmp_path / "new" / "deeper"
    result = run_mnmcu("emit", str(bogus), "--board", "qemu-m4", "--out", str(out))
    one_error_line(result, str(bogus))
    assert not (tmp_path / "new").exists()


def test_force_with_a_foreign_manifest_deletes_nothing(tmp_path: Path) -> None:
    out = tmp_path / "out"
    (out / "sub").mkdir(parents=True)
    (out / "notes.txt").write_text("notes")
    (out / "sub" / "keep.txt").write_text("keep")
    manifest = {"files": ["notes.txt", "sub/keep.txt", "../outside"], "board": "qemu-m4"}
    (out / "mnmcu_project.json").write_text(json.dumps(manifest))
    before = tree(out)
    result = run_mnmcu("emit", str(SAMPLE), "--board", "qemu-m4", "--out", str(out), "--force")
    one_error_line(result, "mnmcu_project.json", "not a manifest mnmcu wrote", "nothing")
    assert tree(out) == before

    # an mnmcu manifest that lists the user's files without their hashes: kept, named
    manifest = {"generator": "mnmcu 0.1.0", "files": ["notes.txt", "sub/keep.txt"]}
    (out / "mnmcu_project.json").write_text(json.dumps(manifest))
    result = run_mnmcu("emit", str(SAMPLE), "--board", "qemu-m4", "--out", str(out), "--force")
    assert result.returncode == 0, result.stderr
    assert "kept" in result.stderr and "notes.txt" in result.stderr
    assert (out / "notes.txt").read_text() == "notes"
    assert (out / "sub" / "keep.txt").read_text() == "keep"


def test_force_keeps_an_edited_generated_file_and_names_it(tmp_path: Path) -> None:
    out = tmp_path / "out"
    args = ("emit", str(SAMPLE), "--board", "qemu-m4", "--out", str(out))
    assert run_mnmcu(*args).returncode == 0
    main = out / "src" / "main.c"
    main.write_text(main.read_text() + "/* my change */\n")
    before = tree(out)
    result = run_mnmcu(*args, "--force")
    one_error_line(result, "'src/main.c'", "changed since", "nothing was changed")
    assert tree(out) == before
    main.unlink()  # the user moves it away: now --force goes through
    assert run_mnmcu(*args, "--force").returncode == 0
    assert "my change" not in main.read_text()


def _consistent(project: Path) -> None:
    manifest = json.loads((project / "mnmcu_project.json").read_text())
    assert set(manifest["sha256"]) | {"mnmcu_project.json"} == set(manifest["files"])
    for rel, digest in manifest["sha256"].items():
        assert sha256_of(project / rel) == digest, rel
    assert not [p for p in project.iterdir() if p.name.startswith(".mnmcu")]


def test_a_busy_folder_is_refused_at_once_naming_the_holder(tmp_path: Path) -> None:
    out = tmp_path / "out"
    code = textwrap.dedent(
        f"""
        import time
        from mnmcu.outdir import output_folder
        with output_folder({str(out)!r}, True, "mnmcu build"):
            print("held", flush=True)
            time.sleep(60)
        """
    )
    env = {**os.environ, "PYTHONPATH": str(REPO / "toolchain")}
    holder = subprocess.Popen(
        [sys.executable, "-c", code], stdout=subprocess.PIPE, text=True, env=env
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        result = run_mnmcu("emit", str(SAMPLE), "--board", "qemu-m4", "--out", str(out), "--force")
        one_error_line(result, f"{out.resolve()} is in use by mnmcu build", f"pid {holder.pid}")
    finally:
        holder.kill()
        holder.wait()
    assert [p.name for p in out.iterdir()] == [".mnmcu.lock"]  # the killed holder's
    result = run_mnmcu("emit", str(SAMPLE), "--board", "qemu-m4", "--out", str(out), "--force")
    assert result.returncode == 0, result.stderr  # a dead holder's lock is taken over
    _consistent(out)


def test_two_emits_at_once_leave_one_consistent_project(tmp_path: Path) -> None:
    out = tmp_path / "out"
    env = {**os.environ, "PYTHONPATH": str(REPO / "toolchain"), "TF_CPP_MIN_LOG_LEVEL": "3"}
    cmd = [sys.executable, "-m", "mnmcu", "emit", str(SAMPLE), "--out", str(out), "--force"]
    runs = [
        subprocess.Popen([*cmd, "--board", board], env=env, stderr=subprocess.PIPE, text=True)
        for board in ("qemu-m4", "qemu-m7")
    ]
    results = [(run.wait(timeout=300), run.stderr.read() if run.stderr else "") for run in runs]
    winners = [i for i, (code, _) in enumerate(results) if code == 0]
    assert winners, results
    for code, stderr in results:
        if code != 0:
            lines = stderr.strip().splitlines()
            assert len(lines) == 1 and "is in use by mnmcu emit" in lines[0], stderr
    _consistent(out)
    board = json.loads((out / "mnmcu_project.json").read_text())["board"]
    assert f"[env:{board}]" in (out / "platformio.ini").read_text()


def test_model_folder_manifest_names_what_it_holds(tmp_path: Path) -> None:
    """mnmcu_files.json of a model folder is written by the commands, never trusted blindly."""
    out = tmp_path / "m"
    out.mkdir()
    (out / FILES_MANIFEST).write_text(json.dumps({"generator": "mnmcu 0", "files": ["../x"]}))
    result = run_mnmcu("model", "--out", str(out), "--force")
    one_error_line(result, FILES_MANIFEST, "not a manifest mnmcu wrote")
