/*
 * mnmcu_conv_dsp.c - fast CONV_2D for cores with the Arm DSP extension (see
 * mnmcu_kernels_fast.h for the layouts it takes).
 *
 * Bit-exact with mnmcu_conv.c: int32 sums are exact in any order, so only
 * the way the accumulators are summed differs; requantisation is
 * mnmcu_requant_pre2() of a doubled accumulator, equal to the portable one
 * under the conditions mnmcu.emit.aot checks before choosing these kernels
 * (mnmcu_dsp.h). Outputs are saturated to int8 with SSAT; a narrower
 * activation range is clamped afterwards, four outputs per word.
 */
/* The hot loops of the runtime: compiled for speed also in -Os builds. */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("O2")
#endif
#include "mnmcu_kernels_fast.h"
#include "mnmcu_dsp.h"

static int conv_args_valid(const mnmcu_conv2d_params_t *params, const void *input,
                           const void *filter, const void *bias, const void *output)
{
    return params != NULL && input != NULL && filter != NULL && bias != NULL &&
           output != NULL && params->multiplier != NULL && params->shift != NULL &&
           mnmcu_dims_valid(&params->input) && mnmcu_dims_valid(&params->filter) &&
           mnmcu_dims_valid(&params->output) &&
           mnmcu_act_valid(params->act_min, params->act_max);
}

static int conv_shapes_valid(const mnmcu_conv2d_params_t *params)
{
    const mnmcu_dims_t *in = &params->input;
    const mnmcu_dims_t *od = &params->output;
    return params->filter.c == in->c && od->c == params->filter.n && od->n == in->n &&
           params->stride_h >= 1 && params->stride_w >= 1 && params->dilation_h >= 1 &&
           params->dilation_w >= 1 && params->pad_h >= 0 && params->pad_w >= 0;
}

/* ---- three pixels, every output channel ---------------------------------- */

/*
 * The convolutions multiply three pixels (or windows) at a time with every
 * pair of output channels. The pixels are expanded once into int16, four
 * values per 24 bytes: pixel 0's values (0, 2) and (1, 3) as two words, then
 * pixel 1's, then pixel 2's. Per output channel pair the kernel keeps six
 * accumulators in registers and reads each group's eight int8 weights with
 * one LDRD and extends them with SXTB16 (the pixels are then doubled: 2 * x
 * fits int16), or reads them as int16 pairs already doubled with two LDRD
 * (the "wide" layout, for layers with many output pixels); either way the six
 * sums are doubled and requantised with mnmcu_requant_pre2() before the next
 * pair. The loop does four groups per pass.
 */

/* Words per pair of output channels in the prepared constants. */
#define PAIR_WORDS 8

/* What the conv3_pairs*() functions work on (field offsets are used by their assembly). */
typedef struct {
    const int32_t *x;     /* 0: three expanded pixels */
    const int32_t *x_end; /* 4: x + 6 * groups (groups >= 1) */
    const int8_t *w;      /* 8: pair-interleaved weights of the first pair */
    const int32_t *pair;  /* 12: prepared constants of the first pair */
    int8_t *out;          /* 16: pixel 0's output, channel 2 * first pair */
    int32_t stride;       /* 20: bytes from one pixel's outputs to the next pixel's */
    int32_t pairs;        /* 24: pairs to compute, >= 1 */
    int32_t skip;         /* 28: (4 - groups % 4) % 4, groups the first pass leaves out */
    int32_t wide;         /* weights as int16 pairs (16 bytes per group) instead of int8 */
} conv3_t;

/*
 * Prepared constants of output channels (2j, 2j + 1), PAIR_WORDS words:
 * both doubled biases, both multipliers, both rounding terms (with the output
 * offset, see mnmcu_requant_prepare()) and both exponents.
 */
static void prepare_pairs(const mnmcu_conv2d_params_t *params, const int32_t *bias,
                          int32_t *pair)
{
    const int32_t channels = params->output.c;
    int32_t c;
    for (c = 0; c < channels + (channels & 1); ++c) {
        int32_t *p = pair + (c >> 1) * PAIR_WORDS + (c & 1);
        mnmcu_requant_t rq = {0, 0, 1};
        if (c < channels) {
            rq = mnmcu_requant_prepare(params->multiplier[c], params->shift[c],
                                       params->output_offset);
        }
        p[0] = c < channels ? bias[c] * 2 : 0;
        p[2] = rq.multiplier;
        p[4] = rq.round;
        p[6] = rq.exponent;
    }
}

