/*
 * mnmcu_depthwise_dsp.c - fast DEPTHWISE_CONV_2D (depth multiplier 1, no
 * dilation) for cores with the Arm DSP extension (layouts in
 * mnmcu_kernels_fast.h).
 *
 * Input rows are sign-extended once into int16, channel-major, with the input
 * zero point in the padding (the input offset is folded into the bias): the
 * whole padded map of a chunk of channels where it is small, else a ring of
 * KH rows. Rows of outputs are then computed channel by channel, four (or
 * three) outputs per block: the taps of a filter row as pairs of neighbouring
 * columns (one word each) against the filter row's weights as int16 pairs
 * (SMLAD, SMLAxy), the accumulators kept doubled (doubled weights and bias)
 * and requantised with mnmcu_requant_pre2(). The blocks of 3x3 and 5x5
 * filters at strides 1 and 2 are assembly; other shapes take a C loop over the
 * same layout. Compiled for a core with Helium (Cortex-M55) a block of four
 * is one vector of four outputs instead: each tap's four inputs times the
 * tap's weight as a scalar (VMLA), requantised as in mnmcu_mve.h (blocks of
 * three keep the assembly).
 *
 * Bit-exact with mnmcu_depthwise_conv2d_s8_run() under the conditions
 * mnmcu.emit.aot checks (see mnmcu_kernels_fast.h).
 */
/* The hot loops of the runtime: compiled for speed also in -Os builds. */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("O2")
#endif
#include "mnmcu_kernels_fast.h"
#include "mnmcu_mve.h"

/* Scratch the kernel aims at: channels are taken in chunks that fit (rings
 * of rows, used for large maps where the arena is fullest, in less). */
#define DW_SCRATCH_BYTES 8192
#define DW_RING_BYTES 4096

/*
 * int16 columns of an expanded row: every tap of every output, outputs
 * rounded up to a multiple of four (the last block is computed whole), one
 * more column (read by the pairs of an odd filter width), even.
 */
static int32_t dw_width(const mnmcu_depthwise_conv2d_params_t *params)
{
    const int32_t outputs = (params->output.w + 3) & ~3;
    return ((outputs - 1) * params->stride_w + params->filter.w + 2) & ~1;
}

/* Rows of the padded input map that some output reads. */
static int32_t dw_plane_rows(const mnmcu_depthwise_conv2d_params_t *params)
{
    return (params->output.h - 1) * params->stride_h + params->filter.h;
}

/*
 * Expanded rows per channel: the whole padded map when four channels of it
 * fit in the scratch (channels are then taken one at a time over every row),
 * else a ring of KH rows and one of padding (rows are then taken one at a
 * time over every channel).
 */
static int32_t dw_rows_held(const mnmcu_depthwise_conv2d_params_t *params)
{
    const int32_t plane = dw_plane_rows(params);
    const int32_t bytes = 4 * plane * dw_width(params) * (int32_t)sizeof(int16_t);
    return bytes <= DW_SCRATCH_BYTES ? plane : params->filter.h + 1;
}

/* Channels per chunk: all of them, or a multiple of four that fits. */
static int32_t dw_chunk(const mnmcu_depthwise_conv2d_params_t *params)
{
    const int32_t held = dw_rows_held(params);
    const int32_t limit = held == dw_plane_rows(params) ? DW_SCRATCH_BYTES : DW_RING_BYTES;
    const int32_t per_channel = held * dw_width(params) * (int32_t)sizeof(int16_t);
    const int32_t fit = (limit / per_channel) & ~3;
    return params->input.c * per_channel <= limit ? params->input.c : MNMCU_MAX(4, fit);
}

int32_t mnmcu_depthwise_conv2d_s8_dsp_get_buffer_size(
    const mnmcu_depthwise_conv2d_params_t *params)
{
    return dw_rows_held(params) * dw_chunk(params) * dw_width(params) *
           (int32_t)sizeof(int16_t);
}

/* Weight words (int16 pairs) per filter row. */
static int32_t dw_row_words(int32_t kw)
{
    return (kw + 1) >> 1;
}

/* The word of int16 columns (i, i + 1) at p, 2-byte aligned. */
MNMCU_INLINE int32_t rd(const int16_t *p)
{
    return mnmcu_read_s16x2(p);
}

/*
 * Rows of outputs of one channel in blocks of four (field offsets are used by
 * the assembly). A row has n outputs: quads blocks at outputs 0, 4, ..., then,
 * where n % 4 != 0 (tail), one more block that steps back to end at output
 * n - 1 (recomputing some). Rows of a multiple of three outputs that is not
 * one of four may take blocks of three instead (size 3, no tail). Output i
 * reads filter row ky from x[ky] + i * stride (column 0 of its window) and
 * goes to out + i * step; after a row, x[ky] moves on by x_skip more bytes and
 * out by out_skip more bytes (past the row's n outputs).
 */
typedef struct {
    const int16_t *x[5];  /* 0: filter rows at the first output's window */
    const int32_t *w;     /* 20: dw_row_words(kw) words per filter row */
    int32_t bias2;        /* 24: the doubled bias */
    int32_t multiplier;   /* 28 */
    int32_t round;        /* 32: with the output offset (mnmcu_requant_prepare()) */
    int32_t exponent;     /* 36 */
    int8_t *out;          /* 40 */
    int32_t step;         /* 44: bytes between outputs */
    int32_t quads;        /* 48: whole blocks per row, >= 1 */
    int32_t rows;         /* 52: >= 1 */
    int32_t x_skip;       /* 56 */
    int32_t out_skip;     /* 60 */
    int32_t tail;         /* 64: 1 for the stepped-back block, else 0 */
    int32_t x_back;       /* 68: bytes x steps back for it */
    int32_t out_back;     /* 72: bytes out steps back for it */
    int32_t n;            /* outputs per row */
    int32_t size;         /* outputs per block: 4, or 3 for the blocks of three */
    int32_t kh;           /* filter and stride, for the C loops */
    int32_t kw;
    int32_t stride;
    int32_t shift;        /* the channel's shift, output offset and clamp (Helium) */
    int32_t output_offset;
    int32_t act_min;
    int32_t act_max;
} dw_quads_t;

