/*
 * libFuzzer harness for the replica service: the input is what an engine
 * sends on one replication connection, pushed through a socketpair into
 * the real connection code, op table, fencing and stores (small volumes
 * under /tmp). Checks: no crash or sanitizer report, and the connection
 * always ends (it is freed after the client's EOF or a protocol error).
 *
 * The first input byte picks a mode: bit 0 recomputes every request
 * header's CRC and bit 1 every WRITE block's CRC as the frames are walked,
 * so that mutations reach the checks behind the CRCs; without them the
 * bytes go in as they are. Bit 2 makes it a TCP connection of a service
 * with replication TLS (a client certificate required): the bytes are
 * what an unauthenticated peer sends to the port, taken as TLS records;
 * nothing may be answered but the handshake, and the connection ends.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <endian.h>
#include <ftw.h>

#include "crc32c.h"
#include "log.h"
#include "repl_proto.h"
#include "repl_service.h"
#include "repl_service_int.h"
#include "../unit/tls_fixture.h"

#define MAX_SPINS 2000000

static struct loop loop;
static struct store_io io;
static struct repl_service *svc;
static char dir[] = "/tmp/tpx-fuzz-repl-XXXXXX";
static struct tls_ctx *fz_tls;

/* A node certificate (self-signed, so also its own CA) for TLS mode. */
static void make_tls(void)
{
	char cert[256], key[256], err[256];
	struct tls_config cfg = { .cert_file = cert, .key_file = key,
				  .ca_file = cert, .verify_peer = true };

	if (fx_make_named_cert(dir, "n1", true, cert, key, sizeof cert) < 0)
		abort();
	fz_tls = tls_ctx_new_server(&cfg, err, sizeof err);
	if (!fz_tls)
		abort();
}

static void setup_once(void)
{
	static bool done;

	if (done)
		return;
	done = true;
	log_threshold = LOG_ERROR;
	if (!mkdtemp(dir) || loop_init(&loop, 256) < 0)
		abort();
	store_io_uring_init(&io, &loop);
	make_tls();
}

static int rm_one(const char *p, const struct stat *st, int flag,
		  struct FTW *ftw)
{
	(void)st;
	(void)flag;
	return ftw->level == 0 ? 0 : remove(p);
}

/* Every input starts from an empty replicas directory, so that a crash
 * reproduces from its input alone (epochs and volumes persist on disk). */
static void service_start(void)
{
	svc = repl_service_new(&loop, &io, dir, "fuzz");
	if (!svc)
		abort();
	/* Volumes the fuzzer opens stay small: RAM and disk are per block. */
	repl_service_set_max_volume_size(svc, 64u << 20);
}

static void service_stop(void)
{
	repl_service_shutdown(svc, NULL, NULL);
	while (!repl_service_drained(svc))
		if (loop_poll(&loop) < 0)
			abort();
	repl_service_free(svc);
	svc = NULL;
	nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

/* Push input into the client end while draining replies, until the
 * service has freed the connection. */
static void run_connection(int cfd, const uint8_t *data, size_t size)
{
	static uint8_t sink[65536];
	size_t sent = 0;
	bool shut = false;

	for (long spins = 0; repl_service_get_stats(svc)->connections_open;
	     spins++) {
		if (spins > MAX_SPINS)
			abort();  /* the connection never ended: a hang */
		if (sent < size) {
			ssize_t n = send(cfd, data + sent, size - sent,
					 MSG_DONTWAIT | MSG_NOSIGNAL);

			if (n > 0)
				sent += (size_t)n;
			else if (n < 0 && errno != EAGAIN)
				sent = size;  /* the service closed its end */
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

static uint32_t get32(const uint8_t *p)
{
	uint32_t v;

	memcpy(&v, p, 4);
	return le32toh(v);
}

static void put32(uint8_t *p, uint32_t v)
{
	v = htole32(v);
	memcpy(p, &v, 4);
}

/* A WRITE frame's payload: set each block's crc to match its data. */
static void fix_write(uint8_t *p, size_t avail, uint32_t length)
{
	size_t n = length / 4096, data = n * 4;

	for (size_t i = 0; i < n && data + (i + 1) * 4096 <= avail; i++)
		put32(p + i * 4, crc32c(p + data + i * 4096, 4096));
}

/* Walk the frames (header + payload_len) and make their CRCs right. */
static void fix_frames(uint8_t *d, size_t size, unsigned mode)
{
	size_t pos = 0;

	while (pos + REPL_REQ_SIZE <= size) {
		uint8_t *h = d + pos;
		uint32_t plen = get32(h + 56);

		if ((mode & 2) && h[6] == REPL_OP_WRITE && h[7] == 0)
			fix_write(h + 64, size - pos - 64, get32(h + 48));
		if (mode & 1)
			put32(h + 60, crc32c(h, 60));
		if (plen > size - pos - REPL_REQ_SIZE)
			break;
		pos += REPL_REQ_SIZE + plen;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t *copy;
	int sv[2];

	setup_once();
	if (size == 0)
		return 0;
	copy = malloc(size);
	if (!copy)
		abort();
	memcpy(copy, data + 1, size - 1);
	fix_frames(copy, size - 1, data[0]);
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
		abort();
	service_start();
	if (data[0] & 4) {
		repl_service_set_tls(svc, &fz_tls);
		if (rconn_start(svc, sv[0], true) < 0)
			abort();
	} else if (repl_service_add_fd(svc, sv[0]) < 0) {
		abort();
	}
	run_connection(sv[1], copy, size - 1);
	/* No random bytes make a client certificate of the CA: no request. */
	if ((data[0] & 4) && repl_service_get_stats(svc)->requests)
		abort();
	close(sv[1]);
	free(copy);
	service_stop();
	return 0;
}
