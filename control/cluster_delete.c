/*
 * Deleting a volume with its data. The record goes, and a tombstone
 * /triplex/deleted/<id> lists the nodes that still hold a replica of it;
 * each node's agent deletes its replica (only one that carries this
 * volume id, so a re-created volume of the same name is never touched) and
 * takes itself off the list, the last one deletes the tombstone. A node
 * that is down meanwhile does it when it returns.
 */
#include "cluster.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "log.h"
#include "parse.h"

#define TOMB_KEY_MAX (sizeof CLUSTER_DELETED_PREFIX + 24)
#define CAS_TRIES 100

static void tomb_key(char *key, uint64_t id)
{
	snprintf(key, TOMB_KEY_MAX, "%s%" PRIu64, CLUSTER_DELETED_PREFIX, id);
}

static char *tomb_to_json(const struct cluster_tombstone *t)
{
	json_t *nodes = json_array(), *o;
	char *s;

	for (int i = 0; i < t->nnodes; i++)
		json_array_append_new(nodes, json_string(t->nodes[i]));
	o = json_pack("{s:s, s:I, s:o}", "name", t->name, "id",
		      (json_int_t)t->id, "nodes", nodes);
	s = o ? json_dumps(o, JSON_COMPACT) : NULL;
	json_decref(o);
	return s;
}

int cluster_tombstone_from_json(const char *text, size_t len,
				struct cluster_tombstone *t)
{
	json_t *o = json_loadb(text, len, 0, NULL);
	json_t *name = json_object_get(o, "name"), *id = json_object_get(o, "id");
	json_t *nodes = json_object_get(o, "nodes"), *n;
	size_t i;
	int r = -EBADMSG;

	memset(t, 0, sizeof *t);
	if (!json_is_string(name) || parse_volume_name(json_string_value(name)) ||
	    !json_is_integer(id) || json_integer_value(id) <= 0 ||
	    !json_is_array(nodes) ||
	    json_array_size(nodes) > CLUSTER_MAX_REPLICAS)
		goto out;
	snprintf(t->name, sizeof t->name, "%s", json_string_value(name));
	t->id = (uint64_t)json_integer_value(id);
	json_array_foreach(nodes, i, n) {
		if (!json_is_string(n) || parse_volume_name(json_string_value(n)))
			goto out;
		snprintf(t->nodes[t->nnodes++], CLUSTER_NAME_MAX, "%s",
			 json_string_value(n));
	}
	r = 0;
out:
	json_decref(o);
	return r;
}

/* Untrusted bytes from the store: every field checked. */
static int tomb_from_kv(const struct meta_kv *kv, struct cluster_tombstone *t)
{
	int r = cluster_tombstone_from_json((const char *)kv->value,
					    kv->value_len, t);

	if (r < 0)
		log_warn("metadata: %s: not a tombstone record", kv->key);
	t->mod_rev = kv->mod_rev;
	return r;
}

static int tomb_put(struct meta *m, const struct cluster_tombstone *t,
		    int64_t expect_rev)
{
	char key[TOMB_KEY_MAX], *json = tomb_to_json(t);
	int r;

	if (!json)
		return -ENOMEM;
	tomb_key(key, t->id);
	r = meta_put(m, key, json, strlen(json), expect_rev, 0, NULL);
	free(json);
	return r;
}

int cluster_volume_delete_data(struct meta *m, const char *name, bool force,
			       struct cluster_volume *out)
{
	struct cluster_tombstone t;
	struct cluster_volume v;
	char key[TOMB_KEY_MAX];
	int r;

	for (int tries = 0; tries < CAS_TRIES; tries++) {
		if ((r = cluster_volume_get(m, name, &v)) < 0)
			return r;
		if (v.attached[0] && !force) {
			*out = v;
			return -EBUSY;
		}
		memset(&t, 0, sizeof t);
		snprintf(t.name, sizeof t.name, "%s", v.name);
		t.id = v.id;
		for (int i = 0; i < v.nplacement; i++)
			snprintf(t.nodes[t.nnodes++], CLUSTER_NAME_MAX, "%s",
				 v.placement[i].node);
		/* The tombstone first: a record never goes without one. */
		if ((r = tomb_put(m, &t, -1)) < 0)
			return r;
		r = cluster_volume_delete(m, name, v.mod_rev);
		if (r != -ESTALE) {
			if (r == 0)
				*out = v;
			return r;
		}
		/* Changed meanwhile (attached, replaced): look again. */
		tomb_key(key, t.id);
		meta_del(m, key, -1);
	}
	return -EBUSY;
}

int cluster_tombstone_list(struct meta *m, struct cluster_tombstone **out,
			   size_t *n)
{
	struct meta_kv *kvs;
	size_t k, got = 0;
	int r = meta_list(m, CLUSTER_DELETED_PREFIX, &kvs, &k);

	*out = NULL;
	*n = 0;
	if (r < 0)
		return r;
	if (k && !(*out = calloc(k, sizeof **out))) {
		meta_kv_free_array(kvs, k);
		return -ENOMEM;
	}
	for (size_t i = 0; i < k; i++)
		if (tomb_from_kv(&kvs[i], &(*out)[got]) == 0)
			got++; /* a broken one is logged and skipped */
	meta_kv_free_array(kvs, k);
	*n = got;
	return 0;
}

int cluster_tombstone_done(struct meta *m, uint64_t id, const char *node)
{
	char key[TOMB_KEY_MAX];
	struct cluster_tombstone t;
	struct meta_kv kv;
	int r;

	tomb_key(key, id);
	for (int tries = 0; tries < CAS_TRIES; tries++) {
		int keep = 0;

		if ((r = meta_get(m, key, &kv)) < 0)
			return r == -ENOENT ? 0 : r;
		r = tomb_from_kv(&kv, &t);
		meta_kv_clear(&kv);
		if (r < 0)
			return r;
		for (int i = 0; i < t.nnodes; i++)
			if (strcmp(t.nodes[i], node))
				memmove(t.nodes[keep++], t.nodes[i], CLUSTER_NAME_MAX);
		if (keep == t.nnodes)
			return 0; /* not ours (any more) */
		t.nnodes = keep;
		r = keep ? tomb_put(m, &t, t.mod_rev) : meta_del(m, key, t.mod_rev);
		if (r != -ESTALE)
			return r;
	}
	return -EBUSY;
}
