/* bench.c - midge-bench, the MQTT load generator: many non-blocking clients per thread.
 *
 * Modes pub, sub and conn (as emqtt-bench has) and the scenarios fan-in, fan-out, pairs
 * and latency (a fixed-rate client, optionally beside a flood), plus handshake (connections
 * opened and closed again as fast as they complete: TLS handshakes per second). Every packet
 * goes through the codec in src/mqtt/; payloads carry publisher id, sequence number and send
 * time, so the receiving side counts losses, duplicates and latency. Any mode runs over TLS
 * and/or WebSocket through the client-role layers of src/client/xconn.h (the broker's own
 * TLS and WebSocket code). See bench/README.md.
 */
#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "client/xconn.h"
#include "mqtt/codec.h"
#include "net/tls.h"

#define BENCH_MAGIC 0x4d444742u /* "MDGB" */
#define BENCH_HDR 24            /* magic, publisher id, sequence, send time (ns) */
#define MAX_THREADS 64
#define IN_CHUNK 65536
/* A client's input buffer starts this small and grows to IN_CHUNK once a read fills it:
 * 2000 idle connections then cost 8 MB, not 128 MB of page faults in the connect phase. */
#define IN_MIN 4096
#define OUT_MIN 4096
#define OUT_HIGH 65536 /* a publisher stops producing while this much is unsent */

/* ---- latency histogram: log-linear, 64 sub-buckets per power of two (~1.6%) ------ */

#define HIST_SUB 64
#define HIST_BUCKETS (2 * HIST_SUB + 50 * HIST_SUB)

typedef struct hist {
    uint64_t count, sum, max;
    uint64_t b[HIST_BUCKETS];
} hist_t;

static unsigned hist_index(uint64_t v)
{
    if (v < 2 * HIST_SUB)
        return (unsigned)v;
    unsigned e = 63 - (unsigned)__builtin_clzll(v); /* >= 7 */
    unsigned sub = (unsigned)(v >> (e - 6)) & (HIST_SUB - 1);
    unsigned i = 2 * HIST_SUB + (e - 7) * HIST_SUB + sub;
    return i < HIST_BUCKETS ? i : HIST_BUCKETS - 1;
}

/* The middle of bucket i, in the unit recorded. */
static double hist_value(unsigned i)
{
    if (i < 2 * HIST_SUB)
        return i;
    unsigned e = (i - 2 * HIST_SUB) / HIST_SUB + 7, sub = (i - 2 * HIST_SUB) % HIST_SUB;
    double lo = (double)((uint64_t)(HIST_SUB + sub) << (e - 6));
    return lo + (double)(1ull << (e - 6)) / 2;
}

static void hist_add(hist_t *h, uint64_t v)
{
    h->count++;
    h->sum += v;
    if (v > h->max)
        h->max = v;
    h->b[hist_index(v)]++;
}

static void hist_merge(hist_t *into, const hist_t *h)
{
    into->count += h->count;
    into->sum += h->sum;
    if (h->max > into->max)
        into->max = h->max;
    for (unsigned i = 0; i < HIST_BUCKETS; i++)
        into->b[i] += h->b[i];
}

/* The q-quantile (0..1); the exact maximum for q = 1. */
static double hist_quantile(const hist_t *h, double q)
{
    if (h->count == 0)
        return 0;
    if (q >= 1)
        return (double)h->max;
    uint64_t rank = (uint64_t)(q * (double)h->count);
    if (rank >= h->count)
        rank = h->count - 1;
    uint64_t seen = 0;
    for (unsigned i = 0; i < HIST_BUCKETS; i++) {
        seen += h->b[i];
        if (seen > rank) {
            double v = hist_value(i);
            return v > (double)h->max ? (double)h->max : v;
        }
    }
    return (double)h->max;
}

/* ---- configuration ----------------------------------------------------------------- */

enum mode { M_PUB, M_SUB, M_CONN, M_FANIN, M_FANOUT, M_PAIRS, M_LATENCY, M_HANDSHAKE };
static const char *mode_names[] = {"pub",     "sub",   "conn",    "fan-in",
                                   "fan-out", "pairs", "latency", "handshake"};

static struct {
    enum mode mode;
    const char *host;
    int port;
    int clients;
    int threads;
    double rate;       /* per publisher, msgs/s; 0 = as fast as the window allows */
    double rate_total; /* total msgs/s, split over the publishers */
    int payload;
    int qos;
    int version;
    const char *topic;
    double duration;
    uint64_t count; /* per publisher; 0 = no limit */
    int window;
    int flood;
    int flood_qos;
    bool persistent; /* subscribers keep their sessions (--persistent) */
    double drain;
    double setup_timeout;
    int broker_pid;
    bool json, quiet;
    int connect_window;
    bool duration_set;
    /* transport: TLS when tls (--cafile, --url mqtts:// or wss://), WebSocket when ws */
    bool tls, ws, port_set;
    tls_opts_t tls_opts;
    const char *ws_path;
} opt = {
    .host = "127.0.0.1",
    .port = 1883,
    .clients = 1,
    .threads = 1,
    .payload = 64,
    .version = MQTT_V311,
    .duration = 10,
    .window = 100,
    .drain = 3,
    .setup_timeout = 20,
    .connect_window = 100,
};

/* ---- clients, groups and threads --------------------------------------------------- */

enum role { R_PUB, R_SUB, R_CONN };
enum cstate { CS_IDLE, CS_TCP, CS_XHS, CS_CONNACK, CS_SUBACK, CS_READY, CS_CLOSED, CS_FAILED };

/* A group of publishers and subscribers with one topology: the latency scenario has
 * two (the measured client and the flood), every other mode one. */
typedef struct group {
    const char *name;
    int npub, nsub;
    int qos;
    double rate; /* per publisher */
    int fanout;  /* copies of each message the subscribers of this process expect */
    uint32_t pub_base;
} group_t;

typedef struct client {
    int fd;
    xconn_t *x;      /* TLS/WebSocket layers; NULL on plain TCP */
    bool recycle;    /* handshake mode: CONNACK came, close and connect again */
    uint32_t cycles; /* handshake mode: connections completed */
    uint8_t state, role, group;
    bool want_write;
    bool done;    /* a publisher that reached its count limit, acknowledged */
    uint32_t idx; /* publisher id (global) or subscriber index in its group */
    char *topic;  /* publish topic or subscription filter */
    uint16_t topic_len;
    uint16_t recv_max;
    int64_t t_connect;
    /* publisher */
    uint64_t seq, written_off, last_rcvd, limit;
    uint32_t inflight;
    int64_t next_send, last_progress;
    /* subscriber: next expected sequence of publishers pub_base..pub_base+pub_count */
    uint32_t pub_base, pub_count;
    uint64_t *expect;
    /* buffers */
    uint8_t *in;
    size_t in_len, in_cap;
    bool in_busy; /* a read filled the buffer: read IN_CHUNK at a time from now on */
    uint8_t *out;
    size_t out_off, out_len, out_cap;
} client_t;

typedef struct gstats {
    _Atomic uint64_t sent, acked, rcvd;
    uint64_t dup, unexpected;
    hist_t lat; /* ns */
} gstats_t;

typedef struct thread {
    pthread_t tid;
    int id, epfd;
    client_t **clients;
    int n;
    int next_connect;
    int connecting;
    gstats_t gs[2];
    hist_t conn_lat;
    _Atomic uint64_t stalls;
    _Atomic uint64_t handshakes; /* handshake mode: CONNACKs during the run */
    uint8_t *payload;
} thread_t;

enum phase { P_SETUP, P_RUN, P_DRAIN, P_STOP };

static struct {
    group_t groups[2];
    int ngroups;
    int npub_total;
    client_t *clients;
    int nclients;
    thread_t threads[MAX_THREADS];
    _Atomic uint64_t *pub_rcvd; /* copies of each publisher's messages received here */
    _Atomic int phase;
    _Atomic int ready, failed, pubs_done, disconnected;
    _Atomic int64_t run_start, last_rcv, last_connack, first_connect;
    struct sockaddr_storage addr;
    socklen_t addrlen;
    double conn_interval_ns; /* conn mode pacing per thread, 0 = none */
    tls_ctx_t *tls;          /* shared by every connection when opt.tls */
    volatile sig_atomic_t interrupted;
} g;

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void die(const char *fmt, const char *arg)
{
    fprintf(stderr, "midge-bench: ");
    fprintf(stderr, fmt, arg);
    fputc('\n', stderr);
    exit(2);
}

