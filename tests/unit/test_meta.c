/* The SQLite metadata store on real files: CAS, revisions, prefix lists,
 * leases (with an injected clock), concurrent writers (threads with their
 * own handles and a forked process), reopen, corrupt files. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>

#include "meta.h"

struct fx {
	char dir[64];
	char path[128];
	char url[160];
	struct meta *m;
	int64_t now;             /* the injected clock, ms */
};

static int64_t fake_now(void *arg)
{
	return ((struct fx *)arg)->now;
}

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof *f);
	char err[256];

	snprintf(f->dir, sizeof f->dir, "/tmp/tpx-meta-XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	snprintf(f->path, sizeof f->path, "%s/meta.db", f->dir);
	snprintf(f->url, sizeof f->url, "sqlite:%s", f->path);
	assert_int_equal(meta_open(f->url, &f->m, err, sizeof err), 0);
	f->now = 1000000;
	assert_int_equal(meta_set_clock(f->m, fake_now, f), 0);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;
	char cmd[128];

	meta_close(f->m);
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", f->dir);
	assert_int_equal(system(cmd), 0);
	free(f);
	return 0;
}

static struct meta *open_other(struct fx *f)
{
	struct meta *m;
	char err[256];

	assert_int_equal(meta_open(f->url, &m, err, sizeof err), 0);
	return m;
}

static int put_s(struct meta *m, const char *k, const char *v, int64_t expect,
		 int64_t lease, int64_t *rev)
{
	return meta_put(m, k, v, strlen(v), expect, lease, rev);
}

static void assert_value(struct meta *m, const char *k, const char *v)
{
	struct meta_kv kv;

	assert_int_equal(meta_get(m, k, &kv), 0);
	assert_string_equal(kv.key, k);
	assert_int_equal(kv.value_len, strlen(v));
	assert_string_equal((char *)kv.value, v); /* NUL-terminated */
	meta_kv_clear(&kv);
}

/* ---- basic key-value ------------------------------------------------ */

static void test_put_get(void **state)
{
	struct fx *f = *state;
	struct meta_kv kv;
	int64_t rev;

	assert_int_equal(meta_get(f->m, "/k", &kv), -ENOENT);
	assert_int_equal(put_s(f->m, "/k", "hello", -1, 0, &rev), 0);
	assert_true(rev > 0);
	assert_int_equal(meta_get(f->m, "/k", &kv), 0);
	assert_int_equal(kv.create_rev, rev);
	assert_int_equal(kv.mod_rev, rev);
	assert_int_equal(kv.lease, 0);
	assert_memory_equal(kv.value, "hello", 6);
	meta_kv_clear(&kv);
	assert_null(kv.key);
	assert_int_equal(put_s(f->m, "/empty", "", -1, 0, NULL), 0);
	assert_value(f->m, "/empty", "");
	assert_int_equal(put_s(f->m, "", "x", -1, 0, NULL), -EINVAL);
}

static void test_cas_create_only(void **state)
{
	struct fx *f = *state;

	assert_int_equal(put_s(f->m, "/c", "first", 0, 0, NULL), 0);
	assert_int_equal(put_s(f->m, "/c", "second", 0, 0, NULL), -ESTALE);
	assert_value(f->m, "/c", "first");
}

static void test_cas_mismatch(void **state)
{
	struct fx *f = *state;
	struct meta_kv kv;
	int64_t r1, r2, r3;

	assert_int_equal(put_s(f->m, "/c", "v1", -1, 0, &r1), 0);
	assert_int_equal(put_s(f->m, "/c", "v2", r1, 0, &r2), 0);
	assert_true(r2 > r1);
	assert_int_equal(put_s(f->m, "/c", "v3", r1, 0, NULL), -ESTALE);
	assert_value(f->m, "/c", "v2");
	assert_int_equal(put_s(f->m, "/missing", "x", r2, 0, NULL), -ESTALE);
	assert_int_equal(meta_get(f->m, "/missing", &kv), -ENOENT);
	/* -1: unconditional; create_rev survives updates. */
	assert_int_equal(put_s(f->m, "/c", "v4", -1, 0, &r3), 0);
	assert_int_equal(meta_get(f->m, "/c", &kv), 0);
	assert_int_equal(kv.create_rev, r1);
	assert_int_equal(kv.mod_rev, r3);
	meta_kv_clear(&kv);
}

