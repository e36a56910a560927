/*
 * mnmcu_elementwise_dsp.c - the ops around the convolutions, fast: table
 * lookups (HARD_SWISH and the other functions of one int8 input), MEAN over
 * H and W, ADD of two same-shaped tensors and MUL by one value per channel.
 *
 * Each function is bit-exact with its portable counterpart: mnmcu_lut_s8_run(),
 * mnmcu_mean_s8_run(), mnmcu_add_s8_tables_run(), mnmcu_mul_channels_s8_run().
 * mnmcu.emit.aot checks the preconditions below before it picks them.
 *
 * Cortex-M4/M7 (DSP extension): lookups read and write a word per four
 * values; MEAN sums two channels per register in int16 halves (SXTAB16),
 * moved to int32 every MEAN_RUN pixels before they can overflow; MUL
 * multiplies int16 halves (SMULBB/SMULTT) and requantises with
 * mnmcu_requant_pre2(); ADD uses mnmcu_requant_pre().
 *
 * Cortex-M55 (Helium, MNMCU_HAVE_MVE): lookups are one 16-lane gather load
 * (VLDRB gather); MEAN accumulates sixteen channels in four int32 vectors;
 * MUL multiplies sixteen values as int16 into four int32 vectors (VMULLB/T),
 * requantises each and narrows back with saturation; ADD gathers each
 * input's scaled value from its table four lanes at a time. The vector
 * requantisation (VQRDMULH, sign correction, VRSHL) equals MBQM for any
 * int32 accumulator when the multiplier is >= 0 and the shift in [-31, -1]
 * (see mnmcu_mve.h). Narrowing with saturation is exact here because every
 * value before its output offset lies within [-2^15, 2^15] and saturation is
 * monotonic: a value past an int16 bound stays past the int8 bound after an
 * offset of magnitude <= 128.
 *
 * Preconditions: the requantisation shift in [-22, -1] for ADD and MUL (the
 * ADD accumulator is the sum of two scaled inputs, each below 2^28 in
 * magnitude; the MUL accumulator is a product of two values in [-256, 256]),
 * in [-31, -1] for MEAN, whose sum of H * W values must stay below 2^30 in
 * magnitude (H * W < 2^22).
 */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("O2")
#endif
#include "mnmcu_dsp.h"
#include "mnmcu_kernels_fast.h"
#include "mnmcu_mve.h"

/* Pixels a MEAN sums in int16 halves: 255 * 128 < 2^15. */
#define MEAN_RUN 255
/* Largest H * W of the fast MEAN: the sum stays below 2^30 in magnitude. */
#define MEAN_MAX_COUNT ((1 << 22) - 1)

static int fast_shift(int32_t multiplier, int32_t shift)
{
    return multiplier >= 0 && shift >= -22 && shift <= -1;
}

/* ------------------------------------------------------------------------ */
/* Table lookups                                                            */
/* ------------------------------------------------------------------------ */

#if MNMCU_HAVE_MVE
static void lut_run(const int8_t *in, const int8_t *table, int8_t *out, int32_t size)
{
    /* The table's index of x is x + 128, i.e. the byte x ^ 0x80. */
    const uint8x16_t flip = vdupq_n_u8(0x80);
    for (; size >= 16; size -= 16) {
        const uint8x16_t x = vld1q_u8((const uint8_t *)in);
        vst1q_s8(out, vldrbq_gather_offset_s8(table, veorq_u8(x, flip)));
        in += 16;
        out += 16;
    }
    if (size > 0) {
        const mve_pred16_t p = vctp8q((uint32_t)size);
        const uint8x16_t x = vldrbq_z_u8((const uint8_t *)in, p);
        vstrbq_p_s8(out, vldrbq_gather_offset_s8(table, veorq_u8(x, flip)), p);
    }
}
#else
/* Four table bytes for the four int8 of word w, stored at o. */
#define LUT_WORD(o, w)                     \
    do {                                   \
        (o)[0] = t[(int8_t)(w)];           \
        (o)[1] = t[(int8_t)((w) >> 8)];    \
        (o)[2] = t[(int8_t)((w) >> 16)];   \
        (o)[3] = t[(w) >> 24];             \
    } while (0)

