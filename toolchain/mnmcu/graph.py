"""A .tflite model parsed once into a plain, typed graph, checked before anyone uses it.

Every later stage (analysis, memory planning, code generation, the reference
runtimes) reads the :class:`Graph` that :func:`load_graph` returns, never the
flatbuffer. The file is read with a bounds-checked reader
(:mod:`mnmcu.flatbuf`) by the field numbers of the TFLite schema that LiteRT
(``ai_edge_litert``) ships, whose generated bindings decode the op options;
:mod:`mnmcu.validate` holds the rules every model must meet.
"""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np

from mnmcu import flatbuf, validate
from mnmcu.errors import InvalidModel, UnsupportedModel
from mnmcu.graph_types import DTYPE_SIZE, Graph, Op, Quantization, Tensor

__all__ = [
    "DTYPE_SIZE",
    "ALIAS_OPS",
    "DYNAMIC_SHAPE_OPS",
    "SUPPORTED_OPS",
    "Graph",
    "Op",
    "Quantization",
    "Tensor",
    "check_int8_mobilenet",
    "load_graph",
]

# Ops that MobileNet V1/V2/V3 produce after full-int8 conversion, the shape
# chain Keras emits with a dynamic batch (folded later, all shapes are
# static), plain activations, and the pooling, concatenation and shape ops of
# small CNNs and sensor models.
SUPPORTED_OPS = frozenset(
    {
        "CONV_2D",
        "DEPTHWISE_CONV_2D",
        "AVERAGE_POOL_2D",
        "MEAN",
        "FULLY_CONNECTED",
        "ADD",
        "MUL",
        "HARD_SWISH",
        "PAD",
        "RESHAPE",
        "SOFTMAX",
        "QUANTIZE",
        "DEQUANTIZE",
        "RELU",
        "RELU6",
        "SHAPE",
        "STRIDED_SLICE",
        "PACK",
        "MAX_POOL_2D",
        "CONCATENATION",
        "LOGISTIC",
        "TANH",
        "SQUEEZE",
        "EXPAND_DIMS",
    }
)
ALIAS_OPS = frozenset({"RESHAPE", "SQUEEZE", "EXPAND_DIMS"})
"""Ops whose output is their input's bytes under another shape."""
DYNAMIC_SHAPE_OPS = frozenset({"SHAPE", "STRIDED_SLICE", "PACK"})

# Field numbers of the TFLite schema tables read here (schema.fbs; the
# generated bindings read field n at vtable slot 4 + 2n).
_MODEL_VERSION, _MODEL_CODES, _MODEL_SUBGRAPHS, _MODEL_DESCRIPTION, _MODEL_BUFFERS = 0, 1, 2, 3, 4
_MODEL_METADATA, _MODEL_SIGNATURES, _MODEL_EXTERNAL = 6, 7, 9
_CODE_DEPRECATED, _CODE_CUSTOM, _CODE_BUILTIN = 0, 1, 3
_SUBGRAPH_TENSORS, _SUBGRAPH_INPUTS, _SUBGRAPH_OUTPUTS, _SUBGRAPH_OPS, _SUBGRAPH_NAME = (
    0,
    1,
    2,
    3,
    4,
)
_TENSOR_SHAPE, _TENSOR_TYPE, _TENSOR_BUFFER, _TENSOR_NAME, _TENSOR_QUANT = 0, 1, 2, 3, 4
_TENSOR_VARIABLE, _TENSOR_SPARSITY, _TENSOR_EXTERNAL = 5, 6, 10
_QUANT_SCALE, _QUANT_ZERO_POINT, _QUANT_DETAILS, _QUANT_AXIS = 2, 3, 4, 6
_OP_CODE, _OP_INPUTS, _OP_OUTPUTS, _OP_OPTIONS_TYPE, _OP_OPTIONS = 0, 1, 2, 3, 4
_BUFFER_DATA, _BUFFER_OFFSET, _BUFFER_SIZE = 0, 1, 2
_METADATA_NAME, _METADATA_BUFFER = 0, 1
_SIGNATURE_INPUTS, _SIGNATURE_OUTPUTS, _SIGNATURE_KEY, _SIGNATURE_SUBGRAPH = 0, 1, 2, 4
_TENSORMAP_NAME, _TENSORMAP_INDEX = 0, 1
# Metadata TFLite Micro acts on: offsets for its arena planner, taken as given.
_OFFLINE_PLAN = b"OfflineMemoryAllocation"
_NUMPY_TYPES = {name: np.dtype(name) for name in DTYPE_SIZE}


