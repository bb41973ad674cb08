/*
 * triplexctl dev up --dir DIR [--size SIZE] [--etcd]: three triplexd on
 * loopback in three zones sharing one SQLite metadata file (or, with
 * --etcd, a three-member etcd started beside them), volume `demo` created,
 * attached to n1 and exported; DIR/cluster.json describes it all.
 * triplexctl dev down --dir DIR: stop them, then etcd (SIGTERM, then
 * SIGKILL). triplexctl dev restart NODE --dir DIR: stop that node and
 * start it again with its own command line, recording its new pid.
 * A node's pid is read from its data directory's lock (the triplexd
 * running there now, even one restarted by hand), never guessed.
 * Replication is mutual TLS with certificates made in DIR/tls (a cluster
 * CA and one per node), unless dev up --insecure. triplexctl dev cert
 * NODE --dir DIR makes one for a node added by hand.
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <jansson.h>
#include <libnbd.h>
#include <limits.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cluster.h"
#include "ctl.h"
#include "dev.h"

#define NODES DEV_NODES
#define WAIT_MS 20000

struct dev_etcd {
	char dir[PATH_MAX];
	int client_port, peer_port;
	pid_t pid;
};

static void sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000 };

	nanosleep(&ts, NULL);
}

/* The first port the kernel hands out to outgoing connections and to
 * bind(0); ports below it are taken only by those who ask for them. */
static int ephemeral_low(void)
{
	FILE *f = fopen("/proc/sys/net/ipv4/ip_local_port_range", "r");
	int lo = 32768;

	if (f) {
		if (fscanf(f, "%d", &lo) != 1 || lo < 2048)
			lo = 32768;
		fclose(f);
	}
	return lo;
}

/* n free loopback ports, all different: random ones below the ephemeral
 * range (so no outgoing connection takes one before the node binds it),
 * each held bound until all are chosen, then let go for the nodes. */
static int pick_ports(int *ports, int n)
{
	int fds[5 * NODES], lo = 1024, hi = ephemeral_low(), got = 0;

	if (n > (int)(sizeof fds / sizeof fds[0]))
		return -1;
	for (int tries = 0; got < n && tries < 1000; tries++) {
		struct sockaddr_in sa = { .sin_family = AF_INET,
					  .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
		int port = lo + (int)((unsigned)rand() % (unsigned)(hi - lo));
		int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

		if (fd < 0)
			break;
		sa.sin_port = htons((uint16_t)port);
		if (bind(fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
			close(fd);
			continue;
		}
		fds[got] = fd;
		ports[got++] = port;
	}
	for (int i = 0; i < got; i++)
		close(fds[i]);
	return got == n ? 0 : -1;
}

static int spawn(struct dev_node *n, const char *meta_url)
{
	char bin[PATH_MAX], repl[32], tcp[32], http[32], log[PATH_MAX + 16];
	char crt[PATH_MAX + 16], key[PATH_MAX + 16], ca[PATH_MAX + 16];
	int fd;

	ctl_triplexd_path(bin, sizeof bin);
	snprintf(repl, sizeof repl, "127.0.0.1:%d", n->repl_port);
	snprintf(tcp, sizeof tcp, "127.0.0.1:%d", n->nbd_port);
	snprintf(http, sizeof http, "127.0.0.1:%d", n->http_port);
	snprintf(log, sizeof log, "%s/triplexd.log", n->dir);
	snprintf(crt, sizeof crt, "%s/%s.crt", n->tls_dir, n->id);
	snprintf(key, sizeof key, "%s/%s.key", n->tls_dir, n->id);
	snprintf(ca, sizeof ca, "%s/ca.crt", n->tls_dir);
	n->pid = fork();
	if (n->pid < 0)
		return -errno;
	if (n->pid > 0)
		return 0;
	fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0644);
	if (fd >= 0) {
		dup2(fd, 1);
		dup2(fd, 2);
	}
	setsid();  /* a Ctrl-C in the shell does not reach the cluster */
	/* --fault-injection: a dev cluster is where `triplexctl drill` runs. */
	char *argv[] = { "triplexd", "--data-dir", n->dir, "--node-id", n->id,
			 "--zone", n->zone, "--meta", (char *)meta_url,
			 "--listen-repl", repl, "--listen-tcp", tcp,
			 "--listen-unix", n->sock, "--listen-http", http,
			 "--fault-injection", "--admin-token-file", n->admin_token,
			 "--node-cert", crt, "--node-key", key, "--cluster-ca", ca,
			 NULL };

	if (!n->tls_dir[0]) {  /* the three TLS options become one */
		argv[20] = "--insecure";
		argv[21] = NULL;
	}
	execv(bin, argv);
	fprintf(stderr, "cannot run %s: %s\n", bin, strerror(errno));
	_exit(127);
}

/* One etcd member, with the tuning of the reference HA design. */
static int spawn_etcd(struct dev_etcd *e, int k, const struct dev_etcd *all)
{
	char name[8], client[48], peer[48], cluster[3 * 64], log[PATH_MAX + 16];
	int fd;

	snprintf(name, sizeof name, "e%d", k + 1);
	snprintf(client, sizeof client, "http://127.0.0.1:%d", e->client_port);
	snprintf(peer, sizeof peer, "http://127.0.0.1:%d", e->peer_port);
	snprintf(cluster, sizeof cluster,
		 "e1=http://127.0.0.1:%d,e2=http://127.0.0.1:%d,"
		 "e3=http://127.0.0.1:%d", all[0].peer_port, all[1].peer_port,
		 all[2].peer_port);
	if ((size_t)snprintf(log, sizeof log, "%s.log", e->dir) >= sizeof log)
		return -ENAMETOOLONG;
	e->pid = fork();
	if (e->pid < 0)
		return -errno;
	if (e->pid > 0)
		return 0;
	fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0644);
	if (fd >= 0) {
		dup2(fd, 1);
		dup2(fd, 2);
	}
	setsid();
	execlp("etcd", "etcd", "--name", name, "--data-dir", e->dir,
	       "--listen-client-urls", client, "--advertise-client-urls", client,
	       "--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
	       "--initial-cluster", cluster, "--initial-cluster-state", "new",
	       "--heartbeat-interval=500", "--election-timeout=2500",
	       "--snapshot-count=10000", "--auto-compaction-retention=1h",
	       (char *)NULL);
	fprintf(stderr, "cannot run etcd: %s (install etcd-server)\n",
		strerror(errno));
	_exit(127);
}

