/* test_codec.c - unit tests of the MQTT packet codec: the fixed header, and for every
 * control packet and protocol version 3, 4 and 5 a round trip through encoder and
 * decoder plus each Malformed Packet / Protocol Error case with its exact reason code.
 * Tests are named after the spec statement they cover where it has an ID.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "mqtt/codec.h"

/* ---- a packet body builder ---- */

typedef struct bld {
    uint8_t b[1024];
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
static void putstr(bld_t *x, const char *s)
{
    put16(x, (uint16_t)strlen(s));
    put(x, s, strlen(s));
}
/* A property block: its length, then the bytes p[0..n). */
static void putprops(bld_t *x, const void *p, size_t n)
{
    uint8_t v[4];
    put(x, v, mqtt_vbi_encode(v, (uint32_t)n));
    put(x, p, n);
}

static mqtt_error_t err;

#define EXPECT_FAIL(call, code)                                                                    \
    do {                                                                                           \
        memset(&err, 0, sizeof err);                                                               \
        assert_int_equal((call), MQTT_FAIL);                                                       \
        assert_int_equal(err.reason, (code));                                                      \
        assert_non_null(err.rule);                                                                 \
    } while (0)

static mqtt_str_t str(const char *s)
{
    return (mqtt_str_t){(const uint8_t *)s, (uint32_t)strlen(s)};
}

static bool str_is(mqtt_str_t s, const char *lit)
{
    return s.n == strlen(lit) && memcmp(s.p, lit, s.n) == 0;
}

/* Frame an encoded packet and return its body, checking the header. */
static const uint8_t *body_of(const uint8_t *buf, size_t n, uint8_t type, size_t *bn,
                              uint8_t *flags)
{
    mqtt_frame_t f;
    assert_int_equal(mqtt_frame_decode(buf, n, &f, &err), MQTT_OK);
    assert_int_equal(f.type, type);
    assert_int_equal(f.header_len + f.remaining, n);
    *bn = f.remaining;
    if (flags)
        *flags = f.flags;
    return buf + f.header_len;
}

/* ---- fixed header (section 2.1) ---- */

static void test_frame_basic(void **state)
{
    static const uint8_t b[] = {0x30, 0x80, 0x01};
    mqtt_frame_t f;
    (void)state;
    assert_int_equal(mqtt_frame_decode(b, sizeof b, &f, &err), MQTT_OK);
    assert_int_equal(f.type, MQTT_PUBLISH);
    assert_int_equal(f.flags, 0);
    assert_int_equal(f.header_len, 3);
    assert_int_equal(f.remaining, 128);
}

static void test_frame_incomplete(void **state)
{
    static const uint8_t b[] = {0x30, 0xFF, 0xFF, 0xFF, 0x7F};
    mqtt_frame_t f;
    (void)state;
    for (size_t n = 0; n < 5; n++)
        assert_int_equal(mqtt_frame_decode(b, n, &f, &err), MQTT_INCOMPLETE);
    assert_int_equal(mqtt_frame_decode(b, 5, &f, &err), MQTT_OK);
    assert_int_equal(f.remaining, MQTT_VBI_MAX);
    assert_int_equal(f.header_len, 5);
}

static void test_frame_packet_type_0(void **state)
{
    static const uint8_t b[] = {0x00, 0x00};
    mqtt_frame_t f;
    (void)state;
    EXPECT_FAIL(mqtt_frame_decode(b, 2, &f, &err), 0x81);
    /* Refused on the first byte alone. */
    EXPECT_FAIL(mqtt_frame_decode(b, 1, &f, &err), 0x81);
}

static void test_frame_reserved_flags_MQTT_2_1_3_1(void **state)
{
    static const struct {
        uint8_t first;
        bool ok;
    } cases[] = {
        {0x10, true},  {0x11, false}, {0x18, false}, {0x20, true},  {0x21, false}, {0x40, true},
        {0x42, false}, {0x50, true},  {0x52, false}, {0x62, true},  {0x60, false}, {0x63, false},
        {0x6A, false}, {0x70, true},  {0x72, false}, {0x82, true},  {0x80, false}, {0x83, false},
        {0x8A, false}, {0x90, true},  {0x92, false}, {0xA2, true},  {0xA0, false}, {0xA3, false},
        {0xB0, true},  {0xB2, false}, {0xC0, true},  {0xC1, false}, {0xD0, true},  {0xD8, false},
        {0xE0, true},  {0xE4, false}, {0xF0, true},  {0xF1, false},
    };
    (void)state;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        uint8_t b[2] = {cases[i].first, 0};
        mqtt_frame_t f;
        memset(&err, 0, sizeof err);
        int rc = mqtt_frame_decode(b, 2, &f, &err);
        if (cases[i].ok ? rc != MQTT_OK : (rc != MQTT_FAIL || err.reason != 0x81))
            fail_msg("first byte 0x%02X: rc %d", cases[i].first, rc);
    }
}

static void test_frame_publish_flags_MQTT_3_3_1_2_and_4(void **state)
{
    mqtt_frame_t f;
    uint8_t b[2] = {0, 0};
    (void)state;
    b[0] = 0x36; /* QoS 3 */
    EXPECT_FAIL(mqtt_frame_decode(b, 2, &f, &err), 0x81);
    assert_non_null(strstr(err.rule, "MQTT-3.3.1-4"));
    b[0] = 0x37;
    EXPECT_FAIL(mqtt_frame_decode(b, 2, &f, &err), 0x81);
    b[0] = 0x38; /* DUP at QoS 0 */
    EXPECT_FAIL(mqtt_frame_decode(b, 2, &f, &err), 0x81);
    assert_non_null(strstr(err.rule, "MQTT-3.3.1-2"));
    b[0] = 0x39;
    EXPECT_FAIL(mqtt_frame_decode(b, 2, &f, &err), 0x81);
    static const uint8_t ok[] = {0x30, 0x31, 0x32, 0x33, 0x34, 0x35, 0x3A, 0x3B, 0x3C, 0x3D};
    for (size_t i = 0; i < sizeof ok; i++) {
        b[0] = ok[i];
        assert_int_equal(mqtt_frame_decode(b, 2, &f, &err), MQTT_OK);
        assert_int_equal(f.flags, ok[i] & 0x0F);
    }
}

static void test_frame_remaining_length_too_long(void **state)
{
    static const uint8_t b[] = {0x30, 0xFF, 0xFF, 0xFF, 0xFF, 0x01};
    mqtt_frame_t f;
    (void)state;
    EXPECT_FAIL(mqtt_frame_decode(b, sizeof b, &f, &err), 0x81);
    assert_string_equal(err.rule, "remaining length longer than 4 bytes");
    EXPECT_FAIL(mqtt_frame_decode(b, 5, &f, &err), 0x81);
}

static void test_frame_remaining_length_not_shortest_MQTT_1_5_5_1(void **state)
{
    static const uint8_t b[] = {0xC0, 0x80, 0x00};
    static const uint8_t c[] = {0x30, 0x85, 0x80, 0x00};
    mqtt_frame_t f;
    (void)state;
    EXPECT_FAIL(mqtt_frame_decode(b, sizeof b, &f, &err), 0x81);
    EXPECT_FAIL(mqtt_frame_decode(c, sizeof c, &f, &err), 0x81);
    assert_non_null(strstr(err.rule, "MQTT-1.5.5-1"));
}

/* ---- CONNECT / CONNACK ---- */

