/* The replica store through the real io_uring backend (and the simulator
 * for short transfers and injected errors). */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <linux/falloc.h>
#include <linux/fs.h>
#include <pthread.h>
#include <sched.h>
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
#define VOL_SIZE (16 * MiB)
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

	assert_false(w->done);   /* called once */
	w->res = res;
	w->done = true;
}

static void waiter_init(struct waiter *w)
{
	memset(w, 0, sizeof *w);
	w->req.done = on_done;
	w->req.priv = w;
	w->res = 1;
}

static int rm_one(const char *p, const struct stat *st, int flag,
		  struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(p);
}

/* Drive the loop until w is done (10 s at most). */
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

static void ctx_open(struct ctx *c)
{
	assert_int_equal(store_open(c->vol, c->io, &c->s), 0);
}

static struct ctx *ctx_new(bool sim)
{
	struct ctx *c = calloc(1, sizeof *c);

	strcpy(c->tmp, "/tmp/tpx-store-XXXXXX");
	assert_non_null(mkdtemp(c->tmp));
	snprintf(c->vol, sizeof c->vol, "%s/vol", c->tmp);
	assert_int_equal(store_create(c->vol, VOL_SIZE), 0);
	assert_int_equal(loop_init(&c->loop, 64), 0);
	if (sim) {
		c->sim = store_io_sim_new(&c->loop, 42);
		c->io = store_io_sim_io(c->sim);
	} else {
		store_io_uring_init(&c->uring, &c->loop);
		c->io = &c->uring;
	}
	ctx_open(c);
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
		((unsigned char *)buf)[i] = (unsigned char)(seed + i * 31 + i / 977);
}

static int do_write(struct ctx *c, uint64_t off, uint64_t len,
		    const void *buf, unsigned flags)
{
	uint32_t *crcs = calloc(len / B + 1, 4);
	struct waiter w;
	int ret;

	crc32c_blocks(buf, len, crcs);
	waiter_init(&w);
	store_write(c->s, &w.req, off, len, buf, crcs, flags);
	ret = wait_for(c, &w);
	free(crcs);
	return ret;
}

static int do_read(struct ctx *c, uint64_t off, uint64_t len, void *buf,
		   uint32_t *crcs)
{
	struct waiter w;

	waiter_init(&w);
	store_read(c->s, &w.req, off, len, buf, crcs);
	return wait_for(c, &w);
}

static int do_zero(struct ctx *c, bool trim, uint64_t off, uint64_t len,
		   unsigned flags)
{
	struct waiter w;

	waiter_init(&w);
	if (trim)
		store_trim(c->s, &w.req, off, len, flags);
	else
		store_zero(c->s, &w.req, off, len, flags);
	return wait_for(c, &w);
}

static int do_flush(struct ctx *c)
{
	struct waiter w;

	waiter_init(&w);
	store_flush(c->s, &w.req);
	return wait_for(c, &w);
}

static int vol_file(struct ctx *c, const char *name, int flags)
{
	char p[160];

	snprintf(p, sizeof p, "%s/%s", c->vol, name);
	return open(p, flags);
}

static off_t file_blocks(struct ctx *c, const char *name)
{
	struct stat st;
	int fd = vol_file(c, name, O_RDONLY);

	assert_true(fd >= 0);
	assert_int_equal(fstat(fd, &st), 0);
	close(fd);
	return st.st_blocks;
}

static bool is_zero(const void *buf, uint64_t len)
{
	for (uint64_t i = 0; i < len; i++)
		if (((const unsigned char *)buf)[i])
			return false;
	return true;
}

/* --- tests --------------------------------------------------------------- */

static void test_create_open(void **state)
{
	struct ctx *c = *state;
	struct stat st;
	int fd;

	assert_int_equal(store_size(c->s), VOL_SIZE);
	/* /tmp is a disk filesystem here: O_DIRECT must have been taken. */
	assert_false(store_is_buffered(c->s));
	assert_int_equal(store_create(c->vol, VOL_SIZE), -EEXIST);
	assert_int_equal(store_create("/tmp/tpx-never-xyz", 1000), -EINVAL);
	fd = vol_file(c, "data", O_RDONLY);
	assert_int_equal(fstat(fd, &st), 0);
	close(fd);
	assert_int_equal(st.st_size, VOL_SIZE);
	assert_int_equal(st.st_blocks, 0);   /* thin */
	fd = vol_file(c, "crc", O_RDONLY);
	assert_int_equal(fstat(fd, &st), 0);
	close(fd);
	assert_int_equal(st.st_size, VOL_SIZE / B * 4);
	assert_int_equal(store_get_stats(c->s)->writes, 0);
}

