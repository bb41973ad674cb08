#include "parse.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* The multiplier of a size suffix: none or "B" is bytes; K, M, G, T, P, E
 * (either case) alone or with "iB" are powers of 1024, with "B" powers of
 * 1000. 0 for anything else. */
static uint64_t suffix_mult(const char *s)
{
	static const char units[] = "KMGTPE";
	const char *u;
	uint64_t base, mult = 1;

	if (*s == '\0' || !strcmp(s, "B"))
		return 1;
	u = strchr(units, toupper((unsigned char)*s));
	if (!u)
		return 0;
	s++;
	if (!strcmp(s, "") || !strcmp(s, "iB") || !strcmp(s, "ib"))
		base = 1024;
	else if (!strcmp(s, "B"))
		base = 1000;
	else
		return 0;
	for (const char *p = units; p <= u; p++)
		mult *= base;
	return mult;
}

int parse_size(const char *s, uint64_t *out)
{
	char *end;
	unsigned long long v;
	uint64_t mult;

	if (!s || !isdigit((unsigned char)*s))
		return -EINVAL;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || v == 0)
		return -EINVAL;
	mult = suffix_mult(end);
	if (mult == 0 || v > UINT64_MAX / mult)
		return -EINVAL;
	*out = (uint64_t)v * mult;
	return 0;
}

int parse_block_size(const char *s, uint64_t *out, uint64_t *given)
{
	uint64_t v;

	if (parse_size(s, &v) < 0 || v > UINT64_MAX - (PARSE_BLOCK - 1))
		return -EINVAL;
	*given = v;
	*out = (v + PARSE_BLOCK - 1) / PARSE_BLOCK * PARSE_BLOCK;
	return *out != v;
}

int parse_volume_name(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > 63 || s[0] == '.' || s[0] == '-')
		return -EINVAL;
	for (size_t i = 0; i < n; i++)
		if (!isalnum((unsigned char)s[i]) && !strchr("._-", s[i]))
			return -EINVAL;
	return 0;
}
