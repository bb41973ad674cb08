#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "ctl.h"
#include "log.h"

static const struct ctl_cmd commands[] = {
	{ "volume", volume_main, "create, list, show, attach and replace volumes" },
	{ "node", node_main, "list the nodes of the cluster" },
	{ "dev", dev_main, "start or stop a local three-node cluster" },
};

int ctl_fail(const char *fmt, ...)
{
	va_list ap;

	fputs("triplexctl: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	return 1;
}

static void show_usage(FILE *f)
{
	fprintf(f, "usage: triplexctl COMMAND [ARGS]\n\ncommands:\n");
	for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
		fprintf(f, "  %-10s %s\n", commands[i].name, commands[i].help);
	fprintf(f, "\nthe metadata store: --meta URL or $TRIPLEX_META, where URL is\n"
		"  sqlite:/path/meta.db, etcd://host:port[,host:port...] or\n"
		"  https://host:port[,...] with --etcd-cacert FILE, --etcd-cert FILE,\n"
		"  --etcd-key FILE (or $TRIPLEX_ETCD_CACERT, _CERT, _KEY)\n");
}

int main(int argc, char **argv)
{
	/* The CLI says what failed in its own one-line errors; the store's
	 * warnings are for daemons' logs. */
	log_threshold = LOG_ERROR;
	if (ctl_take_tls_options(&argc, argv))
		return 1;
	if (argc < 2) {
		show_usage(stderr);
		return 2;
	}
	if (!strcmp(argv[1], "help") || !strcmp(argv[1], "--help")) {
		show_usage(stdout);
		return 0;
	}
	for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
		if (!strcmp(argv[1], commands[i].name))
			return commands[i].fn(argc - 1, argv + 1);
	return ctl_fail("unknown command '%s' (try 'triplexctl help')", argv[1]);
}
