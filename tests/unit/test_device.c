/* test_device.c - the device module (src/device/): timestamps, JSON payloads, topics and ids,
 * the offline ring buffer, IIO value parsing, and the simulated DHT22's statistics. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "device/iio.h"
#include "device/ring.h"
#include "device/sample.h"
#include "device/sim.h"

static void test_timestamps(void **state)
{
    char b[32];
    assert_int_equal(sensor_format_ts(b, sizeof b, 0), 24);
    assert_string_equal(b, "1970-01-01T00:00:00.000Z");
    assert_int_equal(sensor_format_ts(b, sizeof b, 1795664412345LL), 24);
    assert_string_equal(b, "2026-11-26T03:40:12.345Z");
    /* a leap day, and the last millisecond of a leap year */
    sensor_format_ts(b, sizeof b, 951782400000LL);
    assert_string_equal(b, "2000-02-29T00:00:00.000Z");
    sensor_format_ts(b, sizeof b, 1704067199999LL);
    assert_string_equal(b, "2023-12-31T23:59:59.999Z");
    sensor_format_ts(b, sizeof b, 253402300799999LL);
    assert_string_equal(b, "9999-12-31T23:59:59.999Z");
    /* out of range, or no room */
    assert_int_equal(sensor_format_ts(b, sizeof b, -1), 0);
    assert_int_equal(sensor_format_ts(b, sizeof b, 253402300800000LL), 0);
    assert_int_equal(sensor_format_ts(b, 24, 0), 0);
}

static void test_reading_json(void **state)
{
    sensor_sample_t s = {.ts_ms = 1795664412345LL, .seq = 17, .temp_dc = 234, .hum_dpct = 412};
    char b[256];
    size_t n = sensor_sample_json(b, sizeof b, "dev-1", &s);
    const char *want = "{\"device\":\"dev-1\",\"ts\":\"2026-11-26T03:40:12.345Z\","
                       "\"temperature_c\":23.4,\"humidity_pct\":41.2,\"seq\":17}";
    assert_string_equal(b, want);
    assert_int_equal(n, strlen(want));
    assert_int_equal(s.error[0], 0); /* a reading: it goes to .../reading */
    /* negative values, whole numbers, below one degree */
    s.temp_dc = -5;
    s.hum_dpct = 1000;
    sensor_sample_json(b, sizeof b, "d", &s);
    assert_non_null(strstr(b, "\"temperature_c\":-0.5,\"humidity_pct\":100.0,"));
    s.temp_dc = -400;
    s.hum_dpct = 0;
    sensor_sample_json(b, sizeof b, "d", &s);
    assert_non_null(strstr(b, "\"temperature_c\":-40.0,\"humidity_pct\":0.0,"));
    /* too small a buffer: 0, never a cut JSON */
    assert_int_equal(sensor_sample_json(b, n, "dev-1", &s), 0);
}

static void test_error_json_escapes(void **state)
{
    sensor_sample_t s;
    sensor_sample_set_error(&s, 0, 3, "bad \"value\" \\ in\nfile");
    char b[256];
    assert_true(sensor_sample_json(b, sizeof b, "d\"1", &s) > 0);
    assert_string_equal(b, "{\"device\":\"d\\\"1\",\"ts\":\"1970-01-01T00:00:00.000Z\","
                           "\"error\":\"bad \\\"value\\\" \\\\ in file\",\"seq\":3}");
    assert_string_equal(s.error, "bad \"value\" \\ in file"); /* to .../error */
    /* an over-long text is cut, and an empty one still says something */
    char longer[400];
    memset(longer, 'x', sizeof longer - 1);
    longer[sizeof longer - 1] = 0;
    sensor_sample_set_error(&s, 0, 1, longer);
    assert_int_equal(strlen(s.error), SENSOR_ERROR_MAX - 1);
    sensor_sample_set_error(&s, 0, 1, "");
    assert_string_equal(s.error, "read failed");
    /* the worst case fits SENSOR_JSON_MAX: longest id and error, all of it escaped */
    char id[SENSOR_ID_MAX], json[SENSOR_JSON_MAX];
    memset(id, '"', sizeof id - 1);
    id[sizeof id - 1] = 0;
    memset(longer, '\\', sizeof longer - 1);
    sensor_sample_set_error(&s, 253402300799999LL, 4294967295u, longer);
    size_t n = sensor_sample_json(json, sizeof json, id, &s);
    assert_int_equal(n, SENSOR_JSON_MAX - 3);
}