/* One pair of output channels of three pixels; only channel 2j when !both. */
static void conv3_pair_c(const conv3_t *ctx, const int8_t *w, const int32_t *pair, int8_t *out,
                         int both)
{
    int32_t acc[3][2];
    const int32_t *x;
    int32_t p, k;
    for (p = 0; p < 3; ++p) {
        acc[p][0] = pair[0];
        acc[p][1] = pair[1];
    }
    for (x = ctx->x; x < ctx->x_end; x += 6) {
        int32_t wa0, wa1, wb0, wb1;
        if (ctx->wide) {
            wa0 = mnmcu_read_s8x4(w);
            wa1 = mnmcu_read_s8x4(w + 4);
            wb0 = mnmcu_read_s8x4(w + 8);
            wb1 = mnmcu_read_s8x4(w + 12);
            w += 16;
        } else {
            const int32_t wa = mnmcu_read_s8x4(w), wb = mnmcu_read_s8x4(w + 4);
            wa0 = mnmcu_sxtb16(wa);
            wa1 = mnmcu_sxtb16_ror8(wa);
            wb0 = mnmcu_sxtb16(wb);
            wb1 = mnmcu_sxtb16_ror8(wb);
            w += 8;
        }
        for (p = 0; p < 3; ++p) {
            acc[p][0] = mnmcu_smlad(x[2 * p + 1], wa1, mnmcu_smlad(x[2 * p], wa0, acc[p][0]));
            acc[p][1] = mnmcu_smlad(x[2 * p + 1], wb1, mnmcu_smlad(x[2 * p], wb0, acc[p][1]));
        }
    }
    for (p = 0; p < 3; ++p) {
        for (k = 0; k < 1 + both; ++k) {
            out[p * ctx->stride + k] = (int8_t)mnmcu_ssat8(
                mnmcu_requant_pre2(acc[p][k], pair[2 + k], pair[4 + k], pair[6 + k]));
        }
    }
}

#if MNMCU_HAVE_DSP
/*
 * conv3_pair_c() over ctx->pairs pairs, in assembly: the six accumulators
 * (r0-r5), four extended weights (r6-r9), a pixel's two words (r10, r11), the
 * pixel pointer (r12) and the weight pointer (lr) take every register; the
 * rest of the state lives in a copy of *ctx on the stack.
 */
#define MNMCU_CONV3_GROUP                                                                      \
    "ldrd r6, r8, [lr], #8\n\t"                                                                \
    "sxtb16 r7, r6, ror #8\n\t"                                                                \
    "sxtb16 r6, r6\n\t"                                                                        \
    "sxtb16 r9, r8, ror #8\n\t"                                                                \
    "sxtb16 r8, r8\n\t"                                                                        \
    "ldrd r10, r11, [r12], #8\n\t"                                                             \
    "smlad r0, r10, r6, r0\n\t"                                                                \
    "smlad r0, r11, r7, r0\n\t"                                                                \
    "smlad r1, r10, r8, r1\n\t"                                                                \
    "smlad r1, r11, r9, r1\n\t"                                                                \
    "ldrd r10, r11, [r12], #8\n\t"                                                             \
    "smlad r2, r10, r6, r2\n\t"                                                                \
    "smlad r2, r11, r7, r2\n\t"                                                                \
    "smlad r3, r10, r8, r3\n\t"                                                                \
    "smlad r3, r11, r9, r3\n\t"                                                                \
    "ldrd r10, r11, [r12], #8\n\t"                                                             \
    "smlad r4, r10, r6, r4\n\t"                                                                \
    "smlad r4, r11, r7, r4\n\t"                                                                \
    "smlad r5, r10, r8, r5\n\t"                                                                \
    "smlad r5, r11, r9, r5\n\t"
/* The same with the weights already int16 pairs. */
#define MNMCU_CONV3_GROUP_WIDE                                                                 \
    "ldrd r6, r7, [lr], #8\n\t"                                                                \
    "ldrd r8, r9, [lr], #8\n\t"                                                                \
    "ldrd r10, r11, [r12], #8\n\t"                                                             \
    "smlad r0, r10, r6, r0\n\t"                                                                \
    "smlad r0, r11, r7, r0\n\t"                                                                \
    "smlad r1, r10, r8, r1\n\t"                                                                \
    "smlad r1, r11, r9, r1\n\t"                                                                \
    "ldrd r10, r11, [r12], #8\n\t"                                                             \
    "smlad r2, r10, r6, r2\n\t"                                                                \
    "smlad r2, r11, r7, r2\n\t"                                                                \
    "smlad r3, r10, r8, r3\n\t"                                                                \
    "smlad r3, r11, r9, r3\n\t"                                                                \
    "ldrd r10, r11, [r12], #8\n\t"                                                             \
    "smlad r4, r10, r6, r4\n\t"                                                                \
    "smlad r4, r11, r7, r4\n\t"                                                                \
    "smlad r5, r10, r8, r5\n\t"                                                                \
    "smlad r5, r11, r9, r5\n\t"
