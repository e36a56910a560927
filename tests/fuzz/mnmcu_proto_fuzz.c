/*
 * mnmcu_proto_fuzz.c - drives the protocol's C frame decoder with random,
 * valid and mutated frames; built with -fsanitize=address,undefined by
 * tests/unit/test_proto_fuzz.py.
 *
 * Usage: mnmcu_proto_fuzz ITERATIONS SEED
 * Each iteration picks one case:
 *   valid    a random frame (payload 0..MAX+64 bytes) through the C encoder:
 *            it must decode to the same type, seq and payload, or be refused
 *            as too long when the payload exceeds MNMCU_PROTO_MAX_PAYLOAD;
 *   mutated  such a frame with 1-4 mutations (bit flip, deleted, inserted,
 *            duplicated or replaced byte, truncation) inside it: no frame may
 *            decode to anything but the original;
 *   random   1-600 random bytes (zeros included), then a delimiter;
 *   resync   garbage without a delimiter, then a valid frame: the frame
 *            must still decode.
 * Prints one line of counts; exits 1 on any violation.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mnmcu_proto.h"

#define MAX_WIRE 4096u

static uint64_t s_rng;

static uint32_t rnd(void)
{
    s_rng ^= s_rng << 13;
    s_rng ^= s_rng >> 7;
    s_rng ^= s_rng << 17;
    return (uint32_t)(s_rng >> 11);
}

typedef struct {
    uint8_t data[MAX_WIRE];
    size_t len;
    int overflow;
} sink_t;

static void sink_write(void *context, const uint8_t *data, size_t len)
{
    sink_t *sink = (sink_t *)context;
    if (sink->len + len > sizeof sink->data) {
        sink->overflow = 1;
        return;
    }
    memcpy(sink->data + sink->len, data, len);
    sink->len += len;
}

typedef struct {
    uint8_t type;
    uint8_t seq;
    uint16_t len;
    uint8_t payload[MNMCU_PROTO_MAX_PAYLOAD + 64u];
} spec_t;

static void random_spec(spec_t *spec)
{
    spec->type = (uint8_t)rnd();
    spec->seq = (uint8_t)rnd();
    const uint32_t pick = rnd() % 16u;
    if (pick == 0u) {
        spec->len = (uint16_t)(MNMCU_PROTO_MAX_PAYLOAD + 1u + rnd() % 63u);
    } else if (pick == 1u) {
        spec->len = (uint16_t)MNMCU_PROTO_MAX_PAYLOAD;
    } else {
        spec->len = (uint16_t)(rnd() % (MNMCU_PROTO_MAX_PAYLOAD + 1u));
    }
    const uint32_t zeros = rnd() % 4u; /* 0: no zeros ... 3: many */
    for (uint16_t i = 0; i < spec->len; i++) {
        uint8_t b = (uint8_t)rnd();
        if (zeros == 0u && b == 0u) {
            b = 1u;
        } else if (zeros == 3u && (rnd() & 1u)) {
            b = 0u;
        }
        spec->payload[i] = b;
    }
}

static void encode(const spec_t *spec, sink_t *sink)
{
    mnmcu_proto_encoder_t encoder;
    sink->len = 0u;
    sink->overflow = 0;
    mnmcu_proto_encoder_init(&encoder, sink_write, sink);
    mnmcu_proto_encoder_begin(&encoder, spec->type, spec->seq, spec->len);
    /* Write the payload in random pieces, as the device does. */
    uint16_t done = 0u;
    while (done < spec->len) {
        uint16_t piece = (uint16_t)(1u + rnd() % 64u);
        if (piece > spec->len - done) {
            piece = (uint16_t)(spec->len - done);
        }
        mnmcu_proto_encoder_write(&encoder, spec->payload + done, piece);
        done = (uint16_t)(done + piece);
    }
    if (mnmcu_proto_encoder_end(&encoder) != 0) {
        fprintf(stderr, "encoder_end reported a short payload\n");
        exit(1);
    }
}

static int same(const spec_t *spec, const mnmcu_proto_frame_t *frame)
{
    return frame->type == spec->type && frame->seq == spec->seq && frame->len == spec->len &&
           memcmp(frame->payload, spec->payload, spec->len) == 0;
}

typedef struct {
    unsigned long frames;
    unsigned long errors[10];
} result_t;

/* Feed bytes (each through a fresh copy so ASan sees every access); count results. */
static void feed(mnmcu_proto_decoder_t *decoder, const uint8_t *data, size_t len,
                 result_t *result, const spec_t *expect, unsigned long *wrong)
{
    for (size_t i = 0; i < len; i++) {
        mnmcu_proto_frame_t frame;
        const int status = mnmcu_proto_decoder_push(decoder, data[i], &frame);
        if (status == MNMCU_PROTO_FRAME) {
            result->frames++;
            if (frame.len > MNMCU_PROTO_MAX_PAYLOAD) {
                fprintf(stderr, "decoded a frame of %u bytes\n", (unsigned)frame.len);
                exit(1);
            }
            if (expect == NULL || !same(expect, &frame)) {
                (*wrong)++;
            }
        } else if (status < 0 && status >= -9) {
            result->errors[-status]++;
        } else if (status != MNMCU_PROTO_NONE) {
            fprintf(stderr, "unexpected status %d\n", status);
            exit(1);
        }
    }
}

