/* parse_size and parse_block_size: units (powers of 1024 and of 1000),
 * rounding to 4 KiB, and garbage refused. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "parse.h"

static uint64_t size_of(const char *s)
{
	uint64_t v = 0;

	assert_int_equal(parse_size(s, &v), 0);
	return v;
}

static void test_binary_units(void **state)
{
	(void)state;
	assert_int_equal(size_of("4096"), 4096);
	assert_int_equal(size_of("4096B"), 4096);
	assert_int_equal(size_of("1K"), 1024);
	assert_int_equal(size_of("1k"), 1024);
	assert_int_equal(size_of("1KiB"), 1024);
	assert_int_equal(size_of("512M"), 512ull << 20);
	assert_int_equal(size_of("512MiB"), 512ull << 20);
	assert_int_equal(size_of("2G"), 2ull << 30);
	assert_int_equal(size_of("2GiB"), 2ull << 30);
	assert_int_equal(size_of("3T"), 3ull << 40);
	assert_int_equal(size_of("3TiB"), 3ull << 40);
	assert_int_equal(size_of("1P"), 1ull << 50);
	assert_int_equal(size_of("1PiB"), 1ull << 50);
	assert_int_equal(size_of("1E"), 1ull << 60);
}

static void test_decimal_units(void **state)
{
	(void)state;
	assert_int_equal(size_of("1KB"), 1000);
	assert_int_equal(size_of("1kB"), 1000);
	assert_int_equal(size_of("5MB"), 5000000);
	assert_int_equal(size_of("2GB"), 2000000000ull);
	assert_int_equal(size_of("3TB"), 3000000000000ull);
	assert_int_equal(size_of("1PB"), 1000000000000000ull);
	assert_int_equal(size_of("18EB"), 18000000000000000000ull);
}

static void test_garbage(void **state)
{
	static const char *const bad[] = {
		"", "0", "0K", "-1", "abc", "12Q", "1.5G", " 1M", "1M2", "0x100",
		"1 G", "1GiBB", "1Gb", "1GIB", "1iB", "B", "K",
		"99999999999999999999", "16777216T", "19EB", "16E", NULL,
	};
	uint64_t v;

	(void)state;
	for (int i = 0; bad[i]; i++) {
		if (parse_size(bad[i], &v) != -EINVAL)
			fail_msg("'%s' was taken as %llu", bad[i], (unsigned long long)v);
	}
	assert_int_equal(parse_size(NULL, &v), -EINVAL);
}

static void test_block_rounding(void **state)
{
	uint64_t v, given;

	(void)state;
	assert_int_equal(parse_block_size("1G", &v, &given), 0);
	assert_int_equal(v, 1ull << 30);
	assert_int_equal(parse_block_size("4096", &v, &given), 0);
	assert_int_equal(v, 4096);
	/* 2 GB is not a multiple of 4 KiB: up to the next one. */
	assert_int_equal(parse_block_size("2GB", &v, &given), 1);
	assert_int_equal(given, 2000000000ull);
	assert_int_equal(v, 2000003072ull);
	assert_int_equal(v % 4096, 0);
	assert_int_equal(parse_block_size("1", &v, &given), 1);
	assert_int_equal(v, 4096);
	assert_int_equal(parse_block_size("4097", &v, &given), 1);
	assert_int_equal(v, 8192);
	assert_int_equal(parse_block_size("18446744073709551615", &v, &given),
			 -EINVAL);
	assert_int_equal(parse_block_size("0", &v, &given), -EINVAL);
	assert_int_equal(parse_block_size("1.5G", &v, &given), -EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_binary_units),
		cmocka_unit_test(test_decimal_units),
		cmocka_unit_test(test_garbage),
		cmocka_unit_test(test_block_rounding),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
