/* The crash simulator: see store_io_sim.h. Test code, not on any hot path,
 * so it allocates freely. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "store_priv.h"
#include "store_io_sim.h"

/* The pre-image of one unsynced write or fallocate. */
struct sim_undo {
	struct sim_undo *next;
	int fd;
	uint64_t off;
	size_t len;
	uint8_t *pre;
};

struct sim_cmpl {
	struct loop_task task;
	struct sim_cmpl *prev, *next;
	struct store_io_sim *sim;
	struct loop_op *op;
	int res;
};

struct store_io_sim {
	struct store_io io;          /* first: io -> sim */
	uint64_t rng;
	struct sim_undo *journal;    /* oldest first */
	struct sim_cmpl *pending;
	uint64_t ops;
	uint64_t count[SIM_FALLOC + 1];
	uint64_t crash_at;
	bool crash_armed, crashed;
	unsigned fail_mask;
	uint64_t fail_skip;
	int fail_count, fail_err;
	size_t short_max;
	bool reorder;                /* complete each turn's ops shuffled */
	bool release_armed;
	struct loop_task release;
};

static struct store_io_sim *to_sim(struct store_io *io)
{
	return (struct store_io_sim *)io;
}

static uint64_t sim_rand(struct store_io_sim *sim)
{
	/* xorshift64*: reproducible from the seed */
	sim->rng ^= sim->rng >> 12;
	sim->rng ^= sim->rng << 25;
	sim->rng ^= sim->rng >> 27;
	return sim->rng * 2685821657736338717ull;
}

/* The store's data fd may be O_DIRECT; the simulator's byte-granular I/O
 * goes through a buffered twin of it. Returns the fd to use. */
static int twin_open(int fd, int *twin)
{
	int fl = fcntl(fd, F_GETFL);
	char path[64];

	*twin = -1;
	if (fl < 0 || !(fl & O_DIRECT))
		return fd;
	snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
	*twin = open(path, O_RDWR | O_CLOEXEC);
	return *twin;
}

static void twin_close(int twin)
{
	if (twin >= 0)
		close(twin);
}

static ssize_t sim_pread(int fd, void *buf, size_t len, uint64_t off)
{
	int twin, f = twin_open(fd, &twin);
	ssize_t n = f < 0 ? -1 : pread(f, buf, len, (off_t)off);
	ssize_t ret = n < 0 ? -errno : n;

	twin_close(twin);
	return ret;
}

static ssize_t sim_pwrite(int fd, const void *buf, size_t len, uint64_t off)
{
	int twin, f = twin_open(fd, &twin);
	ssize_t n = f < 0 ? -1 : pwrite(f, buf, len, (off_t)off);
	ssize_t ret = n < 0 ? -errno : n;

	twin_close(twin);
	return ret;
}

/* --- the journal of unsynced pre-images ---------------------------------- */

static void journal_append(struct store_io_sim *sim, struct sim_undo *u)
{
	struct sim_undo **pp = &sim->journal;

	while (*pp)
		pp = &(*pp)->next;
	u->next = NULL;
	*pp = u;
}

static void journal_record(struct store_io_sim *sim, int fd, uint64_t off,
			   size_t len)
{
	struct sim_undo *u = calloc(1, sizeof *u);
	ssize_t n;

	if (u == NULL || (u->pre = malloc(len ? len : 1)) == NULL)
		abort();
	n = sim_pread(fd, u->pre, len, off);
	u->fd = fd;
	u->off = off;
	u->len = n > 0 ? (size_t)n : 0;   /* past EOF: nothing to restore */
	journal_append(sim, u);
}

static void undo_free(struct sim_undo *u)
{
	free(u->pre);
	free(u);
}

/* Split u so that none of it covers [off, end): the new bytes there are
 * durable (RWF_DSYNC). */
static void journal_cut_one(struct sim_undo **pp, uint64_t off, uint64_t end)
{
	struct sim_undo *u = *pp, *right;
	uint64_t uend = u->off + u->len;

	if (uend > end) {
		right = calloc(1, sizeof *right);
		if (right == NULL || (right->pre = malloc(uend - end)) == NULL)
			abort();
		right->fd = u->fd;
		right->off = end;
		right->len = uend - end;
		memcpy(right->pre, u->pre + (end - u->off), right->len);
		right->next = u->next;
		u->next = right;
	}
	if (u->off < off) {
		u->len = off - u->off;
		return;
	}
	*pp = u->next;
	undo_free(u);
}

static void journal_cut(struct store_io_sim *sim, int fd, uint64_t off,
			uint64_t len)
{
	struct sim_undo **pp = &sim->journal;

	while (*pp) {
		struct sim_undo *u = *pp;

		if (u->fd == fd && u->off < off + len && off < u->off + u->len) {
			journal_cut_one(pp, off, off + len);
			if (*pp == u)
				pp = &u->next;
		} else
			pp = &u->next;
	}
}

static void journal_drop_fd(struct store_io_sim *sim, int fd)
{
	struct sim_undo **pp = &sim->journal;

	while (*pp) {
		struct sim_undo *u = *pp;

		if (u->fd == fd) {
			*pp = u->next;
			undo_free(u);
		} else
			pp = &u->next;
	}
}

