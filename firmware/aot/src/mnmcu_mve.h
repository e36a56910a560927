/*
 * mnmcu_mve.h - Helium (M-profile Vector Extension) requantisation of four
 * accumulators at once (internal).
 *
 * MNMCU_HAVE_MVE is 1 when the code is compiled for a core with integer MVE
 * (Cortex-M55); the kernels then requantise four outputs with one vector
 * sequence instead of four scalar ones. Elsewhere this header defines
 * nothing else, and the kernels keep mnmcu_output_fast().
 */
#ifndef MNMCU_MVE_H
#define MNMCU_MVE_H

#include "mnmcu_dsp.h"

#if defined(__ARM_FEATURE_MVE) && (__ARM_FEATURE_MVE & 1)
#include <arm_mve.h>
#define MNMCU_HAVE_MVE 1

/*
 * mnmcu_output_fast() of four accumulators, lane by lane: each lane's own
 * multiplier and shift (shift in [-31, -1], |acc| < 2^30, as the generator
 * checks), then offset and clamp.
 *
 * VQRDMULH is floor((2 * acc * mult + 2^31) / 2^32), gemmlowp's
 * SaturatingRoundingDoublingHighMul (see mnmcu_requant_fast()); h - (h < 0)
 * followed by VRSHL by the negative shift, floor((h' + 2^(e-1)) / 2^e), is
 * its RoundingDivideByPOT (ties away from zero), as in CMSIS-NN's
 * arm_divide_by_power_of_two_mve().
 */
MNMCU_INLINE int32x4_t mnmcu_output_mve(int32x4_t acc, int32x4_t multiplier, int32x4_t shift,
                                        int32_t output_offset, int32_t act_min,
                                        int32_t act_max)
{
    int32x4_t v = vqrdmulhq_s32(acc, multiplier);
    v = vaddq_s32(v, vshrq_n_s32(v, 31));
    v = vrshlq_s32(v, shift);
    v = vaddq_n_s32(v, output_offset);
    v = vmaxq_s32(v, vdupq_n_s32(act_min));
    return vminq_s32(v, vdupq_n_s32(act_max));
}

/* The same with one multiplier and shift for all four lanes (one channel). */
MNMCU_INLINE int32x4_t mnmcu_output1_mve(int32x4_t acc, int32_t multiplier, int32_t shift,
                                         int32_t output_offset, int32_t act_min,
                                         int32_t act_max)
{
    int32x4_t v = vqrdmulhq_n_s32(acc, multiplier);
    v = vaddq_s32(v, vshrq_n_s32(v, 31));
    v = vrshlq_n_s32(v, shift);
    v = vaddq_n_s32(v, output_offset);
    v = vmaxq_s32(v, vdupq_n_s32(act_min));
    return vminq_s32(v, vdupq_n_s32(act_max));
}

/* Four int32 as one vector, a0 in lane 0. */
MNMCU_INLINE int32x4_t mnmcu_vec4(int32_t a0, int32_t a1, int32_t a2, int32_t a3)
{
    int32x4_t v = vdupq_n_s32(a0);
    v = vsetq_lane_s32(a1, v, 1);
    v = vsetq_lane_s32(a2, v, 2);
    return vsetq_lane_s32(a3, v, 3);
}

#else
#define MNMCU_HAVE_MVE 0
#endif

#endif /* MNMCU_MVE_H */
