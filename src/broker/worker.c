/* worker.c - an I/O thread: event loop turn, inbox, deliveries, session life cycle.
 *
 * One loop turn: wait for readiness; read a bounded amount from each ready connection and
 * handle its packets (which may route messages to other threads: those are batched per
 * target thread); drain a bounded batch of the inbox; push the batches to the other
 * threads, waking each at most once; flush every connection that has output with one
 * writev each; then the timers. Nothing waits for more work to batch: a lone message
 * goes out in the turn it arrived in.
 */
#include "worker.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include "broker.h"
#include "log.h"
#include "persist.h"

#define INBOX_BATCH 8192 /* items handled per turn before the sockets get their turn */
#define TICK_MS 250
int item_vec_push(item_vec_t *v, const inbox_item_t *it)
{
    if (v->len == v->cap) {
        size_t ncap = v->cap ? v->cap * 2 : 64;
        inbox_item_t *n = realloc(v->v, ncap * sizeof(*n));
        if (!n)
            return -1;
        v->v = n;
        v->cap = ncap;
    }
    v->v[v->len++] = *it;
    return 0;
}

static void item_release(inbox_item_t *it)
{
    if (it->kind == INBOX_NEWCONN && it->fd >= 0)
        close(it->fd);
    session_unref(it->s);
    message_unref(it->msg);
    conn_unref(it->conn);
    if (it->ack)
        stored_ack_free(it->ack);
}

int worker_init(worker_t *w, broker_t *b, int index)
{
    memset(w, 0, sizeof(*w));
    w->kind = HANDLER_WAKE;
    w->index = index;
    w->b = b;
    w->efd = -1;
    atomic_init(&w->backlog, 0);
    if (loop_init(&w->loop) < 0)
        return -1;
    w->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (w->efd < 0)
        return -1;
    /* Edge-triggered and never read: each write by another thread is one new edge, so the
     * wake-up costs the waker one write(2) and the woken thread no read(2). The counter
     * cannot overflow in practice (2^64 - 2 writes). */
    if (loop_add(&w->loop, w->efd, LOOP_READ | LOOP_EDGE, w) < 0)
        return -1;
    pthread_mutex_init(&w->inbox_lock, NULL);
    pthread_mutex_init(&w->run_lock, NULL);
    w->outgoing = calloc((size_t)b->nworkers, sizeof(*w->outgoing));
    w->rbuf = malloc(WORKER_READ_BUF);
    if (!w->outgoing || !w->rbuf)
        return -1;
    return 0;
}

void worker_retire_conn(worker_t *w, conn_t *c)
{
    if (w->nretired == w->retired_cap) {
        size_t ncap = w->retired_cap ? w->retired_cap * 2 : 16;
        conn_t **n = realloc(w->retired, ncap * sizeof(*n));
        if (!n) {
            /* Leaking one closed connection beats freeing one still referenced. */
            log_msg(LOG_ERR, "out of memory retiring a connection");
            return;
        }
        w->retired = n;
        w->retired_cap = ncap;
    }
    w->retired[w->nretired++] = c;
}

static void resume_paused(worker_t *w);

static void release_retired(worker_t *w)
{
    for (size_t i = 0; i < w->nretired; i++)
        conn_unref(w->retired[i]);
    w->nretired = 0;
}

void worker_cleanup(worker_t *w)
{
    while (w->conns)
        conn_close(w->conns, NULL);
    resume_paused(w);
    free(w->paused);
    while (w->dirty) {
        conn_t *c = w->dirty;
        w->dirty = c->dirty_next;
        c->dirty = false;
        conn_unref(c);
    }
    release_retired(w);
    free(w->retired);
    for (size_t i = w->pending_pos; i < w->pending.len; i++)
        item_release(&w->pending.v[i]);
    free(w->pending.v);
    for (size_t i = 0; i < w->inbox.len; i++)
        item_release(&w->inbox.v[i]);
    free(w->inbox.v);
    if (w->outgoing) {
        for (int t = 0; t < w->b->nworkers; t++) {
            for (size_t i = 0; i < w->outgoing[t].len; i++)
                item_release(&w->outgoing[t].v[i]);
            free(w->outgoing[t].v);
        }
        free(w->outgoing);
    }
    free(w->scratch_v);
    free(w->rbuf);
    if (w->efd >= 0)
        close(w->efd);
    loop_cleanup(&w->loop);
    pthread_mutex_destroy(&w->inbox_lock);
    pthread_mutex_destroy(&w->run_lock);
}

