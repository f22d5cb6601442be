/* props.c - MQTT 5.0 property blocks (section 2.2.2): decode and validate a block for the
 * packet that carries it, iterate or filter a validated block, and encode mqtt_props_t.
 * Every version 5 packet decoder and encoder goes through here; below 5.0 there are no
 * properties and nothing here is called.
 */
#include <string.h>

#include "mqtt/codec.h"

enum { T_BYTE = 1, T_U16, T_U32, T_VBI, T_STR, T_BIN, T_PAIR };

#define CTX(t) (1u << (t))
#define C_WILL CTX(MQTT_PROPS_WILL)
#define C_ACKS (CTX(MQTT_PUBACK) | CTX(MQTT_PUBREC) | CTX(MQTT_PUBREL) | CTX(MQTT_PUBCOMP))
#define C_ALL 0xFFFFu /* the will and every packet type */

typedef struct prop_desc {
    uint8_t type;
    uint16_t contexts;     /* CTX bits of the packets (and will) that may carry it */
    const char *misplaced; /* 0x81 rule when met in another context */
    const char *twice;     /* 0x82 rule when repeated */
} prop_desc_t;

#define PD(id, ty, ctx, name)                                                                      \
    [id] = {ty, ctx, "property " #id " (" name ") not allowed in this packet",                     \
            "property " #id " (" name ") included more than once"}

/* Section 2.2.2.2, the table of identifiers, types and the packets that may carry them. */
static const prop_desc_t props_table[MQTT_PROP_SHARED_SUBSCRIPTION_AVAILABLE + 1] = {
    PD(0x01, T_BYTE, CTX(MQTT_PUBLISH) | C_WILL, "Payload Format Indicator"),
    PD(0x02, T_U32, CTX(MQTT_PUBLISH) | C_WILL, "Message Expiry Interval"),
    PD(0x03, T_STR, CTX(MQTT_PUBLISH) | C_WILL, "Content Type"),
    PD(0x08, T_STR, CTX(MQTT_PUBLISH) | C_WILL, "Response Topic"),
    PD(0x09, T_BIN, CTX(MQTT_PUBLISH) | C_WILL, "Correlation Data"),
    PD(0x0B, T_VBI, CTX(MQTT_PUBLISH) | CTX(MQTT_SUBSCRIBE), "Subscription Identifier"),
    PD(0x11, T_U32, CTX(MQTT_CONNECT) | CTX(MQTT_CONNACK) | CTX(MQTT_DISCONNECT),
       "Session Expiry Interval"),
    PD(0x12, T_STR, CTX(MQTT_CONNACK), "Assigned Client Identifier"),
    PD(0x13, T_U16, CTX(MQTT_CONNACK), "Server Keep Alive"),
    PD(0x15, T_STR, CTX(MQTT_CONNECT) | CTX(MQTT_CONNACK) | CTX(MQTT_AUTH),
       "Authentication Method"),
    PD(0x16, T_BIN, CTX(MQTT_CONNECT) | CTX(MQTT_CONNACK) | CTX(MQTT_AUTH), "Authentication Data"),
    PD(0x17, T_BYTE, CTX(MQTT_CONNECT), "Request Problem Information"),
    PD(0x18, T_U32, C_WILL, "Will Delay Interval"),
    PD(0x19, T_BYTE, CTX(MQTT_CONNECT), "Request Response Information"),
    PD(0x1A, T_STR, CTX(MQTT_CONNACK), "Response Information"),
    PD(0x1C, T_STR, CTX(MQTT_CONNACK) | CTX(MQTT_DISCONNECT), "Server Reference"),
    PD(0x1F, T_STR,
       CTX(MQTT_CONNACK) | C_ACKS | CTX(MQTT_SUBACK) | CTX(MQTT_UNSUBACK) | CTX(MQTT_DISCONNECT) |
           CTX(MQTT_AUTH),
       "Reason String"),
    PD(0x21, T_U16, CTX(MQTT_CONNECT) | CTX(MQTT_CONNACK), "Receive Maximum"),
    PD(0x22, T_U16, CTX(MQTT_CONNECT) | CTX(MQTT_CONNACK), "Topic Alias Maximum"),
    PD(0x23, T_U16, CTX(MQTT_PUBLISH), "Topic Alias"),
    PD(0x24, T_BYTE, CTX(MQTT_CONNACK), "Maximum QoS"),
    PD(0x25, T_BYTE, CTX(MQTT_CONNACK), "Retain Available"),
    /* Everything but PINGREQ/PINGRESP, which have no properties and never get here. */
    PD(0x26, T_PAIR, C_ALL, "User Property"),
    PD(0x27, T_U32, CTX(MQTT_CONNECT) | CTX(MQTT_CONNACK), "Maximum Packet Size"),
    PD(0x28, T_BYTE, CTX(MQTT_CONNACK), "Wildcard Subscription Available"),
    PD(0x29, T_BYTE, CTX(MQTT_CONNACK), "Subscription Identifier Available"),
    PD(0x2A, T_BYTE, CTX(MQTT_CONNACK), "Shared Subscription Available"),
};

#define NPROPS (sizeof props_table / sizeof props_table[0])

static const prop_desc_t *prop_desc(uint8_t id)
{
    if (id >= NPROPS || props_table[id].type == 0)
        return NULL;
    return &props_table[id];
}

static int fail(mqtt_error_t *err, uint8_t reason, const char *rule)
{
    if (err) {
        err->reason = reason;
        err->rule = rule;
    }
    return MQTT_FAIL;
}

void mqtt_props_init(mqtt_props_t *pr)
{
    memset(pr, 0, sizeof *pr);
    pr->receive_maximum = 65535;
    pr->maximum_qos = 2;
    pr->retain_available = 1;
    pr->wildcard_subscription_available = 1;
    pr->subscription_identifier_available = 1;
    pr->shared_subscription_available = 1;
    pr->request_problem_information = 1;
}

/* Parse the value of one entry of type `type` at p[0..n) into *out. Returns bytes used,
 * 0 when the value runs past n or is not a valid variable byte integer. */
static size_t value_parse(uint8_t type, const uint8_t *p, size_t n, mqtt_prop_t *out)
{
    size_t used = 0;
    switch (type) {
    case T_BYTE:
        if (n < 1)
            return 0;
        out->u32 = p[0];
        return 1;
    case T_U16:
        if (n < 2)
            return 0;
        out->u32 = (uint32_t)p[0] << 8 | p[1];
        return 2;
    case T_U32:
        if (n < 4)
            return 0;
        out->u32 = (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
        return 4;
    case T_VBI: {
        int k = mqtt_vbi_decode(p, n, &out->u32);
        return k > 0 ? (size_t)k : 0;
    }
    case T_STR:
    case T_BIN:
    case T_PAIR:
        for (int i = 0; i < (type == T_PAIR ? 2 : 1); i++) {
            if (n - used < 2)
                return 0;
            uint32_t len = (uint32_t)p[used] << 8 | p[used + 1];
            if (n - used - 2 < len)
                return 0;
            mqtt_str_t *s = i == 0 ? &out->a : &out->b;
            s->p = p + used + 2;
            s->n = len;
            used += 2 + len;
        }
        return used;
    }
    return 0;
}

/* Checks of a value that the data type alone does not make. */
static int value_check(uint8_t id, const mqtt_prop_t *v, mqtt_error_t *err)
{
    switch (id) {
    case MQTT_PROP_PAYLOAD_FORMAT_INDICATOR:
        if (v->u32 > 1)
            return fail(err, MQTT_RC_PROTOCOL_ERROR, "payload format indicator not 0 or 1");
        break;
    case MQTT_PROP_REQUEST_PROBLEM_INFORMATION:
        if (v->u32 > 1)
            return fail(err, MQTT_RC_PROTOCOL_ERROR, "request problem information not 0 or 1");
        break;
    case MQTT_PROP_REQUEST_RESPONSE_INFORMATION:
        if (v->u32 > 1)
            return fail(err, MQTT_RC_PROTOCOL_ERROR, "request response information not 0 or 1");
        break;
    case MQTT_PROP_MAXIMUM_QOS:
        if (v->u32 > 1)
            return fail(err, MQTT_RC_PROTOCOL_ERROR, "maximum QoS not 0 or 1");
        break;
    case MQTT_PROP_RETAIN_AVAILABLE:
    case MQTT_PROP_WILDCARD_SUBSCRIPTION_AVAILABLE:
    case MQTT_PROP_SUBSCRIPTION_IDENTIFIER_AVAILABLE:
    case MQTT_PROP_SHARED_SUBSCRIPTION_AVAILABLE:
        if (v->u32 > 1)
            return fail(err, MQTT_RC_PROTOCOL_ERROR, "CONNACK availability flag not 0 or 1");
        break;
    case MQTT_PROP_SUBSCRIPTION_IDENTIFIER:
        if (v->u32 == 0)
            return fail(err, MQTT_RC_PROTOCOL_ERROR, "subscription identifier 0");
        break;
    case MQTT_PROP_RECEIVE_MAXIMUM:
        if (v->u32 == 0)
            return fail(err, MQTT_RC_PROTOCOL_ERROR, "receive maximum 0");
        break;
    case MQTT_PROP_MAXIMUM_PACKET_SIZE:
        if (v->u32 == 0)
            return fail(err, MQTT_RC_PROTOCOL_ERROR, "maximum packet size 0");
        break;
    case MQTT_PROP_TOPIC_ALIAS:
        if (v->u32 == 0)
            return fail(err, MQTT_RC_TOPIC_ALIAS_INVALID, "MQTT-3.3.2-8: topic alias 0");
        break;
    case MQTT_PROP_RESPONSE_TOPIC:
        if (mqtt_topic_name_check(v->a.p, v->a.n) != 0)
            return fail(err, MQTT_RC_PROTOCOL_ERROR,
                        "MQTT-3.3.2-14: response topic empty or with wildcards");
        break;
    }
    return MQTT_OK;
}

/* Store a checked value in its field of *pr. */
static void value_store(uint8_t id, const mqtt_prop_t *v, mqtt_props_t *pr)
{
    switch (id) {
    case MQTT_PROP_PAYLOAD_FORMAT_INDICATOR:
        pr->payload_format_indicator = (uint8_t)v->u32;
        break;
    case MQTT_PROP_MESSAGE_EXPIRY_INTERVAL:
        pr->message_expiry_interval = v->u32;
        break;
    case MQTT_PROP_CONTENT_TYPE:
        pr->content_type = v->a;
        break;
    case MQTT_PROP_RESPONSE_TOPIC:
        pr->response_topic = v->a;
        break;
    case MQTT_PROP_CORRELATION_DATA:
        pr->correlation_data = v->a;
        break;
    case MQTT_PROP_SUBSCRIPTION_IDENTIFIER:
        if (pr->subscription_identifier_count++ == 0)
            pr->subscription_identifier = v->u32;
        break;
    case MQTT_PROP_SESSION_EXPIRY_INTERVAL:
        pr->session_expiry_interval = v->u32;
        break;
    case MQTT_PROP_ASSIGNED_CLIENT_IDENTIFIER:
        pr->assigned_client_identifier = v->a;
        break;
    case MQTT_PROP_SERVER_KEEP_ALIVE:
        pr->server_keep_alive = (uint16_t)v->u32;
        break;
    case MQTT_PROP_AUTHENTICATION_METHOD:
        pr->authentication_method = v->a;
        break;
    case MQTT_PROP_AUTHENTICATION_DATA:
        pr->authentication_data = v->a;
        break;
    case MQTT_PROP_REQUEST_PROBLEM_INFORMATION:
        pr->request_problem_information = (uint8_t)v->u32;
        break;
    case MQTT_PROP_WILL_DELAY_INTERVAL:
        pr->will_delay_interval = v->u32;
        break;
    case MQTT_PROP_REQUEST_RESPONSE_INFORMATION:
        pr->request_response_information = (uint8_t)v->u32;
        break;
    case MQTT_PROP_RESPONSE_INFORMATION:
        pr->response_information = v->a;
        break;
    case MQTT_PROP_SERVER_REFERENCE:
        pr->server_reference = v->a;
        break;
    case MQTT_PROP_REASON_STRING:
        pr->reason_string = v->a;
        break;
    case MQTT_PROP_RECEIVE_MAXIMUM:
        pr->receive_maximum = (uint16_t)v->u32;
        break;
    case MQTT_PROP_TOPIC_ALIAS_MAXIMUM:
        pr->topic_alias_maximum = (uint16_t)v->u32;
        break;
    case MQTT_PROP_TOPIC_ALIAS:
        pr->topic_alias = (uint16_t)v->u32;
        break;
    case MQTT_PROP_MAXIMUM_QOS:
        pr->maximum_qos = (uint8_t)v->u32;
        break;
    case MQTT_PROP_RETAIN_AVAILABLE:
        pr->retain_available = (uint8_t)v->u32;
        break;
    case MQTT_PROP_USER_PROPERTY:
        pr->user_property_count++;
        break;
    case MQTT_PROP_MAXIMUM_PACKET_SIZE:
        pr->maximum_packet_size = v->u32;
        break;
    case MQTT_PROP_WILDCARD_SUBSCRIPTION_AVAILABLE:
        pr->wildcard_subscription_available = (uint8_t)v->u32;
        break;
    case MQTT_PROP_SUBSCRIPTION_IDENTIFIER_AVAILABLE:
        pr->subscription_identifier_available = (uint8_t)v->u32;
        break;
    case MQTT_PROP_SHARED_SUBSCRIPTION_AVAILABLE:
        pr->shared_subscription_available = (uint8_t)v->u32;
        break;
    }
}

int mqtt_props_decode(uint8_t context, const uint8_t *p, size_t n, size_t *used, mqtt_props_t *pr,
                      mqtt_error_t *err)
{
    uint32_t len;
    mqtt_props_init(pr);
    int k = mqtt_vbi_decode(p, n, &len);
    if (k == 0)
        return fail(err, MQTT_RC_MALFORMED, "property length runs past the packet");
    if (k < 0)
        return fail(err, MQTT_RC_MALFORMED,
                    "MQTT-1.5.5-1: property length not a valid variable byte integer");
    if (len > n - (size_t)k)
        return fail(err, MQTT_RC_MALFORMED, "property block runs past the packet");
    const uint8_t *q = p + k, *end = q + len;
    pr->raw.p = q;
    pr->raw.n = len;
    while (q < end) {
        /* Identifiers are variable byte integers, but all are below 128: a first byte with
         * the top bit set can only start an unknown one. */
        uint8_t id = *q++;
        const prop_desc_t *d = prop_desc(id);
        if (!d)
            return fail(err, MQTT_RC_MALFORMED, "unknown property identifier");
        if (!(d->contexts & CTX(context)))
            return fail(err, MQTT_RC_MALFORMED, d->misplaced);
        mqtt_prop_t v = {0};
        size_t m = value_parse(d->type, q, (size_t)(end - q), &v);
        if (m == 0)
            return fail(err, MQTT_RC_MALFORMED, "property value runs past the property block");
        q += m;
        if ((d->type == T_STR || d->type == T_PAIR) && mqtt_utf8_check(v.a.p, v.a.n) != 0)
            return fail(err, MQTT_RC_MALFORMED, "MQTT-1.5.4-1: property string not valid UTF-8");
        if (d->type == T_PAIR && mqtt_utf8_check(v.b.p, v.b.n) != 0)
            return fail(err, MQTT_RC_MALFORMED, "MQTT-1.5.4-1: user property value not UTF-8");
        /* Sections 3.x.2.x: "It is a Protocol Error to include X more than once", except
         * user properties and the subscription identifiers a server sends in PUBLISH. */
        bool repeatable = id == MQTT_PROP_USER_PROPERTY ||
                          (id == MQTT_PROP_SUBSCRIPTION_IDENTIFIER && context == MQTT_PUBLISH);
        if (MQTT_PROP_HAS(pr, id) && !repeatable)
            return fail(err, MQTT_RC_PROTOCOL_ERROR, d->twice);
        if (value_check(id, &v, err) != MQTT_OK)
            return MQTT_FAIL;
        MQTT_PROP_SET(pr, id);
        value_store(id, &v, pr);
    }
    /* Section 3.1.2.11.10 (and 3.2.2.3.18, 3.15.2.2.3): data needs a method. */
    if (MQTT_PROP_HAS(pr, MQTT_PROP_AUTHENTICATION_DATA) &&
        !MQTT_PROP_HAS(pr, MQTT_PROP_AUTHENTICATION_METHOD))
        return fail(err, MQTT_RC_PROTOCOL_ERROR,
                    "authentication data without authentication method");
    *used = (size_t)k + len;
    return MQTT_OK;
}

int mqtt_prop_next(mqtt_bin_t *cursor, mqtt_prop_t *out)
{
    if (cursor->n == 0)
        return 0;
    const prop_desc_t *d = prop_desc(cursor->p[0]);
    if (!d)
        return 0;
    memset(out, 0, sizeof *out);
    out->id = cursor->p[0];
    size_t m = value_parse(d->type, cursor->p + 1, cursor->n - 1, out);
    if (m == 0)
        return 0;
    cursor->p += 1 + m;
    cursor->n -= (uint32_t)(1 + m);
    return 1;
}

size_t mqtt_props_filter(mqtt_bin_t raw, uint64_t keep_mask, uint8_t *out)
{
    size_t w = 0;
    mqtt_bin_t cur = raw;
    mqtt_prop_t pr;
    for (;;) {
        const uint8_t *start = cur.p;
        if (!mqtt_prop_next(&cur, &pr))
            break;
        if (keep_mask & MQTT_PROP_BIT(pr.id)) {
            size_t len = (size_t)(cur.p - start);
            memcpy(out + w, start, len);
            w += len;
        }
    }
    return w;
}

static uint8_t *put_str(uint8_t *o, const uint8_t *p, size_t n)
{
    if (n > 0xFFFF)
        n = 0xFFFF;
    *o++ = (uint8_t)(n >> 8);
    *o++ = (uint8_t)n;
    if (n)
        memcpy(o, p, n);
    return o + n;
}

size_t mqtt_prop_user_encode(uint8_t *out, const uint8_t *name, uint16_t name_n,
                             const uint8_t *value, uint16_t value_n)
{
    uint8_t *o = out;
    *o++ = MQTT_PROP_USER_PROPERTY;
    o = put_str(o, name, name_n);
    o = put_str(o, value, value_n);
    return (size_t)(o - out);
}

/* The value of field `id` of *pr, as an mqtt_prop_t, for the encoder. */
static void value_load(uint8_t id, const mqtt_props_t *pr, mqtt_prop_t *v)
{
    memset(v, 0, sizeof *v);
    switch (id) {
    case MQTT_PROP_PAYLOAD_FORMAT_INDICATOR:
        v->u32 = pr->payload_format_indicator;
        break;
    case MQTT_PROP_MESSAGE_EXPIRY_INTERVAL:
        v->u32 = pr->message_expiry_interval;
        break;
    case MQTT_PROP_CONTENT_TYPE:
        v->a = pr->content_type;
        break;
    case MQTT_PROP_RESPONSE_TOPIC:
        v->a = pr->response_topic;
        break;
    case MQTT_PROP_CORRELATION_DATA:
        v->a = pr->correlation_data;
        break;
    case MQTT_PROP_SUBSCRIPTION_IDENTIFIER:
        v->u32 = pr->subscription_identifier;
        break;
    case MQTT_PROP_SESSION_EXPIRY_INTERVAL:
        v->u32 = pr->session_expiry_interval;
        break;
    case MQTT_PROP_ASSIGNED_CLIENT_IDENTIFIER:
        v->a = pr->assigned_client_identifier;
        break;
    case MQTT_PROP_SERVER_KEEP_ALIVE:
        v->u32 = pr->server_keep_alive;
        break;
    case MQTT_PROP_AUTHENTICATION_METHOD:
        v->a = pr->authentication_method;
        break;
    case MQTT_PROP_AUTHENTICATION_DATA:
        v->a = pr->authentication_data;
        break;
    case MQTT_PROP_REQUEST_PROBLEM_INFORMATION:
        v->u32 = pr->request_problem_information;
        break;
    case MQTT_PROP_WILL_DELAY_INTERVAL:
        v->u32 = pr->will_delay_interval;
        break;
    case MQTT_PROP_REQUEST_RESPONSE_INFORMATION:
        v->u32 = pr->request_response_information;
        break;
    case MQTT_PROP_RESPONSE_INFORMATION:
        v->a = pr->response_information;
        break;
    case MQTT_PROP_SERVER_REFERENCE:
        v->a = pr->server_reference;
        break;
    case MQTT_PROP_REASON_STRING:
        v->a = pr->reason_string;
        break;
    case MQTT_PROP_RECEIVE_MAXIMUM:
        v->u32 = pr->receive_maximum;
        break;
    case MQTT_PROP_TOPIC_ALIAS_MAXIMUM:
        v->u32 = pr->topic_alias_maximum;
        break;
    case MQTT_PROP_TOPIC_ALIAS:
        v->u32 = pr->topic_alias;
        break;
    case MQTT_PROP_MAXIMUM_QOS:
        v->u32 = pr->maximum_qos;
        break;
    case MQTT_PROP_RETAIN_AVAILABLE:
        v->u32 = pr->retain_available;
        break;
    case MQTT_PROP_MAXIMUM_PACKET_SIZE:
        v->u32 = pr->maximum_packet_size;
        break;
    case MQTT_PROP_WILDCARD_SUBSCRIPTION_AVAILABLE:
        v->u32 = pr->wildcard_subscription_available;
        break;
    case MQTT_PROP_SUBSCRIPTION_IDENTIFIER_AVAILABLE:
        v->u32 = pr->subscription_identifier_available;
        break;
    case MQTT_PROP_SHARED_SUBSCRIPTION_AVAILABLE:
        v->u32 = pr->shared_subscription_available;
        break;
    }
}

/* Write one entry (id and value) at o, or only count its size when o is NULL. */
static size_t entry_put(uint8_t *o, uint8_t id, uint8_t type, const mqtt_prop_t *v)
{
    uint8_t tmp[4];
    size_t n;
    switch (type) {
    case T_BYTE:
        n = 1;
        break;
    case T_U16:
        n = 2;
        break;
    case T_U32:
        n = 4;
        break;
    case T_VBI:
        n = mqtt_vbi_size(v->u32 & MQTT_VBI_MAX);
        break;
    default:
        n = 2 + (v->a.n > 0xFFFF ? 0xFFFF : v->a.n);
        break;
    }
    if (!o)
        return 1 + n;
    *o++ = id;
    switch (type) {
    case T_BYTE:
        *o = (uint8_t)v->u32;
        break;
    case T_U16:
        o[0] = (uint8_t)(v->u32 >> 8);
        o[1] = (uint8_t)v->u32;
        break;
    case T_U32:
        o[0] = (uint8_t)(v->u32 >> 24);
        o[1] = (uint8_t)(v->u32 >> 16);
        o[2] = (uint8_t)(v->u32 >> 8);
        o[3] = (uint8_t)v->u32;
        break;
    case T_VBI:
        mqtt_vbi_encode(tmp, v->u32);
        memcpy(o, tmp, n);
        break;
    default:
        put_str(o, v->a.p, v->a.n);
        break;
    }
    return 1 + n;
}

/* Walk the present fields of *pr in identifier order, writing them at out (or only
 * sizing them when out is NULL), then `extra`. */
static size_t props_walk(uint8_t *out, const mqtt_props_t *pr)
{
    size_t w = 0;
    mqtt_prop_t v;
    for (uint8_t id = 1; id < NPROPS; id++) {
        const prop_desc_t *d = prop_desc(id);
        if (!d || id == MQTT_PROP_USER_PROPERTY || !MQTT_PROP_HAS(pr, id))
            continue;
        value_load(id, pr, &v);
        if (id == MQTT_PROP_SUBSCRIPTION_IDENTIFIER && pr->sub_ids) {
            for (uint32_t i = 0; i < pr->subscription_identifier_count; i++) {
                v.u32 = pr->sub_ids[i];
                w += entry_put(out ? out + w : NULL, id, d->type, &v);
            }
            continue;
        }
        w += entry_put(out ? out + w : NULL, id, d->type, &v);
    }
    if (pr->extra.n) {
        if (out)
            memcpy(out + w, pr->extra.p, pr->extra.n);
        w += pr->extra.n;
    }
    return w;
}

size_t mqtt_props_size(const mqtt_props_t *pr)
{
    return props_walk(NULL, pr);
}

size_t mqtt_props_encode(uint8_t *out, const mqtt_props_t *pr)
{
    return props_walk(out, pr);
}
