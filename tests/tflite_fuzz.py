"""A structure-aware mutation fuzzer for .tflite models.

Seeds are real int8 MobileNets. A mutant is a seed with one to three
mutations. Most write an interesting value into one field that LiteRT's
generated TFLite schema accessors locate in the file: a shape dimension or
rank, a tensor type, buffer or name, a quantization scale, zero point or
axis, an op's opcode index, inputs or outputs, the graph's inputs and
outputs, an operator code, an option field, a buffer's bytes or length, the
order of ops or tensors. Some rebuild the model through the schema's object
API (``ModelT``): ops dropped, duplicated or moved, dimensions added or
removed, buffers resized, quantization removed or reshaped, options of
another op, features mnmcu does not implement, every spatial size scaled up
(a big but consistent model). Some flip random bytes or cut the file short.

Each mutant runs through one path, in this process:

* ``analyze``: what ``mnmcu analyze`` does without the TFLite Micro
  measurement (parse and validation, the int8 checks, the memory plan and
  its independent check, the analysis on a board), then the analysis'
  JSON and tables, with consistency checks on the figures;
* ``emit``: the analyze path, then ``emit_project`` (AOT, qemu-m4) and
  ``verify`` without sanitizers (compile, run, LiteRT, TFLite Micro), which
  must be bit-exact.

A mutant is *accepted* (processed, results consistent), *refused* (an
``MnmcuError`` with exit code 1 and a one-line message) or a *failure*
(anything else), recorded with its number so that ``--replay N`` reruns it.

    python -m tests.tflite_fuzz --path analyze --count 20000 --seed 1 A.tflite B.tflite
"""

from __future__ import annotations

import argparse
import json
import math
import random
import re
import shutil
import struct
import sys
import tempfile
import time
import traceback
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

INT32 = (0, 1, -1, 2, 3, 4, 7, 8, 255, 256, 1000, 65536, 200000, 2**24, 2**31 - 1, -(2**31), -2)
FLOATS = (0.0, -0.0, -1.0, math.nan, math.inf, -math.inf, 1e-45, 1e-38, 1e-20, 1e-6, 1.0, 1e10)
INT64 = (-129, 128, -128, 127, 255, 256, -(2**63), 2**63 - 1, 0, 1, -1)
# Boards the analyze path judges fit on, in turn: Arm DSP and Helium kernels, portable ones.
BOARDS = ("qemu-m4", "esp32s3", "esp32s3", "qemu-m55", "esp32s3", "esp32s3")
FORMATS = {"i": "<i", "I": "<I", "b": "<b", "B": "<B", "f": "<f", "q": "<q", "H": "<H"}


@dataclass(frozen=True)
class Field:
    """One value in the file: kind, byte position, struct format, and the seed's value."""

    kind: str
    pos: int
    fmt: str
    value: Any = None
    size: int = 0  # for byte ranges (names, buffer data)


@dataclass
class Seed:
    """A seed model: its bytes, the fields located in them, and counts for index values."""

    name: str
    buf: bytes
    fields: dict[str, list[Field]]
    tensors: int
    ops: int
    buffers: int
    codes: int
    # (pos of the offset, target) of each entry of the operator and tensor vectors
    op_slots: list[tuple[int, int]] = field(default_factory=list)
    tensor_slots: list[tuple[int, int]] = field(default_factory=list)


def _schema() -> Any:
    from ai_edge_litert import schema_py_generated as schema

    return schema


def _slot(tab: Any, voffset: int) -> int | None:
    o = tab.Offset(voffset)
    return tab.Pos + o if o else None


def _vector(tab: Any, voffset: int) -> tuple[int, int] | None:
    """(start of the data, length) of a vector field, or None."""
    o = tab.Offset(voffset)
    return (tab.Vector(o), tab.VectorLen(o)) if o else None


def _add_scalar(fields: dict[str, list[Field]], kind: str, tab: Any, voffset: int, fmt: str):
    pos = _slot(tab, voffset)
    if pos is not None:
        value = struct.unpack_from(FORMATS[fmt], tab.Bytes, pos)[0]
        fields.setdefault(kind, []).append(Field(kind, pos, fmt, value))


