/* test_codec_strings.c - unit tests of the codec's primitives: variable byte integers,
 * UTF-8 validation, topic name and filter checks, shared subscription splitting, topic
 * matching, and the packet and reason code names.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "mqtt/codec.h"

#define S(lit) (const uint8_t *)(lit), (sizeof(lit) - 1)

/* ---- variable byte integer (MQTT-1.5.5-1) ---- */

static void test_vbi_round_trip_edges(void **state)
{
    static const struct {
        uint32_t v;
        uint8_t enc[4];
        size_t n;
    } cases[] = {
        {0, {0x00}, 1},
        {127, {0x7F}, 1},
        {128, {0x80, 0x01}, 2},
        {16383, {0xFF, 0x7F}, 2},
        {16384, {0x80, 0x80, 0x01}, 3},
        {2097151, {0xFF, 0xFF, 0x7F}, 3},
        {2097152, {0x80, 0x80, 0x80, 0x01}, 4},
        {268435455, {0xFF, 0xFF, 0xFF, 0x7F}, 4},
    };
    (void)state;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        uint8_t out[4];
        uint32_t v = 12345;
        assert_int_equal(mqtt_vbi_size(cases[i].v), cases[i].n);
        assert_int_equal(mqtt_vbi_encode(out, cases[i].v), cases[i].n);
        assert_memory_equal(out, cases[i].enc, cases[i].n);
        assert_int_equal(mqtt_vbi_decode(cases[i].enc, cases[i].n, &v), (int)cases[i].n);
        assert_int_equal(v, cases[i].v);
        /* One byte short of the whole encoding: more bytes needed. */
        assert_int_equal(mqtt_vbi_decode(cases[i].enc, cases[i].n - 1, &v), 0);
    }
}

static void test_vbi_five_bytes_malformed(void **state)
{
    static const uint8_t five[] = {0xFF, 0xFF, 0xFF, 0xFF, 0x7F};
    static const uint8_t zeros[] = {0x80, 0x80, 0x80, 0x80, 0x01};
    uint32_t v;
    (void)state;
    assert_int_equal(mqtt_vbi_decode(five, sizeof five, &v), -1);
    assert_int_equal(mqtt_vbi_decode(zeros, sizeof zeros, &v), -1);
    /* Four continuation bytes are already enough to know. */
    assert_int_equal(mqtt_vbi_decode(five, 4, &v), -1);
}

static void test_vbi_not_shortest_form_MQTT_1_5_5_1(void **state)
{
    static const uint8_t zero2[] = {0x80, 0x00};
    static const uint8_t v127_2[] = {0xFF, 0x00};
    static const uint8_t zero4[] = {0x80, 0x80, 0x80, 0x00};
    static const uint8_t v128_3[] = {0x80, 0x81, 0x00};
    uint32_t v;
    (void)state;
    assert_int_equal(mqtt_vbi_decode(zero2, 2, &v), -1);
    assert_int_equal(mqtt_vbi_decode(v127_2, 2, &v), -1);
    assert_int_equal(mqtt_vbi_decode(zero4, 4, &v), -1);
    assert_int_equal(mqtt_vbi_decode(v128_3, 3, &v), -1);
}

static void test_vbi_empty_needs_more(void **state)
{
    uint32_t v;
    (void)state;
    assert_int_equal(mqtt_vbi_decode((const uint8_t *)"", 0, &v), 0);
}

/* ---- UTF-8 (MQTT-1.5.4-1, -2, -3) ---- */

static void test_utf8_valid(void **state)
{
    (void)state;
    assert_int_equal(mqtt_utf8_check(S("")), 0);
    assert_int_equal(mqtt_utf8_check(S("sport/tennis")), 0);
    assert_int_equal(mqtt_utf8_check(S("\x7F")), 0);
    assert_int_equal(mqtt_utf8_check(S("\xC2\x80")), 0);         /* U+0080 */
    assert_int_equal(mqtt_utf8_check(S("\xDF\xBF")), 0);         /* U+07FF */
    assert_int_equal(mqtt_utf8_check(S("\xE0\xA0\x80")), 0);     /* U+0800 */
    assert_int_equal(mqtt_utf8_check(S("\xED\x9F\xBF")), 0);     /* U+D7FF */
    assert_int_equal(mqtt_utf8_check(S("\xEE\x80\x80")), 0);     /* U+E000 */
    assert_int_equal(mqtt_utf8_check(S("\xEF\xBB\xBF")), 0);     /* U+FEFF kept, MQTT-1.5.4-3 */
    assert_int_equal(mqtt_utf8_check(S("\xEF\xBF\xBF")), 0);     /* U+FFFF */
    assert_int_equal(mqtt_utf8_check(S("\xF0\x90\x80\x80")), 0); /* U+10000 */
    assert_int_equal(mqtt_utf8_check(S("\xF4\x8F\xBF\xBF")), 0); /* U+10FFFF */
    assert_int_equal(mqtt_utf8_check(S("caf\xC3\xA9/\xE2\x82\xAC")), 0);
}

