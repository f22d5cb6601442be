/* conn.c - a client connection: framing, the MQTT state machine, and packet output.
 *
 * Bytes read from the socket are framed (mqtt_frame_decode), bounded by max_packet_size
 * before any body is buffered, decoded by src/mqtt into views, and handled here: CONNECT
 * and the session hand-over, PUBLISH into the router, the QoS flows in both directions,
 * SUBSCRIBE with retained delivery, keepalive. Every refusal goes through violation(),
 * which logs one line naming the client and the rule, counts it, and closes only this
 * connection (with DISCONNECT first on 5.0, where the specification allows one).
 */
#include "conn.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "broker.h"
#include "log.h"
#include "mqtt/codec.h"
#include "net/proxy.h"
#include "persist.h"
#include "worker.h"

/* Payloads up to this size are copied next to their header: one iovec instead of two
 * and no reference count traffic, which costs less than the copy for small messages. */
#define COPY_PAYLOAD_MAX 1024

struct alias_entry {
    UT_hash_handle hh;
    uint16_t alias;
    size_t len;
    uint8_t topic[];
};

static void process_input(conn_t *c);

static broker_t *B(conn_t *c)
{
    return c->w->b;
}

static const char *cid(conn_t *c)
{
    return c->client_id ? c->client_id : "(unknown)";
}

/* The host part of "host:port" ("unix" stays as it is). */
static void peer_host(const char *peer, char *out, size_t outlen)
{
    snprintf(out, outlen, "%s", peer);
    char *colon = strrchr(out, ':');
    if (colon)
        *colon = 0;
}

conn_t *conn_new(worker_t *w, int fd, const char *peer, int listener)
{
    conn_t *c = calloc(1, sizeof(*c));
    if (!c)
        return NULL;
    listener_t *l = &w->b->listener[listener];
    c->listener = listener;
    c->proxy = (uint8_t)l->cfg->proxy_protocol;
    if (l->cfg->certfile[0] || l->cfg->websockets) {
        char host[64];
        peer_host(peer, host, sizeof(host));
        c->xp = calloc(1, sizeof(*c->xp));
        if (!c->xp || listener_make_stack(l, c->xp, host) < 0) {
            if (c->xp)
                xport_cleanup(c->xp);
            free(c->xp);
            free(c);
            return NULL;
        }
    }
    c->kind = HANDLER_CONN;
    c->fd = fd;
    c->w = w;
    atomic_init(&c->refs, 1);
    c->state = CONN_NEW;
    c->created_ms = c->last_rx_ms = loop_now_ms();
    c->client_receive_max = 65535;
    snprintf(c->peer, sizeof(c->peer), "%s", peer);
    outq_init(&c->out, (outq_release_fn)message_unref);
    return c;
}

static void free_aliases(conn_t *c)
{
    if (c->alias_in) {
        for (uint32_t i = 0; i <= c->alias_in_max; i++)
            free((void *)c->alias_in[i].p);
        free(c->alias_in);
        c->alias_in = NULL;
    }
    alias_entry_t *e, *tmp;
    HASH_ITER(hh, c->alias_out, e, tmp)
    {
        HASH_DEL(c->alias_out, e);
        free(e);
    }
}

void conn_unref(conn_t *c)
{
    if (!c || atomic_fetch_sub_explicit(&c->refs, 1, memory_order_acq_rel) != 1)
        return;
    outq_cleanup(&c->out);
    free(c->in);
    if (c->xp) {
        xport_cleanup(c->xp);
        free(c->xp);
    }
    xbuf_free(&c->raw);
    free(c->username);
    free_aliases(c);
    message_unref(c->cc.will);
    free(c->client_id);
    free(c);
}

/* ---- output -------------------------------------------------------------------- */

static uint8_t *reserve(conn_t *c, size_t n)
{
    uint8_t *p = outq_reserve(&c->out, n);
    if (!p) {
        log_msg(LOG_ERR, "Client %s: out of memory for output", cid(c));
        c->closing = true;
    }
    return p;
}

static void commit(conn_t *c, size_t n)
{
    if (outq_commit(&c->out, n) < 0) {
        c->closing = true;
        return;
    }
    worker_mark_dirty(c->w, c);
}

static void send_ack(conn_t *c, uint8_t type, uint16_t pid, uint8_t rc)
{
    uint8_t *p = reserve(c, 8);
    if (p)
        commit(c, mqtt_ack_encode(p, 8, c->version, type, pid, rc, NULL));
}

static void send_connack(conn_t *c, bool present, uint8_t code, const mqtt_props_t *pr)
{
    size_t need = mqtt_connack_encode(NULL, 0, c->version, present, code, pr);
    uint8_t *p = reserve(c, need);
    if (p)
        commit(c, mqtt_connack_encode(p, need, c->version, present, code, pr));
}

static void send_bytes(conn_t *c, const uint8_t *bytes, size_t n)
{
    uint8_t *p = reserve(c, n);
    if (p) {
        memcpy(p, bytes, n);
        commit(c, n);
    }
}

/* ---- acknowledgements after the store's commit (durable persistence) ------------- */

struct stored_ack {
    conn_t *c; /* a reference */
    bool failed;
    uint8_t type; /* MQTT_PUBACK, _PUBREC, _PUBREL, _PUBCOMP, _SUBACK, _UNSUBACK */
    uint8_t rc;
    uint16_t pid;
    uint8_t *pkt; /* SUBACK, UNSUBACK: the encoded packet */
    size_t pkt_len;
    /* SUBACK: the SUBSCRIBE's entries, for the retained messages that follow it */
    uint8_t *entries;
    uint32_t entries_len, count, sub_id;
    bool *fresh;
};

static void send_new_retained(conn_t *c, mqtt_bin_t entries, const bool *fresh, uint32_t count,
                              uint32_t sub_id);

int stored_ack_worker(const stored_ack_t *a)
{
    return a->c->w->index;
}

void stored_ack_fail(stored_ack_t *a)
{
    a->failed = true;
}

void stored_ack_free(stored_ack_t *a)
{
    conn_unref(a->c);
    free(a->pkt);
    free(a->entries);
    free(a->fresh);
    free(a);
}

/* Must this acknowledgement wait for the commit? In durable mode when this packet queued
 * changes for the store, and whenever an earlier one still waits: acknowledgements leave
 * in the order their packets came (MQTT-4.6.0-2..4). */
static bool ack_must_wait(const conn_t *c)
{
    broker_t *b = c->w->b;
    return b->store && persist_durable(b) && (persist_touched() || c->acks_waiting);
}

static stored_ack_t *stored_ack_new(conn_t *c, uint8_t type, uint16_t pid, uint8_t rc)
{
    stored_ack_t *a = calloc(1, sizeof(*a));
    if (!a)
        return NULL;
    a->c = conn_ref(c);
    a->type = type;
    a->pid = pid;
    a->rc = rc;
    return a;
}

/* Hand a to the store; false (a freed) when it cannot wait: the caller sends now. */
static bool stored_ack_queue(conn_t *c, stored_ack_t *a)
{
    if (persist_ack(c->w->b, a) < 0) {
        stored_ack_free(a);
        return false;
    }
    c->acks_waiting++;
    return true;
}

/* PUBACK, PUBREC, PUBREL or PUBCOMP: now, or once the store has committed. */
static void send_ack_ordered(conn_t *c, uint8_t type, uint16_t pid, uint8_t rc)
{
    if (ack_must_wait(c)) {
        stored_ack_t *a = stored_ack_new(c, type, pid, rc);
        if (a && stored_ack_queue(c, a))
            return;
    }
    send_ack(c, type, pid, rc);
}

/* The commit failed (disk full, I/O error): what could not be stored is refused. 5.0 says
 * so with 0x97 Quota exceeded; 3.x has no way to, so the PUBLISH is not acknowledged (the
 * client sends it again after reconnecting). */
static void refuse_unstored(conn_t *c, const stored_ack_t *a)
{
    atomic_fetch_add_explicit(&c->w->stats.msgs_dropped, 1, memory_order_relaxed);
    if (a->type == MQTT_PUBREC && c->s)
        session_rx_qos2_remove(c->s, a->pid); /* not taken: a resend is a new message */
    log_msg(LOG_NOTICE, "Client %s: PUBLISH (id %u) could not be stored: %s", cid(c), a->pid,
            c->version == MQTT_V5 ? "refused with 0x97" : "not acknowledged");
    if (c->version == MQTT_V5)
        send_ack(c, a->type, a->pid, MQTT_RC_QUOTA_EXCEEDED);
}

bool conn_hold_until_stored(conn_t *c, delivery_t *d)
{
    if (!d->store_id || d->qos != 2 || !persist_durable(c->w->b))
        return false;
    stored_ack_t *a = stored_ack_new(c, MQTT_PUBLISH, d->pid, 0);
    if (!a || !stored_ack_queue(c, a))
        return false;
    d->held = true;
    return true;
}

/* The held QoS 2 delivery's packet id is committed: send it, unless it went meanwhile
 * (resent on a reconnect) or is gone. */
