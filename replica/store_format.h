/*
 * The replica store's on-disk structures. Every integer is little-endian.
 * docs/on-disk-format.md is the full description; keep the two in step.
 */
#ifndef TRIPLEX_STORE_FORMAT_H
#define TRIPLEX_STORE_FORMAT_H

#include <stdint.h>

#define STORE_MAGIC "TPXSTOR\0"
#define STORE_VERSION 1u
#define STORE_SB_SLOT 4096u      /* meta holds two slots, 4 KiB apart */
#define STORE_REGION_SHIFT 22u   /* 4 MiB activity-log regions */
#define STORE_REGION_SHIFT_MIN 16u
#define STORE_REGION_SHIFT_MAX 30u

/* One superblock slot of the `meta` file. The valid slot with the highest
 * seq wins, so a torn slot write leaves the other slot in charge. */
struct store_sb {
	uint8_t magic[8];        /* STORE_MAGIC */
	uint32_t version;        /* STORE_VERSION */
	uint32_t block_size;     /* 4096 */
	uint64_t size;           /* volume bytes, a multiple of block_size */
	uint8_t uuid[16];        /* random at create */
	uint64_t seq;            /* bumped on every superblock write */
	uint64_t highest_epoch;  /* fencing: highest engine epoch seen */
	uint32_t clean;          /* 1: closed cleanly, AL empty */
	uint32_t region_shift;   /* log2 of the AL region size */
	uint8_t reserved[444];   /* zero */
	uint32_t crc;            /* crc32c of all bytes before this field */
} __attribute__((packed));

_Static_assert(sizeof(struct store_sb) == 512, "superblock is one sector");

#endif
