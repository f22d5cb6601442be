/* broker.c - the broker as a whole: start-up, listeners, the session registry, routing,
 * and shutdown.
 *
 * Routing happens on the thread that read the PUBLISH: it matches the topic against the
 * shared subscription tree (a read lock, so every thread matches at once), merges the
 * matches per session, and delivers to sessions it owns directly; deliveries to sessions
 * owned by other threads are batched into their inboxes (worker.c).
 */
#include "broker.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "log.h"
#include "mqtt/mqtt.h"
#include "persist.h"

struct route_target {
    session_t *s; /* a reference, taken while the tree was locked */
    sub_opts_t o;
    bool shared;
    uint8_t nsub;
    uint32_t sub_ids[DELIVERY_MAX_SUB_IDS];
};

static bool session_is_online(void *owner)
{
    return atomic_load_explicit(&((session_t *)owner)->online, memory_order_relaxed);
}

/* ---- registry ---------------------------------------------------------------------- */

session_t *broker_find_session(broker_t *b, const char *id, size_t n)
{
    session_t *s = NULL;
    HASH_FIND(hh, b->registry, id, n, s);
    return s;
}

void broker_add_session(broker_t *b, session_t *s)
{
    HASH_ADD_KEYPTR(hh, b->registry, s->client_id, s->client_id_len, s);
    b->registry_count++;
}

void broker_remove_session(broker_t *b, session_t *s)
{
    session_t *cur = broker_find_session(b, s->client_id, s->client_id_len);
    if (cur == s) {
        HASH_DEL(b->registry, s);
        b->registry_count--;
    }
}

/* ---- routing ------------------------------------------------------------------------ */

typedef struct match_ctx {
    worker_t *w;
    const void *origin;
    bool oom;
} match_ctx_t;

static void on_match(void *ctx, void *owner, const sub_opts_t *opts, bool shared)
{
    match_ctx_t *m = ctx;
    worker_t *w = m->w;
    /* MQTT-3.8.3-3: no local applies to plain subscriptions of the publishing session. */
    if (opts->no_local && !shared && owner == m->origin)
        return;
    if (w->scratch_len == w->scratch_cap) {
        size_t ncap = w->scratch_cap ? w->scratch_cap * 2 : 64;
        struct route_target *n = realloc(w->scratch_v, ncap * sizeof(*n));
        if (!n) {
            m->oom = true;
            return;
        }
        w->scratch_v = n;
        w->scratch_cap = ncap;
    }
    struct route_target *t = &w->scratch_v[w->scratch_len++];
    t->s = session_ref(owner);
    t->o = *opts;
    t->shared = shared;
    t->nsub = opts->sub_id ? 1 : 0;
    t->sub_ids[0] = opts->sub_id;
}

static int cmp_target(const void *a, const void *b)
{
    const struct route_target *x = a, *y = b;
    if (x->s != y->s)
        return x->s < y->s ? -1 : 1;
    return (int)x->shared - (int)y->shared;
}

/* Checklist 30: overlapping subscriptions of one session give one copy, at the highest
 * granted QoS, carrying every matching subscription identifier (MQTT-3.3.4-3..5). */
static size_t merge_targets(struct route_target *v, size_t n)
{
    if (n < 2)
        return n;
    qsort(v, n, sizeof(*v), cmp_target);
    size_t out = 0;
    for (size_t i = 0; i < n; i++) {
        struct route_target *last = out ? &v[out - 1] : NULL;
        if (last && last->s == v[i].s && !last->shared && !v[i].shared) {
            if (v[i].o.qos > last->o.qos)
                last->o.qos = v[i].o.qos;
            last->o.retain_as_published |= v[i].o.retain_as_published;
            if (v[i].nsub && last->nsub < DELIVERY_MAX_SUB_IDS)
                last->sub_ids[last->nsub++] = v[i].sub_ids[0];
            session_unref(v[i].s);
            continue;
        }
        v[out++] = v[i];
    }
    return out;
}

