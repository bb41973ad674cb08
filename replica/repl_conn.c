/*
 * One replication connection: 64-byte request headers and their payloads
 * received into a buffer (large payloads straight into the request's
 * aligned buffer), many requests in flight, replies gathered into one
 * sendmsg, in completion order. All socket I/O is io_uring recv/sendmsg on
 * the service's loop; at most one recv and one send are in flight.
 *
 * Flow control: no new header is parsed (and no recv armed) while
 * MAX_INFLIGHT requests or MAX_INFLIGHT_BYTES of their buffers are in
 * flight; it resumes when replies go out.
 *
 * Lifetime: a connection is freed once it is closing and has no recv, no
 * send and no request in flight (conn_maybe_free), from a loop task.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>
#include <netinet/in.h>
#include <netinet/tcp.h>

#include "log.h"
#include "recvbuf.h"
#include "repl_service_int.h"

#define RBUF_SIZE (256u * 1024)
#define MAX_INFLIGHT 128
#define MAX_INFLIGHT_BYTES (32u << 20)
#define KEEP_BUF_MAX (1u << 20)       /* larger request buffers are freed */

struct rconn {
	struct repl_service *svc;
	struct rconn *next, *prev;
	int fd;
	struct loop_op recv_op, send_op;
	bool recv_armed, send_armed;
	bool closing;
	bool disc;               /* close once every reply is sent */
	bool free_scheduled;
	struct loop_task free_task;

	struct recvbuf rb;       /* headers and small payloads */

	unsigned inflight;       /* requests between header and reply sent */
	size_t inflight_bytes;   /* their budgets */
	struct rreq *free_reqs;
	struct rreq *payload;    /* a request still receiving its payload */
	uint32_t payload_have;
	struct sendq sendq;      /* replies, in completion order */
};

static void conn_pump(struct rconn *c);
static void conn_arm_send(struct rconn *c);
static void rreq_put(struct rconn *c, struct rreq *r);

static struct rconn *conn_of(struct loop_op *op, size_t field)
{
	return (struct rconn *)((char *)op - field);
}

/* --- lifetime ----------------------------------------------------------- */

static void rreq_free(struct rreq *r)
{
	free(r->buf);
	free(r->crcs);
	free(r);
}

static void conn_free(struct rconn *c)
{
	struct repl_service *svc = c->svc;

	while (c->free_reqs) {
		struct rreq *r = c->free_reqs;

		c->free_reqs = r->next;
		rreq_free(r);
	}
	close(c->fd);
	if (c->prev)
		c->prev->next = c->next;
	else
		svc->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	recvbuf_fini(&c->rb);
	free(c);
	svc->stats.connections_open--;
	repl_conn_gone(svc);
}

static void conn_free_task(struct loop_task *t)
{
	conn_free((struct rconn *)((char *)t - offsetof(struct rconn, free_task)));
}

static struct rreq *rreq_of(struct sendq_msg *m)
{
	return (struct rreq *)((char *)m - offsetof(struct rreq, sq));
}

static void drop_sendq(struct rconn *c)
{
	struct sendq_msg *m;

	while ((m = sendq_pop(&c->sendq)))
		rreq_put(c, rreq_of(m));
}

/* Free once closing and nothing is pending; always from a loop task so
 * that no caller's frame still points at c. */
static void conn_maybe_free(struct rconn *c)
{
	if (!c->closing || c->recv_armed || c->send_armed || c->free_scheduled)
		return;
	if (c->payload) {
		rreq_put(c, c->payload);
		c->payload = NULL;
	}
	drop_sendq(c);
	if (c->inflight > 0)
		return;  /* the store or a volume queue still holds requests */
	c->free_scheduled = true;
	c->free_task.fn = conn_free_task;
	loop_defer(c->svc->loop, &c->free_task);
}

static void conn_close(struct rconn *c, const char *why)
{
	if (!c->closing && why)
		log_debug("replication connection %d closed: %s", c->fd, why);
	c->closing = true;
	/* Wakes any pending recv/send with an error or EOF. */
	shutdown(c->fd, SHUT_RDWR);
	conn_maybe_free(c);
}

static void conn_close_when_idle(struct rconn *c)
{
	if (c->inflight == 0 && !c->send_armed && sendq_empty(&c->sendq) &&
	    !c->payload)
		conn_close(c, "done");
}

/* --- requests ------------------------------------------------------------- */

/* Bytes a request will hold while in flight: its data and crcs. */
static size_t req_budget(const struct repl_req *q)
{
	if (q->op == REPL_OP_READ || q->op == REPL_OP_WRITE)
		return (size_t)q->length + q->length / 4096 * 4;
	return 0;
}

static struct rreq *rreq_get(struct rconn *c, const struct repl_req *q)
{
	struct rreq *r = c->free_reqs;

	if (r) {
		c->free_reqs = r->next;
	} else {
		r = calloc(1, sizeof *r);
		if (!r)
			return NULL;
		r->c = c;
	}
	r->next = NULL;
	r->vol = NULL;
	r->q = *q;
	r->err = 0;
	r->epoch_deadline_ms = 0;
	r->out_len[0] = r->out_len[1] = 0;
	r->budget = req_budget(q);
	c->inflight++;
	c->inflight_bytes += r->budget;
	return r;
}

