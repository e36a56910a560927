"""The chained `mnmcu build` on the default embedded board, training included."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from ..conftest import REPO, require_tool, run_mnmcu

pytestmark = pytest.mark.slow

# Stated in the README ("The built-in dataset"): the CI-sized run reaches at
# least this held-out float accuracy; chance is 1/classes.
MIN_FLOAT_ACCURACY = 0.90
MAX_INT8_DROP = 0.015
MIN_HELD_OUT = 300


@pytest.fixture(scope="module")
def vww_build(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    out = tmp_path_factory.mktemp("build") / "vww"
    result = run_mnmcu(
        "build", "--board", "qemu-m4", "--alpha", "0.25", "--resolution", "96", "--out", str(out)
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return out, result.stdout + result.stderr


def test_build_writes_the_report(vww_build: tuple[Path, str]) -> None:
    out, _ = vww_build
    report = json.loads((out / "report.json").read_text())
    for key in ("arch", "alpha", "resolution", "classes", "params", "macs", "tflite_bytes"):
        assert key in report
    assert (report["arch"], report["alpha"], report["resolution"]) == ("v1", 0.25, 96)
    assert report["tflite_bytes"] == (out / "model_int8.tflite").stat().st_size
    assert report["analysis"]["macs"] == report["macs"]
    assert report["analysis"]["board"] == "qemu-m4"
    assert set(report["analysis"]["verdicts"]) == {"tflm", "aot"}
    assert (out / "report.html").is_file()
    assert sum(map(sum, report["accuracy"]["confusion_int8"])) == report["accuracy"]["images"]


def test_estimate_beside_the_elf(vww_build: tuple[Path, str]) -> None:
    """The analysis the report shows (a trained model) against the firmware it built."""
    out, text = vww_build
    report = json.loads((out / "report.json").read_text())
    fp, est = report["firmware"]["footprint"], report["firmware"]["estimate"]
    aot = report["analysis"]["estimates"]["aot"]
    assert (est["flash_estimated"], est["ram_estimated"]) == (aot["flash_bytes"], aot["ram_bytes"])
    assert (est["flash_measured"], est["ram_measured"]) == (fp["flash_bytes"], fp["ram_bytes"])
    assert abs(est["flash_error_percent"]) <= 2.0, est
    assert est["ram_difference_bytes"] == 0, est
    assert f"estimated before compiling (mnmcu analyze): flash {aot['flash_bytes']:,} B" in text


def test_accuracy_float_and_int8(vww_build: tuple[Path, str]) -> None:
    out, _ = vww_build
    acc = json.loads((out / "report.json").read_text())["accuracy"]
    classes = json.loads((out / "report.json").read_text())["classes"]
    assert acc["images"] >= MIN_HELD_OUT
    assert acc["float"] >= MIN_FLOAT_ACCURACY > 1.0 / classes
    assert acc["int8"] >= acc["float"] - MAX_INT8_DROP


def test_stage_times_are_printed(vww_build: tuple[Path, str]) -> None:
    out, output = vww_build
    times = json.loads((out / "report.json").read_text())["stage_seconds"]
    stages = ["data", "model", "train", "quantize", "analyze", "emit", "compile"]
    assert set(times) == set(stages)
    printed = [line.split()[1] for line in output.splitlines() if line.startswith("done ")]
    assert printed == stages
    for stage in stages:
        assert f"done {stage} in {times[stage]:.1f} s" in output


def test_one_parameter_count_everywhere(vww_build: tuple[Path, str]) -> None:
    """The model stage, the analysis and report.json give the int8 model's weights and biases."""
    out, output = vww_build
    report = json.loads((out / "report.json").read_text())
    params = report["params"]
    assert (
        params
        == report["analysis"]["params"]
        == sum(layer["params"] for layer in report["analysis"]["layers"])
    )
    assert f"{params:,} parameters (int8 weights and biases)" in output
    # every parameter count printed (the model stage, the analysis table) is this one
    counts = [
        a or b
        for a, b in re.findall(r"([0-9][0-9,]*) parameters|parameters\W+([0-9][0-9,]*)", output)
    ]
    assert counts == [f"{params:,}"] * 2, counts


