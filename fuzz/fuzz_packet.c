/* fuzz_packet.c - libFuzzer target for the MQTT codec (src/mqtt). The first input byte
 * picks the protocol version (3, 4 or 5), the rest is a stream of packets: each is framed
 * with mqtt_frame_decode, decoded by the decoder of its type, iterated, and whatever
 * decodes is encoded, decoded again and encoded again; the two decodes must agree and the
 * two encodings must be byte for byte the same.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mqtt/codec.h"

#include "fuzz_check.h"

static bool str_eq(mqtt_str_t a, mqtt_str_t b)
{
    return a.n == b.n && (a.n == 0 || memcmp(a.p, b.p, a.n) == 0);
}

/* A decoded block made ready for encoding: user properties through `extra`, every
 * subscription identifier through sub_ids. The buffers must hold raw.n bytes/entries. */
static void props_for_encode(mqtt_props_t *pr, uint8_t *extra, uint32_t *ids)
{
    uint32_t k = 0;
    mqtt_bin_t cur = pr->raw;
    mqtt_prop_t e;
    while (mqtt_prop_next(&cur, &e))
        if (e.id == MQTT_PROP_SUBSCRIPTION_IDENTIFIER)
            ids[k++] = e.u32;
    CHECK(cur.n == 0);
    CHECK(k == pr->subscription_identifier_count);
    pr->sub_ids = k ? ids : NULL;
    pr->extra.n =
        (uint32_t)mqtt_props_filter(pr->raw, MQTT_PROP_BIT(MQTT_PROP_USER_PROPERTY), extra);
    pr->extra.p = extra;
}

static void props_eq(const mqtt_props_t *a, const mqtt_props_t *b)
{
    CHECK(a->present == b->present);
    CHECK(a->payload_format_indicator == b->payload_format_indicator);
    CHECK(a->request_problem_information == b->request_problem_information);
    CHECK(a->request_response_information == b->request_response_information);
    CHECK(a->maximum_qos == b->maximum_qos);
    CHECK(a->retain_available == b->retain_available);
    CHECK(a->wildcard_subscription_available == b->wildcard_subscription_available);
    CHECK(a->subscription_identifier_available == b->subscription_identifier_available);
    CHECK(a->shared_subscription_available == b->shared_subscription_available);
    CHECK(a->server_keep_alive == b->server_keep_alive);
    CHECK(a->receive_maximum == b->receive_maximum);
    CHECK(a->topic_alias_maximum == b->topic_alias_maximum);
    CHECK(a->topic_alias == b->topic_alias);
    CHECK(a->message_expiry_interval == b->message_expiry_interval);
    CHECK(a->session_expiry_interval == b->session_expiry_interval);
    CHECK(a->will_delay_interval == b->will_delay_interval);
    CHECK(a->maximum_packet_size == b->maximum_packet_size);
    CHECK(a->subscription_identifier == b->subscription_identifier);
    CHECK(a->subscription_identifier_count == b->subscription_identifier_count);
    CHECK(str_eq(a->content_type, b->content_type));
    CHECK(str_eq(a->response_topic, b->response_topic));
    CHECK(str_eq(a->correlation_data, b->correlation_data));
    CHECK(str_eq(a->assigned_client_identifier, b->assigned_client_identifier));
    CHECK(str_eq(a->authentication_method, b->authentication_method));
    CHECK(str_eq(a->authentication_data, b->authentication_data));
    CHECK(str_eq(a->response_information, b->response_information));
    CHECK(str_eq(a->server_reference, b->server_reference));
    CHECK(str_eq(a->reason_string, b->reason_string));
    CHECK(a->user_property_count == b->user_property_count);
    CHECK(a->raw.n == b->raw.n);
}

/* Per-packet scratch: encodings and the buffers props_for_encode needs. */
typedef struct scratch {
    uint8_t *enc1, *enc2;
    size_t n1, n2;
    uint8_t *extra[4];
    uint32_t *ids[4];
} scratch_t;

static void scratch_init(scratch_t *s, size_t body_n)
{
    memset(s, 0, sizeof *s);
    for (int i = 0; i < 4; i++) {
        s->extra[i] = malloc(body_n + 1);
        s->ids[i] = malloc((body_n + 1) * sizeof(uint32_t));
    }
}

static void scratch_free(scratch_t *s)
{
    free(s->enc1);
    free(s->enc2);
    for (int i = 0; i < 4; i++) {
        free(s->extra[i]);
        free(s->ids[i]);
    }
}

