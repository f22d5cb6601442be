/* client.c - the libmidge protocol engine: one MQTT 3.1.1/5.0 connection to a broker.
 *
 * Bytes come in through the transport, are framed and decoded by the codec (src/mqtt) and
 * drive the state machine: CONNACK, the QoS 1/2 flows in both directions, SUBACK, keepalive.
 * Outgoing PUBLISHes live in one FIFO queue from midge_client_publish until acknowledged,
 * which makes the offline queue, the in-flight window and resend-on-reconnect one structure.
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "client/client_int.h"

#define READ_CHUNK 16384
#define READS_PER_CALL 16 /* a flood from the broker cannot keep read() from returning */

static void lost(midge_client_t *c, int reason);

/* ---- small helpers --------------------------------------------------------------- */

int64_t client_now(midge_client_t *c)
{
    if (c->tr->now_ms)
        return c->tr->now_ms(c->tr->ctx);
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static char *dup_str(const char *s)
{
    return s ? strdup(s) : NULL;
}

static uint8_t *dup_bytes(const void *p, size_t n)
{
    uint8_t *d = malloc(n ? n : 1);
    if (d && n)
        memcpy(d, p, n);
    return d;
}

static bool bit_get(const uint8_t *set, uint16_t i)
{
    return set[i >> 3] & (1u << (i & 7));
}

static void bit_put(uint8_t *set, uint16_t i, bool on)
{
    if (on)
        set[i >> 3] |= (uint8_t)(1u << (i & 7));
    else
        set[i >> 3] &= (uint8_t) ~(1u << (i & 7));
}

static mqtt_str_t cstr(const char *s)
{
    mqtt_str_t r = {(const uint8_t *)s, s ? (uint32_t)strlen(s) : 0};
    return r;
}

/* Encode the properties of *mp as a block of entries (no length prefix) into a new buffer:
 * *out (NULL when empty) and *n. 0 or MIDGE_ENOMEM / MIDGE_EINVAL. */
static int props_build(const midge_props_t *mp, uint8_t **out, size_t *n)
{
    *out = NULL;
    *n = 0;
    if (!mp)
        return 0;
    size_t user_n = 0;
    for (size_t i = 0; i < mp->user_count; i++) {
        if (!mp->user[i].name || !mp->user[i].value)
            return MIDGE_EINVAL;
        user_n += 5 + strlen(mp->user[i].name) + strlen(mp->user[i].value);
    }
    uint8_t *user = user_n ? malloc(user_n) : NULL;
    if (user_n && !user)
        return MIDGE_ENOMEM;
    size_t w = 0;
    for (size_t i = 0; i < mp->user_count; i++) {
        const char *k = mp->user[i].name, *v = mp->user[i].value;
        w += mqtt_prop_user_encode(user + w, (const uint8_t *)k, (uint16_t)strlen(k),
                                   (const uint8_t *)v, (uint16_t)strlen(v));
    }
    mqtt_props_t pr;
    mqtt_props_init(&pr);
    if (mp->content_type) {
        pr.content_type = cstr(mp->content_type);
        MQTT_PROP_SET(&pr, MQTT_PROP_CONTENT_TYPE);
    }
    if (mp->response_topic) {
        pr.response_topic = cstr(mp->response_topic);
        MQTT_PROP_SET(&pr, MQTT_PROP_RESPONSE_TOPIC);
    }
    if (mp->correlation) {
        pr.correlation_data.p = mp->correlation;
        pr.correlation_data.n = (uint32_t)mp->correlation_len;
        MQTT_PROP_SET(&pr, MQTT_PROP_CORRELATION_DATA);
    }
    if (mp->has_message_expiry) {
        pr.message_expiry_interval = mp->message_expiry;
        MQTT_PROP_SET(&pr, MQTT_PROP_MESSAGE_EXPIRY_INTERVAL);
    }
    if (mp->payload_format == 0 || mp->payload_format == 1) {
        pr.payload_format_indicator = (uint8_t)mp->payload_format;
        MQTT_PROP_SET(&pr, MQTT_PROP_PAYLOAD_FORMAT_INDICATOR);
    }
    pr.extra.p = user;
    pr.extra.n = (uint32_t)w;
    size_t total = mqtt_props_size(&pr);
    int rc = 0;
    if (total) {
        *out = malloc(total);
        if (!*out)
            rc = MIDGE_ENOMEM;
        else
            *n = mqtt_props_encode(*out, &pr);
    }
    free(user);
    return rc;
}

/* Properties to hand to an encoder: already-encoded entries carried verbatim. */
static mqtt_props_t props_raw(const uint8_t *p, size_t n)
{
    mqtt_props_t pr;
    mqtt_props_init(&pr);
    pr.extra.p = p;
    pr.extra.n = (uint32_t)n;
    return pr;
}

/* ---- output ----------------------------------------------------------------------- */

/* Room for n more bytes at the end of the output buffer. */
static uint8_t *out_reserve(midge_client_t *c, size_t n)
{
    if (c->out_off && c->out_off == c->out_len)
        c->out_off = c->out_len = 0;
    if (c->out_len + n > c->out_cap) {
        size_t cap = c->out_cap ? c->out_cap : 4096;
        while (cap < c->out_len + n)
            cap *= 2;
        uint8_t *p = realloc(c->out, cap);
        if (!p)
            return NULL;
        c->out = p;
        c->out_cap = cap;
    }
    return c->out + c->out_len;
}

/* Append a packet produced by an encoder call (size first, then write). */
#define OUT_PACKET(c, call_with_buf_cap)                                                           \
    do {                                                                                           \
        uint8_t *buf = NULL;                                                                       \
        size_t cap = 0;                                                                            \
        size_t need_ = (call_with_buf_cap);                                                        \
        if (need_ == 0)                                                                            \
            return MIDGE_EINVAL;                                                                   \
        buf = out_reserve(c, need_);                                                               \
        if (!buf)                                                                                  \
            return MIDGE_ENOMEM;                                                                   \
        cap = need_;                                                                               \
        c->out_len += (call_with_buf_cap);                                                         \
    } while (0)

static int send_ack(midge_client_t *c, uint8_t type, uint16_t id, uint8_t reason)
{
    uint8_t v = (uint8_t)c->o.version;
    OUT_PACKET(c, mqtt_ack_encode(buf, cap, v, type, id, reason, NULL));
    return 0;
}

static int send_ping(midge_client_t *c)
{
    OUT_PACKET(c, mqtt_empty_encode(buf, cap, MQTT_PINGREQ));
    return 0;
}

/* Outbound topic alias for m's topic on this connection: *send_topic false when the alias
 * alone stands for the topic. 0 when no alias is used. */
static uint16_t alias_out(midge_client_t *c, const out_msg_t *m, bool *send_topic)
{
    *send_topic = true;
    if (!c->alias_out_max)
        return 0;
    for (uint16_t a = 1; a <= c->alias_out_max; a++) {
        if (!c->aliases_out[a]) {
            c->aliases_out[a] = strdup(m->topic);
            return c->aliases_out[a] ? a : 0;
        }
        if (!strcmp(c->aliases_out[a], m->topic)) {
            *send_topic = false;
            return a;
        }
    }
    return 0; /* all in use: the topic goes in full */
}

static void aliases_out_reset(midge_client_t *c)
{
    for (unsigned a = 0; a < 65; a++) {
        free(c->aliases_out[a]);
        c->aliases_out[a] = NULL;
    }
    c->alias_out_max = 0;
}

static int send_publish(midge_client_t *c, out_msg_t *m, bool dup)
{
    mqtt_publish_t pub;
    memset(&pub, 0, sizeof pub);
    pub.qos = m->qos;
    pub.dup = dup;
    pub.retain = m->retain;
    pub.topic.p = (const uint8_t *)m->topic;
    pub.topic.n = (uint32_t)m->topic_len;
    pub.packet_id = m->qos ? m->mid : 0;
    pub.props = props_raw(m->props, m->props_len);
    bool send_topic;
    uint16_t alias = alias_out(c, m, &send_topic);
    if (alias) {
        pub.props.topic_alias = alias;
        MQTT_PROP_SET(&pub.props, MQTT_PROP_TOPIC_ALIAS);
        if (!send_topic)
            pub.topic.n = 0; /* MQTT-3.3.2-8..12: the alias stands for the topic */
    }
    pub.payload.p = m->payload;
    pub.payload.n = (uint32_t)m->len;
    uint8_t v = (uint8_t)c->o.version;
    OUT_PACKET(c, mqtt_publish_encode(buf, cap, v, &pub));
    return 0;
}

static int send_connect(midge_client_t *c)
{
    mqtt_connect_t k;
    memset(&k, 0, sizeof k);
    k.version = (uint8_t)c->o.version;
    k.clean_start = c->o.clean_start;
    k.keep_alive = c->o.keepalive;
    /* A client id the broker assigned is reused so that reconnecting finds the session. */
    k.client_id = cstr(c->client_id ? c->client_id : c->assigned_id);
    k.props = props_raw(c->connect_props, c->connect_props_len);
    if (c->o.session_expiry) {
        k.props.session_expiry_interval = c->o.session_expiry;
        MQTT_PROP_SET(&k.props, MQTT_PROP_SESSION_EXPIRY_INTERVAL);
    }
    if (c->o.receive_maximum) {
        k.props.receive_maximum = c->o.receive_maximum;
        MQTT_PROP_SET(&k.props, MQTT_PROP_RECEIVE_MAXIMUM);
    }
    if (c->o.version == MIDGE_MQTT_V5) {
        /* MQTT-3.1.2-24: the broker must not send us a packet larger than this. */
        k.props.maximum_packet_size = c->o.max_packet_size;
        MQTT_PROP_SET(&k.props, MQTT_PROP_MAXIMUM_PACKET_SIZE);
    }
    if (c->o.topic_alias_maximum) {
        k.props.topic_alias_maximum = c->o.topic_alias_maximum;
        MQTT_PROP_SET(&k.props, MQTT_PROP_TOPIC_ALIAS_MAXIMUM);
    }
    if (c->will_topic) {
        k.has_will = true;
        k.will.qos = (uint8_t)c->o.will_qos;
        k.will.retain = c->o.will_retain;
        k.will.topic = cstr(c->will_topic);
        k.will.payload.p = c->will_payload;
        k.will.payload.n = (uint32_t)c->o.will_payload_len;
        k.will.props = props_raw(c->will_props, c->will_props_len);
        if (c->o.will_delay) {
            k.will.props.will_delay_interval = c->o.will_delay;
            MQTT_PROP_SET(&k.will.props, MQTT_PROP_WILL_DELAY_INTERVAL);
        }
    }
    if (c->username) {
        k.has_username = true;
        k.username = cstr(c->username);
    }
    if (c->password) {
        k.has_password = true;
        k.password.p = c->password;
        k.password.n = (uint32_t)c->o.password_len;
    }
    OUT_PACKET(c, mqtt_connect_encode(buf, cap, &k));
    return 0;
}

/* ---- waiters (blocking calls) ------------------------------------------------------ */

static void waiter_finish(midge_client_t *c, int kind, uint16_t mid, int status, uint8_t reason,
                          const uint8_t *codes, size_t n)
{
    for (waiter_t *w = c->waiters; w; w = w->next) {
        if (w->done || w->kind != kind || w->mid != mid)
            continue;
        w->done = true;
        w->status = status;
        w->reason = reason;
        if (w->codes && codes)
            memcpy(w->codes, codes, n < w->ncodes ? n : w->ncodes);
    }
}

/* Fail the waiters that a lost connection leaves without an answer. Publishes stay in the
 * queue and are resent when reconnect is on, so their waiters keep waiting then. */
static void waiters_fail(midge_client_t *c, bool publishes_too)
{
    for (waiter_t *w = c->waiters; w; w = w->next) {
        if (w->done)
            continue;
        if (w->kind == W_SUB || w->kind == W_UNSUB || publishes_too) {
            w->done = true;
            w->status = MIDGE_ECONN;
        }
    }
}

/* ---- the outgoing queue ----------------------------------------------------------- */

static void out_msg_free(out_msg_t *m)
{
    if (!m)
        return;
    free(m->topic);
    free(m->payload);
    free(m->props);
    free(m);
}

static void queue_remove(midge_client_t *c, out_msg_t *m)
{
    out_msg_t **pp = &c->q_head, *prev = NULL;
    while (*pp && *pp != m) {
        prev = *pp;
        pp = &(*pp)->next;
    }
    if (!*pp)
        return;
    *pp = m->next;
    if (c->q_tail == m)
        c->q_tail = prev;
    c->q_count--;
    if (m->qos) {
        if (m->state != OM_QUEUED)
            c->inflight--;
        bit_put(c->ids_used, m->mid, false);
    }
    out_msg_free(m);
}

static out_msg_t *queue_find(midge_client_t *c, uint16_t mid)
{
    for (out_msg_t *m = c->q_head; m; m = m->next)
        if (m->qos && m->mid == mid)
            return m;
    return NULL;
}

/* A free packet id (1..65535), or 0 when all are in use. */
static uint16_t mid_alloc(midge_client_t *c)
{
    for (unsigned tries = 0; tries < 65535; tries++) {
        c->next_mid = (uint16_t)(c->next_mid % 65535 + 1);
        if (!bit_get(c->ids_used, c->next_mid)) {
            bit_put(c->ids_used, c->next_mid, true);
            return c->next_mid;
        }
    }
    return 0;
}

static int q0_note(midge_client_t *c, uint16_t mid)
{
    if (c->q0_n == c->q0_cap) {
        size_t cap = c->q0_cap ? c->q0_cap * 2 : 64;
        uint16_t *p = realloc(c->q0_done, cap * sizeof *p);
        if (!p)
            return MIDGE_ENOMEM;
        c->q0_done = p;
        c->q0_cap = cap;
    }
    c->q0_done[c->q0_n++] = mid;
    return 0;
}

/* Send what the queue holds, in order, as far as the broker's receive maximum allows.
 * A message that cannot go yet holds back the ones behind it (ordering, MQTT-4.6.0). */
static int pump(midge_client_t *c)
{
    if (c->state != ST_CONNECTED)
        return 0;
    out_msg_t *m = c->q_head;
    while (m) {
        out_msg_t *next = m->next;
        if (m->state != OM_QUEUED) {
            m = next;
            continue;
        }
        if (m->qos && c->inflight >= c->server_recv_max)
            break;
        int rc = send_publish(c, m, m->sent_once && c->session_present);
        if (rc)
            return rc;
        if (m->qos == 0) {
            rc = q0_note(c, m->mid);
            queue_remove(c, m);
            if (rc)
                return rc;
        } else {
            m->state = OM_WAIT_ACK;
            m->sent_once = true;
            c->inflight++;
        }
        m = next;
    }
    return 0;
}

/* ---- connection life cycle -------------------------------------------------------- */

static uint32_t backoff_delay(midge_client_t *c)
{
    uint32_t d = c->backoff;
    /* Jitter: a delay drawn from the upper half of the current step, so clients that lost
     * the same broker at once do not come back at once. */
    uint32_t half = d / 2;
    uint32_t r = half + (uint32_t)(rand_r(&c->rand_state) % (half + 1));
    uint64_t next = (uint64_t)c->backoff * 2;
    c->backoff = next > c->o.reconnect_max_ms ? c->o.reconnect_max_ms : (uint32_t)next;
    return r;
}

static void schedule_reconnect(midge_client_t *c)
{
    if (c->o.reconnect && !c->user_disconnect && !c->refused) {
        c->state = ST_WAIT_RECONNECT;
        c->reconnect_at = client_now(c) + backoff_delay(c);
    } else {
        c->state = ST_IDLE;
    }
}

/* Close the transport and put the session state back to "not sent": unacknowledged QoS 1
 * messages go back to QUEUED (resent with DUP when the session survives), QoS 2 messages
 * waiting for PUBCOMP keep waiting (PUBREL is resent). */
void client_close(midge_client_t *c)
{
    if (c->conn) {
        c->tr->close(c->tr->ctx, c->conn);
        c->conn = NULL;
    }
    c->gen++;
    aliases_out_reset(c); /* aliases live as long as one network connection */
    c->in_len = 0;
    c->out_len = c->out_off = 0;
    /* QoS 0 messages still in the output buffer are lost with it (at most once). */
    for (size_t i = 0; i < c->q0_n; i++)
        waiter_finish(c, W_PUB0, c->q0_done[i], MIDGE_ECONN, 0, NULL, 0);
    c->q0_n = 0;
    c->ping_sent = 0;
    for (out_msg_t *m = c->q_head; m; m = m->next) {
        if (m->state == OM_WAIT_ACK) {
            m->state = OM_QUEUED;
            c->inflight--;
        }
    }
}

static void lost(midge_client_t *c, int reason)
{
    bool was_open = c->conn != NULL;
    client_close(c);
    if (c->connect_result == 0)
        c->connect_result = MIDGE_ECONN;
    schedule_reconnect(c);
    waiters_fail(c, c->state != ST_WAIT_RECONNECT);
    if (was_open && c->cb.on_disconnect)
        c->cb.on_disconnect(c, c->ud, reason);
}

int client_connect_locked(midge_client_t *c)
{
    if (c->conn)
        return MIDGE_ESTATE;
    c->user_disconnect = false;
    c->refused = false;
    c->connect_result = 0;
    void *conn = NULL;
    int rc = c->tr->open(c->tr->ctx, c->host, c->o.port, (int)c->o.connect_timeout_ms, &conn);
    if (rc < 0) {
        c->connect_result = rc;
        schedule_reconnect(c);
        return rc;
    }
    c->conn = conn;
    c->state = ST_CONNECTING;
    c->connect_started = c->last_send = client_now(c);
    c->keepalive = c->o.keepalive;
    c->server_recv_max = 65535;
    rc = send_connect(c);
    if (rc) {
        client_close(c);
        c->state = ST_IDLE;
        c->connect_result = rc;
        return rc;
    }
    client_wake(c);
    return 0;
}

int client_disconnect_locked(midge_client_t *c, uint8_t reason)
{
    c->user_disconnect = true;
    if (!c->conn) {
        c->state = ST_IDLE;
        return 0;
    }
    uint8_t v = (uint8_t)c->o.version;
    OUT_PACKET(c, mqtt_disconnect_encode(buf, cap, v, reason, NULL));
    c->state = ST_DISCONNECTING;
    client_wake(c);
    return 0;
}

/* ---- inbound packets -------------------------------------------------------------- */

static int on_connack(midge_client_t *c, const uint8_t *p, size_t n)
{
    mqtt_connack_t a;
    mqtt_error_t err;
    if (c->state != ST_CONNECTING ||
        mqtt_connack_decode((uint8_t)c->o.version, p, n, &a, &err) != MQTT_OK)
        return MIDGE_EPROTO;
    c->connack_code = a.code;
    c->session_present = a.session_present;
    midge_props_t mp;
    midge_props_init(&mp);
    char *reason_string = NULL;
    if (a.props.present & MQTT_PROP_BIT(MQTT_PROP_REASON_STRING)) {
        reason_string = strndup((const char *)a.props.reason_string.p, a.props.reason_string.n);
        mp.reason_string = reason_string;
    }
    if (a.code != 0) {
        /* Refused: retrying with the same CONNECT would be refused again. */
        c->refused = true;
        c->connect_result = MIDGE_EREFUSED;
        if (c->cb.on_connect)
            c->cb.on_connect(c, c->ud, a.code, false, &mp);
        free(reason_string);
        return MIDGE_EREFUSED;
    }
    if (MQTT_PROP_HAS(&a.props, MQTT_PROP_ASSIGNED_CLIENT_IDENTIFIER)) {
        free(c->assigned_id);
        c->assigned_id = strndup((const char *)a.props.assigned_client_identifier.p,
                                 a.props.assigned_client_identifier.n);
        mp.assigned_client_id = c->assigned_id;
    }
    if (MQTT_PROP_HAS(&a.props, MQTT_PROP_SERVER_KEEP_ALIVE))
        c->keepalive = a.props.server_keep_alive;
    c->server_recv_max = a.props.receive_maximum ? a.props.receive_maximum : 65535;
    if (c->o.topic_aliases_out && c->o.version == MIDGE_MQTT_V5)
        c->alias_out_max = a.props.topic_alias_maximum > 64 ? 64 : a.props.topic_alias_maximum;
    c->state = ST_CONNECTED;
    c->connect_result = 1;
    c->backoff = c->o.reconnect_min_ms;
    /* No session on the broker: inbound QoS 2 state and aliases start afresh. */
    if (!a.session_present)
        memset(c->qos2_in, 0, sizeof c->qos2_in);
    if (c->aliases)
        for (unsigned i = 0; i <= c->o.topic_alias_maximum; i++) {
            free(c->aliases[i]);
            c->aliases[i] = NULL;
        }
    /* QoS 2 messages that got PUBREC: resend PUBREL in a surviving session; with a new
     * session the broker has forgotten them, and it already has the message. */
    out_msg_t *m = c->q_head;
    while (m) {
        out_msg_t *next = m->next;
        if (m->state == OM_WAIT_COMP) {
            if (a.session_present) {
                int rc = send_ack(c, MQTT_PUBREL, m->mid, 0);
                if (rc)
                    return rc;
            } else {
                uint16_t mid = m->mid;
                queue_remove(c, m);
                waiter_finish(c, W_PUB, mid, 0, 0, NULL, 0);
                if (c->cb.on_publish)
                    c->cb.on_publish(c, c->ud, mid, 0);
            }
        }
        m = next;
    }
    unsigned gen = c->gen;
    if (c->cb.on_connect)
        c->cb.on_connect(c, c->ud, 0, a.session_present, &mp);
    free(reason_string);
    if (gen != c->gen)
        return 0;
    return pump(c);
}

/* Appends a message property's identifier to p->order the first time it appears. */
static void note_order(midge_props_t *p, uint8_t id)
{
    switch (id) {
    case MQTT_PROP_PAYLOAD_FORMAT_INDICATOR:
    case MQTT_PROP_MESSAGE_EXPIRY_INTERVAL:
    case MQTT_PROP_CONTENT_TYPE:
    case MQTT_PROP_RESPONSE_TOPIC:
    case MQTT_PROP_CORRELATION_DATA:
    case MQTT_PROP_SUBSCRIPTION_IDENTIFIER:
    case MQTT_PROP_USER_PROPERTY:
        break;
    default:
        return;
    }
    for (size_t i = 0; i < p->order_count; i++)
        if (p->order[i] == id)
            return;
    if (p->order_count < sizeof(p->order))
        p->order[p->order_count++] = id;
}

/* Build an owned midge_message_t: one allocation holding the struct, the topic, the
 * payload and every property, so midge_message_free is a single free. */
static midge_message_t *message_build(const uint8_t *topic, size_t tn, const mqtt_publish_t *pub)
{
    const mqtt_props_t *pr = &pub->props;
    size_t nuser = 0, nsub = 0, strs = 0;
    mqtt_bin_t cur = pr->raw;
    mqtt_prop_t e;
    while (mqtt_prop_next(&cur, &e)) {
        if (e.id == MQTT_PROP_USER_PROPERTY) {
            nuser++;
            strs += e.a.n + e.b.n + 2;
        } else if (e.id == MQTT_PROP_SUBSCRIPTION_IDENTIFIER) {
            nsub++;
        } else if (e.id == MQTT_PROP_CONTENT_TYPE || e.id == MQTT_PROP_RESPONSE_TOPIC ||
                   e.id == MQTT_PROP_CORRELATION_DATA) {
            strs += e.a.n + 1;
        }
    }
    size_t size = sizeof(midge_message_t) + nuser * sizeof(midge_user_prop_t) +
                  nsub * sizeof(uint32_t) + tn + 1 + pub->payload.n + 1 + strs;
    midge_message_t *m = malloc(size);
    if (!m)
        return NULL;
    memset(m, 0, sizeof *m);
    midge_props_init(&m->props);
    midge_user_prop_t *users = (midge_user_prop_t *)(m + 1);
    uint32_t *subs = (uint32_t *)(users + nuser);
    char *s = (char *)(subs + nsub);
    memcpy(s, topic, tn);
    s[tn] = 0;
    m->topic = s;
    m->topic_len = tn;
    s += tn + 1;
    if (pub->payload.n)
        memcpy(s, pub->payload.p, pub->payload.n);
    s[pub->payload.n] = 0;
    m->payload = (const uint8_t *)s;
    m->payload_len = pub->payload.n;
    s += pub->payload.n + 1;
    m->qos = pub->qos;
    m->retain = pub->retain;
    m->dup = pub->dup;
    m->packet_id = pub->packet_id;
    m->props.user = nuser ? users : NULL;
    m->props.sub_ids = nsub ? subs : NULL;
    cur = pr->raw;
    while (mqtt_prop_next(&cur, &e)) {
        note_order(&m->props, e.id);
        switch (e.id) {
        case MQTT_PROP_USER_PROPERTY: {
            midge_user_prop_t *u = &users[m->props.user_count++];
            memcpy(s, e.a.p, e.a.n);
            s[e.a.n] = 0;
            u->name = s;
            s += e.a.n + 1;
            memcpy(s, e.b.p, e.b.n);
            s[e.b.n] = 0;
            u->value = s;
            s += e.b.n + 1;
            break;
        }
        case MQTT_PROP_SUBSCRIPTION_IDENTIFIER:
            subs[m->props.sub_id_count++] = e.u32;
            break;
        case MQTT_PROP_CONTENT_TYPE:
        case MQTT_PROP_RESPONSE_TOPIC:
        case MQTT_PROP_CORRELATION_DATA:
            if (e.a.n)
                memcpy(s, e.a.p, e.a.n);
            s[e.a.n] = 0;
            if (e.id == MQTT_PROP_CONTENT_TYPE)
                m->props.content_type = s;
            else if (e.id == MQTT_PROP_RESPONSE_TOPIC)
                m->props.response_topic = s;
            else {
                m->props.correlation = (const uint8_t *)s;
                m->props.correlation_len = e.a.n;
            }
            s += e.a.n + 1;
            break;
        case MQTT_PROP_MESSAGE_EXPIRY_INTERVAL:
            m->props.has_message_expiry = true;
            m->props.message_expiry = e.u32;
            break;
        case MQTT_PROP_PAYLOAD_FORMAT_INDICATOR:
            m->props.payload_format = (int)e.u32;
            break;
        default:
            break;
        }
    }
    return m;
}

static void deliver(midge_client_t *c, midge_message_t *m)
{
    if (c->cb.on_message) {
        c->cb.on_message(c, c->ud, m);
        free(m);
        return;
    }
    rx_msg_t *r = malloc(sizeof *r);
    if (!r || c->rx_count >= c->o.max_received) {
        free(r);
        free(m);
        c->rx_dropped++;
        return;
    }
    r->m = m;
    r->next = NULL;
    if (c->rx_tail)
        c->rx_tail->next = r;
    else
        c->rx_head = r;
    c->rx_tail = r;
    c->rx_count++;
}

static int on_publish(midge_client_t *c, uint8_t flags, const uint8_t *p, size_t n)
{
    mqtt_publish_t pub;
    mqtt_error_t err;
    if (mqtt_publish_decode((uint8_t)c->o.version, flags, p, n, &pub, &err) != MQTT_OK)
        return MIDGE_EPROTO;
    const uint8_t *topic = pub.topic.p;
    size_t tn = pub.topic.n;
    if (c->o.version == MIDGE_MQTT_V5 && MQTT_PROP_HAS(&pub.props, MQTT_PROP_TOPIC_ALIAS)) {
        uint16_t a = pub.props.topic_alias;
        /* MQTT-3.3.2-9: an alias above the maximum we announced is a protocol error. */
        if (!c->aliases || a == 0 || a > c->o.topic_alias_maximum)
            return MIDGE_EPROTO;
        if (tn) {
            char *t = strndup((const char *)topic, tn);
            if (!t)
                return MIDGE_ENOMEM;
            free(c->aliases[a]);
            c->aliases[a] = t;
        } else {
            if (!c->aliases[a])
                return MIDGE_EPROTO;
            topic = (const uint8_t *)c->aliases[a];
            tn = strlen(c->aliases[a]);
        }
    }
    bool fresh = true;
    if (pub.qos == 2) {
        /* Method B of section 4.3.3: the id is remembered from PUBREC to PUBREL, and a
         * resent PUBLISH with the same id is not delivered twice. */
        fresh = !bit_get(c->qos2_in, pub.packet_id);
        bit_put(c->qos2_in, pub.packet_id, true);
    }
    if (fresh) {
        midge_message_t *m = message_build(topic, tn, &pub);
        if (!m)
            return MIDGE_ENOMEM;
        unsigned gen = c->gen;
        deliver(c, m);
        if (gen != c->gen)
            return 0;
    }
    if (pub.qos == 1)
        return send_ack(c, MQTT_PUBACK, pub.packet_id, 0);
    if (pub.qos == 2)
        return send_ack(c, MQTT_PUBREC, pub.packet_id, 0);
    return 0;
}

static void publish_done(midge_client_t *c, out_msg_t *m, uint8_t reason)
{
    uint16_t mid = m->mid;
    queue_remove(c, m);
    waiter_finish(c, W_PUB, mid, reason >= 0x80 ? MIDGE_EREFUSED : 0, reason, NULL, 0);
    if (c->cb.on_publish)
        c->cb.on_publish(c, c->ud, mid, reason);
}

static int on_ack(midge_client_t *c, uint8_t type, const uint8_t *p, size_t n)
{
    mqtt_ack_t a;
    mqtt_error_t err;
    if (mqtt_ack_decode((uint8_t)c->o.version, type, p, n, &a, &err) != MQTT_OK)
        return MIDGE_EPROTO;
    if (type == MQTT_PUBREL) {
        bit_put(c->qos2_in, a.packet_id, false);
        return send_ack(c, MQTT_PUBCOMP, a.packet_id, 0);
    }
    out_msg_t *m = queue_find(c, a.packet_id);
    if (!m || m->state == OM_QUEUED)
        return 0; /* a late ack of something already settled: harmless */
    if (type == MQTT_PUBACK && m->qos == 1 && m->state == OM_WAIT_ACK) {
        publish_done(c, m, a.reason);
    } else if (type == MQTT_PUBREC && m->qos == 2) {
        if (a.reason >= 0x80) {
            publish_done(c, m, a.reason); /* the flow ends at a failed PUBREC */
            return pump(c);
        }
        m->state = OM_WAIT_COMP;
        return send_ack(c, MQTT_PUBREL, m->mid, 0);
    } else if (type == MQTT_PUBCOMP && m->qos == 2 && m->state == OM_WAIT_COMP) {
        publish_done(c, m, a.reason);
    } else {
        return MIDGE_EPROTO;
    }
    return pump(c);
}

static int on_suback(midge_client_t *c, uint8_t type, const uint8_t *p, size_t n)
{
    mqtt_suback_t a;
    mqtt_error_t err;
    if (mqtt_suback_decode((uint8_t)c->o.version, type, p, n, &a, &err) != MQTT_OK)
        return MIDGE_EPROTO;
    bit_put(c->ids_used, a.packet_id, false);
    int kind = type == MQTT_SUBACK ? W_SUB : W_UNSUB;
    waiter_finish(c, kind, a.packet_id, 0, a.codes.n ? a.codes.p[0] : 0, a.codes.p, a.codes.n);
    if (type == MQTT_SUBACK && c->cb.on_subscribe)
        c->cb.on_subscribe(c, c->ud, a.packet_id, a.codes.p, a.codes.n);
    if (type == MQTT_UNSUBACK && c->cb.on_unsubscribe)
        c->cb.on_unsubscribe(c, c->ud, a.packet_id, a.codes.p, a.codes.n);
    return 0;
}

static int handle_packet(midge_client_t *c, const mqtt_frame_t *f, const uint8_t *body)
{
    mqtt_error_t err;
    if (c->state == ST_CONNECTING && f->type != MQTT_CONNACK)
        return MIDGE_EPROTO; /* MQTT-3.2.0-1: the first packet from the server is CONNACK */
    switch (f->type) {
    case MQTT_CONNACK:
        return on_connack(c, body, f->remaining);
    case MQTT_PUBLISH:
        return on_publish(c, f->flags, body, f->remaining);
    case MQTT_PUBACK:
    case MQTT_PUBREC:
    case MQTT_PUBREL:
    case MQTT_PUBCOMP:
        return on_ack(c, f->type, body, f->remaining);
    case MQTT_SUBACK:
    case MQTT_UNSUBACK:
        return on_suback(c, f->type, body, f->remaining);
    case MQTT_PINGRESP:
        c->ping_sent = 0;
        return mqtt_empty_decode(body, f->remaining, &err) == MQTT_OK ? 0 : MIDGE_EPROTO;
    case MQTT_DISCONNECT: {
        mqtt_reason_packet_t d;
        if (c->o.version != MIDGE_MQTT_V5 ||
            mqtt_disconnect_decode(MQTT_V5, body, f->remaining, &d, &err) != MQTT_OK)
            return MIDGE_EPROTO;
        lost(c, d.reason);
        return 0;
    }
    default:
        return MIDGE_EPROTO;
    }
}

/* ---- the steps ---------------------------------------------------------------------- */

static int read_locked(midge_client_t *c)
{
    if (!c->conn)
        return 0;
    unsigned gen = c->gen;
    for (int i = 0; i < READS_PER_CALL; i++) {
        if (c->in_cap - c->in_len < READ_CHUNK) {
            size_t cap = c->in_cap ? c->in_cap * 2 : 2 * READ_CHUNK;
            uint8_t *p = realloc(c->in, cap);
            if (!p)
                return MIDGE_ENOMEM;
            c->in = p;
            c->in_cap = cap;
        }
        long r = c->tr->recv(c->tr->ctx, c->conn, c->in + c->in_len, c->in_cap - c->in_len);
        if (r < 0) {
            lost(c, MIDGE_DISCONNECT_LOST);
            return c->o.reconnect ? 0 : MIDGE_ECONN;
        }
        if (r == 0)
            break;
        c->in_len += (size_t)r;

        size_t off = 0;
        while (off < c->in_len) {
            mqtt_frame_t f;
            mqtt_error_t err;
            int d = mqtt_frame_decode(c->in + off, c->in_len - off, &f, &err);
            if (d == MQTT_INCOMPLETE)
                break;
            size_t total = (size_t)f.header_len + f.remaining;
            int rc = 0;
            if (d != MQTT_OK || f.remaining > c->o.max_packet_size)
                rc = MIDGE_EPROTO;
            else if (c->in_len - off < total)
                break;
            else
                rc = handle_packet(c, &f, c->in + off + f.header_len);
            if (gen != c->gen)
                return rc == MIDGE_EREFUSED ? rc : 0; /* closed in a callback or by DISCONNECT */
            if (rc) {
                if (rc == MIDGE_EREFUSED) {
                    client_close(c);
                    c->state = ST_IDLE;
                    if (c->cb.on_disconnect)
                        c->cb.on_disconnect(c, c->ud, MIDGE_DISCONNECT_LOST);
                } else {
                    lost(c, MIDGE_DISCONNECT_LOST);
                }
                return rc;
            }
            off += total;
        }
        if (off) {
            memmove(c->in, c->in + off, c->in_len - off);
            c->in_len -= off;
        }
        /* Grow the buffer for a packet bigger than it. */
        while (c->in_len == c->in_cap) {
            uint8_t *p = realloc(c->in, c->in_cap * 2);
            if (!p)
                return MIDGE_ENOMEM;
            c->in = p;
            c->in_cap *= 2;
        }
    }
    return 0;
}

static int write_locked(midge_client_t *c)
{
    if (!c->conn)
        return 0;
    while (c->out_off < c->out_len) {
        long w = c->tr->send(c->tr->ctx, c->conn, c->out + c->out_off, c->out_len - c->out_off);
        if (w < 0) {
            lost(c, MIDGE_DISCONNECT_LOST);
            return c->o.reconnect ? 0 : MIDGE_ECONN;
        }
        if (w == 0)
            return 0;
        c->out_off += (size_t)w;
        c->last_send = client_now(c);
    }
    c->out_off = c->out_len = 0;
    if (c->state == ST_DISCONNECTING) {
        /* DISCONNECT is out: the broker drops the will (MQTT-3.14.4-3). */
        client_close(c);
        c->state = ST_IDLE;
        waiters_fail(c, true);
        if (c->cb.on_disconnect)
            c->cb.on_disconnect(c, c->ud, 0);
        return 0;
    }
    /* QoS 0 publishes are done once written. Copy first: a callback may publish again. */
    while (c->q0_n) {
        uint16_t mid = c->q0_done[0];
        memmove(c->q0_done, c->q0_done + 1, --c->q0_n * sizeof *c->q0_done);
        waiter_finish(c, W_PUB0, mid, 0, 0, NULL, 0);
        if (c->cb.on_publish)
            c->cb.on_publish(c, c->ud, mid, 0);
    }
    return 0;
}

/* Decoded input a TLS or WebSocket transport holds: recv returns it without the descriptor
 * becoming readable, so whoever waits must not sleep on the descriptor while it is there. */
static bool input_pending(midge_client_t *c)
{
    return c->conn && c->tr->pending && c->tr->pending(c->tr->ctx, c->conn) > 0;
}

static int misc_locked(midge_client_t *c)
{
    if (input_pending(c)) {
        int rc = read_locked(c);
        if (rc)
            return rc;
    }
    int64_t now = client_now(c);
    switch (c->state) {
    case ST_WAIT_RECONNECT:
        if (now >= c->reconnect_at) {
            int rc = client_connect_locked(c);
            return c->o.reconnect && rc == MIDGE_ECONN ? 0 : rc;
        }
        return 0;
    case ST_CONNECTING:
        if (now - c->connect_started >= (int64_t)c->o.connect_timeout_ms) {
            lost(c, MIDGE_DISCONNECT_LOST);
            return c->o.reconnect ? 0 : MIDGE_ETIMEOUT;
        }
        return 0;
    case ST_CONNECTED:
        if (!c->keepalive)
            return 0;
        if (c->ping_sent && now - c->ping_sent >= (int64_t)c->keepalive * 1000) {
            /* No PINGRESP within a keepalive period: the connection is dead. */
            lost(c, MIDGE_DISCONNECT_LOST);
            return c->o.reconnect ? 0 : MIDGE_ECONN;
        }
        if (!c->ping_sent && now - c->last_send >= (int64_t)c->keepalive * 1000) {
            int rc = send_ping(c);
            if (rc)
                return rc;
            c->ping_sent = now;
            return write_locked(c);
        }
        return 0;
    default:
        return 0;
    }
}

static int next_timeout_locked(midge_client_t *c)
{
    if (input_pending(c))
        return 0;
    int64_t now = client_now(c), at = -1;
    switch (c->state) {
    case ST_WAIT_RECONNECT:
        at = c->reconnect_at;
        break;
    case ST_CONNECTING:
        at = c->connect_started + c->o.connect_timeout_ms;
        break;
    case ST_CONNECTED:
        if (c->keepalive)
            at = c->ping_sent ? c->ping_sent + (int64_t)c->keepalive * 1000
                              : c->last_send + (int64_t)c->keepalive * 1000;
        break;
    default:
        break;
    }
    if (at < 0)
        return -1;
    return at <= now ? 0 : (int)(at - now > 3600000 ? 3600000 : at - now);
}

int client_step_locked(midge_client_t *c, int timeout_ms)
{
    /* Nothing can happen without a connection or a planned reconnect: say so at once
     * rather than sleeping (the background thread still sleeps on its wake pipe). */
    if (!c->conn && c->state != ST_WAIT_RECONNECT && !c->thread_running)
        return MIDGE_ECONN;
    bool had_output = c->out_off < c->out_len;
    int rc = write_locked(c);
    if (rc)
        return rc;
    if (!c->conn && c->state != ST_WAIT_RECONNECT && !c->thread_running)
        return 0; /* closed by this write (DISCONNECT sent) */
    int t = next_timeout_locked(c);
    if (t < 0 || (timeout_ms >= 0 && timeout_ms < t))
        t = timeout_ms;
    /* Output that just went out may have completed what the caller waits for (a QoS 0
     * publish): look at the socket without sleeping and let the caller check. */
    if (had_output && c->out_off == c->out_len)
        t = 0;
    struct pollfd p[2];
    int np = 0;
    int fd = c->conn && c->tr->fd ? c->tr->fd(c->tr->ctx, c->conn) : -1;
    if (fd >= 0) {
        p[np].fd = fd;
        p[np].events = (short)(POLLIN | (c->out_off < c->out_len ? POLLOUT : 0));
        p[np++].revents = 0;
    } else if (c->conn && (t < 0 || t > 10)) {
        t = 10; /* a transport without a descriptor is polled */
    }
    if (c->thread_running) {
        p[np].fd = c->wake[0];
        p[np].events = POLLIN;
        p[np++].revents = 0;
    }
    client_unlock(c);
    int r = poll(p, (nfds_t)np, t);
    client_lock(c);
    if (r < 0 && errno != EINTR)
        return MIDGE_ESYS;
    if (c->thread_running) {
        char drain[64];
        while (read(c->wake[0], drain, sizeof drain) > 0) {
        }
    }
    if (c->conn && (fd < 0 || (np && p[0].fd == fd && p[0].revents))) {
        rc = read_locked(c);
        if (rc)
            return rc;
    }
    rc = write_locked(c);
    if (rc)
        return rc;
    return misc_locked(c);
}

/* ---- public API ------------------------------------------------------------------- */

const char *midge_strerror(int status)
{
    switch (status) {
    case MIDGE_OK:
        return "success";
    case MIDGE_EINVAL:
        return "invalid argument";
    case MIDGE_ENOMEM:
        return "out of memory";
    case MIDGE_ECONN:
        return "connection failed or lost";
    case MIDGE_ETIMEOUT:
        return "timed out";
    case MIDGE_EREFUSED:
        return "refused by the broker";
    case MIDGE_EPROTO:
        return "protocol error";
    case MIDGE_EFULL:
        return "queue full";
    case MIDGE_ESTATE:
        return "not allowed in this state";
    case MIDGE_ESYS:
        return "system call failed";
    default:
        return "unknown error";
    }
}

const char *midge_reason_name(uint8_t reason)
{
    return mqtt_reason_name(reason);
}

const char *midge_connack_v3_name(uint8_t code)
{
    static const char *names[] = {
        "Connection Accepted.",
        "Connection Refused: unacceptable protocol version.",
        "Connection Refused: identifier rejected.",
        "Connection Refused: broker unavailable.",
        "Connection Refused: bad user name or password.",
        "Connection Refused: not authorised.",
    };
    return code < 6 ? names[code] : "Connection Refused: unknown reason";
}

bool midge_topic_matches(const char *filter, const char *topic)
{
    return mqtt_topic_match((const uint8_t *)filter, strlen(filter), (const uint8_t *)topic,
                            strlen(topic));
}

void midge_props_init(midge_props_t *p)
{
    memset(p, 0, sizeof *p);
    p->payload_format = -1;
}

void midge_options_init(midge_options_t *o)
{
    memset(o, 0, sizeof *o);
    o->host = "localhost";
    o->port = 1883;
    o->version = MIDGE_MQTT_V5;
    o->keepalive = 60;
    o->clean_start = true;
    o->reconnect_min_ms = 500;
    o->reconnect_max_ms = 30000;
    o->connect_timeout_ms = 10000;
    o->max_queued = 1000;
    o->max_received = 1000;
    o->max_packet_size = 16u << 20;
}

static bool topic_ok(const char *t, bool filter)
{
    if (!t || !*t)
        return false;
    size_t n = strlen(t);
    if (n > 65535 || mqtt_utf8_check((const uint8_t *)t, n))
        return false;
    return filter ? mqtt_topic_filter_check((const uint8_t *)t, n) == 0
                  : mqtt_topic_name_check((const uint8_t *)t, n) == 0;
}

bool midge_topic_name_valid(const char *s)
{
    return topic_ok(s, false);
}

bool midge_topic_filter_valid(const char *s)
{
    return topic_ok(s, true);
}

int midge_client_new(const midge_options_t *opts, midge_client_t **out)
{
    midge_options_t defaults;
    if (!opts) {
        midge_options_init(&defaults);
        opts = &defaults;
    }
    *out = NULL;
    bool v31 = opts->version == MIDGE_MQTT_V31;
    bool has_id = opts->client_id && *opts->client_id;
    if ((!v31 && opts->version != MIDGE_MQTT_V311 && opts->version != MIDGE_MQTT_V5) ||
        (v31 && !has_id && !opts->clean_start) ||
        opts->will_qos < 0 || opts->will_qos > 2 ||
        (opts->will_topic && !topic_ok(opts->will_topic, false)))
        return MIDGE_EINVAL;
    midge_client_t *c = calloc(1, sizeof *c);
    if (!c)
        return MIDGE_ENOMEM;
    c->o = *opts;
    c->wake[0] = c->wake[1] = -1;
    c->tr = opts->transport ? opts->transport : midge_transport_tcp();
    if (!c->o.reconnect_min_ms)
        c->o.reconnect_min_ms = 500;
    if (c->o.reconnect_max_ms < c->o.reconnect_min_ms)
        c->o.reconnect_max_ms = c->o.reconnect_min_ms;
    if (!c->o.connect_timeout_ms)
        c->o.connect_timeout_ms = 10000;
    if (!c->o.max_queued)
        c->o.max_queued = 1000;
    if (!c->o.max_packet_size)
        c->o.max_packet_size = 16u << 20;
    c->backoff = c->o.reconnect_min_ms;
    c->rand_state = (unsigned)time(NULL) ^ (unsigned)(uintptr_t)c;
    c->host = strdup(opts->host ? opts->host : "localhost");
    c->client_id = has_id ? strdup(opts->client_id) : NULL;
    if (v31 && !has_id) {
        /* 3.1 has no id assigned by the broker: make one, as mosquitto's library does. */
        char id[24];
        snprintf(id, sizeof id, "midge-%08x%08x", (unsigned)rand_r(&c->rand_state),
                 (unsigned)rand_r(&c->rand_state));
        c->client_id = strdup(id);
    }
    c->username = dup_str(opts->username);
    if (opts->password) {
        c->o.password_len = opts->password_len ? opts->password_len : strlen(opts->password);
        c->password = dup_bytes(opts->password, c->o.password_len);
    }
    if (opts->will_topic) {
        c->will_topic = strdup(opts->will_topic);
        c->will_payload = dup_bytes(opts->will_payload, opts->will_payload_len);
    }
    bool v5 = opts->version == MIDGE_MQTT_V5;
    int rc = MIDGE_ENOMEM;
    if (!c->host || ((has_id || v31) && !c->client_id) ||
        (opts->username && !c->username) || (opts->password && !c->password) ||
        (opts->will_topic && (!c->will_topic || !c->will_payload)))
        goto fail;
    if (v5) {
        rc = props_build(opts->connect_props, &c->connect_props, &c->connect_props_len);
        if (!rc)
            rc = props_build(opts->will_props, &c->will_props, &c->will_props_len);
        if (rc)
            goto fail;
        if (opts->topic_alias_maximum) {
            c->aliases = calloc((size_t)opts->topic_alias_maximum + 1, sizeof *c->aliases);
            rc = MIDGE_ENOMEM;
            if (!c->aliases)
                goto fail;
        }
    } else {
        c->o.topic_alias_maximum = 0;
    }
    c->o.host = c->o.client_id = c->o.username = c->o.password = c->o.will_topic = NULL;
    c->o.will_payload = NULL;
    c->o.will_props = c->o.connect_props = NULL;
    pthread_mutexattr_t ma;
    pthread_mutexattr_init(&ma);
    pthread_mutexattr_settype(&ma, PTHREAD_MUTEX_RECURSIVE);
    pthread_mutex_init(&c->lock, &ma);
    pthread_mutexattr_destroy(&ma);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&c->cond, &ca);
    pthread_condattr_destroy(&ca);
    *out = c;
    return 0;
fail:
    free(c->host);
    free(c->client_id);
    free(c->username);
    free(c->password);
    free(c->will_topic);
    free(c->will_payload);
    free(c->connect_props);
    free(c->will_props);
    free(c);
    return rc;
}

