/* test_ws.c - the WebSocket transport layer (src/net/ws.c) through memory: a server layer
 * and a client layer in xport stacks talking to each other, raw frames written by hand for
 * the edge cases, and the static files of http_dir in a temporary directory.
 */
/* cmocka.h needs the four headers before it. */
/* clang-format off */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
/* clang-format on */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "net/http.h"
#include "net/ws.h"
#include "net/xport.h"

enum { OP_CONT = 0, OP_TEXT = 1, OP_BIN = 2, OP_CLOSE = 8, OP_PING = 9, OP_PONG = 10 };

/* ---- helpers ------------------------------------------------------------------------ */

static ws_opts_t opts;

static void reset_opts(void)
{
    memset(&opts, 0, sizeof(opts));
}

/* A NUL-terminated copy of the unread bytes of b (consumed). */
static char *take(xbuf_t *b)
{
    size_t n = xbuf_size(b);
    char *s = malloc(n + 1);
    assert_non_null(s);
    memcpy(s, xbuf_data(b), n);
    s[n] = '\0';
    xbuf_consume(b, n);
    return s;
}

static void assert_bytes(xbuf_t *b, const void *want, size_t n)
{
    if (xbuf_size(b) != n || memcmp(xbuf_data(b), want, n) != 0) {
        fprintf(stderr, "got %zu bytes:", xbuf_size(b));
        for (size_t i = 0; i < xbuf_size(b) && i < 64; i++)
            fprintf(stderr, " %02x", xbuf_data(b)[i]);
        fprintf(stderr, "\n");
        fail_msg("bytes differ (want %zu)", n);
    }
    xbuf_consume(b, n);
}

/* One frame; masked with a fixed key when mask is true. */
static size_t frame(uint8_t *out, int fin, int opcode, bool mask, const void *payload, size_t n)
{
    static const uint8_t key[4] = {0x11, 0x22, 0x33, 0x44};
    size_t k = 0;
    out[k++] = (uint8_t)((fin ? 0x80 : 0) | opcode);
    uint8_t m = mask ? 0x80 : 0;
    if (n < 126) {
        out[k++] = (uint8_t)(m | n);
    } else {
        out[k++] = m | 126;
        out[k++] = (uint8_t)(n >> 8);
        out[k++] = (uint8_t)n;
    }
    if (mask) {
        memcpy(out + k, key, 4);
        k += 4;
    }
    for (size_t i = 0; i < n; i++)
        out[k + i] = (uint8_t)(((const uint8_t *)payload)[i] ^ (mask ? key[i % 4] : 0));
    return k + n;
}

static const char *UPGRADE = "GET /mqtt HTTP/1.1\r\n"
                             "Host: localhost:9001\r\n"
                             "Upgrade: websocket\r\n"
                             "Connection: Upgrade\r\n"
                             "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                             "Sec-WebSocket-Version: 13\r\n"
                             "Sec-WebSocket-Protocol: mqtt\r\n"
                             "\r\n";

/* RFC 6455 1.3's example key and its accept value. */
static const char *ANSWER_101 = "HTTP/1.1 101 Switching Protocols\r\n"
                                "Upgrade: websocket\r\n"
                                "Connection: Upgrade\r\n"
                                "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"
                                "Sec-WebSocket-Protocol: mqtt\r\n"
                                "\r\n";

typedef struct server {
    xport_t x;
    xbuf_t app;
    int rc;
} server_t;

static void server_start(server_t *s, const char *peer)
{
    memset(s, 0, sizeof(*s));
    xport_init(&s->x);
    xlayer_t *l = ws_layer_new_server(&opts, peer ? peer : "127.0.0.1");
    assert_non_null(l);
    xport_push(&s->x, l);
}

static int server_feed(server_t *s, const void *p, size_t n)
{
    s->rc = xport_input(&s->x, p, n, &s->app);
    return s->rc;
}

static void server_stop(server_t *s)
{
    xport_cleanup(&s->x);
    xbuf_free(&s->app);
}

/* A server that has answered the upgrade request with exactly ANSWER_101. */
static void server_upgraded(server_t *s)
{
    server_start(s, NULL);
    assert_int_equal(server_feed(s, UPGRADE, strlen(UPGRADE)), 0);
    assert_true(xport_ready(&s->x));
    assert_bytes(&s->x.wire, ANSWER_101, strlen(ANSWER_101));
}

/* The whole answer a fresh server gives to one request (the caller frees it). */
static char *answer(const char *req, bool *finished)
{
    server_t s;
    server_start(&s, NULL);
    server_feed(&s, req, strlen(req));
    if (finished)
        *finished = xport_finished(&s.x);
    char *r = take(&s.x.wire);
    server_stop(&s);
    return r;
}

static void assert_starts(const char *s, const char *prefix)
{
    if (strncmp(s, prefix, strlen(prefix)) != 0)
        fail_msg("answer \"%.200s\" does not start with \"%s\"", s, prefix);
}

