/*
 * mnmcu_elementwise_dsp.c - ADD (same shapes) and MUL (by one value per
 * channel) with the fast requantisation of mnmcu_dsp.h: one SMMLAR and a
 * shift per output instead of MBQM's 64-bit steps.
 *
 * Bit-exact with mnmcu_add_s8_tables_run() and mnmcu_mul_channels_s8_run():
 * mnmcu_requant_pre() equals MBQM for |acc| < 2^30 and shift in [-22, -1].
 * The ADD accumulator is the sum of two scaled inputs, each at most
 * 255 * 2^20 < 2^28 in magnitude (a multiplier below 1); the MUL accumulator
 * is a product of two values in [-255, 255]. mnmcu.emit.aot checks the shift
 * before it picks these kernels.
 */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("O2")
#endif
#include "mnmcu_dsp.h"
#include "mnmcu_kernels_fast.h"

static int fast_shift(int32_t multiplier, int32_t shift)
{
    return multiplier >= 0 && shift >= -22 && shift <= -1;
}

/* The loop of mnmcu_add_s8_tables_dsp_run() for the whole int8 range, on its own so
 * that every constant stays in a register. */
static __attribute__((noinline)) void add_tables_full(const int8_t *in1, const int8_t *in2,
                                                      const int32_t *t1, const int32_t *t2,
                                                      int8_t *out, int32_t size,
                                                      mnmcu_requant_t rq)
{
    const int32_t multiplier = rq.multiplier, round = rq.round, exponent = rq.exponent;
    const int8_t *const end = in1 + size;
    while (in1 < end) {
        const int32_t acc = t1[*in1++] + t2[*in2++];
        *out++ = (int8_t)mnmcu_ssat8(
            mnmcu_smmlar(acc * 2, multiplier, round + (acc >> 31)) >> exponent);
    }
}

mnmcu_status_t mnmcu_add_s8_tables_dsp_run(const mnmcu_add_tables_params_t *params,
                                           const int8_t *input1, const int8_t *input2,
                                           const int32_t *table1, const int32_t *table2,
                                           int8_t *output)
{
    const int32_t *t1;
    const int32_t *t2;
    mnmcu_requant_t rq;
    int32_t i, size, act_min, act_max;
    if (params == NULL || input1 == NULL || input2 == NULL || table1 == NULL || table2 == NULL ||
        output == NULL || params->size < 0 ||
        !mnmcu_act_valid(params->act_min, params->act_max) ||
        !fast_shift(params->output_multiplier, params->output_shift)) {
        return MNMCU_ERR_ARG;
    }
    t1 = table1 + 128;
    t2 = table2 + 128;
    rq = mnmcu_requant_prepare(params->output_multiplier, params->output_shift,
                               params->output_offset);
    /* Locals: stores through int8_t may alias *params, which would be read again. */
    size = params->size;
    act_min = params->act_min;
    act_max = params->act_max;
    if (mnmcu_act_full(act_min, act_max)) {
        add_tables_full(input1, input2, t1, t2, output, size, rq);
        return MNMCU_OK;
    }
    for (i = 0; i < size; ++i) {
        output[i] = mnmcu_output_pre(t1[input1[i]] + t2[input2[i]], &rq, act_min, act_max, 0);
    }
    return MNMCU_OK;
}

/* The loop of mnmcu_mul_channels_s8_dsp_run() for the whole int8 range, on its own so
 * that every constant stays in a register. */
static __attribute__((noinline)) void mul_channels_full(const int8_t *in, const int8_t *scale,
                                                        int8_t *out, int32_t pixels,
                                                        int32_t channels, int32_t input_offset,
                                                        int32_t scale_offset, mnmcu_requant_t rq)
{
    const int32_t multiplier = rq.multiplier, round = rq.round, exponent = rq.exponent;
    const int8_t *const end = in + (int64_t)pixels * channels;
    while (in < end) {
        const int8_t *sc = scale;
        const int8_t *const row_end = in + channels;
        while (in < row_end) {
            const int32_t acc = (*in++ + input_offset) * (*sc++ + scale_offset);
            *out++ = (int8_t)mnmcu_ssat8(
                mnmcu_smmlar(acc * 2, multiplier, round + (acc >> 31)) >> exponent);
        }
    }
}

mnmcu_status_t mnmcu_mul_channels_s8_dsp_run(const mnmcu_mul_channels_params_t *params,
                                             const int8_t *input, const int8_t *scale,
                                             int8_t *output)
{
    mnmcu_requant_t rq;
    int32_t p, c, pixels, channels, input_offset, scale_offset, act_min, act_max;
    if (params == NULL || input == NULL || scale == NULL || output == NULL ||
        params->pixels <= 0 || params->channels <= 0 ||
        (int64_t)params->pixels * params->channels > INT32_MAX ||
        params->input_offset < -128 || params->input_offset > 128 ||
        params->scale_offset < -128 || params->scale_offset > 128 ||
        !mnmcu_act_valid(params->act_min, params->act_max) ||
        !fast_shift(params->output_multiplier, params->output_shift)) {
        return MNMCU_ERR_ARG;
    }
    rq = mnmcu_requant_prepare(params->output_multiplier, params->output_shift,
                               params->output_offset);
    /* Locals: stores through int8_t may alias *params, which would be read again. */
    pixels = params->pixels;
    channels = params->channels;
    input_offset = params->input_offset;
    scale_offset = params->scale_offset;
    act_min = params->act_min;
    act_max = params->act_max;
    if (mnmcu_act_full(act_min, act_max)) {
        mul_channels_full(input, scale, output, pixels, channels, input_offset, scale_offset, rq);
        return MNMCU_OK;
    }
    for (p = 0; p < pixels; ++p) {
        const int8_t *in = input + (int64_t)p * channels;
        int8_t *out = output + (int64_t)p * channels;
        for (c = 0; c < channels; ++c) {
            const int32_t acc = (in[c] + input_offset) * (scale[c] + scale_offset);
            out[c] = mnmcu_output_pre(acc, &rq, act_min, act_max, 0);
        }
    }
    return MNMCU_OK;
}
