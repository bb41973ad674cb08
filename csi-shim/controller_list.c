/*
 * ListVolumes (paged: a page's next_token is the name of the first volume
 * of the next page, so a volume deleted between pages moves no other one)
 * and GetCapacity.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>

#include "csi_args.h"
#include "parse.h"

#define LIST_PAGE_MAX 1000   /* entries of a page when max_entries is 0 */

struct list_page {
	size_t n;
	Csi__V1__ListVolumesResponse__Entry *entry;
	Csi__V1__ListVolumesResponse__Entry **entryp;
	Csi__V1__ListVolumesResponse__VolumeStatus *status;
	Csi__V1__VolumeCondition *cond;
	struct csi_volume_msg *vm;
	char (*text)[128];
	char **node;
};

static void page_free(struct list_page *pg)
{
	free(pg->entry);
	free(pg->entryp);
	free(pg->status);
	free(pg->cond);
	free(pg->vm);
	free(pg->text);
	free(pg->node);
}

static int page_alloc(struct list_page *pg, size_t n)
{
	pg->n = n;
	pg->entry = calloc(n + 1, sizeof *pg->entry);
	pg->entryp = calloc(n + 1, sizeof *pg->entryp);
	pg->status = calloc(n + 1, sizeof *pg->status);
	pg->cond = calloc(n + 1, sizeof *pg->cond);
	pg->vm = calloc(n + 1, sizeof *pg->vm);
	pg->text = calloc(n + 1, sizeof *pg->text);
	pg->node = calloc(n + 1, sizeof *pg->node);
	return pg->entry && pg->entryp && pg->status && pg->cond && pg->vm &&
	       pg->text && pg->node ? 0 : -1;
}

static void page_entry(struct list_page *pg, size_t i, struct cluster_volume *v)
{
	csi__v1__list_volumes_response__entry__init(&pg->entry[i]);
	csi__v1__list_volumes_response__volume_status__init(&pg->status[i]);
	csi__v1__volume_condition__init(&pg->cond[i]);
	csi_volume_msg_fill(&pg->vm[i], v, false, NULL);
	pg->cond[i].abnormal = csi_volume_abnormal(v, pg->text[i],
						   sizeof pg->text[i]);
	pg->cond[i].message = pg->text[i];
	pg->node[i] = v->attached;
	pg->status[i].n_published_node_ids = v->attached[0] ? 1 : 0;
	pg->status[i].published_node_ids = &pg->node[i];
	pg->status[i].volume_condition = &pg->cond[i];
	pg->entry[i].volume = &pg->vm[i].vol;
	pg->entry[i].status = &pg->status[i];
	pg->entryp[i] = &pg->entry[i];
}

/* Index of the first volume at or after the token; -1 if it is bad. */
static long list_start(const char *token, const struct cluster_volume *vols,
		       size_t n)
{
	size_t i = 0;

	if (!token[0])
		return 0;
	if (parse_volume_name(token) < 0)
		return -1;
	while (i < n && strcmp(vols[i].name, token) < 0)
		i++;
	return (long)i;
}

