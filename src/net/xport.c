/* xport.c - the stack of transport layers (see xport.h). */
#include "xport.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

void xport_init(xport_t *x)
{
    memset(x, 0, sizeof(*x));
}

void xport_push(xport_t *x, xlayer_t *l)
{
    x->layer[x->n++] = l;
}

static int fail(xport_t *x, const xlayer_t *l)
{
    snprintf(x->error, sizeof(x->error), "%s", l->error[0] ? l->error : "transport error");
    return -1;
}

/* Send bytes that layer `from` produced down through the layers beneath it. */
static int send_down(xport_t *x, int from, const uint8_t *p, size_t n)
{
    for (int i = from - 1; i >= 0; i--) {
        xbuf_t *t = &x->tmp[i];
        if (x->layer[i]->ops->output(x->layer[i], p, n, t) < 0)
            return fail(x, x->layer[i]);
        p = xbuf_data(t);
        n = xbuf_size(t);
    }
    if (xbuf_append(&x->wire, p, n) < 0) {
        snprintf(x->error, sizeof(x->error), "out of memory");
        return -1;
    }
    for (int i = 0; i < from; i++)
        xbuf_consume(&x->tmp[i], xbuf_size(&x->tmp[i]));
    return 0;
}

bool xport_ready(const xport_t *x)
{
    for (int i = 0; i < x->n; i++)
        if (!x->layer[i]->ops->ready(x->layer[i]))
            return false;
    return true;
}

bool xport_finished(const xport_t *x)
{
    for (int i = 0; i < x->n; i++)
        if (x->layer[i]->finished)
            return true;
    return false;
}

int xport_output(xport_t *x, const uint8_t *p, size_t n)
{
    if (n == 0)
        return 0;
    if (!xport_ready(x) || xbuf_size(&x->held)) {
        if (xbuf_append(&x->held, p, n) < 0) {
            snprintf(x->error, sizeof(x->error), "out of memory");
            return -1;
        }
        return 0;
    }
    return send_down(x, x->n, p, n);
}

int xport_input(xport_t *x, const uint8_t *p, size_t n, xbuf_t *app)
{
    /* Each layer's upward output is the next one's input; what a layer sends on its own
     * goes down through the layers beneath it. up[] lives in the layer above's tmp. */
    xbuf_t up[XPORT_MAX_LAYERS];
    memset(up, 0, sizeof(up));
    int rc = 0;
    for (int i = 0; i < x->n; i++) {
        xlayer_t *l = x->layer[i];
        /* No bytes for this layer: it still gets its turn while it is not ready and the
         * layer below is (a client WebSocket layer sends its upgrade request once TLS
         * under it has finished the handshake); otherwise there is nothing to do. */
        if (i > 0 && n == 0 &&
            (l->ops->ready(l) || !x->layer[i - 1]->ops->ready(x->layer[i - 1])))
            break;
        xbuf_t *dst = i == x->n - 1 ? app : &up[i];
        xbuf_t down = {0};
        int r = l->ops->input(l, p, n, dst, &down);
        if (xbuf_size(&down) && send_down(x, i, xbuf_data(&down), xbuf_size(&down)) < 0)
            r = -1;
        xbuf_free(&down);
        if (r < 0) {
            if (!x->error[0] || l->error[0])
                fail(x, l);
            rc = -1;
            break;
        }
        if (i == x->n - 1)
            break;
        p = xbuf_data(&up[i]);
        n = xbuf_size(&up[i]);
    }
    for (int i = 0; i < XPORT_MAX_LAYERS; i++)
        xbuf_free(&up[i]);
    if (rc == 0 && xbuf_size(&x->held) && xport_ready(x)) {
        xbuf_t held = x->held;
        memset(&x->held, 0, sizeof(x->held));
        rc = send_down(x, x->n, xbuf_data(&held), xbuf_size(&held));
        xbuf_free(&held);
    }
    return rc;
}

long xport_flush(xport_t *x, int fd)
{
    long total = 0;
    while (xbuf_size(&x->wire)) {
        ssize_t w = send(fd, xbuf_data(&x->wire), xbuf_size(&x->wire), MSG_NOSIGNAL);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                return total;
            return -1;
        }
        xbuf_consume(&x->wire, (size_t)w);
        total += w;
    }
    return total;
}

void xport_shutdown(xport_t *x, int code)
{
    for (int i = x->n - 1; i >= 0; i--) {
        xbuf_t down = {0};
        x->layer[i]->ops->shutdown(x->layer[i], code, &down);
        if (xbuf_size(&down))
            send_down(x, i, xbuf_data(&down), xbuf_size(&down));
        xbuf_free(&down);
    }
}

const char *xport_identity(const xport_t *x)
{
    for (int i = 0; i < x->n; i++)
        if (x->layer[i]->identity)
            return x->layer[i]->identity;
    return NULL;
}

const char *xport_subject(const xport_t *x)
{
    for (int i = 0; i < x->n; i++)
        if (x->layer[i]->subject)
            return x->layer[i]->subject;
    return NULL;
}

const char *xport_forwarded_peer(const xport_t *x)
{
    for (int i = 0; i < x->n; i++)
        if (x->layer[i]->peer[0])
            return x->layer[i]->peer;
    return NULL;
}

void xport_cleanup(xport_t *x)
{
    for (int i = 0; i < x->n; i++)
        x->layer[i]->ops->destroy(x->layer[i]);
    for (int i = 0; i < XPORT_MAX_LAYERS; i++)
        xbuf_free(&x->tmp[i]);
    xbuf_free(&x->wire);
    xbuf_free(&x->held);
    x->n = 0;
}
