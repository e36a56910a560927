"""TensorFlow Lite Micro with CMSIS-NN on a QEMU board, from a tflite-micro checkout.

Runs only with ``MNMCU_TFLM_SOURCES`` (see :data:`framework_sources.TFLM` for
what the folder holds). ``mnmcu build --runtime tflm`` trains a VWW-shape
model (MobileNetV1 alpha 0.25, 96x96x3) on the built-in data, PlatformIO
compiles TFLM with its CMSIS-NN kernels for the Cortex-M4 of qemu-m4 (about
300 sources, 15 minutes on 2 cores; ``bench --compare tflm`` compiles them
once more for its own project, kept in mnmcu's cache between runs), and the
firmware then answers over QEMU's UART like any other:

* 20 HIL inputs (two constant images and 18 held-out images) bit-exact with
  LiteRT, with more than one distinct output;
* ``mnmcu bench --compare tflm`` prints TFLM + CMSIS-NN beside the AOT
  runtime's portable and DSP kernels, each output equal to the reference.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from ..conftest import require_qemu_tools, run_mnmcu
from .framework_sources import TFLM

pytestmark = [pytest.mark.slow, pytest.mark.sim]

HIL_COUNT = 20
BUILD_TIMEOUT_S = 4800.0


@pytest.fixture(scope="module")
def tflm_build(tmp_path_factory: pytest.TempPathFactory) -> Path:
    TFLM.locate()
    require_qemu_tools()
    out = tmp_path_factory.mktemp("tflm_qemu") / "vww"
    result = run_mnmcu(
        "build", "--board", "qemu-m4", "--runtime", "tflm", "--alpha", "0.25",
        "--resolution", "96", "--epochs", "3", "--out", str(out),
        timeout=BUILD_TIMEOUT_S,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    return out


def test_build_reports_the_tflm_firmware(tflm_build: Path) -> None:
    report = json.loads((tflm_build / "report.json").read_text())
    firmware = report["firmware"]
    assert firmware["runtime"] == "tflm"
    assert Path(firmware["elf"]).is_file()
    project = json.loads((tflm_build / "firmware" / "mnmcu_project.json").read_text())
    assert project["kernels"] == "cmsis-nn"
    # The arena TFLM needs is in RAM; the model (about 300 KB of int8 weights) in flash.
    assert firmware["footprint"]["arena_bytes"] > 50_000
    assert firmware["footprint"]["model_weights_bytes"] > 200_000


def test_hil_bit_exact_on_qemu(tflm_build: Path, tmp_path: Path) -> None:
    report_path = tmp_path / "hil.json"
    result = run_mnmcu(
        "hil", "--board", "qemu-m4", "--project", str(tflm_build / "firmware"),
        "--data", "builtin", "--count", str(HIL_COUNT), "--report", str(report_path),
        timeout=1200,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    report = json.loads(report_path.read_text())
    samples = report["samples"]
    assert len(samples) == HIL_COUNT
    assert report["device"]["runtime"] == "tflm"
    assert [s["index"] for s in samples if not s["bit_exact"]] == []
    outputs = {tuple(s["output"]) for s in samples}
    assert len(outputs) > 1, "every input gave the same output: the check proves nothing"


def test_bench_prints_tflm_beside_the_aot_kernels(tflm_build: Path) -> None:
    result = run_mnmcu(
        "bench", "--board", "qemu-m4", "--compare", "tflm",
        "--model", str(tflm_build / "model_int8.tflite"),
        timeout=BUILD_TIMEOUT_S,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    rows = {
        m["runtime"]: m
        for m in re.finditer(
            r"^(?P<runtime>aot portable|aot dsp|tflm\+cmsis-nn)\s+(?P<insns>[\d,]+)\s+"
            r"(?P<per_mac>[\d.]+)\s+[\d.]+x\s+(?P<arena>[\d,]+)\s+[\d,]+\s+(?P<ok>yes|NO)$",
            result.stdout,
            re.MULTILINE,
        )
    }
    assert set(rows) == {"aot portable", "aot dsp", "tflm+cmsis-nn"}, result.stdout
    assert all(m["ok"] == "yes" for m in rows.values()), result.stdout
    tflm, fast = rows["tflm+cmsis-nn"], rows["aot dsp"]
    # TFLM's arena holds its runtime's persistent data besides the activations.
    assert int(tflm["arena"].replace(",", "")) > int(fast["arena"].replace(",", ""))