/* ---- upgrade and data ------------------------------------------------------------- */

static void test_upgrade_answer_is_exact(void **state)
{
    (void)state;
    reset_opts();
    server_t s;
    server_upgraded(&s);
    assert_false(xport_finished(&s.x));
    server_stop(&s);
}

/* A client layer and a server layer in their stacks, bytes pumped between them. */
typedef struct pair {
    server_t s;
    xport_t c;
    xbuf_t capp;
} pair_t;

static void pump(pair_t *p)
{
    for (int turn = 0; turn < 10; turn++) {
        bool moved = false;
        if (xport_pending(&p->c)) {
            xbuf_t w = p->c.wire;
            memset(&p->c.wire, 0, sizeof(w));
            assert_int_equal(server_feed(&p->s, xbuf_data(&w), xbuf_size(&w)), 0);
            xbuf_free(&w);
            moved = true;
        }
        if (xport_pending(&p->s.x)) {
            xbuf_t w = p->s.x.wire;
            memset(&p->s.x.wire, 0, sizeof(w));
            assert_int_equal(xport_input(&p->c, xbuf_data(&w), xbuf_size(&w), &p->capp), 0);
            xbuf_free(&w);
            moved = true;
        }
        if (!moved)
            return;
    }
}

static void pair_start(pair_t *p)
{
    memset(p, 0, sizeof(*p));
    server_start(&p->s, NULL);
    xport_init(&p->c);
    xlayer_t *l = ws_layer_new_client("127.0.0.1", 9001, "/mqtt");
    assert_non_null(l);
    xport_push(&p->c, l);
    assert_false(xport_ready(&p->c));
    /* The client transport calls input once with no bytes: the request goes out. */
    assert_int_equal(xport_input(&p->c, NULL, 0, &p->capp), 0);
    char *req = take(&p->c.wire);
    assert_starts(req, "GET /mqtt HTTP/1.1\r\nHost: 127.0.0.1:9001\r\nUpgrade: websocket\r\n");
    assert_non_null(strstr(req, "\r\nSec-WebSocket-Protocol: mqtt\r\n"));
    server_feed(&p->s, req, strlen(req));
    free(req);
    pump(p);
    assert_true(xport_ready(&p->c));
    assert_true(xport_ready(&p->s.x));
}

static void pair_stop(pair_t *p)
{
    server_stop(&p->s);
    xport_cleanup(&p->c);
    xbuf_free(&p->capp);
}

static void test_client_server_data_both_ways(void **state)
{
    (void)state;
    reset_opts();
    pair_t p;
    memset(&p, 0, sizeof(p));
    server_start(&p.s, NULL);
    xport_init(&p.c);
    xport_push(&p.c, ws_layer_new_client("::1", 9001, "/mqtt"));
    /* Given before the upgrade is done: held, then sent once it is. */
    assert_int_equal(xport_output(&p.c, (const uint8_t *)"\x10\x02hi", 4), 0);
    assert_int_equal(xport_input(&p.c, NULL, 0, &p.capp), 0);
    assert_non_null(strstr((const char *)xbuf_data(&p.c.wire), "\r\nHost: [::1]:9001\r\n"));
    pump(&p);
    assert_bytes(&p.s.app, "\x10\x02hi", 4);

    /* The client masks its frames: byte 1 has the mask bit. */
    assert_int_equal(xport_output(&p.c, (const uint8_t *)"abc", 3), 0);
    assert_int_equal(xbuf_data(&p.c.wire)[0], 0x82);
    assert_int_equal(xbuf_data(&p.c.wire)[1], 0x80 | 3);
    pump(&p);
    assert_bytes(&p.s.app, "abc", 3);

    /* The server does not: the frame is 0x82, length, payload. */
    assert_int_equal(xport_output(&p.s.x, (const uint8_t *)"world", 5), 0);
    assert_bytes(&p.s.x.wire, "\x82\x05world", 7);
    assert_int_equal(xport_output(&p.s.x, (const uint8_t *)"world", 5), 0);
    pump(&p);
    assert_bytes(&p.capp, "world", 5);

    /* A big message both ways (16-bit and 64-bit length forms). */
    size_t big = 200000;
    uint8_t *buf = malloc(big);
    for (size_t i = 0; i < big; i++)
        buf[i] = (uint8_t)(i * 7);
    assert_int_equal(xport_output(&p.c, buf, big), 0);
    assert_int_equal(xport_output(&p.s.x, buf, 300), 0);
    pump(&p);
    assert_bytes(&p.s.app, buf, big);
    assert_bytes(&p.capp, buf, 300);
    free(buf);
    pair_stop(&p);
}

