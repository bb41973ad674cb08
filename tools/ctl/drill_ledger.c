/* The drill's acknowledged-write ledger (drill.h). One thread writes at
 * queue depth 1 through the volume's engine, reconnecting to wherever the
 * metadata store says it is served after an error. */
#include <errno.h>
#include <inttypes.h>
#include <libnbd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl.h"
#include "drill.h"

#define MAGIC 0x7472706c64726c6cull  /* "trpldrll" */

/* Block b's content at sequence number s: a header, then a fill that
 * depends on both (a stale or misplaced block cannot pass for it). */
static void fill_block(uint8_t *buf, uint64_t b, uint64_t s)
{
	uint64_t x = (b * 0x9e3779b97f4a7c15ull) ^ (s * 0xbf58476d1ce4e5b9ull) ^ MAGIC;
	uint64_t *w = (uint64_t *)buf;

	w[0] = MAGIC;
	w[1] = b;
	w[2] = s;
	for (size_t i = 3; i < DRILL_BLOCK / 8; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		w[i] = x;
	}
}

static double now_s(void) { return ctl_mono_s(); }

/* The node serving vol now, as the store says. */
static const struct dev_node *engine_node(struct ledger *l, struct meta *m)
{
	struct cluster_volume v;

	if (cluster_volume_get(m, l->vol, &v) < 0 || !v.attached[0])
		return NULL;
	for (int i = 0; i < l->nnodes; i++)
		if (!strcmp(l->nodes[i].id, v.attached))
			return &l->nodes[i];
	return NULL;
}

static struct nbd_handle *connect_engine(struct ledger *l, struct meta *m)
{
	const struct dev_node *n = engine_node(l, m);
	struct nbd_handle *h;

	if (!n || !(h = nbd_create()))
		return NULL;
	if (nbd_set_export_name(h, l->vol) < 0 || nbd_connect_unix(h, n->sock) < 0) {
		nbd_close(h);
		return NULL;
	}
	return h;
}

static bool wait_unpaused(struct ledger *l)
{
	bool stop;

	pthread_mutex_lock(&l->mu);
	l->idle = l->pause;
	stop = l->stop;
	pthread_mutex_unlock(&l->mu);
	return !stop;
}

static bool paused(struct ledger *l)
{
	bool p;

	pthread_mutex_lock(&l->mu);
	p = l->pause;
	pthread_mutex_unlock(&l->mu);
	return p;
}

static void note_result(struct ledger *l, uint64_t b, uint64_t s, bool ok)
{
	double t = now_s();

	pthread_mutex_lock(&l->mu);
	if (ok) {
		l->acked[b] = s;
		l->failed[b] = 0;
		l->n_acked++;
		if (t - l->last_ack_s > l->max_gap_s)
			l->max_gap_s = t - l->last_ack_s;
		l->last_ack_s = t;
	} else {
		if (s > l->failed[b])
			l->failed[b] = s;
		l->n_failed++;
	}
	pthread_mutex_unlock(&l->mu);
}

static void *writer(void *arg)
{
	struct ledger *l = arg;
	struct nbd_handle *h = NULL;
	uint8_t *buf = aligned_alloc(DRILL_BLOCK, DRILL_BLOCK);
	uint64_t rnd = 0x853c49e6748fea9bull;
	struct meta *m = NULL;

	if (!buf || ctl_meta_open(l->meta_url, &m)) {
		free(buf);
		return NULL;
	}
	while (wait_unpaused(l)) {
		uint64_t b, s;

		if (paused(l) || (!h && !(h = connect_engine(l, m)))) {
			ctl_sleep_100ms();
			continue;
		}
		rnd ^= rnd << 13;
		rnd ^= rnd >> 7;
		rnd ^= rnd << 17;
		b = rnd % l->nblocks;
		pthread_mutex_lock(&l->mu);
		s = ++l->seq;
		pthread_mutex_unlock(&l->mu);
		fill_block(buf, b, s);
		if (nbd_pwrite(h, buf, DRILL_BLOCK, b * DRILL_BLOCK, 0) == 0) {
			note_result(l, b, s, true);
			continue;
		}
		note_result(l, b, s, false);
		nbd_close(h);  /* the engine may have moved: ask the store */
		h = NULL;
	}
	if (h) {
		nbd_flush(h, 0);
		nbd_close(h);
	}
	meta_close(m);
	free(buf);
	return NULL;
}

