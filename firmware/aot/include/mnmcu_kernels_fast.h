/*
 * mnmcu_kernels_fast.h - fast variants of the hot AOT kernels.
 *
 * The DSP kernels (mnmcu_conv_dsp.c, mnmcu_depthwise_dsp.c) use the Arm DSP
 * extension's dual 16-bit multiply-accumulate (SMLAD and friends) on
 * Cortex-M4, M7, M33 and M55; compiled for another target they fall back to
 * C with the same results. The Helium kernels (mnmcu_conv_mve.c) use the
 * M-profile Vector Extension of the Cortex-M55, whose depthwise convolutions
 * run mnmcu_depthwise_dsp.c's Helium blocks. mnmcu.emit.aot picks them at generation time
 * from the board's core, reorders their weights and folds the input offset
 * into their biases there; everything else is as in mnmcu_kernels.h, and the
 * outputs are bit-exact with the portable kernels.
 *
 * Preconditions the generator checks (the kernels do not): every channel's
 * shift is in [-22, -1] and every accumulator, bias included, stays within
 * (-2^30, 2^30) for any int8 input (the DSP kernels keep it doubled).
 */
#ifndef MNMCU_KERNELS_FAST_H
#define MNMCU_KERNELS_FAST_H

#include "mnmcu_kernels.h"