/* Requantise accumulator a with multiplier m, rounding term r, exponent e. */
#define MNMCU_CONV3_REQUANT(a, m, r, e)                                                        \
    "add r12, " r ", " a ", asr #31\n\t"                                                       \
    "smmlar " a ", " a ", " m ", r12\n\t"                                                      \
    "asr " a ", " a ", " e "\n\t"                                                              \
    "ssat " a ", #8, " a "\n\t"
/*
 * conv3_pair_c() over ctx->pairs pairs, GROUP: one group of four values,
 * ENTRY: nothing where the groups are a multiple of four, else the table
 * branch past skip groups.
 */
#define MNMCU_CONV3_FN(name, GROUP, ENTRY)                                                        \
    __attribute__((naked, noinline)) static void name(const conv3_t *ctx __attribute__((unused)))  \
    {                                                                                              \
        __asm__(                                                                                   \
            "push {r4-r11, lr}\n\t"                                                                \
            "sub sp, sp, #32\n\t"                                                                  \
            /* Frame: 0 x, 4 x_end, 8 w, 12 pair, 16 out, 20 stride, 24 pairs left, 28 skip. */    \
            "ldm r0, {r1-r8}\n\t"                                                                  \
            "stm sp, {r1-r8}\n\t"                                                                  \
            "ldr lr, [sp, #8]\n\t"                                                                 \
            "2:\n\t"                                                                               \
            "ldr r12, [sp, #12]\n\t"                                                               \
            "ldm r12!, {r0, r1}\n\t"                                                               \
            "str r12, [sp, #12]\n\t"                                                               \
            "mov r2, r0\n\t"                                                                       \
            "mov r3, r1\n\t"                                                                       \
            "mov r4, r0\n\t"                                                                       \
            "mov r5, r1\n\t"                                                                       \
            "ldr r12, [sp, #0]\n\t"                                                                \
            /* Four groups per pass; the first pass enters past skip of them. */                   \
            ENTRY                                                                                  \
            "1:\n\t" GROUP "5:\n\t" GROUP "6:\n\t" GROUP "7:\n\t" GROUP                            \
            "ldr r10, [sp, #4]\n\t"                                                                \
            "cmp r12, r10\n\t"                                                                     \
            "bne 1b\n\t"                                                                           \
            /* Multipliers r6 r7, rounding terms r8 r9, exponents r10 r11. */                      \
            "ldr r12, [sp, #12]\n\t"                                                               \
            "ldm r12!, {r6-r11}\n\t"                                                               \
            "str r12, [sp, #12]\n\t"                                                               \
            MNMCU_CONV3_REQUANT("r0", "r6", "r8", "r10")                                           \
            MNMCU_CONV3_REQUANT("r2", "r6", "r8", "r10")                                           \
            MNMCU_CONV3_REQUANT("r4", "r6", "r8", "r10")                                           \
            MNMCU_CONV3_REQUANT("r1", "r7", "r9", "r11")                                           \
            MNMCU_CONV3_REQUANT("r3", "r7", "r9", "r11")                                           \
            MNMCU_CONV3_REQUANT("r5", "r7", "r9", "r11")                                           \
            /* Outputs: pixel 0 at out, pixel 1 at out + stride, pixel 2 at out + 2 * stride. */   \
            "ldrd r12, r6, [sp, #16]\n\t"                                                          \
            "add r7, r12, r6\n\t"                                                                  \
            "strb r0, [r12]\n\t"                                                                   \
            "strb r1, [r12, #1]\n\t"                                                               \
            "strb r2, [r7]\n\t"                                                                    \
            "strb r3, [r7, #1]\n\t"                                                                \
            "strb r4, [r7, r6]\n\t"                                                                \
            "add r7, r7, r6\n\t"                                                                   \
            "strb r5, [r7, #1]\n\t"                                                                \
            "add r12, r12, #2\n\t"                                                                 \
            "ldr r7, [sp, #24]\n\t"                                                                \
            "str r12, [sp, #16]\n\t"                                                               \
            "subs r7, r7, #1\n\t"                                                                  \
            "str r7, [sp, #24]\n\t"                                                                \
            "bne 2b\n\t"                                                                           \
            "add sp, sp, #32\n\t"                                                                  \
            "pop {r4-r11, pc}\n\t");                                                               \
    }
