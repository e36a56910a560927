"""TFLite's quantised arithmetic, done in Python at generation time.

The constants the int8 kernels need (multiplier/shift pairs, activation
clamps, the rescaling of MEAN, SOFTMAX, HARD_SWISH and ADD) computed the way
TFLite's kernels compute them in their Prepare functions (``tflite/kernels``
of LiteRT, whose reference kernels are the oracle), including where TFLite
computes in float32 rather than double; and the requantisation itself
(:func:`mbqm`), bit for bit as ``mnmcu_fixedpoint.h`` does it in C.
"""

from __future__ import annotations

import math

import numpy as np

from mnmcu.errors import UnsupportedModel

_F32 = np.float32
INT8_MIN, INT8_MAX = -128, 127

ARITHMETICS = ("tflm", "litert")
"""FULLY_CONNECTED requantisation the AOT runtime reproduces: TFLite Micro's
fixed-point multiplier (what deployed microcontrollers run), or the
double-precision product of LiteRT's reference kernels. Every other op
computes the same bytes in both."""
INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1


def _round_half_away(x: float) -> int:
    """std::round: to nearest, ties away from zero."""
    r = math.floor(abs(x))
    if abs(x) - r >= 0.5:
        r += 1
    return int(r) if x >= 0 else -int(r)


def quantize_multiplier(real: float) -> tuple[int, int]:
    """tflite::QuantizeMultiplier: ``real`` ~= multiplier * 2^(shift - 31).

    ``multiplier`` is a Q31 value in [2^30, 2^31) (0 for 0), from frexp and
    round-half-away; a mantissa that rounds up to 2^31 is halved and the
    shift raised; shifts below -31 flush to (0, 0). Double-rounding build
    (TFLITE_SINGLE_ROUNDING=0), so shifts above 30 are kept.
    """
    if real == 0.0:
        return 0, 0
    q, shift = math.frexp(real)
    q_fixed = _round_half_away(q * (1 << 31))
    if q_fixed == 1 << 31:
        q_fixed //= 2
        shift += 1
    if shift < -31:
        return 0, 0
    if q_fixed > 2**31 - 1:
        raise ValueError(f"multiplier {real} does not fit in Q31")
    return q_fixed, shift


# The AOT kernels' requantisation takes shifts from -31 to 30 (mnmcu_requant_valid);
# the MEAN kernel sums at most 2^23 values of a channel (mnmcu_mean_s8_run).
MAX_REQUANT_SHIFT = 30
MAX_MEAN_COUNT = 1 << 23


def requant_multiplier(real: float, where: str) -> tuple[int, int]:
    """:func:`quantize_multiplier` for the AOT kernels: a finite ``real`` below 2^30."""
    if not 0.0 <= real < math.inf:
        raise UnsupportedModel(f"{where}: rescale {real!r} is not a finite positive number")
    multiplier, shift = quantize_multiplier(real)
    if shift > MAX_REQUANT_SHIFT:
        raise UnsupportedModel(
            f"{where}: rescale {real:g} is too large for the AOT kernels "
            f"(shift {shift}, at most {MAX_REQUANT_SHIFT})",
            "the output scale is far below the input's: check the model's quantization",
        )
    return multiplier, shift


def conv_multiplier(
    input_scale: float, filter_scale: float, output_scale: float, where: str = "convolution"
) -> tuple[int, int]:
    """One output channel's (multiplier, shift) as PopulateConvolutionQuantizationParams."""
    return requant_multiplier(input_scale * filter_scale / output_scale, where)


def double_parts(real: float) -> tuple[int, int]:
    """``real`` as an exact (mantissa, exponent): real = mantissa * 2^exponent, mantissa < 2^53."""
    if real == 0.0:
        return 0, 0
    if real < 0 or not math.isfinite(real):
        raise ValueError(f"scale {real} must be positive and finite")
    frac, exp = math.frexp(real)
    mantissa = int(frac * (1 << 53))
    return mantissa, exp - 53


