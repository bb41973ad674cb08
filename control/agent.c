/*
 * The node agent (see agent.h, agent_int.h): the node's registration, the
 * once-a-second poll of the metadata store, and what the poll finds (a
 * volume attached here, attached elsewhere, moved). Every metadata call
 * after start-up is a job on the metadata worker (metaq.h): the loop never
 * waits for the store.
 */
#include "agent_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "log.h"
#include "repl_client.h"
#include "repl_proto.h"
#include "repl_service.h"

#define TICK_MS 1000
#define KEEPALIVE_EVERY 1   /* ticks */
#define SCRUB_PREFIX "/triplex/scrub/"
#define CONFLICT_TTL_S 60   /* how long a refused claim stays noted */

void agent_submit(struct agent *cm, struct metaq_job *job)
{
	metaq_submit(cm->q, job);
}

const struct cluster_node *agent_node(const struct agent *cm, const char *id)
{
	for (size_t i = 0; i < cm->nnodes; i++)
		if (!strcmp(cm->nodes[i].id, id))
			return &cm->nodes[i];
	return NULL;
}

void agent_forget(struct served *s)
{
	struct served **pp = &s->cm->served;

	while (*pp && *pp != s)
		pp = &(*pp)->next;
	if (*pp)
		*pp = s->next;
	free(s);
}

/* --- node registration ------------------------------------------------- */

struct lease_job {
	struct metaq_job j;
	struct agent *cm;
	struct cluster_node node;
	struct cluster_node holder;  /* REGISTER -EEXIST: who has our id */
	int64_t lease;
	int ttl_s;
	enum { LEASE_REGISTER, LEASE_KEEPALIVE, LEASE_REVOKE } op;
};

static int lease_run(struct meta *m, struct metaq_job *job)
{
	struct lease_job *l = (struct lease_job *)job;

	switch (l->op) {
	case LEASE_REGISTER:
		return cluster_node_register(m, &l->node, l->ttl_s, &l->lease,
					     &l->holder);
	case LEASE_KEEPALIVE:
		return cluster_node_keepalive(m, l->lease);
	case LEASE_REVOKE:
		return cluster_node_unregister(m, l->lease);
	}
	return -EINVAL;
}

static void lease_submit(struct agent *cm, int op);

/* Every poll and lease job tells how the store answers. Both count:
 * a store that can be read but not written (SQLite locked) is not up. */
static void meta_answered(struct agent *cm, int res, bool lease, bool renewed)
{
	uint64_t now = loop_now_ms();

	*(lease ? &cm->lease_ok : &cm->poll_ok) = res == 0;
	if (res < 0) {
		cm->meta_errors++;
		return;
	}
	cm->meta_ok_ms = now;
	if (renewed)
		cm->lease_ok_ms = now;
}

static void lease_done(struct metaq_job *job, int res)
{
	struct lease_job *l = (struct lease_job *)job;
	struct agent *cm = l->cm;

	/* EEXIST (our id taken) and ENOENT (lease gone) are answers too. */
	if (l->op != LEASE_REVOKE)
		meta_answered(cm, res == -EEXIST || res == -ENOENT ? 0 : res,
			      true, res == 0);
	if (l->op == LEASE_REGISTER) {
		cm->registering = false;
		if (res == 0) {
			cm->lease = l->lease;
			cm->refused = false;
			cm->registered_tick = cm->ticks;
			log_info("cluster: node %s registered again", cm->node.id);
		} else if (res == -EEXIST) {
			if (!cm->refused)
				log_error("cluster: node id %s was taken by another "
					  "triplexd (replicas on %s, data dir %s) while "
					  "our lease was gone; not registering until it "
					  "goes", cm->node.id, l->holder.repl_addr,
					  l->holder.data_dir);
			cm->refused = true;
		} else {
			log_error("cluster: cannot register node %s: %s (retrying)",
				  cm->node.id, strerror(-res));
		}
	}
	if (l->op == LEASE_KEEPALIVE)
		cm->keepalive_out = false;
	if (l->op == LEASE_KEEPALIVE && res == -ENOENT && !cm->stopping) {
		log_warn("cluster: node lease expired, registering again");
		lease_submit(cm, LEASE_REGISTER);
	} else if (l->op == LEASE_KEEPALIVE && res < 0) {
		log_warn("cluster: lease keepalive failed: %s", strerror(-res));
	}
	free(l);
}

