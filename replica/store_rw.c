/*
 * Request state machines: read, write, trim, zero, flush.
 *
 *   store_write/trim/zero --al_begin--> [wait AL round] --store_al_ready-->
 *   req_issue --(data op + crc op)--> req_ops_done --> req_finish --> done
 *
 * op[0] works on the data file, op[1] on the crc file (a synchronous
 * page-cache write when the backend has pwrite_now); the request is done
 * when both are (r->pending). Short transfers are resubmitted.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/falloc.h>
#include <string.h>
#include <sys/uio.h>

#include "log.h"
#include "store_priv.h"

enum zero_step { ZS_PUNCH, ZS_ZERO_RANGE, ZS_FB_PUNCH, ZS_FB_ALLOC };

static void req_ops_done(struct store_req *r);

static void req_done_task(struct loop_task *t)
{
	struct store_req *r = container_of(t, struct store_req, task);

	r->done(r, r->error);
}

/* Complete from the loop's next turn: the caller is not in a callback. */
static void req_defer(struct store_req *r, int res)
{
	r->error = res;
	r->task.fn = req_done_task;
	loop_defer(r->store->io->loop, &r->task);
}

static void req_init(struct store *s, struct store_req *r, int kind,
		     uint64_t off, uint64_t len, unsigned flags)
{
	r->store = s;
	r->kind = kind;
	r->off = off;
	r->len = len;
	r->flags = flags;
	r->progress = r->crc_progress = 0;
	r->pending = 0;
	r->step = 0;
	r->error = 0;
	r->next = NULL;
	r->buf = NULL;
	r->crcs = NULL;
}

static bool range_ok(const struct store *s, uint64_t off, uint64_t len)
{
	return off % STORE_BLOCK == 0 && len % STORE_BLOCK == 0 &&
	       off <= s->size && len <= s->size - off;
}

/* Complete r at once if it cannot run: a bad range, nothing to do, or a
 * broken store. */
static bool refuse(struct store *s, struct store_req *r, uint64_t off,
		   uint64_t len)
{
	if (!range_ok(s, off, len))
		req_defer(r, -EINVAL);
	else if (s->broken)
		req_defer(r, s->broken);
	else if (len == 0)
		req_defer(r, 0);
	else
		return false;
	return true;
}

/* One failed step; the request finishes when its last op is back. */
static void req_op_end(struct store_req *r, int res)
{
	if (res < 0 && r->error == 0)
		r->error = res;
	if (--r->pending == 0)
		req_ops_done(r);
}

static uint32_t first_region(const struct store_req *r)
{
	return (uint32_t)(r->off >> r->store->al.region_shift);
}

static uint32_t last_region(const struct store_req *r)
{
	return (uint32_t)((r->off + r->len - 1) >> r->store->al.region_shift);
}

/* --- data file and crc file transfers ---------------------------------- */

static int rwf(const struct store_req *r)
{
	return r->flags & STORE_FUA ? RWF_DSYNC : 0;
}

static void data_submit(struct store_req *r)
{
	struct store *s = r->store;
	char *buf = (char *)r->buf + r->progress;
	size_t len = r->len - r->progress;
	uint64_t off = r->off + r->progress;

	if (r->kind == SK_READ)
		s->io->ops->pread(s->io, &r->op[0], s->dfd, buf, len, off);
	else
		s->io->ops->pwrite(s->io, &r->op[0], s->dfd, buf, len, off,
				   rwf(r));
}

static void data_done(struct loop_op *op, int res, uint32_t flags)
{
	struct store_req *r = container_of(op, struct store_req, op[0]);

	(void)flags;
	if (res <= 0) {
		/* 0 would loop forever: the file is never shorter. */
		req_op_end(r, res < 0 ? res : -EIO);
		return;
	}
	r->progress += (uint64_t)res;
	if (r->progress < r->len)
		data_submit(r);
	else
		req_op_end(r, 0);
}

static void crc_done(struct loop_op *op, int res, uint32_t flags);

static void crc_now_done(struct loop_task *t)
{
	struct store_req *r = container_of(t, struct store_req, task);

	crc_done(&r->op[1], r->crc_res, 0);
}

/* Write the stored crc entries of [off, off+len) from the in-memory array:
 * at once into the page cache when the backend can (the common case, no
 * worker thread), else as an asynchronous write. FUA writes go async with
 * RWF_DSYNC. */