#define MNMCU_CONV3_SKIP                                                                       \
    "ldr r7, [sp, #28]\n\t"                                                                    \
    "tbb [pc, r7]\n\t"                                                                         \
    "0:\n\t"                                                                                   \
    ".byte (1f - 0b) / 2, (5f - 0b) / 2, (6f - 0b) / 2, (7f - 0b) / 2\n\t"
MNMCU_CONV3_FN(conv3_pairs, MNMCU_CONV3_GROUP, MNMCU_CONV3_SKIP)
MNMCU_CONV3_FN(conv3_pairs_wide, MNMCU_CONV3_GROUP_WIDE, MNMCU_CONV3_SKIP)
MNMCU_CONV3_FN(conv3_pairs4, MNMCU_CONV3_GROUP, "")
MNMCU_CONV3_FN(conv3_pairs4_wide, MNMCU_CONV3_GROUP_WIDE, "")
#undef MNMCU_CONV3_GROUP
#undef MNMCU_CONV3_GROUP_WIDE
#undef MNMCU_CONV3_FN
#undef MNMCU_CONV3_SKIP
#undef MNMCU_CONV3_REQUANT
#endif

/*
 * Every output channel of the three expanded pixels at ctx->x; channels
 * 2 * ctx->pairs - 1 and up (an odd last channel) in C.
 */
static void conv3(conv3_t *ctx, int32_t channels)
{
    const int32_t full = channels >> 1;
    /* Weight bytes per pair: eight (sixteen as int16) per group of four values. */
    const int32_t pair_bytes = (int32_t)(ctx->x_end - ctx->x) / 6 * (ctx->wide ? 16 : 8);
#if MNMCU_HAVE_DSP
    if (full > 0) {
        ctx->pairs = full;
        if (ctx->skip == 0) {
            if (ctx->wide) {
                conv3_pairs4_wide(ctx);
            } else {
                conv3_pairs4(ctx);
            }
        } else if (ctx->wide) {
            conv3_pairs_wide(ctx);
        } else {
            conv3_pairs(ctx);
        }
    }
#else
    int32_t j;
    for (j = 0; j < full; ++j) {
        conv3_pair_c(ctx, ctx->w + j * pair_bytes, ctx->pair + j * PAIR_WORDS, ctx->out + 2 * j,
                     1);
    }
#endif
    if (channels & 1) {
        conv3_pair_c(ctx, ctx->w + full * pair_bytes, ctx->pair + full * PAIR_WORDS,
                     ctx->out + 2 * full, 0);
    }
}

/*
 * x as int16 pairs, bytes (0, 2) of a then bytes (1, 3), doubled (dbl) for
 * int8 weights; int16 weights are stored doubled instead.
 */
MNMCU_INLINE void expand_word_k(int32_t a, int32_t *dst, const int dbl)
{
    const int32_t even = mnmcu_sxtb16(a), odd = mnmcu_sxtb16_ror8(a);
    dst[0] = dbl ? mnmcu_sadd16(even, even) : even;
    dst[1] = dbl ? mnmcu_sadd16(odd, odd) : odd;
}

#define expand_word(a, dst) expand_word_k(a, dst, dbl)

/*
 * The values of three pixels (or windows) into the expanded layout (dst: group
 * 0; groups 6 words apart, pixel k's two words at 2k). A window is kh rows of
 * row_bytes contiguous values each, rows[k][ky] for pixel k: first every
 * row's whole words (row 0's, then row 1's, ...), then the rows' last
 * row_bytes % 4 values one after the other, zeros up to a multiple of four.
 * The generator orders the weights the same way (a 1x1 pixel is one row).
 */
