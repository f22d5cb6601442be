/* listener.h - the listening sockets and what each listener puts between a socket and
 * MQTT: PROXY header, TLS, WebSocket, and the password/ACL files that apply to it.
 *
 * Things that SIGHUP reloads (TLS certificates, password and ACL files) are reached
 * through atomic pointers: a reload swaps in new ones and frees the old only after every
 * I/O thread has begun a new loop turn (listener_reload), so the hot path takes no lock.
 */
#ifndef MIDGE_LISTENER_H
#define MIDGE_LISTENER_H

#include <stdatomic.h>
#include <stdbool.h>

#include "auth/auth.h"
#include "conf/config.h"
#include "net/tls.h"
#include "net/ws.h"
#include "net/xport.h"

struct broker;

/* The state of one configured listener (cfg.listeners[i]). */
typedef struct listener {
    const config_listener_t *cfg;
    int index;
    _Atomic(tls_ctx_t *) tls; /* NULL: not a TLS listener */
    _Atomic(auth_t *) auth;   /* NULL: no password file and no ACL file */
    ws_opts_t ws;             /* for protocol websockets */
    const char *origins[CONFIG_MAX_ORIGINS];
    const char *trusted[CONFIG_MAX_TRUSTED];
    atomic_uint conns;        /* open sockets, for its max_connections */
} listener_t;

/* One listening socket (a listener may have an IPv4 and an IPv6 one). The event loop
 * hands this back: kind first. */
typedef struct listen_socket {
    int kind; /* HANDLER_LISTEN */
    int fd;
    int listener; /* index in broker.listener */
} listen_socket_t;

/* Load certificates and auth files and open the sockets of every configured listener.
 * -1 on any error (logged with the file and reason). */
int listeners_open(struct broker *b);
void listeners_close(struct broker *b);
/* --test-config: load every listener's certificates and auth files, open no socket.
 * -1 when any fails (each failure logged). */
int listeners_check(const config_t *cfg);

/* The transport stack a new connection on listener l needs, pushed onto x (left empty
 * for plain MQTT over TCP). peer_ip: the address without port. -1 when out of memory. */
int listener_make_stack(listener_t *l, xport_t *x, const char *peer_ip);

/* SIGHUP: reload TLS contexts and auth files. A file that fails to load keeps the old
 * state for that listener (logged). Runs on the main thread. */
void listeners_reload(struct broker *b);

#endif
