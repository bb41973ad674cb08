#include "server_int.h"

#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "log.h"
#include "proto.h"
#include "request.h"

#define EXPORT_TFLAGS                                                      \
	(NBD_FLAG_SEND_FLUSH | NBD_FLAG_SEND_FUA | NBD_FLAG_SEND_TRIM |     \
	 NBD_FLAG_SEND_WRITE_ZEROES | NBD_FLAG_SEND_FAST_ZERO |             \
	 NBD_FLAG_SEND_CACHE | NBD_FLAG_CAN_MULTI_CONN)

static const struct nbd_export *export_find(void *ctx, const char *name)
{
	struct nbd_server *s = ctx;

	/* The default export ("") is the first volume. Hidden exports (a
	 * volume this node no longer serves) have no volume. */
	for (size_t i = 0; i < s->nexports; i++)
		if (s->exports[i].volume &&
		    (name[0] == '\0' || strcmp(s->exports[i].name, name) == 0))
			return &s->exports[i];
	return NULL;
}

static const struct nbd_export *export_at(void *ctx, size_t i)
{
	struct nbd_server *s = ctx;

	for (size_t k = 0; k < s->nexports; k++)
		if (s->exports[k].volume && i-- == 0)
			return &s->exports[k];
	return NULL;
}

static struct nbd_export *export_slot(struct nbd_server *s, const char *name)
{
	for (size_t i = 0; i < s->nexports; i++)
		if (strcmp(s->exports[i].name, name) == 0)
			return &s->exports[i];
	return NULL;
}

void nbd_server_hide_export(struct nbd_server *s, const char *name)
{
	struct nbd_export *e = export_slot(s, name);

	if (e)
		e->volume = NULL;
}

static const char *tls_allow_of(const struct nbd_server *s, const char *name)
{
	for (size_t i = 0; i < s->ntls_allow; i++)
		if (!strcmp(s->tls_allow[i].name, name))
			return s->tls_allow[i].identities;
	return NULL;
}

void nbd_server_set_tls(struct nbd_server *s, struct tls_ctx *ctx,
			enum nbd_tls_mode mode)
{
	s->tls_ctx = ctx;
	s->tls_mode = ctx ? mode : NBD_TLS_OFF;
}

int nbd_server_allow_tls_identities(struct nbd_server *s, const char *name,
				    const char *identities)
{
	struct tls_allow *a;

	if (s->ntls_allow == NBD_MAX_EXPORTS)
		return -ENOSPC;
	a = realloc(s->tls_allow, (s->ntls_allow + 1) * sizeof *a);
	if (!a)
		return -ENOMEM;
	s->tls_allow = a;
	a = &s->tls_allow[s->ntls_allow];
	a->name = strdup(name);
	a->identities = strdup(identities);
	if (!a->name || !a->identities) {
		free(a->name);
		free(a->identities);
		return -ENOMEM;
	}
	s->ntls_allow++;
	for (size_t i = 0; i < s->nexports; i++)
		if (!strcmp(s->exports[i].name, name))
			s->exports[i].tls_allow = a->identities;
	return 0;
}

static void export_fill(struct nbd_server *s, struct nbd_export *e,
			struct vol *v)
{
	e->name = vol_name(v);
	e->description = "triplex volume";
	e->size = vol_size(v);
	e->tflags = EXPORT_TFLAGS;
	e->min_block = 1;
	e->pref_block = 4096;
	e->max_block = NBD_MAX_PAYLOAD;
	e->tls_allow = tls_allow_of(s, e->name);
	e->volume = v;
}

