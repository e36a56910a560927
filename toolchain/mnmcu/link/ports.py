"""Find the serial port of a board by its USB VID:PID (``serial.tools.list_ports``)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from mnmcu.boards import Board
from mnmcu.errors import MnmcuError
from mnmcu.escape import visible


class PortNotFound(MnmcuError):
    """No port, or more than one, fits; the message lists the ports seen."""

    exit_code = 2


@dataclass(frozen=True)
class PortInfo:
    """One serial port the host sees."""

    device: str
    vid: int | None
    pid: int | None
    description: str

    def describe(self) -> str:
        """E.g. ``/dev/ttyACM0 (0483:374B STM32 STLink)``, on one line (the USB strings are the
        device's)."""
        ids = f"{self.vid:04X}:{self.pid:04X} " if self.vid is not None and self.pid else ""
        return visible(f"{self.device} ({ids}{self.description})".replace(" ()", ""))


def list_ports() -> list[PortInfo]:
    """The serial ports of this host, sorted by device name."""
    from serial.tools import list_ports as lp

    return sorted(
        (PortInfo(p.device, p.vid, p.pid, p.description or "") for p in lp.comports()),
        key=lambda p: p.device,
    )


def matching_ports(board: Board, ports: Sequence[PortInfo]) -> list[PortInfo]:
    """Ports whose VID:PID is one of the board's, in the board's order of preference."""
    found = []
    for vid, pid in board.serial.usb_vid_pids:
        found += [p for p in ports if p.vid == vid and p.pid == pid and p not in found]
    return found


def _seen(ports: Sequence[PortInfo]) -> str:
    return "; ".join(p.describe() for p in ports) if ports else "none"


def select_port(
    board: Board | None, port: str | None, ports: Sequence[PortInfo] | None = None
) -> str:
    """``port`` if given, else the one port whose USB VID:PID is one of ``board``'s.

    Without a board, or for a board with no USB ids, nothing is guessed.
    Raises :class:`PortNotFound` naming the ports seen when no port, or more
    than one, fits.
    """
    if port:
        return port
    if board is not None and board.simulator.qemu_machine and not board.serial.usb_ids:
        raise PortNotFound(
            f"board {board.id} is simulated and has no USB port",
            f"run 'mnmcu hil --board {board.id}' without --port to start QEMU, or pass "
            "--port socket://HOST:PORT",
        )
    seen = list_ports() if ports is None else list(ports)
    if board is None or not board.serial.usb_ids:
        why = "no --board" if board is None else f"board {board.id} has no USB id to find it by"
        raise PortNotFound(
            f"no --port given and {why}; ports seen: {_seen(seen)}",
            "choose one with --port (a device such as /dev/ttyACM0, or socket://HOST:PORT)"
            + ("" if board is not None else ", or pass --board to find it by USB id"),
        )
    candidates = matching_ports(board, seen)
    wanted = f"board {board.id} (USB {', '.join(board.serial.usb_ids)})"
    if len(candidates) == 1:
        return candidates[0].device
    if not candidates:
        raise PortNotFound(
            f"no serial port found for {wanted}; ports seen: {_seen(seen)}",
            "connect the board (and check its driver and cable), or choose a port with --port",
        )
    raise PortNotFound(
        f"{len(candidates)} serial ports fit {wanted}: {_seen(candidates)}",
        f"choose one with --port, e.g. --port {candidates[0].device}",
    )