def test_rebuild_refuses_without_force(vww_build: tuple[Path, str]) -> None:
    out, _ = vww_build
    before = (out / "report.json").read_bytes()
    result = run_mnmcu("build", "--board", "qemu-m4", "--out", str(out))
    assert result.returncode != 0
    assert "--force" in result.stderr and "Traceback" not in result.stderr
    assert (out / "report.json").read_bytes() == before


def test_analyze_cli_on_the_built_model(vww_build: tuple[Path, str]) -> None:
    out, _ = vww_build
    result = run_mnmcu("analyze", str(out / "model_int8.tflite"), "--board", "nano33ble", "--json")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    # MobileNetV1 0.25 at 96x96 with 2 classes is the MLPerf Tiny VWW model
    # (7,489,664 MACs); each class beyond 2 adds one 256-input classifier row.
    classes = json.loads((out / "report.json").read_text())["classes"]
    assert data["macs"] == 7_489_664 + 256 * (classes - 2)
    tflm = data["verdicts"]["tflm"]
    assert tflm["board"] == "nano33ble"
    assert tflm["ram"]["limit_bytes"] == 256 * 1024  # nRF52840: 256 KB RAM (Nordic product spec)
    assert tflm["ram"]["margin_bytes"] == tflm["ram"]["limit_bytes"] - tflm["ram"]["used_bytes"]


def test_image_folder_with_a_corrupt_file(tmp_path: Path) -> None:
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    data = tmp_path / "data"
    for k, name in enumerate(["apple", "pear", "plum"]):
        (data / name).mkdir(parents=True)
        for i in range(10):
            pixels = rng.integers(0, 255, (40, 48, 3), dtype=np.uint8)
            pixels[..., k] = 255
            Image.fromarray(pixels).save(data / name / f"{i}.png")
    corrupt = data / "pear" / "broken.jpg"
    corrupt.write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    out = tmp_path / "out"
    result = run_mnmcu(
        "build",
        "--board",
        "host",
        "--resolution",
        "32",
        "--epochs",
        "1",
        "--data",
        str(data),
        "--representative",
        "8",
        "--out",
        str(out),
    )
    assert result.returncode == 0, result.stderr[-3000:]
    warnings = [line for line in result.stderr.splitlines() if line.startswith("warning:")]
    assert any("broken.jpg" in line for line in warnings)
    report = json.loads((out / "report.json").read_text())
    assert report["classes"] == 3 and report["class_names"] == ["apple", "pear", "plum"]
    skipped = report["training"]["skipped_files"]
    assert len(skipped) == 1 and skipped[0][0].endswith("broken.jpg")


@pytest.mark.sim
def test_sim_runs_the_built_firmware(vww_build: tuple[Path, str]) -> None:
    require_tool("qemu-system-arm", "apt-get install qemu-system-arm", "MNMCU_REQUIRE_QEMU")
    out, _ = vww_build
    result = run_mnmcu("sim", "--board", "qemu-m4", "--project", str(out / "firmware"))
    assert result.returncode == 0, result.stderr
    line = result.stdout.splitlines()[0]
    assert line.startswith("mnmcu: board=qemu-m4 runtime=aot") and " ok=1" in line
    assert "instructions per inference" in result.stdout and " ms" not in result.stdout


