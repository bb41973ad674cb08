/*
 * One NBD connection: handshake, then transmission with many requests in
 * flight, completed out of order. All socket I/O is io_uring recv/sendmsg
 * on the server's loop; at most one recv and one send are in flight.
 *
 * Lifetime: a connection is freed once it is closing and has no recv, no
 * send and no request in flight (conn_maybe_free).
 */
#include <endian.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "log.h"
#include "recvbuf.h"
#include "sendq.h"
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
/* TLS: ciphertext not yet sent before we stop encrypting replies (flow
 * control, as the socket's own buffer is without TLS), and small pieces
 * gathered into one record. */
#define TLS_BACKLOG_MAX (256u * 1024)
#define TLS_GATHER (16u * 1024)

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
	int fd;
	enum conn_phase phase;
	struct loop_op recv_op, send_op;
	bool recv_armed, send_armed;
	bool closing, disc;
	bool free_scheduled;
	struct loop_task free_task;
	uint64_t hs_deadline_ms;
	uint64_t send_armed_ms;  /* when the armed send was submitted */

	struct recvbuf rb;       /* handshake, headers, small WRITE data */

	struct nbd_hs hs;
	struct nbd_outbuf hsout;
	size_t hs_sending;       /* bytes of hsout in the current send */

	struct nbd_session sess;
	struct vol *vol;
	unsigned inflight;       /* requests between parse and reply sent */
	unsigned executing;      /* of those, the ones the volume holds */
	size_t inflight_bytes;   /* their data buffers */
	struct creq *free_reqs;
	struct creq *payload;    /* a WRITE still receiving its data */
	uint32_t payload_have;
	struct sendq sendq;      /* replies, in completion order */
	struct iovec hs_iov;     /* the handshake's bytes in flight */
	struct msghdr hs_msg;

	/* After STARTTLS every byte goes through tls; sends carry only its
	 * ciphertext, and replies are freed once encrypted. */
	struct tls_sess *tls;
	uint8_t *gather;         /* TLS_GATHER bytes of small reply pieces */
};

static void conn_pump(struct conn *c);
static void creq_put(struct conn *c, struct creq *r);
static void conn_arm_send(struct conn *c);
static void conn_start_tls(struct conn *c);
static void tls_arm_send(struct conn *c);