static void test_topics_and_ids(void **state)
{
    char b[64];
    assert_int_equal(sensor_topic(b, sizeof b, "sensors", "dev-1", "reading"), 21);
    assert_string_equal(b, "sensors/dev-1/reading");
    assert_int_equal(sensor_topic(b, 21, "sensors", "dev-1", "reading"), 0);
    assert_true(sensor_id_valid("sim-host"));
    assert_true(sensor_id_valid("caf\xc3\xa9"));
    assert_false(sensor_id_valid(""));
    assert_false(sensor_id_valid("a/b"));
    assert_false(sensor_id_valid("a+"));
    assert_false(sensor_id_valid("#"));
    assert_false(sensor_id_valid("a\tb"));
    char longid[SENSOR_ID_MAX + 1];
    memset(longid, 'a', SENSOR_ID_MAX);
    longid[SENSOR_ID_MAX] = 0;
    assert_false(sensor_id_valid(longid));
    longid[SENSOR_ID_MAX - 1] = 0;
    assert_true(sensor_id_valid(longid));
}

static sensor_sample_t numbered(uint32_t seq)
{
    sensor_sample_t s = {.ts_ms = 1000 + seq, .seq = seq, .temp_dc = (int16_t)seq};
    return s;
}

static void test_ring_keeps_order_and_drops_oldest(void **state)
{
    sensor_sample_t store[4];
    sensor_ring_t r;
    sensor_ring_init(&r, store, 4);
    assert_null(sensor_ring_peek(&r));
    sensor_ring_pop(&r); /* no-op when empty */
    for (uint32_t i = 1; i <= 3; i++) {
        sensor_sample_t s = numbered(i);
        sensor_ring_push(&r, &s);
    }
    assert_int_equal(sensor_ring_peek(&r)->seq, 1);
    sensor_ring_pop(&r);
    /* wrap around, then overflow: 2..3 and 4..9 pushed into 4 slots keep 6..9 */
    for (uint32_t i = 4; i <= 9; i++) {
        sensor_sample_t s = numbered(i);
        sensor_ring_push(&r, &s);
    }
    assert_int_equal(r.count, 4);
    assert_int_equal(r.dropped, 4);
    for (uint32_t want = 6; want <= 9; want++) {
        const sensor_sample_t *s = sensor_ring_peek(&r);
        assert_non_null(s);
        assert_int_equal(s->seq, want);
        assert_int_equal(s->ts_ms, 1000 + want); /* the original timestamp */
        sensor_ring_pop(&r);
    }
    assert_null(sensor_ring_peek(&r));
    assert_int_equal(r.count, 0);
}

static void test_iio_parse(void **state)
{
    int32_t v = 0;
    assert_int_equal(sensor_iio_parse("23400\n", 6, &v), SENSOR_IIO_OK);
    assert_int_equal(v, 23400);
    assert_int_equal(sensor_iio_parse(" -1250 \n", 8, &v), SENSOR_IIO_OK);
    assert_int_equal(v, -1250);
    assert_int_equal(sensor_iio_parse("999999999", 9, &v), SENSOR_IIO_OK);
    assert_int_equal(v, 999999999);
    assert_int_equal(sensor_iio_parse("", 0, &v), SENSOR_IIO_EMPTY);
    assert_int_equal(sensor_iio_parse(" \n", 2, &v), SENSOR_IIO_EMPTY);
    assert_int_equal(sensor_iio_parse("-", 1, &v), SENSOR_IIO_SYNTAX);
    assert_int_equal(sensor_iio_parse("12a", 3, &v), SENSOR_IIO_SYNTAX);
    assert_int_equal(sensor_iio_parse("1 2", 3, &v), SENSOR_IIO_SYNTAX);
    assert_int_equal(sensor_iio_parse("+5", 2, &v), SENSOR_IIO_SYNTAX);
    assert_int_equal(sensor_iio_parse("1000000000", 10, &v), SENSOR_IIO_SYNTAX);
    assert_int_equal(sensor_iio_parse("12\0" "3", 4, &v), SENSOR_IIO_SYNTAX);
}

static void test_iio_sample(void **state)
{
    sensor_sample_t s;
    sensor_iio_sample("t", "23450\n", 6, "h", "41249\n", 6, 5, 2, &s);
    assert_string_equal(s.error, "");
    assert_int_equal(s.temp_dc, 235); /* half away from zero */
    assert_int_equal(s.hum_dpct, 412);
    assert_int_equal(s.seq, 2);
    assert_int_equal(s.ts_ms, 5);
    sensor_iio_sample("t", "-4950", 5, "h", "0", 1, 5, 2, &s);
    assert_int_equal(s.temp_dc, -50);
    assert_int_equal(s.hum_dpct, 0);
    sensor_iio_sample("/x/in_temp_input", "hello world, this is long\n", 26, "h", "1", 1, 5, 3,
                      &s);
    assert_string_equal(s.error, "/x/in_temp_input: not an integer: \"hello world, thi...\"");
    assert_int_equal(s.seq, 3);
    sensor_iio_sample("t", "1", 1, "/x/h", "100001", 6, 5, 3, &s);
    assert_string_equal(s.error, "/x/h: 100001 milli-% is out of range 0..100000");
    sensor_iio_sample("/x/t", "-40001", 6, "h", "1", 1, 5, 3, &s);
    assert_string_equal(s.error, "/x/t: -40001 milli-degC is out of range -40000..80000");
    sensor_iio_sample("t", "1", 1, "/x/h", "\n", 1, 5, 3, &s);
    assert_string_equal(s.error, "/x/h: empty");
    sensor_iio_sample("t", "\x01\xff", 2, "h", "1", 1, 5, 3, &s);
    assert_string_equal(s.error, "t: not an integer: \"??\"");
}