static void list_answer(struct cluster_volume *vols, size_t total,
			size_t start, size_t max, struct csi_reply *r)
{
	Csi__V1__ListVolumesResponse resp = CSI__V1__LIST_VOLUMES_RESPONSE__INIT;
	size_t n = total - start < max ? total - start : max;
	struct list_page pg = { 0 };

	if (page_alloc(&pg, n) < 0) {
		csi_fail(r, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory");
		page_free(&pg);
		return;
	}
	for (size_t i = 0; i < n; i++)
		page_entry(&pg, i, &vols[start + i]);
	resp.n_entries = n;
	resp.entries = pg.entryp;
	if (start + n < total)
		resp.next_token = vols[start + n].name;
	csi_ok(r, &resp.base);
	page_free(&pg);
}

void controller_list_volumes(struct csi_plugin *p, const ProtobufCMessage *msg,
			     struct csi_reply *r)
{
	const Csi__V1__ListVolumesRequest *req = (const void *)msg;
	struct cluster_volume *vols = NULL;
	struct meta *m;
	size_t n = 0;
	long start;
	int ret;

	if (req->max_entries < 0) {
		csi_fail(r, GRPC_STATUS_INVALID_ARGUMENT, "negative max_entries");
		return;
	}
	if (!(m = csi_meta(p, r)))
		return;
	if ((ret = cluster_volume_list(m, &vols, &n)) < 0) {
		csi_fail_errno(r, ret, "cannot list volumes");
		return;
	}
	start = list_start(req->starting_token, vols, n);
	if (start < 0)
		csi_fail(r, GRPC_STATUS_ABORTED, "starting_token '%.64s' is not "
			 "one this plugin hands out", req->starting_token);
	else
		list_answer(vols, n, (size_t)start, req->max_entries ?
			    (size_t)req->max_entries : LIST_PAGE_MAX, r);
	free(vols);
}

/* ---- GetCapacity ---------------------------------------------------- */

/* Free bytes of each domain (the roomiest node of it), largest first. */
struct domain_free {
	char zone[CLUSTER_NAME_MAX];
	char dom[CLUSTER_DOMAIN_MAX];
	uint64_t free;
};

static int free_cmp(const void *a, const void *b)
{
	const struct domain_free *x = a, *y = b;

	return x->free < y->free ? 1 : x->free > y->free ? -1 : 0;
}

/* Free bytes of a node's data directory, seen from here (the controller
 * runs beside the nodes' disks, or reports 0 for them). */
static uint64_t node_free(const struct cluster_node *n)
{
	struct statvfs st;

	if (!n->data_dir[0] || statvfs(n->data_dir, &st) < 0)
		return 0;
	return (uint64_t)st.f_bavail * st.f_frsize;
}

static size_t domains_load(const struct cluster_node *nodes, size_t nn,
			   enum cluster_domain d, struct domain_free *out)
{
	size_t nd = 0;

	for (size_t i = 0; i < nn; i++) {
		char dom[CLUSTER_DOMAIN_MAX];
		uint64_t f = node_free(&nodes[i]);
		size_t j;

		cluster_node_domain(&nodes[i], d, dom);
		for (j = 0; j < nd && strcmp(out[j].dom, dom); j++)
			;
		if (j == nd) {
			memset(&out[nd], 0, sizeof out[nd]);
			snprintf(out[nd].dom, sizeof out[nd].dom, "%s", dom);
			snprintf(out[nd].zone, sizeof out[nd].zone, "%s",
				 nodes[i].zone);
			nd++;
		}
		if (f > out[j].free)
			out[j].free = f;
	}
	qsort(out, nd, sizeof *out, free_cmp);
	return nd;
}

/* The largest volume of prm's replicas that fits: one replica in zone
 * (if not ""), the others on distinct other domains. */
static uint64_t capacity_for(const struct domain_free *d, size_t nd,
			     const struct csi_params *prm, const char *zone)
{
	uint64_t cap = UINT64_MAX;
	int need = prm->replicas;
	bool zone_done = !zone[0];

	for (size_t i = 0; i < nd && need > 0; i++) {
		if (!zone_done && strcmp(d[i].zone, zone)) {
			if (need == 1)
				continue;   /* keep the last for the zone */
		} else if (!zone_done) {
			zone_done = true;
		}
		if (d[i].free < cap)
			cap = d[i].free;
		need--;
	}
	return need > 0 || !zone_done ? 0 : cap & ~4095ull;
}

static void capacity_answer(uint64_t cap, struct csi_reply *r)
{
	Csi__V1__GetCapacityResponse resp = CSI__V1__GET_CAPACITY_RESPONSE__INIT;
	Csi__V1__Int64Value max = CSI__V1__INT64_VALUE__INIT;
	Csi__V1__Int64Value min = CSI__V1__INT64_VALUE__INIT;

	resp.available_capacity = (int64_t)cap;
	max.value = (int64_t)(cap < CLUSTER_MAX_VOLUME_SIZE ? cap :
			      CLUSTER_MAX_VOLUME_SIZE);
	min.value = 4096;
	resp.maximum_volume_size = &max;
	resp.minimum_volume_size = &min;
	csi_ok(r, &resp.base);
}

void controller_get_capacity(struct csi_plugin *p, const ProtobufCMessage *msg,
			     struct csi_reply *r)
{
	const Csi__V1__GetCapacityRequest *req = (const void *)msg;
	struct csi_zones zones = { 0 };
	struct cluster_node *nodes = NULL;
	struct domain_free *doms;
	struct csi_params prm;
	struct meta *m;
	size_t nn = 0, nd;
	char why[160];
	int ret;

	if (csi_params_parse((void *const *)req->parameters, req->n_parameters,
			     &prm, r) < 0)
		return;
	if (req->accessible_topology &&
	    csi_topology_zones(&req->accessible_topology, 1, &zones, r) < 0)
		return;
	if (csi_caps_check(req->volume_capabilities, req->n_volume_capabilities,
			   why, sizeof why) < 0) {
		capacity_answer(0, r);   /* none of it for what we cannot serve */
		return;
	}
	if (!(m = csi_meta(p, r)))
		return;
	if ((ret = cluster_node_list(m, &nodes, &nn)) < 0) {
		csi_fail_errno(r, ret, "cannot list nodes");
		return;
	}
	doms = calloc(nn + 1, sizeof *doms);
	if (!doms) {
		csi_fail(r, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory");
	} else {
		nd = domains_load(nodes, nn, prm.domain, doms);
		capacity_answer(capacity_for(doms, nd, &prm,
					     zones.n ? zones.zone[0] : ""), r);
	}
	free(doms);
	free(nodes);
}
