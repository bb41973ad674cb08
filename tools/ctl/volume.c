/*
 * triplexctl volume ...
 *   create NAME --size SIZE --data-dir DIR      a local single-replica volume
 *   create NAME --size SIZE [--replicas N] [--min-replicas M]
 *          [--domain zone|rack] [--relaxed] [--failover auto|manual]
 *                                               a cluster volume (--meta)
 *   list [--json] | show NAME [--json] | attach NAME --node ID [--wait]
 *   detach NAME | replace NAME --from ID [--to ID] | delete NAME [--force]
 *   resize NAME --size SIZE [--wait]             grow only
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <jansson.h>
#include <libnbd.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "cluster.h"
#include "ctl.h"
#include "parse.h"

struct vol_args {
	const char *name;
	const char *size;
	const char *data_dir;
	const char *meta;
	const char *node;
	const char *from, *to;
	const char *domain;
	const char *failover;
	int replicas, min_replicas;
	bool relaxed, json, force, wait;
};


static int parse_int(const char *s, int *out)
{
	char *end;
	long v = strtol(s, &end, 10);

	if (*s == '\0' || *end != '\0' || v < 1 || v > 99)
		return -1;
	*out = (int)v;
	return 0;
}

/* Options shared by every volume subcommand; one positional NAME. */
static int parse_vol_args(int argc, char **argv, struct vol_args *a, bool need_name)
{
	static const struct option longopts[] = {
		{ "size", required_argument, NULL, 's' },
		{ "data-dir", required_argument, NULL, 'd' },
		{ "meta", required_argument, NULL, 'm' },
		{ "node", required_argument, NULL, 'n' },
		{ "from", required_argument, NULL, 'f' },
		{ "to", required_argument, NULL, 't' },
		{ "domain", required_argument, NULL, 'D' },
		{ "replicas", required_argument, NULL, 'r' },
		{ "min-replicas", required_argument, NULL, 'R' },
		{ "relaxed", no_argument, NULL, 'x' },
		{ "json", no_argument, NULL, 'j' },
		{ "force", no_argument, NULL, 'F' },
		{ "failover", required_argument, NULL, 'O' },
		{ "wait", no_argument, NULL, 'w' },
		{ NULL, 0, NULL, 0 },
	};
	int c;

	opterr = 0;
	optind = 1;
	while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (c) {
		case 's': a->size = optarg; break;
		case 'd': a->data_dir = optarg; break;
		case 'm': a->meta = optarg; break;
		case 'n': a->node = optarg; break;
		case 'f': a->from = optarg; break;
		case 't': a->to = optarg; break;
		case 'D': a->domain = optarg; break;
		case 'x': a->relaxed = true; break;
		case 'j': a->json = true; break;
		case 'F': a->force = true; break;
		case 'O': a->failover = optarg; break;
		case 'w': a->wait = true; break;
		case 'r':
			if (parse_int(optarg, &a->replicas) < 0)
				return ctl_fail("--replicas wants a number from 1 to 5, got '%s'", optarg);
			break;
		case 'R':
			if (parse_int(optarg, &a->min_replicas) < 0)
				return ctl_fail("--min-replicas wants a number, got '%s'", optarg);
			break;
		default:
			return ctl_fail("volume %s: unknown or incomplete option '%s' "
					"(see triplexctl volume %s --help)",
					argv[0], argv[optind - 1], argv[0]);
		}
	}
	if (need_name) {
		if (optind != argc - 1)
			return ctl_fail("volume %s: give exactly one volume NAME", argv[0]);
		a->name = argv[optind];
		if (parse_volume_name(a->name) < 0)
			return ctl_fail("bad volume name '%s': use 1-63 of A-Z a-z 0-9 . _ -",
					a->name);
	} else if (optind != argc) {
		return ctl_fail("volume %s: unexpected argument '%s'", argv[0], argv[optind]);
	}
	return 0;
}

static int parse_volume_size(const char *arg, uint64_t *size)
{
	return ctl_parse_size("--size", arg, size);
}

/* A single-replica volume in a data directory: triplexd makes it, so that
 * the CLI never opens a replica store. */
static int create_local(const struct vol_args *a, uint64_t size)
{
	char bytes[32];
	const char *args[] = { "--data-dir", a->data_dir, "--create-volume", a->name,
			       "--size", bytes, NULL };

	snprintf(bytes, sizeof bytes, "%llu", (unsigned long long)size);
	return ctl_run_triplexd(args);
}

