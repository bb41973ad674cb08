/*
 * Transmission requests: every error nbd_req_check chooses (doc/proto.md
 * "Error values", "Block size constraints", "Request types"), decoding,
 * the errno mapping and the reply encoders, byte by byte.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "proto.h"
#include "request.h"

#define KiB 1024u
#define MiB (1024u * 1024)

#define F_ALL                                                           \
	(NBD_FLAG_HAS_FLAGS | NBD_FLAG_SEND_FLUSH | NBD_FLAG_SEND_FUA |  \
	 NBD_FLAG_SEND_TRIM | NBD_FLAG_SEND_WRITE_ZEROES |               \
	 NBD_FLAG_SEND_FAST_ZERO | NBD_FLAG_SEND_CACHE)

/* Everything negotiated, no block size limit beyond the payload cap. */
static const struct nbd_session s_rw = {
	.size = 1024ull * MiB,
	.tflags = F_ALL | NBD_FLAG_SEND_DF,
	.structured = true,
	.meta_base_allocation = true,
	.min_block = 1,
	.max_block = 0,
};

/* Old client: no structured replies, nothing but READ/WRITE exposed. */
static const struct nbd_session s_plain = {
	.size = 1 * MiB,
	.tflags = NBD_FLAG_HAS_FLAGS,
	.min_block = 1,
	.max_block = 32 * MiB,
};

/* Read-only, 512-byte blocks, 1 MiB max, WRITE_ZEROES without
 * FAST_ZERO, structured replies but no meta context. */
static const struct nbd_session s_ro = {
	.size = 64 * MiB,
	.tflags = NBD_FLAG_HAS_FLAGS | NBD_FLAG_READ_ONLY |
		  NBD_FLAG_SEND_FLUSH | NBD_FLAG_SEND_FUA |
		  NBD_FLAG_SEND_TRIM | NBD_FLAG_SEND_WRITE_ZEROES |
		  NBD_FLAG_SEND_CACHE | NBD_FLAG_SEND_DF,
	.structured = true,
	.min_block = 512,
	.max_block = 1 * MiB,
};

/* 4 KiB blocks, 64 KiB max, all negotiated. */
static const struct nbd_session s_4k = {
	.size = 1 * MiB,
	.tflags = F_ALL | NBD_FLAG_SEND_DF,
	.structured = true,
	.meta_base_allocation = true,
	.min_block = 4 * KiB,
	.max_block = 64 * KiB,
};

struct check_case {
	const char *what;
	const struct nbd_session *s;
	uint16_t type;
	uint16_t flags;
	uint64_t offset;
	uint32_t count;
	uint32_t want;
};

#define FUA NBD_CMD_FLAG_FUA
#define NO_HOLE NBD_CMD_FLAG_NO_HOLE
#define DF NBD_CMD_FLAG_DF
#define REQ_ONE NBD_CMD_FLAG_REQ_ONE
#define FAST_ZERO NBD_CMD_FLAG_FAST_ZERO
#define READ NBD_CMD_READ
#define WRITE NBD_CMD_WRITE
#define DISC NBD_CMD_DISC
#define FLUSH NBD_CMD_FLUSH
#define TRIM NBD_CMD_TRIM
#define CACHE NBD_CMD_CACHE
#define WZ NBD_CMD_WRITE_ZEROES
#define BS NBD_CMD_BLOCK_STATUS
#define GiB (1024ull * MiB)