static void lease_submit(struct agent *cm, int op)
{
	struct lease_job *l;

	if ((op == LEASE_REGISTER && cm->registering) ||
	    (op == LEASE_KEEPALIVE && (cm->keepalive_out || cm->registering)))
		return;  /* one at a time: a slow store must not pile them up */
	l = calloc(1, sizeof *l);
	if (!l)
		return;
	*l = (struct lease_job){ .j = { .run = lease_run, .done = lease_done },
				 .cm = cm, .node = cm->node, .lease = cm->lease,
				 .ttl_s = cm->opts.lease_ttl_s, .op = op };
	cm->registering |= op == LEASE_REGISTER;
	cm->keepalive_out |= op == LEASE_KEEPALIVE;
	agent_submit(cm, &l->j);
}

/* --- the poll ------------------------------------------------------------- */

struct poll_job {
	struct metaq_job j;
	struct agent *cm;
	bool ticked;       /* the once-a-second poll, not a watch's */
	struct cluster_volume *vols;
	size_t nvols;
	struct cluster_node *nodes;
	size_t nnodes;
	struct meta_kv *scrubs;
	size_t nscrubs;
	struct cluster_node claimant;   /* refused for our id; rev 0: none */
	int64_t claim_rev;
	struct cluster_tombstone *tombs;
	size_t ntombs;
};

static int poll_run(struct meta *m, struct metaq_job *job)
{
	struct poll_job *p = (struct poll_job *)job;
	int ret = cluster_volume_list(m, &p->vols, &p->nvols);

	if (ret == 0)
		ret = cluster_node_list(m, &p->nodes, &p->nnodes);
	if (ret == 0 && meta_list(m, SCRUB_PREFIX, &p->scrubs, &p->nscrubs) < 0) {
		p->scrubs = NULL;  /* scrub requests wait for the next poll */
		p->nscrubs = 0;
	}
	if (ret == 0 && cluster_node_conflict_get(m, p->cm->node.id,
						  &p->claimant, &p->claim_rev) < 0)
		p->claim_rev = 0;
	if (ret == 0 && cluster_tombstone_list(m, &p->tombs, &p->ntombs) < 0) {
		p->tombs = NULL;   /* deleted data waits for the next poll */
		p->ntombs = 0;
	}
	return ret;
}

static const struct cluster_volume *find_rec(const struct cluster_volume *vols,
					     size_t n, const char *name)
{
	for (size_t i = 0; i < n; i++)
		if (!strcmp(vols[i].name, name))
			return &vols[i];
	return NULL;
}

static struct served *find_served(const struct agent *cm, const char *name)
{
	for (struct served *s = cm->served; s; s = s->next)
		if (!s->fenced && strcmp(s->rec.name, name) == 0)
			return s;
	return NULL;
}

/* Volumes served here that the record gives to another node or epoch,
 * or that are gone: fenced. */
static void fence_lost(struct agent *cm, const struct cluster_volume *vols,
		       size_t n)
{
	for (struct served *s = cm->served; s; s = s->next) {
		const struct cluster_volume *rec;

		if (s->fenced || s->starting)
			continue;
		rec = find_rec(vols, n, s->rec.name);
		if (!rec)
			agent_fence(s, "the volume was deleted");
		else if (!rec->attached[0])
			agent_fence(s, "detached");
		else if (strcmp(rec->attached, cm->node.id))
			agent_fence(s, "attached to another node");
		else if (rec->epoch != s->rec.epoch)
			agent_fence(s, "attached again with a newer epoch");
	}
}

