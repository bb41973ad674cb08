/* Decoding and encoding the etcd v3 gateway's JSON; see etcd_codec.h. */
#include "etcd_codec.h"

#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

static const char b64_alphabet[] =
	"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

int etcd_b64_encode(const void *in, size_t n, char **out)
{
	const uint8_t *p = in;
	char *s, *o;

	if (n > (SIZE_MAX - 1) / 4 * 3 - 3)
		return -EINVAL;
	s = malloc((n + 2) / 3 * 4 + 1);
	if (!s)
		return -ENOMEM;
	o = s;
	for (size_t i = 0; i < n; i += 3) {
		uint32_t v = (uint32_t)p[i] << 16;
		size_t left = n - i;

		if (left > 1)
			v |= (uint32_t)p[i + 1] << 8;
		if (left > 2)
			v |= p[i + 2];
		*o++ = b64_alphabet[v >> 18 & 63];
		*o++ = b64_alphabet[v >> 12 & 63];
		*o++ = left > 1 ? b64_alphabet[v >> 6 & 63] : '=';
		*o++ = left > 2 ? b64_alphabet[v & 63] : '=';
	}
	*o = '\0';
	*out = s;
	return 0;
}

static int b64_value(char c)
{
	const char *p = c ? strchr(b64_alphabet, c) : NULL;

	return p ? (int)(p - b64_alphabet) : -1;
}

/* One group of four characters into up to three bytes; the padding and
 * the unused low bits of the last group must be zero (canonical form). */
static int b64_group(const char *g, bool last, uint8_t *o, size_t *len)
{
	int v[4], pad = 0;

	for (int i = 0; i < 4; i++) {
		if (g[i] == '=' && last && i >= 2) {
			pad++;
			v[i] = 0;
			continue;
		}
		if (pad || (v[i] = b64_value(g[i])) < 0)
			return -EINVAL;
	}
	if ((pad == 2 && (v[1] & 15)) || (pad == 1 && (v[2] & 3)))
		return -EINVAL;
	o[0] = (uint8_t)(v[0] << 2 | v[1] >> 4);
	o[1] = (uint8_t)(v[1] << 4 | v[2] >> 2);
	o[2] = (uint8_t)(v[2] << 6 | v[3]);
	*len = (size_t)(3 - pad);
	return 0;
}

int etcd_b64_decode(const char *in, uint8_t **out, size_t *n)
{
	size_t len = strlen(in), o = 0;
	uint8_t *buf;

	if (len % 4)
		return -EINVAL;
	buf = malloc(len / 4 * 3 + 1);
	if (!buf)
		return -ENOMEM;
	for (size_t i = 0; i < len; i += 4) {
		size_t got;

		if (b64_group(in + i, i + 4 == len, buf + o, &got) < 0) {
			free(buf);
			return -EINVAL;
		}
		o += got;
	}
	buf[o] = '\0';
	*out = buf;
	*n = o;
	return 0;
}

int etcd_int64(const json_t *obj, const char *name, int64_t *out)
{
	const json_t *v = json_object_get(obj, name);
	const char *s;
	char *end;
	long long x;

	*out = 0;
	if (!v)
		return 0;
	if (json_is_integer(v)) {
		*out = json_integer_value(v);
		return 0;
	}
	if (!json_is_string(v))
		return -EINVAL;
	s = json_string_value(v);
	if (!*s || !(*s == '-' || (*s >= '0' && *s <= '9')))
		return -EINVAL;
	errno = 0;
	x = strtoll(s, &end, 10);
	if (errno || *end)
		return -EINVAL;
	*out = x;
	return 0;
}

int etcd_bool(const json_t *obj, const char *name)
{
	return json_is_true(json_object_get(obj, name));
}

