#include "scrub.h"

#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "volume_int.h"

#define BLK STORE_BLOCK
#define CHUNK (1u << 20)
#define CHUNK_BLOCKS (CHUNK / BLK)

struct scrub {
	struct vol *v;
	uint64_t rate_bps;
	scrub_done_fn *done;
	void *arg;
	struct scrub_report rep;
	uint64_t pos, end;
	unsigned pending;
	unsigned nrep;                        /* replicas read this chunk */
	unsigned idx[VOL_MAX_REPLICAS];       /* their indexes in the volume */
	int res[VOL_MAX_REPLICAS];
	uint8_t *buf[VOL_MAX_REPLICAS];
	uint32_t crcs[VOL_MAX_REPLICAS][CHUNK_BLOCKS];
	bool bad[VOL_MAX_REPLICAS][CHUNK_BLOCKS];  /* copy failed its checksum */
	bool reread[VOL_MAX_REPLICAS];  /* the chunk's read failed a checksum */
	struct rep_io io[VOL_MAX_REPLICAS];
	struct rep_io *block_io;  /* one-block re-reads of a failed chunk */
	struct rl_entry lock;
	struct loop_task task;
	struct loop_timer pace;
	unsigned repairs_pending;
};

#define SCRUB_OF(ptr, field) \
	((struct scrub *)((char *)(ptr) - offsetof(struct scrub, field)))

static void next_chunk(struct scrub *sc);

static void sc_end(struct scrub *sc, int res)
{
	if (sc->lock.granted) {
		sc->lock.granted = false;
		rl_release(&sc->v->lock, &sc->lock);
	}
	log_info("volume %s: scrub %s: %llu bytes, %llu bad, %llu mismatched, "
		 "%llu repaired, %llu unrepaired", sc->v->name,
		 res == 0 ? "done" : "stopped",
		 (unsigned long long)sc->rep.bytes_scrubbed,
		 (unsigned long long)sc->rep.bad_blocks,
		 (unsigned long long)sc->rep.mismatched_blocks,
		 (unsigned long long)sc->rep.repaired_blocks,
		 (unsigned long long)sc->rep.unrepaired_blocks);
	sc->done(res, &sc->rep, sc->arg);
	for (unsigned i = 0; i < VOL_MAX_REPLICAS; i++)
		free(sc->buf[i]);
	free(sc->block_io);
	free(sc);
}

static void chunk_done(struct scrub *sc)
{
	uint64_t len = sc->end - sc->pos;

	sc->lock.granted = false;
	rl_release(&sc->v->lock, &sc->lock);
	sc->rep.bytes_scrubbed += len;
	sc->pos = sc->end;
	if (sc->rate_bps)
		loop_timer_arm(sc->v->loop, &sc->pace, len * sc->nrep * 1000 / sc->rate_bps + 1);
	else
		loop_defer(sc->v->loop, &sc->task);
}

static void repaired(struct rep_io *io, int res)
{
	struct scrub *sc = io->priv;

	if (res == 0)
		sc->rep.repaired_blocks++;
	else
		sc->rep.unrepaired_blocks++;
	free(io);
	if (--sc->repairs_pending == 0)
		chunk_done(sc);
}

/* The copy most replicas agree on among those that read well; -1 if none. */
static int good_copy(const struct scrub *sc, unsigned b)
{
	int best = -1;
	unsigned best_votes = 0;

	for (unsigned i = 0; i < sc->nrep; i++) {
		unsigned votes = 0;

		if (sc->res[i] < 0 || sc->bad[i][b])
			continue;
		for (unsigned j = 0; j < sc->nrep; j++)
			votes += sc->res[j] == 0 && !sc->bad[j][b] &&
				 sc->crcs[j][b] == sc->crcs[i][b];
		if (votes > best_votes) {
			best = (int)i;
			best_votes = votes;
		}
	}
	return best;
}