int ledger_start(struct ledger *l, const char *meta_url, const char *vol,
		 uint64_t size, const struct dev_node *nodes, int nnodes)
{
	memset(l, 0, sizeof *l);
	l->meta_url = meta_url;
	l->vol = vol;
	l->nodes = nodes;
	l->nnodes = nnodes;
	l->nblocks = size / DRILL_BLOCK;
	l->acked = calloc(l->nblocks, sizeof *l->acked);
	l->failed = calloc(l->nblocks, sizeof *l->failed);
	l->last_ack_s = now_s();
	if (!l->acked || !l->failed || pthread_mutex_init(&l->mu, NULL) ||
	    pthread_create(&l->thread, NULL, writer, l)) {
		free(l->acked);
		free(l->failed);
		return -1;
	}
	return 0;
}

bool ledger_pause(struct ledger *l, double secs)
{
	double end = now_s() + secs;
	bool idle = false;

	pthread_mutex_lock(&l->mu);
	l->pause = true;
	l->idle = false;
	pthread_mutex_unlock(&l->mu);
	while (!idle && now_s() < end) {
		ctl_sleep_100ms();
		pthread_mutex_lock(&l->mu);
		idle = l->idle;
		pthread_mutex_unlock(&l->mu);
	}
	return idle;
}

void ledger_resume(struct ledger *l)
{
	pthread_mutex_lock(&l->mu);
	l->pause = false;
	l->idle = false;
	l->last_ack_s = now_s();  /* a pause is not a stall */
	pthread_mutex_unlock(&l->mu);
}

void ledger_stop(struct ledger *l)
{
	pthread_mutex_lock(&l->mu);
	l->stop = true;
	pthread_mutex_unlock(&l->mu);
	pthread_join(l->thread, NULL);
	pthread_mutex_destroy(&l->mu);
	free(l->acked);
	free(l->failed);
	l->acked = l->failed = NULL;
}

void ledger_sample(struct ledger *l, uint64_t *acked, uint64_t *failed,
		   double *max_gap_s)
{
	double t = now_s();

	pthread_mutex_lock(&l->mu);
	*acked = l->n_acked;
	*failed = l->n_failed;
	*max_gap_s = l->max_gap_s;
	if (!l->pause && t - l->last_ack_s > *max_gap_s)
		*max_gap_s = t - l->last_ack_s;
	l->max_gap_s = 0;
	pthread_mutex_unlock(&l->mu);
}

static bool all_zero(const uint8_t *p)
{
	for (size_t i = 0; i < DRILL_BLOCK; i++)
		if (p[i])
			return false;
	return true;
}

/* Whether block b's bytes are what the ledger allows. */
static bool block_ok(const struct ledger *l, uint64_t b, const uint8_t *got,
		     uint8_t *want)
{
	const uint64_t *w = (const uint64_t *)got;
	uint64_t s = w[2];

	if (!l->acked[b] && all_zero(got))
		return true;  /* never written, or no failed write landed */
	if (w[0] != MAGIC || w[1] != b || s < l->acked[b] ||
	    (s > l->acked[b] && s > l->failed[b]))
		return false;
	fill_block(want, b, s);
	return !memcmp(got, want, DRILL_BLOCK);
}

int64_t ledger_verify(struct ledger *l, char *why, size_t len)
{
	struct meta *m = NULL;
	struct nbd_handle *h = NULL;
	uint8_t *chunk = aligned_alloc(DRILL_BLOCK, 256 * DRILL_BLOCK);
	uint8_t want[DRILL_BLOCK];
	int64_t lost = 0;

	snprintf(why, len, "%s", "");
	if (!chunk || ctl_meta_open(l->meta_url, &m) || !(h = connect_engine(l, m))) {
		snprintf(why, len, "cannot connect to the volume's engine to read it back");
		free(chunk);
		meta_close(m);
		return -1;
	}
	for (uint64_t b = 0; b < l->nblocks; b += 256) {
		uint64_t n = l->nblocks - b < 256 ? l->nblocks - b : 256;

		if (nbd_pread(h, chunk, n * DRILL_BLOCK, b * DRILL_BLOCK, 0) < 0) {
			snprintf(why, len, "read back at block %" PRIu64 " failed: %s",
				 b, nbd_get_error());
			lost = -1;
			break;
		}
		for (uint64_t i = 0; i < n; i++) {
			if (block_ok(l, b + i, chunk + i * DRILL_BLOCK, want))
				continue;
			if (!lost)
				snprintf(why, len, "block %" PRIu64 " does not hold its "
					 "last acknowledged write (seq %" PRIu64 ")",
					 b + i, l->acked[b + i]);
			lost++;
		}
	}
	nbd_close(h);
	meta_close(m);
	free(chunk);
	return lost;
}
