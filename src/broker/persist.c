/* persist.c - what the broker stores, restores and waits for (see persist.h).
 *
 * Durable mode, in short: the thread that routes a QoS 1/2 PUBLISH queues the message and
 * its deliveries to stored sessions, then a store_ack for the PUBACK/PUBREC; the store
 * thread commits them in one transaction with everything else queued meanwhile and hands
 * the acknowledgement back to the connection's worker (INBOX_STORED). A connection with an
 * acknowledgement waiting sends every later one the same way, so they stay in order.
 */
#include "persist.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker.h"
#include "log.h"
#include "mqtt/mqtt.h"
#include "net/loop.h"
#include "store/store.h"

static _Thread_local bool touched;

void persist_touch_reset(void)
{
    touched = false;
}

bool persist_touched(void)
{
    return touched;
}

void persist_flush(broker_t *b)
{
    store_flush(b->store);
}

bool persist_durable(const broker_t *b)
{
    return b->store && !store_is_periodic(b->store);
}

/* ---- messages and deliveries --------------------------------------------------------- */

uint64_t persist_msg(broker_t *b, message_t *m)
{
    uint_fast64_t id = atomic_load_explicit(&m->store_id, memory_order_acquire);
    if (id)
        return id;
    uint_fast64_t nid = store_new_id(b->store);
    /* Another thread may store the same message at the same time (a retained message
     * sent to two new subscribers): one row, whoever comes first. */
    if (!atomic_compare_exchange_strong(&m->store_id, &id, nid))
        return id;
    store_msg_row_t r = {.id = nid,
                         .topic = m->topic,
                         .topic_len = m->topic_len,
                         .props = m->props,
                         .props_len = m->props_len,
                         .payload = m->payload,
                         .payload_len = m->payload_len,
                         .qos = m->qos,
                         .retain = m->retain,
                         .has_expiry = m->has_expiry,
                         .expire_at_ms = m->expire_at_ms};
    store_msg_put(b->store, &r);
    touched = true;
    return nid;
}

static uint64_t store_delivery(broker_t *b, session_t *s, message_t *m, uint8_t qos, bool retain,
                               const uint32_t *sub_ids, uint8_t nsub)
{
    store_delivery_row_t r = {.id = store_new_id(b->store),
                              .client_id = s->client_id,
                              .client_id_len = s->client_id_len,
                              .msg_id = persist_msg(b, m),
                              .qos = qos,
                              .retain = retain,
                              .nsub = nsub};
    for (uint8_t i = 0; i < nsub && i < STORE_MAX_SUB_IDS; i++)
        r.sub_ids[i] = sub_ids[i];
    if (store_delivery_put(b->store, &r) < 0)
        return 0;
    touched = true;
    return r.id;
}

uint64_t persist_route_target(broker_t *b, message_t *m, session_t *s, uint8_t qos, bool retain,
                              const uint32_t *sub_ids, uint8_t nsub)
{
    /* s belongs to another thread: only its atomic `stored` flag is read here (the client
     * id never changes). */
    if (qos == 0 || !atomic_load_explicit(&s->stored, memory_order_acquire))
        return 0;
    return store_delivery(b, s, m, qos, retain, sub_ids, nsub);
}

void persist_delivery_kept(broker_t *b, session_t *s, delivery_t *d)
{
    if (d->store_id || d->qos == 0 || !atomic_load_explicit(&s->stored, memory_order_relaxed))
        return;
    d->store_id = store_delivery(b, s, d->msg, d->qos, d->retain, d->sub_ids, d->nsub);
}

void persist_delivery_state(broker_t *b, const delivery_t *d)
{
    /* Only QoS 2 needs its packet id back after a crash: a QoS 1 message is simply sent
     * again under a new id, a QoS 2 one must keep its id so the receiver knows it. */
    if (!d->store_id || d->qos != 2)
        return;
    store_delivery_state(b->store, d->store_id, d->state, d->pid);
    touched = true;
}

