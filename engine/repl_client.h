/*
 * The engine's side of the replication protocol: one connection to one
 * remote replica of one volume, pipelined on the process's io_uring loop.
 *
 * The client connects, sends HELLO and OPEN, then carries requests. If the
 * connection fails, every request in flight completes with an error and the
 * client reconnects with backoff; requests submitted while it is down fail
 * at once with -ENOTCONN (the engine decides what a missing replica means).
 * A request that gets no reply within the I/O timeout fails with
 * -ETIMEDOUT and the connection is reset, so a late reply can never be
 * matched to a later request.
 */
#ifndef TRIPLEX_REPL_CLIENT_H
#define TRIPLEX_REPL_CLIENT_H

#include "sendq.h"
#include <stdbool.h>
#include <stdint.h>

#include "loop.h"
#include "repl_proto.h"

struct repl_client;

struct repl_client_io {
	/* Set by the caller; done runs once, from the loop, with 0 or -errno. */
	void (*done)(struct repl_client_io *io, int res);
	void *priv;
	uint16_t op;        /* REPL_OP_READ, WRITE, FLUSH, TRIM, ZERO, CRCS,
			       DIRTY, RESIZE */
	uint32_t flags;     /* REPL_FLAG_* */
	uint64_t offset;
	uint32_t length;
	void *buf;          /* READ: receives data; WRITE: data to send;
			       DIRTY: receives u64 region size then offsets;
			       RESIZE: the payload (repl_resize_encode) */
	uint32_t *crcs;     /* READ, CRCS: receive; WRITE: send */
	uint32_t cap;       /* DIRTY: bytes buf can take */
	uint32_t got;       /* DIRTY: bytes received */

	/* Private to the client. */
	struct repl_client_io *next;  /* waitq or failq */
	struct sendq_msg sq;          /* while not wholly sent */
	uint64_t req_id;
	uint64_t deadline_ms;
	uint8_t hdr[64];
};

struct repl_client_opts {
	const char *addr;      /* host:port of the replica's repl listener */
	const char *node_id;   /* ours, sent in HELLO */
	uint64_t volume_id;
	const char *volume_name;
	uint64_t volume_size;
	uint64_t epoch;
	uint64_t io_timeout_ms;
	/* Mutual TLS over TCP (not with connect_fd): *tls is the node's
	 * client context (the daemon swaps it on reload); the replica must
	 * present a certificate naming peer_node. NULL: plaintext. */
	struct tls_ctx *const *tls;
	const char *peer_node;
	/* If set, called instead of a TCP connect for each connection: returns
	 * a connected socket (e.g. one end of a socketpair into this process's
	 * replica service) or -errno. addr then only names it in logs. */
	int (*connect_fd)(void *arg);
	/* Asked at each connection: may OPEN create the replica if absent?
	 * NULL: never. An in-sync replica must never be recreated empty. */
	bool (*may_create)(void *arg);
	/* Read leases: if non-zero, while connected the client asks the
	 * replica for a lease of this many ms (REPL_OP_LEASE) every quarter
	 * of it (docs/architecture.md, read leases). */
	uint64_t lease_ms;
	/* Called when the replica refused our HELLO or OPEN (then the client
	 * reconnects with backoff). May be NULL. */
	void (*on_refused)(struct repl_client *c, int err, void *arg);
	/* Called when the connection becomes usable (true) or is lost. */
	void (*on_state)(struct repl_client *c, bool up, int err, void *arg);
	void *arg;
};

/* A client; it starts connecting at once. Returns NULL on ENOMEM or a bad
 * address. */
struct repl_client *repl_client_new(struct loop *loop,
				    const struct repl_client_opts *opts);

/* Queue a request (see struct repl_client_io). */
void repl_client_submit(struct repl_client *c, struct repl_client_io *io);

bool repl_client_is_up(const struct repl_client *c);

/* Does c hold a read lease at now (loop_now_ms) from its replica, with any
 * lease that replica granted at an older epoch over? */
bool repl_client_leased(const struct repl_client *c, uint64_t now);

/* The volume grew to size bytes (never shrinks): every OPEN from now on
 * carries it, and an OPEN answered at a smaller size is redone (the
 * connection is reset), so the connection is never up at a size below it. */
void repl_client_set_size(struct repl_client *c, uint64_t size);

/* Clients not yet freed in this process (shutdown waits for 0). */
unsigned repl_client_live(void);

/* Stop: fail what is in flight, close, and free once the kernel has let go
 * of every buffer (from the loop). */
void repl_client_free(struct repl_client *c);

#endif
