/*
 * The engine's view of one volume: it takes client requests of any size and
 * alignment, orders them with a range lock, turns partial blocks into
 * read-modify-write of whole checksummed blocks, computes each block's
 * CRC-32C where the data enters, and drives the volume's replicas.
 *
 * Writes go to every replica of the in-sync set and are acknowledged only
 * when every one of them has the data (invariant 1). A replica that fails a
 * write leaves the in-sync set through the on_isr_remove hook, which must
 * record it durably before returning (invariant 2); the set never shrinks
 * below min_replicas: then the write waits for the replica to come back and
 * fails with EIO after write_timeout_ms. A write that every replica refused
 * as invalid and none executed fails at once with their answer, and nobody
 * leaves; a replica that refuses what others executed leaves like any
 * failing one. Reads go to one in-sync replica
 * (the local one first); a bad block is read from another, answered with
 * good data, and rewritten on the bad replica before the range lock is let
 * go (invariants 6 and 10).
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
#include "replica.h"
#include "store.h"

#define VOL_MAX_REPLICAS 5

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
	struct rl_entry lock;
	struct loop_task task;
	struct vol_req *wait_next;  /* on the volume's list of waiting writes */
	enum vol_op op;
	int step;
	int err;                /* set by a step's `after` to fail the request */
	uint64_t off, len;      /* the client's range, bytes */
	uint64_t aoff, aend;    /* block-aligned span */
	unsigned flags;
	uint8_t *buf;
	uint8_t *edge;          /* 4 KiB scratch for partial blocks */
	uint32_t *crcs;
	uint32_t crcs_cap;
	uint64_t deadline_ms;   /* a waiting write fails with EIO after it */

	/* The current step's I/O: one sub-request per replica. */
	struct rep_io sub[VOL_MAX_REPLICAS];
	unsigned pending;       /* sub-requests in flight */
	uint32_t need;          /* replicas (bits) that still must succeed */
	uint32_t asked;         /* the in-sync replicas the step went to */
	uint32_t ok;            /* replicas that executed the step */
	uint32_t refused;       /* replicas whose last answer refused it */
	int refusal;            /* the first refusal, -errno */
	uint32_t tried;         /* reads: replicas tried */
	uint32_t bad;           /* reads: replicas that returned bad data */
	int read_from;          /* reads: the replica being read */
	struct rep_io repair;   /* reads: rewrite of a bad copy */
};

struct vol_stats {
	uint64_t reads, writes, flushes, zeroes, trims;
	uint64_t read_bytes, write_bytes;
	uint64_t rmw;            /* partial-block writes */
	uint64_t csum_errors;    /* bad blocks seen by the engine */
	uint64_t repairs;        /* bad copies rewritten from a good one */
	uint64_t io_errors;
	uint64_t isr_removals;   /* replicas dropped from the in-sync set */
	uint64_t write_waits;    /* writes that waited for a replica */
};

/* Called when a replica failed a write and must leave the in-sync set.
 * Returns 0 once that is durable in the metadata store, or -errno (the
 * write then fails: it cannot be acknowledged without the replica). */
typedef int vol_isr_remove_fn(struct vol *v, struct replica *r, void *arg);

struct vol_config {
	const char *name;
	uint64_t size;
	unsigned min_replicas;      /* default 1 for a single replica */
	uint64_t write_timeout_ms;  /* default 30 s */
	vol_isr_remove_fn *on_isr_remove;
	/* Called (return value ignored) when a replica being resynced failed a
	 * write: its resync must start over. May be NULL. */
	vol_isr_remove_fn *on_receiving_lost;
	/* Called when a write failed for good without reaching an in-sync
	 * replica (while others may have applied it): record the replica's
	 * doubt durably (the return value is logged, the doubt kept in memory
	 * anyway). May be NULL. */
	vol_isr_remove_fn *on_doubt;
	/* A store to answer BLOCK_STATUS from when no replica is local
	 * (read-only use); NULL or returning NULL: all data. */
	struct store *(*extents_store)(void *arg);
	void *arg;
};

/* A volume over the given replicas (taken over; freed by vol_free). */
struct vol *vol_new_replicated(const struct vol_config *cfg, struct loop *loop,
			       struct replica **reps, unsigned nreps);

/* A volume served from one local store (taken over; closed by vol_free). */
struct vol *vol_new(const char *name, struct store *store, struct loop *loop);
void vol_free(struct vol *v);

const char *vol_name(const struct vol *v);
uint64_t vol_size(const struct vol *v);
/* The local store, or NULL if no replica is local. */
struct store *vol_store(struct vol *v);
const struct vol_stats *vol_get_stats(const struct vol *v);
unsigned vol_nreplicas(const struct vol *v);
struct replica *vol_replica(struct vol *v, unsigned i);
unsigned vol_in_sync_count(const struct vol *v);
/* The replica reads go to, skipping the replicas (bits) in skip: in sync
 * and connected, one without doubt first, this node's first; -1 if none. */
int vol_pick_reader(const struct vol *v, uint32_t skip);
/* Requests started and not yet done. */
unsigned vol_inflight(const struct vol *v);

/* Put a new replica at index i (the placement moved it to another node).
 * The old one may still have requests in flight: it is kept until
 * vol_free. Returns 0, or -ENOSPC when too many were replaced already. */
int vol_replace_replica(struct vol *v, unsigned i, struct replica *r);

/* Another engine owns the volume now: every new request fails with
 * -ESTALE (requests in flight are refused by the replicas' epochs). */
void vol_fence(struct vol *v);

/* A replica's connection came back: writes waiting for it are retried. */
void vol_replica_up(struct vol *v, struct replica *r);

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
 * or -errno. Answered from the local store; -ENOTSUP without one. */
int vol_extents(struct vol *v, uint64_t off, uint64_t len,
		struct store_extent *ext, int max);

#endif
