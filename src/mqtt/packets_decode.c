/* packets_decode.c - decode and validate the body of every MQTT control packet into a view
 * (mqtt_connect_t, mqtt_publish_t, ...) that points into the caller's buffer. The body is
 * what follows the fixed header that mqtt_frame_decode read; every rule that the packet
 * alone can break is checked here, with the statement ID beside it.
 */
#include <string.h>

#include "mqtt/codec.h"

/* What is left of the body to read. */
typedef struct rd {
    const uint8_t *p;
    size_t n;
} rd_t;

static int fail(mqtt_error_t *err, uint8_t reason, const char *rule)
{
    if (err) {
        err->reason = reason;
        err->rule = rule;
    }
    return MQTT_FAIL;
}

static bool rd_u8(rd_t *r, uint8_t *v)
{
    if (r->n < 1)
        return false;
    *v = r->p[0];
    r->p++;
    r->n--;
    return true;
}

static bool rd_u16(rd_t *r, uint16_t *v)
{
    if (r->n < 2)
        return false;
    *v = (uint16_t)(r->p[0] << 8 | r->p[1]);
    r->p += 2;
    r->n -= 2;
    return true;
}

/* A two-byte length and that many bytes (section 1.5.6). */
static bool rd_bin(rd_t *r, mqtt_bin_t *s)
{
    uint16_t len;
    rd_t save = *r;
    if (!rd_u16(r, &len) || r->n < len) {
        *r = save;
        return false;
    }
    s->p = r->p;
    s->n = len;
    r->p += len;
    r->n -= len;
    return true;
}

/* A UTF-8 string (section 1.5.4): 0x81 when it runs past the body or is not well-formed
 * (MQTT-1.5.4-1, MQTT-1.5.4-2). `what` names the field for the rule. */
static int rd_str(rd_t *r, mqtt_str_t *s, const char *past, const char *bad, mqtt_error_t *err)
{
    if (!rd_bin(r, s))
        return fail(err, MQTT_RC_MALFORMED, past);
    if (mqtt_utf8_check(s->p, s->n) != 0)
        return fail(err, MQTT_RC_MALFORMED, bad);
    return MQTT_OK;
}

/* The property block on 5.0; below 5.0 there is none and nothing is read. */
static int rd_props(rd_t *r, uint8_t version, uint8_t context, mqtt_props_t *pr, mqtt_error_t *err)
{
    size_t used;
    if (version < MQTT_V5) {
        mqtt_props_init(pr);
        return MQTT_OK;
    }
    if (mqtt_props_decode(context, r->p, r->n, &used, pr, err) != MQTT_OK)
        return MQTT_FAIL;
    r->p += used;
    r->n -= used;
    return MQTT_OK;
}

static bool code_in(uint8_t code, const uint8_t *set, size_t n)
{
    return memchr(set, code, n) != NULL;
}

#define CODE_IN(code, set) code_in(code, set, sizeof set)

/* Reason codes each 5.0 packet may carry (sections 3.2.2.2, 3.4.2.1, 3.5.2.1, 3.6.2.1,
 * 3.7.2.1, 3.9.3, 3.11.3, 3.14.2.1, 3.15.2.1). */
static const uint8_t connack_codes[] = {0x00, 0x80, 0x81, 0x82, 0x83, 0x84, 0x85, 0x86,
                                        0x87, 0x88, 0x89, 0x8A, 0x8C, 0x90, 0x95, 0x97,
                                        0x99, 0x9A, 0x9B, 0x9C, 0x9D, 0x9F};
static const uint8_t puback_codes[] = {0x00, 0x10, 0x80, 0x83, 0x87, 0x90, 0x91, 0x97, 0x99};
static const uint8_t pubrel_codes[] = {0x00, 0x92};
static const uint8_t suback_codes[] = {0x00, 0x01, 0x02, 0x80, 0x83, 0x87,
                                       0x8F, 0x91, 0x97, 0x9E, 0xA1, 0xA2};
