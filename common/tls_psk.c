/* The PSK file: "identity:hexkey" lines, as nbdkit and qemu-nbd read. */
#include <stdio.h>
#include <string.h>

#include "tls.h"

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* One line (without its newline) into e; NULL or what is wrong. */
static const char *parse_line(const char *p, size_t n, struct tls_psk *e)
{
	const char *colon = memchr(p, ':', n);
	size_t idlen, hexlen;

	if (!colon)
		return "no ':' between identity and key";
	idlen = (size_t)(colon - p);
	hexlen = n - idlen - 1;
	if (idlen == 0 || idlen > TLS_PSK_MAX_IDENTITY)
		return "identity empty or longer than 128 bytes";
	if (memchr(p, '\0', idlen))
		return "NUL in identity";
	if (hexlen == 0 || hexlen % 2 || hexlen / 2 > TLS_PSK_MAX_KEY)
		return "key is not 1 to 64 bytes of hex";
	for (size_t i = 0; i < hexlen / 2; i++) {
		int hi = hexval(colon[1 + 2 * i]), lo = hexval(colon[2 + 2 * i]);

		if (hi < 0 || lo < 0)
			return "key is not hex";
		e->key[i] = (uint8_t)(hi << 4 | lo);
	}
	memcpy(e->identity, p, idlen);
	e->identity[idlen] = '\0';
	e->key_len = hexlen / 2;
	return NULL;
}

static bool duplicate(const struct tls_psk *out, int n, const char *id)
{
	for (int i = 0; i < n; i++)
		if (!strcmp(out[i].identity, id))
			return true;
	return false;
}

int tls_psk_parse(const char *text, size_t len, struct tls_psk *out,
		  size_t max, char *err, size_t errlen)
{
	int n = 0;
	unsigned lineno = 0;
	size_t pos = 0;

	while (pos < len) {
		const char *nl = memchr(text + pos, '\n', len - pos);
		size_t end = nl ? (size_t)(nl - text) : len;
		size_t llen = end - pos;
		const char *why;

		lineno++;
		if (llen && text[end - 1] == '\r')
			llen--;
		if (llen && text[pos] != '#') {
			if ((size_t)n == max) {
				snprintf(err, errlen, "line %u: more than %zu keys",
					 lineno, max);
				return -1;
			}
			why = parse_line(text + pos, llen, &out[n]);
			if (!why && duplicate(out, n, out[n].identity))
				why = "identity given twice";
			if (why) {
				snprintf(err, errlen, "line %u: %s", lineno, why);
				return -1;
			}
			n++;
		}
		pos = end + 1;
	}
	return n;
}
