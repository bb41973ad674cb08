/* crc32c: the standard check vectors, per-block crcs, the zero block. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "crc32c.h"

static void test_vectors(void **state)
{
	unsigned char buf[32];

	(void)state;
	assert_int_equal(crc32c("123456789", 9), 0xE3069283u);
	memset(buf, 0, sizeof buf);
	assert_int_equal(crc32c(buf, sizeof buf), 0x8A9136AAu);
	memset(buf, 0xff, sizeof buf);
	assert_int_equal(crc32c(buf, sizeof buf), 0x62A8AB43u);
	for (int i = 0; i < 32; i++)
		buf[i] = (unsigned char)i;
	assert_int_equal(crc32c(buf, sizeof buf), 0x46DD794Eu);
	assert_int_equal(crc32c(buf, 0), 0u);
}

static void test_blocks(void **state)
{
	unsigned char *buf = malloc(3 * TPX_BLOCK_SIZE);
	uint32_t out[3];

	(void)state;
	for (size_t i = 0; i < 3 * TPX_BLOCK_SIZE; i++)
		buf[i] = (unsigned char)(i * 7 + i / 4096);
	crc32c_blocks(buf, 3 * TPX_BLOCK_SIZE, out);
	for (int i = 0; i < 3; i++)
		assert_int_equal(out[i],
				 crc32c(buf + i * TPX_BLOCK_SIZE, TPX_BLOCK_SIZE));
	assert_int_not_equal(out[0], out[1]);
	free(buf);
}

static void test_zero_block(void **state)
{
	unsigned char *z = calloc(1, TPX_BLOCK_SIZE);
	uint32_t out;

	(void)state;
	assert_int_equal(crc32c_zero_block(), crc32c(z, TPX_BLOCK_SIZE));
	crc32c_blocks(z, TPX_BLOCK_SIZE, &out);
	assert_int_equal(out, crc32c_zero_block());
	/* The store's thin-provisioning trick relies on this being non-zero. */
	assert_int_not_equal(crc32c_zero_block(), 0u);
	free(z);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_vectors),
		cmocka_unit_test(test_blocks),
		cmocka_unit_test(test_zero_block),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
