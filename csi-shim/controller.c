/*
 * The Controller service: CreateVolume and DeleteVolume. A CSI volume id
 * is the triplex volume name (the CO's name for it), so CreateVolume is
 * idempotent by a lookup of the name.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "csi_args.h"
#include "parse.h"

static int create_check(const Csi__V1__CreateVolumeRequest *req,
			struct csi_params *prm, uint64_t *size,
			struct csi_reply *r)
{
	char why[160];

	if (!req->name[0]) {
		csi_fail(r, GRPC_STATUS_INVALID_ARGUMENT, "name is required");
		return -1;
	}
	if (parse_volume_name(req->name) < 0) {
		csi_fail(r, GRPC_STATUS_INVALID_ARGUMENT, "name '%.64s' is not "
			 "a triplex volume name: 1-63 of [A-Za-z0-9._-], not "
			 "starting with . or -", req->name);
		return -1;
	}
	if (req->n_volume_capabilities == 0) {
		csi_fail(r, GRPC_STATUS_INVALID_ARGUMENT,
			 "volume_capabilities are required");
		return -1;
	}
	if (csi_caps_check(req->volume_capabilities,
			   req->n_volume_capabilities, why, sizeof why) < 0) {
		csi_fail(r, GRPC_STATUS_INVALID_ARGUMENT, "%s", why);
		return -1;
	}
	if (req->volume_content_source) {
		csi_fail(r, GRPC_STATUS_INVALID_ARGUMENT, "volume_content_source: "
			 "triplex has no snapshots or clones yet");
		return -1;
	}
	if (csi_params_parse((void *const *)req->parameters, req->n_parameters,
			     prm, r) < 0)
		return -1;
	return csi_capacity(req->capacity_range, size, r);
}

static void create_answer(const struct cluster_volume *v, const char *fs_type,
			  struct csi_reply *r)
{
	Csi__V1__CreateVolumeResponse resp = CSI__V1__CREATE_VOLUME_RESPONSE__INIT;
	struct csi_volume_msg vm;

	csi_volume_msg_fill(&vm, v, true, fs_type);
	resp.volume = &vm.vol;
	csi_ok(r, &resp.base);
}

/* The name exists: the same volume again, or ALREADY_EXISTS. */
static void create_existing(const Csi__V1__CreateVolumeRequest *req,
			    const struct csi_params *prm,
			    const struct cluster_volume *v, struct csi_reply *r)
{
	if (!csi_capacity_fits(req->capacity_range, v->size))
		csi_fail(r, GRPC_STATUS_ALREADY_EXISTS, "volume %s exists with "
			 "%llu bytes, outside the capacity_range asked for",
			 v->name, (unsigned long long)v->size);
	else if (v->replicas != prm->replicas ||
		 v->min_replicas != prm->min_replicas ||
		 v->domain != prm->domain)
		csi_fail(r, GRPC_STATUS_ALREADY_EXISTS, "volume %s exists with "
			 "replicas %d, minReplicas %d, failureDomain %s",
			 v->name, v->replicas, v->min_replicas,
			 cluster_domain_name(v->domain));
	else
		create_answer(v, prm->fs_type, r);
}

static bool zone_has_node(const struct cluster_node *nodes, size_t n,
			  const char *zone)
{
	for (size_t i = 0; i < n; i++)
		if (!strcmp(nodes[i].zone, zone))
			return true;
	return false;
}

/* The zone for the first replica: the first preferred, then requisite,
 * zone with a live node ("" if no topology was asked for). -1 with r
 * failed: bad topology, or no requisite zone has a live node. */
static int pick_zone(struct meta *m, const Csi__V1__TopologyRequirement *tr,
		     struct csi_zones *req, char out[CLUSTER_NAME_MAX],
		     struct csi_reply *r)
{
	struct csi_zones all = { 0 };
	struct cluster_node *nodes = NULL;
	size_t n = 0;
	int ret;

	out[0] = '\0';
	if (!tr)
		return 0;
	if (csi_topology_zones(tr->preferred, tr->n_preferred, &all, r) < 0 ||
	    csi_topology_zones(tr->requisite, tr->n_requisite, req, r) < 0 ||
	    csi_topology_zones(tr->requisite, tr->n_requisite, &all, r) < 0)
		return -1;
	if ((ret = cluster_node_list(m, &nodes, &n)) < 0) {
		csi_fail_errno(r, ret, "cannot list nodes");
		return -1;
	}
	for (int i = 0; i < all.n && !out[0]; i++)
		if (zone_has_node(nodes, n, all.zone[i]))
			snprintf(out, CLUSTER_NAME_MAX, "%s", all.zone[i]);
	free(nodes);
	if (req->n && !out[0]) {
		csi_fail(r, GRPC_STATUS_RESOURCE_EXHAUSTED, "no live node in "
			 "any requisite zone (first: %s)", req->zone[0]);
		return -1;
	}
	return 0;
}

