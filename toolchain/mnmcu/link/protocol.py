"""Frames of mnmcu's serial protocol, version 1 (``firmware/protocol/PROTOCOL.md``).

A frame is ``type:u8 seq:u8 len:u16le payload[len] crc32:u32le`` (zlib's
CRC-32 over type..payload), COBS-encoded (the ``cobs`` package) and sent
between two ``0x00`` delimiters. :class:`FrameDecoder` takes the bytes of a
port as they come and yields frames, bad frames and the text between frames
(the firmware's boot line), so text and frames share one port.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any

from cobs import cobs

PROTOCOL_VERSION = 1
HEADER = struct.Struct("<BBH")
CRC = struct.Struct("<I")
OVERHEAD = HEADER.size + CRC.size
MAX_PAYLOAD = 0xFFFF
DELIMITER = b"\x00"
MAX_SEGMENT = 2 * (MAX_PAYLOAD + OVERHEAD)
"""Bytes without a delimiter after which the decoder gives up on the segment."""


class FrameType(IntEnum):
    """Frame types; a response is its request | 0x80."""

    INFO = 0x01
    PING = 0x02
    INPUT = 0x03
    INFER = 0x04
    INFO_RESP = 0x81
    PONG = 0x82
    INPUT_ACK = 0x83
    RESULT = 0x84
    ERROR = 0xFF


class ErrorCode(IntEnum):
    """The codes of an ERROR frame (and of the C decoder's results)."""

    COBS = -1
    TOO_LONG = -2
    SHORT = -3
    LENGTH = -4
    CRC = -5
    TYPE = -6
    ARGUMENT = -7
    INPUT_CRC = -8
    RUNTIME = -9


FRAMING_ERRORS = frozenset(
    {ErrorCode.COBS, ErrorCode.TOO_LONG, ErrorCode.SHORT, ErrorCode.LENGTH, ErrorCode.CRC}
)


@dataclass(frozen=True)
class Frame:
    """One valid frame."""

    type: int
    seq: int
    payload: bytes

    def describe(self) -> str:
        """A one-line description for monitors and logs."""
        try:
            name = FrameType(self.type).name
        except ValueError:
            name = f"0x{self.type:02x}"
        text = f"[frame {name} seq={self.seq} len={len(self.payload)}]"
        if self.type == FrameType.ERROR:
            text += " " + ErrorFrame.parse(self.payload).describe()
        elif self.type == FrameType.INFO_RESP:
            info = DeviceInfo.parse(self.payload)
            text += (
                f" board={info.board} runtime={info.runtime} model={info.model_sha256[:12]}"
                f" input={list(info.input_shape)} output={list(info.output_shape)}"
            )
        return text


@dataclass(frozen=True)
class BadFrame:
    """Bytes between delimiters that are no valid frame, and why."""

    reason: str
    data: bytes


@dataclass(frozen=True)
class Text:
    """Bytes between frames that read as text (e.g. the boot line)."""

    text: str


Event = Frame | BadFrame | Text


class ProtocolError(ValueError):
    """A payload that does not parse."""


def encode_frame(type_: int, seq: int, payload: bytes = b"") -> bytes:
    """The bytes on the wire for one frame, both delimiters included."""
    if not 0 <= type_ <= 0xFF or not 0 <= seq <= 0xFF:
        raise ValueError(f"type {type_} and seq {seq} must be 0..255")
    if len(payload) > MAX_PAYLOAD:
        raise ValueError(f"payload of {len(payload)} bytes exceeds {MAX_PAYLOAD}")
    body = HEADER.pack(type_, seq, len(payload)) + bytes(payload)
    raw = body + CRC.pack(zlib.crc32(body))
    encoded: bytes = cobs.encode(raw)
    return DELIMITER + encoded + DELIMITER


def decode_segment(segment: bytes) -> Frame | BadFrame:
    """Decode the bytes between two delimiters (no ``0x00`` in them)."""
    try:
        raw = cobs.decode(segment)
    except cobs.DecodeError:
        return BadFrame("bad COBS encoding", segment)
    if len(raw) < OVERHEAD:
        return BadFrame(f"frame too short ({len(raw)} bytes)", segment)
    type_, seq, length = HEADER.unpack_from(raw)
    if length != len(raw) - OVERHEAD:
        return BadFrame(f"length field {length} != {len(raw) - OVERHEAD} bytes", segment)
    body = raw[: HEADER.size + length]
    (crc,) = CRC.unpack_from(raw, HEADER.size + length)
    if crc != zlib.crc32(body):
        return BadFrame("CRC-32 mismatch", segment)
    return Frame(type_, seq, bytes(raw[HEADER.size : HEADER.size + length]))


def _looks_like_text(data: bytes) -> bool:
    if not data:
        return False
    printable = sum(1 for b in data if 32 <= b < 127 or b in (9, 10, 13))
    return printable == len(data)


@dataclass
class FrameDecoder:
    """Streaming decoder: :meth:`feed` bytes, get events.

    Segments that are valid frames become :class:`Frame`; segments of
    printable text (the boot line) become :class:`Text` line by line; anything
    else is a :class:`BadFrame`. After garbage the next delimiter resynchronises.
    """

    _pending: bytearray = field(default_factory=bytearray)

    def feed(self, data: bytes) -> Iterator[Event]:
        """Events completed by ``data``."""
        self._pending += data
        while True:
            cut = self._pending.find(0)
            if cut < 0:
                break
            segment = bytes(self._pending[:cut])
            del self._pending[: cut + 1]
            yield from self._segment(segment)
        yield from self._text_lines()
        if len(self._pending) > MAX_SEGMENT:
            junk = bytes(self._pending)
            self._pending.clear()
            yield BadFrame(f"{len(junk)} bytes without a delimiter", junk)

    def flush(self) -> Iterator[Event]:
        """Whatever is pending (at the end of a stream or after a silence), as text or garbage."""
        rest = bytes(self._pending)
        self._pending.clear()
        if rest:
            yield (
                Text(rest.decode("ascii", "replace"))
                if _looks_like_text(rest)
                else BadFrame("incomplete frame", rest)
            )

    def _segment(self, segment: bytes) -> Iterator[Event]:
        if not segment:
            return
        decoded = decode_segment(segment)
        if isinstance(decoded, Frame) or not _looks_like_text(segment):
            yield decoded
            return
        for line in segment.decode("ascii").splitlines():
            if line.strip():
                yield Text(line)

    def _text_lines(self) -> Iterator[Event]:
        """Complete text lines at the start of the pending bytes (before any frame)."""
        while True:
            newline = self._pending.find(b"\n")
            if newline < 0:
                return
            head = bytes(self._pending[: newline + 1])
            if not _looks_like_text(head):
                return
            del self._pending[: newline + 1]
            line = head.decode("ascii").rstrip("\r\n")
            if line.strip():
                yield Text(line)


# --------------------------------------------------------------------------
# Payloads
# --------------------------------------------------------------------------


class _Reader:
    def __init__(self, data: bytes, what: str) -> None:
        self.data = data
        self.pos = 0
        self.what = what

    def take(self, fmt: str) -> tuple[Any, ...]:
        s = struct.Struct("<" + fmt)
        if self.pos + s.size > len(self.data):
            raise ProtocolError(f"{self.what} payload is truncated ({len(self.data)} bytes)")
        values = s.unpack_from(self.data, self.pos)
        self.pos += s.size
        return values

    def raw(self, n: int) -> bytes:
        if self.pos + n > len(self.data):
            raise ProtocolError(f"{self.what} payload is truncated ({len(self.data)} bytes)")
        chunk = self.data[self.pos : self.pos + n]
        self.pos += n
        return chunk

    def string(self) -> str:
        (n,) = self.take("B")
        return self.raw(n).decode("ascii", "replace")


FLAG_PROFILE = 0x01
FLAG_VIRTUAL_TIME = 0x02
FLAG_CYCLES = 0x04
DTYPES = {1: "int8"}


@dataclass(frozen=True)
class DeviceInfo:
    """What a device announces (INFO_RESP)."""

    protocol_version: int
    max_payload: int
    flags: int
    input_dtype: str
    output_dtype: str
    input_size: int
    output_size: int
    input_shape: tuple[int, ...]
    output_shape: tuple[int, ...]
    input_scale: float
    input_zero_point: int
    output_scale: float
    output_zero_point: int
    arena_bytes: int
    arena_used_bytes: int
    cpu_hz: int
    tick_hz: int
    board: str
    runtime: str
    model_sha256: str
    timer: str
    firmware_version: str

    @property
    def profiling(self) -> bool:
        """The firmware records per-layer ticks (built with -DMNMCU_PROFILE)."""
        return bool(self.flags & FLAG_PROFILE)

    @property
    def virtual_time(self) -> bool:
        """Ticks are a simulator's virtual time (QEMU: instructions with -icount shift=0)."""
        return bool(self.flags & FLAG_VIRTUAL_TIME)

    @property
    def has_cycles(self) -> bool:
        """The device has a cycle counter (DWT CYCCNT, CCOUNT)."""
        return bool(self.flags & FLAG_CYCLES)

    @classmethod
    def parse(cls, payload: bytes) -> DeviceInfo:
        """Parse an INFO_RESP payload; raises :class:`ProtocolError`."""
        r = _Reader(payload, "INFO")
        version, max_payload, flags, in_dt, out_dt, _ = r.take("HHBBBB")
        in_size, out_size, in_rank, out_rank, _ = r.take("IIBBH")
        in_shape = r.take("4i")
        out_shape = r.take("4i")
        in_scale, in_zp, out_scale, out_zp = r.take("fifi")
        arena, arena_used, cpu_hz, tick_hz = r.take("IIII")
        board, runtime, sha, timer, fw = (r.string() for _ in range(5))
        if in_rank > 4 or out_rank > 4:
            raise ProtocolError(f"INFO announces ranks {in_rank} and {out_rank} (at most 4)")
        return cls(
            protocol_version=version,
            max_payload=max_payload,
            flags=flags,
            input_dtype=DTYPES.get(in_dt, f"dtype{in_dt}"),
            output_dtype=DTYPES.get(out_dt, f"dtype{out_dt}"),
            input_size=in_size,
            output_size=out_size,
            input_shape=tuple(in_shape[:in_rank]),
            output_shape=tuple(out_shape[:out_rank]),
            input_scale=in_scale,
            input_zero_point=in_zp,
            output_scale=out_scale,
            output_zero_point=out_zp,
            arena_bytes=arena,
            arena_used_bytes=arena_used,
            cpu_hz=cpu_hz,
            tick_hz=tick_hz,
            board=board,
            runtime=runtime,
            model_sha256=sha,
            timer=timer,
            firmware_version=fw,
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready data."""
        from dataclasses import asdict

        data = asdict(self)
        data["input_shape"] = list(self.input_shape)
        data["output_shape"] = list(self.output_shape)
        return data


NO_MICROS = 0xFFFFFFFF


@dataclass(frozen=True)
class ResultPayload:
    """An inference's RESULT payload."""

    input_crc: int
    ticks: int
    tick_hz: int
    cycles: int | None
    micros: int | None
    virtual_time: bool
    output: bytes
    layers: tuple[tuple[int, int], ...]

    @classmethod
    def parse(cls, payload: bytes) -> ResultPayload:
        """Parse a RESULT payload; raises :class:`ProtocolError`."""
        r = _Reader(payload, "RESULT")
        status, crc, lo, hi, hz, cycles, micros, flags, _, n_layers, out_size = r.take(
            "iIIIIIIBBHI"
        )
        if status != 0:
            raise ProtocolError(f"RESULT carries status {status}")
        output = r.raw(out_size)
        layers = tuple((int(i), int(t)) for i, t in (r.take("iI") for _ in range(n_layers)))
        if r.pos != len(payload):
            raise ProtocolError(f"RESULT has {len(payload) - r.pos} bytes too many")
        return cls(
            input_crc=crc,
            ticks=lo | (hi << 32),
            tick_hz=hz,
            cycles=cycles if flags & FLAG_CYCLES else None,
            micros=None if micros == NO_MICROS else micros,
            virtual_time=bool(flags & FLAG_VIRTUAL_TIME),
            output=output,
            layers=layers,
        )


@dataclass(frozen=True)
class ErrorFrame:
    """An ERROR payload: code, the request type it answers, a detail value, text."""

    code: int
    request: int
    detail: int
    text: str

    @classmethod
    def parse(cls, payload: bytes) -> ErrorFrame:
        """Parse an ERROR payload (never raises: a short one reads as much as it has)."""
        if len(payload) < 6:
            return cls(0, 0, 0, f"short error payload {payload.hex()}")
        code, request, detail = struct.unpack_from("<bBi", payload)
        return cls(code, request, detail, payload[6:].decode("ascii", "replace"))

    @property
    def framing(self) -> bool:
        """The device could not read a frame (the request must be sent again)."""
        return self.code in {int(c) for c in FRAMING_ERRORS}

    def describe(self) -> str:
        """E.g. ``error CRC (-5): CRC-32 mismatch``."""
        try:
            name = ErrorCode(self.code).name
        except ValueError:
            name = "UNKNOWN"
        return f"error {name} ({self.code}): {self.text} (detail {self.detail})"


def input_payload(offset: int, data: bytes) -> bytes:
    """An INPUT payload: where ``data`` goes in the input tensor."""
    return struct.pack("<I", offset) + data


def infer_payload(input_crc: int, profile: bool) -> bytes:
    """An INFER payload."""
    return struct.pack("<IB", input_crc, FLAG_PROFILE if profile else 0)
