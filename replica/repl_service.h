/*
 * The replica side of the replication protocol: one per daemon. It accepts
 * engine connections, keeps a table volume_id -> open store for the
 * replicas under replicas_dir/<volume name>/, fences every request by epoch
 * and executes it on the store. All I/O goes through the daemon's loop.
 * docs/replication-protocol.md is the contract.
 */
#ifndef TRIPLEX_REPL_SERVICE_H
#define TRIPLEX_REPL_SERVICE_H

#include <stdbool.h>
#include <stdint.h>

#include "loop.h"
#include "store.h"
#include "store_io.h"

struct repl_service;

struct repl_service_stats {
	uint64_t connections_accepted;
	uint64_t connections_open;
	uint64_t protocol_errors;  /* connections closed for a bad header */
	uint64_t requests;         /* replies sent or dropped */
	uint64_t request_errors;   /* replies with a non-zero status */
	uint64_t bytes_in;         /* socket bytes received */
	uint64_t bytes_out;        /* socket bytes sent */
	uint64_t fenced;           /* refused with -ESTALE: an older epoch */
	uint64_t superseded;       /* refused with -ESTALE: an older session
				      of the current epoch (a connection the
				      engine has replaced) */
	uint64_t csum_errors;      /* WRITEs whose data failed its crc on arrival */
	uint64_t volumes_open;
	uint64_t accept_failures;  /* accept failed for want of fds/memory */
	uint64_t epoch_refused;    /* epoch raises the store never recorded */
	uint64_t auth_refused;     /* peers without a valid node certificate,
				      or saying hello as another node */
	uint64_t connections_refused;  /* over the TCP connection cap */
	uint64_t handshake_timeouts;   /* TLS not done in time: closed */
};

#define REPL_DEFAULT_MAX_CONNECTIONS 4096
#define REPL_HANDSHAKE_TIMEOUT_MS 10000

/* At most max TCP connections at once (0: the default); more are closed
 * as they arrive, and the open ones keep being served. Local ones
 * (repl_service_add_fd) do not count. */
void repl_service_set_max_connections(struct repl_service *svc, unsigned max);
/* A TCP connection whose TLS handshake is not done after ms (0: the
 * default) is closed: a peer cannot hold connections without proving who
 * it is. */
void repl_service_set_handshake_timeout(struct repl_service *svc, uint64_t ms);

/* A service storing replicas under replicas_dir (which must exist) through
 * io; node_id answers HELLO. Returns NULL on ENOMEM. */
struct repl_service *repl_service_new(struct loop *loop, struct store_io *io,
				      const char *replicas_dir,
				      const char *node_id);

/* Refuse OPEN of volumes larger than bytes with -EFBIG (default 2^50).
 * The store keeps 4 bytes of RAM per 4 KiB block. */
void repl_service_set_max_volume_size(struct repl_service *svc,
				      uint64_t bytes);

/* Asked before a replica adopts a higher epoch than it has (OPEN, FENCE
 * or any request at a new epoch): 1 if the metadata store has recorded
 * that epoch (or a later one) for volume id, 0 if not known yet (asked
 * again every 10 ms, until wait_ms have passed), < 0 to refuse. A request
 * refused gets -EPERM: anyone who reaches the port could otherwise raise a
 * volume's epoch to 2^64-1 and lock every engine out for good (issue 11).
 * Without a check (unit tests, a replica on its own) every epoch is taken. */
typedef int (*repl_epoch_check_fn)(void *arg, uint64_t volume_id,
				   uint64_t epoch);
void repl_service_set_epoch_check(struct repl_service *svc,
				  repl_epoch_check_fn fn, void *arg,
				  uint64_t wait_ms);

/* Asked before a request that changes a replica (OPEN, WRITE, TRIM, ZERO,
 * FENCE, DELETE, RESIZE, LEASE) runs for a peer that proved its node id
 * with a certificate: 1 if that node holds the volume's attachment at
 * epoch in the metadata store, 0 if not known yet (asked again like the
 * epoch check), -EACCES if another node (or none) holds it, -ESTALE if the
 * store has moved past epoch. A node of the cluster CA that is not the
 * engine could otherwise write into any replica (issue 11). Local
 * connections (repl_service_add_fd) and --insecure ones are not asked. */
typedef int (*repl_holder_check_fn)(void *arg, uint64_t volume_id,
				    uint64_t epoch, const char *node);
void repl_service_set_holder_check(struct repl_service *svc,
				   repl_holder_check_fn fn, void *arg);

/* Listen on a TCP host and port (call before repl_service_start).
 * Returns 0 or -errno. */
int repl_service_listen_tcp(struct repl_service *svc, const char *host,
			    const char *port);

/* Start accepting on every listener. */
void repl_service_start(struct repl_service *svc);

/* Serve an already-connected socket (the service owns fd from now on,
 * also on error). Returns 0 or -ENOMEM. */
int repl_service_add_fd(struct repl_service *svc, int fd);

struct tls_ctx;
/* Mutual TLS on the TCP listeners: *ctx is a server context that demands
 * a client certificate of the cluster CA (the owner may swap it; open
 * connections keep theirs). add_fd connections stay plain: they are this
 * process's own. NULL or *ctx NULL: plaintext. */
void repl_service_set_tls(struct repl_service *svc, struct tls_ctx *const *ctx);

/* Stop accepting and close every connection (requests in flight finish,
 * their replies are dropped); call drained(arg) once nothing is left.
 * drained may be NULL. */
void repl_service_shutdown(struct repl_service *svc,
			   void (*drained)(void *arg), void *arg);

/* true once shutdown has nothing left in flight. */
bool repl_service_drained(const struct repl_service *svc);

const struct repl_service_stats *
repl_service_get_stats(const struct repl_service *svc);

/* Delete this node's replica of the deleted volume id (named name): 0, or
 * -ENOENT if there is none that carries that id, -EAGAIN while requests
 * to it are in flight (try again later), -errno. */
int repl_service_delete_replica(struct repl_service *svc, const char *name,
				uint64_t id);

/* The open store of a volume, for read-only questions (allocation for
 * BLOCK_STATUS); NULL if no engine has opened it here. Writes must go
 * through a connection, where fencing applies. */
struct store *repl_service_store(struct repl_service *svc, uint64_t volume_id);

/* fn for each replica open here, with its volume's name: for the node's
 * triplex_store_* metrics and heartbeat. */
void repl_service_for_each_replica(const struct repl_service *svc,
				   void (*fn)(void *arg, const char *name,
					      struct store *st),
				   void *arg);

/* Close every store and free; only after drained (or before any
 * connection). repl_service_free(NULL) does nothing. */
void repl_service_free(struct repl_service *svc);

#endif
