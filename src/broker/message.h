/* message.h - an application message as the broker routes, retains and queues it.
 *
 * A PUBLISH is decoded once into a message: topic, the properties that are forwarded
 * (payload format, content type, response topic, correlation data, user properties), the
 * payload and its expiry. It is immutable after message_new and reference-counted, so
 * fan-out to any number of subscribers on any thread shares one copy.
 */
#ifndef MIDGE_MESSAGE_H
#define MIDGE_MESSAGE_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct message {
    atomic_uint refs;
    uint8_t qos;          /* QoS it was published with */
    bool retain;          /* retain flag as published */
    bool has_expiry;      /* a message expiry interval was given */
    int64_t expire_at_ms; /* wall-clock ms since the epoch when it expires (has_expiry) */
    const void *origin;   /* the publishing session, for no-local; never dereferenced */
    /* Its row in the persistence file, 0 while not stored: the one field set after
     * message_new, once, by whichever thread stores it first (persist.c). */
    atomic_uint_fast64_t store_id;
    uint16_t topic_len;
    uint32_t props_len;   /* encoded property entries forwarded as they came */
    uint32_t payload_len;
    const uint8_t *topic; /* these three point into the same allocation */
    const uint8_t *props;
    const uint8_t *payload;
} message_t;

/* A new message with one reference, or NULL when out of memory. Copies its inputs. */
message_t *message_new(const uint8_t *topic, size_t topic_len, const uint8_t *props,
                       size_t props_len, const uint8_t *payload, size_t payload_len);

static inline message_t *message_ref(message_t *m)
{
    atomic_fetch_add_explicit(&m->refs, 1, memory_order_relaxed);
    return m;
}

/* Drop one reference; the last one frees the message. NULL is allowed. */
void message_unref(message_t *m);

/* Seconds left before expiry at now_ms (at least 1 while not expired), 0 if expired. */
uint32_t message_expiry_left(const message_t *m, int64_t now_ms);

#endif
