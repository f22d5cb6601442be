/* sock.h - connecting the socket under every transport of libmidge (TCP, unix, TLS, WS).
 *
 * One place for the bounded connect (non-blocking connect + poll) so that the plain, TLS
 * and WebSocket transports all reach the broker the same way. Internal to src/client.
 */
#ifndef MIDGE_CLIENT_SOCK_H
#define MIDGE_CLIENT_SOCK_H

#include <stdint.h>

/* Resolve host (getaddrinfo, IPv4 and IPv6) and connect each address in turn, waiting at
 * most timeout_ms for each. Returns a non-blocking descriptor with TCP_NODELAY, or -1 with
 * errno set (EHOSTUNREACH when the name does not resolve, ETIMEDOUT, ECONNREFUSED...). */
int sock_connect_tcp(const char *host, uint16_t port, int timeout_ms);

/* Connect to the unix domain stream socket at path. A non-blocking descriptor, or -1 with
 * errno set (ENAMETOOLONG when the path does not fit sockaddr_un). */
int sock_connect_unix(const char *path, int timeout_ms);

/* CLOCK_MONOTONIC in milliseconds. */
int64_t sock_now_ms(void);

#endif