static void test_client_close_answered(void **state)
{
    (void)state;
    reset_opts();
    pair_t p;
    pair_start(&p);
    /* We close from the client: a close frame; the server answers and is finished. */
    xport_shutdown(&p.c, 1000);
    assert_true(xport_pending(&p.c) > 0);
    pump(&p);
    assert_true(xport_finished(&p.s.x));
    assert_true(xport_finished(&p.c));
    pair_stop(&p);
}

/* A PUBLISH split over three frames of one message: nothing before the last frame, then
 * the whole message; a ping between fragments is answered at once (RFC 6455 5.4). */
static void test_fragmented_message(void **state)
{
    (void)state;
    reset_opts();
    server_t s;
    server_upgraded(&s);
    const char pub[] = "\x30\x0a\x00\x03"
                       "a/b"
                       "hello";
    uint8_t f[64];
    size_t k = frame(f, 0, OP_BIN, true, pub, 4);
    assert_int_equal(server_feed(&s, f, k), 0);
    assert_int_equal(xbuf_size(&s.app), 0);
    k = frame(f, 0, OP_CONT, true, pub + 4, 3);
    k += frame(f + k, 1, OP_PING, true, "p", 1);
    assert_int_equal(server_feed(&s, f, k), 0);
    assert_int_equal(xbuf_size(&s.app), 0);
    assert_bytes(&s.x.wire, "\x8a\x01p", 3);
    k = frame(f, 1, OP_CONT, true, pub + 7, 5);
    assert_int_equal(server_feed(&s, f, k), 0);
    assert_bytes(&s.app, pub, 12);
    server_stop(&s);
}

/* Frames cut anywhere: bytes given one at a time still make the same stream. */
static void test_frames_byte_by_byte(void **state)
{
    (void)state;
    reset_opts();
    server_t s;
    server_upgraded(&s);
    uint8_t f[512];
    uint8_t payload[300];
    for (size_t i = 0; i < sizeof(payload); i++)
        payload[i] = (uint8_t)i;
    size_t k = frame(f, 1, OP_BIN, true, payload, 300);
    for (size_t i = 0; i < k; i++)
        assert_int_equal(server_feed(&s, f + i, 1), 0);
    assert_bytes(&s.app, payload, 300);
    server_stop(&s);
}

/* Two MQTT packets in one message, one packet across two messages: one byte stream. */
static void test_packets_and_messages_independent(void **state)
{
    (void)state;
    reset_opts();
    server_t s;
    server_upgraded(&s);
    const char two[] = "\xc0\x00\xc0\x00"; /* two PINGREQs */
    uint8_t f[64];
    size_t k = frame(f, 1, OP_BIN, true, two, 4);
    k += frame(f + k, 1, OP_BIN, true, "\x30\x05\x00", 3);
    k += frame(f + k, 1, OP_BIN, true, "\x01tx", 3);
    assert_int_equal(server_feed(&s, f, k), 0);
    assert_bytes(&s.app, "\xc0\x00\xc0\x00\x30\x05\x00\x01tx", 10);
    server_stop(&s);
}

/* Frames sent right behind the upgrade request, in the same read. */
static void test_frame_in_same_read_as_upgrade(void **state)
{
    (void)state;
    reset_opts();
    server_t s;
    server_start(&s, NULL);
    uint8_t buf[1024];
    size_t n = strlen(UPGRADE);
    memcpy(buf, UPGRADE, n);
    n += frame(buf + n, 1, OP_BIN, true, "\x10\x00", 2);
    assert_int_equal(server_feed(&s, buf, n), 0);
    assert_bytes(&s.x.wire, ANSWER_101, strlen(ANSWER_101));
    assert_bytes(&s.app, "\x10\x00", 2);
    server_stop(&s);
}

static void test_ping_pong_same_payload(void **state)
{
    (void)state;
    reset_opts();
    server_t s;
    server_upgraded(&s);
    uint8_t f[64];
    size_t k = frame(f, 1, OP_PING, true, "ping-42", 7);
    assert_int_equal(server_feed(&s, f, k), 0);
    assert_bytes(&s.x.wire, "\x8a\x07ping-42", 9);
    /* An unsolicited pong is ignored. */
    k = frame(f, 1, OP_PONG, true, "x", 1);
    assert_int_equal(server_feed(&s, f, k), 0);
    assert_int_equal(xport_pending(&s.x), 0);
    assert_int_equal(xbuf_size(&s.app), 0);
    server_stop(&s);
}

static void test_close_from_client_echoed(void **state)
{
    (void)state;
    reset_opts();
    server_t s;
    server_upgraded(&s);
    uint8_t f[64];
    size_t k = frame(f, 1, OP_CLOSE, true,
                     "\x03\xe8"
                     "bye",
                     5);
    k += frame(f + k, 1, OP_BIN, true, "late", 4); /* after the close: not read */
    assert_int_equal(server_feed(&s, f, k), 0);
    assert_true(xport_finished(&s.x));
    assert_bytes(&s.x.wire,
                 "\x88\x05\x03\xe8"
                 "bye",
                 7);
    assert_int_equal(xbuf_size(&s.app), 0);
    /* Nothing is sent after our close frame. */
    xbuf_t down = {0};
    xlayer_t *l = s.x.layer[0];
    assert_int_equal(l->ops->output(l, (const uint8_t *)"x", 1, &down), 0);
    assert_int_equal(xbuf_size(&down), 0);
    server_stop(&s);
}

