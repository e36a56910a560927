/*
 * mnmcu_conv_dsp.c - fast CONV_2D and DEPTHWISE_CONV_2D for cores with the
 * Arm DSP extension (see mnmcu_kernels_fast.h for the layouts they take).
 *
 * Bit-exact with mnmcu_conv.c: int32 sums are exact in any order, so only
 * the way the accumulators are summed differs; requantisation is
 * mnmcu_requant_fast(), equal to the portable one under the conditions
 * mnmcu.emit.aot checks before choosing these kernels. Compiled for a core
 * with Helium (Cortex-M55), they requantise four outputs per vector sequence
 * (mnmcu_mve.h); for the whole int8 activation range the clamp is one SSAT.
 */
/* The hot loops of the runtime: compiled for speed also in -Os builds. */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("O2")
#endif
#include "mnmcu_kernels_fast.h"
#include "mnmcu_mve.h"

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

/* Scratch of the convolutions per output channel: its prepared requantisation
 * and two accumulators (C rounded up to even). */
static int32_t per_channel_bytes(const mnmcu_conv2d_params_t *params)
{
    return params->output.c * (int32_t)sizeof(mnmcu_requant_t) +
           2 * ((params->output.c + 1) & ~1) * (int32_t)sizeof(int32_t);
}

int32_t mnmcu_conv2d_1x1_s8_dsp_get_buffer_size(const mnmcu_conv2d_params_t *params)
{
    return 2 * ((params->input.c + 7) & ~7) * (int32_t)sizeof(int16_t) +
           per_channel_bytes(params);
}

/*
 * Two pixels' channels as int16, four channels per 16 bytes: pixel 0's
 * channels (0, 2) and (1, 3), then pixel 1's; channels past depth, up to the
 * next multiple of 8, are 0.
 */