static void stop_pids(const pid_t *pids, int n);

/* Start three members and open the store on them (the open waits for a
 * quorum: it asks for the cluster's status). */
static int start_etcd(const char *dir, struct dev_etcd *etcd,
		      const int *ports, char *url, size_t len, struct meta **m)
{
	char err[256];
	pid_t pids[NODES];
	int i, r = -1;

	for (i = 0; i < NODES; i++) {
		snprintf(etcd[i].dir, sizeof etcd[i].dir, "%s/etcd%d", dir, i + 1);
		etcd[i].client_port = ports[2 * i];
		etcd[i].peer_port = ports[2 * i + 1];
	}
	snprintf(url, len, "etcd://127.0.0.1:%d,127.0.0.1:%d,127.0.0.1:%d",
		 etcd[0].client_port, etcd[1].client_port, etcd[2].client_port);
	for (i = 0; i < NODES; i++)
		if (spawn_etcd(&etcd[i], i, etcd) < 0)
			break;
	for (int waited = 0; i == NODES && waited < WAIT_MS; waited += 500) {
		if ((r = meta_open(url, m, err, sizeof err)) == 0)
			return 0;
		sleep_ms(500);
	}
	for (int k = 0; k < i; k++)
		pids[k] = etcd[k].pid;
	stop_pids(pids, i);
	return ctl_fail("dev up: etcd did not start (see %s/etcd*.log)", dir);
}

static bool nodes_registered(struct meta *m)
{
	struct cluster_node *nodes;
	size_t n = 0;

	if (cluster_node_list(m, &nodes, &n) < 0)
		return false;
	free(nodes);
	return n >= NODES;
}

static bool export_ready(const char *sock, const char *name)
{
	struct nbd_handle *h = nbd_create();
	bool ok;

	if (!h)
		return false;
	ok = nbd_set_export_name(h, name) == 0 && nbd_connect_unix(h, sock) == 0 &&
	     nbd_get_size(h) > 0;
	nbd_close(h);
	return ok;
}

/* Fail early when a node died (bad option, port taken, ...). */
static bool nodes_alive(const struct dev_node *nodes, int n)
{
	for (int i = 0; i < n; i++)
		if (waitpid(nodes[i].pid, NULL, WNOHANG) != 0)
			return false;
	return true;
}