static void print_volume(const struct cluster_volume *v, bool json)
{
	char *text = cluster_volume_to_json(v, json ? 0 : CLUSTER_JSON_PRETTY);

	puts(text ? text : "{}");
	free(text);
}

/* The record plus where it is served: "nbd_uris" from the engine node's
 * record (empty while detached or while that node is not registered). */
static void print_volume_served(struct meta *m, const struct cluster_volume *v,
				bool json)
{
	char *text = cluster_volume_to_json(v, 0), uri[CLUSTER_ADDR_MAX + 80];
	json_t *o = text ? json_loads(text, 0, NULL) : NULL, *uris = json_array();
	struct cluster_node n;

	free(text);
	if (v->attached[0] && cluster_node_get(m, v->attached, &n) == 0 &&
	    n.nbd_addr[0]) {
		snprintf(uri, sizeof uri, "nbd://%s/%s", n.nbd_addr, v->name);
		json_array_append_new(uris, json_string(uri));
	}
	json_object_set_new(o, "nbd_uris", uris);
	json_object_set_new(o, "failover", json_string(v->failover_manual ?
						       "manual" : "auto"));
	text = o ? json_dumps(o, json ? JSON_COMPACT : JSON_INDENT(2)) : NULL;
	puts(text ? text : "{}");
	free(text);
	json_decref(o);
}

static int create_cluster(const struct vol_args *a, uint64_t size)
{
	struct cluster_volume_spec spec;
	struct cluster_volume v;
	struct meta *m;
	char err[256];
	int ret;

	cluster_volume_spec_init(&spec, a->name, size);
	if (a->replicas)
		spec.replicas = a->replicas;
	if (a->min_replicas)
		spec.min_replicas = a->min_replicas;
	else if (spec.min_replicas > spec.replicas)
		spec.min_replicas = spec.replicas;
	spec.relaxed = a->relaxed;
	if (a->failover && strcmp(a->failover, "auto") && strcmp(a->failover, "manual"))
		return ctl_fail("--failover wants auto or manual, got '%s'", a->failover);
	spec.failover_manual = a->failover && !strcmp(a->failover, "manual");
	if (a->domain && cluster_domain_parse(a->domain, &spec.domain) < 0)
		return ctl_fail("--domain wants zone or rack, got '%s'", a->domain);
	if (ctl_meta_open(a->meta, &m))
		return 1;
	ret = cluster_volume_create(m, &spec, &v, err, sizeof err);
	meta_close(m);
	if (ret < 0)
		return ctl_fail("cannot create volume '%s': %s", a->name, err);
	if (a->json)
		print_volume(&v, true);
	else
		printf("created volume %s (%llu bytes, %d replicas, min %d)\n", v.name,
		       (unsigned long long)v.size, v.replicas, v.min_replicas);
	return 0;
}

static int volume_create(int argc, char **argv)
{
	struct vol_args a = { 0 };
	uint64_t size;

	if (parse_vol_args(argc, argv, &a, true) || parse_volume_size(a.size, &size))
		return 1;
	if (a.data_dir)
		return create_local(&a, size);
	return create_cluster(&a, size);
}

static void print_volumes_json(const struct ctl_view *v)
{
	fputs("[", stdout);
	for (size_t i = 0; i < v->nvols; i++) {
		char *text = cluster_volume_to_json(&v->vols[i], 0);

		printf("%s%s", i ? "," : "", text ? text : "null");
		free(text);
	}
	puts("]");
}

static int volume_list(int argc, char **argv)
{
	struct vol_args a = { 0 };
	struct ctl_view view;
	struct meta *m;
	int r;

	if (parse_vol_args(argc, argv, &a, false) || ctl_meta_open(a.meta, &m))
		return 1;
	r = ctl_view_load(m, &view);
	meta_close(m);
	if (r < 0)
		return ctl_fail("cannot list volumes: %s", strerror(-r));
	if (a.json)
		print_volumes_json(&view);
	else
		ctl_print_volume_table(&view);
	ctl_view_free(&view);
	return 0;
}