typedef void (*dw_quads_fn)(const dw_quads_t *job);

/* The first output of block b of a job's row (the tail block ends at output n - 1). */
static int32_t dw_block_start(const dw_quads_t *job, int32_t b)
{
    return b < job->quads ? job->size * b : job->n - job->size;
}

/* A job in C, any filter and stride. */
static void dw_quads_c(const dw_quads_t *job)
{
    const int32_t words = dw_row_words(job->kw);
    /* int16 columns from one row's first window to the next row's. */
    const int32_t row_step = job->n * job->stride + job->x_skip / (int32_t)sizeof(int16_t);
    const int32_t out_row = job->n * job->step + job->out_skip;
    int32_t r, b, i, ky, kx;
    for (r = 0; r < job->rows; ++r) {
        for (b = 0; b < job->quads + job->tail; ++b) {
            for (i = dw_block_start(job, b); i < dw_block_start(job, b) + job->size; ++i) {
                int32_t acc = job->bias2;
                for (ky = 0; ky < job->kh; ++ky) {
                    const int16_t *x = job->x[ky] + r * row_step + i * job->stride;
                    const int32_t *wr = job->w + ky * words;
                    for (kx = 0; kx + 1 < job->kw; kx += 2) {
                        acc = mnmcu_smlad(rd(x + kx), wr[kx >> 1], acc);
                    }
                    if (kx < job->kw) {
                        acc = mnmcu_smlabb(rd(x + kx), wr[kx >> 1], acc);
                    }
                }
                job->out[r * out_row + i * job->step] = (int8_t)mnmcu_ssat8(
                    mnmcu_requant_pre2(acc, job->multiplier, job->round, job->exponent));
            }
        }
    }
}

#if MNMCU_HAVE_DSP
/*
 * The jobs of 3x3 and 5x5 filters at strides 1 and 2 in assembly. A block's
 * four accumulators are r0-r3; a filter row's taps are read as words of two
 * neighbouring int16 columns (LDRD where aligned), its weights as int16 pairs
 * (SMLAD for two taps, SMLABB/SMLATB for the odd last one). The job is copied
 * to the stack (frame word 16: blocks left in the row); the four outputs are
 * requantised with mnmcu_requant_pre2() (in lr, then the accumulator) and
 * stored step bytes apart.
 */
#define DW_ENTER                                                                               \
    "push {r4-r11, lr}\n\t"                                                                    \
    "sub sp, sp, #84\n\t"                                                                      \
    "ldm r0!, {r1-r12, lr}\n\t"                                                                \
    "stm sp, {r1-r12, lr}\n\t"                                                                 \
    "ldm r0, {r1-r6}\n\t"                                                                      \
    "add r7, sp, #52\n\t"                                                                      \
    "stm r7, {r1-r6}\n\t"                                                                      \
    "ldr r1, [sp, #48]\n\t"                                                                    \
    "ldr r2, [sp, #64]\n\t"                                                                    \
    "strd r1, r2, [sp, #76]\n\t"
#define DW_LEAVE                                                                               \
    "add sp, sp, #84\n\t"                                                                      \
    "pop {r4-r11, pc}\n\t"
#define DW_INIT                                                                                \
    "ldr r0, [sp, #24]\n\t"                                                                    \
    "mov r1, r0\n\t"                                                                           \
    "mov r2, r0\n\t"                                                                           \
    "mov r3, r0\n\t"
#define DW_REQUANT(a, m, r, e)                                                                 \
    "add lr, " r ", " a ", asr #31\n\t"                                                        \
    "smmlar " a ", " a ", " m ", lr\n\t"                                                       \
    "asr " a ", " a ", " e "\n\t"                                                              \
    "ssat " a ", #8, " a "\n\t"
/* Requantise r0-r3 with m, r, e and store them through o (step in s); count the block. */
#define DW_STORE(m, r, e, o, s)                                                                \
    "ldrd " m ", " r ", [sp, #28]\n\t"                                                         \
    "ldr " e ", [sp, #36]\n\t" DW_REQUANT("r0", m, r, e) DW_REQUANT("r1", m, r, e)             \
        DW_REQUANT("r2", m, r, e) DW_REQUANT("r3", m, r, e)                                   \
    "ldrd " o ", " s ", [sp, #40]\n\t"                                                         \
    "strb r0, [" o "]\n\t"                                                                     \
    "strb r1, [" o ", " s "]\n\t"                                                              \
    "add " o ", " o ", " s ", lsl #1\n\t"                                                      \
    "strb r2, [" o "]\n\t"                                                                     \
    "strb r3, [" o ", " s "]\n\t"                                                              \
    "add " o ", " o ", " s ", lsl #1\n\t"                                                      \
    "str " o ", [sp, #40]\n\t"                                                                 \
    "ldr lr, [sp, #76]\n\t"                                                                    \
    "subs lr, lr, #1\n\t"                                                                      \
    "str lr, [sp, #76]\n\t"
/*
 * After a row's whole blocks: the tail block (x stepped back by BACK, which
 * uses r7), else blocks and tail reset, out moved on, rows counted (x moved
 * on by NEXT).
 */
#define DW_ROW_END(BACK, NEXT)                                                                 \
    "ldr r7, [sp, #80]\n\t"                                                                    \
    "cbz r7, 8f\n\t"                                                                           \
    "movs r7, #0\n\t"                                                                          \
    "str r7, [sp, #80]\n\t"                                                                    \
    "movs r7, #1\n\t"                                                                          \
    "str r7, [sp, #76]\n\t"                                                                    \
    "ldrd r7, r8, [sp, #40]\n\t"                                                               \
    "ldr r9, [sp, #72]\n\t"                                                                    \
    "sub r7, r7, r9\n\t"                                                                       \
    "str r7, [sp, #40]\n\t"                                                                    \
    "ldr r7, [sp, #68]\n\t" BACK "b 1b\n\t"                                                   \
    "8:\n\t"                                                                                   \
    "ldr r7, [sp, #48]\n\t"                                                                    \
    "ldr r8, [sp, #64]\n\t"                                                                    \
    "strd r7, r8, [sp, #76]\n\t"                                                               \
    "ldr r7, [sp, #40]\n\t"                                                                    \
    "ldr r8, [sp, #60]\n\t"                                                                    \
    "add r7, r7, r8\n\t"                                                                       \
    "str r7, [sp, #40]\n\t"                                                                    \
    "ldr r7, [sp, #56]\n\t" NEXT "ldr r7, [sp, #52]\n\t"                                       \
    "subs r7, r7, #1\n\t"                                                                      \
    "str r7, [sp, #52]\n\t"                                                                    \
    "bne 1b\n\t"