@pytest.mark.sim
def test_demo_ends_with_the_device_answering(vww_build: tuple[Path, str]) -> None:
    """The Makefile's demo: after the build (vww_build runs the same), its hil line in QEMU."""
    require_tool("qemu-system-arm", "apt-get install qemu-system-arm", "MNMCU_REQUIRE_QEMU")
    out, _ = vww_build
    recipe = (REPO / "Makefile").read_text().split("\ndemo:", 1)[1].split("\n\n", 1)[0]
    hil_line = next(line for line in recipe.splitlines() if "mnmcu hil " in line)
    args = hil_line.split("mnmcu hil ", 1)[1].split()
    values = {"$(BOARD)": "qemu-m4", "$(DEMO_INPUTS)": "6"}
    args = [values.get(a, a).replace("build/demo-$(BOARD)", str(out)) for a in args]
    assert args == [
        "--board",
        "qemu-m4",
        "--project",
        str(out / "firmware"),
        "--data",
        "builtin",
        "--count",
        "6",
    ]
    result = run_mnmcu("hil", *args)
    assert result.returncode == 0, result.stderr[-2000:]
    images = [line for line in result.stdout.splitlines() if line.startswith("input ")]
    assert len(images) == 4, result.stdout  # all -128 and all 127 carry no label
    for line in images:
        assert re.search(r"label \w+ +device \w+ +\( *[0-9.]+%\)", line), line
        assert re.search(r"[0-9,]+ instructions +(match|WRONG), bit-exact$", line), line
    assert "6/6 outputs bit-exact with TFLite's reference kernels; top-1 agreement 100.0%" in (
        result.stdout
    )
    assert "latency (instructions): min " in result.stdout


@pytest.mark.sim
@pytest.mark.parametrize("board_id", ["qemu-m7", "qemu-m55"])
def test_build_and_sim_on_the_other_qemu_boards(board_id: str, tmp_path: Path) -> None:
    """The same chain for the M7 and M55 machines; untrained weights keep it short."""
    require_tool("qemu-system-arm", "apt-get install qemu-system-arm", "MNMCU_REQUIRE_QEMU")
    require_tool("arm-none-eabi-gcc", "apt-get install gcc-arm-none-eabi", "MNMCU_REQUIRE_GCC")
    import re

    import numpy as np

    from mnmcu.reference import litert_outputs

    out = tmp_path / board_id
    built = run_mnmcu(
        "build", "--board", board_id, "--alpha", "0.25", "--resolution", "96", "--no-train",
        "--out", str(out),
    )  # fmt: skip
    assert built.returncode == 0, built.stderr[-3000:]
    report = json.loads((out / "report.json").read_text())
    assert Path(report["firmware"]["elf"]).is_file()

    result = run_mnmcu("sim", "--board", board_id, "--project", str(out / "firmware"))
    assert result.returncode == 0, result.stderr
    line = result.stdout.splitlines()[0]
    assert line.startswith(f"mnmcu: board={board_id} runtime=aot") and " ok=1" in line
    # The printed output is the host reference's for the sample the firmware embeds.
    header = (out / "firmware" / "src" / "mnmcu_sample.h").read_text()
    values = re.search(r"mnmcu_sample_input\[\d+\] = \{(.*?)\};", header, re.S)
    assert values
    sample = np.array([int(v) for v in values.group(1).split(",")], np.int8)
    tflite = (out / "model_int8.tflite").read_bytes()
    expected = np.asarray(litert_outputs(tflite, sample.reshape(1, 96, 96, 3))).reshape(-1)
    printed = re.search(r" output=([-\d,]+) ", line)
    assert printed and printed.group(1) == ",".join(str(int(v)) for v in expected)


def test_esp32s3_build_offline_generates_then_names_the_download(tmp_path: Path) -> None:
    out = tmp_path / "esp"
    result = run_mnmcu(
        "build", "--board", "esp32s3", "--alpha", "0.25", "--resolution", "48", "--no-train",
        "--out", str(out),
    )  # fmt: skip
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, result.stderr[-2000:]
    assert "platformio/espressif32@6.13.0" in errors[0] and "network" in errors[0]
    assert "pio pkg install" in errors[0]
    # The project was generated first, and the report kept.
    assert (out / "firmware" / "platformio.ini").is_file()
    assert (out / "firmware" / "src" / "idf_component.yml").is_file()
    report = json.loads((out / "report.json").read_text())
    assert report["firmware"]["runtime"] == "tflm" and "elf" not in report["firmware"]
