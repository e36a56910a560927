/*
 * mnmcu_conv_dsp.c - fast CONV_2D and DEPTHWISE_CONV_2D for cores with the
 * Arm DSP extension (see mnmcu_kernels_fast.h for the layouts they take).
 *
 * Bit-exact with mnmcu_conv.c: int32 sums are exact in any order, so only
 * the way the accumulators are summed differs; requantisation is
 * mnmcu_requant_fast(), equal to the portable one under the conditions
 * mnmcu.emit.aot checks before choosing these kernels.
 */
#include "mnmcu_dsp.h"
#include "mnmcu_kernels_fast.h"

static int conv_args_valid(const mnmcu_conv2d_params_t *params, const void *input,
                           const void *filter, const void *bias, const void *output)
{
    return params != NULL && input != NULL && filter != NULL && bias != NULL &&
           output != NULL && params->multiplier != NULL && params->shift != NULL &&
           mnmcu_dims_valid(&params->input) && mnmcu_dims_valid(&params->filter) &&
           mnmcu_dims_valid(&params->output) &&
           mnmcu_act_valid(params->act_min, params->act_max);
}

/* ---- CONV_2D 1x1, stride 1 ---------------------------------------------- */

int32_t mnmcu_conv2d_1x1_s8_dsp_get_buffer_size(const mnmcu_conv2d_params_t *params)
{
    return 2 * ((params->input.c + 3) & ~3) * (int32_t)sizeof(int16_t);
}

/*
 * Two pixels' channels as int16, four channels per 16 bytes: pixel 0's
 * channels (0, 2) and (1, 3), then pixel 1's; channels past depth are 0.
 */
static void expand_pair(const int8_t *x0, const int8_t *x1, int32_t depth, int32_t *dst)
{
    int32_t k;
    for (k = 0; k + 3 < depth; k += 4) {
        const int32_t a = mnmcu_read_s8x4(x0 + k);
        const int32_t b = mnmcu_read_s8x4(x1 + k);
        dst[0] = mnmcu_sxtb16(a);
        dst[1] = mnmcu_sxtb16_ror8(a);
        dst[2] = mnmcu_sxtb16(b);
        dst[3] = mnmcu_sxtb16_ror8(b);
        dst += 4;
    }
    if (k < depth) {
        int8_t a[4] = {0, 0, 0, 0};
        int8_t b[4] = {0, 0, 0, 0};
        int32_t i;
        for (i = 0; k + i < depth; ++i) {
            a[i] = x0[k + i];
            b[i] = x1[k + i];
        }
        dst[0] = mnmcu_sxtb16(mnmcu_read_s8x4(a));
        dst[1] = mnmcu_sxtb16_ror8(mnmcu_read_s8x4(a));
        dst[2] = mnmcu_sxtb16(mnmcu_read_s8x4(b));
        dst[3] = mnmcu_sxtb16_ror8(mnmcu_read_s8x4(b));
    }
}

/*
 * acc[0..3] += dot products of the expanded pixel pair x with the filter pair
 * w (channel 0 of the pair: acc[0] pixel 0, acc[2] pixel 1; channel 1:
 * acc[1], acc[3]); groups of four input channels.
 */
