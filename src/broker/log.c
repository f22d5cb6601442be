/* log.c - see log.h. A single write(2) per line keeps lines from different threads whole. */
#include "log.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* Written before the I/O threads start, read by all of them. */
static atomic_uint level_mask = (1u << LOG_ERR) | (1u << LOG_WARN) | (1u << LOG_NOTICE);
static atomic_bool out_stdout = false, out_stderr = true, with_time = true;
/* The log file's descriptor, -1 for none. A reopen replaces the file under the same
 * descriptor number (dup2), so a thread that has just read the number never writes to a
 * closed or reused descriptor. */
static atomic_int file_fd = -1;
static char file_path[4096]; /* for log_reopen; main thread only */

void log_configure(unsigned mask, bool to_stdout, bool to_stderr, bool timestamp)
{
    atomic_store(&level_mask, mask);
    atomic_store(&out_stdout, to_stdout);
    atomic_store(&out_stderr, to_stderr);
    atomic_store(&with_time, timestamp);
}

void log_set_level(enum log_level level)
{
    atomic_store(&level_mask, (2u << level) - 1);
}

int log_set_file(const char *path)
{
    if (!path || !path[0]) {
        int old = atomic_exchange(&file_fd, -1);
        if (old >= 0)
            close(old);
        file_path[0] = '\0';
        return 0;
    }
    if (strlen(path) >= sizeof(file_path)) {
        errno = ENAMETOOLONG;
        return -1;
    }
    int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
    if (fd < 0)
        return -1;
    if (path != file_path)
        memcpy(file_path, path, strlen(path) + 1);
    int old = atomic_load(&file_fd);
    if (old < 0) {
        atomic_store(&file_fd, fd);
        return 0;
    }
    if (dup3(fd, old, O_CLOEXEC) < 0) {
        int e = errno;
        close(fd);
        errno = e;
        return -1;
    }
    close(fd);
    return 0;
}

int log_reopen(void)
{
    return file_path[0] ? log_set_file(file_path) : 0;
}

int log_enabled(enum log_level level)
{
    return (atomic_load_explicit(&level_mask, memory_order_relaxed) >> level) & 1u;
}

void log_msg(enum log_level level, const char *fmt, ...)
{
    if (!log_enabled(level))
        return;
    char line[1024];
    int n = 0;
    if (atomic_load_explicit(&with_time, memory_order_relaxed))
        n = snprintf(line, sizeof(line), "%ld: ", (long)time(NULL));
    va_list ap;
    va_start(ap, fmt);
    int m = vsnprintf(line + n, sizeof(line) - (size_t)n - 1, fmt, ap);
    va_end(ap);
    if (m < 0)
        return;
    size_t len = (size_t)n + (size_t)m;
    if (len > sizeof(line) - 2)
        len = sizeof(line) - 2;
    line[len++] = '\n';
    if (atomic_load_explicit(&out_stderr, memory_order_relaxed)) {
        ssize_t w = write(STDERR_FILENO, line, len);
        (void)w;
    }
    if (atomic_load_explicit(&out_stdout, memory_order_relaxed)) {
        ssize_t w = write(STDOUT_FILENO, line, len);
        (void)w;
    }
    int fd = atomic_load_explicit(&file_fd, memory_order_acquire);
    if (fd >= 0) {
        ssize_t w = write(fd, line, len);
        (void)w;
    }
}
