/* listener.c - listening sockets and per-listener transports and auth (see listener.h). */
#include "listener.h"

#include <errno.h>
#include <net/if.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "broker.h"
#include "log.h"

/* ---- loading what a listener needs ------------------------------------------------ */

static tls_ctx_t *load_tls(const config_listener_t *c)
{
    tls_opts_t o = {
        .cafile = c->cafile[0] ? c->cafile : NULL,
        .capath = c->capath[0] ? c->capath : NULL,
        .certfile = c->certfile,
        .keyfile = c->keyfile[0] ? c->keyfile : NULL,
        .crlfile = c->crlfile[0] ? c->crlfile : NULL,
        .ciphers = c->ciphers[0] ? c->ciphers : NULL,
        .ciphers13 = c->ciphers13[0] ? c->ciphers13 : NULL,
        .tls_version = c->tls_version[0] ? c->tls_version : NULL,
        .require_certificate = c->require_certificate,
    };
    char err[256];
    tls_ctx_t *t = tls_ctx_new_server(&o, err, sizeof(err));
    if (!t)
        log_msg(LOG_ERR, "Error: listener on port %u: %s", c->port, err);
    return t;
}

/* The first TLS listener before i with the same TLS options: listeners share one
 * context, so the files are read once and a session ticket from one resumes on the
 * other. -1 when i is the first. */
static int tls_owner(const broker_t *b, int i)
{
    const config_listener_t *c = b->listener[i].cfg;
    for (int j = 0; j < i; j++) {
        const config_listener_t *o = b->listener[j].cfg;
        if (o->certfile[0] && strcmp(o->certfile, c->certfile) == 0 &&
            strcmp(o->keyfile, c->keyfile) == 0 && strcmp(o->cafile, c->cafile) == 0 &&
            strcmp(o->capath, c->capath) == 0 && strcmp(o->crlfile, c->crlfile) == 0 &&
            strcmp(o->ciphers, c->ciphers) == 0 && strcmp(o->ciphers13, c->ciphers13) == 0 &&
            strcmp(o->tls_version, c->tls_version) == 0 &&
            o->require_certificate == c->require_certificate)
            return j;
    }
    return -1;
}

/* The TLS context for listener i: a new reference to its owner's (loaded in this pass
 * already, or kept when that failed), or a new one. NULL when loading failed. */
static tls_ctx_t *take_tls(broker_t *b, int i)
{
    int owner = tls_owner(b, i);
    if (owner >= 0)
        return tls_ctx_ref(atomic_load(&b->listener[owner].tls));
    return load_tls(b->listener[i].cfg);
}

/* Returns 0 with *out NULL when the listener has neither file. */
static int load_auth(const config_listener_t *c, auth_t **out)
{
    *out = NULL;
    if (!c->password_file[0] && !c->acl_file[0])
        return 0;
    char err[512];
    auth_t *a = auth_load(c->password_file[0] ? c->password_file : NULL,
                          c->acl_file[0] ? c->acl_file : NULL, err, sizeof(err));
    if (!a) {
        log_msg(LOG_ERR, "Error: %s", err);
        return -1;
    }
    *out = a;
    return 0;
}

/* The first listener before i that has the same password and ACL files: listeners share
 * one snapshot of them (with per_listener_settings false, that is every listener), loaded
 * and freed by that first one. -1 when i is the first. */
static int auth_owner(const broker_t *b, int i)
{
    const config_listener_t *c = b->listener[i].cfg;
    for (int j = 0; j < i; j++) {
        const config_listener_t *o = b->listener[j].cfg;
        if (strcmp(o->password_file, c->password_file) == 0 &&
            strcmp(o->acl_file, c->acl_file) == 0)
            return j;
    }
    return -1;
}

/* The auth snapshot for listener i: its owner's (already loaded in this pass), or a new
 * one. -1 when loading failed. */
static int take_auth(broker_t *b, int i, auth_t **out)
{
    int owner = auth_owner(b, i);
    if (owner >= 0) {
        *out = atomic_load(&b->listener[owner].auth);
        return 0;
    }
    return load_auth(b->listener[i].cfg, out);
}