static void dot_2x2(const int32_t *x, const int8_t *w, int32_t groups, int32_t acc[4])
{
    int32_t a00 = acc[0], a01 = acc[1], a10 = acc[2], a11 = acc[3];
#if MNMCU_HAVE_DSP
    int32_t xa0, xa1, xb0, xb1, wr, we;
    __asm__ volatile("1:\n\t"
                     "ldrd %[xa0], %[xa1], [%[x]], #8\n\t"
                     "ldrd %[xb0], %[xb1], [%[x]], #8\n\t"
                     "ldr %[wr], [%[w]], #4\n\t"
                     "sxtb16 %[we], %[wr]\n\t"
                     "sxtb16 %[wr], %[wr], ror #8\n\t"
                     "smlad %[a00], %[xa0], %[we], %[a00]\n\t"
                     "smlad %[a00], %[xa1], %[wr], %[a00]\n\t"
                     "smlad %[a10], %[xb0], %[we], %[a10]\n\t"
                     "smlad %[a10], %[xb1], %[wr], %[a10]\n\t"
                     "ldr %[wr], [%[w]], #4\n\t"
                     "sxtb16 %[we], %[wr]\n\t"
                     "sxtb16 %[wr], %[wr], ror #8\n\t"
                     "smlad %[a01], %[xa0], %[we], %[a01]\n\t"
                     "smlad %[a01], %[xa1], %[wr], %[a01]\n\t"
                     "smlad %[a11], %[xb0], %[we], %[a11]\n\t"
                     "smlad %[a11], %[xb1], %[wr], %[a11]\n\t"
                     "subs %[n], %[n], #1\n\t"
                     "bne 1b"
                     : [a00] "+r"(a00), [a01] "+r"(a01), [a10] "+r"(a10), [a11] "+r"(a11),
                       [x] "+r"(x), [w] "+r"(w), [n] "+r"(groups), [xa0] "=&r"(xa0),
                       [xa1] "=&r"(xa1), [xb0] "=&r"(xb0), [xb1] "=&r"(xb1), [wr] "=&r"(wr),
                       [we] "=&r"(we)
                     :
                     : "cc", "memory");
#else
    for (; groups > 0; --groups) {
        const int32_t wa = mnmcu_read_s8x4(w);
        const int32_t wb = mnmcu_read_s8x4(w + 4);
        a00 = mnmcu_smlad(x[0], mnmcu_sxtb16(wa), a00);
        a00 = mnmcu_smlad(x[1], mnmcu_sxtb16_ror8(wa), a00);
        a10 = mnmcu_smlad(x[2], mnmcu_sxtb16(wa), a10);
        a10 = mnmcu_smlad(x[3], mnmcu_sxtb16_ror8(wa), a10);
        a01 = mnmcu_smlad(x[0], mnmcu_sxtb16(wb), a01);
        a01 = mnmcu_smlad(x[1], mnmcu_sxtb16_ror8(wb), a01);
        a11 = mnmcu_smlad(x[2], mnmcu_sxtb16(wb), a11);
        a11 = mnmcu_smlad(x[3], mnmcu_sxtb16_ror8(wb), a11);
        x += 4;
        w += 8;
    }
#endif
    acc[0] = a00;
    acc[1] = a01;
    acc[2] = a10;
    acc[3] = a11;
}

mnmcu_status_t mnmcu_conv2d_1x1_s8_dsp_run(const mnmcu_conv2d_params_t *params,
                                           const int8_t *input, const int8_t *filter,
                                           const int32_t *bias, int8_t *output,
                                           const mnmcu_buffer_t *scratch)
{
    int32_t pixels, depth, groups, channels, p, oc;
    int32_t *expanded;

    if (!conv_args_valid(params, input, filter, bias, output)) {
        return MNMCU_ERR_ARG;
    }
    if (params->filter.h != 1 || params->filter.w != 1 || params->stride_h != 1 ||
        params->stride_w != 1 || params->pad_h != 0 || params->pad_w != 0 ||
        params->filter.c != params->input.c || params->output.c != params->filter.n ||
        params->output.n != params->input.n || params->output.h != params->input.h ||
        params->output.w != params->input.w) {
        return MNMCU_ERR_SHAPE;
    }
    if (scratch == NULL || scratch->buf == NULL ||
        scratch->size < mnmcu_conv2d_1x1_s8_dsp_get_buffer_size(params)) {
        return MNMCU_ERR_BUFFER;
    }
    expanded = (int32_t *)scratch->buf;
    pixels = params->input.n * params->input.h * params->input.w;
    depth = params->input.c;
    groups = (depth + 3) >> 2;
    channels = params->output.c;

    for (p = 0; p < pixels; p += 2) {
        const int two = p + 1 < pixels;
        const int8_t *x0 = input + (int64_t)p * depth;
        int8_t *o0 = output + (int64_t)p * channels;
        int8_t *o1 = o0 + channels;
        const int8_t *w = filter;
        expand_pair(x0, two ? x0 + depth : x0, depth, expanded);
        for (oc = 0; oc < channels; oc += 2) {
            const int pair = oc + 1 < channels;
            int32_t acc[4];
            acc[0] = bias[oc];
            acc[1] = pair ? bias[oc + 1] : 0;
            acc[2] = acc[0];
            acc[3] = acc[1];
            dot_2x2(expanded, w, groups, acc);
            w += 8 * groups;
            o0[oc] = mnmcu_output_fast(acc[0], params->multiplier[oc], params->shift[oc],
                                       params->output_offset, params->act_min, params->act_max);
            if (two) {
                o1[oc] = mnmcu_output_fast(acc[2], params->multiplier[oc], params->shift[oc],
                                           params->output_offset, params->act_min,
                                           params->act_max);
            }
            if (pair) {
                o0[oc + 1] = mnmcu_output_fast(acc[1], params->multiplier[oc + 1],
                                               params->shift[oc + 1], params->output_offset,
                                               params->act_min, params->act_max);
                if (two) {
                    o1[oc + 1] = mnmcu_output_fast(acc[3], params->multiplier[oc + 1],
                                                   params->shift[oc + 1], params->output_offset,
                                                   params->act_min, params->act_max);
                }
            }
        }
    }
    return MNMCU_OK;
}