void midge_client_free(midge_client_t *c)
{
    if (!c)
        return;
    midge_client_stop(c);
    client_close(c);
    while (c->q_head)
        queue_remove(c, c->q_head);
    while (c->rx_head) {
        rx_msg_t *r = c->rx_head;
        c->rx_head = r->next;
        free(r->m);
        free(r);
    }
    if (c->aliases)
        for (unsigned i = 0; i <= c->o.topic_alias_maximum; i++)
            free(c->aliases[i]);
    free(c->aliases);
    free(c->in);
    free(c->out);
    free(c->q0_done);
    free(c->host);
    free(c->client_id);
    free(c->assigned_id);
    free(c->username);
    free(c->password);
    free(c->will_topic);
    free(c->will_payload);
    free(c->connect_props);
    free(c->will_props);
    pthread_mutex_destroy(&c->lock);
    pthread_cond_destroy(&c->cond);
    free(c);
}

void midge_client_set_callbacks(midge_client_t *c, const midge_callbacks_t *cb, void *ud)
{
    client_lock(c);
    if (cb)
        c->cb = *cb;
    else
        memset(&c->cb, 0, sizeof c->cb);
    c->ud = ud;
    client_unlock(c);
}

int midge_client_connect(midge_client_t *c)
{
    client_lock(c);
    int rc = client_connect_locked(c);
    client_unlock(c);
    return rc;
}

