/*
 * The activity log (AL): one bit per region of the volume in the `al` file.
 * A set bit means "writes to this region may be in flight or unflushed";
 * recovery checks only those regions after a crash.
 *
 * In memory every region is CLEAN, MARKING (bit set, AL write not yet
 * durable) or DIRTY (bit durable). AL writes are serialized: one round
 * (write the changed pages, then fdatasync if any bit was set) at a time,
 * so a lazy clearing write can never land after a later setting write.
 */
#ifndef TRIPLEX_AL_H
#define TRIPLEX_AL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "loop.h"
#include "store_io.h"

struct store_req;

enum al_state { AL_CLEAN, AL_MARKING, AL_DIRTY };

struct al_region {
	uint64_t touch;     /* store seq of the last completed write here */
	uint64_t round;     /* AL round that carries the bit (MARKING) */
	uint32_t inflight;  /* requests between al_begin and al_end */
	uint8_t state;      /* enum al_state */
};

enum al_phase { AL_IDLE, AL_SCHEDULED, AL_WRITING, AL_SYNCING };

struct al {
	struct store_io *io;
	int fd;
	uint32_t nregions;
	unsigned region_shift;
	size_t len;               /* bytes of the al file we use */
	uint8_t *image;           /* the bitmap as it should be on disk */
	uint8_t *wbuf;            /* copy being written by the current round */
	struct al_region *reg;
	size_t dirty_lo, dirty_hi; /* pages of image changed since written */
	bool any_dirty_page;
	bool sync_next;           /* next round sets a bit: needs fdatasync */
	enum al_phase phase;
	uint64_t next_round;      /* number the next round will get */
	uint64_t cur_round;
	bool cur_sync;
	size_t cur_lo, cur_hi;    /* pages of the round in flight */
	uint64_t progress;
	struct store_req *waiters, **waiters_tail;
	struct loop_task task;
	struct loop_op op;
	uint64_t *syncs;          /* stats counter */
	/* Resume a request that waited for its regions; res 0 or -errno. */
	void (*ready)(struct store_req *r, int res);
};

/* Load the on-disk bitmap (synchronous). Returns 0 or -errno. */
int al_init(struct al *al, struct store_io *io, int fd, uint64_t size,
	    unsigned region_shift);
void al_fini(struct al *al);

/* Room for a volume grown to size bytes, the new regions clean (memory
 * only: the caller extends the file). Only while !al_busy and nothing is
 * in the log (!al_in_use). Returns 0 or -ENOMEM (nothing changed). */
int al_grow(struct al *al, uint64_t size);

/* Whether a request is between al_begin and al_end, or waiting. */
bool al_in_use(const struct al *al);

/* Bytes of the al file for a volume of size bytes. */
size_t al_file_len(uint64_t size, unsigned region_shift);

/* Regions [first, last] become in use by r. Returns 0 if their bits are
 * already durable; 1 if r was queued and al->ready(r, res) runs later. */
int al_begin(struct al *al, struct store_req *r, uint32_t first,
	     uint32_t last);

/* r, which al_begin admitted, is done with [first, last] at store seq. */
void al_end(struct al *al, uint32_t first, uint32_t last, uint64_t seq);

/* A flush that started at store seq flush_seq is durable: clear lazily
 * every region no write touched since and none is using. */
void al_flushed(struct al *al, uint64_t flush_seq);

/* Whether a region's bit was set in the loaded bitmap. */
bool al_test(const struct al *al, uint32_t region);

/* Write an all-zero bitmap and fdatasync it, bypassing io (synchronous;
 * nothing may be in flight). Returns 0 or -errno. */
int al_clear_sync(struct al *al);

/* Whether a region may hold changes not yet covered by a flush: its bit
 * is set in memory (MARKING or DIRTY) or a request is using it. */
bool al_region_active(const struct al *al, uint32_t region);

/* true while an AL round is scheduled or in flight. */
bool al_busy(const struct al *al);

#endif
