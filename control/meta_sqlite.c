/*
 * The embedded metadata store: one SQLite file shared by the processes of
 * one host (several triplexd, triplexctl). See docs/metadata.md.
 *
 * Invariants:
 *  1. Every operation is one transaction; writes take BEGIN IMMEDIATE, so
 *     a read-compare-write can never interleave with another writer.
 *  2. Every transaction that changes a key bumps revision.rev by one; a
 *     changed key's mod_rev is that new revision.
 *  3. A lease expires when this handle has seen its renewal count stay
 *     the same for its TTL by this process's own monotonic clock; expired
 *     leases and their keys are deleted at the start of every operation,
 *     before anything is read. No wall clock is ever compared between
 *     processes, so a node whose clock is off cannot expire another's
 *     lease (msq_observe).
 *  4. A put that returned 0 is on disk (WAL + synchronous=FULL).
 *
 * A handle is used by one thread at a time (prepared statements are cached
 * in it); open one handle per thread or process, never share one across
 * fork(). That is enforced (msq_fork_guard): SQLite keeps its per-file lock
 * bookkeeping in process memory, which fork() copies while the fcntl locks
 * it describes stay with the parent. A child's own new handle to the file
 * then joins that copy and takes no real lock, so another process can
 * checkpoint and delete the WAL under it: its commits are lost, CAS splits,
 * the file can be corrupted. See docs/metadata.md.
 */
#include "meta.h"

#include <errno.h>
#include <limits.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>

#include "log.h"

#define MSQ_SCHEMA_VERSION 2
#define MSQ_APPLICATION_ID 0x74706c78 /* "tplx" */
#define MSQ_BUSY_TIMEOUT_MS 5000
#define MSQ_MAX_TTL_S (365 * 24 * 3600)

enum msq_stmt {
	ST_BEGIN,
	ST_BEGIN_IMMEDIATE,
	ST_COMMIT,
	ST_ROLLBACK,
	ST_LEASE_SCAN,
	ST_REV_BUMP,
	ST_REV_GET,
	ST_GET,
	ST_MOD_REV,
	ST_LIST_RANGE,
	ST_LIST_FROM,
	ST_INSERT,
	ST_UPDATE,
	ST_DELETE,
	ST_LEASE_EXISTS,
	ST_LEASE_INSERT,
	ST_LEASE_RENEW,
	ST_LEASE_DEL_KEYS,
	ST_LEASE_DELETE,
	ST_COUNT
};

#define KV_COLS "key, value, create_rev, mod_rev, lease"

static const char *const msq_sql[ST_COUNT] = {
	[ST_BEGIN] = "BEGIN",
	[ST_BEGIN_IMMEDIATE] = "BEGIN IMMEDIATE",
	[ST_COMMIT] = "COMMIT",
	[ST_ROLLBACK] = "ROLLBACK",
	[ST_LEASE_SCAN] = "SELECT id, ttl, renewals FROM leases ORDER BY id",
	[ST_REV_BUMP] = "UPDATE revision SET rev = rev + 1 WHERE id = 0",
	[ST_REV_GET] = "SELECT rev FROM revision WHERE id = 0",
	[ST_GET] = "SELECT " KV_COLS " FROM kv WHERE key = ?1",
	[ST_MOD_REV] = "SELECT mod_rev FROM kv WHERE key = ?1",
	[ST_LIST_RANGE] = "SELECT " KV_COLS " FROM kv WHERE key >= ?1 "
		"AND key < ?2 ORDER BY key",
	[ST_LIST_FROM] = "SELECT " KV_COLS " FROM kv WHERE key >= ?1 "
		"ORDER BY key",
	[ST_INSERT] = "INSERT INTO kv(" KV_COLS ") VALUES (?1, ?2, ?3, ?3, ?4)",
	[ST_UPDATE] = "UPDATE kv SET value = ?2, mod_rev = ?3, lease = ?4 "
		"WHERE key = ?1",
	[ST_DELETE] = "DELETE FROM kv WHERE key = ?1",
	[ST_LEASE_EXISTS] = "SELECT 1 FROM leases WHERE id = ?1",
	[ST_LEASE_INSERT] = "INSERT INTO leases(ttl, renewals) VALUES (?1, 0)",
	[ST_LEASE_RENEW] = "UPDATE leases SET renewals = renewals + 1 "
		"WHERE id = ?1 RETURNING renewals",
	[ST_LEASE_DEL_KEYS] = "DELETE FROM kv WHERE lease = ?1",
	[ST_LEASE_DELETE] = "DELETE FROM leases WHERE id = ?1",
};

