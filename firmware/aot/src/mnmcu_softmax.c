/*
 * mnmcu_softmax.c - SOFTMAX, int8 in, int8 out (scale 1/256, zero point -128).
 *
 * reference_ops::Softmax for quantised input, which LiteRT's BUILTIN_REF
 * kernel runs (its optimised kernels use a float lookup table instead):
 * differences to the row maximum are scaled to Q5.26, exponentiated with
 * gemmlowp's exp_on_negative_values, summed in Q12.19, inverted with
 * gemmlowp's one_over_one_plus_x_for_x_in_0_1 (Newton-Raphson), and every
 * exp is multiplied by the reciprocal.
 */
#include "mnmcu_fixedpoint.h"

#define SCALED_DIFF_INTEGER_BITS 5  /* Q5.26 input of exp() */
#define ACCUMULATION_INTEGER_BITS 12 /* Q12.19 sum of exps */

/* exp(a) for a in [-1/4, 0), Q0.31 in and out. */
static int32_t exp_on_interval_between_negative_one_quarter_and_0_excl(int32_t a)
{
    const int32_t constant_term = 1895147668;    /* exp(-1/8) */
    const int32_t constant_1_over_3 = 715827883; /* 1/3 */
    const int32_t x = a + ((int32_t)1 << 28);     /* a + 1/8 */
    const int32_t x2 = mnmcu_srdhm(x, x);
    const int32_t x3 = mnmcu_srdhm(x2, x);
    const int32_t x4 = mnmcu_srdhm(x2, x2);
    const int32_t x4_over_4 = mnmcu_rdbpot(x4, 2);
    const int32_t x4_over_24_plus_x3_over_6_plus_x2_over_2 =
        mnmcu_rdbpot(mnmcu_srdhm(x4_over_4 + x3, constant_1_over_3) + x2, 1);
    return constant_term +
           mnmcu_srdhm(constant_term, x + x4_over_24_plus_x3_over_6_plus_x2_over_2);
}

/* exp(a) for a <= 0: a in Q5.26, result in Q0.31. */
static int32_t exp_on_negative_values(int32_t a)
{
    /* exp(-2^k) in Q0.31 for k = -2 .. 4. */
    static const int32_t multipliers[7] = {1672461947, 1302514674, 790015084, 290630308,
                                           39332535,   720401,     242};
    const int32_t fractional_bits = 31 - SCALED_DIFF_INTEGER_BITS;
    const int32_t one_quarter = (int32_t)1 << (fractional_bits - 2);
    const int32_t mask = one_quarter - 1;
    const int32_t a_mod_quarter_minus_one_quarter = (a & mask) - one_quarter;
    const int32_t remainder = a_mod_quarter_minus_one_quarter - a;
    int32_t result = exp_on_interval_between_negative_one_quarter_and_0_excl(
        mnmcu_sat_lshift(a_mod_quarter_minus_one_quarter, SCALED_DIFF_INTEGER_BITS));
    int32_t k;
    for (k = -2; k <= 4; ++k) {
        if ((remainder & ((int32_t)1 << (fractional_bits + k))) != 0) {
            result = mnmcu_srdhm(result, multipliers[k + 2]);
        }
    }
    return a == 0 ? INT32_MAX : result;
}

/* 1 / (1 + a) for a in [0, 1), Q0.31 in and out. */
static int32_t one_over_one_plus_x_for_x_in_0_1(int32_t a)
{
    const int32_t constant_48_over_17 = 1515870810;      /* Q2.29 */
    const int32_t constant_neg_32_over_17 = -1010580540; /* Q2.29 */
    const int32_t one_q2 = (int32_t)1 << 29;
    const int64_t sum = (int64_t)a + INT32_MAX;
    const int32_t half_denominator = (int32_t)((sum + (sum >= 0 ? 1 : -1)) / 2);
    int32_t x = constant_48_over_17 + mnmcu_srdhm(half_denominator, constant_neg_32_over_17);
    int32_t i;
    for (i = 0; i < 3; ++i) {
        const int32_t half_denominator_times_x = mnmcu_srdhm(half_denominator, x);
        const int32_t one_minus_half_denominator_times_x = one_q2 - half_denominator_times_x;
        x = x + mnmcu_sat_lshift(mnmcu_srdhm(x, one_minus_half_denominator_times_x), 2);
    }
    return mnmcu_sat_lshift(x, 1);
}

