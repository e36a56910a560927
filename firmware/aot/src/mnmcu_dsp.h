/*
 * mnmcu_dsp.h - the Arm DSP-extension operations the fast kernels use
 * (internal).
 *
 * On a core with the DSP extension (__ARM_FEATURE_DSP: Cortex-M4, M7, M33
 * with DSP, M55) they are the ACLE intrinsics of arm_acle.h and single
 * instructions; elsewhere they are C with the same results, so that the
 * fast kernels can be compiled and checked on any host.
 *
 * The fast requantisation mnmcu_requant_fast() equals mnmcu_mbqm() of
 * mnmcu_fixedpoint.h when |acc| < 2^30, multiplier in [0, 2^31) and
 * shift <= -1, and mnmcu_requant_pre() adds the output offset in the same
 * steps when also shift >= -22; mnmcu.emit.aot checks this for every channel
 * before it picks a fast kernel.
 */
#ifndef MNMCU_DSP_H
#define MNMCU_DSP_H

#include <stdint.h>
#include <string.h>

#include "mnmcu_fixedpoint.h"

/* The kernels' inner loops rely on these being inlined, also at -Os. */
#if defined(__GNUC__) || defined(__clang__)
#define MNMCU_INLINE static inline __attribute__((always_inline))
#else
#define MNMCU_INLINE static inline
#endif

#if defined(__ARM_FEATURE_DSP) && __ARM_FEATURE_DSP
#include <arm_acle.h>
#define MNMCU_HAVE_DSP 1
#else
#define MNMCU_HAVE_DSP 0
#endif

/* Four int8 at p (any alignment) as one word, byte 0 lowest. */
MNMCU_INLINE int32_t mnmcu_read_s8x4(const int8_t *p)
{
    int32_t v;
    memcpy(&v, p, sizeof(v));
    return v;
}

/* Two int16 at p (any alignment) as one word, element 0 in the low half. */
MNMCU_INLINE int32_t mnmcu_read_s16x2(const int16_t *p)
{
    int32_t v;
    memcpy(&v, p, sizeof(v));
    return v;
}

#if MNMCU_HAVE_DSP

/* Bytes 0 and 2 of x, sign-extended into the low and high halves. */
MNMCU_INLINE int32_t mnmcu_sxtb16(int32_t x)
{
    return __sxtb16(x);
}

/* Bytes 1 and 3 of x, sign-extended into the low and high halves (one SXTB16
 * with its rotation; the compiler does not fold a separate rotation into it). */
MNMCU_INLINE int32_t mnmcu_sxtb16_ror8(int32_t x)
{
    int32_t r;
    __asm__("sxtb16 %0, %1, ror #8" : "=r"(r) : "r"(x));
    return r;
}

/* acc + lo(a) * lo(b) + hi(a) * hi(b). */
MNMCU_INLINE int32_t mnmcu_smlad(int32_t a, int32_t b, int32_t acc)
{
    return __smlad(a, b, acc);
}

/* acc + lo(a) * lo(b). */
MNMCU_INLINE int32_t mnmcu_smlabb(int32_t a, int32_t b, int32_t acc)
{
    return __smlabb(a, b, acc);
}

/* acc + hi(a) * hi(b). */
MNMCU_INLINE int32_t mnmcu_smlatt(int32_t a, int32_t b, int32_t acc)
{
    return __smlatt(a, b, acc);
}

/* acc + lo(a) * hi(b). */
MNMCU_INLINE int32_t mnmcu_smlabt(int32_t a, int32_t b, int32_t acc)
{
    return __smlabt(a, b, acc);
}

/* acc + hi(a) * lo(b). */
MNMCU_INLINE int32_t mnmcu_smlatb(int32_t a, int32_t b, int32_t acc)
{
    return __smlatb(a, b, acc);
}

/* acc + sxtb16(x): bytes 0 and 2 of x added to the low and high int16 halves
 * of acc (wrapping; SXTAB16). */
MNMCU_INLINE int32_t mnmcu_sxtab16(int32_t acc, int32_t x)
{
    return __sxtab16(acc, x);
}

