/* Cluster records as JSON (jansson) and as table lines. Stored records are
 * untrusted input: every field is type- and range-checked on the way in. */
#include "cluster.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "parse.h"

static const char *const domain_names[] = {
	[CLUSTER_DOMAIN_ZONE] = "zone",
	[CLUSTER_DOMAIN_RACK] = "rack",
};

static const char *const state_names[] = {
	[CLUSTER_REPLICA_IN_SYNC] = "in_sync",
	[CLUSTER_REPLICA_OUT_OF_SYNC] = "out_of_sync",
	[CLUSTER_REPLICA_REBUILDING] = "rebuilding",
};

const char *cluster_domain_name(enum cluster_domain d)
{
	return (unsigned)d < 2 ? domain_names[d] : "?";
}

int cluster_domain_parse(const char *s, enum cluster_domain *out)
{
	for (unsigned i = 0; i < 2; i++) {
		if (!strcmp(s, domain_names[i])) {
			*out = (enum cluster_domain)i;
			return 0;
		}
	}
	return -EINVAL;
}

const char *cluster_replica_state_name(enum cluster_replica_state s)
{
	return (unsigned)s < 3 ? state_names[s] : "?";
}

int cluster_replica_state_parse(const char *s, enum cluster_replica_state *out)
{
	for (unsigned i = 0; i < 3; i++) {
		if (!strcmp(s, state_names[i])) {
			*out = (enum cluster_replica_state)i;
			return 0;
		}
	}
	return -EINVAL;
}

void cluster_node_domain(const struct cluster_node *n, enum cluster_domain d,
			 char out[CLUSTER_DOMAIN_MAX])
{
	if (d == CLUSTER_DOMAIN_ZONE)
		snprintf(out, CLUSTER_DOMAIN_MAX, "%s", n->zone);
	else if (n->rack[0])
		snprintf(out, CLUSTER_DOMAIN_MAX, "%s/%s", n->zone, n->rack);
	else
		out[0] = 0;
}

/* ---- encoding ------------------------------------------------------- */

static char *dump(json_t *o, int flags)
{
	char *s = NULL;

	if (o)
		s = json_dumps(o, JSON_PRESERVE_ORDER | JSON_COMPACT |
			       (flags & CLUSTER_JSON_PRETTY ? JSON_INDENT(2) : 0));
	json_decref(o);
	return s;
}

static json_t *replica_to_json(const struct cluster_replica *r)
{
	json_t *o = json_pack("{s:s, s:s, s:s, s:I}", "node", r->node,
			      "domain", r->domain,
			      "state", cluster_replica_state_name(r->state),
			      "rebuild_done", (json_int_t)r->rebuild_done);

	/* Only when set: the usual record stays as it was. */
	if (o && r->doubt)
		json_object_set_new(o, "doubt", json_true());
	return o;
}

static json_t *placement_to_json(const struct cluster_volume *v)
{
	json_t *a = json_array();

	for (int i = 0; a && i < v->nplacement; i++) {
		if (json_array_append_new(a, replica_to_json(&v->placement[i]))) {
			json_decref(a);
			return NULL;
		}
	}
	return a;
}

char *cluster_volume_to_json(const struct cluster_volume *v, int flags)
{
	json_t *o = json_pack("{s:s, s:I, s:I, s:i, s:i, s:s, s:b, s:I, s:I, "
			      "s:s, s:o*}",
			      "name", v->name, "id", (json_int_t)v->id,
			      "size", (json_int_t)v->size,
			      "replicas", v->replicas,
			      "min_replicas", v->min_replicas,
			      "domain_key", cluster_domain_name(v->domain),
			      "relaxed", v->relaxed,
			      "epoch", (json_int_t)v->epoch,
			      "served_epoch", (json_int_t)v->served_epoch,
			      "attached", v->attached,
			      "placement", placement_to_json(v));

	if (o && v->failover_manual)
		json_object_set_new(o, "failover", json_string("manual"));
	if (o && (flags & CLUSTER_JSON_REV))
		json_object_set_new(o, "mod_rev", json_integer(v->mod_rev));
	return dump(o, flags);
}