/* 3x3: rows in r4-r6, weights r7 (taps 0, 1) and r8 (tap 2), taps r9-r11, w in r12. */
#define DW_K3S1_ROW(x, wofs)                                                                   \
    "ldrd r7, r8, [r12, #" wofs "]\n\t"                                                        \
    "ldrd r9, r10, [" x "], #8\n\t"                                                            \
    "ldr r11, [" x ", #-6]\n\t"                                                                \
    "smlad r0, r9, r7, r0\n\t"                                                                 \
    "smlabb r0, r10, r8, r0\n\t"                                                               \
    "smlad r1, r11, r7, r1\n\t"                                                                \
    "smlatb r1, r10, r8, r1\n\t"                                                               \
    "ldr r9, [" x ", #-2]\n\t"                                                                 \
    "ldr r11, [" x "]\n\t"                                                                     \
    "smlad r2, r10, r7, r2\n\t"                                                                \
    "smlad r3, r9, r7, r3\n\t"                                                                 \
    "smlabb r2, r11, r8, r2\n\t"                                                               \
    "smlatb r3, r11, r8, r3\n\t"
#define DW_K3S2_ROW(x, wofs)                                                                   \
    "ldrd r7, r8, [r12, #" wofs "]\n\t"                                                        \
    "ldrd r9, r10, [" x "], #16\n\t"                                                           \
    "ldr r11, [" x ", #-8]\n\t"                                                                \
    "smlad r0, r9, r7, r0\n\t"                                                                 \
    "smlabb r0, r10, r8, r0\n\t"                                                               \
    "smlad r1, r10, r7, r1\n\t"                                                                \
    "smlabb r1, r11, r8, r1\n\t"                                                               \
    "ldrd r9, r10, [" x ", #-4]\n\t"                                                           \
    "smlad r2, r11, r7, r2\n\t"                                                                \
    "smlabb r2, r9, r8, r2\n\t"                                                                \
    "smlad r3, r9, r7, r3\n\t"                                                                 \
    "smlabb r3, r10, r8, r3\n\t"
#define DW_K3_FN(name, ROW)                                                                    \
    __attribute__((naked, noinline)) static void name(                                         \
        const dw_quads_t *job __attribute__((unused)))                                         \
    {                                                                                          \
        __asm__(DW_ENTER "ldm sp, {r4-r6}\n\t"                                                 \
                         "ldr r12, [sp, #20]\n\t"                                              \
                         "1:\n\t" DW_INIT ROW("r4", "0") ROW("r5", "8") ROW("r6", "16")        \
                             DW_STORE("r7", "r8", "r9", "r10", "r11") "bne 1b\n\t"             \
                                 DW_ROW_END("sub r4, r4, r7\n\t"                               \
                                            "sub r5, r5, r7\n\t"                               \
                                            "sub r6, r6, r7\n\t",                              \
                                            "add r4, r4, r7\n\t"                               \
                                            "add r5, r5, r7\n\t"                               \
                                            "add r6, r6, r7\n\t") DW_LEAVE);                   \
    }
#if !MNMCU_HAVE_MVE /* Helium has its own blocks of four. */
DW_K3_FN(dw_quads_k3s1, DW_K3S1_ROW)
DW_K3_FN(dw_quads_k3s2, DW_K3S2_ROW)
#endif

/*
 * 5x5: weights r4 (taps 0, 1), r5 (2, 3), r6 (4), taps r7-r9, the row in r10
 * (the frame's row pointer plus the column offset in r11), w in r12.
 */
#define DW_K5S1_ROW(k, wofs, wofs2)                                                            \
    "ldr r10, [sp, #" k "]\n\t"                                                                \
    "add r10, r10, r11\n\t"                                                                    \
    "ldrd r4, r5, [r12, #" wofs "]\n\t"                                                        \
    "ldr r6, [r12, #" wofs2 "]\n\t"                                                            \
    "ldrd r7, r9, [r10]\n\t"                                                                   \
    "ldr r8, [r10, #2]\n\t"                                                                    \
    "smlad r0, r7, r4, r0\n\t"                                                                 \
    "smlad r1, r8, r4, r1\n\t"                                                                 \
    "smlad r2, r9, r4, r2\n\t"                                                                 \
    "smlad r0, r9, r5, r0\n\t"                                                                 \
    "ldr r7, [r10, #6]\n\t"                                                                    \
    "smlad r3, r7, r4, r3\n\t"                                                                 \
    "smlad r1, r7, r5, r1\n\t"                                                                 \
    "ldrd r8, r9, [r10, #8]\n\t"                                                               \
    "smlabb r0, r8, r6, r0\n\t"                                                                \
    "smlatb r1, r8, r6, r1\n\t"                                                                \
    "smlad r2, r8, r5, r2\n\t"                                                                 \
    "smlabb r2, r9, r6, r2\n\t"                                                                \
    "smlatb r3, r9, r6, r3\n\t"                                                                \
    "ldr r7, [r10, #10]\n\t"                                                                   \
    "smlad r3, r7, r5, r3\n\t"
