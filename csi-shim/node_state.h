/*
 * What the node service staged, one record per volume in
 * STATE_DIR/staged/VOLUME.json, written atomically (temporary file,
 * fsync, rename), so a plugin that restarts finds what it had staged and
 * can check, repair or undo it.
 */
#ifndef TRIPLEX_CSI_NODE_STATE_H
#define TRIPLEX_CSI_NODE_STATE_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "cluster.h"

#define NODE_PATH_MAX 512

struct node_state {
	char volume[CLUSTER_NAME_MAX];
	char staging_path[NODE_PATH_MAX];
	char nbd_uri[CLUSTER_ADDR_MAX + CLUSTER_NAME_MAX + 16];
	char fuse_dir[NODE_PATH_MAX];      /* nbdfuse's mount point */
	char loop[32];                     /* "/dev/loopN" */
	char fs_type[8];                   /* "" for a block volume */
	bool block;
	pid_t fuse_pid;                    /* nbdfuse, 0 if unknown */
};

/* Decode one (untrusted: a file on disk) record: 0, or -EBADMSG. */
int node_state_from_json(const char *text, size_t len, struct node_state *out);
/* Its JSON text, malloc'd, or NULL. */
char *node_state_to_json(const struct node_state *s);

/* Read volume's record from dir: 0, -ENOENT or -EBADMSG. */
int node_state_load(const char *dir, const char *volume, struct node_state *out);
/* Write it (atomically), or remove it: 0 or -errno. */
int node_state_save(const char *dir, const struct node_state *s);
int node_state_remove(const char *dir, const char *volume);

#endif
