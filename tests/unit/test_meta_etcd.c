/* The etcd metadata store against a real etcd (one member on loopback):
 * the same CAS, revision, list and lease semantics as the SQLite store,
 * leases timed by the server, endpoint failover, a frozen member, URL
 * checks; and the gateway JSON codec on its own. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <dirent.h>
#include <unistd.h>

#include "etcd_codec.h"
#include "etcd_fixture.h"
#include "meta.h"

static struct etcd_fixture etcd;
static struct meta *m;

static int group_setup(void **state)
{
	char err[256];

	if (etcd_fixture_start(&etcd) < 0)
		return -1;
	if (meta_open(etcd.url, &m, err, sizeof err) < 0) {
		fprintf(stderr, "open %s: %s\n", etcd.url, err);
		return -1;
	}
	return 0;
}

static int group_teardown(void **state)
{
	meta_close(m);
	etcd_fixture_stop(&etcd);
	return 0;
}

static int64_t now_ms(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (int64_t)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

static int put_s(const char *k, const char *v, int64_t expect, int64_t lease,
		 int64_t *rev)
{
	return meta_put(m, k, v, strlen(v), expect, lease, rev);
}

static void assert_value(const char *k, const char *v)
{
	struct meta_kv kv;

	assert_int_equal(meta_get(m, k, &kv), 0);
	assert_string_equal(kv.key, k);
	assert_int_equal(kv.value_len, strlen(v));
	assert_string_equal((char *)kv.value, v);
	meta_kv_clear(&kv);
}

/* ---- key-value, as test_meta.c asks of SQLite ------------------------ */

static void test_put_get(void **state)
{
	struct meta_kv kv;
	int64_t rev;

	assert_int_equal(meta_get(m, "/pg/k", &kv), -ENOENT);
	assert_int_equal(put_s("/pg/k", "hello", -1, 0, &rev), 0);
	assert_true(rev > 0);
	assert_int_equal(meta_get(m, "/pg/k", &kv), 0);
	assert_int_equal(kv.create_rev, rev);
	assert_int_equal(kv.mod_rev, rev);
	assert_int_equal(kv.lease, 0);
	assert_memory_equal(kv.value, "hello", 6);
	meta_kv_clear(&kv);
	assert_int_equal(put_s("/pg/empty", "", -1, 0, NULL), 0);
	assert_value("/pg/empty", "");
	assert_int_equal(put_s("", "x", -1, 0, NULL), -EINVAL);
	assert_int_equal(meta_get(m, "", &kv), -EINVAL);
	/* Bytes that JSON would mangle travel as base64. */
	assert_int_equal(put_s("/pg/\xff\"\\\n", "\x01\"}\xfe", -1, 0, NULL), 0);
	assert_value("/pg/\xff\"\\\n", "\x01\"}\xfe");
}

static void test_cas(void **state)
{
	struct meta_kv kv;
	int64_t r1, r2, r3;

	assert_int_equal(put_s("/cas/c", "first", 0, 0, &r1), 0);
	assert_int_equal(put_s("/cas/c", "second", 0, 0, NULL), -ESTALE);
	assert_value("/cas/c", "first");
	assert_int_equal(put_s("/cas/c", "v2", r1, 0, &r2), 0);
	assert_true(r2 > r1);
	assert_int_equal(put_s("/cas/c", "v3", r1, 0, NULL), -ESTALE);
	assert_value("/cas/c", "v2");
	assert_int_equal(put_s("/cas/missing", "x", r2, 0, NULL), -ESTALE);
	assert_int_equal(meta_get(m, "/cas/missing", &kv), -ENOENT);
	assert_int_equal(put_s("/cas/c", "v4", -1, 0, &r3), 0);
	assert_int_equal(meta_get(m, "/cas/c", &kv), 0);
	assert_int_equal(kv.create_rev, r1);
	assert_int_equal(kv.mod_rev, r3);
	meta_kv_clear(&kv);
	assert_int_equal(put_s("/cas/c", "v", -2, 0, NULL), -EINVAL);
}

static void test_revisions(void **state)
{
	int64_t last = 0, rev, before_del;

	for (int i = 0; i < 10; i++) {
		char key[16];

		snprintf(key, sizeof key, "/rev/%d", i % 3);
		assert_int_equal(put_s(key, "x", -1, 0, &rev), 0);
		assert_true(rev > last);
		last = rev;
	}
	before_del = last;
	assert_int_equal(meta_del(m, "/rev/0", -1), 0);
	assert_int_equal(put_s("/rev/9", "x", -1, 0, &rev), 0);
	assert_int_equal(rev, before_del + 2);
	assert_int_equal(put_s("/rev/9", "y", 1, 0, NULL), -ESTALE);
	assert_int_equal(put_s("/rev/8", "x", -1, 0, &last), 0);
	assert_int_equal(last, rev + 1); /* a failed compare is no revision */
}

