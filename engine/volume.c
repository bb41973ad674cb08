#include "volume.h"
#include "volume_int.h"

#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"

#define BLK STORE_BLOCK
#define WAIT_TICK_MS 200
#define LEASE_TICK_MS 10



/*
 * A request runs as a list of steps. Each step may issue I/O (returning
 * true) and has an optional `after` run when that I/O succeeded. Steps
 * with nothing to do for this request return false and are skipped.
 */
struct step {
	bool (*issue)(struct vol_req_state *r);
	void (*after)(struct vol_req_state *r);
};

static uint64_t align_down(uint64_t x) { return x & ~(uint64_t)(BLK - 1); }
static uint64_t align_up(uint64_t x) { return align_down(x + BLK - 1); }

uint64_t vol_span(uint64_t off, uint64_t len)
{
	return align_up(off + len) - align_down(off);
}

/* --- construction --------------------------------------------------- */

static struct replica *replica_from_spec(const struct vol_replica_spec *s,
					 struct loop *loop)
{
	struct replica *r = s->store ? replica_local_new(s->node, s->store)
				     : replica_remote_new(s->node, s->client, loop);

	if (!r)
		return NULL;
	r->near = s->near;
	r->in_sync = s->in_sync;
	r->receiving = s->receiving && !s->in_sync;
	r->doubt = s->doubt && s->in_sync;
	return r;
}

struct vol *vol_new_replicated(const struct vol_config *cfg, struct loop *loop,
			       const struct vol_replica_spec *reps, unsigned nreps)
{
	struct vol *v;

	if (nreps == 0 || nreps > VOL_MAX_REPLICAS)
		goto fail;
	v = calloc(1, sizeof *v);
	if (!v || !(v->name = strdup(cfg->name))) {
		free(v);
		goto fail;
	}
	v->size = cfg->size;
	v->loop = loop;
	v->min_replicas = cfg->min_replicas ? cfg->min_replicas : 1;
	v->write_timeout_ms = cfg->write_timeout_ms ? cfg->write_timeout_ms : 30000;
	v->record = cfg->record;
	v->extents_store = cfg->extents_store;
	v->arg = cfg->arg;
	v->read_leases = cfg->read_leases;
	for (; v->nreps < nreps; v->nreps++) {
		v->reps[v->nreps] = replica_from_spec(&reps[v->nreps], loop);
		if (!v->reps[v->nreps]) {
			for (unsigned i = v->nreps + 1; i < nreps; i++)
				repl_client_free(reps[i].client);
			vol_free(v);
			return NULL;
		}
	}
	return v;
fail:
	for (unsigned i = 0; i < nreps && i < VOL_MAX_REPLICAS; i++)
		repl_client_free(reps[i].client);
	return NULL;
}

struct vol *vol_new(const char *name, struct store *store, struct loop *loop)
{
	struct vol_config cfg = { .name = name, .size = store_size(store) };
	struct vol_replica_spec rep = { .node = "local", .store = store,
					.in_sync = true };
	struct vol *v = vol_new_replicated(&cfg, loop, &rep, 1);

	if (v)
		v->owned_store = store;
	return v;
}

void vol_free(struct vol *v)
{
	if (!v)
		return;
	vol_resize_forget(v);
	for (unsigned i = 0; i < v->nreps; i++)
		replica_free(v->reps[i]);
	for (unsigned i = 0; i < v->nretired; i++)
		replica_free(v->retired[i]);
	store_close(v->owned_store);
	free(v->name);
	free(v);
}

const char *vol_name(const struct vol *v) { return v->name; }
uint64_t vol_size(const struct vol *v) { return v->size; }
const struct vol_stats *vol_get_stats(const struct vol *v) { return &v->stats; }
unsigned vol_inflight(const struct vol *v) { return v->inflight; }
unsigned vol_nreplicas(const struct vol *v) { return v->nreps; }
unsigned vol_min_replicas(const struct vol *v) { return v->min_replicas; }
struct replica *vol_replica(struct vol *v, unsigned i) { return v->reps[i]; }

void vol_replica_info(const struct vol *v, unsigned i, struct vol_replica_info *out)
{
	const struct replica *r = v->reps[i];

	*out = (struct vol_replica_info){ .node = r->node, .in_sync = r->in_sync,
					  .up = r->up, .receiving = r->receiving,
					  .doubt = r->doubt, .near = r->near };
}

bool vol_replica_has_client(const struct vol *v, unsigned i,
			    const struct repl_client *c)
{
	return i < v->nreps && v->reps[i]->client == c;
}

struct store *vol_store(struct vol *v)
{
	for (unsigned i = 0; i < v->nreps; i++)
		if (v->reps[i]->local)
			return v->reps[i]->store;
	return NULL;
}

unsigned vol_in_sync_count(const struct vol *v)
{
	unsigned n = 0;

	for (unsigned i = 0; i < v->nreps; i++)
		n += v->reps[i]->in_sync;
	return n;
}