/* Up to WAIT_MS for ready(arg), while the n nodes started live. */
static bool wait_for(bool (*ready)(void *), void *arg,
		     const struct dev_node *nodes, int n)
{
	for (long waited = 0; waited < WAIT_MS && nodes_alive(nodes, n); waited += 100) {
		if (ready(arg))
			return true;
		sleep_ms(100);
	}
	return false;
}

static bool registered_cb(void *arg) { return nodes_registered(arg); }
static bool export_cb(void *arg) { return export_ready(arg, "demo"); }

static json_t *etcd_json(const struct dev_etcd *etcd)
{
	json_t *a = json_array();
	char buf[48];

	for (int i = 0; etcd && i < NODES; i++) {
		snprintf(buf, sizeof buf, "127.0.0.1:%d", etcd[i].client_port);
		json_array_append_new(a, json_pack("{s:i, s:s, s:s}", "pid",
						   (int)etcd[i].pid, "client",
						   buf, "data_dir",
						   etcd[i].dir));
	}
	return a;
}

static int write_cluster_json(const char *dir, struct dev_node *nodes,
			      const char *meta_url,
			      const struct dev_etcd *etcd)
{
	json_t *root = json_object(), *jn = json_array(), *uris = json_array();
	char path[PATH_MAX + 16], buf[PATH_MAX + 64];
	int ret;

	for (int i = 0; i < NODES; i++) {
		json_t *o = json_object();

		json_object_set_new(o, "id", json_string(nodes[i].id));
		json_object_set_new(o, "pid", json_integer(nodes[i].pid));
		json_object_set_new(o, "zone", json_string(nodes[i].zone));
		json_object_set_new(o, "data_dir", json_string(nodes[i].dir));
		json_object_set_new(o, "nbd_unix", json_string(nodes[i].sock));
		snprintf(buf, sizeof buf, "127.0.0.1:%d", nodes[i].nbd_port);
		json_object_set_new(o, "nbd_tcp", json_string(buf));
		snprintf(buf, sizeof buf, "127.0.0.1:%d", nodes[i].repl_port);
		json_object_set_new(o, "repl", json_string(buf));
		snprintf(buf, sizeof buf, "127.0.0.1:%d", nodes[i].http_port);
		json_object_set_new(o, "http", json_string(buf));
		json_array_append_new(jn, o);
	}
	snprintf(buf, sizeof buf, "nbd+unix:///demo?socket=%s", nodes[0].sock);
	json_array_append_new(uris, json_string(buf));
	snprintf(buf, sizeof buf, "nbd://127.0.0.1:%d/demo", nodes[0].nbd_port);
	json_array_append_new(uris, json_string(buf));
	json_object_set_new(root, "meta", json_string(meta_url));
	json_object_set_new(root, "tls_dir", json_string(nodes[0].tls_dir));
	json_object_set_new(root, "admin_token_file",
			    json_string(nodes[0].admin_token));
	json_object_set_new(root, "nodes", jn);
	json_object_set_new(root, "etcd", etcd_json(etcd));
	json_object_set_new(root, "volumes",
			    json_pack("[{s:s, s:s, s:o}]", "name", "demo",
				      "attached", nodes[0].id, "nbd_uris", uris));
	snprintf(path, sizeof path, "%s/cluster.json", dir);
	ret = json_dump_file(root, path, JSON_INDENT(2));
	json_decref(root);
	return ret;
}

static const struct dev_etcd *up_etcd; /* stopped by up_fail too */

static int up_fail(struct dev_node *nodes, int spawned, const char *what)
{
	pid_t pids[NODES];

	for (int i = 0; i < spawned; i++) {
		char cmd[PATH_MAX + 64];

		pids[i] = nodes[i].pid;
		fprintf(stderr, "--- %s/triplexd.log\n", nodes[i].dir);
		snprintf(cmd, sizeof cmd, "tail -n 5 '%s/triplexd.log' >&2", nodes[i].dir);
		if (system(cmd) != 0)
			fprintf(stderr, "(no log)\n");
	}
	stop_pids(pids, spawned);
	for (int i = 0; up_etcd && i < NODES; i++)
		pids[i] = up_etcd[i].pid;
	if (up_etcd)
		stop_pids(pids, NODES);
	return ctl_fail("dev up: %s", what);
}

