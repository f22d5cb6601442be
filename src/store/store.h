/* store.h - durable state on SQLite: retained messages, sessions, subscriptions, queued and
 * in-flight messages, inbound QoS 2 ids.
 *
 * One database file (WAL), one thread of its own. The I/O threads never touch SQLite: they
 * append events (store_*_put/_del, any thread, a short mutex) and the store thread applies
 * everything queued in one transaction (group commit). store_ack marks a point in the
 * queue: once the transaction holding every event queued before it has committed (or
 * failed), the done callback gets the token on the store thread, in queue order.
 * At start-up, before any thread runs, store_restore reads everything back.
 *
 * The store knows nothing of the broker's types: rows are plain values (store_*_row_t).
 */
#ifndef MIDGE_STORE_H
#define MIDGE_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define STORE_SCHEMA_VERSION 1
#define STORE_APPLICATION_ID 0x4d444745 /* "MDGE" in the file header (PRAGMA application_id) */
#define STORE_MAX_SUB_IDS 4

typedef struct store store_t;

typedef struct store_options {
    const char *path;
    bool periodic;              /* commit every autosave_interval seconds, not at once */
    uint32_t autosave_interval; /* seconds (periodic) */
    bool sync_full;             /* PRAGMA synchronous=FULL (else NORMAL) */
} store_options_t;

typedef struct store_msg_row {
    uint64_t id;
    const uint8_t *topic;
    size_t topic_len;
    const uint8_t *props; /* MQTT 5 properties forwarded as they came */
    size_t props_len;
    const uint8_t *payload;
    size_t payload_len;
    uint8_t qos;
    bool retain;
    bool has_expiry;
    int64_t expire_at_ms; /* wall clock */
} store_msg_row_t;

typedef struct store_session_row {
    const char *client_id;
    size_t client_id_len;
    uint8_t version;
    uint32_t expiry;
    int64_t offline_at_ms; /* wall clock when it went offline; 0 while online */
    const char *username;  /* NULL: anonymous */
    uint16_t listener;     /* index of the listener it came through (whose ACL applies) */
    uint64_t will_msg;     /* 0: no will */
    uint8_t will_qos;
    bool will_retain;
    uint32_t will_delay;
} store_session_row_t;

typedef struct store_sub_row {
    const char *client_id;
    size_t client_id_len;
    const uint8_t *filter; /* as subscribed, "$share/GROUP/FILTER" included */
    size_t filter_len;
    uint8_t qos;
    bool no_local, retain_as_published;
    uint8_t retain_handling;
    uint32_t sub_id;
} store_sub_row_t;

typedef struct store_delivery_row {
    uint64_t id; /* store_new_id; the order of a session's queue */
    const char *client_id;
    size_t client_id_len;
    uint64_t msg_id;
    uint8_t qos;
    bool retain;
    uint8_t state; /* the broker's delivery state (0 queued) */
    uint16_t pid;
    uint8_t nsub;
    uint32_t sub_ids[STORE_MAX_SUB_IDS];
} store_delivery_row_t;

/* Runs on the store thread after each commit with the tokens of the store_ack calls the
 * transaction covered, in queue order: status 0, or -1 when it failed (disk full, I/O
 * error: logged by the store). Once per transaction, so that the receiver can hand the
 * acknowledgements on in one go. */
typedef void (*store_done_fn)(void *arg, void *const *tokens, size_t n, int status);

/* Open (or create) the database at o->path and check it is Midge's: a file that is not an
 * SQLite database, is corrupt, belongs to another application or to a newer schema is
 * refused with a message in err naming the file and the problem, and is left unchanged.
 * An older schema is migrated. Returns 0 or -1. */
int store_open(const store_options_t *o, store_t **out, char *err, size_t errlen);

/* Reading everything back at start-up (before store_start). Each callback returns 0, or -1
 * to stop with an error. Deliveries come in queue order (by id). */
typedef struct store_restore_ops {
    int (*msg)(void *ctx, const store_msg_row_t *r);
    int (*retained)(void *ctx, uint64_t msg_id);
    int (*session)(void *ctx, const store_session_row_t *r);
    int (*sub)(void *ctx, const store_sub_row_t *r);
    int (*delivery)(void *ctx, const store_delivery_row_t *r);
    int (*rx_qos2)(void *ctx, const char *client_id, size_t len, uint16_t pid);
} store_restore_ops_t;

/* alive_ms: the wall-clock time of the last commit (the broker was running until about
 * then), 0 for a new file. */
int store_restore(store_t *st, const store_restore_ops_t *ops, void *ctx, int64_t *alive_ms);

/* Close the start-up connection (after store_restore); store_start opens the thread's own.
 * Between the two the process may fork (daemon): SQLite's locks do not follow a fork. */
void store_release(store_t *st);

/* Start the store thread; done gets the tokens of store_ack. Returns 0, or -1 (logged). */
int store_start(store_t *st, store_done_fn done, void *arg);
/* Commit what is queued, stop the thread, close the database, free st. NULL is allowed. */
void store_close(store_t *st);

/* A new id for a message or a delivery (any thread). Ids grow: a session's deliveries
 * sorted by id are in the order they were queued. */
uint64_t store_new_id(store_t *st);

/* Events (any thread; each copies what it needs). They return 0, or -1 when out of memory
 * (the event is lost; logged). A thread's events wait in a list of its own until it calls
 * store_flush (an I/O thread: once per loop turn, before it hands anything to another
 * thread, so that a change another thread makes because of it is queued after it). */
int store_msg_put(store_t *st, const store_msg_row_t *r);
int store_retain_set(store_t *st, const uint8_t *topic, size_t topic_len, uint64_t msg_id);
int store_retain_del(store_t *st, const uint8_t *topic, size_t topic_len);
int store_session_put(store_t *st, const store_session_row_t *r);
/* The session, its subscriptions, deliveries and QoS 2 ids. */
int store_session_del(store_t *st, const char *client_id, size_t len);
int store_sub_put(store_t *st, const store_sub_row_t *r);
int store_sub_del(store_t *st, const char *client_id, size_t len, const uint8_t *filter,
                  size_t filter_len);
int store_delivery_put(store_t *st, const store_delivery_row_t *r);
int store_delivery_state(store_t *st, uint64_t id, uint8_t state, uint16_t pid);
/* msg_id: the message is deleted too when nothing refers to it any more. */
int store_delivery_del(store_t *st, uint64_t id, uint64_t msg_id);
int store_rx_qos2_put(store_t *st, const char *client_id, size_t len, uint16_t pid);
int store_rx_qos2_del(store_t *st, const char *client_id, size_t len, uint16_t pid);
/* done(token) once everything queued before has committed. -1: not queued (no memory). */
int store_ack(store_t *st, void *token);
/* Hand this thread's events to the store thread, in order. */
void store_flush(store_t *st);

/* Periodic mode? (acknowledgements then do not wait) */
bool store_is_periodic(const store_t *st);

#endif
