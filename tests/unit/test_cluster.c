/* Cluster records on a real SQLite store: node membership with leases,
 * volume placement on distinct failure domains, attach epochs, replica
 * states, replace, and the JSON codec on malformed records. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cluster.h"
#include "meta.h"

#define GiB (1024ull * 1024 * 1024)

struct fx {
	char dir[64];
	char url[160];
	struct meta *m;
	int64_t now;
	char err[256];
};

static int64_t fake_now(void *arg)
{
	return ((struct fx *)arg)->now;
}

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof *f);

	snprintf(f->dir, sizeof f->dir, "/tmp/tpx-cluster-XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	snprintf(f->url, sizeof f->url, "sqlite:%s/meta.db", f->dir);
	assert_int_equal(meta_open(f->url, &f->m, f->err, sizeof f->err), 0);
	f->now = 5000000;
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

static int64_t add_node(struct fx *f, const char *id, const char *zone,
			const char *rack)
{
	struct cluster_node n = { 0 };
	int64_t lease;

	snprintf(n.id, sizeof n.id, "%s", id);
	snprintf(n.zone, sizeof n.zone, "%s", zone);
	snprintf(n.rack, sizeof n.rack, "%s", rack ? rack : "");
	snprintf(n.repl_addr, sizeof n.repl_addr, "127.0.0.1:71%02d",
		 (int)strlen(id));
	snprintf(n.nbd_addr, sizeof n.nbd_addr, "127.0.0.1:10809");
	snprintf(n.http_addr, sizeof n.http_addr, "[::1]:9100");
	snprintf(n.data_dir, sizeof n.data_dir, "/var/lib/triplex/%s", id);
	snprintf(n.instance, sizeof n.instance, "instance-of-%s", id);
	assert_int_equal(cluster_node_register(f->m, &n, 10, &lease, NULL), 0);
	return lease;
}

static int create(struct fx *f, const char *name, int replicas,
		  enum cluster_domain d, bool relaxed,
		  struct cluster_volume *v)
{
	struct cluster_volume_spec s;

	cluster_volume_spec_init(&s, name, GiB);
	s.replicas = replicas;
	s.min_replicas = replicas > 1 ? 2 : 1;
	s.domain = d;
	s.relaxed = relaxed;
	f->err[0] = 0;
	return cluster_volume_create(f->m, &s, v, f->err, sizeof f->err);
}

static bool has_node(const struct cluster_volume *v, const char *id)
{
	for (int i = 0; i < v->nplacement; i++)
		if (!strcmp(v->placement[i].node, id))
			return true;
	return false;
}

static void assert_distinct_domains(const struct cluster_volume *v)
{
	for (int i = 0; i < v->nplacement; i++) {
		assert_true(v->placement[i].domain[0] != 0);
		for (int j = 0; j < i; j++)
			assert_string_not_equal(v->placement[i].domain,
						v->placement[j].domain);
	}
}

/* ---- nodes ---------------------------------------------------------- */

static void test_node_register_list(void **state)
{
	struct fx *f = *state;
	struct cluster_node *nodes, one;
	size_t n;
	int64_t lease = add_node(f, "n2", "z2", "r7");

	add_node(f, "n1", "z1", NULL);
	add_node(f, "n3", "z3", NULL);
	assert_int_equal(cluster_node_list(f->m, &nodes, &n), 0);
	assert_int_equal(n, 3);
	assert_string_equal(nodes[0].id, "n1");
	assert_string_equal(nodes[1].id, "n2");
	assert_string_equal(nodes[2].id, "n3");
	assert_string_equal(nodes[1].rack, "r7");
	assert_string_equal(nodes[1].http_addr, "[::1]:9100");
	assert_string_equal(nodes[1].data_dir, "/var/lib/triplex/n2");
	assert_int_equal(nodes[1].lease, lease);
	assert_string_equal(nodes[0].rack, "");
	free(nodes);
	assert_int_equal(cluster_node_get(f->m, "n3", &one), 0);
	assert_string_equal(one.zone, "z3");
	assert_int_equal(cluster_node_get(f->m, "n9", &one), -ENOENT);

	struct cluster_node bad = { .id = "bad/id", .zone = "z1" };
	int64_t l;

	assert_int_equal(cluster_node_register(f->m, &bad, 10, &l, NULL), -EINVAL);
	snprintf(bad.id, sizeof bad.id, "ok");
	bad.zone[0] = 0;
	assert_int_equal(cluster_node_register(f->m, &bad, 10, &l, NULL), -EINVAL);
}

/* A live node id belongs to the data directory (instance) that holds it:
 * another one is refused and changes nothing; the same one takes over its
 * own earlier record (a restart inside the old lease). */