/* --- completions --------------------------------------------------------- */

static void cmpl_fire(struct loop_task *task)
{
	struct sim_cmpl *c = (struct sim_cmpl *)task;
	struct loop_op *op = c->op;
	int res = c->res;

	if (c->prev)
		c->prev->next = c->next;
	else
		c->sim->pending = c->next;
	if (c->next)
		c->next->prev = c->prev;
	free(c);
	if (op)
		op->cb(op, res, 0);
}

/* Reorder mode: fire every completion queued so far, in random order, as
 * io_uring may; ops they submit complete on a later turn. */
static void release_all(struct loop_task *task)
{
	struct store_io_sim *sim = container_of(task, struct store_io_sim,
						release);
	struct sim_cmpl **v;
	size_t n = 0;

	sim->release_armed = false;
	for (struct sim_cmpl *c = sim->pending; c; c = c->next)
		n++;
	v = calloc(n + 1, sizeof *v);
	if (v == NULL)
		abort();
	n = 0;
	for (struct sim_cmpl *c = sim->pending; c; c = c->next)
		v[n++] = c;
	for (size_t i = n; i > 1; i--) {
		size_t j = sim_rand(sim) % i;
		struct sim_cmpl *x = v[i - 1];

		v[i - 1] = v[j];
		v[j] = x;
	}
	for (size_t i = 0; i < n; i++)
		cmpl_fire(&v[i]->task);
	free(v);
}

static void complete_later(struct store_io_sim *sim, struct loop_op *op,
			   int res)
{
	struct sim_cmpl *c = calloc(1, sizeof *c);

	if (c == NULL)
		abort();
	c->sim = sim;
	c->op = op;
	c->res = res;
	c->next = sim->pending;
	if (sim->pending)
		sim->pending->prev = c;
	sim->pending = c;
	c->task.fn = cmpl_fire;
	if (!sim->reorder) {
		loop_defer(sim->io.loop, &c->task);
	} else if (!sim->release_armed) {
		sim->release_armed = true;
		sim->release.fn = release_all;
		loop_defer(sim->io.loop, &sim->release);
	}
}

/* Whether op of kind k runs: 0 yes, 1 swallowed (crashed), -errno failed. */
static int sim_gate(struct store_io_sim *sim, enum sim_op k)
{
	if (sim->crashed)
		return 1;
	if ((k & SIM_MUTATING) && sim->crash_armed &&
	    sim->ops >= sim->crash_at) {
		sim->crashed = true;
		return 1;
	}
	if ((k & sim->fail_mask) && sim->fail_count != 0) {
		if (sim->fail_skip > 0) {
			sim->fail_skip--;
		} else {
			if (sim->fail_count > 0)
				sim->fail_count--;
			return -sim->fail_err;
		}
	}
	if (k & SIM_MUTATING)
		sim->ops++;
	sim->count[k]++;
	return 0;
}

static size_t sim_cap(const struct store_io_sim *sim, size_t len)
{
	return sim->short_max && len > sim->short_max ? sim->short_max : len;
}

/* --- the four ops -------------------------------------------------------- */

static void s_pread(struct store_io *io, struct loop_op *op, int fd,
		    void *buf, size_t len, uint64_t off)
{
	struct store_io_sim *sim = to_sim(io);
	int g = sim_gate(sim, SIM_READ);

	if (g == 1)
		return;
	complete_later(sim, op, g < 0 ? g
			       : (int)sim_pread(fd, buf, sim_cap(sim, len), off));
}

static void s_pwrite(struct store_io *io, struct loop_op *op, int fd,
		     const void *buf, size_t len, uint64_t off, int rwf)
{
	struct store_io_sim *sim = to_sim(io);
	int g = sim_gate(sim, SIM_WRITE);
	ssize_t n;

	if (g == 1)
		return;
	if (g < 0) {
		complete_later(sim, op, g);
		return;
	}
	len = sim_cap(sim, len);
	if (!(rwf & RWF_DSYNC))
		journal_record(sim, fd, off, len);
	n = sim_pwrite(fd, buf, len, off);
	/* RWF_DSYNC makes these bytes durable, whatever came before. */
	if ((rwf & RWF_DSYNC) && n > 0)
		journal_cut(sim, fd, off, (uint64_t)n);
	complete_later(sim, op, (int)n);
}

static void s_fdatasync(struct store_io *io, struct loop_op *op, int fd)
{
	struct store_io_sim *sim = to_sim(io);
	int g = sim_gate(sim, SIM_SYNC);

	if (g == 1)
		return;
	if (g == 0 && fdatasync(fd) < 0)
		g = -errno;
	if (g == 0)
		journal_drop_fd(sim, fd);
	complete_later(sim, op, g);
}

