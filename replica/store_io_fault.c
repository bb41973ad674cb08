/* Injected store faults (store_io_fault.h). A delayed call waits on a
 * loop timer, then goes to the inner store_io; a failed one completes
 * with the error on the next turn of the loop, as a real one would. */
#include "store_io_fault.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>

enum call_kind { CALL_PREAD, CALL_PWRITE, CALL_SYNC, CALL_FALLOC };

struct fault_call {
	struct loop_timer timer;   /* delayed: fires the inner call */
	struct loop_task task;     /* failed: completes the op */
	struct fault_call *prev, *next;  /* on f->waiting while delayed */
	struct store_io_fault *f;
	enum call_kind kind;
	struct loop_op *op;
	int fd, rwf, mode, res;
	void *buf;
	size_t len;
	uint64_t off;
};

#define FAULT_OF(io) ((struct store_io_fault *)(io))

bool store_io_fault_active(const struct store_io_fault *f)
{
	return (f->delay_ms || f->err) && loop_now_ms() < f->until_ms;
}

static void call_inner(struct fault_call *c)
{
	struct store_io *in = c->f->inner;

	switch (c->kind) {
	case CALL_PREAD:
		in->ops->pread(in, c->op, c->fd, c->buf, c->len, c->off);
		break;
	case CALL_PWRITE:
		in->ops->pwrite(in, c->op, c->fd, c->buf, c->len, c->off, c->rwf);
		break;
	case CALL_SYNC:
		in->ops->fdatasync(in, c->op, c->fd);
		break;
	case CALL_FALLOC:
		in->ops->fallocate(in, c->op, c->fd, c->mode, c->off, c->len);
		break;
	}
}

static void unlink_waiting(struct fault_call *c)
{
	if (c->prev)
		c->prev->next = c->next;
	else
		c->f->waiting = c->next;
	if (c->next)
		c->next->prev = c->prev;
}

static void delay_fired(struct loop_timer *t)
{
	struct fault_call *c = (struct fault_call *)t;

	unlink_waiting(c);
	call_inner(c);
	free(c);
}

static void fail_now(struct loop_task *t)
{
	struct fault_call *c = (struct fault_call *)((char *)t - offsetof(struct fault_call, task));
	struct loop_op *op = c->op;
	int res = c->res;

	free(c);
	op->cb(op, res, 0);
}

/* Delay c or fail it (a fault is in force); c is freed by whoever ends it. */
static void dispatch(struct fault_call *c)
{
	struct store_io_fault *f = c->f;

	if (f->err && c->kind != CALL_PREAD) {
		f->failed++;
		c->res = -f->err;
		c->task.fn = fail_now;
		loop_defer(f->io.loop, &c->task);
		return;
	}
	if (!f->delay_ms) {
		call_inner(c);
		free(c);
		return;
	}
	f->delayed++;
	c->timer.fn = delay_fired;
	c->next = f->waiting;
	if (c->next)
		c->next->prev = c;
	f->waiting = c;
	loop_timer_arm(f->io.loop, &c->timer, f->delay_ms);
}

/* NULL, and the call goes straight through, when no fault is in force
 * (no allocation on the I/O path then) or there is no memory for it. */
static struct fault_call *call_new(struct store_io *io, enum call_kind kind,
			     struct loop_op *op, int fd)
{
	struct fault_call *c;

	if (!store_io_fault_active(FAULT_OF(io)))
		return NULL;
	c = calloc(1, sizeof *c);

	if (c) {
		c->f = FAULT_OF(io);
		c->kind = kind;
		c->op = op;
		c->fd = fd;
	}
	return c;
}

static void fa_pread(struct store_io *io, struct loop_op *op, int fd,
		     void *buf, size_t len, uint64_t off)
{
	struct fault_call *c = call_new(io, CALL_PREAD, op, fd);

	if (!c) {
		FAULT_OF(io)->inner->ops->pread(FAULT_OF(io)->inner, op, fd, buf,
						len, off);
		return;
	}
	c->buf = buf;
	c->len = len;
	c->off = off;
	dispatch(c);
}

static void fa_pwrite(struct store_io *io, struct loop_op *op, int fd,
		      const void *buf, size_t len, uint64_t off, int rwf)
{
	struct fault_call *c = call_new(io, CALL_PWRITE, op, fd);

	if (!c) {
		FAULT_OF(io)->inner->ops->pwrite(FAULT_OF(io)->inner, op, fd, buf,
						 len, off, rwf);
		return;
	}
	c->buf = (void *)buf;
	c->len = len;
	c->off = off;
	c->rwf = rwf;
	dispatch(c);
}

static void fa_fdatasync(struct store_io *io, struct loop_op *op, int fd)
{
	struct fault_call *c = call_new(io, CALL_SYNC, op, fd);

	if (!c) {
		FAULT_OF(io)->inner->ops->fdatasync(FAULT_OF(io)->inner, op, fd);
		return;
	}
	dispatch(c);
}

static void fa_fallocate(struct store_io *io, struct loop_op *op, int fd,
			 int mode, uint64_t off, uint64_t len)
{
	struct fault_call *c = call_new(io, CALL_FALLOC, op, fd);

	if (!c) {
		FAULT_OF(io)->inner->ops->fallocate(FAULT_OF(io)->inner, op, fd,
						    mode, off, len);
		return;
	}
	c->mode = mode;
	c->off = off;
	c->len = (size_t)len;
	dispatch(c);
}

/* The crc file's small synchronous writes: failed too, never delayed
 * (the caller waits on them in place). */
static ssize_t fa_pwrite_now(struct store_io *io, int fd, const void *buf,
			     size_t len, uint64_t off)
{
	struct store_io_fault *f = FAULT_OF(io);
	struct store_io *in = f->inner;

	if (f->err && store_io_fault_active(f)) {
		f->failed++;
		return -f->err;
	}
	return in->ops->pwrite_now(in, fd, buf, len, off);
}

static const struct store_io_ops fault_ops = {
	.pread = fa_pread,
	.pwrite = fa_pwrite,
	.fdatasync = fa_fdatasync,
	.pwrite_now = fa_pwrite_now,
	.fallocate = fa_fallocate,
};

/* For an inner store_io without pwrite_now: the store then uses pwrite. */
static const struct store_io_ops fault_ops_async = {
	.pread = fa_pread,
	.pwrite = fa_pwrite,
	.fdatasync = fa_fdatasync,
	.fallocate = fa_fallocate,
};

void store_io_fault_init(struct store_io_fault *f, struct store_io *inner)
{
	*f = (struct store_io_fault){
		.io = { inner->ops->pwrite_now ? &fault_ops : &fault_ops_async,
			inner->loop },
		.inner = inner,
	};
}

void store_io_fault_set(struct store_io_fault *f, uint64_t delay_ms, int err,
			uint64_t duration_ms)
{
	for (struct fault_call *c = f->waiting; c; c = c->next)
		loop_timer_fire_now(f->io.loop, &c->timer);
	if (delay_ms > STORE_IO_FAULT_MAX_DELAY_MS)
		delay_ms = STORE_IO_FAULT_MAX_DELAY_MS;
	f->delay_ms = delay_ms;
	f->err = err;
	f->until_ms = duration_ms ? loop_now_ms() + duration_ms : 0;
}
