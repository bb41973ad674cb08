/* The node service's questions: NodeGetInfo, NodeGetCapabilities,
 * NodeGetVolumeStats; and NodeExpandVolume. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "node_int.h"
#include "parse.h"
#include "run.h"

#define NODE_MAX_VOLUMES 64   /* loop devices and nbdfuse processes */

void node_get_info(struct csi_plugin *p, const ProtobufCMessage *msg,
		   struct csi_reply *r)
{
	Csi__V1__NodeGetInfoResponse resp = CSI__V1__NODE_GET_INFO_RESPONSE__INIT;
	Csi__V1__Topology topo = CSI__V1__TOPOLOGY__INIT;
	Csi__V1__Topology__SegmentsEntry seg =
		CSI__V1__TOPOLOGY__SEGMENTS_ENTRY__INIT, *segp = &seg;
	struct cluster_node n;
	struct meta *m;
	int ret;

	snprintf(n.zone, sizeof n.zone, "%s", p->zone);
	if (!n.zone[0]) {
		if (!(m = csi_meta(p, r)))
			return;
		if ((ret = cluster_node_get(m, p->node_id, &n)) < 0) {
			csi_fail(r, GRPC_STATUS_UNAVAILABLE, "node %s is not "
				 "registered (give --zone, or start its "
				 "triplexd)", p->node_id);
			return;
		}
	}
	seg.key = (char *)CSI_TOPOLOGY_ZONE;
	seg.value = n.zone;
	topo.n_segments = 1;
	topo.segments = &segp;
	resp.node_id = (char *)p->node_id;
	resp.max_volumes_per_node = NODE_MAX_VOLUMES;
	resp.accessible_topology = &topo;
	csi_ok(r, &resp.base);
}

void node_get_capabilities(struct csi_plugin *p, const ProtobufCMessage *msg,
			   struct csi_reply *r)
{
	static const Csi__V1__NodeServiceCapability__RPC__Type types[] = {
		CSI__V1__NODE_SERVICE_CAPABILITY__RPC__TYPE__STAGE_UNSTAGE_VOLUME,
		CSI__V1__NODE_SERVICE_CAPABILITY__RPC__TYPE__GET_VOLUME_STATS,
		CSI__V1__NODE_SERVICE_CAPABILITY__RPC__TYPE__EXPAND_VOLUME,
		CSI__V1__NODE_SERVICE_CAPABILITY__RPC__TYPE__VOLUME_CONDITION,
	};
	enum { N = sizeof types / sizeof types[0] };
	Csi__V1__NodeGetCapabilitiesResponse resp =
		CSI__V1__NODE_GET_CAPABILITIES_RESPONSE__INIT;
	Csi__V1__NodeServiceCapability cap[N], *caps[N];
	Csi__V1__NodeServiceCapability__RPC rpc[N];

	for (size_t i = 0; i < N; i++) {
		csi__v1__node_service_capability__init(&cap[i]);
		csi__v1__node_service_capability__rpc__init(&rpc[i]);
		rpc[i].type = types[i];
		cap[i].type_case = CSI__V1__NODE_SERVICE_CAPABILITY__TYPE_RPC;
		cap[i].rpc = &rpc[i];
		caps[i] = &cap[i];
	}
	resp.n_capabilities = N;
	resp.capabilities = caps;
	csi_ok(r, &resp.base);
}

static void usage_set(Csi__V1__VolumeUsage *u, Csi__V1__VolumeUsage__Unit unit,
		      uint64_t total, uint64_t avail, uint64_t used)
{
	csi__v1__volume_usage__init(u);
	u->unit = unit;
	u->total = (int64_t)total;
	u->available = (int64_t)avail;
	u->used = (int64_t)used;
}

/* The volume's condition from its record (degraded, below minReplicas);
 * false if the store does not say. */
static bool stats_condition(struct csi_plugin *p, const char *id,
			    Csi__V1__VolumeCondition *c, char *text,
			    size_t len)
{
	struct csi_reply ignore = { 0 };
	struct cluster_volume v;
	struct meta *m = csi_meta(p, &ignore);

	if (!m || parse_volume_name(id) < 0 || cluster_volume_get(m, id, &v) < 0)
		return false;
	c->abnormal = csi_volume_abnormal(&v, text, len);
	c->message = text;
	return true;
}

