/*
 * The etcd v3 metadata store, through etcd's JSON gateway (/v3/...) with
 * libcurl. See docs/metadata.md for the choice and the key layout.
 *
 * Calls are synchronous and run on the agent's metadata worker thread
 * (metaq), never on an I/O loop, so a blocking easy handle is enough: the
 * loop never waits for etcd. One handle per thread, like the SQLite store.
 *
 * Every call tries the endpoints in turn, starting from the last one that
 * answered, moving on when one cannot be reached, times out, or answers
 * UNAVAILABLE (no leader, or a member cut off from its majority), with
 * backoff between rounds until ETCD_CALL_MS has passed; then -EIO. A put
 * or delete whose request may have been applied before its answer was lost
 * is "ambiguous": if its retry then fails its compare, the key is read
 * back, and a key already holding what we wrote counts as our success.
 */
#include "meta.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <curl/curl.h>
#include <jansson.h>

#include "etcd_codec.h"
#include "log.h"

#define ETCD_MAX_ENDPOINTS 16
#define ETCD_CALL_MS 5000        /* one call, every retry included */
#define ETCD_ATTEMPT_MS 2000     /* one request to one endpoint */
#define ETCD_CONNECT_MS 1000
#define ETCD_BACKOFF_MS 50       /* doubles each round, up to 1 s */
#define ETCD_MAX_RESPONSE (64u << 20)
#define ETCD_PAGE 1000           /* keys per range request of a list */

/* gRPC status codes (grpc/status.h), as the gateway reports them. */
enum {
	GRPC_INVALID_ARGUMENT = 3,
	GRPC_DEADLINE_EXCEEDED = 4,
	GRPC_NOT_FOUND = 5,
	GRPC_PERMISSION_DENIED = 7,
	GRPC_RESOURCE_EXHAUSTED = 8,
	GRPC_FAILED_PRECONDITION = 9,
	GRPC_UNAVAILABLE = 14,
	GRPC_UNAUTHENTICATED = 16,
};

struct etcd {
	struct meta base;
	CURL *curl;
	struct curl_slist *headers;
	char *endpoint[ETCD_MAX_ENDPOINTS];
	size_t n_endpoints, cur;
	char *cacert, *cert, *key;
	char *body;              /* the response being received */
	size_t body_len;
	bool down;               /* no endpoint answered the last call */
	char why[384];           /* why the last failed call failed */
	bool ambiguous;          /* the last call may have been applied */
};

static struct etcd *to_etcd(struct meta *m)
{
	return (struct etcd *)m;
}

