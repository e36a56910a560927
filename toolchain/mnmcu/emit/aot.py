"""The ahead-of-time (AOT) int8 runtime: a model as generated C over one arena.

:func:`emit_aot` turns a :class:`~mnmcu.graph.Graph` and its
:class:`~mnmcu.plan.MemoryPlan` into ``mnmcu_model_<name>.h/.c`` that call
the kernels of ``firmware/aot`` in graph order. Every requantisation constant
is computed at generation time (:mod:`mnmcu.qmath`, the way TFLite's kernels
compute it in their Prepare functions), so that the C side needs integer
arithmetic only.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol, cast

import numpy as np

from mnmcu.boards import Board
from mnmcu.emit import cgen
from mnmcu.errors import InvalidValue, UnsupportedModel
from mnmcu.fixedpoint import logistic_table, tanh_table
from mnmcu.graph import ALIAS_OPS, DYNAMIC_SHAPE_OPS, Graph, Op, Tensor
from mnmcu.log import logger
from mnmcu.outdir import write_file
from mnmcu.paths import data_dir
from mnmcu.plan import MemoryPlan
from mnmcu.qmath import (  # noqa: F401 - re-exported: the kernels' constants
    _F32,
    ARITHMETICS,
    INT8_MAX,
    INT8_MIN,
    activation_range,
    add_input_table,
    add_params,
    conv_multiplier,
    double_parts,
    hard_swish_params,
    hard_swish_table,
    mbqm,
    mean_multiplier,
    mul_const_table,
    out_size,
    padding,
    quantize_multiplier,
    quantize_value,
    requant_multiplier,
    requantize_table,
    softmax_params,
)

# Ops whose kernels may write their output over their first input (same
# pointer) when that input has the output's shape.
_INPLACE_OPCODES = frozenset(
    {"ADD", "MUL", "HARD_SWISH", "QUANTIZE", "RELU", "RELU6", "LOGISTIC", "TANH"}
)

# Kernel source file of each op; mnmcu_common.c is always needed.
_KERNEL_SOURCES = {
    "CONV_2D": "mnmcu_conv.c",
    "DEPTHWISE_CONV_2D": "mnmcu_conv.c",
    "FULLY_CONNECTED": "mnmcu_fully_connected.c",
    "AVERAGE_POOL_2D": "mnmcu_pool.c",
    "MAX_POOL_2D": "mnmcu_pool.c",
    "MEAN": "mnmcu_pool.c",
    "CONCATENATION": "mnmcu_concat.c",
    "LOGISTIC": "mnmcu_elementwise.c",
    "TANH": "mnmcu_elementwise.c",
    "ADD": "mnmcu_elementwise.c",
    "MUL": "mnmcu_elementwise.c",
    "HARD_SWISH": "mnmcu_elementwise.c",
    "QUANTIZE": "mnmcu_elementwise.c",
    "RELU": "mnmcu_elementwise.c",
    "RELU6": "mnmcu_elementwise.c",
    "PAD": "mnmcu_pad.c",
    "SOFTMAX": "mnmcu_softmax.c",
}
_KERNEL_HEADERS = ("include/mnmcu_kernels.h", "src/mnmcu_fixedpoint.h")

KERNEL_SETS = ("portable", "dsp", "helium")
"""Kernel sets: the portable C kernels, Arm DSP-extension kernels, Helium (MVE) kernels."""
# Files the fast kernels add, per kernel set.
_FAST_FILES = {
    "dsp": (
        "include/mnmcu_kernels_fast.h",
        "src/mnmcu_dsp.h",
        "src/mnmcu_mve.h",
        "src/mnmcu_conv_dsp.c",
        "src/mnmcu_depthwise_dsp.c",
        "src/mnmcu_elementwise_dsp.c",
    ),
    "helium": (
        "include/mnmcu_kernels_fast.h",
        "src/mnmcu_dsp.h",
        "src/mnmcu_mve.h",
        "src/mnmcu_conv_dsp.c",
        "src/mnmcu_conv_mve.c",
        "src/mnmcu_depthwise_dsp.c",
        "src/mnmcu_elementwise_dsp.c",
    ),
}
# Ops that have fast kernels (convolutions; MEAN, the table lookups of the
# element-wise functions, ADD and MUL where their shapes allow).
_FAST_OPCODES = frozenset(
    {"CONV_2D", "DEPTHWISE_CONV_2D", "ADD", "MUL", "MEAN"}
    | {"HARD_SWISH", "QUANTIZE", "RELU", "RELU6"}
)
# The fast MEAN sums H * W values below 2^30 in magnitude (mnmcu_elementwise_dsp.c).
_FAST_MEAN_MAX_COUNT = (1 << 22) - 1
# Accumulators of the fast kernels stay below this, and their shifts within
# [_FAST_MIN_SHIFT, -1] (see mnmcu_kernels_fast.h).
_FAST_ACC_LIMIT = 1 << 30
_FAST_MIN_SHIFT = -22
# Bytes of the DSP convolutions' prepared constants per pair of output channels.
_PAIR_BYTES = 32
_POINTER_BYTES = 4  # on the 32-bit targets the sizes are estimated for
_C_TYPE_BYTES = {"int8_t": 1, "uint8_t": 1, "int16_t": 2, "int32_t": 4, "int64_t": 8}


# --------------------------------------------------------------------------
# What the planner needs to know about the kernels
# --------------------------------------------------------------------------


def _dims4(shape: Sequence[int], what: str = "tensor") -> tuple[int, int, int, int]:
    if len(shape) > 4:
        raise UnsupportedModel(f"{what} has rank {len(shape)}; the AOT kernels take up to 4")
    full = (1,) * (4 - len(shape)) + tuple(int(d) for d in shape)
    return full[0], full[1], full[2], full[3]


def inplace_ops(graph: Graph) -> set[int]:
    """Ops whose kernels may write their output over their first input (same pointer)."""
    ops = set()
    for op in graph.ops:
        if op.opcode not in _INPLACE_OPCODES or not op.inputs or op.inputs[0] < 0:
            continue
        src, dst = graph.tensor(op.inputs[0]), graph.tensor(op.outputs[0])
        if len(src.shape) <= 4 and len(dst.shape) <= 4 and _dims4(src.shape) == _dims4(dst.shape):
            ops.add(op.index)
    return ops


def default_kernels(arch: str, dsp: bool, helium: bool) -> str:
    """The kernel set for a core: ``helium`` with MVE, ``dsp`` on Arm with the DSP extension."""
    if arch != "arm":
        return "portable"
    if helium:
        return "helium"
    return "dsp" if dsp else "portable"


def check_arithmetic(arithmetic: str) -> None:
    """Refuse an arithmetic not in :data:`ARITHMETICS`."""
    if arithmetic not in ARITHMETICS:
        raise InvalidValue(
            f"unknown arithmetic {arithmetic!r}", f"choose one of {', '.join(ARITHMETICS)}"
        )


SCHEDULES = ("layer", "stream")
"""AOT schedules: every op over whole tensors, or the first ops row by row (:mod:`mnmcu.stream`)."""


def check_schedule(schedule: str) -> None:
    """Refuse a schedule not in :data:`SCHEDULES`."""
    if schedule not in SCHEDULES:
        raise InvalidValue(f"unknown schedule {schedule!r}", f"use one of {', '.join(SCHEDULES)}")


class _StreamPlan(Protocol):
    """What emit_aot needs of a :class:`mnmcu.stream.StreamPlan`."""

    def stream_context(self, graph: Graph, calls: list[Call]) -> dict[str, object] | None: ...


def _check_kernels(kernels: str) -> None:
    if kernels not in KERNEL_SETS:
        raise InvalidValue(
            f"unknown kernel set {kernels!r}", f"use one of {', '.join(KERNEL_SETS)}"
        )


def scratch_bytes(graph: Graph, kernels: str = "portable") -> dict[int, int]:
    """Scratch bytes per op, as the kernels' ``_get_buffer_size()`` report.

    The portable kernels need none; the fast convolutions of ``kernels``
    need an int16 copy of one or two pixels or windows.
    """
    _check_kernels(kernels)
    sizes = {}
    for op in graph.ops:
        fast = fast_conv(graph, op, kernels)
        if fast is not None and fast.scratch:
            sizes[op.index] = fast.scratch
    return sizes


@dataclass(frozen=True)
class FastConv:
    """A convolution lowered to a fast kernel: its function and rearranged constants."""

    function: str
    filter: np.ndarray
    bias: np.ndarray
    scratch: int
    filter_type: str = "int8_t"
    takes_scratch: bool = True


def _requant_shifts(graph: Graph, op: Op, channels: int) -> list[int] | None:
    inp, filt, out = (graph.tensor(i) for i in (op.inputs[0], op.inputs[1], op.outputs[0]))
    q, qi, qo = filt.quantization, inp.quantization, out.quantization
    if q is None or qi is None or qo is None or not q.scale or len(q.scale) not in (1, channels):
        return None
    if len(qi.scale) != 1 or len(qo.scale) != 1 or any(z != 0 for z in q.zero_point):
        return None
    scales = q.scale if len(q.scale) == channels else q.scale * channels
    in_scale, out_scale = float(qi.scale[0]), float(qo.scale[0])
    return [conv_multiplier(in_scale, float(sc), out_scale)[1] for sc in scales]


# Scratch the DSP depthwise kernel aims at (DW_SCRATCH_BYTES and DW_RING_BYTES of
# mnmcu_depthwise_dsp.c): whole padded maps, and rings of rows for large maps.
_DW_SCRATCH_BYTES = 8192
_DW_RING_BYTES = 4096


def _dw_fast(kernel: tuple[int, int], dil: tuple[int, int], multiplier: int) -> bool:
    """Whether a depthwise convolution's shape has a fast kernel: no dilation, KH <= 5."""
    return multiplier == 1 and dil == (1, 1) and kernel[0] <= 5


