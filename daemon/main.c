/* triplexd: serves the volumes of a data directory over NBD. */
#include <errno.h>
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "config_file.h"
#include "daemon.h"
#include "log.h"
#include "meta.h"
#include "parse.h"
#include "repl_proto.h"
#include "sd_notify.h"
#include "version.h"

static const char usage[] =
	"usage: triplexd --data-dir DIR (--listen-unix PATH | --listen-tcp HOST:PORT) [OPTIONS]\n"
	"       triplexd --data-dir DIR --create-volume NAME --size SIZE\n"
	"       triplexd --help | --version\n"
	"\n"
	"Serves the volumes of DIR over NBD; with --meta, joins a cluster as a\n"
	"node and serves the replicas and engines the metadata store gives it.\n"
	"\n"
	"options (each can also be set in the config file, as \"data-dir = DIR\";\n"
	"flags override the file):\n"
	"  --config FILE           the config file (default $TRIPLEXD_CONFIG, else\n"
	"                          /etc/triplex/triplexd.conf; a missing default is\n"
	"                          skipped); one \"option = value\" a line, option\n"
	"                          being a long option name below\n"
	"  --data-dir DIR          the node's data directory (required)\n"
	"  --listen-unix PATH      NBD on a Unix socket (created last: it appearing\n"
	"                          means ready)\n"
	"  --listen-tcp HOST:PORT  NBD over TCP (none by default)\n"
	"  --listen-http HOST:PORT /healthz, /readyz, /metrics (none by default)\n"
	"  --pid-file FILE         write the pid there once ready (none by default)\n"
	"  --log-level LEVEL       error, warn, info or debug (default info), to stderr\n"
	"  --log-format FORMAT     text or json (one object a line; default text);\n"
	"                          with --node-id every line names the node\n"
	"  --max-connections N     NBD connections open at once; more are closed at\n"
	"                          once (1..1000000, default 1024)\n"
	"  --reply-timeout-ms MS   close an NBD client that takes no reply for MS\n"
	"                          milliseconds (1..3600000, default 60000)\n"
	"  --tls MODE              NBD STARTTLS: off, on (optional) or require (every\n"
	"                          option before STARTTLS refused); default require\n"
	"                          with credentials, off without\n"
	"  --tls-cert FILE         server certificate (PEM chain), with --tls-key FILE\n"
	"  --tls-psk FILE          pre-shared keys, lines of IDENTITY:HEXKEY\n"
	"  --tls-ca FILE           CA that client certificates must chain to\n"
	"  --tls-verify-peer yes|no  require a client certificate (needs --tls-ca;\n"
	"                          default no)\n"
	"  --tls-allow EXPORT=ID,..  only these TLS identities (PSK identity or\n"
	"                          certificate common name) may use EXPORT; repeatable\n"
	"                          (SIGHUP reloads the credential files)\n"
	"  --create-volume NAME    create a single-replica volume in DIR and exit\n"
	"  --size SIZE             its size: bytes, or K/M/G/T/P (= KiB/MiB/... powers\n"
	"                          of 1024) or KB/MB/GB/TB/PB (powers of 1000); rounded\n"
	"                          up to a multiple of 4 KiB, with a note\n"
	"\n"
	"cluster mode:\n"
	"  --meta URL              the metadata store: sqlite:FILE (created if missing),\n"
	"                          etcd://HOST:PORT,... or https://HOST:PORT,...\n"
	"  --etcd-cacert FILE      CA of the etcd members (https:// only)\n"
	"  --etcd-cert FILE        client certificate for etcd, with --etcd-key FILE\n"
	"  --node-id ID            this node's id (required with --meta)\n"
	"  --zone ZONE             its failure domain (required with --meta)\n"
	"  --rack RACK             its rack within the zone (default none)\n"
	"  --listen-repl HOST:PORT the replication listener (required with --meta)\n"
	"  --node-cert FILE        this node's certificate (PEM; its node id in a DNS\n"
	"                          subjectAltName), with --node-key FILE and\n"
	"                          --cluster-ca FILE: replication is mutual TLS, and\n"
	"                          only nodes of that CA are served or reached\n"
	"                          (required with --meta, unless --insecure)\n"
	"  --max-repl-connections N  replication TCP connections open at once; more\n"
	"                          are closed at once (1..1000000, default 4096)\n"
	"  --insecure              plaintext, unauthenticated replication: anyone who\n"
	"                          reaches --listen-repl can read and overwrite every\n"
	"                          replica (command line only; for tests)\n"
	"  --fault-injection       accept POST /admin/fault on --listen-http: store\n"
	"                          I/O delays and ENOSPC for `triplexctl drill`\n"
	"                          (command line only; off by default)\n"
	"  --admin-token-file FILE every POST /admin/... must carry \"Authorization:\n"
	"                          Bearer TOKEN\", TOKEN the file's first line (read\n"
	"                          at each call; none: every admin call is refused)\n"
	"  --write-timeout-ms MS   a write waiting for enough replicas fails with EIO\n"
	"                          after MS milliseconds (1..3600000, default 30000)\n"
	"  --io-timeout-ms MS      a replica request unanswered after MS milliseconds\n"
	"                          fails (1..3600000, default 5000)\n"
	"  --resync-rate RATE      resync and rebuild cap in bytes per second, units as\n"
	"                          for --size (default 256M, 0: no cap)\n"
	"  --lease-ttl SECONDS     the node's lease in the store (2..60, default 5)\n"
	"  --read-lease-ms MS      engines' read lease from their replicas\n"
	"                          (100..3000, default 2000)\n"
	"  -h, --help              this help;  --version  version and git revision\n"
	"\n"
	"example:\n"
	"  triplexd --data-dir /var/lib/triplex --meta sqlite:/var/lib/triplex/meta.db \\\n"
	"           --node-id n1 --zone zone-a --listen-repl 10.0.0.1:7100 \\\n"
	"           --listen-tcp 10.0.0.1:10809 --listen-http 10.0.0.1:9100\n";

