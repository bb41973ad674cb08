/*
 * Reconciling the in-sync replicas before a new engine serves a volume
 * (invariant 4). Writes that were in flight when the previous engine
 * stopped may have reached some replicas and not others; each replica's
 * activity log names the regions that may hold such writes (REP_DIRTY).
 * The union of those regions is compared, block checksum by block
 * checksum, between a source replica (the one reads are served from) and every other
 * in-sync replica, and differing blocks are copied, so that every in-sync
 * replica returns the same bytes before the first client request.
 */
#ifndef TRIPLEX_RECONCILE_H
#define TRIPLEX_RECONCILE_H

#include <stdint.h>

#include "volume.h"

/* res 0: every in-sync replica agrees on every dirty region. -EAGAIN: a
 * replica could not be reconciled; it is on its way out of the in-sync set
 * (vol_isr_leave, if min_replicas allows), and the caller tries again
 * later. */
typedef void reconcile_done_fn(int res, uint64_t bytes_copied, void *arg);

/* Start; done runs from the loop. Returns 0 or -errno (no in-sync replica
 * connected, out of memory). */
int reconcile_start(struct vol *v, reconcile_done_fn *done, void *arg);

#endif
