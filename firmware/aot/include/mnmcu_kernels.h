/*
 * mnmcu_kernels.h - int8 kernels of mnmcu's ahead-of-time (AOT) runtime.
 *
 * Portable C99. Every kernel is bit-exact with the int8 reference kernel that
 * TFLite's interpreter runs with OpResolverType.BUILTIN_REF (LiteRT), using
 * the same integer arithmetic: saturating rounding doubling high multiply,
 * rounding divide by a power of two, double-rounding
 * MultiplyByQuantizedMultiplier, gemmlowp's fixed-point exp and reciprocal.
 * No kernel uses floating point, allocates memory or keeps state: every
 * requantisation constant is computed at generation time (mnmcu.emit.aot)
 * and handed in through a const params struct.
 *
 * Conventions
 *  - Every kernel is `mnmcu_status_t mnmcu_<op>_s8_run(const params *, ...)`
 *    and returns MNMCU_OK, or an error without writing any output when a
 *    pointer is NULL or a parameter is out of range.
 *  - Activations are int8 NHWC, batch first. Real value = scale * (q - zp).
 *    Offsets follow TFLite: `input_offset` = -input zero point (so in
 *    [-127, 128]), `output_offset` = +output zero point (in [-128, 127]).
 *  - Per-channel requantisation: output = clamp(MBQM(acc, multiplier[c],
 *    shift[c]) + output_offset, act_min, act_max), multiplier a Q31 value in
 *    [2^30, 2^31) (or 0), shift in [-31, 30] (positive: left shift).
 *  - act_min/act_max in [-128, 127] carry the fused activation (ReLU, ReLU6
 *    become clamps on the quantised output).
 *  - Kernels that need scratch memory have a `_get_buffer_size()` companion
 *    and take a caller-provided mnmcu_buffer_t; the portable kernels need
 *    none (size 0), optimised variants built under the same names may.
 *  - In place: ADD, MUL, HARD_SWISH and REQUANTIZE accept output == input1
 *    (the same pointer, not a partial overlap) when input1 has the output's
 *    shape. No other kernel allows its output to overlap an input.
 *  - Requires two's complement int32_t (C99 guarantees it for int32_t) and
 *    an arithmetic right shift of negative values (every supported compiler;
 *    checked at compile time below), as TFLite does.
 */
#ifndef MNMCU_KERNELS_H
#define MNMCU_KERNELS_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define MNMCU_KERNELS_VERSION_MAJOR 1
#define MNMCU_KERNELS_VERSION_MINOR 0

/* Alignment of constant arrays and of the arena, e.g. MNMCU_ALIGN(16). */
#if defined(__GNUC__) || defined(__clang__) || defined(__ARMCC_VERSION)
#define MNMCU_ALIGN(n) __attribute__((aligned(n)))
#elif defined(_MSC_VER)
#define MNMCU_ALIGN(n) __declspec(align(n))
#elif defined(__STDC_VERSION__) && __STDC_VERSION__ >= 201112L
#define MNMCU_ALIGN(n) _Alignas(n)
#else
#define MNMCU_ALIGN(n)
#endif

/** Result of every kernel and of a generated model's invoke(). */
typedef enum {
    MNMCU_OK = 0,           /**< Success. */
    MNMCU_ERR_ARG = -1,     /**< NULL pointer or parameter out of its range. */
    MNMCU_ERR_SHAPE = -2,   /**< Dimensions that do not fit together. */
    MNMCU_ERR_BUFFER = -3   /**< Scratch buffer missing or too small. */
} mnmcu_status_t;

/** A short English name of a status, e.g. "invalid argument". Never NULL. */
const char *mnmcu_status_str(mnmcu_status_t status);

/** Four dimensions, in the order of the tensor's layout (NHWC, OHWI, 1HWC). */
typedef struct {
    int32_t n;
    int32_t h;
    int32_t w;
    int32_t c;
} mnmcu_dims_t;

/** Caller-provided scratch memory; buf may be NULL when size is 0. */
typedef struct {
    void *buf;
    int32_t size;
} mnmcu_buffer_t;

/* ------------------------------------------------------------------------ */
/* CONV_2D: TFLite reference_integer_ops::ConvPerChannel                    */
/* ------------------------------------------------------------------------ */

