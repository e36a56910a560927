/*
 * mnmcu_concat.c - CONCATENATION, int8, as reference_ops::Concatenation when
 * every input has the output's scale and zero point (TFLite Micro requires
 * it for int8): a copy of each input's slice per outer step.
 */
#include <string.h>

#include "mnmcu_fixedpoint.h"

mnmcu_status_t mnmcu_concat_s8_run(const mnmcu_concat_params_t *params,
                                   const int8_t *const *inputs, int8_t *output)
{
    int32_t outer, i;
    if (params == NULL || inputs == NULL || output == NULL || params->copy_bytes == NULL ||
        params->outer < 1 || params->count < 1) {
        return MNMCU_ERR_ARG;
    }
    for (i = 0; i < params->count; ++i) {
        if (inputs[i] == NULL || params->copy_bytes[i] < 0) {
            return MNMCU_ERR_ARG;
        }
    }
    for (outer = 0; outer < params->outer; ++outer) {
        for (i = 0; i < params->count; ++i) {
            const int32_t bytes = params->copy_bytes[i];
            memcpy(output, inputs[i] + (int64_t)outer * bytes, (size_t)bytes);
            output += bytes;
        }
    }
    return MNMCU_OK;
}
