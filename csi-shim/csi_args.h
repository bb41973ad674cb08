/*
 * What CSI requests carry, checked: volume capabilities, StorageClass
 * parameters, capacity ranges and topology (csi_args.c); the Volume
 * message of a triplex volume (csi_volume.c).
 */
#ifndef TRIPLEX_CSI_ARGS_H
#define TRIPLEX_CSI_ARGS_H

#include "cluster.h"
#include "csi.h"

#define CSI_DEFAULT_SIZE (1ull << 30)   /* no capacity_range: 1 GiB */
#define CSI_MAX_ZONES 16                /* topology segments looked at */

/* A protobuf-c map entry: every map<string, string> entry type of csi.proto
 * has this layout (base, key, value). */
struct csi_kv {
	ProtobufCMessage base;
	char *key;
	char *value;
};

/* The StorageClass parameters triplex takes. */
struct csi_params {
	int replicas;                  /* 1..5, default 3 */
	int min_replicas;              /* 1..replicas, default min(2, replicas) */
	enum cluster_domain domain;    /* failureDomain: zone (default) | rack */
	char fs_type[8];               /* fsType: "" | ext4 | xfs */
};

/* The zones of a TopologyRequirement, in order, each once. */
struct csi_zones {
	int n;
	char zone[CSI_MAX_ZONES][CLUSTER_NAME_MAX];
};

/* The value of key in a map's entries, or NULL. */
const char *csi_kv_get(void *const *entries, size_t n, const char *key);

/* 0 if every capability is one triplex serves (single-node access, block
 * or ext4/xfs mount); -1 with the reason in why otherwise. A capability
 * missing its access mode or type is -2 (INVALID_ARGUMENT even where an
 * unsupported one is not). */
int csi_caps_check(Csi__V1__VolumeCapability *const *caps, size_t n,
		   char *why, size_t len);

/* Parse parameters (map entries); fails r with INVALID_ARGUMENT and
 * returns -1 for an unknown key or a bad value. Keys under
 * csi.storage.k8s.io/ (the Kubernetes sidecars') are let through. */
int csi_params_parse(void *const *entries, size_t n, struct csi_params *out,
		     struct csi_reply *r);

/* The size to create for cr (NULL: default), a multiple of 4 KiB; fails r
 * (INVALID_ARGUMENT, OUT_OF_RANGE) and returns -1 if none fits. */
int csi_capacity(const Csi__V1__CapacityRange *cr, uint64_t *size,
		 struct csi_reply *r);
/* Whether size satisfies cr (NULL: any). */
bool csi_capacity_fits(const Csi__V1__CapacityRange *cr, uint64_t size);

/* The zones of topologies (only the zone key is allowed); -1 with r failed
 * (INVALID_ARGUMENT) otherwise. */
int csi_topology_zones(Csi__V1__Topology *const *t, size_t n,
		       struct csi_zones *out, struct csi_reply *r);
/* The zone part of a placement domain ("zone" or "zone/rack"). */
void csi_domain_zone(const char *domain, char out[CLUSTER_NAME_MAX]);

/* A Volume message of v, with the sub-messages it points to. */
struct csi_volume_msg {
	Csi__V1__Volume vol;
	char id[CLUSTER_NAME_MAX];
	int ntopo;
	Csi__V1__Topology topo[CLUSTER_MAX_REPLICAS];
	Csi__V1__Topology *topop[CLUSTER_MAX_REPLICAS];
	Csi__V1__Topology__SegmentsEntry seg[CLUSTER_MAX_REPLICAS];
	Csi__V1__Topology__SegmentsEntry *segp[CLUSTER_MAX_REPLICAS];
	char zone[CLUSTER_MAX_REPLICAS][CLUSTER_NAME_MAX];
	Csi__V1__Volume__VolumeContextEntry ctx[4];
	Csi__V1__Volume__VolumeContextEntry *ctxp[4];
	char ctxval[4][16];
};

/* Fill m from v: id, capacity, the replicas' zones as accessible_topology;
 * with_context adds the volume_context (replicas, minReplicas,
 * failureDomain, and fsType when fs_type is not empty). */
void csi_volume_msg_fill(struct csi_volume_msg *m,
			 const struct cluster_volume *v, bool with_context,
			 const char *fs_type);
/* The number of v's replicas in sync, and whether that is fewer than all
 * (the volume condition), with a message in msg. */
bool csi_volume_abnormal(const struct cluster_volume *v, char *msg,
			 size_t len);

/* controller_info.c: the volume of a request's volume_id: 0, or -1 with
 * r failed (INVALID_ARGUMENT if missing, NOT_FOUND if unknown). */
int csi_volume_lookup(struct csi_plugin *p, const char *id,
		      struct cluster_volume *v, struct csi_reply *r);

#endif
