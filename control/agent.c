#include "agent.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cluster.h"
#include "log.h"
#include "repl_client.h"
#include "repl_service.h"
#include "reconcile.h"
#include "resync.h"
#include "scrub.h"
#include "volume.h"

#define TICK_MS 1000
#define LEASE_TTL_S 10
#define KEEPALIVE_EVERY 3   /* ticks */
#define EXPORT_WAIT_TICKS 5

struct served;

/* What a replica's connection callback needs to find its replica. */
struct rep_ctx {
	struct served *s;
	unsigned idx;
	bool opened_once;
};

/* One volume attached here: its engine and its record. */
struct served {
	struct served *next;
	struct agent *cm;
	struct cluster_volume rec;
	struct vol *vol;
	bool exported;
	bool reconciling, reconciled;
	bool scrubbing;
	bool fenced;        /* another node or epoch owns it now */
	unsigned waited_ticks;
	struct rep_ctx ctx[CLUSTER_MAX_REPLICAS];
	struct resync *jobs[CLUSTER_MAX_REPLICAS];
};

struct agent {
	struct loop *loop;
	struct store_io *io;
	struct agent_opts opts;
	char replicas_dir[CLUSTER_PATH_MAX + 16];
	struct meta *meta;
	struct cluster_node node;
	int64_t lease;
	struct repl_service *svc;
	struct loop_timer tick;
	unsigned ticks;
	bool stopping;
	struct served *served;
};

/* --- node registration ------------------------------------------------- */

static int register_node(struct agent *cm)
{
	int ret = cluster_node_register(cm->meta, &cm->node, LEASE_TTL_S, &cm->lease);

	if (ret < 0)
		log_error("cluster: cannot register node %s: %s", cm->node.id,
			  strerror(-ret));
	return ret;
}

static void keepalive(struct agent *cm)
{
	int ret = cluster_node_keepalive(cm->meta, cm->lease);

	if (ret == -ENOENT) {
		log_warn("cluster: node lease expired, registering again");
		register_node(cm);
	} else if (ret < 0) {
		log_warn("cluster: lease keepalive failed: %s", strerror(-ret));
	}
}

/* --- engines ------------------------------------------------------------- */

static void maybe_export(struct served *s);

/* Invariant 2: the replica is out of the in-sync set in the metadata store
 * before any write is acknowledged without it. The epoch check fences an
 * engine that another node has replaced. */
static int isr_remove(struct vol *v, unsigned i, void *arg)
{
	struct served *s = arg;
	const char *node = s->rec.placement[i].node;
	struct cluster_volume out;
	int ret = cluster_volume_set_replica_state(s->cm->meta, s->rec.name, node,
						   CLUSTER_REPLICA_OUT_OF_SYNC, 0,
						   s->rec.epoch, &out);

	/* Keep our copy of the placement current: checkpoints write it back. */
	if (ret == 0)
		memcpy(s->rec.placement, out.placement, sizeof s->rec.placement);
	if (ret < 0)
		log_error("volume %s: cannot record replica %s out of sync: %s",
			  s->rec.name, node, strerror(-ret));
	return ret;
}

/* The replica may lack a failed write: durably, so that a new engine
 * compares it too before trusting its reads. */
static int doubt_record(struct vol *v, unsigned i, void *arg)
{
	struct served *s = arg;
	struct cluster_volume out;
	int ret = cluster_volume_set_replica_doubt(s->cm->meta, s->rec.name,
						   s->rec.placement[i].node,
						   true, s->rec.epoch, &out);

	if (ret == 0)
		memcpy(s->rec.placement, out.placement, sizeof s->rec.placement);
	return ret;
}

/* Record a replica's resync checkpoint (state unchanged). */
static int save_checkpoint(struct served *s, unsigned i, uint64_t pos)
{
	struct cluster_volume out;
	int ret = cluster_volume_set_replica_state(s->cm->meta, s->rec.name,
						   s->rec.placement[i].node,
						   s->rec.placement[i].state, pos,
						   s->rec.epoch, &out);

	if (ret == 0)
		s->rec.placement[i] = out.placement[i];
	return ret;
}