static void test_open_rejects_garbage(void **state)
{
	struct ctx *c = *state;
	struct store *s2 = NULL;
	char junk[512];
	int fd;

	store_close(c->s);
	c->s = NULL;
	memset(junk, 0x5a, sizeof junk);
	fd = vol_file(c, "meta", O_WRONLY);
	assert_int_equal(pwrite(fd, junk, sizeof junk, 0), 512);
	assert_int_equal(pwrite(fd, junk, sizeof junk, 4096), 512);
	close(fd);
	assert_int_equal(store_open(c->vol, c->io, &s2), -EINVAL);
	assert_int_equal(store_open("/tmp/tpx-no-such-vol", c->io, &s2),
			 -ENOENT);
}

static void test_roundtrip(void **state)
{
	struct ctx *c = *state;
	uint64_t len = 3 * B;
	char *in = block_alloc(len), *out = block_alloc(len);
	uint32_t crcs[3], want[3];

	fill(in, len, 7);
	crc32c_blocks(in, len, want);
	assert_int_equal(do_write(c, 5 * MiB, len, in, 0), 0);
	memset(out, 0xee, len);
	assert_int_equal(do_read(c, 5 * MiB, len, out, crcs), 0);
	assert_memory_equal(in, out, len);
	assert_memory_equal(crcs, want, sizeof want);
	/* Unwritten blocks read as zeroes with the zero-block crc. */
	assert_int_equal(do_read(c, 0, B, out, crcs), 0);
	assert_true(is_zero(out, B));
	assert_int_equal(crcs[0], crc32c_zero_block());
	/* The last block of the volume, with FUA. */
	fill(in, B, 99);
	assert_int_equal(do_write(c, VOL_SIZE - B, B, in, STORE_FUA), 0);
	assert_int_equal(do_read(c, VOL_SIZE - B, B, out, NULL), 0);
	assert_memory_equal(in, out, B);
	assert_int_equal(store_get_stats(c->s)->writes, 2);
	assert_int_equal(store_get_stats(c->s)->write_bytes, 4 * B);
	assert_int_equal(store_get_stats(c->s)->reads, 3);
	free(in);
	free(out);
}

/* Many writes in flight at once, in several regions, then read back. */
static void test_concurrent(void **state)
{
	struct ctx *c = *state;
	enum { N = 24 };
	struct waiter w[N];
	uint32_t crcs[N][2];
	char *buf = block_alloc(N * 2 * B), *out = block_alloc(2 * B);

	fill(buf, N * 2 * B, 3);
	for (int i = 0; i < N; i++) {
		uint64_t off = (uint64_t)i * 640 * 1024;

		crc32c_blocks(buf + i * 2 * B, 2 * B, crcs[i]);
		waiter_init(&w[i]);
		store_write(c->s, &w[i].req, off, 2 * B, buf + i * 2 * B,
			    crcs[i], i % 3 == 0 ? STORE_FUA : 0);
	}
	for (int i = 0; i < N; i++)
		assert_int_equal(wait_for(c, &w[i]), 0);
	for (int i = 0; i < N; i++) {
		assert_int_equal(do_read(c, (uint64_t)i * 640 * 1024, 2 * B,
					 out, NULL), 0);
		assert_memory_equal(out, buf + i * 2 * B, 2 * B);
	}
	/* 4 regions became dirty, all in the first turn: one AL sync. */
	assert_int_equal(store_get_stats(c->s)->al_syncs, 1);
	free(buf);
	free(out);
}

static void test_bad_crc_refused(void **state)
{
	struct ctx *c = *state;
	char *in = block_alloc(2 * B), *out = block_alloc(2 * B);
	uint32_t crcs[2];
	struct waiter w;

	fill(in, 2 * B, 1);
	crc32c_blocks(in, 2 * B, crcs);
	crcs[1] ^= 1;
	waiter_init(&w);
	store_write(c->s, &w.req, 0, 2 * B, in, crcs, 0);
	assert_false(w.done);   /* never completes inside the call */
	assert_int_equal(wait_for(c, &w), -STORE_ECSUM);
	assert_int_equal(do_read(c, 0, 2 * B, out, NULL), 0);
	assert_true(is_zero(out, 2 * B));   /* nothing stored */
	assert_int_equal(file_blocks(c, "data"), 0);
	assert_int_equal(store_get_stats(c->s)->writes, 0);
	free(in);
	free(out);
}

