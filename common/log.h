/* Leveled logging to stderr, one line per event. */
#ifndef TRIPLEX_LOG_H
#define TRIPLEX_LOG_H

enum log_level { LOG_ERROR, LOG_WARN, LOG_INFO, LOG_DEBUG };

extern enum log_level log_threshold;

/* --log-format: text lines, or one JSON object a line for collectors
 * ({"ts":..., "level":..., "node":..., "msg":...}). */
enum log_format { LOG_TEXT, LOG_JSON };
extern enum log_format log_format;
int log_format_parse(const char *s);

/* This process's node id, named in every line (NULL: none). The string
 * must outlive the process's logging. */
void log_set_node(const char *node);

/* Parse "error", "warn", "info" or "debug"; returns -1 if unknown. */
int log_level_parse(const char *s);

void log_msg(enum log_level lvl, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

#define log_error(...) log_msg(LOG_ERROR, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_WARN, __VA_ARGS__)
#define log_info(...) log_msg(LOG_INFO, __VA_ARGS__)
#define log_debug(...)                                   \
	do {                                             \
		if (log_threshold >= LOG_DEBUG)          \
			log_msg(LOG_DEBUG, __VA_ARGS__); \
	} while (0)

#endif
