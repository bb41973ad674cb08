/*
 * The replica service: lifecycle, listeners, and the op table. Each op's
 * handler runs once its request is fully received and (for ops on a
 * volume) admitted by the fencing rule in repl_vol.c.
 */
#include "repl_service.h"

#include <endian.h>
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "log.h"
#include "repl_service_int.h"

#define container_of(ptr, type, member) \
	((type *)((char *)(ptr) - offsetof(type, member)))

/* --- ops ------------------------------------------------------------------ */

static void op_hello(struct repl_service *svc, struct rreq *r)
{
	char peer[REPL_MAX_HELLO + 1];
	size_t n = r->q.payload_len;

	/* Only for the log: keep it printable. */
	for (size_t i = 0; i < n; i++)
		peer[i] = r->small[i] >= 0x20 && r->small[i] < 0x7f ?
				  (char)r->small[i] : '?';
	peer[n] = '\0';
	log_debug("replication: hello from node '%s'", peer);
	/* Over TLS the node is who its certificate says, whatever it claims. */
	if (rreq_peer(r) && strcmp(rreq_peer(r), peer) != 0) {
		log_warn("replication: node '%s' said hello as '%s': refused",
			 rreq_peer(r), peer);
		svc->stats.auth_refused++;
		rreq_reply(r, -EACCES, 0);
		return;
	}
	r->out[0] = svc->node_id;
	r->out_len[0] = strnlen(svc->node_id, REPL_MAX_HELLO);
	rreq_reply(r, 0, 0);
}

/* An OPEN of a volume not open here loads, binds or creates its replica
 * before fencing sees it: from a TCP peer, only for the attachment's
 * holder (asked at once; not known yet: -EAGAIN, and the engine opens
 * again after its backoff, by when its agent has polled). */
static int open_allowed(struct repl_service *svc, const struct rreq *r)
{
	const char *peer = rreq_peer(r);
	int ok;

	if (!peer || !svc->holder_check || rvol_find(svc, r->q.volume_id))
		return 0;
	ok = peer[0] ? svc->holder_check(svc->holder_arg, r->q.volume_id,
					 r->q.epoch, peer) : -EACCES;
	if (ok > 0)
		return 0;
	if (ok == 0)
		return -EAGAIN;
	svc->stats.auth_refused++;
	log_warn("replication: node '%s' may not open volume id %" PRIu64
		 " at epoch %" PRIu64 ": it does not hold the attachment",
		 peer, r->q.volume_id, r->q.epoch);
	return ok;
}

static void op_open(struct repl_service *svc, struct rreq *r)
{
	struct repl_open o;
	struct rvol *v;
	int ret = repl_open_decode(r->small, r->q.payload_len, &o);

	if (ret == 0 && o.size > svc->max_volume_size)
		ret = -EFBIG;
	if (ret == 0)
		ret = open_allowed(svc, r);
	if (ret == 0)
		ret = rvol_bind(svc, r->q.volume_id, &o,
				r->q.flags & REPL_FLAG_CREATE, &v);
	if (ret < 0) {
		rreq_reply(r, ret, 0);
		return;
	}
	rvol_admit(v, r);
}

/* FENCE: the epoch rule in rvol_admit did the work. */
static void op_ok(struct rvol *v, struct rreq *r)
{
	rreq_reply(r, 0, v->epoch);
}

/* Grow to size (OPEN, RESIZE): the ops are exclusive, so nothing of the
 * volume is in the store; a lazy activity-log write may still be. */
static void reply_grown(struct rvol *v, struct rreq *r, uint64_t size)
{
	int ret = rvol_grow(v, size);

	if (ret == -EAGAIN)
		rvol_retry_later(v, r);
	else
		rreq_reply(r, ret, v->epoch);
}

/* OPEN once bound and fenced: a replica smaller than the engine's size
 * grows (it missed a resize while it was away). */
static void op_open_exec(struct rvol *v, struct rreq *r)
{
	struct repl_open o;

	if (repl_open_decode(r->small, r->q.payload_len, &o) < 0) {
		rreq_reply(r, -EINVAL, v->epoch);  /* checked in op_open */
		return;
	}
	reply_grown(v, r, o.size);
}

static int check_resize(const struct repl_service *svc, const struct rreq *r)
{
	uint64_t size;

	if (repl_resize_decode(r->small, r->q.payload_len, &size) < 0)
		return -EINVAL;
	return size > svc->max_volume_size ? -EFBIG : 0;
}

static void op_resize(struct rvol *v, struct rreq *r)
{
	uint64_t size = 0;

	repl_resize_decode(r->small, r->q.payload_len, &size);  /* checked */
	reply_grown(v, r, size);
}