/* DIR/admin.token (kept if there is one): the bearer token of the
 * nodes' POST /admin/..., readable by root only. */
static int up_admin_token(const char *dir, struct dev_node *nodes)
{
	char path[PATH_MAX + 16], hex[65];
	unsigned char raw[32];
	int fd, in;

	snprintf(path, sizeof path, "%s/admin.token", dir);
	for (int i = 0; i < NODES; i++)
		snprintf(nodes[i].admin_token, sizeof nodes[i].admin_token, "%s", path);
	if (access(path, R_OK) == 0)
		return 0;
	in = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
	if (in < 0 || read(in, raw, sizeof raw) != (ssize_t)sizeof raw) {
		if (in >= 0)
			close(in);
		return ctl_fail("dev up: cannot read /dev/urandom");
	}
	close(in);
	for (size_t i = 0; i < sizeof raw; i++)
		snprintf(hex + 2 * i, 3, "%02x", raw[i]);
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0 || dprintf(fd, "%s\n", hex) < 0) {
		if (fd >= 0)
			close(fd);
		return ctl_fail("dev up: cannot write %s: %s", path, strerror(errno));
	}
	close(fd);
	return 0;
}

/* The cluster CA and n1..n3's certificates in DIR/tls, or none. */
static int up_certs(const char *dir, struct dev_node *nodes, bool insecure)
{
	const char *ids[NODES];
	char tls_dir[PATH_MAX];

	snprintf(tls_dir, sizeof tls_dir, insecure ? "%.0s" : "%s/tls", dir);
	for (int i = 0; i < NODES; i++) {
		snprintf(nodes[i].tls_dir, sizeof nodes[i].tls_dir, "%s", tls_dir);
		ids[i] = nodes[i].id;
	}
	if (insecure) {
		printf("replication is plaintext (--insecure)\n");
		return 0;
	}
	if (dev_make_certs(tls_dir, ids, NODES) < 0)
		return ctl_fail("dev up: cannot make certificates in %s (see "
				"%s/openssl.log; is openssl installed?)", tls_dir,
				tls_dir);
	printf("replication is mutual TLS: cluster CA and node certificates "
	       "in %s\n", tls_dir);
	return 0;
}

static int dev_up(const char *dir, uint64_t size, bool with_etcd, bool insecure)
{
	struct dev_etcd etcd[NODES];
	struct dev_node nodes[NODES];
	char meta_url[PATH_MAX + 16], err[256];
	struct cluster_volume_spec spec;
	struct cluster_volume v;
	struct meta *m;
	int i, ports[5 * NODES];

	if (mkdir(dir, 0755) < 0 && errno != EEXIST)
		return ctl_fail("cannot create %s: %s", dir, strerror(errno));
	srand((unsigned)(getpid() ^ time(NULL)));
	if (pick_ports(ports, 5 * NODES) < 0)
		return ctl_fail("dev up: cannot find free loopback ports");
	if (with_etcd) {
		if (start_etcd(dir, etcd, ports + 3 * NODES, meta_url,
			       sizeof meta_url, &m))
			return 1;
		up_etcd = etcd;
		printf("started etcd e1 e2 e3 (%s)\n", meta_url);
	} else {
		snprintf(meta_url, sizeof meta_url, "sqlite:%s/meta.db", dir);
		if (ctl_meta_create(meta_url, &m))
			return 1;
	}
	for (i = 0; i < NODES; i++) {
		struct dev_node *n = &nodes[i];

		snprintf(n->id, sizeof n->id, "n%d", i + 1);
		snprintf(n->zone, sizeof n->zone, "zone-%c", 'a' + i);
		if ((size_t)snprintf(n->dir, sizeof n->dir, "%s/%s", dir, n->id) >= 100 ||
		    (size_t)snprintf(n->sock, sizeof n->sock, "%s/nbd.sock", n->dir) >= sizeof n->sock)
			return up_fail(nodes, i, "--dir is too long for a Unix socket path");
		if (mkdir(n->dir, 0755) < 0 && errno != EEXIST)
			return up_fail(nodes, i, "cannot create a node directory");
	}
	if (up_certs(dir, nodes, insecure))
		return up_fail(nodes, 0, "no certificates");
	if (up_admin_token(dir, nodes))
		return up_fail(nodes, 0, "no admin token");
	for (i = 0; i < NODES; i++) {
		struct dev_node *n = &nodes[i];

		n->repl_port = ports[3 * i];
		n->nbd_port = ports[3 * i + 1];
		n->http_port = ports[3 * i + 2];
		if (spawn(n, meta_url) < 0)
			return up_fail(nodes, i, "cannot start triplexd");
	}
	printf("started %s %s %s; waiting for them to register\n",
	       nodes[0].id, nodes[1].id, nodes[2].id);
	if (!wait_for(registered_cb, m, nodes, NODES))
		return up_fail(nodes, NODES, "the nodes did not register (see the logs above)");
	cluster_volume_spec_init(&spec, "demo", size);
	if (cluster_volume_get(m, "demo", &v) == -ENOENT &&
	    cluster_volume_create(m, &spec, &v, err, sizeof err) < 0)
		return up_fail(nodes, NODES, err);
	if (cluster_volume_attach(m, "demo", nodes[0].id, &v) < 0)
		return up_fail(nodes, NODES, "cannot attach demo");
	meta_close(m);
	if (!wait_for(export_cb, nodes[0].sock, nodes, NODES))
		return up_fail(nodes, NODES, "volume demo was not exported (see the logs above)");
	if (write_cluster_json(dir, nodes, meta_url,
			       with_etcd ? etcd : NULL) < 0)
		return up_fail(nodes, NODES, "cannot write cluster.json");
	printf("volume demo (%llu bytes, 3 replicas in zones a, b, c) served by n1 at\n"
	       "  nbd+unix:///demo?socket=%s\n  nbd://127.0.0.1:%d/demo\n"
	       "cluster described in %s/cluster.json; stop it with "
	       "'triplexctl dev down --dir %s'\n",
	       (unsigned long long)size, nodes[0].sock, nodes[0].nbd_port, dir, dir);
	return 0;
}

