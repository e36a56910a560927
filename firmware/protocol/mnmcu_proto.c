/*
 * mnmcu_proto.c - frame layer of mnmcu's serial protocol: COBS framing,
 * CRC-32, header checks (see mnmcu_proto.h and PROTOCOL.md). Portable C99,
 * no board dependency, no heap; every write is bounds-checked.
 */
#include "mnmcu_proto.h"

#include <string.h>

/* CRC-32 four bits at a time: a 64-byte table instead of 1 KiB. */
static const uint32_t s_crc_nibble[16] = {
    0x00000000u, 0x1DB71064u, 0x3B6E20C8u, 0x26D930ACu, 0x76DC4190u, 0x6B6B51F4u,
    0x4DB26158u, 0x5005713Cu, 0xEDB88320u, 0xF00F9344u, 0xD6D6A3E8u, 0xCB61B38Cu,
    0x9B64C2B0u, 0x86D3D2D4u, 0xA00AE278u, 0xBDBDF21Cu};

uint32_t mnmcu_proto_crc32(uint32_t crc, const void *data, size_t len)
{
    const uint8_t *bytes = (const uint8_t *)data;
    crc = ~crc;
    for (size_t i = 0; i < len; i++) {
        crc ^= bytes[i];
        crc = (crc >> 4) ^ s_crc_nibble[crc & 0x0Fu];
        crc = (crc >> 4) ^ s_crc_nibble[crc & 0x0Fu];
    }
    return ~crc;
}

uint32_t mnmcu_proto_get_u32(const uint8_t *bytes)
{
    return (uint32_t)bytes[0] | ((uint32_t)bytes[1] << 8) | ((uint32_t)bytes[2] << 16) |
           ((uint32_t)bytes[3] << 24);
}

void mnmcu_proto_put_u32(uint8_t *bytes, uint32_t value)
{
    bytes[0] = (uint8_t)(value & 0xFFu);
    bytes[1] = (uint8_t)((value >> 8) & 0xFFu);
    bytes[2] = (uint8_t)((value >> 16) & 0xFFu);
    bytes[3] = (uint8_t)((value >> 24) & 0xFFu);
}

void mnmcu_proto_decoder_init(mnmcu_proto_decoder_t *decoder)
{
    decoder->len = 0u;
    decoder->remaining = 0u;
    decoder->zero_next = 0u;
    decoder->bad = 0u;
    decoder->any = 0u;
}

static void append(mnmcu_proto_decoder_t *decoder, uint8_t byte)
{
    if (decoder->len >= sizeof decoder->buf) {
        decoder->bad = (uint8_t)-MNMCU_PROTO_ERR_TOO_LONG;
        return;
    }
    decoder->buf[decoder->len++] = byte;
}

static int finish(mnmcu_proto_decoder_t *decoder, mnmcu_proto_frame_t *frame)
{
    const uint8_t *buf = decoder->buf;
    const size_t n = decoder->len;
    if (decoder->bad != 0u) {
        return -(int)decoder->bad;
    }
    if (decoder->remaining != 0u) {
        return MNMCU_PROTO_ERR_COBS; /* the last block is cut short */
    }
    if (n < MNMCU_PROTO_OVERHEAD) {
        return MNMCU_PROTO_ERR_SHORT;
    }
    const uint16_t len = (uint16_t)(buf[2] | (buf[3] << 8));
    if ((size_t)len != n - MNMCU_PROTO_OVERHEAD) {
        return MNMCU_PROTO_ERR_LENGTH;
    }
    const size_t body = MNMCU_PROTO_HEADER_SIZE + (size_t)len;
    if (mnmcu_proto_crc32(0u, buf, body) != mnmcu_proto_get_u32(buf + body)) {
        return MNMCU_PROTO_ERR_CRC;
    }
    frame->type = buf[0];
    frame->seq = buf[1];
    frame->len = len;
    frame->payload = buf + MNMCU_PROTO_HEADER_SIZE;
    return MNMCU_PROTO_FRAME;
}