/* ---- CONV_2D, any window, through an int16 patch ------------------------ */

int32_t mnmcu_conv2d_s8_dsp_get_buffer_size(const mnmcu_conv2d_params_t *params)
{
    const int32_t patch = params->filter.h * params->filter.w * params->filter.c;
    return 2 * ((patch + 3) & ~3) * (int32_t)sizeof(int16_t);
}

/* The window of output pixel (out_y, out_x) as int16 (input + offset), 0 outside. */
static void fill_patch(const mnmcu_conv2d_params_t *params, const int8_t *in_batch, int32_t out_y,
                       int32_t out_x, int16_t *patch, int32_t patch4)
{
    const mnmcu_dims_t *in = &params->input;
    const mnmcu_dims_t *fd = &params->filter;
    const int32_t y0 = out_y * params->stride_h - params->pad_h;
    const int32_t x0 = out_x * params->stride_w - params->pad_w;
    const int32_t offset = params->input_offset;
    int16_t *dst = patch;
    int32_t ky, kx, ic;
    for (ky = 0; ky < fd->h; ++ky) {
        const int32_t in_y = y0 + params->dilation_h * ky;
        for (kx = 0; kx < fd->w; ++kx) {
            const int32_t in_x = x0 + params->dilation_w * kx;
            if (in_y < 0 || in_y >= in->h || in_x < 0 || in_x >= in->w) {
                for (ic = 0; ic < fd->c; ++ic) {
                    *dst++ = 0;
                }
            } else {
                const int8_t *src = in_batch + ((int64_t)in_y * in->w + in_x) * in->c;
                for (ic = 0; ic < fd->c; ++ic) {
                    *dst++ = (int16_t)(src[ic] + offset);
                }
            }
        }
    }
    while (dst < patch + patch4) {
        *dst++ = 0;
    }
}

