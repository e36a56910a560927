/*
 * mnmcu_conv_mve.c - CONV_2D for cores with Helium, the M-profile Vector
 * Extension (Cortex-M55): 1x1 convolutions of any depth read the input in
 * place, other windows through copies of two windows. Each block is two
 * pixels by four output channels: per sixteen input values one load of each
 * pixel, one of each channel's weights, and eight 16-lane multiply-accumulates
 * across lanes (VMLADAVA) into eight scalar sums; the two pixels' four sums
 * are then requantised as one vector each (mnmcu_mve.h).
 *
 * Bit-exact with mnmcu_conv.c under the conditions mnmcu.emit.aot checks (see
 * mnmcu_kernels_fast.h); compiled for a core without MVE, the same functions
 * are plain C over the same layout, so the layout can be checked on any host.
 */
/* The hot loops of the runtime: compiled for speed also in -Os builds. */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("O2")
#endif
#include "mnmcu_kernels_fast.h"
#include "mnmcu_mve.h"

static int conv_args_valid(const mnmcu_conv2d_params_t *params, const void *input,
                           const void *filter, const void *bias, const void *output)
{
    return params != NULL && input != NULL && filter != NULL && bias != NULL &&
           output != NULL && params->multiplier != NULL && params->shift != NULL &&
           mnmcu_dims_valid(&params->input) && mnmcu_dims_valid(&params->filter) &&
           mnmcu_dims_valid(&params->output) &&
           mnmcu_act_valid(params->act_min, params->act_max) &&
           params->filter.c == params->input.c && params->output.c == params->filter.n &&
           params->output.n == params->input.n;
}

/*
 * Groups of four output channels of two pixels (field offsets are used by the
 * assembly): the pixels' depth values at x0 and x1, the groups' weights from
 * w ([chunks][4][16] per group), biases, multipliers and shifts from bias,
 * multiplier and shift, outputs to o0 and o1 (four bytes per group).
 */
typedef struct {
    const int8_t *x0;         /* 0 */
    const int8_t *x1;         /* 4 */
    const int8_t *w;          /* 8 */
    const int32_t *bias;      /* 12 */
    const int32_t *multiplier; /* 16 */
    const int32_t *shift;     /* 20 */
    int8_t *o0;               /* 24 */
    int8_t *o1;               /* 28 */
    int32_t groups;           /* 32: >= 1 */
    int32_t full_chunks;      /* 36: chunks of sixteen before the last one */
    int32_t last;             /* 40: predicate of the last chunk's values */
    int32_t output_offset;    /* 44 */
    int32_t act_min;          /* 48 */
    int32_t act_max;          /* 52 */
} conv_groups_t;

#if MNMCU_HAVE_MVE
/*
 * The groups in assembly. VMLADAVA takes even accumulators: pixel 0's four
 * sums are r0, r2, r4, r6 and pixel 1's r8, r10, r12, lr; the pixels are read
 * (and the outputs written) through r1 and r3, the weights through r5, r7
 * counts the chunks. Per group
 * the sums become one vector per pixel (q0, q1) and are requantised as in
 * mnmcu_output_mve() with the group's multipliers (q2) and shifts (q4), the
 * output offset (q5) and clamp (q6, q7).
 */
#define MNMCU_CONV_MVE_CHUNK(ld0, ld1)                                                         \
    ld0 ld1 "vldrb.8 q2, [r5], #16\n\t"                                                        \
            "vmladava.s8 r0, q0, q2\n\t"                                                       \
            "vmladava.s8 r8, q1, q2\n\t"                                                       \
            "vldrb.8 q2, [r5], #16\n\t"                                                        \
            "vmladava.s8 r2, q0, q2\n\t"                                                       \
            "vmladava.s8 r10, q1, q2\n\t"                                                      \
            "vldrb.8 q2, [r5], #16\n\t"                                                        \
            "vmladava.s8 r4, q0, q2\n\t"                                                       \
            "vmladava.s8 r12, q1, q2\n\t"                                                      \
            "vldrb.8 q2, [r5], #16\n\t"                                                        \
            "vmladava.s8 r6, q0, q2\n\t"                                                       \
            "vmladava.s8 lr, q1, q2\n\t"
