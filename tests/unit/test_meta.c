/* The SQLite metadata store on real files: CAS, revisions, prefix lists,
 * leases (with an injected clock), concurrent writers (threads with their
 * own handles, a forked process, exec()ed processes), handles carried
 * across fork(), reopen, corrupt files. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <limits.h>
#include <string.h>
#include <sys/stat.h>
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

/* PRAGMA integrity_check with plain SQLite, not through the store. */
static void assert_integrity(const char *path)
{
	char res[256] = "?";
	sqlite3_stmt *s;
	sqlite3 *db;
	int rc;

	assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY,
					 NULL), SQLITE_OK);
	rc = sqlite3_prepare_v2(db, "PRAGMA integrity_check", -1, &s, NULL);
	if (rc == SQLITE_OK && (rc = sqlite3_step(s)) == SQLITE_ROW)
		snprintf(res, sizeof res, "%s", sqlite3_column_text(s, 0));
	else
		snprintf(res, sizeof res, "%s", sqlite3_errmsg(db));
	sqlite3_finalize(s);
	sqlite3_close(db);
	if (strcmp(res, "ok"))
		fail_msg("%s: integrity_check: %s", path, res);
}

/* One byte through a pipe, to order two processes. */
static bool tell(int fd)
{
	char b = 0;

	return write(fd, &b, 1) == 1;
}

