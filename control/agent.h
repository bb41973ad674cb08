/*
 * The node agent: triplexd as a cluster member (--meta). It registers the
 * node with a lease, serves the replicas placed on it through the replica
 * service, and runs the engine of every volume attached to it, handing it
 * to the daemon to export (over NBD). It learns about attachments by
 * reading the metadata store once a second (etcd watches can replace the
 * polling later), always on the metadata worker (metaq.h): the loop never
 * waits for the store.
 */
#ifndef TRIPLEX_AGENT_H
#define TRIPLEX_AGENT_H

#include <stdbool.h>

#include "loop.h"
#include "repl_service.h"
#include "store_io.h"

struct agent;
struct vol;

struct agent_opts {
	const char *meta_url;
	const char *node_id;
	const char *zone;
	const char *rack;         /* may be NULL */
	const char *data_dir;
	const char *listen_repl;  /* host:port */
	const char *nbd_addr;     /* advertised, may be NULL */
	const char *http_addr;    /* advertised, may be NULL */
	uint64_t write_timeout_ms;
	uint64_t io_timeout_ms;
	uint64_t resync_rate_bps;  /* 0: unlimited */
	int lease_ttl_s;           /* the node's lease; 0: AGENT_LEASE_TTL_S */
	/* Engines' read lease from their replicas (at most
	 * REPL_LEASE_MAX_MS); 0: AGENT_READ_LEASE_MS. */
	uint64_t read_lease_ms;
	unsigned max_repl_connections;  /* 0: REPL_DEFAULT_MAX_CONNECTIONS */
	/* Replication mutual TLS (the daemon owns both and swaps them on
	 * reload): the replica service's server context and the engines'
	 * client context. NULL, or *NULL: plaintext. */
	struct tls_ctx *const *repl_tls_server;
	struct tls_ctx *const *repl_tls_client;
	/* Offer a volume to clients (0 or -errno), and stop offering it
	 * (new connections are refused; open ones keep their engine). */
	int (*export_vol)(void *arg, struct vol *v);
	void (*hide_vol)(void *arg, const char *name);
	/* The volume grew (online resize): offer vol_size(v) to new
	 * connections. May be NULL. */
	void (*resize_vol)(void *arg, struct vol *v);
	void *export_arg;
};

/* Open the metadata store, register the node, start the replica service
 * and the attachment poller. Volumes are exported (opts->export_vol) as
 * they are attached and ready. Returns NULL with the reason logged. */
struct agent *agent_start(struct loop *loop, struct store_io *io,
			  const struct agent_opts *opts);

/* Unregister and stop the poller and the replica service (shutdown). */
void agent_stop(struct agent *cm);

/* After agent_stop: true once no replica connection, in either
 * direction, is left (the loop may stop). */
bool agent_idle(const struct agent *cm);

/* Free everything, once the loop has stopped. */
void agent_free(struct agent *cm);

/* Volumes whose engine runs here, and the i-th of them (NULL past the
 * end), for metrics. */
size_t agent_volumes(const struct agent *cm);
struct vol *agent_vol(const struct agent *cm, size_t i);
/* Replica r of that volume is being resynced: its next offset in *pos
 * (the copy goes in order from the start or a checkpoint). false if no
 * resync of it runs. */
bool agent_vol_resync_pos(const struct agent *cm, size_t i, unsigned r,
			  uint64_t *pos);
/* fn for each replica this node holds open (repl_service_for_each_replica). */
void agent_for_each_replica(const struct agent *cm,
			    void (*fn)(void *arg, const char *name, struct store *st),
			    void *arg);
/* The metadata store as this node sees it (for /metrics). */
struct agent_meta_health {
	bool up;               /* the last poll or lease renewal succeeded */
	uint64_t errors;       /* polls and lease renewals that failed */
	double ok_age_s;       /* seconds since the last success */
	double lease_age_s;    /* since the node's lease was last renewed */
	int lease_ttl_s;
};
void agent_meta_health(const struct agent *cm, struct agent_meta_health *h);
/* A scrub of the i-th volume runs: the bytes it has done in *done. */
bool agent_vol_scrub_done(const struct agent *cm, size_t i, uint64_t *done);
/* The replica service's counters (for /metrics). */
const struct repl_service_stats *agent_repl_stats(const struct agent *cm);

#endif