/* acc + sxtb16_ror8(x): bytes 1 and 3 (SXTAB16 with its rotation). */
MNMCU_INLINE int32_t mnmcu_sxtab16_ror8(int32_t acc, int32_t x)
{
    int32_t r;
    __asm__("sxtab16 %0, %1, %2, ror #8" : "=r"(r) : "r"(acc), "r"(x));
    return r;
}

/* lo(a) * lo(b) (SMULBB). */
MNMCU_INLINE int32_t mnmcu_smulbb(int32_t a, int32_t b)
{
    int32_t r;
    __asm__("smulbb %0, %1, %2" : "=r"(r) : "r"(a), "r"(b));
    return r;
}

/* hi(a) * hi(b) (SMULTT). */
MNMCU_INLINE int32_t mnmcu_smultt(int32_t a, int32_t b)
{
    int32_t r;
    __asm__("smultt %0, %1, %2" : "=r"(r) : "r"(a), "r"(b));
    return r;
}

/* Lane-wise int16 sum (wrapping). */
MNMCU_INLINE int32_t mnmcu_sadd16(int32_t a, int32_t b)
{
    return __sadd16(a, b);
}

/* (acc * 2^32 + a * b + 2^31) >> 32 (SMMLAR). */
MNMCU_INLINE int32_t mnmcu_smmlar(int32_t a, int32_t b, int32_t acc)
{
    int32_t r;
    __asm__("smmlar %0, %1, %2, %3" : "=r"(r) : "r"(a), "r"(b), "r"(acc));
    return r;
}

/* x saturated to [-128, 127] (SSAT #8). */
MNMCU_INLINE int32_t mnmcu_ssat8(int32_t x)
{
    return __ssat(x, 8);
}

/* The low halves of a and b, a's low (PKHBT). */
MNMCU_INLINE int32_t mnmcu_pack_lo(int32_t a, int32_t b)
{
    int32_t r;
    __asm__("pkhbt %0, %1, %2, lsl #16" : "=r"(r) : "r"(a), "r"(b));
    return r;
}

/* The high halves of a and b, a's low (PKHTB). */
MNMCU_INLINE int32_t mnmcu_pack_hi(int32_t a, int32_t b)
{
    int32_t r;
    __asm__("pkhtb %0, %2, %1, asr #16" : "=r"(r) : "r"(a), "r"(b));
    return r;
}

/* Byte-wise max(a, b) of four int8: SSUB8 sets a GE flag per byte where
 * a >= b (on the exact differences), SEL picks a there and b elsewhere. */
MNMCU_INLINE int32_t mnmcu_max_s8x4(int32_t a, int32_t b)
{
    int32_t r;
    __asm__("ssub8 %0, %1, %2\n\tsel %0, %1, %2" : "=&r"(r) : "r"(a), "r"(b) : "cc");
    return r;
}

/* Byte-wise min(a, b) of four int8. */
MNMCU_INLINE int32_t mnmcu_min_s8x4(int32_t a, int32_t b)
{
    int32_t r;
    __asm__("ssub8 %0, %1, %2\n\tsel %0, %2, %1" : "=&r"(r) : "r"(a), "r"(b) : "cc");
    return r;
}

/* (a * b + 2^31) >> 32, the rounded high word (SMMULR). */
MNMCU_INLINE int32_t mnmcu_smmulr(int32_t a, int32_t b)
{
    int32_t r;
    __asm__("smmulr %0, %1, %2" : "=r"(r) : "r"(a), "r"(b));
    return r;
}

#else

MNMCU_INLINE int32_t mnmcu_lo16(int32_t x)
{
    return (int32_t)(int16_t)(uint16_t)((uint32_t)x & 0xFFFFu);
}

MNMCU_INLINE int32_t mnmcu_hi16(int32_t x)
{
    return (int32_t)(int16_t)(uint16_t)((uint32_t)x >> 16);
}

MNMCU_INLINE int32_t mnmcu_sxtb16(int32_t x)
{
    const uint32_t u = (uint32_t)x;
    const uint32_t lo = (uint32_t)(int32_t)(int8_t)(uint8_t)(u & 0xFFu) & 0xFFFFu;
    const uint32_t hi = (uint32_t)(int32_t)(int8_t)(uint8_t)((u >> 16) & 0xFFu) & 0xFFFFu;
    return (int32_t)(lo | (hi << 16));
}

