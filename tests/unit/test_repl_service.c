/* The replica service, driven over socketpairs with the real loop and real
 * stores in a temporary directory: one behaviour per test. */
#include <endian.h>
#include <errno.h>
#include <ftw.h>
#include <sched.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "crc32c.h"
#include "repl_proto.h"
#include "repl_service.h"

#define MiB (1024ull * 1024)
#define VOL_SIZE (16 * MiB)
#define B 4096u
#define VID 77

struct ctx {
	char tmp[64];
	struct loop loop;
	struct store_io io;
	struct repl_service *svc;
	int fd;               /* client end */
	uint64_t next_id;
	uint64_t epoch;       /* of expect_read's READs */
	uint64_t session;     /* of every request sent */
};

struct reply {
	struct repl_rep h;
	uint8_t *data;        /* payload, malloc'd */
};

static int rm_one(const char *p, const struct stat *st, int flag,
		  struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(p);
}

/* A client connection served by c->svc. */
static int connect_client(struct ctx *c)
{
	int sv[2];

	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	assert_int_equal(repl_service_add_fd(c->svc, sv[0]), 0);
	return sv[1];
}

static void svc_start(struct ctx *c)
{
	c->svc = repl_service_new(&c->loop, &c->io, c->tmp, "node-a");
	assert_non_null(c->svc);
	c->fd = connect_client(c);
}

static void svc_stop(struct ctx *c)
{
	time_t t0 = time(NULL);

	close(c->fd);
	repl_service_shutdown(c->svc, NULL, NULL);
	while (!repl_service_drained(c->svc)) {
		assert_true(loop_poll(&c->loop) >= 0);
		assert_true(time(NULL) - t0 < 120);
	}
	repl_service_free(c->svc);
	c->svc = NULL;
}

static int setup(void **state)
{
	struct ctx *c = calloc(1, sizeof *c);

	strcpy(c->tmp, "/tmp/tpx-repl-XXXXXX");
	assert_non_null(mkdtemp(c->tmp));
	assert_int_equal(loop_init(&c->loop, 256), 0);
	store_io_uring_init(&c->io, &c->loop);
	c->next_id = 1;
	c->epoch = 1;
	svc_start(c);
	*state = c;
	return 0;
}

