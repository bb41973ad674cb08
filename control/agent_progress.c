/*
 * Progress of the long jobs an engine runs (rebuilds and catch-ups of its
 * replicas, scrubs), for `triplexctl status` and the CLI's progress bars:
 * once every PUBLISH_TICKS polls while one runs, a record under
 * CLUSTER_PROGRESS_PREFIX NAME, put with the node's lease so that a dead
 * engine's record goes with it; deleted once the last job has ended.
 *
 *   {"node":"n1","epoch":4,"updated":1764800000,"jobs":[
 *     {"kind":"rebuild","replica":"n3","done":..,"total":..,
 *      "rate_bps":..,"elapsed_s":..,"stalled_s":..}, {"kind":"scrub",...}]}
 *
 * The rate is over the job's life so far; done and total are bytes;
 * stalled_s is how long done has not moved.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "agent_int.h"
#include "loop.h"

#define PUBLISH_TICKS 2

/* When done last moved. */
static void note_moved(uint64_t done, uint64_t *last, uint64_t *moved_ms,
		       uint64_t now)
{
	if (done != *last)
		*moved_ms = now;
	*last = done;
}

/* Remember when each job was first seen, from where it started, and
 * when it last moved. */
static bool note_jobs(struct served *s)
{
	struct agent_progress *p = &s->progress;
	uint64_t now = loop_now_ms();
	bool any = false, fresh = false;

	for (unsigned i = 0; i < CLUSTER_MAX_REPLICAS; i++) {
		const struct resync *j = s->jobs[i];

		if (j && j != p->job[i]) {
			p->t0_ms[i] = p->moved_ms[i] = now;
			p->pos0[i] = p->last[i] = resync_get_stats(j)->pos;
			fresh = true;
		}
		if (j)
			note_moved(resync_get_stats(j)->pos, &p->last[i],
				   &p->moved_ms[i], now);
		p->job[i] = j;
		any |= j != NULL;
	}
	if (s->scrub && s->scrub != p->scrub) {
		p->scrub_t0_ms = p->scrub_moved_ms = now;
		p->scrub_last = 0;
		fresh = true;
	}
	if (s->scrub)
		note_moved(scrub_bytes_done(s->scrub), &p->scrub_last,
			   &p->scrub_moved_ms, now);
	p->scrub = s->scrub;
	any |= s->scrub != NULL;
	if (fresh)
		p->ticks = 0;  /* a new job shows at once */
	return any;
}

struct job_fig {
	uint64_t done, from, total, t0_ms, moved_ms;
};

static int put_job(char *out, size_t len, const char *kind,
		   const char *replica, const struct job_fig *f)
{
	uint64_t now = loop_now_ms();
	double elapsed = (double)(now - f->t0_ms) / 1000.0;
	double rate = elapsed > 0.05 && f->done >= f->from ?
		      (double)(f->done - f->from) / elapsed : 0;

	return snprintf(out, len, "{\"kind\":\"%s\",\"replica\":%s%s%s,"
			"\"done\":%" PRIu64 ",\"total\":%" PRIu64 ","
			"\"rate_bps\":%.0f,\"elapsed_s\":%.1f,\"stalled_s\":%.1f}",
			kind, replica ? "\"" : "", replica ? replica : "null",
			replica ? "\"" : "", f->done, f->total, rate, elapsed,
			(double)(now - f->moved_ms) / 1000.0);
}

/* Replica i's resync as a JSON object. */
static int resync_json(const struct served *s, unsigned i, char *out, size_t len)
{
	const struct agent_progress *p = &s->progress;
	struct job_fig f = { resync_get_stats(p->job[i])->pos, p->pos0[i],
			     vol_size(s->vol), p->t0_ms[i], p->moved_ms[i] };
	struct vol_replica_info ri = { 0 };

	vol_replica_info(s->vol, i, &ri);
	return put_job(out, len, ri.receiving ? "rebuild" : "catch-up",
		       ri.node ? ri.node : "?", &f);
}

/* The jobs as a JSON array into out; node ids are checked names
 * (letters, digits, -_.), so they need no escaping. */
static void jobs_json(const struct served *s, char *out, size_t len)
{
	const struct agent_progress *p = &s->progress;
	size_t n = (size_t)snprintf(out, len, "[");

	for (unsigned i = 0; i < CLUSTER_MAX_REPLICAS && n < len; i++) {
		if (!p->job[i])
			continue;
		n += (size_t)snprintf(out + n, len - n, n > 1 ? "," : "");
		if (n < len)
			n += (size_t)resync_json(s, i, out + n, len - n);
	}
	if (p->scrub && n < len) {
		struct job_fig f = { scrub_bytes_done(p->scrub), 0, vol_size(s->vol),
				     p->scrub_t0_ms, p->scrub_moved_ms };

		n += (size_t)snprintf(out + n, len - n, n > 1 ? "," : "");
		if (n < len)
			n += (size_t)put_job(out + n, len - n, "scrub", NULL, &f);
	}
	if (n < len)
		snprintf(out + n, len - n, "]");
}

static void progress_key(const struct served *s, char *key, size_t len)
{
	snprintf(key, len, "%s%s", CLUSTER_PROGRESS_PREFIX, s->rec.name);
}

void agent_progress_tick(struct served *s)
{
	struct agent_progress *p = &s->progress;
	char key[160], jobs[2048], val[2300];

	if (!s->vol)
		return;
	if (!note_jobs(s)) {
		agent_progress_clear(s);
		return;
	}
	p->deletes_left = 0;
	if (p->ticks++ % PUBLISH_TICKS || s->cm->puts_out >= AGENT_PUTS_BUSY)
		return;
	jobs_json(s, jobs, sizeof jobs);
	snprintf(val, sizeof val, "{\"node\":\"%s\",\"epoch\":%" PRIu64 ","
		 "\"updated\":%lld,\"jobs\":%s}", s->cm->node.id, s->rec.epoch,
		 (long long)time(NULL), jobs);
	progress_key(s, key, sizeof key);
	agent_put(s->cm, key, val, true);
	p->published = true;
}

/* A delete that the store lost would leave a record that says the job
 * still runs: it is sent again on the next few polls. */
#define DELETE_RETRIES 4

void agent_progress_clear(struct served *s)
{
	struct agent_progress *p = &s->progress;
	char key[160];

	if (!p->published && !p->deletes_left)
		return;
	progress_key(s, key, sizeof key);
	agent_put(s->cm, key, NULL, false);
	if (p->published) {
		*p = (struct agent_progress){ .deletes_left = DELETE_RETRIES };
		return;
	}
	p->deletes_left--;
}

void agent_progress_job_ended(struct served *s, int replica)
{
	if (replica < 0)
		s->progress.scrub = NULL;
	else if (replica < CLUSTER_MAX_REPLICAS)
		s->progress.job[replica] = NULL;
}
