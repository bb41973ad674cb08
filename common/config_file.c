/* The config file of long options (config_file.h), read with inih. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <ini.h>

#include "config_file.h"

struct load_ctx {
	const struct option *opts;
	config_apply_fn apply;
	void *arg;
	char err[512];
};

/* Values are handed to apply as optarg would be, and like argv they must
 * outlive the parse: inih reuses its line buffer. Kept here, reachable
 * from a global, for the life of the process. */
static char **kept;
static size_t nkept;

static const char *keep(const char *s)
{
	char **k = realloc(kept, (nkept + 1) * sizeof *kept);
	char *copy = strdup(s);

	if (!k || !copy) {
		free(copy);
		if (k)
			kept = k;
		return NULL;
	}
	kept = k;
	kept[nkept++] = copy;
	return copy;
}

static const struct option *find_opt(const struct option *opts, const char *name)
{
	for (; opts->name; opts++)
		if (!strcmp(opts->name, name))
			return opts;
	return NULL;
}

/* inih's handler: 0 stops the parse, and inih then returns the line. */
static int on_key(void *user, const char *section, const char *name,
		  const char *value)
{
	struct load_ctx *c = user;
	const struct option *o = find_opt(c->opts, name);
	const char *v;

	if (section[0]) {
		snprintf(c->err, sizeof c->err, "sections ([%s]) are not used: "
			 "write 'option = value' lines only", section);
		return 0;
	}
	/* Exact names only: an abbreviation that getopt would take on the
	 * command line is a typo waiting to change meaning in a file. */
	if (!o) {
		snprintf(c->err, sizeof c->err, "unknown option '%s' (see "
			 "--help for the long option names)", name);
		return 0;
	}
	if (o->has_arg != required_argument) {
		snprintf(c->err, sizeof c->err, "'%s' is not a setting: give it "
			 "on the command line", name);
		return 0;
	}
	if (!value[0]) {
		snprintf(c->err, sizeof c->err, "'%s' has no value", name);
		return 0;
	}
	v = keep(value);
	if (!v) {
		snprintf(c->err, sizeof c->err, "out of memory");
		return 0;
	}
	return c->apply(c->arg, o->val, v, c->err, sizeof c->err) == 0;
}

/* inih reads a line into a buffer of ini_max_line bytes and takes the rest
 * of a longer one as the next line: say so instead, with the right line.
 * Returns the first line too long, or 0. */
static int long_line(FILE *f)
{
	char *buf = NULL;
	size_t cap = 0;
	ssize_t n;
	int line = 0, bad = 0;

	while (!bad && (n = getline(&buf, &cap, f)) >= 0) {
		line++;
		if (n > 0 && buf[n - 1] == '\n')
			n--;
		if (n >= ini_max_line - 1)
			bad = line;
	}
	free(buf);
	rewind(f);
	return bad;
}

int config_file_load(const char *prog, const char *path, bool must_exist,
		     const struct option *opts, config_apply_fn apply, void *arg)
{
	struct load_ctx c = { .opts = opts, .apply = apply, .arg = arg };
	FILE *f = fopen(path, "r");
	int line;

	if (!f) {
		if (errno == ENOENT && !must_exist)
			return 0;
		fprintf(stderr, "%s: config file %s: %s\n", prog, path,
			strerror(errno));
		return -1;
	}
	/* An indented line would otherwise continue the previous value, and
	 * the first error is the one worth reporting. */
	ini_allow_multiline = false;
	ini_stop_on_first_error = true;
	line = long_line(f);
	if (line) {
		fclose(f);
		fprintf(stderr, "%s: %s:%d: line too long (at most %d characters)\n",
			prog, path, line, ini_max_line - 2);
		return -1;
	}
	line = ini_parse_file(f, on_key, &c);
	fclose(f);
	if (line == 0)
		return 0;
	if (line < 0)
		snprintf(c.err, sizeof c.err, "out of memory");
	else if (!c.err[0])
		snprintf(c.err, sizeof c.err, "not an 'option = value' line");
	fprintf(stderr, "%s: %s:%d: %s\n", prog, path, line < 0 ? 0 : line, c.err);
	return -1;
}

static int val_of(const struct option *opts, const char *name)
{
	const struct option *o = find_opt(opts, name);

	return o ? o->val : -1;
}

const char *config_file_from_args(int argc, char **argv,
				  const struct option *opts, int config_val,
				  bool *help_or_version)
{
	int help = val_of(opts, "help"), version = val_of(opts, "version");
	char **copy = malloc(((size_t)argc + 1) * sizeof *copy);
	const char *path = NULL;
	int c;

	*help_or_version = false;
	if (!copy)
		return NULL;
	/* getopt_long permutes what it scans: scan a copy, with getopt's own
	 * rules (abbreviations, --config=FILE), then let the real parse
	 * start afresh (optind 0 reinitialises glibc's getopt). */
	memcpy(copy, argv, ((size_t)argc + 1) * sizeof *copy);
	opterr = 0;
	optind = 0;
	while ((c = getopt_long(argc, copy, "h", opts, NULL)) != -1) {
		if (c == config_val)
			path = optarg;
		else if (c == help || c == version || c == 'h')
			*help_or_version = true;
	}
	optind = 0;
	free(copy);
	return path;
}