#define DW_K5S2_ROW(k, wofs, wofs2)                                                            \
    "ldr r10, [sp, #" k "]\n\t"                                                                \
    "add r10, r10, r11\n\t"                                                                    \
    "ldrd r4, r5, [r12, #" wofs "]\n\t"                                                        \
    "ldr r6, [r12, #" wofs2 "]\n\t"                                                            \
    "ldrd r7, r8, [r10]\n\t"                                                                   \
    "smlad r0, r7, r4, r0\n\t"                                                                 \
    "smlad r0, r8, r5, r0\n\t"                                                                 \
    "smlad r1, r8, r4, r1\n\t"                                                                 \
    "ldrd r7, r9, [r10, #8]\n\t"                                                               \
    "smlabb r0, r7, r6, r0\n\t"                                                                \
    "smlad r1, r7, r5, r1\n\t"                                                                 \
    "smlad r2, r7, r4, r2\n\t"                                                                 \
    "smlabb r1, r9, r6, r1\n\t"                                                                \
    "smlad r2, r9, r5, r2\n\t"                                                                 \
    "smlad r3, r9, r4, r3\n\t"                                                                 \
    "ldrd r7, r8, [r10, #16]\n\t"                                                              \
    "smlabb r2, r7, r6, r2\n\t"                                                                \
    "smlad r3, r7, r5, r3\n\t"                                                                 \
    "smlabb r3, r8, r6, r3\n\t"
#define DW_K5_FN(name, ROW, advance)                                                           \
    __attribute__((naked, noinline)) static void name(                                         \
        const dw_quads_t *job __attribute__((unused)))                                         \
    {                                                                                          \
        __asm__(DW_ENTER "ldr r12, [sp, #20]\n\t"                                              \
                         "mov r11, #0\n\t"                                                     \
                         "1:\n\t" DW_INIT ROW("0", "0", "8") ROW("4", "12", "20")              \
                             ROW("8", "24", "32") ROW("12", "36", "44") ROW("16", "48", "56")  \
                                 "add r11, r11, #" advance "\n\t"                              \
                                 DW_STORE("r4", "r5", "r6", "r7", "r8") "bne 1b\n\t"           \
                                     DW_ROW_END("sub r11, r11, r7\n\t",                         \
                                                "add r11, r11, r7\n\t") DW_LEAVE);             \
    }
#if !MNMCU_HAVE_MVE
DW_K5_FN(dw_quads_k5s1, DW_K5S1_ROW, "8")
DW_K5_FN(dw_quads_k5s2, DW_K5S2_ROW, "16")
#endif

/* Blocks of three outputs (r0-r2; r3 is a spare tap register). */
#define DW_INIT3                                                                               \
    "ldr r0, [sp, #24]\n\t"                                                                    \
    "mov r1, r0\n\t"                                                                           \
    "mov r2, r0\n\t"
#define DW_STORE3(m, r, e, o, s)                                                               \
    "ldrd " m ", " r ", [sp, #28]\n\t"                                                         \
    "ldr " e ", [sp, #36]\n\t" DW_REQUANT("r0", m, r, e) DW_REQUANT("r1", m, r, e)             \
        DW_REQUANT("r2", m, r, e)                                                             \
    "ldrd " o ", " s ", [sp, #40]\n\t"                                                         \
    "strb r0, [" o "]\n\t"                                                                     \
    "strb r1, [" o ", " s "]\n\t"                                                              \
    "strb r2, [" o ", " s ", lsl #1]\n\t"                                                      \
    "add " o ", " o ", " s "\n\t"                                                              \
    "add " o ", " o ", " s ", lsl #1\n\t"                                                      \
    "str " o ", [sp, #40]\n\t"                                                                 \
    "ldr lr, [sp, #76]\n\t"                                                                    \
    "subs lr, lr, #1\n\t"                                                                      \
    "str lr, [sp, #76]\n\t"
/* 3x3 at stride 1: columns 0..4, blocks 3 columns (6 bytes) apart, so no LDRD. */
#define DW_K3S1_ROW3(x, wofs)                                                                  \
    "ldrd r7, r8, [r12, #" wofs "]\n\t"                                                        \
    "ldr r9, [" x "]\n\t"                                                                      \
    "ldr r10, [" x ", #4]\n\t"                                                                 \
    "ldr r11, [" x ", #2]\n\t"                                                                 \
    "ldr r3, [" x ", #8]\n\t"                                                                  \
    "add " x ", " x ", #6\n\t"                                                                 \
    "smlad r0, r9, r7, r0\n\t"                                                                 \
    "smlabb r0, r10, r8, r0\n\t"                                                               \
    "smlad r1, r11, r7, r1\n\t"                                                                \
    "smlatb r1, r10, r8, r1\n\t"                                                               \
    "smlad r2, r10, r7, r2\n\t"                                                                \
    "smlabb r2, r3, r8, r2\n\t"
/* 3x3 at stride 2: columns 0..6, blocks 6 columns (12 bytes) apart. */
#define DW_K3S2_ROW3(x, wofs)                                                                  \
    "ldrd r7, r8, [r12, #" wofs "]\n\t"                                                        \
    "ldrd r9, r10, [" x "], #12\n\t"                                                           \
    "ldrd r11, r3, [" x ", #-4]\n\t"                                                           \
    "smlad r0, r9, r7, r0\n\t"                                                                 \
    "smlabb r0, r10, r8, r0\n\t"                                                               \
    "smlad r1, r10, r7, r1\n\t"                                                                \
    "smlabb r1, r11, r8, r1\n\t"                                                               \
    "smlad r2, r11, r7, r2\n\t"                                                                \
    "smlabb r2, r3, r8, r2\n\t"
#define DW_K3_FN3(name, ROW)                                                                   \
    __attribute__((naked, noinline)) static void name(                                         \
        const dw_quads_t *job __attribute__((unused)))                                         \
    {                                                                                          \
        __asm__(DW_ENTER "ldm sp, {r4-r6}\n\t"                                                 \
                         "ldr r12, [sp, #20]\n\t"                                              \
                         "1:\n\t" DW_INIT3 ROW("r4", "0") ROW("r5", "8") ROW("r6", "16")       \
                             DW_STORE3("r7", "r8", "r9", "r10", "r11") "bne 1b\n\t"            \
                                 DW_ROW_END("sub r4, r4, r7\n\t"                               \
                                            "sub r5, r5, r7\n\t"                               \
                                            "sub r6, r6, r7\n\t",                              \
                                            "add r4, r4, r7\n\t"                               \
                                            "add r5, r5, r7\n\t"                               \
                                            "add r6, r6, r7\n\t") DW_LEAVE);                   \
    }
DW_K3_FN3(dw_triples_k3s1, DW_K3S1_ROW3)
DW_K3_FN3(dw_triples_k3s2, DW_K3S2_ROW3)

