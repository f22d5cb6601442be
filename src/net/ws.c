/* ws.c - MQTT over WebSocket as a transport layer (see ws.h, xport.h).
 *
 * The layer has two phases. First the HTTP head: a server reads the request (http.h) and
 * either upgrades it (101) or answers it as plain HTTP (http_serve.h) and finishes; a
 * client sends its upgrade request and checks the 101. Then the frames: wslay's event API
 * on memory. Its recv callback reads the bytes given to input(), its send callback appends
 * to the *down buffer of the call in progress, and each complete binary message is appended
 * to *up, so message boundaries vanish: MQTT packets may span messages and a message may
 * hold several packets (MQTT 5.0 6.0: the data is a byte stream). wslay answers pings and
 * close frames itself and refuses frames with the wrong masking (RFC 6455 5.1) with 1002.
 *
 * Each output() is one unfragmented binary frame: paho-mqtt 1.x (Python) does not join
 * continuation frames, so fragmenting large messages would break it.
 *
 * Subprotocol (RFC 6455 4.2.2, MQTT 5.0 6.0): the client's first offer among "mqtt" and
 * "mqttv3.1" is answered; one that offers only others gets 400. MQTT-6.0.0-3 obliges the
 * client to offer "mqtt" but leaves the server free, so a client that offers none (tools
 * such as websocat) is accepted and answered without the header. Mosquitto 2.0
 * (libwebsockets) answers such a client 101 as well, but then never reads MQTT from it.
 */
#include "ws.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/rand.h>
#include <wslay/wslay.h>

#include "http.h"
#include "http_serve.h"

/* RFC 6455 1.3: appended to the key before hashing for Sec-WebSocket-Accept. */
#define WS_GUID "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
/* max_message 0: the largest MQTT packet (256 MiB) plus its fixed header. wslay allocates
 * a frame's payload when the frame starts, so this bound matters. */
#define WS_DEFAULT_MAX_MESSAGE (268435455u + 5u)

typedef enum { WS_HEAD, WS_OPEN, WS_CLOSED } ws_phase_t;

typedef struct ws_layer {
    xlayer_t base;
    bool server;
    ws_phase_t phase;
    xbuf_t head; /* the HTTP head so far */
    wslay_event_context_ptr ctx;
    size_t max_message;
    /* The call in progress: where wslay's callbacks read and write. */
    const uint8_t *in;
    size_t in_n;
    xbuf_t *up, *down;
    bool oom;
    bool upgraded; /* the 101 was sent or received */
    bool goodbye;  /* we sent a close frame of our own (shutdown), not as a refusal */
    /* server */
    const ws_opts_t *opts;
    char peer_ip[64];
    /* client */
    char *host, *path;
    uint16_t port;
    bool request_sent;
    char key[32];
} ws_layer_t;

static int set_error(ws_layer_t *w, const char *fmt, const char *arg)
{
    /* A reason cut short is still a reason. */
    if (snprintf(w->base.error, sizeof(w->base.error), fmt, arg) < 0)
        w->base.error[0] = '\0';
    return -1;
}

/* ---- wslay callbacks on memory ------------------------------------------------------ */

static ssize_t recv_cb(wslay_event_context_ptr ctx, uint8_t *buf, size_t len, int flags, void *user)
{
    ws_layer_t *w = user;
    if (w->in_n == 0) {
        wslay_event_set_error(ctx, WSLAY_ERR_WOULDBLOCK);
        return -1;
    }
    size_t k = len < w->in_n ? len : w->in_n;
    memcpy(buf, w->in, k);
    w->in += k;
    w->in_n -= k;
    return (ssize_t)k;
}

static ssize_t send_cb(wslay_event_context_ptr ctx, const uint8_t *data, size_t len, int flags,
                       void *user)
{
    ws_layer_t *w = user;
    if (!w->down || xbuf_append(w->down, data, len) < 0) {
        w->oom = w->down != NULL;
        wslay_event_set_error(ctx, WSLAY_ERR_CALLBACK_FAILURE);
        return -1;
    }
    return (ssize_t)len;
}

static int genmask_cb(wslay_event_context_ptr ctx, uint8_t *buf, size_t len, void *user)
{
    if (RAND_bytes(buf, (int)len) != 1) {
        wslay_event_set_error(ctx, WSLAY_ERR_CALLBACK_FAILURE);
        return -1;
    }
    return 0;
}

