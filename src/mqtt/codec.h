/* codec.h - encode and decode every MQTT 3.1, 3.1.1 and 5.0 control packet.
 *
 * Pure functions: no I/O, no global state, no allocation. A decoded packet is a view into
 * the caller's input buffer and lives as long as that buffer. Encoders write into a
 * caller-supplied buffer. Shared by the broker (src/broker) and the client (src/client),
 * and built freestanding for microcontrollers.
 *
 * Decoders validate everything the specification makes a Malformed Packet or Protocol
 * Error and that can be judged from the packet alone; rules that need connection state
 * (topic alias maximum, receive maximum, session state, authorisation) are the caller's.
 */
#ifndef MIDGE_CODEC_H
#define MIDGE_CODEC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mqtt.h"

/* Return values of every decoder. */
enum {
    MQTT_OK = 0,
    MQTT_INCOMPLETE = 1, /* mqtt_frame_decode only: more bytes needed */
    MQTT_FAIL = -1,      /* see the mqtt_error_t filled in */
};

/* Why a decode failed: the MQTT 5.0 reason code to report (0x81 Malformed Packet, 0x82
 * Protocol Error, 0x84 Unsupported Protocol Version, 0x90 Topic Name invalid, 0x94 Topic
 * Alias invalid, ...) and a static, human-readable rule, preferably starting with the
 * specification's statement ID: "MQTT-3.3.2-2: wildcard in PUBLISH topic name". */
typedef struct mqtt_error {
    uint8_t reason;
    const char *rule;
} mqtt_error_t;

/* A UTF-8 string or binary field: a view into the packet. */
typedef struct mqtt_str {
    const uint8_t *p;
    uint32_t n;
} mqtt_str_t;
typedef mqtt_str_t mqtt_bin_t;

/* ---- fixed header ---------------------------------------------------------------- */

typedef struct mqtt_frame {
    uint8_t type;        /* enum mqtt_packet_type */
    uint8_t flags;       /* low nibble of the first byte */
    uint8_t header_len;  /* 2..5: first byte plus the remaining-length bytes */
    uint32_t remaining;  /* length of the body that follows the header */
} mqtt_frame_t;

/* Decode the fixed header at buf[0..n). MQTT_INCOMPLETE when the header is not all there
 * yet (the body may or may not be: the caller compares n with header_len + remaining).
 * Fails on: packet type 0, remaining length over 4 bytes or not in its shortest form,
 * reserved flag bits not as the table in section 2.1.3 says, PUBLISH with QoS 3, PUBLISH
 * with DUP set at QoS 0. */
int mqtt_frame_decode(const uint8_t *buf, size_t n, mqtt_frame_t *f, mqtt_error_t *err);

/* Variable byte integer: decode at p[0..n) into *v, returning bytes used, 0 if more bytes
 * are needed, -1 if malformed (over 4 bytes, or not in its shortest form: MQTT-1.5.5-1).
 * Encode returns bytes written (1..4). */
int mqtt_vbi_decode(const uint8_t *p, size_t n, uint32_t *v);
size_t mqtt_vbi_encode(uint8_t *out, uint32_t v);

/* ---- properties (MQTT 5.0) ------------------------------------------------------ */

#define MQTT_PROP_BIT(id) (1ull << (id))
#define MQTT_PROP_HAS(pr, id) (((pr)->present & MQTT_PROP_BIT(id)) != 0)
#define MQTT_PROP_SET(pr, id) ((pr)->present |= MQTT_PROP_BIT(id))

/* All the properties of one packet. On decode, fields whose bit is not in `present` hold
 * the specification's default (receive_maximum 65535, maximum_qos 2, the *_available
 * flags 1, request_problem_information 1, others 0), `raw` spans the whole property block
 * and `user_property_count` counts the user properties (iterate `raw` for them).
 * On encode, every field whose bit is in `present` is written, then the bytes of `extra`
 * verbatim (already-encoded property entries: user properties built with
 * mqtt_prop_user_encode, or entries kept from a received packet). */
