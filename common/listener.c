/* Listening sockets with io_uring accept (see listener.h). */
#include "listener.h"

#include <errno.h>
#include <netdb.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "log.h"

#define BACKLOG 128

void listeners_init(struct listeners *s, struct loop *loop, const char *what,
		    void (*accepted)(void *arg, int fd),
		    void (*stopped)(void *arg), void *arg)
{
	*s = (struct listeners){ .loop = loop, .what = what,
				 .accepted = accepted, .stopped = stopped,
				 .arg = arg };
}

static void arm_accept(struct listener *l);

static void on_retry(struct loop_timer *t)
{
	struct listener *l = (struct listener *)((char *)t -
						 offsetof(struct listener, retry));

	if (!l->set->stopping && !l->armed)
		arm_accept(l);
}

static void count(uint64_t *counter)
{
	if (counter)
		(*counter)++;
}

static void on_accept(struct loop_op *op, int res, uint32_t flags)
{
	struct listener *l = (struct listener *)((char *)op -
						 offsetof(struct listener, op));
	struct listeners *s = l->set;
	uint64_t wait_ms;

	(void)flags;
	l->armed = false;
	if (s->stopping) {
		if (res >= 0)
			close(res);
		if (s->stopped)
			s->stopped(s->arg);
		return;
	}
	if (res >= 0) {
		count(s->accepts);
		s->accepted(s->arg, res);
	}
	wait_ms = accept_backoff_next(&l->backoff, res, loop_now_ms(), s->what);
	if (!wait_ms) {
		arm_accept(l);
		return;
	}
	count(s->failures);
	l->retry.fn = on_retry;
	loop_timer_arm(s->loop, &l->retry, wait_ms);
}

static void arm_accept(struct listener *l)
{
	struct io_uring_sqe *sqe = loop_get_sqe(l->set->loop, &l->op);

	l->op.cb = on_accept;
	io_uring_prep_accept(sqe, l->fd, NULL, NULL, SOCK_CLOEXEC);
	l->armed = true;
}

static int add(struct listeners *s, int fd, const char *unix_path)
{
	struct listener *ls = realloc(s->ls, (s->n + 1) * sizeof *ls);

	if (!ls) {
		close(fd);
		return -ENOMEM;
	}
	s->ls = ls;
	ls[s->n] = (struct listener){ .set = s, .fd = fd };
	if (unix_path && !(ls[s->n].unix_path = strdup(unix_path))) {
		close(fd);
		return -ENOMEM;
	}
	s->n++;
	return 0;
}

static int bind_listen(int fd, const struct sockaddr *sa, socklen_t len)
{
	int ret;

	if (bind(fd, sa, len) == 0 && listen(fd, BACKLOG) == 0)
		return fd;
	ret = -errno;
	close(fd);
	return ret;
}

int listeners_add_tcp(struct listeners *s, const char *host, const char *port)
{
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM,
				  .ai_flags = AI_PASSIVE };
	struct addrinfo *ai;
	int fd, one = 1;

	if (getaddrinfo(host, port, &hints, &ai) != 0)
		return -EADDRNOTAVAIL;
	fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd >= 0) {
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
		fd = bind_listen(fd, ai->ai_addr, ai->ai_addrlen);
	} else {
		fd = -errno;
	}
	freeaddrinfo(ai);
	return fd < 0 ? fd : add(s, fd, NULL);
}

int listeners_add_unix(struct listeners *s, const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd;

	if (strlen(path) >= sizeof sa.sun_path)
		return -ENAMETOOLONG;
	strcpy(sa.sun_path, path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	unlink(path);  /* a socket file left by a previous run */
	fd = bind_listen(fd, (struct sockaddr *)&sa, sizeof sa);
	return fd < 0 ? fd : add(s, fd, path);
}

void listeners_start(struct listeners *s)
{
	for (size_t i = 0; i < s->n; i++)
		if (!s->ls[i].armed)
			arm_accept(&s->ls[i]);
}

void listeners_stop(struct listeners *s)
{
	s->stopping = true;
	for (size_t i = 0; i < s->n; i++)
		shutdown(s->ls[i].fd, SHUT_RDWR);
}

bool listeners_armed(const struct listeners *s)
{
	for (size_t i = 0; i < s->n; i++)
		if (s->ls[i].armed)
			return true;
	return false;
}

void listeners_fini(struct listeners *s)
{
	for (size_t i = 0; i < s->n; i++) {
		close(s->ls[i].fd);
		if (s->ls[i].unix_path) {
			unlink(s->ls[i].unix_path);
			free(s->ls[i].unix_path);
		}
	}
	free(s->ls);
	s->ls = NULL;
	s->n = 0;
}

void listeners_refuse(struct listeners *s, int fd, unsigned cap,
		      const char *cap_flag, uint64_t *refused)
{
	uint64_t now = loop_now_ms();

	close(fd);
	(*refused)++;
	if (!s->refused_logged_ms || now - s->refused_logged_ms >= 1000) {
		log_warn("%s: %u connections open (%s): new ones are closed "
			 "(%llu so far)", s->what, cap, cap_flag,
			 (unsigned long long)*refused);
		s->refused_logged_ms = now;
	}
}