static bool all_gone(const pid_t *pids, int n)
{
	for (int i = 0; i < n; i++)
		if (pids[i] > 0 && kill(pids[i], 0) == 0)
			return false;
	return true;
}

static void stop_pids(const pid_t *pids, int n)
{
	for (int i = 0; i < n; i++)
		if (pids[i] > 0)
			kill(pids[i], SIGTERM);
	for (int waited = 0; waited < 15000 && !all_gone(pids, n); waited += 100)
		sleep_ms(100);
	for (int i = 0; i < n; i++)
		if (pids[i] > 0 && kill(pids[i], 0) == 0)
			kill(pids[i], SIGKILL);
}

/* The triplexd holding data_dir's lock (see daemon/datadir.c), 0 if none:
 * a pid in cluster.json may be stale, or another process's by now. */
pid_t dev_running_pid(const char *data_dir)
{
	char path[PATH_MAX + 16], buf[32];
	long pid = 0;
	ssize_t n;
	int fd;

	snprintf(path, sizeof path, "%s/triplexd.lock", data_dir);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	if (flock(fd, LOCK_SH | LOCK_NB) == 0) {
		close(fd);  /* nobody holds it: not running */
		return 0;
	}
	n = pread(fd, buf, sizeof buf - 1, 0);
	close(fd);
	if (n > 0) {
		buf[n] = '\0';
		pid = strtol(buf, NULL, 10);
	}
	return pid > 1 ? (pid_t)pid : 0;
}

/* A node's pid: from its lock when cluster.json names its directory. */
static pid_t node_pid(json_t *n)
{
	const char *d = json_string_value(json_object_get(n, "data_dir"));

	if (d)
		return dev_running_pid(d);
	return (pid_t)json_integer_value(json_object_get(n, "pid"));
}

static json_t *load_cluster_json(const char *dir, char *path, size_t len)
{
	json_error_t jerr;
	json_t *root;

	snprintf(path, len, "%s/cluster.json", dir);
	root = json_load_file(path, 0, &jerr);
	if (!root)
		ctl_fail("cannot read %s: %s", path, jerr.text);
	return root;
}

static int port_of(json_t *o, const char *key)
{
	const char *s = json_string_value(json_object_get(o, key));
	const char *colon = s ? strrchr(s, ':') : NULL;

	return colon ? atoi(colon + 1) : 0;
}

