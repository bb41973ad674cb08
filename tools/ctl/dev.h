/* The dev cluster (dev.c) as the drill (drill*.c) uses it. */
#ifndef TRIPLEX_CTL_DEV_H
#define TRIPLEX_CTL_DEV_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#define DEV_NODES 3

struct dev_node {
	char id[8], zone[16];
	char dir[PATH_MAX];
	char sock[PATH_MAX + 16];
	int repl_port, nbd_port, http_port;
	char tls_dir[PATH_MAX];  /* "": plaintext replication (--insecure) */
	char admin_token[PATH_MAX + 16];  /* --admin-token-file */
	pid_t pid;
};

/* The nodes of DIR/cluster.json (pids from their data directories'
 * locks) and its metadata URL: 0, or 1 after saying why not. */
int dev_cluster_load(const char *dir, struct dev_node *nodes, int *n,
		     char *meta, size_t metalen);
/* The triplexd running in data_dir now, or 0. */
pid_t dev_running_pid(const char *data_dir);
/* Stop node id if it runs and start it again with its own command line;
 * quiet: nothing on stdout. 0, or 1 after saying why not. */
int dev_restart_node(const char *dir, const char *id, bool quiet);

#endif