static void test_node_identity(void **state)
{
	struct fx *f = *state;
	int64_t first = add_node(f, "n1", "z1", NULL), second, third, rev;
	struct cluster_node other = { .id = "n1", .zone = "z9" }, holder, got;
	struct cluster_node *nodes;
	size_t n;

	snprintf(other.instance, sizeof other.instance, "someone-else");
	snprintf(other.repl_addr, sizeof other.repl_addr, "10.9.9.9:7100");
	snprintf(other.data_dir, sizeof other.data_dir, "/elsewhere");
	assert_int_equal(cluster_node_register(f->m, &other, 10, &second,
					       &holder), -EEXIST);
	assert_string_equal(holder.repl_addr, "127.0.0.1:7102");
	assert_string_equal(holder.instance, "instance-of-n1");
	assert_int_equal(meta_lease_keepalive(f->m, second), -ENOENT);
	assert_int_equal(cluster_node_get(f->m, "n1", &got), 0);
	assert_string_equal(got.zone, "z1");
	assert_int_equal(got.lease, first);
	/* The refused claim is noted for the holder to see. */
	assert_int_equal(cluster_node_conflict_get(f->m, "n1", &got, &rev),
			 -ENOENT);
	assert_int_equal(cluster_node_conflict_put(f->m, &other, 60), 0);
	assert_int_equal(cluster_node_conflict_get(f->m, "n1", &got, &rev), 0);
	assert_string_equal(got.repl_addr, "10.9.9.9:7100");
	assert_true(rev > 0);
	/* The same instance again: the old lease is revoked, the new one
	 * holds the record. */
	third = add_node(f, "n1", "z1", NULL);
	assert_true(third != first);
	assert_int_equal(meta_lease_keepalive(f->m, first), -ENOENT);
	assert_int_equal(cluster_node_get(f->m, "n1", &got), 0);
	assert_int_equal(got.lease, third);
	assert_int_equal(cluster_node_list(f->m, &nodes, &n), 0);
	assert_int_equal(n, 1);
	free(nodes);
	/* A record without an instance (or a daemon without one) never
	 * matches: refused while live. */
	other.instance[0] = 0;
	assert_int_equal(cluster_node_register(f->m, &other, 10, &second,
					       NULL), -EEXIST);
}

static void test_node_lease(void **state)
{
	struct fx *f = *state;
	struct cluster_node *nodes;
	size_t n;
	int64_t l1 = add_node(f, "n1", "z1", NULL);
	int64_t l2 = add_node(f, "n2", "z2", NULL);
	int64_t l3 = add_node(f, "n3", "z3", NULL);

	f->now += 8000;
	assert_int_equal(cluster_node_keepalive(f->m, l2), 0);
	assert_int_equal(cluster_node_unregister(f->m, l3), 0);
	f->now += 2000; /* n1's 10 s are up; n2 was renewed */
	assert_int_equal(cluster_node_list(f->m, &nodes, &n), 0);
	assert_int_equal(n, 1);
	assert_string_equal(nodes[0].id, "n2");
	free(nodes);
	assert_int_equal(cluster_node_keepalive(f->m, l1), -ENOENT);
}

/* ---- create and placement ------------------------------------------ */

static void test_create_distinct_zones(void **state)
{
	struct fx *f = *state;
	struct cluster_volume v, v2, got;

	add_node(f, "n1", "z1", NULL);
	add_node(f, "n2", "z1", NULL);
	add_node(f, "n3", "z2", NULL);
	add_node(f, "n4", "z3", NULL);
	assert_int_equal(create(f, "vol1", 3, CLUSTER_DOMAIN_ZONE, false, &v), 0);
	assert_int_equal(v.nplacement, 3);
	assert_distinct_domains(&v);
	assert_true(has_node(&v, "n3") && has_node(&v, "n4"));
	assert_true(v.id > 0 && v.id <= INT64_MAX);
	assert_int_equal(v.epoch, 0);
	assert_int_equal(v.replicas, 3);
	assert_int_equal(v.min_replicas, 2);
	assert_string_equal(v.attached, "");
	for (int i = 0; i < 3; i++)
		assert_int_equal(v.placement[i].state, CLUSTER_REPLICA_IN_SYNC);
	assert_int_equal(cluster_volume_get(f->m, "vol1", &got), 0);
	assert_memory_equal(&got, &v, sizeof v);
	assert_int_equal(create(f, "vol2", 3, CLUSTER_DOMAIN_ZONE, false, &v2),
			 0);
	assert_true(v2.id != v.id && v2.id > 0);
	/* n1 holds vol1's z1 replica (ties go by id), so n2 is less loaded. */
	assert_true(has_node(&v, "n1"));
	assert_true(has_node(&v2, "n2"));
	assert_false(has_node(&v2, "n1"));
}

/* A preferred zone gets a replica even when its node is the most loaded
 * (CSI's preferred topology); a zone without nodes changes nothing. */
static void test_create_prefer_zone(void **state)
{
	struct fx *f = *state;
	struct cluster_volume_spec s;
	struct cluster_volume v;

	add_node(f, "n1", "z1", NULL);
	add_node(f, "n2", "z2", NULL);
	add_node(f, "n3", "z3", NULL);
	add_node(f, "n4", "z4", NULL);
	assert_int_equal(create(f, "load", 3, CLUSTER_DOMAIN_ZONE, false, &v), 0);
	assert_false(has_node(&v, "n4"));
	cluster_volume_spec_init(&s, "pref", GiB);
	s.prefer_zone = "z1";
	assert_int_equal(cluster_volume_create(f->m, &s, &v, f->err,
					       sizeof f->err), 0);
	assert_string_equal(v.placement[0].node, "n1");
	assert_true(has_node(&v, "n4"));
	assert_distinct_domains(&v);
	cluster_volume_spec_init(&s, "nowhere", GiB);
	s.prefer_zone = "z9";
	assert_int_equal(cluster_volume_create(f->m, &s, &v, f->err,
					       sizeof f->err), 0);
	assert_distinct_domains(&v);
}