static const struct check_case cases[] = {
	/* unknown commands */
	{ "type 8", &s_rw, 8, 0, 0, 4096, NBD_EINVAL },
	{ "type 0xffff", &s_rw, 0xffff, 0, 0, 4096, NBD_EINVAL },
	/* READ */
	{ "read", &s_rw, READ, 0, 0, 4096, 0 },
	{ "read to the end", &s_rw, READ, 0, GiB - 4096, 4096, 0 },
	{ "read past end", &s_rw, READ, 0, GiB - 1, 2, NBD_EINVAL },
	{ "read offset past end", &s_rw, READ, 0, GiB + 1, 1, NBD_EINVAL },
	{ "read offset+count wraps", &s_rw, READ, 0, UINT64_MAX, 2,
	  NBD_EINVAL },
	{ "read zero length", &s_rw, READ, 0, 0, 0, NBD_EINVAL },
	{ "read zero length at end", &s_rw, READ, 0, GiB, 0, NBD_EINVAL },
	{ "read max payload", &s_rw, READ, 0, 0, NBD_MAX_PAYLOAD, 0 },
	{ "read over max payload", &s_rw, READ, 0, 0, NBD_MAX_PAYLOAD + 1,
	  NBD_EINVAL },
	{ "read DF structured", &s_rw, READ, DF, 0, 65536, 0 },
	{ "read DF not structured", &s_plain, READ, DF, 0, 4096,
	  NBD_EINVAL },
	{ "read FUA advertised", &s_rw, READ, FUA, 0, 4096, 0 },
	{ "read FUA not advertised", &s_plain, READ, FUA, 0, 4096,
	  NBD_EINVAL },
	{ "read NO_HOLE", &s_rw, READ, NO_HOLE, 0, 4096, NBD_EINVAL },
	{ "read REQ_ONE", &s_rw, READ, REQ_ONE, 0, 4096, NBD_EINVAL },
	{ "read FAST_ZERO", &s_rw, READ, FAST_ZERO, 0, 4096, NBD_EINVAL },
	{ "read unknown flag bit 5", &s_rw, READ, 1u << 5, 0, 4096,
	  NBD_EINVAL },
	{ "read unknown flag bit 15", &s_rw, READ, 1u << 15, 0, 4096,
	  NBD_EINVAL },
	{ "read on read-only", &s_ro, READ, 0, 0, 4096, 0 },
	{ "read misaligned offset", &s_ro, READ, 0, 100, 512, NBD_EINVAL },
	{ "read misaligned length", &s_ro, READ, 0, 0, 100, NBD_EINVAL },
	{ "read at max block", &s_ro, READ, 0, 0, 1 * MiB, 0 },
	{ "read over max block", &s_ro, READ, 0, 0, 1 * MiB + 512,
	  NBD_EINVAL },
	{ "read misaligned min 4k", &s_4k, READ, 0, 512, 4096, NBD_EINVAL },
	/* WRITE */
	{ "write", &s_rw, WRITE, 0, 4096, 4096, 0 },
	{ "write sub-block unaligned", &s_rw, WRITE, 0, 1, 3, 0 },
	{ "write FUA", &s_rw, WRITE, FUA, 0, 4096, 0 },
	{ "write FUA not advertised", &s_plain, WRITE, FUA, 0, 4096,
	  NBD_EINVAL },
	{ "write past end", &s_rw, WRITE, 0, GiB - 1, 2, NBD_ENOSPC },
	{ "write offset wraps", &s_rw, WRITE, 0, UINT64_MAX - 1, 4,
	  NBD_ENOSPC },
	{ "write zero length", &s_rw, WRITE, 0, 0, 0, NBD_EINVAL },
	{ "write DF", &s_rw, WRITE, DF, 0, 4096, NBD_EINVAL },
	{ "write NO_HOLE", &s_rw, WRITE, NO_HOLE, 0, 4096, NBD_EINVAL },
	{ "write on read-only", &s_ro, WRITE, 0, 0, 4096, NBD_EPERM },
	{ "write on read-only past end", &s_ro, WRITE, 0, 64 * MiB, 512,
	  NBD_EPERM },
	{ "write misaligned", &s_4k, WRITE, 0, 4096, 512, NBD_EINVAL },
	{ "write past end misaligned", &s_4k, WRITE, 0, 1 * MiB, 1,
	  NBD_ENOSPC },
	{ "write over max block", &s_4k, WRITE, 0, 0, 68 * KiB, NBD_EINVAL },
	{ "write at max block", &s_4k, WRITE, 0, 0, 64 * KiB, 0 },
	{ "write over max payload", &s_rw, WRITE, 0, 0, NBD_MAX_PAYLOAD + 1,
	  NBD_EINVAL },
	/* DISC: no reply exists, so nothing to report */
	{ "disc", &s_rw, DISC, 0, 0, 0, 0 },
	{ "disc with junk", &s_plain, DISC, 0xffff, 5, 5, 0 },
	/* FLUSH */
	{ "flush", &s_rw, FLUSH, 0, 0, 0, 0 },
	{ "flush FUA", &s_rw, FLUSH, FUA, 0, 0, 0 },
	{ "flush on read-only", &s_ro, FLUSH, 0, 0, 0, 0 },
	{ "flush offset", &s_rw, FLUSH, 0, 4096, 0, NBD_EINVAL },
	{ "flush length", &s_rw, FLUSH, 0, 0, 4096, NBD_EINVAL },
	{ "flush not advertised", &s_plain, FLUSH, 0, 0, 0, NBD_EINVAL },
	{ "flush NO_HOLE", &s_rw, FLUSH, NO_HOLE, 0, 0, NBD_EINVAL },
	/* TRIM */
	{ "trim", &s_rw, TRIM, 0, 0, 4096, 0 },
	{ "trim FUA", &s_rw, TRIM, FUA, 0, 4096, 0 },
	{ "trim 1 GiB", &s_rw, TRIM, 0, 0, (uint32_t)GiB, 0 },
	{ "trim past end", &s_rw, TRIM, 0, GiB - 512, 1024, NBD_EINVAL },
	{ "trim zero length", &s_rw, TRIM, 0, 0, 0, NBD_EINVAL },
	{ "trim not advertised", &s_plain, TRIM, 0, 0, 4096, NBD_EINVAL },
	{ "trim on read-only", &s_ro, TRIM, 0, 0, 4096, NBD_EPERM },
	{ "trim over max block", &s_4k, TRIM, 0, 0, 512 * KiB, 0 },
	{ "trim misaligned", &s_4k, TRIM, 0, 0, 1000, NBD_EINVAL },
	{ "trim NO_HOLE", &s_rw, TRIM, NO_HOLE, 0, 4096, NBD_EINVAL },
	/* CACHE */
	{ "cache", &s_rw, CACHE, 0, 0, 4096, 0 },
	{ "cache FUA", &s_rw, CACHE, FUA, 0, 4096, 0 },
	{ "cache on read-only", &s_ro, CACHE, 0, 0, 4096, 0 },
	{ "cache not advertised", &s_plain, CACHE, 0, 0, 4096, NBD_EINVAL },
	{ "cache past end", &s_rw, CACHE, 0, GiB, 1, NBD_EINVAL },
	{ "cache over max block", &s_ro, CACHE, 0, 0, 2 * MiB, 0 },
	{ "cache DF", &s_rw, CACHE, DF, 0, 4096, NBD_EINVAL },
	/* WRITE_ZEROES */
	{ "zero", &s_rw, WZ, 0, 0, 4096, 0 },
	{ "zero NO_HOLE", &s_rw, WZ, NO_HOLE, 0, 4096, 0 },
	{ "zero FAST_ZERO", &s_rw, WZ, FAST_ZERO, 0, 4096, 0 },
	{ "zero all flags", &s_rw, WZ, FUA | NO_HOLE | FAST_ZERO, 0, 4096,
	  0 },
	{ "zero not advertised", &s_plain, WZ, 0, 0, 4096, NBD_EINVAL },
	{ "zero FAST_ZERO not advertised", &s_ro, WZ, FAST_ZERO, 0, 4096,
	  NBD_EINVAL },
	{ "zero on read-only", &s_ro, WZ, 0, 0, 4096, NBD_EPERM },
	{ "zero past end", &s_rw, WZ, 0, GiB - 4096, 8192, NBD_ENOSPC },
	{ "zero zero length", &s_rw, WZ, 0, 0, 0, NBD_EINVAL },
	{ "zero over max block", &s_4k, WZ, 0, 0, 128 * KiB, 0 },
	{ "zero FAST_ZERO over max block", &s_4k, WZ, FAST_ZERO, 0,
	  128 * KiB, 0 },
	{ "zero misaligned", &s_4k, WZ, 0, 2048, 4096, NBD_EINVAL },
	{ "zero DF", &s_rw, WZ, DF, 0, 4096, NBD_EINVAL },
	{ "zero REQ_ONE", &s_rw, WZ, REQ_ONE, 0, 4096, NBD_EINVAL },
	/* BLOCK_STATUS */
	{ "status", &s_rw, BS, 0, 0, 4096, 0 },
	{ "status REQ_ONE", &s_rw, BS, REQ_ONE, 0, 4096, 0 },
	{ "status huge length", &s_4k, BS, 0, 0, 1 * MiB, 0 },
	{ "status past end", &s_rw, BS, 0, GiB - 4096, 8192, NBD_EINVAL },
	{ "status zero length", &s_rw, BS, 0, 0, 0, NBD_EINVAL },
	{ "status no meta context", &s_ro, BS, 0, 0, 4096, NBD_EINVAL },
	{ "status not structured", &s_plain, BS, 0, 0, 4096, NBD_EINVAL },
	{ "status misaligned", &s_4k, BS, 0, 0, 100, NBD_EINVAL },
	{ "status NO_HOLE", &s_rw, BS, NO_HOLE, 0, 4096, NBD_EINVAL },
	{ "status DF", &s_rw, BS, DF, 0, 4096, NBD_EINVAL },
};

