"""What mnmcu accepts in a .tflite model: one set of rules, applied when the model is read.

:func:`mnmcu.graph.load_graph` applies them to every model before any other
stage sees it, so analysis, the memory plan, the code generators and the
reference runtimes (LiteRT, TFLite Micro) only get graphs that hold
together. A model breaking a rule raises :class:`InvalidModel`: one line
naming the tensor or op and the offending value.

While each tensor is read, before any array is built: its name is UTF-8 of
at most :data:`MAX_NAME_BYTES`; its type has a known size; its shape has at
most :data:`MAX_RANK` dimensions, each at least 1, and at most
:data:`MAX_TENSOR_BYTES`; a constant's buffer holds exactly shape x type
size bytes; its quantization scales are finite and above 0, with one zero
point each within the type's range and, per channel, one scale per entry of
the axis; it uses no feature mnmcu's runtimes lack (sparse or variable
tensors, data outside the file, custom quantization). Each op's options are
of the op's own type. Then the graph (:func:`check_graph`):

* one input, ``[N, H, W, C]``, and one output (the commands that run one
  image, emit, verify and hil, also need N = 1: :func:`check_single_image`);
* every tensor index an op or the graph names exists;
* order: an op reads only the graph input, constants and outputs of
  earlier ops; each tensor is written by one op; no op writes the input or
  a constant;
* each op of :data:`mnmcu.graph.SUPPORTED_OPS`: its number of inputs,
  constant operands, quantization parameters on its 8- and 16-bit integer
  tensors, option values, and an output shape equal to the one
  the op computes from its inputs (as TFLite's kernels do in Prepare); an
  ADD's scales as TFLite's ADD needs them (it aborts the process otherwise);
* all activations (non-constant tensors) together at most
  :data:`MAX_ACTIVATION_BYTES`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from mnmcu.errors import InvalidModel
from mnmcu.graph_types import DTYPE_SIZE, Graph, Op, Tensor

MIB = 1 << 20
# Larger than any microcontroller's flash and RAM (external PSRAM included)
# by a wide margin, small enough that every stage, LiteRT and the tflite-micro
# runtime stay far below 2 GB of memory on the largest model allowed.
MAX_MODEL_BYTES = 64 * MIB
MAX_TENSOR_BYTES = 16 * MIB
MAX_ACTIVATION_BYTES = 64 * MIB
MAX_TENSORS = 4096
MAX_OPS = 1024
MAX_RANK = 4
MAX_NAME_BYTES = 4096
# Kernel sizes, pooling windows, strides and dilation factors: 1 to MAX_WINDOW,
# which keeps every index a kernel computes inside 32 bits.
MAX_WINDOW = 1024
FUSED_ACTIVATIONS = ("NONE", "RELU", "RELU6", "RELU_N1_TO_1")
_ZERO_POINT_RANGE = {"int8": (-128, 127), "uint8": (0, 255)}
_QUANTIZED_TYPES = ("int8", "uint8", "int16")
_LIMIT_HINT = "no microcontroller holds a model that large"


def name_label(name: str, limit: int = 60) -> str:
    """A tensor name for a one-line message: control characters escaped, long names cut."""
    text = (
        name
        if name.isprintable()
        else "".join(c if c.isprintable() else repr(c)[1:-1] for c in name)
    )
    return text if len(text) <= limit else "..." + text[-(limit - 3) :]


def tensor_label(index: int, name: str) -> str:
    """``tensor 5 'conv/weights'`` (or ``tensor 5`` without a name)."""
    return f"tensor {index} '{name_label(name)}'" if name else f"tensor {index}"


# --------------------------------------------------------------------------
# Rules applied while the file is read, before any array is built
# --------------------------------------------------------------------------


def check_name(label: str, what: str, raw: bytes) -> str:
    """``raw`` decoded: UTF-8 of at most MAX_NAME_BYTES bytes."""
    if len(raw) > MAX_NAME_BYTES:
        raise InvalidModel(
            f"{label}: the name of {what} is {len(raw):,} bytes long, "
            f"more than the {MAX_NAME_BYTES:,} mnmcu reads"
        )
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidModel(
            f"{label}: the name of {what} is not valid UTF-8 "
            f"(byte {raw[exc.start]:#04x} at position {exc.start})"
        ) from None


def check_dtype(label: str, what: str, dtype: str) -> None:
    """The tensor type must have a known element size."""
    if dtype not in DTYPE_SIZE:
        raise InvalidModel(
            f"{label}: {what} has type {dtype.upper()}, which mnmcu does not read",
            "mnmcu reads int8 models (int8 activations and weights, int32 biases)",
        )


def check_shape(label: str, what: str, dims: Sequence[int], dtype: str) -> tuple[int, ...]:
    """The shape as a tuple: at most MAX_RANK dimensions, each >= 1, at most MAX_TENSOR_BYTES."""
    shape = tuple(dims)
    if len(shape) > MAX_RANK:
        raise InvalidModel(
            f"{label}: {what} has {len(shape)} dimensions {list(shape)}; "
            f"mnmcu handles up to {MAX_RANK}"
        )
    if min(shape, default=1) < 1:
        axis, d = next((a, d) for a, d in enumerate(shape) if d < 1)
        raise InvalidModel(
            f"{label}: {what} has shape {list(shape)}: dimension {axis} is {d}, "
            "it must be at least 1"
        )
    size = math.prod(shape) * DTYPE_SIZE[dtype]
    if size > MAX_TENSOR_BYTES:
        raise InvalidModel(
            f"{label}: {what} has shape {list(shape)} {dtype}, {size:,} bytes, more than "
            f"the {MAX_TENSOR_BYTES // MIB} MiB mnmcu allows per tensor",
            _LIMIT_HINT,
        )
    return shape


def check_constant(
    label: str, what: str, shape: tuple[int, ...], dtype: str, buffer: int, nbytes: int
) -> None:
    """A constant's buffer must hold exactly its shape's bytes."""
    expected = math.prod(shape) * DTYPE_SIZE[dtype]
    if nbytes != expected:
        raise InvalidModel(
            f"{label}: {what} has shape {list(shape)} {dtype} ({expected:,} bytes) "
            f"but its buffer {buffer} holds {nbytes:,} bytes"
        )


def check_quantization(
    label: str,
    what: str,
    dtype: str,
    shape: tuple[int, ...],
    scale: Sequence[float],
    zero_point: Sequence[int],
    axis: int,
) -> None:
    """Scales finite and > 0, one zero point per scale in the type's range; per channel, one
    scale per entry of ``axis``."""
    if not scale:
        return
    # min() may skip a NaN, but then the sum is NaN; an infinity makes the sum infinite.
    if not (min(scale) > 0 and math.isfinite(sum(scale))):
        value = next(s for s in scale if not 0 < s < math.inf)
        raise InvalidModel(
            f"{label}: {what} has quantization scale {value!r}; scales must be finite and above 0"
        )
    if len(zero_point) != len(scale):
        raise InvalidModel(
            f"{label}: {what} has {len(scale)} quantization scales and {len(zero_point)} "
            "zero points"
        )
    lo, hi = _ZERO_POINT_RANGE.get(dtype, (0, 0))
    if min(zero_point) < lo or max(zero_point) > hi:
        value = next(z for z in zero_point if not lo <= z <= hi)
        raise InvalidModel(
            f"{label}: {what} has zero point {value}, outside [{lo}, {hi}] for {dtype}"
        )
    if not 0 <= axis < max(len(shape), 1):
        raise InvalidModel(f"{label}: {what} is quantized along dimension {axis} of {list(shape)}")
    if len(scale) > 1 and (not shape or len(scale) != shape[axis]):
        raise InvalidModel(
            f"{label}: {what} has {len(scale)} quantization scales for shape {list(shape)} "
            f"(dimension {axis})"
        )


def refuse_features(label: str, what: str, features: Sequence[tuple[str, bool]]) -> None:
    """Refuse TFLite features mnmcu's runtimes do not implement (the first one present)."""
    for feature, present in features:
        if present:
            raise InvalidModel(f"{label}: {what} {feature}, which mnmcu does not support")


