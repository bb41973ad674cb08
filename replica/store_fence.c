/* Fencing and resync support: the highest epoch seen (in the superblock),
 * stored checksums by range, and the regions that may differ from the
 * other replicas after a crash (from the activity log). */
#include <errno.h>
#include <string.h>

#include "log.h"
#include "store_priv.h"

uint64_t store_get_epoch(const struct store *s)
{
	return s->sb.highest_epoch;
}

int store_set_epoch(struct store *s, uint64_t epoch)
{
	uint64_t old = s->sb.highest_epoch;
	int ret;

	if (epoch == old)
		return 0;
	if (epoch < old)
		return -ESTALE;
	/* store_sb_write writes a copy of s->sb: set the field, undo on error. */
	s->sb.highest_epoch = epoch;
	ret = store_sb_write(s, s->sb.clean);
	if (ret < 0) {
		s->sb.highest_epoch = old;
		log_error("store: persisting epoch %llu: %s",
			  (unsigned long long)epoch, strerror(-ret));
	}
	return ret;
}

int store_crcs(const struct store *s, uint64_t off, uint64_t len,
	       uint32_t *out)
{
	if (off % STORE_BLOCK || len % STORE_BLOCK || off > s->size ||
	    len > s->size - off)
		return -EINVAL;
	if (s->broken)
		return s->broken;
	for (uint64_t i = 0; i < len / STORE_BLOCK; i++)
		out[i] = store_crc_get(s, off / STORE_BLOCK + i);
	return 0;
}

bool store_busy(const struct store *s)
{
	return al_busy(&s->al);
}

/* Whether region i is in the (sorted) list recovery found; *k walks it. */
static bool was_recovered(const struct store *s, uint32_t i, size_t *k)
{
	uint64_t off = (uint64_t)i << s->al.region_shift;

	while (*k < s->nrecovered && s->recovered[*k].off < off)
		(*k)++;
	return *k < s->nrecovered && s->recovered[*k].off == off;
}

size_t store_dirty_regions(const struct store *s, uint64_t *offs, size_t max,
			   uint64_t *region_size)
{
	size_t n = 0, k = 0;

	*region_size = 1ull << s->al.region_shift;
	for (uint32_t i = 0; i < s->al.nregions; i++) {
		if (!was_recovered(s, i, &k) && !al_region_active(&s->al, i))
			continue;
		if (n < max)
			offs[n] = (uint64_t)i << s->al.region_shift;
		n++;
	}
	return n;
}