static void test_del(void **state)
{
	struct meta_kv kv;
	int64_t rev;

	assert_int_equal(meta_del(m, "/del/d", -1), -ENOENT);
	assert_int_equal(meta_del(m, "/del/d", 5), -ESTALE);
	assert_int_equal(put_s("/del/d", "x", -1, 0, &rev), 0);
	assert_int_equal(meta_del(m, "/del/d", 0), -EINVAL);
	assert_int_equal(meta_del(m, "/del/d", rev + 1), -ESTALE);
	assert_value("/del/d", "x");
	assert_int_equal(meta_del(m, "/del/d", rev), 0);
	assert_int_equal(meta_get(m, "/del/d", &kv), -ENOENT);
	/* A delete touches one key, never the ones it prefixes. */
	assert_int_equal(put_s("/del/dd", "x", -1, 0, NULL), 0);
	assert_int_equal(meta_del(m, "/del/d", -1), -ENOENT);
	assert_value("/del/dd", "x");
}

static void test_list_prefix(void **state)
{
	static const char *const keys[] = { "/ls/a/c", "/ls/a/a", "/ls/ab",
					    "/ls/a/b", "/ls/b", "/ls/a",
					    "/ls/a/\xff" };
	struct meta_kv *kvs;
	size_t n;

	for (size_t i = 0; i < 7; i++)
		assert_int_equal(put_s(keys[i], keys[i], -1, 0, NULL), 0);
	assert_int_equal(meta_list(m, "/ls/a/", &kvs, &n), 0);
	assert_int_equal(n, 4);
	assert_string_equal(kvs[0].key, "/ls/a/a");
	assert_string_equal(kvs[1].key, "/ls/a/b");
	assert_string_equal(kvs[2].key, "/ls/a/c");
	assert_string_equal(kvs[3].key, "/ls/a/\xff");
	assert_string_equal((char *)kvs[1].value, "/ls/a/b");
	meta_kv_free_array(kvs, n);
	assert_int_equal(meta_list(m, "/ls/", &kvs, &n), 0);
	assert_int_equal(n, 7);
	meta_kv_free_array(kvs, n);
	assert_int_equal(meta_list(m, "", &kvs, &n), 0);
	assert_true(n >= 7);
	for (size_t i = 1; i < n; i++)
		assert_true(strcmp(kvs[i - 1].key, kvs[i].key) < 0);
	meta_kv_free_array(kvs, n);
	assert_int_equal(meta_list(m, "/ls/zz", &kvs, &n), 0);
	assert_int_equal(n, 0);
	meta_kv_free_array(kvs, n);
}

/* More keys than one range request returns: the pages join up. */
static void test_list_pages(void **state)
{
	enum { N = 1234 };
	struct meta_kv *kvs;
	size_t n;
	char key[32];

	for (int i = 0; i < N; i++) {
		snprintf(key, sizeof key, "/pages/%05d", i);
		assert_int_equal(put_s(key, key, -1, 0, NULL), 0);
	}
	assert_int_equal(meta_list(m, "/pages/", &kvs, &n), 0);
	assert_int_equal(n, N);
	for (int i = 0; i < N; i++) {
		snprintf(key, sizeof key, "/pages/%05d", i);
		assert_string_equal(kvs[i].key, key);
		assert_string_equal((char *)kvs[i].value, key);
	}
	meta_kv_free_array(kvs, n);
}

/* ---- leases, timed by the server ------------------------------------ */

