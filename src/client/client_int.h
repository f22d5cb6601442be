/* client_int.h - the inside of a libmidge client, shared by the files of src/client.
 *
 * client.c owns the protocol state machine (CONNECT/CONNACK, QoS flows, keepalive,
 * reconnect, the outgoing queue); blocking.c adds the background thread and the blocking
 * calls on top of it. Nothing here is public.
 */
#ifndef MIDGE_CLIENT_INT_H
#define MIDGE_CLIENT_INT_H

#include <pthread.h>

#include "midge/midge.h"
#include "mqtt/codec.h"

enum client_state {
    ST_IDLE,           /* no connection, none planned */
    ST_CONNECTING,     /* transport open, CONNECT sent, waiting for CONNACK */
    ST_CONNECTED,      /* CONNACK accepted */
    ST_DISCONNECTING,  /* DISCONNECT queued: close once the output is flushed */
    ST_WAIT_RECONNECT, /* connection lost; reconnect at reconnect_at */
};

/* An outgoing PUBLISH, from midge_client_publish until it is acknowledged. */
enum { OM_QUEUED, OM_WAIT_ACK, OM_WAIT_COMP };
typedef struct out_msg {
    struct out_msg *next;
    uint16_t mid;
    uint8_t qos;
    uint8_t state;
    bool retain;
    bool sent_once; /* resend with DUP when the session survived */
    char *topic;
    size_t topic_len;
    uint8_t *payload;
    size_t len;
    uint8_t *props; /* encoded 5.0 property entries */
    size_t props_len;
} out_msg_t;

/* A blocking call waiting for the outcome of one packet. */
enum { W_PUB0, W_PUB, W_SUB, W_UNSUB };
typedef struct waiter {
    struct waiter *next;
    int kind;
    uint16_t mid;
    bool done;
    int status;
    uint8_t reason;
    uint8_t *codes; /* room for ncodes codes (SUB/UNSUB) */
    size_t ncodes;
} waiter_t;

typedef struct rx_msg {
    struct rx_msg *next;
    midge_message_t *m;
} rx_msg_t;

struct midge_client {
    midge_options_t o; /* strings below are owned copies */
    char *host, *client_id, *username, *will_topic, *assigned_id;
    uint8_t *password, *will_payload;
    uint8_t *connect_props, *will_props; /* encoded entries */
    size_t connect_props_len, will_props_len;
    const midge_transport_t *tr;
    midge_callbacks_t cb;
    void *ud;

    int state;
    void *conn;   /* transport connection, NULL when closed */
    unsigned gen; /* bumped at each close, so a loop notices a close in a callback */
    bool user_disconnect;
    bool refused;
    int64_t connect_started, last_send, ping_sent, reconnect_at;
    uint32_t backoff;
    unsigned rand_state;
    uint16_t keepalive; /* effective (server keep alive wins) */
    uint16_t server_recv_max;
    int connect_result; /* for connect_wait: 0 pending, 1 ok, <0 error */
    uint8_t connack_code;
    bool session_present;

    uint8_t *in;
    size_t in_len, in_cap;
    uint8_t *out;
    size_t out_len, out_off, out_cap;

    out_msg_t *q_head, *q_tail;
    size_t q_count;
    size_t inflight; /* QoS 1/2 messages sent and not acknowledged */
    uint16_t next_mid, next_local;
    uint8_t ids_used[8192]; /* outgoing packet ids in use */
    uint8_t qos2_in[8192];  /* inbound QoS 2 ids between PUBREC and PUBREL */
    uint16_t *q0_done;      /* QoS 0 ids written to out, reported once flushed */
    size_t q0_n, q0_cap;

    char **aliases;         /* inbound topic aliases, 1..topic_alias_maximum */
    char *aliases_out[65];  /* outbound: aliases_out[a] is the topic of alias a */
    uint16_t alias_out_max; /* of this connection: min(broker's maximum, 64) */

    rx_msg_t *rx_head, *rx_tail;
    size_t rx_count, rx_dropped;
    waiter_t *waiters;

    /* background thread */
    pthread_mutex_t lock; /* recursive: held by every public call */
    pthread_cond_t cond;  /* broadcast after each step of the background thread */
    pthread_t thread;
    bool thread_running, thread_stop;
    int wake[2];
};

void client_lock(midge_client_t *c);
void client_unlock(midge_client_t *c);
/* Wake the background thread after queueing work (no-op without one). */
void client_wake(midge_client_t *c);
int64_t client_now(midge_client_t *c);
int client_step_locked(midge_client_t *c, int timeout_ms);
int client_connect_locked(midge_client_t *c);
int client_publish_locked(midge_client_t *c, const char *topic, const void *payload, size_t len,
                          int qos, bool retain, const midge_props_t *props, uint16_t *mid);
int client_subscribe_locked(midge_client_t *c, const midge_subscription_t *subs, size_t n,
                            uint32_t sub_id, uint16_t *mid);
int client_unsubscribe_locked(midge_client_t *c, const char *const *filters, size_t n,
                              uint16_t *mid);
int client_disconnect_locked(midge_client_t *c, uint8_t reason);
void client_close(midge_client_t *c);

#endif
