/*
 * One NBD connection: handshake, then transmission with many requests in
 * flight, completed out of order. The socket I/O, plain or TLS after
 * STARTTLS, is the stream core's (common/stream.h); this file is the NBD
 * protocol on top.
 *
 * Lifetime: a connection is freed once its stream has closed and no
 * request is in flight (conn_maybe_free).
 */
#include <endian.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "stream.h"
#include "request.h"
#include "server_int.h"
#include "tls.h"

#define RBUF_SIZE (256u * 1024)
#define MAX_INFLIGHT 128
/* Data buffered for requests in flight, per connection: bounds memory when
 * a client sends many large requests at once. */
#define MAX_INFLIGHT_BYTES (8u << 20)
#define KEEP_BUF_MAX (128u * 1024)    /* larger request buffers are freed */
#define MAX_EXTENTS 256

enum conn_phase { PH_HANDSHAKE, PH_TRANSMISSION };

/* A request in transmission; reused through the connection's free list. */
struct creq {
	struct vol_req vr;
	struct conn *c;
	struct creq *next;       /* free list */
	struct sendq_msg sq;     /* the reply, while queued on the socket */
	struct nbd_req req;
	uint8_t *buf;
	size_t cap;
	uint8_t hdr[32];
	size_t hdr_len;
	uint8_t *data;
	size_t data_len;
	size_t charged;          /* bytes counted in conn->inflight_bytes */
};

struct conn {
	struct nbd_server *srv;
	struct conn *next, *prev;
	struct stream st;        /* handshake, headers, small WRITE data in st.rb */
	enum conn_phase phase;
	bool disc;
	bool st_closed;          /* the stream has nothing in flight */
	bool free_scheduled;
	struct loop_task free_task;
	uint64_t hs_deadline_ms;

	struct nbd_hs hs;
	struct nbd_outbuf hsout;
	struct sendq_msg hs_msg; /* hsout's bytes, while queued */
	bool hs_queued;          /* then hsout must not grow (it may move) */

	struct nbd_session sess;
	struct vol *vol;
	unsigned inflight;       /* requests between parse and reply sent */
	unsigned executing;      /* of those, the ones the volume holds */
	size_t inflight_bytes;   /* their data buffers */
	struct creq *free_reqs;
	struct creq *payload;    /* a WRITE still receiving its data */
	uint32_t payload_have;
};

static void creq_put(struct conn *c, struct creq *r);

static struct conn *conn_of(struct stream *s)
{
	return s->owner;
}

/* --- lifetime --------------------------------------------------------- */

static void creq_free(struct creq *r)
{
	vol_req_fini(&r->vr);
	free(r->buf);
	free(r);
}

static void conn_free(struct conn *c)
{
	struct nbd_server *s = c->srv;

	while (c->free_reqs) {
		struct creq *r = c->free_reqs;

		c->free_reqs = r->next;
		creq_free(r);
	}
	stream_fini(&c->st);
	if (c->prev)
		c->prev->next = c->next;
	else
		s->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	nbd_outbuf_free(&c->hsout);
	free(c);
	s->stats.connections_open--;
	server_conn_gone(s);
}

static void conn_free_task(struct loop_task *t)
{
	conn_free((struct conn *)((char *)t - offsetof(struct conn, free_task)));
}

static struct creq *creq_of(struct sendq_msg *m)
{
	return (struct creq *)((char *)m - offsetof(struct creq, sq));
}

/* Free once the stream is done and the engine holds no request; always
 * from a loop task so that no caller's frame still points at c. */
static void conn_maybe_free(struct conn *c)
{
	if (!c->st_closed || c->inflight > 0 || c->free_scheduled)
		return;
	c->free_scheduled = true;
	c->free_task.fn = conn_free_task;
	loop_defer(c->srv->loop, &c->free_task);
}

