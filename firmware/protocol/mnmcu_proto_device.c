/*
 * mnmcu_proto_device.c - the device side of mnmcu's serial protocol
 * (PROTOCOL.md): replaces the weak mnmcu_app_poll() of main.c, reads frames
 * with mnmcu_hal_getc_timeout() and answers them with mnmcu_hal_write().
 *
 * Input received with INPUT frames is copied straight into the model's input
 * tensor (mnmcu_runtime_input()); there is no second input buffer. RAM: one
 * decoder (MNMCU_PROTO_MAX_PAYLOAD + 8 bytes), one encoder block (254 bytes),
 * a few words of state; with -DMNMCU_PROFILE the RESULT carries at most
 * MNMCU_PROTO_MAX_LAYERS of the per-layer times main.c keeps.
 */
#include <string.h>

#include "mnmcu_app.h"
#include "mnmcu_app_config.h"
#include "mnmcu_hal.h"
#include "mnmcu_proto.h"
#include "mnmcu_runtime.h"

/* How long one mnmcu_app_poll() waits for a byte before it returns. */
#ifndef MNMCU_PROTO_POLL_US
#define MNMCU_PROTO_POLL_US 10000u
#endif

#ifndef MNMCU_PROTO_MAX_LAYERS
#define MNMCU_PROTO_MAX_LAYERS 160u
#endif

#define FLAG_PROFILE 0x01u
#define FLAG_VIRTUAL_TIME 0x02u
#define FLAG_CYCLES 0x04u
#define DTYPE_INT8 1u
#define NO_MICROS 0xFFFFFFFFu

static mnmcu_proto_decoder_t s_decoder;
static mnmcu_proto_encoder_t s_encoder;
static int s_announced;

/* The last inference, answered again when its INFER frame is repeated. */
static struct {
    int valid;
    uint8_t seq;
    uint32_t input_crc;
    uint64_t ticks;
    uint32_t cycles;
    uint8_t flags;
} s_last;

#ifdef MNMCU_PROFILE
#define PROFILE_FLAGS FLAG_PROFILE
#else
#define PROFILE_FLAGS 0u
#endif

static void link_write(void *context, const uint8_t *data, size_t len)
{
    (void)context;
    mnmcu_hal_write(data, len);
}

static void put_u8(uint8_t value)
{
    mnmcu_proto_encoder_write(&s_encoder, &value, 1u);
}

static void put_u16(uint16_t value)
{
    uint8_t bytes[2];
    bytes[0] = (uint8_t)(value & 0xFFu);
    bytes[1] = (uint8_t)(value >> 8);
    mnmcu_proto_encoder_write(&s_encoder, bytes, 2u);
}

static void put_u32(uint32_t value)
{
    uint8_t bytes[4];
    mnmcu_proto_put_u32(bytes, value);
    mnmcu_proto_encoder_write(&s_encoder, bytes, 4u);
}

static void put_f32(float value)
{
    uint32_t bits;
    memcpy(&bits, &value, sizeof bits);
    put_u32(bits);
}

static void put_str(const char *text)
{
    const size_t len = strlen(text);
    const uint8_t n = (uint8_t)(len > 255u ? 255u : len);
    put_u8(n);
    mnmcu_proto_encoder_write(&s_encoder, text, n);
}

static uint16_t str_size(const char *text)
{
    const size_t len = strlen(text);
    return (uint16_t)(1u + (len > 255u ? 255u : len));
}

static uint8_t time_flags(void)
{
    uint32_t probe = 0u;
    uint8_t flags = PROFILE_FLAGS;
    if (mnmcu_hal_time_is_virtual()) {
        flags |= FLAG_VIRTUAL_TIME;
    }
    if (mnmcu_hal_cycles(&probe)) {
        flags |= FLAG_CYCLES;
    }
    return flags;
}

static void send_error(uint8_t seq, uint8_t request, int code, int32_t detail, const char *text)
{
    const size_t len = strlen(text);
    const uint16_t n = (uint16_t)(len > 200u ? 200u : len);
    mnmcu_proto_encoder_begin(&s_encoder, MNMCU_PROTO_ERROR, seq, (uint16_t)(6u + n));
    put_u8((uint8_t)(int8_t)code);
    put_u8(request);
    put_u32((uint32_t)detail);
    mnmcu_proto_encoder_write(&s_encoder, text, n);
    (void)mnmcu_proto_encoder_end(&s_encoder);
}

