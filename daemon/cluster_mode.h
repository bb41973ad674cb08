/*
 * triplexd as a cluster member (--meta): it registers itself as a node
 * with a lease, serves the replicas placed on it through the replica
 * service, and runs the engine of every volume attached to it, exporting
 * it over NBD. It learns about attachments by reading the metadata store
 * once a second (etcd watches can replace the polling later).
 */
#ifndef TRIPLEX_CLUSTER_MODE_H
#define TRIPLEX_CLUSTER_MODE_H

#include <stdbool.h>

#include "loop.h"
#include "repl_service.h"
#include "server.h"
#include "store_io.h"

struct cluster_mode;

struct cluster_mode_opts {
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
};

/* Open the metadata store, register the node, start the replica service
 * and the attachment poller. Volumes are exported on nbd as they are
 * attached. Returns NULL with the reason logged. */
struct cluster_mode *cluster_mode_start(struct loop *loop, struct store_io *io,
					struct nbd_server *nbd,
					const struct cluster_mode_opts *opts);

/* Unregister and stop the poller and the replica service (shutdown). */
void cluster_mode_stop(struct cluster_mode *cm);

/* After cluster_mode_stop: true once no replica connection, in either
 * direction, is left (the loop may stop). */
bool cluster_mode_idle(const struct cluster_mode *cm);

/* Free everything, once the loop has stopped. */
void cluster_mode_free(struct cluster_mode *cm);

/* Volumes whose engine runs here, and the i-th of them (NULL past the
 * end), for metrics. */
size_t cluster_mode_volumes(const struct cluster_mode *cm);
struct vol *cluster_mode_vol(const struct cluster_mode *cm, size_t i);
/* The replica service's counters (for /metrics). */
const struct repl_service_stats *cluster_mode_repl_stats(const struct cluster_mode *cm);

#endif
