/*
 * ControllerPublishVolume / ControllerUnpublishVolume, the fencing point:
 * publishing to a node attaches the volume's engine there at a new epoch
 * (replicas then refuse the previous engine), unpublishing detaches it at
 * another. Both are a compare-and-swap of the volume record, so two
 * plugins racing on one volume cannot both win: the loser gets ABORTED
 * and the CO retries. ControllerExpandVolume grows it online.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "csi_args.h"
#include "parse.h"

/* Write v back (its changes made by the caller); ABORTED on a race. */
static int volume_cas(struct meta *m, struct cluster_volume *v,
		      struct csi_reply *r)
{
	int ret = cluster_volume_update(m, v);

	if (ret == -ESTALE)
		csi_fail(r, GRPC_STATUS_ABORTED, "volume %s changed meanwhile "
			 "(another call on it): retry", v->name);
	else if (ret == -ENOENT)
		csi_fail(r, GRPC_STATUS_NOT_FOUND, "volume %s was deleted "
			 "meanwhile", v->name);
	else if (ret < 0)
		csi_fail_errno(r, ret, "cannot update the volume");
	return ret < 0 ? -1 : 0;
}

static void publish_answer(const struct cluster_volume *v,
			   const struct cluster_node *n, struct csi_reply *r)
{
	Csi__V1__ControllerPublishVolumeResponse resp =
		CSI__V1__CONTROLLER_PUBLISH_VOLUME_RESPONSE__INIT;
	Csi__V1__ControllerPublishVolumeResponse__PublishContextEntry e[3],
		*ep[3];
	char uri[CLUSTER_ADDR_MAX + CLUSTER_NAME_MAX + 16], epoch[24];
	const char *keys[3] = { "nbdUri", "exportName", "epoch" };
	const char *vals[3] = { uri, v->name, epoch };

	snprintf(uri, sizeof uri, "nbd://%s/%s", n->nbd_addr, v->name);
	snprintf(epoch, sizeof epoch, "%llu", (unsigned long long)v->epoch);
	for (int i = 0; i < 3; i++) {
		csi__v1__controller_publish_volume_response__publish_context_entry__init(&e[i]);
		e[i].key = (char *)keys[i];
		e[i].value = (char *)vals[i];
		ep[i] = &e[i];
	}
	resp.n_publish_context = 3;
	resp.publish_context = ep;
	csi_ok(r, &resp.base);
}

static int publish_check(const Csi__V1__ControllerPublishVolumeRequest *req,
			 struct csi_reply *r)
{
	char why[160];
	int cr;

	if (!req->node_id[0] || !req->volume_capability) {
		csi_fail(r, GRPC_STATUS_INVALID_ARGUMENT, "%s is required",
			 !req->node_id[0] ? "node_id" : "volume_capability");
		return -1;
	}
	cr = csi_caps_check(&req->volume_capability, 1, why, sizeof why);
	if (cr < 0)
		csi_fail(r, GRPC_STATUS_INVALID_ARGUMENT, "%s", why);
	return cr < 0 ? -1 : 0;
}

void controller_publish_volume(struct csi_plugin *p,
			       const ProtobufCMessage *msg, struct csi_reply *r)
{
	const Csi__V1__ControllerPublishVolumeRequest *req = (const void *)msg;
	struct cluster_volume v;
	struct cluster_node n;
	int ret;

	if (csi_volume_lookup(p, req->volume_id, &v, r) < 0 ||
	    publish_check(req, r) < 0)
		return;
	ret = parse_volume_name(req->node_id) < 0 ? -ENOENT :
	      cluster_node_get(csi_meta(p, r), req->node_id, &n);
	if (ret < 0) {
		csi_fail(r, ret == -ENOENT ? GRPC_STATUS_NOT_FOUND :
			 GRPC_STATUS_UNAVAILABLE, "node %.64s is not "
			 "registered (is its triplexd up?)", req->node_id);
		return;
	}
	if (v.attached[0] && strcmp(v.attached, req->node_id)) {
		csi_fail(r, GRPC_STATUS_FAILED_PRECONDITION, "volume %s is "
			 "published on node %s: unpublish it there first",
			 v.name, v.attached);
		return;
	}
	if (!v.attached[0]) {
		v.epoch++;
		snprintf(v.attached, sizeof v.attached, "%s", req->node_id);
		if (volume_cas(csi_meta(p, r), &v, r) < 0)
			return;
	}
	publish_answer(&v, &n, r);
}

/* Not published there (or the volume is gone): nothing to do. */
void controller_unpublish_volume(struct csi_plugin *p,
				 const ProtobufCMessage *msg,
				 struct csi_reply *r)
{
	const Csi__V1__ControllerUnpublishVolumeRequest *req = (const void *)msg;
	Csi__V1__ControllerUnpublishVolumeResponse resp =
		CSI__V1__CONTROLLER_UNPUBLISH_VOLUME_RESPONSE__INIT;
	struct cluster_volume v;

	if (csi_volume_lookup(p, req->volume_id, &v, r) < 0) {
		if (r->code == GRPC_STATUS_NOT_FOUND)
			csi_ok(r, &resp.base);
		return;
	}
	if (v.attached[0] && (!req->node_id[0] ||
			      !strcmp(v.attached, req->node_id))) {
		v.epoch++;
		v.attached[0] = '\0';
		if (volume_cas(csi_meta(p, r), &v, r) < 0)
			return;
	}
	csi_ok(r, &resp.base);
}

static void expand_answer(const Csi__V1__ControllerExpandVolumeRequest *req,
			  uint64_t size, struct csi_reply *r)
{
	Csi__V1__ControllerExpandVolumeResponse resp =
		CSI__V1__CONTROLLER_EXPAND_VOLUME_RESPONSE__INIT;
	const Csi__V1__VolumeCapability *c = req->volume_capability;

	resp.capacity_bytes = (int64_t)size;
	/* A filesystem grows on the node (resize2fs); a block volume is
	 * done once the engine serves the new size. */
	resp.node_expansion_required =
		!c || c->access_type_case != CSI__V1__VOLUME_CAPABILITY__ACCESS_TYPE_BLOCK;
	csi_ok(r, &resp.base);
}

void controller_expand_volume(struct csi_plugin *p, const ProtobufCMessage *msg,
			      struct csi_reply *r)
{
	const Csi__V1__ControllerExpandVolumeRequest *req = (const void *)msg;
	struct cluster_volume v, out;
	uint64_t size;
	int ret;

	if (csi_volume_lookup(p, req->volume_id, &v, r) < 0)
		return;
	if (!req->capacity_range) {
		csi_fail(r, GRPC_STATUS_INVALID_ARGUMENT,
			 "capacity_range is required");
		return;
	}
	if (csi_capacity(req->capacity_range, &size, r) < 0)
		return;
	ret = cluster_volume_resize(csi_meta(p, r), v.name, size, &out);
	if (ret == -ERANGE || ret == -EALREADY)
		ret = 0;   /* already that big, or bigger */
	if (ret < 0) {
		csi_fail_errno(r, ret, "cannot resize the volume");
		return;
	}
	if (!csi_capacity_fits(req->capacity_range, out.size)) {
		csi_fail(r, GRPC_STATUS_OUT_OF_RANGE, "volume %s is already "
			 "%llu bytes, over limit_bytes", v.name,
			 (unsigned long long)out.size);
		return;
	}
	expand_answer(req, out.size, r);
}