static void send_held(conn_t *c, uint16_t pid)
{
    session_t *s = c->s;
    delivery_t *d = s ? session_inflight_find(s, pid) : NULL;
    if (!d || !d->held || d->state != DLV_WAIT_PUBREC)
        return;
    d->held = false;
    if (conn_send_delivery(c, d, false))
        return;
    d = session_inflight_take(s, pid, DLV_WAIT_PUBREC);
    persist_delivery_drop(c->w->b, d->store_id, d->msg);
    delivery_free(d);
    worker_pump(c->w, s);
}

void conn_stored_ack_complete(stored_ack_t *a)
{
    conn_t *c = a->c;
    c->acks_waiting--;
    if (c->state != CONN_ACTIVE) {
        stored_ack_free(a); /* gone meanwhile: a new connection resends what it needs */
        return;
    }
    if (a->failed && a->rc < 0x80 && (a->type == MQTT_PUBACK || a->type == MQTT_PUBREC)) {
        refuse_unstored(c, a);
    } else if (a->type == MQTT_PUBLISH) {
        send_held(c, a->pid);
    } else if (a->pkt) {
        send_bytes(c, a->pkt, a->pkt_len);
        if (a->entries && c->state == CONN_ACTIVE) {
            mqtt_bin_t entries = {a->entries, a->entries_len};
            send_new_retained(c, entries, a->fresh, a->count, a->sub_id);
        }
    } else {
        send_ack(c, a->type, a->pid, a->rc);
    }
    stored_ack_free(a);
}

/* Above this much encoded output waiting in the transport stack, MQTT output stays in the
 * output queue, where the slow-subscriber limits see it. */
#define XPORT_OUT_HIGH 65536

/* Output through the transport stack: the queue's bytes are encoded in chunks of up to
 * 16 KiB (one TLS record, one WebSocket frame), then written. */
static long flush_transport(conn_t *c)
{
    uint8_t chunk[16384];
    while (c->out.count && xport_pending(c->xp) < XPORT_OUT_HIGH) {
        struct iovec iov[64];
        size_t bytes, used = 0;
        int n = outq_peek(&c->out, iov, 64, &bytes);
        for (int i = 0; i < n && used < sizeof(chunk); i++) {
            size_t take = iov[i].iov_len < sizeof(chunk) - used ? iov[i].iov_len
                                                                 : sizeof(chunk) - used;
            memcpy(chunk + used, iov[i].iov_base, take);
            used += take;
        }
        if (used == 0) { /* only empty segments */
            outq_consume(&c->out, 0);
            continue;
        }
        if (xport_output(c->xp, chunk, used) < 0) {
            errno = EPROTO;
            return -1;
        }
        outq_consume(&c->out, used);
    }
    return xport_flush(c->xp, c->fd);
}

/* Write what the socket takes now: bytes written, -1 on error. */
static long write_out(conn_t *c)
{
    if (c->xp)
        return flush_transport(c);
    return c->out.count ? outq_flush(&c->out, c->fd) : 0;
}

static bool output_pending(const conn_t *c)
{
    return c->out.count != 0 || (c->xp && xport_pending(c->xp));
}

void conn_flush(conn_t *c)
{
    if (c->state == CONN_CLOSED)
        return;
    if (output_pending(c)) {
        long w = write_out(c);
        if (w < 0) {
            conn_close(c, errno == EPIPE || errno == ECONNRESET ? "connection reset"
                          : c->xp && c->xp->error[0] ? c->xp->error
                                                     : "write error");
            return;
        }
        atomic_fetch_add_explicit(&c->w->stats.bytes_sent, (uint64_t)w, memory_order_relaxed);
    }
    bool pending = output_pending(c);
    if (!pending && (c->closing || (c->xp && xport_finished(c->xp)))) {
        conn_close(c, NULL);
        return;
    }
    if (pending != c->want_write) {
        c->want_write = pending;
        conn_update_events(c);
    }
}

void conn_update_events(conn_t *c)
{
    if (c->state == CONN_CLOSED)
        return;
    bool reading = c->state != CONN_WAIT_SESSION && !c->paused;
    unsigned events = (reading ? LOOP_READ : 0) | (c->want_write ? LOOP_WRITE : 0);
    if (events == c->events)
        return;
    c->events = (uint8_t)events;
    loop_modify(&c->w->loop, c->fd, events, c);
}

/* ---- closing ------------------------------------------------------------------- */

void conn_close(conn_t *c, const char *reason)
{
    if (c->state == CONN_CLOSED)
        return;
    worker_t *w = c->w;
    broker_t *b = w->b;
    uint8_t was = c->state;
    c->state = CONN_CLOSED;
    if (was == CONN_ACTIVE && c->s) {
        session_t *s = c->s;
        c->s = NULL;
        atomic_fetch_sub(&b->clients_connected, 1);
        if (b->cfg.connection_messages) {
            if (reason)
                log_msg(LOG_NOTICE, "Client %s %s disconnected: %s", cid(c), c->peer, reason);
            else
                log_msg(LOG_NOTICE, "Client %s %s disconnected", cid(c), c->peer);
        }
        worker_session_offline(w, s, !c->normal_disconnect);
    } else if (reason) {
        log_msg(LOG_INFO, "Connection from %s closed: %s", c->peer, reason);
    }
    if (c->xp) {
        /* The layers' goodbye (close_notify, a WebSocket close frame: 1001 "going away"
         * when the broker stops), best effort. */
        xport_shutdown(c->xp, c->normal_disconnect       ? 1000
                              : atomic_load(&b->stopping) ? 1001
                                                          : 1011);
        xport_flush(c->xp, c->fd);
    }
    loop_remove(&w->loop, c->fd);
    close(c->fd);
    atomic_fetch_sub(&b->sockets, 1);
    atomic_fetch_sub(&b->listener[c->listener].conns, 1);
    c->fd = -1;
    /* Unlink now; the memory is released at the end of the loop turn (worker.c), since
     * events for this connection may still be in the batch being handled. */
    if (c->prev)
        c->prev->next = c->next;
    else
        w->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    c->next = c->prev = NULL;
    w->nconns--;
    worker_retire_conn(w, c);
}

void conn_disconnect(conn_t *c, uint8_t rc, const char *why)
{
    if (c->state == CONN_CLOSED)
        return;
    if (c->version == MQTT_V5 && c->state == CONN_ACTIVE) {
        mqtt_props_t pr;
        mqtt_props_init(&pr);
        if (why && c->problem_info) {
            pr.reason_string.p = (const uint8_t *)why;
            pr.reason_string.n = (uint32_t)strlen(why);
            MQTT_PROP_SET(&pr, MQTT_PROP_REASON_STRING);
        }
        size_t need = mqtt_disconnect_encode(NULL, 0, MQTT_V5, rc, &pr);
        uint8_t *p = reserve(c, need);
        if (p) {
            commit(c, mqtt_disconnect_encode(p, need, MQTT_V5, rc, &pr));
            /* Best effort: whatever the socket takes now; then close. */
            write_out(c);
        }
    }
    conn_close(c, why);
}

/* A rule broken by the client: log it, count it, close only this connection. */
static void violation(conn_t *c, uint8_t rc, const char *rule)
{
    atomic_fetch_add_explicit(&c->w->stats.protocol_errors, 1, memory_order_relaxed);
    log_msg(LOG_NOTICE, "Client %s %s: %s (%s), closing", cid(c), c->peer, rule,
            mqtt_reason_name(rc));
    char why[160];
    snprintf(why, sizeof(why), "%s", rule);
    conn_disconnect(c, rc, why);
}

/* ---- PUBLISH out --------------------------------------------------------------- */