void persist_delivery_drop(broker_t *b, uint64_t id, message_t *m)
{
    if (!id)
        return;
    store_delivery_del(b->store, id, atomic_load_explicit(&m->store_id, memory_order_relaxed));
    touched = true;
}

void persist_retain(broker_t *b, message_t *m)
{
    /* $SYS topics are the broker's own, published afresh every sys_interval. */
    if (m->topic_len >= 5 && memcmp(m->topic, "$SYS/", 5) == 0)
        return;
    if (m->payload_len == 0)
        store_retain_del(b->store, m->topic, m->topic_len);
    else
        store_retain_set(b->store, m->topic, m->topic_len, persist_msg(b, m));
    touched = true;
}

/* ---- sessions and subscriptions ------------------------------------------------------ */

void persist_session(broker_t *b, session_t *s, bool fresh)
{
    bool stored = atomic_load_explicit(&s->stored, memory_order_relaxed);
    if (fresh && stored)
        store_session_del(b->store, s->client_id, s->client_id_len);
    if (s->expiry == 0) {
        /* Not kept (it ends with its connection): out of the file, if it was there. */
        if (stored && !fresh)
            store_session_del(b->store, s->client_id, s->client_id_len);
        atomic_store_explicit(&s->stored, false, memory_order_release);
        touched |= stored;
        return;
    }
    store_session_row_t r = {.client_id = s->client_id,
                             .client_id_len = s->client_id_len,
                             .version = s->version,
                             .expiry = s->expiry,
                             .offline_at_ms = s->conn ? 0 : loop_wall_ms(),
                             .username = s->username,
                             .listener = (uint16_t)s->listener,
                             .will_msg = s->will ? persist_msg(b, s->will) : 0,
                             .will_qos = s->will_qos,
                             .will_retain = s->will_retain,
                             .will_delay = s->will_delay};
    store_session_put(b->store, &r);
    atomic_store_explicit(&s->stored, true, memory_order_release);
    touched = true;
}

void persist_session_end(broker_t *b, session_t *s)
{
    if (!atomic_load_explicit(&s->stored, memory_order_relaxed))
        return;
    store_session_del(b->store, s->client_id, s->client_id_len);
    store_flush(b->store);
    atomic_store_explicit(&s->stored, false, memory_order_release);
    touched = true;
}

void persist_sub_put(broker_t *b, session_t *s, const subscription_t *sub)
{
    if (!atomic_load_explicit(&s->stored, memory_order_relaxed))
        return;
    store_sub_row_t r = {.client_id = s->client_id,
                         .client_id_len = s->client_id_len,
                         .filter = (const uint8_t *)sub->key,
                         .filter_len = sub->key_len,
                         .qos = sub->opts.qos,
                         .no_local = sub->opts.no_local,
                         .retain_as_published = sub->opts.retain_as_published,
                         .retain_handling = sub->opts.retain_handling,
                         .sub_id = sub->opts.sub_id};
    store_sub_put(b->store, &r);
    touched = true;
}

void persist_sub_del(broker_t *b, session_t *s, const uint8_t *key, size_t len)
{
    if (!atomic_load_explicit(&s->stored, memory_order_relaxed))
        return;
    store_sub_del(b->store, s->client_id, s->client_id_len, key, len);
    touched = true;
}

void persist_rx_qos2(broker_t *b, session_t *s, uint16_t pid, bool add)
{
    if (!atomic_load_explicit(&s->stored, memory_order_relaxed))
        return;
    if (add)
        store_rx_qos2_put(b->store, s->client_id, s->client_id_len, pid);
    else
        store_rx_qos2_del(b->store, s->client_id, s->client_id_len, pid);
    touched = true;
}

int persist_ack(broker_t *b, stored_ack_t *a)
{
    return store_ack(b->store, a);
}

/* ---- restore ------------------------------------------------------------------------- */

typedef struct restored_msg {
    UT_hash_handle hh;
    uint64_t id;
    message_t *m;
} restored_msg_t;

