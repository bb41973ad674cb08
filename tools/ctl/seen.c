/* The nodes' heartbeats (control/agent_heartbeat.c): when each node last
 * wrote one by its own clock, and the checksum errors its stores found. */
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ctl.h"
#include "parse.h"

/* A hostile record's times and counts: nothing negative or absurd. */
static double sane_time(json_t *v)
{
	double t = json_number_value(v);

	return t > 0 && t < 1e11 ? t : 0;
}

int ctl_seen_parse(const char *text, size_t len, struct ctl_seen *out)
{
	json_t *o = json_loadb(text, len, 0, NULL);
	const char *id, *zone;
	json_int_t csum;

	memset(out, 0, sizeof *out);
	if (!o)
		return -EBADMSG;
	id = json_string_value(json_object_get(o, "node"));
	zone = json_string_value(json_object_get(o, "zone"));
	csum = json_integer_value(json_object_get(o, "checksum_errors"));
	if (!id || parse_volume_name(id) || (zone && parse_volume_name(zone))) {
		json_decref(o);
		return -EBADMSG;
	}
	snprintf(out->id, sizeof out->id, "%s", id);
	snprintf(out->zone, sizeof out->zone, "%s", zone ? zone : "");
	out->time = sane_time(json_object_get(o, "time"));
	out->csum = csum > 0 ? (uint64_t)csum : 0;
	out->csum_time = sane_time(json_object_get(o, "checksum_error_time"));
	json_decref(o);
	return 0;
}

int ctl_seen_load(struct meta *m, struct ctl_seen **out, size_t *n)
{
	struct meta_kv *kvs = NULL;
	size_t nkv = 0;
	int r = meta_list(m, CLUSTER_SEEN_PREFIX, &kvs, &nkv);

	*out = NULL;
	*n = 0;
	if (r < 0)
		return r;
	*out = calloc(nkv ? nkv : 1, sizeof **out);
	if (!*out) {
		meta_kv_free_array(kvs, nkv);
		return -ENOMEM;
	}
	for (size_t i = 0; i < nkv; i++)
		if (ctl_seen_parse((const char *)kvs[i].value, kvs[i].value_len,
				   &(*out)[*n]) == 0)
			(*n)++;  /* one that does not decode is left out */
	meta_kv_free_array(kvs, nkv);
	return 0;
}

const struct ctl_seen *ctl_view_seen(const struct ctl_view *v, const char *id)
{
	for (size_t i = 0; i < v->nseen; i++)
		if (!strcmp(v->seen[i].id, id))
			return &v->seen[i];
	return NULL;
}

void ctl_ago_words(double secs, char *buf, size_t len)
{
	long s = secs > 0 && secs < 1e10 ? (long)secs : 0;

	if (s >= 86400)
		snprintf(buf, len, "%ldd %ldh", s / 86400, s % 86400 / 3600);
	else if (s >= 3600)
		snprintf(buf, len, "%ldh %ldm", s / 3600, s % 3600 / 60);
	else if (s >= 60)
		snprintf(buf, len, "%ldm %lds", s / 60, s % 60);
	else
		snprintf(buf, len, "%lds", s);
}