#ifdef __cplusplus
extern "C" {
#endif

/**
 * CONV_2D with a 1x1 filter, stride 1, no padding, groups 1.
 *
 * @param[in]  params   as for mnmcu_conv2d_s8_run(); input_offset is unused
 * @param[in]  input    int8 NHWC
 * @param[in]  filter   int8, C_out rounded up to even and C_in to a multiple
 *                      of 8 with zeros; each pair of output channels
 *                      (2j, 2j+1) interleaved: four C_in values of 2j, the
 *                      same four of 2j+1, and so on
 * @param[in]  bias     int32 [C_out rounded up to even]: bias + input_offset *
 *                      sum of the channel's weights (never NULL)
 * @param[out] output   int8 NHWC; must not overlap input
 * @param[in]  scratch  mnmcu_conv2d_1x1_s8_dsp_get_buffer_size() bytes, 4-byte aligned
 */
mnmcu_status_t mnmcu_conv2d_1x1_s8_dsp_run(const mnmcu_conv2d_params_t *params,
                                           const int8_t *input, const int8_t *filter,
                                           const int32_t *bias, int8_t *output,
                                           const mnmcu_buffer_t *scratch);

/** Scratch bytes of mnmcu_conv2d_1x1_s8_dsp_run(): three pixels as int16, and
 * per pair of output channels their biases and requantisation constants. */
int32_t mnmcu_conv2d_1x1_s8_dsp_get_buffer_size(const mnmcu_conv2d_params_t *params);

/**
 * CONV_2D, any window, groups 1: the windows of three output pixels are
 * copied (the input zero point where they leave the image) and multiplied as
 * in mnmcu_conv2d_1x1_s8_dsp_run(), with C_in read as KH * KW * C_in.
 *
 * @param[in]  filter   int8 in the layout of mnmcu_conv2d_1x1_s8_dsp_run()
 *                      over KH * KW * C_in values per output channel
 * @param[in]  bias     int32 [C_out rounded up to even]: bias + input_offset *
 *                      sum of the channel's weights (never NULL)
 * @param[in]  scratch  mnmcu_conv2d_s8_dsp_get_buffer_size() bytes, 4-byte aligned
 */
mnmcu_status_t mnmcu_conv2d_s8_dsp_run(const mnmcu_conv2d_params_t *params, const int8_t *input,
                                       const int8_t *filter, const int32_t *bias, int8_t *output,
                                       const mnmcu_buffer_t *scratch);

/** Scratch bytes of mnmcu_conv2d_s8_dsp_run(): three windows, as int8 and as
 * int16, and per pair of output channels their biases and requantisation
 * constants. */
int32_t mnmcu_conv2d_s8_dsp_get_buffer_size(const mnmcu_conv2d_params_t *params);

/**
 * mnmcu_conv2d_1x1_s8_dsp_run() and mnmcu_conv2d_s8_dsp_run() with the weights
 * already extended to int16 and doubled (twice the bytes, no SXTB16 in the
 * inner loop): per pair of output channels and group of four values (w0..w3
 * of channel 2j, then of 2j+1), each channel's (2 * w0, 2 * w2) and
 * (2 * w1, 2 * w3). Scratch as for the int8 layout.
 */
mnmcu_status_t mnmcu_conv2d_1x1_s8_dsp16_run(const mnmcu_conv2d_params_t *params,
                                             const int8_t *input, const int16_t *filter,
                                             const int32_t *bias, int8_t *output,
                                             const mnmcu_buffer_t *scratch);
mnmcu_status_t mnmcu_conv2d_s8_dsp16_run(const mnmcu_conv2d_params_t *params,
                                         const int8_t *input, const int16_t *filter,
                                         const int32_t *bias, int8_t *output,
                                         const mnmcu_buffer_t *scratch);

/**
 * DEPTHWISE_CONV_2D with depth multiplier 1, no dilation, KH <= 5
 * (mnmcu_depthwise_dsp.c): input rows expanded once into int16, channel by
 * channel, blocks of four (or three) outputs per pass over the filter rows.
 *
 * @param[in]  filter   int32 words, per channel, per filter
 *                      row: the row's weights doubled, as int16 pairs (even
 *                      tap in the low half), the last one alone for an odd KW
 *                      (KH * ceil(KW / 2) words per channel)
 * @param[in]  bias     int32 [C]: bias + input_offset * sum of the channel's
 *                      weights (never NULL)
 * @param[in]  scratch  mnmcu_depthwise_conv2d_s8_dsp_get_buffer_size() bytes,
 *                      4-byte aligned; less takes the channels in smaller
 *                      chunks, down to the rows of four channels (of all of
 *                      them if fewer), and the same outputs
 */
mnmcu_status_t mnmcu_depthwise_conv2d_s8_dsp_run(const mnmcu_depthwise_conv2d_params_t *params,
                                                 const int8_t *input, const int32_t *filter,
                                                 const int32_t *bias, int8_t *output,
                                                 const mnmcu_buffer_t *scratch);

/** Scratch bytes of mnmcu_depthwise_conv2d_s8_dsp_run(): int16 rows of a chunk of
 * channels (all of them, or a multiple of four): the whole padded map where
 * four channels of it fit in 8 KiB (chunks within 8 KiB), else KH + 1 rows
 * (chunks within 4 KiB). */
int32_t mnmcu_depthwise_conv2d_s8_dsp_get_buffer_size(
    const mnmcu_depthwise_conv2d_params_t *params);

/**
 * CONV_2D with a 1x1 filter, stride 1, no padding, groups 1, with Helium
 * (mnmcu_conv_mve.c): two pixels by four output channels per block, sixteen
 * input channels per vector multiply-accumulate.
 *
 * @param[in]  filter   int8, per group of four output channels (the last one
 *                      padded with zero channels), per chunk of sixteen input
 *                      channels (the last one padded with zeros), the group's
 *                      four channels' sixteen weights
 * @param[in]  bias     int32 [C_out rounded up to a multiple of 4]: bias +
 *                      input_offset * sum of the channel's weights (never NULL)
 */
mnmcu_status_t mnmcu_conv2d_1x1_s8_mve_run(const mnmcu_conv2d_params_t *params,
                                           const int8_t *input, const int8_t *filter,
                                           const int32_t *bias, int8_t *output);

/**
 * CONV_2D, any window, groups 1, with Helium: the windows of two output pixels
 * are copied (the input zero point where they leave the image) and multiplied
 * as in mnmcu_conv2d_1x1_s8_mve_run(), with C_in read as KH * KW * C_in.
 *
 * @param[in]  filter   int8 in the layout of mnmcu_conv2d_1x1_s8_mve_run() over
 *                      KH * KW * C_in values per output channel
 * @param[in]  scratch  mnmcu_conv2d_s8_mve_get_buffer_size() bytes
 */
mnmcu_status_t mnmcu_conv2d_s8_mve_run(const mnmcu_conv2d_params_t *params, const int8_t *input,
                                       const int8_t *filter, const int32_t *bias, int8_t *output,
                                       const mnmcu_buffer_t *scratch);

/** Scratch bytes of mnmcu_conv2d_s8_mve_run(): two windows, rounded up to 16 bytes each. */
int32_t mnmcu_conv2d_s8_mve_get_buffer_size(const mnmcu_conv2d_params_t *params);

/**
 * mnmcu_lut_s8_run(), a word (DSP) or sixteen lanes (Helium) at a time
 * (mnmcu_elementwise_dsp.c); output may equal input.
 */
mnmcu_status_t mnmcu_lut_s8_dsp_run(const mnmcu_lut_params_t *params, const int8_t *input,
                                    const int8_t *table, int8_t *output);

/**
 * mnmcu_mean_s8_run() with channel sums in SIMD lanes (mnmcu_elementwise_dsp.c);
 * the multiplier must be >= 0, the shift in [-31, -1], the input offset in
 * [-128, 128] and H * W below 2^22.
 */
mnmcu_status_t mnmcu_mean_s8_dsp_run(const mnmcu_mean_params_t *params, const int8_t *input,
                                     int8_t *output);

/**
 * mnmcu_add_s8_tables_run() with the fast requantisation
 * (mnmcu_elementwise_dsp.c); the output shift must be in [-22, -1].
 */
mnmcu_status_t mnmcu_add_s8_tables_dsp_run(const mnmcu_add_tables_params_t *params,
                                           const int8_t *input1, const int8_t *input2,
                                           const int32_t *table1, const int32_t *table2,
                                           int8_t *output);

/**
 * mnmcu_mul_channels_s8_run() with the fast requantisation
 * (mnmcu_elementwise_dsp.c); the output shift must be in [-22, -1] and the
 * output offset in [-128, 127]. Output may equal input.
 */
mnmcu_status_t mnmcu_mul_channels_s8_dsp_run(const mnmcu_mul_channels_params_t *params,
                                             const int8_t *input, const int8_t *scale,
                                             int8_t *output);

#ifdef __cplusplus
}
#endif

#endif /* MNMCU_KERNELS_FAST_H */
