/*
 * POST /admin/fault?delay_ms=MS&error=enospc|none&seconds=S: inject a
 * store fault on this node for S seconds (`triplexctl drill`): every store
 * I/O waits MS milliseconds first, and/or every write fails with ENOSPC
 * as on a full disk. seconds=0 clears it. Refused (403) unless triplexd
 * runs with --fault-injection: off by default, as it can take a node's
 * replicas down.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon.h"
#include "log.h"

/* arg as a number from 0 to max; absent: 0. false when bad. */
static bool arg_num(struct http_request *req, const char *key, unsigned long max,
		    unsigned long *out)
{
	const char *s = http_request_arg(req, key);
	char *end;

	*out = 0;
	if (!s)
		return true;
	if (*s < '0' || *s > '9')
		return false;
	*out = strtoul(s, &end, 10);
	return *end == '\0' && *out <= max;
}

int daemon_on_fault(void *arg, struct http_request *req, FILE *f)
{
	struct daemon *d = arg;
	const char *error = http_request_arg(req, "error");
	unsigned long delay, secs;
	char what[160], num[32];
	int err = 0;

	if (!d->opts.fault_injection) {
		fputs("fault injection is off: start triplexd with --fault-injection\n", f);
		return 403;
	}
	if (error && !strcmp(error, "enospc"))
		err = ENOSPC;
	else if (error && strcmp(error, "none")) {
		fprintf(f, "error wants enospc or none\n");
		return 400;
	}
	if (!arg_num(req, "delay_ms", 10000, &delay) ||
	    !arg_num(req, "seconds", 600, &secs)) {
		fputs("delay_ms wants 0..10000, seconds 0..600\n", f);
		return 400;
	}
	store_io_fault_set(&d->fault, delay, err, secs * 1000);
	snprintf(num, sizeof num, "%lu ms", delay);
	if (!secs || (!delay && !err)) {
		log_warn("fault injection: cleared");
		fputs("fault cleared\n", f);
		return 200;
	}
	snprintf(what, sizeof what, "%s%s%s for %lu s",
		 delay ? "store I/O delayed by " : "", delay ? num : "",
		 err ? (delay ? ", writes fail with ENOSPC" :
			"store writes fail with ENOSPC") : "", secs);
	log_warn("fault injection: %s", what);
	fprintf(f, "%s\n", what);
	return 200;
}
