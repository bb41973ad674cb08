/*
 * triplexctl status [--json] [--meta URL]: the cluster's health at a
 * glance (HEALTH_OK/WARN/ERR with the reasons, nodes up and down, volumes
 * by state). triplexctl health detail [--json]: every problem with what to
 * do. Both exit 0 when the store could be read, 1 when it could not.
 */
#include <getopt.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <time.h>
#include <unistd.h>

#include "ctl.h"

struct status_args {
	const char *meta;
	bool json;
	bool watch;          /* status --watch: again every interval_s */
	unsigned interval_s;
	unsigned count;      /* screens to show; 0: until interrupted */
};

/* What status and health detail show: the view (empty when the store
 * could not be read) and its problems. */
struct status {
	struct ctl_view view;
	struct ctl_health_report health;
	const char *url;
	bool reachable;
};

static int parse_status_args(int argc, char **argv, const char *cmd,
			     struct status_args *a)
{
	static const struct option longopts[] = {
		{ "json", no_argument, NULL, 'j' },
		{ "meta", required_argument, NULL, 'm' },
		{ "watch", no_argument, NULL, 'w' },
		{ "interval", required_argument, NULL, 'i' },
		{ "count", required_argument, NULL, 'n' },
		{ NULL, 0, NULL, 0 },
	};
	bool watch_opts = !strcmp(cmd, "status");
	char *end;
	unsigned long v;
	int c;

	opterr = 0;
	optind = 1;
	while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		if (c == 'j') {
			a->json = true;
		} else if (c == 'm') {
			a->meta = optarg;
		} else if (c == 'w' && watch_opts) {
			a->watch = true;
		} else if ((c == 'i' || c == 'n') && watch_opts) {
			v = strtoul(optarg, &end, 10);
			if (*optarg < '0' || *optarg > '9' || *end || v < (c == 'i') ||
			    v > 86400)
				return ctl_fail("%s: --%s wants a number from %d to 86400, "
						"got '%s'", cmd, c == 'i' ? "interval" : "count",
						c == 'i', optarg);
			if (c == 'i')
				a->interval_s = (unsigned)v;
			else
				a->count = (unsigned)v;
		} else
			return ctl_fail("%s: unknown or incomplete option '%s' (see "
					"triplexctl %s --help)", cmd,
					argv[optind - 1], cmd);
	}
	if (optind != argc)
		return ctl_fail("%s: unexpected argument '%s'", cmd, argv[optind]);
	if ((a->interval_s || a->count) && !a->watch)
		return ctl_fail("%s: --interval and --count go with --watch", cmd);
	if (!a->interval_s)
		a->interval_s = 2;
	return 0;
}

/* 0, or -1 when the store cannot be read (st->health says so). */
static int status_load(const char *url, struct status *st)
{
	struct ctl_member members[16];
	struct meta *m;
	char err[512];
	size_t n;
	int r;

	memset(st, 0, sizeof *st);
	if (ctl_meta_try_open(url, &m, &st->url, err, sizeof err) < 0) {
		ctl_health_meta_down(&st->health, st->url, err);
		return -1;
	}
	r = ctl_view_load(m, &st->view);
	meta_close(m);
	if (r < 0) {
		snprintf(err, sizeof err, "cannot list its records: %s",
			 strerror(-r));
		ctl_health_meta_down(&st->health, st->url, err);
		return -1;
	}
	st->reachable = true;
	if (ctl_health_check(&st->view, &st->health) < 0)
		return -1;
	ctl_meta_members(st->url, members, sizeof members / sizeof members[0], &n);
	return ctl_health_members(&st->health, members, n) < 0 ? -1 : 0;
}

/* The store could not be read: say so on stderr too (one line), as
 * every other command does. Returns the exit status. */
static int status_exit(const struct status *st)
{
	if (st->reachable)
		return 0;
	return ctl_fail("%s", st->health.problems ?
			st->health.problems[0].what : "metadata store unreachable");
}

static void status_free(struct status *st)
{
	ctl_view_free(&st->view);
	ctl_health_free(&st->health);
}

/* One summary line per problem code, in the order first seen: "2
 * replica(s) out of sync: vol on n3, fv on n3". */
