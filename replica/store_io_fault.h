/*
 * A store_io in front of another that can, for a while, delay every
 * store I/O by a fixed time or fail every write with an error (ENOSPC:
 * a full disk): the faults `triplexctl drill` injects through triplexd's
 * POST /admin/fault (only with --fault-injection). Without a fault set it
 * passes each call straight through.
 */
#ifndef TRIPLEX_STORE_IO_FAULT_H
#define TRIPLEX_STORE_IO_FAULT_H

#include <stdint.h>

#include "store_io.h"

struct fault_call;

struct store_io_fault {
	struct store_io io;        /* what the stores are given */
	struct store_io *inner;
	struct fault_call *waiting;  /* delayed calls, not yet passed on */
	uint64_t delay_ms;         /* each call waits this long first */
	int err;                   /* writes, syncs, fallocates fail: -err */
	uint64_t until_ms;         /* loop_now_ms when the fault ends */
	uint64_t delayed, failed;  /* calls so far, for metrics */
};

void store_io_fault_init(struct store_io_fault *f, struct store_io *inner);

#define STORE_IO_FAULT_MAX_DELAY_MS 2000  /* well inside a drain's grace */

/* From now for duration_ms: delay every call by delay_ms (0: none; at
 * most STORE_IO_FAULT_MAX_DELAY_MS) and fail every write with -err (0:
 * none). duration_ms 0 clears the fault. Either way, calls already
 * waiting on an earlier delay go on at the next turn of the loop (a
 * shutdown clears the fault, so that no call outlives its store). */
void store_io_fault_set(struct store_io_fault *f, uint64_t delay_ms, int err,
			uint64_t duration_ms);

/* The fault now in force: false when none. */
bool store_io_fault_active(const struct store_io_fault *f);

#endif