static void lut_run(const int8_t *in, const int8_t *table, int8_t *out, int32_t size)
{
    const int8_t *const t = table + 128;
    const int8_t *const end = in + (size & ~15);
    /* Four words read per pass before any store, so out may equal in. */
    while (in < end) {
        const int32_t a = mnmcu_read_s8x4(in);
        const int32_t b = mnmcu_read_s8x4(in + 4);
        const int32_t c = mnmcu_read_s8x4(in + 8);
        const int32_t d = mnmcu_read_s8x4(in + 12);
        LUT_WORD(out, a);
        LUT_WORD(out + 4, b);
        LUT_WORD(out + 8, c);
        LUT_WORD(out + 12, d);
        in += 16;
        out += 16;
    }
    for (size &= 15; size >= 4; size -= 4) {
        const int32_t a = mnmcu_read_s8x4(in);
        LUT_WORD(out, a);
        in += 4;
        out += 4;
    }
    for (; size > 0; --size) {
        *out++ = t[*in++];
    }
}
#undef LUT_WORD
#endif

mnmcu_status_t mnmcu_lut_s8_dsp_run(const mnmcu_lut_params_t *params, const int8_t *input,
                                    const int8_t *table, int8_t *output)
{
    if (params == NULL || input == NULL || table == NULL || output == NULL || params->size < 0) {
        return MNMCU_ERR_ARG;
    }
    lut_run(input, table, output, params->size);
    return MNMCU_OK;
}

/* ------------------------------------------------------------------------ */
/* MEAN over H and W                                                        */
/* ------------------------------------------------------------------------ */

typedef struct {
    int32_t count;         /* H * W */
    int32_t channels;
    int32_t sum_offset;    /* input_offset * count */
    int32_t output_offset;
    int32_t multiplier;
    int32_t shift;
} mean_consts_t;

#if MNMCU_HAVE_MVE
/* The sums of sixteen channels from c on, requantised into out + c. */
MNMCU_INLINE void mean_store(int8_t *out, int32x4_t a0, int32x4_t a1, int32x4_t a2,
                             int32x4_t a3, const mean_consts_t *k, mve_pred16_t p0,
                             mve_pred16_t p1, mve_pred16_t p2, mve_pred16_t p3)
{
    vstrbq_p_s32(out, mnmcu_output1_mve(a0, k->multiplier, k->shift, k->output_offset,
                                        INT8_MIN, INT8_MAX), p0);
    vstrbq_p_s32(out + 4, mnmcu_output1_mve(a1, k->multiplier, k->shift, k->output_offset,
                                            INT8_MIN, INT8_MAX), p1);
    vstrbq_p_s32(out + 8, mnmcu_output1_mve(a2, k->multiplier, k->shift, k->output_offset,
                                            INT8_MIN, INT8_MAX), p2);
    vstrbq_p_s32(out + 12, mnmcu_output1_mve(a3, k->multiplier, k->shift, k->output_offset,
                                             INT8_MIN, INT8_MAX), p3);
}

