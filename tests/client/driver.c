/* driver.c - drives libmidge against a running broker for tests/integration/test_libmidge.py.
 *
 * `driver SCENARIO HOST PORT [ARGS]` runs one scenario and prints one line per observable
 * outcome (CONNACK codes, acks, received messages with their properties) that the Python
 * test compares exactly. Exit 0 when the scenario ran to its end, 1 with "FAIL ..." if not.
 * Scenarios that need the test to act (kill the broker, publish) print READY and wait for a
 * line on stdin. Every wait is bounded.
 */
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "midge/midge.h"

static const char *host;
static int port;
/* MIDGE_DRIVER_TRANSPORT=tls|ws|wss (with MIDGE_DRIVER_CAFILE, _CERT, _KEY, _WS_PATH): every
 * scenario then runs over that transport; NULL: plain TCP. */
static midge_transport_t *env_transport;

static void fail(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    printf("FAIL ");
    vprintf(fmt, ap);
    printf("\n");
    va_end(ap);
    exit(1);
}

static void check(int rc, const char *what)
{
    if (rc)
        fail("%s: %s (%d)", what, midge_strerror(rc), rc);
}

/* Wait for a line on stdin (at most 30 s). */
static void wait_stdin(void)
{
    char line[64];
    struct pollfd p = {.fd = 0, .events = POLLIN};
    if (poll(&p, 1, 30000) != 1 || !fgets(line, sizeof line, stdin))
        fail("no go from the test");
}

static void options_init(midge_options_t *o)
{
    midge_options_init(o);
    o->transport = env_transport;
}

static midge_client_t *client(int version, const char *id, bool clean)
{
    midge_options_t o;
    options_init(&o);
    o.host = host;
    o.port = (uint16_t)port;
    o.version = version;
    o.client_id = id;
    o.clean_start = clean;
    midge_client_t *c;
    check(midge_client_new(&o, &c), "new");
    return c;
}

static void print_msg(const midge_message_t *m)
{
    printf("MSG %s q%d r%d %.*s\n", m->topic, m->qos, m->retain, (int)m->payload_len,
           (const char *)m->payload);
}

static void print_props(const midge_props_t *p)
{
    for (size_t i = 0; i < p->user_count; i++)
        printf("USER %s=%s\n", p->user[i].name, p->user[i].value);
    if (p->content_type)
        printf("CONTENT_TYPE %s\n", p->content_type);
    if (p->response_topic)
        printf("RESPONSE_TOPIC %s\n", p->response_topic);
    if (p->correlation)
        printf("CORRELATION %.*s\n", (int)p->correlation_len, (const char *)p->correlation);
    if (p->has_message_expiry)
        printf("EXPIRY %u\n", p->message_expiry);
    if (p->payload_format >= 0)
        printf("FORMAT %d\n", p->payload_format);
    for (size_t i = 0; i < p->sub_id_count; i++)
        printf("SUBID %u\n", p->sub_ids[i]);
}

static midge_message_t *receive(midge_client_t *c, int timeout_ms)
{
    midge_message_t *m = NULL;
    int rc = midge_client_receive(c, timeout_ms, &m);
    if (rc == MIDGE_ETIMEOUT)
        return NULL;
    check(rc, "receive");
    return m;
}

/* connect V: CONNACK of a plain connection, then a clean DISCONNECT. */
static int sc_connect(int v)
{
    midge_client_t *c = client(v, NULL, true);
    uint8_t reason = 0xff;
    check(midge_client_connect_wait(c, 5000, &reason), "connect");
    printf("CONNACK %u connected=%d\n", reason, midge_client_is_connected(c));
    check(midge_client_disconnect_wait(c, 0, 5000), "disconnect");
    printf("DISCONNECTED connected=%d\n", midge_client_is_connected(c));
    midge_client_free(c);
    return 0;
}

/* refused V: an empty client id without clean start is refused (3.1.1: 2, 5.0: 0x85). */
static int sc_refused(int v)
{
    midge_client_t *c = client(v, NULL, false);
    uint8_t reason = 0;
    int rc = midge_client_connect_wait(c, 5000, &reason);
    printf("RC %s REASON %u connected=%d\n", rc == MIDGE_EREFUSED ? "refused" : midge_strerror(rc),
           reason, midge_client_is_connected(c));
    midge_client_free(c);
    return 0;
}

