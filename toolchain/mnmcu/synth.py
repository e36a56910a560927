"""Shape-only int8 graphs of MobileNet, computed from the architecture, no TensorFlow.

:func:`synth_graph` returns the :class:`~mnmcu.graph.Graph` that converting
an untrained Keras MobileNet (``mnmcu.model.mobilenet.build_model``) to full
int8 gives, op for op and shape for shape, without building or converting
anything: constant tensors carry an empty array (their shape, type and the
length of their per-channel quantization are exact; their values are not
needed to count bytes or plan memory). This is what lets ``mnmcu fit``
search hundreds of (alpha, size) points in seconds; the tests compare it
with converted models.

The recipes follow Keras's ``keras.applications`` sources (MobileNet,
MobileNetV2, MobileNetV3Small) and what the TFLite converter makes of them: batch norm folded
into the convolution (int8 weights, int32 bias, per-channel scales),
ReLU6 fused, Keras's ``ZeroPadding2D`` before a stride-2 layer folded into
``SAME`` padding where that is the same arithmetic (even input sizes for
V1's depthwise layers, always for V2 and V3) and kept as a PAD op otherwise
(V1's first convolution has no padding layer: it is ``SAME`` at any size);
V3's hard-swish becomes a HARD_SWISH op and its hard-sigmoid a ReLU6
convolution and a MUL.
"""

from __future__ import annotations

import numpy as np

from mnmcu.errors import InvalidValue
from mnmcu.graph import Graph, Op, Quantization, Tensor

SYNTH_ARCHS = ("v1", "v2", "v3-small")

# MobileNet V1 (keras.applications.MobileNet): pointwise filters and stride of
# the 13 depthwise-separable blocks after the first 3x3 convolution (32 filters).
_V1_BLOCKS = (
    (64, 1),
    (128, 2),
    (128, 1),
    (256, 2),
    (256, 1),
    (512, 2),
    (512, 1),
    (512, 1),
    (512, 1),
    (512, 1),
    (512, 1),
    (1024, 2),
    (1024, 1),
)
# MobileNet V2 (keras.applications.MobileNetV2): (filters, stride, expansion)
# of the 17 inverted residual blocks after the first 3x3 convolution.
_V2_BLOCKS = (
    (16, 1, 1),
    (24, 2, 6),
    (24, 1, 6),
    (32, 2, 6),
    (32, 1, 6),
    (32, 1, 6),
    (64, 2, 6),
    (64, 1, 6),
    (64, 1, 6),
    (64, 1, 6),
    (96, 1, 6),
    (96, 1, 6),
    (96, 1, 6),
    (160, 2, 6),
    (160, 1, 6),
    (160, 1, 6),
    (320, 1, 6),
)


# MobileNetV3-Small (keras.applications.MobileNetV3Small): (expansion, filters,
# kernel, stride, squeeze-and-excite, hard-swish) of the 11 inverted residual
# blocks after the first 3x3 convolution (16 filters, hard-swish).
_V3_SMALL_BLOCKS = (
    (1.0, 16, 3, 2, True, False),
    (72.0 / 16, 24, 3, 2, False, False),
    (88.0 / 24, 24, 3, 1, False, False),
    (4.0, 40, 5, 2, True, True),
    (6.0, 40, 5, 1, True, True),
    (6.0, 40, 5, 1, True, True),
    (3.0, 48, 5, 1, True, True),
    (3.0, 48, 5, 1, True, True),
    (6.0, 96, 5, 2, True, True),
    (6.0, 96, 5, 1, True, True),
    (6.0, 96, 5, 1, True, True),
)