bool conn_send_delivery(conn_t *c, delivery_t *d, bool dup)
{
    message_t *m = d->msg;
    mqtt_props_t pr;
    mqtt_props_init(&pr);
    size_t shared = 0;
    mqtt_str_t topic = {m->topic, m->topic_len};
    alias_entry_t *alias = NULL;
    uint16_t new_alias = 0;

    if (c->version == MQTT_V5) {
        shared = m->props_len;
        if (m->has_expiry) {
            uint32_t left = message_expiry_left(m, loop_wall_ms());
            if (!left)
                return false;
            pr.message_expiry_interval = left;
            MQTT_PROP_SET(&pr, MQTT_PROP_MESSAGE_EXPIRY_INTERVAL);
        }
        if (d->nsub) {
            pr.sub_ids = d->sub_ids;
            pr.subscription_identifier = d->sub_ids[0];
            pr.subscription_identifier_count = d->nsub;
            MQTT_PROP_SET(&pr, MQTT_PROP_SUBSCRIPTION_IDENTIFIER);
        }
        if (c->client_alias_max) {
            HASH_FIND(hh, c->alias_out, m->topic, m->topic_len, alias);
            if (alias) {
                pr.topic_alias = alias->alias;
                topic.n = 0;
                MQTT_PROP_SET(&pr, MQTT_PROP_TOPIC_ALIAS);
            } else if (c->next_out_alias < c->client_alias_max) {
                new_alias = (uint16_t)(c->next_out_alias + 1);
                pr.topic_alias = new_alias;
                MQTT_PROP_SET(&pr, MQTT_PROP_TOPIC_ALIAS);
            }
        }
    }
    uint8_t qos = d->qos;
    uint16_t pid = qos ? d->pid : 0;
    size_t hdr = mqtt_publish_header_encode(NULL, 0, c->version, qos, dup, d->retain, topic, pid,
                                            &pr, shared, m->payload_len);
    size_t total = hdr + shared + m->payload_len;
    if (c->client_max_packet && total > c->client_max_packet) {
        /* MQTT-3.1.2-25: never send more than the client allows; drop for it alone. */
        atomic_fetch_add_explicit(&c->w->stats.msgs_dropped, 1, memory_order_relaxed);
        log_msg(LOG_INFO, "Client %s: dropped a %zu-byte message over its maximum packet size %u",
                cid(c), total, c->client_max_packet);
        return false;
    }
    bool copy = m->payload_len <= COPY_PAYLOAD_MAX;
    uint8_t *p = reserve(c, copy ? total : hdr);
    if (!p)
        return false;
    size_t n = mqtt_publish_header_encode(p, hdr, c->version, qos, dup, d->retain, topic, pid,
                                          &pr, shared, m->payload_len);
    if (copy) {
        if (shared)
            memcpy(p + n, m->props, shared);
        if (m->payload_len)
            memcpy(p + n + shared, m->payload, m->payload_len);
        commit(c, total);
    } else {
        commit(c, n);
        if (shared)
            outq_push_ref(&c->out, m->props, shared, NULL);
        if (outq_push_ref(&c->out, m->payload, m->payload_len, message_ref(m)) < 0) {
            message_unref(m);
            c->closing = true;
        }
    }
    if (new_alias) {
        alias_entry_t *e = malloc(sizeof(*e) + m->topic_len);
        if (e) {
            e->alias = new_alias;
            e->len = m->topic_len;
            memcpy(e->topic, m->topic, m->topic_len);
            HASH_ADD(hh, c->alias_out, topic, e->len, e);
            c->next_out_alias = new_alias;
        }
    }
    atomic_fetch_add_explicit(&c->w->stats.msgs_sent, 1, memory_order_relaxed);
    return true;
}

/* ---- CONNECT ------------------------------------------------------------------- */

static void refuse_connect(conn_t *c, uint8_t v3code, uint8_t v5code, const char *why)
{
    atomic_fetch_add_explicit(&c->w->stats.protocol_errors, 1, memory_order_relaxed);
    log_msg(LOG_NOTICE, "Connection from %s refused: %s", c->peer, why);
    send_connack(c, false, c->version == MQTT_V5 ? v5code : v3code, NULL);
    c->closing = true;
}

static uint64_t forward_mask(void)
{
    return MQTT_PROP_BIT(MQTT_PROP_PAYLOAD_FORMAT_INDICATOR) |
           MQTT_PROP_BIT(MQTT_PROP_CONTENT_TYPE) | MQTT_PROP_BIT(MQTT_PROP_RESPONSE_TOPIC) |
           MQTT_PROP_BIT(MQTT_PROP_CORRELATION_DATA) | MQTT_PROP_BIT(MQTT_PROP_USER_PROPERTY);
}

/* A message from a PUBLISH or a will: the forwarded properties are kept verbatim. */
static message_t *make_message(const mqtt_str_t *topic, const mqtt_props_t *pr,
                               const mqtt_bin_t *payload, uint8_t version)
{
    uint8_t stackbuf[512];
    uint8_t *kept = stackbuf;
    size_t kept_n = 0;
    if (version == MQTT_V5 && pr->raw.n) {
        if (pr->raw.n > sizeof(stackbuf)) {
            kept = malloc(pr->raw.n);
            if (!kept)
                return NULL;
        }
        kept_n = mqtt_props_filter(pr->raw, forward_mask(), kept);
    }
    message_t *m = message_new(topic->p, topic->n, kept_n ? kept : NULL, kept_n, payload->p,
                               payload->n);
    if (kept != stackbuf)
        free(kept);
    if (m && version == MQTT_V5 && MQTT_PROP_HAS(pr, MQTT_PROP_MESSAGE_EXPIRY_INTERVAL)) {
        m->has_expiry = true;
        m->expire_at_ms = loop_wall_ms() + (int64_t)pr->message_expiry_interval * 1000;
    }
    return m;
}

static int set_client_id(conn_t *c, const uint8_t *p, size_t n)
{
    c->client_id = malloc(n + 1);
    if (!c->client_id)
        return -1;
    memcpy(c->client_id, p, n);
    c->client_id[n] = 0;
    c->client_id_len = n;
    return 0;
}

static void begin_session(conn_t *c);

/* ---- authentication and authorisation ------------------------------------------ */

static listener_t *LST(const conn_t *c)
{
    return &c->w->b->listener[c->listener];
}

/* The listener's password/ACL snapshot, valid for this loop turn (listener.h). */
static const auth_t *conn_auth(const conn_t *c)
{
    return atomic_load_explicit(&LST(c)->auth, memory_order_acquire);
}

/* ACL check for this client; everything is allowed without an ACL file. */
static bool acl_allows(const conn_t *c, const uint8_t *topic, size_t n, int access)
{
    const auth_t *a = conn_auth(c);
    if (!a || !auth_has_acl(a))
        return true;
    return auth_acl_check(a, c->username, c->client_id ? c->client_id : "",
                          (const char *)topic, n, access);
}

static int set_username(conn_t *c, const char *p, size_t n)
{
    free(c->username);
    c->username = malloc(n + 1);
    if (!c->username)
        return -1;
    memcpy(c->username, p, n);
    c->username[n] = 0;
    return 0;
}

/* Who is this client? Sets c->username; -1 when the CONNECT was refused. Mosquitto's
 * rules: the certificate names the user on a use_identity/subject_as_username listener;
 * otherwise a password file checks user and password; a client without a user name
 * needs allow_anonymous; with neither a password file nor allow_anonymous, nobody gets
 * in. */
static int authenticate(conn_t *c, const mqtt_connect_t *ct)
{
    const config_listener_t *lc = LST(c)->cfg;
    const auth_t *a = conn_auth(c);
    if (lc->use_identity_as_username || lc->use_subject_as_username) {
        const char *id = c->xp ? (lc->use_identity_as_username ? xport_identity(c->xp)
                                                               : xport_subject(c->xp))
                               : NULL;
        if (!id) {
            refuse_connect(c, MQTT_V3_REFUSED_NOT_AUTHORIZED, MQTT_RC_NOT_AUTHORIZED,
                           "no client certificate to take the user name from");
            return -1;
        }
        if (set_username(c, id, strlen(id)) < 0) {
            conn_close(c, "out of memory");
            return -1;
        }
        return 0;
    }
    if (!ct->has_username) {
        if (!lc->allow_anonymous) {
            refuse_connect(c, MQTT_V3_REFUSED_NOT_AUTHORIZED, MQTT_RC_NOT_AUTHORIZED,
                           "anonymous clients are not allowed (allow_anonymous false)");
            return -1;
        }
        return 0;
    }
    if (a && auth_has_passwords(a)) {
        if (!auth_check_password(a, (const char *)ct->username.p, ct->username.n,
                                 ct->has_password ? ct->password.p : NULL,
                                 ct->has_password ? ct->password.n : 0)) {
            char why[200];
            snprintf(why, sizeof(why), "bad user name or password (user %.*s)",
                     (int)(ct->username.n > 64 ? 64 : ct->username.n),
                     (const char *)ct->username.p);
            refuse_connect(c, MQTT_V3_REFUSED_BAD_USERNAME_PASSWORD,
                           MQTT_RC_BAD_USERNAME_OR_PASSWORD, why);
            return -1;
        }
    } else if (!lc->allow_anonymous) {
        refuse_connect(c, MQTT_V3_REFUSED_NOT_AUTHORIZED, MQTT_RC_NOT_AUTHORIZED,
                       "allow_anonymous is false and no password file is set");
        return -1;
    }
    if (set_username(c, (const char *)ct->username.p, ct->username.n) < 0) {
        conn_close(c, "out of memory");
        return -1;
    }
    return 0;
}