/* The topic of pattern with each %i replaced by `i` (or by "+" when i < 0). */
static char *topic_for(const char *pattern, long i)
{
    char num[24];
    if (i < 0)
        snprintf(num, sizeof num, "+");
    else
        snprintf(num, sizeof num, "%ld", i);
    size_t n = 0, cap = strlen(pattern) * 24 + 1;
    char *t = malloc(cap);
    if (!t)
        die("%s", "out of memory");
    for (const char *p = pattern; *p; p++) {
        if (p[0] == '%' && p[1] == 'i') {
            memcpy(t + n, num, strlen(num));
            n += strlen(num);
            p++;
        } else {
            t[n++] = *p;
        }
    }
    t[n] = 0;
    return t;
}

/* ---- output ------------------------------------------------------------------------ */

static int out_reserve(client_t *c, size_t need)
{
    if (c->out_off && c->out_off == c->out_len)
        c->out_off = c->out_len = 0;
    if (c->out_cap - c->out_len >= need)
        return 0;
    if (c->out_off) {
        memmove(c->out, c->out + c->out_off, c->out_len - c->out_off);
        c->out_len -= c->out_off;
        c->out_off = 0;
        if (c->out_cap - c->out_len >= need)
            return 0;
    }
    size_t cap = c->out_cap ? c->out_cap : OUT_MIN;
    while (cap - c->out_len < need)
        cap *= 2;
    uint8_t *p = realloc(c->out, cap);
    if (!p)
        return -1;
    c->out = p;
    c->out_cap = cap;
    return 0;
}

/* Every encoder sizes itself when cap is too small: encode, grow, encode again. */
#define OUT_ENCODE(c, call_with_buf_cap)                                                           \
    do {                                                                                           \
        if (!(c)->out && out_reserve((c), 4096) < 0)                                               \
            return -1;                                                                             \
        uint8_t *buf = (c)->out + (c)->out_len;                                                    \
        size_t cap = (c)->out_cap - (c)->out_len;                                                  \
        size_t need = (call_with_buf_cap);                                                         \
        if (need > cap) {                                                                          \
            if (out_reserve((c), need) < 0)                                                        \
                return -1;                                                                         \
            buf = (c)->out + (c)->out_len;                                                         \
            cap = (c)->out_cap - (c)->out_len;                                                     \
            need = (call_with_buf_cap);                                                            \
        }                                                                                          \
        if (need == 0 || need > cap)                                                               \
            return -1;                                                                             \
        (c)->out_len += need;                                                                      \
    } while (0)

static void client_close(thread_t *t, client_t *c, int state);

static void set_events(thread_t *t, client_t *c, bool want_write)
{
    if (c->want_write == want_write)
        return;
    struct epoll_event ev = {.events = EPOLLIN | (want_write ? EPOLLOUT : 0), .data.ptr = c};
    epoll_ctl(t->epfd, EPOLL_CTL_MOD, c->fd, &ev);
    c->want_write = want_write;
}

/* Bytes not yet written to the socket, encoded or not. */
static size_t unsent(const client_t *c)
{
    return c->out_len - c->out_off + (c->x ? xconn_pending(c->x) : 0);
}

/* Through the TLS/WebSocket layers: they take everything and hold what the socket cannot. */
static int client_flush_layers(thread_t *t, client_t *c)
{
    if (c->out_off < c->out_len &&
        xconn_output(c->x, c->out + c->out_off, c->out_len - c->out_off) < 0)
        return -1;
    c->out_off = c->out_len = 0;
    if (xconn_flush(c->x, c->fd) < 0)
        return -1;
    set_events(t, c, xconn_pending(c->x) > 0);
    return 0;
}

/* Write what is pending; -1 when the connection is gone. */
static int client_flush(thread_t *t, client_t *c)
{
    if (c->x)
        return client_flush_layers(t, c);
    while (c->out_off < c->out_len) {
        ssize_t w = send(c->fd, c->out + c->out_off, c->out_len - c->out_off, MSG_NOSIGNAL);
        if (w > 0) {
            c->out_off += (size_t)w;
        } else if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            set_events(t, c, true);
            return 0;
        } else if (w < 0 && errno == EINTR) {
            continue;
        } else {
            return -1;
        }
    }
    c->out_off = c->out_len = 0;
    set_events(t, c, false);
    return 0;
}

static int send_connect(client_t *c, int idx)
{
    char id[64];
    int n = snprintf(id, sizeof id, "bench-%d-%c%d", (int)getpid(),
                     c->role == R_PUB   ? 'p'
                     : c->role == R_SUB ? 's'
                                        : 'c',
                     idx);
    mqtt_connect_t cp;
    memset(&cp, 0, sizeof cp);
    cp.version = (uint8_t)opt.version;
    cp.clean_start = !(opt.persistent && c->role == R_SUB);
    cp.keep_alive = 300;
    cp.client_id = (mqtt_str_t){(const uint8_t *)id, (uint32_t)n};
    mqtt_props_init(&cp.props);
    mqtt_props_init(&cp.will.props);
    if (!cp.clean_start && opt.version >= MQTT_V5) {
        cp.props.session_expiry_interval = 300;
        MQTT_PROP_SET(&cp.props, MQTT_PROP_SESSION_EXPIRY_INTERVAL);
    }
    if (c->role != R_CONN && opt.version >= MQTT_V5) {
        cp.props.receive_maximum = 65535;
        MQTT_PROP_SET(&cp.props, MQTT_PROP_RECEIVE_MAXIMUM);
    }
    OUT_ENCODE(c, mqtt_connect_encode(buf, cap, &cp));
    return 0;
}

static int send_subscribe(client_t *c)
{
    mqtt_sub_entry_t e = {.filter = {(const uint8_t *)c->topic, c->topic_len},
                          .qos = (uint8_t)g.groups[c->group].qos};
    OUT_ENCODE(c, mqtt_subscribe_encode(buf, cap, (uint8_t)opt.version, 1, NULL, &e, 1));
    return 0;
}

static int send_ack(client_t *c, uint8_t type, uint16_t id)
{
    OUT_ENCODE(c, mqtt_ack_encode(buf, cap, (uint8_t)opt.version, type, id, 0, NULL));
    return 0;
}

static int send_publish(thread_t *t, client_t *c, const group_t *gr, int64_t now)
{
    uint8_t *p = t->payload;
    uint32_t magic = BENCH_MAGIC, id = c->idx;
    uint64_t seq = c->seq, ts = (uint64_t)now;
    memcpy(p, &magic, 4);
    memcpy(p + 4, &id, 4);
    memcpy(p + 8, &seq, 8);
    memcpy(p + 16, &ts, 8);
    mqtt_publish_t pub;
    memset(&pub, 0, sizeof pub);
    pub.qos = (uint8_t)gr->qos;
    pub.topic = (mqtt_str_t){(const uint8_t *)c->topic, c->topic_len};
    /* Packet ids cycle through 1..65535; the window (at most 32768) keeps them unique. */
    pub.packet_id = gr->qos ? (uint16_t)(c->seq % 65535 + 1) : 0;
    mqtt_props_init(&pub.props);
    pub.payload = (mqtt_bin_t){p, (uint32_t)opt.payload};
    OUT_ENCODE(c, mqtt_publish_encode(buf, cap, (uint8_t)opt.version, &pub));
    c->seq++;
    if (gr->qos)
        c->inflight++;
    atomic_fetch_add_explicit(&t->gs[c->group].sent, 1, memory_order_relaxed);
    return 0;
}

/* ---- publishing: rate, window and count limit -------------------------------------- */

/* May c publish one more message now? */
static bool pub_credit(thread_t *t, client_t *c, const group_t *gr, int64_t now)
{
    if (c->limit && c->seq >= c->limit)
        return false;
    if (unsent(c) >= OUT_HIGH)
        return false;
    if (gr->qos && c->inflight >= (uint32_t)opt.window)
        return false;
    if (gr->qos && c->inflight >= c->recv_max)
        return false;
    if (gr->fanout == 0)
        return true;
    /* End to end: no more than `window` messages between publishing and arriving at the
     * subscribers of this process, so a broker's queue limits never drop what we send.
     * Gaps in the sequence count as arrived (on_message); a message that never arrives
     * and is followed by none is written off after half a second. */
    uint64_t rcvd = atomic_load_explicit(&g.pub_rcvd[c->idx], memory_order_relaxed);
    uint64_t arrived = rcvd / (uint64_t)gr->fanout + c->written_off;
    if (rcvd != c->last_rcvd) {
        c->last_rcvd = rcvd;
        c->last_progress = now;
    }
    if (c->seq < arrived + (uint64_t)opt.window)
        return true;
    if (now - c->last_progress > 500000000) {
        c->written_off = c->seq - rcvd / (uint64_t)gr->fanout;
        c->last_progress = now;
        atomic_fetch_add_explicit(&t->stalls, 1, memory_order_relaxed);
        return true;
    }
    return false;
}

/* Publish what c may publish now, at most a batch, then write it at once. Returns the
 * nanoseconds until c next wants to send (INT64_MAX: not time-driven; 1 ms: blocked on
 * other threads' progress), or -1 when the connection failed. */
