/* triplexd's NBD TLS: credentials from the --tls-* files, reloaded on
 * SIGHUP without touching open connections. */
#include <stdio.h>
#include <string.h>

#include "daemon.h"
#include "log.h"

int daemon_tls_check_opts(struct daemon_opts *o)
{
	const struct tls_config *t = &o->tls;
	bool creds = t->cert_file || t->key_file || t->psk_file;

	if (o->tls_mode < 0)
		o->tls_mode = creds ? NBD_TLS_REQUIRE : NBD_TLS_OFF;
	if (o->tls_mode == NBD_TLS_OFF &&
	    (creds || t->ca_file || t->verify_peer || o->ntls_allow)) {
		fprintf(stderr, "triplexd: --tls off with TLS credentials or "
			"--tls-allow: drop one or the other\n");
		return -1;
	}
	if (o->tls_mode != NBD_TLS_OFF && !creds) {
		fprintf(stderr, "triplexd: --tls on/require needs --tls-cert and "
			"--tls-key, or --tls-psk\n");
		return -1;
	}
	if (!!t->cert_file != !!t->key_file) {
		fprintf(stderr, "triplexd: --tls-cert and --tls-key go together\n");
		return -1;
	}
	if (t->verify_peer && !t->ca_file) {
		fprintf(stderr, "triplexd: --tls-verify-peer needs --tls-ca\n");
		return -1;
	}
	for (size_t i = 0; i < o->ntls_allow; i++) {
		const char *eq = strchr(o->tls_allow[i], '=');

		if (!eq || eq == o->tls_allow[i] || eq[1] == '\0') {
			fprintf(stderr, "triplexd: --tls-allow wants EXPORT=ID[,ID...], "
				"got '%s'\n", o->tls_allow[i]);
			return -1;
		}
		for (size_t j = 0; j < i; j++)
			if (!strncmp(o->tls_allow[j], o->tls_allow[i],
				     (size_t)(eq - o->tls_allow[i]) + 1)) {
				fprintf(stderr, "triplexd: --tls-allow names export "
					"'%.*s' twice: put its identities in one list\n",
					(int)(eq - o->tls_allow[i]), o->tls_allow[i]);
				return -1;
			}
	}
	return 0;
}

static int apply_allow_lists(struct daemon *d)
{
	for (size_t i = 0; i < d->opts.ntls_allow; i++) {
		const char *rule = d->opts.tls_allow[i];
		const char *eq = strchr(rule, '=');
		char name[256];

		snprintf(name, sizeof name, "%.*s", (int)(eq - rule), rule);
		if (nbd_server_allow_tls_identities(d->nbd, name, eq + 1) < 0) {
			log_error("--tls-allow %s: out of memory", rule);
			return -1;
		}
	}
	return 0;
}

/* what: "nbd: TLS certificate", "replication: node certificate". */
static void log_expiry(const char *what, const struct tls_ctx *t)
{
	time_t exp = tls_ctx_cert_expiry(t);

	if (exp)
		log_info("%s valid for %.1f more days", what,
			 (double)(exp - time(NULL)) / 86400);
}

int daemon_tls_start(struct daemon *d)
{
	char err[512];

	if (d->opts.tls_mode == NBD_TLS_OFF)
		return 0;
	d->tls = tls_ctx_new_server(&d->opts.tls, err, sizeof err);
	if (!d->tls) {
		log_error("nbd TLS: %s", err);
		return -1;
	}
	nbd_server_set_tls(d->nbd, d->tls, (enum nbd_tls_mode)d->opts.tls_mode);
	log_info("nbd: TLS %s (%s%s%s)",
		 d->opts.tls_mode == NBD_TLS_REQUIRE ? "required" : "offered",
		 d->opts.tls.cert_file ? "certificate" : "",
		 d->opts.tls.cert_file && d->opts.tls.psk_file ? ", " : "",
		 d->opts.tls.psk_file ? "pre-shared keys" : "");
	log_expiry("nbd: TLS certificate", d->tls);
	return apply_allow_lists(d);
}

static void node_tls_reload(struct daemon *d);