static void connect_round_trip(uint8_t version, bool will, bool user, bool pass)
{
    uint8_t extra[32], buf[512];
    mqtt_connect_t c, d;
    memset(&c, 0, sizeof c);
    mqtt_props_init(&c.props);
    mqtt_props_init(&c.will.props);
    c.version = version;
    c.clean_start = true;
    c.keep_alive = 600;
    c.client_id = str("client-\xE2\x82\xAC");
    c.has_will = will;
    if (will) {
        c.will.qos = 2;
        c.will.retain = true;
        c.will.topic = str("will/topic");
        c.will.payload = (mqtt_bin_t){(const uint8_t *)"\x00\xFF\x01", 3};
    }
    c.has_username = user;
    c.username = user ? str("user") : str("");
    c.has_password = pass;
    c.password = pass ? (mqtt_bin_t){(const uint8_t *)"\x00pw", 3} : str("");
    if (version == MQTT_V5) {
        c.props.present = MQTT_PROP_BIT(0x11) | MQTT_PROP_BIT(0x21) | MQTT_PROP_BIT(0x27);
        c.props.session_expiry_interval = 99;
        c.props.receive_maximum = 5;
        c.props.maximum_packet_size = 4096;
        c.props.extra.n = (uint32_t)mqtt_prop_user_encode(extra, (const uint8_t *)"a", 1,
                                                          (const uint8_t *)"b", 1);
        c.props.extra.p = extra;
        c.will.props.present = MQTT_PROP_BIT(0x18) | MQTT_PROP_BIT(0x03);
        c.will.props.will_delay_interval = 10;
        c.will.props.content_type = str("json");
    }
    size_t n = mqtt_connect_encode(NULL, 0, &c);
    assert_true(n > 0 && n <= sizeof buf);
    memset(buf, 0xAA, sizeof buf);
    assert_int_equal(mqtt_connect_encode(buf, n - 1, &c), n); /* too small: nothing */
    assert_int_equal(buf[0], 0xAA);
    assert_int_equal(mqtt_connect_encode(buf, sizeof buf, &c), n);
    size_t bn;
    const uint8_t *b = body_of(buf, n, MQTT_CONNECT, &bn, NULL);
    assert_int_equal(mqtt_connect_decode(b, bn, &d, &err), MQTT_OK);
    assert_int_equal(d.version, version);
    assert_true(d.clean_start);
    assert_int_equal(d.keep_alive, 600);
    assert_true(str_is(d.client_id, "client-\xE2\x82\xAC"));
    assert_int_equal(d.has_will, will);
    if (will) {
        assert_int_equal(d.will.qos, 2);
        assert_true(d.will.retain);
        assert_true(str_is(d.will.topic, "will/topic"));
        assert_int_equal(d.will.payload.n, 3);
        assert_memory_equal(d.will.payload.p, "\x00\xFF\x01", 3);
    }
    assert_int_equal(d.has_username, user);
    assert_int_equal(d.has_password, pass);
    if (user)
        assert_true(str_is(d.username, "user"));
    if (pass)
        assert_memory_equal(d.password.p, "\x00pw", 3);
    if (version == MQTT_V5) {
        assert_int_equal(d.props.session_expiry_interval, 99);
        assert_int_equal(d.props.receive_maximum, 5);
        assert_int_equal(d.props.maximum_packet_size, 4096);
        assert_int_equal(d.props.user_property_count, 1);
        if (will) {
            assert_int_equal(d.will.props.will_delay_interval, 10);
            assert_true(str_is(d.will.props.content_type, "json"));
        }
    } else {
        assert_int_equal(d.props.present, 0);
        assert_int_equal(d.props.raw.n, 0);
    }
}

static void test_connect_round_trip_all_versions(void **state)
{
    (void)state;
    for (uint8_t v = MQTT_V31; v <= MQTT_V5; v++) {
        connect_round_trip(v, false, false, false);
        connect_round_trip(v, true, false, false);
        connect_round_trip(v, true, true, true);
        connect_round_trip(v, false, true, false);
    }
    connect_round_trip(MQTT_V5, true, false, true); /* 5.0: password alone is fine */
}

static void test_connect_v31_protocol_name(void **state)
{
    uint8_t buf[64];
    mqtt_connect_t c = {.version = MQTT_V31, .client_id = {(const uint8_t *)"x", 1}};
    (void)state;
    size_t n = mqtt_connect_encode(buf, sizeof buf, &c);
    assert_int_equal(n, 2 + 2 + 6 + 1 + 1 + 2 + 3);
    assert_memory_equal(buf + 2, "\x00\x06MQIsdp\x03", 9);
}

/* A CONNECT body: protocol name, level, flags, keep alive 60. */
static void connect_head(bld_t *x, const char *name, uint8_t level, uint8_t flags)
{
    x->n = 0;
    putstr(x, name);
    put8(x, level);
    put8(x, flags);
    put16(x, 60);
}

static void test_connect_unknown_protocol_MQTT_3_1_2_2(void **state)
{
    static const struct {
        const char *name;
        uint8_t level;
    } cases[] = {
        {"MQTX", 4},   {"MQTT", 3}, {"MQTT", 6}, {"MQTT", 0},   {"MQIsdp", 4},
        {"MQIsdp", 5}, {"mqtt", 4}, {"", 4},     {"MQTT", 255},
    };
    bld_t x;
    mqtt_connect_t c;
    (void)state;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        connect_head(&x, cases[i].name, cases[i].level, 0x02);
        putstr(&x, "id");
        EXPECT_FAIL(mqtt_connect_decode(x.b, x.n, &c, &err), 0x84);
        assert_int_equal(c.version, cases[i].level);
    }
    /* Level byte not there: malformed, version unknown. */
    x.n = 0;
    putstr(&x, "MQTT");
    EXPECT_FAIL(mqtt_connect_decode(x.b, x.n, &c, &err), 0x81);
    assert_int_equal(c.version, 0);
    x.n = 0;
    put16(&x, 10);
    put(&x, "MQ", 2);
    EXPECT_FAIL(mqtt_connect_decode(x.b, x.n, &c, &err), 0x81);
}

static void test_connect_flag_errors(void **state)
{
    static const struct {
        uint8_t level, flags, reason;
        const char *id;
    } cases[] = {
        {4, 0x03, 0x81, "MQTT-3.1.2-3"}, /* reserved bit 0 */
        {5, 0x01, 0x81, "MQTT-3.1.2-3"},
        {4, 0x08, 0x81, "MQTT-3.1.2-11"}, /* will QoS 1 without will */
        {5, 0x10, 0x81, "MQTT-3.1.2-11"}, /* will QoS 2 without will */
        {4, 0x20, 0x81, "MQTT-3.1.2-13"}, /* will retain without will */
        {5, 0x22, 0x81, "MQTT-3.1.2-13"},
        {4, 0x1C, 0x81, "MQTT-3.1.2-12"}, /* will QoS 3 */
        {5, 0x1C, 0x81, "MQTT-3.1.2-12"},
        {4, 0x40, 0x81, "MQTT-3.1.2-22"}, /* password without user name (3.1.1) */
        {3, 0x42, 0x81, "MQTT-3.1.2-22"},
    };
    bld_t x;
    mqtt_connect_t c;
    (void)state;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        connect_head(&x, cases[i].level == 3 ? "MQIsdp" : "MQTT", cases[i].level, cases[i].flags);
        if (cases[i].level == 5)
            put8(&x, 0);
        putstr(&x, "id");
        putstr(&x, "w");
        putstr(&x, "p");
        putstr(&x, "u");
        putstr(&x, "pw");
        EXPECT_FAIL(mqtt_connect_decode(x.b, x.n, &c, &err), cases[i].reason);
        if (!strstr(err.rule, cases[i].id))
            fail_msg("case %zu: rule \"%s\" does not cite %s", i, err.rule, cases[i].id);
    }
}

static void test_connect_empty_client_id_allowed(void **state)
{
    bld_t x;
    mqtt_connect_t c;
    (void)state;
    connect_head(&x, "MQTT", 4, 0x00);
    putstr(&x, "");
    assert_int_equal(mqtt_connect_decode(x.b, x.n, &c, &err), MQTT_OK);
    assert_int_equal(c.client_id.n, 0);
    assert_false(c.clean_start);
}

static void test_connect_v311_reads_no_property_length(void **state)
{
    bld_t x;
    mqtt_connect_t c;
    (void)state;
    /* A 0 byte after keep alive is the client id length on 3.1.1, not properties. */
    connect_head(&x, "MQTT", 4, 0x02);
    putstr(&x, "abc");
    assert_int_equal(mqtt_connect_decode(x.b, x.n, &c, &err), MQTT_OK);
    assert_true(str_is(c.client_id, "abc"));
    /* The same bytes as 5.0 read a property length first and fall short. */
    connect_head(&x, "MQTT", 5, 0x02);
    putstr(&x, "abc");
    EXPECT_FAIL(mqtt_connect_decode(x.b, x.n, &c, &err), 0x81);
}

