/* xconn.h - the client role of the transport layers (src/net: TLS, WebSocket) over one
 * socket: what libmidge's TLS/WS transport and midge-bench both drive.
 *
 * It owns the layers, not the socket: the caller reads the socket into xconn_input, takes
 * the decoded MQTT bytes from xconn_app, gives MQTT bytes to xconn_output and writes with
 * xconn_flush when the socket is writable. Internal to src/client and src/tools.
 */
#ifndef MIDGE_CLIENT_XCONN_H
#define MIDGE_CLIENT_XCONN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "net/tls.h"
#include "net/xbuf.h"

typedef struct xconn xconn_t;

/* Layers for one connection to host:port: TLS when tls is not NULL (SNI and the name check
 * use host), WebSocket to ws_path when it is not NULL (Host header host:port), both for
 * wss. Their first bytes (ClientHello, or the upgrade request) are already waiting to be
 * flushed. NULL when out of memory. */
xconn_t *xconn_new(tls_ctx_t *tls, const char *ws_path, const char *host, uint16_t port);
/* Bytes read from the socket; the MQTT bytes among them are appended to xconn_app(). 0, or
 * -1 when the connection must close (xconn_error says why). */
int xconn_input(xconn_t *c, const uint8_t *p, size_t n);
/* Decoded MQTT bytes: the caller consumes them (xbuf_consume). */
xbuf_t *xconn_app(xconn_t *c);
/* MQTT bytes to send (held until the handshakes are done). 0 or -1. */
int xconn_output(xconn_t *c, const uint8_t *p, size_t n);
/* Write what waits for the socket: bytes written (0 when full), -1 on a socket error. */
long xconn_flush(xconn_t *c, int fd);
/* Bytes waiting for the socket. */
size_t xconn_pending(const xconn_t *c);
/* Every handshake done (TLS, WebSocket upgrade). */
bool xconn_ready(const xconn_t *c);
/* A layer ended the conversation (the peer's close frame or close_notify). */
bool xconn_finished(const xconn_t *c);
/* Why input/output failed: the layer's reason, "TLS handshake: ...", "WebSocket: ...". */
const char *xconn_error(const xconn_t *c);
/* "TLS handshake", "WebSocket upgrade" or both: the step a failure before xconn_ready()
 * happened in, for messages. */
const char *xconn_handshake_name(const xconn_t *c);
/* We close: every layer's goodbye (close frame, close_notify) goes into the pending bytes. */
void xconn_shutdown(xconn_t *c);
void xconn_free(xconn_t *c);

#endif