static int64_t mono_ms(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (int64_t)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

static void sleep_ms(int64_t ms)
{
	struct timespec t = { .tv_sec = ms / 1000,
			      .tv_nsec = (ms % 1000) * 1000000 };

	nanosleep(&t, NULL);
}

/* ---- transport ------------------------------------------------------ */

static size_t on_body(char *p, size_t size, size_t n, void *arg)
{
	struct etcd *e = arg;
	size_t len = size * n;
	char *b;

	if (len > ETCD_MAX_RESPONSE - e->body_len)
		return 0; /* a hostile or broken peer: abort the transfer */
	b = realloc(e->body, e->body_len + len + 1);
	if (!b)
		return 0;
	memcpy(b + e->body_len, p, len);
	e->body = b;
	e->body_len += len;
	e->body[e->body_len] = '\0';
	return len;
}

enum attempt { ATT_ANSWER, ATT_UNREACHABLE, ATT_LOST, ATT_REFUSED };

/* TLS failures that no retry mends: a certificate or key that is wrong. */
static bool tls_refused(CURLcode rc)
{
	return rc == CURLE_PEER_FAILED_VERIFICATION ||
	       rc == CURLE_SSL_CERTPROBLEM || rc == CURLE_SSL_CACERT_BADFILE ||
	       rc == CURLE_SSL_CIPHER || rc == CURLE_SSL_ISSUER_ERROR;
}

/* One POST to one endpoint. ATT_UNREACHABLE: the request never left
 * (cannot connect); ATT_LOST: it may have arrived, no answer came. */
static enum attempt post_one(struct etcd *e, size_t ep, const char *path,
			     const char *req, long timeout_ms, long *status,
			     char *why, size_t whylen)
{
	char url[512];
	CURLcode rc;

	snprintf(url, sizeof url, "%s%s", e->endpoint[ep], path);
	e->body_len = 0;
	curl_easy_setopt(e->curl, CURLOPT_URL, url);
	curl_easy_setopt(e->curl, CURLOPT_POSTFIELDS, req);
	curl_easy_setopt(e->curl, CURLOPT_TIMEOUT_MS, timeout_ms);
	rc = curl_easy_perform(e->curl);
	if (rc != CURLE_OK) {
		snprintf(why, whylen, "%s: %s", e->endpoint[ep],
			 curl_easy_strerror(rc));
		if (tls_refused(rc))
			return ATT_REFUSED;
		return rc == CURLE_COULDNT_CONNECT ||
		       rc == CURLE_COULDNT_RESOLVE_HOST ? ATT_UNREACHABLE :
		       ATT_LOST;
	}
	curl_easy_getinfo(e->curl, CURLINFO_RESPONSE_CODE, status);
	return ATT_ANSWER;
}

static int grpc_errno(int code)
{
	switch (code) {
	case GRPC_NOT_FOUND:
		return -ENOENT;
	case GRPC_INVALID_ARGUMENT:
		return -EINVAL;
	case GRPC_RESOURCE_EXHAUSTED:
		return -ENOSPC;
	case GRPC_PERMISSION_DENIED:
	case GRPC_UNAUTHENTICATED:
		return -EACCES;
	case GRPC_FAILED_PRECONDITION:
		return -ESTALE;
	default:
		return -EIO;
	}
}

/* Judge one answer: 0 with *resp, 1 to try another endpoint, or -errno. */
static int judge(struct etcd *e, size_t ep, long status, json_t **resp,
		 char *why, size_t whylen)
{
	json_t *j = e->body_len ? json_loadb(e->body, e->body_len, 0, NULL) :
		    NULL;
	int code = j ? etcd_error_code(j) : -1;

	if (j && json_is_object(j) && status == 200 && code < 0) {
		*resp = j;
		return 0;
	}
	snprintf(why, whylen, "%s: HTTP %ld%s%.200s", e->endpoint[ep],
		 status, j ? ": " : " (not JSON)",
		 j ? (e->body ? e->body : "") : "");
	json_decref(j);
	if (code == GRPC_UNAVAILABLE || code == GRPC_DEADLINE_EXCEEDED ||
	    code < 0)
		return 1;
	return grpc_errno(code);
}

static void note_down(struct etcd *e, bool down, const char *why)
{
	if (down && !e->down)
		log_warn("etcd: no endpoint answers (last: %s)", why);
	else if (!down && e->down)
		log_info("etcd: %s answers again", e->endpoint[e->cur]);
	e->down = down;
}

/* POST req (a JSON object) to path on the first endpoint that answers. */
static int etcd_call(struct etcd *e, const char *path, json_t *req,
		     json_t **resp)
{
	char *body = json_dumps(req, JSON_COMPACT);
	int64_t deadline = mono_ms() + ETCD_CALL_MS, backoff = ETCD_BACKOFF_MS;
	char why[384] = "no attempt";
	int r = -EIO;

	json_decref(req);
	*resp = NULL;
	e->ambiguous = false;
	if (!body)
		return -ENOMEM;
	for (;;) {
		for (size_t i = 0; i < e->n_endpoints; i++) {
			size_t ep = (e->cur + i) % e->n_endpoints;
			int64_t left = deadline - mono_ms();
			long status = 0;
			enum attempt a;

			if (left <= 0)
				goto out;
			a = post_one(e, ep, path, body,
				     left < ETCD_ATTEMPT_MS ? left :
				     ETCD_ATTEMPT_MS, &status, why, sizeof why);
			if (a == ATT_LOST)
				e->ambiguous = true;
			if (a == ATT_REFUSED) {
				r = -EACCES;
				goto out;
			}
			if (a != ATT_ANSWER)
				continue;
			r = judge(e, ep, status, resp, why, sizeof why);
			if (r < 0)
				snprintf(e->why, sizeof e->why, "%s", why);
			if (r <= 0) {
				e->cur = ep;
				note_down(e, false, why);
				free(body);
				return r;
			}
			r = -EIO;
		}
		if (deadline - mono_ms() <= 0)
			break;
		sleep_ms(backoff < deadline - mono_ms() ? backoff :
			 deadline - mono_ms());
		backoff = backoff * 2 > 1000 ? 1000 : backoff * 2;
	}
out:
	note_down(e, true, why);
	snprintf(e->why, sizeof e->why, "%s", why);
	free(body);
	return r;
}

/* ---- request building ----------------------------------------------- */

static int set_b64(json_t *o, const char *name, const void *p, size_t n)
{
	char *s;
	int r = etcd_b64_encode(p, n, &s);

	if (r < 0)
		return r;
	r = json_object_set_new(o, name, json_string(s)) ? -ENOMEM : 0;
	free(s);
	return r;
}

static int set_int64(json_t *o, const char *name, int64_t v)
{
	char s[24];

	snprintf(s, sizeof s, "%lld", (long long)v);
	return json_object_set_new(o, name, json_string(s)) ? -ENOMEM : 0;
}

static json_t *key_req(const char *key)
{
	json_t *o = json_object();

	if (o && set_b64(o, "key", key, strlen(key)) < 0) {
		json_decref(o);
		return NULL;
	}
	return o;
}

/* A transaction of one compare on key and one request on success. */
static json_t *txn_req(const char *key, int64_t expect_rev,
		       const char *op_name, json_t *op)
{
	json_t *cmp = key_req(key), *txn = json_object();
	json_t *success = json_object();
	bool create = expect_rev == 0;

	if (!cmp || !txn || !success || !op)
		goto fail;
	json_object_set_new(cmp, "target", json_string(create ? "CREATE" :
						       "MOD"));
	json_object_set_new(cmp, "result", json_string("EQUAL"));
	if (set_int64(cmp, create ? "create_revision" : "mod_revision",
		      expect_rev) < 0)
		goto fail;
	json_object_set_new(success, op_name, op);
	json_object_set_new(txn, "compare", json_pack("[o]", cmp));
	json_object_set_new(txn, "success", json_pack("[o]", success));
	return txn;
fail:
	json_decref(cmp);
	json_decref(txn);
	json_decref(success);
	json_decref(op);
	return NULL;
}

static int header_rev(const json_t *resp, int64_t *rev)
{
	int r = etcd_int64(json_object_get(resp, "header"), "revision", rev);

	return r < 0 || *rev <= 0 ? -EIO : 0;
}

/* ---- the meta_ops --------------------------------------------------- */

static int etcd_get(struct meta *m, const char *key, struct meta_kv *out)
{
	json_t *resp, *req;
	struct meta_kv *kvs;
	size_t n;
	int r;

	memset(out, 0, sizeof *out);
	if (!*key)
		return -EINVAL;
	if (!(req = key_req(key)))
		return -ENOMEM;
	if ((r = etcd_call(to_etcd(m), "/v3/kv/range", req, &resp)) < 0)
		return r;
	r = etcd_decode_kvs(resp, &kvs, &n);
	json_decref(resp);
	if (r < 0)
		return -EIO;
	if (n != 1 || strcmp(kvs[0].key, key)) {
		meta_kv_free_array(kvs, n);
		return n ? -EIO : -ENOENT;
	}
	*out = kvs[0];
	free(kvs);
	return 0;
}

/* One page of keys from start (len bytes, may end in a NUL) to end. */
static json_t *page_req(const char *start, size_t start_len, const char *end,
			size_t end_len, int64_t rev)
{
	json_t *o = json_object();
	static const char zero = '\0';

	if (!o || set_b64(o, "key", start, start_len) < 0 ||
	    set_b64(o, "range_end", end_len ? end : &zero,
		    end_len ? end_len : 1) < 0 ||
	    set_int64(o, "limit", ETCD_PAGE) < 0 ||
	    (rev && set_int64(o, "revision", rev) < 0)) {
		json_decref(o);
		return NULL;
	}
	return o;
}

static int append_kvs(struct meta_kv **all, size_t *n, struct meta_kv *kvs,
		      size_t k)
{
	struct meta_kv *a = realloc(*all, (*n + k + 1) * sizeof *a);

	if (!a) {
		meta_kv_free_array(kvs, k);
		return -ENOMEM;
	}
	if (k)
		memcpy(a + *n, kvs, k * sizeof *a);
	free(kvs);
	*all = a;
	*n += k;
	return 0;
}

/* Pages at one revision, so the list is one consistent snapshot. */
static int etcd_list(struct meta *m, const char *prefix, struct meta_kv **out,
		     size_t *n)
{
	size_t plen = strlen(prefix), end_len, start_len;
	char *end = malloc(plen + 1), *start = malloc(plen + 2);
	int64_t rev = 0;
	int r = -ENOMEM;

	*out = NULL;
	*n = 0;
	if (!end || !start)
		goto out;
	etcd_prefix_end(prefix, end, &end_len);
	memcpy(start, prefix, plen);
	start_len = plen;
	if (!plen)
		start[start_len++] = '\0'; /* "" is every key: from "\0" */
	for (;;) {
		json_t *resp, *req = page_req(start, start_len, end, end_len,
					      rev);
		struct meta_kv *kvs;
		size_t k;
		bool more;

		if (!req) {
			r = -ENOMEM;
			break;
		}
		if ((r = etcd_call(to_etcd(m), "/v3/kv/range", req, &resp)) < 0)
			break;
		more = etcd_bool(resp, "more");
		r = etcd_decode_kvs(resp, &kvs, &k);
		if (r == 0 && !rev)
			r = header_rev(resp, &rev);
		json_decref(resp);
		if (r < 0 || (more && !k)) {
			meta_kv_free_array(kvs, k);
			r = -EIO;
			break;
		}
		if ((r = append_kvs(out, n, kvs, k)) < 0 || !more)
			break;
		/* The next page starts just after the last key. */
		free(start);
		start_len = strlen((*out)[*n - 1].key) + 1;
		if (!(start = malloc(start_len))) {
			r = -ENOMEM;
			break;
		}
		memcpy(start, (*out)[*n - 1].key, start_len);
	}
out:
	free(start);
	free(end);
	if (r < 0) {
		meta_kv_free_array(*out, *n);
		*out = NULL;
		*n = 0;
	}
	return r;
}

/* After an ambiguous CAS failed its compare: did our first try land? */
static bool landed(struct meta *m, const char *key, const void *value,
		   size_t len, int64_t lease, int64_t *rev)
{
	struct meta_kv kv;
	bool ok;

	if (!value)
		return etcd_get(m, key, &kv) == -ENOENT;
	if (etcd_get(m, key, &kv) < 0)
		return false;
	ok = kv.value_len == len && !memcmp(kv.value, value, len) &&
	     kv.lease == lease;
	if (ok && rev)
		*rev = kv.mod_rev;
	meta_kv_clear(&kv);
	return ok;
}

static json_t *put_op(const char *key, const void *value, size_t len,
		      int64_t lease)
{
	json_t *o = key_req(key);

	if (o && (set_b64(o, "value", value, len) < 0 ||
		  (lease && set_int64(o, "lease", lease) < 0))) {
		json_decref(o);
		return NULL;
	}
	return o;
}

static int etcd_put(struct meta *m, const char *key, const void *value,
		    size_t len, int64_t expect_rev, int64_t lease,
		    int64_t *new_rev)
{
	struct etcd *e = to_etcd(m);
	json_t *resp, *op, *req;
	int64_t rev;
	int r;

	if (!*key || expect_rev < -1 || lease < 0)
		return -EINVAL;
	op = put_op(key, value, len, lease);
	req = expect_rev == -1 ? op :
	      txn_req(key, expect_rev, "request_put", op);
	if (!req)
		return -ENOMEM;
	r = etcd_call(e, expect_rev == -1 ? "/v3/kv/put" : "/v3/kv/txn", req,
		      &resp);
	if (r < 0)
		return r;
	r = header_rev(resp, &rev);
	if (r == 0 && expect_rev != -1 && !etcd_bool(resp, "succeeded"))
		r = e->ambiguous && landed(m, key, value, len, lease, &rev) ?
		    0 : -ESTALE;
	json_decref(resp);
	if (r == 0 && new_rev)
		*new_rev = rev;
	return r;
}

static int etcd_del(struct meta *m, const char *key, int64_t expect_rev)
{
	struct etcd *e = to_etcd(m);
	json_t *resp, *req;
	int64_t deleted;
	int r;

	if (!*key || expect_rev == 0 || expect_rev < -1)
		return -EINVAL;
	req = expect_rev == -1 ? key_req(key) :
	      txn_req(key, expect_rev, "request_delete_range", key_req(key));
	if (!req)
		return -ENOMEM;
	r = etcd_call(e, expect_rev == -1 ? "/v3/kv/deleterange" :
		      "/v3/kv/txn", req, &resp);
	if (r < 0)
		return r;
	if (expect_rev != -1)
		r = etcd_bool(resp, "succeeded") ||
		    (e->ambiguous && landed(m, key, NULL, 0, 0, NULL)) ?
		    0 : -ESTALE;
	else if (etcd_int64(resp, "deleted", &deleted) < 0)
		r = -EIO;
	else if (deleted == 0)
		r = e->ambiguous ? 0 : -ENOENT;
	json_decref(resp);
	return r;
}

static json_t *lease_req(const char *name, int64_t v)
{
	json_t *o = json_object();

	if (o && set_int64(o, name, v) < 0) {
		json_decref(o);
		return NULL;
	}
	return o;
}

static int etcd_lease_grant(struct meta *m, int ttl_s, int64_t *lease)
{
	json_t *resp, *req;
	int r;

	if (ttl_s < 1)
		return -EINVAL;
	if (!(req = lease_req("TTL", ttl_s)))
		return -ENOMEM;
	if ((r = etcd_call(to_etcd(m), "/v3/lease/grant", req, &resp)) < 0)
		return r;
	r = etcd_int64(resp, "ID", lease);
	if (r < 0 || *lease <= 0 || json_object_get(resp, "error"))
		r = -EIO;
	json_decref(resp);
	return r;
}

static int etcd_lease_keepalive(struct meta *m, int64_t lease)
{
	json_t *resp, *req;
	int64_t ttl;
	int r;

	if (!(req = lease_req("ID", lease)))
		return -ENOMEM;
	r = etcd_call(to_etcd(m), "/v3/lease/keepalive", req, &resp);
	if (r < 0)
		return r;
	/* A stream of one answer: {"result": {"ID", "TTL"}}; no TTL left
	 * means the lease is gone. */
	r = etcd_int64(json_object_get(resp, "result"), "TTL", &ttl);
	if (r == 0 && !json_is_object(json_object_get(resp, "result")))
		r = -EIO;
	else if (r == 0 && ttl <= 0)
		r = -ENOENT;
	json_decref(resp);
	return r < 0 ? r : 0;
}

static int etcd_lease_revoke(struct meta *m, int64_t lease)
{
	struct etcd *e = to_etcd(m);
	json_t *resp, *req;
	int r;

	if (!(req = lease_req("ID", lease)))
		return -ENOMEM;
	r = etcd_call(e, "/v3/lease/revoke", req, &resp);
	if (r == -ENOENT && e->ambiguous)
		r = 0; /* our first try revoked it */
	json_decref(resp);
	return r;
}

static void etcd_close(struct meta *m)
{
	struct etcd *e = to_etcd(m);

	if (e->curl)
		curl_easy_cleanup(e->curl);
	curl_slist_free_all(e->headers);
	for (size_t i = 0; i < e->n_endpoints; i++)
		free(e->endpoint[i]);
	free(e->cacert);
	free(e->cert);
	free(e->key);
	free(e->body);
	free(e);
}

/* ---- watch: a hint that something changed ----------------------------- */

struct watch_rx {
	struct etcd_watch_rx rx;
	bool changed;
};

/* Stop the transfer once a change has been seen: we know enough. */
static size_t on_watch_body(char *p, size_t size, size_t n, void *arg)
{
	struct watch_rx *w = arg;

	if (!etcd_watch_feed(&w->rx, p, size * n))
		return size * n;
	w->changed = true;
	return 0;
}

static int etcd_current_rev(struct etcd *e, const char *prefix, int64_t *rev)
{
	size_t plen = strlen(prefix), end_len;
	char *end = malloc(plen + 1);
	json_t *resp, *req = end ? json_object() : NULL;
	int r = -ENOMEM;

	if (req) {
		etcd_prefix_end(prefix, end, &end_len);
		if (set_b64(req, "key", prefix, plen) == 0 &&
		    set_b64(req, "range_end", end, end_len) == 0 &&
		    json_object_set_new(req, "count_only", json_true()) == 0) {
			r = etcd_call(e, "/v3/kv/range", req, &resp);
			req = NULL;
			if (r == 0) {
				r = header_rev(resp, rev);
				json_decref(resp);
			}
		}
		json_decref(req);
	}
	free(end);
	return r;
}

static int etcd_wait_change(struct meta *m, const char *prefix, int64_t *rev,
			    int timeout_ms)
{
	struct etcd *e = to_etcd(m);
	size_t plen = strlen(prefix), end_len;
	char *end, *body = NULL, url[512];
	json_t *req = NULL, *create;
	struct watch_rx w = { .changed = false };
	CURLcode rc;
	int r = -ENOMEM;

	if (*rev < 0)
		return etcd_current_rev(e, prefix, rev) < 0 ? -EIO : 0;
	if (!(end = malloc(plen + 1)) || !(create = json_object()))
		goto out;
	etcd_prefix_end(prefix, end, &end_len);
	if (set_b64(create, "key", prefix, plen) < 0 ||
	    set_b64(create, "range_end", end, end_len) < 0 ||
	    set_int64(create, "start_revision", *rev + 1) < 0 ||
	    !(req = json_object()) ||
	    json_object_set_new(req, "create_request", create) < 0) {
		if (!req)
			json_decref(create);
		goto out;
	}
	if (!(body = json_dumps(req, JSON_COMPACT)))
		goto out;
	snprintf(url, sizeof url, "%s/v3/watch", e->endpoint[e->cur]);
	curl_easy_setopt(e->curl, CURLOPT_URL, url);
	curl_easy_setopt(e->curl, CURLOPT_POSTFIELDS, body);
	curl_easy_setopt(e->curl, CURLOPT_TIMEOUT_MS, (long)timeout_ms);
	curl_easy_setopt(e->curl, CURLOPT_WRITEFUNCTION, on_watch_body);
	curl_easy_setopt(e->curl, CURLOPT_WRITEDATA, &w);
	rc = curl_easy_perform(e->curl);
	curl_easy_setopt(e->curl, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(e->curl, CURLOPT_WRITEDATA, e);
	if (w.changed) {
		/* No revision seen (a cancel): learn the current one next. */
		*rev = w.rx.rev > *rev ? w.rx.rev : -1;
		r = 1;
	} else if (rc == CURLE_OPERATION_TIMEDOUT || rc == CURLE_OK) {
		r = 0;
	} else {
		/* This endpoint is gone: the next call tries the next one. */
		e->cur = (e->cur + 1) % e->n_endpoints;
		r = -EIO;
	}
out:
	json_decref(req);
	free(body);
	free(end);
	return r;
}

static const struct meta_ops etcd_ops = {
	.get = etcd_get,
	.list = etcd_list,
	.put = etcd_put,
	.del = etcd_del,
	.lease_grant = etcd_lease_grant,
	.lease_keepalive = etcd_lease_keepalive,
	.lease_revoke = etcd_lease_revoke,
	.close = etcd_close,
	.wait_change = etcd_wait_change,
};

/* ---- opening -------------------------------------------------------- */

static bool endpoint_ok(const char *s, size_t n)
{
	if (!n || n > 255)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
			    "0123456789.-:[]", s[i]))
			return false;
	return memchr(s, ':', n) != NULL; /* a port is required */
}

