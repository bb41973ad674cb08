/* triplexctl node list [--json] [--meta URL]: up nodes and down ones. */
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "cluster.h"
#include "ctl.h"

/* The records of the nodes that are up, as stored (scripts read them). */
static int print_json(struct meta *m)
{
	struct cluster_node *nodes = NULL;
	size_t n = 0;

	if (cluster_node_list(m, &nodes, &n) < 0)
		return ctl_fail("cannot list nodes");
	fputs("[", stdout);
	for (size_t i = 0; i < n; i++) {
		char *text = cluster_node_to_json(&nodes[i], 0);

		printf("%s%s", i ? "," : "", text ? text : "null");
		free(text);
	}
	puts("]");
	free(nodes);
	return 0;
}

static int node_list(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "json", no_argument, NULL, 'j' },
		{ "meta", required_argument, NULL, 'm' },
		{ NULL, 0, NULL, 0 },
	};
	const char *url = NULL;
	bool json = false;
	struct ctl_view view;
	struct meta *m = NULL;
	int c, ret;

	opterr = 0;
	optind = 1;
	while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		if (c == 'j')
			json = true;
		else if (c == 'm')
			url = optarg;
		else
			return ctl_fail("node list: unknown or incomplete option "
					"'%s' (see triplexctl node list --help)",
					argv[optind - 1]);
	}
	if (ctl_meta_open(url, &m))
		return 1;
	if (json) {
		ret = print_json(m);
		meta_close(m);
		return ret;
	}
	c = ctl_view_load(m, &view);
	meta_close(m);
	if (c < 0)
		return ctl_fail("cannot list nodes: %s", strerror(-c));
	ctl_print_node_table(&view);
	ctl_view_free(&view);
	return 0;
}

int node_main(int argc, char **argv)
{
	if (argc >= 2 && !strcmp(argv[1], "list"))
		return node_list(argc - 1, argv + 1);
	return ctl_fail("usage: triplexctl node list [--json] [--meta URL] "
			"(see triplexctl node --help)");
}
