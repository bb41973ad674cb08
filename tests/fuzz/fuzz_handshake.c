/*
 * libFuzzer harness for the handshake: arbitrary client bytes, fed in
 * pieces whose sizes come from the input, through a buffer of
 * NBD_HS_RECV_BUF bytes as the server has. Checks: no crash, never more
 * consumed than given, the buffer always suffices, output bounded, the
 * final state consistent, and feeding in pieces gives exactly the same
 * bytes and state as feeding everything at once.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "handshake.h"
#include "proto.h"

/* Largest reply to one option: LIST of 3 exports with 4096-byte names
 * and descriptions, or INFO with every item. */
#define MAX_REPLY_PER_OPTION (32 * 1024)

static char long_name[NBD_HS_MAX_STRING + 100];

static struct nbd_export fz_exports[] = {
	{ .name = "disk", .description = "fuzz disk", .size = 1ull << 30,
	  .tflags = NBD_FLAG_SEND_FLUSH | NBD_FLAG_SEND_FUA |
		    NBD_FLAG_SEND_WRITE_ZEROES | NBD_FLAG_SEND_FAST_ZERO,
	  .min_block = 1, .pref_block = 4096, .max_block = 32u << 20 },
	{ .name = "ro", .size = 1u << 20,
	  .tflags = NBD_FLAG_READ_ONLY | NBD_FLAG_SEND_FAST_ZERO |
		    NBD_FLAG_SEND_DF,
	  .min_block = 512, .pref_block = 4096, .max_block = 1u << 20 },
	/* Name and description over the string cap: must be clamped. */
	{ .name = long_name, .description = long_name, .size = 0 },
};
#define N_EXPORTS (sizeof fz_exports / sizeof fz_exports[0])

static const struct nbd_export *fz_find(void *ctx, const char *name)
{
	if (!*name)
		return &fz_exports[0];
	for (size_t i = 0; i < N_EXPORTS; i++)
		if (strcmp(fz_exports[i].name, name) == 0)
			return &fz_exports[i];
	/* Any name starting with 'a' finds the long one, so GO on it is
	 * reachable with a short name. */
	return name[0] == 'a' ? &fz_exports[2] : NULL;
}

static const struct nbd_export *fz_at(void *ctx, size_t i)
{
	return i < N_EXPORTS ? &fz_exports[i] : NULL;
}

static const struct nbd_exports fz_table = { fz_find, fz_at, NULL };

struct run {
	struct nbd_hs hs;
	struct nbd_outbuf out;   /* what the handshake appends */
	struct nbd_outbuf sent;  /* everything "sent" so far */
	uint8_t pend[NBD_HS_RECV_BUF];
	size_t plen;
	size_t consumed;
};

static void run_init(struct run *r)
{
	memset(r, 0, sizeof *r);
	nbd_hs_init(&r->hs, &fz_table, &r->out);
}

static void run_free(struct run *r)
{
	nbd_outbuf_free(&r->out);
	nbd_outbuf_free(&r->sent);
}

static bool finished(const struct run *r)
{
	return r->hs.state == NBD_HS_DONE || r->hs.state == NBD_HS_CLOSED;
}

/* Append up to n bytes that fit, feed, send the output. Returns how many
 * of the n bytes were taken into the buffer. */
static size_t run_feed(struct run *r, const uint8_t *p, size_t n)
{
	size_t room = sizeof r->pend - r->plen;
	ssize_t used;

	if (n > room)
		n = room;
	memcpy(r->pend + r->plen, p, n);
	r->plen += n;
	used = nbd_hs_feed(&r->hs, r->pend, r->plen);
	if (used < 0 || (size_t)used > r->plen)
		abort();
	/* A full buffer that cannot be parsed breaks the RECV_BUF
	 * contract: the server could never make progress. */
	if (used == 0 && r->plen == sizeof r->pend && !finished(r))
		abort();
	if (r->out.len > ((size_t)used / 16 + 1) * MAX_REPLY_PER_OPTION)
		abort();
	memmove(r->pend, r->pend + used, r->plen - (size_t)used);
	r->plen -= (size_t)used;
	r->consumed += (size_t)used;
	if (nbd_outbuf_append(&r->sent, r->out.data, r->out.len) < 0)
		abort();
	nbd_outbuf_consume(&r->out, r->out.len);
	return n;
}

static void check_final(const struct run *r)
{
	const struct nbd_hs *hs = &r->hs;

	if (hs->state == NBD_HS_DONE) {
		if (!hs->export || !(hs->tflags & NBD_FLAG_HAS_FLAGS))
			abort();
		if (!hs->structured && (hs->tflags & NBD_FLAG_SEND_DF))
			abort();
		if ((hs->tflags & NBD_FLAG_SEND_FAST_ZERO) &&
		    !(hs->tflags & NBD_FLAG_SEND_WRITE_ZEROES))
			abort();
		if (hs->meta_base_allocation &&
		    (!hs->structured || hs->meta_export != hs->export))
			abort();
	}
	if (hs->state == NBD_HS_CLOSED && !hs->close_reason)
		abort();
	if (hs->options_seen > NBD_HS_MAX_OPTIONS + 1)
		abort();
	if (r->sent.len > 18 + (NBD_HS_MAX_OPTIONS + 1) *
				       (size_t)MAX_REPLY_PER_OPTION)
		abort();
}

/* Feed everything, piece sizes from a small PRNG seeded by the input. */
static void run_pieces(struct run *r, const uint8_t *data, size_t size,
		       uint32_t seed)
{
	size_t off = 0, piece;

	while (off < size && !finished(r)) {
		seed = seed * 1103515245u + 12345u;
		piece = (seed >> 16) % 4 == 0 ? (seed >> 8) % 20000 + 1
					      : (seed >> 16) % 32 + 1;
		if (piece > size - off)
			piece = size - off;
		off += run_feed(r, data + off, piece);
	}
}

static void run_whole(struct run *r, const uint8_t *data, size_t size)
{
	size_t off = 0;

	while (off < size && !finished(r))
		off += run_feed(r, data + off, size - off);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct run a, b;
	uint32_t seed = 1;

	if (!long_name[0])
		memset(long_name, 'a', sizeof long_name - 1);
	if (size >= 2) {
		seed = (uint32_t)data[0] << 8 | data[1];
		data += 2;
		size -= 2;
	}
	run_init(&a);
	run_init(&b);
	run_pieces(&a, data, size, seed);
	run_whole(&b, data, size);
	check_final(&a);
	check_final(&b);
	/* Piecewise and whole feeding must be indistinguishable. */
	if (a.hs.state != b.hs.state || a.consumed != b.consumed ||
	    a.sent.len != b.sent.len ||
	    (a.sent.len && memcmp(a.sent.data, b.sent.data, a.sent.len)) ||
	    a.hs.export != b.hs.export || a.hs.tflags != b.hs.tflags ||
	    a.hs.meta_base_allocation != b.hs.meta_base_allocation)
		abort();
	/* Once finished, nothing more is consumed. */
	if (finished(&a) && a.plen &&
	    nbd_hs_feed(&a.hs, a.pend, a.plen) != 0)
		abort();
	run_free(&a);
	run_free(&b);
	return 0;
}
