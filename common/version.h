/* The version of this build and the git revision it was built from. */
#ifndef TRIPLEX_VERSION_H
#define TRIPLEX_VERSION_H

#include <stdio.h>

/* "0.1.0" */
const char *tpx_version(void);
/* `git describe --always --dirty` at build time, or "unknown". */
const char *tpx_git_rev(void);
/* Print "PROG VERSION (git REV)" and a newline to f. */
void tpx_print_version(FILE *f, const char *prog);

#endif