def quantize_value(scale: float, zero_point: int, value: float) -> int:
    """TFLite's Quantize() in CalculateActivationRangeQuantized: float32 divide, round."""
    with np.errstate(over="ignore"):
        quotient = float(_F32(value) / _F32(scale))
    if not math.isfinite(quotient) or abs(quotient) >= 2**31:
        raise UnsupportedModel(
            f"{value:g} in units of scale {scale!r} overflows TFLite's int32 activation range"
        )
    return zero_point + _round_half_away(quotient)


def activation_range(activation: str, scale: float, zero_point: int) -> tuple[int, int]:
    """CalculateActivationRangeQuantized for int8: the clamp of a fused activation."""
    if activation == "NONE":
        return INT8_MIN, INT8_MAX
    if activation == "RELU":
        return max(INT8_MIN, quantize_value(scale, zero_point, 0.0)), INT8_MAX
    if activation == "RELU6":
        return (
            max(INT8_MIN, quantize_value(scale, zero_point, 0.0)),
            min(INT8_MAX, quantize_value(scale, zero_point, 6.0)),
        )
    if activation == "RELU_N1_TO_1":
        return (
            max(INT8_MIN, quantize_value(scale, zero_point, -1.0)),
            min(INT8_MAX, quantize_value(scale, zero_point, 1.0)),
        )
    raise UnsupportedModel(
        f"fused activation {activation} is not supported by the AOT runtime",
        "use NONE, RELU, RELU6 or RELU_N1_TO_1, or the tflm runtime",
    )


def mean_multiplier(input_scale: float, output_scale: float, count: int) -> tuple[int, int]:
    """QuantizedMeanOrSum's multiplier/shift with 1/count folded in."""
    multiplier, shift = requant_multiplier(input_scale / output_scale, "MEAN")
    n_shift = min(count.bit_length() - 1, 32, 31 + shift)
    if n_shift < 0:
        raise UnsupportedModel(f"MEAN rescale {input_scale / output_scale:g} is too small")
    if count > MAX_MEAN_COUNT:
        raise UnsupportedModel(
            f"MEAN over {count:,} values; the AOT kernel averages up to {MAX_MEAN_COUNT:,}"
        )
    return (multiplier << n_shift) // count, shift - n_shift


def softmax_params(beta: float, input_scale: float) -> tuple[int, int, int]:
    """(input_multiplier, input_left_shift, diff_min) as TFLite's reference SoftmaxPrepare."""
    integer_bits = 5
    real = min(beta * input_scale * (1 << (31 - integer_bits)), (1 << 31) - 1.0)
    if real <= 1.0:
        raise UnsupportedModel(
            f"softmax input scale {input_scale:.3g} is too small (TFLite aborts on it)",
            "train the model or calibrate with data the classes differ on",
        )
    multiplier, left_shift = quantize_multiplier(real)
    radius = math.floor(
        1.0 * ((1 << integer_bits) - 1) * (1 << (31 - integer_bits)) / (1 << left_shift)
    )
    return multiplier, left_shift, -radius


def _downscale_to_int16(multiplier: int) -> int:
    """DownScaleInt32ToInt16Multiplier."""
    if multiplier >= 2**31 - 1 - (1 << 15):
        return 2**15 - 1
    return (multiplier + (1 << 15)) >> 16


def hard_swish_params(input_scale: float, output_scale: float) -> tuple[int, int, int, int]:
    """(output_mult16, output_exponent, reluish_mult16, reluish_exponent), HardSwishPrepare.

    TFLite computes the two real multipliers in float32.
    """
    hires_input_scale = _F32(1.0 / 128.0) * _F32(input_scale)
    reluish_scale = _F32(3.0) / _F32(32768.0)
    out_m, out_e = quantize_multiplier(float(hires_input_scale / _F32(output_scale)))
    relu_m, relu_e = quantize_multiplier(float(hires_input_scale / reluish_scale))
    if out_e > 0:
        raise UnsupportedModel("HARD_SWISH output scale is too small for TFLite's kernel")
    if relu_e > 15:
        raise UnsupportedModel(
            f"HARD_SWISH input scale {input_scale!r} is too large for the AOT kernel"
        )
    return _downscale_to_int16(out_m), out_e, _downscale_to_int16(relu_m), relu_e