def _enum_names(enum_class: Any) -> dict[int, str]:
    return {v: k for k, v in vars(enum_class).items() if not k.startswith("_")}


@cache
def _snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


class _Schema:
    """Names from LiteRT's generated TFLite schema bindings, looked up once."""

    def __init__(self) -> None:
        from ai_edge_litert import schema_py_generated as schema

        self.module = schema
        self.ops = _enum_names(schema.BuiltinOperator)
        self.types = {k: v.lower() for k, v in _enum_names(schema.TensorType).items()}
        self.options = _enum_names(schema.BuiltinOptions)
        # the generated object-API class of each options type (Conv2DOptionsT...)
        self.option_classes = {
            k: getattr(schema, f"{v}T") for k, v in self.options.items() if hasattr(schema, f"{v}T")
        }
        self.padding = _enum_names(schema.Padding)
        self.activations = _enum_names(schema.ActivationFunctionType)


@cache
def _names() -> _Schema:
    return _Schema()


def _options(opts: Any, names: _Schema) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in vars(opts).items():
        if isinstance(value, (np.ndarray, list)):
            value = [int(v) for v in value]
        k = _snake(key)
        if k == "padding":
            value = names.padding.get(value, str(value))
        elif k == "fused_activation_function":
            value = names.activations.get(value, str(value))
        elif isinstance(value, float):
            value = float(value)
        out[k] = value
    return out


def _read(model: bytes | Path | str) -> tuple[bytes, str]:
    """The model's bytes (at most MAX_MODEL_BYTES) and its path ("" for bytes)."""
    if not isinstance(model, (str, Path)):
        buf = bytes(model)
        size, source = len(buf), ""
    else:
        path = Path(model)
        source = str(path)
        try:
            size = path.stat().st_size
            buf = path.read_bytes() if size <= validate.MAX_MODEL_BYTES else b""
        except FileNotFoundError:
            raise UnsupportedModel(
                f"model file {path} does not exist", "give the path of a .tflite file"
            ) from None
        except IsADirectoryError:
            raise UnsupportedModel(
                f"{path} is a folder", "give the path of a .tflite file"
            ) from None
    if size > validate.MAX_MODEL_BYTES:
        raise InvalidModel(
            f"{source or 'model'} is {size:,} bytes, more than the "
            f"{validate.MAX_MODEL_BYTES // validate.MIB} MiB mnmcu reads",
            "no microcontroller's flash holds it",
        )
    return buf, source


def load_graph(model: bytes | Path | str) -> Graph:
    """Parse a .tflite file (path) or flatbuffer (bytes) into a checked :class:`Graph`.

    Raises :class:`UnsupportedModel` when the bytes are not a TFLite model or
    the model has more than one subgraph, and :class:`InvalidModel` (one
    line naming the tensor or op and the value) when it breaks a rule of
    :mod:`mnmcu.validate`; nothing is allocated from a size before it is checked.
    """
    buf, source = _read(model)
    label = source or "model"
    if len(buf) < 8 or buf[4:8] != b"TFL3":
        raise UnsupportedModel(
            f"{label} is not a TFLite flatbuffer (no 'TFL3' identifier)",
            "give a .tflite file produced by 'mnmcu quantize' or the TFLite converter",
        )
    try:
        graph = _parse(buf, label, source)
    except flatbuf.TooMany as exc:
        raise InvalidModel(f"{label}: {exc}") from None
    except flatbuf.Corrupt as exc:
        raise InvalidModel(f"{label} is a corrupt TFLite file: {exc}") from None
    validate.check_graph(graph)
    return graph


