"""Run firmware in QEMU with the board's UART on a local TCP socket.

:func:`qemu_session` starts ``qemu-system-arm`` for a board's machine with
the console UART on ``tcp:127.0.0.1:<free port>,server=on,wait=on,nodelay=on`` (the
guest starts when a client connects) and yields the pyserial URL
``socket://127.0.0.1:<port>``; QEMU is always stopped on exit, by its
process handle. :func:`run_qemu` connects to it, reads lines until the boot
line and returns it parsed.

With ``icount`` (the default) QEMU runs with ``-icount shift=0``: virtual
time advances 1 ns per guest instruction, so the firmware's SysTick figures
are instruction counts, reported as ``icount_insns``, never as time.
"""

from __future__ import annotations

import contextlib
import queue
import re
import shlex
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from mnmcu.boards import Board
from mnmcu.errors import InvalidValue, MnmcuError, ToolMissing
from mnmcu.log import logger

QEMU_BINARY = "qemu-system-arm"
QEMU_INSTALL_HINT = "apt-get install qemu-system-arm"
QEMU_START_TIMEOUT_S = 15.0
"""Time for QEMU to open its UART socket."""
BOOT_TIMEOUT_S = 60.0
"""Time for the firmware to print its boot line (a VWW-size model takes about 1 s)."""
QEMU_STOP_TIMEOUT_S = 5.0
"""Time QEMU gets to exit after SIGTERM before it is killed."""
PORT_ATTEMPTS = 3
BOOT_LINE = re.compile(r"^mnmcu: board=")
FAULT_LINE = re.compile(r"^mnmcu: fault=")
_FIELD = re.compile(r"(\w+)=(\S+(?: \([^)]*\))?)")
_WAITING = "waiting for connection"


class SimulatorError(MnmcuError):
    """QEMU could not start, or exited early."""


class SimulatorTimeout(MnmcuError):
    """The expected output did not arrive in time."""


class FirmwareFault(MnmcuError):
    """The firmware reported a fault (HardFault and the like) or an error."""


