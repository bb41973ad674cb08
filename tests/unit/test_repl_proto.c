/* Replication protocol headers: exact wire layout, round trips, and every
 * validation error (-EPROTO: framing, -EINVAL: invalid request). */
#include <endian.h>
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "crc32c.h"
#include "repl_proto.h"

static struct repl_req req(uint16_t op)
{
	struct repl_req q = {
		.version = REPL_VERSION,
		.op = op,
		.req_id = 0x1122334455667788ull,
		.volume_id = 42,
		.epoch = 7,
		.session = 99,
	};

	return q;
}

/* Encode q and decode it again. */
static int roundtrip(const struct repl_req *q, struct repl_req *out)
{
	uint8_t w[64];

	repl_req_encode(q, w);
	return repl_req_decode(w, out);
}

static int decode_of(struct repl_req q)
{
	struct repl_req out;

	return roundtrip(&q, &out);
}

static void test_req_layout(void **state)
{
	struct repl_req q = req(REPL_OP_WRITE), out;
	uint8_t w[64];
	uint32_t crc;

	(void)state;
	q.offset = 8192;
	q.length = 4096;
	q.flags = REPL_FLAG_FUA;
	q.payload_len = 4096 + 4;
	repl_req_encode(&q, w);
	assert_memory_equal(w, "TPXR", 4);
	assert_int_equal(w[4], REPL_VERSION);
	assert_int_equal(w[6], REPL_OP_WRITE);
	assert_int_equal(w[8], 0x88);         /* req_id little-endian */
	assert_int_equal(w[16], 42);          /* volume_id */
	assert_int_equal(w[24], 7);           /* epoch */
	assert_int_equal(w[32], 99);          /* seq */
	assert_int_equal(w[41], 0x20);        /* offset 8192 */
	assert_int_equal(w[49], 0x10);        /* length 4096 */
	assert_int_equal(w[52], REPL_FLAG_FUA);
	assert_int_equal(w[56] | w[57] << 8, 4100);
	memcpy(&crc, w + 60, 4);
	assert_int_equal(le32toh(crc), crc32c(w, 60));
	assert_int_equal(repl_req_decode(w, &out), 0);
	assert_int_equal(out.req_id, q.req_id);
	assert_int_equal(out.volume_id, 42);
	assert_int_equal(out.epoch, 7);
	assert_int_equal(out.session, 99);
	assert_int_equal(out.offset, 8192);
	assert_int_equal(out.length, 4096);
	assert_int_equal(out.flags, REPL_FLAG_FUA);
	assert_int_equal(out.payload_len, 4100);
}

static void test_req_every_op(void **state)
{
	(void)state;
	for (uint16_t op = 1; op < REPL_OP_MAX; op++) {
		struct repl_req q = req(op);

		if (op == REPL_OP_OPEN)
			q.payload_len = sizeof(struct repl_open);
		if (op == REPL_OP_RESIZE)
			q.payload_len = REPL_RESIZE_SIZE;
		if (op == REPL_OP_LEASE)
			q.payload_len = REPL_LEASE_SIZE;
		assert_int_equal(decode_of(q), 0);
		assert_string_not_equal(repl_op_name(op), "?");
	}
	assert_string_equal(repl_op_name(0), "?");
	assert_string_equal(repl_op_name(REPL_OP_MAX), "?");
}

static void test_req_framing_errors(void **state)
{
	struct repl_req q = req(REPL_OP_READ), out;
	uint8_t w[64];

	(void)state;
	repl_req_encode(&q, w);
	w[0] ^= 1;                       /* magic (the crc is now wrong too) */
	assert_int_equal(repl_req_decode(w, &out), -EPROTO);
	repl_req_encode(&q, w);
	w[60] ^= 1;                      /* crc */
	assert_int_equal(repl_req_decode(w, &out), -EPROTO);
	repl_req_encode(&q, w);
	w[20] ^= 1;                      /* any field under the crc */
	assert_int_equal(repl_req_decode(w, &out), -EPROTO);

	q.version = REPL_VERSION + 1;    /* another version */
	assert_int_equal(decode_of(q), -EPROTO);
	q = req(REPL_OP_HELLO);
	q.version = REPL_VERSION + 1;    /* ... but HELLO gets an answer */
	assert_int_equal(decode_of(q), -EPROTONOSUPPORT);
}

