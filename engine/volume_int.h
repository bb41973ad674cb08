/* The volume's state, shared by the engine's files (volume.c, resync.c). */
#ifndef TRIPLEX_VOLUME_INT_H
#define TRIPLEX_VOLUME_INT_H

#include "volume.h"

struct vol {
	char *name;
	uint64_t size;
	struct loop *loop;
	struct rangelock lock;
	struct vol_stats stats;
	unsigned inflight;
	struct replica *reps[VOL_MAX_REPLICAS];
	unsigned nreps;
	unsigned min_replicas;
	uint64_t write_timeout_ms;
	vol_isr_remove_fn *on_isr_remove;
	vol_isr_remove_fn *on_receiving_lost;
	vol_isr_remove_fn *on_doubt;
	struct store *(*extents_store)(void *arg);
	void *arg;
	struct store *owned_store;   /* vol_new's store, closed by vol_free */
	struct vol_req *waiting;     /* writes waiting for a replica */
	struct replica *retired[2 * VOL_MAX_REPLICAS];  /* replaced, freed last */
	unsigned nretired;
	bool fenced;                 /* another engine took over: refuse I/O */
	struct loop_timer wait_timer;
};

#endif