void vol_req_fini(struct vol_req *pub)
{
	struct vol_req_state *r = pub ? pub->s : NULL;

	if (!r)
		return;
	free(r->edge);
	free(r->crcs);
	free(r);
	pub->s = NULL;
}

static int ensure_crcs(struct vol_req_state *r, uint64_t bytes)
{
	uint32_t n = (uint32_t)(bytes / BLK);

	if (n <= r->crcs_cap)
		return 0;
	free(r->crcs);
	r->crcs = malloc((size_t)n * sizeof *r->crcs);
	r->crcs_cap = r->crcs ? n : 0;
	return r->crcs ? 0 : -ENOMEM;
}

static int ensure_edge(struct vol_req_state *r)
{
	if (r->edge)
		return 0;
	if (posix_memalign((void **)&r->edge, BLK, BLK) != 0) {
		r->edge = NULL;
		return -ENOMEM;
	}
	return 0;
}

static void step_done(struct vol_req_state *r);
static void finish(struct vol_req_state *r, int res);

/* --- reading from one replica, with fallback and repair -------------- */

/* The replica to read from, of those not in skip: an in-sync, connected
 * one, without doubt if there is one, this node's first, then in order.
 * Resync picks its source the same way, so that a replica in doubt is made
 * equal to the copy that reads were served from. */
int vol_pick_reader(const struct vol *v, uint32_t skip)
{
	int best = -1, best_rank = 0;

	for (unsigned i = 0; i < v->nreps; i++) {
		const struct replica *rp = v->reps[i];
		int rank;

		if (!rp->in_sync || !rp->up || (skip & (1u << i)))
			continue;
		rank = (rp->doubt ? 0 : 2) + (rp->local || rp->near);
		if (best < 0 || rank > best_rank) {
			best = (int)i;
			best_rank = rank;
		}
	}
	return best;
}

static int pick_reader(struct vol_req_state *r)
{
	return vol_pick_reader(r->vol, r->tried);
}

static bool verify(const struct rep_io *io)
{
	const uint8_t *p = io->buf;

	for (uint64_t i = 0; i < io->len / BLK; i++)
		if (crc32c(p + i * BLK, BLK) != io->crcs[i])
			return false;
	return true;
}

static void read_done(struct rep_io *io, int res);

static bool issue_read(struct vol_req_state *r, uint64_t off, uint64_t len,
		       void *buf, uint32_t *crcs)
{
	struct rep_io *io = &r->sub[0];

	r->tried = r->bad = 0;
	*io = (struct rep_io){ .done = read_done, .priv = r, .op = REP_READ,
			       .off = off, .len = len, .buf = buf, .crcs = crcs };
	r->read_from = pick_reader(r);
	if (r->read_from < 0) {
		r->err = -EIO;
		return false;
	}
	r->pending = 1;
	replica_submit(r->vol->reps[r->read_from], io);
	return true;
}

static void repair_done(struct rep_io *io, int res)
{
	struct vol_req_state *r = io->priv;

	if (res == 0)
		r->vol->stats.repairs++;
	else
		log_warn("volume %s: repair of [%llu, +%llu) on %s failed: %s",
			 r->vol->name, (unsigned long long)io->off,
			 (unsigned long long)io->len, io->rep->node, strerror(-res));
	r->bad = 0;
	step_done(r);
}

/* Rewrite the bad copy with the good data before the lock is let go, so no
 * newer client write can be overwritten by it (invariant 10). */
static bool start_repair(struct vol_req_state *r)
{
	const struct rep_io *good = &r->sub[0];

	for (unsigned i = 0; i < r->vol->nreps; i++) {
		if (!(r->bad & (1u << i)))
			continue;
		r->bad = 1u << i;
		r->repair = (struct rep_io){ .done = repair_done, .priv = r,
					     .op = REP_WRITE, .off = good->off,
					     .len = good->len, .buf = good->buf,
					     .crcs = good->crcs };
		replica_submit(r->vol->reps[i], &r->repair);
		return true;
	}
	return false;
}

static void read_done(struct rep_io *io, int res)
{
	struct vol_req_state *r = io->priv;
	struct vol *v = r->vol;
	unsigned i = (unsigned)r->read_from;

	/* Data that crossed the network is checked here again (invariant 6). */
	if (res == 0 && !io->verified && !verify(io))
		res = -STORE_ECSUM;
	if (res == 0) {
		if (!(r->bad && start_repair(r)))
			step_done(r);
		return;
	}
	r->tried |= 1u << i;
	io->rep->errors++;
	if (res == -STORE_ECSUM) {
		v->stats.csum_errors++;
		r->bad |= 1u << i;
	}
	log_warn("volume %s: read [%llu, +%llu) from %s failed: %s%s", v->name,
		 (unsigned long long)io->off, (unsigned long long)io->len,
		 io->rep->node, strerror(-res),
		 pick_reader(r) >= 0 ? ", trying another replica" : "");
	r->read_from = pick_reader(r);
	if (r->read_from < 0) {
		finish(r, res == -STORE_ECSUM ? -EIO : res);
		return;
	}
	replica_submit(v->reps[r->read_from], io);
}