int mnmcu_proto_decoder_push(mnmcu_proto_decoder_t *decoder, uint8_t byte,
                             mnmcu_proto_frame_t *frame)
{
    if (byte == 0u) {
        int result = MNMCU_PROTO_NONE;
        if (decoder->any) {
            result = finish(decoder, frame);
        }
        mnmcu_proto_decoder_init(decoder);
        return result;
    }
    decoder->any = 1u;
    if (decoder->bad != 0u) {
        return MNMCU_PROTO_NONE; /* skip to the next delimiter */
    }
    if (decoder->remaining == 0u) {
        if (decoder->zero_next) {
            append(decoder, 0u);
        }
        decoder->remaining = (uint8_t)(byte - 1u);
        decoder->zero_next = byte != 0xFFu;
    } else {
        append(decoder, byte);
        decoder->remaining--;
    }
    return MNMCU_PROTO_NONE;
}

void mnmcu_proto_encoder_init(mnmcu_proto_encoder_t *encoder, mnmcu_proto_write_fn write,
                              void *context)
{
    encoder->write = write;
    encoder->context = context;
    encoder->crc = 0u;
    encoder->left = 0u;
    encoder->fill = 0u;
}

static void flush_block(mnmcu_proto_encoder_t *encoder)
{
    const uint8_t code = (uint8_t)(encoder->fill + 1u);
    encoder->write(encoder->context, &code, 1u);
    if (encoder->fill > 0u) {
        encoder->write(encoder->context, encoder->block, encoder->fill);
    }
    encoder->fill = 0u;
}

/* COBS-encode raw bytes (header, payload or CRC) into the output. */
static void put_raw(mnmcu_proto_encoder_t *encoder, const uint8_t *bytes, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        if (bytes[i] == 0u) {
            flush_block(encoder);
            continue;
        }
        encoder->block[encoder->fill++] = bytes[i];
        if (encoder->fill == sizeof encoder->block) {
            /* A full block (code 0xFF) has no zero after it. */
            const uint8_t code = 0xFFu;
            encoder->write(encoder->context, &code, 1u);
            encoder->write(encoder->context, encoder->block, encoder->fill);
            encoder->fill = 0u;
        }
    }
}

void mnmcu_proto_encoder_begin(mnmcu_proto_encoder_t *encoder, uint8_t type, uint8_t seq,
                               uint16_t len)
{
    const uint8_t delimiter = 0u;
    uint8_t header[MNMCU_PROTO_HEADER_SIZE];
    header[0] = type;
    header[1] = seq;
    header[2] = (uint8_t)(len & 0xFFu);
    header[3] = (uint8_t)(len >> 8);
    encoder->write(encoder->context, &delimiter, 1u);
    encoder->fill = 0u;
    encoder->left = len;
    encoder->crc = mnmcu_proto_crc32(0u, header, sizeof header);
    put_raw(encoder, header, sizeof header);
}

void mnmcu_proto_encoder_write(mnmcu_proto_encoder_t *encoder, const void *data, size_t len)
{
    if (len > encoder->left) {
        len = encoder->left; /* never more than the header announced */
    }
    encoder->left -= (uint32_t)len;
    encoder->crc = mnmcu_proto_crc32(encoder->crc, data, len);
    put_raw(encoder, (const uint8_t *)data, len);
}

int mnmcu_proto_encoder_end(mnmcu_proto_encoder_t *encoder)
{
    const uint8_t delimiter = 0u;
    uint8_t crc[MNMCU_PROTO_CRC_SIZE];
    const int status = encoder->left == 0u ? 0 : -1;
    while (encoder->left > 0u) {
        const uint8_t pad = 0u; /* keep the frame consistent; the host sees a wrong payload */
        mnmcu_proto_encoder_write(encoder, &pad, 1u);
    }
    mnmcu_proto_put_u32(crc, encoder->crc);
    put_raw(encoder, crc, sizeof crc);
    flush_block(encoder);
    encoder->write(encoder->context, &delimiter, 1u);
    return status;
}
