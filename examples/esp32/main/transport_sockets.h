/* transport_sockets.h - a libmidge transport (midge_transport_t) on BSD sockets.
 *
 * The same source runs on the ESP32, where ESP-IDF's BSD socket API is lwIP's, and on a
 * host, where it is POSIX: the host build of this example (host/) therefore tests the
 * very transport the device uses.
 */
#ifndef TRANSPORT_SOCKETS_H
#define TRANSPORT_SOCKETS_H

#include "midge/transport.h"

/* The transport table (static; ctx unused). IPv4 and IPv6 via getaddrinfo, TCP_NODELAY,
 * non-blocking after a connect bounded by the caller's timeout; now_ms is esp_timer on
 * the ESP32 and CLOCK_MONOTONIC on a host. */
const midge_transport_t *transport_sockets(void);

#endif
