/* Node and volume records in the metadata store: keys, leases and the
 * read-modify-CAS loops. The JSON codec is cluster_json.c, placement is
 * placement.c. */
#include "cluster.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "log.h"
#include "parse.h"
#include "placement.h"

#define KEY_MAX (sizeof CLUSTER_CONFLICTS_PREFIX + CLUSTER_NAME_MAX) /* the longest prefix */
/* Conflicting writers each make progress, so a loop only spins while
 * others succeed; the bound turns a livelock into -EBUSY. */
#define CAS_TRIES 1000

static void seterr(char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void seterr(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (!err || !errlen)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

static bool terminated(const char *s, size_t len)
{
	return memchr(s, 0, len) != NULL;
}

/* ---- nodes ---------------------------------------------------------- */

static int node_key(char *key, const char *id)
{
	if (parse_volume_name(id))
		return -EINVAL;
	snprintf(key, KEY_MAX, "%s%s", CLUSTER_NODES_PREFIX, id);
	return 0;
}

static int node_check(const struct cluster_node *n)
{
	if (!terminated(n->id, sizeof n->id) ||
	    !terminated(n->zone, sizeof n->zone) ||
	    !terminated(n->rack, sizeof n->rack) ||
	    !terminated(n->repl_addr, sizeof n->repl_addr) ||
	    !terminated(n->nbd_addr, sizeof n->nbd_addr) ||
	    !terminated(n->http_addr, sizeof n->http_addr) ||
	    !terminated(n->data_dir, sizeof n->data_dir))
		return -EINVAL;
	if (parse_volume_name(n->id) || parse_volume_name(n->zone))
		return -EINVAL;
	return n->rack[0] && parse_volume_name(n->rack) ? -EINVAL : 0;
}

static int node_from_kv(const struct meta_kv *kv, struct cluster_node *n);

/* The live record of n's id: 1 if it is n's own earlier run (same
 * instance; its lease is then revoked), 0 if another daemon's (copied to
 * holder), -ENOENT if it went away meanwhile, or -errno. */
static int node_holder(struct meta *m, const char *key,
		       const struct cluster_node *n, struct cluster_node *holder)
{
	struct cluster_node cur;
	struct meta_kv kv;
	int r = meta_get(m, key, &kv);

	if (r < 0)
		return r;
	r = node_from_kv(&kv, &cur);
	meta_kv_clear(&kv);
	if (r < 0)
		return r;
	if (n->instance[0] && !strcmp(cur.instance, n->instance)) {
		r = meta_lease_revoke(m, cur.lease);
		return r == 0 || r == -ENOENT ? 1 : r;
	}
	if (holder)
		*holder = cur;
	return 0;
}

int cluster_node_register(struct meta *m, const struct cluster_node *n,
			  int ttl_s, int64_t *lease,
			  struct cluster_node *holder)
{
	char key[KEY_MAX], *json;
	int r = node_check(n);

	if (r < 0 || (r = node_key(key, n->id)) < 0)
		return r;
	*lease = 0;
	if (!(json = cluster_node_to_json(n, 0)))
		return -ENOMEM;
	r = meta_lease_grant(m, ttl_s, lease);
	/* Create-only: a live record of this id is someone's. Two rounds: one
	 * to take over our own earlier run's record, one to create. */
	for (int round = 0; r == 0; round++) {
		r = meta_put(m, key, json, strlen(json), 0, *lease, NULL);
		if (r != -ESTALE || round == 2)
			break;
		r = node_holder(m, key, n, holder);
		if (r == 0) {
			r = -EEXIST;
			break;
		}
		if (r == 1 || r == -ENOENT)
			r = 0; /* ours, or gone meanwhile: create it */
	}
	if (r == -ESTALE)
		r = -EBUSY; /* records kept changing under us */
	if (r < 0 && r != -EINVAL && *lease)
		meta_lease_revoke(m, *lease);
	free(json);
	return r;
}

static int conflict_key(char *key, const char *id)
{
	int n = snprintf(key, KEY_MAX, "%s%s", CLUSTER_CONFLICTS_PREFIX, id);

	return n < 0 || (size_t)n >= KEY_MAX ? -EINVAL : 0;
}

int cluster_node_conflict_put(struct meta *m, const struct cluster_node *n,
			      int ttl_s)
{
	char key[KEY_MAX], *json;
	int64_t lease;
	int r = conflict_key(key, n->id);

	if (r < 0 || (r = meta_lease_grant(m, ttl_s, &lease)) < 0)
		return r;
	if (!(json = cluster_node_to_json(n, 0)))
		return -ENOMEM;
	r = meta_put(m, key, json, strlen(json), -1, lease, NULL);
	free(json);
	return r;
}

int cluster_node_conflict_get(struct meta *m, const char *id,
			      struct cluster_node *who, int64_t *rev)
{
	char key[KEY_MAX], err[160];
	struct meta_kv kv;
	int r = conflict_key(key, id);

	if (r < 0 || (r = meta_get(m, key, &kv)) < 0)
		return r;
	r = cluster_node_from_json((const char *)kv.value, kv.value_len, who,
				   err, sizeof err);
	*rev = kv.mod_rev;
	meta_kv_clear(&kv);
	return r;
}

int cluster_node_keepalive(struct meta *m, int64_t lease)
{
	return meta_lease_keepalive(m, lease);
}

int cluster_node_unregister(struct meta *m, int64_t lease)
{
	return meta_lease_revoke(m, lease);
}

static int node_from_kv(const struct meta_kv *kv, struct cluster_node *n)
{
	char err[160];
	int r = cluster_node_from_json((const char *)kv->value, kv->value_len,
				       n, err, sizeof err);

	if (r == 0 && strcmp(kv->key + strlen(CLUSTER_NODES_PREFIX), n->id)) {
		snprintf(err, sizeof err, "id \"%s\" does not match the key",
			 n->id);
		r = -EBADMSG;
	}
	if (r < 0)
		log_warn("metadata: %s: %s", kv->key, err);
	n->lease = kv->lease;
	return r;
}

int cluster_node_get(struct meta *m, const char *id, struct cluster_node *out)
{
	struct meta_kv kv;
	char key[KEY_MAX];
	int r = node_key(key, id);

	if (r < 0 || (r = meta_get(m, key, &kv)) < 0)
		return r;
	r = node_from_kv(&kv, out);
	meta_kv_clear(&kv);
	return r;
}

/* Decode every record under prefix into an array of elem-sized records;
 * records that do not decode are skipped (decode logs why). */
static int list_records(struct meta *m, const char *prefix, size_t elem,
			int (*decode)(const struct meta_kv *kv, void *rec),
			void **out, size_t *n)
{
	struct meta_kv *kvs;
	size_t nkv;
	char *recs;
	int r = meta_list(m, prefix, &kvs, &nkv);

	*out = NULL;
	*n = 0;
	if (r < 0)
		return r;
	recs = calloc(nkv + 1, elem);
	if (!recs) {
		meta_kv_free_array(kvs, nkv);
		return -ENOMEM;
	}
	for (size_t i = 0; i < nkv; i++)
		if (decode(&kvs[i], recs + *n * elem) == 0)
			(*n)++;
	meta_kv_free_array(kvs, nkv);
	*out = recs;
	return 0;
}

static int decode_node(const struct meta_kv *kv, void *rec)
{
	return node_from_kv(kv, rec);
}

int cluster_node_list(struct meta *m, struct cluster_node **out, size_t *n)
{
	return list_records(m, CLUSTER_NODES_PREFIX, sizeof **out, decode_node,
			    (void **)out, n);
}

/* ---- volume records ------------------------------------------------- */

static int volume_key(char *key, const char *name)
{
	if (parse_volume_name(name))
		return -EINVAL;
	snprintf(key, KEY_MAX, "%s%s", CLUSTER_VOLUMES_PREFIX, name);
	return 0;
}

int cluster_volume_from_kv(const struct meta_kv *kv, struct cluster_volume *v,
			   char *err, size_t errlen)
{
	int r = cluster_volume_from_json((const char *)kv->value,
					 kv->value_len, v, err, errlen);

	if (r == 0 && (strncmp(kv->key, CLUSTER_VOLUMES_PREFIX,
			       strlen(CLUSTER_VOLUMES_PREFIX)) ||
		       strcmp(kv->key + strlen(CLUSTER_VOLUMES_PREFIX), v->name))) {
		snprintf(err, errlen, "name \"%s\" does not match the key",
			 v->name);
		r = -EBADMSG;
	}
	v->mod_rev = kv->mod_rev;
	return r;
}

static int volume_from_kv(const struct meta_kv *kv, struct cluster_volume *v)
{
	char err[160];
	int r = cluster_volume_from_kv(kv, v, err, sizeof err);

	if (r < 0)
		log_warn("metadata: %s: %s", kv->key, err);
	return r;
}

int cluster_volume_get(struct meta *m, const char *name,
		       struct cluster_volume *out)
{
	struct meta_kv kv;
	char key[KEY_MAX];
	int r = volume_key(key, name);

	if (r < 0 || (r = meta_get(m, key, &kv)) < 0)
		return r;
	r = volume_from_kv(&kv, out);
	meta_kv_clear(&kv);
	return r;
}

static int decode_volume(const struct meta_kv *kv, void *rec)
{
	return volume_from_kv(kv, rec);
}

int cluster_volume_list(struct meta *m, struct cluster_volume **out,
			size_t *n)
{
	return list_records(m, CLUSTER_VOLUMES_PREFIX, sizeof **out,
			    decode_volume, (void **)out, n);
}

/* Write v under its key with expect_rev; v->mod_rev becomes the new one. */
static int volume_put(struct meta *m, struct cluster_volume *v,
		      int64_t expect_rev)
{
	char key[KEY_MAX], *json;
	int64_t rev;
	int r = volume_key(key, v->name);

	if (r < 0)
		return r;
	if (!(json = cluster_volume_to_json(v, 0)))
		return -ENOMEM;
	r = meta_put(m, key, json, strlen(json), expect_rev, 0, &rev);
	free(json);
	if (r == 0)
		v->mod_rev = rev;
	return r;
}

int cluster_volume_update(struct meta *m, struct cluster_volume *v)
{
	if (v->mod_rev <= 0)
		return -EINVAL;
	return volume_put(m, v, v->mod_rev);
}

int cluster_volume_delete(struct meta *m, const char *name,
			  int64_t expect_rev)
{
	char key[KEY_MAX];
	int r = volume_key(key, name);

	return r < 0 ? r : meta_del(m, key, expect_rev);
}

/* Read, change with fn, CAS write; again if someone else wrote first. */
typedef int (*volume_fn)(struct meta *m, struct cluster_volume *v,
			 void *arg);

static int volume_modify(struct meta *m, const char *name, volume_fn fn,
			 void *arg, struct cluster_volume *out)
{
	struct cluster_volume v;
	int r;

	for (int tries = 0; tries < CAS_TRIES; tries++) {
		if ((r = cluster_volume_get(m, name, &v)) < 0)
			return r;
		if ((r = fn(m, &v, arg)) < 0)
			return r;
		r = cluster_volume_update(m, &v);
		if (r == -ESTALE)
			continue;
		if (r == 0 && out)
			*out = v;
		return r;
	}
	return -EBUSY;
}

/* ---- create --------------------------------------------------------- */

void cluster_volume_spec_init(struct cluster_volume_spec *spec,
			      const char *name, uint64_t size)
{
	memset(spec, 0, sizeof *spec);
	spec->name = name;
	spec->size = size;
	spec->replicas = 3;
	spec->min_replicas = 2;
	spec->domain = CLUSTER_DOMAIN_ZONE;
}

static int spec_check(const struct cluster_volume_spec *s, char *err,
		      size_t errlen)
{
	if (!s->name || parse_volume_name(s->name))
		seterr(err, errlen, "bad volume name \"%s\": 1-63 of "
		       "[A-Za-z0-9._-], not starting with . or -",
		       s->name ? s->name : "");
	else if (s->size == 0 || s->size % 4096)
		seterr(err, errlen, "size %" PRIu64 " is not a positive "
		       "multiple of 4096", s->size);
	else if (s->size > CLUSTER_MAX_VOLUME_SIZE)
		seterr(err, errlen, "size %" PRIu64 " is over the largest "
		       "volume, %llu bytes (1 PiB)", s->size,
		       CLUSTER_MAX_VOLUME_SIZE);
	else if (s->replicas < 1 || s->replicas > CLUSTER_MAX_REPLICAS)
		seterr(err, errlen, "replicas %d not in 1..%d", s->replicas,
		       CLUSTER_MAX_REPLICAS);
	else if (s->min_replicas < 1 || s->min_replicas > s->replicas)
		seterr(err, errlen, "min_replicas %d not in 1..%d",
		       s->min_replicas, s->replicas);
	else if ((unsigned)s->domain > CLUSTER_DOMAIN_RACK)
		seterr(err, errlen, "unknown failure-domain key");
	else
		return 0;
	return -EINVAL;
}

/* A volume id: 63 random bits (a JSON integer), never 0. Not a counter in
 * the store: a store that was lost or rebuilt would hand out the ids of
 * volumes whose replicas are still on disk, and a new volume of an old
 * name would open an old volume's data. A replica is bound to its id for
 * good (the OPEN of another id is refused), so a collision, 1 in 2^63,
 * refuses a replica rather than mixing data. */
static int volume_id_alloc(uint64_t *id)
{
	uint64_t raw = 0;

	do {
		if (getrandom(&raw, sizeof raw, 0) != (ssize_t)sizeof raw)
			return errno ? -errno : -EIO;
		raw &= INT64_MAX;
	} while (raw == 0);
	*id = raw;
	return 0;
}

/* Live nodes and how many replicas each holds, for placement. */
struct cluster_view {
	struct cluster_node *nodes;
	size_t nnodes;
	unsigned *load;
};

static void view_free(struct cluster_view *cv)
{
	free(cv->nodes);
	free(cv->load);
}

static void view_count(struct cluster_view *cv,
		       const struct cluster_volume *vols, size_t nvols)
{
	for (size_t v = 0; v < nvols; v++)
		for (int p = 0; p < vols[v].nplacement; p++)
			for (size_t i = 0; i < cv->nnodes; i++)
				if (!strcmp(cv->nodes[i].id,
					    vols[v].placement[p].node))
					cv->load[i]++;
}

static int view_load(struct meta *m, struct cluster_view *cv)
{
	struct cluster_volume *vols;
	size_t nvols;
	int r;

	memset(cv, 0, sizeof *cv);
	if ((r = cluster_node_list(m, &cv->nodes, &cv->nnodes)) < 0)
		return r;
	if ((r = cluster_volume_list(m, &vols, &nvols)) < 0) {
		view_free(cv);
		return r;
	}
	cv->load = calloc(cv->nnodes + 1, sizeof *cv->load);
	if (cv->load)
		view_count(cv, vols, nvols);
	free(vols);
	if (!cv->load) {
		view_free(cv);
		return -ENOMEM;
	}
	return 0;
}

static void replica_set(struct cluster_replica *rep,
			const struct cluster_node *n, enum cluster_domain d,
			enum cluster_replica_state state)
{
	memset(rep, 0, sizeof *rep);
	snprintf(rep->node, sizeof rep->node, "%s", n->id);
	cluster_node_domain(n, d, rep->domain);
	rep->state = state;
}

static int volume_place(struct meta *m, struct cluster_volume *v,
			const char *prefer_zone, char *err, size_t errlen)
{
	struct cluster_view cv;
	size_t idx[CLUSTER_MAX_REPLICAS];
	struct placement_input in = { 0 };
	int r = view_load(m, &cv);

	if (r < 0) {
		seterr(err, errlen, "cannot list nodes: %s", strerror(-r));
		return r;
	}
	in.nodes = cv.nodes;
	in.nnodes = cv.nnodes;
	in.load = cv.load;
	in.domain = v->domain;
	in.relaxed = v->relaxed;
	in.count = v->replicas;
	in.prefer_zone = prefer_zone;
	r = placement_choose(&in, idx, err, errlen);
	for (int i = 0; r == 0 && i < v->replicas; i++)
		replica_set(&v->placement[i], &cv.nodes[idx[i]], v->domain,
			    CLUSTER_REPLICA_IN_SYNC);
	if (r == 0)
		v->nplacement = v->replicas;
	view_free(&cv);
	return r;
}

int cluster_volume_create(struct meta *m,
			  const struct cluster_volume_spec *spec,
			  struct cluster_volume *out, char *err, size_t errlen)
{
	struct cluster_volume v = { 0 };
	int r = spec_check(spec, err, errlen);

	if (r < 0)
		return r;
	if (cluster_volume_get(m, spec->name, &v) != -ENOENT)
		goto exists; /* cheap early answer; the CAS below decides */
	memset(&v, 0, sizeof v);
	snprintf(v.name, sizeof v.name, "%s", spec->name);
	v.size = spec->size;
	v.replicas = spec->replicas;
	v.min_replicas = spec->min_replicas;
	v.domain = spec->domain;
	v.relaxed = spec->relaxed;
	v.failover_manual = spec->failover_manual;
	if ((r = volume_place(m, &v, spec->prefer_zone, err, errlen)) < 0)
		return r;
	if ((r = volume_id_alloc(&v.id)) < 0) {
		seterr(err, errlen, "cannot allocate a volume id: %s",
		       strerror(-r));
		return r;
	}
	r = volume_put(m, &v, 0);
	if (r == -ESTALE)
		goto exists;
	if (r < 0)
		seterr(err, errlen, "cannot store volume: %s", strerror(-r));
	else if (out)
		*out = v;
	return r;
exists:
	seterr(err, errlen, "volume \"%s\" already exists", spec->name);
	return -EEXIST;
}

/* ---- attach and replica states -------------------------------------- */

static int attach_fn(struct meta *m, struct cluster_volume *v, void *arg)
{
	v->epoch++;
	snprintf(v->attached, sizeof v->attached, "%s", (const char *)arg);
	return 0;
}

int cluster_volume_attach(struct meta *m, const char *name, const char *node,
			  struct cluster_volume *out)
{
	struct cluster_node n;
	int r;

	if (parse_volume_name(node))
		return -EINVAL;
	if ((r = cluster_node_get(m, node, &n)) < 0)
		return r == -ENOENT ? -ENXIO : r;
	return volume_modify(m, name, attach_fn, (void *)node, out);
}

struct takeover {
	const char *dead, *to;
};

static int takeover_fn(struct meta *m, struct cluster_volume *v, void *arg)
{
	const struct takeover *t = arg;
	struct cluster_node n;
	int i, r;

	if (strcmp(v->attached, t->dead))
		return -ESTALE;
	if (v->failover_manual)
		return -EPERM;
	for (i = 0; i < v->nplacement; i++)
		if (!strcmp(v->placement[i].node, t->to))
			break;
	if (i == v->nplacement ||
	    v->placement[i].state != CLUSTER_REPLICA_IN_SYNC ||
	    v->placement[i].doubt)
		return -EPERM;
	/* Read after the volume: if the dead node registered again since,
	 * it is not dead. */
	r = cluster_node_get(m, t->dead, &n);
	if (r == 0)
		return -EBUSY;
	if (r != -ENOENT)
		return r;
	v->epoch++;
	snprintf(v->attached, sizeof v->attached, "%s", t->to);
	return 0;
}

int cluster_volume_takeover(struct meta *m, const char *name,
			    const char *dead_node, const char *to,
			    struct cluster_volume *out)
{
	struct takeover t = { dead_node, to };

	return volume_modify(m, name, takeover_fn, &t, out);
}

static int detach_fn(struct meta *m, struct cluster_volume *v, void *arg)
{
	if (!v->attached[0])
		return -EALREADY;
	v->epoch++;
	v->attached[0] = '\0';
	return 0;
}

int cluster_volume_detach(struct meta *m, const char *name,
			  struct cluster_volume *out)
{
	return volume_modify(m, name, detach_fn, NULL, out);
}

struct resize {
	uint64_t size;
	struct cluster_volume *seen;
};

static int resize_fn(struct meta *m, struct cluster_volume *v, void *arg)
{
	struct resize *r = arg;

	if (r->seen)
		*r->seen = *v;
	if (r->size < v->size)
		return -ERANGE;
	if (r->size == v->size)
		return -EALREADY;
	v->size = r->size;
	return 0;
}

int cluster_volume_resize(struct meta *m, const char *name, uint64_t size,
			  struct cluster_volume *out)
{
	struct resize r = { size, out };

	if (size == 0 || size % 4096 || size > CLUSTER_MAX_VOLUME_SIZE)
		return -EINVAL;
	return volume_modify(m, name, resize_fn, &r, out);
}

static int serving_fn(struct meta *m, struct cluster_volume *v, void *arg)
{
	if (strcmp(v->attached, (const char *)arg))
		return -ESTALE;
	if (v->served_epoch >= v->epoch)
		v->epoch++;
	v->served_epoch = v->epoch;
	return 0;
}

int cluster_volume_start_serving(struct meta *m, const char *name,
				 const char *node, struct cluster_volume *out)
{
	return volume_modify(m, name, serving_fn, (void *)node, out);
}

static int replica_find(const struct cluster_volume *v, const char *node)
{
	for (int i = 0; i < v->nplacement; i++)
		if (!strcmp(v->placement[i].node, node))
			return i;
	return -1;
}

static int in_sync_count(const struct cluster_volume *v)
{
	int n = 0;

	for (int i = 0; i < v->nplacement; i++)
		n += v->placement[i].state == CLUSTER_REPLICA_IN_SYNC;
	return n;
}

/* Would taking replica i out of the in-sync set break invariant 1? */
static bool leaves_too_few(const struct cluster_volume *v, int i)
{
	return v->placement[i].state == CLUSTER_REPLICA_IN_SYNC &&
	       in_sync_count(v) - 1 < v->min_replicas;
}

struct state_arg {
	const char *node;
	enum cluster_replica_state state;
	uint64_t rebuild_done;
	uint64_t expect_epoch;
};

static int state_fn(struct meta *m, struct cluster_volume *v, void *arg)
{
	struct state_arg *a = arg;
	int i = replica_find(v, a->node);

	if (a->expect_epoch && v->epoch != a->expect_epoch)
		return -ESTALE;
	if (i < 0)
		return -ENOENT;
	if (a->rebuild_done > v->size)
		return -EINVAL;
	if (a->state != CLUSTER_REPLICA_IN_SYNC && leaves_too_few(v, i))
		return -EBUSY;
	/* Leaving the set, or rejoining it after a resync, settles a doubt. */
	if (a->state != CLUSTER_REPLICA_IN_SYNC ||
	    v->placement[i].state != CLUSTER_REPLICA_IN_SYNC)
		v->placement[i].doubt = false;
	v->placement[i].state = a->state;
	v->placement[i].rebuild_done = a->rebuild_done;
	return 0;
}

int cluster_volume_set_replica_state(struct meta *m, const char *name,
				     const char *node,
				     enum cluster_replica_state state,
				     uint64_t rebuild_done,
				     uint64_t expect_epoch,
				     struct cluster_volume *out)
{
	struct state_arg a = { node, state, rebuild_done, expect_epoch };

	if ((unsigned)state > CLUSTER_REPLICA_REBUILDING)
		return -EINVAL;
	return volume_modify(m, name, state_fn, &a, out);
}

struct doubt_arg {
	const char *node;
	bool doubt;
	uint64_t expect_epoch;
};

static int doubt_fn(struct meta *m, struct cluster_volume *v, void *arg)
{
	struct doubt_arg *a = arg;
	int i = replica_find(v, a->node);

	if (a->expect_epoch && v->epoch != a->expect_epoch)
		return -ESTALE;
	if (i < 0)
		return -ENOENT;
	if (v->placement[i].state != CLUSTER_REPLICA_IN_SYNC)
		return a->doubt ? -EINVAL : 0;  /* only in-sync replicas doubt */
	v->placement[i].doubt = a->doubt;
	return 0;
}

int cluster_volume_set_replica_doubt(struct meta *m, const char *name,
				     const char *node, bool doubt,
				     uint64_t expect_epoch,
				     struct cluster_volume *out)
{
	struct doubt_arg a = { node, doubt, expect_epoch };

	return volume_modify(m, name, doubt_fn, &a, out);
}

/* ---- replace -------------------------------------------------------- */

struct replace_arg {
	const char *old_node;
	const char *new_node;    /* NULL: choose */
	char *err;
	size_t errlen;
};

/* The volume's replicas other than the one at index skip. */
static int others(const struct cluster_volume *v, int skip,
		  struct cluster_replica *out)
{
	int n = 0;

	for (int i = 0; i < v->nplacement; i++)
		if (i != skip)
			out[n++] = v->placement[i];
	return n;
}

/* Is the named new node usable: live, new to the volume, and (unless
 * relaxed) in a failure domain the other replicas do not use? */
static int replace_check_named(const struct cluster_volume *v, int old,
			       const struct cluster_node *n,
			       struct replace_arg *a)
{
	char dom[CLUSTER_DOMAIN_MAX];

	if (replica_find(v, n->id) >= 0) {
		seterr(a->err, a->errlen, "node %s already holds a replica of "
		       "%s", n->id, v->name);
		return -EEXIST;
	}
	cluster_node_domain(n, v->domain, dom);
	if (v->relaxed)
		return 0;
	for (int i = 0; i < v->nplacement; i++) {
		if (i != old && (!dom[0] ||
				 !strcmp(v->placement[i].domain, dom))) {
			seterr(a->err, a->errlen, "node %s is in %s \"%s\", "
			       "already used by volume %s", n->id,
			       cluster_domain_name(v->domain), dom, v->name);
			return -ENOSPC;
		}
	}
	return 0;
}

static int replace_pick(struct cluster_volume *v, int old,
			const struct cluster_view *cv, struct replace_arg *a,
			size_t *pick)
{
	struct cluster_replica taken[CLUSTER_MAX_REPLICAS];
	struct placement_input in = { 0 };

	if (a->new_node) {
		for (size_t i = 0; i < cv->nnodes; i++) {
			if (!strcmp(cv->nodes[i].id, a->new_node)) {
				*pick = i;
				return replace_check_named(v, old,
							   &cv->nodes[i], a);
			}
		}
		seterr(a->err, a->errlen, "node %s is not live", a->new_node);
		return -ENOENT;
	}
	in.nodes = cv->nodes;
	in.nnodes = cv->nnodes;
	in.load = cv->load;
	in.domain = v->domain;
	in.relaxed = v->relaxed;
	in.taken = taken;
	in.ntaken = others(v, old, taken);
	in.exclude = a->old_node;
	in.count = 1;
	return placement_choose(&in, pick, a->err, a->errlen);
}

static int replace_fn(struct meta *m, struct cluster_volume *v, void *arg)
{
	struct replace_arg *a = arg;
	struct cluster_view cv;
	int old = replica_find(v, a->old_node);
	size_t pick;
	int r;

	if (old < 0) {
		seterr(a->err, a->errlen, "node %s holds no replica of %s",
		       a->old_node, v->name);
		return -ENOENT;
	}
	if (leaves_too_few(v, old)) {
		seterr(a->err, a->errlen, "%s is in sync and removing it "
		       "leaves fewer than min_replicas (%d) in sync",
		       a->old_node, v->min_replicas);
		return -EBUSY;
	}
	if ((r = view_load(m, &cv)) < 0)
		return r;
	r = replace_pick(v, old, &cv, a, &pick);
	if (r == 0)
		replica_set(&v->placement[old], &cv.nodes[pick], v->domain,
			    CLUSTER_REPLICA_REBUILDING);
	view_free(&cv);
	return r;
}

int cluster_volume_replace(struct meta *m, const char *name,
			   const char *old_node, const char *new_node,
			   struct cluster_volume *out, char *err,
			   size_t errlen)
{
	struct replace_arg a = { old_node, new_node && *new_node ? new_node :
				 NULL, err, errlen };
	int r;

	seterr(err, errlen, "%s", "");
	r = volume_modify(m, name, replace_fn, &a, out);

	if (r == -ENOENT && err && errlen && !*err)
		seterr(err, errlen, "no volume \"%s\"", name);
	return r;
}
