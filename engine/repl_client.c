/*
 * One connection to a remote replica (see repl_client.h).
 *
 * States: DOWN (waiting for the backoff timer) -> CONNECTING -> OPENING
 * (HELLO and OPEN sent) -> UP. Any error returns to DOWN after failing
 * every request in flight. Requests are kept on two queues: the stream's
 * sendq (not yet fully sent) and waitq (sent, waiting for a reply); a reply
 * is matched by req_id in waitq. The socket I/O of a connection is the
 * stream core's (common/stream.h), set up once connect succeeded.
 */
#include "repl_client.h"

#include <endian.h>
#include <errno.h>
#include <stdio.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "crc32c.h"
#include "log.h"
#include "stream.h"
#include "tls.h"

/* Holds reply headers, checksums and small data; large READ data is
 * received straight into the caller's buffer. */
#define RBUF_SIZE (256u * 1024)
#define BACKOFF_MIN_MS 100
#define BACKOFF_MAX_MS 2000
#define TICK_MS 250

enum client_state { ST_DOWN, ST_CONNECTING, ST_OPENING, ST_UP };

struct repl_client {
	struct loop *loop;
	struct repl_client_opts opts;
	char addr[256];
	char node_id[64];
	char peer_node[64];
	char volume_name[REPL_MAX_NAME + 1];
	struct sockaddr_storage sa;
	socklen_t salen;
	enum client_state state;
	int fd;                           /* while connecting */
	bool freeing;
	bool conn_armed;
	struct loop_op conn_op;
	bool st_live;                     /* from connect until st closed */
	struct stream st;
	int lost_err;                     /* what requests of st fail with */
	struct loop_timer timer;
	struct loop_task task;
	bool task_queued;
	uint64_t backoff_ms;
	uint64_t retry_at_ms;             /* DOWN: no connect before this */
	uint64_t next_req_id;
	uint64_t session;                 /* of the current connection */

	struct repl_client_io *reading;   /* a READ whose data is arriving */
	uint32_t reading_have;

	struct repl_client_io *waitq_head, *waitq_tail;
	struct repl_client_io *failq;    /* completed with failq_err later */

	/* The read lease (opts.lease_ms): one LEASE in flight at a time. */
	struct repl_client_io lease;
	uint8_t lease_wire[REPL_LEASE_SIZE];
	bool lease_pending;
	uint64_t lease_sent_ms, lease_until_ms, prior_end_ms;

	/* HELLO and OPEN, sent first on each connection. */
	struct repl_client_io hello, open;
	struct repl_open open_payload;
	uint64_t open_size;               /* what the current OPEN carries */
	uint8_t hello_payload[64];
};

static void conn_lost(struct repl_client *c, int err);

#define CLIENT_OF(ptr, field) \
	((struct repl_client *)((char *)(ptr) - offsetof(struct repl_client, field)))

static struct repl_client_io *io_of(struct sendq_msg *m)
{
	return (struct repl_client_io *)((char *)m - offsetof(struct repl_client_io, sq));
}

/* --- queues ----------------------------------------------------------- */

static void q_push(struct repl_client_io **head, struct repl_client_io **tail,
		   struct repl_client_io *io)
{
	io->next = NULL;
	if (*tail)
		(*tail)->next = io;
	else
		*head = io;
	*tail = io;
}

static struct repl_client_io *q_pop(struct repl_client_io **head,
				    struct repl_client_io **tail)
{
	struct repl_client_io *io = *head;

	if (io) {
		*head = io->next;
		if (!*head)
			*tail = NULL;
	}
	return io;
}

static struct repl_client_io *waitq_take(struct repl_client *c, uint64_t id)
{
	struct repl_client_io *prev = NULL;

	for (struct repl_client_io *io = c->waitq_head; io; prev = io, io = io->next) {
		if (io->req_id != id)
			continue;
		if (prev)
			prev->next = io->next;
		else
			c->waitq_head = io->next;
		if (c->waitq_tail == io)
			c->waitq_tail = prev;
		return io;
	}
	return NULL;
}