static void test_create_refused(void **state)
{
	struct fx *f = *state;
	struct cluster_volume v;

	add_node(f, "n1", "z1", NULL);
	add_node(f, "n2", "z2", NULL);
	add_node(f, "n3", "z2", NULL);
	assert_int_equal(create(f, "v", 3, CLUSTER_DOMAIN_ZONE, false, &v),
			 -ENOSPC);
	assert_string_equal(f->err, "need 3 distinct zones, only 2 live (z1, z2)");
	assert_int_equal(cluster_volume_get(f->m, "v", &v), -ENOENT);
	/* Relaxed: distinct nodes suffice, still spread over both zones. */
	assert_int_equal(create(f, "v", 3, CLUSTER_DOMAIN_ZONE, true, &v), 0);
	assert_true(v.relaxed);
	assert_true(has_node(&v, "n1") && has_node(&v, "n2") &&
		    has_node(&v, "n3"));
	assert_int_equal(create(f, "w", 4, CLUSTER_DOMAIN_ZONE, true, &v),
			 -ENOSPC);
	assert_string_equal(f->err, "need 4 distinct nodes, only 3 available "
			    "(n1, n2, n3)");
}

static void test_create_racks(void **state)
{
	struct fx *f = *state;
	struct cluster_volume v;

	add_node(f, "a", "z1", "r1");
	add_node(f, "b", "z1", "r1");
	add_node(f, "c", "z1", "r2");
	add_node(f, "d", "z1", NULL);     /* no rack: not a rack domain */
	add_node(f, "e", "z2", "r1");     /* z2/r1 is another rack */
	assert_int_equal(create(f, "v", 3, CLUSTER_DOMAIN_RACK, false, &v), 0);
	assert_int_equal(v.domain, CLUSTER_DOMAIN_RACK);
	assert_distinct_domains(&v);
	assert_false(has_node(&v, "d"));
	assert_true(has_node(&v, "c") && has_node(&v, "e"));
	assert_int_equal(create(f, "w", 4, CLUSTER_DOMAIN_RACK, false, &v),
			 -ENOSPC);
	assert_string_equal(f->err, "need 4 distinct racks, only 3 live "
			    "(z1/r1, z1/r2, z2/r1)");
}

static void test_create_validation(void **state)
{
	struct fx *f = *state;
	struct cluster_volume_spec s;
	struct cluster_volume v;

	add_node(f, "n1", "z1", NULL);
	cluster_volume_spec_init(&s, ".bad", GiB);
	assert_int_equal(cluster_volume_create(f->m, &s, &v, f->err,
					       sizeof f->err), -EINVAL);
	assert_non_null(strstr(f->err, "bad volume name"));
	cluster_volume_spec_init(&s, "v", 4097);
	assert_int_equal(cluster_volume_create(f->m, &s, &v, f->err,
					       sizeof f->err), -EINVAL);
	assert_non_null(strstr(f->err, "multiple of 4096"));
	cluster_volume_spec_init(&s, "v", CLUSTER_MAX_VOLUME_SIZE + 4096);
	assert_int_equal(cluster_volume_create(f->m, &s, &v, f->err,
					       sizeof f->err), -EINVAL);
	assert_non_null(strstr(f->err, "largest volume"));
	cluster_volume_spec_init(&s, "v", GiB);
	s.replicas = 6;
	assert_int_equal(cluster_volume_create(f->m, &s, &v, f->err,
					       sizeof f->err), -EINVAL);
	s.replicas = 0;
	assert_int_equal(cluster_volume_create(f->m, &s, &v, f->err,
					       sizeof f->err), -EINVAL);
	s.replicas = 2;
	s.min_replicas = 3;
	assert_int_equal(cluster_volume_create(f->m, &s, &v, f->err,
					       sizeof f->err), -EINVAL);
	assert_string_equal(f->err, "min_replicas 3 not in 1..2");
	assert_int_equal(create(f, "one", 1, CLUSTER_DOMAIN_ZONE, false, &v), 0);
	assert_int_equal(create(f, "one", 1, CLUSTER_DOMAIN_ZONE, false, &v),
			 -EEXIST);
	assert_string_equal(f->err, "volume \"one\" already exists");
	/* Ids owe nothing to what the store holds: random, non-zero, JSON
	 * integers, and a store made anew hands out other ones. */
	{
		uint64_t first = v.id;

		assert_true(first > 0 && first <= INT64_MAX);
		assert_int_equal(cluster_volume_delete(f->m, "one", -1), 0);
		assert_int_equal(create(f, "one", 1, CLUSTER_DOMAIN_ZONE, false,
					&v), 0);
		assert_true(v.id != first && v.id > 0 && v.id <= INT64_MAX);
	}
}

/* ---- update, attach, states ---------------------------------------- */

