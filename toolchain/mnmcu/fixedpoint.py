"""int8 LOGISTIC and TANH as 256-entry tables, in TFLite's integer arithmetic.

TFLite Micro's int8 kernels (``reference_integer_ops::Logistic`` and
``Tanh``) rescale the input to a Q4.27 fixed-point number and evaluate
gemmlowp's ``logistic`` and ``tanh`` on it: a Taylor polynomial for exp on
[-1/4, 0), a barrel of constant multipliers for the rest of the range, and
three Newton-Raphson steps for the division. This module evaluates the same
int32 operations for every int8 input, so the firmware only looks values up.
LiteRT's reference kernels run the same functions.

A fixed-point value is its int32 raw word and a number of integer bits
(``Fn`` below): raw / 2^(31 - n).
"""

from __future__ import annotations

import math

import numpy as np

from mnmcu.errors import UnsupportedModel
from mnmcu.qmath import INT8_MAX, INT8_MIN, INT32_MAX, mbqm, rdbpot, srdhm

__all__ = ["LOGISTIC_OUTPUT", "TANH_OUTPUT", "logistic_table", "tanh_table"]

LOGISTIC_OUTPUT = (1.0 / 256, -128)
"""(scale, zero point) TFLite requires of an int8 LOGISTIC output."""
TANH_OUTPUT = (1.0 / 128, 0)
"""(scale, zero point) TFLite requires of an int8 TANH output."""

_INPUT_INTEGER_BITS = 4
# exp(-2^k) as F0 constants, k = -2..4 (gemmlowp's GEMMLOWP_EXP_BARREL_SHIFTER).
_EXP_BARREL = ((-2, 1672461947), (-1, 1302514674), (0, 790015084), (1, 290630308),
               (2, 39332535), (3, 720401), (4, 242))  # fmt: skip
_EXP_MINUS_ONE_EIGHTH = 1895147668  # exp(-1/8) in F0
_ONE_THIRD = 715827883  # F0
_48_OVER_17 = 1515870810  # F2
_NEG_32_OVER_17 = -1010580540  # F2


def _wrap(x: int) -> int:
    """``x`` as an int32 (two's complement), as gemmlowp's raw additions leave it."""
    return (x + 2**31) % 2**32 - 2**31


def _sat_lshift(x: int, amount: int) -> int:
    """SaturatingRoundingMultiplyByPOT with a positive exponent."""
    threshold = (1 << (31 - amount)) - 1
    if x > threshold:
        return INT32_MAX
    if x < -threshold:
        return -INT32_MAX - 1
    return x << amount


def _rescale(x: int, src_bits: int, dst_bits: int) -> int:
    """gemmlowp's Rescale from ``src_bits`` to ``dst_bits`` integer bits."""
    exponent = src_bits - dst_bits
    if exponent > 0:
        return _sat_lshift(x, exponent)
    if exponent < 0:
        return rdbpot(x, -exponent)
    return x


def _rounding_half_sum(a: int, b: int) -> int:
    total = a + b
    sign = 1 if total >= 0 else -1
    halved = abs(total + sign) // 2  # C's division truncates towards zero
    return halved if total + sign >= 0 else -halved


def _exp_near_zero(a: int) -> int:
    """exp(a) for F0 ``a`` in [-1/4, 0): a Taylor expansion around -1/8."""
    x = _wrap(a + (1 << 28))
    x2 = srdhm(x, x)
    x3 = srdhm(x2, x)
    x4 = srdhm(x2, x2)
    x4_over_4 = rdbpot(x4, 2)
    poly = rdbpot(_wrap(srdhm(_wrap(x4_over_4 + x3), _ONE_THIRD) + x2), 1)
    return _wrap(_EXP_MINUS_ONE_EIGHTH + srdhm(_EXP_MINUS_ONE_EIGHTH, _wrap(x + poly)))


def _exp_on_negative_values(a: int, bits: int) -> int:
    """exp(a) as F0 for a value ``a`` <= 0 with ``bits`` integer bits."""
    fractional = 31 - bits
    quarter = 1 << (fractional - 2)
    a_mod = _wrap((a & (quarter - 1)) - quarter)
    result = _exp_near_zero(_rescale(a_mod, bits, 0))
    remainder = _wrap(a_mod - a)
    for exponent, multiplier in _EXP_BARREL:
        if bits > exponent and remainder & (1 << (fractional + exponent)):
            result = srdhm(result, multiplier)
    if bits > 5 and a < -(1 << (36 - bits)):
        result = 0
    return INT32_MAX if a == 0 else result


