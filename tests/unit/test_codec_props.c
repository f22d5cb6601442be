/* test_codec_props.c - unit tests of MQTT 5.0 property blocks: the table of which
 * property each packet may carry (section 2.2.2.2), duplicates, value ranges, defaults,
 * iteration, filtering and the encoder.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "mqtt/codec.h"

/* A property block under construction: entries in b[0..n). */
typedef struct bld {
    uint8_t b[512];
    size_t n;
} bld_t;

static void put(bld_t *x, const void *p, size_t n)
{
    assert_true(x->n + n <= sizeof x->b);
    memcpy(x->b + x->n, p, n);
    x->n += n;
}
static void put8(bld_t *x, uint8_t v)
{
    put(x, &v, 1);
}
static void put16(bld_t *x, uint16_t v)
{
    put8(x, (uint8_t)(v >> 8));
    put8(x, (uint8_t)v);
}
static void put32(bld_t *x, uint32_t v)
{
    put16(x, (uint16_t)(v >> 16));
    put16(x, (uint16_t)v);
}
static void putstr(bld_t *x, const char *s)
{
    put16(x, (uint16_t)strlen(s));
    put(x, s, strlen(s));
}

/* One valid entry of property id. */
static void put_prop(bld_t *x, uint8_t id)
{
    put8(x, id);
    switch (id) {
    case 0x01:
    case 0x17:
    case 0x19:
    case 0x24:
    case 0x25:
    case 0x28:
    case 0x29:
    case 0x2A:
        put8(x, 1);
        break;
    case 0x13:
    case 0x21:
    case 0x22:
    case 0x23:
        put16(x, 7);
        break;
    case 0x02:
    case 0x11:
    case 0x18:
    case 0x27:
        put32(x, 70000);
        break;
    case 0x0B:
        put8(x, 0x81); /* 129 as a variable byte integer */
        put8(x, 0x01);
        break;
    case 0x26:
        putstr(x, "k");
        putstr(x, "v");
        break;
    default:
        putstr(x, "t/s"); /* strings and binary data */
        break;
    }
}

/* Decode a block (entries x, prefixed with their length) in context ctx. */
static int decode(uint8_t ctx, const bld_t *x, mqtt_props_t *pr, mqtt_error_t *err)
{
    uint8_t buf[600];
    size_t k = mqtt_vbi_encode(buf, (uint32_t)x->n), used = 0;
    memcpy(buf + k, x->b, x->n);
    memset(err, 0, sizeof *err);
    int rc = mqtt_props_decode(ctx, buf, k + x->n, &used, pr, err);
    if (rc == MQTT_OK)
        assert_int_equal(used, k + x->n);
    else
        assert_non_null(err->rule);
    return rc;
}

static uint8_t decode_reason(uint8_t ctx, const bld_t *x)
{
    mqtt_props_t pr;
    mqtt_error_t err;
    if (decode(ctx, x, &pr, &err) == MQTT_OK)
        return 0;
    return err.reason;
}

/* Section 2.2.2.2, written out independently of props.c. */
static const struct {
    uint8_t id;
    const char *where; /* packet names, "WILL" for the will properties */
} allowed[] = {
    {0x01, "PUBLISH WILL"},
    {0x02, "PUBLISH WILL"},
    {0x03, "PUBLISH WILL"},
    {0x08, "PUBLISH WILL"},
    {0x09, "PUBLISH WILL"},
    {0x0B, "PUBLISH SUBSCRIBE"},
    {0x11, "CONNECT CONNACK DISCONNECT"},
    {0x12, "CONNACK"},
    {0x13, "CONNACK"},
    {0x15, "CONNECT CONNACK AUTH"},
    {0x16, "CONNECT CONNACK AUTH"},
    {0x17, "CONNECT"},
    {0x18, "WILL"},
    {0x19, "CONNECT"},
    {0x1A, "CONNACK"},
    {0x1C, "CONNACK DISCONNECT"},
    {0x1F, "CONNACK PUBACK PUBREC PUBREL PUBCOMP SUBACK UNSUBACK DISCONNECT AUTH"},
    {0x21, "CONNECT CONNACK"},
    {0x22, "CONNECT CONNACK"},
    {0x23, "PUBLISH"},
    {0x24, "CONNACK"},
    {0x25, "CONNACK"},
    {0x26, "CONNECT CONNACK PUBLISH WILL PUBACK PUBREC PUBREL PUBCOMP SUBSCRIBE SUBACK "
           "UNSUBSCRIBE UNSUBACK DISCONNECT AUTH"},
    {0x27, "CONNECT CONNACK"},
    {0x28, "CONNACK"},
    {0x29, "CONNACK"},
    {0x2A, "CONNACK"},
};