static const char msq_schema[] =
	"CREATE TABLE IF NOT EXISTS kv ("
	" key TEXT PRIMARY KEY NOT NULL,"
	" value BLOB NOT NULL,"
	" create_rev INTEGER NOT NULL,"
	" mod_rev INTEGER NOT NULL,"
	" lease INTEGER NOT NULL DEFAULT 0) WITHOUT ROWID;"
	"CREATE INDEX IF NOT EXISTS kv_lease ON kv(lease) WHERE lease != 0;"
	"CREATE TABLE IF NOT EXISTS leases ("
	" id INTEGER PRIMARY KEY AUTOINCREMENT," /* ids are never reused */
	" ttl INTEGER NOT NULL,"
	" renewals INTEGER NOT NULL DEFAULT 0);"
	"CREATE TABLE IF NOT EXISTS revision ("
	" id INTEGER PRIMARY KEY CHECK (id = 0),"
	" rev INTEGER NOT NULL);"
	"INSERT OR IGNORE INTO revision VALUES (0, 0);";

/* What this handle last saw of one lease: its renewal count, and when (by
 * its own clock) that count was first seen. */
struct msq_seen {
	int64_t id, ttl_ms, renewals, since_ms;
	bool expired;
};

struct msq {
	struct meta base;
	pid_t pid;               /* the process that opened it */
	sqlite3 *db;
	sqlite3_stmt *st[ST_COUNT];
	int64_t (*now_ms)(void *arg);
	void *clock_arg;
	struct msq_seen *seen;   /* sorted by id, the leases at the last scan */
	size_t nseen;
	char path[];
};

static struct msq *to_msq(struct meta *m)
{
	return (struct msq *)m;
}

/* Handles open (or opening) in this process, and its pid, in one word:
 * (pid << 32) | count. Lock-free so that a fork() at any moment leaves the
 * child a consistent copy. A count with another pid means this process
 * was forked while the store was open: SQLite's lock state is not ours. */
static _Atomic uint64_t msq_handles;

static int msq_fork_guard(uint64_t word)
{
	uint32_t owner = (uint32_t)(word >> 32);

	return (uint32_t)word != 0 && owner != (uint32_t)getpid() ?
		(int)owner : 0;
}

/* Count a handle about to be opened; the forking parent's pid if refused. */
static int msq_handles_get(void)
{
	uint64_t old = atomic_load(&msq_handles), new;
	int parent;

	do {
		if ((parent = msq_fork_guard(old)))
			return parent;
		new = (uint64_t)(uint32_t)getpid() << 32 |
		      ((uint32_t)old + 1);
	} while (!atomic_compare_exchange_weak(&msq_handles, &old, new));
	return 0;
}

static void msq_handles_put(void)
{
	atomic_fetch_sub(&msq_handles, 1);
}

/* A handle carried across fork(): refuse to touch SQLite with it. */
static bool msq_forked(struct msq *q)
{
	if (q->pid == getpid())
		return false;
	log_error("metadata store %s: handle opened by process %d used in "
		  "process %d: store handles must not cross fork()", q->path,
		  (int)q->pid, (int)getpid());
	return true;
}

