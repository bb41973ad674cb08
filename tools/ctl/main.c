#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "ctl.h"
#include "log.h"

static const struct ctl_cmd commands[] = {
	{ "status", status_main, "the cluster's health at a glance" },
	{ "health", health_main, "each problem and what to do" },
	{ "volume", volume_main, "create, list, show, attach and replace volumes" },
	{ "node", node_main, "list the nodes of the cluster" },
	{ "dev", dev_main, "start or stop a local three-node cluster" },
	{ "drill", drill_main, "a chaos drill against a dev cluster" },
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

int main(int argc, char **argv)
{
	/* The CLI says what failed in its own one-line errors; the store's
	 * warnings are for daemons' logs. */
	log_threshold = LOG_ERROR;
	if (ctl_take_tls_options(&argc, argv))
		return 1;
	if (argc < 2)
		return ctl_fail("missing command (see triplexctl --help)");
	if (ctl_wants_help(argc, argv))
		return ctl_help(argc, argv);
	if (!strcmp(argv[1], "--version") || !strcmp(argv[1], "version"))
		return ctl_version();
	for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
		if (!strcmp(argv[1], commands[i].name))
			return commands[i].fn(argc - 1, argv + 1);
	return ctl_fail("unknown command '%s' (see triplexctl --help)", argv[1]);
}
