/*
 * mnmcu_elementwise.c - ADD, MUL (with broadcasting), HARD_SWISH and
 * REQUANTIZE (QUANTIZE int8->int8, RELU, RELU6), int8.
 *
 * ADD: reference_integer_ops::AddFunc (inputs scaled up by 2^left_shift,
 * rescaled to a common scale, summed, rescaled to the output).
 * MUL: reference_integer_ops::MulElementwise / BroadcastMul6DSlow.
 * HARD_SWISH: reference_ops::HardSwish with its int16 fixed-point steps.
 * REQUANTIZE: reference_ops::Requantize and reference_ops::ReluX.
 * LUT: any of the one-input functions above as its 256 values (the
 * generated code uses it for HARD_SWISH and REQUANTIZE; the kernels above
 * stay the reference its tables are checked against).
 *
 * Every output element depends only on the input elements at its own
 * position (and the broadcast input), so output == input1 is allowed when
 * input1 has the output's shape.
 */
#include "mnmcu_fixedpoint.h"

/* 1 when every dim of `in` is the matching dim of `out` or 1. */
static int broadcastable(const mnmcu_dims_t *in, const mnmcu_dims_t *out)
{
    return (in->n == out->n || in->n == 1) && (in->h == out->h || in->h == 1) &&
           (in->w == out->w || in->w == 1) && (in->c == out->c || in->c == 1);
}

static int same_dims(const mnmcu_dims_t *a, const mnmcu_dims_t *b)
{
    return a->n == b->n && a->h == b->h && a->w == b->w && a->c == b->c;
}

/* Strides of `in` (in elements) for walking the output, 0 on broadcast dims. */
static void broadcast_strides(const mnmcu_dims_t *in, const mnmcu_dims_t *out, int64_t s[4])
{
    const int64_t sc = 1;
    const int64_t sw = in->c;
    const int64_t sh = sw * in->w;
    const int64_t sn = sh * in->h;
    s[0] = (in->n == out->n && out->n > 1) ? sn : 0;
    s[1] = (in->h == out->h && out->h > 1) ? sh : 0;
    s[2] = (in->w == out->w && out->w > 1) ? sw : 0;
    s[3] = (in->c == out->c && out->c > 1) ? sc : 0;
}

/* One output element of a binary op from its two input elements. */
typedef int32_t (*binary_element_fn)(int8_t x, int8_t y, const void *params);

/*
 * Walk the output of a binary op with numpy-style broadcasting of both
 * inputs, computing each element with `element`. Checks the shapes first.
 */
static mnmcu_status_t broadcast_binary(const mnmcu_dims_t *d1, const mnmcu_dims_t *d2,
                                       const mnmcu_dims_t *od, const int8_t *input1,
                                       const int8_t *input2, int8_t *output,
                                       binary_element_fn element, const void *params)
{
    int64_t s1[4], s2[4];
    int32_t n, h, w, c;
    int64_t o = 0;
    if (!broadcastable(d1, od) || !broadcastable(d2, od) ||
        (output == input1 && !same_dims(d1, od))) {
        return MNMCU_ERR_SHAPE;
    }
    broadcast_strides(d1, od, s1);
    broadcast_strides(d2, od, s2);
    for (n = 0; n < od->n; ++n) {
        for (h = 0; h < od->h; ++h) {
            for (w = 0; w < od->w; ++w) {
                const int64_t b1 = n * s1[0] + h * s1[1] + w * s1[2];
                const int64_t b2 = n * s2[0] + h * s2[1] + w * s2[2];
                for (c = 0; c < od->c; ++c) {
                    output[o++] =
                        (int8_t)element(input1[b1 + c * s1[3]], input2[b2 + c * s2[3]], params);
                }
            }
        }
    }
    return MNMCU_OK;
}

static int32_t add_one(int8_t x, int8_t y, const void *params)
{
    const mnmcu_add_params_t *p = (const mnmcu_add_params_t *)params;
    const int32_t in1 = p->input1_offset + x;
    const int32_t in2 = p->input2_offset + y;
    const int32_t shifted1 = in1 * ((int32_t)1 << p->left_shift);
    const int32_t shifted2 = in2 * ((int32_t)1 << p->left_shift);
    const int32_t scaled1 = mnmcu_mbqm(shifted1, p->input1_multiplier, p->input1_shift);
    const int32_t scaled2 = mnmcu_mbqm(shifted2, p->input2_multiplier, p->input2_shift);
    const int32_t raw = mnmcu_mbqm(scaled1 + scaled2, p->output_multiplier, p->output_shift) +
                        p->output_offset;
    return mnmcu_clamp(raw, p->act_min, p->act_max);
}