/* 5x5 at stride 1: columns 0..6 (blocks 6 bytes apart); weights r4-r6, taps r7-r9, r3. */
#define DW_K5S1_ROW3(k, wofs, wofs2)                                                           \
    "ldr r10, [sp, #" k "]\n\t"                                                                \
    "add r10, r10, r11\n\t"                                                                    \
    "ldrd r4, r5, [r12, #" wofs "]\n\t"                                                        \
    "ldr r6, [r12, #" wofs2 "]\n\t"                                                            \
    "ldr r7, [r10]\n\t"                                                                        \
    "ldr r8, [r10, #2]\n\t"                                                                    \
    "ldr r9, [r10, #4]\n\t"                                                                    \
    "smlad r0, r7, r4, r0\n\t"                                                                 \
    "smlad r1, r8, r4, r1\n\t"                                                                 \
    "smlad r2, r9, r4, r2\n\t"                                                                 \
    "smlad r0, r9, r5, r0\n\t"                                                                 \
    "ldr r7, [r10, #6]\n\t"                                                                    \
    "ldr r8, [r10, #8]\n\t"                                                                    \
    "ldr r3, [r10, #12]\n\t"                                                                   \
    "smlad r1, r7, r5, r1\n\t"                                                                 \
    "smlad r2, r8, r5, r2\n\t"                                                                 \
    "smlabb r0, r8, r6, r0\n\t"                                                                \
    "smlatb r1, r8, r6, r1\n\t"                                                                \
    "smlabb r2, r3, r6, r2\n\t"
/* 5x5 at stride 2: columns 0..8 (blocks 12 bytes apart). */
#define DW_K5S2_ROW3(k, wofs, wofs2)                                                           \
    "ldr r10, [sp, #" k "]\n\t"                                                                \
    "add r10, r10, r11\n\t"                                                                    \
    "ldrd r4, r5, [r12, #" wofs "]\n\t"                                                        \
    "ldr r6, [r12, #" wofs2 "]\n\t"                                                            \
    "ldrd r7, r8, [r10]\n\t"                                                                   \
    "ldrd r9, r3, [r10, #8]\n\t"                                                               \
    "smlad r0, r7, r4, r0\n\t"                                                                 \
    "smlad r0, r8, r5, r0\n\t"                                                                 \
    "smlabb r0, r9, r6, r0\n\t"                                                                \
    "smlad r1, r8, r4, r1\n\t"                                                                 \
    "smlad r1, r9, r5, r1\n\t"                                                                 \
    "smlabb r1, r3, r6, r1\n\t"                                                                \
    "smlad r2, r9, r4, r2\n\t"                                                                 \
    "smlad r2, r3, r5, r2\n\t"                                                                 \
    "ldr r7, [r10, #16]\n\t"                                                                   \
    "smlabb r2, r7, r6, r2\n\t"
#define DW_K5_FN3(name, ROW, advance)                                                          \
    __attribute__((naked, noinline)) static void name(                                         \
        const dw_quads_t *job __attribute__((unused)))                                         \
    {                                                                                          \
        __asm__(DW_ENTER "ldr r12, [sp, #20]\n\t"                                              \
                         "mov r11, #0\n\t"                                                     \
                         "1:\n\t" DW_INIT3 ROW("0", "0", "8") ROW("4", "12", "20")             \
                             ROW("8", "24", "32") ROW("12", "36", "44") ROW("16", "48", "56")  \
                                 "add r11, r11, #" advance "\n\t"                              \
                                 DW_STORE3("r4", "r5", "r6", "r7", "r8") "bne 1b\n\t"          \
                                     DW_ROW_END("sub r11, r11, r7\n\t",                         \
                                                "add r11, r11, r7\n\t") DW_LEAVE);             \
    }
DW_K5_FN3(dw_triples_k5s1, DW_K5S1_ROW3, "6")
DW_K5_FN3(dw_triples_k5s2, DW_K5S2_ROW3, "12")
#endif

#if MNMCU_HAVE_MVE
/*
 * With Helium, a vector holds four outputs of the channel (one int32 lane
 * each), two vectors (eight outputs) per pass where a row has them: per filter
 * tap one load of four pixels' inputs per vector (VLDRH.S32, a gather at
 * stride 2) and one multiply-accumulate by the tap's weight (VMLA by a
 * scalar); the doubled sums are halved (exactly: they are even) and
 * requantised as in mnmcu_mve.h, then scattered step bytes apart.
 */
MNMCU_INLINE int32x4_t dw_mve_load(const int16_t *p, const int32_t s, uint32x4_t cols)
{
    return s == 1 ? vldrhq_s32(p) : vldrhq_gather_offset_s32(p, cols);
}

/* One block of four outputs (first at out, from the rows x, k...) into a vector. */
MNMCU_INLINE int32x4_t dw_mve_block(const int16_t *const *x, const int32_t *tap, int32x4_t acc,
                                    const int32_t kh, const int32_t kw, const int32_t s,
                                    uint32x4_t cols)
{
    int32_t ky, kx;
#pragma GCC unroll 5
    for (ky = 0; ky < kh; ++ky) {
#pragma GCC unroll 5
        for (kx = 0; kx < kw; ++kx) {
            acc = vmlaq_n_s32(acc, dw_mve_load(x[ky] + kx, s, cols), tap[ky * kw + kx]);
        }
    }
    return acc;
}

