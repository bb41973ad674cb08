#include "http.h"

#include <errno.h>
#include <netdb.h>
#include <poll.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <microhttpd.h>

#include "log.h"

/* Idle clients (and slow-loris ones) are dropped after this. */
#define HTTP_CONN_TIMEOUT_S 10
#define HTTP_MAX_CONNS 64
#define HTTP_BACKLOG 64

#define HTTP_OF(ptr, member) \
	((struct http_server *)((char *)(ptr) - offsetof(struct http_server, member)))

struct http_server {
	struct loop *loop;
	struct MHD_Daemon *mhd;
	int epfd;                    /* MHD's, not ours to close */
	const struct http_route *routes;
	size_t nroutes;
	void *arg;                   /* for the handlers */
	struct loop_op poll_op;      /* POLLIN on epfd, one-shot, re-armed */
	struct loop_timer timer;     /* MHD's next connection deadline */
	struct loop_task task;       /* MHD has ready work: run next turn */
	bool task_queued;
	struct http_stats stats;
};

static const char TEXT_PLAIN[] = "text/plain; charset=utf-8";

/* MHD's messages: at start they explain a failure; afterwards they are
 * mostly about bad clients, which must not flood the log. */
static void on_mhd_log(void *cls, const char *fmt, va_list ap)
{
	struct http_server *s = cls;
	char msg[256];
	size_t n;

	vsnprintf(msg, sizeof msg, fmt, ap);
	n = strlen(msg);
	while (n && (msg[n - 1] == '\n' || msg[n - 1] == '\r'))
		msg[--n] = '\0';
	if (s->mhd)
		log_debug("http: %s", msg);
	else
		log_warn("http: %s", msg);
}

/* Queue a response. MHD owns body afterwards if must_free. */
static enum MHD_Result reply(struct http_server *s, struct MHD_Connection *c,
			     int status, const char *type, void *body,
			     size_t len, bool must_free, const char *allow)
{
	struct MHD_Response *resp;
	enum MHD_Result ret;

	resp = MHD_create_response_from_buffer(len, body, must_free ?
			MHD_RESPMEM_MUST_FREE : MHD_RESPMEM_PERSISTENT);
	if (!resp) {
		if (must_free)
			free(body);
		return MHD_NO;  /* MHD closes the connection */
	}
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, type);
	if (status == MHD_HTTP_METHOD_NOT_ALLOWED)
		MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, allow);
	ret = MHD_queue_response(c, (unsigned)status, resp);
	MHD_destroy_response(resp);
	s->stats.requests++;
	if (status >= 400)
		s->stats.errors++;
	return ret;
}

static enum MHD_Result reply_text(struct http_server *s,
				  struct MHD_Connection *c, int status,
				  const char *text)
{
	return reply(s, c, status, TEXT_PLAIN, (void *)text, strlen(text), false,
		     "GET, HEAD");
}

static const struct http_route *find_route(const struct http_server *s,
					   const char *url)
{
	for (size_t i = 0; i < s->nroutes; i++)
		if (strcmp(s->routes[i].path, url) == 0)
			return &s->routes[i];
	return NULL;
}

struct http_request {
	struct MHD_Connection *c;
};

const char *http_request_arg(struct http_request *req, const char *key)
{
	return MHD_lookup_connection_value(req->c, MHD_GET_ARGUMENT_KIND, key);
}

/* Run the route's handler into a memory stream and send what it wrote. */
const char *http_request_header(struct http_request *req, const char *name)
{
	return MHD_lookup_connection_value(req->c, MHD_HEADER_KIND, name);
}

static enum MHD_Result reply_route(struct http_server *s,
				   struct MHD_Connection *c,
				   const struct http_route *r)
{
	struct http_request req = { c };
	char *body = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&body, &len);
	int status;

	if (!f)
		return reply_text(s, c, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory\n");
	status = r->post ? r->post(s->arg, &req, f) : r->fn(s->arg, f);
	if (fclose(f) != 0 || !body) {
		free(body);
		return reply_text(s, c, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory\n");
	}
	return reply(s, c, status, r->content_type, body, len, true, NULL);
}

static bool method_is(const char *method, const char *want)
{
	return strcmp(method, want) == 0;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c,
				  const char *url, const char *method,
				  const char *version, const char *upload,
				  size_t *upload_size, void **con_cls)
{
	struct http_server *s = cls;
	const struct http_route *r;

	/* Answered on the first call; any request body is discarded. */
	bool get = method_is(method, MHD_HTTP_METHOD_GET) ||
		   method_is(method, MHD_HTTP_METHOD_HEAD);
	bool post = method_is(method, MHD_HTTP_METHOD_POST);

	r = find_route(s, url);
	if (!r && (get || post))
		return reply_text(s, c, MHD_HTTP_NOT_FOUND, "not found\n");
	if (!r || (r->post ? !post : !get)) {
		static const char text[] = "method not allowed\n";

		return reply(s, c, MHD_HTTP_METHOD_NOT_ALLOWED, TEXT_PLAIN,
			     (void *)text, sizeof text - 1, false,
			     r && r->post ? "POST" : "GET, HEAD");
	}
	return reply_route(s, c, r);
}

/* A listening socket for host:port. Returns the fd or -errno. */
static int make_listener(const char *host, const char *port)
{
	struct addrinfo hints = {
		.ai_family = AF_UNSPEC,
		.ai_socktype = SOCK_STREAM,
		.ai_flags = AI_PASSIVE | AI_NUMERICSERV,
	};
	struct addrinfo *res, *ai;
	int fd = -1, err = -EADDRNOTAVAIL, one = 1;

	if (getaddrinfo(host, port, &hints, &res) != 0)
		return -EADDRNOTAVAIL;
	for (ai = res; ai; ai = ai->ai_next) {
		fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK |
			    SOCK_CLOEXEC, ai->ai_protocol);
		if (fd < 0) {
			err = -errno;
			continue;
		}
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
		if (bind(fd, ai->ai_addr, ai->ai_addrlen) == 0 &&
		    listen(fd, HTTP_BACKLOG) == 0)
			break;
		err = -errno;
		close(fd);
		fd = -1;
	}
	freeaddrinfo(res);
	return fd >= 0 ? fd : err;
}