static void handle_connect(conn_t *c, const uint8_t *p, size_t n)
{
    broker_t *b = B(c);
    const config_t *cfg = &b->cfg;
    mqtt_connect_t ct;
    mqtt_error_t err = {0};
    if (mqtt_connect_decode(p, n, &ct, &err) != MQTT_OK) {
        c->version = ct.version == MQTT_V5 ? MQTT_V5 : MQTT_V311;
        if (err.reason == MQTT_RC_UNSUPPORTED_PROTOCOL_VERSION) {
            refuse_connect(c, MQTT_V3_REFUSED_PROTOCOL_VERSION,
                           MQTT_RC_UNSUPPORTED_PROTOCOL_VERSION, err.rule);
            return;
        }
        if (c->version == MQTT_V5) {
            refuse_connect(c, 0, err.reason, err.rule);
            return;
        }
        atomic_fetch_add_explicit(&c->w->stats.protocol_errors, 1, memory_order_relaxed);
        log_msg(LOG_NOTICE, "Connection from %s refused: %s", c->peer, err.rule);
        conn_close(c, NULL);
        return;
    }
    c->version = ct.version;
    const mqtt_props_t *pr = &ct.props;
    unsigned accepted = LST(c)->cfg->accept_versions;
    if (accepted && !(accepted & (1u << ct.version))) {
        refuse_connect(c, MQTT_V3_REFUSED_PROTOCOL_VERSION, MQTT_RC_UNSUPPORTED_PROTOCOL_VERSION,
                       "protocol version not accepted on this listener "
                       "(accept_protocol_versions)");
        return;
    }

    /* Client identifier rules differ per version (checklist 10). */
    bool assigned = false;
    if (ct.client_id.n == 0) {
        if (ct.version == MQTT_V31 || (ct.version == MQTT_V311 && !ct.clean_start)) {
            refuse_connect(c, MQTT_V3_REFUSED_IDENTIFIER_REJECTED, 0,
                           "empty client identifier (MQTT-3.1.3-8)");
            return;
        }
        char id[48];
        uint64_t k = atomic_fetch_add(&b->assigned_ids, 1);
        int len = snprintf(id, sizeof(id), "auto-%llx-%llx", (unsigned long long)b->start_ms,
                           (unsigned long long)k);
        if (set_client_id(c, (const uint8_t *)id, (size_t)len) < 0)
            goto oom;
        assigned = true;
    } else {
        if (ct.version == MQTT_V31 && ct.client_id.n > 23) {
            refuse_connect(c, MQTT_V3_REFUSED_IDENTIFIER_REJECTED, 0,
                           "MQTT 3.1 client identifier longer than 23 bytes");
            return;
        }
        if (set_client_id(c, ct.client_id.p, ct.client_id.n) < 0)
            goto oom;
    }

    if (ct.version == MQTT_V5 && MQTT_PROP_HAS(pr, MQTT_PROP_AUTHENTICATION_METHOD)) {
        refuse_connect(c, 0, MQTT_RC_BAD_AUTHENTICATION_METHOD,
                       "authentication method not supported");
        return;
    }
    if (authenticate(c, &ct) < 0)
        return;

    /* Keepalive: 5.0 gets the server's value back, 3.x is refused as Mosquitto does. */
    c->keepalive = ct.keep_alive;
    c->cc.keepalive_changed = false;
    if (ct.keep_alive > cfg->max_keepalive || (ct.keep_alive == 0 && cfg->max_keepalive < 65535)) {
        if (ct.version == MQTT_V5) {
            c->keepalive = cfg->max_keepalive;
            c->cc.keepalive_changed = true;
        } else if (ct.keep_alive > cfg->max_keepalive) {
            refuse_connect(c, MQTT_V3_REFUSED_IDENTIFIER_REJECTED, 0,
                           "keepalive above max_keepalive");
            return;
        }
    }

    c->cc.clean_start = ct.clean_start;
    c->cc.client_id_assigned = assigned;
    if (ct.version == MQTT_V5) {
        c->cc.expiry = pr->session_expiry_interval;
        c->client_receive_max = pr->receive_maximum;
        c->client_max_packet = MQTT_PROP_HAS(pr, MQTT_PROP_MAXIMUM_PACKET_SIZE)
                                   ? pr->maximum_packet_size
                                   : 0;
        c->client_alias_max = pr->topic_alias_maximum;
        c->problem_info = pr->request_problem_information != 0;
        c->cc.request_response_info = pr->request_response_information != 0;
    } else {
        c->cc.expiry = ct.clean_start ? 0 : SESSION_NEVER_EXPIRES;
    }
    c->session_expiry_at_connect = c->cc.expiry;

    if (ct.has_will && !acl_allows(c, ct.will.topic.p, ct.will.topic.n, AUTH_WRITE)) {
        refuse_connect(c, MQTT_V3_REFUSED_NOT_AUTHORIZED, MQTT_RC_NOT_AUTHORIZED,
                       "the ACL does not allow publishing on the will topic");
        return;
    }
    if (ct.has_will) {
        message_t *will = make_message(&ct.will.topic, &ct.will.props, &ct.will.payload,
                                       ct.version);
        if (!will)
            goto oom;
        will->qos = ct.will.qos;
        will->retain = ct.will.retain;
        c->cc.will = will;
        c->cc.will_qos = ct.will.qos;
        c->cc.will_retain = ct.will.retain;
        c->cc.will_delay = ct.version == MQTT_V5 ? ct.will.props.will_delay_interval : 0;
    }
    begin_session(c);
    return;
oom:
    log_msg(LOG_ERR, "Connection from %s: out of memory", c->peer);
    conn_close(c, NULL);
}

/* Find or create the client's session. When another thread owns it (a live connection
 * there, or an offline session last served there), ask that thread to hand it over and
 * wait: the session's state is only ever touched by its owner. */
static void begin_session(conn_t *c)
{
    worker_t *w = c->w;
    broker_t *b = w->b;
    pthread_mutex_lock(&b->reg_lock);
    session_t *s = broker_find_session(b, c->client_id, c->client_id_len);
    if (!s) {
        s = session_new(c->client_id, c->client_id_len, w->index);
        if (!s) {
            pthread_mutex_unlock(&b->reg_lock);
            log_msg(LOG_ERR, "Client %s: out of memory for its session", cid(c));
            conn_close(c, NULL);
            return;
        }
        broker_add_session(b, s);
        pthread_mutex_unlock(&b->reg_lock);
        worker_add_session(w, s);
        conn_attach_session(c, s, false);
        return;
    }
    int owner = atomic_load(&s->owner);
    if (owner == w->index && s->takeover_pending == 0) {
        pthread_mutex_unlock(&b->reg_lock);
        worker_take_session(w, s, c, false);
        return;
    }
    s->takeover_pending++;
    inbox_item_t it = {.kind = INBOX_TAKEOVER,
                       .s = session_ref(s),
                       .conn = conn_ref(c),
                       };
    pthread_mutex_unlock(&b->reg_lock);
    c->state = CONN_WAIT_SESSION;
    conn_update_events(c);
    worker_post(w, owner, &it);
}

void conn_attach_session(conn_t *c, session_t *s, bool existed)
{
    worker_t *w = c->w;
    broker_t *b = w->b;
    bool was_waiting = c->state == CONN_WAIT_SESSION;
    bool present = existed && !c->cc.clean_start;
    if (!present)
        session_reset(s, b->tree);
    c->s = s;
    s->conn = c;
    atomic_store(&s->online, true);
    s->version = c->version;
    s->expiry = c->cc.expiry;
    /* A new connection before the will delay ran out: that will is not sent (3.1.3.2). */
    message_unref(s->will);
    s->will = c->cc.will;
    c->cc.will = NULL;
    s->will_qos = c->cc.will_qos;
    s->will_retain = c->cc.will_retain;
    s->will_delay = c->cc.will_delay;
    s->will_at_ms = 0;
    free(s->username);
    s->username = c->username ? strdup(c->username) : NULL;
    s->listener = c->listener;
    if (b->store)
        persist_session(b, s, !present);
    if (c->version == MQTT_V5 && b->cfg.max_topic_alias) {
        c->alias_in_max = b->cfg.max_topic_alias;
        c->alias_in = calloc((size_t)c->alias_in_max + 1, sizeof(*c->alias_in));
        if (!c->alias_in)
            c->alias_in_max = 0;
    }

    mqtt_props_t pr;
    mqtt_props_init(&pr);
    char respinfo[96];
    if (c->version == MQTT_V5) {
        const config_t *cfg = &b->cfg;
        if (cfg->receive_maximum && cfg->receive_maximum != 65535) {
            pr.receive_maximum = cfg->receive_maximum;
            MQTT_PROP_SET(&pr, MQTT_PROP_RECEIVE_MAXIMUM);
        }
        if (cfg->max_packet_size && cfg->max_packet_size < MQTT_VBI_MAX + 5u) {
            pr.maximum_packet_size = cfg->max_packet_size;
            MQTT_PROP_SET(&pr, MQTT_PROP_MAXIMUM_PACKET_SIZE);
        }
        if (c->alias_in_max) {
            pr.topic_alias_maximum = c->alias_in_max;
            MQTT_PROP_SET(&pr, MQTT_PROP_TOPIC_ALIAS_MAXIMUM);
        }
        if (c->cc.client_id_assigned) {
            pr.assigned_client_identifier.p = (const uint8_t *)c->client_id;
            pr.assigned_client_identifier.n = (uint32_t)c->client_id_len;
            MQTT_PROP_SET(&pr, MQTT_PROP_ASSIGNED_CLIENT_IDENTIFIER);
        }
        if (c->cc.keepalive_changed) {
            pr.server_keep_alive = c->keepalive;
            MQTT_PROP_SET(&pr, MQTT_PROP_SERVER_KEEP_ALIVE);
        }
        if (c->cc.request_response_info) {
            int n = snprintf(respinfo, sizeof(respinfo), "response/%s", c->client_id);
            if (n > 0 && (size_t)n < sizeof(respinfo)) {
                pr.response_information.p = (const uint8_t *)respinfo;
                pr.response_information.n = (uint32_t)n;
                MQTT_PROP_SET(&pr, MQTT_PROP_RESPONSE_INFORMATION);
            }
        }
    }
    c->state = CONN_ACTIVE;
    c->last_rx_ms = loop_now_ms();
    send_connack(c, present, 0, &pr);
    unsigned cur = atomic_fetch_add(&b->clients_connected, 1) + 1;
    unsigned max = atomic_load(&b->clients_maximum);
    while (cur > max && !atomic_compare_exchange_weak(&b->clients_maximum, &max, cur))
        ;
    if (b->cfg.connection_messages)
        log_msg(LOG_NOTICE, "New client connected from %s as %s (p%u, c%d, k%u)", c->peer,
                c->client_id, c->version, c->cc.clean_start, c->keepalive);

    /* MQTT-4.4.0-1: resend unacknowledged PUBLISH (DUP) and PUBREL, in their order. */
    delivery_t *prev = NULL, *d = s->inflight_head;
    while (d) {
        delivery_t *next = d->next;
        bool ok = true;
        bool never_sent = d->held; /* its commit is still on the way: a first attempt */
        d->held = false;
        if (d->state == DLV_WAIT_PUBCOMP)
            send_ack(c, MQTT_PUBREL, d->pid, 0);
        else
            ok = conn_send_delivery(c, d, !never_sent);
        if (!ok) {
            if (prev)
                prev->next = next;
            else
                s->inflight_head = next;
            if (s->inflight_tail == d)
                s->inflight_tail = prev;
            s->inflight_count--;
            if (b->store)
                persist_delivery_drop(b, d->store_id, d->msg);
            delivery_free(d);
        } else {
            prev = d;
        }
        d = next;
    }
    worker_pump(w, s);
    conn_update_events(c);
    worker_mark_dirty(w, c);
    /* Packets that arrived behind the CONNECT while the session was on its way. */
    if (was_waiting && c->in_len)
        process_input(c);
}