static void test_revisions_monotonic(void **state)
{
	struct fx *f = *state;
	int64_t last = 0, rev, rev_before_del;
	char key[16];

	for (int i = 0; i < 20; i++) {
		snprintf(key, sizeof key, "/r/%d", i % 3);
		assert_int_equal(put_s(f->m, key, "x", -1, 0, &rev), 0);
		assert_true(rev > last);
		last = rev;
	}
	rev_before_del = last;
	assert_int_equal(meta_del(f->m, "/r/0", -1), 0);
	/* A delete is a revision too: the next put skips one. */
	assert_int_equal(put_s(f->m, "/r/9", "x", -1, 0, &rev), 0);
	assert_int_equal(rev, rev_before_del + 2);
	/* A failed compare changes nothing. */
	assert_int_equal(put_s(f->m, "/r/9", "y", 1, 0, NULL), -ESTALE);
	assert_int_equal(put_s(f->m, "/r/8", "x", -1, 0, &last), 0);
	assert_int_equal(last, rev + 1);
}

static void test_del_cas(void **state)
{
	struct fx *f = *state;
	struct meta_kv kv;
	int64_t rev;

	assert_int_equal(meta_del(f->m, "/d", -1), -ENOENT);
	assert_int_equal(meta_del(f->m, "/d", 5), -ESTALE);
	assert_int_equal(put_s(f->m, "/d", "x", -1, 0, &rev), 0);
	assert_int_equal(meta_del(f->m, "/d", 0), -EINVAL);
	assert_int_equal(meta_del(f->m, "/d", rev + 1), -ESTALE);
	assert_value(f->m, "/d", "x");
	assert_int_equal(meta_del(f->m, "/d", rev), 0);
	assert_int_equal(meta_get(f->m, "/d", &kv), -ENOENT);
}

static void test_list_prefix_sorted(void **state)
{
	struct fx *f = *state;
	static const char *const keys[] = { "/a/c", "/a/a", "/ab", "/a/b",
					    "/b", "/a", "/a/\xff" };
	struct meta_kv *kvs;
	size_t n;

	for (size_t i = 0; i < 7; i++)
		assert_int_equal(put_s(f->m, keys[i], keys[i], -1, 0, NULL), 0);
	assert_int_equal(meta_list(f->m, "/a/", &kvs, &n), 0);
	assert_int_equal(n, 4);
	assert_string_equal(kvs[0].key, "/a/a");
	assert_string_equal(kvs[1].key, "/a/b");
	assert_string_equal(kvs[2].key, "/a/c");
	assert_string_equal(kvs[3].key, "/a/\xff");
	assert_string_equal((char *)kvs[1].value, "/a/b");
	meta_kv_free_array(kvs, n);
	assert_int_equal(meta_list(f->m, "", &kvs, &n), 0);
	assert_int_equal(n, 7);
	for (size_t i = 1; i < n; i++)
		assert_true(strcmp(kvs[i - 1].key, kvs[i].key) < 0);
	meta_kv_free_array(kvs, n);
	assert_int_equal(meta_list(f->m, "/zz", &kvs, &n), 0);
	assert_int_equal(n, 0);
	meta_kv_free_array(kvs, n);
}

/* ---- leases ---------------------------------------------------------- */

static void test_lease_expires(void **state)
{
	struct fx *f = *state;
	struct meta_kv kv, *kvs;
	int64_t lease;
	size_t n;

	assert_int_equal(meta_lease_grant(f->m, 0, &lease), -EINVAL);
	assert_int_equal(meta_lease_grant(f->m, 2, &lease), 0);
	assert_true(lease > 0);
	assert_int_equal(put_s(f->m, "/l/k", "x", -1, lease, NULL), 0);
	assert_int_equal(put_s(f->m, "/l/keep", "x", -1, 0, NULL), 0);
	assert_int_equal(meta_get(f->m, "/l/k", &kv), 0);
	assert_int_equal(kv.lease, lease);
	meta_kv_clear(&kv);
	f->now += 1999;
	assert_value(f->m, "/l/k", "x");
	f->now += 1;
	assert_int_equal(meta_get(f->m, "/l/k", &kv), -ENOENT);
	assert_int_equal(meta_list(f->m, "/l/", &kvs, &n), 0);
	assert_int_equal(n, 1);
	assert_string_equal(kvs[0].key, "/l/keep");
	meta_kv_free_array(kvs, n);
	assert_int_equal(meta_lease_keepalive(f->m, lease), -ENOENT);
	assert_int_equal(put_s(f->m, "/l/k", "x", -1, lease, NULL), -ENOENT);
	assert_int_equal(put_s(f->m, "/l/k", "x", -1, 424242, NULL), -ENOENT);
}