static int64_t msq_monotonic_ms(void *arg)
{
	struct timespec ts;

	(void)arg;
	/* Only ever compared with this process's own readings. */
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int msq_errno(int rc)
{
	switch (rc & 0xff) {
	case SQLITE_BUSY:
	case SQLITE_LOCKED:
		return -EBUSY;
	case SQLITE_NOMEM:
		return -ENOMEM;
	case SQLITE_FULL:
		return -ENOSPC;
	case SQLITE_READONLY:
		return -EROFS;
	case SQLITE_PERM:
	case SQLITE_AUTH:
		return -EACCES;
	case SQLITE_CONSTRAINT:
	case SQLITE_TOOBIG:
		return -EINVAL;
	default:
		return -EIO;
	}
}

/* Log a failed SQLite call and return its -errno. */
static int msq_fail(struct msq *q, int rc, const char *what)
{
	log_error("metadata store %s: %s: %s", q->path, what,
		  q->db ? sqlite3_errmsg(q->db) : sqlite3_errstr(rc));
	return msq_errno(rc);
}

/* The cached statement id, prepared on first use, bindings cleared. */
static int msq_stmt(struct msq *q, enum msq_stmt id, sqlite3_stmt **out)
{
	int rc;

	if (!q->st[id]) {
		rc = sqlite3_prepare_v3(q->db, msq_sql[id], -1,
					SQLITE_PREPARE_PERSISTENT, &q->st[id],
					NULL);
		if (rc != SQLITE_OK)
			return msq_fail(q, rc, msq_sql[id]);
	}
	*out = q->st[id];
	return 0;
}

static void msq_done(sqlite3_stmt *s)
{
	sqlite3_reset(s);
	sqlite3_clear_bindings(s);
}

/* Step s once: 1 for a row, 0 when done (s is reset), or -errno. */
static int msq_step(struct msq *q, sqlite3_stmt *s)
{
	int rc = sqlite3_step(s);

	if (rc == SQLITE_ROW)
		return 1;
	msq_done(s);
	if (rc == SQLITE_DONE)
		return 0;
	return msq_fail(q, rc, sqlite3_sql(s));
}

/* Run a statement with up to two integer parameters to completion; returns
 * the number of rows changed or -errno. */
static int msq_exec_ii(struct msq *q, enum msq_stmt id, int nargs, int64_t a,
		       int64_t b)
{
	sqlite3_stmt *s = NULL;
	int r = msq_stmt(q, id, &s);

	if (r < 0)
		return r;
	if (nargs > 0)
		sqlite3_bind_int64(s, 1, a);
	if (nargs > 1)
		sqlite3_bind_int64(s, 2, b);
	while ((r = msq_step(q, s)) == 1)
		;
	return r < 0 ? r : sqlite3_changes(q->db);
}

/* Does a statement with one integer parameter return a row? 1, 0, -errno */
static int msq_exists_i(struct msq *q, enum msq_stmt id, int64_t a)
{
	sqlite3_stmt *s = NULL;
	int r = msq_stmt(q, id, &s);

	if (r < 0)
		return r;
	sqlite3_bind_int64(s, 1, a);
	r = msq_step(q, s);
	if (r == 1)
		msq_done(s);
	return r;
}

/* Bump the store revision; *rev is the new one. */
static int msq_rev_bump(struct msq *q, int64_t *rev)
{
	sqlite3_stmt *s = NULL;
	int r = msq_exec_ii(q, ST_REV_BUMP, 0, 0, 0);

	if (r < 0)
		return r;
	if ((r = msq_stmt(q, ST_REV_GET, &s)) < 0)
		return r;
	r = msq_step(q, s);
	if (r == 0)
		return msq_fail(q, SQLITE_CORRUPT, "revision row missing");
	if (r < 0)
		return r;
	if (rev)
		*rev = sqlite3_column_int64(s, 0);
	msq_done(s);
	return 0;
}

static struct msq_seen *msq_seen_find(struct msq *q, int64_t id)
{
	size_t lo = 0, hi = q->nseen;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (q->seen[mid].id == id)
			return &q->seen[mid];
		if (q->seen[mid].id < id)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

/* Note that lease id had renewal count renewals at now (a grant or a
 * keepalive through this handle). Keeps q->seen sorted. */
static int msq_seen_note(struct msq *q, int64_t id, int64_t ttl_ms,
			 int64_t renewals, int64_t now)
{
	struct msq_seen *e = msq_seen_find(q, id), *n;
	size_t at = q->nseen;

	if (!e) {
		if (!(n = realloc(q->seen, (q->nseen + 1) * sizeof *n)))
			return -ENOMEM;
		q->seen = n;
		while (at > 0 && q->seen[at - 1].id > id)
			at--;
		memmove(&q->seen[at + 1], &q->seen[at],
			(q->nseen - at) * sizeof *n);
		q->nseen++;
		e = &q->seen[at];
		e->id = id;
		e->ttl_ms = ttl_ms;
	}
	e->renewals = renewals;
	e->since_ms = now;
	e->expired = false;
	return 0;
}

/* Scan the leases table into q->seen: a lease seen for the first time, or
 * with a new renewal count, starts its TTL now; one whose count has not
 * moved for its TTL is marked expired. Returns how many are, or -errno. */
static int msq_observe(struct msq *q, int64_t now)
{
	struct msq_seen *next = NULL, *n, *old;
	sqlite3_stmt *s = NULL;
	size_t count = 0, cap = 0;
	int r, expired = 0;

	if ((r = msq_stmt(q, ST_LEASE_SCAN, &s)) < 0)
		return r;
	while ((r = msq_step(q, s)) == 1) {
		int64_t id = sqlite3_column_int64(s, 0);
		int64_t renewals = sqlite3_column_int64(s, 2);

		if (count == cap) {
			cap = cap ? 2 * cap : 16;
			if (!(n = realloc(next, cap * sizeof *n))) {
				msq_done(s);
				free(next);
				return -ENOMEM;
			}
			next = n;
		}
		n = &next[count++];
		old = msq_seen_find(q, id);
		if (old && old->renewals == renewals) {
			*n = *old;
		} else {
			n->id = id;
			n->renewals = renewals;
			n->since_ms = now;
		}
		n->ttl_ms = sqlite3_column_int64(s, 1) * 1000;
		n->expired = now - n->since_ms >= n->ttl_ms;
		expired += n->expired;
	}
	if (r < 0) {
		free(next);
		return r;
	}
	free(q->seen);
	q->seen = next;
	q->nseen = count;
	return expired;
}

static int msq_lease_revoke_locked(struct msq *q, int64_t lease);

/* Invariant 3. Called inside a write transaction. */
static int msq_expire(struct msq *q, int64_t now)
{
	int n = msq_observe(q, now), r;

	for (size_t i = 0; n > 0 && i < q->nseen; i++) {
		if (!q->seen[i].expired)
			continue;
		log_info("metadata store %s: lease %lld expired (not renewed "
			 "for %lld s)", q->path, (long long)q->seen[i].id,
			 (long long)q->seen[i].ttl_ms / 1000);
		r = msq_lease_revoke_locked(q, q->seen[i].id);
		if (r < 0 && r != -ENOENT)
			return r;
	}
	return n < 0 ? n : 0;
}

/* Begin an operation's transaction with expired leases gone (invariant 3).
 * Reads start deferred and upgrade only when something has expired. */
static int msq_begin(struct msq *q, bool write)
{
	int64_t now = q->now_ms(q->clock_arg);
	int r;

	if (msq_forked(q))
		return -EPERM;
	if (!write) {
		if ((r = msq_exec_ii(q, ST_BEGIN, 0, 0, 0)) < 0)
			return r;
		r = msq_observe(q, now);
		if (r == 0)
			return 0;
		msq_exec_ii(q, ST_ROLLBACK, 0, 0, 0);
		if (r < 0)
			return r;
	}
	if ((r = msq_exec_ii(q, ST_BEGIN_IMMEDIATE, 0, 0, 0)) < 0)
		return r;
	r = msq_expire(q, now);
	if (r < 0)
		msq_exec_ii(q, ST_ROLLBACK, 0, 0, 0);
	return r;
}

/* Commit if res is 0, else roll back; returns res or the commit error. */
static int msq_end(struct msq *q, int res)
{
	int r;

	if (res < 0) {
		if (!sqlite3_get_autocommit(q->db))
			msq_exec_ii(q, ST_ROLLBACK, 0, 0, 0);
		return res;
	}
	r = msq_exec_ii(q, ST_COMMIT, 0, 0, 0);
	if (r < 0) {
		if (!sqlite3_get_autocommit(q->db))
			msq_exec_ii(q, ST_ROLLBACK, 0, 0, 0);
		return r;
	}
	return 0;
}

/* ---- key-value operations ------------------------------------------ */

static int msq_kv_from_row(sqlite3_stmt *s, struct meta_kv *kv)
{
	const void *v = sqlite3_column_blob(s, 1);
	size_t vlen = (size_t)sqlite3_column_bytes(s, 1);
	const char *k = (const char *)sqlite3_column_text(s, 0);

	memset(kv, 0, sizeof *kv);
	kv->key = strdup(k ? k : "");
	kv->value = malloc(vlen + 1);
	if (!kv->key || !kv->value) {
		meta_kv_clear(kv);
		return -ENOMEM;
	}
	if (vlen)
		memcpy(kv->value, v, vlen);
	kv->value[vlen] = 0;
	kv->value_len = vlen;
	kv->create_rev = sqlite3_column_int64(s, 2);
	kv->mod_rev = sqlite3_column_int64(s, 3);
	kv->lease = sqlite3_column_int64(s, 4);
	return 0;
}

static int msq_get_locked(struct msq *q, const char *key, struct meta_kv *out)
{
	sqlite3_stmt *s = NULL;
	int r = msq_stmt(q, ST_GET, &s);

	if (r < 0)
		return r;
	sqlite3_bind_text(s, 1, key, -1, SQLITE_STATIC);
	r = msq_step(q, s);
	if (r == 0)
		return -ENOENT;
	if (r < 0)
		return r;
	r = msq_kv_from_row(s, out);
	msq_done(s);
	return r;
}

static int msq_get(struct meta *m, const char *key, struct meta_kv *out)
{
	struct msq *q = to_msq(m);
	int r;

	memset(out, 0, sizeof *out);
	if ((r = msq_begin(q, false)) < 0)
		return r;
	return msq_end(q, msq_get_locked(q, key, out));
}

/* The smallest string greater than every string starting with prefix, in
 * memcmp order, or "" if there is none (prefix empty or all 0xff). */
static char *prefix_end(const char *prefix)
{
	char *end = strdup(prefix);
	size_t n;

	if (!end)
		return NULL;
	for (n = strlen(end); n > 0; n--) {
		if ((unsigned char)end[n - 1] != 0xff) {
			end[n - 1]++;
			end[n] = 0;
			return end;
		}
	}
	end[0] = 0;
	return end;
}

static int msq_kv_append(sqlite3_stmt *s, struct meta_kv **arr, size_t *n,
			 size_t *cap)
{
	if (*n == *cap) {
		size_t ncap = *cap ? *cap * 2 : 16;
		struct meta_kv *t = realloc(*arr, ncap * sizeof *t);

		if (!t)
			return -ENOMEM;
		*arr = t;
		*cap = ncap;
	}
	int r = msq_kv_from_row(s, &(*arr)[*n]);

	if (r == 0)
		(*n)++;
	return r;
}

static int msq_list_locked(struct msq *q, const char *prefix,
			   struct meta_kv **out, size_t *n)
{
	char *end = prefix_end(prefix);
	sqlite3_stmt *s = NULL;
	size_t cap = 0;
	int r;

	if (!end)
		return -ENOMEM;
	r = msq_stmt(q, *end ? ST_LIST_RANGE : ST_LIST_FROM, &s);
	if (r < 0)
		goto out;
	sqlite3_bind_text(s, 1, prefix, -1, SQLITE_STATIC);
	if (*end)
		sqlite3_bind_text(s, 2, end, -1, SQLITE_STATIC);
	while ((r = msq_step(q, s)) == 1) {
		r = msq_kv_append(s, out, n, &cap);
		if (r < 0) {
			msq_done(s);
			break;
		}
	}
out:
	free(end);
	return r;
}

static int msq_list(struct meta *m, const char *prefix, struct meta_kv **out,
		    size_t *n)
{
	struct msq *q = to_msq(m);
	int r;

	*out = NULL;
	*n = 0;
	if ((r = msq_begin(q, false)) < 0)
		return r;
	r = msq_end(q, msq_list_locked(q, prefix, out, n));
	if (r < 0) {
		meta_kv_free_array(*out, *n);
		*out = NULL;
		*n = 0;
	}
	return r;
}

/* The key's mod_rev, 0 if it does not exist, or -errno. */
static int msq_mod_rev(struct msq *q, const char *key, int64_t *rev)
{
	sqlite3_stmt *s = NULL;
	int r = msq_stmt(q, ST_MOD_REV, &s);

	if (r < 0)
		return r;
	sqlite3_bind_text(s, 1, key, -1, SQLITE_STATIC);
	r = msq_step(q, s);
	if (r < 0)
		return r;
	*rev = r ? sqlite3_column_int64(s, 0) : 0;
	if (r)
		msq_done(s);
	return 0;
}

static int check_expect(int64_t expect_rev, int64_t cur)
{
	if (expect_rev == 0 && cur != 0)
		return -ESTALE;
	if (expect_rev > 0 && cur != expect_rev)
		return -ESTALE;
	return 0;
}

static int msq_write_row(struct msq *q, bool exists, const char *key,
			 const void *value, size_t len, int64_t rev,
			 int64_t lease)
{
	sqlite3_stmt *s = NULL;
	int r = msq_stmt(q, exists ? ST_UPDATE : ST_INSERT, &s);

	if (r < 0)
		return r;
	sqlite3_bind_text(s, 1, key, -1, SQLITE_STATIC);
	/* A NULL pointer would store SQL NULL; keep empty values blobs. */
	sqlite3_bind_blob64(s, 2, len ? value : "", len, SQLITE_STATIC);
	sqlite3_bind_int64(s, 3, rev);
	sqlite3_bind_int64(s, 4, lease);
	r = msq_step(q, s);
	return r < 0 ? r : 0;
}

static int msq_put_locked(struct msq *q, const char *key, const void *value,
			  size_t len, int64_t expect_rev, int64_t lease,
			  int64_t *new_rev)
{
	int64_t cur, rev;
	int r = msq_mod_rev(q, key, &cur);

	if (r < 0 || (r = check_expect(expect_rev, cur)) < 0)
		return r;
	if (lease) {
		r = msq_exists_i(q, ST_LEASE_EXISTS, lease);
		if (r <= 0)
			return r < 0 ? r : -ENOENT;
	}
	if ((r = msq_rev_bump(q, &rev)) < 0)
		return r;
	r = msq_write_row(q, cur != 0, key, value, len, rev, lease);
	if (r == 0 && new_rev)
		*new_rev = rev;
	return r;
}

static int msq_put(struct meta *m, const char *key, const void *value,
		   size_t len, int64_t expect_rev, int64_t lease,
		   int64_t *new_rev)
{
	struct msq *q = to_msq(m);
	int r;

	if (!*key || expect_rev < -1 || lease < 0 || len > INT_MAX)
		return -EINVAL;
	if ((r = msq_begin(q, true)) < 0)
		return r;
	return msq_end(q, msq_put_locked(q, key, value, len, expect_rev,
					 lease, new_rev));
}

static int msq_del_locked(struct msq *q, const char *key, int64_t expect_rev)
{
	sqlite3_stmt *s = NULL;
	int64_t cur;
	int r = msq_mod_rev(q, key, &cur);

	if (r < 0)
		return r;
	if (cur == 0)
		return expect_rev == -1 ? -ENOENT : -ESTALE;
	if ((r = check_expect(expect_rev, cur)) < 0)
		return r;
	if ((r = msq_stmt(q, ST_DELETE, &s)) < 0)
		return r;
	sqlite3_bind_text(s, 1, key, -1, SQLITE_STATIC);
	if ((r = msq_step(q, s)) < 0)
		return r;
	return msq_rev_bump(q, NULL);
}

static int msq_del(struct meta *m, const char *key, int64_t expect_rev)
{
	struct msq *q = to_msq(m);
	int r;

	if (expect_rev == 0 || expect_rev < -1)
		return -EINVAL;
	if ((r = msq_begin(q, true)) < 0)
		return r;
	return msq_end(q, msq_del_locked(q, key, expect_rev));
}

/* ---- leases --------------------------------------------------------- */

static int msq_lease_grant(struct meta *m, int ttl_s, int64_t *lease)
{
	struct msq *q = to_msq(m);
	int r;

	if (ttl_s < 1 || ttl_s > MSQ_MAX_TTL_S)
		return -EINVAL;
	if ((r = msq_begin(q, true)) < 0)
		return r;
	r = msq_exec_ii(q, ST_LEASE_INSERT, 1, ttl_s, 0);
	if (r >= 0) {
		*lease = sqlite3_last_insert_rowid(q->db);
		r = msq_seen_note(q, *lease, (int64_t)ttl_s * 1000, 0,
				  q->now_ms(q->clock_arg));
	}
	return msq_end(q, r);
}

/* Bump the renewal count; this handle's TTL for the lease restarts now. */
static int msq_lease_renew_locked(struct msq *q, int64_t lease)
{
	struct msq_seen *e = msq_seen_find(q, lease);
	sqlite3_stmt *s = NULL;
	int64_t renewals;
	int r = msq_stmt(q, ST_LEASE_RENEW, &s);

	if (r < 0)
		return r;
	sqlite3_bind_int64(s, 1, lease);
	if ((r = msq_step(q, s)) <= 0)
		return r < 0 ? r : -ENOENT;
	renewals = sqlite3_column_int64(s, 0);
	while ((r = msq_step(q, s)) == 1)
		;
	if (r < 0)
		return r;
	/* Found by the scan in msq_begin, so e is there. */
	return msq_seen_note(q, lease, e ? e->ttl_ms : 0, renewals,
			     q->now_ms(q->clock_arg));
}

static int msq_lease_keepalive(struct meta *m, int64_t lease)
{
	struct msq *q = to_msq(m);
	int r;

	if ((r = msq_begin(q, true)) < 0)
		return r;
	return msq_end(q, msq_lease_renew_locked(q, lease));
}

static int msq_lease_revoke_locked(struct msq *q, int64_t lease)
{
	int r = msq_exec_ii(q, ST_LEASE_DELETE, 1, lease, 0);

	if (r <= 0)
		return r < 0 ? r : -ENOENT;
	r = msq_exec_ii(q, ST_LEASE_DEL_KEYS, 1, lease, 0);
	if (r > 0)
		r = msq_rev_bump(q, NULL);
	return r < 0 ? r : 0;
}

static int msq_lease_revoke(struct meta *m, int64_t lease)
{
	struct msq *q = to_msq(m);
	int r;

	if ((r = msq_begin(q, true)) < 0)
		return r;
	return msq_end(q, msq_lease_revoke_locked(q, lease));
}

#define MSQ_WATCH_POLL_MS 20

/* The store's revision, read outside any transaction of ours. */
static int msq_revision(struct msq *q, int64_t *rev)
{
	sqlite3_stmt *s = NULL;
	int r = msq_stmt(q, ST_REV_GET, &s);

	if (r < 0)
		return r;
	r = msq_step(q, s);
	if (r == 1) {
		*rev = sqlite3_column_int64(s, 0);
		msq_done(s);
		return 0;
	}
	return r < 0 ? r : -EIO;
}

/* One file on one host: reading the revision every 20 ms costs little
 * (WAL readers take no lock) and sees every other process's change. */
static int msq_wait_change(struct meta *m, const char *prefix, int64_t *rev,
			   int timeout_ms)
{
	struct msq *q = to_msq(m);
	int64_t now, waited = 0;
	int r;

	(void)prefix;
	if (msq_forked(q))
		return -EPERM;
	for (;;) {
		if ((r = msq_revision(q, &now)) < 0)
			return r;
		if (*rev < 0 || now != *rev) {
			bool changed = *rev >= 0;

			*rev = now;
			return changed;
		}
		if (waited >= timeout_ms)
			return 0;
		usleep(MSQ_WATCH_POLL_MS * 1000);
		waited += MSQ_WATCH_POLL_MS;
	}
}

static int msq_set_clock(struct meta *m, int64_t (*now_ms)(void *arg),
			 void *arg)
{
	struct msq *q = to_msq(m);

	q->now_ms = now_ms ? now_ms : msq_monotonic_ms;
	free(q->seen);           /* readings of the old clock mean nothing */
	q->seen = NULL;
	q->nseen = 0;
	q->clock_arg = arg;
	return 0;
}

static void msq_close(struct meta *m)
{
	struct msq *q = to_msq(m);

	/* In a forked child, leak the connection: closing it could
	 * checkpoint and delete the WAL the parent still uses. */
	if (q->pid != getpid()) {
		free(q->seen);
		free(q);
		return;
	}
	for (int i = 0; i < ST_COUNT; i++)
		sqlite3_finalize(q->st[i]);
	sqlite3_close_v2(q->db);
	free(q->seen);
	free(q);
	msq_handles_put();
}

static const struct meta_ops msq_ops = {
	.get = msq_get,
	.list = msq_list,
	.put = msq_put,
	.del = msq_del,
	.lease_grant = msq_lease_grant,
	.lease_keepalive = msq_lease_keepalive,
	.lease_revoke = msq_lease_revoke,
	.close = msq_close,
	.set_clock = msq_set_clock,
	.wait_change = msq_wait_change,
};

/* ---- opening -------------------------------------------------------- */

static int msq_pragma_int(struct msq *q, const char *sql, int64_t *val)
{
	sqlite3_stmt *s = NULL;
	int rc = sqlite3_prepare_v2(q->db, sql, -1, &s, NULL);

	if (rc != SQLITE_OK)
		return rc;
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW) {
		*val = sqlite3_column_int64(s, 0);
		rc = SQLITE_OK;
	}
	sqlite3_finalize(s);
	return rc == SQLITE_DONE ? SQLITE_OK : rc;
}

/* Set WAL mode (persistent in the file) and per-connection settings. */
static int msq_settings(struct msq *q, char *err, size_t errlen)
{
	char *mode = NULL;
	sqlite3_stmt *s = NULL;
	int rc;

	sqlite3_busy_timeout(q->db, MSQ_BUSY_TIMEOUT_MS);
	rc = sqlite3_prepare_v2(q->db, "PRAGMA journal_mode = WAL", -1, &s,
				NULL);
	if (rc == SQLITE_OK && (rc = sqlite3_step(s)) == SQLITE_ROW) {
		const char *t = (const char *)sqlite3_column_text(s, 0);

		mode = strdup(t ? t : "");
		rc = SQLITE_OK;
	}
	sqlite3_finalize(s);
	if (rc != SQLITE_OK) {
		snprintf(err, errlen, "%s: %s", q->path, sqlite3_errmsg(q->db));
		return rc;
	}
	rc = mode && !strcmp(mode, "wal") ? SQLITE_OK : SQLITE_CANTOPEN;
	if (rc != SQLITE_OK)
		snprintf(err, errlen, "%s: cannot use WAL mode (got %s)",
			 q->path, mode ? mode : "?");
	free(mode);
	if (rc == SQLITE_OK)
		rc = sqlite3_exec(q->db, "PRAGMA synchronous = FULL", NULL,
				  NULL, NULL);
	if (rc != SQLITE_OK && !*err)
		snprintf(err, errlen, "%s: %s", q->path, sqlite3_errmsg(q->db));
	return rc;
}

/* Check that the file is ours (or new), create the schema. In a write
 * transaction so that processes starting together do not race. */
static int msq_schema_locked(struct msq *q, char *err, size_t errlen)
{
	int64_t app = 0, ver = 0;
	int rc = msq_pragma_int(q, "PRAGMA application_id", &app);

	if (rc == SQLITE_OK)
		rc = msq_pragma_int(q, "PRAGMA user_version", &ver);
	if (rc != SQLITE_OK)
		goto sqlerr;
	if (app != 0 && app != MSQ_APPLICATION_ID) {
		snprintf(err, errlen, "%s: not a triplex metadata store "
			 "(application_id %#llx)", q->path,
			 (unsigned long long)app);
		return SQLITE_NOTADB;
	}
	if (ver > MSQ_SCHEMA_VERSION) {
		snprintf(err, errlen, "%s: schema version %lld is newer than "
			 "this build (%d)", q->path, (long long)ver,
			 MSQ_SCHEMA_VERSION);
		return SQLITE_NOTADB;
	}
	rc = sqlite3_exec(q->db, msq_schema, NULL, NULL, NULL);
	/* Version 1 kept wall-clock deadlines that processes compared. */
	if (rc == SQLITE_OK && ver == 1)
		rc = sqlite3_exec(q->db, "ALTER TABLE leases ADD COLUMN "
				  "renewals INTEGER NOT NULL DEFAULT 0;"
				  "ALTER TABLE leases DROP COLUMN expires_at_ms",
				  NULL, NULL, NULL);
	if (rc == SQLITE_OK)
		rc = sqlite3_exec(q->db, "PRAGMA application_id = 1953524856;"
				  "PRAGMA user_version = 2", NULL, NULL, NULL);
	if (rc == SQLITE_OK)
		return SQLITE_OK;
sqlerr:
	snprintf(err, errlen, "%s: %s", q->path, sqlite3_errmsg(q->db));
	return rc;
}

static int msq_create_schema(struct msq *q, char *err, size_t errlen)
{
	int rc = sqlite3_exec(q->db, "BEGIN IMMEDIATE", NULL, NULL, NULL);

	if (rc != SQLITE_OK) {
		snprintf(err, errlen, "%s: %s", q->path, sqlite3_errmsg(q->db));
		return rc;
	}
	rc = msq_schema_locked(q, err, errlen);
	rc = sqlite3_exec(q->db, rc == SQLITE_OK ? "COMMIT" : "ROLLBACK",
			  NULL, NULL, NULL) == SQLITE_OK ? rc : SQLITE_IOERR;
	if (rc != SQLITE_OK && !*err)
		snprintf(err, errlen, "%s: %s", q->path, sqlite3_errmsg(q->db));
	return rc;
}

int meta_sqlite_open(const char *path, struct meta **out, char *err,
		     size_t errlen)
{
	size_t plen = strlen(path);
	struct msq *q;
	int rc, parent;

	_Static_assert(MSQ_APPLICATION_ID == 1953524856, "application_id");
	*out = NULL;
	if (errlen)
		err[0] = 0;
	if ((parent = msq_handles_get())) {
		snprintf(err, errlen, "%s: this process was forked by process "
			 "%d while it had a metadata store open; close stores "
			 "before fork(), or open them after exec()", path,
			 parent);
		return -EPERM;
	}
	q = calloc(1, sizeof *q + plen + 1);
	if (!q) {
		msq_handles_put();
		snprintf(err, errlen, "%s: out of memory", path);
		return -ENOMEM;
	}
	memcpy(q->path, path, plen + 1);
	q->base.ops = &msq_ops;
	q->pid = getpid();
	q->now_ms = msq_monotonic_ms;
	rc = sqlite3_open_v2(path, &q->db, SQLITE_OPEN_READWRITE |
			     SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL);
	if (rc != SQLITE_OK)
		snprintf(err, errlen, "%s: %s", path, q->db ?
			 sqlite3_errmsg(q->db) : sqlite3_errstr(rc));
	if (rc == SQLITE_OK)
		rc = msq_settings(q, err, errlen);
	if (rc == SQLITE_OK)
		rc = msq_create_schema(q, err, errlen);
	if (rc != SQLITE_OK) {
		int e = msq_errno(rc);

		msq_close(&q->base);
		return e;
	}
	*out = &q->base;
	return 0;
}