static int64_t pub_pump(thread_t *t, client_t *c, int64_t now)
{
    const group_t *gr = &g.groups[c->group];
    int64_t wait = INT64_MAX;
    int batch = 64;
    while (batch-- > 0) {
        if (gr->rate > 0 && now < c->next_send) {
            wait = c->next_send - now;
            break;
        }
        if (!pub_credit(t, c, gr, now)) {
            if (!(c->limit && c->seq >= c->limit))
                wait = 1000000;
            break;
        }
        if (send_publish(t, c, gr, now) < 0)
            return -1;
        if (gr->rate > 0) {
            c->next_send += (int64_t)(1e9 / gr->rate);
            /* After a stall, resume the rate instead of bursting to catch up. */
            if (now - c->next_send > 1000000000)
                c->next_send = now;
        }
    }
    if (batch < 0)
        wait = 0;
    if (c->limit && c->seq >= c->limit && c->inflight == 0 && !c->done) {
        c->done = true;
        atomic_fetch_add(&g.pubs_done, 1);
    }
    if (client_flush(t, c) < 0)
        return -1;
    return wait;
}

/* ---- input ------------------------------------------------------------------------- */

static void on_message(thread_t *t, client_t *c, const mqtt_publish_t *pub, int64_t now)
{
    gstats_t *gs = &t->gs[c->group];
    atomic_fetch_add_explicit(&gs->rcvd, 1, memory_order_relaxed);
    atomic_store_explicit(&g.last_rcv, now, memory_order_relaxed);
    uint32_t magic, id;
    uint64_t seq, ts;
    if (pub->payload.n < BENCH_HDR) {
        gs->unexpected++;
        return;
    }
    memcpy(&magic, pub->payload.p, 4);
    memcpy(&id, pub->payload.p + 4, 4);
    memcpy(&seq, pub->payload.p + 8, 8);
    memcpy(&ts, pub->payload.p + 16, 8);
    if (magic != BENCH_MAGIC) {
        gs->unexpected++;
        return;
    }
    if ((int64_t)ts <= now)
        hist_add(&gs->lat, (uint64_t)(now - (int64_t)ts));
    if (opt.mode == M_SUB && id >= c->pub_count && id < (1u << 20)) {
        /* External publishers: grow the table as their ids appear. */
        uint32_t n = id + 1 > c->pub_count * 2 ? id + 1 : c->pub_count * 2;
        uint64_t *e = realloc(c->expect, n * sizeof *e);
        if (e) {
            memset(e + c->pub_count, 0, (n - c->pub_count) * sizeof *e);
            c->expect = e;
            c->pub_count = n;
        }
    }
    if (id < c->pub_base || id - c->pub_base >= c->pub_count) {
        gs->unexpected++;
        return;
    }
    uint64_t *next = &c->expect[id - c->pub_base];
    /* Delivery is in order per publisher, so a gap is loss: credit the missing messages
     * to the publisher's end-to-end window at once instead of waiting for a stall. */
    uint64_t accounted = 1 + (seq > *next ? seq - *next : 0);
    if ((int)id < g.npub_total)
        atomic_fetch_add_explicit(&g.pub_rcvd[id], accounted, memory_order_relaxed);
    if (seq < *next)
        gs->dup++; /* a sequence number seen already (or arriving out of order) */
    else
        *next = seq + 1;
}

/* Handle one whole packet; -1 closes the connection. */
static int on_packet(thread_t *t, client_t *c, const mqtt_frame_t *f, const uint8_t *body,
                     int64_t now)
{
    mqtt_error_t err;
    uint8_t v = (uint8_t)opt.version;
    switch (f->type) {
    case MQTT_CONNACK: {
        mqtt_connack_t a;
        if (c->state != CS_CONNACK || mqtt_connack_decode(v, body, f->remaining, &a, &err) != 0 ||
            a.code != 0)
            return -1;
        if (v >= MQTT_V5 && MQTT_PROP_HAS(&a.props, MQTT_PROP_RECEIVE_MAXIMUM))
            c->recv_max = a.props.receive_maximum;
        t->connecting--;
        atomic_store(&g.last_connack, now);
        if (opt.mode == M_HANDSHAKE) {
            c->recycle = true;
            if (atomic_load(&g.phase) == P_RUN) {
                hist_add(&t->conn_lat, (uint64_t)(now - c->t_connect));
                atomic_fetch_add_explicit(&t->handshakes, 1, memory_order_relaxed);
            }
            if (c->cycles++ > 0) {
                c->state = CS_READY; /* counted as ready at its first CONNACK only */
                return 0;
            }
        } else if (c->role == R_CONN) {
            hist_add(&t->conn_lat, (uint64_t)(now - c->t_connect));
        }
        if (c->role == R_SUB) {
            c->state = CS_SUBACK;
            return send_subscribe(c);
        }
        c->state = CS_READY;
        atomic_fetch_add(&g.ready, 1);
        return 0;
    }
    case MQTT_SUBACK: {
        mqtt_suback_t a;
        if (c->state != CS_SUBACK ||
            mqtt_suback_decode(v, MQTT_SUBACK, body, f->remaining, &a, &err) != 0 ||
            a.codes.n < 1 || a.codes.p[0] >= 0x80)
            return -1;
        c->state = CS_READY;
        atomic_fetch_add(&g.ready, 1);
        return 0;
    }
    case MQTT_PUBLISH: {
        mqtt_publish_t pub;
        if (mqtt_publish_decode(v, f->flags, body, f->remaining, &pub, &err) != 0)
            return -1;
        on_message(t, c, &pub, now);
        if (pub.qos == 1)
            return send_ack(c, MQTT_PUBACK, pub.packet_id);
        if (pub.qos == 2)
            return send_ack(c, MQTT_PUBREC, pub.packet_id);
        return 0;
    }
    case MQTT_PUBREL: {
        mqtt_ack_t a;
        if (mqtt_ack_decode(v, f->type, body, f->remaining, &a, &err) != 0)
            return -1;
        return send_ack(c, MQTT_PUBCOMP, a.packet_id);
    }
    case MQTT_PUBREC: {
        mqtt_ack_t a;
        if (mqtt_ack_decode(v, f->type, body, f->remaining, &a, &err) != 0 || a.reason >= 0x80)
            return -1;
        return send_ack(c, MQTT_PUBREL, a.packet_id);
    }
    case MQTT_PUBACK:
    case MQTT_PUBCOMP: {
        mqtt_ack_t a;
        if (mqtt_ack_decode(v, f->type, body, f->remaining, &a, &err) != 0 || a.reason >= 0x80)
            return -1;
        if (c->inflight)
            c->inflight--;
        atomic_fetch_add_explicit(&t->gs[c->group].acked, 1, memory_order_relaxed);
        return 0;
    }
    case MQTT_PINGRESP:
        return 0;
    default:
        return -1; /* DISCONNECT from the server, or anything a client never gets */
    }
}

/* Read from the socket through the TLS/WebSocket layers and append the MQTT bytes to c->in
 * (growing c->in as needed). Returns what recv() returned: the socket
 * bytes read, 0 at end of stream, -1 with errno. */
static ssize_t recv_layers(client_t *c)
{
    uint8_t buf[IN_CHUNK];
    ssize_t r = recv(c->fd, buf, sizeof buf, 0);
    if (r <= 0)
        return r;
    xbuf_t *app = xconn_app(c->x);
    if (xconn_input(c->x, buf, (size_t)r) < 0) {
        errno = EPROTO;
        return -1;
    }
    size_t n = xbuf_size(app);
    if (n > c->in_cap - c->in_len) {
        size_t cap = c->in_cap;
        while (cap - c->in_len < n)
            cap *= 2;
        uint8_t *p = realloc(c->in, cap);
        if (!p)
            return -1;
        c->in = p;
        c->in_cap = cap;
    }
    if (n)
        memcpy(c->in + c->in_len, xbuf_data(app), n);
    c->in_len += n;
    xbuf_consume(app, n);
    return r;
}

/* Read what is waiting (up to a budget, for fairness between clients) and handle every
 * whole packet in it. */
