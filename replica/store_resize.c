/*
 * Growing a replica store (online resize, docs/on-disk-format.md).
 *
 * The superblock is the commit point. Each file is first cut back to its
 * old length (whatever an interrupted grow left past the old end goes),
 * then extended and fsynced; only then is the superblock with the new size
 * written. A crash before that write leaves the old size with longer
 * files, which store_open accepts (files must be at least as long as the
 * size says); a crash after it leaves every file complete. The new blocks
 * are holes in `data` and zero entries in `crc`: zeroes, with the stored
 * checksum of a zero block.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "store_priv.h"

/* fd from old_len to new_len bytes, zeroes past old_len, durable. */
static int extend_file(int fd, uint64_t old_len, uint64_t new_len,
		       bool allocate)
{
	if (ftruncate(fd, (off_t)old_len) < 0 ||
	    ftruncate(fd, (off_t)new_len) < 0)
		return -errno;
	if (allocate) {
		int ret = store_reserve(fd, new_len);

		if (ret < 0)
			return ret;
	}
	return fsync(fd) < 0 ? -errno : 0;
}

static int extend_files(struct store *s, uint64_t size)
{
	unsigned shift = s->sb.region_shift;
	int ret = extend_file(s->dfd, s->size, size, false);

	if (ret == 0)
		ret = extend_file(s->cfd, s->nblocks * 4, size / STORE_BLOCK * 4,
				  true);
	if (ret == 0)
		ret = extend_file(s->afd, al_file_len(s->size, shift),
				  al_file_len(size, shift), true);
	return ret;
}

/* Room in memory for the new blocks' checksums (zero: a zero block) and
 * activity-log regions. Larger arrays than the size needs are harmless,
 * so a later failure keeps them. */
static int grow_memory(struct store *s, uint64_t size)
{
	uint64_t nblocks = size / STORE_BLOCK;
	uint32_t *crc = realloc(s->crc, nblocks * 4);

	if (!crc)
		return -ENOMEM;
	s->crc = crc;
	memset(crc + s->nblocks, 0, (nblocks - s->nblocks) * 4);
	return al_grow(&s->al, size);
}

static int commit_size(struct store *s, uint64_t size)
{
	uint64_t old = s->sb.size;
	int ret;

	/* store_sb_write writes a copy of s->sb: set the field, undo on error. */
	s->sb.size = size;
	ret = store_sb_write(s, s->sb.clean);
	if (ret < 0) {
		s->sb.size = old;
		return ret;
	}
	s->size = size;
	s->nblocks = size / STORE_BLOCK;
	return 0;
}

int store_grow(struct store *s, uint64_t size)
{
	uint64_t old = s->size;
	int ret;

	if (size % STORE_BLOCK || size > STORE_MAX_SIZE || size < s->size)
		return -EINVAL;
	if (size == s->size)
		return 0;
	if (s->broken)
		return s->broken;
	if (al_busy(&s->al))
		return -EAGAIN;
	if (al_in_use(&s->al))
		return -EBUSY;
	ret = grow_memory(s, size);
	if (ret == 0)
		ret = extend_files(s, size);
	if (ret == 0)
		ret = commit_size(s, size);
	if (ret < 0) {
		log_error("store: growing from %llu to %llu bytes: %s",
			  (unsigned long long)old, (unsigned long long)size,
			  strerror(-ret));
		return ret;
	}
	return 0;
}
