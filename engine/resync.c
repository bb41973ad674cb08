#include "resync.h"

#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "volume_int.h"

#define BLK STORE_BLOCK
#define CHUNK_BLOCKS (RESYNC_CHUNK / BLK)
/* Chunks worked on at once: hides the round trips of one chunk (checksums,
 * read, write) behind the others'. Unthrottled, all of them; paced, one per
 * LANE_RATE of the cap and one more, so that the bursts a client's I/O
 * queues behind stay small. */
#define MAX_LANES 16
#define LANE_RATE (128ull << 20)

struct resync;

/* One chunk in progress. */
struct lane {
	struct resync *job;
	bool busy;
	uint64_t pos, end;             /* the chunk */
	unsigned idx, run_end;         /* block indexes in the chunk */
	unsigned pending;
	int err;
	uint64_t copied;
	struct rl_entry lock;
	struct rep_io io_src, io_dst;
	uint8_t *buf;
	uint32_t src_crcs[CHUNK_BLOCKS];
	uint32_t dst_crcs[CHUNK_BLOCKS];
	uint32_t copy_crcs[CHUNK_BLOCKS];
};

struct resync {
	struct vol *v;
	struct resync_opts opts;
	struct resync_stats stats;
	struct replica *src, *dst;
	bool cancelled, stopping, finishing;
	bool verifying;                /* the second pass (see resync.h) */
	bool task_queued;
	int err;
	uint64_t start;                /* first offset of the job */
	uint64_t next;                 /* next offset to hand to a lane */
	uint64_t t0_ms;                /* start, for pacing */
	uint64_t checkpointed;
	uint64_t *ranges;
	size_t ri;
	unsigned busy;
	struct loop_task task;
	struct loop_timer pace;
	struct rep_io io_flush;
	unsigned nlanes;
	struct lane lanes[MAX_LANES];
};

#define JOB_OF(ptr, field) \
	((struct resync *)((char *)(ptr) - offsetof(struct resync, field)))

static void fill_lanes(struct resync *job);
static void copy_next(struct lane *ln);

/* The target still gets every write: it is in sync (reconcile) or
 * receiving (resync). */
static bool target_ok(const struct resync *job)
{
	return job->dst->in_sync || job->dst->receiving;
}

static void job_free(struct resync *job)
{
	for (unsigned i = 0; i < MAX_LANES; i++)
		free(job->lanes[i].buf);
	free(job->ranges);
	free(job);
}

static void job_end(struct resync *job, int res)
{
	/* Success: the target keeps receiving every write until the caller
	 * has recorded it in sync and joins it (vol_isr_join), so no write
	 * falls between the two; a write it misses meanwhile keeps it out. */
	if (res < 0)
		job->dst->receiving = false;
	if (res < 0 && res != -ECANCELED)
		log_warn("volume %s: resync of %s stopped near %llu: %s", job->v->name,
			 job->dst->node, (unsigned long long)job->stats.pos,
			 strerror(-res));
	job->opts.on_done(job, res, job->opts.arg);
	job_free(job);
}

/* --- finishing: flush the target, then report --------------------------- */

static void queue_fill(struct resync *job);

static void start_verify(struct resync *job)
{
	job->verifying = true;
	job->finishing = false;
	job->next = job->start;
	job->ri = 0;
	queue_fill(job);
}

static void flushed(struct rep_io *io, int res)
{
	struct resync *job = io->priv;

	if (res < 0) {
		job_end(job, res);
		return;
	}
	start_verify(job);
}

static void verified(struct resync *job)
{
	log_info("volume %s: resync of %s done: %llu bytes compared, %llu copied, "
		 "%llu verified", job->v->name, job->dst->node,
		 (unsigned long long)job->stats.bytes_compared,
		 (unsigned long long)job->stats.bytes_copied,
		 (unsigned long long)job->stats.bytes_verified);
	job_end(job, 0);
}

/* Every lane is idle: stop with the first error, or flush and verify, or
 * finish. */