static void rreq_put(struct rconn *c, struct rreq *r)
{
	if (r->cap > KEEP_BUF_MAX) {
		free(r->buf);
		r->buf = NULL;
		r->cap = 0;
	}
	r->next = c->free_reqs;
	c->free_reqs = r;
	c->inflight--;
	c->inflight_bytes -= r->budget;
}

int rreq_reserve_buf(struct rreq *r, size_t bytes)
{
	if (bytes <= r->cap && r->buf)
		return 0;
	free(r->buf);
	r->cap = 0;
	if (posix_memalign((void **)&r->buf, 4096, bytes ? bytes : 4096) != 0) {
		r->buf = NULL;
		return -ENOMEM;
	}
	r->cap = bytes ? bytes : 4096;
	return 0;
}

int rreq_reserve_crcs(struct rreq *r, size_t bytes)
{
	uint32_t *p;

	if (bytes <= r->crcs_cap && r->crcs)
		return 0;
	p = realloc(r->crcs, bytes ? bytes : 4);
	if (!p)
		return -ENOMEM;
	r->crcs = p;
	r->crcs_cap = bytes ? bytes : 4;
	return 0;
}

bool rreq_orphaned(const struct rreq *r)
{
	return r->c->closing;
}

static void conn_after_put(struct rconn *c)
{
	if (c->closing)
		conn_maybe_free(c);
	else
		conn_pump(c);  /* flow control may have been waiting for us */
}

void rreq_drop(struct rreq *r)
{
	struct rconn *c = r->c;

	rreq_put(c, r);
	conn_after_put(c);
}

void rreq_reply(struct rreq *r, int status, uint64_t epoch)
{
	struct rconn *c = r->c;
	struct repl_rep rep = {
		.version = REPL_VERSION,
		.op = r->q.op,
		.req_id = r->q.req_id,
		.epoch = epoch,
		.status = status,
	};

	c->svc->stats.requests++;
	if (status != 0) {
		c->svc->stats.request_errors++;
		r->out_len[0] = r->out_len[1] = 0;
	}
	if (c->closing) {
		rreq_drop(r);
		return;
	}
	rep.payload_len = (uint32_t)(r->out_len[0] + r->out_len[1]);
	repl_rep_encode(&rep, r->hdr);
	sendq_msg_set(&r->sq, r->hdr, sizeof r->hdr, r->out[0], r->out_len[0],
		      r->out[1], r->out_len[1]);
	sendq_push(&c->sendq, &r->sq);
	conn_arm_send(c);
}

/* --- sending ------------------------------------------------------------------ */

static void on_send(struct loop_op *op, int res, uint32_t flags)
{
	struct rconn *c = conn_of(op, offsetof(struct rconn, send_op));
	size_t done = res > 0 ? (size_t)res : 0;
	struct sendq_msg *m;

	c->send_armed = false;
	if (res < 0 && res != -EINTR && res != -EAGAIN)
		conn_close(c, "send failed");
	c->svc->stats.bytes_out += done;
	sendq_advance(&c->sendq, done);
	while ((m = sendq_pop_sent(&c->sendq)))
		rreq_put(c, rreq_of(m));
	if (c->closing) {
		conn_maybe_free(c);
		return;
	}
	conn_arm_send(c);
	conn_pump(c);
}

/* Gather queued replies into one sendmsg. */
static void conn_arm_send(struct rconn *c)
{
	struct io_uring_sqe *sqe;

	if (c->send_armed || c->closing)
		return;
	if (!sendq_prepare(&c->sendq)) {
		if (c->disc || c->svc->shutting_down)
			conn_close_when_idle(c);
		return;
	}
	c->send_op.cb = on_send;
	sqe = loop_get_sqe(c->svc->loop, &c->send_op);
	io_uring_prep_sendmsg(sqe, c->fd, &c->sendq.msg, MSG_NOSIGNAL);
	c->send_armed = true;
}

/* --- receiving -------------------------------------------------------------------- */

/* Where the payload's next bytes go: a WRITE's crcs, then its data; HELLO
 * and OPEN into the request's small buffer. */
static uint8_t *payload_dst(struct rreq *r, uint32_t have, size_t *len)
{
	size_t ncrc = r->q.length / 4096 * 4;

	if (r->q.op != REPL_OP_WRITE) {
		*len = r->q.payload_len - have;
		return r->small + have;
	}
	if (have < ncrc) {
		*len = ncrc - have;
		return (uint8_t *)r->crcs + have;
	}
	*len = r->q.payload_len - have;
	return r->buf + (have - ncrc);
}

static void payload_done(struct rconn *c)
{
	struct rreq *r = c->payload;

	c->payload = NULL;
	repl_execute(c->svc, r);
}

