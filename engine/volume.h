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
 *
 * This header is all the NBD server and the node agent see of the engine:
 * it includes no replica header, and the replicas are addressed by index
 * (the replica structure itself is private to engine/).
 */
#ifndef TRIPLEX_VOLUME_H
#define TRIPLEX_VOLUME_H

#include <stdbool.h>
#include <stdint.h>

#include "loop.h"

#define VOL_MAX_REPLICAS 5

enum vol_op { VOL_READ, VOL_WRITE, VOL_ZERO, VOL_TRIM, VOL_FLUSH };

enum vol_flag {
	VOL_FUA = 1,
	VOL_NO_HOLE = 2,
};

struct vol;
struct vol_req_state;
struct store;         /* a replica store of this process (replica/store.h) */
struct repl_client;   /* a connection to a replica (repl_client.h) */

struct vol_req {
	/* Set by the caller; runs once from the loop with 0 or -errno. */
	void (*done)(struct vol_req *r, int res);
	void *priv;

	/* The engine's: its state for the request, allocated on first use
	 * and kept for reuse until vol_req_fini. */
	struct vol_req_state *s;
	struct loop_task task;
};

/* Request latency buckets, upper bounds in microseconds (the last one is
 * everything slower): from submit to done, waits included. */
#define VOL_LAT_BUCKETS 11
extern const uint64_t vol_lat_bounds_us[VOL_LAT_BUCKETS - 1];

struct vol_stats {
	uint64_t reads, writes, flushes, zeroes, trims;
	uint64_t lat_buckets[VOL_LAT_BUCKETS];  /* not cumulative */
	uint64_t lat_sum_us;
	uint64_t read_bytes, write_bytes;
	uint64_t rmw;            /* partial-block writes */
	uint64_t csum_errors;    /* bad blocks seen by the engine */
	uint64_t repairs;        /* bad copies rewritten from a good one */
	uint64_t io_errors;
	uint64_t isr_removals;   /* replicas dropped from the in-sync set */
	uint64_t write_waits;    /* writes that waited for a replica */
};

/* One run of blocks, allocated or a hole (BLOCK_STATUS). */
struct vol_extent {
	uint64_t off, len;
	bool hole;
};

/* A replica of a volume being built (vol_new_replicated) or moved
 * (vol_replace_replica). */
struct vol_replica_spec {
	const char *node;             /* its node id, for logs and the agent */
	struct store *store;          /* a store of this process (not owned) */
	struct repl_client *client;   /* or a connection (owned); neither: its
					 node's address is unknown */
	bool near;                    /* on this node, behind the service */
	bool in_sync;                 /* member of the in-sync set */
	bool receiving;               /* being resynced from a checkpoint */
	bool doubt;                   /* in sync, may lack a failed write */
};

/* What the agent may know of a replica. */
struct vol_replica_info {
	const char *node;
	bool in_sync, up, receiving, doubt, near;
};

/* Changes the metadata store must hold before the engine goes on. */
enum vol_record {
	VOL_REC_LEAVE,       /* replica i leaves the in-sync set (invariant 2:
				no write is acknowledged without it before) */
	VOL_REC_LOST,        /* replica i, being resynced, missed a write: its
				checkpoint goes (before that write's reply) */
	VOL_REC_DOUBT,       /* replica i, in sync, may lack a failed write */
};

/* Start recording what about replica i and return; the answer comes with
 * vol_recorded, exactly once, on the loop (it may come from inside this
 * call). The metadata store is never called on the loop: writes that need
 * a change park until it is recorded, and fail with EIO after the write
 * timeout if it never is. */
typedef void vol_record_fn(struct vol *v, unsigned i, enum vol_record what,
			   void *arg);

struct vol_config {
	const char *name;
	uint64_t size;
	unsigned min_replicas;      /* default 1 for a single replica */
	uint64_t write_timeout_ms;  /* default 30 s */
	vol_record_fn *record;      /* NULL: nothing to record (one host, tests) */
	/* A store to answer BLOCK_STATUS from when no replica is local
	 * (read-only use); NULL or returning NULL: all data. */
	struct store *(*extents_store)(void *arg);
	void *arg;
	/* Serve only while a majority of the replicas' clients hold a read
	 * lease (their opts.lease_ms set): cluster mode, where another engine
	 * may take the volume over (docs/architecture.md, read leases). */
	bool read_leases;
};

/* The answer to a vol_record_fn call (res 0 or -errno). A LEAVE that
 * failed leaves the replica in the set: the writes that needed it go on
 * waiting, retry, and fail at their timeout. */
void vol_recorded(struct vol *v, unsigned i, enum vol_record what, int res);

