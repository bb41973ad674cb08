/*
 * libFuzzer harness for the records triplexctl reads from the metadata
 * store outside the cluster's own (any store value can be hostile): the
 * engines' progress records (control/agent_progress.c) through
 * ctl_jobs_parse and every way the CLI prints a job, and the nodes'
 * heartbeats (control/agent_heartbeat.c) through ctl_seen_parse. Checks:
 * no crash; every string field is terminated within its array; done <=
 * total; rates, times and counts are not negative; names pass the rule.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ctl.h"
#include "parse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_job(const struct ctl_job *j)
{
	char buf[512];

	if (!memchr(j->volume, 0, sizeof j->volume) ||
	    !memchr(j->engine, 0, sizeof j->engine) ||
	    !memchr(j->kind, 0, sizeof j->kind) ||
	    !memchr(j->replica, 0, sizeof j->replica))
		abort();
	if (j->done > j->total || j->rate_bps < 0 || j->elapsed_s < 0 ||
	    j->stalled_s < 0)
		abort();
	ctl_job_words(j, buf, sizeof buf);
	ctl_eta_words(j, buf, sizeof buf);
	ctl_bytes_approx(j->rate_bps, buf, sizeof buf);
}

static void check_seen(const uint8_t *data, size_t size)
{
	struct ctl_seen s;
	char buf[64];

	if (ctl_seen_parse((const char *)data, size, &s) < 0)
		return;
	if (!memchr(s.id, 0, sizeof s.id) || !memchr(s.zone, 0, sizeof s.zone) ||
	    parse_volume_name(s.id) || s.time < 0 || s.csum_time < 0)
		abort();
	ctl_ago_words(s.time - s.csum_time, buf, sizeof buf);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct ctl_job *jobs = NULL;
	size_t n = 0;

	check_seen(data, size);
	if (ctl_jobs_parse("vol", (const char *)data, size, &jobs, &n) == 0)
		for (size_t i = 0; i < n; i++)
			check_job(&jobs[i]);
	free(jobs);
	return 0;
}
