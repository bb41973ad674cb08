/* The node service's parts: attaching an export to a loop device
 * (node_attach.c) and mounts (node_mount.c). Functions that take why/len
 * write a one-line reason there on failure. */
#ifndef TRIPLEX_CSI_NODE_INT_H
#define TRIPLEX_CSI_NODE_INT_H

#include <stdbool.h>
#include <stdint.h>

#include "csi_args.h"
#include "node_state.h"

#define NODE_TOOL_TIMEOUT_MS 120000   /* mkfs of a large volume included */

/* Serve s->nbd_uri as s->fuse_dir/disk (nbdfuse) and put a loop device on
 * it: sets s->fuse_pid and s->loop. 0, or -1 with nothing left behind. */
int node_attach(struct node_state *s, const char *log, char *why, size_t len);
/* Undo node_attach (whatever part of it is there): 0 or -1. */
int node_detach(struct node_state *s, char *why, size_t len);
/* Whether s's loop device still reads s's nbdfuse file. */
bool node_attached(const struct node_state *s);

/* Whether path is the root of a mount (statx); false if it is missing. */
bool node_is_mount(const char *path);
/* Make a filesystem of type fs on dev unless it has one (blkid): its type
 * must then be fs. Grow it to the device (ext4 before the mount, xfs
 * after) and mount it at path with flags (comma-joined, may be empty).
 * 0 or -1. */
int node_fs_mount(const char *dev, const char *fs, const char *flags,
		  const char *path, char *why, size_t len);
/* Bind-mount src at target (created: a directory, or a file for a device),
 * read-only if ro. 0 or -1. */
int node_bind(const char *src, const char *target, bool ro, char *why,
	      size_t len);
/* Unmount path if it is a mount; 0 or -1. */
int node_umount(const char *path, char *why, size_t len);
/* Grow the filesystem on dev mounted at path to the device's size. */
int node_fs_grow(const char *dev, const char *fs, const char *path,
		 char *why, size_t len);
/* The size of a block device in bytes, or -errno. */
int64_t node_dev_size(const char *dev);

/* Handlers (rpc_table.c). */
void node_stage_volume(struct csi_plugin *, const ProtobufCMessage *,
		       struct csi_reply *);
void node_unstage_volume(struct csi_plugin *, const ProtobufCMessage *,
			 struct csi_reply *);
void node_publish_volume(struct csi_plugin *, const ProtobufCMessage *,
			 struct csi_reply *);
void node_unpublish_volume(struct csi_plugin *, const ProtobufCMessage *,
			   struct csi_reply *);
void node_get_volume_stats(struct csi_plugin *, const ProtobufCMessage *,
			   struct csi_reply *);
void node_expand_volume(struct csi_plugin *, const ProtobufCMessage *,
			struct csi_reply *);
void node_get_capabilities(struct csi_plugin *, const ProtobufCMessage *,
			   struct csi_reply *);
void node_get_info(struct csi_plugin *, const ProtobufCMessage *,
		   struct csi_reply *);

#endif
