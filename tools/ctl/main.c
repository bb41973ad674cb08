#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "ctl.h"

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
}

int main(int argc, char **argv)
{
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
