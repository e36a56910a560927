"""Renode: the simulator the field uses for STM32 and nRF52 boards.

For a board with a Renode platform (``simulator.renode_platform`` and
``renode_uart`` in its TOML file) :func:`write_scripts` writes

* ``<board>.resc``: creates the machine from Renode's platform description,
  loads the firmware ELF, puts the console UART on a server socket (so
  ``socket://127.0.0.1:PORT`` reaches the firmware, for ``mnmcu hil`` as
  for any pyserial tool) and starts;
* ``<board>.robot``: a Robot Framework suite for ``renode-test`` that boots
  the firmware, waits for its boot line (one inference of the embedded
  sample) and checks that line: the model's hash, the expected output,
  ``ok=1``.

:func:`run_renode` starts ``renode`` headless on the script and reads the
boot line from the socket, every wait bounded. Renode is found on ``PATH``
or as PlatformIO's ``tool-renode`` package. What the scripts may name is
listed, with its source, in ``boards/renode/renode.toml``.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import time
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mnmcu import __version__, escape
from mnmcu.boards import Board
from mnmcu.errors import InvalidValue, MnmcuError, ToolMissing
from mnmcu.outdir import output_folder
from mnmcu.paths import data_dir

RENODE_DATA = "renode/renode.toml"
INSTALL_HINT = (
    "install Renode: download a release from https://github.com/renode/renode/releases "
    "(Debian/Ubuntu: 'apt-get install ./renode_<version>_amd64.deb'; or the portable "
    "linux-portable .tar.gz, with renode on PATH), or PlatformIO's package: "
    "'pio pkg install -g -t platformio/tool-renode'"
)
BOOT_PATTERN = "mnmcu: board="
START_TIMEOUT_S = 60.0
BOOT_TIMEOUT_S = 120.0
TERMINAL_NAME = "mnmcu_console"


@dataclass(frozen=True)
class RenodeScripts:
    """What :func:`write_scripts` wrote, and the command that runs it."""

    resc: Path
    robot: Path
    command: tuple[str, ...]
    port: int

    @property
    def url(self) -> str:
        """The pyserial URL of the console UART while Renode runs."""
        return f"socket://127.0.0.1:{self.port}"

    def shell_command(self) -> str:
        """The command line that runs Renode on the script, quoted for a shell."""
        return escape.shell_join(self.command)


def renode_data() -> dict[str, Any]:
    """``boards/renode/renode.toml``: platforms, UARTs, commands, flags (with sources)."""
    with (data_dir("boards") / RENODE_DATA).open("rb") as stream:
        data: dict[str, Any] = tomllib.load(stream)
    return data


def check_board(board: Board) -> tuple[str, str]:
    """The board's Renode platform description and UART, checked against the data file."""
    platform, uart = board.simulator.renode_platform, board.simulator.renode_uart
    known = renode_data()["platforms"]
    if platform is None or uart is None:
        have = ", ".join(sorted(renode_boards()))
        raise InvalidValue(
            f"board {board.id} has no Renode platform", f"Renode models these boards: {have}"
        )
    if platform not in known:
        raise InvalidValue(
            f"board {board.id}: Renode platform {platform} is not one Renode ships "
            f"(boards/{RENODE_DATA})",
            f"use one of {', '.join(sorted(known))}",
        )
    if uart not in known[platform]["uarts"]:
        raise InvalidValue(
            f"board {board.id}: {platform} has no UART {uart}",
            f"use one of {', '.join(known[platform]['uarts'])}",
        )
    return platform, uart


def renode_boards() -> list[str]:
    """Ids of the boards Renode models."""
    from mnmcu.boards import all_boards

    return [b.id for b in all_boards() if b.simulator.renode_platform is not None]


