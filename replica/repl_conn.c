/*
 * One replication connection: 64-byte request headers and their payloads
 * received into a buffer (large payloads straight into the request's
 * aligned buffer), many requests in flight, replies gathered into one
 * sendmsg, in completion order. The socket I/O is the stream core's
 * (common/stream.h); this file is the replication protocol on top.
 *
 * Flow control: no new header is parsed (and no recv armed) while
 * MAX_INFLIGHT requests or MAX_INFLIGHT_BYTES of their buffers are in
 * flight; it resumes when replies go out.
 *
 * Lifetime: a connection is freed once its stream has closed and no
 * request is in flight (conn_maybe_free), from a loop task.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "stream.h"
#include "tls.h"
#include "repl_service_int.h"

#define RBUF_SIZE (256u * 1024)
#define MAX_INFLIGHT 128
#define MAX_INFLIGHT_BYTES (32u << 20)
#define KEEP_BUF_MAX (1u << 20)       /* larger request buffers are freed */

struct rconn {
	struct repl_service *svc;
	struct rconn *next, *prev;
	struct stream st;
	bool disc;               /* close once every reply is sent */
	bool tcp;                /* counts against the service's cap */
	bool tls;                /* requests only after the certificate */
	uint64_t started_ms;     /* for the handshake timeout */
	char peer[TLS_IDENTITY_MAX];  /* the node it proved to be */
	bool st_closed;          /* the stream has nothing in flight */
	bool free_scheduled;
	struct loop_task free_task;

	unsigned inflight;       /* requests between header and reply sent */
	size_t inflight_bytes;   /* their budgets */
	struct rreq *free_reqs;
	struct rreq *payload;    /* a request still receiving its payload */
	uint32_t payload_have;
};

static void rreq_put(struct rconn *c, struct rreq *r);