static void test_connect_bad_utf8_MQTT_1_5_4_1(void **state)
{
    bld_t x;
    mqtt_connect_t c;
    (void)state;
    connect_head(&x, "MQTT", 4, 0x02);
    put16(&x, 3);
    put(&x, "\xED\xA0\x80", 3); /* surrogate in client id */
    EXPECT_FAIL(mqtt_connect_decode(x.b, x.n, &c, &err), 0x81);
    connect_head(&x, "MQTT", 4, 0x82);
    putstr(&x, "id");
    put16(&x, 3);
    put(&x, "u\x00u", 3); /* U+0000 in user name, MQTT-1.5.4-2 */
    EXPECT_FAIL(mqtt_connect_decode(x.b, x.n, &c, &err), 0x81);
    connect_head(&x, "MQTT", 4, 0x06);
    putstr(&x, "id");
    put16(&x, 1);
    put8(&x, 0xC0); /* will topic */
    putstr(&x, "payload");
    EXPECT_FAIL(mqtt_connect_decode(x.b, x.n, &c, &err), 0x81);
    /* The password is binary data: any bytes. */
    connect_head(&x, "MQTT", 4, 0xC2);
    putstr(&x, "id");
    putstr(&x, "u");
    put16(&x, 2);
    put(&x, "\x00\xFF", 2);
    assert_int_equal(mqtt_connect_decode(x.b, x.n, &c, &err), MQTT_OK);
}

static void test_connect_will_topic_wildcard(void **state)
{
    bld_t x;
    mqtt_connect_t c;
    (void)state;
    connect_head(&x, "MQTT", 4, 0x06);
    putstr(&x, "id");
    putstr(&x, "will/#");
    putstr(&x, "bye");
    EXPECT_FAIL(mqtt_connect_decode(x.b, x.n, &c, &err), 0x90);
    connect_head(&x, "MQTT", 5, 0x06);
    put8(&x, 0);
    putstr(&x, "id");
    put8(&x, 0);
    putstr(&x, "+/x");
    putstr(&x, "bye");
    EXPECT_FAIL(mqtt_connect_decode(x.b, x.n, &c, &err), 0x90);
}

static void test_connect_truncated_and_leftover(void **state)
{
    bld_t x;
    mqtt_connect_t c;
    (void)state;
    connect_head(&x, "MQTT", 4, 0xC2);
    putstr(&x, "id");
    putstr(&x, "user");
    putstr(&x, "pass");
    assert_int_equal(mqtt_connect_decode(x.b, x.n, &c, &err), MQTT_OK);
    for (size_t n = 0; n < x.n; n++) {
        memset(&err, 0, sizeof err);
        int rc = mqtt_connect_decode(x.b, n, &c, &err);
        assert_int_equal(rc, MQTT_FAIL);
        assert_int_equal(err.reason, 0x81);
    }
    put8(&x, 0);
    EXPECT_FAIL(mqtt_connect_decode(x.b, x.n, &c, &err), 0x81);
    assert_non_null(strstr(err.rule, "left over"));
}

static void test_connect_v5_properties_checked(void **state)
{
    static const uint8_t topic_alias[] = {0x23, 0x00, 0x01};
    static const uint8_t will_delay[] = {0x18, 0, 0, 0, 1};
    static const uint8_t session[] = {0x11, 0, 0, 0, 1};
    bld_t x;
    mqtt_connect_t c;
    (void)state;
    connect_head(&x, "MQTT", 5, 0x02);
    putprops(&x, topic_alias, sizeof topic_alias);
    putstr(&x, "id");
    EXPECT_FAIL(mqtt_connect_decode(x.b, x.n, &c, &err), 0x81);
    connect_head(&x, "MQTT", 5, 0x02);
    putprops(&x, will_delay, sizeof will_delay); /* a will property in CONNECT's block */
    putstr(&x, "id");
    EXPECT_FAIL(mqtt_connect_decode(x.b, x.n, &c, &err), 0x81);
    connect_head(&x, "MQTT", 5, 0x06);
    put8(&x, 0);
    putstr(&x, "id");
    putprops(&x, session, sizeof session); /* a CONNECT property in the will's block */
    putstr(&x, "t");
    putstr(&x, "p");
    EXPECT_FAIL(mqtt_connect_decode(x.b, x.n, &c, &err), 0x81);
    connect_head(&x, "MQTT", 5, 0x06);
    put8(&x, 0);
    putstr(&x, "id");
    putprops(&x, will_delay, sizeof will_delay);
    putstr(&x, "t");
    putstr(&x, "p");
    assert_int_equal(mqtt_connect_decode(x.b, x.n, &c, &err), MQTT_OK);
    assert_int_equal(c.will.props.will_delay_interval, 1);
}

static void test_connack_round_trip(void **state)
{
    uint8_t buf[64];
    mqtt_connack_t a;
    mqtt_props_t pr;
    size_t bn;
    (void)state;
    for (uint8_t v = MQTT_V31; v <= MQTT_V5; v++) {
        size_t n = mqtt_connack_encode(buf, sizeof buf, v, true, 0, NULL);
        assert_int_equal(n, v == MQTT_V5 ? 5 : 4);
        const uint8_t *b = body_of(buf, n, MQTT_CONNACK, &bn, NULL);
        assert_int_equal(mqtt_connack_decode(v, b, bn, &a, &err), MQTT_OK);
        assert_int_equal(a.session_present, v >= MQTT_V311); /* 3.1 has no such flag */
        assert_int_equal(a.code, 0);
    }
    mqtt_props_init(&pr);
    MQTT_PROP_SET(&pr, MQTT_PROP_ASSIGNED_CLIENT_IDENTIFIER);
    pr.assigned_client_identifier = str("auto-123");
    MQTT_PROP_SET(&pr, MQTT_PROP_MAXIMUM_QOS);
    pr.maximum_qos = 1;
    size_t n = mqtt_connack_encode(buf, sizeof buf, MQTT_V5, false, 0x00, &pr);
    const uint8_t *b = body_of(buf, n, MQTT_CONNACK, &bn, NULL);
    assert_int_equal(mqtt_connack_decode(MQTT_V5, b, bn, &a, &err), MQTT_OK);
    assert_true(str_is(a.props.assigned_client_identifier, "auto-123"));
    assert_int_equal(a.props.maximum_qos, 1);
    n = mqtt_connack_encode(buf, sizeof buf, MQTT_V311, false, MQTT_V3_REFUSED_NOT_AUTHORIZED,
                            &pr); /* props ignored below 5.0 */
    assert_int_equal(n, 4);
    assert_memory_equal(buf, "\x20\x02\x00\x05", 4);
}

static void test_connack_errors(void **state)
{
    static const uint8_t flags[] = {0x02, 0x00};
    static const uint8_t sp_refused[] = {0x01, 0x87, 0x00};
    static const uint8_t bad_code[] = {0x00, 0x03, 0x00};
    static const uint8_t long3[] = {0x00, 0x00, 0x00};
    mqtt_connack_t a;
    (void)state;
    EXPECT_FAIL(mqtt_connack_decode(MQTT_V311, flags, 2, &a, &err), 0x81); /* MQTT-3.2.2-1 */
    EXPECT_FAIL(mqtt_connack_decode(MQTT_V311, long3, 3, &a, &err), 0x81);
    EXPECT_FAIL(mqtt_connack_decode(MQTT_V311, long3, 1, &a, &err), 0x81);
    EXPECT_FAIL(mqtt_connack_decode(MQTT_V5, sp_refused, 3, &a, &err), 0x82);
    EXPECT_FAIL(mqtt_connack_decode(MQTT_V5, bad_code, 3, &a, &err), 0x82);
    EXPECT_FAIL(mqtt_connack_decode(MQTT_V5, long3, 2, &a, &err), 0x81); /* no prop length */
}

/* ---- PUBLISH ---- */

