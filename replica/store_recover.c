/*
 * Recovery at open. The activity log names every region that may hold a
 * write, trim or zero that was not flushed; in those regions a block's data
 * and its crc may disagree (one of the two writes was lost or torn). Rule
 * for this single-replica store: the data on disk wins, its crc is
 * recomputed, the block is counted as suspect. The region list is kept for
 * the replication layer, which reconciles these regions from other replicas.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fileio.h"
#include "log.h"
#include "store_priv.h"

#define RECOVER_CHUNK (1u << 20)

static int fix_crc(struct store *s, uint64_t block, uint32_t crc)
{
	store_crc_set(s, block, crc);
	if (pwrite(s->cfd, &s->crc[block], 4, (off_t)(block * 4)) != 4)
		return -EIO;
	return 0;
}

/* Check blocks [b, b+n) held in buf; fix the crc of each suspect block. */
static int check_blocks(struct store *s, const char *buf, uint64_t b,
			uint64_t n)
{
	for (uint64_t i = 0; i < n; i++) {
		uint32_t c = crc32c(buf + i * STORE_BLOCK, STORE_BLOCK);
		int ret;

		if (c == store_crc_get(s, b + i))
			continue;
		log_warn("store: recovery: block %llu suspect (data and crc "
			 "disagree), crc recomputed from data",
			 (unsigned long long)(b + i));
		s->stats.suspect_blocks++;
		ret = fix_crc(s, b + i, c);
		if (ret < 0)
			return ret;
	}
	return 0;
}

static int recover_region(struct store *s, uint32_t region, char *buf)
{
	uint64_t off = (uint64_t)region << s->al.region_shift;
	uint64_t end = off + (1ull << s->al.region_shift);

	if (end > s->size)
		end = s->size;
	for (; off < end; off += RECOVER_CHUNK) {
		size_t len = end - off < RECOVER_CHUNK ? end - off
						       : RECOVER_CHUNK;
		int ret = pread_full(s->dfd, buf, len, off);

		if (ret == 0)
			ret = check_blocks(s, buf, off / STORE_BLOCK,
					   len / STORE_BLOCK);
		if (ret < 0)
			return ret;
	}
	return 0;
}

static void note_region(struct store *s, uint32_t region)
{
	struct store_extent *e = &s->recovered[s->nrecovered++];
	uint64_t end;

	e->off = (uint64_t)region << s->al.region_shift;
	end = e->off + (1ull << s->al.region_shift);
	e->len = (end > s->size ? s->size : end) - e->off;
	e->hole = false;
}

static int recover_regions(struct store *s, uint32_t ndirty)
{
	char *buf = NULL;
	int ret = 0;

	s->recovered = calloc(ndirty, sizeof *s->recovered);
	if (s->recovered == NULL ||
	    posix_memalign((void **)&buf, STORE_BLOCK, RECOVER_CHUNK) != 0) {
		free(buf);
		return -ENOMEM;
	}
	for (uint32_t i = 0; i < s->al.nregions && ret == 0; i++) {
		if (!al_test(&s->al, i))
			continue;
		note_region(s, i);
		ret = recover_region(s, i, buf);
	}
	free(buf);
	return ret;
}

int store_recover(struct store *s, bool was_clean)
{
	uint32_t ndirty = 0;
	int ret;

	for (uint32_t i = 0; i < s->al.nregions; i++)
		ndirty += al_test(&s->al, i);
	if (ndirty == 0) {
		if (!was_clean)
			log_warn("store: unclean shutdown, activity log empty: "
				 "nothing to recover");
		return 0;
	}
	log_warn("store: unclean shutdown, checking %u dirty regions", ndirty);
	ret = recover_regions(s, ndirty);
	/* The fixed crcs must be durable before the AL forgets the regions. */
	if (ret == 0 && fdatasync(s->cfd) < 0)
		ret = -errno;
	if (ret == 0)
		ret = al_clear_sync(&s->al);
	if (ret == 0)
		log_info("store: recovery done, %llu suspect blocks",
			 (unsigned long long)s->stats.suspect_blocks);
	return ret;
}

/* Re-derive [b, b+n) from the data in buf: every in-memory crc is set,
 * then the chunk's crc entries are persisted with one write. */
static int recheck_chunk(struct store *s, const char *buf, uint64_t b,
			 uint64_t n)
{
	for (uint64_t i = 0; i < n; i++) {
		uint32_t c = crc32c(buf + i * STORE_BLOCK, STORE_BLOCK);

		if (c != store_crc_get(s, b + i))
			s->stats.suspect_blocks++;
		store_crc_set(s, b + i, c);
	}
	if (pwrite(s->cfd, &s->crc[b], n * 4, (off_t)(b * 4)) != (ssize_t)(n * 4))
		return errno ? -errno : -EIO;
	return 0;
}

/* After a failed write, trim or zero: the in-memory checksums of the range
 * were updated when it was issued, but the data may not have landed. Make
 * them describe the data on disk again, so that the replica neither fails
 * reads of blocks it holds nor claims blocks it does not (a resync
 * compares these checksums). If that is impossible the store is broken:
 * every request fails until it is reopened, when the activity log (not
 * cleared, since no flush can succeed) has recovery redo this range.
 * Synchronous; only on this rare path. */
void store_recheck_range(struct store *s, uint64_t off, uint64_t len)
{
	char *buf;
	int ret = 0;

	if (posix_memalign((void **)&buf, STORE_BLOCK, RECOVER_CHUNK) != 0) {
		s->broken = -ENOMEM;
		return;
	}
	log_warn("store: a write to [%llu, +%llu) failed: checksums re-read "
		 "from the data", (unsigned long long)off, (unsigned long long)len);
	for (uint64_t end = off + len; off < end && ret == 0;
	     off += RECOVER_CHUNK) {
		size_t n = end - off < RECOVER_CHUNK ? end - off : RECOVER_CHUNK;

		errno = 0;
		ret = pread_full(s->dfd, buf, n, off);
		if (ret == 0)
			ret = recheck_chunk(s, buf, off / STORE_BLOCK,
					    n / STORE_BLOCK);
	}
	free(buf);
	if (ret < 0) {
		s->broken = -EIO;
		log_error("store: cannot re-derive checksums after a failed "
			  "write (%s): every request fails until the replica "
			  "is reopened", strerror(-ret));
	}
}