/* Frame an encoding, checking that its header is what the encoder meant. */
static const uint8_t *reframe(const uint8_t *buf, size_t n, uint8_t type, size_t *body_n,
                              uint8_t *flags)
{
    mqtt_frame_t f;
    mqtt_error_t err;
    CHECK(mqtt_frame_decode(buf, n, &f, &err) == MQTT_OK);
    CHECK(f.type == type);
    CHECK(f.header_len + f.remaining == n);
    *body_n = f.remaining;
    *flags = f.flags;
    return buf + f.header_len;
}

#define ENCODE(s, which, call)                                                                     \
    do {                                                                                           \
        uint8_t *buf = NULL;                                                                       \
        size_t cap = 0;                                                                            \
        size_t need = call;                                                                        \
        CHECK(need > 0);                                                                           \
        buf = malloc(need);                                                                        \
        cap = need;                                                                                \
        CHECK((call) == need);                                                                     \
        (s)->enc##which = buf;                                                                     \
        (s)->n##which = need;                                                                      \
    } while (0)

static void exercise_topic(mqtt_str_t t)
{
    static const char *filters[] = {"#", "+", "+/+", "a/#", "$SYS/#", "a/+/c", "$share/g/#"};
    mqtt_str_t g, f;
    (void)mqtt_topic_filter_check(t.p, t.n);
    (void)mqtt_topic_name_check(t.p, t.n);
    int sh = mqtt_share_split(t.p, t.n, &g, &f);
    if (sh == 1)
        CHECK(g.n > 0 && f.n > 0 && g.p >= t.p && f.p + f.n == t.p + t.n);
    for (size_t i = 0; i < sizeof filters / sizeof filters[0]; i++) {
        const char *fl = filters[i];
        (void)mqtt_topic_match((const uint8_t *)fl, strlen(fl), t.p, t.n);
        if (mqtt_topic_filter_check(t.p, t.n) == 0 && sh == 0)
            (void)mqtt_topic_match(t.p, t.n, t.p, t.n);
    }
    /* A valid name matches itself as a filter, and "#" unless it starts with '$'. */
    if (t.n > 0 && mqtt_topic_name_check(t.p, t.n) == 0) {
        CHECK(mqtt_topic_match(t.p, t.n, t.p, t.n));
        CHECK(mqtt_topic_match((const uint8_t *)"#", 1, t.p, t.n) == (t.p[0] != '$'));
    }
}

static void do_connect(const uint8_t *body, size_t n)
{
    mqtt_connect_t c1, c2;
    mqtt_error_t err;
    scratch_t s;
    if (mqtt_connect_decode(body, n, &c1, &err) != MQTT_OK) {
        CHECK(err.rule != NULL);
        return;
    }
    scratch_init(&s, n);
    props_for_encode(&c1.props, s.extra[0], s.ids[0]);
    props_for_encode(&c1.will.props, s.extra[1], s.ids[1]);
    exercise_topic(c1.will.topic);
    ENCODE(&s, 1, mqtt_connect_encode(buf, cap, &c1));
    size_t bn;
    uint8_t fl;
    const uint8_t *b = reframe(s.enc1, s.n1, MQTT_CONNECT, &bn, &fl);
    CHECK(mqtt_connect_decode(b, bn, &c2, &err) == MQTT_OK);
    CHECK(c1.version == c2.version && c1.clean_start == c2.clean_start);
    CHECK(c1.keep_alive == c2.keep_alive && str_eq(c1.client_id, c2.client_id));
    CHECK(c1.has_will == c2.has_will && c1.will.qos == c2.will.qos);
    CHECK(c1.will.retain == c2.will.retain && str_eq(c1.will.topic, c2.will.topic));
    CHECK(str_eq(c1.will.payload, c2.will.payload));
    CHECK(c1.has_username == c2.has_username && str_eq(c1.username, c2.username));
    CHECK(c1.has_password == c2.has_password && str_eq(c1.password, c2.password));
    props_eq(&c1.props, &c2.props);
    props_eq(&c1.will.props, &c2.will.props);
    props_for_encode(&c2.props, s.extra[2], s.ids[2]);
    props_for_encode(&c2.will.props, s.extra[3], s.ids[3]);
    ENCODE(&s, 2, mqtt_connect_encode(buf, cap, &c2));
    CHECK(s.n1 == s.n2 && memcmp(s.enc1, s.enc2, s.n1) == 0);
    scratch_free(&s);
}