static int32_t mul_one(int8_t x, int8_t y, const void *params)
{
    const mnmcu_mul_params_t *p = (const mnmcu_mul_params_t *)params;
    const int32_t in1 = p->input1_offset + x;
    const int32_t in2 = p->input2_offset + y;
    const int32_t raw =
        p->output_offset + mnmcu_mbqm(in1 * in2, p->output_multiplier, p->output_shift);
    return mnmcu_clamp(raw, p->act_min, p->act_max);
}

static int offset_valid(int32_t offset)
{
    return offset >= -128 && offset <= 128;
}

mnmcu_status_t mnmcu_add_s8_run(const mnmcu_add_params_t *params, const int8_t *input1,
                                const int8_t *input2, int8_t *output)
{
    const mnmcu_dims_t *od;
    if (params == NULL || input1 == NULL || input2 == NULL || output == NULL) {
        return MNMCU_ERR_ARG;
    }
    od = &params->output;
    if (!mnmcu_dims_valid(&params->input1) || !mnmcu_dims_valid(&params->input2) ||
        !mnmcu_dims_valid(od) || !mnmcu_act_valid(params->act_min, params->act_max) ||
        params->left_shift < 0 || params->left_shift > 22 ||
        !offset_valid(params->input1_offset) || !offset_valid(params->input2_offset) ||
        !mnmcu_requant_valid(params->input1_multiplier, params->input1_shift) ||
        !mnmcu_requant_valid(params->input2_multiplier, params->input2_shift) ||
        !mnmcu_requant_valid(params->output_multiplier, params->output_shift) ||
        params->input1_shift > 0 || params->input2_shift > 0 || params->output_shift > 0) {
        return MNMCU_ERR_ARG;
    }
    return broadcast_binary(&params->input1, &params->input2, od, input1, input2, output,
                            add_one, params);
}

mnmcu_status_t mnmcu_mul_s8_run(const mnmcu_mul_params_t *params, const int8_t *input1,
                                const int8_t *input2, int8_t *output)
{
    const mnmcu_dims_t *od;
    if (params == NULL || input1 == NULL || input2 == NULL || output == NULL) {
        return MNMCU_ERR_ARG;
    }
    od = &params->output;
    if (!mnmcu_dims_valid(&params->input1) || !mnmcu_dims_valid(&params->input2) ||
        !mnmcu_dims_valid(od) || !mnmcu_act_valid(params->act_min, params->act_max) ||
        !offset_valid(params->input1_offset) || !offset_valid(params->input2_offset) ||
        !mnmcu_requant_valid(params->output_multiplier, params->output_shift)) {
        return MNMCU_ERR_ARG;
    }
    return broadcast_binary(&params->input1, &params->input2, od, input1, input2, output,
                            mul_one, params);
}

mnmcu_status_t mnmcu_hard_swish_s8_run(const mnmcu_hard_swish_params_t *params,
                                       const int8_t *input, int8_t *output)
{
    int32_t i;
    int32_t out_shift, relu_exp;
    if (params == NULL || input == NULL || output == NULL) {
        return MNMCU_ERR_ARG;
    }
    out_shift = -params->output_multiplier_exponent;
    relu_exp = params->reluish_multiplier_exponent;
    if (params->size < 0 || out_shift < 0 || out_shift > 31 || relu_exp < -31 || relu_exp > 15 ||
        params->input_zero_point < INT8_MIN || params->input_zero_point > INT8_MAX ||
        params->output_zero_point < INT8_MIN || params->output_zero_point > INT8_MAX) {
        return MNMCU_ERR_ARG;
    }
    for (i = 0; i < params->size; ++i) {
        const int16_t in_value = (int16_t)(input[i] - params->input_zero_point);
        /* Put the value in the high bits of an int16 (x 2^7, no overflow). */
        const int16_t in_hires = (int16_t)(in_value * (1 << 7));
        const int16_t in_preshift_out =
            mnmcu_srdhm16(in_hires, params->output_multiplier_fixedpoint);
        int16_t reluish = in_hires;
        int16_t pre_out;
        int32_t out;
        /* Rescale x from [-3, 3] to [-1, 1] (saturating) ... */
        if (relu_exp > 0) {
            reluish = mnmcu_sat_lshift16(reluish, relu_exp - 1);
        }
        reluish = mnmcu_srdhm16(reluish, params->reluish_multiplier_fixedpoint);
        if (relu_exp > 0) {
            reluish = mnmcu_sat_lshift16(reluish, 1);
        }
        if (relu_exp < 0) {
            reluish = mnmcu_rdbpot16(reluish, -relu_exp);
        }
        /* ... then to [0, 1]. */
        reluish = (int16_t)(((int32_t)reluish + (1 << 15)) >> 1);
        pre_out = mnmcu_sdhm16(reluish, in_preshift_out);
        out = (int16_t)(mnmcu_rdbpot16(pre_out, out_shift) + params->output_zero_point);
        output[i] = (int8_t)mnmcu_clamp(out, INT8_MIN, INT8_MAX);
    }
    return MNMCU_OK;
}

