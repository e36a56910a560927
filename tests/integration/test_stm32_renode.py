"""The bare-metal STM32F4 firmware in QEMU's netduinoplus2, and the Renode
scripts for the four boards Renode models.

The QEMU part needs ``arm-none-eabi-gcc`` and ``qemu-system-arm``
(``MNMCU_REQUIRE_QEMU=1`` turns their absence into a failure). The Renode run
needs ``renode``: without it that test skips with the install hint, and
``MNMCU_REQUIRE_RENODE=1`` turns the skip into a failure.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import sys
import tomllib
from pathlib import Path

import numpy as np
import pytest

from mnmcu.boards import get_board
from mnmcu.build import footprint, pio_run
from mnmcu.emit.project import ProjectInfo, emit_project, load_project
from mnmcu.reference import litert_outputs
from mnmcu.sim import run_qemu
from mnmcu.sim.qemu import parse_boot_line
from mnmcu.sim.renode import INSTALL_HINT

from ..conftest import REPO, require_qemu_tools, require_tool, run_mnmcu

RENODE_BOARDS = ("disco_f407vg", "disco_f746ng", "nucleo_h743zi", "nano33ble")
RENODE_DATA = tomllib.loads((REPO / "boards" / "renode" / "renode.toml").read_text())


@pytest.fixture(scope="module")
def f407(int8_models: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> ProjectInfo:
    """The VWW-shape model's bare-metal STM32F407 project, built offline."""
    require_qemu_tools()
    root = tmp_path_factory.mktemp("f407")
    info = emit_project(int8_models["v1"], get_board("disco_f407vg"), root / "fw", bare_metal=True)
    pio_run(info.project_dir, core_dir=root / "core")
    return info


@pytest.mark.sim
@pytest.mark.slow
def test_bare_metal_f407_boots_in_netduinoplus2(f407: ProjectInfo, int8_models: dict) -> None:
    ini = (f407.project_dir / "platformio.ini").read_text()
    assert "board = mnmcu_stm32f407vg" in ini and "framework" not in ini.split("[env:")[1]
    board = get_board("disco_f407vg")
    assert board.simulator.qemu_machine == "netduinoplus2"

    run = run_qemu(board, f407.elf_path, timeout=120)
    fields = parse_boot_line(run.boot_line)
    assert fields["board"] == "disco_f407vg" and fields["runtime"] == "aot"
    # QEMU models no DWT, so the firmware reports virtual time as instructions, never as time.
    assert fields["latency_us"] == "-" and run.instructions is not None
    # Nor the RCC: the clock setup's bounded wait for the HSE ends on the 16 MHz HSI.
    assert fields["clock"] == "hsi_fallback:hse" and fields["cpu_hz"] == "16000000"
    assert fields["cycles"] == "-"
    header = (f407.project_dir / "src" / "mnmcu_sample.h").read_text()
    values = re.search(r"mnmcu_sample_input\[\d+\] = \{(.*?)\};", header, re.S)
    assert values
    sample = np.array([int(v) for v in values.group(1).split(",")], np.int8)
    expected = litert_outputs(int8_models["v1"].read_bytes(), sample.reshape(1, 96, 96, 3))
    assert fields["output"] == ",".join(str(int(v)) for v in np.asarray(expected).reshape(-1))
    assert fields["ok"] == "1"


@pytest.mark.sim
@pytest.mark.slow
def test_bare_metal_f407_fits_the_chip(f407: ProjectInfo) -> None:
    fp = footprint(f407.elf_path, f407)
    assert fp.flash_bytes <= 1024 * 1024 and fp.ram_bytes <= 128 * 1024


