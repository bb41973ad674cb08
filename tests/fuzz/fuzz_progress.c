/*
 * libFuzzer harness for the progress records triplexctl reads from the
 * metadata store (control/agent_progress.c writes them; any store value
 * can be hostile): ctl_jobs_parse, then every way the CLI prints a job.
 * Checks: no crash; every string field is terminated within its array;
 * done <= total; rate and times are not negative.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ctl.h"

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

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct ctl_job *jobs = NULL;
	size_t n = 0;

	if (ctl_jobs_parse("vol", (const char *)data, size, &jobs, &n) == 0)
		for (size_t i = 0; i < n; i++)
			check_job(&jobs[i]);
	free(jobs);
	return 0;
}