static void crc_submit(struct store_req *r)
{
	struct store *s = r->store;
	uint64_t base = r->off / STORE_BLOCK * 4;
	uint64_t len = r->len / STORE_BLOCK * 4;

	if (s->io->ops->pwrite_now && !rwf(r)) {
		r->crc_res = (int)s->io->ops->pwrite_now(
			s->io, s->cfd, (char *)s->crc + base + r->crc_progress,
			len - r->crc_progress, base + r->crc_progress);
		r->task.fn = crc_now_done;
		loop_defer(s->io->loop, &r->task);
		return;
	}
	s->io->ops->pwrite(s->io, &r->op[1], s->cfd,
			   (char *)s->crc + base + r->crc_progress,
			   len - r->crc_progress, base + r->crc_progress,
			   rwf(r));
}

static void crc_done(struct loop_op *op, int res, uint32_t flags)
{
	struct store_req *r = container_of(op, struct store_req, op[1]);

	(void)flags;
	if (res <= 0) {
		req_op_end(r, res < 0 ? res : -EIO);
		return;
	}
	r->crc_progress += (uint64_t)res;
	if (r->crc_progress < r->len / STORE_BLOCK * 4)
		crc_submit(r);
	else
		req_op_end(r, 0);
}

static void start_data_and_crc(struct store_req *r)
{
	r->pending = 2;
	r->op[0].cb = data_done;
	r->op[1].cb = crc_done;
	data_submit(r);
	crc_submit(r);
}

/* --- read ---------------------------------------------------------------- */

static int read_verify(struct store *s, struct store_req *r)
{
	uint64_t b0 = r->off / STORE_BLOCK;

	for (uint64_t i = 0; i < r->len / STORE_BLOCK; i++) {
		uint32_t c = crc32c((char *)r->buf + i * STORE_BLOCK,
				    STORE_BLOCK);

		if (c != store_crc_get(s, b0 + i)) {
			s->stats.csum_errors++;
			log_warn("store: checksum mismatch in block %llu",
				 (unsigned long long)(b0 + i));
			return -STORE_ECSUM;
		}
		if (r->crcs)
			r->crcs[i] = c;
	}
	return 0;
}

void store_read(struct store *s, struct store_req *r, uint64_t off,
		uint64_t len, void *buf, uint32_t *crcs)
{
	req_init(s, r, SK_READ, off, len, 0);
	r->buf = buf;
	r->crcs = crcs;
	if (refuse(s, r, off, len))
		return;
	r->pending = 1;
	r->op[0].cb = data_done;
	data_submit(r);
}

/* --- write, trim, zero: admitted by the activity log --------------------- */

static bool write_crcs_ok(const void *buf, uint64_t len, const uint32_t *crcs)
{
	for (uint64_t i = 0; i < len / STORE_BLOCK; i++)
		if (crc32c((const char *)buf + i * STORE_BLOCK, STORE_BLOCK) !=
		    crcs[i])
			return false;
	return true;
}

static void zero_submit(struct store_req *r);

static void write_issue(struct store_req *r)
{
	uint64_t b0 = r->off / STORE_BLOCK;

	for (uint64_t i = 0; i < r->len / STORE_BLOCK; i++)
		store_crc_set(r->store, b0 + i, r->crcs[i]);
	start_data_and_crc(r);
}

/* Trim and zero: the stored form of a zero block's crc is 0. */
static void zero_issue(struct store_req *r)
{
	struct store *s = r->store;

	memset((char *)s->crc + r->off / STORE_BLOCK * 4, 0,
	       r->len / STORE_BLOCK * 4);
	r->pending = 2;
	r->op[1].cb = crc_done;
	zero_submit(r);
	crc_submit(r);
}

static void req_issue(struct store_req *r)
{
	if (r->kind == SK_WRITE)
		write_issue(r);
	else
		zero_issue(r);
}

static void req_admit(struct store_req *r)
{
	if (al_begin(&r->store->al, r, first_region(r), last_region(r)) == 0)
		req_issue(r);
}

static void req_finish(struct store_req *r)
{
	struct store *s = r->store;

	if (r->error < 0 && r->error != -STORE_ECSUM)
		store_recheck_range(s, r->off, r->len);
	al_end(&s->al, first_region(r), last_region(r), ++s->seq);
	if (r->error == 0 && r->kind == SK_WRITE) {
		s->stats.writes++;
		s->stats.write_bytes += r->len;
	} else if (r->error == 0) {
		r->kind == SK_TRIM ? s->stats.trims++ : s->stats.zeroes++;
	}
	r->done(r, r->error);
}

void store_al_ready(struct store_req *r, int res)
{
	if (res < 0) {
		r->error = res;
		req_finish(r);
		return;
	}
	req_issue(r);
}

