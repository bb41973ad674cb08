/*
 * libFuzzer harness for the etcd gateway decoder: arbitrary bytes as a
 * response body, through the same steps meta_etcd.c takes (JSON parse,
 * error code, header revision, kvs, the keepalive result, the "more" flag)
 * and as a base64 string. Checks: no crash, decoded keys are non-empty C
 * strings of their stated length, values NUL-terminated, revisions sane,
 * and base64 that decodes re-encodes to the same text (canonical only).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "etcd_codec.h"

static void check_kvs(const json_t *j)
{
	struct meta_kv *kvs;
	size_t n;

	if (etcd_decode_kvs(j, &kvs, &n) < 0) {
		if (kvs || n)
			abort();
		return;
	}
	for (size_t i = 0; i < n; i++) {
		if (!kvs[i].key[0] || kvs[i].value[kvs[i].value_len] != '\0' ||
		    kvs[i].create_rev <= 0 || kvs[i].mod_rev < kvs[i].create_rev ||
		    kvs[i].lease < 0)
			abort();
	}
	meta_kv_free_array(kvs, n);
}

static void check_b64(const uint8_t *data, size_t size)
{
	char *s = malloc(size + 1), *again;
	uint8_t *out;
	size_t n;

	memcpy(s, data, size);
	s[size] = '\0';
	if (etcd_b64_decode(s, &out, &n) == 0) {
		if (out[n] != '\0' || etcd_b64_encode(out, n, &again) < 0)
			abort();
		if (strcmp(again, s))
			abort(); /* only canonical text decodes */
		free(again);
		free(out);
	}
	free(s);
}

/* The watch stream scanner, fed the input in two pieces (a split that
 * depends on the input) as curl might deliver it. */
static void check_watch(const uint8_t *data, size_t size)
{
	struct etcd_watch_rx *w = calloc(1, sizeof *w);
	size_t cut = size ? data[0] % (size + 1) : 0;
	bool seen = etcd_watch_feed(w, (const char *)data, cut);

	if (!seen)
		seen = etcd_watch_feed(w, (const char *)data + cut, size - cut);
	if (w->len >= sizeof w->buf || w->buf[w->len] != '\0' || w->rev < 0)
		abort();
	(void)seen;
	free(w);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	json_t *j = json_loadb((const char *)data, size, 0, NULL);
	int64_t v;
	char end[64];
	size_t n;

	check_watch(data, size);

	if (j) {
		(void)etcd_error_code(j);
		(void)etcd_int64(json_object_get(j, "header"), "revision", &v);
		(void)etcd_int64(json_object_get(j, "result"), "TTL", &v);
		(void)etcd_bool(j, "more");
		check_kvs(j);
		json_decref(j);
	}
	check_b64(data, size);
	if (size < sizeof end && !memchr(data, 0, size)) {
		char p[64];

		memcpy(p, data, size);
		p[size] = '\0';
		etcd_prefix_end(p, end, &n);
		if (n > size || (n && memcmp(end, p, n - 1)))
			abort();
	}
	return 0;
}