def _parse(buf: bytes, label: str, source: str) -> Graph:
    names = _names()
    model = flatbuf.root(buf, "the model")
    version = model.scalar(_MODEL_VERSION, "uint32")
    if version != 3:
        raise InvalidModel(f"{label} has TFLite schema version {version}; mnmcu reads version 3")
    subgraphs = model.tables(_MODEL_SUBGRAPHS, "subgraph", limit=64)
    if len(subgraphs) != 1:
        raise UnsupportedModel(
            f"{label} has {len(subgraphs)} subgraphs", "mnmcu handles single-subgraph models"
        )
    validate.refuse_features(
        label, "the model", [("keeps buffers outside the file", model.present(_MODEL_EXTERNAL))]
    )
    codes = model.tables(_MODEL_CODES, "operator code", limit=validate.MAX_OPS)
    opcodes = [_opcode(label, code, names) for code in codes]
    buffers = model.tables(_MODEL_BUFFERS, "buffer", limit=2 * validate.MAX_TENSORS)
    sg = subgraphs[0]
    limit = validate.MAX_TENSORS
    tensors = tuple(
        _tensor(label, i, t, buffers, names)
        for i, t in enumerate(sg.tables(_SUBGRAPH_TENSORS, "tensor", limit=limit))
    )
    ops = tuple(
        _op(buf, label, i, op, opcodes, names)
        for i, op in enumerate(sg.tables(_SUBGRAPH_OPS, "op", limit=validate.MAX_OPS))
    )
    _check_other_tables(label, model, sg, buffers, len(tensors))
    return Graph(
        tensors=tensors,
        ops=ops,
        inputs=sg.numbers(_SUBGRAPH_INPUTS, "i", "the graph inputs", limit),
        outputs=sg.numbers(_SUBGRAPH_OUTPUTS, "i", "the graph outputs", limit),
        size_bytes=len(buf),
        source=source,
    )


def _opcode(label: str, code: flatbuf.Table, names: _Schema) -> str:
    builtin = max(code.scalar(_CODE_BUILTIN, "int32"), code.scalar(_CODE_DEPRECATED, "int8"))
    opcode = names.ops.get(builtin, f"UNKNOWN_{builtin}")
    raw = code.string(_CODE_CUSTOM, f"the custom code of {code.what}")
    if opcode == "CUSTOM":
        opcode = f"CUSTOM({validate.check_name(label, f'the custom op of {code.what}', raw)})"
    return opcode