def _add_vector(
    fields: dict[str, list[Field]], kind: str, tab: Any, voffset: int, fmt: str, width: int
):
    found = _vector(tab, voffset)
    if found is None:
        return
    start, n = found
    fields.setdefault(kind + "_len", []).append(Field(kind + "_len", start - 4, "I", n))
    for i in range(n):
        pos = start + width * i
        value = struct.unpack_from(FORMATS[fmt], tab.Bytes, pos)[0]
        fields.setdefault(kind, []).append(Field(kind, pos, fmt, value))


def _table_slots(tab: Any, voffset: int) -> list[tuple[int, int]]:
    start, n = _vector(tab, voffset) or (0, 0)
    return [(start + 4 * i, start + 4 * i + struct.unpack_from("<I", tab.Bytes, start + 4 * i)[0])
            for i in range(n)]  # fmt: skip


def make_seed(name: str, buf: bytes) -> Seed:
    """Locate every mutable field of ``buf`` with the generated schema accessors."""
    schema = _schema()
    m = schema.Model.GetRootAs(buf, 0)
    sg = m.Subgraphs(0)
    fields: dict[str, list[Field]] = {}
    _add_scalar(fields, "version", m._tab, 4, "I")
    for i in range(m.OperatorCodesLength()):
        code = m.OperatorCodes(i)
        _add_scalar(fields, "builtin_code", code._tab, 10, "i")
        _add_scalar(fields, "deprecated_code", code._tab, 4, "b")
    for i in range(sg.TensorsLength()):
        t = sg.Tensors(i)
        _add_vector(fields, "dim", t._tab, 4, "i", 4)
        _add_scalar(fields, "type", t._tab, 6, "b")
        _add_scalar(fields, "buffer", t._tab, 8, "I")
        found = _vector(t._tab, 10)
        if found:
            fields.setdefault("name", []).append(Field("name", found[0], "", size=found[1]))
            fields.setdefault("name_len", []).append(Field("name_len", found[0] - 4, "I", found[1]))
        q = t.Quantization()
        if q is not None:
            _add_vector(fields, "scale", q._tab, 8, "f", 4)
            _add_vector(fields, "zero_point", q._tab, 10, "q", 8)
            _add_scalar(fields, "axis", q._tab, 16, "i")
    for i in range(sg.OperatorsLength()):
        op = sg.Operators(i)
        _add_scalar(fields, "opcode_index", op._tab, 4, "I")
        _add_vector(fields, "op_input", op._tab, 6, "i", 4)
        _add_vector(fields, "op_output", op._tab, 8, "i", 4)
        _add_scalar(fields, "options_type", op._tab, 10, "B")
        opts = _slot(op._tab, 12)
        if opts is not None:
            table = opts + struct.unpack_from("<I", buf, opts)[0]
            vtable = table - struct.unpack_from("<i", buf, table)[0]
            vsize = struct.unpack_from("<H", buf, vtable)[0]
            offsets = sorted(
                {struct.unpack_from("<H", buf, vtable + s)[0] for s in range(4, vsize, 2)} - {0}
            )
            for k, off in enumerate(offsets):
                width = offsets[k + 1] - off if k + 1 < len(offsets) else 4
                fmt = {1: "b", 2: "H"}.get(width, "i")
                value = struct.unpack_from(FORMATS[fmt], buf, table + off)[0]
                fields.setdefault("option", []).append(Field("option", table + off, fmt, value))
    _add_vector(fields, "graph_io", sg._tab, 6, "i", 4)
    _add_vector(fields, "graph_io", sg._tab, 8, "i", 4)
    for i in range(m.BuffersLength()):
        found = _vector(m.Buffers(i)._tab, 4)
        if found and found[1]:
            fields.setdefault("data", []).append(Field("data", found[0], "", size=found[1]))
            fields.setdefault("data_len", []).append(Field("data_len", found[0] - 4, "I", found[1]))
    return Seed(
        name=name,
        buf=bytes(buf),
        fields=fields,
        tensors=sg.TensorsLength(),
        ops=sg.OperatorsLength(),
        buffers=m.BuffersLength(),
        codes=m.OperatorCodesLength(),
        op_slots=_table_slots(sg._tab, 10),
        tensor_slots=_table_slots(sg._tab, 4),
    )