/* A volume over nreps replicas (their clients taken over). */
struct vol *vol_new_replicated(const struct vol_config *cfg, struct loop *loop,
			       const struct vol_replica_spec *reps, unsigned nreps);

/* A volume served from one local store (taken over; closed by vol_free). */
struct vol *vol_new(const char *name, struct store *store, struct loop *loop);
void vol_free(struct vol *v);

const char *vol_name(const struct vol *v);
uint64_t vol_size(const struct vol *v);
/* The local store, or NULL if no replica is local. */
struct store *vol_store(struct vol *v);
const struct vol_stats *vol_get_stats(const struct vol *v);
unsigned vol_nreplicas(const struct vol *v);
/* Writes wait (then fail) while fewer replicas than this are in sync. */
unsigned vol_min_replicas(const struct vol *v);
unsigned vol_in_sync_count(const struct vol *v);
/* Requests started and not yet done. */
unsigned vol_inflight(const struct vol *v);

/* --- the agent's handle on the replicas ------------------------------ */

void vol_replica_info(const struct vol *v, unsigned i,
		      struct vol_replica_info *out);
/* Is c the connection of replica i (not one replaced since)? */
bool vol_replica_has_client(const struct vol *v, unsigned i,
			    const struct repl_client *c);
/* The replica's connection came up (writes waiting for it are retried)
 * or went down. */
void vol_replica_set_up(struct vol *v, unsigned i, bool up);
/* The near replica's store in this process: reads go to it directly as
 * long as its epoch is epoch (the same rule the replica service applies);
 * NULL: no longer. */
void vol_replica_set_direct(struct vol *v, unsigned i, struct store *st,
			    uint64_t epoch);
/* The one rule for leaving the in-sync set (invariants 1 and 2): only
 * while more than min_replicas stay, and only once the metadata store has
 * recorded it (VOL_REC_LEAVE). 0 (it left, or was not in it),
 * -EINPROGRESS (being recorded), -EBUSY (it would leave fewer than
 * min_replicas; it stays). why is a static string for the log. */
int vol_isr_leave(struct vol *v, unsigned i, const char *why);
/* A resync brought replica i level and the agent recorded it in sync:
 * it joins, unless it missed a write since (then it stays out; the
 * VOL_REC_LOST of that write, recorded after, says so in the store). */
void vol_isr_join(struct vol *v, unsigned i);
/* Replica i in doubt was compared and brought level (recorded). */
void vol_doubt_clear(struct vol *v, unsigned i);
/* The replica reads go to, skipping the replicas (bits) in skip: in sync
 * and connected, one without doubt first, this node's first; -1 if none. */
int vol_pick_reader(const struct vol *v, uint32_t skip);

/* Put a new replica at index i (the placement moved it to another node);
 * it starts out of the in-sync set. The old one stops reconnecting and is
 * kept until vol_free for requests that still point at it. Returns 0,
 * -EAGAIN while a change of the old one is being recorded (try again
 * later), -ENOSPC when too many were replaced already, -ENOMEM. The spec's
 * client is taken over whatever the result. */
int vol_replace_replica(struct vol *v, unsigned i,
			const struct vol_replica_spec *spec);

/* Another engine owns the volume now: every new request fails with
 * -ESTALE (requests in flight are refused by the replicas' epochs), and
 * the replicas' connections are closed. */
void vol_fence(struct vol *v);

/* With vol_config.read_leases: does a majority of the replicas grant this
 * engine a read lease at now (loop_now_ms)? Requests wait until it does
 * (EIO after the write timeout). Always true without. */
bool vol_leased(struct vol *v, uint64_t now);

/* --- online resize (engine/resize.c) ---------------------------------- */

/* A resize's answer: res 0 (vol_size is the new size now) or -errno (the
 * size did not change). */
typedef void vol_resize_fn(struct vol *v, int res, void *arg);

/* Grow the volume to size bytes: every connected replica grows first
 * (RESIZE), every other one when it next connects (its OPEN carries the
 * size), then vol_size. Requests in flight meanwhile go on. Returns 0 and
 * done runs exactly once, from the loop, maybe from inside this call; or
 * -EINVAL (size below the current one, not a multiple of 4096, over
 * 2^50), -EALREADY (the current size), -EBUSY (a resize is running),
 * -ESTALE (fenced), -EOPNOTSUPP (a volume of vol_new), -ENOMEM, and done
 * never runs. */
int vol_resize(struct vol *v, uint64_t size, vol_resize_fn *done, void *arg);

/* --- requests ---------------------------------------------------------- */

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
 * or -errno. Answered from the local store; all data without one. */
int vol_extents(struct vol *v, uint64_t off, uint64_t len,
		struct vol_extent *ext, int max);

#endif
