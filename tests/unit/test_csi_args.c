/* triplex-csi's checks of request contents (csi_args.c) and its staging
 * records (node_state.c), on hand-built messages: capacity ranges and
 * their 4 KiB rounding, StorageClass parameters, volume capabilities,
 * topology segments, and records that must not decode. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "csi_args.h"
#include "node_state.h"

static int capacity(int64_t req, int64_t lim, uint64_t *size,
		    grpc_status_code *code)
{
	Csi__V1__CapacityRange cr = CSI__V1__CAPACITY_RANGE__INIT;
	struct csi_reply r = { .code = GRPC_STATUS_OK };
	int ret;

	cr.required_bytes = req;
	cr.limit_bytes = lim;
	ret = csi_capacity(&cr, size, &r);
	*code = r.code;
	return ret;
}

static void test_capacity(void **state)
{
	grpc_status_code code;
	uint64_t size = 0;

	assert_int_equal(capacity(1, 0, &size, &code), 0);
	assert_int_equal(size, 4096);
	assert_int_equal(capacity(8192, 8192, &size, &code), 0);
	assert_int_equal(size, 8192);
	assert_int_equal(capacity(0, 10000, &size, &code), 0);
	assert_int_equal(size, 8192);                       /* limit, rounded down */
	assert_int_equal(capacity(0, 0, &size, &code), 0);
	assert_int_equal(size, CSI_DEFAULT_SIZE);
	assert_int_equal(capacity(4097, 5000, &size, &code), -1);
	assert_int_equal(code, GRPC_STATUS_OUT_OF_RANGE);
	assert_int_equal(capacity(10, 5, &size, &code), -1);
	assert_int_equal(code, GRPC_STATUS_OUT_OF_RANGE);
	assert_int_equal(capacity(0, 100, &size, &code), -1);
	assert_int_equal(code, GRPC_STATUS_OUT_OF_RANGE);
	assert_int_equal(capacity(-1, 0, &size, &code), -1);
	assert_int_equal(code, GRPC_STATUS_INVALID_ARGUMENT);
	assert_int_equal(capacity((int64_t)CLUSTER_MAX_VOLUME_SIZE + 1, 0, &size,
				  &code), -1);
	assert_int_equal(code, GRPC_STATUS_OUT_OF_RANGE);
	assert_int_equal(csi_capacity(NULL, &size, &(struct csi_reply){ 0 }), 0);
	assert_int_equal(size, CSI_DEFAULT_SIZE);
}

static void test_capacity_fits(void **state)
{
	Csi__V1__CapacityRange cr = CSI__V1__CAPACITY_RANGE__INIT;

	assert_true(csi_capacity_fits(NULL, 1));
	cr.required_bytes = 4096;
	assert_true(csi_capacity_fits(&cr, 4096));
	assert_false(csi_capacity_fits(&cr, 0));
	cr.limit_bytes = 8192;
	assert_true(csi_capacity_fits(&cr, 8192));
	assert_false(csi_capacity_fits(&cr, 12288));
}

static int params(const char *const *kv, size_t n, struct csi_params *p,
		  grpc_status_code *code)
{
	Csi__V1__CreateVolumeRequest__ParametersEntry e[8], *ep[8] = { NULL };
	struct csi_reply r = { .code = GRPC_STATUS_OK };
	int ret;

	for (size_t i = 0; i < n; i++) {
		csi__v1__create_volume_request__parameters_entry__init(&e[i]);
		e[i].key = (char *)kv[2 * i];
		e[i].value = (char *)kv[2 * i + 1];
		ep[i] = &e[i];
	}
	ret = csi_params_parse((void *const *)ep, n, p, &r);
	*code = r.code;
	return ret;
}

static void test_params(void **state)
{
	static const char *const one[] = { "replicas", "1" };
	static const char *const all[] = { "replicas", "5", "minReplicas", "3",
					   "failureDomain", "rack",
					   "fsType", "xfs",
					   "csi.storage.k8s.io/pvc/name", "x" };
	static const char *const unknown[] = { "replica", "3" };
	static const char *const over[] = { "replicas", "2", "minReplicas", "3" };
	static const char *const bad[] = { "replicas", "6" };
	static const char *const fs[] = { "fsType", "btrfs" };
	struct csi_params p;
	grpc_status_code code;

	assert_int_equal(params(NULL, 0, &p, &code), 0);
	assert_int_equal(p.replicas, 3);
	assert_int_equal(p.min_replicas, 2);
	assert_int_equal(p.domain, CLUSTER_DOMAIN_ZONE);
	assert_string_equal(p.fs_type, "");
	assert_int_equal(params(one, 1, &p, &code), 0);
	assert_int_equal(p.min_replicas, 1);
	assert_int_equal(params(all, 5, &p, &code), 0);
	assert_int_equal(p.replicas, 5);
	assert_int_equal(p.min_replicas, 3);
	assert_int_equal(p.domain, CLUSTER_DOMAIN_RACK);
	assert_string_equal(p.fs_type, "xfs");
	assert_int_equal(params(unknown, 1, &p, &code), -1);
	assert_int_equal(code, GRPC_STATUS_INVALID_ARGUMENT);
	assert_int_equal(params(over, 2, &p, &code), -1);
	assert_int_equal(params(bad, 1, &p, &code), -1);
	assert_int_equal(params(fs, 1, &p, &code), -1);
}

