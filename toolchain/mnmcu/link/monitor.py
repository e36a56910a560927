"""Show what a device sends: text passes through, frames are decoded into one line each."""

from __future__ import annotations

import time
from collections.abc import Callable

from mnmcu.link.protocol import BadFrame, Frame, FrameDecoder, Text
from mnmcu.link.session import LinkLost, open_port

IDLE_FLUSH_S = 0.5
"""Pending bytes without a delimiter or newline are shown after this silence."""


def monitor(
    url: str,
    baud: int,
    emit: Callable[[str], None],
    duration: float | None = None,
) -> int:
    """Print what arrives on ``url`` through ``emit`` until Ctrl-C (or ``duration`` seconds).

    Returns the number of lines shown. KeyboardInterrupt ends it cleanly.
    """
    import serial

    port = open_port(url, baud)
    decoder = FrameDecoder()
    shown = 0
    last = time.monotonic()
    end = None if duration is None else time.monotonic() + duration

    def show(event: Frame | BadFrame | Text) -> None:
        nonlocal shown
        if isinstance(event, Text):
            emit(event.text)
        elif isinstance(event, Frame):
            emit(event.describe())
        else:
            emit(f"[bad frame: {event.reason}, {len(event.data)} bytes]")
        shown += 1

    try:
        while end is None or time.monotonic() < end:
            try:
                chunk: bytes = port.read(port.in_waiting or 1)
            except (serial.SerialException, OSError) as exc:
                raise LinkLost(f"the port {url} closed ({exc})") from None
            now = time.monotonic()
            if chunk:
                last = now
                for event in decoder.feed(chunk):
                    show(event)
            elif now - last > IDLE_FLUSH_S:
                for event in decoder.flush():
                    show(event)
                last = now
    except KeyboardInterrupt:
        pass
    finally:
        for event in decoder.flush():
            show(event)
        port.close()
    return shown
