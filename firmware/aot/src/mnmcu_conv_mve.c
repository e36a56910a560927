/*
 * mnmcu_conv_mve.c - CONV_2D 1x1 for cores with Helium, the M-profile Vector
 * Extension (Cortex-M55): sixteen int8 products per instruction (VMLADAVA),
 * four output channels requantised per vector sequence (mnmcu_mve.h).
 *
 * Bit-exact with mnmcu_conv.c under the conditions mnmcu.emit.aot checks (see
 * mnmcu_kernels_fast.h); compiled for a core without MVE, the same function
 * is plain C, so the layout can be checked on any host.
 */
/* The hot loops of the runtime: compiled for speed also in -Os builds. */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("O2")
#endif
#include "mnmcu_kernels_fast.h"
#include "mnmcu_mve.h"

/* acc[j] += dot(x[0..depth), w_j[0..depth)), four filters w_j = w + j * depth. */
static void dot_1x4(const int8_t *x, const int8_t *w, int32_t depth, int32_t acc[4])
{
    int32_t a0 = acc[0], a1 = acc[1], a2 = acc[2], a3 = acc[3];
#if MNMCU_HAVE_MVE
    const int8_t *w0 = w, *w1 = w + depth, *w2 = w + 2 * depth, *w3 = w + 3 * depth;
    int32_t k;
    for (k = depth >> 4; k > 0; --k) {
        const int8x16_t xv = vldrbq_s8(x);
        a0 = vmladavaq_s8(a0, xv, vldrbq_s8(w0));
        a1 = vmladavaq_s8(a1, xv, vldrbq_s8(w1));
        a2 = vmladavaq_s8(a2, xv, vldrbq_s8(w2));
        a3 = vmladavaq_s8(a3, xv, vldrbq_s8(w3));
        x += 16;
        w0 += 16;
        w1 += 16;
        w2 += 16;
        w3 += 16;
    }
    if (depth & 15) {
        const mve_pred16_t p = vctp8q((uint32_t)(depth & 15));
        const int8x16_t xv = vldrbq_z_s8(x, p);
        a0 = vmladavaq_s8(a0, xv, vldrbq_z_s8(w0, p));
        a1 = vmladavaq_s8(a1, xv, vldrbq_z_s8(w1, p));
        a2 = vmladavaq_s8(a2, xv, vldrbq_z_s8(w2, p));
        a3 = vmladavaq_s8(a3, xv, vldrbq_z_s8(w3, p));
    }
#else
    int32_t k;
    for (k = 0; k < depth; ++k) {
        const int32_t xv = x[k];
        a0 += xv * w[k];
        a1 += xv * w[depth + k];
        a2 += xv * w[2 * depth + k];
        a3 += xv * w[3 * depth + k];
    }
#endif
    acc[0] = a0;
    acc[1] = a1;
    acc[2] = a2;
    acc[3] = a3;
}

/* dot(x[0..depth), w[0..depth)) + acc. */
static int32_t dot_1x1(const int8_t *x, const int8_t *w, int32_t depth, int32_t acc)
{
#if MNMCU_HAVE_MVE
    int32_t k;
    for (k = 0; k < depth; k += 16) {
        const mve_pred16_t p = vctp8q((uint32_t)(depth - k));
        acc = vmladavaq_s8(acc, vldrbq_z_s8(x + k, p), vldrbq_z_s8(w + k, p));
    }
#else
    int32_t k;
    for (k = 0; k < depth; ++k) {
        acc += (int32_t)x[k] * w[k];
    }
#endif
    return acc;
}

mnmcu_status_t mnmcu_conv2d_1x1_s8_mve_run(const mnmcu_conv2d_params_t *params,
                                           const int8_t *input, const int8_t *filter,
                                           const int32_t *bias, int8_t *output)
{
    int32_t pixels, depth, channels, p, oc;
    int32_t out_offset, act_min, act_max;

    if (params == NULL || input == NULL || filter == NULL || bias == NULL || output == NULL ||
        params->multiplier == NULL || params->shift == NULL ||
        !mnmcu_dims_valid(&params->input) || !mnmcu_dims_valid(&params->filter) ||
        !mnmcu_dims_valid(&params->output) || !mnmcu_act_valid(params->act_min, params->act_max)) {
        return MNMCU_ERR_ARG;
    }
    if (params->filter.h != 1 || params->filter.w != 1 || params->stride_h != 1 ||
        params->stride_w != 1 || params->pad_h != 0 || params->pad_w != 0 ||
        params->filter.c != params->input.c || params->output.c != params->filter.n ||
        params->output.n != params->input.n || params->output.h != params->input.h ||
        params->output.w != params->input.w) {
        return MNMCU_ERR_SHAPE;
    }
    pixels = params->input.n * params->input.h * params->input.w;
    depth = params->input.c;
    channels = params->output.c;
    out_offset = params->output_offset;
    act_min = params->act_min;
    act_max = params->act_max;
    for (p = 0; p < pixels; ++p) {
        const int8_t *x = input + (int64_t)p * depth;
        int8_t *o = output + (int64_t)p * channels;
        const int8_t *w = filter;
        for (oc = 0; oc + 3 < channels; oc += 4) {
            int32_t acc[4];
            int32_t j;
            for (j = 0; j < 4; ++j) {
                acc[j] = bias[oc + j];
            }
            dot_1x4(x, w, depth, acc);
            w += 4 * depth;
#if MNMCU_HAVE_MVE
            vstrbq_s32(o + oc, mnmcu_output_mve(mnmcu_vec4(acc[0], acc[1], acc[2], acc[3]),
                                                vldrwq_s32(params->multiplier + oc),
                                                vldrwq_s32(params->shift + oc), out_offset,
                                                act_min, act_max));
#else
            for (j = 0; j < 4; ++j) {
                o[oc + j] = mnmcu_output_fast(acc[j], params->multiplier[oc + j],
                                              params->shift[oc + j], out_offset, act_min,
                                              act_max);
            }
#endif
        }
        for (; oc < channels; ++oc) {
            o[oc] = mnmcu_output_fast(dot_1x1(x, w, depth, bias[oc]), params->multiplier[oc],
                                      params->shift[oc], out_offset, act_min, act_max);
            w += depth;
        }
    }
    return MNMCU_OK;
}