/* Stop reading and writing; the connection goes once nothing is pending. */
static void conn_close(struct conn *c, const char *why)
{
	stream_close(&c->st, 0, why);
}

/* Shutting down: once every request admitted before the shutdown is done
 * (later ones got ESHUTDOWN), read no more, so that a client that keeps
 * sending cannot hold the drain open. */
static void conn_drain_check(struct conn *c)
{
	if (c->srv->shutting_down && c->phase == PH_TRANSMISSION &&
	    c->executing == 0 && !c->payload)
		c->disc = true;
}

/* DISC or shutdown: close once every reply has been sent. */
static void conn_close_when_idle(struct conn *c)
{
	if (c->inflight == 0 && stream_tx_idle(&c->st) && !c->payload)
		conn_close(c, "idle");
}

/* --- sending ------------------------------------------------------------ */

static struct creq *creq_get(struct conn *c)
{
	struct creq *r = c->free_reqs;

	if (r) {
		c->free_reqs = r->next;
	} else {
		r = calloc(1, sizeof *r);
		if (!r)
			return NULL;
		r->c = c;
	}
	r->next = NULL;
	r->data = NULL;
	r->data_len = 0;
	c->inflight++;
	return r;
}

static void creq_put(struct conn *c, struct creq *r)
{
	if (r->cap > KEEP_BUF_MAX) {
		free(r->buf);
		r->buf = NULL;
		r->cap = 0;
	}
	r->next = c->free_reqs;
	c->free_reqs = r;
	c->inflight--;
	c->inflight_bytes -= r->charged;
	r->charged = 0;
}

static int creq_reserve(struct creq *r, size_t bytes)
{
	if (bytes <= r->cap)
		return 0;
	free(r->buf);
	r->cap = 0;
	if (posix_memalign((void **)&r->buf, 4096, bytes ? bytes : 4096) != 0) {
		r->buf = NULL;
		return -ENOMEM;
	}
	r->cap = bytes;
	return 0;
}

/* The reply timeout watches every send (conn_expire). */
static void conn_send(struct conn *c, struct sendq_msg *m)
{
	stream_send(&c->st, m);
	server_arm_hs_timer(c->srv);
}

static void queue_reply(struct conn *c, struct creq *r)
{
	if (r->hdr_len == 0 || c->st.closing) {
		creq_put(c, r);
		conn_maybe_free(c);
		return;
	}
	sendq_msg_set(&r->sq, r->hdr, r->hdr_len, r->data, r->data_len, NULL, 0);
	c->srv->stats.requests++;
	conn_send(c, &r->sq);
}

/* What the handshake said, as one message. */
static void queue_hs_out(struct conn *c)
{
	if (c->hs_queued || c->hsout.len == 0 || c->st.closing)
		return;
	c->hs_queued = true;
	sendq_msg_set(&c->hs_msg, c->hsout.data, c->hsout.len, NULL, 0, NULL, 0);
	conn_send(c, &c->hs_msg);
}

/* --- replies -------------------------------------------------------------- */

static void reply_error(struct conn *c, struct creq *r, uint32_t err)
{
	c->srv->stats.request_errors++;
	if (c->sess.structured &&
	    (r->req.type == NBD_CMD_READ || r->req.type == NBD_CMD_BLOCK_STATUS))
		r->hdr_len = nbd_encode_error_chunk(r->hdr, r->req.cookie, err);
	else
		r->hdr_len = nbd_encode_simple_reply(r->hdr, r->req.cookie, err);
	r->data_len = 0;
	queue_reply(c, r);
}

static void reply_ok(struct conn *c, struct creq *r)
{
	r->hdr_len = nbd_encode_simple_reply(r->hdr, r->req.cookie, 0);
	queue_reply(c, r);
}

