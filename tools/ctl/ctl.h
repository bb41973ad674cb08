/* triplexctl: one subcommand a file, dispatched from main.c. */
#ifndef TRIPLEX_CTL_H
#define TRIPLEX_CTL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cluster.h"
#include "meta.h"

struct ctl_cmd {
	const char *name;
	int (*fn)(int argc, char **argv);
	const char *help;
};

int volume_main(int argc, char **argv);
int node_main(int argc, char **argv);
int dev_main(int argc, char **argv);
int drill_main(int argc, char **argv);
/* dev_certs.c: DIR/tls/ca.{crt,key} (kept if present) and ID.{crt,key}
 * for each node id. 0 or -errno (openssl's output in DIR/tls/openssl.log). */
int dev_make_certs(const char *tls_dir, const char *const *ids, int n);
int dev_make_node_cert(const char *tls_dir, const char *id);
int status_main(int argc, char **argv);
int health_main(int argc, char **argv);

/* help.c: whether arg is -h or --help; whether argv (a whole command
 * line) asks for help (-h/--help anywhere before "--", or `help ...`);
 * print the help of the command argv names to stdout (0), or fail (1)
 * for a command that does not exist. */
bool ctl_is_help(const char *arg);
bool ctl_wants_help(int argc, char **argv);
int ctl_help(int argc, char **argv);
/* Print "triplexctl VERSION (git REV)" to stdout; returns 0. */
int ctl_version(void);

/* size.c: the volume size arg of option opt (parse_block_size), rounded
 * up to 4 KiB with a note on stderr; 0, or 1 after printing why not. */
int ctl_parse_size(const char *opt, const char *arg, uint64_t *out);

#define CTL_PROBLEM_TEXT 384  /* a problem's what and todo lines */

/* view.c: the cluster as the CLI shows it. */
struct ctl_down_node {
	char id[CLUSTER_NAME_MAX];
	char zone[CLUSTER_DOMAIN_MAX];  /* where its replicas were placed */
	int replicas;                   /* replicas placed on it */
};

/* A volume record in the store that does not decode. */
struct ctl_broken_record {
	char name[CLUSTER_NAME_MAX + 64];  /* its key after the prefix */
	char why[192];
};

/* progress.c: a long job an engine runs, as it last published it. */
struct ctl_job {
	char volume[CLUSTER_NAME_MAX];
	char engine[CLUSTER_NAME_MAX];   /* the node running it */
	char kind[16];                   /* rebuild, catch-up, scrub */
	char replica[CLUSTER_NAME_MAX];  /* the node copied to; "" for scrub */
	uint64_t epoch, done, total;     /* bytes */
	double rate_bps, elapsed_s;
	double stalled_s;                /* since done last moved */
	bool stale;                      /* not updated for a while */
};

/* The jobs of volume vol (NULL: of every volume): 0 or -errno; free
 * *jobs after. */
int ctl_jobs_load(struct meta *m, const char *vol, struct ctl_job **jobs,
		  size_t *n);
/* The jobs of one progress record (text, len) of volume vol, appended to
 * *jobs: 0 (a record that does not decode adds none) or -ENOMEM. Numbers
 * are made sane: done <= total, no negative rate or time. */
int ctl_jobs_parse(const char *vol, const char *text, size_t len,
		   struct ctl_job **jobs, size_t *n);
/* "1.5 GiB"; "rebuild of db onto n3 by n1: 42% (...), 85.0 MiB/s, ETA 12s" */
void ctl_bytes_approx(double b, char *buf, size_t len);
void ctl_eta_words(const struct ctl_job *j, char *buf, size_t len);
void ctl_job_words(const struct ctl_job *j, char *buf, size_t len);
/* A bar on stderr when it is a terminal: ctl_bar_draw redraws the line,
 * ctl_bar_end clears it for the final line. */
bool ctl_bar_wanted(void);
void ctl_bar_draw(const struct ctl_job *j);
void ctl_bar_end(void);
/* Seconds on the monotonic clock: waits are bounded by time, not by a
 * count of tries that may each take seconds. */
double ctl_mono_s(void);
void ctl_sleep_100ms(void);

/* volume_wait.c: wait until node's new replica of volume name is in sync,
 * with a bar on a terminal and a final line: 0, or 1 after saying why. */
int ctl_wait_rebuilt(struct meta *m, const char *name, const char *node);
/* One frame of the bar of name's scrub, if one runs: the bytes it has
 * done (0: none seen). */
uint64_t ctl_scrub_frame(struct meta *m, const char *name);

/* seen.c: a node's last heartbeat (control/agent_heartbeat.c). */
struct ctl_seen {
	char id[CLUSTER_NAME_MAX];
	char zone[CLUSTER_DOMAIN_MAX];
	double time;           /* its wall clock when it wrote it */
	uint64_t csum;         /* bad blocks its stores found */
	double csum_time;      /* when that last grew, by its clock; 0: never */
};

/* One heartbeat record: 0 or -EBADMSG. */
int ctl_seen_parse(const char *text, size_t len, struct ctl_seen *out);
/* Every node's: 0 or -errno; free *out after. */
int ctl_seen_load(struct meta *m, struct ctl_seen **out, size_t *n);
/* "2m 5s" */
void ctl_ago_words(double secs, char *buf, size_t len);

