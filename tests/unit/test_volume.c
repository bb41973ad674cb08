/* The engine over a real store: any size and alignment, read-modify-write
 * of partial blocks, and overlapping requests applied in arrival order
 * (invariants 9 and 10), checked against an in-memory model. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "store.h"
#include "store_io.h"
#include "volume.h"

#define VOL_SIZE (256u * 1024)
#define BATCH 16

struct fixture {
	char dir[64];
	struct loop loop;
	struct store_io io;
	struct vol *vol;
	uint8_t model[VOL_SIZE];
	unsigned pending;
};

struct op {
	struct vol_req r;
	struct fixture *f;
	uint8_t *buf;
	uint8_t *expect;   /* reads: the model's bytes at submit time */
	uint64_t off, len;
	int res;
	bool done;
};

static void rm_rf(const char *dir)
{
	char cmd[128];

	snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
	assert_int_equal(system(cmd), 0);
}

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof *f);
	struct store *st;
	char path[96];

	strcpy(f->dir, "/tmp/tpx-volume-XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	snprintf(path, sizeof path, "%s/v", f->dir);
	assert_int_equal(store_create(path, VOL_SIZE), 0);
	assert_int_equal(loop_init(&f->loop, 256), 0);
	store_io_uring_init(&f->io, &f->loop);
	assert_int_equal(store_open(path, &f->io, &st), 0);
	f->vol = vol_new("v", st, &f->loop);
	assert_non_null(f->vol);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	vol_free(f->vol);
	loop_fini(&f->loop);
	rm_rf(f->dir);
	free(f);
	return 0;
}

static void op_done(struct vol_req *r, int res)
{
	struct op *o = r->priv;

	o->res = res;
	o->done = true;
	o->f->pending--;
}

static void run_until_idle(struct fixture *f)
{
	for (int spins = 0; f->pending > 0; spins++) {
		assert_true(spins < 10000000);
		assert_true(loop_poll(&f->loop) >= 0);
	}
}

static struct op *op_new(struct fixture *f, uint64_t off, uint64_t len)
{
	struct op *o = calloc(1, sizeof *o);

	o->f = f;
	o->r.done = op_done;
	o->r.priv = o;
	assert_int_equal(posix_memalign((void **)&o->buf, 4096,
					vol_span(off, len) + 4096), 0);
	return o;
}

static void op_free(struct op *o)
{
	vol_req_fini(&o->r);
	free(o->buf);
	free(o->expect);
	free(o);
}

static struct op *submit_write(struct fixture *f, uint64_t off, uint64_t len, uint8_t seed)
{
	struct op *o = op_new(f, off, len);
	uint8_t *data = o->buf + off % 4096;

	for (uint64_t i = 0; i < len; i++)
		data[i] = (uint8_t)(seed + i * 7);
	memcpy(f->model + off, data, len);
	f->pending++;
	vol_submit(f->vol, &o->r, VOL_WRITE, off, len, o->buf, 0);
	return o;
}

static struct op *submit_zero(struct fixture *f, uint64_t off, uint64_t len)
{
	struct op *o = op_new(f, off, len);

	memset(f->model + off, 0, len);
	f->pending++;
	vol_submit(f->vol, &o->r, VOL_ZERO, off, len, NULL, 0);
	return o;
}

static struct op *submit_read(struct fixture *f, uint64_t off, uint64_t len)
{
	struct op *o = op_new(f, off, len);

	o->expect = malloc(len ? len : 1);
	memcpy(o->expect, f->model + off, len);
	f->pending++;
	o->off = off;
	o->len = len;
	vol_submit(f->vol, &o->r, VOL_READ, off, len, o->buf, 0);
	return o;
}

static void check_and_free(struct op *o)
{
	assert_true(o->done);
	assert_int_equal(o->res, 0);
	if (o->expect)
		assert_memory_equal(o->buf + o->off % 4096, o->expect, o->len);
	op_free(o);
}

static void check_whole_volume(struct fixture *f)
{
	struct op *o = submit_read(f, 0, VOL_SIZE);

	run_until_idle(f);
	check_and_free(o);
}

static void test_unaligned_writes(void **state)
{
	struct fixture *f = *state;
	static const uint64_t cases[][2] = {
		{ 4095, 1 }, { 1000, 512 }, { 3000, 6000 }, { 0, 1 },
		{ 8191, 2 }, { 12288, 4096 }, { 65536 - 7, 14 },
		{ VOL_SIZE - 1, 1 },
	};

	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		struct op *o = submit_write(f, cases[i][0], cases[i][1], (uint8_t)(i + 1));

		run_until_idle(f);
		check_and_free(o);
	}
	assert_true(vol_get_stats(f->vol)->rmw >= 6);
	check_whole_volume(f);
}

static void test_overlapping_in_flight(void **state)
{
	struct fixture *f = *state;
	struct op *ops[BATCH];

	/* All in flight at once over the same blocks: the last one wins. */
	for (int i = 0; i < BATCH; i++)
		ops[i] = submit_write(f, 4096 + (uint64_t)i * 100, 8192, (uint8_t)(i * 13));
	run_until_idle(f);
	for (int i = 0; i < BATCH; i++)
		check_and_free(ops[i]);
	check_whole_volume(f);
}

static void test_unaligned_zero(void **state)
{
	struct fixture *f = *state;
	struct op *w = submit_write(f, 0, 65536, 5);
	struct op *z[3];

	run_until_idle(f);
	check_and_free(w);
	z[0] = submit_zero(f, 100, 50);
	z[1] = submit_zero(f, 4000, 10000);
	z[2] = submit_zero(f, 20480, 8192);
	run_until_idle(f);
	for (int i = 0; i < 3; i++)
		check_and_free(z[i]);
	check_whole_volume(f);
}

static void test_random_mix(void **state)
{
	struct fixture *f = *state;

	srand(42);
	for (int round = 0; round < 40; round++) {
		struct op *ops[BATCH];

		for (int i = 0; i < BATCH; i++) {
			uint64_t len = 1 + (uint64_t)rand() % 20000;
			uint64_t off = (uint64_t)rand() % (VOL_SIZE - len);
			int kind = rand() % 4;

			if (kind == 0)
				ops[i] = submit_read(f, off, len);
			else if (kind == 1)
				ops[i] = submit_zero(f, off, len);
			else
				ops[i] = submit_write(f, off, len, (uint8_t)rand());
		}
		run_until_idle(f);
		for (int i = 0; i < BATCH; i++)
			check_and_free(ops[i]);
	}
	check_whole_volume(f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_unaligned_writes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_overlapping_in_flight, setup, teardown),
		cmocka_unit_test_setup_teardown(test_unaligned_zero, setup, teardown),
		cmocka_unit_test_setup_teardown(test_random_mix, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