/* Split "host:port", "[v6]:port" or ":port" into host (empty: any) and
 * *port (points into spec). Returns 0 or -EINVAL. */
static int split_host_port(const char *spec, char *host, size_t hostsz,
			   const char **port)
{
	const char *colon = strrchr(spec, ':');
	size_t n;
	char *end;
	unsigned long num;

	if (!colon || colon[1] == '\0')
		return -EINVAL;
	num = strtoul(colon + 1, &end, 10);
	if (*end != '\0' || num == 0 || num > 65535)
		return -EINVAL;
	n = (size_t)(colon - spec);
	if (n >= hostsz)
		return -EINVAL;
	memcpy(host, spec, n);
	host[n] = '\0';
	if (n >= 2 && host[0] == '[' && host[n - 1] == ']') {
		memmove(host, host + 1, n - 2);
		host[n - 2] = '\0';
	}
	*port = colon + 1;
	return 0;
}

static bool valid_host_port(const char *spec)
{
	char host[256];
	const char *port;

	return split_host_port(spec, host, sizeof host, &port) == 0;
}

/* A decimal number from lo to hi. 0 or -1. */
static int parse_range(const char *s, uint64_t lo, uint64_t hi, uint64_t *out)
{
	char *end;
	unsigned long long v = strtoull(s, &end, 10);

	if (*s < '0' || *s > '9' || *end || v < lo || v > hi)
		return -1;
	*out = v;
	return 0;
}

static int parse_ms(const char *s, uint64_t *out)
{
	return parse_range(s, 1, 3600000, out);
}

static int parse_lease_ttl(const char *s, int *out)
{
	uint64_t v;

	if (parse_range(s, 2, 60, &v) < 0)
		return -1;
	*out = (int)v;
	return 0;
}

static int parse_max_connections(const char *s, unsigned *out)
{
	uint64_t v;

	if (parse_range(s, 1, 1000000, &v) < 0)
		return -1;
	*out = (unsigned)v;
	return 0;
}

/* --size: parse_block_size, with a note when it was rounded up; the
 * caller says what is wrong with a bad one. */
static int parse_create_size(const char *s, uint64_t *out)
{
	uint64_t given;
	int r = parse_block_size(s, out, &given);

	if (r < 0)
		return -1;
	if (r > 0)
		fprintf(stderr, "triplexd: note: --size %s is %llu bytes, not a "
			"multiple of 4 KiB: rounded up to %llu bytes\n", s,
			(unsigned long long)given, (unsigned long long)*out);
	return 0;
}

