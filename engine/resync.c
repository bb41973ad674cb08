#include "resync.h"

#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "volume_int.h"

#define BLK STORE_BLOCK
#define CHUNK_BLOCKS (RESYNC_CHUNK / BLK)

struct resync {
	struct vol *v;
	struct resync_opts opts;
	struct resync_stats stats;
	struct replica *src, *dst;
	bool cancelled;
	uint64_t end;                  /* end of the current chunk */
	unsigned idx, run_end;         /* block indexes in the chunk */
	unsigned pending;
	int err;
	uint64_t copied_in_chunk;
	uint64_t *ranges;
	size_t ri;
	struct rl_entry lock;
	struct rep_io io_src, io_dst;
	struct loop_task task;
	struct loop_timer pace;
	uint8_t *buf;
	uint32_t src_crcs[CHUNK_BLOCKS];
	uint32_t dst_crcs[CHUNK_BLOCKS];
	uint32_t copy_crcs[CHUNK_BLOCKS];
};

#define JOB_OF(ptr, field) \
	((struct resync *)((char *)(ptr) - offsetof(struct resync, field)))

static void next_chunk(struct resync *job);
static void copy_next(struct resync *job);

/* The target still gets every write: it is in sync (reconcile) or
 * receiving (resync). */
static bool target_ok(const struct resync *job)
{
	return job->dst->in_sync || job->dst->receiving;
}

static void job_end(struct resync *job, int res)
{
	/* Success: the caller makes the target in sync right away, in this
	 * same turn, so no write falls between the two. */
	job->dst->receiving = false;
	if (res < 0 && res != -ECANCELED)
		log_warn("volume %s: resync of %s stopped at %llu: %s", job->v->name,
			 job->dst->node, (unsigned long long)job->stats.pos,
			 strerror(-res));
	job->opts.on_done(job, res, job->opts.arg);
	free(job->ranges);
	free(job->buf);
	free(job);
}

static void release_chunk(struct resync *job)
{
	if (job->lock.granted) {
		job->lock.granted = false;
		rl_release(&job->v->lock, &job->lock);
	}
}

static void fail(struct resync *job, int res)
{
	release_chunk(job);
	job_end(job, res);
}

/* --- finishing: flush the target, then report --------------------------- */

static void flushed(struct rep_io *io, int res)
{
	struct resync *job = io->priv;

	if (res < 0) {
		job_end(job, res);
		return;
	}
	log_info("volume %s: resync of %s done: %llu bytes compared, %llu copied",
		 job->v->name, job->dst->node,
		 (unsigned long long)job->stats.bytes_compared,
		 (unsigned long long)job->stats.bytes_copied);
	job_end(job, 0);
}

static void finish(struct resync *job)
{
	job->io_dst = (struct rep_io){ .done = flushed, .priv = job, .op = REP_FLUSH };
	replica_submit(job->dst, &job->io_dst);
}

/* --- one chunk --------------------------------------------------------------- */

static unsigned chunk_blocks(const struct resync *job)
{
	return (unsigned)((job->end - job->stats.pos) / BLK);
}

static void chunk_done(struct resync *job)
{
	uint64_t before = job->stats.pos;
	uint64_t delay_ms = 0;

	release_chunk(job);
	job->stats.bytes_compared += job->end - job->stats.pos;
	job->stats.pos = job->end;
	if (job->opts.on_progress &&
	    before / RESYNC_CHECKPOINT_EVERY != job->stats.pos / RESYNC_CHECKPOINT_EVERY)
		job->opts.on_progress(job, job->stats.pos, job->opts.arg);
	if (job->opts.rate_bps && job->copied_in_chunk)
		delay_ms = job->copied_in_chunk * 1000 / job->opts.rate_bps;
	if (delay_ms) {
		loop_timer_arm(job->v->loop, &job->pace, delay_ms);
	} else {
		loop_defer(job->v->loop, &job->task);
	}
}

static void wrote(struct rep_io *io, int res)
{
	struct resync *job = io->priv;

	if (res < 0) {
		fail(job, res);
		return;
	}
	job->stats.bytes_copied += (uint64_t)(job->run_end - job->idx) * BLK;
	job->copied_in_chunk += (uint64_t)(job->run_end - job->idx) * BLK;
	job->idx = job->run_end;
	copy_next(job);
}

static bool verify_run(struct resync *job, unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		if (crc32c(job->buf + (size_t)i * BLK, BLK) != job->copy_crcs[i])
			return false;
	return true;
}

static void read_src(struct rep_io *io, int res)
{
	struct resync *job = io->priv;
	unsigned n = job->run_end - job->idx;

	if (res == 0 && !verify_run(job, n))
		res = -STORE_ECSUM;
	if (res < 0) {
		fail(job, res);
		return;
	}
	job->io_dst = (struct rep_io){ .done = wrote, .priv = job, .op = REP_WRITE,
				       .off = job->stats.pos + (uint64_t)job->idx * BLK,
				       .len = (uint64_t)n * BLK, .buf = job->buf,
				       .crcs = job->copy_crcs };
	replica_submit(job->dst, &job->io_dst);
}

