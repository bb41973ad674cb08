/* The cluster's problems, each with its severity, the volume, replica and
 * node concerned and what to do: what `triplexctl status` sums up and
 * `triplexctl health detail` lists. One function a check. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ctl.h"

const char *ctl_health_name(enum ctl_health h)
{
	return h == CTL_HEALTH_ERR ? "HEALTH_ERR" :
	       h == CTL_HEALTH_WARN ? "HEALTH_WARN" : "HEALTH_OK";
}

static const struct {
	const char *code, *label;
} labels[] = {
	{ "META_UNREACHABLE", "metadata store unreachable" },
	{ "VOLUME_RECORD_BROKEN", "volume record(s) that cannot be read" },
	{ "NODE_DOWN", "node(s) down" },
	{ "ENGINE_DOWN", "volume(s) not served: the engine's node is down" },
	{ "BELOW_MIN_REPLICAS", "volume(s) below min_replicas: writes blocked" },
	{ "REPLICA_OUT_OF_SYNC", "replica(s) out of sync" },
	{ "REPLICA_REBUILDING", "replica(s) rebuilding" },
	{ "REPLICA_UNAVAILABLE", "in-sync replica(s) on a node that is down" },
	{ "JOB_STALLED", "rebuild(s) or scrub(s) stalled" },
	{ "CHECKSUM_ERRORS", "node(s) whose disk returned bad blocks lately" },
	{ "CLOCK_SKEW", "node(s) whose clock is off" },
	{ "META_DEGRADED", "metadata store member(s) not answering" },
};

const char *ctl_problem_label(const char *code)
{
	for (size_t i = 0; i < sizeof labels / sizeof labels[0]; i++)
		if (!strcmp(labels[i].code, code))
			return labels[i].label;
	return code;
}

/* Append one problem. */
static int add(struct ctl_health_report *h, enum ctl_health sev,
	       const char *code, const char *volume, const char *node,
	       const char *what, const char *todo)
{
	struct ctl_problem *p, *grown;

	grown = realloc(h->problems, (h->n + 1) * sizeof *h->problems);
	if (!grown)
		return -ENOMEM;
	h->problems = grown;
	p = &h->problems[h->n++];
	memset(p, 0, sizeof *p);
	p->severity = sev;
	p->code = code;
	/* Names fit: the precision says so to the compiler. */
	snprintf(p->volume, sizeof p->volume, "%.*s", (int)sizeof p->volume - 1,
		 volume ? volume : "");
	snprintf(p->node, sizeof p->node, "%.*s", (int)sizeof p->node - 1,
		 node ? node : "");
	snprintf(p->what, sizeof p->what, "%s", what);
	snprintf(p->todo, sizeof p->todo, "%s", todo);
	if (sev > h->health)
		h->health = sev;
	return 0;
}

static int check_down_node(struct ctl_health_report *h,
			   const struct ctl_down_node *d)
{
	char what[CTL_PROBLEM_TEXT], todo[CTL_PROBLEM_TEXT];

	snprintf(what, sizeof what, "node %s (%s) is down: its lease in the "
		 "store expired; it holds %d replica(s)", d->id,
		 d->zone[0] ? d->zone : "zone unknown", d->replicas);
	snprintf(todo, sizeof todo, "start triplexd on %s again (its replicas "
		 "catch up on their own), or move its replicas: triplexctl "
		 "volume replace VOLUME --from %s", d->id, d->id);
	return add(h, CTL_HEALTH_WARN, "NODE_DOWN", NULL, d->id, what, todo);
}

/* An engine on a node that is down serves nothing. */
static int check_engine(struct ctl_health_report *h, const struct ctl_view *v,
			const struct cluster_volume *vol)
{
	char what[CTL_PROBLEM_TEXT], todo[CTL_PROBLEM_TEXT];

	if (!vol->attached[0] || ctl_view_node_up(v, vol->attached))
		return 0;
	snprintf(what, sizeof what, "volume %s is attached to %s, which is "
		 "down: it is not served", vol->name, vol->attached);
	snprintf(todo, sizeof todo, "%s; or attach it to a live node holding "
		 "an in-sync replica: triplexctl volume attach %s --node ID",
		 vol->failover_manual ? "its failover is manual" :
		 "automatic failover moves it within a few leases",
		 vol->name);
	return add(h, CTL_HEALTH_ERR, "ENGINE_DOWN", vol->name, vol->attached,
		   what, todo);
}

