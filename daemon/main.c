/* triplexd: serves the volumes of a data directory over NBD. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "daemon.h"
#include "log.h"

static const char usage[] =
	"usage: triplexd --data-dir DIR [--listen-unix PATH] [--listen-tcp HOST:PORT]\n"
	"                [--pid-file FILE] [--log-level error|warn|info|debug]\n";

static int parse_args(int argc, char **argv, struct daemon_opts *o)
{
	static const struct option longopts[] = {
		{ "data-dir", required_argument, NULL, 'd' },
		{ "listen-unix", required_argument, NULL, 'u' },
		{ "listen-tcp", required_argument, NULL, 't' },
		{ "pid-file", required_argument, NULL, 'p' },
		{ "log-level", required_argument, NULL, 'l' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int c, lvl;

	opterr = 0;
	while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (c) {
		case 'd': o->data_dir = optarg; break;
		case 'u': o->listen_unix = optarg; break;
		case 't': o->listen_tcp = optarg; break;
		case 'p': o->pid_file = optarg; break;
		case 'l':
			lvl = log_level_parse(optarg);
			if (lvl < 0) {
				fprintf(stderr, "triplexd: unknown log level '%s'\n", optarg);
				return -1;
			}
			log_threshold = (enum log_level)lvl;
			break;
		case 'h': fputs(usage, stdout); exit(0);
		default:
			fprintf(stderr, "triplexd: unknown or incomplete option '%s' "
				"(see triplexd --help)\n", argv[optind - 1]);
			return -1;
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
	if (!o->listen_unix && !o->listen_tcp) {
		fprintf(stderr, "triplexd: give --listen-unix or --listen-tcp\n");
		return -1;
	}
	return 0;
}

/* "host:port", "[v6]:port" or ":port". */
static int listen_tcp(struct nbd_server *s, const char *spec)
{
	char host[256];
	const char *colon = strrchr(spec, ':');
	size_t n;
	char *end;
	unsigned long port;

	if (!colon || colon[1] == '\0')
		return -EINVAL;
	port = strtoul(colon + 1, &end, 10);
	if (*end != '\0' || port == 0 || port > 65535)
		return -EINVAL;
	n = (size_t)(colon - spec);
	if (n >= sizeof host)
		return -EINVAL;
	memcpy(host, spec, n);
	host[n] = '\0';
	if (n >= 2 && host[0] == '[' && host[n - 1] == ']') {
		memmove(host, host + 1, n - 2);
		host[n - 2] = '\0';
	}
	return nbd_server_listen_tcp(s, host[0] ? host : NULL, colon + 1);
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

static int run(struct daemon *d)
{
	int ret = loop_init(&d->loop, 1024);

	if (ret < 0) {
		log_error("io_uring setup failed: %s", strerror(-ret));
		return 1;
	}
	store_io_uring_init(&d->io, &d->loop);
	if (daemon_open_volumes(d) < 0)
		goto out;
	d->nbd = nbd_server_new(&d->loop, d->vols, d->nvols);
	if (!d->nbd || daemon_watch_signals(d) < 0 || start_listeners(d) < 0)
		goto out;
	if (d->opts.pid_file && write_pid_file(d->opts.pid_file) < 0)
		goto out;
	log_info("triplexd ready: %zu volume(s)", d->nvols);
	ret = loop_run(&d->loop);
	if (ret < 0)
		log_error("event loop failed: %s", strerror(-ret));
	else
		d->exit_code = d->exit_code ? d->exit_code : 0;
	/* Volumes are closed only after a clean drain: nothing in flight. */
	if (ret == 0 && d->exit_code == 0)
		daemon_close_volumes(d);
	nbd_server_free(d->nbd);
	loop_fini(&d->loop);
	return ret < 0 ? 1 : d->exit_code;
out:
	nbd_server_free(d->nbd);
	daemon_close_volumes(d);
	loop_fini(&d->loop);
	return 1;
}

int main(int argc, char **argv)
{
	struct daemon d;
	int code;

	memset(&d, 0, sizeof d);
	if (parse_args(argc, argv, &d.opts) < 0)
		return 2;
	code = run(&d);
	if (d.opts.pid_file)
		unlink(d.opts.pid_file);
	return code;
}