static void three_zones(struct fx *f, struct cluster_volume *v)
{
	add_node(f, "n1", "z1", NULL);
	add_node(f, "n2", "z2", NULL);
	add_node(f, "n3", "z3", NULL);
	assert_int_equal(create(f, "vol", 3, CLUSTER_DOMAIN_ZONE, false, v), 0);
}

static void test_update_cas_and_delete(void **state)
{
	struct fx *f = *state;
	struct cluster_volume v, stale, got;

	three_zones(f, &v);
	stale = v;
	v.placement[0].rebuild_done = 4096;
	assert_int_equal(cluster_volume_update(f->m, &v), 0);
	assert_true(v.mod_rev > stale.mod_rev);
	stale.epoch = 99;
	assert_int_equal(cluster_volume_update(f->m, &stale), -ESTALE);
	assert_int_equal(cluster_volume_get(f->m, "vol", &got), 0);
	assert_int_equal(got.epoch, 0);
	assert_int_equal(got.placement[0].rebuild_done, 4096);
	assert_int_equal(cluster_volume_delete(f->m, "vol", stale.mod_rev),
			 -ESTALE);
	assert_int_equal(cluster_volume_delete(f->m, "vol", got.mod_rev), 0);
	assert_int_equal(cluster_volume_get(f->m, "vol", &got), -ENOENT);
	assert_int_equal(cluster_volume_update(f->m, &v), -ESTALE);
}

static void test_attach_bumps_epoch(void **state)
{
	struct fx *f = *state;
	struct cluster_volume v, got;

	three_zones(f, &v);
	assert_int_equal(cluster_volume_attach(f->m, "vol", "n1", &v), 0);
	assert_int_equal(v.epoch, 1);
	assert_string_equal(v.attached, "n1");
	assert_int_equal(cluster_volume_attach(f->m, "vol", "n2", &v), 0);
	assert_int_equal(v.epoch, 2);
	assert_int_equal(cluster_volume_get(f->m, "vol", &got), 0);
	assert_int_equal(got.epoch, 2);
	assert_string_equal(got.attached, "n2");
	assert_int_equal(got.mod_rev, v.mod_rev);
	assert_int_equal(cluster_volume_attach(f->m, "nope", "n2", &v),
			 -ENOENT);
}

/* One epoch per engine incarnation: the first engine after an attach
 * serves at the attach's epoch, a restarted one (same node, nothing
 * changed in between) gets a new epoch, and a node the volume is not
 * attached to cannot start. */
static void test_start_serving(void **state)
{
	struct fx *f = *state;
	struct cluster_volume v, got;

	three_zones(f, &v);
	assert_int_equal(v.served_epoch, 0);
	assert_int_equal(cluster_volume_attach(f->m, "vol", "n1", &v), 0);
	assert_int_equal(cluster_volume_start_serving(f->m, "vol", "n1", &v), 0);
	assert_int_equal(v.epoch, 1);
	assert_int_equal(v.served_epoch, 1);
	assert_int_equal(cluster_volume_start_serving(f->m, "vol", "n1", &v), 0);
	assert_int_equal(v.epoch, 2);                /* n1 restarted */
	assert_int_equal(v.served_epoch, 2);
	assert_int_equal(cluster_volume_start_serving(f->m, "vol", "n2", &v),
			 -ESTALE);
	assert_int_equal(cluster_volume_attach(f->m, "vol", "n2", &v), 0);
	assert_int_equal(cluster_volume_start_serving(f->m, "vol", "n2", &v), 0);
	assert_int_equal(v.epoch, 3);
	assert_int_equal(cluster_volume_get(f->m, "vol", &got), 0);
	assert_int_equal(got.epoch, 3);
	assert_int_equal(got.served_epoch, 3);
	assert_string_equal(got.attached, "n2");
}

/* An in-sync replica that may lack a failed write is in doubt until
 * compared; leaving the set settles it, and only in-sync replicas doubt. */
static void test_replica_doubt(void **state)
{
	struct fx *f = *state;
	struct cluster_volume v, got;
	char *json;

	three_zones(f, &v);
	assert_int_equal(cluster_volume_attach(f->m, "vol", "n1", &v), 0);
	assert_int_equal(cluster_volume_set_replica_doubt(f->m, "vol", "n3", true,
							  v.epoch, &v), 0);
	assert_true(v.placement[2].doubt);
	assert_false(v.placement[1].doubt);
	json = cluster_volume_to_json(&v, 0);
	assert_non_null(strstr(json, "\"doubt\":true"));
	assert_int_equal(cluster_volume_from_json(json, strlen(json), &got,
						  f->err, sizeof f->err), 0);
	assert_true(got.placement[2].doubt);
	free(json);
	/* A stale engine cannot set it. */
	assert_int_equal(cluster_volume_set_replica_doubt(f->m, "vol", "n2", true,
							  v.epoch + 1, &got), -ESTALE);
	/* A checkpoint (in sync -> in sync) keeps it, leaving clears it. */
	assert_int_equal(cluster_volume_set_replica_state(f->m, "vol", "n3",
		CLUSTER_REPLICA_IN_SYNC, 0, v.epoch, &v), 0);
	assert_true(v.placement[2].doubt);
	assert_int_equal(cluster_volume_set_replica_state(f->m, "vol", "n3",
		CLUSTER_REPLICA_OUT_OF_SYNC, 0, v.epoch, &v), 0);
	assert_false(v.placement[2].doubt);
	assert_int_equal(cluster_volume_set_replica_doubt(f->m, "vol", "n3", true,
							  v.epoch, &v), -EINVAL);
	assert_int_equal(cluster_volume_set_replica_doubt(f->m, "vol", "n1", true,
							  v.epoch, &v), 0);
	assert_int_equal(cluster_volume_set_replica_doubt(f->m, "vol", "n1", false,
							  v.epoch, &v), 0);
	assert_false(v.placement[0].doubt);
	json = cluster_volume_to_json(&v, 0);
	assert_null(strstr(json, "doubt"));   /* absent unless set */
	free(json);
}