# The options type each op takes; ops in _OPTIONS_REQUIRED cannot do without.
_OPTIONS = {
    "CONV_2D": "Conv2DOptions",
    "DEPTHWISE_CONV_2D": "DepthwiseConv2DOptions",
    "AVERAGE_POOL_2D": "Pool2DOptions",
    "MAX_POOL_2D": "Pool2DOptions",
    "CONCATENATION": "ConcatenationOptions",
    "SQUEEZE": "SqueezeOptions",
    "EXPAND_DIMS": "ExpandDimsOptions",
    "MEAN": "ReducerOptions",
    "FULLY_CONNECTED": "FullyConnectedOptions",
    "ADD": "AddOptions",
    "MUL": "MulOptions",
    "HARD_SWISH": "HardSwishOptions",
    "PAD": "PadOptions",
    "RESHAPE": "ReshapeOptions",
    "SOFTMAX": "SoftmaxOptions",
    "QUANTIZE": "QuantizeOptions",
    "DEQUANTIZE": "DequantizeOptions",
    "SHAPE": "ShapeOptions",
    "STRIDED_SLICE": "StridedSliceOptions",
    "PACK": "PackOptions",
}
_OPTIONS_REQUIRED = frozenset(
    {"CONV_2D", "DEPTHWISE_CONV_2D", "AVERAGE_POOL_2D", "MAX_POOL_2D", "SOFTMAX", "PACK"}
)