/* Sixteen channels at a time, the last block predicated, in four int32 vectors. */
static void mean_batch(const int8_t *in, int8_t *out, const mean_consts_t *k)
{
    int32_t c, i;
    for (c = 0; c + 16 <= k->channels; c += 16) {
        int32x4_t a0 = vdupq_n_s32(k->sum_offset), a1 = a0, a2 = a0, a3 = a0;
        const int8_t *q = in + c;
        for (i = 0; i < k->count; ++i) {
            a0 = vaddq_s32(a0, vldrbq_s32(q));
            a1 = vaddq_s32(a1, vldrbq_s32(q + 4));
            a2 = vaddq_s32(a2, vldrbq_s32(q + 8));
            a3 = vaddq_s32(a3, vldrbq_s32(q + 12));
            q += k->channels;
        }
        mean_store(out + c, a0, a1, a2, a3, k, 0xFFFF, 0xFFFF, 0xFFFF, 0xFFFF);
    }
    if (c < k->channels) {
        const int32_t left = k->channels - c;
        const mve_pred16_t p0 = vctp32q((uint32_t)left);
        const mve_pred16_t p1 = vctp32q((uint32_t)(left > 4 ? left - 4 : 0));
        const mve_pred16_t p2 = vctp32q((uint32_t)(left > 8 ? left - 8 : 0));
        const mve_pred16_t p3 = vctp32q((uint32_t)(left > 12 ? left - 12 : 0));
        int32x4_t a0 = vdupq_n_s32(k->sum_offset), a1 = a0, a2 = a0, a3 = a0;
        const int8_t *q = in + c;
        for (i = 0; i < k->count; ++i) {
            a0 = vaddq_s32(a0, vldrbq_z_s32(q, p0));
            a1 = vaddq_s32(a1, vldrbq_z_s32(q + 4, p1));
            a2 = vaddq_s32(a2, vldrbq_z_s32(q + 8, p2));
            a3 = vaddq_s32(a3, vldrbq_z_s32(q + 12, p3));
            q += k->channels;
        }
        mean_store(out + c, a0, a1, a2, a3, k, p0, p1, p2, p3);
    }
}
#else
static int8_t mean_output(int32_t sum, const mean_consts_t *k)
{
    return (int8_t)mnmcu_ssat8(mnmcu_requant_fast(sum + k->sum_offset, k->multiplier, k->shift) +
                               k->output_offset);
}

/* Sums of `width` (8 or 4) channels from c on, over all pixels, into s[]:
 * channel pairs (0, 2), (1, 3), (4, 6), (5, 7) in int16 halves. */
static void mean_sums(const int8_t *in, int32_t c, int32_t width, const mean_consts_t *k,
                      int32_t s[8])
{
    const int8_t *q = in + c;
    int32_t left = k->count;
    int32_t j;
    for (j = 0; j < 8; ++j) {
        s[j] = 0;
    }
    while (left > 0) {
        int32_t n = left < MEAN_RUN ? left : MEAN_RUN;
        int32_t a02 = 0, a13 = 0, a46 = 0, a57 = 0;
        left -= n;
        if (width == 8) {
            do {
                const int32_t w0 = mnmcu_read_s8x4(q);
                const int32_t w1 = mnmcu_read_s8x4(q + 4);
                a02 = mnmcu_sxtab16(a02, w0);
                a13 = mnmcu_sxtab16_ror8(a13, w0);
                a46 = mnmcu_sxtab16(a46, w1);
                a57 = mnmcu_sxtab16_ror8(a57, w1);
                q += k->channels;
            } while (--n > 0);
        } else {
            do {
                const int32_t w0 = mnmcu_read_s8x4(q);
                a02 = mnmcu_sxtab16(a02, w0);
                a13 = mnmcu_sxtab16_ror8(a13, w0);
                q += k->channels;
            } while (--n > 0);
        }
        s[0] += (int16_t)(uint16_t)((uint32_t)a02 & 0xFFFFu);
        s[1] += (int16_t)(uint16_t)((uint32_t)a13 & 0xFFFFu);
        s[2] += (int16_t)(uint16_t)((uint32_t)a02 >> 16);
        s[3] += (int16_t)(uint16_t)((uint32_t)a13 >> 16);
        s[4] += (int16_t)(uint16_t)((uint32_t)a46 & 0xFFFFu);
        s[5] += (int16_t)(uint16_t)((uint32_t)a57 & 0xFFFFu);
        s[6] += (int16_t)(uint16_t)((uint32_t)a46 >> 16);
        s[7] += (int16_t)(uint16_t)((uint32_t)a57 >> 16);
    }
}

