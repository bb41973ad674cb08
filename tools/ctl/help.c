/* triplexctl help: the help text of every command and subcommand, printed
 * to stdout by `triplexctl [COMMAND [SUBCOMMAND]] -h|--help` and by
 * `triplexctl help [COMMAND [SUBCOMMAND]]`. One table: a command's entry
 * is its usage, every option with its default and unit, and an example. */
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "ctl.h"
#include "version.h"

#define META_OPT \
	"  --meta URL          the metadata store (default $TRIPLEX_META):\n" \
	"                      sqlite:/path/meta.db (must exist: triplexd or\n" \
	"                      dev up creates it), etcd://HOST:PORT[,...] or\n" \
	"                      https://HOST:PORT[,...] with --etcd-cacert FILE,\n" \
	"                      --etcd-cert FILE, --etcd-key FILE (default\n" \
	"                      $TRIPLEX_ETCD_CACERT, _CERT, _KEY)\n"
#define JSON_OPT \
	"  --json              one JSON document for scripts instead of a table\n"
#define SIZE_UNITS \
	"SIZE is bytes, or a number with K, M, G, T, P (or KiB, MiB, GiB, TiB,\n" \
	"PiB: powers of 1024) or KB, MB, GB, TB, PB (powers of 1000). A size\n" \
	"that is not a multiple of 4 KiB is rounded up, with a note on stderr.\n"

struct help_entry {
	const char *path;   /* "" (triplexctl), "volume", "volume create" */
	const char *text;
};

