#include "reconcile.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "resync.h"
#include "volume_int.h"

#define DIRTY_CAP (64u * 1024)   /* bytes of region list per replica */

struct reconcile {
	struct vol *v;
	reconcile_done_fn *done;
	void *arg;
	unsigned pending;
	bool whole;                       /* a list overflowed: do it all */
	int err;
	uint64_t region;
	uint64_t *offs;
	size_t noffs;
	uint64_t copied;
	struct rep_io dio[VOL_MAX_REPLICAS];
	uint64_t *dbuf[VOL_MAX_REPLICAS];
	unsigned target[VOL_MAX_REPLICAS]; /* the job per replica index */
};

static void rc_free(struct reconcile *rc)
{
	for (unsigned i = 0; i < VOL_MAX_REPLICAS; i++)
		free(rc->dbuf[i]);
	free(rc->offs);
	free(rc);
}

static void rc_end(struct reconcile *rc)
{
	rc->done(rc->err, rc->copied, rc->arg);
	rc_free(rc);
}

/* The copy reads are served from (and resync copies from). */
static int source_index(const struct vol *v)
{
	return vol_pick_reader(v, 0);
}

static void job_done(struct resync *job, int res, void *arg)
{
	struct reconcile *rc = arg;
	struct vol *v = rc->v;

	rc->copied += resync_get_stats(job)->bytes_copied;
	if (res < 0) {
		int bad = -1;

		for (unsigned i = 0; i < v->nreps; i++)
			if (rc->target[i] && v->reps[i]->in_sync && v->reps[i]->errors)
				bad = (int)i;
		log_warn("volume %s: reconcile failed: %s", v->name, strerror(-res));
		/* Tried again later: by then the failed replica has left the
		 * set (if min_replicas allows), or the failure has passed. */
		if (bad >= 0)
			vol_isr_leave(v, (unsigned)bad, "it failed during reconcile");
		rc->err = -EAGAIN;
	}
	if (--rc->pending == 0)
		rc_end(rc);
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* Sort and drop duplicates. */
static void unique(struct reconcile *rc)
{
	size_t n = 0;

	qsort(rc->offs, rc->noffs, sizeof *rc->offs, cmp_u64);
	for (size_t i = 0; i < rc->noffs; i++)
		if (n == 0 || rc->offs[n - 1] != rc->offs[i])
			rc->offs[n++] = rc->offs[i];
	rc->noffs = n;
}

static void start_jobs(struct reconcile *rc)
{
	struct vol *v = rc->v;
	int src = source_index(v);

	unique(rc);
	log_info("volume %s: reconciling %s%zu dirty region(s) of %llu bytes",
		 v->name, rc->whole ? "the whole volume, not " : "", rc->noffs,
		 (unsigned long long)rc->region);
	rc->pending = 1;  /* held until every job is started */
	for (unsigned i = 0; src >= 0 && i < v->nreps; i++) {
		struct resync_opts o = {
			.target = i, .on_done = job_done, .arg = rc,
			.ranges = rc->whole ? NULL : rc->offs,
			.nranges = rc->noffs, .range_len = rc->region,
		};

		if ((int)i == src || !v->reps[i]->in_sync || !v->reps[i]->up)
			continue;
		if (!rc->whole && rc->noffs == 0)
			continue;
		rc->target[i] = 1;
		if (resync_start(v, &o)) {
			rc->pending++;
		} else {
			rc->err = -ENOMEM;
		}
	}
	if (--rc->pending == 0)
		rc_end(rc);
}

static void add_regions(struct reconcile *rc, const struct rep_io *io)
{
	const uint64_t *p = io->buf;
	size_t n = io->got / 8 - 1;
	uint64_t *grown = realloc(rc->offs, (rc->noffs + n + 1) * sizeof *grown);

	if (!grown) {
		rc->whole = true;
		return;
	}
	rc->offs = grown;
	if (p[0])
		rc->region = p[0];
	memcpy(rc->offs + rc->noffs, p + 1, n * sizeof *p);
	rc->noffs += n;
}

static void dirty_done(struct rep_io *io, int res)
{
	struct reconcile *rc = io->priv;

	if (res < 0)
		rc->whole = true;  /* cannot know: compare everything */
	else
		add_regions(rc, io);
	if (--rc->pending == 0)
		start_jobs(rc);
}

int reconcile_start(struct vol *v, reconcile_done_fn *done, void *arg)
{
	struct reconcile *rc;

	if (source_index(v) < 0)
		return -ENOTCONN;
	rc = calloc(1, sizeof *rc);
	if (!rc)
		return -ENOMEM;
	rc->v = v;
	rc->done = done;
	rc->arg = arg;
	rc->pending = 1;
	for (unsigned i = 0; i < v->nreps; i++) {
		if (!v->reps[i]->in_sync || !v->reps[i]->up)
			continue;
		rc->dbuf[i] = malloc(DIRTY_CAP);
		if (!rc->dbuf[i]) {
			rc->whole = true;
			continue;
		}
		rc->dio[i] = (struct rep_io){ .done = dirty_done, .priv = rc,
					      .op = REP_DIRTY, .buf = rc->dbuf[i],
					      .cap = DIRTY_CAP };
		rc->pending++;
		replica_submit(v->reps[i], &rc->dio[i]);
	}
	if (--rc->pending == 0)
		start_jobs(rc);
	return 0;
}
