/* Checks of what CSI requests carry (csi_args.h). */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "csi_args.h"
#include "parse.h"

_Static_assert(offsetof(struct csi_kv, key) ==
	       offsetof(Csi__V1__CreateVolumeRequest__ParametersEntry, key) &&
	       offsetof(struct csi_kv, value) ==
	       offsetof(Csi__V1__CreateVolumeRequest__ParametersEntry, value) &&
	       offsetof(struct csi_kv, value) ==
	       offsetof(Csi__V1__Topology__SegmentsEntry, value),
	       "map entries are (base, key, value)");

const char *csi_kv_get(void *const *entries, size_t n, const char *key)
{
	for (size_t i = 0; i < n; i++) {
		const struct csi_kv *kv = entries[i];

		if (kv->key && !strcmp(kv->key, key))
			return kv->value;
	}
	return NULL;
}

static int cap_check(const Csi__V1__VolumeCapability *c, char *why,
		     size_t len)
{
	const char *fs;

	if (!c->access_mode) {
		snprintf(why, len, "a volume capability has no access_mode");
		return -2;
	}
	if (c->access_type_case == CSI__V1__VOLUME_CAPABILITY__ACCESS_TYPE__NOT_SET) {
		snprintf(why, len, "a volume capability is neither block nor mount");
		return -2;
	}
	switch (c->access_mode->mode) {
	case CSI__V1__VOLUME_CAPABILITY__ACCESS_MODE__MODE__SINGLE_NODE_WRITER:
	case CSI__V1__VOLUME_CAPABILITY__ACCESS_MODE__MODE__SINGLE_NODE_READER_ONLY:
		break;
	default:
		snprintf(why, len, "access mode %d is not served: a triplex "
			 "volume is served on one node at a time",
			 (int)c->access_mode->mode);
		return -1;
	}
	if (c->access_type_case != CSI__V1__VOLUME_CAPABILITY__ACCESS_TYPE_MOUNT)
		return 0;
	fs = c->mount ? c->mount->fs_type : "";
	if (fs[0] && strcmp(fs, "ext4") && strcmp(fs, "xfs")) {
		snprintf(why, len, "fs_type '%.32s' is not served (ext4, xfs)",
			 fs);
		return -1;
	}
	return 0;
}

int csi_caps_check(Csi__V1__VolumeCapability *const *caps, size_t n,
		   char *why, size_t len)
{
	int worst = 0;

	for (size_t i = 0; i < n; i++) {
		char one[160];
		int r = cap_check(caps[i], one, sizeof one);

		if (r < worst) {
			worst = r;
			snprintf(why, len, "%s", one);
		}
	}
	return worst;
}

static int param_int(const char *v, int lo, int hi, int *out)
{
	char *end;
	long x = strtol(v, &end, 10);

	if (!*v || *end || x < lo || x > hi)
		return -1;
	*out = (int)x;
	return 0;
}

/* One parameter; 0, or -1 with r failed. */
static int param_one(const struct csi_kv *kv, struct csi_params *p,
		     struct csi_reply *r)
{
	const char *k = kv->key, *v = kv->value;

	if (!strncmp(k, "csi.storage.k8s.io/", 19))
		return 0;   /* the sidecars' own (fstype, pvc name, ...) */
	if (!strcmp(k, "replicas") &&
	    param_int(v, 1, CLUSTER_MAX_REPLICAS, &p->replicas) == 0)
		return 0;
	if (!strcmp(k, "minReplicas") &&
	    param_int(v, 1, CLUSTER_MAX_REPLICAS, &p->min_replicas) == 0)
		return 0;
	if (!strcmp(k, "failureDomain") && cluster_domain_parse(v, &p->domain) == 0)
		return 0;
	if (!strcmp(k, "fsType") && (!strcmp(v, "ext4") || !strcmp(v, "xfs"))) {
		snprintf(p->fs_type, sizeof p->fs_type, "%s", v);
		return 0;
	}
	if (strcmp(k, "replicas") && strcmp(k, "minReplicas") &&
	    strcmp(k, "failureDomain") && strcmp(k, "fsType"))
		csi_fail(r, GRPC_STATUS_INVALID_ARGUMENT,
			 "unknown parameter '%.64s' (replicas, minReplicas, "
			 "failureDomain, fsType)", k);
	else
		csi_fail(r, GRPC_STATUS_INVALID_ARGUMENT,
			 "bad value '%.64s' for parameter %s", v, k);
	return -1;
}

