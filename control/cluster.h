/*
 * Typed cluster records on top of the metadata store (meta.h): nodes and
 * volumes, stored as JSON under /triplex/. See docs/metadata.md for the key
 * layout and every field.
 *
 * Functions return 0 or -errno. Those that take err/errlen also write a
 * one-line reason there on failure (for the CLI and logs).
 */
#ifndef TRIPLEX_CLUSTER_H
#define TRIPLEX_CLUSTER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "meta.h"

#define CLUSTER_PREFIX "/triplex/"
#define CLUSTER_NODES_PREFIX "/triplex/nodes/"
#define CLUSTER_VOLUMES_PREFIX "/triplex/volumes/"
#define CLUSTER_CONFLICTS_PREFIX "/triplex/conflicts/"
#define CLUSTER_DELETED_PREFIX "/triplex/deleted/"
/* Outside CLUSTER_PREFIX: the agents' watch need not wake for it. */
#define CLUSTER_PROGRESS_PREFIX "/triplex-progress/"
#define CLUSTER_SEEN_PREFIX "/triplex-seen/"

#define CLUSTER_NAME_MAX 64     /* ids, zones, racks, volume names + NUL */
#define CLUSTER_ADDR_MAX 128    /* "host:port", "[v6]:port" */
#define CLUSTER_PATH_MAX 256
#define CLUSTER_INSTANCE_MAX 40 /* 32 hex digits + NUL */
#define CLUSTER_MAX_REPLICAS 5
#define CLUSTER_DOMAIN_MAX (2 * CLUSTER_NAME_MAX) /* "zone/rack" */
#define CLUSTER_MAX_VOLUME_SIZE (1ull << 50)  /* what a replica can hold */

/* ---- nodes ---------------------------------------------------------- */

struct cluster_node {
	char id[CLUSTER_NAME_MAX];
	char zone[CLUSTER_NAME_MAX];
	char rack[CLUSTER_NAME_MAX];          /* "" if none */
	char repl_addr[CLUSTER_ADDR_MAX];     /* replication listener */
	char nbd_addr[CLUSTER_ADDR_MAX];
	char http_addr[CLUSTER_ADDR_MAX];
	char data_dir[CLUSTER_PATH_MAX];
	/* The data directory's own random id (DIR/node.json): tells this
	 * node's own earlier run, whose lease may still run, from another
	 * daemon claiming the same id. */
	char instance[CLUSTER_INSTANCE_MAX];
	int64_t lease;                        /* from the store, read only */
};

/* Register (or re-register) node n under a new lease of ttl_s seconds: the
 * record disappears when the lease is not kept alive. *lease is the lease
 * to pass to cluster_node_keepalive. -EINVAL for a bad id or zone.
 * A live record of the same id is taken over only when it has n's
 * instance (this data directory's earlier run: its lease is revoked);
 * otherwise -EEXIST, nothing changes, and *holder (if not NULL) is the
 * live record. */
int cluster_node_register(struct meta *m, const struct cluster_node *n,
			  int ttl_s, int64_t *lease,
			  struct cluster_node *holder);
/* Note, under a lease of ttl_s, that n tried to register as an id that
 * was taken (CLUSTER_CONFLICTS_PREFIX + id), for the holder to log. */
int cluster_node_conflict_put(struct meta *m, const struct cluster_node *n,
			      int ttl_s);
/* The refused claimant noted for node id, if any: 0 with *who and
 * *rev (mod_rev, to report each one once), or -ENOENT. */
int cluster_node_conflict_get(struct meta *m, const char *id,
			      struct cluster_node *who, int64_t *rev);
/* Restart the lease's TTL; -ENOENT once it has expired (register again). */
int cluster_node_keepalive(struct meta *m, int64_t lease);
/* Remove the node's record now (clean shutdown) by revoking its lease. */
int cluster_node_unregister(struct meta *m, int64_t lease);
int cluster_node_get(struct meta *m, const char *id, struct cluster_node *out);
/* Every live node, sorted by id; *out is freed with free(). Records that
 * do not parse are skipped with a warning. */
int cluster_node_list(struct meta *m, struct cluster_node **out, size_t *n);

/* ---- volumes -------------------------------------------------------- */

enum cluster_domain {
	CLUSTER_DOMAIN_ZONE,
	CLUSTER_DOMAIN_RACK,   /* value "zone/rack": racks are per zone */
};

enum cluster_replica_state {
	CLUSTER_REPLICA_IN_SYNC,
	CLUSTER_REPLICA_OUT_OF_SYNC,
	CLUSTER_REPLICA_REBUILDING,
};