static void mean_batch(const int8_t *in, int8_t *out, const mean_consts_t *k)
{
    int32_t s[8];
    int32_t c = 0, j;
    for (; c + 8 <= k->channels; c += 8) {
        mean_sums(in, c, 8, k, s);
        for (j = 0; j < 8; ++j) {
            out[c + j] = mean_output(s[j], k);
        }
    }
    if (c + 4 <= k->channels) {
        mean_sums(in, c, 4, k, s);
        for (j = 0; j < 4; ++j) {
            out[c + j] = mean_output(s[j], k);
        }
        c += 4;
    }
    for (; c < k->channels; ++c) {
        const int8_t *q = in + c;
        int32_t sum = 0, i;
        for (i = 0; i < k->count; ++i) {
            sum += *q;
            q += k->channels;
        }
        out[c] = mean_output(sum, k);
    }
}
#endif

mnmcu_status_t mnmcu_mean_s8_dsp_run(const mnmcu_mean_params_t *params, const int8_t *input,
                                     int8_t *output)
{
    const mnmcu_dims_t *in;
    mean_consts_t k;
    int32_t batch;
    if (params == NULL || input == NULL || output == NULL) {
        return MNMCU_ERR_ARG;
    }
    in = &params->input;
    if (!mnmcu_dims_valid(in) || params->multiplier < 0 || params->shift < -31 ||
        params->shift > -1 || params->input_offset < -128 || params->input_offset > 128 ||
        (int64_t)in->h * in->w > MEAN_MAX_COUNT) {
        return MNMCU_ERR_ARG;
    }
    k.count = in->h * in->w;
    k.channels = in->c;
    k.sum_offset = params->input_offset * k.count;
    k.output_offset = params->output_offset;
    k.multiplier = params->multiplier;
    k.shift = params->shift;
    for (batch = 0; batch < in->n; ++batch) {
        mean_batch(input + (int64_t)batch * k.count * k.channels,
                   output + (int64_t)batch * k.channels, &k);
    }
    return MNMCU_OK;
}

/* ------------------------------------------------------------------------ */
/* ADD of two same-shaped tensors                                           */
/* ------------------------------------------------------------------------ */

#if MNMCU_HAVE_MVE
/* Each input's scaled value for four int8 (as int32, -128..127) from its table. */
MNMCU_INLINE int32x4_t add_scaled(const int32_t *t1, const int32_t *t2, int32x4_t x1,
                                  int32x4_t x2)
{
    const uint32x4_t i1 = vreinterpretq_u32_s32(vaddq_n_s32(x1, 128));
    const uint32x4_t i2 = vreinterpretq_u32_s32(vaddq_n_s32(x2, 128));
    return vaddq_s32(vldrwq_gather_shifted_offset_s32(t1, i1),
                     vldrwq_gather_shifted_offset_s32(t2, i2));
}

static void add_tables(const int8_t *in1, const int8_t *in2, const int32_t *t1,
                       const int32_t *t2, int8_t *out, int32_t size, int32_t multiplier,
                       int32_t shift, int32_t output_offset, int32_t act_min, int32_t act_max)
{
    for (; size >= 4; size -= 4) {
        const int32x4_t acc = add_scaled(t1, t2, vldrbq_s32(in1), vldrbq_s32(in2));
        vstrbq_s32(out,
                   mnmcu_output1_mve(acc, multiplier, shift, output_offset, act_min, act_max));
        in1 += 4;
        in2 += 4;
        out += 4;
    }
    if (size > 0) {
        /* Inactive lanes load 0: index 128, inside the table. */
        const mve_pred16_t p = vctp32q((uint32_t)size);
        const int32x4_t acc =
            add_scaled(t1, t2, vldrbq_z_s32(in1, p), vldrbq_z_s32(in2, p));
        vstrbq_p_s32(out,
                     mnmcu_output1_mve(acc, multiplier, shift, output_offset, act_min, act_max),
                     p);
    }
}
#else
/* The loop for the whole int8 range, on its own so that every constant stays
 * in a register. */
