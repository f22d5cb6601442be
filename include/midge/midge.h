/* midge.h - libmidge, the MQTT 3.1.1 / 5.0 client library of Midge: the public API.
 *
 * One opaque handle (midge_client_t) per connection to a broker. Three ways to drive it:
 * from the application's own event loop (midge_client_fd, midge_client_read/write/misc or
 * midge_client_step), from a background thread (midge_client_start), or with the small
 * blocking API (midge_client_connect_wait, midge_client_publish_wait, ...). The bytes on
 * the wire are produced by Midge's codec (src/mqtt), the socket by a transport
 * (include/midge/transport.h; plain TCP by default).
 */
#ifndef MIDGE_MIDGE_H
#define MIDGE_MIDGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "midge/transport.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Status codes: every function that can fail returns 0 or one of these. */
enum {
    MIDGE_OK = 0,
    MIDGE_EINVAL = -1,   /* bad argument (empty topic, QoS 3, wildcard in a topic name...) */
    MIDGE_ENOMEM = -2,   /* out of memory */
    MIDGE_ECONN = -3,    /* could not connect, or the connection was lost */
    MIDGE_ETIMEOUT = -4, /* a blocking call ran out of time */
    MIDGE_EREFUSED = -5, /* the broker refused: see the reason code given with it */
    MIDGE_EPROTO = -6,   /* the broker broke the protocol */
    MIDGE_EFULL = -7,    /* the offline queue or the receive queue is full */
    MIDGE_ESTATE = -8,   /* not allowed in this state (already connected, thread running...) */
    MIDGE_ESYS = -9,     /* a system call failed (errno says which) */
};

/* A static, human-readable text for a status code. */
MIDGE_API const char *midge_strerror(int status);

/* The name of an MQTT 5.0 reason code ("Not authorized"), or "Unknown". */
MIDGE_API const char *midge_reason_name(uint8_t reason);

/* The name of an MQTT 3.1.1 CONNACK return code ("Connection Refused: not authorised"). */
MIDGE_API const char *midge_connack_v3_name(uint8_t code);

/* True when topic name `topic` matches topic filter `filter` ('+', '#', and a leading
 * wildcard never matching a topic that starts with '$'). */
MIDGE_API bool midge_topic_matches(const char *filter, const char *topic);

/* True when s is a valid topic name (PUBLISH) / topic filter (SUBSCRIBE): non-empty UTF-8,
 * no wildcard in a name, wildcards only as whole levels ('#' last) in a filter. */
MIDGE_API bool midge_topic_name_valid(const char *s);
MIDGE_API bool midge_topic_filter_valid(const char *s);

/* Protocol versions as carried in CONNECT. */
/* 3.1 ("MQIsdp") is for old brokers: the broker cannot assign a client id, so without one
 * libmidge makes one ("midge-" and 16 hex digits; a persistent session needs one of yours),
 * and CONNACK carries no session-present flag. */
enum { MIDGE_MQTT_V31 = 3, MIDGE_MQTT_V311 = 4, MIDGE_MQTT_V5 = 5 };

/* ---- properties (MQTT 5.0; ignored on 3.1.1) ------------------------------------- */

typedef struct midge_user_prop {
    const char *name; /* NUL-terminated UTF-8 */
    const char *value;
} midge_user_prop_t;

/* The MQTT 5.0 properties the API carries. Outbound (publish, will): fill what is wanted,
 * leave the rest zeroed (midge_props_init). Inbound (a received message, a CONNACK): the
 * pointers are valid during the callback only (midge_message_t from midge_client_receive
 * owns them until midge_message_free). */
/* MQTT 5.0 property identifiers of a message (section 2.2.2.2), for midge_props_t.order. */
enum {
    MIDGE_PROP_PAYLOAD_FORMAT = 0x01,
    MIDGE_PROP_MESSAGE_EXPIRY = 0x02,
    MIDGE_PROP_CONTENT_TYPE = 0x03,
    MIDGE_PROP_RESPONSE_TOPIC = 0x08,
    MIDGE_PROP_CORRELATION_DATA = 0x09,
    MIDGE_PROP_SUBSCRIPTION_ID = 0x0B,
    MIDGE_PROP_USER_PROPERTY = 0x26,
};