/* ---- PUBLISH in ---------------------------------------------------------------- */

static void handle_publish(conn_t *c, uint8_t flags, const uint8_t *p, size_t n)
{
    broker_t *b = B(c);
    mqtt_publish_t pub;
    mqtt_error_t err = {0};
    if (mqtt_publish_decode(c->version, flags, p, n, &pub, &err) != MQTT_OK) {
        violation(c, err.reason, err.rule);
        return;
    }
    const mqtt_props_t *pr = &pub.props;
    mqtt_str_t topic = pub.topic;
    if (c->version == MQTT_V5) {
        if (MQTT_PROP_HAS(pr, MQTT_PROP_SUBSCRIPTION_IDENTIFIER)) {
            violation(c, MQTT_RC_PROTOCOL_ERROR,
                      "MQTT-3.3.4-6: subscription identifier in a client's PUBLISH");
            return;
        }
        if (MQTT_PROP_HAS(pr, MQTT_PROP_TOPIC_ALIAS)) {
            uint16_t a = pr->topic_alias;
            if (a == 0 || a > c->alias_in_max) {
                violation(c, MQTT_RC_TOPIC_ALIAS_INVALID,
                          "MQTT-3.3.2-9: topic alias 0 or above the topic alias maximum");
                return;
            }
            mqtt_str_t *slot = &c->alias_in[a];
            if (topic.n) {
                uint8_t *copy = malloc(topic.n);
                if (!copy) {
                    conn_close(c, "out of memory");
                    return;
                }
                memcpy(copy, topic.p, topic.n);
                free((void *)slot->p);
                slot->p = copy;
                slot->n = topic.n;
            } else if (!slot->p) {
                violation(c, MQTT_RC_PROTOCOL_ERROR,
                          "MQTT-3.3.4: topic alias with an empty topic was never set");
                return;
            } else {
                topic = *slot;
            }
        }
    }
    if (pub.qos == 2 && session_rx_qos2_has(c->s, pub.packet_id)) {
        /* MQTT-4.3.3-10: a resent QoS 2 PUBLISH before PUBREL is not delivered again. */
        send_ack_ordered(c, MQTT_PUBREC, pub.packet_id, 0);
        return;
    }
    if (pub.qos == 2 && b->cfg.receive_maximum && c->version == MQTT_V5 &&
        c->s->rx_qos2_count >= b->cfg.receive_maximum) {
        violation(c, MQTT_RC_RECEIVE_MAXIMUM_EXCEEDED,
                  "MQTT-3.3.4-9: more QoS 2 messages in flight than the receive maximum");
        return;
    }
    uint8_t rc = 0;
    if (c->version == MQTT_V5 && pr->payload_format_indicator == 1 &&
        mqtt_utf8_check(pub.payload.p, pub.payload.n) != 0) {
        /* Checklist 23: refused consistently with 0x99, as the receiver may do. */
        if (pub.qos == 0) {
            violation(c, MQTT_RC_PAYLOAD_FORMAT_INVALID,
                      "payload format indicator 1 with a payload that is not UTF-8");
            return;
        }
        rc = MQTT_RC_PAYLOAD_FORMAT_INVALID;
        log_msg(LOG_NOTICE, "Client %s: refused a PUBLISH whose payload is not UTF-8", cid(c));
    } else if (b->cfg.message_size_limit && pub.payload.n > b->cfg.message_size_limit) {
        rc = MQTT_RC_PACKET_TOO_LARGE;
        atomic_fetch_add_explicit(&c->w->stats.msgs_dropped, 1, memory_order_relaxed);
        log_msg(LOG_NOTICE, "Client %s: dropped a %u-byte message over message_size_limit",
                cid(c), pub.payload.n);
    }
    bool denied = false;
    if (rc == 0 && !acl_allows(c, topic.p, topic.n, AUTH_WRITE)) {
        /* 5.0 says so in the acknowledgement; 3.x has no way to: the message is dropped
         * and acknowledged as usual, as Mosquitto does. */
        denied = true;
        rc = c->version == MQTT_V5 ? MQTT_RC_NOT_AUTHORIZED : 0;
        atomic_fetch_add_explicit(&c->w->stats.msgs_dropped, 1, memory_order_relaxed);
        log_msg(LOG_NOTICE, "Client %s %s: PUBLISH to %.*s denied by the ACL", cid(c), c->peer,
                (int)topic.n, (const char *)topic.p);
    }
    if (rc == 0 && !denied) {
        message_t *m = make_message(&topic, pr, &pub.payload, c->version);
        if (!m) {
            conn_close(c, "out of memory");
            return;
        }
        m->qos = pub.qos;
        m->retain = pub.retain;
        m->origin = c->s;
        atomic_fetch_add_explicit(&c->w->stats.msgs_received, 1, memory_order_relaxed);
        size_t n_to = broker_route(c->w, m, c->s);
        message_unref(m);
        if (n_to == 0 && c->version == MQTT_V5)
            rc = MQTT_RC_NO_MATCHING_SUBSCRIBERS; /* a success code: the message was taken */
    }
    /* The acknowledgement follows routing; in durable mode it waits for the commit of the
     * message and its deliveries to stored sessions (persist.c). */
    if (pub.qos == 1) {
        send_ack_ordered(c, MQTT_PUBACK, pub.packet_id, c->version == MQTT_V5 ? rc : 0);
    } else if (pub.qos == 2) {
        if (rc < 0x80) {
            if (session_rx_qos2_add(c->s, pub.packet_id) < 0) {
                conn_close(c, "out of memory");
                return;
            }
            if (b->store)
                persist_rx_qos2(b, c->s, pub.packet_id, true);
        }
        send_ack_ordered(c, MQTT_PUBREC, pub.packet_id, c->version == MQTT_V5 ? rc : 0);
    }
}

/* ---- acknowledgements ---------------------------------------------------------- */