char *cluster_node_to_json(const struct cluster_node *n, int flags)
{
	json_t *o = json_pack("{s:s, s:s, s:s, s:{s:s, s:s, s:s}, s:s, s:s}",
			      "id", n->id, "zone", n->zone, "rack", n->rack,
			      "addresses", "repl", n->repl_addr,
			      "nbd", n->nbd_addr, "http", n->http_addr,
			      "data_dir", n->data_dir, "instance",
			      n->instance);

	if (o && (flags & CLUSTER_JSON_REV))
		json_object_set_new(o, "lease", json_integer(n->lease));
	return dump(o, flags);
}

/* ---- decoding ------------------------------------------------------- */

struct dec {
	char *err;
	size_t errlen;
	int bad;            /* -EBADMSG once a field failed */
};

static void dec_fail(struct dec *d, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void dec_fail(struct dec *d, const char *fmt, ...)
{
	va_list ap;

	if (d->bad)
		return; /* keep the first reason */
	d->bad = -EBADMSG;
	va_start(ap, fmt);
	vsnprintf(d->err, d->errlen, fmt, ap);
	va_end(ap);
}

/* A string field into dst; missing is "" when optional. */
static void dec_str(struct dec *d, json_t *o, const char *key, char *dst,
		    size_t len, bool required)
{
	json_t *v = json_object_get(o, key);

	dst[0] = 0;
	if (!v && !required)
		return;
	if (!json_is_string(v)) {
		dec_fail(d, "field \"%s\": expected a string", key);
		return;
	}
	if (json_string_length(v) >= len ||
	    strlen(json_string_value(v)) != json_string_length(v)) {
		dec_fail(d, "field \"%s\": too long or contains NUL", key);
		return;
	}
	memcpy(dst, json_string_value(v), json_string_length(v) + 1);
}

static uint64_t dec_u64(struct dec *d, json_t *o, const char *key,
			uint64_t max)
{
	json_t *v = json_object_get(o, key);
	json_int_t x;

	if (!json_is_integer(v)) {
		dec_fail(d, "field \"%s\": expected an integer", key);
		return 0;
	}
	x = json_integer_value(v);
	if (x < 0 || (uint64_t)x > max) {
		dec_fail(d, "field \"%s\": %lld out of range", key,
			 (long long)x);
		return 0;
	}
	return (uint64_t)x;
}

static json_t *dec_load(struct dec *d, const char *text, size_t len)
{
	json_error_t je;
	json_t *o = json_loadb(text, len, JSON_REJECT_DUPLICATES, &je);

	if (!o)
		dec_fail(d, "bad JSON at line %d: %s", je.line, je.text);
	else if (!json_is_object(o))
		dec_fail(d, "expected a JSON object");
	return o;
}

static void dec_replica(struct dec *d, json_t *o, struct cluster_replica *r,
			uint64_t size)
{
	char state[16];

	if (!json_is_object(o)) {
		dec_fail(d, "placement: expected objects");
		return;
	}
	dec_str(d, o, "node", r->node, sizeof r->node, true);
	dec_str(d, o, "domain", r->domain, sizeof r->domain, false);
	dec_str(d, o, "state", state, sizeof state, true);
	if (!d->bad && cluster_replica_state_parse(state, &r->state))
		dec_fail(d, "placement: unknown state \"%s\"", state);
	r->rebuild_done = dec_u64(d, o, "rebuild_done", size);
	if (json_object_get(o, "doubt")) {
		if (!json_is_boolean(json_object_get(o, "doubt")))
			dec_fail(d, "placement: \"doubt\": expected a boolean");
		r->doubt = json_is_true(json_object_get(o, "doubt"));
	}
	if (!d->bad && parse_volume_name(r->node))
		dec_fail(d, "placement: bad node id \"%s\"", r->node);
}

static void dec_placement(struct dec *d, json_t *a, struct cluster_volume *v)
{
	size_t i;
	json_t *e;

	if (!json_is_array(a) || json_array_size(a) > CLUSTER_MAX_REPLICAS) {
		dec_fail(d, "placement: expected an array of at most %d",
			 CLUSTER_MAX_REPLICAS);
		return;
	}
	json_array_foreach(a, i, e)
		dec_replica(d, e, &v->placement[i], v->size);
	v->nplacement = (int)json_array_size(a);
}

static void dec_volume_check(struct dec *d, const struct cluster_volume *v)
{
	if (parse_volume_name(v->name))
		dec_fail(d, "bad volume name \"%s\"", v->name);
	if (v->size == 0 || v->size % 4096)
		dec_fail(d, "size %" PRIu64 " is not a multiple of 4096",
			 v->size);
	if (v->min_replicas < 1 || v->min_replicas > v->replicas)
		dec_fail(d, "min_replicas %d not in 1..%d", v->min_replicas,
			 v->replicas);
	if (v->attached[0] && parse_volume_name(v->attached))
		dec_fail(d, "bad attached node id \"%s\"", v->attached);
}

static void dec_volume(struct dec *d, json_t *o, struct cluster_volume *v)
{
	char fo[16];

	char dom[8];

	dec_str(d, o, "name", v->name, sizeof v->name, true);
	v->id = dec_u64(d, o, "id", INT64_MAX);
	v->size = dec_u64(d, o, "size", INT64_MAX);
	v->replicas = (int)dec_u64(d, o, "replicas", CLUSTER_MAX_REPLICAS);
	v->min_replicas = (int)dec_u64(d, o, "min_replicas",
				       CLUSTER_MAX_REPLICAS);
	dec_str(d, o, "domain_key", dom, sizeof dom, true);
	if (!d->bad && cluster_domain_parse(dom, &v->domain))
		dec_fail(d, "unknown domain_key \"%s\"", dom);
	if (!json_is_boolean(json_object_get(o, "relaxed")))
		dec_fail(d, "field \"relaxed\": expected a boolean");
	v->relaxed = json_is_true(json_object_get(o, "relaxed"));
	/* Absent: automatic (the default). */
	dec_str(d, o, "failover", fo, sizeof fo, false);
	if (!d->bad && fo[0] && strcmp(fo, "manual") && strcmp(fo, "auto"))
		dec_fail(d, "field \"failover\": \"%s\" is not auto or manual", fo);
	v->failover_manual = !strcmp(fo, "manual");
	v->epoch = dec_u64(d, o, "epoch", INT64_MAX);
	/* Absent in records written before it existed: never served. */
	if (json_object_get(o, "served_epoch"))
		v->served_epoch = dec_u64(d, o, "served_epoch", v->epoch);
	dec_str(d, o, "attached", v->attached, sizeof v->attached, false);
	if (!d->bad)
		dec_placement(d, json_object_get(o, "placement"), v);
	if (!d->bad)
		dec_volume_check(d, v);
}

int cluster_volume_from_json(const char *text, size_t len,
			     struct cluster_volume *out, char *err,
			     size_t errlen)
{
	struct dec d = { err, errlen, 0 };
	json_t *o = dec_load(&d, text, len);

	memset(out, 0, sizeof *out);
	if (!d.bad)
		dec_volume(&d, o, out);
	json_decref(o);
	return d.bad;
}

static void dec_node(struct dec *d, json_t *o, struct cluster_node *n)
{
	json_t *a = json_object_get(o, "addresses");

	dec_str(d, o, "id", n->id, sizeof n->id, true);
	dec_str(d, o, "zone", n->zone, sizeof n->zone, true);
	dec_str(d, o, "rack", n->rack, sizeof n->rack, false);
	dec_str(d, o, "data_dir", n->data_dir, sizeof n->data_dir, false);
	dec_str(d, o, "instance", n->instance, sizeof n->instance, false);
	if (!json_is_object(a)) {
		dec_fail(d, "field \"addresses\": expected an object");
		return;
	}
	dec_str(d, a, "repl", n->repl_addr, sizeof n->repl_addr, false);
	dec_str(d, a, "nbd", n->nbd_addr, sizeof n->nbd_addr, false);
	dec_str(d, a, "http", n->http_addr, sizeof n->http_addr, false);
	if (!d->bad && (parse_volume_name(n->id) || parse_volume_name(n->zone)))
		dec_fail(d, "bad node id \"%s\" or zone \"%s\"", n->id,
			 n->zone);
	if (!d->bad && n->rack[0] && parse_volume_name(n->rack))
		dec_fail(d, "bad rack \"%s\"", n->rack);
}

int cluster_node_from_json(const char *text, size_t len,
			   struct cluster_node *out, char *err, size_t errlen)
{
	struct dec d = { err, errlen, 0 };
	json_t *o = dec_load(&d, text, len);

	memset(out, 0, sizeof *out);
	if (!d.bad)
		dec_node(&d, o, out);
	json_decref(o);
	return d.bad;
}

/* ---- tables --------------------------------------------------------- */

static void human_size(uint64_t b, char *buf, size_t len)
{
	static const char units[] = "KMGTPE";
	int u = -1;

	while (b >= 1024 && b % 1024 == 0 && u < 5) {
		b /= 1024;
		u++;
	}
	if (u < 0)
		snprintf(buf, len, "%" PRIu64 "B", b);
	else
		snprintf(buf, len, "%" PRIu64 "%ciB", b, units[u]);
}

const char *cluster_volume_table_header(void)
{
	return "NAME                 SIZE      REPL  DOMAIN  EPOCH  "
	       "ATTACHED      PLACEMENT";
}

/* "n1:in_sync" or "n2:rebuilding(42%)" */
static void replica_cell(const struct cluster_replica *r, uint64_t size,
			 char *buf, size_t len)
{
	if (r->state != CLUSTER_REPLICA_REBUILDING)
		snprintf(buf, len, "%s:%s", r->node,
			 cluster_replica_state_name(r->state));
	else
		snprintf(buf, len, "%s:rebuilding(%u%%)", r->node,
			 (unsigned)(size ? r->rebuild_done * 100 / size : 0));
}

int cluster_volume_table_row(const struct cluster_volume *v, char *buf,
			     size_t len)
{
	char size[32], repl[16], dom[16], cell[CLUSTER_NAME_MAX + 32];
	size_t used;
	int w;

	human_size(v->size, size, sizeof size);
	snprintf(repl, sizeof repl, "%d/%d", v->replicas, v->min_replicas);
	snprintf(dom, sizeof dom, "%s%s", cluster_domain_name(v->domain),
		 v->relaxed ? "~" : "");
	w = snprintf(buf, len, "%-20s %-9s %-5s %-7s %-6" PRIu64 " %-13s",
		     v->name, size, repl, dom, v->epoch,
		     v->attached[0] ? v->attached : "-");
	if (w < 0)
		return -EINVAL;
	for (int i = 0; i < v->nplacement; i++) {
		used = (size_t)w;
		if (used >= len)
			break;
		replica_cell(&v->placement[i], v->size, cell, sizeof cell);
		w += snprintf(buf + used, len - used, " %s", cell);
	}
	return (size_t)w < len ? 0 : -ENOSPC;
}

const char *cluster_node_table_header(void)
{
	return "ID               ZONE         RACK         REPL                  "
	       "NBD                   HTTP";
}

int cluster_node_table_row(const struct cluster_node *n, char *buf,
			   size_t len)
{
	int w = snprintf(buf, len, "%-16s %-12s %-12s %-21s %-21s %s", n->id,
			 n->zone, n->rack[0] ? n->rack : "-", n->repl_addr,
			 n->nbd_addr, n->http_addr);

	return w < 0 ? -EINVAL : ((size_t)w < len ? 0 : -ENOSPC);
}
