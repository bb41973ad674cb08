/* How triplexctl finds the metadata store: --meta URL or $TRIPLEX_META,
 * with the etcd TLS files of --etcd-cacert/--etcd-cert/--etcd-key (options
 * of every command, taken out of argv by ctl_take_tls_options) or of
 * $TRIPLEX_ETCD_CACERT, $TRIPLEX_ETCD_CERT, $TRIPLEX_ETCD_KEY. */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl.h"

static const char *tls_opt[3];
static const char *const tls_name[3] = { "--etcd-cacert", "--etcd-cert",
					 "--etcd-key" };
static const char *const tls_env[3] = { "TRIPLEX_ETCD_CACERT",
					"TRIPLEX_ETCD_CERT",
					"TRIPLEX_ETCD_KEY" };

/* "--etcd-cert F" or "--etcd-cert=F": the option's index, and *val. */
static int tls_match(const char *arg, const char *next, const char **val,
		     int *used)
{
	for (int i = 0; i < 3; i++) {
		size_t n = strlen(tls_name[i]);

		if (strncmp(arg, tls_name[i], n))
			continue;
		if (arg[n] == '=') {
			*val = arg + n + 1;
			*used = 1;
			return i;
		}
		if (arg[n] == '\0') {
			*val = next;
			*used = 2;
			return i;
		}
	}
	return -1;
}

int ctl_take_tls_options(int *argc, char **argv)
{
	int out = 0;

	for (int i = 0; i < *argc;) {
		const char *val;
		int used, k = tls_match(argv[i], i + 1 < *argc ? argv[i + 1] :
					NULL, &val, &used);

		if (k < 0) {
			argv[out++] = argv[i++];
			continue;
		}
		if (!val || !*val)
			return ctl_fail("%s wants a file", tls_name[k]);
		tls_opt[k] = val;
		i += used;
	}
	*argc = out;
	argv[out] = NULL;
	return 0;
}

/* create: a sqlite file may be created (dev up); else it must exist. */
static int meta_try_open(const char *url, bool create, struct meta **out,
			 const char **used, char *err, size_t errlen)
{
	const char *tls[3];
	char *full;
	int r;

	if (!url)
		url = getenv("TRIPLEX_META");
	*used = url;
	if (!url) {
		snprintf(err, errlen, "no metadata store: give --meta "
			 "sqlite:/path/meta.db (or etcd://host:port,...) or set "
			 "TRIPLEX_META");
		return -1;
	}
	for (int i = 0; i < 3; i++)
		tls[i] = tls_opt[i] ? tls_opt[i] : getenv(tls_env[i]);
	full = meta_url_with_tls(url, tls[0], tls[1], tls[2]);
	if (!full) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	r = create ? meta_open(full, out, err, errlen) :
		     meta_open_existing(full, out, err, errlen);
	free(full);
	return r < 0 ? -1 : 0;
}

int ctl_meta_try_open(const char *url, struct meta **out, const char **used,
		      char *err, size_t errlen)
{
	return meta_try_open(url, false, out, used, err, errlen);
}

static int meta_open_or_fail(const char *url, bool create, struct meta **out)
{
	const char *used;
	char err[512];

	if (meta_try_open(url, create, out, &used, err, sizeof err) == 0)
		return 0;
	if (!used)
		return ctl_fail("%s", err);
	return ctl_fail("cannot open metadata store: %s", err);
}

int ctl_meta_open(const char *url, struct meta **out)
{
	return meta_open_or_fail(url, false, out);
}

int ctl_meta_create(const char *url, struct meta **out)
{
	return meta_open_or_fail(url, true, out);
}