def find_renode() -> Path | None:
    """``renode`` on PATH, else PlatformIO's ``tool-renode`` package (core dir or ~/.platformio)."""
    found = shutil.which("renode")
    if found:
        return Path(found)
    cores = [os.environ.get("PLATFORMIO_CORE_DIR"), str(Path.home() / ".platformio")]
    for core in filter(None, cores):
        candidate = Path(core) / "packages" / "tool-renode" / "renode"
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return candidate
    return None


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _quote(text: str) -> str:
    """A Renode Monitor string literal."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def resc_text(board: Board, elf: Path, port: int) -> str:
    """The Renode Monitor script for ``board`` running ``elf``, console on ``port``.

    Raises :class:`mnmcu.escape.UnsafeText` for an ELF path Renode cannot name.
    """
    platform, uart = check_board(board)
    machine = re.sub(r"[^A-Za-z0-9_]", "_", board.id)
    elf_token = escape.renode_path(elf.resolve())
    return "\n".join(
        [
            f":name: mnmcu {board.id}",
            ":description: "
            + escape.visible(f"{board.name} running {elf.name}; console {uart} on TCP {port}."),
            "",
            escape.hash_comment(
                f"Generated by mnmcu {__version__} for board {board.id} "
                f"(boards/{board.id}.toml). Do not edit."
            ),
            "using sysbus",
            f"mach create {_quote(machine)}",
            f"machine LoadPlatformDescription @{platform}",
            f"sysbus LoadELF {elf_token}",
            f"emulation CreateServerSocketTerminal {int(port)} {_quote(TERMINAL_NAME)} false",
            f"connector Connect {uart} {TERMINAL_NAME}",
            "start",
            "",
        ]
    )


_SHA256 = re.compile(r"[0-9a-f]{64}")


def robot_text(board: Board, elf: Path, model_sha256: str, expected: Sequence[int]) -> str:
    """A ``renode-test`` suite: boot, wait for the boot line, check it.

    Raises :class:`mnmcu.escape.UnsafeText` for an ELF path Renode cannot name
    and :class:`InvalidValue` for a model hash that is not a SHA-256.
    """
    platform, uart = check_board(board)
    if not _SHA256.fullmatch(model_sha256):
        raise InvalidValue(
            f"model SHA-256 {escape.describe(model_sha256)} is not 64 hex digits",
            "emit the project again",
        )
    output = ",".join(str(int(v)) for v in expected)
    prefix = f"{BOOT_PATTERN}{board.id} runtime="

    def cell(text: str, what: str, argument: bool = False) -> str:
        return escape.robot_value(text, what, argument)

    return "\n".join(
        [
            escape.hash_comment(
                f"Generated by mnmcu {__version__} for board {board.id}. Run: renode-test "
                f"{board.id}.robot"
            ),
            "*** Settings ***",
            "Suite Setup       Setup",
            "Suite Teardown    Teardown",
            "Test Teardown     Test Teardown",
            "Resource          ${RENODEKEYWORDS}",
            "",
            "*** Variables ***",
            f"${{ELF}}             {escape.renode_path(elf.resolve())}",
            f"${{PLATFORM}}        @{platform}",
            f"${{UART}}            {cell(uart, 'Renode UART')}",
            f"${{MODEL}}           {cell(f'model={model_sha256[:12]}', 'model hash')}",
            f"${{OUTPUT}}          {cell(f'output={output}', 'expected output')}",
            "",
            "*** Test Cases ***",
            "Boots And Runs The Sample Inference",
            "    Execute Command            mach create",
            "    Execute Command            machine LoadPlatformDescription ${PLATFORM}",
            "    Execute Command            sysbus LoadELF ${ELF}",
            "    Create Terminal Tester     ${UART}    timeout=120",
            "    Start Emulation",
            f"    ${{line}}=    Wait For Line On Uart    {cell(prefix, 'boot line prefix', True)}",
            "    Should Contain             ${line.Line}    ${MODEL}",
            "    Should Contain             ${line.Line}    ${OUTPUT}",
            "    Should Contain             ${line.Line}    ok=1",
            "",
        ]
    )


def renode_command(renode: Path | str, resc: Path) -> tuple[str, ...]:
    """``renode`` headless on ``resc``."""
    flags = renode_data()["flags"]["headless"]
    return (str(renode), *flags, str(resc.resolve()))


def write_scripts(
    board: Board,
    elf: Path,
    out_dir: Path,
    model_sha256: str,
    expected: Sequence[int],
    port: int | None = None,
    renode: Path | str | None = None,
) -> RenodeScripts:
    """Write ``<board>.resc`` and ``<board>.robot`` into ``out_dir``."""
    port = port or free_port()
    resc_body = resc_text(board, elf, port)  # refuses a path Renode cannot name, first
    robot_body = robot_text(board, elf, model_sha256, expected)
    with output_folder(out_dir, False, "mnmcu sim", option="--project", exists_ok=True) as folder:
        resc = folder.write(f"{board.id}.resc", resc_body)
        robot = folder.write(f"{board.id}.robot", robot_body)
        folder.save_manifest()
    command = renode_command(renode or "renode", resc)
    return RenodeScripts(resc=resc, robot=robot, command=command, port=port)


def run_renode(
    scripts: RenodeScripts, timeout: float = BOOT_TIMEOUT_S, log_path: Path | None = None
) -> str:
    """Run Renode on ``scripts`` and return the firmware's boot line.

    Raises :class:`ToolMissing` when Renode is not installed and
    :class:`MnmcuError` naming what was awaited when a wait runs out.
    """
    renode = find_renode()
    if renode is None:
        raise ToolMissing("renode is not installed", INSTALL_HINT)
    command = renode_command(renode, scripts.resc)
    log = open(log_path or scripts.resc.with_suffix(".log"), "w", encoding="utf-8")  # noqa: SIM115
    proc = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
    try:
        conn = _connect(scripts.port, proc, min(START_TIMEOUT_S, timeout))
        with conn:
            return _read_boot_line(conn, timeout)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
        log.close()


def _connect(port: int, proc: subprocess.Popen[bytes], timeout: float) -> socket.socket:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise MnmcuError(f"renode exited with status {proc.returncode} before listening")
        try:
            return socket.create_connection(("127.0.0.1", port), timeout=1.0)
        except OSError:
            time.sleep(0.2)
    raise MnmcuError(f"renode did not open the console socket on port {port} in {timeout:g} s")


def _read_boot_line(conn: socket.socket, timeout: float) -> str:
    deadline = time.monotonic() + timeout
    buffer = b""
    while time.monotonic() < deadline:
        conn.settimeout(max(0.1, min(1.0, deadline - time.monotonic())))
        try:
            chunk = conn.recv(4096)
        except TimeoutError:
            continue
        if not chunk:
            break
        buffer += chunk
        *complete, buffer = buffer.split(b"\n")
        for raw in complete:
            line = raw.decode("utf-8", "replace").strip()
            if line.startswith(BOOT_PATTERN):
                return line
    raise MnmcuError(f"no boot line ('{BOOT_PATTERN}...') from Renode in {timeout:g} s")
