/*
 * NodeStageVolume / NodeUnstageVolume: the published export becomes a
 * loop device on this node (node_attach.c); a mount volume gets a
 * filesystem (made only on a blank device) mounted at the staging path.
 * The record in --state-dir is written before anything is attached and
 * removed after everything is undone, so a plugin that dies in between
 * finds what to repair or clean up.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "log.h"
#include "node_int.h"
#include "parse.h"

/* Check the request; fill what it asks for into s. 0 or -1 (r failed). */
static int stage_parse(struct csi_plugin *p,
		       const Csi__V1__NodeStageVolumeRequest *req,
		       struct node_state *s, struct csi_reply *r)
{
	const Csi__V1__VolumeCapability *c = req->volume_capability;
	const char *uri = csi_kv_get((void *const *)req->publish_context,
				     req->n_publish_context, "nbdUri");
	const char *fs = csi_kv_get((void *const *)req->volume_context,
				    req->n_volume_context, "fsType");
	char why[sizeof r->msg];

	if (!req->volume_id[0] || !req->staging_target_path[0] || !c) {
		csi_fail(r, GRPC_STATUS_INVALID_ARGUMENT, "volume_id, "
			 "staging_target_path and volume_capability are required");
		return -1;
	}
	if (csi_caps_check(&req->volume_capability, 1, why, sizeof why) < 0) {
		csi_fail(r, GRPC_STATUS_INVALID_ARGUMENT, "%s", why);
		return -1;
	}
	if (parse_volume_name(req->volume_id) < 0 ||
	    req->staging_target_path[0] != '/' ||
	    strlen(req->staging_target_path) >= sizeof s->staging_path) {
		csi_fail(r, GRPC_STATUS_INVALID_ARGUMENT,
			 "bad volume_id or staging_target_path");
		return -1;
	}
	if (!uri || strncmp(uri, "nbd", 3) || strlen(uri) >= sizeof s->nbd_uri) {
		csi_fail(r, GRPC_STATUS_FAILED_PRECONDITION, "publish_context "
			 "has no nbdUri: was the volume ControllerPublished?");
		return -1;
	}
	memset(s, 0, sizeof *s);
	snprintf(s->volume, sizeof s->volume, "%s", req->volume_id);
	snprintf(s->staging_path, sizeof s->staging_path, "%s",
		 req->staging_target_path);
	snprintf(s->nbd_uri, sizeof s->nbd_uri, "%s", uri);
	snprintf(s->fuse_dir, sizeof s->fuse_dir, "%s/fuse/%s", p->state_dir,
		 s->volume);
	s->block = c->access_type_case == CSI__V1__VOLUME_CAPABILITY__ACCESS_TYPE_BLOCK;
	if (!s->block)
		snprintf(s->fs_type, sizeof s->fs_type, "%s",
			 c->mount && c->mount->fs_type[0] ? c->mount->fs_type :
			 fs && (!strcmp(fs, "ext4") || !strcmp(fs, "xfs")) ? fs :
			 "ext4");
	return 0;
}

/* The mount flags of a mount capability, comma-joined. */
static void stage_flags(const Csi__V1__VolumeCapability *c, char *out,
			size_t len)
{
	size_t used = 0;

	out[0] = '\0';
	if (c->access_type_case != CSI__V1__VOLUME_CAPABILITY__ACCESS_TYPE_MOUNT)
		return;   /* mount and block share a union */
	for (size_t i = 0; c->mount && i < c->mount->n_mount_flags; i++) {
		int w = snprintf(out + used, len - used, "%s%s", used ? "," : "",
				 c->mount->mount_flags[i]);

		if (w < 0 || (size_t)w >= len - used)
			break;
		used += (size_t)w;
	}
}

static bool stage_healthy(const struct node_state *s)
{
	return node_attached(s) && (s->block || node_is_mount(s->staging_path));
}

/* Undo s entirely and forget it. 0 or -1 (r failed). */
static int stage_undo(struct csi_plugin *p, struct node_state *s,
		      struct csi_reply *r)
{
	char why[sizeof r->msg] = "";

	if ((!s->block && node_umount(s->staging_path, why, sizeof why) < 0) ||
	    node_detach(s, why, sizeof why) < 0 ||
	    node_state_remove(p->state_dir, s->volume) < 0) {
		csi_fail(r, GRPC_STATUS_INTERNAL, "unstaging %s: %s", s->volume,
			 why[0] ? why : "cannot remove its record");
		return -1;
	}
	return 0;
}

