/* Replica placement on distinct failure domains (invariant 8). */
#include "placement.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct cand {
	size_t idx;                      /* into in->nodes */
	unsigned load;
	const char *id;
	char dom[CLUSTER_DOMAIN_MAX];    /* "" : not eligible by domain */
	bool chosen;
};

static int cand_cmp(const void *a, const void *b)
{
	const struct cand *x = a, *y = b;

	if (x->load != y->load)
		return x->load < y->load ? -1 : 1;
	return strcmp(x->id, y->id);
}

static bool is_taken(const struct placement_input *in, const char *id)
{
	for (int i = 0; i < in->ntaken; i++)
		if (!strcmp(in->taken[i].node, id))
			return true;
	return in->exclude && !strcmp(in->exclude, id);
}

/* Candidates in preference order; returns how many. */
static size_t cands_build(const struct placement_input *in, struct cand *c)
{
	size_t n = 0;

	for (size_t i = 0; i < in->nnodes; i++) {
		if (is_taken(in, in->nodes[i].id))
			continue;
		c[n].idx = i;
		c[n].load = in->load ? in->load[i] : 0;
		c[n].id = in->nodes[i].id;
		c[n].chosen = false;
		cluster_node_domain(&in->nodes[i], in->domain, c[n].dom);
		n++;
	}
	qsort(c, n, sizeof *c, cand_cmp);
	return n;
}

static bool dom_used(const char **used, int nused, const char *dom)
{
	for (int i = 0; i < nused; i++)
		if (!strcmp(used[i], dom))
			return true;
	return false;
}

static int str_cmp(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Write the distinct names, sorted, to buf as "a, b, c" ("none" if there
 * are none); returns how many distinct names there are. */
static size_t join_sorted(const char **names, size_t n, char *buf, size_t len)
{
	size_t used = 0, distinct = 0;
	int w;

	qsort(names, n, sizeof *names, str_cmp);
	buf[0] = 0;
	for (size_t i = 0; i < n; i++) {
		if (i > 0 && !strcmp(names[i], names[i - 1]))
			continue;
		distinct++;
		if (used >= len)
			continue;
		w = snprintf(buf + used, len - used, "%s%s", used ? ", " : "",
			     names[i]);
		used += w > 0 ? (size_t)w : 0;
	}
	if (!distinct)
		snprintf(buf, len, "none");
	return distinct;
}

/* The one-line reason a placement is impossible. */
static void explain(const struct placement_input *in, const struct cand *c,
		    size_t nc, char *err, size_t errlen)
{
	const char *kind = in->domain == CLUSTER_DOMAIN_RACK ? "racks" : "zones";
	const char *kind1 = in->domain == CLUSTER_DOMAIN_RACK ? "rack" : "zone";
	const char **names = calloc(nc + (size_t)in->ntaken + 1, sizeof *names);
	char live[512], taken[256];
	size_t n = 0, nlive;

	if (!names) {
		snprintf(err, errlen, "out of memory");
		return;
	}
	for (size_t i = 0; i < nc; i++)
		if (in->relaxed || c[i].dom[0])
			names[n++] = in->relaxed ? c[i].id : c[i].dom;
	nlive = join_sorted(names, n, live, sizeof live);
	for (int i = 0; i < in->ntaken; i++)
		names[n + (size_t)i] = in->taken[i].domain;
	join_sorted(names + n, (size_t)in->ntaken, taken, sizeof taken);
	if (in->relaxed)
		snprintf(err, errlen, "need %d distinct nodes, only %zu "
			 "available (%s)", in->count, nlive, live);
	else if (in->ntaken == 0)
		snprintf(err, errlen, "need %d distinct %s, only %zu live (%s)",
			 in->count, kind, nlive, live);
	else
		snprintf(err, errlen, "need %d more %s(s) distinct from those "
			 "in use (%s); other live nodes are in: %s", in->count,
			 kind1, taken, live);
	free(names);
}

/* The best candidate in in->prefer_zone whose domain is not taken yet, or
 * nc if there is none. */
static size_t preferred(const struct placement_input *in,
			const struct cand *c, size_t nc)
{
	for (size_t i = 0; in->prefer_zone && i < nc; i++) {
		bool used = false;

		for (int t = 0; t < in->ntaken; t++)
			used |= !strcmp(in->taken[t].domain, c[i].dom);
		if (c[i].dom[0] && !used &&
		    !strcmp(in->nodes[c[i].idx].zone, in->prefer_zone))
			return i;
	}
	return nc;
}

/* Pick candidates in order whose domain is new, the preferred zone's
 * first; returns how many. */
static int pick_distinct(const struct placement_input *in, struct cand *c,
			 size_t nc, size_t *out)
{
	const char **used = calloc((size_t)in->ntaken + (size_t)in->count + 1,
				   sizeof *used);
	size_t first = preferred(in, c, nc);
	int nused = 0, got = 0;

	if (!used)
		return -ENOMEM;
	for (int i = 0; i < in->ntaken; i++)
		used[nused++] = in->taken[i].domain;
	if (first < nc && in->count > 0) {
		used[nused++] = c[first].dom;
		c[first].chosen = true;
		out[got++] = c[first].idx;
	}
	for (size_t i = 0; i < nc && got < in->count; i++) {
		if (!c[i].dom[0] || dom_used(used, nused, c[i].dom))
			continue;
		used[nused++] = c[i].dom;
		c[i].chosen = true;
		out[got++] = c[i].idx;
	}
	free(used);
	return got;
}

int placement_choose(const struct placement_input *in, size_t *out,
		     char *err, size_t errlen)
{
	struct cand *c = calloc(in->nnodes + 1, sizeof *c);
	size_t nc;
	int got;

	if (!c)
		return -ENOMEM;
	nc = cands_build(in, c);
	got = pick_distinct(in, c, nc, out);
	for (size_t i = 0; in->relaxed && got >= 0 && i < nc; i++) {
		if (got == in->count)
			break;
		if (!c[i].chosen)
			out[got++] = c[i].idx;
	}
	if (got >= 0 && got < in->count) {
		explain(in, c, nc, err, errlen);
		got = -ENOSPC;
	}
	free(c);
	return got < 0 ? got : 0;
}