/* pubsub V: subscribe, publish at QoS 0/1/2, receive, unsubscribe. */
static int sc_pubsub(int v)
{
    midge_client_t *c = client(v, "pubsub-driver", true);
    check(midge_client_connect_wait(c, 5000, NULL), "connect");
    midge_subscription_t s[2] = {{.filter = "t/#", .qos = 2}, {.filter = "u/+", .qos = 1}};
    uint8_t codes[2] = {0xff, 0xff};
    check(midge_client_subscribe_wait(c, s, 2, 0, 5000, codes), "subscribe");
    printf("SUBACK %u %u\n", codes[0], codes[1]);
    for (int q = 0; q <= 2; q++) {
        char topic[16], payload[16];
        snprintf(topic, sizeof topic, "t/%d", q);
        snprintf(payload, sizeof payload, "payload-%d", q);
        uint8_t reason = 0xff;
        check(midge_client_publish_wait(c, topic, payload, strlen(payload), q, false, NULL, 5000,
                                        &reason),
              "publish");
        printf("PUBACKED q%d reason %u\n", q, reason);
    }
    check(midge_client_publish_wait(c, "u/x", "", 0, 1, false, NULL, 5000, NULL), "publish u/x");
    uint8_t nobody = 0xff;
    check(midge_client_publish_wait(c, "nobody/here", "x", 1, 1, false, NULL, 5000, &nobody),
          "publish nobody");
    printf("PUBACKED nobody reason %u\n", nobody);
    for (int i = 0; i < 4; i++) {
        midge_message_t *m = receive(c, 5000);
        if (!m)
            fail("message %d missing", i);
        print_msg(m);
        midge_message_free(m);
    }
    const char *f[2] = {"t/#", "nothing/here"};
    codes[0] = codes[1] = 0xff;
    check(midge_client_unsubscribe_wait(c, f, 2, 5000, codes), "unsubscribe");
    if (v == MIDGE_MQTT_V5)
        printf("UNSUBACK %u %u\n", codes[0], codes[1]);
    else
        printf("UNSUBACK\n");
    check(midge_client_publish_wait(c, "t/late", "x", 1, 1, false, NULL, 5000, NULL), "publish");
    midge_message_t *m = receive(c, 300);
    printf("AFTER_UNSUB %s\n", m ? m->topic : "none");
    midge_message_free(m);
    printf("BAD_TOPIC %d %d\n",
           midge_client_publish(c, "a/+", "x", 1, 0, false, NULL, NULL) == MIDGE_EINVAL,
           midge_client_publish(c, "a", "x", 1, 3, false, NULL, NULL) == MIDGE_EINVAL);
    check(midge_client_disconnect_wait(c, 0, 5000), "disconnect");
    midge_client_free(c);
    return 0;
}

/* props: MQTT 5.0 properties and a subscription identifier round trip; topic aliases
 * from the broker are resolved. */
static int sc_props(void)
{
    midge_options_t o;
    options_init(&o);
    o.host = host;
    o.port = (uint16_t)port;
    o.topic_alias_maximum = 5;
    midge_client_t *c;
    check(midge_client_new(&o, &c), "new");
    check(midge_client_connect_wait(c, 5000, NULL), "connect");
    midge_subscription_t s = {.filter = "p/#", .qos = 1};
    check(midge_client_subscribe_wait(c, &s, 1, 42, 5000, NULL), "subscribe");
    midge_user_prop_t user[2] = {{"k1", "v1"}, {"k2", "v two"}};
    midge_props_t p;
    midge_props_init(&p);
    p.user = user;
    p.user_count = 2;
    p.content_type = "text/plain";
    p.response_topic = "reply/here";
    p.correlation = (const uint8_t *)"corr-7";
    p.correlation_len = 6;
    p.has_message_expiry = true;
    p.message_expiry = 100;
    p.payload_format = 1;
    check(midge_client_publish_wait(c, "p/1", "hello", 5, 1, false, &p, 5000, NULL), "publish");
    midge_message_t *m = receive(c, 5000);
    if (!m)
        fail("no message");
    print_msg(m);
    print_props(&m->props);
    midge_message_free(m);
    /* The same topic three times: a broker that uses aliases sends it once, then the
     * alias alone; every message must still show its topic. */
    for (int i = 0; i < 3; i++)
        check(midge_client_publish_wait(c, "p/alias/topic", "a", 1, 0, false, NULL, 5000, NULL),
              "publish");
    for (int i = 0; i < 3; i++) {
        m = receive(c, 5000);
        if (!m)
            fail("alias message %d missing", i);
        print_msg(m);
        midge_message_free(m);
    }
    check(midge_client_disconnect_wait(c, 0, 5000), "disconnect");
    midge_client_free(c);
    return 0;
}

