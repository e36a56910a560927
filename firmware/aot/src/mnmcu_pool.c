/*
 * mnmcu_pool.c - AVERAGE_POOL_2D, MAX_POOL_2D and MEAN over H, W, int8.
 *
 * AveragePool follows reference_integer_ops::AveragePool (padded positions
 * are not counted, rounding half away from zero), MaxPool
 * reference_integer_ops::MaxPool (padded positions are left out; a window
 * with none inside the image gives the clamped -128). MEAN follows
 * reference_ops::QuantizedMeanOrSum: the int32 sum of the raw values minus
 * zero_point * count, requantised with a multiplier that already holds
 * input_scale / output_scale / count (folded at generation time).
 */
#include "mnmcu_fixedpoint.h"

mnmcu_status_t mnmcu_avgpool2d_s8_run(const mnmcu_pool2d_params_t *params, const int8_t *input,
                                      int8_t *output)
{
    int32_t batch, out_y, out_x, ch;
    const mnmcu_dims_t *in;
    const mnmcu_dims_t *od;
    if (params == NULL || input == NULL || output == NULL) {
        return MNMCU_ERR_ARG;
    }
    in = &params->input;
    od = &params->output;
    if (!mnmcu_dims_valid(in) || !mnmcu_dims_valid(od) || params->filter_h < 1 ||
        params->filter_w < 1 || params->stride_h < 1 || params->stride_w < 1 ||
        params->pad_h < 0 || params->pad_w < 0 ||
        !mnmcu_act_valid(params->act_min, params->act_max)) {
        return MNMCU_ERR_ARG;
    }
    if (od->n != in->n || od->c != in->c) {
        return MNMCU_ERR_SHAPE;
    }
    for (batch = 0; batch < in->n; ++batch) {
        for (out_y = 0; out_y < od->h; ++out_y) {
            const int32_t in_y_origin = out_y * params->stride_h - params->pad_h;
            const int32_t y_start = MNMCU_MAX(0, -in_y_origin);
            const int32_t y_end = MNMCU_MIN(params->filter_h, in->h - in_y_origin);
            for (out_x = 0; out_x < od->w; ++out_x) {
                const int32_t in_x_origin = out_x * params->stride_w - params->pad_w;
                const int32_t x_start = MNMCU_MAX(0, -in_x_origin);
                const int32_t x_end = MNMCU_MIN(params->filter_w, in->w - in_x_origin);
                const int32_t count = MNMCU_MAX(0, y_end - y_start) * MNMCU_MAX(0, x_end - x_start);
                if (count == 0) {
                    return MNMCU_ERR_SHAPE;
                }
                for (ch = 0; ch < in->c; ++ch) {
                    int32_t acc = 0;
                    int32_t fy, fx;
                    for (fy = y_start; fy < y_end; ++fy) {
                        for (fx = x_start; fx < x_end; ++fx) {
                            const int64_t idx =
                                (((int64_t)batch * in->h + in_y_origin + fy) * in->w +
                                 in_x_origin + fx) * in->c + ch;
                            acc += input[idx];
                        }
                    }
                    acc = acc > 0 ? (acc + count / 2) / count : (acc - count / 2) / count;
                    output[(((int64_t)batch * od->h + out_y) * od->w + out_x) * od->c + ch] =
                        (int8_t)mnmcu_clamp(acc, params->act_min, params->act_max);
                }
            }
        }
    }
    return MNMCU_OK;
}

mnmcu_status_t mnmcu_maxpool2d_s8_run(const mnmcu_pool2d_params_t *params, const int8_t *input,
                                      int8_t *output)
{
    int32_t batch, out_y, out_x, ch;
    const mnmcu_dims_t *in;
    const mnmcu_dims_t *od;
    if (params == NULL || input == NULL || output == NULL) {
        return MNMCU_ERR_ARG;
    }
    in = &params->input;
    od = &params->output;
    if (!mnmcu_dims_valid(in) || !mnmcu_dims_valid(od) || params->filter_h < 1 ||
        params->filter_w < 1 || params->stride_h < 1 || params->stride_w < 1 ||
        params->pad_h < 0 || params->pad_w < 0 ||
        !mnmcu_act_valid(params->act_min, params->act_max)) {
        return MNMCU_ERR_ARG;
    }
    if (od->n != in->n || od->c != in->c) {
        return MNMCU_ERR_SHAPE;
    }
    for (batch = 0; batch < in->n; ++batch) {
        for (out_y = 0; out_y < od->h; ++out_y) {
            const int32_t in_y_origin = out_y * params->stride_h - params->pad_h;
            const int32_t y_start = MNMCU_MAX(0, -in_y_origin);
            const int32_t y_end = MNMCU_MIN(params->filter_h, in->h - in_y_origin);
            for (out_x = 0; out_x < od->w; ++out_x) {
                const int32_t in_x_origin = out_x * params->stride_w - params->pad_w;
                const int32_t x_start = MNMCU_MAX(0, -in_x_origin);
                const int32_t x_end = MNMCU_MIN(params->filter_w, in->w - in_x_origin);
                int8_t *out =
                    output + (((int64_t)batch * od->h + out_y) * od->w + out_x) * od->c;
                for (ch = 0; ch < in->c; ++ch) {
                    int32_t best = INT8_MIN;
                    int32_t fy, fx;
                    for (fy = y_start; fy < y_end; ++fy) {
                        const int8_t *row =
                            input + (((int64_t)batch * in->h + in_y_origin + fy) * in->w +
                                     in_x_origin) * in->c + ch;
                        for (fx = x_start; fx < x_end; ++fx) {
                            best = MNMCU_MAX(best, (int32_t)row[(int64_t)fx * in->c]);
                        }
                    }
                    out[ch] = (int8_t)mnmcu_clamp(best, params->act_min, params->act_max);
                }
            }
        }
    }
    return MNMCU_OK;
}

mnmcu_status_t mnmcu_mean_s8_run(const mnmcu_mean_params_t *params, const int8_t *input,
                                 int8_t *output)
{
    int32_t batch, ch, i;
    int32_t count;
    const mnmcu_dims_t *in;
    if (params == NULL || input == NULL || output == NULL) {
        return MNMCU_ERR_ARG;
    }
    in = &params->input;
    if (!mnmcu_dims_valid(in) || !mnmcu_requant_valid(params->multiplier, params->shift) ||
        (int64_t)in->h * in->w > (1 << 23)) {
        return MNMCU_ERR_ARG;
    }
    count = in->h * in->w;
    for (batch = 0; batch < in->n; ++batch) {
        const int8_t *in_batch = input + (int64_t)batch * count * in->c;
        for (ch = 0; ch < in->c; ++ch) {
            int32_t sum = 0;
            int32_t out;
            for (i = 0; i < count; ++i) {
                sum += in_batch[(int64_t)i * in->c + ch];
            }
            sum += params->input_offset * count;
            out = mnmcu_mbqm(sum, params->multiplier, params->shift) + params->output_offset;
            output[(int64_t)batch * in->c + ch] = (int8_t)mnmcu_clamp(out, INT8_MIN, INT8_MAX);
        }
    }
    return MNMCU_OK;
}