static __attribute__((noinline)) void add_tables_full(const int8_t *in1, const int8_t *in2,
                                                      const int32_t *t1, const int32_t *t2,
                                                      int8_t *out, int32_t size,
                                                      mnmcu_requant_t rq)
{
    const int32_t multiplier = rq.multiplier, round = rq.round, exponent = rq.exponent;
    const int8_t *const end = in1 + size;
    while (in1 < end) {
        const int32_t acc = t1[*in1++] + t2[*in2++];
        *out++ = (int8_t)mnmcu_ssat8(
            mnmcu_smmlar(acc * 2, multiplier, round + (acc >> 31)) >> exponent);
    }
}

static void add_tables(const int8_t *in1, const int8_t *in2, const int32_t *t1,
                       const int32_t *t2, int8_t *out, int32_t size, int32_t multiplier,
                       int32_t shift, int32_t output_offset, int32_t act_min, int32_t act_max)
{
    const mnmcu_requant_t rq = mnmcu_requant_prepare(multiplier, shift, output_offset);
    int32_t i;
    t1 += 128;
    t2 += 128;
    if (mnmcu_act_full(act_min, act_max)) {
        add_tables_full(in1, in2, t1, t2, out, size, rq);
        return;
    }
    for (i = 0; i < size; ++i) {
        out[i] = mnmcu_output_pre(t1[in1[i]] + t2[in2[i]], &rq, act_min, act_max, 0);
    }
}
#endif

mnmcu_status_t mnmcu_add_s8_tables_dsp_run(const mnmcu_add_tables_params_t *params,
                                           const int8_t *input1, const int8_t *input2,
                                           const int32_t *table1, const int32_t *table2,
                                           int8_t *output)
{
    if (params == NULL || input1 == NULL || input2 == NULL || table1 == NULL || table2 == NULL ||
        output == NULL || params->size < 0 ||
        !mnmcu_act_valid(params->act_min, params->act_max) ||
        !fast_shift(params->output_multiplier, params->output_shift)) {
        return MNMCU_ERR_ARG;
    }
    /* Copies: stores through int8_t may alias *params, which would be read again. */
    add_tables(input1, input2, table1, table2, output, params->size, params->output_multiplier,
               params->output_shift, params->output_offset, params->act_min, params->act_max);
    return MNMCU_OK;
}

/* ------------------------------------------------------------------------ */
/* MUL of a feature map by one value per channel                            */
/* ------------------------------------------------------------------------ */

typedef struct {
    int32_t pixels;
    int32_t channels;
    int32_t input_offset;
    int32_t scale_offset;
    int32_t output_offset;
    int32_t multiplier;
    int32_t shift;
} mul_consts_t;

#if MNMCU_HAVE_MVE
/* MBQM of four products (multiplier >= 0, shift in [-31, -1]). */
MNMCU_INLINE int32x4_t mul_requant(int32x4_t acc, int32_t multiplier, int32_t shift)
{
    int32x4_t v = vqrdmulhq_n_s32(acc, multiplier);
    v = vaddq_s32(v, vshrq_n_s32(v, 31));
    return vrshlq_n_s32(v, shift);
}

/* Sixteen products of the even (e) and odd (o) values' int16 x + offset and
 * scale + offset, requantised, offset and saturated to int8 in their order.
 * Values 4j, 4j + 2 come from the even halves, 4j + 1, 4j + 3 from the odd;
 * each lies within [-2^15, 2^15] after requantisation (|product| <= 2^16,
 * shift <= -1). The narrowing moves fill one half of the lanes each, so the
 * lanes they keep need no initial value. */
