"""``mnmcu bench --board B --compare tflm``: the figures of three runs side by side."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest

from mnmcu.bench_sim import KernelBench, KernelRun, LayerCount, TflmRun, report_lines

MACS = 1_000_000


def run(kernels: str, instructions: int, arena: int) -> KernelRun:
    return KernelRun(
        kernels=kernels,
        instructions=instructions,
        layers=(LayerCount(0, "CONV_2D", instructions),),
        runtime_code_bytes=20_000,
        kernel_code_bytes=9_000,
        model_weights_bytes=300_000,
        output=(1, 2),
        ok=True,
        arena_bytes=arena,
    )


def bench(tflm: TflmRun | None) -> KernelBench:
    return KernelBench(
        board="qemu-m4",
        model="m.tflite",
        macs=MACS,
        runs=(run("portable", 12_000_000, 55_296), run("dsp", 1_500_000, 55_600)),
        tflm=tflm,
    )


TFLM = TflmRun(
    instructions=3_000_000,
    arena_used_bytes=100_628,
    arena_bytes=105_792,
    runtime_code_bytes=80_000,
    model_weights_bytes=301_000,
    output=(1, 3),
    ok=False,
)


def test_three_rows_with_ratios_to_the_fast_kernels() -> None:
    text = "\n".join(report_lines(bench(TFLM)))
    rows = re.findall(
        r"^(aot portable|aot dsp|tflm\+cmsis-nn)\s+([\d,]+)\s+([\d.]+)\s+([\d.]+)x\s+([\d,]+)"
        r"\s+([\d,]+)\s+(yes|NO)$",
        text,
        re.MULTILINE,
    )
    assert rows == [
        ("aot portable", "12,000,000", "12.00", "8.00", "55,296", "20,000", "yes"),
        ("aot dsp", "1,500,000", "1.50", "1.00", "55,600", "20,000", "yes"),
        ("tflm+cmsis-nn", "3,000,000", "3.00", "2.00", "100,628", "80,000", "NO"),
    ]
    assert "ratio tflm+cmsis-nn/dsp (instructions): 2.000" in text
    data = bench(TFLM).to_dict()["tflm"]
    assert data["instructions_per_mac"] == 3.0 and data["ratio_tflm_over_fast"] == 2.0


def test_without_tflm_no_third_column() -> None:
    text = "\n".join(report_lines(bench(None)))
    assert "tflm" not in text
    assert bench(None).to_dict()["tflm"] is None


def test_schedules_side_by_side_with_ratios_to_layer_and_tflm() -> None:
    """--schedule stream: per kernel set the layer and stream runs, instructions and arenas
    as ratios to the layer run and to TFLite Micro's arena, in the text and the JSON."""
    layer = bench(TFLM)
    streamed = tuple(
        dataclasses.replace(r, instructions=i, arena_bytes=a, schedule="stream", streamed_ops=8)
        for r, i, a in zip(layer.runs, (12_120_000, 1_650_000), (41_856, 45_824), strict=True)
    )
    both = dataclasses.replace(layer, streamed=streamed)
    text = "\n".join(report_lines(both))
    rows = re.findall(
        r"^(portable|dsp)\s+(layer|stream)\s+(\d+)\s+([\d,]+)\s+([\d.]+)x\s+([\d,]+)"
        r"\s+([\d.]+)x\s+([\d.]+)x$",
        text,
        re.MULTILINE,
    )
    assert rows == [
        ("portable", "layer", "0", "12,000,000", "1.000", "55,296", "1.000", "0.550"),
        ("portable", "stream", "8", "12,120,000", "1.010", "41,856", "0.757", "0.416"),
        ("dsp", "layer", "0", "1,500,000", "1.000", "55,600", "1.000", "0.553"),
        ("dsp", "stream", "8", "1,650,000", "1.100", "45,824", "0.824", "0.455"),
    ]
    data = both.to_dict()["schedules"]
    assert [d["kernels"] for d in data] == ["portable", "dsp"]
    assert data[1]["instructions_stream_over_layer"] == 1.1
    assert data[1]["arena_stream_over_tflm"] == round(45_824 / 100_628, 4)
    assert layer.to_dict()["schedules"] == [] and "AOT schedules" not in "\n".join(
        report_lines(layer)
    )


def test_a_second_tflm_bench_on_the_board_is_refused_while_one_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two benches would rewrite one cached TFLite Micro project under each other."""
    from mnmcu import bench_sim
    from mnmcu.boards import get_board
    from mnmcu.errors import OutputBusy

    from .test_outdir import _holder

    monkeypatch.setenv("MNMCU_CACHE_DIR", str(tmp_path / "cache"))
    board = get_board("qemu-m4")
    project = bench_sim.tflm_bench_project(board)
    assert project.is_relative_to(tmp_path / "cache")
    holder = _holder(project, 30)
    try:
        with pytest.raises(OutputBusy, match=f"in use by mnmcu holder \\(pid {holder.pid}"):
            bench_sim._run_tflm(tmp_path / "model.tflite", board, None)
    finally:
        holder.kill()
        holder.wait()
    assert not (project / "platformio.ini").exists()  # refused before writing anything