static void handle_ack(conn_t *c, uint8_t type, const uint8_t *p, size_t n)
{
    mqtt_ack_t a;
    mqtt_error_t err = {0};
    if (mqtt_ack_decode(c->version, type, p, n, &a, &err) != MQTT_OK) {
        violation(c, err.reason, err.rule);
        return;
    }
    session_t *s = c->s;
    broker_t *b = B(c);
    delivery_t *d;
    bool had;
    switch (type) {
    case MQTT_PUBACK:
        d = session_inflight_take(s, a.packet_id, DLV_WAIT_PUBACK);
        if (d) {
            if (b->store) /* not awaited: at worst the message is sent again */
                persist_delivery_drop(b, d->store_id, d->msg);
            delivery_free(d);
            worker_pump(c->w, s);
        }
        break;
    case MQTT_PUBREC:
        d = session_inflight_find(s, a.packet_id);
        if (d && d->state == DLV_WAIT_PUBREC) {
            if (a.reason >= 0x80) { /* the flow ends here (4.3.3) */
                d = session_inflight_take(s, a.packet_id, DLV_WAIT_PUBREC);
                if (b->store)
                    persist_delivery_drop(b, d->store_id, d->msg);
                delivery_free(d);
                worker_pump(c->w, s);
                break;
            }
            d->state = DLV_WAIT_PUBCOMP;
            /* The message is no longer needed: only its packet id is. Durable: the new
             * state commits before PUBREL goes, so that after a crash the broker resends
             * PUBREL, never the PUBLISH the receiver already has. */
            if (b->store)
                persist_delivery_state(b, d);
            send_ack_ordered(c, MQTT_PUBREL, a.packet_id, 0);
        } else if (d && d->state == DLV_WAIT_PUBCOMP) {
            send_ack_ordered(c, MQTT_PUBREL, a.packet_id, 0);
        } else {
            send_ack_ordered(c, MQTT_PUBREL, a.packet_id, MQTT_RC_PACKET_ID_NOT_FOUND);
        }
        break;
    case MQTT_PUBREL:
        /* Checklist 17: an unknown id still gets PUBCOMP (5.0: 0x92). Durable: the id's
         * removal commits first, or a reused id after a crash would pass for a resend. */
        had = session_rx_qos2_remove(s, a.packet_id);
        if (had && b->store)
            persist_rx_qos2(b, s, a.packet_id, false);
        send_ack_ordered(c, MQTT_PUBCOMP, a.packet_id, had ? 0 : MQTT_RC_PACKET_ID_NOT_FOUND);
        break;
    case MQTT_PUBCOMP:
        d = session_inflight_take(s, a.packet_id, DLV_WAIT_PUBCOMP);
        if (d) {
            if (b->store)
                persist_delivery_drop(b, d->store_id, d->msg);
            delivery_free(d);
            worker_pump(c->w, s);
        }
        break;
    }
}

/* ---- SUBSCRIBE / UNSUBSCRIBE ---------------------------------------------------- */

typedef struct retained_batch {
    message_t **v;
    size_t len, cap;
} retained_batch_t;

static void collect_retained(void *ctx, message_t *m)
{
    retained_batch_t *rb = ctx;
    if (rb->len == rb->cap) {
        size_t ncap = rb->cap ? rb->cap * 2 : 16;
        message_t **nv = realloc(rb->v, ncap * sizeof(*nv));
        if (!nv)
            return;
        rb->v = nv;
        rb->cap = ncap;
    }
    rb->v[rb->len++] = message_ref(m);
}

static void send_retained(conn_t *c, const uint8_t *filter, size_t fn, const sub_opts_t *o)
{
    retained_batch_t rb = {0};
    retain_match(B(c)->retain, filter, fn, loop_wall_ms(), collect_retained, &rb);
    for (size_t i = 0; i < rb.len; i++) {
        message_t *m = rb.v[i];
        uint8_t qos = m->qos < o->qos ? m->qos : o->qos;
        uint32_t sid = o->sub_id;
        /* MQTT-3.3.1-8: retained messages sent for a new subscription carry RETAIN 1. */
        if (c->s)
            worker_deliver(c->w, c->s, m, qos, true, sid ? &sid : NULL, sid ? 1 : 0);
        message_unref(m);
    }
    free(rb.v);
}

/* Retained messages follow the SUBACK (3.8.4), for the entries marked fresh. Shared
 * subscriptions get none. */
static void send_new_retained(conn_t *c, mqtt_bin_t entries, const bool *fresh, uint32_t count,
                              uint32_t sub_id)
{
    mqtt_bin_t cur = entries;
    mqtt_sub_entry_t e;
    for (uint32_t k = 0; k < count && mqtt_subscribe_next(c->version, &cur, &e); k++) {
        if (!fresh[k] || c->state != CONN_ACTIVE)
            continue;
        sub_opts_t o = {.qos = e.qos, .sub_id = sub_id};
        send_retained(c, e.filter.p, e.filter.n, &o);
    }
}

/* Keep the encoded SUBACK and what the retained messages need until the commit. false
 * when out of memory: the caller sends at once. */
static bool defer_suback(conn_t *c, const mqtt_subscribe_t *sub, const uint8_t *codes,
                         const bool *fresh, uint32_t count, uint32_t sub_id, size_t need)
{
    stored_ack_t *a = stored_ack_new(c, MQTT_SUBACK, sub->packet_id, 0);
    if (!a)
        return false;
    mqtt_props_t pr;
    mqtt_props_init(&pr);
    a->pkt = malloc(need);
    a->entries = malloc(sub->entries.n ? sub->entries.n : 1);
    a->fresh = malloc(count ? count * sizeof(bool) : 1);
    if (!a->pkt || !a->entries || !a->fresh) {
        stored_ack_free(a);
        return false;
    }
    a->pkt_len = mqtt_suback_encode(a->pkt, need, c->version, MQTT_SUBACK, sub->packet_id, &pr,
                                    codes, count);
    memcpy(a->entries, sub->entries.p, sub->entries.n);
    a->entries_len = sub->entries.n;
    memcpy(a->fresh, fresh, count * sizeof(bool));
    a->count = count;
    a->sub_id = sub_id;
    return stored_ack_queue(c, a);
}

static void handle_subscribe(conn_t *c, const uint8_t *p, size_t n)
{
    broker_t *b = B(c);
    session_t *s = c->s;
    mqtt_subscribe_t sub;
    mqtt_error_t err = {0};
    if (mqtt_subscribe_decode(c->version, p, n, &sub, &err) != MQTT_OK) {
        violation(c, err.reason, err.rule);
        return;
    }
    uint32_t sub_id = 0;
    if (c->version == MQTT_V5 && MQTT_PROP_HAS(&sub.props, MQTT_PROP_SUBSCRIPTION_IDENTIFIER))
        sub_id = sub.props.subscription_identifier;
    uint8_t codes_stack[64];
    bool fresh_stack[64];
    uint8_t *codes = codes_stack;
    bool *fresh = fresh_stack;
    if (sub.count > 64) {
        codes = malloc(sub.count);
        fresh = malloc(sub.count * sizeof(bool));
        if (!codes || !fresh) {
            free(codes);
            free(fresh);
            conn_close(c, "out of memory");
            return;
        }
    }
    uint8_t bad = c->version == MQTT_V5 ? MQTT_RC_TOPIC_FILTER_INVALID : 0x80;
    mqtt_bin_t cur = sub.entries;
    mqtt_sub_entry_t e;
    uint32_t i = 0;
    for (; mqtt_subscribe_next(c->version, &cur, &e); i++) {
        fresh[i] = false;
        if (mqtt_topic_filter_check(e.filter.p, e.filter.n) != 0) {
            codes[i] = bad;
            log_msg(LOG_INFO, "Client %s: invalid topic filter in SUBSCRIBE", cid(c));
            continue;
        }
        mqtt_str_t group = {0}, filter = e.filter;
        int shared = mqtt_share_split(e.filter.p, e.filter.n, &group, &filter);
        if (shared < 0) {
            codes[i] = bad;
            continue;
        }
        if (shared && e.no_local) {
            violation(c, MQTT_RC_PROTOCOL_ERROR,
                      "MQTT-3.8.3-4: no local on a shared subscription");
            goto done;
        }
        if (!acl_allows(c, filter.p, filter.n, AUTH_SUBSCRIBE)) {
            codes[i] = c->version == MQTT_V5 ? MQTT_RC_NOT_AUTHORIZED : 0x80;
            log_msg(LOG_NOTICE, "Client %s %s: SUBSCRIBE to %.*s denied by the ACL", cid(c),
                    c->peer, (int)e.filter.n, (const char *)e.filter.p);
            continue;
        }
        sub_opts_t o = {.qos = e.qos,
                        .no_local = e.no_local,
                        .retain_as_published = e.retain_as_published,
                        .retain_handling = e.retain_handling,
                        .sub_id = sub_id};
        subscription_t *old = session_sub_find(s, e.filter.p, e.filter.n);
        int r = topic_tree_subscribe(b->tree, filter.p, filter.n, shared ? group.p : NULL,
                                     shared ? group.n : 0, s, &o);
        if (r < 0) {
            codes[i] = MQTT_RC_UNSPECIFIED;
            continue;
        }
        if (old) {
            old->opts = o;
        } else {
            subscription_t *ns = malloc(sizeof(*ns) + e.filter.n + 1);
            if (!ns) {
                topic_tree_unsubscribe(b->tree, filter.p, filter.n, shared ? group.p : NULL,
                                       shared ? group.n : 0, s);
                codes[i] = MQTT_RC_UNSPECIFIED;
                continue;
            }
            memset(ns, 0, sizeof(*ns));
            ns->opts = o;
            ns->group_len = shared ? (uint16_t)group.n : 0;
            ns->filter_len = (uint16_t)filter.n;
            ns->key_len = e.filter.n;
            memcpy(ns->key, e.filter.p, e.filter.n);
            ns->key[e.filter.n] = 0;
            HASH_ADD_KEYPTR(hh, s->subs, ns->key, ns->key_len, ns);
            s->sub_count++;
            if (b->store)
                persist_sub_put(b, s, ns);
        }
        if (old && b->store)
            persist_sub_put(b, s, old);
        fresh[i] = !shared && (o.retain_handling == 0 || (o.retain_handling == 1 && !old));
        codes[i] = e.qos;
    }
    {
        mqtt_props_t pr;
        mqtt_props_init(&pr);
        size_t need = mqtt_suback_encode(NULL, 0, c->version, MQTT_SUBACK, sub.packet_id, &pr,
                                         codes, i);
        /* Durable: the subscriptions commit before the SUBACK; the retained messages
         * follow it then (conn_stored_ack_complete). */
        if (ack_must_wait(c) && defer_suback(c, &sub, codes, fresh, i, sub_id, need))
            goto done;
        uint8_t *out = reserve(c, need);
        if (!out)
            goto done;
        commit(c, mqtt_suback_encode(out, need, c->version, MQTT_SUBACK, sub.packet_id, &pr,
                                     codes, i));
    }
    send_new_retained(c, sub.entries, fresh, i, sub_id);
done:
    if (codes != codes_stack) {
        free(codes);
        free(fresh);
    }
}

