/* The activity log: see al.h and docs/on-disk-format.md. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "al.h"
#include "fileio.h"
#include "log.h"
#include "store_priv.h"

#define AL_PAGE 4096u
#define AL_AHEAD 8u    /* regions marked at once for a sequential stream */

size_t al_file_len(uint64_t size, unsigned region_shift)
{
	uint64_t nregions = (size + (1ull << region_shift) - 1) >> region_shift;
	uint64_t bytes = (nregions + 7) / 8;

	return (size_t)((bytes + AL_PAGE - 1) / AL_PAGE * AL_PAGE);
}

static int al_read(struct al *al)
{
	return pread_full(al->fd, al->image, al->len, 0);
}

/* Bits past the last region are meaningless: drop them. */
static void al_mask_tail(struct al *al)
{
	uint32_t n = al->nregions;

	if (n % 8)
		al->image[n / 8] &= (uint8_t)((1u << (n % 8)) - 1);
	memset(al->image + (n + 7) / 8, 0, al->len - (n + 7) / 8);
}

static uint32_t regions_of(uint64_t size, unsigned region_shift)
{
	return (uint32_t)((size + (1ull << region_shift) - 1) >> region_shift);
}

int al_init(struct al *al, struct store_io *io, int fd, uint64_t size,
	    unsigned region_shift)
{
	memset(al, 0, sizeof *al);
	al->io = io;
	al->fd = fd;
	al->region_shift = region_shift;
	al->nregions = regions_of(size, region_shift);
	al->len = al_file_len(size, region_shift);
	al->next_round = 1;
	al->waiters_tail = &al->waiters;
	if (posix_memalign((void **)&al->image, AL_PAGE, al->len) != 0 ||
	    posix_memalign((void **)&al->wbuf, AL_PAGE, al->len) != 0)
		return -ENOMEM;
	al->reg = calloc(al->nregions, sizeof *al->reg);
	if (al->reg == NULL)
		return -ENOMEM;
	int ret = al_read(al);

	if (ret == 0)
		al_mask_tail(al);
	return ret;
}

int al_grow(struct al *al, uint64_t size)
{
	uint32_t n = regions_of(size, al->region_shift);
	size_t len = al_file_len(size, al->region_shift);
	uint8_t *image = NULL, *wbuf = NULL;
	struct al_region *reg;

	if (n <= al->nregions)
		return 0;
	reg = calloc(n, sizeof *reg);
	if (!reg || posix_memalign((void **)&image, AL_PAGE, len) != 0 ||
	    posix_memalign((void **)&wbuf, AL_PAGE, len) != 0) {
		free(reg);
		free(image);
		return -ENOMEM;
	}
	/* The bits past the old last region are already clear in memory. */
	memcpy(image, al->image, al->len);
	memset(image + al->len, 0, len - al->len);
	memcpy(reg, al->reg, al->nregions * sizeof *reg);
	free(al->image);
	free(al->wbuf);
	free(al->reg);
	al->image = image;
	al->wbuf = wbuf;
	al->reg = reg;
	al->len = len;
	al->nregions = n;
	return 0;
}

bool al_in_use(const struct al *al)
{
	for (uint32_t i = 0; i < al->nregions; i++)
		if (al->reg[i].inflight)
			return true;
	return al->waiters != NULL;
}

void al_fini(struct al *al)
{
	free(al->image);
	free(al->wbuf);
	free(al->reg);
	al->image = al->wbuf = NULL;
	al->reg = NULL;
}

bool al_test(const struct al *al, uint32_t region)
{
	return al->image[region / 8] & (1u << (region % 8));
}

static void al_set_bit(struct al *al, uint32_t region, bool on)
{
	size_t page = region / 8 / AL_PAGE;

	if (on)
		al->image[region / 8] |= (uint8_t)(1u << (region % 8));
	else
		al->image[region / 8] &= (uint8_t)~(1u << (region % 8));
	if (!al->any_dirty_page || page < al->dirty_lo)
		al->dirty_lo = page;
	if (!al->any_dirty_page || page > al->dirty_hi)
		al->dirty_hi = page;
	al->any_dirty_page = true;
}