static void repair_block(struct scrub *sc, unsigned target, unsigned good, unsigned b)
{
	struct rep_io *io = calloc(1, sizeof *io);

	if (!io) {
		sc->rep.unrepaired_blocks++;
		return;
	}
	*io = (struct rep_io){ .done = repaired, .priv = sc, .op = REP_WRITE,
			       .off = sc->pos + (uint64_t)b * BLK, .len = BLK,
			       .buf = sc->buf[good] + (size_t)b * BLK,
			       .crcs = &sc->crcs[good][b] };
	sc->repairs_pending++;
	replica_submit(sc->v->reps[sc->idx[target]], io);
}

/* Block b of replica i was wrong: extend the last run or start one. */
static void note_finding(struct scrub *sc, unsigned i, unsigned b, bool bad,
			 int good)
{
	struct scrub_report *r = &sc->rep;
	uint64_t blk = sc->pos / BLK + b;
	int source = good < 0 ? -1 : (int)sc->idx[good];

	for (unsigned k = r->nfindings; k-- > 0;) {
		struct scrub_finding *f = &r->findings[k];

		if (f->replica != sc->idx[i])
			continue;
		if (f->block + f->blocks == blk && f->bad == bad && f->source == source) {
			f->blocks++;
			return;
		}
		break;  /* that replica's last run ends elsewhere */
	}
	if (r->nfindings == SCRUB_MAX_FINDINGS) {
		r->findings_dropped++;
		return;
	}
	r->findings[r->nfindings++] = (struct scrub_finding){
		.replica = sc->idx[i], .block = blk, .blocks = 1, .bad = bad,
		.source = source };
}

static void compare(struct scrub *sc)
{
	unsigned n = (unsigned)((sc->end - sc->pos) / BLK);

	sc->repairs_pending = 1;  /* held while repairs are issued */
	for (unsigned b = 0; b < n; b++) {
		int good = good_copy(sc, b);

		sc->rep.blocks_checked += sc->nrep;
		for (unsigned i = 0; i < sc->nrep; i++) {
			bool bad = sc->res[i] < 0 || sc->bad[i][b];

			if (!bad && good >= 0 && sc->crcs[i][b] == sc->crcs[good][b])
				continue;
			if (bad)
				sc->rep.bad_blocks++;
			else
				sc->rep.mismatched_blocks++;
			note_finding(sc, i, b, bad, good);
			if (good < 0)
				sc->rep.unrepaired_blocks++;
			else
				repair_block(sc, i, (unsigned)good, b);
		}
	}
	if (--sc->repairs_pending == 0)
		chunk_done(sc);
}

/* Data from another node is checked here too (invariant 6): which of
 * io's blocks fail their checksum, into bad. */
static void check_blocks(const struct rep_io *io, bool *bad)
{
	for (uint64_t b = 0; b < io->len / BLK; b++)
		bad[b] = !io->verified &&
			 crc32c((uint8_t *)io->buf + b * BLK, BLK) != io->crcs[b];
}

static void block_read_done(struct rep_io *io, int res)
{
	struct scrub *sc = io->priv;
	size_t k = (size_t)(io - sc->block_io);
	unsigned i = (unsigned)(k / CHUNK_BLOCKS), b = (unsigned)(k % CHUNK_BLOCKS);

	if (res == 0)
		check_blocks(io, &sc->bad[i][b]);
	else
		sc->bad[i][b] = true;  /* unreadable: repaired like a bad one */
	if (--sc->pending == 0)
		compare(sc);
}

/* Replicas that failed the chunk's read with a checksum error are read
 * again block by block, so that the report names the blocks, not the
 * chunk. Without memory for that, their whole chunk counts as bad. */