mnmcu_status_t mnmcu_requantize_s8_run(const mnmcu_requantize_params_t *params,
                                       const int8_t *input, int8_t *output)
{
    int32_t i;
    if (params == NULL || input == NULL || output == NULL) {
        return MNMCU_ERR_ARG;
    }
    if (params->size < 0 || !mnmcu_requant_valid(params->multiplier, params->shift) ||
        !offset_valid(params->input_offset) ||
        !mnmcu_act_valid(params->act_min, params->act_max)) {
        return MNMCU_ERR_ARG;
    }
    for (i = 0; i < params->size; ++i) {
        const int32_t out =
            mnmcu_mbqm(input[i] + params->input_offset, params->multiplier, params->shift) +
            params->output_offset;
        output[i] = (int8_t)mnmcu_clamp(out, params->act_min, params->act_max);
    }
    return MNMCU_OK;
}

mnmcu_status_t mnmcu_lut_s8_run(const mnmcu_lut_params_t *params, const int8_t *input,
                                const int8_t *table, int8_t *output)
{
    const int8_t *t;
    int32_t i = 0;
    if (params == NULL || input == NULL || table == NULL || output == NULL || params->size < 0) {
        return MNMCU_ERR_ARG;
    }
    t = table + 128;
    /* Four elements per iteration; each output depends on its own input only. */
    for (; i + 4 <= params->size; i += 4) {
        const int8_t a = input[i], b = input[i + 1], c = input[i + 2], d = input[i + 3];
        output[i] = t[a];
        output[i + 1] = t[b];
        output[i + 2] = t[c];
        output[i + 3] = t[d];
    }
    for (; i < params->size; ++i) {
        output[i] = t[input[i]];
    }
    return MNMCU_OK;
}

mnmcu_status_t mnmcu_add_s8_tables_run(const mnmcu_add_tables_params_t *params,
                                       const int8_t *input1, const int8_t *input2,
                                       const int32_t *table1, const int32_t *table2,
                                       int8_t *output)
{
    const int32_t *t1;
    const int32_t *t2;
    int32_t i;
    if (params == NULL || input1 == NULL || input2 == NULL || table1 == NULL || table2 == NULL ||
        output == NULL) {
        return MNMCU_ERR_ARG;
    }
    if (params->size < 0 || !mnmcu_act_valid(params->act_min, params->act_max) ||
        !mnmcu_requant_valid(params->output_multiplier, params->output_shift) ||
        params->output_shift > 0) {
        return MNMCU_ERR_ARG;
    }
    t1 = table1 + 128;
    t2 = table2 + 128;
    for (i = 0; i < params->size; ++i) {
        const int32_t raw =
            mnmcu_mbqm(t1[input1[i]] + t2[input2[i]], params->output_multiplier,
                       params->output_shift) +
            params->output_offset;
        output[i] = (int8_t)mnmcu_clamp(raw, params->act_min, params->act_max);
    }
    return MNMCU_OK;
}

mnmcu_status_t mnmcu_mul_channels_s8_run(const mnmcu_mul_channels_params_t *params,
                                         const int8_t *input, const int8_t *scale,
                                         int8_t *output)
{
    int32_t p, c;
    if (params == NULL || input == NULL || scale == NULL || output == NULL) {
        return MNMCU_ERR_ARG;
    }
    if (params->pixels <= 0 || params->channels <= 0 ||
        (int64_t)params->pixels * params->channels > INT32_MAX ||
        !offset_valid(params->input_offset) || !offset_valid(params->scale_offset) ||
        !mnmcu_act_valid(params->act_min, params->act_max) ||
        !mnmcu_requant_valid(params->output_multiplier, params->output_shift)) {
        return MNMCU_ERR_ARG;
    }
    for (p = 0; p < params->pixels; ++p) {
        const int8_t *in = input + (int64_t)p * params->channels;
        int8_t *out = output + (int64_t)p * params->channels;
        for (c = 0; c < params->channels; ++c) {
            const int32_t product =
                (in[c] + params->input_offset) * (scale[c] + params->scale_offset);
            const int32_t raw =
                mnmcu_mbqm(product, params->output_multiplier, params->output_shift) +
                params->output_offset;
            out[c] = (int8_t)mnmcu_clamp(raw, params->act_min, params->act_max);
        }
    }
    return MNMCU_OK;
}
