/* NBD transmission: decoding and checking requests, encoding replies. */
#ifndef TRIPLEX_NBD_REQUEST_H
#define TRIPLEX_NBD_REQUEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proto.h"

/* Largest WRITE payload (and READ length) accepted. */
#define NBD_MAX_PAYLOAD (32u * 1024 * 1024)

/* A request, in host byte order. */
struct nbd_req {
	uint16_t flags;
	uint16_t type;
	uint64_t cookie;
	uint64_t offset;
	uint32_t count;
};

/* What the handshake agreed for this connection. */
struct nbd_session {
	uint64_t size;
	uint16_t tflags;
	bool structured;
	bool meta_base_allocation;
	uint32_t min_block;
	uint32_t max_block;
};

/* Decode 28 bytes. Returns 0, or -1 if the magic is wrong (the stream is
 * out of sync: close the connection). */
int nbd_req_decode(const uint8_t buf[28], struct nbd_req *req);

/* Payload bytes that follow this request's header on the wire. */
uint32_t nbd_req_payload_len(const struct nbd_req *req);

/* Whether the payload is too large to read at all: the connection must then
 * be closed (the protocol allows it). */
bool nbd_req_payload_too_big(const struct nbd_req *req);

/* Check a request against the session. Returns 0 or the NBD error to reply
 * with (NBD_EINVAL, NBD_ENOSPC, NBD_EPERM, NBD_EOVERFLOW, NBD_ENOTSUP),
 * chosen as doc/proto.md says. The caller still reads any payload. */
uint32_t nbd_req_check(const struct nbd_req *req, const struct nbd_session *s);

/* Map a -errno from the engine to the NBD wire error. */
uint32_t nbd_errno_to_wire(int err);

/* Encode reply headers into buf (big-endian); return the bytes written. */
size_t nbd_encode_simple_reply(uint8_t buf[16], uint64_t cookie,
			       uint32_t error);
size_t nbd_encode_chunk_header(uint8_t buf[20], uint16_t flags,
			       uint16_t type, uint64_t cookie,
			       uint32_t length);
/* A structured NBD_REPLY_TYPE_ERROR chunk with DONE and no message:
 * header plus 6 payload bytes. */
size_t nbd_encode_error_chunk(uint8_t buf[26], uint64_t cookie,
			      uint32_t error);

#endif
