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
 * pending: bytes the transport has already received and decoded that recv returns without
 *        waiting (a TLS or WebSocket layer can decode more than one recv asks for, and the
 *        descriptor does not become readable again for them). NULL: never any. The client
 *        calls recv again instead of sleeping while it is not 0.
 */
typedef struct midge_transport {
    void *ctx;
    int (*open)(void *ctx, const char *host, uint16_t port, int timeout_ms, void **conn);
    long (*send)(void *ctx, void *conn, const uint8_t *p, size_t n);
    long (*recv)(void *ctx, void *conn, uint8_t *p, size_t n);
    void (*close)(void *ctx, void *conn);
    int (*fd)(void *ctx, void *conn);
    int64_t (*now_ms)(void *ctx);
    size_t (*pending)(void *ctx, void *conn);
} midge_transport_t;

/* The plain TCP transport (IPv4 and IPv6, TCP_NODELAY, non-blocking after connect). */
MIDGE_API const midge_transport_t *midge_transport_tcp(void);

/* A unix domain stream socket: the client's host option is the socket's path (the port is
 * ignored), as `mosquitto_pub --unix PATH` and Mosquitto's `listener 0 PATH`. */
MIDGE_API const midge_transport_t *midge_transport_unix(void);

/* TLS options of midge_transport_tls_new and midge_transport_ws_new, with the meanings of
 * mosquitto_pub's flags of the same names. Strings are copied where needed: they need not
 * outlive the call. Zero them (or use {0}) for OpenSSL's defaults. */
typedef struct midge_tls_options {
    const char *cafile;      /* PEM CA bundle that verifies the broker (--cafile) */
    const char *capath;      /* directory of hashed CA certificates (--capath); with
                              * cafile NULL too, the broker's certificate cannot verify */
    const char *certfile;    /* our client certificate, PEM (--cert), with keyfile */
    const char *keyfile;     /* its private key, PEM (--key) */
    const char *tls_version; /* minimum version: "tlsv1.2" or "tlsv1.3" (--tls-version);
                              * NULL: 1.2 and 1.3, 1.3 preferred */
    const char *ciphers;     /* TLS 1.2 cipher list, OpenSSL syntax (--ciphers); NULL:
                              * OpenSSL's */
    int insecure;            /* 1: do not check that the certificate names the host
                              * (--insecure); the chain is still verified */
} midge_tls_options_t;

/* MQTT over TLS (mqtts://, port 8883 by convention): each connection connects TCP to the
 * client's host and port, sends the host name as SNI, verifies the broker's certificate
 * against cafile/capath and its name against the host (unless insecure), all within the
 * client's connect_timeout_ms. Loads the files now: NULL on error, with err naming the file
 * and OpenSSL's reason ("cafile /x/ca.crt: No such file or directory"). Free with
 * midge_transport_free once no client uses it. */
MIDGE_API midge_transport_t *midge_transport_tls_new(const midge_tls_options_t *tls, char *err,
                                                     size_t errlen);

/* MQTT over WebSocket (ws://, or wss:// when tls is not NULL): after the TCP connect (and
 * the TLS handshake) it sends the HTTP upgrade to path (NULL: "/mqtt") with subprotocol
 * "mqtt" and waits for the broker's 101, all within connect_timeout_ms; MQTT then travels
 * in masked binary frames. NULL on error with err set (bad TLS files, a path that does not
 * start with '/'). Free with midge_transport_free. */
MIDGE_API midge_transport_t *
midge_transport_ws_new(const char *path, const midge_tls_options_t *tls, char *err, size_t errlen);

/* Why the last connection made through t failed or was closed by a layer, e.g. "TLS
 * handshake: certificate verify failed (unable to get local issuer certificate)" or
 * "WebSocket upgrade refused: HTTP/1.1 400 Bad Request"; "" when it was a plain socket error
 * (errno tells) or for transports that keep no such text (tcp, unix, your own). Shared by
 * all clients of t: read it from the thread that drives the client. */
MIDGE_API const char *midge_transport_error(const midge_transport_t *t);

/* Free a transport made by midge_transport_tls_new or midge_transport_ws_new (NULL and the
 * built-in tcp and unix transports are ignored). No client may still use it. */
MIDGE_API void midge_transport_free(midge_transport_t *t);

#ifdef __cplusplus
}
#endif

#endif