/* The node's command line back from its cluster.json entry. */
static int node_from_json(json_t *root, json_t *o, struct dev_node *n)
{
	const char *tls = json_string_value(json_object_get(root, "tls_dir"));
	const char *token = json_string_value(json_object_get(root, "admin_token_file"));
	const char *id = json_string_value(json_object_get(o, "id"));
	const char *zone = json_string_value(json_object_get(o, "zone"));
	const char *d = json_string_value(json_object_get(o, "data_dir"));
	const char *sock = json_string_value(json_object_get(o, "nbd_unix"));

	memset(n, 0, sizeof *n);
	if (!id || !zone || !d || !sock)
		return -1;
	snprintf(n->id, sizeof n->id, "%s", id);
	snprintf(n->zone, sizeof n->zone, "%s", zone);
	snprintf(n->dir, sizeof n->dir, "%s", d);
	snprintf(n->sock, sizeof n->sock, "%s", sock);
	snprintf(n->tls_dir, sizeof n->tls_dir, "%s", tls ? tls : "");
	snprintf(n->admin_token, sizeof n->admin_token, "%s", token ? token : "");
	n->nbd_port = port_of(o, "nbd_tcp");
	n->repl_port = port_of(o, "repl");
	n->http_port = port_of(o, "http");
	return n->nbd_port && n->repl_port && n->http_port ? 0 : -1;
}

/* A node's Unix socket appears once it serves (it is created last). */
static bool socket_cb(void *path)
{
	struct stat st;

	return stat(path, &st) == 0 && S_ISSOCK(st.st_mode);
}

int dev_cluster_load(const char *dir, struct dev_node *nodes, int *n,
		     char *meta, size_t metalen)
{
	char path[PATH_MAX + 16];
	json_t *root = load_cluster_json(dir, path, sizeof path), *o;
	const char *url;
	size_t i;

	if (!root)
		return 1;
	*n = 0;
	url = json_string_value(json_object_get(root, "meta"));
	json_array_foreach(json_object_get(root, "nodes"), i, o) {
		if (*n >= DEV_NODES || node_from_json(root, o, &nodes[*n]) < 0) {
			json_decref(root);
			return ctl_fail("%s: node %zu cannot be read", path, i + 1);
		}
		nodes[(*n)++].pid = node_pid(o);
	}
	snprintf(meta, metalen, "%s", url ? url : "");
	json_decref(root);
	if (!url || *n != DEV_NODES)
		return ctl_fail("%s names no metadata store or not %d nodes", path,
				DEV_NODES);
	return 0;
}

int dev_restart_node(const char *dir, const char *id, bool quiet)
{
	char path[PATH_MAX + 16];
	json_t *root = load_cluster_json(dir, path, sizeof path), *o, *found = NULL;
	const char *meta;
	struct dev_node n;
	pid_t old;
	size_t i;

	if (!root)
		return 1;
	json_array_foreach(json_object_get(root, "nodes"), i, o)
		if (!strcmp(json_string_value(json_object_get(o, "id")) ?: "", id))
			found = o;
	meta = json_string_value(json_object_get(root, "meta"));
	if (!found || !meta || node_from_json(root, found, &n) < 0) {
		json_decref(root);
		return ctl_fail("dev restart: %s names no node %s (nodes: n1, n2, n3)",
				path, id);
	}
	old = dev_running_pid(n.dir);
	if (old) {
		stop_pids(&old, 1);
		if (!quiet)
			printf("stopped %s (pid %d)\n", id, (int)old);
	}
	unlink(n.sock);  /* a killed daemon leaves its socket behind */
	if (spawn(&n, meta) < 0 || !wait_for(socket_cb, n.sock, &n, 1)) {
		json_decref(root);
		return ctl_fail("dev restart: %s did not start: see %s/triplexd.log",
				id, n.dir);
	}
	json_object_set_new(found, "pid", json_integer(n.pid));
	if (json_dump_file(root, path, JSON_INDENT(2)) < 0)
		fprintf(stderr, "triplexctl: cannot update %s\n", path);
	json_decref(root);
	if (!quiet)
		printf("restarted %s (pid %d) with its own command line; log "
		       "%s/triplexd.log\n", id, (int)n.pid, n.dir);
	return 0;
}

/* Node ids become file names and a certificate's DNS name; "ca" is the
 * CA's own files. */