static int client_read(thread_t *t, client_t *c)
{
    int64_t now = now_ns();
    for (int round = 0; round < 4; round++) {
        size_t want = c->in_busy ? IN_CHUNK : IN_MIN;
        if (c->in_cap - c->in_len < want) {
            size_t cap = c->in_cap ? c->in_cap : want;
            while (cap - c->in_len < want)
                cap *= 2;
            uint8_t *p = realloc(c->in, cap);
            if (!p)
                return -1;
            c->in = p;
            c->in_cap = cap;
        }
        size_t room = c->x ? IN_CHUNK : c->in_cap - c->in_len;
        ssize_t r = c->x ? recv_layers(c) : recv(c->fd, c->in + c->in_len, room, 0);
        if (r == 0)
            return -1;
        if (r < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                break;
            if (errno == EINTR)
                continue;
            return -1;
        }
        if (!c->x)
            c->in_len += (size_t)r;
        if (c->x && c->state == CS_XHS && xconn_ready(c->x)) {
            /* TLS handshake and WebSocket upgrade done: now MQTT. */
            c->state = CS_CONNACK;
            if (send_connect(c, (int)(c - g.clients)) < 0)
                return -1;
        }
        size_t off = 0;
        for (;;) {
            mqtt_frame_t f;
            mqtt_error_t err;
            int rc = mqtt_frame_decode(c->in + off, c->in_len - off, &f, &err);
            if (rc == MQTT_INCOMPLETE)
                break;
            if (rc != MQTT_OK)
                return -1;
            size_t total = (size_t)f.header_len + f.remaining;
            if (c->in_len - off < total)
                break;
            if (on_packet(t, c, &f, c->in + off + f.header_len, now) < 0)
                return -1;
            off += total;
        }
        if (off) {
            memmove(c->in, c->in + off, c->in_len - off);
            c->in_len -= off;
        }
        if ((size_t)r < room)
            break;
        c->in_busy = true;
    }
    return client_flush(t, c);
}

/* ---- connection setup -------------------------------------------------------------- */

/* Close the socket and drop the layers. */
static void client_drop(thread_t *t, client_t *c)
{
    if (c->fd >= 0) {
        epoll_ctl(t->epfd, EPOLL_CTL_DEL, c->fd, NULL);
        close(c->fd);
        c->fd = -1;
    }
    xconn_free(c->x);
    c->x = NULL;
    c->in_len = c->out_off = c->out_len = 0;
    c->want_write = false;
}

static void client_close(thread_t *t, client_t *c, int state)
{
    client_drop(t, c);
    if (c->state == CS_READY && atomic_load(&g.phase) != P_STOP)
        atomic_fetch_add(&g.disconnected, 1); /* the broker closed it, or an error */
    if (c->state != CS_READY && c->state != CS_CLOSED && c->state != CS_FAILED) {
        if (c->state == CS_TCP || c->state == CS_XHS || c->state == CS_CONNACK)
            t->connecting--;
        atomic_fetch_add(&g.failed, 1);
        state = CS_FAILED;
    }
    c->state = (uint8_t)state;
}

static void client_start(thread_t *t, client_t *c)
{
    int64_t now = now_ns();
    int64_t zero = 0;
    atomic_compare_exchange_strong(&g.first_connect, &zero, now);
    c->t_connect = now;
    c->state = CS_TCP;
    t->connecting++;
    c->fd = socket(g.addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (c->fd < 0) {
        client_close(t, c, CS_FAILED);
        return;
    }
    int one = 1;
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (opt.tls || opt.ws) {
        c->x = xconn_new(g.tls, opt.ws ? (opt.ws_path ? opt.ws_path : "/mqtt") : NULL, opt.host,
                         (uint16_t)opt.port);
        if (!c->x) {
            client_close(t, c, CS_FAILED);
            return;
        }
    }
    if (connect(c->fd, (struct sockaddr *)&g.addr, g.addrlen) < 0 && errno != EINPROGRESS) {
        client_close(t, c, CS_FAILED);
        return;
    }
    struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT, .data.ptr = c};
    c->want_write = true;
    if (epoll_ctl(t->epfd, EPOLL_CTL_ADD, c->fd, &ev) < 0)
        client_close(t, c, CS_FAILED);
}

/* Handshake mode: the connection is complete; say goodbye (DISCONNECT, then close_notify
 * or a close frame) and open the next one while the run lasts. */
static void client_recycle(thread_t *t, client_t *c)
{
    c->recycle = false;
    uint8_t d[8];
    size_t n = mqtt_disconnect_encode(d, sizeof d, (uint8_t)opt.version, 0, NULL);
    if (out_reserve(c, n) == 0) {
        memcpy(c->out + c->out_len, d, n);
        c->out_len += n;
        if (c->x && client_flush(t, c) == 0)
            xconn_shutdown(c->x);
        client_flush(t, c); /* best effort: the socket closes right after */
    }
    client_drop(t, c);
    int phase = atomic_load(&g.phase);
    if (phase == P_SETUP || phase == P_RUN)
        client_start(t, c);
    else
        c->state = CS_CLOSED;
}

static void client_event(thread_t *t, client_t *c, uint32_t ev)
{
    if (c->state == CS_TCP) {
        int err = 0;
        socklen_t len = sizeof err;
        if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0 || err) {
            client_close(t, c, CS_FAILED);
            return;
        }
        if (!(ev & (EPOLLOUT | EPOLLIN)))
            return;
        /* Connected. With layers, their first bytes (ClientHello, upgrade request) go
         * first; CONNECT follows once they are ready (client_read). */
        c->state = c->x ? CS_XHS : CS_CONNACK;
        if ((!c->x && send_connect(c, (int)(c - g.clients)) < 0) || client_flush(t, c) < 0)
            client_close(t, c, CS_FAILED);
        return;
    }
    if ((ev & EPOLLOUT) && client_flush(t, c) < 0) {
        client_close(t, c, CS_CLOSED);
        return;
    }
    if ((ev & (EPOLLIN | EPOLLHUP | EPOLLERR)) && client_read(t, c) < 0) {
        client_close(t, c, CS_CLOSED);
        return;
    }
    if (c->recycle)
        client_recycle(t, c);
}

/* ---- the thread -------------------------------------------------------------------- */

static void *thread_main(void *arg)
{
    thread_t *t = arg;
    int64_t next_ping = now_ns() + 60 * 1000000000ll;
    int64_t next_conn = now_ns();
    struct epoll_event evs[256];
    for (;;) {
        int phase = atomic_load(&g.phase);
        if (phase == P_STOP)
            break;
        int64_t now = now_ns();
        int64_t wait = 100000000; /* every loop has a timeout: 100 ms at most */
        /* Open connections, at most connect_window at a time per thread. */
        while (t->next_connect < t->n && t->connecting < opt.connect_window) {
            if (g.conn_interval_ns > 0 && now < next_conn) {
                if (next_conn - now < wait)
                    wait = next_conn - now;
                break;
            }
            client_start(t, t->clients[t->next_connect++]);
            next_conn += (int64_t)g.conn_interval_ns;
            if (g.conn_interval_ns > 0 && now - next_conn > 1000000000)
                next_conn = now;
        }
        if (phase == P_RUN || phase == P_DRAIN) {
            for (int i = 0; i < t->n; i++) {
                client_t *c = t->clients[i];
                if (c->role != R_PUB || c->state != CS_READY)
                    continue;
                if (phase == P_DRAIN) {
                    /* Publishers stop; they still flush what is queued. */
                    c->limit = c->seq;
                    if (unsent(c) && client_flush(t, c) < 0)
                        client_close(t, c, CS_CLOSED);
                    continue;
                }
                if (c->next_send == 0) {
                    int64_t start = atomic_load(&g.run_start);
                    const group_t *gr = &g.groups[c->group];
                    /* Spread rated publishers over one interval. */
                    c->next_send = start + (gr->rate > 0 ? (int64_t)(1e9 / gr->rate) *
                                                               (c->idx - gr->pub_base) /
                                                               (gr->npub ? gr->npub : 1)
                                                         : 0);
                    c->last_progress = now;
                }
                int64_t w = pub_pump(t, c, now);
                if (w < 0)
                    client_close(t, c, CS_CLOSED);
                else if (w < wait)
                    wait = w;
            }
        }
        if (now >= next_ping) {
            for (int i = 0; i < t->n; i++) {
                client_t *c = t->clients[i];
                if (c->state != CS_READY)
                    continue;
                uint8_t *buf;
                if (out_reserve(c, 2) == 0) {
                    buf = c->out + c->out_len;
                    c->out_len += mqtt_empty_encode(buf, 2, MQTT_PINGREQ);
                    if (client_flush(t, c) < 0)
                        client_close(t, c, CS_CLOSED);
                }
            }
            next_ping = now + 60 * 1000000000ll;
        }
        struct timespec ts = {.tv_sec = wait / 1000000000, .tv_nsec = wait % 1000000000};
        int n = epoll_pwait2(t->epfd, evs, 256, &ts, NULL);
        if (n < 0 && errno == ENOSYS)
            n = epoll_wait(t->epfd, evs, 256, (int)((wait + 999999) / 1000000));
        for (int i = 0; i < n; i++)
            client_event(t, evs[i].data.ptr, evs[i].events);
    }
    /* Say goodbye: DISCONNECT, then close. */
    for (int i = 0; i < t->n; i++) {
        client_t *c = t->clients[i];
        if (c->state == CS_READY && c->fd >= 0) {
            uint8_t d[8];
            size_t n = mqtt_disconnect_encode(d, sizeof d, (uint8_t)opt.version, 0, NULL);
            if (n <= sizeof d && out_reserve(c, n) == 0) {
                memcpy(c->out + c->out_len, d, n);
                c->out_len += n;
                if (client_flush(t, c) == 0 && c->x) {
                    xconn_shutdown(c->x);
                    client_flush(t, c);
                } /* else the broker went first: nothing to do */
            }
        }
        client_close(t, c, CS_CLOSED);
    }
    return NULL;
}