/* --- writing to every in-sync replica -------------------------------- */

static void fanout_done(struct rep_io *io, int res);

static void submit_to(struct vol_req_state *r, unsigned i)
{
	struct rep_io *io = &r->sub[i];

	io->done = fanout_done;
	io->priv = r;
	r->pending++;
	replica_submit(r->vol->reps[i], io);
}

/* The client's flags that op may carry: a replica refuses any other
 * (docs/replication-protocol.md). The edge blocks of a zero are WRITEs,
 * which take FUA but not NO_HOLE; a FLUSH is durable anyway. */
static unsigned rep_flags(enum rep_op op, unsigned vflags)
{
	bool mutates = op == REP_WRITE || op == REP_TRIM || op == REP_ZERO;

	return (mutates && (vflags & VOL_FUA) ? REP_FUA : 0) |
	       (op == REP_ZERO && (vflags & VOL_NO_HOLE) ? REP_NO_HOLE : 0);
}

static bool issue_fanout(struct vol_req_state *r, enum rep_op op, uint64_t off,
			 uint64_t len, void *buf, uint32_t *crcs)
{
	struct vol *v = r->vol;
	unsigned flags = rep_flags(op, r->flags);

	r->need = r->ok = r->refused = 0;
	r->refusal = 0;
	r->pending = 0;
	for (unsigned i = 0; i < v->nreps; i++) {
		r->sub[i] = (struct rep_io){ .op = op, .flags = flags, .off = off,
					     .len = len, .buf = buf, .crcs = crcs };
		if (v->reps[i]->in_sync)
			r->need |= 1u << i;
	}
	r->asked = r->need;
	if (!r->need) {
		r->err = -EIO;
		return false;
	}
	/* Replicas being resynced get every write too, but their answer does
	 * not decide the client's. */
	for (unsigned i = 0; i < v->nreps; i++)
		if ((r->need & (1u << i)) || v->reps[i]->receiving)
			submit_to(r, i);
	return true;
}

/* --- changes recorded in the metadata store --------------------------- */

static void wake_waiting(struct vol *v);

/* Ask the agent to record what; LEAVE and LOST hold back every write's
 * completion until they are answered (v->records). */
static void start_record(struct vol *v, unsigned i, enum vol_record what)
{
	if (what != VOL_REC_DOUBT)
		v->records++;
	v->reps[i]->records++;
	if (v->record)
		v->record(v, i, what, v->arg);
	else
		vol_recorded(v, i, what, 0);
}

void vol_recorded(struct vol *v, unsigned i, enum vol_record what, int res)
{
	struct replica *rp = v->reps[i];

	rp->records--;
	if (what != VOL_REC_DOUBT)
		v->records--;
	if (what == VOL_REC_LEAVE) {
		rp->leaving = false;
		if (res == 0 && rp->in_sync) {
			rp->in_sync = false;
			rp->doubt = false;
			v->stats.isr_removals++;
			log_warn("volume %s: replica %s left the in-sync set (%s)",
				 v->name, rp->node, rp->leave_why);
		}
	}
	if (res < 0)
		log_error("volume %s: replica %s: the metadata store did not record "
			  "a change: %s", v->name, rp->node, strerror(-res));
	wake_waiting(v);
}

/* A replica being resynced missed a write: whatever it copied so far can
 * no longer be trusted, and that is recorded before the write is
 * acknowledged (the resync checkpoint goes back to 0). */
static void receiving_lost(struct vol *v, unsigned i)
{
	struct replica *rp = v->reps[i];

	rp->receiving = false;
	log_warn("volume %s: replica %s missed a write during resync",
		 v->name, rp->node);
	start_record(v, i, VOL_REC_LOST);
}

/*
 * Does res say the request is bad rather than the replica? Every replica
 * checks a request alike, so what one refuses as invalid (-EINVAL: a flag,
 * alignment or range it may not carry) or unsupported (-EOPNOTSUPP) all
 * would. A WRITE whose data failed its CRC on arrival (-EBADMSG) is the
 * engine's fault when every replica saw it, the link's when one did;
 * either way that replica stored nothing. Anything else (I/O errors,
 * ENOSPC, timeouts, lost connections, fencing) is the replica's own.
 */
static bool rep_refused(const struct rep_io *io, int res)
{
	switch (res) {
	case -EINVAL:
	case -EOPNOTSUPP:
		return true;
	case -EBADMSG:
		return io->op == REP_WRITE;
	default:
		return false;
	}
}

/* In-sync replicas not on their way out. */
static unsigned staying_count(const struct vol *v)
{
	unsigned n = 0;

	for (unsigned i = 0; i < v->nreps; i++)
		n += v->reps[i]->in_sync && !v->reps[i]->leaving;
	return n;
}