void worker_wake(worker_t *w)
{
    uint64_t one = 1;
    ssize_t r = write(w->efd, &one, sizeof(one));
    (void)r;
}

int worker_post(worker_t *from, int target, const inbox_item_t *item)
{
    item_vec_t *v = target == from->index ? &from->pending : &from->outgoing[target];
    if (item_vec_push(v, item) < 0) {
        inbox_item_t copy = *item;
        item_release(&copy);
        return -1;
    }
    if (target == from->index)
        atomic_fetch_add_explicit(&from->backlog, 1, memory_order_relaxed);
    return 0;
}

int worker_post_now(worker_t *target, const inbox_item_t *item)
{
    pthread_mutex_lock(&target->inbox_lock);
    int r = item_vec_push(&target->inbox, item);
    if (r == 0)
        atomic_fetch_add_explicit(&target->backlog, 1, memory_order_relaxed);
    bool wake = r == 0 && !target->inbox_woken;
    if (wake)
        target->inbox_woken = true;
    pthread_mutex_unlock(&target->inbox_lock);
    if (r < 0) {
        inbox_item_t copy = *item;
        item_release(&copy);
        return -1;
    }
    if (wake)
        worker_wake(target);
    return 0;
}

static void handle_item(worker_t *w, inbox_item_t *it);
static void flush_dirty(worker_t *w);

/* Append v's items to tw's inbox under one lock; wake tw once unless a wake-up is already
 * on its way. */
void worker_post_many(worker_t *tw, item_vec_t *v)
{
    pthread_mutex_lock(&tw->inbox_lock);
    size_t i = 0;
    for (; i < v->len; i++)
        if (item_vec_push(&tw->inbox, &v->v[i]) < 0)
            break;
    atomic_fetch_add_explicit(&tw->backlog, i, memory_order_relaxed);
    bool wake = !tw->inbox_woken;
    tw->inbox_woken = true;
    pthread_mutex_unlock(&tw->inbox_lock);
    for (; i < v->len; i++) {
        log_msg(LOG_ERR, "out of memory passing a message between threads");
        item_release(&v->v[i]);
    }
    v->len = 0;
    if (wake)
        worker_wake(tw);
}

/* Items handed over in one batch by running them on this thread: at most this many. */
#define DIRECT_MAX 256

/* Run a batch of deliveries and new connections for tw on this thread, if tw is idle (waiting for events, so
 * its run_lock is free) and has nothing older waiting (so the order of messages from one
 * publisher holds). At a low rate this is the common case, and it saves tw a wake-up, an
 * epoll_wait return and a pass over its inbox per message: a lone publisher and its
 * subscriber on two threads then cost about what they cost on one. Returns whether it did. */
static bool run_directly(worker_t *tw, item_vec_t *v)
{
    if (v->len > DIRECT_MAX)
        return false;
    for (size_t i = 0; i < v->len; i++)
        if (v->v[i].kind != INBOX_DELIVER && v->v[i].kind != INBOX_NEWCONN)
            return false;
    if (pthread_mutex_trylock(&tw->run_lock) != 0)
        return false;
    pthread_mutex_lock(&tw->inbox_lock);
    bool idle = tw->inbox.len == 0 && tw->pending_pos == tw->pending.len;
    pthread_mutex_unlock(&tw->inbox_lock);
    if (!idle) {
        pthread_mutex_unlock(&tw->run_lock);
        return false;
    }
    for (size_t i = 0; i < v->len; i++)
        handle_item(tw, &v->v[i]);
    v->len = 0;
    /* The end of tw's turn, as tw would do it (flushing may close a connection, whose will
     * is routed: batches last). Closed connections wait in tw->retired for tw's own next
     * turn, since events for them may already be in its hands. */
    flush_dirty(tw);
    /* What tw's sessions changed went into this thread's store queue: hand it over while
     * tw is still ours, so that the store sees it before anything tw does next. */
    if (tw->b->store)
        persist_flush(tw->b);
    for (int t = 0; t < tw->b->nworkers; t++)
        if (tw->outgoing[t].len)
            worker_post_many(&tw->b->workers[t], &tw->outgoing[t]);
    bool more = tw->pending_pos < tw->pending.len;
    pthread_mutex_unlock(&tw->run_lock);
    if (more)
        worker_wake(tw);
    return true;
}