static const uint8_t suback_v3_codes[] = {0x00, 0x01, 0x02, 0x80};
static const uint8_t unsuback_codes[] = {0x00, 0x11, 0x80, 0x83, 0x87, 0x8F, 0x91};
static const uint8_t disconnect_codes[] = {
    0x00, 0x04, 0x80, 0x81, 0x82, 0x83, 0x87, 0x89, 0x8B, 0x8D, 0x8E, 0x8F, 0x90, 0x93, 0x94,
    0x95, 0x96, 0x97, 0x98, 0x99, 0x9A, 0x9B, 0x9C, 0x9D, 0x9E, 0x9F, 0xA0, 0xA1, 0xA2};
static const uint8_t auth_codes[] = {0x00, 0x18, 0x19};

static bool str_is(mqtt_str_t s, const char *lit)
{
    size_t n = strlen(lit);
    return s.n == n && memcmp(s.p, lit, n) == 0;
}

int mqtt_connect_decode(const uint8_t *p, size_t n, mqtt_connect_t *c, mqtt_error_t *err)
{
    rd_t r = {p, n};
    mqtt_str_t name;
    uint8_t level, flags;

    memset(c, 0, sizeof *c);
    mqtt_props_init(&c->props);
    mqtt_props_init(&c->will.props);
    if (!rd_bin(&r, &name))
        return fail(err, MQTT_RC_MALFORMED, "CONNECT protocol name runs past the packet");
    if (!rd_u8(&r, &level))
        return fail(err, MQTT_RC_MALFORMED, "CONNECT protocol level missing");
    c->version = level;
    /* MQTT-3.1.2-1 (3.1.1), MQTT-3.1.2-2: "MQTT" with 4 or 5, or 3.1's "MQIsdp" with 3. */
    bool known = (str_is(name, "MQTT") && (level == MQTT_V311 || level == MQTT_V5)) ||
                 (str_is(name, "MQIsdp") && level == MQTT_V31);
    if (!known)
        return fail(err, MQTT_RC_UNSUPPORTED_PROTOCOL_VERSION,
                    "MQTT-3.1.2-2: unsupported protocol name or level");
    if (!rd_u8(&r, &flags) || !rd_u16(&r, &c->keep_alive))
        return fail(err, MQTT_RC_MALFORMED, "CONNECT variable header runs past the packet");
    if (flags & 0x01)
        return fail(err, MQTT_RC_MALFORMED, "MQTT-3.1.2-3: CONNECT reserved flag bit 0 set");
    c->clean_start = (flags & 0x02) != 0;
    c->has_will = (flags & 0x04) != 0;
    c->will.qos = (flags >> 3) & 3;
    c->will.retain = (flags & 0x20) != 0;
    c->has_password = (flags & 0x40) != 0;
    c->has_username = (flags & 0x80) != 0;
    if (!c->has_will && c->will.qos != 0)
        return fail(err, MQTT_RC_MALFORMED, "MQTT-3.1.2-11: will QoS set without the will flag");
    if (!c->has_will && c->will.retain)
        return fail(err, MQTT_RC_MALFORMED, "MQTT-3.1.2-13: will retain set without the will flag");
    if (c->will.qos == 3)
        return fail(err, MQTT_RC_MALFORMED, "MQTT-3.1.2-12: will QoS 3");
    /* 3.1.1 MQTT-3.1.2-22; 5.0 allows a password alone (section 3.1.2.9). */
    if (level < MQTT_V5 && c->has_password && !c->has_username)
        return fail(err, MQTT_RC_MALFORMED, "MQTT-3.1.2-22: password flag without user name flag");
    if (rd_props(&r, level, MQTT_CONNECT, &c->props, err) != MQTT_OK)
        return MQTT_FAIL;
    /* MQTT-3.1.3-4 (3.1.1 MQTT-3.1.3-4): a UTF-8 string; may be empty, the broker decides. */
    if (rd_str(&r, &c->client_id, "CONNECT client identifier runs past the packet",
               "MQTT-3.1.3-4: client identifier not valid UTF-8", err) != MQTT_OK)
        return MQTT_FAIL;
    if (c->has_will) {
        if (rd_props(&r, level, MQTT_PROPS_WILL, &c->will.props, err) != MQTT_OK)
            return MQTT_FAIL;
        if (rd_str(&r, &c->will.topic, "CONNECT will topic runs past the packet",
                   "MQTT-3.1.3-11: will topic not valid UTF-8", err) != MQTT_OK)
            return MQTT_FAIL;
        /* The will topic becomes a PUBLISH topic name: same rules (MQTT-3.3.2-2). */
        if (mqtt_topic_name_check(c->will.topic.p, c->will.topic.n) != 0)
            return fail(err, MQTT_RC_TOPIC_NAME_INVALID,
                        "MQTT-3.3.2-2: will topic empty or with wildcards");
        if (!rd_bin(&r, &c->will.payload))
            return fail(err, MQTT_RC_MALFORMED, "CONNECT will payload runs past the packet");
    }
    if (c->has_username && rd_str(&r, &c->username, "CONNECT user name runs past the packet",
                                  "MQTT-3.1.3-12: user name not valid UTF-8", err) != MQTT_OK)
        return MQTT_FAIL;
    if (c->has_password && !rd_bin(&r, &c->password))
        return fail(err, MQTT_RC_MALFORMED, "CONNECT password runs past the packet");
    if (r.n != 0)
        return fail(err, MQTT_RC_MALFORMED, "bytes left over after the last CONNECT field");
    return MQTT_OK;
}