/* A violation: the close frame with the code, input -1 with a reason naming the code. */
static void expect_violation(server_t *s, const uint8_t *f, size_t k, const char *closeframe,
                             const char *reason)
{
    assert_int_equal(server_feed(s, f, k), -1);
    assert_bytes(&s->x.wire, closeframe, 4);
    if (!strstr(s->x.error, reason))
        fail_msg("error \"%s\" lacks \"%s\"", s->x.error, reason);
}

/* RFC 6455 5.1: a server closes the connection on an unmasked client frame (1002). */
static void test_unmasked_frame_1002(void **state)
{
    (void)state;
    reset_opts();
    server_t s;
    server_upgraded(&s);
    uint8_t f[64];
    size_t k = frame(f, 1, OP_BIN, false, "\xc0\x00", 2);
    expect_violation(&s, f, k, "\x88\x02\x03\xea", "unmasked frame");
    assert_int_equal(xbuf_size(&s.app), 0);
    server_stop(&s);
}

static void test_text_frame_1003(void **state)
{
    (void)state;
    reset_opts();
    server_t s;
    server_upgraded(&s);
    uint8_t f[64];
    size_t k = frame(f, 1, OP_TEXT, true, "hello", 5);
    expect_violation(&s, f, k, "\x88\x02\x03\xeb", "text message");
    assert_int_equal(xbuf_size(&s.app), 0);
    server_stop(&s);
}

static void test_oversize_message_1009(void **state)
{
    (void)state;
    reset_opts();
    opts.max_message = 16;
    server_t s;
    server_upgraded(&s);
    uint8_t f[64];
    /* 16 bytes in two fragments: accepted */
    size_t k = frame(f, 0, OP_BIN, true, "0123456789", 10);
    k += frame(f + k, 1, OP_CONT, true, "abcdef", 6);
    assert_int_equal(server_feed(&s, f, k), 0);
    assert_bytes(&s.app, "0123456789abcdef", 16);
    /* 17 bytes over two fragments: 1009 when the second frame starts */
    k = frame(f, 0, OP_BIN, true, "0123456789", 10);
    k += frame(f + k, 1, OP_CONT, true, "abcdefg", 7);
    expect_violation(&s, f, k, "\x88\x02\x03\xf1", "message larger than 16 bytes");
    assert_int_equal(xbuf_size(&s.app), 0);
    server_stop(&s);
}

/* A continuation without a start, a reserved bit, a reserved opcode: 1002. */
static void test_bad_frames_1002(void **state)
{
    (void)state;
    reset_opts();
    static const uint8_t bad_first_byte[] = {0x80, 0xc2, 0x83, 0x92};
    for (size_t i = 0; i < sizeof(bad_first_byte); i++) {
        server_t s;
        server_upgraded(&s);
        uint8_t f[64];
        size_t k = frame(f, 1, OP_BIN, true, "ab", 2);
        f[0] = bad_first_byte[i];
        expect_violation(&s, f, k, "\x88\x02\x03\xea", "protocol error");
        server_stop(&s);
    }
}

/* A control frame longer than 125 bytes (RFC 6455 5.5): wslay's frame decoder refuses it
 * and closes without a status code. */
static void test_long_control_frame_refused(void **state)
{
    (void)state;
    reset_opts();
    server_t s;
    server_upgraded(&s);
    uint8_t f[256], payload[126] = {0};
    size_t k = frame(f, 1, OP_PING, true, payload, sizeof(payload));
    assert_int_equal(server_feed(&s, f, k), -1);
    assert_bytes(&s.x.wire, "\x88\x00", 2);
    assert_non_null(strstr(s.x.error, "malformed frame header"));
    server_stop(&s);
}

static void test_shutdown_sends_close_code(void **state)
{
    (void)state;
    reset_opts();
    server_t s;
    server_upgraded(&s);
    xport_shutdown(&s.x, 1011);
    assert_bytes(&s.x.wire, "\x88\x02\x03\xf3", 4);
    xport_shutdown(&s.x, 1000); /* only one close frame */
    assert_int_equal(xport_pending(&s.x), 0);
    server_stop(&s);
    /* A code that must not be sent becomes 1011. */
    server_upgraded(&s);
    xport_shutdown(&s.x, 1006);
    assert_bytes(&s.x.wire, "\x88\x02\x03\xf3", 4);
    server_stop(&s);
    /* Before the upgrade: nothing to say. */
    server_start(&s, NULL);
    xport_shutdown(&s.x, 1000);
    assert_int_equal(xport_pending(&s.x), 0);
    server_stop(&s);
}