static void test_utf8_invalid_MQTT_1_5_4_1(void **state)
{
    static const struct {
        const char *s;
        size_t n;
    } bad[] = {
        {"\x00", 1},             /* U+0000, MQTT-1.5.4-2 */
        {"a\x00z", 3},           /* U+0000 inside */
        {"\xC0\x80", 2},         /* overlong U+0000 */
        {"\xC1\xBF", 2},         /* overlong */
        {"\xE0\x80\x80", 3},     /* overlong */
        {"\xE0\x9F\xBF", 3},     /* overlong U+07FF */
        {"\xF0\x80\x80\x80", 4}, /* overlong */
        {"\xF0\x8F\xBF\xBF", 4}, /* overlong U+FFFF */
        {"\xED\xA0\x80", 3},     /* U+D800 surrogate */
        {"\xED\xBF\xBF", 3},     /* U+DFFF surrogate */
        {"\xF4\x90\x80\x80", 4}, /* U+110000 */
        {"\xF5\x80\x80\x80", 4}, /* lead byte above F4 */
        {"\xFF", 1},             /* never valid */
        {"\xFE", 1},             /* never valid */
        {"\x80", 1},             /* lone continuation */
        {"a\xBF", 2},            /* lone continuation */
        {"\xC2", 1},             /* truncated 2-byte */
        {"\xE2\x82", 2},         /* truncated 3-byte */
        {"\xF0\x90\x80", 3},     /* truncated 4-byte */
        {"\xC2\x41", 2},         /* bad continuation */
        {"\xE2\x28\xA1", 3},     /* bad continuation */
        {"\xE2\x82\x28", 3},     /* bad third byte */
        {"\xF0\x90\x28\xBC", 4}, /* bad third byte */
        {"\xF0\x90\x80\xC0", 4}, /* bad fourth byte */
    };
    (void)state;
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        if (mqtt_utf8_check((const uint8_t *)bad[i].s, bad[i].n) != -1)
            fail_msg("case %zu accepted", i);
    }
}

/* ---- topic names and filters (section 4.7) ---- */

static void test_topic_name_check_MQTT_3_3_2_2(void **state)
{
    (void)state;
    assert_int_equal(mqtt_topic_name_check(S("a")), 0);
    assert_int_equal(mqtt_topic_name_check(S("sport/tennis/player1")), 0);
    assert_int_equal(mqtt_topic_name_check(S("/")), 0);
    assert_int_equal(mqtt_topic_name_check(S("$SYS/broker")), 0);
    assert_int_equal(mqtt_topic_name_check(S("")), 0x90);
    assert_int_equal(mqtt_topic_name_check(S("+")), 0x90);
    assert_int_equal(mqtt_topic_name_check(S("#")), 0x90);
    assert_int_equal(mqtt_topic_name_check(S("a/+/b")), 0x90);
    assert_int_equal(mqtt_topic_name_check(S("a/#")), 0x90);
    assert_int_equal(mqtt_topic_name_check(S("a+b")), 0x90);
}

static void test_topic_filter_check_MQTT_4_7_1(void **state)
{
    static const char *good[] = {
        "#",
        "+",
        "+/+",
        "/",
        "/+",
        "+/",
        "a/#",
        "a/+/b",
        "sport/tennis/#",
        "$SYS/#",
        "+/tennis/#",
        "a//b",
        "$share/g/a/#",
        "$share/g/#",
        "$share/g/+",
        "$share",
        "$share/g//",
        "$sharex/a",
    };
    static const char *bad[] = {
        "",           "a#",          "#/a",          "a/#/b",
        "a/b#",       "a+",          "+a",           "a/+b",
        "a/b+/c",     "##",          "++",           "$share/",
        "$share//a",  "$share/g",    "$share/g/",    "$share/g+/a",
        "$share/#/a", "$share/g/a#", "$share/g/#/a",
    };
    (void)state;
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++)
        if (mqtt_topic_filter_check((const uint8_t *)good[i], strlen(good[i])) != 0)
            fail_msg("good filter \"%s\" refused", good[i]);
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        if (mqtt_topic_filter_check((const uint8_t *)bad[i], strlen(bad[i])) != 0x8F)
            fail_msg("bad filter \"%s\" accepted", bad[i]);
}

static void test_share_split_MQTT_4_8_2(void **state)
{
    mqtt_str_t g, f;
    (void)state;
    assert_int_equal(mqtt_share_split(S("$share/grp/a/b"), &g, &f), 1);
    assert_int_equal(g.n, 3);
    assert_memory_equal(g.p, "grp", 3);
    assert_int_equal(f.n, 3);
    assert_memory_equal(f.p, "a/b", 3);
    assert_int_equal(mqtt_share_split(S("a/b"), &g, &f), 0);
    assert_int_equal(mqtt_share_split(S("$share"), &g, &f), 0);
    assert_int_equal(mqtt_share_split(S("$SYS/x"), &g, &f), 0);
    assert_int_equal(mqtt_share_split(S("$share/"), &g, &f), -1);
    assert_int_equal(mqtt_share_split(S("$share//a"), &g, &f), -1); /* MQTT-4.8.2-1 */
    assert_int_equal(mqtt_share_split(S("$share/g"), &g, &f), -1);
    assert_int_equal(mqtt_share_split(S("$share/g/"), &g, &f), -1);
    assert_int_equal(mqtt_share_split(S("$share/g+/a"), &g, &f), -1); /* MQTT-4.8.2-2 */
    assert_int_equal(mqtt_share_split(S("$share/g#/a"), &g, &f), -1);
}

