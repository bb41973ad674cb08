/*
 * libFuzzer harness for the records read back from the metadata store
 * (any store value can be hostile or damaged): volume, node and tombstone
 * decoding. Checks: no crash; a decoded record is sane (names pass the
 * name rule, counts within bounds) and a volume or node re-encodes and
 * decodes to the same fields.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cluster.h"
#include "parse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_volume(const char *text, size_t len)
{
	struct cluster_volume v, again;
	char err[160], *json;

	if (cluster_volume_from_json(text, len, &v, err, sizeof err) < 0)
		return;
	if (parse_volume_name(v.name) || v.nplacement < 0 ||
	    v.nplacement > CLUSTER_MAX_REPLICAS)
		abort();
	json = cluster_volume_to_json(&v, 0);
	if (!json || cluster_volume_from_json(json, strlen(json), &again, err,
					      sizeof err) < 0)
		abort();
	if (strcmp(again.name, v.name) || again.size != v.size ||
	    again.epoch != v.epoch || again.nplacement != v.nplacement)
		abort();
	free(json);
}

static void check_node(const char *text, size_t len)
{
	struct cluster_node n, again;
	char err[160], *json;

	if (cluster_node_from_json(text, len, &n, err, sizeof err) < 0)
		return;
	if (parse_volume_name(n.id) || parse_volume_name(n.zone))
		abort();
	json = cluster_node_to_json(&n, 0);
	if (!json || cluster_node_from_json(json, strlen(json), &again, err,
					    sizeof err) < 0 ||
	    strcmp(again.id, n.id) || strcmp(again.instance, n.instance))
		abort();
	free(json);
}

static void check_tombstone(const char *text, size_t len)
{
	struct cluster_tombstone t;

	if (cluster_tombstone_from_json(text, len, &t) < 0)
		return;
	if (parse_volume_name(t.name) || t.id == 0 || t.nnodes < 0 ||
	    t.nnodes > CLUSTER_MAX_REPLICAS)
		abort();
	for (int i = 0; i < t.nnodes; i++)
		if (parse_volume_name(t.nodes[i]))
			abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *text = (const char *)data;

	check_volume(text, size);
	check_node(text, size);
	check_tombstone(text, size);
	return 0;
}