static const struct help_entry entries[] = {
	{ "",
	  "usage: triplexctl COMMAND [SUBCOMMAND] [OPTIONS]\n"
	  "       triplexctl COMMAND [SUBCOMMAND] --help\n"
	  "       triplexctl --version\n\n"
	  "commands:\n"
	  "  status      the cluster's health at a glance (--json)\n"
	  "  health      health detail: each problem and what to do\n"
	  "  volume      create, list, show, attach, detach, replace, delete,\n"
	  "              resize and scrub volumes\n"
	  "  node        list the nodes of the cluster\n"
	  "  dev         start or stop a local three-node cluster\n"
	  "  drill       a chaos drill against a dev cluster, with a report\n"
	  "  help        this help; `triplexctl help volume create` is the same\n"
	  "              as `triplexctl volume create --help`\n\n"
	  "options of every command that reads the cluster:\n" META_OPT "\n"
	  "example:\n"
	  "  triplexctl dev up --dir /tmp/tpx\n"
	  "  export TRIPLEX_META=sqlite:/tmp/tpx/meta.db\n"
	  "  triplexctl status\n" },
	{ "status",
	  "usage: triplexctl status [--json] [--meta URL] [--watch [--interval S]\n"
	  "                         [--count N]]\n\n"
	  "One screen: HEALTH_OK, HEALTH_WARN or HEALTH_ERR with the reasons (node\n"
	  "down, replica out of sync, volume below min_replicas, metadata store\n"
	  "unreachable, a rebuild or scrub stalled), the nodes up and down with\n"
	  "their zones, the volumes by state, and the rebuilds and scrubs\n"
	  "running with their progress, rate and ETA. Exits 0 when the store\n"
	  "could be read (whatever the health), 1 when it could not (HEALTH_ERR\n"
	  "is still printed).\n\n"
	  "options:\n" JSON_OPT META_OPT
	  "  --watch          show it again every --interval seconds (default 2)\n"
	  "                   until interrupted, or --count N times\n"
	  "\n"
	  "example:\n  triplexctl status --meta sqlite:/tmp/tpx/meta.db\n"
	  "  triplexctl status --watch --interval 5\n" },
	{ "health",
	  "usage: triplexctl health detail [--json] [--meta URL]\n\n"
	  "subcommands:\n"
	  "  detail      every problem with the volume, replica and node concerned\n"
	  "              and what to do about it\n\n"
	  "example:\n  triplexctl health detail\n" },
	{ "health detail",
	  "usage: triplexctl health detail [--json] [--meta URL]\n\n"
	  "Every problem `status` counts, one a line: its severity (HEALTH_WARN\n"
	  "or HEALTH_ERR), the volume, replica and node concerned, and what to\n"
	  "do. Same exit status as `status`.\n\n"
	  "options:\n" JSON_OPT META_OPT "\n"
	  "example:\n  triplexctl health detail --json\n" },
	{ "volume",
	  "usage: triplexctl volume SUBCOMMAND [NAME] [OPTIONS]\n\n"
	  "subcommands:\n"
	  "  create      create a volume (cluster, or local with --data-dir)\n"
	  "  list        list volumes with their state\n"
	  "  show        one volume: size, policy, epoch, NBD URIs, replicas\n"
	  "  attach      serve a volume from a node (new epoch)\n"
	  "  detach      stop serving a volume (new epoch)\n"
	  "  replace     move a replica to another node\n"
	  "  delete      delete a volume and its replicas' data\n"
	  "  resize      grow a volume while it is served\n"
	  "  scrub       compare and repair every replica, print the report\n\n"
	  "`triplexctl volume SUBCOMMAND --help` for each one's options.\n\n"
	  "example:\n  triplexctl volume create db --size 10G\n" },
	{ "volume create",
	  "usage: triplexctl volume create NAME --size SIZE [OPTIONS]\n"
	  "       triplexctl volume create NAME --size SIZE --data-dir DIR\n\n"
	  "A cluster volume placed on live nodes of distinct failure domains, or\n"
	  "with --data-dir a single-replica volume in a triplexd data directory.\n"
	  "NAME is 1-63 of A-Z a-z 0-9 . _ - (not starting with . or -).\n\n"
	  "options:\n"
	  "  --size SIZE         the volume's size (required; at most 1 PiB)\n"
	  "  --replicas N        copies of every block (1..5, default 3)\n"
	  "  --min-replicas M    in-sync replicas below which writes wait and then\n"
	  "                      fail (1..N, default 2, or N if N < 2)\n"
	  "  --domain zone|rack  the failure domain replicas must not share\n"
	  "                      (default zone)\n"
	  "  --relaxed           distinct nodes are enough when there are not\n"
	  "                      enough domains (default: creation fails)\n"
	  "  --failover auto|manual  a takeover when the engine's node dies\n"
	  "                      (default auto)\n"
	  "  --data-dir DIR      a local single-replica volume in DIR instead\n"
	  JSON_OPT META_OPT "\n" SIZE_UNITS "\n"
	  "example:\n  triplexctl volume create db --size 10G --failover manual\n" },
	{ "volume list",
	  "usage: triplexctl volume list [--json] [--meta URL]\n\n"
	  "Every volume with its state: healthy, degraded (a replica out of sync or\n"
	  "on a node that is down), rebuilding (a replica catching up or being\n"
	  "rebuilt), faulted (fewer than min_replicas in sync on live nodes, or its\n"
	  "engine's node is down: not served), detached (not attached anywhere).\n"
	  "--json prints the raw records (without the derived state).\n\n"
	  "options:\n" JSON_OPT META_OPT "\n"
	  "example:\n  triplexctl volume list\n" },
	{ "volume show",
	  "usage: triplexctl volume show NAME [--json] [--meta URL]\n\n"
	  "Size, policy, epoch, state, where it is served with its NBD URIs, and\n"
	  "each replica with its node, zone, state and rebuild progress. --json\n"
	  "prints the raw record plus \"nbd_uris\" and \"failover\".\n\n"
	  "options:\n" JSON_OPT META_OPT "\n"
	  "example:\n  triplexctl volume show demo\n" },
	{ "volume attach",
	  "usage: triplexctl volume attach NAME --node ID [--wait] [--meta URL]\n\n"
	  "Serve the volume from node ID: bumps its epoch, fencing the engine\n"
	  "that served it before.\n\n"
	  "options:\n"
	  "  --node ID           the node to serve it (required; must be up)\n"
	  "  --wait              wait until the node serves it over NBD TCP\n"
	  "                      (at most 60 s) and print its URI\n" META_OPT "\n"
	  "example:\n  triplexctl volume attach db --node n2 --wait\n" },
	{ "volume detach",
	  "usage: triplexctl volume detach NAME [--meta URL]\n\n"
	  "Stop serving the volume (new epoch); its data stays.\n\n"
	  "options:\n" META_OPT "\n"
	  "example:\n  triplexctl volume detach db\n" },
	{ "volume replace",
	  "usage: triplexctl volume replace NAME --from ID [--to ID] [--wait] "
	  "[--json] [--meta URL]\n\n"
	  "Move the replica on node --from to node --to (default: a live node in\n"
	  "a failure domain the volume does not use yet); the new replica is\n"
	  "rebuilt while the volume serves. Refused if it would leave fewer than\n"
	  "min_replicas in sync.\n\n"
	  "options:\n"
	  "  --from ID           the node whose replica goes (required)\n"
	  "  --to ID             the node that gets the new replica\n"
	  "  --wait              wait until the new replica is in sync (a bar\n"
	  "                      with rate and ETA on a terminal; Ctrl-C stops\n"
	  "                      the wait, not the rebuild)\n"
	  JSON_OPT META_OPT "\n"
	  "example:\n  triplexctl volume replace db --from n3 --to n4 --wait\n" },
	{ "volume delete",
	  "usage: triplexctl volume delete NAME [--force] [--meta URL]\n\n"
	  "Delete the record; every replica's node deletes its data (a node that\n"
	  "is down does it when it returns).\n\n"
	  "options:\n"
	  "  --force             delete even while attached (default: refused)\n"
	  META_OPT "\n"
	  "example:\n  triplexctl volume detach db && triplexctl volume delete db\n" },
	{ "volume resize",
	  "usage: triplexctl volume resize NAME --size SIZE [--wait] [--json] "
	  "[--meta URL]\n\n"
	  "Grow the volume online (shrinking is refused, nothing changes).\n\n"
	  "options:\n"
	  "  --size SIZE         the new size (required; at most 1 PiB)\n"
	  "  --wait              wait until its engine serves the new size (at\n"
	  "                      most 60 s)\n" JSON_OPT META_OPT "\n" SIZE_UNITS "\n"
	  "example:\n  triplexctl volume resize db --size 20G --wait\n" },
	{ "volume scrub",
	  "usage: triplexctl volume scrub NAME [--json] [--meta URL]\n\n"
	  "Ask the volume's engine to compare every replica and repair what\n"
	  "differs, wait for its report and print it: each replica's blocks\n"
	  "that failed their checksum or differed from the majority, and where\n"
	  "their good copy came from (--json: the engine's record as it is).\n"
	  "On a terminal a bar shows the progress, rate and ETA. It gives up\n"
	  "after 10 minutes without progress. A volume that does not exist or\n"
	  "is not attached fails at once. Exits 1 if anything was left\n"
	  "unrepaired.\n\n"
	  "options:\n" JSON_OPT META_OPT "\n"
	  "example:\n  triplexctl volume scrub demo\n" },
	{ "node",
	  "usage: triplexctl node list [--json] [--meta URL]\n\n"
	  "subcommands:\n"
	  "  list        the nodes: up ones from their records, down ones from the\n"
	  "              volumes that still place replicas on them\n\n"
	  "example:\n  triplexctl node list\n" },
	{ "node list",
	  "usage: triplexctl node list [--json] [--meta URL]\n\n"
	  "Every node with its state (up or down), zone, rack and addresses. A\n"
	  "node is up while its lease in the store runs; a down node has no\n"
	  "record left, so it is listed from the replicas placed on it, with\n"
	  "the zone they were placed in. --json prints the records of the up\n"
	  "nodes only.\n\n"
	  "options:\n" JSON_OPT META_OPT "\n"
	  "example:\n  triplexctl node list\n" },
	{ "dev",
	  "usage: triplexctl dev up|down|restart|cert --dir DIR [OPTIONS]\n\n"
	  "subcommands:\n"
	  "  up          start three triplexd on loopback and volume demo\n"
	  "  down        stop them\n"
	  "  restart     stop one node and start it again\n"
	  "  cert        a certificate of the cluster's CA for one more node\n\n"
	  "example:\n  triplexctl dev up --dir /tmp/tpx\n" },
	{ "dev up",
	  "usage: triplexctl dev up --dir DIR [--size SIZE] [--etcd] [--insecure]\n\n"
	  "Start n1, n2, n3 on loopback in zone-a, zone-b, zone-c sharing the\n"
	  "metadata store DIR/meta.db (created), create volume demo, attach it to\n"
	  "n1 and wait until it is served; DIR/cluster.json describes it all.\n"
	  "Replication is mutual TLS: DIR/tls holds a cluster CA (made once, kept)\n"
	  "and each node's certificate and key, made with openssl.\n\n"
	  "options:\n"
	  "  --dir DIR           the cluster's directory (required; created)\n"
	  "  --size SIZE         the size of volume demo (default 1G)\n"
	  "  --etcd              a three-member etcd on loopback instead of SQLite\n"
	  "  --insecure          plaintext, unauthenticated replication (no DIR/tls)\n"
	  "\n" SIZE_UNITS "\n"
	  "example:\n  triplexctl dev up --dir /tmp/tpx --size 2G\n" },
	{ "dev down",
	  "usage: triplexctl dev down --dir DIR\n\n"
	  "Stop the nodes named in DIR/cluster.json (SIGTERM, then SIGKILL after\n"
	  "15 s), then its etcd members. A node's pid is read from its data\n"
	  "directory's lock, so a node restarted since is stopped too, and a\n"
	  "stale pid is never signalled.\n\n"
	  "options:\n"
	  "  --dir DIR           the cluster's directory (required)\n\n"
	  "example:\n  triplexctl dev down --dir /tmp/tpx\n" },
	{ "dev restart",
	  "usage: triplexctl dev restart NODE --dir DIR\n\n"
	  "Stop NODE (n1, n2 or n3) of the cluster in DIR if it runs, start it\n"
	  "again with the command line dev up gave it, wait until it serves, and\n"
	  "record its new pid in DIR/cluster.json.\n\n"
	  "options:\n"
	  "  --dir DIR           the cluster's directory (required)\n\n"
	  "example:\n  triplexctl dev restart n2 --dir /tmp/tpx\n" },
	{ "dev cert",
	  "usage: triplexctl dev cert NODE --dir DIR\n\n"
	  "Make DIR/tls/NODE.crt and NODE.key, signed by the cluster CA in\n"
	  "DIR/tls (made first if there is none): CN and DNS subjectAltName NODE,\n"
	  "for serving and reaching replicas. Prints the triplexd options that\n"
	  "use them.\n\n"
	  "options:\n"
	  "  --dir DIR           the cluster's directory (required)\n\n"
	  "example:\n  triplexctl dev cert n4 --dir /tmp/tpx\n" },
	{ "drill",
	  "usage: triplexctl drill --dir DIR [--faults LIST] [--size SIZE]\n"
	  "                        [--hold S] [--recover-timeout S] [--max-time S]\n"
	  "                        [--json]\n\n"
	  "A chaos drill against the dev cluster in DIR (triplexctl dev up): it\n"
	  "creates a scratch volume of its own (never touches another), writes\n"
	  "to it all along while remembering every acknowledged write, and\n"
	  "injects each fault in turn. After each it waits until every replica\n"
	  "is in sync and writes are acknowledged again, reads every block back\n"
	  "against the ledger and compares the replicas' files. The report has,\n"
	  "per fault, the time it held, the time to recover, the longest wait\n"
	  "for a write, the writes acknowledged and failed, the writes lost\n"
	  "(must be 0) and whether the replicas are identical. The scratch\n"
	  "volume is deleted at the end. Exits 0 only if every fault landed and\n"
	  "recovered and nothing was lost. Needs root for the partition.\n\n"
	  "faults:\n"
	  "  kill          kill -9 a replica's node, restart it after --hold\n"
	  "  kill-engine   kill -9 the engine's node; restart it once another\n"
	  "                node has taken the volume over\n"
	  "  partition     iptables drops a replica's node's replication port\n"
	  "                for --hold seconds\n"
	  "  latency       that node's store I/O is delayed by 100 ms for --hold\n"
	  "                seconds (its POST /admin/fault)\n"
	  "  diskfull      that node's store writes fail with ENOSPC for --hold\n"
	  "                seconds, as on a full disk (injected, not a real fill)\n\n"
	  "options:\n"
	  "  --dir DIR             the dev cluster's directory (required)\n"
	  "  --faults LIST         comma-separated (default: all five, in the\n"
	  "                        order above)\n"
	  "  --size SIZE           the scratch volume (default 64M; units as for\n"
	  "                        volume create)\n"
	  "  --hold S              how long a fault holds (1..300, default 8; one that\n"
	  "                        should take a replica out of the in-sync set\n"
	  "                        holds until it has, up to 30 s more)\n"
	  "  --recover-timeout S   longest wait for recovery (default 90)\n"
	  "  --max-time S          no new fault after this (default 1800)\n"
	  JSON_OPT "\n"
	  "example:\n  triplexctl drill --dir /tmp/tpx --faults kill,partition\n" },
};