static void print_reasons(const struct ctl_health_report *h)
{
	for (size_t i = 0; i < h->n; i++) {
		const char *code = h->problems[i].code;
		size_t count = 0, shown = 0;
		bool seen = false;

		for (size_t k = 0; k < i && !seen; k++)
			seen = !strcmp(h->problems[k].code, code);
		if (seen)
			continue;
		for (size_t k = i; k < h->n; k++)
			count += !strcmp(h->problems[k].code, code);
		printf("            %zu %s", count, ctl_problem_label(code));
		for (size_t k = i; k < h->n && shown < 4; k++) {
			const struct ctl_problem *p = &h->problems[k];

			if (strcmp(p->code, code) || (!p->volume[0] && !p->node[0]))
				continue;
			printf("%s %s%s%s", shown++ ? "," : ":",
			       p->volume[0] ? p->volume : p->node,
			       p->volume[0] && p->node[0] ? " on " : "",
			       p->volume[0] ? p->node : "");
		}
		printf("%s\n", shown && count > shown ? ", ..." : "");
	}
	if (h->n == 1 && !strcmp(h->problems[0].code, "META_UNREACHABLE"))
		printf("            %s\n", h->problems[0].what);
}

static void print_nodes(const struct ctl_view *v)
{
	printf("  nodes:    %zu: %zu up, %zu down\n", v->nnodes + v->ndown,
	       v->nnodes, v->ndown);
	for (size_t i = 0; i < v->nnodes; i++)
		printf("%s%s (%s)", i ? ", " : "            up:   ",
		       v->nodes[i].id, v->nodes[i].zone);
	if (v->nnodes)
		putchar('\n');
	for (size_t i = 0; i < v->ndown; i++)
		printf("%s%s (%s)", i ? ", " : "            down: ",
		       v->down[i].id, v->down[i].zone[0] ? v->down[i].zone : "?");
	if (v->ndown)
		putchar('\n');
}

static void count_states(const struct ctl_view *v, size_t *counts)
{
	memset(counts, 0, CTL_VOL_NSTATES * sizeof *counts);
	for (size_t i = 0; i < v->nvols; i++)
		counts[ctl_volume_state(v, &v->vols[i])]++;
}

static void print_volumes(const struct ctl_view *v)
{
	size_t counts[CTL_VOL_NSTATES];
	int shown = 0;

	count_states(v, counts);
	printf("  volumes:  %zu", v->nvols + v->nbroken);
	for (int s = 0; s < CTL_VOL_NSTATES; s++)
		if (counts[s])
			printf("%s %zu %s", shown++ ? "," : ":", counts[s],
			       ctl_vol_state_name((enum ctl_vol_state)s));
	if (v->nbroken)
		printf("%s %zu broken", shown ? "," : ":", v->nbroken);
	putchar('\n');
}

/* Rebuilds and scrubs in progress, with rate and ETA. */
static void print_jobs(const struct ctl_view *v)
{
	char words[256];

	if (!v->njobs)
		return;
	printf("  jobs:     %zu running\n", v->njobs);
	for (size_t i = 0; i < v->njobs; i++) {
		ctl_job_words(&v->jobs[i], words, sizeof words);
		printf("            %s\n", words);
	}
}

static void print_status(const struct status *st)
{
	printf("  health:   %s\n", ctl_health_name(st->health.health));
	print_reasons(&st->health);
	printf("  metadata: %s (%s)\n", st->url ? st->url : "none given",
	       st->reachable ? "reachable" : "UNREACHABLE");
	if (!st->reachable)
		return;
	print_nodes(&st->view);
	print_volumes(&st->view);
	print_jobs(&st->view);
}

static json_t *problems_json(const struct ctl_health_report *h)
{
	json_t *a = json_array();

	for (size_t i = 0; i < h->n; i++) {
		const struct ctl_problem *p = &h->problems[i];

		json_array_append_new(a, json_pack("{s:s, s:s, s:s?, s:s?, s:s, s:s}",
			"severity", ctl_health_name(p->severity), "code", p->code,
			"volume", p->volume[0] ? p->volume : NULL,
			"node", p->node[0] ? p->node : NULL,
			"message", p->what, "action", p->todo));
	}
	return a;
}

static json_t *nodes_json(const struct ctl_view *v)
{
	json_t *a = json_array();

	for (size_t i = 0; i < v->nnodes; i++)
		json_array_append_new(a, json_pack("{s:s, s:s, s:s}", "id",
			v->nodes[i].id, "zone", v->nodes[i].zone, "state", "up"));
	for (size_t i = 0; i < v->ndown; i++)
		json_array_append_new(a, json_pack("{s:s, s:s, s:s}", "id",
			v->down[i].id, "zone", v->down[i].zone, "state", "down"));
	return a;
}