size_t broker_route(worker_t *from, message_t *msg, session_t *publisher)
{
    broker_t *b = from->b;
    if (msg->retain && b->store)
        persist_retain(b, msg);
    if (msg->retain && retain_set(b->retain, msg) < 0)
        log_msg(LOG_ERR, "out of memory storing a retained message");
    match_ctx_t ctx = {.w = from, .origin = publisher};
    from->scratch_len = 0;
    topic_tree_match(b->tree, msg->topic, msg->topic_len, on_match, &ctx);
    if (ctx.oom)
        log_msg(LOG_ERR, "out of memory routing a message: some subscribers missed it");
    size_t n = merge_targets(from->scratch_v, from->scratch_len);
    for (size_t i = 0; i < n; i++) {
        struct route_target *t = &from->scratch_v[i];
        uint8_t qos = msg->qos < t->o.qos ? msg->qos : t->o.qos;
        bool retain = t->o.retain_as_published ? msg->retain : false;
        /* Durable persistence: a delivery to a stored session is queued for the store here,
         * before the publisher's acknowledgement, whichever thread owns the session. */
        uint64_t dlv_id = b->store ? persist_route_target(b, msg, t->s, qos, retain, t->sub_ids,
                                                          t->nsub)
                                   : 0;
        int owner = atomic_load(&t->s->owner);
        if (owner == from->index) {
            worker_deliver_stored(from, t->s, msg, qos, retain, t->sub_ids, t->nsub, dlv_id);
            session_unref(t->s);
        } else {
            inbox_item_t it = {.kind = INBOX_DELIVER,
                               .qos = qos,
                               .retain = retain,
                               .nsub = t->nsub,
                               .dlv_id = dlv_id,
                               .s = t->s,
                               .msg = message_ref(msg)};
            memcpy(it.sub_ids, t->sub_ids, sizeof(it.sub_ids));
            worker_post(from, owner, &it);
        }
    }
    from->scratch_len = 0;
    return n;
}

/* ---- start and stop ---------------------------------------------------------------- */

int broker_init(broker_t *b, const config_t *cfg)
{
    memset(b, 0, sizeof(*b));
    b->cfg = *cfg;
    b->start_ms = loop_wall_ms();
    pthread_mutex_init(&b->reg_lock, NULL);
    b->tree = topic_tree_new(session_is_online);
    b->retain = retain_new();
    if (!b->tree || !b->retain)
        return -1;
    int n = cfg->threads;
    if (n <= 0) {
        long cores = sysconf(_SC_NPROCESSORS_ONLN);
        n = cores > 0 ? (int)cores : 1;
    }
    if (n > 256)
        n = 256;
    b->nworkers = n;
    b->workers = calloc((size_t)n, sizeof(*b->workers));
    if (!b->workers)
        return -1;
    for (int i = 0; i < n; i++)
        if (worker_init(&b->workers[i], b, i) < 0)
            return -1;
    /* Restored before any listener opens: the first client finds its session. */
    if (cfg->persistence && persist_open(b) < 0)
        return -1;
    /* `listener PORT` without an address listens on every interface, IPv4 and IPv6, as in
     * Mosquitto; the default listener and -p carry 127.0.0.1 (config.c). */
    if (listeners_open(b) < 0)
        return -1;
    /* Worker 0 accepts and spreads connections round-robin over the workers. */
    for (int i = 0; i < b->nlisten; i++)
        if (loop_add(&b->workers[0].loop, b->listen_socks[i].fd, LOOP_READ,
                     &b->listen_socks[i]) < 0)
            return -1;
    log_msg(LOG_NOTICE, "midge version %s running with %d thread%s", MIDGE_VERSION, n,
            n == 1 ? "" : "s");
    return 0;
}

int broker_start(broker_t *b)
{
    if (b->store && persist_start(b) < 0)
        return -1;
    for (int i = 0; i < b->nworkers; i++) {
        if (worker_start(&b->workers[i]) != 0) {
            log_msg(LOG_ERR, "Error: cannot start thread %d", i);
            broker_stop(b);
            for (int k = 0; k < i; k++)
                pthread_join(b->workers[k].thread, NULL);
            return -1;
        }
        b->started++;
    }
    return 0;
}

void broker_join(broker_t *b)
{
    for (int i = 0; i < b->started; i++)
        pthread_join(b->workers[i].thread, NULL);
    b->started = 0;
}

void broker_stop(broker_t *b)
{
    atomic_store(&b->stopping, true);
    for (int i = 0; i < b->nworkers; i++)
        worker_wake(&b->workers[i]);
}

void broker_cleanup(broker_t *b)
{
    for (int i = 0; i < b->nlisten; i++)
        close(b->listen_socks[i].fd);
    b->nlisten = 0;
    if (b->workers) {
        /* Connections first: closing them sends sessions offline, on their owners. */
        for (int i = 0; i < b->nworkers; i++) {
            worker_t *w = &b->workers[i];
            while (w->conns)
                conn_close(w->conns, NULL); /* wills: worker_session_offline */
        }
        /* The sessions' last changes are committed; acknowledgements still coming back
         * land in the inboxes, released with them below. */
        if (b->store)
            persist_close(b);
        for (int i = 0; i < b->nworkers; i++)
            worker_cleanup(&b->workers[i]);
    }
    session_t *s, *tmp;
    HASH_ITER(hh, b->registry, s, tmp)
    {
        HASH_DEL(b->registry, s);
        session_reset(s, b->tree);
        session_unref(s);
    }
    free(b->workers);
    b->workers = NULL;
    listeners_close(b);
    if (b->tree)
        topic_tree_free(b->tree);
    if (b->retain)
        retain_free(b->retain);
    pthread_mutex_destroy(&b->reg_lock);
}