int mqtt_connack_decode(uint8_t version, const uint8_t *p, size_t n, mqtt_connack_t *a,
                        mqtt_error_t *err)
{
    rd_t r = {p, n};
    uint8_t flags;

    memset(a, 0, sizeof *a);
    mqtt_props_init(&a->props);
    if (!rd_u8(&r, &flags) || !rd_u8(&r, &a->code))
        return fail(err, MQTT_RC_MALFORMED, "CONNACK shorter than 2 bytes");
    /* 3.1 has no flags, its first byte is unused. */
    if (version >= MQTT_V311) {
        if (flags & 0xFE)
            return fail(err, MQTT_RC_MALFORMED, "MQTT-3.2.2-1: CONNACK reserved flag bits set");
        a->session_present = flags & 1;
    }
    if (version >= MQTT_V5) {
        if (!CODE_IN(a->code, connack_codes))
            return fail(err, MQTT_RC_PROTOCOL_ERROR, "CONNACK reason code not valid");
        if (a->code != 0 && a->session_present)
            return fail(err, MQTT_RC_PROTOCOL_ERROR,
                        "MQTT-3.2.2-6: session present with a non-zero reason code");
        if (rd_props(&r, version, MQTT_CONNACK, &a->props, err) != MQTT_OK)
            return MQTT_FAIL;
    }
    if (r.n != 0)
        return fail(err, MQTT_RC_MALFORMED, "bytes left over after the last CONNACK field");
    return MQTT_OK;
}