/* The replica missed a write while being resynced: its checkpoint must
 * not survive, in case this engine stops before the resync restarts. */
static int receiving_lost(struct vol *v, unsigned i, void *arg)
{
	struct served *s = arg;

	return s->rec.placement[i].rebuild_done == 0 ? 0 : save_checkpoint(s, i, 0);
}

static void resync_progress(struct resync *job, uint64_t pos, void *arg)
{
	struct rep_ctx *ctx = arg;

	save_checkpoint(ctx->s, ctx->idx, pos);
}

/* An in-sync replica in doubt was compared with the replica reads come
 * from and brought level: it may be read again. */
static void doubt_lifted(struct served *s, unsigned i)
{
	const char *node = s->rec.placement[i].node;
	struct cluster_volume out;
	int ret = cluster_volume_set_replica_doubt(s->cm->meta, s->rec.name, node,
						   false, s->rec.epoch, &out);

	if (ret < 0) {
		log_error("volume %s: cannot record replica %s as compared: %s",
			  s->rec.name, node, strerror(-ret));
		return;
	}
	s->rec.placement[i] = out.placement[i];
	vol_doubt_clear(s->vol, i);
	log_info("volume %s: replica %s compared and brought level, no longer "
		 "in doubt", s->rec.name, node);
}

static void resync_done(struct resync *job, int res, void *arg)
{
	struct rep_ctx *ctx = arg;
	struct served *s = ctx->s;
	unsigned i = ctx->idx;
	const char *node = s->rec.placement[i].node;
	struct vol_replica_info ri;
	struct cluster_volume out;
	int ret;

	s->jobs[i] = NULL;
	if (res < 0)
		return;  /* retried on a later tick */
	vol_replica_info(s->vol, i, &ri);
	if (ri.in_sync) {
		doubt_lifted(s, i);
		return;
	}
	ret = cluster_volume_set_replica_state(s->cm->meta, s->rec.name, node,
					       CLUSTER_REPLICA_IN_SYNC, 0,
					       s->rec.epoch, &out);
	if (ret < 0) {
		log_error("volume %s: cannot record replica %s in sync: %s",
			  s->rec.name, node, strerror(-ret));
		return;
	}
	s->rec.placement[i] = out.placement[i];
	vol_isr_join(s->vol, i);
	log_info("volume %s: replica %s is in sync again (%u in sync)", s->rec.name,
		 node, vol_in_sync_count(s->vol));
}

/* Scrub requests travel through the metadata store: triplexctl puts
 * {"state":"requested"} under /triplex/scrub/NAME, the engine answers with
 * "running", then "done" or "failed" and the report. */
static void scrub_key(const struct served *s, char *key, size_t len)
{
	snprintf(key, len, "/triplex/scrub/%s", s->rec.name);
}

static void scrub_put(struct served *s, const char *state, const struct scrub_report *r)
{
	char key[128], val[512];
	int n = snprintf(val, sizeof val, "{\"state\":\"%s\"", state);

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
	snprintf(val + n, sizeof val - (size_t)n, "}");
	scrub_key(s, key, sizeof key);
	meta_put(s->cm->meta, key, val, strlen(val), -1, 0, NULL);
}

static void scrubbed(int res, const struct scrub_report *r, void *arg)
{
	struct served *s = arg;

	s->scrubbing = false;
	scrub_put(s, res == 0 ? "done" : "failed", r);
}

static void maybe_scrub(struct served *s)
{
	struct meta_kv kv = { 0 };
	char key[128];

	if (!s->exported || s->scrubbing)
		return;
	scrub_key(s, key, sizeof key);
	if (meta_get(s->cm->meta, key, &kv) < 0)
		return;
	if (kv.value && strstr((const char *)kv.value, "\"requested\"")) {
		scrub_put(s, "running", NULL);
		s->scrubbing = scrub_start(s->vol, s->cm->opts.resync_rate_bps,
					   scrubbed, s) == 0;
	}
	meta_kv_clear(&kv);
}

/* Resync every connected replica that is not in sync, or in sync but in
 * doubt (a whole compare, no checkpoints: it stays in the set), and has no
 * job. */