typedef struct {
    mnmcu_dims_t input;       /**< NHWC [N, H, W, C_in]. */
    mnmcu_dims_t filter;      /**< OHWI [C_out, KH, KW, C_in / groups]. */
    mnmcu_dims_t output;      /**< NHWC [N, OH, OW, C_out]. */
    int32_t stride_h;         /**< >= 1 */
    int32_t stride_w;         /**< >= 1 */
    int32_t dilation_h;       /**< >= 1 */
    int32_t dilation_w;       /**< >= 1 */
    int32_t pad_h;            /**< Rows of implicit zero padding on top, >= 0. */
    int32_t pad_w;            /**< Columns of implicit zero padding on the left, >= 0. */
    int32_t input_offset;     /**< -input zero point, [-127, 128]. */
    int32_t output_offset;    /**< Output zero point, [-128, 127]. */
    int32_t act_min;          /**< [-128, act_max] */
    int32_t act_max;          /**< [act_min, 127] */
    const int32_t *multiplier; /**< [C_out] Q31 multipliers. */
    const int32_t *shift;      /**< [C_out] shifts, [-31, 30]. */
} mnmcu_conv2d_params_t;

/**
 * 2-D convolution, per-channel quantised, grouped when C_in is a multiple of
 * the filter's depth. Input positions outside the image count as zero (the
 * real value 0). Accumulates in int32 as TFLite does.
 *
 * @param[in]  params   shapes, strides, padding, requantisation
 * @param[in]  input    int8 NHWC, params->input
 * @param[in]  filter   int8 OHWI, params->filter, symmetric (zero point 0)
 * @param[in]  bias     int32 [C_out], scale input_scale * filter_scale[c]; may be NULL
 * @param[out] output   int8 NHWC, params->output; must not overlap input
 * @param[in]  scratch  scratch of mnmcu_conv2d_s8_get_buffer_size() bytes; may be NULL when 0
 */
mnmcu_status_t mnmcu_conv2d_s8_run(const mnmcu_conv2d_params_t *params, const int8_t *input,
                                   const int8_t *filter, const int32_t *bias, int8_t *output,
                                   const mnmcu_buffer_t *scratch);

/** Scratch bytes mnmcu_conv2d_s8_run() needs for params (0 for the portable kernel). */
int32_t mnmcu_conv2d_s8_get_buffer_size(const mnmcu_conv2d_params_t *params);

/* ------------------------------------------------------------------------ */
/* DEPTHWISE_CONV_2D: reference_integer_ops::DepthwiseConvPerChannel        */
/* ------------------------------------------------------------------------ */

typedef struct {
    mnmcu_dims_t input;       /**< NHWC [N, H, W, C_in]. */
    mnmcu_dims_t filter;      /**< 1HWC [1, KH, KW, C_out], C_out = C_in * depth_multiplier. */
    mnmcu_dims_t output;      /**< NHWC [N, OH, OW, C_out]. */
    int32_t depth_multiplier; /**< >= 1 */
    int32_t stride_h;
    int32_t stride_w;
    int32_t dilation_h;
    int32_t dilation_w;
    int32_t pad_h;
    int32_t pad_w;
    int32_t input_offset;     /**< -input zero point, [-127, 128]. */
    int32_t output_offset;    /**< Output zero point, [-128, 127]. */
    int32_t act_min;
    int32_t act_max;
    const int32_t *multiplier; /**< [C_out] */
    const int32_t *shift;      /**< [C_out] */
} mnmcu_depthwise_conv2d_params_t;

/**
 * Depthwise 2-D convolution, any depth multiplier; output channel
 * c_in * depth_multiplier + m reads input channel c_in.
 *
 * @param[in]  params   shapes, strides, padding, requantisation
 * @param[in]  input    int8 NHWC
 * @param[in]  filter   int8 1HWC, symmetric
 * @param[in]  bias     int32 [C_out]; may be NULL
 * @param[out] output   int8 NHWC; must not overlap input
 * @param[in]  scratch  scratch of mnmcu_depthwise_conv2d_s8_get_buffer_size() bytes; may be NULL when 0
 */
