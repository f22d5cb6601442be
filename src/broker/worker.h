/* worker.h - an I/O thread: its event loop, its connections and sessions, its inbox.
 *
 * Every connection and session belongs to one worker. Other threads reach them only
 * through the worker's inbox: a mutex-protected array that they append to in batches,
 * waking the worker once per batch through an eventfd; the worker drains it in bounded
 * batches each loop turn.
 */
#ifndef MIDGE_WORKER_H
#define MIDGE_WORKER_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "conn.h"
#include "net/loop.h"
#include "session.h"

struct broker;

enum inbox_kind {
    INBOX_NEWCONN = 1, /* fd accepted by the listening thread */
    INBOX_DELIVER,     /* msg to session s */
    INBOX_TAKEOVER,    /* hand session s over to connection conn (on another thread) */
    INBOX_READY,       /* session s handed over to this thread for conn */
    INBOX_STORED,      /* ack: committed by the store, send it now (persist.c) */
};

typedef struct inbox_item {
    uint8_t kind;
    uint8_t qos;
    bool retain;
    bool existed; /* INBOX_READY: the session carries on from before */
    uint8_t nsub;
    int fd;
    uint32_t expiry; /* INBOX_READY: the session's expiry before the takeover */
    session_t *s; /* a reference */
    message_t *msg; /* a reference */
    conn_t *conn;   /* a reference */
    uint32_t sub_ids[DELIVERY_MAX_SUB_IDS];
    int listener; /* INBOX_NEWCONN: index of the listener that accepted fd */
    uint64_t dlv_id;   /* INBOX_DELIVER: the delivery's row in the store, 0 none */
    stored_ack_t *ack; /* INBOX_STORED: owned by the item */
    char peer[64];
} inbox_item_t;

typedef struct item_vec {
    inbox_item_t *v;
    size_t len, cap;
} item_vec_t;

/* Counters, written by the owning worker only, read by $SYS with relaxed loads. */
typedef struct worker_stats {
    atomic_uint_fast64_t msgs_received, msgs_sent, bytes_received, bytes_sent;
    atomic_uint_fast64_t msgs_dropped, protocol_errors, connections;
    atomic_uint_fast64_t paused; /* reads paused for backpressure (a connection, a time) */
} worker_stats_t;

/* Bytes read from one socket per loop turn: its fair share, and the size of the worker's
 * shared read buffer. */
#define WORKER_READ_BUF 65536

typedef struct worker {
    int kind; /* HANDLER_WAKE: the eventfd's handler is the worker itself */
    int index;
    struct broker *b;
    pthread_t thread;
    /* Held by the worker for its whole loop turn, released only while it waits for events.
     * Everything the worker owns (connections, sessions, its batches) is touched only by
     * the holder: normally the worker itself, and, while it is idle, another worker that
     * hands it deliveries by running them itself (push_outgoing) instead of waking it. */
    pthread_mutex_t run_lock;
    loop_t loop;
    int efd;
    pthread_mutex_t inbox_lock;
    item_vec_t inbox;   /* under inbox_lock */
    bool inbox_woken;   /* under inbox_lock: eventfd written, not yet drained */
    item_vec_t pending; /* drained, not yet handled (bounded batches) */
    size_t pending_pos;
    item_vec_t *outgoing; /* per target worker, pushed at the end of the turn */
    conn_t *conns;
    uint32_t nconns;
    session_t *sessions;
    conn_t *dirty;
    uint8_t *rbuf; /* WORKER_READ_BUF bytes: every read lands here first (conn.c) */
    /* Backpressure: items waiting in this worker's inbox and pending batch (any thread
     * adds, the owner subtracts), and this worker's connections paused because some
     * worker's backlog is too long. */
    atomic_size_t backlog;
    atomic_uint seen_gen; /* the broker's reload_gen at the start of this turn */
    conn_t **paused;
    size_t npaused, paused_cap;
    conn_t **retired; /* closed this turn, released at its end */
    size_t nretired, retired_cap;
    int64_t next_tick_ms;
    int64_t next_sys_ms;
    struct route_target *scratch_v; /* broker_route's match results */
    size_t scratch_len, scratch_cap;
    worker_stats_t stats;
} worker_t;

int worker_init(worker_t *w, struct broker *b, int index);
void worker_cleanup(worker_t *w);
int worker_start(worker_t *w);
void worker_wake(worker_t *w);

/* Queue an item for worker `target` (possibly this one): pushed at the end of the turn. */
int worker_post(worker_t *from, int target, const inbox_item_t *item);
/* Push an item straight into target's inbox (any thread). */
int worker_post_now(worker_t *target, const inbox_item_t *item);
/* Append an item to v (growing it). -1 when out of memory. */
int item_vec_push(item_vec_t *v, const inbox_item_t *it);
/* Move v's items into target's inbox under one lock, with at most one wake-up (any
 * thread). v is left empty. */
void worker_post_many(worker_t *target, item_vec_t *v);

/* Release a closed connection at the end of the turn. */
void worker_retire_conn(worker_t *w, conn_t *c);

/* This worker owns s; connection c (on this or another worker) takes it over: the old
 * connection, if any, is closed (5.0: DISCONNECT 0x8E) and the session goes to c's worker.
 * via_inbox: the request came as INBOX_TAKEOVER (takeover_pending was counted). */
void worker_take_session(worker_t *w, session_t *s, conn_t *c, bool via_inbox);

/* Mark a connection as having output to flush at the end of the turn. */
void worker_mark_dirty(worker_t *w, conn_t *c);

void worker_add_session(worker_t *w, session_t *s);
void worker_remove_session(worker_t *w, session_t *s);

/* Deliver msg to s, which this worker owns: send, or keep in the session. */
void worker_deliver(worker_t *w, session_t *s, message_t *msg, uint8_t qos, bool retain,
                    const uint32_t *sub_ids, uint8_t nsub);
/* The same for a delivery the routing thread already stored as row dlv_id (persist.c). */
void worker_deliver_stored(worker_t *w, session_t *s, message_t *msg, uint8_t qos, bool retain,
                           const uint32_t *sub_ids, uint8_t nsub, uint64_t dlv_id);
/* Move queued messages of an online session into its in-flight window. */
void worker_pump(worker_t *w, session_t *s);
/* The session's connection went away: wills, expiry. */
void worker_session_offline(worker_t *w, session_t *s, bool send_will);
/* End the session: no longer in the registry, the tree, or this worker. */
void worker_session_end(worker_t *w, session_t *s);
/* Publish the session's will now (and forget it). */
void worker_publish_will(worker_t *w, session_t *s);

#endif