static bool hear(int fd)
{
	char b;

	return read(fd, &b, 1) == 1;
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

/* wait_change: learn the revision, time out, see another handle's put. */
static void test_wait_change(void **state)
{
	struct fx *f = *state;
	struct meta *other = open_other(f);
	int64_t rev = -1;

	assert_int_equal(meta_wait_change(f->m, "/", &rev, 0), 0);
	assert_true(rev >= 0);
	assert_int_equal(meta_wait_change(f->m, "/", &rev, 60), 0);
	assert_int_equal(put_s(other, "/w", "x", -1, 0, NULL), 0);
	assert_int_equal(meta_wait_change(f->m, "/", &rev, 1000), 1);
	assert_int_equal(meta_wait_change(f->m, "/", &rev, 60), 0);
	meta_close(other);
}

/* A handle whose clock is f->now + offset_ms. */
struct skewed {
	struct fx *f;
	int64_t offset_ms;
};

static int64_t skewed_now(void *arg)
{
	struct skewed *k = arg;

	return k->f->now + k->offset_ms;
}

/* Leases never compare clocks between processes: handles whose clocks are
 * an hour ahead and an hour behind see the holder's lease live as long as
 * it is renewed, and expire it only a TTL (by their own clock) after the
 * renewals stop. */
static void test_lease_clock_skew(void **state)
{
	struct fx *f = *state;
	struct meta *ahead = open_other(f), *behind = open_other(f);
	struct skewed ka = { f, 3600 * 1000 }, kb = { f, -3600 * 1000 };
	struct meta_kv kv;
	int64_t lease, other;

	assert_int_equal(meta_set_clock(ahead, skewed_now, &ka), 0);
	assert_int_equal(meta_set_clock(behind, skewed_now, &kb), 0);
	assert_int_equal(meta_lease_grant(f->m, 2, &lease), 0);
	assert_int_equal(put_s(f->m, "/node/a", "x", -1, lease, NULL), 0);
	/* The handle an hour ahead holds one too. */
	assert_int_equal(meta_lease_grant(ahead, 2, &other), 0);
	assert_int_equal(put_s(ahead, "/node/b", "x", -1, other, NULL), 0);
	for (int i = 0; i < 10; i++) {
		f->now += 1000;
		assert_int_equal(meta_lease_keepalive(f->m, lease), 0);
		assert_int_equal(meta_lease_keepalive(ahead, other), 0);
		assert_value(ahead, "/node/a", "x");
		assert_value(behind, "/node/a", "x");
		assert_value(f->m, "/node/b", "x");
		assert_value(behind, "/node/b", "x");
	}
	/* Renewals stop: gone a TTL later, for every handle. */
	f->now += 1999;
	assert_value(behind, "/node/a", "x");
	assert_value(f->m, "/node/b", "x");
	f->now += 1;
	assert_int_equal(meta_get(behind, "/node/a", &kv), -ENOENT);
	assert_int_equal(meta_get(f->m, "/node/b", &kv), -ENOENT);
	assert_int_equal(meta_lease_keepalive(ahead, other), -ENOENT);
	meta_close(ahead);
	meta_close(behind);
}

/* Real clock, second handle: the lease expires for a handle that only
 * watches it, about its TTL after the last renewal. Bounded wait. */
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

static void assert_counter(struct meta *m, const char *key, long want)
{
	struct meta_kv kv;

	assert_int_equal(meta_get(m, key, &kv), 0);
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
	assert_counter(f->m, "/counter", 2 * RACE_INCREMENTS);
	print_message("  thread race: %ld + %ld CAS conflicts retried\n",
		      (long)(intptr_t)c[0], (long)(intptr_t)c[1]);
}

/* Child of test_race_fork: one increment on cue, then the race. */
static int race_fork_child(struct fx *f, int in, int out)
{
	struct meta *m;
	char err[256];
	int c;

	alarm(30); /* never outlive a parent that failed an assert */
	if (meta_open(f->url, &m, err, sizeof err)) {
		fprintf(stderr, "fork race child: %s\n", err);
		return 2;
	}
	if (!hear(in) || increment(m, 1) < 0 || !tell(out) || !hear(in))
		return 2;
	c = increment(m, RACE_INCREMENTS - 1);
	meta_close(m);
	return c < 0 ? 1 : 0;
}

/* fork() without exec() is safe only with no store handle open at that
 * moment (see test_fork_inherited_handle), so the fixture's is closed
 * first. A conflict made certain shows the processes share the compare;
 * the race itself may or may not produce one, so only the sum is checked. */
static void test_race_fork(void **state)
{
	struct fx *f = *state;
	int status, c, go[2], done[2];
	struct meta *m;
	int64_t rev;
	pid_t pid;

	assert_int_equal(put_s(f->m, "/counter", "0", 0, 0, &rev), 0);
	meta_close(f->m);
	f->m = NULL;
	assert_int_equal(pipe(go), 0);
	assert_int_equal(pipe(done), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		close(go[1]);
		close(done[0]);
		_exit(race_fork_child(f, go[0], done[1]));
	}
	close(go[0]);
	close(done[1]);
	f->m = open_other(f);
	m = open_other(f);
	assert_true(tell(go[1]));
	assert_true(hear(done[0]));
	/* The child has incremented since we read rev. */
	assert_int_equal(put_s(m, "/counter", "1", rev, 0, NULL), -ESTALE);
	assert_true(tell(go[1])); /* start together */
	c = increment(m, RACE_INCREMENTS);
	close(go[1]);
	close(done[0]);
	meta_close(m);
	assert_true(c >= 0);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
	assert_counter(f->m, "/counter", 2 * RACE_INCREMENTS);
	assert_integrity(f->path);
	print_message("  fork race: parent retried %d CAS conflicts\n", c);
}

/* Child of test_fork_inherited_handle; returns a bit per failed check. */
static int inherited_child(struct fx *f, int in, int out)
{
	struct meta *m = NULL;
	struct meta_kv kv;
	char err[256] = "";
	int64_t rev = 0;
	int r, res = 0;

	alarm(30); /* never outlive a parent that failed an assert */
	r = meta_get(f->m, "/k", &kv);
	if (r == 0)
		meta_kv_clear(&kv);
	if (r != -EPERM)
		res |= 1;
	r = meta_open(f->url, &m, err, sizeof err);
	if (r != -EPERM || !strstr(err, "fork"))
		res |= 2;
	if (!tell(out) || !hear(in))
		res |= 4;
	/* The parent has closed its last handle and opened a new one. */
	if (r == 0 && put_s(m, "/child", "x", -1, 0, &rev) != 0)
		res |= 8;
	if (write(out, &rev, sizeof rev) != sizeof rev)
		res |= 4;
	meta_close(m);
	meta_close(f->m); /* must leave the parent's connection alone */
	return res;
}

/* The fixture's handle is open across fork(). SQLite's per-file lock
 * bookkeeping is copied into the child, so a handle the child opens joins
 * it and takes no fcntl lock at all: our close of our last handle then
 * finds the file unused, checkpoints and deletes the WAL under the child,
 * and whatever the child commits next is lost (or, with enough writes on
 * both sides, the file is corrupted). The store must refuse both the
 * inherited handle and a new one in the child. */
static void test_fork_inherited_handle(void **state)
{
	struct fx *f = *state;
	int status, c2p[2], p2c[2];
	struct meta_kv kv;
	int64_t acked = 0;
	pid_t pid;
	int r;

	assert_int_equal(put_s(f->m, "/k", "parent", -1, 0, NULL), 0);
	print_message("  (a \"must not cross fork()\" error logged here is "
		      "expected)\n");
	assert_int_equal(pipe(c2p), 0);
	assert_int_equal(pipe(p2c), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		close(c2p[0]);
		close(p2c[1]);
		_exit(inherited_child(f, p2c[0], c2p[1]));
	}
	close(c2p[1]);
	close(p2c[0]);
	assert_true(hear(c2p[0]));
	meta_close(f->m);
	f->m = open_other(f);
	assert_int_equal(put_s(f->m, "/k", "again", -1, 0, NULL), 0);
	assert_true(tell(p2c[1]));
	assert_int_equal(read(c2p[0], &acked, sizeof acked), sizeof acked);
	close(c2p[0]);
	close(p2c[1]);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	if (acked) {
		r = meta_get(f->m, "/child", &kv);
		if (r < 0)
			fail_msg("the child's put, acknowledged at revision "
				 "%lld, is lost (%d)", (long long)acked, r);
		meta_kv_clear(&kv);
	}
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
	assert_value(f->m, "/k", "again");
	assert_integrity(f->path);
}

/* ---- separate processes (fork + exec) -------------------------------- */

#define STRESS_PROCS 4
#define STRESS_INCREMENTS 50

/* What one stress process has seen. hi: the highest revision it knows
 * exists; every write it makes must get a higher one. */
struct stress {
	int id;
	FILE *revs;              /* the revision of each of its writes */
	int64_t hi;
	int64_t counter_rev;     /* last mod_rev of /s/counter seen */
	int conflicts;
};

static void stress_saw(struct stress *st, int64_t rev)
{
	if (rev > st->hi)
		st->hi = rev;
}

static int stress_wrote(struct stress *st, int64_t rev)
{
	if (rev <= st->hi) {
		fprintf(stderr, "stress %d: wrote at revision %lld, but %lld "
			"was already seen\n", st->id, (long long)rev,
			(long long)st->hi);
		return -1;
	}
	st->hi = rev;
	fprintf(st->revs, "%lld\n", (long long)rev);
	return 0;
}

/* The counter's mod_rev as read now: it never goes back. */
static int stress_counter_rev(struct stress *st, int64_t rev)
{
	if (rev < st->counter_rev) {
		fprintf(stderr, "stress %d: /s/counter went back from revision "
			"%lld to %lld\n", st->id, (long long)st->counter_rev,
			(long long)rev);
		return -1;
	}
	st->counter_rev = rev;
	stress_saw(st, rev);
	return 0;
}

/* List /s/: sorted, unique keys, the counter not going back. */
static int stress_list(struct meta *m, struct stress *st)
{
	struct meta_kv *kvs;
	size_t n;
	int r = meta_list(m, "/s/", &kvs, &n);

	if (r < 0)
		return r;
	for (size_t i = 0; r == 0 && i < n; i++) {
		if (i > 0 && strcmp(kvs[i - 1].key, kvs[i].key) >= 0)
			r = -1;
		else if (!strcmp(kvs[i].key, "/s/counter"))
			r = stress_counter_rev(st, kvs[i].mod_rev);
		else
			stress_saw(st, kvs[i].mod_rev);
	}
	meta_kv_free_array(kvs, n);
	return r;
}

static int stress_increment(struct meta *m, struct stress *st)
{
	for (;;) {
		struct meta_kv kv;
		int64_t rev = 0, new_rev;
		char buf[32];
		long v = 0;
		int r = meta_get(m, "/s/counter", &kv);

		if (r == 0) {
			v = strtol((char *)kv.value, NULL, 10);
			rev = kv.mod_rev;
			meta_kv_clear(&kv);
			if (stress_counter_rev(st, rev) < 0)
				return -1;
		} else if (r != -ENOENT) {
			return r;
		}
		snprintf(buf, sizeof buf, "%ld", v + 1);
		usleep(200); /* widen the read-to-write window */
		r = meta_put(m, "/s/counter", buf, strlen(buf), rev, 0,
			     &new_rev);
		if (r == 0)
			return stress_wrote(st, new_rev);
		if (r != -ESTALE)
			return r;
		st->conflicts++;
	}
}

/* A put under a lease, recorded. */
static int stress_put(struct meta *m, struct stress *st, const char *key,
		      int64_t lease)
{
	int64_t rev;
	int r = meta_put(m, key, "x", 1, -1, lease, &rev);

	return r < 0 ? r : stress_wrote(st, rev);
}

#define SCHECK(cond) do { \
	if (!(cond)) { \
		fprintf(stderr, "stress %d: line %d: %s\n", st.id, __LINE__, \
			#cond); \
		goto out; \
	} \
} while (0)

/* One stress process, in an image of its own (exec()ed: no SQLite state
 * inherited). Increments /s/counter n times; keeps keys under a lease it
 * keeps alive, then revokes; leaves one key under a 1 s lease to expire;
 * lists /s/. Writes its revisions to DIR/revs.ID; 0 if all checks held. */
static int stress_child(const char *dir, int id, int n)
{
	struct stress st = { .id = id };
	char url[160], path[160], key[64], err[256];
	struct meta *m = NULL;
	struct meta_kv kv;
	int64_t doomed, lease;
	int ret = 1;

	snprintf(url, sizeof url, "sqlite:%s/meta.db", dir);
	snprintf(path, sizeof path, "%s/revs.%d", dir, id);
	SCHECK((st.revs = fopen(path, "w")) != NULL);
	if (meta_open(url, &m, err, sizeof err)) {
		fprintf(stderr, "stress %d: %s\n", id, err);
		goto out;
	}
	SCHECK(meta_lease_grant(m, 1, &doomed) == 0);
	snprintf(key, sizeof key, "/s/doomed/%d", id);
	SCHECK(stress_put(m, &st, key, doomed) == 0);
	SCHECK(meta_lease_grant(m, 60, &lease) == 0);
	for (int i = 0; i < n; i++) {
		SCHECK(stress_increment(m, &st) == 0);
		if (i % 10 == 0) {
			snprintf(key, sizeof key, "/s/live/%d/%03d", id, i);
			SCHECK(stress_put(m, &st, key, lease) == 0);
			SCHECK(meta_lease_keepalive(m, lease) == 0);
		}
		if (i % 5 == 0)
			SCHECK(stress_list(m, &st) == 0);
	}
	SCHECK(meta_lease_revoke(m, lease) == 0);
	snprintf(key, sizeof key, "/s/live/%d/000", id);
	SCHECK(meta_get(m, key, &kv) == -ENOENT);
	SCHECK(meta_lease_keepalive(m, lease) == -ENOENT);
	printf("  stress %d: %d CAS conflicts retried\n", id, st.conflicts);
	ret = 0;
out:
	meta_close(m);
	if (st.revs && fclose(st.revs))
		ret = 1;
	return ret;
}

static pid_t spawn_stress(const char *dir, int id)
{
	char sid[16], sn[16];
	pid_t pid;

	snprintf(sid, sizeof sid, "%d", id);
	snprintf(sn, sizeof sn, "%d", STRESS_INCREMENTS);
	pid = fork();
	if (pid == 0) {
		execl("/proc/self/exe", "test_meta", "--stress-child", dir,
		      sid, sn, (char *)NULL);
		_exit(127);
	}
	return pid;
}

static int cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

	return x < y ? -1 : x > y;
}