static void reply_read(struct conn *c, struct creq *r)
{
	r->data = r->buf + (r->req.offset & 4095);
	r->data_len = r->req.count;
	if (!c->sess.structured) {
		r->hdr_len = nbd_encode_simple_reply(r->hdr, r->req.cookie, 0);
	} else if (r->req.count == 0) {
		r->hdr_len = nbd_encode_chunk_header(r->hdr, NBD_REPLY_FLAG_DONE,
						     NBD_REPLY_TYPE_NONE,
						     r->req.cookie, 0);
	} else {
		uint64_t off = htobe64(r->req.offset);

		r->hdr_len = nbd_encode_chunk_header(r->hdr, NBD_REPLY_FLAG_DONE,
						     NBD_REPLY_TYPE_OFFSET_DATA,
						     r->req.cookie, 8 + r->req.count);
		memcpy(r->hdr + r->hdr_len, &off, 8);
		r->hdr_len += 8;
	}
	queue_reply(c, r);
}

static void vol_done(struct vol_req *vr, int res)
{
	struct creq *r = vr->priv;
	struct conn *c = r->c;

	c->executing--;
	if (res < 0)
		reply_error(c, r, nbd_errno_to_wire(res));
	else if (r->req.type == NBD_CMD_READ)
		reply_read(c, r);
	else
		reply_ok(c, r);
	stream_pump(&c->st);
}

/* base:allocation for the requested range, clipped to it. */
static void do_block_status(struct conn *c, struct creq *r)
{
	struct vol_extent ext[MAX_EXTENTS];
	int max = r->req.flags & NBD_CMD_FLAG_REQ_ONE ? 1 : MAX_EXTENTS;
	uint64_t end = r->req.offset + r->req.count;
	uint32_t *d;
	int n;

	n = vol_extents(c->vol, r->req.offset, r->req.count, ext, max);
	if (n <= 0 || creq_reserve(r, 4 + (size_t)n * 8) < 0) {
		reply_error(c, r, n < 0 ? nbd_errno_to_wire(n) : NBD_EIO);
		return;
	}
	d = (uint32_t *)r->buf;
	d[0] = htobe32(NBD_META_ID_BASE_ALLOCATION);
	for (int i = 0; i < n; i++) {
		uint64_t lo = ext[i].off < r->req.offset ? r->req.offset : ext[i].off;
		uint64_t hi = ext[i].off + ext[i].len > end ? end : ext[i].off + ext[i].len;

		d[1 + 2 * i] = htobe32((uint32_t)(hi - lo));
		d[2 + 2 * i] = htobe32(ext[i].hole ? NBD_STATE_HOLE | NBD_STATE_ZERO : 0);
	}
	r->data = r->buf;
	r->data_len = 4 + (size_t)n * 8;
	r->hdr_len = nbd_encode_chunk_header(r->hdr, NBD_REPLY_FLAG_DONE,
					     NBD_REPLY_TYPE_BLOCK_STATUS,
					     r->req.cookie, (uint32_t)r->data_len);
	queue_reply(c, r);
}

static unsigned vol_flags(const struct nbd_req *q)
{
	return (q->flags & NBD_CMD_FLAG_FUA ? VOL_FUA : 0) |
	       (q->flags & NBD_CMD_FLAG_NO_HOLE ? VOL_NO_HOLE : 0);
}

static void submit(struct conn *c, struct creq *r, enum vol_op op)
{
	c->executing++;
	r->vr.done = vol_done;
	r->vr.priv = r;
	vol_submit(c->vol, &r->vr, op, r->req.offset, r->req.count, r->buf,
		   vol_flags(&r->req));
}

