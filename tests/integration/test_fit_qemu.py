"""``mnmcu analyze`` and ``mnmcu fit`` (AOT) against real firmware builds on qemu-m4 and qemu-m55.

Each point is converted (untrained), emitted and built with ``pio run``. On qemu-m4 the
estimate ``mnmcu analyze --board`` gives for the converted model must be within 2% of
the ELF's flash (``mnmcu.build.footprint``) and equal to its RAM, and ``fit`` for the
same single configuration must give the same figures. Each firmware also runs once in
QEMU with ``-icount shift=0``: its instructions per inference must be within 15% of the
latency ``fit`` predicted (times the clock) on both boards. None of these points is one
the code sizes or the latency model were measured on; most sizes are odd.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from mnmcu.bench import convert_untrained
from mnmcu.boards import get_board
from mnmcu.build import Footprint, footprint, pio_run
from mnmcu.emit.project import emit_project
from mnmcu.fit import ESTIMATE_ERROR_PERCENT, Candidate, candidate, fit_config
from mnmcu.model.spec import ModelSpec
from mnmcu.pipeline import analyze_file
from mnmcu.sim import run_qemu

from ..conftest import require_qemu_tools

pytestmark = [pytest.mark.sim, pytest.mark.slow]

TOLERANCE = 0.10
LATENCY_TOLERANCE = 0.15
# (arch, alpha, size): small inputs so the builds stay short, odd sizes (PAD ops in V1)
ESTIMATE_POINTS = [
    ("v1", 0.3, 57),
    ("v1", 0.5, 72),
    ("v2", 0.35, 61),
    ("v2", 0.5, 72),
    ("v3-small", 0.5, 53),
    ("v3-small", 0.75, 39),
]
POINTS = [
    *ESTIMATE_POINTS,
    # maps down to one pixel, and a narrow V1 on a larger input
    ("v1", 0.1, 96),
    ("v2", 0.5, 32),
    ("v3-small", 0.75, 32),
]
# Three points of each architecture, for the latency on both boards too.
LATENCY_POINTS = [*POINTS, ("v1", 0.25, 64)]
# The per-op latency model counts MACs, not vector lanes: alpha 0.3 gives 38, 76 and 153
# channels, which leave Helium's 16-lane groups part empty (about 17% more instructions
# on qemu-m55 than the model, fitted on multiples of 8, predicts).
KNOWN_LATENCY_MISSES = {("qemu-m55", ("v1", 0.3, 57))}
Point = tuple[str, float, int]


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[Point, Path]:
    require_qemu_tools()
    root = tmp_path_factory.mktemp("fit_models")
    result = {}
    for arch, alpha, size in LATENCY_POINTS:
        tflite = root / f"{arch}_{alpha:g}_{size}.tflite"
        tflite.write_bytes(convert_untrained(ModelSpec(arch, alpha, size, classes=2)))
        result[arch, alpha, size] = tflite
    return result


def _build(
    board_id: str, points: list[Point], models: dict[Point, Path], root: Path
) -> dict[Point, tuple[Footprint, int]]:
    """Each point emitted, built and run once: its footprint and instructions."""
    board = get_board(board_id)
    result = {}
    for point in points:
        name = f"{point[0]}_{point[1]:g}_{point[2]}"
        info = emit_project(models[point], board, root / name)
        elf = pio_run(info.project_dir, core_dir=root / "core")
        run = run_qemu(board, elf, icount=True, timeout=120)
        assert run.ok and run.instructions is not None, run.boot_line
        result[point] = (footprint(elf, info), run.instructions)
    return result


@pytest.fixture(scope="module")
def built_m4(
    models: dict[Point, Path], tmp_path_factory: pytest.TempPathFactory
) -> dict[Point, tuple[Footprint, int]]:
    """Each point built for qemu-m4 and run once for the module."""
    return _build("qemu-m4", LATENCY_POINTS, models, tmp_path_factory.mktemp("fit_m4"))


@pytest.fixture(scope="module")
def built_m55(
    models: dict[Point, Path], tmp_path_factory: pytest.TempPathFactory
) -> dict[Point, tuple[Footprint, int]]:
    """The latency points built for qemu-m55 and run once for the module."""
    return _build("qemu-m55", LATENCY_POINTS, models, tmp_path_factory.mktemp("fit_m55"))


def _candidates(board_id: str) -> dict[Point, Candidate]:
    board = get_board(board_id)
    return {p: candidate(board, p[0], p[1], p[2], "aot", classes=2) for p in LATENCY_POINTS}


@pytest.fixture(scope="module")
def predicted() -> dict[Point, Candidate]:
    return _candidates("qemu-m4")


@pytest.mark.parametrize(
    "point", ESTIMATE_POINTS, ids=[f"{a}-{al:g}-{s}" for a, al, s in ESTIMATE_POINTS]
)
def test_analyze_within_two_percent_of_the_elf_and_fit_the_same(
    point: Point,
    models: dict[Point, Path],
    built_m4: dict[Point, tuple[Footprint, int]],
    record_property: pytest.RecordProperty,
) -> None:
    """The one estimator: analyze on the model, fit on the configuration, the ELF."""
    board = get_board("qemu-m4")
    fp = built_m4[point][0]
    est = analyze_file(models[point], board, measure=False).estimates["aot"]
    flash_error = 100 * (est.flash_bytes - fp.flash_bytes) / fp.flash_bytes
    row = (
        f"{point[0]} alpha {point[1]:g} {point[2]}x{point[2]}: analyze flash {est.flash_bytes:,} "
        f"ELF {fp.flash_bytes:,} ({flash_error:+.2f}%); analyze RAM {est.ram_bytes:,} "
        f"ELF {fp.ram_bytes:,}"
    )
    print(row)
    record_property("estimate", row)
    assert abs(flash_error) <= ESTIMATE_ERROR_PERCENT, row
    assert est.ram_bytes == fp.ram_bytes, row
    assert est.ram_parts["arena"] == fp.arena_bytes, row
    one = fit_config(board, *point, runtime="aot", classes=2).recommended
    assert one.ram_bytes == est.ram_bytes, row
    # fit sees shapes, not scales: where a MEAN's scale keeps it off the fast kernel
    # (a 2x2 map here), analyze links the portable one instead (a few hundred bytes)
    assert abs(one.flash_bytes - est.flash_bytes) <= 0.002 * est.flash_bytes, (
        f"{row}; fit flash {one.flash_bytes:,}"
    )


@pytest.mark.parametrize("point", POINTS, ids=[f"{a}-{al:g}-{s}" for a, al, s in POINTS])
def test_prediction_within_ten_percent_of_the_elf(
    point: tuple[str, float, int],
    built_m4: dict[Point, tuple[Footprint, int]],
    predicted: dict[Point, Candidate],
    record_property: pytest.RecordProperty,
) -> None:
    fp, c = built_m4[point][0], predicted[point]
    flash_error = (c.flash_bytes - fp.flash_bytes) / fp.flash_bytes
    ram_error = (c.ram_bytes - fp.ram_bytes) / fp.ram_bytes
    row = (
        f"{point[0]} alpha {point[1]:g} {point[2]}x{point[2]}: flash predicted {c.flash_bytes:,} "
        f"measured {fp.flash_bytes:,} ({100 * flash_error:+.2f}%); RAM predicted "
        f"{c.ram_bytes:,} measured {fp.ram_bytes:,} ({100 * ram_error:+.2f}%)"
    )
    print(row)
    record_property("prediction", row)
    assert abs(flash_error) <= TOLERANCE, row
    assert abs(ram_error) <= TOLERANCE, row
    assert c.ram_bytes >= fp.ram_bytes, row
    assert c.ram_parts["arena"] == fp.arena_bytes, row


@pytest.mark.parametrize("board_id", ["qemu-m4", "qemu-m55"])
@pytest.mark.parametrize(
    "point", LATENCY_POINTS, ids=[f"{a}-{al:g}-{s}" for a, al, s in LATENCY_POINTS]
)
def test_latency_within_fifteen_percent_of_the_instructions(
    board_id: str,
    point: Point,
    request: pytest.FixtureRequest,
    record_property: pytest.RecordProperty,
) -> None:
    """fit's latency times the clock against the instructions QEMU counted (not cycles)."""
    board = get_board(board_id)
    assert board.cpu.clock_hz is not None
    built = request.getfixturevalue("built_m4" if board_id == "qemu-m4" else "built_m55")
    instructions = built[point][1]
    c = _candidates(board_id)[point]
    assert c.latency_ms is not None
    predicted_count = c.latency_ms / 1000 * board.cpu.clock_hz
    error = (predicted_count - instructions) / instructions
    row = (
        f"{board_id} {point[0]} alpha {point[1]:g} {point[2]}x{point[2]}: predicted "
        f"{predicted_count:,.0f} instructions, measured {instructions:,} ({100 * error:+.1f}%)"
    )
    print(row)
    record_property("latency", row)
    if (board_id, point) in KNOWN_LATENCY_MISSES:
        assert -0.25 <= error < -LATENCY_TOLERANCE / 3, row  # the documented shortfall
        return
    assert abs(error) <= LATENCY_TOLERANCE, row
