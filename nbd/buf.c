/* Growable output buffer for handshake replies. */
#include "buf.h"

#include <endian.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* Make room for n more bytes; 0 or -ENOMEM. */
static int outbuf_reserve(struct nbd_outbuf *b, size_t n)
{
	size_t need, cap;
	uint8_t *p;

	if (n > SIZE_MAX - b->len)
		return -ENOMEM;
	need = b->len + n;
	if (need <= b->cap)
		return 0;
	cap = b->cap ? b->cap : 256;
	while (cap < need)
		cap = cap > SIZE_MAX / 2 ? need : cap * 2;
	p = realloc(b->data, cap);
	if (!p)
		return -ENOMEM;
	b->data = p;
	b->cap = cap;
	return 0;
}

int nbd_outbuf_append(struct nbd_outbuf *b, const void *p, size_t n)
{
	int ret;

	if (n == 0)
		return 0;
	ret = outbuf_reserve(b, n);
	if (ret < 0)
		return ret;
	memcpy(b->data + b->len, p, n);
	b->len += n;
	return 0;
}

int nbd_outbuf_be16(struct nbd_outbuf *b, uint16_t v)
{
	uint16_t be = htobe16(v);

	return nbd_outbuf_append(b, &be, sizeof be);
}

int nbd_outbuf_be32(struct nbd_outbuf *b, uint32_t v)
{
	uint32_t be = htobe32(v);

	return nbd_outbuf_append(b, &be, sizeof be);
}

int nbd_outbuf_be64(struct nbd_outbuf *b, uint64_t v)
{
	uint64_t be = htobe64(v);

	return nbd_outbuf_append(b, &be, sizeof be);
}

void nbd_outbuf_consume(struct nbd_outbuf *b, size_t n)
{
	if (n >= b->len) {
		b->len = 0;
		return;
	}
	memmove(b->data, b->data + n, b->len - n);
	b->len -= n;
}

void nbd_outbuf_free(struct nbd_outbuf *b)
{
	if (!b)
		return;
	free(b->data);
	b->data = NULL;
	b->len = 0;
	b->cap = 0;
}
