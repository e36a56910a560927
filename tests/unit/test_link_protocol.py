"""The host's frame codec (mnmcu.link.protocol) with hypothesis: round trips,
arbitrary bytes, damaged frames, text between frames."""

from __future__ import annotations

import struct
import zlib

from cobs import cobs
from hypothesis import given, settings
from hypothesis import strategies as st

from mnmcu.link.protocol import (
    BadFrame,
    DeviceInfo,
    Frame,
    FrameDecoder,
    ResultPayload,
    Text,
    decode_segment,
    encode_frame,
)

EXAMPLES = settings(max_examples=400, deadline=None)
byte = st.integers(0, 255)
payloads = st.binary(max_size=600)


def frames_of(events: list[object]) -> list[Frame]:
    return [e for e in events if isinstance(e, Frame)]


@EXAMPLES
@given(byte, byte, payloads, st.integers(1, 64))
def test_round_trip_in_any_chunking(type_: int, seq: int, payload: bytes, chunk: int) -> None:
    wire = encode_frame(type_, seq, payload)
    assert wire[0] == 0 and wire[-1] == 0 and 0 not in wire[1:-1]
    decoder = FrameDecoder()
    events = [e for i in range(0, len(wire), chunk) for e in decoder.feed(wire[i : i + chunk])]
    assert events == [Frame(type_, seq, payload)]


@EXAMPLES
@given(st.binary(max_size=2000))
def test_any_bytes_never_raise_and_only_checked_frames_pass(data: bytes) -> None:
    events = list(FrameDecoder().feed(data)) + list(FrameDecoder().feed(data[:-1]))
    assert len(frames_of(events)) <= 2 * (data.count(0) + 1)
    for frame in frames_of(events):
        # Only a segment with the right length field and CRC-32 becomes a frame.
        raw = cobs.decode(encode_frame(frame.type, frame.seq, frame.payload)[1:-1])
        assert struct.unpack_from("<H", raw, 2)[0] == len(frame.payload)
        assert struct.unpack_from("<I", raw, len(raw) - 4)[0] == zlib.crc32(raw[:-4])


@EXAMPLES
@given(byte, byte, payloads, st.data())
def test_every_damaged_frame_is_rejected(
    type_: int, seq: int, payload: bytes, data: st.DataObject
) -> None:
    wire = bytearray(encode_frame(type_, seq, payload))
    at = data.draw(st.integers(1, len(wire) - 2), label="at")
    kind = data.draw(st.sampled_from(["flip", "drop", "insert", "dup"]), label="kind")
    if kind == "flip":
        wire[at] ^= 1 << data.draw(st.integers(0, 7))
        added = 1
    elif kind == "drop":
        del wire[at]
        added = 1
    elif kind == "insert":
        added = data.draw(byte)
        wire.insert(at, added)
    else:
        added = wire[at]
        wire.insert(at, added)
    events = list(FrameDecoder().feed(bytes(wire)))
    original = Frame(type_, seq, payload)
    assert all(f == original for f in frames_of(events))
    if added != 0:  # (an extra delimiter next to the frame's own is harmless)
        assert original not in events, (kind, at)


@EXAMPLES
@given(st.binary(min_size=1, max_size=300).filter(lambda b: 0 not in b), byte, payloads)
def test_garbage_then_frame_resynchronises(garbage: bytes, seq: int, payload: bytes) -> None:
    events = list(FrameDecoder().feed(garbage + encode_frame(0x84, seq, payload)))
    assert events[-1] == Frame(0x84, seq, payload)
    assert all(isinstance(e, BadFrame | Text) for e in events[:-1])


def test_boot_line_and_frames_share_the_port() -> None:
    boot = b"mnmcu: board=qemu-m4 runtime=aot model=661fabdd02e5 ok=1\r\n"
    wire = boot + encode_frame(0x82, 3, b"hi") + encode_frame(0x83, 4, b"")
    events = list(FrameDecoder().feed(wire))
    assert events == [
        Text("mnmcu: board=qemu-m4 runtime=aot model=661fabdd02e5 ok=1"),
        Frame(0x82, 3, b"hi"),
        Frame(0x83, 4, b""),
    ]


def test_length_field_and_crc_are_checked() -> None:
    body = struct.pack("<BBH", 1, 2, 5) + b"abc"  # says 5, carries 3
    assert isinstance(
        decode_segment(cobs.encode(body + struct.pack("<I", zlib.crc32(body)))), BadFrame
    )
    good = struct.pack("<BBH", 1, 2, 3) + b"abc"
    assert decode_segment(cobs.encode(good + struct.pack("<I", zlib.crc32(good)))) == Frame(
        1, 2, b"abc"
    )
    bad_crc = cobs.encode(good + struct.pack("<I", zlib.crc32(good) ^ 1))
    assert decode_segment(bad_crc) == BadFrame("CRC-32 mismatch", bad_crc)


@EXAMPLES
@given(st.binary(max_size=200))
def test_payload_parsers_raise_only_protocol_errors(data: bytes) -> None:
    from mnmcu.link.protocol import ErrorFrame, ProtocolError

    for parse in (DeviceInfo.parse, ResultPayload.parse):
        try:
            parse(data)
        except ProtocolError:
            pass
    ErrorFrame.parse(data)
