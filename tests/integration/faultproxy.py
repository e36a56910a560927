"""A TCP proxy that damages the bytes between a host and a device (QEMU's UART socket).

Per byte and direction, with a seeded random generator: flip one bit
(``flip``), drop the byte (``drop``), send it twice (``dup``), insert 1-16
random bytes before it (``garbage``). ``cut_after`` closes both connections
after that many bytes from the host, in the middle of a frame. ``counts``
says what was done.
"""

from __future__ import annotations

import random
import socket
import threading
from dataclasses import dataclass, field


@dataclass
class Faults:
    """Rates per byte (0..1) and an optional cut."""

    flip: float = 0.0
    drop: float = 0.0
    dup: float = 0.0
    garbage: float = 0.0
    cut_after: int | None = None
    seed: int = 0


@dataclass
class FaultProxy:
    """Listens on 127.0.0.1; forwards to ``target`` (host, port) with ``faults``."""

    target: tuple[str, int]
    faults: Faults
    counts: dict[str, int] = field(
        default_factory=lambda: {"flip": 0, "drop": 0, "dup": 0, "garbage": 0, "cut": 0, "bytes": 0}
    )

    def __post_init__(self) -> None:
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(1)
        self._listener.settimeout(30)
        self.url = f"socket://127.0.0.1:{self._listener.getsockname()[1]}"
        self._rng = random.Random(self.faults.seed)
        self._lock = threading.Lock()
        self._sockets: list[socket.socket] = []
        self._threads: list[threading.Thread] = []
        self._host_bytes = 0
        self._accept = threading.Thread(target=self._serve, daemon=True)
        self._accept.start()

    def _serve(self) -> None:
        try:
            host, _ = self._listener.accept()
        except OSError:
            return
        device = socket.create_connection(self.target, timeout=30)
        for sock in (host, device):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            sock.settimeout(None)
        self._sockets += [host, device]
        for src, dst, from_host in ((host, device, True), (device, host, False)):
            thread = threading.Thread(target=self._pump, args=(src, dst, from_host), daemon=True)
            thread.start()
            self._threads.append(thread)

    def _damage(self, data: bytes, from_host: bool) -> tuple[bytes, bool]:
        out = bytearray()
        f = self.faults
        with self._lock:
            for byte in data:
                self.counts["bytes"] += 1
                if from_host:
                    self._host_bytes += 1
                    if f.cut_after is not None and self._host_bytes > f.cut_after:
                        self.counts["cut"] += 1
                        return bytes(out), True
                r = self._rng.random()
                if r < f.garbage:
                    self.counts["garbage"] += 1
                    out += bytes(self._rng.randrange(256) for _ in range(self._rng.randint(1, 16)))
                r = self._rng.random()
                if r < f.drop:
                    self.counts["drop"] += 1
                    continue
                if r < f.drop + f.flip:
                    self.counts["flip"] += 1
                    byte ^= 1 << self._rng.randrange(8)
                out.append(byte)
                if self._rng.random() < f.dup:
                    self.counts["dup"] += 1
                    out.append(byte)
        return bytes(out), False

    def _pump(self, src: socket.socket, dst: socket.socket, from_host: bool) -> None:
        try:
            while True:
                data = src.recv(4096)
                if not data:
                    break
                out, cut = self._damage(data, from_host)
                if out:
                    dst.sendall(out)
                if cut:
                    break
        except OSError:
            pass
        self.close()

    def close(self) -> None:
        """Close every connection (the host sees the link go down)."""
        for sock in [self._listener, *self._sockets]:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            sock.close()
