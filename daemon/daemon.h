/* triplexd: the per-node daemon. */
#ifndef TRIPLEX_DAEMON_H
#define TRIPLEX_DAEMON_H

#include <stddef.h>
#include <sys/signalfd.h>

#include "loop.h"
#include "server.h"
#include "store_io.h"
#include "volume.h"

struct daemon_opts {
	const char *data_dir;
	const char *listen_unix;
	const char *listen_tcp;
	const char *pid_file;
};

struct daemon {
	struct daemon_opts opts;
	struct loop loop;
	struct store_io io;
	struct vol **vols;
	size_t nvols;
	struct nbd_server *nbd;
	struct loop_op sig_op;
	int sig_fd;
	struct signalfd_siginfo sig_info;
	struct loop_timer stop_timer;
	int exit_code;
};

/* Open every volume in DATA_DIR/volumes. Returns 0 or -errno (logged). */
int daemon_open_volumes(struct daemon *d);
void daemon_close_volumes(struct daemon *d);

/* Handle SIGTERM and SIGINT through the loop: a clean shutdown. */
int daemon_watch_signals(struct daemon *d);

#endif
