#include "accept_backoff.h"

#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <string.h>

#include "log.h"

static bool out_of_resources(int res)
{
	return res == -EMFILE || res == -ENFILE || res == -ENOBUFS ||
	       res == -ENOMEM;
}

uint64_t accept_backoff_next(struct accept_backoff *b, int res,
			     uint64_t now_ms, const char *what)
{
	if (res >= 0 || !out_of_resources(res)) {
		if (res < 0 && res != -EINTR && res != -ECONNABORTED &&
		    res != -EAGAIN)
			log_warn("%s: accept: %s", what, strerror(-res));
		b->delay_ms = 0;
		return 0;
	}
	b->delay_ms = b->delay_ms ? b->delay_ms * 2 : ACCEPT_BACKOFF_MIN_MS;
	if (b->delay_ms > ACCEPT_BACKOFF_MAX_MS)
		b->delay_ms = ACCEPT_BACKOFF_MAX_MS;
	if (!b->logged_ms || now_ms - b->logged_ms >= 1000) {
		log_warn("%s: accept: %s: new connections wait %" PRIu64
			 " ms (%" PRIu64 " more such failures since the last "
			 "warning)", what, strerror(-res), b->delay_ms,
			 b->suppressed);
		b->logged_ms = now_ms;
		b->suppressed = 0;
	} else {
		b->suppressed++;
	}
	return b->delay_ms;
}