/* Every revision written by the stress processes; none given twice. */
static int64_t assert_revisions_unique(const char *dir)
{
	int64_t revs[STRESS_PROCS * (STRESS_INCREMENTS * 2 + 1)];
	size_t n = 0;
	long long r;

	for (int i = 0; i < STRESS_PROCS; i++) {
		char path[160];
		FILE *fp;

		snprintf(path, sizeof path, "%s/revs.%d", dir, i);
		assert_non_null(fp = fopen(path, "r"));
		while (fscanf(fp, "%lld", &r) == 1) {
			assert_true(n < sizeof revs / sizeof revs[0]);
			revs[n++] = r;
		}
		fclose(fp);
	}
	qsort(revs, n, sizeof revs[0], cmp_i64);
	for (size_t i = 1; i < n; i++)
		if (revs[i] == revs[i - 1])
			fail_msg("revision %lld was given to two writes",
				 (long long)revs[i]);
	assert_true(n >= STRESS_PROCS * (STRESS_INCREMENTS + 1));
	return revs[n - 1];
}

static size_t count_prefix(struct meta *m, const char *prefix)
{
	struct meta_kv *kvs;
	size_t n;

	assert_int_equal(meta_list(m, prefix, &kvs, &n), 0);
	meta_kv_free_array(kvs, n);
	return n;
}