def check_options_type(label: str, index: int, opcode: str, options_type: str) -> None:
    """An op's options table must be of the op's own type (``NONE`` where it has defaults)."""
    expected = _OPTIONS.get(opcode)
    if expected is None or options_type == expected:
        return
    if options_type == "NONE" and opcode not in _OPTIONS_REQUIRED:
        return
    raise InvalidModel(
        f"{label}: op {index} {opcode} has options of type {options_type}; it takes {expected}"
    )


# --------------------------------------------------------------------------
# Rules on the whole graph
# --------------------------------------------------------------------------


def check_graph(graph: Graph) -> None:
    """Raise :class:`InvalidModel` on the first rule ``graph`` breaks (see the module doc)."""
    label = graph.source or "model"
    if len(graph.tensors) > MAX_TENSORS or len(graph.ops) > MAX_OPS:
        raise InvalidModel(
            f"{label} has {len(graph.tensors):,} tensors and {len(graph.ops):,} ops; "
            f"mnmcu reads up to {MAX_TENSORS:,} tensors and {MAX_OPS:,} ops",
            _LIMIT_HINT,
        )
    _check_io(graph, label)
    _check_order(graph, label)
    for op in graph.ops:
        _check_op(graph, op, label)
    activations = sum(t.nbytes for t in graph.tensors if not t.is_constant)
    if activations > MAX_ACTIVATION_BYTES:
        raise InvalidModel(
            f"{label}: its activations take {activations:,} bytes together, more than "
            f"the {MAX_ACTIVATION_BYTES // MIB} MiB mnmcu allows",
            _LIMIT_HINT,
        )


def check_single_image(graph: Graph) -> None:
    """Commands that run the model on one image (emit, verify, hil) need batch 1."""
    t = graph.input
    if t.shape[0] != 1:
        raise InvalidModel(
            f"{graph.source or 'model'}: the graph input {_label(graph, t.index)} has shape "
            f"{list(t.shape)}, batch {t.shape[0]}; the firmware and verify run one image at a time",
            "convert the model with batch size 1 (keras.Input(..., batch_size=1))",
        )


def _label(graph: Graph, index: int) -> str:
    return tensor_label(index, graph.tensors[index].name)