/* ---- scenario setup ---------------------------------------------------------------- */

static client_t *add_client(int role, int group, uint32_t idx, char *topic)
{
    client_t *c = &g.clients[g.nclients++];
    memset(c, 0, sizeof *c);
    c->fd = -1;
    c->role = (uint8_t)role;
    c->group = (uint8_t)group;
    c->idx = idx;
    c->topic = topic;
    c->topic_len = topic ? (uint16_t)strlen(topic) : 0;
    c->recv_max = 65535;
    /* The buffers every client needs, allocated and touched now, in the setup: their page
     * faults would otherwise land in the connect phase and be counted as connect time. */
    c->in = malloc(IN_MIN);
    c->out = malloc(OUT_MIN);
    if (!c->in || !c->out)
        die("%s", "out of memory");
    memset(c->in, 0, IN_MIN);
    memset(c->out, 0, OUT_MIN);
    c->in_cap = IN_MIN;
    c->out_cap = OUT_MIN;
    return c;
}

static void sub_expect(client_t *c, uint32_t base, uint32_t count)
{
    c->pub_base = base;
    c->pub_count = count;
    c->expect = calloc(count ? count : 1, sizeof *c->expect);
    if (!c->expect)
        die("%s", "out of memory");
}

/* Topic of publisher i in a group: the pattern's %i is the index within the group. */
/* Modes with connections only, no messages: conn and handshake. */
static bool conn_only(void)
{
    return opt.mode == M_CONN || opt.mode == M_HANDSHAKE;
}

static void build_scenario(void)
{
    int n = opt.clients;
    double rate = opt.rate;
    int total = 0;
    group_t *g0 = &g.groups[0];
    g0->name = mode_names[opt.mode];
    g0->qos = opt.qos;
    switch (opt.mode) {
    case M_PUB:
        g0->npub = n;
        break;
    case M_SUB:
        g0->nsub = n;
        break;
    case M_CONN:
    case M_HANDSHAKE:
        break;
    case M_FANIN:
        g0->npub = n;
        g0->nsub = 1;
        g0->fanout = 1;
        break;
    case M_FANOUT:
        g0->npub = 1;
        g0->nsub = n;
        g0->fanout = n;
        break;
    case M_PAIRS:
        g0->npub = n;
        g0->nsub = n;
        g0->fanout = 1;
        break;
    case M_LATENCY:
        g0->npub = 1;
        g0->nsub = 1;
        g0->fanout = 1;
        if (rate <= 0 && opt.rate_total <= 0)
            rate = 1000;
        break;
    }
    if (opt.rate_total > 0 && g0->npub)
        rate = opt.rate_total / g0->npub;
    g0->rate = rate;
    g.ngroups = 1;
    if (opt.mode == M_LATENCY && opt.flood > 0) {
        group_t *g1 = &g.groups[1];
        g1->name = "flood";
        g1->npub = g1->nsub = opt.flood;
        g1->qos = opt.flood_qos;
        g1->fanout = 1;
        g1->pub_base = 1;
        g.ngroups = 2;
    }
    for (int i = 0; i < g.ngroups; i++)
        total += g.groups[i].npub + g.groups[i].nsub;
    if (conn_only())
        total = n;
    g.npub_total = g0->npub + (g.ngroups > 1 ? g.groups[1].npub : 0);
    g.clients = calloc((size_t)total, sizeof *g.clients);
    g.pub_rcvd = calloc((size_t)(g.npub_total ? g.npub_total : 1), sizeof *g.pub_rcvd);
    if (!g.clients || !g.pub_rcvd)
        die("%s", "out of memory");
    if (conn_only()) {
        for (int i = 0; i < n; i++)
            add_client(R_CONN, 0, (uint32_t)i, NULL);
        return;
    }
    /* Subscribers first: they must be subscribed before anything is published. */
    for (int gi = 0; gi < g.ngroups; gi++) {
        group_t *gr = &g.groups[gi];
        const char *pattern = gi == 0 ? opt.topic : "bench/flood/%i";
        if (gi == 0 && !pattern)
            pattern = opt.mode == M_SUB       ? "bench/#"
                      : opt.mode == M_LATENCY ? "bench/lat/%i"
                                              : "bench/%i";
        for (int i = 0; i < gr->nsub; i++) {
            char *filter;
            client_t *c;
            switch (opt.mode) {
            case M_FANIN:
                filter = topic_for(pattern, -1);
                c = add_client(R_SUB, gi, (uint32_t)i, filter);
                sub_expect(c, gr->pub_base, (uint32_t)gr->npub);
                break;
            case M_FANOUT:
                filter = topic_for(pattern, 0);
                c = add_client(R_SUB, gi, (uint32_t)i, filter);
                sub_expect(c, gr->pub_base, 1);
                break;
            case M_SUB:
                filter = topic_for(pattern, i);
                c = add_client(R_SUB, gi, (uint32_t)i, filter);
                sub_expect(c, 0, 16);
                break;
            default: /* pairs, latency, flood: subscriber i listens to publisher i */
                filter = topic_for(pattern, i);
                c = add_client(R_SUB, gi, (uint32_t)i, filter);
                sub_expect(c, gr->pub_base + (uint32_t)i, 1);
                break;
            }
        }
        for (int i = 0; i < gr->npub; i++) {
            client_t *c = add_client(R_PUB, gi, gr->pub_base + (uint32_t)i, topic_for(pattern, i));
            c->limit = opt.count;
        }
    }
}

/* ---- the broker's CPU and memory, when --broker-pid is given ------------------------- */

/* The broker's CPU time in clock ticks (10 ms) from /proc/PID/stat. */
static double proc_stat_cpu_s(int pid)
{
    char path[64], buf[2048];
    snprintf(path, sizeof path, "/proc/%d/stat", pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    char *p = strrchr(buf, ')');
    if (!p)
        return -1;
    unsigned long ut = 0, st = 0;
    /* Fields after the command: state(3) ... utime(14) stime(15). */
    if (sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &st) != 2)
        return -1;
    return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

/* The broker's CPU time to the nanosecond: the sum of its threads' run time in
 * /proc/PID/task/TID/schedstat. A quiet client's run costs the broker some 20 clock ticks,
 * too coarse to compare two brokers by. A thread that ends during the run takes its time
 * with it, so this is for brokers whose threads live as long as they do (both do); without
 * schedstat (a kernel without CONFIG_SCHED_INFO) the clock ticks are used. */
static double proc_cpu_s(int pid)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/task", pid);
    DIR *d = opendir(path);
    if (!d)
        return -1;
    unsigned long long ns = 0;
    bool ok = true;
    struct dirent *e;
    while (ok && (e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        char file[320];
        snprintf(file, sizeof file, "/proc/%d/task/%s/schedstat", pid, e->d_name);
        FILE *f = fopen(file, "r");
        unsigned long long run = 0;
        ok = f && fscanf(f, "%llu", &run) == 1;
        if (f)
            fclose(f);
        ns += run;
    }
    closedir(d);
    return ok ? (double)ns / 1e9 : proc_stat_cpu_s(pid);
}

static long proc_hwm_kb(int pid)
{
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%d/status", pid);
    FILE *f = fopen(path, "r");
    long kb = -1;
    if (!f)
        return -1;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "VmHWM: %ld kB", &kb) == 1)
            break;
    fclose(f);
    return kb;
}

static double self_cpu_s(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + (double)ru.ru_stime.tv_sec +
           ru.ru_stime.tv_usec / 1e6;
}

/* ---- options ----------------------------------------------------------------------- */

