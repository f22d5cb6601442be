/* packets_encode.c - write every MQTT control packet, fixed header included, into a
 * caller-supplied buffer. Each encoder first sizes the whole packet and writes nothing
 * when it does not fit, so a call with cap 0 tells the caller how much to allocate.
 * The broker uses these for what it sends; tests and the fuzzer use them for round trips.
 */
#include <string.h>

#include "mqtt/codec.h"

/* What a NULL props argument stands for: no property, no extra bytes. */
static const mqtt_props_t no_props;

static size_t slen(mqtt_str_t s)
{
    return s.n > 0xFFFF ? 0xFFFF : s.n;
}

static uint8_t *put_u16(uint8_t *o, uint16_t v)
{
    o[0] = (uint8_t)(v >> 8);
    o[1] = (uint8_t)v;
    return o + 2;
}

static uint8_t *put_str(uint8_t *o, mqtt_str_t s)
{
    size_t n = slen(s);
    o = put_u16(o, (uint16_t)n);
    if (n)
        memcpy(o, s.p, n);
    return o + n;
}

/* Bytes of a property block with its length prefix (0 below 5.0). */
static size_t props_field_size(uint8_t version, const mqtt_props_t *pr, size_t *psize)
{
    *psize = version >= MQTT_V5 ? mqtt_props_size(pr) : 0;
    if (version < MQTT_V5)
        return 0;
    return mqtt_vbi_size((uint32_t)*psize) + *psize;
}

static uint8_t *put_props(uint8_t *o, uint8_t version, const mqtt_props_t *pr, size_t psize)
{
    if (version < MQTT_V5)
        return o;
    o += mqtt_vbi_encode(o, (uint32_t)psize);
    return o + mqtt_props_encode(o, pr);
}

/* Size of a whole packet with a body of `body` bytes; 0 when it cannot be encoded. */
static size_t packet_size(size_t body)
{
    if (body > MQTT_VBI_MAX)
        return 0;
    return 1 + mqtt_vbi_size((uint32_t)body) + body;
}

static uint8_t *put_header(uint8_t *o, uint8_t first, size_t body)
{
    *o++ = first;
    return o + mqtt_vbi_encode(o, (uint32_t)body);
}

size_t mqtt_connect_encode(uint8_t *buf, size_t cap, const mqtt_connect_t *c)
{
    uint8_t version = c->version ? c->version : MQTT_V311;
    const char *name = version == MQTT_V31 ? "MQIsdp" : "MQTT";
    mqtt_str_t name_s = {(const uint8_t *)name, (uint32_t)strlen(name)};
    size_t psize, wpsize = 0;
    size_t body = 2 + name_s.n + 1 + 1 + 2 + props_field_size(version, &c->props, &psize) + 2 +
                  slen(c->client_id);
    if (c->has_will)
        body += props_field_size(version, &c->will.props, &wpsize) + 2 + slen(c->will.topic) + 2 +
                slen(c->will.payload);
    if (c->has_username)
        body += 2 + slen(c->username);
    if (c->has_password)
        body += 2 + slen(c->password);
    size_t total = packet_size(body);
    if (total == 0 || total > cap)
        return total;

    uint8_t flags = (uint8_t)((c->clean_start ? 0x02 : 0) | (c->has_username ? 0x80 : 0) |
                              (c->has_password ? 0x40 : 0));
    if (c->has_will)
        flags |= (uint8_t)(0x04 | (c->will.qos & 3) << 3 | (c->will.retain ? 0x20 : 0));
    uint8_t *o = put_header(buf, MQTT_CONNECT << 4, body);
    o = put_str(o, name_s);
    *o++ = version;
    *o++ = flags;
    o = put_u16(o, c->keep_alive);
    o = put_props(o, version, &c->props, psize);
    o = put_str(o, c->client_id);
    if (c->has_will) {
        o = put_props(o, version, &c->will.props, wpsize);
        o = put_str(o, c->will.topic);
        o = put_str(o, c->will.payload);
    }
    if (c->has_username)
        o = put_str(o, c->username);
    if (c->has_password)
        o = put_str(o, c->password);
    return total;
}

