/*
 * Shared by the replica service's files: repl_service.c (lifecycle,
 * listeners, the op table), repl_vol.c (the volume table, fencing and
 * draining) and repl_conn.c (socket I/O of one connection).
 *
 * Ownership: a connection owns its requests (struct rreq) from header to
 * reply sent; while one waits in a volume's queue or in the store the
 * connection stays allocated (conn inflight count), even when closing.
 */
#ifndef TRIPLEX_REPL_SERVICE_INT_H
#define TRIPLEX_REPL_SERVICE_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "listener.h"
#include "repl_proto.h"
#include "sendq.h"
#include "repl_service.h"
#include "store.h"

struct rconn;
struct rvol;

/* One request, from its header to its reply. */
struct rreq {
	struct store_req sr;
	struct rconn *c;
	struct rvol *vol;         /* set while the store executes it */
	struct rreq *next;        /* free list or volume queue */
	struct sendq_msg sq;      /* the reply, while queued on the socket */
	struct repl_req q;
	int err;                  /* from decode; replied once the payload is in */
	uint8_t small[sizeof(struct repl_open)];  /* HELLO, OPEN, RESIZE, LEASE */
	uint32_t *crcs;           /* WRITE in, READ/CRCS out (wire order) */
	size_t crcs_cap;          /* bytes */
	uint8_t *buf;             /* 4096-aligned data */
	size_t cap;
	size_t budget;            /* bytes charged to the connection */
	uint64_t epoch_deadline_ms;  /* waiting for its epoch to be known */
	uint8_t hdr[REPL_REP_SIZE];
	const void *out[2];       /* reply payload pieces */
	size_t out_len[2];
};

_Static_assert(sizeof(struct repl_open) >= REPL_MAX_HELLO &&
	       sizeof(struct repl_open) >= REPL_RESIZE_SIZE,
	       "small payloads fit rreq.small");

/* One replica volume bound to a volume_id. */
struct rvol {
	struct rvol *next;
	struct repl_service *svc;
	uint64_t id;
	char name[REPL_MAX_NAME + 1];
	struct store *st;
	uint64_t epoch;           /* == store_get_epoch(st) */
	uint64_t session;         /* the current session of that epoch */
	unsigned executing;       /* requests inside the store */
	struct rreq *drainer;     /* runs once executing drops to 0 */
	struct rreq *waitq, **waitq_tail;  /* arrived behind the drainer */
	bool epoch_waiting;       /* the drainer waits for epoch_check */
	struct loop_timer retry;  /* the drainer waiting for the store to
				     settle, or for its epoch to be known */
	bool deleted;
	/* The node the store said holds the attachment at holder_epoch. */
	uint64_t holder_epoch;
	char holder[REPL_MAX_HELLO + 1];
	/* Read leases (loop_now_ms): the one granted at the current epoch, and
	 * the end of any granted at an older one, which a newer engine waits
	 * out before it serves (docs/architecture.md, read leases). */
	uint64_t lease_until, prior_lease_until;
};

struct repl_service {
	struct loop *loop;
	struct store_io *io;
	char *dir;
	char *node_id;
	uint64_t max_volume_size;
	uint64_t started_ms;      /* leases granted before a restart are unknown */
	struct listeners listeners;
	struct tls_ctx *const *tls;
	struct rconn *conns;
	struct rvol *vols;
	bool shutting_down;
	void (*drained)(void *arg);
	void *drained_arg;
	struct repl_service_stats stats;
	repl_epoch_check_fn epoch_check;   /* NULL: every epoch taken */
	void *epoch_arg;
	repl_holder_check_fn holder_check; /* NULL: every peer may write */
	void *holder_arg;
	unsigned max_tcp, tcp_open;       /* TCP connections: cap, open now */
	uint64_t hs_timeout_ms;
	struct loop_timer hs_timer;       /* while a handshake is pending */
	uint64_t epoch_wait_ms;
};