typedef struct mqtt_props {
    uint64_t present;
    uint8_t payload_format_indicator;
    uint8_t request_problem_information;
    uint8_t request_response_information;
    uint8_t maximum_qos;
    uint8_t retain_available;
    uint8_t wildcard_subscription_available;
    uint8_t subscription_identifier_available;
    uint8_t shared_subscription_available;
    uint16_t server_keep_alive;
    uint16_t receive_maximum;
    uint16_t topic_alias_maximum;
    uint16_t topic_alias;
    uint32_t message_expiry_interval;
    uint32_t session_expiry_interval;
    uint32_t will_delay_interval;
    uint32_t maximum_packet_size;
    /* Subscription identifiers: on decode, the first one and how many there were.
     * On encode, sub_ids[0..subscription_identifier_count) if sub_ids is not NULL,
     * else subscription_identifier once. */
    uint32_t subscription_identifier;
    uint32_t subscription_identifier_count;
    const uint32_t *sub_ids;
    mqtt_str_t content_type;
    mqtt_str_t response_topic;
    mqtt_bin_t correlation_data;
    mqtt_str_t assigned_client_identifier;
    mqtt_str_t authentication_method;
    mqtt_bin_t authentication_data;
    mqtt_str_t response_information;
    mqtt_str_t server_reference;
    mqtt_str_t reason_string;
    uint32_t user_property_count;
    mqtt_bin_t raw;   /* decode: the property block, without its length */
    mqtt_bin_t extra; /* encode: entries appended verbatim */
} mqtt_props_t;

/* Set every field of *pr to its default and `present` to 0. */
void mqtt_props_init(mqtt_props_t *pr);

/* One property entry, as met while iterating a validated block. For a user property `a`
 * is the name and `b` the value; for other strings and binary data `a` is the value;
 * integers are in u32. */
typedef struct mqtt_prop {
    uint8_t id;
    uint32_t u32;
    mqtt_str_t a, b;
} mqtt_prop_t;

/* Iterate a property block that a decoder already validated: *cursor starts as the
 * block (props->raw) and is advanced. Returns 1 with *out filled, 0 at the end. */
int mqtt_prop_next(mqtt_bin_t *cursor, mqtt_prop_t *out);

/* Copy, verbatim and in order, the entries of a validated block whose identifier's bit is
 * in keep_mask (MQTT_PROP_BIT(id) | ...) to out, which must hold raw.n bytes. Returns the
 * bytes written. Used to keep the properties a broker forwards with a message. */
size_t mqtt_props_filter(mqtt_bin_t raw, uint64_t keep_mask, uint8_t *out);

/* Encode one user property entry (id, name, value) at out, which must hold
 * 5 + name_n + value_n bytes; returns bytes written. */
size_t mqtt_prop_user_encode(uint8_t *out, const uint8_t *name, uint16_t name_n,
                             const uint8_t *value, uint16_t value_n);

/* Size of the encoded property block of *pr, without its length prefix. */
size_t mqtt_props_size(const mqtt_props_t *pr);

/* ---- CONNECT / CONNACK ---------------------------------------------------------- */

typedef struct mqtt_will {
    uint8_t qos;
    bool retain;
    mqtt_str_t topic;
    mqtt_bin_t payload;
    mqtt_props_t props; /* will properties (5.0) */
} mqtt_will_t;

typedef struct mqtt_connect {
    uint8_t version; /* protocol level as received (3, 4, 5), even when decode fails */
    bool clean_start;
    uint16_t keep_alive;
    mqtt_str_t client_id;
    bool has_will;
    mqtt_will_t will;
    bool has_username;
    mqtt_str_t username;
    bool has_password;
    mqtt_bin_t password;
    mqtt_props_t props;
} mqtt_connect_t;