/* will V MODE: connect with a will, wait for the test, then leave: MODE abort (no
 * DISCONNECT: the will goes out), clean (DISCONNECT 0: no will), withwill (5.0 0x04). */
static int sc_will(int v, const char *mode)
{
    midge_options_t o;
    options_init(&o);
    o.host = host;
    o.port = (uint16_t)port;
    o.version = v;
    o.will_topic = "will/topic";
    o.will_payload = (const uint8_t *)"gone";
    o.will_payload_len = 4;
    o.will_qos = 1;
    midge_client_t *c;
    check(midge_client_new(&o, &c), "new");
    check(midge_client_connect_wait(c, 5000, NULL), "connect");
    printf("READY\n");
    wait_stdin();
    if (!strcmp(mode, "clean"))
        check(midge_client_disconnect_wait(c, 0, 5000), "disconnect");
    else if (!strcmp(mode, "withwill"))
        check(midge_client_disconnect_wait(c, 0x04, 5000), "disconnect");
    midge_client_free(c);
    printf("DONE\n");
    return 0;
}

/* Callbacks of the async scenario: counters only. */
typedef struct async_state {
    int connacks, subacks, published, received, disconnects;
    uint16_t q1_ids[10];
} async_state_t;

static void a_connect(midge_client_t *c, void *ud, uint8_t reason, bool sp,
                      const midge_props_t *props)
{
    async_state_t *s = ud;
    s->connacks++;
    midge_subscription_t sub = {.filter = "async/#", .qos = 1};
    check(midge_client_subscribe(c, &sub, 1, 0, NULL), "subscribe");
}

static void a_subscribe(midge_client_t *c, void *ud, uint16_t mid, const uint8_t *codes, size_t n)
{
    async_state_t *s = ud;
    s->subacks++;
    printf("SUBACK %zu %u\n", n, codes[0]);
    for (int i = 0; i < 10; i++) {
        char payload[8];
        snprintf(payload, sizeof payload, "m%d", i);
        check(
            midge_client_publish(c, "async/t", payload, strlen(payload), i % 3, false, NULL, NULL),
            "publish");
    }
}

static void a_publish(midge_client_t *c, void *ud, uint16_t mid, uint8_t reason)
{
    ((async_state_t *)ud)->published++;
}

static void a_message(midge_client_t *c, void *ud, const midge_message_t *m)
{
    ((async_state_t *)ud)->received++;
    print_msg(m);
}

static void a_disconnect(midge_client_t *c, void *ud, int reason)
{
    ((async_state_t *)ud)->disconnects++;
}

/* async: the application's own poll loop drives the client through its fd and the
 * read/write/misc steps; everything happens in callbacks. */
static int sc_async(void)
{
    midge_client_t *c = client(MIDGE_MQTT_V5, "async-driver", true);
    async_state_t s = {0};
    midge_callbacks_t cb = {.on_connect = a_connect,
                            .on_subscribe = a_subscribe,
                            .on_publish = a_publish,
                            .on_message = a_message,
                            .on_disconnect = a_disconnect};
    midge_client_set_callbacks(c, &cb, &s);
    check(midge_client_connect(c), "connect");
    for (int turns = 0; turns < 1000 && !(s.received == 10 && s.published == 10); turns++) {
        struct pollfd p = {.fd = midge_client_fd(c), .events = POLLIN};
        if (p.fd < 0)
            fail("no fd");
        if (midge_client_want_write(c))
            p.events |= POLLOUT;
        int t = midge_client_next_timeout_ms(c);
        poll(&p, 1, t < 0 || t > 50 ? 50 : t);
        if (p.revents & (POLLIN | POLLHUP | POLLERR))
            check(midge_client_read(c), "read");
        if (p.revents & POLLOUT)
            check(midge_client_write(c), "write");
        check(midge_client_misc(c), "misc");
    }
    printf("CONNACKS %d SUBACKS %d PUBLISHED %d RECEIVED %d\n", s.connacks, s.subacks, s.published,
           s.received);
    check(midge_client_disconnect(c, 0), "disconnect");
    for (int i = 0; i < 100 && midge_client_fd(c) >= 0; i++)
        check(midge_client_step(c, 50), "step");
    printf("DISCONNECTS %d FD %d\n", s.disconnects, midge_client_fd(c));
    midge_client_free(c);
    return 0;
}