static void arm_poll(struct http_server *s)
{
	struct io_uring_sqe *sqe = loop_get_sqe(s->loop, &s->poll_op);

	io_uring_prep_poll_add(sqe, s->epfd, POLLIN);
}

/*
 * Let MHD do what is ready, then ask when it next needs a turn. Connection
 * deadlines only move later (fixed timeout, counted from the last
 * activity), so a timer that is already armed never fires too late; when
 * it fires early we just run MHD and re-arm.
 */
static void run_mhd(struct http_server *s)
{
	MHD_UNSIGNED_LONG_LONG ms;

	MHD_run(s->mhd);
	if (MHD_get_timeout(s->mhd, &ms) != MHD_YES)
		return;  /* nothing pending: wait for the epoll fd only */
	if (ms > 0) {
		loop_timer_arm(s->loop, &s->timer, ms);
		return;
	}
	if (!s->task_queued) {
		s->task_queued = true;
		loop_defer(s->loop, &s->task);
	}
}

static void on_poll(struct loop_op *op, int res, uint32_t flags)
{
	struct http_server *s = HTTP_OF(op, poll_op);

	if (res < 0) {
		/* Re-arming would spin on a broken fd; /healthz then fails. */
		log_error("http: poll on the MHD epoll fd: %s; endpoint stopped",
			  strerror(-res));
		return;
	}
	run_mhd(s);
	arm_poll(s);
}

static void on_timer(struct loop_timer *t)
{
	run_mhd(HTTP_OF(t, timer));
}

static void on_task(struct loop_task *t)
{
	struct http_server *s = HTTP_OF(t, task);

	s->task_queued = false;
	run_mhd(s);
}

static struct MHD_Daemon *start_mhd(struct http_server *s, int fd)
{
	return MHD_start_daemon(MHD_USE_EPOLL | MHD_USE_ERROR_LOG, 0,
		NULL, NULL, on_request, s,
		MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, s,
		MHD_OPTION_LISTEN_SOCKET, fd,
		MHD_OPTION_CONNECTION_LIMIT, (unsigned)HTTP_MAX_CONNS,
		MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)HTTP_CONN_TIMEOUT_S,
		MHD_OPTION_END);
}

static int get_epoll_fd(struct MHD_Daemon *mhd)
{
	const union MHD_DaemonInfo *info =
		MHD_get_daemon_info(mhd, MHD_DAEMON_INFO_EPOLL_FD);

	return info ? info->epoll_fd : -1;
}

int http_server_new(struct loop *loop, const char *host, const char *port,
		    const struct http_route *routes, size_t nroutes, void *arg,
		    struct http_server **out)
{
	struct http_server *s = calloc(1, sizeof *s);
	int fd;

	if (!s)
		return -ENOMEM;
	fd = make_listener(host, port);
	if (fd < 0) {
		free(s);
		return fd;
	}
	s->loop = loop;
	s->routes = routes;
	s->nroutes = nroutes;
	s->arg = arg;
	s->poll_op.cb = on_poll;
	s->timer.fn = on_timer;
	s->task.fn = on_task;
	s->mhd = start_mhd(s, fd);
	if (!s->mhd) {
		log_error("http: libmicrohttpd failed to start");
		close(fd);
		free(s);
		return -EIO;
	}
	s->epfd = get_epoll_fd(s->mhd);
	if (s->epfd < 0) {
		http_server_free(s);  /* closes fd */
		return -EIO;
	}
	arm_poll(s);
	*out = s;
	return 0;
}

const struct http_stats *http_server_get_stats(const struct http_server *s)
{
	return &s->stats;
}

void http_server_free(struct http_server *s)
{
	if (!s)
		return;
	MHD_stop_daemon(s->mhd);  /* closes connections and the listen fd */
	free(s);
}