static void al_round_start(struct loop_task *task);

/* Start a round on the next loop turn so that every region that becomes
 * dirty in this turn shares one write and one fdatasync. */
static void al_kick(struct al *al)
{
	if (al->phase != AL_IDLE || !al->any_dirty_page)
		return;
	al->phase = AL_SCHEDULED;
	al->task.fn = al_round_start;
	loop_defer(al->io->loop, &al->task);
}

static void al_mark(struct al *al, uint32_t i)
{
	struct al_region *g = &al->reg[i];

	g->state = AL_MARKING;
	g->round = al->next_round;
	al_set_bit(al, i, true);
	al->sync_next = true;
}

/* A write that needs region `last` while the region before it is in use
 * is probably sequential (a resync, a copy): mark the next regions in the
 * same round, so such a stream waits for one AL sync per AL_AHEAD regions
 * instead of one per region. The price is a few more regions to check
 * after a crash, and a lazy clearing write after the next flush. */
static void al_mark_ahead(struct al *al, uint32_t first, uint32_t last)
{
	uint32_t end = last + AL_AHEAD < al->nregions ? last + AL_AHEAD
						      : al->nregions;

	if (first == 0 || al->reg[first - 1].state == AL_CLEAN)
		return;
	for (uint32_t i = last + 1; i < end; i++)
		if (al->reg[i].state == AL_CLEAN)
			al_mark(al, i);
}

int al_begin(struct al *al, struct store_req *r, uint32_t first,
	     uint32_t last)
{
	uint64_t need = 0;

	if (al->reg[last].state == AL_CLEAN)
		al_mark_ahead(al, first, last);
	for (uint32_t i = first; i <= last; i++) {
		struct al_region *g = &al->reg[i];

		g->inflight++;
		if (g->state == AL_CLEAN)
			al_mark(al, i);
		if (g->state == AL_MARKING && g->round > need)
			need = g->round;
	}
	if (need == 0)
		return 0;
	r->al_round = need;
	r->next = NULL;
	*al->waiters_tail = r;
	al->waiters_tail = &r->next;
	al_kick(al);
	return 1;
}

void al_end(struct al *al, uint32_t first, uint32_t last, uint64_t seq)
{
	for (uint32_t i = first; i <= last; i++) {
		al->reg[i].inflight--;
		al->reg[i].touch = seq;
	}
}

void al_flushed(struct al *al, uint64_t flush_seq)
{
	for (uint32_t i = 0; i < al->nregions; i++) {
		struct al_region *g = &al->reg[i];

		if (g->state != AL_DIRTY || g->inflight || g->touch >= flush_seq)
			continue;
		g->state = AL_CLEAN;
		al_set_bit(al, i, false);
	}
	al_kick(al);
}

/* Regions whose bits live in pages [lo, hi]. */
static void al_page_regions(const struct al *al, size_t lo, size_t hi,
			    uint32_t *first, uint32_t *end)
{
	uint64_t e = (uint64_t)(hi + 1) * AL_PAGE * 8;

	*first = (uint32_t)(lo * AL_PAGE * 8);
	*end = e > al->nregions ? al->nregions : (uint32_t)e;
}

/* Release the waiters whose round is settled, in arrival order. After a
 * failure release them all: a waiter for a later round may also need a
 * region of the failed one. */
static void al_release(struct al *al, uint64_t round, int res)
{
	struct store_req **pp = &al->waiters, *ready = NULL, **rt = &ready;

	while (*pp) {
		struct store_req *r = *pp;

		if (res == 0 && r->al_round > round) {
			pp = &r->next;
			continue;
		}
		*pp = r->next;
		r->next = NULL;
		*rt = r;
		rt = &r->next;
	}
	al->waiters_tail = pp;
	while (ready) {
		struct store_req *r = ready;

		ready = r->next;
		al->ready(r, res);
	}
}