static struct conn *conn_of(struct loop_op *op, size_t field)
{
	return (struct conn *)((char *)op - field);
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
	close(c->fd);
	if (c->prev)
		c->prev->next = c->next;
	else
		s->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	nbd_outbuf_free(&c->hsout);
	recvbuf_fini(&c->rb);
	tls_sess_free(c->tls);
	free(c->gather);
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

static void drop_sendq(struct conn *c)
{
	struct sendq_msg *m;

	while ((m = sendq_pop(&c->sendq)))
		creq_put(c, creq_of(m));
}

/* Free once closing and nothing is pending; always from a loop task so
 * that no caller's frame still points at c. */
static void conn_maybe_free(struct conn *c)
{
	if (!c->closing || c->recv_armed || c->send_armed || c->free_scheduled)
		return;
	if (c->payload) {
		creq_put(c, c->payload);
		c->payload = NULL;
	}
	drop_sendq(c);
	if (c->inflight > 0)
		return;  /* the engine still owns requests: wait for them */
	c->free_scheduled = true;
	c->free_task.fn = conn_free_task;
	loop_defer(c->srv->loop, &c->free_task);
}

/* Stop reading and writing; the connection goes once nothing is pending. */
static void conn_close(struct conn *c, const char *why)
{
	if (!c->closing && why)
		log_debug("connection %d closed: %s", c->fd, why);
	c->closing = true;
	/* Wakes any pending recv/send with an error or EOF. */
	shutdown(c->fd, SHUT_RDWR);
	conn_maybe_free(c);
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

/* Nothing queued or on its way to the socket. */
static bool conn_tx_idle(const struct conn *c)
{
	return !c->send_armed && sendq_empty(&c->sendq) &&
	       (!c->tls || tls_sess_out_backlog(c->tls) == 0);
}

/* DISC or shutdown: close once every reply has been sent. */
static void conn_close_when_idle(struct conn *c)
{
	if (c->inflight == 0 && conn_tx_idle(c) && !c->payload)
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

static void queue_reply(struct conn *c, struct creq *r)
{
	if (r->hdr_len == 0 || c->closing) {
		creq_put(c, r);
		conn_maybe_free(c);
		return;
	}
	sendq_msg_set(&r->sq, r->hdr, r->hdr_len, r->data, r->data_len, NULL, 0);
	sendq_push(&c->sendq, &r->sq);
	c->srv->stats.requests++;
	conn_arm_send(c);
}

static void on_send(struct loop_op *op, int res, uint32_t flags)
{
	struct conn *c = conn_of(op, offsetof(struct conn, send_op));
	size_t done = res > 0 ? (size_t)res : 0;

	c->send_armed = false;
	if (res < 0 && res != -EINTR && res != -EAGAIN)
		conn_close(c, "send failed");
	if (c->tls) {
		tls_sess_out_done(c->tls, done);
	} else if (c->phase == PH_HANDSHAKE || c->hs_sending) {
		nbd_outbuf_consume(&c->hsout, done);
		c->hs_sending = 0;
		/* STARTTLS's ACK went out in plaintext: TLS from here on. */
		if (c->hs.state == NBD_HS_STARTTLS && c->hsout.len == 0 &&
		    !c->closing)
			conn_start_tls(c);
	} else {
		struct sendq_msg *m;

		sendq_advance(&c->sendq, done);
		while ((m = sendq_pop_sent(&c->sendq)))
			creq_put(c, creq_of(m));
	}
	if (c->closing) {
		conn_maybe_free(c);
		return;
	}
	conn_arm_send(c);
	conn_pump(c);
}

static void send_armed(struct conn *c)
{
	c->send_armed = true;
	/* Each completion re-arms: a send armed long ago made no progress. */
	c->send_armed_ms = loop_now_ms();
	server_arm_hs_timer(c->srv);
}

/* --- TLS ---------------------------------------------------------------- */

/* Encrypt one piece; small ones wait in the gather buffer to share a
 * record with their neighbours. */
static int tls_put(struct conn *c, size_t *gathered, const void *p, size_t n)
{
	if (*gathered + n <= TLS_GATHER) {
		memcpy(c->gather + *gathered, p, n);
		*gathered += n;
		return 0;
	}
	if (*gathered && tls_sess_write(c->tls, c->gather, *gathered) < 0)
		return -1;
	*gathered = 0;
	if (n < TLS_GATHER)
		return tls_put(c, gathered, p, n);
	return tls_sess_write(c->tls, p, n);
}

/* Queued replies into ciphertext, up to what one backlog allows; the
 * replies are done with once encrypted. */
static int tls_encrypt_replies(struct conn *c)
{
	size_t put = 0, gathered = 0;
	struct sendq_msg *m;

	if (!sendq_prepare(&c->sendq))
		return 0;
	for (size_t i = 0; i < c->sendq.msg.msg_iovlen && put < TLS_BACKLOG_MAX; i++) {
		const struct iovec *v = &c->sendq.msg.msg_iov[i];
		size_t n = v->iov_len;

		if (n > TLS_BACKLOG_MAX - put)
			n = TLS_BACKLOG_MAX - put;
		if (tls_put(c, &gathered, v->iov_base, n) < 0)
			return -1;
		put += n;
	}
	if (gathered && tls_sess_write(c->tls, c->gather, gathered) < 0)
		return -1;
	sendq_advance(&c->sendq, put);
	while ((m = sendq_pop_sent(&c->sendq)))
		creq_put(c, creq_of(m));
	return 1;
}

static int tls_encrypt(struct conn *c)
{
	int r = 1;

	while (r > 0 && tls_sess_out_backlog(c->tls) < TLS_BACKLOG_MAX) {
		if (c->hsout.len > 0) {
			if (tls_sess_write(c->tls, c->hsout.data, c->hsout.len) < 0)
				return -1;
			nbd_outbuf_consume(&c->hsout, c->hsout.len);
			continue;
		}
		r = tls_encrypt_replies(c);
	}
	return r < 0 ? -1 : 0;
}

static void tls_arm_send(struct conn *c)
{
	struct io_uring_sqe *sqe;
	const void *p;
	size_t len;

	if (tls_sess_ready(c->tls) && tls_encrypt(c) < 0) {
		log_info("nbd: connection %d: %s", c->fd, tls_sess_error(c->tls));
		conn_close(c, "TLS write failed");
		return;
	}
	len = tls_sess_out(c->tls, &p);
	if (len == 0) {
		if (c->disc || c->srv->shutting_down)
			conn_close_when_idle(c);
		return;
	}
	c->send_op.cb = on_send;
	sqe = loop_get_sqe(c->srv->loop, &c->send_op);
	io_uring_prep_send(sqe, c->fd, p, len, MSG_NOSIGNAL);
	send_armed(c);
}

static void tls_handshake_step(struct conn *c)
{
	int r = tls_sess_handshake(c->tls);

	if (r < 0) {
		c->srv->stats.tls_handshakes_failed++;
		c->srv->stats.handshakes_failed++;
		log_info("nbd: connection %d: TLS %s", c->fd, tls_sess_error(c->tls));
		conn_close(c, "TLS handshake failed");
	} else if (r == 1) {
		c->srv->stats.tls_handshakes++;
		nbd_hs_tls_started(&c->hs, tls_sess_peer(c->tls));
		log_debug("connection %d: TLS up, peer '%s'", c->fd,
			  tls_sess_peer(c->tls));
	}
}

/* After STARTTLS's ACK. Bytes the client sent behind STARTTLS were never
 * parsed as options: they are TLS input now, so injected plaintext can
 * only break the TLS handshake. */
static void conn_start_tls(struct conn *c)
{
	c->tls = tls_sess_new_server(c->srv->tls_ctx);
	c->gather = malloc(TLS_GATHER);
	if (!c->tls || !c->gather ||
	    tls_sess_feed(c->tls, recvbuf_head(&c->rb), recvbuf_avail(&c->rb)) < 0) {
		conn_close(c, "out of memory for TLS");
		return;
	}
	recvbuf_reset(&c->rb);
	tls_handshake_step(c);
}

/* The handshake's pending bytes, or every queued reply gathered into one
 * sendmsg. */
static void conn_arm_send(struct conn *c)
{
	struct io_uring_sqe *sqe;
	struct msghdr *msg = &c->hs_msg;

	if (c->send_armed || c->closing)
		return;
	if (c->tls) {
		tls_arm_send(c);
		return;
	}
	if (c->hsout.len > 0) {
		c->hs_sending = c->hsout.len;
		c->hs_iov.iov_base = c->hsout.data;
		c->hs_iov.iov_len = c->hsout.len;
		memset(msg, 0, sizeof *msg);
		msg->msg_iov = &c->hs_iov;
		msg->msg_iovlen = 1;
	} else if (sendq_prepare(&c->sendq)) {
		msg = &c->sendq.msg;
	} else {
		if (c->disc || c->srv->shutting_down)
			conn_close_when_idle(c);
		return;
	}
	c->send_op.cb = on_send;
	sqe = loop_get_sqe(c->srv->loop, &c->send_op);
	io_uring_prep_sendmsg(sqe, c->fd, msg, MSG_NOSIGNAL);
	send_armed(c);
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
	conn_pump(c);
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

	c->payload_have += (uint32_t)recvbuf_take(&c->rb, payload_dst(r, c->payload_have),
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
		conn_close_when_idle(c);
		return;
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

/* Parse as many requests from rbuf as flow control allows. */
static void parse_transmission(struct conn *c)
{
	while (!c->closing && !c->disc) {
		struct nbd_req q;

		if (c->payload) {
			take_payload_from_rbuf(c);
			if (c->payload)
				return;
			continue;
		}
		if (conn_full(c) || recvbuf_avail(&c->rb) < 28)
			return;
		if (nbd_req_decode(recvbuf_head(&c->rb), &q) < 0) {
			conn_close(c, "bad request magic");
			return;
		}
		recvbuf_consume(&c->rb, 28);
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
	log_debug("connection %d: export %s", c->fd, e->name);
}

static void parse_handshake(struct conn *c)
{
	while (c->phase == PH_HANDSHAKE && !c->closing) {
		ssize_t n = nbd_hs_feed(&c->hs, recvbuf_head(&c->rb), recvbuf_avail(&c->rb));

		if (n < 0) {
			conn_close(c, "out of memory");
			return;
		}
		recvbuf_consume(&c->rb, (size_t)n);
		if (c->hs.state == NBD_HS_CLOSED) {
			c->srv->stats.handshakes_failed++;
			/* Send what the handshake said (ABORT's ACK), then close. */
			c->disc = true;
			conn_arm_send(c);
			return;
		}
		if (c->hs.state == NBD_HS_DONE)
			enter_transmission(c);
		else if (n == 0)
			break;
	}
	conn_arm_send(c);
}

static void on_recv(struct loop_op *op, int res, uint32_t flags);

/* May more bytes be taken in now? */
static bool conn_may_read(struct conn *c)
{
	if (c->closing || c->disc)
		return false;
	if (c->phase == PH_TRANSMISSION && !c->payload && conn_full(c))
		return false;  /* flow control: resumes when a reply goes out */
	if (c->phase == PH_HANDSHAKE && c->hsout.len > 0)
		return false;  /* finish answering before reading more options */
	if (c->phase == PH_TRANSMISSION && c->rb.cap < RBUF_SIZE &&
	    recvbuf_grow(&c->rb, RBUF_SIZE) < 0) {
		conn_close(c, "out of memory for the receive buffer");
		return false;
	}
	return true;
}

/* Where the next plaintext goes (a WRITE's buffer, or rb); NULL if rb is
 * full, which flow control prevents (the connection is closed). */
static void *plain_target(struct conn *c, size_t *len)
{
	void *dst;

	if (c->payload)
		dst = recvbuf_target(&c->rb, payload_dst(c->payload, c->payload_have),
				     c->payload->req.count - c->payload_have, len);
	else
		dst = recvbuf_target(&c->rb, NULL, 0, len);
	if (*len == 0) {
		conn_close(c, "receive buffer full");
		return NULL;
	}
	return dst;
}

/* n plaintext bytes arrived where plain_target said. */
static void conn_got(struct conn *c, size_t n)
{
	recvbuf_filled(&c->rb, n);
	if (c->rb.direct) {
		c->payload_have += (uint32_t)n;
		if (c->payload_have == c->payload->req.count)
			payload_done(c);
	}
}

/* Decrypt what TLS holds into the plaintext target; true if some came. */
static bool tls_decrypt(struct conn *c)
{
	void *dst;
	size_t len;
	ssize_t n;

	if (!c->tls || !tls_sess_ready(c->tls) || !conn_may_read(c))
		return false;
	dst = plain_target(c, &len);
	if (!dst)
		return false;
	n = tls_sess_read(c->tls, dst, len);
	if (n < 0) {
		if (n != -ECONNRESET)
			log_info("nbd: connection %d: TLS %s", c->fd,
				 tls_sess_error(c->tls));
		conn_close(c, n == -ECONNRESET ? "client closed TLS" : "TLS read failed");
		return false;
	}
	if (n > 0)
		conn_got(c, (size_t)n);
	return n > 0;
}

static void arm_recv(struct conn *c)
{
	struct io_uring_sqe *sqe;
	void *dst;
	size_t len;

	if (c->recv_armed || !conn_may_read(c))
		return;
	/* With TLS, ciphertext; conn_pump decrypted all it could first. */
	dst = c->tls ? tls_sess_in_buf(c->tls, &len) : plain_target(c, &len);
	if (!dst)
		return;
	c->recv_op.cb = on_recv;
	sqe = loop_get_sqe(c->srv->loop, &c->recv_op);
	io_uring_prep_recv(sqe, c->fd, dst, len, 0);
	c->recv_armed = true;
}

static void on_recv(struct loop_op *op, int res, uint32_t flags)
{
	struct conn *c = conn_of(op, offsetof(struct conn, recv_op));

	c->recv_armed = false;
	if (res == -EINTR || res == -EAGAIN) {
		conn_pump(c);
		return;
	}
	if (res <= 0 || c->closing) {
		conn_close(c, res == 0 ? "client closed" : "recv failed");
		return;
	}
	if (c->tls) {
		if (tls_sess_in_done(c->tls, (size_t)res) < 0) {
			conn_close(c, "out of memory for TLS");
			return;
		}
		if (!tls_sess_ready(c->tls))
			tls_handshake_step(c);
		conn_arm_send(c);  /* handshake records */
	} else {
		conn_got(c, (size_t)res);
	}
	conn_pump(c);
}

/* Make progress: parse what is buffered, then read more if allowed. */
static void conn_pump(struct conn *c)
{
	if (c->closing) {
		conn_maybe_free(c);
		return;
	}
	do {
		if (c->phase == PH_HANDSHAKE)
			parse_handshake(c);
		if (c->phase == PH_TRANSMISSION)
			parse_transmission(c);
		conn_drain_check(c);
		if (c->disc || c->srv->shutting_down)
			conn_close_when_idle(c);
	} while (tls_decrypt(c));
	if (c->tls)
		conn_arm_send(c);  /* anything TLS itself wants to say */
	arm_recv(c);
}

void conn_start(struct nbd_server *srv, int fd)
{
	struct conn *c = calloc(1, sizeof *c);
	int one = 1;

	/* Enough for the largest option; RBUF_SIZE once in transmission, so
	 * that connections that never get there cost little. */
	if (!c || recvbuf_init(&c->rb, NBD_HS_RECV_BUF) < 0) {
		free(c);
		close(fd);
		return;
	}
	/* Replies must not wait for Nagle; fails harmlessly on Unix sockets. */
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	c->srv = srv;
	c->fd = fd;
	c->next = srv->conns;
	if (srv->conns)
		srv->conns->prev = c;
	srv->conns = c;
	srv->stats.connections_open++;
	c->hs_deadline_ms = loop_now_ms() + srv->hs_timeout_ms;
	nbd_hs_init(&c->hs, &srv->table, &c->hsout);
	c->hs.tls = srv->tls_mode;
	server_arm_hs_timer(srv);
	conn_arm_send(c);
	arm_recv(c);
}

/* 1: still to be watched, 0: nothing to watch (or closed). */
static int expire_one(struct conn *c, uint64_t now)
{
	struct nbd_server *srv = c->srv;

	if (c->closing)
		return 0;
	if (c->phase == PH_HANDSHAKE && now >= c->hs_deadline_ms) {
		srv->stats.handshakes_failed++;
		conn_close(c, "handshake timeout");
		return 0;
	}
	if (c->send_armed && now - c->send_armed_ms >= srv->reply_timeout_ms) {
		srv->stats.reply_timeouts++;
		log_warn("nbd: closing a connection whose client took no reply "
			 "for %llu ms (--reply-timeout-ms)",
			 (unsigned long long)srv->reply_timeout_ms);
		conn_close(c, "reply timeout");
		return 0;
	}
	return c->phase == PH_HANDSHAKE || c->send_armed;
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
