/*
 * Online resize, grow only: every replica first, then the engine's size.
 *
 * The rule: vol_size rises to S only once every replica the engine can
 * send a request to holds at least S, so no request past a replica's end
 * is ever sent. Requests only go to replicas whose connection is up.
 *   - Every connection is told S first (repl_client_set_size): an OPEN
 *     sent from then on carries S and grows its replica before it is
 *     answered, and an OPEN answered with an older size is redone.
 *   - Every connection that is up gets a RESIZE(S); it must succeed, or
 *     the connection must be down by the time it fails (it reopens at S).
 * A replica whose node is unknown gets a connection later, from the agent,
 * at the agent's size, which the agent raised before calling vol_resize.
 * A RESIZE that a replica refuses while staying connected (no space, over
 * its limit, fenced) fails the resize: the size stays, and the replicas
 * that grew keep their larger size (a replica never shrinks), harmlessly.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "repl_client.h"
#include "volume_int.h"

struct resize_slot {
	struct resize_job *job;
	struct replica *rep;         /* kept until vol_free, even if retired */
	struct repl_client *client;
	struct repl_client_io io;
	uint8_t payload[REPL_RESIZE_SIZE];
};

struct resize_job {
	struct vol *v;
	uint64_t size;
	unsigned pending;
	unsigned grown, later;       /* replicas: now, at their next OPEN */
	int err;                     /* the first refusal */
	vol_resize_fn *done;
	void *arg;
	struct resize_slot slot[VOL_MAX_REPLICAS];
};

static void job_finish(struct resize_job *job)
{
	struct vol *v = job->v;
	uint64_t old = v->size;

	v->resize = NULL;
	if (job->err == 0) {
		v->size = job->size;
		log_info("volume %s: grown from %llu to %llu bytes (%u replicas "
			 "grew, %u grow when they connect)", v->name,
			 (unsigned long long)old, (unsigned long long)job->size,
			 job->grown, job->later);
	}
	if (job->done)
		job->done(v, job->err, job->arg);
	free(job);
}

static void slot_done(struct repl_client_io *io, int res)
{
	struct resize_slot *sl = io->priv;
	struct resize_job *job = sl->job;

	if (res == 0) {
		job->grown++;
	} else if (!repl_client_is_up(sl->client)) {
		job->later++;   /* lost the connection: it reopens at the size */
	} else if (job->err == 0) {
		job->err = res;
		log_warn("volume %s: replica %s cannot grow to %llu bytes: %s",
			 job->v->name, sl->rep->node,
			 (unsigned long long)job->size, strerror(-res));
	}
	if (--job->pending == 0)
		job_finish(job);
}

static void ask(struct resize_job *job, unsigned i, struct replica *r)
{
	struct resize_slot *sl = &job->slot[i];
	struct repl_client *c = r->client;

	sl->job = job;
	sl->rep = r;
	sl->client = c;
	repl_resize_encode(job->size, sl->payload);
	sl->io = (struct repl_client_io){ .done = slot_done, .priv = sl,
					  .op = REPL_OP_RESIZE,
					  .buf = sl->payload };
	job->pending++;
	repl_client_submit(c, &sl->io);
}

static int resize_check(const struct vol *v, uint64_t size)
{
	if (v->fenced)
		return -ESTALE;
	if (v->resize)
		return -EBUSY;
	if (size == v->size)
		return -EALREADY;
	if (size < v->size || size % 4096 || size > REPL_MAX_VOLUME_SIZE)
		return -EINVAL;
	for (unsigned i = 0; i < v->nreps; i++)
		if (v->reps[i]->local)
			return -EOPNOTSUPP;  /* vol_new: no replication */
	return 0;
}

int vol_resize(struct vol *v, uint64_t size, vol_resize_fn *done, void *arg)
{
	struct resize_job *job;
	int ret = resize_check(v, size);

	if (ret < 0)
		return ret;
	if (!(job = calloc(1, sizeof *job)))
		return -ENOMEM;
	*job = (struct resize_job){ .v = v, .size = size, .done = done,
				    .arg = arg };
	v->resize = job;
	/* Every connection first: none may come up at the old size after
	 * the RESIZEs below were sent. */
	for (unsigned i = 0; i < v->nreps; i++)
		if (v->reps[i]->client)
			repl_client_set_size(v->reps[i]->client, size);
	for (unsigned i = 0; i < v->nreps; i++) {
		struct repl_client *c = v->reps[i]->client;

		if (c && repl_client_is_up(c))
			ask(job, i, v->reps[i]);
		else
			job->later++;
	}
	if (job->pending == 0)
		job_finish(job);  /* nothing up to ask */
	return 0;
}

void vol_resize_forget(struct vol *v)
{
	if (v->resize)
		v->resize->done = NULL;
}