static void expand_pair(const int8_t *x0, const int8_t *x1, int32_t depth, int32_t *dst)
{
    int32_t k;
    if (((depth + 3) >> 2) & 1) {
        /* The odd last group is followed by a group of zeros. */
        const int32_t last = 4 * ((depth + 3) >> 2);
        dst[last] = dst[last + 1] = dst[last + 2] = dst[last + 3] = 0;
    }
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
 * The accumulators of every pair of output channels for an expanded pixel
 * pair x (groups of four input channels, an even number of them): for pair j,
 * acc0[2j], acc0[2j + 1] (pixel 0) and acc1[2j], acc1[2j + 1] (pixel 1), each
 * starting from the bias; w in the pair-interleaved layout.
 */
static void conv_pairs(const int32_t *x, const int8_t *w, int32_t groups, const int32_t *bias,
                       int32_t pairs, int32_t *acc0, int32_t *acc1)
{
#if MNMCU_HAVE_DSP
    /* The loop over pairs is in the assembly too, its state in a stack frame
     * of its own: the group loop needs 13 registers. */
    int32_t a00, a01, a10, a11, xp, n;
    int32_t xa0 = (int32_t)(uintptr_t)bias, xa1 = (int32_t)(uintptr_t)acc0;
    int32_t xb0 = (int32_t)(uintptr_t)acc1, xb1 = pairs;
    int32_t wr = (int32_t)(uintptr_t)x, we = groups >> 1;
#define MNMCU_1X1_GROUP                                                                        \
    "ldrd %[xa0], %[xa1], [%[xp]], #8\n\t"                                                     \
    "ldrd %[xb0], %[xb1], [%[xp]], #8\n\t"                                                     \
    "ldr %[wr], [%[w]], #4\n\t"                                                                \
    "sxtb16 %[we], %[wr]\n\t"                                                                  \
    "sxtb16 %[wr], %[wr], ror #8\n\t"                                                          \
    "smlad %[a00], %[xa0], %[we], %[a00]\n\t"                                                  \
    "smlad %[a00], %[xa1], %[wr], %[a00]\n\t"                                                  \
    "smlad %[a10], %[xb0], %[we], %[a10]\n\t"                                                  \
    "smlad %[a10], %[xb1], %[wr], %[a10]\n\t"                                                  \
    "ldr %[wr], [%[w]], #4\n\t"                                                                \
    "sxtb16 %[we], %[wr]\n\t"                                                                  \
    "sxtb16 %[wr], %[wr], ror #8\n\t"                                                          \
    "smlad %[a01], %[xa0], %[we], %[a01]\n\t"                                                  \
    "smlad %[a01], %[xa1], %[wr], %[a01]\n\t"                                                  \
    "smlad %[a11], %[xb0], %[we], %[a11]\n\t"                                                  \
    "smlad %[a11], %[xb1], %[wr], %[a11]\n\t"
    __asm__ volatile(
        /* Frame: 0 x, 4 groups / 2, 8 bias, 12 acc0, 16 acc1, 20 pairs left. */
        "sub sp, sp, #24\n\t"
        "strd %[wr], %[we], [sp, #0]\n\t"
        "strd %[xa0], %[xa1], [sp, #8]\n\t"
        "strd %[xb0], %[xb1], [sp, #16]\n\t"
        "2:\n\t"
        "ldr %[xa0], [sp, #8]\n\t"
        "ldrd %[a00], %[a01], [%[xa0]], #8\n\t"
        "str %[xa0], [sp, #8]\n\t"
        "mov %[a10], %[a00]\n\t"
        "mov %[a11], %[a01]\n\t"
        "ldrd %[xp], %[n], [sp, #0]\n\t"
        "1:\n\t" MNMCU_1X1_GROUP MNMCU_1X1_GROUP
        "subs %[n], %[n], #1\n\t"
        "bne 1b\n\t"
        "ldrd %[xa0], %[xa1], [sp, #12]\n\t"
        "strd %[a00], %[a01], [%[xa0]], #8\n\t"
        "strd %[a10], %[a11], [%[xa1]], #8\n\t"
        "strd %[xa0], %[xa1], [sp, #12]\n\t"
        "ldr %[xa0], [sp, #20]\n\t"
        "subs %[xa0], %[xa0], #1\n\t"
        "str %[xa0], [sp, #20]\n\t"
        "bne 2b\n\t"
        "add sp, sp, #24"
        : [a00] "=&r"(a00), [a01] "=&r"(a01), [a10] "=&r"(a10), [a11] "=&r"(a11),
          [xp] "=&r"(xp), [n] "=&r"(n), [w] "+r"(w), [xa0] "+r"(xa0), [xa1] "+r"(xa1),
          [xb0] "+r"(xb0), [xb1] "+r"(xb1), [wr] "+r"(wr), [we] "+r"(we)
        :
        : "cc", "memory");
#undef MNMCU_1X1_GROUP
#else
    for (; pairs > 0; --pairs) {
        int32_t a00 = bias[0], a01 = bias[1], a10 = bias[0], a11 = bias[1];
        const int32_t *xp = x;
        int32_t g;
        for (g = 0; g < groups; ++g) {
            const int32_t wa = mnmcu_read_s8x4(w);
            const int32_t wb = mnmcu_read_s8x4(w + 4);
            a00 = mnmcu_smlad(xp[0], mnmcu_sxtb16(wa), a00);
            a00 = mnmcu_smlad(xp[1], mnmcu_sxtb16_ror8(wa), a00);
            a10 = mnmcu_smlad(xp[2], mnmcu_sxtb16(wa), a10);
            a10 = mnmcu_smlad(xp[3], mnmcu_sxtb16_ror8(wa), a10);
            a01 = mnmcu_smlad(xp[0], mnmcu_sxtb16(wb), a01);
            a01 = mnmcu_smlad(xp[1], mnmcu_sxtb16_ror8(wb), a01);
            a11 = mnmcu_smlad(xp[2], mnmcu_sxtb16(wb), a11);
            a11 = mnmcu_smlad(xp[3], mnmcu_sxtb16_ror8(wb), a11);
            xp += 4;
            w += 8;
        }
        acc0[0] = a00;
        acc0[1] = a01;
        acc1[0] = a10;
        acc1[1] = a11;
        acc0 += 2;
        acc1 += 2;
        bias += 2;
    }
#endif
}

/*
 * One pixel's n accumulators (channels 0..n-1) requantised into out: four
 * channels per vector with Helium, else with the prepared constants rq.
 */
static void requant_pixel(const mnmcu_conv2d_params_t *params, const mnmcu_requant_t *rq,
                          const int32_t *acc, int32_t n, int8_t *out)
{
    const int32_t act_min = params->act_min, act_max = params->act_max;
    int32_t c;
#if MNMCU_HAVE_MVE
    for (c = 0; c < n; c += 4) {
        const mve_pred16_t p = vctp32q((uint32_t)(n - c));
        const int32x4_t v = mnmcu_output_mve(
            vldrwq_z_s32(acc + c, p), vldrwq_z_s32(params->multiplier + c, p),
            vldrwq_z_s32(params->shift + c, p), params->output_offset, act_min, act_max);
        vstrbq_p_s32(out + c, v, p);
    }
    (void)rq;
#else
    if (mnmcu_act_full(act_min, act_max)) {
        for (c = 0; c < n; ++c) {
            out[c] = (int8_t)mnmcu_ssat8(mnmcu_requant_pre(acc[c], rq + c));
        }
        return;
    }
    for (c = 0; c < n; ++c) {
        out[c] = mnmcu_output_pre(acc[c], rq + c, act_min, act_max, 0);
    }
#endif
}

/*
 * Every output channel of two pixels (or one, when o1 is NULL) from their
 * expanded inputs (an even number of groups), into acc (pixel 0's channels,
 * then pixel 1's from acc + C rounded up to even); then each pixel's
 * channels requantised into o0 and o1.
 */
static void conv_pixels(const mnmcu_conv2d_params_t *params, const int32_t *expanded,
                        int32_t groups, const int8_t *filter, const int32_t *bias,
                        const mnmcu_requant_t *rq, int32_t *acc, int8_t *o0, int8_t *o1)
{
    const int32_t channels = params->output.c;
    int32_t *acc1 = acc + ((channels + 1) & ~1);
    conv_pairs(expanded, filter, groups, bias, (channels + 1) >> 1, acc, acc1);
    requant_pixel(params, rq, acc, channels, o0);
    if (o1 != NULL) {
        requant_pixel(params, rq, acc1, channels, o1);
    }
}

/* The prepared requantisation of every output channel, into rq. */
static const mnmcu_requant_t *prepare_requant(const mnmcu_conv2d_params_t *params,
                                              mnmcu_requant_t *rq)
{
    int32_t c;
    for (c = 0; c < params->output.c; ++c) {
        rq[c] = mnmcu_requant_prepare(params->multiplier[c], params->shift[c],
                                      params->output_offset);
    }
    return rq;
}

static int conv_shapes_valid(const mnmcu_conv2d_params_t *params)
{
    const mnmcu_dims_t *in = &params->input;
    const mnmcu_dims_t *od = &params->output;
    return params->filter.c == in->c && od->c == params->filter.n && od->n == in->n &&
           params->stride_h >= 1 && params->stride_w >= 1 && params->dilation_h >= 1 &&
           params->dilation_w >= 1 && params->pad_h >= 0 && params->pad_w >= 0;
}

mnmcu_status_t mnmcu_conv2d_1x1_s8_dsp_run(const mnmcu_conv2d_params_t *params,
                                           const int8_t *input, const int8_t *filter,
                                           const int32_t *bias, int8_t *output,
                                           const mnmcu_buffer_t *scratch)
{
    int32_t pixels, depth, groups, channels, p;
    int32_t *expanded;
    int32_t *acc;
    const mnmcu_requant_t *rq;

    if (!conv_args_valid(params, input, filter, bias, output)) {
        return MNMCU_ERR_ARG;
    }
    if (!conv_shapes_valid(params) || params->filter.h != 1 || params->filter.w != 1 ||
        params->stride_h != 1 || params->stride_w != 1 || params->pad_h != 0 ||
        params->pad_w != 0 || params->output.h != params->input.h ||
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
    groups = ((depth + 7) >> 3) * 2;
    channels = params->output.c;
    rq = prepare_requant(params, (mnmcu_requant_t *)(void *)(expanded + 4 * groups));
    acc = (int32_t *)(void *)(rq + channels);
    for (p = 0; p < pixels; p += 2) {
        const int two = p + 1 < pixels;
        const int8_t *x0 = input + (int64_t)p * depth;
        int8_t *o0 = output + (int64_t)p * channels;
        expand_pair(x0, two ? x0 + depth : x0, depth, expanded);
        conv_pixels(params, expanded, groups, filter, bias, rq, acc, o0,
                    two ? o0 + channels : NULL);
    }
    return MNMCU_OK;
}

/* ---- CONV_2D, any window, through copies of two windows ----------------- */

int32_t mnmcu_conv2d_s8_dsp_get_buffer_size(const mnmcu_conv2d_params_t *params)
{
    const int32_t patch8 = (params->filter.h * params->filter.w * params->filter.c + 7) & ~7;
    return 2 * patch8 + 2 * patch8 * (int32_t)sizeof(int16_t) + per_channel_bytes(params);
}

/* n bytes from src to dst, four at a time then one at a time (any alignment). */
static void copy_bytes(int8_t *dst, const int8_t *src, int32_t n)
{
    int32_t i = 0;
    for (; i + 4 <= n; i += 4) {
        memcpy(dst + i, src + i, 4);
    }
    for (; i < n; ++i) {
        dst[i] = src[i];
    }
}

/* The window of output pixel (out_y, out_x), the input zero point outside the image. */
static void gather_window(const mnmcu_conv2d_params_t *params, const int8_t *in_batch,
                          int32_t out_y, int32_t out_x, int8_t zero_point, int8_t *dst)
{
    const mnmcu_dims_t *in = &params->input;
    const mnmcu_dims_t *fd = &params->filter;
    const int32_t y0 = out_y * params->stride_h - params->pad_h;
    const int32_t x0 = out_x * params->stride_w - params->pad_w;
    int32_t ky, kx, ic;
    if (params->dilation_w == 1 && y0 >= 0 && y0 + (fd->h - 1) * params->dilation_h < in->h &&
        x0 >= 0 && x0 + fd->w <= in->w) {
        /* Inside the image: KH rows of KW * C contiguous bytes. */
        const int32_t row = fd->w * in->c;
        const int8_t *src = in_batch + ((int64_t)y0 * in->w + x0) * in->c;
        for (ky = 0; ky < fd->h; ++ky) {
            copy_bytes(dst, src, row);
            dst += row;
            src += params->dilation_h * in->w * in->c;
        }
        return;
    }
    for (ky = 0; ky < fd->h; ++ky) {
        const int32_t in_y = y0 + params->dilation_h * ky;
        for (kx = 0; kx < fd->w; ++kx) {
            const int32_t in_x = x0 + params->dilation_w * kx;
            if (in_y < 0 || in_y >= in->h || in_x < 0 || in_x >= in->w) {
                for (ic = 0; ic < fd->c; ++ic) {
                    *dst++ = zero_point;
                }
            } else {
                const int8_t *src = in_batch + ((int64_t)in_y * in->w + in_x) * in->c;
                for (ic = 0; ic < fd->c; ++ic) {
                    *dst++ = src[ic];
                }
            }
        }
    }
}

mnmcu_status_t mnmcu_conv2d_s8_dsp_run(const mnmcu_conv2d_params_t *params, const int8_t *input,
                                       const int8_t *filter, const int32_t *bias, int8_t *output,
                                       const mnmcu_buffer_t *scratch)
{
    const mnmcu_dims_t *in;
    const mnmcu_dims_t *od;
    int32_t patch, patch8, batch, out_y, out_x;
    int8_t *window0;
    int8_t *window1;
    int32_t *expanded;
    int32_t *acc;
    const mnmcu_requant_t *rq;
    int8_t zero_point;

    if (!conv_args_valid(params, input, filter, bias, output)) {
        return MNMCU_ERR_ARG;
    }
    if (!conv_shapes_valid(params)) {
        return MNMCU_ERR_SHAPE;
    }
    if (scratch == NULL || scratch->buf == NULL ||
        scratch->size < mnmcu_conv2d_s8_dsp_get_buffer_size(params)) {
        return MNMCU_ERR_BUFFER;
    }
    in = &params->input;
    od = &params->output;
    patch = params->filter.h * params->filter.w * params->filter.c;
    patch8 = (patch + 7) & ~7;
    expanded = (int32_t *)scratch->buf;
    window0 = (int8_t *)(expanded + patch8);
    window1 = window0 + patch8;
    rq = prepare_requant(params, (mnmcu_requant_t *)(void *)(window1 + patch8));
    acc = (int32_t *)(void *)(rq + od->c);
    zero_point = (int8_t)(-params->input_offset);
    /* Bytes past the window meet zero weights; they are zeroed once. */
    memset(window0 + patch, 0, (size_t)(patch8 - patch));
    memset(window1 + patch, 0, (size_t)(patch8 - patch));

    for (batch = 0; batch < in->n; ++batch) {
        const int8_t *in_batch = input + (int64_t)batch * in->h * in->w * in->c;
        for (out_y = 0; out_y < od->h; ++out_y) {
            int8_t *out_row = output + ((int64_t)batch * od->h + out_y) * od->w * od->c;
            for (out_x = 0; out_x < od->w; out_x += 2) {
                const int two = out_x + 1 < od->w;
                int8_t *o0 = out_row + (int64_t)out_x * od->c;
                gather_window(params, in_batch, out_y, out_x, zero_point, window0);
                if (two) {
                    gather_window(params, in_batch, out_y, out_x + 1, zero_point, window1);
                }
                expand_pair(window0, two ? window1 : window0, patch8, expanded);
                conv_pixels(params, expanded, patch8 >> 2, filter, bias, rq, acc, o0,
                            two ? o0 + od->c : NULL);
            }
        }
    }
    return MNMCU_OK;
}

/* ---- DEPTHWISE_CONV_2D, depth multiplier 1 ------------------------------ */

int32_t mnmcu_depthwise_conv2d_s8_dsp_get_buffer_size(
    const mnmcu_depthwise_conv2d_params_t *params)
{
    return ((params->filter.h * params->filter.w * params->input.c + 3) & ~3);
}

/*
 * Four channels of a 3x3 window: acc[0..3] += taps * weights. window points
 * at channel c of the top-left tap; taps lie row_step apart vertically and
 * col_step apart horizontally; w holds the 9 taps' four weights, 4 bytes
 * each (the group-major layout of mnmcu_kernels_fast.h).
 */
MNMCU_INLINE void dw3x3_group(const int8_t *window, int32_t row_step, int32_t col_step,
                              const int8_t *w, int32_t acc[4])
{
    int32_t a0 = acc[0], a1 = acc[1], a2 = acc[2], a3 = acc[3];
#if MNMCU_HAVE_DSP
    int32_t x, xe, wv, we;
    const int8_t *col;
#define MNMCU_DW_TAP(xaddr, woff)                                                              \
    "ldr %[x], " xaddr "\n\t"                                                                  \
    "ldr %[wv], [%[w], #" woff "]\n\t"                                                         \
    "sxtb16 %[xe], %[x]\n\t"                                                                   \
    "sxtb16 %[x], %[x], ror #8\n\t"                                                            \
    "sxtb16 %[we], %[wv]\n\t"                                                                  \
    "sxtb16 %[wv], %[wv], ror #8\n\t"                                                          \
    "smlabb %[a0], %[xe], %[we], %[a0]\n\t"                                                    \
    "smlatt %[a2], %[xe], %[we], %[a2]\n\t"                                                    \
    "smlabb %[a1], %[x], %[wv], %[a1]\n\t"                                                     \
    "smlatt %[a3], %[x], %[wv], %[a3]\n\t"
#define MNMCU_DW_ROW(o0, o1, o2)                                                               \
    "add %[col], %[win], %[cs]\n\t" MNMCU_DW_TAP("[%[win]]", o0)                               \
        MNMCU_DW_TAP("[%[col]]", o1) MNMCU_DW_TAP("[%[col], %[cs]]", o2)                      \
            "add %[win], %[win], %[rs]\n\t"
    __asm__(MNMCU_DW_ROW("0", "4", "8") MNMCU_DW_ROW("12", "16", "20")
                MNMCU_DW_ROW("24", "28", "32")
            : [a0] "+r"(a0), [a1] "+r"(a1), [a2] "+r"(a2), [a3] "+r"(a3), [win] "+r"(window),
              [x] "=&r"(x), [xe] "=&r"(xe), [wv] "=&r"(wv), [we] "=&r"(we), [col] "=&r"(col)
            : [w] "r"(w), [rs] "r"(row_step), [cs] "r"(col_step)
            : "memory");
#undef MNMCU_DW_ROW
#undef MNMCU_DW_TAP
#else
    int32_t t;
    for (t = 0; t < 9; ++t) {
        const int32_t xv = mnmcu_read_s8x4(window + (t / 3) * row_step + (t % 3) * col_step);
        const int32_t wv = mnmcu_read_s8x4(w + 4 * t);
        const int32_t x0 = mnmcu_sxtb16(xv), x1 = mnmcu_sxtb16_ror8(xv);
        const int32_t w0 = mnmcu_sxtb16(wv), w1 = mnmcu_sxtb16_ror8(wv);
        a0 = mnmcu_smlabb(x0, w0, a0);
        a2 = mnmcu_smlatt(x0, w0, a2);
        a1 = mnmcu_smlabb(x1, w1, a1);
        a3 = mnmcu_smlatt(x1, w1, a3);
    }
#endif
    acc[0] = a0;
    acc[1] = a1;
    acc[2] = a2;
    acc[3] = a3;
}

/* Requantise four accumulators of channels c..c+3 into out[c..c+3]. */
MNMCU_INLINE void dw_store4(const mnmcu_depthwise_conv2d_params_t *params, const int32_t acc[4],
                            int32_t c, int8_t *out)
{
    const int32_t *mult = params->multiplier + c;
    const int32_t *shift = params->shift + c;
    const int32_t out_offset = params->output_offset;
    const int32_t act_min = params->act_min, act_max = params->act_max;
#if MNMCU_HAVE_MVE
    vstrbq_s32(out + c, mnmcu_output_mve(mnmcu_vec4(acc[0], acc[1], acc[2], acc[3]),
                                         vldrwq_s32(mult), vldrwq_s32(shift), out_offset,
                                         act_min, act_max));
#else
    if (mnmcu_act_full(act_min, act_max)) {
        out[c] = (int8_t)mnmcu_ssat8(mnmcu_requant_fast(acc[0], mult[0], shift[0]) + out_offset);
        out[c + 1] =
            (int8_t)mnmcu_ssat8(mnmcu_requant_fast(acc[1], mult[1], shift[1]) + out_offset);
        out[c + 2] =
            (int8_t)mnmcu_ssat8(mnmcu_requant_fast(acc[2], mult[2], shift[2]) + out_offset);
        out[c + 3] =
            (int8_t)mnmcu_ssat8(mnmcu_requant_fast(acc[3], mult[3], shift[3]) + out_offset);
        return;
    }
    out[c] = mnmcu_output_fast(acc[0], mult[0], shift[0], out_offset, act_min, act_max);
    out[c + 1] = mnmcu_output_fast(acc[1], mult[1], shift[1], out_offset, act_min, act_max);
    out[c + 2] = mnmcu_output_fast(acc[2], mult[2], shift[2], out_offset, act_min, act_max);
    out[c + 3] = mnmcu_output_fast(acc[3], mult[3], shift[3], out_offset, act_min, act_max);
#endif
}

/*
 * The last C % 4 channels of one output pixel (filter: their 1HWC block).
 */
static void dw_tail(const mnmcu_depthwise_conv2d_params_t *params, const int8_t *window,
                    int32_t row_step, int32_t col_step, const int8_t *w, const int32_t *bias,
                    int8_t *out)
{
    const int32_t channels = params->input.c;
    const int32_t rest = channels & 3;
    const int32_t kh = params->filter.h, kw = params->filter.w;
    int32_t c, ky, kx;
    for (c = channels - rest; c < channels; ++c) {
        int32_t acc = bias[c];
        for (ky = 0; ky < kh; ++ky) {
            for (kx = 0; kx < kw; ++kx) {
                acc += (int32_t)window[ky * row_step + kx * col_step + c] *
                       (int32_t)w[(ky * kw + kx) * rest + (c & 3)];
            }
        }
        out[c] = mnmcu_output_fast(acc, params->multiplier[c], params->shift[c],
                                   params->output_offset, params->act_min, params->act_max);
    }
}

/*
 * One output pixel from its window: taps row_step apart vertically,
 * col_step apart horizontally, channel c of a tap at +c. Filter layout of
 * mnmcu_kernels_fast.h: for each group of four channels, KH * KW words of
 * four weights; then the last C % 4 channels as 1HWC.
 */
static void dw_pixel3x3(const mnmcu_depthwise_conv2d_params_t *params, const int8_t *window,
                        int32_t row_step, int32_t col_step, const int8_t *filter,
                        const int32_t *bias, int8_t *out)
{
    const int32_t whole = params->input.c & ~3;
    const int8_t *w = filter;
    int32_t c;
    for (c = 0; c < whole; c += 4) {
        int32_t acc[4];
        acc[0] = bias[c];
        acc[1] = bias[c + 1];
        acc[2] = bias[c + 2];
        acc[3] = bias[c + 3];
        dw3x3_group(window + c, row_step, col_step, w, acc);
        w += 36;
        dw_store4(params, acc, c, out);
    }
    if (whole < params->input.c) {
        dw_tail(params, window, row_step, col_step, w, bias, out);
    }
}

static void dw_pixel(const mnmcu_depthwise_conv2d_params_t *params, const int8_t *window,
                     int32_t row_step, int32_t col_step, const int8_t *filter,
                     const int32_t *bias, int8_t *out)
{
    const int32_t whole = params->input.c & ~3;
    const int32_t kh = params->filter.h, kw = params->filter.w;
    const int8_t *w = filter;
    int32_t c, ky, kx, i;
    if (kh == 3 && kw == 3) {
        dw_pixel3x3(params, window, row_step, col_step, filter, bias, out);
        return;
    }
    for (c = 0; c < whole; c += 4) {
        int32_t acc[4];
        for (i = 0; i < 4; ++i) {
            acc[i] = bias[c + i];
        }
        for (ky = 0; ky < kh; ++ky) {
            for (kx = 0; kx < kw; ++kx) {
                const int8_t *x = window + ky * row_step + kx * col_step + c;
                for (i = 0; i < 4; ++i) {
                    acc[i] += (int32_t)x[i] * (int32_t)w[i];
                }
                w += 4;
            }
        }
        dw_store4(params, acc, c, out);
    }
    if (whole < params->input.c) {
        dw_tail(params, window, row_step, col_step, w, bias, out);
    }
}

mnmcu_status_t mnmcu_depthwise_conv2d_s8_dsp_run(const mnmcu_depthwise_conv2d_params_t *params,
                                                 const int8_t *input, const int8_t *filter,
                                                 const int32_t *bias, int8_t *output,
                                                 const mnmcu_buffer_t *scratch)
{
    const mnmcu_dims_t *in;
    const mnmcu_dims_t *od;
    int32_t batch, out_y, out_x, span_h, span_w, row_step, col_step, window_row;
    int8_t *window;
    int8_t zero_point;

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
    if (scratch == NULL || scratch->buf == NULL ||
        scratch->size < mnmcu_depthwise_conv2d_s8_dsp_get_buffer_size(params)) {
        return MNMCU_ERR_BUFFER;
    }
    window = (int8_t *)scratch->buf;
    zero_point = (int8_t)(-params->input_offset);
    span_h = (params->filter.h - 1) * params->dilation_h;
    span_w = (params->filter.w - 1) * params->dilation_w;
    row_step = params->dilation_h * in->w * in->c;
    col_step = params->dilation_w * in->c;
    window_row = params->filter.w * in->c;

    for (batch = 0; batch < in->n; ++batch) {
        const int8_t *in_batch = input + (int64_t)batch * in->h * in->w * in->c;
        for (out_y = 0; out_y < od->h; ++out_y) {
            const int32_t in_y0 = out_y * params->stride_h - params->pad_h;
            const int row_inside = in_y0 >= 0 && in_y0 + span_h < in->h;
            for (out_x = 0; out_x < od->w; ++out_x) {
                const int32_t in_x0 = out_x * params->stride_w - params->pad_w;
                int8_t *out = output + (((int64_t)batch * od->h + out_y) * od->w + out_x) * od->c;
                if (row_inside && in_x0 >= 0 && in_x0 + span_w < in->w) {
                    dw_pixel(params, in_batch + ((int64_t)in_y0 * in->w + in_x0) * in->c,
                             row_step, col_step, filter, bias, out);
                } else {
                    /* Copy the window, the input zero point where it leaves the
                     * image: with the folded bias such taps add nothing. */
                    int32_t ky, kx;
                    for (ky = 0; ky < params->filter.h; ++ky) {
                        const int32_t in_y = in_y0 + params->dilation_h * ky;
                        for (kx = 0; kx < params->filter.w; ++kx) {
                            const int32_t in_x = in_x0 + params->dilation_w * kx;
                            int8_t *dst = window + ky * window_row + kx * in->c;
                            if (in_y < 0 || in_y >= in->h || in_x < 0 || in_x >= in->w) {
                                int32_t i;
                                for (i = 0; i < in->c; ++i) {
                                    dst[i] = zero_point;
                                }
                            } else {
                                copy_bytes(dst,
                                           in_batch + ((int64_t)in_y * in->w + in_x) * in->c,
                                           in->c);
                            }
                        }
                    }
                    dw_pixel(params, window, window_row, in->c, filter, bias, out);
                }
            }
        }
    }
    return MNMCU_OK;
}

/* ---- DEPTHWISE_CONV_2D 3x3 over int16 rows ------------------------------- */

/* Columns of one expanded row: every tap of every output, plus one. */
static int32_t dw_row_width(const mnmcu_depthwise_conv2d_params_t *params)
{
    return (params->output.w - 1) * params->stride_w + 4;
}

int32_t mnmcu_depthwise_conv2d_3x3_s8_dsp_get_buffer_size(
    const mnmcu_depthwise_conv2d_params_t *params)
{
    const int32_t rows = 3 * params->input.c * dw_row_width(params) * (int32_t)sizeof(int16_t);
    return ((rows + 3) & ~3) + params->output.w * (int32_t)sizeof(int32_t);
}

/*
 * Input row y as int16 (input + offset), channel-major: dst[c * width + pad_w
 * + x]; the padding columns stay 0 (written once by the caller).
 */
static void dw_expand_row(const mnmcu_depthwise_conv2d_params_t *params, const int8_t *row,
                          int16_t *dst, int32_t width)
{
    const int32_t channels = params->input.c;
    const int32_t in_w = params->input.w;
    const int32_t offset = params->input_offset;
    const int32_t offset2 = (int32_t)(((uint32_t)offset & 0xFFFFu) | ((uint32_t)offset << 16));
    int16_t *col = dst + params->pad_w;
    const int32_t columns = MNMCU_MIN(in_w, width - params->pad_w);
    int32_t x, c;
    for (x = 0; x < columns; ++x) {
        int16_t *d = col + x;
        for (c = 0; c + 3 < channels; c += 4) {
            const int32_t v = mnmcu_read_s8x4(row + c);
            const int32_t even = mnmcu_sadd16(mnmcu_sxtb16(v), offset2);
            const int32_t odd = mnmcu_sadd16(mnmcu_sxtb16_ror8(v), offset2);
            d[0] = (int16_t)even;
            d[width] = (int16_t)odd;
            d[2 * width] = (int16_t)(even >> 16);
            d[3 * width] = (int16_t)(odd >> 16);
            d += 4 * width;
        }
        for (; c < channels; ++c) {
            *d = (int16_t)(row[c] + offset);
            d += width;
        }
        row += channels;
    }
}

/* Two int16 values as one word, a in the low half. */
MNMCU_INLINE int32_t pack16(int32_t a, int32_t b)
{
    return (int32_t)(((uint32_t)a & 0xFFFFu) | ((uint32_t)b << 16));
}

/*
 * One output row of one channel into acc[0..OW): taps from three int16 rows
 * (t0, t1, t2 at column 0), weights w[ky * 3 + kx].
 */
static void dw_channel_row(const int16_t *t0, const int16_t *t1, const int16_t *t2,
                           const int8_t *w, int32_t bias, int32_t out_w, int32_t stride,
                           int32_t *acc)
{
    const int32_t w01 = pack16(w[0], w[1]), w34 = pack16(w[3], w[4]);
    const int32_t w67 = pack16(w[6], w[7]), w25 = pack16(w[2], w[5]), w8 = w[8];
    int32_t ox = 0;
    if (stride == 1) {
        for (; ox + 1 < out_w; ox += 2) {
            int32_t a = bias, b = bias, v;
            a = mnmcu_smlad(mnmcu_read_s16x2(t0), w01, a);
            b = mnmcu_smlad(mnmcu_read_s16x2(t0 + 1), w01, b);
            v = mnmcu_read_s16x2(t0 + 2);
            a = mnmcu_smlabb(v, w25, a);
            b = mnmcu_smlatb(v, w25, b);
            a = mnmcu_smlad(mnmcu_read_s16x2(t1), w34, a);
            b = mnmcu_smlad(mnmcu_read_s16x2(t1 + 1), w34, b);
            v = mnmcu_read_s16x2(t1 + 2);
            a = mnmcu_smlabt(v, w25, a);
            b = mnmcu_smlatt(v, w25, b);
            a = mnmcu_smlad(mnmcu_read_s16x2(t2), w67, a);
            b = mnmcu_smlad(mnmcu_read_s16x2(t2 + 1), w67, b);
            v = mnmcu_read_s16x2(t2 + 2);
            a = mnmcu_smlabb(v, w8, a);
            b = mnmcu_smlatb(v, w8, b);
            acc[0] = a;
            acc[1] = b;
            acc += 2;
            t0 += 2;
            t1 += 2;
            t2 += 2;
        }
    }
    for (; ox < out_w; ++ox) {
        int32_t a = bias;
        a = mnmcu_smlad(mnmcu_read_s16x2(t0), w01, a);
        a = mnmcu_smlabb(mnmcu_read_s16x2(t0 + 2), w25, a);
        a = mnmcu_smlad(mnmcu_read_s16x2(t1), w34, a);
        a = mnmcu_smlabt(mnmcu_read_s16x2(t1 + 2), w25, a);
        a = mnmcu_smlad(mnmcu_read_s16x2(t2), w67, a);
        a = mnmcu_smlabb(mnmcu_read_s16x2(t2 + 2), w8, a);
        *acc++ = a;
        t0 += stride;
        t1 += stride;
        t2 += stride;
    }
}

/* Requantise n accumulators of channel c into out[0], out[step], ... */
static void dw_store_row(const mnmcu_depthwise_conv2d_params_t *params, const int32_t *acc,
                         int32_t n, int32_t c, int8_t *out, int32_t step)
{
    const int32_t mult = params->multiplier[c], shift = params->shift[c];
    const int32_t out_offset = params->output_offset;
    const int32_t act_min = params->act_min, act_max = params->act_max;
    int32_t i;
#if MNMCU_HAVE_MVE
    /* Four pixels per vector, stored step bytes apart; the last ones predicated. */
    const uint32x4_t lanes = vmulq_n_u32(vidupq_n_u32(0u, 1), (uint32_t)step);
    for (i = 0; i < n; i += 4) {
        const mve_pred16_t p = vctp32q((uint32_t)(n - i));
        const int32x4_t v = mnmcu_output1_mve(vldrwq_z_s32(acc + i, p), mult, shift, out_offset,
                                              act_min, act_max);
        vstrbq_scatter_offset_p_s32(out, lanes, v, p);
        out += 4 * step;
    }
#else
    const mnmcu_requant_t rq = mnmcu_requant_prepare(mult, shift, out_offset);
    if (mnmcu_act_full(act_min, act_max)) {
        for (i = 0; i < n; ++i) {
            *out = (int8_t)mnmcu_ssat8(mnmcu_requant_pre(acc[i], &rq));
            out += step;
        }
        return;
    }
    for (i = 0; i < n; ++i) {
        *out = mnmcu_output_pre(acc[i], &rq, act_min, act_max, 0);
        out += step;
    }
#endif
}

mnmcu_status_t mnmcu_depthwise_conv2d_3x3_s8_dsp_run(
    const mnmcu_depthwise_conv2d_params_t *params, const int8_t *input, const int8_t *filter,
    const int32_t *bias, int8_t *output, const mnmcu_buffer_t *scratch)
{
    const mnmcu_dims_t *in;
    const mnmcu_dims_t *od;
    int32_t batch, out_y, c, k, width, plane;
    int32_t held[3];
    int16_t *ring;
    int32_t *acc;

    if (params == NULL || input == NULL || filter == NULL || bias == NULL || output == NULL ||
        params->multiplier == NULL || params->shift == NULL ||
        !mnmcu_dims_valid(&params->input) || !mnmcu_dims_valid(&params->filter) ||
        !mnmcu_dims_valid(&params->output) || !mnmcu_act_valid(params->act_min, params->act_max)) {
        return MNMCU_ERR_ARG;
    }
    in = &params->input;
    od = &params->output;
    if (params->depth_multiplier != 1 || params->filter.n != 1 || params->filter.h != 3 ||
        params->filter.w != 3 || params->filter.c != in->c || od->c != in->c ||
        od->n != in->n || params->stride_h < 1 || params->stride_w < 1 ||
        params->dilation_h != 1 || params->dilation_w != 1 || params->pad_h < 0 ||
        params->pad_w < 0 || params->pad_w >= dw_row_width(params)) {
        return MNMCU_ERR_SHAPE;
    }
    if (scratch == NULL || scratch->buf == NULL ||
        scratch->size < mnmcu_depthwise_conv2d_3x3_s8_dsp_get_buffer_size(params)) {
        return MNMCU_ERR_BUFFER;
    }
    ring = (int16_t *)scratch->buf;
    width = dw_row_width(params);
    plane = in->c * width;
    acc = (int32_t *)(void *)((uint8_t *)scratch->buf +
                              ((3 * plane * (int32_t)sizeof(int16_t) + 3) & ~3));
    for (batch = 0; batch < in->n; ++batch) {
        const int8_t *in_batch = input + (int64_t)batch * in->h * in->w * in->c;
        memset(ring, 0, (size_t)(3 * plane) * sizeof(int16_t));
        for (k = 0; k < 3; ++k) {
            held[k] = INT32_MIN;
        }
        for (out_y = 0; out_y < od->h; ++out_y) {
            const int32_t y0 = out_y * params->stride_h - params->pad_h;
            const int16_t *rows[3];
            int8_t *out_row = output + ((int64_t)batch * od->h + out_y) * od->w * od->c;
            for (k = 0; k < 3; ++k) {
                const int32_t y = y0 + k;
                const int32_t slot = ((y % 3) + 3) % 3;
                int16_t *dst = ring + slot * plane;
                if (held[slot] != y) {
                    if (y >= 0 && y < in->h) {
                        dw_expand_row(params, in_batch + (int64_t)y * in->w * in->c, dst, width);
                    } else if (held[slot] >= 0) {
                        memset(dst, 0, (size_t)plane * sizeof(int16_t));
                    }
                    held[slot] = y >= 0 && y < in->h ? y : -1;
                }
                rows[k] = dst;
            }
            for (c = 0; c < in->c; ++c) {
                dw_channel_row(rows[0] + c * width, rows[1] + c * width, rows[2] + c * width,
                               filter + 9 * c, bias[c], od->w, params->stride_w, acc);
                dw_store_row(params, acc, od->w, c, out_row + c, od->c);
            }
        }
    }
    return MNMCU_OK;
}
