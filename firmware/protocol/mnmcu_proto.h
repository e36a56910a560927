/*
 * mnmcu_proto.h - the frame layer of mnmcu's serial protocol (PROTOCOL.md).
 *
 * A frame is  type:u8  seq:u8  len:u16le  payload[len]  crc32:u32le
 * (CRC-32 as in zlib, over type..payload), COBS-encoded and sent between two
 * 0x00 delimiters. This file has no dependency on a board: the decoder takes
 * one byte at a time, the encoder writes through a callback, so the same code
 * runs on the device, on the host and under a fuzzer.
 *
 * Memory: the decoder holds one decoded frame (MNMCU_PROTO_MAX_PAYLOAD + 8
 * bytes); the encoder one COBS block (254 bytes). Neither allocates.
 * Usable from C and C++.
 */
#ifndef MNMCU_PROTO_H
#define MNMCU_PROTO_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/** Protocol version announced in the INFO frame (PROTOCOL.md). */
#define MNMCU_PROTO_VERSION 1u

/** Largest payload the decoder accepts; larger frames are rejected as too long. */
#ifndef MNMCU_PROTO_MAX_PAYLOAD
#define MNMCU_PROTO_MAX_PAYLOAD 260u
#endif

/** type + seq + len before the payload, CRC-32 after it. */
#define MNMCU_PROTO_HEADER_SIZE 4u
#define MNMCU_PROTO_CRC_SIZE 4u
#define MNMCU_PROTO_OVERHEAD (MNMCU_PROTO_HEADER_SIZE + MNMCU_PROTO_CRC_SIZE)

/** Frame types: requests from the host, responses (request | 0x80) from the device. */
typedef enum {
    MNMCU_PROTO_INFO = 0x01,     /**< -> INFO_RESP: who the device is. */
    MNMCU_PROTO_PING = 0x02,     /**< -> PONG: the payload echoed. */
    MNMCU_PROTO_INPUT = 0x03,    /**< offset:u32 + bytes -> INPUT_ACK; into the input tensor. */
    MNMCU_PROTO_INFER = 0x04,    /**< input_crc32:u32 + flags:u8 -> RESULT. */
    MNMCU_PROTO_INFO_RESP = 0x81,
    MNMCU_PROTO_PONG = 0x82,
    MNMCU_PROTO_INPUT_ACK = 0x83,
    MNMCU_PROTO_RESULT = 0x84,
    MNMCU_PROTO_ERROR = 0xFF     /**< code:u8 + detail:i32 + text: a request failed. */
} mnmcu_proto_type_t;

/** Results of mnmcu_proto_decoder_push() and the codes of an ERROR frame. */
typedef enum {
    MNMCU_PROTO_NONE = 0,             /**< No complete frame yet. */
    MNMCU_PROTO_FRAME = 1,            /**< A valid frame is in *frame. */
    MNMCU_PROTO_ERR_COBS = -1,        /**< Bytes that are no COBS encoding. */
    MNMCU_PROTO_ERR_TOO_LONG = -2,    /**< More than MNMCU_PROTO_MAX_PAYLOAD bytes. */
    MNMCU_PROTO_ERR_SHORT = -3,       /**< Fewer bytes than a header and a CRC. */
    MNMCU_PROTO_ERR_LENGTH = -4,      /**< The len field disagrees with the frame. */
    MNMCU_PROTO_ERR_CRC = -5,         /**< The CRC-32 does not match. */
    MNMCU_PROTO_ERR_TYPE = -6,        /**< A frame type the device does not serve. */
    MNMCU_PROTO_ERR_ARGUMENT = -7,    /**< A payload of the wrong size or an offset out of range. */
    MNMCU_PROTO_ERR_INPUT_CRC = -8,   /**< INFER: the input tensor's CRC-32 differs (resend input). */
    MNMCU_PROTO_ERR_RUNTIME = -9      /**< INFER: the runtime failed (detail: its status). */
} mnmcu_proto_status_t;

/** A decoded frame; payload points into the decoder and is valid until the next push. */
typedef struct {
    uint8_t type;
    uint8_t seq;
    uint16_t len;
    const uint8_t *payload;
} mnmcu_proto_frame_t;

/** Streaming decoder state; zero it (or call mnmcu_proto_decoder_init) before use. */
typedef struct {
    uint8_t buf[MNMCU_PROTO_MAX_PAYLOAD + MNMCU_PROTO_OVERHEAD];
    uint16_t len;      /**< Decoded bytes of the current frame. */
    uint8_t remaining; /**< Bytes left in the current COBS block. */
    uint8_t zero_next; /**< A zero byte follows the current block. */
    uint8_t bad;       /**< 0, or the error found in the current frame. */
    uint8_t any;       /**< The current frame has at least one byte. */
} mnmcu_proto_decoder_t;

/** Reset the decoder to "between frames". */
void mnmcu_proto_decoder_init(mnmcu_proto_decoder_t *decoder);

/**
 * Feed one received byte.
 * @param[out] frame  set when MNMCU_PROTO_FRAME is returned.
 * @return MNMCU_PROTO_NONE, MNMCU_PROTO_FRAME, or a negative
 *         mnmcu_proto_status_t when a delimiter ends a bad frame (the decoder
 *         is then ready for the next frame: resynchronised).
 */
int mnmcu_proto_decoder_push(mnmcu_proto_decoder_t *decoder, uint8_t byte,
                             mnmcu_proto_frame_t *frame);

/** Sink of the encoder: write len bytes to the link. */
typedef void (*mnmcu_proto_write_fn)(void *context, const uint8_t *data, size_t len);

/** Streaming encoder state. */
typedef struct {
    mnmcu_proto_write_fn write;
    void *context;
    uint32_t crc;
    uint32_t left; /**< Payload bytes still expected before mnmcu_proto_encoder_end(). */
    uint8_t block[254];
    uint8_t fill;
} mnmcu_proto_encoder_t;

/** Set the sink of an encoder. */
void mnmcu_proto_encoder_init(mnmcu_proto_encoder_t *encoder, mnmcu_proto_write_fn write,
                              void *context);

/** Start a frame of len payload bytes (writes the opening delimiter and the header). */
void mnmcu_proto_encoder_begin(mnmcu_proto_encoder_t *encoder, uint8_t type, uint8_t seq,
                               uint16_t len);

/** Add payload bytes; the total over all calls must be the len given to begin. */
void mnmcu_proto_encoder_write(mnmcu_proto_encoder_t *encoder, const void *data, size_t len);

/** Finish the frame: CRC-32 and closing delimiter. @return 0, or -1 if the payload was short or long. */
int mnmcu_proto_encoder_end(mnmcu_proto_encoder_t *encoder);

/** CRC-32 (zlib's: reflected 0xEDB88320, initial and final 0xFFFFFFFF); chain with crc = previous. */
uint32_t mnmcu_proto_crc32(uint32_t crc, const void *data, size_t len);

/** Little-endian helpers. */
uint32_t mnmcu_proto_get_u32(const uint8_t *bytes);
void mnmcu_proto_put_u32(uint8_t *bytes, uint32_t value);

#ifdef __cplusplus
}
#endif

#endif /* MNMCU_PROTO_H */