int mqtt_publish_decode(uint8_t version, uint8_t flags, const uint8_t *p, size_t n,
                        mqtt_publish_t *pub, mqtt_error_t *err)
{
    rd_t r = {p, n};

    memset(pub, 0, sizeof *pub);
    mqtt_props_init(&pub->props);
    pub->qos = (flags >> 1) & 3;
    pub->dup = (flags & 0x08) != 0;
    pub->retain = (flags & 0x01) != 0;
    if (pub->qos == 3)
        return fail(err, MQTT_RC_MALFORMED, "MQTT-3.3.1-4: PUBLISH with QoS 3");
    if (pub->qos == 0 && pub->dup)
        return fail(err, MQTT_RC_MALFORMED, "MQTT-3.3.1-2: PUBLISH with DUP set at QoS 0");
    if (rd_str(&r, &pub->topic, "PUBLISH topic name runs past the packet",
               "MQTT-3.3.2-1: PUBLISH topic name not valid UTF-8", err) != MQTT_OK)
        return MQTT_FAIL;
    for (uint32_t i = 0; i < pub->topic.n; i++)
        if (pub->topic.p[i] == '+' || pub->topic.p[i] == '#')
            return fail(err, MQTT_RC_TOPIC_NAME_INVALID,
                        "MQTT-3.3.2-2: wildcard in PUBLISH topic name");
    if (pub->qos > 0) {
        if (!rd_u16(&r, &pub->packet_id))
            return fail(err, MQTT_RC_MALFORMED, "PUBLISH packet identifier runs past the packet");
        if (pub->packet_id == 0)
            return fail(err, MQTT_RC_PROTOCOL_ERROR,
                        "MQTT-2.2.1-3: PUBLISH packet identifier 0 at QoS > 0");
    }
    if (rd_props(&r, version, MQTT_PUBLISH, &pub->props, err) != MQTT_OK)
        return MQTT_FAIL;
    if (pub->topic.n == 0) {
        /* 5.0 section 3.3.2.1: empty only when a topic alias stands for it; 3.1.1
         * MQTT-4.7.3-1: at least one character. */
        if (version < MQTT_V5)
            return fail(err, MQTT_RC_PROTOCOL_ERROR, "MQTT-4.7.3-1: empty PUBLISH topic name");
        /* The specification calls this a Protocol Error; the project's checklist (item
         * 12) asks for the more telling 0x90 Topic Name invalid, which is also allowed. */
        if (!MQTT_PROP_HAS(&pub->props, MQTT_PROP_TOPIC_ALIAS))
            return fail(err, MQTT_RC_TOPIC_NAME_INVALID,
                        "MQTT-3.3.2-1: empty PUBLISH topic name without a topic alias");
    }
    pub->payload.p = r.p;
    pub->payload.n = (uint32_t)r.n;
    return MQTT_OK;
}

int mqtt_ack_decode(uint8_t version, uint8_t type, const uint8_t *p, size_t n, mqtt_ack_t *a,
                    mqtt_error_t *err)
{
    rd_t r = {p, n};

    memset(a, 0, sizeof *a);
    mqtt_props_init(&a->props);
    if (!rd_u16(&r, &a->packet_id))
        return fail(err, MQTT_RC_MALFORMED, "acknowledgement shorter than 2 bytes");
    if (a->packet_id == 0)
        return fail(err, MQTT_RC_PROTOCOL_ERROR, "MQTT-2.2.1-3: packet identifier 0");
    /* 5.0 section 3.4.2.1: no reason code means 0, no property length means none. */
    if (version >= MQTT_V5 && r.n > 0) {
        rd_u8(&r, &a->reason);
        bool rel = type == MQTT_PUBREL || type == MQTT_PUBCOMP;
        if (rel ? !CODE_IN(a->reason, pubrel_codes) : !CODE_IN(a->reason, puback_codes))
            return fail(err, MQTT_RC_PROTOCOL_ERROR,
                        "reason code not valid for this acknowledgement");
        if (r.n > 0 && rd_props(&r, version, type, &a->props, err) != MQTT_OK)
            return MQTT_FAIL;
    }
    if (r.n != 0)
        return fail(err, MQTT_RC_MALFORMED, "bytes left over after the last field of an ack");
    return MQTT_OK;
}

/* Shared by SUBSCRIBE and UNSUBSCRIBE: a packet id that is not 0 (MQTT-2.2.1-3). */
static int rd_packet_id(rd_t *r, uint16_t *id, mqtt_error_t *err)
{
    if (!rd_u16(r, id))
        return fail(err, MQTT_RC_MALFORMED, "packet identifier runs past the packet");
    if (*id == 0)
        return fail(err, MQTT_RC_PROTOCOL_ERROR, "MQTT-2.2.1-3: packet identifier 0");
    return MQTT_OK;
}