static void test_invalid_args(void **state)
{
	struct ctx *c = *state;
	char *buf = block_alloc(B);
	struct waiter w;

	waiter_init(&w);
	store_read(c->s, &w.req, 100, B, buf, NULL);
	assert_false(w.done);
	assert_int_equal(wait_for(c, &w), -EINVAL);
	waiter_init(&w);
	store_read(c->s, &w.req, VOL_SIZE, B, buf, NULL);
	assert_int_equal(wait_for(c, &w), -EINVAL);
	assert_int_equal(do_zero(c, true, 0, 100, 0), -EINVAL);
	assert_int_equal(do_zero(c, false, VOL_SIZE - B, 2 * B, 0), -EINVAL);
	assert_int_equal(do_read(c, 0, 0, buf, NULL), 0);
	free(buf);
}

static void test_corrupt_data_detected(void **state)
{
	struct ctx *c = *state;
	char *in = block_alloc(2 * B), *out = block_alloc(2 * B);
	unsigned char byte;
	int fd;

	fill(in, 2 * B, 5);
	assert_int_equal(do_write(c, 8 * MiB, 2 * B, in, 0), 0);
	store_close(c->s);
	fd = vol_file(c, "data", O_RDWR);
	assert_int_equal(pread(fd, &byte, 1, 8 * MiB + B + 17), 1);
	byte ^= 0x40;
	assert_int_equal(pwrite(fd, &byte, 1, 8 * MiB + B + 17), 1);
	close(fd);
	ctx_open(c);
	assert_int_equal(store_get_stats(c->s)->suspect_blocks, 0);
	assert_int_equal(do_read(c, 8 * MiB, B, out, NULL), 0);
	assert_memory_equal(out, in, B);
	assert_int_equal(do_read(c, 8 * MiB, 2 * B, out, NULL), -EBADMSG);
	assert_int_equal(do_read(c, 8 * MiB + B, B, out, NULL), -EBADMSG);
	assert_int_equal(store_get_stats(c->s)->csum_errors, 2);
	/* Rewriting the block heals it. */
	assert_int_equal(do_write(c, 8 * MiB + B, B, in, 0), 0);
	assert_int_equal(do_read(c, 8 * MiB + B, B, out, NULL), 0);
	free(in);
	free(out);
}

static void expect_extent(const struct store_extent *e, uint64_t off,
			  uint64_t len, bool hole)
{
	assert_int_equal(e->off, off);
	assert_int_equal(e->len, len);
	assert_int_equal(e->hole, hole);
}

static void test_extents(void **state)
{
	struct ctx *c = *state;
	struct store_extent e[8];
	char *in = block_alloc(2 * B);

	assert_int_equal(store_extents(c->s, 0, VOL_SIZE, e, 8), 1);
	expect_extent(&e[0], 0, VOL_SIZE, true);
	fill(in, 2 * B, 2);
	assert_int_equal(do_write(c, 4 * MiB, 2 * B, in, 0), 0);
	assert_int_equal(do_write(c, 8 * MiB + B, B, in, 0), 0);
	assert_int_equal(store_extents(c->s, 0, VOL_SIZE, e, 8), 5);
	expect_extent(&e[0], 0, 4 * MiB, true);
	expect_extent(&e[1], 4 * MiB, 2 * B, false);
	expect_extent(&e[2], 4 * MiB + 2 * B, 4 * MiB - B, true);
	expect_extent(&e[3], 8 * MiB + B, B, false);
	expect_extent(&e[4], 8 * MiB + 2 * B, 8 * MiB - 2 * B, true);
	/* max limits; sub-ranges are clipped exactly. */
	assert_int_equal(store_extents(c->s, 0, VOL_SIZE, e, 2), 2);
	assert_int_equal(store_extents(c->s, 4 * MiB + B, 2 * B, e, 8), 2);
	expect_extent(&e[0], 4 * MiB + B, B, false);
	expect_extent(&e[1], 4 * MiB + 2 * B, B, true);
	/* Past the end: clipped to the volume. */
	assert_int_equal(store_extents(c->s, VOL_SIZE - B, 10 * B, e, 8), 1);
	expect_extent(&e[0], VOL_SIZE - B, B, true);
	assert_int_equal(store_extents(c->s, VOL_SIZE, B, e, 8), 0);
	free(in);
}