static struct rconn *conn_of(struct stream *s)
{
	return s->owner;
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
	stream_fini(&c->st);
	if (c->prev)
		c->prev->next = c->next;
	else
		svc->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	if (c->tcp)
		svc->tcp_open--;
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

/* Free once the stream is done and no request is out; always from a loop
 * task so that no caller's frame still points at c. */
static void conn_maybe_free(struct rconn *c)
{
	if (!c->st_closed || c->inflight > 0 || c->free_scheduled)
		return;  /* the store or a volume queue may still hold requests */
	c->free_scheduled = true;
	c->free_task.fn = conn_free_task;
	loop_defer(c->svc->loop, &c->free_task);
}

static void conn_close(struct rconn *c, const char *why)
{
	stream_close(&c->st, 0, why);
}

static void conn_close_when_idle(struct rconn *c)
{
	if (c->inflight == 0 && stream_tx_idle(&c->st) && !c->payload)
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
	return r->c->st.closing;
}

static void conn_after_put(struct rconn *c)
{
	if (c->st.closing)
		conn_maybe_free(c);
	else
		stream_pump(&c->st);  /* flow control may have been waiting for us */
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
	if (c->st.closing) {
		rreq_drop(r);
		return;
	}
	rep.payload_len = (uint32_t)(r->out_len[0] + r->out_len[1]);
	repl_rep_encode(&rep, r->hdr);
	sendq_msg_set(&r->sq, r->hdr, sizeof r->hdr, r->out[0], r->out_len[0],
		      r->out[1], r->out_len[1]);
	stream_send(&c->st, &r->sq);
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
	while (c->payload && recvbuf_avail(&c->st.rb) > 0) {
		size_t want;
		uint8_t *dst = payload_dst(c->payload, c->payload_have, &want);

		c->payload_have += (uint32_t)recvbuf_take(&c->st.rb, dst, want);
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

/* --- stream callbacks ----------------------------------------------------------- */

/* Parse as many requests from rb as flow control allows. */
static void conn_parse(struct stream *s)
{
	struct rconn *c = conn_of(s);

	while (!s->closing && !c->disc) {
		struct repl_req q;
		int ret;

		if (c->payload) {
			take_payload_from_rbuf(c);
			if (c->payload)
				return;
			continue;
		}
		if (!may_start_request(c) || recvbuf_avail(&s->rb) < REPL_REQ_SIZE)
			return;
		ret = repl_req_decode(recvbuf_head(&s->rb), &q);
		if (ret == -EPROTO) {
			c->svc->stats.protocol_errors++;
			conn_close(c, "bad request header");
			return;
		}
		recvbuf_consume(&s->rb, REPL_REQ_SIZE);
		start_request(c, &q, ret);
	}
}

static void *conn_payload_target(struct stream *s, size_t *len)
{
	struct rconn *c = conn_of(s);

	if (!c->payload) {
		*len = 0;
		return NULL;
	}
	return payload_dst(c->payload, c->payload_have, len);
}

static void conn_payload_got(struct stream *s, size_t n)
{
	struct rconn *c = conn_of(s);

	c->payload_have += (uint32_t)n;
	if (c->payload_have == c->payload->q.payload_len)
		payload_done(c);
}

/* Flow control: resumes when a reply goes out. */
static bool conn_may_read(struct stream *s)
{
	struct rconn *c = conn_of(s);

	return !c->disc && (c->payload || may_start_request(c));
}

static void conn_msg_done(struct stream *s, struct sendq_msg *m, bool sent)
{
	(void)sent;
	rreq_put(conn_of(s), rreq_of(m));
}

static void conn_settled(struct stream *s)
{
	struct rconn *c = conn_of(s);

	if (c->disc || c->svc->shutting_down)
		conn_close_when_idle(c);
}

static void conn_tls_done(struct stream *s, bool ok)
{
	struct rconn *c = conn_of(s);

	if (!ok) {
		c->svc->stats.auth_refused++;
		return;
	}
	snprintf(c->peer, sizeof c->peer, "%s", tls_sess_peer(s->tls));
	/* A verified chain with no usable name is no node; and the name a
	 * node serves under (its DNS subjectAltName) is the one it writes as. */
	if (!c->peer[0] || !tls_sess_peer_has_dns(s->tls, c->peer)) {
		c->svc->stats.auth_refused++;
		c->peer[0] = '\0';
		conn_close(c, "node certificate: no common name that is also "
			   "its DNS subjectAltName");
	}
}

const char *rreq_peer(const struct rreq *r)
{
	return r->c->tls ? r->c->peer : NULL;
}

static void conn_closed(struct stream *s)
{
	struct rconn *c = conn_of(s);

	if (c->payload) {
		rreq_put(c, c->payload);
		c->payload = NULL;
	}
	c->st_closed = true;
	conn_maybe_free(c);
}

static const struct stream_ops rconn_ops = {
	.parse = conn_parse,
	.payload_target = conn_payload_target,
	.payload_got = conn_payload_got,
	.may_read = conn_may_read,
	.msg_done = conn_msg_done,
	.settled = conn_settled,
	.tls_done = conn_tls_done,
	.closed = conn_closed,
};

unsigned rconn_expire_handshakes(struct repl_service *svc, uint64_t now,
				 uint64_t ms)
{
	unsigned left = 0;

	for (struct rconn *c = svc->conns; c; c = c->next) {
		if (!c->tls || c->peer[0] || c->st.closing)
			continue;
		if (now - c->started_ms < ms) {
			left++;
			continue;
		}
		svc->stats.handshake_timeouts++;
		conn_close(c, "TLS handshake not done in time");
	}
	return left;
}

int rconn_start(struct repl_service *svc, int fd, bool tcp)
{
	bool tls = tcp && svc->tls && *svc->tls;

	struct rconn *c = calloc(1, sizeof *c);

	if (!c || stream_init(&c->st, svc->loop, fd, RBUF_SIZE, &rconn_ops, c,
			      "replication") < 0) {
		free(c);
		close(fd);
		return -ENOMEM;
	}
	c->st.bytes_in = &svc->stats.bytes_in;
	c->st.bytes_out = &svc->stats.bytes_out;
	c->svc = svc;
	c->next = svc->conns;
	if (svc->conns)
		svc->conns->prev = c;
	svc->conns = c;
	svc->stats.connections_open++;
	c->tcp = tcp;
	if (tcp)
		svc->tcp_open++;
	c->tls = tls;
	c->started_ms = loop_now_ms();
	if (tls)
		repl_arm_hs_timer(svc);
	if (tls && stream_start_tls(&c->st, tls_sess_new_server(*svc->tls)) < 0)
		return 0;  /* closed; freed from the loop */
	stream_pump(&c->st);
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
