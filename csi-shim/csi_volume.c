/* The CSI Volume message of a triplex volume (csi_args.h). */
#include <stdio.h>
#include <string.h>

#include "csi_args.h"

static void topology_fill(struct csi_volume_msg *m,
			  const struct cluster_volume *v)
{
	m->ntopo = 0;
	for (int i = 0; i < v->nplacement && i < CLUSTER_MAX_REPLICAS; i++) {
		char z[CLUSTER_NAME_MAX];
		bool seen = false;

		csi_domain_zone(v->placement[i].domain, z);
		for (int j = 0; j < m->ntopo; j++)
			seen |= !strcmp(m->zone[j], z);
		if (seen || !z[0])
			continue;
		snprintf(m->zone[m->ntopo], CLUSTER_NAME_MAX, "%s", z);
		m->ntopo++;
	}
	for (int i = 0; i < m->ntopo; i++) {
		csi__v1__topology__segments_entry__init(&m->seg[i]);
		m->seg[i].key = (char *)CSI_TOPOLOGY_ZONE;
		m->seg[i].value = m->zone[i];
		m->segp[i] = &m->seg[i];
		csi__v1__topology__init(&m->topo[i]);
		m->topo[i].n_segments = 1;
		m->topo[i].segments = &m->segp[i];
		m->topop[i] = &m->topo[i];
	}
	m->vol.n_accessible_topology = (size_t)m->ntopo;
	m->vol.accessible_topology = m->topop;
}

static void context_add(struct csi_volume_msg *m, const char *key,
			const char *val)
{
	size_t i = m->vol.n_volume_context;

	csi__v1__volume__volume_context_entry__init(&m->ctx[i]);
	snprintf(m->ctxval[i], sizeof m->ctxval[i], "%s", val);
	m->ctx[i].key = (char *)key;
	m->ctx[i].value = m->ctxval[i];
	m->ctxp[i] = &m->ctx[i];
	m->vol.n_volume_context = i + 1;
}

static void context_fill(struct csi_volume_msg *m,
			 const struct cluster_volume *v, const char *fs_type)
{
	char num[16];

	m->vol.volume_context = m->ctxp;
	snprintf(num, sizeof num, "%d", v->replicas);
	context_add(m, "replicas", num);
	snprintf(num, sizeof num, "%d", v->min_replicas);
	context_add(m, "minReplicas", num);
	context_add(m, "failureDomain", cluster_domain_name(v->domain));
	if (fs_type && fs_type[0])
		context_add(m, "fsType", fs_type);
}

void csi_volume_msg_fill(struct csi_volume_msg *m,
			 const struct cluster_volume *v, bool with_context,
			 const char *fs_type)
{
	memset(m, 0, sizeof *m);
	csi__v1__volume__init(&m->vol);
	snprintf(m->id, sizeof m->id, "%s", v->name);
	m->vol.volume_id = m->id;
	m->vol.capacity_bytes = (int64_t)v->size;
	topology_fill(m, v);
	if (with_context)
		context_fill(m, v, fs_type);
}

bool csi_volume_abnormal(const struct cluster_volume *v, char *msg,
			 size_t len)
{
	int in_sync = 0;

	for (int i = 0; i < v->nplacement; i++)
		in_sync += v->placement[i].state == CLUSTER_REPLICA_IN_SYNC;
	if (in_sync >= v->replicas) {
		snprintf(msg, len, "%d of %d replicas in sync", in_sync,
			 v->replicas);
		return false;
	}
	snprintf(msg, len, "degraded: %d of %d replicas in sync%s", in_sync,
		 v->replicas, in_sync < v->min_replicas ?
		 ", below minReplicas: writes wait" : "");
	return true;
}
