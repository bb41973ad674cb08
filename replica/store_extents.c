/* Allocation map of the data file through SEEK_DATA / SEEK_HOLE. */
#include <errno.h>
#include <unistd.h>

#include "store_priv.h"

#define BLOCK_DOWN(x) ((x) & ~(uint64_t)(STORE_BLOCK - 1))
#define BLOCK_UP(x) BLOCK_DOWN((x) + STORE_BLOCK - 1)

/* Start of the next data at or after pos (end if none). */
static int64_t next_data(int fd, uint64_t pos, uint64_t end)
{
	off_t d = lseek(fd, (off_t)pos, SEEK_DATA);

	if (d < 0)
		return errno == ENXIO ? (int64_t)end : -errno;
	/* A block that holds any data counts as data. */
	d = (off_t)BLOCK_DOWN((uint64_t)d);
	return (uint64_t)d < pos ? (int64_t)pos : (int64_t)d;
}

static int64_t next_hole(int fd, uint64_t pos)
{
	off_t h = lseek(fd, (off_t)pos, SEEK_HOLE);

	return h < 0 ? -errno : (int64_t)BLOCK_UP((uint64_t)h);
}

int store_extents(struct store *s, uint64_t off, uint64_t len,
		  struct store_extent *ext, int max)
{
	uint64_t end = off + len, pos = off;
	int n = 0;

	if (end < off || end > s->size)
		end = s->size;
	while (pos < end && n < max) {
		int64_t d = next_data(s->dfd, pos, end);
		bool hole = d < 0 || (uint64_t)d > pos;
		int64_t stop = hole ? d : next_hole(s->dfd, pos);

		if (stop < 0)
			return (int)stop;
		/* A write or trim between the two seeks can make them disagree
		 * (data at pos, then a hole at pos): call that block data,
		 * which is never wrong, rather than report an empty extent. */
		if ((uint64_t)stop <= pos) {
			hole = false;
			stop = (int64_t)(BLOCK_DOWN(pos) + STORE_BLOCK);
		}
		if ((uint64_t)stop > end)
			stop = (int64_t)end;
		ext[n].off = pos;
		ext[n].len = (uint64_t)stop - pos;
		ext[n].hole = hole;
		n++;
		pos = (uint64_t)stop;
	}
	return n;
}
