/* xconn.c - client-role transport layers over one socket (see xconn.h).
 *
 * Each layer runs in an xport_t of its own, chained: x[0] is next to the socket; what x[1]
 * has to send is handed to x[0] as application bytes, what x[0] decodes is x[1]'s input. A
 * single stack of two layers would not start the WebSocket upgrade over TLS: xport_input()
 * gives a layer above the first an input() call only when bytes reach it, and a client's
 * upgrade request must go out before any byte arrives.
 */
#include "client/xconn.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "net/ws.h"
#include "net/xport.h"

struct xconn {
    int nx;
    xport_t x[XPORT_MAX_LAYERS];
    xbuf_t mid; /* x[0]'s decoded bytes on their way into x[1] */
    xbuf_t app; /* decoded MQTT bytes for the caller */
    char error[160];
    bool tls, ws;
};

static int failed(xconn_t *c, const xport_t *x)
{
    snprintf(c->error, sizeof c->error, "%s", x->error[0] ? x->error : "transport layer error");
    return -1;
}

/* Hand what each upper xport has encoded down to the one beneath it. */
static int pass_down(xconn_t *c)
{
    for (int i = c->nx - 1; i > 0; i--) {
        xbuf_t *w = &c->x[i].wire;
        if (!xbuf_size(w))
            continue;
        if (xport_output(&c->x[i - 1], xbuf_data(w), xbuf_size(w)) < 0)
            return failed(c, &c->x[i - 1]);
        xbuf_consume(w, xbuf_size(w));
    }
    return 0;
}

/* Bytes from the socket up through the layers (p == NULL: the kick that makes client
 * layers emit their first bytes; each layer gets one). */
static int feed(xconn_t *c, const uint8_t *p, size_t n)
{
    bool kick = p == NULL;
    for (int i = 0; i < c->nx; i++) {
        bool top = i == c->nx - 1;
        if ((kick || n) && xport_input(&c->x[i], p, n, top ? &c->app : &c->mid) < 0)
            return failed(c, &c->x[i]);
        if (!top) {
            n = xbuf_size(&c->mid);
            p = n ? xbuf_data(&c->mid) : NULL;
        }
    }
    xbuf_consume(&c->mid, xbuf_size(&c->mid));
    return pass_down(c);
}

static int push(xconn_t *c, xlayer_t *l)
{
    if (!l)
        return -1;
    xport_init(&c->x[c->nx]);
    xport_push(&c->x[c->nx++], l);
    return 0;
}

xconn_t *xconn_new(tls_ctx_t *tls, const char *ws_path, const char *host, uint16_t port)
{
    xconn_t *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->tls = tls != NULL;
    c->ws = ws_path != NULL;
    if ((tls && push(c, tls_layer_new(tls, host)) < 0) ||
        (ws_path && push(c, ws_layer_new_client(host, port, ws_path)) < 0) ||
        feed(c, NULL, 0) < 0) {
        xconn_free(c);
        return NULL;
    }
    return c;
}

int xconn_input(xconn_t *c, const uint8_t *p, size_t n)
{
    return n ? feed(c, p, n) : 0;
}

xbuf_t *xconn_app(xconn_t *c)
{
    return &c->app;
}

int xconn_output(xconn_t *c, const uint8_t *p, size_t n)
{
    xport_t *top = &c->x[c->nx - 1];
    if (n && xport_output(top, p, n) < 0)
        return failed(c, top);
    return pass_down(c);
}

long xconn_flush(xconn_t *c, int fd)
{
    return xport_flush(&c->x[0], fd);
}

size_t xconn_pending(const xconn_t *c)
{
    return xport_pending(&c->x[0]);
}

bool xconn_ready(const xconn_t *c)
{
    for (int i = 0; i < c->nx; i++)
        if (!xport_ready(&c->x[i]))
            return false;
    return true;
}

bool xconn_finished(const xconn_t *c)
{
    for (int i = 0; i < c->nx; i++)
        if (xport_finished(&c->x[i]))
            return true;
    return false;
}

const char *xconn_error(const xconn_t *c)
{
    return c->error;
}

const char *xconn_handshake_name(const xconn_t *c)
{
    return !c->ws   ? "TLS handshake"
           : c->tls ? "TLS handshake or WebSocket upgrade"
                    : "WebSocket upgrade";
}

void xconn_shutdown(xconn_t *c)
{
    xport_shutdown(&c->x[c->nx - 1], 1000);
    if (pass_down(c) == 0)
        for (int i = c->nx - 2; i >= 0; i--)
            xport_shutdown(&c->x[i], 1000);
}

void xconn_free(xconn_t *c)
{
    if (!c)
        return;
    for (int i = 0; i < c->nx; i++)
        xport_cleanup(&c->x[i]);
    xbuf_free(&c->mid);
    xbuf_free(&c->app);
    free(c);
}