int csi_params_parse(void *const *entries, size_t n, struct csi_params *out,
		     struct csi_reply *r)
{
	memset(out, 0, sizeof *out);
	out->replicas = 3;
	out->domain = CLUSTER_DOMAIN_ZONE;
	for (size_t i = 0; i < n; i++)
		if (param_one(entries[i], out, r) < 0)
			return -1;
	if (!out->min_replicas)
		out->min_replicas = out->replicas < 2 ? out->replicas : 2;
	if (out->min_replicas > out->replicas) {
		csi_fail(r, GRPC_STATUS_INVALID_ARGUMENT,
			 "minReplicas %d is over replicas %d",
			 out->min_replicas, out->replicas);
		return -1;
	}
	return 0;
}

int csi_capacity(const Csi__V1__CapacityRange *cr, uint64_t *size,
		 struct csi_reply *r)
{
	int64_t req = cr ? cr->required_bytes : 0, lim = cr ? cr->limit_bytes : 0;
	uint64_t s;

	if (req < 0 || lim < 0) {
		csi_fail(r, GRPC_STATUS_INVALID_ARGUMENT,
			 "negative capacity_range");
		return -1;
	}
	if (req > (int64_t)CLUSTER_MAX_VOLUME_SIZE) {
		csi_fail(r, GRPC_STATUS_OUT_OF_RANGE, "required_bytes %lld is "
			 "over the largest volume (1 PiB)", (long long)req);
		return -1;
	}
	if (req)
		s = ((uint64_t)req + 4095) & ~4095ull;
	else if (lim && (uint64_t)lim < CSI_DEFAULT_SIZE)
		s = (uint64_t)lim & ~4095ull;
	else
		s = CSI_DEFAULT_SIZE;
	if (s == 0 || (lim && s > (uint64_t)lim)) {
		csi_fail(r, GRPC_STATUS_OUT_OF_RANGE, "no multiple of 4096 "
			 "bytes between required_bytes %lld and limit_bytes "
			 "%lld", (long long)req, (long long)lim);
		return -1;
	}
	*size = s;
	return 0;
}

bool csi_capacity_fits(const Csi__V1__CapacityRange *cr, uint64_t size)
{
	if (!cr)
		return true;
	if (cr->required_bytes > 0 && size < (uint64_t)cr->required_bytes)
		return false;
	return cr->limit_bytes <= 0 || size <= (uint64_t)cr->limit_bytes;
}

static void zones_add(struct csi_zones *z, const char *zone)
{
	for (int i = 0; i < z->n; i++)
		if (!strcmp(z->zone[i], zone))
			return;
	if (z->n < CSI_MAX_ZONES)
		snprintf(z->zone[z->n++], CLUSTER_NAME_MAX, "%s", zone);
}

int csi_topology_zones(Csi__V1__Topology *const *t, size_t n,
		       struct csi_zones *out, struct csi_reply *r)
{
	for (size_t i = 0; i < n; i++) {
		for (size_t j = 0; j < t[i]->n_segments; j++) {
			const struct csi_kv *kv = (void *)t[i]->segments[j];

			if (strcmp(kv->key, CSI_TOPOLOGY_ZONE) ||
			    parse_volume_name(kv->value) < 0) {
				csi_fail(r, GRPC_STATUS_INVALID_ARGUMENT,
					 "topology segment '%.64s=%.64s': only "
					 CSI_TOPOLOGY_ZONE " is known",
					 kv->key, kv->value);
				return -1;
			}
			zones_add(out, kv->value);
		}
	}
	return 0;
}

void csi_domain_zone(const char *domain, char out[CLUSTER_NAME_MAX])
{
	size_t n = strcspn(domain, "/");

	if (n >= CLUSTER_NAME_MAX)
		n = CLUSTER_NAME_MAX - 1;
	memcpy(out, domain, n);
	out[n] = '\0';
}