static void stage_do(struct csi_plugin *p, struct node_state *s,
		     const Csi__V1__NodeStageVolumeRequest *req,
		     struct csi_reply *r)
{
	Csi__V1__NodeStageVolumeResponse resp =
		CSI__V1__NODE_STAGE_VOLUME_RESPONSE__INIT;
	char why[sizeof r->msg] = "", flags[1024], log[NODE_PATH_MAX + 8];
	int ret;

	snprintf(log, sizeof log, "%s/nbdfuse.log", p->state_dir);
	if ((ret = node_state_save(p->state_dir, s)) < 0) {
		csi_fail_errno(r, ret, "cannot write the staging record");
		return;
	}
	stage_flags(req->volume_capability, flags, sizeof flags);
	if (node_attach(s, log, why, sizeof why) < 0 ||
	    node_state_save(p->state_dir, s) < 0 ||
	    (!s->block && node_fs_mount(s->loop, s->fs_type, flags,
					s->staging_path, why, sizeof why) < 0)) {
		struct csi_reply undo = { 0 };

		stage_undo(p, s, &undo);
		csi_fail(r, GRPC_STATUS_INTERNAL, "staging %s: %s", s->volume,
			 why[0] ? why : "cannot write the staging record");
		return;
	}
	log_info("csi: staged %s on %s at %s", s->volume, s->loop,
		 s->block ? "(block)" : s->staging_path);
	csi_ok(r, &resp.base);
}

void node_stage_volume(struct csi_plugin *p, const ProtobufCMessage *msg,
		       struct csi_reply *r)
{
	const Csi__V1__NodeStageVolumeRequest *req = (const void *)msg;
	Csi__V1__NodeStageVolumeResponse resp =
		CSI__V1__NODE_STAGE_VOLUME_RESPONSE__INIT;
	struct node_state want, have;
	int ret;

	if (stage_parse(p, req, &want, r) < 0)
		return;
	ret = node_state_load(p->state_dir, want.volume, &have);
	if (ret == 0 && (strcmp(have.staging_path, want.staging_path) ||
			 have.block != want.block)) {
		csi_fail(r, GRPC_STATUS_ALREADY_EXISTS, "volume %s is staged at "
			 "%s%s", have.volume, have.staging_path,
			 have.block ? " as a block volume" : "");
		return;
	}
	if (ret == 0 && stage_healthy(&have)) {
		csi_ok(r, &resp.base);   /* staged already */
		return;
	}
	if (ret == 0 || ret == -EBADMSG) {
		log_warn("csi: %s's staging is %s: staging it anew", want.volume,
			 ret ? "unreadable" : "broken");
		if (stage_undo(p, ret ? &want : &have, r) < 0)
			return;
	}
	stage_do(p, &want, req, r);
}

void node_unstage_volume(struct csi_plugin *p, const ProtobufCMessage *msg,
			 struct csi_reply *r)
{
	const Csi__V1__NodeUnstageVolumeRequest *req = (const void *)msg;
	Csi__V1__NodeUnstageVolumeResponse resp =
		CSI__V1__NODE_UNSTAGE_VOLUME_RESPONSE__INIT;
	struct node_state s;
	char why[sizeof r->msg] = "";
	int ret;

	if (!req->volume_id[0] || !req->staging_target_path[0]) {
		csi_fail(r, GRPC_STATUS_INVALID_ARGUMENT, "volume_id and "
			 "staging_target_path are required");
		return;
	}
	ret = parse_volume_name(req->volume_id) < 0 ? -ENOENT :
	      node_state_load(p->state_dir, req->volume_id, &s);
	if (ret == -ENOENT) {
		/* Not staged by us (or undone already): nothing more than a
		 * mount left at the path to take away. */
		if (node_umount(req->staging_target_path, why, sizeof why) < 0)
			csi_fail(r, GRPC_STATUS_INTERNAL, "%s", why);
		else
			csi_ok(r, &resp.base);
		return;
	}
	if (ret < 0) {
		csi_fail_errno(r, ret, "cannot read the staging record");
		return;
	}
	if (stage_undo(p, &s, r) == 0) {
		log_info("csi: unstaged %s", s.volume);
		csi_ok(r, &resp.base);
	}
}