static bool valid_node_id(const char *id)
{
	size_t len = strlen(id);

	if (len == 0 || len >= 64 || !strcmp(id, "ca"))
		return false;
	for (const char *p = id; *p; p++)
		if (!isalnum((unsigned char)*p) && !strchr("-_.", *p))
			return false;
	return id[0] != '.' && id[0] != '-';
}

/* A certificate of the cluster's CA (made first if DIR has none) for a
 * node added by hand, or for a cluster started without dev up. */
static int dev_cert(const char *dir, const char *id)
{
	char tls_dir[PATH_MAX];

	if (!valid_node_id(id))
		return ctl_fail("dev cert: '%s' is not a node id (letters, digits, "
				"'-', '_', '.'; not 'ca')", id);
	snprintf(tls_dir, sizeof tls_dir, "%s/tls", dir);
	if (mkdir(tls_dir, 0700) < 0 && errno != EEXIST)
		return ctl_fail("dev cert: cannot create %s: %s", tls_dir,
				strerror(errno));
	if (dev_make_node_cert(tls_dir, id) < 0)
		return ctl_fail("dev cert: openssl failed (see %s/openssl.log)",
				tls_dir);
	printf("--node-cert %s/%s.crt --node-key %s/%s.key --cluster-ca %s/ca.crt\n",
	       tls_dir, id, tls_dir, id, tls_dir);
	return 0;
}

static int dev_down(const char *dir)
{
	char path[PATH_MAX + 16];
	json_t *root, *nodes, *n;
	pid_t pids[16];
	int count = 0;
	size_t i;

	root = load_cluster_json(dir, path, sizeof path);
	if (!root)
		return 1;
	nodes = json_object_get(root, "nodes");
	json_array_foreach(nodes, i, n) {
		pid_t pid = node_pid(n);

		if (pid > 1 && count < 16)
			pids[count++] = pid;
	}
	stop_pids(pids, count);
	printf("stopped %d node(s) of %s\n", count, dir);
	/* The store last, so the nodes could revoke their leases. */
	count = 0;
	json_array_foreach(json_object_get(root, "etcd"), i, n) {
		json_int_t pid = json_integer_value(json_object_get(n, "pid"));

		if (pid > 1 && count < 16)
			pids[count++] = (pid_t)pid;
	}
	json_decref(root);
	if (count) {
		stop_pids(pids, count);
		printf("stopped %d etcd member(s)\n", count);
	}
	return 0;
}

int dev_main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "dir", required_argument, NULL, 'd' },
		{ "size", required_argument, NULL, 's' },
		{ "etcd", no_argument, NULL, 'e' },
		{ "insecure", no_argument, NULL, 'i' },
		{ NULL, 0, NULL, 0 },
	};
	bool with_etcd = false, insecure = false;
	const char *dir = NULL, *size_arg = "1G";
	uint64_t size;
	int c;

	const char *node = NULL;

	if (argc < 2 || (strcmp(argv[1], "up") && strcmp(argv[1], "down") &&
			 strcmp(argv[1], "restart") && strcmp(argv[1], "cert")))
		return ctl_fail("usage: triplexctl dev up|down|restart|cert --dir DIR "
				"[--size SIZE] [--etcd] [--insecure] (see "
				"triplexctl dev --help)");
	opterr = 0;
	optind = 2;
	if (!strcmp(argv[1], "restart") || !strcmp(argv[1], "cert")) {
		if (argc < 3 || argv[2][0] == '-')
			return ctl_fail("dev %s: which node? (triplexctl dev "
					"%s NODE --dir DIR)", argv[1], argv[1]);
		node = argv[2];
		optind = 3;
	}
	while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		if (c == 'd')
			dir = optarg;
		else if (c == 's')
			size_arg = optarg;
		else if (c == 'e')
			with_etcd = true;
		else if (c == 'i')
			insecure = true;
		else
			return ctl_fail("dev %s: unknown or incomplete option '%s' "
					"(see triplexctl dev %s --help)", argv[1],
					argv[optind - 1], argv[1]);
	}
	if (!dir)
		return ctl_fail("dev %s: --dir DIR is required", argv[1]);
	if (!strcmp(argv[1], "down"))
		return dev_down(dir);
	if (!strcmp(argv[1], "cert"))
		return dev_cert(dir, node);
	if (node)
		return dev_restart_node(dir, node, false);
	if (ctl_parse_size("--size", size_arg, &size))
		return 1;
	return dev_up(dir, size, with_etcd, insecure);
}