MNMCU_INLINE void expand_windows_k(const int8_t *const *const *rows, int32_t kh,
                                   int32_t row_bytes, int32_t *dst, const int dbl)
{
    const int32_t full = row_bytes >> 2, left = row_bytes & 3;
    int32_t ky, k, i;
    if (kh == 3 && full == 2 && left == 1) {
        /* A 3x3 window of three channels (a first layer's RGB input), straight. */
        for (i = 0; i < 3; ++i) {
            const int8_t *r0 = rows[i][0], *r1 = rows[i][1], *r2 = rows[i][2];
            int32_t *d = dst + 2 * i;
            expand_word(mnmcu_read_s8x4(r0), d);
            expand_word(mnmcu_read_s8x4(r0 + 4), d + 6);
            expand_word(mnmcu_read_s8x4(r1), d + 12);
            expand_word(mnmcu_read_s8x4(r1 + 4), d + 18);
            expand_word(mnmcu_read_s8x4(r2), d + 24);
            expand_word(mnmcu_read_s8x4(r2 + 4), d + 30);
            expand_word((int32_t)((uint32_t)(uint8_t)r0[8] | (uint32_t)(uint8_t)r1[8] << 8 |
                                  (uint32_t)(uint8_t)r2[8] << 16),
                        d + 36);
        }
        return;
    }
    for (ky = 0; ky < kh; ++ky) {
        const int8_t *p0 = rows[0][ky], *p1 = rows[1][ky], *p2 = rows[2][ky];
        for (k = 0; k < 4 * full; k += 4) {
            expand_word(mnmcu_read_s8x4(p0 + k), dst);
            expand_word(mnmcu_read_s8x4(p1 + k), dst + 2);
            expand_word(mnmcu_read_s8x4(p2 + k), dst + 4);
            dst += 6;
        }
    }
    if (left == 1 && kh <= 4) {
        /* One leftover per row (e.g. three rows of nine values): one group. */
        for (i = 0; i < 3; ++i) {
            const int8_t *const *r = rows[i];
            uint32_t word = (uint8_t)r[0][4 * full];
            for (ky = 1; ky < kh; ++ky) {
                word |= (uint32_t)(uint8_t)r[ky][4 * full] << (8 * ky);
            }
            expand_word((int32_t)word, dst + 2 * i);
        }
    } else if (left > 0) {
        for (i = 0; i < 3; ++i) {
            int32_t *d = dst + 2 * i;
            uint32_t word = 0;
            int32_t n = 0;
            for (ky = 0; ky < kh; ++ky) {
                for (k = 4 * full; k < row_bytes; ++k) {
                    word |= (uint32_t)(uint8_t)rows[i][ky][k] << (8 * n);
                    if (++n == 4) {
                        expand_word((int32_t)word, d);
                        d += 6;
                        word = 0;
                        n = 0;
                    }
                }
            }
            if (n > 0) {
                expand_word((int32_t)word, d);
            }
        }
    }
}

/* Three pixels of depth values (one row each) into the expanded layout. */
MNMCU_INLINE void expand_pixels_k(const int8_t *x0, const int8_t *x1, const int8_t *x2,
                                  int32_t depth, int32_t *dst, const int dbl)
{
    int32_t k;
    for (k = 0; k + 3 < depth; k += 4) {
        expand_word(mnmcu_read_s8x4(x0 + k), dst);
        expand_word(mnmcu_read_s8x4(x1 + k), dst + 2);
        expand_word(mnmcu_read_s8x4(x2 + k), dst + 4);
        dst += 6;
    }
    if (k < depth) {
        /* The last depth % 4 values, zeros after them. */
        int8_t a[3][4] = {{0}};
        int32_t i;
        for (i = 0; k + i < depth; ++i) {
            a[0][i] = x0[k + i];
            a[1][i] = x1[k + i];
            a[2][i] = x2[k + i];
        }
        for (i = 0; i < 3; ++i) {
            expand_word(mnmcu_read_s8x4(a[i]), dst + 2 * i);
        }
    }
}
#undef expand_word

/* expand_windows_k() and expand_pixels_k() for int8 (doubled) and int16 weights. */
static void expand_windows(const int8_t *const *const *rows, int32_t kh, int32_t row_bytes,
                           int32_t *dst, int wide)
{
    if (wide) {
        expand_windows_k(rows, kh, row_bytes, dst, 0);
    } else {
        expand_windows_k(rows, kh, row_bytes, dst, 1);
    }
}

static void expand_pixels(const int8_t *x0, const int8_t *x1, const int8_t *x2, int32_t depth,
                          int32_t *dst, int wide)
{
    if (wide) {
        expand_pixels_k(x0, x1, x2, depth, dst, 0);
    } else {
        expand_pixels_k(x0, x1, x2, depth, dst, 1);
    }
}

