/*
 * triplexctl drill --dir DIR [--faults LIST] [--size SIZE] [--hold S]
 *                  [--recover-timeout S] [--max-time S] [--json]
 *
 * A chaos drill against a dev cluster (dev up --dir DIR): it creates a
 * scratch volume of its own, writes to it all along through an
 * acknowledged-write ledger, and injects each fault in turn (kill -9 of a
 * replica's node, kill -9 of the engine's node, an iptables partition of
 * a replica's node, store latency, a full disk). After each it waits for
 * recovery (every replica in sync, writes acknowledged again), reads every
 * block back against the ledger and compares the replicas' files. The
 * report gives per fault the time to recover, the writes acknowledged,
 * the writes lost (must be 0) and whether the replicas are identical.
 * Exit 0 only if every fault landed and recovered with nothing lost.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "ctl.h"
#include "drill.h"

struct result {
	enum drill_fault fault;
	char target[16];
	char inject[256], landed[160], heal[256], why[256];
	bool ok_inject, ok_landed, ok_heal, recovered, identical;
	double fault_s, recover_s, max_stall_s;
	uint64_t acked, failed;
	int64_t lost;
};

struct drill_args {
	const char *dir, *faults, *size;
	double hold_s, recover_s, max_s;
	bool json;
};

static double since(const struct drill *d) { return ctl_mono_s() - d->t0; }

/* SIGINT/SIGTERM: end the fault that holds, heal it, clean up, report. */
static volatile sig_atomic_t interrupted;

static void sleep_s(double s)
{
	for (double end = ctl_mono_s() + s; ctl_mono_s() < end;)
		ctl_sleep_100ms();
}

/* --- the volume's state --------------------------------------------- */

static int replica_state(struct meta *m, const char *vol, const char *node,
			 char *attached, size_t alen)
{
	struct cluster_volume v;

	attached[0] = '\0';
	if (cluster_volume_get(m, vol, &v) < 0)
		return -1;
	snprintf(attached, alen, "%s", v.attached);
	for (int k = 0; k < v.nplacement; k++)
		if (!strcmp(v.placement[k].node, node))
			return v.placement[k].state;
	return -1;
}

static bool node_in(const struct cluster_node *nodes, size_t n, const char *id)
{
	for (size_t i = 0; i < n; i++)
		if (!strcmp(nodes[i].id, id))
			return true;
	return false;
}

/* Served by a live node, every replica in sync on a live node. */
static bool all_in_sync(struct meta *m, const char *vol)
{
	struct cluster_node *nodes = NULL;
	struct cluster_volume v;
	size_t n = 0;
	bool ok;

	if (cluster_volume_get(m, vol, &v) < 0 || !v.attached[0] ||
	    v.served_epoch != v.epoch || cluster_node_list(m, &nodes, &n) < 0)
		return false;
	ok = node_in(nodes, n, v.attached);
	for (int k = 0; ok && k < v.nplacement; k++)
		ok = v.placement[k].state == CLUSTER_REPLICA_IN_SYNC &&
		     !v.placement[k].doubt && node_in(nodes, n, v.placement[k].node);
	free(nodes);
	return ok;
}

/* The node a fault goes to: the engine's for kill-engine, else the
 * first live one that is not the engine's. */
static const struct dev_node *pick_target(struct drill *d, struct meta *m,
					  enum drill_fault f)
{
	struct cluster_volume v;

	if (cluster_volume_get(m, d->vol, &v) < 0)
		return NULL;
	for (int i = 0; i < d->nnodes; i++) {
		bool engine = !strcmp(d->nodes[i].id, v.attached);

		if (engine == (f == FAULT_KILL_ENGINE))
			return &d->nodes[i];
	}
	return NULL;
}

/* --- one fault ------------------------------------------------------------ */

