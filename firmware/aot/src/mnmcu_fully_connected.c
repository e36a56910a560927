/*
 * mnmcu_fully_connected.c - FULLY_CONNECTED, int8, in either reference's arithmetic.
 *
 * TFLite Micro (reference_integer_ops::FullyConnected(PerChannel), and
 * CMSIS-NN's arm_fully_connected_s8) requantises the int32 accumulator with
 * MultiplyByQuantizedMultiplier, as a convolution does:
 * mnmcu_fully_connected_s8_run.
 *
 * LiteRT's reference kernels (since April 2025) requantise in floating point:
 *     out = (int32_t)round((double)acc * effective_scale)
 * with effective_scale = (double)input_scale * filter_scale / output_scale:
 * mnmcu_fully_connected_s8_litert_run. requant_exact() reproduces that
 * double multiplication (IEEE-754 round to nearest even to 53 bits) and
 * round() (half away from zero) with integer operations only, so the result
 * is identical without an FPU.
 */
#include "mnmcu_fixedpoint.h"

/* Number of significant bits of the 128-bit value hi:lo. */
static int32_t bit_length128(uint64_t hi, uint64_t lo)
{
    int32_t n = 0;
    uint64_t v = hi != 0 ? hi : lo;
    while (v != 0) {
        ++n;
        v >>= 1;
    }
    return hi != 0 ? n + 64 : n;
}

/* Results saturate here, far outside int8, so that adding the output offset
 * cannot overflow (TFLite's cast of such a double would be undefined). */
#define REQUANT_LIMIT ((uint64_t)1 << 30)

/* round((double)acc * (mantissa * 2^exponent)), mantissa in [0, 2^53). */
static int32_t requant_exact(int32_t acc, int64_t mantissa, int32_t exponent)
{
    const int negative = acc < 0;
    const uint64_t a = negative ? (uint64_t)0 - (uint64_t)(int64_t)acc : (uint64_t)acc;
    const uint64_t m = (uint64_t)mantissa;
    uint64_t p0, p1, lo, hi, q;
    int32_t length, drop, e2;
    uint64_t r;

    if (a == 0 || m == 0) {
        return 0;
    }
    /* a < 2^32 and m < 2^53: the product a * m = hi:lo has at most 85 bits. */
    p0 = a * (m & 0xFFFFFFFFu);
    p1 = a * (m >> 32);
    lo = p0 + (p1 << 32);
    hi = (p1 >> 32) + (lo < p0 ? 1u : 0u);

    /* Round the exact product to 53 significant bits, ties to even. */
    length = bit_length128(hi, lo);
    drop = length > 53 ? length - 53 : 0; /* at most 32 */
    if (drop == 0) {
        q = lo;
    } else {
        const uint64_t rem = lo & ((((uint64_t)1) << drop) - 1u);
        const uint64_t half = ((uint64_t)1) << (drop - 1);
        q = (lo >> drop) | (hi << (64 - drop));
        if (rem > half || (rem == half && (q & 1u) != 0)) {
            ++q;
        }
    }
    /* The double is q * 2^e2; round it to an integer, half away from zero. */
    e2 = exponent + drop;
    if (e2 >= 0) {
        r = (e2 >= 31 || q > (REQUANT_LIMIT >> e2)) ? REQUANT_LIMIT : q << e2;
    } else if (e2 <= -64) {
        r = 0;
    } else {
        r = (q + (((uint64_t)1) << (-e2 - 1))) >> (-e2);
    }
    if (r > REQUANT_LIMIT) {
        r = REQUANT_LIMIT;
    }
    return negative ? -(int32_t)r : (int32_t)r;
}

static int fc_args_valid(const mnmcu_fully_connected_params_t *params, const int8_t *input,
                         const int8_t *filter, const int8_t *output)
{
    return params != NULL && input != NULL && filter != NULL && output != NULL &&
           params->batches >= 1 && params->input_depth >= 1 && params->output_depth >= 1 &&
           mnmcu_act_valid(params->act_min, params->act_max);
}

/* The int32 accumulator of output o of input row in_row. */
static int32_t fc_accumulate(const mnmcu_fully_connected_params_t *params, const int8_t *in_row,
                             const int8_t *filter, const int32_t *bias, int32_t o)
{
    const int8_t *f_row = filter + (int64_t)o * params->input_depth;
    int32_t acc = 0;
    int32_t d;
    for (d = 0; d < params->input_depth; ++d) {
        acc += ((int32_t)f_row[d] + params->filter_offset) *
               ((int32_t)in_row[d] + params->input_offset);
    }
    return bias != NULL ? acc + bias[o] : acc;
}

mnmcu_status_t mnmcu_fully_connected_s8_run(const mnmcu_fully_connected_params_t *params,
                                            const int8_t *input, const int8_t *filter,
                                            const int32_t *bias, int8_t *output)
{
    int32_t b, o;
    if (!fc_args_valid(params, input, filter, output) || params->multiplier == NULL ||
        params->shift == NULL) {
        return MNMCU_ERR_ARG;
    }
    for (o = 0; o < params->output_depth; ++o) {
        if (!mnmcu_requant_valid(params->multiplier[o], params->shift[o])) {
            return MNMCU_ERR_ARG;
        }
    }
    for (b = 0; b < params->batches; ++b) {
        const int8_t *in_row = input + (int64_t)b * params->input_depth;
        int8_t *out_row = output + (int64_t)b * params->output_depth;
        for (o = 0; o < params->output_depth; ++o) {
            int32_t acc = fc_accumulate(params, in_row, filter, bias, o);
            acc = mnmcu_mbqm(acc, params->multiplier[o], params->shift[o]);
            acc += params->output_offset;
            out_row[o] = (int8_t)mnmcu_clamp(acc, params->act_min, params->act_max);
        }
    }
    return MNMCU_OK;
}

mnmcu_status_t mnmcu_fully_connected_s8_litert_run(const mnmcu_fully_connected_params_t *params,
                                                   const int8_t *input, const int8_t *filter,
                                                   const int32_t *bias, int8_t *output)
{
    int32_t b, o;
    if (!fc_args_valid(params, input, filter, output) || params->scale_mantissa == NULL ||
        params->scale_exponent == NULL) {
        return MNMCU_ERR_ARG;
    }
    for (o = 0; o < params->output_depth; ++o) {
        if (params->scale_mantissa[o] < 0 ||
            params->scale_mantissa[o] >= ((int64_t)1 << 53)) {
            return MNMCU_ERR_ARG;
        }
    }
    for (b = 0; b < params->batches; ++b) {
        const int8_t *in_row = input + (int64_t)b * params->input_depth;
        int8_t *out_row = output + (int64_t)b * params->output_depth;
        for (o = 0; o < params->output_depth; ++o) {
            int32_t acc = fc_accumulate(params, in_row, filter, bias, o);
            acc = requant_exact(acc, params->scale_mantissa[o], params->scale_exponent[o]);
            acc += params->output_offset;
            out_row[o] = (int8_t)mnmcu_clamp(acc, params->act_min, params->act_max);
        }
    }
    return MNMCU_OK;
}