static void test_topic_match_table(void **state)
{
    static const struct {
        const char *filter, *topic;
        bool match;
    } cases[] = {
        {"sport/tennis/player1/#", "sport/tennis/player1", true},
        {"sport/tennis/player1/#", "sport/tennis/player1/ranking", true},
        {"sport/tennis/player1/#", "sport/tennis/player1/score/wimbledon", true},
        {"sport/#", "sport", true},
        {"sport/#", "sport/", true},
        {"sport/#", "sports", false},
        {"#", "sport/tennis", true},
        {"#", "/", true},
        {"sport/tennis/+", "sport/tennis/player1", true},
        {"sport/tennis/+", "sport/tennis/player1/ranking", false},
        {"sport/+", "sport", false},
        {"sport/+", "sport/", true},
        {"+/+", "/finance", true},
        {"/+", "/finance", true},
        {"+", "/finance", false},
        {"+", "a", true},
        {"a/b", "a/b", true},
        {"a/b", "a/b/", false},
        {"a/b", "a/bc", false},
        {"a/b/c", "a/b", false},
        {"a//b", "a//b", true},
        {"a/+/b", "a//b", true},
        {"+/#", "a", true},
        {"+/+/#", "a", false},
        {"A", "a", false},
        /* MQTT-4.7.2-1: leading wildcards do not match '$' topics. */
        {"#", "$SYS/broker", false},
        {"+/monitor/Clients", "$SYS/monitor/Clients", false},
        {"+", "$SYS", false},
        {"$SYS/#", "$SYS/monitor/Clients", true},
        {"$SYS/monitor/+", "$SYS/monitor/Clients", true},
        {"a/#", "a/$b", true},
    };
    (void)state;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        bool got = mqtt_topic_match((const uint8_t *)cases[i].filter, strlen(cases[i].filter),
                                    (const uint8_t *)cases[i].topic, strlen(cases[i].topic));
        if (got != cases[i].match)
            fail_msg("filter \"%s\" topic \"%s\": got %d", cases[i].filter, cases[i].topic, got);
    }
}

/* ---- names ---- */

static void test_packet_names(void **state)
{
    (void)state;
    assert_string_equal(mqtt_packet_name(MQTT_CONNECT), "CONNECT");
    assert_string_equal(mqtt_packet_name(MQTT_PUBLISH), "PUBLISH");
    assert_string_equal(mqtt_packet_name(MQTT_UNSUBACK), "UNSUBACK");
    assert_string_equal(mqtt_packet_name(MQTT_AUTH), "AUTH");
    assert_string_equal(mqtt_packet_name(0), "RESERVED");
    assert_string_equal(mqtt_packet_name(16), "RESERVED");
    assert_string_equal(mqtt_packet_name(255), "RESERVED");
}

static void test_reason_names(void **state)
{
    (void)state;
    assert_string_equal(mqtt_reason_name(0x00), "Success");
    assert_string_equal(mqtt_reason_name(0x81), "Malformed Packet");
    assert_string_equal(mqtt_reason_name(0x82), "Protocol Error");
    assert_string_equal(mqtt_reason_name(0x87), "Not authorized");
    assert_string_equal(mqtt_reason_name(0x8E), "Session taken over");
    assert_string_equal(mqtt_reason_name(0x94), "Topic Alias invalid");
    assert_string_equal(mqtt_reason_name(0xA2), "Wildcard Subscriptions not supported");
    assert_string_equal(mqtt_reason_name(0x03), "Unknown");
    assert_string_equal(mqtt_reason_name(0xFF), "Unknown");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_vbi_round_trip_edges),
        cmocka_unit_test(test_vbi_five_bytes_malformed),
        cmocka_unit_test(test_vbi_not_shortest_form_MQTT_1_5_5_1),
        cmocka_unit_test(test_vbi_empty_needs_more),
        cmocka_unit_test(test_utf8_valid),
        cmocka_unit_test(test_utf8_invalid_MQTT_1_5_4_1),
        cmocka_unit_test(test_topic_name_check_MQTT_3_3_2_2),
        cmocka_unit_test(test_topic_filter_check_MQTT_4_7_1),
        cmocka_unit_test(test_share_split_MQTT_4_8_2),
        cmocka_unit_test(test_topic_match_table),
        cmocka_unit_test(test_packet_names),
        cmocka_unit_test(test_reason_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