static void test_publish_round_trip_all_versions_and_qos(void **state)
{
    uint8_t buf[256];
    mqtt_publish_t p, d;
    (void)state;
    for (uint8_t v = MQTT_V31; v <= MQTT_V5; v++) {
        for (uint8_t qos = 0; qos <= 2; qos++) {
            memset(&p, 0, sizeof p);
            mqtt_props_init(&p.props);
            p.qos = qos;
            p.dup = qos > 0;
            p.retain = true;
            p.topic = str("sport/tennis/\xEF\xBB\xBF");
            p.packet_id = qos ? 0xBEEF : 0;
            p.payload = (mqtt_bin_t){(const uint8_t *)"\x00\x01payload", 9};
            if (v == MQTT_V5) {
                MQTT_PROP_SET(&p.props, MQTT_PROP_MESSAGE_EXPIRY_INTERVAL);
                p.props.message_expiry_interval = 60;
            }
            size_t n = mqtt_publish_encode(NULL, 0, v, &p);
            assert_int_equal(mqtt_publish_encode(buf, sizeof buf, v, &p), n);
            size_t bn;
            uint8_t fl;
            const uint8_t *b = body_of(buf, n, MQTT_PUBLISH, &bn, &fl);
            assert_int_equal(fl, (qos ? 0x08 : 0) | qos << 1 | 1);
            assert_int_equal(mqtt_publish_decode(v, fl, b, bn, &d, &err), MQTT_OK);
            assert_int_equal(d.qos, qos);
            assert_int_equal(d.dup, qos > 0);
            assert_true(d.retain);
            assert_true(str_is(d.topic, "sport/tennis/\xEF\xBB\xBF"));
            assert_int_equal(d.packet_id, p.packet_id);
            assert_int_equal(d.payload.n, 9);
            assert_memory_equal(d.payload.p, "\x00\x01payload", 9);
            assert_int_equal(d.props.message_expiry_interval, v == MQTT_V5 ? 60 : 0);
        }
    }
}

static void test_publish_v311_has_no_properties(void **state)
{
    bld_t x = {.n = 0};
    mqtt_publish_t d;
    (void)state;
    putstr(&x, "a/b");
    put8(&x, 0x03); /* would be a property length on 5.0 */
    put(&x, "xyz", 3);
    assert_int_equal(mqtt_publish_decode(MQTT_V311, 0, x.b, x.n, &d, &err), MQTT_OK);
    assert_int_equal(d.payload.n, 4);
    assert_int_equal(d.payload.p[0], 0x03);
    assert_int_equal(mqtt_publish_decode(MQTT_V31, 0, x.b, x.n, &d, &err), MQTT_OK);
    assert_int_equal(d.payload.n, 4);
}

static void test_publish_empty_payload(void **state)
{
    bld_t x = {.n = 0};
    mqtt_publish_t d;
    (void)state;
    putstr(&x, "t");
    put8(&x, 0);
    assert_int_equal(mqtt_publish_decode(MQTT_V5, 0, x.b, x.n, &d, &err), MQTT_OK);
    assert_int_equal(d.payload.n, 0);
}

static void test_publish_wildcard_topic_MQTT_3_3_2_2(void **state)
{
    static const char *topics[] = {"a/+", "#", "a/#", "+", "a+b"};
    mqtt_publish_t d;
    (void)state;
    for (uint8_t v = MQTT_V31; v <= MQTT_V5; v++) {
        for (size_t i = 0; i < sizeof topics / sizeof topics[0]; i++) {
            bld_t x = {.n = 0};
            putstr(&x, topics[i]);
            put8(&x, 0);
            EXPECT_FAIL(mqtt_publish_decode(v, 0, x.b, x.n, &d, &err), 0x90);
            assert_string_equal(err.rule, "MQTT-3.3.2-2: wildcard in PUBLISH topic name");
        }
    }
}

static void test_publish_bad_utf8_topic(void **state)
{
    bld_t x = {.n = 0};
    mqtt_publish_t d;
    (void)state;
    put16(&x, 2);
    put(&x, "\xC0\xAF", 2);
    put8(&x, 0);
    EXPECT_FAIL(mqtt_publish_decode(MQTT_V5, 0, x.b, x.n, &d, &err), 0x81);
    EXPECT_FAIL(mqtt_publish_decode(MQTT_V311, 0, x.b, x.n, &d, &err), 0x81);
}

static void test_publish_empty_topic(void **state)
{
    static const uint8_t alias[] = {0x23, 0x00, 0x05};
    static const uint8_t alias0[] = {0x23, 0x00, 0x00};
    bld_t x = {.n = 0};
    mqtt_publish_t d;
    (void)state;
    putstr(&x, "");
    EXPECT_FAIL(mqtt_publish_decode(MQTT_V311, 0, x.b, x.n, &d, &err), 0x82);
    EXPECT_FAIL(mqtt_publish_decode(MQTT_V31, 0, x.b, x.n, &d, &err), 0x82);
    put8(&x, 0);
    EXPECT_FAIL(mqtt_publish_decode(MQTT_V5, 0, x.b, x.n, &d, &err), 0x90);
    x.n = 0;
    putstr(&x, "");
    putprops(&x, alias, sizeof alias);
    assert_int_equal(mqtt_publish_decode(MQTT_V5, 0, x.b, x.n, &d, &err), MQTT_OK);
    assert_int_equal(d.topic.n, 0);
    assert_int_equal(d.props.topic_alias, 5);
    x.n = 0;
    putstr(&x, "t");
    putprops(&x, alias0, sizeof alias0);
    EXPECT_FAIL(mqtt_publish_decode(MQTT_V5, 0, x.b, x.n, &d, &err), 0x94);
}

static void test_publish_packet_id_0_MQTT_2_2_1_3(void **state)
{
    bld_t x = {.n = 0};
    mqtt_publish_t d;
    (void)state;
    putstr(&x, "t");
    put16(&x, 0);
    put8(&x, 0);
    EXPECT_FAIL(mqtt_publish_decode(MQTT_V5, 0x02, x.b, x.n, &d, &err), 0x82);
    EXPECT_FAIL(mqtt_publish_decode(MQTT_V311, 0x04, x.b, x.n, &d, &err), 0x82);
    /* At QoS 0 those bytes are payload (MQTT-2.2.1-2: no packet id). */
    assert_int_equal(mqtt_publish_decode(MQTT_V311, 0, x.b, x.n, &d, &err), MQTT_OK);
    assert_int_equal(d.packet_id, 0);
    assert_int_equal(d.payload.n, 3);
}

static void test_publish_truncated_and_flags(void **state)
{
    bld_t x = {.n = 0};
    mqtt_publish_t d;
    (void)state;
    putstr(&x, "topic");
    put16(&x, 7);
    for (size_t n = 0; n < x.n; n++)
        EXPECT_FAIL(mqtt_publish_decode(MQTT_V311, 0x02, x.b, n, &d, &err), 0x81);
    EXPECT_FAIL(mqtt_publish_decode(MQTT_V5, 0x02, x.b, x.n, &d, &err), 0x81);   /* no props */
    EXPECT_FAIL(mqtt_publish_decode(MQTT_V311, 0x06, x.b, x.n, &d, &err), 0x81); /* QoS 3 */
    EXPECT_FAIL(mqtt_publish_decode(MQTT_V311, 0x08, x.b, x.n, &d, &err), 0x81); /* DUP 0 */
}