struct ctl_view {
	struct cluster_node *nodes;     /* up: registered, lease running */
	size_t nnodes;
	struct cluster_volume *vols;
	size_t nvols;
	struct ctl_down_node *down;     /* named by volumes, not registered */
	size_t ndown;
	struct ctl_broken_record *broken;
	size_t nbroken;
	struct ctl_job *jobs;           /* rebuilds and scrubs running */
	size_t njobs;
	struct ctl_seen *seen;          /* heartbeats, up and down nodes */
	size_t nseen;
};

enum ctl_vol_state {
	CTL_VOL_HEALTHY,     /* attached, every replica in sync on a live node */
	CTL_VOL_DEGRADED,    /* a replica missing, or on a node that is down */
	CTL_VOL_REBUILDING,  /* a live replica catching up or being rebuilt */
	CTL_VOL_FAULTED,     /* < min_replicas in sync on live nodes, or its
				engine's node is down: not served */
	CTL_VOL_DETACHED,    /* healthy, but attached nowhere */
	CTL_VOL_NSTATES,
};

/* Load every node and volume record: 0 or -errno (v is then empty).
 * ctl_view_free(v) frees what it holds; v itself is the caller's. */
int ctl_view_load(struct meta *m, struct ctl_view *v);
void ctl_view_free(struct ctl_view *v);
/* The record of node id if it is up, else NULL. */
const struct cluster_node *ctl_view_node(const struct ctl_view *v,
					 const char *id);
bool ctl_view_node_up(const struct ctl_view *v, const char *id);
/* Node id's last heartbeat, or NULL. */
const struct ctl_seen *ctl_view_seen(const struct ctl_view *v, const char *id);
/* The replicas of vol in sync on nodes that are up. */
int ctl_in_sync_up(const struct ctl_view *v, const struct cluster_volume *vol);
enum ctl_vol_state ctl_volume_state(const struct ctl_view *v,
				    const struct cluster_volume *vol);
const char *ctl_vol_state_name(enum ctl_vol_state s);
/* "in sync", "out of sync, catching up", "rebuilding 42%, node down". */
void ctl_replica_words(const struct ctl_view *v,
		       const struct cluster_volume *vol,
		       const struct cluster_replica *r, char *buf, size_t len);

/* health.c: the problems of a view. */
enum ctl_health { CTL_HEALTH_OK, CTL_HEALTH_WARN, CTL_HEALTH_ERR };

struct ctl_problem {
	enum ctl_health severity;
	const char *code;                /* "NODE_DOWN", static */
	char volume[CLUSTER_NAME_MAX];   /* "" if none */
	char node[CLUSTER_NAME_MAX];     /* "" if none */
	char what[CTL_PROBLEM_TEXT];     /* one line: what is wrong */
	char todo[CTL_PROBLEM_TEXT];     /* one line: what to do */
};

struct ctl_health_report {
	enum ctl_health health;          /* the worst problem's */
	struct ctl_problem *problems;
	size_t n;
};

/* Every problem of v into h (0 or -ENOMEM); ctl_health_free(h) after. */
int ctl_health_check(const struct ctl_view *v, struct ctl_health_report *h);
/* h holds only "the store at url cannot be read: err". */
int ctl_health_meta_down(struct ctl_health_report *h, const char *url,
			 const char *err);
void ctl_health_free(struct ctl_health_report *h);
const char *ctl_health_name(enum ctl_health h);
/* The words of a problem code for a summary line, "node(s) down". */
const char *ctl_problem_label(const char *code);

/* volume_show.c: the human tables of volume list, volume show and node
 * list (the down nodes included). */
void ctl_print_volume_table(const struct ctl_view *v);
void ctl_print_volume(const struct ctl_view *v, const struct cluster_volume *vol);
void ctl_print_node_table(const struct ctl_view *v);

/* Print "triplexctl: <msg>" to stderr; returns 1 (the exit code). */
int ctl_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Open the metadata store named by url, or by $TRIPLEX_META if url is
 * NULL: one that exists (a sqlite file that does not is an error, never
 * a new empty store). Returns 0, or 1 after printing why not. */
int ctl_meta_open(const char *url, struct meta **out);
/* The same, creating a sqlite file that does not exist (dev up). */
int ctl_meta_create(const char *url, struct meta **out);
/* The same without printing: 0, or -1 with the reason in err. *used is
 * the URL it tried (NULL if none was given). */
int ctl_meta_try_open(const char *url, struct meta **out, const char **used,
		      char *err, size_t errlen);

/* meta_members.c: each etcd member of url asked alone (nothing for a
 * sqlite: URL). */
struct ctl_member {
	char endpoint[256];
	bool ok;
	char err[256];
};
int ctl_meta_members(const char *url, struct ctl_member *out, size_t max,
		     size_t *n);
/* health.c: a META_DEGRADED problem for each member that does not answer. */
int ctl_health_members(struct ctl_health_report *h, const struct ctl_member *mb,
		       size_t n);

/* Take --etcd-cacert/--etcd-cert/--etcd-key out of argv (anywhere after
 * the program name); 0, or 1 after printing why not. */
int ctl_take_tls_options(int *argc, char **argv);

/* run.c: run argv[0] (from PATH) with argv, its output appended to log
 * (NULL: thrown away): its exit status, or -errno. */
int ctl_run(char *const argv[], const char *log);

/* triplexd.c: the triplexd beside this triplexctl ($TRIPLEXD overrides),
 * and running it with args (argv[0] is set) to the end: its exit status,
 * or 1 after printing why it could not run. */
void ctl_triplexd_path(char *out, size_t len);
int ctl_run_triplexd(const char *const *args);

#endif