MNMCU_INLINE int8x16_t mul16(int16x8_t xe, int16x8_t xo, int16x8_t se, int16x8_t so,
                             const mul_consts_t *k)
{
    const int32x4_t v0 = mul_requant(vmullbq_int_s16(xe, se), k->multiplier, k->shift);
    const int32x4_t v2 = mul_requant(vmulltq_int_s16(xe, se), k->multiplier, k->shift);
    const int32x4_t v1 = mul_requant(vmullbq_int_s16(xo, so), k->multiplier, k->shift);
    const int32x4_t v3 = mul_requant(vmulltq_int_s16(xo, so), k->multiplier, k->shift);
    int16x8_t even = vqmovntq_s32(vqmovnbq_s32(vreinterpretq_s16_s32(v0), v0), v2);
    int16x8_t odd = vqmovntq_s32(vqmovnbq_s32(vreinterpretq_s16_s32(v1), v1), v3);
    even = vqaddq_n_s16(even, (int16_t)k->output_offset);
    odd = vqaddq_n_s16(odd, (int16_t)k->output_offset);
    return vqmovntq_s16(vqmovnbq_s16(vreinterpretq_s8_s16(even), even), odd);
}

/* Sixteen channels at a time down all pixels, the last block predicated; the
 * outputs saturated to int8, so whole-range activations need no clamp. */
static void mul_channels(const int8_t *in, const int8_t *scale, int8_t *out,
                         const mul_consts_t *k)
{
    const int32_t stride = k->channels;
    const int16_t in_off = (int16_t)k->input_offset, s_off = (int16_t)k->scale_offset;
    int32_t c, p;
    for (c = 0; c + 16 <= stride; c += 16) {
        const int8x16_t s = vld1q_s8(scale + c);
        /* Even and odd channels' scale + offset, in [-256, 256]. */
        const int16x8_t se = vaddq_n_s16(vmovlbq_s8(s), s_off);
        const int16x8_t so = vaddq_n_s16(vmovltq_s8(s), s_off);
        const int8_t *q = in + c;
        int8_t *o = out + c;
        for (p = 0; p < k->pixels; ++p) {
            const int8x16_t x = vld1q_s8(q);
            vst1q_s8(o, mul16(vaddq_n_s16(vmovlbq_s8(x), in_off),
                              vaddq_n_s16(vmovltq_s8(x), in_off), se, so, k));
            q += stride;
            o += stride;
        }
    }
    if (c < stride) {
        const mve_pred16_t pc = vctp8q((uint32_t)(stride - c));
        const int8x16_t s = vldrbq_z_s8(scale + c, pc);
        const int16x8_t se = vaddq_n_s16(vmovlbq_s8(s), s_off);
        const int16x8_t so = vaddq_n_s16(vmovltq_s8(s), s_off);
        const int8_t *q = in + c;
        int8_t *o = out + c;
        for (p = 0; p < k->pixels; ++p) {
            const int8x16_t x = vldrbq_z_s8(q, pc);
            vstrbq_p_s8(o, mul16(vaddq_n_s16(vmovlbq_s8(x), in_off),
                                 vaddq_n_s16(vmovltq_s8(x), in_off), se, so, k), pc);
            q += stride;
            o += stride;
        }
    }
}
#else
/* One output from its doubled product (mnmcu_requant_pre2()), saturated to int8. */
#define MUL_OUT(acc2) \
    ((int8_t)mnmcu_ssat8(mnmcu_requant_pre2((acc2), multiplier, round, exponent)))

/* Four channels at a time down all pixels, the rest one at a time; the
 * outputs saturated to int8, so whole-range activations need no clamp. */