static void test_publish_header_encode_with_shared_props(void **state)
{
    uint8_t buf[128], shared[32];
    mqtt_props_t pr;
    mqtt_publish_t d;
    (void)state;
    mqtt_props_init(&pr);
    MQTT_PROP_SET(&pr, MQTT_PROP_SUBSCRIPTION_IDENTIFIER);
    pr.subscription_identifier = 42;
    size_t sn = mqtt_prop_user_encode(shared, (const uint8_t *)"k", 1, (const uint8_t *)"v", 1);
    size_t h = mqtt_publish_header_encode(buf, sizeof buf, MQTT_V5, 1, false, false, str("a/b"), 9,
                                          &pr, sn, 5);
    assert_true(h > 0);
    memcpy(buf + h, shared, sn);
    memcpy(buf + h + sn, "hello", 5);
    size_t bn;
    uint8_t fl;
    const uint8_t *b = body_of(buf, h + sn + 5, MQTT_PUBLISH, &bn, &fl);
    assert_int_equal(mqtt_publish_decode(MQTT_V5, fl, b, bn, &d, &err), MQTT_OK);
    assert_int_equal(d.packet_id, 9);
    assert_int_equal(d.props.subscription_identifier, 42);
    assert_int_equal(d.props.user_property_count, 1);
    assert_int_equal(d.payload.n, 5);
    /* Below 5.0 there are no properties at all. */
    h = mqtt_publish_header_encode(buf, sizeof buf, MQTT_V311, 0, false, true, str("a/b"), 0, &pr,
                                   0, 5);
    assert_int_equal(h, 2 + 5);
    assert_memory_equal(buf,
                        "\x31\x0a\x00\x03"
                        "a/b",
                        7);
    /* Too small: the size, nothing written. */
    memset(buf, 0xAA, sizeof buf);
    assert_int_equal(
        mqtt_publish_header_encode(buf, 3, MQTT_V311, 0, false, true, str("a/b"), 0, NULL, 0, 5),
        7);
    assert_int_equal(buf[0], 0xAA);
}

static void test_publish_large_payload_remaining_length(void **state)
{
    static uint8_t payload[20000];
    static uint8_t buf[20100];
    mqtt_publish_t p = {.topic = {(const uint8_t *)"t", 1}, .payload = {payload, sizeof payload}};
    mqtt_publish_t d;
    (void)state;
    mqtt_props_init(&p.props);
    size_t n = mqtt_publish_encode(buf, sizeof buf, MQTT_V5, &p);
    assert_int_equal(n, 1 + 3 + 3 + 1 + sizeof payload);
    size_t bn;
    uint8_t fl;
    const uint8_t *b = body_of(buf, n, MQTT_PUBLISH, &bn, &fl);
    assert_int_equal(mqtt_publish_decode(MQTT_V5, fl, b, bn, &d, &err), MQTT_OK);
    assert_int_equal(d.payload.n, sizeof payload);
}

/* ---- PUBACK, PUBREC, PUBREL, PUBCOMP ---- */

static void test_ack_round_trip_all_types_and_versions(void **state)
{
    static const uint8_t types[] = {MQTT_PUBACK, MQTT_PUBREC, MQTT_PUBREL, MQTT_PUBCOMP};
    uint8_t buf[64];
    mqtt_ack_t a;
    mqtt_props_t pr;
    (void)state;
    mqtt_props_init(&pr);
    MQTT_PROP_SET(&pr, MQTT_PROP_REASON_STRING);
    pr.reason_string = str("why");
    for (uint8_t v = MQTT_V31; v <= MQTT_V5; v++) {
        for (size_t t = 0; t < sizeof types; t++) {
            uint8_t type = types[t];
            bool rel = type == MQTT_PUBREL || type == MQTT_PUBCOMP;
            uint8_t reason = rel ? 0x92 : 0x10;
            size_t bn;
            uint8_t fl;
            /* Reason 0, no props: 2 bytes of body on every version. */
            size_t n = mqtt_ack_encode(buf, sizeof buf, v, type, 77, 0, NULL);
            assert_int_equal(n, 4);
            const uint8_t *b = body_of(buf, n, type, &bn, &fl);
            assert_int_equal(fl, type == MQTT_PUBREL ? 2 : 0);
            assert_int_equal(mqtt_ack_decode(v, type, b, bn, &a, &err), MQTT_OK);
            assert_int_equal(a.packet_id, 77);
            assert_int_equal(a.reason, 0);
            if (v < MQTT_V5)
                continue;
            n = mqtt_ack_encode(buf, sizeof buf, v, type, 78, reason, NULL);
            assert_int_equal(n, 5);
            b = body_of(buf, n, type, &bn, NULL);
            assert_int_equal(mqtt_ack_decode(v, type, b, bn, &a, &err), MQTT_OK);
            assert_int_equal(a.reason, reason);
            n = mqtt_ack_encode(buf, sizeof buf, v, type, 79, 0, &pr);
            assert_int_equal(n, 2 + 2 + 1 + 1 + 6);
            b = body_of(buf, n, type, &bn, NULL);
            assert_int_equal(mqtt_ack_decode(v, type, b, bn, &a, &err), MQTT_OK);
            assert_int_equal(a.reason, 0);
            assert_true(str_is(a.props.reason_string, "why"));
        }
    }
}

static void test_ack_v5_short_forms_section_3_4_2_1(void **state)
{
    static const uint8_t two[] = {0x00, 0x05};
    static const uint8_t three[] = {0x00, 0x05, 0x80};
    static const uint8_t four[] = {0x00, 0x05, 0x80, 0x00};
    mqtt_ack_t a;
    (void)state;
    assert_int_equal(mqtt_ack_decode(MQTT_V5, MQTT_PUBACK, two, 2, &a, &err), MQTT_OK);
    assert_int_equal(a.reason, 0);
    assert_int_equal(mqtt_ack_decode(MQTT_V5, MQTT_PUBACK, three, 3, &a, &err), MQTT_OK);
    assert_int_equal(a.reason, 0x80);
    assert_int_equal(a.props.raw.n, 0);
    assert_int_equal(mqtt_ack_decode(MQTT_V5, MQTT_PUBREC, four, 4, &a, &err), MQTT_OK);
    assert_int_equal(a.reason, 0x80);
}

static void test_ack_errors(void **state)
{
    static const uint8_t id0[] = {0x00, 0x00};
    static const uint8_t three[] = {0x00, 0x05, 0x00};
    static const uint8_t bad_rel[] = {0x00, 0x05, 0x10};
    static const uint8_t bad_ack[] = {0x00, 0x05, 0x92};
    static const uint8_t bad_prop[] = {0x00, 0x05, 0x00, 0x02, 0x01, 0x01};
    static const uint8_t past[] = {0x00, 0x05, 0x00, 0x05, 0x1F, 0x00};
    static const uint8_t extra[] = {0x00, 0x05, 0x00, 0x00, 0x00};
    mqtt_ack_t a;
    (void)state;
    EXPECT_FAIL(mqtt_ack_decode(MQTT_V311, MQTT_PUBACK, id0, 1, &a, &err), 0x81);
    EXPECT_FAIL(mqtt_ack_decode(MQTT_V311, MQTT_PUBACK, id0, 2, &a, &err), 0x82);
    EXPECT_FAIL(mqtt_ack_decode(MQTT_V5, MQTT_PUBCOMP, id0, 2, &a, &err), 0x82);
    EXPECT_FAIL(mqtt_ack_decode(MQTT_V311, MQTT_PUBACK, three, 3, &a, &err), 0x81);
    EXPECT_FAIL(mqtt_ack_decode(MQTT_V31, MQTT_PUBREL, three, 3, &a, &err), 0x81);
    EXPECT_FAIL(mqtt_ack_decode(MQTT_V5, MQTT_PUBREL, bad_rel, 3, &a, &err), 0x82);
    EXPECT_FAIL(mqtt_ack_decode(MQTT_V5, MQTT_PUBCOMP, bad_rel, 3, &a, &err), 0x82);
    EXPECT_FAIL(mqtt_ack_decode(MQTT_V5, MQTT_PUBACK, bad_ack, 3, &a, &err), 0x82);
    assert_int_equal(mqtt_ack_decode(MQTT_V5, MQTT_PUBREL, bad_ack, 3, &a, &err), MQTT_OK);
    EXPECT_FAIL(mqtt_ack_decode(MQTT_V5, MQTT_PUBACK, bad_prop, sizeof bad_prop, &a, &err), 0x81);
    EXPECT_FAIL(mqtt_ack_decode(MQTT_V5, MQTT_PUBACK, past, sizeof past, &a, &err), 0x81);
    EXPECT_FAIL(mqtt_ack_decode(MQTT_V5, MQTT_PUBACK, extra, sizeof extra, &a, &err), 0x81);
}

/* ---- SUBSCRIBE / SUBACK / UNSUBSCRIBE / UNSUBACK ---- */

