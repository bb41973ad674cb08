/*
 * What triplexd says over HTTP: /healthz, /readyz and /metrics in the
 * Prometheus text format 0.0.4. Every family is written once with its HELP
 * and TYPE lines and all of its samples together, as the format requires.
 * docs/operations.md lists every metric; keep it in step with the tables.
 */
#include <dirent.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

#include "daemon.h"
#include "version.h"

#define PROM_TYPE "text/plain; version=0.0.4; charset=utf-8"

/* A uint64_t counter or gauge at a fixed offset in some stats struct. */
struct u64_metric {
	const char *name;
	const char *type;
	const char *help;
	size_t off;
};

enum vol_src { SRC_VOL, SRC_STORE, SRC_FN };

/* A per-volume metric; rows with the same name form one family and differ
 * in their op label. */
struct vol_metric {
	const char *name;
	const char *type;
	const char *help;
	const char *op;     /* op="..." label, or NULL */
	enum vol_src src;
	size_t off;         /* SRC_VOL, SRC_STORE: uint64_t field */
	uint64_t (*fn)(const struct vol *v);
};

#define C "counter"
#define G "gauge"
#define VS(field) SRC_VOL, offsetof(struct vol_stats, field), NULL
#define SS(field) SRC_STORE, offsetof(struct store_stats, field), NULL
#define FN(fn) SRC_FN, 0, fn

static uint64_t vol_size_of(const struct vol *v) { return vol_size(v); }
static uint64_t vol_inflight_of(const struct vol *v) { return vol_inflight(v); }
static uint64_t vol_replicas_of(const struct vol *v) { return vol_nreplicas(v); }
static uint64_t vol_in_sync_of(const struct vol *v) { return vol_in_sync_count(v); }
static uint64_t vol_min_of(const struct vol *v) { return vol_min_replicas(v); }

/* In sync and connected: what a write can reach now. The in-sync set
 * never shrinks below min_replicas, so it alone cannot show a block. */
static uint64_t vol_available_of(const struct vol *v)
{
	uint64_t n = 0;

	for (unsigned i = 0; i < vol_nreplicas(v); i++) {
		struct vol_replica_info ri;

		vol_replica_info(v, i, &ri);
		n += ri.in_sync && ri.up;
	}
	return n;
}

static const char H_VREQ[] = "Client requests the engine completed, by kind.";
static const char H_SREQ[] = "Requests the replica store completed, by kind.";

static const struct vol_metric vol_metrics[] = {
	{ "triplex_volume_size_bytes", G, "Volume size.", NULL, FN(vol_size_of) },
	{ "triplex_volume_inflight_requests", G, "Requests started and not yet done.",
	  NULL, FN(vol_inflight_of) },
	{ "triplex_volume_requests_total", C, H_VREQ, "read", VS(reads) },
	{ "triplex_volume_requests_total", C, H_VREQ, "write", VS(writes) },
	{ "triplex_volume_requests_total", C, H_VREQ, "flush", VS(flushes) },
	{ "triplex_volume_requests_total", C, H_VREQ, "zero", VS(zeroes) },
	{ "triplex_volume_requests_total", C, H_VREQ, "trim", VS(trims) },
	{ "triplex_volume_read_bytes_total", C, "Bytes read by clients.", NULL,
	  VS(read_bytes) },
	{ "triplex_volume_write_bytes_total", C, "Bytes written by clients.", NULL,
	  VS(write_bytes) },
	{ "triplex_volume_partial_writes_total", C,
	  "Writes not aligned to 4 KiB blocks (read-modify-write).", NULL, VS(rmw) },
	{ "triplex_volume_checksum_errors_total", C,
	  "Blocks the engine found not matching their CRC-32C.", NULL, VS(csum_errors) },
	{ "triplex_volume_io_errors_total", C, "Requests that failed with an I/O error.",
	  NULL, VS(io_errors) },
	{ "triplex_volume_replicas", G, "Replicas of the volume.", NULL,
	  FN(vol_replicas_of) },
	{ "triplex_volume_in_sync_replicas", G, "Replicas in the in-sync set.", NULL,
	  FN(vol_in_sync_of) },
	{ "triplex_volume_available_replicas", G,
	  "Replicas in the in-sync set and connected now.", NULL,
	  FN(vol_available_of) },
	{ "triplex_volume_min_replicas", G,
	  "Writes wait, then fail, while fewer replicas than this are in sync.",
	  NULL, FN(vol_min_of) },
	{ "triplex_volume_repairs_total", C,
	  "Bad copies rewritten from a good replica after a read.", NULL, VS(repairs) },
	{ "triplex_volume_isr_removals_total", C,
	  "Replicas dropped from the in-sync set after a failed write.", NULL,
	  VS(isr_removals) },
	{ "triplex_volume_write_waits_total", C,
	  "Writes that waited because fewer than min_replicas had them.", NULL,
	  VS(write_waits) },
	{ "triplex_store_requests_total", C, H_SREQ, "read", SS(reads) },
	{ "triplex_store_requests_total", C, H_SREQ, "write", SS(writes) },
	{ "triplex_store_requests_total", C, H_SREQ, "flush", SS(flushes) },
	{ "triplex_store_requests_total", C, H_SREQ, "zero", SS(zeroes) },
	{ "triplex_store_requests_total", C, H_SREQ, "trim", SS(trims) },
	{ "triplex_store_read_bytes_total", C, "Bytes read from the local disk.", NULL,
	  SS(read_bytes) },
	{ "triplex_store_write_bytes_total", C, "Bytes written to the local disk.", NULL,
	  SS(write_bytes) },
	{ "triplex_store_checksum_errors_total", C,
	  "Store reads that found a block not matching its CRC-32C.", NULL,
	  SS(csum_errors) },
	{ "triplex_store_activity_log_waits_total", C,
	  "Writes that waited for an activity-log update.", NULL, SS(al_syncs) },
	{ "triplex_store_suspect_blocks", G,
	  "Blocks crash recovery found suspect when the volume was opened.", NULL,
	  SS(suspect_blocks) },
};

