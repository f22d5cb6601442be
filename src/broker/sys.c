/* sys.c - the $SYS/broker tree: statistics published as retained messages every
 * sys_interval seconds, under Mosquitto's topic names where Mosquitto has one.
 * Only worker 0 calls sys_publish, so the load averages below need no lock. */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "broker.h"
#include "log.h"

typedef struct sys_load {
    double msgs_rx[3], msgs_tx[3], bytes_rx[3], bytes_tx[3], conns[3];
    uint64_t last_msgs_rx, last_msgs_tx, last_bytes_rx, last_bytes_tx, last_conns;
    int64_t last_ms;
} sys_load_t;

static sys_load_t load; /* worker 0 only */

static void pub(worker_t *w, const char *topic, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void pub(worker_t *w, const char *topic, const char *fmt, ...)
{
    char val[128];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(val, sizeof(val), fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    if ((size_t)n >= sizeof(val))
        n = sizeof(val) - 1;
    message_t *m = message_new((const uint8_t *)topic, strlen(topic), NULL, 0,
                               (const uint8_t *)val, (size_t)n);
    if (!m)
        return;
    m->qos = 0;
    m->retain = true;
    broker_route(w, m, NULL);
    message_unref(m);
}

static void update(double avg[3], double rate, double secs)
{
    static const double windows[3] = {60, 300, 900};
    for (int i = 0; i < 3; i++) {
        double e = exp(-secs / windows[i]);
        avg[i] = avg[i] * e + rate * (1 - e);
    }
}

static void pub_load(worker_t *w, const char *what, const double avg[3])
{
    static const char *names[3] = {"1min", "5min", "15min"};
    char topic[96];
    for (int i = 0; i < 3; i++) {
        snprintf(topic, sizeof(topic), "$SYS/broker/load/%s/%s", what, names[i]);
        pub(w, topic, "%.2f", avg[i] * 60.0); /* per minute, as Mosquitto reports */
    }
}

void sys_publish(worker_t *w)
{
    broker_t *b = w->b;
    uint64_t mrx = 0, mtx = 0, brx = 0, btx = 0, dropped = 0, perr = 0, conns = 0, paused = 0;
    for (int i = 0; i < b->nworkers; i++) {
        worker_stats_t *st = &b->workers[i].stats;
        mrx += atomic_load_explicit(&st->msgs_received, memory_order_relaxed);
        mtx += atomic_load_explicit(&st->msgs_sent, memory_order_relaxed);
        brx += atomic_load_explicit(&st->bytes_received, memory_order_relaxed);
        btx += atomic_load_explicit(&st->bytes_sent, memory_order_relaxed);
        dropped += atomic_load_explicit(&st->msgs_dropped, memory_order_relaxed);
        perr += atomic_load_explicit(&st->protocol_errors, memory_order_relaxed);
        conns += atomic_load_explicit(&st->connections, memory_order_relaxed);
        paused += atomic_load_explicit(&st->paused, memory_order_relaxed);
    }
    int64_t now = loop_wall_ms();
    if (load.last_ms) {
        double secs = (double)(now - load.last_ms) / 1000.0;
        if (secs > 0) {
            update(load.msgs_rx, (double)(mrx - load.last_msgs_rx) / secs, secs);
            update(load.msgs_tx, (double)(mtx - load.last_msgs_tx) / secs, secs);
            update(load.bytes_rx, (double)(brx - load.last_bytes_rx) / secs, secs);
            update(load.bytes_tx, (double)(btx - load.last_bytes_tx) / secs, secs);
            update(load.conns, (double)(conns - load.last_conns) / secs, secs);
        }
    }
    load.last_ms = now;
    load.last_msgs_rx = mrx;
    load.last_msgs_tx = mtx;
    load.last_bytes_rx = brx;
    load.last_bytes_tx = btx;
    load.last_conns = conns;

    pthread_mutex_lock(&b->reg_lock);
    unsigned total = b->registry_count;
    pthread_mutex_unlock(&b->reg_lock);
    unsigned connected = atomic_load(&b->clients_connected);

    pub(w, "$SYS/broker/version", "midge version %s", MIDGE_VERSION);
    pub(w, "$SYS/broker/uptime", "%lld seconds", (long long)((now - b->start_ms) / 1000));
    pub(w, "$SYS/broker/threads", "%d", b->nworkers);
    pub(w, "$SYS/broker/clients/connected", "%u", connected);
    pub(w, "$SYS/broker/clients/total", "%u", total > connected ? total : connected);
    pub(w, "$SYS/broker/clients/disconnected", "%u", total > connected ? total - connected : 0);
    pub(w, "$SYS/broker/clients/maximum", "%u", atomic_load(&b->clients_maximum));
    pub(w, "$SYS/broker/messages/received", "%llu", (unsigned long long)mrx);
    pub(w, "$SYS/broker/messages/sent", "%llu", (unsigned long long)mtx);
    pub(w, "$SYS/broker/publish/messages/received", "%llu", (unsigned long long)mrx);
    pub(w, "$SYS/broker/publish/messages/sent", "%llu", (unsigned long long)mtx);
    pub(w, "$SYS/broker/publish/messages/dropped", "%llu", (unsigned long long)dropped);
    pub(w, "$SYS/broker/bytes/received", "%llu", (unsigned long long)brx);
    pub(w, "$SYS/broker/bytes/sent", "%llu", (unsigned long long)btx);
    pub(w, "$SYS/broker/subscriptions/count", "%zu", topic_tree_count(b->tree));
    pub(w, "$SYS/broker/protocol_errors", "%llu", (unsigned long long)perr);
    /* Midge's own: times a flooding connection was not read because a thread's backlog
     * of cross-thread deliveries was too long (worker.c, "Backpressure"). */
    pub(w, "$SYS/broker/backpressure/paused", "%llu", (unsigned long long)paused);
    pub_load(w, "messages/received", load.msgs_rx);
    pub_load(w, "messages/sent", load.msgs_tx);
    pub_load(w, "bytes/received", load.bytes_rx);
    pub_load(w, "bytes/sent", load.bytes_tx);
    pub_load(w, "connections", load.conns);
    /* Last, so that it counts the ones above. */
    pub(w, "$SYS/broker/retained messages/count", "%zu", retain_count(b->retain));
}
