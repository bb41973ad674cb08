#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

enum log_level log_threshold = LOG_INFO;
enum log_format log_format = LOG_TEXT;
static const char *log_node;

static const char *const level_names[] = { "error", "warn", "info", "debug" };

int log_level_parse(const char *s)
{
	for (int i = 0; i < 4; i++)
		if (strcmp(s, level_names[i]) == 0)
			return i;
	return -1;
}

int log_format_parse(const char *s)
{
	if (strcmp(s, "text") == 0)
		return LOG_TEXT;
	if (strcmp(s, "json") == 0)
		return LOG_JSON;
	return -1;
}

void log_set_node(const char *node)
{
	log_node = node;
}

/* s as the inside of a JSON string, cut to fit out (size n > 0). */
static void json_escape(char *out, size_t n, const char *s)
{
	size_t o = 0;

	for (; *s && o + 7 < n; s++) {
		unsigned char c = (unsigned char)*s;

		if (c == '"' || c == '\\') {
			out[o++] = '\\';
			out[o++] = (char)c;
		} else if (c < 0x20) {
			o += (size_t)snprintf(out + o, n - o, "\\u%04x", c);
		} else {
			out[o++] = (char)c;
		}
	}
	out[o] = '\0';
}

void log_msg(enum log_level lvl, const char *fmt, ...)
{
	char msg[1024], ts_s[96], esc[2048], node[160];
	struct timespec ts;
	struct tm tm;
	va_list ap;

	if (lvl > log_threshold)
		return;
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	snprintf(ts_s, sizeof ts_s, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ",
		 tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
		 tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000000);
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	/* One write per line so lines from several processes do not mix. */
	if (log_format == LOG_JSON) {
		json_escape(esc, sizeof esc, msg);
		node[0] = '\0';
		if (log_node) {
			char n2[128];

			json_escape(n2, sizeof n2, log_node);
			snprintf(node, sizeof node, "\"node\":\"%s\",", n2);
		}
		fprintf(stderr, "{\"ts\":\"%s\",\"level\":\"%s\",%s\"msg\":\"%s\"}\n",
			ts_s, level_names[lvl], node, esc);
	} else if (log_node) {
		fprintf(stderr, "%s %s node=%s %s\n", ts_s, level_names[lvl], log_node, msg);
	} else {
		fprintf(stderr, "%s %s %s\n", ts_s, level_names[lvl], msg);
	}
}