def _tensor(
    label: str, index: int, t: flatbuf.Table, buffers: flatbuf.Tables, names: _Schema
) -> Tensor:
    what = f"tensor {index}"
    name = validate.check_name(label, what, t.string(_TENSOR_NAME, f"the name of {what}"))
    what = validate.tensor_label(index, name)
    code = t.scalar(_TENSOR_TYPE, "int8")
    dtype = names.types.get(code, f"type_{code}")
    validate.check_dtype(label, what, dtype)
    dims = t.numbers(_TENSOR_SHAPE, "i", f"the shape of {what}", validate.MAX_RANK)
    shape = validate.check_shape(label, what, dims, dtype)
    if t.present(_TENSOR_VARIABLE) or t.present(_TENSOR_SPARSITY) or t.present(_TENSOR_EXTERNAL):
        validate.refuse_features(
            label,
            what,
            [
                ("is a variable tensor", bool(t.scalar(_TENSOR_VARIABLE, "uint8"))),
                ("is stored sparse", t.present(_TENSOR_SPARSITY)),
                ("keeps its data outside the file", bool(t.scalar(_TENSOR_EXTERNAL, "uint32"))),
            ],
        )
    q = t.table(_TENSOR_QUANT, f"the quantization of {what}")
    quant = _quantization(label, what, q, dtype, shape) if q is not None else None
    b = t.scalar(_TENSOR_BUFFER, "uint32")
    if not b:
        return Tensor(index, name, shape, dtype, quant)
    if b >= len(buffers):
        raise InvalidModel(f"{label}: {what} uses buffer {b}, but the model has {len(buffers)}")
    buffer = buffers[b]
    if buffer.present(_BUFFER_OFFSET) or buffer.present(_BUFFER_SIZE):
        outside = buffer.scalar(_BUFFER_OFFSET, "uint64") or buffer.scalar(_BUFFER_SIZE, "uint64")
        validate.refuse_features(
            label, f"buffer {b} of {what}", [("lies outside the flatbuffer", bool(outside))]
        )
    raw = buffer.bytes_view(_BUFFER_DATA, f"the data of buffer {b}")
    if not raw.size:
        return Tensor(index, name, shape, dtype, quant)
    validate.check_constant(label, what, shape, dtype, b, raw.size)
    return Tensor(index, name, shape, dtype, quant, raw.view(_NUMPY_TYPES[dtype]).reshape(shape))


def _quantization(
    label: str, what: str, q: flatbuf.Table, dtype: str, shape: tuple[int, ...]
) -> Quantization | None:
    if q.present(_QUANT_DETAILS) and q.scalar(_QUANT_DETAILS, "uint8"):
        validate.refuse_features(label, what, [("has custom quantization", True)])
    most = max(shape, default=1)  # per channel, one per entry of a dimension
    scale = q.numbers(_QUANT_SCALE, "f", f"the scales of {what}", most)
    zero_point = q.numbers(_QUANT_ZERO_POINT, "q", f"the zero points of {what}", most)
    axis = q.scalar(_QUANT_AXIS, "int32")
    validate.check_quantization(label, what, dtype, shape, scale, zero_point, axis)
    return Quantization(scale, zero_point, axis) if scale else None


def _op(
    buf: bytes, label: str, index: int, op: flatbuf.Table, opcodes: list[str], names: _Schema
) -> Op:
    k = op.scalar(_OP_CODE, "uint32")
    if k >= len(opcodes):
        raise InvalidModel(
            f"{label}: op {index} has opcode index {k}, but the model has {len(opcodes)} opcodes"
        )
    opcode = opcodes[k]
    limit = validate.MAX_TENSORS
    inputs = op.numbers(_OP_INPUTS, "i", f"the inputs of op {index}", limit)
    outputs = op.numbers(_OP_OUTPUTS, "i", f"the outputs of op {index}", limit)
    kind = op.scalar(_OP_OPTIONS_TYPE, "uint8")
    kind_name = names.options.get(kind, f"UNKNOWN_{kind}")
    validate.check_options_type(label, index, opcode, kind_name)
    options: dict[str, Any] = {}
    if kind in names.option_classes:
        table = op.table(_OP_OPTIONS, f"the options of op {index}")
        if table is None:
            raise InvalidModel(f"{label}: op {index} {opcode} names {kind_name} but has none")
        try:
            decoded = names.option_classes[kind].InitFromBuf(buf, table.pos)
        except Exception as exc:  # the generated decoder on a damaged table
            raise InvalidModel(
                f"{label}: the options of op {index} {opcode} are corrupt ({type(exc).__name__})"
            ) from None
        options = _options(decoded, names)
    return Op(
        index=index,
        opcode=opcode,
        inputs=inputs,
        outputs=outputs,
        options=options,
    )