@dataclass(frozen=True)
class QemuRun:
    """One boot of the firmware in QEMU, up to its boot line.

    ``fields`` are the boot line's ``key=value`` pairs; ``output`` the int8
    output bytes; ``instructions`` the guest instructions of the one
    inference when QEMU ran with ``-icount shift=0`` (else ``None``).
    """

    board_id: str
    machine: str
    command: tuple[str, ...]
    boot_line: str
    fields: Mapping[str, str]
    lines: tuple[str, ...]
    log_path: Path
    seconds: float
    icount: bool
    output: tuple[int, ...] = field(default=())

    @property
    def ok(self) -> bool:
        """True when the firmware found its output equal to the embedded expected one."""
        return self.fields.get("ok") == "1"

    @property
    def instructions(self) -> int | None:
        """Guest instructions of the inference (QEMU -icount shift=0 only)."""
        value = self.fields.get("icount_insns")
        return int(value) if self.icount and value is not None and value.isdigit() else None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready data."""
        return {
            "board": self.board_id,
            "machine": self.machine,
            "command": list(self.command),
            "boot_line": self.boot_line,
            "fields": dict(self.fields),
            "output": list(self.output),
            "ok": self.ok,
            "icount": self.icount,
            "instructions": self.instructions,
            "log": str(self.log_path),
            "seconds": round(self.seconds, 3),
        }


def parse_boot_line(line: str) -> dict[str, str]:
    """The ``key=value`` fields of a boot line (``score=87 (84.0%)`` keeps its bracket)."""
    return dict(_FIELD.findall(line))


def parse_output(text: str) -> tuple[int, ...]:
    """``-12,34`` -> ``(-12, 34)``; raises InvalidValue on anything else (e.g. a cut ``...``)."""
    try:
        return tuple(int(v) for v in text.split(","))
    except ValueError:
        raise InvalidValue(f"output field {text!r} is not a list of int8 values") from None


def qemu_command(
    board: Board, elf: Path, port: int, icount: bool = True, extra: Sequence[str] = ()
) -> list[str]:
    """The qemu-system-arm command line for ``board`` with its UART on ``port``."""
    machine = board.simulator.qemu_machine
    index = board.simulator.qemu_serial_index
    if machine is None or index is None:
        raise InvalidValue(
            f"board {board.id} has no QEMU machine",
            "use qemu-m4, qemu-m7 or qemu-m55 ('mnmcu boards' lists simulators)",
        )
    cmd = [QEMU_BINARY, "-M", machine, "-nographic", "-monitor", "none"]
    cmd += ["-semihosting-config", "enable=on,target=native"]
    if icount:
        cmd += ["-icount", "shift=0"]
    for _ in range(index):
        cmd += ["-serial", "null"]
    # nodelay: the UART sends byte by byte; without it Nagle and delayed ACKs
    # add about 40 ms to every request-response round trip.
    cmd += ["-serial", f"tcp:127.0.0.1:{port},server=on,wait=on,nodelay=on"]
    cmd += ["-kernel", str(elf), *extra]
    return cmd


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class _Qemu:
    """A running QEMU: its process, a thread draining stderr into a queue and the log."""

    def __init__(self, cmd: list[str], log: IO[str]) -> None:
        self.cmd = cmd
        self.log = log
        self.stderr: queue.Queue[str | None] = queue.Queue()
        logger.debug("running: %s", shlex.join(cmd))
        log.write(f"$ {shlex.join(cmd)}\n")
        try:
            self.process = subprocess.Popen(
                cmd,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
                errors="replace",
            )
        except FileNotFoundError:
            raise ToolMissing(f"{QEMU_BINARY} is not installed", QEMU_INSTALL_HINT) from None
        self._reader = threading.Thread(target=self._drain, daemon=True)
        self._reader.start()
        self.messages: list[str] = []

    def _drain(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.stderr.put(line.rstrip("\n"))
        self.stderr.put(None)

    def wait_listening(self, timeout: float) -> bool:
        """True once QEMU says it waits for a client; False if it exited first."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                line = self.stderr.get(timeout=0.1)
            except queue.Empty:
                continue
            if line is None:
                return False
            self.messages.append(line)
            self.log.write(f"[qemu] {line}\n")
            if _WAITING in line:
                return True
        raise SimulatorError(
            f"QEMU did not open its UART socket within {timeout:g} s",
            "see the log: " + str(getattr(self.log, "name", "")),
        )

    def collect_messages(self) -> None:
        while True:
            try:
                line = self.stderr.get_nowait()
            except queue.Empty:
                return
            if line is None:
                return
            self.messages.append(line)
            self.log.write(f"[qemu] {line}\n")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=QEMU_STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._reader.join(timeout=QEMU_STOP_TIMEOUT_S)
        self.collect_messages()
        self.log.write(f"[qemu exited with status {self.process.returncode}]\n")


def default_log_path(board: Board, elf: Path) -> Path:
    """``qemu-<board>.log`` beside the ELF."""
    return Path(elf).resolve().parent / f"qemu-{board.id}.log"


@contextlib.contextmanager
def _start(
    board: Board,
    elf: Path,
    icount: bool,
    log_path: Path,
    start_timeout: float,
    extra: Sequence[str] = (),
) -> Iterator[tuple[_Qemu, str]]:
    if shutil.which(QEMU_BINARY) is None:
        raise ToolMissing(f"{QEMU_BINARY} is not installed", QEMU_INSTALL_HINT)
    elf = Path(elf)
    if not elf.is_file():
        raise InvalidValue(f"firmware {elf} does not exist", "build it first ('mnmcu build')")
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("w", encoding="utf-8") as log:
        for attempt in range(PORT_ATTEMPTS):
            port = _free_port()
            qemu = _Qemu(qemu_command(board, elf, port, icount, extra), log)
            try:
                if qemu.wait_listening(start_timeout):
                    yield qemu, f"socket://127.0.0.1:{port}"
                    return
            finally:
                qemu.stop()
            in_use = any("in use" in m.lower() for m in qemu.messages)
            if not in_use or attempt == PORT_ATTEMPTS - 1:
                tail = "\n".join(qemu.messages[-10:])
                raise SimulatorError(
                    f"QEMU exited with status {qemu.process.returncode} before the guest "
                    f"started: {tail or 'no message'}",
                    f"see {log_path}",
                )


