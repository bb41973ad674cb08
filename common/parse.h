/* Parsing of command-line values. */
#ifndef TRIPLEX_PARSE_H
#define TRIPLEX_PARSE_H

#include <stdint.h>

/* "4096", "64K", "1G", "2TiB": powers of 1024. Returns 0 or -EINVAL
 * (garbage, overflow, or zero). */
int parse_size(const char *s, uint64_t *out);

/* A volume name: 1-63 characters of [A-Za-z0-9._-], not starting with '.'
 * or '-'. Returns 0 or -EINVAL. */
int parse_volume_name(const char *s);

#endif
