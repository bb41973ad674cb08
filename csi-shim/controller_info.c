/* The Controller service's questions: ValidateVolumeCapabilities,
 * ControllerGetCapabilities, ControllerGetVolume. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "csi_args.h"
#include "parse.h"

/* The volume of a request's volume_id: 0, or -1 with r failed
 * (INVALID_ARGUMENT missing, NOT_FOUND unknown). */
int csi_volume_lookup(struct csi_plugin *p, const char *id,
		      struct cluster_volume *v, struct csi_reply *r)
{
	struct meta *m;
	int ret;

	if (!id[0]) {
		csi_fail(r, GRPC_STATUS_INVALID_ARGUMENT, "volume_id is required");
		return -1;
	}
	if (!(m = csi_meta(p, r)))
		return -1;
	ret = parse_volume_name(id) < 0 ? -ENOENT : cluster_volume_get(m, id, v);
	if (ret == -ENOENT)
		csi_fail(r, GRPC_STATUS_NOT_FOUND, "no volume %.64s", id);
	else if (ret < 0)
		csi_fail_errno(r, ret, "cannot read the volume");
	return ret < 0 ? -1 : 0;
}

void controller_validate_volume_capabilities(struct csi_plugin *p,
					     const ProtobufCMessage *msg,
					     struct csi_reply *r)
{
	const Csi__V1__ValidateVolumeCapabilitiesRequest *req = (const void *)msg;
	Csi__V1__ValidateVolumeCapabilitiesResponse resp =
		CSI__V1__VALIDATE_VOLUME_CAPABILITIES_RESPONSE__INIT;
	Csi__V1__ValidateVolumeCapabilitiesResponse__Confirmed ok =
		CSI__V1__VALIDATE_VOLUME_CAPABILITIES_RESPONSE__CONFIRMED__INIT;
	struct cluster_volume v;
	struct csi_params prm;
	struct csi_reply perr = { 0 };
	char why[sizeof r->msg];
	int cr;

	if (csi_volume_lookup(p, req->volume_id, &v, r) < 0)
		return;
	if (req->n_volume_capabilities == 0) {
		csi_fail(r, GRPC_STATUS_INVALID_ARGUMENT,
			 "volume_capabilities are required");
		return;
	}
	cr = csi_caps_check(req->volume_capabilities,
			    req->n_volume_capabilities, why, sizeof why);
	if (cr == -2) {
		csi_fail(r, GRPC_STATUS_INVALID_ARGUMENT, "%s", why);
		return;
	}
	if (cr == 0 && csi_params_parse((void *const *)req->parameters,
					req->n_parameters, &prm, &perr) < 0) {
		cr = -1;
		snprintf(why, sizeof why, "%s", perr.msg);
	}
	if (cr == 0) {
		ok.n_volume_capabilities = req->n_volume_capabilities;
		ok.volume_capabilities = req->volume_capabilities;
		resp.confirmed = &ok;
	} else {
		resp.message = why;
	}
	csi_ok(r, &resp.base);
}

void controller_get_capabilities(struct csi_plugin *p,
				 const ProtobufCMessage *msg,
				 struct csi_reply *r)
{
	static const Csi__V1__ControllerServiceCapability__RPC__Type types[] = {
		CSI__V1__CONTROLLER_SERVICE_CAPABILITY__RPC__TYPE__CREATE_DELETE_VOLUME,
		CSI__V1__CONTROLLER_SERVICE_CAPABILITY__RPC__TYPE__PUBLISH_UNPUBLISH_VOLUME,
		CSI__V1__CONTROLLER_SERVICE_CAPABILITY__RPC__TYPE__LIST_VOLUMES,
		CSI__V1__CONTROLLER_SERVICE_CAPABILITY__RPC__TYPE__GET_CAPACITY,
		CSI__V1__CONTROLLER_SERVICE_CAPABILITY__RPC__TYPE__EXPAND_VOLUME,
		CSI__V1__CONTROLLER_SERVICE_CAPABILITY__RPC__TYPE__LIST_VOLUMES_PUBLISHED_NODES,
		CSI__V1__CONTROLLER_SERVICE_CAPABILITY__RPC__TYPE__VOLUME_CONDITION,
		CSI__V1__CONTROLLER_SERVICE_CAPABILITY__RPC__TYPE__GET_VOLUME,
	};
	enum { N = sizeof types / sizeof types[0] };
	Csi__V1__ControllerGetCapabilitiesResponse resp =
		CSI__V1__CONTROLLER_GET_CAPABILITIES_RESPONSE__INIT;
	Csi__V1__ControllerServiceCapability cap[N], *caps[N];
	Csi__V1__ControllerServiceCapability__RPC rpc[N];

	for (size_t i = 0; i < N; i++) {
		csi__v1__controller_service_capability__init(&cap[i]);
		csi__v1__controller_service_capability__rpc__init(&rpc[i]);
		rpc[i].type = types[i];
		cap[i].type_case = CSI__V1__CONTROLLER_SERVICE_CAPABILITY__TYPE_RPC;
		cap[i].rpc = &rpc[i];
		caps[i] = &cap[i];
	}
	resp.n_capabilities = N;
	resp.capabilities = caps;
	csi_ok(r, &resp.base);
}

void controller_get_volume(struct csi_plugin *p, const ProtobufCMessage *msg,
			   struct csi_reply *r)
{
	const Csi__V1__ControllerGetVolumeRequest *req = (const void *)msg;
	Csi__V1__ControllerGetVolumeResponse resp =
		CSI__V1__CONTROLLER_GET_VOLUME_RESPONSE__INIT;
	Csi__V1__ControllerGetVolumeResponse__VolumeStatus st =
		CSI__V1__CONTROLLER_GET_VOLUME_RESPONSE__VOLUME_STATUS__INIT;
	Csi__V1__VolumeCondition cond = CSI__V1__VOLUME_CONDITION__INIT;
	struct csi_volume_msg vm;
	struct cluster_volume v;
	char *node, text[128];

	if (csi_volume_lookup(p, req->volume_id, &v, r) < 0)
		return;
	csi_volume_msg_fill(&vm, &v, false, NULL);
	node = v.attached;
	st.n_published_node_ids = v.attached[0] ? 1 : 0;
	st.published_node_ids = &node;
	cond.abnormal = csi_volume_abnormal(&v, text, sizeof text);
	cond.message = text;
	st.volume_condition = &cond;
	resp.volume = &vm.vol;
	resp.status = &st;
	csi_ok(r, &resp.base);
}
