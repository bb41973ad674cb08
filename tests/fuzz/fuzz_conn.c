/*
 * libFuzzer harness for the whole NBD server: the input is what a client
 * sends on one connection, pushed through a socketpair into the real
 * connection code (handshake, request stream, engine, store on a small
 * volume in /tmp). Checks: no crash or sanitizer report, and the connection
 * always ends (it is freed after the client's EOF).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "server_int.h"
#include "store.h"
#include "volume.h"

#define VOL_SIZE (1u << 20)
#define MAX_SPINS 2000000

static struct loop loop;
static struct store_io io;
static struct vol *vol;
static struct nbd_server *srv;

static void setup_once(void)
{
	char dir[] = "/tmp/tpx-fuzz-conn-XXXXXX";
	char path[64];
	struct store *st;

	if (srv)
		return;
	if (!mkdtemp(dir))
		abort();
	snprintf(path, sizeof path, "%s/v", dir);
	if (store_create(path, VOL_SIZE) < 0 || loop_init(&loop, 256) < 0)
		abort();
	store_io_uring_init(&io, &loop);
	if (store_open(path, &io, &st) < 0)
		abort();
	vol = vol_new("demo", st, &loop);
	srv = nbd_server_new(&loop, &vol, 1);
	if (!vol || !srv)
		abort();
}

/* Push input into the client end while draining replies, until the server
 * has freed the connection. */
static void run_connection(int cfd, const uint8_t *data, size_t size)
{
	static uint8_t sink[65536];
	size_t sent = 0;
	bool shut = false;

	for (long spins = 0; srv->conns; spins++) {
		if (spins > MAX_SPINS)
			abort();  /* the connection never ended: a hang */
		if (sent < size) {
			ssize_t n = send(cfd, data + sent, size - sent, MSG_DONTWAIT | MSG_NOSIGNAL);

			if (n > 0)
				sent += (size_t)n;
			else if (n < 0 && errno != EAGAIN)
				sent = size;  /* server closed its end */
		} else if (!shut) {
			shutdown(cfd, SHUT_WR);
			shut = true;
		}
		while (recv(cfd, sink, sizeof sink, MSG_DONTWAIT) > 0)
			;
		if (loop_poll(&loop) < 0)
			abort();
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	int sv[2];

	setup_once();
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
		abort();
	conn_start(srv, sv[0]);
	run_connection(sv[1], data, size);
	close(sv[1]);
	return 0;
}