typedef struct midge_props {
    const midge_user_prop_t *user; /* user properties, in order */
    size_t user_count;
    const char *content_type;   /* NULL: absent */
    const char *response_topic; /* NULL: absent */
    const uint8_t *correlation; /* NULL: absent */
    size_t correlation_len;
    bool has_message_expiry;
    uint32_t message_expiry;
    int payload_format;      /* -1: absent, else 0 (bytes) or 1 (UTF-8) */
    const uint32_t *sub_ids; /* inbound PUBLISH: the subscription identifiers */
    size_t sub_id_count;
    const char *reason_string;      /* inbound acks, CONNACK, DISCONNECT: NULL when absent */
    const char *assigned_client_id; /* inbound CONNACK */
    /* Inbound PUBLISH: the MIDGE_PROP_ identifiers of the properties above, in the order
     * each first appears on the wire (mosquitto_sub's %j prints them in that order). */
    uint8_t order[8];
    size_t order_count;
} midge_props_t;

/* Zero *p and mark payload_format absent. */
MIDGE_API void midge_props_init(midge_props_t *p);

/* ---- options ---------------------------------------------------------------------- */

/* Options of a client, a plain value copied by midge_client_new (strings included). */
typedef struct midge_options {
    const char *host;             /* default "localhost" */
    uint16_t port;                /* default 1883 */
    int version;                  /* MIDGE_MQTT_V31, MIDGE_MQTT_V311 or MIDGE_MQTT_V5 (default) */
    const char *client_id;        /* NULL or "": the broker assigns one (needs clean_start);
                                   * 3.1: libmidge makes one (see MIDGE_MQTT_V31) */
    const char *username;         /* NULL: none */
    const char *password;         /* NULL: none */
    size_t password_len;          /* 0: strlen(password) */
    uint16_t keepalive;           /* seconds, default 60; 0 turns keepalive off */
    bool clean_start;             /* default true */
    uint32_t session_expiry;      /* 5.0: seconds the session outlives the connection */
    uint16_t receive_maximum;     /* 5.0: 0 leaves the default (65535) */
    uint16_t topic_alias_maximum; /* 5.0: aliases the broker may use towards us (inbound) */
    /* 5.0: send topic aliases for repeated topics (outbound), up to the broker's Topic Alias
     * Maximum and at most 64; the first PUBLISH of a topic carries topic and alias, later
     * ones the alias alone. Off by default. */
    bool topic_aliases_out;
    /* Will: sent when will_topic is not NULL. */
    const char *will_topic;
    const uint8_t *will_payload;
    size_t will_payload_len;
    int will_qos;
    bool will_retain;
    const midge_props_t *will_props;    /* 5.0: NULL for none */
    uint32_t will_delay;                /* 5.0: will delay interval, seconds */
    const midge_props_t *connect_props; /* 5.0: user properties of CONNECT; NULL for none */
    /* Automatic reconnect after a lost connection: exponential backoff from
     * reconnect_min_ms doubling up to reconnect_max_ms, each delay drawn uniformly from
     * its upper half (jitter). Off by default. */
    bool reconnect;
    uint32_t reconnect_min_ms;   /* default 500 */
    uint32_t reconnect_max_ms;   /* default 30000 */
    uint32_t connect_timeout_ms; /* TCP connect and CONNACK wait; default 10000 */
    /* Bound of the outgoing queue: messages not yet sent (offline) plus QoS 1/2 messages
     * in flight. midge_client_publish returns MIDGE_EFULL beyond it. Default 1000. */
    size_t max_queued;
    /* Messages kept for midge_client_receive when no on_message callback is set.
     * Default 1000; messages arriving beyond it are dropped (they were acknowledged). */
    size_t max_received;
    uint32_t max_packet_size; /* largest packet accepted from the broker; default 16 MiB */
    /* The transport; NULL: plain TCP (midge_transport_tcp). Not owned: it must outlive
     * the client. */
    const midge_transport_t *transport;
} midge_options_t;

/* Fill *o with the defaults. */
MIDGE_API void midge_options_init(midge_options_t *o);

/* ---- messages and callbacks ------------------------------------------------------- */

typedef struct midge_message {
    const char *topic; /* NUL-terminated */
    size_t topic_len;
    const uint8_t *payload; /* followed by a NUL byte, for convenience */
    size_t payload_len;
    int qos;
    bool retain;
    bool dup;
    uint16_t packet_id; /* 0 at QoS 0 */
    midge_props_t props;
} midge_message_t;

