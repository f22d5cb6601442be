/* fuzz_config.c - libFuzzer target for the configuration file parser (src/conf).
 *
 * Each input is written to an in-memory file and loaded as a mosquitto.conf-style file:
 * the parser must accept it or refuse it with a FILE:LINE message, never crash or leak.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "conf/config.h"

/* A refusal names the file and the line ("PATH:LINE: "). An include_dir line may bring in
 * another file (an error there names that file and its line, or that it cannot be opened). */
static int names_file_and_line(const char *err, const char *path)
{
    size_t n = strlen(path);
    const char *p = err;
    if (strncmp(err, path, n) == 0 && err[n] == ':') {
        p = err + n + 1;
    } else {
        p = strchr(err, ':');
        if (!p)
            return 0;
        if (strncmp(p, ": cannot open", 13) == 0)
            return 1;
        p++;
    }
    if (*p < '0' || *p > '9')
        return 0;
    while (*p >= '0' && *p <= '9')
        p++;
    return p[0] == ':' && p[1] == ' ';
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int fd = memfd_create("fuzz-config", MFD_CLOEXEC);
    if (fd < 0)
        return 0;
    if (size && write(fd, data, size) != (ssize_t)size) {
        close(fd);
        return 0;
    }
    char path[64];
    snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
    static config_t cfg;
    config_init(&cfg);
    char err[512];
    err[0] = 0;
    if (config_load_file(&cfg, path, err, sizeof(err)) < 0 && !names_file_and_line(err, path))
        __builtin_trap();
    close(fd);
    return 0;
}