int vol_isr_leave(struct vol *v, unsigned i, const char *why)
{
	struct replica *rp = v->reps[i];

	if (!rp->in_sync)
		return 0;
	if (rp->leaving)
		return -EINPROGRESS;
	if (staying_count(v) <= v->min_replicas)
		return -EBUSY;
	rp->leaving = true;
	rp->leave_why = why;
	start_record(v, i, VOL_REC_LEAVE);
	return rp->in_sync ? -EINPROGRESS : 0;
}

void vol_isr_join(struct vol *v, unsigned i)
{
	struct replica *rp = v->reps[i];

	if (!rp->receiving)
		return;  /* it missed a write since its resync: it stays out */
	rp->in_sync = true;
	rp->receiving = false;
	rp->doubt = false;
}

void vol_doubt_clear(struct vol *v, unsigned i)
{
	v->reps[i]->doubt = false;
}

/* Take failed replicas, except those in keep, out of the in-sync set while
 * at least min_replicas stay: at once, or once it is recorded (the request
 * waits for that). */
static void drop_failed(struct vol_req_state *r, uint32_t keep)
{
	for (unsigned i = 0; i < r->vol->nreps; i++)
		if ((r->need & ~keep & (1u << i)) &&
		    vol_isr_leave(r->vol, i, "it failed a request") == 0)
			r->need &= ~(1u << i);
}

/* Needed replicas that left the set meanwhile are needed no more. */
static void forget_departed(struct vol_req_state *r)
{
	for (unsigned i = 0; i < r->vol->nreps; i++)
		if (!r->vol->reps[i]->in_sync)
			r->need &= ~(1u << i);
}

static void arm_wait_timer(struct vol *v);

static void wait_for_replicas(struct vol_req_state *r)
{
	struct vol *v = r->vol;

	if (!r->deadline_ms) {
		r->deadline_ms = loop_now_ms() + v->write_timeout_ms;
		v->stats.write_waits++;
	}
	r->wait_next = v->waiting;
	v->waiting = r;
	arm_wait_timer(v);
}

static bool executed(const struct vol_req_state *r) { return r->ok & r->asked; }

/* A replica being resynced whose answer differs from the step's outcome
 * (it refused what the in-sync replicas executed, or executed what they
 * refused) no longer matches them. Its failures were handled on arrival. */
static void settle_receiving(struct vol_req_state *r)
{
	uint32_t odd = executed(r) ? r->refused : r->ok;

	for (unsigned i = 0; i < r->vol->nreps; i++) {
		struct replica *rp = r->vol->reps[i];

		if ((odd & ~r->asked & (1u << i)) && rp->receiving && !rp->in_sync)
			receiving_lost(r->vol, i);
	}
}

/* A write, trim or zero failed for good: an in-sync replica that did not
 * confirm it may lack what others applied, or may have applied part of it
 * (a timeout says nothing). Only one that refused it while nobody executed
 * it is known to be unchanged. Reads and resync then prefer the others,
 * and the doubt is lifted only by comparing it with one of them. */
static void mark_doubt(struct vol_req_state *r)
{
	struct vol *v = r->vol;
	uint32_t unsure = r->asked & ~r->ok & ~(executed(r) ? 0 : r->refused);

	if (r->sub[0].op == REP_FLUSH)
		return;
	for (unsigned i = 0; i < v->nreps; i++) {
		struct replica *rp = v->reps[i];

		if (!(unsure & (1u << i)) || !rp->in_sync || rp->doubt)
			continue;
		rp->doubt = true;
		log_warn("volume %s: replica %s may lack a failed write to "
			 "[%llu, +%llu): not read from until compared", v->name,
			 rp->node, (unsigned long long)r->sub[i].off,
			 (unsigned long long)r->sub[i].len);
		/* Not waited for: the client gets its error at once. */
		start_record(v, i, VOL_REC_DOUBT);
	}
}

/* The step ends: on to the next, or the request fails with res. */
static void fanout_end(struct vol_req_state *r, int res)
{
	settle_receiving(r);
	if (res < 0)
		mark_doubt(r);
	if (res < 0)
		finish(r, res);
	else
		step_done(r);
}

/* Every replica the step still needs has confirmed it: it may complete
 * once every change it caused is recorded (a departure, a lost resync
 * checkpoint), else it waits for them. */
static void fanout_ready(struct vol_req_state *r)
{
	settle_receiving(r);
	if (r->vol->records)
		wait_for_replicas(r);
	else
		fanout_end(r, 0);
}

/*
 * Refusers stay in the set only while no in-sync replica executed the
 * step: then the request itself is bad, and once every replica still
 * needed has refused it, it fails at once. If one did execute it, a
 * refuser lacks an acknowledged write and must leave (invariant 1), like
 * any failed replica.
 */
static void fanout_settle(struct vol_req_state *r)
{
	drop_failed(r, executed(r) ? 0 : r->refused);
	if (r->need && !executed(r) && !(r->need & ~r->refused)) {
		log_warn("volume %s: request on [%llu, +%llu) refused by every "
			 "replica: %s", r->vol->name, (unsigned long long)r->aoff,
			 (unsigned long long)(r->aend - r->aoff),
			 strerror(-r->refusal));
		fanout_end(r, r->refusal);
	} else if (r->need) {
		wait_for_replicas(r);
	} else {
		fanout_ready(r);
	}
}