/* thread N: the background thread runs the client while the main thread publishes N
 * messages at QoS 1 and receives them back through the blocking calls. */
static int sc_thread(int n)
{
    midge_client_t *c = client(MIDGE_MQTT_V5, "thread-driver", true);
    check(midge_client_start(c), "start");
    check(midge_client_connect_wait(c, 5000, NULL), "connect");
    midge_subscription_t s = {.filter = "th/#", .qos = 1};
    check(midge_client_subscribe_wait(c, &s, 1, 0, 5000, NULL), "subscribe");
    for (int i = 0; i < n; i++) {
        char payload[16];
        snprintf(payload, sizeof payload, "%d", i);
        check(midge_client_publish(c, "th/x", payload, strlen(payload), 1, false, NULL, NULL),
              "publish");
    }
    int got = 0, in_order = 1;
    for (int i = 0; i < n; i++) {
        midge_message_t *m = receive(c, 5000);
        if (!m)
            break;
        if (atoi((const char *)m->payload) != i)
            in_order = 0;
        got++;
        midge_message_free(m);
    }
    for (int i = 0; i < 100 && midge_client_pending(c); i++)
        usleep(20000);
    printf("RECEIVED %d IN_ORDER %d PENDING %zu\n", got, in_order, midge_client_pending(c));
    check(midge_client_disconnect_wait(c, 0, 5000), "disconnect");
    check(midge_client_stop(c), "stop");
    midge_client_free(c);
    return 0;
}

static void o_disconnect(midge_client_t *c, void *ud, int reason)
{
    printf("LOST %d\n", reason);
}

static void o_connect(midge_client_t *c, void *ud, uint8_t reason, bool sp,
                      const midge_props_t *props)
{
    printf("CONNACK %u\n", reason);
}

/* offline V N: reconnect on; after the test kills the broker, N QoS 1 messages (and a
 * QoS 0 one in the middle) wait in the offline queue and are flushed, in order, once
 * the broker is back. */
static int sc_offline(int v, int n)
{
    midge_options_t o;
    options_init(&o);
    o.host = host;
    o.port = (uint16_t)port;
    o.version = v;
    o.client_id = "offline-driver";
    o.reconnect = true;
    o.reconnect_min_ms = 100;
    o.reconnect_max_ms = 400;
    o.max_queued = (size_t)n;
    midge_client_t *c;
    check(midge_client_new(&o, &c), "new");
    midge_callbacks_t cb = {.on_disconnect = o_disconnect, .on_connect = o_connect};
    midge_client_set_callbacks(c, &cb, NULL);
    check(midge_client_start(c), "start");
    check(midge_client_connect_wait(c, 5000, NULL), "connect");
    check(midge_client_publish_wait(c, "off/t", "before", 6, 1, false, NULL, 5000, NULL),
          "publish");
    printf("READY\n");
    wait_stdin(); /* the broker is down now */
    for (int i = 0; i < 100 && midge_client_is_connected(c); i++)
        usleep(50000);
    printf("CONNECTED %d\n", midge_client_is_connected(c));
    for (int i = 0; i < n; i++) {
        char payload[16];
        snprintf(payload, sizeof payload, "q%d", i);
        check(midge_client_publish(c, "off/t", payload, strlen(payload), i == n / 2 ? 0 : 1, false,
                                   NULL, NULL),
              "publish offline");
    }
    printf("QUEUED %zu FULL %d\n", midge_client_pending(c),
           midge_client_publish(c, "off/t", "x", 1, 1, false, NULL, NULL) == MIDGE_EFULL);
    printf("WAITING\n");
    wait_stdin(); /* the broker is back, a subscriber listens */
    for (int i = 0; i < 300 && midge_client_pending(c); i++)
        usleep(50000);
    printf("FLUSHED pending=%zu connected=%d\n", midge_client_pending(c),
           midge_client_is_connected(c));
    check(midge_client_disconnect_wait(c, 0, 5000), "disconnect");
    midge_client_free(c);
    return 0;
}