/* ---- upgrade refusals and choices ---------------------------------------------------- */

/* UPGRADE with one header line replaced (or removed when repl is ""). */
static char *upgrade_with(const char *name, const char *repl)
{
    static char buf[2048];
    const char *at = strstr(UPGRADE, name);
    assert_non_null(at);
    const char *eol = strstr(at, "\r\n") + 2;
    snprintf(buf, sizeof(buf), "%.*s%s%s", (int)(at - UPGRADE), UPGRADE, repl, eol);
    return buf;
}

static void expect_answer(const char *req, const char *status_line, const char *part)
{
    bool finished = false;
    char *a = answer(req, &finished);
    assert_starts(a, status_line);
    if (part && !strstr(a, part))
        fail_msg("answer \"%s\" lacks \"%s\"", a, part);
    if (strncmp(status_line, "HTTP/1.1 101", 12) != 0)
        assert_true(finished);
    free(a);
}

static void test_upgrade_refusals(void **state)
{
    (void)state;
    reset_opts();
    expect_answer(upgrade_with("Sec-WebSocket-Key", ""), "HTTP/1.1 400 Bad Request\r\n",
                  "\r\n\r\nSec-WebSocket-Key must be base64 of 16 bytes\n");
    expect_answer(upgrade_with("Sec-WebSocket-Key", "Sec-WebSocket-Key: c2hvcnQ=\r\n"),
                  "HTTP/1.1 400 Bad Request\r\n", "Sec-WebSocket-Key must be base64");
    expect_answer(upgrade_with("Sec-WebSocket-Version", "Sec-WebSocket-Version: 8\r\n"),
                  "HTTP/1.1 426 Upgrade Required\r\n", "\r\nSec-WebSocket-Version: 13\r\n");
    expect_answer(upgrade_with("Connection", "Connection: keep-alive\r\n"),
                  "HTTP/1.1 400 Bad Request\r\n", "Connection header must contain upgrade");
    expect_answer(upgrade_with("Host", ""), "HTTP/1.1 400 Bad Request\r\n",
                  "exactly one Host header");
    expect_answer(upgrade_with("Sec-WebSocket-Protocol", "Sec-WebSocket-Protocol: wamp, v12\r\n"),
                  "HTTP/1.1 400 Bad Request\r\n", "offers neither mqtt nor mqttv3.1");
    expect_answer(upgrade_with("GET /mqtt HTTP/1.1", "GET /mqtt HTTP/1.0\r\n"),
                  "HTTP/1.1 400 Bad Request\r\n", "needs HTTP/1.1");
    expect_answer(upgrade_with("GET /mqtt HTTP/1.1", "POST /mqtt HTTP/1.1\r\n"),
                  "HTTP/1.1 405 Method Not Allowed\r\n", "\r\nAllow: GET, HEAD\r\n");
    expect_answer("GET / HTTP/1.1\r\nHost: a\r\nBad Name: x\r\n\r\n",
                  "HTTP/1.1 400 Bad Request\r\n", "line 3: whitespace between header name");
}

static void test_subprotocol_choice(void **state)
{
    (void)state;
    reset_opts();
    expect_answer(
        upgrade_with("Sec-WebSocket-Protocol", "Sec-WebSocket-Protocol: x, mqttv3.1, mqtt\r\n"),
        "HTTP/1.1 101 Switching Protocols\r\n", "\r\nSec-WebSocket-Protocol: mqttv3.1\r\n");
    /* None offered: accepted, none answered. */
    bool fin;
    char *a = answer(upgrade_with("Sec-WebSocket-Protocol", ""), &fin);
    assert_starts(a, "HTTP/1.1 101 Switching Protocols\r\n");
    assert_null(strstr(a, "Sec-WebSocket-Protocol"));
    free(a);
    /* Case matters in subprotocol names (RFC 6455 4.1). */
    expect_answer(upgrade_with("Sec-WebSocket-Protocol", "Sec-WebSocket-Protocol: MQTT\r\n"),
                  "HTTP/1.1 400 Bad Request\r\n", NULL);
}

static void test_origin_check(void **state)
{
    (void)state;
    reset_opts();
    static const char *const origins[] = {"http://dash.example", "https://other.example:8443"};
    opts.origins = origins;
    opts.norigins = 2;
    expect_answer(upgrade_with("Host", "Host: a\r\nOrigin: http://evil.example\r\n"),
                  "HTTP/1.1 403 Forbidden\r\n", "Origin not allowed");
    expect_answer(UPGRADE, "HTTP/1.1 403 Forbidden\r\n", NULL); /* no Origin at all */
    expect_answer(upgrade_with("Host", "Host: a\r\nOrigin: https://other.example:8443\r\n"),
                  "HTTP/1.1 101 Switching Protocols\r\n", NULL);
    opts.norigins = 0;
    expect_answer(upgrade_with("Host", "Host: a\r\nOrigin: http://evil.example\r\n"),
                  "HTTP/1.1 101 Switching Protocols\r\n", NULL);
}