static int decode_kv(const json_t *j, struct meta_kv *kv)
{
	const json_t *k = json_object_get(j, "key");
	const json_t *v = json_object_get(j, "value");
	size_t klen;
	int r;

	if (!json_is_object(j) || !json_is_string(k) ||
	    (v && !json_is_string(v)))
		return -EINVAL;
	r = etcd_b64_decode(json_string_value(k), (uint8_t **)&kv->key, &klen);
	if (r < 0)
		return r;
	if (klen == 0 || strlen(kv->key) != klen)
		return -EINVAL; /* empty, or a NUL inside */
	if (v)
		r = etcd_b64_decode(json_string_value(v), &kv->value,
				    &kv->value_len);
	else if (!(kv->value = calloc(1, 1)))
		r = -ENOMEM;
	if (r < 0)
		return r;
	if (etcd_int64(j, "create_revision", &kv->create_rev) < 0 ||
	    etcd_int64(j, "mod_revision", &kv->mod_rev) < 0 ||
	    etcd_int64(j, "lease", &kv->lease) < 0 || kv->create_rev <= 0 ||
	    kv->mod_rev < kv->create_rev || kv->lease < 0)
		return -EINVAL;
	return 0;
}

int etcd_decode_kvs(const json_t *resp, struct meta_kv **out, size_t *n)
{
	const json_t *kvs = json_object_get(resp, "kvs");
	struct meta_kv *a;
	size_t count;

	*out = NULL;
	*n = 0;
	if (!json_is_object(resp) || (kvs && !json_is_array(kvs)))
		return -EINVAL;
	count = kvs ? json_array_size(kvs) : 0;
	if (!count)
		return 0;
	a = calloc(count, sizeof *a);
	if (!a)
		return -ENOMEM;
	for (size_t i = 0; i < count; i++) {
		int r = decode_kv(json_array_get(kvs, i), &a[i]);

		if (r < 0) {
			meta_kv_free_array(a, i + 1);
			return r;
		}
	}
	*out = a;
	*n = count;
	return 0;
}

int etcd_error_code(const json_t *resp)
{
	const json_t *err = json_object_get(resp, "error");
	const json_t *code = json_object_get(resp, "code");

	if (!json_is_object(resp) || !err)
		return -1;
	/* A streaming call (lease keepalive) wraps its error in an object. */
	if (json_is_object(err))
		code = json_object_get(err, "grpc_code");
	if (!json_is_integer(code) || json_integer_value(code) < 0 ||
	    json_integer_value(code) > INT_MAX)
		return -1;
	return (int)json_integer_value(code);
}

void etcd_prefix_end(const char *prefix, char *end, size_t *n)
{
	size_t len = strlen(prefix);

	while (len && (uint8_t)prefix[len - 1] == 0xff)
		len--;
	memcpy(end, prefix, len);
	if (len)
		end[len - 1] = (char)((uint8_t)end[len - 1] + 1);
	*n = len;
}

bool etcd_watch_feed(struct etcd_watch_rx *w, const char *p, size_t len)
{
	const char *ev, *r, *last = NULL;
	size_t keep;

	if (len >= sizeof w->buf) {
		p += len - (sizeof w->buf - 1);
		len = sizeof w->buf - 1;
	}
	keep = w->len + len < sizeof w->buf ? w->len : sizeof w->buf - 1 - len;
	memmove(w->buf, w->buf + w->len - keep, keep);
	memcpy(w->buf + keep, p, len);
	w->len = keep + len;
	w->buf[w->len] = '\0';
	/* A NUL in the stream ends the string searches early: harmless. */
	ev = strstr(w->buf, "\"events\"");
	if (!ev)
		ev = strstr(w->buf, "\"canceled\"");
	if (!ev)
		return false;
	for (r = w->buf; (r = strstr(r, "\"revision\":\"")) && r < ev; r++)
		last = r;
	w->rev = last ? strtoll(last + strlen("\"revision\":\""), NULL, 10) : 0;
	if (w->rev < 0)
		w->rev = 0;
	return true;
}