/* A store that forwards to a real one and, after each get, optionally
 * lets another writer in (a deterministic conflict) or sleeps (to widen
 * the read-to-write window of a real race). */
struct proxy {
	struct meta base;
	struct meta *real;
	struct meta *intruder;   /* attaches "vol" on n9 after a get */
	int intrusions;          /* how many gets to intrude after */
	int delay_us;
};

static struct meta *px_real(struct meta *m)
{
	return ((struct proxy *)m)->real;
}

static int px_get(struct meta *m, const char *key, struct meta_kv *out)
{
	struct proxy *p = (struct proxy *)m;
	int r = meta_get(p->real, key, out);

	/* Only between the read and the write of a volume record (attach
	 * also reads the node's). */
	if (p->intrusions > 0 &&
	    !strncmp(key, CLUSTER_VOLUMES_PREFIX, strlen(CLUSTER_VOLUMES_PREFIX))) {
		p->intrusions--;
		assert_int_equal(cluster_volume_attach(p->intruder, "vol", "n9",
						       NULL), 0);
	}
	if (p->delay_us)
		usleep((useconds_t)p->delay_us);
	return r;
}

static int px_list(struct meta *m, const char *prefix, struct meta_kv **out,
		   size_t *n)
{
	return meta_list(px_real(m), prefix, out, n);
}

static int px_put(struct meta *m, const char *key, const void *v, size_t len,
		  int64_t expect_rev, int64_t lease, int64_t *new_rev)
{
	return meta_put(px_real(m), key, v, len, expect_rev, lease, new_rev);
}

static int px_del(struct meta *m, const char *key, int64_t expect_rev)
{
	return meta_del(px_real(m), key, expect_rev);
}

static int px_grant(struct meta *m, int ttl, int64_t *lease)
{
	return meta_lease_grant(px_real(m), ttl, lease);
}

static int px_keepalive(struct meta *m, int64_t lease)
{
	return meta_lease_keepalive(px_real(m), lease);
}

static int px_revoke(struct meta *m, int64_t lease)
{
	return meta_lease_revoke(px_real(m), lease);
}

static void px_close(struct meta *m)
{
	meta_close(px_real(m));
}

static const struct meta_ops px_ops = {
	.get = px_get, .list = px_list, .put = px_put, .del = px_del,
	.lease_grant = px_grant, .lease_keepalive = px_keepalive,
	.lease_revoke = px_revoke, .close = px_close,
};

static void test_attach_retries_on_conflict(void **state)
{
	struct fx *f = *state;
	struct proxy p = { { &px_ops }, f->m, f->m, 1, 0 };
	struct cluster_volume v;

	three_zones(f, &v);
	add_node(f, "n9", "z9", NULL); /* the intruder's: attach wants it alive */
	/* The intruder takes epoch 1 between our read and our write. */
	assert_int_equal(cluster_volume_attach(&p.base, "vol", "n1", &v), 0);
	assert_int_equal(v.epoch, 2);
	assert_string_equal(v.attached, "n1");
	/* A state change keeps what the intruder wrote meanwhile. */
	p.intrusions = 1;
	assert_int_equal(cluster_volume_set_replica_state(&p.base, "vol", "n2",
		CLUSTER_REPLICA_OUT_OF_SYNC, 0, 0, &v), 0);
	assert_int_equal(cluster_volume_get(f->m, "vol", &v), 0);
	assert_int_equal(v.epoch, 3);
	assert_string_equal(v.attached, "n9");
	/* ... and fences itself if the intruder's attach made it stale. */
	p.intrusions = 1;
	assert_int_equal(cluster_volume_set_replica_state(&p.base, "vol", "n2",
		CLUSTER_REPLICA_IN_SYNC, 0, 3, &v), -ESTALE);
}

#define ATTACHES 40

struct attacher {
	struct fx *f;
	const char *node;
	uint64_t epochs[ATTACHES];
	int failed;
};

static pthread_barrier_t attach_start;

static void *attach_thread(void *arg)
{
	struct attacher *a = arg;
	struct proxy p = { { &px_ops }, NULL, NULL, 0, 300 };
	struct cluster_volume v;
	char err[256];

	if (meta_open(a->f->url, &p.real, err, sizeof err)) {
		a->failed = 1;
		return NULL;
	}
	pthread_barrier_wait(&attach_start);
	for (int i = 0; i < ATTACHES; i++) {
		if (cluster_volume_attach(&p.base, "vol", a->node, &v))
			a->failed = 1;
		a->epochs[i] = v.epoch;
	}
	meta_close(&p.base);
	return NULL;
}