int mqtt_subscribe_decode(uint8_t version, const uint8_t *p, size_t n, mqtt_subscribe_t *s,
                          mqtt_error_t *err)
{
    rd_t r = {p, n};

    memset(s, 0, sizeof *s);
    mqtt_props_init(&s->props);
    if (rd_packet_id(&r, &s->packet_id, err) != MQTT_OK)
        return MQTT_FAIL;
    if (rd_props(&r, version, MQTT_SUBSCRIBE, &s->props, err) != MQTT_OK)
        return MQTT_FAIL;
    s->entries.p = r.p;
    s->entries.n = (uint32_t)r.n;
    while (r.n > 0) {
        mqtt_str_t filter;
        uint8_t opt;
        if (rd_str(&r, &filter, "SUBSCRIBE topic filter runs past the packet",
                   "MQTT-3.8.3-1: topic filter not valid UTF-8", err) != MQTT_OK)
            return MQTT_FAIL;
        if (!rd_u8(&r, &opt))
            return fail(err, MQTT_RC_MALFORMED, "SUBSCRIBE options byte missing");
        if (version < MQTT_V5) {
            if (opt & 0xFC)
                return fail(err, MQTT_RC_MALFORMED,
                            "MQTT-3.8.3-4: SUBSCRIBE reserved option bits set (3.1.1)");
            if ((opt & 3) == 3)
                return fail(err, MQTT_RC_MALFORMED, "MQTT-3.8.3-4: SUBSCRIBE with QoS 3 (3.1.1)");
        } else {
            if (opt & 0xC0)
                return fail(err, MQTT_RC_MALFORMED,
                            "MQTT-3.8.3-5: SUBSCRIBE reserved option bits set");
            if ((opt & 3) == 3)
                return fail(err, MQTT_RC_PROTOCOL_ERROR, "SUBSCRIBE with maximum QoS 3");
            if (((opt >> 4) & 3) == 3)
                return fail(err, MQTT_RC_PROTOCOL_ERROR, "SUBSCRIBE with retain handling 3");
            mqtt_str_t group, rest;
            if ((opt & 0x04) && mqtt_share_split(filter.p, filter.n, &group, &rest) != 0)
                return fail(err, MQTT_RC_PROTOCOL_ERROR,
                            "MQTT-3.8.3-4: no local on a shared subscription");
        }
        s->count++;
    }
    if (s->count == 0)
        return fail(err, MQTT_RC_PROTOCOL_ERROR, "MQTT-3.8.3-3: SUBSCRIBE with no topic filter");
    return MQTT_OK;
}

int mqtt_subscribe_next(uint8_t version, mqtt_bin_t *cursor, mqtt_sub_entry_t *e)
{
    rd_t r = {cursor->p, cursor->n};
    uint8_t opt;
    if (!rd_bin(&r, &e->filter) || !rd_u8(&r, &opt))
        return 0;
    e->qos = opt & 3;
    e->no_local = version >= MQTT_V5 && (opt & 0x04);
    e->retain_as_published = version >= MQTT_V5 && (opt & 0x08);
    e->retain_handling = version >= MQTT_V5 ? (opt >> 4) & 3 : 0;
    cursor->p = r.p;
    cursor->n = (uint32_t)r.n;
    return 1;
}

int mqtt_unsubscribe_decode(uint8_t version, const uint8_t *p, size_t n, mqtt_unsubscribe_t *u,
                            mqtt_error_t *err)
{
    rd_t r = {p, n};

    memset(u, 0, sizeof *u);
    mqtt_props_init(&u->props);
    if (rd_packet_id(&r, &u->packet_id, err) != MQTT_OK)
        return MQTT_FAIL;
    if (rd_props(&r, version, MQTT_UNSUBSCRIBE, &u->props, err) != MQTT_OK)
        return MQTT_FAIL;
    u->entries.p = r.p;
    u->entries.n = (uint32_t)r.n;
    while (r.n > 0) {
        mqtt_str_t filter;
        if (rd_str(&r, &filter, "UNSUBSCRIBE topic filter runs past the packet",
                   "MQTT-3.10.3-1: topic filter not valid UTF-8", err) != MQTT_OK)
            return MQTT_FAIL;
        u->count++;
    }
    if (u->count == 0)
        return fail(err, MQTT_RC_PROTOCOL_ERROR, "MQTT-3.10.3-2: UNSUBSCRIBE with no topic filter");
    return MQTT_OK;
}