/* While the fault holds: the sign that it landed. */
static void hold(struct drill *d, struct meta *m, struct result *r,
		 const struct dev_node *t)
{
	double start = ctl_mono_s(), end = start + d->hold_s;
	/* A replica leaves once its engine's request times out (the
	 * engine's --io-timeout-ms): a fault that should make it leave
	 * holds until it has, for up to 30 s more. */
	double grace = r->fault == FAULT_LATENCY ? end : end + 30;
	char attached[CLUSTER_NAME_MAX];
	bool left = false;

	if (r->fault == FAULT_KILL_ENGINE)
		end = grace = start + d->recover_s;  /* until another node serves */
	while (!interrupted && (ctl_mono_s() < end || (!left && ctl_mono_s() < grace))) {
		int st = replica_state(m, d->vol, t->id, attached, sizeof attached);

		if (r->fault == FAULT_KILL_ENGINE && attached[0] &&
		    strcmp(attached, t->id)) {
			snprintf(r->landed, sizeof r->landed, "%s took the volume "
				 "over %.1f s in", attached, ctl_mono_s() - start);
			r->ok_landed = true;
			return;
		}
		if (!left && st >= 0 && st != CLUSTER_REPLICA_IN_SYNC &&
		    r->fault != FAULT_KILL_ENGINE) {
			snprintf(r->landed, sizeof r->landed, "%s's replica left "
				 "the in-sync set %.1f s in", t->id,
				 ctl_mono_s() - start);
			left = r->ok_landed = true;
		}
		ctl_sleep_100ms();
	}
	if (r->fault == FAULT_LATENCY) {
		snprintf(r->landed, sizeof r->landed, "writes went on for %.0f s",
			 d->hold_s);
		r->ok_landed = true;  /* the heal counts the delayed calls */
	} else if (!r->ok_landed) {
		snprintf(r->landed, sizeof r->landed, "no sign of it in %.0f s",
			 ctl_mono_s() - start);
	}
}

static bool wait_recovered(struct drill *d, struct meta *m, uint64_t acked0)
{
	double end = ctl_mono_s() + d->recover_s;
	uint64_t acked;

	while (ctl_mono_s() < end && !interrupted) {
		pthread_mutex_lock(&d->ledger.mu);
		acked = d->ledger.n_acked;
		pthread_mutex_unlock(&d->ledger.mu);
		if (acked > acked0 && all_in_sync(m, d->vol))
			return true;
		ctl_sleep_100ms();
	}
	return false;
}

/* Byte for byte, the replicas' data files (the writer is paused and every
 * replica in sync). */
static bool replicas_identical(struct drill *d, char *why, size_t len)
{
	static char a[1 << 20], b[1 << 20];
	char path[PATH_MAX + 128];
	int fd[DEV_NODES];
	bool same = true;

	for (int i = 0; i < d->nnodes; i++) {
		snprintf(path, sizeof path, "%s/replicas/%s/data", d->nodes[i].dir, d->vol);
		if ((fd[i] = open(path, O_RDONLY | O_CLOEXEC)) < 0) {
			snprintf(why, len, "cannot open %s's replica file: %s",
				 d->nodes[i].id, strerror(errno));
			for (int k = 0; k < i; k++)
				close(fd[k]);
			return false;
		}
	}
	for (uint64_t off = 0; same && off < d->size; off += sizeof a) {
		ssize_t na = pread(fd[0], a, sizeof a, (off_t)off);

		for (int i = 1; same && i < d->nnodes; i++) {
			ssize_t nb = pread(fd[i], b, sizeof b, (off_t)off);

			if (na != nb || na < 0 || memcmp(a, b, (size_t)na)) {
				snprintf(why, len, "%s and %s differ in the MiB at "
					 "%" PRIu64, d->nodes[0].id, d->nodes[i].id, off);
				same = false;
			}
		}
	}
	for (int i = 0; i < d->nnodes; i++)
		close(fd[i]);
	return same;
}

/* After recovery: pause, read back, compare, resume. */
static void check(struct drill *d, struct meta *m, struct result *r)
{
	char why[256] = "";

	if (!ledger_pause(&d->ledger, d->recover_s)) {
		snprintf(r->why, sizeof r->why, "a write did not return in %.0f s",
			 d->recover_s);
		r->lost = -1;
		ledger_resume(&d->ledger);
		return;
	}
	r->lost = ledger_verify(&d->ledger, why, sizeof why);
	if (why[0])
		snprintf(r->why, sizeof r->why, "%s", why);
	/* Writes the pause let finish may still be on their way to a
	 * replica being caught up: in sync again first. */
	for (double end = ctl_mono_s() + d->recover_s;
	     !all_in_sync(m, d->vol) && ctl_mono_s() < end;)
		ctl_sleep_100ms();
	r->identical = replicas_identical(d, why, sizeof why);
	if (!r->identical && !r->why[0])
		snprintf(r->why, sizeof r->why, "%s", why);
	ledger_resume(&d->ledger);
}