static void test_lease_revoke(void **state)
{
	struct meta_kv kv;
	int64_t lease, other;

	assert_int_equal(meta_lease_grant(m, 0, &lease), -EINVAL);
	assert_int_equal(meta_lease_grant(m, 60, &lease), 0);
	assert_int_equal(meta_lease_grant(m, 60, &other), 0);
	assert_true(lease > 0 && other > 0 && other != lease);
	assert_int_equal(put_s("/lr/1", "x", -1, lease, NULL), 0);
	assert_int_equal(put_s("/lr/2", "x", 0, lease, NULL), 0);
	assert_int_equal(put_s("/lr/3", "x", -1, other, NULL), 0);
	assert_int_equal(meta_get(m, "/lr/2", &kv), 0);
	assert_int_equal(kv.lease, lease);
	meta_kv_clear(&kv);
	assert_int_equal(meta_lease_keepalive(m, lease), 0);
	assert_int_equal(meta_lease_revoke(m, lease), 0);
	assert_int_equal(meta_get(m, "/lr/1", &kv), -ENOENT);
	assert_int_equal(meta_get(m, "/lr/2", &kv), -ENOENT);
	assert_value("/lr/3", "x");
	assert_int_equal(meta_lease_revoke(m, lease), -ENOENT);
	assert_int_equal(meta_lease_keepalive(m, lease), -ENOENT);
	assert_int_equal(put_s("/lr/4", "x", -1, lease, NULL), -ENOENT);
	assert_int_equal(put_s("/lr/4", "x", 0, 424242, NULL), -ENOENT);
	assert_int_equal(meta_lease_revoke(m, other), 0);
}

static int64_t wait_gone(const char *key, int64_t limit_ms)
{
	int64_t t0 = now_ms();
	struct meta_kv kv;

	while (now_ms() - t0 < limit_ms) {
		int r = meta_get(m, key, &kv);

		if (r == -ENOENT)
			return now_ms() - t0;
		assert_int_equal(r, 0);
		meta_kv_clear(&kv);
		usleep(100000);
	}
	return -1;
}

static void test_lease_expires(void **state)
{
	int64_t lease, gone;

	assert_int_equal(meta_lease_grant(m, 2, &lease), 0);
	assert_int_equal(put_s("/le/k", "x", -1, lease, NULL), 0);
	gone = wait_gone("/le/k", 15000);
	assert_true(gone >= 1000); /* not at once: the TTL ran */
	assert_int_equal(meta_lease_keepalive(m, lease), -ENOENT);
}

static void test_keepalive_extends(void **state)
{
	int64_t lease, t0 = now_ms();

	assert_int_equal(meta_lease_grant(m, 2, &lease), 0);
	assert_int_equal(put_s("/ka/k", "x", -1, lease, NULL), 0);
	while (now_ms() - t0 < 5000) { /* 2.5 TTLs */
		assert_int_equal(meta_lease_keepalive(m, lease), 0);
		usleep(400000);
	}
	assert_value("/ka/k", "x");
	assert_true(wait_gone("/ka/k", 15000) >= 0);
}

/* ---- endpoints ------------------------------------------------------- */

static void test_dead_endpoint_first(void **state)
{
	int dead = fixture_free_port();
	struct meta *o;
	char url[160], err[256];

	snprintf(url, sizeof url, "etcd://127.0.0.1:%d,127.0.0.1:%d/", dead,
		 etcd.client_port);
	assert_int_equal(meta_open(url, &o, err, sizeof err), 0);
	assert_int_equal(meta_put(o, "/ep/k", "v", 1, -1, 0, NULL), 0);
	assert_value("/ep/k", "v");
	meta_close(o);
	snprintf(url, sizeof url, "etcd://127.0.0.1:%d", dead);
	assert_int_equal(meta_open(url, &o, err, sizeof err), -EIO);
	assert_non_null(strstr(err, "etcd did not answer"));
	assert_non_null(strstr(err, "Couldn't connect"));
}

/* Has every thread of pid stopped? kill() returns before a busy
 * process's threads have all taken the SIGSTOP. */
static bool all_threads_stopped(pid_t pid)
{
	char path[320], line[512];
	DIR *d;
	struct dirent *e;
	bool all = true;

	snprintf(path, sizeof path, "/proc/%d/task", (int)pid);
	if (!(d = opendir(path)))
		return false;
	while (all && (e = readdir(d))) {
		FILE *f;
		char *p;

		if (e->d_name[0] == '.')
			continue;
		snprintf(path, sizeof path, "/proc/%d/task/%s/stat", (int)pid,
			 e->d_name);
		if (!(f = fopen(path, "r")))
			continue;
		p = fgets(line, sizeof line, f) ? strrchr(line, ')') : NULL;
		all = p && (p[2] == 'T' || p[2] == 't');
		fclose(f);
	}
	closedir(d);
	return all;
}

/* A stopped member accepts connections and answers nothing: every call
 * ends in -EIO after the call deadline, and works again once it runs. */
