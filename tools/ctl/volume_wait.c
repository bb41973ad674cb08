/* Waiting for a volume's long jobs: `volume replace --wait` until the new
 * replica is in sync, and the bar of `volume scrub`. On a terminal a bar
 * with rate and ETA (from the engine's progress record); otherwise only
 * the final line. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl.h"

/* The job of vol of this kind (and onto replica, if given) into *out. */
static bool find_job(struct meta *m, const char *vol, const char *kind,
		     const char *replica, struct ctl_job *out)
{
	struct ctl_job *jobs;
	size_t n;
	bool found = false;

	if (ctl_jobs_load(m, vol, &jobs, &n) < 0)
		return false;
	for (size_t i = 0; i < n && !found; i++) {
		if (strcmp(jobs[i].kind, kind) ||
		    (replica && strcmp(jobs[i].replica, replica)))
			continue;
		*out = jobs[i];
		found = true;
	}
	free(jobs);
	return found;
}

uint64_t ctl_scrub_frame(struct meta *m, const char *name)
{
	struct ctl_job j;

	if (!find_job(m, name, "scrub", NULL, &j))
		return 0;
	if (ctl_bar_wanted())
		ctl_bar_draw(&j);
	return j.done;
}

static const struct cluster_replica *replica_on(const struct cluster_volume *v,
						const char *node)
{
	for (int k = 0; k < v->nplacement; k++)
		if (!strcmp(v->placement[k].node, node))
			return &v->placement[k];
	return NULL;
}

/* 1: in sync; 0: not yet; -1 after saying why it never will be. */
static int rebuilt(struct meta *m, const char *name, const char *node)
{
	struct cluster_volume v;
	const struct cluster_replica *r;
	int ret = cluster_volume_get(m, name, &v);

	if (ret == -ENOENT) {
		ctl_bar_end();
		return -ctl_fail("volume %s was deleted while its replica on %s "
				 "was rebuilt", name, node);
	}
	if (ret < 0)
		return 0;  /* the store did not answer: try again */
	if (!(r = replica_on(&v, node))) {
		ctl_bar_end();
		return -ctl_fail("volume %s no longer has a replica on %s (replaced "
				 "again?)", name, node);
	}
	if (r->state == CLUSTER_REPLICA_IN_SYNC)
		return 1;
	if (!v.attached[0]) {
		ctl_bar_end();
		return -ctl_fail("volume %s was detached: its replica on %s is "
				 "rebuilt once it is attached again", name, node);
	}
	return 0;
}

int ctl_wait_rebuilt(struct meta *m, const char *name, const char *node)
{
	double t0 = ctl_mono_s(), secs;
	struct cluster_volume v;
	char size[32], rate[32];
	struct ctl_job j;
	int r;

	fprintf(stderr, "waiting until the replica of %s on %s is in sync "
		"(Ctrl-C stops the wait, not the rebuild)\n", name, node);
	for (;;) {
		if ((r = rebuilt(m, name, node)) != 0)
			break;
		if (ctl_bar_wanted() && find_job(m, name, "rebuild", node, &j))
			ctl_bar_draw(&j);
		for (int k = 0; k < 5; k++)
			ctl_sleep_100ms();
	}
	ctl_bar_end();
	if (r < 0)
		return 1;
	secs = ctl_mono_s() - t0;
	if (cluster_volume_get(m, name, &v) < 0)
		v.size = 0;
	ctl_bytes_approx((double)v.size, size, sizeof size);
	ctl_bytes_approx(secs > 0 ? (double)v.size / secs : 0, rate, sizeof rate);
	printf("replica of %s on %s in sync after %.1f s (%s, %s/s)\n", name, node,
	       secs, size, rate);
	return 0;
}