/* resend V QOS: against the test's scripted broker, which drops the connection before
 * acknowledging; the message must come again with DUP (QoS 1) or PUBREL must be resent
 * (QoS 2) once the session is back. */
static int sc_resend(int v, int qos)
{
    midge_options_t o;
    options_init(&o);
    o.host = host;
    o.port = (uint16_t)port;
    o.version = v;
    o.client_id = "resend-driver";
    o.clean_start = false;
    o.session_expiry = 300;
    o.reconnect = true;
    o.reconnect_min_ms = 50;
    o.reconnect_max_ms = 200;
    o.keepalive = 0;
    midge_client_t *c;
    check(midge_client_new(&o, &c), "new");
    check(midge_client_connect_wait(c, 5000, NULL), "connect");
    uint8_t reason = 0xff;
    int rc = midge_client_publish_wait(c, "r/t", "again", 5, qos, false, NULL, 10000, &reason);
    printf("PUBLISH %s reason %u pending %zu\n", midge_strerror(rc), reason,
           midge_client_pending(c));
    midge_client_free(c);
    return 0;
}

/* session V: a persistent session keeps the subscription and queues QoS 1 messages while
 * the client is away; reconnecting finds session_present and the messages. */
static int sc_session(int v)
{
    midge_options_t o;
    options_init(&o);
    o.host = host;
    o.port = (uint16_t)port;
    o.version = v;
    o.client_id = "session-driver";
    o.clean_start = false;
    o.session_expiry = 300;
    midge_client_t *c;
    check(midge_client_new(&o, &c), "new");
    check(midge_client_connect_wait(c, 5000, NULL), "connect");
    midge_subscription_t s = {.filter = "sess/#", .qos = 1};
    check(midge_client_subscribe_wait(c, &s, 1, 0, 5000, NULL), "subscribe");
    check(midge_client_disconnect_wait(c, 0, 5000), "disconnect");
    printf("READY\n");
    wait_stdin(); /* the test published while we were away */
    uint8_t reason = 0xff;
    check(midge_client_connect_wait(c, 5000, &reason), "reconnect");
    printf("CONNACK %u\n", reason);
    midge_message_t *m;
    while ((m = receive(c, 1000)) != NULL) {
        print_msg(m);
        midge_message_free(m);
    }
    check(midge_client_disconnect_wait(c, 0, 5000), "disconnect");
    midge_client_free(c);
    return 0;
}

/* keepalive: with a 1 s keepalive and nothing to say, PINGREQs keep the connection. */
static int sc_keepalive(void)
{
    midge_options_t o;
    options_init(&o);
    o.host = host;
    o.port = (uint16_t)port;
    o.keepalive = 1;
    midge_client_t *c;
    check(midge_client_new(&o, &c), "new");
    check(midge_client_connect_wait(c, 5000, NULL), "connect");
    for (int i = 0; i < 35; i++)
        check(midge_client_step(c, 100), "step");
    printf("CONNECTED %d\n", midge_client_is_connected(c));
    check(midge_client_disconnect_wait(c, 0, 5000), "disconnect");
    midge_client_free(c);
    return 0;
}

/* subopts: the 5.0 subscription options no local, retain as published and retain
 * handling 2 (never send retained messages). */
static int sc_subopts(void)
{
    midge_client_t *c = client(MIDGE_MQTT_V5, "subopts-driver", true);
    check(midge_client_connect_wait(c, 5000, NULL), "connect");
    check(midge_client_publish_wait(c, "so/ret", "kept", 4, 1, true, NULL, 5000, NULL),
          "publish retained");
    midge_subscription_t s[3] = {
        {.filter = "so/nl", .qos = 1, .no_local = true},
        {.filter = "so/rap", .qos = 1, .retain_as_published = true},
        {.filter = "so/ret", .qos = 1, .retain_handling = 2},
    };
    uint8_t codes[3];
    check(midge_client_subscribe_wait(c, s, 3, 0, 5000, codes), "subscribe");
    printf("SUBACK %u %u %u\n", codes[0], codes[1], codes[2]);
    check(midge_client_publish_wait(c, "so/nl", "mine", 4, 1, false, NULL, 5000, NULL), "pub");
    check(midge_client_publish_wait(c, "so/rap", "flag", 4, 1, true, NULL, 5000, NULL), "pub");
    midge_message_t *m;
    while ((m = receive(c, 500)) != NULL) {
        print_msg(m);
        midge_message_free(m);
    }
    /* clear the retained messages this scenario left */
    check(midge_client_publish_wait(c, "so/ret", NULL, 0, 1, true, NULL, 5000, NULL), "clear");
    check(midge_client_publish_wait(c, "so/rap", NULL, 0, 1, true, NULL, 5000, NULL), "clear");
    check(midge_client_disconnect_wait(c, 0, 5000), "disconnect");
    midge_client_free(c);
    return 0;
}