static void start_resyncs(struct served *s)
{
	for (unsigned i = 0; s->exported && i < vol_nreplicas(s->vol); i++) {
		struct vol_replica_info ri;
		struct resync_opts o;

		vol_replica_info(s->vol, i, &ri);
		if ((ri.in_sync && !ri.doubt) || !ri.up || s->jobs[i])
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
	struct cluster_node peer;
	struct repl_client_opts o = {
		.node_id = cm->node.id,
		.volume_id = s->rec.id,
		.volume_name = s->rec.name,
		.volume_size = s->rec.size,
		.epoch = s->rec.epoch,
		.io_timeout_ms = cm->opts.io_timeout_ms,
		.on_state = replica_state,
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
	} else if (cluster_node_get(cm->meta, p->node, &peer) == 0) {
		o.addr = peer.repl_addr;
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
		.on_isr_remove = isr_remove,
		.on_receiving_lost = receiving_lost,
		.on_doubt = doubt_record,
		.extents_store = extents_store,
		.arg = s,
	};
	unsigned n = (unsigned)s->rec.nplacement;

	for (unsigned i = 0; i < n; i++)
		replica_spec(s, i, &reps[i]);
	/* Connections come up from the loop, once the engine exists. */
	s->vol = vol_new_replicated(&cfg, cm->loop, reps, n);
	return s->vol ? 0 : -ENOMEM;
}

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
 * the in-sync set before we serve, or we wait (min_replicas). */
static bool drop_unreachable(struct served *s)
{
	for (unsigned i = 0; i < vol_nreplicas(s->vol); i++) {
		struct vol_replica_info ri;

		vol_replica_info(s->vol, i, &ri);
		if (ri.in_sync && !ri.up &&
		    vol_isr_leave(s->vol, i, "unreachable at attach") < 0)
			return false;
	}
	return true;
}

/* Serve once every in-sync replica is connected (or EXPORT_WAIT_TICKS
 * passed) and, for a volume that was served before (epoch > 1), once the
 * regions that may have had writes in flight agree on every in-sync
 * replica (invariant 4). */
static void maybe_export(struct served *s)
{
	unsigned up = in_sync_up(s->vol);
	int ret;

	if (s->exported || s->reconciling)
		return;
	if (up < vol_in_sync_count(s->vol) && s->waited_ticks < EXPORT_WAIT_TICKS)
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

static void serve(struct agent *cm, const struct cluster_volume *rec)
{
	struct served *s = calloc(1, sizeof *s);
	int ret;

	if (!s)
		return;
	s->cm = cm;
	/* Our own epoch: a restart of this node must not serve at the epoch
	 * its previous incarnation used (invariants 3 and 4). */
	ret = cluster_volume_start_serving(cm->meta, rec->name, cm->node.id, &s->rec);
	if (ret < 0) {
		log_warn("volume %s: cannot start serving: %s", rec->name,
			 strerror(-ret));
		free(s);
		return;
	}
	if (s->rec.epoch != rec->epoch)
		log_info("volume %s: served here before at epoch %llu, now %llu",
			 rec->name, (unsigned long long)rec->epoch,
			 (unsigned long long)s->rec.epoch);
	ret = build_engine(s);
	if (ret < 0) {
		log_error("volume %s: cannot serve: %s", rec->name, strerror(-ret));
		vol_free(s->vol);
		free(s);
		return;
	}
	s->next = cm->served;
	cm->served = s;
	log_info("volume %s: attached here at epoch %llu, %d replica(s), "
		 "%u in sync", rec->name, (unsigned long long)s->rec.epoch,
		 rec->nplacement, vol_in_sync_count(s->vol));
}

static void export_ready_volumes(struct agent *cm)
{
	for (struct served *s = cm->served; s; s = s->next) {
		if (s->fenced)
			continue;
		s->waited_ticks++;
		maybe_export(s);
		start_resyncs(s);
		maybe_scrub(s);
	}
}

static struct served *find_served(const struct agent *cm, const char *name)
{
	for (struct served *s = cm->served; s; s = s->next)
		if (!s->fenced && strcmp(s->rec.name, name) == 0)
			return s;
	return NULL;
}

/* The volume was attached elsewhere (or again, with a newer epoch): stop
 * offering it and refuse new requests. The replicas already refuse this
 * engine's epoch; the engine stays allocated for connections that still
 * point at it. */
static void fence_served(struct served *s, const char *why)
{
	s->fenced = true;
	s->cm->opts.hide_vol(s->cm->opts.export_arg, s->rec.name);
	vol_fence(s->vol);  /* also stops reconnecting to replicas that refuse
			       our epoch anyway */
	for (unsigned i = 0; i < CLUSTER_MAX_REPLICAS; i++)
		if (s->jobs[i])
			resync_cancel(s->jobs[i]);
	log_warn("volume %s: no longer served here at epoch %llu: %s", s->rec.name,
		 (unsigned long long)s->rec.epoch, why);
}

static const struct cluster_volume *find_rec(const struct cluster_volume *vols,
					     size_t n, const char *name)
{
	for (size_t i = 0; i < n; i++)
		if (!strcmp(vols[i].name, name))
			return &vols[i];
	return NULL;
}

static void fence_lost(struct agent *cm, const struct cluster_volume *vols,
		       size_t n)
{
	for (struct served *s = cm->served; s; s = s->next) {
		const struct cluster_volume *rec;

		if (s->fenced)
			continue;
		rec = find_rec(vols, n, s->rec.name);
		if (!rec)
			fence_served(s, "the volume was deleted");
		else if (strcmp(rec->attached, cm->node.id))
			fence_served(s, "attached to another node");
		else if (rec->epoch != s->rec.epoch)
			fence_served(s, "attached again with a newer epoch");
	}
}

/* `volume replace` moved a replica to another node: connect to the new one
 * (not in sync, so it is rebuilt by the resync on a later tick). */
static void refresh_placement(struct served *s, const struct cluster_volume *rec)
{
	if (rec->epoch != s->rec.epoch || rec->nplacement != s->rec.nplacement)
		return;  /* a new engine took over, or a layout we do not follow */
	for (unsigned i = 0; i < (unsigned)rec->nplacement; i++) {
		struct vol_replica_spec spec;

		if (!strcmp(rec->placement[i].node, s->rec.placement[i].node))
			continue;
		if (s->jobs[i])
			resync_cancel(s->jobs[i]);
		s->rec.placement[i] = rec->placement[i];
		replica_spec(s, i, &spec);
		if (vol_replace_replica(s->vol, i, &spec) < 0)
			log_error("volume %s: cannot connect the new replica on %s",
				  s->rec.name, rec->placement[i].node);
	}
}

static void poll_attachments(struct agent *cm)
{
	struct cluster_volume *vols;
	size_t n;

	if (cluster_volume_list(cm->meta, &vols, &n) < 0)
		return;
	fence_lost(cm, vols, n);
	for (size_t i = 0; i < n; i++) {
		struct served *s;

		if (strcmp(vols[i].attached, cm->node.id) != 0)
			continue;
		s = find_served(cm, vols[i].name);
		if (!s)
			serve(cm, &vols[i]);
		else if (s->exported)
			refresh_placement(s, &vols[i]);
	}
	free(vols);
}

static void on_tick(struct loop_timer *t)
{
	struct agent *cm = (struct agent *)((char *)t - offsetof(struct agent, tick));

	if (cm->stopping)
		return;
	if (++cm->ticks % KEEPALIVE_EVERY == 0)
		keepalive(cm);
	poll_attachments(cm);
	export_ready_volumes(cm);
	loop_timer_arm(cm->loop, &cm->tick, TICK_MS);
}

/* --- start and stop ---------------------------------------------------------- */

static int start_service(struct agent *cm)
{
	char host[256];
	const char *colon = strrchr(cm->opts.listen_repl, ':');
	size_t n = colon ? (size_t)(colon - cm->opts.listen_repl) : 0;
	int ret;

	if (!colon || n >= sizeof host) {
		log_error("--listen-repl wants HOST:PORT, got '%s'", cm->opts.listen_repl);
		return -EINVAL;
	}
	memcpy(host, cm->opts.listen_repl, n);
	host[n] = '\0';
	snprintf(cm->replicas_dir, sizeof cm->replicas_dir, "%s/replicas", cm->opts.data_dir);
	if (mkdir(cm->replicas_dir, 0755) < 0 && errno != EEXIST) {
		log_error("cannot create %s: %s", cm->replicas_dir, strerror(errno));
		return -errno;
	}
	cm->svc = repl_service_new(cm->loop, cm->io, cm->replicas_dir, cm->node.id);
	if (!cm->svc)
		return -ENOMEM;
	ret = repl_service_listen_tcp(cm->svc, host[0] ? host : NULL, colon + 1);
	if (ret < 0) {
		log_error("cannot listen on %s: %s", cm->opts.listen_repl, strerror(-ret));
		return ret;
	}
	repl_service_start(cm->svc);
	return 0;
}

static void fill_node(struct agent *cm)
{
	const struct agent_opts *o = &cm->opts;

	snprintf(cm->node.id, sizeof cm->node.id, "%s", o->node_id);
	snprintf(cm->node.zone, sizeof cm->node.zone, "%s", o->zone);
	snprintf(cm->node.rack, sizeof cm->node.rack, "%s", o->rack ? o->rack : "");
	snprintf(cm->node.repl_addr, sizeof cm->node.repl_addr, "%s", o->listen_repl);
	snprintf(cm->node.nbd_addr, sizeof cm->node.nbd_addr, "%s", o->nbd_addr ? o->nbd_addr : "");
	snprintf(cm->node.http_addr, sizeof cm->node.http_addr, "%s", o->http_addr ? o->http_addr : "");
	snprintf(cm->node.data_dir, sizeof cm->node.data_dir, "%s", o->data_dir);
}

struct agent *agent_start(struct loop *loop, struct store_io *io,
			  const struct agent_opts *opts)
{
	struct agent *cm = calloc(1, sizeof *cm);
	char err[256];

	if (!cm)
		return NULL;
	cm->loop = loop;
	cm->io = io;
	cm->opts = *opts;
	fill_node(cm);
	if (meta_open(opts->meta_url, &cm->meta, err, sizeof err) < 0) {
		log_error("cluster: cannot open metadata store %s: %s", opts->meta_url, err);
		goto fail;
	}
	if (start_service(cm) < 0 || register_node(cm) < 0)
		goto fail;
	log_info("cluster: node %s (zone %s) registered, replicas on %s",
		 cm->node.id, cm->node.zone, opts->listen_repl);
	cm->tick.fn = on_tick;
	poll_attachments(cm);
	loop_timer_arm(loop, &cm->tick, TICK_MS);
	return cm;
fail:
	repl_service_free(cm->svc);
	meta_close(cm->meta);
	free(cm);
	return NULL;
}

size_t agent_volumes(const struct agent *cm)
{
	size_t n = 0;

	for (const struct served *s = cm->served; s; s = s->next)
		n += !s->fenced;
	return n;
}

struct vol *agent_vol(const struct agent *cm, size_t i)
{
	for (const struct served *s = cm->served; s; s = s->next) {
		if (s->fenced)
			continue;
		if (i-- == 0)
			return s->vol;
	}
	return NULL;
}

const struct repl_service_stats *agent_repl_stats(const struct agent *cm)
{
	return repl_service_get_stats(cm->svc);
}

void agent_stop(struct agent *cm)
{
	if (!cm)
		return;
	cm->stopping = true;
	cluster_node_unregister(cm->meta, cm->lease);
	/* Let go of every replica connection while the loop still runs. */
	for (struct served *s = cm->served; s; s = s->next)
		if (!s->fenced)
			fence_served(s, "shutting down");
	repl_service_shutdown(cm->svc, NULL, NULL);
}

bool agent_idle(const struct agent *cm)
{
	return !cm || (repl_service_drained(cm->svc) && repl_client_live() == 0);
}

void agent_free(struct agent *cm)
{
	if (!cm)
		return;
	while (cm->served) {
		struct served *s = cm->served;

		cm->served = s->next;
		vol_free(s->vol);
		free(s);
	}
	repl_service_free(cm->svc);
	meta_close(cm->meta);
	free(cm);
}
