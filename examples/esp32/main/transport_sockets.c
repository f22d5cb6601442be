/* transport_sockets.c - libmidge's transport interface implemented with BSD sockets.
 *
 * libmidge never touches a socket itself: it calls open/send/recv/close/fd/now_ms from
 * the table below. On ESP-IDF the calls go to lwIP (lwip/sockets.h maps the BSD names to
 * lwip_*), on a host to the kernel; nothing else differs, so the host test covers this
 * file as the device runs it.
 */
#include "transport_sockets.h"

#include "midge/midge.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef ESP_PLATFORM
#include "esp_timer.h"
#include "lwip/netdb.h"
#include "lwip/sockets.h"
#else
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#endif

/* A write to a socket the peer has closed must fail with EPIPE, not kill a host process
 * with SIGPIPE; lwIP has no signals. */
#ifndef MSG_NOSIGNAL
#define MSG_NOSIGNAL 0
#endif

typedef struct sock_conn {
    int fd;
} sock_conn_t;

/* Wait until a non-blocking connect completes: 0, or -1 on failure or timeout. */
static int connect_wait(int fd, int timeout_ms)
{
    fd_set wr;
    struct timeval tv = {timeout_ms / 1000, (timeout_ms % 1000) * 1000};
    FD_ZERO(&wr);
    FD_SET(fd, &wr);
    int r;
    do {
        r = select(fd + 1, NULL, &wr, NULL, &tv);
    } while (r < 0 && errno == EINTR);
    if (r <= 0)
        return -1;
    int err = 0;
    socklen_t len = sizeof err;
    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0 || err)
        return -1;
    return 0;
}

static int sock_open(void *ctx, const char *host, uint16_t port, int timeout_ms, void **conn)
{
    struct addrinfo hints, *res = NULL, *ai;
    char service[8];
    int fd = -1;
    sock_conn_t *sc = NULL;

    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    snprintf(service, sizeof service, "%u", (unsigned)port);
    if (getaddrinfo(host, service, &hints, &res) != 0 || !res)
        return MIDGE_ECONN;
    for (ai = res; ai; ai = ai->ai_next) {
        fd = socket(ai->ai_family, ai->ai_socktype, ai->ai_protocol);
        if (fd < 0)
            continue;
        int flags = fcntl(fd, F_GETFL, 0);
        if (flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0)
            goto next;
        if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0)
            break;
        if (errno == EINPROGRESS && connect_wait(fd, timeout_ms) == 0)
            break;
    next:
        close(fd);
        fd = -1;
    }
    freeaddrinfo(res);
    if (fd < 0)
        return MIDGE_ECONN;
    /* MQTT packets are small and latency matters more than segment count. */
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    sc = malloc(sizeof *sc);
    if (!sc) {
        close(fd);
        return MIDGE_ENOMEM;
    }
    sc->fd = fd;
    *conn = sc;
    return 0;
}

static long sock_send(void *ctx, void *conn, const uint8_t *p, size_t n)
{
    sock_conn_t *sc = conn;
    ssize_t r = send(sc->fd, p, n, MSG_NOSIGNAL);
    if (r >= 0)
        return (long)r;
    if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
        return 0;
    return -1;
}

static long sock_recv(void *ctx, void *conn, uint8_t *p, size_t n)
{
    sock_conn_t *sc = conn;
    ssize_t r = recv(sc->fd, p, n, 0);
    if (r > 0)
        return (long)r;
    if (r == 0)
        return -1; /* the broker closed the connection */
    if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
        return 0;
    return -1;
}

static void sock_close(void *ctx, void *conn)
{
    sock_conn_t *sc = conn;
    close(sc->fd);
    free(sc);
}

static int sock_fd(void *ctx, void *conn)
{
    return ((sock_conn_t *)conn)->fd;
}

static int64_t sock_now_ms(void *ctx)
{
#ifdef ESP_PLATFORM
    return esp_timer_get_time() / 1000;
#else
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
#endif
}

static const midge_transport_t sockets_transport = {
    .ctx = NULL,
    .open = sock_open,
    .send = sock_send,
    .recv = sock_recv,
    .close = sock_close,
    .fd = sock_fd,
    .now_ms = sock_now_ms,
};

const midge_transport_t *transport_sockets(void)
{
    return &sockets_transport;
}
