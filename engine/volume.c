#include "volume.h"

#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

#define BLK STORE_BLOCK

struct vol {
	char *name;
	struct store *store;
	struct loop *loop;
	struct rangelock lock;
	struct vol_stats stats;
	unsigned inflight;
};

/*
 * A request runs as a list of steps. Each step may issue one store I/O
 * (returning true) and has an optional `after` run when that I/O succeeds.
 * Steps that have nothing to do for this request return false and are
 * skipped.
 */
struct step {
	bool (*issue)(struct vol_req *r);
	void (*after)(struct vol_req *r);
};

static uint64_t align_down(uint64_t x) { return x & ~(uint64_t)(BLK - 1); }
static uint64_t align_up(uint64_t x) { return align_down(x + BLK - 1); }

uint64_t vol_span(uint64_t off, uint64_t len)
{
	return align_up(off + len) - align_down(off);
}

struct vol *vol_new(const char *name, struct store *store, struct loop *loop)
{
	struct vol *v = calloc(1, sizeof *v);

	if (!v)
		return NULL;
	v->name = strdup(name);
	if (!v->name) {
		free(v);
		return NULL;
	}
	v->store = store;
	v->loop = loop;
	return v;
}

void vol_free(struct vol *v)
{
	if (!v)
		return;
	store_close(v->store);
	free(v->name);
	free(v);
}

const char *vol_name(const struct vol *v) { return v->name; }
uint64_t vol_size(const struct vol *v) { return store_size(v->store); }
struct store *vol_store(struct vol *v) { return v->store; }
const struct vol_stats *vol_get_stats(const struct vol *v) { return &v->stats; }
unsigned vol_inflight(const struct vol *v) { return v->inflight; }

void vol_req_fini(struct vol_req *r)
{
	if (!r)
		return;
	free(r->edge);
	free(r->crcs);
	r->edge = NULL;
	r->crcs = NULL;
	r->crcs_cap = 0;
}

static int ensure_crcs(struct vol_req *r, uint64_t bytes)
{
	uint32_t n = (uint32_t)(bytes / BLK);

	if (n <= r->crcs_cap)
		return 0;
	free(r->crcs);
	r->crcs = malloc((size_t)n * sizeof *r->crcs);
	r->crcs_cap = r->crcs ? n : 0;
	return r->crcs ? 0 : -ENOMEM;
}

static int ensure_edge(struct vol_req *r)
{
	if (r->edge)
		return 0;
	if (posix_memalign((void **)&r->edge, BLK, BLK) != 0) {
		r->edge = NULL;
		return -ENOMEM;
	}
	return 0;
}

/* --- steps ---------------------------------------------------------- */

static uint64_t req_end(const struct vol_req *r) { return r->off + r->len; }
static bool head_partial(const struct vol_req *r) { return r->off != r->aoff; }
static bool tail_partial(const struct vol_req *r) { return req_end(r) != r->aend; }
static uint64_t tail_block(const struct vol_req *r) { return r->aend - BLK; }

/* The whole span is one block, already covered by the head step. */
static bool tail_is_head(const struct vol_req *r)
{
	return head_partial(r) && tail_block(r) == r->aoff;
}

static bool issue_read_all(struct vol_req *r)
{
	store_read(r->vol->store, &r->sreq, r->aoff, r->aend - r->aoff, r->buf,
		   r->crcs);
	return true;
}

/* Invariant 6 has the engine verify what a replica returns. The local
 * store verified this very buffer against its stored checksums a moment
 * ago, in this process, with no wire in between: checking it again finds
 * nothing new and costs a second pass over the data. Data that crosses the
 * network from a remote replica is verified here again. */
static void after_read_all(struct vol_req *r)
{
	(void)r;
}

static bool issue_edge_read(struct vol_req *r, uint64_t block_off)
{
	store_read(r->vol->store, &r->sreq, block_off, BLK, r->edge, NULL);
	return true;
}

static bool issue_w_head(struct vol_req *r)
{
	return head_partial(r) && issue_edge_read(r, r->aoff);
}

