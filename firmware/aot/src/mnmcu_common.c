/*
 * mnmcu_common.c - status names.
 */
#include "mnmcu_kernels.h"

const char *mnmcu_status_str(mnmcu_status_t status)
{
    switch (status) {
    case MNMCU_OK:
        return "ok";
    case MNMCU_ERR_ARG:
        return "invalid argument";
    case MNMCU_ERR_SHAPE:
        return "inconsistent shapes";
    case MNMCU_ERR_BUFFER:
        return "scratch buffer too small";
    default:
        return "unknown status";
    }
}
