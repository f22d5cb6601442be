/* ws.h - MQTT over WebSocket as a transport layer (see xport.h), with wslay framing, and
 * the static HTTP files served on the same port.
 *
 * Server role: the layer reads an HTTP/1.1 request head (http.h). An Upgrade to
 * websocket with subprotocol mqtt (or mqttv3.1) is answered 101 and from then on binary
 * messages carry the MQTT byte stream (a packet may span messages, a message may hold
 * several packets); ping/pong and close are handled here. A plain GET or HEAD serves a file
 * from http_dir (then the layer is finished); anything else gets the right 4xx/5xx.
 * Client role: sends the upgrade request, checks the 101 answer, masks its frames.
 */
#ifndef MIDGE_WS_H
#define MIDGE_WS_H

#include <stddef.h>
#include <stdint.h>

#include "xport.h"

typedef struct ws_opts {
    const char *http_dir;                /* NULL: no files (GET answers 404) */
    const char *const *origins;          /* websockets_origin values; none: any Origin */
    int norigins;
    const char *const *trusted_proxies;  /* peer addresses (no port) whose X-Forwarded-For
                                          * is believed */
    int ntrusted;
    size_t max_message;                  /* largest WebSocket message accepted (1009 above) */
} ws_opts_t;

/* peer_ip: the connection's address without port (for trusted_proxies). The options
 * must outlive the layer. NULL when out of memory. */
xlayer_t *ws_layer_new_server(const ws_opts_t *o, const char *peer_ip);
/* host/port for the Host header, path such as "/mqtt". */
xlayer_t *ws_layer_new_client(const char *host, uint16_t port, const char *path);

#endif
