/* iio.h - readings from a Linux Industrial I/O device, as the kernel's dht11 driver (DHT11
 * and DHT22 on a Raspberry Pi, `dtoverlay=dht11`) exposes them in sysfs:
 *   in_temp_input               temperature in milli-degrees Celsius ("23400\n")
 *   in_humidityrelative_input   relative humidity in milli-percent ("41200\n")
 *
 * The caller reads the two files (it owns the I/O); this module parses and checks what it
 * read and turns it into a sample, or into a failed read whose text names the file and
 * what was wrong with it. Freestanding, no allocation.
 */
#ifndef MIDGE_DEVICE_IIO_H
#define MIDGE_DEVICE_IIO_H

#include <stddef.h>
#include <stdint.h>

#include "device/sample.h"

#define SENSOR_IIO_TEMP_FILE "in_temp_input"
#define SENSOR_IIO_HUM_FILE "in_humidityrelative_input"

enum {
    SENSOR_IIO_OK = 0,
    SENSOR_IIO_EMPTY = -1,  /* nothing but white space */
    SENSOR_IIO_SYNTAX = -2, /* not a decimal integer */
    SENSOR_IIO_RANGE = -3,  /* an integer beyond what the sensor can measure */
};

/* Parse one sysfs value: a decimal integer with an optional '-', surrounded by optional
 * white space (the kernel ends it with a newline). *out gets it. Returns SENSOR_IIO_OK,
 * SENSOR_IIO_EMPTY or SENSOR_IIO_SYNTAX (also for more than 9 digits). */
int sensor_iio_parse(const char *text, size_t n, int32_t *out);

/* Turn the contents of the two files into *out (with ts_ms and seq): the values rounded to
 * tenths, or a failed read naming the file ("<temp_name>: not an integer: \"abc\"",
 * "<hum_name>: 120000 milli-% is out of range 0..100000"). The names are what the error
 * text should call the files (their paths). */
void sensor_iio_sample(const char *temp_name, const char *temp_text, size_t temp_n,
                       const char *hum_name, const char *hum_text, size_t hum_n, int64_t ts_ms,
                       uint32_t seq, sensor_sample_t *out);

#endif
