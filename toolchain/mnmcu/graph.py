"""A .tflite model parsed once into a plain, typed graph.

Every later stage (analysis, memory planning, code generation) reads this
:class:`Graph`, never the flatbuffer. Parsing uses the TFLite schema bindings
that LiteRT (``ai_edge_litert``) ships.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from mnmcu.errors import UnsupportedModel

# Ops that MobileNet V1/V2/V3 produce after full-int8 conversion, plus the
# shape chain Keras emits with a dynamic batch (folded later, all shapes are
# static) and plain activations.
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
    }
)
DYNAMIC_SHAPE_OPS = frozenset({"SHAPE", "STRIDED_SLICE", "PACK"})

_DTYPE_SIZE = {
    "int8": 1,
    "uint8": 1,
    "int16": 2,
    "float16": 2,
    "int32": 4,
    "float32": 4,
    "int64": 8,
    "float64": 8,
    "bool": 1,
}


def _enum_names(enum_class: Any) -> dict[int, str]:
    return {v: k for k, v in vars(enum_class).items() if not k.startswith("_")}


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


@dataclass(frozen=True)
class Quantization:
    """Affine quantization: real = scale * (q - zero_point), per tensor or per ``axis``."""

    scale: tuple[float, ...]
    zero_point: tuple[int, ...]
    axis: int = 0

    @property
    def per_channel(self) -> bool:
        return len(self.scale) > 1


@dataclass(frozen=True)
class Tensor:
    """One tensor: shape, element type, quantization and, if constant, its data."""

    index: int
    name: str
    shape: tuple[int, ...]
    dtype: str
    quantization: Quantization | None
    data: np.ndarray | None = field(default=None, compare=False, repr=False)

    @property
    def is_constant(self) -> bool:
        return self.data is not None

    @property
    def elements(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64)) if self.shape else 1

    @property
    def nbytes(self) -> int:
        return self.elements * _DTYPE_SIZE.get(self.dtype, 4)


@dataclass(frozen=True)
class Op:
    """One operator in execution order; ``-1`` marks an omitted optional input."""

    index: int
    opcode: str
    inputs: tuple[int, ...]
    outputs: tuple[int, ...]
    options: dict[str, Any] = field(default_factory=dict, compare=False)


@dataclass(frozen=True)
class Graph:
    """The single subgraph of a .tflite model."""

    tensors: tuple[Tensor, ...]
    ops: tuple[Op, ...]
    inputs: tuple[int, ...]
    outputs: tuple[int, ...]
    size_bytes: int
    source: str = ""

    def tensor(self, index: int) -> Tensor:
        return self.tensors[index]

    def op_inputs(self, op: Op) -> list[Tensor | None]:
        return [self.tensors[i] if i >= 0 else None for i in op.inputs]

    def op_counts(self) -> Counter[str]:
        return Counter(op.opcode for op in self.ops)

    @property
    def opcodes(self) -> tuple[str, ...]:
        """The distinct op types, sorted."""
        return tuple(sorted({op.opcode for op in self.ops}))

    @property
    def input(self) -> Tensor:
        return self.tensors[self.inputs[0]]

    @property
    def output(self) -> Tensor:
        return self.tensors[self.outputs[0]]


def _options(
    op: Any, names: dict[int, str], padding: dict[int, str], act: dict[int, str]
) -> dict[str, Any]:
    opts = op.builtinOptions
    if opts is None:
        return {}
    out: dict[str, Any] = {}
    for key, value in vars(opts).items():
        if isinstance(value, (np.ndarray, list)):
            value = [int(v) for v in value]
        k = _snake(key)
        if k == "padding":
            value = padding.get(value, str(value))
        elif k == "fused_activation_function":
            value = act.get(value, str(value))
        elif isinstance(value, float):
            value = float(value)
        out[k] = value
    return out


def load_graph(model: bytes | Path | str) -> Graph:
    """Parse a .tflite file (path) or flatbuffer (bytes) into a :class:`Graph`.

    Raises :class:`UnsupportedModel` when the bytes are not a TFLite model or
    the model has more than one subgraph.
    """
    from ai_edge_litert import schema_py_generated as schema

    source = ""
    if isinstance(model, (str, Path)):
        path = Path(model)
        source = str(path)
        try:
            buf = path.read_bytes()
        except FileNotFoundError:
            raise UnsupportedModel(
                f"model file {path} does not exist", "give the path of a .tflite file"
            ) from None
        except IsADirectoryError:
            raise UnsupportedModel(
                f"{path} is a folder", "give the path of a .tflite file"
            ) from None
    else:
        buf = bytes(model)
    label = source or "model"
    if len(buf) < 8 or buf[4:8] != b"TFL3":
        raise UnsupportedModel(
            f"{label} is not a TFLite flatbuffer (no 'TFL3' identifier)",
            "give a .tflite file produced by 'mnmcu quantize' or the TFLite converter",
        )
    try:
        m = schema.ModelT.InitFromPackedBuf(buf, 0)
    except Exception as exc:  # a truncated or corrupt flatbuffer
        raise UnsupportedModel(f"{label} is a corrupt TFLite file ({exc})") from None
    if not m.subgraphs or len(m.subgraphs) != 1:
        raise UnsupportedModel(
            f"{label} has {len(m.subgraphs or [])} subgraphs",
            "mnmcu handles single-subgraph models",
        )
    op_names = _enum_names(schema.BuiltinOperator)
    type_names = {k: v.lower() for k, v in _enum_names(schema.TensorType).items()}
    padding = _enum_names(schema.Padding)
    act = _enum_names(schema.ActivationFunctionType)
    sg = m.subgraphs[0]
    tensors = []
    for i, t in enumerate(sg.tensors or []):
        q = t.quantization
        quant = None
        if q is not None and q.scale is not None and len(q.scale) > 0:
            zps = q.zeroPoint if q.zeroPoint is not None else [0] * len(q.scale)
            quant = Quantization(
                scale=tuple(float(s) for s in q.scale),
                zero_point=tuple(int(z) for z in zps),
                axis=int(q.quantizedDimension),
            )
        dtype = type_names.get(t.type, str(t.type))
        data = None
        if t.buffer and m.buffers[t.buffer].data is not None and len(m.buffers[t.buffer].data):
            raw = np.asarray(m.buffers[t.buffer].data, dtype=np.uint8).tobytes()
            np_type = np.dtype(dtype) if dtype in _DTYPE_SIZE else np.dtype(np.uint8)
            data = np.frombuffer(raw, dtype=np_type).reshape(
                [int(d) for d in t.shape] if t.shape is not None else []
            )
        shape = tuple(int(d) for d in t.shape) if t.shape is not None else ()
        name = t.name.decode() if isinstance(t.name, bytes) else str(t.name or "")
        tensors.append(Tensor(i, name, shape, dtype, quant, data))
    ops = []
    for i, op in enumerate(sg.operators or []):
        code = m.operatorCodes[op.opcodeIndex]
        builtin = max(int(code.builtinCode), int(code.deprecatedBuiltinCode))
        opcode = op_names.get(builtin, f"UNKNOWN_{builtin}")
        if opcode == "CUSTOM":
            custom = code.customCode
            opcode = f"CUSTOM({custom.decode() if isinstance(custom, bytes) else custom})"
        ops.append(
            Op(
                index=i,
                opcode=opcode,
                inputs=tuple(int(x) for x in (op.inputs if op.inputs is not None else [])),
                outputs=tuple(int(x) for x in (op.outputs if op.outputs is not None else [])),
                options=_options(op, op_names, padding, act),
            )
        )
    return Graph(
        tensors=tuple(tensors),
        ops=tuple(ops),
        inputs=tuple(int(x) for x in sg.inputs),
        outputs=tuple(int(x) for x in sg.outputs),
        size_bytes=len(buf),
        source=source,
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