/* Long options without a letter. */
enum {
	OPT_TLS = 256, OPT_TLS_CERT, OPT_TLS_KEY, OPT_TLS_CA, OPT_TLS_PSK,
	OPT_TLS_VERIFY, OPT_TLS_ALLOW, OPT_NODE_CERT, OPT_NODE_KEY, OPT_CLUSTER_CA,
	OPT_INSECURE, OPT_MAX_REPL_CONN, OPT_FAULT_INJECTION, OPT_ADMIN_TOKEN,
};

static int parse_tls_mode(const char *s)
{
	if (!strcmp(s, "off"))
		return NBD_TLS_OFF;
	if (!strcmp(s, "on"))
		return NBD_TLS_ON;
	if (!strcmp(s, "require"))
		return NBD_TLS_REQUIRE;
	return -1;
}

/* The --tls options; 1 if c was one, 0 if not, -1 on a bad value. */
static int parse_tls_arg(int c, const char *arg, struct daemon_opts *o,
			 char *err, size_t errsz)
{
	switch (c) {
	case OPT_TLS:
		o->tls_mode = parse_tls_mode(arg);
		if (o->tls_mode < 0) {
			snprintf(err, errsz, "--tls wants off, on or require, got '%s'", arg);
			return -1;
		}
		return 1;
	case OPT_TLS_CERT: o->tls.cert_file = arg; return 1;
	case OPT_TLS_KEY: o->tls.key_file = arg; return 1;
	case OPT_TLS_CA: o->tls.ca_file = arg; return 1;
	case OPT_TLS_PSK: o->tls.psk_file = arg; return 1;
	case OPT_TLS_VERIFY:
		if (strcmp(arg, "yes") && strcmp(arg, "no")) {
			snprintf(err, errsz, "--tls-verify-peer wants yes or no, got '%s'", arg);
			return -1;
		}
		o->tls.verify_peer = !strcmp(arg, "yes");
		return 1;
	case OPT_NODE_CERT: o->node_tls.cert_file = arg; return 1;
	case OPT_NODE_KEY: o->node_tls.key_file = arg; return 1;
	case OPT_CLUSTER_CA: o->node_tls.ca_file = arg; return 1;
	case OPT_TLS_ALLOW:
		if (o->ntls_allow == NBD_MAX_EXPORTS) {
			snprintf(err, errsz, "more than %d --tls-allow", NBD_MAX_EXPORTS);
			return -1;
		}
		o->tls_allow[o->ntls_allow++] = arg;
		return 1;
	}
	return 0;
}

/* The one table of options: the command line and the config file
 * (config_file.h: each key is a long option name) both go through it. */
static const struct option longopts[] = {
	{ "config", required_argument, NULL, 'F' },
	{ "data-dir", required_argument, NULL, 'd' },
	{ "listen-unix", required_argument, NULL, 'u' },
	{ "listen-tcp", required_argument, NULL, 't' },
	{ "listen-http", required_argument, NULL, 'H' },
	{ "pid-file", required_argument, NULL, 'p' },
	{ "log-level", required_argument, NULL, 'l' },
	{ "log-format", required_argument, NULL, 'j' },
	{ "meta", required_argument, NULL, 'M' },
	{ "node-id", required_argument, NULL, 'N' },
	{ "zone", required_argument, NULL, 'Z' },
	{ "rack", required_argument, NULL, 'R' },
	{ "listen-repl", required_argument, NULL, 'r' },
	{ "write-timeout-ms", required_argument, NULL, 'W' },
	{ "io-timeout-ms", required_argument, NULL, 'I' },
	{ "resync-rate", required_argument, NULL, 'S' },
	{ "lease-ttl", required_argument, NULL, 'T' },
	{ "read-lease-ms", required_argument, NULL, 'L' },
	{ "max-connections", required_argument, NULL, 'X' },
	{ "reply-timeout-ms", required_argument, NULL, 'Y' },
	{ "create-volume", required_argument, NULL, 'C' },
	{ "size", required_argument, NULL, 'z' },
	{ "etcd-cacert", required_argument, NULL, 'A' },
	{ "etcd-cert", required_argument, NULL, 'c' },
	{ "etcd-key", required_argument, NULL, 'k' },
	{ "tls", required_argument, NULL, OPT_TLS },
	{ "tls-cert", required_argument, NULL, OPT_TLS_CERT },
	{ "tls-key", required_argument, NULL, OPT_TLS_KEY },
	{ "tls-ca", required_argument, NULL, OPT_TLS_CA },
	{ "tls-psk", required_argument, NULL, OPT_TLS_PSK },
	{ "tls-verify-peer", required_argument, NULL, OPT_TLS_VERIFY },
	{ "tls-allow", required_argument, NULL, OPT_TLS_ALLOW },
	{ "node-cert", required_argument, NULL, OPT_NODE_CERT },
	{ "node-key", required_argument, NULL, OPT_NODE_KEY },
	{ "cluster-ca", required_argument, NULL, OPT_CLUSTER_CA },
	{ "max-repl-connections", required_argument, NULL, OPT_MAX_REPL_CONN },
	{ "insecure", no_argument, NULL, OPT_INSECURE },  /* command line only */
	{ "fault-injection", no_argument, NULL, OPT_FAULT_INJECTION },  /* ditto */
	{ "admin-token-file", required_argument, NULL, OPT_ADMIN_TOKEN },
	{ "help", no_argument, NULL, 'h' },
	{ "version", no_argument, NULL, 'V' },
	{ NULL, 0, NULL, 0 },
};