static void test_req_payload_errors(void **state)
{
	struct repl_req q;

	(void)state;
	q = req(REPL_OP_WRITE);
	q.length = 8192;
	q.payload_len = 8192;            /* crcs missing */
	assert_int_equal(decode_of(q), -EPROTO);
	q.payload_len = 8192 + 8;
	assert_int_equal(decode_of(q), 0);
	q.length = REPL_MAX_DATA + 4096; /* too big to accept */
	q.payload_len = q.length + q.length / 4096 * 4;
	assert_int_equal(decode_of(q), -EPROTO);
	q.length = REPL_MAX_DATA;
	q.payload_len = REPL_MAX_PAYLOAD;
	assert_int_equal(decode_of(q), 0);

	q = req(REPL_OP_HELLO);
	q.payload_len = REPL_MAX_HELLO;
	assert_int_equal(decode_of(q), 0);
	q.payload_len = REPL_MAX_HELLO + 1;
	assert_int_equal(decode_of(q), -EPROTO);

	q = req(REPL_OP_OPEN);
	q.payload_len = sizeof(struct repl_open) - 1;
	assert_int_equal(decode_of(q), -EPROTO);

	for (uint16_t op = REPL_OP_READ; op < REPL_OP_MAX; op++) {
		if (op == REPL_OP_WRITE)
			continue;
		q = req(op);
		q.payload_len = 4;
		assert_int_equal(decode_of(q), -EPROTO);
	}
	q = req(0);                       /* unknown op with a payload */
	q.payload_len = 1;
	assert_int_equal(decode_of(q), -EPROTO);
}

static void test_req_invalid(void **state)
{
	struct repl_req q;

	(void)state;
	assert_int_equal(decode_of(req(0)), -EINVAL);          /* unknown op */
	assert_int_equal(decode_of(req(REPL_OP_MAX)), -EINVAL);
	assert_int_equal(decode_of(req(0xffff)), -EINVAL);

	q = req(REPL_OP_READ);
	q.offset = 100;
	assert_int_equal(decode_of(q), -EINVAL);
	q.offset = 0;
	q.length = 512;
	assert_int_equal(decode_of(q), -EINVAL);
	q.length = REPL_MAX_DATA + 4096;
	assert_int_equal(decode_of(q), -EINVAL);
	q.length = REPL_MAX_DATA;
	assert_int_equal(decode_of(q), 0);
	q.flags = REPL_FLAG_FUA;                                /* not for READ */
	assert_int_equal(decode_of(q), -EINVAL);

	q = req(REPL_OP_CRCS);
	q.length = REPL_MAX_DATA + 4096;
	assert_int_equal(decode_of(q), -EINVAL);

	q = req(REPL_OP_WRITE);                 /* well framed, misaligned */
	q.length = 100;
	q.payload_len = 100;
	assert_int_equal(decode_of(q), -EINVAL);
	q.length = 4096;
	q.payload_len = 4100;
	q.flags = 0x80;                                         /* unknown flag */
	assert_int_equal(decode_of(q), -EINVAL);
	q.flags = REPL_FLAG_NO_HOLE;                            /* not for WRITE */
	assert_int_equal(decode_of(q), -EINVAL);

	q = req(REPL_OP_ZERO);
	q.length = 1u << 31;                    /* no cap on trim and zero */
	q.flags = REPL_FLAG_FUA | REPL_FLAG_NO_HOLE;
	assert_int_equal(decode_of(q), 0);

	q = req(REPL_OP_FLUSH);                 /* no range on FLUSH */
	q.offset = 4096;
	assert_int_equal(decode_of(q), -EINVAL);
	q = req(REPL_OP_DIRTY);
	q.length = 4096;
	assert_int_equal(decode_of(q), -EINVAL);
}