/* End of turn: hand each other thread its batch: run it here when that thread is idle,
 * else with one lock and at most one wake-up. */
static void push_outgoing(worker_t *w)
{
    broker_t *b = w->b;
    for (int t = 0; t < b->nworkers; t++) {
        item_vec_t *v = &w->outgoing[t];
        if (!v->len)
            continue;
        worker_t *tw = &b->workers[t];
        if (!run_directly(tw, v))
            worker_post_many(tw, v);
    }
}

static void drain_inbox(worker_t *w)
{
    pthread_mutex_lock(&w->inbox_lock);
    w->inbox_woken = false;
    if (w->pending_pos == w->pending.len) {
        item_vec_t tmp = w->pending;
        w->pending = w->inbox;
        w->pending_pos = 0;
        tmp.len = 0;
        w->inbox = tmp;
    } else {
        for (size_t i = 0; i < w->inbox.len; i++) {
            if (item_vec_push(&w->pending, &w->inbox.v[i]) < 0) {
                item_release(&w->inbox.v[i]);
                atomic_fetch_sub_explicit(&w->backlog, 1, memory_order_relaxed);
            }
        }
        w->inbox.len = 0;
    }
    pthread_mutex_unlock(&w->inbox_lock);
}

void worker_mark_dirty(worker_t *w, conn_t *c)
{
    if (c->dirty)
        return;
    c->dirty = true;
    conn_ref(c);
    c->dirty_next = w->dirty;
    w->dirty = c;
}

static void flush_dirty(worker_t *w)
{
    while (w->dirty) {
        conn_t *c = w->dirty;
        w->dirty = c->dirty_next;
        c->dirty = false;
        c->dirty_next = NULL;
        conn_flush(c);
        conn_unref(c);
    }
}

void worker_add_session(worker_t *w, session_t *s)
{
    s->wprev = NULL;
    s->wnext = w->sessions;
    if (w->sessions)
        w->sessions->wprev = s;
    w->sessions = s;
}

void worker_remove_session(worker_t *w, session_t *s)
{
    if (s->wprev)
        s->wprev->wnext = s->wnext;
    else if (w->sessions == s)
        w->sessions = s->wnext;
    if (s->wnext)
        s->wnext->wprev = s->wprev;
    s->wnext = s->wprev = NULL;
}

/* ---- deliveries ------------------------------------------------------------------ */

static uint32_t window(worker_t *w, conn_t *c)
{
    uint32_t win = c->client_receive_max;
    uint32_t cfgmax = w->b->cfg.max_inflight_messages;
    if (cfgmax && cfgmax < win)
        win = cfgmax;
    return win;
}

static bool expired(const message_t *m)
{
    return m->has_expiry && m->expire_at_ms <= loop_wall_ms();
}

void worker_deliver(worker_t *w, session_t *s, message_t *msg, uint8_t qos, bool retain,
                    const uint32_t *sub_ids, uint8_t nsub)
{
    worker_deliver_stored(w, s, msg, qos, retain, sub_ids, nsub, 0);
}

/* The message is not kept for s after all: its stored delivery (if any) goes too. */
static void drop_stored(worker_t *w, uint64_t dlv_id, message_t *msg)
{
    if (dlv_id)
        persist_delivery_drop(w->b, dlv_id, msg);
}