/* Groups of four values of a window of kh rows of row_bytes values (see expand_window()). */
static int32_t window_groups(int32_t kh, int32_t row_bytes)
{
    return kh * (row_bytes >> 2) + (kh * (row_bytes & 3) + 3) / 4;
}

/* Scratch of three expanded pixels of groups groups and the prepared constants. */
static int32_t conv3_scratch_bytes(int32_t groups, int32_t channels)
{
    return 6 * groups * (int32_t)sizeof(int32_t) +
           ((channels + 1) >> 1) * PAIR_WORDS * (int32_t)sizeof(int32_t);
}

/* Everything of ctx but out, for groups groups of expanded values at expanded. */
static void conv3_init(conv3_t *ctx, const mnmcu_conv2d_params_t *params, const void *filter,
                       int wide, const int32_t *bias, int32_t *expanded, int32_t groups)
{
    ctx->x = expanded;
    ctx->x_end = expanded + 6 * groups;
    ctx->w = (const int8_t *)filter;
    ctx->wide = wide;
    ctx->pair = expanded + 6 * groups;
    ctx->stride = params->output.c;
    ctx->skip = (4 - (groups & 3)) & 3;
    prepare_pairs(params, bias, (int32_t *)ctx->pair);
}

/* ---- CONV_2D 1x1, stride 1 ---------------------------------------------- */

int32_t mnmcu_conv2d_1x1_s8_dsp_get_buffer_size(const mnmcu_conv2d_params_t *params)
{
    return conv3_scratch_bytes(window_groups(1, params->input.c), params->output.c);
}

static mnmcu_status_t conv1x1_run(const mnmcu_conv2d_params_t *params, const int8_t *input,
                                  const void *filter, int wide, const int32_t *bias,
                                  int8_t *output, const mnmcu_buffer_t *scratch)
{
    int32_t pixels, depth, channels, p, k;
    const int8_t *x[3];
    conv3_t ctx;

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
    pixels = params->input.n * params->input.h * params->input.w;
    depth = params->input.c;
    channels = params->output.c;
    conv3_init(&ctx, params, filter, wide, bias, (int32_t *)scratch->buf,
               window_groups(1, depth));
    if (pixels < 3) {
        /* Each pixel three times, its outputs written over each other. */
        ctx.stride = 0;
    }
    for (p = 0; p < pixels; p += pixels < 3 ? 1 : 3) {
        /* The last block ends at the last pixel, computing up to two again. */
        const int32_t q = pixels < 3 ? p : MNMCU_MIN(p, pixels - 3);
        for (k = 0; k < 3; ++k) {
            x[k] = input + (int64_t)(pixels < 3 ? q : q + k) * depth;
        }
        expand_pixels(x[0], x[1], x[2], depth, (int32_t *)ctx.x, wide);
        ctx.out = output + (int64_t)q * channels;
        conv3(&ctx, channels);
    }
    if (!mnmcu_act_full(params->act_min, params->act_max)) {
        mnmcu_clamp_s8(output, pixels * channels, params->act_min, params->act_max);
    }
    return MNMCU_OK;
}

mnmcu_status_t mnmcu_conv2d_1x1_s8_dsp_run(const mnmcu_conv2d_params_t *params,
                                           const int8_t *input, const int8_t *filter,
                                           const int32_t *bias, int8_t *output,
                                           const mnmcu_buffer_t *scratch)
{
    return conv1x1_run(params, input, filter, 0, bias, output, scratch);
}

mnmcu_status_t mnmcu_conv2d_1x1_s8_dsp16_run(const mnmcu_conv2d_params_t *params,
                                             const int8_t *input, const int16_t *filter,
                                             const int32_t *bias, int8_t *output,
                                             const mnmcu_buffer_t *scratch)
{
    return conv1x1_run(params, input, filter, 1, bias, output, scratch);
}

/* ---- CONV_2D, any window ------------------------------------------------- */

int32_t mnmcu_conv2d_s8_dsp_get_buffer_size(const mnmcu_conv2d_params_t *params)
{
    const int32_t row_bytes = params->filter.w * params->filter.c;
    const int32_t patch = params->filter.h * row_bytes;
    return conv3_scratch_bytes(window_groups(params->filter.h, row_bytes), params->output.c) +
           3 * ((patch + 3) & ~3);
}

/* An output pixel's place: batch, row, column. */
typedef struct {
    int32_t batch;
    int32_t y;
    int32_t x;
} out_pos_t;

