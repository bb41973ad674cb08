/* The human forms of `triplexctl volume list` and `volume show`: each
 * volume's state in words, and each replica with its node, zone, state
 * and progress. (--json prints the raw records: volume.c.) */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "ctl.h"

/* "1 GiB", "2000003072 B": exact binary units, else bytes. */
static void size_words(uint64_t b, char *buf, size_t len)
{
	static const char *const units[] = { "KiB", "MiB", "GiB", "TiB", "PiB" };
	int u = -1;

	while (b >= 1024 && b % 1024 == 0 && u < 4) {
		b /= 1024;
		u++;
	}
	if (u < 0)
		snprintf(buf, len, "%" PRIu64 " B", b);
	else
		snprintf(buf, len, "%" PRIu64 " %s", b, units[u]);
}

/* "n1:in_sync n3:out_of_sync(down) n2:rebuilding(42%)" */
static void replica_cells(const struct ctl_view *v,
			  const struct cluster_volume *vol, char *buf,
			  size_t len)
{
	size_t used = 0;

	buf[0] = '\0';
	for (int k = 0; k < vol->nplacement && used < len; k++) {
		const struct cluster_replica *r = &vol->placement[k];
		char pct[16] = "";

		if (r->state == CLUSTER_REPLICA_REBUILDING)
			snprintf(pct, sizeof pct, "(%u%%)", (unsigned)(vol->size ?
				 r->rebuild_done * 100 / vol->size : 0));
		used += (size_t)snprintf(buf + used, len - used, "%s%s:%s%s%s",
					 k ? " " : "", r->node,
					 cluster_replica_state_name(r->state), pct,
					 ctl_view_node_up(v, r->node) ? "" : "(down)");
	}
}

void ctl_print_volume_table(const struct ctl_view *v)
{
	printf("%-20s %-11s %-9s %-5s %-6s %-10s %s\n", "NAME", "STATE", "SIZE",
	       "REPL", "EPOCH", "SERVED-BY", "REPLICAS");
	for (size_t i = 0; i < v->nvols; i++) {
		const struct cluster_volume *vol = &v->vols[i];
		char size[32], repl[16], cells[CLUSTER_MAX_REPLICAS * 100];

		size_words(vol->size, size, sizeof size);
		snprintf(repl, sizeof repl, "%d/%d", vol->replicas, vol->min_replicas);
		replica_cells(v, vol, cells, sizeof cells);
		printf("%-20s %-11s %-9s %-5s %-6" PRIu64 " %-10s %s\n", vol->name,
		       ctl_vol_state_name(ctl_volume_state(v, vol)), size, repl,
		       vol->epoch, vol->attached[0] ? vol->attached : "-", cells);
	}
	for (size_t i = 0; i < v->nbroken; i++)
		printf("%-20s %-11s (its record cannot be read: %s)\n",
		       v->broken[i].name, "broken", v->broken[i].why);
}

/* "where served" and its NBD URI. */
static void print_served(const struct ctl_view *v,
			 const struct cluster_volume *vol)
{
	const struct cluster_node *n = vol->attached[0] ?
				       ctl_view_node(v, vol->attached) : NULL;

	if (!vol->attached[0]) {
		printf("  served by: nobody (detached)\n");
		return;
	}
	printf("  served by: %s%s (served at epoch %" PRIu64 ")\n", vol->attached,
	       n ? "" : ", which is DOWN", vol->served_epoch);
	if (n && n->nbd_addr[0])
		printf("  nbd:       nbd://%s/%s\n", n->nbd_addr, vol->name);
	else if (n)
		printf("  nbd:       (%s has no NBD TCP listener; use its Unix "
		       "socket, export name %s)\n", vol->attached, vol->name);
}

static void print_replicas(const struct ctl_view *v,
			   const struct cluster_volume *vol)
{
	printf("replicas:\n  %-16s %-16s %-6s %s\n", "NODE", "ZONE", "NODE", "REPLICA");
	for (int k = 0; k < vol->nplacement; k++) {
		const struct cluster_replica *r = &vol->placement[k];
		char words[64], done[80] = "", total[32];

		ctl_replica_words(v, vol, r, words, sizeof words);
		if (r->state == CLUSTER_REPLICA_REBUILDING) {
			size_words(r->rebuild_done, done, sizeof done);
			size_words(vol->size, total, sizeof total);
			snprintf(done + strlen(done), sizeof done - strlen(done),
				 " of %s", total);
		}
		printf("  %-16s %-16s %-6s %s%s%s%s\n", r->node, r->domain,
		       ctl_view_node_up(v, r->node) ? "up" : "down", words,
		       done[0] ? " (" : "", done, done[0] ? ")" : "");
	}
}

void ctl_print_volume(const struct ctl_view *v, const struct cluster_volume *vol)
{
	char size[32];

	size_words(vol->size, size, sizeof size);
	printf("volume %s\n", vol->name);
	printf("  state:     %s\n", ctl_vol_state_name(ctl_volume_state(v, vol)));
	printf("  size:      %s (%" PRIu64 " bytes)\n", size, vol->size);
	printf("  policy:    %d replicas, min %d in sync (%d now on live nodes), "
	       "one per %s%s, failover %s\n", vol->replicas, vol->min_replicas,
	       ctl_in_sync_up(v, vol), cluster_domain_name(vol->domain),
	       vol->relaxed ? " (relaxed: distinct nodes)" : "",
	       vol->failover_manual ? "manual" : "auto");
	printf("  epoch:     %" PRIu64 "\n", vol->epoch);
	print_served(v, vol);
	printf("  id:        %" PRIu64 "\n", vol->id);
	print_replicas(v, vol);
}

void ctl_print_node_table(const struct ctl_view *v)
{
	printf("%-16s %-6s %-12s %-12s %-21s %-21s %s\n", "ID", "STATE", "ZONE",
	       "RACK", "REPL", "NBD", "HTTP");
	for (size_t i = 0; i < v->nnodes; i++) {
		const struct cluster_node *n = &v->nodes[i];

		printf("%-16s %-6s %-12s %-12s %-21s %-21s %s\n", n->id, "up",
		       n->zone, n->rack[0] ? n->rack : "-", n->repl_addr,
		       n->nbd_addr[0] ? n->nbd_addr : "-",
		       n->http_addr[0] ? n->http_addr : "-");
	}
	for (size_t i = 0; i < v->ndown; i++) {
		const struct ctl_down_node *d = &v->down[i];
		const struct ctl_seen *seen = ctl_view_seen(v, d->id);
		char since[96] = "since its lease expired", when[32], ago[32];

		if (seen && seen->time > 0) {
			time_t t = (time_t)seen->time;
			struct tm tm;

			localtime_r(&t, &tm);
			strftime(when, sizeof when, "%Y-%m-%d %H:%M:%S", &tm);
			ctl_ago_words((double)time(NULL) - seen->time, ago, sizeof ago);
			snprintf(since, sizeof since, "since about %s, last heard "
				 "%s ago", when, ago);
		}
		printf("%-16s %-6s %-12s (%s; %d replica(s) placed on it)\n", d->id,
		       "down", d->zone[0] ? d->zone : "?", since, d->replicas);
	}
}