static const char *scrub_of(const struct poll_job *p, const char *name)
{
	size_t plen = strlen(SCRUB_PREFIX);

	for (size_t i = 0; i < p->nscrubs; i++)
		if (!strcmp(p->scrubs[i].key + plen, name))
			return (const char *)p->scrubs[i].value;
	return NULL;
}

/* --- deleted volumes' data ----------------------------------------------- */

struct tomb_job {
	struct metaq_job j;
	struct agent *cm;
	uint64_t id;
};

static int tomb_run(struct meta *m, struct metaq_job *job)
{
	struct tomb_job *t = (struct tomb_job *)job;

	return cluster_tombstone_done(m, t->id, t->cm->node.id);
}

static void tomb_done(struct metaq_job *job, int res)
{
	if (res < 0)
		log_warn("cluster: cannot update the record of deleted volume "
			 "id %llu: %s (again at the next poll)",
			 (unsigned long long)((struct tomb_job *)job)->id,
			 strerror(-res));
	free(job);
}

static bool tomb_names(const struct cluster_tombstone *t, const char *node)
{
	for (int i = 0; i < t->nnodes; i++)
		if (!strcmp(t->nodes[i], node))
			return true;
	return false;
}

static bool id_live(const struct poll_job *p, uint64_t id)
{
	for (size_t i = 0; i < p->nvols; i++)
		if (p->vols[i].id == id)
			return true;
	return false;
}

/* Delete this node's replica of every deleted volume that lists us. */
static void reap_deleted(struct agent *cm, const struct poll_job *p)
{
	for (size_t i = 0; i < p->ntombs; i++) {
		const struct cluster_tombstone *t = &p->tombs[i];
		struct tomb_job *j;
		int r;

		if (!tomb_names(t, cm->node.id) || id_live(p, t->id))
			continue;
		r = repl_service_delete_replica(cm->svc, t->name, t->id);
		if (r == -EAGAIN)
			continue;  /* still in use: the next poll */
		if (r < 0 && r != -ENOENT) {
			log_warn("cluster: cannot delete the replica of deleted "
				 "volume %s: %s", t->name, strerror(-r));
			continue;
		}
		if (!(j = calloc(1, sizeof *j)))
			continue;
		*j = (struct tomb_job){ .j = { .run = tomb_run, .done = tomb_done },
					.cm = cm, .id = t->id };
		agent_submit(cm, &j->j);
	}
}

static void poll_apply(struct agent *cm, struct poll_job *p)
{
	free(cm->nodes);
	cm->nodes = p->nodes;
	cm->nnodes = p->nnodes;
	p->nodes = NULL;
	agent_epochs_update(cm, p->vols, p->nvols);
	fence_lost(cm, p->vols, p->nvols);
	reap_deleted(cm, p);
	/* Its rules count polls as seconds: only the ticks' polls. */
	if (p->ticked)
		agent_failover(cm, p->vols, p->nvols);
	for (size_t i = 0; i < p->nvols; i++) {
		struct served *s;

		if (strcmp(p->vols[i].attached, cm->node.id) != 0)
			continue;
		s = find_served(cm, p->vols[i].name);
		if (!s)
			agent_serve(cm, &p->vols[i]);
		else if (s->vol) { /* exported or not: a returning replica's node */
			agent_refresh_placement(s, &p->vols[i]);
			agent_resize(s, &p->vols[i]);
		}
	}
	for (struct served *s = cm->served; s; s = s->next)
		if (p->ticked)
			agent_volume_tick(s, scrub_of(p, s->rec.name));
}

static void poll_submit(struct agent *cm, bool ticked);

