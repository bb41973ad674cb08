/* The volume's state and a request's, shared by the engine's files
 * (volume.c, resync.c, reconcile.c, scrub.c). Private to engine/. */
#ifndef TRIPLEX_VOLUME_INT_H
#define TRIPLEX_VOLUME_INT_H

#include "rangelock.h"
#include "replica.h"
#include "volume.h"

/* A request in the engine (what struct vol_req points at). */
struct vol_req_state {
	struct vol_req *pub;
	struct vol *vol;
	uint64_t t0_us;                   /* submitted (latency histogram) */
	struct rl_entry lock;
	struct loop_task task;
	struct vol_req_state *wait_next;  /* on the volume's waiting writes */
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
	uint64_t lease_deadline_ms;  /* waiting for a read lease: EIO after */

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
	vol_record_fn *record;
	unsigned records;            /* LEAVE and LOST being recorded: writes
					park until none is left */
	struct loop_task wake;       /* rechecks waiting writes after one */
	bool wake_queued;
	struct store *(*extents_store)(void *arg);
	void *arg;
	struct store *owned_store;   /* vol_new's store, closed by vol_free */
	struct vol_req_state *waiting;  /* writes waiting for a replica */
	struct replica *retired[2 * VOL_MAX_REPLICAS];  /* replaced, freed last */
	unsigned nretired;
	bool fenced;                 /* another engine took over: refuse I/O */
	struct resize_job *resize;   /* a vol_resize in progress (resize.c) */
	struct loop_timer wait_timer;
	bool read_leases;            /* vol_config.read_leases */
	bool lease_lost_logged;
	/* Requests waiting for a lease, oldest first; tail NULL: empty. */
	struct vol_req_state *lease_waiting;
	struct vol_req_state **lease_waiting_tail;
	struct loop_timer lease_timer;        /* armed while any wait */
};

struct resize_job;

/* vol_free: a resize still in flight completes without calling back. */
void vol_resize_forget(struct vol *v);

/* Replica i (engine and tests only). */
struct replica *vol_replica(struct vol *v, unsigned i);

#endif
