/*
 * mnmcu_fixedpoint.h - integer arithmetic shared by the kernels (internal).
 *
 * The functions reproduce, operation for operation, gemmlowp's fixedpoint.h
 * scalar paths and TFLite's kernels/internal/common.h in its default
 * double-rounding build (TFLITE_SINGLE_ROUNDING=0), which is what LiteRT's
 * reference kernels run. Where TFLite relies on signed overflow that cannot
 * happen for valid parameters, these functions are written so that it cannot
 * happen at all (no undefined behaviour under -fsanitize=undefined).
 */
#ifndef MNMCU_FIXEDPOINT_H
#define MNMCU_FIXEDPOINT_H

#include <stdint.h>

#include "mnmcu_kernels.h"

/* Arithmetic right shift of negative values, which TFLite assumes too. */
typedef char mnmcu_check_arithmetic_shift[((-1 >> 1) == -1) ? 1 : -1];

#define MNMCU_MIN(a, b) ((a) < (b) ? (a) : (b))
#define MNMCU_MAX(a, b) ((a) > (b) ? (a) : (b))

/* Clamp to [lo, hi]. */
static inline int32_t mnmcu_clamp(int32_t x, int32_t lo, int32_t hi)
{
    return x < lo ? lo : (x > hi ? hi : x);
}

/* x * 2^n for n in [0, 31] with the wrap-around of a 32-bit multiply. */
static inline int32_t mnmcu_mul_pow2_wrap(int32_t x, int32_t n)
{
    return (int32_t)((uint32_t)x << n);
}

/* gemmlowp::SaturatingRoundingDoublingHighMul(int32, int32) (ARM SQRDMULH). */
static inline int32_t mnmcu_srdhm(int32_t a, int32_t b)
{
    int64_t ab;
    int64_t nudge;
    if (a == b && a == INT32_MIN) {
        return INT32_MAX;
    }
    ab = (int64_t)a * (int64_t)b;
    nudge = ab >= 0 ? ((int64_t)1 << 30) : (1 - ((int64_t)1 << 30));
    return (int32_t)((ab + nudge) / ((int64_t)1 << 31));
}

/* gemmlowp::RoundingDivideByPOT(int32, exponent), exponent in [0, 31]. */
static inline int32_t mnmcu_rdbpot(int32_t x, int32_t exponent)
{
    const int32_t mask = (int32_t)(((int64_t)1 << exponent) - 1);
    const int32_t remainder = x & mask;
    const int32_t threshold = (mask >> 1) + (x < 0 ? 1 : 0);
    return (x >> exponent) + (remainder > threshold ? 1 : 0);
}

/* tflite::MultiplyByQuantizedMultiplier(int32, int32, int), double rounding. */
static inline int32_t mnmcu_mbqm(int32_t x, int32_t multiplier, int32_t shift)
{
    const int32_t left_shift = shift > 0 ? shift : 0;
    const int32_t right_shift = shift > 0 ? 0 : -shift;
    return mnmcu_rdbpot(mnmcu_srdhm(mnmcu_mul_pow2_wrap(x, left_shift), multiplier), right_shift);
}

/*
 * gemmlowp::SaturatingRoundingMultiplyByPOT<exponent> for exponent > 0:
 * a left shift that saturates to INT32_MIN / INT32_MAX.
 */
static inline int32_t mnmcu_sat_lshift(int32_t x, int32_t exponent)
{
    const int32_t threshold = (int32_t)(((int64_t)1 << (31 - exponent)) - 1);
    if (x > threshold) {
        return INT32_MAX;
    }
    if (x < -threshold) {
        return INT32_MIN;
    }
    return x * ((int32_t)1 << exponent);
}

/* ---- int16 variants used by HARD_SWISH ---------------------------------- */

/* gemmlowp::SaturatingRoundingDoublingHighMul(int16, int16). */
static inline int16_t mnmcu_srdhm16(int16_t a, int16_t b)
{
    int32_t ab;
    int32_t nudge;
    if (a == b && a == INT16_MIN) {
        return INT16_MAX;
    }
    ab = (int32_t)a * (int32_t)b;
    nudge = ab >= 0 ? (1 << 14) : (1 - (1 << 14));
    return (int16_t)((ab + nudge) / (1 << 15));
}

/* reference_ops::SaturatingDoublingHighMul(int16, int16): truncating SQDMULH. */
static inline int16_t mnmcu_sdhm16(int16_t a, int16_t b)
{
    if (a == b && a == INT16_MIN) {
        return INT16_MAX;
    }
    return (int16_t)(((int32_t)a * (int32_t)b) / (1 << 15));
}

/* gemmlowp::RoundingDivideByPOT(int16, exponent), exponent in [0, 31]. */
static inline int16_t mnmcu_rdbpot16(int16_t x, int32_t exponent)
{
    /* The mask is computed in 64 bits and narrowed to int16, as gemmlowp's
     * Dup<int16_t>((1ll << exponent) - 1) does (all ones from exponent 16). */
    const int64_t wide_mask = ((int64_t)1 << exponent) - 1;
    const int16_t mask = (int16_t)(exponent >= 16 ? -1 : wide_mask);
    const int16_t remainder = (int16_t)(x & mask);
    const int16_t threshold = (int16_t)((mask >> 1) + (x < 0 ? 1 : 0));
    return (int16_t)((x >> exponent) + (remainder > threshold ? 1 : 0));
}

/* reference_ops::SaturatingLeftShift(int16, amount). */
static inline int16_t mnmcu_sat_lshift16(int16_t x, int32_t amount)
{
    const int64_t r = (int64_t)x * ((int64_t)1 << amount);
    return (int16_t)(r > INT16_MAX ? INT16_MAX : (r < INT16_MIN ? INT16_MIN : r));
}

/* ---- argument checks ---------------------------------------------------- */

static inline int mnmcu_dims_valid(const mnmcu_dims_t *d)
{
    return d->n > 0 && d->h > 0 && d->w > 0 && d->c > 0 &&
           (int64_t)d->n * d->h * d->w * d->c <= INT32_MAX;
}

static inline int32_t mnmcu_dims_count(const mnmcu_dims_t *d)
{
    return d->n * d->h * d->w * d->c;
}

static inline int mnmcu_act_valid(int32_t act_min, int32_t act_max)
{
    return act_min >= INT8_MIN && act_max <= INT8_MAX && act_min <= act_max;
}

static inline int mnmcu_requant_valid(int32_t multiplier, int32_t shift)
{
    return multiplier >= 0 && shift >= -31 && shift <= 30;
}

#endif /* MNMCU_FIXEDPOINT_H */