#define DEFAULT_CONFIG "/etc/triplex/triplexd.conf"

/* Apply option c (a longopts val) with argument arg to the options in
 * opts_arg. 0, or -1 with the reason in err (no "triplexd: " prefix: the
 * caller adds it, and FILE:LINE for the config file). */
static int apply_option(void *opts_arg, int c, const char *arg, char *err,
			size_t errsz)
{
	struct daemon_opts *o = opts_arg;
	int lvl;

	switch (c) {
	case 'F': break;  /* read before everything else: config_file_from_args */
	case 'd': o->data_dir = arg; break;
	case 'u': o->listen_unix = arg; break;
	case 't': o->listen_tcp = arg; break;
	case 'H': o->listen_http = arg; break;
	case 'p': o->pid_file = arg; break;
	case 'j':
		lvl = log_format_parse(arg);
		if (lvl < 0) {
			snprintf(err, errsz, "--log-format wants text or json, got '%s'", arg);
			return -1;
		}
		log_format = (enum log_format)lvl;
		break;
	case 'l':
		lvl = log_level_parse(arg);
		if (lvl < 0) {
			snprintf(err, errsz, "unknown log level '%s'", arg);
			return -1;
		}
		log_threshold = (enum log_level)lvl;
		break;
	case 'M': o->meta = arg; break;
	case 'A': o->etcd_cacert = arg; break;
	case 'c': o->etcd_cert = arg; break;
	case 'k': o->etcd_key = arg; break;
	case 'N': o->node_id = arg; break;
	case 'Z': o->zone = arg; break;
	case 'R': o->rack = arg; break;
	case 'r': o->listen_repl = arg; break;
	case 'W':
	case 'I':
	case 'Y':
		if (parse_ms(arg, c == 'W' ? &o->write_timeout_ms :
				  c == 'I' ? &o->io_timeout_ms :
					     &o->reply_timeout_ms) < 0) {
			snprintf(err, errsz, "--%s wants milliseconds from 1 "
				 "to 3600000, got '%s'",
				 c == 'W' ? "write-timeout-ms" :
				 c == 'I' ? "io-timeout-ms" : "reply-timeout-ms",
				 arg);
			return -1;
		}
		break;
	case 'T':
		if (parse_lease_ttl(arg, &o->lease_ttl_s) < 0) {
			snprintf(err, errsz, "--lease-ttl wants seconds "
				 "from 2 to 60, got '%s'", arg);
			return -1;
		}
		break;
	case 'X':
		if (parse_max_connections(arg, &o->max_connections) < 0) {
			snprintf(err, errsz, "--max-connections wants a "
				 "number from 1 to 1000000, got '%s'", arg);
			return -1;
		}
		break;
	case OPT_MAX_REPL_CONN:
		if (parse_max_connections(arg, &o->max_repl_connections) < 0) {
			snprintf(err, errsz, "--max-repl-connections wants a "
				 "number from 1 to 1000000, got '%s'", arg);
			return -1;
		}
		break;
	case 'L':
		if (parse_range(arg, 100, REPL_LEASE_MAX_MS, &o->read_lease_ms) < 0) {
			snprintf(err, errsz, "--read-lease-ms wants "
				 "milliseconds from 100 to %d, got '%s'",
				 REPL_LEASE_MAX_MS, arg);
			return -1;
		}
		break;
	case 'S':
		if (parse_size(arg, &o->resync_rate_bps) < 0 &&
		    strcmp(arg, "0") != 0) {
			snprintf(err, errsz, "--resync-rate wants bytes per "
				 "second (e.g. 200M, 100MB, 0 for no cap), got '%s'", arg);
			return -1;
		}
		if (!strcmp(arg, "0"))
			o->resync_rate_bps = 0;
		break;
	case 'C': o->create_volume = arg; break;
	case OPT_ADMIN_TOKEN: o->admin_token_file = arg; break;
	case 'z':
		if (parse_create_size(arg, &o->create_size) < 0) {
			snprintf(err, errsz, "--size wants a size such as 10G, "
				 "512MiB or 2GB (see triplexd --help), got '%s'", arg);
			return -1;
		}
		break;
	default:
		switch (parse_tls_arg(c, arg, o, err, errsz)) {
		case 1: break;
		case 0:
			snprintf(err, errsz, "option %d has no handler", c);
			return -1;
		default: return -1;
		}
	}
	return 0;
}