MNMCU_INLINE void dw_quads_mve_k(const dw_quads_t *job, const int32_t kh, const int32_t kw,
                                 const int32_t s)
{
    const int32_t words = dw_row_words(kw);
    const int32_t step = job->step, mult = job->multiplier, shift = job->shift;
    const int32_t off = job->output_offset, lo = job->act_min, hi = job->act_max;
    const int32x4_t bias = vdupq_n_s32(job->bias2);
    const uint32x4_t outs = vmulq_n_u32(vidupq_n_u32(0u, 1), (uint32_t)step);
    const uint32x4_t cols = vmulq_n_u32(vidupq_n_u32(0u, 1), (uint32_t)(s * 2));
    const int32_t out_row = job->n * step + job->out_skip;
    int32_t tap[25];
    const int16_t *x[5];
    int32_t r, q, ky, kx;
    for (ky = 0; ky < kh; ++ky) {
        for (kx = 0; kx < kw; ++kx) {
            const int32_t word = job->w[ky * words + (kx >> 1)];
            tap[ky * kw + kx] = (kx & 1) ? word >> 16 : (int32_t)(int16_t)(uint16_t)word;
        }
    }
    for (ky = 0; ky < kh; ++ky) {
        x[ky] = job->x[ky];
    }
    for (r = 0; r < job->rows; ++r) {
        int8_t *out = job->out + r * out_row;
        const int16_t *x1[5];
        for (q = 0; q + 1 < job->quads; q += 2) {
            for (ky = 0; ky < kh; ++ky) {
                x1[ky] = x[ky] + 4 * s;
            }
            {
                const int32x4_t acc0 = dw_mve_block(x, tap, bias, kh, kw, s, cols);
                const int32x4_t acc1 = dw_mve_block(x1, tap, bias, kh, kw, s, cols);
                vstrbq_scatter_offset_s32(
                    out, outs, mnmcu_output1_mve(vshrq_n_s32(acc0, 1), mult, shift, off, lo, hi));
                vstrbq_scatter_offset_s32(
                    out + 4 * step, outs,
                    mnmcu_output1_mve(vshrq_n_s32(acc1, 1), mult, shift, off, lo, hi));
            }
            for (ky = 0; ky < kh; ++ky) {
                x[ky] += 8 * s;
            }
            out += 8 * step;
        }
        for (; q < job->quads + job->tail; ++q) {
            if (q == job->quads) {
                /* The tail block, stepped back to end at the row's last output. */
                const int32_t back = 4 * job->quads + 4 - job->n;
                for (ky = 0; ky < kh; ++ky) {
                    x[ky] -= back * s;
                }
                out -= back * step;
            }
            vstrbq_scatter_offset_s32(
                out, outs,
                mnmcu_output1_mve(vshrq_n_s32(dw_mve_block(x, tap, bias, kh, kw, s, cols), 1),
                                  mult, shift, off, lo, hi));
            for (ky = 0; ky < kh; ++ky) {
                x[ky] += 4 * s;
            }
            out += 4 * step;
        }
        for (ky = 0; ky < kh; ++ky) {
            x[ky] += job->x_skip / (int32_t)sizeof(int16_t);
        }
    }
}

static void dw_quads_mve_k3s1(const dw_quads_t *job)
{
    dw_quads_mve_k(job, 3, 3, 1);
}

static void dw_quads_mve_k3s2(const dw_quads_t *job)
{
    dw_quads_mve_k(job, 3, 3, 2);
}

static void dw_quads_mve_k5s1(const dw_quads_t *job)
{
    dw_quads_mve_k(job, 5, 5, 1);
}

static void dw_quads_mve_k5s2(const dw_quads_t *job)
{
    dw_quads_mve_k(job, 5, 5, 2);
}
#endif

/* The jobs of a filter and stride: Helium or assembly where there is some, else C. */
static dw_quads_fn dw_quads_for(int32_t kh, int32_t kw, int32_t stride)
{
#if MNMCU_HAVE_MVE
    if (kh == 3 && kw == 3 && stride == 1) {
        return dw_quads_mve_k3s1;
    }
    if (kh == 3 && kw == 3 && stride == 2) {
        return dw_quads_mve_k3s2;
    }
    if (kh == 5 && kw == 5 && stride == 1) {
        return dw_quads_mve_k5s1;
    }
    if (kh == 5 && kw == 5 && stride == 2) {
        return dw_quads_mve_k5s2;
    }
#elif MNMCU_HAVE_DSP
    if (kh == 3 && kw == 3 && stride == 1) {
        return dw_quads_k3s1;
    }
    if (kh == 3 && kw == 3 && stride == 2) {
        return dw_quads_k3s2;
    }
    if (kh == 5 && kw == 5 && stride == 1) {
        return dw_quads_k5s1;
    }
    if (kh == 5 && kw == 5 && stride == 2) {
        return dw_quads_k5s2;
    }
#else
    (void)kh;
    (void)kw;
    (void)stride;
#endif
    return dw_quads_c;
}

/* The blocks of three of a filter and stride in assembly (also with Helium,
 * whose vectors of four fit rows of three and six badly), or NULL. */
static dw_quads_fn dw_triples_for(int32_t kh, int32_t kw, int32_t stride)
{
#if MNMCU_HAVE_DSP
    if (kh == 3 && kw == 3 && stride == 1) {
        return dw_triples_k3s1;
    }
    if (kh == 3 && kw == 3 && stride == 2) {
        return dw_triples_k3s2;
    }
    if (kh == 5 && kw == 5 && stride == 1) {
        return dw_triples_k5s1;
    }
    if (kh == 5 && kw == 5 && stride == 2) {
        return dw_triples_k5s2;
    }
#else
    (void)kh;
    (void)kw;
    (void)stride;
#endif
    return NULL;
}

/*
 * rows rows of n outputs (x, out set for the first; rows row_step int16
 * apart, out_row bytes apart): in blocks of three where n is a multiple of
 * three but not of four, else of four, a row ending with a block stepped back
 * to its last output where that block starts at an even column; else (short
 * rows, odd rows at stride 1) whole blocks past n.
 */