def _check_io(graph: Graph, label: str) -> None:
    n = len(graph.tensors)
    if len(graph.inputs) != 1 or len(graph.outputs) != 1:
        raise InvalidModel(
            f"{label} has {len(graph.inputs)} inputs and {len(graph.outputs)} outputs; "
            "mnmcu handles models with one of each"
        )
    for what, index in (("input", graph.inputs[0]), ("output", graph.outputs[0])):
        if not 0 <= index < n:
            raise InvalidModel(
                f"{label}: the graph {what} is tensor {index}, but the model has {n} tensors"
            )
        t = graph.tensors[index]
        if t.is_constant:
            raise InvalidModel(f"{label}: the graph {what} {_label(graph, index)} is a constant")
        if what == "input" and not 2 <= len(t.shape) <= 4:
            raise InvalidModel(
                f"{label}: the graph input {_label(graph, index)} has shape {list(t.shape)}; "
                "mnmcu takes [batch, features], [batch, height, width] or "
                "[batch, height, width, channels]"
            )
    if not graph.ops:
        raise InvalidModel(f"{label} has no ops")


def _check_order(graph: Graph, label: str) -> None:
    n = len(graph.tensors)
    writer: dict[int, int] = {}
    for op in graph.ops:
        for t in op.outputs:
            writer.setdefault(t, op.index)
    ready = {graph.inputs[0]} | {t.index for t in graph.tensors if t.is_constant}
    for op in graph.ops:
        where = f"{label}: op {op.index} {op.opcode}"
        for t in op.inputs:
            if t == -1:
                continue
            if not 0 <= t < n:
                raise InvalidModel(f"{where} reads tensor {t}, but the model has {n} tensors")
            if t in ready:
                continue
            if writer.get(t, -1) >= op.index:
                raise InvalidModel(
                    f"{where} reads {_label(graph, t)} before op {writer[t]} writes it "
                    "(ops must come in execution order)"
                )
            raise InvalidModel(
                f"{where} reads {_label(graph, t)}, which is neither the graph input, "
                "a constant nor written by an op"
            )
        for t in op.outputs:
            if not 0 <= t < n:
                raise InvalidModel(f"{where} writes tensor {t}, but the model has {n} tensors")
            if t in ready:
                what = (
                    "the graph input"
                    if t == graph.inputs[0]
                    else "a constant"
                    if graph.tensors[t].is_constant
                    else f"also written by op {writer[t]}"
                )
                raise InvalidModel(f"{where} writes {_label(graph, t)}, {what}")
            ready.add(t)
    out = graph.outputs[0]
    if out not in writer:
        raise InvalidModel(f"{label}: no op writes the graph output {_label(graph, out)}")


# --------------------------------------------------------------------------
# Each op: inputs, options, output shape
# --------------------------------------------------------------------------


class _Op:
    """One op being checked: its tensors and options, and errors that name it."""

    def __init__(self, graph: Graph, op: Op, label: str) -> None:
        self.graph, self.op, self.options = graph, op, op.options
        self.where = f"{label}: op {op.index} {op.opcode}"

    def fail(self, message: str) -> InvalidModel:
        return InvalidModel(f"{self.where}: {message}")

    def tensor(self, position: int) -> Tensor:
        return self.graph.tensors[self.op.inputs[position]]

    def optional(self, position: int) -> Tensor | None:
        """Input ``position``, or None when the op leaves it out."""
        if len(self.op.inputs) <= position or self.op.inputs[position] < 0:
            return None
        return self.tensor(position)

    def rank(self, position: int, ranks: Sequence[int], what: str) -> tuple[int, ...]:
        shape = self.tensor(position).shape
        if len(shape) not in ranks:
            expected = " or ".join(str(r) for r in ranks)
            raise self.fail(f"its {what} has shape {list(shape)}, not {expected} dimensions")
        return shape

    def integer(self, key: str, low: int = 1, high: int = MAX_WINDOW, default: int = 1) -> int:
        value = int(self.options.get(key, default))
        if not low <= value <= high:
            raise self.fail(f"{key} is {value}, outside [{low}, {high}]")
        return value

    def activation(self) -> None:
        act = str(self.options.get("fused_activation_function", "NONE"))
        if act not in FUSED_ACTIVATIONS:
            raise self.fail(
                f"fused activation {act}; mnmcu supports {', '.join(FUSED_ACTIVATIONS)}"
            )

    def window(self, size: int, kernel: int, stride: int, dilation: int, axis: str) -> int:
        """TFLite's ComputeOutSize for SAME and VALID padding."""
        padding = self.options.get("padding")
        if padding not in ("SAME", "VALID"):
            raise self.fail(f"padding {padding}; TFLite has SAME and VALID")
        if not 1 <= kernel <= MAX_WINDOW:
            raise self.fail(f"its window is {kernel} wide along {axis}, outside [1, {MAX_WINDOW}]")
        effective = (kernel - 1) * dilation + 1
        out = (
            (size + stride - 1) // stride if padding == "SAME" else (size - effective) // stride + 1
        )
        if out < 1:
            raise self.fail(
                f"its {effective}-wide window does not fit the input's {size} along {axis} "
                "(VALID padding)"
            )
        return out

    def ints(self, position: int, what: str, ranks: Sequence[int] = (0, 1)) -> list[int]:
        """The values of a constant int32 (or int64) operand of one of ``ranks``."""
        t = self.tensor(position)
        if t.data is None or t.dtype not in ("int32", "int64") or len(t.shape) not in ranks:
            raise self.fail(
                f"its {what} must be a constant int32 tensor of {' or '.join(map(str, ranks))} "
                f"dimensions, not {t.dtype} {list(t.shape)}"
            )
        return [int(v) for v in t.data.reshape(-1)]