static bool is_internal(struct repl_client *c, struct repl_client_io *io)
{
	return io == &c->hello || io == &c->open;
}

/* --- completing requests ------------------------------------------------ */

static void complete(struct repl_client *c, struct repl_client_io *io, int res)
{
	if (is_internal(c, io))
		return;
	io->done(io, res);
}

static unsigned live_clients;  /* allocated and not yet freed */

unsigned repl_client_live(void)
{
	return live_clients;
}

static bool ops_armed(const struct repl_client *c)
{
	return c->conn_armed || c->st_live;
}

/* Free once nothing the kernel or the loop holds points into c. */
static void maybe_free(struct repl_client *c)
{
	if (!c->freeing || ops_armed(c) || c->timer.armed || c->task_queued)
		return;
	live_clients--;
	free(c);
}

/* Failures found inside repl_client_submit are completed from the loop. */
static void run_failq(struct loop_task *t)
{
	struct repl_client *c = CLIENT_OF(t, task);
	struct repl_client_io *list = c->failq;

	c->task_queued = false;
	c->failq = NULL;
	while (list) {
		struct repl_client_io *io = list;

		list = io->next;
		io->done(io, -ENOTCONN);
	}
	maybe_free(c);
}

static void queue_task(struct repl_client *c)
{
	if (c->task_queued)
		return;
	c->task_queued = true;
	c->task.fn = run_failq;
	loop_defer(c->loop, &c->task);
}

/* Requests sent and waiting for replies fail at once; those still queued
 * on the stream, and a READ whose data was arriving, once the stream has
 * nothing in flight (the kernel may still use their buffers). */
static void fail_waitq(struct repl_client *c, int err)
{
	struct repl_client_io *io;

	c->lost_err = err;
	while ((io = q_pop(&c->waitq_head, &c->waitq_tail)))
		complete(c, io, err);
}

/* --- encoding ------------------------------------------------------------ */

static uint32_t payload_len(const struct repl_client_io *io)
{
	if (io->op == REPL_OP_WRITE)
		return io->length / 4096 * 4 + io->length;
	if (io->op == REPL_OP_HELLO)
		return (uint32_t)strlen((const char *)io->buf);
	if (io->op == REPL_OP_OPEN)
		return sizeof(struct repl_open);
	if (io->op == REPL_OP_RESIZE)
		return REPL_RESIZE_SIZE;
	if (io->op == REPL_OP_LEASE)
		return REPL_LEASE_SIZE;
	return 0;
}

static void encode(struct repl_client *c, struct repl_client_io *io)
{
	struct repl_req q = {
		.magic = REPL_REQ_MAGIC,
		.version = REPL_VERSION,
		.op = io->op,
		.req_id = io->req_id,
		.volume_id = c->opts.volume_id,
		.epoch = c->opts.epoch,
		.session = c->session,
		.offset = io->offset,
		.length = io->length,
		.flags = io->flags,
		.payload_len = payload_len(io),
	};

	repl_req_encode(&q, io->hdr);
}

static void enqueue(struct repl_client *c, struct repl_client_io *io)
{
	io->req_id = ++c->next_req_id;
	io->deadline_ms = loop_now_ms() + c->opts.io_timeout_ms;
	encode(c, io);
	if (io->op == REPL_OP_WRITE)
		sendq_msg_set(&io->sq, io->hdr, sizeof io->hdr, io->crcs,
			      io->length / 4096 * 4, io->buf, io->length);
	else
		sendq_msg_set(&io->sq, io->hdr, sizeof io->hdr, io->buf,
			      payload_len(io), NULL, 0);
	stream_send(&c->st, &io->sq);
}

/* --- read leases ----------------------------------------------------------- */

