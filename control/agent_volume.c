/*
 * One volume attached to this node (see agent_int.h): its engine, its
 * export, the resyncs and scrubs it runs, and the changes of its replicas
 * it records in the metadata store (always through a job: never on the
 * loop).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "agent_int.h"
#include "log.h"
#include "reconcile.h"
#include "repl_client.h"
#include "repl_service.h"
#include "scrub.h"

/* --- recording a replica's state ---------------------------------------- */

enum rec_kind {
	REC_LEAVE,       /* out of the in-sync set (the engine's VOL_REC_LEAVE) */
	REC_LOST,        /* checkpoint back to 0 (VOL_REC_LOST) */
	REC_DOUBT,       /* in doubt (VOL_REC_DOUBT) */
	REC_CHECKPOINT,  /* resync progress */
	REC_JOIN,        /* back in the in-sync set after a resync */
	REC_COMPARED,    /* doubt lifted after a compare */
};

struct rec_job {
	struct metaq_job j;
	struct served *s;
	unsigned idx;
	enum rec_kind kind;
	/* Copies for the worker. */
	char name[CLUSTER_NAME_MAX], node[CLUSTER_NAME_MAX];
	uint64_t epoch, pos;
	enum cluster_replica_state state;
	struct cluster_volume out;
};

static int rec_run(struct meta *m, struct metaq_job *job)
{
	struct rec_job *r = (struct rec_job *)job;

	switch (r->kind) {
	case REC_DOUBT:
	case REC_COMPARED:
		return cluster_volume_set_replica_doubt(m, r->name, r->node,
							r->kind == REC_DOUBT,
							r->epoch, &r->out);
	default:
		/* The epoch check fences an engine another node replaced. */
		return cluster_volume_set_replica_state(m, r->name, r->node, r->state,
							r->pos, r->epoch, &r->out);
	}
}

static const enum vol_record vol_rec_of[] = {
	[REC_LEAVE] = VOL_REC_LEAVE, [REC_LOST] = VOL_REC_LOST,
	[REC_DOUBT] = VOL_REC_DOUBT,
};

static void rec_done(struct metaq_job *job, int res)
{
	struct rec_job *r = (struct rec_job *)job;
	struct served *s = r->s;

	/* Keep our copy of the placement current: later records start from it. */
	if (res == 0)
		memcpy(s->rec.placement, r->out.placement, sizeof s->rec.placement);
	if (res < 0)
		log_error("volume %s: cannot record replica %s's state: %s",
			  s->rec.name, r->node, strerror(-res));
	switch (r->kind) {
	case REC_LEAVE:
	case REC_LOST:
	case REC_DOUBT:
		vol_recorded(s->vol, r->idx, vol_rec_of[r->kind], res);
		break;
	case REC_JOIN:
		s->joining[r->idx] = false;
		if (res == 0) {
			vol_isr_join(s->vol, r->idx);
			log_info("volume %s: replica %s is in sync again (%u in sync)",
				 s->rec.name, r->node, vol_in_sync_count(s->vol));
		}
		break;
	case REC_COMPARED:
		s->joining[r->idx] = false;
		if (res == 0) {
			vol_doubt_clear(s->vol, r->idx);
			log_info("volume %s: replica %s compared and brought level, "
				 "no longer in doubt", s->rec.name, r->node);
		}
		break;
	case REC_CHECKPOINT:
		break;
	}
	free(r);
}

/* Record kind for replica i (on the worker, in order with the others);
 * without memory for the job, the engine is answered -ENOMEM. */
