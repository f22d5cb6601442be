/* host_main.c - the ESP32 example's device on a PC: app_main.c's job without ESP-IDF.
 *
 * Runs device.c with transport_sockets.c and src/device/ (the same files the ESP32
 * builds) against a real broker, and prints each device event as a line ("connected 1",
 * "reading 3", "acked 3") for tests/integration/test_esp32_example.py. It runs until
 * killed: the test kills it with SIGKILL to see the will.
 *
 *   esp32_device HOST PORT ID INTERVAL_MS MAX_READINGS [SEED]
 */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "device.h"
#include "transport_sockets.h"

static void print_event(void *ud, const char *event, uint32_t value)
{
    printf("%s %lu\n", event, (unsigned long)value);
    fflush(stdout);
}

/* What SNTP gives the ESP32: Unix time in milliseconds. */
static int64_t wall_clock_ms(void *ud)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int main(int argc, char **argv)
{
    device_config_t cfg;
    device_t d;

    if (argc != 6 && argc != 7) {
        fprintf(stderr, "usage: %s HOST PORT ID INTERVAL_MS MAX_READINGS [SEED]\n", argv[0]);
        return 2;
    }
    cfg.host = argv[1];
    cfg.port = (uint16_t)atoi(argv[2]);
    cfg.id = argv[3];
    cfg.interval_ms = (uint32_t)strtoul(argv[4], NULL, 10);
    cfg.max_readings = (uint32_t)strtoul(argv[5], NULL, 10);
    cfg.seed = argc == 7 ? strtoull(argv[6], NULL, 10) : (uint64_t)time(NULL);
    cfg.transport = transport_sockets();
    cfg.clock_ms = wall_clock_ms;
    cfg.log = print_event;
    cfg.ud = NULL;
    int rc = device_init(&d, &cfg);
    if (rc) {
        fprintf(stderr, "device_init: %s\n", midge_strerror(rc));
        return 1;
    }
    for (;;) {
        rc = device_loop_step(&d, 100);
        if (rc)
            fprintf(stderr, "device_loop_step: %s\n", midge_strerror(rc));
    }
}
