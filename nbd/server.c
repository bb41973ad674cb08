#include "server_int.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
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

static void on_accepted(void *arg, int fd);
static void listeners_stopped(void *arg);

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
	listeners_init(&s->listeners, loop, "nbd", on_accepted, listeners_stopped, s);
	s->listeners.accepts = &s->stats.connections_accepted;
	s->listeners.failures = &s->stats.accept_failures;
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

void nbd_server_set_max_connections(struct nbd_server *s, unsigned max)
{
	s->max_connections = max ? max : NBD_DEFAULT_MAX_CONNECTIONS;
}

static void on_accepted(void *arg, int fd)
{
	struct nbd_server *s = arg;

	if (s->stats.connections_open >= s->max_connections)
		listeners_refuse(&s->listeners, fd, s->max_connections,
				 "--max-connections", &s->stats.connections_refused);
	else
		conn_start(s, fd);
}

int nbd_server_listen_unix(struct nbd_server *s, const char *path)
{
	return listeners_add_unix(&s->listeners, path);
}

int nbd_server_listen_tcp(struct nbd_server *s, const char *host,
			  const char *port)
{
	return listeners_add_tcp(&s->listeners, host, port);
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
	listeners_start(&s->listeners);
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
	if (s->shutting_down && !s->conns && !listeners_armed(&s->listeners) &&
	    s->drained) {
		void (*fn)(void *) = s->drained;

		s->drained = NULL;
		fn(s->drained_arg);
	}
}

void server_conn_gone(struct nbd_server *s)
{
	check_drained(s);
}

static void listeners_stopped(void *arg)
{
	check_drained(arg);
}

void nbd_server_shutdown(struct nbd_server *s, void (*drained)(void *arg),
			 void *arg)
{
	s->shutting_down = true;
	s->drained = drained;
	s->drained_arg = arg;
	listeners_stop(&s->listeners);
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
	listeners_fini(&s->listeners);
	for (size_t i = 0; i < s->ntls_allow; i++) {
		free(s->tls_allow[i].name);
		free(s->tls_allow[i].identities);
	}
	free(s->tls_allow);
	free(s->exports);
	free(s);
}