static void test_rep(void **state)
{
	struct repl_rep p = {
		.version = REPL_VERSION,
		.op = REPL_OP_READ,
		.req_id = 5,
		.epoch = 9,
		.status = -ESTALE,
		.payload_len = 0,
	}, out;
	uint8_t w[40];

	(void)state;
	repl_rep_encode(&p, w);
	assert_memory_equal(w, "TPXA", 4);
	assert_int_equal(w[16], 9);
	assert_int_equal(repl_rep_decode(w, &out), 0);
	assert_int_equal(out.req_id, 5);
	assert_int_equal(out.epoch, 9);
	assert_int_equal(out.status, -ESTALE);
	assert_int_equal(out.op, REPL_OP_READ);

	w[36] ^= 1;
	assert_int_equal(repl_rep_decode(w, &out), -EPROTO);
	p.status = 0;
	p.payload_len = REPL_MAX_PAYLOAD + 1;
	repl_rep_encode(&p, w);
	assert_int_equal(repl_rep_decode(w, &out), -EPROTO);
	p.payload_len = REPL_MAX_PAYLOAD;
	repl_rep_encode(&p, w);
	assert_int_equal(repl_rep_decode(w, &out), 0);
	p.status = 5;                           /* positive status */
	repl_rep_encode(&p, w);
	assert_int_equal(repl_rep_decode(w, &out), -EPROTO);
	p.status = 0;
	p.version = REPL_VERSION + 1;
	repl_rep_encode(&p, w);
	assert_int_equal(repl_rep_decode(w, &out), -EPROTO);
	p.version = REPL_VERSION;
	repl_rep_encode(&p, w);
	w[32] = 1;                              /* reserved, crc recomputed */
	{
		uint32_t c = htole32(crc32c(w, 36));

		memcpy(w + 36, &c, 4);
	}
	assert_int_equal(repl_rep_decode(w, &out), -EPROTO);
	memcpy(w, "XXXX", 4);
	assert_int_equal(repl_rep_decode(w, &out), -EPROTO);
}

static int open_of(uint64_t size, const char *name)
{
	uint8_t w[sizeof(struct repl_open)];
	struct repl_open o;

	repl_open_encode(size, name, w);
	return repl_open_decode(w, sizeof w, &o);
}

static void test_open(void **state)
{
	uint8_t w[sizeof(struct repl_open)];
	struct repl_open o;

	(void)state;
	repl_open_encode(1 << 20, "demo-1.a_b", w);
	assert_int_equal(repl_open_decode(w, sizeof w, &o), 0);
	assert_int_equal(o.size, 1 << 20);
	assert_string_equal(o.name, "demo-1.a_b");
	assert_int_equal(repl_open_decode(w, sizeof w - 1, &o), -EINVAL);
	memset(w + 8, 'a', 64);                 /* no NUL */
	assert_int_equal(repl_open_decode(w, sizeof w, &o), -EINVAL);

	assert_int_equal(open_of(4096, "x"), 0);
	assert_int_equal(open_of(0, "x"), -EINVAL);
	assert_int_equal(open_of(4097, "x"), -EINVAL);
	assert_int_equal(open_of((1ull << 50) + 4096, "x"), -EINVAL);
	assert_int_equal(open_of(4096, ""), -EINVAL);
	assert_int_equal(open_of(4096, ".."), -EINVAL);
	assert_int_equal(open_of(4096, ".hidden"), -EINVAL);
	assert_int_equal(open_of(4096, "a/b"), -EINVAL);
	assert_int_equal(open_of(4096, "a b"), -EINVAL);
	assert_true(repl_name_valid("abcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxyzabcdefghijk"));
	assert_false(repl_name_valid("abcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxyzabcdefghijkl"));
}