static void test_forwarded_for(void **state)
{
    (void)state;
    reset_opts();
    static const char *const trusted[] = {"10.0.0.1"};
    opts.trusted_proxies = trusted;
    opts.ntrusted = 1;
    const char *req = upgrade_with("Host", "Host: a\r\nX-Forwarded-For: 203.0.113.7, 10.0.0.9\r\n");
    server_t s;
    server_start(&s, "10.0.0.1");
    assert_int_equal(server_feed(&s, req, strlen(req)), 0);
    assert_string_equal(xport_forwarded_peer(&s.x), "203.0.113.7");
    server_stop(&s);
    server_start(&s, "10.0.0.2"); /* not trusted: ignored */
    assert_int_equal(server_feed(&s, req, strlen(req)), 0);
    assert_true(xport_ready(&s.x));
    assert_null(xport_forwarded_peer(&s.x));
    server_stop(&s);
    req = upgrade_with("Host", "Host: a\r\nX-Forwarded-For: 2001:db8::1\r\n");
    server_start(&s, "10.0.0.1");
    assert_int_equal(server_feed(&s, req, strlen(req)), 0);
    assert_string_equal(xport_forwarded_peer(&s.x), "2001:db8::1");
    server_stop(&s);
    req = upgrade_with("Host", "Host: a\r\nX-Forwarded-For: not-an-ip\r\n");
    server_start(&s, "10.0.0.1");
    server_feed(&s, req, strlen(req));
    char *a = take(&s.x.wire);
    assert_starts(a, "HTTP/1.1 400 Bad Request\r\n");
    free(a);
    server_stop(&s);
}

static void test_head_too_large_431(void **state)
{
    (void)state;
    reset_opts();
    server_t s;
    server_start(&s, NULL);
    const char *start = "GET / HTTP/1.1\r\nX-Pad: ";
    server_feed(&s, start, strlen(start));
    char pad[1000];
    memset(pad, 'a', sizeof(pad));
    for (int i = 0; i < 9 && !xport_finished(&s.x); i++)
        server_feed(&s, pad, sizeof(pad));
    assert_true(xport_finished(&s.x));
    char *a = take(&s.x.wire);
    assert_starts(a, "HTTP/1.1 431 Request Header Fields Too Large\r\n");
    free(a);
    server_stop(&s);
}

/* ---- client role checks ------------------------------------------------------------- */

static void test_client_refuses_bad_answers(void **state)
{
    (void)state;
    static const struct {
        const char *resp;
        const char *err;
    } cases[] = {
        {"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n",
         "WebSocket upgrade refused: HTTP 404 Not Found"},
        {"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
         "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n",
         "wrong or missing Sec-WebSocket-Accept"},
        {"HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\n\r\n",
         "101 without Upgrade: websocket"},
        {"HTTP/1.1 101 Switching\nProtocols\r\n\r\n", "bad response: line 1"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        xport_t c;
        xbuf_t app = {0};
        xport_init(&c);
        xport_push(&c, ws_layer_new_client("h", 1, "/"));
        assert_int_equal(xport_input(&c, NULL, 0, &app), 0);
        assert_int_equal(
            xport_input(&c, (const uint8_t *)cases[i].resp, strlen(cases[i].resp), &app), -1);
        if (!strstr(c.error, cases[i].err))
            fail_msg("case %zu: error \"%s\" lacks \"%s\"", i, c.error, cases[i].err);
        xport_cleanup(&c);
        xbuf_free(&app);
    }
}

/* The server's frames must not be masked (RFC 6455 5.1): the client closes with 1002. */
static void test_client_refuses_masked_frame(void **state)
{
    (void)state;
    reset_opts();
    pair_t p;
    pair_start(&p);
    uint8_t f[32];
    size_t k = frame(f, 1, OP_BIN, true, "ab", 2);
    assert_int_equal(xport_input(&p.c, f, k, &p.capp), -1);
    assert_non_null(strstr(p.c.error, "masked frame"));
    /* its close frame is masked: 0x88, 0x80|2, key, code */
    assert_int_equal(xbuf_data(&p.c.wire)[0], 0x88);
    assert_int_equal(xbuf_data(&p.c.wire)[1], 0x82);
    pair_stop(&p);
}

/* ---- static files ------------------------------------------------------------------- */

static char root[256], outside[256];

static void write_file(const char *dir, const char *name, const char *content)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(content, f);
    fclose(f);
}