def add_params(s1: float, s2: float, s_out: float) -> dict[str, int]:
    """ADD's rescaling constants for int8 (left_shift 20), as add.cc Prepare."""
    left_shift = 20
    twice_max = 2.0 * float(max(_F32(s1), _F32(s2)))
    values = {"left_shift": left_shift}
    reals = {
        "input1": s1 / twice_max,
        "input2": s2 / twice_max,
        "output": twice_max / float(_F32(1 << left_shift) * _F32(s_out)),
    }
    for key, real in reals.items():
        if not 0.0 < real < 1.0:
            raise UnsupportedModel(f"ADD rescale {real:g} is outside (0, 1)")
        m, s = quantize_multiplier(real)
        values[f"{key}_multiplier"], values[f"{key}_shift"] = m, s
    return values


def padding(in_size: int, kernel: int, stride: int, dilation: int, out_size: int) -> int:
    """TFLite's ComputePaddingWithOffset: top/left padding for SAME and VALID alike."""
    effective = (kernel - 1) * dilation + 1
    return max(0, (out_size - 1) * stride + effective - in_size) // 2


def out_size(scheme: str, in_size: int, kernel: int, stride: int, dilation: int) -> int:
    """TFLite's ComputeOutSize."""
    effective = (kernel - 1) * dilation + 1
    if scheme == "SAME":
        return (in_size + stride - 1) // stride
    if scheme == "VALID":
        return (in_size + stride - effective) // stride
    raise UnsupportedModel(f"padding {scheme} is not supported")


def srdhm(a: int, b: int) -> int:
    """gemmlowp's SaturatingRoundingDoublingHighMul of two int32 values."""
    if a == b == INT32_MIN:
        return INT32_MAX
    ab = a * b
    nudge = (1 << 30) if ab >= 0 else 1 - (1 << 30)
    total = ab + nudge
    quotient = abs(total) >> 31  # C's division truncates towards zero
    return quotient if total >= 0 else -quotient


def rdbpot(x: int, exponent: int) -> int:
    """gemmlowp's RoundingDivideByPOT: x / 2^exponent, ties away from zero."""
    mask = (1 << exponent) - 1
    remainder = x & mask
    threshold = (mask >> 1) + (1 if x < 0 else 0)
    return (x >> exponent) + (1 if remainder > threshold else 0)


def mbqm(x: int, multiplier: int, shift: int, wrap: bool = False) -> int | None:
    """MultiplyByQuantizedMultiplier of int32 ``x``.

    Where the left shift of a positive ``shift`` leaves int32, C's
    ``mnmcu_mul_pow2_wrap`` wraps: with ``wrap`` so does this, else ``None``.
    """
    shifted = x << max(shift, 0)
    if not INT32_MIN <= shifted <= INT32_MAX:
        if not wrap:
            return None
        shifted = (shifted + 2**31) % 2**32 - 2**31
    return rdbpot(srdhm(shifted, multiplier), max(-shift, 0))


# --------------------------------------------------------------------------
# Element-wise functions of one int8 input, as 256-entry tables
# --------------------------------------------------------------------------


def _i16(x: int) -> int:
    """``x`` narrowed to int16 as C's conversion does (two's complement wrap)."""
    return ((x + 0x8000) & 0xFFFF) - 0x8000


def _div_trunc(x: int, d: int) -> int:
    """C's integer division (towards zero) by a positive ``d``."""
    q = abs(x) // d
    return q if x >= 0 else -q


def _srdhm16(a: int, b: int) -> int:
    if a == b == -0x8000:
        return 0x7FFF
    ab = a * b
    nudge = (1 << 14) if ab >= 0 else 1 - (1 << 14)
    return _i16(_div_trunc(ab + nudge, 1 << 15))


def _sdhm16(a: int, b: int) -> int:
    if a == b == -0x8000:
        return 0x7FFF
    return _i16(_div_trunc(a * b, 1 << 15))


def _rdbpot16(x: int, exponent: int) -> int:
    mask = -1 if exponent >= 16 else _i16((1 << exponent) - 1)
    remainder = _i16(x & mask)
    threshold = _i16((mask >> 1) + (1 if x < 0 else 0))
    return _i16((x >> exponent) + (1 if remainder > threshold else 0))