static void test_check_cases(void **state)
{
	int failed = 0;

	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		const struct check_case *c = &cases[i];
		struct nbd_req req = { c->flags, c->type, 42, c->offset,
				       c->count };
		uint32_t got = nbd_req_check(&req, c->s);

		if (got != c->want) {
			print_error("%s: got %u, want %u\n", c->what, got,
				    c->want);
			failed++;
		}
	}
	assert_int_equal(failed, 0);
}

static void test_check_zero_block_sizes(void **state)
{
	struct nbd_session s = s_rw;
	struct nbd_req req = { 0, NBD_CMD_READ, 1, 3, 5 };

	s.size = 16 * GiB;
	s.min_block = 0;
	s.max_block = 0;
	assert_int_equal(nbd_req_check(&req, &s), 0);
	req.type = NBD_CMD_WRITE_ZEROES;
	req.count = 0xffffffffu;
	assert_int_equal(nbd_req_check(&req, &s), 0);
}

static void test_decode(void **state)
{
	static const uint8_t wire[28] = {
		0x25, 0x60, 0x95, 0x13,                         /* magic */
		0x00, 0x11,                                     /* flags */
		0x00, 0x01,                                     /* WRITE */
		0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, /* cookie */
		0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x10, 0x00, /* offset */
		0x00, 0x00, 0x20, 0x00,                         /* count */
	};
	uint8_t bad[28];
	struct nbd_req req;

	assert_int_equal(nbd_req_decode(wire, &req), 0);
	assert_int_equal(req.flags, 0x11);
	assert_int_equal(req.type, NBD_CMD_WRITE);
	assert_int_equal(req.cookie, 0x0102030405060708ull);
	assert_int_equal(req.offset, 0x100001000ull);
	assert_int_equal(req.count, 0x2000);
	assert_int_equal(nbd_req_payload_len(&req), 0x2000);
	memcpy(bad, wire, sizeof bad);
	bad[3] ^= 1;
	assert_int_equal(nbd_req_decode(bad, &req), -1);
}