/* Another writer punches and refills block 0 of the data file while
 * extents are asked for: the two seeks inside may disagree, and the answer
 * must still cover the range with non-empty extents (NBD forbids a
 * zero-length one; one was seen under load in t-nbd-flags-3rep). */
struct flapper {
	int fd;
	volatile int stop;
	long flips;
};

static void *flap(void *arg)
{
	struct flapper *f = arg;
	static char buf[4096];

	memset(buf, 7, sizeof buf);
	while (!f->stop) {
		if (fallocate(f->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
			      0, 4096) == 0 &&
		    pwrite(f->fd, buf, sizeof buf, 0) == (ssize_t)sizeof buf)
			f->flips++;
	}
	return NULL;
}

static void test_extents_racing_writer(void **state)
{
	struct ctx *c = *state;
	struct flapper f = { .fd = vol_file(c, "data", O_RDWR) };
	struct store_extent e[4];
	pthread_t t;

	assert_true(f.fd >= 0);
	assert_int_equal(pthread_create(&t, NULL, flap, &f), 0);
	for (int i = 0; i < 100000; i++) {
		int one = store_extents(c->s, 0, 10326, e, 1);
		int n = store_extents(c->s, 0, 10326, e + 1, 3);

		assert_int_equal(one, 1);
		assert_true(e[0].off == 0 && e[0].len > 0);
		assert_true(n >= 1);
		for (int k = 1; k <= n; k++)
			assert_true(e[k].len > 0);
	}
	f.stop = 1;
	pthread_join(t, NULL);
	assert_true(f.flips > 0);
	close(f.fd);
}

static void test_trim_zero(void **state)
{
	struct ctx *c = *state;
	uint64_t len = 2 * MiB;
	char *in = block_alloc(len), *out = block_alloc(len);
	uint32_t crcs[2];
	struct store_extent e[8];
	off_t full;

	fill(in, len, 9);
	assert_int_equal(do_write(c, 0, len, in, 0), 0);
	full = file_blocks(c, "data");
	assert_true(full >= (off_t)(len / 512));
	/* trim the middle MiB: zeroes, a hole, fewer blocks */
	assert_int_equal(do_zero(c, true, 512 * 1024, MiB, 0), 0);
	assert_int_equal(do_read(c, 0, len, out, NULL), 0);
	assert_memory_equal(out, in, 512 * 1024);
	assert_true(is_zero(out + 512 * 1024, MiB));
	assert_memory_equal(out + 1536 * 1024, in + 1536 * 1024, 512 * 1024);
	assert_true(file_blocks(c, "data") <= full - (off_t)(MiB / 512));
	assert_int_equal(store_extents(c->s, 0, len, e, 8), 3);
	expect_extent(&e[1], 512 * 1024, MiB, true);
	/* zero with a hole, FUA */
	assert_int_equal(do_zero(c, false, 0, 2 * B, STORE_FUA), 0);
	assert_int_equal(do_read(c, 0, 2 * B, out, crcs), 0);
	assert_true(is_zero(out, 2 * B));
	assert_int_equal(crcs[1], crc32c_zero_block());
	assert_int_equal(store_extents(c->s, 0, 2 * B, e, 8), 1);
	assert_true(e[0].hole);
	/* zero, NO_HOLE: zeroes, but the space stays allocated (ext4 keeps
	 * it as unwritten extents, which SEEK_DATA may call holes). */
	full = file_blocks(c, "data");
	assert_int_equal(do_zero(c, false, 1536 * 1024, 2 * B, STORE_NO_HOLE), 0);
	assert_int_equal(do_read(c, 1536 * 1024, 2 * B, out, crcs), 0);
	assert_true(is_zero(out, 2 * B));
	assert_int_equal(crcs[0], crc32c_zero_block());
	assert_int_equal(file_blocks(c, "data"), full);
	/* ... where punching the same size frees it */
	assert_int_equal(do_zero(c, false, 1536 * 1024 + 2 * B, 2 * B, 0), 0);
	assert_int_equal(file_blocks(c, "data"), full - 2 * B / 512);
	assert_int_equal(store_get_stats(c->s)->trims, 1);
	assert_int_equal(store_get_stats(c->s)->zeroes, 3);
	free(in);
	free(out);
}