/* The place of output pixel q (flat over N, OH, OW). */
static out_pos_t out_pos(const mnmcu_dims_t *od, int32_t q)
{
    out_pos_t pos;
    pos.batch = q / (od->h * od->w);
    q -= pos.batch * od->h * od->w;
    pos.y = q / od->w;
    pos.x = q - pos.y * od->w;
    return pos;
}

/* The next output pixel's place. */
MNMCU_INLINE void out_pos_next(const mnmcu_dims_t *od, out_pos_t *pos)
{
    if (++pos->x == od->w) {
        pos->x = 0;
        if (++pos->y == od->h) {
            pos->y = 0;
            ++pos->batch;
        }
    }
}

/*
 * The rows of the window of the output pixel at pos into rows[]: where the
 * window lies inside the image (and dilation_w is 1), pointers into the
 * input; else a copy in copy (KH rows of KW * C_in values), the input zero
 * point outside the image. The kernel keeps a copy for each of three windows.
 */
static void window_rows(const mnmcu_conv2d_params_t *params, const int8_t *input,
                        out_pos_t pos, int8_t zero_point, int8_t *copy, const int8_t **rows)
{
    const mnmcu_dims_t *in = &params->input;
    const mnmcu_dims_t *fd = &params->filter;
    const int8_t *in_batch = input + (int64_t)pos.batch * in->h * in->w * in->c;
    const int32_t y0 = pos.y * params->stride_h - params->pad_h;
    const int32_t x0 = pos.x * params->stride_w - params->pad_w;
    const int32_t row_bytes = fd->w * in->c;
    int32_t ky, kx, ic;
    if (params->dilation_w == 1 && y0 >= 0 && y0 + (fd->h - 1) * params->dilation_h < in->h &&
        x0 >= 0 && x0 + fd->w <= in->w) {
        const int8_t *src = in_batch + ((int64_t)y0 * in->w + x0) * in->c;
        const int32_t row_step = params->dilation_h * in->w * in->c;
        for (ky = 0; ky < fd->h; ++ky) {
            rows[ky] = src;
            src += row_step;
        }
        return;
    }
    for (ky = 0; ky < fd->h; ++ky) {
        const int32_t in_y = y0 + params->dilation_h * ky;
        int8_t *dst = copy + ky * row_bytes;
        rows[ky] = dst;
        for (kx = 0; kx < fd->w; ++kx) {
            const int32_t in_x = x0 + params->dilation_w * kx;
            if (in_y < 0 || in_y >= in->h || in_x < 0 || in_x >= in->w) {
                for (ic = 0; ic < in->c; ++ic) {
                    *dst++ = zero_point;
                }
            } else {
                const int8_t *src = in_batch + ((int64_t)in_y * in->w + in_x) * in->c;
                for (ic = 0; ic < in->c; ++ic) {
                    *dst++ = src[ic];
                }
            }
        }
    }
}