struct cluster_replica {
	char node[CLUSTER_NAME_MAX];
	char domain[CLUSTER_DOMAIN_MAX];  /* the node's domain when placed */
	enum cluster_replica_state state;
	uint64_t rebuild_done;            /* bytes; resumable checkpoint */
	bool doubt;                       /* in sync, but may lack a write
					     that failed (docs/metadata.md) */
};

struct cluster_volume {
	char name[CLUSTER_NAME_MAX];
	uint64_t id;                      /* unique, never reused */
	uint64_t size;                    /* bytes, multiple of 4096 */
	int replicas;
	int min_replicas;
	enum cluster_domain domain;
	bool relaxed;                     /* distinct nodes suffice */
	bool failover_manual;             /* no takeover when the engine's
					     node dies (default: automatic) */
	uint64_t epoch;                   /* bumped by every attach */
	uint64_t served_epoch;            /* the last epoch an engine started
					     serving at (0: never) */
	char attached[CLUSTER_NAME_MAX];  /* node id, "" if none */
	int nplacement;
	struct cluster_replica placement[CLUSTER_MAX_REPLICAS];
	int64_t mod_rev;                  /* the record's, for CAS */
};

struct cluster_volume_spec {
	const char *name;
	uint64_t size;
	int replicas;                     /* 1..5 */
	int min_replicas;                 /* 1..replicas */
	enum cluster_domain domain;
	bool relaxed;
	bool failover_manual;
	const char *prefer_zone;          /* a replica there if possible
					     (placement.h), or NULL */
};

/* Defaults: 3 replicas, min 2, zone domain, not relaxed. */
void cluster_volume_spec_init(struct cluster_volume_spec *spec,
			      const char *name, uint64_t size);

/* Validate spec, place it on live nodes (placement.h) and create the record
 * with a fresh id, epoch 0, every replica in sync. -EINVAL bad spec,
 * -ENOSPC no valid placement, -EEXIST the name is taken. */
int cluster_volume_create(struct meta *m,
			  const struct cluster_volume_spec *spec,
			  struct cluster_volume *out, char *err, size_t errlen);
int cluster_volume_get(struct meta *m, const char *name,
		       struct cluster_volume *out);
/* Decode the (untrusted) volume record kv: 0, or -EBADMSG with the reason
 * in err (malformed, or its name is not its key's). */
int cluster_volume_from_kv(const struct meta_kv *kv, struct cluster_volume *v,
			   char *err, size_t errlen);
/* Every volume, sorted by name; *out is freed with free(). Records that
 * do not decode are skipped with a warning. */
int cluster_volume_list(struct meta *m, struct cluster_volume **out,
			size_t *n);
/* Write v back if its record still has v->mod_rev (-ESTALE if it changed,
 * -ENOENT if deleted); on success v->mod_rev is the new revision. */
int cluster_volume_update(struct meta *m, struct cluster_volume *v);
/* Take the volume on node: epoch + 1, attached = node, retried on
 * conflicts. *out is the record written (its epoch is the new one).
 * -ENXIO if node is not registered (not alive): nothing changes. */
int cluster_volume_attach(struct meta *m, const char *name, const char *node,
			  struct cluster_volume *out);
/* An engine on node starts serving the volume: one epoch per engine
 * incarnation. If an engine already started at the current epoch (this
 * node's before a restart), the epoch is bumped first, so that nothing the
 * old incarnation sent can be taken for the new one's. *out is the record
 * written. -ESTALE if the volume is no longer attached to node. */
int cluster_volume_start_serving(struct meta *m, const char *name,
				 const char *node, struct cluster_volume *out);
/* Set one replica's state and rebuild checkpoint, retried on conflicts.
 * expect_epoch (0: any) fences a stale engine: -ESTALE if the volume's
 * epoch is not expect_epoch. -ENOENT if node holds no replica; -EBUSY if
 * that would leave fewer than min_replicas in sync (invariant 1). */
int cluster_volume_set_replica_state(struct meta *m, const char *name,
				     const char *node,
				     enum cluster_replica_state state,
				     uint64_t rebuild_done,
				     uint64_t expect_epoch,
				     struct cluster_volume *out);
/* Set or clear the doubt of node's replica (see struct cluster_replica),
 * fenced by expect_epoch like cluster_volume_set_replica_state. */
int cluster_volume_set_replica_doubt(struct meta *m, const char *name,
				     const char *node, bool doubt,
				     uint64_t expect_epoch,
				     struct cluster_volume *out);
