/*
 * mnmcu_runtime.h - the one interface the firmware uses to run a model.
 *
 * Both runtimes implement it: the ahead-of-time runtime
 * (mnmcu_runtime_aot.c, generated over mnmcu_model.h) and TensorFlow Lite
 * Micro (mnmcu_runtime_tflm.cpp). The firmware main and the serial protocol
 * include only this header, so they are the same for both runtimes.
 *
 * Usage: call mnmcu_runtime_init() once; then, for each inference, write
 * mnmcu_runtime_info()->input_size int8 bytes to mnmcu_runtime_input(),
 * call mnmcu_runtime_invoke() and read mnmcu_runtime_info()->output_size
 * int8 bytes from mnmcu_runtime_output().
 *
 * Not reentrant: one model, one static arena, one caller at a time.
 * Usable from C and C++.
 */
#ifndef MNMCU_RUNTIME_H
#define MNMCU_RUNTIME_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/**
 * Results of the mnmcu_runtime_* functions (returned as int). 0 is success;
 * every error is negative. -1 to -9 are left to each runtime for its own
 * detail (the AOT runtime passes its kernels' mnmcu_status_t through);
 * mnmcu_runtime_status_str() names every code a runtime returns.
 */
typedef enum {
    MNMCU_RUNTIME_OK = 0,            /**< Success. */
    MNMCU_RUNTIME_ERR_NOT_INIT = -10, /**< Called before a successful mnmcu_runtime_init(). */
    MNMCU_RUNTIME_ERR_MODEL = -11,    /**< The model is rejected (schema version, op, shape). */
    MNMCU_RUNTIME_ERR_ARENA = -12,    /**< The tensor arena is too small for the model. */
    MNMCU_RUNTIME_ERR_INVOKE = -13    /**< The inference failed. */
} mnmcu_runtime_status_t;

/** Largest tensor rank mnmcu_runtime_info_t describes. */
#define MNMCU_RUNTIME_MAX_RANK 4

/** What a runtime and its model look like; constant after mnmcu_runtime_init(). */
typedef struct {
    const char *runtime;      /**< "aot" or "tflm". */
    uint32_t input_size;      /**< Bytes of the int8 input tensor. */
    uint32_t output_size;     /**< Bytes of the int8 output tensor. */
    uint32_t input_rank;      /**< Used entries of input_shape (1..MNMCU_RUNTIME_MAX_RANK). */
    int32_t input_shape[MNMCU_RUNTIME_MAX_RANK];   /**< e.g. {1, 96, 96, 3} (NHWC). */
    uint32_t output_rank;     /**< Used entries of output_shape. */
    int32_t output_shape[MNMCU_RUNTIME_MAX_RANK];  /**< e.g. {1, 2}. */
    float input_scale;        /**< real = input_scale * (q - input_zero_point). */
    int32_t input_zero_point;
    float output_scale;       /**< real = output_scale * (q - output_zero_point). */
    int32_t output_zero_point;
    uint32_t arena_bytes;      /**< Bytes reserved for the tensor arena. */
    uint32_t arena_used_bytes; /**< Bytes of it the model uses (TFLM: measured at init). */
} mnmcu_runtime_info_t;

/**
 * Prepare the runtime: check the model, plan or allocate its tensors.
 * @return MNMCU_RUNTIME_OK or a negative status. Calling it again after
 *         success does nothing and returns MNMCU_RUNTIME_OK.
 */
int mnmcu_runtime_init(void);

/**
 * The model's input tensor itself (int8, input_size bytes), so that input
 * received over a link lands there directly without a second buffer.
 * @return NULL before a successful mnmcu_runtime_init().
 */
int8_t *mnmcu_runtime_input(void);

/**
 * The model's output tensor (int8, output_size bytes), valid after a
 * successful mnmcu_runtime_invoke() until the next one.
 * @return NULL before a successful mnmcu_runtime_init().
 */
const int8_t *mnmcu_runtime_output(void);

/**
 * Run the model once on the bytes in mnmcu_runtime_input().
 * The input tensor may be overwritten (arena reuse): write it again before
 * the next call.
 * @return MNMCU_RUNTIME_OK or a negative status.
 */
int mnmcu_runtime_invoke(void);

/** The runtime's description; never NULL, complete after a successful mnmcu_runtime_init(). */
const mnmcu_runtime_info_t *mnmcu_runtime_info(void);

/** A short English name of a status this runtime returns; never NULL. */
const char *mnmcu_runtime_status_str(int status);

#ifdef __cplusplus
}
#endif

#endif /* MNMCU_RUNTIME_H */