/* One op: pre runs first for ops without a volume (HELLO, OPEN); exec runs
 * on the volume once fencing admitted the request. exclusive: nothing else
 * of the volume may be in the store while it runs. */
struct repl_op_desc {
	/* Validates the payload before fencing: 0 or the error to answer. */
	int (*check)(const struct repl_service *svc, const struct rreq *r);
	void (*pre)(struct repl_service *svc, struct rreq *r);
	void (*exec)(struct rvol *v, struct rreq *r);
	bool exclusive;
	bool changes;  /* only from the attachment's holder (holder_check) */
};

const struct repl_op_desc *repl_op_desc(unsigned op);

/* repl_conn.c */
/* tls: the connection is over TCP and must prove a node certificate
 * (svc->tls) before any request is read. */
int rconn_start(struct repl_service *svc, int fd, bool tcp);
/* Close TCP connections whose TLS handshake started before now - ms;
 * returns how many are still in their handshake. */
unsigned rconn_expire_handshakes(struct repl_service *svc, uint64_t now,
				 uint64_t ms);
/* A handshake started: make sure the timer watches it. */
void repl_arm_hs_timer(struct repl_service *svc);
/* The node the connection's certificate names; NULL on a plain one. */
const char *rreq_peer(const struct rreq *r);
void rconn_close_all(struct repl_service *svc);
/* Send r's reply with status (payload pieces r->out when status is 0) and
 * the volume's epoch; r goes back to its connection once sent. */
void rreq_reply(struct rreq *r, int status, uint64_t epoch);
/* Make r->buf / r->crcs at least bytes long. 0 or -ENOMEM. */
int rreq_reserve_buf(struct rreq *r, size_t bytes);
int rreq_reserve_crcs(struct rreq *r, size_t bytes);
/* Whether r's connection is closing (its reply would be dropped). */
bool rreq_orphaned(const struct rreq *r);
/* Give up r without a reply (its connection is closing). */
void rreq_drop(struct rreq *r);

/* repl_service.c */
/* A request whose header and payload are in: execute it. */
void repl_execute(struct repl_service *svc, struct rreq *r);
void repl_conn_gone(struct repl_service *svc);

/* repl_vol.c */
struct rvol *rvol_find(struct repl_service *svc, uint64_t id);
/* OPEN: bind volume_id to the replica called o->name, creating it if
 * absent (whatever its size: the OPEN grows it when it executes).
 * Returns 0 with *out, or -EEXIST, -errno. */
/* create: make the replica if it is absent (REPL_FLAG_CREATE); without
 * it an absent replica is -ENOENT, so an in-sync replica whose files were
 * lost is never silently recreated empty. */
int rvol_bind(struct repl_service *svc, uint64_t id,
	      const struct repl_open *o, bool create, struct rvol **out);
/* Fence r against v's epoch and session, then execute it (now or after
 * a drain). */
void rvol_admit(struct rvol *v, struct rreq *r);
/* r's (epoch, session) is older than v's: it must not be acknowledged.
 * Counts it (fenced or superseded). */
bool rvol_refuse_older(struct rvol *v, const struct rreq *r);
/* A request that rvol_exec_start counted has left the store. */
void rvol_exec_end(struct rvol *v);
void rvol_exec_start(struct rvol *v, struct rreq *r);
/* OPEN and RESIZE: make v's replica hold at least size bytes (it never
 * shrinks; nothing of v may be in the store). 0, -EFBIG over the service's
 * limit, -EAGAIN (nothing done: the caller parks r with
 * rvol_retry_later), or -errno from store_grow. */
int rvol_grow(struct rvol *v, uint64_t size);
/* DELETE: close the store and remove the replica's directory. Returns
 * -EAGAIN (nothing done) if the store is still busy: the caller parks r
 * with rvol_retry_later. */
int rvol_delete(struct rvol *v);
/* Run r (v's drainer-to-be) again shortly. */
void rvol_retry_later(struct rvol *v, struct rreq *r);
/* Close every store (service free). */
void rvol_close_all(struct repl_service *svc);

#endif