static void send_info(uint8_t seq)
{
    const mnmcu_runtime_info_t *info = mnmcu_runtime_info();
    const uint16_t fixed = 2u + 2u + 4u + 4u + 4u + 4u + 4u * 4u + 4u * 4u + 4u * 4u + 4u * 4u;
    const uint16_t len =
        (uint16_t)(fixed + str_size(MNMCU_BOARD_ID) + str_size(info->runtime) +
                   str_size(MNMCU_MODEL_SHA256) + str_size(mnmcu_hal_timer_name()) +
                   str_size(MNMCU_VERSION));
    mnmcu_proto_encoder_begin(&s_encoder, MNMCU_PROTO_INFO_RESP, seq, len);
    put_u16((uint16_t)MNMCU_PROTO_VERSION);
    put_u16((uint16_t)MNMCU_PROTO_MAX_PAYLOAD);
    put_u8(time_flags());
    put_u8(DTYPE_INT8);
    put_u8(DTYPE_INT8);
    put_u8(0u);
    put_u32(info->input_size);
    put_u32(info->output_size);
    put_u8((uint8_t)info->input_rank);
    put_u8((uint8_t)info->output_rank);
    put_u16(0u);
    for (uint32_t i = 0; i < MNMCU_RUNTIME_MAX_RANK; i++) {
        put_u32((uint32_t)(i < info->input_rank ? info->input_shape[i] : 0));
    }
    for (uint32_t i = 0; i < MNMCU_RUNTIME_MAX_RANK; i++) {
        put_u32((uint32_t)(i < info->output_rank ? info->output_shape[i] : 0));
    }
    put_f32(info->input_scale);
    put_u32((uint32_t)info->input_zero_point);
    put_f32(info->output_scale);
    put_u32((uint32_t)info->output_zero_point);
    put_u32(info->arena_bytes);
    put_u32(info->arena_used_bytes);
    put_u32(mnmcu_hal_cpu_hz());
    put_u32(mnmcu_hal_tick_hz());
    put_str(MNMCU_BOARD_ID);
    put_str(info->runtime);
    put_str(MNMCU_MODEL_SHA256);
    put_str(mnmcu_hal_timer_name());
    put_str(MNMCU_VERSION);
    (void)mnmcu_proto_encoder_end(&s_encoder);
}

static void handle_input(const mnmcu_proto_frame_t *frame)
{
    const mnmcu_runtime_info_t *info = mnmcu_runtime_info();
    int8_t *input = mnmcu_runtime_input();
    if (frame->len < 4u || input == NULL) {
        send_error(frame->seq, frame->type, MNMCU_PROTO_ERR_ARGUMENT, (int32_t)frame->len,
                   "INPUT needs offset:u32 and data");
        return;
    }
    const uint32_t offset = mnmcu_proto_get_u32(frame->payload);
    const uint32_t count = (uint32_t)frame->len - 4u;
    if (offset > info->input_size || count > info->input_size - offset) {
        send_error(frame->seq, frame->type, MNMCU_PROTO_ERR_ARGUMENT, (int32_t)offset,
                   "INPUT beyond the input tensor");
        return;
    }
    memcpy(input + offset, frame->payload + 4u, count);
    s_last.valid = 0; /* new input: the next INFER runs the model again */
    mnmcu_proto_encoder_begin(&s_encoder, MNMCU_PROTO_INPUT_ACK, frame->seq, 8u);
    put_u32(offset);
    put_u32(count);
    (void)mnmcu_proto_encoder_end(&s_encoder);
}

static void send_result(uint8_t seq)
{
    const mnmcu_runtime_info_t *info = mnmcu_runtime_info();
    const uint32_t hz = mnmcu_hal_tick_hz();
    uint16_t layers = 0u;
#ifdef MNMCU_PROFILE
    uint32_t timed = 0u;
    const mnmcu_layer_time_t *records = mnmcu_app_profile(&timed);
    layers = (uint16_t)(timed < MNMCU_PROTO_MAX_LAYERS ? timed : MNMCU_PROTO_MAX_LAYERS);
#endif
    uint32_t micros = NO_MICROS;
    if (!(s_last.flags & FLAG_VIRTUAL_TIME) && hz != 0u) {
        micros = (uint32_t)(s_last.ticks * 1000000u / hz);
    }
    const uint32_t len = 36u + info->output_size + 8u * (uint32_t)layers;
    mnmcu_proto_encoder_begin(&s_encoder, MNMCU_PROTO_RESULT, seq, (uint16_t)len);
    put_u32(0u);
    put_u32(s_last.input_crc);
    put_u32((uint32_t)(s_last.ticks & 0xFFFFFFFFu));
    put_u32((uint32_t)(s_last.ticks >> 32));
    put_u32(hz);
    put_u32(s_last.cycles);
    put_u32(micros);
    put_u8(s_last.flags);
    put_u8(0u);
    put_u16(layers);
    put_u32(info->output_size);
    mnmcu_proto_encoder_write(&s_encoder, mnmcu_runtime_output(), info->output_size);
#ifdef MNMCU_PROFILE
    for (uint16_t i = 0u; i < layers; i++) {
        put_u32((uint32_t)records[i].index);
        put_u32((uint32_t)records[i].ticks);
    }
#endif
    (void)mnmcu_proto_encoder_end(&s_encoder);
}