static void record(struct served *s, unsigned i, enum rec_kind kind, uint64_t pos)
{
	struct rec_job *r = calloc(1, sizeof *r);
	static const enum cluster_replica_state state_of[] = {
		[REC_LEAVE] = CLUSTER_REPLICA_OUT_OF_SYNC,
		[REC_JOIN] = CLUSTER_REPLICA_IN_SYNC,
	};

	if (!r) {
		log_error("volume %s: out of memory recording a replica's state",
			  s->rec.name);
		if (kind <= REC_DOUBT)
			vol_recorded(s->vol, i, vol_rec_of[kind], -ENOMEM);
		if (kind == REC_JOIN || kind == REC_COMPARED)
			s->joining[i] = false;
		return;
	}
	*r = (struct rec_job){ .j = { .run = rec_run, .done = rec_done },
			       .s = s, .idx = i, .kind = kind,
			       .epoch = s->rec.epoch, .pos = pos };
	snprintf(r->name, sizeof r->name, "%s", s->rec.name);
	snprintf(r->node, sizeof r->node, "%s", s->rec.placement[i].node);
	/* A checkpoint or a lost one keeps the state the record has now. */
	r->state = kind == REC_LEAVE || kind == REC_JOIN ? state_of[kind]
							 : s->rec.placement[i].state;
	agent_submit(s->cm, &r->j);
}

/* The engine's hook (vol_record_fn). */
static void engine_record(struct vol *v, unsigned i, enum vol_record what, void *arg)
{
	struct served *s = arg;

	switch (what) {
	case VOL_REC_LEAVE:
		record(s, i, REC_LEAVE, 0);
		break;
	case VOL_REC_LOST:
		/* Always recorded, even without a checkpoint: it lands after a
		 * REC_JOIN that may still be on its way (the join then does not
		 * happen in memory, and the record ends out of sync). */
		record(s, i, REC_LOST, 0);
		break;
	case VOL_REC_DOUBT:
		record(s, i, REC_DOUBT, 0);
		break;
	}
}

/* --- resync ----------------------------------------------------------------- */

static void resync_progress(struct resync *job, uint64_t pos, void *arg)
{
	struct rep_ctx *ctx = arg;

	record(ctx->s, ctx->idx, REC_CHECKPOINT, pos);
}

static void resync_done(struct resync *job, int res, void *arg)
{
	struct rep_ctx *ctx = arg;
	struct served *s = ctx->s;
	struct vol_replica_info ri;

	s->jobs[ctx->idx] = NULL;
	agent_progress_job_ended(s, (int)ctx->idx);
	if (res < 0)
		return;  /* retried on a later tick */
	vol_replica_info(s->vol, ctx->idx, &ri);
	/* Writes keep reaching it until the record says in sync: no write
	 * falls between the resync and the join. */
	s->joining[ctx->idx] = true;
	record(s, ctx->idx, ri.in_sync ? REC_COMPARED : REC_JOIN, 0);
}

/* Resync every connected replica that is not in sync, or in sync but in
 * doubt (a whole compare, no checkpoints: it stays in the set), and has no
 * job. */
static unsigned in_sync_up(struct vol *v);

/* Before export, resync only when the engine cannot start otherwise: fewer
 * than min_replicas in sync are connected, so an unreachable in-sync one
 * cannot leave until a returning replica has caught up from the others
 * (which hold every acknowledged write: each was on min_replicas). */
static bool may_resync(struct served *s)
{
	return s->exported ||
	       (!s->fenced && in_sync_up(s->vol) < (unsigned)s->rec.min_replicas &&
		in_sync_up(s->vol) > 0);
}

static void start_resyncs(struct served *s)
{
	for (unsigned i = 0; may_resync(s) && i < vol_nreplicas(s->vol); i++) {
		struct vol_replica_info ri;
		struct resync_opts o;

		vol_replica_info(s->vol, i, &ri);
		if ((ri.in_sync && !ri.doubt) || !ri.up || s->jobs[i] || s->joining[i])
			continue;
		o = (struct resync_opts){
			.target = i,
			.from = ri.receiving ? s->rec.placement[i].rebuild_done : 0,
			.rate_bps = s->cm->opts.resync_rate_bps,
			.on_progress = ri.in_sync ? NULL : resync_progress,
			.on_done = resync_done,
			.arg = &s->ctx[i],
		};
		s->jobs[i] = resync_start(s->vol, &o);
	}
}