static void test_concurrent_attach(void **state)
{
	struct fx *f = *state;
	struct attacher a[2] = { { f, "n1", { 0 }, 0 }, { f, "n2", { 0 }, 0 } };
	bool seen[2 * ATTACHES + 1] = { 0 };
	struct cluster_volume v;
	struct timespec now;
	pthread_t t[2];

	/* The threads' handles use the real clock: the nodes' leases must
	 * be alive by it too. */
	clock_gettime(CLOCK_REALTIME, &now);
	f->now = (int64_t)now.tv_sec * 1000 + now.tv_nsec / 1000000;
	three_zones(f, &v);
	pthread_barrier_init(&attach_start, NULL, 2);
	for (int i = 0; i < 2; i++)
		assert_int_equal(pthread_create(&t[i], NULL, attach_thread,
						&a[i]), 0);
	for (int i = 0; i < 2; i++)
		assert_int_equal(pthread_join(t[i], NULL), 0);
	pthread_barrier_destroy(&attach_start);
	for (int i = 0; i < 2; i++) {
		assert_false(a[i].failed);
		for (int j = 0; j < ATTACHES; j++) {
			uint64_t e = a[i].epochs[j];

			assert_true(e >= 1 && e <= 2 * ATTACHES);
			assert_false(seen[e]); /* every attach its own epoch */
			seen[e] = true;
			if (j)
				assert_true(e > a[i].epochs[j - 1]);
		}
	}
	assert_int_equal(cluster_volume_get(f->m, "vol", &v), 0);
	assert_int_equal(v.epoch, 2 * ATTACHES);
}

static void test_replica_states(void **state)
{
	struct fx *f = *state;
	struct cluster_volume v, got;

	three_zones(f, &v);
	assert_int_equal(cluster_volume_attach(f->m, "vol", "n1", &v), 0);
	assert_int_equal(cluster_volume_set_replica_state(f->m, "vol", "n2",
		CLUSTER_REPLICA_OUT_OF_SYNC, 0, 1, &v), 0);
	/* A second one would leave 1 in sync, below min_replicas 2. */
	assert_int_equal(cluster_volume_set_replica_state(f->m, "vol", "n3",
		CLUSTER_REPLICA_OUT_OF_SYNC, 0, 1, &v), -EBUSY);
	/* An engine of an older epoch is fenced. */
	assert_int_equal(cluster_volume_attach(f->m, "vol", "n3", &v), 0);
	assert_int_equal(cluster_volume_set_replica_state(f->m, "vol", "n2",
		CLUSTER_REPLICA_IN_SYNC, 0, 1, &v), -ESTALE);
	assert_int_equal(cluster_volume_set_replica_state(f->m, "vol", "n2",
		CLUSTER_REPLICA_REBUILDING, 123 * 4096, 2, &v), 0);
	assert_int_equal(cluster_volume_set_replica_state(f->m, "vol", "n9",
		CLUSTER_REPLICA_IN_SYNC, 0, 0, &v), -ENOENT);
	assert_int_equal(cluster_volume_set_replica_state(f->m, "vol", "n2",
		CLUSTER_REPLICA_REBUILDING, 2 * GiB, 0, &v), -EINVAL);
	assert_int_equal(cluster_volume_get(f->m, "vol", &got), 0);
	for (int i = 0; i < 3; i++) {
		const struct cluster_replica *r = &got.placement[i];

		if (!strcmp(r->node, "n2")) {
			assert_int_equal(r->state, CLUSTER_REPLICA_REBUILDING);
			assert_int_equal(r->rebuild_done, 123 * 4096);
		} else {
			assert_int_equal(r->state, CLUSTER_REPLICA_IN_SYNC);
		}
	}
	assert_int_equal(cluster_volume_set_replica_state(f->m, "vol", "n2",
		CLUSTER_REPLICA_IN_SYNC, 0, 2, &v), 0);
	assert_int_equal(cluster_volume_get(f->m, "vol", &got), 0);
	assert_memory_equal(&got, &v, sizeof v);
}

