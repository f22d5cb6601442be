/* log.h - the broker's log: one line per event, to stderr, Mosquitto-style
 * ("1732560000: message"). Safe to call from any thread. */
#ifndef MIDGE_LOG_H
#define MIDGE_LOG_H

enum log_level { LOG_ERR = 0, LOG_WARN = 1, LOG_NOTICE = 2, LOG_INFO = 3, LOG_DEBUG = 4 };

/* Lines above this level are dropped (default LOG_NOTICE; -v raises it to LOG_DEBUG). */
void log_set_level(enum log_level level);
int log_enabled(enum log_level level);
void log_msg(enum log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