static bool listed(const char *where, uint8_t ctx)
{
    const char *name = ctx == MQTT_PROPS_WILL ? "WILL" : mqtt_packet_name(ctx);
    size_t n = strlen(name);
    for (const char *p = where; (p = strstr(p, name)) != NULL; p += n) {
        bool start = p == where || p[-1] == ' ';
        bool end = p[n] == '\0' || p[n] == ' ';
        if (start && end)
            return true;
    }
    return false;
}

static void test_props_table_section_2_2_2_2(void **state)
{
    static const uint8_t ctxs[] = {
        MQTT_PROPS_WILL,  MQTT_CONNECT,  MQTT_CONNACK,    MQTT_PUBLISH,   MQTT_PUBACK,
        MQTT_PUBREC,      MQTT_PUBREL,   MQTT_PUBCOMP,    MQTT_SUBSCRIBE, MQTT_SUBACK,
        MQTT_UNSUBSCRIBE, MQTT_UNSUBACK, MQTT_DISCONNECT, MQTT_AUTH,
    };
    (void)state;
    for (size_t i = 0; i < sizeof allowed / sizeof allowed[0]; i++) {
        for (size_t c = 0; c < sizeof ctxs; c++) {
            bld_t x = {.n = 0};
            put_prop(&x, allowed[i].id);
            if (allowed[i].id == 0x16)
                put_prop(&x, 0x15); /* data needs a method */
            uint8_t got = decode_reason(ctxs[c], &x);
            uint8_t want = listed(allowed[i].where, ctxs[c]) ? 0 : 0x81;
            if (got != want)
                fail_msg("property 0x%02X in %s: got 0x%02X want 0x%02X", allowed[i].id,
                         mqtt_packet_name(ctxs[c]), got, want);
        }
    }
}

static void test_props_unknown_identifier_malformed(void **state)
{
    static const uint8_t unknown[] = {0x00, 0x04, 0x05, 0x0A, 0x0C, 0x14, 0x1B,
                                      0x1D, 0x20, 0x2B, 0x7F, 0x80, 0xFF};
    (void)state;
    for (size_t i = 0; i < sizeof unknown; i++) {
        bld_t x = {.n = 0};
        put8(&x, unknown[i]);
        put8(&x, 0);
        put8(&x, 0);
        assert_int_equal(decode_reason(MQTT_PUBLISH, &x), 0x81);
    }
}

static void test_props_misplaced_rule_names_identifier(void **state)
{
    bld_t x = {.n = 0};
    mqtt_props_t pr;
    mqtt_error_t err;
    (void)state;
    put_prop(&x, 0x23);
    assert_int_equal(decode(MQTT_SUBSCRIBE, &x, &pr, &err), MQTT_FAIL);
    assert_int_equal(err.reason, 0x81);
    assert_non_null(strstr(err.rule, "0x23"));
}

static void test_props_duplicate_protocol_error(void **state)
{
    static const struct {
        uint8_t id, ctx;
    } cases[] = {
        {0x01, MQTT_PUBLISH},   {0x02, MQTT_PUBLISH},    {0x03, MQTT_PUBLISH},
        {0x08, MQTT_PUBLISH},   {0x09, MQTT_PUBLISH},    {0x23, MQTT_PUBLISH},
        {0x11, MQTT_CONNECT},   {0x21, MQTT_CONNECT},    {0x27, MQTT_CONNECT},
        {0x17, MQTT_CONNECT},   {0x19, MQTT_CONNECT},    {0x15, MQTT_CONNECT},
        {0x22, MQTT_CONNECT},   {0x12, MQTT_CONNACK},    {0x24, MQTT_CONNACK},
        {0x1F, MQTT_PUBACK},    {0x1C, MQTT_DISCONNECT}, {0x18, MQTT_PROPS_WILL},
        {0x0B, MQTT_SUBSCRIBE}, /* repeatable only in PUBLISH */
    };
    (void)state;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        bld_t x = {.n = 0};
        put_prop(&x, cases[i].id);
        put_prop(&x, cases[i].id);
        if (decode_reason(cases[i].ctx, &x) != 0x82)
            fail_msg("duplicate property 0x%02X not a protocol error", cases[i].id);
    }
}

