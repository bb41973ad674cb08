/*
 * triplex-csi: the CSI v1 plugin. One process serves Identity always, and
 * Controller, Node or both (--mode). Each RPC is a handler that gets the
 * decoded request and fills a struct csi_reply; grpc_server.c owns the
 * gRPC calls, rpc_table.c maps method paths to handlers.
 *
 * The plugin reaches the cluster only through the control library
 * (cluster.h): it never opens a replica store.
 */
#ifndef TRIPLEX_CSI_H
#define TRIPLEX_CSI_H

#include <grpc/status.h>
#include <protobuf-c/protobuf-c.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "csi.pb-c.h"
#include "meta.h"

#define CSI_PLUGIN_NAME "triplex.csi.io"
#define CSI_PLUGIN_VERSION "0.1.0"
#define CSI_TOPOLOGY_ZONE "topology.kubernetes.io/zone"

enum csi_mode {
	CSI_MODE_CONTROLLER = 1,
	CSI_MODE_NODE = 2,
	CSI_MODE_ALL = 3,
};

struct csi_plugin {
	enum csi_mode mode;
	const char *endpoint;      /* "unix:///csi/csi.sock" */
	const char *meta_url;      /* with the etcd TLS options folded in */
	const char *node_id;       /* the triplexd node this plugin runs on */
	const char *zone;          /* --zone, or "" (from the node record) */
	const char *state_dir;     /* staging records (node service) */
};

/* What a handler answers: code GRPC_STATUS_OK with the packed response in
 * resp (malloc'd), or another code with a one-line reason in msg. */
struct csi_reply {
	grpc_status_code code;
	char msg[256];
	uint8_t *resp;
	size_t resp_len;
};

typedef void (*csi_handler)(struct csi_plugin *p, const ProtobufCMessage *req,
			    struct csi_reply *r);

struct csi_rpc {
	const char *path;                          /* "/csi.v1.Node/NodeGetInfo" */
	const ProtobufCMessageDescriptor *request;
	csi_handler fn;
	enum csi_mode mode;                        /* served in these modes */
};

/* rpc_table.c: the RPC of a method path, or NULL; the i-th RPC of the
 * table, or NULL past its end (fuzzing). */
const struct csi_rpc *csi_rpc_find(const char *path, size_t len);
const struct csi_rpc *csi_rpc_at(size_t i);

/* reply.c: set an error status with a printf-style reason. */
void csi_fail(struct csi_reply *r, grpc_status_code code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* Pack msg as the OK answer (RESOURCE_EXHAUSTED if out of memory). */
void csi_ok(struct csi_reply *r, const ProtobufCMessage *msg);
/* Map a control-library -errno to a status, with what for the reason. */
void csi_fail_errno(struct csi_reply *r, int err, const char *what);

/* meta.c: the calling thread's metadata store handle, opened on first
 * use and kept. NULL (and r failed with UNAVAILABLE) when it cannot be
 * opened. */
struct meta *csi_meta(struct csi_plugin *p, struct csi_reply *r);
/* Close the thread's handle (after an error that may mean a dead
 * connection, or when the thread ends): the next call opens it anew. */
void csi_meta_reset(struct csi_plugin *p);

/* volume_busy.c: claim volume id for one call; -EBUSY if another call
 * holds it (the CSI answer is ABORTED: an operation is pending). "" is
 * never claimed. Release with csi_volume_release. */
int csi_volume_claim(const char *id);
void csi_volume_release(const char *id);

/* grpc_server.c: serve on p->endpoint with CSI_THREADS threads until
 * SIGTERM or SIGINT. 0, or -1 after logging why not. */
#define CSI_THREADS 4
int csi_serve(struct csi_plugin *p);

/* Handlers. */
void identity_get_plugin_info(struct csi_plugin *, const ProtobufCMessage *,
			      struct csi_reply *);
void identity_get_plugin_capabilities(struct csi_plugin *,
				      const ProtobufCMessage *,
				      struct csi_reply *);
void identity_probe(struct csi_plugin *, const ProtobufCMessage *,
		    struct csi_reply *);

void controller_create_volume(struct csi_plugin *, const ProtobufCMessage *,
			      struct csi_reply *);
void controller_delete_volume(struct csi_plugin *, const ProtobufCMessage *,
			      struct csi_reply *);
void controller_publish_volume(struct csi_plugin *, const ProtobufCMessage *,
			       struct csi_reply *);
void controller_unpublish_volume(struct csi_plugin *,
				 const ProtobufCMessage *, struct csi_reply *);
void controller_validate_volume_capabilities(struct csi_plugin *,
					     const ProtobufCMessage *,
					     struct csi_reply *);
void controller_list_volumes(struct csi_plugin *, const ProtobufCMessage *,
			     struct csi_reply *);
void controller_get_capacity(struct csi_plugin *, const ProtobufCMessage *,
			     struct csi_reply *);
void controller_get_capabilities(struct csi_plugin *,
				 const ProtobufCMessage *, struct csi_reply *);
void controller_expand_volume(struct csi_plugin *, const ProtobufCMessage *,
			      struct csi_reply *);
void controller_get_volume(struct csi_plugin *, const ProtobufCMessage *,
			   struct csi_reply *);

#endif
