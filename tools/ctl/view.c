/* The cluster as triplexctl shows it: the records of the nodes that are up
 * and of every volume, the nodes that are down (a node's record goes with
 * its lease, so a down node is one the volumes still place replicas on or
 * are attached to), and each volume's state in words. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl.h"

void ctl_view_free(struct ctl_view *v)
{
	if (!v)
		return;
	free(v->nodes);
	free(v->vols);
	free(v->down);
	free(v->broken);
	free(v->jobs);
	free(v->seen);
	memset(v, 0, sizeof *v);
}

const struct cluster_node *ctl_view_node(const struct ctl_view *v,
					 const char *id)
{
	for (size_t i = 0; i < v->nnodes; i++)
		if (!strcmp(v->nodes[i].id, id))
			return &v->nodes[i];
	return NULL;
}

bool ctl_view_node_up(const struct ctl_view *v, const char *id)
{
	return ctl_view_node(v, id) != NULL;
}

static struct ctl_down_node *down_find(struct ctl_view *v, const char *id)
{
	for (size_t i = 0; i < v->ndown; i++)
		if (!strcmp(v->down[i].id, id))
			return &v->down[i];
	return NULL;
}

/* Note node id (placed in domain, "" if unknown) as down unless it is up
 * or noted already. */
static int down_note(struct ctl_view *v, const char *id, const char *domain)
{
	struct ctl_down_node *d, *grown;

	if (!id[0] || ctl_view_node_up(v, id))
		return 0;
	if ((d = down_find(v, id))) {
		if (!d->zone[0])
			snprintf(d->zone, sizeof d->zone, "%s", domain);
		return 0;
	}
	grown = realloc(v->down, (v->ndown + 1) * sizeof *v->down);
	if (!grown)
		return -ENOMEM;
	v->down = grown;
	d = &v->down[v->ndown++];
	memset(d, 0, sizeof *d);
	snprintf(d->id, sizeof d->id, "%s", id);
	snprintf(d->zone, sizeof d->zone, "%s", domain);
	return 0;
}

/* Every node a volume names that is not up, with the zone its replica
 * was placed in and how many replicas it holds. */
static int find_down(struct ctl_view *v)
{
	for (size_t i = 0; i < v->nvols; i++) {
		const struct cluster_volume *vol = &v->vols[i];

		for (int k = 0; k < vol->nplacement; k++) {
			const struct cluster_replica *r = &vol->placement[k];

			struct ctl_down_node *d;

			if (down_note(v, r->node, r->domain) < 0)
				return -ENOMEM;
			if ((d = down_find(v, r->node)))
				d->replicas++;
		}
		if (down_note(v, vol->attached, "") < 0)
			return -ENOMEM;
	}
	return 0;
}

static int broken_note(struct ctl_view *v, const struct meta_kv *kv,
		       const char *why)
{
	struct ctl_broken_record *b, *grown;

	grown = realloc(v->broken, (v->nbroken + 1) * sizeof *v->broken);
	if (!grown)
		return -ENOMEM;
	v->broken = grown;
	b = &v->broken[v->nbroken++];
	snprintf(b->name, sizeof b->name, "%s",
		 kv->key + strlen(CLUSTER_VOLUMES_PREFIX));
	snprintf(b->why, sizeof b->why, "%s", why);
	return 0;
}

/* The volume records that do not decode: cluster_volume_list skips
 * them, the CLI reports them. */
static int find_broken(struct meta *m, struct ctl_view *v)
{
	struct meta_kv *kvs = NULL;
	size_t n = 0;
	int r = meta_list(m, CLUSTER_VOLUMES_PREFIX, &kvs, &n);

	if (r < 0)
		return r;
	for (size_t i = 0; r == 0 && i < n; i++) {
		struct cluster_volume vol;
		char why[sizeof v->broken->why];

		if (cluster_volume_from_kv(&kvs[i], &vol, why, sizeof why) < 0)
			r = broken_note(v, &kvs[i], why);
	}
	meta_kv_free_array(kvs, n);
	return r;
}

int ctl_view_load(struct meta *m, struct ctl_view *v)
{
	int r;

	memset(v, 0, sizeof *v);
	if ((r = cluster_node_list(m, &v->nodes, &v->nnodes)) < 0 ||
	    (r = cluster_volume_list(m, &v->vols, &v->nvols)) < 0 ||
	    (r = find_broken(m, v)) < 0 || (r = find_down(v)) < 0) {
		ctl_view_free(v);
		return r;
	}
	/* Progress is for show: without it the view still stands. */
	if (ctl_jobs_load(m, NULL, &v->jobs, &v->njobs) < 0)
		v->njobs = 0;
	if (ctl_seen_load(m, &v->seen, &v->nseen) < 0)
		v->nseen = 0;
	return 0;
}

int ctl_in_sync_up(const struct ctl_view *v, const struct cluster_volume *vol)
{
	int n = 0;

	for (int k = 0; k < vol->nplacement; k++)
		n += vol->placement[k].state == CLUSTER_REPLICA_IN_SYNC &&
		     ctl_view_node_up(v, vol->placement[k].node);
	return n;
}

enum ctl_vol_state ctl_volume_state(const struct ctl_view *v,
				    const struct cluster_volume *vol)
{
	bool rebuilding = false, degraded = false;

	if (ctl_in_sync_up(v, vol) < vol->min_replicas ||
	    (vol->attached[0] && !ctl_view_node_up(v, vol->attached)))
		return CTL_VOL_FAULTED;
	for (int k = 0; k < vol->nplacement; k++) {
		const struct cluster_replica *r = &vol->placement[k];
		bool up = ctl_view_node_up(v, r->node);

		if (r->state != CLUSTER_REPLICA_IN_SYNC && up)
			rebuilding = true;
		else if (r->state != CLUSTER_REPLICA_IN_SYNC || !up)
			degraded = true;
	}
	if (degraded || vol->nplacement < vol->replicas)
		return CTL_VOL_DEGRADED;
	if (rebuilding)
		return CTL_VOL_REBUILDING;
	return vol->attached[0] ? CTL_VOL_HEALTHY : CTL_VOL_DETACHED;
}

const char *ctl_vol_state_name(enum ctl_vol_state s)
{
	static const char *const names[] = {
		[CTL_VOL_HEALTHY] = "healthy", [CTL_VOL_DEGRADED] = "degraded",
		[CTL_VOL_REBUILDING] = "rebuilding", [CTL_VOL_FAULTED] = "faulted",
		[CTL_VOL_DETACHED] = "detached",
	};

	return (unsigned)s < CTL_VOL_NSTATES ? names[s] : "unknown";
}

void ctl_replica_words(const struct ctl_view *v,
		       const struct cluster_volume *vol,
		       const struct cluster_replica *r, char *buf, size_t len)
{
	const char *down = ctl_view_node_up(v, r->node) ? "" : ", node down";

	if (r->state == CLUSTER_REPLICA_REBUILDING)
		snprintf(buf, len, "rebuilding %u%%%s",
			 (unsigned)(vol->size ? r->rebuild_done * 100 / vol->size : 0),
			 down);
	else if (r->state == CLUSTER_REPLICA_OUT_OF_SYNC)
		snprintf(buf, len, "out of sync%s%s", down[0] ? "" : ", catching up",
			 down);
	else
		snprintf(buf, len, "in sync%s", down);
}
