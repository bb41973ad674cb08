/*
 * The engine's view of one volume: it takes client requests of any size and
 * alignment, orders them with a range lock, turns partial blocks into
 * read-modify-write of whole checksummed blocks, computes each block's
 * CRC-32C where the data enters, and drives the replica store.
 *
 * Buffers: a request's buffer spans the block-aligned range around it
 * (vol_span); the client's bytes sit at buf + (off % 4096). The buffer
 * must be 4096-aligned and live until done runs.
 */
#ifndef TRIPLEX_VOLUME_H
#define TRIPLEX_VOLUME_H

#include <stdbool.h>
#include <stdint.h>

#include "rangelock.h"
#include "store.h"

enum vol_op { VOL_READ, VOL_WRITE, VOL_ZERO, VOL_TRIM, VOL_FLUSH };

enum vol_flag {
	VOL_FUA = 1,
	VOL_NO_HOLE = 2,
};

struct vol;

struct vol_req {
	/* Set by the caller; runs once from the loop with 0 or -errno. */
	void (*done)(struct vol_req *r, int res);
	void *priv;

	/* Private to the engine; kept across reuse of the request. */
	struct vol *vol;
	struct store_req sreq;
	struct rl_entry lock;
	struct loop_task task;
	enum vol_op op;
	int err;                /* set by a step's `after` to fail the request */
	int step;
	uint64_t off, len;      /* the client's range, bytes */
	uint64_t aoff, aend;    /* block-aligned span */
	unsigned flags;
	uint8_t *buf;
	uint8_t *edge;          /* 4 KiB scratch for partial blocks */
	uint32_t *crcs;
	uint32_t crcs_cap;
};

struct vol_stats {
	uint64_t reads, writes, flushes, zeroes, trims;
	uint64_t read_bytes, write_bytes;
	uint64_t rmw;            /* partial-block writes */
	uint64_t csum_errors;    /* bad blocks seen by the engine */
	uint64_t io_errors;
};

/* A volume served from a local store (taken over; freed by vol_free). */
struct vol *vol_new(const char *name, struct store *store, struct loop *loop);
void vol_free(struct vol *v);

const char *vol_name(const struct vol *v);
uint64_t vol_size(const struct vol *v);
struct store *vol_store(struct vol *v);
const struct vol_stats *vol_get_stats(const struct vol *v);
/* Requests started and not yet done. */
unsigned vol_inflight(const struct vol *v);

/* Bytes of buffer a request for [off, off+len) needs. */
uint64_t vol_span(uint64_t off, uint64_t len);

/* Start a request. For VOL_READ, data lands at buf + off % 4096. For
 * VOL_WRITE, the caller put it there. ZERO, TRIM and FLUSH take no buffer.
 * The range must lie inside the volume (the caller checked). */
void vol_submit(struct vol *v, struct vol_req *r, enum vol_op op,
		uint64_t off, uint64_t len, uint8_t *buf, unsigned flags);

/* Free what the engine attached to a request (vol_req_fini(NULL) is ok). */
void vol_req_fini(struct vol_req *r);

/* Allocation of [off, off+len): fills up to max extents, returns the count
 * or -errno. */
int vol_extents(struct vol *v, uint64_t off, uint64_t len,
		struct store_extent *ext, int max);

#endif