static void fanout_done(struct rep_io *io, int res)
{
	struct vol_req_state *r = io->priv;
	uint32_t bit = 1u << (io - r->sub);

	r->refused &= ~bit;
	if (res == 0) {
		r->need &= ~bit;
		r->ok |= bit;
	} else if (rep_refused(io, res)) {
		io->rep->errors++;
		r->refused |= bit;
		if (!r->refusal)
			r->refusal = res;
	} else {
		io->rep->errors++;
		if (!io->rep->in_sync && io->rep->receiving)
			receiving_lost(r->vol, (unsigned)(io - r->sub));
	}
	if (--r->pending == 0)
		fanout_settle(r);
}

/* Retry a waiting write on the replicas it still needs. */
static void retry(struct vol_req_state *r)
{
	for (unsigned i = 0; i < r->vol->nreps; i++)
		if (r->need & (1u << i))
			submit_to(r, i);
}

/* A waiting write, again: done if nothing it needs is left; failed at its
 * deadline; else retried (on the timer's ticks) or kept waiting. */
static void recheck(struct vol_req_state *r, uint64_t now, bool tick)
{
	struct vol *v = r->vol;

	forget_departed(r);
	if (!r->need && !v->records) {
		fanout_ready(r);
	} else if (now >= r->deadline_ms) {
		if (r->need)
			log_error("volume %s: write to [%llu, +%llu) failed: fewer "
				  "than %u replicas for %llu ms", v->name,
				  (unsigned long long)r->aoff,
				  (unsigned long long)(r->aend - r->aoff),
				  v->min_replicas,
				  (unsigned long long)v->write_timeout_ms);
		else
			log_error("volume %s: write to [%llu, +%llu) failed: the "
				  "metadata store did not record a change for %llu ms",
				  v->name, (unsigned long long)r->aoff,
				  (unsigned long long)(r->aend - r->aoff),
				  (unsigned long long)v->write_timeout_ms);
		fanout_end(r, -EIO);
	} else if (r->need && tick) {
		retry(r);
	} else {
		wait_for_replicas(r);
	}
}

static void recheck_all(struct vol *v, bool tick)
{
	struct vol_req_state *list = v->waiting;
	uint64_t now = loop_now_ms();

	v->waiting = NULL;
	while (list) {
		struct vol_req_state *r = list;

		list = r->wait_next;
		recheck(r, now, tick);
	}
}

static void wait_tick(struct loop_timer *t)
{
	recheck_all((struct vol *)((char *)t - offsetof(struct vol, wait_timer)), true);
}

static void wake_task(struct loop_task *t)
{
	struct vol *v = (struct vol *)((char *)t - offsetof(struct vol, wake));

	v->wake_queued = false;
	recheck_all(v, false);
}

/* A change was recorded: waiting writes may go on (from the loop, never
 * inside the caller's frame). */
static void wake_waiting(struct vol *v)
{
	if (v->wake_queued || !v->waiting)
		return;
	v->wake_queued = true;
	v->wake.fn = wake_task;
	loop_defer(v->loop, &v->wake);
}

static void arm_wait_timer(struct vol *v)
{
	v->wait_timer.fn = wait_tick;
	loop_timer_arm(v->loop, &v->wait_timer, WAIT_TICK_MS);
}

/* The replica stays allocated for requests that still point at it, but
 * its connection goes: a second session of this engine on the same
 * replica would replace a live one, and a fenced engine has nothing to
 * say to its replicas. */
static void replica_disconnect(struct replica *r)
{
	repl_client_free(r->client);
	r->client = NULL;
	r->up = false;
	r->read_store = NULL;
}

void vol_fence(struct vol *v)
{
	v->fenced = true;
	for (unsigned i = 0; i < v->nreps; i++)
		replica_disconnect(v->reps[i]);
}

int vol_replace_replica(struct vol *v, unsigned i,
			const struct vol_replica_spec *spec)
{
	struct vol_replica_spec s = *spec;
	struct replica *r, *old;

	s.in_sync = false;
	if (i < v->nreps && v->reps[i]->records) {
		repl_client_free(spec->client);
		return -EAGAIN;  /* vol_recorded will still name index i */
	}
	if (i >= v->nreps || v->nretired == sizeof v->retired / sizeof v->retired[0]) {
		repl_client_free(spec->client);
		return -ENOSPC;
	}
	if (!(r = replica_from_spec(&s, v->loop)))
		return -ENOMEM;
	old = v->reps[i];
	old->in_sync = false;
	old->receiving = false;
	v->retired[v->nretired++] = old;
	v->reps[i] = r;
	replica_disconnect(old);
	log_info("volume %s: replica %u is now on %s", v->name, i, r->node);
	return 0;
}

void vol_replica_set_up(struct vol *v, unsigned i, bool up)
{
	v->reps[i]->up = up;
	if (up && v->waiting)
		wait_tick(&v->wait_timer);
}