/* The delivery's state changed (now in flight): the store hears of it. */
static void note_state(worker_t *w, const delivery_t *d)
{
    if (w->b->store)
        persist_delivery_state(w->b, d);
}

/* Send a new in-flight delivery, or hold it for the store's commit (durable QoS 2). */
static bool send_or_hold(worker_t *w, conn_t *c, delivery_t *d)
{
    if (w->b->store && conn_hold_until_stored(c, d))
        return true;
    return conn_send_delivery(c, d, false);
}

void worker_deliver_stored(worker_t *w, session_t *s, message_t *msg, uint8_t qos, bool retain,
                           const uint32_t *sub_ids, uint8_t nsub, uint64_t dlv_id)
{
    if (s->ended || expired(msg)) {
        drop_stored(w, dlv_id, msg);
        return;
    }
    const auth_t *a = atomic_load_explicit(&w->b->listener[s->listener].auth,
                                           memory_order_acquire);
    if (a && auth_has_acl(a) &&
        !auth_acl_check(a, s->username, s->client_id, (const char *)msg->topic,
                        msg->topic_len, AUTH_READ)) {
        drop_stored(w, dlv_id, msg);
        return; /* no read access: not delivered (nor queued) */
    }
    conn_t *c = s->conn;
    bool online = c && c->state == CONN_ACTIVE && !c->closing;
    if (qos == 0) {
        if (!online)
            return; /* QoS 0 is not queued for an offline session */
        if (c->out.bytes > CONN_QOS0_OUT_LIMIT) {
            atomic_fetch_add_explicit(&w->stats.msgs_dropped, 1, memory_order_relaxed);
            return;
        }
        delivery_t d = {.msg = msg, .qos = 0, .retain = retain, .nsub = nsub};
        if (nsub)
            memcpy(d.sub_ids, sub_ids, nsub * sizeof(uint32_t));
        conn_send_delivery(c, &d, false);
        return;
    }
    delivery_t *d = calloc(1, sizeof(*d));
    if (!d) {
        atomic_fetch_add_explicit(&w->stats.msgs_dropped, 1, memory_order_relaxed);
        drop_stored(w, dlv_id, msg);
        return;
    }
    d->msg = message_ref(msg);
    d->qos = qos;
    d->retain = retain;
    d->nsub = nsub;
    d->store_id = dlv_id;
    if (nsub)
        memcpy(d->sub_ids, sub_ids, nsub * sizeof(uint32_t));
    if (w->b->store)
        persist_delivery_kept(w->b, s, d);
    if (online && !s->queue_head && s->inflight_count < window(w, c)) {
        d->pid = session_next_pid(s);
        d->state = qos == 1 ? DLV_WAIT_PUBACK : DLV_WAIT_PUBREC;
        note_state(w, d);
        if (send_or_hold(w, c, d)) {
            session_inflight_append(s, d);
        } else {
            drop_stored(w, d->store_id, msg);
            delivery_free(d);
        }
        return;
    }
    const config_t *cfg = &w->b->cfg;
    if ((cfg->max_queued_messages && s->queued_count >= cfg->max_queued_messages) ||
        (cfg->max_queued_bytes && s->queued_bytes + msg->payload_len > cfg->max_queued_bytes)) {
        atomic_fetch_add_explicit(&w->stats.msgs_dropped, 1, memory_order_relaxed);
        log_msg(LOG_INFO, "Client %s: queue full, message on %.*s dropped", s->client_id,
                (int)msg->topic_len, (const char *)msg->topic);
        drop_stored(w, d->store_id, msg);
        delivery_free(d);
        return;
    }
    session_queue_append(s, d);
}

