/* triplex-csi: the CSI v1 plugin of triplex (csi.h). */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "csi.h"
#include "log.h"
#include "parse.h"

static const char usage[] =
	"usage: triplex-csi --mode controller|node|all --meta URL\n"
	"                   [--endpoint unix:///csi/csi.sock (default $CSI_ENDPOINT)]\n"
	"                   [--node-id ID] [--zone ZONE] [--state-dir DIR]\n"
	"                   [--etcd-cacert FILE] [--etcd-cert FILE --etcd-key FILE]\n"
	"                   [--log-level error|warn|info|debug (default info)]\n"
	"       triplex-csi -h|--help | --version\n"
	"  --meta: sqlite:/path/meta.db, etcd://host:port,... or https://host:port,...\n"
	"  --node-id: the triplexd node this plugin runs beside (node and all modes)\n"
	"  --zone: the node's zone for NodeGetInfo (default: its triplexd's record)\n"
	"  --state-dir: what the node service staged (default /var/lib/triplex-csi)\n";

struct opts {
	const char *mode, *meta, *cacert, *cert, *key, *level;
};

static int bad(const char *fmt, const char *arg)
{
	fputs("triplex-csi: ", stderr);
	fprintf(stderr, fmt, arg);
	fputc('\n', stderr);
	return 2;
}

static int parse_mode(const char *s, enum csi_mode *out)
{
	static const struct { const char *name; enum csi_mode mode; } modes[] = {
		{ "controller", CSI_MODE_CONTROLLER },
		{ "node", CSI_MODE_NODE },
		{ "all", CSI_MODE_ALL },
	};

	for (size_t i = 0; s && i < sizeof modes / sizeof modes[0]; i++)
		if (!strcmp(s, modes[i].name)) {
			*out = modes[i].mode;
			return 0;
		}
	return -1;
}

static int parse_args(int argc, char **argv, struct csi_plugin *p,
		      struct opts *o)
{
	static const struct option longopts[] = {
		{ "mode", required_argument, NULL, 'M' },
		{ "endpoint", required_argument, NULL, 'e' },
		{ "meta", required_argument, NULL, 'm' },
		{ "node-id", required_argument, NULL, 'n' },
		{ "zone", required_argument, NULL, 'z' },
		{ "state-dir", required_argument, NULL, 's' },
		{ "etcd-cacert", required_argument, NULL, 'A' },
		{ "etcd-cert", required_argument, NULL, 'C' },
		{ "etcd-key", required_argument, NULL, 'K' },
		{ "log-level", required_argument, NULL, 'l' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	int c;

	opterr = 0;
	while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		switch (c) {
		case 'M': o->mode = optarg; break;
		case 'e': p->endpoint = optarg; break;
		case 'm': o->meta = optarg; break;
		case 'n': p->node_id = optarg; break;
		case 'z': p->zone = optarg; break;
		case 's': p->state_dir = optarg; break;
		case 'A': o->cacert = optarg; break;
		case 'C': o->cert = optarg; break;
		case 'K': o->key = optarg; break;
		case 'l': o->level = optarg; break;
		case 'h': fputs(usage, stdout); exit(0);
		case 'V': puts("triplex-csi " CSI_PLUGIN_VERSION); exit(0);
		default:
			return bad("unknown or incomplete option '%s' (try --help)",
				   argv[optind - 1]);
		}
	}
	if (optind != argc)
		return bad("unexpected argument '%s'", argv[optind]);
	return 0;
}

static int check_args(struct csi_plugin *p, const struct opts *o)
{
	int lvl = o->level ? log_level_parse(o->level) : (int)log_threshold;

	if (parse_mode(o->mode, &p->mode) < 0)
		return bad("--mode wants controller, node or all, got '%s'",
			   o->mode ? o->mode : "");
	if (!o->meta)
		return bad("%s", "--meta URL is required");
	if (!p->endpoint || !*p->endpoint)
		return bad("%s", "no endpoint: give --endpoint or set CSI_ENDPOINT");
	if ((p->mode & CSI_MODE_NODE) &&
	    (!p->node_id || parse_volume_name(p->node_id) < 0))
		return bad("--node-id wants this node's triplexd id, got '%s'",
			   p->node_id ? p->node_id : "");
	if (lvl < 0)
		return bad("--log-level wants error, warn, info or debug, got '%s'",
			   o->level);
	log_threshold = (enum log_level)lvl;
	return 0;
}

int main(int argc, char **argv)
{
	struct csi_plugin p = { .endpoint = getenv("CSI_ENDPOINT"),
				.zone = "", .state_dir = "/var/lib/triplex-csi" };
	struct opts o = { 0 };
	char *url;
	int ret;

	if ((ret = parse_args(argc, argv, &p, &o)) || (ret = check_args(&p, &o)))
		return ret;
	url = meta_url_with_tls(o.meta, o.cacert, o.cert, o.key);
	if (!url)
		return bad("%s", "out of memory");
	p.meta_url = url;
	ret = csi_serve(&p) < 0 ? 1 : 0;
	free(url);
	return ret;
}
