/* How triplexctl finds the metadata store: --meta URL or $TRIPLEX_META. */
#include <stdio.h>
#include <stdlib.h>

#include "ctl.h"

int ctl_meta_open(const char *url, struct meta **out)
{
	char err[256];

	if (!url)
		url = getenv("TRIPLEX_META");
	if (!url)
		return ctl_fail("no metadata store: give --meta sqlite:/path/meta.db "
				"or set TRIPLEX_META");
	if (meta_open(url, out, err, sizeof err) < 0)
		return ctl_fail("cannot open metadata store: %s", err);
	return 0;
}