static void run_fault(struct drill *d, struct meta *m, enum drill_fault f,
		      struct result *r)
{
	const struct dev_node *t = pick_target(d, m, f);
	uint64_t acked0, failed0, acked, failed;
	double gap, t_inject, t_heal;

	memset(r, 0, sizeof *r);
	r->fault = f;
	if (!t) {
		snprintf(r->why, sizeof r->why, "no node to inject it on");
		return;
	}
	snprintf(r->target, sizeof r->target, "%s", t->id);
	ledger_sample(&d->ledger, &acked0, &failed0, &gap);
	t_inject = ctl_mono_s();
	r->ok_inject = drill_fault_inject(d, f, t, r->inject, sizeof r->inject) == 0;
	if (r->ok_inject)
		hold(d, m, r, t);
	t_heal = ctl_mono_s();
	r->fault_s = t_heal - t_inject;
	r->ok_heal = drill_fault_heal(d, f, t, r->heal, sizeof r->heal) == 0;
	pthread_mutex_lock(&d->ledger.mu);
	acked = d->ledger.n_acked;
	pthread_mutex_unlock(&d->ledger.mu);
	r->recovered = wait_recovered(d, m, acked);
	r->recover_s = ctl_mono_s() - t_heal;
	ledger_sample(&d->ledger, &acked, &failed, &r->max_stall_s);
	r->acked = acked - acked0;
	r->failed = failed - failed0;
	if (!r->recovered)
		snprintf(r->why, sizeof r->why, "not recovered in %.0f s (every "
			 "replica in sync, writes acknowledged)", d->recover_s);
	check(d, m, r);
}

static bool result_ok(const struct result *r)
{
	return r->ok_inject && r->ok_landed && r->ok_heal && r->recovered &&
	       r->lost == 0 && r->identical;
}

/* --- report ---------------------------------------------------------------- */

static void print_human(const struct drill *d, const struct result *rs, int n,
			bool pass)
{
	uint64_t acked = 0, failed = 0;
	int64_t lost = 0;

	printf("%-12s %-6s %7s %9s %9s %8s %6s %5s %s\n", "FAULT", "NODE",
	       "FAULT-S", "RECOVER-S", "MAX-STALL", "ACKED", "FAILED", "LOST",
	       "IDENTICAL");
	for (int i = 0; i < n; i++) {
		const struct result *r = &rs[i];

		printf("%-12s %-6s %7.1f %9.1f %9.1f %8" PRIu64 " %6" PRIu64
		       " %5" PRId64 " %s\n", drill_fault_name(r->fault),
		       r->target, r->fault_s, r->recover_s, r->max_stall_s,
		       r->acked, r->failed, r->lost, r->identical ? "yes" : "NO");
		printf("    %s; %s; %s%s%s\n", r->inject, r->landed, r->heal,
		       r->why[0] ? "; " : "", r->why);
		acked += r->acked;
		failed += r->failed;
		lost += r->lost > 0 ? r->lost : 0;
	}
	printf("volume %s (%" PRIu64 " MiB): %" PRIu64 " writes acknowledged, %"
	       PRIu64 " failed (never acknowledged), %" PRId64 " lost; %.1f s\n",
	       d->vol, d->size >> 20, acked, failed, lost, since(d));
	printf("RESULT: %s\n", pass ? "PASS" : "FAIL");
}