static int check_lease(const struct repl_service *svc, const struct rreq *r)
{
	uint64_t ms;

	(void)svc;
	return repl_lease_decode(r->small, r->q.payload_len, true, &ms);
}

/* Grant a read lease at the current epoch; answer how long the engine must
 * still wait for one granted at an older epoch to run out. */
static void op_lease(struct rvol *v, struct rreq *r)
{
	uint64_t ms = 0, now = loop_now_ms();

	repl_lease_decode(r->small, r->q.payload_len, true, &ms);  /* checked */
	if (now + ms > v->lease_until)
		v->lease_until = now + ms;
	repl_lease_encode(v->prior_lease_until > now ?
			  v->prior_lease_until - now : 0, r->small);
	r->out[0] = r->small;
	r->out_len[0] = REPL_LEASE_SIZE;
	rreq_reply(r, 0, v->epoch);
}

static void to_wire_crcs(uint32_t *crcs, size_t n)
{
	for (size_t i = 0; i < n; i++)
		crcs[i] = htole32(crcs[i]);
}

static void store_done(struct store_req *sr, int res)
{
	struct rreq *r = container_of(sr, struct rreq, sr);
	struct rvol *v = r->vol;
	int status = res < 0 ? res : 0;

	/* Fenced while in the store: the old engine or connection must not
	 * count it as acknowledged (the new one reconciles or resyncs
	 * whatever landed). */
	if (rvol_refuse_older(v, r))
		status = -ESTALE;
	if (res == -STORE_ECSUM && r->q.op == REPL_OP_WRITE)
		v->svc->stats.csum_errors++;  /* refused on arrival, nothing stored */
	if (status == 0 && r->q.op == REPL_OP_READ) {
		size_t n = r->q.length / 4096;

		to_wire_crcs(r->crcs, n);
		r->out[0] = r->crcs;
		r->out_len[0] = n * 4;
		r->out[1] = r->buf;
		r->out_len[1] = r->q.length;
	}
	r->vol = NULL;
	rreq_reply(r, status, v->epoch);
	rvol_exec_end(v);
}

/* r goes into the store: count it, and come back to store_done. */
static void begin(struct rvol *v, struct rreq *r)
{
	r->sr.done = store_done;
	r->sr.priv = r;
	rvol_exec_start(v, r);
}

static void op_read(struct rvol *v, struct rreq *r)
{
	if (rreq_reserve_buf(r, r->q.length) < 0 ||
	    rreq_reserve_crcs(r, r->q.length / 4096 * 4) < 0) {
		rreq_reply(r, -ENOMEM, v->epoch);
		return;
	}
	begin(v, r);
	store_read(v->st, &r->sr, r->q.offset, r->q.length, r->buf, r->crcs);
}

/* The checksums arrive little-endian; the store wants them in host order. */
static void from_wire_crcs(uint32_t *crcs, size_t n)
{
	for (size_t i = 0; i < n; i++)
		crcs[i] = le32toh(crcs[i]);
}

/* store_write verifies the data against these checksums before it stores
 * anything (invariant 6): the one pass over the data on this side. */
static void op_write(struct rvol *v, struct rreq *r)
{
	unsigned flags = r->q.flags & REPL_FLAG_FUA ? STORE_FUA : 0;

	from_wire_crcs(r->crcs, r->q.length / 4096);
	begin(v, r);
	store_write(v->st, &r->sr, r->q.offset, r->q.length, r->buf, r->crcs,
		    flags);
}

static void op_flush(struct rvol *v, struct rreq *r)
{
	begin(v, r);
	store_flush(v->st, &r->sr);
}

static void op_trim(struct rvol *v, struct rreq *r)
{
	unsigned flags = r->q.flags & REPL_FLAG_FUA ? STORE_FUA : 0;

	begin(v, r);
	store_trim(v->st, &r->sr, r->q.offset, r->q.length, flags);
}

static void op_zero(struct rvol *v, struct rreq *r)
{
	unsigned flags = (r->q.flags & REPL_FLAG_FUA ? STORE_FUA : 0) |
			 (r->q.flags & REPL_FLAG_NO_HOLE ? STORE_NO_HOLE : 0);

	begin(v, r);
	store_zero(v->st, &r->sr, r->q.offset, r->q.length, flags);
}

static void op_crcs(struct rvol *v, struct rreq *r)
{
	size_t n = r->q.length / 4096;
	int ret = rreq_reserve_crcs(r, n * 4);

	if (ret == 0)
		ret = store_crcs(v->st, r->q.offset, r->q.length, r->crcs);
	if (ret == 0) {
		to_wire_crcs(r->crcs, n);
		r->out[0] = r->crcs;
		r->out_len[0] = n * 4;
	}
	rreq_reply(r, ret, v->epoch);
}