static void dispatch(struct conn *c, struct creq *r, uint32_t err)
{
	if (err) {
		reply_error(c, r, err);
		return;
	}
	switch (r->req.type) {
	case NBD_CMD_READ:
		if (creq_reserve(r, vol_span(r->req.offset, r->req.count)) < 0)
			reply_error(c, r, NBD_ENOMEM);
		else
			submit(c, r, VOL_READ);
		break;
	case NBD_CMD_WRITE: submit(c, r, VOL_WRITE); break;
	case NBD_CMD_FLUSH: submit(c, r, VOL_FLUSH); break;
	case NBD_CMD_TRIM: submit(c, r, VOL_TRIM); break;
	case NBD_CMD_WRITE_ZEROES:
		/* Partial blocks are zeroed by a read-modify-write: no faster
		 * than writing zeroes, so FAST_ZERO fails at once. Whole blocks
		 * are a punch or ZERO_RANGE, with or without NO_HOLE. */
		if ((r->req.flags & NBD_CMD_FLAG_FAST_ZERO) &&
		    ((r->req.offset | r->req.count) & 4095))
			reply_error(c, r, NBD_ENOTSUP);
		else
			submit(c, r, VOL_ZERO);
		break;
	case NBD_CMD_CACHE: reply_ok(c, r); break;  /* no cache to fill */
	case NBD_CMD_BLOCK_STATUS: do_block_status(c, r); break;
	default: reply_error(c, r, NBD_EINVAL); break;
	}
}

/* --- receiving -------------------------------------------------------------- */

/* Errors found at parse time travel with the request until its payload is
 * in; stored in the header scratch, which is not used before the reply. */
static void payload_done(struct conn *c)
{
	struct creq *r = c->payload;
	uint32_t err;

	memcpy(&err, r->hdr, sizeof err);
	c->payload = NULL;
	dispatch(c, r, err);
}

/* Where a WRITE's next data bytes go: its buffer keeps the request's
 * offset within a block, for the read-modify-write of partial blocks. */
static uint8_t *payload_dst(struct creq *r, uint32_t have)
{
	return r->buf + (r->req.offset & 4095) + have;
}

static void take_payload_from_rbuf(struct conn *c)
{
	struct creq *r = c->payload;

	c->payload_have += (uint32_t)recvbuf_take(&c->st.rb, payload_dst(r, c->payload_have),
						   r->req.count - c->payload_have);
	if (c->payload_have == r->req.count)
		payload_done(c);
}

static void start_request(struct conn *c, const struct nbd_req *q)
{
	struct creq *r;
	uint32_t err;

	if (nbd_req_payload_too_big(q)) {
		conn_close(c, "payload too large");
		return;
	}
	if (q->type == NBD_CMD_DISC) {
		c->disc = true;
		return;  /* closed once idle (conn_settled) */
	}
	r = creq_get(c);
	if (!r) {
		conn_close(c, "out of memory");
		return;
	}
	r->req = *q;
	if (q->type == NBD_CMD_READ || q->type == NBD_CMD_WRITE) {
		r->charged = vol_span(q->offset, q->count);
		c->inflight_bytes += r->charged;
	}
	err = c->srv->shutting_down ? NBD_ESHUTDOWN : nbd_req_check(q, &c->sess);
	if (nbd_req_payload_len(q) == 0) {
		dispatch(c, r, err);
		return;
	}
	if (creq_reserve(r, vol_span(q->offset, q->count)) < 0) {
		creq_put(c, r);
		conn_close(c, "out of memory");
		return;
	}
	memcpy(r->hdr, &err, sizeof err);
	c->payload = r;
	c->payload_have = 0;
}

/* Flow control: stop reading requests until replies go out. */
static bool conn_full(const struct conn *c)
{
	return c->inflight >= MAX_INFLIGHT ||
	       (c->inflight > 0 && c->inflight_bytes >= MAX_INFLIGHT_BYTES);
}

/* Parse as many requests from rb as flow control allows. */
static void parse_transmission(struct conn *c)
{
	struct recvbuf *rb = &c->st.rb;

	while (!c->st.closing && !c->disc) {
		struct nbd_req q;

		if (c->payload) {
			take_payload_from_rbuf(c);
			if (c->payload)
				return;
			continue;
		}
		if (conn_full(c) || recvbuf_avail(rb) < 28)
			return;
		if (nbd_req_decode(recvbuf_head(rb), &q) < 0) {
			conn_close(c, "bad request magic");
			return;
		}
		recvbuf_consume(rb, 28);
		start_request(c, &q);
	}
}

