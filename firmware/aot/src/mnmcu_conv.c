/*
 * mnmcu_conv.c - CONV_2D and DEPTHWISE_CONV_2D, int8, per-channel quantised.
 *
 * Loop order, zero padding by skipping outside positions, int32 accumulation
 * and requantisation follow TFLite's reference_integer_ops::ConvPerChannel
 * and DepthwiseConvPerChannel.
 */
#include "mnmcu_fixedpoint.h"

int32_t mnmcu_conv2d_s8_get_buffer_size(const mnmcu_conv2d_params_t *params)
{
    (void)params;
    return 0;
}

int32_t mnmcu_depthwise_conv2d_s8_get_buffer_size(const mnmcu_depthwise_conv2d_params_t *params)
{
    (void)params;
    return 0;
}

static int window_valid(int32_t stride_h, int32_t stride_w, int32_t dilation_h, int32_t dilation_w,
                        int32_t pad_h, int32_t pad_w)
{
    return stride_h > 0 && stride_w > 0 && dilation_h > 0 && dilation_w > 0 && pad_h >= 0 &&
           pad_w >= 0;
}

static int per_channel_valid(const int32_t *multiplier, const int32_t *shift, int32_t channels)
{
    int32_t c;
    for (c = 0; c < channels; ++c) {
        if (!mnmcu_requant_valid(multiplier[c], shift[c])) {
            return 0;
        }
    }
    return 1;
}

mnmcu_status_t mnmcu_conv2d_s8_run(const mnmcu_conv2d_params_t *params, const int8_t *input,
                                   const int8_t *filter, const int32_t *bias, int8_t *output,
                                   const mnmcu_buffer_t *scratch)
{
    int32_t batch, out_y, out_x, out_c, groups, filters_per_group;
    const mnmcu_dims_t *in;
    const mnmcu_dims_t *fd;
    const mnmcu_dims_t *od;

    (void)scratch;
    if (params == NULL || input == NULL || filter == NULL || output == NULL ||
        params->multiplier == NULL || params->shift == NULL) {
        return MNMCU_ERR_ARG;
    }
    in = &params->input;
    fd = &params->filter;
    od = &params->output;
    if (!mnmcu_dims_valid(in) || !mnmcu_dims_valid(fd) || !mnmcu_dims_valid(od) ||
        !window_valid(params->stride_h, params->stride_w, params->dilation_h,
                      params->dilation_w, params->pad_h, params->pad_w) ||
        !mnmcu_act_valid(params->act_min, params->act_max)) {
        return MNMCU_ERR_ARG;
    }
    if (od->n != in->n || od->c != fd->n || in->c % fd->c != 0) {
        return MNMCU_ERR_SHAPE;
    }
    groups = in->c / fd->c;
    if (fd->n % groups != 0) {
        return MNMCU_ERR_SHAPE;
    }
    if (!per_channel_valid(params->multiplier, params->shift, od->c)) {
        return MNMCU_ERR_ARG;
    }
    filters_per_group = fd->n / groups;

    for (batch = 0; batch < in->n; ++batch) {
        const int8_t *in_batch = input + (int64_t)batch * in->h * in->w * in->c;
        for (out_y = 0; out_y < od->h; ++out_y) {
            const int32_t in_y_origin = out_y * params->stride_h - params->pad_h;
            for (out_x = 0; out_x < od->w; ++out_x) {
                const int32_t in_x_origin = out_x * params->stride_w - params->pad_w;
                int8_t *out_px =
                    output + (((int64_t)batch * od->h + out_y) * od->w + out_x) * od->c;
                for (out_c = 0; out_c < od->c; ++out_c) {
                    const int32_t group = out_c / filters_per_group;
                    const int8_t *in_group = in_batch + group * fd->c;
                    const int8_t *filt = filter + (int64_t)out_c * fd->h * fd->w * fd->c;
                    int32_t acc = 0;
                    int32_t ky, kx, ic;
                    for (ky = 0; ky < fd->h; ++ky) {
                        const int32_t in_y = in_y_origin + params->dilation_h * ky;
                        if (in_y < 0 || in_y >= in->h) {
                            continue;
                        }
                        for (kx = 0; kx < fd->w; ++kx) {
                            const int32_t in_x = in_x_origin + params->dilation_w * kx;
                            const int8_t *in_px;
                            const int8_t *f_px;
                            if (in_x < 0 || in_x >= in->w) {
                                continue;
                            }
                            in_px = in_group + ((int64_t)in_y * in->w + in_x) * in->c;
                            f_px = filt + ((int64_t)ky * fd->w + kx) * fd->c;
                            for (ic = 0; ic < fd->c; ++ic) {
                                acc += (int32_t)f_px[ic] * ((int32_t)in_px[ic] + params->input_offset);
                            }
                        }
                    }
                    if (bias != NULL) {
                        acc += bias[out_c];
                    }
                    acc = mnmcu_mbqm(acc, params->multiplier[out_c], params->shift[out_c]);
                    acc += params->output_offset;
                    out_px[out_c] = (int8_t)mnmcu_clamp(acc, params->act_min, params->act_max);
                }
            }
        }
    }
    return MNMCU_OK;
}

