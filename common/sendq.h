/*
 * The send side of a stream socket: a queue of messages, each up to
 * SENDQ_PIECES buffers, gathered into one sendmsg; a partial send resumes
 * in the middle of a message. The owner arms the send with q->msg after
 * sendq_prepare, reports what went out with sendq_advance, then takes the
 * messages wholly sent with sendq_pop_sent.
 */
#ifndef TRIPLEX_SENDQ_H
#define TRIPLEX_SENDQ_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>
#include <sys/uio.h>

#define SENDQ_PIECES 3
#define SENDQ_MAX_IOV 96

/* Embedded in the owner's request; pieces of length 0 are skipped. */
struct sendq_msg {
	struct sendq_msg *next;
	const void *base[SENDQ_PIECES];
	size_t len[SENDQ_PIECES];
};

struct sendq {
	struct sendq_msg *head, *tail;
	size_t head_sent;        /* bytes of head already sent */
	struct iovec iov[SENDQ_MAX_IOV];
	struct msghdr msg;
};

/* Set m's pieces (unused ones: NULL, 0). */
void sendq_msg_set(struct sendq_msg *m, const void *p0, size_t l0,
		   const void *p1, size_t l1, const void *p2, size_t l2);
void sendq_push(struct sendq *q, struct sendq_msg *m);
static inline bool sendq_empty(const struct sendq *q) { return !q->head; }
/* Point q->msg at the queued bytes not sent yet (as many messages as
 * SENDQ_MAX_IOV pieces hold). false if there are none. */
bool sendq_prepare(struct sendq *q);
/* n bytes of the prepared sendmsg went out. */
void sendq_advance(struct sendq *q, size_t n);
/* The first message if it has been wholly sent, dequeued; else NULL. */
struct sendq_msg *sendq_pop_sent(struct sendq *q);
/* Dequeue the first message whether sent or not (dropping a queue). */
struct sendq_msg *sendq_pop(struct sendq *q);

#endif