/* The human form: the record with the nodes' states. */
static int show_human(struct meta *m, const char *name)
{
	struct ctl_view view;
	int r = ctl_view_load(m, &view);

	if (r < 0)
		return ctl_fail("cannot read the cluster's records: %s", strerror(-r));
	for (size_t i = 0; i < view.nvols; i++)
		if (!strcmp(view.vols[i].name, name))
			ctl_print_volume(&view, &view.vols[i]);
	ctl_view_free(&view);
	return 0;
}

static int volume_show(int argc, char **argv)
{
	struct vol_args a = { 0 };
	struct cluster_volume v;
	struct meta *m;
	int ret;

	if (parse_vol_args(argc, argv, &a, true) || ctl_meta_open(a.meta, &m))
		return 1;
	ret = cluster_volume_get(m, a.name, &v);
	if (ret == 0 && a.json)
		print_volume_served(m, &v, true);
	else if (ret == 0)
		ret = show_human(m, a.name) ? -EIO : 0;
	meta_close(m);
	if (ret == -ENOENT)
		return ctl_fail("no volume named '%s'", a.name);
	if (ret == -EIO)
		return 1;
	if (ret < 0)
		return ctl_fail("cannot read volume '%s': %s", a.name, strerror(-ret));
	return 0;
}

/* The size the export at uri offers a new connection, or -1 if it does
 * not answer within 2 s. */
static int64_t export_size(const char *uri)
{
	struct nbd_handle *h = nbd_create();
	int64_t size = -1;
	bool ok;

	if (!h)
		return -1;
	/* Bounded: a blocking connect to an unreachable address would hang
	 * for minutes. */
	ok = nbd_aio_connect_uri(h, uri) == 0;
	for (int i = 0; ok && i < 20 && !nbd_aio_is_ready(h); i++)
		ok = !nbd_aio_is_dead(h) && !nbd_aio_is_closed(h) &&
		     nbd_poll(h, 100) >= 0;
	if (ok && nbd_aio_is_ready(h))
		size = nbd_get_size(h);
	nbd_close(h);
	return size;
}

static bool served_now(struct meta *m, const char *name, uint64_t epoch,
		       const char *uri)
{
	struct cluster_volume v;

	if (cluster_volume_get(m, name, &v) < 0 || v.served_epoch < epoch)
		return false;
	return export_size(uri) >= 0;
}

/* Until the node's engine has started at the new epoch (or a later one)
 * and its NBD listener serves the export. */
static int wait_served(struct meta *m, const struct cluster_volume *v)
{
	struct cluster_node n;
	char uri[CLUSTER_ADDR_MAX + CLUSTER_NAME_MAX + 16];

	if (cluster_node_get(m, v->attached, &n) < 0 || !n.nbd_addr[0])
		return ctl_fail("volume %s: node %s has no NBD TCP listener to "
				"wait for", v->name, v->attached);
	snprintf(uri, sizeof uri, "nbd://%s/%s", n.nbd_addr, v->name);
	for (double end = ctl_mono_s() + 60; ctl_mono_s() < end;) {
		if (served_now(m, v->name, v->epoch, uri)) {
			printf("served at %s\n", uri);
			return 0;
		}
		ctl_sleep_100ms();
	}
	return ctl_fail("volume %s: not served by %s after 60 s (see its log)",
			v->name, v->attached);
}

static int volume_attach(int argc, char **argv)
{
	struct vol_args a = { 0 };
	struct cluster_volume v;
	struct meta *m;
	int ret;

	if (parse_vol_args(argc, argv, &a, true))
		return 1;
	if (!a.node)
		return ctl_fail("volume attach: --node ID is required");
	if (ctl_meta_open(a.meta, &m))
		return 1;
	ret = cluster_volume_attach(m, a.name, a.node, &v);
	if (ret < 0)
		meta_close(m);
	if (ret == -ENOENT)
		return ctl_fail("no volume named '%s'", a.name);
	if (ret == -ENXIO)
		return ctl_fail("node '%s' is not registered or not alive (see "
				"triplexctl node list); nothing changed", a.node);
	if (ret < 0)
		return ctl_fail("cannot attach '%s': %s", a.name, strerror(-ret));
	printf("volume %s attached to %s at epoch %llu\n", v.name, v.attached,
	       (unsigned long long)v.epoch);
	ret = a.wait ? wait_served(m, &v) : 0;
	meta_close(m);
	return ret;
}