static void setup_ws(listener_t *l)
{
    const config_listener_t *c = l->cfg;
    for (int i = 0; i < c->norigins; i++)
        l->origins[i] = c->origins[i];
    for (int i = 0; i < c->ntrusted; i++)
        l->trusted[i] = c->trusted_proxies[i];
    l->ws.http_dir = c->http_dir[0] ? c->http_dir : NULL;
    l->ws.origins = l->origins;
    l->ws.norigins = c->norigins;
    l->ws.trusted_proxies = l->trusted;
    l->ws.ntrusted = c->ntrusted;
}

int listeners_check(const config_t *cfg)
{
    int bad = 0;
    for (int i = 0; i < cfg->listener_count; i++) {
        const config_listener_t *c = &cfg->listeners[i];
        if (c->certfile[0]) {
            tls_ctx_t *t = load_tls(c);
            if (t)
                tls_ctx_unref(t);
            else
                bad++;
        }
        auth_t *a;
        if (load_auth(c, &a) < 0)
            bad++;
        else if (a)
            auth_free(a);
    }
    return bad ? -1 : 0;
}

/* ---- sockets ------------------------------------------------------------------------ */

static int add_socket(broker_t *b, int fd, int index)
{
    if (b->nlisten >= BROKER_MAX_LISTEN_FDS) {
        log_msg(LOG_ERR, "Error: more than %d listening sockets", BROKER_MAX_LISTEN_FDS);
        close(fd);
        return -1;
    }
    b->listen_socks[b->nlisten].kind = HANDLER_LISTEN;
    b->listen_socks[b->nlisten].fd = fd;
    b->listen_socks[b->nlisten].listener = index;
    b->nlisten++;
    return 0;
}

static int open_unix(broker_t *b, int index, const char *path)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    unlink(path); /* a socket file left by an earlier run */
    if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(fd, 1024) < 0) {
        log_msg(LOG_ERR, "Error: cannot listen on unix socket %s: %s", path, strerror(errno));
        close(fd);
        return -1;
    }
    log_msg(LOG_NOTICE, "Opening unix listen socket on %s.", path);
    return add_socket(b, fd, index);
}

static int open_tcp(broker_t *b, int index, const config_listener_t *c)
{
    const char *host = c->bind_address[0] ? c->bind_address : NULL;
    int family = c->socket_domain == 4 ? AF_INET : c->socket_domain == 6 ? AF_INET6 : AF_UNSPEC;
    struct addrinfo hints = {.ai_family = family, .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
    struct addrinfo *res = NULL;
    char portstr[8];
    snprintf(portstr, sizeof(portstr), "%u", c->port);
    int rc = getaddrinfo(host, portstr, &hints, &res);
    if (rc != 0) {
        log_msg(LOG_ERR, "Error: cannot resolve listener address %s: %s", host ? host : "*",
                gai_strerror(rc));
        return -1;
    }
    int opened = 0;
    for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
        int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd < 0)
            continue;
        int one = 1;
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
        if (ai->ai_family == AF_INET6)
            setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
        if (c->bind_interface[0] &&
            setsockopt(fd, SOL_SOCKET, SO_BINDTODEVICE, c->bind_interface,
                       (socklen_t)strlen(c->bind_interface)) < 0) {
            log_msg(LOG_ERR, "Error: bind_interface %s: %s", c->bind_interface, strerror(errno));
            close(fd);
            freeaddrinfo(res);
            return -1;
        }
        if (bind(fd, ai->ai_addr, ai->ai_addrlen) < 0 || listen(fd, 1024) < 0) {
            log_msg(LOG_ERR, "Error: cannot listen on %s port %u: %s", host ? host : "*",
                    c->port, strerror(errno));
            close(fd);
            continue;
        }
        if (add_socket(b, fd, index) < 0)
            break;
        opened++;
        log_msg(LOG_NOTICE, "Opening %s%s%s listen socket on port %u.",
                ai->ai_family == AF_INET6 ? "ipv6" : "ipv4",
                c->certfile[0] ? " tls" : "", c->websockets ? " websockets" : "", c->port);
    }
    freeaddrinfo(res);
    return opened ? 0 : -1;
}

