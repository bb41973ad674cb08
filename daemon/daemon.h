/* triplexd: the per-node daemon. */
#ifndef TRIPLEX_DAEMON_H
#define TRIPLEX_DAEMON_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/signalfd.h>

#include "agent.h"
#include "http.h"
#include "loop.h"
#include "server.h"
#include "store_io.h"
#include "store_io_fault.h"
#include "tls.h"
#include "volume.h"

struct daemon_opts {
	const char *data_dir;
	const char *listen_unix;
	const char *listen_tcp;
	const char *pid_file;
	const char *listen_http;
	/* Cluster mode (--meta): */
	const char *meta;
	const char *etcd_cacert, *etcd_cert, *etcd_key;
	const char *node_id;
	const char *zone;
	const char *rack;
	const char *listen_repl;
	uint64_t write_timeout_ms;
	uint64_t io_timeout_ms;
	int lease_ttl_s;          /* --lease-ttl; 0: the agent's default */
	uint64_t read_lease_ms;   /* --read-lease-ms; 0: the agent's default */
	unsigned max_connections; /* --max-connections; 0: the NBD default */
	unsigned max_repl_connections; /* 0: the replication default */
	uint64_t reply_timeout_ms; /* --reply-timeout-ms; 0: the NBD default */
	uint64_t resync_rate_bps;
	/* NBD TLS (--tls ...): mode NBD_TLS_*, -1 until given. */
	int tls_mode;
	struct tls_config tls;
	const char *tls_allow[NBD_MAX_EXPORTS];  /* "EXPORT=ID,ID" */
	size_t ntls_allow;
	/* Replication mutual TLS: --node-cert, --node-key, --cluster-ca. */
	struct tls_config node_tls;
	bool insecure;  /* --insecure: plaintext replication */
	bool fault_injection;  /* --fault-injection: POST /admin/fault */
	const char *admin_token_file;  /* bearer token of POST /admin/... */
	/* --create-volume NAME --size SIZE: create it and exit. */
	const char *create_volume;
	uint64_t create_size;
	bool help, version;       /* -h/--help, --version: print, exit 0 */
};

/* What /readyz reports. */
enum daemon_state {
	DAEMON_STARTING,   /* opening volumes, starting listeners */
	DAEMON_READY,      /* volumes open, listeners up */
	DAEMON_STOPPING,   /* signal received, draining */
};

struct daemon {
	struct daemon_opts opts;
	struct loop loop;
	struct store_io io;
	/* In front of io: the faults POST /admin/fault injects. The stores
	 * use store_io: &fault.io with --fault-injection, else &io. */
	struct store_io_fault fault;
	struct store_io *store_io;
	struct vol **vols;
	size_t nvols;
	struct nbd_server *nbd;
	struct loop_op sig_op;
	int sig_fd;
	struct signalfd_siginfo sig_info;
	struct loop_timer stop_timer;
	struct loop_timer idle_timer;
	int exit_code;
	enum daemon_state state;
	struct http_server *http;
	struct agent *cluster;   /* NULL unless --meta */
	struct tls_ctx *tls;     /* NBD's credentials; NULL without TLS */
	/* The node's replication credentials: serving replicas, and the
	 * engines' connections to other nodes. NULL without them. */
	struct tls_ctx *node_tls, *node_tls_client;
	double start_time;           /* unix seconds, for metrics */
};

/* fault.c: POST /admin/fault. */
struct http_request;
int daemon_on_fault(void *arg, struct http_request *req, FILE *f);

/* Open every volume in DATA_DIR/volumes. Returns 0 or -errno (logged). */
int daemon_open_volumes(struct daemon *d);
void daemon_close_volumes(struct daemon *d);

/* tls.c: load the NBD TLS credentials and give them to the server (0, or
 * -1 logged); on SIGHUP, load them again and swap them in, keeping the
 * old ones if the new ones do not load. */
int daemon_tls_start(struct daemon *d);
void daemon_tls_reload(struct daemon *d);
/* Check the --tls options together; -1 with a message on stderr. */
int daemon_tls_check_opts(struct daemon_opts *o);
/* The same for --node-cert, --node-key and --cluster-ca, and loading
 * them (before the cluster starts). */
int daemon_node_tls_check_opts(const struct daemon_opts *o);
int daemon_node_tls_start(struct daemon *d);
void daemon_node_tls_free(struct daemon *d);

/* Handle SIGTERM and SIGINT through the loop: a clean shutdown; SIGHUP
 * reloads the TLS credentials. */
int daemon_watch_signals(struct daemon *d);

/* Serve /healthz, /readyz and /metrics on host (NULL: any) and port.
 * Returns 0 or -errno. */
int daemon_start_http(struct daemon *d, const char *host, const char *port);

/* create.c: make volume name (size bytes, a multiple of 4096) in
 * data_dir/volumes; prints one line; returns the exit status. */
int daemon_create_volume(const char *data_dir, const char *name,
			 uint64_t size);

/* datadir.c: take DIR's lock for this process's life; the open fd, or
 * -errno after printing why (another triplexd holds it: its pid). */
int daemon_lock_data_dir(const char *dir);

#endif