void store_write(struct store *s, struct store_req *r, uint64_t off,
		 uint64_t len, const void *buf, const uint32_t *crcs,
		 unsigned flags)
{
	req_init(s, r, SK_WRITE, off, len, flags);
	r->buf = (void *)buf;
	r->crcs = (uint32_t *)crcs;
	if (refuse(s, r, off, len))
		return;
	if (!write_crcs_ok(buf, len, crcs)) {
		log_warn("store: write at %llu refused: data does not match "
			 "its checksum", (unsigned long long)off);
		req_defer(r, -STORE_ECSUM);
		return;
	}
	req_admit(r);
}

static void zero_start(struct store *s, struct store_req *r, int kind,
		       uint64_t off, uint64_t len, unsigned flags)
{
	req_init(s, r, kind, off, len, flags);
	if (refuse(s, r, off, len))
		return;
	r->step = kind == SK_ZERO && (flags & STORE_NO_HOLE) ? ZS_ZERO_RANGE
							      : ZS_PUNCH;
	req_admit(r);
}

void store_trim(struct store *s, struct store_req *r, uint64_t off,
		uint64_t len, unsigned flags)
{
	zero_start(s, r, SK_TRIM, off, len, flags);
}

void store_zero(struct store *s, struct store_req *r, uint64_t off,
		uint64_t len, unsigned flags)
{
	zero_start(s, r, SK_ZERO, off, len, flags);
}

/* --- the data-file side of trim and zero --------------------------------- */

static const int zero_mode[] = {
	[ZS_PUNCH] = FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
	[ZS_ZERO_RANGE] = FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE,
	[ZS_FB_PUNCH] = FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
	[ZS_FB_ALLOC] = FALLOC_FL_KEEP_SIZE,
};

static void zero_done(struct loop_op *op, int res, uint32_t flags)
{
	struct store_req *r = container_of(op, struct store_req, op[0]);

	(void)flags;
	/* No ZERO_RANGE here (tmpfs): punch, then allocate zeroes again. */
	if (r->step == ZS_ZERO_RANGE && (res == -EOPNOTSUPP || res == -EINVAL))
		r->step = ZS_FB_PUNCH;
	else if (r->step == ZS_FB_PUNCH && res == 0)
		r->step = ZS_FB_ALLOC;
	else {
		req_op_end(r, res < 0 ? res : 0);
		return;
	}
	zero_submit(r);
}

static void zero_submit(struct store_req *r)
{
	struct store *s = r->store;

	r->op[0].cb = zero_done;
	s->io->ops->fallocate(s->io, &r->op[0], s->dfd, zero_mode[r->step],
			      r->off, r->len);
}

/* --- flush and the FUA sync of trim and zero ----------------------------- */

static void sync_done(struct loop_op *op, int res, uint32_t flags)
{
	struct store_req *r = container_of(op, struct store_req, op[0]);

	(void)flags;
	req_op_end(r, res < 0 ? res : 0);
}

static void sync_crc_done(struct loop_op *op, int res, uint32_t flags)
{
	struct store_req *r = container_of(op, struct store_req, op[1]);

	(void)flags;
	req_op_end(r, res < 0 ? res : 0);
}

static void sync_both(struct store_req *r)
{
	struct store *s = r->store;

	r->pending = 2;
	r->op[0].cb = sync_done;
	r->op[1].cb = sync_crc_done;
	s->io->ops->fdatasync(s->io, &r->op[0], s->dfd);
	s->io->ops->fdatasync(s->io, &r->op[1], s->cfd);
}

void store_flush(struct store *s, struct store_req *r)
{
	req_init(s, r, SK_FLUSH, 0, 0, 0);
	r->seq = ++s->seq;
	if (s->broken)
		req_defer(r, s->broken);
	else
		sync_both(r);
}

static void flush_finish(struct store_req *r)
{
	struct store *s = r->store;

	if (r->error == 0) {
		s->stats.flushes++;
		al_flushed(&s->al, r->seq);
	}
	r->done(r, r->error);
}

static void read_finish(struct store_req *r)
{
	struct store *s = r->store;

	if (r->error == 0)
		r->error = read_verify(s, r);
	if (r->error == 0) {
		s->stats.reads++;
		s->stats.read_bytes += r->len;
	}
	r->done(r, r->error);
}

static void req_ops_done(struct store_req *r)
{
	bool zeroing = r->kind == SK_TRIM || r->kind == SK_ZERO;

	if (r->kind == SK_READ)
		read_finish(r);
	else if (r->kind == SK_FLUSH)
		flush_finish(r);
	else if (zeroing && (r->flags & STORE_FUA) && r->error == 0 &&
		 r->step >= 0) {
		r->step = -1;   /* the data is in place: now make it durable */
		sync_both(r);
	} else
		req_finish(r);
}