static int check_min_replicas(struct ctl_health_report *h,
			      const struct ctl_view *v,
			      const struct cluster_volume *vol)
{
	char what[CTL_PROBLEM_TEXT], todo[CTL_PROBLEM_TEXT];
	int n = ctl_in_sync_up(v, vol);

	if (n >= vol->min_replicas)
		return 0;
	snprintf(what, sizeof what, "volume %s has %d in-sync replica(s) on "
		 "live nodes, below its min_replicas %d: writes wait and fail "
		 "with EIO", vol->name, n, vol->min_replicas);
	snprintf(todo, sizeof todo, "bring back the nodes holding its in-sync "
		 "replicas (see triplexctl volume show %s)", vol->name);
	return add(h, CTL_HEALTH_ERR, "BELOW_MIN_REPLICAS", vol->name, NULL,
		   what, todo);
}

static int check_replica(struct ctl_health_report *h, const struct ctl_view *v,
			 const struct cluster_volume *vol,
			 const struct cluster_replica *r)
{
	char what[CTL_PROBLEM_TEXT], todo[CTL_PROBLEM_TEXT], words[64];
	bool up = ctl_view_node_up(v, r->node);
	const char *code;

	if (r->state == CLUSTER_REPLICA_IN_SYNC && up)
		return 0;
	ctl_replica_words(v, vol, r, words, sizeof words);
	snprintf(what, sizeof what, "replica of %s on %s (%s): %s", vol->name,
		 r->node, r->domain, words);
	if (!up)
		snprintf(todo, sizeof todo, "start %s again: the replica catches "
			 "up; or triplexctl volume replace %s --from %s", r->node,
			 vol->name, r->node);
	else
		snprintf(todo, sizeof todo, "nothing: it %s while the volume "
			 "serves (triplexctl volume show %s for progress)",
			 r->state == CLUSTER_REPLICA_REBUILDING ? "is rebuilt" :
			 "catches up", vol->name);
	code = r->state == CLUSTER_REPLICA_REBUILDING ? "REPLICA_REBUILDING" :
	       r->state == CLUSTER_REPLICA_OUT_OF_SYNC ? "REPLICA_OUT_OF_SYNC" :
	       "REPLICA_UNAVAILABLE";
	return add(h, CTL_HEALTH_WARN, code, vol->name, r->node, what, todo);
}

static int check_volume(struct ctl_health_report *h, const struct ctl_view *v,
			const struct cluster_volume *vol)
{
	int r = check_engine(h, v, vol);

	if (r == 0)
		r = check_min_replicas(h, v, vol);
	for (int k = 0; r == 0 && k < vol->nplacement; k++)
		r = check_replica(h, v, vol, &vol->placement[k]);
	return r;
}

/* A rebuild or scrub whose position has not moved for a minute. */
#define STALLED_S 60

static int check_job(struct ctl_health_report *h, const struct ctl_job *j)
{
	char what[CTL_PROBLEM_TEXT], todo[CTL_PROBLEM_TEXT], words[256];

	if (j->stalled_s < STALLED_S && !j->stale)
		return 0;
	ctl_job_words(j, words, sizeof words);
	snprintf(what, sizeof what, "%s: %s for %.0f s", words,
		 j->stale ? "no news from its engine" : "not moved",
		 j->stalled_s);
	snprintf(todo, sizeof todo, "look at %s's log and at %s (its disk, "
		 "its link): a stalled copy waits for a replica that does not "
		 "answer", j->engine, j->replica[0] ? j->replica : j->engine);
	return add(h, CTL_HEALTH_WARN, "JOB_STALLED", j->volume,
		   j->replica[0] ? j->replica : j->engine, what, todo);
}

/* Heartbeats come every 5 s: an up node's is at most that old, plus the
 * store's delay. Beyond these, its clock is off (or its heartbeat stuck). */
#define SKEW_AHEAD_S 10
#define SKEW_BEHIND_S 20
#define CSUM_RECENT_S 3600

static int check_clock(struct ctl_health_report *h, const struct ctl_seen *s)
{
	char what[CTL_PROBLEM_TEXT], todo[CTL_PROBLEM_TEXT];
	double off = s->time - (double)time(NULL);

	if (s->time <= 0 || (off <= SKEW_AHEAD_S && -off <= SKEW_BEHIND_S))
		return 0;
	if (off > 0)
		snprintf(what, sizeof what, "%s's clock is about %.0f s ahead of "
			 "this host's", s->id, off);
	else
		snprintf(what, sizeof what, "%s's clock is at least %.0f s behind "
			 "this host's (or it has not written its heartbeat for "
			 "that long)", s->id, -off - 5);
	snprintf(todo, sizeof todo, "fix NTP on %s and here (timedatectl, "
		 "chronyc tracking): certificates and logs depend on it", s->id);
	return add(h, CTL_HEALTH_WARN, "CLOCK_SKEW", NULL, s->id, what, todo);
}

