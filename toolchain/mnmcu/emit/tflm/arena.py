"""The tensor arena of a generated project: the measured one plus what the target's kernels add."""

from __future__ import annotations

from dataclasses import dataclass

from mnmcu.boards import Board
from mnmcu.errors import InvalidValue
from mnmcu.graph import Graph, Op
from mnmcu.reference import TflmRun

ALIGNMENT = 16
"""Bytes TFLM wants beyond ``arena_used_bytes()`` to align the arena's head
(tensorflow/lite/micro/micro_interpreter.h, comment of ``arena_used_bytes``)."""
SLACK_FRACTION = 0.02
SLACK_MIN_BYTES = 1024


@dataclass(frozen=True)
class ArenaSize:
    """The tensor arena of a generated project and how it was derived.

    ``arena_bytes = align16(measured_total + kernel_scratch + kernel_persistent
    + slack + 16)``: the arena the tflite-micro runtime measured for the model
    (reference kernels, 64-bit host), plus the largest scratch buffer the
    target's optimised kernels request for one op (the reference kernels request
    none; scratch buffers live only during their op, so the largest one bounds
    the growth), plus persistent buffers those kernels add, plus a slack of
    max(1 KiB, 2 %) for per-op data of the optimised kernels and the difference
    between the measured TFLM build and the target's, plus the 16 bytes TFLM
    needs to align the arena. 32-bit targets store smaller pointers than the
    64-bit host, which leaves a little more room still.
    """

    measured_total: int
    measured_head: int
    measured_tail: int
    kernels: str
    kernel_scratch: int
    scratch_op: str
    kernel_persistent: int
    slack: int
    alignment: int
    arena_bytes: int

    def describe(self) -> str:
        """One sentence for reports and the project README."""
        where = f" (at {self.scratch_op})" if self.scratch_op else ""
        return (
            f"{self.arena_bytes} B = align16({self.measured_total} B measured by the "
            f"tflite-micro runtime [{self.measured_head} B activations + "
            f"{self.measured_tail} B persistent] + {self.kernel_scratch} B largest "
            f"{self.kernels} scratch buffer{where} + {self.kernel_persistent} B {self.kernels} "
            f"persistent buffers + {self.slack} B slack + {self.alignment} B alignment)"
        )


@dataclass(frozen=True)
class _ConvShape:
    in_h: int
    in_w: int
    in_c: int
    f_h: int
    f_w: int
    f_c: int
    out_h: int
    out_w: int
    out_c: int
    stride_h: int
    stride_w: int
    dil_h: int
    dil_w: int
    pad_h: int
    pad_w: int
    depth_multiplier: int


def _tflm_padding(stride: int, dilation: int, in_size: int, f_size: int, out_size: int) -> int:
    """tflite::ComputePaddingWithOffset (kernels/padding.h): the leading padding."""
    effective = (f_size - 1) * dilation + 1
    return max((out_size - 1) * stride + effective - in_size, 0) // 2


def _conv_shape(graph: Graph, op: Op) -> _ConvShape:
    _, in_h, in_w, in_c = graph.tensor(op.inputs[0]).shape
    _, f_h, f_w, f_c = graph.tensor(op.inputs[1]).shape
    _, out_h, out_w, out_c = graph.tensor(op.outputs[0]).shape
    o = op.options
    s_h, s_w = int(o.get("stride_h", 1)), int(o.get("stride_w", 1))
    d_h, d_w = int(o.get("dilation_h_factor", 1)), int(o.get("dilation_w_factor", 1))
    return _ConvShape(
        in_h, in_w, in_c, f_h, f_w, f_c, out_h, out_w, out_c, s_h, s_w, d_h, d_w,
        _tflm_padding(s_h, d_h, in_h, f_h, out_h),
        _tflm_padding(s_w, d_w, in_w, f_w, out_w),
        int(o.get("depth_multiplier", 1)),
    )  # fmt: skip


