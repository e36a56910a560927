"""The repository's own platformio.ini: current, lint-clean, and its QEMU
environments build offline from firmware/ and the sample model and run in QEMU
with the host reference's output.

Needs ``arm-none-eabi-gcc`` and ``qemu-system-arm`` for the build and run;
``MNMCU_REQUIRE_QEMU=1`` turns their absence into a failure (CI).
"""

from __future__ import annotations

import configparser
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from mnmcu.boards import all_boards, get_board
from mnmcu.build import pio_command, pio_environment, pio_run
from mnmcu.emit.devenv import PRE_SCRIPT, SAMPLE_MODEL, render_ini
from mnmcu.emit.project import default_sample
from mnmcu.graph import load_graph
from mnmcu.reference import litert_outputs
from mnmcu.sim import run_qemu
from mnmcu.sim.qemu import parse_boot_line, parse_output

from ..conftest import require_qemu_tools

REPO = Path(__file__).resolve().parents[2]
INI = REPO / "platformio.ini"
QEMU_BOARDS = ("qemu-m4", "qemu-m7", "qemu-m55")


def _ini() -> configparser.ConfigParser:
    parser = configparser.ConfigParser(interpolation=None)
    parser.read(INI, encoding="utf-8")
    return parser


def test_committed_ini_is_what_mnmcu_generates() -> None:
    assert INI.read_text(encoding="utf-8") == render_ini(), (
        "platformio.ini is stale: run 'python -m mnmcu.emit.devenv'"
    )


def test_one_environment_per_board_with_its_platform() -> None:
    parser = _ini()
    envs = {s.removeprefix("env:") for s in parser.sections() if s.startswith("env:")}
    boards = {b.id: b for b in all_boards() if b.platformio is not None}
    assert envs == set(boards)
    for board_id, board in boards.items():
        section = parser[f"env:{board_id}"]
        assert section["board"] == board.platformio.board
        assert section["extra_scripts"] == f"pre:{PRE_SCRIPT}"
        assert section["custom_mnmcu_runtime"] == board.runtime.default
        platform = section["platform"]
        if board.platformio.is_local_platform:
            assert platform.startswith("file://boards/")
            assert (REPO / platform.removeprefix("file://")).is_dir()
        else:
            assert platform == board.platformio.platform and "@" in platform  # pinned
    assert (REPO / SAMPLE_MODEL).is_file()


def test_pio_lint_is_clean(tmp_path: Path) -> None:
    proc = subprocess.run(
        pio_command("project", "config", "-d", REPO, "--lint"),
        env=pio_environment(tmp_path / "core"),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "free from linting errors" in proc.stdout


@pytest.fixture(scope="module")
def dev_builds(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """QEMU board -> ELF built by the repository's platformio.ini, outside the checkout."""
    require_qemu_tools()
    root = tmp_path_factory.mktemp("dev")
    mp = pytest.MonkeyPatch()
    mp.setenv("PLATFORMIO_BUILD_DIR", str(root / "build"))
    mp.setenv("MNMCU_PYTHON", sys.executable)
    try:
        return {b: pio_run(REPO, env=b, core_dir=root / "core") for b in QEMU_BOARDS}
    finally:
        mp.undo()


@pytest.mark.sim
@pytest.mark.parametrize("board_id", QEMU_BOARDS)
def test_dev_environment_builds_and_runs_the_sample(
    board_id: str, dev_builds: dict[str, Path]
) -> None:
    elf = dev_builds[board_id]
    # The project was generated beside the build folder, outside the checkout.
    generated = elf.parents[2] / "dev" / board_id
    assert (generated / "src" / "main.c").is_file()
    assert not (REPO / "firmware" / "sample" / "src").exists()

    run = run_qemu(get_board(board_id), elf, timeout=120)
    fields = parse_boot_line(run.boot_line)
    assert fields["board"] == board_id
    tflite = (REPO / SAMPLE_MODEL).read_bytes()
    sample = default_sample(load_graph(tflite))
    expected = np.asarray(litert_outputs(tflite, sample[None]))[0].reshape(-1)
    assert parse_output(fields["output"]) == tuple(int(v) for v in expected)
    assert fields["ok"] == "1"