static void settle(struct resync *job)
{
	/* A pending task or timer still points at the job: end after it. */
	if (job->busy > 0 || job->finishing || job->task_queued || job->pace.armed)
		return;
	job->finishing = true;
	if (job->stopping) {
		job_end(job, job->cancelled ? -ECANCELED : job->err ? job->err : -EIO);
		return;
	}
	if (job->verifying) {
		verified(job);
		return;
	}
	job->stats.pos = job->v->size;
	job->io_flush = (struct rep_io){ .done = flushed, .priv = job, .op = REP_FLUSH };
	replica_submit(job->dst, &job->io_flush);
}

/* --- lanes ------------------------------------------------------------------ */

static void lane_release(struct lane *ln)
{
	if (ln->lock.granted) {
		ln->lock.granted = false;
		rl_release(&ln->job->v->lock, &ln->lock);
	}
}

/* Lowest offset still being worked on: everything below it is done. */
static uint64_t low_water(const struct resync *job)
{
	uint64_t low = job->next;

	for (unsigned i = 0; i < job->nlanes; i++)
		if (job->lanes[i].busy && job->lanes[i].pos < low)
			low = job->lanes[i].pos;
	return low;
}

static void queue_fill(struct resync *job)
{
	if (job->task_queued)
		return;
	job->task_queued = true;
	loop_defer(job->v->loop, &job->task);
}

/* Hand out more work now, or when the bytes copied so far are due at the
 * job's rate (all lanes together). */
static void pace(struct resync *job)
{
	uint64_t due, now = loop_now_ms();

	if (!job->opts.rate_bps || job->stopping) {
		queue_fill(job);
		return;
	}
	due = job->t0_ms + job->stats.bytes_copied * 1000 / job->opts.rate_bps;
	if (due > now)
		loop_timer_arm(job->v->loop, &job->pace, due - now);
	else
		queue_fill(job);
}

static void lane_done(struct lane *ln, int res)
{
	struct resync *job = ln->job;

	lane_release(ln);
	ln->busy = false;
	job->busy--;
	if (res < 0 && !job->stopping) {
		job->stopping = true;
		job->err = res;
	}
	if (job->verifying) {
		if (res == 0)
			job->stats.bytes_verified += ln->end - ln->pos;
		pace(job);
		return;
	}
	if (res == 0)
		job->stats.bytes_compared += ln->end - ln->pos;
	job->stats.pos = low_water(job);
	if (job->opts.on_progress &&
	    job->stats.pos / RESYNC_CHECKPOINT_EVERY != job->checkpointed / RESYNC_CHECKPOINT_EVERY) {
		job->checkpointed = job->stats.pos;
		job->opts.on_progress(job, job->stats.pos, job->opts.arg);
	}
	pace(job);
}

static void wrote(struct rep_io *io, int res)
{
	struct lane *ln = io->priv;
	uint64_t bytes = (uint64_t)(ln->run_end - ln->idx) * BLK;

	if (res < 0) {
		lane_done(ln, res);
		return;
	}
	ln->job->stats.bytes_copied += bytes;
	ln->copied += bytes;
	ln->idx = ln->run_end;
	copy_next(ln);
}

static bool verify_run(const struct lane *ln, unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		if (crc32c(ln->buf + (size_t)i * BLK, BLK) != ln->copy_crcs[i])
			return false;
	return true;
}

static void read_src(struct rep_io *io, int res)
{
	struct lane *ln = io->priv;
	unsigned n = ln->run_end - ln->idx;

	if (res == 0 && !io->verified && !verify_run(ln, n))
		res = -STORE_ECSUM;
	if (res < 0) {
		lane_done(ln, res);
		return;
	}
	ln->io_dst = (struct rep_io){ .done = wrote, .priv = ln, .op = REP_WRITE,
				      .off = ln->pos + (uint64_t)ln->idx * BLK,
				      .len = (uint64_t)n * BLK, .buf = ln->buf,
				      .crcs = ln->copy_crcs };
	replica_submit(ln->job->dst, &ln->io_dst);
}