int midge_client_disconnect(midge_client_t *c, uint8_t reason)
{
    client_lock(c);
    int rc = client_disconnect_locked(c, reason);
    client_unlock(c);
    return rc;
}

int client_publish_locked(midge_client_t *c, const char *topic, const void *payload, size_t len,
                          int qos, bool retain, const midge_props_t *props, uint16_t *mid)
{
    if (!topic_ok(topic, false) || qos < 0 || qos > 2 || (len && !payload) ||
        len > 256u * 1024 * 1024)
        return MIDGE_EINVAL;
    if (c->q_count >= c->o.max_queued)
        return MIDGE_EFULL;
    out_msg_t *m = calloc(1, sizeof *m);
    if (!m)
        return MIDGE_ENOMEM;
    m->qos = (uint8_t)qos;
    m->retain = retain;
    m->topic_len = strlen(topic);
    m->topic = strdup(topic);
    m->payload = dup_bytes(payload, len);
    m->len = len;
    int rc = MIDGE_ENOMEM;
    if (!m->topic || !m->payload)
        goto fail;
    if (c->o.version == MIDGE_MQTT_V5) {
        rc = props_build(props, &m->props, &m->props_len);
        if (rc)
            goto fail;
    }
    if (qos) {
        m->mid = mid_alloc(c);
        rc = MIDGE_EFULL;
        if (!m->mid)
            goto fail;
    } else {
        c->next_local = (uint16_t)(c->next_local % 65535 + 1);
        m->mid = c->next_local;
    }
    if (c->q_tail)
        c->q_tail->next = m;
    else
        c->q_head = m;
    c->q_tail = m;
    c->q_count++;
    if (mid)
        *mid = m->mid;
    rc = pump(c);
    client_wake(c);
    return rc;
fail:
    out_msg_free(m);
    return rc;
}

