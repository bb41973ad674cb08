/*
 * Replica placement: choose nodes for a volume's replicas on distinct
 * failure domains, least-loaded first. Pure: no store access, so it is
 * tested on plain arrays.
 */
#ifndef TRIPLEX_PLACEMENT_H
#define TRIPLEX_PLACEMENT_H

#include <stdbool.h>
#include <stddef.h>

#include "cluster.h"

struct placement_input {
	const struct cluster_node *nodes;    /* live nodes */
	size_t nnodes;
	const unsigned *load;                /* replicas held, per node */
	enum cluster_domain domain;
	bool relaxed;                        /* distinct nodes suffice */
	/* The volume's replicas that stay: their nodes are never chosen and
	 * their domains count as used. */
	const struct cluster_replica *taken;
	int ntaken;
	const char *exclude;                 /* node never chosen, or NULL */
	/* A zone that gets the first replica if it has an eligible node
	 * (CSI's preferred topology), or NULL. */
	const char *prefer_zone;
	int count;                           /* nodes to choose */
};

/* Choose in->count nodes: out[i] indexes in->nodes. The best node of
 * in->prefer_zone first (if any), then distinct domains not already used
 * (ties: fewer replicas, then id); if relaxed, then any other distinct
 * node. -ENOSPC with a one-line reason in err. */
int placement_choose(const struct placement_input *in, size_t *out,
		     char *err, size_t errlen);

#endif