static void do_publish(uint8_t v, uint8_t flags, const uint8_t *body, size_t n)
{
    mqtt_publish_t p1, p2;
    mqtt_error_t err;
    scratch_t s;
    if (mqtt_publish_decode(v, flags, body, n, &p1, &err) != MQTT_OK) {
        CHECK(err.rule != NULL);
        return;
    }
    exercise_topic(p1.topic);
    (void)mqtt_utf8_check(p1.payload.p, p1.payload.n);
    scratch_init(&s, n);
    props_for_encode(&p1.props, s.extra[0], s.ids[0]);
    ENCODE(&s, 1, mqtt_publish_encode(buf, cap, v, &p1));
    size_t bn;
    uint8_t fl;
    const uint8_t *b = reframe(s.enc1, s.n1, MQTT_PUBLISH, &bn, &fl);
    CHECK(fl == flags);
    CHECK(mqtt_publish_decode(v, fl, b, bn, &p2, &err) == MQTT_OK);
    CHECK(p1.qos == p2.qos && p1.dup == p2.dup && p1.retain == p2.retain);
    CHECK(str_eq(p1.topic, p2.topic) && p1.packet_id == p2.packet_id);
    CHECK(str_eq(p1.payload, p2.payload));
    props_eq(&p1.props, &p2.props);
    props_for_encode(&p2.props, s.extra[1], s.ids[1]);
    ENCODE(&s, 2, mqtt_publish_encode(buf, cap, v, &p2));
    CHECK(s.n1 == s.n2 && memcmp(s.enc1, s.enc2, s.n1) == 0);
    /* Header plus payload written separately is the same packet. */
    size_t h = mqtt_publish_header_encode(NULL, 0, v, p1.qos, p1.dup, p1.retain, p1.topic,
                                          p1.packet_id, &p1.props, 0, p1.payload.n);
    CHECK(h + p1.payload.n == s.n1);
    scratch_free(&s);
}

static void do_ack(uint8_t v, uint8_t type, const uint8_t *body, size_t n)
{
    mqtt_ack_t a1, a2;
    mqtt_error_t err;
    scratch_t s;
    if (mqtt_ack_decode(v, type, body, n, &a1, &err) != MQTT_OK) {
        CHECK(err.rule != NULL);
        return;
    }
    scratch_init(&s, n);
    props_for_encode(&a1.props, s.extra[0], s.ids[0]);
    ENCODE(&s, 1, mqtt_ack_encode(buf, cap, v, type, a1.packet_id, a1.reason, &a1.props));
    size_t bn;
    uint8_t fl;
    const uint8_t *b = reframe(s.enc1, s.n1, type, &bn, &fl);
    CHECK(mqtt_ack_decode(v, type, b, bn, &a2, &err) == MQTT_OK);
    CHECK(a1.packet_id == a2.packet_id && a1.reason == a2.reason);
    props_eq(&a1.props, &a2.props);
    props_for_encode(&a2.props, s.extra[1], s.ids[1]);
    ENCODE(&s, 2, mqtt_ack_encode(buf, cap, v, type, a2.packet_id, a2.reason, &a2.props));
    CHECK(s.n1 == s.n2 && memcmp(s.enc1, s.enc2, s.n1) == 0);
    scratch_free(&s);
}

static void do_subscribe(uint8_t v, const uint8_t *body, size_t n)
{
    mqtt_subscribe_t s1, s2;
    mqtt_error_t err;
    scratch_t s;
    if (mqtt_subscribe_decode(v, body, n, &s1, &err) != MQTT_OK) {
        CHECK(err.rule != NULL);
        return;
    }
    mqtt_sub_entry_t *e = malloc(s1.count * sizeof *e);
    mqtt_bin_t cur = s1.entries;
    uint32_t k = 0;
    while (mqtt_subscribe_next(v, &cur, &e[k])) {
        exercise_topic(e[k].filter);
        k++;
        CHECK(k <= s1.count);
    }
    CHECK(k == s1.count && cur.n == 0);
    scratch_init(&s, n);
    props_for_encode(&s1.props, s.extra[0], s.ids[0]);
    ENCODE(&s, 1, mqtt_subscribe_encode(buf, cap, v, s1.packet_id, &s1.props, e, k));
    size_t bn;
    uint8_t fl;
    const uint8_t *b = reframe(s.enc1, s.n1, MQTT_SUBSCRIBE, &bn, &fl);
    CHECK(mqtt_subscribe_decode(v, b, bn, &s2, &err) == MQTT_OK);
    CHECK(s1.packet_id == s2.packet_id && s1.count == s2.count);
    CHECK(str_eq(s1.entries, s2.entries));
    props_eq(&s1.props, &s2.props);
    props_for_encode(&s2.props, s.extra[1], s.ids[1]);
    ENCODE(&s, 2, mqtt_subscribe_encode(buf, cap, v, s2.packet_id, &s2.props, e, k));
    CHECK(s.n1 == s.n2 && memcmp(s.enc1, s.enc2, s.n1) == 0);
    free(e);
    scratch_free(&s);
}