def _conv(c: _Op) -> tuple[int, ...]:
    n, h, w, cin = c.rank(0, (4,), "input")
    filt = c.rank(1, (4,), "filter")
    sh, sw = c.integer("stride_h"), c.integer("stride_w")
    dh, dw = c.integer("dilation_h_factor"), c.integer("dilation_w_factor")
    c.activation()
    if c.op.opcode == "DEPTHWISE_CONV_2D":
        cout = filt[3]
        multiplier = int(c.options.get("depth_multiplier", 1))
        if filt[0] != 1 or cout != cin * multiplier:
            raise c.fail(
                f"its filter {list(filt)} does not fit {cin} input channels with depth "
                f"multiplier {multiplier} (expected [1, kh, kw, {cin * multiplier}])"
            )
    else:
        cout = filt[0]  # grouped: each of cin / filt[3] groups has cout / groups filters
        if cin % filt[3] or cout % (cin // filt[3]):
            raise c.fail(f"its filter {list(filt)} does not fit {cin} input channels")
    _weights(c, 3 if c.op.opcode == "DEPTHWISE_CONV_2D" else 0, cout)
    _bias(c, cout)
    if c.tensor(0).dtype == "int8" and c.optional(2) is None:
        raise c.fail("it has no bias; TFLite's int8 convolutions need one")
    return (
        n,
        c.window(h, filt[1], sh, dh, "height"),
        c.window(w, filt[2], sw, dw, "width"),
        cout,
    )


def _weights(c: _Op, axis: int, channels: int) -> None:
    """Quantized int8 weights as TFLite's int8 kernels take them: one scale per output
    channel along ``axis`` (or one for all), symmetric (zero point 0) except a
    FULLY_CONNECTED's per-tensor ones."""
    w = c.tensor(1)
    q = w.quantization
    if w.dtype != "int8" or q is None:
        return
    if any(q.zero_point) and (len(q.scale) > 1 or c.op.opcode != "FULLY_CONNECTED"):
        raise c.fail(f"its weights have zero points {sorted(set(q.zero_point))}, not 0")
    if len(q.scale) > 1 and (q.axis != axis or len(q.scale) != channels):
        raise c.fail(
            f"its weights have {len(q.scale)} scales along dimension {q.axis}; per-channel "
            f"weights have {channels} along dimension {axis}"
        )


def _bias(c: _Op, channels: int) -> None:
    bias = c.optional(2)
    if bias is not None and bias.shape != (channels,):
        raise c.fail(f"its bias has shape {list(bias.shape)}, not [{channels}]")


def _pool(c: _Op) -> tuple[int, ...]:
    n, h, w, ch = c.rank(0, (4,), "input")
    c.activation()
    kh, kw = c.integer("filter_height"), c.integer("filter_width")
    sh, sw = c.integer("stride_h"), c.integer("stride_w")
    return n, c.window(h, kh, sh, 1, "height"), c.window(w, kw, sw, 1, "width"), ch


def _fully_connected(c: _Op) -> tuple[int, ...]:
    x = c.tensor(0)
    units, depth = c.rank(1, (2,), "weights")
    c.activation()
    if int(c.options.get("weights_format", 0)) != 0:
        raise c.fail("its weights are shuffled; mnmcu reads the DEFAULT format")
    if x.elements % depth:
        raise c.fail(f"its input {list(x.shape)} is not a whole number of rows of {depth}")
    _weights(c, 0, units)
    _bias(c, units)
    if c.options.get("keep_num_dims", False):
        if x.shape[-1:] != (depth,):
            raise c.fail(f"its input {list(x.shape)} does not end in {depth} (keep_num_dims)")
        return (*x.shape[:-1], units)
    return x.elements // depth, units


def _mean(c: _Op) -> tuple[int, ...]:
    shape = c.tensor(0).shape
    axes = c.ints(1, "axes")
    rank = len(shape)
    if not axes or any(not -rank <= a < rank for a in axes):
        raise c.fail(f"axes {axes} do not fit its input {list(shape)}")
    reduced = {a % rank for a in axes}
    if c.options.get("keep_dims", False):
        return tuple(1 if i in reduced else d for i, d in enumerate(shape))
    return tuple(d for i, d in enumerate(shape) if i not in reduced)


def _broadcast(c: _Op) -> tuple[int, ...]:
    a, b = c.tensor(0).shape, c.tensor(1).shape
    c.activation()
    if c.op.opcode == "ADD":
        _add_scales(c)
    out = []
    for i in range(1, max(len(a), len(b)) + 1):
        da, db = a[-i] if i <= len(a) else 1, b[-i] if i <= len(b) else 1
        if da != db and 1 not in (da, db):
            raise c.fail(f"cannot broadcast {list(a)} with {list(b)}")
        out.append(max(da, db))
    return tuple(reversed(out))


def _add_scales(c: _Op) -> None:
    """TFLite's int8 ADD aborts the process unless 2 max(input scales) < 2^20 output scale."""
    q1, q2 = c.tensor(0).quantization, c.tensor(1).quantization
    qo = c.graph.tensors[c.op.outputs[0]].quantization
    if q1 is None or q2 is None or qo is None:
        return
    twice_max = 2.0 * max(q1.scale[0], q2.scale[0])
    if twice_max >= (1 << 20) * qo.scale[0]:
        raise c.fail(
            f"output scale {qo.scale[0]!r} is too small for input scales {q1.scale[0]!r} "
            f"and {q2.scale[0]!r} (TFLite needs 2 x the larger one below 2^20 x the output's)"
        )


def _elementwise(c: _Op) -> tuple[int, ...]:
    shape = c.tensor(0).shape
    if c.op.opcode == "SOFTMAX":
        beta = float(c.options.get("beta", 0.0))
        if not (math.isfinite(beta) and beta > 0) or not shape:
            raise c.fail(f"beta {beta!r} on shape {list(shape)}; beta must be finite and > 0")
        out = c.graph.tensors[c.op.outputs[0]]
        q = out.quantization
        if (
            out.dtype == "int8"
            and q is not None
            and (q.zero_point[0] != -128 or abs(q.scale[0] - 1 / 256) > 0.001 / 256)
        ):
            raise c.fail(
                f"its int8 output has scale {q.scale[0]!r} and zero point {q.zero_point[0]}; "
                "TFLite's softmax writes scale 1/256, zero point -128"
            )
    return shape


def _pad(c: _Op) -> tuple[int, ...]:
    shape = c.tensor(0).shape
    pads = c.ints(1, "paddings", ranks=(2,))
    if len(pads) != 2 * len(shape) or any(not 0 <= p <= MAX_WINDOW for p in pads):
        raise c.fail(f"paddings {pads} do not fit its input {list(shape)}")
    return tuple(d + pads[2 * i] + pads[2 * i + 1] for i, d in enumerate(shape))


def _reshape(c: _Op) -> tuple[int, ...]:
    x = c.tensor(0)
    out = c.graph.tensors[c.op.outputs[0]].shape
    if math.prod(out) != x.elements:
        raise c.fail(f"turns {list(x.shape)} ({x.elements} values) into {list(out)}")
    shape_t = c.optional(1)
    if shape_t is not None and shape_t.is_constant:
        wanted = c.ints(1, "shape", ranks=(1,))
    else:
        wanted = [int(d) for d in c.options.get("new_shape", [])]
    if wanted and -1 in wanted and wanted.count(-1) == 1:
        known = math.prod(d for d in wanted if d != -1)
        wanted[wanted.index(-1)] = x.elements // known if known > 0 else -1
    if wanted and tuple(wanted) != out:
        raise c.fail(f"its shape operand {wanted} differs from its output {list(out)}")
    return out


def _concatenation(c: _Op) -> tuple[int, ...]:
    shapes = [c.tensor(i).shape for i in range(len(c.op.inputs))]
    rank = len(shapes[0])
    axis = int(c.options.get("axis", 0))
    if str(c.options.get("fused_activation_function", "NONE")) != "NONE":
        raise c.fail("it has a fused activation; mnmcu concatenates without one")
    if not -rank <= axis < rank:
        raise c.fail(f"axis {axis} does not fit inputs of rank {rank}")
    axis %= rank
    for shape in shapes:
        if len(shape) != rank or any(
            d != e for i, (d, e) in enumerate(zip(shape, shapes[0], strict=True)) if i != axis
        ):
            raise c.fail(f"inputs {[list(s) for s in shapes]} differ off axis {axis}")
    return (*shapes[0][:axis], sum(s[axis] for s in shapes), *shapes[0][axis + 1 :])


def _squeeze(c: _Op) -> tuple[int, ...]:
    shape = c.tensor(0).shape
    dims = [int(d) for d in c.options.get("squeeze_dims", None) or []]
    rank = len(shape)
    if any(not -rank <= d < rank for d in dims):
        raise c.fail(f"squeeze_dims {dims} do not fit its input {list(shape)}")
    chosen = {d % rank for d in dims} or {i for i, d in enumerate(shape) if d == 1}
    if any(shape[i] != 1 for i in chosen):
        raise c.fail(f"squeeze_dims {dims} name dimensions of {list(shape)} that are not 1")
    return tuple(d for i, d in enumerate(shape) if i not in chosen)


def _expand_dims(c: _Op) -> tuple[int, ...]:
    shape = c.tensor(0).shape
    axis = c.ints(1, "axis")
    if len(axis) != 1 or not -len(shape) - 1 <= axis[0] <= len(shape):
        raise c.fail(f"axis {axis} does not fit its input {list(shape)}")
    at = axis[0] % (len(shape) + 1)
    return (*shape[:at], 1, *shape[at:])


def _shape(c: _Op) -> tuple[int, ...]:
    out_type = {2: "int32", 4: "int64"}.get(int(c.options.get("out_type", 2)))
    out = c.graph.tensors[c.op.outputs[0]]
    if out_type != out.dtype:
        raise c.fail(f"its output {_label(c.graph, out.index)} is {out.dtype}, not {out_type}")
    return (len(c.tensor(0).shape),)


def _strided_slice(c: _Op) -> tuple[int, ...]:
    data = c.rank(0, (1,), "input")
    for position, what in ((1, "begin"), (2, "end"), (3, "strides")):
        if c.tensor(position).shape != (1,):
            raise c.fail(f"its {what} has shape {list(c.tensor(position).shape)}, not [1]")
    if c.options.get("ellipsis_mask", 0) or c.options.get("new_axis_mask", 0):
        raise c.fail("ellipsis and new-axis masks are not supported")
    out = c.graph.tensors[c.op.outputs[0]].shape
    if len(out) > 1 or math.prod(out) > data[0]:
        raise c.fail(f"its output {list(out)} is not a slice of {list(data)}")
    return out


def _pack(c: _Op) -> tuple[int, ...]:
    shapes = {c.tensor(i).shape for i in range(len(c.op.inputs))}
    count = int(c.options.get("values_count", 0))
    if len(shapes) != 1 or count != len(c.op.inputs):
        raise c.fail(
            f"packs {count} values from {len(c.op.inputs)} inputs of shapes {sorted(shapes)}"
        )
    (shape,) = shapes
    axis = int(c.options.get("axis", 0))
    if not -len(shape) - 1 <= axis <= len(shape):
        raise c.fail(f"axis {axis} does not fit inputs of shape {list(shape)}")
    axis %= len(shape) + 1
    return (*shape[:axis], count, *shape[axis:])


@dataclass(frozen=True)
class _Rule:
    """Inputs an op takes (``optional`` may be -1), which must be constant, and its shape rule."""

    inputs: tuple[int, int]
    shape: Callable[[_Op], tuple[int, ...]]
    constant: tuple[int, ...] = ()
    optional: tuple[int, ...] = ()


_RULES = {
    "CONV_2D": _Rule((2, 3), _conv, constant=(1, 2), optional=(2,)),
    "DEPTHWISE_CONV_2D": _Rule((2, 3), _conv, constant=(1, 2), optional=(2,)),
    "FULLY_CONNECTED": _Rule((2, 3), _fully_connected, constant=(1, 2), optional=(2,)),
    "AVERAGE_POOL_2D": _Rule((1, 1), _pool),
    "MAX_POOL_2D": _Rule((1, 1), _pool),
    "CONCATENATION": _Rule((1, MAX_TENSORS), _concatenation),
    "LOGISTIC": _Rule((1, 1), _elementwise),
    "TANH": _Rule((1, 1), _elementwise),
    "SQUEEZE": _Rule((1, 1), _squeeze),
    "EXPAND_DIMS": _Rule((2, 2), _expand_dims, constant=(1,)),
    "MEAN": _Rule((2, 2), _mean, constant=(1,)),
    "ADD": _Rule((2, 2), _broadcast),
    "MUL": _Rule((2, 2), _broadcast),
    "HARD_SWISH": _Rule((1, 1), _elementwise),
    "RELU": _Rule((1, 1), _elementwise),
    "RELU6": _Rule((1, 1), _elementwise),
    "QUANTIZE": _Rule((1, 1), _elementwise),
    "DEQUANTIZE": _Rule((1, 1), _elementwise),
    "SOFTMAX": _Rule((1, 1), _elementwise),
    "PAD": _Rule((2, 2), _pad, constant=(1,)),
    "RESHAPE": _Rule((1, 2), _reshape),
    "SHAPE": _Rule((1, 1), _shape),
    "STRIDED_SLICE": _Rule((4, 4), _strided_slice),
    "PACK": _Rule((1, MAX_TENSORS), _pack),
}


def _check_op(graph: Graph, op: Op, label: str) -> None:
    rule = _RULES.get(op.opcode)
    if rule is None:  # not an op mnmcu runs: check_int8_mobilenet names it
        return
    c = _Op(graph, op, label)
    low, high = rule.inputs
    if not low <= len(op.inputs) <= high or len(op.outputs) != 1:
        takes = str(low) if low == high else f"{low} to {high}"
        raise c.fail(
            f"has {len(op.inputs)} inputs and {len(op.outputs)} outputs; it takes {takes} "
            "inputs and one output"
        )
    for position, index in enumerate(op.inputs):
        if index == -1:
            if position not in rule.optional:
                raise c.fail(f"input {position} is missing")
        elif position in rule.constant and not graph.tensors[index].is_constant:
            raise c.fail(f"input {position} {_label(graph, index)} must be a constant")
    for index in (*op.inputs, *op.outputs):
        t = graph.tensors[index] if index >= 0 else None
        if t is not None and t.dtype in _QUANTIZED_TYPES and t.quantization is None:
            # TFLite's integer kernels would divide by its scale of 0 (softmax aborts)
            raise c.fail(f"{_label(graph, index)} is {t.dtype} without quantization parameters")
    expected = rule.shape(c)
    out = graph.tensors[op.outputs[0]]
    if out.shape != expected:
        raise c.fail(
            f"its inputs give shape {list(expected)}, but its output "
            f"{_label(graph, out.index)} has shape {list(out.shape)}"
        )
