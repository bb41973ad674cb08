/*
 * Online resize on the engine's node (docs/operations.md, Resize). The
 * record's size is the size the operator asked for (`triplexctl volume
 * resize`, a compare-and-swap). When a poll shows it above the engine's,
 * the agent raises its own copy first (a replica connected from now on,
 * returning or replaced, opens at it), has the engine grow every replica
 * and then itself (vol_resize), and then offers the new size to new NBD
 * connections; open ones keep the size they negotiated. A resize that
 * fails is tried again a few polls later; a record below the engine's size
 * is ignored with one warning (volumes never shrink).
 */
#include "agent_int.h"

#include <errno.h>
#include <string.h>

#include "log.h"

#define RESIZE_RETRY_TICKS 5

static void resized(struct vol *v, int res, void *arg)
{
	struct served *s = arg;
	struct agent *cm = s->cm;

	s->resizing = false;
	if (res < 0) {
		log_warn("volume %s: cannot grow to %llu bytes yet: %s (trying "
			 "again in %d s)", s->rec.name,
			 (unsigned long long)s->rec.size, strerror(-res),
			 RESIZE_RETRY_TICKS);
		s->resize_retry_tick = cm->ticks + RESIZE_RETRY_TICKS;
		return;
	}
	if (s->fenced)
		return;
	if (cm->opts.resize_vol)
		cm->opts.resize_vol(cm->opts.export_arg, v);
	log_info("volume %s: new connections see %llu bytes (was %llu), "
		 "grown in %llu ms", s->rec.name,
		 (unsigned long long)vol_size(v),
		 (unsigned long long)s->resize_from,
		 (unsigned long long)(loop_now_ms() - s->resize_t0_ms));
}

void agent_resize(struct served *s, const struct cluster_volume *rec)
{
	uint64_t have;
	int ret;

	if (!s->vol || s->fenced || !s->exported || s->resizing ||
	    rec->epoch != s->rec.epoch)
		return;  /* not serving yet, or no longer: a new engine opens
			    at the record's size */
	have = vol_size(s->vol);
	if (rec->size <= have) {
		if (rec->size < have && !s->shrink_warned)
			log_warn("volume %s: the record says %llu bytes, below the "
				 "%llu served: ignored (volumes never shrink)",
				 s->rec.name, (unsigned long long)rec->size,
				 (unsigned long long)have);
		s->shrink_warned = rec->size < have;
		return;
	}
	if (s->cm->ticks < s->resize_retry_tick)
		return;
	s->rec.size = rec->size;
	s->resizing = true;
	s->resize_from = have;
	s->resize_t0_ms = loop_now_ms();
	log_info("volume %s: growing from %llu to %llu bytes", s->rec.name,
		 (unsigned long long)have, (unsigned long long)rec->size);
	ret = vol_resize(s->vol, rec->size, resized, s);
	if (ret < 0)
		resized(s->vol, ret, s);  /* done never runs then */
}
