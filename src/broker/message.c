/* message.c - reference-counted immutable application messages (see message.h). */
#include "message.h"

#include <stdlib.h>
#include <string.h>

message_t *message_new(const uint8_t *topic, size_t topic_len, const uint8_t *props,
                       size_t props_len, const uint8_t *payload, size_t payload_len)
{
    message_t *m = malloc(sizeof(*m) + topic_len + props_len + payload_len + 1);
    if (!m)
        return NULL;
    memset(m, 0, sizeof(*m));
    atomic_init(&m->refs, 1);
    uint8_t *p = (uint8_t *)(m + 1);
    if (topic_len)
        memcpy(p, topic, topic_len);
    m->topic = p;
    m->topic_len = (uint16_t)topic_len;
    p += topic_len;
    if (props_len)
        memcpy(p, props, props_len);
    m->props = p;
    m->props_len = (uint32_t)props_len;
    p += props_len;
    if (payload_len)
        memcpy(p, payload, payload_len);
    m->payload = p;
    m->payload_len = (uint32_t)payload_len;
    p[payload_len] = 0; /* lets tools print a payload without copying; not part of it */
    return m;
}

void message_unref(message_t *m)
{
    if (m && atomic_fetch_sub_explicit(&m->refs, 1, memory_order_acq_rel) == 1)
        free(m);
}

uint32_t message_expiry_left(const message_t *m, int64_t now_ms)
{
    if (!m->has_expiry)
        return 0;
    int64_t left = m->expire_at_ms - now_ms;
    if (left <= 0)
        return 0;
    return (uint32_t)((left + 999) / 1000);
}
