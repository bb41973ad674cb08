/*
 * The JSON of etcd's v3 gateway (grpc-gateway over the etcdserverpb
 * messages): keys and values are base64, int64 fields are decimal strings,
 * fields at their default value are left out. Everything here decodes
 * bytes from the network, so it trusts nothing: see fuzz_etcd.c.
 */
#ifndef TRIPLEX_ETCD_CODEC_H
#define TRIPLEX_ETCD_CODEC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "meta.h"

/* Standard base64 with padding. encode: a malloc'd NUL-terminated string.
 * decode: malloc'd bytes followed by a NUL not counted in *n; -EINVAL for
 * anything that is not canonical base64. Both return 0 or -errno. */
int etcd_b64_encode(const void *in, size_t n, char **out);
int etcd_b64_decode(const char *in, uint8_t **out, size_t *n);

/* The int64 field `name` of obj: a decimal string or a JSON integer;
 * absent is 0 (the gateway omits defaults). -EINVAL for anything else. */
int etcd_int64(const json_t *obj, const char *name, int64_t *out);

/* A boolean field; absent is false. */
int etcd_bool(const json_t *obj, const char *name);

/* The kvs of a RangeResponse, in order. Keys with a NUL byte, or values
 * that are not base64, make the whole response -EINVAL. */
int etcd_decode_kvs(const json_t *resp, struct meta_kv **out, size_t *n);

/* An error body {"error": ..., "code": N, "message": ...}: the gRPC status
 * code, or -1 if resp is not one. */
int etcd_error_code(const json_t *resp);

/* The end of the range of keys starting with prefix (etcd's range_end):
 * prefix with its last byte below 0xff incremented and what follows cut.
 * *n is 0 for "every key from prefix on" (etcd's "\0"). */
void etcd_prefix_end(const char *prefix, char *end, size_t *n);

/* A watch stream as it arrives: the gateway sends one JSON object per
 * watch response; the first only says "created". etcd_watch_feed keeps
 * the stream's last bytes and returns true once a response with "events"
 * (or "canceled") has been seen; rev is then the header revision before
 * it (0 if none was seen). */
struct etcd_watch_rx {
	char buf[4096];
	size_t len;
	int64_t rev;
};
bool etcd_watch_feed(struct etcd_watch_rx *w, const char *p, size_t len);

#endif