/* A line of the config file: any option but "config" itself (a file
 * naming another file would be read after it had already been chosen). */
static int apply_file_option(void *opts_arg, int c, const char *arg,
			     char *err, size_t errsz)
{
	if (c == 'F') {
		snprintf(err, errsz, "'config' is not a setting: give --config "
			 "on the command line");
		return -1;
	}
	return apply_option(opts_arg, c, arg, err, errsz);
}

/* The config file first (flags given after it override it), unless the
 * line asks only for --help or --version. */
static int load_config(int argc, char **argv, struct daemon_opts *o)
{
	bool help_or_version;
	const char *path = config_file_from_args(argc, argv, longopts, 'F',
						 &help_or_version);

	const char *dflt = getenv("TRIPLEXD_CONFIG");

	if (help_or_version)
		return 0;
	/* $TRIPLEXD_CONFIG moves the default, missing-is-fine file: the tests
	 * point it into their temp dir, so a machine's own
	 * /etc/triplex/triplexd.conf cannot change what they start. */
	if (!dflt || !dflt[0])
		dflt = DEFAULT_CONFIG;
	return config_file_load("triplexd", path ? path : dflt, path != NULL,
				longopts, apply_file_option, o);
}

static int parse_args(int argc, char **argv, struct daemon_opts *o)
{
	char err[512];
	int c;

	if (load_config(argc, argv, o) < 0)
		return -1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		switch (c) {
		case 'h': o->help = true; return 0;
		case 'V': o->version = true; return 0;
		case OPT_INSECURE: o->insecure = true; break;
		case OPT_FAULT_INJECTION: o->fault_injection = true; break;
		case '?':
		case ':':
			fprintf(stderr, "triplexd: unknown or incomplete option '%s' "
				"(see triplexd --help)\n", argv[optind - 1]);
			return -1;
		default:
			if (apply_option(o, c, optarg, err, sizeof err) < 0) {
				fprintf(stderr, "triplexd: %s\n", err);
				return -1;
			}
		}
	}
	if (optind < argc) {
		fprintf(stderr, "triplexd: unexpected argument '%s'\n", argv[optind]);
		return -1;
	}
	if (!o->data_dir) {
		fprintf(stderr, "triplexd: --data-dir is required\n");
		return -1;
	}
	if (o->create_volume || o->create_size) {
		if (!o->create_volume || !o->create_size) {
			fprintf(stderr, "triplexd: --create-volume and --size go "
				"together\n");
			return -1;
		}
		return 0;
	}
	if (o->listen_http && !valid_host_port(o->listen_http)) {
		fprintf(stderr, "triplexd: --listen-http wants HOST:PORT with a "
			"port from 1 to 65535, got '%s'\n", o->listen_http);
		return -1;
	}
	if (daemon_tls_check_opts(o) < 0)
		return -1;
	if (!o->listen_unix && !o->listen_tcp) {
		fprintf(stderr, "triplexd: give --listen-unix or --listen-tcp\n");
		return -1;
	}
	if ((o->etcd_cacert || o->etcd_cert || o->etcd_key) && !o->meta) {
		fprintf(stderr, "triplexd: --etcd-cacert, --etcd-cert and "
			"--etcd-key go with --meta https://...\n");
		return -1;
	}
	if (o->meta && (!o->node_id || !o->zone || !o->listen_repl)) {
		fprintf(stderr, "triplexd: --meta needs --node-id, --zone and "
			"--listen-repl\n");
		return -1;
	}
	return daemon_node_tls_check_opts(o);
}