mnmcu_status_t mnmcu_depthwise_conv2d_s8_run(const mnmcu_depthwise_conv2d_params_t *params,
                                             const int8_t *input, const int8_t *filter,
                                             const int32_t *bias, int8_t *output,
                                             const mnmcu_buffer_t *scratch);

/** Scratch bytes mnmcu_depthwise_conv2d_s8_run() needs (0 for the portable kernel). */
int32_t mnmcu_depthwise_conv2d_s8_get_buffer_size(const mnmcu_depthwise_conv2d_params_t *params);

/* ------------------------------------------------------------------------ */
/* FULLY_CONNECTED: reference_integer_ops::FullyConnected(PerChannel)       */
/* ------------------------------------------------------------------------ */

typedef struct {
    int32_t batches;        /**< Rows of input and output, >= 1. */
    int32_t input_depth;    /**< Elements per input row (accumulation depth), >= 1. */
    int32_t output_depth;   /**< Units, >= 1. */
    int32_t input_offset;   /**< -input zero point. */
    int32_t filter_offset;  /**< -filter zero point (0 for per-channel weights). */
    int32_t output_offset;  /**< Output zero point. */
    int32_t act_min;
    int32_t act_max;
    /**
     * TFLite Micro's requantisation (mnmcu_fully_connected_s8_run):
     * [output_depth] fixed-point multipliers and shifts of the effective
     * scales input_scale * filter_scale[c] / output_scale, as for a
     * convolution. NULL with the LiteRT arithmetic.
     */
    const int32_t *multiplier;
    const int32_t *shift;
    /**
     * LiteRT's requantisation (mnmcu_fully_connected_s8_litert_run): the
     * same effective scales as exact binary64 values, scale = mantissa *
     * 2^exponent, mantissa in [0, 2^53). LiteRT's reference FC computes
     * round((double)acc * scale); the kernel reproduces that product and
     * rounding exactly in integers. NULL with TFLite Micro's arithmetic.
     */
    const int64_t *scale_mantissa;
    const int32_t *scale_exponent;
} mnmcu_fully_connected_params_t;

/**
 * Fully connected layer: output[b][o] = requant(sum_i (filter[o][i] +
 * filter_offset) * (input[b][i] + input_offset) + bias[o]), requantised as
 * TFLite Micro does (MultiplyByQuantizedMultiplier).
 *
 * @param[in]  params  sizes and requantisation (multiplier, shift)
 * @param[in]  input   int8 [batches, input_depth]
 * @param[in]  filter  int8 [output_depth, input_depth] (OI)
 * @param[in]  bias    int32 [output_depth]; may be NULL
 * @param[out] output  int8 [batches, output_depth]; must not overlap input
 */
mnmcu_status_t mnmcu_fully_connected_s8_run(const mnmcu_fully_connected_params_t *params,
                                            const int8_t *input, const int8_t *filter,
                                            const int32_t *bias, int8_t *output);

/**
 * The same layer requantised as LiteRT's reference kernel does, in double
 * precision (params->scale_mantissa, params->scale_exponent).
 */
mnmcu_status_t mnmcu_fully_connected_s8_litert_run(const mnmcu_fully_connected_params_t *params,
                                                   const int8_t *input, const int8_t *filter,
                                                   const int32_t *bias, int8_t *output);

/* ------------------------------------------------------------------------ */
/* AVERAGE_POOL_2D and MAX_POOL_2D: reference_integer_ops::AveragePool and  */
/* MaxPool                                                                  */
/* ------------------------------------------------------------------------ */

typedef struct {
    mnmcu_dims_t input;   /**< NHWC */
    mnmcu_dims_t output;  /**< NHWC, same N and C as input */
    int32_t filter_h;
    int32_t filter_w;
    int32_t stride_h;
    int32_t stride_w;
    int32_t pad_h;
    int32_t pad_w;
    int32_t act_min;
    int32_t act_max;
} mnmcu_pool2d_params_t;

/**
 * Average pooling; input and output share scale and zero point. Padded
 * positions are left out of the count. Rounds half away from zero.
 *
 * @param[in]  params  shapes, window, strides, padding, clamp
 * @param[in]  input   int8 NHWC
 * @param[out] output  int8 NHWC; must not overlap input
 * @return MNMCU_ERR_SHAPE when a window holds no input position
 */