static int files_setup(void **state)
{
    (void)state;
    snprintf(root, sizeof(root), "/tmp/midge-test-ws-XXXXXX");
    snprintf(outside, sizeof(outside), "/tmp/midge-test-ws-out-XXXXXX");
    if (!mkdtemp(root) || !mkdtemp(outside))
        return -1;
    char p[512];
    write_file(root, "index.html", "<h1>midge</h1>");
    write_file(root, "app.js", "console.log(1)");
    write_file(root, "app.MJS", "export {}");
    write_file(root, "style.css", "body{}");
    write_file(root, "data.json", "{}");
    write_file(root, "logo.svg", "<svg/>");
    write_file(root, "favicon.ico", "ico");
    write_file(root, "notes.txt", "text");
    write_file(root, "app.js.map", "{}");
    write_file(root, "m.wasm", "wasm");
    write_file(root, "f.woff2", "woff");
    write_file(root, "pic.png", "png");
    write_file(root, "blob.bin", "bin");
    write_file(root, "a b.txt", "space");
    write_file(root, "%2e%2e", "literal percent name");
    snprintf(p, sizeof(p), "%s/sub", root);
    mkdir(p, 0755);
    write_file(p, "index.html", "sub index");
    snprintf(p, sizeof(p), "%s/empty", root);
    mkdir(p, 0755);
    write_file(outside, "secret.txt", "SECRET");
    char target[512];
    snprintf(target, sizeof(target), "%s/secret.txt", outside);
    snprintf(p, sizeof(p), "%s/link-out", root);
    if (symlink(target, p) < 0)
        return -1;
    snprintf(p, sizeof(p), "%s/dir-out", root);
    if (symlink(outside, p) < 0)
        return -1;
    snprintf(p, sizeof(p), "%s/link-in", root);
    if (symlink("app.js", p) < 0)
        return -1;
    opts.http_dir = root;
    return 0;
}

static int files_teardown(void **state)
{
    (void)state;
    char cmd[600];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s' '%s'", root, outside);
    return system(cmd) == 0 ? 0 : -1;
}

static char *get(const char *method, const char *target)
{
    char req[2048];
    snprintf(req, sizeof(req), "%s %s HTTP/1.1\r\nHost: localhost\r\n\r\n", method, target);
    bool fin = false;
    char *a = answer(req, &fin);
    assert_true(fin);
    return a;
}

static void expect_file(const char *target, const char *type, const char *body)
{
    char want[512];
    snprintf(want, sizeof(want),
             "HTTP/1.1 200 OK\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
             "X-Content-Type-Options: nosniff\r\nConnection: close\r\n\r\n%s",
             type, strlen(body), body);
    char *a = get("GET", target);
    if (strcmp(a, want) != 0)
        fail_msg("GET %s: got\n%s\nwant\n%s", target, a, want);
    free(a);
}

static void test_static_content_types(void **state)
{
    (void)state;
    expect_file("/index.html", "text/html; charset=utf-8", "<h1>midge</h1>");
    expect_file("/", "text/html; charset=utf-8", "<h1>midge</h1>");
    expect_file("/app.js", "text/javascript; charset=utf-8", "console.log(1)");
    expect_file("/app.MJS", "text/javascript; charset=utf-8", "export {}");
    expect_file("/style.css", "text/css; charset=utf-8", "body{}");
    expect_file("/data.json", "application/json", "{}");
    expect_file("/logo.svg", "image/svg+xml", "<svg/>");
    expect_file("/favicon.ico", "image/x-icon", "ico");
    expect_file("/notes.txt", "text/plain; charset=utf-8", "text");
    expect_file("/app.js.map", "application/json", "{}");
    expect_file("/m.wasm", "application/wasm", "wasm");
    expect_file("/f.woff2", "font/woff2", "woff");
    expect_file("/pic.png", "image/png", "png");
    expect_file("/blob.bin", "application/octet-stream", "bin");
    expect_file("/a%20b.txt", "text/plain; charset=utf-8", "space");
    expect_file("/app.js?v=3", "text/javascript; charset=utf-8", "console.log(1)");
    expect_file("/sub/", "text/html; charset=utf-8", "sub index");
    expect_file("/link-in", "application/octet-stream", "console.log(1)");
    /* Decoded once only: %252e%252e is the file named "%2e%2e". */
    expect_file("/%252e%252e", "application/octet-stream", "literal percent name");
}