int midge_client_publish(midge_client_t *c, const char *topic, const void *payload, size_t len,
                         int qos, bool retain, const midge_props_t *props, uint16_t *mid)
{
    client_lock(c);
    int rc = client_publish_locked(c, topic, payload, len, qos, retain, props, mid);
    client_unlock(c);
    return rc;
}

int client_subscribe_locked(midge_client_t *c, const midge_subscription_t *subs, size_t n,
                            uint32_t sub_id, uint16_t *mid)
{
    if (!n || n > 256 || sub_id > 268435455)
        return MIDGE_EINVAL;
    if (!c->conn || c->state == ST_DISCONNECTING)
        return MIDGE_ECONN;
    mqtt_sub_entry_t e[256];
    for (size_t i = 0; i < n; i++) {
        if (!topic_ok(subs[i].filter, true) || subs[i].qos < 0 || subs[i].qos > 2 ||
            subs[i].retain_handling < 0 || subs[i].retain_handling > 2)
            return MIDGE_EINVAL;
        e[i].filter = cstr(subs[i].filter);
        e[i].qos = (uint8_t)subs[i].qos;
        e[i].no_local = subs[i].no_local;
        e[i].retain_as_published = subs[i].retain_as_published;
        e[i].retain_handling = (uint8_t)subs[i].retain_handling;
    }
    mqtt_props_t pr;
    mqtt_props_init(&pr);
    if (sub_id && c->o.version == MIDGE_MQTT_V5) {
        pr.subscription_identifier = sub_id;
        pr.subscription_identifier_count = 1;
        MQTT_PROP_SET(&pr, MQTT_PROP_SUBSCRIPTION_IDENTIFIER);
    }
    uint16_t id = mid_alloc(c);
    if (!id)
        return MIDGE_EFULL;
    uint8_t v = (uint8_t)c->o.version;
    size_t need = mqtt_subscribe_encode(NULL, 0, v, id, &pr, e, n);
    uint8_t *buf = need ? out_reserve(c, need) : NULL;
    if (!buf) {
        bit_put(c->ids_used, id, false);
        return need ? MIDGE_ENOMEM : MIDGE_EINVAL;
    }
    c->out_len += mqtt_subscribe_encode(buf, need, v, id, &pr, e, n);
    if (mid)
        *mid = id;
    client_wake(c);
    return 0;
}