static void test_props_user_property_repeats(void **state)
{
    bld_t x = {.n = 0};
    mqtt_props_t pr;
    mqtt_error_t err;
    (void)state;
    put_prop(&x, 0x26);
    put_prop(&x, 0x26);
    put_prop(&x, 0x26);
    assert_int_equal(decode(MQTT_CONNECT, &x, &pr, &err), MQTT_OK);
    assert_int_equal(pr.user_property_count, 3);
    assert_true(MQTT_PROP_HAS(&pr, MQTT_PROP_USER_PROPERTY));
}

static void test_props_subscription_identifier_repeats_in_publish(void **state)
{
    bld_t x = {.n = 0};
    mqtt_props_t pr;
    mqtt_error_t err;
    (void)state;
    put8(&x, 0x0B);
    put8(&x, 5);
    put8(&x, 0x0B);
    put8(&x, 0xFF);
    put8(&x, 0x7F);
    assert_int_equal(decode(MQTT_PUBLISH, &x, &pr, &err), MQTT_OK);
    assert_int_equal(pr.subscription_identifier, 5);
    assert_int_equal(pr.subscription_identifier_count, 2);
}

static void test_props_value_range_errors(void **state)
{
    static const struct {
        uint8_t ctx, id, len, v[4], reason;
    } cases[] = {
        {MQTT_PUBLISH, 0x01, 1, {2}, 0x82}, /* payload format indicator */
        {MQTT_PROPS_WILL, 0x01, 1, {0xFF}, 0x82},
        {MQTT_CONNECT, 0x17, 1, {2}, 0x82},    /* request problem information */
        {MQTT_CONNECT, 0x19, 1, {2}, 0x82},    /* request response information */
        {MQTT_CONNACK, 0x24, 1, {2}, 0x82},    /* maximum QoS */
        {MQTT_CONNACK, 0x25, 1, {2}, 0x82},    /* retain available */
        {MQTT_CONNACK, 0x28, 1, {2}, 0x82},    /* wildcard subscription available */
        {MQTT_CONNACK, 0x29, 1, {2}, 0x82},    /* subscription id available */
        {MQTT_CONNACK, 0x2A, 1, {2}, 0x82},    /* shared subscription available */
        {MQTT_CONNECT, 0x21, 2, {0, 0}, 0x82}, /* receive maximum 0 */
        {MQTT_CONNACK, 0x21, 2, {0, 0}, 0x82},
        {MQTT_CONNECT, 0x27, 4, {0, 0, 0, 0}, 0x82}, /* maximum packet size 0 */
        {MQTT_SUBSCRIBE, 0x0B, 1, {0}, 0x82},        /* subscription identifier 0 */
        {MQTT_PUBLISH, 0x0B, 1, {0}, 0x82},
        {MQTT_PUBLISH, 0x23, 2, {0, 0}, 0x94},                     /* MQTT-3.3.2-8: topic alias 0 */
        {MQTT_SUBSCRIBE, 0x0B, 2, {0x80, 0x00}, 0x81},             /* not shortest form */
        {MQTT_SUBSCRIBE, 0x0B, 4, {0xFF, 0xFF, 0xFF, 0xFF}, 0x81}, /* 5 bytes */
        {MQTT_PUBLISH, 0x02, 2, {0, 1}, 0x81},                     /* u32 cut short */
        {MQTT_PUBLISH, 0x23, 1, {1}, 0x81},                        /* u16 cut short */
        {MQTT_PUBLISH, 0x01, 0, {0}, 0x81},                        /* byte missing */
        {MQTT_PUBLISH, 0x03, 3, {0, 5, 'a'}, 0x81},                /* string past the block */
        {MQTT_PUBLISH, 0x03, 1, {0}, 0x81},                        /* string length cut */
        {MQTT_PUBLISH, 0x03, 3, {0, 1, 0xC0}, 0x81},               /* bad UTF-8 */
        {MQTT_PUBLISH, 0x03, 3, {0, 1, 0x00}, 0x81},               /* U+0000 */
        {MQTT_PUBLISH, 0x08, 3, {0, 1, '#'}, 0x82},                /* MQTT-3.3.2-14 */
        {MQTT_PUBLISH, 0x08, 2, {0, 0}, 0x82},                     /* empty response topic */
        {MQTT_CONNECT, 0x16, 2, {0, 0}, 0x82},                     /* data without method */
    };
    (void)state;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        bld_t x = {.n = 0};
        put8(&x, cases[i].id);
        put(&x, cases[i].v, cases[i].len);
        uint8_t got = decode_reason(cases[i].ctx, &x);
        if (got != cases[i].reason)
            fail_msg("case %zu (property 0x%02X): got 0x%02X want 0x%02X", i, cases[i].id, got,
                     cases[i].reason);
    }
}

