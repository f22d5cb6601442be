/* broker.h - the broker as a whole: configuration, the shared structures (subscription
 * tree, retained store, session registry), the I/O threads, and start/stop. */
#ifndef MIDGE_BROKER_H
#define MIDGE_BROKER_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "conf/config.h"
#include "listener.h"
#include "retain.h"
#include "session.h"
#include "topic_tree.h"
#include "worker.h"

#define BROKER_MAX_LISTEN_FDS 32

typedef struct broker {
    config_t cfg;
    topic_tree_t *tree;
    retain_store_t *retain;
    pthread_mutex_t reg_lock;
    session_t *registry; /* client id -> session, under reg_lock */
    uint32_t registry_count;
    worker_t *workers;
    int nworkers;
    int started; /* threads running */
    listener_t listener[CONFIG_MAX_LISTENERS]; /* one per cfg.listeners[] */
    listen_socket_t listen_socks[BROKER_MAX_LISTEN_FDS];
    int nlisten;
    atomic_uint reload_gen; /* bumped by listeners_reload; see worker.seen_gen */
    atomic_bool stopping;
    atomic_uint next_worker;
    atomic_uint sockets; /* open client sockets, for max_connections */
    atomic_uint clients_connected;
    atomic_uint clients_maximum;
    atomic_uint_fast64_t assigned_ids;
    int64_t start_ms;
    struct store *store; /* persistence true: the SQLite store (persist.c); else NULL */
    item_vec_t *stored_acks; /* store thread: a commit's acknowledgements, per worker */
} broker_t;

int broker_init(broker_t *b, const config_t *cfg);
/* Start the I/O threads; broker_stop asks them to finish, broker_join waits for them. */
int broker_start(broker_t *b);
void broker_stop(broker_t *b);
void broker_join(broker_t *b);
void broker_cleanup(broker_t *b);

/* The registry, under reg_lock. */
session_t *broker_find_session(broker_t *b, const char *id, size_t n);
void broker_add_session(broker_t *b, session_t *s);
void broker_remove_session(broker_t *b, session_t *s);

/* Route a message from `from` (this worker) to every matching subscriber and store it
 * when retained. publisher may be NULL ($SYS, wills of ended sessions). Returns the number
 * of sessions it went to. */
size_t broker_route(worker_t *from, message_t *msg, session_t *publisher);

/* Publish the $SYS topics (worker 0, every sys_interval). */
void sys_publish(worker_t *w);

#endif