static void t_disconnect(midge_client_t *c, void *ud, int reason)
{
    *(int *)ud = reason;
}

/* takeover V: another client takes our client id; the broker's DISCONNECT reason (5.0:
 * 0x8E Session taken over) reaches on_disconnect. */
static int sc_takeover(int v)
{
    midge_client_t *c = client(v, "takeover-driver", true);
    int reason = -1;
    midge_callbacks_t cb = {.on_disconnect = t_disconnect};
    midge_client_set_callbacks(c, &cb, &reason);
    check(midge_client_connect_wait(c, 5000, NULL), "connect");
    printf("READY\n");
    for (int i = 0; i < 200 && reason < 0; i++) {
        int rc = midge_client_step(c, 50);
        if (rc && rc != MIDGE_ECONN)
            check(rc, "step");
    }
    printf("DISCONNECT %d connected=%d\n", reason, midge_client_is_connected(c));
    midge_client_free(c);
    return 0;
}

/* unreachable: nothing listens on the port. */
static int sc_unreachable(void)
{
    midge_client_t *c = client(MIDGE_MQTT_V5, NULL, true);
    int rc = midge_client_connect_wait(c, 2000, NULL);
    printf("RC %s\n", midge_strerror(rc));
    midge_client_free(c);
    return 0;
}

/* A transport of the test's own: TCP underneath, counting what passes through, or
 * refusing every open to show the reconnect schedule. */
typedef struct counting {
    const midge_transport_t *tcp;
    bool refuse;
    int opens, closes;
    long sent, received;
    int64_t open_at[32];
} counting_t;

static int ct_open(void *ctx, const char *h, uint16_t p, int timeout_ms, void **conn)
{
    counting_t *t = ctx;
    if (t->opens < 32)
        t->open_at[t->opens] = t->tcp->now_ms(NULL);
    t->opens++;
    if (t->refuse)
        return MIDGE_ECONN;
    return t->tcp->open(t->tcp->ctx, h, p, timeout_ms, conn);
}

static long ct_send(void *ctx, void *conn, const uint8_t *p, size_t n)
{
    counting_t *t = ctx;
    long r = t->tcp->send(t->tcp->ctx, conn, p, n);
    if (r > 0)
        t->sent += r;
    return r;
}

static long ct_recv(void *ctx, void *conn, uint8_t *p, size_t n)
{
    counting_t *t = ctx;
    long r = t->tcp->recv(t->tcp->ctx, conn, p, n);
    if (r > 0)
        t->received += r;
    return r;
}

static void ct_close(void *ctx, void *conn)
{
    counting_t *t = ctx;
    t->closes++;
    t->tcp->close(t->tcp->ctx, conn);
}

static int ct_fd(void *ctx, void *conn)
{
    counting_t *t = ctx;
    return t->tcp->fd(t->tcp->ctx, conn);
}

static int64_t ct_now(void *ctx)
{
    counting_t *t = ctx;
    return t->tcp->now_ms(t->tcp->ctx);
}

/* transport: a custom transport carries a whole session; its counters show it was used. */
static int sc_transport(void)
{
    counting_t t = {.tcp = midge_transport_tcp()};
    midge_transport_t tr = {&t, ct_open, ct_send, ct_recv, ct_close, ct_fd, ct_now, NULL};
    midge_options_t o;
    options_init(&o);
    o.host = host;
    o.port = (uint16_t)port;
    o.transport = &tr;
    midge_client_t *c;
    check(midge_client_new(&o, &c), "new");
    check(midge_client_connect_wait(c, 5000, NULL), "connect");
    midge_subscription_t s = {.filter = "tr/#", .qos = 2};
    check(midge_client_subscribe_wait(c, &s, 1, 0, 5000, NULL), "subscribe");
    check(midge_client_publish_wait(c, "tr/x", "0123456789", 10, 2, false, NULL, 5000, NULL),
          "publish");
    midge_message_t *m = receive(c, 5000);
    if (!m)
        fail("no message");
    print_msg(m);
    midge_message_free(m);
    check(midge_client_disconnect_wait(c, 0, 5000), "disconnect");
    /* CONNECT 15 + SUBSCRIBE 11 + PUBLISH 19 + PUBREL 4 + PUBREC 4 + PUBCOMP 4... sizes
     * depend on the client id; the test checks only that bytes went both ways. */
    printf("OPENS %d CLOSES %d SENT %d RECEIVED %d\n", t.opens, t.closes, t.sent > 40,
           t.received > 20);
    midge_client_free(c);
    return 0;
}

