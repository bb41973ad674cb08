/* The store's fencing and resync support: the durable highest epoch,
 * stored checksums by range, and the dirty regions of the activity log. */
#include <errno.h>
#include <ftw.h>
#include <sched.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "store.h"

#define MiB (1024ull * 1024)
#define VOL_SIZE (16 * MiB)
#define REGION (4 * MiB)
#define B STORE_BLOCK

struct ctx {
	char tmp[64];
	char vol[96];
	struct loop loop;
	struct store_io io;
	struct store *s;
};

struct waiter {
	struct store_req req;
	int res;
	bool done;
};

static void on_done(struct store_req *r, int res)
{
	struct waiter *w = r->priv;

	w->res = res;
	w->done = true;
}

static int wait_for(struct ctx *c, struct waiter *w)
{
	time_t t0 = time(NULL);

	while (!w->done) {
		assert_true(loop_poll(&c->loop) >= 0);
		if (!w->done)
			sched_yield();
		assert_true(time(NULL) - t0 < 10);
	}
	return w->res;
}

static int rm_one(const char *p, const struct stat *st, int flag,
		  struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(p);
}

static int setup(void **state)
{
	struct ctx *c = calloc(1, sizeof *c);

	strcpy(c->tmp, "/tmp/tpx-fence-XXXXXX");
	assert_non_null(mkdtemp(c->tmp));
	snprintf(c->vol, sizeof c->vol, "%s/vol", c->tmp);
	assert_int_equal(store_create(c->vol, VOL_SIZE), 0);
	assert_int_equal(loop_init(&c->loop, 64), 0);
	store_io_uring_init(&c->io, &c->loop);
	assert_int_equal(store_open(c->vol, &c->io, &c->s), 0);
	*state = c;
	return 0;
}