@pytest.mark.sim
@pytest.mark.slow
def test_hil_over_the_netduinoplus2_uart_is_bit_exact(
    f407: ProjectInfo, int8_models: dict[str, Path], tmp_path: Path
) -> None:
    report = tmp_path / "hil" / "report.json"
    result = run_mnmcu(
        "hil", "--board", "disco_f407vg", "--project", str(f407.project_dir),
        "--model", str(int8_models["v1"]), "--count", "20", "--report", str(report),
        timeout=900,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    assert "20/20 outputs bit-exact" in result.stdout
    data = json.loads(report.read_text())
    assert data["device"]["model_sha256"] == f407.model_sha256
    lines = report.with_suffix(".jsonl").read_text().splitlines()
    assert len(lines) == 20 and all(json.loads(line)["bit_exact"] for line in lines)


def test_bare_metal_is_refused_where_there_is_none(int8_models: dict, tmp_path: Path) -> None:
    result = run_mnmcu(
        "emit", str(int8_models["v1"]), "--board", "esp32s3", "--bare-metal",
        "--out", str(tmp_path / "x"),
    )  # fmt: skip
    assert result.returncode != 0 and "Traceback" not in result.stderr
    assert "esp32s3 has no bare-metal build" in result.stderr
    assert "disco_f407vg" in result.stderr


@pytest.fixture(scope="module")
def renode_projects(
    int8_models: dict[str, Path], tmp_path_factory: pytest.TempPathFactory
) -> dict[str, ProjectInfo]:
    """A generated (not built) project per Renode board: bare metal for the F407."""
    root = tmp_path_factory.mktemp("renode")
    return {
        board_id: emit_project(
            int8_models["v1"],
            get_board(board_id),
            root / board_id,
            bare_metal=board_id == "disco_f407vg",
        )  # fmt: skip
        for board_id in RENODE_BOARDS
    }


@pytest.mark.parametrize("board_id", RENODE_BOARDS)
def test_dry_run_writes_checked_scripts(
    board_id: str, renode_projects: dict[str, ProjectInfo]
) -> None:
    info = renode_projects[board_id]
    board = get_board(board_id)
    result = run_mnmcu(
        "sim", "--simulator", "renode", "--board", board_id, "--project", str(info.project_dir),
        "--dry-run", "--port", "4321",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    resc = info.project_dir / "renode" / f"{board_id}.resc"
    robot = info.project_dir / "renode" / f"{board_id}.robot"

    # The exact command: renode, the documented headless flags, the script.
    command = shlex.join(["renode", *RENODE_DATA["flags"]["headless"], str(resc)])
    assert command in result.stdout.splitlines()

    platform = board.simulator.renode_platform
    uart = board.simulator.renode_uart
    assert platform in RENODE_DATA["platforms"]
    assert uart in RENODE_DATA["platforms"][platform]["uarts"]
    lines = [ln for ln in resc.read_text().splitlines() if ln and not ln.startswith(("#", ":"))]
    commands = RENODE_DATA["monitor"]["commands"]
    for line in lines:
        assert any(line == c or line.startswith(c + " ") for c in commands), line
    assert f"machine LoadPlatformDescription @{platform}" in lines
    assert f"sysbus LoadELF @{info.elf_path.as_posix()}" in lines
    terminal = re.fullmatch(
        r'emulation CreateServerSocketTerminal 4321 "(\w+)" false',
        next(ln for ln in lines if ln.startswith("emulation")),
    )
    assert terminal
    assert f"connector Connect {uart} {terminal.group(1)}" in lines
    assert lines[-1] == "start"

    text = robot.read_text()
    keywords = RENODE_DATA["robot"]["keywords"]
    body = text.split("*** Test Cases ***")[1].splitlines()[2:]
    for line in filter(str.strip, body):
        cells = re.split(r"\s{2,}", line.strip())
        word = cells[1] if cells[0].startswith("${") and cells[0].endswith("=") else cells[0]
        assert word in keywords, line
    assert f"${{UART}}            {uart}" in text
    assert f"model={info.model_sha256[:12]}" in text
    assert "output=" + ",".join(str(v) for v in info.expected_output) in text
    assert f"Wait For Line On Uart    mnmcu: board={board_id} runtime=" in text


def test_without_renode_one_line_names_the_install(
    renode_projects: dict[str, ProjectInfo], tmp_path: Path
) -> None:
    env_path = os.pathsep.join(str(Path(p)) for p in (Path(sys.executable).parent, "/usr/bin"))
    if shutil.which("renode", path=env_path):
        pytest.skip("renode is installed in /usr/bin: cannot hide it")
    old = dict(os.environ)
    os.environ.update(PATH=env_path, HOME=str(tmp_path), PLATFORMIO_CORE_DIR=str(tmp_path))
    try:
        info = renode_projects["disco_f407vg"]
        result = run_mnmcu(
            "sim", "--simulator", "renode", "--board", "disco_f407vg",
            "--project", str(info.project_dir),
        )  # fmt: skip
    finally:
        os.environ.clear()
        os.environ.update(old)
    assert result.returncode != 0 and "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: renode is not installed")
    assert "github.com/renode/renode/releases" in lines[0]


@pytest.mark.sim
@pytest.mark.slow
def test_renode_runs_the_bare_metal_firmware(f407: ProjectInfo) -> None:
    require_tool("renode", INSTALL_HINT, "MNMCU_REQUIRE_RENODE")
    result = run_mnmcu(
        "sim", "--simulator", "renode", "--board", "disco_f407vg",
        "--project", str(f407.project_dir), "--timeout", "300",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert any(line.endswith(" ok=1") for line in result.stdout.splitlines())
    assert load_project(f407.project_dir).board_id == "disco_f407vg"
