/*
 * The stream core (see stream.h). Plain: recv lands in rb or a payload,
 * sendmsg gathers the sendq. TLS: recv fills the session's ciphertext
 * buffer and pump decrypts into the same targets; queued messages are
 * encrypted (and done with) up to a backlog, and the send carries only
 * ciphertext.
 */
#include "stream.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "log.h"
#include "tls.h"

/* Ciphertext not yet sent before we stop encrypting (flow control, as the
 * socket's own buffer is without TLS); small pieces gathered into one
 * record. */
#define TLS_BACKLOG_MAX (256u * 1024)
#define TLS_GATHER (16u * 1024)

static struct stream *stream_of(struct loop_op *op, size_t field)
{
	return (struct stream *)((char *)op - field);
}

int stream_init(struct stream *s, struct loop *loop, int fd, size_t rbuf,
		const struct stream_ops *ops, void *owner, const char *what)
{
	int one = 1;

	memset(s, 0, sizeof *s);
	if (recvbuf_init(&s->rb, rbuf) < 0)
		return -ENOMEM;
	/* Replies must not wait for Nagle; fails harmlessly on Unix sockets. */
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	s->loop = loop;
	s->ops = ops;
	s->owner = owner;
	s->what = what;
	s->fd = fd;
	return 0;
}

void stream_fini(struct stream *s)
{
	if (s->fd >= 0)
		close(s->fd);
	s->fd = -1;
	recvbuf_fini(&s->rb);
	tls_sess_free(s->tls);
	s->tls = NULL;
	free(s->gather);
	s->gather = NULL;
}

/* --- closing --------------------------------------------------------------- */

static void closed_task(struct loop_task *t)
{
	struct stream *s = (struct stream *)((char *)t -
					     offsetof(struct stream, closed_task));
	struct sendq_msg *m;

	while ((m = sendq_pop(&s->sendq)))
		s->ops->msg_done(s, m, false);
	s->ops->closed(s);
}

/* Closing and nothing in flight: the owner hears of it from the loop, so
 * that no caller's frame still points into the stream. */
static void check_closed(struct stream *s)
{
	if (!s->closing || s->recv_armed || s->send_armed || s->closed_queued)
		return;
	s->closed_queued = true;
	s->closed_task.fn = closed_task;
	loop_defer(s->loop, &s->closed_task);
}

void stream_close(struct stream *s, int err, const char *why)
{
	if (!s->closing) {
		if (why)
			log_debug("%s connection %d closed: %s", s->what, s->fd, why);
		s->err = err;
		s->closing = true;
		/* Wakes any pending recv/send with an error or EOF. */
		shutdown(s->fd, SHUT_RDWR);
	}
	check_closed(s);
}

bool stream_tx_idle(const struct stream *s)
{
	return !s->send_armed && sendq_empty(&s->sendq) &&
	       (!s->tls || tls_sess_out_backlog(s->tls) == 0);
}

uint64_t stream_send_waiting_ms(const struct stream *s, uint64_t now_ms)
{
	return s->send_armed ? now_ms - s->send_armed_ms : 0;
}

/* --- TLS ---------------------------------------------------------------------- */

static void tls_step(struct stream *s)
{
	int r = tls_sess_handshake(s->tls);

	if (r < 0) {
		log_info("%s: connection %d: TLS %s", s->what, s->fd,
			 tls_sess_error(s->tls));
		if (s->ops->tls_done)
			s->ops->tls_done(s, false);
		stream_close(s, -EPROTO, "TLS handshake failed");
	} else if (r == 1) {
		log_debug("%s: connection %d: TLS up, peer '%s'", s->what, s->fd,
			  tls_sess_peer(s->tls));
		if (s->ops->tls_done)
			s->ops->tls_done(s, true);
	}
}

int stream_start_tls(struct stream *s, struct tls_sess *sess)
{
	s->tls = sess;
	s->gather = malloc(TLS_GATHER);
	if (!sess || !s->gather ||
	    tls_sess_feed(sess, recvbuf_head(&s->rb), recvbuf_avail(&s->rb)) < 0) {
		stream_close(s, -ENOMEM, "out of memory for TLS");
		return -ENOMEM;
	}
	recvbuf_reset(&s->rb);
	tls_step(s);
	return 0;
}

