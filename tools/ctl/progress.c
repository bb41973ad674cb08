/* Long jobs as the engines publish them (control/agent_progress.c), in
 * words for `status`, and as a progress bar on a terminal. */
#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "ctl.h"

/* An engine publishes every 2 s; older than STALE_S, it is not heard
 * from (JOB_STALLED); older than GONE_S, a record whose delete was lost
 * (the engine would have renewed it): left out. */
#define STALE_S 30
#define GONE_S 120

static void copy_str(char *dst, size_t len, json_t *o, const char *key)
{
	const char *s = json_string_value(json_object_get(o, key));

	snprintf(dst, len, "%s", s ? s : "");
}

/* A hostile record's numbers: no negative or absurd rate or time. */
static double sane(double v)
{
	return v >= 0 && v < 1e18 ? v : 0;
}

static int job_add(struct ctl_job **jobs, size_t *n, const char *vol,
		   json_t *rec, json_t *j)
{
	struct ctl_job *grown = realloc(*jobs, (*n + 1) * sizeof **jobs), *o;
	long long updated = json_integer_value(json_object_get(rec, "updated"));

	if (!grown)
		return -ENOMEM;
	*jobs = grown;
	if (updated < (long long)time(NULL) - GONE_S)
		return 0;
	o = &grown[(*n)++];
	memset(o, 0, sizeof *o);
	snprintf(o->volume, sizeof o->volume, "%s", vol);
	copy_str(o->engine, sizeof o->engine, rec, "node");
	copy_str(o->kind, sizeof o->kind, j, "kind");
	copy_str(o->replica, sizeof o->replica, j, "replica");
	o->epoch = (uint64_t)json_integer_value(json_object_get(rec, "epoch"));
	o->done = (uint64_t)json_integer_value(json_object_get(j, "done"));
	o->total = (uint64_t)json_integer_value(json_object_get(j, "total"));
	if (o->done > o->total)
		o->done = o->total;
	o->rate_bps = sane(json_number_value(json_object_get(j, "rate_bps")));
	o->elapsed_s = sane(json_number_value(json_object_get(j, "elapsed_s")));
	o->stalled_s = sane(json_number_value(json_object_get(j, "stalled_s")));
	o->stale = updated < (long long)time(NULL) - STALE_S ||
		   updated > (long long)time(NULL) + STALE_S;
	return 0;
}

int ctl_jobs_parse(const char *vol, const char *text, size_t len,
		   struct ctl_job **jobs, size_t *n)
{
	json_t *rec = json_loadb(text, len, 0, NULL), *j;
	size_t i;
	int r = 0;

	if (!rec)
		return 0;  /* half-written or hostile: skipped, not fatal */
	json_array_foreach(json_object_get(rec, "jobs"), i, j)
		if (r == 0 && json_is_object(j))
			r = job_add(jobs, n, vol, rec, j);
	json_decref(rec);
	return r;
}

int ctl_jobs_load(struct meta *m, const char *vol, struct ctl_job **jobs,
		  size_t *n)
{
	char prefix[sizeof CLUSTER_PROGRESS_PREFIX + CLUSTER_NAME_MAX];
	struct meta_kv *kvs = NULL;
	size_t nkv = 0;
	int r;

	*jobs = NULL;
	*n = 0;
	snprintf(prefix, sizeof prefix, "%s%s", CLUSTER_PROGRESS_PREFIX,
		 vol ? vol : "");
	if ((r = meta_list(m, prefix, &kvs, &nkv)) < 0)
		return r;
	for (size_t i = 0; r == 0 && i < nkv; i++)
		if (!vol || !strcmp(kvs[i].key + strlen(CLUSTER_PROGRESS_PREFIX), vol))
			r = ctl_jobs_parse(kvs[i].key + strlen(CLUSTER_PROGRESS_PREFIX),
					   (const char *)kvs[i].value,
					   kvs[i].value_len, jobs, n);
	meta_kv_free_array(kvs, nkv);
	if (r < 0) {
		free(*jobs);
		*jobs = NULL;
		*n = 0;
	}
	return r;
}