/* "cacert=/p&cert=/p&key=/p" */
static int parse_query(struct etcd *e, const char *q, char *err, size_t len)
{
	while (*q) {
		size_t n = strcspn(q, "&");
		const char *eq = memchr(q, '=', n);
		char **slot = NULL;

		if (eq && eq - q == 6 && !strncmp(q, "cacert", 6))
			slot = &e->cacert;
		else if (eq && eq - q == 4 && !strncmp(q, "cert", 4))
			slot = &e->cert;
		else if (eq && eq - q == 3 && !strncmp(q, "key", 3))
			slot = &e->key;
		if (!slot || eq + 1 == q + n) {
			snprintf(err, len, "unknown or empty option '%.*s' "
				 "(expected cacert=, cert= or key=)", (int)n, q);
			return -EINVAL;
		}
		free(*slot);
		*slot = strndup(eq + 1, (size_t)(q + n - eq - 1));
		if (!*slot)
			return -ENOMEM;
		q += n + (q[n] == '&');
	}
	return 0;
}

static int parse_url(struct etcd *e, const char *url, char *err, size_t len)
{
	const char *scheme = "http://", *p, *q;
	bool tls = false;

	if (!strncmp(url, "etcd://", 7))
		p = url + 7;
	else if (!strncmp(url, "http://", 7))
		p = url + 7;
	else if (!strncmp(url, "https://", 8))
		p = url + 8, scheme = "https://", tls = true;
	else
		return snprintf(err, len, "expected etcd://, http:// or "
				"https://"), -EINVAL;
	q = strchr(p, '?');
	while (*p && p != q) {
		size_t n = strcspn(p, ",?/");

		if (!endpoint_ok(p, n) || e->n_endpoints == ETCD_MAX_ENDPOINTS)
			return snprintf(err, len, "bad endpoint '%.*s' (expected "
					"host:port, at most %d)", (int)n, p,
					ETCD_MAX_ENDPOINTS), -EINVAL;
		if (asprintf(&e->endpoint[e->n_endpoints++], "%s%.*s", scheme,
			     (int)n, p) < 0)
			return -ENOMEM;
		p += n;
		if (*p == '/' && (p[1] == '\0' || p[1] == '?'))
			p++; /* a trailing slash */
		else if (*p == ',')
			p++;
		else if (*p && *p != '?')
			return snprintf(err, len, "unexpected '%c'", *p),
			       -EINVAL;
	}
	if (!e->n_endpoints)
		return snprintf(err, len, "no endpoint"), -EINVAL;
	if (q && parse_query(e, q + 1, err, len) < 0)
		return -EINVAL;
	if (!tls && (e->cacert || e->cert || e->key))
		return snprintf(err, len, "certificates need https://"),
		       -EINVAL;
	if (!e->cert != !e->key)
		return snprintf(err, len, "cert= and key= go together"),
		       -EINVAL;
	return 0;
}