static void msg_cb(wslay_event_context_ptr ctx, const struct wslay_event_on_msg_recv_arg *arg,
                   void *user)
{
    ws_layer_t *w = user;
    if (arg->opcode == WSLAY_BINARY_FRAME) {
        if (arg->msg_length && xbuf_append(w->up, arg->msg, arg->msg_length) < 0) {
            w->oom = true;
            wslay_event_shutdown_read(ctx);
        }
    } else if (arg->opcode == WSLAY_TEXT_FRAME) {
        /* MQTT 5.0 6.0: MQTT data goes in binary frames; a text frame closes with 1003. */
        wslay_event_queue_close(ctx, WSLAY_CODE_UNSUPPORTED_DATA, NULL, 0);
        wslay_event_shutdown_read(ctx);
    }
}

static int make_context(ws_layer_t *w)
{
    struct wslay_event_callbacks cb = {
        .recv_callback = recv_cb,
        .send_callback = send_cb,
        .genmask_callback = genmask_cb,
        .on_msg_recv_callback = msg_cb,
    };
    int r = w->server ? wslay_event_context_server_init(&w->ctx, &cb, w)
                      : wslay_event_context_client_init(&w->ctx, &cb, w);
    if (r != 0)
        return -1;
    wslay_event_config_set_max_recv_msg_length(w->ctx, w->max_message);
    return 0;
}

/* ---- frames ------------------------------------------------------------------------- */

/* Why the connection ends after we sent a close frame with this code in answer to the
 * peer's bytes. */
static int violation(ws_layer_t *w, uint16_t code)
{
    char size[32];
    switch (code) {
    case WSLAY_CODE_PROTOCOL_ERROR:
        return set_error(w,
                         "WebSocket: protocol error (%s frame, reserved bit, bad opcode "
                         "or close code), closed with 1002",
                         w->server ? "unmasked" : "masked");
    case WSLAY_CODE_UNSUPPORTED_DATA:
        return set_error(w, "WebSocket: %s, closed with 1003",
                         "text message (MQTT needs binary messages)");
    case WSLAY_CODE_INVALID_FRAME_PAYLOAD_DATA:
        return set_error(w, "WebSocket: %s, closed with 1007", "invalid UTF-8 in a frame");
    case WSLAY_CODE_MESSAGE_TOO_BIG:
        snprintf(size, sizeof(size), "%zu", w->max_message);
        return set_error(w, "WebSocket: message larger than %s bytes, closed with 1009", size);
    default:
        /* wslay's frame decoder refused the header (a control frame longer than 125 bytes
         * or fragmented, a 64-bit length with the top bit set): it closes without a code. */
        return set_error(w, "WebSocket: %s", "malformed frame header, closed");
    }
}

/* Run wslay over p[0..n): messages to *up, its own frames (pong, close) to *down. */
static int frames_input(ws_layer_t *w, const uint8_t *p, size_t n, xbuf_t *up, xbuf_t *down)
{
    w->in = p;
    w->in_n = n;
    w->up = up;
    w->down = down;
    int r = wslay_event_recv(w->ctx);
    int s = wslay_event_send(w->ctx);
    w->in = NULL;
    w->in_n = 0;
    w->up = w->down = NULL;
    if (w->oom || r == WSLAY_ERR_NOMEM || s == WSLAY_ERR_NOMEM)
        return set_error(w, "WebSocket: %s", "out of memory");
    if (wslay_event_get_close_received(w->ctx)) {
        /* The peer said goodbye and wslay answered it: the conversation is over. */
        w->phase = WS_CLOSED;
        w->base.finished = true;
        return 0;
    }
    if (wslay_event_get_close_sent(w->ctx) && !w->goodbye) {
        w->phase = WS_CLOSED;
        return violation(w, wslay_event_get_status_code_sent(w->ctx));
    }
    if (r != 0)
        return violation(w, 0);
    return 0;
}

typedef long (*head_parser_t)(const uint8_t *p, size_t n, http_head_t *h, http_error_t *e);

#define HEAD_WAIT 0
#define HEAD_OOM (-2)