# --------------------------------------------------------------------------
# Mutations in place: one field, one interesting value
# --------------------------------------------------------------------------


def _wrap(value: int, fmt: str) -> int:
    bits = struct.calcsize(FORMATS[fmt]) * 8
    value &= (1 << bits) - 1
    if fmt.islower() and value >= 1 << (bits - 1):
        value -= 1 << bits
    return value


def _index_values(rng: random.Random, seed: Seed, old: int) -> list[int]:
    n = seed.tensors
    return [*INT32, n, n - 1, n + 1, old + 1, old - 1, rng.randrange(n), rng.randrange(n)]


def _int_value(rng: random.Random, seed: Seed, f: Field) -> int:
    old = int(f.value)
    if f.kind in ("op_input", "op_output", "graph_io"):
        choices = _index_values(rng, seed, old)
    elif f.kind == "buffer":
        choices = [*INT32, seed.buffers, seed.buffers - 1, old + 1, rng.randrange(seed.buffers)]
    elif f.kind == "opcode_index":
        choices = [*INT32, seed.codes, seed.codes - 1, rng.randrange(seed.codes)]
    elif f.kind in ("builtin_code", "deprecated_code"):
        # the supported ops and a few others (SPLIT 49, CONCATENATION 2, TANH 28, CUSTOM 32)
        choices = [3, 4, 1, 40, 9, 0, 18, 117, 34, 22, 25, 114, 6, 19, 21, 77, 45, 83, 49, 2, 28,
                   32, 127, 250, -1]  # fmt: skip
    elif f.kind == "type":
        choices = list(range(-1, 20))
    elif f.kind == "dim":
        choices = [*INT32, old * 2, old + 1, old - 1, max(1, old // 2), old * 64, 4, 200000]
    elif f.kind.endswith("_len"):
        choices = [0, 1, old - 1, old + 1, old * 2, old + 4, 2**31, 2**32 - 1, 1000000]
    elif f.kind == "zero_point":
        choices = [*INT64, old + 1, old - 1]
    elif f.kind == "option":
        choices = [0, 1, 2, 3, 4, 5, 6, 7, -1, 255, 1024, 1025, 65535, 2**31 - 1, old + 1, old * 3]
    else:
        choices = [*INT32, old + 1, old - 1]
    return _wrap(rng.choice(choices), f.fmt)


def _float_value(rng: random.Random, old: float) -> float:
    scales = (2.0, 0.5, 1e3, 1e-3, 1e6, 1e-6, 1e-12, 1e12, 1.0000001, 3.0, 0.25)
    return rng.choice([*FLOATS, *(old * s for s in scales)])


def _mutate_field(rng: random.Random, seed: Seed, buf: bytearray, f: Field) -> str:
    if f.kind == "name":
        bad = rng.choice([b"\xff", b"\xc3\x28", b"\x80", b"\xed\xa0\x80", b"\xf8\x88\x80\x80\x80",
                          b"\n[env]\n", b"\x00", b"??=*/"])  # fmt: skip
        at = f.pos + rng.randrange(max(f.size, 1))
        end = min(at + len(bad), f.pos + f.size)
        buf[at:end] = bad[: end - at]
        return f"name@{f.pos}={bad[: end - at]!r}"
    if f.kind == "data":
        for _ in range(rng.choice((1, 2, 8, 64))):
            buf[f.pos + rng.randrange(f.size)] = rng.randrange(256)
        return f"data@{f.pos}"
    if f.fmt == "f":
        value: Any = _float_value(rng, float(f.value))
    else:
        value = _int_value(rng, seed, f)
    struct.pack_into(FORMATS[f.fmt], buf, f.pos, value)
    return f"{f.kind}@{f.pos}={value!r}"


def _swap(rng: random.Random, buf: bytearray, slots: list[tuple[int, int]], what: str) -> str:
    """Swap two entries of a vector of tables (its offsets are relative to each entry)."""
    i, j = rng.sample(range(len(slots)), 2)
    (pi, ti), (pj, tj) = slots[i], slots[j]
    struct.pack_into("<I", buf, pi, tj - pi)
    struct.pack_into("<I", buf, pj, ti - pj)
    return f"swap {what} {i} {j}"


# Kinds drawn for in-place mutations, with weights.
_KINDS = {
    "dim": 10, "dim_len": 3, "type": 4, "buffer": 5, "name": 4, "name_len": 1, "scale": 10,
    "scale_len": 2, "zero_point": 5, "zero_point_len": 1, "axis": 2, "opcode_index": 4,
    "op_input": 8, "op_output": 5, "op_input_len": 2, "op_output_len": 1, "options_type": 2,
    "option": 8, "graph_io": 3, "builtin_code": 3, "deprecated_code": 1, "data": 6, "data_len": 2,
    "version": 1,
}  # fmt: skip


def mutate_in_place(rng: random.Random, seed: Seed, buf: bytearray, layout: bool = True) -> str:
    """One in-place mutation (a field, a swap of ops or tensors, random bytes or a cut).

    Without ``layout`` (``buf`` was rebuilt or cut), only random bytes change.
    """
    roll = rng.random() if layout and len(buf) == len(seed.buf) else 0.1
    if roll < 0.04:
        return _swap(rng, buf, seed.op_slots, "ops")
    if roll < 0.06:
        return _swap(rng, buf, seed.tensor_slots, "tensors")
    if roll < 0.12:
        n = rng.choice((1, 2, 4, 16))
        for _ in range(n):
            buf[rng.randrange(len(buf))] = rng.randrange(256)
        return f"{n} random bytes"
    if roll < 0.14:
        cut = rng.randrange(len(buf))
        del buf[cut:]
        return f"cut at {cut}"
    kinds = [k for k in _KINDS if seed.fields.get(k)]
    kind = rng.choices(kinds, weights=[_KINDS[k] for k in kinds])[0]
    return _mutate_field(rng, seed, buf, rng.choice(seed.fields[kind]))


# --------------------------------------------------------------------------
# Mutations through the object API: each returns an undo
# --------------------------------------------------------------------------

Undo = Callable[[], None]


def _setattr(obj: Any, name: str, value: Any) -> Undo:
    old = getattr(obj, name)
    setattr(obj, name, value)
    return lambda: setattr(obj, name, old)


def _scale_spatial(m: Any, k: int) -> Undo:
    """Every H and W of rank-4 activations times k, except after a MEAN (squeeze-and-excite
    paths stay 1x1): the graph stays consistent, only larger."""
    schema = _schema()
    sg = m.subgraphs[0]
    consts = {i for i, t in enumerate(sg.tensors) if m.buffers[t.buffer].data is not None}
    pooled: set[int] = set()
    for op in sg.operators:
        code = m.operatorCodes[op.opcodeIndex].builtinCode
        ins = [t for t in op.inputs if t >= 0 and t not in consts]
        if code == schema.BuiltinOperator.MEAN or all(t in pooled for t in ins):
            pooled.update(int(t) for t in op.outputs)
    undo = []
    for i, t in enumerate(sg.tensors):
        if i not in consts and i not in pooled and t.shape is not None and len(t.shape) == 4:
            shape = np.array(t.shape).copy()
            shape[1:3] *= k
            undo.append(_setattr(t, "shape", shape))
    return lambda: [u() for u in undo]


def mutate_structure(rng: random.Random, m: Any) -> tuple[str, Undo]:
    """One mutation of the unpacked model ``m`` (schema.ModelT) and how to undo it."""
    schema = _schema()
    sg = m.subgraphs[0]
    ops, tensors = sg.operators, sg.tensors
    op = rng.choice(ops)
    t = rng.choice(tensors)
    kind = rng.choice(
        ["drop_op", "dup_op", "move_op", "add_dim", "drop_dim", "resize_buffer", "drop_quant",
         "scale_count", "zp_count", "drop_input", "add_input", "graph_inputs", "two_subgraphs",
         "options_swap", "no_options", "custom_op", "long_name", "huge_input", "batch",
         "scale_spatial", "offline_plan", "sparse", "variable", "buffer_offset", "signature",
         "details"]
    )  # fmt: skip
    if kind == "drop_op":
        i = rng.randrange(len(ops))
        removed = ops.pop(i)
        return kind, lambda: ops.insert(i, removed)
    if kind == "dup_op":
        j = rng.randrange(len(ops) + 1)
        ops.insert(j, op)
        return kind, lambda: ops.pop(j)
    if kind == "move_op":
        i, j = rng.randrange(len(ops)), rng.randrange(len(ops))
        moved = ops.pop(i)
        ops.insert(j, moved)
        return f"{kind} {i}->{j}", lambda: (ops.remove(moved), ops.insert(i, moved))
    if kind in ("add_dim", "drop_dim") and t.shape is not None and len(t.shape):
        shape = list(t.shape)
        if kind == "add_dim":
            shape.insert(rng.randrange(len(shape) + 1), rng.choice((1, 2, 3)))
        else:
            shape.pop(rng.randrange(len(shape)))
        return kind, _setattr(t, "shape", np.array(shape, np.int32))
    if kind == "resize_buffer":
        b = m.buffers[t.buffer] if t.buffer < len(m.buffers) else None
        if b is not None and b.data is not None and len(b.data):
            k = rng.choice((1, 3, 4, 16))
            data = b.data[:-k] if rng.random() < 0.5 else np.concatenate([b.data, b.data[:k]])
            return kind, _setattr(b, "data", data)
    if kind == "drop_quant":
        return kind, _setattr(t, "quantization", None)
    if kind in ("scale_count", "zp_count") and t.quantization is not None:
        q = t.quantization
        name = "scale" if kind == "scale_count" else "zeroPoint"
        values = getattr(q, name)
        if values is not None and len(values):
            grown = list(values) + [values[0]] * rng.choice((1, 2))
            return kind, _setattr(q, name, grown if rng.random() < 0.5 else list(values)[:-1])
    if kind == "drop_input" and op.inputs is not None and len(op.inputs):
        return kind, _setattr(op, "inputs", list(op.inputs)[:-1])
    if kind == "add_input":
        extra = rng.choice((-1, 0, len(tensors) - 1, rng.randrange(len(tensors))))
        return kind, _setattr(
            op, "inputs", [*(list(op.inputs) if op.inputs is not None else []), extra]
        )
    if kind == "graph_inputs":
        return kind, _setattr(sg, rng.choice(("inputs", "outputs")), rng.choice(([], [0, 1])))
    if kind == "two_subgraphs":
        return kind, _setattr(m, "subgraphs", [sg, sg])
    if kind == "options_swap":
        other = rng.choice(ops)
        u1 = _setattr(op, "builtinOptionsType", other.builtinOptionsType)
        u2 = _setattr(op, "builtinOptions", other.builtinOptions)
        return kind, lambda: (u1(), u2())
    if kind == "no_options":
        u1 = _setattr(op, "builtinOptionsType", 0)
        u2 = _setattr(op, "builtinOptions", None)
        return kind, lambda: (u1(), u2())
    if kind == "custom_op":
        code = rng.choice(m.operatorCodes)
        u1 = _setattr(code, "builtinCode", schema.BuiltinOperator.CUSTOM)
        u2 = _setattr(code, "deprecatedBuiltinCode", schema.BuiltinOperator.CUSTOM)
        u3 = _setattr(code, "customCode", rng.choice((b"\xff\xfeop", b"MyOp", b"x" * 5000)))
        return kind, lambda: (u1(), u2(), u3())
    if kind == "long_name":
        return kind, _setattr(t, "name", rng.choice((b"n" * 5000, b"\xff" * 3, b"a\nb")))
    if kind == "huge_input":
        return kind, _setattr(tensors[sg.inputs[0]], "shape", np.array([1, 200000, 200000, 3]))
    if kind == "batch":
        inp = tensors[sg.inputs[0]]
        return kind, _setattr(inp, "shape", np.array([4, *list(inp.shape)[1:]]))
    if kind == "scale_spatial":
        k = rng.choice((2, 3, 8, 64, 1000))
        return f"{kind} x{k}", _scale_spatial(m, k)
    if kind == "offline_plan":
        entry = schema.MetadataT()
        entry.name, entry.buffer = b"OfflineMemoryAllocation", rng.randrange(len(m.buffers) + 2)
        return kind, _setattr(m, "metadata", [*(m.metadata or []), entry])
    if kind == "sparse":
        return kind, _setattr(t, "sparsity", schema.SparsityParametersT())
    if kind == "variable":
        return kind, _setattr(t, "isVariable", True)
    if kind == "buffer_offset":
        b = rng.choice(m.buffers)
        return kind, _setattr(b, "offset", rng.choice((2, 1000, 2**40)))
    if kind == "signature" and m.signatureDefs:
        sig = m.signatureDefs[0]
        entry = (sig.inputs or sig.outputs or [None])[0]
        if entry is not None:
            return kind, _setattr(entry, "tensorIndex", rng.choice((len(tensors), 2**31)))
    if kind == "details" and t.quantization is not None:
        return kind, _setattr(t.quantization, "detailsType", 1)
    return "no-op", lambda: None


def pack(m: Any) -> bytes:
    """A schema.ModelT as .tflite bytes."""
    import flatbuffers

    builder = flatbuffers.Builder(1024)
    builder.Finish(m.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


def forge(model: bytes, edit: Callable[[Any], object]) -> bytes:
    """``model`` unpacked with the schema's object API (ModelT), edited, packed again."""
    m = _schema().ModelT.InitFromPackedBuf(model, 0)
    edit(m)
    return pack(m)


@dataclass
class Mutator:
    """Makes mutant ``i`` of a run: deterministic in (run seed, i)."""

    seeds: list[Seed]
    run_seed: int
    structural: float = 0.05
    weights: list[float] | None = None
    _unpacked: dict[str, Any] = field(default_factory=dict)

    def mutant(self, i: int) -> tuple[Seed, bytes, list[str]]:
        rng = random.Random(f"{self.run_seed}:{i}")
        seed = rng.choices(self.seeds, weights=self.weights)[0]
        notes: list[str] = []
        if rng.random() < self.structural:
            if seed.name not in self._unpacked:
                self._unpacked[seed.name] = _schema().ModelT.InitFromPackedBuf(seed.buf, 0)
            m = self._unpacked[seed.name]
            note, undo = mutate_structure(rng, m)
            try:
                buf = bytearray(pack(m))
            finally:
                undo()
            notes.append(note)
            if rng.random() < 0.3:
                notes.append(mutate_in_place(rng, seed, buf, layout=False))
            return seed, bytes(buf), notes
        buf = bytearray(seed.buf)
        for _ in range(rng.choice((1, 1, 1, 2, 3))):
            notes.append(mutate_in_place(rng, seed, buf))
        return seed, bytes(buf), notes


# --------------------------------------------------------------------------
# Running mutants through mnmcu
# --------------------------------------------------------------------------


@dataclass
class Outcome:
    kind: str  # accepted, refused, failure
    stage: str = ""  # where it was refused or failed: analyze, emit
    detail: str = ""


def _category(message: str) -> str:
    """A refusal's message without its file, numbers and names: refusals of one kind group."""
    text = re.sub(r"^(\S*mutant\.tflite|model)\b", "MODEL", message)
    text = re.sub(r"'[^']*'", "'…'", text)
    text = re.sub(r"\[[^\]]*\]", "[…]", text)
    return re.sub(r"-?\d[\d,.e+-]*", "N", text)[:110]


def check_analysis(analysis: Any, graph: Any) -> None:
    """Figures of an accepted model must be sane and bounded by the validation limits."""
    from mnmcu import validate

    assert analysis.macs >= 0 and analysis.params >= 0, "negative totals"
    assert analysis.macs == sum(layer.macs for layer in analysis.layers)
    assert all(layer.activation_bytes > 0 for layer in analysis.layers), "empty activation"
    live = [t.nbytes for t in graph.tensors if not t.is_constant]
    assert 0 < analysis.activation_peak_bytes <= sum(live), "peak outside (0, all activations]"
    assert analysis.activation_peak_bytes <= validate.MAX_ACTIVATION_BYTES
    for est in analysis.estimates.values():
        assert 0 < est.ram_bytes <= validate.MAX_ACTIVATION_BYTES + validate.MIB, est
        assert 0 < est.flash_bytes <= 3 * validate.MAX_MODEL_BYTES, est
        assert est.ram_bytes == sum(est.ram_parts.values())
    for verdict in analysis.verdicts.values():
        for what in ("flash", "ram"):
            res = verdict[what]
            percent = res["margin_percent"]
            assert percent is None or (math.isfinite(percent) and percent <= 100.0), res


def run_analyze(model: bytes, board: Any, render: bool) -> Any:
    """What ``mnmcu analyze`` does without the TFLite Micro measurement, then checks."""
    from mnmcu.analyze import analyze
    from mnmcu.console import out
    from mnmcu.emit.aot import board_kernels, firmware_plan
    from mnmcu.graph import check_int8_mobilenet, load_graph
    from mnmcu.plan import check_plan
    from mnmcu.quantize import check_softmax_scale
    from mnmcu.render import analysis_tables

    graph = load_graph(model)  # the steps of mnmcu.pipeline.analyze_file
    check_int8_mobilenet(graph)
    check_softmax_scale(graph)
    plan = firmware_plan(graph, board_kernels(board))
    analysis = analyze(graph, board, aot_arena=plan.arena_bytes)
    problems = check_plan(graph, plan)
    assert not problems, f"plan overlaps: {problems[:2]}"
    check_analysis(analysis, graph)
    if render:
        json.dumps(analysis.to_dict(), allow_nan=False)
        with out.capture():
            analysis_tables(analysis, board)
    return analysis


def run_emit(path: Path, board: Any, work: Path, sanitize: bool = False) -> None:
    """``mnmcu emit`` (AOT project) and ``mnmcu verify --count 3`` (``--no-sanitize``)."""
    from mnmcu.emit.project import emit_project
    from mnmcu.verify import verify

    emit_project(path, board, work / "project", runtime="aot", force=True)
    keep = work / "verify"  # verify --keep wants a new folder: the last mutant's goes first
    shutil.rmtree(keep, ignore_errors=True)
    result = verify(path, count=3, sanitize=sanitize, workdir=keep)
    assert result.bit_exact, (
        f"not bit-exact: {result.litert_mismatches} bytes differ from LiteRT, "
        f"{result.tflm_mismatches} from TFLite Micro, first bad layer {result.first_bad_layer}"
    )


def process(
    buf: bytes, path_kind: str, board: Any, work: Path, render: bool = False, sanitize: bool = False
) -> Outcome:
    """Run one mutant through ``path_kind`` and classify what happened."""
    from mnmcu.errors import MnmcuError

    stage = "analyze"
    try:
        run_analyze(buf, board, render or path_kind == "emit")
        if path_kind == "emit":
            stage = "emit"
            path = work / "mutant.tflite"
            path.write_bytes(buf)
            run_emit(path, board, work, sanitize)
    except MnmcuError as exc:
        message = str(exc)
        if exc.exit_code != 1 or "\n" in message or not message.strip():
            return Outcome("failure", stage, f"exit {exc.exit_code}: {message!r}")
        return Outcome("refused", stage, message)
    except Exception:  # anything else is a bug of mnmcu (or a broken consistency check)
        return Outcome("failure", stage, traceback.format_exc(limit=6))
    return Outcome("accepted")


@dataclass
class Report:
    """What a run found."""

    path: str
    mutants: int = 0
    outcomes: Counter[str] = field(default_factory=Counter)
    refusals: Counter[str] = field(default_factory=Counter)
    by_seed: Counter[str] = field(default_factory=Counter)
    failures: list[dict[str, Any]] = field(default_factory=list)
    accepted_mutants: list[int] = field(default_factory=list)
    # the first mutant of each kind of refusal: its number, stage and message
    refused_mutants: dict[str, dict[str, Any]] = field(default_factory=dict)
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "mutants": self.mutants,
            "outcomes": dict(self.outcomes),
            "by_seed": dict(self.by_seed),
            "refusals": dict(self.refusals.most_common()),
            "failures": self.failures,
            "accepted_mutants": self.accepted_mutants[:200],
            "refused_mutants": self.refused_mutants,
            "seconds": round(self.seconds, 1),
        }


def run(
    mutator: Mutator,
    count: int,
    path_kind: str,
    board_ids: tuple[str, ...] = BOARDS,
    start: int = 0,
    progress: Path | None = None,
    sanitize: bool = False,
) -> Report:
    """Mutants ``start`` to ``start + count - 1`` through ``path_kind``."""
    from mnmcu.boards import get_board

    boards = [get_board(b) for b in board_ids]
    report = Report(path_kind)
    began = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="mnmcu-fuzz-") as tmp:
        for i in range(start, start + count):
            if progress is not None:
                progress.write_text(str(i))
            seed, buf, notes = mutator.mutant(i)
            board = boards[i % len(boards)] if path_kind == "analyze" else boards[0]
            outcome = process(buf, path_kind, board, Path(tmp), i % 16 == 0, sanitize)
            report.mutants += 1
            report.outcomes[outcome.kind] += 1
            report.by_seed[f"{seed.name} {outcome.kind}"] += 1
            if outcome.kind == "accepted":
                report.accepted_mutants.append(i)
            elif outcome.kind == "refused":
                category = _category(outcome.detail)
                report.refusals[category] += 1
                report.refused_mutants.setdefault(
                    category, {"mutant": i, "stage": outcome.stage, "message": outcome.detail}
                )
            else:
                report.failures.append(
                    {
                        "mutant": i,
                        "seed": seed.name,
                        "stage": outcome.stage,
                        "mutations": notes,
                        "error": outcome.detail,
                    }
                )
    report.seconds = time.monotonic() - began
    return report


def load_seeds(paths: list[Path]) -> list[Seed]:
    return [make_seed(p.stem, p.read_bytes()) for p in paths]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("models", nargs="+", type=Path)
    parser.add_argument("--path", choices=("analyze", "emit"), default="analyze")
    parser.add_argument("--count", type=int, default=1000)
    parser.add_argument("--start", type=int, default=0)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--weights", default=None, help="Comma-separated weight per model.")
    parser.add_argument("--progress", type=Path, default=None)
    parser.add_argument(
        "--sanitize", action="store_true", help="verify with ASan/UBSan too (no memory limit)"
    )
    parser.add_argument("--replay", type=int, default=None, help="Run mutant N and show it.")
    parser.add_argument("--write", type=Path, default=None, help="With --replay: save it here.")
    args = parser.parse_args(argv)
    weights = [float(w) for w in args.weights.split(",")] if args.weights else None
    mutator = Mutator(load_seeds(args.models), args.seed, weights=weights)
    if args.replay is not None:
        seed, buf, notes = mutator.mutant(args.replay)
        if args.write:
            args.write.write_bytes(buf)
        print(f"mutant {args.replay} of {seed.name}: {notes}")
        from mnmcu.boards import get_board

        with tempfile.TemporaryDirectory() as tmp:
            outcome = process(buf, args.path, get_board("qemu-m4"), Path(tmp), render=True)
        print(outcome.kind, outcome.stage, outcome.detail)
        return 0
    report = run(
        mutator,
        args.count,
        args.path,
        start=args.start,
        progress=args.progress,
        sanitize=args.sanitize,
    )
    print(json.dumps(report.to_dict(), indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