static json_t *volumes_json(const struct ctl_view *v)
{
	json_t *a = json_array();

	for (size_t i = 0; i < v->nvols; i++)
		json_array_append_new(a, json_pack("{s:s, s:s}", "name",
			v->vols[i].name, "state",
			ctl_vol_state_name(ctl_volume_state(v, &v->vols[i]))));
	for (size_t i = 0; i < v->nbroken; i++)
		json_array_append_new(a, json_pack("{s:s, s:s}", "name",
			v->broken[i].name, "state", "broken"));
	return a;
}

static json_t *jobs_json(const struct ctl_view *v)
{
	json_t *a = json_array();

	for (size_t i = 0; i < v->njobs; i++) {
		const struct ctl_job *j = &v->jobs[i];
		double eta = j->rate_bps >= 1 && j->total > j->done ?
			     (double)(j->total - j->done) / j->rate_bps : 0;

		json_array_append_new(a, json_pack(
			"{s:s, s:s, s:s, s:s?, s:I, s:I, s:f, s:f, s:f, s:b}",
			"volume", j->volume, "kind", j->kind, "engine", j->engine,
			"replica", j->replica[0] ? j->replica : NULL,
			"done_bytes", (json_int_t)j->done,
			"total_bytes", (json_int_t)j->total,
			"rate_bytes_per_second", j->rate_bps, "eta_seconds", eta,
			"stalled_seconds", j->stalled_s, "stale", j->stale));
	}
	return a;
}

static void print_json(json_t *o)
{
	char *text = json_dumps(o, JSON_INDENT(2));

	puts(text ? text : "{}");
	free(text);
	json_decref(o);
}

static void print_status_json(const struct status *st)
{
	json_t *o = json_pack("{s:s, s:o, s:{s:s?, s:b}}", "health",
			      ctl_health_name(st->health.health), "checks",
			      problems_json(&st->health), "meta", "url",
			      st->url, "reachable", st->reachable);

	if (st->reachable) {
		json_object_set_new(o, "nodes", nodes_json(&st->view));
		json_object_set_new(o, "volumes", volumes_json(&st->view));
		json_object_set_new(o, "jobs", jobs_json(&st->view));
	}
	print_json(o);
}

/* status --watch: a fresh screen on a terminal, a dated rule otherwise. */
static void watch_header(const struct status_args *a)
{
	char when[32];
	time_t now = time(NULL);
	struct tm tm;

	localtime_r(&now, &tm);
	strftime(when, sizeof when, "%Y-%m-%d %H:%M:%S", &tm);
	if (isatty(STDOUT_FILENO))
		printf("\033[H\033[2J");
	printf("--- %s, every %us (Ctrl-C stops)\n", when, a->interval_s);
}

int status_main(int argc, char **argv)
{
	struct status_args a = { 0 };
	struct status st;
	int ret;

	if (parse_status_args(argc, argv, "status", &a))
		return 1;
	for (unsigned i = 0;; i++) {
		if (a.watch && !a.json)
			watch_header(&a);
		status_load(a.meta, &st);
		if (a.json)
			print_status_json(&st);
		else
			print_status(&st);
		ret = status_exit(&st);
		status_free(&st);
		fflush(stdout);
		if (!a.watch || (a.count && i + 1 >= a.count))
			return ret;
		sleep(a.interval_s);
	}
}

static void print_detail(const struct ctl_health_report *h)
{
	printf("%s: %zu problem(s)\n", ctl_health_name(h->health), h->n);
	for (size_t i = 0; i < h->n; i++) {
		const struct ctl_problem *p = &h->problems[i];

		printf("%s %s", ctl_health_name(p->severity), p->code);
		if (p->volume[0])
			printf(" volume=%s", p->volume);
		if (p->node[0])
			printf(" node=%s", p->node);
		printf("\n    %s\n    do: %s\n", p->what, p->todo);
	}
}

static int health_detail(int argc, char **argv)
{
	struct status_args a = { 0 };
	struct status st;
	int ret;

	if (parse_status_args(argc, argv, "health detail", &a))
		return 1;
	status_load(a.meta, &st);
	if (a.json)
		print_json(json_pack("{s:s, s:o}", "health",
				     ctl_health_name(st.health.health), "checks",
				     problems_json(&st.health)));
	else
		print_detail(&st.health);
	ret = status_exit(&st);
	status_free(&st);
	return ret;
}

int health_main(int argc, char **argv)
{
	if (argc >= 2 && !strcmp(argv[1], "detail"))
		return health_detail(argc - 1, argv + 1);
	return ctl_fail("usage: triplexctl health detail [--json] [--meta URL] "
			"(see triplexctl health --help)");
}