mnmcu_status_t mnmcu_avgpool2d_s8_run(const mnmcu_pool2d_params_t *params, const int8_t *input,
                                      int8_t *output);

/**
 * Max pooling; input and output share scale and zero point. Padded positions
 * are left out of the window; a window with none inside the image gives
 * -128, clamped.
 *
 * @param[in]  params  shapes, window, strides, padding, clamp
 * @param[in]  input   int8 NHWC
 * @param[out] output  int8 NHWC; must not overlap input
 */
mnmcu_status_t mnmcu_maxpool2d_s8_run(const mnmcu_pool2d_params_t *params, const int8_t *input,
                                      int8_t *output);

/* ------------------------------------------------------------------------ */
/* CONCATENATION: reference_ops::Concatenation (inputs share the output's   */
/* scale and zero point, as TFLite Micro requires)                          */
/* ------------------------------------------------------------------------ */

typedef struct {
    int32_t outer;              /**< Product of the dimensions before the axis, >= 1. */
    int32_t count;              /**< Number of inputs, >= 1. */
    const int32_t *copy_bytes;  /**< [count] bytes of each input per outer step: its axis
                                     dimension times the product of those after it. */
} mnmcu_concat_params_t;

/**
 * Concatenation along one axis: for each outer step, each input's slice in turn.
 *
 * @param[in]  params  sizes
 * @param[in]  inputs  [count] int8 tensors; none may overlap the output
 * @param[out] output  int8, outer * sum(copy_bytes) bytes
 */
mnmcu_status_t mnmcu_concat_s8_run(const mnmcu_concat_params_t *params,
                                   const int8_t *const *inputs, int8_t *output);

/* ------------------------------------------------------------------------ */
/* MEAN over H and W: reference_ops::QuantizedMeanOrSum                     */
/* ------------------------------------------------------------------------ */

typedef struct {
    mnmcu_dims_t input;     /**< NHWC, reduced over H and W. */
    int32_t input_offset;   /**< -input zero point. */
    int32_t output_offset;  /**< Output zero point. */
    /** Requantisation of the sum, with 1/(H*W) folded in as TFLite does. */
    int32_t multiplier;
    int32_t shift;
} mnmcu_mean_params_t;

/**
 * Mean over the spatial axes (global average pooling with requantisation).
 *
 * @param[in]  params  input shape and requantisation
 * @param[in]  input   int8 NHWC
 * @param[out] output  int8 [N, C] (the same bytes as [N, 1, 1, C]); must not overlap input
 */
mnmcu_status_t mnmcu_mean_s8_run(const mnmcu_mean_params_t *params, const int8_t *input,
                                 int8_t *output);

/* ------------------------------------------------------------------------ */
/* ADD and MUL: reference_integer_ops::Add / Mul and their 6-D broadcasts   */
/* ------------------------------------------------------------------------ */

typedef struct {
    /** Shapes right-aligned to 4-D; an input dim is the output dim or 1 (broadcast). */
    mnmcu_dims_t input1;
    mnmcu_dims_t input2;
    mnmcu_dims_t output;
    int32_t input1_offset;   /**< -zero point of input1 */
    int32_t input2_offset;   /**< -zero point of input2 */
    int32_t output_offset;   /**< zero point of output */
    int32_t left_shift;      /**< 20 for int8 */
    int32_t input1_multiplier;
    int32_t input1_shift;    /**< <= 0 */
    int32_t input2_multiplier;
    int32_t input2_shift;    /**< <= 0 */
    int32_t output_multiplier;
    int32_t output_shift;    /**< <= 0 */
    int32_t act_min;
    int32_t act_max;
} mnmcu_add_params_t;

/**
 * Element-wise addition with broadcasting.
 *
 * @param[in]  params  shapes and rescaling
 * @param[in]  input1  int8, params->input1
 * @param[in]  input2  int8, params->input2
 * @param[out] output  int8, params->output; may equal input1 when input1 has the output's shape
 */
mnmcu_status_t mnmcu_add_s8_run(const mnmcu_add_params_t *params, const int8_t *input1,
                                const int8_t *input2, int8_t *output);

