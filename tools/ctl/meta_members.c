/* Each etcd member of the metadata store's URL asked on its own, for
 * `status`: the store as a whole may answer while a member does not
 * (degraded: one more loss and it stops). */
#include <stdio.h>
#include <string.h>

#include "ctl.h"

/* "etcd://", "http://" or "https://", the host list, "?options" or "". */
static bool split_url(const char *url, char *scheme, size_t slen, char *hosts,
		      size_t hlen, const char **opts)
{
	const char *rest = strstr(url, "://"), *q;

	if (!rest || (strncmp(url, "etcd://", 7) && strncmp(url, "https://", 8) &&
		      strncmp(url, "http://", 7)))
		return false;
	rest += 3;
	snprintf(scheme, slen, "%.*s", (int)(rest - url), url);
	q = strchr(rest, '?');
	*opts = q ? q : "";
	snprintf(hosts, hlen, "%.*s", (int)(q ? (size_t)(q - rest) : strlen(rest)), rest);
	return true;
}

int ctl_meta_members(const char *url, struct ctl_member *out, size_t max,
		     size_t *n)
{
	char scheme[16], hosts[1024], one[1400], *save = NULL;
	const char *opts;

	*n = 0;
	if (!url || !split_url(url, scheme, sizeof scheme, hosts, sizeof hosts, &opts))
		return 0;
	for (char *h = strtok_r(hosts, ",", &save); h && *n < max;
	     h = strtok_r(NULL, ",", &save)) {
		struct ctl_member *mb = &out[(*n)++];
		const char *used;
		struct meta *m;

		snprintf(mb->endpoint, sizeof mb->endpoint, "%s", h);
		snprintf(one, sizeof one, "%s%s%s", scheme, h, opts);
		mb->err[0] = '\0';
		mb->ok = ctl_meta_try_open(one, &m, &used, mb->err, sizeof mb->err) == 0;
		if (mb->ok)
			meta_close(m);
	}
	return 0;
}