def _align(value: int, to: int) -> int:
    return -(-value // to) * to


# CMSIS-NN at the commit TFLM pins (ARM-software/CMSIS-NN 4ab83cc):
# Source/ConvolutionFunctions/arm_convolve_get_buffer_sizes_s8.c,
# arm_depthwise_conv_get_buffer_sizes_s8.c, FullyConnectedFunctions/
# arm_fully_connected_get_buffer_sizes_s8.c, PoolingFunctions/
# arm_avgpool_get_buffer_sizes_s8.c, built with GCC (the 1x1 fast path
# needs no buffer there).
def _cmsis_conv(s: _ConvShape, mve: bool) -> int:
    is_1x1 = s.pad_w == 0 and s.pad_h == 0 and s.f_w == 1 and s.f_h == 1
    if is_1x1 and s.dil_w == 1 and s.dil_h == 1 and s.in_c == s.f_c:
        return 0
    cols = s.f_w * s.f_h * s.in_c
    if mve:
        return 4 * _align(cols, 16)
    return 2 * _align(cols, 4) * 2


def _cmsis_depthwise(s: _ConvShape, mve: bool, dsp: bool) -> int:
    if mve and s.in_c == 1 and s.out_c > 1:
        # arm_deptwise_conv_s8_one_in_ch_get_buffer_size_mve: a conv buffer + the filter
        return 4 * _align(s.f_w * s.f_h, 16) + s.f_w * s.f_h * s.out_c
    if s.in_c != s.out_c or s.dil_w != 1 or s.dil_h != 1:
        return 0
    if not mve and s.f_w == 3 and s.f_h == 3 and s.pad_h <= 1 and s.pad_w <= 1:
        return 0
    if mve:
        return 4 * 124 * s.f_w * s.f_h  # CH_IN_BLOCK_MVE = 124
    return s.in_c * s.f_w * s.f_h * 2 if dsp else 0


# ESP-NN 1.2.3: src/convolution/esp_nn_conv_esp32s3.c and
# esp_nn_depthwise_conv_s8_esp32s3.c (esp_nn_get_*_scratch_size_esp32s3); the
# generic ESP32 versions (esp_nn_conv_opt.c, esp_nn_depthwise_conv_opt.c)
# need none. Softmax: width * 4 on both (esp-tflite-micro passes dims[1]).
def _esp_s3_conv(s: _ConvShape) -> int:
    align_buf = 64
    if (s.f_w, s.f_h, s.pad_w, s.pad_h, s.stride_w, s.stride_h) == (1, 1, 0, 0, 1, 1):
        ch8 = (s.in_c + 7) & ~7
        transpose = 0 if s.in_w * s.in_h < 8 else 2 * 8 * ch8
        input_scratch = s.in_w * s.in_h * ch8 if s.in_c % 8 else 0
        return input_scratch + ch8 * s.out_c + transpose + align_buf
    row, window = s.f_w * s.in_c, s.f_w * s.f_h * s.in_c
    if row < 16 and window >= 16:
        wa = _align(window, 16)
        return s.out_c * 4 + 16 + s.out_c * wa + 16 + wa + align_buf
    ch16 = (s.in_c + 15) & ~15
    padded = (s.in_w + 2 * s.pad_w) * (s.in_h + 2 * s.pad_h) * s.in_c
    input_scratch = padded if s.pad_w or s.pad_h else 0
    pad_right = max(0, s.out_w * s.stride_w + s.f_w - 1 - s.in_w)
    pad_bottom = max(0, s.out_h * s.stride_h + s.f_h - 1 - s.in_h)
    boundary = (s.in_w + pad_right) * (s.in_h + pad_bottom) * s.in_c
    return (
        input_scratch
        + s.f_w * s.f_h * ch16 * s.out_c
        + _align(row, 16) * s.f_h * s.out_c
        + (boundary if pad_right > 0 or pad_bottom > 0 else 0)
        + align_buf
        + s.out_c * 4
    )


def _esp_s3_depthwise(s: _ConvShape) -> int:
    ch, mult = s.in_c, s.depth_multiplier
    filter_size = s.f_w * s.f_h * ch * mult
    input_size = s.in_w * s.in_h * ch
    if mult == 1 and ch % 8 == 0:
        if (s.f_w, s.f_h) == (3, 3) and ch % 16 == 0:
            if s.pad_w or s.pad_h:
                pw, ph = 2 * s.pad_w, 2 * s.pad_h
            else:
                pw = s.out_w * s.stride_w + s.f_w - 1 - s.in_w
                ph = s.out_h * s.stride_h + s.f_h - 1 - s.in_h
            if not (pw or ph):
                return filter_size + 16
            full = (s.in_w + pw) * (s.in_h + ph) * ch
            if full <= 40 * 1024:
                return filter_size + full + 16
            return filter_size + (s.in_w + pw) * s.f_h * ch + 16
        if (s.f_w, s.f_h) == (3, 3) and ch >= 12:
            ch16 = (ch + 15) & ~15
            tpw = 2 * s.pad_w + max(0, s.out_w * s.stride_w + 2 - s.in_w)
            tph = 2 * s.pad_h + max(0, s.out_h * s.stride_h + 2 - s.in_h)
            return 9 * ch16 + (s.in_w + tpw) * (s.in_h + tph) * ch16 + s.out_w * s.out_h * ch16 + 64
        total = 2 * (filter_size + input_size)
        if (s.f_w, s.f_h) == (3, 3) or total <= 48 * 1024:
            return total + 32
        return 2 * filter_size + 2 * s.in_w * s.f_h * ch + 32
    if mult == 1 and ch > 3:
        ch8 = (ch + 7) & ~7
        in_start = _align(s.f_w * s.f_h * ch8 * 2, 16)
        out_start = _align(in_start + s.in_w * s.in_h * ch8 * 2, 16)
        bias_start = _align(out_start + s.out_w * s.out_h * ch8, 16)
        return bias_start + 3 * ch8 * 4 + 16
    if mult % 4 == 0:
        return 2 * (filter_size + input_size) + 32
    return 32


def kernel_buffers(graph: Graph, board: Board) -> tuple[int, str, int]:
    """(largest scratch bytes, the op it belongs to, persistent bytes) of the board's kernels.

    The formulas are those of the kernel library the project links (CMSIS-NN at
    the pinned commit for Arm, with its DSP or Helium variant; ESP-NN 1.2.3 for
    ESP32-S3 and ESP32); the reference kernels the arena was measured with
    request none of these buffers.
    """
    kernels, cpu = board.runtime.kernels, board.cpu
    best, where, persistent = 0, "", 0
    for op in graph.ops:
        size = 0
        if op.opcode in ("CONV_2D", "DEPTHWISE_CONV_2D"):
            s = _conv_shape(graph, op)
            if kernels == "cmsis-nn":
                size = (
                    _cmsis_conv(s, cpu.helium)
                    if op.opcode == "CONV_2D"
                    else _cmsis_depthwise(s, cpu.helium, cpu.dsp)
                )
            elif kernels == "esp-nn" and cpu.core == "xtensa-lx7":
                size = _esp_s3_conv(s) if op.opcode == "CONV_2D" else _esp_s3_depthwise(s)
        elif op.opcode == "AVERAGE_POOL_2D" and kernels == "cmsis-nn" and cpu.dsp:
            size = 0 if cpu.helium else graph.tensor(op.inputs[0]).shape[-1] * 4
        elif op.opcode == "FULLY_CONNECTED" and kernels == "cmsis-nn" and cpu.helium:
            # KERNELS_OPTIMIZED_FOR_SPEED keeps the kernel sums in persistent memory.
            persistent += graph.tensor(op.outputs[0]).shape[-1] * 4
        elif op.opcode == "SOFTMAX" and kernels == "esp-nn":
            shape = graph.tensor(op.inputs[0]).shape
            size = (shape[1] if len(shape) > 1 else 1) * 4
        if size > best:
            best, where = size, f"op {op.index} {op.opcode}"
    return best, where, persistent


def arena_size(graph: Graph, board: Board, measured: TflmRun) -> ArenaSize:
    """The arena for ``graph`` on ``board``, from the measured one (see :class:`ArenaSize`)."""
    if measured.arena_total <= 0:
        raise InvalidValue(
            "the tflite-micro runtime reported no arena for the model",
            "check that 'tflite-micro' is installed and runs the model (mnmcu verify)",
        )
    scratch, where, persistent = kernel_buffers(graph, board)
    slack = max(SLACK_MIN_BYTES, _align(int(measured.arena_total * SLACK_FRACTION), ALIGNMENT))
    total = _align(measured.arena_total + scratch + persistent + slack + ALIGNMENT, ALIGNMENT)
    return ArenaSize(
        measured_total=measured.arena_total,
        measured_head=measured.arena_head,
        measured_tail=measured.arena_tail,
        kernels=board.runtime.kernels,
        kernel_scratch=scratch,
        scratch_op=where,
        kernel_persistent=persistent,
        slack=slack,
        alignment=ALIGNMENT,
        arena_bytes=total,
    )
