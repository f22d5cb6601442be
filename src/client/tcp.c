/* tcp.c - the socket transports of libmidge: plain TCP (the default) and unix domain sockets.
 *
 * Both connect with sock.c's bounded connect, then move bytes with send/recv on the
 * non-blocking descriptor; only open differs.
 */
#include <errno.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include "client/sock.h"
#include "midge/midge.h"

typedef struct tcp_conn {
    int fd;
} tcp_conn_t;

static int wrap_fd(int fd, void **conn)
{
    if (fd < 0)
        return MIDGE_ECONN;
    tcp_conn_t *t = malloc(sizeof *t);
    if (!t) {
        close(fd);
        return MIDGE_ENOMEM;
    }
    t->fd = fd;
    *conn = t;
    return 0;
}

static int tcp_open(void *ctx, const char *host, uint16_t port, int timeout_ms, void **conn)
{
    return wrap_fd(sock_connect_tcp(host, port, timeout_ms), conn);
}

/* host is the socket's path; the port means nothing here. */
static int unix_open(void *ctx, const char *host, uint16_t port, int timeout_ms, void **conn)
{
    return wrap_fd(sock_connect_unix(host, timeout_ms), conn);
}

static long tcp_send(void *ctx, void *conn, const uint8_t *p, size_t n)
{
    tcp_conn_t *t = conn;
    ssize_t w = send(t->fd, p, n, MSG_NOSIGNAL);
    if (w < 0)
        return (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) ? 0 : -1;
    return (long)w;
}

static long tcp_recv(void *ctx, void *conn, uint8_t *p, size_t n)
{
    tcp_conn_t *t = conn;
    ssize_t r = recv(t->fd, p, n, 0);
    if (r < 0)
        return (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) ? 0 : -1;
    if (r == 0)
        return -1; /* orderly shutdown by the peer */
    return (long)r;
}

static void tcp_close(void *ctx, void *conn)
{
    tcp_conn_t *t = conn;
    close(t->fd);
    free(t);
}

static int tcp_fd(void *ctx, void *conn)
{
    return ((tcp_conn_t *)conn)->fd;
}

static int64_t tcp_now_ms(void *ctx)
{
    return sock_now_ms();
}

static const midge_transport_t tcp_transport = {
    .ctx = NULL,
    .open = tcp_open,
    .send = tcp_send,
    .recv = tcp_recv,
    .close = tcp_close,
    .fd = tcp_fd,
    .now_ms = tcp_now_ms,
};

static const midge_transport_t unix_transport = {
    .ctx = NULL,
    .open = unix_open,
    .send = tcp_send,
    .recv = tcp_recv,
    .close = tcp_close,
    .fd = tcp_fd,
    .now_ms = tcp_now_ms,
};

const midge_transport_t *midge_transport_tcp(void)
{
    return &tcp_transport;
}

const midge_transport_t *midge_transport_unix(void)
{
    return &unix_transport;
}