static int resize_of(uint64_t size)
{
	uint8_t w[REPL_RESIZE_SIZE];
	uint64_t got = 0;
	int ret;

	repl_resize_encode(size, w);
	ret = repl_resize_decode(w, sizeof w, &got);
	if (ret == 0)
		assert_int_equal(got, size);
	return ret;
}

static void test_resize(void **state)
{
	struct repl_req q = req(REPL_OP_RESIZE);
	uint8_t w[REPL_RESIZE_SIZE] = { 0 };
	uint64_t size;

	(void)state;
	assert_int_equal(resize_of(4096), 0);
	assert_int_equal(resize_of(REPL_MAX_VOLUME_SIZE), 0);
	assert_int_equal(resize_of(0), -EINVAL);
	assert_int_equal(resize_of(8191), -EINVAL);
	assert_int_equal(resize_of(REPL_MAX_VOLUME_SIZE + 4096), -EINVAL);
	assert_int_equal(resize_of(UINT64_MAX & ~4095ull), -EINVAL);
	assert_int_equal(repl_resize_decode(w, sizeof w - 1, &size), -EINVAL);
	/* Framing: exactly 8 payload bytes, no range, no flags. */
	q.payload_len = REPL_RESIZE_SIZE;
	assert_int_equal(decode_of(q), 0);
	q.payload_len = REPL_RESIZE_SIZE + 1;
	assert_int_equal(decode_of(q), -EPROTO);
	q.payload_len = 0;
	assert_int_equal(decode_of(q), -EPROTO);
	q.payload_len = REPL_RESIZE_SIZE;
	q.offset = 4096;
	assert_int_equal(decode_of(q), -EINVAL);
	q.offset = 0;
	q.flags = REPL_FLAG_CREATE;
	assert_int_equal(decode_of(q), -EINVAL);
}

/* LEASE: 8 payload bytes each way, at most REPL_LEASE_MAX_MS; a request
 * must ask for some time, a reply may say 0 (nothing to wait for). */
static void test_lease(void **state)
{
	struct repl_req q = req(REPL_OP_LEASE);
	uint8_t w[REPL_LEASE_SIZE];
	uint64_t ms;

	(void)state;
	repl_lease_encode(2000, w);
	assert_int_equal(repl_lease_decode(w, sizeof w, true, &ms), 0);
	assert_int_equal(ms, 2000);
	repl_lease_encode(0, w);
	assert_int_equal(repl_lease_decode(w, sizeof w, true, &ms), -EINVAL);
	assert_int_equal(repl_lease_decode(w, sizeof w, false, &ms), 0);
	repl_lease_encode(REPL_LEASE_MAX_MS + 1, w);
	assert_int_equal(repl_lease_decode(w, sizeof w, false, &ms), -EINVAL);
	repl_lease_encode(UINT64_MAX, w);
	assert_int_equal(repl_lease_decode(w, sizeof w, true, &ms), -EINVAL);
	assert_int_equal(repl_lease_decode(w, sizeof w - 1, false, &ms), -EINVAL);
	q.payload_len = REPL_LEASE_SIZE;
	assert_int_equal(decode_of(q), 0);
	q.payload_len = 0;
	assert_int_equal(decode_of(q), -EPROTO);
	assert_string_equal(repl_op_name(REPL_OP_LEASE), "LEASE");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_req_layout),
		cmocka_unit_test(test_resize),
		cmocka_unit_test(test_lease),
		cmocka_unit_test(test_req_every_op),
		cmocka_unit_test(test_req_framing_errors),
		cmocka_unit_test(test_req_payload_errors),
		cmocka_unit_test(test_req_invalid),
		cmocka_unit_test(test_rep),
		cmocka_unit_test(test_open),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
