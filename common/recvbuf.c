/* A stream socket's receive buffer: see recvbuf.h. */
#include "recvbuf.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

int recvbuf_init(struct recvbuf *b, size_t cap)
{
	b->data = malloc(cap);
	b->pos = b->len = 0;
	b->cap = b->data ? cap : 0;
	b->direct = false;
	return b->data ? 0 : -ENOMEM;
}

int recvbuf_grow(struct recvbuf *b, size_t cap)
{
	uint8_t *p;

	if (cap <= b->cap)
		return 0;
	if (!(p = realloc(b->data, cap)))
		return -ENOMEM;
	b->data = p;
	b->cap = cap;
	return 0;
}

void recvbuf_fini(struct recvbuf *b)
{
	free(b->data);
	b->data = NULL;
	b->cap = 0;
}

void *recvbuf_target(struct recvbuf *b, void *want, size_t want_len, size_t *len)
{
	b->direct = want && want_len >= RECVBUF_DIRECT_MIN && b->pos == b->len;
	if (b->direct) {
		*len = want_len;
		return want;
	}
	if (b->pos > 0) {
		memmove(b->data, b->data + b->pos, b->len - b->pos);
		b->len -= b->pos;
		b->pos = 0;
	}
	*len = b->cap - b->len;
	return b->data + b->len;
}

size_t recvbuf_take(struct recvbuf *b, void *dst, size_t n)
{
	size_t avail = b->len - b->pos;

	if (n > avail)
		n = avail;
	memcpy(dst, b->data + b->pos, n);
	b->pos += n;
	return n;
}