static void dw_run(dw_quads_t *job, dw_quads_fn fn, dw_quads_fn triples, int32_t n,
                   int32_t rows, int32_t row_step, int32_t out_row)
{
    const int32_t s = job->stride, step = job->step;
    const int32_t quads = (n + 3) >> 2, full = n >> 2, rest = n & 3;
    int8_t last[4];
    int32_t k, i, r;
    job->size = 4;
    if (triples != NULL && rest != 0 && n % 3 == 0) {
        job->size = 3;
        job->n = n;
        job->quads = n / 3;
        job->tail = 0;
        job->x_skip = (row_step - n * s) * (int32_t)sizeof(int16_t);
        job->out_skip = out_row - n * step;
        job->rows = rows;
        triples(job);
        return;
    }
    if (n >= 4 && (s != 1 || (n & 1) == 0)) {
        /* The stepped-back block starts at an even column (aligned pairs). */
        const int32_t back = 4 - rest;
        job->n = n;
        job->quads = full;
        job->tail = rest != 0;
        job->x_back = back * s * (int32_t)sizeof(int16_t);
        job->out_back = back * step;
        job->x_skip = (row_step - n * s) * (int32_t)sizeof(int16_t);
        job->out_skip = out_row - n * step;
        job->rows = rows;
        fn(job);
        return;
    }
    /* Whole blocks past n: where that spills into the next row only, every
     * row but the last spills into the next row's first outputs before they
     * are computed; the other rows' blocks past n go through a buffer. */
    job->n = 4 * quads;
    job->tail = 0;
    job->x_skip = (row_step - 4 * quads * s) * (int32_t)sizeof(int16_t);
    job->out_skip = out_row - 4 * quads * step;
    if (rows > 1 && 4 * quads - n <= n) {
        job->quads = quads;
        job->rows = rows - 1;
        fn(job);
        for (k = 0; k < job->kh; ++k) {
            job->x[k] += (rows - 1) * row_step;
        }
        job->out += (rows - 1) * out_row;
        rows = 1;
    }
    job->rows = 1;
    for (r = 0; r < rows; ++r) {
        const int16_t *x_row[5];
        int8_t *const out_row_start = job->out;
        for (k = 0; k < job->kh; ++k) {
            x_row[k] = job->x[k];
        }
        if (full > 0) {
            job->n = 4 * full;
            job->quads = full;
            fn(job);
            for (k = 0; k < job->kh; ++k) {
                job->x[k] += 4 * full * s;
            }
            job->out += 4 * full * step;
        }
        if (rest > 0) {
            int8_t *const tail = job->out;
            job->n = 4;
            job->quads = 1;
            job->out = last;
            job->step = 1;
            fn(job);
            job->step = step;
            for (i = 0; i < rest; ++i) {
                tail[i * step] = last[i];
            }
        }
        for (k = 0; k < job->kh; ++k) {
            job->x[k] = x_row[k] + row_step;
        }
        job->out = out_row_start + out_row;
    }
}

/*
 * The first in_w columns of an input row, channels c0..c0 + n - 1, as int16
 * into dst[c * width + x] (width: int16 values from one channel's rows to the
 * next channel's); the padding columns keep the zero point they were filled
 * with.
 */
static void dw_expand_row(const int8_t *row, int32_t in_w, int32_t channels, int32_t c0,
                          int32_t n, int16_t *dst, int32_t width)
{
    int32_t x, c;
    row += c0;
#if MNMCU_HAVE_MVE
    if (7 * width <= 32767) {
        /* Eight channels of a column per vector, scattered to their rows. */
        const uint16x8_t rows = vmulq_n_u16(vidupq_n_u16(0u, 1), (uint16_t)(2 * width));
        for (c = 0; c < n; c += 8) {
            const mve_pred16_t p = vctp16q((uint32_t)(n - c));
            const int8_t *src = row + c;
            int16_t *d = dst + c * width;
            for (x = 0; x < in_w; ++x) {
                vstrhq_scatter_offset_p_s16(d + x, rows, vldrbq_z_s16(src, p), p);
                src += channels;
            }
        }
        return;
    }
#endif
    /* Four channels at a time over pairs of columns: each channel's pair one word. */
    for (c = 0; c + 3 < n; c += 4) {
        const int8_t *src = row + c;
        int16_t *d = dst + c * width;
        for (x = 0; x + 1 < in_w; x += 2) {
            const int32_t a = mnmcu_read_s8x4(src), b = mnmcu_read_s8x4(src + channels);
            const int32_t ea = mnmcu_sxtb16(a), oa = mnmcu_sxtb16_ror8(a);
            const int32_t eb = mnmcu_sxtb16(b), ob = mnmcu_sxtb16_ror8(b);
            const int32_t w0 = mnmcu_pack_lo(ea, eb), w2 = mnmcu_pack_hi(ea, eb);
            const int32_t w1 = mnmcu_pack_lo(oa, ob), w3 = mnmcu_pack_hi(oa, ob);
            memcpy(d + x, &w0, sizeof(w0));
            memcpy(d + width + x, &w1, sizeof(w1));
            memcpy(d + 2 * width + x, &w2, sizeof(w2));
            memcpy(d + 3 * width + x, &w3, sizeof(w3));
            src += 2 * channels;
        }
        if (x < in_w) {
            d[x] = src[0];
            d[width + x] = src[1];
            d[2 * width + x] = src[2];
            d[3 * width + x] = src[3];
        }
    }
    for (; c < n; ++c) {
        for (x = 0; x < in_w; ++x) {
            dst[c * width + x] = row[x * channels + c];
        }
    }
}

/* n int16 values of v at dst (4-byte aligned, n even): 16 bytes per store where possible. */
static void dw_fill(int16_t *dst, int32_t n, int16_t v)
{
    const uint32_t two = (uint16_t)v * 0x10001u;
    uint32_t *d = (uint32_t *)(void *)dst;
    int32_t words = n >> 1, i = 0;
#if MNMCU_HAVE_MVE
    const uint32x4_t four = vdupq_n_u32(two);
    for (; i < words; i += 4) {
        vstrwq_p_u32(d + i, four, vctp32q((uint32_t)(words - i)));
    }
#else
    for (; i + 4 <= words; i += 4) {
        d[i] = two;
        d[i + 1] = two;
        d[i + 2] = two;
        d[i + 3] = two;
    }
    for (; i < words; ++i) {
        d[i] = two;
    }
#endif
}

/* The job of channel c's outputs, everything but x and out set from params. */
static void dw_job_init(const mnmcu_depthwise_conv2d_params_t *params, const int32_t *filter,
                        const int32_t *bias, int32_t c, dw_quads_t *job)
{
    const mnmcu_requant_t rq =
        mnmcu_requant_prepare(params->multiplier[c], params->shift[c], params->output_offset);
    job->kh = params->filter.h;
    job->kw = params->filter.w;
    job->stride = params->stride_w;
    job->w = filter + (int64_t)c * job->kh * dw_row_words(job->kw);
    job->bias2 = bias[c] * 2;
    job->multiplier = rq.multiplier;
    job->round = rq.round;
    job->exponent = rq.exponent;
    job->step = params->output.c;
    job->shift = params->shift[c];
    job->output_offset = params->output_offset;
    job->act_min = params->act_min;
    job->act_max = params->act_max;
}