MNMCU_INLINE int32_t mnmcu_sxtb16_ror8(int32_t x)
{
    return mnmcu_sxtb16((int32_t)(((uint32_t)x >> 8) | ((uint32_t)x << 24)));
}

MNMCU_INLINE int32_t mnmcu_smlad(int32_t a, int32_t b, int32_t acc)
{
    return acc + mnmcu_lo16(a) * mnmcu_lo16(b) + mnmcu_hi16(a) * mnmcu_hi16(b);
}

MNMCU_INLINE int32_t mnmcu_smlabb(int32_t a, int32_t b, int32_t acc)
{
    return acc + mnmcu_lo16(a) * mnmcu_lo16(b);
}

MNMCU_INLINE int32_t mnmcu_smlatt(int32_t a, int32_t b, int32_t acc)
{
    return acc + mnmcu_hi16(a) * mnmcu_hi16(b);
}

MNMCU_INLINE int32_t mnmcu_smlabt(int32_t a, int32_t b, int32_t acc)
{
    return acc + mnmcu_lo16(a) * mnmcu_hi16(b);
}

MNMCU_INLINE int32_t mnmcu_smlatb(int32_t a, int32_t b, int32_t acc)
{
    return acc + mnmcu_hi16(a) * mnmcu_lo16(b);
}

MNMCU_INLINE int32_t mnmcu_sadd16(int32_t a, int32_t b)
{
    const uint32_t lo = (uint32_t)(mnmcu_lo16(a) + mnmcu_lo16(b)) & 0xFFFFu;
    const uint32_t hi = (uint32_t)(mnmcu_hi16(a) + mnmcu_hi16(b)) & 0xFFFFu;
    return (int32_t)(lo | (hi << 16));
}

MNMCU_INLINE int32_t mnmcu_sxtab16(int32_t acc, int32_t x)
{
    return mnmcu_sadd16(acc, mnmcu_sxtb16(x));
}

MNMCU_INLINE int32_t mnmcu_sxtab16_ror8(int32_t acc, int32_t x)
{
    return mnmcu_sadd16(acc, mnmcu_sxtb16_ror8(x));
}

MNMCU_INLINE int32_t mnmcu_smulbb(int32_t a, int32_t b)
{
    return mnmcu_lo16(a) * mnmcu_lo16(b);
}

MNMCU_INLINE int32_t mnmcu_smultt(int32_t a, int32_t b)
{
    return mnmcu_hi16(a) * mnmcu_hi16(b);
}

MNMCU_INLINE int32_t mnmcu_smmulr(int32_t a, int32_t b)
{
    return (int32_t)(((int64_t)a * b + ((int64_t)1 << 31)) >> 32);
}

MNMCU_INLINE int32_t mnmcu_smmlar(int32_t a, int32_t b, int32_t acc)
{
    return (int32_t)(((int64_t)acc * ((int64_t)1 << 32) + (int64_t)a * b + ((int64_t)1 << 31)) >>
                     32);
}

MNMCU_INLINE int32_t mnmcu_ssat8(int32_t x)
{
    return x < -128 ? -128 : (x > 127 ? 127 : x);
}

MNMCU_INLINE int32_t mnmcu_pack_lo(int32_t a, int32_t b)
{
    return (int32_t)(((uint32_t)a & 0xFFFFu) | ((uint32_t)b << 16));
}

MNMCU_INLINE int32_t mnmcu_pack_hi(int32_t a, int32_t b)
{
    return (int32_t)(((uint32_t)a >> 16) | ((uint32_t)b & 0xFFFF0000u));
}

MNMCU_INLINE int32_t mnmcu_max_s8x4(int32_t a, int32_t b)
{
    uint32_t r = 0;
    int32_t i;
    for (i = 0; i < 32; i += 8) {
        const int32_t x = (int8_t)(uint8_t)((uint32_t)a >> i);
        const int32_t y = (int8_t)(uint8_t)((uint32_t)b >> i);
        r |= (uint32_t)(uint8_t)(x > y ? x : y) << i;
    }
    return (int32_t)r;
}

