"""``mnmcu fit``'s flash and RAM predictions for qemu-m4 (AOT) against real firmware builds.

Each point is converted (untrained), emitted and built with ``pio run``; the ELF's flash
and RAM (``mnmcu.build.footprint``) must be within 10% of what ``fit`` predicted, and the
RAM never below it. None of these points is one the size model was calibrated on.
"""

from __future__ import annotations

import pytest

from mnmcu.bench import convert_untrained
from mnmcu.boards import get_board
from mnmcu.build import Footprint, footprint, pio_run
from mnmcu.emit.project import emit_project
from mnmcu.fit import Candidate, fit
from mnmcu.model.spec import ModelSpec

from ..conftest import require_tool

pytestmark = [pytest.mark.sim, pytest.mark.slow]

INSTALL = "apt-get install gcc-arm-none-eabi libnewlib-arm-none-eabi"
TOLERANCE = 0.10
# (arch, alpha, size): grid points of mnmcu fit, small inputs so the builds stay short
POINTS = [
    ("v1", 0.1, 96),
    ("v1", 0.25, 64),
    ("v1", 0.5, 32),
    ("v1", 0.75, 80),
    ("v2", 0.25, 48),
    ("v3-small", 0.5, 48),
]


@pytest.fixture(scope="module")
def measured(tmp_path_factory: pytest.TempPathFactory) -> dict[tuple[str, float, int], Footprint]:
    """Each point converted, emitted and built once for the module."""
    require_tool("arm-none-eabi-gcc", INSTALL, "MNMCU_REQUIRE_QEMU")
    root = tmp_path_factory.mktemp("fit_builds")
    board = get_board("qemu-m4")
    result = {}
    for arch, alpha, size in POINTS:
        name = f"{arch}_{alpha:g}_{size}"
        tflite = root / f"{name}.tflite"
        tflite.write_bytes(convert_untrained(ModelSpec(arch, alpha, size, classes=2)))
        info = emit_project(tflite, board, root / name)
        elf = pio_run(info.project_dir, core_dir=root / "core")
        result[arch, alpha, size] = footprint(elf, info)
    return result


@pytest.fixture(scope="module")
def predicted() -> dict[tuple[str, float, int], Candidate]:
    board = get_board("qemu-m4")
    found = {}
    for arch in sorted({p[0] for p in POINTS}):
        for c in fit(board, arch, "aot", classes=2).candidates:
            found[c.arch, c.alpha, c.size] = c
    return found


def test_points_are_on_the_grid(predicted: dict[tuple[str, float, int], Candidate]) -> None:
    assert all(p in predicted for p in POINTS)


@pytest.mark.parametrize("point", POINTS, ids=[f"{a}-{al:g}-{s}" for a, al, s in POINTS])
def test_prediction_within_ten_percent_of_the_elf(
    point: tuple[str, float, int],
    measured: dict[tuple[str, float, int], Footprint],
    predicted: dict[tuple[str, float, int], Candidate],
    record_property: pytest.RecordProperty,
) -> None:
    fp, c = measured[point], predicted[point]
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
