#include "crc32c.h"

#include <isa-l/crc.h>

uint32_t crc32c(const void *buf, size_t len)
{
	uint32_t crc = 0xffffffffu;
	const unsigned char *p = buf;

	/* crc32_iscsi takes an int length: feed huge buffers in pieces. */
	while (len > 0) {
		size_t n = len > (1u << 30) ? (1u << 30) : len;
		crc = crc32_iscsi((unsigned char *)p, (int)n, crc);
		p += n;
		len -= n;
	}
	return crc ^ 0xffffffffu;
}

void crc32c_blocks(const void *buf, size_t len, uint32_t *out)
{
	const unsigned char *p = buf;

	for (size_t i = 0; i < len / TPX_BLOCK_SIZE; i++)
		out[i] = crc32_iscsi((unsigned char *)p + i * TPX_BLOCK_SIZE,
				     TPX_BLOCK_SIZE, 0xffffffffu) ^ 0xffffffffu;
}

uint32_t crc32c_zero_block(void)
{
	static uint32_t zero_crc;
	static int known;

	if (!known) {
		static const unsigned char zeroes[TPX_BLOCK_SIZE];
		zero_crc = crc32c(zeroes, sizeof zeroes);
		known = 1;
	}
	return zero_crc;
}
