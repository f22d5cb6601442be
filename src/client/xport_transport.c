/* xport_transport.c - libmidge's TLS, WebSocket and secure WebSocket transports.
 *
 * A midge_transport_t (transport.h) that connects a TCP socket (sock.c) and runs the
 * broker's own transport layers (src/net: tls.c, ws.c) on it in the client role, so the
 * TLS and WebSocket code exists once. The layers work on memory only; this file owns the
 * socket (the layers themselves are driven through xconn.c, shared with midge-bench): it
 * reads into the layers, writes what they produce, and completes the TLS
 * handshake and the WebSocket upgrade inside open(), within the connect timeout.
 */
#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "client/sock.h"
#include "client/xconn.h"
#include "midge/midge.h"

#define XT_READ_CHUNK 16384

/* The transport object handed out by the constructors. The midge_transport_t comes first:
 * midge_transport_free and midge_transport_error get back here from the public pointer. */
typedef struct xt {
    midge_transport_t t;
    tls_ctx_t *tls; /* NULL: no TLS layer */
    char *ws_path;  /* NULL: no WebSocket layer */
    char error[200];
} xt_t;

/* One connection: the socket and the layers over it. */
typedef struct xt_conn {
    int fd;
    xconn_t *x;
    size_t owed; /* bytes of the caller's next send that were already encoded (see send) */
    bool eof;    /* the broker closed the socket */
    xt_t *owner;
} xt_conn_t;

