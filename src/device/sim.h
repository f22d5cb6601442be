/* sim.h - a simulated DHT22 temperature and humidity sensor, as a room would read it.
 *
 * Each reading is the sum of a daily cycle (warmest mid-afternoon, the relative humidity
 * moving the other way), a slow drift (weather, heating: a mean-reverting random walk over
 * hours), and sensor noise, rounded to the DHT22's 0.1 resolution and kept within its
 * ranges (-40..80 degC, 0..100 %RH). About one read in a hundred fails as real ones do
 * (checksum mismatch, no response) and gives an error instead of values.
 *
 * Randomness comes from a generator seeded by the caller, time from the caller's
 * arguments: the same seed and the same times give the same readings on any machine.
 * Floating point in single precision only, no libm, no allocation (freestanding).
 */
#ifndef MIDGE_DEVICE_SIM_H
#define MIDGE_DEVICE_SIM_H

#include <stdint.h>

#include "device/sample.h"

typedef struct sensor_sim {
    uint64_t rng;      /* generator state (xorshift64*), never 0 */
    float base_c;      /* the room's mean temperature */
    float swing_c;     /* amplitude of the daily cycle, degC */
    float base_rh;     /* mean relative humidity, % */
    float swing_rh;    /* amplitude of its daily cycle, % */
    float drift_c;     /* current slow drift, degC */
    float drift_rh;    /* current slow drift, % */
    uint32_t fail_ppm; /* failed reads per million (default 10000: 1 %) */
} sensor_sim_t;

/* A sensor in a room of its own: the seed picks the room's climate and the random
 * sequence. Two seeds give two different devices. */
void sensor_sim_init(sensor_sim_t *s, uint64_t seed);

/* Read the sensor at tod_s seconds after local midnight (0..86400), dt_s seconds after the
 * previous read (the drift's time step; 0 for the first). Fills *out: the values, or an
 * error text for a failed read; with the given timestamp and sequence number. */
void sensor_sim_read(sensor_sim_t *s, float tod_s, float dt_s, int64_t ts_ms, uint32_t seq,
                     sensor_sample_t *out);

#endif