typedef struct {
    mnmcu_dims_t input1;
    mnmcu_dims_t input2;
    mnmcu_dims_t output;
    int32_t input1_offset;
    int32_t input2_offset;
    int32_t output_offset;
    int32_t output_multiplier; /**< of input1_scale * input2_scale / output_scale */
    int32_t output_shift;
    int32_t act_min;
    int32_t act_max;
} mnmcu_mul_params_t;

/**
 * Element-wise multiplication with broadcasting ([1,H,W,C] * [1,1,1,C],
 * tensor * scalar, ...).
 *
 * @param[in]  params  shapes and requantisation
 * @param[in]  input1  int8, params->input1
 * @param[in]  input2  int8, params->input2
 * @param[out] output  int8, params->output; may equal input1 when input1 has the output's shape
 */
mnmcu_status_t mnmcu_mul_s8_run(const mnmcu_mul_params_t *params, const int8_t *input1,
                                const int8_t *input2, int8_t *output);

typedef struct {
    int32_t size;              /**< Elements of each input and of the output, >= 0. */
    int32_t output_offset;     /**< zero point of output */
    int32_t output_multiplier;
    int32_t output_shift;      /**< <= 0 */
    int32_t act_min;
    int32_t act_max;
} mnmcu_add_tables_params_t;

/**
 * ADD of two int8 tensors of the same shape, each input's scaled value
 * (AddFunc's MBQM((x + offset) * 2^left_shift, ...)) read from a table of
 * its 256 values computed at generation time; one requantisation per element.
 *
 * @param[in]  params  size and output rescaling
 * @param[in]  input1  int8 [size]
 * @param[in]  input2  int8 [size]
 * @param[in]  table1  int32 [256]: input1's scaled value for inputs -128 .. 127
 * @param[in]  table2  int32 [256]: the same for input2
 * @param[out] output  int8 [size]; may equal input1
 */
mnmcu_status_t mnmcu_add_s8_tables_run(const mnmcu_add_tables_params_t *params,
                                       const int8_t *input1, const int8_t *input2,
                                       const int32_t *table1, const int32_t *table2,
                                       int8_t *output);

typedef struct {
    int32_t pixels;            /**< > 0 */
    int32_t channels;          /**< > 0 */
    int32_t input_offset;      /**< -zero point of the feature map */
    int32_t scale_offset;      /**< -zero point of the per-channel values */
    int32_t output_offset;
    int32_t output_multiplier; /**< of input1_scale * input2_scale / output_scale */
    int32_t output_shift;
    int32_t act_min;
    int32_t act_max;
} mnmcu_mul_channels_params_t;

/**
 * MUL of a feature map [pixels][channels] by one value per channel (the
 * squeeze-and-excite scaling), as MulElementwise broadcast over the pixels.
 *
 * @param[in]  params  shape and rescaling
 * @param[in]  input   int8 [pixels][channels]
 * @param[in]  scale   int8 [channels]
 * @param[out] output  int8 [pixels][channels]; may equal input
 */
mnmcu_status_t mnmcu_mul_channels_s8_run(const mnmcu_mul_channels_params_t *params,
                                         const int8_t *input, const int8_t *scale,
                                         int8_t *output);

/* ------------------------------------------------------------------------ */
/* HARD_SWISH: reference_ops::HardSwish (int16 fixed-point intermediates)   */
/* ------------------------------------------------------------------------ */

typedef struct {
    int32_t size;                           /**< Elements, >= 0. */
    int32_t input_zero_point;
    int32_t output_zero_point;
    int16_t output_multiplier_fixedpoint;   /**< Q15 of (input_scale / 128) / output_scale */
    int16_t reluish_multiplier_fixedpoint;  /**< Q15 of (input_scale / 128) / (3 / 32768) */
    int32_t output_multiplier_exponent;     /**< <= 0 */
    int32_t reluish_multiplier_exponent;
} mnmcu_hard_swish_params_t;

/**
 * x * relu6(x + 3) / 6.
 *
 * @param[in]  params  size and fixed-point constants
 * @param[in]  input   int8 [size]
 * @param[out] output  int8 [size]; may equal input
 */
mnmcu_status_t mnmcu_hard_swish_s8_run(const mnmcu_hard_swish_params_t *params,
                                       const int8_t *input, int8_t *output);

/* ------------------------------------------------------------------------ */
/* QUANTIZE (int8 -> int8), RELU, RELU6: reference_ops::Requantize / ReluX  */
/* ------------------------------------------------------------------------ */