static const struct u64_metric nbd_metrics[] = {
	{ "triplex_nbd_connections_accepted_total", C, "NBD connections accepted.",
	  offsetof(struct nbd_server_stats, connections_accepted) },
	{ "triplex_nbd_connections_open", G, "NBD connections open now.",
	  offsetof(struct nbd_server_stats, connections_open) },
	{ "triplex_nbd_handshakes_failed_total", C, "NBD handshakes that failed.",
	  offsetof(struct nbd_server_stats, handshakes_failed) },
	{ "triplex_nbd_requests_total", C, "NBD transmission requests received.",
	  offsetof(struct nbd_server_stats, requests) },
	{ "triplex_nbd_request_errors_total", C, "NBD replies with a non-zero error.",
	  offsetof(struct nbd_server_stats, request_errors) },
	{ "triplex_nbd_connections_refused_total", C,
	  "NBD connections closed at once: --max-connections were open.",
	  offsetof(struct nbd_server_stats, connections_refused) },
	{ "triplex_nbd_reply_timeouts_total", C,
	  "NBD connections closed because the client took no reply for "
	  "--reply-timeout-ms.",
	  offsetof(struct nbd_server_stats, reply_timeouts) },
	{ "triplex_nbd_accept_failures_total", C,
	  "NBD accepts that failed for want of file descriptors or memory "
	  "(the listener then backs off).",
	  offsetof(struct nbd_server_stats, accept_failures) },
	{ "triplex_nbd_tls_handshakes_total", C,
	  "NBD connections that switched to TLS after STARTTLS.",
	  offsetof(struct nbd_server_stats, tls_handshakes) },
	{ "triplex_nbd_tls_handshakes_failed_total", C,
	  "NBD TLS handshakes that failed (bad key, untrusted certificate, "
	  "not TLS at all).",
	  offsetof(struct nbd_server_stats, tls_handshakes_failed) },
};