int mqtt_unsubscribe_next(mqtt_bin_t *cursor, mqtt_str_t *filter)
{
    rd_t r = {cursor->p, cursor->n};
    if (!rd_bin(&r, filter))
        return 0;
    cursor->p = r.p;
    cursor->n = (uint32_t)r.n;
    return 1;
}

int mqtt_suback_decode(uint8_t version, uint8_t type, const uint8_t *p, size_t n, mqtt_suback_t *a,
                       mqtt_error_t *err)
{
    rd_t r = {p, n};

    memset(a, 0, sizeof *a);
    mqtt_props_init(&a->props);
    if (rd_packet_id(&r, &a->packet_id, err) != MQTT_OK)
        return MQTT_FAIL;
    if (type == MQTT_UNSUBACK && version < MQTT_V5) {
        if (r.n != 0)
            return fail(err, MQTT_RC_MALFORMED, "UNSUBACK longer than 2 bytes");
        return MQTT_OK;
    }
    if (rd_props(&r, version, type, &a->props, err) != MQTT_OK)
        return MQTT_FAIL;
    a->codes.p = r.p;
    a->codes.n = (uint32_t)r.n;
    if (r.n == 0)
        return fail(err, MQTT_RC_PROTOCOL_ERROR, "acknowledgement without reason codes");
    for (size_t i = 0; i < r.n; i++) {
        uint8_t c = r.p[i];
        bool ok = type == MQTT_UNSUBACK ? CODE_IN(c, unsuback_codes)
                  : version < MQTT_V5   ? CODE_IN(c, suback_v3_codes)
                                        : CODE_IN(c, suback_codes);
        if (!ok)
            return fail(err, version < MQTT_V5 ? MQTT_RC_MALFORMED : MQTT_RC_PROTOCOL_ERROR,
                        "MQTT-3.9.3-2: SUBACK/UNSUBACK reason code not valid");
    }
    return MQTT_OK;
}

int mqtt_empty_decode(const uint8_t *p, size_t n, mqtt_error_t *err)
{
    (void)p;
    if (n != 0)
        return fail(err, MQTT_RC_MALFORMED, "remaining length not 0 in a packet with no body");
    return MQTT_OK;
}

/* DISCONNECT and AUTH on 5.0: an optional reason code, then optional properties. */
static int reason_packet_decode(uint8_t type, const uint8_t *p, size_t n, mqtt_reason_packet_t *d,
                                mqtt_error_t *err)
{
    rd_t r = {p, n};

    memset(d, 0, sizeof *d);
    mqtt_props_init(&d->props);
    if (r.n == 0)
        return MQTT_OK; /* sections 3.14.2.1, 3.15.2.1: absent means 0x00 */
    rd_u8(&r, &d->reason);
    bool ok =
        type == MQTT_AUTH ? CODE_IN(d->reason, auth_codes) : CODE_IN(d->reason, disconnect_codes);
    if (!ok)
        return fail(err, MQTT_RC_PROTOCOL_ERROR,
                    type == MQTT_AUTH ? "AUTH reason code not valid"
                                      : "DISCONNECT reason code not valid");
    if (r.n > 0 && rd_props(&r, MQTT_V5, type, &d->props, err) != MQTT_OK)
        return MQTT_FAIL;
    if (r.n != 0)
        return fail(err, MQTT_RC_MALFORMED, "bytes left over after the properties");
    return MQTT_OK;
}

int mqtt_disconnect_decode(uint8_t version, const uint8_t *p, size_t n, mqtt_reason_packet_t *d,
                           mqtt_error_t *err)
{
    if (version < MQTT_V5) {
        memset(d, 0, sizeof *d);
        mqtt_props_init(&d->props);
        return mqtt_empty_decode(p, n, err);
    }
    return reason_packet_decode(MQTT_DISCONNECT, p, n, d, err);
}

int mqtt_auth_decode(const uint8_t *p, size_t n, mqtt_reason_packet_t *a, mqtt_error_t *err)
{
    return reason_packet_decode(MQTT_AUTH, p, n, a, err);
}