static void test_replace(void **state)
{
	struct fx *f = *state;
	struct cluster_volume v;
	int i;

	three_zones(f, &v);
	add_node(f, "n4", "z2", NULL); /* z2 is used by n2: unsuitable */
	add_node(f, "n5", "z4", NULL);
	assert_int_equal(cluster_volume_replace(f->m, "vol", "n1", "", &v,
						f->err, sizeof f->err), 0);
	assert_false(has_node(&v, "n1"));
	assert_true(has_node(&v, "n5"));
	assert_int_equal(v.nplacement, 3);
	assert_distinct_domains(&v);
	for (i = 0; strcmp(v.placement[i].node, "n5"); i++)
		;
	assert_int_equal(v.placement[i].state, CLUSTER_REPLICA_REBUILDING);
	assert_int_equal(v.placement[i].rebuild_done, 0);
	assert_string_equal(v.placement[i].domain, "z4");
	/* Two in sync (n2, n3): neither may leave while n5 rebuilds. */
	assert_int_equal(cluster_volume_replace(f->m, "vol", "n3", "", &v,
						f->err, sizeof f->err), -EBUSY);
	assert_int_equal(cluster_volume_set_replica_state(f->m, "vol", "n5",
		CLUSTER_REPLICA_IN_SYNC, 0, 0, &v), 0);

	assert_int_equal(cluster_volume_replace(f->m, "vol", "n3", "n4", &v,
						f->err, sizeof f->err), -ENOSPC);
	assert_string_equal(f->err, "node n4 is in zone \"z2\", already used "
			    "by volume vol");
	assert_int_equal(cluster_volume_replace(f->m, "vol", "n3", "n2", &v,
						f->err, sizeof f->err), -EEXIST);
	assert_int_equal(cluster_volume_replace(f->m, "vol", "n9", "", &v,
						f->err, sizeof f->err), -ENOENT);
	assert_string_equal(f->err, "node n9 holds no replica of vol");
	/* n3 may go, to z1's n1. */
	assert_int_equal(cluster_volume_replace(f->m, "vol", "n3", "n1", &v,
						f->err, sizeof f->err), 0);
	assert_true(has_node(&v, "n1") && !has_node(&v, "n3"));
	/* In sync now: n2 and n5 only; min_replicas 2 forbids losing one. */
	assert_int_equal(cluster_volume_replace(f->m, "vol", "n2", "", &v,
						f->err, sizeof f->err), -EBUSY);
	assert_non_null(strstr(f->err, "min_replicas"));
	/* n1 (rebuilding) may go; z3 is free again and n4's z2 is not. */
	assert_int_equal(cluster_volume_replace(f->m, "vol", "n1", "", &v,
						f->err, sizeof f->err), 0);
	assert_true(has_node(&v, "n3"));
	assert_distinct_domains(&v);
}

static void test_replace_refused_message(void **state)
{
	struct fx *f = *state;
	struct cluster_volume v, got;

	three_zones(f, &v);
	add_node(f, "n4", "z2", NULL);
	/* z1 is the only free zone and its one node is the one leaving. */
	assert_int_equal(cluster_volume_replace(f->m, "vol", "n1", NULL, &v,
						f->err, sizeof f->err), -ENOSPC);
	assert_string_equal(f->err, "need 1 more zone(s) distinct from those "
			    "in use (z2, z3); other live nodes are in: z2");
	assert_int_equal(cluster_volume_get(f->m, "vol", &got), 0);
	assert_true(has_node(&got, "n1"));
	assert_int_equal(got.mod_rev, v.mod_rev);
}

/* ---- JSON ----------------------------------------------------------- */

static void test_json_roundtrip_and_table(void **state)
{
	struct fx *f = *state;
	struct cluster_volume v, back;
	char *json, row[256];

	three_zones(f, &v);
	assert_int_equal(cluster_volume_set_replica_state(f->m, "vol", "n3",
		CLUSTER_REPLICA_REBUILDING, GiB / 4, 0, &v), 0);
	v.epoch = 5;
	v.served_epoch = 4;
	json = cluster_volume_to_json(&v, CLUSTER_JSON_REV);
	assert_non_null(json);
	assert_non_null(strstr(json, "\"state\":\"rebuilding\""));
	assert_non_null(strstr(json, "\"domain_key\":\"zone\""));
	assert_non_null(strstr(json, "\"mod_rev\":"));
	assert_int_equal(cluster_volume_from_json(json, strlen(json), &back,
						  f->err, sizeof f->err), 0);
	back.mod_rev = v.mod_rev;
	assert_memory_equal(&back, &v, sizeof v);
	free(json);
	assert_int_equal(cluster_volume_table_row(&v, row, sizeof row), 0);
	assert_non_null(strstr(row, "vol "));
	assert_non_null(strstr(row, "1GiB"));
	assert_non_null(strstr(row, "n3:rebuilding(25%)"));
	assert_non_null(strstr(row, "n1:in_sync"));
	assert_int_equal(cluster_volume_table_row(&v, row, 20), -ENOSPC);
}

static void expect_bad(const char *json, const char *needle)
{
	struct cluster_volume v;
	char err[256] = "";

	assert_int_equal(cluster_volume_from_json(json, strlen(json), &v, err,
						  sizeof err), -EBADMSG);
	if (!strstr(err, needle))
		fail_msg("error \"%s\" lacks \"%s\" for %s", err, needle, json);
}

#define VOL_HEAD "{\"name\":\"v\",\"id\":1,\"size\":8192,\"replicas\":3," \
	"\"min_replicas\":2,\"domain_key\":\"zone\",\"relaxed\":false," \
	"\"epoch\":0,\"attached\":\"\","
#define REP(st) "{\"node\":\"n\",\"state\":\"" st "\",\"rebuild_done\":0}"