static int export_vol(void *arg, struct vol *v)
{
	return nbd_server_add_export(((struct daemon *)arg)->nbd, v);
}

static void hide_vol(void *arg, const char *name)
{
	nbd_server_hide_export(((struct daemon *)arg)->nbd, name);
}

static void resize_vol(void *arg, struct vol *v)
{
	nbd_server_update_export(((struct daemon *)arg)->nbd, v);
}

static int start_cluster(struct daemon *d)
{
	const struct daemon_opts *o = &d->opts;
	char *url = o->meta ? meta_url_with_tls(o->meta, o->etcd_cacert,
						o->etcd_cert, o->etcd_key) :
		    NULL;
	struct agent_opts co = {
		.meta_url = url, .node_id = o->node_id, .zone = o->zone,
		.rack = o->rack, .data_dir = o->data_dir,
		.listen_repl = o->listen_repl, .nbd_addr = o->listen_tcp,
		.http_addr = o->listen_http,
		.write_timeout_ms = o->write_timeout_ms,
		.io_timeout_ms = o->io_timeout_ms,
		.resync_rate_bps = o->resync_rate_bps,
		.lease_ttl_s = o->lease_ttl_s,
		.read_lease_ms = o->read_lease_ms,
		.max_repl_connections = o->max_repl_connections,
		.repl_tls_server = &d->node_tls,
		.repl_tls_client = &d->node_tls_client,
		.export_vol = export_vol, .hide_vol = hide_vol,
		.resize_vol = resize_vol, .export_arg = d,
	};

	if (!o->meta)
		return 0;
	if (!url || daemon_node_tls_start(d) < 0) {
		free(url);
		return -1;
	}
	d->cluster = agent_start(&d->loop, d->store_io, &co);
	free(url); /* the agent opened the store with it and keeps no copy */
	return d->cluster ? 0 : -1;
}

static int listen_tcp(struct nbd_server *s, const char *spec)
{
	char host[256];
	const char *port;
	int ret = split_host_port(spec, host, sizeof host, &port);

	if (ret < 0)
		return ret;
	return nbd_server_listen_tcp(s, host[0] ? host : NULL, port);
}

static int start_http(struct daemon *d)
{
	const char *spec = d->opts.listen_http;
	char host[256];
	const char *port;
	int ret;

	if (!spec)
		return 0;
	if (split_host_port(spec, host, sizeof host, &port) < 0) {
		log_error("--listen-http wants HOST:PORT with a port from 1 "
			  "to 65535, got '%s'", spec);
		return -EINVAL;
	}
	ret = daemon_start_http(d, host[0] ? host : NULL, port);
	if (ret < 0) {
		log_error("cannot listen for HTTP on %s: %s", spec, strerror(-ret));
		return ret;
	}
	log_info("http: serving /healthz, /readyz, /metrics on %s", spec);
	return 0;
}

static int start_listeners(struct daemon *d)
{
	int ret;

	if (d->opts.listen_tcp) {
		ret = listen_tcp(d->nbd, d->opts.listen_tcp);
		if (ret == -EINVAL) {
			log_error("--listen-tcp wants HOST:PORT with a port from 1 "
				  "to 65535, got '%s'", d->opts.listen_tcp);
			return ret;
		}
		if (ret < 0) {
			log_error("cannot listen on %s: %s", d->opts.listen_tcp, strerror(-ret));
			return ret;
		}
	}
	/* The Unix socket last: its appearance tells scripts we are ready. */
	if (d->opts.listen_unix) {
		ret = nbd_server_listen_unix(d->nbd, d->opts.listen_unix);
		if (ret < 0) {
			log_error("cannot listen on %s: %s", d->opts.listen_unix, strerror(-ret));
			return ret;
		}
	}
	nbd_server_start(d->nbd);
	return 0;
}