static void after_w_head(struct vol_req *r)
{
	memcpy(r->buf, r->edge, r->off - r->aoff);
	if (tail_is_head(r) && tail_partial(r))
		memcpy(r->buf + (req_end(r) - r->aoff), r->edge + (req_end(r) - r->aoff),
		       r->aend - req_end(r));
}

static bool issue_w_tail(struct vol_req *r)
{
	return tail_partial(r) && !tail_is_head(r) &&
	       issue_edge_read(r, tail_block(r));
}

static void after_w_tail(struct vol_req *r)
{
	uint64_t in_block = req_end(r) - tail_block(r);

	memcpy(r->buf + (req_end(r) - r->aoff), r->edge + in_block, BLK - in_block);
}

static bool issue_w_write(struct vol_req *r)
{
	uint64_t bytes = r->aend - r->aoff;

	/* CRCs are computed once, where data enters the engine. */
	crc32c_blocks(r->buf, bytes, r->crcs);
	store_write(r->vol->store, &r->sreq, r->aoff, bytes, r->buf, r->crcs,
		    r->flags & VOL_FUA ? STORE_FUA : 0);
	return true;
}

/* Whole blocks strictly inside the client's range. */
static bool mid_range(const struct vol_req *r, uint64_t *lo, uint64_t *hi)
{
	*lo = align_up(r->off);
	*hi = align_down(req_end(r));
	return *lo < *hi;
}

static bool issue_z_head_read(struct vol_req *r)
{
	return head_partial(r) && issue_edge_read(r, r->aoff);
}

static bool issue_edge_write(struct vol_req *r, uint64_t block_off)
{
	r->crcs[0] = crc32c(r->edge, BLK);
	store_write(r->vol->store, &r->sreq, block_off, BLK, r->edge, r->crcs,
		    r->flags & VOL_FUA ? STORE_FUA : 0);
	return true;
}

static bool issue_z_head_write(struct vol_req *r)
{
	uint64_t from = r->off - r->aoff;
	uint64_t to = req_end(r) - r->aoff;

	if (!head_partial(r))
		return false;
	memset(r->edge + from, 0, (to < BLK ? to : BLK) - from);
	return issue_edge_write(r, r->aoff);
}

static bool issue_z_mid(struct vol_req *r)
{
	uint64_t lo, hi;
	unsigned sflags = r->flags & VOL_FUA ? STORE_FUA : 0;

	if (!mid_range(r, &lo, &hi))
		return false;
	if (r->op == VOL_TRIM) {
		store_trim(r->vol->store, &r->sreq, lo, hi - lo, sflags);
	} else {
		sflags |= r->flags & VOL_NO_HOLE ? STORE_NO_HOLE : 0;
		store_zero(r->vol->store, &r->sreq, lo, hi - lo, sflags);
	}
	return true;
}

static bool issue_z_tail_read(struct vol_req *r)
{
	return tail_partial(r) && !tail_is_head(r) &&
	       issue_edge_read(r, tail_block(r));
}

static bool issue_z_tail_write(struct vol_req *r)
{
	if (!tail_partial(r) || tail_is_head(r))
		return false;
	memset(r->edge, 0, req_end(r) - tail_block(r));
	return issue_edge_write(r, tail_block(r));
}

static const struct step read_steps[] = {
	{ issue_read_all, after_read_all }, { NULL, NULL },
};
static const struct step write_steps[] = {
	{ issue_w_head, after_w_head },
	{ issue_w_tail, after_w_tail },
	{ issue_w_write, NULL },
	{ NULL, NULL },
};
static const struct step zero_steps[] = {
	{ issue_z_head_read, NULL },
	{ issue_z_head_write, NULL },
	{ issue_z_mid, NULL },
	{ issue_z_tail_read, NULL },
	{ issue_z_tail_write, NULL },
	{ NULL, NULL },
};
/* Partial blocks of a trim are left alone: trim is advisory. */
static const struct step trim_steps[] = {
	{ issue_z_mid, NULL }, { NULL, NULL },
};

static const struct step *steps_for(enum vol_op op)
{
	switch (op) {
	case VOL_READ: return read_steps;
	case VOL_WRITE: return write_steps;
	case VOL_ZERO: return zero_steps;
	case VOL_TRIM: return trim_steps;
	case VOL_FLUSH: break;
	}
	return NULL;
}

