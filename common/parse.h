/* Parsing of command-line values. */
#ifndef TRIPLEX_PARSE_H
#define TRIPLEX_PARSE_H

#include <stdint.h>

#define PARSE_BLOCK 4096u  /* what volume sizes are a multiple of */

/* A size in bytes: "4096", "4096B"; K, M, G, T, P, E (either case) alone
 * or with "iB" are powers of 1024 ("64K", "2TiB"), with "B" powers of
 * 1000 ("2GB" is 2000000000). Returns 0 or -EINVAL (garbage, overflow, or
 * zero). */
int parse_size(const char *s, uint64_t *out);

/* A volume size: parse_size, rounded up to a multiple of PARSE_BLOCK.
 * *given is the size as written. Returns 0, 1 if it was rounded (the
 * caller says so), or -EINVAL. */
int parse_block_size(const char *s, uint64_t *out, uint64_t *given);

/* A volume name: 1-63 characters of [A-Za-z0-9._-], not starting with '.'
 * or '-'. Returns 0 or -EINVAL. */
int parse_volume_name(const char *s);

#endif