struct nbd_server *nbd_server_new(struct loop *loop, struct vol **vols,
				  size_t nvols)
{
	struct nbd_server *s = calloc(1, sizeof *s);

	if (!s || nvols > NBD_MAX_EXPORTS)
		goto fail;
	/* Fixed capacity: connections point into the table, so it never moves. */
	s->exports = calloc(NBD_MAX_EXPORTS, sizeof *s->exports);
	if (!s->exports)
		goto fail;
	for (size_t i = 0; i < nvols; i++)
		export_fill(s, &s->exports[i], vols[i]);
	s->nexports = nvols;
	s->loop = loop;
	s->hs_timeout_ms = 10000;
	s->reply_timeout_ms = NBD_DEFAULT_REPLY_TIMEOUT_MS;
	s->max_connections = NBD_DEFAULT_MAX_CONNECTIONS;
	s->table.find = export_find;
	s->table.at = export_at;
	s->table.ctx = s;
	return s;
fail:
	free(s);
	return NULL;
}

int nbd_server_add_export(struct nbd_server *s, struct vol *v)
{
	struct nbd_export *e = export_slot(s, vol_name(v));

	/* Connections copied the volume pointer when they chose the export,
	 * so a hidden slot can take the new volume of the same name. */
	if (e && e->volume)
		return -EEXIST;
	if (e) {
		export_fill(s, e, v);
		return 0;
	}
	if (s->nexports == NBD_MAX_EXPORTS)
		return -ENOSPC;
	export_fill(s, &s->exports[s->nexports], v);
	s->nexports++;
	return 0;
}

void nbd_server_update_export(struct nbd_server *s, const struct vol *v)
{
	for (size_t i = 0; i < s->nexports; i++)
		if (s->exports[i].volume == v)
			s->exports[i].size = vol_size(v);
}

static void arm_accept(struct listener *l);

void nbd_server_set_max_connections(struct nbd_server *s, unsigned max)
{
	s->max_connections = max ? max : NBD_DEFAULT_MAX_CONNECTIONS;
}

/* Over the cap: close at once, so that the open connections keep their
 * memory and fds; warn at most once a second. */
static void refuse(struct nbd_server *s, int fd)
{
	uint64_t now = loop_now_ms();

	close(fd);
	s->stats.connections_refused++;
	if (!s->refused_logged_ms || now - s->refused_logged_ms >= 1000) {
		log_warn("nbd: %u connections open (--max-connections): new "
			 "ones are closed (%llu so far)", s->max_connections,
			 (unsigned long long)s->stats.connections_refused);
		s->refused_logged_ms = now;
	}
}

static void on_retry(struct loop_timer *t)
{
	struct listener *l = (struct listener *)((char *)t - offsetof(struct listener, retry));

	if (!l->srv->shutting_down && !l->armed)
		arm_accept(l);
}

static void on_accept(struct loop_op *op, int res, uint32_t flags)
{
	struct listener *l = (struct listener *)((char *)op - offsetof(struct listener, op));
	struct nbd_server *s = l->srv;
	uint64_t wait_ms;

	l->armed = false;
	if (s->shutting_down) {
		if (res >= 0)
			close(res);
		return;
	}
	if (res >= 0) {
		s->stats.connections_accepted++;
		if (s->stats.connections_open >= s->max_connections)
			refuse(s, res);
		else
			conn_start(s, res);
	}
	wait_ms = accept_backoff_next(&l->backoff, res, loop_now_ms(), "nbd");
	if (!wait_ms) {
		arm_accept(l);
		return;
	}
	s->stats.accept_failures++;
	l->retry.fn = on_retry;
	loop_timer_arm(s->loop, &l->retry, wait_ms);
}

static void arm_accept(struct listener *l)
{
	struct io_uring_sqe *sqe = loop_get_sqe(l->srv->loop, &l->op);

	l->op.cb = on_accept;
	io_uring_prep_accept(sqe, l->fd, NULL, NULL, SOCK_CLOEXEC);
	l->armed = true;
}

static int add_listener(struct nbd_server *s, int fd, const char *unix_path)
{
	struct listener *ls = realloc(s->listeners, (s->nlisteners + 1) * sizeof *ls);

	if (!ls)
		return -ENOMEM;
	s->listeners = ls;
	/* Listeners are armed by index: the array may move on realloc. */
	ls[s->nlisteners] = (struct listener){ .srv = s, .fd = fd };
	if (unix_path)
		ls[s->nlisteners].unix_path = strdup(unix_path);
	s->nlisteners++;
	return 0;
}