/* --- scrub --------------------------------------------------------------------- */

/* Scrub requests travel through the metadata store: triplexctl puts
 * {"state":"requested"} under /triplex/scrub/NAME, the engine answers with
 * "running", then "done" or "failed" and the report. */
struct put_job {
	struct metaq_job j;
	struct agent *cm;
	char key[160];
	char *val;             /* NULL: delete */
	int64_t lease;
};

static int put_run(struct meta *m, struct metaq_job *job)
{
	struct put_job *p = (struct put_job *)job;
	int r;

	if (!p->val) {
		r = meta_del(m, p->key, -1);
		return r == -ENOENT ? 0 : r;
	}
	return meta_put(m, p->key, p->val, strlen(p->val), -1, p->lease, NULL);
}

static void put_done(struct metaq_job *job, int res)
{
	struct put_job *p = (struct put_job *)job;

	if (res < 0)
		log_warn("metadata store: cannot write %s: %s", p->key, strerror(-res));
	p->cm->puts_out--;
	free(p->val);
	free(p);
}

void agent_put(struct agent *cm, const char *key, const char *val,
	       bool with_lease)
{
	struct put_job *p = calloc(1, sizeof *p);

	if (!p || (val && !(p->val = strdup(val)))) {
		free(p);
		log_warn("metadata store: no memory to write %s", key);
		return;
	}
	p->j = (struct metaq_job){ .run = put_run, .done = put_done };
	p->cm = cm;
	snprintf(p->key, sizeof p->key, "%s", key);
	p->lease = with_lease ? cm->lease : 0;
	cm->puts_out++;
	agent_submit(cm, &p->j);
}

static const char *replica_node(const struct served *s, int idx)
{
	struct vol_replica_info ri = { 0 };

	if (idx < 0)
		return NULL;
	vol_replica_info(s->vol, (unsigned)idx, &ri);
	return ri.node ? ri.node : "?";
}

/* The runs of blocks each replica had wrong, as a JSON array. Node ids
 * are checked names (letters, digits, -_.): no escaping needed. */
static int put_findings(const struct served *s, const struct scrub_report *r,
			char *out, size_t len)
{
	int n = snprintf(out, len, ",\"findings\":[");

	for (unsigned k = 0; k < r->nfindings && (size_t)n < len; k++) {
		const struct scrub_finding *f = &r->findings[k];
		const char *src = replica_node(s, f->source);

		n += snprintf(out + n, len - (size_t)n,
			      "%s{\"node\":\"%s\",\"first_block\":%llu,"
			      "\"blocks\":%llu,\"problem\":\"%s\","
			      "\"repaired_from\":%s%s%s}", k ? "," : "",
			      replica_node(s, (int)f->replica),
			      (unsigned long long)f->block,
			      (unsigned long long)f->blocks,
			      f->bad ? "checksum" : "mismatch", src ? "\"" : "",
			      src ? src : "null", src ? "\"" : "");
	}
	if ((size_t)n < len)
		n += snprintf(out + n, len - (size_t)n, "],\"findings_dropped\":%llu",
			      (unsigned long long)r->findings_dropped);
	return n;
}

static void scrub_put(struct served *s, const char *state, const struct scrub_report *r)
{
	char key[160], val[8192];
	int n;

	snprintf(key, sizeof key, "/triplex/scrub/%s", s->rec.name);
	n = snprintf(val, sizeof val, "{\"state\":\"%s\"", state);
	if (r)
		n += snprintf(val + n, sizeof val - (size_t)n,
			      ",\"bytes_scrubbed\":%llu,\"blocks_checked\":%llu,"
			      "\"bad_blocks\":%llu,\"mismatched_blocks\":%llu,"
			      "\"repaired_blocks\":%llu,\"unrepaired_blocks\":%llu",
			      (unsigned long long)r->bytes_scrubbed,
			      (unsigned long long)r->blocks_checked,
			      (unsigned long long)r->bad_blocks,
			      (unsigned long long)r->mismatched_blocks,
			      (unsigned long long)r->repaired_blocks,
			      (unsigned long long)r->unrepaired_blocks);
	if (r && (size_t)n < sizeof val)
		n += put_findings(s, r, val + n, sizeof val - (size_t)n);
	if ((size_t)n >= sizeof val - 1)
		n = (int)sizeof val - 2;  /* cannot happen: 32 findings fit */
	snprintf(val + n, sizeof val - (size_t)n, "}");
	agent_put(s->cm, key, val, false);
}