static void op_dirty(struct rvol *v, struct rreq *r)
{
	uint64_t rsize, *p;
	size_t n = store_dirty_regions(v->st, NULL, 0, &rsize);

	if ((n + 1) * 8 > REPL_MAX_PAYLOAD) {
		rreq_reply(r, -EOVERFLOW, v->epoch);
		return;
	}
	if (rreq_reserve_buf(r, (n + 1) * 8) < 0) {
		rreq_reply(r, -ENOMEM, v->epoch);
		return;
	}
	p = (uint64_t *)r->buf;
	store_dirty_regions(v->st, p + 1, n, &rsize);
	p[0] = rsize;
	for (size_t i = 0; i <= n; i++)
		p[i] = htole64(p[i]);
	r->out[0] = r->buf;
	r->out_len[0] = (n + 1) * 8;
	rreq_reply(r, 0, v->epoch);
}

/* Replicas are deleted by their own node's agent once the metadata store
 * says the volume is gone (repl_service_delete_replica). A DELETE from the
 * network could come from anyone who reaches the port and would take the
 * data of a served volume (issue 11): refused. */
static int check_delete(const struct repl_service *svc, const struct rreq *r)
{
	(void)svc;
	(void)r;
	return -EPERM;
}

static const struct repl_op_desc op_table[REPL_OP_MAX] = {
	[REPL_OP_HELLO] = { .pre = op_hello },
	[REPL_OP_OPEN] = { .pre = op_open, .exec = op_open_exec,
			   .exclusive = true, .changes = true },
	[REPL_OP_READ] = { .exec = op_read },
	[REPL_OP_WRITE] = { .exec = op_write, .changes = true },
	[REPL_OP_FLUSH] = { .exec = op_flush },
	[REPL_OP_TRIM] = { .exec = op_trim, .changes = true },
	[REPL_OP_ZERO] = { .exec = op_zero, .changes = true },
	[REPL_OP_CRCS] = { .exec = op_crcs },
	[REPL_OP_DIRTY] = { .exec = op_dirty },
	[REPL_OP_FENCE] = { .exec = op_ok, .changes = true },
	[REPL_OP_DELETE] = { .check = check_delete, .changes = true },
	[REPL_OP_RESIZE] = { .check = check_resize, .exec = op_resize,
			     .exclusive = true, .changes = true },
	[REPL_OP_LEASE] = { .check = check_lease, .exec = op_lease,
			    .changes = true },
};

const struct repl_op_desc *repl_op_desc(unsigned op)
{
	return &op_table[op];
}

void repl_execute(struct repl_service *svc, struct rreq *r)
{
	const struct repl_op_desc *d;
	struct rvol *v;
	int ret;

	if (r->err < 0) {
		rreq_reply(r, r->err, 0);
		return;
	}
	d = &op_table[r->q.op];   /* decode checked op < REPL_OP_MAX */
	if (d->check && (ret = d->check(svc, r)) < 0) {
		rreq_reply(r, ret, 0);
		return;
	}
	if (d->pre) {
		d->pre(svc, r);
		return;
	}
	v = rvol_find(svc, r->q.volume_id);
	if (!v) {
		rreq_reply(r, -ENOENT, 0);
		return;
	}
	rvol_admit(v, r);
}

/* --- lifecycle and listeners --------------------------------------------------- */

static void on_accepted(void *arg, int fd);
static void listeners_stopped(void *arg);

struct repl_service *repl_service_new(struct loop *loop, struct store_io *io,
				      const char *replicas_dir,
				      const char *node_id)
{
	struct repl_service *svc = calloc(1, sizeof *svc);

	if (!svc)
		return NULL;
	svc->loop = loop;
	svc->io = io;
	svc->max_volume_size = 1ull << 50;
	svc->max_tcp = REPL_DEFAULT_MAX_CONNECTIONS;
	svc->hs_timeout_ms = REPL_HANDSHAKE_TIMEOUT_MS;
	svc->started_ms = loop_now_ms();
	listeners_init(&svc->listeners, loop, "replication", on_accepted,
		       listeners_stopped, svc);
	svc->listeners.accepts = &svc->stats.connections_accepted;
	svc->listeners.failures = &svc->stats.accept_failures;
	svc->dir = strdup(replicas_dir);
	svc->node_id = strdup(node_id);
	if (!svc->dir || !svc->node_id) {
		repl_service_free(svc);
		return NULL;
	}
	return svc;
}