mnmcu_status_t mnmcu_conv2d_s8_dsp_run(const mnmcu_conv2d_params_t *params, const int8_t *input,
                                       const int8_t *filter, const int32_t *bias, int8_t *output,
                                       const mnmcu_buffer_t *scratch)
{
    const mnmcu_dims_t *in;
    const mnmcu_dims_t *od;
    int32_t patch4, batch, out_y, out_x, oc;
    int16_t *patch0;
    int16_t *patch1;

    if (!conv_args_valid(params, input, filter, bias, output)) {
        return MNMCU_ERR_ARG;
    }
    in = &params->input;
    od = &params->output;
    if (params->filter.c != in->c || od->c != params->filter.n || od->n != in->n ||
        params->stride_h < 1 || params->stride_w < 1 || params->dilation_h < 1 ||
        params->dilation_w < 1 || params->pad_h < 0 || params->pad_w < 0) {
        return MNMCU_ERR_SHAPE;
    }
    if (scratch == NULL || scratch->buf == NULL ||
        scratch->size < mnmcu_conv2d_s8_dsp_get_buffer_size(params)) {
        return MNMCU_ERR_BUFFER;
    }
    patch4 = (params->filter.h * params->filter.w * params->filter.c + 3) & ~3;
    patch0 = (int16_t *)scratch->buf;
    patch1 = patch0 + patch4;

    for (batch = 0; batch < in->n; ++batch) {
        const int8_t *in_batch = input + (int64_t)batch * in->h * in->w * in->c;
        for (out_y = 0; out_y < od->h; ++out_y) {
            int8_t *out_row = output + ((int64_t)batch * od->h + out_y) * od->w * od->c;
            for (out_x = 0; out_x < od->w; out_x += 2) {
                const int two = out_x + 1 < od->w;
                int8_t *o0 = out_row + (int64_t)out_x * od->c;
                int8_t *o1 = o0 + od->c;
                const int8_t *w = filter;
                fill_patch(params, in_batch, out_y, out_x, patch0, patch4);
                if (two) {
                    fill_patch(params, in_batch, out_y, out_x + 1, patch1, patch4);
                }
                for (oc = 0; oc < od->c; ++oc) {
                    const int16_t *p0 = patch0;
                    const int16_t *p1 = patch1;
                    int32_t a0 = bias[oc], a1 = bias[oc];
                    int32_t k;
                    for (k = patch4 >> 2; k > 0; --k) {
                        const int32_t wa = mnmcu_read_s8x4(w);
                        const int32_t w0 = mnmcu_sxtb16(wa), w1 = mnmcu_sxtb16_ror8(wa);
                        a0 = mnmcu_smlad(mnmcu_read_s16x2(p0), w0, a0);
                        a0 = mnmcu_smlad(mnmcu_read_s16x2(p0 + 2), w1, a0);
                        a1 = mnmcu_smlad(mnmcu_read_s16x2(p1), w0, a1);
                        a1 = mnmcu_smlad(mnmcu_read_s16x2(p1 + 2), w1, a1);
                        p0 += 4;
                        p1 += 4;
                        w += 4;
                    }
                    o0[oc] = mnmcu_output_fast(a0, params->multiplier[oc], params->shift[oc],
                                               params->output_offset, params->act_min,
                                               params->act_max);
                    if (two) {
                        o1[oc] = mnmcu_output_fast(a1, params->multiplier[oc], params->shift[oc],
                                                   params->output_offset, params->act_min,
                                                   params->act_max);
                    }
                }
            }
        }
    }
    return MNMCU_OK;
}

/* ---- DEPTHWISE_CONV_2D, depth multiplier 1 ------------------------------ */

/* One output pixel with every tap inside the image, four channels at a time. */
static void dw_interior(const mnmcu_depthwise_conv2d_params_t *params, const int8_t *window,
                        const int8_t *filter, const int32_t *bias, int8_t *out)
{
    const int32_t channels = params->input.c;
    const int32_t kh = params->filter.h, kw = params->filter.w;
    const int32_t step_x = params->dilation_w * channels;
    const int32_t step_y = params->dilation_h * params->input.w * channels;
    int32_t c, ky, kx;
    for (c = 0; c + 3 < channels; c += 4) {
        int32_t a0 = bias[c], a1 = bias[c + 1], a2 = bias[c + 2], a3 = bias[c + 3];
        const int8_t *row = window + c;
        const int8_t *w = filter + c;
        for (ky = 0; ky < kh; ++ky) {
            const int8_t *x = row;
            for (kx = 0; kx < kw; ++kx) {
                const int32_t xv = mnmcu_read_s8x4(x);
                const int32_t wv = mnmcu_read_s8x4(w);
                const int32_t x0 = mnmcu_sxtb16(xv), x1 = mnmcu_sxtb16_ror8(xv);
                const int32_t w0 = mnmcu_sxtb16(wv), w1 = mnmcu_sxtb16_ror8(wv);
                a0 = mnmcu_smlabb(x0, w0, a0);
                a2 = mnmcu_smlatt(x0, w0, a2);
                a1 = mnmcu_smlabb(x1, w1, a1);
                a3 = mnmcu_smlatt(x1, w1, a3);
                x += step_x;
                w += channels;
            }
            row += step_y;
        }
        out[c] = mnmcu_output_fast(a0, params->multiplier[c], params->shift[c],
                                   params->output_offset, params->act_min, params->act_max);
        out[c + 1] = mnmcu_output_fast(a1, params->multiplier[c + 1], params->shift[c + 1],
                                       params->output_offset, params->act_min, params->act_max);
        out[c + 2] = mnmcu_output_fast(a2, params->multiplier[c + 2], params->shift[c + 2],
                                       params->output_offset, params->act_min, params->act_max);
        out[c + 3] = mnmcu_output_fast(a3, params->multiplier[c + 3], params->shift[c + 3],
                                       params->output_offset, params->act_min, params->act_max);
    }
    for (; c < channels; ++c) {
        int32_t acc = bias[c];
        const int8_t *row = window + c;
        for (ky = 0; ky < kh; ++ky) {
            for (kx = 0; kx < kw; ++kx) {
                acc += (int32_t)row[kx * step_x] * (int32_t)filter[(ky * kw + kx) * channels + c];
            }
            row += step_y;
        }
        out[c] = mnmcu_output_fast(acc, params->multiplier[c], params->shift[c],
                                   params->output_offset, params->act_min, params->act_max);
    }
}