static void test_keepalive_extends(void **state)
{
	struct fx *f = *state;
	struct meta_kv kv;
	int64_t lease;

	assert_int_equal(meta_lease_grant(f->m, 2, &lease), 0);
	assert_int_equal(put_s(f->m, "/k", "x", -1, lease, NULL), 0);
	f->now += 1500;
	assert_int_equal(meta_lease_keepalive(f->m, lease), 0);
	f->now += 1999; /* 3499 after grant: alive only thanks to keepalive */
	assert_value(f->m, "/k", "x");
	f->now += 1;
	assert_int_equal(meta_get(f->m, "/k", &kv), -ENOENT);
}

static void test_revoke_deletes_keys(void **state)
{
	struct fx *f = *state;
	struct meta_kv kv;
	int64_t lease, other, rev_before, rev_after;

	assert_int_equal(meta_lease_grant(f->m, 60, &lease), 0);
	assert_int_equal(meta_lease_grant(f->m, 60, &other), 0);
	assert_true(other != lease);
	assert_int_equal(put_s(f->m, "/v/1", "x", -1, lease, NULL), 0);
	assert_int_equal(put_s(f->m, "/v/2", "x", -1, lease, NULL), 0);
	assert_int_equal(put_s(f->m, "/v/3", "x", -1, other, NULL), 0);
	assert_int_equal(put_s(f->m, "/v/4", "x", -1, 0, &rev_before), 0);
	assert_int_equal(meta_lease_revoke(f->m, lease), 0);
	assert_int_equal(meta_get(f->m, "/v/1", &kv), -ENOENT);
	assert_int_equal(meta_get(f->m, "/v/2", &kv), -ENOENT);
	assert_value(f->m, "/v/3", "x");
	assert_value(f->m, "/v/4", "x");
	assert_int_equal(meta_lease_revoke(f->m, lease), -ENOENT);
	assert_int_equal(meta_lease_keepalive(f->m, lease), -ENOENT);
	assert_int_equal(put_s(f->m, "/v/5", "x", -1, 0, &rev_after), 0);
	assert_int_equal(rev_after, rev_before + 2); /* revoke was one */
	/* A new lease never reuses a revoked id. */
	assert_int_equal(meta_lease_grant(f->m, 60, &rev_after), 0);
	assert_true(rev_after > other);
}

/* Real clock, second handle: expiry is wall-clock, agreed between
 * connections. Bounded wait. */
static void test_lease_real_clock_other_handle(void **state)
{
	struct fx *f = *state;
	struct meta *a = open_other(f), *b = open_other(f);
	struct meta_kv kv;
	struct timespec t0, t;
	int64_t lease;
	int r;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	assert_int_equal(meta_lease_grant(a, 1, &lease), 0);
	assert_int_equal(put_s(a, "/rt", "x", -1, lease, NULL), 0);
	assert_value(b, "/rt", "x");
	do {
		usleep(50000);
		r = meta_get(b, "/rt", &kv);
		if (r == 0)
			meta_kv_clear(&kv);
		clock_gettime(CLOCK_MONOTONIC, &t);
	} while (r == 0 && t.tv_sec - t0.tv_sec < 4);
	assert_int_equal(r, -ENOENT);
	/* It did live about its TTL, not less. */
	assert_true((t.tv_sec - t0.tv_sec) * 1000 +
		    (t.tv_nsec - t0.tv_nsec) / 1000000 >= 900);
	meta_close(a);
	meta_close(b);
}

/* ---- concurrency ---------------------------------------------------- */

#define RACE_INCREMENTS 200

