/* The Identity service: who the plugin is, what it offers, whether it is
 * ready (the metadata store answers). */
#include <stdlib.h>
#include <string.h>

#include "cluster.h"
#include "csi.h"

void identity_get_plugin_info(struct csi_plugin *p, const ProtobufCMessage *req,
			      struct csi_reply *r)
{
	Csi__V1__GetPluginInfoResponse resp =
		CSI__V1__GET_PLUGIN_INFO_RESPONSE__INIT;

	resp.name = (char *)CSI_PLUGIN_NAME;
	resp.vendor_version = (char *)CSI_PLUGIN_VERSION;
	csi_ok(r, &resp.base);
}

void identity_get_plugin_capabilities(struct csi_plugin *p,
				      const ProtobufCMessage *req,
				      struct csi_reply *r)
{
	Csi__V1__GetPluginCapabilitiesResponse resp =
		CSI__V1__GET_PLUGIN_CAPABILITIES_RESPONSE__INIT;
	Csi__V1__PluginCapability cap[3], *caps[3];
	Csi__V1__PluginCapability__Service svc[2];
	Csi__V1__PluginCapability__VolumeExpansion exp =
		CSI__V1__PLUGIN_CAPABILITY__VOLUME_EXPANSION__INIT;
	static const Csi__V1__PluginCapability__Service__Type types[2] = {
		CSI__V1__PLUGIN_CAPABILITY__SERVICE__TYPE__CONTROLLER_SERVICE,
		CSI__V1__PLUGIN_CAPABILITY__SERVICE__TYPE__VOLUME_ACCESSIBILITY_CONSTRAINTS,
	};

	for (int i = 0; i < 3; i++) {
		csi__v1__plugin_capability__init(&cap[i]);
		caps[i] = &cap[i];
	}
	for (int i = 0; i < 2; i++) {
		csi__v1__plugin_capability__service__init(&svc[i]);
		svc[i].type = types[i];
		cap[i].type_case = CSI__V1__PLUGIN_CAPABILITY__TYPE_SERVICE;
		cap[i].service = &svc[i];
	}
	exp.type = CSI__V1__PLUGIN_CAPABILITY__VOLUME_EXPANSION__TYPE__ONLINE;
	cap[2].type_case = CSI__V1__PLUGIN_CAPABILITY__TYPE_VOLUME_EXPANSION;
	cap[2].volume_expansion = &exp;
	resp.n_capabilities = 3;
	resp.capabilities = caps;
	csi_ok(r, &resp.base);
}

/* Ready when the metadata store answers a read and, for a node plugin,
 * its triplexd is registered (alive); FAILED_PRECONDITION (the plugin
 * cannot work now) when not. */
void identity_probe(struct csi_plugin *p, const ProtobufCMessage *req,
		    struct csi_reply *r)
{
	Csi__V1__ProbeResponse resp = CSI__V1__PROBE_RESPONSE__INIT;
	Csi__V1__BoolValue ready = CSI__V1__BOOL_VALUE__INIT;
	struct cluster_node *nodes = NULL, self;
	struct meta *m = csi_meta(p, r);
	size_t n;
	int ret;

	if (!m) {
		r->code = GRPC_STATUS_FAILED_PRECONDITION;
		return;
	}
	ret = cluster_node_list(m, &nodes, &n);
	free(nodes);
	if (ret < 0) {
		csi_meta_reset(p);
		csi_fail(r, GRPC_STATUS_FAILED_PRECONDITION,
			 "metadata store does not answer: %s", strerror(-ret));
		return;
	}
	if ((p->mode & CSI_MODE_NODE) &&
	    (ret = cluster_node_get(m, p->node_id, &self)) < 0) {
		csi_fail(r, GRPC_STATUS_FAILED_PRECONDITION,
			 "node %s is not registered: is its triplexd up?",
			 p->node_id);
		return;
	}
	ready.value = true;
	resp.ready = &ready;
	csi_ok(r, &resp.base);
}
