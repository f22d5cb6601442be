/* sample.c - topics and JSON payloads of a sensor sample (see sample.h).
 *
 * Freestanding: the only library functions used are memcpy and strlen (text.h), so
 * scripts/check-freestanding.sh builds this file for microcontrollers with the codec.
 */
#include "device/sample.h"

#include "device/text.h"

void sensor_sample_set_error(sensor_sample_t *s, int64_t ts_ms, uint32_t seq, const char *what)
{
    size_t n = strlen(what);
    if (n >= sizeof s->error)
        n = sizeof s->error - 1;
    s->ts_ms = ts_ms;
    s->seq = seq;
    s->temp_dc = 0;
    s->hum_dpct = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)what[i];
        s->error[i] = ch < 0x20 || ch == 0x7f ? ' ' : (char)ch;
    }
    s->error[n] = 0;
    if (n == 0) /* a failed read always says something */
        memcpy(s->error, "read failed", sizeof "read failed");
}

bool sensor_id_valid(const char *id)
{
    size_t n = 0;
    for (; id[n]; n++) {
        unsigned char ch = (unsigned char)id[n];
        if (ch == '/' || ch == '+' || ch == '#' || ch < 0x20 || ch == 0x7f)
            return false;
    }
    return n > 0 && n < SENSOR_ID_MAX;
}

size_t sensor_topic(char *buf, size_t cap, const char *prefix, const char *id, const char *leaf)
{
    text_t t;
    text_init(&t, buf, cap);
    text_puts(&t, prefix);
    text_putc(&t, '/');
    text_puts(&t, id);
    text_putc(&t, '/');
    text_puts(&t, leaf);
    return t.ok ? t.len : 0;
}

/* The civil date of a day count since 1970-01-01 in the proleptic Gregorian calendar:
 * count in 400-year eras of 146097 days, starting each year on 1 March so that the leap
 * day is the last day of the year. */
static void civil_from_days(int64_t days, int64_t *y, unsigned *m, unsigned *d)
{
    days += 719468; /* days from 0000-03-01 to 1970-01-01 */
    int64_t era = (days >= 0 ? days : days - 146096) / 146097;
    unsigned doe = (unsigned)(days - era * 146097);                       /* [0, 146096] */
    unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365; /* [0, 399] */
    unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);               /* [0, 365] */
    unsigned mp = (5 * doy + 2) / 153;                                    /* March = 0 */
    *d = doy - (153 * mp + 2) / 5 + 1;
    *m = mp < 10 ? mp + 3 : mp - 9;
    *y = (int64_t)yoe + era * 400 + (*m <= 2);
}

size_t sensor_format_ts(char *buf, size_t cap, int64_t ts_ms)
{
    /* 253402300800000: 10000-01-01T00:00:00Z */
    if (cap < 25 || ts_ms < 0 || ts_ms >= 253402300800000LL)
        return 0;
    int64_t secs = ts_ms / 1000, y;
    unsigned ms = (unsigned)(ts_ms % 1000), m, d;
    unsigned sod = (unsigned)(secs % 86400);
    civil_from_days(secs / 86400, &y, &m, &d);
    text_t t;
    text_init(&t, buf, cap);
    text_uint(&t, (uint64_t)y, 4);
    text_putc(&t, '-');
    text_uint(&t, m, 2);
    text_putc(&t, '-');
    text_uint(&t, d, 2);
    text_putc(&t, 'T');
    text_uint(&t, sod / 3600, 2);
    text_putc(&t, ':');
    text_uint(&t, sod / 60 % 60, 2);
    text_putc(&t, ':');
    text_uint(&t, sod % 60, 2);
    text_putc(&t, '.');
    text_uint(&t, ms, 3);
    text_putc(&t, 'Z');
    return t.ok ? t.len : 0;
}

size_t sensor_sample_json(char *buf, size_t cap, const char *id, const sensor_sample_t *s)
{
    char ts[32];
    if (!sensor_format_ts(ts, sizeof ts, s->ts_ms))
        return 0;
    text_t t;
    text_init(&t, buf, cap);
    text_puts(&t, "{\"device\":\"");
    text_json_str(&t, id, strlen(id));
    text_puts(&t, "\",\"ts\":\"");
    text_puts(&t, ts);
    if (s->error[0]) {
        text_puts(&t, "\",\"error\":\"");
        text_json_str(&t, s->error, strlen(s->error));
        text_puts(&t, "\"");
    } else {
        text_puts(&t, "\",\"temperature_c\":");
        text_tenths(&t, s->temp_dc);
        text_puts(&t, ",\"humidity_pct\":");
        text_tenths(&t, s->hum_dpct);
    }
    text_puts(&t, ",\"seq\":");
    text_uint(&t, s->seq, 1);
    text_putc(&t, '}');
    return t.ok ? t.len : 0;
}
