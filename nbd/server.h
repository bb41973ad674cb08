/* The NBD server: listeners, connections, and the export table, all driven
 * by the process's one io_uring loop. */
#ifndef TRIPLEX_NBD_SERVER_H
#define TRIPLEX_NBD_SERVER_H

#include <stddef.h>
#include <stdint.h>

#include "handshake.h"
#include "loop.h"
#include "volume.h"

struct nbd_server;

struct nbd_server_stats {
	uint64_t connections_accepted;
	uint64_t connections_open;
	uint64_t handshakes_failed;
	uint64_t requests;
	uint64_t request_errors;  /* replies with a non-zero error */
	uint64_t connections_refused;  /* closed at once: max_connections */
	uint64_t accept_failures;      /* accept failed for want of fds/memory */
	uint64_t reply_timeouts;       /* closed: the client took no reply */
	uint64_t tls_handshakes;        /* STARTTLS that reached TLS */
	uint64_t tls_handshakes_failed; /* STARTTLS whose TLS handshake failed */
};

#define NBD_DEFAULT_REPLY_TIMEOUT_MS 60000

/* A connection whose client takes none of its replies for ms (its socket
 * stays full) is closed, so that a client that sends and never reads
 * holds the daemon's buffers for a bounded time. 0: the default. */
void nbd_server_set_reply_timeout(struct nbd_server *s, uint64_t ms);

#define NBD_DEFAULT_MAX_CONNECTIONS 1024

/* Past max connections open (handshaking or not), a new one is closed as
 * soon as it is accepted; the open ones go on. 0: the default. */
void nbd_server_set_max_connections(struct nbd_server *s, unsigned max);

struct tls_ctx;

/* STARTTLS with credentials from ctx (NULL: none, mode must be OFF). The
 * caller keeps ctx; calling again swaps it for new connections (a reload)
 * while open sessions keep theirs, so the old one may be freed at once. */
void nbd_server_set_tls(struct nbd_server *s, struct tls_ctx *ctx,
			enum nbd_tls_mode mode);

/* Only these TLS identities (comma-separated) may use export name; an
 * export with such a list is served over TLS only. Applies to exports
 * added later too. 0, -ENOMEM or -ENOSPC. */
int nbd_server_allow_tls_identities(struct nbd_server *s, const char *name,
				    const char *identities);

/* A server exporting each volume under its name. The volumes stay owned
 * by the caller. Returns NULL on ENOMEM. */
struct nbd_server *nbd_server_new(struct loop *loop, struct vol **vols,
				  size_t nvols);

#define NBD_MAX_EXPORTS 256

/* Export one more volume (attached after the server started). Returns 0,
 * -EEXIST if its name is taken, -ENOSPC past NBD_MAX_EXPORTS. */
int nbd_server_add_export(struct nbd_server *s, struct vol *v);

/* Stop offering an export to new connections (the node lost the volume).
 * Connections already using it keep their volume until they close. */
void nbd_server_hide_export(struct nbd_server *s, const char *name);

/* v's size changed (it grew): new connections are offered vol_size(v);
 * open ones keep the size they negotiated. */
void nbd_server_update_export(struct nbd_server *s, const struct vol *v);

/* Listen on a Unix socket path (replaced if it exists) or a TCP host and
 * port. Return 0 or -errno. */
int nbd_server_listen_unix(struct nbd_server *s, const char *path);
int nbd_server_listen_tcp(struct nbd_server *s, const char *host,
			  const char *port);

/* Close connections that have not finished their handshake after ms
 * milliseconds (default 10 s). */
void nbd_server_set_handshake_timeout(struct nbd_server *s, uint64_t ms);

/* Start accepting on every listener (call after the last listen). */
void nbd_server_start(struct nbd_server *s);

/* Stop accepting; let in-flight requests finish (new ones get ESHUTDOWN);
 * call drained(arg) once every connection is closed. */
void nbd_server_shutdown(struct nbd_server *s, void (*drained)(void *arg),
			 void *arg);

const struct nbd_server_stats *nbd_server_get_stats(const struct nbd_server *s);

/* Free; only after drained ran (or before anything was accepted). */
void nbd_server_free(struct nbd_server *s);

#endif