/* Copy the next run of blocks whose checksums differ. */
static void copy_next(struct resync *job)
{
	unsigned n = chunk_blocks(job), i = job->idx, j;

	if (job->cancelled || !target_ok(job)) {
		fail(job, job->cancelled ? -ECANCELED : -EIO);
		return;
	}
	while (i < n && job->src_crcs[i] == job->dst_crcs[i])
		i++;
	if (i == n) {
		chunk_done(job);
		return;
	}
	for (j = i; j < n && job->src_crcs[j] != job->dst_crcs[j]; j++)
		;
	job->idx = i;
	job->run_end = j;
	job->io_src = (struct rep_io){ .done = read_src, .priv = job, .op = REP_READ,
				       .off = job->stats.pos + (uint64_t)i * BLK,
				       .len = (uint64_t)(j - i) * BLK, .buf = job->buf,
				       .crcs = job->copy_crcs };
	replica_submit(job->src, &job->io_src);
}

static void got_crcs(struct rep_io *io, int res)
{
	struct resync *job = io->priv;

	if (res < 0 && job->err == 0)
		job->err = res;
	if (--job->pending > 0)
		return;
	if (job->err < 0) {
		fail(job, job->err);
		return;
	}
	job->idx = 0;
	copy_next(job);
}

static void chunk_locked(struct rl_entry *e)
{
	struct resync *job = JOB_OF(e, lock);
	uint64_t len = job->end - job->stats.pos;

	job->err = 0;
	job->pending = 2;
	job->copied_in_chunk = 0;
	job->io_src = (struct rep_io){ .done = got_crcs, .priv = job, .op = REP_CRCS,
				       .off = job->stats.pos, .len = len,
				       .crcs = job->src_crcs };
	job->io_dst = (struct rep_io){ .done = got_crcs, .priv = job, .op = REP_CRCS,
				       .off = job->stats.pos, .len = len,
				       .crcs = job->dst_crcs };
	replica_submit(job->src, &job->io_src);
	replica_submit(job->dst, &job->io_dst);
}

/* Reconcile mode: move pos into the next listed range; false at the end. */
static bool seek_range(struct resync *job, uint64_t *limit)
{
	uint64_t len = job->opts.range_len;

	while (job->ri < job->opts.nranges && job->stats.pos >= job->ranges[job->ri] + len)
		job->ri++;
	if (job->ri == job->opts.nranges)
		return false;
	if (job->stats.pos < job->ranges[job->ri])
		job->stats.pos = job->ranges[job->ri];
	*limit = job->ranges[job->ri] + len;
	return true;
}

static void next_chunk(struct resync *job)
{
	uint64_t limit = job->v->size;

	if (job->cancelled || !target_ok(job) || !job->src->in_sync) {
		job_end(job, job->cancelled ? -ECANCELED : -EIO);
		return;
	}
	if ((job->ranges && !seek_range(job, &limit)) || job->stats.pos >= job->v->size) {
		finish(job);
		return;
	}
	if (limit > job->v->size)
		limit = job->v->size;
	job->end = job->stats.pos + RESYNC_CHUNK;
	if (job->end > limit)
		job->end = limit;
	job->lock.grant = chunk_locked;
	if (rl_acquire(&job->v->lock, &job->lock, job->stats.pos / BLK,
		       job->end / BLK, true))
		chunk_locked(&job->lock);
}

static void task_fn(struct loop_task *t) { next_chunk(JOB_OF(t, task)); }
static void pace_fn(struct loop_timer *t) { next_chunk(JOB_OF(t, pace)); }

/* The source: the engine's own in-sync replica if it is connected. */
static struct replica *pick_source(struct vol *v, unsigned target)
{
	struct replica *best = NULL;

	for (unsigned i = 0; i < v->nreps; i++) {
		struct replica *r = v->reps[i];

		if (i == target || !r->in_sync || !r->up)
			continue;
		if (r->local || r->near)
			return r;
		if (!best)
			best = r;
	}
	return best;
}

struct resync *resync_start(struct vol *v, const struct resync_opts *opts)
{
	struct replica *src = pick_source(v, opts->target);
	struct resync *job;

	if (!src || opts->target >= v->nreps)
		return NULL;
	job = calloc(1, sizeof *job);
	if (!job || posix_memalign((void **)&job->buf, BLK, RESYNC_CHUNK) != 0) {
		free(job);
		return NULL;
	}
	job->v = v;
	job->opts = *opts;
	job->src = src;
	job->dst = v->reps[opts->target];
	job->stats.pos = opts->from / RESYNC_CHUNK * RESYNC_CHUNK;
	job->task.fn = task_fn;
	job->pace.fn = pace_fn;
	if (opts->ranges) {
		job->ranges = malloc(opts->nranges * sizeof *job->ranges + 1);
		if (!job->ranges) {
			free(job->buf);
			free(job);
			return NULL;
		}
		memcpy(job->ranges, opts->ranges, opts->nranges * sizeof *job->ranges);
		job->opts.ranges = job->ranges;
		job->stats.pos = 0;
	}
	/* From now on the target gets every client write. */
	if (!job->dst->in_sync)
		job->dst->receiving = true;
	log_info("volume %s: resync of %s from %s starting at %llu", v->name,
		 job->dst->node, src->node, (unsigned long long)job->stats.pos);
	loop_defer(v->loop, &job->task);
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
