/*
 * A FIFO range lock over block numbers. Reads take ranges shared, writes,
 * zeroes, trims and read-modify-writes take them exclusive. An entry is
 * granted when no earlier entry (granted or waiting) overlaps it in a
 * conflicting mode, so overlapping writes are applied in arrival order
 * (invariant 9) and nothing older overwrites something newer (invariant 10).
 */
#ifndef TRIPLEX_RANGELOCK_H
#define TRIPLEX_RANGELOCK_H

#include <stdbool.h>
#include <stdint.h>

struct rl_entry {
	struct rl_entry *prev, *next;
	uint64_t lo, hi;    /* [lo, hi) in blocks */
	bool excl;
	bool granted;
	/* Called when a waiting entry is granted (from rl_release); it may
	 * release e at once. */
	void (*grant)(struct rl_entry *e);
	struct rl_entry *ready_next;  /* rl_release's list of entries to call */
};

struct rangelock {
	struct rl_entry *head, *tail;
	unsigned count;
};

/* Queue e for [lo, hi). Returns true if granted now (grant is not called);
 * otherwise e->grant runs later, when the conflicts are released. */
bool rl_acquire(struct rangelock *rl, struct rl_entry *e, uint64_t lo,
		uint64_t hi, bool excl);

/* Drop a granted entry and grant the waiters it was blocking. */
void rl_release(struct rangelock *rl, struct rl_entry *e);

#endif