static int32_t count_leading_zeros(uint32_t x)
{
    int32_t n = 0;
    if (x == 0) {
        return 32;
    }
    while ((x & 0x80000000u) == 0) {
        x <<= 1;
        ++n;
    }
    return n;
}

/* Rescaled input difference in Q5.26 (MultiplyByQuantizedMultiplierGreaterThanOne). */
static int32_t scaled_diff(int32_t diff, const mnmcu_softmax_params_t *p)
{
    return mnmcu_srdhm(mnmcu_mul_pow2_wrap(diff, p->input_left_shift), p->input_multiplier);
}

mnmcu_status_t mnmcu_softmax_s8_run(const mnmcu_softmax_params_t *params, const int8_t *input,
                                    int8_t *output)
{
    int32_t row, c;
    if (params == NULL || input == NULL || output == NULL) {
        return MNMCU_ERR_ARG;
    }
    if (params->rows < 1 || params->depth < 1 || params->depth > 4095 ||
        params->input_multiplier < 0 || params->input_left_shift < 0 ||
        params->input_left_shift > 31 || params->diff_min > 0 ||
        (int64_t)params->diff_min * -((int64_t)1 << params->input_left_shift) > INT32_MAX) {
        return MNMCU_ERR_ARG;
    }
    for (row = 0; row < params->rows; ++row) {
        const int8_t *in = input + (int64_t)row * params->depth;
        int8_t *out = output + (int64_t)row * params->depth;
        int32_t max_in_row = INT8_MIN;
        int32_t sum_of_exps = 0;
        int32_t headroom_plus_one, num_bits_over_unit, shifted_scale, exponent;
        uint32_t shifted_sum_minus_one;

        for (c = 0; c < params->depth; ++c) {
            max_in_row = MNMCU_MAX(max_in_row, in[c]);
        }
        for (c = 0; c < params->depth; ++c) {
            const int32_t diff = in[c] - max_in_row;
            if (diff >= params->diff_min) {
                const int32_t exp_q0 = exp_on_negative_values(scaled_diff(diff, params));
                sum_of_exps += mnmcu_rdbpot(exp_q0, ACCUMULATION_INTEGER_BITS);
            }
        }
        /* GetReciprocal(sum_of_exps, 12): 1 / sum as Q0.31 times 2^-num_bits_over_unit. */
        headroom_plus_one = count_leading_zeros((uint32_t)sum_of_exps);
        num_bits_over_unit = ACCUMULATION_INTEGER_BITS - headroom_plus_one;
        shifted_sum_minus_one =
            ((uint32_t)sum_of_exps << headroom_plus_one) - ((uint32_t)1 << 31);
        shifted_scale = one_over_one_plus_x_for_x_in_0_1((int32_t)shifted_sum_minus_one);
        exponent = num_bits_over_unit + 31 - 8;
        if (exponent < 0 || exponent > 31) {
            return MNMCU_ERR_ARG;
        }
        for (c = 0; c < params->depth; ++c) {
            const int32_t diff = in[c] - max_in_row;
            if (diff >= params->diff_min) {
                const int32_t exp_q0 = exp_on_negative_values(scaled_diff(diff, params));
                const int32_t unsat =
                    mnmcu_rdbpot(mnmcu_srdhm(shifted_scale, exp_q0), exponent);
                out[c] = (int8_t)mnmcu_clamp(unsat + INT8_MIN, INT8_MIN, INT8_MAX);
            } else {
                out[c] = INT8_MIN;
            }
        }
    }
    return MNMCU_OK;
}
