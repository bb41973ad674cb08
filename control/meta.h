/*
 * The metadata store: a small key-value interface shaped like etcd's v3
 * API, so that the embedded SQLite implementation (one host) and an etcd
 * one (many hosts) are interchangeable. Values are opaque bytes (JSON in
 * practice, see cluster.h). Every change bumps a store-wide revision;
 * writes can be conditional on a key's mod_revision (compare-and-swap), and
 * keys can be attached to a lease that expires unless kept alive.
 *
 * Calls are synchronous. Return 0 or -errno: -ENOENT (no such key),
 * -ESTALE (a compare failed), -EIO (the store failed), -EPERM (a handle
 * used in a process forked after it was opened).
 */
#ifndef TRIPLEX_META_H
#define TRIPLEX_META_H

#include <errno.h>
#include <stddef.h>
#include <stdint.h>

struct meta;

struct meta_kv {
	char *key;
	uint8_t *value;      /* followed by a NUL not counted in value_len */
	size_t value_len;
	int64_t create_rev;
	int64_t mod_rev;
	int64_t lease;       /* 0: none */
};

struct meta_ops {
	int (*get)(struct meta *m, const char *key, struct meta_kv *out);
	/* Every key starting with prefix, sorted by key. */
	int (*list)(struct meta *m, const char *prefix, struct meta_kv **out,
		    size_t *n);
	/* expect_rev: -1 any, 0 must not exist, >0 must have this mod_rev.
	 * On success *new_rev (if not NULL) is the key's new mod_rev. */
	int (*put)(struct meta *m, const char *key, const void *value,
		   size_t len, int64_t expect_rev, int64_t lease,
		   int64_t *new_rev);
	int (*del)(struct meta *m, const char *key, int64_t expect_rev);
	int (*lease_grant)(struct meta *m, int ttl_s, int64_t *lease);
	int (*lease_keepalive)(struct meta *m, int64_t lease);
	int (*lease_revoke)(struct meta *m, int64_t lease);
	void (*close)(struct meta *m);
	/* Optional (NULL: -ENOTSUP). Tests only: replace the clock that lease
	 * expiry is measured with (ms since the epoch). */
	int (*set_clock)(struct meta *m, int64_t (*now_ms)(void *arg),
			 void *arg);
	/* Optional (NULL: -ENOTSUP). Wait up to timeout_ms for a change
	 * under prefix after revision *rev (< 0: none known yet, so just
	 * learn the current one and return 0). Returns 1 with *rev at or past the change, 0 if
	 * nothing changed, or -errno. A hint only: a change may be reported
	 * twice, or the whole store's changes reported for one prefix. */
	int (*wait_change)(struct meta *m, const char *prefix, int64_t *rev,
			   int timeout_ms);
};

struct meta {
	const struct meta_ops *ops;
};

/* Open a metadata store from a URL: "sqlite:/path/to/file.db" (created if
 * missing; several processes may share it, each with its own handles), or
 * an etcd cluster: "etcd://host:port,host:port" (plain HTTP to its JSON
 * gateway) or "https://host:port,...?cacert=F&cert=F&key=F" (TLS, client
 * certificate optional). An etcd URL is checked by asking for the
 * cluster's status, so an unreachable cluster fails here.
 * Returns 0 or -errno with a one-line reason in err; -EPERM in a process
 * forked (without exec) while a store was open: see docs/metadata.md. */
int meta_open(const char *url, struct meta **out, char *err, size_t errlen);
/* meta_open, except that a "sqlite:" file that does not exist is -ENOENT
 * (with "a mistyped path?" in err), never a new empty store: for the CLI,
 * which reads the store that the daemons (and `dev up`) create. */
int meta_open_existing(const char *url, struct meta **out, char *err,
		       size_t errlen);

static inline int meta_get(struct meta *m, const char *key, struct meta_kv *out)
{ return m->ops->get(m, key, out); }
static inline int meta_list(struct meta *m, const char *prefix,
			    struct meta_kv **out, size_t *n)
{ return m->ops->list(m, prefix, out, n); }
static inline int meta_put(struct meta *m, const char *key, const void *v,
			   size_t len, int64_t expect_rev, int64_t lease,
			   int64_t *new_rev)
{ return m->ops->put(m, key, v, len, expect_rev, lease, new_rev); }
static inline int meta_del(struct meta *m, const char *key, int64_t expect_rev)
{ return m->ops->del(m, key, expect_rev); }
/* Grant a lease of ttl_s seconds (>= 1). Keys put with it are deleted when
 * it expires or is revoked; keepalive restarts its TTL. Both return -ENOENT
 * for a lease that has expired or never existed. */
static inline int meta_lease_grant(struct meta *m, int ttl_s, int64_t *lease)
{ return m->ops->lease_grant(m, ttl_s, lease); }
static inline int meta_lease_keepalive(struct meta *m, int64_t lease)
{ return m->ops->lease_keepalive(m, lease); }
static inline int meta_lease_revoke(struct meta *m, int64_t lease)
{ return m->ops->lease_revoke(m, lease); }
static inline int meta_wait_change(struct meta *m, const char *prefix,
				   int64_t *rev, int timeout_ms)
{
	return m->ops->wait_change ? m->ops->wait_change(m, prefix, rev,
							 timeout_ms) :
				     -ENOTSUP;
}
static inline void meta_close(struct meta *m)
{ if (m) m->ops->close(m); }

/* url with the TLS files given (NULL ones left out) as its options:
 * what --etcd-cacert, --etcd-cert and --etcd-key add. malloc'd, or NULL. */
char *meta_url_with_tls(const char *url, const char *cacert,
			const char *cert, const char *key);

int meta_set_clock(struct meta *m, int64_t (*now_ms)(void *arg), void *arg);

/* Implementations, reached through meta_open. */
int meta_sqlite_open(const char *path, struct meta **out, char *err,
		     size_t errlen);
int meta_etcd_open(const char *url, struct meta **out, char *err,
		   size_t errlen);

void meta_kv_clear(struct meta_kv *kv);
void meta_kv_free_array(struct meta_kv *kvs, size_t n);

#endif