static void test_props_user_property_bad_utf8(void **state)
{
    bld_t x = {.n = 0};
    (void)state;
    put8(&x, 0x26);
    putstr(&x, "k");
    put16(&x, 2);
    put8(&x, 0xED);
    put8(&x, 0xA0); /* surrogate, cut */
    assert_int_equal(decode_reason(MQTT_PUBLISH, &x), 0x81);
    x.n = 0;
    put8(&x, 0x26);
    put16(&x, 1);
    put8(&x, 0xFF);
    putstr(&x, "v");
    assert_int_equal(decode_reason(MQTT_PUBLISH, &x), 0x81);
}

static void test_props_block_length_errors(void **state)
{
    static const uint8_t past[] = {0x05, 0x01, 0x01}; /* says 5, has 2 */
    static const uint8_t nonmin[] = {0x80, 0x00};     /* length not shortest */
    static const uint8_t cut[] = {0x80};              /* length cut */
    static const uint8_t five[] = {0xFF, 0xFF, 0xFF, 0xFF, 0x7F};
    mqtt_props_t pr;
    mqtt_error_t err;
    size_t used;
    (void)state;
    assert_int_equal(mqtt_props_decode(MQTT_PUBLISH, past, sizeof past, &used, &pr, &err),
                     MQTT_FAIL);
    assert_int_equal(err.reason, 0x81);
    assert_int_equal(mqtt_props_decode(MQTT_PUBLISH, nonmin, sizeof nonmin, &used, &pr, &err),
                     MQTT_FAIL);
    assert_int_equal(err.reason, 0x81);
    assert_int_equal(mqtt_props_decode(MQTT_PUBLISH, cut, sizeof cut, &used, &pr, &err), MQTT_FAIL);
    assert_int_equal(err.reason, 0x81);
    assert_int_equal(mqtt_props_decode(MQTT_PUBLISH, cut, 0, &used, &pr, &err), MQTT_FAIL);
    assert_int_equal(mqtt_props_decode(MQTT_PUBLISH, five, sizeof five, &used, &pr, &err),
                     MQTT_FAIL);
    assert_int_equal(err.reason, 0x81);
}

static void test_props_defaults(void **state)
{
    static const uint8_t empty[] = {0x00, 0xAA};
    mqtt_props_t pr, d;
    mqtt_error_t err;
    size_t used;
    (void)state;
    mqtt_props_init(&d);
    assert_int_equal(d.present, 0);
    assert_int_equal(d.receive_maximum, 65535);
    assert_int_equal(d.maximum_qos, 2);
    assert_int_equal(d.retain_available, 1);
    assert_int_equal(d.wildcard_subscription_available, 1);
    assert_int_equal(d.subscription_identifier_available, 1);
    assert_int_equal(d.shared_subscription_available, 1);
    assert_int_equal(d.request_problem_information, 1);
    assert_int_equal(d.request_response_information, 0);
    assert_int_equal(d.topic_alias_maximum, 0);
    assert_int_equal(d.maximum_packet_size, 0);
    assert_int_equal(d.session_expiry_interval, 0);
    assert_int_equal(mqtt_props_decode(MQTT_CONNACK, empty, sizeof empty, &used, &pr, &err),
                     MQTT_OK);
    assert_int_equal(used, 1);
    assert_int_equal(pr.raw.n, 0);
    assert_memory_equal(&pr, &d, offsetof(mqtt_props_t, raw));
}