/* alias_out: the same long topic five times, with outbound topic aliases off then on; the
 * bytes sent show the aliases at work, the test's subscriber sees every topic in full. */
static int sc_alias_out(void)
{
    long sent[2];
    for (int on = 0; on < 2; on++) {
        counting_t t = {.tcp = midge_transport_tcp()};
        midge_transport_t tr = {&t, ct_open, ct_send, ct_recv, ct_close, ct_fd, ct_now, NULL};
        midge_options_t o;
        options_init(&o);
        o.host = host;
        o.port = (uint16_t)port;
        o.transport = &tr;
        o.client_id = "alias-driver";
        o.topic_aliases_out = on;
        midge_client_t *c;
        check(midge_client_new(&o, &c), "new");
        check(midge_client_connect_wait(c, 5000, NULL), "connect");
        for (int i = 0; i < 5; i++) {
            char payload[16];
            snprintf(payload, sizeof payload, "%s-%d", on ? "on" : "off", i);
            const char *topic = i == 2 ? "alias/other" : "alias/a/rather/long/topic/name/here";
            check(midge_client_publish_wait(c, topic, payload, strlen(payload), 1, false, NULL,
                                            5000, NULL),
                  "publish");
        }
        check(midge_client_disconnect_wait(c, 0, 5000), "disconnect");
        midge_client_free(c);
        sent[on] = t.sent;
    }
    printf("SAVED %ld\n", sent[0] - sent[1]);
    return 0;
}

/* backoff: every open fails; print the delays between attempts (ms). */
static int sc_backoff(int attempts)
{
    counting_t t = {.tcp = midge_transport_tcp(), .refuse = true};
    midge_transport_t tr = {&t, ct_open, ct_send, ct_recv, ct_close, ct_fd, ct_now, NULL};
    midge_options_t o;
    options_init(&o);
    o.host = host;
    o.port = (uint16_t)port;
    o.transport = &tr;
    o.reconnect = true;
    o.reconnect_min_ms = 100;
    o.reconnect_max_ms = 800;
    midge_client_t *c;
    check(midge_client_new(&o, &c), "new");
    if (midge_client_connect(c) != MIDGE_ECONN)
        fail("connect should fail");
    int rc = midge_client_publish(c, "b/t", "x", 1, 1, false, NULL, NULL);
    printf("PUBLISH_OFFLINE %d PENDING %zu\n", rc, midge_client_pending(c));
    for (int i = 0; i < 400 && t.opens < attempts; i++)
        check(midge_client_step(c, 50), "step");
    for (int i = 1; i < t.opens && i < 32; i++)
        printf("DELAY %lld\n", (long long)(t.open_at[i] - t.open_at[i - 1]));
    midge_client_free(c);
    return 0;
}

/* connect_error: a connection that fails; the status and the transport's reason. */
static int sc_connect_error(void)
{
    midge_client_t *c = client(MIDGE_MQTT_V311, "error-driver", true);
    int rc = midge_client_connect_wait(c, 5000, NULL);
    printf("RC %s WHY %s\n", midge_strerror(rc), midge_transport_error(env_transport));
    midge_client_free(c);
    return 0;
}

/* bulk N SIZE: N QoS 1 messages of SIZE bytes to ourselves, each with its own byte pattern;
 * every one must come back whole and in order (through a TLS or WebSocket transport, many
 * of them arrive in one read and wait decoded in the transport). */
static void bulk_fill(uint8_t *p, int size, int k)
{
    for (int i = 0; i < size; i++)
        p[i] = (uint8_t)(k * 31 + i * 7);
}

