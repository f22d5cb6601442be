/* log.h - the broker's log: one line per event, Mosquitto-style ("1732560000: message"),
 * to stderr, stdout and/or a file as log_dest says. Safe to call from any thread. */
#ifndef MIDGE_LOG_H
#define MIDGE_LOG_H

#include <stdbool.h>

/* Levels; each maps to one of Mosquitto's log_type names (error, warning, notice,
 * information, debug). */
enum log_level { LOG_ERR = 0, LOG_WARN = 1, LOG_NOTICE = 2, LOG_INFO = 3, LOG_DEBUG = 4 };

/* Which levels are written (bit 1 << level each), where (to_stdout, to_stderr), and
 * whether lines start with the time. The default: error, warning and notice to stderr,
 * with timestamps. */
void log_configure(unsigned level_mask, bool to_stdout, bool to_stderr, bool timestamp);
void log_set_level(enum log_level level); /* every level up to this one */
/* Also write every line to the file at path (log_dest file), appending, created 0640 when
 * missing; NULL or "" stops writing to a file. Returns 0, or -1 with errno set when the file
 * cannot be opened, and then the file in use (if any) stays. Calling it again with the same
 * path reopens the file (after log rotation) without losing a line of another thread. */
int log_set_file(const char *path);
/* Reopen the file of the last log_set_file (SIGHUP, after log rotation); 0 when there is
 * none. Like log_set_file, for the main thread only. */
int log_reopen(void);
int log_enabled(enum log_level level);
void log_msg(enum log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