MNMCU_INLINE int32_t mnmcu_min_s8x4(int32_t a, int32_t b)
{
    uint32_t r = 0;
    int32_t i;
    for (i = 0; i < 32; i += 8) {
        const int32_t x = (int8_t)(uint8_t)((uint32_t)a >> i);
        const int32_t y = (int8_t)(uint8_t)((uint32_t)b >> i);
        r |= (uint32_t)(uint8_t)(x < y ? x : y) << i;
    }
    return (int32_t)r;
}

#endif

/*
 * mnmcu_mbqm(acc, multiplier, shift) for |acc| < 2^30 and shift <= -1.
 *
 * The doubling high multiply is SMMULR of 2 * acc: gemmlowp rounds
 * (ab + (ab >= 0 ? 2^30 : 1 - 2^30)) / 2^31 towards zero, which is
 * floor((ab + 2^30) / 2^31) for both signs, i.e. floor((2ab + 2^31) / 2^32).
 * The rounding divide by 2^e (e = -shift, ties away from zero) is
 * floor((h' + 2^(e-1)) / 2^e) with h' = h - (h < 0), computed as
 * ((h' >> (e - 1)) + 1) >> 1; e - 1 is ~shift. No step can overflow.
 */
MNMCU_INLINE int32_t mnmcu_requant_fast(int32_t acc, int32_t multiplier, int32_t shift)
{
    int32_t high = mnmcu_smmulr(acc * 2, multiplier);
    high -= (int32_t)((uint32_t)high >> 31);
    high >>= ~shift;
    return (high + 1) >> 1;
}

/* Requantise, offset and clamp one accumulator of output channel c. */
MNMCU_INLINE int8_t mnmcu_output_fast(int32_t acc, int32_t multiplier, int32_t shift,
                                       int32_t output_offset, int32_t act_min, int32_t act_max)
{
    int32_t v = mnmcu_requant_fast(acc, multiplier, shift) + output_offset;
    v = v < act_min ? act_min : v;
    v = v > act_max ? act_max : v;
    return (int8_t)v;
}

/*
 * One output channel's requantisation, prepared once per kernel call for
 * mnmcu_requant_pre(): the multiplier, e = -shift and
 * round = 2^(e-1) + output_offset * 2^e.
 */
typedef struct {
    int32_t multiplier;
    int32_t round;
    int32_t exponent;
} mnmcu_requant_t;

/* The prepared constants of a channel; shift in [-22, -1]. */
MNMCU_INLINE mnmcu_requant_t mnmcu_requant_prepare(int32_t multiplier, int32_t shift,
                                                   int32_t output_offset)
{
    mnmcu_requant_t rq;
    rq.multiplier = multiplier;
    rq.exponent = -shift;
    rq.round = (int32_t)(1u << (-shift - 1)) + output_offset * (int32_t)(1u << -shift);
    return rq;
}

/*
 * mnmcu_requant_fast(acc, multiplier, shift) + output_offset, for |acc| < 2^30
 * and shift in [-22, -1], in one multiply-accumulate and one shift.
 *
 * With h = SMMULR(2 * acc, multiplier) (see mnmcu_requant_fast()) the result
 * is floor((h - (h < 0) + 2^(e-1)) / 2^e) + offset. h < 0 can be replaced
 * by acc < 0: their signs differ only when h = 0 and acc < 0, where both
 * forms give floor((2^(e-1) - {0, 1}) / 2^e) = 0. Adding the offset inside
 * the floor as offset * 2^e, the numerator is h + K with
 * K = round + (acc >> 31), and SMMLAR(2 * acc, multiplier, K) = h + K exactly.
 * |h| <= 2^30 and |K| <= 2^21 + 2^29 + 1 for e <= 22, so nothing overflows.
 */
MNMCU_INLINE int32_t mnmcu_requant_pre(int32_t acc, const mnmcu_requant_t *rq)
{
    return mnmcu_smmlar(acc * 2, rq->multiplier, rq->round + (acc >> 31)) >> rq->exponent;
}

