/*
 * Bringing a replica back in sync while the volume serves I/O (invariant 7).
 *
 * The job walks the volume in RESYNC_CHUNK chunks, several at a time. For each it takes the
 * range lock exclusively (client writes to that chunk wait, nothing older
 * can overwrite anything newer), asks the source and the target for their
 * stored CRC-32C of every block, and copies only the blocks that differ,
 * verified on the way. A returning replica thus moves only what changed
 * while it was away; a new, empty replica gets every block that is not
 * zero. From the start of the job the target also receives every client
 * write (replica->receiving), so chunks already copied stay current. Copies
 * are paced to rate_bps so that client latency stays bounded.
 *
 * After the copy and a FLUSH of the target, a second pass compares the
 * stored checksums of both replicas again over every chunk the job
 * covered (shared range lock: no client write is half done on one of
 * them). The job succeeds only if every block agrees: a write that reached
 * the target behind the job's back (a stale one from an old connection)
 * fails it, and the replica is not declared in sync.
 */
#ifndef TRIPLEX_RESYNC_H
#define TRIPLEX_RESYNC_H

#include <stdbool.h>
#include <stdint.h>

#include "volume.h"

/* The unit of comparison and copy. Small enough that a paced resync's
 * I/O does not queue a client's 4 KiB write behind megabytes. */
#define RESYNC_CHUNK (256u << 10)

struct resync;

struct resync_stats {
	uint64_t bytes_compared;   /* ranges whose checksums were compared */
	uint64_t bytes_copied;     /* data moved to the target */
	uint64_t pos;              /* next offset to process */
	uint64_t bytes_verified;   /* compared again after the copy */
	uint64_t blocks_differing; /* found different by that second pass */
};

struct resync_opts {
	unsigned target;           /* replica index in the volume */
	uint64_t from;             /* resume point (a checkpoint), bytes */
	uint64_t rate_bps;         /* copy bandwidth cap, 0: none */
	/* Every RESYNC_CHECKPOINT_EVERY bytes: persist pos (may be NULL). */
	void (*on_progress)(struct resync *job, uint64_t pos, void *arg);
	/* Once: 0 when the target holds every block of the source, has
	 * flushed it, and the second pass found every checksum equal; -EIO
	 * if it did not (stats.blocks_differing), -errno otherwise. The job
	 * is freed after it returns. */
	void (*on_done)(struct resync *job, int res, void *arg);
	void *arg;
	/* Reconcile mode: only these ranges (sorted offsets, each range_len
	 * bytes), and the target may be in sync. NULL: the whole volume. */
	const uint64_t *ranges;
	size_t nranges;
	uint64_t range_len;
};

#define RESYNC_CHECKPOINT_EVERY (64u << 20)

/* Start a job; NULL if out of memory or no in-sync source is connected. */
struct resync *resync_start(struct vol *v, const struct resync_opts *opts);

/* Stop at the next step; on_done then runs with -ECANCELED. */
void resync_cancel(struct resync *job);

const struct resync_stats *resync_get_stats(const struct resync *job);

#endif