static int teardown(void **state)
{
	struct ctx *c = *state;

	store_close(c->s);
	loop_fini(&c->loop);
	nftw(c->tmp, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	free(c);
	return 0;
}

static void reopen(struct ctx *c, bool crash)
{
	if (crash)
		store_crash_close(c->s);
	else
		store_close(c->s);
	c->s = NULL;
	assert_int_equal(store_open(c->vol, &c->io, &c->s), 0);
}

static int do_write(struct ctx *c, uint64_t off, uint64_t len, unsigned seed)
{
	uint32_t *crcs = calloc(len / B, 4);
	unsigned char *buf = NULL;
	struct waiter w = { .req = { .done = on_done } };
	int ret;

	assert_int_equal(posix_memalign((void **)&buf, B, len), 0);
	for (uint64_t i = 0; i < len; i++)
		buf[i] = (unsigned char)(seed + i * 7);
	crc32c_blocks(buf, len, crcs);
	w.req.priv = &w;
	store_write(c->s, &w.req, off, len, buf, crcs, 0);
	ret = wait_for(c, &w);
	free(buf);
	free(crcs);
	return ret;
}

static int do_flush(struct ctx *c)
{
	struct waiter w = { .req = { .done = on_done } };

	w.req.priv = &w;
	store_flush(c->s, &w.req);
	return wait_for(c, &w);
}

static void test_epoch(void **state)
{
	struct ctx *c = *state;

	assert_int_equal(store_get_epoch(c->s), 0);
	assert_int_equal(store_set_epoch(c->s, 5), 0);
	assert_int_equal(store_get_epoch(c->s), 5);
	assert_int_equal(store_set_epoch(c->s, 5), 0);
	assert_int_equal(store_set_epoch(c->s, 4), -ESTALE);
	assert_int_equal(store_get_epoch(c->s), 5);
	reopen(c, false);
	assert_int_equal(store_get_epoch(c->s), 5);
	assert_int_equal(store_set_epoch(c->s, 9), 0);
	/* Durable at once: a crash right after keeps it. */
	reopen(c, true);
	assert_int_equal(store_get_epoch(c->s), 9);
	assert_int_equal(store_set_epoch(c->s, 1), -ESTALE);
}

static void test_crcs(void **state)
{
	struct ctx *c = *state;
	uint32_t got[4], want[3];
	unsigned char *buf = NULL;

	assert_int_equal(do_write(c, 4 * B, 3 * B, 11), 0);
	assert_int_equal(posix_memalign((void **)&buf, B, 3 * B), 0);
	for (uint64_t i = 0; i < 3 * B; i++)
		buf[i] = (unsigned char)(11 + i * 7);
	crc32c_blocks(buf, 3 * B, want);
	free(buf);
	assert_int_equal(store_crcs(c->s, 3 * B, 4 * B, got), 0);
	assert_int_equal(got[0], crc32c_zero_block());   /* never written */
	assert_memory_equal(got + 1, want, sizeof want);
	assert_int_equal(store_crcs(c->s, VOL_SIZE - B, B, got), 0);
	assert_int_equal(store_crcs(c->s, 100, B, got), -EINVAL);
	assert_int_equal(store_crcs(c->s, 0, 100, got), -EINVAL);
	assert_int_equal(store_crcs(c->s, VOL_SIZE, B, got), -EINVAL);
	assert_int_equal(store_crcs(c->s, VOL_SIZE - B, 2 * B, got), -EINVAL);
}

static void test_dirty(void **state)
{
	struct ctx *c = *state;
	uint64_t offs[8], rs = 0;

	assert_int_equal(store_dirty_regions(c->s, offs, 8, &rs), 0);
	assert_int_equal(rs, REGION);
	assert_int_equal(do_write(c, 0, B, 1), 0);
	assert_int_equal(do_write(c, 2 * REGION + 8 * B, 2 * B, 2), 0);
	assert_int_equal(store_dirty_regions(c->s, offs, 8, &rs), 2);
	assert_int_equal(offs[0], 0);
	assert_int_equal(offs[1], 2 * REGION);
	offs[1] = 77;
	/* Cut short: the count says there is more. */
	assert_int_equal(store_dirty_regions(c->s, offs, 1, &rs), 2);
	assert_int_equal(offs[1], 77);
	assert_int_equal(do_flush(c), 0);
	assert_int_equal(store_dirty_regions(c->s, offs, 8, &rs), 0);
	/* Region 1 right after region 0 looks sequential: the regions after
	 * it are marked in the same round (here up to the last one). */
	assert_int_equal(do_write(c, REGION - B, B, 5), 0);
	assert_int_equal(store_dirty_regions(c->s, offs, 8, &rs), 1);
	assert_int_equal(do_write(c, REGION, B, 5), 0);
	assert_int_equal(store_dirty_regions(c->s, offs, 8, &rs), 4);
	assert_int_equal(offs[3], 3 * REGION);
	/* A flush forgets the ones no write touched, too. */
	assert_int_equal(do_flush(c), 0);
	assert_int_equal(store_dirty_regions(c->s, offs, 8, &rs), 0);
}

static void test_dirty_recovered(void **state)
{
	struct ctx *c = *state;
	uint64_t offs[8], rs;

	assert_int_equal(do_write(c, REGION, B, 3), 0);
	assert_int_equal(do_write(c, 3 * REGION, B, 3), 0);
	reopen(c, true);   /* crash: the AL still holds both regions */
	assert_int_equal(store_dirty_regions(c->s, offs, 8, &rs), 2);
	assert_int_equal(offs[0], REGION);
	assert_int_equal(offs[1], 3 * REGION);
	/* A flush does not forget them: only other replicas can say what
	 * the regions should hold. New writes merge in order. */
	assert_int_equal(do_write(c, 2 * REGION, B, 4), 0);
	assert_int_equal(do_flush(c), 0);
	assert_int_equal(do_write(c, 0, B, 4), 0);
	assert_int_equal(store_dirty_regions(c->s, offs, 8, &rs), 3);
	assert_int_equal(offs[0], 0);
	assert_int_equal(offs[1], REGION);
	assert_int_equal(offs[2], 3 * REGION);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_epoch, setup, teardown),
		cmocka_unit_test_setup_teardown(test_crcs, setup, teardown),
		cmocka_unit_test_setup_teardown(test_dirty, setup, teardown),
		cmocka_unit_test_setup_teardown(test_dirty_recovered, setup,
						teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