/* Gather the HTTP head (request or response, by parse). Returns its length once it is
 * complete, -1 when parse refused it (e says why), HEAD_WAIT while more is needed,
 * HEAD_OOM. The parser reads the head from its start, so parsing after every byte of a
 * head that arrives a byte at a time would cost its length squared: it runs while the head
 * is short (garbage in place of a request line is refused at once), when a line has been
 * completed, and when the head has grown past its limit. */
static long head_input(ws_layer_t *w, const uint8_t *p, size_t n, head_parser_t parse,
                       http_head_t *h, http_error_t *e)
{
    if (n == 0)
        return HEAD_WAIT;
    size_t before = xbuf_size(&w->head);
    if (xbuf_append(&w->head, p, n) < 0)
        return HEAD_OOM;
    if (before >= 64 && !memchr(p, '\n', n) && xbuf_size(&w->head) <= HTTP_MAX_HEAD)
        return HEAD_WAIT;
    return parse(xbuf_data(&w->head), xbuf_size(&w->head), h, e);
}

/* ---- server: the request head ------------------------------------------------------- */

static void refuse(ws_layer_t *w, xbuf_t *down, int status, const char *extra, const char *why,
                   bool head_only)
{
    snprintf(w->base.error, sizeof(w->base.error), "HTTP %d: %s", status, why);
    if (http_serve_error(down, status, extra, why, head_only) < 0)
        w->oom = true;
    w->base.finished = true;
}

/* RFC 6455 4.1: the key is the base64 encoding of 16 bytes: 22 characters and "==". */
static bool key_is_valid(const http_view_t *k)
{
    static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    if (!k || k->n != 24 || k->p[22] != '=' || k->p[23] != '=')
        return false;
    for (int i = 0; i < 22; i++)
        if (!memchr(b64, k->p[i], 64))
            return false;
    return true;
}

/* base64(SHA-1(key GUID)) into out[29]. */
static int accept_value(const char *key, size_t n, char *out)
{
    char buf[64 + sizeof(WS_GUID)];
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    if (n > 64)
        return -1;
    memcpy(buf, key, n);
    memcpy(buf + n, WS_GUID, sizeof(WS_GUID) - 1);
    if (EVP_Digest(buf, n + sizeof(WS_GUID) - 1, md, &mdlen, EVP_sha1(), NULL) != 1)
        return -1;
    EVP_EncodeBlock((unsigned char *)out, md, (int)mdlen);
    return 0;
}

/* The client's first offer that we speak, NULL when none. */
static const char *choose_subprotocol(const http_head_t *h)
{
    for (int i = 0; i < h->nheaders; i++) {
        if (!http_view_eq_nocase(h->header[i].name, "Sec-WebSocket-Protocol"))
            continue;
        http_view_t rest = h->header[i].value, elem;
        while (http_list_next(&rest, &elem)) {
            /* Subprotocol names are compared exactly (RFC 6455 4.1: case-sensitive). */
            if (elem.n == 4 && memcmp(elem.p, "mqtt", 4) == 0)
                return "mqtt";
            if (elem.n == 8 && memcmp(elem.p, "mqttv3.1", 8) == 0)
                return "mqttv3.1";
        }
    }
    return NULL;
}

static bool origin_allowed(const ws_opts_t *o, const http_view_t *origin)
{
    if (o->norigins == 0)
        return true;
    if (!origin)
        return false;
    for (int i = 0; i < o->norigins; i++)
        if (http_view_eq_nocase(*origin, o->origins[i]))
            return true;
    return false;
}

static bool peer_is_trusted(const ws_layer_t *w)
{
    for (int i = 0; i < w->opts->ntrusted; i++)
        if (strcmp(w->peer_ip, w->opts->trusted_proxies[i]) == 0)
            return true;
    return false;
}

/* X-Forwarded-For from a trusted proxy: the left-most address is the client's. Returns
 * false when it is there but not an address. */