@contextlib.contextmanager
def qemu_session(
    board: Board,
    elf: Path,
    icount: bool = True,
    log_path: Path | None = None,
    start_timeout: float = QEMU_START_TIMEOUT_S,
) -> Iterator[str]:
    """Run ``elf`` on ``board``'s QEMU machine; yield the UART's pyserial URL.

    The guest starts when a client connects to the URL
    (``serial.serial_for_url``), so nothing it prints is lost. QEMU is
    stopped when the block ends, whatever happens. QEMU's messages go to
    ``log_path`` (default ``qemu-<board>.log`` beside the ELF).
    """
    log = log_path or default_log_path(board, elf)
    with _start(board, elf, icount, log, start_timeout) as (_, url):
        yield url


def run_qemu(
    board: Board,
    elf: Path,
    timeout: float = BOOT_TIMEOUT_S,
    icount: bool = True,
    expect_line: str | re.Pattern[str] = BOOT_LINE,
    log_path: Path | None = None,
    start_timeout: float = QEMU_START_TIMEOUT_S,
) -> QemuRun:
    """Boot ``elf`` in QEMU and read its UART until a line matches ``expect_line``.

    Returns the parsed line. Raises :class:`SimulatorTimeout` (what was
    awaited, what arrived, where the log is) when no such line arrives
    within ``timeout`` seconds, :class:`FirmwareFault` when the firmware
    reports a fault, :class:`SimulatorError` when QEMU exits first.
    """
    import serial

    pattern = re.compile(expect_line) if isinstance(expect_line, str) else expect_line
    log_file = log_path or default_log_path(board, elf)
    lines: list[str] = []
    started = time.monotonic()
    with _start(board, elf, icount, log_file, start_timeout) as (qemu, url):
        port = serial.serial_for_url(url, timeout=0.1)
        try:
            line = _read_until(port, qemu, pattern, timeout, lines, log_file)
        finally:
            port.close()
        seconds = time.monotonic() - started
    fields = parse_boot_line(line)
    output = (
        parse_output(fields["output"])
        if "output" in fields and "..." not in fields["output"]
        else ()
    )
    machine = board.simulator.qemu_machine or ""
    return QemuRun(
        board_id=board.id,
        machine=machine,
        command=tuple(qemu.cmd),
        boot_line=line,
        fields=fields,
        lines=tuple(lines),
        log_path=log_file,
        seconds=seconds,
        icount=icount,
        output=output,
    )


def _read_until(
    port: Any,
    qemu: _Qemu,
    pattern: re.Pattern[str],
    timeout: float,
    lines: list[str],
    log_path: Path,
) -> str:
    deadline = time.monotonic() + timeout
    pending = b""
    while time.monotonic() < deadline:
        chunk: bytes = port.read(port.in_waiting or 1)
        if not chunk:
            if qemu.process.poll() is not None:
                qemu.collect_messages()
                raise SimulatorError(
                    f"QEMU exited with status {qemu.process.returncode} before a line "
                    f"matching {pattern.pattern!r} arrived; received: {_shown(lines, pending)}",
                    f"see {log_path}",
                )
            continue
        pending += chunk
        while b"\n" in pending:
            raw, pending = pending.split(b"\n", 1)
            text = raw.decode("utf-8", "replace").rstrip("\r")
            lines.append(text)
            qemu.log.write(f"[uart] {text}\n")
            if FAULT_LINE.search(text):
                raise FirmwareFault(f"the firmware faulted: {text}", f"see {log_path}")
            if pattern.search(text):
                return text
    raise SimulatorTimeout(
        f"no line matching {pattern.pattern!r} within {timeout:g} s; received: "
        f"{_shown(lines, pending)}",
        f"see {log_path}",
    )


def _shown(lines: Sequence[str], pending: bytes) -> str:
    """The last text lines received, each cut to 300 characters; binary data as a count."""
    parts = [line if len(line) <= 300 else line[:297] + "..." for line in lines[-5:]]
    text = pending.decode("ascii", "replace")
    if text.isprintable():
        parts.append(text[-300:])
    elif pending:
        parts.append(f"<{len(pending)} bytes that are not text, e.g. protocol frames>")
    shown = " | ".join(p for p in parts if p.strip())
    return repr(shown) if shown else "nothing"