static void test_payload(void **state)
{
	struct nbd_req req = { 0, NBD_CMD_WRITE, 0, 0, NBD_MAX_PAYLOAD };

	assert_int_equal(nbd_req_payload_len(&req), NBD_MAX_PAYLOAD);
	assert_false(nbd_req_payload_too_big(&req));
	req.count++;
	assert_true(nbd_req_payload_too_big(&req));
	/* Only WRITE carries a payload; a huge READ gets EINVAL instead. */
	req.type = NBD_CMD_READ;
	req.count = 0xffffffffu;
	assert_int_equal(nbd_req_payload_len(&req), 0);
	assert_false(nbd_req_payload_too_big(&req));
	req.type = NBD_CMD_WRITE_ZEROES;
	assert_int_equal(nbd_req_payload_len(&req), 0);
	assert_false(nbd_req_payload_too_big(&req));
}

static void test_errno_to_wire(void **state)
{
	static const struct {
		int err;
		uint32_t want;
	} map[] = {
		{ 0, 0 },
		{ EPERM, NBD_EPERM },         { EROFS, NBD_EPERM },
		{ EIO, NBD_EIO },             { ENOMEM, NBD_ENOMEM },
		{ EINVAL, NBD_EINVAL },       { ENOSPC, NBD_ENOSPC },
		{ EFBIG, NBD_ENOSPC },        { EDQUOT, NBD_ENOSPC },
		{ EOVERFLOW, NBD_EOVERFLOW }, { ENOTSUP, NBD_ENOTSUP },
		{ EOPNOTSUPP, NBD_ENOTSUP },  { ESHUTDOWN, NBD_ESHUTDOWN },
		{ EBADMSG, NBD_EIO },         { ETIMEDOUT, NBD_EIO },
		{ EAGAIN, NBD_EIO },          { 99999, NBD_EIO },
	};

	for (size_t i = 0; i < sizeof map / sizeof map[0]; i++) {
		assert_int_equal(nbd_errno_to_wire(-map[i].err), map[i].want);
		assert_int_equal(nbd_errno_to_wire(map[i].err), map[i].want);
	}
	assert_int_equal(nbd_errno_to_wire(INT32_MIN + 1), NBD_EIO);
	assert_int_equal(nbd_errno_to_wire(INT32_MIN), NBD_EIO);
}