static int teardown(void **state)
{
	struct ctx *c = *state;

	svc_stop(c);
	loop_fini(&c->loop);
	nftw(c->tmp, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	free(c);
	return 0;
}

/* --- a tiny client ----------------------------------------------------------- */

static void send_all(struct ctx *c, int fd, const void *p, size_t len)
{
	time_t t0 = time(NULL);

	while (len > 0) {
		ssize_t n = send(fd, p, len, MSG_DONTWAIT | MSG_NOSIGNAL);

		if (n > 0) {
			p = (const char *)p + n;
			len -= (size_t)n;
			continue;
		}
		assert_true(n < 0 && errno == EAGAIN);
		assert_true(loop_poll(&c->loop) >= 0);
		assert_true(time(NULL) - t0 < 120);
	}
}

/* Read exactly len bytes; -EPIPE if the service closed the connection. */
static int recv_all(struct ctx *c, int fd, void *p, size_t len)
{
	time_t t0 = time(NULL);

	while (len > 0) {
		ssize_t n = recv(fd, p, len, MSG_DONTWAIT);

		if (n == 0)
			return -EPIPE;
		if (n > 0) {
			p = (char *)p + n;
			len -= (size_t)n;
			continue;
		}
		if (errno == ECONNRESET)
			return -EPIPE;
		assert_int_equal(errno, EAGAIN);
		assert_true(loop_poll(&c->loop) >= 0);
		sched_yield();
		assert_true(time(NULL) - t0 < 120);
	}
	return 0;
}

struct rq {
	uint16_t op;
	uint64_t vol;
	uint64_t epoch;
	uint64_t off;
	uint32_t len;
	uint32_t flags;
	const void *payload;
	uint32_t plen;
	uint64_t id;          /* 0: next */
};

static uint64_t send_req_fd(struct ctx *c, int fd, const struct rq *r)
{
	struct repl_req q = {
		.version = REPL_VERSION,
		.op = r->op,
		.req_id = r->id ? r->id : c->next_id++,
		.volume_id = r->vol,
		.epoch = r->epoch,
		.session = c->session,
		.offset = r->off,
		.length = r->len,
		.flags = r->flags,
		.payload_len = r->plen,
	};
	uint8_t *w = malloc(64 + r->plen);

	repl_req_encode(&q, w);
	if (r->plen)
		memcpy(w + 64, r->payload, r->plen);
	send_all(c, fd, w, 64 + r->plen);
	free(w);
	return q.req_id;
}

static int recv_rep_fd(struct ctx *c, int fd, struct reply *rep)
{
	uint8_t h[40];
	int ret = recv_all(c, fd, h, sizeof h);

	if (ret < 0)
		return ret;
	assert_int_equal(repl_rep_decode(h, &rep->h), 0);
	rep->data = malloc(rep->h.payload_len + 1);
	return recv_all(c, fd, rep->data, rep->h.payload_len);
}

/* One request, its reply; returns the status. */
static int call(struct ctx *c, const struct rq *r, struct reply *rep)
{
	struct reply tmp;
	uint64_t id = send_req_fd(c, c->fd, r);

	if (!rep)
		rep = &tmp;
	assert_int_equal(recv_rep_fd(c, c->fd, rep), 0);
	assert_int_equal(rep->h.req_id, id);
	assert_int_equal(rep->h.op, r->op);
	if (rep == &tmp)
		free(tmp.data);
	return rep->h.status;
}

static int open_vol(struct ctx *c, uint64_t id, const char *name,
		    uint64_t size, uint64_t epoch)
{
	uint8_t p[sizeof(struct repl_open)];
	struct rq r = { .op = REPL_OP_OPEN, .vol = id, .epoch = epoch,
			.flags = REPL_FLAG_CREATE, .payload = p, .plen = sizeof p };

	repl_open_encode(size, name, p);
	return call(c, &r, NULL);
}

/* OPEN without REPL_FLAG_CREATE: an absent replica is not made. */
static int open_existing(struct ctx *c, uint64_t id, const char *name,
			 uint64_t size)
{
	uint8_t p[sizeof(struct repl_open)];
	struct rq r = { .op = REPL_OP_OPEN, .vol = id, .epoch = 1,
			.payload = p, .plen = sizeof p };

	repl_open_encode(size, name, p);
	return call(c, &r, NULL);
}

static uint8_t *pattern(uint32_t len, unsigned seed)
{
	uint8_t *p = malloc(len);

	for (uint32_t i = 0; i < len; i++)
		p[i] = (uint8_t)(seed * 13 + i * 7 + i / 4099);
	return p;
}

/* WRITE payload: crcs (little-endian) then data. */
static uint8_t *write_payload(const uint8_t *data, uint32_t len)
{
	uint32_t n = len / B;
	uint8_t *p = malloc(n * 4 + len);

	for (uint32_t i = 0; i < n; i++) {
		uint32_t crc = htole32(crc32c(data + i * B, B));

		memcpy(p + i * 4, &crc, 4);
	}
	memcpy(p + n * 4, data, len);
	return p;
}

static struct rq write_rq(uint64_t epoch, uint64_t off, uint32_t len,
			  const uint8_t *payload)
{
	return (struct rq){ .op = REPL_OP_WRITE, .vol = VID, .epoch = epoch,
			    .off = off, .len = len, .payload = payload,
			    .plen = len + len / B * 4 };
}

static int write_at(struct ctx *c, uint64_t epoch, uint64_t off,
		    uint32_t len, unsigned seed)
{
	uint8_t *data = pattern(len, seed), *p = write_payload(data, len);
	struct rq r = write_rq(epoch, off, len, p);
	int ret = call(c, &r, NULL);

	free(p);
	free(data);
	return ret;
}

/* READ and check it returns pattern(seed) with matching crcs. */
static void expect_read(struct ctx *c, uint64_t off, uint32_t len,
			const uint8_t *want)
{
	struct rq r = { .op = REPL_OP_READ, .vol = VID, .epoch = c->epoch,
			.off = off, .len = len };
	struct reply rep;
	uint32_t n = len / B;

	assert_int_equal(call(c, &r, &rep), 0);
	assert_int_equal(rep.h.payload_len, n * 4 + len);
	for (uint32_t i = 0; i < n; i++) {
		uint32_t crc;

		memcpy(&crc, rep.data + i * 4, 4);
		assert_int_equal(le32toh(crc), crc32c(want + i * B, B));
	}
	assert_memory_equal(rep.data + n * 4, want, len);
	free(rep.data);
}

/* --- tests ------------------------------------------------------------------------ */

static void test_hello(void **state)
{
	struct ctx *c = *state;
	struct rq r = { .op = REPL_OP_HELLO, .payload = "engine-b", .plen = 8 };
	struct reply rep;

	assert_int_equal(call(c, &r, &rep), 0);
	assert_int_equal(rep.h.payload_len, 6);
	assert_memory_equal(rep.data, "node-a", 6);
	free(rep.data);
}

static void test_open(void **state)
{
	struct ctx *c = *state;
	char path[128];
	struct stat st;
	struct rq r = { .op = REPL_OP_FLUSH, .vol = VID + 1, .epoch = 1 };
	uint8_t p[sizeof(struct repl_open)];

	assert_int_equal(open_vol(c, VID, "vol-a", VOL_SIZE, 1), 0);
	snprintf(path, sizeof path, "%s/vol-a/meta", c->tmp);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(open_vol(c, VID, "vol-a", VOL_SIZE, 1), 0);   /* again */
	assert_int_equal(open_vol(c, VID + 1, "vol-a", VOL_SIZE, 1), -EEXIST);
	assert_int_equal(open_existing(c, VID + 7, "vol-new", VOL_SIZE), -ENOENT);
	assert_int_equal(open_vol(c, VID, "vol-b", VOL_SIZE, 1), -EEXIST);
	/* Smaller than the replica: it holds that much (it never shrinks). */
	assert_int_equal(open_vol(c, VID, "vol-a", VOL_SIZE / 2, 1), 0);
	assert_int_equal(call(c, &r, NULL), -ENOENT);              /* unknown */
	/* A name that is not a plain directory name. */
	memset(p, 0, sizeof p);
	p[1] = 0x10;
	memcpy(p + 8, "../x", 4);
	r = (struct rq){ .op = REPL_OP_OPEN, .vol = 9, .payload = p,
			 .plen = sizeof p };
	assert_int_equal(call(c, &r, NULL), -EINVAL);
	assert_int_equal(repl_service_get_stats(c->svc)->volumes_open, 1);

	/* After a restart, a different id for the same name is refused: the
	 * replica remembers whose it is. */
	svc_stop(c);
	svc_start(c);
	assert_int_equal(open_vol(c, VID + 5, "vol-a", VOL_SIZE, 1), -EEXIST);
	assert_int_equal(open_vol(c, VID, "vol-a", VOL_SIZE, 1), 0);
}

static void test_write_read(void **state)
{
	struct ctx *c = *state;
	uint8_t *want = pattern(16 * B, 3);

	assert_int_equal(open_vol(c, VID, "v", VOL_SIZE, 1), 0);
	assert_int_equal(write_at(c, 1, 8 * B, 16 * B, 3), 0);
	expect_read(c, 8 * B, 16 * B, want);
	free(want);
	/* Big enough to go straight into the request buffer. */
	want = pattern(1024 * B, 4);
	assert_int_equal(write_at(c, 1, 1 * MiB, 1024 * B, 4), 0);
	expect_read(c, 1 * MiB, 1024 * B, want);
	free(want);
	want = calloc(1, B);
	expect_read(c, 0, B, want);                 /* never written: zeroes */
	free(want);
	assert_true(repl_service_get_stats(c->svc)->bytes_in > 4 * MiB);
	assert_true(repl_service_get_stats(c->svc)->bytes_out > 4 * MiB);
}

static void test_write_bad_crc(void **state)
{
	struct ctx *c = *state;
	uint8_t *data = pattern(4 * B, 5), *p = write_payload(data, 4 * B);
	uint8_t *zero = calloc(1, 4 * B);
	struct rq r = write_rq(1, 0, 4 * B, p);

	assert_int_equal(open_vol(c, VID, "v", VOL_SIZE, 1), 0);
	p[4 * 4 + 2 * B + 100] ^= 1;               /* block 2's data */
	assert_int_equal(call(c, &r, NULL), -EBADMSG);
	assert_int_equal(repl_service_get_stats(c->svc)->csum_errors, 1);
	expect_read(c, 0, 4 * B, zero);             /* nothing stored */
	free(zero);
	free(p);
	free(data);
}

static void test_pipelined(void **state)
{
	struct ctx *c = *state;
	uint8_t *payload[64];
	bool seen[64] = { false };

	assert_int_equal(open_vol(c, VID, "v", VOL_SIZE, 1), 0);
	for (unsigned i = 0; i < 64; i++) {
		uint8_t *d = pattern(2 * B, i);
		struct rq r;

		payload[i] = write_payload(d, 2 * B);
		free(d);
		r = write_rq(1, i * 2 * B, 2 * B, payload[i]);
		r.id = 1000 + i;
		send_req_fd(c, c->fd, &r);
	}
	for (unsigned i = 0; i < 64; i++) {
		struct reply rep;

		assert_int_equal(recv_rep_fd(c, c->fd, &rep), 0);
		assert_int_equal(rep.h.status, 0);
		assert_true(rep.h.req_id >= 1000 && rep.h.req_id < 1064);
		assert_false(seen[rep.h.req_id - 1000]);
		seen[rep.h.req_id - 1000] = true;
		free(rep.data);
	}
	/* 64 reads in flight; each reply matched to its request by id. */
	for (unsigned i = 0; i < 64; i++) {
		struct rq r = { .op = REPL_OP_READ, .vol = VID, .epoch = 1,
				.off = i * 2 * B, .len = 2 * B, .id = 5000 + i };

		send_req_fd(c, c->fd, &r);
	}
	for (unsigned i = 0; i < 64; i++) {
		struct reply rep;
		unsigned k;

		assert_int_equal(recv_rep_fd(c, c->fd, &rep), 0);
		assert_int_equal(rep.h.status, 0);
		k = (unsigned)(rep.h.req_id - 5000);
		assert_true(k < 64);
		assert_memory_equal(rep.data, payload[k], 8 + 2 * B);
		free(rep.data);
	}
	for (unsigned i = 0; i < 64; i++)
		free(payload[i]);
}

/* Far more requests than the in-flight limit: flow control holds the rest
 * in the socket, and every one is answered exactly once. */
static void test_flow_control(void **state)
{
	struct ctx *c = *state;
	enum { N = 300 };
	uint8_t *seen = calloc(N, 1);

	assert_int_equal(open_vol(c, VID, "v", VOL_SIZE, 1), 0);
	for (unsigned i = 0; i < N; i++) {
		struct rq r = { .op = REPL_OP_FLUSH, .vol = VID, .epoch = 1,
				.id = 10000 + i };

		send_req_fd(c, c->fd, &r);
	}
	for (unsigned i = 0; i < N; i++) {
		struct reply rep;

		assert_int_equal(recv_rep_fd(c, c->fd, &rep), 0);
		assert_int_equal(rep.h.status, 0);
		assert_true(rep.h.req_id >= 10000 && rep.h.req_id < 10000 + N);
		assert_int_equal(seen[rep.h.req_id - 10000]++, 0);
		free(rep.data);
	}
	free(seen);
}

static void test_fencing(void **state)
{
	struct ctx *c = *state;
	struct reply rep;
	struct rq r = { .op = REPL_OP_FLUSH, .vol = VID, .epoch = 4 };
	uint8_t *want = pattern(B, 1);

	assert_int_equal(open_vol(c, VID, "v", VOL_SIZE, 5), 0);
	assert_int_equal(write_at(c, 5, 0, B, 1), 0);
	assert_int_equal(write_at(c, 4, 0, B, 2), -ESTALE);
	assert_int_equal(call(c, &r, &rep), -ESTALE);
	assert_int_equal(rep.h.epoch, 5);
	free(rep.data);
	assert_int_equal(repl_service_get_stats(c->svc)->fenced, 2);
	c->epoch = 5;
	expect_read(c, 0, B, want);                 /* the refused write: not stored */
	free(want);

	/* Persisted: a restarted service still refuses epoch 4. */
	svc_stop(c);
	svc_start(c);
	assert_int_equal(open_vol(c, VID, "v", VOL_SIZE, 4), -ESTALE);
	assert_int_equal(write_at(c, 4, 0, B, 2), -ESTALE);
	assert_int_equal(write_at(c, 5, 0, B, 3), 0);

	/* FENCE alone fences. */
	r = (struct rq){ .op = REPL_OP_FENCE, .vol = VID, .epoch = 7 };
	assert_int_equal(call(c, &r, &rep), 0);
	assert_int_equal(rep.h.epoch, 7);
	free(rep.data);
	assert_int_equal(write_at(c, 5, 0, B, 4), -ESTALE);
	assert_int_equal(write_at(c, 7, 0, B, 4), 0);
}

/* A 64-block WRITE of (epoch 1, session 1) and, in the same send so that
 * the service parses both in one turn, the request next (its payload
 * after it); the replies of both. */
static void write_then(struct ctx *c, struct repl_req *next, const void *np,
		       struct reply *a, struct reply *b)
{
	uint8_t *data = pattern(64 * B, 9), *p = write_payload(data, 64 * B);
	struct rq w = write_rq(1, 0, 64 * B, p);
	uint8_t *both = malloc(2 * 64 + w.plen + next->payload_len);
	struct repl_req q = { .version = REPL_VERSION, .op = REPL_OP_WRITE,
			      .req_id = 1, .volume_id = VID, .epoch = 1,
			      .session = 1, .length = w.len, .payload_len = w.plen };

	repl_req_encode(&q, both);
	memcpy(both + 64, p, w.plen);
	next->version = REPL_VERSION;
	next->req_id = 2;
	next->volume_id = VID;
	repl_req_encode(next, both + 64 + w.plen);
	if (next->payload_len)
		memcpy(both + 2 * 64 + w.plen, np, next->payload_len);
	send_all(c, c->fd, both, 2 * 64 + w.plen + next->payload_len);
	assert_int_equal(recv_rep_fd(c, c->fd, a), 0);
	assert_int_equal(recv_rep_fd(c, c->fd, b), 0);
	assert_int_equal(a->h.req_id, 1);
	assert_int_equal(b->h.req_id, 2);
	free(both);
	free(p);
	free(data);
}

/* A write of the old epoch already in the store when a FENCE arrives is
 * answered -ESTALE, and the FENCE answers only after it left the store. */
static void test_fence_drains(void **state)
{
	struct ctx *c = *state;
	struct repl_req f = { .op = REPL_OP_FENCE, .epoch = 2, .session = 1 };
	struct reply a, b;

	c->session = 1;
	assert_int_equal(open_vol(c, VID, "v", VOL_SIZE, 1), 0);
	write_then(c, &f, NULL, &a, &b);
	assert_int_equal(a.h.status, -ESTALE);
	assert_int_equal(a.h.epoch, 2);
	assert_int_equal(b.h.status, 0);
	free(a.data);
	free(b.data);
}

/* The metadata store's word on epochs (repl_service_set_epoch_check):
 * epochs up to recorded, once it has been asked yes_after times. */
struct oracle {
	uint64_t recorded;
	unsigned asked, yes_after;
};

static int oracle_check(void *arg, uint64_t id, uint64_t epoch)
{
	struct oracle *o = arg;

	assert_int_equal(id, VID);
	return ++o->asked >= o->yes_after && epoch <= o->recorded;
}

/* An epoch raise waits for the store to know it: refused if it never
 * does (the replica keeps its epoch and goes on), taken once it does. A
 * FENCE waiting behind a write in the store is not run when the write
 * leaves it. */
static void test_epoch_check(void **state)
{
	struct ctx *c = *state;
	struct oracle o = { .recorded = 1 };
	struct rq r = { .op = REPL_OP_FENCE, .vol = VID, .epoch = UINT64_MAX };
	struct repl_req f = { .op = REPL_OP_FENCE, .epoch = 5, .session = 1 };
	struct reply rep, a, b;
	uint8_t *want = pattern(B, 2);

	c->session = 1;
	repl_service_set_epoch_check(c->svc, oracle_check, &o, 100);
	assert_int_equal(open_vol(c, VID, "v", VOL_SIZE, 1), 0);
	assert_int_equal(call(c, &r, &rep), -EPERM);
	assert_int_equal(rep.h.epoch, 1);
	free(rep.data);
	assert_true(o.asked > 2);    /* asked again while it waited */
	assert_int_equal(repl_service_get_stats(c->svc)->epoch_refused, 1);
	write_then(c, &f, NULL, &a, &b);
	assert_int_equal(a.h.status, 0);
	assert_int_equal(b.h.status, -EPERM);
	assert_int_equal(b.h.epoch, 1);
	free(a.data);
	free(b.data);
	assert_int_equal(write_at(c, 1, 0, B, 2), 0);

	o = (struct oracle){ .recorded = 3, .yes_after = 3 };
	r.epoch = 3;
	assert_int_equal(call(c, &r, &rep), 0);
	assert_int_equal(rep.h.epoch, 3);
	free(rep.data);
	assert_int_equal(o.asked, 3);
	assert_int_equal(write_at(c, 1, 0, B, 4), -ESTALE);
	c->epoch = 3;
	expect_read(c, 0, B, want);
	free(want);
}

static void test_crcs(void **state)
{
	struct ctx *c = *state;
	uint8_t *data = pattern(8 * B, 6);
	struct rq r = { .op = REPL_OP_CRCS, .vol = VID, .epoch = 1,
			.off = 0, .len = 10 * B };
	struct reply rep;

	assert_int_equal(open_vol(c, VID, "v", VOL_SIZE, 1), 0);
	assert_int_equal(write_at(c, 1, 2 * B, 8 * B, 6), 0);
	assert_int_equal(call(c, &r, &rep), 0);
	assert_int_equal(rep.h.payload_len, 40);
	for (unsigned i = 0; i < 10; i++) {
		uint32_t crc;
		uint32_t want = i < 2 ? crc32c_zero_block()
				      : crc32c(data + (i - 2) * B, B);

		memcpy(&crc, rep.data + i * 4, 4);
		assert_int_equal(le32toh(crc), want);
	}
	free(rep.data);
	free(data);
	r.off = VOL_SIZE;                           /* outside the volume */
	r.len = B;
	assert_int_equal(call(c, &r, NULL), -EINVAL);
}

static size_t dirty(struct ctx *c, uint64_t *offs, size_t max)
{
	struct rq r = { .op = REPL_OP_DIRTY, .vol = VID, .epoch = 1 };
	struct reply rep;
	uint64_t v;
	size_t n;

	assert_int_equal(call(c, &r, &rep), 0);
	assert_true(rep.h.payload_len >= 8 && rep.h.payload_len % 8 == 0);
	memcpy(&v, rep.data, 8);
	assert_int_equal(le64toh(v), 4 * MiB);      /* region size */
	n = rep.h.payload_len / 8 - 1;
	for (size_t i = 0; i < n && i < max; i++) {
		memcpy(&v, rep.data + 8 + i * 8, 8);
		offs[i] = le64toh(v);
	}
	free(rep.data);
	return n;
}

static void test_dirty(void **state)
{
	struct ctx *c = *state;
	struct rq f = { .op = REPL_OP_FLUSH, .vol = VID, .epoch = 1 };
	uint64_t offs[4];

	assert_int_equal(open_vol(c, VID, "v", VOL_SIZE, 1), 0);
	assert_int_equal(dirty(c, offs, 4), 0);
	assert_int_equal(write_at(c, 1, 4 * MiB + B, B, 1), 0);
	assert_int_equal(write_at(c, 1, 12 * MiB, 2 * B, 1), 0);
	assert_int_equal(dirty(c, offs, 4), 2);
	assert_int_equal(offs[0], 4 * MiB);
	assert_int_equal(offs[1], 12 * MiB);
	/* A completed flush clears every region no write touched since (the
	 * bit on disk is cleared lazily by the next AL round). */
	assert_int_equal(call(c, &f, NULL), 0);
	for (int i = 0; i < 100; i++)
		loop_poll(&c->loop);
	assert_int_equal(dirty(c, offs, 4), 0);
}

static void test_trim_zero_delete(void **state)
{
	struct ctx *c = *state;
	struct rq r = { .op = REPL_OP_TRIM, .vol = VID, .epoch = 1,
			.off = 0, .len = 2 * B, .flags = REPL_FLAG_FUA };
	uint8_t *zero = calloc(1, 4 * B);
	char path[128];
	struct stat st;

	assert_int_equal(open_vol(c, VID, "v", VOL_SIZE, 1), 0);
	assert_int_equal(write_at(c, 1, 0, 4 * B, 8), 0);
	assert_int_equal(call(c, &r, NULL), 0);
	r.op = REPL_OP_ZERO;
	r.off = 2 * B;
	r.flags = REPL_FLAG_NO_HOLE;
	assert_int_equal(call(c, &r, NULL), 0);
	expect_read(c, 0, 4 * B, zero);
	/* DELETE from the network is refused, the replica stays as it was. */
	r = (struct rq){ .op = REPL_OP_DELETE, .vol = VID, .epoch = 1 };
	assert_int_equal(call(c, &r, NULL), -EPERM);
	snprintf(path, sizeof path, "%s/v", c->tmp);
	assert_int_equal(stat(path, &st), 0);
	expect_read(c, 0, 4 * B, zero);
	/* The agent's delete waits out a request in the store (a FLUSH
	 * leaves a lazy activity-log write in flight), refuses another
	 * volume's name, then removes the replica. */
	assert_int_equal(write_at(c, 1, 0, B, 8), 0);
	r = (struct rq){ .op = REPL_OP_FLUSH, .vol = VID, .epoch = 1, .id = 501 };
	send_req_fd(c, c->fd, &r);
	{
		struct reply rep;

		assert_int_equal(recv_rep_fd(c, c->fd, &rep), 0);
		assert_int_equal(rep.h.req_id, 501);
		assert_int_equal(rep.h.status, 0);
		free(rep.data);
	}
	assert_int_equal(repl_service_delete_replica(c->svc, "w", VID), -EINVAL);
	for (int i = 0;; i++) {
		int ret = repl_service_delete_replica(c->svc, "v", VID);

		if (ret != -EAGAIN) {
			assert_int_equal(ret, 0);
			break;
		}
		assert_true(i < 1000);
		loop_poll(&c->loop);
	}
	assert_int_equal(stat(path, &st), -1);
	r = (struct rq){ .op = REPL_OP_READ, .vol = VID, .epoch = 1, .len = B };
	assert_int_equal(call(c, &r, NULL), -ENOENT);
	/* Recreated empty, with a fresh epoch. */
	assert_int_equal(open_vol(c, VID, "v", VOL_SIZE, 1), 0);
	expect_read(c, 0, 4 * B, zero);
	free(zero);
}

static void test_invalid_keeps_connection(void **state)
{
	struct ctx *c = *state;
	struct rq r = { .op = REPL_OP_READ, .vol = VID, .epoch = 1,
			.off = 100, .len = B };
	uint8_t *p = malloc(100);

	assert_int_equal(open_vol(c, VID, "v", VOL_SIZE, 1), 0);
	assert_int_equal(call(c, &r, NULL), -EINVAL);
	/* A misaligned WRITE: its payload is read and dropped. */
	memset(p, 1, 100);
	r = (struct rq){ .op = REPL_OP_WRITE, .vol = VID, .epoch = 1,
			 .len = 100, .payload = p, .plen = 100 };
	assert_int_equal(call(c, &r, NULL), -EINVAL);
	r = (struct rq){ .op = 0x77, .vol = VID, .epoch = 1 };
	assert_int_equal(call(c, &r, NULL), -EINVAL);
	r = (struct rq){ .op = REPL_OP_READ, .vol = VID, .epoch = 1,
			 .off = VOL_SIZE, .len = B };         /* past the end */
	assert_int_equal(call(c, &r, NULL), -EINVAL);
	r = (struct rq){ .op = REPL_OP_HELLO };
	assert_int_equal(call(c, &r, NULL), 0);
	free(p);
}

static void test_garbage_closes_one(void **state)
{
	struct ctx *c = *state;
	int other = connect_client(c);
	uint8_t junk[200];
	struct reply rep;
	struct rq r = { .op = REPL_OP_HELLO };

	for (unsigned i = 0; i < sizeof junk; i++)
		junk[i] = (uint8_t)(i * 37 + 1);
	send_all(c, other, junk, sizeof junk);
	assert_int_equal(recv_all(c, other, junk, 1), -EPIPE);
	close(other);
	assert_int_equal(repl_service_get_stats(c->svc)->protocol_errors, 1);
	assert_int_equal(call(c, &r, &rep), 0);     /* the other one serves */
	free(rep.data);
}

static void test_other_version(void **state)
{
	struct ctx *c = *state;
	struct repl_req q = { .version = REPL_VERSION + 1, .op = REPL_OP_HELLO,
			      .req_id = 3 };
	uint8_t w[64], b;
	struct reply rep;

	repl_req_encode(&q, w);
	send_all(c, c->fd, w, sizeof w);
	assert_int_equal(recv_rep_fd(c, c->fd, &rep), 0);
	assert_int_equal(rep.h.status, -EPROTONOSUPPORT);
	assert_int_equal(rep.h.version, REPL_VERSION);
	assert_int_equal(rep.h.req_id, 3);
	free(rep.data);
	assert_int_equal(recv_all(c, c->fd, &b, 1), -EPIPE);
}

/* A connection the engine gave up on may still deliver requests the
 * kernel had queued (a healed partition retransmits them). Once a newer
 * session of the same epoch has opened the volume, they are refused, so a
 * stale write can never land over what a resync copied since. */
static void test_session_supersedes(void **state)
{
	struct ctx *c = *state;
	int a = c->fd, b = connect_client(c), late = connect_client(c);
	uint8_t *want = pattern(B, 1), *stale = pattern(B, 2);
	struct reply rep;
	struct rq w;
	uint8_t *p;

	c->session = 1;
	assert_int_equal(open_vol(c, VID, "v", VOL_SIZE, 1), 0);
	assert_int_equal(write_at(c, 1, 0, B, 1), 0);

	c->fd = b;                                   /* the engine reconnects */
	c->session = 2;
	assert_int_equal(open_vol(c, VID, "v", VOL_SIZE, 1), 0);

	c->fd = a;                                   /* the old one's late write */
	c->session = 1;
	p = write_payload(stale, B);
	w = write_rq(1, 0, B, p);
	assert_int_equal(call(c, &w, &rep), -ESTALE);
	assert_int_equal(rep.h.epoch, 1);
	free(rep.data);
	free(p);

	c->fd = late;                                /* a late OPEN of session 1 */
	assert_int_equal(open_vol(c, VID, "v", VOL_SIZE, 1), -ESTALE);

	c->fd = b;                                   /* the live session is intact */
	c->session = 2;
	expect_read(c, 0, B, want);
	assert_int_equal(write_at(c, 1, B, B, 3), 0);
	assert_int_equal(repl_service_get_stats(c->svc)->superseded, 2);
	assert_int_equal(repl_service_get_stats(c->svc)->fenced, 0);

	/* A higher epoch starts again from any session. */
	c->session = 0;
	assert_int_equal(open_vol(c, VID, "v", VOL_SIZE, 2), 0);
	c->epoch = 2;
	expect_read(c, 0, B, want);
	close(a);
	close(late);
	free(want);
	free(stale);
}

/* A write of the old session already in the store when the new session's
 * OPEN arrives is answered -ESTALE, and the OPEN answers only after it
 * left the store (as for an epoch rise). */
static void test_session_drains(void **state)
{
	struct ctx *c = *state;
	uint8_t op[sizeof(struct repl_open)];
	struct repl_req o = { .op = REPL_OP_OPEN, .epoch = 1, .session = 2,
			      .payload_len = sizeof op };
	struct reply a, b;

	c->session = 1;
	assert_int_equal(open_vol(c, VID, "v", VOL_SIZE, 1), 0);
	repl_open_encode(VOL_SIZE, "v", op);
	write_then(c, &o, op, &a, &b);
	assert_int_equal(a.h.status, -ESTALE);
	assert_int_equal(b.h.status, 0);
	free(a.data);
	free(b.data);
}

static int resize_vol(struct ctx *c, uint64_t epoch, uint64_t size)
{
	uint8_t p[REPL_RESIZE_SIZE];
	struct rq r = { .op = REPL_OP_RESIZE, .vol = VID, .epoch = epoch,
			.payload = p, .plen = sizeof p };

	repl_resize_encode(size, p);
	return call(c, &r, NULL);
}

/* RESIZE grows the replica, durably: the old data stays, the new end is
 * writable, a smaller size changes nothing, bad sizes are refused with
 * the connection kept, an old epoch is fenced. */
/* LEASE at epoch for ms; returns the status, *wait_ms what the replica
 * says is left of a lease granted at an older epoch. */
static int lease(struct ctx *c, uint64_t epoch, uint64_t ms, uint64_t *wait_ms)
{
	uint8_t p[REPL_LEASE_SIZE];
	struct rq r = { .op = REPL_OP_LEASE, .vol = VID, .epoch = epoch,
			.payload = p, .plen = sizeof p };
	struct reply rep;
	int st;

	repl_lease_encode(ms, p);
	st = call(c, &r, &rep);
	*wait_ms = UINT64_MAX;
	if (st == 0) {
		assert_int_equal(rep.h.payload_len, REPL_LEASE_SIZE);
		assert_int_equal(repl_lease_decode(rep.data, REPL_LEASE_SIZE,
						   false, wait_ms), 0);
	}
	free(rep.data);
	return st;
}

/* Read leases: granted at the current epoch; a newer epoch is told how
 * long the older one's lease still runs, the older epoch gets no more; a
 * restarted service assumes it granted the longest lease just before. */
static void test_lease(void **state)
{
	struct ctx *c = *state;
	uint64_t wait_ms;

	assert_int_equal(open_vol(c, VID, "v", VOL_SIZE, 1), 0);
	assert_int_equal(lease(c, 1, 3000, &wait_ms), 0);
	assert_int_equal(wait_ms, 0);                  /* a new replica */
	assert_int_equal(lease(c, 1, 0, &wait_ms), -EINVAL);
	assert_int_equal(lease(c, 1, REPL_LEASE_MAX_MS + 1, &wait_ms), -EINVAL);
	/* Epoch 2 takes over: epoch 1's lease (3 s) must be waited out. */
	assert_int_equal(lease(c, 2, 1000, &wait_ms), 0);
	assert_true(wait_ms > 2500 && wait_ms <= 3000);
	assert_int_equal(lease(c, 1, 3000, &wait_ms), -ESTALE);
	usleep(300 * 1000);
	assert_int_equal(lease(c, 2, 1000, &wait_ms), 0);
	assert_true(wait_ms <= 3000 - 300);
	/* Epoch 3: epoch 2's lease (1 s) is shorter than what is left of 1's. */
	assert_int_equal(lease(c, 3, 1000, &wait_ms), 0);
	assert_true(wait_ms > 1000 && wait_ms <= 2700);
	/* Restarted: anything granted before is unknown. */
	svc_stop(c);
	svc_start(c);
	assert_int_equal(open_vol(c, VID, "v", VOL_SIZE, 4), 0);
	assert_int_equal(lease(c, 4, 1000, &wait_ms), 0);
	assert_true(wait_ms > REPL_LEASE_MAX_MS - 1000 &&
		    wait_ms <= REPL_LEASE_MAX_MS);
}

static void test_resize(void **state)
{
	struct ctx *c = *state;
	uint8_t *old = pattern(2 * B, 4), *end = pattern(B, 5);
	uint8_t p[REPL_RESIZE_SIZE];
	struct rq r = { .op = REPL_OP_RESIZE, .vol = VID, .epoch = 2,
			.payload = p, .plen = sizeof p };

	c->epoch = 2;
	assert_int_equal(open_vol(c, VID, "v", VOL_SIZE, 2), 0);
	assert_int_equal(write_at(c, 2, VOL_SIZE - 2 * B, 2 * B, 4), 0);
	assert_int_equal(write_at(c, 2, VOL_SIZE, B, 5), -EINVAL);
	assert_int_equal(resize_vol(c, 2, 3 * VOL_SIZE), 0);
	assert_int_equal(write_at(c, 2, 3 * VOL_SIZE - B, B, 5), 0);
	expect_read(c, VOL_SIZE - 2 * B, 2 * B, old);
	expect_read(c, 3 * VOL_SIZE - B, B, end);
	assert_int_equal(resize_vol(c, 2, VOL_SIZE), 0);        /* no shrink */
	expect_read(c, 3 * VOL_SIZE - B, B, end);
	assert_int_equal(resize_vol(c, 1, 4 * VOL_SIZE), -ESTALE);
	assert_int_equal(write_at(c, 2, 4 * VOL_SIZE - B, B, 5), -EINVAL);
	repl_resize_encode(3 * VOL_SIZE + 100, p);
	assert_int_equal(call(c, &r, NULL), -EINVAL);
	repl_resize_encode(0, p);
	assert_int_equal(call(c, &r, NULL), -EINVAL);
	repl_service_set_max_volume_size(c->svc, 4 * VOL_SIZE);
	assert_int_equal(resize_vol(c, 2, 5 * VOL_SIZE), -EFBIG);
	r.vol = VID + 1;
	repl_resize_encode(4 * VOL_SIZE, p);
	assert_int_equal(call(c, &r, NULL), -ENOENT);
	/* After a restart: still the grown size. */
	svc_stop(c);
	svc_start(c);
	assert_int_equal(open_vol(c, VID, "v", VOL_SIZE, 2), 0);
	expect_read(c, 3 * VOL_SIZE - B, B, end);
	expect_read(c, VOL_SIZE - 2 * B, 2 * B, old);
	free(old);
	free(end);
}

/* A replica that missed a resize grows when an OPEN with the larger size
 * executes (after fencing: an old epoch's OPEN grows nothing). */
static void test_open_grows(void **state)
{
	struct ctx *c = *state;
	uint8_t *end = pattern(B, 6);

	c->epoch = 3;
	assert_int_equal(open_vol(c, VID, "v", VOL_SIZE, 3), 0);
	assert_int_equal(open_vol(c, VID, "v", 2 * VOL_SIZE, 2), -ESTALE);
	assert_int_equal(write_at(c, 3, VOL_SIZE, B, 6), -EINVAL);
	svc_stop(c);
	svc_start(c);
	assert_int_equal(open_vol(c, VID, "v", 2 * VOL_SIZE, 3), 0);
	assert_int_equal(write_at(c, 3, 2 * VOL_SIZE - B, B, 6), 0);
	expect_read(c, 2 * VOL_SIZE - B, B, end);
	free(end);
}

/* Writes in flight, a RESIZE, and a write past the old end, all sent at
 * once: the RESIZE waits for the writes before it, the write after it
 * waits for the RESIZE, and every one succeeds. */
static void test_resize_pipelined(void **state)
{
	struct ctx *c = *state;
	uint8_t *d = pattern(B, 8), *w = write_payload(d, B);
	uint8_t p[REPL_RESIZE_SIZE];
	struct rq rs = { .op = REPL_OP_RESIZE, .vol = VID, .epoch = 1,
			 .payload = p, .plen = sizeof p, .id = 900 };
	struct rq after = write_rq(1, VOL_SIZE, B, w);

	assert_int_equal(open_vol(c, VID, "v", VOL_SIZE, 1), 0);
	for (unsigned i = 0; i < 16; i++) {
		struct rq r = write_rq(1, i * B, B, w);

		r.id = 100 + i;
		send_req_fd(c, c->fd, &r);
	}
	repl_resize_encode(2 * VOL_SIZE, p);
	send_req_fd(c, c->fd, &rs);
	after.id = 901;
	send_req_fd(c, c->fd, &after);
	for (unsigned i = 0; i < 18; i++) {
		struct reply rep;

		assert_int_equal(recv_rep_fd(c, c->fd, &rep), 0);
		assert_int_equal(rep.h.status, 0);
		free(rep.data);
	}
	expect_read(c, VOL_SIZE, B, d);
	free(w);
	free(d);
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
	const struct CMUnitTest tests[] = {
		T(test_hello),
		T(test_open),
		T(test_write_read),
		T(test_write_bad_crc),
		T(test_pipelined),
		T(test_flow_control),
		T(test_fencing),
		T(test_fence_drains),
		T(test_session_supersedes),
		T(test_session_drains),
		T(test_crcs),
		T(test_dirty),
		T(test_trim_zero_delete),
		T(test_epoch_check),
		T(test_invalid_keeps_connection),
		T(test_garbage_closes_one),
		T(test_other_version),
		T(test_lease),
		T(test_resize),
		T(test_open_grows),
		T(test_resize_pipelined),
	};
#undef T

	return cmocka_run_group_tests(tests, NULL, NULL);
}