static void test_props_all_fields_round_trip(void **state)
{
    static const uint32_t ids[] = {1, 300, 268435455};
    uint8_t extra[64], buf[512], block[520];
    mqtt_props_t in, out;
    mqtt_error_t err;
    size_t used;
    (void)state;
    mqtt_props_init(&in);
    in.present = MQTT_PROP_BIT(0x01) | MQTT_PROP_BIT(0x02) | MQTT_PROP_BIT(0x03) |
                 MQTT_PROP_BIT(0x08) | MQTT_PROP_BIT(0x09) | MQTT_PROP_BIT(0x0B) |
                 MQTT_PROP_BIT(0x23);
    in.payload_format_indicator = 1;
    in.message_expiry_interval = 0xDEADBEEF;
    in.content_type = (mqtt_str_t){(const uint8_t *)"text/plain", 10};
    in.response_topic = (mqtt_str_t){(const uint8_t *)"re/ply", 6};
    in.correlation_data = (mqtt_bin_t){(const uint8_t *)"\x00\x01\x02", 3};
    in.sub_ids = ids;
    in.subscription_identifier_count = 3;
    in.topic_alias = 0xFFFF;
    size_t un =
        mqtt_prop_user_encode(extra, (const uint8_t *)"name", 4, (const uint8_t *)"value", 5);
    assert_int_equal(un, 5 + 4 + 5);
    un += mqtt_prop_user_encode(extra + un, (const uint8_t *)"", 0, (const uint8_t *)"", 0);
    in.extra = (mqtt_bin_t){extra, (uint32_t)un};

    size_t n = mqtt_props_size(&in);
    assert_int_equal(mqtt_props_encode(buf, &in), n);
    size_t k = mqtt_vbi_encode(block, (uint32_t)n);
    memcpy(block + k, buf, n);
    assert_int_equal(mqtt_props_decode(MQTT_PUBLISH, block, k + n, &used, &out, &err), MQTT_OK);
    assert_int_equal(used, k + n);
    assert_int_equal(out.present, in.present | MQTT_PROP_BIT(MQTT_PROP_USER_PROPERTY));
    assert_int_equal(out.payload_format_indicator, 1);
    assert_int_equal(out.message_expiry_interval, 0xDEADBEEF);
    assert_int_equal(out.content_type.n, 10);
    assert_memory_equal(out.content_type.p, "text/plain", 10);
    assert_memory_equal(out.response_topic.p, "re/ply", 6);
    assert_int_equal(out.correlation_data.n, 3);
    assert_int_equal(out.subscription_identifier, 1);
    assert_int_equal(out.subscription_identifier_count, 3);
    assert_int_equal(out.topic_alias, 0xFFFF);
    assert_int_equal(out.user_property_count, 2);

    /* Iterate: the entries come back in order with their values. */
    mqtt_bin_t cur = out.raw;
    mqtt_prop_t e;
    uint32_t seen_ids[3], ns = 0, users = 0;
    while (mqtt_prop_next(&cur, &e)) {
        if (e.id == 0x0B)
            seen_ids[ns++] = e.u32;
        if (e.id == 0x26) {
            if (users++ == 0) {
                assert_int_equal(e.a.n, 4);
                assert_memory_equal(e.a.p, "name", 4);
                assert_int_equal(e.b.n, 5);
                assert_memory_equal(e.b.p, "value", 5);
            } else {
                assert_int_equal(e.a.n, 0);
                assert_int_equal(e.b.n, 0);
            }
        }
    }
    assert_int_equal(cur.n, 0);
    assert_int_equal(ns, 3);
    assert_memory_equal(seen_ids, ids, sizeof ids);
    assert_int_equal(users, 2);

    /* Filter: keep only the user properties, verbatim. */
    uint8_t kept[512];
    size_t kn = mqtt_props_filter(out.raw, MQTT_PROP_BIT(MQTT_PROP_USER_PROPERTY), kept);
    assert_int_equal(kn, un);
    assert_memory_equal(kept, extra, un);
    kn = mqtt_props_filter(out.raw, 0, kept);
    assert_int_equal(kn, 0);
    kn = mqtt_props_filter(out.raw, ~0ull, kept);
    assert_int_equal(kn, out.raw.n);
    assert_memory_equal(kept, out.raw.p, kn);
}