/* Move old_node's replica to new_node (NULL or "": pick a live node in a
 * failure domain the volume does not use yet). The new replica starts
 * "rebuilding" at 0. -ENOSPC no suitable node, -EBUSY old_node is in sync
 * and removing it would leave fewer than min_replicas in sync. */
int cluster_volume_replace(struct meta *m, const char *name,
			   const char *old_node, const char *new_node,
			   struct cluster_volume *out, char *err,
			   size_t errlen);
/* expect_rev: -1 any, else the record's mod_rev (-ESTALE otherwise). */
int cluster_volume_delete(struct meta *m, const char *name,
			  int64_t expect_rev);
/* Automatic failover: node to takes the volume from dead_node (epoch + 1,
 * attached = to), a compare-and-swap so that two takers never both win.
 * -ESTALE if it is no longer attached to dead_node, -EBUSY if dead_node is
 * registered (alive) again, -EPERM if to holds no in-sync replica without
 * doubt or the volume's failover is manual. */
int cluster_volume_takeover(struct meta *m, const char *name,
			    const char *dead_node, const char *to,
			    struct cluster_volume *out);
/* Grow the volume to size bytes (online resize; the engine serving it
 * grows every replica, then itself): a compare-and-swap of the size,
 * retried on conflicts. Nothing changes on -EINVAL (size not a positive
 * multiple of 4096, or over CLUSTER_MAX_VOLUME_SIZE), -ERANGE (smaller
 * than the volume: shrinking is refused) or -EALREADY (that size
 * already). *out is the record written, or the one read for -ERANGE and
 * -EALREADY. */
int cluster_volume_resize(struct meta *m, const char *name, uint64_t size,
			  struct cluster_volume *out);
/* Take the volume off node (epoch + 1, attached = ""): its engine stops.
 * -EALREADY if it is not attached. */
int cluster_volume_detach(struct meta *m, const char *name,
			  struct cluster_volume *out);

/* ---- deleting with the data (cluster_delete.c) ---------------------- */

/* What is left to delete of a deleted volume: the nodes whose replica of
 * volume id (named name) is still on disk. */
struct cluster_tombstone {
	char name[CLUSTER_NAME_MAX];
	uint64_t id;
	int nnodes;
	char nodes[CLUSTER_MAX_REPLICAS][CLUSTER_NAME_MAX];
	int64_t mod_rev;
};

/* Delete the record and leave a tombstone for every replica's node. An
 * attached volume is -EBUSY (*out: its record) unless force. */
int cluster_volume_delete_data(struct meta *m, const char *name, bool force,
			       struct cluster_volume *out);
/* Decode one (untrusted) tombstone value: 0 or -EBADMSG. */
int cluster_tombstone_from_json(const char *text, size_t len,
				struct cluster_tombstone *t);
int cluster_tombstone_list(struct meta *m, struct cluster_tombstone **out,
			   size_t *n);
/* node deleted its replica of volume id: off the list (the tombstone goes
 * with the last node). */
int cluster_tombstone_done(struct meta *m, uint64_t id, const char *node);

/* ---- encoding and display (cluster_json.c) ------------------------- */

enum cluster_json_flag {
	CLUSTER_JSON_PRETTY = 1,  /* indented, for people */
	CLUSTER_JSON_REV = 2,     /* include "mod_rev" (CLI output) */
};

const char *cluster_domain_name(enum cluster_domain d);
int cluster_domain_parse(const char *s, enum cluster_domain *out);
const char *cluster_replica_state_name(enum cluster_replica_state s);
int cluster_replica_state_parse(const char *s,
				enum cluster_replica_state *out);

/* JSON text of a record; NULL if out of memory. Caller frees. */
char *cluster_volume_to_json(const struct cluster_volume *v, int flags);
char *cluster_node_to_json(const struct cluster_node *n, int flags);
/* Parse a stored record; -EBADMSG with a reason in err if malformed. */
int cluster_volume_from_json(const char *text, size_t len,
			     struct cluster_volume *out, char *err,
			     size_t errlen);
int cluster_node_from_json(const char *text, size_t len,
			   struct cluster_node *out, char *err, size_t errlen);

/* One line of the `triplexctl volume list` table and its header. */
const char *cluster_volume_table_header(void);
int cluster_volume_table_row(const struct cluster_volume *v, char *buf,
			     size_t len);
const char *cluster_node_table_header(void);
int cluster_node_table_row(const struct cluster_node *n, char *buf,
			   size_t len);

/* The node's value of the failure-domain key: its zone, or "zone/rack"
 * ("" if it has no rack). */
void cluster_node_domain(const struct cluster_node *n, enum cluster_domain d,
			 char out[CLUSTER_DOMAIN_MAX]);

#endif