size_t mqtt_connack_encode(uint8_t *buf, size_t cap, uint8_t version, bool session_present,
                           uint8_t code, const mqtt_props_t *props)
{
    size_t psize;
    if (!props)
        props = &no_props;
    size_t body = 2 + props_field_size(version, props, &psize);
    size_t total = packet_size(body);
    if (total == 0 || total > cap)
        return total;
    uint8_t *o = put_header(buf, MQTT_CONNACK << 4, body);
    *o++ = version >= MQTT_V311 && session_present ? 1 : 0;
    *o++ = code;
    put_props(o, version, props, psize);
    return total;
}

size_t mqtt_publish_header_encode(uint8_t *buf, size_t cap, uint8_t version, uint8_t qos, bool dup,
                                  bool retain, mqtt_str_t topic, uint16_t packet_id,
                                  const mqtt_props_t *props, size_t shared_props_len,
                                  size_t payload_len)
{
    if (!props)
        props = &no_props;
    size_t psize = version >= MQTT_V5 ? mqtt_props_size(props) : 0;
    size_t head = 2 + slen(topic) + (qos ? 2 : 0);
    if (version >= MQTT_V5) {
        if (psize + shared_props_len > MQTT_VBI_MAX)
            return 0;
        head += mqtt_vbi_size((uint32_t)(psize + shared_props_len)) + psize;
    } else {
        shared_props_len = 0;
    }
    size_t body = head + shared_props_len + payload_len;
    if (body > MQTT_VBI_MAX || payload_len > MQTT_VBI_MAX)
        return 0;
    size_t total = 1 + mqtt_vbi_size((uint32_t)body) + head;
    if (total > cap)
        return total;
    uint8_t first =
        (uint8_t)(MQTT_PUBLISH << 4 | (dup ? 0x08 : 0) | (qos & 3) << 1 | (retain ? 0x01 : 0));
    uint8_t *o = put_header(buf, first, body);
    o = put_str(o, topic);
    if (qos)
        o = put_u16(o, packet_id);
    if (version >= MQTT_V5) {
        o += mqtt_vbi_encode(o, (uint32_t)(psize + shared_props_len));
        mqtt_props_encode(o, props);
    }
    return total;
}

size_t mqtt_publish_encode(uint8_t *buf, size_t cap, uint8_t version, const mqtt_publish_t *pub)
{
    size_t head =
        mqtt_publish_header_encode(NULL, 0, version, pub->qos, pub->dup, pub->retain, pub->topic,
                                   pub->packet_id, &pub->props, 0, pub->payload.n);
    if (head == 0)
        return 0;
    size_t total = head + pub->payload.n;
    if (total > cap)
        return total;
    mqtt_publish_header_encode(buf, cap, version, pub->qos, pub->dup, pub->retain, pub->topic,
                               pub->packet_id, &pub->props, 0, pub->payload.n);
    if (pub->payload.n)
        memcpy(buf + head, pub->payload.p, pub->payload.n);
    return total;
}

size_t mqtt_ack_encode(uint8_t *buf, size_t cap, uint8_t version, uint8_t type, uint16_t packet_id,
                       uint8_t reason, const mqtt_props_t *props)
{
    if (!props)
        props = &no_props;
    size_t psize = version >= MQTT_V5 ? mqtt_props_size(props) : 0;
    size_t body = 2;
    /* 5.0 section 3.4.2.1: reason and property length may be left out from the end. */
    if (version >= MQTT_V5 && (reason != 0 || psize != 0))
        body += 1;
    if (psize != 0)
        body += mqtt_vbi_size((uint32_t)psize) + psize;
    size_t total = packet_size(body);
    if (total == 0 || total > cap)
        return total;
    uint8_t *o = put_header(buf, (uint8_t)(type << 4 | (type == MQTT_PUBREL ? 0x02 : 0)), body);
    o = put_u16(o, packet_id);
    if (body > 2)
        *o++ = reason;
    if (psize != 0)
        put_props(o, version, props, psize);
    return total;
}