static int volume_detach(int argc, char **argv)
{
	struct vol_args a = { 0 };
	struct cluster_volume v;
	struct meta *m;
	int ret;

	if (parse_vol_args(argc, argv, &a, true) || ctl_meta_open(a.meta, &m))
		return 1;
	ret = cluster_volume_detach(m, a.name, &v);
	meta_close(m);
	if (ret == -ENOENT)
		return ctl_fail("no volume named '%s'", a.name);
	if (ret == -EALREADY) {
		printf("volume %s is not attached\n", a.name);
		return 0;
	}
	if (ret < 0)
		return ctl_fail("cannot detach '%s': %s", a.name, strerror(-ret));
	printf("volume %s detached (epoch %llu): its engine stops serving it\n",
	       v.name, (unsigned long long)v.epoch);
	return 0;
}

/* The node of after's placement that before did not have. */
static const char *new_node(const struct cluster_volume *before,
			    const struct cluster_volume *after)
{
	for (int k = 0; k < after->nplacement; k++) {
		bool had = false;

		for (int i = 0; i < before->nplacement; i++)
			had |= !strcmp(before->placement[i].node,
				       after->placement[k].node);
		if (!had)
			return after->placement[k].node;
	}
	return NULL;
}

static int volume_replace(int argc, char **argv)
{
	struct vol_args a = { 0 };
	struct cluster_volume before, v;
	const char *node;
	struct meta *m;
	char err[256];
	int ret;

	if (parse_vol_args(argc, argv, &a, true))
		return 1;
	if (!a.from)
		return ctl_fail("volume replace: --from ID is required");
	if (ctl_meta_open(a.meta, &m))
		return 1;
	if (cluster_volume_get(m, a.name, &before) < 0)
		before.nplacement = 0;
	ret = cluster_volume_replace(m, a.name, a.from, a.to, &v, err, sizeof err);
	if (ret < 0) {
		meta_close(m);
		return ctl_fail("cannot replace %s's replica on %s: %s", a.name, a.from, err);
	}
	print_volume(&v, a.json);
	fflush(stdout);
	node = new_node(&before, &v);
	ret = a.wait && node ? ctl_wait_rebuilt(m, a.name, node) : 0;
	meta_close(m);
	return ret;
}

static int volume_delete(int argc, char **argv)
{
	struct vol_args a = { 0 };
	struct cluster_volume v;
	struct meta *m;
	int ret;

	if (parse_vol_args(argc, argv, &a, true) || ctl_meta_open(a.meta, &m))
		return 1;
	ret = cluster_volume_delete_data(m, a.name, a.force, &v);
	meta_close(m);
	if (ret == -ENOENT)
		return ctl_fail("no volume named '%s'", a.name);
	if (ret == -EBUSY && v.attached[0])
		return ctl_fail("volume '%s' is attached to %s: detach it first "
				"(triplexctl volume detach %s), or delete with --force",
				a.name, v.attached, a.name);
	if (ret < 0)
		return ctl_fail("cannot delete '%s': %s", a.name, strerror(-ret));
	printf("deleted volume %s; its %d replica(s) are deleted by their nodes "
	       "(a node that is down does it when it returns)\n", a.name,
	       v.nplacement);
	return 0;
}

/* The NBD URI of the volume's engine, or "" (detached, or its node has no
 * TCP listener or is not registered). */
static void engine_uri(struct meta *m, const struct cluster_volume *v,
		       char *uri, size_t len)
{
	struct cluster_node n;

	uri[0] = '\0';
	if (v->attached[0] && cluster_node_get(m, v->attached, &n) == 0 &&
	    n.nbd_addr[0])
		snprintf(uri, len, "nbd://%s/%s", n.nbd_addr, v->name);
}

/* Until a new connection to the engine (wherever it is now: a failover
 * may move it) is offered at least size bytes. */
static int wait_resized(struct meta *m, const char *name, uint64_t size)
{
	char uri[CLUSTER_ADDR_MAX + CLUSTER_NAME_MAX + 16];
	struct cluster_volume v;
	int64_t got = -1;

	for (double end = ctl_mono_s() + 60; ctl_mono_s() < end;) {
		if (cluster_volume_get(m, name, &v) < 0)
			return ctl_fail("volume %s: cannot read its record", name);
		if (!v.attached[0]) {
			printf("volume %s is not attached: it is served at %llu "
			       "bytes once attached\n", name,
			       (unsigned long long)v.size);
			return 0;
		}
		engine_uri(m, &v, uri, sizeof uri);
		if (uri[0] && (got = export_size(uri)) >= (int64_t)size) {
			printf("served at %s, %lld bytes\n", uri, (long long)got);
			return 0;
		}
		ctl_sleep_100ms();
	}
	return ctl_fail("volume %s: its engine on %s does not serve %llu bytes "
			"after 60 s (it offers %lld; see its log)", name,
			v.attached, (unsigned long long)size, (long long)got);
}