void worker_pump(worker_t *w, session_t *s)
{
    conn_t *c = s->conn;
    if (!c || c->state != CONN_ACTIVE)
        return;
    uint32_t win = window(w, c);
    while (s->queue_head && s->inflight_count < win) {
        delivery_t *d = session_queue_pop(s);
        if (expired(d->msg)) {
            drop_stored(w, d->store_id, d->msg);
            delivery_free(d);
            continue;
        }
        d->pid = session_next_pid(s);
        d->state = d->qos == 1 ? DLV_WAIT_PUBACK : DLV_WAIT_PUBREC;
        note_state(w, d);
        if (send_or_hold(w, c, d)) {
            session_inflight_append(s, d);
        } else {
            drop_stored(w, d->store_id, d->msg);
            delivery_free(d);
        }
    }
}

/* ---- session life cycle -------------------------------------------------------- */

void worker_publish_will(worker_t *w, session_t *s)
{
    message_t *will = s->will;
    if (!will)
        return;
    s->will = NULL;
    s->will_at_ms = 0;
    log_msg(LOG_INFO, "Client %s: publishing its will on %.*s", s->client_id,
            (int)will->topic_len, (const char *)will->topic);
    broker_route(w, will, NULL);
    message_unref(will);
    if (w->b->store && atomic_load_explicit(&s->stored, memory_order_relaxed))
        persist_session(w->b, s, false); /* the will is gone from the row too */
}

void worker_session_end(worker_t *w, session_t *s)
{
    broker_t *b = w->b;
    pthread_mutex_lock(&b->reg_lock);
    if (s->takeover_pending) {
        /* A new connection is on its way to this session: it decides. */
        pthread_mutex_unlock(&b->reg_lock);
        return;
    }
    /* Out of the store before the client id is free: a new session under it, made on
     * another thread, is stored after this deletion. */
    if (b->store)
        persist_session_end(b, s);
    broker_remove_session(b, s);
    pthread_mutex_unlock(&b->reg_lock);
    if (s->will)
        worker_publish_will(w, s); /* MQTT-3.1.3-9: the session ends before the delay */
    session_reset(s, b->tree);
    s->ended = true;
    worker_remove_session(w, s);
    session_unref(s); /* the registry's reference */
}

void worker_session_offline(worker_t *w, session_t *s, bool send_will)
{
    s->conn = NULL;
    atomic_store(&s->online, false);
    s->offline_since_ms = loop_now_ms();
    /* A stop closes every connection and sends no will: a stored session keeps it, due
     * after its delay from now, and the next start sends it unless the client is back by
     * then (persist.c restores it so). Anything else loses it with the process. */
    bool stopping = atomic_load(&w->b->stopping);
    bool kept_for_next_start = s->expiry != 0 && w->b->store;
    if (s->will) {
        if (!send_will || (stopping && !kept_for_next_start)) {
            message_unref(s->will);
            s->will = NULL;
        } else if (!stopping && (s->will_delay == 0 || s->expiry == 0)) {
            worker_publish_will(w, s);
        } else {
            uint32_t delay = s->will_delay < s->expiry ? s->will_delay : s->expiry;
            s->will_at_ms = s->offline_since_ms + (int64_t)delay * 1000;
        }
    }
    if (s->expiry == 0)
        worker_session_end(w, s);
    else if (w->b->store)
        persist_session(w->b, s, false); /* offline since now, the will as it is */
}

void worker_take_session(worker_t *w, session_t *s, conn_t *c, bool via_inbox)
{
    broker_t *b = w->b;
    bool existed = true;
    conn_t *old = s->conn;
    uint32_t old_expiry = s->expiry;
    if (old) {
        /* MQTT-3.1.4-3: the existing connection is closed (5.0: 0x8E). Its will goes
         * out unless the session carries on within the will delay (3.1.2.5). */
        existed = s->expiry != 0;
        s->expiry = SESSION_NEVER_EXPIRES; /* the session lives on in the new connection */
        if (c->cc.clean_start || !existed)
            s->will_delay = 0;
        conn_disconnect(old, MQTT_RC_SESSION_TAKEN_OVER, "session taken over");
    }
    if (c->w == w) {
        if (via_inbox) {
            pthread_mutex_lock(&b->reg_lock);
            s->takeover_pending--;
            pthread_mutex_unlock(&b->reg_lock);
        }
        if (c->state == CONN_CLOSED) {
            /* The new client left while waiting: the session stays offline, as it was. */
            s->expiry = old_expiry;
            if (!s->conn && s->expiry == 0)
                worker_session_end(w, s);
            return;
        }
        conn_attach_session(c, s, existed);
        return;
    }
    pthread_mutex_lock(&b->reg_lock);
    atomic_store(&s->owner, c->w->index);
    if (via_inbox)
        s->takeover_pending--;
    pthread_mutex_unlock(&b->reg_lock);
    worker_remove_session(w, s);
    inbox_item_t it = {.kind = INBOX_READY,
                       .s = session_ref(s),
                       .conn = conn_ref(c),
                       .existed = existed,
                       .expiry = old_expiry};
    worker_post(w, c->w->index, &it);
}

