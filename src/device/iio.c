/* iio.c - parsing and checking Linux IIO sysfs values (see iio.h). */
#include "device/iio.h"

#include "device/text.h"

/* What a DHT22 can measure (a DHT11's ranges lie within these). */
#define TEMP_MIN_MILLI (-40000)
#define TEMP_MAX_MILLI 80000
#define HUM_MIN_MILLI 0
#define HUM_MAX_MILLI 100000

static int is_space(char ch)
{
    return ch == ' ' || ch == '\n' || ch == '\t' || ch == '\r';
}

int sensor_iio_parse(const char *text, size_t n, int32_t *out)
{
    size_t i = 0, end = n;
    while (i < end && is_space(text[i]))
        i++;
    while (end > i && is_space(text[end - 1]))
        end--;
    if (i == end)
        return SENSOR_IIO_EMPTY;
    int neg = text[i] == '-';
    if (neg)
        i++;
    if (i == end || end - i > 9) /* 9 digits always fit an int32_t */
        return SENSOR_IIO_SYNTAX;
    int32_t v = 0;
    for (; i < end; i++) {
        if (text[i] < '0' || text[i] > '9')
            return SENSOR_IIO_SYNTAX;
        v = v * 10 + (text[i] - '0');
    }
    *out = neg ? -v : v;
    return SENSOR_IIO_OK;
}

/* milli-units to tenths, rounding half away from zero */
static int32_t milli_to_tenths(int32_t v)
{
    return v >= 0 ? (v + 50) / 100 : (v - 50) / 100;
}

/* Up to 16 bytes of what the file held, trimmed, unprintable bytes as '?': enough to
 * recognise the content in an error message without copying a whole file. */
static void put_excerpt(text_t *t, const char *s, size_t n)
{
    while (n && is_space(*s))
        s++, n--;
    while (n && is_space(s[n - 1]))
        n--;
    text_putc(t, '"');
    for (size_t i = 0; i < n && i < 16; i++)
        text_putc(t, s[i] >= 0x20 && s[i] < 0x7f ? s[i] : '?');
    if (n > 16)
        text_puts(t, "...");
    text_putc(t, '"');
}

/* Parse and range-check one file; on failure write the error text into t. */
static int decode_one(text_t *t, const char *name, const char *s, size_t n, int32_t lo, int32_t hi,
                      const char *unit, int32_t *out)
{
    int rc = sensor_iio_parse(s, n, out);
    if (rc == SENSOR_IIO_OK && (*out < lo || *out > hi))
        rc = SENSOR_IIO_RANGE;
    if (rc == SENSOR_IIO_OK)
        return 0;
    text_puts(t, name);
    if (rc == SENSOR_IIO_EMPTY) {
        text_puts(t, ": empty");
    } else if (rc == SENSOR_IIO_SYNTAX) {
        text_puts(t, ": not an integer: ");
        put_excerpt(t, s, n);
    } else {
        text_puts(t, ": ");
        text_int(t, *out);
        text_putc(t, ' ');
        text_puts(t, unit);
        text_puts(t, " is out of range ");
        text_int(t, lo);
        text_puts(t, "..");
        text_int(t, hi);
    }
    return rc;
}

void sensor_iio_sample(const char *temp_name, const char *temp_text, size_t temp_n,
                       const char *hum_name, const char *hum_text, size_t hum_n, int64_t ts_ms,
                       uint32_t seq, sensor_sample_t *out)
{
    char err[SENSOR_ERROR_MAX];
    text_t t;
    int32_t temp = 0, hum = 0;
    /* A text too long for err is cut (t.ok false) but still said. */
    text_init(&t, err, sizeof err);
    if (decode_one(&t, temp_name, temp_text, temp_n, TEMP_MIN_MILLI, TEMP_MAX_MILLI, "milli-degC",
                   &temp) ||
        decode_one(&t, hum_name, hum_text, hum_n, HUM_MIN_MILLI, HUM_MAX_MILLI, "milli-%", &hum)) {
        sensor_sample_set_error(out, ts_ms, seq, err);
        return;
    }
    out->ts_ms = ts_ms;
    out->seq = seq;
    out->temp_dc = (int16_t)milli_to_tenths(temp);
    out->hum_dpct = (uint16_t)milli_to_tenths(hum);
    out->error[0] = 0;
}
