/* ring.h - the bounded buffer of samples a device keeps while it cannot publish them.
 *
 * A device samples on schedule whether or not the broker is reachable; what it could not
 * send waits here, oldest first, and is sent in order with its original timestamp once a
 * connection is back. The storage is the caller's (no allocation). When full, the oldest
 * sample is dropped to make room and counted: recent readings matter more than old ones.
 */
#ifndef MIDGE_DEVICE_RING_H
#define MIDGE_DEVICE_RING_H

#include <stddef.h>
#include <stdint.h>

#include "device/sample.h"

typedef struct sensor_ring {
    sensor_sample_t *slot; /* the caller's array of cap samples */
    size_t cap;
    size_t head;      /* index of the oldest sample */
    size_t count;     /* samples held */
    uint64_t dropped; /* samples overwritten because the ring was full */
} sensor_ring_t;

/* An empty ring over storage[0..cap) (cap >= 1; the storage must outlive the ring). */
void sensor_ring_init(sensor_ring_t *r, sensor_sample_t *storage, size_t cap);

/* Append a copy of *s; when full, the oldest sample is dropped first (r->dropped counts). */
void sensor_ring_push(sensor_ring_t *r, const sensor_sample_t *s);

/* The oldest sample, or NULL when empty. Valid until the next push or pop. */
const sensor_sample_t *sensor_ring_peek(const sensor_ring_t *r);

/* Remove the oldest sample (no-op when empty). */
void sensor_ring_pop(sensor_ring_t *r);

#endif