void repl_service_set_epoch_check(struct repl_service *svc,
				  repl_epoch_check_fn fn, void *arg,
				  uint64_t wait_ms)
{
	svc->epoch_check = fn;
	svc->epoch_arg = arg;
	svc->epoch_wait_ms = wait_ms;
}

void repl_service_set_holder_check(struct repl_service *svc,
				   repl_holder_check_fn fn, void *arg)
{
	svc->holder_check = fn;
	svc->holder_arg = arg;
}

void repl_service_set_max_volume_size(struct repl_service *svc,
				      uint64_t bytes)
{
	svc->max_volume_size = bytes;
}

static void check_drained(struct repl_service *svc)
{
	void (*fn)(void *) = svc->drained;

	if (!repl_service_drained(svc) || !fn)
		return;
	svc->drained = NULL;
	fn(svc->drained_arg);
}

void repl_service_set_max_connections(struct repl_service *svc, unsigned max)
{
	svc->max_tcp = max ? max : REPL_DEFAULT_MAX_CONNECTIONS;
}

void repl_service_set_handshake_timeout(struct repl_service *svc, uint64_t ms)
{
	svc->hs_timeout_ms = ms ? ms : REPL_HANDSHAKE_TIMEOUT_MS;
}

static void on_accepted(void *arg, int fd)
{
	struct repl_service *svc = arg;

	if (svc->tcp_open >= svc->max_tcp)
		listeners_refuse(&svc->listeners, fd, svc->max_tcp,
				 "--max-repl-connections",
				 &svc->stats.connections_refused);
	else
		rconn_start(svc, fd, true);
}

static void hs_timer_fired(struct loop_timer *t)
{
	struct repl_service *svc = (struct repl_service *)
		((char *)t - offsetof(struct repl_service, hs_timer));

	if (rconn_expire_handshakes(svc, loop_now_ms(), svc->hs_timeout_ms) > 0 &&
	    !svc->shutting_down)
		loop_timer_arm(svc->loop, &svc->hs_timer, 1000);
	check_drained(svc);
}

void repl_arm_hs_timer(struct repl_service *svc)
{
	svc->hs_timer.fn = hs_timer_fired;
	loop_timer_arm(svc->loop, &svc->hs_timer, 1000);
}

void repl_service_set_tls(struct repl_service *svc, struct tls_ctx *const *ctx)
{
	svc->tls = ctx;
}

static void listeners_stopped(void *arg)
{
	check_drained(arg);
}

int repl_service_listen_tcp(struct repl_service *svc, const char *host,
			    const char *port)
{
	return listeners_add_tcp(&svc->listeners, host, port);
}

void repl_service_start(struct repl_service *svc)
{
	listeners_start(&svc->listeners);
}

int repl_service_add_fd(struct repl_service *svc, int fd)
{
	if (svc->shutting_down) {
		close(fd);
		return -ESHUTDOWN;
	}
	svc->stats.connections_accepted++;
	return rconn_start(svc, fd, false);
}

void repl_conn_gone(struct repl_service *svc)
{
	check_drained(svc);
}

bool repl_service_drained(const struct repl_service *svc)
{
	return svc->shutting_down && !svc->conns &&
	       !listeners_armed(&svc->listeners) && !svc->hs_timer.armed;
}

void repl_service_shutdown(struct repl_service *svc,
			   void (*drained)(void *arg), void *arg)
{
	svc->shutting_down = true;
	svc->drained = drained;
	svc->drained_arg = arg;
	listeners_stop(&svc->listeners);
	rconn_close_all(svc);
	/* Not a second more for the handshake watch: drained waits for it. */
	loop_timer_fire_now(svc->loop, &svc->hs_timer);
	check_drained(svc);
}

const struct repl_service_stats *
repl_service_get_stats(const struct repl_service *svc)
{
	return &svc->stats;
}

void repl_service_free(struct repl_service *svc)
{
	if (!svc)
		return;
	rvol_close_all(svc);
	listeners_fini(&svc->listeners);
	free(svc->dir);
	free(svc->node_id);
	free(svc);
}

void repl_service_for_each_replica(const struct repl_service *svc,
				   void (*fn)(void *arg, const char *name,
					      struct store *st),
				   void *arg)
{
	for (const struct rvol *v = svc->vols; v; v = v->next)
		if (!v->deleted && v->st)
			fn(arg, v->name, v->st);
}

struct store *repl_service_store(struct repl_service *svc, uint64_t volume_id)
{
	struct rvol *v = rvol_find(svc, volume_id);

	return v && !v->deleted ? v->st : NULL;
}