/* Fails with 0x84 on an unknown protocol name or level (c->version says which level was
 * asked for; 3 requires "MQIsdp", 4 and 5 require "MQTT"), 0x81 on reserved flag bit 0,
 * will QoS 3, will QoS/retain without the will flag, (3.1.1) password without user name,
 * bad UTF-8 anywhere, fields past the end or bytes left over. Will topic: 0x90 if it is
 * empty or has wildcards (the rules of a PUBLISH topic name). Below 5.0 no property length
 * is read; on 5.0 the will properties are checked as their own set (MQTT_PROPS_WILL).
 * Client id rules (empty, length) are the broker's. */
int mqtt_connect_decode(const uint8_t *p, size_t n, mqtt_connect_t *c, mqtt_error_t *err);
size_t mqtt_connect_encode(uint8_t *buf, size_t cap, const mqtt_connect_t *c);

typedef struct mqtt_connack {
    bool session_present;
    uint8_t code; /* 3.x return code or 5.0 reason code */
    mqtt_props_t props;
} mqtt_connack_t;

int mqtt_connack_decode(uint8_t version, const uint8_t *p, size_t n, mqtt_connack_t *a,
                        mqtt_error_t *err);
/* props may be NULL (no properties); ignored below 5.0. */
size_t mqtt_connack_encode(uint8_t *buf, size_t cap, uint8_t version, bool session_present,
                           uint8_t code, const mqtt_props_t *props);

/* ---- PUBLISH ------------------------------------------------------------------- */

typedef struct mqtt_publish {
    uint8_t qos;
    bool dup;
    bool retain;
    mqtt_str_t topic; /* may be empty on 5.0 when a topic alias stands for it */
    uint16_t packet_id; /* 0 at QoS 0 */
    mqtt_props_t props;
    mqtt_bin_t payload;
} mqtt_publish_t;

/* flags is the fixed header's low nibble. Fails with 0x81 on bad UTF-8 in the topic,
 * 0x90 on a wildcard in the topic (MQTT-3.3.2-2) and on an empty topic without a topic
 * alias (5.0), 0x82 on an empty topic (3.x), 0x82 on packet id 0 at QoS > 0, 0x94 on topic
 * alias 0. */
int mqtt_publish_decode(uint8_t version, uint8_t flags, const uint8_t *p, size_t n,
                        mqtt_publish_t *pub, mqtt_error_t *err);

/* A whole PUBLISH packet (props may be NULL). */
size_t mqtt_publish_encode(uint8_t *buf, size_t cap, uint8_t version, const mqtt_publish_t *pub);

/* Everything of a PUBLISH up to its payload, for writing with writev: the fixed header,
 * topic (may be empty when props carries a topic alias), packet id at QoS > 0, and on 5.0
 * the property length, covering mqtt_props_size(props) + shared_props_len, followed by
 * the entries of props. The caller sends shared_props_len bytes of already-encoded
 * properties and then payload_len bytes of payload after it. props may be NULL. */
size_t mqtt_publish_header_encode(uint8_t *buf, size_t cap, uint8_t version, uint8_t qos,
                                  bool dup, bool retain, mqtt_str_t topic, uint16_t packet_id,
                                  const mqtt_props_t *props, size_t shared_props_len,
                                  size_t payload_len);

/* ---- PUBACK, PUBREC, PUBREL, PUBCOMP --------------------------------------------- */

typedef struct mqtt_ack {
    uint16_t packet_id;
    uint8_t reason; /* 0 when absent */
    mqtt_props_t props;
} mqtt_ack_t;

int mqtt_ack_decode(uint8_t version, uint8_t type, const uint8_t *p, size_t n, mqtt_ack_t *a,
                    mqtt_error_t *err);
/* On 5.0 the reason code and properties are left out when reason is 0 and props is
 * NULL or empty (section 3.4.2.1). */
size_t mqtt_ack_encode(uint8_t *buf, size_t cap, uint8_t version, uint8_t type,
                       uint16_t packet_id, uint8_t reason, const mqtt_props_t *props);

/* ---- SUBSCRIBE / SUBACK / UNSUBSCRIBE / UNSUBACK --------------------------------- */

typedef struct mqtt_sub_entry {
    mqtt_str_t filter;
    uint8_t qos;
    bool no_local;
    bool retain_as_published;
    uint8_t retain_handling;
} mqtt_sub_entry_t;