static void test_frozen_member(void **state)
{
	struct meta_kv kv;
	int64_t t0;
	int r;

	assert_int_equal(kill(etcd.pid, SIGSTOP), 0);
	t0 = now_ms();
	while (!all_threads_stopped(etcd.pid) && now_ms() - t0 < 5000)
		usleep(10000);
	assert_true(all_threads_stopped(etcd.pid));
	t0 = now_ms();
	r = meta_get(m, "/ep/k", &kv);
	kill(etcd.pid, SIGCONT);
	assert_int_equal(r, -EIO);
	assert_true(now_ms() - t0 >= 4000);
	assert_true(now_ms() - t0 < 20000);
	assert_value("/ep/k", "v");
}

static void test_bad_urls(void **state)
{
	static const char *const bad[] = {
		"etcd://", "etcd://hostonly", "etcd://a:1,,b:2", "etcd://a b:1",
		"etcd://a:1?cacert=/x", "https://a:1?cert=/x",
		"https://a:1?bogus=1", "https://a:1?key=", "ftp://a:1",
		"etcd://a:1/path",
	};
	struct meta *o;
	char err[256];

	for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
		err[0] = '\0';
		assert_int_equal(meta_open(bad[i], &o, err, sizeof err),
				 -EINVAL);
		assert_null(o);
		assert_true(strlen(err) > 0);
	}
}

/* ---- the codec ------------------------------------------------------- */

static void test_base64(void **state)
{
	static const char *const bad[] = { "Q", "QQ=", "QR==", "Q===", "====",
					   "QQ==QQ==", "QUJD\n", "QU=D" };
	uint8_t in[64], *out;
	size_t n;
	char *s;

	for (size_t len = 0; len <= sizeof in; len++) {
		for (size_t i = 0; i < len; i++)
			in[i] = (uint8_t)rand();
		assert_int_equal(etcd_b64_encode(in, len, &s), 0);
		assert_int_equal(strlen(s), (len + 2) / 3 * 4);
		assert_int_equal(etcd_b64_decode(s, &out, &n), 0);
		assert_int_equal(n, len);
		assert_memory_equal(out, in, len);
		assert_int_equal(out[n], 0);
		free(out);
		free(s);
	}
	assert_int_equal(etcd_b64_encode("hi", 2, &s), 0);
	assert_string_equal(s, "aGk=");
	free(s);
	for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
		assert_int_equal(etcd_b64_decode(bad[i], &out, &n), -EINVAL);
}

static void test_int64_fields(void **state)
{
	json_t *o = json_pack("{s:s, s:i, s:s, s:s, s:b, s:s}", "a", "42",
			      "b", 7, "c", "12x", "d", "", "e", 1, "f",
			      "99999999999999999999");
	int64_t v;

	assert_int_equal(etcd_int64(o, "a", &v), 0);
	assert_int_equal(v, 42);
	assert_int_equal(etcd_int64(o, "b", &v), 0);
	assert_int_equal(v, 7);
	assert_int_equal(etcd_int64(o, "absent", &v), 0);
	assert_int_equal(v, 0);
	assert_int_equal(etcd_int64(o, "c", &v), -EINVAL);
	assert_int_equal(etcd_int64(o, "d", &v), -EINVAL);
	assert_int_equal(etcd_int64(o, "e", &v), -EINVAL);
	assert_int_equal(etcd_int64(o, "f", &v), -EINVAL);
	json_decref(o);
}

static void test_decode_kvs(void **state)
{
	static const char *const bad[] = {
		"{\"kvs\":[{\"key\":\"AGE=\",\"create_revision\":\"1\","
		"\"mod_revision\":\"1\"}]}",             /* NUL in the key */
		"{\"kvs\":[{\"key\":\"\",\"create_revision\":\"1\","
		"\"mod_revision\":\"1\"}]}",             /* empty key */
		"{\"kvs\":[{\"key\":\"YQ==\",\"value\":\"!!!!\","
		"\"create_revision\":\"1\",\"mod_revision\":\"1\"}]}",
		"{\"kvs\":[{\"key\":\"YQ==\",\"create_revision\":\"5\","
		"\"mod_revision\":\"4\"}]}",             /* mod before create */
		"{\"kvs\":[{\"key\":\"YQ==\"}]}",        /* no revisions */
		"{\"kvs\":{}}", "{\"kvs\":[1]}", "[]",
	};
	struct meta_kv *kvs;
	size_t n;
	json_t *j;

	j = json_loads("{\"kvs\":[{\"key\":\"YQ==\",\"create_revision\":\"3\","
		       "\"mod_revision\":\"9\",\"lease\":\"77\"}]}", 0, NULL);
	assert_int_equal(etcd_decode_kvs(j, &kvs, &n), 0);
	assert_int_equal(n, 1);
	assert_string_equal(kvs[0].key, "a");
	assert_int_equal(kvs[0].value_len, 0); /* omitted: empty */
	assert_int_equal(kvs[0].mod_rev, 9);
	assert_int_equal(kvs[0].lease, 77);
	meta_kv_free_array(kvs, n);
	json_decref(j);
	for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
		j = json_loads(bad[i], 0, NULL);
		assert_non_null(j);
		assert_int_equal(etcd_decode_kvs(j, &kvs, &n), -EINVAL);
		assert_null(kvs);
		json_decref(j);
	}
}