static void test_props_connack_fields_round_trip(void **state)
{
    uint8_t buf[256], block[260];
    mqtt_props_t in, out;
    mqtt_error_t err;
    size_t used;
    (void)state;
    mqtt_props_init(&in);
    in.present =
        MQTT_PROP_BIT(0x11) | MQTT_PROP_BIT(0x12) | MQTT_PROP_BIT(0x13) | MQTT_PROP_BIT(0x15) |
        MQTT_PROP_BIT(0x16) | MQTT_PROP_BIT(0x1A) | MQTT_PROP_BIT(0x1C) | MQTT_PROP_BIT(0x1F) |
        MQTT_PROP_BIT(0x21) | MQTT_PROP_BIT(0x22) | MQTT_PROP_BIT(0x24) | MQTT_PROP_BIT(0x25) |
        MQTT_PROP_BIT(0x27) | MQTT_PROP_BIT(0x28) | MQTT_PROP_BIT(0x29) | MQTT_PROP_BIT(0x2A);
    in.session_expiry_interval = 3600;
    in.assigned_client_identifier = (mqtt_str_t){(const uint8_t *)"auto-1", 6};
    in.server_keep_alive = 30;
    in.authentication_method = (mqtt_str_t){(const uint8_t *)"SCRAM", 5};
    in.authentication_data = (mqtt_bin_t){(const uint8_t *)"\xff\x00", 2};
    in.response_information = (mqtt_str_t){(const uint8_t *)"ri", 2};
    in.server_reference = (mqtt_str_t){(const uint8_t *)"other:1883", 10};
    in.reason_string = (mqtt_str_t){(const uint8_t *)"ok", 2};
    in.receive_maximum = 10;
    in.topic_alias_maximum = 20;
    in.maximum_qos = 1;
    in.retain_available = 0;
    in.maximum_packet_size = 1 << 20;
    in.wildcard_subscription_available = 0;
    in.subscription_identifier_available = 0;
    in.shared_subscription_available = 0;
    size_t n = mqtt_props_encode(buf, &in);
    assert_int_equal(n, mqtt_props_size(&in));
    size_t k = mqtt_vbi_encode(block, (uint32_t)n);
    memcpy(block + k, buf, n);
    assert_int_equal(mqtt_props_decode(MQTT_CONNACK, block, k + n, &used, &out, &err), MQTT_OK);
    assert_int_equal(out.present, in.present);
    assert_int_equal(out.session_expiry_interval, 3600);
    assert_int_equal(out.server_keep_alive, 30);
    assert_int_equal(out.receive_maximum, 10);
    assert_int_equal(out.topic_alias_maximum, 20);
    assert_int_equal(out.maximum_qos, 1);
    assert_int_equal(out.retain_available, 0);
    assert_int_equal(out.maximum_packet_size, 1 << 20);
    assert_int_equal(out.wildcard_subscription_available, 0);
    assert_int_equal(out.subscription_identifier_available, 0);
    assert_int_equal(out.shared_subscription_available, 0);
    assert_memory_equal(out.server_reference.p, "other:1883", 10);
    assert_memory_equal(out.authentication_data.p, "\xff\x00", 2);
}

static void test_props_connect_and_will_fields(void **state)
{
    bld_t x = {.n = 0};
    mqtt_props_t pr;
    mqtt_error_t err;
    (void)state;
    put8(&x, 0x17);
    put8(&x, 0);
    put8(&x, 0x19);
    put8(&x, 1);
    put8(&x, 0x11);
    put32(&x, 0xFFFFFFFF);
    assert_int_equal(decode(MQTT_CONNECT, &x, &pr, &err), MQTT_OK);
    assert_int_equal(pr.request_problem_information, 0);
    assert_int_equal(pr.request_response_information, 1);
    assert_int_equal(pr.session_expiry_interval, 0xFFFFFFFF);
    x.n = 0;
    put8(&x, 0x18);
    put32(&x, 120);
    put8(&x, 0x01);
    put8(&x, 1);
    assert_int_equal(decode(MQTT_PROPS_WILL, &x, &pr, &err), MQTT_OK);
    assert_int_equal(pr.will_delay_interval, 120);
    assert_int_equal(pr.payload_format_indicator, 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_props_table_section_2_2_2_2),
        cmocka_unit_test(test_props_unknown_identifier_malformed),
        cmocka_unit_test(test_props_misplaced_rule_names_identifier),
        cmocka_unit_test(test_props_duplicate_protocol_error),
        cmocka_unit_test(test_props_user_property_repeats),
        cmocka_unit_test(test_props_subscription_identifier_repeats_in_publish),
        cmocka_unit_test(test_props_value_range_errors),
        cmocka_unit_test(test_props_user_property_bad_utf8),
        cmocka_unit_test(test_props_block_length_errors),
        cmocka_unit_test(test_props_defaults),
        cmocka_unit_test(test_props_all_fields_round_trip),
        cmocka_unit_test(test_props_connack_fields_round_trip),
        cmocka_unit_test(test_props_connect_and_will_fields),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