def _dw_scratch(
    kernel: tuple[int, int], channels: int, out_hw: tuple[int, int], strides: tuple[int, int]
) -> int:
    """The DSP depthwise kernel's scratch (mnmcu_depthwise_dsp.c): int16 rows of a chunk
    of channels, the whole padded map where four channels of it fit in 8 KiB, else KH + 1
    rows (chunks within 4 KiB)."""
    width = ((((out_hw[1] + 3) & ~3) - 1) * strides[1] + kernel[1] + 2) & ~1
    plane = (out_hw[0] - 1) * strides[0] + kernel[0]
    held = plane if 4 * plane * width * 2 <= _DW_SCRATCH_BYTES else kernel[0] + 1
    limit = _DW_SCRATCH_BYTES if held == plane else _DW_RING_BYTES
    per_channel = held * width * 2
    if channels * per_channel <= limit:
        return channels * per_channel
    return max(4, limit // per_channel & ~3) * per_channel


def _dw_weights(rows: np.ndarray, kernel: tuple[int, int]) -> np.ndarray:
    """Depthwise weights [C, KH*KW] as the DSP kernel's words: per channel and filter row,
    the doubled weights as int16 pairs (even tap low), an odd last tap alone."""
    kh, kw = kernel
    taps = rows.reshape(-1, kh, kw) * 2
    if kw & 1:
        taps = np.concatenate([taps, np.zeros((taps.shape[0], kh, 1), dtype=np.int64)], axis=2)
    low, high = taps[..., 0::2], taps[..., 1::2]
    words = (low & 0xFFFF) | (high << 16)
    return words.astype(np.int64).reshape(-1)


# DSP convolutions with at least this many output pixels keep their weights as int16
# (twice the bytes, three fewer instructions per 24 multiply-accumulates); below, the
# weights are many for the work they do.
_DSP_WIDE_MIN_PIXELS = 36


def _dsp_wide(pixels: int) -> bool:
    """Whether a DSP convolution of ``pixels`` output pixels takes int16 weights."""
    return pixels >= _DSP_WIDE_MIN_PIXELS


def _window_order(kh: int, row_bytes: int) -> np.ndarray:
    """The DSP convolutions' order of a window's values (mnmcu_conv_dsp.c expand_windows()):
    each row's whole words, row after row, then each row's last row_bytes % 4 values."""
    full = row_bytes // 4 * 4
    rows = np.arange(kh * row_bytes).reshape(kh, row_bytes)
    return np.concatenate([rows[:, :full].reshape(-1), rows[:, full:].reshape(-1)])


def _conv_scratch(one: bool, kh: int, row_bytes: int, channels: int) -> int:
    """A DSP convolution's scratch: three int16 pixels, prepared constants, window copies."""
    groups = kh * (row_bytes // 4) + -(-kh * (row_bytes % 4) // 4)
    prepared = _PAIR_BYTES // 2 * (channels + (channels & 1))
    window = 0 if one else 3 * (-(-kh * row_bytes // 4) * 4)
    return 24 * groups + prepared + window


def _mve_conv_scratch(depth: int) -> int:
    """The Helium convolution's scratch: two windows, rounded up to 16 bytes each."""
    return 2 * (-(-depth // 16) * 16)


@dataclass(frozen=True)
class ConvShape:
    """What :func:`fast_conv` lays out for a convolution, known from its shapes alone."""

    function: str
    filter_bytes: int
    bias_bytes: int
    scratch: int
    takes_scratch: bool = True


def fast_conv_shape(graph: Graph, op: Op, kernels: str) -> ConvShape | None:
    """The fast kernel and constant sizes of ``op`` if its weights pass :func:`fast_conv`'s
    range check (shapes alone; ``None`` where the shape has no fast kernel)."""
    if kernels == "portable" or op.opcode not in ("CONV_2D", "DEPTHWISE_CONV_2D"):
        return None
    inp, filt, out = (graph.tensor(i) for i in (op.inputs[0], op.inputs[1], op.outputs[0]))
    if len(inp.shape) != 4 or len(out.shape) != 4 or len(filt.shape) != 4:
        return None
    kernel = (int(filt.shape[1]), int(filt.shape[2]))
    channels, out_hw = int(out.shape[3]), (int(out.shape[1]), int(out.shape[2]))
    strides = (int(op.options["stride_h"]), int(op.options["stride_w"]))
    dil = (int(op.options.get("dilation_h_factor", 1)), int(op.options.get("dilation_w_factor", 1)))
    if op.opcode == "DEPTHWISE_CONV_2D":
        if int(inp.shape[3]) != channels or int(filt.shape[0]) != 1:
            return None
        if not _dw_fast(kernel, dil, 1):
            return None
        words = channels * kernel[0] * (-(-kernel[1] // 2))
        return ConvShape(
            "mnmcu_depthwise_conv2d_s8_dsp_run",
            4 * words,
            4 * channels,
            _dw_scratch(kernel, channels, out_hw, strides),
        )
    if int(inp.shape[3]) != int(filt.shape[3]):
        return None  # grouped
    depth = kernel[0] * kernel[1] * int(inp.shape[3])
    one = kernel == (1, 1) and strides == (1, 1)
    if kernels == "helium":
        quads = -(-channels // 4) * 4
        constants = (quads * (-(-depth // 16) * 16), 4 * quads)
        if one:
            return ConvShape("mnmcu_conv2d_1x1_s8_mve_run", *constants, 0, False)
        return ConvShape("mnmcu_conv2d_s8_mve_run", *constants, _mve_conv_scratch(depth))
    even = channels + (channels & 1)
    function = "mnmcu_conv2d_1x1_s8_dsp" if one else "mnmcu_conv2d_s8_dsp"
    scratch = _conv_scratch(one, kernel[0], kernel[1] * int(inp.shape[3]), channels)
    filter_bytes = even * (-(-depth // 4) * 4)
    if _dsp_wide(out_hw[0] * out_hw[1]):
        return ConvShape(function + "16_run", 2 * filter_bytes, 4 * even, scratch)
    return ConvShape(function + "_run", filter_bytes, 4 * even, scratch)


def fast_function(graph: Graph, op: Op, kernels: str, bound: bool = False) -> str | None:
    """The fast kernel ``op`` runs on (:func:`fast_conv`), or None; with ``bound`` (weights
    unknown) the one its shapes allow (:func:`fast_conv_shape`)."""
    fast = fast_conv_shape(graph, op, kernels) if bound else fast_conv(graph, op, kernels)
    return None if fast is None else fast.function


def row_scratch_bytes(
    graph: Graph, op: Op, kernels: str, rows: int = 1, bound: bool = False
) -> int:
    """Scratch bytes of ``op``'s fast kernel called for ``rows`` output rows (0: none).

    The stream schedule calls a kernel with ``output.h = rows``; only the DSP
    depthwise kernel's scratch depends on the output's height: its plane is
    then the input rows of those outputs, and it is given the rows of four
    channels (it then takes the channels four at a time). ``bound``: the
    weights are unknown, every shape that has a fast kernel takes it.
    """
    fast = fast_conv_shape(graph, op, kernels) if bound else fast_conv(graph, op, kernels)
    if fast is None or not fast.scratch:
        return 0
    if fast.function != "mnmcu_depthwise_conv2d_s8_dsp_run":
        return fast.scratch
    filt, out = graph.tensor(op.inputs[1]), graph.tensor(op.outputs[0])
    strides = (int(op.options["stride_h"]), int(op.options["stride_w"]))
    kernel = (int(filt.shape[1]), int(filt.shape[2]))
    channels, out_w = int(out.shape[3]), int(out.shape[2])
    whole = _dw_scratch(kernel, channels, (rows, out_w), strides)
    return min(whole, _dw_scratch(kernel, min(4, channels), (rows, out_w), strides))


def scratch_bound(graph: Graph, kernels: str) -> dict[int, int]:
    """Scratch bytes per op if every convolution took its fast path (shapes alone).

    :func:`fast_conv` picks a convolution's fast kernel from its shapes and
    then keeps the portable one (no scratch) where the weights fail its range
    check; without weights (e.g. a graph derived from the architecture) this
    is an upper bound of :func:`scratch_bytes`.
    """
    _check_kernels(kernels)
    sizes: dict[int, int] = {}
    for op in graph.ops:
        shape = fast_conv_shape(graph, op, kernels)
        if shape is not None and shape.scratch:
            sizes[op.index] = shape.scratch
    return sizes


def fast_conv(graph: Graph, op: Op, kernels: str) -> FastConv | None:
    """The fast kernel ``op`` runs on with ``kernels``, or ``None`` for the portable one.

    A fast kernel is chosen only where it is bit-exact with the portable one:
    every channel's shift is a right shift by 1 to 22 and every accumulator
    (bias and folded input offset included) stays within +-2^30 for any int8
    input, the conditions of mnmcu_requant_fast() and mnmcu_requant_pre().
    With ``helium``, convolutions run on Helium (groups of four output
    channels, chunks of sixteen input values), depthwise convolutions on the
    DSP kernel's layout (its Helium loops). The layouts are those of
    mnmcu_kernels_fast.h: DSP convolutions get their output channels
    interleaved in pairs, depthwise convolutions (depth multiplier 1, no
    dilation, filters up to 5 rows) their doubled weights as int16 pairs per
    channel and filter row, both with the input offset folded into the bias.
    """
    if kernels == "portable" or op.opcode not in ("CONV_2D", "DEPTHWISE_CONV_2D"):
        return None
    inp, filt, out = (graph.tensor(i) for i in (op.inputs[0], op.inputs[1], op.outputs[0]))
    if filt.data is None or inp.dtype != "int8" or filt.dtype != "int8" or len(filt.shape) != 4:
        return None
    if len(inp.shape) != 4 or len(out.shape) != 4 or inp.quantization is None:
        return None
    weights = np.asarray(filt.data, dtype=np.int64)
    offset = -int(inp.quantization.zero_point[0])
    channels = int(out.shape[3])
    bias = np.zeros(channels, dtype=np.int64)
    if len(op.inputs) > 2 and op.inputs[2] >= 0:
        bias_t = graph.tensor(op.inputs[2])
        if bias_t.data is None or bias_t.dtype != "int32":
            return None
        bias = np.asarray(bias_t.data, dtype=np.int64).reshape(-1)
    shifts = _requant_shifts(graph, op, channels)
    if shifts is None or max(shifts) > -1 or min(shifts) < _FAST_MIN_SHIFT:
        return None
    dil = (int(op.options.get("dilation_h_factor", 1)), int(op.options.get("dilation_w_factor", 1)))
    if op.opcode == "DEPTHWISE_CONV_2D":
        if int(inp.shape[3]) != channels or weights.shape[0] != 1:
            return None
        rows = weights.reshape(-1, channels).T  # [C, KH*KW]
        kind = "depthwise"
    else:
        if int(inp.shape[3]) != weights.shape[3]:
            return None  # grouped
        rows = weights.reshape(channels, -1)  # [C_out, KH*KW*C_in]
        one = weights.shape[1] == 1 and weights.shape[2] == 1
        strided = int(op.options["stride_h"]) != 1 or int(op.options["stride_w"]) != 1
        kind = "conv2d_1x1" if one and not strided else "conv2d"
    magnitude = np.abs(rows).sum(axis=1)
    worst_input = max(abs(-128 + offset), abs(127 + offset))
    folded = bias + offset * rows.sum(axis=1)
    bound = np.maximum(np.abs(bias) + magnitude * worst_input, np.abs(folded) + magnitude * 128)
    if int(bound.max(initial=0)) >= _FAST_ACC_LIMIT:
        return None
    depth = rows.shape[1]
    out_w, stride_w = int(out.shape[2]), int(op.options["stride_w"])
    kernel = (int(weights.shape[1]), int(weights.shape[2]))
    if kind == "depthwise":
        if not _dw_fast(kernel, dil, 1):
            return None
        return FastConv(
            "mnmcu_depthwise_conv2d_s8_dsp_run",
            _dw_weights(rows, kernel),
            folded,
            _dw_scratch(
                kernel,
                channels,
                (int(out.shape[1]), out_w),
                (int(op.options["stride_h"]), stride_w),
            ),
            "int32_t",
        )
    if kernels == "helium":
        # Groups of four output channels, chunks of sixteen input values, zero padded.
        groups, chunks = -(-channels // 4), -(-depth // 16)
        padded = np.zeros((groups * 4, chunks * 16), dtype=np.int64)
        padded[:channels, :depth] = rows
        layout = padded.reshape(groups, 4, chunks, 16).transpose(0, 2, 1, 3).reshape(-1)
        quad_bias = np.zeros(groups * 4, dtype=np.int64)
        quad_bias[:channels] = folded
        if kind == "conv2d_1x1":
            return FastConv("mnmcu_conv2d_1x1_s8_mve_run", layout, quad_bias, 0, "int8_t", False)
        return FastConv("mnmcu_conv2d_s8_mve_run", layout, quad_bias, _mve_conv_scratch(depth))
    # Window values in expand_windows()'s order, padded to a multiple of 4; output
    # channels rounded up to even; zeros in both; the bias likewise to an even length.
    row_bytes = kernel[1] * int(inp.shape[3])
    depth4 = -(-depth // 4) * 4
    padded = np.zeros((channels + (channels & 1), depth4), dtype=np.int64)
    padded[:channels, :depth] = rows[:, _window_order(kernel[0], row_bytes)]
    even_bias = np.concatenate([folded, np.zeros(channels & 1, dtype=np.int64)])
    # [C_out/2, 2, groups, 4] -> [C_out/2, groups, 2, 4]
    pairs = padded.reshape(-1, 2, depth4 // 4, 4).transpose(0, 2, 1, 3)
    one = kind == "conv2d_1x1"
    function = "mnmcu_conv2d_1x1_s8_dsp" if one else "mnmcu_conv2d_s8_dsp"
    scratch = _conv_scratch(one, kernel[0], row_bytes, channels)
    if _dsp_wide(int(out.shape[1]) * out_w):
        # Each channel's four values doubled, as the int16 pairs (w0, w2), (w1, w3)
        # (the kernel then leaves its inputs undoubled).
        wide = (2 * pairs[..., [0, 2, 1, 3]]).reshape(-1)
        return FastConv(function + "16_run", wide, even_bias, scratch, "int16_t")
    return FastConv(function + "_run", pairs.reshape(-1), even_bias, scratch)


# --------------------------------------------------------------------------
# Shape chains (SHAPE -> STRIDED_SLICE -> PACK -> RESHAPE) folded statically
# --------------------------------------------------------------------------


def _strided_slice_1d(data: np.ndarray, op: Op, begin: int, end: int, stride: int) -> np.ndarray:
    opts = op.options
    if opts.get("ellipsis_mask", 0) or opts.get("new_axis_mask", 0) or data.ndim != 1:
        raise UnsupportedModel(f"op {op.index} STRIDED_SLICE is not a 1-D slice of a shape")
    n = len(data)
    if stride == 0:
        raise UnsupportedModel(f"op {op.index} STRIDED_SLICE has a stride of 0")
    if opts.get("shrink_axis_mask", 0) & 1:
        idx = begin + n if begin < 0 else begin
        if not 0 <= idx < n:
            raise UnsupportedModel(f"op {op.index} STRIDED_SLICE takes entry {begin} of {n}")
        return np.asarray(data[idx])
    if opts.get("begin_mask", 0) & 1:
        begin = 0 if stride > 0 else n - 1
    if opts.get("end_mask", 0) & 1:
        end = n if stride > 0 else -n - 1
    return np.asarray(data[slice(begin, end, stride)])


def fold_shape_ops(graph: Graph) -> dict[int, np.ndarray]:
    """Values of the tensors SHAPE/STRIDED_SLICE/PACK compute; all shapes are static.

    Raises :class:`UnsupportedModel` when such a value feeds anything other
    than another shape op or a RESHAPE's shape input, or when a RESHAPE's
    computed shape differs from its output's shape.
    """
    values: dict[int, np.ndarray] = {}

    def value(t: int) -> np.ndarray:
        if t in values:
            return values[t]
        tensor = graph.tensor(t)
        if tensor.data is None:
            raise UnsupportedModel(f"shape op input '{tensor.name}' is neither constant nor folded")
        return np.asarray(tensor.data)

    for op in graph.ops:
        if op.opcode == "SHAPE":
            values[op.outputs[0]] = np.asarray(graph.tensor(op.inputs[0]).shape, dtype=np.int32)
        elif op.opcode == "STRIDED_SLICE":
            data, b, e, s = (value(t) for t in op.inputs[:4])
            values[op.outputs[0]] = _strided_slice_1d(
                data, op, int(b.reshape(-1)[0]), int(e.reshape(-1)[0]), int(s.reshape(-1)[0])
            )
        elif op.opcode == "PACK":
            axis = int(op.options.get("axis", 0))
            packed = [value(t) for t in op.inputs]
            if (
                len({v.shape for v in packed}) != 1
                or not -packed[0].ndim - 1 <= axis <= packed[0].ndim
            ):
                raise UnsupportedModel(
                    f"op {op.index} PACK: its values do not stack on axis {axis}"
                )
            values[op.outputs[0]] = np.stack(packed, axis=axis)
        else:
            continue
        out = graph.tensor(op.outputs[0])
        if values[out.index].shape != out.shape:
            raise UnsupportedModel(
                f"op {op.index} {op.opcode} computes shape {list(values[out.index].shape)}, "
                f"but its output '{out.name}' has shape {list(out.shape)}"
            )
    for op in graph.ops:
        for pos, t in enumerate(op.inputs):
            if t not in values or op.opcode in DYNAMIC_SHAPE_OPS:
                continue
            if op.opcode != "RESHAPE" or pos != 1:
                raise UnsupportedModel(
                    f"op {op.index} {op.opcode} reads a computed shape; only RESHAPE may"
                )
            shape = [int(d) for d in values[t].reshape(-1)]
            out_shape = list(graph.tensor(op.outputs[0]).shape)
            elements = graph.tensor(op.inputs[0]).elements
            if -1 in shape:
                known = int(np.prod([d for d in shape if d != -1], dtype=np.int64))
                shape[shape.index(-1)] = elements // max(known, 1)
            if shape != out_shape:
                raise UnsupportedModel(
                    f"op {op.index} RESHAPE computes shape {shape} but its output is {out_shape}"
                )
    return values


# --------------------------------------------------------------------------
# Lowering: one kernel call (or alias) per op
# --------------------------------------------------------------------------


@dataclass
class Call:
    """One op in the generated invoke(): its params struct and kernel call."""

    index: int
    opcode: str
    comment: str
    output_offset: int
    output_size: int
    function: str | None = None
    args: list[str] = field(default_factory=list)
    params_type: str | None = None
    params_name: str | None = None
    fields: list[tuple[str, str]] = field(default_factory=list)


class _Lowering:
    """State of one generation: const arrays emitted so far and the plan."""

    def __init__(
        self,
        graph: Graph,
        plan: MemoryPlan,
        kernels: str = "portable",
        text: bool = True,
        arithmetic: str = "tflm",
    ) -> None:
        self.graph = graph
        self.text = text
        self.plan = plan
        self.kernels = kernels
        self.arithmetic = arithmetic
        self.arrays: list[str] = []
        self.const_names: dict[int, str] = {}
        self.used_names: set[str] = set()
        self.array_bytes: dict[str, int] = {}
        self.scratch_descriptors = 0

    def label(self, t: Tensor | None, limit: int = 0) -> str:
        """A tensor's name for messages and comments, cut to ``limit`` characters if given."""
        if t is None:
            return "?"
        name = t.name or f"tensor {t.index}"
        if limit and len(name) > limit:
            name = "..." + name[-(limit - 3) :]
        return name

    def quant(self, t: Tensor) -> tuple[float, int]:
        """(scale, zero point) of a per-tensor quantised int8 tensor."""
        q = t.quantization
        if t.dtype != "int8" or q is None or not q.scale:
            raise UnsupportedModel(f"tensor '{self.label(t)}' is not a quantised int8 tensor")
        if len(q.scale) != 1:
            raise UnsupportedModel(f"activation '{self.label(t)}' is quantised per channel")
        return float(q.scale[0]), int(q.zero_point[0])

    def array(self, name: str, values: np.ndarray, ctype: str, comment: str) -> str:
        if name in self.used_names:
            raise ValueError(f"duplicate C array name {name}")
        self.used_names.add(name)
        if self.text:
            self.arrays.append(cgen.c_array(name, values, ctype, comment))
        self.array_bytes[name] = int(np.asarray(values).size) * _C_TYPE_BYTES[ctype]
        return name

    def constant(self, t: Tensor, op: Op, role: str, ctype: str) -> str:
        """Name of the const array holding constant tensor ``t`` (emitted once)."""
        if t.index in self.const_names:
            return self.const_names[t.index]
        if t.data is None:
            raise UnsupportedModel(
                f"op {op.index} {op.opcode}: {role} '{self.label(t)}' must be constant"
            )
        expected = {"int8_t": "int8", "int32_t": "int32"}[ctype]
        if t.dtype != expected:
            raise UnsupportedModel(
                f"op {op.index} {op.opcode}: {role} '{self.label(t)}' is {t.dtype}, not {expected}"
            )
        name = self.array(
            f"op{op.index:03d}_{role}",
            t.data,
            ctype,
            f"{role} of op {op.index}: {self.label(t, 72)} {list(t.shape)}",
        )
        self.const_names[t.index] = name
        return name

    def scratch(self, op: Op) -> str:
        """Argument for a kernel's scratch buffer: the plan's slice of the arena, or NULL."""
        if op.index not in self.plan.scratch:
            return "NULL"
        offset, size = self.plan.scratch[op.index]
        name = f"op{op.index:03d}_scratch"
        self.scratch_descriptors += 1
        self.arrays.append(
            f"/* scratch of op {op.index} in the arena */\n"
            f"static const mnmcu_buffer_t {name} = {{s_arena + {offset}, {size}}};\n"
        )
        return f"&{name}"

    def pointer(self, t: Tensor, op: Op, role: str) -> str:
        """C expression of an int8 operand: a const array or a place in the arena."""
        if t.is_constant:
            return self.constant(t, op, role, "int8_t")
        if t.index not in self.plan.offsets:
            raise InvalidValue(
                f"the memory plan has no offset for tensor {t.index} '{self.label(t)}'",
                "plan the same graph with mnmcu.plan.plan_memory",
            )
        return f"ARENA({self.plan.offsets[t.index]})"

    def call(
        self, op: Op, function: str, ptype: str, fields: list[tuple[str, str]], args: list[str]
    ) -> Call:
        out = self.graph.tensor(op.outputs[0])
        ins = [self.graph.tensor(i) for i in op.inputs if i >= 0]
        shapes = " ".join(str(list(t.shape)) for t in ins if not t.is_constant)
        name = f"op{op.index:03d}_params"
        return Call(
            index=op.index,
            opcode=op.opcode,
            comment=cgen.c_comment(f"op {op.index}: {op.opcode} {shapes} -> {list(out.shape)}"),
            output_offset=self.plan.offsets.get(out.index, 0),
            output_size=out.nbytes,
            function=function,
            args=[f"&{name}", *args],
            params_type=ptype,
            params_name=name,
            fields=fields,
        )


def _ints(values: Sequence[int]) -> np.ndarray:
    return np.asarray(values, dtype=np.int64)


def _per_channel_requant(
    low: _Lowering, op: Op, inp: Tensor, filt: Tensor, out: Tensor, channels: int
) -> tuple[str, str]:
    """PopulateConvolutionQuantizationParams: per-channel (multiplier, shift) arrays."""
    in_scale, _ = low.quant(inp)
    out_scale, _ = low.quant(out)
    q = filt.quantization
    if q is None or not q.scale:
        raise UnsupportedModel(f"op {op.index}: filter '{low.label(filt)}' is not quantised")
    if any(z != 0 for z in q.zero_point):
        raise UnsupportedModel(f"op {op.index}: filter '{low.label(filt)}' is not symmetric")
    if len(q.scale) not in (1, channels):
        raise UnsupportedModel(
            f"op {op.index}: {len(q.scale)} filter scales for {channels} channels"
        )
    scales = q.scale if len(q.scale) == channels else q.scale * channels
    where = f"op {op.index} {op.opcode}"
    pairs = [conv_multiplier(in_scale, float(s), out_scale, where) for s in scales]
    mult = low.array(
        f"op{op.index:03d}_multiplier",
        _ints([m for m, _ in pairs]),
        "int32_t",
        f"per-channel multipliers of op {op.index}",
    )
    shift = low.array(
        f"op{op.index:03d}_shift",
        _ints([s for _, s in pairs]),
        "int32_t",
        f"per-channel shifts of op {op.index}",
    )
    return mult, shift


def _bias(low: _Lowering, op: Op, index: int) -> str:
    if len(op.inputs) <= index or op.inputs[index] < 0:
        return "NULL"
    return low.constant(low.graph.tensor(op.inputs[index]), op, "bias", "int32_t")


def _window(
    op: Op,
    in_hw: tuple[int, int],
    k_hw: tuple[int, int],
    out_hw: tuple[int, int],
    dilation: tuple[int, int],
) -> list[tuple[str, str]]:
    sh, sw = int(op.options["stride_h"]), int(op.options["stride_w"])
    scheme = str(op.options.get("padding", "SAME"))
    dims = zip(in_hw, k_hw, (sh, sw), dilation, out_hw, strict=True)
    for axis, (i, k, s, d, o) in enumerate(dims):
        if out_size(scheme, i, k, s, d) != o:
            raise UnsupportedModel(
                f"op {op.index} {op.opcode}: output {'HW'[axis]} is {o}, TFLite computes "
                f"{out_size(scheme, i, k, s, d)}"
            )
    return [
        ("stride_h", str(sh)),
        ("stride_w", str(sw)),
        ("pad_h", str(padding(in_hw[0], k_hw[0], sh, dilation[0], out_hw[0]))),
        ("pad_w", str(padding(in_hw[1], k_hw[1], sw, dilation[1], out_hw[1]))),
    ]


def _lower_conv(low: _Lowering, op: Op) -> Call:
    inp, filt, out = (low.graph.tensor(i) for i in (op.inputs[0], op.inputs[1], op.outputs[0]))
    depthwise = op.opcode == "DEPTHWISE_CONV_2D"
    _, in_zp = low.quant(inp)
    out_scale, out_zp = low.quant(out)
    di, df, do = (_dims4(t.shape, low.label(t)) for t in (inp, filt, out))
    dil = (int(op.options.get("dilation_h_factor", 1)), int(op.options.get("dilation_w_factor", 1)))
    mult, shift = _per_channel_requant(low, op, inp, filt, out, do[3])
    act_min, act_max = activation_range(
        str(op.options.get("fused_activation_function", "NONE")), out_scale, out_zp
    )
    fields = [("input", cgen.c_dims(di)), ("filter", cgen.c_dims(df)), ("output", cgen.c_dims(do))]
    if depthwise:
        if di[3] == 0 or do[3] % di[3]:
            raise UnsupportedModel(f"op {op.index}: {do[3]} output channels for {di[3]} inputs")
        fields.append(("depth_multiplier", str(do[3] // di[3])))
    fields += _window(op, (di[1], di[2]), (df[1], df[2]), (do[1], do[2]), dil)
    fields += [
        ("dilation_h", str(dil[0])),
        ("dilation_w", str(dil[1])),
        ("input_offset", str(-in_zp)),
        ("output_offset", str(out_zp)),
        ("act_min", str(act_min)),
        ("act_max", str(act_max)),
        ("multiplier", mult),
        ("shift", shift),
    ]
    kind = "depthwise_conv2d" if depthwise else "conv2d"
    fast = fast_conv(low.graph, op, low.kernels)
    if fast is not None:
        args = [
            low.pointer(inp, op, "input"),
            low.array(
                f"op{op.index:03d}_filter_{low.kernels}",
                fast.filter,
                fast.filter_type,
                f"filter of op {op.index}, {fast.function}'s layout (mnmcu_kernels_fast.h)",
            ),
            low.array(
                f"op{op.index:03d}_bias_{low.kernels}",
                fast.bias,
                "int32_t",
                f"bias of op {op.index} for {fast.function}",
            ),
            low.pointer(out, op, "output"),
        ]
        if fast.scratch and op.index not in low.plan.scratch:
            raise InvalidValue(
                f"the memory plan has no scratch for op {op.index} ({fast.function})",
                f"plan with mnmcu.emit.aot.scratch_bytes(graph, {low.kernels!r})",
            )
        if fast.takes_scratch:
            args.append(low.scratch(op))
        return low.call(op, fast.function, f"mnmcu_{kind}_params_t", fields, args)
    args = [
        low.pointer(inp, op, "input"),
        low.constant(filt, op, "filter", "int8_t"),
        _bias(low, op, 2),
        low.pointer(out, op, "output"),
        low.scratch(op),
    ]
    return low.call(op, f"mnmcu_{kind}_s8_run", f"mnmcu_{kind}_params_t", fields, args)


def _lower_fully_connected(low: _Lowering, op: Op) -> Call:
    inp, filt, out = (low.graph.tensor(i) for i in (op.inputs[0], op.inputs[1], op.outputs[0]))
    in_scale, in_zp = low.quant(inp)
    out_scale, out_zp = low.quant(out)
    q = filt.quantization
    if filt.dtype != "int8" or q is None or not q.scale or len(filt.shape) != 2:
        raise UnsupportedModel(
            f"op {op.index} FULLY_CONNECTED: weights must be int8 [units, depth]"
        )
    units, depth = filt.shape
    out_depth = out.shape[-1]
    if inp.elements % depth or out_depth != units:
        raise UnsupportedModel(f"op {op.index} FULLY_CONNECTED: shapes do not fit together")
    per_channel = len(q.scale) > 1
    scales = q.scale if per_channel else q.scale * units
    act_min, act_max = activation_range(
        str(op.options.get("fused_activation_function", "NONE")), out_scale, out_zp
    )
    fields = [
        ("batches", str(out.elements // units)),
        ("input_depth", str(depth)),
        ("output_depth", str(units)),
        ("input_offset", str(-in_zp)),
        ("filter_offset", "0" if per_channel else str(-int(q.zero_point[0]))),
        ("output_offset", str(out_zp)),
        ("act_min", str(act_min)),
        ("act_max", str(act_max)),
    ]
    if low.arithmetic == "litert":
        function = "mnmcu_fully_connected_s8_litert_run"
        parts = [double_parts(in_scale * float(s) / out_scale) for s in scales]
        arrays = (
            ("scale_mantissa", [m for m, _ in parts], "int64_t", "mantissa"),
            ("scale_exponent", [e for _, e in parts], "int32_t", "power of two"),
        )
    else:
        function = "mnmcu_fully_connected_s8_run"
        where = f"op {op.index} FULLY_CONNECTED"
        pairs = [conv_multiplier(in_scale, float(s), out_scale, where) for s in scales]
        arrays = (
            ("multiplier", [m for m, _ in pairs], "int32_t", "fixed-point multiplier"),
            ("shift", [e for _, e in pairs], "int32_t", "shift"),
        )
    for role, values, ctype, what in arrays:
        name = low.array(
            f"op{op.index:03d}_{role}",
            _ints(values),
            ctype,
            f"effective scales of op {op.index}: {what}",
        )
        fields.append((role, name))
    args = [
        low.pointer(inp, op, "input"),
        low.constant(filt, op, "filter", "int8_t"),
        _bias(low, op, 2),
        low.pointer(out, op, "output"),
    ]
    return low.call(op, function, "mnmcu_fully_connected_params_t", fields, args)


def _same_quantization(low: _Lowering, op: Op, inputs: Sequence[Tensor], out: Tensor) -> None:
    """Refuse an op that would rescale: TFLite's int8 pooling and concatenation do not."""
    out_scale, out_zp = low.quant(out)
    for t in inputs:
        in_scale, in_zp = low.quant(t)
        if abs(in_scale - out_scale) > 1e-6 * out_scale or in_zp != out_zp:
            raise UnsupportedModel(
                f"op {op.index} {op.opcode} rescales '{low.label(t, 60)}' "
                f"({in_scale:g}, {in_zp}) to ({out_scale:g}, {out_zp})",
                "TFLite's int8 kernels require the inputs' scale and zero point on the output",
            )


def _lower_pool(low: _Lowering, op: Op) -> Call:
    """AVERAGE_POOL_2D and MAX_POOL_2D."""
    inp, out = low.graph.tensor(op.inputs[0]), low.graph.tensor(op.outputs[0])
    _same_quantization(low, op, [inp], out)
    out_scale, out_zp = low.quant(out)
    di, do = _dims4(inp.shape), _dims4(out.shape)
    kh, kw = int(op.options["filter_height"]), int(op.options["filter_width"])
    act_min, act_max = activation_range(
        str(op.options.get("fused_activation_function", "NONE")), out_scale, out_zp
    )
    fields = [
        ("input", cgen.c_dims(di)),
        ("output", cgen.c_dims(do)),
        ("filter_h", str(kh)),
        ("filter_w", str(kw)),
    ]
    fields += _window(op, (di[1], di[2]), (kh, kw), (do[1], do[2]), (1, 1))
    fields += [("act_min", str(act_min)), ("act_max", str(act_max))]
    args = [low.pointer(inp, op, "input"), low.pointer(out, op, "output")]
    function = (
        "mnmcu_avgpool2d_s8_run" if op.opcode == "AVERAGE_POOL_2D" else "mnmcu_maxpool2d_s8_run"
    )
    return low.call(op, function, "mnmcu_pool2d_params_t", fields, args)


def _lower_concat(low: _Lowering, op: Op) -> Call:
    ins = [low.graph.tensor(i) for i in op.inputs]
    out = low.graph.tensor(op.outputs[0])
    if str(op.options.get("fused_activation_function", "NONE")) != "NONE":
        raise UnsupportedModel(f"op {op.index} CONCATENATION has a fused activation")
    _same_quantization(low, op, ins, out)
    rank = len(out.shape)
    axis = int(op.options.get("axis", 0))
    if not -rank <= axis < rank:
        raise UnsupportedModel(f"op {op.index} CONCATENATION: axis {axis} of rank {rank}")
    axis %= rank
    outer = int(np.prod(out.shape[:axis], dtype=np.int64))
    inner = int(np.prod(out.shape[axis + 1 :], dtype=np.int64))
    sizes = [int(t.shape[axis]) * inner for t in ins]
    if sum(sizes) * outer != out.elements:
        raise UnsupportedModel(f"op {op.index} CONCATENATION: shapes do not fit together")
    copy = low.array(
        f"op{op.index:03d}_copy_bytes",
        _ints(sizes),
        "int32_t",
        f"bytes of each input of op {op.index} per step",
    )
    pointers = ", ".join(low.pointer(t, op, f"input{i}") for i, t in enumerate(ins))
    name = f"op{op.index:03d}_inputs"
    if low.text:
        low.arrays.append(
            f"/* inputs of op {op.index} */\nstatic const int8_t *const {name}[{len(ins)}] = "
            f"{{{pointers}}};\n"
        )
    low.array_bytes[name] = _POINTER_BYTES * len(ins)
    fields = [("outer", str(outer)), ("count", str(len(ins))), ("copy_bytes", copy)]
    args = [name, low.pointer(out, op, "output")]
    return low.call(op, "mnmcu_concat_s8_run", "mnmcu_concat_params_t", fields, args)


def _lower_mean(low: _Lowering, op: Op) -> Call:
    inp, axis_t, out = (low.graph.tensor(i) for i in (op.inputs[0], op.inputs[1], op.outputs[0]))
    if axis_t.data is None or len(inp.shape) != 4:
        raise UnsupportedModel(f"op {op.index} MEAN: needs a 4-D input and constant axes")
    axes = sorted({int(a) % 4 for a in np.asarray(axis_t.data).reshape(-1)})
    if axes != [1, 2]:
        raise UnsupportedModel(
            f"op {op.index} MEAN over axes {axes}; the AOT kernel reduces H and W"
        )
    in_scale, in_zp = low.quant(inp)
    out_scale, out_zp = low.quant(out)
    di = _dims4(inp.shape)
    multiplier, shift = mean_multiplier(in_scale, out_scale, di[1] * di[2])
    fields = [
        ("input", cgen.c_dims(di)),
        ("input_offset", str(-in_zp)),
        ("output_offset", str(out_zp)),
        ("multiplier", str(multiplier)),
        ("shift", str(shift)),
    ]
    args = [low.pointer(inp, op, "input"), low.pointer(out, op, "output")]
    fast = (
        low.kernels != "portable"
        and multiplier >= 0
        and -31 <= shift <= -1
        and -128 <= -in_zp <= 128
        and di[1] * di[2] <= _FAST_MEAN_MAX_COUNT
    )
    function = "mnmcu_mean_s8_dsp_run" if fast else "mnmcu_mean_s8_run"
    return low.call(op, function, "mnmcu_mean_params_t", fields, args)


def _binary_shapes(low: _Lowering, op: Op) -> tuple[Tensor, Tensor, Tensor, list[tuple[str, str]]]:
    a, b, out = (low.graph.tensor(i) for i in (op.inputs[0], op.inputs[1], op.outputs[0]))
    da, db, do = (_dims4(t.shape, low.label(t)) for t in (a, b, out))
    for d in (da, db):
        if any(x not in (y, 1) for x, y in zip(d, do, strict=True)):
            raise UnsupportedModel(f"op {op.index} {op.opcode}: cannot broadcast {d} to {do}")
    return (
        a,
        b,
        out,
        [("input1", cgen.c_dims(da)), ("input2", cgen.c_dims(db)), ("output", cgen.c_dims(do))],
    )


def _scalar_constant(low: _Lowering, op: Op) -> tuple[int, int] | None:
    """(input position, value) of a binary op's constant input that is one int8 value."""
    for position in (0, 1):
        t = low.graph.tensor(op.inputs[position])
        if t.data is not None and t.dtype == "int8":
            values = np.unique(np.asarray(t.data))
            if values.size == 1:
                return position, int(values[0])
    return None


def _lower_add(low: _Lowering, op: Op) -> Call:
    a, b, out, fields = _binary_shapes(low, op)
    (sa, za), (sb, zb), (so, zo) = low.quant(a), low.quant(b), low.quant(out)
    act_min, act_max = activation_range(
        str(op.options.get("fused_activation_function", "NONE")), so, zo
    )
    consts = add_params(sa, sb, so)
    ls = consts["left_shift"]
    offsets = (-za, -zb)

    def scaled(position: int) -> np.ndarray:
        n = position + 1
        return add_input_table(
            offsets[position], consts[f"input{n}_multiplier"], consts[f"input{n}_shift"], ls
        )

    scalar = _scalar_constant(low, op)
    if scalar is not None:
        # x + c with c one constant: a function of x, its 256 values a table.
        position, value = scalar
        x = (a, b)[1 - position]
        if x.elements == out.elements:
            c_scaled = int(scaled(position)[value + 128])
            table = np.array(
                [
                    min(max(_mbqm(int(v) + c_scaled, consts, "output") + zo, act_min), act_max)
                    for v in scaled(1 - position)
                ]
            )
            return _lower_table(low, op, x, out, table)
    if a.shape == b.shape == out.shape:
        # Each input's scaled value is a table of 256 int32: one requantisation per element.
        tables = [
            low.array(
                f"op{op.index:03d}_scaled{n}",
                scaled(n - 1),
                "int32_t",
                f"input {n} of op {op.index} ADD scaled, for inputs -128..127",
            )
            for n in (1, 2)
        ]
        params = [
            ("size", str(out.elements)),
            ("output_offset", str(zo)),
            ("output_multiplier", str(consts["output_multiplier"])),
            ("output_shift", str(consts["output_shift"])),
            ("act_min", str(act_min)),
            ("act_max", str(act_max)),
        ]
        args = [
            low.pointer(a, op, "input1"),
            low.pointer(b, op, "input2"),
            *tables,
            low.pointer(out, op, "output"),
        ]
        suffix = _fast_requant(low, consts["output_multiplier"], consts["output_shift"])
        return low.call(
            op, f"mnmcu_add_s8_tables{suffix}_run", "mnmcu_add_tables_params_t", params, args
        )
    fields += [("input1_offset", str(-za)), ("input2_offset", str(-zb)), ("output_offset", str(zo))]
    fields += [(k, str(v)) for k, v in consts.items()]
    fields += [("act_min", str(act_min)), ("act_max", str(act_max))]
    args = [
        low.pointer(a, op, "input1"),
        low.pointer(b, op, "input2"),
        low.pointer(out, op, "output"),
    ]
    return low.call(op, "mnmcu_add_s8_run", "mnmcu_add_params_t", fields, args)


def _mbqm(value: int, consts: dict[str, int], which: str) -> int:
    result = mbqm(value, consts[f"{which}_multiplier"], consts[f"{which}_shift"], wrap=True)
    assert result is not None
    return result


def _lower_mul(low: _Lowering, op: Op) -> Call:
    a, b, out, fields = _binary_shapes(low, op)
    (sa, za), (sb, zb), (so, zo) = low.quant(a), low.quant(b), low.quant(out)
    act_min, act_max = activation_range(
        str(op.options.get("fused_activation_function", "NONE")), so, zo
    )
    # mul.cc computes input1_scale * input2_scale / output_scale in float32.
    with np.errstate(over="ignore"):
        real = float(_F32(sa) * _F32(sb) / _F32(so))
    multiplier, shift = requant_multiplier(real, f"op {op.index} MUL")
    offsets = (-za, -zb)
    scalar = _scalar_constant(low, op)
    if scalar is not None:
        position, value = scalar
        x = (a, b)[1 - position]
        if x.elements == out.elements:
            table = mul_const_table(
                offsets[1 - position],
                value,
                offsets[position],
                multiplier,
                shift,
                (zo, act_min, act_max),
            )
            return _lower_table(low, op, x, out, table)
    da, db, do = (_dims4(t.shape) for t in (a, b, out))
    for feature, vector in ((0, 1), (1, 0)):
        f_dims, v_dims = (da, db)[feature], (da, db)[vector]
        if f_dims == do and v_dims == (1, 1, 1, do[3]) and (feature == 0 or vector == 0):
            # A feature map times one value per channel (squeeze-and-excite).
            f_t, v_t = (a, b)[feature], (a, b)[vector]
            params = [
                ("pixels", str(do[0] * do[1] * do[2])),
                ("channels", str(do[3])),
                ("input_offset", str(offsets[feature])),
                ("scale_offset", str(offsets[vector])),
                ("output_offset", str(zo)),
                ("output_multiplier", str(multiplier)),
                ("output_shift", str(shift)),
                ("act_min", str(act_min)),
                ("act_max", str(act_max)),
            ]
            args = [
                low.pointer(f_t, op, f"input{feature + 1}"),
                low.pointer(v_t, op, f"input{vector + 1}"),
                low.pointer(out, op, "output"),
            ]
            suffix = _fast_requant(low, multiplier, shift)
            return low.call(
                op,
                f"mnmcu_mul_channels_s8{suffix}_run",
                "mnmcu_mul_channels_params_t",
                params,
                args,
            )
    fields += [
        ("input1_offset", str(-za)),
        ("input2_offset", str(-zb)),
        ("output_offset", str(zo)),
        ("output_multiplier", str(multiplier)),
        ("output_shift", str(shift)),
        ("act_min", str(act_min)),
        ("act_max", str(act_max)),
    ]
    args = [
        low.pointer(a, op, "input1"),
        low.pointer(b, op, "input2"),
        low.pointer(out, op, "output"),
    ]
    return low.call(op, "mnmcu_mul_s8_run", "mnmcu_mul_params_t", fields, args)


def _lower_hard_swish(low: _Lowering, op: Op) -> Call:
    inp, out = low.graph.tensor(op.inputs[0]), low.graph.tensor(op.outputs[0])
    (si, zi), (so, zo) = low.quant(inp), low.quant(out)
    return _lower_table(low, op, inp, out, hard_swish_table(si, zi, so, zo))


def _lower_requantize(low: _Lowering, op: Op) -> Call:
    """QUANTIZE int8->int8 (Requantize) and standalone RELU/RELU6 (ReluX)."""
    inp, out = low.graph.tensor(op.inputs[0]), low.graph.tensor(op.outputs[0])
    (si, zi), (so, zo) = low.quant(inp), low.quant(out)
    return _lower_table(low, op, inp, out, requantize_table(op.opcode, si, zi, so, zo))


def _lower_sigmoid_tanh(low: _Lowering, op: Op) -> Call:
    """LOGISTIC and TANH, as gemmlowp's fixed-point functions tabulated."""
    inp, out = low.graph.tensor(op.inputs[0]), low.graph.tensor(op.outputs[0])
    make = logistic_table if op.opcode == "LOGISTIC" else tanh_table
    table = make(low.quant(inp), low.quant(out), f"op {op.index} {op.opcode}")
    return _lower_table(low, op, inp, out, table)


def _lower_table(low: _Lowering, op: Op, inp: Tensor, out: Tensor, table: np.ndarray) -> Call:
    """An element-wise function of one int8 input as its 256 values (mnmcu_lut_s8_run)."""
    if inp.elements != out.elements:
        raise UnsupportedModel(f"op {op.index} {op.opcode} changes the element count")
    name = low.array(
        f"op{op.index:03d}_table",
        table,
        "int8_t",
        f"{op.opcode} of op {op.index} for inputs -128..127 (reference arithmetic)",
    )
    args = [low.pointer(inp, op, "input"), name, low.pointer(out, op, "output")]
    fields = [("size", str(out.elements))]
    function = "mnmcu_lut_s8_run" if low.kernels == "portable" else "mnmcu_lut_s8_dsp_run"
    return low.call(op, function, "mnmcu_lut_params_t", fields, args)


def _lower_pad(low: _Lowering, op: Op) -> Call:
    inp, pads_t, out = (low.graph.tensor(i) for i in (op.inputs[0], op.inputs[1], op.outputs[0]))
    low.quant(inp)
    _, out_zp = low.quant(out)
    if pads_t.data is None:
        raise UnsupportedModel(f"op {op.index} PAD: paddings must be constant")
    pads = np.asarray(pads_t.data, dtype=np.int64).reshape(-1, 2)
    rank = len(inp.shape)
    if pads.shape[0] != rank or rank > 4 or (pads < 0).any():
        raise UnsupportedModel(
            f"op {op.index} PAD: paddings {pads.tolist()} do not fit rank {rank}"
        )
    before = [0] * (4 - rank) + [int(p) for p in pads[:, 0]]
    fields = [
        ("input", cgen.c_dims(_dims4(inp.shape))),
        ("output", cgen.c_dims(_dims4(out.shape))),
        ("before", cgen.c_dims(before)),
        ("pad_value", str(out_zp)),
    ]
    args = [low.pointer(inp, op, "input"), low.pointer(out, op, "output")]
    return low.call(op, "mnmcu_pad_s8_run", "mnmcu_pad_params_t", fields, args)


def _lower_softmax(low: _Lowering, op: Op) -> Call:
    inp, out = low.graph.tensor(op.inputs[0]), low.graph.tensor(op.outputs[0])
    si, _ = low.quant(inp)
    so, zo = low.quant(out)
    if zo != -128 or abs(so - 1.0 / 256) > 0.001 / 256:
        raise UnsupportedModel(
            f"op {op.index} SOFTMAX output is quantised ({so:g}, {zo})",
            "TFLite's int8 softmax requires scale 1/256 and zero point -128",
        )
    multiplier, left_shift, diff_min = softmax_params(float(op.options.get("beta", 1.0)), si)
    depth = inp.shape[-1] if inp.shape else 1
    fields = [
        ("rows", str(inp.elements // depth)),
        ("depth", str(depth)),
        ("input_multiplier", str(multiplier)),
        ("input_left_shift", str(left_shift)),
        ("diff_min", str(diff_min)),
    ]
    args = [low.pointer(inp, op, "input"), low.pointer(out, op, "output")]
    return low.call(op, "mnmcu_softmax_s8_run", "mnmcu_softmax_params_t", fields, args)


def _lower_alias(low: _Lowering, op: Op) -> Call:
    """RESHAPE, SQUEEZE and EXPAND_DIMS: the output is the input's bytes."""
    inp, out = low.graph.tensor(op.inputs[0]), low.graph.tensor(op.outputs[0])
    if inp.elements != out.elements:
        raise UnsupportedModel(f"op {op.index} {op.opcode} changes the element count")
    if low.plan.offsets.get(inp.index) != low.plan.offsets.get(out.index):
        raise InvalidValue(
            f"the memory plan does not alias {op.opcode} op {op.index}'s output with its input",
            "plan the graph with mnmcu.plan.plan_memory",
        )
    return Call(
        index=op.index,
        opcode=op.opcode,
        comment=cgen.c_comment(
            f"op {op.index}: {op.opcode} {list(inp.shape)} -> {list(out.shape)} (alias, no code)"
        ),
        output_offset=low.plan.offsets.get(out.index, 0),
        output_size=out.nbytes,
    )


_LOWER: dict[str, Callable[[_Lowering, Op], Call]] = {
    "CONV_2D": _lower_conv,
    "DEPTHWISE_CONV_2D": _lower_conv,
    "FULLY_CONNECTED": _lower_fully_connected,
    "AVERAGE_POOL_2D": _lower_pool,
    "MAX_POOL_2D": _lower_pool,
    "CONCATENATION": _lower_concat,
    "LOGISTIC": _lower_sigmoid_tanh,
    "TANH": _lower_sigmoid_tanh,
    "MEAN": _lower_mean,
    "ADD": _lower_add,
    "MUL": _lower_mul,
    "HARD_SWISH": _lower_hard_swish,
    "QUANTIZE": _lower_requantize,
    "RELU": _lower_requantize,
    "RELU6": _lower_requantize,
    "PAD": _lower_pad,
    "SOFTMAX": _lower_softmax,
    **{opcode: _lower_alias for opcode in ALIAS_OPS},
}
SUPPORTED_OPS = frozenset(_LOWER) | DYNAMIC_SHAPE_OPS


@dataclass(frozen=True)
class Lowered:
    """A model as the generator writes it: calls, C const arrays and their sizes."""

    calls: list[Call]
    arrays: list[str]
    array_bytes: dict[str, int]
    """Bytes of each const array (name -> bytes), alignment not included."""
    scratch_descriptors: int
    """The ``mnmcu_buffer_t`` descriptors of scratch buffers in the arena."""


def lower_model(
    graph: Graph,
    plan: MemoryPlan,
    kernels: str = "portable",
    text: bool = True,
    arithmetic: str = "tflm",
    schedule: str = "layer",
) -> Lowered:
    """Every op as a :class:`Call`, the C const arrays they use and their sizes, in graph order.

    Without ``text``, the arrays' C text is not written (``arrays`` holds only
    the scratch descriptors): their sizes are what the caller wants.
    ``arithmetic`` (one of :data:`ARITHMETICS`) picks FULLY_CONNECTED's
    requantisation. ``schedule`` (one of :data:`SCHEDULES`): ``stream``
    needs a plan of :func:`mnmcu.stream.plan_stream` for the same kernels.
    """
    _check_kernels(kernels)
    check_arithmetic(arithmetic)
    check_schedule(schedule)
    if schedule == "stream" and not hasattr(plan, "stream_context"):
        raise InvalidValue(
            "the stream schedule needs a stream plan", "plan with mnmcu.stream.plan_stream"
        )
    unsupported = sorted({op.opcode for op in graph.ops} - SUPPORTED_OPS)
    if unsupported:
        raise UnsupportedModel(
            f"the AOT runtime has no kernel for {', '.join(unsupported)}",
            "use the tflm runtime for this model",
        )
    fold_shape_ops(graph)
    low = _Lowering(graph, plan, kernels, text, arithmetic)
    calls = [_LOWER[op.opcode](low, op) for op in graph.ops if op.opcode not in DYNAMIC_SHAPE_OPS]
    return Lowered(calls, low.arrays, low.array_bytes, low.scratch_descriptors)


def lower(
    graph: Graph,
    plan: MemoryPlan,
    kernels: str = "portable",
    arithmetic: str = "tflm",
    schedule: str = "layer",
) -> tuple[list[Call], list[str]]:
    """Every op as a :class:`Call`, and the C const arrays they use, in graph order."""
    lowered = lower_model(graph, plan, kernels, arithmetic=arithmetic, schedule=schedule)
    return lowered.calls, lowered.arrays


# --------------------------------------------------------------------------
# Files
# --------------------------------------------------------------------------


def _io_tensor(graph: Graph, indices: tuple[int, ...], what: str) -> Tensor:
    if len(indices) != 1:
        raise UnsupportedModel(f"the model has {len(indices)} {what}s; the AOT runtime takes one")
    t = graph.tensor(indices[0])
    q = t.quantization
    if t.dtype != "int8" or q is None or len(q.scale) != 1:
        raise UnsupportedModel(f"the model {what} is {t.dtype}, not per-tensor int8")
    return t


def _io_info(t: Tensor, offset: int) -> dict[str, object]:
    q = t.quantization
    return {
        "size": t.nbytes,
        "shape": list(t.shape) or [1],
        "offset": offset,
        "scale": cgen.c_float(q.scale[0] if q else 0.0),
        "zero_point": int(q.zero_point[0]) if q else 0,
    }


def uses_fast_kernels(graph: Graph, kernels: str) -> bool:
    """True when ``kernels`` has fast kernels for some op of ``graph`` (their files are added)."""
    return kernels != "portable" and any(op.opcode in _FAST_OPCODES for op in graph.ops)


def _fast_requant(low: _Lowering, multiplier: int, shift: int) -> str:
    """``"_dsp"`` where the kernels' fast requantisation applies to (multiplier, shift)."""
    fast = low.kernels != "portable" and multiplier >= 0 and _FAST_MIN_SHIFT <= shift <= -1
    return "_dsp" if fast else ""


def kernel_files(graph: Graph, kernels: str = "portable") -> list[str]:
    """Paths (relative to ``firmware/aot``) of the kernel files ``graph`` needs."""
    sources = {"src/mnmcu_common.c"}
    sources.update(
        f"src/{_KERNEL_SOURCES[op.opcode]}" for op in graph.ops if op.opcode in _KERNEL_SOURCES
    )
    fast = list(_FAST_FILES.get(kernels, ())) if uses_fast_kernels(graph, kernels) else []
    headers = [f for f in fast if not f.endswith(".c")]
    sources.update(f for f in fast if f.endswith(".c"))
    return [*_KERNEL_HEADERS, *headers, *sorted(sources)]


def _write(path: Path, text: str | bytes) -> Path:
    data = text.encode() if isinstance(text, str) else text
    if not path.exists() or path.read_bytes() != data:
        write_file(path, data)
    return path


def emit_aot(
    graph: Graph,
    plan: MemoryPlan,
    out_dir: Path,
    name: str,
    source: str,
    kernels: str = "portable",
    arithmetic: str = "tflm",
    schedule: str = "layer",
) -> list[Path]:
    """Write the AOT C sources of ``graph`` into ``out_dir``; return the files written.

    Writes ``mnmcu_model_<name>.h/.c`` (the model: constants, arena, invoke),
    ``mnmcu_model.h`` (a shim that maps generic names such as
    ``mnmcu_model_invoke`` to this model, used by the host harness and the
    firmware templates) and copies of the kernel sources the model needs, so
    that ``out_dir`` compiles on its own. ``source`` is the path of the
    .tflite file; its name and SHA-256 go in each file's banner. The same
    inputs give byte-identical files. ``kernels`` (one of
    :data:`KERNEL_SETS`) picks fast kernels where :func:`fast_conv` allows;
    ``plan`` must then come from ``scratch_bytes(graph, kernels)``.
    ``arithmetic`` (one of :data:`ARITHMETICS`) picks FULLY_CONNECTED's
    requantisation: TFLite Micro's, or LiteRT's reference kernels'.
    ``schedule`` ``stream`` runs the first ops row by row (:mod:`mnmcu.stream`);
    ``plan`` must then come from :func:`mnmcu.stream.plan_stream`.
    """
    ident = cgen.c_identifier(name).lower()
    if not ident:
        raise InvalidValue(f"model name {name!r} gives no C identifier", "use letters and digits")
    src_path = Path(source)
    try:
        sha = cgen.sha256_file(src_path)
    except OSError as exc:
        raise InvalidValue(
            f"cannot read the source model {source} ({exc.strerror})",
            "pass the path of the .tflite file the graph was loaded from",
        ) from None
    in_t = _io_tensor(graph, graph.inputs, "input")
    out_t = _io_tensor(graph, graph.outputs, "output")
    for t in (in_t, out_t):
        if t.index not in plan.offsets:
            raise InvalidValue(f"the memory plan has no offset for model tensor {t.index}")
    calls, arrays = lower(graph, plan, kernels, arithmetic, schedule)
    stream = None
    if schedule == "stream":
        stream = cast(_StreamPlan, plan).stream_context(graph, calls)
    prefix = f"mnmcu_model_{ident}"
    header = f"{prefix}.h"
    context = {
        "prefix": prefix,
        "macro": prefix.upper(),
        "name": ident,
        "header": header,
        "guard": cgen.guard_macro(header),
        "arena_bytes": max(plan.arena_bytes, 16),
        "input": _io_info(in_t, plan.offsets[in_t.index]),
        "output": _io_info(out_t, plan.offsets[out_t.index]),
        "calls": calls,
        "arrays": arrays,
        "has_calls": any(c.function for c in calls),
        "c_string": cgen.c_string,
        "model_file": src_path.name,
        "fast_kernels": uses_fast_kernels(graph, kernels),
        "stream": stream,
    }
    env = cgen.template_env("aot")
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for template, filename, what in (
        ("model.h.j2", header, "Interface of the ahead-of-time compiled int8 model."),
        (
            "model.c.j2",
            f"{prefix}.c",
            "The ahead-of-time compiled int8 model: weights, arena, invoke.",
        ),
        ("shim.h.j2", "mnmcu_model.h", "Generic names for the model of this folder."),
    ):
        text = cgen.banner(filename, src_path.name, sha, what) + env.get_template(template).render(
            **context
        )
        written.append(_write(out_dir / filename, text))
    kernel_dir = data_dir("firmware") / "aot"
    for rel in kernel_files(graph, kernels):
        written.append(_write(out_dir / Path(rel).name, (kernel_dir / rel).read_bytes()))
    logger.debug(
        "AOT: %d ops, %d const arrays, arena %d B -> %s",
        len(calls),
        len(arrays),
        plan.arena_bytes,
        out_dir,
    )
    return written


def board_kernels(board: Board) -> str:
    """The kernel set the generated firmware uses on ``board`` by default."""
    return default_kernels(board.cpu.arch, board.cpu.dsp, board.cpu.helium)


def firmware_graph(graph: Graph) -> Graph:
    """The graph the generated C runs: ``graph`` without the constant channels it can drop.

    See :mod:`mnmcu.prune`; every output stays bit-exact, intermediate
    tensors lose the channels that hold one value for every input.
    """
    from mnmcu.prune import prune_constant_channels

    return prune_constant_channels(graph).graph


def firmware_plan(graph: Graph, kernels: str = "portable", bound: bool = False) -> MemoryPlan:
    """The memory plan of the generated C with ``kernels``: scratch buffers and in-place ops.

    ``graph`` is the graph the C runs (:func:`firmware_graph` of the model's).
    ``bound``: the weights are unknown, every convolution that has a fast
    kernel for its shapes takes it (:func:`scratch_bound`).
    """
    from mnmcu.plan import plan_memory

    scratch = scratch_bound(graph, kernels) if bound else scratch_bytes(graph, kernels)
    return plan_memory(graph, scratch, inplace_ops(graph))