static mnmcu_status_t conv_run(const mnmcu_conv2d_params_t *params, const int8_t *input,
                               const void *filter, int wide, const int32_t *bias, int8_t *output,
                               const mnmcu_buffer_t *scratch)
{
    int32_t kh, row_bytes, groups, pixels, channels, p, k;
    int8_t *copy;
    const int8_t *row_ptrs[3][16];
    const int8_t *const *rows[3];
    int8_t zero_point;
    out_pos_t pos;
    int32_t sh, sw, ph, pw, in_w, in_c, ow, batch_bytes, row_step, inside;
    uint32_t y_last, x_last;
    conv3_t ctx;

    if (!conv_args_valid(params, input, filter, bias, output)) {
        return MNMCU_ERR_ARG;
    }
    if (!conv_shapes_valid(params) || params->filter.h > 16) {
        return MNMCU_ERR_SHAPE;
    }
    if (scratch == NULL || scratch->buf == NULL ||
        scratch->size < mnmcu_conv2d_s8_dsp_get_buffer_size(params)) {
        return MNMCU_ERR_BUFFER;
    }
    kh = params->filter.h;
    row_bytes = params->filter.w * params->filter.c;
    groups = window_groups(kh, row_bytes);
    channels = params->output.c;
    pixels = params->output.n * params->output.h * params->output.w;
    conv3_init(&ctx, params, filter, wide, bias, (int32_t *)scratch->buf, groups);
    copy = (int8_t *)(void *)((int32_t *)ctx.pair + ((channels + 1) >> 1) * PAIR_WORDS);
    zero_point = (int8_t)(-params->input_offset);
    if (pixels < 3) {
        ctx.stride = 0;
    }
    for (k = 0; k < 3; ++k) {
        rows[k] = row_ptrs[k];
    }
    /* The geometry of windows inside the image, in locals (int8 stores may alias params). */
    sh = params->stride_h;
    sw = params->stride_w;
    ph = params->pad_h;
    pw = params->pad_w;
    in_w = params->input.w;
    in_c = params->input.c;
    ow = params->output.w;
    batch_bytes = params->input.h * in_w * in_c;
    row_step = params->dilation_h * in_w * in_c;
    y_last = (uint32_t)(params->input.h - 1 - (kh - 1) * params->dilation_h);
    x_last = (uint32_t)(in_w - params->filter.w);
    inside = params->dilation_w == 1 && params->input.h - 1 - (kh - 1) * params->dilation_h >= 0 &&
             in_w - params->filter.w >= 0;
    pos = out_pos(&params->output, 0);
    for (p = 0; p < pixels; p += pixels < 3 ? 1 : 3) {
        /* The last block ends at the last pixel, computing up to two again;
         * with fewer than three pixels, each one three times over itself. */
        const int32_t q = pixels < 3 ? p : MNMCU_MIN(p, pixels - 3);
        if (q != p) {
            pos = out_pos(&params->output, q);
        }
        if (pixels >= 3 && pos.x + 2 < ow) {
            /* Three windows in one output row, all inside the image: their rows
             * straight from the input, sw * C_in bytes apart. */
            const int32_t y0 = pos.y * sh - ph, x0 = pos.x * sw - pw;
            if (inside && (uint32_t)y0 <= y_last && (uint32_t)x0 <= x_last &&
                (uint32_t)(x0 + 2 * sw) <= x_last) {
                const int8_t *src = input + pos.batch * batch_bytes + (y0 * in_w + x0) * in_c;
                int32_t ky;
                for (ky = 0; ky < kh; ++ky) {
                    row_ptrs[0][ky] = src;
                    row_ptrs[1][ky] = src + sw * in_c;
                    row_ptrs[2][ky] = src + 2 * sw * in_c;
                    src += row_step;
                }
                pos.x += 2;
                out_pos_next(&params->output, &pos);
                expand_windows(rows, kh, row_bytes, (int32_t *)ctx.x, wide);
                ctx.out = output + (int64_t)q * channels;
                conv3(&ctx, channels);
                continue;
            }
        }
        for (k = 0; k < 3; ++k) {
            /* A window inside the image: its rows straight from the input. */
            const int32_t y0 = pos.y * sh - ph, x0 = pos.x * sw - pw;
            if (inside && (uint32_t)y0 <= y_last && (uint32_t)x0 <= x_last) {
                const int8_t *src = input + pos.batch * batch_bytes + (y0 * in_w + x0) * in_c;
                int32_t ky;
                for (ky = 0; ky < kh; ++ky) {
                    row_ptrs[k][ky] = src;
                    src += row_step;
                }
            } else {
                window_rows(params, input, pos, zero_point,
                            copy + k * ((kh * row_bytes + 3) & ~3), row_ptrs[k]);
            }
            if (pixels >= 3) {
                out_pos_next(&params->output, &pos);
            }
        }
        if (pixels < 3) {
            out_pos_next(&params->output, &pos);
        }
        expand_windows(rows, kh, row_bytes, (int32_t *)ctx.x, wide);
        ctx.out = output + (int64_t)q * channels;
        conv3(&ctx, channels);
    }
    if (!mnmcu_act_full(params->act_min, params->act_max)) {
        mnmcu_clamp_s8(output, pixels * channels, params->act_min, params->act_max);
    }
    return MNMCU_OK;
}

mnmcu_status_t mnmcu_conv2d_s8_dsp_run(const mnmcu_conv2d_params_t *params, const int8_t *input,
                                       const int8_t *filter, const int32_t *bias, int8_t *output,
                                       const mnmcu_buffer_t *scratch)
{
    return conv_run(params, input, filter, 0, bias, output, scratch);
}

mnmcu_status_t mnmcu_conv2d_s8_dsp16_run(const mnmcu_conv2d_params_t *params,
                                         const int8_t *input, const int16_t *filter,
                                         const int32_t *bias, int8_t *output,
                                         const mnmcu_buffer_t *scratch)
{
    return conv_run(params, input, filter, 1, bias, output, scratch);
}