/* ---- inbox items --------------------------------------------------------------- */

static void accept_fd(worker_t *w, int fd, const char *peer, int listener)
{
    conn_t *c = conn_new(w, fd, peer, listener);
    if (!c || loop_add(&w->loop, fd, LOOP_READ, c) < 0) {
        close(fd);
        atomic_fetch_sub(&w->b->sockets, 1);
        atomic_fetch_sub(&w->b->listener[listener].conns, 1);
        if (c) {
            c->fd = -1;
            conn_unref(c);
        }
        return;
    }
    c->events = LOOP_READ;
    c->next = w->conns;
    if (w->conns)
        w->conns->prev = c;
    w->conns = c;
    w->nconns++;
    atomic_fetch_add_explicit(&w->stats.connections, 1, memory_order_relaxed);
}

static void handle_item(worker_t *w, inbox_item_t *it)
{
    switch (it->kind) {
    case INBOX_NEWCONN:
        accept_fd(w, it->fd, it->peer, it->listener);
        it->fd = -1;
        break;
    case INBOX_DELIVER: {
        int owner = atomic_load(&it->s->owner);
        if (owner != w->index) {
            /* Handed over meanwhile: pass it on, in order, to the new owner. */
            worker_post(w, owner, it);
            return;
        }
        worker_deliver_stored(w, it->s, it->msg, it->qos, it->retain, it->sub_ids, it->nsub,
                              it->dlv_id);
        break;
    }
    case INBOX_TAKEOVER: {
        int owner = atomic_load(&it->s->owner);
        if (owner != w->index) {
            worker_post(w, owner, it);
            return;
        }
        worker_take_session(w, it->s, it->conn, true);
        break;
    }
    case INBOX_READY:
        worker_add_session(w, it->s);
        if (it->conn->state == CONN_CLOSED) {
            it->s->expiry = it->expiry; /* nobody took it: as it was */
            if (!it->s->conn && it->s->expiry == 0)
                worker_session_end(w, it->s);
        } else {
            conn_attach_session(it->conn, it->s, it->existed);
        }
        break;
    case INBOX_STORED:
        conn_stored_ack_complete(it->ack);
        it->ack = NULL;
        break;
    }
    item_release(it);
}

static void handle_pending(worker_t *w)
{
    size_t end = w->pending.len;
    if (end - w->pending_pos > INBOX_BATCH)
        end = w->pending_pos + INBOX_BATCH;
    /* Items posted to ourselves while handling land after `end`: next turn. */
    size_t handled = end - w->pending_pos;
    while (w->pending_pos < end) {
        inbox_item_t it = w->pending.v[w->pending_pos++];
        handle_item(w, &it);
    }
    atomic_fetch_sub_explicit(&w->backlog, handled, memory_order_relaxed);
    if (w->pending_pos == w->pending.len) {
        w->pending.len = 0;
        w->pending_pos = 0;
    }
}

/* ---- accepting ------------------------------------------------------------------- */

/* The peer's address as "host:port", "[v6 host]:port" (as a PROXY header's source is
 * written, conn.c), or "unix" for a unix socket. */
