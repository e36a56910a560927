"""Talk to a device running mnmcu firmware over any pyserial URL.

:func:`open_session` opens ``/dev/ttyACM0``, ``socket://127.0.0.1:PORT``
(QEMU's UART), ``loop://`` or any other URL with ``serial.serial_for_url``
and performs the handshake. :class:`DeviceSession` sends requests one at a
time (stop and wait), each with a sequence number: a response that does not
arrive in time, or an ERROR frame saying the device could not read the
request, makes it send the same request again, up to ``retries`` times.
Repeated requests are harmless: INPUT writes the same bytes, INFER with the
same sequence number returns the cached result. Every wait is bounded.
"""

from __future__ import annotations

import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from mnmcu.errors import MnmcuError
from mnmcu.link.protocol import (
    BadFrame,
    DeviceInfo,
    ErrorCode,
    ErrorFrame,
    Frame,
    FrameDecoder,
    FrameType,
    ProtocolError,
    ResultPayload,
    Text,
    encode_frame,
    infer_payload,
    input_payload,
)
from mnmcu.log import logger

DEFAULT_BAUD = 115200
RESPONSE_TIMEOUT_S = 2.0
"""Wait for the answer to INFO, PING or INPUT before sending the request again."""
INFER_TIMEOUT_S = 60.0
"""Wait for an inference's RESULT (QEMU runs the VWW model in about 1 s)."""
HANDSHAKE_TIMEOUT_S = 60.0
"""Wait for the device to answer INFO after the port opens (it runs its boot sample first)."""
RETRIES = 8
"""Times one request is sent again before the link is given up."""
INPUT_RESENDS = 3
"""Times the whole input is sent again when the device's input CRC-32 differs."""
READ_SLICE_S = 0.05


class LinkError(MnmcuError):
    """The device did not answer as the protocol requires."""


class DeviceTimeout(LinkError):
    """No valid answer within the timeout, after every retry."""


class LinkLost(LinkError):
    """The port closed or failed (cable, socket, simulator)."""


class DeviceError(LinkError):
    """The device answered a request with an ERROR frame."""

    def __init__(
        self, message: str, hint: str | None = None, error: ErrorFrame | None = None
    ) -> None:
        super().__init__(message, hint)
        self.error = error


class ModelMismatch(LinkError):
    """The device runs another model than the one the host expects."""


@dataclass
class LinkStats:
    """What went wrong on the link and was recovered."""

    requests: int = 0
    retransmissions: int = 0
    timeouts: int = 0
    device_framing_errors: int = 0
    bad_frames_received: int = 0
    stale_frames: int = 0
    input_resends: int = 0

    def to_dict(self) -> dict[str, int]:
        """JSON-ready data."""
        return dict(self.__dict__)


@dataclass(frozen=True)
class InferResult:
    """One inference on the device."""

    output: bytes
    ticks: int
    tick_hz: int
    cycles: int | None
    micros: int | None
    virtual_time: bool
    layers: tuple[tuple[int, int], ...]
    host_seconds: float

    @property
    def instructions(self) -> int | None:
        """Guest instructions under QEMU ``-icount shift=0`` (1 ns of virtual time each)."""
        if not self.virtual_time or self.tick_hz == 0:
            return None
        return self.ticks * 1_000_000_000 // self.tick_hz