static void s_fallocate(struct store_io *io, struct loop_op *op, int fd,
			int mode, uint64_t off, uint64_t len)
{
	struct store_io_sim *sim = to_sim(io);
	int g = sim_gate(sim, SIM_FALLOC);

	if (g == 1)
		return;
	if (g == 0) {
		journal_record(sim, fd, off, len);
		if (fallocate(fd, mode, (off_t)off, (off_t)len) < 0)
			g = -errno;
	}
	complete_later(sim, op, g);
}

static const struct store_io_ops sim_ops = {
	.pread = s_pread,
	.pwrite = s_pwrite,
	.fdatasync = s_fdatasync,
	.fallocate = s_fallocate,
};

/* --- power cut ----------------------------------------------------------- */

static int undo_range(const struct sim_undo *u, size_t from, size_t to)
{
	ssize_t n = sim_pwrite(u->fd, u->pre + from, to - from, u->off + from);

	return n == (ssize_t)(to - from) ? 0 : (n < 0 ? (int)n : -EIO);
}

/* Restore part of one 4 KiB block of u: its head or its tail. */
static int tear(struct store_io_sim *sim, const struct sim_undo *u)
{
	uint64_t first = u->off / STORE_BLOCK, last;
	uint64_t b, bstart, bend, cut;

	if (u->len == 0)
		return 0;
	last = (u->off + u->len - 1) / STORE_BLOCK;
	b = first + sim_rand(sim) % (last - first + 1);
	bstart = b * STORE_BLOCK < u->off ? u->off : b * STORE_BLOCK;
	bend = (b + 1) * STORE_BLOCK;
	if (bend > u->off + u->len)
		bend = u->off + u->len;
	cut = bstart + sim_rand(sim) % (bend - bstart);
	if (sim_rand(sim) & 1)
		return undo_range(u, bstart - u->off, cut - u->off);
	return undo_range(u, cut - u->off, bend - u->off);
}

static int journal_to_array(struct store_io_sim *sim, struct sim_undo ***out)
{
	int n = 0;

	for (struct sim_undo *u = sim->journal; u; u = u->next)
		n++;
	*out = calloc((size_t)n + 1, sizeof **out);
	if (*out == NULL)
		return -ENOMEM;
	n = 0;
	for (struct sim_undo *u = sim->journal; u; u = u->next)
		(*out)[n++] = u;
	return n;
}

int store_io_sim_power_cut(struct store_io_sim *sim, enum sim_cut how)
{
	struct sim_undo **v;
	int n = journal_to_array(sim, &v), done = 0, ret = 0;
	int victim = n > 0 ? (int)(sim_rand(sim) % (uint64_t)n) : -1;

	if (n < 0)
		return n;
	/* Newest first, so overlapping writes unwind in order. */
	for (int i = n - 1; i >= 0 && ret == 0; i--) {
		if (how == SIM_CUT_TEAR_ONE && i == victim)
			ret = tear(sim, v[i]);
		else if (how == SIM_CUT_DROP_ALL ||
			 (how == SIM_CUT_DROP_RANDOM && (sim_rand(sim) & 1)))
			ret = undo_range(v[i], 0, v[i]->len);
		else
			continue;
		done++;
	}
	free(v);
	while (sim->journal) {
		struct sim_undo *u = sim->journal;

		sim->journal = u->next;
		undo_free(u);
	}
	return ret < 0 ? ret : done;
}

/* --- setup --------------------------------------------------------------- */

struct store_io_sim *store_io_sim_new(struct loop *loop, uint64_t seed)
{
	struct store_io_sim *sim = calloc(1, sizeof *sim);

	if (sim == NULL)
		return NULL;
	sim->io.ops = &sim_ops;
	sim->io.loop = loop;
	sim->rng = seed ? seed : 0x9e3779b97f4a7c15ull;
	return sim;
}

void store_io_sim_free(struct store_io_sim *sim)
{
	if (sim == NULL)
		return;
	while (sim->pending) {
		struct sim_cmpl *c = sim->pending;

		sim->pending = c->next;
		free(c);
	}
	while (sim->journal) {
		struct sim_undo *u = sim->journal;

		sim->journal = u->next;
		undo_free(u);
	}
	free(sim);
}

struct store_io *store_io_sim_io(struct store_io_sim *sim)
{
	return &sim->io;
}

uint64_t store_io_sim_ops(const struct store_io_sim *sim)
{
	return sim->ops;
}

uint64_t store_io_sim_count(const struct store_io_sim *sim, enum sim_op k)
{
	return sim->count[k];
}

void store_io_sim_crash_at(struct store_io_sim *sim, uint64_t n)
{
	sim->crash_armed = true;
	sim->crash_at = n;
}

bool store_io_sim_crashed(const struct store_io_sim *sim)
{
	return sim->crashed;
}

void store_io_sim_fail(struct store_io_sim *sim, unsigned mask, uint64_t skip,
		       int count, int err)
{
	sim->fail_mask = mask;
	sim->fail_skip = skip;
	sim->fail_count = count;
	sim->fail_err = err;
}

void store_io_sim_reorder(struct store_io_sim *sim, bool on)
{
	sim->reorder = on;
}

void store_io_sim_short(struct store_io_sim *sim, size_t max)
{
	sim->short_max = max;
}