def make_divisible(value: float, divisor: int = 8) -> int:
    """Keras's ``_make_divisible``: round to a multiple of ``divisor``, never 10% down."""
    new = max(divisor, int(value + divisor / 2) // divisor * divisor)
    if new < 0.9 * value:
        new += divisor
    return new


class _Builder:
    """Appends tensors and ops in execution order."""

    def __init__(self) -> None:
        self.tensors: list[Tensor] = []
        self.ops: list[Op] = []

    def tensor(
        self, shape: tuple[int, ...], dtype: str = "int8", const: bool = False, channels: int = 1
    ) -> int:
        quant = Quantization(scale=(1.0,) * channels, zero_point=(0,) * channels)
        data = np.empty(0, dtype=np.int8) if const else None
        index = len(self.tensors)
        self.tensors.append(Tensor(index, f"t{index}", shape, dtype, quant, data))
        return index

    def op(
        self, opcode: str, inputs: list[int], output_shape: tuple[int, ...], **options: object
    ) -> int:
        out = self.tensor(output_shape)
        self.ops.append(Op(len(self.ops), opcode, tuple(inputs), (out,), dict(options)))
        return out

    def shape(self, index: int) -> tuple[int, ...]:
        return self.tensors[index].shape

    def conv(self, x: int, filters: int, kernel: int, stride: int, act: str, padding: str) -> int:
        _, h, w, c = self.shape(x)
        weights = self.tensor((filters, kernel, kernel, c), const=True, channels=filters)
        bias = self.tensor((filters,), "int32", const=True, channels=filters)
        oh, ow = _out(h, kernel, stride, padding), _out(w, kernel, stride, padding)
        return self.op(
            "CONV_2D",
            [x, weights, bias],
            (1, oh, ow, filters),
            padding=padding,
            stride_h=stride,
            stride_w=stride,
            fused_activation_function=act,
        )

    def depthwise(
        self, x: int, stride: int, padding: str, kernel: int = 3, act: str = "RELU6"
    ) -> int:
        _, h, w, c = self.shape(x)
        weights = self.tensor((1, kernel, kernel, c), const=True, channels=c)
        bias = self.tensor((c,), "int32", const=True, channels=c)
        oh, ow = _out(h, kernel, stride, padding), _out(w, kernel, stride, padding)
        return self.op(
            "DEPTHWISE_CONV_2D",
            [x, weights, bias],
            (1, oh, ow, c),
            padding=padding,
            stride_h=stride,
            stride_w=stride,
            depth_multiplier=1,
            fused_activation_function=act,
        )

    def pad_bottom_right(self, x: int) -> int:
        _, h, w, c = self.shape(x)
        paddings = self.tensor((4, 2), "int32", const=True)
        return self.op("PAD", [x, paddings], (1, h + 1, w + 1, c))

    def head(self, x: int, classes: int) -> int:
        c = self.shape(x)[-1]
        axes = self.tensor((2,), "int32", const=True)
        pooled = self.op("MEAN", [x, axes], (1, c), keep_dims=False)
        weights = self.tensor((classes, c), const=True)
        bias = self.tensor((classes,), "int32", const=True)
        logits = self.op("FULLY_CONNECTED", [pooled, weights, bias], (1, classes))
        return self.op("SOFTMAX", [logits], (1, classes), beta=1.0)


def _out(size: int, kernel: int, stride: int, padding: str) -> int:
    if padding == "SAME":
        return -(-size // stride)
    return (size - kernel) // stride + 1


def _strided_v1(b: _Builder, x: int) -> int:
    """Keras V1's ZeroPadding2D(((0, 1), (0, 1))) + VALID stride-2 depthwise, as converted."""
    even = b.shape(x)[1] % 2 == 0 and b.shape(x)[2] % 2 == 0
    if not even:
        x = b.pad_bottom_right(x)
    return b.depthwise(x, 2, "SAME" if even else "VALID")


def _v1(b: _Builder, x: int, alpha: float) -> int:
    x = b.conv(x, int(32 * alpha), 3, 2, "RELU6", "SAME")  # Keras's conv1: SAME, no padding layer
    for filters, stride in _V1_BLOCKS:
        x = _strided_v1(b, x) if stride == 2 else b.depthwise(x, 1, "SAME")
        x = b.conv(x, int(filters * alpha), 1, 1, "RELU6", "SAME")
    return x


def _v2(b: _Builder, x: int, alpha: float) -> int:
    x = b.conv(x, make_divisible(32 * alpha), 3, 2, "RELU6", "SAME")
    for block, (filters, stride, expansion) in enumerate(_V2_BLOCKS):
        inp = x
        in_channels = b.shape(x)[-1]
        out_channels = make_divisible(int(filters * alpha))
        if block:
            x = b.conv(x, expansion * in_channels, 1, 1, "RELU6", "SAME")
        x = b.depthwise(x, stride, "SAME")
        x = b.conv(x, out_channels, 1, 1, "NONE", "SAME")
        if in_channels == out_channels and stride == 1:
            x = _residual(b, inp, x)
    last = make_divisible(1280 * alpha) if alpha > 1.0 else 1280
    return b.conv(x, last, 1, 1, "RELU6", "VALID")  # Keras: Conv_1 has default padding


def _residual(b: _Builder, inp: int, x: int) -> int:
    """The block's ADD; on a 1x1 map the converter flattens its second operand first."""
    _, h, w, c = b.shape(x)
    if h == w == 1:
        shape = b.tensor((1,), "int32", const=True)
        flat = b.op("RESHAPE", [x, shape], (c,))
        return b.op("ADD", [inp, flat], b.shape(inp), fused_activation_function="NONE")
    return b.op("ADD", [inp, x], b.shape(x), fused_activation_function="NONE")


def _activated(b: _Builder, x: int, hard_swish: bool) -> int:
    return b.op("HARD_SWISH", [x], b.shape(x)) if hard_swish else x


def _squeeze_excite(b: _Builder, x: int, filters: int) -> int:
    """Keras V3's SE block: pool, 1x1 ReLU, 1x1 hard-sigmoid (ReLU6, then x 1/6), multiply."""
    _, h, w, c = b.shape(x)
    s = x  # the converter drops the pooling of a 1x1 map
    if (h, w) != (1, 1):
        axes = b.tensor((2,), "int32", const=True)
        s = b.op("MEAN", [x, axes], (1, 1, 1, c), keep_dims=True)
    s = b.conv(s, make_divisible(filters * 0.25), 1, 1, "RELU", "SAME")
    s = b.conv(s, filters, 1, 1, "RELU6", "SAME")
    sixth = b.tensor((), const=True)
    s = b.op("MUL", [s, sixth], b.shape(s), fused_activation_function="NONE")
    return b.op("MUL", [x, s], b.shape(x), fused_activation_function="NONE")


def _v3_small(b: _Builder, x: int, alpha: float) -> int:
    x = _activated(b, b.conv(x, 16, 3, 2, "NONE", "SAME"), True)
    for block, (expansion, filters, kernel, stride, se, hs) in enumerate(_V3_SMALL_BLOCKS):
        act = "NONE" if hs else "RELU"
        inp = x
        in_channels = b.shape(x)[-1]
        expanded = make_divisible(in_channels * expansion)
        if block:
            x = _activated(b, b.conv(x, expanded, 1, 1, act, "SAME"), hs)
        x = _activated(b, b.depthwise(x, stride, "SAME", kernel, act), hs)
        if se:
            x = _squeeze_excite(b, x, expanded)
        out_channels = make_divisible(filters * alpha)
        x = b.conv(x, out_channels, 1, 1, "NONE", "SAME")
        if stride == 1 and in_channels == out_channels:
            x = _residual(b, inp, x)
    last = make_divisible(b.shape(x)[-1] * 6)
    return _activated(b, b.conv(x, last, 1, 1, "NONE", "SAME"), True)


def synth_graph(arch: str, alpha: float, size: int, classes: int = 2, channels: int = 3) -> Graph:
    """The int8 graph of MobileNet ``arch`` at width ``alpha`` and ``size`` x ``size`` input."""
    if arch not in SYNTH_ARCHS:
        raise InvalidValue(
            f"architecture {arch!r} has no shape model", f"use one of {', '.join(SYNTH_ARCHS)}"
        )
    if size < 32:
        raise InvalidValue(f"input size {size} is below 32 pixels", "use 32 or more")
    b = _Builder()
    x = b.tensor((1, size, size, channels))
    x = {"v1": _v1, "v2": _v2, "v3-small": _v3_small}[arch](b, x, alpha)
    out = b.head(x, classes)
    return Graph(
        tensors=tuple(b.tensors),
        ops=tuple(b.ops),
        inputs=(0,),
        outputs=(out,),
        size_bytes=0,
        source=f"{arch} alpha {alpha:g} {size}x{size}x{channels} (shape model)",
    )
