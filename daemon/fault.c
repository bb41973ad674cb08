/*
 * POST /admin/fault?delay_ms=MS&error=enospc|none&seconds=S: inject a
 * store fault on this node for S seconds (`triplexctl drill`): every store
 * I/O waits MS milliseconds first, and/or every write fails with ENOSPC
 * as on a full disk. seconds=0 clears it. It changes state, so it needs
 * "Authorization: Bearer TOKEN" with the token of --admin-token-file
 * (401), and triplexd must run with --fault-injection (403): off by
 * default, as it can take a node's replicas down.
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

#define TOKEN_MAX 256

/* Equal, in time that depends on the lengths only. */
static bool same_secret(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);
	unsigned char diff = la != lb;

	for (size_t i = 0; i < la && i < lb; i++)
		diff |= (unsigned char)(a[i] ^ b[i]);
	return diff == 0;
}

/* The file's first line; false if it cannot be read or is too short to
 * be a secret. Read at each call: a new token needs no restart. */
static bool read_token(const char *path, char *out, size_t len)
{
	FILE *f = path ? fopen(path, "re") : NULL;

	out[0] = '\0';
	if (!f)
		return false;
	if (!fgets(out, (int)len, f))
		out[0] = '\0';
	fclose(f);
	out[strcspn(out, "\r\n")] = '\0';
	return strlen(out) >= 16;
}

/* 0 when the request carries the admin token, else the HTTP status. */
static int admin_auth(struct daemon *d, struct http_request *req, FILE *f)
{
	const char *h = http_request_header(req, "Authorization");
	char token[TOKEN_MAX];

	if (!read_token(d->opts.admin_token_file, token, sizeof token)) {
		fputs("admin calls need --admin-token-file (a token of 16 "
		      "characters or more)\n", f);
		return 403;
	}
	if (!h || strncmp(h, "Bearer ", 7) || !same_secret(h + 7, token)) {
		static uint64_t logged_ms;
		uint64_t now = loop_now_ms();

		memset(token, 0, sizeof token);
		if (!logged_ms || now - logged_ms >= 10000) {  /* no log flood */
			logged_ms = now;
			log_warn("http: an admin call without the admin token "
				 "was refused");
		}
		fputs("admin calls need \"Authorization: Bearer TOKEN\"\n", f);
		return 401;
	}
	memset(token, 0, sizeof token);
	return 0;
}

int daemon_on_fault(void *arg, struct http_request *req, FILE *f)
{
	struct daemon *d = arg;
	const char *error = http_request_arg(req, "error");
	unsigned long delay, secs;
	char what[160], num[32];
	int err = 0, st = admin_auth(d, req, f);

	if (st)
		return st;
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
	if (!arg_num(req, "delay_ms", STORE_IO_FAULT_MAX_DELAY_MS, &delay) ||
	    !arg_num(req, "seconds", 600, &secs)) {
		fprintf(f, "delay_ms wants 0..%d, seconds 0..600\n",
			STORE_IO_FAULT_MAX_DELAY_MS);
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