int midge_client_subscribe(midge_client_t *c, const midge_subscription_t *subs, size_t n,
                           uint32_t sub_id, uint16_t *mid)
{
    client_lock(c);
    int rc = client_subscribe_locked(c, subs, n, sub_id, mid);
    client_unlock(c);
    return rc;
}

int client_unsubscribe_locked(midge_client_t *c, const char *const *filters, size_t n,
                              uint16_t *mid)
{
    if (!n || n > 256)
        return MIDGE_EINVAL;
    if (!c->conn || c->state == ST_DISCONNECTING)
        return MIDGE_ECONN;
    mqtt_str_t f[256];
    for (size_t i = 0; i < n; i++) {
        if (!topic_ok(filters[i], true))
            return MIDGE_EINVAL;
        f[i] = cstr(filters[i]);
    }
    uint16_t id = mid_alloc(c);
    if (!id)
        return MIDGE_EFULL;
    uint8_t v = (uint8_t)c->o.version;
    size_t need = mqtt_unsubscribe_encode(NULL, 0, v, id, NULL, f, n);
    uint8_t *buf = need ? out_reserve(c, need) : NULL;
    if (!buf) {
        bit_put(c->ids_used, id, false);
        return need ? MIDGE_ENOMEM : MIDGE_EINVAL;
    }
    c->out_len += mqtt_unsubscribe_encode(buf, need, v, id, NULL, f, n);
    if (mid)
        *mid = id;
    client_wake(c);
    return 0;
}

