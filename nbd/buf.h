/* A growable byte buffer for bytes to send (handshake replies). */
#ifndef TRIPLEX_NBD_BUF_H
#define TRIPLEX_NBD_BUF_H

#include <stddef.h>
#include <stdint.h>

struct nbd_outbuf {
	uint8_t *data;
	size_t len;
	size_t cap;
};

/* Append n bytes; returns 0 or -ENOMEM. */
int nbd_outbuf_append(struct nbd_outbuf *b, const void *p, size_t n);
int nbd_outbuf_be16(struct nbd_outbuf *b, uint16_t v);
int nbd_outbuf_be32(struct nbd_outbuf *b, uint32_t v);
int nbd_outbuf_be64(struct nbd_outbuf *b, uint64_t v);
/* Drop the first n bytes (they were sent). */
void nbd_outbuf_consume(struct nbd_outbuf *b, size_t n);
void nbd_outbuf_free(struct nbd_outbuf *b);

#endif