#define RS(field) offsetof(struct repl_service_stats, field)
static const struct u64_metric repl_metrics[] = {
	{ "triplex_replica_connections_accepted_total", C,
	  "Replication connections accepted (engines, including this node's).",
	  RS(connections_accepted) },
	{ "triplex_replica_connections_open", G, "Replication connections open now.",
	  RS(connections_open) },
	{ "triplex_replica_protocol_errors_total", C,
	  "Replication connections closed for a malformed header.",
	  RS(protocol_errors) },
	{ "triplex_replica_requests_total", C, "Replication requests answered.",
	  RS(requests) },
	{ "triplex_replica_request_errors_total", C,
	  "Replication replies with an error status.", RS(request_errors) },
	{ "triplex_replica_fenced_total", C,
	  "Requests refused because a newer epoch holds the volume.", RS(fenced) },
	{ "triplex_replica_superseded_total", C,
	  "Requests refused because they came from a connection the engine had "
	  "replaced (an older session of the current epoch).", RS(superseded) },
	{ "triplex_replica_checksum_errors_total", C,
	  "WRITEs refused because their data did not match its CRC-32C on arrival.",
	  RS(csum_errors) },
	{ "triplex_replica_volumes_open", G, "Replicas open in the replica service.",
	  RS(volumes_open) },
	{ "triplex_replica_epoch_refused_total", C,
	  "Requests refused because their epoch is not recorded in the "
	  "metadata store (a forged or stray epoch raise).", RS(epoch_refused) },
	{ "triplex_replica_auth_refused_total", C,
	  "Replication peers refused: no valid node certificate of the cluster "
	  "CA, a node that said hello as another, or a change from a node not "
	  "holding the volume's attachment.", RS(auth_refused) },
	{ "triplex_replica_connections_refused_total", C,
	  "Replication TCP connections closed on arrival: "
	  "--max-repl-connections were open.", RS(connections_refused) },
	{ "triplex_replica_handshake_timeouts_total", C,
	  "Replication connections closed because their TLS handshake was not "
	  "done in 10 s.", RS(handshake_timeouts) },
	{ "triplex_replica_accept_failures_total", C,
	  "Replication accepts that failed for want of file descriptors or "
	  "memory (the listener then backs off).", RS(accept_failures) },
};

static const struct u64_metric loop_metrics[] = {
	{ "triplex_loop_sqes_submitted_total", C, "io_uring submissions queued.",
	  offsetof(struct loop, submitted) },
	{ "triplex_loop_cqes_completed_total", C, "io_uring completions reaped.",
	  offsetof(struct loop, completed) },
};

static const struct u64_metric http_metrics[] = {
	{ "triplex_http_requests_total", C, "HTTP requests answered by a route, 404 or 405.",
	  offsetof(struct http_stats, requests) },
	{ "triplex_http_errors_total", C, "Of those, responses with a 4xx or 5xx status.",
	  offsetof(struct http_stats, errors) },
};