static void curl_init_once(void)
{
	curl_global_init(CURL_GLOBAL_DEFAULT);
}

static int setup_curl(struct etcd *e)
{
	static pthread_once_t once = PTHREAD_ONCE_INIT;

	pthread_once(&once, curl_init_once);
	e->curl = curl_easy_init();
	e->headers = curl_slist_append(NULL, "Content-Type: application/json");
	if (!e->curl || !e->headers)
		return -ENOMEM;
	curl_easy_setopt(e->curl, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(e->curl, CURLOPT_HTTPHEADER, e->headers);
	curl_easy_setopt(e->curl, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(e->curl, CURLOPT_WRITEDATA, e);
	curl_easy_setopt(e->curl, CURLOPT_CONNECTTIMEOUT_MS,
			 (long)ETCD_CONNECT_MS);
	curl_easy_setopt(e->curl, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(e->curl, CURLOPT_FOLLOWLOCATION, 0L);
	if (e->cacert)
		curl_easy_setopt(e->curl, CURLOPT_CAINFO, e->cacert);
	if (e->cert) {
		curl_easy_setopt(e->curl, CURLOPT_SSLCERT, e->cert);
		curl_easy_setopt(e->curl, CURLOPT_SSLKEY, e->key);
	}
	return 0;
}

/* Ask for the cluster's status once, so a wrong URL fails at open. */
static int check_reachable(struct etcd *e, char *err, size_t len)
{
	json_t *resp;
	int r = etcd_call(e, "/v3/maintenance/status", json_object(), &resp);

	if (r < 0) {
		snprintf(err, len, "etcd did not answer: %s", e->why);
		return r;
	}
	json_decref(resp);
	return 0;
}

int meta_etcd_open(const char *url, struct meta **out, char *err,
		   size_t errlen)
{
	struct etcd *e = calloc(1, sizeof *e);
	char why[512] = "";
	int r;

	*out = NULL;
	if (!e)
		return -ENOMEM;
	e->base.ops = &etcd_ops;
	e->down = false;
	if ((r = parse_url(e, url, why, sizeof why)) < 0) {
		snprintf(err, errlen, "%s: %s", url, why);
		goto fail;
	}
	if ((r = setup_curl(e)) < 0) {
		snprintf(err, errlen, "%s: out of memory", url);
		goto fail;
	}
	if ((r = check_reachable(e, why, sizeof why)) < 0) {
		snprintf(err, errlen, "%.*s: %s", (int)strcspn(url, "?"), url,
			 why);
		goto fail;
	}
	*out = &e->base;
	return 0;
fail:
	etcd_close(&e->base);
	return r;
}
