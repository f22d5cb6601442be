/* transport.h - the byte pipe under libmidge: how a client reaches the broker.
 *
 * libmidge speaks MQTT over any reliable, ordered byte stream that implements these few
 * functions. The default is plain TCP (midge_transport_tcp); TLS and WebSocket slot in
 * the same way, and a device with its own TCP stack (lwIP on an ESP32, a modem) plugs in
 * its own table without touching the library.
 */
#ifndef MIDGE_TRANSPORT_H
#define MIDGE_TRANSPORT_H

#include <stddef.h>
#include <stdint.h>

/* Marks the public functions of libmidge: the shared library exports only these. */
#ifndef MIDGE_API
#define MIDGE_API __attribute__((visibility("default")))
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* A transport: a table of functions and the context handed to each of them. The client
 * calls them from the thread that drives it, one at a time.
 *
 * open:  create a connection state for host:port and connect, waiting at most
 *        timeout_ms. Returns 0 and sets *conn, or a negative value (MIDGE_ECONN) on
 *        failure. After open the connection must be non-blocking: send and recv never
 *        wait.
 * send:  write up to n bytes; returns the count written (may be short), 0 when nothing
 *        can be written now, negative when the connection failed.
 * recv:  read up to n bytes; returns the count read, 0 when nothing is available now,
 *        negative when the peer closed the connection or it failed.
 * close: close the connection and free its state (conn is not used again).
 * fd:    the descriptor to wait on (poll/epoll/select) for readability and writability,
 *        or -1 when there is none; then the client polls (midge_client_step sleeps at
 *        most 10 ms between attempts).
 * now_ms: a monotonic clock in milliseconds (keepalive and reconnect timers). NULL: the
 *        library uses CLOCK_MONOTONIC.
 */
typedef struct midge_transport {
    void *ctx;
    int (*open)(void *ctx, const char *host, uint16_t port, int timeout_ms, void **conn);
    long (*send)(void *ctx, void *conn, const uint8_t *p, size_t n);
    long (*recv)(void *ctx, void *conn, uint8_t *p, size_t n);
    void (*close)(void *ctx, void *conn);
    int (*fd)(void *ctx, void *conn);
    int64_t (*now_ms)(void *ctx);
} midge_transport_t;

/* The plain TCP transport (IPv4 and IPv6, TCP_NODELAY, non-blocking after connect). */
MIDGE_API const midge_transport_t *midge_transport_tcp(void);

#ifdef __cplusplus
}
#endif

#endif