typedef struct {
    int32_t size;           /**< Elements, >= 0. */
    int32_t input_offset;   /**< -input zero point */
    int32_t output_offset;  /**< output zero point */
    int32_t multiplier;     /**< of input_scale / output_scale */
    int32_t shift;
    int32_t act_min;        /**< -128 for QUANTIZE; the ReLU bound for RELU/RELU6 */
    int32_t act_max;        /**< 127 for QUANTIZE and RELU; the ReLU6 bound for RELU6 */
} mnmcu_requantize_params_t;

/**
 * output = clamp(MBQM(input + input_offset) + output_offset, act_min, act_max).
 *
 * @param[in]  params  size and requantisation
 * @param[in]  input   int8 [size]
 * @param[out] output  int8 [size]; may equal input
 */
mnmcu_status_t mnmcu_requantize_s8_run(const mnmcu_requantize_params_t *params,
                                       const int8_t *input, int8_t *output);

/* ------------------------------------------------------------------------ */
/* Element-wise functions of one int8 input, as a table                     */
/* ------------------------------------------------------------------------ */

typedef struct {
    int32_t size; /**< Elements, >= 0. */
} mnmcu_lut_params_t;

/**
 * output[i] = table[input[i] + 128]. Any element-wise function of one int8
 * input (HARD_SWISH, QUANTIZE int8->int8, RELU, RELU6) is exactly its 256
 * values, computed at generation time with the reference arithmetic
 * (mnmcu.qmath), so the kernel is a lookup.
 *
 * @param[in]  params  size
 * @param[in]  input   int8 [size]
 * @param[in]  table   int8 [256]: the output for inputs -128 .. 127
 * @param[out] output  int8 [size]; may equal input
 */
mnmcu_status_t mnmcu_lut_s8_run(const mnmcu_lut_params_t *params, const int8_t *input,
                                const int8_t *table, int8_t *output);

/* ------------------------------------------------------------------------ */
/* PAD: reference_ops::Pad (constant value)                                 */
/* ------------------------------------------------------------------------ */

typedef struct {
    mnmcu_dims_t input;      /**< Shape right-aligned to 4-D. */
    mnmcu_dims_t output;     /**< input + before + after, per dim. */
    mnmcu_dims_t before;     /**< Padding before each dim, >= 0. */
    int32_t pad_value;       /**< Output zero point (or the constant), [-128, 127]. */
} mnmcu_pad_params_t;

/**
 * Constant padding.
 *
 * @param[in]  params  shapes and padding
 * @param[in]  input   int8, params->input
 * @param[out] output  int8, params->output; must not overlap input
 */
mnmcu_status_t mnmcu_pad_s8_run(const mnmcu_pad_params_t *params, const int8_t *input,
                                int8_t *output);

/* ------------------------------------------------------------------------ */
/* SOFTMAX int8 -> int8: reference_ops::Softmax (gemmlowp fixed-point exp)  */
/* ------------------------------------------------------------------------ */

typedef struct {
    int32_t rows;              /**< Product of all but the last dim, >= 1. */
    int32_t depth;             /**< Last dim, [1, 4095] (the Q12 sum of exps must not overflow). */
    int32_t input_multiplier;  /**< From PreprocessSoftmaxScaling(beta, input_scale, 5). */
    int32_t input_left_shift;  /**< [0, 31] */
    int32_t diff_min;          /**< -CalculateInputRadius(5, input_left_shift) */
} mnmcu_softmax_params_t;

/**
 * Softmax over the last dim. The output has scale 1/256 and zero point -128.
 *
 * @param[in]  params  sizes and input scaling
 * @param[in]  input   int8 [rows, depth]
 * @param[out] output  int8 [rows, depth]; must not overlap input
 * @return MNMCU_ERR_ARG also when a row holds so many values at its maximum
 *         (about 512) that the reciprocal's exponent leaves [0, 31]; TFLite's
 *         kernel aborts the process on such a row.
 */
mnmcu_status_t mnmcu_softmax_s8_run(const mnmcu_softmax_params_t *params, const int8_t *input,
                                    int8_t *output);

#ifdef __cplusplus
}
#endif

#endif /* MNMCU_KERNELS_H */
