"""The checked flatbuffer reader against LiteRT's generated bindings, and what it refuses."""

from __future__ import annotations

import struct
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from mnmcu import flatbuf, validate
from mnmcu.errors import InvalidModel
from mnmcu.graph import load_graph

SAMPLE = Path(__file__).resolve().parents[2] / "firmware" / "sample" / "mnmcu_sample.tflite"


def test_reader_matches_the_generated_bindings() -> None:
    """Every field mnmcu reads by number equals what the schema's object API decodes."""
    from ai_edge_litert import schema_py_generated as schema

    buf = SAMPLE.read_bytes()
    graph = load_graph(buf)
    model = schema.ModelT.InitFromPackedBuf(buf, 0)
    sg = model.subgraphs[0]
    assert graph.inputs == tuple(sg.inputs) and graph.outputs == tuple(sg.outputs)
    types = {v: k.lower() for k, v in vars(schema.TensorType).items() if not k.startswith("_")}
    for t, ref in zip(graph.tensors, sg.tensors, strict=True):
        assert t.name == ref.name.decode() and t.shape == tuple(ref.shape)
        assert t.dtype == types[ref.type]
        q = ref.quantization
        if q is not None and q.scale is not None and len(q.scale):
            assert t.quantization is not None
            assert t.quantization.scale == tuple(float(s) for s in q.scale)
            assert t.quantization.zero_point == tuple(int(z) for z in q.zeroPoint)
            assert t.quantization.axis == q.quantizedDimension
        else:
            assert t.quantization is None
        data = model.buffers[ref.buffer].data
        if data is not None and len(data):
            assert t.data is not None and t.data.tobytes() == np.asarray(data).tobytes()
        else:
            assert t.data is None
    ops = {v: k for k, v in vars(schema.BuiltinOperator).items() if not k.startswith("_")}
    for op, ref in zip(graph.ops, sg.operators, strict=True):
        assert op.opcode == ops[model.operatorCodes[ref.opcodeIndex].builtinCode]
        assert op.inputs == tuple(ref.inputs) and op.outputs == tuple(ref.outputs)
        if ref.builtinOptions is not None:
            keys = {key.lower() for key in vars(ref.builtinOptions)}
            assert {k.replace("_", "") for k in op.options} == keys
            assert op.options.get("stride_w", 1) == getattr(ref.builtinOptions, "strideW", 1)


def test_offsets_outside_the_file_are_refused() -> None:
    buf = bytearray(SAMPLE.read_bytes())
    struct.pack_into("<I", buf, 0, len(buf) + 100)
    with pytest.raises(flatbuf.OutOfBounds, match="outside the file"):
        flatbuf.root(bytes(buf), "the model")


def test_misaligned_tables_are_refused() -> None:
    buf = bytearray(SAMPLE.read_bytes())
    struct.pack_into("<I", buf, 0, struct.unpack_from("<I", buf, 0)[0] + 1)
    with pytest.raises(flatbuf.Corrupt, match="not aligned"):
        flatbuf.root(bytes(buf), "the model")


def test_a_string_without_its_zero_byte_is_refused() -> None:
    from ai_edge_litert import schema_py_generated as schema

    buf = bytearray(SAMPLE.read_bytes())
    name = schema.Model.GetRootAs(buf, 0).Subgraphs(0).Tensors(3)._tab
    start = name.Vector(name.Offset(10))
    length = struct.unpack_from("<I", buf, start - 4)[0]
    buf[start + length] = ord("x")
    with pytest.raises(InvalidModel, match="tensor 3 .* does not end with a zero byte"):
        load_graph(bytes(buf))


def test_vector_limits_apply_before_reading() -> None:
    model = flatbuf.root(SAMPLE.read_bytes(), "the model")
    subgraph = model.tables(2, "subgraph")[0]
    with pytest.raises(flatbuf.TooMany, match="88 entries, more than the 10"):
        subgraph.tables(0, "tensor", limit=10)


def test_shapes_are_checked_before_any_size_is_used() -> None:
    with pytest.raises(InvalidModel, match="120,000,000,000 bytes"):
        validate.check_shape("m", "tensor 0", (1, 200000, 200000, 3), "int8")
    with pytest.raises(InvalidModel, match="dimension 2 is 0"):
        validate.check_shape("m", "tensor 0", (1, 2, 0, 3), "int8")
    # dimensions whose product overflows int64 are still refused, not wrapped
    assert validate.check_shape("m", "t", (1, 4, 4, 3), "int8") == (1, 4, 4, 3)
    with pytest.raises(InvalidModel, match="more than the 16 MiB"):
        validate.check_shape("m", "t", (2**31 - 1,) * 4, "int32")