/* The UNSUBACK waits for the commit (see defer_suback). */
static bool defer_unsuback(conn_t *c, uint16_t pid, const uint8_t *codes, uint32_t count,
                           size_t need)
{
    stored_ack_t *a = stored_ack_new(c, MQTT_UNSUBACK, pid, 0);
    if (!a)
        return false;
    if (!(a->pkt = malloc(need))) {
        stored_ack_free(a);
        return false;
    }
    a->pkt_len = mqtt_suback_encode(a->pkt, need, c->version, MQTT_UNSUBACK, pid, NULL, codes,
                                    count);
    return stored_ack_queue(c, a);
}

static void handle_unsubscribe(conn_t *c, const uint8_t *p, size_t n)
{
    broker_t *b = B(c);
    session_t *s = c->s;
    mqtt_unsubscribe_t u;
    mqtt_error_t err = {0};
    if (mqtt_unsubscribe_decode(c->version, p, n, &u, &err) != MQTT_OK) {
        violation(c, err.reason, err.rule);
        return;
    }
    uint8_t codes_stack[64];
    uint8_t *codes = u.count > 64 ? malloc(u.count) : codes_stack;
    if (!codes) {
        conn_close(c, "out of memory");
        return;
    }
    mqtt_bin_t cur = u.entries;
    mqtt_str_t f;
    uint32_t i = 0;
    for (; mqtt_unsubscribe_next(&cur, &f); i++) {
        subscription_t *old = session_sub_find(s, f.p, f.n);
        if (!old) {
            codes[i] = MQTT_RC_NO_SUBSCRIPTION_EXISTED;
            continue;
        }
        session_sub_untree(s, old, b->tree);
        if (b->store)
            persist_sub_del(b, s, f.p, f.n);
        HASH_DEL(s->subs, old);
        free(old);
        s->sub_count--;
        codes[i] = 0;
    }
    size_t need = mqtt_suback_encode(NULL, 0, c->version, MQTT_UNSUBACK, u.packet_id, NULL, codes,
                                     i);
    uint8_t *out = NULL;
    if (!(ack_must_wait(c) && defer_unsuback(c, u.packet_id, codes, i, need)))
        out = reserve(c, need);
    if (out)
        commit(c, mqtt_suback_encode(out, need, c->version, MQTT_UNSUBACK, u.packet_id, NULL,
                                     codes, i));
    if (codes != codes_stack)
        free(codes);
}

/* ---- DISCONNECT, AUTH, PING --------------------------------------------------- */

static void handle_disconnect(conn_t *c, const uint8_t *p, size_t n)
{
    mqtt_reason_packet_t d;
    mqtt_error_t err = {0};
    if (mqtt_disconnect_decode(c->version, p, n, &d, &err) != MQTT_OK) {
        violation(c, err.reason, err.rule);
        return;
    }
    if (c->version == MQTT_V5 && MQTT_PROP_HAS(&d.props, MQTT_PROP_SESSION_EXPIRY_INTERVAL)) {
        if (c->session_expiry_at_connect == 0 && d.props.session_expiry_interval != 0) {
            /* MQTT-3.14.2-2 (checklist 22) */
            violation(c, MQTT_RC_PROTOCOL_ERROR,
                      "MQTT-3.14.2-2: session expiry set in DISCONNECT after 0 in CONNECT");
            return;
        }
        c->s->expiry = d.props.session_expiry_interval;
    }
    /* MQTT-3.14.4-3: a normal DISCONNECT discards the will; 0x04 asks for it. */
    c->normal_disconnect = d.reason != MQTT_RC_DISCONNECT_WITH_WILL;
    conn_close(c, NULL);
}

static void handle_packet(conn_t *c, const mqtt_frame_t *f, const uint8_t *p, size_t n)
{
    if (c->state == CONN_NEW) {
        if (f->type != MQTT_CONNECT) {
            atomic_fetch_add_explicit(&c->w->stats.protocol_errors, 1, memory_order_relaxed);
            log_msg(LOG_NOTICE, "Connection from %s closed: MQTT-3.1.0-1: first packet is %s, "
                                "not CONNECT",
                    c->peer, mqtt_packet_name(f->type));
            conn_close(c, NULL);
            return;
        }
        handle_connect(c, p, n);
        return;
    }
    if (B(c)->store)
        persist_touch_reset();
    mqtt_error_t err = {0};
    switch (f->type) {
    case MQTT_CONNECT:
        violation(c, MQTT_RC_PROTOCOL_ERROR, "MQTT-3.1.0-2: second CONNECT");
        break;
    case MQTT_PUBLISH:
        handle_publish(c, f->flags, p, n);
        break;
    case MQTT_PUBACK:
    case MQTT_PUBREC:
    case MQTT_PUBREL:
    case MQTT_PUBCOMP:
        handle_ack(c, f->type, p, n);
        break;
    case MQTT_SUBSCRIBE:
        handle_subscribe(c, p, n);
        break;
    case MQTT_UNSUBSCRIBE:
        handle_unsubscribe(c, p, n);
        break;
    case MQTT_PINGREQ:
        if (mqtt_empty_decode(p, n, &err) != MQTT_OK) {
            violation(c, err.reason, err.rule);
            break;
        }
        {
            uint8_t *out = reserve(c, 2);
            if (out)
                commit(c, mqtt_empty_encode(out, 2, MQTT_PINGRESP));
        }
        break;
    case MQTT_DISCONNECT:
        handle_disconnect(c, p, n);
        break;
    case MQTT_AUTH:
        if (c->version != MQTT_V5) {
            violation(c, MQTT_RC_PROTOCOL_ERROR, "AUTH packet below MQTT 5.0");
            break;
        }
        {
            mqtt_reason_packet_t a;
            if (mqtt_auth_decode(p, n, &a, &err) != MQTT_OK) {
                violation(c, err.reason, err.rule);
                break;
            }
        }
        /* 5.0 section 4.12: AUTH is only for a connection that named an authentication
         * method in CONNECT; none is supported yet, so CONNECT with one got 0x8C. */
        violation(c, MQTT_RC_PROTOCOL_ERROR,
                  "AUTH without an authentication method in CONNECT");
        break;
    default:
        violation(c, MQTT_RC_PROTOCOL_ERROR, "packet type a client must not send");
        break;
    }
}

/* ---- input --------------------------------------------------------------------- */

/* Input is read into the worker's shared read buffer and handled from there; only the
 * incomplete packet at the end of a read is kept in the connection's own buffer. An idle
 * connection therefore holds no input memory at all, and a connection with a large packet
 * on its way holds just that packet. */
#define SMALL_LEFTOVER 4096

static int ensure_in(conn_t *c, size_t need)
{
    if (c->in_cap >= need)
        return 0;
    size_t ncap = c->in_cap ? c->in_cap : 1024;
    while (ncap < need)
        ncap *= 2;
    uint8_t *n = realloc(c->in, ncap);
    if (!n)
        return -1;
    c->in = n;
    c->in_cap = ncap;
    return 0;
}

/* Handle every complete packet in buf[0..len). Returns the bytes consumed, or -1 when the
 * connection is closed or closing. *need is the full size of the incomplete packet at the
 * end when its header is all there, else 0. */
static long process_packets(conn_t *c, const uint8_t *buf, size_t len, size_t *need)
{
    const config_t *cfg = &B(c)->cfg;
    size_t off = 0;
    *need = 0;
    while (c->state == CONN_NEW || c->state == CONN_ACTIVE) {
        if (c->closing)
            return -1;
        mqtt_frame_t f;
        mqtt_error_t err = {0};
        int r = mqtt_frame_decode(buf + off, len - off, &f, &err);
        if (r == MQTT_INCOMPLETE)
            break;
        if (r != MQTT_OK) {
            if (c->state == CONN_NEW) {
                atomic_fetch_add_explicit(&c->w->stats.protocol_errors, 1, memory_order_relaxed);
                log_msg(LOG_NOTICE, "Connection from %s closed: %s", c->peer, err.rule);
                conn_close(c, NULL);
            } else {
                violation(c, err.reason, err.rule);
            }
            return -1;
        }
        size_t total = (size_t)f.header_len + f.remaining;
        if (cfg->max_packet_size && total > cfg->max_packet_size) {
            /* Checklist 2: refuse on the declared length, before buffering the body. */
            if (c->state == CONN_NEW) {
                atomic_fetch_add_explicit(&c->w->stats.protocol_errors, 1, memory_order_relaxed);
                log_msg(LOG_NOTICE, "Connection from %s closed: %zu-byte packet over "
                                    "max_packet_size",
                        c->peer, total);
                conn_close(c, NULL);
            } else {
                violation(c, MQTT_RC_PACKET_TOO_LARGE, "packet larger than max_packet_size");
            }
            return -1;
        }
        if (len - off < total) {
            *need = total;
            break;
        }
        handle_packet(c, &f, buf + off + f.header_len, f.remaining);
        if (c->state == CONN_CLOSED)
            return -1;
        off += total;
        c->last_rx_ms = loop_now_ms();
        if (c->state == CONN_WAIT_SESSION)
            break;
    }
    if (c->state == CONN_CLOSED)
        return -1;
    return (long)off;
}