void vol_replica_set_direct(struct vol *v, unsigned i, struct store *st,
			    uint64_t epoch)
{
	v->reps[i]->read_store = st;
	v->reps[i]->epoch = epoch;
}

/* --- steps ------------------------------------------------------------- */

static uint64_t req_end(const struct vol_req_state *r) { return r->off + r->len; }
static bool head_partial(const struct vol_req_state *r) { return r->off != r->aoff; }
static bool tail_partial(const struct vol_req_state *r) { return req_end(r) != r->aend; }
static uint64_t tail_block(const struct vol_req_state *r) { return r->aend - BLK; }

/* The whole span is one block, already covered by the head step. */
static bool tail_is_head(const struct vol_req_state *r)
{
	return head_partial(r) && tail_block(r) == r->aoff;
}

static bool issue_read_all(struct vol_req_state *r)
{
	return issue_read(r, r->aoff, r->aend - r->aoff, r->buf, r->crcs);
}

static bool issue_edge_read(struct vol_req_state *r, uint64_t block_off)
{
	return issue_read(r, block_off, BLK, r->edge, r->crcs);
}

static bool issue_w_head(struct vol_req_state *r)
{
	return head_partial(r) && issue_edge_read(r, r->aoff);
}

static void after_w_head(struct vol_req_state *r)
{
	memcpy(r->buf, r->edge, r->off - r->aoff);
	if (tail_is_head(r) && tail_partial(r))
		memcpy(r->buf + (req_end(r) - r->aoff), r->edge + (req_end(r) - r->aoff),
		       r->aend - req_end(r));
}

static bool issue_w_tail(struct vol_req_state *r)
{
	return tail_partial(r) && !tail_is_head(r) &&
	       issue_edge_read(r, tail_block(r));
}

static void after_w_tail(struct vol_req_state *r)
{
	uint64_t in_block = req_end(r) - tail_block(r);

	memcpy(r->buf + (req_end(r) - r->aoff), r->edge + in_block, BLK - in_block);
}

static bool issue_w_write(struct vol_req_state *r)
{
	uint64_t bytes = r->aend - r->aoff;

	/* CRCs are computed once, where data enters the engine. */
	crc32c_blocks(r->buf, bytes, r->crcs);
	return issue_fanout(r, REP_WRITE, r->aoff, bytes, r->buf, r->crcs);
}

/* Whole blocks strictly inside the client's range. */
static bool mid_range(const struct vol_req_state *r, uint64_t *lo, uint64_t *hi)
{
	*lo = align_up(r->off);
	*hi = align_down(req_end(r));
	return *lo < *hi;
}

static bool issue_z_head_read(struct vol_req_state *r)
{
	return head_partial(r) && issue_edge_read(r, r->aoff);
}

static bool issue_edge_write(struct vol_req_state *r, uint64_t block_off)
{
	r->crcs[0] = crc32c(r->edge, BLK);
	return issue_fanout(r, REP_WRITE, block_off, BLK, r->edge, r->crcs);
}

static bool issue_z_head_write(struct vol_req_state *r)
{
	uint64_t from = r->off - r->aoff;
	uint64_t to = req_end(r) - r->aoff;

	if (!head_partial(r))
		return false;
	memset(r->edge + from, 0, (to < BLK ? to : BLK) - from);
	return issue_edge_write(r, r->aoff);
}

static bool issue_z_mid(struct vol_req_state *r)
{
	uint64_t lo, hi;

	if (!mid_range(r, &lo, &hi))
		return false;
	return issue_fanout(r, r->op == VOL_TRIM ? REP_TRIM : REP_ZERO, lo,
			    hi - lo, NULL, NULL);
}

static bool issue_z_tail_read(struct vol_req_state *r)
{
	return tail_partial(r) && !tail_is_head(r) &&
	       issue_edge_read(r, tail_block(r));
}

static bool issue_z_tail_write(struct vol_req_state *r)
{
	if (!tail_partial(r) || tail_is_head(r))
		return false;
	memset(r->edge, 0, req_end(r) - tail_block(r));
	return issue_edge_write(r, tail_block(r));
}

static bool issue_flush(struct vol_req_state *r)
{
	return issue_fanout(r, REP_FLUSH, 0, 0, NULL, NULL);
}

static const struct step read_steps[] = {
	{ issue_read_all, NULL }, { NULL, NULL },
};
static const struct step write_steps[] = {
	{ issue_w_head, after_w_head },
	{ issue_w_tail, after_w_tail },
	{ issue_w_write, NULL },
	{ NULL, NULL },
};
static const struct step zero_steps[] = {
	{ issue_z_head_read, NULL },
	{ issue_z_head_write, NULL },
	{ issue_z_mid, NULL },
	{ issue_z_tail_read, NULL },
	{ issue_z_tail_write, NULL },
	{ NULL, NULL },
};
/* Partial blocks of a trim are left alone: trim is advisory. */
static const struct step trim_steps[] = {
	{ issue_z_mid, NULL }, { NULL, NULL },
};
static const struct step flush_steps[] = {
	{ issue_flush, NULL }, { NULL, NULL },
};

