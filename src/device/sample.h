/* sample.h - one sensor sample (a reading or a failed read) and how a device says it on
 * MQTT: the topics under a prefix and the JSON payloads of midge-sensor (README.md,
 * "midge-sensor").
 *
 * Part of the device module (src/device/): plain C with no allocation and no POSIX, the same
 * code on a PC (src/tools/sensor.c) and on an ESP32 (examples/esp32/). Time comes from the
 * caller as Unix milliseconds.
 */
#ifndef MIDGE_DEVICE_SAMPLE_H
#define MIDGE_DEVICE_SAMPLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SENSOR_ERROR_MAX 200 /* an error text, NUL included; longer ones are cut */
#define SENSOR_ID_MAX 64     /* a device id, NUL included */
/* A buffer this big always holds sensor_sample_json's output: the longest id and error
 * text, every byte of them escaped as \" or \\ (control characters never get there). */
#define SENSOR_JSON_MAX 600

/* A sample as taken: values in tenths (the DHT22's 0.1 resolution), kept exactly so the
 * JSON says what the sensor said. error[0] != 0 marks a failed read: no values then. */
typedef struct sensor_sample {
    int64_t ts_ms;     /* Unix time of the read, milliseconds (UTC) */
    uint32_t seq;      /* 1, 2, ... per device: readings and failed reads share it */
    int16_t temp_dc;   /* temperature, tenths of a degree Celsius */
    uint16_t hum_dpct; /* relative humidity, tenths of a percent */
    char error[SENSOR_ERROR_MAX];
} sensor_sample_t;

/* Make *s a failed read: seq, time and the text (cut to fit, NUL-terminated, control
 * characters replaced by spaces: the text is for people, on one line). */
void sensor_sample_set_error(sensor_sample_t *s, int64_t ts_ms, uint32_t seq, const char *what);

/* True when id can be a device id: 1..SENSOR_ID_MAX-1 bytes, none of them '/', '+', '#' (it
 * is one topic level) nor a control character. */
bool sensor_id_valid(const char *id);

/* "<prefix>/<id>/<leaf>" into buf (leaf: "reading", "error", "status"). Returns its length,
 * or 0 when it does not fit in cap (NUL included). */
size_t sensor_topic(char *buf, size_t cap, const char *prefix, const char *id, const char *leaf);

/* ts_ms as RFC 3339 UTC with milliseconds ("2026-11-26T03:40:12.345Z"; years 1970..9999).
 * Returns the length (24), or 0 when cap < 25 or the time is out of that range. */
size_t sensor_format_ts(char *buf, size_t cap, int64_t ts_ms);

/* The JSON of a sample, NUL-terminated:
 *   reading: {"device":"<id>","ts":"<RFC 3339>","temperature_c":23.4,"humidity_pct":41.2,"seq":17}
 *   error:   {"device":"<id>","ts":"<RFC 3339>","error":"<what failed>","seq":18}
 * Returns the length, or 0 when it does not fit in cap. */
size_t sensor_sample_json(char *buf, size_t cap, const char *id, const sensor_sample_t *s);

#endif