static void take_payload_from_rbuf(struct rconn *c)
{
	while (c->payload && recvbuf_avail(&c->rb) > 0) {
		size_t want;
		uint8_t *dst = payload_dst(c->payload, c->payload_have, &want);

		c->payload_have += (uint32_t)recvbuf_take(&c->rb, dst, want);
		if (c->payload_have == c->payload->q.payload_len)
			payload_done(c);
	}
}

static int reserve_payload(struct rreq *r)
{
	if (r->q.op != REPL_OP_WRITE)
		return 0;  /* HELLO and OPEN fit in r->small */
	if (rreq_reserve_crcs(r, r->q.length / 4096 * 4) < 0)
		return -ENOMEM;
	return rreq_reserve_buf(r, r->q.length);
}

static void start_request(struct rconn *c, const struct repl_req *q, int err)
{
	struct rreq *r = rreq_get(c, q);

	if (!r) {
		conn_close(c, "out of memory");
		return;
	}
	r->err = err;
	if (err == -EPROTONOSUPPORT) {
		/* Answer in our version, then hang up: the rest of the
		 * stream is in a format we do not know. */
		c->disc = true;
		rreq_reply(r, err, 0);
		return;
	}
	if (q->payload_len == 0) {
		repl_execute(c->svc, r);
		return;
	}
	if (reserve_payload(r) < 0) {
		rreq_put(c, r);
		conn_close(c, "out of memory");
		return;
	}
	c->payload = r;
	c->payload_have = 0;
}

static bool may_start_request(const struct rconn *c)
{
	return c->inflight < MAX_INFLIGHT &&
	       c->inflight_bytes < MAX_INFLIGHT_BYTES;
}

/* Parse as many requests from rbuf as flow control allows. */
static void parse_requests(struct rconn *c)
{
	while (!c->closing && !c->disc) {
		struct repl_req q;
		int ret;

		if (c->payload) {
			take_payload_from_rbuf(c);
			if (c->payload)
				return;
			continue;
		}
		if (!may_start_request(c) || recvbuf_avail(&c->rb) < REPL_REQ_SIZE)
			return;
		ret = repl_req_decode(recvbuf_head(&c->rb), &q);
		if (ret == -EPROTO) {
			c->svc->stats.protocol_errors++;
			conn_close(c, "bad request header");
			return;
		}
		recvbuf_consume(&c->rb, REPL_REQ_SIZE);
		start_request(c, &q, ret);
	}
}

static void on_recv(struct loop_op *op, int res, uint32_t flags);

static void arm_recv(struct rconn *c)
{
	struct io_uring_sqe *sqe;
	uint8_t *dst = NULL;
	size_t len = 0;

	if (c->recv_armed || c->closing || c->disc)
		return;
	if (!c->payload && !may_start_request(c))
		return;  /* flow control: resumes when a reply goes out */
	if (c->payload)
		dst = payload_dst(c->payload, c->payload_have, &len);
	dst = recvbuf_target(&c->rb, dst, len, &len);
	if (len == 0)
		return;  /* a full buffer of headers waiting for flow control */
	c->recv_op.cb = on_recv;
	sqe = loop_get_sqe(c->svc->loop, &c->recv_op);
	io_uring_prep_recv(sqe, c->fd, dst, len, 0);
	c->recv_armed = true;
}

static void on_recv(struct loop_op *op, int res, uint32_t flags)
{
	struct rconn *c = conn_of(op, offsetof(struct rconn, recv_op));

	c->recv_armed = false;
	if (res == -EINTR || res == -EAGAIN) {
		conn_pump(c);
		return;
	}
	if (res <= 0 || c->closing) {
		conn_close(c, res == 0 ? "peer closed" : "recv failed");
		return;
	}
	c->svc->stats.bytes_in += (uint64_t)res;
	recvbuf_filled(&c->rb, (size_t)res);
	if (c->rb.direct) {
		c->payload_have += (uint32_t)res;
		if (c->payload_have == c->payload->q.payload_len)
			payload_done(c);
	}
	conn_pump(c);
}

/* Make progress: parse what is buffered, then read more if allowed. */
static void conn_pump(struct rconn *c)
{
	if (c->closing) {
		conn_maybe_free(c);
		return;
	}
	parse_requests(c);
	if (c->disc || c->svc->shutting_down)
		conn_close_when_idle(c);
	arm_recv(c);
}

int rconn_start(struct repl_service *svc, int fd)
{
	struct rconn *c = calloc(1, sizeof *c);
	int one = 1;

	if (!c || recvbuf_init(&c->rb, RBUF_SIZE) < 0) {
		free(c);
		close(fd);
		return -ENOMEM;
	}
	/* Replies must not wait for Nagle; fails harmlessly on Unix sockets. */
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	c->svc = svc;
	c->fd = fd;
	c->next = svc->conns;
	if (svc->conns)
		svc->conns->prev = c;
	svc->conns = c;
	svc->stats.connections_open++;
	arm_recv(c);
	return 0;
}

void rconn_close_all(struct repl_service *svc)
{
	struct rconn *c = svc->conns;

	while (c) {
		struct rconn *next = c->next;

		conn_close(c, "service shutting down");
		c = next;
	}
}