static void scrubbed(int res, const struct scrub_report *r, void *arg)
{
	struct served *s = arg;

	s->scrub = NULL;
	agent_progress_job_ended(s, -1);
	scrub_put(s, res == 0 ? "done" : "failed", r);
}

static void maybe_scrub(struct served *s, const char *request)
{
	if (!s->exported || s->scrub || !request ||
	    !strstr(request, "\"requested\""))
		return;
	scrub_put(s, "running", NULL);
	if (scrub_start(s->vol, s->cm->opts.resync_rate_bps, scrubbed, s,
			&s->scrub) < 0) {
		s->scrub = NULL;
		scrub_put(s, "failed", NULL);
	}
}

/* --- connections to the replicas ------------------------------------------ */

static void maybe_export(struct served *s);

static void replica_state(struct repl_client *c, bool up, int err, void *arg)
{
	struct rep_ctx *ctx = arg;
	struct vol *v = ctx->s->vol;
	struct vol_replica_info ri;

	if (!v || !vol_replica_has_client(v, ctx->idx, c))
		return;  /* not built yet, or a replica `volume replace` retired */
	vol_replica_info(v, ctx->idx, &ri);
	if (up) {
		ctx->opened_once = true;
		if (ri.near)  /* reads may now skip the socketpair */
			vol_replica_set_direct(v, ctx->idx,
					       repl_service_store(ctx->s->cm->svc,
								  ctx->s->rec.id),
					       ctx->s->rec.epoch);
		vol_replica_set_up(v, ctx->idx, true);
		maybe_export(ctx->s);
	} else {
		vol_replica_set_up(v, ctx->idx, false);
		log_warn("volume %s: replica %s unreachable: %s", ctx->s->rec.name,
			 ri.node, strerror(-err));
	}
}

/* Its node has no replica of the volume (lost, or damaged and moved
 * aside): an in-sync one leaves the set (recorded), after which the OPEN
 * may create it and it is rebuilt. */
static void replica_refused(struct repl_client *c, int err, void *arg)
{
	struct rep_ctx *ctx = arg;
	struct vol *v = ctx->s->vol;

	if (err != -ENOENT || !v || !vol_replica_has_client(v, ctx->idx, c))
		return;
	vol_isr_leave(v, ctx->idx, "its replica is missing on its node");
}

/* The replica on this node is reached through this process's replica
 * service over a socketpair, so that it is fenced exactly like the others:
 * an old engine here cannot write to it once a newer one has attached. */
static int local_connect(void *arg)
{
	struct rep_ctx *ctx = arg;
	int sv[2];

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
		return -errno;
	if (repl_service_add_fd(ctx->s->cm->svc, sv[0]) < 0) {
		close(sv[1]);
		return -ESHUTDOWN;
	}
	return sv[1];
}

/* A replica may be created where it is absent only when it is not in sync
 * (it is about to be rebuilt), or on the very first open of a new volume
 * (epoch 1). Anywhere else an absent in-sync replica means lost files: it
 * must fail, leave the in-sync set, and be rebuilt. */
static bool may_create(void *arg)
{
	struct rep_ctx *ctx = arg;
	struct served *s = ctx->s;
	struct vol_replica_info ri;

	if (s->vol) {
		vol_replica_info(s->vol, ctx->idx, &ri);
		if (!ri.in_sync)
			return true;
	} else if (s->rec.placement[ctx->idx].state != CLUSTER_REPLICA_IN_SYNC) {
		return true;
	}
	return s->rec.epoch == 1 && !ctx->opened_once;
}