static void do_unsubscribe(uint8_t v, const uint8_t *body, size_t n)
{
    mqtt_unsubscribe_t u1, u2;
    mqtt_error_t err;
    scratch_t s;
    if (mqtt_unsubscribe_decode(v, body, n, &u1, &err) != MQTT_OK) {
        CHECK(err.rule != NULL);
        return;
    }
    mqtt_str_t *f = malloc(u1.count * sizeof *f);
    mqtt_bin_t cur = u1.entries;
    uint32_t k = 0;
    while (mqtt_unsubscribe_next(&cur, &f[k])) {
        exercise_topic(f[k]);
        k++;
        CHECK(k <= u1.count);
    }
    CHECK(k == u1.count && cur.n == 0);
    scratch_init(&s, n);
    props_for_encode(&u1.props, s.extra[0], s.ids[0]);
    ENCODE(&s, 1, mqtt_unsubscribe_encode(buf, cap, v, u1.packet_id, &u1.props, f, k));
    size_t bn;
    uint8_t fl;
    const uint8_t *b = reframe(s.enc1, s.n1, MQTT_UNSUBSCRIBE, &bn, &fl);
    CHECK(mqtt_unsubscribe_decode(v, b, bn, &u2, &err) == MQTT_OK);
    CHECK(u1.packet_id == u2.packet_id && u1.count == u2.count);
    CHECK(str_eq(u1.entries, u2.entries));
    props_eq(&u1.props, &u2.props);
    props_for_encode(&u2.props, s.extra[1], s.ids[1]);
    ENCODE(&s, 2, mqtt_unsubscribe_encode(buf, cap, v, u2.packet_id, &u2.props, f, k));
    CHECK(s.n1 == s.n2 && memcmp(s.enc1, s.enc2, s.n1) == 0);
    free(f);
    scratch_free(&s);
}

static void do_suback(uint8_t v, uint8_t type, const uint8_t *body, size_t n)
{
    mqtt_suback_t a1, a2;
    mqtt_error_t err;
    scratch_t s;
    if (mqtt_suback_decode(v, type, body, n, &a1, &err) != MQTT_OK) {
        CHECK(err.rule != NULL);
        return;
    }
    scratch_init(&s, n);
    props_for_encode(&a1.props, s.extra[0], s.ids[0]);
    ENCODE(&s, 1,
           mqtt_suback_encode(buf, cap, v, type, a1.packet_id, &a1.props, a1.codes.p, a1.codes.n));
    size_t bn;
    uint8_t fl;
    const uint8_t *b = reframe(s.enc1, s.n1, type, &bn, &fl);
    CHECK(mqtt_suback_decode(v, type, b, bn, &a2, &err) == MQTT_OK);
    CHECK(a1.packet_id == a2.packet_id && str_eq(a1.codes, a2.codes));
    props_eq(&a1.props, &a2.props);
    props_for_encode(&a2.props, s.extra[1], s.ids[1]);
    ENCODE(&s, 2,
           mqtt_suback_encode(buf, cap, v, type, a2.packet_id, &a2.props, a2.codes.p, a2.codes.n));
    CHECK(s.n1 == s.n2 && memcmp(s.enc1, s.enc2, s.n1) == 0);
    scratch_free(&s);
}

static void do_connack(uint8_t v, const uint8_t *body, size_t n)
{
    mqtt_connack_t a1, a2;
    mqtt_error_t err;
    scratch_t s;
    if (mqtt_connack_decode(v, body, n, &a1, &err) != MQTT_OK) {
        CHECK(err.rule != NULL);
        return;
    }
    scratch_init(&s, n);
    props_for_encode(&a1.props, s.extra[0], s.ids[0]);
    ENCODE(&s, 1, mqtt_connack_encode(buf, cap, v, a1.session_present, a1.code, &a1.props));
    size_t bn;
    uint8_t fl;
    const uint8_t *b = reframe(s.enc1, s.n1, MQTT_CONNACK, &bn, &fl);
    CHECK(mqtt_connack_decode(v, b, bn, &a2, &err) == MQTT_OK);
    CHECK(a1.session_present == a2.session_present && a1.code == a2.code);
    props_eq(&a1.props, &a2.props);
    props_for_encode(&a2.props, s.extra[1], s.ids[1]);
    ENCODE(&s, 2, mqtt_connack_encode(buf, cap, v, a2.session_present, a2.code, &a2.props));
    CHECK(s.n1 == s.n2 && memcmp(s.enc1, s.enc2, s.n1) == 0);
    scratch_free(&s);
}

