/*
 * The listening sockets of one service (NBD, replication): each keeps one
 * io_uring accept armed and hands every accepted socket to the owner;
 * accept failures for want of resources back off (accept_backoff.h).
 * Listeners are armed by index once the array no longer moves
 * (listeners_start, after every listen call).
 */
#ifndef TRIPLEX_LISTENER_H
#define TRIPLEX_LISTENER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "accept_backoff.h"
#include "loop.h"

struct listeners;

struct listener {
	struct listeners *set;
	struct loop_op op;
	struct loop_timer retry;      /* accept again after a backoff */
	struct accept_backoff backoff;
	int fd;
	bool armed;
	char *unix_path;              /* unlinked at the end */
};

struct listeners {
	struct loop *loop;
	const char *what;             /* names the service in the log */
	/* An accepted socket, now the owner's. */
	void (*accepted)(void *arg, int fd);
	/* After listeners_stop, an accept came back (see listeners_armed). */
	void (*stopped)(void *arg);
	void *arg;
	uint64_t *accepts, *failures; /* the owner's counters, or NULL */
	uint64_t refused_logged_ms;   /* listeners_refuse's last warning */
	struct listener *ls;
	size_t n;
	bool stopping;
};

void listeners_init(struct listeners *s, struct loop *loop, const char *what,
		    void (*accepted)(void *arg, int fd),
		    void (*stopped)(void *arg), void *arg);
/* 0 or -errno (-EADDRNOTAVAIL: host or port not understood). */
int listeners_add_tcp(struct listeners *s, const char *host, const char *port);
int listeners_add_unix(struct listeners *s, const char *path);
void listeners_start(struct listeners *s);
/* Accept no more; pending accepts come back with an error. */
void listeners_stop(struct listeners *s);
/* Whether an accept is still in flight (the owner waits for none). */
bool listeners_armed(const struct listeners *s);
/* Close fd, accepted while cap connections were open (what cap_flag
 * sets): count it in *refused, warn at most once a second. The open
 * connections keep their memory and fds. */
void listeners_refuse(struct listeners *s, int fd, unsigned cap,
		      const char *cap_flag, uint64_t *refused);
/* Close the sockets, remove Unix socket files, free the array. */
void listeners_fini(struct listeners *s);

#endif