@dataclass
class DeviceSession:
    """A protocol session over an open pyserial port (see the module doc)."""

    port: Any
    url: str = ""
    retries: int = RETRIES
    response_timeout: float = RESPONSE_TIMEOUT_S
    infer_timeout: float = INFER_TIMEOUT_S
    on_text: Callable[[str], None] | None = None
    stats: LinkStats = field(default_factory=LinkStats)
    texts: list[str] = field(default_factory=list)
    info: DeviceInfo | None = None
    _decoder: FrameDecoder = field(default_factory=FrameDecoder)
    _frames: list[Frame] = field(default_factory=list)
    _seq: int = 0
    _last_seen: list[str] = field(default_factory=list)
    _bad_seen: bool = False
    _infer_wait: float | None = None

    # -- low level -------------------------------------------------------

    def _next_seq(self) -> int:
        self._seq = self._seq % 255 + 1  # 1..255; 0 is the device's unasked INFO
        return self._seq

    def _write(self, data: bytes, what: str) -> None:
        import serial

        try:
            self.port.write(data)
            self.port.flush()
        except (serial.SerialException, OSError) as exc:
            raise LinkLost(
                f"the link to {self.url or 'the device'} failed while sending {what} ({exc})",
                _CABLE_HINT,
            ) from None

    def _read_events(self, until: float, what: str) -> None:
        """Read what arrives (at most until ``until``) into the frame queue."""
        import serial

        while not self._frames and not self._bad_seen and time.monotonic() < until:
            try:
                waiting = self.port.in_waiting
                chunk: bytes = self.port.read(waiting or 1)
            except (serial.SerialException, OSError) as exc:
                raise LinkLost(
                    f"the link to {self.url or 'the device'} closed while waiting for {what} "
                    f"({exc})",
                    _CABLE_HINT,
                ) from None
            if not chunk:
                continue
            for event in self._decoder.feed(chunk):
                if isinstance(event, Frame):
                    self._frames.append(event)
                elif isinstance(event, Text):
                    self.texts.append(event.text)
                    self._note(event.text)
                    if self.on_text is not None:
                        self.on_text(event.text)
                elif isinstance(event, BadFrame):
                    self.stats.bad_frames_received += 1
                    self._bad_seen = True
                    self._note(f"<bad frame: {event.reason}>")

    def _note(self, text: str) -> None:
        self._last_seen.append(text)
        del self._last_seen[:-5]

    def _next_frame(self, until: float, what: str) -> Frame | None:
        """The next frame, or None at ``until`` or as soon as a damaged frame arrived."""
        self._bad_seen = False
        while not self._frames and not self._bad_seen and time.monotonic() < until:
            self._read_events(min(until, time.monotonic() + READ_SLICE_S), what)
        return self._frames.pop(0) if self._frames else None

    def request(
        self, type_: int, payload: bytes, expect: int, timeout: float | None = None
    ) -> Frame:
        """Send one request and return its response, retrying as the module doc says.

        Raises :class:`DeviceError` for an ERROR answer to this request,
        :class:`DeviceTimeout` when every attempt went unanswered,
        :class:`LinkLost` when the port fails.
        """
        seq = self._next_seq()
        wait = timeout if timeout is not None else self.response_timeout
        frame_bytes = encode_frame(type_, seq, payload)
        name = _type_name(type_)
        what = f"{_type_name(expect)} to {name} seq {seq}"
        self.stats.requests += 1
        for attempt in range(self.retries + 1):
            if attempt:
                self.stats.retransmissions += 1
                logger.debug("sending %s seq %d again (attempt %d)", name, seq, attempt + 1)
            self._write(frame_bytes, f"{name} seq {seq}")
            until = time.monotonic() + wait
            while True:
                frame = self._next_frame(until, what)
                if frame is None:
                    # A damaged frame may have been the answer: ask again at once.
                    self.stats.timeouts += 0 if self._bad_seen else 1
                    break
                if frame.type == FrameType.ERROR:
                    error = ErrorFrame.parse(frame.payload)
                    if error.framing:
                        self.stats.device_framing_errors += 1
                        break  # the device could not read a frame: maybe ours
                    if frame.seq == seq and error.request == type_:
                        raise DeviceError(
                            f"the device refused {name} seq {seq}: {error.describe()}",
                            error=error,
                        )
                    self.stats.stale_frames += 1
                    continue
                if frame.seq == seq and frame.type == expect:
                    return frame
                if frame.type == FrameType.INFO_RESP and self.info is None:
                    self._remember_info(frame)
                self.stats.stale_frames += 1
        seen = " | ".join(self._last_seen) or "nothing"
        raise DeviceTimeout(
            f"no {what} from {self.url or 'the device'} after {self.retries + 1} attempts of "
            f"{wait:g} s; last received: {seen}",
            "check that the board runs mnmcu firmware with the serial protocol, "
            "the port and the baud rate",
        )

    def _remember_info(self, frame: Frame) -> DeviceInfo:
        try:
            self.info = DeviceInfo.parse(frame.payload)
        except ProtocolError as exc:
            raise LinkError(f"the device's INFO frame does not parse ({exc})") from None
        return self.info

    # -- commands --------------------------------------------------------

    def handshake(self, timeout: float = HANDSHAKE_TIMEOUT_S) -> DeviceInfo:
        """Ask the device who it is (INFO), waiting up to ``timeout`` for it to boot."""
        retries = max(1, int(timeout / self.response_timeout))
        saved, self.retries = self.retries, retries
        try:
            frame = self.request(FrameType.INFO, b"", FrameType.INFO_RESP)
        except DeviceTimeout as exc:
            raise DeviceTimeout(
                f"no handshake from {self.url or 'the device'} within {timeout:g} s; "
                f"last received: {' | '.join(self._last_seen) or 'nothing'}",
                "check that the board runs mnmcu firmware built with the serial protocol "
                "(mnmcu build or emit), the port and the baud rate",
            ) from exc
        finally:
            self.retries = saved
        return self._remember_info(frame)

    def ping(self, payload: bytes = b"mnmcu") -> float:
        """Round-trip time of a PING in seconds; checks the echo."""
        start = time.monotonic()
        frame = self.request(FrameType.PING, payload, FrameType.PONG)
        if frame.payload != payload:
            raise LinkError(f"PONG echoed {frame.payload!r}, not {payload!r}")
        return time.monotonic() - start

    def infer(self, data: bytes, profile: bool = False) -> InferResult:
        """Send one input into the input tensor (INPUT frames), run it (INFER); the result."""
        info = self.info or self.handshake()
        if len(data) != info.input_size:
            raise LinkError(
                f"input of {len(data)} bytes; the device's model takes {info.input_size}"
            )
        crc = zlib.crc32(data)
        start = time.monotonic()
        for resend in range(INPUT_RESENDS + 1):
            if resend:
                self.stats.input_resends += 1
            self._send_input(data, info.max_payload - 4)
            sent = time.monotonic()
            try:
                frame = self.request(
                    FrameType.INFER,
                    infer_payload(crc, profile),
                    FrameType.RESULT,
                    timeout=self._infer_wait or self.infer_timeout,
                )
            except DeviceError as exc:
                input_crc = exc.error is not None and exc.error.code == ErrorCode.INPUT_CRC
                if input_crc and resend < INPUT_RESENDS:
                    continue
                raise
            # Once an inference's duration is known, a lost INFER is sent again after a
            # few times that, not after the full infer_timeout.
            took = time.monotonic() - sent
            self._infer_wait = min(self.infer_timeout, max(2 * self.response_timeout, 4 * took))
            break
        try:
            result = ResultPayload.parse(frame.payload)
        except ProtocolError as exc:
            raise LinkError(f"the device's RESULT does not parse ({exc})") from None
        if result.input_crc != crc or len(result.output) != info.output_size:
            raise LinkError(
                f"RESULT for input CRC 0x{result.input_crc:08x} with {len(result.output)} "
                f"bytes; expected CRC 0x{crc:08x} and {info.output_size} bytes"
            )
        return InferResult(
            output=result.output,
            ticks=result.ticks,
            tick_hz=result.tick_hz,
            cycles=result.cycles,
            micros=result.micros,
            virtual_time=result.virtual_time,
            layers=result.layers,
            host_seconds=time.monotonic() - start,
        )

    def _send_input(self, data: bytes, chunk: int) -> None:
        if chunk <= 0:
            raise LinkError(f"the device announces a max payload of {chunk + 4} bytes")
        for offset in range(0, len(data), chunk):
            part = data[offset : offset + chunk]
            ack = self.request(FrameType.INPUT, input_payload(offset, part), FrameType.INPUT_ACK)
            if ack.payload != input_payload(offset, b"") + len(part).to_bytes(4, "little"):
                raise LinkError(f"INPUT_ACK {ack.payload.hex()} does not match offset {offset}")

    def close(self) -> None:
        """Close the port."""
        try:
            self.port.close()
        except Exception:  # noqa: BLE001 - closing a failed port must not hide the first error
            logger.debug("closing %s failed", self.url, exc_info=True)

    def __enter__(self) -> DeviceSession:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _type_name(type_: int) -> str:
    try:
        return FrameType(type_).name
    except ValueError:
        return f"type 0x{type_:02x}"


_CABLE_HINT = "check the cable, the driver and the permissions of the port (or the simulator's log)"


def open_port(url: str, baud: int = DEFAULT_BAUD) -> Any:
    """Open ``url`` with ``serial.serial_for_url``; a failure names the URL and what to try."""
    import serial

    try:
        return serial.serial_for_url(url, baudrate=baud, timeout=READ_SLICE_S, write_timeout=10)
    except (serial.SerialException, OSError, ValueError) as exc:
        raise LinkLost(
            f"cannot open port {url} ({exc})",
            "pass an existing port with --port (see 'mnmcu monitor --list'), "
            "and check the cable, the driver and your permissions (e.g. the dialout group)",
        ) from None


def open_session(
    url: str,
    baud: int = DEFAULT_BAUD,
    handshake_timeout: float = HANDSHAKE_TIMEOUT_S,
    on_text: Callable[[str], None] | None = None,
    **options: Any,
) -> DeviceSession:
    """Open ``url`` and shake hands; the session's ``info`` says who the device is."""
    session = DeviceSession(open_port(url, baud), url=url, on_text=on_text, **options)
    try:
        session.handshake(handshake_timeout)
    except BaseException:
        session.close()
        raise
    return session
