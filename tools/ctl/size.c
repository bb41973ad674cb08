/* Volume sizes on triplexctl's command line (volume create, volume resize,
 * dev up): parse_block_size's units, and a note on stderr when a size is
 * rounded up to a multiple of 4 KiB. */
#include <inttypes.h>
#include <stdio.h>

#include "ctl.h"
#include "parse.h"

int ctl_parse_size(const char *opt, const char *arg, uint64_t *out)
{
	uint64_t given;
	int r = arg ? parse_block_size(arg, out, &given) : -1;

	if (r < 0)
		return ctl_fail("%s wants a size such as 10G, 512MiB or 2GB "
				"(bytes; K M G T P and KiB MiB GiB TiB PiB are "
				"powers of 1024, KB MB GB TB PB of 1000), got '%s'",
				opt, arg ? arg : "");
	if (r > 0)
		fprintf(stderr, "triplexctl: note: %s %s is %" PRIu64 " bytes, not "
			"a multiple of 4 KiB: rounded up to %" PRIu64 " bytes\n",
			opt, arg, given, *out);
	return 0;
}