static void print_json(const struct drill *d, const struct result *rs, int n,
		       bool pass)
{
	json_t *a = json_array(), *o;
	char *text;

	for (int i = 0; i < n; i++) {
		const struct result *r = &rs[i];

		json_array_append_new(a, json_pack(
			"{s:s, s:s, s:s, s:s, s:s, s:s?, s:b, s:b, s:b, s:f, s:f,"
			" s:f, s:I, s:I, s:I, s:b}",
			"fault", drill_fault_name(r->fault), "node", r->target,
			"injected", r->inject, "landed", r->landed, "healed",
			r->heal, "problem", r->why[0] ? r->why : NULL,
			"fault_landed", r->ok_landed, "healed_ok", r->ok_heal,
			"recovered", r->recovered, "fault_s", r->fault_s,
			"recover_s", r->recover_s, "max_stall_s", r->max_stall_s,
			"acked", (json_int_t)r->acked, "failed", (json_int_t)r->failed,
			"lost", (json_int_t)r->lost, "identical", r->identical));
	}
	o = json_pack("{s:s, s:s, s:I, s:f, s:o, s:s}", "cluster", d->dir,
		      "volume", d->vol, "size", (json_int_t)d->size, "duration_s",
		      since(d), "faults", a, "result", pass ? "PASS" : "FAIL");
	text = json_dumps(o, JSON_INDENT(2));
	puts(text ? text : "{}");
	free(text);
	json_decref(o);
}

/* --- setup and teardown ------------------------------------------------ */

/* Only a flag: the main thread heals and cleans up. A second signal
 * kills at once (the iptables rules then go with atexit: they do not). */
static void on_signal(int sig)
{
	interrupted = 1;
	signal(sig, SIG_DFL);
}

static int parse_faults(const char *list, enum drill_fault *out, int *n)
{
	char buf[256], *save = NULL;

	*n = 0;
	snprintf(buf, sizeof buf, "%s", list);
	for (char *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
		int f = drill_fault_parse(t);

		if (f < 0 || *n >= 16)
			return ctl_fail("drill: unknown fault '%s' (kill, kill-engine, "
					"partition, latency, diskfull)", t);
		out[(*n)++] = (enum drill_fault)f;
	}
	return *n ? 0 : ctl_fail("drill: --faults names no fault");
}

static int parse_secs(const char *opt, const char *arg, double lo, double hi,
		      double *out)
{
	char *end;
	double v = strtod(arg, &end);

	if (*arg == '\0' || *end || v < lo || v > hi)
		return ctl_fail("drill: --%s wants seconds from %.0f to %.0f, got '%s'",
				opt, lo, hi, arg);
	*out = v;
	return 0;
}

