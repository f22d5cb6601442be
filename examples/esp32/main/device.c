/* device.c - the logic of the ESP32 example: status, will and periodic QoS 1 readings.
 *
 * Everything the device says goes through libmidge (midge_client_*), and libmidge reaches
 * the network only through the transport table given in the configuration. Nothing here
 * depends on ESP-IDF, so the host build runs this exact file against a real broker.
 */
#include "device.h"

#include <stdio.h>
#include <string.h>

static const char ONLINE[] = "online";
static const char OFFLINE[] = "offline";

static void note(device_t *d, const char *event, uint32_t value)
{
    if (d->log)
        d->log(d->log_ud, event, value);
}

size_t device_reading_format(char *buf, size_t cap, const char *id, uint32_t seq)
{
    unsigned tenths = 200 + (seq % 10) * 5; /* integers only: no float printf needed */
    int n = snprintf(buf, cap, "{\"id\":\"%s\",\"seq\":%lu,\"temp_c\":%u.%u}", id,
                     (unsigned long)seq, tenths / 10, tenths % 10);
    return n > 0 && (size_t)n < cap ? (size_t)n : 0;
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
    int rc = midge_client_publish(c, d->status_topic, ONLINE, sizeof ONLINE - 1, 1, true, NULL,
                                  &d->status_mid);
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
    if (idn == 0 || idn >= DEVICE_ID_MAX || strpbrk(cfg->id, "/+#") || !cfg->transport ||
        cfg->interval_ms == 0)
        return MIDGE_EINVAL;
    memcpy(d->id, cfg->id, idn + 1);
    snprintf(d->reading_topic, sizeof d->reading_topic, "sensors/%s/reading", d->id);
    snprintf(d->status_topic, sizeof d->status_topic, "sensors/%s/status", d->id);
    d->transport = cfg->transport;
    d->interval_ms = cfg->interval_ms;
    d->max_readings = cfg->max_readings;
    d->log = cfg->log;
    d->log_ud = cfg->log_ud;

    midge_options_init(&o);
    o.host = cfg->host;
    o.port = cfg->port;
    o.client_id = d->id;
    o.keepalive = 30;
    o.will_topic = d->status_topic;
    o.will_payload = (const uint8_t *)OFFLINE;
    o.will_payload_len = sizeof OFFLINE - 1;
    o.will_qos = 1;
    o.will_retain = true;
    o.reconnect = true;
    o.reconnect_min_ms = 1000;
    o.reconnect_max_ms = 30000;
    o.connect_timeout_ms = 5000;
    o.max_queued = 16; /* a small device keeps a few readings, not a backlog */
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

int device_loop_step(device_t *d, int timeout_ms)
{
    int64_t now = d->transport->now_ms(d->transport->ctx);
    bool due = midge_client_is_connected(d->client) && now >= d->next_reading_ms &&
               (d->max_readings == 0 || d->seq < d->max_readings);

    if (due) {
        char json[96];
        size_t n = device_reading_format(json, sizeof json, d->id, d->seq + 1);
        int rc = midge_client_publish(d->client, d->reading_topic, json, n, 1, false, NULL, NULL);
        if (rc == MIDGE_OK) {
            d->seq++;
            note(d, "reading", d->seq);
        } else {
            d->dropped++;
            note(d, "dropped", d->dropped);
        }
        d->next_reading_ms = now + d->interval_ms;
        timeout_ms = 0; /* send it in this turn */
    } else if (midge_client_is_connected(d->client) && d->next_reading_ms > now &&
               d->next_reading_ms - now < timeout_ms) {
        timeout_ms = (int)(d->next_reading_ms - now);
    }
    return midge_client_step(d->client, timeout_ms);
}

void device_cleanup(device_t *d)
{
    midge_client_free(d->client);
    d->client = NULL;
}