def _newton_reciprocal(a: int) -> int:
    """F2 approximation of 1 / ((1 + a) / 2) for F0 ``a`` in (0, 1), and the halved denominator."""
    half_denominator = _rounding_half_sum(a, INT32_MAX)
    x = _wrap(_48_OVER_17 + srdhm(half_denominator, _NEG_32_OVER_17))
    for _ in range(3):
        one_minus = _wrap((1 << 29) - srdhm(half_denominator, x))
        x = _wrap(x + _rescale(srdhm(x, one_minus), 4, 2))
    return x


def _logistic(a: int) -> int:
    """gemmlowp's logistic of F4 ``a``, as F0."""
    if a == 0:
        return 1 << 30
    positive = _logistic_of_positive(a if a > 0 else _wrap(-a))
    return positive if a > 0 else _wrap(INT32_MAX - positive)


def _logistic_of_positive(a: int) -> int:
    exp = _exp_on_negative_values(_wrap(-a), _INPUT_INTEGER_BITS)
    return _rescale(_newton_reciprocal(exp), 1, 0)  # ExactMulByPot<-1>, Rescale<0>


def _tanh(a: int) -> int:
    """gemmlowp's tanh of F4 ``a``, as F0."""
    if a == 0:
        return 0
    negative = a if a < 0 else _wrap(-a)
    # exp(2 n): the same raw word read with one more integer bit
    exp = _exp_on_negative_values(negative, _INPUT_INTEGER_BITS + 1)
    t = _rescale(_wrap(_newton_reciprocal(exp) - (1 << 29)), 2, 0)
    return _wrap(-t) if a < 0 else t


def _input_rescale(scale: float, where: str) -> tuple[int, int, int]:
    """(multiplier, left shift, radius) that bring an input into F4, as TFLite Micro's Prepare."""
    real = float(np.float32(scale)) * float(1 << (31 - _INPUT_INTEGER_BITS))
    if not (math.isfinite(real) and real > 0):
        raise UnsupportedModel(f"{where}: input scale {scale!r} is not a positive number")
    q, left_shift = math.frexp(real)
    multiplier = math.floor(q * (1 << 31) + 0.5)  # TfLiteRound: half away from zero
    if multiplier >= 1 << 31 or not 0 <= left_shift <= 30:
        raise UnsupportedModel(
            f"{where}: input scale {scale!r} is out of TFLite's fixed-point range",
            "quantize the input of this activation with a scale between 2^-27 and 2^3",
        )
    radius_real = 15.0 * (1 << (31 - _INPUT_INTEGER_BITS)) / (1 << left_shift)
    return multiplier, left_shift, math.floor(radius_real)


def _check_output(
    output: tuple[float, int], wanted: tuple[float, int], opcode: str, where: str
) -> None:
    scale, zero_point = output
    if zero_point != wanted[1] or abs(scale - wanted[0]) > 0.001 * wanted[0]:
        raise UnsupportedModel(
            f"{where}: {opcode} output is quantised ({scale:g}, {zero_point})",
            f"TFLite's int8 {opcode} writes scale {wanted[0]:g} and zero point {wanted[1]}",
        )


def _table(
    function: str, input_q: tuple[float, int], output_q: tuple[float, int], where: str
) -> np.ndarray:
    wanted = LOGISTIC_OUTPUT if function == "LOGISTIC" else TANH_OUTPUT
    _check_output(output_q, wanted, function, where)
    multiplier, left_shift, radius = _input_rescale(input_q[0], where)
    table = np.empty(256, dtype=np.int8)
    for x in range(INT8_MIN, INT8_MAX + 1):
        value = x - input_q[1]
        if value <= -radius:
            table[x + 128] = INT8_MIN
        elif value >= radius:
            table[x + 128] = INT8_MAX
        else:
            q4 = mbqm(value, multiplier, left_shift, wrap=True)
            assert q4 is not None
            if function == "LOGISTIC":
                out = rdbpot(_logistic(q4), 31 - 8) + wanted[1]
            else:
                out = rdbpot(_tanh(q4), 31 - 7)
            table[x + 128] = min(max(out, INT8_MIN), INT8_MAX)
    return table


def logistic_table(
    input_q: tuple[float, int], output_q: tuple[float, int], where: str = "LOGISTIC"
) -> np.ndarray:
    """LOGISTIC of every int8 input (index ``x + 128``) for (scale, zero point) pairs."""
    return _table("LOGISTIC", input_q, output_q, where)


def tanh_table(
    input_q: tuple[float, int], output_q: tuple[float, int], where: str = "TANH"
) -> np.ndarray:
    """TANH of every int8 input (index ``x + 128``) for (scale, zero point) pairs."""
    return _table("TANH", input_q, output_q, where)