static void test_subscribe_round_trip_all_versions(void **state)
{
    uint8_t buf[256];
    mqtt_sub_entry_t in[3] = {
        {.filter = {(const uint8_t *)"a/+", 3},
         .qos = 1,
         .no_local = true,
         .retain_as_published = true,
         .retain_handling = 2},
        {.filter = {(const uint8_t *)"$share/g/#", 10}, .qos = 2, .retain_handling = 1},
        {.filter = {(const uint8_t *)"x", 1}, .qos = 0},
    };
    mqtt_props_t pr;
    mqtt_subscribe_t s;
    mqtt_sub_entry_t e;
    (void)state;
    mqtt_props_init(&pr);
    MQTT_PROP_SET(&pr, MQTT_PROP_SUBSCRIPTION_IDENTIFIER);
    pr.subscription_identifier = 268435455;
    for (uint8_t v = MQTT_V31; v <= MQTT_V5; v++) {
        size_t n = mqtt_subscribe_encode(buf, sizeof buf, v, 3, &pr, in, 3);
        size_t bn;
        uint8_t fl;
        const uint8_t *b = body_of(buf, n, MQTT_SUBSCRIBE, &bn, &fl);
        assert_int_equal(fl, 2);
        assert_int_equal(mqtt_subscribe_decode(v, b, bn, &s, &err), MQTT_OK);
        assert_int_equal(s.packet_id, 3);
        assert_int_equal(s.count, 3);
        assert_int_equal(s.props.subscription_identifier, v == MQTT_V5 ? 268435455 : 0);
        mqtt_bin_t cur = s.entries;
        for (size_t i = 0; i < 3; i++) {
            assert_int_equal(mqtt_subscribe_next(v, &cur, &e), 1);
            assert_int_equal(e.filter.n, in[i].filter.n);
            assert_memory_equal(e.filter.p, in[i].filter.p, e.filter.n);
            assert_int_equal(e.qos, in[i].qos);
            assert_int_equal(e.no_local, v == MQTT_V5 && in[i].no_local);
            assert_int_equal(e.retain_as_published, v == MQTT_V5 && in[i].retain_as_published);
            assert_int_equal(e.retain_handling, v == MQTT_V5 ? in[i].retain_handling : 0);
        }
        assert_int_equal(mqtt_subscribe_next(v, &cur, &e), 0);
    }
}

/* A SUBSCRIBE body with packet id, (5.0) empty properties and one entry. */
static void sub_body(bld_t *x, uint8_t v, uint16_t id, const char *filter, uint8_t opt)
{
    x->n = 0;
    put16(x, id);
    if (v == MQTT_V5)
        put8(x, 0);
    putstr(x, filter);
    put8(x, opt);
}

static void test_subscribe_options_v5_MQTT_3_8_3_5(void **state)
{
    bld_t x;
    mqtt_subscribe_t s;
    (void)state;
    sub_body(&x, 5, 1, "a", 0x40);
    EXPECT_FAIL(mqtt_subscribe_decode(MQTT_V5, x.b, x.n, &s, &err), 0x81);
    sub_body(&x, 5, 1, "a", 0x80);
    EXPECT_FAIL(mqtt_subscribe_decode(MQTT_V5, x.b, x.n, &s, &err), 0x81);
    sub_body(&x, 5, 1, "a", 0x03); /* QoS 3: section 3.8.3.1 says Protocol Error */
    EXPECT_FAIL(mqtt_subscribe_decode(MQTT_V5, x.b, x.n, &s, &err), 0x82);
    sub_body(&x, 5, 1, "a", 0x30); /* retain handling 3 */
    EXPECT_FAIL(mqtt_subscribe_decode(MQTT_V5, x.b, x.n, &s, &err), 0x82);
    sub_body(&x, 5, 1, "a", 0x2E); /* everything legal at once */
    assert_int_equal(mqtt_subscribe_decode(MQTT_V5, x.b, x.n, &s, &err), MQTT_OK);
}

static void test_subscribe_no_local_shared_MQTT_3_8_3_4(void **state)
{
    bld_t x;
    mqtt_subscribe_t s;
    (void)state;
    sub_body(&x, 5, 1, "$share/g/a", 0x04);
    EXPECT_FAIL(mqtt_subscribe_decode(MQTT_V5, x.b, x.n, &s, &err), 0x82);
    sub_body(&x, 5, 1, "$share/g/a", 0x00);
    assert_int_equal(mqtt_subscribe_decode(MQTT_V5, x.b, x.n, &s, &err), MQTT_OK);
    sub_body(&x, 5, 1, "a/#", 0x04);
    assert_int_equal(mqtt_subscribe_decode(MQTT_V5, x.b, x.n, &s, &err), MQTT_OK);
}

static void test_subscribe_options_v311_MQTT_3_8_3_4(void **state)
{
    static const uint8_t bad[] = {0x03, 0x04, 0x08, 0x10, 0x20, 0x40, 0x80, 0xFC};
    bld_t x;
    mqtt_subscribe_t s;
    (void)state;
    for (uint8_t v = MQTT_V31; v <= MQTT_V311; v++) {
        for (size_t i = 0; i < sizeof bad; i++) {
            sub_body(&x, v, 1, "a", bad[i]);
            EXPECT_FAIL(mqtt_subscribe_decode(v, x.b, x.n, &s, &err), 0x81);
        }
        sub_body(&x, v, 1, "a", 0x02);
        assert_int_equal(mqtt_subscribe_decode(v, x.b, x.n, &s, &err), MQTT_OK);
    }
}

static void test_subscribe_no_entries_MQTT_3_8_3_3(void **state)
{
    static const uint8_t v5[] = {0x00, 0x01, 0x00};
    static const uint8_t v4[] = {0x00, 0x01};
    mqtt_subscribe_t s;
    (void)state;
    EXPECT_FAIL(mqtt_subscribe_decode(MQTT_V5, v5, sizeof v5, &s, &err), 0x82);
    assert_non_null(strstr(err.rule, "MQTT-3.8.3-3"));
    EXPECT_FAIL(mqtt_subscribe_decode(MQTT_V311, v4, sizeof v4, &s, &err), 0x82);
}

static void test_subscribe_errors(void **state)
{
    bld_t x;
    mqtt_subscribe_t s;
    (void)state;
    sub_body(&x, 5, 0, "a", 0); /* packet id 0, MQTT-2.2.1-3 */
    EXPECT_FAIL(mqtt_subscribe_decode(MQTT_V5, x.b, x.n, &s, &err), 0x82);
    sub_body(&x, 4, 0, "a", 0);
    EXPECT_FAIL(mqtt_subscribe_decode(MQTT_V311, x.b, x.n, &s, &err), 0x82);
    sub_body(&x, 4, 1, "a", 0);
    EXPECT_FAIL(mqtt_subscribe_decode(MQTT_V311, x.b, x.n - 1, &s, &err), 0x81);
    EXPECT_FAIL(mqtt_subscribe_decode(MQTT_V311, x.b, 1, &s, &err), 0x81);
    sub_body(&x, 4, 1, "\xE0\x80\x80", 0); /* overlong, MQTT-3.8.3-1 */
    EXPECT_FAIL(mqtt_subscribe_decode(MQTT_V311, x.b, x.n, &s, &err), 0x81);
    x.n = 0;
    put16(&x, 1);
    static const uint8_t alias[] = {0x23, 0x00, 0x01};
    putprops(&x, alias, sizeof alias);
    putstr(&x, "a");
    put8(&x, 0);
    EXPECT_FAIL(mqtt_subscribe_decode(MQTT_V5, x.b, x.n, &s, &err), 0x81);
    assert_non_null(strstr(err.rule, "0x23"));
    /* A bad filter is the broker's SUBACK 0x8F, not a decode failure. */
    sub_body(&x, 5, 1, "a/#/b", 0);
    assert_int_equal(mqtt_subscribe_decode(MQTT_V5, x.b, x.n, &s, &err), MQTT_OK);
}