static int check_checksums(struct ctl_health_report *h, const struct ctl_seen *s)
{
	char what[CTL_PROBLEM_TEXT], todo[CTL_PROBLEM_TEXT], ago[32];

	if (!s->csum || s->csum_time <= 0 || s->time - s->csum_time > CSUM_RECENT_S)
		return 0;
	ctl_ago_words(s->time - s->csum_time, ago, sizeof ago);
	snprintf(what, sizeof what, "%s's disk returned %llu block(s) failing "
		 "their checksum (the last %s before its last heartbeat); each "
		 "was read from another replica", s->id,
		 (unsigned long long)s->csum, ago);
	snprintf(todo, sizeof todo, "scrub the volumes with a replica on %s "
		 "(triplexctl volume scrub NAME) and check its disk (SMART, "
		 "dmesg); replace the disk if it goes on", s->id);
	return add(h, CTL_HEALTH_WARN, "CHECKSUM_ERRORS", NULL, s->id, what, todo);
}

static int check_broken(struct ctl_health_report *h,
			const struct ctl_broken_record *b)
{
	char what[CTL_PROBLEM_TEXT], todo[CTL_PROBLEM_TEXT];

	snprintf(what, sizeof what, "volume record %s%s cannot be read: %s",
		 CLUSTER_VOLUMES_PREFIX, b->name, b->why);
	snprintf(todo, sizeof todo, "no node serves it while it is broken: "
		 "restore the record from a backup, or delete the key");
	return add(h, CTL_HEALTH_ERR, "VOLUME_RECORD_BROKEN", b->name, NULL,
		   what, todo);
}

int ctl_health_check(const struct ctl_view *v, struct ctl_health_report *h)
{
	int r = 0;

	memset(h, 0, sizeof *h);
	for (size_t i = 0; r == 0 && i < v->nbroken; i++)
		r = check_broken(h, &v->broken[i]);
	for (size_t i = 0; r == 0 && i < v->ndown; i++)
		r = check_down_node(h, &v->down[i]);
	for (size_t i = 0; r == 0 && i < v->nvols; i++)
		r = check_volume(h, v, &v->vols[i]);
	for (size_t i = 0; r == 0 && i < v->njobs; i++)
		r = check_job(h, &v->jobs[i]);
	for (size_t i = 0; r == 0 && i < v->nseen; i++)
		if (ctl_view_node_up(v, v->seen[i].id))
			r = check_clock(h, &v->seen[i]);
	for (size_t i = 0; r == 0 && i < v->nseen; i++)
		r = check_checksums(h, &v->seen[i]);
	return r;
}

int ctl_health_members(struct ctl_health_report *h, const struct ctl_member *mb,
		       size_t n)
{
	char what[CTL_PROBLEM_TEXT], todo[CTL_PROBLEM_TEXT];
	size_t down = 0;
	int r = 0;

	for (size_t i = 0; i < n; i++)
		down += !mb[i].ok;
	for (size_t i = 0; r == 0 && i < n; i++) {
		if (mb[i].ok)
			continue;
		snprintf(what, sizeof what, "etcd member %s does not answer (%zu "
			 "of %zu down): %s", mb[i].endpoint, down, n, mb[i].err);
		snprintf(todo, sizeof todo, "start it again (etcdctl endpoint "
			 "health); %s", 2 * (down + 1) > n ? "one more loss "
			 "stops every attach, failover and in-sync change" :
			 "the others keep the quorum meanwhile");
		r = add(h, 2 * down >= n ? CTL_HEALTH_ERR : CTL_HEALTH_WARN,
			"META_DEGRADED", NULL, NULL, what, todo);
	}
	return r;
}

int ctl_health_meta_down(struct ctl_health_report *h, const char *url,
			 const char *err)
{
	char what[CTL_PROBLEM_TEXT], todo[CTL_PROBLEM_TEXT];

	memset(h, 0, sizeof *h);
	snprintf(what, sizeof what, "metadata store %s unreachable: %s",
		 url ? url : "(none given)", err);
	snprintf(todo, sizeof todo, "check --meta / $TRIPLEX_META (a sqlite "
		 "file that exists, or reachable etcd members) and the store "
		 "itself");
	return add(h, CTL_HEALTH_ERR, "META_UNREACHABLE", NULL, NULL, what, todo);
}

void ctl_health_free(struct ctl_health_report *h)
{
	if (!h)
		return;
	free(h->problems);
	memset(h, 0, sizeof *h);
}
