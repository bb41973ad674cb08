/*
 * The replica store: one volume's data on local disk, a CRC-32C for every
 * 4 KiB block stored beside it and verified on every read, and an activity
 * log so that a crash leaves no block with a wrong checksum that the store
 * does not know to check. docs/on-disk-format.md describes the files.
 *
 * All offsets and lengths are multiples of STORE_BLOCK (4096); callers
 * (the engine) turn smaller requests into read-modify-write. Callers must
 * not have a read and a write, or two writes, of the same block in flight at
 * once: the engine's range lock orders them (invariants 9 and 10).
 *
 * Buffers given to reads and writes must be 4096-aligned (O_DIRECT) and stay
 * alive until the request's done callback has run.
 */
#ifndef TRIPLEX_STORE_H
#define TRIPLEX_STORE_H

#include <stdbool.h>
#include <stdint.h>

#include "crc32c.h"
#include "loop.h"
#include "store_io.h"

#define STORE_BLOCK TPX_BLOCK_SIZE
#define STORE_MAX_SIZE (1ull << 50)   /* bytes; the superblock's bound */

/* A block whose data does not match its stored checksum. */
#define STORE_ECSUM EBADMSG

enum store_flag {
	STORE_FUA = 1,      /* durable before done (write, zero, trim) */
	STORE_NO_HOLE = 2,  /* zero: allocate zeroes, do not punch */
};

struct store;

struct store_req {
	/* Set by the caller; called once, from the loop, with 0 or -errno. */
	void (*done)(struct store_req *req, int res);
	void *priv;

	/* Private to the store. */
	struct loop_op op[2];      /* [0] data file, [1] crc file */
	struct loop_task task;     /* completion from the loop */
	struct store *store;
	struct store_req *next;    /* activity-log wait list */
	uint64_t off;
	uint64_t len;
	uint64_t progress;         /* data-file bytes done */
	uint64_t crc_progress;     /* crc-file bytes done */
	int crc_res;               /* result of a synchronous crc write */
	uint64_t seq;              /* flush: store seq at start */
	uint64_t al_round;         /* activity-log round waited for */
	void *buf;
	uint32_t *crcs;
	unsigned flags;
	int kind;
	int pending;               /* ops in flight */
	int step;                  /* trim/zero: which fallocate, FUA sync */
	int error;
};

struct store_stats {
	uint64_t csum_errors;   /* reads that found a bad block */
	uint64_t reads, writes, flushes, trims, zeroes;
	uint64_t read_bytes, write_bytes;
	uint64_t al_syncs;      /* activity-log writes that had to wait */
	uint64_t suspect_blocks; /* found by recovery after a crash */
};

/* A run of blocks with the same allocation state. */
struct store_extent {
	uint64_t off;
	uint64_t len;
	bool hole;   /* unallocated: reads as zeroes */
};

/* Create an empty volume of size bytes (a multiple of 4096) in dir, which
 * must not exist yet. Synchronous. Returns 0 or -errno. */
int store_create(const char *dir, uint64_t size);

/* Open the volume in dir, recovering after a crash if the activity log says
 * so (synchronous). I/O then goes through io. Returns 0 or -errno. */
int store_open(const char *dir, struct store_io *io, struct store **out);

/* Close; no requests may be in flight. store_close(NULL) does nothing. */
void store_close(struct store *s);

uint64_t store_size(const struct store *s);
/* The loop the store's I/O completes on. */
struct loop *store_loop(const struct store *s);
const struct store_stats *store_get_stats(const struct store *s);
/* true if O_DIRECT was refused by the filesystem and buffered I/O is used */
bool store_is_buffered(const struct store *s);

/* Read len bytes at off into buf, verifying every block's checksum; a bad
 * block fails the request with -STORE_ECSUM. If crcs is not NULL it receives
 * each block's checksum. */
void store_read(struct store *s, struct store_req *r, uint64_t off,
		uint64_t len, void *buf, uint32_t *crcs);

/* Write len bytes from buf at off. crcs[] holds each block's checksum as
 * computed where the data entered triplex; a block that does not match it
 * fails the request with -STORE_ECSUM and nothing is stored. */
void store_write(struct store *s, struct store_req *r, uint64_t off,
		 uint64_t len, const void *buf, const uint32_t *crcs,
		 unsigned flags);

/* Deallocate: the range reads as zeroes afterwards. */
void store_trim(struct store *s, struct store_req *r, uint64_t off,
		uint64_t len, unsigned flags);

/* Zero the range; punches holes unless STORE_NO_HOLE. */
void store_zero(struct store *s, struct store_req *r, uint64_t off,
		uint64_t len, unsigned flags);

/* Make every write that completed before this call durable. */
void store_flush(struct store *s, struct store_req *r);

/* The regions that the activity log marked dirty when this store was
 * opened after a crash, one extent each (hole false), in order; recovery
 * made them readable, the replication layer reconciles them from other
 * replicas. Sets *regs to an array the store owns; returns the count. */
size_t store_recovered_regions(const struct store *s,
			       const struct store_extent **regs);

/* For crash tests: free the store without any clean-shutdown step (no
 * sync, activity log and clean flag left as they are). Requests may still
 * be in flight; the caller must then discard the loop without running it. */
void store_crash_close(struct store *s);

/* Allocation of [off, off+len) as up to max extents, in order (synchronous,
 * SEEK_DATA/SEEK_HOLE). Returns the number filled, or -errno. */
int store_extents(struct store *s, uint64_t off, uint64_t len,
		  struct store_extent *ext, int max);

/* --- online resize (replica/store_resize.c) --- */

/* Grow the volume to size bytes (a multiple of 4096, at most
 * STORE_MAX_SIZE), durably, before returning (synchronous: the files are
 * extended and synced, then the superblock). The new blocks read as zeroes
 * with valid checksums. No write, trim, zero or flush may be in flight
 * (reads may). Returns 0 (also when size is the current size), -EINVAL for
 * a bad size or one below the current size (a store never shrinks),
 * -EAGAIN while an activity-log round is in flight (try again shortly),
 * -EBUSY if a request is in the store, or -errno; on any error the store
 * keeps its old size. */
int store_grow(struct store *s, uint64_t size);

/* --- fencing and resync (replica/store_fence.c) --- */

/* The highest engine epoch this replica has seen (0 if none). */
uint64_t store_get_epoch(const struct store *s);

/* Record epoch as the highest seen, durably (superblock write + fdatasync,
 * synchronous) before returning. Returns 0 (also if epoch is the current
 * one), -ESTALE if epoch is lower than the current one, or -errno. */
int store_set_epoch(struct store *s, uint64_t epoch);

/* The stored checksum of every block of [off, off+len) into out[len/4096],
 * from memory (no I/O). Returns 0 or -EINVAL (range not aligned or not
 * inside the volume). */
int store_crcs(const struct store *s, uint64_t off, uint64_t len,
	       uint32_t *out);

/* true while the store has background work in flight (a lazy
 * activity-log write): store_close would have to run the loop itself to
 * finish it, so callers inside a loop callback wait for false first. */
bool store_busy(const struct store *s);

/* Offsets of the activity-log regions that may differ from the other
 * replicas: recovered dirty when the store was opened, or holding writes,
 * trims or zeroes not yet covered by a completed flush (or in flight).
 * Fills up to max offsets in order, sets *region_size, and returns how many
 * regions there are in all (more than max: the list was cut short). */
size_t store_dirty_regions(const struct store *s, uint64_t *offs, size_t max,
			   uint64_t *region_size);

#endif