static void enter_transmission(struct conn *c)
{
	const struct nbd_export *e = c->hs.export;

	c->phase = PH_TRANSMISSION;
	c->vol = e->volume;
	c->sess = (struct nbd_session){
		.size = e->size,
		.tflags = c->hs.tflags,
		.structured = c->hs.structured,
		.meta_base_allocation = c->hs.meta_base_allocation,
		.min_block = e->min_block,
		.max_block = e->max_block,
	};
	log_debug("connection %d: export %s", c->st.fd, e->name);
}

/* Options are answered one batch at a time: none is parsed while the
 * previous answers are queued (hsout must not move under the send). */
static void parse_handshake(struct conn *c)
{
	struct recvbuf *rb = &c->st.rb;

	while (c->phase == PH_HANDSHAKE && !c->st.closing && !c->hs_queued) {
		ssize_t n = nbd_hs_feed(&c->hs, recvbuf_head(rb), recvbuf_avail(rb));

		if (n < 0) {
			conn_close(c, "out of memory");
			return;
		}
		recvbuf_consume(rb, (size_t)n);
		if (c->hs.state == NBD_HS_CLOSED) {
			c->srv->stats.handshakes_failed++;
			/* Send what the handshake said (ABORT's ACK), then close. */
			c->disc = true;
			break;
		}
		if (c->hs.state == NBD_HS_DONE)
			enter_transmission(c);
		else if (n == 0)
			break;
	}
	queue_hs_out(c);
}

/* --- stream callbacks -------------------------------------------------------- */

static void conn_parse(struct stream *s)
{
	struct conn *c = conn_of(s);

	if (c->phase == PH_HANDSHAKE)
		parse_handshake(c);
	if (c->phase == PH_TRANSMISSION)
		parse_transmission(c);
	conn_drain_check(c);
}

/* A WRITE's data goes straight into its buffer when large enough. */
static void *conn_payload_target(struct stream *s, size_t *len)
{
	struct conn *c = conn_of(s);

	if (!c->payload) {
		*len = 0;
		return NULL;
	}
	*len = c->payload->req.count - c->payload_have;
	return payload_dst(c->payload, c->payload_have);
}

static void conn_payload_got(struct stream *s, size_t n)
{
	struct conn *c = conn_of(s);

	c->payload_have += (uint32_t)n;
	if (c->payload_have == c->payload->req.count)
		payload_done(c);
}

/* May more bytes be taken in now? */
static bool conn_may_read(struct stream *s)
{
	struct conn *c = conn_of(s);

	if (c->disc)
		return false;
	if (c->phase == PH_TRANSMISSION && !c->payload && conn_full(c))
		return false;  /* flow control: resumes when a reply goes out */
	if (c->phase == PH_HANDSHAKE && c->hsout.len > 0)
		return false;  /* finish answering before reading more options */
	if (c->phase == PH_TRANSMISSION && s->rb.cap < RBUF_SIZE &&
	    recvbuf_grow(&s->rb, RBUF_SIZE) < 0) {
		conn_close(c, "out of memory for the receive buffer");
		return false;
	}
	return true;
}

/* After STARTTLS's ACK went out in plaintext. Bytes the client sent
 * behind STARTTLS were never parsed as options: they are TLS input now,
 * so injected plaintext can only break the TLS handshake. */
static void conn_start_tls(struct conn *c)
{
	stream_start_tls(&c->st, tls_sess_new_server(c->srv->tls_ctx));
}

static void conn_msg_done(struct stream *s, struct sendq_msg *m, bool sent)
{
	struct conn *c = conn_of(s);

	if (m != &c->hs_msg) {
		creq_put(c, creq_of(m));
		return;
	}
	nbd_outbuf_consume(&c->hsout, m->len[0]);
	c->hs_queued = false;
	if (sent && c->hs.state == NBD_HS_STARTTLS && !s->closing && !s->tls)
		conn_start_tls(c);
}