static void family(FILE *f, const char *name, const char *type, const char *help)
{
	fprintf(f, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static uint64_t u64_at(const void *base, size_t off)
{
	return *(const uint64_t *)((const char *)base + off);
}

static void emit_u64_table(FILE *f, const struct u64_metric *t, size_t n,
			   const void *base)
{
	for (size_t i = 0; i < n; i++) {
		family(f, t[i].name, t[i].type, t[i].help);
		fprintf(f, "%s %" PRIu64 "\n", t[i].name, u64_at(base, t[i].off));
	}
}

/* A label value with \, " and newline escaped. */
static void label_value(FILE *f, const char *s)
{
	for (; *s; s++) {
		if (*s == '\\' || *s == '"')
			fprintf(f, "\\%c", *s);
		else if (*s == '\n')
			fputs("\\n", f);
		else
			fputc(*s, f);
	}
}

static uint64_t vol_value(const struct vol_metric *m, struct vol *v)
{
	switch (m->src) {
	case SRC_VOL: return u64_at(vol_get_stats(v), m->off);
	case SRC_STORE: return u64_at(store_get_stats(vol_store(v)), m->off);
	case SRC_FN: break;
	}
	return m->fn(v);
}

/* The local volumes, then those whose engine runs here in cluster mode. */
static struct vol *volume_at(struct daemon *d, size_t i)
{
	if (i < d->nvols)
		return d->vols[i];
	return d->cluster ? agent_vol(d->cluster, i - d->nvols) : NULL;
}

static void emit_row(FILE *f, const struct vol_metric *m, const char *vol,
		     uint64_t value)
{
	fprintf(f, "%s{volume=\"", m->name);
	label_value(f, vol);
	if (m->op)
		fprintf(f, "\",op=\"%s", m->op);
	fprintf(f, "\"} %" PRIu64 "\n", value);
}

/* In cluster mode the stores are the replicas the replica service holds
 * open on this node, whoever's engine reaches them: a bad block counts
 * on the node whose copy it is. */
struct store_row {
	FILE *f;
	const struct vol_metric *m;
};

static void store_row(void *arg, const char *name, struct store *st)
{
	struct store_row *r = arg;

	emit_row(r->f, r->m, name, u64_at(store_get_stats(st), r->m->off));
}

static void emit_store_rows(FILE *f, const struct vol_metric *m, struct daemon *d)
{
	struct store_row r = { f, m };

	if (d->cluster)
		agent_for_each_replica(d->cluster, store_row, &r);
}

static void emit_vol_row(FILE *f, const struct vol_metric *m, struct daemon *d)
{
	struct vol *v;

	for (size_t i = 0; (v = volume_at(d, i)); i++) {
		/* A cluster volume's replicas are behind the replica service. */
		if (m->src == SRC_STORE && !vol_store(v))
			continue;
		emit_row(f, m, vol_name(v), vol_value(m, v));
	}
	if (m->src == SRC_STORE)
		emit_store_rows(f, m, d);
}

/* Request latency per volume, as a Prometheus histogram. */
static void emit_latency(FILE *f, struct daemon *d)
{
	static const char name[] = "triplex_volume_request_duration_seconds";
	struct vol *v;

	family(f, name, "histogram",
	       "Client requests from arrival at the engine to done, waits included.");
	for (size_t i = 0; (v = volume_at(d, i)); i++) {
		const struct vol_stats *st = vol_get_stats(v);
		uint64_t cum = 0;

		for (unsigned b = 0; b < VOL_LAT_BUCKETS; b++) {
			cum += st->lat_buckets[b];
			fprintf(f, "%s_bucket{volume=\"", name);
			label_value(f, vol_name(v));
			if (b < VOL_LAT_BUCKETS - 1)
				fprintf(f, "\",le=\"%g\"} %" PRIu64 "\n",
					(double)vol_lat_bounds_us[b] / 1e6, cum);
			else
				fprintf(f, "\",le=\"+Inf\"} %" PRIu64 "\n", cum);
		}
		fprintf(f, "%s_sum{volume=\"", name);
		label_value(f, vol_name(v));
		fprintf(f, "\"} %.6f\n", (double)st->lat_sum_us / 1e6);
		fprintf(f, "%s_count{volume=\"", name);
		label_value(f, vol_name(v));
		fprintf(f, "\"} %" PRIu64 "\n", cum);
	}
}

static void scalar(FILE *f, const char *name, const char *type,
		   const char *help, double v);

static const char *replica_state(const struct vol_replica_info *ri, bool rebuilding)
{
	if (rebuilding || ri->receiving)
		return "rebuilding";
	return ri->in_sync ? "in_sync" : "out_of_sync";
}

/* NAME{volume="...",node="..." with the values escaped; the caller ends it. */
static void replica_series(FILE *f, const char *name, struct vol *v,
			   const struct vol_replica_info *ri)
{
	fprintf(f, "%s{volume=\"", name);
	label_value(f, vol_name(v));
	fputs("\",node=\"", f);
	label_value(f, ri->node ? ri->node : "");
	fputc('"', f);
}

/* While a volume whose engine runs here is scrubbed: how far it is. */
static void emit_scrubs(FILE *f, struct daemon *d)
{
	static const char name[] = "triplex_volume_scrub_done_bytes";
	uint64_t done;
	struct vol *v;

	family(f, name, G, "Per volume being scrubbed: bytes of the volume "
	       "scrubbed so far (of triplex_volume_size_bytes).");
	for (size_t i = 0; (v = agent_vol(d->cluster, i)); i++) {
		if (!agent_vol_scrub_done(d->cluster, i, &done))
			continue;
		fprintf(f, "%s{volume=\"", name);
		label_value(f, vol_name(v));
		fprintf(f, "\"} %" PRIu64 "\n", done);
	}
}

/* One series per replica and state of the volumes whose engine runs here
 * (1: the replica's state), and the progress of each rebuild. */
static void emit_replicas(FILE *f, struct daemon *d)
{
	static const char *const states[] = { "in_sync", "out_of_sync", "rebuilding" };
	static const char st[] = "triplex_volume_replica_state";
	static const char done[] = "triplex_volume_resync_done_bytes";
	struct vol_replica_info ri;
	struct vol *v;
	uint64_t pos;

	if (!d->cluster)
		return;
	family(f, st, G, "Per replica of a volume whose engine runs here: 1 for "
	       "its state (in_sync, out_of_sync, rebuilding), 0 for the others.");
	for (size_t i = 0; (v = agent_vol(d->cluster, i)); i++)
		for (unsigned r = 0; r < vol_nreplicas(v); r++) {
			bool rb = agent_vol_resync_pos(d->cluster, i, r, &pos);

			vol_replica_info(v, r, &ri);
			for (size_t k = 0; k < 3; k++) {
				replica_series(f, st, v, &ri);
				fprintf(f, ",state=\"%s\"} %d\n", states[k],
					!strcmp(states[k], replica_state(&ri, rb)));
			}
		}
	family(f, done, G, "Per replica being resynced: bytes of the volume "
	       "behind its copy position (of triplex_volume_size_bytes).");
	for (size_t i = 0; (v = agent_vol(d->cluster, i)); i++)
		for (unsigned r = 0; r < vol_nreplicas(v); r++) {
			if (!agent_vol_resync_pos(d->cluster, i, r, &pos))
				continue;
			vol_replica_info(v, r, &ri);
			replica_series(f, done, v, &ri);
			fprintf(f, "} %" PRIu64 "\n", pos);
		}
	emit_scrubs(f, d);
}

static void emit_build_info(FILE *f)
{
	family(f, "triplex_build_info", G, "1, labelled with the version and "
	       "the git revision of this build.");
	fprintf(f, "triplex_build_info{version=\"%s\",revision=\"", tpx_version());
	label_value(f, tpx_git_rev());
	fputs("\"} 1\n", f);
}

/* The filesystem of the data directory (replicas and volumes). */
static void emit_disk(FILE *f, struct daemon *d)
{
	struct statvfs sv;

	if (!d->opts.data_dir || statvfs(d->opts.data_dir, &sv) < 0)
		return;
	scalar(f, "triplex_disk_size_bytes", G,
	       "Size of the filesystem holding the data directory.",
	       (double)sv.f_blocks * (double)sv.f_frsize);
	scalar(f, "triplex_disk_avail_bytes", G,
	       "Bytes free for triplexd on the filesystem of the data directory.",
	       (double)sv.f_bavail * (double)sv.f_frsize);
}

static void emit_volumes(FILE *f, struct daemon *d)
{
	const size_t n = sizeof vol_metrics / sizeof vol_metrics[0];

	for (size_t i = 0; i < n; i++) {
		const struct vol_metric *m = &vol_metrics[i];

		if (i == 0 || strcmp(m->name, vol_metrics[i - 1].name) != 0)
			family(f, m->name, m->type, m->help);
		emit_vol_row(f, m, d);
	}
}

/* Resident set size in bytes from /proc/self/statm, or -1. */
static double rss_bytes(void)
{
	unsigned long long size, resident;
	FILE *f = fopen("/proc/self/statm", "r");
	int n;

	if (!f)
		return -1;
	n = fscanf(f, "%llu %llu", &size, &resident);
	fclose(f);
	return n == 2 ? (double)resident * (double)sysconf(_SC_PAGESIZE) : -1;
}

static double open_fds(void)
{
	DIR *dir = opendir("/proc/self/fd");
	struct dirent *e;
	double n = -1;  /* the directory's own fd */

	if (!dir)
		return -1;
	while ((e = readdir(dir)))
		if (e->d_name[0] != '.')
			n++;
	closedir(dir);
	return n;
}

static double cpu_seconds(void)
{
	struct rusage ru;

	if (getrusage(RUSAGE_SELF, &ru) < 0)
		return -1;
	return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
	       (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

static void scalar(FILE *f, const char *name, const char *type,
		  const char *help, double v)
{
	if (v < 0)
		return;  /* unknown: leave the family out */
	family(f, name, type, help);
	fprintf(f, "%s %.15g\n", name, v);
}

/* A gauge that may be negative (an expired certificate). */
static void signed_gauge(FILE *f, const char *name, const char *help, double v)
{
	family(f, name, G, help);
	fprintf(f, "%s %.15g\n", name, v);
}

/* Whether this node reaches the metadata store, and how fresh its lease
 * is: past the TTL, the others take the node for dead. */
static void emit_meta(FILE *f, const struct agent *cm)
{
	struct agent_meta_health h;

	agent_meta_health(cm, &h);
	scalar(f, "triplex_meta_up", G, "1 when the last poll or lease renewal "
	       "of the metadata store succeeded.", h.up);
	scalar(f, "triplex_meta_errors_total", C, "Polls and lease renewals of "
	       "the metadata store that failed.", (double)h.errors);
	scalar(f, "triplex_meta_last_success_age_seconds", G, "Seconds since "
	       "the metadata store last answered.", h.ok_age_s);
	scalar(f, "triplex_node_lease_age_seconds", G, "Seconds since the "
	       "node's lease was last renewed; past the TTL the node counts "
	       "as down.", h.lease_age_s);
	scalar(f, "triplex_node_lease_ttl_seconds", G, "The node's lease TTL "
	       "(--lease-ttl).", h.lease_ttl_s);
}

/* With --fault-injection: proof that an injected fault landed. */
static void emit_fault(FILE *f, const struct store_io_fault *fi)
{
	scalar(f, "triplex_fault_active", G, "1 while an injected store fault "
	       "(POST /admin/fault) is in force.", store_io_fault_active(fi));
	scalar(f, "triplex_fault_delayed_ops_total", C, "Store I/O calls an "
	       "injected fault delayed.", (double)fi->delayed);
	scalar(f, "triplex_fault_failed_ops_total", C, "Store writes an "
	       "injected fault failed (ENOSPC).", (double)fi->failed);
}

static double wall_seconds(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void emit_process(FILE *f, struct daemon *d)
{
	scalar(f, "triplex_process_cpu_seconds_total", C,
	      "User and system CPU time used by triplexd.", cpu_seconds());
	scalar(f, "triplex_process_resident_memory_bytes", G,
	      "Resident memory size.", rss_bytes());
	scalar(f, "triplex_process_open_fds", G, "Open file descriptors.", open_fds());
	/* The scraper compares it with its own clock (TriplexClockSkew). */
	scalar(f, "triplex_time_seconds", G,
	       "This node's wall clock, seconds since the Unix epoch.",
	       wall_seconds());
	scalar(f, "triplex_process_start_time_seconds", G,
	      "Start time since the Unix epoch.", d->start_time);
}

static int on_metrics(void *arg, FILE *f)
{
	struct daemon *d = arg;

	scalar(f, "triplex_ready", G, "1 when /readyz answers 200.",
	      d->state == DAEMON_READY);
	scalar(f, "triplex_volumes", G, "Volumes served.",
	       (double)(d->nvols + (d->cluster ? agent_volumes(d->cluster) : 0)));
	emit_volumes(f, d);
	emit_latency(f, d);
	emit_replicas(f, d);
	emit_build_info(f);
	emit_disk(f, d);
	emit_u64_table(f, nbd_metrics, sizeof nbd_metrics / sizeof nbd_metrics[0],
		       nbd_server_get_stats(d->nbd));
	if (d->cluster)
		emit_meta(f, d->cluster);
	if (d->cluster)
		emit_u64_table(f, repl_metrics,
			       sizeof repl_metrics / sizeof repl_metrics[0],
			       agent_repl_stats(d->cluster));
	emit_u64_table(f, loop_metrics, sizeof loop_metrics / sizeof loop_metrics[0],
		       &d->loop);
	emit_u64_table(f, http_metrics, sizeof http_metrics / sizeof http_metrics[0],
		       http_server_get_stats(d->http));
	if (d->tls && tls_ctx_cert_expiry(d->tls))
		signed_gauge(f, "triplex_tls_cert_expiry_seconds",
		       "Seconds until the NBD TLS certificate expires (negative: "
		       "expired). SIGHUP reloads it.",
		       (double)(tls_ctx_cert_expiry(d->tls) - time(NULL)));
	if (d->node_tls && tls_ctx_cert_expiry(d->node_tls))
		signed_gauge(f, "triplex_node_cert_expiry_seconds",
		       "Seconds until the node certificate (--node-cert, "
		       "replication) expires (negative: expired). SIGHUP reloads it.",
		       (double)(tls_ctx_cert_expiry(d->node_tls) - time(NULL)));
	if (d->opts.fault_injection)
		emit_fault(f, &d->fault);
	emit_process(f, d);
	return 200;
}

/* 200 as long as the loop turns: this handler runs on it. */
static int on_healthz(void *arg, FILE *f)
{
	fputs("ok\n", f);
	return 200;
}

static int on_readyz(void *arg, FILE *f)
{
	static const char *const says[] = {
		[DAEMON_STARTING] = "starting\n",
		[DAEMON_READY] = "ready\n",
		[DAEMON_STOPPING] = "shutting down\n",
	};
	struct daemon *d = arg;

	fputs(says[d->state], f);
	return d->state == DAEMON_READY ? 200 : 503;
}

static const struct http_route routes[] = {
	{ "/healthz", "text/plain; charset=utf-8", on_healthz, NULL },
	{ "/readyz", "text/plain; charset=utf-8", on_readyz, NULL },
	{ "/metrics", PROM_TYPE, on_metrics, NULL },
	{ "/admin/fault", "text/plain; charset=utf-8", NULL, daemon_on_fault },
};

int daemon_start_http(struct daemon *d, const char *host, const char *port)
{
	return http_server_new(&d->loop, host, port, routes,
			       sizeof routes / sizeof routes[0], d, &d->http);
}