/* Read n samples every dt seconds from tod0; returns the failed reads. */
static int run_sim(sensor_sim_t *sim, int n, float tod0, float dt, sensor_sample_t *out)
{
    int failed = 0;
    for (int i = 0; i < n; i++) {
        sensor_sim_read(sim, tod0 + dt * (float)i, i ? dt : 0, 1000 * i, (uint32_t)i + 1,
                        &out[i]);
        assert_int_equal(out[i].seq, i + 1);
        failed += out[i].error[0] != 0;
    }
    return failed;
}

static void test_sim_repeatable_and_distinct(void **state)
{
    static sensor_sample_t a[500], b[500], c[500];
    sensor_sim_t s1, s2, s3;
    sensor_sim_init(&s1, 7);
    sensor_sim_init(&s2, 7);
    sensor_sim_init(&s3, 8);
    run_sim(&s1, 500, 0, 5, a);
    run_sim(&s2, 500, 0, 5, b);
    run_sim(&s3, 500, 0, 5, c);
    assert_memory_equal(a, b, sizeof a);
    assert_memory_not_equal(a, c, sizeof a);
}

static void test_sim_ranges_and_statistics(void **state)
{
    static sensor_sample_t r[2000];
    int failed = 0, ok = 0;
    double sum = 0, sumsq = 0;
    for (uint64_t seed = 0; seed < 20; seed++) {
        sensor_sim_t s;
        sensor_sim_init(&s, seed);
        failed += run_sim(&s, 2000, 0, 2, r);
        for (int i = 0; i < 2000; i++) {
            if (r[i].error[0]) {
                assert_true(!strcmp(r[i].error, "checksum mismatch") ||
                            !strcmp(r[i].error, "no response from sensor"));
                continue;
            }
            ok++;
            /* a room: well within the DHT22's ranges */
            assert_in_range(r[i].temp_dc, 100, 350);
            assert_in_range(r[i].hum_dpct, 150, 850);
            sum += r[i].temp_dc / 10.0;
            sumsq += (r[i].temp_dc / 10.0) * (r[i].temp_dc / 10.0);
        }
    }
    /* about 1 % failed reads over 40000 */
    assert_in_range(failed, 250, 550);
    double mean = sum / ok, sd = sqrt(sumsq / ok - mean * mean);
    assert_true(mean > 19 && mean < 27);
    assert_true(sd > 0.5 && sd < 5);
}

/* Over a simulated day the temperature follows the sun: warmest in the afternoon, coolest
 * before dawn, and the relative humidity the other way round. */
static void test_sim_daily_cycle(void **state)
{
    double t3 = 0, t15 = 0, h3 = 0, h15 = 0;
    int n3 = 0, n15 = 0;
    for (uint64_t seed = 100; seed < 110; seed++) {
        sensor_sim_t s;
        sensor_sim_init(&s, seed);
        s.fail_ppm = 0;
        for (int minute = 0; minute < 24 * 60; minute++) {
            sensor_sample_t x;
            sensor_sim_read(&s, (float)minute * 60, minute ? 60 : 0, 0, 1, &x);
            assert_string_equal(x.error, "");
            int hour = minute / 60;
            if (hour == 3) {
                t3 += x.temp_dc, h3 += x.hum_dpct, n3++;
            } else if (hour == 15) {
                t15 += x.temp_dc, h15 += x.hum_dpct, n15++;
            }
        }
    }
    assert_true(t15 / n15 - t3 / n3 > 20);  /* > 2.0 degC warmer at 15:00 */
    assert_true(h3 / n3 - h15 / n15 > 40);  /* > 4.0 % more humid at 03:00 */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_timestamps),
        cmocka_unit_test(test_reading_json),
        cmocka_unit_test(test_error_json_escapes),
        cmocka_unit_test(test_topics_and_ids),
        cmocka_unit_test(test_ring_keeps_order_and_drops_oldest),
        cmocka_unit_test(test_iio_parse),
        cmocka_unit_test(test_iio_sample),
        cmocka_unit_test(test_sim_repeatable_and_distinct),
        cmocka_unit_test(test_sim_ranges_and_statistics),
        cmocka_unit_test(test_sim_daily_cycle),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