int listeners_open(broker_t *b)
{
    const config_t *cfg = &b->cfg;
    for (int i = 0; i < cfg->listener_count; i++) {
        listener_t *l = &b->listener[i];
        const config_listener_t *c = &cfg->listeners[i];
        l->cfg = c;
        l->index = i;
        if (c->certfile[0]) {
            tls_ctx_t *t = take_tls(b, i);
            if (!t)
                return -1;
            atomic_store(&l->tls, t);
        }
        auth_t *a;
        if (take_auth(b, i, &a) < 0)
            return -1;
        atomic_store(&l->auth, a);
        if (c->websockets)
            setup_ws(l);
        l->ws.max_message = cfg->max_packet_size ? (size_t)cfg->max_packet_size + 16 : 0;
        if (c->unix_path[0] ? open_unix(b, i, c->unix_path) < 0 : open_tcp(b, i, c) < 0)
            return -1;
    }
    return 0;
}

void listeners_close(broker_t *b)
{
    for (int i = 0; i < b->nlisten; i++)
        close(b->listen_socks[i].fd);
    b->nlisten = 0;
    /* Last first: a listener that shares another's auth snapshot lets go of it before
     * its owner frees it. */
    for (int i = b->cfg.listener_count - 1; i >= 0; i--) {
        listener_t *l = &b->listener[i];
        tls_ctx_t *t = atomic_exchange(&l->tls, NULL);
        if (t)
            tls_ctx_unref(t);
        auth_t *a = atomic_exchange(&l->auth, NULL);
        if (a && auth_owner(b, i) < 0)
            auth_free(a);
        if (l->cfg && l->cfg->unix_path[0])
            unlink(l->cfg->unix_path);
    }
}

int listener_make_stack(listener_t *l, xport_t *x, const char *peer_ip)
{
    const config_listener_t *c = l->cfg;
    if (c->certfile[0]) {
        xlayer_t *t = tls_layer_new(atomic_load(&l->tls), NULL);
        if (!t)
            return -1;
        xport_push(x, t);
    }
    if (c->websockets) {
        xlayer_t *w = ws_layer_new_server(&l->ws, peer_ip);
        if (!w)
            return -1;
        xport_push(x, w);
    }
    return 0;
}

/* ---- reload ------------------------------------------------------------------------- */

/* Wait until every I/O thread has started a loop turn after the pointers were swapped:
 * then none can still hold an old one. */
static void wait_grace(broker_t *b)
{
    unsigned gen = atomic_fetch_add(&b->reload_gen, 1) + 1;
    for (int i = 0; i < b->nworkers; i++)
        worker_wake(&b->workers[i]);
    for (int tries = 0; tries < 5000; tries++) { /* at most 5 s */
        int behind = 0;
        for (int i = 0; i < b->nworkers; i++)
            if ((int)(atomic_load(&b->workers[i].seen_gen) - gen) < 0)
                behind++;
        if (!behind)
            return;
        usleep(1000);
    }
    log_msg(LOG_WARN, "reload: an I/O thread did not finish its turn in 5 s");
}

void listeners_reload(broker_t *b)
{
    int n = b->cfg.listener_count;
    tls_ctx_t *old_tls[CONFIG_MAX_LISTENERS] = {0};
    auth_t *old_auth[CONFIG_MAX_LISTENERS] = {0};
    int reloaded = 0;
    for (int i = 0; i < n; i++) {
        listener_t *l = &b->listener[i];
        const config_listener_t *c = l->cfg;
        if (c->certfile[0]) {
            tls_ctx_t *t = take_tls(b, i); /* NULL: loading failed, the old one stays */
            tls_ctx_t *old = t ? atomic_exchange(&l->tls, t) : NULL;
            if (old && old == t)
                tls_ctx_unref(old); /* its owner kept its old one: so does this one */
            else
                old_tls[i] = old;
        }
        bool changed = old_tls[i] != NULL;
        auth_t *a;
        if (take_auth(b, i, &a) == 0 && a) {
            auth_t *old = atomic_exchange(&l->auth, a);
            changed |= old != a;
            if (auth_owner(b, i) < 0)
                old_auth[i] = old; /* freed once, by its owner */
        }
        reloaded += changed;
    }
    if (b->started)
        wait_grace(b);
    for (int i = 0; i < n; i++) {
        if (old_tls[i])
            tls_ctx_unref(old_tls[i]);
        if (old_auth[i])
            auth_free(old_auth[i]);
    }
    log_msg(LOG_NOTICE, "Reloaded TLS certificates and password/ACL files of %d listener%s.",
            reloaded, reloaded == 1 ? "" : "s");
}