static void peer_name(const struct sockaddr_storage *ss, char *out, size_t outlen)
{
    char host[INET6_ADDRSTRLEN] = "?";
    unsigned port = 0;
    if (ss->ss_family == AF_INET) {
        const struct sockaddr_in *a = (const struct sockaddr_in *)ss;
        inet_ntop(AF_INET, &a->sin_addr, host, sizeof(host));
        port = ntohs(a->sin_port);
    } else if (ss->ss_family == AF_INET6) {
        const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)ss;
        inet_ntop(AF_INET6, &a->sin6_addr, host, sizeof(host));
        port = ntohs(a->sin6_port);
    } else if (ss->ss_family == AF_UNIX) {
        snprintf(out, outlen, "unix");
        return;
    }
    snprintf(out, outlen, ss->ss_family == AF_INET6 ? "[%s]:%u" : "%s:%u", host, port);
}

/* Over a connection limit? Counts the socket in when not. As Mosquitto does, a
 * connection over the limit is closed at once. */
static bool admit(broker_t *b, listener_t *l, const char *peer)
{
    unsigned all = atomic_fetch_add(&b->sockets, 1);
    unsigned here = atomic_fetch_add(&l->conns, 1);
    const char *rule = NULL;
    unsigned limit = 0;
    if (b->cfg.global_max_connections && all >= b->cfg.global_max_connections) {
        rule = "global_max_connections";
        limit = b->cfg.global_max_connections;
    } else if (l->cfg->max_connections && here >= l->cfg->max_connections) {
        rule = "max_connections";
        limit = l->cfg->max_connections;
    }
    if (!rule)
        return true;
    atomic_fetch_sub(&b->sockets, 1);
    atomic_fetch_sub(&l->conns, 1);
    log_msg(LOG_NOTICE, "Connection from %s refused: %s (%u) reached", peer, rule, limit);
    return false;
}

static void on_listen(worker_t *w, const listen_socket_t *ls)
{
    broker_t *b = w->b;
    listener_t *l = &b->listener[ls->listener];
    for (int i = 0; i < 64; i++) {
        struct sockaddr_storage ss;
        socklen_t sl = sizeof(ss);
        int fd = accept4(ls->fd, (struct sockaddr *)&ss, &sl, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
                log_msg(LOG_WARN, "accept: %s", strerror(errno));
            return;
        }
        inbox_item_t it = {.kind = INBOX_NEWCONN, .fd = fd, .listener = ls->listener};
        peer_name(&ss, it.peer, sizeof(it.peer));
        if (!admit(b, l, it.peer)) {
            close(fd);
            continue;
        }
        if (ss.ss_family != AF_UNIX) {
            int one = 1;
            setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        }
        int target = (int)(atomic_fetch_add(&b->next_worker, 1) % (unsigned)b->nworkers);
        if (target == w->index) {
            accept_fd(w, fd, it.peer, it.listener);
        } else {
            worker_post(w, target, &it);
        }
    }
}

/* ---- backpressure ---------------------------------------------------------------- */

/* Backpressure (DESIGN.md, "Fairness"): when a worker has more than thread_backlog_limit
 * items waiting, the other workers stop reading from the connections that are flooding
 * (those whose last read filled its budget) until every backlog is under a quarter of it.
 * TCP then slows those publishers down; quiet clients keep being read. */

static size_t max_backlog(broker_t *b)
{
    size_t m = 0;
    for (int i = 0; i < b->nworkers; i++) {
        size_t n = atomic_load_explicit(&b->workers[i].backlog, memory_order_relaxed);
        if (n > m)
            m = n;
    }
    return m;
}

static void pause_conn(worker_t *w, conn_t *c)
{
    if (w->npaused == w->paused_cap) {
        size_t ncap = w->paused_cap ? w->paused_cap * 2 : 16;
        conn_t **n = realloc(w->paused, ncap * sizeof(*n));
        if (!n)
            return; /* not paused: it is read as usual */
        w->paused = n;
        w->paused_cap = ncap;
    }
    w->paused[w->npaused++] = conn_ref(c);
    c->paused = true;
    atomic_fetch_add_explicit(&w->stats.paused, 1, memory_order_relaxed);
    conn_update_events(c);
}

