/*
 * A small HTTP server (libmicrohttpd) driven by the process's io_uring loop:
 * no thread of its own. MHD runs in external epoll mode; the loop polls its
 * epoll fd and arms a timer only when MHD has a connection deadline, so an
 * idle server costs nothing.
 *
 * Requests are routed by exact path. GET and HEAD are served; a route with a
 * post handler answers POST only (its arguments in the query string); other
 * methods get 405, unknown paths 404.
 */
#ifndef TRIPLEX_HTTP_H
#define TRIPLEX_HTTP_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "loop.h"

struct http_server;

/* Write the response body to body; return the HTTP status (200, 503...).
 * Runs on the loop thread, so it may read any loop-owned state. */
typedef int http_handler_fn(void *arg, FILE *body);

/* A POST's query arguments: the value of key, or NULL. */
struct http_request;
const char *http_request_arg(struct http_request *req, const char *key);
/* A request header's value, or NULL. */
const char *http_request_header(struct http_request *req, const char *name);
typedef int http_post_fn(void *arg, struct http_request *req, FILE *body);

struct http_route {
	const char *path;          /* exact match, e.g. "/metrics" */
	const char *content_type;
	http_handler_fn *fn;       /* GET and HEAD */
	http_post_fn *post;        /* or POST only */
};

struct http_stats {
	uint64_t requests;         /* responses queued, any status */
	uint64_t errors;           /* of which 4xx/5xx (not MHD's own 400/414) */
};

/* Listen on host (NULL: every address) and port, serving routes (which must
 * outlive the server); handlers get arg. Returns 0 and sets *out, or -errno
 * (an MHD failure is logged). */
int http_server_new(struct loop *loop, const char *host, const char *port,
		    const struct http_route *routes, size_t nroutes, void *arg,
		    struct http_server **out);

const struct http_stats *http_server_get_stats(const struct http_server *s);

/* Stop and free. Only once the loop will not run again (its pending poll
 * and timer ops point here). http_server_free(NULL) does nothing. */
void http_server_free(struct http_server *s);

#endif
