/* session.h - an MQTT session: what outlives a network connection.
 *
 * Subscriptions, the outbound in-flight window and queue (QoS 1/2, resent with DUP on
 * reconnect), inbound QoS 2 packet ids awaiting PUBREL, the will and the expiry clock.
 * A session is owned by one I/O thread at a time (`owner`): only that thread touches its
 * state. Deliveries from other threads reach it through the owner's inbox (worker.h), and
 * on takeover by a connection on another thread the session is handed over (conn.c).
 */
#ifndef MIDGE_SESSION_H
#define MIDGE_SESSION_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <uthash.h>

#include "message.h"
#include "topic_tree.h"

struct conn;
struct worker;

#define SESSION_NEVER_EXPIRES UINT32_MAX
#define DELIVERY_MAX_SUB_IDS 4

enum delivery_state {
    DLV_QUEUED = 0,
    DLV_WAIT_PUBACK,  /* QoS 1 sent */
    DLV_WAIT_PUBREC,  /* QoS 2 sent */
    DLV_WAIT_PUBCOMP, /* QoS 2, PUBREL sent */
};

/* One message on its way to one session. */
typedef struct delivery {
    struct delivery *next;
    message_t *msg; /* a reference of its own */
    uint8_t qos;
    bool retain;
    uint8_t state;
    uint8_t nsub;
    bool held; /* QoS 2, durable: sent once its packet id is committed (conn.c) */
    uint16_t pid;
    uint32_t sub_ids[DELIVERY_MAX_SUB_IDS];
    uint64_t store_id; /* its row in the persistence file; 0 none (persist.c) */
} delivery_t;

typedef struct subscription {
    UT_hash_handle hh;
    sub_opts_t opts;
    uint16_t group_len; /* > 0 for $share/GROUP/...: key is "GROUP/FILTER" then */
    uint16_t filter_len;
    size_t key_len;
    char key[]; /* the filter as subscribed ("$share/g/f" for shared) */
} subscription_t;

typedef struct session {
    atomic_uint refs;
    atomic_int owner;   /* index of the worker that owns the session */
    atomic_bool online; /* has a connection (read by shared-subscription matching) */
    /* In the persistence file (expiry > 0): deliveries to it are stored by the routing
     * thread, before the publisher's acknowledgement (persist.c). Written by the owner. */
    atomic_bool stored;
    UT_hash_handle hh;  /* the registry (broker.c), under its lock */
    int takeover_pending; /* under the registry lock */
    struct session *wnext, *wprev; /* the owner's list */
    struct conn *conn;             /* NULL while offline */
    bool ended;
    uint8_t version;
    uint32_t expiry;          /* seconds after disconnection; SESSION_NEVER_EXPIRES */
    int64_t offline_since_ms; /* monotonic */
    subscription_t *subs;
    uint32_t sub_count;
    delivery_t *inflight_head, *inflight_tail;
    uint32_t inflight_count;
    delivery_t *queue_head, *queue_tail;
    uint32_t queued_count;
    uint64_t queued_bytes;
    uint16_t next_pid;
    uint16_t *rx_qos2; /* inbound QoS 2 packet ids received, PUBREL not yet */
    uint32_t rx_qos2_count, rx_qos2_cap;
    char *username;  /* of the current or last connection (ACL checks on delivery); NULL */
    int listener;    /* the listener it came through (whose ACL applies) */
    message_t *will; /* will of the current or last connection */
    uint8_t will_qos;
    bool will_retain;
    uint32_t will_delay;
    int64_t will_at_ms; /* 0: not scheduled */
    size_t client_id_len;
    char client_id[]; /* NUL-terminated for logs */
} session_t;

session_t *session_new(const char *client_id, size_t len, int owner);
static inline session_t *session_ref(session_t *s)
{
    atomic_fetch_add_explicit(&s->refs, 1, memory_order_relaxed);
    return s;
}
void session_unref(session_t *s);

/* Drop subscriptions (from the tree too), queued and in-flight messages, QoS 2 state. */
void session_reset(session_t *s, topic_tree_t *tree);

/* Inbound QoS 2 packet ids awaiting PUBREL. */
bool session_rx_qos2_has(const session_t *s, uint16_t pid);
int session_rx_qos2_add(session_t *s, uint16_t pid);
bool session_rx_qos2_remove(session_t *s, uint16_t pid);

/* Outbound: a free packet id not used by an in-flight message. */
uint16_t session_next_pid(session_t *s);
/* Remove the in-flight delivery with pid in state (returns it, or NULL). */
delivery_t *session_inflight_take(session_t *s, uint16_t pid, uint8_t state);
delivery_t *session_inflight_find(session_t *s, uint16_t pid);
void session_inflight_append(session_t *s, delivery_t *d);
void session_queue_append(session_t *s, delivery_t *d);
delivery_t *session_queue_pop(session_t *s);
void delivery_free(delivery_t *d);

subscription_t *session_sub_find(session_t *s, const uint8_t *key, size_t n);
/* Remove sub (one of s's subscriptions) from the tree; the session keeps it. */
void session_sub_untree(session_t *s, const subscription_t *sub, topic_tree_t *tree);

#endif
