"""The plain, typed graph every stage after parsing reads: tensors, ops, quantization.

:func:`mnmcu.graph.load_graph` builds it from a .tflite file (and checks it
with :mod:`mnmcu.validate`); :mod:`mnmcu.synth` builds one from the
architecture alone. ``mnmcu.graph`` re-exports these types.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import numpy as np

# Bytes per element of the tensor types mnmcu reads (TFLite's TensorType names, lower case).
DTYPE_SIZE = {
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
        return math.prod(self.shape)

    @property
    def nbytes(self) -> int:
        return self.elements * DTYPE_SIZE.get(self.dtype, 4)


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