/* Grow only: a smaller size is refused with nothing changed. */
static int volume_resize(int argc, char **argv)
{
	struct vol_args a = { 0 };
	struct cluster_volume v;
	struct meta *m;
	uint64_t size;
	int ret;

	if (parse_vol_args(argc, argv, &a, true))
		return 1;
	if (!a.size)
		return ctl_fail("volume resize: --size SIZE is required");
	if (parse_volume_size(a.size, &size))
		return 1;
	if (a.data_dir)
		return ctl_fail("volume resize: only cluster volumes (--meta) "
				"grow online; a --data-dir volume cannot");
	if (ctl_meta_open(a.meta, &m))
		return 1;
	ret = cluster_volume_resize(m, a.name, size, &v);
	if (ret < 0 && ret != -EALREADY)
		meta_close(m);
	if (ret == -ENOENT)
		return ctl_fail("no volume named '%s'", a.name);
	if (ret == -ERANGE)
		return ctl_fail("cannot shrink volume '%s' from %llu to %llu "
				"bytes: volumes only grow; nothing changed", a.name,
				(unsigned long long)v.size, (unsigned long long)size);
	if (ret == -EINVAL)
		return ctl_fail("--size %llu is over the largest volume, %llu "
				"bytes (1 PiB)", (unsigned long long)size,
				CLUSTER_MAX_VOLUME_SIZE);
	if (ret < 0 && ret != -EALREADY)
		return ctl_fail("cannot resize '%s': %s", a.name, strerror(-ret));
	if (a.json)
		print_volume(&v, true);
	else if (ret == -EALREADY)
		printf("volume %s is already %llu bytes; nothing changed\n",
		       a.name, (unsigned long long)size);
	else
		printf("volume %s resized to %llu bytes: its engine grows every "
		       "replica, then the export\n", a.name,
		       (unsigned long long)size);
	ret = a.wait ? wait_resized(m, a.name, size) : 0;
	meta_close(m);
	return ret;
}

/* Only a volume that exists and is attached has an engine to scrub it:
 * anything else fails at once, not after the 10 minute wait. 0, or 1
 * after printing why not. */
static int scrub_check(struct meta *m, const char *name)
{
	struct cluster_volume v;
	int r = cluster_volume_get(m, name, &v);

	if (r == -ENOENT)
		return ctl_fail("no volume named '%s' (see triplexctl volume list)",
				name);
	if (r < 0)
		return ctl_fail("cannot read volume '%s': %s", name, strerror(-r));
	if (!v.attached[0])
		return ctl_fail("volume '%s' is not attached, so no engine can "
				"scrub it: attach it first (triplexctl volume "
				"attach %s --node ID)", name, name);
	return 0;
}

static uint64_t jint(json_t *o, const char *key)
{
	return (uint64_t)json_integer_value(json_object_get(o, key));
}

/* The engine's report in words: totals, then each run of blocks a
 * replica had wrong and where its good copy came from. */