/* Encrypt one piece; small ones wait in the gather buffer to share a
 * record with their neighbours. */
static int tls_put(struct stream *s, size_t *gathered, const void *p, size_t n)
{
	if (*gathered + n <= TLS_GATHER) {
		memcpy(s->gather + *gathered, p, n);
		*gathered += n;
		return 0;
	}
	if (*gathered && tls_sess_write(s->tls, s->gather, *gathered) < 0)
		return -1;
	*gathered = 0;
	if (n < TLS_GATHER)
		return tls_put(s, gathered, p, n);
	return tls_sess_write(s->tls, p, n);
}

/* Queued messages into ciphertext, up to one backlog; a message is done
 * with once encrypted. 1 if some were, 0 if none queued, -1 failed. */
static int tls_encrypt_queued(struct stream *s)
{
	size_t put = 0, gathered = 0;
	struct sendq_msg *m;

	if (!sendq_prepare(&s->sendq))
		return 0;
	for (size_t i = 0; i < s->sendq.msg.msg_iovlen && put < TLS_BACKLOG_MAX; i++) {
		const struct iovec *v = &s->sendq.msg.msg_iov[i];
		size_t n = v->iov_len;

		if (n > TLS_BACKLOG_MAX - put)
			n = TLS_BACKLOG_MAX - put;
		if (tls_put(s, &gathered, v->iov_base, n) < 0)
			return -1;
		put += n;
	}
	if (gathered && tls_sess_write(s->tls, s->gather, gathered) < 0)
		return -1;
	sendq_advance(&s->sendq, put);
	while ((m = sendq_pop_sent(&s->sendq)))
		s->ops->msg_done(s, m, true);
	return 1;
}

static int tls_encrypt(struct stream *s)
{
	int r = 1;

	while (r > 0 && tls_sess_out_backlog(s->tls) < TLS_BACKLOG_MAX)
		r = tls_encrypt_queued(s);
	return r < 0 ? -1 : 0;
}

/* --- sending ------------------------------------------------------------------- */

static void on_send(struct loop_op *op, int res, uint32_t flags);

static void send_armed(struct stream *s)
{
	s->send_armed = true;
	/* Each completion re-arms: a send armed long ago made no progress. */
	s->send_armed_ms = loop_now_ms();
}

static void tls_arm_send(struct stream *s)
{
	struct io_uring_sqe *sqe;
	const void *p;
	size_t len;

	if (tls_sess_ready(s->tls) && tls_encrypt(s) < 0) {
		log_info("%s: connection %d: %s", s->what, s->fd,
			 tls_sess_error(s->tls));
		stream_close(s, -EPROTO, "TLS write failed");
		return;
	}
	len = tls_sess_out(s->tls, &p);
	if (len == 0)
		return;
	s->send_op.cb = on_send;
	sqe = loop_get_sqe(s->loop, &s->send_op);
	io_uring_prep_send(sqe, s->fd, p, len, MSG_NOSIGNAL);
	send_armed(s);
}

static void arm_send(struct stream *s)
{
	struct io_uring_sqe *sqe;

	if (s->send_armed || s->closing)
		return;
	if (s->tls) {
		tls_arm_send(s);
		return;
	}
	if (!sendq_prepare(&s->sendq))
		return;
	s->send_op.cb = on_send;
	sqe = loop_get_sqe(s->loop, &s->send_op);
	io_uring_prep_sendmsg(sqe, s->fd, &s->sendq.msg, MSG_NOSIGNAL);
	send_armed(s);
}

static void on_send(struct loop_op *op, int res, uint32_t flags)
{
	struct stream *s = stream_of(op, offsetof(struct stream, send_op));
	size_t done = res > 0 ? (size_t)res : 0;
	struct sendq_msg *m;

	(void)flags;
	s->send_armed = false;
	if (res < 0 && res != -EINTR && res != -EAGAIN)
		stream_close(s, res, "send failed");
	if (s->bytes_out)
		*s->bytes_out += done;
	if (s->tls) {
		tls_sess_out_done(s->tls, done);
	} else {
		sendq_advance(&s->sendq, done);
		while ((m = sendq_pop_sent(&s->sendq)))
			s->ops->msg_done(s, m, true);
	}
	stream_pump(s);
}

