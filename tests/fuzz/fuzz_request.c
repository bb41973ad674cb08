/*
 * libFuzzer harness for transmission requests: every 28-byte piece of
 * the input is decoded (as is, and with the magic forced right) and
 * checked against several sessions. Whatever nbd_req_check accepts must
 * really be valid for the session, and what it rejects gets one of the
 * errors the protocol allows. The reply encoders and the errno mapping
 * are exercised on the same values.
 */
#include <endian.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proto.h"
#include "request.h"

#define ALL_TFLAGS                                                      \
	(NBD_FLAG_HAS_FLAGS | NBD_FLAG_SEND_FLUSH | NBD_FLAG_SEND_FUA |  \
	 NBD_FLAG_SEND_TRIM | NBD_FLAG_SEND_WRITE_ZEROES |               \
	 NBD_FLAG_SEND_FAST_ZERO | NBD_FLAG_SEND_CACHE | NBD_FLAG_SEND_DF)

static const struct nbd_session sessions[] = {
	{ 1ull << 30, ALL_TFLAGS, true, true, 1, 32u << 20 },
	{ 1u << 20, NBD_FLAG_HAS_FLAGS, false, false, 1, 0 },
	{ 64u << 20, ALL_TFLAGS | NBD_FLAG_READ_ONLY, true, false, 512,
	  1u << 20 },
	{ 1u << 20, ALL_TFLAGS & ~NBD_FLAG_SEND_FAST_ZERO, true, true, 4096,
	  65536 },
	{ 0, ALL_TFLAGS, true, true, 1, 0 },
	{ UINT64_MAX, ALL_TFLAGS, true, true, 0, 0 },
	{ 1000, ALL_TFLAGS, false, true, 3, 999 }, /* odd but must not trap */
};

static bool is_write_cmd(uint16_t t)
{
	return t == NBD_CMD_WRITE || t == NBD_CMD_TRIM ||
	       t == NBD_CMD_WRITE_ZEROES;
}

static uint16_t allowed_flags(uint16_t t, const struct nbd_session *s)
{
	uint16_t f = 0;

	if (s->tflags & NBD_FLAG_SEND_FUA)
		f |= NBD_CMD_FLAG_FUA;
	if (t == NBD_CMD_READ && s->structured)
		f |= NBD_CMD_FLAG_DF;
	if (t == NBD_CMD_BLOCK_STATUS)
		f |= NBD_CMD_FLAG_REQ_ONE;
	if (t == NBD_CMD_WRITE_ZEROES) {
		f |= NBD_CMD_FLAG_NO_HOLE;
		if (s->tflags & NBD_FLAG_SEND_FAST_ZERO)
			f |= NBD_CMD_FLAG_FAST_ZERO;
	}
	return f;
}

static uint16_t needed_tflag(uint16_t t)
{
	switch (t) {
	case NBD_CMD_FLUSH:
		return NBD_FLAG_SEND_FLUSH;
	case NBD_CMD_TRIM:
		return NBD_FLAG_SEND_TRIM;
	case NBD_CMD_CACHE:
		return NBD_FLAG_SEND_CACHE;
	case NBD_CMD_WRITE_ZEROES:
		return NBD_FLAG_SEND_WRITE_ZEROES;
	}
	return 0;
}

/* The longest length the session lets this request have. */
static uint64_t max_len(const struct nbd_req *r, const struct nbd_session *s)
{
	uint64_t max = s->max_block ? s->max_block : UINT32_MAX;

	switch (r->type) {
	case NBD_CMD_READ:
	case NBD_CMD_WRITE:
		return max < NBD_MAX_PAYLOAD ? max : NBD_MAX_PAYLOAD;
	}
	return UINT32_MAX; /* no payload: not bounded by the maximum */
}

/* An accepted request must be valid for the session. */
static void check_accepted(const struct nbd_req *r,
			   const struct nbd_session *s)
{
	uint32_t min = s->min_block ? s->min_block : 1;

	if (r->type == NBD_CMD_DISC)
		return;
	if (r->type > NBD_CMD_BLOCK_STATUS)
		abort();
	if (r->flags & ~allowed_flags(r->type, s))
		abort();
	if ((s->tflags & NBD_FLAG_READ_ONLY) && is_write_cmd(r->type))
		abort();
	if (needed_tflag(r->type) && !(s->tflags & needed_tflag(r->type)))
		abort();
	if (r->type == NBD_CMD_FLUSH) {
		if (r->offset || r->count)
			abort();
		return;
	}
	if (r->count == 0 || r->offset > s->size ||
	    r->count > s->size - r->offset)
		abort();
	if (r->offset % min || r->count % min)
		abort();
	if (r->count > max_len(r, s))
		abort();
	if (r->type == NBD_CMD_BLOCK_STATUS &&
	    !(s->structured && s->meta_base_allocation))
		abort();
}

static void check_one(const struct nbd_req *r, const struct nbd_session *s)
{
	uint32_t err = nbd_req_check(r, s);

	switch (err) {
	case 0:
		check_accepted(r, s);
		break;
	case NBD_EINVAL:
		break;
	case NBD_ENOSPC:
		if (r->type != NBD_CMD_WRITE &&
		    r->type != NBD_CMD_WRITE_ZEROES)
			abort();
		break;
	case NBD_EPERM:
		if (!(s->tflags & NBD_FLAG_READ_ONLY) ||
		    !is_write_cmd(r->type))
			abort();
		break;
	default:
		abort();
	}
}

static void check_encoders(const struct nbd_req *r)
{
	uint8_t buf[26];
	uint64_t cookie;
	uint32_t err = nbd_errno_to_wire((int)r->count);

	if (err != 0 && err != NBD_EPERM && err != NBD_EIO &&
	    err != NBD_ENOMEM && err != NBD_EINVAL && err != NBD_ENOSPC &&
	    err != NBD_EOVERFLOW && err != NBD_ENOTSUP &&
	    err != NBD_ESHUTDOWN)
		abort();
	if (nbd_encode_simple_reply(buf, r->cookie, err) != 16)
		abort();
	memcpy(&cookie, buf + 8, 8);
	if (be64toh(cookie) != r->cookie)
		abort();
	if (nbd_encode_error_chunk(buf, r->cookie, err) != 26)
		abort();
	if (buf[20] == 0 && buf[21] == 0 && buf[22] == 0 && buf[23] == 0)
		abort(); /* error chunks carry a nonzero error */
	nbd_encode_chunk_header(buf, r->flags, r->type, r->cookie, r->count);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const uint32_t magic = htobe32(NBD_REQUEST_MAGIC);
	struct nbd_req r;
	uint8_t w[28];

	for (; size >= 28; data += 28, size -= 28) {
		memcpy(w, data, 28);
		if (nbd_req_decode(w, &r) == 0 &&
		    memcmp(w, &magic, 4) != 0)
			abort();
		memcpy(w, &magic, 4);
		if (nbd_req_decode(w, &r) != 0)
			abort();
		if (nbd_req_payload_too_big(&r) &&
		    (r.type != NBD_CMD_WRITE || r.count <= NBD_MAX_PAYLOAD))
			abort();
		for (size_t i = 0; i < sizeof sessions / sizeof sessions[0];
		     i++)
			check_one(&r, &sessions[i]);
		check_encoders(&r);
	}
	return 0;
}