def _sat_lshift16(x: int, amount: int) -> int:
    return max(-0x8000, min(0x7FFF, x * (1 << amount)))


def hard_swish_table(
    input_scale: float, input_zp: int, output_scale: float, output_zp: int
) -> np.ndarray:
    """HARD_SWISH of every int8 input (index ``x + 128``), as reference_ops::HardSwish."""
    out_m, out_e, relu_m, relu_e = hard_swish_params(input_scale, output_scale)
    table = np.empty(256, dtype=np.int8)
    for x in range(-128, 128):
        hires = _i16(_i16(x - input_zp) * (1 << 7))
        preshift_out = _srdhm16(hires, out_m)
        reluish = hires
        if relu_e > 0:
            reluish = _sat_lshift16(reluish, relu_e - 1)
        reluish = _srdhm16(reluish, relu_m)
        if relu_e > 0:
            reluish = _sat_lshift16(reluish, 1)
        if relu_e < 0:
            reluish = _rdbpot16(reluish, -relu_e)
        reluish = _i16((reluish + (1 << 15)) >> 1)
        pre_out = _sdhm16(reluish, preshift_out)
        out = _i16(_rdbpot16(pre_out, -out_e) + output_zp)
        table[x + 128] = min(max(out, INT8_MIN), INT8_MAX)
    return table


def requantize_params(
    opcode: str, input_scale: float, output_scale: float, output_zp: int
) -> tuple[int, int, int, int]:
    """(multiplier, shift, act_min, act_max) of QUANTIZE int8->int8, RELU or RELU6."""
    if opcode == "QUANTIZE":
        multiplier, shift = requant_multiplier(input_scale / output_scale, opcode)
        return multiplier, shift, INT8_MIN, INT8_MAX
    # activations.cc ReluPrepare divides in float32; QuantizedReluX rounds with roundf.
    with np.errstate(over="ignore"):
        real = float(_F32(input_scale) / _F32(output_scale))
    multiplier, shift = requant_multiplier(real, opcode)
    act_min = max(INT8_MIN, quantize_value(output_scale, output_zp, 0.0))
    act_max = (
        INT8_MAX
        if opcode == "RELU"
        else min(INT8_MAX, quantize_value(output_scale, output_zp, 6.0))
    )
    return multiplier, shift, act_min, act_max


def requantize_table(
    opcode: str, input_scale: float, input_zp: int, output_scale: float, output_zp: int
) -> np.ndarray:
    """QUANTIZE int8->int8, RELU or RELU6 of every int8 input (index ``x + 128``)."""
    multiplier, shift, act_min, act_max = requantize_params(
        opcode, input_scale, output_scale, output_zp
    )
    table = np.empty(256, dtype=np.int8)
    for x in range(-128, 128):
        value = mbqm(x - input_zp, multiplier, shift, wrap=True)
        assert value is not None
        table[x + 128] = min(max(value + output_zp, act_min), act_max)
    return table


def _clamp(value: int, low: int, high: int) -> int:
    return min(max(value, low), high)


def add_input_table(offset: int, multiplier: int, shift: int, left_shift: int) -> np.ndarray:
    """One ADD input's scaled value for every int8 input (index ``x + 128``), as int32.

    reference_integer_ops::AddFunc: ``MBQM((x + offset) * 2^left_shift, multiplier, shift)``.
    """
    values = [
        mbqm((x + offset) << left_shift, multiplier, shift, wrap=True) for x in range(-128, 128)
    ]
    return np.array(values, dtype=np.int64)


def mul_const_table(
    x_offset: int, c: int, c_offset: int, multiplier: int, shift: int, out: tuple[int, int, int]
) -> np.ndarray:
    """MUL of every int8 input and the constant ``c`` (index ``x + 128``), as MulElementwise."""
    zp, act_min, act_max = out
    table = np.empty(256, dtype=np.int8)
    for x in range(-128, 128):
        raw = mbqm((x + x_offset) * (c + c_offset), multiplier, shift, wrap=True)
        assert raw is not None
        table[x + 128] = _clamp(raw + zp, act_min, act_max)
    return table