/* --- driving a request ----------------------------------------------- */

static void finish(struct vol_req *r, int res)
{
	struct vol *v = r->vol;

	if (r->lock.granted)
		rl_release(&v->lock, &r->lock);
	r->lock.granted = false;
	if (res == -STORE_ECSUM)
		log_warn("volume %s: checksum error in [%llu, +%llu)", v->name,
			 (unsigned long long)r->aoff,
			 (unsigned long long)(r->aend - r->aoff));
	else if (res < 0)
		v->stats.io_errors++;
	v->inflight--;
	r->done(r, res);
}

static void advance(struct vol_req *r)
{
	const struct step *steps = steps_for(r->op);

	while (steps[r->step].issue) {
		if (steps[r->step].issue(r))
			return;
		r->step++;
	}
	finish(r, 0);
}

static void store_done(struct store_req *sreq, int res)
{
	struct vol_req *r = sreq->priv;
	const struct step *steps = steps_for(r->op);

	if (res < 0) {
		finish(r, res);
		return;
	}
	if (!steps) {   /* flush */
		finish(r, 0);
		return;
	}
	r->err = 0;
	if (steps[r->step].after)
		steps[r->step].after(r);
	if (r->err < 0) {
		finish(r, r->err);
		return;
	}
	r->step++;
	advance(r);
}

static void lock_granted(struct rl_entry *e)
{
	struct vol_req *r = (struct vol_req *)((char *)e - offsetof(struct vol_req, lock));

	advance(r);
}

static void finish_task(struct loop_task *t)
{
	struct vol_req *r = (struct vol_req *)((char *)t - offsetof(struct vol_req, task));

	finish(r, r->err);
}

/* Complete from the loop, never inside vol_submit. */
static void finish_later(struct vol_req *r, int res)
{
	r->err = res;
	r->task.fn = finish_task;
	loop_defer(r->vol->loop, &r->task);
}

static int prepare(struct vol_req *r)
{
	if (r->op == VOL_READ || r->op == VOL_WRITE)
		if (ensure_crcs(r, r->aend - r->aoff) < 0)
			return -ENOMEM;
	if (r->op == VOL_ZERO && ensure_crcs(r, BLK) < 0)
		return -ENOMEM;
	if ((r->op == VOL_WRITE || r->op == VOL_ZERO) &&
	    (head_partial(r) || tail_partial(r)))
		return ensure_edge(r);
	return 0;
}

static void count(struct vol *v, const struct vol_req *r)
{
	switch (r->op) {
	case VOL_READ: v->stats.reads++; v->stats.read_bytes += r->len; break;
	case VOL_WRITE:
		v->stats.writes++;
		v->stats.write_bytes += r->len;
		if (head_partial(r) || tail_partial(r))
			v->stats.rmw++;
		break;
	case VOL_ZERO: v->stats.zeroes++; break;
	case VOL_TRIM: v->stats.trims++; break;
	case VOL_FLUSH: v->stats.flushes++; break;
	}
}

void vol_submit(struct vol *v, struct vol_req *r, enum vol_op op,
		uint64_t off, uint64_t len, uint8_t *buf, unsigned flags)
{
	int ret;

	r->vol = v;
	r->op = op;
	r->off = off;
	r->len = len;
	r->aoff = align_down(off);
	r->aend = align_up(off + len);
	r->buf = buf;
	r->flags = flags;
	r->step = 0;
	r->lock.granted = false;
	r->sreq.done = store_done;
	r->sreq.priv = r;
	v->inflight++;
	count(v, r);
	if (op == VOL_FLUSH) {
		store_flush(v->store, &r->sreq);
		return;
	}
	ret = prepare(r);
	if (ret < 0 || len == 0) {
		finish_later(r, ret);
		return;
	}
	r->lock.grant = lock_granted;
	if (rl_acquire(&v->lock, &r->lock, r->aoff / BLK, r->aend / BLK,
		       op != VOL_READ))
		advance(r);
}

int vol_extents(struct vol *v, uint64_t off, uint64_t len,
		struct store_extent *ext, int max)
{
	return store_extents(v->store, off, len, ext, max);
}