static void poll_done(struct metaq_job *job, int res)
{
	struct poll_job *p = (struct poll_job *)job;
	struct agent *cm = p->cm;

	cm->polling = false;
	meta_answered(cm, res, false, false);
	if (res == 0 && p->claim_rev && p->claim_rev != cm->conflict_rev) {
		cm->conflict_rev = p->claim_rev;
		log_error("cluster: another triplexd (replicas on %s, data dir "
			  "%s) tried to register as node %s and was refused",
			  p->claimant.repl_addr, p->claimant.data_dir,
			  cm->node.id);
	}
	if (res == 0 && !cm->stopping)
		poll_apply(cm, p);
	else if (res < 0)
		log_warn("cluster: cannot read the metadata store: %s", strerror(-res));
	free(p->vols);
	free(p->nodes);
	free(p->tombs);
	meta_kv_free_array(p->scrubs, p->nscrubs);
	free(p);
	if (cm->poll_again && !cm->stopping) {
		bool ticked = cm->poll_again_ticked;

		cm->poll_again = cm->poll_again_ticked = false;
		poll_submit(cm, ticked);
	}
}

/* One poll at a time: a slow store delays the next, never the loop. A
 * change seen meanwhile gets a poll of its own once this one is done. */
static void poll_submit(struct agent *cm, bool ticked)
{
	struct poll_job *p;

	if (cm->polling) {
		cm->poll_again = true;
		cm->poll_again_ticked |= ticked;
		return;
	}
	if (!(p = calloc(1, sizeof *p)))
		return;
	p->j = (struct metaq_job){ .run = poll_run, .done = poll_done };
	p->cm = cm;
	p->ticked = ticked;
	cm->polling = true;
	agent_submit(cm, &p->j);
}

void agent_poll_now(struct agent *cm)
{
	poll_submit(cm, false);
}