static void lease_done(struct repl_client_io *io, int res)
{
	struct repl_client *c = io->priv;
	uint64_t wait_ms, now = loop_now_ms(), until;

	c->lease_pending = false;
	if (res < 0 || c->freeing ||
	    repl_lease_decode(c->lease_wire, REPL_LEASE_SIZE, false, &wait_ms) < 0)
		return;
	/* Counted from the send, less a tenth for clock rate differences. */
	until = c->lease_sent_ms + c->opts.lease_ms - c->opts.lease_ms / 10;
	if (until > c->lease_until_ms)
		c->lease_until_ms = until;
	c->prior_end_ms = now + wait_ms;
}

static void enqueue(struct repl_client *c, struct repl_client_io *io);

/* Renew once a quarter of the lease has passed since the last ask. */
static void lease_maybe_renew(struct repl_client *c)
{
	uint64_t now = loop_now_ms();

	if (!c->opts.lease_ms || c->lease_pending || c->state != ST_UP ||
	    c->freeing || now - c->lease_sent_ms < c->opts.lease_ms / 4)
		return;
	c->lease = (struct repl_client_io){ .op = REPL_OP_LEASE,
					    .buf = c->lease_wire,
					    .done = lease_done, .priv = c };
	repl_lease_encode(c->opts.lease_ms, c->lease_wire);
	c->lease_pending = true;
	c->lease_sent_ms = now;
	enqueue(c, &c->lease);
}

bool repl_client_leased(const struct repl_client *c, uint64_t now)
{
	return c && c->opts.lease_ms && c->lease_until_ms > now &&
	       c->prior_end_ms <= now;
}

/* --- timer: reconnects and request deadlines --------------------------- */

static void start_connect(struct repl_client *c);

static bool deadline_passed(struct repl_client *c)
{
	uint64_t now = loop_now_ms();

	if (c->reading && now >= c->reading->deadline_ms)
		return true;
	for (struct repl_client_io *io = c->waitq_head; io; io = io->next)
		if (now >= io->deadline_ms)
			return true;
	for (struct sendq_msg *m = c->st.sendq.head; m; m = m->next)
		if (now >= io_of(m)->deadline_ms)
			return true;
	return false;
}

static void on_timer(struct loop_timer *t)
{
	struct repl_client *c = CLIENT_OF(t, timer);

	if (c->freeing) {
		maybe_free(c);
		return;
	}
	if (c->state == ST_DOWN) {
		/* The request tick may fire before the backoff has passed. */
		if (loop_now_ms() < c->retry_at_ms)
			loop_timer_arm(c->loop, &c->timer, c->retry_at_ms - loop_now_ms());
		else
			start_connect(c);
		return;
	}
	if (deadline_passed(c)) {
		log_warn("replica %s: request timed out, resetting the connection",
			 c->addr);
		conn_lost(c, -ETIMEDOUT);
		return;
	}
	lease_maybe_renew(c);
	if (c->waitq_head || !sendq_empty(&c->st.sendq) || c->reading ||
	    c->state != ST_UP || c->opts.lease_ms)
		loop_timer_arm(c->loop, &c->timer, TICK_MS);
}

static void arm_tick(struct repl_client *c)
{
	c->timer.fn = on_timer;
	loop_timer_arm(c->loop, &c->timer, TICK_MS);
}

/* --- connection lifecycle ------------------------------------------------ */

/* Called when the last armed op of a dead connection completed. */
static void finish_close(struct repl_client *c)
{
	if (c->fd >= 0) {
		close(c->fd);
		c->fd = -1;
	}
	if (c->freeing) {
		maybe_free(c);
		return;
	}
	c->state = ST_DOWN;
	c->retry_at_ms = loop_now_ms() + c->backoff_ms;
	c->timer.fn = on_timer;
	loop_timer_arm(c->loop, &c->timer, c->backoff_ms);
	c->backoff_ms = c->backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : c->backoff_ms * 2;
}