mnmcu_status_t mnmcu_depthwise_conv2d_s8_dsp_run(const mnmcu_depthwise_conv2d_params_t *params,
                                                 const int8_t *input, const int32_t *filter,
                                                 const int32_t *bias, int8_t *output,
                                                 const mnmcu_buffer_t *scratch)
{
    const mnmcu_dims_t *in;
    const mnmcu_dims_t *od;
    int32_t kh, width, held, chunk, plane, columns, batch, c0, n, out_y, k, c, y;
    int16_t *rows_buf;
    int32_t ring_row[5];
    int16_t zero_point;
    dw_quads_fn fn;
    dw_quads_fn triples;
    dw_quads_t job;

    if (params == NULL || input == NULL || filter == NULL || bias == NULL || output == NULL ||
        params->multiplier == NULL || params->shift == NULL ||
        !mnmcu_dims_valid(&params->input) || !mnmcu_dims_valid(&params->filter) ||
        !mnmcu_dims_valid(&params->output) || !mnmcu_act_valid(params->act_min, params->act_max)) {
        return MNMCU_ERR_ARG;
    }
    in = &params->input;
    od = &params->output;
    kh = params->filter.h;
    if (params->depth_multiplier != 1 || params->filter.n != 1 || params->filter.c != in->c ||
        od->c != in->c || od->n != in->n || kh > 5 || params->stride_h < 1 ||
        params->stride_w < 1 || params->dilation_h != 1 || params->dilation_w != 1 ||
        params->pad_h < 0 || params->pad_w < 0 || params->pad_w >= dw_width(params)) {
        return MNMCU_ERR_SHAPE;
    }
    width = dw_width(params);
    held = dw_rows_held(params);
    chunk = dw_chunk(params);
    plane = held * width; /* int16 values per channel */
    if (scratch == NULL || scratch->buf == NULL) {
        return MNMCU_ERR_BUFFER;
    }
    if (scratch->size < chunk * plane * (int32_t)sizeof(int16_t)) {
        /* A smaller scratch: smaller chunks of channels, four at least (all if fewer). */
        chunk = (scratch->size / (plane * (int32_t)sizeof(int16_t))) & ~3;
        if (chunk < MNMCU_MIN(4, in->c)) {
            return MNMCU_ERR_BUFFER;
        }
    }
    rows_buf = (int16_t *)scratch->buf;
    zero_point = (int16_t)(-params->input_offset);
    /* Input columns some output reads (the others are never expanded). */
    columns = MNMCU_MIN(in->w, width - params->pad_w);
    fn = dw_quads_for(kh, params->filter.w, params->stride_w);
    triples = dw_triples_for(kh, params->filter.w, params->stride_w);

    for (batch = 0; batch < in->n; ++batch) {
        const int8_t *in_batch = input + (int64_t)batch * in->h * in->w * in->c;
        int8_t *out_batch = output + (int64_t)batch * od->h * od->w * od->c;
        for (c0 = 0; c0 < in->c; c0 += chunk) {
            n = MNMCU_MIN(chunk, in->c - c0);
            if (held == dw_plane_rows(params)) {
                /* The whole padded map, then each channel over every output row. */
                dw_fill(rows_buf, n * plane, zero_point);
                for (y = MNMCU_MAX(0, -params->pad_h);
                     y < MNMCU_MIN(in->h, held - params->pad_h); ++y) {
                    dw_expand_row(in_batch + (int64_t)y * in->w * in->c, columns, in->c, c0, n,
                                  rows_buf + (y + params->pad_h) * width + params->pad_w, plane);
                }
                for (c = 0; c < n; ++c) {
                    dw_job_init(params, filter, bias, c0 + c, &job);
                    for (k = 0; k < kh; ++k) {
                        job.x[k] = rows_buf + c * plane + k * width;
                    }
                    job.out = out_batch + c0 + c;
                    dw_run(&job, fn, triples, od->w, od->h, params->stride_h * width,
                           od->w * od->c);
                }
                continue;
            }
            /* A ring of KH rows and a row of padding: each output row over every channel. */
            dw_fill(rows_buf, n * plane, zero_point);
            for (k = 0; k < kh; ++k) {
                ring_row[k] = -1;
            }
            for (out_y = 0; out_y < od->h; ++out_y) {
                const int32_t y0 = out_y * params->stride_h - params->pad_h;
                const int16_t *rows[5];
                for (k = 0; k < kh; ++k) {
                    int16_t *slot;
                    y = y0 + k;
                    if (y < 0 || y >= in->h) {
                        rows[k] = rows_buf + kh * width;
                        continue;
                    }
                    slot = rows_buf + (y % kh) * width;
                    if (ring_row[y % kh] != y) {
                        dw_expand_row(in_batch + (int64_t)y * in->w * in->c, columns, in->c, c0,
                                      n, slot + params->pad_w, plane);
                        ring_row[y % kh] = y;
                    }
                    rows[k] = slot;
                }
                for (c = 0; c < n; ++c) {
                    dw_job_init(params, filter, bias, c0 + c, &job);
                    for (k = 0; k < kh; ++k) {
                        job.x[k] = rows[k] + c * plane;
                    }
                    job.out = out_batch + (int64_t)out_y * od->w * od->c + c0 + c;
                    dw_run(&job, fn, triples, od->w, 1, 0, 0);
                }
            }
        }
    }
    /* The assembly and C blocks saturate to int8; Helium's clamp to the range. */
    if (!mnmcu_act_full(params->act_min, params->act_max) &&
        (!MNMCU_HAVE_MVE || fn == dw_quads_c ||
         (triples != NULL && (od->w & 3) != 0 && od->w % 3 == 0))) {
        mnmcu_clamp_s8(output, mnmcu_dims_count(od), params->act_min, params->act_max);
    }
    return MNMCU_OK;
}