/* Copy the next run of blocks whose checksums differ. */
static void copy_next(struct lane *ln)
{
	struct resync *job = ln->job;
	unsigned n = (unsigned)((ln->end - ln->pos) / BLK), i = ln->idx, j;

	if (job->cancelled || job->stopping || !target_ok(job)) {
		lane_done(ln, job->cancelled ? -ECANCELED : -EIO);
		return;
	}
	while (i < n && ln->src_crcs[i] == ln->dst_crcs[i])
		i++;
	if (i == n) {
		lane_done(ln, 0);
		return;
	}
	for (j = i; j < n && ln->src_crcs[j] != ln->dst_crcs[j]; j++)
		;
	ln->idx = i;
	ln->run_end = j;
	ln->io_src = (struct rep_io){ .done = read_src, .priv = ln, .op = REP_READ,
				      .off = ln->pos + (uint64_t)i * BLK,
				      .len = (uint64_t)(j - i) * BLK, .buf = ln->buf,
				      .crcs = ln->copy_crcs };
	replica_submit(job->src, &ln->io_src);
}

/* The second pass: every block of the chunk must now agree. */
static int compare_again(struct lane *ln)
{
	struct resync *job = ln->job;
	unsigned n = (unsigned)((ln->end - ln->pos) / BLK), bad = 0, first = 0;

	for (unsigned i = 0; i < n; i++) {
		if (ln->src_crcs[i] == ln->dst_crcs[i])
			continue;
		if (bad++ == 0)
			first = i;
	}
	if (!bad)
		return 0;
	job->stats.blocks_differing += bad;
	log_error("volume %s: resync of %s: %u block(s) of [%llu, +%llu) differ "
		  "from %s after the copy (first at %llu); not in sync, starting "
		  "over", job->v->name, job->dst->node, bad,
		  (unsigned long long)ln->pos, (unsigned long long)(ln->end - ln->pos),
		  job->src->node, (unsigned long long)(ln->pos + (uint64_t)first * BLK));
	return -EIO;
}

static void got_crcs(struct rep_io *io, int res)
{
	struct lane *ln = io->priv;

	if (res < 0 && ln->err == 0)
		ln->err = res;
	if (--ln->pending > 0)
		return;
	if (ln->err < 0) {
		lane_done(ln, ln->err);
		return;
	}
	if (ln->job->verifying) {
		lane_done(ln, compare_again(ln));
		return;
	}
	ln->idx = 0;
	copy_next(ln);
}

static void chunk_locked(struct rl_entry *e)
{
	struct lane *ln = (struct lane *)((char *)e - offsetof(struct lane, lock));
	uint64_t len = ln->end - ln->pos;

	ln->err = 0;
	ln->pending = 2;
	ln->io_src = (struct rep_io){ .done = got_crcs, .priv = ln, .op = REP_CRCS,
				      .off = ln->pos, .len = len, .crcs = ln->src_crcs };
	ln->io_dst = (struct rep_io){ .done = got_crcs, .priv = ln, .op = REP_CRCS,
				      .off = ln->pos, .len = len, .crcs = ln->dst_crcs };
	replica_submit(ln->job->src, &ln->io_src);
	replica_submit(ln->job->dst, &ln->io_dst);
}

/* --- handing out chunks --------------------------------------------------- */

/* Reconcile mode: move next into the next listed range; false at the end. */
static bool seek_range(struct resync *job, uint64_t *limit)
{
	uint64_t len = job->opts.range_len;

	while (job->ri < job->opts.nranges && job->next >= job->ranges[job->ri] + len)
		job->ri++;
	if (job->ri == job->opts.nranges)
		return false;
	if (job->next < job->ranges[job->ri])
		job->next = job->ranges[job->ri];
	*limit = job->ranges[job->ri] + len;
	return true;
}

/* The next chunk to work on; false when there is none. */
static bool take_chunk(struct resync *job, uint64_t *pos, uint64_t *end)
{
	uint64_t limit = job->v->size;

	if ((job->ranges && !seek_range(job, &limit)) || job->next >= job->v->size)
		return false;
	if (limit > job->v->size)
		limit = job->v->size;
	*pos = job->next;
	*end = *pos + RESYNC_CHUNK < limit ? *pos + RESYNC_CHUNK : limit;
	job->next = *end;
	return true;
}