static void test_json_rejects_malformed(void **state)
{
	struct cluster_volume v;
	const char *ok = VOL_HEAD "\"placement\":[" REP("in_sync") "]}";

	assert_int_equal(cluster_volume_from_json(ok, strlen(ok), &v, NULL, 0),
			 0);
	expect_bad("{", "bad JSON");
	expect_bad("[]", "expected a JSON object");
	expect_bad(VOL_HEAD "\"placement\":[" REP("gone") "]}", "unknown state");
	expect_bad(VOL_HEAD "\"placement\":[" REP("in_sync") "," REP("in_sync")
		   "," REP("in_sync") "," REP("in_sync") "," REP("in_sync") ","
		   REP("in_sync") "]}", "at most 5");
	expect_bad(VOL_HEAD "\"placement\":{}}", "placement");
	expect_bad("{\"name\":\"v\",\"id\":-1}", "\"id\"");
	expect_bad("{\"name\":7}", "\"name\": expected a string");
	expect_bad("{\"name\":\"v\",\"id\":1,\"size\":100,\"replicas\":3,"
		   "\"min_replicas\":2,\"domain_key\":\"zone\",\"relaxed\":"
		   "false,\"epoch\":0,\"placement\":[]}", "multiple of 4096");
	expect_bad("{\"name\":\"v\",\"id\":1,\"size\":4096,\"replicas\":3,"
		   "\"min_replicas\":2,\"domain_key\":\"row\",\"relaxed\":"
		   "false,\"epoch\":0,\"placement\":[]}", "domain_key");
	expect_bad(VOL_HEAD "\"placement\":[{\"node\":\"n\",\"state\":"
		   "\"in_sync\",\"rebuild_done\":9000}]}", "rebuild_done");
	expect_bad(VOL_HEAD "\"placement\":[{\"node\":\"n\",\"state\":"
		   "\"in_sync\",\"rebuild_done\":0,\"doubt\":1}]}", "doubt");
	expect_bad(VOL_HEAD "\"served_epoch\":1,\"placement\":[]}",
		   "served_epoch");   /* served at an epoch never attached */
}

static void test_corrupt_record_in_store(void **state)
{
	struct fx *f = *state;
	struct cluster_volume v, *vols;
	size_t n;
	static const char junk[] = "{\"name\": \"x\", \"id\": \"oops\"}";

	three_zones(f, &v);
	assert_int_equal(meta_put(f->m, CLUSTER_VOLUMES_PREFIX "x", junk,
				  strlen(junk), -1, 0, NULL), 0);
	assert_int_equal(cluster_volume_get(f->m, "x", &v), -EBADMSG);
	assert_int_equal(cluster_volume_list(f->m, &vols, &n), 0);
	assert_int_equal(n, 1);
	assert_string_equal(vols[0].name, "vol");
	free(vols);
}

/* Grow only: a CAS of the size that keeps whatever else changed in
 * between; smaller, equal and bad sizes change nothing. */
static void test_resize(void **state)
{
	struct fx *f = *state;
	struct proxy p = { { &px_ops }, f->m, f->m, 0, 0 };
	struct cluster_volume v, got;
	int64_t rev;

	three_zones(f, &v);
	add_node(f, "n9", "z9", NULL);
	assert_int_equal(cluster_volume_attach(f->m, "vol", "n1", &v), 0);
	assert_int_equal(cluster_volume_resize(f->m, "vol", 2 * GiB, &v), 0);
	assert_int_equal(v.size, 2 * GiB);
	assert_int_equal(v.epoch, 1);              /* no new epoch */
	assert_string_equal(v.attached, "n1");
	rev = v.mod_rev;
	assert_int_equal(cluster_volume_resize(f->m, "vol", GiB, &got), -ERANGE);
	assert_int_equal(got.size, 2 * GiB);
	assert_int_equal(cluster_volume_resize(f->m, "vol", 2 * GiB, &got),
			 -EALREADY);
	assert_int_equal(cluster_volume_resize(f->m, "vol", 2 * GiB + 1, &got),
			 -EINVAL);
	assert_int_equal(cluster_volume_resize(f->m, "vol", 0, &got), -EINVAL);
	assert_int_equal(cluster_volume_resize(f->m, "vol",
					       CLUSTER_MAX_VOLUME_SIZE + 4096,
					       &got), -EINVAL);
	assert_int_equal(cluster_volume_resize(f->m, "nope", 4 * GiB, &got),
			 -ENOENT);
	assert_int_equal(cluster_volume_get(f->m, "vol", &got), 0);
	assert_int_equal(got.mod_rev, rev);        /* nothing was written */
	/* An attach lands between our read and our write: both stay. */
	p.intrusions = 1;
	assert_int_equal(cluster_volume_resize(&p.base, "vol", 3 * GiB, &v), 0);
	assert_int_equal(cluster_volume_get(f->m, "vol", &got), 0);
	assert_int_equal(got.size, 3 * GiB);
	assert_int_equal(got.epoch, 2);
	assert_string_equal(got.attached, "n9");
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_node_register_list),
		T(test_node_identity),
		T(test_node_lease),
		T(test_create_distinct_zones),
		T(test_create_prefer_zone),
		T(test_create_refused),
		T(test_create_racks),
		T(test_create_validation),
		T(test_update_cas_and_delete),
		T(test_attach_bumps_epoch),
		T(test_start_serving),
		T(test_replica_doubt),
		T(test_attach_retries_on_conflict),
		T(test_concurrent_attach),
		T(test_replica_states),
		T(test_replace),
		T(test_replace_refused_message),
		T(test_json_roundtrip_and_table),
		T(test_json_rejects_malformed),
		T(test_corrupt_record_in_store),
		T(test_resize),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
