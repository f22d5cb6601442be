/* sim.c - the simulated DHT22 (see sim.h): daily cycle + drift + noise, 0.1 resolution.
 *
 * No libm on a microcontroller build: sine and square root are computed here, to far more
 * precision than a 0.1 resolution needs.
 */
#include "device/sim.h"

#include <string.h>

#define PI_F 3.14159265f
#define DAY_S 86400.0f
#define DRIFT_TAU_C_S 14400.0f  /* the drift forgets itself over about four hours */
#define DRIFT_TAU_RH_S 10800.0f /* humidity over three */
#define DRIFT_SD_C 0.8f         /* typical size of the temperature drift, degC */
#define DRIFT_SD_RH 3.0f        /* of the humidity drift, % */
#define NOISE_SD_C 0.1f         /* read-to-read noise, as a DHT22's repeatability */
#define NOISE_SD_RH 0.3f

/* xorshift64*: small, fast and good enough for a simulation. */
static uint64_t next_u64(sensor_sim_t *s)
{
    uint64_t x = s->rng;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    s->rng = x;
    return x * 0x2545F4914F6CDD1DULL;
}

/* A uniform random number in [0, 1) from the sensor's generator. */
static float sensor_sim_uniform(sensor_sim_t *s)
{
    return (float)(next_u64(s) >> 40) * (1.0f / 16777216.0f); /* 24 bits: exact in a float */
}

/* Roughly normal, mean 0 and standard deviation 1: the sum of four uniforms (Irwin-Hall),
 * centred and scaled; bounded at +-3.46, which a sensor's noise is too. */
static float gauss(sensor_sim_t *s)
{
    float sum = 0;
    for (int i = 0; i < 4; i++)
        sum += sensor_sim_uniform(s);
    return (sum - 2.0f) * 1.7320508f;
}

/* sin(x): reduced to [-pi/2, pi/2], then its Taylor polynomial to x^9 (error < 4e-6). */
static float sine(float x)
{
    float turns = x / (2 * PI_F);
    int64_t k = (int64_t)(turns + (turns >= 0 ? 0.5f : -0.5f));
    x -= (float)k * 2 * PI_F;
    if (x > PI_F / 2)
        x = PI_F - x;
    else if (x < -PI_F / 2)
        x = -PI_F - x;
    float x2 = x * x;
    return x * (1 - x2 / 6 * (1 - x2 / 20 * (1 - x2 / 42 * (1 - x2 / 72))));
}

/* sqrt(x) for x >= 0: Newton's iteration from an exponent-halving first guess. */
static float square_root(float x)
{
    if (x <= 0)
        return 0;
    uint32_t bits;
    memcpy(&bits, &x, sizeof bits);
    bits = (bits >> 1) + 0x1fc00000u; /* halve the exponent */
    float g;
    memcpy(&g, &bits, sizeof g);
    for (int i = 0; i < 4; i++)
        g = 0.5f * (g + x / g);
    return g;
}

/* Round to tenths, half away from zero. */
static int32_t to_tenths(float v)
{
    return (int32_t)(v * 10.0f + (v >= 0 ? 0.5f : -0.5f));
}

void sensor_sim_init(sensor_sim_t *s, uint64_t seed)
{
    /* splitmix64 of the seed: neighbouring seeds give unrelated states, and never 0 */
    uint64_t z = seed + 0x9E3779B97F4A7C15ULL;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    z ^= z >> 31;
    s->rng = z ? z : 1;
    s->base_c = 20.5f + 4.0f * sensor_sim_uniform(s);
    s->swing_c = 1.5f + 2.0f * sensor_sim_uniform(s);
    s->base_rh = 38.0f + 17.0f * sensor_sim_uniform(s);
    s->swing_rh = 4.0f + 4.0f * sensor_sim_uniform(s);
    s->drift_c = DRIFT_SD_C * gauss(s) / 2;
    s->drift_rh = DRIFT_SD_RH * gauss(s) / 2;
    s->fail_ppm = 10000;
}

/* One step of a mean-reverting walk (Ornstein-Uhlenbeck, first order in dt/tau): the
 * drift keeps its standard deviation sd whatever the step. */
static float drift_step(sensor_sim_t *s, float drift, float dt_s, float tau_s, float sd)
{
    float a = dt_s >= tau_s ? 0.0f : 1.0f - dt_s / tau_s;
    return drift * a + sd * square_root(1.0f - a * a) * gauss(s);
}

void sensor_sim_read(sensor_sim_t *s, float tod_s, float dt_s, int64_t ts_ms, uint32_t seq,
                     sensor_sample_t *out)
{
    if (dt_s > 0) {
        s->drift_c = drift_step(s, s->drift_c, dt_s, DRIFT_TAU_C_S, DRIFT_SD_C);
        s->drift_rh = drift_step(s, s->drift_rh, dt_s, DRIFT_TAU_RH_S, DRIFT_SD_RH);
    }
    /* Noise is drawn on every read, failed or not, so that a failure does not shift
     * the random sequence of the reads after it. */
    float noise_c = NOISE_SD_C * gauss(s), noise_rh = NOISE_SD_RH * gauss(s);
    uint32_t fail = (uint32_t)(next_u64(s) % 1000000u);
    if (fail < s->fail_ppm) {
        /* the DHT22's two ways to fail: a corrupted frame, or no answer at all */
        sensor_sample_set_error(out, ts_ms, seq,
                                fail % 2 ? "checksum mismatch" : "no response from sensor");
        return;
    }
    /* warmest at 15:00, coolest at 03:00 */
    float day = sine(2 * PI_F * (tod_s - 9.0f * 3600.0f) / DAY_S);
    float t = s->base_c + s->swing_c * day + s->drift_c + noise_c;
    /* the same air holds the same water: warmer means a lower relative humidity */
    float rh = s->base_rh - s->swing_rh * day + s->drift_rh - 2.0f * s->drift_c + noise_rh;
    t = t < -40.0f ? -40.0f : t > 80.0f ? 80.0f : t;
    rh = rh < 0.0f ? 0.0f : rh > 100.0f ? 100.0f : rh;
    out->ts_ms = ts_ms;
    out->seq = seq;
    out->temp_dc = (int16_t)to_tenths(t);
    out->hum_dpct = (uint16_t)to_tenths(rh);
    out->error[0] = 0;
}