/* Real processes that never inherit SQLite state: fork() + exec() of this
 * binary (the fixture's handle stays open here, as triplexctl's does when
 * dev up spawns triplexd). Meanwhile this process reads. */
static void test_race_exec(void **state)
{
	struct fx *f = *state;
	struct stress st = { .id = -1 };
	pid_t pids[STRESS_PROCS];
	struct timespec t0, t;
	int r, status, left = STRESS_PROCS;
	int64_t last, rev;
	struct meta *m;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (int i = 0; i < STRESS_PROCS; i++)
		assert_true((pids[i] = spawn_stress(f->dir, i)) > 0);
	m = open_other(f); /* the real clock, unlike f->m */
	while (left > 0) {
		assert_int_equal(stress_list(m, &st), 0);
		usleep(5000);
		for (int i = 0; i < STRESS_PROCS; i++) {
			if (pids[i] <= 0)
				continue;
			r = waitpid(pids[i], &status, WNOHANG);
			if (r == 0)
				continue;
			assert_int_equal(r, pids[i]);
			assert_true(WIFEXITED(status));
			assert_int_equal(WEXITSTATUS(status), 0);
			pids[i] = 0;
			left--;
		}
	}
	last = assert_revisions_unique(f->dir);
	assert_counter(m, "/s/counter", STRESS_PROCS * STRESS_INCREMENTS);
	assert_int_equal(put_s(m, "/s/end", "x", -1, 0, &rev), 0);
	assert_true(rev > last);
	assert_int_equal(count_prefix(m, "/s/live/"), 0);
	/* The 1 s leases expire, as seen by a third party; bounded wait. */
	do {
		clock_gettime(CLOCK_MONOTONIC, &t);
		if (count_prefix(m, "/s/doomed/") == 0)
			break;
		usleep(50000);
	} while (t.tv_sec - t0.tv_sec < 5);
	assert_int_equal(count_prefix(m, "/s/doomed/"), 0);
	meta_close(m);
	assert_integrity(f->path);
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

/* meta_open_existing (the CLI's): a missing file is -ENOENT and stays
 * missing; an existing store opens. */
static void test_open_existing(void **state)
{
	struct fx *f = *state;
	struct meta *m = NULL;
	char err[256], url[PATH_MAX + 16], path[PATH_MAX];
	struct stat st;

	snprintf(path, sizeof path, "%s/typo.db", f->dir);
	snprintf(url, sizeof url, "sqlite:%s", path);
	assert_int_equal(meta_open_existing(url, &m, err, sizeof err), -ENOENT);
	assert_null(m);
	assert_non_null(strstr(err, "mistyped path"));
	assert_int_equal(stat(path, &st), -1);
	snprintf(url, sizeof url, "sqlite:%s/no/dir.db", f->dir);
	assert_int_equal(meta_open_existing(url, &m, err, sizeof err), -ENOENT);
	snprintf(url, sizeof url, "sqlite:%s", f->dir);
	assert_int_equal(meta_open_existing(url, &m, err, sizeof err), -EINVAL);
	assert_int_equal(meta_open_existing(f->url, &m, err, sizeof err), 0);
	assert_int_equal(put_s(m, "/e", "x", -1, 0, NULL), 0);
	meta_close(m);
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
	print_message("  (a \"malformed\" error logged here is expected)\n");
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
	expect_open_fails("etcd://", -EINVAL, "no endpoint"); /* more: test_meta_etcd */
	snprintf(url, sizeof url, "sqlite:%s/no/such/dir/x.db", f->dir);
	expect_open_fails(url, -EIO, "no/such/dir");
	snprintf(url, sizeof url, "sqlite:%s", f->dir); /* a directory */
	expect_open_fails(url, -EIO, f->dir);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int main(int argc, char **argv)
{
	if (argc == 5 && !strcmp(argv[1], "--stress-child"))
		return stress_child(argv[2], atoi(argv[3]), atoi(argv[4]));

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
		T(test_lease_clock_skew),
		T(test_wait_change),
		T(test_race_threads),
		T(test_race_fork),
		T(test_fork_inherited_handle),
		T(test_race_exec),
		T(test_open_existing),
		T(test_reopen_persists),
		T(test_file_settings),
		T(test_corrupt_file),
		T(test_garbled_after_open),
		T(test_foreign_db),
		T(test_bad_urls),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
