/*
 * The engine's handle on one replica of a volume: the local store (same
 * process, direct calls) or a remote one (repl_client). Both take the same
 * block-aligned requests and complete them from the loop.
 */
#ifndef TRIPLEX_REPLICA_H
#define TRIPLEX_REPLICA_H

#include <stdbool.h>
#include <stdint.h>

#include "repl_client.h"
#include "store.h"

enum rep_op { REP_READ, REP_WRITE, REP_TRIM, REP_ZERO, REP_FLUSH, REP_CRCS,
	      REP_DIRTY };

enum rep_flag {
	REP_FUA = 1,
	REP_NO_HOLE = 2,
};

struct replica;

/* One request to one replica. */
struct rep_io {
	void (*done)(struct rep_io *io, int res);
	void *priv;
	struct replica *rep;
	enum rep_op op;
	unsigned flags;
	uint64_t off, len;
	void *buf;          /* READ: receives; WRITE: sends; DIRTY: u64
			       region size, then region offsets */
	uint32_t *crcs;     /* READ: receives; WRITE: sends */
	uint32_t cap, got;  /* DIRTY: bytes buf can take, bytes received */
	bool verified;      /* READ: checked by a store in this process */
	union {
		struct store_req sreq;
		struct repl_client_io cio;
	} u;
	struct loop_task task;  /* fails a request to an unreachable replica */
};

struct replica {
	char node[64];
	bool local;
	bool near;          /* on this node (through the service): read first */
	bool up;            /* reachable: local always, remote when connected */
	bool in_sync;       /* member of the volume's in-sync set */
	bool receiving;     /* not in sync, but sent every write (resync) */
	bool leaving;       /* its VOL_REC_LEAVE is being recorded */
	const char *leave_why;
	unsigned records;   /* its changes being recorded */
	bool doubt;         /* in sync, but may lack a write that failed and
			       that other replicas applied: not read from
			       while another replica can be, and compared
			       with one before the doubt is lifted */
	struct store *store;            /* local */
	struct repl_client *client;     /* remote; NULL if its node is unknown */
	struct loop *loop;
	/* The engine's own replica: reads go straight to the store that the
	 * replica service holds, as long as its epoch is still ours. */
	struct store *read_store;
	uint64_t epoch;
	uint64_t errors;
};

/* A replica that is this process's store (not owned: the caller closes it). */
struct replica *replica_local_new(const char *node, struct store *st);

/* A replica reached through a client (owned: freed with the replica). With
 * c NULL (no address known) every request fails with -ENOTCONN. */
struct replica *replica_remote_new(const char *node, struct repl_client *c,
				   struct loop *loop);

void replica_free(struct replica *r);

/* Start io on its replica; io->done runs from the loop. */
void replica_submit(struct replica *r, struct rep_io *io);

#endif
