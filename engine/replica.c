#include "replica.h"

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>

static struct replica *replica_alloc(const char *node)
{
	struct replica *r = calloc(1, sizeof *r);

	if (r)
		snprintf(r->node, sizeof r->node, "%s", node);
	return r;
}

struct replica *replica_local_new(const char *node, struct store *st)
{
	struct replica *r = replica_alloc(node);

	if (!r)
		return NULL;
	r->local = true;
	r->up = true;
	r->in_sync = true;
	r->store = st;
	return r;
}

struct replica *replica_remote_new(const char *node, struct repl_client *c,
				   struct loop *loop)
{
	struct replica *r = replica_alloc(node);

	if (!r) {
		repl_client_free(c);
		return NULL;
	}
	r->client = c;
	r->loop = loop;
	r->up = c && repl_client_is_up(c);
	r->in_sync = true;
	return r;
}

void replica_free(struct replica *r)
{
	if (!r)
		return;
	repl_client_free(r->client);
	free(r);
}

static void local_done(struct store_req *sreq, int res)
{
	struct rep_io *io = sreq->priv;

	io->done(io, res);
}

static void crcs_task(struct loop_task *t)
{
	struct rep_io *io = (struct rep_io *)((char *)t - offsetof(struct rep_io, task));

	io->done(io, store_crcs(io->rep->store, io->off, io->len, io->crcs));
}

static void dirty_task(struct loop_task *t)
{
	struct rep_io *io = (struct rep_io *)((char *)t - offsetof(struct rep_io, task));
	uint64_t *out = io->buf;
	size_t max = io->cap / 8 - 1;
	size_t n = store_dirty_regions(io->rep->store, out + 1, max, &out[0]);

	io->got = (uint32_t)((n + 1) * 8);
	io->done(io, n > max ? -EOVERFLOW : 0);
}

static void submit_local(struct replica *r, struct rep_io *io)
{
	unsigned f = (io->flags & REP_FUA ? STORE_FUA : 0) |
		     (io->flags & REP_NO_HOLE ? STORE_NO_HOLE : 0);
	struct store_req *s = &io->u.sreq;

	s->done = local_done;
	s->priv = io;
	switch (io->op) {
	case REP_READ: store_read(r->store, s, io->off, io->len, io->buf, io->crcs); break;
	case REP_WRITE: store_write(r->store, s, io->off, io->len, io->buf, io->crcs, f); break;
	case REP_TRIM: store_trim(r->store, s, io->off, io->len, f); break;
	case REP_ZERO: store_zero(r->store, s, io->off, io->len, f); break;
	case REP_FLUSH: store_flush(r->store, s); break;
	case REP_CRCS:  /* from memory: complete on the loop's next turn */
		io->task.fn = crcs_task;
		loop_defer(store_loop(r->store), &io->task);
		break;
	case REP_DIRTY:
		io->task.fn = dirty_task;
		loop_defer(store_loop(r->store), &io->task);
		break;
	}
}

static void remote_done(struct repl_client_io *cio, int res)
{
	struct rep_io *io = cio->priv;

	io->got = cio->got;
	io->done(io, res);
}

static const uint16_t remote_ops[] = {
	[REP_READ] = REPL_OP_READ, [REP_WRITE] = REPL_OP_WRITE,
	[REP_TRIM] = REPL_OP_TRIM, [REP_ZERO] = REPL_OP_ZERO,
	[REP_FLUSH] = REPL_OP_FLUSH, [REP_CRCS] = REPL_OP_CRCS,
	[REP_DIRTY] = REPL_OP_DIRTY,
};

static void fail_task(struct loop_task *t)
{
	struct rep_io *io = (struct rep_io *)((char *)t - offsetof(struct rep_io, task));

	io->done(io, -ENOTCONN);
}

static void submit_remote(struct replica *r, struct rep_io *io)
{
	struct repl_client_io *c = &io->u.cio;

	if (!r->client) {
		io->task.fn = fail_task;
		loop_defer(r->loop, &io->task);
		return;
	}

	c->done = remote_done;
	c->priv = io;
	c->op = remote_ops[io->op];
	c->flags = (io->flags & REP_FUA ? REPL_FLAG_FUA : 0) |
		   (io->flags & REP_NO_HOLE ? REPL_FLAG_NO_HOLE : 0);
	c->offset = io->off;
	c->length = (uint32_t)io->len;
	c->buf = io->buf;
	c->crcs = io->crcs;
	c->cap = io->cap;
	repl_client_submit(r->client, c);
}

static void direct_read_done(struct store_req *sreq, int res)
{
	struct rep_io *io = sreq->priv;

	/* Fenced while reading: a newer engine may have written since. */
	if (res == 0 && store_get_epoch(io->rep->read_store) != io->rep->epoch)
		res = -ESTALE;
	io->done(io, res);
}

/* A read of the engine's own replica without the socketpair round trip:
 * the same epoch rule the replica service applies, checked before and
 * after. */
static bool submit_direct_read(struct replica *r, struct rep_io *io)
{
	struct store_req *s = &io->u.sreq;

	if (io->op != REP_READ || !r->read_store ||
	    store_get_epoch(r->read_store) != r->epoch)
		return false;
	s->done = direct_read_done;
	s->priv = io;
	io->verified = true;
	store_read(r->read_store, s, io->off, io->len, io->buf, io->crcs);
	return true;
}

void replica_submit(struct replica *r, struct rep_io *io)
{
	io->rep = r;
	io->verified = r->local;
	if (r->local)
		submit_local(r, io);
	else if (!submit_direct_read(r, io))
		submit_remote(r, io);
}
