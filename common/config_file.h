/* A config file of long options: "data-dir = /var/lib/triplex" sets what
 * "--data-dir /var/lib/triplex" sets. Keys are looked up in the program's
 * own getopt_long table, so there is no second table of options to keep
 * in step with the flags. */
#ifndef TRIPLEX_CONFIG_FILE_H
#define TRIPLEX_CONFIG_FILE_H

#include <getopt.h>
#include <stdbool.h>
#include <stddef.h>

/* Apply one option, as getopt_long's val c with argument arg. Returns 0,
 * or -1 with a one-line reason in err (no program name, no newline). */
typedef int (*config_apply_fn)(void *arg, int c, const char *optarg,
			       char *err, size_t errsz);

/* Read path, apply each "key = value" through apply, in file order.
 * A missing file is fine when !must_exist. An unknown key, a key of an
 * option that takes no argument, a section, a line that is not
 * "key = value" or a value apply refuses is an error: one line
 * "PROG: PATH:LINE: reason" on stderr, -1 returned. Values stay valid for
 * the life of the process. */
int config_file_load(const char *prog, const char *path, bool must_exist,
		     const struct option *opts, config_apply_fn apply, void *arg);

/* The value of --config (or --config=FILE, or an abbreviation) in argv,
 * or NULL; also says whether --help or --version is on the line (those
 * skip the file). argv is not changed. */
const char *config_file_from_args(int argc, char **argv,
				  const struct option *opts, int config_val,
				  bool *help_or_version);

#endif