/* CAS-increment the counter n times; returns the ESTALE retries. */
static int increment(struct meta *m, int n)
{
	int conflicts = 0;

	for (int i = 0; i < n; i++) {
		for (;;) {
			struct meta_kv kv;
			long v = 0;
			int64_t rev = 0;
			char buf[32];
			int r = meta_get(m, "/counter", &kv);

			if (r == 0) {
				v = strtol((char *)kv.value, NULL, 10);
				rev = kv.mod_rev;
				meta_kv_clear(&kv);
			} else if (r != -ENOENT) {
				return -1000000;
			}
			snprintf(buf, sizeof buf, "%ld", v + 1);
			usleep(200); /* widen the read-to-write window */
			r = meta_put(m, "/counter", buf, strlen(buf), rev, 0,
				     NULL);
			if (r == 0)
				break;
			if (r != -ESTALE)
				return -1000000;
			conflicts++;
		}
	}
	return conflicts;
}

static pthread_barrier_t race_start;

static void *race_thread(void *arg)
{
	struct fx *f = arg;
	struct meta *m = open_other(f);
	intptr_t c;

	pthread_barrier_wait(&race_start); /* maximise the overlap */
	c = increment(m, RACE_INCREMENTS);

	meta_close(m);
	return (void *)c;
}

static void assert_counter(struct meta *m, long want)
{
	struct meta_kv kv;

	assert_int_equal(meta_get(m, "/counter", &kv), 0);
	assert_int_equal(strtol((char *)kv.value, NULL, 10), want);
	meta_kv_clear(&kv);
}

static void test_race_threads(void **state)
{
	struct fx *f = *state;
	pthread_t t[2];
	void *c[2];

	pthread_barrier_init(&race_start, NULL, 2);
	for (int i = 0; i < 2; i++)
		assert_int_equal(pthread_create(&t[i], NULL, race_thread, f), 0);
	for (int i = 0; i < 2; i++) {
		assert_int_equal(pthread_join(t[i], &c[i]), 0);
		assert_true((intptr_t)c[i] >= 0);
	}
	pthread_barrier_destroy(&race_start);
	assert_counter(f->m, 2 * RACE_INCREMENTS);
	print_message("  thread race: %ld + %ld CAS conflicts retried\n",
		      (long)(intptr_t)c[0], (long)(intptr_t)c[1]);
}

static void test_race_fork(void **state)
{
	struct fx *f = *state;
	struct meta *m;
	int status, c, go[2];
	char byte = 0;
	pid_t pid;

	assert_int_equal(pipe(go), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		/* Child: its own connection; never touch the parent's. */
		char err[256];

		close(go[1]);
		if (meta_open(f->url, &m, err, sizeof err) ||
		    read(go[0], &byte, 1) != 1)
			_exit(2);
		c = increment(m, RACE_INCREMENTS);
		meta_close(m);
		_exit(c < 0 ? 1 : c > 0 ? 0 : 3);
	}
	close(go[0]);
	m = open_other(f);
	assert_int_equal(write(go[1], &byte, 1), 1); /* start together */
	close(go[1]);
	c = increment(m, RACE_INCREMENTS);
	meta_close(m);
	assert_true(c >= 0);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	/* 3: the child never lost a compare; then we must have (a real race) */
	assert_true(WEXITSTATUS(status) == 0 ||
		    (WEXITSTATUS(status) == 3 && c > 0));
	assert_counter(f->m, 2 * RACE_INCREMENTS);
	print_message("  fork race: parent retried %d CAS conflicts, child %s\n",
		      c, WEXITSTATUS(status) == 0 ? "some" : "none");
}

/* ---- files ---------------------------------------------------------- */

static void test_reopen_persists(void **state)
{
	struct fx *f = *state;
	struct meta_kv kv;
	int64_t r1, r2;
	char err[256];

	assert_int_equal(put_s(f->m, "/p", "kept", -1, 0, &r1), 0);
	meta_close(f->m);
	assert_int_equal(meta_open(f->url, &f->m, err, sizeof err), 0);
	assert_int_equal(meta_get(f->m, "/p", &kv), 0);
	assert_string_equal((char *)kv.value, "kept");
	assert_int_equal(kv.mod_rev, r1);
	meta_kv_clear(&kv);
	assert_int_equal(put_s(f->m, "/q", "x", -1, 0, &r2), 0);
	assert_true(r2 > r1);
}