/* The spec of replica i: a connection to its node (this node's through
 * the socketpair), its state from the record. */
static void replica_spec(struct served *s, unsigned i, struct vol_replica_spec *out)
{
	struct agent *cm = s->cm;
	const struct cluster_replica *p = &s->rec.placement[i];
	bool near = strcmp(p->node, cm->node.id) == 0;
	const struct cluster_node *peer = near ? NULL : agent_node(cm, p->node);
	struct repl_client_opts o = {
		.node_id = cm->node.id,
		.volume_id = s->rec.id,
		.volume_name = s->rec.name,
		.volume_size = s->rec.size,
		.epoch = s->rec.epoch,
		.io_timeout_ms = cm->opts.io_timeout_ms,
		.lease_ms = cm->opts.read_lease_ms,
		.on_state = replica_state,
		.on_refused = replica_refused,
		.may_create = may_create,
		.arg = &s->ctx[i],
	};
	bool in_sync = p->state == CLUSTER_REPLICA_IN_SYNC;

	s->ctx[i] = (struct rep_ctx){ s, i, false };
	*out = (struct vol_replica_spec){
		.node = p->node, .near = near, .in_sync = in_sync,
		.doubt = in_sync && p->doubt,
		/* A resync checkpoint stays valid only if the replica gets every
		 * write from now on: send them from the start. */
		.receiving = !in_sync && p->rebuild_done > 0,
	};
	if (near) {
		o.addr = "local";
		o.connect_fd = local_connect;
		out->client = repl_client_new(cm->loop, &o);
	} else if (peer) {
		o.addr = peer->repl_addr;
		o.tls = cm->opts.repl_tls_client;
		o.peer_node = p->node;
		out->client = repl_client_new(cm->loop, &o);
	} else {
		log_warn("volume %s: replica node %s is not registered", s->rec.name,
			 p->node);
	}
}

static struct store *extents_store(void *arg)
{
	struct served *s = arg;

	return repl_service_store(s->cm->svc, s->rec.id);
}

static int build_engine(struct served *s)
{
	struct agent *cm = s->cm;
	struct vol_replica_spec reps[CLUSTER_MAX_REPLICAS];
	struct vol_config cfg = {
		.name = s->rec.name,
		.size = s->rec.size,
		.min_replicas = (unsigned)s->rec.min_replicas,
		.write_timeout_ms = cm->opts.write_timeout_ms,
		.record = engine_record,
		.extents_store = extents_store,
		.arg = s,
		.read_leases = true,
	};
	unsigned n = (unsigned)s->rec.nplacement;

	for (unsigned i = 0; i < n; i++)
		replica_spec(s, i, &reps[i]);
	/* Connections come up from the loop, once the engine exists. */
	s->vol = vol_new_replicated(&cfg, cm->loop, reps, n);
	return s->vol ? 0 : -ENOMEM;
}

/* --- export ------------------------------------------------------------------- */

static unsigned in_sync_up(struct vol *v)
{
	struct vol_replica_info ri;
	unsigned n = 0;

	for (unsigned i = 0; i < vol_nreplicas(v); i++) {
		vol_replica_info(v, i, &ri);
		n += ri.in_sync && ri.up;
	}
	return n;
}

static void export_now(struct served *s)
{
	int ret = s->cm->opts.export_vol(s->cm->opts.export_arg, s->vol);

	if (ret < 0) {
		log_error("volume %s: cannot export: %s", s->rec.name, strerror(-ret));
		return;
	}
	s->exported = true;
	log_info("volume %s: exported at epoch %llu, %u of %d replicas in sync "
		 "and connected", s->rec.name, (unsigned long long)s->rec.epoch,
		 in_sync_up(s->vol), s->rec.nplacement);
}