/* Room in the connection's own buffer for the len bytes of an incomplete packet and for
 * more of it when its size (need) is known. The room grows with the data that arrives,
 * never ahead of it by more than one read: a client that declares a huge packet and
 * stalls costs the broker nothing (checklist 2). */
static int reserve_in(conn_t *c, size_t len, size_t need)
{
    size_t want = need > len + WORKER_READ_BUF ? len + WORKER_READ_BUF : need;
    if (ensure_in(c, want > len ? want : len) < 0) {
        conn_close(c, "out of memory for a packet");
        return -1;
    }
    return 0;
}

/* Handle what is in the connection's own buffer (bytes that arrived behind a CONNECT while
 * its session was on its way, or a large packet being completed), keeping the rest. */
static void process_input(conn_t *c)
{
    size_t need;
    long n = process_packets(c, c->in, c->in_len, &need);
    if (n < 0)
        return;
    size_t left = c->in_len - (size_t)n;
    if (n && left)
        memmove(c->in, c->in + n, left);
    c->in_len = left;
    if (left) {
        reserve_in(c, left, need);
    } else if (c->in_cap > 65536) {
        free(c->in);
        c->in = NULL;
        c->in_cap = 0;
    }
}

/* read(2) with the usual outcomes: bytes read, 0 when the connection was closed here, -1
 * when nothing is there yet. */
static ssize_t read_some(conn_t *c, uint8_t *buf, size_t room)
{
    ssize_t r = read(c->fd, buf, room);
    if (r == 0) {
        conn_close(c, c->state == CONN_ACTIVE ? "connection closed by client" : NULL);
        return 0;
    }
    if (r < 0) {
        if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
            conn_close(c, "read error");
        else
            return -1;
        return 0;
    }
    atomic_fetch_add_explicit(&c->w->stats.bytes_received, (uint64_t)r, memory_order_relaxed);
    c->read_full = (size_t)r == room;
    return r;
}

/* MQTT bytes that came out of a PROXY header or a transport stack: appended to the
 * connection's own buffer and handled from there. */
static void take_mqtt_bytes(conn_t *c, const uint8_t *p, size_t n)
{
    if (n == 0)
        return;
    if (ensure_in(c, c->in_len + n) < 0) {
        conn_close(c, "out of memory");
        return;
    }
    memcpy(c->in + c->in_len, p, n);
    c->in_len += n;
    process_input(c);
}

/* The PROXY header a load balancer sends first (listener option enable_proxy_protocol):
 * returns the bytes after it, *n updated, or NULL while it is incomplete or when the
 * connection was refused. */
static const uint8_t *take_proxy_header(conn_t *c, const uint8_t *p, size_t *n)
{
    if (xbuf_append(&c->raw, p, *n) < 0) {
        conn_close(c, "out of memory");
        return NULL;
    }
    proxy_result_t r = {0};
    long hl = proxy_parse(xbuf_data(&c->raw), xbuf_size(&c->raw), c->proxy, &r);
    if (hl == 0)
        return NULL;
    if (hl < 0) {
        atomic_fetch_add_explicit(&c->w->stats.protocol_errors, 1, memory_order_relaxed);
        log_msg(LOG_NOTICE, "Connection from %s refused: %s", c->peer,
                r.error ? r.error : "invalid PROXY header");
        conn_close(c, NULL);
        return NULL;
    }
    if (!r.local) {
        /* r.addr fits: an IPv6 address in text is at most 45 bytes. */
        char peer[sizeof(r.addr) + 16];
        snprintf(peer, sizeof(peer), strchr(r.addr, ':') ? "[%s]:%u" : "%s:%u", r.addr,
                 r.port);
        size_t k = strlen(peer) < sizeof(c->peer) ? strlen(peer) : sizeof(c->peer) - 1;
        memcpy(c->peer, peer, k);
        c->peer[k] = 0;
    }
    c->proxy = 0;
    xbuf_consume(&c->raw, (size_t)hl);
    *n = xbuf_size(&c->raw);
    return xbuf_data(&c->raw);
}

/* Readable, with a PROXY header still to come or a transport stack: raw bytes go through
 * them; the MQTT bytes that come out are handled as usual. */
static void read_layered(conn_t *c)
{
    uint8_t *buf = c->w->rbuf;
    ssize_t r = read_some(c, buf, WORKER_READ_BUF);
    if (r <= 0)
        return;
    const uint8_t *p = buf;
    size_t n = (size_t)r;
    if (c->proxy && !(p = take_proxy_header(c, p, &n)))
        return;
    if (!c->xp) {
        take_mqtt_bytes(c, p, n);
    } else {
        xbuf_t app = {0};
        int rc = xport_input(c->xp, p, n, &app);
        const char *fwd = xport_forwarded_peer(c->xp);
        if (fwd && strcmp(fwd, c->peer) != 0)
            snprintf(c->peer, sizeof(c->peer), "%s", fwd);
        if (rc < 0) {
            atomic_fetch_add_explicit(&c->w->stats.protocol_errors, 1, memory_order_relaxed);
            xport_flush(c->xp, c->fd); /* the layer's last words: an alert, a 400 */
            conn_close(c, c->xp->error[0] ? c->xp->error : "transport error");
        } else {
            take_mqtt_bytes(c, xbuf_data(&app), xbuf_size(&app));
        }
        xbuf_free(&app);
    }
    xbuf_consume(&c->raw, xbuf_size(&c->raw));
    if (c->state != CONN_CLOSED && c->xp && (xport_pending(c->xp) || xport_finished(c->xp)))
        worker_mark_dirty(c->w, c);
}

void conn_on_readable(conn_t *c)
{
    if (c->state != CONN_NEW && c->state != CONN_ACTIVE)
        return;
    if ((c->proxy || c->xp) && !c->closing) {
        read_layered(c);
        return;
    }
    if (c->closing) {
        /* Refused: discard input until the output has been flushed and we close. */
        uint8_t sink[4096];
        ssize_t r = read(c->fd, sink, sizeof(sink));
        if (r == 0 || (r < 0 && errno != EAGAIN && errno != EINTR))
            conn_close(c, NULL);
        return;
    }
    if (c->in_len > SMALL_LEFTOVER) {
        /* A large packet on its way: read straight into its buffer (a fair share per turn;
         * level-triggered epoll calls again). */
        if (ensure_in(c, c->in_len + SMALL_LEFTOVER) < 0) {
            conn_close(c, "out of memory");
            return;
        }
        size_t room = c->in_cap - c->in_len;
        if (room > WORKER_READ_BUF)
            room = WORKER_READ_BUF;
        ssize_t r = read_some(c, c->in + c->in_len, room);
        if (r <= 0)
            return;
        c->in_len += (size_t)r;
        process_input(c);
        return;
    }
    uint8_t *buf = c->w->rbuf;
    size_t base = c->in_len;
    if (base)
        memcpy(buf, c->in, base);
    ssize_t r = read_some(c, buf + base, WORKER_READ_BUF - base);
    if (r <= 0)
        return;
    size_t len = base + (size_t)r, need;
    c->in_len = 0;
    long n = process_packets(c, buf, len, &need);
    if (n < 0 || (size_t)n == len)
        return;
    /* The incomplete packet at the end moves to the connection's own buffer. */
    size_t left = len - (size_t)n;
    if (reserve_in(c, left, need) < 0)
        return;
    memcpy(c->in, buf + n, left);
    c->in_len = left;
}

void conn_check_timers(conn_t *c, int64_t now_ms)
{
    const config_t *cfg = &B(c)->cfg;
    if (c->state == CONN_NEW) {
        if (now_ms - c->created_ms > (int64_t)cfg->connect_timeout * 1000) {
            atomic_fetch_add_explicit(&c->w->stats.protocol_errors, 1, memory_order_relaxed);
            conn_close(c, "no CONNECT within connect_timeout");
        }
        return;
    }
    if (c->state != CONN_ACTIVE || c->keepalive == 0)
        return;
    /* MQTT-3.1.2-24: one and a half times the keepalive without a control packet. */
    if (now_ms - c->last_rx_ms > (int64_t)c->keepalive * 1500)
        conn_disconnect(c, MQTT_RC_KEEP_ALIVE_TIMEOUT, "keepalive timeout");
}