static bool al_bit_on_disk(struct ctx *c, unsigned region)
{
	unsigned char byte = 0;
	int fd = vol_file(c, "al", O_RDONLY);

	assert_int_equal(pread(fd, &byte, 1, region / 8), 1);
	close(fd);
	return byte & (1u << (region % 8));
}

/* The activity log is durable before a write and cleared after a flush. */
static void test_flush_clears_al(void **state)
{
	struct ctx *c = *state;
	char *in = block_alloc(B);

	fill(in, B, 4);
	assert_false(al_bit_on_disk(c, 2));
	assert_int_equal(do_write(c, 8 * MiB, B, in, 0), 0);
	assert_true(al_bit_on_disk(c, 2));
	assert_false(al_bit_on_disk(c, 1));
	/* Second write to the region: no new AL sync. */
	assert_int_equal(do_write(c, 8 * MiB + B, B, in, 0), 0);
	assert_int_equal(store_get_stats(c->s)->al_syncs, 1);
	assert_int_equal(do_flush(c), 0);
	assert_int_equal(store_get_stats(c->s)->flushes, 1);
	for (int i = 0; i < 10; i++)
		loop_poll(&c->loop);   /* the lazy clearing write */
	for (int i = 0; i < 100 && al_bit_on_disk(c, 2); i++) {
		usleep(1000);
		loop_poll(&c->loop);
	}
	assert_false(al_bit_on_disk(c, 2));
	/* Dirty again: a new AL sync. */
	assert_int_equal(do_write(c, 8 * MiB, B, in, 0), 0);
	assert_true(al_bit_on_disk(c, 2));
	assert_int_equal(store_get_stats(c->s)->al_syncs, 2);
	free(in);
}

/* A clean close leaves nothing to recover; the data survives reopen. */
static void test_reopen(void **state)
{
	struct ctx *c = *state;
	char *in = block_alloc(4 * B), *out = block_alloc(4 * B);
	const struct store_extent *regs;

	fill(in, 4 * B, 11);
	assert_int_equal(do_write(c, 12 * MiB, 4 * B, in, 0), 0);
	store_close(c->s);
	ctx_open(c);
	assert_int_equal(store_recovered_regions(c->s, &regs), 0);
	assert_int_equal(do_read(c, 12 * MiB, 4 * B, out, NULL), 0);
	assert_memory_equal(in, out, 4 * B);
	free(in);
	free(out);
}

/* Simulator: every transfer cut short; the store finishes the rest. */
static void test_short_io(void **state)
{
	struct ctx *c = *state;
	uint64_t len = 5 * B;
	char *in = block_alloc(len), *out = block_alloc(len);

	store_io_sim_short(c->sim, 1000);
	fill(in, len, 21);
	assert_int_equal(do_write(c, 3 * MiB, len, in, 0), 0);
	memset(out, 0, len);
	assert_int_equal(do_read(c, 3 * MiB, len, out, NULL), 0);
	assert_memory_equal(in, out, len);
	/* 5 blocks in 1000-byte pieces: 21 data writes + 1 crc write +
	 * 1 AL page in 5 pieces. */
	assert_true(store_io_sim_count(c->sim, SIM_WRITE) >= 27);
	assert_true(store_io_sim_count(c->sim, SIM_READ) >= 21);
	store_io_sim_short(c->sim, 0);
	free(in);
	free(out);
}

/* Simulator: injected errors reach the caller; the store keeps working. */
static void test_errors(void **state)
{
	struct ctx *c = *state;
	char *in = block_alloc(B), *out = block_alloc(B);

	fill(in, B, 8);
	/* The AL write fails: the write fails, nothing else happens. */
	store_io_sim_fail(c->sim, SIM_WRITE, 0, 1, EIO);
	assert_int_equal(do_write(c, 0, B, in, 0), -EIO);
	/* The AL sync fails. */
	store_io_sim_fail(c->sim, SIM_SYNC, 0, 1, EIO);
	assert_int_equal(do_write(c, 0, B, in, 0), -EIO);
	/* The data write fails (after the AL write). */
	store_io_sim_fail(c->sim, SIM_WRITE, 1, 1, ENOSPC);
	assert_int_equal(do_write(c, 0, B, in, 0), -ENOSPC);
	/* Healthy again. */
	assert_int_equal(do_write(c, 0, B, in, 0), 0);
	assert_int_equal(do_read(c, 0, B, out, NULL), 0);
	assert_memory_equal(in, out, B);
	store_io_sim_fail(c->sim, SIM_READ, 0, 1, EIO);
	assert_int_equal(do_read(c, 0, B, out, NULL), -EIO);
	store_io_sim_fail(c->sim, SIM_SYNC, 1, 1, EIO);
	assert_int_equal(do_flush(c), -EIO);
	store_io_sim_fail(c->sim, SIM_FALLOC, 0, 1, ENOSPC);
	assert_int_equal(do_zero(c, false, 0, B, STORE_NO_HOLE), -ENOSPC);
	store_io_sim_fail(c->sim, SIM_SYNC, 0, 1, EIO);
	assert_int_equal(do_zero(c, true, 0, B, STORE_FUA), -EIO);
	assert_int_equal(do_flush(c), 0);
	assert_int_equal(do_zero(c, true, 0, B, STORE_FUA), 0);
	assert_int_equal(do_read(c, 0, B, out, NULL), 0);
	assert_true(is_zero(out, B));
	free(in);
	free(out);
}

