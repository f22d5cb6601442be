/* ring.c - the bounded sample buffer of a device (see ring.h). */
#include "device/ring.h"

void sensor_ring_init(sensor_ring_t *r, sensor_sample_t *storage, size_t cap)
{
    r->slot = storage;
    r->cap = cap;
    r->head = 0;
    r->count = 0;
    r->dropped = 0;
}

void sensor_ring_push(sensor_ring_t *r, const sensor_sample_t *s)
{
    if (r->cap == 0)
        return;
    if (r->count == r->cap) {
        sensor_ring_pop(r);
        r->dropped++;
    }
    r->slot[(r->head + r->count) % r->cap] = *s;
    r->count++;
}

const sensor_sample_t *sensor_ring_peek(const sensor_ring_t *r)
{
    return r->count ? &r->slot[r->head] : NULL;
}

void sensor_ring_pop(sensor_ring_t *r)
{
    if (!r->count)
        return;
    r->head = (r->head + 1) % r->cap;
    r->count--;
}