static void print_scrub_report(const char *name, const char *text)
{
	json_t *o = json_loads(text, 0, NULL), *f;
	size_t i;

	if (!o) {
		puts(text);
		return;
	}
	printf("scrub of %s: %s, %" PRIu64 " bytes, %" PRIu64 " block copies "
	       "checked\n", name,
	       json_string_value(json_object_get(o, "state")) ?: "?",
	       jint(o, "bytes_scrubbed"), jint(o, "blocks_checked"));
	json_array_foreach(json_object_get(o, "findings"), i, f) {
		uint64_t first = jint(f, "first_block"), n = jint(f, "blocks");
		const char *src = json_string_value(json_object_get(f, "repaired_from"));

		printf("  %s: block%s %" PRIu64 "%s", json_string_value(
		       json_object_get(f, "node")) ?: "?", n > 1 ? "s" : "", first,
		       n > 1 ? "-" : "");
		if (n > 1)
			printf("%" PRIu64, first + n - 1);
		printf(" (bytes %" PRIu64 "+%" PRIu64 "): %s, ", first * 4096, n * 4096,
		       !strcmp(json_string_value(json_object_get(f, "problem")) ?: "",
			       "checksum") ? "failed its checksum" :
			       "differed from the majority");
		if (src)
			printf("rewritten from %s\n", src);
		else
			printf("NOT repaired: no good copy\n");
	}
	if (jint(o, "findings_dropped"))
		printf("  ... and %" PRIu64 " more runs (see the engine's log)\n",
		       jint(o, "findings_dropped"));
	printf("%" PRIu64 " blocks failed their checksum, %" PRIu64 " differed, "
	       "%" PRIu64 " repaired, %" PRIu64 " not repaired\n",
	       jint(o, "bad_blocks"), jint(o, "mismatched_blocks"),
	       jint(o, "repaired_blocks"), jint(o, "unrepaired_blocks"));
	json_decref(o);
}

/* Ask the volume's engine to scrub it and wait for the report. */
static int volume_scrub(int argc, char **argv)
{
	static const char req[] = "{\"state\":\"requested\"}";
	struct vol_args a = { 0 };
	uint64_t done = 0;
	struct meta *m;
	char key[128];
	int ret = 1;

	if (parse_vol_args(argc, argv, &a, true) || ctl_meta_open(a.meta, &m))
		return 1;
	if (scrub_check(m, a.name)) {
		meta_close(m);
		return 1;
	}
	snprintf(key, sizeof key, "/triplex/scrub/%s", a.name);
	if (meta_put(m, key, req, sizeof req - 1, -1, 0, NULL) < 0) {
		meta_close(m);
		return ctl_fail("cannot request a scrub of '%s'", a.name);
	}
	fprintf(stderr, "scrub of %s requested; waiting for the engine\n", a.name);
	/* 10 minutes without an answer or progress */
	for (int i = 0; i < 6000; i++) {
		struct meta_kv kv = { 0 };
		const char *v;
		uint64_t at;

		ctl_sleep_100ms();
		if (i % 5 == 4 && (at = ctl_scrub_frame(m, a.name)) > done) {
			done = at;
			i = 0;
		}
		if (meta_get(m, key, &kv) < 0)
			continue;
		v = (const char *)kv.value;
		if (v && (strstr(v, "\"done\"") || strstr(v, "\"failed\""))) {
			ctl_bar_end();
			if (a.json)
				puts(v);
			else
				print_scrub_report(a.name, v);
			ret = strstr(v, "\"done\"") && strstr(v, "\"unrepaired_blocks\":0") ? 0 : 1;
			meta_kv_clear(&kv);
			meta_close(m);
			if (ret)
				return ctl_fail("scrub of '%s' did not repair everything", a.name);
			return 0;
		}
		meta_kv_clear(&kv);
	}
	meta_close(m);
	ctl_bar_end();
	return ctl_fail("scrub of '%s': no answer or progress from its engine in 10 minutes "
			"(is the volume attached?)", a.name);
}

static const struct ctl_cmd subcommands[] = {
	{ "create", volume_create, "create a volume" },
	{ "list", volume_list, "list volumes" },
	{ "show", volume_show, "show one volume" },
	{ "attach", volume_attach, "serve a volume from a node (new epoch)" },
	{ "detach", volume_detach, "stop serving a volume (new epoch)" },
	{ "replace", volume_replace, "move a replica to another node" },
	{ "delete", volume_delete, "delete a volume and its replicas' data" },
	{ "resize", volume_resize, "grow a volume while it is served" },
	{ "scrub", volume_scrub, "compare and repair every replica, print the report" },
};

int volume_main(int argc, char **argv)
{
	for (size_t i = 0; argc >= 2 && i < sizeof subcommands / sizeof subcommands[0]; i++)
		if (!strcmp(argv[1], subcommands[i].name))
			return subcommands[i].fn(argc - 1, argv + 1);
	return ctl_fail("%s volume command%s%s (one of: create, list, show, "
			"attach, detach, replace, delete, resize, scrub; see "
			"triplexctl volume --help)", argc >= 2 ? "unknown" : "missing",
			argc >= 2 ? " " : "", argc >= 2 ? argv[1] : "");
}