static void usage(FILE *f)
{
    fprintf(f, "usage: midge-bench MODE [options]\n"
               "modes: pub sub conn fan-in fan-out pairs latency handshake\n"
               "  -h, --host HOST      127.0.0.1 (default), ::1 or localhost: loopback only\n"
               "  -p, --port PORT      default 1883\n"
               "  -c, --clients N      publishers (pub, fan-in), subscribers (sub, fan-out),\n"
               "                       pairs (pairs), connections (conn); default 1\n"
               "  -T, --threads N      I/O threads, default 1\n"
               "  -r, --rate R         msgs/s per publisher (conn: connections/s); 0 = as fast\n"
               "                       as the in-flight window allows (latency default 1000)\n"
               "  -R, --rate-total R   msgs/s over all publishers\n"
               "  -s, --size BYTES     payload size, at least 24, default 64\n"
               "  -q, --qos 0|1|2      default 0\n"
               "  -t, --topic PATTERN  %%i is the client index (fan-in subscribes to %%i -> +)\n"
               "  -d, --duration S     seconds of publishing (conn: seconds to hold), default 10\n"
               "  -n, --count N        messages per publisher, then stop (0: no limit)\n"
               "  -V, --version 3.1.1|5  MQTT version, default 3.1.1\n"
               "  -w, --window N       in-flight messages per publisher, default 100\n"
               "      --flood N        latency: N publisher/subscriber pairs flooding beside\n"
               "      --flood-qos Q    QoS of the flood, default 0\n"
               "      --persistent     subscribers keep their sessions (clean session 0;\n"
               "                       5.0: session expiry 300 s), as a durable store sees them\n"
               "      --drain S        seconds to wait for stragglers after publishing, default 3\n"
               "      --broker-pid PID report that process's CPU time and peak RSS\n"
               "      --json           print one JSON object with the results on stdout\n"
               "      --quiet          no progress line\n"
               "transport (every mode; the broker's own TLS and WebSocket layers):\n"
               "  -L, --url URL        mqtt|mqtts|ws|wss://HOST[:PORT][/PATH]: transport, host\n"
               "                       and port (1883, 8883, 80, 443); PATH: WebSocket path\n"
               "      --cafile FILE    TLS, trusting FILE (port 8883 unless -p); with --url\n"
               "                       mqtts:// or wss:// and no --cafile: the system's CAs\n"
               "      --cert FILE --key FILE  client certificate\n"
               "      --insecure       do not check the certificate's host name\n"
               "      --tls-version V  minimum: tlsv1.2 or tlsv1.3\n"
               "      --ws             MQTT over WebSocket (--ws-path PATH, default /mqtt)\n"
               "handshake mode: -c connections each connect (TCP, TLS, WebSocket, CONNECT),\n"
               "  get CONNACK, disconnect and connect again for -d s: handshakes per second\n");
}

static double num_arg(const char *s, const char *name)
{
    char *end;
    double v = strtod(s, &end);
    if (*s == 0 || *end != 0 || v < 0)
        die("bad number for %s", name);
    return v;
}

/* --url mqtt|mqtts|ws|wss://HOST[:PORT][/PATH]: transport, host and port at once (the
 * default ports of the schemes: 1883, 8883, 80, 443; PATH is the WebSocket path). */
static void parse_url(const char *url)
{
    static const struct {
        const char *prefix;
        bool tls, ws;
        int port;
    } schemes[] = {{"mqtt://", false, false, 1883},
                   {"mqtts://", true, false, 8883},
                   {"ws://", false, true, 80},
                   {"wss://", true, true, 443}};
    size_t i;
    for (i = 0; i < sizeof schemes / sizeof *schemes; i++)
        if (strncmp(url, schemes[i].prefix, strlen(schemes[i].prefix)) == 0)
            break;
    if (i == sizeof schemes / sizeof *schemes)
        die("bad --url '%s' (mqtt://, mqtts://, ws:// or wss://HOST[:PORT])", url);
    opt.tls = schemes[i].tls;
    opt.ws = schemes[i].ws;
    opt.port = schemes[i].port;
    opt.port_set = true;
    char *host = strdup(url + strlen(schemes[i].prefix)); /* lives as long as the run */
    if (!host)
        die("%s", "out of memory");
    char *slash = strchr(host, '/');
    if (slash) {
        opt.ws_path = strdup(slash);
        *slash = 0;
    }
    char *colon = strrchr(host, ':');
    if (colon && !strchr(colon, ']')) {
        *colon = 0;
        opt.port = (int)num_arg(colon + 1, "--url port");
    }
    if (host[0] == '[' && host[strlen(host) - 1] == ']') {
        host[strlen(host) - 1] = 0;
        host++;
    }
    opt.host = host;
}

static void parse_args(int argc, char **argv)
{
    static const struct option lo[] = {{"host", 1, 0, 'h'},
                                       {"port", 1, 0, 'p'},
                                       {"clients", 1, 0, 'c'},
                                       {"threads", 1, 0, 'T'},
                                       {"rate", 1, 0, 'r'},
                                       {"rate-total", 1, 0, 'R'},
                                       {"size", 1, 0, 's'},
                                       {"qos", 1, 0, 'q'},
                                       {"topic", 1, 0, 't'},
                                       {"duration", 1, 0, 'd'},
                                       {"count", 1, 0, 'n'},
                                       {"version", 1, 0, 'V'},
                                       {"window", 1, 0, 'w'},
                                       {"flood", 1, 0, 1},
                                       {"flood-qos", 1, 0, 2},
                                       {"drain", 1, 0, 3},
                                       {"broker-pid", 1, 0, 4},
                                       {"json", 0, 0, 5},
                                       {"quiet", 0, 0, 6},
                                       {"help", 0, 0, 7},
                                       {"cafile", 1, 0, 8},
                                       {"cert", 1, 0, 9},
                                       {"key", 1, 0, 10},
                                       {"insecure", 0, 0, 11},
                                       {"tls-version", 1, 0, 12},
                                       {"ws", 0, 0, 13},
                                       {"ws-path", 1, 0, 14},
                                       {"persistent", 0, 0, 15},
                                       {"url", 1, 0, 'L'},
                                       {0, 0, 0, 0}};
    if (argc < 2 || argv[1][0] == '-') {
        if (argc >= 2 && strcmp(argv[1], "--help") == 0) {
            usage(stdout);
            exit(0);
        }
        usage(stderr);
        exit(2);
    }
    int m;
    for (m = 0; m < (int)(sizeof mode_names / sizeof *mode_names); m++)
        if (strcmp(argv[1], mode_names[m]) == 0)
            break;
    if (m == (int)(sizeof mode_names / sizeof *mode_names)) {
        if (strcmp(argv[1], "connections") == 0)
            m = M_CONN;
        else
            die("unknown mode '%s' (pub sub conn fan-in fan-out pairs latency handshake)", argv[1]);
    }
    opt.mode = (enum mode)m;
    optind = 2;
    int o;
    while ((o = getopt_long(argc, argv, "h:p:c:T:r:R:s:q:t:d:n:V:w:L:", lo, NULL)) != -1) {
        switch (o) {
        case 'h':
            opt.host = optarg;
            break;
        case 'p':
            opt.port = (int)num_arg(optarg, "--port");
            opt.port_set = true;
            break;
        case 'L':
            parse_url(optarg);
            break;
        case 'c':
            opt.clients = (int)num_arg(optarg, "--clients");
            break;
        case 'T':
            opt.threads = (int)num_arg(optarg, "--threads");
            break;
        case 'r':
            opt.rate = num_arg(optarg, "--rate");
            break;
        case 'R':
            opt.rate_total = num_arg(optarg, "--rate-total");
            break;
        case 's':
            opt.payload = (int)num_arg(optarg, "--size");
            break;
        case 'q':
            opt.qos = (int)num_arg(optarg, "--qos");
            break;
        case 't':
            opt.topic = optarg;
            break;
        case 'd':
            opt.duration = num_arg(optarg, "--duration");
            opt.duration_set = true;
            break;
        case 'n':
            opt.count = (uint64_t)num_arg(optarg, "--count");
            break;
        case 'V':
            if (strcmp(optarg, "3.1.1") == 0 || strcmp(optarg, "4") == 0)
                opt.version = MQTT_V311;
            else if (strcmp(optarg, "5") == 0 || strcmp(optarg, "5.0") == 0)
                opt.version = MQTT_V5;
            else
                die("bad --version '%s' (3.1.1 or 5)", optarg);
            break;
        case 'w':
            opt.window = (int)num_arg(optarg, "--window");
            break;
        case 1:
            opt.flood = (int)num_arg(optarg, "--flood");
            break;
        case 2:
            opt.flood_qos = (int)num_arg(optarg, "--flood-qos");
            break;
        case 3:
            opt.drain = num_arg(optarg, "--drain");
            break;
        case 4:
            opt.broker_pid = (int)num_arg(optarg, "--broker-pid");
            break;
        case 5:
            opt.json = true;
            break;
        case 6:
            opt.quiet = true;
            break;
        case 7:
            usage(stdout);
            exit(0);
        case 8:
            opt.tls_opts.cafile = optarg;
            opt.tls = true;
            break;
        case 9:
            opt.tls_opts.certfile = optarg;
            break;
        case 10:
            opt.tls_opts.keyfile = optarg;
            break;
        case 11:
            opt.tls_opts.insecure = true;
            break;
        case 12:
            opt.tls_opts.tls_version = optarg;
            break;
        case 13:
            opt.ws = true;
            break;
        case 15:
            opt.persistent = true;
            break;
        case 14:
            opt.ws_path = optarg;
            break;
        default:
            usage(stderr);
            exit(2);
        }
    }
    if (optind < argc)
        die("unexpected argument '%s'", argv[optind]);
    if (opt.qos > 2 || opt.flood_qos > 2)
        die("%s", "QoS is 0, 1 or 2");
    if (opt.threads < 1 || opt.threads > MAX_THREADS)
        die("%s", "--threads is 1..64");
    if (opt.clients < 1 || opt.clients > 1000000)
        die("%s", "--clients is 1..1000000");
    if (opt.payload < BENCH_HDR || opt.payload > 16 * 1024 * 1024)
        die("%s", "--size is 24..16777216 (the payload carries id, sequence and time)");
    if (opt.window < 1 || opt.window > 32768)
        die("%s", "--window is 1..32768");
    if ((opt.tls_opts.certfile == NULL) != (opt.tls_opts.keyfile == NULL))
        die("%s", "--cert and --key go together");
    if (opt.tls && !opt.port_set)
        opt.port = 8883;
    if (opt.count && !opt.duration_set)
        opt.duration = 60; /* a count limit ends the run; the duration is only a cap */
    if (opt.duration <= 0 && !opt.count)
        die("%s", "--duration must be > 0");
}