static bool take_forwarded(ws_layer_t *w, const http_head_t *h)
{
    const http_view_t *xff = http_header_get(h, "X-Forwarded-For");
    if (!xff || !peer_is_trusted(w))
        return true;
    http_view_t rest = *xff, first;
    if (!http_list_next(&rest, &first) || first.n >= sizeof(w->base.peer))
        return false;
    char addr[sizeof(w->base.peer)];
    memcpy(addr, first.p, first.n);
    addr[first.n] = '\0';
    unsigned char bin[16];
    if (inet_pton(AF_INET, addr, bin) != 1 && inet_pton(AF_INET6, addr, bin) != 1)
        return false;
    memcpy(w->base.peer, addr, first.n + 1);
    return true;
}

static void upgrade(ws_layer_t *w, const http_head_t *h, xbuf_t *down)
{
    const http_view_t *key = http_header_get(h, "Sec-WebSocket-Key");
    const http_view_t *ver = http_header_get(h, "Sec-WebSocket-Version");
    if (!http_view_eq_nocase(h->method, "GET"))
        return refuse(w, down, 400, NULL, "WebSocket upgrade needs GET", false);
    if (h->minor != 1)
        return refuse(w, down, 400, NULL, "WebSocket upgrade needs HTTP/1.1", false);
    if (!http_header_has_token(h, "Upgrade", "websocket"))
        return refuse(w, down, 400, NULL, "Upgrade header must name websocket", false);
    if (!http_header_has_token(h, "Connection", "upgrade"))
        return refuse(w, down, 400, NULL, "Connection header must contain upgrade", false);
    /* RFC 6455 4.2.2: an unknown version is answered 426 with the version we speak. */
    if (!ver || http_header_count(h, "Sec-WebSocket-Version") != 1 ||
        !http_view_eq_nocase(*ver, "13"))
        return refuse(w, down, 426, "Sec-WebSocket-Version: 13\r\n",
                      "Sec-WebSocket-Version must be 13", false);
    if (http_header_count(h, "Sec-WebSocket-Key") != 1 || !key_is_valid(key))
        return refuse(w, down, 400, NULL, "Sec-WebSocket-Key must be base64 of 16 bytes", false);
    if (!origin_allowed(w->opts, http_header_get(h, "Origin")))
        return refuse(w, down, 403, NULL, "Origin not allowed", false);
    const char *proto = choose_subprotocol(h);
    if (!proto && http_header_get(h, "Sec-WebSocket-Protocol"))
        return refuse(w, down, 400, NULL, "Sec-WebSocket-Protocol offers neither mqtt nor mqttv3.1",
                      false);
    if (!take_forwarded(w, h))
        return refuse(w, down, 400, NULL, "X-Forwarded-For is not an IP address", false);

    char acc[32], resp[256];
    if (accept_value(key->p, key->n, acc) < 0)
        return refuse(w, down, 500, NULL, "cannot compute Sec-WebSocket-Accept", false);
    int k = snprintf(resp, sizeof(resp),
                     "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                     "Connection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n%s%s%s\r\n",
                     acc, proto ? "Sec-WebSocket-Protocol: " : "", proto ? proto : "",
                     proto ? "\r\n" : "");
    if (xbuf_append(down, resp, (size_t)k) < 0) {
        w->oom = true;
        return;
    }
    w->phase = WS_OPEN;
    w->upgraded = true;
}

/* A complete request head: upgrade, file, or refusal. */
static void answer_request(ws_layer_t *w, const http_head_t *h, xbuf_t *down)
{
    bool get = http_view_eq_nocase(h->method, "GET");
    bool head_only = http_view_eq_nocase(h->method, "HEAD");
    if (!get && !head_only)
        return refuse(w, down, 405, "Allow: GET, HEAD\r\n", "method not allowed", false);
    /* RFC 9112 3.2: an HTTP/1.1 request without exactly one Host gets 400. */
    if (h->minor == 1 && http_header_count(h, "Host") != 1)
        return refuse(w, down, 400, NULL, "exactly one Host header is required", head_only);
    if (http_header_has_token(h, "Upgrade", "websocket") || http_header_get(h, "Sec-WebSocket-Key"))
        return upgrade(w, h, down);
    char why[96];
    int st = http_serve_file(w->opts->http_dir, h->target, head_only, down, why, sizeof(why));
    if (st < 0)
        w->oom = true;
    else if (st != 200)
        snprintf(w->base.error, sizeof(w->base.error), "HTTP %d: %s", st, why);
    w->base.finished = true;
}

