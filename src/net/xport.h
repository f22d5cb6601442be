/* xport.h - the transport layers between a socket and MQTT: TLS, WebSocket.
 *
 * A connection's bytes pass through a small stack of layers that work on memory only:
 * they never touch the socket. Bytes read from the socket go in at the bottom and come
 * out at the top as the MQTT byte stream; MQTT bytes go in at the top and come out at the
 * bottom as the bytes to write. So one layer (TLS) can sit under another (WebSocket) for
 * wss://, the event loop stays in charge of all I/O, and a handshake never blocks a
 * thread. The same stack serves the broker (server role) and libmidge (client role).
 *
 * A plain TCP connection has no stack at all: the broker reads and writev()s directly.
 */
#ifndef MIDGE_XPORT_H
#define MIDGE_XPORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "xbuf.h"

typedef struct xlayer xlayer_t;

typedef struct xlayer_ops {
    const char *name; /* "tls", "ws": for logs */
    /* Bytes that arrived from below. Bytes for the layer above are appended to *up;
     * bytes this layer must send on its own (handshake records, a pong, an HTTP response,
     * a close frame) are appended to *down. Returns 0, or -1 when the connection must be
     * closed, with the reason in l->error. */
    int (*input)(xlayer_t *l, const uint8_t *p, size_t n, xbuf_t *up, xbuf_t *down);
    /* Bytes from above to send: their wire form is appended to *down. Only called once
     * ready() is true. 0, or -1 with l->error set. */
    int (*output)(xlayer_t *l, const uint8_t *p, size_t n, xbuf_t *down);
    /* True once the layer carries data for the layer above (handshake or upgrade done). */
    bool (*ready)(const xlayer_t *l);
    /* The connection is being closed by us: append the layer's goodbye to *down (TLS
     * close_notify; a WebSocket close frame with code, 1000 normal, 1002 protocol error,
     * 1009 too big, 1011 server error). May be called before ready(). */
    void (*shutdown)(xlayer_t *l, int code, xbuf_t *down);
    /* Free the layer and everything it owns (identity, subject). */
    void (*destroy)(xlayer_t *l);
} xlayer_ops_t;

/* Every layer's state starts with this. */
struct xlayer {
    const xlayer_ops_t *ops;
    /* Set by the layer when the conversation is over from its side (an HTTP file was
     * served, the peer's close frame or close_notify was answered): the stack closes the
     * connection once its output is written. */
    bool finished;
    char error[160];  /* why input/output returned -1: "TLS handshake: certificate verify
                       * failed", "WebSocket: unmasked frame from client", ... */
    char *identity;   /* TLS server role: the client certificate's CN (malloc'd) or NULL */
    char *subject;    /* TLS: the client certificate's subject, RFC 2253 form, or NULL */
    char peer[64];    /* WS server role: the client's address taken from X-Forwarded-For
                       * sent by a trusted proxy; "" when none */
};

#define XPORT_MAX_LAYERS 2

typedef struct xport {
    xlayer_t *layer[XPORT_MAX_LAYERS]; /* [0] is next to the socket */
    int n;
    xbuf_t wire;    /* bytes waiting for the socket */
    xbuf_t held;    /* application bytes given before every layer was ready */
    xbuf_t tmp[XPORT_MAX_LAYERS];
    char error[160];
} xport_t;

void xport_init(xport_t *x);
/* Add a layer on top (push the socket-side layer first). The stack owns it. */
void xport_push(xport_t *x, xlayer_t *l);
/* Bytes read from the socket: application bytes are appended to *app. n may be 0 (a
 * client calls it so right after connecting): a layer that is not ready yet, with every
 * layer below it ready, is then given the chance to send its first bytes. Returns 0, or -1
 * when the connection must close (x->error says why; x->wire may still hold a goodbye
 * worth writing). */
int xport_input(xport_t *x, const uint8_t *p, size_t n, xbuf_t *app);
/* Application bytes to send: encoded into x->wire (or held until the layers are ready).
 * Always takes all of them; callers bound what they give by xport_pending(). 0 or -1. */
int xport_output(xport_t *x, const uint8_t *p, size_t n);
/* Write x->wire to fd. Returns the bytes written (0 when the socket is full), -1 on a
 * socket error (errno set). */
long xport_flush(xport_t *x, int fd);
/* Bytes waiting for the socket. */
static inline size_t xport_pending(const xport_t *x) { return xbuf_size(&x->wire); }
bool xport_ready(const xport_t *x);
/* A layer has finished the conversation: close once xport_pending() is 0. */
bool xport_finished(const xport_t *x);
/* We close: every layer, top first, appends its goodbye (see xlayer_ops.shutdown). */
void xport_shutdown(xport_t *x, int code);
/* The layers' view of the client: TLS identity/subject, forwarded address; NULL if none. */
const char *xport_identity(const xport_t *x);
const char *xport_subject(const xport_t *x);
const char *xport_forwarded_peer(const xport_t *x);
void xport_cleanup(xport_t *x);

#endif
