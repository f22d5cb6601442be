/* fuzz_iio.c - libFuzzer target for the IIO sysfs value parser and the sample JSON of the
 * device module (src/device/iio.c, sample.c). The first input byte says where the rest
 * splits into the contents of in_temp_input and in_humidityrelative_input. Besides surviving
 * the sanitizers: sensor_iio_parse agrees with strtol on what it accepts; a sample is either
 * values in the sensor's ranges or a non-empty, terminated error text naming the file; its
 * JSON fits SENSOR_JSON_MAX and is one line of printable text with balanced quotes whatever
 * the bytes were.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "device/iio.h"
#include "device/sample.h"

#include "fuzz_check.h"

/* What sensor_iio_parse promises, the slow way: optional white space, an optional '-',
 * 1..9 digits, optional white space. */
static int reference_parse(const char *s, size_t n, long *out)
{
    char buf[64];
    size_t i = 0, end = n;
    while (i < end && strchr(" \n\t\r", s[i]) && s[i])
        i++;
    while (end > i && strchr(" \n\t\r", s[end - 1]) && s[end - 1])
        end--;
    if (i == end)
        return SENSOR_IIO_EMPTY;
    size_t digits = end - i - (s[i] == '-');
    if (digits == 0 || digits > 9 || end - i >= sizeof buf)
        return SENSOR_IIO_SYNTAX;
    for (size_t k = i + (s[i] == '-'); k < end; k++)
        if (s[k] < '0' || s[k] > '9')
            return SENSOR_IIO_SYNTAX;
    memcpy(buf, s + i, end - i);
    buf[end - i] = 0;
    *out = strtol(buf, NULL, 10);
    return SENSOR_IIO_OK;
}

static void check_json(const sensor_sample_t *smp)
{
    char json[SENSOR_JSON_MAX];
    size_t n = sensor_sample_json(json, sizeof json, "dev\"1", smp);
    CHECK(n > 0 && n == strlen(json) && json[0] == '{' && json[n - 1] == '}');
    int quotes = 0;
    for (size_t i = 0; i < n; i++) {
        CHECK((unsigned char)json[i] >= 0x20);
        if (json[i] == '\\')
            i++; /* an escape: the next byte is part of it */
        else if (json[i] == '"')
            quotes++;
    }
    CHECK(quotes % 2 == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    const char *p = (const char *)data + 1;
    size_t n = size - 1, cut = data[0] < n ? data[0] : n;

    int32_t v = 0;
    long want = 0;
    int rc = sensor_iio_parse(p, cut, &v), ref = reference_parse(p, cut, &want);
    CHECK(rc == ref);
    if (rc == SENSOR_IIO_OK)
        CHECK(v == want);

    sensor_sample_t smp;
    memset(&smp, 0xA5, sizeof smp);
    sensor_iio_sample("/iio/in_temp_input", p, cut, "/iio/in_humidityrelative_input", p + cut,
                      n - cut, 1795664412345LL, 7, &smp);
    CHECK(smp.seq == 7 && smp.ts_ms == 1795664412345LL);
    if (smp.error[0]) {
        CHECK(memchr(smp.error, 0, sizeof smp.error) != NULL);
        CHECK(strncmp(smp.error, "/iio/in_", 8) == 0);
    } else {
        CHECK(smp.temp_dc >= -400 && smp.temp_dc <= 800);
        CHECK(smp.hum_dpct <= 1000);
    }
    check_json(&smp);

    /* any bytes as an error text: cut, terminated, and escaped in the JSON */
    char text[300];
    size_t tn = n < sizeof text - 1 ? n : sizeof text - 1;
    memcpy(text, p, tn);
    text[tn] = 0;
    sensor_sample_set_error(&smp, 0, 1, text);
    CHECK(strlen(smp.error) < SENSOR_ERROR_MAX && smp.error[0]);
    check_json(&smp);
    return 0;
}