static int write_pid_file(const char *path)
{
	FILE *f = fopen(path, "w");

	if (!f || fprintf(f, "%d\n", (int)getpid()) < 0 || fclose(f) != 0) {
		log_error("cannot write pid file %s: %s", path, strerror(errno));
		return -1;
	}
	return 0;
}

/* Type=notify: tell systemd we serve, once listeners and volumes are up
 * (the pid file already written: MAINPID needs no separate message). */
static void notify_ready(void)
{
	int ret = tpx_sd_notify("READY=1");

	if (ret < 0)
		log_warn("sd_notify READY=1 to %s: %s", getenv("NOTIFY_SOCKET"),
			 strerror(-ret));
}

static int run(struct daemon *d)
{
	struct timespec now;
	int ret = loop_init(&d->loop, 1024);

	clock_gettime(CLOCK_REALTIME, &now);
	d->start_time = (double)now.tv_sec + (double)now.tv_nsec / 1e9;
	if (ret < 0) {
		log_error("io_uring setup failed: %s", strerror(-ret));
		return 1;
	}
	store_io_uring_init(&d->io, &d->loop);
	store_io_fault_init(&d->fault, &d->io);
	d->store_io = d->opts.fault_injection ? &d->fault.io : &d->io;
	if (daemon_open_volumes(d) < 0)
		goto out;
	d->nbd = nbd_server_new(&d->loop, d->vols, d->nvols);
	if (d->nbd)
		nbd_server_set_max_connections(d->nbd, d->opts.max_connections);
	if (d->nbd)
		nbd_server_set_reply_timeout(d->nbd, d->opts.reply_timeout_ms);
	if (!d->nbd || daemon_tls_start(d) < 0 ||
	    daemon_watch_signals(d) < 0 || start_http(d) < 0 ||
	    start_cluster(d) < 0 || start_listeners(d) < 0)
		goto out;
	d->state = DAEMON_READY;
	if (d->opts.pid_file && write_pid_file(d->opts.pid_file) < 0)
		goto out;
	log_info("triplexd ready: %zu volume(s)", d->nvols);
	notify_ready();
	ret = loop_run(&d->loop);
	if (ret < 0)
		log_error("event loop failed: %s", strerror(-ret));
	/* Volumes are closed only after a clean drain: nothing in flight. */
	if (ret == 0 && d->exit_code == 0)
		daemon_close_volumes(d);
	/* The loop has stopped: the HTTP server's pending ops never complete. */
	http_server_free(d->http);
	agent_free(d->cluster);
	nbd_server_free(d->nbd);
	tls_ctx_free(d->tls);
	daemon_node_tls_free(d);
	loop_fini(&d->loop);
	return ret < 0 ? 1 : d->exit_code;
out:
	http_server_free(d->http);
	agent_free(d->cluster);
	nbd_server_free(d->nbd);
	tls_ctx_free(d->tls);
	daemon_node_tls_free(d);
	daemon_close_volumes(d);
	loop_fini(&d->loop);
	return 1;
}

int main(int argc, char **argv)
{
	struct daemon d;
	int code;

	memset(&d, 0, sizeof d);
	d.opts.resync_rate_bps = 256u << 20;
	d.opts.tls_mode = -1;
	if (parse_args(argc, argv, &d.opts) < 0)
		return 2;
	if (d.opts.help || d.opts.version) {
		if (d.opts.help)
			fputs(usage, stdout);
		else
			tpx_print_version(stdout, "triplexd");
		return 0;
	}
	if (d.opts.create_volume)
		return daemon_create_volume(d.opts.data_dir, d.opts.create_volume,
					    d.opts.create_size);
	log_set_node(d.opts.node_id);
	if (daemon_lock_data_dir(d.opts.data_dir) < 0)
		return 1;
	code = run(&d);
	if (d.opts.pid_file)
		unlink(d.opts.pid_file);
	return code;
}
