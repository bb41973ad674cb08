/* The superblock: two slots in `meta`, the valid one with the highest seq
 * wins. Written synchronously; only open and close change it. */
#include <endian.h>
#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "store_priv.h"

void store_sb_init(struct store_sb *sb, uint64_t size)
{
	memset(sb, 0, sizeof *sb);
	memcpy(sb->magic, STORE_MAGIC, sizeof sb->magic);
	sb->version = STORE_VERSION;
	sb->block_size = STORE_BLOCK;
	sb->size = size;
	sb->seq = 1;
	sb->clean = 1;
	sb->region_shift = STORE_REGION_SHIFT;
}

static void sb_encode(const struct store_sb *in, struct store_sb *out)
{
	*out = *in;
	out->version = htole32(in->version);
	out->block_size = htole32(in->block_size);
	out->size = htole64(in->size);
	out->seq = htole64(in->seq);
	out->highest_epoch = htole64(in->highest_epoch);
	out->clean = htole32(in->clean);
	out->region_shift = htole32(in->region_shift);
	out->crc = htole32(crc32c(out, offsetof(struct store_sb, crc)));
}

/* Decode one slot; returns 0 if it is a valid superblock, else -EINVAL. */
static int sb_decode(const struct store_sb *in, struct store_sb *out)
{
	if (le32toh(in->crc) != crc32c(in, offsetof(struct store_sb, crc)))
		return -EINVAL;
	if (memcmp(in->magic, STORE_MAGIC, sizeof in->magic) != 0)
		return -EINVAL;
	*out = *in;
	out->version = le32toh(in->version);
	out->block_size = le32toh(in->block_size);
	out->size = le64toh(in->size);
	out->seq = le64toh(in->seq);
	out->highest_epoch = le64toh(in->highest_epoch);
	out->clean = le32toh(in->clean);
	out->region_shift = le32toh(in->region_shift);
	return 0;
}

int store_sb_write_slot(int fd, const struct store_sb *sb, int slot)
{
	struct store_sb disk;
	ssize_t n;

	sb_encode(sb, &disk);
	n = pwrite(fd, &disk, sizeof disk, (off_t)slot * STORE_SB_SLOT);
	if (n < 0)
		return -errno;
	if ((size_t)n != sizeof disk)
		return -EIO;
	return fdatasync(fd) < 0 ? -errno : 0;
}

int store_sb_write(struct store *s, bool clean)
{
	struct store_sb next = s->sb;
	int slot = !s->sb_slot;
	int ret;

	next.seq++;
	next.clean = clean;
	ret = store_sb_write_slot(s->mfd, &next, slot);
	if (ret < 0)
		return ret;
	s->sb = next;
	s->sb_slot = slot;
	return 0;
}

static int sb_check(const struct store_sb *sb)
{
	if (sb->version != STORE_VERSION) {
		log_error("store: unsupported format version %u", sb->version);
		return -EPROTONOSUPPORT;
	}
	if (sb->block_size != STORE_BLOCK || sb->size == 0 ||
	    sb->size % STORE_BLOCK != 0 || sb->size > STORE_MAX_SIZE ||
	    sb->region_shift < STORE_REGION_SHIFT_MIN ||
	    sb->region_shift > STORE_REGION_SHIFT_MAX || sb->clean > 1) {
		log_error("store: superblock has impossible geometry");
		return -EINVAL;
	}
	return 0;
}

int store_sb_read(struct store *s)
{
	struct store_sb raw[2], dec[2];
	int ok[2], best = -1;

	memset(raw, 0, sizeof raw);
	for (int i = 0; i < 2; i++) {
		ssize_t n = pread(s->mfd, &raw[i], sizeof raw[i],
				  (off_t)i * STORE_SB_SLOT);

		if (n < 0)
			return -errno;
		ok[i] = n == sizeof raw[i] && sb_decode(&raw[i], &dec[i]) == 0;
		if (ok[i] && (best < 0 || dec[i].seq > dec[best].seq))
			best = i;
	}
	if (best < 0) {
		log_error("store: no valid superblock in meta");
		return -EINVAL;
	}
	s->sb = dec[best];
	s->sb_slot = best;
	return sb_check(&s->sb);
}