typedef struct restore_ctx {
    broker_t *b;
    restored_msg_t *msgs;
    int next_owner;
    int64_t alive_ms, wall_now, mono_now;
    size_t sessions, subs, deliveries, retained;
} restore_ctx_t;

static message_t *find_msg(restore_ctx_t *rc, uint64_t id)
{
    restored_msg_t *e = NULL;
    HASH_FIND(hh, rc->msgs, &id, sizeof(id), e);
    return e ? e->m : NULL;
}

static int on_msg(void *ctx, const store_msg_row_t *r)
{
    restore_ctx_t *rc = ctx;
    restored_msg_t *e = malloc(sizeof(*e));
    message_t *m =
        message_new(r->topic, r->topic_len, r->props, r->props_len, r->payload, r->payload_len);
    if (!e || !m) {
        free(e);
        message_unref(m);
        log_msg(LOG_ERR, "Error: out of memory restoring the persistence file");
        return -1;
    }
    m->qos = r->qos;
    m->retain = r->retain;
    m->has_expiry = r->has_expiry;
    m->expire_at_ms = r->expire_at_ms;
    atomic_store(&m->store_id, r->id);
    e->id = r->id;
    e->m = m;
    HASH_ADD(hh, rc->msgs, id, sizeof(e->id), e);
    return 0;
}

static int on_retained(void *ctx, uint64_t msg_id)
{
    restore_ctx_t *rc = ctx;
    message_t *m = find_msg(rc, msg_id);
    if (!m)
        return 0; /* left behind by a crash; nothing to restore */
    if (retain_set(rc->b->retain, m) < 0)
        return -1;
    rc->retained++;
    return 0;
}

/* Offline since when, on this run's monotonic clock: the downtime counts. A session that
 * was online when the broker stopped lost its connection at the last commit. */
static int64_t offline_since(const restore_ctx_t *rc, int64_t offline_at_ms)
{
    int64_t at = offline_at_ms ? offline_at_ms : rc->alive_ms ? rc->alive_ms : rc->wall_now;
    int64_t gone = rc->wall_now - at;
    if (gone < 0)
        gone = 0;
    return rc->mono_now - gone;
}

static int on_session(void *ctx, const store_session_row_t *r)
{
    restore_ctx_t *rc = ctx;
    broker_t *b = rc->b;
    int owner = rc->next_owner++ % b->nworkers;
    session_t *s = session_new(r->client_id, r->client_id_len, owner);
    if (!s)
        return -1;
    s->version = r->version;
    s->expiry = r->expiry;
    s->offline_since_ms = offline_since(rc, r->offline_at_ms);
    /* The configuration may have fewer listeners now: the first one's rules then. */
    s->listener = r->listener < b->cfg.listener_count ? r->listener : 0;
    if (r->username && !(s->username = strdup(r->username))) {
        session_unref(s);
        return -1;
    }
    message_t *will = r->will_msg ? find_msg(rc, r->will_msg) : NULL;
    if (will) {
        s->will = message_ref(will);
        s->will_qos = r->will_qos;
        s->will_retain = r->will_retain;
        s->will_delay = r->will_delay;
        /* Its connection is gone: the will goes out after its delay (tick, worker.c). */
        uint32_t delay = s->will_delay < s->expiry ? s->will_delay : s->expiry;
        s->will_at_ms = s->offline_since_ms + (int64_t)delay * 1000;
        if (s->will_at_ms == 0)
            s->will_at_ms = 1;
    }
    atomic_store(&s->stored, true);
    broker_add_session(b, s); /* the registry's reference */
    worker_add_session(&b->workers[owner], s);
    rc->sessions++;
    return 0;
}

static session_t *find_session(restore_ctx_t *rc, const char *id, size_t n)
{
    return broker_find_session(rc->b, id, n);
}