static void xt_error(xt_t *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void xt_error(xt_t *t, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(t->error, sizeof t->error, fmt, ap);
    va_end(ap);
}

/* A layer refused or failed: keep its reason, which names the layer ("TLS handshake: ..."). */
static int layer_failed(xt_conn_t *c)
{
    xt_error(c->owner, "%s", xconn_error(c->x));
    errno = EPROTO;
    return -1;
}

/* Write what waits for the socket; -1 on a socket error. */
static int flush(xt_conn_t *c)
{
    return xconn_flush(c->x, c->fd) < 0 ? -1 : 0;
}

/* Read once from the socket into the layers. 1 when bytes came, 0 when none were there,
 * -1 on error (c->eof set when the broker closed). */
static int read_some(xt_conn_t *c)
{
    uint8_t buf[XT_READ_CHUNK];
    ssize_t r = recv(c->fd, buf, sizeof buf, 0);
    if (r < 0)
        return (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) ? 0 : -1;
    if (r == 0) {
        c->eof = true;
        return -1;
    }
    if (xconn_input(c->x, buf, (size_t)r) < 0)
        return layer_failed(c);
    return 1;
}

static void conn_free(xt_conn_t *c)
{
    if (c->fd >= 0)
        close(c->fd);
    xconn_free(c->x);
    free(c);
}

/* Drive the handshake(s) until every layer is ready and its last bytes are written, or
 * until deadline. */
static int handshake(xt_conn_t *c, int64_t deadline)
{
    xt_t *t = c->owner;
    const char *step = xconn_handshake_name(c->x);
    for (;;) {
        if (flush(c) < 0)
            return -1;
        if (xconn_ready(c->x) && !xconn_pending(c->x))
            return 0;
        int64_t left = deadline - sock_now_ms();
        if (left <= 0) {
            xt_error(t, "timed out during the %s", step);
            errno = ETIMEDOUT;
            return -1;
        }
        struct pollfd p = {.fd = c->fd,
                           .events = (short)(POLLIN | (xconn_pending(c->x) ? POLLOUT : 0))};
        int r = poll(&p, 1, (int)left);
        if (r < 0 && errno != EINTR)
            return -1;
        if (r > 0 && (p.revents & (POLLIN | POLLHUP | POLLERR)) && read_some(c) < 0) {
            /* A broker that does not speak the layer's protocol on this port usually just
             * closes: say which step it refused. */
            if ((c->eof || errno == ECONNRESET) && !t->error[0])
                xt_error(t, "the broker closed the connection during the %s", step);
            if (c->eof)
                errno = ECONNRESET;
            return -1;
        }
    }
}

static int xt_open(void *ctx, const char *host, uint16_t port, int timeout_ms, void **conn)
{
    xt_t *t = ctx;
    t->error[0] = 0;
    int64_t deadline = sock_now_ms() + timeout_ms;
    int fd = sock_connect_tcp(host, port, timeout_ms);
    if (fd < 0)
        return MIDGE_ECONN;
    xt_conn_t *c = calloc(1, sizeof *c);
    if (!c) {
        close(fd);
        return MIDGE_ENOMEM;
    }
    c->fd = fd;
    c->owner = t;
    c->x = xconn_new(t->tls, t->ws_path, host, port);
    int rc = MIDGE_ENOMEM;
    if (!c->x)
        goto fail;
    rc = MIDGE_ECONN;
    if (handshake(c, deadline) < 0)
        goto fail;
    *conn = c;
    return 0;
fail:;
    int saved = errno;
    conn_free(c);
    errno = saved;
    return rc;
}

/* The client re-offers whatever send did not take, and waits for writability only while it
 * holds such bytes. A layer encodes all it is given, so when the socket cannot take the
 * whole encoding, send reports the last byte as not taken (and remembers that it is already
 * encoded, so that the next send skips it): the client then keeps watching for writability
 * and the rest of the encoding goes out. */
static long xt_send(void *ctx, void *conn, const uint8_t *p, size_t n)
{
    xt_conn_t *c = conn;
    if (flush(c) < 0)
        return -1;
    if (xconn_pending(c->x) || n == 0)
        return 0;
    size_t skip = c->owed < n ? c->owed : n;
    c->owed -= skip;
    if (xconn_output(c->x, p + skip, n - skip) < 0)
        return layer_failed(c);
    if (flush(c) < 0)
        return -1;
    if (xconn_pending(c->x)) {
        c->owed = 1;
        return (long)n - 1;
    }
    return (long)n;
}

static long xt_recv(void *ctx, void *conn, uint8_t *p, size_t n)
{
    xt_conn_t *c = conn;
    xbuf_t *app = xconn_app(c->x);
    int r = 0;
    if (!xbuf_size(app) && !c->eof) {
        r = read_some(c);
        /* A layer may answer on its own (a pong, a TLS alert): send it while we are here. */
        if (flush(c) < 0)
            r = -1;
    }
    size_t k = xbuf_size(app) < n ? xbuf_size(app) : n;
    if (k) {
        memcpy(p, xbuf_data(app), k);
        xbuf_consume(app, k);
        return (long)k;
    }
    if (r < 0 || c->eof || xconn_finished(c->x))
        return -1;
    return 0;
}

static void xt_close(void *ctx, void *conn)
{
    xt_conn_t *c = conn;
    /* Say goodbye at the transport level too (close frame, close_notify), best effort: the
     * socket is non-blocking and closes right after. */
    if (!c->eof) {
        xconn_shutdown(c->x);
        flush(c);
    }
    conn_free(c);
}

static int xt_fd(void *ctx, void *conn)
{
    return ((xt_conn_t *)conn)->fd;
}

static int64_t xt_now_ms(void *ctx)
{
    return sock_now_ms();
}

static size_t xt_pending(void *ctx, void *conn)
{
    return xbuf_size(xconn_app(((xt_conn_t *)conn)->x));
}

static xt_t *xt_new(const midge_tls_options_t *o, const char *ws_path, char *err, size_t errlen)
{
    xt_t *t = calloc(1, sizeof *t);
    if (!t)
        goto nomem;
    t->t = (midge_transport_t){.ctx = t,
                               .open = xt_open,
                               .send = xt_send,
                               .recv = xt_recv,
                               .close = xt_close,
                               .fd = xt_fd,
                               .now_ms = xt_now_ms,
                               .pending = xt_pending};
    if (ws_path && !(t->ws_path = strdup(ws_path)))
        goto nomem;
    if (o) {
        if ((o->certfile == NULL) != (o->keyfile == NULL)) {
            snprintf(err, errlen, "both certfile and keyfile must be given if one of them is");
            goto fail;
        }
        tls_opts_t to = {.cafile = o->cafile,
                         .capath = o->capath,
                         .certfile = o->certfile,
                         .keyfile = o->keyfile,
                         .tls_version = o->tls_version,
                         .ciphers = o->ciphers,
                         .insecure = o->insecure != 0};
        t->tls = tls_ctx_new_client(&to, err, errlen);
        if (!t->tls)
            goto fail;
    }
    return t;
nomem:
    snprintf(err, errlen, "out of memory");
fail:
    if (t)
        free(t->ws_path);
    free(t);
    return NULL;
}

midge_transport_t *midge_transport_tls_new(const midge_tls_options_t *tls, char *err, size_t errlen)
{
    static const midge_tls_options_t none;
    xt_t *t = xt_new(tls ? tls : &none, NULL, err, errlen);
    return t ? &t->t : NULL;
}

midge_transport_t *midge_transport_ws_new(const char *path, const midge_tls_options_t *tls,
                                          char *err, size_t errlen)
{
    if (!path)
        path = "/mqtt";
    if (path[0] != '/' || strpbrk(path, " \r\n")) {
        snprintf(err, errlen, "WebSocket path '%s' must start with '/' and hold no spaces", path);
        return NULL;
    }
    xt_t *t = xt_new(tls, path, err, errlen);
    return t ? &t->t : NULL;
}

const char *midge_transport_error(const midge_transport_t *t)
{
    if (!t || t->open != xt_open)
        return "";
    return ((const xt_t *)t)->error;
}

void midge_transport_free(midge_transport_t *t)
{
    if (!t || t->open != xt_open)
        return;
    xt_t *x = (xt_t *)t;
    if (x->tls)
        tls_ctx_unref(x->tls);
    free(x->ws_path);
    free(x);
}