/* Resolve the host and refuse anything but loopback: this tool floods what it talks to. */
static void resolve(void)
{
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *ai;
    char port[16];
    snprintf(port, sizeof port, "%d", opt.port);
    int rc = getaddrinfo(opt.host, port, &hints, &ai);
    if (rc != 0)
        die("cannot resolve host: %s", gai_strerror(rc));
    bool ok = false;
    for (struct addrinfo *a = ai; a && !ok; a = a->ai_next) {
        if (a->ai_family == AF_INET) {
            const struct sockaddr_in *s = (const void *)a->ai_addr;
            ok = (ntohl(s->sin_addr.s_addr) >> 24) == 127;
        } else if (a->ai_family == AF_INET6) {
            const struct sockaddr_in6 *s = (const void *)a->ai_addr;
            ok = IN6_IS_ADDR_LOOPBACK(&s->sin6_addr);
        }
        if (ok) {
            memcpy(&g.addr, a->ai_addr, a->ai_addrlen);
            g.addrlen = a->ai_addrlen;
        }
    }
    freeaddrinfo(ai);
    if (!ok)
        die("host '%s' is not a loopback address (127.0.0.0/8 or ::1)", opt.host);
}

/* ---- results ----------------------------------------------------------------------- */

static void on_signal(int sig)
{
    (void)sig;
    g.interrupted = 1;
}

static uint64_t total_of(int gi, int what)
{
    uint64_t s = 0;
    for (int i = 0; i < opt.threads; i++) {
        gstats_t *gs = &g.threads[i].gs[gi];
        s += what == 0   ? atomic_load(&gs->sent)
             : what == 1 ? atomic_load(&gs->acked)
                         : atomic_load(&gs->rcvd);
    }
    return s;
}

static void json_lat(FILE *f, const char *name, const hist_t *h)
{
    fprintf(f,
            "\"%s\":{\"count\":%" PRIu64 ",\"mean\":%.3f,\"p50\":%.3f,\"p90\":%.3f,"
            "\"p99\":%.3f,\"p999\":%.3f,\"max\":%.3f}",
            name, h->count, h->count ? (double)h->sum / (double)h->count / 1e3 : 0.0,
            hist_quantile(h, 0.5) / 1e3, hist_quantile(h, 0.9) / 1e3, hist_quantile(h, 0.99) / 1e3,
            hist_quantile(h, 0.999) / 1e3, hist_quantile(h, 1) / 1e3);
}

typedef struct gresult {
    uint64_t sent, acked, rcvd, expected, dup, unexpected, lost;
    hist_t lat;
} gresult_t;

static void group_result(int gi, gresult_t *r)
{
    memset(r, 0, sizeof *r);
    for (int i = 0; i < opt.threads; i++) {
        thread_t *t = &g.threads[i];
        r->dup += t->gs[gi].dup;
        r->unexpected += t->gs[gi].unexpected;
        hist_merge(&r->lat, &t->gs[gi].lat);
    }
    r->sent = total_of(gi, 0);
    r->acked = total_of(gi, 1);
    r->rcvd = total_of(gi, 2);
    r->expected = r->sent * (uint64_t)g.groups[gi].fanout;
    uint64_t unique = r->rcvd - r->dup - r->unexpected;
    r->lost = g.groups[gi].fanout && r->expected > unique ? r->expected - unique : 0;
}