static size_t mutate(uint8_t *wire, size_t len)
{
    const uint32_t count = 1u + rnd() % 4u;
    for (uint32_t m = 0; m < count && len > 2u; m++) {
        const size_t at = 1u + rnd() % (len - 2u); /* inside the delimiters */
        switch (rnd() % 6u) {
        case 0: /* flip a bit */
            wire[at] ^= (uint8_t)(1u << (rnd() % 8u));
            break;
        case 1: /* delete a byte */
            memmove(wire + at, wire + at + 1, len - at - 1);
            len--;
            break;
        case 2: /* insert a random byte */
        case 3: /* duplicate a byte */
            if (len + 1u < MAX_WIRE) {
                memmove(wire + at + 1, wire + at, len - at);
                wire[at] = (rnd() % 6u == 2u) ? (uint8_t)rnd() : wire[at + 1];
                len++;
            }
            break;
        case 4: /* replace a byte */
            wire[at] = (uint8_t)rnd();
            break;
        default: /* cut the frame short (the link drops mid-frame) */
            len = at + 1u;
            break;
        }
    }
    return len;
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: %s ITERATIONS SEED\n", argv[0]);
        return 2;
    }
    const unsigned long iterations = strtoul(argv[1], NULL, 10);
    s_rng = 0x9E3779B97F4A7C15ull ^ strtoull(argv[2], NULL, 10);
    if (s_rng == 0u) {
        s_rng = 1u;
    }
    static mnmcu_proto_decoder_t decoder;
    static sink_t sink;
    static spec_t spec;
    static uint8_t wire[MAX_WIRE];
    result_t result;
    memset(&result, 0, sizeof result);
    unsigned long valid = 0, valid_ok = 0, too_long = 0, mutated = 0, mutated_frames = 0;
    unsigned long random_cases = 0, resync = 0, resync_ok = 0, wrong = 0, bytes = 0;
    const uint8_t delimiter = 0u;
    mnmcu_proto_decoder_init(&decoder);

    for (unsigned long it = 0; it < iterations; it++) {
        random_spec(&spec);
        encode(&spec, &sink);
        if (sink.overflow) {
            fprintf(stderr, "encoded frame exceeds %u bytes\n", MAX_WIRE);
            return 1;
        }
        const unsigned long frames_before = result.frames;
        const unsigned long too_long_before = result.errors[2];
        switch (it % 4u) {
        case 0:
            valid++;
            feed(&decoder, sink.data, sink.len, &result, &spec, &wrong);
            bytes += sink.len;
            if (spec.len > MNMCU_PROTO_MAX_PAYLOAD) {
                too_long += result.errors[2] - too_long_before;
                if (result.errors[2] == too_long_before || result.frames != frames_before) {
                    fprintf(stderr, "an oversized frame was not refused\n");
                    return 1;
                }
            } else if (result.frames == frames_before + 1u) {
                valid_ok++;
            }
            break;
        case 1: {
            mutated++;
            memcpy(wire, sink.data, sink.len);
            const size_t len = mutate(wire, sink.len);
            feed(&decoder, wire, len, &result, &spec, &wrong);
            feed(&decoder, &delimiter, 1u, &result, &spec, &wrong);
            mutated_frames += result.frames - frames_before;
            bytes += len + 1u;
            break;
        }
        case 2: {
            random_cases++;
            const size_t len = 1u + rnd() % 600u;
            for (size_t i = 0; i < len; i++) {
                wire[i] = (rnd() % 8u == 0u) ? 0u : (uint8_t)rnd();
            }
            wire[len] = 0u;
            feed(&decoder, wire, len + 1u, &result, NULL, &wrong);
            bytes += len + 1u;
            break;
        }
        default: {
            resync++;
            const size_t len = 1u + rnd() % 300u;
            for (size_t i = 0; i < len; i++) {
                wire[i] = (uint8_t)(1u + rnd() % 255u);
            }
            feed(&decoder, wire, len, &result, NULL, &wrong);
            const unsigned long wrong_before = wrong;
            const unsigned long frames_mid = result.frames;
            feed(&decoder, sink.data, sink.len, &result, &spec, &wrong);
            bytes += len + sink.len;
            if (spec.len <= MNMCU_PROTO_MAX_PAYLOAD && result.frames == frames_mid + 1u &&
                wrong == wrong_before) {
                resync_ok++;
            } else if (spec.len <= MNMCU_PROTO_MAX_PAYLOAD) {
                fprintf(stderr, "no resynchronisation after %zu bytes of garbage\n", len);
                return 1;
            }
            break;
        }
        }
    }
    const unsigned long valid_in_range = valid - too_long;
    printf("iterations=%lu bytes=%lu valid=%lu valid_decoded=%lu too_long_refused=%lu "
           "mutated=%lu mutated_accepted_as_original=%lu random=%lu resync=%lu resync_ok=%lu "
           "err_cobs=%lu err_too_long=%lu err_short=%lu err_length=%lu err_crc=%lu wrong=%lu\n",
           iterations, bytes, valid, valid_ok, too_long, mutated, mutated_frames, random_cases,
           resync, resync_ok, result.errors[1], result.errors[2], result.errors[3],
           result.errors[4], result.errors[5], wrong);
    return (wrong != 0u || valid_ok != valid_in_range) ? 1 : 0;
}