static void arm_all(struct nbd_server *s)
{
	for (size_t i = 0; i < s->nlisteners; i++)
		if (!s->listeners[i].armed)
			arm_accept(&s->listeners[i]);
}

int nbd_server_listen_unix(struct nbd_server *s, const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd, ret;

	if (strlen(path) >= sizeof sa.sun_path)
		return -ENAMETOOLONG;
	strcpy(sa.sun_path, path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	unlink(path);
	if (bind(fd, (struct sockaddr *)&sa, sizeof sa) < 0 || listen(fd, 128) < 0) {
		ret = -errno;
		close(fd);
		return ret;
	}
	ret = add_listener(s, fd, path);
	if (ret < 0)
		close(fd);
	return ret;
}

int nbd_server_listen_tcp(struct nbd_server *s, const char *host,
			  const char *port)
{
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE };
	struct addrinfo *ai;
	int fd, ret, one = 1;

	ret = getaddrinfo(host, port, &hints, &ai);
	if (ret != 0)
		return -EADDRNOTAVAIL;
	fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		ret = -errno;
		goto out;
	}
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
	if (bind(fd, ai->ai_addr, ai->ai_addrlen) < 0 || listen(fd, 128) < 0) {
		ret = -errno;
		close(fd);
		goto out;
	}
	ret = add_listener(s, fd, NULL);
	if (ret < 0)
		close(fd);
out:
	freeaddrinfo(ai);
	return ret;
}

void nbd_server_set_handshake_timeout(struct nbd_server *s, uint64_t ms)
{
	s->hs_timeout_ms = ms;
}

void nbd_server_set_reply_timeout(struct nbd_server *s, uint64_t ms)
{
	s->reply_timeout_ms = ms ? ms : NBD_DEFAULT_REPLY_TIMEOUT_MS;
}

/* Called once the loop runs: the listener array no longer moves. */
void nbd_server_start(struct nbd_server *s)
{
	arm_all(s);
}

static void hs_timer_fired(struct loop_timer *t)
{
	struct nbd_server *s = (struct nbd_server *)((char *)t - offsetof(struct nbd_server, hs_timer));

	if (conn_expire(s) > 0)
		loop_timer_arm(s->loop, &s->hs_timer, 1000);
}

void server_arm_hs_timer(struct nbd_server *s)
{
	s->hs_timer.fn = hs_timer_fired;
	loop_timer_arm(s->loop, &s->hs_timer, 1000);
}

static void check_drained(struct nbd_server *s)
{
	if (s->shutting_down && !s->conns && s->drained) {
		void (*fn)(void *) = s->drained;

		s->drained = NULL;
		fn(s->drained_arg);
	}
}

void server_conn_gone(struct nbd_server *s)
{
	check_drained(s);
}

void nbd_server_shutdown(struct nbd_server *s, void (*drained)(void *arg),
			 void *arg)
{
	s->shutting_down = true;
	s->drained = drained;
	s->drained_arg = arg;
	/* Pending accepts complete with an error once the socket is shut. */
	for (size_t i = 0; i < s->nlisteners; i++)
		shutdown(s->listeners[i].fd, SHUT_RDWR);
	conn_shutdown_all(s);
	check_drained(s);
}

const struct nbd_server_stats *nbd_server_get_stats(const struct nbd_server *s)
{
	return &s->stats;
}

void nbd_server_free(struct nbd_server *s)
{
	if (!s)
		return;
	for (size_t i = 0; i < s->nlisteners; i++) {
		close(s->listeners[i].fd);
		if (s->listeners[i].unix_path) {
			unlink(s->listeners[i].unix_path);
			free(s->listeners[i].unix_path);
		}
	}
	free(s->listeners);
	for (size_t i = 0; i < s->ntls_allow; i++) {
		free(s->tls_allow[i].name);
		free(s->tls_allow[i].identities);
	}
	free(s->tls_allow);
	free(s->exports);
	free(s);
}
