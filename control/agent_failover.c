/*
 * Automatic failover: when the node that serves a volume is gone (its
 * lease expired, so its record is no longer in the store), the first live
 * node in the volume's placement that holds an in-sync replica without
 * doubt takes the volume over: a compare-and-swap of the attachment
 * (cluster_volume_takeover) with an epoch bump, then the usual start
 * (reconcile, export). Every agent computes the same first node, and the
 * CAS decides if two ever disagree.
 *
 * Not too eagerly: the node must have been missing from GRACE_POLLS
 * consecutive polls, and no takeover is tried within HOLDOFF_TICKS of our
 * own (re)registration, since a store outage expires every lease at once
 * and every node then registers again within a second or two.
 */
#include "agent_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

#define GRACE_POLLS 2

struct takeover_job {
	struct metaq_job j;
	struct agent *cm;
	char name[CLUSTER_NAME_MAX];
	char dead[CLUSTER_NAME_MAX];
	struct cluster_volume rec;
};

static int takeover_run(struct meta *m, struct metaq_job *job)
{
	struct takeover_job *t = (struct takeover_job *)job;

	return cluster_volume_takeover(m, t->name, t->dead, t->cm->node.id,
				       &t->rec);
}

static void takeover_done(struct metaq_job *job, int res)
{
	struct takeover_job *t = (struct takeover_job *)job;
	struct agent *cm = t->cm;

	cm->taking_over = false;
	if (res == 0 && !cm->stopping) {
		log_warn("volume %s: node %s is gone (its lease expired): taken "
			 "over here at epoch %llu", t->name, t->dead,
			 (unsigned long long)t->rec.epoch);
		agent_serve(cm, &t->rec);
	} else if (res < 0) {
		log_info("volume %s: no takeover from %s: %s", t->name, t->dead,
			 res == -EBUSY ? "it is registered again" :
			 res == -ESTALE ? "another node took it" :
			 strerror(-res));
	}
	free(t);
}

static bool usable(const struct cluster_replica *p)
{
	return p->state == CLUSTER_REPLICA_IN_SYNC && !p->doubt;
}

/* The node that should take v over: the first live one, in placement
 * order, with a usable replica. */
static const char *heir(const struct agent *cm, const struct cluster_volume *v)
{
	for (int i = 0; i < v->nplacement; i++) {
		const char *n = v->placement[i].node;

		if (usable(&v->placement[i]) &&
		    (!strcmp(n, cm->node.id) || agent_node(cm, n)))
			return n;
	}
	return NULL;
}

static bool orphaned_here(const struct agent *cm, const struct cluster_volume *v)
{
	const char *h;

	if (!v->attached[0] || v->failover_manual ||
	    !strcmp(v->attached, cm->node.id) || agent_node(cm, v->attached))
		return false;
	h = heir(cm, v);
	return h && !strcmp(h, cm->node.id);
}

/* How many consecutive polls v's engine node has been missing, counting
 * this one; the table keeps only this poll's orphans. */
static unsigned missing_polls(struct agent *cm, const struct cluster_volume *v,
			      struct agent_orphan *next, size_t *nnext)
{
	unsigned polls = 1;

	for (size_t i = 0; i < cm->norphans; i++)
		if (!strcmp(cm->orphans[i].vol, v->name) &&
		    !strcmp(cm->orphans[i].node, v->attached))
			polls = cm->orphans[i].polls + 1;
	snprintf(next[*nnext].vol, sizeof next->vol, "%s", v->name);
	snprintf(next[*nnext].node, sizeof next->node, "%s", v->attached);
	next[(*nnext)++].polls = polls;
	return polls;
}

static void take_over(struct agent *cm, const struct cluster_volume *v)
{
	struct takeover_job *t = calloc(1, sizeof *t);

	if (!t)
		return;
	t->j = (struct metaq_job){ .run = takeover_run, .done = takeover_done };
	t->cm = cm;
	snprintf(t->name, sizeof t->name, "%s", v->name);
	snprintf(t->dead, sizeof t->dead, "%s", v->attached);
	cm->taking_over = true;
	log_info("volume %s: its engine's node %s has been gone for %d polls: "
		 "taking it over", v->name, v->attached, GRACE_POLLS);
	agent_submit(cm, &t->j);
}

void agent_failover(struct agent *cm, const struct cluster_volume *vols,
		    size_t n)
{
	struct agent_orphan *next = n ? calloc(n, sizeof *next) : NULL;
	size_t nnext = 0;
	bool settled = cm->ticks - cm->registered_tick >= AGENT_HOLDOFF_TICKS(cm) &&
		       !cm->registering && !cm->refused;

	for (size_t i = 0; next && i < n; i++) {
		if (!orphaned_here(cm, &vols[i]))
			continue;
		if (missing_polls(cm, &vols[i], next, &nnext) >= GRACE_POLLS &&
		    settled && !cm->taking_over)
			take_over(cm, &vols[i]);
	}
	free(cm->orphans);
	cm->orphans = next;
	cm->norphans = nnext;
}
