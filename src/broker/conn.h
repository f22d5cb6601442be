/* conn.h - one client's network connection and its MQTT state machine.
 *
 * Bytes in -> framer -> decoder (src/mqtt) -> the handler of each packet type; packets out
 * are encoded into the connection's output queue and flushed once per loop turn. A
 * connection belongs to one worker for its whole life.
 */
#ifndef MIDGE_CONN_H
#define MIDGE_CONN_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "mqtt/codec.h"
#include "net/outq.h"
#include "net/xport.h"
#include "session.h"

struct worker;

/* Above this much unsent output, QoS 0 messages to the client are dropped (and counted):
 * a slow subscriber must not make the broker buffer without bound. */
#define CONN_QOS0_OUT_LIMIT (8u << 20)

enum conn_state {
    CONN_NEW = 0,      /* waiting for CONNECT */
    CONN_WAIT_SESSION, /* CONNECT accepted, session being handed over by another thread */
    CONN_ACTIVE,
    CONN_CLOSED,
};

/* What a CONNECT asked for, kept while the session is fetched. */
typedef struct conn_connect {
    bool clean_start;
    bool client_id_assigned;
    bool keepalive_changed;
    bool request_response_info;
    uint32_t expiry;
    message_t *will;
    uint8_t will_qos;
    bool will_retain;
    uint32_t will_delay;
} conn_connect_t;

typedef struct alias_entry alias_entry_t;

enum handler_kind { HANDLER_CONN = 1, HANDLER_WAKE, HANDLER_LISTEN };

typedef struct conn {
    int kind; /* HANDLER_CONN: first, as in every struct the event loop hands back */
    int fd;
    struct worker *w;
    atomic_uint refs;
    uint8_t state;
    uint8_t version;
    bool closing;        /* close after the output is flushed */
    bool want_write;     /* registered for writability */
    uint8_t events;      /* the LOOP_ events registered now: unchanged sets cost no syscall */
    bool dirty;          /* on the worker's flush list */
    bool normal_disconnect;
    bool paused;         /* reading stopped: other threads are behind (worker.c) */
    bool read_full;      /* the last read filled its whole budget: more is waiting */
    bool problem_info;   /* 5.0 request problem information */
    uint16_t keepalive;  /* seconds, as granted */
    uint16_t client_receive_max;
    uint16_t client_alias_max;
    uint16_t next_out_alias;
    uint32_t client_max_packet; /* 0: no limit */
    uint32_t session_expiry_at_connect;
    int64_t created_ms, last_rx_ms;
    uint8_t *in;
    size_t in_len, in_cap;
    outq_t out;
    struct conn *next, *prev; /* the worker's connections */
    struct conn *dirty_next;
    session_t *s;
    conn_connect_t cc;
    uint16_t alias_in_max; /* topic alias maximum we granted */
    mqtt_str_t *alias_in;  /* alias -> topic (owned copies), 1..alias_in_max */
    alias_entry_t *alias_out; /* topic -> alias we told the client */
    char peer[64];   /* "host:port" of the client (from a PROXY header or X-Forwarded-For
                      * when the listener trusts them) */
    int listener;    /* index of the listener that accepted it */
    xport_t *xp;     /* TLS/WebSocket layers; NULL for plain MQTT over TCP */
    xbuf_t raw;      /* a PROXY header being received */
    uint8_t proxy;   /* the PROXY header still to come: its version (1, 2), 0 none */
    char *username;  /* NUL-terminated, NULL when anonymous */
    char *client_id; /* NUL-terminated */
    size_t client_id_len;
    uint32_t acks_waiting; /* acknowledgements waiting for a commit (persist.c) */
} conn_t;

/* A connection accepted on listener `listener` (its index in the broker's listeners). */
conn_t *conn_new(struct worker *w, int fd, const char *peer, int listener);
static inline conn_t *conn_ref(conn_t *c)
{
    atomic_fetch_add_explicit(&c->refs, 1, memory_order_relaxed);
    return c;
}
void conn_unref(conn_t *c);

/* Readable: read a bounded amount and handle every complete packet in it. */
void conn_on_readable(conn_t *c);
/* Tell the loop which events the connection waits for now (read unless paused or
 * waiting for its session; write while output is pending). */
void conn_update_events(conn_t *c);
/* Write what is queued; called once per loop turn for connections with output. */
void conn_flush(conn_t *c);
/* Close now: session goes offline (will handling, expiry). reason is for the log. */
void conn_close(conn_t *c, const char *reason);
/* 5.0: send DISCONNECT with rc first (when allowed), then close. */
void conn_disconnect(conn_t *c, uint8_t rc, const char *why);
/* Once a second: keepalive and connect timeout. */
void conn_check_timers(conn_t *c, int64_t now_ms);

/* Send one delivery (PUBLISH, DUP on resend). false when it cannot be sent to this client:
 * expired, or larger than its maximum packet size (dropped and counted, MQTT-3.1.2-25). */
bool conn_send_delivery(conn_t *c, delivery_t *d, bool dup);

/* The session handed over by another thread (or found locally) is ready for c. */
void conn_attach_session(conn_t *c, session_t *s, bool existed);

/* An acknowledgement waiting for the store's commit (durable persistence). The store
 * thread marks it failed when the commit failed; the connection's worker then sends it
 * (or, failed, the refusal) with conn_stored_ack_complete, which frees it. */
typedef struct stored_ack stored_ack_t;
int stored_ack_worker(const stored_ack_t *a);
/* Durable mode, a stored QoS 2 delivery just given its packet id (state queued for the
 * store): hold the PUBLISH until that commits, so that after a crash it is resent under
 * the same id and the receiver can tell it is a resend. true: held (sent later); false:
 * send it now. */
bool conn_hold_until_stored(conn_t *c, delivery_t *d);
void stored_ack_fail(stored_ack_t *a);
void conn_stored_ack_complete(stored_ack_t *a);
void stored_ack_free(stored_ack_t *a);

#endif