static __attribute__((noinline)) void mul_channels(const int8_t *in, const int8_t *scale,
                                                   int8_t *out, const mul_consts_t *k)
{
    const mnmcu_requant_t rq =
        mnmcu_requant_prepare(k->multiplier, k->shift, k->output_offset);
    const int32_t multiplier = rq.multiplier, round = rq.round, exponent = rq.exponent;
    const int32_t stride = k->channels, pixels = k->pixels;
    const int32_t span = pixels * stride;
    /* The input offset in both int16 halves: x + offset is within [-256, 255]. */
    const int32_t offsets = (int32_t)(((uint32_t)k->input_offset & 0xFFFFu) * 0x10001u);
    int32_t c = 0, p;
    for (; c + 4 <= stride; c += 4) {
        /* 2 * (scale + offset) of channels (0, 2) and (1, 3), in [-512, 512]. */
        const int32_t s02 = mnmcu_pack_lo(2 * (scale[c] + k->scale_offset),
                                          2 * (scale[c + 2] + k->scale_offset));
        const int32_t s13 = mnmcu_pack_lo(2 * (scale[c + 1] + k->scale_offset),
                                          2 * (scale[c + 3] + k->scale_offset));
        const int8_t *q = in + c;
        const int8_t *const end = q + span;
        int8_t *o = out + c;
        /* The pointers count the pixels: no counter to keep. */
        for (; q < end; q += stride, o += stride) {
            const int32_t w = mnmcu_read_s8x4(q);
            const int32_t x02 = mnmcu_sxtab16(offsets, w);
            const int32_t x13 = mnmcu_sxtab16_ror8(offsets, w);
            const int32_t a0 = mnmcu_smulbb(x02, s02);
            const int32_t a1 = mnmcu_smulbb(x13, s13);
            const int32_t a2 = mnmcu_smultt(x02, s02);
            const int32_t a3 = mnmcu_smultt(x13, s13);
            o[0] = MUL_OUT(a0);
            o[1] = MUL_OUT(a1);
            o[2] = MUL_OUT(a2);
            o[3] = MUL_OUT(a3);
        }
    }
    for (; c < stride; ++c) {
        const int32_t s2 = 2 * (scale[c] + k->scale_offset);
        const int8_t *q = in + c;
        int8_t *o = out + c;
        for (p = 0; p < pixels; ++p) {
            *o = MUL_OUT((*q + k->input_offset) * s2);
            q += stride;
            o += stride;
        }
    }
}
#undef MUL_OUT
#endif

mnmcu_status_t mnmcu_mul_channels_s8_dsp_run(const mnmcu_mul_channels_params_t *params,
                                             const int8_t *input, const int8_t *scale,
                                             int8_t *output)
{
    mul_consts_t k;
    int32_t act_min, act_max;
    if (params == NULL || input == NULL || scale == NULL || output == NULL ||
        params->pixels <= 0 || params->channels <= 0 ||
        (int64_t)params->pixels * params->channels > INT32_MAX ||
        params->input_offset < -128 || params->input_offset > 128 ||
        params->scale_offset < -128 || params->scale_offset > 128 ||
        params->output_offset < -128 || params->output_offset > 127 ||
        !mnmcu_act_valid(params->act_min, params->act_max) ||
        !fast_shift(params->output_multiplier, params->output_shift)) {
        return MNMCU_ERR_ARG;
    }
    /* Copies: stores through int8_t may alias *params, which would be read again. */
    k.pixels = params->pixels;
    k.channels = params->channels;
    k.input_offset = params->input_offset;
    k.scale_offset = params->scale_offset;
    k.output_offset = params->output_offset;
    k.multiplier = params->output_multiplier;
    k.shift = params->output_shift;
    act_min = params->act_min;
    act_max = params->act_max;
    mul_channels(input, scale, output, &k);
    if (!mnmcu_act_full(act_min, act_max)) {
        mnmcu_clamp_s8(output, k.pixels * k.channels, act_min, act_max);
    }
    return MNMCU_OK;
}