void daemon_tls_reload(struct daemon *d)
{
	struct tls_ctx *fresh;
	char err[512];

	node_tls_reload(d);
	if (!d->tls) {
		if (!d->node_tls)
			log_info("SIGHUP: no TLS credentials to reload");
		return;
	}
	fresh = tls_ctx_new_server(&d->opts.tls, err, sizeof err);
	if (!fresh) {
		log_error("SIGHUP: TLS credentials not reloaded, keeping the "
			  "old ones: %s", err);
		return;
	}
	nbd_server_set_tls(d->nbd, fresh, (enum nbd_tls_mode)d->opts.tls_mode);
	tls_ctx_free(d->tls);  /* open sessions hold their own reference */
	d->tls = fresh;
	log_info("SIGHUP: TLS credentials reloaded");
	log_expiry("nbd: TLS certificate", fresh);
}

/* --- replication: the node's certificate ------------------------------- */

int daemon_node_tls_check_opts(const struct daemon_opts *o)
{
	const struct tls_config *t = &o->node_tls;
	int given = !!t->cert_file + !!t->key_file + !!t->ca_file;

	if (given && !o->meta) {
		fprintf(stderr, "triplexd: --node-cert, --node-key and "
			"--cluster-ca are for cluster mode (--meta)\n");
		return -1;
	}
	if (given && given != 3) {
		fprintf(stderr, "triplexd: --node-cert, --node-key and "
			"--cluster-ca go together\n");
		return -1;
	}
	if (given && o->insecure) {
		fprintf(stderr, "triplexd: --insecure and --node-cert contradict "
			"each other: give one\n");
		return -1;
	}
	if (o->meta && !given && !o->insecure) {
		fprintf(stderr, "triplexd: cluster mode needs --node-cert, "
			"--node-key and --cluster-ca (docs/security.md), or "
			"--insecure for plaintext replication that anyone on the "
			"network can read and overwrite\n");
		return -1;
	}
	return 0;
}

/* Both ends from the same files: serving replicas, a client certificate
 * is required; reaching one, the server's must name the expected node. */
static int node_tls_load(const struct daemon_opts *o, struct tls_ctx **srv,
			 struct tls_ctx **cli, char *err, size_t errlen)
{
	struct tls_config s = o->node_tls;

	s.verify_peer = true;
	*srv = tls_ctx_new_server(&s, err, errlen);
	*cli = *srv ? tls_ctx_new_client(&o->node_tls, err, errlen) : NULL;
	if (*cli)
		return 0;
	tls_ctx_free(*srv);
	*srv = NULL;
	return -1;
}

int daemon_node_tls_start(struct daemon *d)
{
	char err[512];

	if (!d->opts.node_tls.cert_file) {
		log_warn("replication is plaintext and unauthenticated "
			 "(--insecure): anyone who reaches %s can read and "
			 "overwrite every replica", d->opts.listen_repl);
		return 0;
	}
	if (node_tls_load(&d->opts, &d->node_tls, &d->node_tls_client, err,
			  sizeof err) < 0) {
		log_error("replication TLS: %s", err);
		return -1;
	}
	log_info("replication: mutual TLS with the cluster CA %s",
		 d->opts.node_tls.ca_file);
	log_expiry("replication: node certificate", d->node_tls);
	return 0;
}

static void node_tls_reload(struct daemon *d)
{
	struct tls_ctx *srv, *cli;
	char err[512];

	if (!d->node_tls)
		return;
	if (node_tls_load(&d->opts, &srv, &cli, err, sizeof err) < 0) {
		log_error("SIGHUP: node certificate not reloaded, keeping the "
			  "old one: %s", err);
		return;
	}
	/* The service and the engines read these pointers at each new
	 * connection; open sessions hold their own reference. */
	daemon_node_tls_free(d);
	d->node_tls = srv;
	d->node_tls_client = cli;
	log_info("SIGHUP: node certificate reloaded");
	log_expiry("replication: node certificate", srv);
}

void daemon_node_tls_free(struct daemon *d)
{
	tls_ctx_free(d->node_tls);
	tls_ctx_free(d->node_tls_client);
	d->node_tls = d->node_tls_client = NULL;
}
