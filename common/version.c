#include "version.h"

#include "tpx_version.h"  /* generated in the build tree */

const char *tpx_version(void)
{
	return TPX_VERSION;
}

const char *tpx_git_rev(void)
{
	return TPX_GIT_REV;
}

void tpx_print_version(FILE *f, const char *prog)
{
	fprintf(f, "%s %s (git %s)\n", prog, TPX_VERSION, TPX_GIT_REV);
}
