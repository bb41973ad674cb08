/* Resync between two local replicas: only differing blocks are copied,
 * and a replica is reported in sync only if a second pass over the
 * checksums, after the copy, finds both replicas equal. A write that
 * reaches the target behind the job's back (as a stale one from an old
 * connection would) fails the job instead of leaving the replicas
 * different. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crc32c.h"
#include "resync.h"
#include "store.h"
#include "store_io.h"
#include "volume.h"

#define BLK 4096u
#define VOL_SIZE (128ull << 20)   /* two checkpoints' worth */

struct fixture {
	char dir[64];
	struct loop loop;
	struct store_io io;
	struct store *st[2];
	struct vol *vol;
	bool done;
	int res;
	bool inject;              /* write to the target at the checkpoint */
	struct store_req inj;
	bool inj_done;
	uint8_t *inj_buf;
	uint32_t inj_crc;
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof *f);
	struct vol_replica_spec reps[2];
	struct vol_config cfg = { .name = "v", .size = VOL_SIZE, .min_replicas = 1 };

	strcpy(f->dir, "/tmp/tpx-resync-XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	assert_int_equal(loop_init(&f->loop, 256), 0);
	store_io_uring_init(&f->io, &f->loop);
	for (int i = 0; i < 2; i++) {
		char path[96];

		snprintf(path, sizeof path, "%s/r%d", f->dir, i);
		assert_int_equal(store_create(path, VOL_SIZE), 0);
		assert_int_equal(store_open(path, &f->io, &f->st[i]), 0);
		reps[i] = (struct vol_replica_spec){ .node = i ? "n2" : "n1",
						     .store = f->st[i],
						     .in_sync = i == 0 };  /* n2: the target */
	}
	f->vol = vol_new_replicated(&cfg, &f->loop, reps, 2);
	assert_non_null(f->vol);
	assert_int_equal(posix_memalign((void **)&f->inj_buf, BLK, BLK), 0);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	char cmd[96];

	vol_free(f->vol);
	for (int i = 0; i < 2; i++)
		store_close(f->st[i]);
	loop_fini(&f->loop);
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", f->dir);
	assert_int_equal(system(cmd), 0);
	free(f->inj_buf);
	free(f);
	return 0;
}

struct sreq {
	struct store_req r;
	bool done;
	int res;
};

static void sreq_done(struct store_req *r, int res)
{
	struct sreq *s = r->priv;

	s->done = true;
	s->res = res;
}

static void wait_sreq(struct fixture *f, struct sreq *s)
{
	for (long spins = 0; !s->done; spins++) {
		assert_true(spins < 10000000);
		assert_true(loop_poll(&f->loop) >= 0);
	}
	assert_int_equal(s->res, 0);
}

/* One block of value `fill` straight into replica i's store. */
static void put_block(struct fixture *f, int i, uint64_t off, uint8_t fill)
{
	struct sreq s = { .r = { .done = sreq_done } };
	uint8_t *buf = NULL;
	uint32_t crc;

	assert_int_equal(posix_memalign((void **)&buf, BLK, BLK), 0);
	memset(buf, fill, BLK);
	crc = crc32c(buf, BLK);
	s.r.priv = &s;
	store_write(f->st[i], &s.r, off, BLK, buf, &crc, 0);
	wait_sreq(f, &s);
	free(buf);
}

static void inj_done(struct store_req *r, int res)
{
	struct fixture *f = r->priv;

	f->inj_done = res == 0;
}

/* At the first checkpoint (64 MiB behind the job), a write lands on the
 * target in a chunk the job has already copied, as a stale write from an
 * old connection would. */
static void on_progress(struct resync *job, uint64_t pos, void *arg)
{
	struct fixture *f = arg;

	if (!f->inject || f->inj.done)
		return;
	memset(f->inj_buf, 0xEE, BLK);
	f->inj_crc = crc32c(f->inj_buf, BLK);
	f->inj = (struct store_req){ .done = inj_done, .priv = f };
	store_write(f->st[1], &f->inj, 0, BLK, f->inj_buf, &f->inj_crc, 0);
}

static void on_done(struct resync *job, int res, void *arg)
{
	struct fixture *f = arg;

	f->done = true;
	f->res = res;
}

static int run_resync(struct fixture *f, struct resync_stats *stats)
{
	struct resync_opts o = { .target = 1, .on_progress = on_progress,
				 .on_done = on_done, .arg = f };
	struct resync *job;

	f->done = false;
	job = resync_start(f->vol, &o);
	assert_non_null(job);
	for (long spins = 0; !f->done; spins++) {
		assert_true(spins < 50000000);
		if (stats)
			*stats = *resync_get_stats(job);
		assert_true(loop_poll(&f->loop) >= 0);
	}
	return f->res;
}

/* The stored checksums of both replicas over the whole volume. */
static bool replicas_equal(struct fixture *f)
{
	static uint32_t a[1024], b[1024];

	for (uint64_t off = 0; off < VOL_SIZE; off += sizeof a / 4 * BLK) {
		uint64_t len = sizeof a / 4 * BLK;

		assert_int_equal(store_crcs(f->st[0], off, len, a), 0);
		assert_int_equal(store_crcs(f->st[1], off, len, b), 0);
		if (memcmp(a, b, sizeof a))
			return false;
	}
	return true;
}

static void test_copies_only_differences(void **state)
{
	struct fixture *f = *state;
	struct resync_stats st = { 0 };

	put_block(f, 0, 0, 0x11);
	put_block(f, 0, 70ull << 20, 0x22);
	put_block(f, 0, VOL_SIZE - BLK, 0x33);
	put_block(f, 1, 8ull << 20, 0x44);   /* only the target has it */
	assert_false(replicas_equal(f));
	assert_int_equal(run_resync(f, &st), 0);
	assert_true(replicas_equal(f));
	assert_int_equal(st.bytes_copied, 4 * BLK);
	assert_int_equal(st.bytes_compared, VOL_SIZE);
	assert_int_equal(st.bytes_verified, VOL_SIZE);
	assert_int_equal(st.blocks_differing, 0);
}

static void test_late_write_fails_the_job(void **state)
{
	struct fixture *f = *state;
	struct resync_stats st = { 0 };

	put_block(f, 0, 0, 0x11);
	f->inject = true;
	assert_int_equal(run_resync(f, &st), -EIO);
	assert_true(f->inj_done);            /* the fault landed, in time */
	assert_int_equal(st.blocks_differing, 1);
	assert_false(replicas_equal(f));
	/* Run again, as the engine does on a later tick: now in sync. */
	f->inject = false;
	assert_int_equal(run_resync(f, &st), 0);
	assert_int_equal(st.bytes_copied, BLK);
	assert_true(replicas_equal(f));
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
	const struct CMUnitTest tests[] = {
		T(test_copies_only_differences),
		T(test_late_write_fails_the_job),
	};
#undef T

	return cmocka_run_group_tests(tests, NULL, NULL);
}