static void conn_lost(struct repl_client *c, int err)
{
	bool was_up = c->state == ST_UP;

	if (c->fd >= 0)
		shutdown(c->fd, SHUT_RDWR);
	if (c->st_live)
		stream_close(&c->st, err, NULL);
	c->state = ST_CONNECTING;  /* not UP: submits fail until reconnected */
	fail_waitq(c, err);
	if (was_up && c->opts.on_state)
		c->opts.on_state(c, false, err, c->opts.arg);
	if (!ops_armed(c))
		finish_close(c);
}

static const struct stream_ops client_ops;

/* The socket is connected: a stream over it, then HELLO and OPEN. */
static void send_opening(struct repl_client *c)
{
	if (stream_init(&c->st, c->loop, c->fd, RBUF_SIZE, &client_ops, c,
			"replica client") < 0) {
		log_warn("replica %s: out of memory for a connection", c->addr);
		finish_close(c);
		return;
	}
	c->fd = -1;
	c->st_live = true;
	c->lost_err = 0;
	if (c->opts.tls && *c->opts.tls && !c->opts.connect_fd &&
	    stream_start_tls(&c->st, tls_sess_new_client(*c->opts.tls,
							  c->peer_node)) < 0)
		return;  /* closed: retried after the backoff */
	/* A new session per connection: the replica then refuses whatever
	 * the kernel may still deliver from the one we gave up on. */
	c->session++;
	c->state = ST_OPENING;
	c->hello = (struct repl_client_io){ .op = REPL_OP_HELLO, .buf = c->hello_payload };
	c->open = (struct repl_client_io){ .op = REPL_OP_OPEN, .buf = &c->open_payload };
	c->open_size = c->opts.volume_size;
	c->open_payload.size = htole64(c->open_size);
	if (c->opts.may_create && c->opts.may_create(c->opts.arg))
		c->open.flags = REPL_FLAG_CREATE;
	enqueue(c, &c->hello);
	enqueue(c, &c->open);
	stream_pump(&c->st);
	arm_tick(c);
}

static void on_connect(struct loop_op *op, int res, uint32_t flags)
{
	struct repl_client *c = CLIENT_OF(op, conn_op);

	c->conn_armed = false;
	if (c->freeing || res < 0) {
		if (res < 0 && !c->freeing)
			log_debug("replica %s: connect: %s", c->addr, strerror(-res));
		c->state = ST_CONNECTING;
		finish_close(c);
		return;
	}
	send_opening(c);
}