static void on_tick(struct loop_timer *t)
{
	struct agent *cm = (struct agent *)((char *)t - offsetof(struct agent, tick));

	if (cm->stopping)
		return;
	if (++cm->ticks % KEEPALIVE_EVERY == 0)
		lease_submit(cm, LEASE_KEEPALIVE);
	agent_heartbeat_tick(cm);
	poll_submit(cm, true);
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
	repl_service_set_epoch_check(cm->svc, agent_epoch_check, cm,
				     AGENT_EPOCH_WAIT_MS);
	repl_service_set_holder_check(cm->svc, agent_holder_check, cm);
	repl_service_set_max_connections(cm->svc, cm->opts.max_repl_connections);
	repl_service_set_tls(cm->svc, cm->opts.repl_tls_server);
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

/* Before the loop serves anything, the store is opened and the node
 * registered here, so that a wrong URL or a refused registration stops
 * the daemon at once; from then on the handle belongs to the worker. */
struct agent *agent_start(struct loop *loop, struct store_io *io,
			  const struct agent_opts *opts)
{
	struct agent *cm = calloc(1, sizeof *cm);
	struct cluster_node holder;
	struct meta *m = NULL;
	char err[512];
	int ret;

	if (!cm)
		return NULL;
	cm->loop = loop;
	cm->io = io;
	cm->opts = *opts;
	cm->watch_efd = -1;
	if (!cm->opts.lease_ttl_s)
		cm->opts.lease_ttl_s = AGENT_LEASE_TTL_S;
	if (!cm->opts.read_lease_ms || cm->opts.read_lease_ms > REPL_LEASE_MAX_MS)
		cm->opts.read_lease_ms = AGENT_READ_LEASE_MS;
	fill_node(cm);
	if (agent_identity(opts->data_dir, cm->node.id, cm->node.instance,
			   sizeof cm->node.instance, err, sizeof err) < 0) {
		log_error("cluster: %s", err);
		free(cm);
		return NULL;
	}
	if (meta_open(opts->meta_url, &m, err, sizeof err) < 0) {
		log_error("cluster: cannot open metadata store %s: %s", opts->meta_url, err);
		goto fail;
	}
	if (start_service(cm) < 0)
		goto fail;
	ret = cluster_node_register(m, &cm->node, cm->opts.lease_ttl_s,
				    &cm->lease, &holder);
	if (ret == -EEXIST) {
		log_error("cluster: node id %s is registered by another live "
			  "triplexd (replicas on %s, data dir %s): refusing to "
			  "start; give each daemon its own --node-id",
			  cm->node.id, holder.repl_addr, holder.data_dir);
		cluster_node_conflict_put(m, &cm->node, CONFLICT_TTL_S);
		goto fail;
	}
	if (ret < 0) {
		log_error("cluster: cannot register node %s: %s", cm->node.id,
			  strerror(-ret));
		goto fail;
	}
	cm->q = metaq_new(loop, m);
	if (!cm->q)
		goto fail;
	meta_answered(cm, 0, true, true);
	cm->poll_ok = true;
	log_info("cluster: node %s (zone %s) registered, replicas on %s",
		 cm->node.id, cm->node.zone, opts->listen_repl);
	if (agent_watch_start(cm, opts->meta_url) < 0)
		log_warn("cluster: cannot watch the metadata store: changes are "
			 "seen at the next poll (every second)");
	cm->tick.fn = on_tick;
	poll_submit(cm, true);
	loop_timer_arm(loop, &cm->tick, TICK_MS);
	return cm;
fail:
	repl_service_free(cm->svc);
	meta_close(m);
	free(cm);
	return NULL;
}

size_t agent_volumes(const struct agent *cm)
{
	size_t n = 0;

	for (const struct served *s = cm->served; s; s = s->next)
		n += !s->fenced && s->vol;
	return n;
}

static const struct served *served_at(const struct agent *cm, size_t i)
{
	for (const struct served *s = cm->served; s; s = s->next) {
		if (s->fenced || !s->vol)
			continue;
		if (i-- == 0)
			return s;
	}
	return NULL;
}

struct vol *agent_vol(const struct agent *cm, size_t i)
{
	const struct served *s = served_at(cm, i);

	return s ? s->vol : NULL;
}

bool agent_vol_resync_pos(const struct agent *cm, size_t i, unsigned r,
			  uint64_t *pos)
{
	const struct served *s = served_at(cm, i);

	if (!s || r >= CLUSTER_MAX_REPLICAS || !s->jobs[r])
		return false;
	*pos = resync_get_stats(s->jobs[r])->pos;
	return true;
}

void agent_for_each_replica(const struct agent *cm,
			    void (*fn)(void *arg, const char *name, struct store *st),
			    void *arg)
{
	repl_service_for_each_replica(cm->svc, fn, arg);
}

bool agent_vol_scrub_done(const struct agent *cm, size_t i, uint64_t *done)
{
	const struct served *s = served_at(cm, i);

	if (!s || !s->scrub)
		return false;
	*done = scrub_bytes_done(s->scrub);
	return true;
}

void agent_meta_health(const struct agent *cm, struct agent_meta_health *h)
{
	uint64_t now = loop_now_ms();

	*h = (struct agent_meta_health){
		.up = cm->poll_ok && cm->lease_ok,
		.errors = cm->meta_errors,
		.ok_age_s = (double)(now - cm->meta_ok_ms) / 1000.0,
		.lease_age_s = (double)(now - cm->lease_ok_ms) / 1000.0,
		.lease_ttl_s = cm->opts.lease_ttl_s,
	};
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
	agent_watch_stop(cm);
	lease_submit(cm, LEASE_REVOKE);
	/* Let go of every replica connection while the loop still runs. */
	for (struct served *s = cm->served; s; s = s->next)
		if (!s->fenced)
			agent_fence(s, "shutting down");
	repl_service_shutdown(cm->svc, NULL, NULL);
}

/* Also waits for the metadata jobs: the lease revoke of a clean stop. */
bool agent_idle(const struct agent *cm)
{
	return !cm || (repl_service_drained(cm->svc) && repl_client_live() == 0 &&
		       metaq_pending(cm->q) == 0);
}

void agent_free(struct agent *cm)
{
	if (!cm)
		return;
	metaq_free(cm->q);  /* first: no job may complete into what follows */
	agent_watch_stop(cm);
	agent_watch_close(cm);
	while (cm->served) {
		struct served *s = cm->served;

		cm->served = s->next;
		vol_free(s->vol);
		free(s);
	}
	repl_service_free(cm->svc);
	free(cm->nodes);
	agent_epochs_free(cm);
	free(cm->orphans);
	free(cm);
}