typedef struct mqtt_subscribe {
    uint16_t packet_id;
    mqtt_props_t props;
    mqtt_bin_t entries; /* iterate with mqtt_subscribe_next */
    uint32_t count;
} mqtt_subscribe_t;

/* Validates the whole packet: packet id not 0, at least one entry (MQTT-3.8.3-3),
 * filters well-formed UTF-8, options: reserved bits set are malformed (MQTT-3.8.3-5;
 * 3.1.1: any bit above QoS, and QoS 3, MQTT-3-8.3-4); on 5.0 QoS 3, retain handling 3
 * and No Local on a "$share/" filter (MQTT-3.8.3-4) are Protocol Errors (0x82, as section
 * 3.8.3.1 says). Filter syntax (wildcard placement, $share) is not checked here: a bad
 * filter gets a failure code in SUBACK, not a closed connection. */
int mqtt_subscribe_decode(uint8_t version, const uint8_t *p, size_t n, mqtt_subscribe_t *s,
                          mqtt_error_t *err);
/* Returns 1 with *e filled, 0 at the end. *cursor starts as s->entries. */
int mqtt_subscribe_next(uint8_t version, mqtt_bin_t *cursor, mqtt_sub_entry_t *e);
size_t mqtt_subscribe_encode(uint8_t *buf, size_t cap, uint8_t version, uint16_t packet_id,
                             const mqtt_props_t *props, const mqtt_sub_entry_t *entries,
                             size_t count);

typedef struct mqtt_unsubscribe {
    uint16_t packet_id;
    mqtt_props_t props;
    mqtt_bin_t entries; /* iterate with mqtt_unsubscribe_next */
    uint32_t count;
} mqtt_unsubscribe_t;

int mqtt_unsubscribe_decode(uint8_t version, const uint8_t *p, size_t n, mqtt_unsubscribe_t *u,
                            mqtt_error_t *err);
int mqtt_unsubscribe_next(mqtt_bin_t *cursor, mqtt_str_t *filter);
size_t mqtt_unsubscribe_encode(uint8_t *buf, size_t cap, uint8_t version, uint16_t packet_id,
                               const mqtt_props_t *props, const mqtt_str_t *filters,
                               size_t count);

/* SUBACK and UNSUBACK (type says which). codes[] are one per filter. */
typedef struct mqtt_suback {
    uint16_t packet_id;
    mqtt_props_t props;
    mqtt_bin_t codes; /* UNSUBACK below 5.0: empty */
} mqtt_suback_t;

int mqtt_suback_decode(uint8_t version, uint8_t type, const uint8_t *p, size_t n,
                       mqtt_suback_t *a, mqtt_error_t *err);
/* UNSUBACK below 5.0 carries no codes: count is ignored there. */
size_t mqtt_suback_encode(uint8_t *buf, size_t cap, uint8_t version, uint8_t type,
                          uint16_t packet_id, const mqtt_props_t *props, const uint8_t *codes,
                          size_t count);

/* ---- PINGREQ, PINGRESP, DISCONNECT, AUTH ------------------------------------------ */

/* PINGREQ and PINGRESP: the body must be empty. Also DISCONNECT below 5.0. */
int mqtt_empty_decode(const uint8_t *p, size_t n, mqtt_error_t *err);
/* PINGREQ, PINGRESP or a 3.x DISCONNECT: 2 bytes. */
size_t mqtt_empty_encode(uint8_t *buf, size_t cap, uint8_t type);

/* DISCONNECT (5.0: reason code and properties, both optional) and AUTH. */
typedef struct mqtt_reason_packet {
    uint8_t reason;
    mqtt_props_t props;
} mqtt_reason_packet_t;

int mqtt_disconnect_decode(uint8_t version, const uint8_t *p, size_t n,
                           mqtt_reason_packet_t *d, mqtt_error_t *err);
size_t mqtt_disconnect_encode(uint8_t *buf, size_t cap, uint8_t version, uint8_t reason,
                              const mqtt_props_t *props);