static void reconciled(int res, uint64_t copied, void *arg)
{
	struct served *s = arg;

	s->reconciling = false;
	if (res < 0) {
		log_warn("volume %s: reconcile incomplete (%s), retrying",
			 s->rec.name, strerror(-res));
		return;
	}
	log_info("volume %s: replicas reconciled, %llu bytes copied", s->rec.name,
		 (unsigned long long)copied);
	s->reconciled = true;
	export_now(s);
}

/* An in-sync replica that is not connected cannot be reconciled: it leaves
 * the in-sync set before we serve, or we wait (min_replicas, or the leave
 * being recorded). */
static bool drop_unreachable(struct served *s)
{
	bool all = true;

	for (unsigned i = 0; i < vol_nreplicas(s->vol); i++) {
		struct vol_replica_info ri;

		vol_replica_info(s->vol, i, &ri);
		if (ri.in_sync && !ri.up &&
		    vol_isr_leave(s->vol, i, "unreachable at attach") < 0)
			all = false;
	}
	return all;
}

/* In-sync replicas that can come up: a replica whose node was not
 * registered when the engine started has no connection to wait for. */
static unsigned in_sync_reachable(struct vol *v)
{
	struct vol_replica_info ri;
	unsigned n = 0;

	for (unsigned i = 0; i < vol_nreplicas(v); i++) {
		vol_replica_info(v, i, &ri);
		n += ri.in_sync && !vol_replica_has_client(v, i, NULL);
	}
	return n;
}

/* Serve once every in-sync replica that can connect is connected (or
 * AGENT_EXPORT_WAIT_TICKS passed) and, for a volume that was served before
 * (epoch > 1), once the
 * regions that may have had writes in flight agree on every in-sync
 * replica (invariant 4). */
static void maybe_export(struct served *s)
{
	unsigned up;
	int ret;

	if (!s->vol || s->fenced || s->exported || s->reconciling)
		return;
	up = in_sync_up(s->vol);
	if (up < in_sync_reachable(s->vol) &&
	    s->waited_ticks < AGENT_EXPORT_WAIT_TICKS)
		return;
	if (s->rec.epoch <= 1 || s->reconciled) {
		export_now(s);
		return;
	}
	if (!drop_unreachable(s))
		return;
	s->reconciling = true;
	ret = reconcile_start(s->vol, reconciled, s);
	if (ret < 0) {
		s->reconciling = false;
		log_warn("volume %s: cannot reconcile yet: %s", s->rec.name,
			 strerror(-ret));
	}
}

void agent_volume_tick(struct served *s, const char *scrub)
{
	if (s->fenced || s->starting)
		return;
	s->waited_ticks++;
	maybe_export(s);
	start_resyncs(s);
	maybe_scrub(s, scrub);
	agent_progress_tick(s);
}

/* --- starting to serve ----------------------------------------------------------- */

struct serve_job {
	struct metaq_job j;
	struct served *s;
	char name[CLUSTER_NAME_MAX], node[CLUSTER_NAME_MAX];
	uint64_t seen_epoch;
	struct cluster_volume out;
};

static int serve_run(struct meta *m, struct metaq_job *job)
{
	struct serve_job *sj = (struct serve_job *)job;

	return cluster_volume_start_serving(m, sj->name, sj->node, &sj->out);
}

static void serve_done(struct metaq_job *job, int res)
{
	struct serve_job *sj = (struct serve_job *)job;
	struct served *s = sj->s;

	s->starting = false;
	if (res == 0 && !s->fenced) {
		s->rec = sj->out;
		if (s->rec.epoch != sj->seen_epoch)
			log_info("volume %s: served here before at epoch %llu, now %llu",
				 s->rec.name, (unsigned long long)sj->seen_epoch,
				 (unsigned long long)s->rec.epoch);
		res = build_engine(s);
		if (res == 0)
			log_info("volume %s: attached here at epoch %llu, %d replica(s), "
				 "%u in sync", s->rec.name, (unsigned long long)s->rec.epoch,
				 s->rec.nplacement, vol_in_sync_count(s->vol));
	}
	if (res < 0 || s->fenced) {
		/* Not served: the next poll tries again if it is still ours. */
		if (res < 0)
			log_warn("volume %s: cannot start serving: %s", s->rec.name,
				 strerror(-res));
		agent_forget(s);
	}
	free(sj);
}