static int sc_bulk(int n, int size)
{
    midge_client_t *c = client(MIDGE_MQTT_V311, "bulk-driver", true);
    check(midge_client_connect_wait(c, 5000, NULL), "connect");
    midge_subscription_t s = {.filter = "bulk/#", .qos = 1};
    check(midge_client_subscribe_wait(c, &s, 1, 0, 5000, NULL), "subscribe");
    uint8_t *want = malloc((size_t)size);
    if (!want)
        fail("out of memory");
    for (int k = 0; k < n; k++) {
        bulk_fill(want, size, k);
        int rc;
        while ((rc = midge_client_publish_wait(c, "bulk/t", want, (size_t)size, 1, false, NULL,
                                               10000, NULL)) == MIDGE_EFULL)
            usleep(1000);
        check(rc, "publish");
    }
    for (int k = 0; k < n; k++) {
        midge_message_t *m = receive(c, 10000);
        if (!m)
            fail("message %d of %d missing", k, n);
        bulk_fill(want, size, k);
        if (m->payload_len != (size_t)size || memcmp(m->payload, want, (size_t)size))
            fail("message %d: %zu bytes, not the ones sent", k, m->payload_len);
        midge_message_free(m);
    }
    free(want);
    printf("BULK %d x %d OK\n", n, size);
    check(midge_client_disconnect_wait(c, 0, 5000), "disconnect");
    midge_client_free(c);
    return 0;
}

static int env_transport_init(void)
{
    const char *kind = getenv("MIDGE_DRIVER_TRANSPORT");
    if (!kind || !*kind)
        return 0;
    midge_tls_options_t tls = {.cafile = getenv("MIDGE_DRIVER_CAFILE"),
                               .certfile = getenv("MIDGE_DRIVER_CERT"),
                               .keyfile = getenv("MIDGE_DRIVER_KEY")};
    char err[256];
    if (!strcmp(kind, "tls"))
        env_transport = midge_transport_tls_new(&tls, err, sizeof err);
    else if (!strcmp(kind, "ws") || !strcmp(kind, "wss"))
        env_transport = midge_transport_ws_new(getenv("MIDGE_DRIVER_WS_PATH"),
                                               kind[2] == 's' ? &tls : NULL, err, sizeof err);
    else
        snprintf(err, sizeof err, "unknown transport %s", kind);
    if (!env_transport) {
        printf("TRANSPORT ERROR %s\n", err);
        return -1;
    }
    return 0;
}

static int run_scenario(const char *sc, int argc, char **argv)
{
    int a = argc > 4 ? atoi(argv[4]) : 5;
    int b = argc > 5 ? atoi(argv[5]) : 0;
    if (!strcmp(sc, "connect_error"))
        return sc_connect_error();
    if (!strcmp(sc, "bulk"))
        return sc_bulk(a, b);
    if (!strcmp(sc, "connect"))
        return sc_connect(a);
    if (!strcmp(sc, "refused"))
        return sc_refused(a);
    if (!strcmp(sc, "pubsub"))
        return sc_pubsub(a);
    if (!strcmp(sc, "props"))
        return sc_props();
    if (!strcmp(sc, "will"))
        return sc_will(a, argc > 5 ? argv[5] : "abort");
    if (!strcmp(sc, "async"))
        return sc_async();
    if (!strcmp(sc, "thread"))
        return sc_thread(a);
    if (!strcmp(sc, "offline"))
        return sc_offline(a, b);
    if (!strcmp(sc, "resend"))
        return sc_resend(a, b);
    if (!strcmp(sc, "session"))
        return sc_session(a);
    if (!strcmp(sc, "keepalive"))
        return sc_keepalive();
    if (!strcmp(sc, "alias_out"))
        return sc_alias_out();
    if (!strcmp(sc, "subopts"))
        return sc_subopts();
    if (!strcmp(sc, "takeover"))
        return sc_takeover(a);
    if (!strcmp(sc, "transport"))
        return sc_transport();
    if (!strcmp(sc, "backoff"))
        return sc_backoff(a);
    if (!strcmp(sc, "unreachable"))
        return sc_unreachable();
    fprintf(stderr, "unknown scenario %s\n", sc);
    return 2;
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (argc < 4) {
        fprintf(stderr, "usage: driver SCENARIO HOST PORT [ARGS]\n");
        return 2;
    }
    host = argv[2];
    port = atoi(argv[3]);
    if (env_transport_init() < 0)
        return 0;
    int rc = run_scenario(argv[1], argc, argv);
    midge_transport_free(env_transport);
    return rc;
}
