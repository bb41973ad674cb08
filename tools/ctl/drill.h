/* triplexctl drill (drill.c): the pieces it is made of. */
#ifndef TRIPLEX_CTL_DRILL_H
#define TRIPLEX_CTL_DRILL_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "dev.h"

#define DRILL_BLOCK 4096

/* drill_ledger.c: a writer of 4 KiB blocks at random offsets, each
 * self-describing (block, sequence number, a fill derived from both), and
 * the ledger of what was acknowledged: after the drill every block must
 * hold its last acknowledged write, or a later one that failed (whose
 * outcome the client could not know), never an older one. */
struct ledger {
	pthread_t thread;
	pthread_mutex_t mu;
	const char *meta_url, *vol;
	const struct dev_node *nodes;
	int nnodes;
	uint64_t nblocks;
	uint64_t *acked;      /* per block: last acknowledged seq, 0: none */
	uint64_t *failed;     /* per block: highest failed seq since then */
	/* Under mu: */
	uint64_t seq, n_acked, n_failed;
	double last_ack_s, max_gap_s;
	bool stop, pause, idle;
};

int ledger_start(struct ledger *l, const char *meta_url, const char *vol,
		 uint64_t size, const struct dev_node *nodes, int nnodes);
/* Stop writing until ledger_resume, once no write is in flight (bounded:
 * false if one is still out after secs). */
bool ledger_pause(struct ledger *l, double secs);
void ledger_resume(struct ledger *l);
void ledger_stop(struct ledger *l);
/* Read every block back through the volume's engine: the lost writes
 * (blocks older than their last acknowledged write, or damaged), or -1
 * when the volume cannot be read. Only while paused. */
int64_t ledger_verify(struct ledger *l, char *why, size_t len);
/* Counters and the longest wait for an acknowledgement since the last
 * call (the wait still running included). */
void ledger_sample(struct ledger *l, uint64_t *acked, uint64_t *failed,
		   double *max_gap_s);

/* drill_faults.c */
struct drill;
enum drill_fault {
	FAULT_KILL,         /* kill -9 a replica's node, restart it */
	FAULT_KILL_ENGINE,  /* kill -9 the engine's node: failover */
	FAULT_PARTITION,    /* iptables: cut a replica's node's replication */
	FAULT_LATENCY,      /* its store I/O delayed (POST /admin/fault) */
	FAULT_DISKFULL,     /* its writes fail with ENOSPC (ditto) */
	FAULT_N,
};
const char *drill_fault_name(enum drill_fault f);
int drill_fault_parse(const char *name);
/* Inject f on node target; evidence says what shows it landed. 0 or -1
 * (why in evidence). */
int drill_fault_inject(struct drill *d, enum drill_fault f,
		       const struct dev_node *target, char *evidence, size_t len);
/* Remove it (restart a killed node, heal, clear). 0 or -1. */
int drill_fault_heal(struct drill *d, enum drill_fault f,
		     const struct dev_node *target, char *evidence, size_t len);
/* Remove every iptables rule the drill put in (exit paths). */
void drill_partition_cleanup(void);
/* POST or GET path on a node's HTTP port: the status (0: no answer),
 * the body in out. */
int drill_http(const struct dev_node *n, const char *method, const char *path,
	       char *out, size_t len);

struct drill {
	const char *dir;
	char meta_url[PATH_MAX + 64];
	struct dev_node nodes[DEV_NODES];
	int nnodes;
	char vol[64];
	uint64_t size;
	double hold_s, recover_s, max_s, t0;
	struct ledger ledger;
};

#endif