/* One output pixel whose window leaves the image: taps outside add nothing. */
static void dw_border(const mnmcu_depthwise_conv2d_params_t *params, const int8_t *in_batch,
                      int32_t in_y0, int32_t in_x0, const int8_t *filter, const int32_t *bias,
                      int8_t *out)
{
    const mnmcu_dims_t *in = &params->input;
    const int32_t kh = params->filter.h, kw = params->filter.w;
    int32_t c, ky, kx;
    for (c = 0; c < in->c; ++c) {
        int32_t acc = bias[c];
        for (ky = 0; ky < kh; ++ky) {
            const int32_t in_y = in_y0 + params->dilation_h * ky;
            for (kx = 0; kx < kw; ++kx) {
                const int32_t in_x = in_x0 + params->dilation_w * kx;
                const int32_t f = filter[(ky * kw + kx) * in->c + c];
                if (in_y < 0 || in_y >= in->h || in_x < 0 || in_x >= in->w) {
                    /* The folded bias counted this tap at the zero point. */
                    acc -= f * params->input_offset;
                } else {
                    acc += f * in_batch[((int64_t)in_y * in->w + in_x) * in->c + c];
                }
            }
        }
        out[c] = mnmcu_output_fast(acc, params->multiplier[c], params->shift[c],
                                   params->output_offset, params->act_min, params->act_max);
    }
}

mnmcu_status_t mnmcu_depthwise_conv2d_s8_dsp_run(const mnmcu_depthwise_conv2d_params_t *params,
                                                 const int8_t *input, const int8_t *filter,
                                                 const int32_t *bias, int8_t *output)
{
    const mnmcu_dims_t *in;
    const mnmcu_dims_t *od;
    int32_t batch, out_y, out_x, span_h, span_w;

    if (params == NULL || input == NULL || filter == NULL || bias == NULL || output == NULL ||
        params->multiplier == NULL || params->shift == NULL ||
        !mnmcu_dims_valid(&params->input) || !mnmcu_dims_valid(&params->filter) ||
        !mnmcu_dims_valid(&params->output) || !mnmcu_act_valid(params->act_min, params->act_max)) {
        return MNMCU_ERR_ARG;
    }
    in = &params->input;
    od = &params->output;
    if (params->depth_multiplier != 1 || params->filter.n != 1 || params->filter.c != in->c ||
        od->c != in->c || od->n != in->n || params->stride_h < 1 || params->stride_w < 1 ||
        params->dilation_h < 1 || params->dilation_w < 1 || params->pad_h < 0 ||
        params->pad_w < 0) {
        return MNMCU_ERR_SHAPE;
    }
    span_h = (params->filter.h - 1) * params->dilation_h;
    span_w = (params->filter.w - 1) * params->dilation_w;

    for (batch = 0; batch < in->n; ++batch) {
        const int8_t *in_batch = input + (int64_t)batch * in->h * in->w * in->c;
        for (out_y = 0; out_y < od->h; ++out_y) {
            const int32_t in_y0 = out_y * params->stride_h - params->pad_h;
            const int row_inside = in_y0 >= 0 && in_y0 + span_h < in->h;
            for (out_x = 0; out_x < od->w; ++out_x) {
                const int32_t in_x0 = out_x * params->stride_w - params->pad_w;
                int8_t *out = output + (((int64_t)batch * od->h + out_y) * od->w + out_x) * od->c;
                if (row_inside && in_x0 >= 0 && in_x0 + span_w < in->w) {
                    dw_interior(params,
                                in_batch + ((int64_t)in_y0 * in->w + in_x0) * in->c,
                                filter, bias, out);
                } else {
                    dw_border(params, in_batch, in_y0, in_x0, filter, bias, out);
                }
            }
        }
    }
    return MNMCU_OK;
}
