/*
 * Crash safety of the replica store, through the crash simulator: run a
 * workload, stop the world at a chosen I/O, undo unsynced writes the way a
 * power cut might, reopen, and check that
 *   - every block reads back with a matching crc (no EBADMSG),
 *   - a block untouched since its last flush or FUA write is intact,
 *   - any other block holds one of its old or new contents, or (torn) was
 *     found by recovery as a suspect block in a region it reports.
 */
#include <errno.h>
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

#include "log.h"
#include "store.h"
#include "store_io_sim.h"

#define MiB (1024ull * 1024)
#define VOL_SIZE (16 * MiB)
#define B STORE_BLOCK
#define NREG 4            /* 4 MiB regions in the volume */
#define PER_REG 12        /* tracked blocks at the start of each region */
#define NTRACK (NREG * PER_REG)
#define MAXHIST 256
#define NSTEPS 30
#define TIME_BUDGET 90    /* seconds for the crash-point sweep */

struct blk_model {
	uint32_t stable;          /* durable content (tag; 0 = zeroes) */
	uint32_t hist[MAXHIST];   /* issued since, maybe durable */
	int nhist;
	bool torn_seen;           /* first check after the crash found it torn */
	uint32_t seen_crc;        /* what that check read */
};

struct op_rec {
	struct store_req req;
	int res;
	bool done;
	int kind;                 /* 0 write, 1 trim, 2 zero */
	int first, n;             /* tracked block index range */
	uint32_t tag;
	unsigned flags;
	uint32_t crcs[3];
};

struct world {
	char tmp[64];
	char vol[96];
	struct loop loop;
	struct store_io_sim *sim;
	struct store *s;
	struct blk_model m[NTRACK];
	uint64_t rng;
	uint32_t next_tag;
	char *buf;                /* 4 ops x 3 blocks */
};

static uint64_t rnd(struct world *w)
{
	w->rng ^= w->rng << 13;
	w->rng ^= w->rng >> 7;
	w->rng ^= w->rng << 17;
	return w->rng;
}

static uint64_t blk_no(int t)
{
	return (uint64_t)(t / PER_REG) * 1024 + (uint64_t)(t % PER_REG);
}

static uint64_t pat_word(uint32_t tag, uint64_t blk, size_t i)
{
	uint64_t x = ((uint64_t)tag << 32 | blk) + i * 0x9E3779B97F4A7C15ull;

	return i == 0 ? ((uint64_t)tag << 32 | blk) : x ^ (x >> 29);
}

static void pattern(void *p, uint32_t tag, uint64_t blk)
{
	uint64_t *w = p;

	if (tag == 0) {
		memset(p, 0, B);
		return;
	}
	for (size_t i = 0; i < B / 8; i++)
		w[i] = pat_word(tag, blk, i);
}

/* The tag whose pattern p is, 0 for zeroes, -1 for anything else. */
static int64_t decode(const void *p, uint64_t blk)
{
	const uint64_t *w = p;
	uint32_t tag = (uint32_t)(w[0] >> 32);

	if (w[0] == 0) {
		for (size_t i = 0; i < B / 8; i++)
			if (w[i])
				return -1;
		return 0;
	}
	if ((w[0] & 0xffffffffu) != blk)
		return -1;
	for (size_t i = 0; i < B / 8; i++)
		if (w[i] != pat_word(tag, blk, i))
			return -1;
	return tag;
}

static void on_done(struct store_req *r, int res)
{
	struct op_rec *o = r->priv;

	o->res = res;
	o->done = true;
}

static int rm_one(const char *p, const struct stat *st, int flag,
		  struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(p);
}