static const struct step *steps_for(enum vol_op op)
{
	switch (op) {
	case VOL_READ: return read_steps;
	case VOL_WRITE: return write_steps;
	case VOL_ZERO: return zero_steps;
	case VOL_TRIM: return trim_steps;
	case VOL_FLUSH: return flush_steps;
	}
	return NULL;
}

/* --- driving a request ----------------------------------------------- */

const uint64_t vol_lat_bounds_us[VOL_LAT_BUCKETS - 1] = {
	100, 250, 500, 1000, 2500, 5000, 10000, 50000, 250000, 1000000,
};

static uint64_t mono_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static void count_latency(struct vol *v, const struct vol_req_state *r)
{
	uint64_t us = mono_us() - r->t0_us;
	unsigned i = 0;

	while (i < VOL_LAT_BUCKETS - 1 && us > vol_lat_bounds_us[i])
		i++;
	v->stats.lat_buckets[i]++;
	v->stats.lat_sum_us += us;
}

static void finish(struct vol_req_state *r, int res)
{
	struct vol *v = r->vol;

	/* A read may have waited long behind a write: its data is answered
	 * only if the lease still holds now (docs/architecture.md). */
	if (res == 0 && r->op == VOL_READ && !vol_leased(v, loop_now_ms())) {
		log_warn("volume %s: read of [%llu, +%llu) refused: the read "
			 "lease ran out while it ran", v->name,
			 (unsigned long long)r->off, (unsigned long long)r->len);
		res = -EIO;
	}
	if (r->lock.granted)
		rl_release(&v->lock, &r->lock);
	r->lock.granted = false;
	if (res < 0)
		v->stats.io_errors++;
	count_latency(v, r);
	v->inflight--;
	r->pub->done(r->pub, res);
}

static void advance(struct vol_req_state *r)
{
	const struct step *steps = steps_for(r->op);

	r->err = 0;
	while (steps[r->step].issue) {
		if (steps[r->step].issue(r))
			return;
		if (r->err < 0) {
			finish(r, r->err);
			return;
		}
		r->step++;
	}
	finish(r, 0);
}

static void step_done(struct vol_req_state *r)
{
	const struct step *steps = steps_for(r->op);

	r->err = 0;
	if (steps[r->step].after)
		steps[r->step].after(r);
	if (r->err < 0) {
		finish(r, r->err);
		return;
	}
	r->step++;
	advance(r);
}

static void lock_granted(struct rl_entry *e)
{
	advance((struct vol_req_state *)((char *)e - offsetof(struct vol_req_state, lock)));
}

static void finish_task(struct loop_task *t)
{
	struct vol_req_state *r = (struct vol_req_state *)((char *)t - offsetof(struct vol_req_state, task));

	finish(r, r->err);
}

/* Complete from the loop, never inside vol_submit. */
static void finish_later(struct vol_req_state *r, int res)
{
	r->err = res;
	r->task.fn = finish_task;
	loop_defer(r->vol->loop, &r->task);
}

static int prepare(struct vol_req_state *r)
{
	uint64_t crc_bytes = r->op == VOL_READ || r->op == VOL_WRITE
				     ? r->aend - r->aoff : BLK;

	if (ensure_crcs(r, crc_bytes < BLK ? BLK : crc_bytes) < 0)
		return -ENOMEM;
	if ((r->op == VOL_WRITE || r->op == VOL_ZERO) &&
	    (head_partial(r) || tail_partial(r)))
		return ensure_edge(r);
	return 0;
}

static void count(struct vol *v, const struct vol_req_state *r)
{
	switch (r->op) {
	case VOL_READ: v->stats.reads++; v->stats.read_bytes += r->len; break;
	case VOL_WRITE:
		v->stats.writes++;
		v->stats.write_bytes += r->len;
		if (head_partial(r) || tail_partial(r))
			v->stats.rmw++;
		break;
	case VOL_ZERO: v->stats.zeroes++; break;
	case VOL_TRIM: v->stats.trims++; break;
	case VOL_FLUSH: v->stats.flushes++; break;
	}
}

/* A trim inside one block has nothing to do (partial blocks are kept). */
static bool trim_is_noop(const struct vol_req_state *r)
{
	uint64_t lo, hi;

	return r->op == VOL_TRIM && !mid_range(r, &lo, &hi);
}

static void start(struct vol_req_state *r);
static void lease_wait(struct vol_req_state *r);

static void no_state_task(struct loop_task *t)
{
	struct vol_req *pub = (struct vol_req *)((char *)t - offsetof(struct vol_req, task));

	pub->done(pub, -ENOMEM);
}