static void handle_infer(const mnmcu_proto_frame_t *frame)
{
    const mnmcu_runtime_info_t *info = mnmcu_runtime_info();
    if (frame->len != 5u || mnmcu_runtime_input() == NULL) {
        send_error(frame->seq, frame->type, MNMCU_PROTO_ERR_ARGUMENT, (int32_t)frame->len,
                   "INFER needs input_crc32:u32 and flags:u8");
        return;
    }
    const uint32_t want = mnmcu_proto_get_u32(frame->payload);
    if (s_last.valid && s_last.seq == frame->seq && s_last.input_crc == want) {
        send_result(frame->seq); /* a repeated request: the answer was lost */
        return;
    }
    const uint32_t have = mnmcu_proto_crc32(0u, mnmcu_runtime_input(), info->input_size);
    if (have != want) {
        send_error(frame->seq, frame->type, MNMCU_PROTO_ERR_INPUT_CRC, (int32_t)have,
                   "input tensor CRC-32 differs: send the input again");
        return;
    }
    s_last.valid = 0;
    uint32_t cycles_start = 0u;
    uint32_t cycles_end = 0u;
    const uint8_t flags = time_flags();
    (void)mnmcu_hal_cycles(&cycles_start);
    const uint64_t start = mnmcu_hal_ticks();
#ifdef MNMCU_PROFILE
    mnmcu_app_profile_start();
#endif
    const int status = mnmcu_runtime_invoke();
    const uint64_t ticks = mnmcu_hal_ticks() - start;
    (void)mnmcu_hal_cycles(&cycles_end);
    if (status != MNMCU_RUNTIME_OK) {
        send_error(frame->seq, frame->type, MNMCU_PROTO_ERR_RUNTIME, status,
                   mnmcu_runtime_status_str(status));
        return;
    }
    s_last.valid = 1;
    s_last.seq = frame->seq;
    s_last.input_crc = want;
    s_last.ticks = ticks;
    s_last.cycles = (flags & FLAG_CYCLES) ? cycles_end - cycles_start : 0u;
    s_last.flags = flags;
    send_result(frame->seq);
}

static void handle_frame(const mnmcu_proto_frame_t *frame)
{
    switch (frame->type) {
    case MNMCU_PROTO_INFO:
        send_info(frame->seq);
        break;
    case MNMCU_PROTO_PING:
        mnmcu_proto_encoder_begin(&s_encoder, MNMCU_PROTO_PONG, frame->seq, frame->len);
        mnmcu_proto_encoder_write(&s_encoder, frame->payload, frame->len);
        (void)mnmcu_proto_encoder_end(&s_encoder);
        break;
    case MNMCU_PROTO_INPUT:
        handle_input(frame);
        break;
    case MNMCU_PROTO_INFER:
        handle_infer(frame);
        break;
    default:
        send_error(frame->seq, frame->type, MNMCU_PROTO_ERR_TYPE, frame->type,
                   "unknown frame type");
        break;
    }
}

static const char *decode_error_text(int status)
{
    switch (status) {
    case MNMCU_PROTO_ERR_COBS:
        return "bad COBS encoding";
    case MNMCU_PROTO_ERR_TOO_LONG:
        return "frame too long";
    case MNMCU_PROTO_ERR_SHORT:
        return "frame too short";
    case MNMCU_PROTO_ERR_LENGTH:
        return "length field mismatch";
    default:
        return "CRC-32 mismatch";
    }
}

void mnmcu_app_poll(void)
{
    if (!s_announced) {
        s_announced = 1;
        mnmcu_proto_decoder_init(&s_decoder);
        mnmcu_proto_encoder_init(&s_encoder, link_write, NULL);
        send_info(0u); /* the handshake: who this device is, unasked */
    } else if (mnmcu_hal_console_opened()) {
        /* A host opened the console after boot: the boot line and the handshake again. */
        (void)mnmcu_app_run_sample();
        s_last.valid = 0; /* the sample replaced the input tensor */
        mnmcu_proto_decoder_init(&s_decoder);
        send_info(0u);
    }
    for (;;) {
        const int byte = mnmcu_hal_getc_timeout(MNMCU_PROTO_POLL_US);
        if (byte < 0) {
            return;
        }
        mnmcu_proto_frame_t frame;
        const int status = mnmcu_proto_decoder_push(&s_decoder, (uint8_t)byte, &frame);
        if (status == MNMCU_PROTO_FRAME) {
            handle_frame(&frame);
        } else if (status < 0) {
            send_error(0u, 0u, status, 0, decode_error_text(status));
        }
    }
}