static void resume_paused(worker_t *w)
{
    for (size_t i = 0; i < w->npaused; i++) {
        conn_t *c = w->paused[i];
        c->paused = false;
        conn_update_events(c);
        conn_unref(c);
    }
    w->npaused = 0;
}

/* ---- the loop -------------------------------------------------------------------- */

static void tick(worker_t *w, int64_t now)
{
    broker_t *b = w->b;
    for (conn_t *c = w->conns, *next; c; c = next) {
        next = c->next;
        conn_check_timers(c, now);
    }
    for (session_t *s = w->sessions, *next; s; s = next) {
        next = s->wnext;
        if (s->conn || s->ended)
            continue;
        if (s->will_at_ms && now >= s->will_at_ms)
            worker_publish_will(w, s);
        if (s->expiry != SESSION_NEVER_EXPIRES &&
            now - s->offline_since_ms >= (int64_t)s->expiry * 1000)
            worker_session_end(w, s);
    }
    if (w->index == 0 && b->cfg.sys_interval && now >= w->next_sys_ms) {
        sys_publish(w);
        w->next_sys_ms = now + (int64_t)b->cfg.sys_interval * 1000;
    }
}

static void *worker_main(void *arg)
{
    worker_t *w = arg;
    broker_t *b = w->b;
    loop_event_t evs[256];
    w->next_tick_ms = loop_now_ms() + TICK_MS;
    w->next_sys_ms = loop_now_ms();
    pthread_mutex_lock(&w->run_lock);
    while (!atomic_load(&b->stopping)) {
        /* Nothing read through the listeners' reloadable pointers survives a turn: a
         * reload may free the old ones once every worker has been here (listener.c). */
        atomic_store(&w->seen_gen, atomic_load(&b->reload_gen));
        int64_t now = loop_now_ms();
        int timeout = w->pending_pos < w->pending.len ? 0 : (int)(w->next_tick_ms - now);
        if (timeout < 0)
            timeout = 0;
        if (w->npaused && timeout > 1)
            timeout = 1; /* look again soon whether the backlog went down */
        pthread_mutex_unlock(&w->run_lock);
        int n = loop_wait(&w->loop, evs, 256, timeout);
        pthread_mutex_lock(&w->run_lock);
        bool congested = max_backlog(b) > b->cfg.thread_backlog_limit;
        for (int i = 0; i < n; i++) {
            int kind = *(int *)evs[i].handler;
            if (kind == HANDLER_CONN) {
                conn_t *c = evs[i].handler;
                if (evs[i].events & LOOP_WRITE)
                    conn_flush(c);
                if (!(evs[i].events & LOOP_READ))
                    continue;
                if (congested && c->read_full && c->state == CONN_ACTIVE)
                    pause_conn(w, c);
                else
                    conn_on_readable(c);
            } else if (kind == HANDLER_WAKE) {
                drain_inbox(w);
            } else if (kind == HANDLER_LISTEN) {
                on_listen(w, evs[i].handler);
            }
        }
        handle_pending(w);
        if (b->store)
            persist_flush(b); /* before push_outgoing: the store hears of a delivery first */
        push_outgoing(w);
        flush_dirty(w);
        if (w->npaused && max_backlog(b) < b->cfg.thread_backlog_limit / 4)
            resume_paused(w);
        now = loop_now_ms();
        if (now >= w->next_tick_ms) {
            tick(w, now);
            w->next_tick_ms = now + TICK_MS;
            if (b->store)
                persist_flush(b);
            push_outgoing(w);
            flush_dirty(w);
        }
        release_retired(w);
    }
    if (b->store)
        persist_flush(b); /* what the last turn's flushes changed (a closed connection) */
    pthread_mutex_unlock(&w->run_lock);
    return NULL;
}

int worker_start(worker_t *w)
{
    return pthread_create(&w->thread, NULL, worker_main, w);
}