int mqtt_auth_decode(const uint8_t *p, size_t n, mqtt_reason_packet_t *a, mqtt_error_t *err);
size_t mqtt_auth_encode(uint8_t *buf, size_t cap, uint8_t reason, const mqtt_props_t *props);

/* ---- strings and topics --------------------------------------------------------- */

/* 0 when p[0..n) is well-formed UTF-8 as MQTT requires (MQTT-1.5.4-1..2): no overlong
 * forms, no surrogates U+D800..U+DFFF, nothing above U+10FFFF, no U+0000. -1 otherwise. */
int mqtt_utf8_check(const uint8_t *p, size_t n);

/* 0 when the topic name is valid for PUBLISH (non-empty, no '+' or '#'), else the
 * reason code 0x90. UTF-8 is checked separately. */
int mqtt_topic_name_check(const uint8_t *p, size_t n);

/* 0 when the topic filter is valid (non-empty; '#' only as the whole last level; '+' only
 * as a whole level; "$share/GROUP/FILTER" with a non-empty GROUP free of '+', '#' and '/'
 * and a valid non-empty FILTER), else the reason code 0x8F. */
int mqtt_topic_filter_check(const uint8_t *p, size_t n);

/* Split a shared subscription filter "$share/GROUP/FILTER". Returns 1 with *group and
 * *filter set, 0 when it is not a shared filter, -1 when it starts with "$share/" but is
 * malformed. */
int mqtt_share_split(const uint8_t *p, size_t n, mqtt_str_t *group, mqtt_str_t *filter);

/* True when topic name matches topic filter (not a shared one), including the rule that
 * a filter starting with a wildcard never matches a topic starting with '$'
 * (MQTT-4.7.2-1). */
bool mqtt_topic_match(const uint8_t *filter, size_t fn, const uint8_t *topic, size_t tn);

/* ---- property blocks and encoder limits ---------------------------------------- */

/* Every encoder returns the full size of what it would write and writes nothing when that
 * is more than cap, so a call with cap 0 sizes a buffer. An encoder returns 0 when the
 * packet cannot be encoded at all (remaining length above MQTT_VBI_MAX). Strings and
 * binary fields longer than 65535 bytes are cut to 65535. */

/* The context of the will properties of CONNECT for mqtt_props_decode; every other
 * context is the type of the packet that carries the block. */
#define MQTT_PROPS_WILL 0

/* Decode and validate the property block at p[0..n), starting at its variable byte
 * integer length, for context (a packet type or MQTT_PROPS_WILL, table of section
 * 2.2.2.2). Fills *pr (defaults as mqtt_props_init, `present` bits for what was there,
 * MQTT_PROP_USER_PROPERTY's bit too when there was one) and sets *used to the bytes taken,
 * length included. Fails with 0x81 on an identifier unknown or not allowed in the context,
 * a value running past the block or bad UTF-8; 0x82 on a duplicate (user properties may
 * repeat, subscription identifiers only in PUBLISH), a value out of range (0/1 flags,
 * maximum QoS above 1, receive maximum, maximum packet size or subscription identifier 0,
 * a response topic with wildcards, authentication data without a method); 0x94 on topic
 * alias 0. */
int mqtt_props_decode(uint8_t context, const uint8_t *p, size_t n, size_t *used,
                      mqtt_props_t *pr, mqtt_error_t *err);

/* Write the entries of *pr at out: mqtt_props_size(pr) bytes, no length prefix. The bit
 * of MQTT_PROP_USER_PROPERTY is ignored (user properties travel in `extra`). Returns the
 * bytes written. */
size_t mqtt_props_encode(uint8_t *out, const mqtt_props_t *pr);

/* ---- names, for logs and tools ------------------------------------------------- */

const char *mqtt_packet_name(uint8_t type);   /* "PUBLISH", or "RESERVED" */
const char *mqtt_reason_name(uint8_t reason); /* "Malformed Packet", or "Unknown" */

#endif
