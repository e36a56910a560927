"""A checked reader of FlatBuffers tables, for .tflite files from anywhere.

A table is addressed by the field numbers of its schema (field ``n`` sits
at vtable slot ``4 + 2n``; for TFLite see the ``Offset(...)`` calls in
``ai_edge_litert/schema_py_generated.py``). Every offset, vector length and
string is checked against the end of the file before it is read, so a
forged file gives :class:`Corrupt` naming what was read, never a read
of other bytes, a wrapped-around negative offset or a huge allocation.
What is read must also pass the FlatBuffers verifier's rules (the one LiteRT
runs; TFLite Micro on a device runs none): tables, offsets and scalars
aligned to their size, offsets non-zero and below 2^31, strings terminated
by a zero byte; vector data is aligned to its element size, as a FlatBuffers
builder writes it. Vectors of numbers come back as tuples or read-only numpy
views of the file.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from functools import lru_cache
from typing import Any

import numpy as np

_I32 = struct.Struct("<i").unpack_from
_U32 = struct.Struct("<I").unpack_from
_U16 = struct.Struct("<H").unpack_from

# Scalar formats by name, for Table.scalar.
FORMATS = {
    "int8": struct.Struct("<b"),
    "uint8": struct.Struct("<B"),
    "int32": struct.Struct("<i"),
    "uint32": struct.Struct("<I"),
    "uint64": struct.Struct("<Q"),
}


class Corrupt(ValueError):
    """A table, vector or string outside the file, misaligned or malformed."""


class OutOfBounds(Corrupt):
    """A table, vector or string that does not lie inside the file."""

    def __init__(self, what: str, pos: int, size: int, file_size: int) -> None:
        super().__init__(
            f"{what} (bytes {pos} to {pos + size}) lies outside the file of {file_size} bytes"
        )


def _aligned(what: str, pos: int, alignment: int) -> None:
    if pos % alignment:
        raise Corrupt(f"{what} at byte {pos} is not aligned to {alignment} bytes")


class TooMany(ValueError):
    """A vector with more entries than the reader was told to accept."""

    def __init__(self, what: str, count: int, limit: int) -> None:
        super().__init__(f"{what} has {count:,} entries, more than the {limit:,} mnmcu reads")


@lru_cache(maxsize=256)
def _slots(count: int) -> struct.Struct:
    return struct.Struct(f"<{count}H")


def root(buf: bytes, what: str) -> Table:
    """The root table of ``buf``."""
    if len(buf) < 8:
        raise OutOfBounds(what, 0, 8, len(buf))
    return Table(buf, _U32(buf, 0)[0], what)


class Table:
    """One table: its fields read by field number, each read checked against the file."""

    __slots__ = ("buf", "pos", "what", "_fields")

    def __init__(self, buf: bytes, pos: int, what: str) -> None:
        size = len(buf)
        if pos < 0 or pos + 4 > size:
            raise OutOfBounds(what, pos, 4, size)
        if pos & 3:
            _aligned(what, pos, 4)
        vtable = pos - _I32(buf, pos)[0]
        if vtable < 0 or vtable + 4 > size:
            raise OutOfBounds(f"the field table of {what}", vtable, 4, size)
        if vtable & 1:
            _aligned(f"the field table of {what}", vtable, 2)
        vsize = _U16(buf, vtable)[0]
        if vtable + vsize > size:
            raise OutOfBounds(f"the field table of {what}", vtable, vsize, size)
        if vsize < 4 or vsize % 2:
            raise Corrupt(f"the field table of {what} has a size of {vsize} bytes")
        self.buf, self.pos, self.what = buf, pos, what
        self._fields = _slots(max(vsize - 4, 0) // 2).unpack_from(buf, vtable + 4)

    def present(self, field: int) -> bool:
        """Whether field ``field`` is stored (absent fields take their default)."""
        return field < len(self._fields) and self._fields[field] != 0

    def _at(self, field: int) -> int:
        fields = self._fields
        return self.pos + fields[field] if field < len(fields) and fields[field] else 0

    def _target(self, field: int, what: str) -> int:
        """Where the offset stored in ``field`` points (0 if the field is absent)."""
        at = self._at(field)
        if not at:
            return 0
        if at + 4 > len(self.buf):
            raise OutOfBounds(what, at, 4, len(self.buf))
        if at & 3:
            _aligned(f"the offset of {what}", at, 4)
        offset = int(_U32(self.buf, at)[0])
        if not 0 < offset < 1 << 31:
            raise Corrupt(f"the offset of {what} at byte {at} is {offset}")
        return at + offset

    def scalar(self, field: int, kind: str, default: int = 0) -> int:
        """A scalar field of type ``kind`` (a key of :data:`FORMATS`)."""
        at = self._at(field)
        if not at:
            return default
        fmt = FORMATS[kind]
        if at + fmt.size > len(self.buf):
            raise OutOfBounds(f"field {field} of {self.what}", at, fmt.size, len(self.buf))
        if at % fmt.size:
            _aligned(f"field {field} of {self.what}", at, fmt.size)
        value: int = fmt.unpack_from(self.buf, at)[0]
        return value

    def table(self, field: int, what: str) -> Table | None:
        """A sub-table, or None when absent."""
        target = self._target(field, what)
        return Table(self.buf, target, what) if target else None

    def _vector(self, field: int, item: int, what: str) -> tuple[int, int]:
        """(start, count) of a vector field; (0, 0) when absent."""
        start = self._target(field, what)
        if not start:
            return 0, 0
        size = len(self.buf)
        if start + 4 > size:
            raise OutOfBounds(f"the length of {what}", start, 4, size)
        if start & 3:
            _aligned(f"the length of {what}", start, 4)
        count = int(_U32(self.buf, start)[0])
        if start + 4 + count * item > size:
            raise OutOfBounds(what, start + 4, count * item, size)
        if item > 4 and count and (start + 4) % item:
            _aligned(what, start + 4, item)
        return start + 4, count

    def bytes_view(self, field: int, what: str) -> np.ndarray:
        """A vector of bytes as a read-only uint8 view of the file (empty if absent)."""
        start, count = self._vector(field, 1, what)
        return np.frombuffer(self.buf, np.uint8, count, start)

    def numbers(
        self, field: int, code: str, what: str, limit: int | None = None
    ) -> tuple[Any, ...]:
        """A vector of numbers as a tuple (empty if absent); at most ``limit`` long.

        ``code`` is the element's struct code: ``i`` int32, ``q`` int64, ``f`` float32.
        """
        start, count = self._vector(field, _SIZES[code], what)
        if limit is not None and count > limit:
            raise TooMany(what, count, limit)
        return _vector_format(count, code).unpack_from(self.buf, start) if count else ()

    def string(self, field: int, what: str) -> bytes:
        """A string's bytes, undecoded (empty if absent)."""
        start, count = self._vector(field, 1, what)
        if not start:
            return b""
        end = start + count
        if end >= len(self.buf) or self.buf[end] != 0:
            raise Corrupt(f"{what} (bytes {start} to {end}) does not end with a zero byte")
        return bytes(self.buf[start:end])

    def tables(self, field: int, item: str, limit: int | None = None) -> Tables:
        """A vector of tables named ``item 0``, ``item 1``...; at most ``limit`` long."""
        what = f"the {item} list"
        start, count = self._vector(field, 4, what)
        if limit is not None and count > limit:
            raise TooMany(what, count, limit)
        return Tables(self.buf, start, count, item)


_SIZES = {"i": 4, "q": 8, "f": 4}


@lru_cache(maxsize=512)
def _vector_format(count: int, code: str) -> struct.Struct:
    return struct.Struct(f"<{count}{code}")


class Tables:
    """A vector of tables, each read when it is asked for."""

    def __init__(self, buf: bytes, start: int, count: int, item: str) -> None:
        self.buf, self.start, self.count, self.item = buf, start, count, item

    def __len__(self) -> int:
        return self.count

    def __getitem__(self, index: int) -> Table:
        if not 0 <= index < self.count:
            raise IndexError(index)
        at = self.start + 4 * index
        return Table(self.buf, at + int(_U32(self.buf, at)[0]), f"{self.item} {index}")

    def __iter__(self) -> Iterator[Table]:
        return (self[i] for i in range(self.count))
