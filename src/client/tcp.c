/* tcp.c - the default transport of libmidge: a plain TCP socket.
 *
 * Resolves the host with getaddrinfo, connects each address in turn with a bounded wait
 * (non-blocking connect + poll), then leaves the socket non-blocking with TCP_NODELAY.
 */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "midge/midge.h"

typedef struct tcp_conn {
    int fd;
} tcp_conn_t;

static int connect_one(const struct addrinfo *ai, int timeout_ms)
{
    int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, ai->ai_protocol);
    if (fd < 0)
        return -1;
    if (connect(fd, ai->ai_addr, ai->ai_addrlen) < 0) {
        if (errno != EINPROGRESS)
            goto fail;
        struct pollfd p = {.fd = fd, .events = POLLOUT};
        int r;
        do {
            r = poll(&p, 1, timeout_ms);
        } while (r < 0 && errno == EINTR);
        if (r <= 0) {
            errno = r == 0 ? ETIMEDOUT : errno;
            goto fail;
        }
        int soerr = 0;
        socklen_t len = sizeof soerr;
        if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &len) < 0 || soerr) {
            errno = soerr ? soerr : errno;
            goto fail;
        }
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    return fd;
fail:;
    int saved = errno;
    close(fd);
    errno = saved;
    return -1;
}

static int tcp_open(void *ctx, const char *host, uint16_t port, int timeout_ms, void **conn)
{
    char service[8];
    snprintf(service, sizeof service, "%u", (unsigned)port);
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
    struct addrinfo *res = NULL;
    if (getaddrinfo(host, service, &hints, &res) != 0) {
        errno = EHOSTUNREACH;
        return MIDGE_ECONN;
    }
    int fd = -1;
    for (struct addrinfo *ai = res; ai && fd < 0; ai = ai->ai_next)
        fd = connect_one(ai, timeout_ms);
    freeaddrinfo(res);
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
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
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

const midge_transport_t *midge_transport_tcp(void)
{
    return &tcp_transport;
}