mnmcu_status_t mnmcu_depthwise_conv2d_s8_run(const mnmcu_depthwise_conv2d_params_t *params,
                                             const int8_t *input, const int8_t *filter,
                                             const int32_t *bias, int8_t *output,
                                             const mnmcu_buffer_t *scratch)
{
    int32_t batch, out_y, out_x, ic, m;
    const mnmcu_dims_t *in;
    const mnmcu_dims_t *fd;
    const mnmcu_dims_t *od;

    (void)scratch;
    if (params == NULL || input == NULL || filter == NULL || output == NULL ||
        params->multiplier == NULL || params->shift == NULL) {
        return MNMCU_ERR_ARG;
    }
    in = &params->input;
    fd = &params->filter;
    od = &params->output;
    if (!mnmcu_dims_valid(in) || !mnmcu_dims_valid(fd) || !mnmcu_dims_valid(od) ||
        params->depth_multiplier < 1 ||
        !window_valid(params->stride_h, params->stride_w, params->dilation_h,
                      params->dilation_w, params->pad_h, params->pad_w) ||
        !mnmcu_act_valid(params->act_min, params->act_max)) {
        return MNMCU_ERR_ARG;
    }
    if (od->n != in->n || fd->n != 1 || od->c != fd->c ||
        (int64_t)in->c * params->depth_multiplier != od->c) {
        return MNMCU_ERR_SHAPE;
    }
    if (!per_channel_valid(params->multiplier, params->shift, od->c)) {
        return MNMCU_ERR_ARG;
    }

    for (batch = 0; batch < in->n; ++batch) {
        const int8_t *in_batch = input + (int64_t)batch * in->h * in->w * in->c;
        for (out_y = 0; out_y < od->h; ++out_y) {
            const int32_t in_y_origin = out_y * params->stride_h - params->pad_h;
            for (out_x = 0; out_x < od->w; ++out_x) {
                const int32_t in_x_origin = out_x * params->stride_w - params->pad_w;
                int8_t *out_px =
                    output + (((int64_t)batch * od->h + out_y) * od->w + out_x) * od->c;
                for (ic = 0; ic < in->c; ++ic) {
                    for (m = 0; m < params->depth_multiplier; ++m) {
                        const int32_t oc = m + ic * params->depth_multiplier;
                        int32_t acc = 0;
                        int32_t ky, kx;
                        for (ky = 0; ky < fd->h; ++ky) {
                            const int32_t in_y = in_y_origin + params->dilation_h * ky;
                            if (in_y < 0 || in_y >= in->h) {
                                continue;
                            }
                            for (kx = 0; kx < fd->w; ++kx) {
                                const int32_t in_x = in_x_origin + params->dilation_w * kx;
                                int32_t in_val, f_val;
                                if (in_x < 0 || in_x >= in->w) {
                                    continue;
                                }
                                in_val = in_batch[((int64_t)in_y * in->w + in_x) * in->c + ic];
                                f_val = filter[((int64_t)ky * fd->w + kx) * fd->c + oc];
                                acc += f_val * (in_val + params->input_offset);
                            }
                        }
                        if (bias != NULL) {
                            acc += bias[oc];
                        }
                        acc = mnmcu_mbqm(acc, params->multiplier[oc], params->shift[oc]);
                        acc += params->output_offset;
                        out_px[oc] = (int8_t)mnmcu_clamp(acc, params->act_min, params->act_max);
                    }
                }
            }
        }
    }
    return MNMCU_OK;
}
