/*
 * mnmcu_pad.c - PAD with a constant value (the output zero point), int8,
 * as reference_ops::Pad.
 */
#include <string.h>

#include "mnmcu_fixedpoint.h"

mnmcu_status_t mnmcu_pad_s8_run(const mnmcu_pad_params_t *params, const int8_t *input,
                                int8_t *output)
{
    const mnmcu_dims_t *in;
    const mnmcu_dims_t *od;
    const mnmcu_dims_t *b;
    int32_t n, h, w;
    if (params == NULL || input == NULL || output == NULL) {
        return MNMCU_ERR_ARG;
    }
    in = &params->input;
    od = &params->output;
    b = &params->before;
    if (!mnmcu_dims_valid(in) || !mnmcu_dims_valid(od) || b->n < 0 || b->h < 0 || b->w < 0 ||
        b->c < 0 || params->pad_value < INT8_MIN || params->pad_value > INT8_MAX) {
        return MNMCU_ERR_ARG;
    }
    if ((int64_t)b->n + in->n > od->n || (int64_t)b->h + in->h > od->h ||
        (int64_t)b->w + in->w > od->w || (int64_t)b->c + in->c > od->c) {
        return MNMCU_ERR_SHAPE;
    }
    memset(output, params->pad_value, (size_t)mnmcu_dims_count(od));
    for (n = 0; n < in->n; ++n) {
        for (h = 0; h < in->h; ++h) {
            for (w = 0; w < in->w; ++w) {
                const int64_t src = (((int64_t)n * in->h + h) * in->w + w) * in->c;
                const int64_t dst =
                    ((((int64_t)n + b->n) * od->h + h + b->h) * od->w + w + b->w) * od->c + b->c;
                memcpy(output + dst, input + src, (size_t)in->c);
            }
        }
    }
    return MNMCU_OK;
}