static void test_unsubscribe_round_trip_and_errors_MQTT_3_10_3_2(void **state)
{
    uint8_t buf[128];
    mqtt_str_t f[2] = {{(const uint8_t *)"a/#", 3}, {(const uint8_t *)"b", 1}};
    mqtt_unsubscribe_t u;
    mqtt_str_t e;
    (void)state;
    for (uint8_t v = MQTT_V31; v <= MQTT_V5; v++) {
        size_t n = mqtt_unsubscribe_encode(buf, sizeof buf, v, 9, NULL, f, 2);
        assert_int_equal(n, 2 + 2 + (v == MQTT_V5) + 5 + 3);
        size_t bn;
        uint8_t fl;
        const uint8_t *b = body_of(buf, n, MQTT_UNSUBSCRIBE, &bn, &fl);
        assert_int_equal(fl, 2);
        assert_int_equal(mqtt_unsubscribe_decode(v, b, bn, &u, &err), MQTT_OK);
        assert_int_equal(u.packet_id, 9);
        assert_int_equal(u.count, 2);
        mqtt_bin_t cur = u.entries;
        assert_int_equal(mqtt_unsubscribe_next(&cur, &e), 1);
        assert_true(str_is(e, "a/#"));
        assert_int_equal(mqtt_unsubscribe_next(&cur, &e), 1);
        assert_true(str_is(e, "b"));
        assert_int_equal(mqtt_unsubscribe_next(&cur, &e), 0);

        n = mqtt_unsubscribe_encode(buf, sizeof buf, v, 9, NULL, f, 0);
        b = body_of(buf, n, MQTT_UNSUBSCRIBE, &bn, NULL);
        EXPECT_FAIL(mqtt_unsubscribe_decode(v, b, bn, &u, &err), 0x82);
        n = mqtt_unsubscribe_encode(buf, sizeof buf, v, 0, NULL, f, 1);
        b = body_of(buf, n, MQTT_UNSUBSCRIBE, &bn, NULL);
        EXPECT_FAIL(mqtt_unsubscribe_decode(v, b, bn, &u, &err), 0x82);
    }
    bld_t x = {.n = 0};
    put16(&x, 1);
    put16(&x, 1);
    put8(&x, 0xFF);
    EXPECT_FAIL(mqtt_unsubscribe_decode(MQTT_V311, x.b, x.n, &u, &err), 0x81);
    EXPECT_FAIL(mqtt_unsubscribe_decode(MQTT_V311, x.b, x.n - 1, &u, &err), 0x81);
}

static void test_suback_unsuback_round_trip(void **state)
{
    static const uint8_t codes5[] = {0x00, 0x01, 0x02, 0x8F, 0xA2};
    static const uint8_t codes3[] = {0x00, 0x01, 0x02, 0x80};
    static const uint8_t ucodes[] = {0x00, 0x11, 0x87};
    uint8_t buf[64];
    mqtt_suback_t a;
    size_t bn;
    (void)state;
    for (uint8_t v = MQTT_V31; v <= MQTT_V5; v++) {
        const uint8_t *codes = v == MQTT_V5 ? codes5 : codes3;
        size_t count = v == MQTT_V5 ? sizeof codes5 : sizeof codes3;
        size_t n = mqtt_suback_encode(buf, sizeof buf, v, MQTT_SUBACK, 4, NULL, codes, count);
        const uint8_t *b = body_of(buf, n, MQTT_SUBACK, &bn, NULL);
        assert_int_equal(mqtt_suback_decode(v, MQTT_SUBACK, b, bn, &a, &err), MQTT_OK);
        assert_int_equal(a.packet_id, 4);
        assert_int_equal(a.codes.n, count);
        assert_memory_equal(a.codes.p, codes, count);

        n = mqtt_suback_encode(buf, sizeof buf, v, MQTT_UNSUBACK, 5, NULL, ucodes, 3);
        assert_int_equal(n, v == MQTT_V5 ? 2 + 2 + 1 + 3 : 4);
        b = body_of(buf, n, MQTT_UNSUBACK, &bn, NULL);
        assert_int_equal(mqtt_suback_decode(v, MQTT_UNSUBACK, b, bn, &a, &err), MQTT_OK);
        assert_int_equal(a.packet_id, 5);
        assert_int_equal(a.codes.n, v == MQTT_V5 ? 3 : 0);
    }
}

static void test_suback_errors_MQTT_3_9_3_2(void **state)
{
    static const uint8_t v4_bad[] = {0x00, 0x01, 0x03};
    static const uint8_t v4_none[] = {0x00, 0x01};
    static const uint8_t v5_bad[] = {0x00, 0x01, 0x00, 0x11};
    static const uint8_t un_v4_long[] = {0x00, 0x01, 0x00};
    static const uint8_t un_v5_bad[] = {0x00, 0x01, 0x00, 0x01};
    mqtt_suback_t a;
    (void)state;
    EXPECT_FAIL(mqtt_suback_decode(MQTT_V311, MQTT_SUBACK, v4_bad, 3, &a, &err), 0x81);
    EXPECT_FAIL(mqtt_suback_decode(MQTT_V311, MQTT_SUBACK, v4_none, 2, &a, &err), 0x82);
    EXPECT_FAIL(mqtt_suback_decode(MQTT_V5, MQTT_SUBACK, v5_bad, 4, &a, &err), 0x82);
    EXPECT_FAIL(mqtt_suback_decode(MQTT_V311, MQTT_UNSUBACK, un_v4_long, 3, &a, &err), 0x81);
    EXPECT_FAIL(mqtt_suback_decode(MQTT_V5, MQTT_UNSUBACK, un_v5_bad, 4, &a, &err), 0x82);
    EXPECT_FAIL(mqtt_suback_decode(MQTT_V5, MQTT_UNSUBACK, v4_none, 1, &a, &err), 0x81);
}

/* ---- PINGREQ, PINGRESP, DISCONNECT, AUTH ---- */

static void test_empty_packets(void **state)
{
    uint8_t buf[2];
    (void)state;
    assert_int_equal(mqtt_empty_encode(buf, 2, MQTT_PINGREQ), 2);
    assert_memory_equal(buf, "\xC0\x00", 2);
    assert_int_equal(mqtt_empty_encode(buf, 2, MQTT_PINGRESP), 2);
    assert_memory_equal(buf, "\xD0\x00", 2);
    assert_int_equal(mqtt_empty_encode(NULL, 0, MQTT_PINGRESP), 2);
    assert_int_equal(mqtt_empty_decode(buf, 0, &err), MQTT_OK);
    EXPECT_FAIL(mqtt_empty_decode(buf, 1, &err), 0x81);
}

static void test_disconnect_round_trip(void **state)
{
    uint8_t buf[64];
    mqtt_reason_packet_t d;
    mqtt_props_t pr;
    size_t bn;
    (void)state;
    for (uint8_t v = MQTT_V31; v <= MQTT_V311; v++) {
        size_t n = mqtt_disconnect_encode(buf, sizeof buf, v, 0x04, NULL);
        assert_int_equal(n, 2);
        assert_memory_equal(buf, "\xE0\x00", 2);
        assert_int_equal(mqtt_disconnect_decode(v, buf + 2, 0, &d, &err), MQTT_OK);
        EXPECT_FAIL(mqtt_disconnect_decode(v, buf, 1, &d, &err), 0x81);
    }
    size_t n = mqtt_disconnect_encode(buf, sizeof buf, MQTT_V5, 0, NULL);
    assert_int_equal(n, 2); /* remaining length 0 means reason 0 */
    assert_int_equal(mqtt_disconnect_decode(MQTT_V5, buf + 2, 0, &d, &err), MQTT_OK);
    assert_int_equal(d.reason, 0);
    n = mqtt_disconnect_encode(buf, sizeof buf, MQTT_V5, 0x04, NULL);
    assert_int_equal(n, 3);
    const uint8_t *b = body_of(buf, n, MQTT_DISCONNECT, &bn, NULL);
    assert_int_equal(mqtt_disconnect_decode(MQTT_V5, b, bn, &d, &err), MQTT_OK);
    assert_int_equal(d.reason, 0x04);
    mqtt_props_init(&pr);
    MQTT_PROP_SET(&pr, MQTT_PROP_SESSION_EXPIRY_INTERVAL);
    pr.session_expiry_interval = 7;
    MQTT_PROP_SET(&pr, MQTT_PROP_SERVER_REFERENCE);
    pr.server_reference = str("s2");
    n = mqtt_disconnect_encode(buf, sizeof buf, MQTT_V5, 0x9C, &pr);
    b = body_of(buf, n, MQTT_DISCONNECT, &bn, NULL);
    assert_int_equal(mqtt_disconnect_decode(MQTT_V5, b, bn, &d, &err), MQTT_OK);
    assert_int_equal(d.reason, 0x9C);
    assert_int_equal(d.props.session_expiry_interval, 7);
    assert_true(str_is(d.props.server_reference, "s2"));
}

