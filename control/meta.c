/* meta_open's URL dispatch and the helpers shared by every implementation. */
#include "meta.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int meta_open(const char *url, struct meta **out, char *err, size_t errlen)
{
	static const char sqlite_prefix[] = "sqlite:";

	*out = NULL;
	if (!strncmp(url, sqlite_prefix, sizeof sqlite_prefix - 1)) {
		const char *path = url + sizeof sqlite_prefix - 1;

		if (*path == '\0') {
			snprintf(err, errlen, "%s: missing file path", url);
			return -EINVAL;
		}
		return meta_sqlite_open(path, out, err, errlen);
	}
	if (!strncmp(url, "etcd://", 7) || !strncmp(url, "http://", 7) ||
	    !strncmp(url, "https://", 8))
		return meta_etcd_open(url, out, err, errlen);
	snprintf(err, errlen, "%s: unknown metadata store URL (expected "
		 "sqlite:/path/to/file.db or etcd://host:port,...)", url);
	return -EINVAL;
}

int meta_open_existing(const char *url, struct meta **out, char *err,
		       size_t errlen)
{
	static const char sqlite_prefix[] = "sqlite:";
	const char *path = url + sizeof sqlite_prefix - 1;
	struct stat st;

	*out = NULL;
	if (strncmp(url, sqlite_prefix, sizeof sqlite_prefix - 1) || !*path)
		return meta_open(url, out, err, errlen);
	if (stat(path, &st) < 0) {
		int e = errno;

		snprintf(err, errlen, "%s: %s%s", path, strerror(e), e == ENOENT ?
			 " (a mistyped path? triplexd or triplexctl dev up "
			 "creates the store)" : "");
		return -e;
	}
	if (!S_ISREG(st.st_mode)) {
		snprintf(err, errlen, "%s: not a regular file", path);
		return -EINVAL;
	}
	return meta_open(url, out, err, errlen);
}

char *meta_url_with_tls(const char *url, const char *cacert,
			const char *cert, const char *key)
{
	const char *names[] = { "cacert", "cert", "key" };
	const char *vals[] = { cacert, cert, key };
	size_t len = strlen(url) + 1;
	char *out, sep = strchr(url, '?') ? '&' : '?';

	for (int i = 0; i < 3; i++)
		if (vals[i])
			len += strlen(names[i]) + strlen(vals[i]) + 2;
	if (!(out = malloc(len)))
		return NULL;
	strcpy(out, url);
	for (int i = 0; i < 3; i++) {
		if (!vals[i])
			continue;
		snprintf(out + strlen(out), len - strlen(out), "%c%s=%s", sep,
			 names[i], vals[i]);
		sep = '&';
	}
	return out;
}

int meta_set_clock(struct meta *m, int64_t (*now_ms)(void *arg), void *arg)
{
	if (!m->ops->set_clock)
		return -ENOTSUP;
	return m->ops->set_clock(m, now_ms, arg);
}

void meta_kv_clear(struct meta_kv *kv)
{
	if (!kv)
		return;
	free(kv->key);
	free(kv->value);
	memset(kv, 0, sizeof *kv);
}

void meta_kv_free_array(struct meta_kv *kvs, size_t n)
{
	if (!kvs)
		return;
	for (size_t i = 0; i < n; i++)
		meta_kv_clear(&kvs[i]);
	free(kvs);
}
