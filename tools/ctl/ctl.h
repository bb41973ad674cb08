/* triplexctl: one subcommand a file, dispatched from main.c. */
#ifndef TRIPLEX_CTL_H
#define TRIPLEX_CTL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "meta.h"

struct ctl_cmd {
	const char *name;
	int (*fn)(int argc, char **argv);
	const char *help;
};

int volume_main(int argc, char **argv);
int node_main(int argc, char **argv);
int dev_main(int argc, char **argv);

/* help.c: whether arg is -h or --help; whether argv (a whole command
 * line) asks for help (-h/--help anywhere before "--", or `help ...`);
 * print the help of the command argv names to stdout (0), or fail (1)
 * for a command that does not exist. */
bool ctl_is_help(const char *arg);
bool ctl_wants_help(int argc, char **argv);
int ctl_help(int argc, char **argv);
/* Print "triplexctl VERSION (git REV)" to stdout; returns 0. */
int ctl_version(void);

/* size.c: the volume size arg of option opt (parse_block_size), rounded
 * up to 4 KiB with a note on stderr; 0, or 1 after printing why not. */
int ctl_parse_size(const char *opt, const char *arg, uint64_t *out);

/* Print "triplexctl: <msg>" to stderr; returns 1 (the exit code). */
int ctl_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Open the metadata store named by url, or by $TRIPLEX_META if url is
 * NULL. Returns 0, or 1 after printing why not. */
int ctl_meta_open(const char *url, struct meta **out);

/* Take --etcd-cacert/--etcd-cert/--etcd-key out of argv (anywhere after
 * the program name); 0, or 1 after printing why not. */
int ctl_take_tls_options(int *argc, char **argv);

/* triplexd.c: the triplexd beside this triplexctl ($TRIPLEXD overrides),
 * and running it with args (argv[0] is set) to the end: its exit status,
 * or 1 after printing why it could not run. */
void ctl_triplexd_path(char *out, size_t len);
int ctl_run_triplexd(const char *const *args);

#endif