void node_get_volume_stats(struct csi_plugin *p, const ProtobufCMessage *msg,
			   struct csi_reply *r)
{
	const Csi__V1__NodeGetVolumeStatsRequest *req = (const void *)msg;
	Csi__V1__NodeGetVolumeStatsResponse resp =
		CSI__V1__NODE_GET_VOLUME_STATS_RESPONSE__INIT;
	Csi__V1__VolumeCondition cond = CSI__V1__VOLUME_CONDITION__INIT;
	Csi__V1__VolumeUsage u[2], *up[2] = { &u[0], &u[1] };
	char text[128];
	struct statvfs vf;
	struct stat st;
	int64_t size;

	if (!req->volume_id[0] || !req->volume_path[0]) {
		csi_fail(r, GRPC_STATUS_INVALID_ARGUMENT,
			 "volume_id and volume_path are required");
		return;
	}
	if (stat(req->volume_path, &st) < 0) {
		csi_fail(r, GRPC_STATUS_NOT_FOUND, "%.200s: %s",
			 req->volume_path, strerror(errno));
		return;
	}
	if (S_ISBLK(st.st_mode) && (size = node_dev_size(req->volume_path)) >= 0) {
		usage_set(&u[0], CSI__V1__VOLUME_USAGE__UNIT__BYTES,
			  (uint64_t)size, 0, 0);
		resp.n_usage = 1;
	} else if (statvfs(req->volume_path, &vf) == 0) {
		usage_set(&u[0], CSI__V1__VOLUME_USAGE__UNIT__BYTES,
			  vf.f_blocks * vf.f_frsize, vf.f_bavail * vf.f_frsize,
			  (vf.f_blocks - vf.f_bfree) * vf.f_frsize);
		usage_set(&u[1], CSI__V1__VOLUME_USAGE__UNIT__INODES, vf.f_files,
			  vf.f_favail, vf.f_files - vf.f_ffree);
		resp.n_usage = 2;
	} else {
		csi_fail(r, GRPC_STATUS_INTERNAL, "statvfs %.200s: %s",
			 req->volume_path, strerror(errno));
		return;
	}
	resp.usage = up;
	if (stats_condition(p, req->volume_id, &cond, text, sizeof text))
		resp.volume_condition = &cond;
	csi_ok(r, &resp.base);
}

/* Grow the filesystem to what the loop device offers now. An nbdfuse
 * attachment keeps the size its connection was offered: a volume grown
 * since it was staged reaches its full size at the next NodeStage. */
void node_expand_volume(struct csi_plugin *p, const ProtobufCMessage *msg,
			struct csi_reply *r)
{
	const Csi__V1__NodeExpandVolumeRequest *req = (const void *)msg;
	Csi__V1__NodeExpandVolumeResponse resp =
		CSI__V1__NODE_EXPAND_VOLUME_RESPONSE__INIT;
	const char *refresh[] = { "losetup", "-c", NULL, NULL };
	char why[sizeof r->msg] = "";
	struct node_state s;
	int64_t size;

	if (!req->volume_id[0] || !req->volume_path[0]) {
		csi_fail(r, GRPC_STATUS_INVALID_ARGUMENT,
			 "volume_id and volume_path are required");
		return;
	}
	if (parse_volume_name(req->volume_id) < 0 ||
	    node_state_load(p->state_dir, req->volume_id, &s) < 0 ||
	    access(req->volume_path, F_OK) < 0) {
		csi_fail(r, GRPC_STATUS_NOT_FOUND, "volume %.64s is not staged "
			 "here, or %.200s is missing", req->volume_id,
			 req->volume_path);
		return;
	}
	refresh[2] = s.loop;
	run_cmd(refresh, NULL, 0, NODE_TOOL_TIMEOUT_MS);  /* the new size */
	if (!s.block && node_fs_grow(s.loop, s.fs_type, s.staging_path, why,
				     sizeof why) < 0) {
		csi_fail(r, GRPC_STATUS_INTERNAL, "%s", why);
		return;
	}
	size = node_dev_size(s.loop);
	if (req->capacity_range && req->capacity_range->required_bytes > size) {
		csi_fail(r, GRPC_STATUS_FAILED_PRECONDITION, "the attachment of "
			 "%s serves %lld bytes: it grows to %lld when staged "
			 "again", s.volume, (long long)size,
			 (long long)req->capacity_range->required_bytes);
		return;
	}
	resp.capacity_bytes = size;
	csi_ok(r, &resp.base);
}
