/*
 * The fast element-wise kernels (mnmcu_elementwise_dsp.c) against the
 * portable ones on random and extreme cases: table lookups, MEAN, ADD of two
 * tensors through tables, MUL by one value per channel. Lengths and channel
 * counts cover the tails of every block (words, 16 lanes, 4 and 8 channels),
 * inputs include all -128 and all 127, outputs are also written in place.
 * Prints "cases=... mismatches=..." and exits non-zero on a mismatch.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mnmcu_kernels_fast.h"

#ifndef CHECK_CASES
#define CHECK_CASES 3000
#endif
#define MAX_ELEMS 16384

static uint64_t state = 0x9E3779B97F4A7C15ull;
static uint32_t next(void)
{
    state ^= state << 13;
    state ^= state >> 7;
    state ^= state << 17;
    return (uint32_t)state;
}

static int32_t range(int32_t lo, int32_t hi)
{
    return lo + (int32_t)(next() % (uint32_t)(hi - lo + 1));
}

static int8_t in1[MAX_ELEMS], in2[MAX_ELEMS], want[MAX_ELEMS], got[MAX_ELEMS];
static int8_t scale[64];
static int8_t table8[256];
static int32_t table1[256], table2[256];

/* Inputs: random, all -128, all 127, or only -128 and 127 (by case number). */
static void fill(int8_t *p, int32_t n, long k)
{
    int32_t i;
    for (i = 0; i < n; ++i) {
        switch (k % 4) {
        case 0:
            p[i] = (int8_t)range(-128, 127);
            break;
        case 1:
            p[i] = -128;
            break;
        case 2:
            p[i] = 127;
            break;
        default:
            p[i] = (int8_t)((next() & 1u) ? 127 : -128);
            break;
        }
    }
}

static int32_t multiplier(void)
{
    return (int32_t)((1u << 30) + next() % (1u << 30));
}

static void act(long k, int32_t *lo, int32_t *hi)
{
    *lo = -128;
    *hi = 127;
    if (k % 3 == 2) {
        *lo = range(-128, 0);
        *hi = range(*lo, 127);
    }
}

static long bad = 0;

static void check(const char *what, long k, int32_t n, mnmcu_status_t s1, mnmcu_status_t s2)
{
    if (s1 != MNMCU_OK || s2 != MNMCU_OK || memcmp(want, got, (size_t)n) != 0) {
        if (bad++ < 5) {
            printf("%s case %ld: n=%d status %d %d\n", what, k, (int)n, (int)s1, (int)s2);
        }
    }
}

static void check_lut(long k)
{
    static const int32_t sizes[] = {0, 1, 3, 4, 7, 8, 9, 15, 16, 17, 31, 33, 4099};
    const int32_t size = k % 2 ? sizes[next() % 13u] : range(0, 300);
    mnmcu_lut_params_t p;
    int32_t i;
    p.size = size;
    for (i = 0; i < 256; ++i) {
        table8[i] = (int8_t)range(-128, 127);
    }
    fill(in1, size, k / 2);
    check("lut", k, size, mnmcu_lut_s8_run(&p, in1, table8, want),
          mnmcu_lut_s8_dsp_run(&p, in1, table8, got));
    /* In place. */
    memcpy(got, in1, (size_t)size);
    check("lut in place", k, size, MNMCU_OK, mnmcu_lut_s8_dsp_run(&p, got, table8, got));
}

static void check_mean(long k)
{
    mnmcu_mean_params_t p;
    int32_t n;
    p.input.n = range(1, 2);
    p.input.c = k % 5 == 0 ? range(1, 64) : range(1, 20);
    if (k % 7 == 0) {
        /* More pixels than one int16 run (255). */
        p.input.h = range(16, 19);
        p.input.w = range(16, 19);
        p.input.c = range(1, 9);
    } else {
        p.input.h = range(1, 8);
        p.input.w = range(1, 8);
    }
    n = p.input.n * p.input.h * p.input.w * p.input.c;
    p.input_offset = range(-128, 128);
    p.output_offset = range(-128, 127);
    p.multiplier = k % 11 == 0 ? 0 : multiplier();
    p.shift = k % 4 == 0 ? range(-31, -1) : range(-8 - (p.input.h * p.input.w > 16), -1) - 4;
    fill(in1, n, k / 3);
    check("mean", k, p.input.n * p.input.c, mnmcu_mean_s8_run(&p, in1, want),
          mnmcu_mean_s8_dsp_run(&p, in1, got));
}

static void check_add(long k)
{
    mnmcu_add_tables_params_t p;
    const int32_t bound = k % 5 == 0 ? (1 << 28) - 1 : (1 << 20);
    int32_t i;
    p.size = k % 2 ? range(0, 40) : range(0, 700);
    p.output_offset = range(-128, 127);
    p.output_multiplier = multiplier();
    p.output_shift = range(-22, -1);
    act(k, &p.act_min, &p.act_max);
    for (i = 0; i < 256; ++i) {
        table1[i] = range(-bound, bound);
        table2[i] = range(-bound, bound);
    }
    fill(in1, p.size, k / 2);
    fill(in2, p.size, k / 3);
    check("add", k, p.size, mnmcu_add_s8_tables_run(&p, in1, in2, table1, table2, want),
          mnmcu_add_s8_tables_dsp_run(&p, in1, in2, table1, table2, got));
    memcpy(got, in1, (size_t)p.size);
    check("add in place", k, p.size, MNMCU_OK,
          mnmcu_add_s8_tables_dsp_run(&p, got, in2, table1, table2, got));
}

static void check_mul(long k)
{
    mnmcu_mul_channels_params_t p;
    int32_t n;
    p.pixels = k % 9 == 0 ? range(100, 190) : range(1, 30);
    p.channels = k % 2 ? range(1, 40) : range(1, 64);
    n = p.pixels * p.channels;
    p.input_offset = k % 13 == 0 ? 128 : range(-128, 128);
    p.scale_offset = k % 17 == 0 ? 128 : range(-128, 128);
    p.output_offset = range(-128, 127);
    p.output_multiplier = k % 19 == 0 ? (int32_t)((1u << 31) - 1u) : multiplier();
    p.output_shift = k % 6 == 0 ? -1 : range(-22, -1);
    if (k % 4 != 0) {
        p.output_shift = range(-16, -6);
    }
    act(k, &p.act_min, &p.act_max);
    fill(in1, n, k / 2);
    fill(scale, p.channels, k / 5);
    check("mul", k, n, mnmcu_mul_channels_s8_run(&p, in1, scale, want),
          mnmcu_mul_channels_s8_dsp_run(&p, in1, scale, got));
    memcpy(got, in1, (size_t)n);
    check("mul in place", k, n, MNMCU_OK, mnmcu_mul_channels_s8_dsp_run(&p, got, scale, got));
}

int main(void)
{
    long k;
    for (k = 0; k < CHECK_CASES; ++k) {
        check_lut(k);
        check_mean(k);
        check_add(k);
        check_mul(k);
    }
    printf("cases=%ld mismatches=%ld\n", k, bad);
    exit(bad != 0);
}