static int on_sub(void *ctx, const store_sub_row_t *r)
{
    restore_ctx_t *rc = ctx;
    session_t *s = find_session(rc, r->client_id, r->client_id_len);
    if (!s || r->filter_len > UINT16_MAX)
        return 0;
    mqtt_str_t group = {0}, filter = {r->filter, (uint32_t)r->filter_len};
    int shared = mqtt_share_split(r->filter, r->filter_len, &group, &filter);
    if (shared < 0 || mqtt_topic_filter_check(filter.p, filter.n) != 0) {
        log_msg(LOG_WARN, "Warning: persistence file: client %s: bad filter %.*s skipped",
                s->client_id, (int)r->filter_len, (const char *)r->filter);
        return 0;
    }
    sub_opts_t o = {.qos = r->qos,
                    .no_local = r->no_local,
                    .retain_as_published = r->retain_as_published,
                    .retain_handling = r->retain_handling,
                    .sub_id = r->sub_id};
    subscription_t *ns = calloc(1, sizeof(*ns) + r->filter_len + 1);
    if (!ns)
        return -1;
    if (topic_tree_subscribe(rc->b->tree, filter.p, filter.n, shared ? group.p : NULL,
                             shared ? group.n : 0, s, &o) < 0) {
        free(ns);
        return -1;
    }
    ns->opts = o;
    ns->group_len = shared ? (uint16_t)group.n : 0;
    ns->filter_len = (uint16_t)filter.n;
    ns->key_len = r->filter_len;
    memcpy(ns->key, r->filter, r->filter_len);
    HASH_ADD_KEYPTR(hh, s->subs, ns->key, ns->key_len, ns);
    s->sub_count++;
    rc->subs++;
    return 0;
}

static int on_delivery(void *ctx, const store_delivery_row_t *r)
{
    restore_ctx_t *rc = ctx;
    session_t *s = find_session(rc, r->client_id, r->client_id_len);
    message_t *m = find_msg(rc, r->msg_id);
    if (!s || !m || r->qos == 0 || r->qos > 2)
        return 0;
    delivery_t *d = calloc(1, sizeof(*d));
    if (!d)
        return -1;
    d->msg = message_ref(m);
    d->qos = r->qos;
    d->retain = r->retain;
    d->store_id = r->id;
    d->nsub = r->nsub > DELIVERY_MAX_SUB_IDS ? DELIVERY_MAX_SUB_IDS : r->nsub;
    memcpy(d->sub_ids, r->sub_ids, d->nsub * sizeof(uint32_t));
    if (r->qos == 2 && r->pid && (r->state == DLV_WAIT_PUBREC || r->state == DLV_WAIT_PUBCOMP)) {
        /* In flight under its packet id: resent (PUBLISH with DUP, or PUBREL) on reconnect. */
        d->state = r->state;
        d->pid = r->pid;
        session_inflight_append(s, d);
    } else {
        session_queue_append(s, d);
    }
    rc->deliveries++;
    return 0;
}

static int on_rx_qos2(void *ctx, const char *client_id, size_t len, uint16_t pid)
{
    restore_ctx_t *rc = ctx;
    session_t *s = find_session(rc, client_id, len);
    if (!s || session_rx_qos2_has(s, pid))
        return 0;
    return session_rx_qos2_add(s, pid);
}

/* Sessions that expired while the broker was down end now, before any client can find
 * one (their wills go out, as at any session end). Nothing runs on the workers yet. */
static void end_expired_sessions(broker_t *b, int64_t now)
{
    session_t *s, *tmp;
    HASH_ITER(hh, b->registry, s, tmp)
    {
        if (s->expiry != SESSION_NEVER_EXPIRES &&
            now - s->offline_since_ms >= (int64_t)s->expiry * 1000) {
            log_msg(LOG_INFO, "Client %s: session expired while the broker was down", s->client_id);
            worker_session_end(&b->workers[atomic_load(&s->owner)], s);
        }
    }
}