#define MNMCU_CONV_MVE_REQUANT(q)                                                              \
    "vqrdmulh.s32 " q ", " q ", q2\n\t"                                                        \
    "vshr.s32 q3, " q ", #31\n\t"                                                              \
    "vadd.i32 " q ", " q ", q3\n\t"                                                            \
    "vrshl.s32 " q ", " q ", q4\n\t"                                                           \
    "vadd.i32 " q ", " q ", q5\n\t"                                                            \
    "vmax.s32 " q ", " q ", q6\n\t"                                                            \
    "vmin.s32 " q ", " q ", q7\n\t"
__attribute__((naked, noinline)) static void conv_groups_asm(
    const conv_groups_t *job __attribute__((unused)))
{
    __asm__(
        "push {r4-r11, lr}\n\t"
        "vpush {d8-d15}\n\t"
        "sub sp, sp, #56\n\t"
        "ldm r0!, {r1-r7}\n\t"
        "stm sp, {r1-r7}\n\t"
        "ldm r0, {r1-r7}\n\t"
        "add r8, sp, #28\n\t"
        "stm r8, {r1-r7}\n\t"
        "ldr r9, [sp, #44]\n\t"
        "vdup.32 q5, r9\n\t"
        "ldr r9, [sp, #48]\n\t"
        "vdup.32 q6, r9\n\t"
        "ldr r9, [sp, #52]\n\t"
        "vdup.32 q7, r9\n\t"
        "ldr r5, [sp, #8]\n\t"
        /* Group: biases, both pixels from the start. */
        "3:\n\t"
        "ldr r9, [sp, #12]\n\t"
        "ldm r9!, {r0, r2, r4, r6}\n\t"
        "str r9, [sp, #12]\n\t"
        "mov r8, r0\n\t"
        "mov r10, r2\n\t"
        "mov r12, r4\n\t"
        "mov lr, r6\n\t"
        "ldrd r1, r3, [sp, #0]\n\t"
        "ldr r7, [sp, #36]\n\t"
        "cbz r7, 2f\n\t"
        "1:\n\t" MNMCU_CONV_MVE_CHUNK("vldrb.8 q0, [r1], #16\n\t", "vldrb.8 q1, [r3], #16\n\t")
        "subs r7, r7, #1\n\t"
        "bne 1b\n\t"
        "2:\n\t"
        "ldr r9, [sp, #40]\n\t"
        "vmsr p0, r9\n\t"
        "vpstt\n\t" MNMCU_CONV_MVE_CHUNK("vldrbt.8 q0, [r1]\n\t", "vldrbt.8 q1, [r3]\n\t")
        /* Requantise and store the group. */
        "vmov q0[2], q0[0], r0, r4\n\t"
        "vmov q0[3], q0[1], r2, r6\n\t"
        "vmov q1[2], q1[0], r8, r12\n\t"
        "vmov q1[3], q1[1], r10, lr\n\t"
        "ldrd r9, r11, [sp, #16]\n\t"
        "vldrw.u32 q2, [r9], #16\n\t"
        "vldrw.u32 q4, [r11], #16\n\t"
        "strd r9, r11, [sp, #16]\n\t" MNMCU_CONV_MVE_REQUANT("q0") MNMCU_CONV_MVE_REQUANT("q1")
        "ldrd r1, r3, [sp, #24]\n\t"
        "vstrb.32 q0, [r1], #4\n\t"
        "vstrb.32 q1, [r3], #4\n\t"
        "strd r1, r3, [sp, #24]\n\t"
        "ldr r9, [sp, #32]\n\t"
        "subs r9, r9, #1\n\t"
        "str r9, [sp, #32]\n\t"
        "bne 3b\n\t"
        "add sp, sp, #56\n\t"
        "vpop {d8-d15}\n\t"
        "pop {r4-r11, pc}\n\t");
}
#undef MNMCU_CONV_MVE_CHUNK
#undef MNMCU_CONV_MVE_REQUANT
#endif