static void start_connect(struct repl_client *c)
{
	struct io_uring_sqe *sqe;

	if (c->opts.connect_fd) {
		c->fd = c->opts.connect_fd(c->opts.arg);
		c->state = ST_CONNECTING;
		if (c->fd < 0)
			finish_close(c);
		else
			send_opening(c);
		return;
	}
	c->fd = socket(c->sa.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (c->fd < 0) {
		c->state = ST_CONNECTING;
		finish_close(c);
		return;
	}
	c->state = ST_CONNECTING;
	c->conn_op.cb = on_connect;
	sqe = loop_get_sqe(c->loop, &c->conn_op);
	io_uring_prep_connect(sqe, c->fd, (struct sockaddr *)&c->sa, c->salen);
	c->conn_armed = true;
}

/* --- receiving ---------------------------------------------------------------- */

/* Bytes of reply payload a successful reply to io carries. */
static uint32_t expected_payload(const struct repl_client_io *io)
{
	if (io->op == REPL_OP_READ)
		return io->length / 4096 * 4 + io->length;
	if (io->op == REPL_OP_CRCS)
		return io->length / 4096 * 4;
	if (io->op == REPL_OP_LEASE)
		return REPL_LEASE_SIZE;
	return 0;
}

static void copy_crcs(struct repl_client_io *io, const uint8_t *p)
{
	uint32_t n = io->length / 4096;

	memcpy(io->crcs, p, (size_t)n * 4);
	for (uint32_t i = 0; i < n; i++)
		io->crcs[i] = le32toh(io->crcs[i]);
}

static void copy_dirty(struct repl_client_io *io, const uint8_t *p, uint32_t len)
{
	uint64_t *out = io->buf;

	memcpy(out, p, len);
	for (uint32_t i = 0; i < len / 8; i++)
		out[i] = le64toh(out[i]);
	io->got = len;
}

static void opened(struct repl_client *c, struct repl_client_io *io, int res)
{
	if (res < 0) {
		log_warn("replica %s: %s refused: %s", c->addr,
			 io == &c->hello ? "HELLO" : "OPEN", strerror(-res));
		conn_lost(c, res);
		if (c->opts.on_refused && !c->freeing)
			c->opts.on_refused(c, res, c->opts.arg);
		return;
	}
	if (io == &c->open && c->open_size < c->opts.volume_size) {
		log_info("replica %s: opened at %llu bytes, but the volume has "
			 "grown to %llu: opening again", c->addr,
			 (unsigned long long)c->open_size,
			 (unsigned long long)c->opts.volume_size);
		conn_lost(c, -EAGAIN);
		return;
	}
	if (io == &c->open) {
		c->state = ST_UP;
		c->backoff_ms = BACKOFF_MIN_MS;
		log_info("replica %s: connected (volume %s, epoch %llu)", c->addr,
			 c->volume_name, (unsigned long long)c->opts.epoch);
		c->lease_sent_ms = 0;  /* ask at once */
		lease_maybe_renew(c);
		if (!c->timer.armed)
			arm_tick(c);
		if (c->opts.on_state)
			c->opts.on_state(c, true, 0, c->opts.arg);
	}
}

static void finish_io(struct repl_client *c, struct repl_client_io *io, int res)
{
	if (is_internal(c, io))
		opened(c, io, res);
	else
		io->done(io, res);
}

/* Move READ data from rbuf into the caller's buffer; done when complete. */
static void take_read_data(struct repl_client *c)
{
	struct repl_client_io *io = c->reading;

	c->reading_have += (uint32_t)recvbuf_take(&c->st.rb, (uint8_t *)io->buf + c->reading_have,
						   io->length - c->reading_have);
	if (c->reading_have == io->length) {
		c->reading = NULL;
		io->done(io, 0);
	}
}

static bool reply_fits(const struct repl_client_io *io, const struct repl_rep *rep)
{
	if (io->op != rep->op)
		return false;
	if (rep->status < 0 || io->op == REPL_OP_HELLO)
		return rep->payload_len <= 64;
	if (io->op == REPL_OP_DIRTY)
		return rep->payload_len >= 8 && rep->payload_len % 8 == 0 &&
		       rep->payload_len <= io->cap && rep->payload_len <= RBUF_SIZE - 40;
	return rep->payload_len == expected_payload(io);
}

/* Refused at our own epoch: a newer session of ours holds the volume on
 * that replica, so this connection is useless. Start a new one. */
static int superseded(struct repl_client *c, struct repl_client_io *io,
		      size_t head)
{
	log_warn("replica %s: session %llu of epoch %llu was replaced, "
		 "reconnecting", c->addr, (unsigned long long)c->session,
		 (unsigned long long)c->opts.epoch);
	recvbuf_consume(&c->st.rb, head);
	complete(c, io, -ECONNRESET);
	conn_lost(c, -ECONNRESET);
	return -1;
}

/* Parse one reply (its header, checksums and any small payload) if it is
 * all in rbuf. Returns 1 if consumed, 0 if more bytes are needed, -1 if
 * the connection was dropped. */
static int parse_one(struct repl_client *c)
{
	struct repl_rep rep;
	struct repl_client_io *io;
	size_t avail = recvbuf_avail(&c->st.rb);
	size_t head;

	if (c->reading) {
		take_read_data(c);
		return c->reading ? 0 : 1;
	}
	if (avail < 40)
		return 0;
	if (repl_rep_decode(recvbuf_head(&c->st.rb), &rep) < 0) {
		conn_lost(c, -EPROTO);
		return -1;
	}
	io = waitq_take(c, rep.req_id);
	if (!io || !reply_fits(io, &rep)) {
		if (io)
			complete(c, io, -EPROTO);
		conn_lost(c, -EPROTO);
		return -1;
	}
	/* Everything but READ data must be in rbuf before we go on. */
	head = 40 + (rep.status == 0 && io->op == REPL_OP_READ
			     ? (size_t)io->length / 4096 * 4 : rep.payload_len);
	if (avail < head) {
		/* Put it back: it is parsed again once the rest arrived. */
		io->next = c->waitq_head;
		c->waitq_head = io;
		if (!c->waitq_tail)
			c->waitq_tail = io;
		return 0;
	}
	if (rep.status == -ESTALE && rep.epoch == c->opts.epoch)
		return superseded(c, io, head);
	if (rep.status == -ESTALE)
		log_warn("replica %s: fenced: our epoch %llu, replica has %llu",
			 c->addr, (unsigned long long)c->opts.epoch,
			 (unsigned long long)rep.epoch);
	if (rep.status == 0 && (io->op == REPL_OP_READ || io->op == REPL_OP_CRCS))
		copy_crcs(io, recvbuf_head(&c->st.rb) + 40);
	if (rep.status == 0 && io->op == REPL_OP_DIRTY)
		copy_dirty(io, recvbuf_head(&c->st.rb) + 40, rep.payload_len);
	if (rep.status == 0 && io->op == REPL_OP_LEASE)
		memcpy(io->buf, recvbuf_head(&c->st.rb) + 40, REPL_LEASE_SIZE);
	recvbuf_consume(&c->st.rb, head);
	if (rep.status == 0 && io->op == REPL_OP_READ) {
		c->reading = io;
		c->reading_have = 0;
		take_read_data(c);
	} else {
		finish_io(c, io, rep.status);
	}
	return c->state == ST_UP || c->state == ST_OPENING ? 1 : -1;
}

/* --- stream callbacks --------------------------------------------------------- */

static struct repl_client *client_of(struct stream *s)
{
	return s->owner;
}

static void client_parse(struct stream *s)
{
	struct repl_client *c = client_of(s);

	while (!s->closing && parse_one(c) == 1)
		;
}

/* Large READ data goes straight into the caller's buffer. */
static void *client_payload_target(struct stream *s, size_t *len)
{
	struct repl_client *c = client_of(s);

	if (!c->reading) {
		*len = 0;
		return NULL;
	}
	*len = c->reading->length - c->reading_have;
	return (uint8_t *)c->reading->buf + c->reading_have;
}

static void client_payload_got(struct stream *s, size_t n)
{
	struct repl_client *c = client_of(s);
	struct repl_client_io *io = c->reading;

	c->reading_have += (uint32_t)n;
	if (c->reading_have == io->length) {
		c->reading = NULL;
		io->done(io, 0);
	}
}

static bool client_may_read(struct stream *s)
{
	struct repl_client *c = client_of(s);

	return !c->freeing && (c->state == ST_UP || c->state == ST_OPENING);
}

static int client_lost_err(const struct repl_client *c)
{
	if (c->lost_err)
		return c->lost_err;
	return c->st.err ? c->st.err : -ECONNRESET;
}

/* Sent requests wait for their replies; unsent ones fail. */
static void client_msg_done(struct stream *s, struct sendq_msg *m, bool sent)
{
	struct repl_client *c = client_of(s);

	if (sent)
		q_push(&c->waitq_head, &c->waitq_tail, io_of(m));
	else
		complete(c, io_of(m), client_lost_err(c));
}

/* SSL_set1_host matched the node id ignoring case; node ids are not. */
static void client_tls_done(struct stream *s, bool ok)
{
	struct repl_client *c = client_of(s);

	if (ok && !tls_sess_peer_has_dns(s->tls, c->peer_node)) {
		log_warn("replica %s: its certificate does not name node '%s' "
			 "exactly", c->addr, c->peer_node);
		stream_close(s, -EACCES, "certificate names another node");
	}
}

static void client_closed(struct stream *s)
{
	struct repl_client *c = client_of(s);
	int err = client_lost_err(c);

	if (c->reading) {
		struct repl_client_io *io = c->reading;

		c->reading = NULL;
		complete(c, io, err);
	}
	stream_fini(&c->st);
	c->st_live = false;
	if (c->state == ST_UP || c->state == ST_OPENING)
		conn_lost(c, err);  /* the stream closed itself */
	else if (!ops_armed(c))
		finish_close(c);
}

static const struct stream_ops client_ops = {
	.parse = client_parse,
	.payload_target = client_payload_target,
	.payload_got = client_payload_got,
	.may_read = client_may_read,
	.msg_done = client_msg_done,
	.tls_done = client_tls_done,
	.closed = client_closed,
};

/* --- public ------------------------------------------------------------------- */

static int resolve(struct repl_client *c, const char *addr)
{
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM };
	struct addrinfo *ai;
	char host[256];
	const char *colon = strrchr(addr, ':');
	size_t n;

	if (!colon || (n = (size_t)(colon - addr)) >= sizeof host)
		return -EINVAL;
	memcpy(host, addr, n);
	host[n] = '\0';
	if (getaddrinfo(host, colon + 1, &hints, &ai) != 0)
		return -EINVAL;
	memcpy(&c->sa, ai->ai_addr, ai->ai_addrlen);
	c->salen = ai->ai_addrlen;
	freeaddrinfo(ai);
	return 0;
}

