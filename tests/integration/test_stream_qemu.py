"""The stream schedule in firmware: emitted, built, run in QEMU over HIL, bit-exact.

The VWW-shape MobileNetV1 (alpha 0.25, 96x96) with ``--schedule stream``:
the project records the schedule, its arena (read back from the ELF) is the
stream plan's and smaller than the layer plan's, and HIL over QEMU's UART
gives the reference's bytes on qemu-m4 (DSP kernels), qemu-m55 (Helium) and
the bare-metal STM32F407 in netduinoplus2 (DSP kernels, another HAL).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mnmcu.boards import get_board
from mnmcu.build import footprint, pio_run
from mnmcu.emit.aot import firmware_graph
from mnmcu.emit.project import load_project
from mnmcu.graph import load_graph
from mnmcu.stream import check_stream_plan, schedule_plan

from ..conftest import require_qemu_tools, run_mnmcu

pytestmark = [pytest.mark.sim]

HIL_TIMEOUT_S = 900


@pytest.fixture(autouse=True)
def _toolchain() -> None:
    require_qemu_tools()


def _hil(board_id: str, project: Path, model: Path, count: int, report: Path) -> dict:
    result = run_mnmcu(
        "hil", "--board", board_id, "--project", str(project), "--model", str(model),
        "--count", str(count), "--report", str(report), timeout=HIL_TIMEOUT_S,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    assert f"{count}/{count} outputs bit-exact" in result.stdout
    data: dict = json.loads(report.read_text())
    assert data["bit_exact"] == count
    return data


@pytest.mark.slow
@pytest.mark.parametrize(
    ("board_id", "bare_metal", "kernels", "count"),
    [
        ("qemu-m4", False, "dsp", 50),
        ("qemu-m55", False, "helium", 10),
        ("disco_f407vg", True, "dsp", 10),
    ],
)
def test_streamed_firmware_is_bit_exact_over_hil(
    board_id: str,
    bare_metal: bool,
    kernels: str,
    count: int,
    int8_models: dict[str, Path],
    tmp_path: Path,
) -> None:
    model = int8_models["v1"]
    out = tmp_path / "fw"
    result = run_mnmcu(
        "emit", str(model), "--board", board_id, "--schedule", "stream", "--out", str(out),
        *(["--bare-metal"] if bare_metal else []),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    info = load_project(out)
    plan = schedule_plan(firmware_graph(load_graph(model)), kernels, "stream")
    assert check_stream_plan(firmware_graph(load_graph(model)), plan) == []
    assert (info.kernels, info.schedule, info.streamed_ops) == (kernels, "stream", plan.streamed)
    assert plan.streamed >= 8
    assert info.arena_bytes == plan.arena_bytes < plan.layer_arena_bytes == info.layer_arena_bytes
    assert (
        f"stream schedule: ops 0-{plan.streamed - 1} row by row, arena {plan.arena_bytes:,} B "
        f"(layer schedule: {plan.layer_arena_bytes:,} B)" in result.stdout
    )
    elf = pio_run(out, core_dir=tmp_path / "core")
    assert footprint(elf, info).arena_bytes == plan.arena_bytes  # the arena in the ELF
    data = _hil(board_id, out, model, count, tmp_path / "hil" / "report.json")
    assert data["device"]["arena_bytes"] == plan.arena_bytes


@pytest.mark.slow
def test_build_tflite_with_the_stream_schedule_reports_it(
    int8_models: dict[str, Path], tmp_path: Path
) -> None:
    """``build --tflite --schedule auto``: report.json names the schedule the firmware runs,
    its plan and both arenas, and the ELF's arena is the plan's."""
    model = int8_models["v1"]
    out = tmp_path / "build"
    result = run_mnmcu(
        "build", "--tflite", str(model), "--board", "qemu-m4", "--schedule", "auto",
        "--out", str(out), timeout=HIL_TIMEOUT_S,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    report = json.loads((out / "report.json").read_text())
    firmware = report["firmware"]
    plan = report["memory_plan"]
    assert firmware["schedule"] == "stream" and firmware["streamed_ops"] >= 8
    assert plan["schedule"]["streamed_ops"] == firmware["streamed_ops"]
    assert plan["arena_bytes"] == firmware["arena_bytes"] < firmware["layer_arena_bytes"]
    assert plan["schedule"]["layer_arena_bytes"] == firmware["layer_arena_bytes"]
    assert firmware["footprint"]["arena_bytes"] == firmware["arena_bytes"]
    assert get_board("qemu-m4").memory.ram_bytes > firmware["footprint"]["ram_bytes"]
    # the estimate planned for the same schedule: flash within 2%, RAM within 1% of the ELF's
    estimate = firmware["estimate"]
    assert abs(estimate["flash_error_percent"]) <= 2.0, estimate
    assert abs(estimate["ram_difference_bytes"]) <= estimate["ram_measured"] / 100, estimate
    page = (out / "report.html").read_text(encoding="utf-8")
    m = firmware["streamed_ops"]
    assert f"Stream schedule: ops 0-{m - 1} run row by row" in page
    assert f"{firmware['layer_arena_bytes']:,}" in page


def test_tflm_firmware_refuses_a_streamed_schedule(
    int8_models: dict[str, Path], tmp_path: Path
) -> None:
    out = tmp_path / "fw"
    result = run_mnmcu(
        "emit", str(int8_models["v1"]), "--board", "qemu-m4", "--runtime", "tflm",
        "--schedule", "stream", "--out", str(out),
    )  # fmt: skip
    assert result.returncode != 0 and "Traceback" not in result.stderr
    assert "the stream schedule is the AOT runtime's" in result.stderr
    assert not out.exists()
