/*
 * What a listener does when accept fails for want of resources (EMFILE,
 * ENFILE, ENOBUFS, ENOMEM): re-arming at once would spin the loop and
 * flood the log while the condition lasts. Instead the listener waits,
 * 10 ms doubling up to 1 s, and logs at most once a second. Other errors
 * (the peer gave up: ECONNABORTED, EINTR, EAGAIN) re-arm at once.
 */
#ifndef TRIPLEX_ACCEPT_BACKOFF_H
#define TRIPLEX_ACCEPT_BACKOFF_H

#include <stdint.h>

struct accept_backoff {
	uint64_t delay_ms;     /* current wait; 0 after a success */
	uint64_t logged_ms;    /* when the last warning was logged */
	uint64_t suppressed;   /* warnings not logged since */
};

#define ACCEPT_BACKOFF_MIN_MS 10
#define ACCEPT_BACKOFF_MAX_MS 1000

/* After an accept completed with res (an fd or -errno) at now_ms: how many
 * ms to wait before accepting again (0: at once). what names the listener
 * in the log. */
uint64_t accept_backoff_next(struct accept_backoff *b, int res,
			     uint64_t now_ms, const char *what);

#endif