size_t mqtt_subscribe_encode(uint8_t *buf, size_t cap, uint8_t version, uint16_t packet_id,
                             const mqtt_props_t *props, const mqtt_sub_entry_t *entries,
                             size_t count)
{
    size_t psize;
    if (!props)
        props = &no_props;
    size_t body = 2 + props_field_size(version, props, &psize);
    for (size_t i = 0; i < count; i++)
        body += 2 + slen(entries[i].filter) + 1;
    size_t total = packet_size(body);
    if (total == 0 || total > cap)
        return total;
    uint8_t *o = put_header(buf, MQTT_SUBSCRIBE << 4 | 0x02, body);
    o = put_u16(o, packet_id);
    o = put_props(o, version, props, psize);
    for (size_t i = 0; i < count; i++) {
        const mqtt_sub_entry_t *e = &entries[i];
        uint8_t opt = e->qos & 3;
        if (version >= MQTT_V5)
            opt |= (uint8_t)((e->no_local ? 0x04 : 0) | (e->retain_as_published ? 0x08 : 0) |
                             (e->retain_handling & 3) << 4);
        o = put_str(o, e->filter);
        *o++ = opt;
    }
    return total;
}

size_t mqtt_unsubscribe_encode(uint8_t *buf, size_t cap, uint8_t version, uint16_t packet_id,
                               const mqtt_props_t *props, const mqtt_str_t *filters, size_t count)
{
    size_t psize;
    if (!props)
        props = &no_props;
    size_t body = 2 + props_field_size(version, props, &psize);
    for (size_t i = 0; i < count; i++)
        body += 2 + slen(filters[i]);
    size_t total = packet_size(body);
    if (total == 0 || total > cap)
        return total;
    uint8_t *o = put_header(buf, MQTT_UNSUBSCRIBE << 4 | 0x02, body);
    o = put_u16(o, packet_id);
    o = put_props(o, version, props, psize);
    for (size_t i = 0; i < count; i++)
        o = put_str(o, filters[i]);
    return total;
}

size_t mqtt_suback_encode(uint8_t *buf, size_t cap, uint8_t version, uint8_t type,
                          uint16_t packet_id, const mqtt_props_t *props, const uint8_t *codes,
                          size_t count)
{
    size_t psize;
    if (!props)
        props = &no_props;
    if (type == MQTT_UNSUBACK && version < MQTT_V5)
        count = 0;
    size_t body = 2 + props_field_size(version, props, &psize) + count;
    size_t total = packet_size(body);
    if (total == 0 || total > cap)
        return total;
    uint8_t *o = put_header(buf, (uint8_t)(type << 4), body);
    o = put_u16(o, packet_id);
    o = put_props(o, version, props, psize);
    if (count)
        memcpy(o, codes, count);
    return total;
}

size_t mqtt_empty_encode(uint8_t *buf, size_t cap, uint8_t type)
{
    if (cap < 2)
        return 2;
    buf[0] = (uint8_t)(type << 4);
    buf[1] = 0;
    return 2;
}

/* DISCONNECT and AUTH on 5.0: both fields left out when the reason is 0 and there are no
 * properties (sections 3.14.2.1, 3.15.2.1), the property length left out when empty. */
static size_t reason_packet_encode(uint8_t *buf, size_t cap, uint8_t type, uint8_t reason,
                                   const mqtt_props_t *props)
{
    if (!props)
        props = &no_props;
    size_t psize = mqtt_props_size(props);
    size_t body = 0;
    if (reason != 0 || psize != 0)
        body = 1;
    if (psize != 0)
        body += mqtt_vbi_size((uint32_t)psize) + psize;
    size_t total = packet_size(body);
    if (total == 0 || total > cap)
        return total;
    uint8_t *o = put_header(buf, (uint8_t)(type << 4), body);
    if (body > 0)
        *o++ = reason;
    if (psize != 0)
        put_props(o, MQTT_V5, props, psize);
    return total;
}

size_t mqtt_disconnect_encode(uint8_t *buf, size_t cap, uint8_t version, uint8_t reason,
                              const mqtt_props_t *props)
{
    if (version < MQTT_V5)
        return mqtt_empty_encode(buf, cap, MQTT_DISCONNECT);
    return reason_packet_encode(buf, cap, MQTT_DISCONNECT, reason, props);
}

size_t mqtt_auth_encode(uint8_t *buf, size_t cap, uint8_t reason, const mqtt_props_t *props)
{
    return reason_packet_encode(buf, cap, MQTT_AUTH, reason, props);
}