void stream_send(struct stream *s, struct sendq_msg *m)
{
	sendq_push(&s->sendq, m);
	arm_send(s);
}

/* --- receiving ------------------------------------------------------------------ */

/* Where the next plaintext goes: the owner's payload, or rb. NULL if rb
 * is full (flow control prevents that: the stream is closed). */
static void *plain_target(struct stream *s, size_t *len)
{
	size_t want = 0;
	void *p = s->ops->payload_target ? s->ops->payload_target(s, &want) : NULL;
	void *dst = recvbuf_target(&s->rb, p, want, len);

	if (*len == 0) {
		stream_close(s, -ENOBUFS, "receive buffer full");
		return NULL;
	}
	return dst;
}

/* n plaintext bytes arrived where plain_target said. */
static void deliver(struct stream *s, size_t n)
{
	recvbuf_filled(&s->rb, n);
	if (s->rb.direct)
		s->ops->payload_got(s, n);
}

/* Decrypt what TLS holds into the plaintext target; true if some came. */
static bool tls_decrypt(struct stream *s)
{
	void *dst;
	size_t len;
	ssize_t n;

	if (!s->tls || !tls_sess_ready(s->tls) || s->closing || !s->ops->may_read(s))
		return false;
	dst = plain_target(s, &len);
	if (!dst)
		return false;
	n = tls_sess_read(s->tls, dst, len);
	if (n < 0) {
		if (n != -ECONNRESET)
			log_info("%s: connection %d: TLS %s", s->what, s->fd,
				 tls_sess_error(s->tls));
		stream_close(s, n == -ECONNRESET ? -ECONNRESET : -EPROTO,
			     n == -ECONNRESET ? "peer closed TLS" : "TLS read failed");
		return false;
	}
	if (n > 0)
		deliver(s, (size_t)n);
	return n > 0;
}

static void on_recv(struct loop_op *op, int res, uint32_t flags);

static void arm_recv(struct stream *s)
{
	struct io_uring_sqe *sqe;
	void *dst;
	size_t len;

	if (s->recv_armed || s->closing || !s->ops->may_read(s))
		return;
	/* With TLS, ciphertext; pump decrypted all it could first. */
	dst = s->tls ? tls_sess_in_buf(s->tls, &len) : plain_target(s, &len);
	if (!dst)
		return;
	s->recv_op.cb = on_recv;
	sqe = loop_get_sqe(s->loop, &s->recv_op);
	io_uring_prep_recv(sqe, s->fd, dst, len, 0);
	s->recv_armed = true;
}

static void on_recv(struct loop_op *op, int res, uint32_t flags)
{
	struct stream *s = stream_of(op, offsetof(struct stream, recv_op));

	(void)flags;
	s->recv_armed = false;
	if (res == -EINTR || res == -EAGAIN) {
		stream_pump(s);
		return;
	}
	if (res <= 0 || s->closing) {
		stream_close(s, res == 0 ? -ECONNRESET : res,
			     res == 0 ? "peer closed" : "recv failed");
		return;
	}
	if (s->bytes_in)
		*s->bytes_in += (uint64_t)res;
	if (!s->tls) {
		deliver(s, (size_t)res);
	} else if (tls_sess_in_done(s->tls, (size_t)res) < 0) {
		stream_close(s, -ENOMEM, "out of memory for TLS");
		return;
	} else if (!tls_sess_ready(s->tls)) {
		tls_step(s);
	}
	stream_pump(s);
}

void stream_pump(struct stream *s)
{
	do {
		if (s->closing)
			break;
		s->ops->parse(s);
	} while (tls_decrypt(s));
	if (s->closing) {
		check_closed(s);
		return;
	}
	arm_send(s);
	arm_recv(s);
	if (!s->closing && s->ops->settled)
		s->ops->settled(s);
}
