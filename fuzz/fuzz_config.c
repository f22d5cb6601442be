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
    if (config_load_file(&cfg, path, err, sizeof(err)) < 0) {
        /* A refusal names the file and the line. */
        if (strncmp(err, path, strlen(path)) != 0 || err[strlen(path)] != ':')
            __builtin_trap();
    }
    close(fd);
    return 0;
}
