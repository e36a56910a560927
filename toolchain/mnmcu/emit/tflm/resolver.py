"""The op resolver of the generated runtime: which registration each op gets."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from mnmcu.errors import UnsupportedModel
from mnmcu.graph import Graph, Op

_SOFTMAX_INT16_OUT = "tflite::Register_SOFTMAX_INT8_INT16()"

# MicroMutableOpResolver method of each op, and its int8-specialised registration
# with the header that declares it where TFLM has one: at the pinned commit
# tensorflow/lite/micro/kernels/{conv,depthwise_conv,fully_connected,add,mul,
# softmax,pooling,pad}.h. micro_mutable_op_resolver.h includes most of these
# headers but not pad.h, so the runtime includes each one it calls itself
# (tests/integration/test_tflm_project.py checks every entry against the
# headers of a TFLM tree). Under CMSIS_NN these are CMSIS-NN kernels; elsewhere
# (ESP-NN, whose CMake replaces the plain kernels) the headers define them as
# the plain registration. MEAN, HARD_SWISH and the rest have no int8 variant.
_KERNELS_DIR = "tensorflow/lite/micro/kernels"
_RESOLVER: dict[str, tuple[str, str | None]] = {
    "CONV_2D": ("AddConv2D", "tflite::Register_CONV_2D_INT8()"),
    "DEPTHWISE_CONV_2D": ("AddDepthwiseConv2D", "tflite::Register_DEPTHWISE_CONV_2D_INT8()"),
    "FULLY_CONNECTED": ("AddFullyConnected", "tflite::Register_FULLY_CONNECTED_INT8()"),
    "ADD": ("AddAdd", "tflite::Register_ADD_INT8()"),
    "MUL": ("AddMul", "tflite::Register_MUL_INT8()"),
    "SOFTMAX": ("AddSoftmax", "tflite::Register_SOFTMAX_INT8()"),
    "AVERAGE_POOL_2D": ("AddAveragePool2D", "tflite::Register_AVERAGE_POOL_2D_INT8()"),
    "MAX_POOL_2D": ("AddMaxPool2D", "tflite::Register_MAX_POOL_2D_INT8()"),
    "PAD": ("AddPad", "tflite::Register_PAD_INT8()"),
    "MEAN": ("AddMean", None),
    "HARD_SWISH": ("AddHardSwish", None),
    "RESHAPE": ("AddReshape", None),
    "QUANTIZE": ("AddQuantize", None),
    "DEQUANTIZE": ("AddDequantize", None),
    "RELU": ("AddRelu", None),
    "RELU6": ("AddRelu6", None),
    "SHAPE": ("AddShape", None),
    "STRIDED_SLICE": ("AddStridedSlice", None),
    "PACK": ("AddPack", None),
    "CONCATENATION": ("AddConcatenation", None),
    "LOGISTIC": ("AddLogistic", None),
    "TANH": ("AddTanh", None),
    "SQUEEZE": ("AddSqueeze", None),
    "EXPAND_DIMS": ("AddExpandDims", None),
}
KERNEL_HEADERS: dict[str, str] = {
    "tflite::Register_CONV_2D_INT8()": f"{_KERNELS_DIR}/conv.h",
    "tflite::Register_DEPTHWISE_CONV_2D_INT8()": f"{_KERNELS_DIR}/depthwise_conv.h",
    "tflite::Register_FULLY_CONNECTED_INT8()": f"{_KERNELS_DIR}/fully_connected.h",
    "tflite::Register_ADD_INT8()": f"{_KERNELS_DIR}/add.h",
    "tflite::Register_MUL_INT8()": f"{_KERNELS_DIR}/mul.h",
    "tflite::Register_SOFTMAX_INT8()": f"{_KERNELS_DIR}/softmax.h",
    _SOFTMAX_INT16_OUT: f"{_KERNELS_DIR}/softmax.h",
    "tflite::Register_AVERAGE_POOL_2D_INT8()": f"{_KERNELS_DIR}/pooling.h",
    "tflite::Register_MAX_POOL_2D_INT8()": f"{_KERNELS_DIR}/pooling.h",
    "tflite::Register_PAD_INT8()": f"{_KERNELS_DIR}/pad.h",
}
"""The TFLM header that declares each registration the generator can emit."""
METHOD_TO_OP = {method: opcode for opcode, (method, _) in _RESOLVER.items()}
# Ops whose int8 registration needs int8 weights too (not int4/int16 variants).
_WEIGHTED = frozenset({"CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED"})


@dataclass(frozen=True)
class OpRegistration:
    """One line of the generated resolver: ``resolver.<method>(<kernel>)``."""

    opcode: str
    method: str
    kernel: str

    @property
    def call(self) -> str:
        return f"resolver.{self.method}({self.kernel})"

    @property
    def header(self) -> str | None:
        """The TFLM header declaring :attr:`kernel` (``None`` for the default kernel)."""
        return KERNEL_HEADERS[self.kernel] if self.kernel else None


def kernel_headers(registrations: Sequence[OpRegistration]) -> tuple[str, ...]:
    """The headers the runtime includes for its registrations, sorted, each once."""
    return tuple(sorted({r.header for r in registrations if r.header}))


def _dtypes(graph: Graph, ops: Sequence[Op], slot: int, outputs: bool = False) -> set[str]:
    found = set()
    for op in ops:
        indices = op.outputs if outputs else op.inputs
        if slot < len(indices) and indices[slot] >= 0:
            found.add(graph.tensor(indices[slot]).dtype)
    return found


def expected_kernel(graph: Graph, opcode: str) -> str:
    """The registration the resolver should pass for ``opcode`` ("" = TFLM's default).

    The int8 variant where TFLM has one and every op of that type is int8
    (int8 weights for conv, depthwise and fully connected); a softmax with an
    int16 output takes ``Register_SOFTMAX_INT8_INT16()``.
    """
    if opcode not in _RESOLVER:
        raise UnsupportedModel(
            f"TFLite Micro op {opcode} is not in mnmcu's resolver table",
            "supported: " + ", ".join(sorted(_RESOLVER)),
        )
    int8_kernel = _RESOLVER[opcode][1]
    ops = [op for op in graph.ops if op.opcode == opcode]
    if int8_kernel is None or not ops or _dtypes(graph, ops, 0) != {"int8"}:
        return ""
    if opcode in _WEIGHTED and _dtypes(graph, ops, 1) != {"int8"}:
        return ""
    if opcode == "SOFTMAX":
        out = _dtypes(graph, ops, 0, outputs=True)
        if out == {"int16"}:
            return _SOFTMAX_INT16_OUT
        if out != {"int8"}:
            return ""
    return int8_kernel


def resolver_registrations(graph: Graph) -> tuple[OpRegistration, ...]:
    """One registration per distinct op of ``graph``, in op-name order."""
    unknown = sorted(set(graph.opcodes) - set(_RESOLVER))
    if unknown:
        raise UnsupportedModel(
            f"{graph.source or 'the model'} uses ops mnmcu cannot register with TFLite Micro: "
            + ", ".join(unknown),
            "use the aot runtime or a model with MobileNet ops only",
        )
    return tuple(
        OpRegistration(opcode, _RESOLVER[opcode][0], expected_kernel(graph, opcode))
        for opcode in graph.opcodes
    )