#define NENTRIES (sizeof entries / sizeof entries[0])

static const struct help_entry *help_find(const char *path)
{
	for (size_t i = 0; i < NENTRIES; i++)
		if (!strcmp(entries[i].path, path))
			return &entries[i];
	return NULL;
}

/* Whether path has entries below it ("volume" has "volume create"). */
static bool help_has_subcommands(const char *path)
{
	size_t n = strlen(path);

	for (size_t i = 0; i < NENTRIES; i++)
		if (!strncmp(entries[i].path, path, n) && entries[i].path[n] == ' ')
			return true;
	return false;
}

bool ctl_is_help(const char *arg)
{
	return !strcmp(arg, "-h") || !strcmp(arg, "--help");
}

bool ctl_wants_help(int argc, char **argv)
{
	for (int i = 1; i < argc && strcmp(argv[i], "--"); i++)
		if (ctl_is_help(argv[i]))
			return true;
	return argc >= 2 && !strcmp(argv[1], "help");
}

/* The command words of argv: up to two leading words that are not
 * options ("help" itself left out), joined by one space. */
static void help_path(int argc, char **argv, char *out, size_t len)
{
	int first = argc >= 2 && !strcmp(argv[1], "help") ? 2 : 1, words = 0;

	out[0] = '\0';
	for (int i = first; i < argc && words < 2; i++, words++) {
		if (argv[i][0] == '-')
			break;
		if (words)
			strncat(out, " ", len - strlen(out) - 1);
		strncat(out, argv[i], len - strlen(out) - 1);
	}
}

int ctl_help(int argc, char **argv)
{
	const struct help_entry *e;
	char path[128], *sp;

	help_path(argc, argv, path, sizeof path);
	e = help_find(path);
	/* "volume show demo --help": the second word is a NAME. */
	if (!e && (sp = strchr(path, ' '))) {
		*sp = '\0';
		e = help_find(path);
		if (e && help_has_subcommands(path))
			return ctl_fail("unknown %s command '%s' (see triplexctl %s "
					"--help)", path, sp + 1, path);
	}
	if (!e)
		return ctl_fail("unknown command '%s' (see triplexctl --help)", path);
	fputs(e->text, stdout);
	return 0;
}

int ctl_version(void)
{
	tpx_print_version(stdout, "triplexctl");
	return 0;
}
