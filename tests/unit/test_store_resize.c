/* Growing a replica store (store_grow): data kept, the new blocks read as
 * zeroes with valid checksums, the size survives reopen, shrinking is
 * refused, an interrupted grow leaves the old size and a retry works, and
 * a crash after a grow (unsynced writes undone by the simulator) reopens
 * at the new size with every block readable. */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "store.h"
#include "store_io_sim.h"

#define MiB (1024ull * 1024)
#define OLD_SIZE (6 * MiB)    /* not a whole number of 4 MiB regions */
#define NEW_SIZE (21 * MiB)
#define B STORE_BLOCK

struct ctx {
	char tmp[64];
	char vol[96];
	struct loop loop;
	struct store_io uring;
	struct store_io_sim *sim;
	struct store_io *io;
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

static struct ctx *ctx_new(bool sim)
{
	struct ctx *c = calloc(1, sizeof *c);

	strcpy(c->tmp, "/tmp/tpx-grow-XXXXXX");
	assert_non_null(mkdtemp(c->tmp));
	snprintf(c->vol, sizeof c->vol, "%s/vol", c->tmp);
	assert_int_equal(store_create(c->vol, OLD_SIZE), 0);
	assert_int_equal(loop_init(&c->loop, 64), 0);
	if (sim) {
		c->sim = store_io_sim_new(&c->loop, 7);
		c->io = store_io_sim_io(c->sim);
	} else {
		store_io_uring_init(&c->uring, &c->loop);
		c->io = &c->uring;
	}
	assert_int_equal(store_open(c->vol, c->io, &c->s), 0);
	return c;
}

static void ctx_free(struct ctx *c)
{
	store_close(c->s);
	loop_fini(&c->loop);
	store_io_sim_free(c->sim);
	nftw(c->tmp, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	free(c);
}

static int setup_uring(void **state)
{
	*state = ctx_new(false);
	return 0;
}

static int setup_sim(void **state)
{
	*state = ctx_new(true);
	return 0;
}

static int teardown(void **state)
{
	ctx_free(*state);
	return 0;
}

static void *block_alloc(uint64_t len)
{
	void *p = NULL;

	assert_int_equal(posix_memalign(&p, B, len), 0);
	return p;
}

static void fill(void *buf, uint64_t len, unsigned seed)
{
	for (uint64_t i = 0; i < len; i++)
		((unsigned char *)buf)[i] = (unsigned char)(seed + i * 13 + i / 501);
}

static int do_write(struct ctx *c, uint64_t off, uint64_t len, const void *buf)
{
	uint32_t *crcs = calloc(len / B, 4);
	struct waiter w = { .req = { .done = on_done } };
	int ret;

	w.req.priv = &w;
	crc32c_blocks(buf, len, crcs);
	store_write(c->s, &w.req, off, len, buf, crcs, 0);
	ret = wait_for(c, &w);
	free(crcs);
	return ret;
}

static int do_read(struct ctx *c, uint64_t off, uint64_t len, void *buf,
		   uint32_t *crcs)
{
	struct waiter w = { .req = { .done = on_done } };

	w.req.priv = &w;
	store_read(c->s, &w.req, off, len, buf, crcs);
	return wait_for(c, &w);
}

static int do_flush(struct ctx *c)
{
	struct waiter w = { .req = { .done = on_done } };

	w.req.priv = &w;
	store_flush(c->s, &w.req);
	return wait_for(c, &w);
}

static void reopen(struct ctx *c)
{
	store_close(c->s);
	c->s = NULL;
	assert_int_equal(store_open(c->vol, c->io, &c->s), 0);
}

static off_t file_len(struct ctx *c, const char *name)
{
	char p[160];
	struct stat st;

	snprintf(p, sizeof p, "%s/%s", c->vol, name);
	assert_int_equal(stat(p, &st), 0);
	return st.st_size;
}

static void assert_zero_blocks(struct ctx *c, uint64_t off, uint64_t len)
{
	char *buf = block_alloc(len);
	uint32_t *crcs = calloc(len / B, 4);

	memset(buf, 0x77, len);
	assert_int_equal(do_read(c, off, len, buf, crcs), 0);
	for (uint64_t i = 0; i < len; i++)
		assert_int_equal(buf[i], 0);
	for (uint64_t i = 0; i < len / B; i++)
		assert_int_equal(crcs[i], crc32c_zero_block());
	free(crcs);
	free(buf);
}

/* Data before the grow reads back, the new region reads zeroes, writes
 * across the old end and at the new end work, and all of it survives a
 * reopen at the new size. */
static void test_grow(void **state)
{
	struct ctx *c = *state;
	uint64_t len = 8 * B;
	char *in = block_alloc(len), *out = block_alloc(len);
	char *edge = block_alloc(len);

	fill(in, len, 3);
	assert_int_equal(do_write(c, OLD_SIZE - len, len, in), 0);
	/* Beyond the old end: refused before the grow. */
	assert_int_equal(do_write(c, OLD_SIZE, B, in), -EINVAL);
	assert_int_equal(store_grow(c->s, NEW_SIZE), 0);
	assert_int_equal(store_size(c->s), NEW_SIZE);
	assert_int_equal(file_len(c, "data"), NEW_SIZE);
	assert_int_equal(file_len(c, "crc"), NEW_SIZE / B * 4);
	assert_int_equal(do_read(c, OLD_SIZE - len, len, out, NULL), 0);
	assert_memory_equal(in, out, len);
	assert_zero_blocks(c, OLD_SIZE, NEW_SIZE - OLD_SIZE);
	/* Across the old end, and the new last block. */
	fill(edge, len, 9);
	assert_int_equal(do_write(c, OLD_SIZE - 4 * B, len, edge), 0);
	assert_int_equal(do_write(c, NEW_SIZE - B, B, in), 0);
	assert_int_equal(do_write(c, NEW_SIZE, B, in), -EINVAL);
	assert_int_equal(do_flush(c), 0);
	reopen(c);
	assert_int_equal(store_size(c->s), NEW_SIZE);
	assert_int_equal(do_read(c, OLD_SIZE - 4 * B, len, out, NULL), 0);
	assert_memory_equal(edge, out, len);
	assert_int_equal(do_read(c, NEW_SIZE - B, B, out, NULL), 0);
	assert_memory_equal(in, out, B);
	assert_int_equal(do_read(c, OLD_SIZE - 8 * B, 4 * B, out, NULL), 0);
	assert_memory_equal(in, out, 4 * B);
	assert_zero_blocks(c, OLD_SIZE + 4 * B, 8 * MiB);
	free(in);
	free(out);
	free(edge);
}

/* Smaller is refused, equal is nothing, bad sizes are refused; none of
 * them changes the store. */
static void test_refuse_shrink(void **state)
{
	struct ctx *c = *state;

	assert_int_equal(store_grow(c->s, OLD_SIZE - B), -EINVAL);
	assert_int_equal(store_grow(c->s, B), -EINVAL);
	assert_int_equal(store_grow(c->s, OLD_SIZE + 100), -EINVAL);
	assert_int_equal(store_grow(c->s, STORE_MAX_SIZE + B), -EINVAL);
	assert_int_equal(store_grow(c->s, OLD_SIZE), 0);
	assert_int_equal(store_size(c->s), OLD_SIZE);
	assert_int_equal(file_len(c, "data"), OLD_SIZE);
	reopen(c);
	assert_int_equal(store_size(c->s), OLD_SIZE);
}

/* Grow twice (each a separate superblock write), then reopen. */
static void test_grow_twice(void **state)
{
	struct ctx *c = *state;
	char *in = block_alloc(B), *out = block_alloc(B);

	fill(in, B, 5);
	assert_int_equal(store_grow(c->s, 8 * MiB), 0);
	assert_int_equal(do_write(c, 8 * MiB - B, B, in), 0);
	assert_int_equal(store_grow(c->s, NEW_SIZE), 0);
	assert_int_equal(store_grow(c->s, 8 * MiB), -EINVAL);
	reopen(c);
	assert_int_equal(store_size(c->s), NEW_SIZE);
	assert_int_equal(do_read(c, 8 * MiB - B, B, out, NULL), 0);
	assert_memory_equal(in, out, B);
	free(in);
	free(out);
}

static void scribble(struct ctx *c, const char *name, off_t len)
{
	char p[160], junk[4096];
	int fd;

	memset(junk, 0xa5, sizeof junk);
	snprintf(p, sizeof p, "%s/%s", c->vol, name);
	fd = open(p, O_WRONLY);
	assert_true(fd >= 0);
	assert_int_equal(ftruncate(fd, len), 0);
	assert_int_equal(pwrite(fd, junk, sizeof junk, len - (off_t)sizeof junk),
			 (ssize_t)sizeof junk);
	close(fd);
}

/* A grow interrupted before its superblock write (files extended, with
 * junk past the old end, the superblock still old): the store opens at
 * the old size, and a grow then gives zeroes with valid checksums. */
static void test_interrupted_grow(void **state)
{
	struct ctx *c = *state;

	store_close(c->s);
	c->s = NULL;
	scribble(c, "data", (off_t)NEW_SIZE);
	scribble(c, "crc", (off_t)(NEW_SIZE / B * 4));
	scribble(c, "al", 8192);
	assert_int_equal(store_open(c->vol, c->io, &c->s), 0);
	assert_int_equal(store_size(c->s), OLD_SIZE);
	assert_zero_blocks(c, 0, OLD_SIZE);
	assert_int_equal(store_grow(c->s, NEW_SIZE), 0);
	assert_zero_blocks(c, 0, NEW_SIZE);
	reopen(c);
	assert_zero_blocks(c, 0, NEW_SIZE);
}

/* A grow that finds an activity-log round in flight asks to be retried;
 * one that finds a request in the store is refused. */
static void test_grow_while_busy(void **state)
{
	struct ctx *c = *state;
	char *in = block_alloc(B);
	uint32_t crc;
	struct waiter w = { .req = { .done = on_done } };

	fill(in, B, 1);
	crc = crc32c(in, B);
	w.req.priv = &w;
	store_write(c->s, &w.req, 0, B, in, &crc, 0);
	/* The write waits for its AL round, scheduled on the next turn. */
	assert_int_equal(store_grow(c->s, NEW_SIZE), -EAGAIN);
	assert_int_equal(wait_for(c, &w), 0);
	while (store_busy(c->s))
		loop_poll(&c->loop);
	assert_int_equal(store_grow(c->s, NEW_SIZE), 0);
	free(in);
}

/* Simulator: unflushed writes before and after a grow, then a crash that
 * undoes every unsynced write. The store reopens at the new size, every
 * block reads with a matching checksum, and the flushed blocks are
 * intact. */
static void test_crash_after_grow(void **state)
{
	struct ctx *c = *state;
	uint64_t len = 4 * B;
	char *a = block_alloc(len), *b = block_alloc(len), *out = block_alloc(len);
	char *all = block_alloc(NEW_SIZE);

	fill(a, len, 11);
	fill(b, len, 12);
	assert_int_equal(do_write(c, OLD_SIZE - len, len, a), 0);
	assert_int_equal(do_flush(c), 0);
	assert_int_equal(do_write(c, 0, len, b), 0);          /* not flushed */
	assert_int_equal(store_grow(c->s, NEW_SIZE), 0);
	assert_int_equal(do_write(c, OLD_SIZE + len, len, a), 0);
	assert_int_equal(do_flush(c), 0);
	assert_int_equal(do_write(c, NEW_SIZE - len, len, b), 0); /* not flushed */
	store_io_sim_crash_at(c->sim, store_io_sim_ops(c->sim));
	assert_true(store_io_sim_power_cut(c->sim, SIM_CUT_DROP_ALL) >= 0);
	store_crash_close(c->s);
	c->s = NULL;
	loop_fini(&c->loop);
	store_io_sim_free(c->sim);
	assert_int_equal(loop_init(&c->loop, 64), 0);
	c->sim = store_io_sim_new(&c->loop, 8);
	c->io = store_io_sim_io(c->sim);
	assert_int_equal(store_open(c->vol, c->io, &c->s), 0);
	assert_int_equal(store_size(c->s), NEW_SIZE);
	assert_int_equal(do_read(c, 0, NEW_SIZE, all, NULL), 0);
	assert_memory_equal(all + OLD_SIZE - len, a, len);
	assert_memory_equal(all + OLD_SIZE + len, a, len);
	free(a);
	free(b);
	free(out);
	free(all);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_grow, setup_uring, teardown),
		cmocka_unit_test_setup_teardown(test_refuse_shrink, setup_uring,
						teardown),
		cmocka_unit_test_setup_teardown(test_grow_twice, setup_uring,
						teardown),
		cmocka_unit_test_setup_teardown(test_interrupted_grow,
						setup_uring, teardown),
		cmocka_unit_test_setup_teardown(test_grow_while_busy, setup_uring,
						teardown),
		cmocka_unit_test_setup_teardown(test_crash_after_grow, setup_sim,
						teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