static void reread_blockwise(struct scrub *sc)
{
	unsigned n = (unsigned)((sc->end - sc->pos) / BLK);

	if (!sc->block_io)
		sc->block_io = calloc((size_t)VOL_MAX_REPLICAS * CHUNK_BLOCKS,
				      sizeof *sc->block_io);
	if (!sc->block_io) {
		compare(sc);
		return;
	}
	sc->pending = 1;  /* held while the reads are issued */
	for (unsigned i = 0; i < sc->nrep; i++) {
		if (!sc->reread[i])
			continue;
		sc->res[i] = 0;
		for (unsigned b = 0; b < n; b++) {
			struct rep_io *io = &sc->block_io[(size_t)i * CHUNK_BLOCKS + b];

			*io = (struct rep_io){ .done = block_read_done, .priv = sc,
					       .op = REP_READ,
					       .off = sc->pos + (uint64_t)b * BLK,
					       .len = BLK,
					       .buf = sc->buf[i] + (size_t)b * BLK,
					       .crcs = &sc->crcs[i][b] };
			sc->pending++;
			replica_submit(sc->v->reps[sc->idx[i]], io);
		}
	}
	if (--sc->pending == 0)
		compare(sc);
}

static void read_done(struct rep_io *io, int res)
{
	struct scrub *sc = io->priv;
	unsigned i = (unsigned)(io - sc->io);
	unsigned n = (unsigned)(io->len / BLK);

	if (res == 0)
		check_blocks(io, sc->bad[i]);
	else
		memset(sc->bad[i], 0, n * sizeof sc->bad[i][0]);
	sc->reread[i] = res == -STORE_ECSUM;
	sc->res[i] = res;
	if (--sc->pending > 0)
		return;
	for (unsigned j = 0; j < sc->nrep; j++)
		if (sc->reread[j]) {
			reread_blockwise(sc);
			return;
		}
	compare(sc);
}

static void chunk_locked(struct rl_entry *e)
{
	struct scrub *sc = SCRUB_OF(e, lock);
	struct vol *v = sc->v;

	sc->nrep = 0;
	for (unsigned r = 0; r < v->nreps; r++)
		if (v->reps[r]->in_sync && v->reps[r]->up)
			sc->idx[sc->nrep++] = r;
	if (sc->nrep == 0) {
		sc_end(sc, -ENOTCONN);
		return;
	}
	sc->pending = sc->nrep;
	for (unsigned i = 0; i < sc->nrep; i++) {
		sc->io[i] = (struct rep_io){ .done = read_done, .priv = sc, .op = REP_READ,
					     .off = sc->pos, .len = sc->end - sc->pos,
					     .buf = sc->buf[i], .crcs = sc->crcs[i] };
		replica_submit(v->reps[sc->idx[i]], &sc->io[i]);
	}
}

static void next_chunk(struct scrub *sc)
{
	if (sc->pos >= sc->v->size) {
		sc_end(sc, 0);
		return;
	}
	sc->end = sc->pos + CHUNK < sc->v->size ? sc->pos + CHUNK : sc->v->size;
	sc->lock.grant = chunk_locked;
	if (rl_acquire(&sc->v->lock, &sc->lock, sc->pos / BLK, sc->end / BLK, true))
		chunk_locked(&sc->lock);
}

static void task_fn(struct loop_task *t) { next_chunk(SCRUB_OF(t, task)); }
static void pace_fn(struct loop_timer *t) { next_chunk(SCRUB_OF(t, pace)); }

uint64_t scrub_bytes_done(const struct scrub *sc)
{
	return sc->rep.bytes_scrubbed;
}

int scrub_start(struct vol *v, uint64_t rate_bps, scrub_done_fn *done,
		void *arg, struct scrub **out)
{
	struct scrub *sc = calloc(1, sizeof *sc);

	if (!sc)
		return -ENOMEM;
	for (unsigned i = 0; i < v->nreps; i++) {
		if (posix_memalign((void **)&sc->buf[i], BLK, CHUNK) != 0) {
			for (unsigned j = 0; j < i; j++)
				free(sc->buf[j]);
			free(sc);
			return -ENOMEM;
		}
	}
	sc->v = v;
	sc->rate_bps = rate_bps;
	sc->done = done;
	sc->arg = arg;
	sc->task.fn = task_fn;
	sc->pace.fn = pace_fn;
	log_info("volume %s: scrub starting", v->name);
	loop_defer(v->loop, &sc->task);
	*out = sc;
	return 0;
}