def _check_other_tables(
    label: str, model: flatbuf.Table, sg: flatbuf.Table, buffers: flatbuf.Tables, tensors: int
) -> None:
    """What the graph does not use must still hold together, as LiteRT's verifier (and a
    device) sees it: every buffer, string and signature inside the file; metadata and
    signatures naming buffers and tensors that exist; no offline memory plan."""
    for i, buffer in enumerate(buffers):
        buffer.bytes_view(_BUFFER_DATA, f"the data of buffer {i}")
    model.string(_MODEL_DESCRIPTION, "the model's description")
    sg.string(_SUBGRAPH_NAME, "the subgraph's name")
    for item in model.tables(_MODEL_METADATA, "metadata entry", limit=validate.MAX_TENSORS):
        b = item.scalar(_METADATA_BUFFER, "uint32")
        if b >= len(buffers):
            raise InvalidModel(
                f"{label}: {item.what} uses buffer {b}, but the model has {len(buffers)}"
            )
        if item.string(_METADATA_NAME, f"the name of {item.what}") == _OFFLINE_PLAN:
            raise InvalidModel(
                f"{label}: {item.what} is an offline memory plan "
                f"({_OFFLINE_PLAN.decode()}), which mnmcu does not use"
            )
    for sig in model.tables(_MODEL_SIGNATURES, "signature", limit=64):
        sig.string(_SIGNATURE_KEY, f"the key of {sig.what}")
        if sig.scalar(_SIGNATURE_SUBGRAPH, "uint32") != 0:
            raise InvalidModel(f"{label}: {sig.what} names a subgraph other than the only one")
        for field, role in ((_SIGNATURE_INPUTS, "input"), (_SIGNATURE_OUTPUTS, "output")):
            for entry in sig.tables(field, f"{sig.what} {role}", limit=validate.MAX_TENSORS):
                entry.string(_TENSORMAP_NAME, f"the name of {entry.what}")
                t = entry.scalar(_TENSORMAP_INDEX, "uint32")
                if t >= tensors:
                    raise InvalidModel(
                        f"{label}: {entry.what} is tensor {t}, but the model has {tensors}"
                    )


def check_int8_mobilenet(graph: Graph) -> None:
    """Raise :class:`UnsupportedModel` unless the graph is a full-int8 MobileNet-like model.

    Full int8 means int8 input and output, int8 activations and weights,
    int32 biases, and no float tensors anywhere; MobileNet-like means every op
    is one mnmcu's runtimes implement.
    """
    label = graph.source or "model"
    unsupported = [op for op in graph.ops if op.opcode not in SUPPORTED_OPS]
    if unsupported:
        names = sorted({op.opcode for op in unsupported})
        where = ", ".join(f"{op.opcode} at op {op.index}" for op in unsupported[:8])
        more = f" and {len(unsupported) - 8} more" if len(unsupported) > 8 else ""
        raise UnsupportedModel(
            f"{label} uses ops mnmcu does not support: {', '.join(names)} ({where}{more})",
            "MobileNet-like int8 models use only " + ", ".join(sorted(SUPPORTED_OPS)),
        )
    io = [graph.tensor(i) for i in (*graph.inputs, *graph.outputs)]
    float_io = [t for t in io if t.dtype != "int8"]
    floats = [t for t in graph.tensors if t.dtype.startswith("float")]
    if float_io or floats:
        what = ", ".join(f"{t.name or t.index} is {t.dtype}" for t in (float_io or floats)[:3])
        raise UnsupportedModel(
            f"{label} is not a full-int8 model ({len(floats)} float tensors; {what})",
            "convert it with 'mnmcu quantize' (int8 input and output, int8 weights)",
        )
    for op in graph.ops:
        for t in graph.op_inputs(op):
            if (
                t is not None
                and t.dtype not in ("int8", "int32")
                and op.opcode not in DYNAMIC_SHAPE_OPS
            ):
                raise UnsupportedModel(
                    f"{label}: op {op.index} {op.opcode} has a {t.dtype} input '{t.name}'",
                    "mnmcu runtimes take int8 activations and weights with int32 biases",
                )
