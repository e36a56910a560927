"""The fast element-wise kernels (mnmcu_elementwise_dsp.c) are bit-exact.

``elementwise_check.c`` runs each fast kernel (table lookups, MEAN, ADD
through tables, MUL by one value per channel) and its portable counterpart
on the same random and extreme cases and compares every output byte: on
the host (the kernels' C forms) and bare-metal in QEMU, where qemu-m4 runs
the DSP-extension code and qemu-m55 the Helium code. Models using these ops
are compared with LiteRT in test_fast_kernels.py.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from mnmcu.boards import boards_dir, get_board
from mnmcu.paths import data_dir
from mnmcu.proc import run_command

from ..conftest import require_qemu_tools

CHECK = Path(__file__).with_name("elementwise_check.c")
SOURCES = (
    "mnmcu_common.c",
    "mnmcu_elementwise.c",
    "mnmcu_elementwise_dsp.c",
    "mnmcu_pool.c",
)
WARNINGS = ["-std=c99", "-Wall", "-Wextra", "-Werror", "-pedantic"]


def _sources() -> list[str]:
    src = data_dir("firmware") / "aot" / "src"
    return [str(CHECK), *(str(src / name) for name in SOURCES)]


def _includes() -> list[str]:
    aot = data_dir("firmware") / "aot"
    return [f"-I{aot / 'include'}", f"-I{aot / 'src'}"]


def _cases(text: str) -> int:
    assert "mismatches=0" in text, text
    return int(text.split("cases=")[1].split()[0])


def test_fast_elementwise_equal_portable_on_host(tmp_path: Path) -> None:
    if shutil.which("gcc") is None:
        pytest.skip("gcc is not installed: apt-get install gcc")
    exe = tmp_path / "check"
    sanitize = ["-fsanitize=undefined,address", "-fno-sanitize-recover"]
    run_command(
        ["gcc", *WARNINGS, "-O2", *sanitize, *_includes(), *_sources(), "-o", str(exe)],
        timeout=120,
    )
    assert _cases(run_command([str(exe)], timeout=120).stdout.decode()) == 3000


@pytest.mark.sim
@pytest.mark.parametrize("board_id", ["qemu-m4", "qemu-m55"])
def test_fast_elementwise_equal_portable_in_qemu(board_id: str, tmp_path: Path) -> None:
    """The same cases built for the board's core, with the -Os of the firmware builds."""
    require_qemu_tools()
    board = get_board(board_id)
    assert board.platformio is not None
    platform = boards_dir() / "platforms" / "mnmcu-qemu"
    spec = json.loads((platform / "boards" / f"{board.platformio.board}.json").read_text())
    startup = platform / "startup"
    elf = tmp_path / "check.elf"
    run_command(
        ["arm-none-eabi-gcc", *board.cpu.gcc_flags, "-Os", *WARNINGS, "-DCHECK_CASES=1500"]
        + ["-DMNMCU_QEMU", "-DMNMCU_SEMIHOSTING_EXIT"]
        + spec["build"]["extra_flags"].split()
        + [*_includes(), f"-I{startup}", *_sources()]
        + [str(startup / "mnmcu_qemu_startup.c"), str(startup / "mnmcu_qemu_syscalls.c")]
        + [f"-L{platform / 'ldscripts'}", f"-T{spec['build']['ldscript']}"]
        + ["--specs=nano.specs", "-nostartfiles", "-Wl,--gc-sections"]
        + ["-Wl,--no-warn-rwx-segments", "-o", str(elf)],
        timeout=180,
    )
    machine = board.simulator.qemu_machine
    assert machine is not None
    result = run_command(
        ["qemu-system-arm", "-M", machine, "-display", "none", "-monitor", "none"]
        + ["-serial", "stdio", "-semihosting-config", "enable=on,target=native"]
        + ["-kernel", str(elf)],
        timeout=300,
    )
    assert _cases(result.stdout.decode()) == 1500
