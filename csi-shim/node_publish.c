/*
 * NodePublishVolume / NodeUnpublishVolume: a bind mount of the staging
 * mount (or, for a block volume, of the loop device onto a file) at the
 * pod's target path, read-only when asked.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "log.h"
#include "node_int.h"
#include "parse.h"

static int publish_parse(const Csi__V1__NodePublishVolumeRequest *req,
			 struct csi_reply *r)
{
	char why[sizeof r->msg];

	if (!req->volume_id[0] || !req->staging_target_path[0] ||
	    !req->target_path[0] || !req->volume_capability) {
		csi_fail(r, GRPC_STATUS_INVALID_ARGUMENT, "volume_id, "
			 "staging_target_path, target_path and "
			 "volume_capability are required");
		return -1;
	}
	if (csi_caps_check(&req->volume_capability, 1, why, sizeof why) < 0) {
		csi_fail(r, GRPC_STATUS_INVALID_ARGUMENT, "%s", why);
		return -1;
	}
	if (req->target_path[0] != '/' || parse_volume_name(req->volume_id) < 0) {
		csi_fail(r, GRPC_STATUS_INVALID_ARGUMENT,
			 "bad volume_id or target_path");
		return -1;
	}
	return 0;
}

/* The staging record the request names; -1 (r failed) if not staged
 * there or as another kind of volume. */
static int publish_staged(struct csi_plugin *p,
			  const Csi__V1__NodePublishVolumeRequest *req,
			  struct node_state *s, struct csi_reply *r)
{
	bool block = req->volume_capability->access_type_case ==
		     CSI__V1__VOLUME_CAPABILITY__ACCESS_TYPE_BLOCK;
	int ret = node_state_load(p->state_dir, req->volume_id, s);

	if (ret < 0 || strcmp(s->staging_path, req->staging_target_path)) {
		csi_fail(r, GRPC_STATUS_FAILED_PRECONDITION, "volume %s is not "
			 "staged at %.200s", req->volume_id,
			 req->staging_target_path);
		return -1;
	}
	if (block != s->block) {
		csi_fail(r, GRPC_STATUS_INVALID_ARGUMENT, "volume %s is staged "
			 "as a %s volume", s->volume, s->block ? "block" :
			 "mount");
		return -1;
	}
	return 0;
}

void node_publish_volume(struct csi_plugin *p, const ProtobufCMessage *msg,
			 struct csi_reply *r)
{
	const Csi__V1__NodePublishVolumeRequest *req = (const void *)msg;
	Csi__V1__NodePublishVolumeResponse resp =
		CSI__V1__NODE_PUBLISH_VOLUME_RESPONSE__INIT;
	char why[sizeof r->msg] = "";
	struct node_state s;
	struct statvfs st;

	if (publish_parse(req, r) < 0 || publish_staged(p, req, &s, r) < 0)
		return;
	if (node_is_mount(req->target_path)) {
		if (statvfs(req->target_path, &st) == 0 &&
		    !!(st.f_flag & ST_RDONLY) != !!req->readonly)
			csi_fail(r, GRPC_STATUS_ALREADY_EXISTS, "%.200s is "
				 "published %s", req->target_path,
				 req->readonly ? "read-write" : "read-only");
		else
			csi_ok(r, &resp.base);   /* published already */
		return;
	}
	if (node_bind(s.block ? s.loop : s.staging_path, req->target_path,
		      req->readonly, why, sizeof why) < 0) {
		csi_fail(r, GRPC_STATUS_INTERNAL, "%s", why);
		return;
	}
	log_info("csi: published %s at %s%s", s.volume, req->target_path,
		 req->readonly ? " (read-only)" : "");
	csi_ok(r, &resp.base);
}

void node_unpublish_volume(struct csi_plugin *p, const ProtobufCMessage *msg,
			   struct csi_reply *r)
{
	const Csi__V1__NodeUnpublishVolumeRequest *req = (const void *)msg;
	Csi__V1__NodeUnpublishVolumeResponse resp =
		CSI__V1__NODE_UNPUBLISH_VOLUME_RESPONSE__INIT;
	char why[sizeof r->msg] = "";

	if (!req->volume_id[0] || !req->target_path[0]) {
		csi_fail(r, GRPC_STATUS_INVALID_ARGUMENT,
			 "volume_id and target_path are required");
		return;
	}
	if (node_umount(req->target_path, why, sizeof why) < 0) {
		csi_fail(r, GRPC_STATUS_INTERNAL, "%s", why);
		return;
	}
	if (rmdir(req->target_path) < 0 && errno == ENOTDIR)
		unlink(req->target_path);     /* a block volume's file */
	csi_ok(r, &resp.base);
}