static bool in_zones(const struct cluster_volume *v, const struct csi_zones *z)
{
	for (int i = 0; i < v->nplacement; i++) {
		char zone[CLUSTER_NAME_MAX];

		csi_domain_zone(v->placement[i].domain, zone);
		for (int j = 0; j < z->n; j++)
			if (!strcmp(zone, z->zone[j]))
				return true;
	}
	return z->n == 0;
}

static void create_new(struct meta *m, const Csi__V1__CreateVolumeRequest *req,
		       const struct csi_params *prm, uint64_t size,
		       struct csi_reply *r)
{
	struct csi_zones requisite = { 0 };
	struct cluster_volume_spec spec;
	struct cluster_volume v;
	char zone[CLUSTER_NAME_MAX], err[256];
	int ret;

	if (pick_zone(m, req->accessibility_requirements, &requisite, zone, r) < 0)
		return;
	cluster_volume_spec_init(&spec, req->name, size);
	spec.replicas = prm->replicas;
	spec.min_replicas = prm->min_replicas;
	spec.domain = prm->domain;
	spec.failover_manual = true;   /* it moves by ControllerPublish */
	spec.prefer_zone = zone[0] ? zone : NULL;
	ret = cluster_volume_create(m, &spec, &v, err, sizeof err);
	if (ret == -EEXIST && cluster_volume_get(m, req->name, &v) == 0) {
		create_existing(req, prm, &v, r);
		return;
	}
	if (ret == -ENOSPC) {
		csi_fail(r, GRPC_STATUS_RESOURCE_EXHAUSTED, "%s", err);
		return;
	}
	if (ret < 0) {
		csi_fail(r, ret == -EINVAL ? GRPC_STATUS_INVALID_ARGUMENT :
			 GRPC_STATUS_UNAVAILABLE, "%s", err);
		return;
	}
	if (!in_zones(&v, &requisite)) {
		cluster_volume_delete_data(m, v.name, true, NULL);
		csi_fail(r, GRPC_STATUS_RESOURCE_EXHAUSTED, "no replica "
			 "could be placed in a requisite zone");
		return;
	}
	create_answer(&v, prm->fs_type, r);
}

void controller_create_volume(struct csi_plugin *p, const ProtobufCMessage *msg,
			      struct csi_reply *r)
{
	const Csi__V1__CreateVolumeRequest *req = (const void *)msg;
	struct csi_params prm;
	struct cluster_volume v;
	struct meta *m;
	uint64_t size;
	int ret;

	if (create_check(req, &prm, &size, r) < 0 || !(m = csi_meta(p, r)))
		return;
	ret = cluster_volume_get(m, req->name, &v);
	if (ret == 0)
		create_existing(req, &prm, &v, r);
	else if (ret == -ENOENT)
		create_new(m, req, &prm, size, r);
	else
		csi_fail_errno(r, ret, "cannot read the volume");
}

/* Deleted with its data; an unknown id is success (deleted before). */
void controller_delete_volume(struct csi_plugin *p, const ProtobufCMessage *msg,
			      struct csi_reply *r)
{
	const Csi__V1__DeleteVolumeRequest *req = (const void *)msg;
	Csi__V1__DeleteVolumeResponse resp = CSI__V1__DELETE_VOLUME_RESPONSE__INIT;
	struct cluster_volume v;
	struct meta *m;
	int ret;

	if (!req->volume_id[0]) {
		csi_fail(r, GRPC_STATUS_INVALID_ARGUMENT,
			 "volume_id is required");
		return;
	}
	if (!(m = csi_meta(p, r)))
		return;
	if (parse_volume_name(req->volume_id) < 0) {
		csi_ok(r, &resp.base);  /* never one of ours */
		return;
	}
	ret = cluster_volume_delete_data(m, req->volume_id, false, &v);
	if (ret == -EBUSY) {
		csi_fail(r, GRPC_STATUS_FAILED_PRECONDITION, "volume %s "
			 "is published on node %s: unpublish it first",
			 req->volume_id, v.attached);
		return;
	}
	if (ret < 0 && ret != -ENOENT) {
		csi_fail_errno(r, ret, "cannot delete the volume");
		return;
	}
	csi_ok(r, &resp.base);
}
