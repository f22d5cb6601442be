/* device.h - the sensor device of the ESP32 example, as plain C: no ESP-IDF, no sockets.
 *
 * A device connects to a broker through a libmidge transport, announces itself with a
 * retained "online" on sensors/<id>/status (its will, "offline", replaces it when the
 * connection dies without a DISCONNECT) and takes a reading every interval, connected or
 * not: readings go into a small ring buffer and from there to sensors/<id>/reading at QoS 1
 * (a failed read to sensors/<id>/error), in order and with the time they were taken. The
 * model, the JSON and the buffer are Midge's device module (src/device/), the code
 * midge-sensor runs on a PC. app_main.c runs this on the ESP32, host/host_main.c on a PC.
 */
#ifndef DEVICE_H
#define DEVICE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "device/ring.h"
#include "device/sample.h"
#include "device/sim.h"
#include "midge/midge.h"

#define DEVICE_ID_MAX 32
#define DEVICE_TOPIC_MAX (DEVICE_ID_MAX + 24)
#define DEVICE_BUFFER 16 /* readings kept while offline; the oldest are dropped first */

typedef struct device_config {
    const char *host; /* broker */
    uint16_t port;
    const char *id;                     /* client id and topic level: 1..31 bytes, no / + # */
    uint32_t interval_ms;               /* between readings */
    uint32_t max_readings;              /* stop after this many; 0: never stop */
    uint64_t seed;                      /* of the simulated DHT22 */
    const midge_transport_t *transport; /* the only way to the network; not owned */
    /* Unix time in milliseconds, for the readings' timestamps (SNTP on the ESP32). */
    int64_t (*clock_ms)(void *ud);
    /* Optional observer of events ("connected 1", "reading 3", "acked 3"), for logs and
     * the host test; NULL for none. */
    void (*log)(void *ud, const char *event, uint32_t value);
    void *ud; /* handed to clock_ms and log */
} device_config_t;

typedef struct device {
    midge_client_t *client;
    char id[DEVICE_ID_MAX];
    char reading_topic[DEVICE_TOPIC_MAX];
    char error_topic[DEVICE_TOPIC_MAX];
    char status_topic[DEVICE_TOPIC_MAX];
    const midge_transport_t *transport;
    uint32_t interval_ms;
    uint32_t max_readings;
    int64_t next_reading_ms; /* transport clock; 0: at once */
    uint32_t seq;            /* readings taken so far (failed reads included) */
    uint32_t acked;          /* readings the broker acknowledged (PUBACK) */
    uint32_t connects;       /* accepted CONNACKs */
    uint16_t status_mid;     /* packet id of the last "online" publish */
    sensor_sim_t sim;
    sensor_ring_t ring;
    sensor_sample_t ring_slots[DEVICE_BUFFER];
    int64_t (*clock_ms)(void *ud);                            /* from the config */
    void (*log)(void *ud, const char *event, uint32_t value); /* from the config */
    void *ud;
} device_t;

/* Set up *d (topics, will, reconnect, the sensor model) and start connecting. Returns 0 or
 * a libmidge status (MIDGE_EINVAL for a bad id). A failed first connect is retried by the
 * loop. */
int device_init(device_t *d, const device_config_t *cfg);

/* One turn of the device: wait up to timeout_ms for the broker, handle what arrived, run
 * the timers (keepalive, reconnect), take a reading when one is due and send what the
 * buffer holds while connected. Call it forever. */
int device_loop_step(device_t *d, int timeout_ms);

/* Close the connection without DISCONNECT (the broker then publishes the will) and free. */
void device_cleanup(device_t *d);

#endif
