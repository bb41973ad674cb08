/* triplexctl node list [--json] [--meta URL] */
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cluster.h"
#include "ctl.h"

static int node_list(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "json", no_argument, NULL, 'j' },
		{ "meta", required_argument, NULL, 'm' },
		{ NULL, 0, NULL, 0 },
	};
	const char *url = NULL;
	bool json = false;
	struct cluster_node *nodes = NULL;
	struct meta *m = NULL;
	size_t n = 0;
	int c, ret = 1;

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
	if (cluster_node_list(m, &nodes, &n) < 0) {
		ctl_fail("cannot list nodes");
		goto out;
	}
	if (json)
		fputs("[", stdout);
	else
		printf("%s\n", cluster_node_table_header());
	for (size_t i = 0; i < n; i++) {
		char row[1024];

		if (json) {
			char *text = cluster_node_to_json(&nodes[i], 0);

			printf("%s%s", i ? "," : "", text ? text : "null");
			free(text);
		} else if (cluster_node_table_row(&nodes[i], row, sizeof row) >= 0) {
			printf("%s\n", row);
		}
	}
	if (json)
		puts("]");
	ret = 0;
out:
	free(nodes);
	meta_close(m);
	return ret;
}

int node_main(int argc, char **argv)
{
	if (argc >= 2 && !strcmp(argv[1], "list"))
		return node_list(argc - 1, argv + 1);
	return ctl_fail("usage: triplexctl node list [--json] [--meta URL] "
			"(see triplexctl node --help)");
}