static void world_init(struct world *w, uint64_t seed, bool fresh_dir)
{
	if (fresh_dir) {
		strcpy(w->tmp, "/tmp/tpx-crash-XXXXXX");
		assert_non_null(mkdtemp(w->tmp));
		snprintf(w->vol, sizeof w->vol, "%s/vol", w->tmp);
	}
	memset(w->m, 0, sizeof w->m);
	w->rng = seed * 2654435761u + 1;
	w->next_tag = 1;
	assert_int_equal(store_create(w->vol, VOL_SIZE), 0);
	assert_int_equal(loop_init(&w->loop, 64), 0);
	w->sim = store_io_sim_new(&w->loop, seed);
	store_io_sim_reorder(w->sim, true);
	assert_int_equal(store_open(w->vol, store_io_sim_io(w->sim), &w->s), 0);
}

static void world_rm_volume(struct world *w)
{
	nftw(w->vol, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

/* Run until every op is done; false if the machine crashed first. */
static bool drive(struct world *w, struct op_rec *ops, int n)
{
	for (;;) {
		bool all = true;

		for (int i = 0; i < n; i++)
			all = all && ops[i].done;
		if (all)
			return true;
		if (loop_poll(&w->loop) == 0 && store_io_sim_crashed(w->sim))
			return false;
	}
}

static void hist_add(struct blk_model *b, uint32_t tag)
{
	assert_true(b->nhist < MAXHIST);
	b->hist[b->nhist++] = tag;
}

static bool overlaps(const struct op_rec *ops, int n, int first, int len)
{
	for (int i = 0; i < n; i++)
		if (first < ops[i].first + ops[i].n && ops[i].first < first + len)
			return true;
	return false;
}

static void issue(struct world *w, struct op_rec *o, int slot)
{
	char *buf = w->buf + (size_t)slot * 3 * B;
	uint64_t off = blk_no(o->first) * B, len = (uint64_t)o->n * B;

	o->req.done = on_done;
	o->req.priv = o;
	if (o->kind == 0) {
		o->tag = w->next_tag++;
		for (int i = 0; i < o->n; i++)
			pattern(buf + i * B, o->tag, blk_no(o->first + i));
		crc32c_blocks(buf, len, o->crcs);
		store_write(w->s, &o->req, off, len, buf, o->crcs, o->flags);
	} else if (o->kind == 1) {
		store_trim(w->s, &o->req, off, len, o->flags);
	} else {
		store_zero(w->s, &o->req, off, len, o->flags);
	}
	for (int i = 0; i < o->n; i++)
		hist_add(&w->m[o->first + i], o->tag);
}

static int make_batch(struct world *w, struct op_rec *ops)
{
	int n = 0, want = 1 + (int)(rnd(w) % 4);

	memset(ops, 0, 4 * sizeof *ops);
	for (int tries = 0; n < want && tries < 16; tries++) {
		struct op_rec *o = &ops[n];
		int r = (int)(rnd(w) % NREG), k = (int)(rnd(w) % PER_REG);
		int len = 1 + (int)(rnd(w) % 3);

		if (k + len > PER_REG)
			len = PER_REG - k;
		if (overlaps(ops, n, r * PER_REG + k, len))
			continue;
		o->first = r * PER_REG + k;
		o->n = len;
		o->kind = rnd(w) % 5 < 3 ? 0 : 1 + (int)(rnd(w) % 2);
		o->flags = rnd(w) % 4 == 0 ? STORE_FUA : 0;
		if (o->kind == 2 && rnd(w) % 2)
			o->flags |= STORE_NO_HOLE;
		n++;
	}
	return n;
}

/* A flush or FUA acknowledged: these blocks' latest content is durable. */
static void settle(struct blk_model *b)
{
	if (b->nhist > 0)
		b->stable = b->hist[b->nhist - 1];
	b->nhist = 0;
}

static void flush_issue(struct world *w, struct op_rec *fl)
{
	memset(fl, 0, sizeof *fl);
	fl->req.done = on_done;
	fl->req.priv = fl;
	store_flush(w->s, &fl->req);
}

/* A flush issued when block t had `cover` acknowledged entries is done. */
static void settle_covered(struct blk_model *b, int cover)
{
	if (cover == 0)
		return;
	b->stable = b->hist[cover - 1];
	memmove(b->hist, b->hist + cover,
		(size_t)(b->nhist - cover) * sizeof b->hist[0]);
	b->nhist -= cover;
}

/* One batch of up to 4 ops on distinct blocks, sometimes with a flush in
 * flight beside them (it covers only what was acknowledged before it),
 * sometimes followed by a flush. */
static bool step(struct world *w)
{
	struct op_rec ops[5];
	int cover[NTRACK];
	int n = make_batch(w, ops), nall = n;
	bool mid_flush = rnd(w) % 4 == 0;

	bool flush_first = rnd(w) % 2;

	for (int t = 0; mid_flush && t < NTRACK; t++)
		cover[t] = w->m[t].nhist;
	if (mid_flush && flush_first)
		flush_issue(w, &ops[nall++]);
	for (int i = 0; i < n; i++)
		issue(w, &ops[i], i);
	/* Issued after the writes, it still covers none of them. */
	if (mid_flush && !flush_first)
		flush_issue(w, &ops[nall++]);
	if (!drive(w, ops, nall))
		return false;
	for (int i = 0; i < nall; i++)
		assert_int_equal(ops[i].res, 0);
	for (int t = 0; mid_flush && t < NTRACK; t++)
		settle_covered(&w->m[t], cover[t]);
	for (int i = 0; i < n; i++)
		for (int j = 0; (ops[i].flags & STORE_FUA) && j < ops[i].n; j++)
			settle(&w->m[ops[i].first + j]);
	if (rnd(w) % 3 != 0)
		return true;
	flush_issue(w, &ops[0]);
	if (!drive(w, ops, 1))
		return false;
	assert_int_equal(ops[0].res, 0);
	for (int t = 0; t < NTRACK; t++)
		settle(&w->m[t]);
	return true;
}

/* Returns false if the simulator crashed during the workload. */
static bool run_workload(struct world *w)
{
	for (int i = 0; i < NSTEPS; i++)
		if (!step(w))
			return false;
	return true;
}

static int sync_read(struct world *w, uint64_t off, uint64_t len, void *buf)
{
	struct op_rec o;

	memset(&o, 0, sizeof o);
	o.req.done = on_done;
	o.req.priv = &o;
	store_read(w->s, &o.req, off, len, buf, NULL);
	assert_true(drive(w, &o, 1));
	return o.res;
}

static bool in_recovered(struct world *w, uint64_t off)
{
	const struct store_extent *r;
	size_t n = store_recovered_regions(w->s, &r);

	for (size_t i = 0; i < n; i++)
		if (off >= r[i].off && off < r[i].off + r[i].len)
			return true;
	return false;
}

static void check_block(struct world *w, const char *data, int t, bool again)
{
	struct blk_model *b = &w->m[t];
	int64_t tag = decode(data, blk_no(t));
	bool ok = tag == b->stable;

	for (int i = 0; !ok && i < b->nhist; i++)
		ok = tag == b->hist[i];
	if (!ok && tag < 0 && b->nhist > 0)
		/* torn: acceptable only as a suspect block recovery found */
		ok = b->torn_seen ||
		     (store_get_stats(w->s)->suspect_blocks > 0 &&
		      in_recovered(w, blk_no(t) * B));
	if (again) {
		/* the same bytes as right after recovery */
		assert_int_equal(b->seen_crc, crc32c(data, B));
	} else {
		b->torn_seen = tag < 0;
		b->seen_crc = crc32c(data, B);
	}
	if (!ok)
		fail_msg("block %llu: tag %lld, stable %u, %d unflushed "
			 "(last %u), %llu suspect, in recovered region: %d",
			 (unsigned long long)blk_no(t), (long long)tag,
			 b->stable, b->nhist, b->nhist ? b->hist[b->nhist - 1] : 0,
			 (unsigned long long)store_get_stats(w->s)->suspect_blocks,
			 in_recovered(w, blk_no(t) * B));
}

/* Read the whole volume: no checksum error anywhere, then the model. */
static void check_volume(struct world *w, bool again)
{
	char *all = NULL;

	assert_int_equal(posix_memalign((void **)&all, B, VOL_SIZE), 0);
	assert_int_equal(sync_read(w, 0, VOL_SIZE, all), 0);
	for (int t = 0; t < NTRACK; t++)
		check_block(w, all + blk_no(t) * B, t, again);
	for (uint64_t blk = 0; blk < VOL_SIZE / B; blk++)
		if (blk % 1024 >= PER_REG)
			assert_int_equal(decode(all + blk * B, blk), 0);
	free(all);
}

static void reopen_after_crash(struct world *w, enum sim_cut how)
{
	assert_true(store_io_sim_power_cut(w->sim, how) >= 0);
	store_crash_close(w->s);
	/* Its queued tasks point into the dead store: drop the loop unrun. */
	loop_fini(&w->loop);
	store_io_sim_free(w->sim);
	assert_int_equal(loop_init(&w->loop, 64), 0);
	w->sim = store_io_sim_new(&w->loop, 1);
	assert_int_equal(store_open(w->vol, store_io_sim_io(w->sim), &w->s), 0);
}

static void world_close(struct world *w)
{
	store_close(w->s);
	loop_fini(&w->loop);
	store_io_sim_free(w->sim);
}

/* One crash run; returns false if the workload finished before the crash
 * point was reached. */
static bool crash_run(struct world *w, uint64_t seed, uint64_t at,
		      enum sim_cut how)
{
	bool crashed;

	world_init(w, seed, false);
	store_io_sim_crash_at(w->sim, at);
	crashed = !run_workload(w);
	if (crashed) {
		reopen_after_crash(w, how);
		check_volume(w, false);
		/* Recovered state is stable: a clean reopen changes nothing. */
		store_close(w->s);
		assert_int_equal(store_open(w->vol, store_io_sim_io(w->sim),
					    &w->s), 0);
		check_volume(w, true);
	}
	world_close(w);
	world_rm_volume(w);
	return crashed;
}

static void sweep(uint64_t seed)
{
	struct world *w = calloc(1, sizeof *w);
	time_t t0 = time(NULL);
	uint64_t total, stride, runs = 0;
	bool full;

	assert_int_equal(posix_memalign((void **)&w->buf, B, 12 * B), 0);
	world_init(w, seed, true);
	assert_true(run_workload(w));
	total = store_io_sim_ops(w->sim);
	check_volume(w, false);
	world_close(w);
	world_rm_volume(w);
	/* TPX_CRASH_FULL=1: every crash point, no time limit (slow). */
	full = getenv("TPX_CRASH_FULL") != NULL;
	stride = full ? 1 : total / 32 + 1;
	for (uint64_t at = 0; at < total; at += stride) {
		for (int how = 0; how < 3; how++) {
			assert_true(crash_run(w, seed, at, (enum sim_cut)how));
			runs++;
		}
		if (!full && time(NULL) - t0 > TIME_BUDGET)
			break;
	}
	print_message("seed %llu: %llu ops, %llu crash runs\n",
		      (unsigned long long)seed, (unsigned long long)total,
		      (unsigned long long)runs);
	assert_true(runs >= 3);
	nftw(w->tmp, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	free(w->buf);
	free(w);
}

static void test_crash_sweep_1(void **state)
{
	(void)state;
	sweep(1);
}

static void test_crash_sweep_2(void **state)
{
	(void)state;
	sweep(7);
}

/* Deterministic: the data write lands, the crc write never happens. The
 * block must come back as a suspect with the new data and a good crc. */
static void test_suspect_block(void **state)
{
	struct world *w = calloc(1, sizeof *w);
	char *a = NULL, *out = NULL;
	struct op_rec o;
	const struct store_extent *regs;
	uint64_t n0;

	(void)state;
	assert_int_equal(posix_memalign((void **)&a, B, B), 0);
	assert_int_equal(posix_memalign((void **)&out, B, B), 0);
	world_init(w, 3, true);
	pattern(a, 5, 2048);
	memset(&o, 0, sizeof o);
	o.req.done = on_done;
	o.req.priv = &o;
	crc32c_blocks(a, B, o.crcs);
	/* ops from here: AL write, AL sync, data write, crc write */
	n0 = store_io_sim_ops(w->sim);
	store_io_sim_crash_at(w->sim, n0 + 3);
	store_write(w->s, &o.req, 2048 * B, B, a, o.crcs, 0);
	assert_false(drive(w, &o, 1));
	reopen_after_crash(w, SIM_CUT_DROP_ALL);
	/* DROP_ALL undid the data write: old zeroes, crc still zero: fine. */
	assert_int_equal(store_get_stats(w->s)->suspect_blocks, 0);
	assert_int_equal(store_recovered_regions(w->s, &regs), 1);
	assert_int_equal(regs[0].off, 8 * MiB);
	assert_int_equal(regs[0].len, 4 * MiB);
	assert_int_equal(sync_read(w, 2048 * B, B, out), 0);
	assert_int_equal(decode(out, 2048), 0);

	/* Again, but the power cut keeps the data (tear nothing). */
	n0 = store_io_sim_ops(w->sim);
	store_io_sim_crash_at(w->sim, n0 + 3);
	memset(&o, 0, sizeof o);
	o.req.done = on_done;
	o.req.priv = &o;
	crc32c_blocks(a, B, o.crcs);
	store_write(w->s, &o.req, 2048 * B, B, a, o.crcs, 0);
	assert_false(drive(w, &o, 1));
	store_crash_close(w->s);
	loop_fini(&w->loop);
	store_io_sim_free(w->sim);
	assert_int_equal(loop_init(&w->loop, 64), 0);
	w->sim = store_io_sim_new(&w->loop, 1);
	assert_int_equal(store_open(w->vol, store_io_sim_io(w->sim), &w->s), 0);
	assert_int_equal(store_get_stats(w->s)->suspect_blocks, 1);
	assert_int_equal(store_recovered_regions(w->s, &regs), 1);
	assert_int_equal(sync_read(w, 2048 * B, B, out), 0);
	assert_int_equal(decode(out, 2048), 5);
	world_close(w);
	nftw(w->tmp, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	free(a);
	free(out);
	free(w);
}

/* Without the activity log's protection the sweep must notice: a crc
 * entry changed behind the store's back outside any dirty region is a
 * checksum error on read, not silently accepted. */
static void test_unlogged_damage_detected(void **state)
{
	struct world *w = calloc(1, sizeof *w);
	char *out = NULL;
	char path[160];
	uint32_t junk = 0x12345678;
	FILE *f;

	(void)state;
	assert_int_equal(posix_memalign((void **)&out, B, B), 0);
	world_init(w, 4, true);
	store_close(w->s);
	snprintf(path, sizeof path, "%s/crc", w->vol);
	f = fopen(path, "r+");
	assert_non_null(f);
	assert_int_equal(fseek(f, 4 * 100, SEEK_SET), 0);
	assert_int_equal(fwrite(&junk, 4, 1, f), 1);
	fclose(f);
	assert_int_equal(store_open(w->vol, store_io_sim_io(w->sim), &w->s), 0);
	assert_int_equal(sync_read(w, 100 * B, B, out), -EBADMSG);
	world_close(w);
	nftw(w->tmp, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	free(out);
	free(w);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_suspect_block),
		cmocka_unit_test(test_unlogged_damage_detected),
		cmocka_unit_test(test_crash_sweep_1),
		cmocka_unit_test(test_crash_sweep_2),
	};

	/* Recovery logs every suspect block; keep the sweep's output short. */
	log_threshold = LOG_ERROR;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
