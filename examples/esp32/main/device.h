/* device.h - the sensor device of the ESP32 example, as plain C: no ESP-IDF, no sockets.
 *
 * A device connects to a broker through a libmidge transport, announces itself with a
 * retained "online" on sensors/<id>/status (its will, "offline", replaces it when the
 * connection dies without a DISCONNECT) and publishes a reading to sensors/<id>/reading
 * at QoS 1 every interval. app_main.c runs it on the ESP32, host/host_main.c on a PC.
 */
#ifndef DEVICE_H
#define DEVICE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "midge/midge.h"

#define DEVICE_ID_MAX 32
#define DEVICE_TOPIC_MAX (DEVICE_ID_MAX + 24)

typedef struct device_config {
    const char *host; /* broker */
    uint16_t port;
    const char *id;                     /* client id and topic level: 1..31 bytes, no / + # */
    uint32_t interval_ms;               /* between readings */
    uint32_t max_readings;              /* stop publishing after this many; 0: never stop */
    const midge_transport_t *transport; /* the only way to the network; not owned */
    /* Optional observer of events ("connected 1", "reading 3", "acked 3"), for logs and
     * the host test; NULL for none. */
    void (*log)(void *ud, const char *event, uint32_t value);
    void *log_ud;
} device_config_t;

typedef struct device {
    midge_client_t *client;
    char id[DEVICE_ID_MAX];
    char reading_topic[DEVICE_TOPIC_MAX];
    char status_topic[DEVICE_TOPIC_MAX];
    const midge_transport_t *transport;
    uint32_t interval_ms;
    uint32_t max_readings;
    int64_t next_reading_ms; /* transport clock; 0: as soon as connected */
    uint32_t seq;            /* readings queued so far */
    uint32_t acked;          /* readings the broker acknowledged (PUBACK) */
    uint32_t dropped;        /* readings refused by the outgoing queue (long offline) */
    uint32_t connects;       /* accepted CONNACKs */
    uint16_t status_mid;     /* packet id of the last "online" publish */
    void (*log)(void *ud, const char *event, uint32_t value); /* from the config */
    void *log_ud;
} device_t;

/* Set up *d (status topic, will, reconnect) and start connecting. Returns 0 or a libmidge
 * status (MIDGE_EINVAL for a bad id). A failed first connect is retried by the loop. */
int device_init(device_t *d, const device_config_t *cfg);

/* One turn of the device: wait up to timeout_ms for the broker, handle what arrived, run
 * the timers (keepalive, reconnect) and queue a reading when one is due. Call it forever. */
int device_loop_step(device_t *d, int timeout_ms);

/* Close the connection without DISCONNECT (the broker then publishes the will) and free. */
void device_cleanup(device_t *d);

/* The JSON of reading seq: {"id":"<id>","seq":<seq>,"temp_c":<t>} with a simulated
 * temperature t = 20.0 + (seq % 10) * 0.5. Returns its length, or 0 if cap is too small. */
size_t device_reading_format(char *buf, size_t cap, const char *id, uint32_t seq);

#endif