static int server_input(xlayer_t *l, const uint8_t *p, size_t n, xbuf_t *up, xbuf_t *down)
{
    ws_layer_t *w = (ws_layer_t *)l;
    if (l->finished)
        return 0;    /* the answer is on its way; the rest is not read */
    if (w->upgraded) /* after our close frame too: the peer's answer completes the close */
        return frames_input(w, p, n, up, down);
    http_head_t h;
    http_error_t e;
    long hl = head_input(w, p, n, http_parse_request, &h, &e);
    if (hl == HEAD_WAIT)
        return 0;
    if (hl == HEAD_OOM)
        return set_error(w, "WebSocket: %s", "out of memory");
    if (hl < 0)
        refuse(w, down, e.status, NULL, e.msg, false);
    else
        answer_request(w, &h, down);
    int rc = 0;
    if (w->oom)
        rc = set_error(w, "WebSocket: %s", "out of memory");
    else if (w->phase == WS_OPEN)
        rc = frames_input(w, xbuf_data(&w->head) + hl, xbuf_size(&w->head) - (size_t)hl, up, down);
    xbuf_free(&w->head);
    return rc;
}

/* ---- client: the upgrade request and the 101 ---------------------------------------- */

static int send_request(ws_layer_t *w, xbuf_t *down)
{
    unsigned char nonce[16];
    if (RAND_bytes(nonce, sizeof(nonce)) != 1)
        return set_error(w, "WebSocket: %s", "no random bytes for the key");
    EVP_EncodeBlock((unsigned char *)w->key, nonce, sizeof(nonce));
    bool v6 = strchr(w->host, ':') != NULL;
    char req[1024];
    int k = snprintf(req, sizeof(req),
                     "GET %s HTTP/1.1\r\nHost: %s%s%s:%u\r\nUpgrade: websocket\r\n"
                     "Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\n"
                     "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: mqtt\r\n\r\n",
                     w->path, v6 ? "[" : "", w->host, v6 ? "]" : "", w->port, w->key);
    if (k < 0 || (size_t)k >= sizeof(req))
        return set_error(w, "WebSocket: %s", "host or path too long for the request");
    if (xbuf_append(down, req, (size_t)k) < 0)
        return set_error(w, "WebSocket: %s", "out of memory");
    w->request_sent = true;
    return 0;
}

static int check_response(ws_layer_t *w, const http_head_t *h)
{
    char msg[128];
    if (h->status != 101) {
        snprintf(msg, sizeof(msg), "%d %.*s", h->status, (int)(h->reason.n > 60 ? 60 : h->reason.n),
                 h->reason.p ? h->reason.p : "");
        return set_error(w, "WebSocket upgrade refused: HTTP %s", msg);
    }
    if (!http_header_has_token(h, "Upgrade", "websocket") ||
        !http_header_has_token(h, "Connection", "upgrade"))
        return set_error(w, "WebSocket upgrade: %s",
                         "101 without Upgrade: websocket and Connection: upgrade");
    char want[32];
    const http_view_t *acc = http_header_get(h, "Sec-WebSocket-Accept");
    if (accept_value(w->key, strlen(w->key), want) < 0 || !acc || acc->n != strlen(want) ||
        memcmp(acc->p, want, acc->n) != 0)
        return set_error(w, "WebSocket upgrade: %s", "wrong or missing Sec-WebSocket-Accept");
    const http_view_t *proto = http_header_get(h, "Sec-WebSocket-Protocol");
    if (proto && !(proto->n == 4 && memcmp(proto->p, "mqtt", 4) == 0))
        return set_error(w, "WebSocket upgrade: %s", "server chose a subprotocol other than mqtt");
    return 0;
}

static int client_input(xlayer_t *l, const uint8_t *p, size_t n, xbuf_t *up, xbuf_t *down)
{
    ws_layer_t *w = (ws_layer_t *)l;
    if (!w->request_sent && send_request(w, down) < 0)
        return -1;
    if (l->finished)
        return 0;
    if (w->upgraded)
        return frames_input(w, p, n, up, down);
    http_head_t h;
    http_error_t e;
    long hl = head_input(w, p, n, http_parse_response, &h, &e);
    if (hl == HEAD_WAIT)
        return 0;
    if (hl == HEAD_OOM)
        return set_error(w, "WebSocket: %s", "out of memory");
    int rc =
        hl < 0 ? set_error(w, "WebSocket upgrade: bad response: %s", e.msg) : check_response(w, &h);
    if (rc == 0) {
        w->phase = WS_OPEN;
        w->upgraded = true;
        rc = frames_input(w, xbuf_data(&w->head) + hl, xbuf_size(&w->head) - (size_t)hl, up, down);
    }
    xbuf_free(&w->head);
    return rc;
}