static void test_file_settings(void **state)
{
	struct fx *f = *state;
	sqlite3 *db;
	sqlite3_stmt *s;

	assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &s,
					    NULL), SQLITE_OK);
	assert_int_equal(sqlite3_step(s), SQLITE_ROW);
	assert_string_equal((const char *)sqlite3_column_text(s, 0), "wal");
	sqlite3_finalize(s);
	sqlite3_close(db);
}

static void write_file(const char *path, const void *buf, size_t len,
		       off_t off)
{
	int fd = open(path, O_WRONLY | O_CREAT, 0644);

	assert_true(fd >= 0);
	assert_int_equal(pwrite(fd, buf, len, off), (ssize_t)len);
	close(fd);
}

static void expect_open_fails(const char *url, int want, const char *needle)
{
	struct meta *m = (struct meta *)1;
	char err[256] = "";

	assert_int_equal(meta_open(url, &m, err, sizeof err), want);
	assert_null(m);
	if (!strstr(err, needle))
		fail_msg("error \"%s\" lacks \"%s\"", err, needle);
}

static void test_corrupt_file(void **state)
{
	struct fx *f = *state;
	char junk[8192], path[200], url[220];

	memset(junk, 'x', sizeof junk);
	snprintf(path, sizeof path, "%s/junk.db", f->dir);
	snprintf(url, sizeof url, "sqlite:%s", path);
	write_file(path, junk, sizeof junk, 0);
	expect_open_fails(url, -EIO, path);

	/* A real store whose header is then garbled. */
	meta_close(f->m);
	f->m = NULL;
	write_file(f->path, junk, 100, 0);
	expect_open_fails(f->url, -EIO, "not a database");
	assert_int_equal(unlink(f->path), 0);
	f->m = open_other(f); /* a fresh store for teardown */
}

static void test_garbled_after_open(void **state)
{
	struct fx *f = *state;
	char junk[4096];
	struct meta_kv kv;
	char err[256];

	for (int i = 0; i < 50; i++) {
		char k[16];

		snprintf(k, sizeof k, "/g/%d", i);
		assert_int_equal(put_s(f->m, k, "some value", -1, 0, NULL), 0);
	}
	meta_close(f->m);
	/* Checkpointed into the main file by close; wreck its pages. */
	memset(junk, 0xa5, sizeof junk);
	write_file(f->path, junk, sizeof junk, 4096);
	int r = meta_open(f->url, &f->m, err, sizeof err);

	if (r == 0) {
		r = meta_get(f->m, "/g/7", &kv);
		assert_int_equal(r, -EIO);
	} else {
		assert_int_equal(r, -EIO);
		f->m = open_other(f);
	}
}

static void test_foreign_db(void **state)
{
	struct fx *f = *state;
	char path[200], url[220];
	sqlite3 *db;

	snprintf(path, sizeof path, "%s/other.db", f->dir);
	snprintf(url, sizeof url, "sqlite:%s", path);
	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db, "PRAGMA application_id = 42;"
				      "CREATE TABLE t(x)", NULL, NULL, NULL),
			 SQLITE_OK);
	sqlite3_close(db);
	expect_open_fails(url, -EIO, "not a triplex metadata store");
}

static void test_bad_urls(void **state)
{
	struct fx *f = *state;
	char url[220];

	expect_open_fails("sqlite:", -EINVAL, "missing file path");
	expect_open_fails("mysql://x", -EINVAL, "unknown metadata store URL");
	expect_open_fails("etcd://127.0.0.1:2379", -ENOTSUP, "not implemented");
	snprintf(url, sizeof url, "sqlite:%s/no/such/dir/x.db", f->dir);
	expect_open_fails(url, -EIO, "no/such/dir");
	snprintf(url, sizeof url, "sqlite:%s", f->dir); /* a directory */
	expect_open_fails(url, -EIO, f->dir);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_put_get),
		T(test_cas_create_only),
		T(test_cas_mismatch),
		T(test_revisions_monotonic),
		T(test_del_cas),
		T(test_list_prefix_sorted),
		T(test_lease_expires),
		T(test_keepalive_extends),
		T(test_revoke_deletes_keys),
		T(test_lease_real_clock_other_handle),
		T(test_race_threads),
		T(test_race_fork),
		T(test_reopen_persists),
		T(test_file_settings),
		T(test_corrupt_file),
		T(test_garbled_after_open),
		T(test_foreign_db),
		T(test_bad_urls),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