static void conn_tls_done(struct stream *s, bool ok)
{
	struct conn *c = conn_of(s);

	if (!ok) {
		c->srv->stats.tls_handshakes_failed++;
		c->srv->stats.handshakes_failed++;
		return;
	}
	c->srv->stats.tls_handshakes++;
	nbd_hs_tls_started(&c->hs, tls_sess_peer(s->tls));
}

static void conn_settled(struct stream *s)
{
	struct conn *c = conn_of(s);

	if (c->disc || c->srv->shutting_down)
		conn_close_when_idle(c);
}

static void conn_closed(struct stream *s)
{
	struct conn *c = conn_of(s);

	if (c->payload) {
		creq_put(c, c->payload);
		c->payload = NULL;
	}
	c->st_closed = true;
	conn_maybe_free(c);
}

static const struct stream_ops conn_ops = {
	.parse = conn_parse,
	.payload_target = conn_payload_target,
	.payload_got = conn_payload_got,
	.may_read = conn_may_read,
	.msg_done = conn_msg_done,
	.settled = conn_settled,
	.tls_done = conn_tls_done,
	.closed = conn_closed,
};

void conn_start(struct nbd_server *srv, int fd)
{
	struct conn *c = calloc(1, sizeof *c);

	/* Enough for the largest option; RBUF_SIZE once in transmission, so
	 * that connections that never get there cost little. */
	if (!c || stream_init(&c->st, srv->loop, fd, NBD_HS_RECV_BUF, &conn_ops,
			      c, "nbd") < 0) {
		free(c);
		close(fd);
		return;
	}
	c->srv = srv;
	c->next = srv->conns;
	if (srv->conns)
		srv->conns->prev = c;
	srv->conns = c;
	srv->stats.connections_open++;
	c->hs_deadline_ms = loop_now_ms() + srv->hs_timeout_ms;
	nbd_hs_init(&c->hs, &srv->table, &c->hsout);
	c->hs.tls = srv->tls_mode;
	server_arm_hs_timer(srv);
	queue_hs_out(c);
	stream_pump(&c->st);
}

/* 1: still to be watched, 0: nothing to watch (or closed). */
static int expire_one(struct conn *c, uint64_t now)
{
	struct nbd_server *srv = c->srv;

	if (c->st.closing)
		return 0;
	if (c->phase == PH_HANDSHAKE && now >= c->hs_deadline_ms) {
		srv->stats.handshakes_failed++;
		conn_close(c, "handshake timeout");
		return 0;
	}
	if (c->st.send_armed &&
	    stream_send_waiting_ms(&c->st, now) >= srv->reply_timeout_ms) {
		srv->stats.reply_timeouts++;
		log_warn("nbd: closing a connection whose client took no reply "
			 "for %llu ms (--reply-timeout-ms)",
			 (unsigned long long)srv->reply_timeout_ms);
		conn_close(c, "reply timeout");
		return 0;
	}
	return c->phase == PH_HANDSHAKE || c->st.send_armed;
}

unsigned conn_expire(struct nbd_server *srv)
{
	uint64_t now = loop_now_ms();
	unsigned left = 0;
	struct conn *c = srv->conns;

	while (c) {
		struct conn *next = c->next;

		left += (unsigned)expire_one(c, now);
		c = next;
	}
	return left;
}

void conn_shutdown_all(struct nbd_server *srv)
{
	struct conn *c = srv->conns;

	while (c) {
		struct conn *next = c->next;

		if (c->phase == PH_HANDSHAKE) {
			conn_close(c, "server shutting down");
		} else {
			conn_drain_check(c);
			conn_close_when_idle(c);
		}
		c = next;
	}
}
