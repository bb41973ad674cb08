/*
 * The node agent's state, shared by its files: agent.c (the node: start,
 * stop, registration, the once-a-second poll of the metadata store) and
 * agent_volume.c (one volume attached here: its engine, export, resync,
 * scrub, and the changes it records).
 *
 * Everything here lives on the loop thread. The metadata store is reached
 * only through cm->q (metaq.h): a job copies what it needs, runs on the
 * worker, and its done callback applies the answer here.
 */
#ifndef TRIPLEX_AGENT_INT_H
#define TRIPLEX_AGENT_INT_H

#include <stdbool.h>

#include "agent.h"
#include "cluster.h"
#include "metaq.h"
#include "resync.h"
#include "scrub.h"
#include "volume.h"

#define AGENT_EXPORT_WAIT_TICKS 5

struct served;

/* What a replica's connection callback needs to find its replica. */
struct rep_ctx {
	struct served *s;
	unsigned idx;
	bool opened_once;
};

/* One volume attached here: its engine and its record. A served volume is
 * never freed before the agent (jobs and connections may point at it). */
/* What agent_progress.c last published of a volume's long jobs. */
struct agent_progress {
	const struct resync *job[CLUSTER_MAX_REPLICAS];  /* as first seen */
	uint64_t t0_ms[CLUSTER_MAX_REPLICAS], pos0[CLUSTER_MAX_REPLICAS];
	uint64_t last[CLUSTER_MAX_REPLICAS], moved_ms[CLUSTER_MAX_REPLICAS];
	const struct scrub *scrub;
	uint64_t scrub_t0_ms, scrub_last, scrub_moved_ms;
	bool published;          /* a record is out: delete it once all end */
	unsigned deletes_left;   /* the delete again, in case it was lost */
	unsigned ticks;
};

struct served {
	struct served *next;
	struct agent *cm;
	struct cluster_volume rec;
	struct vol *vol;         /* NULL while starting */
	bool starting;           /* waiting for cluster_volume_start_serving */
	bool exported;
	bool reconciling, reconciled;
	struct scrub *scrub;     /* the scrub running, or NULL */
	bool fenced;             /* another node or epoch owns it now */
	unsigned waited_ticks;
	struct rep_ctx ctx[CLUSTER_MAX_REPLICAS];
	struct resync *jobs[CLUSTER_MAX_REPLICAS];
	bool joining[CLUSTER_MAX_REPLICAS];  /* its JOIN or COMPARED is out */
	/* Online resize (agent_resize.c). */
	bool resizing;           /* vol_resize is running */
	bool shrink_warned;      /* said once that the record shrank */
	unsigned resize_retry_tick;  /* no new attempt before this tick */
	uint64_t resize_from;    /* bytes before this resize */
	uint64_t resize_t0_ms;
	struct agent_progress progress;
};

/* A volume whose engine's node is missing from the store (failover). */
struct agent_orphan {
	char vol[CLUSTER_NAME_MAX];
	char node[CLUSTER_NAME_MAX];
	unsigned polls;          /* consecutive polls it has been missing */
};

/* No takeover this soon after our own (re)registration: a store outage
 * expires every lease at once, and the others are registering too. */
#define AGENT_LEASE_TTL_S 5
/* The engines' read lease from each replica (docs/architecture.md): how
 * long an engine cut off from its replicas may still answer, and how long
 * a new engine may have to wait after fencing one that was alive. */
#define AGENT_READ_LEASE_MS 2000
#define AGENT_HOLDOFF_TICKS(cm) (2 * (unsigned)(cm)->opts.lease_ttl_s)
/* How long a replica waits for an epoch raise to show in the store before
 * it refuses it (agent_epochs.c). */
#define AGENT_EPOCH_WAIT_MS 3000

/* A volume's epoch as the store recorded it (agent_epochs.c). */
struct agent_epoch {
	uint64_t id;
	uint64_t epoch;
	char attached[CLUSTER_NAME_MAX];  /* the node holding that epoch */
};

