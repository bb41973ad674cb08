/* CRC-32C (Castagnoli), the checksum of every 4 KiB block in triplex. */
#ifndef TRIPLEX_CRC32C_H
#define TRIPLEX_CRC32C_H

#include <stddef.h>
#include <stdint.h>

#define TPX_BLOCK_SIZE 4096u
#define TPX_BLOCK_SHIFT 12

/* Standard CRC-32C of len bytes: crc32c("123456789") == 0xE3069283. */
uint32_t crc32c(const void *buf, size_t len);

/* CRC-32C of each 4 KiB block of buf (len a multiple of 4096) into out[]. */
void crc32c_blocks(const void *buf, size_t len, uint32_t *out);

/* CRC-32C of a 4 KiB block of zeroes. */
uint32_t crc32c_zero_block(void);

#endif