static void test_prefix_end(void **state)
{
	char end[16];
	size_t n;

	etcd_prefix_end("/a/", end, &n);
	assert_int_equal(n, 3);
	assert_memory_equal(end, "/a0", 3);
	etcd_prefix_end("/a\xff\xff", end, &n);
	assert_int_equal(n, 2);
	assert_memory_equal(end, "/b", 2);
	etcd_prefix_end("\xff", end, &n);
	assert_int_equal(n, 0);
	etcd_prefix_end("", end, &n);
	assert_int_equal(n, 0);
}

/* The watch stream scanner: "created" is no change; an event is, with the
 * header revision before it (not a kv's mod_revision), across chunks. */
static void test_watch_feed(void **state)
{
	static const char created[] =
		"{\"result\":{\"header\":{\"revision\":\"41\"},\"created\":true}}";
	static const char event[] =
		"{\"result\":{\"header\":{\"cluster_id\":\"1\",\"revision\":\"42\"},"
		"\"events\":[{\"kv\":{\"mod_revision\":\"99\"}}]}}";
	struct etcd_watch_rx w = { .len = 0 };

	(void)state;
	assert_false(etcd_watch_feed(&w, created, strlen(created)));
	assert_false(etcd_watch_feed(&w, event, 40));
	assert_true(etcd_watch_feed(&w, event + 40, strlen(event) - 40));
	assert_int_equal(w.rev, 42);
	memset(&w, 0, sizeof w);
	assert_true(etcd_watch_feed(&w, "{\"result\":{\"canceled\":true}}", 29));
	assert_int_equal(w.rev, 0);
}

/* wait_change: learn the revision, see a change made since (history, no
 * race), time out when nothing under the prefix changes. */
static void test_wait_change(void **state)
{
	int64_t rev = -1, t0;

	(void)state;
	assert_int_equal(meta_wait_change(m, "/w/", &rev, 1000), 0);
	assert_true(rev > 0);
	assert_int_equal(put_s("/w/a", "1", -1, 0, NULL), 0);
	t0 = now_ms();
	assert_int_equal(meta_wait_change(m, "/w/", &rev, 3000), 1);
	assert_true(now_ms() - t0 < 2000);
	assert_value("/w/a", "1");   /* the handle still does plain calls */
	assert_int_equal(put_s("/other/a", "1", -1, 0, NULL), 0);
	t0 = now_ms();
	assert_int_equal(meta_wait_change(m, "/w/", &rev, 500), 0);
	assert_true(now_ms() - t0 >= 400);
}

int main(void)
{
	const struct CMUnitTest codec[] = {
		cmocka_unit_test(test_base64),
		cmocka_unit_test(test_int64_fields),
		cmocka_unit_test(test_decode_kvs),
		cmocka_unit_test(test_prefix_end),
		cmocka_unit_test(test_watch_feed),
		cmocka_unit_test(test_bad_urls),
	};
	const struct CMUnitTest live[] = {
		cmocka_unit_test(test_put_get),
		cmocka_unit_test(test_cas),
		cmocka_unit_test(test_revisions),
		cmocka_unit_test(test_del),
		cmocka_unit_test(test_list_prefix),
		cmocka_unit_test(test_list_pages),
		cmocka_unit_test(test_lease_revoke),
		cmocka_unit_test(test_lease_expires),
		cmocka_unit_test(test_keepalive_extends),
		cmocka_unit_test(test_dead_endpoint_first),
		cmocka_unit_test(test_frozen_member),
		cmocka_unit_test(test_wait_change),
	};
	int failed = cmocka_run_group_tests_name("etcd codec", codec, NULL,
						 NULL);

	return failed | cmocka_run_group_tests_name("etcd store", live,
						    group_setup,
						    group_teardown);
}
