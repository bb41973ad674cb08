/* The replica store's lifetime: create, open (with recovery), close. */
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/falloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fileio.h"
#include "log.h"
#include "store_priv.h"

uint32_t store_crc_get(const struct store *s, uint64_t block)
{
	return le32toh(s->crc[block]) ^ crc32c_zero_block();
}

void store_crc_set(struct store *s, uint64_t block, uint32_t crc)
{
	s->crc[block] = htole32(crc ^ crc32c_zero_block());
}

static int open_at(int dirfd, const char *name, int flags)
{
	int fd = openat(dirfd, name, flags | O_CLOEXEC, 0600);

	return fd < 0 ? -errno : fd;
}

int store_reserve(int fd, uint64_t len)
{
	if (fallocate(fd, FALLOC_FL_KEEP_SIZE, 0, (off_t)len) == 0 ||
	    errno == EOPNOTSUPP)
		return 0;
	return -errno;
}

/* Create name in dirfd with size bytes and make it durable. The data file
 * is sparse; the small crc and al files are allocated up front so that a
 * full filesystem fails data writes only, never the writes that record
 * what happened to them. */
static int create_file(int dirfd, const char *name, uint64_t size,
		       bool allocate)
{
	int fd = open_at(dirfd, name, O_RDWR | O_CREAT | O_EXCL);
	int ret = 0;

	if (fd < 0)
		return fd;
	if (ftruncate(fd, (off_t)size) < 0)
		ret = -errno;
	if (ret == 0 && allocate)
		ret = store_reserve(fd, size);
	if (ret == 0 && fsync(fd) < 0)
		ret = -errno;
	close(fd);
	return ret;
}

static int create_meta(int dirfd, uint64_t size)
{
	struct store_sb sb;
	int fd = open_at(dirfd, "meta", O_RDWR | O_CREAT | O_EXCL);
	int ret;

	if (fd < 0)
		return fd;
	store_sb_init(&sb, size);
	if (getrandom(sb.uuid, sizeof sb.uuid, 0) != sizeof sb.uuid) {
		close(fd);
		return -EIO;
	}
	/* Slot 1 stays zero (invalid) until the first superblock update. */
	ret = ftruncate(fd, 2 * STORE_SB_SLOT) < 0 ? -errno : 0;
	if (ret == 0)
		ret = store_reserve(fd, 2 * STORE_SB_SLOT);
	if (ret == 0)
		ret = store_sb_write_slot(fd, &sb, 0);
	close(fd);
	return ret;
}

static int create_files(int dirfd, uint64_t size)
{
	uint64_t nblocks = size / STORE_BLOCK;
	int ret;

	/* A zero crc entry means "zero block", so sparse files are valid. */
	ret = create_file(dirfd, "data", size, false);
	if (ret == 0)
		ret = create_file(dirfd, "crc", nblocks * 4, true);
	if (ret == 0)
		ret = create_file(dirfd, "al",
				  al_file_len(size, STORE_REGION_SHIFT), true);
	/* meta last: a directory without it is not a volume. */
	if (ret == 0)
		ret = create_meta(dirfd, size);
	if (ret == 0 && fsync(dirfd) < 0)
		ret = -errno;
	return ret;
}

int store_create(const char *dir, uint64_t size)
{
	int dirfd, ret;

	if (size == 0 || size % STORE_BLOCK != 0 || size > STORE_MAX_SIZE)
		return -EINVAL;
	if (mkdir(dir, 0700) < 0)
		return -errno;
	dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dirfd < 0)
		return -errno;
	ret = create_files(dirfd, size);
	close(dirfd);
	if (ret < 0)
		log_error("store: create %s: %s", dir, strerror(-ret));
	return ret;
}

static struct store *store_alloc(struct store_io *io)
{
	struct store *s = calloc(1, sizeof *s);

	if (s == NULL)
		return NULL;
	s->io = io;
	s->dfd = s->cfd = s->afd = s->mfd = -1;
	return s;
}

static int open_data(struct store *s, int dirfd)
{
	s->dfd = open_at(dirfd, "data", O_RDWR | O_DIRECT);
	if (s->dfd != -EINVAL)
		return s->dfd < 0 ? s->dfd : 0;
	s->buffered = true;
	log_warn("store: O_DIRECT refused by the filesystem, "
		 "using buffered I/O for data");
	s->dfd = open_at(dirfd, "data", O_RDWR);
	return s->dfd < 0 ? s->dfd : 0;
}