static void do_reason(uint8_t v, uint8_t type, const uint8_t *body, size_t n)
{
    mqtt_reason_packet_t d1, d2;
    mqtt_error_t err;
    scratch_t s;
    int rc = type == MQTT_AUTH ? mqtt_auth_decode(body, n, &d1, &err)
                               : mqtt_disconnect_decode(v, body, n, &d1, &err);
    if (rc != MQTT_OK) {
        CHECK(err.rule != NULL);
        return;
    }
    if (type == MQTT_AUTH)
        v = MQTT_V5;
    scratch_init(&s, n);
    props_for_encode(&d1.props, s.extra[0], s.ids[0]);
    if (type == MQTT_AUTH)
        ENCODE(&s, 1, mqtt_auth_encode(buf, cap, d1.reason, &d1.props));
    else
        ENCODE(&s, 1, mqtt_disconnect_encode(buf, cap, v, d1.reason, &d1.props));
    size_t bn;
    uint8_t fl;
    const uint8_t *b = reframe(s.enc1, s.n1, type, &bn, &fl);
    rc = type == MQTT_AUTH ? mqtt_auth_decode(b, bn, &d2, &err)
                           : mqtt_disconnect_decode(v, b, bn, &d2, &err);
    CHECK(rc == MQTT_OK);
    CHECK(d1.reason == d2.reason);
    props_eq(&d1.props, &d2.props);
    props_for_encode(&d2.props, s.extra[1], s.ids[1]);
    if (type == MQTT_AUTH)
        ENCODE(&s, 2, mqtt_auth_encode(buf, cap, d2.reason, &d2.props));
    else
        ENCODE(&s, 2, mqtt_disconnect_encode(buf, cap, v, d2.reason, &d2.props));
    CHECK(s.n1 == s.n2 && memcmp(s.enc1, s.enc2, s.n1) == 0);
    scratch_free(&s);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    uint8_t v = (uint8_t)(MQTT_V31 + data[0] % 3);
    const uint8_t *p = data + 1;
    size_t n = size - 1;
    (void)mqtt_utf8_check(p, n);
    while (n > 0) {
        mqtt_frame_t f;
        mqtt_error_t err = {0, NULL};
        int rc = mqtt_frame_decode(p, n, &f, &err);
        if (rc == MQTT_FAIL) {
            CHECK(err.rule != NULL && err.reason == MQTT_RC_MALFORMED);
            break;
        }
        if (rc == MQTT_INCOMPLETE || n - f.header_len < f.remaining)
            break;
        const uint8_t *body = p + f.header_len;
        size_t bn = f.remaining;
        (void)mqtt_packet_name(f.type);
        switch (f.type) {
        case MQTT_CONNECT:
            do_connect(body, bn);
            break;
        case MQTT_CONNACK:
            do_connack(v, body, bn);
            break;
        case MQTT_PUBLISH:
            do_publish(v, f.flags, body, bn);
            break;
        case MQTT_PUBACK:
        case MQTT_PUBREC:
        case MQTT_PUBREL:
        case MQTT_PUBCOMP:
            do_ack(v, f.type, body, bn);
            break;
        case MQTT_SUBSCRIBE:
            do_subscribe(v, body, bn);
            break;
        case MQTT_SUBACK:
        case MQTT_UNSUBACK:
            do_suback(v, f.type, body, bn);
            break;
        case MQTT_UNSUBSCRIBE:
            do_unsubscribe(v, body, bn);
            break;
        case MQTT_PINGREQ:
        case MQTT_PINGRESP:
            if (mqtt_empty_decode(body, bn, &err) == MQTT_OK) {
                uint8_t out[2];
                CHECK(mqtt_empty_encode(out, sizeof out, f.type) == 2);
                CHECK(memcmp(out, p, 2) == 0);
            }
            break;
        case MQTT_DISCONNECT:
        case MQTT_AUTH:
            do_reason(v, f.type, body, bn);
            break;
        }
        p += f.header_len + bn;
        n -= f.header_len + bn;
    }
    return 0;
}