/* Our own epoch first: a restart of this node must not serve at the epoch
 * its previous incarnation used (invariants 3 and 4). */
void agent_serve(struct agent *cm, const struct cluster_volume *rec)
{
	struct served *s = calloc(1, sizeof *s);
	struct serve_job *sj = calloc(1, sizeof *sj);

	if (!s || !sj) {
		free(s);
		free(sj);
		return;
	}
	s->cm = cm;
	s->rec = *rec;
	s->starting = true;
	s->next = cm->served;
	cm->served = s;
	*sj = (struct serve_job){ .j = { .run = serve_run, .done = serve_done },
				  .s = s, .seen_epoch = rec->epoch };
	snprintf(sj->name, sizeof sj->name, "%s", rec->name);
	snprintf(sj->node, sizeof sj->node, "%s", cm->node.id);
	agent_submit(cm, &sj->j);
}

/* --- fencing and placement changes ----------------------------------------------- */

void agent_fence(struct served *s, const char *why)
{
	s->fenced = true;
	if (!s->vol)
		return;  /* still starting: serve_done sees it */
	agent_progress_clear(s);
	s->cm->opts.hide_vol(s->cm->opts.export_arg, s->rec.name);
	vol_fence(s->vol);  /* also stops reconnecting to replicas that refuse
			       our epoch anyway */
	for (unsigned i = 0; i < CLUSTER_MAX_REPLICAS; i++)
		if (s->jobs[i])
			resync_cancel(s->jobs[i]);
	log_warn("volume %s: no longer served here at epoch %llu: %s", s->rec.name,
		 (unsigned long long)s->rec.epoch, why);
}

/* A replica whose node was not registered when the engine was built has no
 * connection; once the node is back, it gets one (and then catches up).
 * Only out of the in-sync set: an in-sync one leaves it first, recorded
 * (drop_unreachable), and is connected at a later poll. */
static bool needs_client(const struct served *s, unsigned i,
			 const struct cluster_volume *rec)
{
	struct vol_replica_info ri;

	vol_replica_info(s->vol, i, &ri);
	return vol_replica_has_client(s->vol, i, NULL) && !ri.in_sync &&
	       agent_node(s->cm, rec->placement[i].node) &&
	       strcmp(rec->placement[i].node, s->cm->node.id);
}

void agent_refresh_placement(struct served *s, const struct cluster_volume *rec)
{
	if (!s->vol || rec->epoch != s->rec.epoch || rec->nplacement != s->rec.nplacement)
		return;  /* a new engine took over, or a layout we do not follow */
	for (unsigned i = 0; i < (unsigned)rec->nplacement; i++) {
		struct cluster_replica was = s->rec.placement[i];
		struct vol_replica_spec spec;
		bool returned = !strcmp(rec->placement[i].node, was.node) &&
				needs_client(s, i, rec);
		int ret;

		if (!strcmp(rec->placement[i].node, was.node) && !returned)
			continue;
		if (returned)
			log_info("volume %s: replica node %s registered: connecting",
				 s->rec.name, was.node);
		if (s->jobs[i])
			resync_cancel(s->jobs[i]);
		s->rec.placement[i] = rec->placement[i];
		replica_spec(s, i, &spec);
		ret = vol_replace_replica(s->vol, i, &spec);
		if (ret < 0) {
			s->rec.placement[i] = was;  /* tried again next poll */
			if (ret != -EAGAIN)
				log_error("volume %s: cannot connect the new replica on %s: %s",
					  s->rec.name, rec->placement[i].node, strerror(-ret));
		}
	}
}