static int db_path(const config_t *cfg, char *out, size_t outlen)
{
    const char *dir = cfg->persistence_location;
    size_t n = strlen(dir);
    int r = n == 0 ? snprintf(out, outlen, "%s", cfg->persistence_file)
                   : snprintf(out, outlen, "%s%s%s", dir, dir[n - 1] == '/' ? "" : "/",
                              cfg->persistence_file);
    return r < 0 || (size_t)r >= outlen ? -1 : 0;
}

int persist_open(broker_t *b)
{
    char path[CONFIG_PATH_MAX + 300], err[CONFIG_PATH_MAX + 600];
    if (db_path(&b->cfg, path, sizeof(path)) < 0) {
        log_msg(LOG_ERR, "Error: persistence_location + persistence_file: path too long");
        return -1;
    }
    store_options_t o = {.path = path,
                         .periodic = b->cfg.persistence_mode == CONFIG_PERSIST_PERIODIC,
                         .autosave_interval = b->cfg.autosave_interval,
                         .sync_full = b->cfg.persistence_sync == CONFIG_SYNC_FULL};
    if (store_open(&o, &b->store, err, sizeof(err)) < 0) {
        log_msg(LOG_ERR, "Error: %s", err);
        return -1;
    }
    static const store_restore_ops_t ops = {.msg = on_msg,
                                            .retained = on_retained,
                                            .session = on_session,
                                            .sub = on_sub,
                                            .delivery = on_delivery,
                                            .rx_qos2 = on_rx_qos2};
    restore_ctx_t rc = {.b = b, .wall_now = loop_wall_ms(), .mono_now = loop_now_ms()};
    int r = store_restore(b->store, &ops, &rc, &rc.alive_ms);
    restored_msg_t *e, *tmp;
    HASH_ITER(hh, rc.msgs, e, tmp)
    {
        HASH_DEL(rc.msgs, e);
        message_unref(e->m);
        free(e);
    }
    if (r < 0) {
        log_msg(LOG_ERR, "Error: persistence file %s could not be restored", path);
        return -1;
    }
    end_expired_sessions(b, rc.mono_now);
    store_release(b->store);
    log_msg(LOG_NOTICE,
            "persistence file %s: %zu retained messages, %zu sessions, %zu subscriptions, "
            "%zu queued or in-flight messages restored (%s mode)",
            path, rc.retained, rc.sessions, rc.subs, rc.deliveries,
            o.periodic ? "periodic" : "durable");
    return 0;
}

/* Store thread: the commit is done; each acknowledgement goes back to its connection's
 * worker, which sends it (in the order the acknowledgements were queued). One lock and at
 * most one wake-up per worker per commit. */
static void on_stored(void *arg, void *const *tokens, size_t n, int status)
{
    broker_t *b = arg;
    for (size_t i = 0; i < n; i++) {
        stored_ack_t *a = tokens[i];
        if (status < 0)
            stored_ack_fail(a);
        inbox_item_t it = {.kind = INBOX_STORED, .ack = a};
        int w = stored_ack_worker(a);
        if (item_vec_push(&b->stored_acks[w], &it) < 0) { /* no memory: alone, in order */
            worker_post_many(&b->workers[w], &b->stored_acks[w]);
            worker_post_now(&b->workers[w], &it);
        }
    }
    for (int w = 0; w < b->nworkers; w++)
        if (b->stored_acks[w].len)
            worker_post_many(&b->workers[w], &b->stored_acks[w]);
}

int persist_start(broker_t *b)
{
    b->stored_acks = calloc((size_t)b->nworkers, sizeof(*b->stored_acks));
    if (!b->stored_acks || store_start(b->store, on_stored, b) < 0) {
        log_msg(LOG_ERR, "Error: cannot start the persistence thread");
        return -1;
    }
    return 0;
}

void persist_close(broker_t *b)
{
    store_close(b->store);
    b->store = NULL;
    if (b->stored_acks) {
        for (int w = 0; w < b->nworkers; w++)
            free(b->stored_acks[w].v);
        free(b->stored_acks);
        b->stored_acks = NULL;
    }
}