static void test_caps(void **state)
{
	Csi__V1__VolumeCapability c = CSI__V1__VOLUME_CAPABILITY__INIT, *cp = &c;
	Csi__V1__VolumeCapability__AccessMode am =
		CSI__V1__VOLUME_CAPABILITY__ACCESS_MODE__INIT;
	Csi__V1__VolumeCapability__MountVolume mv =
		CSI__V1__VOLUME_CAPABILITY__MOUNT_VOLUME__INIT;
	char why[160];

	assert_int_equal(csi_caps_check(&cp, 1, why, sizeof why), -2);
	c.access_mode = &am;
	assert_int_equal(csi_caps_check(&cp, 1, why, sizeof why), -2);
	c.access_type_case = CSI__V1__VOLUME_CAPABILITY__ACCESS_TYPE_MOUNT;
	c.mount = &mv;
	am.mode = CSI__V1__VOLUME_CAPABILITY__ACCESS_MODE__MODE__SINGLE_NODE_WRITER;
	assert_int_equal(csi_caps_check(&cp, 1, why, sizeof why), 0);
	mv.fs_type = "ext3";
	assert_int_equal(csi_caps_check(&cp, 1, why, sizeof why), -1);
	mv.fs_type = "xfs";
	am.mode = CSI__V1__VOLUME_CAPABILITY__ACCESS_MODE__MODE__MULTI_NODE_READER_ONLY;
	assert_int_equal(csi_caps_check(&cp, 1, why, sizeof why), -1);
	assert_non_null(strstr(why, "one node"));
}

static void test_topology(void **state)
{
	Csi__V1__Topology t[2] = { CSI__V1__TOPOLOGY__INIT, CSI__V1__TOPOLOGY__INIT };
	Csi__V1__Topology *tp[2] = { &t[0], &t[1] };
	Csi__V1__Topology__SegmentsEntry s[2], *sp[2];
	struct csi_reply r = { .code = GRPC_STATUS_OK };
	struct csi_zones z = { 0 };

	for (int i = 0; i < 2; i++) {
		csi__v1__topology__segments_entry__init(&s[i]);
		s[i].key = (char *)CSI_TOPOLOGY_ZONE;
		s[i].value = "zone-a";
		sp[i] = &s[i];
		t[i].n_segments = 1;
		t[i].segments = &sp[i];
	}
	assert_int_equal(csi_topology_zones(tp, 2, &z, &r), 0);
	assert_int_equal(z.n, 1);                 /* each zone once */
	assert_string_equal(z.zone[0], "zone-a");
	s[1].key = "kubernetes.io/hostname";
	assert_int_equal(csi_topology_zones(tp, 2, &z, &r), -1);
	assert_int_equal(r.code, GRPC_STATUS_INVALID_ARGUMENT);
}

static void test_state_json(void **state)
{
	struct node_state s = { 0 }, back;
	static const char *const bad[] = {
		"", "[]", "{\"volume\":\"v\"}",
		"{\"volume\":\"v\",\"staging_path\":\"rel\",\"nbd_uri\":\"nbd://a/v\","
		"\"fuse_dir\":\"/f\",\"fs_type\":\"ext4\"}",
		"{\"volume\":\"v\",\"staging_path\":\"/s\",\"nbd_uri\":\"nbd://a/v\","
		"\"fuse_dir\":\"/f\",\"fs_type\":\"ext4\",\"block\":true}",
		"{\"volume\":\"v\",\"staging_path\":\"/s\",\"nbd_uri\":\"nbd://a/v\","
		"\"fuse_dir\":\"/f\",\"fs_type\":\"ext4\",\"loop\":\"/etc/passwd\"}",
		"{\"volume\":\"v\",\"staging_path\":\"/s\",\"nbd_uri\":\"nbd://a/v\","
		"\"fuse_dir\":\"/f\",\"fs_type\":\"ext4\",\"fuse_pid\":-1}",
	};
	char *json;

	strcpy(s.volume, "pvc-1");
	strcpy(s.staging_path, "/var/lib/kubelet/staging");
	strcpy(s.nbd_uri, "nbd://127.0.0.1:10809/pvc-1");
	strcpy(s.fuse_dir, "/var/lib/triplex-csi/fuse/pvc-1");
	strcpy(s.loop, "/dev/loop7");
	strcpy(s.fs_type, "ext4");
	s.fuse_pid = 4321;
	json = node_state_to_json(&s);
	assert_non_null(json);
	assert_int_equal(node_state_from_json(json, strlen(json), &back), 0);
	assert_memory_equal(&s, &back, sizeof s);
	free(json);
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
		assert_int_equal(node_state_from_json(bad[i], strlen(bad[i]),
						      &back), -EBADMSG);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_capacity),
		cmocka_unit_test(test_capacity_fits),
		cmocka_unit_test(test_params),
		cmocka_unit_test(test_caps),
		cmocka_unit_test(test_topology),
		cmocka_unit_test(test_state_json),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
