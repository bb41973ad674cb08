/*
 * One stream socket on the io_uring loop, for every protocol the daemon
 * speaks (NBD, the replica service, the engine's replica client): at most
 * one recv and one send in flight; bytes arrive in a recvbuf (a large
 * payload straight into its destination), messages leave from a sendq
 * gathered into one sendmsg. The transport is plain or TLS: with TLS the
 * same calls carry ciphertext on the socket and plaintext to the protocol
 * code, so STARTTLS swaps the transport under a protocol that never knows.
 *
 * The protocol supplies stream_ops and calls stream_pump whenever its own
 * state changed (a request completed, flow control may have opened).
 *
 * Closing: stream_close shuts the socket; once no recv or send is in
 * flight, from a loop task, every message never sent goes back through
 * msg_done(sent=false) and then ops->closed runs. The owner frees the
 * stream (stream_fini) only in or after ops->closed.
 */
#ifndef TRIPLEX_STREAM_H
#define TRIPLEX_STREAM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "loop.h"
#include "recvbuf.h"
#include "sendq.h"

struct stream;
struct tls_sess;

struct stream_ops {
	/* Act on what s->rb holds. */
	void (*parse)(struct stream *s);
	/* Where the next bytes belong instead of rb (a payload), with how
	 * many are wanted; NULL for none. May be NULL. */
	void *(*payload_target)(struct stream *s, size_t *len);
	/* n bytes landed at payload_target's pointer. */
	void (*payload_got)(struct stream *s, size_t n);
	/* Whether more bytes may be taken in now (flow control). */
	bool (*may_read)(struct stream *s);
	/* m has gone out (or been encrypted), or is dropped unsent. */
	void (*msg_done)(struct stream *s, struct sendq_msg *m, bool sent);
	/* End of each pump, with I/O armed: where an owner closes an idle
	 * stream. May be NULL. */
	void (*settled)(struct stream *s);
	/* The TLS handshake succeeded (ok) or failed (the stream closes).
	 * May be NULL. */
	void (*tls_done)(struct stream *s, bool ok);
	/* Closed, nothing in flight: see above. */
	void (*closed)(struct stream *s);
};

struct stream {
	struct loop *loop;
	const struct stream_ops *ops;
	void *owner;
	const char *what;            /* names the protocol in the log */
	int fd;
	struct loop_op recv_op, send_op;
	bool recv_armed, send_armed;
	bool closing, closed_queued;
	struct loop_task closed_task;
	int err;                     /* why it closed (-errno), 0 if by us */
	uint64_t send_armed_ms;      /* when the armed send was submitted */
	uint64_t *bytes_in, *bytes_out;  /* socket byte counters, or NULL */
	struct recvbuf rb;
	struct sendq sendq;
	struct tls_sess *tls;        /* NULL: plain */
	uint8_t *gather;             /* TLS: small pieces share a record */
};

/* Take fd (the caller still closes it if this fails). 0 or -ENOMEM. */
int stream_init(struct stream *s, struct loop *loop, int fd, size_t rbuf,
		const struct stream_ops *ops, void *owner, const char *what);
/* Close the fd and free the buffers and any TLS session. */
void stream_fini(struct stream *s);

/* Queue m and start sending; while closing, m is dropped (msg_done with
 * sent false) with the rest once nothing is in flight. */
void stream_send(struct stream *s, struct sendq_msg *m);
/* Parse what is buffered, then arm a send and a recv as allowed. */
void stream_pump(struct stream *s);
/* Stop; err (-errno, or 0) and why are kept for the owner and the log. */
void stream_close(struct stream *s, int err, const char *why);

/* Nothing queued, being encrypted or on its way to the socket. */
bool stream_tx_idle(const struct stream *s);
/* ms the armed send has waited (0: none armed), for reply timeouts. */
uint64_t stream_send_waiting_ms(const struct stream *s, uint64_t now_ms);

/* From now on every byte goes through sess (taken over, freed with the
 * stream; also on failure). Bytes already buffered are its first input,
 * never parsed as plaintext. 0 or -ENOMEM (the stream is closed). */
int stream_start_tls(struct stream *s, struct tls_sess *sess);

#endif