@pytest.mark.parametrize(
    ("scale", "zero_point", "fragment"),
    [
        ((0.0,), (0,), "scale 0.0"),
        ((float("nan"),), (0,), "scale nan"),
        ((1.0, float("inf")), (0, 0), "scale inf"),
        ((-1.0,), (0,), "scale -1.0"),
        ((0.5,), (), "1 quantization scales and 0 zero points"),
        ((0.5,), (128,), "zero point 128, outside [-128, 127]"),
        ((0.5, 0.5), (0, 0), "2 quantization scales for shape [3, 4]"),
    ],
)
def test_quantization_rules(scale: tuple, zero_point: tuple, fragment: str) -> None:
    with pytest.raises(InvalidModel, match=fragment.replace("[", r"\[")):
        validate.check_quantization("m", "tensor 1", "int8", (3, 4), scale, zero_point, 0)


def test_names_in_messages_stay_on_one_line() -> None:
    assert validate.tensor_label(4, "a\nb\x00c") == "tensor 4 'a\\nb\\x00c'"
    assert len(validate.name_label("x" * 500)) == 60


def _forged(edit: Callable[[Any], object]) -> bytes:
    from ..tflite_fuzz import forge

    return forge(SAMPLE.read_bytes(), edit)


def test_metadata_and_signatures_name_what_exists() -> None:
    def metadata(m: Any) -> None:
        m.metadata[0].buffer = len(m.buffers) + 3

    def signature(m: Any) -> None:
        m.signatureDefs[0].outputs[0].tensorIndex = 500

    with pytest.raises(
        InvalidModel, match=r"metadata entry 0 uses buffer 94, but the model has 91"
    ):
        load_graph(_forged(metadata))
    with pytest.raises(InvalidModel, match="signature 0 output 0 is tensor 500"):
        load_graph(_forged(signature))


def test_an_offline_memory_plan_is_refused() -> None:
    def plan(m: Any) -> None:
        from ai_edge_litert import schema_py_generated as schema

        entry = schema.MetadataT()
        entry.name, entry.buffer = b"OfflineMemoryAllocation", 1
        m.metadata.append(entry)

    with pytest.raises(InvalidModel, match="metadata entry 2 is an offline memory plan"):
        load_graph(_forged(plan))


def _graph(**change: object):  # type: ignore[no-untyped-def]
    """input 8x8x4 -> CONV 3x3/2 SAME (8 filters) -> DEPTHWISE 3x3 -> ADD with itself."""
    from mnmcu.graph import Graph, Op, Quantization, Tensor

    q = Quantization((0.05,), (-3,))
    wq = Quantization((0.01,) * 8, (0,) * 8, 0)

    def t(i: int, shape: tuple[int, ...], dtype: str = "int8", data: bool = False, quant=q):  # type: ignore[no-untyped-def]
        return Tensor(i, f"t{i}", shape, dtype, quant, np.zeros(shape, dtype) if data else None)

    tensors = [
        t(0, (1, 8, 8, 4)),
        t(1, (8, 3, 3, 4), data=True, quant=wq),
        t(2, (8,), "int32", data=True, quant=wq),
        t(3, (1, 4, 4, 8)),
        t(4, (1, 3, 3, 8), data=True, quant=Quantization((0.01,) * 8, (0,) * 8, 3)),
        t(5, (8,), "int32", data=True, quant=wq),
        t(6, change.pop("dw_out", (1, 4, 4, 8))),
        t(7, (1, 4, 4, 8)),
    ]
    conv = {"padding": "SAME", "stride_h": 2, "stride_w": 2, "dilation_h_factor": 1,
            "dilation_w_factor": 1, "fused_activation_function": "RELU6"}  # fmt: skip
    dw = dict(conv, stride_h=1, stride_w=1, depth_multiplier=change.pop("multiplier", 1))
    ops = [
        Op(0, "CONV_2D", (0, 1, 2), (3,), conv),
        Op(1, "DEPTHWISE_CONV_2D", change.pop("dw_inputs", (3, 4, 5)), (6,), dw),
        Op(2, "ADD", (6, 6), change.pop("add_outputs", (7,)), {}),
    ]
    assert not change
    return Graph(tuple(tensors), tuple(ops), (0,), (7,), 0, "g.tflite")


@pytest.mark.parametrize(
    ("change", "fragment"),
    [
        ({}, None),
        ({"dw_out": (1, 4, 4, 16)}, "give shape [1, 4, 4, 8], but its output tensor 6"),
        ({"multiplier": 2}, "with depth multiplier 2"),
        ({"dw_inputs": (7, 4, 5)}, "op 1 DEPTHWISE_CONV_2D reads tensor 7 't7' before op 2"),
        ({"dw_inputs": (3, 4, -1)}, "it has no bias"),
        ({"dw_inputs": (3, 3, 5)}, "input 1 tensor 3 't3' must be a constant"),
        ({"add_outputs": (5,)}, "op 2 ADD writes tensor 5 't5', a constant"),
        ({"add_outputs": (0,)}, "op 2 ADD writes tensor 0 't0', the graph input"),
    ],
)
def test_graph_rules(change: dict, fragment: str | None) -> None:
    graph = _graph(**change)
    if fragment is None:
        validate.check_graph(graph)
        return
    with pytest.raises(InvalidModel, match=fragment.replace("[", r"\[")):
        validate.check_graph(graph)
