/* Shared between nbd/server.c (listeners, exports) and nbd/conn.c. */
#ifndef TRIPLEX_NBD_SERVER_INT_H
#define TRIPLEX_NBD_SERVER_INT_H

#include <stdbool.h>

#include "handshake.h"
#include "listener.h"
#include "server.h"

struct conn;

struct tls_allow {
	char *name, *identities;
};

struct nbd_server {
	struct loop *loop;
	struct nbd_export *exports;
	size_t nexports;
	struct nbd_exports table;
	struct listeners listeners;
	struct conn *conns;          /* every open connection */
	struct loop_timer hs_timer;  /* expires slow handshakes, stuck replies */
	bool shutting_down;
	uint64_t hs_timeout_ms;       /* handshake deadline per connection */
	uint64_t reply_timeout_ms;    /* a reply not taken for this long */
	unsigned max_connections;
	struct tls_ctx *tls_ctx;      /* NULL: no TLS */
	enum nbd_tls_mode tls_mode;
	struct tls_allow *tls_allow;  /* per-export identity lists */
	size_t ntls_allow;
	void (*drained)(void *arg);
	void *drained_arg;
	struct nbd_server_stats stats;
};

/* Take over an accepted socket. */
void conn_start(struct nbd_server *srv, int fd);

/* Server shutdown: close idle connections, mark the rest. */
void conn_shutdown_all(struct nbd_server *srv);

/* Close connections whose handshake took longer than allowed, or whose
 * client has not taken a reply for reply_timeout_ms; returns how many are
 * still in their handshake or waiting to send. */
unsigned conn_expire(struct nbd_server *srv);

/* Called by conn.c when a connection has been freed. */
void server_conn_gone(struct nbd_server *srv);

/* Make sure the timer of conn_expire is running. */
void server_arm_hs_timer(struct nbd_server *srv);

#endif