/* mnmcu_requant_pre(), clamped: one SSAT when full (see mnmcu_act_full()). */
MNMCU_INLINE int8_t mnmcu_output_pre(int32_t acc, const mnmcu_requant_t *rq, int32_t act_min,
                                      int32_t act_max, int full)
{
    const int32_t v = mnmcu_requant_pre(acc, rq);
    if (full) {
        return (int8_t)mnmcu_ssat8(v);
    }
    return (int8_t)(v < act_min ? act_min : (v > act_max ? act_max : v));
}

/* True when [act_min, act_max] is all of int8 (no activation, or a ReLU6 whose
 * output range is quantised onto the whole int8 range): one SSAT clamps. */
MNMCU_INLINE int mnmcu_act_full(int32_t act_min, int32_t act_max)
{
    return act_min == -128 && act_max == 127;
}

/* mnmcu_output_fast(), with the clamp of a full range (full != 0) one SSAT. */
MNMCU_INLINE int8_t mnmcu_output_act(int32_t acc, int32_t multiplier, int32_t shift,
                                      int32_t output_offset, int32_t act_min, int32_t act_max,
                                      int full)
{
    if (full) {
        return (int8_t)mnmcu_ssat8(mnmcu_requant_fast(acc, multiplier, shift) + output_offset);
    }
    return mnmcu_output_fast(acc, multiplier, shift, output_offset, act_min, act_max);
}

/*
 * mnmcu_requant_pre() of an accumulator kept doubled: acc2 = 2 * acc with
 * |acc| < 2^30, shift in [-22, -1]. mnmcu_requant_pre() multiplies acc * 2
 * and adds acc >> 31; both are acc2 and acc2 >> 31 (the sign is unchanged),
 * so the result is the same. The DSP convolutions double their int16 inputs
 * (or weights) and biases instead, which saves the doubling per output.
 */
MNMCU_INLINE int32_t mnmcu_requant_pre2(int32_t acc2, int32_t multiplier, int32_t round,
                                        int32_t exponent)
{
    return mnmcu_smmlar(acc2, multiplier, round + (acc2 >> 31)) >> exponent;
}

/*
 * Clamps n int8 values at p to [act_min, act_max], four per word. A kernel
 * that saturates its outputs to all of int8 (SSAT) calls it afterwards for a
 * narrower activation range: clamping to [-128, 127] first changes nothing.
 */
static inline void mnmcu_clamp_s8(int8_t *p, int32_t n, int32_t act_min, int32_t act_max)
{
    const int32_t lo = (int32_t)(0x01010101u * (uint8_t)act_min);
    const int32_t hi = (int32_t)(0x01010101u * (uint8_t)act_max);
    int32_t i = 0;
    /* Eight bytes per pass, one side of the range where the other is full. */
    if (act_max == 127) {
        for (; i + 8 <= n; i += 8) {
            const int32_t a = mnmcu_max_s8x4(mnmcu_read_s8x4(p + i), lo);
            const int32_t b = mnmcu_max_s8x4(mnmcu_read_s8x4(p + i + 4), lo);
            memcpy(p + i, &a, sizeof(a));
            memcpy(p + i + 4, &b, sizeof(b));
        }
    } else if (act_min == -128) {
        for (; i + 8 <= n; i += 8) {
            const int32_t a = mnmcu_min_s8x4(mnmcu_read_s8x4(p + i), hi);
            const int32_t b = mnmcu_min_s8x4(mnmcu_read_s8x4(p + i + 4), hi);
            memcpy(p + i, &a, sizeof(a));
            memcpy(p + i + 4, &b, sizeof(b));
        }
    } else {
        for (; i + 8 <= n; i += 8) {
            const int32_t a = mnmcu_min_s8x4(mnmcu_max_s8x4(mnmcu_read_s8x4(p + i), lo), hi);
            const int32_t b = mnmcu_min_s8x4(mnmcu_max_s8x4(mnmcu_read_s8x4(p + i + 4), lo), hi);
            memcpy(p + i, &a, sizeof(a));
            memcpy(p + i + 4, &b, sizeof(b));
        }
    }
    for (; i < n; ++i) {
        p[i] = (int8_t)(p[i] < act_min ? act_min : (p[i] > act_max ? act_max : p[i]));
    }
}

#endif /* MNMCU_DSP_H */
