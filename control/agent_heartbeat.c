/*
 * A second after it starts, then every HEARTBEAT_TICKS polls, the node
 * puts CLUSTER_SEEN_PREFIX ID, with no lease so that it outlives the node:
 *
 *   {"node":"n2","zone":"zone-b","time":1764800000.25,
 *    "checksum_errors":3,"checksum_error_time":1764799000.0}
 *
 * time is the node's wall clock when it wrote it: `triplexctl node list`
 * says since when a down node has been gone, and `status` compares an up
 * node's clock with its own. checksum_errors counts the bad blocks its
 * replicas' stores found since they were opened, checksum_error_time when
 * that count last grew (0: never), so that `status` can say a disk went
 * bad lately. Outside CLUSTER_PREFIX: the agents' watch does not wake.
 */
#include <stdio.h>
#include <time.h>

#include "agent_int.h"
#include "store.h"

#define HEARTBEAT_TICKS 5

static double wall_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void add_checksum_errors(void *arg, const char *name, struct store *st)
{
	(void)name;
	*(uint64_t *)arg += store_get_stats(st)->csum_errors;
}

static uint64_t store_checksum_errors(const struct agent *cm)
{
	uint64_t n = 0;

	agent_for_each_replica(cm, add_checksum_errors, &n);
	return n;
}

void agent_heartbeat_tick(struct agent *cm)
{
	char key[sizeof CLUSTER_SEEN_PREFIX + CLUSTER_NAME_MAX], val[384];
	uint64_t csum = store_checksum_errors(cm);
	double now = wall_now();

	if (csum > cm->hb_csum)
		cm->hb_csum_time = now;
	cm->hb_csum = csum;
	if (cm->ticks % HEARTBEAT_TICKS != 1 || cm->puts_out >= AGENT_PUTS_BUSY)
		return;
	snprintf(key, sizeof key, "%s%s", CLUSTER_SEEN_PREFIX, cm->node.id);
	snprintf(val, sizeof val, "{\"node\":\"%s\",\"zone\":\"%s\",\"time\":%.3f,"
		 "\"checksum_errors\":%llu,\"checksum_error_time\":%.3f}",
		 cm->node.id, cm->node.zone, now, (unsigned long long)csum,
		 cm->hb_csum_time);
	agent_put(cm, key, val, false);
}