#if !MNMCU_HAVE_MVE
/* The groups of a job in C (same layout and results). */
static void conv_groups_c(const conv_groups_t *job)
{
    const int32_t chunks = job->full_chunks + 1;
    int32_t g, j, k;
    for (g = 0; g < job->groups; ++g) {
        const int8_t *w = job->w + g * 64 * chunks;
        for (j = 0; j < 4; ++j) {
            const int32_t c = 4 * g + j;
            int32_t a = job->bias[c], b = job->bias[c];
            for (k = 0; k < 16 * chunks; ++k) {
                const int32_t wk = w[(k >> 4) * 64 + 16 * j + (k & 15)];
                if (k >= 16 * job->full_chunks && !((job->last >> (k & 15)) & 1)) {
                    continue; /* past the depth: the weights are zero, the values unread */
                }
                a += (int32_t)job->x0[k] * wk;
                b += (int32_t)job->x1[k] * wk;
            }
            job->o0[c] = mnmcu_output_fast(a, job->multiplier[c], job->shift[c],
                                           job->output_offset, job->act_min, job->act_max);
            job->o1[c] = mnmcu_output_fast(b, job->multiplier[c], job->shift[c],
                                           job->output_offset, job->act_min, job->act_max);
        }
    }
}

#endif

static void conv_groups(const conv_groups_t *job)
{
#if MNMCU_HAVE_MVE
    conv_groups_asm(job);
#else
    conv_groups_c(job);
#endif
}

/*
 * Every output channel of two pixels whose depth values are at x0 and x1 (the
 * same pixel twice for one), outputs to o0 and o1: whole groups of four, then
 * the last C % 4 channels through a buffer.
 */
static void conv_pair(const mnmcu_conv2d_params_t *params, const int8_t *x0, const int8_t *x1,
                      int32_t depth, const int8_t *w, const int32_t *bias, int8_t *o0,
                      int8_t *o1)
{
    const int32_t channels = params->output.c;
    const int32_t chunks = (depth + 15) >> 4;
    const int32_t whole = channels >> 2, rest = channels & 3;
    int8_t last0[4], last1[4];
    int32_t i;
    conv_groups_t job;
    job.x0 = x0;
    job.x1 = x1;
    job.w = w;
    job.bias = bias;
    job.multiplier = params->multiplier;
    job.shift = params->shift;
    job.o0 = o0;
    job.o1 = o1;
    job.full_chunks = chunks - 1;
    /* One predicate bit per byte of the last chunk that holds a value. */
    job.last = (int32_t)(0xFFFFu >> (16 * chunks - depth));
    job.output_offset = params->output_offset;
    job.act_min = params->act_min;
    job.act_max = params->act_max;
    if (whole > 0) {
        job.groups = whole;
        conv_groups(&job);
    }
    if (rest > 0) {
        int32_t mult[4] = {0, 0, 0, 0}, shift[4] = {-1, -1, -1, -1};
        for (i = 0; i < rest; ++i) {
            mult[i] = params->multiplier[4 * whole + i];
            shift[i] = params->shift[4 * whole + i];
        }
        job.w = w + whole * 64 * chunks;
        job.bias = bias + 4 * whole;
        job.multiplier = mult;
        job.shift = shift;
        job.o0 = last0;
        job.o1 = last1;
        job.groups = 1;
        conv_groups(&job);
        for (i = 0; i < rest; ++i) {
            o0[4 * whole + i] = last0[i];
            o1[4 * whole + i] = last1[i];
        }
    }
}

mnmcu_status_t mnmcu_conv2d_1x1_s8_mve_run(const mnmcu_conv2d_params_t *params,
                                           const int8_t *input, const int8_t *filter,
                                           const int32_t *bias, int8_t *output)
{
    int32_t pixels, depth, channels, p;

    if (!conv_args_valid(params, input, filter, bias, output)) {
        return MNMCU_ERR_ARG;
    }
    if (params->filter.h != 1 || params->filter.w != 1 || params->stride_h != 1 ||
        params->stride_w != 1 || params->pad_h != 0 || params->pad_w != 0 ||
        params->output.h != params->input.h || params->output.w != params->input.w) {
        return MNMCU_ERR_SHAPE;
    }
    pixels = params->input.n * params->input.h * params->input.w;
    depth = params->input.c;
    channels = params->output.c;
    for (p = 0; p < pixels; p += 2) {
        const int32_t q = p + 1 < pixels ? p + 1 : p;
        conv_pair(params, input + (int64_t)p * depth, input + (int64_t)q * depth, depth, filter,
                  bias, output + (int64_t)p * channels, output + (int64_t)q * channels);
    }
    return MNMCU_OK;
}