/* A failed write leaves every block's checksum describing the data on
 * disk (a resync trusts them); when the data cannot be read back to check,
 * the store refuses everything until it is reopened. */
static void test_failed_write_recheck(void **state)
{
	struct ctx *c = *state;
	const uint64_t len = 64 * B;
	char *old = block_alloc(len), *new = block_alloc(len);
	uint32_t got[64], want[64];
	char data[128];

	fill(old, len, 1);
	fill(new, len, 2);
	assert_int_equal(do_write(c, MiB, len, old, 0), 0);
	assert_int_equal(do_flush(c), 0);
	/* The data write fails (after the AL write). */
	store_io_sim_fail(c->sim, SIM_WRITE, 1, 1, ENOSPC);
	assert_int_equal(do_write(c, MiB, len, new, 0), -ENOSPC);
	crc32c_blocks(old, len, want);
	assert_int_equal(store_crcs(c->s, MiB, len, got), 0);
	assert_memory_equal(got, want, sizeof want);
	assert_int_equal(do_read(c, MiB, len, new, NULL), 0);
	assert_memory_equal(new, old, len);

	/* Now the data file cannot be read back after a failed write. */
	assert_int_equal(do_flush(c), 0);
	snprintf(data, sizeof data, "%s/data", c->vol);
	assert_int_equal(truncate(data, 0), 0);
	store_io_sim_fail(c->sim, SIM_WRITE, 1, 1, ENOSPC);
	assert_int_equal(do_write(c, MiB, len, new, 0), -ENOSPC);
	assert_int_equal(store_crcs(c->s, MiB, len, got), -EIO);
	assert_int_equal(do_read(c, MiB, B, new, NULL), -EIO);
	assert_int_equal(do_write(c, 0, B, old, 0), -EIO);
	assert_int_equal(do_flush(c), -EIO);
	assert_int_equal(truncate(data, (off_t)VOL_SIZE), 0);
	store_close(c->s);
	ctx_open(c);
	assert_int_equal(do_write(c, 0, B, old, 0), 0);
	free(old);
	free(new);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_create_open, setup_uring,
						teardown),
		cmocka_unit_test_setup_teardown(test_open_rejects_garbage,
						setup_uring, teardown),
		cmocka_unit_test_setup_teardown(test_roundtrip, setup_uring,
						teardown),
		cmocka_unit_test_setup_teardown(test_concurrent, setup_uring,
						teardown),
		cmocka_unit_test_setup_teardown(test_bad_crc_refused,
						setup_uring, teardown),
		cmocka_unit_test_setup_teardown(test_invalid_args, setup_uring,
						teardown),
		cmocka_unit_test_setup_teardown(test_corrupt_data_detected,
						setup_uring, teardown),
		cmocka_unit_test_setup_teardown(test_extents, setup_uring,
						teardown),
		cmocka_unit_test_setup_teardown(test_trim_zero, setup_uring,
						teardown),
		cmocka_unit_test_setup_teardown(test_flush_clears_al,
						setup_uring, teardown),
		cmocka_unit_test_setup_teardown(test_extents_racing_writer,
						setup_uring, teardown),
		cmocka_unit_test_setup_teardown(test_reopen, setup_uring,
						teardown),
		cmocka_unit_test_setup_teardown(test_short_io, setup_sim,
						teardown),
		cmocka_unit_test_setup_teardown(test_errors, setup_sim,
						teardown),
		cmocka_unit_test_setup_teardown(test_failed_write_recheck,
						setup_sim, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