static void test_static_head_and_errors(void **state)
{
    (void)state;
    char *a = get("HEAD", "/app.js");
    assert_string_equal(a, "HTTP/1.1 200 OK\r\nContent-Type: text/javascript; charset=utf-8\r\n"
                           "Content-Length: 14\r\nX-Content-Type-Options: nosniff\r\n"
                           "Connection: close\r\n\r\n");
    free(a);
    a = get("GET", "/missing.html");
    assert_starts(a, "HTTP/1.1 404 Not Found\r\nContent-Type: text/plain; charset=utf-8\r\n");
    free(a);
    a = get("POST", "/index.html");
    assert_starts(a, "HTTP/1.1 405 Method Not Allowed\r\n");
    assert_non_null(strstr(a, "\r\nAllow: GET, HEAD\r\n"));
    free(a);
    a = get("DELETE", "/");
    assert_starts(a, "HTTP/1.1 405 Method Not Allowed\r\n");
    free(a);
    a = get("GET", "/sub");
    assert_starts(a, "HTTP/1.1 301 Moved Permanently\r\n");
    assert_non_null(strstr(a, "\r\nLocation: /sub/\r\n"));
    free(a);
    a = get("GET", "/empty/");
    assert_starts(a, "HTTP/1.1 404 Not Found\r\n");
    free(a);
    a = get("GET", "*");
    assert_starts(a, "HTTP/1.1 400 Bad Request\r\n");
    free(a);
    a = get("GET", "http://localhost/index.html");
    assert_starts(a, "HTTP/1.1 400 Bad Request\r\n");
    free(a);
    /* No http_dir: every file is 404. */
    const char *saved = opts.http_dir;
    opts.http_dir = NULL;
    a = get("GET", "/index.html");
    assert_starts(a, "HTTP/1.1 404 Not Found\r\n");
    free(a);
    opts.http_dir = saved;
}

static void test_static_traversal_refused(void **state)
{
    (void)state;
    char up[600];
    const char *base = strrchr(outside, '/') + 1;
    snprintf(up, sizeof(up), "/../%s/secret.txt", base);
    static const struct {
        const char *target;
        const char *status;
    } cases[] = {
        {"/../etc/passwd", "HTTP/1.1 400 "},
        {"/sub/../../etc/passwd", "HTTP/1.1 400 "},
        {"/..", "HTTP/1.1 400 "},
        {"/%2e%2e/etc/passwd", "HTTP/1.1 400 "},
        {"/%2E%2E/etc/passwd", "HTTP/1.1 400 "},
        {"/.%2e/etc/passwd", "HTTP/1.1 400 "},
        {"/..%2Fetc%2Fpasswd", "HTTP/1.1 400 "},
        {"/sub%2F..%2F..%2Fetc%2Fpasswd", "HTTP/1.1 400 "},
        {"/%252e%252e/etc/passwd", "HTTP/1.1 404 "},
        {"/..\\etc\\passwd", "HTTP/1.1 400 "},
        {"/%5c..%5cetc", "HTTP/1.1 400 "},
        {"/index.html%00.png", "HTTP/1.1 400 "},
        {"/%zz", "HTTP/1.1 400 "},
        {"/%2", "HTTP/1.1 400 "},
        {"/link-out", "HTTP/1.1 404 "},
        {"/dir-out/secret.txt", "HTTP/1.1 404 "},
        {"/dir-out/", "HTTP/1.1 404 "},
        {"//etc/passwd", "HTTP/1.1 404 "},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]) + 1; i++) {
        const char *t = i < sizeof(cases) / sizeof(cases[0]) ? cases[i].target : up;
        const char *want = i < sizeof(cases) / sizeof(cases[0]) ? cases[i].status : "HTTP/1.1 400 ";
        char *a = get("GET", t);
        if (strncmp(a, want, strlen(want)) != 0 || strstr(a, "SECRET") || strstr(a, "root:"))
            fail_msg("GET %s: got \"%.60s\", want %s", t, a, want);
        free(a);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_upgrade_answer_is_exact),
        cmocka_unit_test(test_client_server_data_both_ways),
        cmocka_unit_test(test_client_close_answered),
        cmocka_unit_test(test_fragmented_message),
        cmocka_unit_test(test_frames_byte_by_byte),
        cmocka_unit_test(test_packets_and_messages_independent),
        cmocka_unit_test(test_frame_in_same_read_as_upgrade),
        cmocka_unit_test(test_ping_pong_same_payload),
        cmocka_unit_test(test_close_from_client_echoed),
        cmocka_unit_test(test_unmasked_frame_1002),
        cmocka_unit_test(test_text_frame_1003),
        cmocka_unit_test(test_oversize_message_1009),
        cmocka_unit_test(test_bad_frames_1002),
        cmocka_unit_test(test_long_control_frame_refused),
        cmocka_unit_test(test_shutdown_sends_close_code),
        cmocka_unit_test(test_upgrade_refusals),
        cmocka_unit_test(test_subprotocol_choice),
        cmocka_unit_test(test_origin_check),
        cmocka_unit_test(test_forwarded_for),
        cmocka_unit_test(test_head_too_large_431),
        cmocka_unit_test(test_client_refuses_bad_answers),
        cmocka_unit_test(test_client_refuses_masked_frame),
        cmocka_unit_test_setup_teardown(test_static_content_types, files_setup, files_teardown),
        cmocka_unit_test_setup_teardown(test_static_head_and_errors, files_setup, files_teardown),
        cmocka_unit_test_setup_teardown(test_static_traversal_refused, files_setup, files_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