static int parse_args(int argc, char **argv, struct drill_args *a)
{
	static const struct option longopts[] = {
		{ "dir", required_argument, NULL, 'd' },
		{ "faults", required_argument, NULL, 'f' },
		{ "size", required_argument, NULL, 's' },
		{ "hold", required_argument, NULL, 'H' },
		{ "recover-timeout", required_argument, NULL, 'R' },
		{ "max-time", required_argument, NULL, 'M' },
		{ "json", no_argument, NULL, 'j' },
		{ NULL, 0, NULL, 0 },
	};
	int c, r = 0;

	opterr = 0;
	optind = 1;
	while (r == 0 && (c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (c) {
		case 'd': a->dir = optarg; break;
		case 'f': a->faults = optarg; break;
		case 's': a->size = optarg; break;
		case 'j': a->json = true; break;
		case 'H': r = parse_secs("hold", optarg, 1, 300, &a->hold_s); break;
		case 'R': r = parse_secs("recover-timeout", optarg, 5, 3600, &a->recover_s); break;
		case 'M': r = parse_secs("max-time", optarg, 10, 86400, &a->max_s); break;
		default:
			return ctl_fail("drill: unknown or incomplete option '%s' "
					"(see triplexctl drill --help)", argv[optind - 1]);
		}
	}
	if (r)
		return r;
	if (optind != argc)
		return ctl_fail("drill: unexpected argument '%s'", argv[optind]);
	if (!a->dir)
		return ctl_fail("drill: --dir DIR is required: the drill runs "
				"against a dev cluster (triplexctl dev up --dir DIR)");
	return 0;
}

/* Its own scratch volume, never one that exists: the drill kills and
 * fills what it touches. */
static int create_scratch(struct drill *d, struct meta *m)
{
	struct cluster_volume_spec spec;
	struct cluster_volume v;
	char err[256];

	snprintf(d->vol, sizeof d->vol, "drill-%lld-%d", (long long)time(NULL),
		 (int)getpid());
	if (cluster_volume_get(m, d->vol, &v) != -ENOENT)
		return ctl_fail("drill: volume %s exists: the drill writes only to "
				"a scratch volume it creates", d->vol);
	cluster_volume_spec_init(&spec, d->vol, d->size);
	if (cluster_volume_create(m, &spec, &v, err, sizeof err) < 0)
		return ctl_fail("drill: cannot create its scratch volume: %s", err);
	if (cluster_volume_attach(m, d->vol, d->nodes[0].id, &v) < 0)
		return ctl_fail("drill: cannot attach %s to %s", d->vol, d->nodes[0].id);
	return 0;
}

static void delete_scratch(struct drill *d, struct meta *m)
{
	struct cluster_volume v;

	cluster_volume_detach(m, d->vol, &v);
	if (cluster_volume_delete_data(m, d->vol, true, &v) < 0)
		fprintf(stderr, "triplexctl: drill: could not delete %s; delete it "
			"with triplexctl volume delete %s --force\n", d->vol, d->vol);
}

static int drill_setup(struct drill *d, const struct drill_args *a, struct meta **m)
{
	d->dir = a->dir;
	d->hold_s = a->hold_s ? a->hold_s : 8;
	d->recover_s = a->recover_s ? a->recover_s : 90;
	d->max_s = a->max_s ? a->max_s : 1800;
	d->size = 64 << 20;
	if (a->size && ctl_parse_size("--size", a->size, &d->size))
		return 1;
	if (dev_cluster_load(d->dir, d->nodes, &d->nnodes, d->meta_url,
			     sizeof d->meta_url))
		return 1;
	for (int i = 0; i < d->nnodes; i++)
		if (!dev_running_pid(d->nodes[i].dir))
			return ctl_fail("drill: %s is not running (triplexctl dev "
					"restart %s --dir %s)", d->nodes[i].id,
					d->nodes[i].id, d->dir);
	if (ctl_meta_open(d->meta_url, m))
		return 1;
	if (create_scratch(d, *m)) {
		meta_close(*m);
		return 1;
	}
	atexit(drill_partition_cleanup);
	return 0;
}

/* The writer thread with SIGINT and SIGTERM blocked: they reach the main
 * thread, which acts on them. */
static int start_writer(struct drill *d)
{
	sigset_t block, old;
	int r;

	sigemptyset(&block);
	sigaddset(&block, SIGINT);
	sigaddset(&block, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &block, &old);
	r = ledger_start(&d->ledger, d->meta_url, d->vol, d->size, d->nodes,
			 d->nnodes);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	return r;
}

int drill_main(int argc, char **argv)
{
	struct drill_args a = { 0 };
	struct drill d = { 0 };
	struct result rs[16];
	enum drill_fault faults[16];
	struct meta *m;
	int nf, n = 0;
	bool pass = true;

	if (parse_args(argc, argv, &a) ||
	    parse_faults(a.faults ? a.faults : "kill,kill-engine,partition,latency,diskfull",
			 faults, &nf))
		return 1;
	d.t0 = ctl_mono_s();
	if (drill_setup(&d, &a, &m))
		return 1;
	if (start_writer(&d) < 0) {
		delete_scratch(&d, m);
		meta_close(m);
		return ctl_fail("drill: cannot start the writer");
	}
	fprintf(stderr, "drill: volume %s on %s, faults %s\n", d.vol, d.dir,
		a.faults ? a.faults : "kill,kill-engine,partition,latency,diskfull");
	sleep_s(2);  /* the writer connects and warms up */
	for (int i = 0; i < nf; i++) {
		if (interrupted) {
			fprintf(stderr, "drill: interrupted; %d fault(s) not run\n",
				nf - i);
			pass = false;
			break;
		}
		if (since(&d) > d.max_s) {
			fprintf(stderr, "drill: --max-time reached; %d fault(s) not run\n",
				nf - i);
			pass = false;
			break;
		}
		fprintf(stderr, "drill: %s ...\n", drill_fault_name(faults[i]));
		run_fault(&d, m, faults[i], &rs[n]);
		pass &= result_ok(&rs[n]);
		n++;
	}
	ledger_stop(&d.ledger);
	delete_scratch(&d, m);
	meta_close(m);
	if (a.json)
		print_json(&d, rs, n, pass);
	else
		print_human(&d, rs, n, pass);
	return pass ? 0 : 1;
}