struct repl_client *repl_client_new(struct loop *loop,
				    const struct repl_client_opts *opts)
{
	struct repl_client *c = calloc(1, sizeof *c);

	if (!c)
		goto fail;
	c->loop = loop;
	c->opts = *opts;
	c->fd = -1;
	c->backoff_ms = BACKOFF_MIN_MS;
	snprintf(c->addr, sizeof c->addr, "%s", opts->addr);
	snprintf(c->node_id, sizeof c->node_id, "%s", opts->node_id ? opts->node_id : "");
	snprintf(c->peer_node, sizeof c->peer_node, "%s",
		 opts->peer_node ? opts->peer_node : "");
	snprintf(c->volume_name, sizeof c->volume_name, "%s", opts->volume_name);
	snprintf((char *)c->hello_payload, sizeof c->hello_payload, "%s", c->node_id);
	c->open_payload.size = htole64(opts->volume_size);
	memcpy(c->open_payload.name, c->volume_name, sizeof c->open_payload.name);
	c->opts.addr = c->addr;
	c->opts.node_id = c->node_id;
	c->opts.volume_name = c->volume_name;
	if (!c->opts.io_timeout_ms)
		c->opts.io_timeout_ms = 5000;
	if (!opts->connect_fd && resolve(c, opts->addr) < 0)
		goto fail;
	live_clients++;
	start_connect(c);
	return c;
fail:
	free(c);
	return NULL;
}

bool repl_client_is_up(const struct repl_client *c)
{
	return c->state == ST_UP;
}

void repl_client_set_size(struct repl_client *c, uint64_t size)
{
	if (size > c->opts.volume_size)
		c->opts.volume_size = size;
}

void repl_client_submit(struct repl_client *c, struct repl_client_io *io)
{
	if (c->state != ST_UP || c->freeing) {
		io->next = c->failq;
		c->failq = io;
		queue_task(c);
		return;
	}
	enqueue(c, io);
	if (!c->timer.armed)
		arm_tick(c);
}

void repl_client_free(struct repl_client *c)
{
	if (!c)
		return;
	c->freeing = true;
	c->state = ST_CONNECTING;
	if (c->fd >= 0)
		shutdown(c->fd, SHUT_RDWR);
	if (c->st_live)
		stream_close(&c->st, -ECONNABORTED, NULL);
	fail_waitq(c, -ECONNABORTED);
	/* Freed once every armed op and the timer have come back. */
	if (!ops_armed(c))
		finish_close(c);
}
