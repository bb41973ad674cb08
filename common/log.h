/* Leveled logging to stderr, one line per event. */
#ifndef TRIPLEX_LOG_H
#define TRIPLEX_LOG_H

enum log_level { LOG_ERROR, LOG_WARN, LOG_INFO, LOG_DEBUG };

extern enum log_level log_threshold;

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
