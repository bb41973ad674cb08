/* Method paths of CSI v1 and the handler of each. Identity is served in
 * every mode; Controller and Node only in theirs. */
#include <string.h>

#include "csi.h"
#include "node_int.h"

#define ID CSI_MODE_ALL
#define CTL CSI_MODE_CONTROLLER
#define NODE CSI_MODE_NODE
#define RPC(svc, name, msg, fn, mode) \
	{ "/csi.v1." svc "/" name, &csi__v1__##msg##__descriptor, fn, mode }

static const struct csi_rpc rpcs[] = {
	RPC("Identity", "GetPluginInfo", get_plugin_info_request,
	    identity_get_plugin_info, ID),
	RPC("Identity", "GetPluginCapabilities",
	    get_plugin_capabilities_request,
	    identity_get_plugin_capabilities, ID),
	RPC("Identity", "Probe", probe_request, identity_probe, ID),
	RPC("Controller", "CreateVolume", create_volume_request,
	    controller_create_volume, CTL),
	RPC("Controller", "DeleteVolume", delete_volume_request,
	    controller_delete_volume, CTL),
	RPC("Controller", "ControllerPublishVolume",
	    controller_publish_volume_request, controller_publish_volume, CTL),
	RPC("Controller", "ControllerUnpublishVolume",
	    controller_unpublish_volume_request, controller_unpublish_volume,
	    CTL),
	RPC("Controller", "ValidateVolumeCapabilities",
	    validate_volume_capabilities_request,
	    controller_validate_volume_capabilities, CTL),
	RPC("Controller", "ListVolumes", list_volumes_request,
	    controller_list_volumes, CTL),
	RPC("Controller", "GetCapacity", get_capacity_request,
	    controller_get_capacity, CTL),
	RPC("Controller", "ControllerGetCapabilities",
	    controller_get_capabilities_request, controller_get_capabilities,
	    CTL),
	RPC("Controller", "ControllerExpandVolume",
	    controller_expand_volume_request, controller_expand_volume, CTL),
	RPC("Controller", "ControllerGetVolume", controller_get_volume_request,
	    controller_get_volume, CTL),
	RPC("Node", "NodeStageVolume", node_stage_volume_request,
	    node_stage_volume, NODE),
	RPC("Node", "NodeUnstageVolume", node_unstage_volume_request,
	    node_unstage_volume, NODE),
	RPC("Node", "NodePublishVolume", node_publish_volume_request,
	    node_publish_volume, NODE),
	RPC("Node", "NodeUnpublishVolume", node_unpublish_volume_request,
	    node_unpublish_volume, NODE),
	RPC("Node", "NodeGetVolumeStats", node_get_volume_stats_request,
	    node_get_volume_stats, NODE),
	RPC("Node", "NodeExpandVolume", node_expand_volume_request,
	    node_expand_volume, NODE),
	RPC("Node", "NodeGetCapabilities", node_get_capabilities_request,
	    node_get_capabilities, NODE),
	RPC("Node", "NodeGetInfo", node_get_info_request, node_get_info, NODE),
};

const struct csi_rpc *csi_rpc_find(const char *path, size_t len)
{
	for (size_t i = 0; i < sizeof rpcs / sizeof rpcs[0]; i++)
		if (strlen(rpcs[i].path) == len &&
		    !memcmp(rpcs[i].path, path, len))
			return &rpcs[i];
	return NULL;
}

const struct csi_rpc *csi_rpc_at(size_t i)
{
	return i < sizeof rpcs / sizeof rpcs[0] ? &rpcs[i] : NULL;
}