static void al_mark_pages(struct al *al, size_t lo, size_t hi)
{
	if (!al->any_dirty_page || lo < al->dirty_lo)
		al->dirty_lo = lo;
	if (!al->any_dirty_page || hi > al->dirty_hi)
		al->dirty_hi = hi;
	al->any_dirty_page = true;
}

static void al_round_end(struct al *al, int res)
{
	uint32_t first, end;

	al_page_regions(al, al->cur_lo, al->cur_hi, &first, &end);
	for (uint32_t i = first; i < end; i++) {
		struct al_region *g = &al->reg[i];

		if (g->state != AL_MARKING || g->round != al->cur_round)
			continue;
		/* On failure the bit stays set in memory (harmless) and the
		 * next request to the region starts a new round. */
		g->state = res == 0 ? AL_DIRTY : AL_CLEAN;
	}
	if (res < 0) {
		log_error("store: activity log write: %s", strerror(-res));
		al_mark_pages(al, al->cur_lo, al->cur_hi);
	}
	al->phase = AL_IDLE;
	al_release(al, al->cur_round, res);
	if (res == 0)
		al_kick(al);
}

static void al_sync_done(struct loop_op *op, int res, uint32_t flags)
{
	struct al *al = container_of(op, struct al, op);

	(void)flags;
	al_round_end(al, res < 0 ? res : 0);
}

static void al_write_submit(struct al *al)
{
	size_t off = al->cur_lo * AL_PAGE + al->progress;
	size_t len = (al->cur_hi - al->cur_lo + 1) * AL_PAGE - al->progress;

	al->io->ops->pwrite(al->io, &al->op, al->fd, al->wbuf + off, len, off,
			    0);
}

static void al_write_done(struct loop_op *op, int res, uint32_t flags)
{
	struct al *al = container_of(op, struct al, op);

	(void)flags;
	if (res <= 0) {
		al_round_end(al, res < 0 ? res : -EIO);
		return;
	}
	al->progress += (uint64_t)res;
	if (al->progress < (al->cur_hi - al->cur_lo + 1) * AL_PAGE) {
		al_write_submit(al);
		return;
	}
	if (!al->cur_sync) {
		al_round_end(al, 0);
		return;
	}
	(*al->syncs)++;
	al->phase = AL_SYNCING;
	al->op.cb = al_sync_done;
	al->io->ops->fdatasync(al->io, &al->op, al->fd);
}

static void al_round_start(struct loop_task *task)
{
	struct al *al = container_of(task, struct al, task);
	size_t lo = al->dirty_lo, hi = al->dirty_hi;

	if (!al->any_dirty_page) {
		al->phase = AL_IDLE;
		return;
	}
	/* Write a copy: bits set while the write is in flight wait for the
	 * next round instead of racing the kernel's read of the page. */
	memcpy(al->wbuf + lo * AL_PAGE, al->image + lo * AL_PAGE,
	       (hi - lo + 1) * AL_PAGE);
	al->any_dirty_page = false;
	al->cur_lo = lo;
	al->cur_hi = hi;
	al->cur_round = al->next_round++;
	al->cur_sync = al->sync_next;
	al->sync_next = false;
	al->progress = 0;
	al->phase = AL_WRITING;
	al->op.cb = al_write_done;
	al_write_submit(al);
}

int al_clear_sync(struct al *al)
{
	memset(al->image, 0, al->len);
	if (pwrite(al->fd, al->image, al->len, 0) != (ssize_t)al->len)
		return -EIO;
	if (fdatasync(al->fd) < 0)
		return -errno;
	for (uint32_t i = 0; i < al->nregions; i++)
		al->reg[i].state = AL_CLEAN;
	al->any_dirty_page = false;
	return 0;
}

bool al_region_active(const struct al *al, uint32_t region)
{
	const struct al_region *g = &al->reg[region];

	return g->state != AL_CLEAN || g->inflight > 0;
}

bool al_busy(const struct al *al)
{
	return al->phase != AL_IDLE;
}
