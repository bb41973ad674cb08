/* The replica store's private state, shared by replica/store*.c. */
#ifndef TRIPLEX_STORE_PRIV_H
#define TRIPLEX_STORE_PRIV_H

#include <stddef.h>
#include <stdint.h>

#include "al.h"
#include "store.h"
#include "store_format.h"

#define container_of(ptr, type, member) \
	((type *)((char *)(ptr) - offsetof(type, member)))

enum store_kind { SK_READ = 1, SK_WRITE, SK_TRIM, SK_ZERO, SK_FLUSH };

struct store {
	struct store_io *io;
	int dfd;                 /* data: O_DIRECT unless refused */
	int cfd;                 /* crc: buffered */
	int afd;                 /* al: buffered */
	int mfd;                 /* meta: buffered */
	uint64_t size;
	uint64_t nblocks;
	bool buffered;
	/* Stored form of every block's crc: htole32(crc ^ crc32c_zero_block()),
	 * the same bytes as the crc file, so writes to it come from here. */
	uint32_t *crc;
	struct store_sb sb;      /* decoded: host byte order */
	int sb_slot;             /* slot holding sb */
	struct al al;
	uint64_t seq;            /* orders write completions against flushes */
	struct store_stats stats;
	struct store_extent *recovered; /* regions recovery found dirty */
	size_t nrecovered;
	/* Nonzero (-errno) once a failed write left checksums that may not
	 * describe the data: every request fails with it until reopened. */
	int broken;
};

/* Allocate [0, len) of fd unless the filesystem cannot (tmpfs-like).
 * Returns 0 or -errno. */
int store_reserve(int fd, uint64_t len);

/* Stored form <-> crc. */
uint32_t store_crc_get(const struct store *s, uint64_t block);
void store_crc_set(struct store *s, uint64_t block, uint32_t crc);

/* Write the superblock with clean set to `clean` to the other slot and
 * fdatasync it (synchronous). Returns 0 or -errno. */
int store_sb_write(struct store *s, bool clean);
/* Read and validate the superblock of an open meta fd. */
int store_sb_read(struct store *s);
void store_sb_init(struct store_sb *sb, uint64_t size);
int store_sb_write_slot(int fd, const struct store_sb *sb, int slot);

/* Check every block of the regions the AL marks dirty, fix suspect blocks'
 * crcs from the data, then clear the AL (synchronous, at open). */
int store_recover(struct store *s, bool was_clean);
/* Re-derive the checksums of [off, off+len) from the data on disk. */
void store_recheck_range(struct store *s, uint64_t off, uint64_t len);

/* Request state machines (store_rw.c). */
void store_req_fail(struct store *s, struct store_req *r, int kind, int res);
void store_al_ready(struct store_req *r, int res);

#endif