/* ---- the layer ---------------------------------------------------------------------- */

static int ws_output(xlayer_t *l, const uint8_t *p, size_t n, xbuf_t *down)
{
    ws_layer_t *w = (ws_layer_t *)l;
    if (w->phase != WS_OPEN || n == 0)
        return 0; /* closing: nothing more is sent after our close frame */
    struct wslay_event_msg m = {.opcode = WSLAY_BINARY_FRAME, .msg = p, .msg_length = n};
    int r = wslay_event_queue_msg(w->ctx, &m);
    if (r == WSLAY_ERR_NO_MORE_MSG)
        return 0;
    if (r != 0)
        return set_error(w, "WebSocket: %s", "out of memory");
    w->down = down;
    r = wslay_event_send(w->ctx);
    w->down = NULL;
    if (r != 0 || w->oom)
        return set_error(w, "WebSocket: %s", "out of memory");
    return 0;
}

static bool ws_ready(const xlayer_t *l)
{
    return ((const ws_layer_t *)l)->upgraded;
}

static void ws_shutdown(xlayer_t *l, int code, xbuf_t *down)
{
    ws_layer_t *w = (ws_layer_t *)l;
    if (w->phase != WS_OPEN)
        return;
    /* RFC 6455 7.4.1: 1004-1006 and 1015 are never sent; other codes outside 1000-4999
     * have no meaning. Either way the peer learns of an error on our side. */
    if (code < 1000 || code > 4999 || (code >= 1004 && code <= 1006) || code == 1015)
        code = WSLAY_CODE_INTERNAL_SERVER_ERROR;
    w->down = down;
    w->goodbye = true;
    wslay_event_queue_close(w->ctx, (uint16_t)code, NULL, 0);
    wslay_event_send(w->ctx);
    w->down = NULL;
    w->phase = WS_CLOSED;
}

static void ws_destroy(xlayer_t *l)
{
    ws_layer_t *w = (ws_layer_t *)l;
    wslay_event_context_free(w->ctx);
    xbuf_free(&w->head);
    free(w->host);
    free(w->path);
    free(w);
}

static const xlayer_ops_t server_ops = {
    .name = "ws",
    .input = server_input,
    .output = ws_output,
    .ready = ws_ready,
    .shutdown = ws_shutdown,
    .destroy = ws_destroy,
};

static const xlayer_ops_t client_ops = {
    .name = "ws",
    .input = client_input,
    .output = ws_output,
    .ready = ws_ready,
    .shutdown = ws_shutdown,
    .destroy = ws_destroy,
};

static ws_layer_t *layer_new(bool server, size_t max_message)
{
    ws_layer_t *w = calloc(1, sizeof(*w));
    if (!w)
        return NULL;
    w->base.ops = server ? &server_ops : &client_ops;
    w->server = server;
    w->max_message = max_message ? max_message : WS_DEFAULT_MAX_MESSAGE;
    if (make_context(w) < 0) {
        free(w);
        return NULL;
    }
    return w;
}

xlayer_t *ws_layer_new_server(const ws_opts_t *o, const char *peer_ip)
{
    ws_layer_t *w = layer_new(true, o->max_message);
    if (!w)
        return NULL;
    w->opts = o;
    snprintf(w->peer_ip, sizeof(w->peer_ip), "%s", peer_ip ? peer_ip : "");
    return &w->base;
}

xlayer_t *ws_layer_new_client(const char *host, uint16_t port, const char *path)
{
    ws_layer_t *w = layer_new(false, 0);
    if (!w)
        return NULL;
    w->host = strdup(host);
    w->path = strdup(path && path[0] ? path : "/mqtt");
    w->port = port;
    if (!w->host || !w->path) {
        ws_destroy(&w->base);
        return NULL;
    }
    return &w->base;
}
