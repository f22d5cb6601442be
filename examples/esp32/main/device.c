/* device.c - the logic of the ESP32 example: status, will, readings taken on schedule and
 * buffered while offline.
 *
 * Everything the device says goes through libmidge (midge_client_*), and libmidge reaches
 * the network only through the transport table given in the configuration. The sensor
 * model, the payloads and the buffer are src/device/ (sensor_*), plain freestanding C.
 * Nothing here depends on ESP-IDF, so the host build runs this exact file against a real
 * broker.
 */
#include "device.h"
#include "device/presence.h"

#include <string.h>

#define WINDOW 4 /* readings handed to libmidge and not yet acknowledged */

static void note(device_t *d, const char *event, uint32_t value)
{
    if (d->log)
        d->log(d->ud, event, value);
}

/* Every accepted connection announces the device again: after a lost connection the
 * broker has published the will and "offline" is the retained status. */
static void on_connect(midge_client_t *c, void *ud, uint8_t reason, bool session_present,
                       const midge_props_t *props)
{
    device_t *d = ud;
    if (reason != 0) {
        note(d, "refused", reason);
        return;
    }
    d->connects++;
    note(d, "connected", d->connects);
    int rc = midge_client_publish(c, d->status_topic, SENSOR_STATUS_ONLINE,
                                  sizeof SENSOR_STATUS_ONLINE - 1, 1, true, NULL, &d->status_mid);
    if (rc)
        note(d, "status-failed", (uint32_t)-rc);
}

static void on_disconnect(midge_client_t *c, void *ud, int reason)
{
    note(ud, "disconnected", (uint32_t)reason);
}

static void on_publish(midge_client_t *c, void *ud, uint16_t mid, uint8_t reason)
{
    device_t *d = ud;
    if (reason >= 0x80) {
        note(d, "publish-refused", reason);
        return;
    }
    if (mid == d->status_mid) {
        note(d, "status-acked", d->connects);
        return;
    }
    d->acked++;
    note(d, "acked", d->acked);
}

int device_init(device_t *d, const device_config_t *cfg)
{
    midge_options_t o;
    midge_callbacks_t cb;
    size_t idn = cfg->id ? strlen(cfg->id) : 0;
    int rc;

    memset(d, 0, sizeof *d);
    if (idn == 0 || idn >= DEVICE_ID_MAX || !sensor_id_valid(cfg->id) || !cfg->transport ||
        !cfg->clock_ms || cfg->interval_ms == 0)
        return MIDGE_EINVAL;
    memcpy(d->id, cfg->id, idn + 1);
    if (!sensor_topic(d->reading_topic, sizeof d->reading_topic, "sensors", d->id, "reading") ||
        !sensor_topic(d->error_topic, sizeof d->error_topic, "sensors", d->id, "error") ||
        !sensor_topic(d->status_topic, sizeof d->status_topic, "sensors", d->id, "status"))
        return MIDGE_EINVAL;
    d->transport = cfg->transport;
    d->interval_ms = cfg->interval_ms;
    d->max_readings = cfg->max_readings;
    d->clock_ms = cfg->clock_ms;
    d->log = cfg->log;
    d->ud = cfg->ud;
    sensor_sim_init(&d->sim, cfg->seed);
    sensor_ring_init(&d->ring, d->ring_slots, DEVICE_BUFFER);

    midge_options_init(&o);
    o.host = cfg->host;
    o.port = cfg->port;
    o.client_id = d->id;
    o.keepalive = 30;
    sensor_presence_will(&o, d->status_topic);
    o.reconnect = true;
    o.reconnect_min_ms = 1000;
    o.reconnect_max_ms = 30000;
    o.connect_timeout_ms = 5000;
    o.max_queued = WINDOW + 4; /* the window and the status: the backlog is in the ring */
    o.max_packet_size = 4096;
    o.transport = cfg->transport;
    rc = midge_client_new(&o, &d->client);
    if (rc)
        return rc;
    memset(&cb, 0, sizeof cb);
    cb.on_connect = on_connect;
    cb.on_disconnect = on_disconnect;
    cb.on_publish = on_publish;
    midge_client_set_callbacks(d->client, &cb, d);
    /* With reconnect on, a failure here is retried by midge_client_misc: not fatal. */
    rc = midge_client_connect(d->client);
    if (rc)
        note(d, "connect-failed", (uint32_t)-rc);
    return 0;
}

/* Take a reading into the ring. The simulated room follows the UTC day (a board knows no
 * time zone). */
static void take_reading(device_t *d)
{
    sensor_sample_t s;
    int64_t now = d->clock_ms(d->ud);
    float tod = (float)(now % 86400000) / 1000.0f;
    d->seq++;
    sensor_sim_read(&d->sim, tod, d->seq > 1 ? (float)d->interval_ms / 1000.0f : 0.0f, now, d->seq,
                    &s);
    uint64_t dropped = d->ring.dropped;
    sensor_ring_push(&d->ring, &s);
    note(d, s.error[0] ? "failed-read" : "reading", d->seq);
    if (d->ring.dropped != dropped)
        note(d, "dropped", (uint32_t)d->ring.dropped);
}

/* Hand buffered readings to libmidge, oldest first, while connected. */
static void send_buffered(device_t *d)
{
    const sensor_sample_t *s;
    while (midge_client_is_connected(d->client) && midge_client_pending(d->client) < WINDOW &&
           (s = sensor_ring_peek(&d->ring))) {
        char json[SENSOR_JSON_MAX];
        size_t n = sensor_sample_json(json, sizeof json, d->id, s);
        const char *topic = s->error[0] ? d->error_topic : d->reading_topic;
        if (n &&
            midge_client_publish(d->client, topic, json, n, 1, false, NULL, NULL) == MIDGE_EFULL)
            break;
        sensor_ring_pop(&d->ring);
    }
}

int device_loop_step(device_t *d, int timeout_ms)
{
    int64_t now = d->transport->now_ms(d->transport->ctx);
    bool more = d->max_readings == 0 || d->seq < d->max_readings;

    if (more && now >= d->next_reading_ms) {
        take_reading(d);
        d->next_reading_ms = now + d->interval_ms;
        more = d->max_readings == 0 || d->seq < d->max_readings;
    }
    send_buffered(d);
    if (more && d->next_reading_ms - now < timeout_ms)
        timeout_ms = d->next_reading_ms > now ? (int)(d->next_reading_ms - now) : 0;
    return midge_client_step(d->client, timeout_ms);
}

void device_cleanup(device_t *d)
{
    midge_client_free(d->client);
    d->client = NULL;
}
