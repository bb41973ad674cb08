/*
 * The receive side of a stream socket: bytes arrive into a buffer that the
 * parser consumes from the front, except that a large payload piece with
 * nothing buffered before it is received straight into its destination
 * (one copy less for big WRITE and READ data).
 */
#ifndef TRIPLEX_RECVBUF_H
#define TRIPLEX_RECVBUF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define RECVBUF_DIRECT_MIN (64u * 1024)

struct recvbuf {
	uint8_t *data;
	size_t pos, len, cap;    /* unparsed bytes: data[pos, len) */
	bool direct;             /* the armed recv targets the caller's buffer */
};

int recvbuf_init(struct recvbuf *b, size_t cap);
void recvbuf_fini(struct recvbuf *b);
/* Make the buffer hold cap bytes, keeping what it holds (no recv may be
 * armed into it: it may move). 0 or -ENOMEM (then it is unchanged). */
int recvbuf_grow(struct recvbuf *b, size_t cap);
static inline size_t recvbuf_avail(const struct recvbuf *b) { return b->len - b->pos; }
static inline const uint8_t *recvbuf_head(const struct recvbuf *b) { return b->data + b->pos; }
static inline void recvbuf_consume(struct recvbuf *b, size_t n) { b->pos += n; }
static inline void recvbuf_reset(struct recvbuf *b) { b->pos = b->len = 0; }

/* Where the next recv goes: `want` itself if nothing is buffered and
 * want_len >= RECVBUF_DIRECT_MIN (b->direct set), else the buffer's free
 * tail, compacted first (*len 0: full). want may be NULL. */
void *recvbuf_target(struct recvbuf *b, void *want, size_t want_len, size_t *len);
/* n bytes arrived; into the buffer unless the recv was direct. */
static inline void recvbuf_filled(struct recvbuf *b, size_t n)
{
	if (!b->direct)
		b->len += n;
}
/* Copy up to n buffered bytes to dst; returns how many. */
size_t recvbuf_take(struct recvbuf *b, void *dst, size_t n);

#endif