static int open_files(struct store *s, int dirfd)
{
	int ret;

	s->mfd = open_at(dirfd, "meta", O_RDWR);
	if (s->mfd < 0)
		return s->mfd;
	ret = open_data(s, dirfd);
	if (ret < 0)
		return ret;
	s->cfd = open_at(dirfd, "crc", O_RDWR);
	if (s->cfd < 0)
		return s->cfd;
	s->afd = open_at(dirfd, "al", O_RDWR);
	return s->afd < 0 ? s->afd : 0;
}

static int file_size_at_least(int fd, uint64_t want, const char *name)
{
	struct stat st;

	if (fstat(fd, &st) < 0)
		return -errno;
	if ((uint64_t)st.st_size < want) {
		log_error("store: %s is %lld bytes, want %llu", name,
			  (long long)st.st_size, (unsigned long long)want);
		return -EINVAL;
	}
	return 0;
}

/* Stores created before the crc and al files were allocated up front get
 * them allocated now; a full filesystem only earns a warning here. */
static void reserve_old(struct store *s)
{
	int ret = store_reserve(s->cfd, s->nblocks * 4);

	if (ret == 0)
		ret = store_reserve(s->afd, al_file_len(s->size, s->sb.region_shift));
	if (ret < 0)
		log_warn("store: cannot allocate the crc and al files (%s): "
			 "a full filesystem may fail checksum updates",
			 strerror(-ret));
}

static int load_crcs(struct store *s)
{
	size_t len = s->nblocks * 4;
	int ret = file_size_at_least(s->cfd, len, "crc");

	if (ret < 0)
		return ret;
	s->crc = malloc(len);
	if (s->crc == NULL)
		return -ENOMEM;
	return pread_full(s->cfd, s->crc, len, 0);
}

static int load(struct store *s)
{
	int ret = store_sb_read(s);

	if (ret < 0)
		return ret;
	s->size = s->sb.size;
	s->nblocks = s->size / STORE_BLOCK;
	ret = file_size_at_least(s->dfd, s->size, "data");
	if (ret == 0)
		ret = load_crcs(s);
	if (ret == 0)
		reserve_old(s);
	if (ret == 0)
		ret = file_size_at_least(
			s->afd, al_file_len(s->size, s->sb.region_shift), "al");
	if (ret == 0)
		ret = al_init(&s->al, s->io, s->afd, s->size,
			      s->sb.region_shift);
	s->al.syncs = &s->stats.al_syncs;
	s->al.ready = store_al_ready;
	return ret;
}

static void store_free(struct store *s)
{
	al_fini(&s->al);
	free(s->crc);
	free(s->recovered);
	if (s->dfd >= 0)
		close(s->dfd);
	if (s->cfd >= 0)
		close(s->cfd);
	if (s->afd >= 0)
		close(s->afd);
	if (s->mfd >= 0)
		close(s->mfd);
	free(s);
}

int store_open(const char *dir, struct store_io *io, struct store **out)
{
	struct store *s = store_alloc(io);
	int dirfd, ret;

	if (s == NULL)
		return -ENOMEM;
	dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	ret = dirfd < 0 ? -errno : open_files(s, dirfd);
	if (dirfd >= 0)
		close(dirfd);
	if (ret == 0)
		ret = load(s);
	if (ret == 0)
		ret = store_recover(s, s->sb.clean == 1);
	/* From here until store_close the volume is "in use". */
	if (ret == 0)
		ret = store_sb_write(s, false);
	if (ret < 0) {
		log_error("store: open %s: %s", dir, strerror(-ret));
		store_free(s);
		return ret;
	}
	*out = s;
	return 0;
}

/* Wait for a lazy AL round the loop still owes us. */
static void drain_al(struct store *s)
{
	while (al_busy(&s->al))
		loop_poll(s->io->loop);
}

static int close_clean(struct store *s)
{
	if (fdatasync(s->dfd) < 0 || fdatasync(s->cfd) < 0)
		return -errno;
	int ret = al_clear_sync(&s->al);

	return ret < 0 ? ret : store_sb_write(s, true);
}

void store_close(struct store *s)
{
	int ret;

	if (s == NULL)
		return;
	drain_al(s);
	ret = close_clean(s);
	/* Not fatal: the next open sees the dirty state and recovers. */
	if (ret < 0)
		log_error("store: clean shutdown failed: %s", strerror(-ret));
	store_free(s);
}

void store_crash_close(struct store *s)
{
	if (s != NULL)
		store_free(s);
}

uint64_t store_size(const struct store *s)
{
	return s->size;
}

const struct store_stats *store_get_stats(const struct store *s)
{
	return &s->stats;
}

bool store_is_buffered(const struct store *s)
{
	return s->buffered;
}

size_t store_recovered_regions(const struct store *s,
			       const struct store_extent **regs)
{
	*regs = s->recovered;
	return s->nrecovered;
}

struct loop *store_loop(const struct store *s)
{
	return s->io->loop;
}