int midge_client_unsubscribe(midge_client_t *c, const char *const *filters, size_t n, uint16_t *mid)
{
    client_lock(c);
    int rc = client_unsubscribe_locked(c, filters, n, mid);
    client_unlock(c);
    return rc;
}

int midge_client_fd(midge_client_t *c)
{
    client_lock(c);
    int fd = c->conn && c->tr->fd ? c->tr->fd(c->tr->ctx, c->conn) : -1;
    client_unlock(c);
    return fd;
}

bool midge_client_want_write(midge_client_t *c)
{
    client_lock(c);
    bool w = c->conn && c->out_off < c->out_len;
    client_unlock(c);
    return w;
}

int midge_client_read(midge_client_t *c)
{
    client_lock(c);
    int rc = read_locked(c);
    client_unlock(c);
    return rc;
}

int midge_client_write(midge_client_t *c)
{
    client_lock(c);
    int rc = write_locked(c);
    client_unlock(c);
    return rc;
}

int midge_client_misc(midge_client_t *c)
{
    client_lock(c);
    int rc = misc_locked(c);
    client_unlock(c);
    return rc;
}

int midge_client_next_timeout_ms(midge_client_t *c)
{
    client_lock(c);
    int t = next_timeout_locked(c);
    client_unlock(c);
    return t;
}

int midge_client_step(midge_client_t *c, int timeout_ms)
{
    client_lock(c);
    int rc = c->thread_running ? MIDGE_ESTATE : client_step_locked(c, timeout_ms);
    client_unlock(c);
    return rc;
}

bool midge_client_is_connected(midge_client_t *c)
{
    client_lock(c);
    bool r = c->state == ST_CONNECTED;
    client_unlock(c);
    return r;
}

size_t midge_client_pending(midge_client_t *c)
{
    client_lock(c);
    size_t n = c->q_count;
    client_unlock(c);
    return n;
}