typedef struct midge_client midge_client_t;

/* Callbacks run on the thread that drives the client (the caller of read/write/misc/step,
 * or the background thread). They may call the non-blocking API of the same client but
 * must not call its blocking functions. Pointers they receive are valid during the call. */
typedef struct midge_callbacks {
    /* CONNACK received: reason is the 3.1.1 return code or the 5.0 reason code (0: ok).
     * After an automatic reconnect without session_present the broker has forgotten the
     * subscriptions: subscribe again here (a client that always subscribes here is right
     * in every case). */
    void (*on_connect)(midge_client_t *c, void *ud, uint8_t reason, bool session_present,
                       const midge_props_t *props);
    /* The connection is gone: reason is the 5.0 DISCONNECT reason from the broker, 0 when
     * we closed it, or MIDGE_DISCONNECT_LOST (0x100) when the socket failed. */
    void (*on_disconnect)(midge_client_t *c, void *ud, int reason);
    /* A message arrived. Without this callback, messages go to midge_client_receive. */
    void (*on_message)(midge_client_t *c, void *ud, const midge_message_t *m);
    /* A QoS 1/2 publish is complete (PUBACK, or PUBCOMP; PUBREC with a failure code), or a
     * QoS 0 publish was written to the socket. reason: the broker's reason code. */
    void (*on_publish)(midge_client_t *c, void *ud, uint16_t mid, uint8_t reason);
    /* SUBACK/UNSUBACK: one code per filter, in order (UNSUBACK on 3.1.1: count is 0). */
    void (*on_subscribe)(midge_client_t *c, void *ud, uint16_t mid, const uint8_t *codes,
                         size_t count);
    void (*on_unsubscribe)(midge_client_t *c, void *ud, uint16_t mid, const uint8_t *codes,
                           size_t count);
} midge_callbacks_t;

#define MIDGE_DISCONNECT_LOST 0x100

/* ---- life cycle ------------------------------------------------------------------- */

/* Create a client with a copy of *opts (NULL: defaults). Nothing is connected yet. */
MIDGE_API int midge_client_new(const midge_options_t *opts, midge_client_t **out);

/* Stop the background thread if it runs, close the connection without DISCONNECT (the
 * will is published), free everything. NULL is ignored. */
MIDGE_API void midge_client_free(midge_client_t *c);

/* Set the callbacks (copied) and the user data handed to them. */
MIDGE_API void midge_client_set_callbacks(midge_client_t *c, const midge_callbacks_t *cb, void *ud);

/* ---- asynchronous API ------------------------------------------------------------- */

/* Open the transport and send CONNECT; the CONNACK arrives later (on_connect). The
 * transport connect itself waits at most connect_timeout_ms. With reconnect on, a failure
 * here schedules a retry and still returns the error. */
MIDGE_API int midge_client_connect(midge_client_t *c);

/* Send DISCONNECT with the 5.0 reason (0: normal, 0x04: with will) once the output is
 * flushed, then close. Turns automatic reconnect off. */
MIDGE_API int midge_client_disconnect(midge_client_t *c, uint8_t reason);

/* Queue a PUBLISH. topic must be a valid topic name, qos 0..2. While not connected the
 * message waits in the offline queue (bounded by max_queued) and goes out, in order, on
 * the next connection. *mid (may be NULL) receives the packet id (QoS 1/2) or a local
 * id (QoS 0) that on_publish reports. props may be NULL. */
MIDGE_API int midge_client_publish(midge_client_t *c, const char *topic, const void *payload,
                                   size_t len, int qos, bool retain, const midge_props_t *props,
                                   uint16_t *mid);

/* One filter of a SUBSCRIBE. */
typedef struct midge_subscription {
    const char *filter;
    int qos;
    bool no_local;            /* 5.0 */
    bool retain_as_published; /* 5.0 */
    int retain_handling;      /* 5.0: 0 send retained, 1 only on new subscription, 2 never */
} midge_subscription_t;

/* Send a SUBSCRIBE for subs[0..n) (needs a connection). sub_id: 5.0 subscription
 * identifier, 0 for none. on_subscribe reports the granted codes. */
MIDGE_API int midge_client_subscribe(midge_client_t *c, const midge_subscription_t *subs, size_t n,
                                     uint32_t sub_id, uint16_t *mid);