struct agent {
	struct loop *loop;
	struct store_io *io;
	struct agent_opts opts;
	char replicas_dir[CLUSTER_PATH_MAX + 16];
	struct metaq *q;
	struct cluster_node node;
	int64_t lease;
	bool registering;
	bool refused;            /* the last registration found our id taken */
	bool keepalive_out;      /* a keepalive job is out */
	unsigned registered_tick; /* ticks at our last (re)registration */
	struct agent_orphan *orphans;
	size_t norphans;
	bool taking_over;        /* a takeover job is out */
	int64_t conflict_rev;    /* the last refused claimant reported */
	struct repl_service *svc;
	struct loop_timer tick;
	unsigned ticks;
	bool stopping;
	bool polling;            /* a poll job is out */
	bool poll_again;         /* a change was seen while it was */
	bool poll_again_ticked;
	/* agent_watch.c: a change in the store wakes the loop at once. */
	struct agent_watch *watch;
	int watch_efd;
	struct loop_op watch_op;
	uint64_t watch_buf;
	struct served *served;
	/* The live nodes as of the last poll: where replicas are reached. */
	struct cluster_node *nodes;
	size_t nnodes;
	/* Every volume's epoch as of the last poll (agent_epochs.c). */
	struct agent_epoch *epochs;
	size_t nepochs;
	uint64_t epoch_poll_ms;   /* the last poll an unknown epoch asked for */
	/* The metadata store as the poll and the lease see it (metrics). */
	bool poll_ok, lease_ok;   /* the last poll, lease job succeeded */
	uint64_t meta_errors;     /* poll and lease jobs that failed */
	uint64_t meta_ok_ms;      /* loop_now_ms of the last success */
	uint64_t lease_ok_ms;     /* of the last registration or keepalive */
	unsigned puts_out;        /* agent_put jobs not done yet */
	/* agent_heartbeat.c: the stores' checksum errors, when they grew. */
	uint64_t hb_csum;
	double hb_csum_time;
};

/* agent_volume.c: put val under key (NULL: delete it), on the metadata
 * worker; with_lease: the node's lease, so that it goes with the node.
 * What is only for show skips a turn while AGENT_PUTS_BUSY are out: a
 * store that does not answer must not pile them up. */
#define AGENT_PUTS_BUSY 8
void agent_put(struct agent *cm, const char *key, const char *val,
	       bool with_lease);

/* agent_heartbeat.c: once a poll; puts the node's heartbeat every few. */
void agent_heartbeat_tick(struct agent *cm);

/* agent_progress.c: once a poll, publish the progress of s's rebuilds
 * and scrub under CLUSTER_PROGRESS_PREFIX; agent_progress_clear when s
 * stops being served here. */
void agent_progress_tick(struct served *s);
void agent_progress_clear(struct served *s);
/* Replica's resync (or, at -1, the scrub) has ended: a new job, even at
 * the same address, is a new one. */
void agent_progress_job_ended(struct served *s, int replica);

/* agent.c: poll the store now (a change was seen), outside the once a
 * second rhythm that the failover and export rules count. */
void agent_poll_now(struct agent *cm);

/* agent_epochs.c */
int agent_holder_check(void *arg, uint64_t volume_id, uint64_t epoch,
		       const char *node);
void agent_epochs_update(struct agent *cm, const struct cluster_volume *vols,
			 size_t n);
int agent_epoch_check(void *arg, uint64_t volume_id, uint64_t epoch);
void agent_epochs_free(struct agent *cm);

/* agent_watch.c */
int agent_watch_start(struct agent *cm, const char *url);
void agent_watch_arm(struct agent *cm);
/* agent_stop: the thread ends by itself; agent_free: close our fd. */
void agent_watch_stop(struct agent *cm);
void agent_watch_close(struct agent *cm);

/* agent_volume.c */
/* Start serving rec here (a start_serving job, then the engine). */
void agent_serve(struct agent *cm, const struct cluster_volume *rec);
/* Once a poll: export when ready, resync what needs it, answer a scrub
 * request (scrub: the value of /triplex/scrub/NAME, NULL if none). */
void agent_volume_tick(struct served *s, const char *scrub);
/* The volume was attached elsewhere, deleted, or we are shutting down. */
void agent_fence(struct served *s, const char *why);
/* `volume replace` moved a replica: connect to the new one. */
void agent_refresh_placement(struct served *s, const struct cluster_volume *rec);

/* agent_resize.c */
/* Once a poll: grow the engine, then the export, to the record's size if
 * it is larger (rec: the record the poll read). */
void agent_resize(struct served *s, const struct cluster_volume *rec);

/* agent_failover.c */
/* Once a poll: take over the volumes whose engine's node is gone and whose
 * heir is this node. */
void agent_failover(struct agent *cm, const struct cluster_volume *vols,
		    size_t n);

/* agent_identity.c */
/* This data directory's instance id for node_id (DIR/node.json, made on
 * first use). -EEXIST if the directory belongs to another node id,
 * -EBADMSG if the file is damaged; err says which and what to do. */
int agent_identity(const char *dir, const char *node_id, char *instance,
		   size_t ilen, char *err, size_t errlen);

/* agent.c */
/* The last poll's record of node id, NULL if it is not registered. */
const struct cluster_node *agent_node(const struct agent *cm, const char *id);
/* Run a metadata job (it frees itself in done). */
void agent_submit(struct agent *cm, struct metaq_job *job);
/* Unlink and free s: only while it has no engine and no job. */
void agent_forget(struct served *s);

#endif