int main(int argc, char **argv)
{
    parse_args(argc, argv);
    resolve();
    if (opt.tls) {
        char err[256];
        g.tls = tls_ctx_new_client(&opt.tls_opts, err, sizeof err);
        if (!g.tls)
            die("TLS: %s", err);
    }
    signal(SIGPIPE, SIG_IGN);
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    build_scenario();
    if (opt.mode == M_CONN && opt.rate > 0)
        g.conn_interval_ns = 1e9 / opt.rate * opt.threads;

    /* Clients round-robin over the threads; a client never changes thread. */
    for (int i = 0; i < opt.threads; i++) {
        thread_t *t = &g.threads[i];
        t->id = i;
        t->epfd = epoll_create1(EPOLL_CLOEXEC);
        t->clients = calloc((size_t)g.nclients / (size_t)opt.threads + 1, sizeof *t->clients);
        t->payload = calloc(1, (size_t)opt.payload);
        if (t->epfd < 0 || !t->clients || !t->payload)
            die("%s", "cannot set up a thread");
    }
    for (int i = 0; i < g.nclients; i++) {
        thread_t *t = &g.threads[i % opt.threads];
        t->clients[t->n++] = &g.clients[i];
    }
    double cpu0 = self_cpu_s();
    int64_t t0 = now_ns();
    for (int i = 0; i < opt.threads; i++)
        pthread_create(&g.threads[i].tid, NULL, thread_main, &g.threads[i]);

    /* Setup: every client connected (and subscribed), or the setup timeout. */
    int total = g.nclients, exit_code = 0;
    int64_t setup_deadline = t0 + (int64_t)(opt.setup_timeout * 1e9);
    int64_t last_print = t0;
    while (!g.interrupted) {
        int ready = atomic_load(&g.ready), failed = atomic_load(&g.failed);
        int64_t now = now_ns();
        if (ready + failed >= total || now > setup_deadline)
            break;
        if (!opt.quiet && now - last_print >= 1000000000) {
            fprintf(stderr, "[setup %4.1fs] connected %d/%d failed %d\n", (now - t0) / 1e9, ready,
                    total, failed);
            last_print = now;
        }
        usleep(2000);
    }
    int ready = atomic_load(&g.ready), failed = atomic_load(&g.failed);
    int64_t setup_end = now_ns();
    if (ready < total && !conn_only()) {
        fprintf(stderr, "midge-bench: only %d of %d clients connected (%d failed)\n", ready, total,
                failed);
        exit_code = 1;
        atomic_store(&g.phase, P_STOP);
    }

    double bcpu0 = opt.broker_pid ? proc_cpu_s(opt.broker_pid) : 0;
    double cpu1 = self_cpu_s();
    int64_t run_start = now_ns();
    atomic_store(&g.run_start, run_start);
    if (exit_code == 0) {
        atomic_store(&g.phase, P_RUN);
        if (!opt.quiet)
            fprintf(stderr, "[run] %d of %d clients connected; running\n", ready, total);
    }
    if (conn_only() && ready < total)
        exit_code = 1;
    int64_t run_end = run_start, deadline = run_start + (int64_t)(opt.duration * 1e9);
    uint64_t prev_sent = 0, prev_rcvd = 0;
    last_print = run_start;
    int npub = g.npub_total;
    while (exit_code == 0 && !g.interrupted) {
        int64_t now = now_ns();
        run_end = now;
        if (now >= deadline)
            break;
        if (npub && opt.count && atomic_load(&g.pubs_done) >= npub)
            break;
        if (now - last_print >= 1000000000) {
            uint64_t s = 0, r = 0;
            for (int gi = 0; gi < g.ngroups; gi++) {
                s += total_of(gi, 0);
                r += total_of(gi, 2);
            }
            if (!opt.quiet)
                fprintf(
                    stderr,
                    "[%5.1fs] sent %" PRIu64 " (%.0f/s) received %" PRIu64 " (%.0f/s) clients %d\n",
                    (now - run_start) / 1e9, s, (double)(s - prev_sent) * 1e9 / (now - last_print),
                    r, (double)(r - prev_rcvd) * 1e9 / (now - last_print),
                    atomic_load(&g.ready) - 0);
            prev_sent = s;
            prev_rcvd = r;
            last_print = now;
        }
        usleep(1000);
    }
    run_end = now_ns();

    /* Drain: let what was published arrive, up to --drain seconds. */
    atomic_store(&g.phase, P_DRAIN);
    int64_t drain_deadline = now_ns() + (int64_t)(opt.drain * 1e9);
    while (exit_code == 0 && !g.interrupted && now_ns() < drain_deadline && opt.mode != M_SUB &&
           !conn_only()) {
        bool done = true;
        for (int gi = 0; gi < g.ngroups; gi++) {
            uint64_t s = total_of(gi, 0);
            if (g.groups[gi].fanout && total_of(gi, 2) < s * (uint64_t)g.groups[gi].fanout)
                done = false;
            if (g.groups[gi].qos && total_of(gi, 1) < s)
                done = false;
        }
        if (done)
            break;
        usleep(1000);
    }
    int64_t end = now_ns();
    double bcpu1 = opt.broker_pid ? proc_cpu_s(opt.broker_pid) : 0;
    long hwm = opt.broker_pid ? proc_hwm_kb(opt.broker_pid) : -1;
    double cpu2 = self_cpu_s();
    atomic_store(&g.phase, P_STOP);
    for (int i = 0; i < opt.threads; i++)
        pthread_join(g.threads[i].tid, NULL);

    /* ---- report ---- */
    double run_s = (run_end - run_start) / 1e9;
    int64_t last_rcv = atomic_load(&g.last_rcv);
    double rcv_s = (last_rcv > run_start ? last_rcv - run_start : run_end - run_start) / 1e9;
    if (rcv_s < run_s)
        rcv_s = run_s;
    gresult_t r[2];
    for (int gi = 0; gi < g.ngroups; gi++)
        group_result(gi, &r[gi]);
    hist_t conn_lat;
    memset(&conn_lat, 0, sizeof conn_lat);
    uint64_t stalls = 0, handshakes = 0;
    for (int i = 0; i < opt.threads; i++) {
        hist_merge(&conn_lat, &g.threads[i].conn_lat);
        stalls += atomic_load(&g.threads[i].stalls);
        handshakes += atomic_load(&g.threads[i].handshakes);
    }
    const char *transport = opt.tls ? (opt.ws ? "wss" : "tls") : opt.ws ? "ws" : "tcp";
    int64_t first_conn = atomic_load(&g.first_connect), last_connack = atomic_load(&g.last_connack);
    double conn_s = last_connack > first_conn ? (last_connack - first_conn) / 1e9 : 0;
    double bench_cpu = cpu2 - cpu1, setup_cpu = cpu1 - cpu0;
    double broker_cpu = opt.broker_pid ? bcpu1 - bcpu0 : -1;
    uint64_t lost_total = r[0].lost + (g.ngroups > 1 ? r[1].lost : 0);
    uint64_t dup_total = r[0].dup + (g.ngroups > 1 ? r[1].dup : 0);
    int disconnected = atomic_load(&g.disconnected);
    if (g.interrupted || disconnected)
        exit_code = 1;

    if (opt.json) {
        printf("{\"mode\":\"%s\",\"mqtt\":\"%s\",\"qos\":%d,\"clients\":%d,\"threads\":%d,"
               "\"payload\":%d,\"rate\":%.1f,\"window\":%d,",
               mode_names[opt.mode], opt.version == MQTT_V5 ? "5" : "3.1.1", opt.qos, opt.clients,
               opt.threads, opt.payload, g.groups[0].rate, opt.window);
        printf("\"transport\":\"%s\",\"disconnected\":%d,", transport, disconnected);
        if (opt.mode == M_HANDSHAKE)
            printf("\"handshakes\":%" PRIu64 ",\"handshake_rate\":%.1f,", handshakes,
                   run_s > 0 ? handshakes / run_s : 0.0);
        printf("\"connections\":%d,\"connected\":%d,\"connect_failed\":%d,"
               "\"connect_s\":%.6f,\"connect_rate\":%.1f,",
               total, ready, failed, conn_s, conn_s > 0 ? ready / conn_s : 0.0);
        json_lat(stdout, "connect_latency_us", &conn_lat);
        printf(",\"run_s\":%.6f,\"receive_s\":%.6f,\"total_s\":%.6f,", run_s, rcv_s,
               (end - t0) / 1e9);
        for (int gi = 0; gi < g.ngroups; gi++) {
            const gresult_t *x = &r[gi];
            if (gi == 1)
                printf("\"flood\":{\"qos\":%d,", g.groups[1].qos);
            printf("\"publishers\":%d,\"subscribers\":%d,", g.groups[gi].npub, g.groups[gi].nsub);
            printf("\"sent\":%" PRIu64 ",\"acked\":%" PRIu64 ",\"received\":%" PRIu64
                   ",\"expected\":%" PRIu64 ",\"lost\":%" PRIu64 ",\"duplicates\":%" PRIu64
                   ",\"unexpected\":%" PRIu64 ",\"send_rate\":%.1f,\"recv_rate\":%.1f,",
                   x->sent, x->acked, x->rcvd, x->expected, x->lost, x->dup, x->unexpected,
                   run_s > 0 ? x->sent / run_s : 0.0, rcv_s > 0 ? x->rcvd / rcv_s : 0.0);
            json_lat(stdout, "latency_us", &x->lat);
            printf(gi == 1 ? "}," : ",");
        }
        printf("\"window_stalls\":%" PRIu64 ",\"bench_cpu_s\":%.3f,\"bench_setup_cpu_s\":%.3f,",
               stalls, bench_cpu, setup_cpu);
        if (opt.broker_pid)
            printf("\"broker\":{\"pid\":%d,\"cpu_s\":%.3f,\"vmhwm_kb\":%ld},", opt.broker_pid,
                   broker_cpu, hwm);
        printf("\"ok\":%s}\n", exit_code == 0 ? "true" : "false");
    } else {
        printf("midge-bench %s: %d client(s), %d thread(s), QoS %d, MQTT %s over %s, payload %d "
               "B\n",
               mode_names[opt.mode], opt.clients, opt.threads, opt.qos,
               opt.version == MQTT_V5 ? "5" : "3.1.1", transport, opt.payload);
        if (opt.mode == M_HANDSHAKE)
            printf("  handshakes   %" PRIu64 " in %.2f s: %.1f/s\n", handshakes, run_s,
                   run_s > 0 ? handshakes / run_s : 0.0);
        printf("  connections  %d of %d connected, %d failed; %.1f connects/s\n", ready, total,
               failed, conn_s > 0 ? ready / conn_s : 0.0);
        if (conn_lat.count)
            printf("  connect      p50 %.3f ms  p99 %.3f ms  max %.3f ms\n",
                   hist_quantile(&conn_lat, 0.5) / 1e6, hist_quantile(&conn_lat, 0.99) / 1e6,
                   hist_quantile(&conn_lat, 1) / 1e6);
        for (int gi = 0; gi < g.ngroups; gi++) {
            const gresult_t *x = &r[gi];
            printf("  [%s] sent %" PRIu64 " (%.0f msgs/s), acked %" PRIu64 ", received %" PRIu64
                   " (%.0f msgs/s)\n",
                   g.groups[gi].name, x->sent, run_s > 0 ? x->sent / run_s : 0.0, x->acked, x->rcvd,
                   rcv_s > 0 ? x->rcvd / rcv_s : 0.0);
            if (g.groups[gi].fanout)
                printf("  [%s] expected %" PRIu64 ", lost %" PRIu64 ", duplicates %" PRIu64
                       ", unexpected %" PRIu64 "\n",
                       g.groups[gi].name, x->expected, x->lost, x->dup, x->unexpected);
            if (x->lat.count)
                printf("  [%s] latency  p50 %.3f ms  p99 %.3f ms  p99.9 %.3f ms  max %.3f ms\n",
                       g.groups[gi].name, hist_quantile(&x->lat, 0.5) / 1e6,
                       hist_quantile(&x->lat, 0.99) / 1e6, hist_quantile(&x->lat, 0.999) / 1e6,
                       hist_quantile(&x->lat, 1) / 1e6);
        }
        printf("  time         %.2f s publishing, %.2f s until the last message\n", run_s, rcv_s);
        printf("  cpu          midge-bench %.2f s", bench_cpu);
        if (opt.broker_pid)
            printf(", broker %.2f s (peak RSS %ld kB)", broker_cpu, hwm);
        printf("\n");
        if (disconnected)
            printf("  WARNING: %d connection(s) closed during the run\n", disconnected);
        if (lost_total || dup_total)
            printf("  WARNING: %" PRIu64 " lost, %" PRIu64 " duplicate messages\n", lost_total,
                   dup_total);
    }
    (void)setup_end;
    return exit_code;
}