/* Send an UNSUBSCRIBE for filters[0..n). */
MIDGE_API int midge_client_unsubscribe(midge_client_t *c, const char *const *filters, size_t n,
                                       uint16_t *mid);

/* The socket to watch, or -1 when not connected (also when the transport has no fd). */
MIDGE_API int midge_client_fd(midge_client_t *c);

/* True when output is waiting: watch the fd for writability too. */
MIDGE_API bool midge_client_want_write(midge_client_t *c);

/* Read what the socket has and handle every whole packet (callbacks run here). */
MIDGE_API int midge_client_read(midge_client_t *c);

/* Write queued output. */
MIDGE_API int midge_client_write(midge_client_t *c);

/* Timers: keepalive PINGREQ, ping timeout, connect timeout, reconnect; also reads input a
 * TLS or WebSocket transport has already decoded (see transport.h, pending). Call at least
 * every midge_client_next_timeout_ms() milliseconds. */
MIDGE_API int midge_client_misc(midge_client_t *c);

/* Milliseconds until midge_client_misc next has something to do (-1: nothing planned; 0
 * while decoded input waits in the transport). */
MIDGE_API int midge_client_next_timeout_ms(midge_client_t *c);

/* All of the above once: wait up to timeout_ms for the socket (poll), then read, write
 * and misc. Returns 0, or an error from a step (a lost connection is not an error when
 * reconnect is on). */
MIDGE_API int midge_client_step(midge_client_t *c, int timeout_ms);

/* True once CONNACK accepted the connection and until it is lost. */
MIDGE_API bool midge_client_is_connected(midge_client_t *c);

/* Messages waiting to be sent or acknowledged (the outgoing queue). */
MIDGE_API size_t midge_client_pending(midge_client_t *c);

/* ---- background thread -------------------------------------------------------------- */

/* Run the client on a thread of its own (calling midge_client_step in a loop). Every
 * function of this header may then be called from any thread; callbacks run on the
 * background thread. */
MIDGE_API int midge_client_start(midge_client_t *c);

/* Stop and join the background thread (the connection stays as it is). */
MIDGE_API int midge_client_stop(midge_client_t *c);

/* ---- blocking API ---------------------------------------------------------------- */

/* Each of these drives the client itself (or waits for the background thread) until the
 * outcome is known or timeout_ms passes (MIDGE_ETIMEOUT). Never from a callback. */

/* Connect and wait for CONNACK. MIDGE_EREFUSED when refused; *reason (may be NULL)
 * receives the CONNACK code. */
MIDGE_API int midge_client_connect_wait(midge_client_t *c, int timeout_ms, uint8_t *reason);

/* Publish and wait for the acknowledgement (QoS 1: PUBACK, QoS 2: PUBCOMP; QoS 0: until
 * written). *reason (may be NULL) receives the broker's reason code; a code >= 0x80 is
 * returned as MIDGE_EREFUSED. */
MIDGE_API int midge_client_publish_wait(midge_client_t *c, const char *topic, const void *payload,
                                        size_t len, int qos, bool retain,
                                        const midge_props_t *props, int timeout_ms,
                                        uint8_t *reason);

/* Subscribe and wait for SUBACK; codes (may be NULL) receives n codes. */
MIDGE_API int midge_client_subscribe_wait(midge_client_t *c, const midge_subscription_t *subs,
                                          size_t n, uint32_t sub_id, int timeout_ms,
                                          uint8_t *codes);

/* Unsubscribe and wait for UNSUBACK; codes (may be NULL, 5.0 only) receives n codes. */
MIDGE_API int midge_client_unsubscribe_wait(midge_client_t *c, const char *const *filters, size_t n,
                                            int timeout_ms, uint8_t *codes);

/* Wait for the next message (only when no on_message callback is set). *out is owned by
 * the caller: free it with midge_message_free. */
MIDGE_API int midge_client_receive(midge_client_t *c, int timeout_ms, midge_message_t **out);

/* Send DISCONNECT and wait until it is written (at most timeout_ms), then close. */
MIDGE_API int midge_client_disconnect_wait(midge_client_t *c, uint8_t reason, int timeout_ms);

/* Free a message returned by midge_client_receive. NULL is ignored. */
MIDGE_API void midge_message_free(midge_message_t *m);

#ifdef __cplusplus
}
#endif

#endif