static void test_disconnect_and_auth_errors(void **state)
{
    static const uint8_t bad_reason[] = {0x05};
    static const uint8_t auth_bad[] = {0x04};
    static const uint8_t auth_wrong_prop[] = {0x18, 0x02, 0x23, 0x00};
    static const uint8_t disc_wrong_prop[] = {0x00, 0x03, 0x15, 0x00, 0x00};
    static const uint8_t leftover[] = {0x00, 0x00, 0x00};
    mqtt_reason_packet_t d;
    (void)state;
    EXPECT_FAIL(mqtt_disconnect_decode(MQTT_V5, bad_reason, 1, &d, &err), 0x82);
    EXPECT_FAIL(mqtt_auth_decode(auth_bad, 1, &d, &err), 0x82);
    EXPECT_FAIL(mqtt_auth_decode(auth_wrong_prop, sizeof auth_wrong_prop, &d, &err), 0x81);
    EXPECT_FAIL(mqtt_disconnect_decode(MQTT_V5, disc_wrong_prop, sizeof disc_wrong_prop, &d, &err),
                0x81);
    EXPECT_FAIL(mqtt_disconnect_decode(MQTT_V5, leftover, sizeof leftover, &d, &err), 0x81);
}

static void test_auth_round_trip(void **state)
{
    uint8_t buf[64];
    mqtt_reason_packet_t a;
    mqtt_props_t pr;
    size_t bn;
    (void)state;
    assert_int_equal(mqtt_auth_encode(buf, sizeof buf, 0, NULL), 2);
    assert_memory_equal(buf, "\xF0\x00", 2);
    assert_int_equal(mqtt_auth_decode(buf + 2, 0, &a, &err), MQTT_OK);
    assert_int_equal(a.reason, 0);
    mqtt_props_init(&pr);
    MQTT_PROP_SET(&pr, MQTT_PROP_AUTHENTICATION_METHOD);
    pr.authentication_method = str("SCRAM-SHA-1");
    MQTT_PROP_SET(&pr, MQTT_PROP_AUTHENTICATION_DATA);
    pr.authentication_data = (mqtt_bin_t){(const uint8_t *)"\x01\x02", 2};
    size_t n = mqtt_auth_encode(buf, sizeof buf, 0x18, &pr);
    const uint8_t *b = body_of(buf, n, MQTT_AUTH, &bn, NULL);
    assert_int_equal(mqtt_auth_decode(b, bn, &a, &err), MQTT_OK);
    assert_int_equal(a.reason, 0x18);
    assert_true(str_is(a.props.authentication_method, "SCRAM-SHA-1"));
    assert_int_equal(a.props.authentication_data.n, 2);
}

/* Every encoder: cap 0 gives the size and writes nothing. */
static void test_encoders_size_with_cap_0(void **state)
{
    uint8_t buf[8] = {0xAA, 0xAA, 0xAA, 0xAA, 0xAA, 0xAA, 0xAA, 0xAA};
    uint8_t codes[1] = {0};
    mqtt_sub_entry_t e = {.filter = {(const uint8_t *)"a", 1}};
    mqtt_str_t f = {(const uint8_t *)"a", 1};
    (void)state;
    assert_int_equal(mqtt_connack_encode(buf, 0, MQTT_V5, false, 0, NULL), 5);
    assert_int_equal(mqtt_ack_encode(buf, 3, MQTT_V5, MQTT_PUBACK, 1, 0x80, NULL), 5);
    assert_int_equal(mqtt_subscribe_encode(buf, 0, MQTT_V5, 1, NULL, &e, 1), 2 + 2 + 1 + 4);
    assert_int_equal(mqtt_unsubscribe_encode(buf, 0, MQTT_V311, 1, NULL, &f, 1), 2 + 2 + 3);
    assert_int_equal(mqtt_suback_encode(buf, 0, MQTT_V311, MQTT_SUBACK, 1, NULL, codes, 1), 5);
    assert_int_equal(mqtt_disconnect_encode(buf, 0, MQTT_V5, 0x81, NULL), 3);
    assert_int_equal(mqtt_auth_encode(buf, 1, 0x19, NULL), 3);
    assert_int_equal(mqtt_empty_encode(buf, 1, MQTT_PINGREQ), 2);
    for (size_t i = 0; i < sizeof buf; i++)
        assert_int_equal(buf[i], 0xAA);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_frame_basic),
        cmocka_unit_test(test_frame_incomplete),
        cmocka_unit_test(test_frame_packet_type_0),
        cmocka_unit_test(test_frame_reserved_flags_MQTT_2_1_3_1),
        cmocka_unit_test(test_frame_publish_flags_MQTT_3_3_1_2_and_4),
        cmocka_unit_test(test_frame_remaining_length_too_long),
        cmocka_unit_test(test_frame_remaining_length_not_shortest_MQTT_1_5_5_1),
        cmocka_unit_test(test_connect_round_trip_all_versions),
        cmocka_unit_test(test_connect_v31_protocol_name),
        cmocka_unit_test(test_connect_unknown_protocol_MQTT_3_1_2_2),
        cmocka_unit_test(test_connect_flag_errors),
        cmocka_unit_test(test_connect_empty_client_id_allowed),
        cmocka_unit_test(test_connect_v311_reads_no_property_length),
        cmocka_unit_test(test_connect_bad_utf8_MQTT_1_5_4_1),
        cmocka_unit_test(test_connect_will_topic_wildcard),
        cmocka_unit_test(test_connect_truncated_and_leftover),
        cmocka_unit_test(test_connect_v5_properties_checked),
        cmocka_unit_test(test_connack_round_trip),
        cmocka_unit_test(test_connack_errors),
        cmocka_unit_test(test_publish_round_trip_all_versions_and_qos),
        cmocka_unit_test(test_publish_v311_has_no_properties),
        cmocka_unit_test(test_publish_empty_payload),
        cmocka_unit_test(test_publish_wildcard_topic_MQTT_3_3_2_2),
        cmocka_unit_test(test_publish_bad_utf8_topic),
        cmocka_unit_test(test_publish_empty_topic),
        cmocka_unit_test(test_publish_packet_id_0_MQTT_2_2_1_3),
        cmocka_unit_test(test_publish_truncated_and_flags),
        cmocka_unit_test(test_publish_header_encode_with_shared_props),
        cmocka_unit_test(test_publish_large_payload_remaining_length),
        cmocka_unit_test(test_ack_round_trip_all_types_and_versions),
        cmocka_unit_test(test_ack_v5_short_forms_section_3_4_2_1),
        cmocka_unit_test(test_ack_errors),
        cmocka_unit_test(test_subscribe_round_trip_all_versions),
        cmocka_unit_test(test_subscribe_options_v5_MQTT_3_8_3_5),
        cmocka_unit_test(test_subscribe_no_local_shared_MQTT_3_8_3_4),
        cmocka_unit_test(test_subscribe_options_v311_MQTT_3_8_3_4),
        cmocka_unit_test(test_subscribe_no_entries_MQTT_3_8_3_3),
        cmocka_unit_test(test_subscribe_errors),
        cmocka_unit_test(test_unsubscribe_round_trip_and_errors_MQTT_3_10_3_2),
        cmocka_unit_test(test_suback_unsuback_round_trip),
        cmocka_unit_test(test_suback_errors_MQTT_3_9_3_2),
        cmocka_unit_test(test_empty_packets),
        cmocka_unit_test(test_disconnect_round_trip),
        cmocka_unit_test(test_disconnect_and_auth_errors),
        cmocka_unit_test(test_auth_round_trip),
        cmocka_unit_test(test_encoders_size_with_cap_0),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