void ctl_bytes_approx(double b, char *buf, size_t len)
{
	static const char *const units[] = { "B", "KiB", "MiB", "GiB", "TiB", "PiB" };
	int u = 0;

	while (b >= 1024 && u < 5) {
		b /= 1024;
		u++;
	}
	snprintf(buf, len, u ? "%.1f %s" : "%.0f %s", b, units[u]);
}

void ctl_eta_words(const struct ctl_job *j, char *buf, size_t len)
{
	double left;
	uint64_t s;

	if (j->done >= j->total) {
		snprintf(buf, len, "ETA 0s");
		return;
	}
	left = j->rate_bps >= 1 ? (double)(j->total - j->done) / j->rate_bps : -1;
	if (left < 0 || left > 1e9) {
		snprintf(buf, len, "ETA unknown");
		return;
	}
	s = (uint64_t)(left + 0.999);
	if (s >= 3600)
		snprintf(buf, len, "ETA %" PRIu64 "h%02" PRIu64 "m", s / 3600,
			 s % 3600 / 60);
	else if (s >= 60)
		snprintf(buf, len, "ETA %" PRIu64 "m%02" PRIu64 "s", s / 60, s % 60);
	else
		snprintf(buf, len, "ETA %" PRIu64 "s", s);
}

static unsigned percent(const struct ctl_job *j)
{
	return j->total ? (unsigned)((double)j->done * 100 / (double)j->total) : 0;
}

/* "rebuild of db onto n3", "scrub of db". */
static void job_title(const struct ctl_job *j, char *buf, size_t len)
{
	if (j->replica[0])
		snprintf(buf, len, "%s of %s onto %s", j->kind, j->volume, j->replica);
	else
		snprintf(buf, len, "%s of %s", j->kind, j->volume);
}

void ctl_job_words(const struct ctl_job *j, char *buf, size_t len)
{
	char title[160], done[32], total[32], rate[32], eta[32];

	job_title(j, title, sizeof title);
	ctl_bytes_approx((double)j->done, done, sizeof done);
	ctl_bytes_approx((double)j->total, total, sizeof total);
	ctl_bytes_approx(j->rate_bps, rate, sizeof rate);
	ctl_eta_words(j, eta, sizeof eta);
	snprintf(buf, len, "%s by %s: %u%% (%s of %s), %s/s, %s%s", title,
		 j->engine, percent(j), done, total, rate, eta,
		 j->stale ? " (not updated for 30 s: its engine may be gone)" : "");
}

static bool bar_shown;

bool ctl_bar_wanted(void)
{
	return isatty(STDERR_FILENO);
}

void ctl_bar_draw(const struct ctl_job *j)
{
	char title[160], done[32], total[32], rate[32], eta[32], bar[31];
	unsigned filled = percent(j) * 30 / 100;

	job_title(j, title, sizeof title);
	ctl_bytes_approx((double)j->done, done, sizeof done);
	ctl_bytes_approx((double)j->total, total, sizeof total);
	ctl_bytes_approx(j->rate_bps, rate, sizeof rate);
	ctl_eta_words(j, eta, sizeof eta);
	for (unsigned i = 0; i < 30; i++)
		bar[i] = i < filled ? '#' : '.';
	bar[30] = '\0';
	fprintf(stderr, "\r%s [%s] %3u%% %s of %s, %s/s, %s\033[K", title, bar,
		percent(j), done, total, rate, eta);
	fflush(stderr);
	bar_shown = true;
}

void ctl_bar_end(void)
{
	if (!bar_shown)
		return;
	bar_shown = false;
	fputs("\r\033[K", stderr);
	fflush(stderr);
}

void ctl_sleep_100ms(void)
{
	struct timespec ts = { 0, 100000000 };

	nanosleep(&ts, NULL);
}

double ctl_mono_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}
