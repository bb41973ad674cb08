/*
 * Scrub: read every block of every in-sync replica (each replica verifies
 * its data against its stored checksum), compare the checksums across
 * replicas, and rewrite every copy that is bad or disagrees with the
 * majority from a good one. Chunk by chunk under the range lock, so client
 * writes are never overwritten with older data.
 */
#ifndef TRIPLEX_SCRUB_H
#define TRIPLEX_SCRUB_H

#include <stdbool.h>
#include <stdint.h>

#include "volume.h"

#define SCRUB_MAX_FINDINGS 32

/* A run of blocks one replica had wrong, and what was done about it. */
struct scrub_finding {
	unsigned replica;             /* index in the volume */
	uint64_t block;               /* first 4 KiB block of the run */
	uint64_t blocks;
	bool bad;                     /* failed its checksum; else it
					 disagreed with the majority */
	int source;                   /* replica rewritten from, -1: none */
};

struct scrub_report {
	uint64_t bytes_scrubbed;
	uint64_t blocks_checked;      /* blocks x replicas */
	uint64_t bad_blocks;          /* a replica's data failed its checksum */
	uint64_t mismatched_blocks;   /* replicas disagreed on a good block */
	uint64_t repaired_blocks;     /* copies rewritten */
	uint64_t unrepaired_blocks;   /* no good copy, or the rewrite failed */
	struct scrub_finding findings[SCRUB_MAX_FINDINGS];
	unsigned nfindings;
	uint64_t findings_dropped;    /* runs past SCRUB_MAX_FINDINGS */
};

typedef void scrub_done_fn(int res, const struct scrub_report *rep, void *arg);

struct scrub;

/* Start scrubbing the whole volume; done runs once from the loop, and
 * the handle in *out is gone once it has. Returns 0 or -errno. */
int scrub_start(struct vol *v, uint64_t rate_bps, scrub_done_fn *done,
		void *arg, struct scrub **out);

/* Bytes of the volume scrubbed so far (of vol_size), for progress. */
uint64_t scrub_bytes_done(const struct scrub *sc);

#endif