static void start_lane(struct resync *job, struct lane *ln, uint64_t pos, uint64_t end)
{
	ln->busy = true;
	ln->pos = pos;
	ln->end = end;
	ln->copied = 0;
	job->busy++;
	ln->lock.grant = chunk_locked;
	/* Copying excludes everything; verifying only writes (a shared lock
	 * waits for writes in flight, which reach both replicas). */
	if (rl_acquire(&job->v->lock, &ln->lock, pos / BLK, end / BLK,
		       !job->verifying))
		chunk_locked(&ln->lock);
}

static void fill_lanes(struct resync *job)
{
	if (job->cancelled || !target_ok(job) || !job->src->in_sync) {
		job->stopping = true;
		if (!job->err)
			job->err = job->cancelled ? -ECANCELED : -EIO;
	}
	for (unsigned i = 0; i < job->nlanes && !job->stopping; i++) {
		uint64_t pos, end;

		if (job->lanes[i].busy)
			continue;
		if (!take_chunk(job, &pos, &end))
			break;
		start_lane(job, &job->lanes[i], pos, end);
	}
	settle(job);
}

static void task_fn(struct loop_task *t)
{
	struct resync *job = JOB_OF(t, task);

	job->task_queued = false;
	fill_lanes(job);
}
static void pace_fn(struct loop_timer *t) { fill_lanes(JOB_OF(t, pace)); }

/* The source: the replica reads are served from (vol_pick_reader). */
static struct replica *pick_source(struct vol *v, unsigned target)
{
	int i = vol_pick_reader(v, 1u << target);

	return i < 0 ? NULL : v->reps[i];
}

static unsigned lanes_for(uint64_t rate_bps)
{
	uint64_t n = rate_bps ? rate_bps / LANE_RATE + 1 : MAX_LANES;

	return n < MAX_LANES ? (unsigned)n : MAX_LANES;
}

static struct resync *job_alloc(const struct resync_opts *opts)
{
	struct resync *job = calloc(1, sizeof *job);

	if (!job)
		return NULL;
	job->nlanes = lanes_for(opts->rate_bps);
	for (unsigned i = 0; i < job->nlanes; i++) {
		job->lanes[i].job = job;
		if (posix_memalign((void **)&job->lanes[i].buf, BLK, RESYNC_CHUNK) != 0) {
			job->lanes[i].buf = NULL;
			job_free(job);
			return NULL;
		}
	}
	if (opts->ranges) {
		job->ranges = malloc(opts->nranges * sizeof *job->ranges + 1);
		if (!job->ranges) {
			job_free(job);
			return NULL;
		}
		memcpy(job->ranges, opts->ranges, opts->nranges * sizeof *job->ranges);
	}
	return job;
}

struct resync *resync_start(struct vol *v, const struct resync_opts *opts)
{
	struct replica *src = pick_source(v, opts->target);
	struct resync *job;

	if (!src || opts->target >= v->nreps || !(job = job_alloc(opts)))
		return NULL;
	job->v = v;
	job->opts = *opts;
	job->opts.ranges = job->ranges;
	job->src = src;
	job->dst = v->reps[opts->target];
	job->next = opts->ranges ? 0 : opts->from / RESYNC_CHUNK * RESYNC_CHUNK;
	job->start = job->next;
	job->stats.pos = job->checkpointed = job->next;
	job->t0_ms = loop_now_ms();
	job->task.fn = task_fn;
	job->pace.fn = pace_fn;
	/* From now on the target gets every client write. */
	if (!job->dst->in_sync)
		job->dst->receiving = true;
	log_info("volume %s: resync of %s from %s starting at %llu", v->name,
		 job->dst->node, src->node, (unsigned long long)job->stats.pos);
	queue_fill(job);
	return job;
}

void resync_cancel(struct resync *job)
{
	job->cancelled = true;
}

const struct resync_stats *resync_get_stats(const struct resync *job)
{
	return &job->stats;
}