static void test_encode_simple(void **state)
{
	static const uint8_t want[16] = {
		0x67, 0x44, 0x66, 0x98, 0x00, 0x00, 0x00, 0x16,
		0xa1, 0xa2, 0xa3, 0xa4, 0xa5, 0xa6, 0xa7, 0xa8,
	};
	uint8_t buf[16];

	assert_int_equal(nbd_encode_simple_reply(buf, 0xa1a2a3a4a5a6a7a8ull,
						 NBD_EINVAL),
			 16);
	assert_memory_equal(buf, want, 16);
}

static void test_encode_chunk_header(void **state)
{
	static const uint8_t want[20] = {
		0x66, 0x8e, 0x33, 0xef, 0x00, 0x01, 0x00, 0x05,
		0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x07,
		0x00, 0x00, 0x00, 0x0c,
	};
	uint8_t buf[20];

	assert_int_equal(nbd_encode_chunk_header(buf, NBD_REPLY_FLAG_DONE,
						 NBD_REPLY_TYPE_BLOCK_STATUS,
						 7, 12),
			 20);
	assert_memory_equal(buf, want, 20);
}

static void test_encode_error_chunk(void **state)
{
	static const uint8_t want[26] = {
		0x66, 0x8e, 0x33, 0xef, 0x00, 0x01, 0x80, 0x01,
		0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00,
		0x00, 0x00, 0x00, 0x06, 0x00, 0x00, 0x00, 0x1c,
		0x00, 0x00,
	};
	uint8_t buf[26];

	assert_int_equal(nbd_encode_error_chunk(buf, 0x100, NBD_ENOSPC), 26);
	assert_memory_equal(buf, want, 26);
	/* The error field MUST be nonzero. */
	nbd_encode_error_chunk(buf, 0x100, 0);
	assert_int_equal(buf[23], NBD_EIO);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_check_cases),
		cmocka_unit_test(test_check_zero_block_sizes),
		cmocka_unit_test(test_decode),
		cmocka_unit_test(test_payload),
		cmocka_unit_test(test_errno_to_wire),
		cmocka_unit_test(test_encode_simple),
		cmocka_unit_test(test_encode_chunk_header),
		cmocka_unit_test(test_encode_error_chunk),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