/* ---- CONV_2D, any window, through copies of two windows ----------------- */

int32_t mnmcu_conv2d_s8_mve_get_buffer_size(const mnmcu_conv2d_params_t *params)
{
    const int32_t patch = params->filter.h * params->filter.w * params->filter.c;
    return 2 * ((patch + 15) & ~15);
}

/* The window of output pixel q (flat over N, OH, OW), the input zero point outside the image. */
static void gather_window(const mnmcu_conv2d_params_t *params, const int8_t *input, int32_t q,
                          int8_t zero_point, int8_t *dst)
{
    const mnmcu_dims_t *in = &params->input;
    const mnmcu_dims_t *fd = &params->filter;
    const mnmcu_dims_t *od = &params->output;
    const int32_t plane = od->h * od->w;
    const int32_t batch = q / plane;
    const int32_t out_y = (q - batch * plane) / od->w;
    const int32_t out_x = q - batch * plane - out_y * od->w;
    const int8_t *in_batch = input + (int64_t)batch * in->h * in->w * in->c;
    const int32_t y0 = out_y * params->stride_h - params->pad_h;
    const int32_t x0 = out_x * params->stride_w - params->pad_w;
    int32_t ky, kx;
    for (ky = 0; ky < fd->h; ++ky) {
        const int32_t in_y = y0 + params->dilation_h * ky;
        if (params->dilation_w == 1 && in_y >= 0 && in_y < in->h && x0 >= 0 &&
            x0 + fd->w <= in->w) {
            /* A whole row of the window inside the image. */
            memcpy(dst, in_batch + ((int64_t)in_y * in->w + x0) * in->c,
                   (size_t)(fd->w * in->c));
            dst += fd->w * in->c;
            continue;
        }
        for (kx = 0; kx < fd->w; ++kx) {
            const int32_t in_x = x0 + params->dilation_w * kx;
            if (in_y < 0 || in_y >= in->h || in_x < 0 || in_x >= in->w) {
                memset(dst, (uint8_t)zero_point, (size_t)in->c);
            } else {
                memcpy(dst, in_batch + ((int64_t)in_y * in->w + in_x) * in->c, (size_t)in->c);
            }
            dst += in->c;
        }
    }
}

mnmcu_status_t mnmcu_conv2d_s8_mve_run(const mnmcu_conv2d_params_t *params, const int8_t *input,
                                       const int8_t *filter, const int32_t *bias, int8_t *output,
                                       const mnmcu_buffer_t *scratch)
{
    int32_t patch, pixels, channels, p;
    int8_t *w0;
    int8_t *w1;
    int8_t zero_point;

    if (!conv_args_valid(params, input, filter, bias, output)) {
        return MNMCU_ERR_ARG;
    }
    if (params->stride_h < 1 || params->stride_w < 1 || params->dilation_h < 1 ||
        params->dilation_w < 1 || params->pad_h < 0 || params->pad_w < 0) {
        return MNMCU_ERR_SHAPE;
    }
    if (scratch == NULL || scratch->buf == NULL ||
        scratch->size < mnmcu_conv2d_s8_mve_get_buffer_size(params)) {
        return MNMCU_ERR_BUFFER;
    }
    patch = params->filter.h * params->filter.w * params->filter.c;
    pixels = params->output.n * params->output.h * params->output.w;
    channels = params->output.c;
    w0 = (int8_t *)scratch->buf;
    w1 = w0 + ((patch + 15) & ~15);
    zero_point = (int8_t)(-params->input_offset);
    for (p = 0; p < pixels; p += 2) {
        const int32_t q = p + 1 < pixels ? p + 1 : p;
        gather_window(params, input, p, zero_point, w0);
        gather_window(params, input, q, zero_point, w1);
        conv_pair(params, w0, w1, patch, filter, bias, output + (int64_t)p * channels,
                  output + (int64_t)q * channels);
    }
    return MNMCU_OK;
}
