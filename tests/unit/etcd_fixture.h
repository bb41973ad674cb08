/*
 * A real one-member etcd on loopback for unit tests: started in a fresh
 * data directory on free ports below the ephemeral range, stopped by pid.
 * Header-only, since each unit test is one source file.
 */
#ifndef TRIPLEX_TEST_ETCD_FIXTURE_H
#define TRIPLEX_TEST_ETCD_FIXTURE_H

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

struct etcd_fixture {
	pid_t pid;
	int client_port, peer_port;
	char dir[64];
	char url[128];           /* etcd://127.0.0.1:PORT */
};

/* A port that can be bound now, below the ephemeral range. */
static inline int fixture_free_port(void)
{
	for (int i = 0; i < 1000; i++) {
		int port = 20000 + rand() % 12000;
		struct sockaddr_in a = { .sin_family = AF_INET,
					 .sin_port = htons((uint16_t)port) };
		int fd = socket(AF_INET, SOCK_STREAM, 0), ok;

		a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		ok = bind(fd, (struct sockaddr *)&a, sizeof a) == 0;
		close(fd);
		if (ok)
			return port;
	}
	return -1;
}

/* True once something accepts TCP connections on port. */
static inline int fixture_port_open(int port)
{
	struct sockaddr_in a = { .sin_family = AF_INET,
				 .sin_port = htons((uint16_t)port) };
	int fd = socket(AF_INET, SOCK_STREAM, 0), ok;

	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ok = connect(fd, (struct sockaddr *)&a, sizeof a) == 0;
	close(fd);
	return ok;
}

/* 0, or -1 with a message on stderr. Waits up to 20 s for the member. */
static inline int etcd_fixture_start(struct etcd_fixture *f)
{
	char client[64], peer[64], cluster[96], log[96];

	srand((unsigned)(getpid() ^ time(NULL)));
	f->client_port = fixture_free_port();
	do
		f->peer_port = fixture_free_port();
	while (f->peer_port == f->client_port);
	snprintf(f->dir, sizeof f->dir, "/tmp/tpx-etcd-XXXXXX");
	if (f->client_port < 0 || !mkdtemp(f->dir))
		return -1;
	snprintf(client, sizeof client, "http://127.0.0.1:%d", f->client_port);
	snprintf(peer, sizeof peer, "http://127.0.0.1:%d", f->peer_port);
	snprintf(cluster, sizeof cluster, "e1=%s", peer);
	snprintf(log, sizeof log, "%s/etcd.log", f->dir);
	snprintf(f->url, sizeof f->url, "etcd://127.0.0.1:%d", f->client_port);
	f->pid = fork();
	if (f->pid < 0)
		return -1;
	if (f->pid == 0) {
		if (!freopen(log, "w", stderr) || !freopen(log, "a", stdout))
			_exit(126);
		execlp("etcd", "etcd", "--name", "e1", "--data-dir", f->dir,
		       "--listen-client-urls", client,
		       "--advertise-client-urls", client,
		       "--listen-peer-urls", peer,
		       "--initial-advertise-peer-urls", peer,
		       "--initial-cluster", cluster, (char *)NULL);
		_exit(127);
	}
	for (int i = 0; i < 200; i++) {
		int st;

		if (fixture_port_open(f->client_port))
			return 0;
		if (waitpid(f->pid, &st, WNOHANG) == f->pid) {
			fprintf(stderr, "etcd exited; see %s\n", log);
			f->pid = 0;
			return -1;
		}
		usleep(100000);
	}
	fprintf(stderr, "etcd did not listen within 20 s; see %s\n", log);
	return -1;
}

static inline void etcd_fixture_stop(struct etcd_fixture *f)
{
	char cmd[96];

	if (f->pid > 0) {
		kill(f->pid, SIGCONT);
		kill(f->pid, SIGTERM);
		waitpid(f->pid, NULL, 0);
		f->pid = 0;
	}
	if (f->dir[0]) {
		snprintf(cmd, sizeof cmd, "rm -rf '%s'", f->dir);
		if (system(cmd) != 0)
			fprintf(stderr, "could not remove %s\n", f->dir);
	}
}

#endif