void vol_submit(struct vol *v, struct vol_req *pub, enum vol_op op,
		uint64_t off, uint64_t len, uint8_t *buf, unsigned flags)
{
	struct vol_req_state *r = pub->s;
	int ret;

	if (!r && !(r = pub->s = calloc(1, sizeof *r))) {
		pub->task.fn = no_state_task;
		loop_defer(v->loop, &pub->task);
		return;
	}
	r->pub = pub;
	r->vol = v;
	r->t0_us = mono_us();
	r->op = op;
	r->off = off;
	r->len = len;
	r->aoff = align_down(off);
	r->aend = align_up(off + len);
	r->buf = buf;
	r->flags = flags;
	r->step = 0;
	r->deadline_ms = 0;
	r->lease_deadline_ms = 0;
	r->lock.granted = false;
	v->inflight++;
	count(v, r);
	ret = v->fenced ? -ESTALE : prepare(r);
	if (ret < 0 || (len == 0 && op != VOL_FLUSH) || trim_is_noop(r)) {
		finish_later(r, ret);
		return;
	}
	if (!vol_leased(v, loop_now_ms())) {
		lease_wait(r);
		return;
	}
	start(r);
}

static void start(struct vol_req_state *r)
{
	struct vol *v = r->vol;

	if (r->op == VOL_FLUSH) {  /* covers completed writes: no lock needed */
		advance(r);
		return;
	}
	r->lock.grant = lock_granted;
	if (rl_acquire(&v->lock, &r->lock, r->aoff / BLK, r->aend / BLK,
		       r->op != VOL_READ))
		advance(r);
}

/* --- read leases (docs/architecture.md) --------------------------------- */

/* Can this engine answer at now: do more than half of the replicas grant
 * it a read lease, with what they granted older epochs run out? Then no
 * other engine can have acknowledged a write it cannot see. */
bool vol_leased(struct vol *v, uint64_t now)
{
	unsigned n = 0;

	if (!v->read_leases)
		return true;
	for (unsigned i = 0; i < v->nreps; i++)
		n += repl_client_leased(v->reps[i]->client, now);
	if (2 * n > v->nreps) {
		if (v->lease_lost_logged)
			log_info("volume %s: read lease held again (%u of %u "
				 "replicas)", v->name, n, v->nreps);
		v->lease_lost_logged = false;
		return true;
	}
	return false;
}

static void lease_tick(struct loop_timer *t);

static void lease_wait(struct vol_req_state *r)
{
	struct vol *v = r->vol;

	/* Longer than a write waits: a replica process that has just started
	 * makes engines wait up to REPL_LEASE_MAX_MS before it grants one. */
	if (!r->lease_deadline_ms)
		r->lease_deadline_ms = loop_now_ms() + v->write_timeout_ms +
				       REPL_LEASE_MAX_MS;
	if (!v->lease_lost_logged) {
		log_warn("volume %s: no read lease from a majority of the "
			 "replicas: requests wait (up to %llu ms)", v->name,
			 (unsigned long long)v->write_timeout_ms +
				 REPL_LEASE_MAX_MS);
		v->lease_lost_logged = true;
	}
	r->wait_next = NULL;
	if (!v->lease_waiting_tail)
		v->lease_waiting_tail = &v->lease_waiting;
	*v->lease_waiting_tail = r;
	v->lease_waiting_tail = &r->wait_next;
	v->lease_timer.fn = lease_tick;
	loop_timer_arm(v->loop, &v->lease_timer, LEASE_TICK_MS);
}

static void lease_tick(struct loop_timer *t)
{
	struct vol *v = (struct vol *)((char *)t - offsetof(struct vol, lease_timer));
	struct vol_req_state *list = v->lease_waiting;
	uint64_t now = loop_now_ms();
	bool leased = vol_leased(v, now);

	v->lease_waiting = NULL;
	v->lease_waiting_tail = NULL;  /* those still waiting queue again, in order */
	while (list) {
		struct vol_req_state *r = list;

		list = r->wait_next;
		if (v->fenced)
			finish(r, -ESTALE);
		else if (leased)
			start(r);
		else if (now >= r->lease_deadline_ms)
			finish(r, -EIO);
		else
			lease_wait(r);
	}
}

/* The store's extents in the engine's form. */
static int store_vol_extents(struct store *st, uint64_t off, uint64_t len,
			     struct vol_extent *ext, int max)
{
	struct store_extent *se = malloc((size_t)max * sizeof *se);
	int n = se ? store_extents(st, off, len, se, max) : -ENOMEM;

	for (int i = 0; i < n; i++)
		ext[i] = (struct vol_extent){ se[i].off, se[i].len, se[i].hole };
	free(se);
	return n;
}

/* Without a store to ask, all of it is reported as data: allocation is a
 * hint, and "data" is never wrong. */
int vol_extents(struct vol *v, uint64_t off, uint64_t len,
		struct vol_extent *ext, int max)
{
	struct store *st = vol_store(v);
	int ret = -ENOTSUP;

	if (max < 1)
		return 0;
	if (!st && v->extents_store)
		st = v->extents_store(v->arg);
	if (st)
		ret = store_vol_extents(st, off, len, ext, max);
	if (ret != -ENOTSUP)
		return ret;
	ext[0] = (struct vol_extent){ .off = off, .len = len, .hole = false };
	return 1;
}
