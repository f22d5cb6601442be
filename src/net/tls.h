/* tls.h - TLS (OpenSSL 3) as a transport layer on memory BIOs (see xport.h).
 *
 * A tls_ctx_t is what a listener (server role) or a client configuration (client role)
 * loads once: certificates, keys, CA, CRL, versions, ciphers. Each connection gets its own
 * layer from it. Contexts are reference counted: a layer keeps its context alive, so a
 * listener can swap in a reloaded context (SIGHUP) while old connections carry on.
 */
#ifndef MIDGE_TLS_H
#define MIDGE_TLS_H

#include <stdbool.h>
#include <stddef.h>

#include "xport.h"

typedef struct tls_opts {
    const char *cafile;      /* PEM CA bundle: verifies the peer's certificate */
    const char *capath;      /* directory of hashed CA certificates (c_rehash) */
    const char *certfile;    /* our certificate chain, PEM (server: required) */
    const char *keyfile;     /* our private key, PEM */
    const char *crlfile;     /* server: PEM CRL; client certificates it revokes are refused */
    const char *ciphers;     /* TLS 1.2 cipher list (OpenSSL syntax); NULL: OpenSSL's */
    const char *ciphers13;   /* TLS 1.3 ciphersuites; NULL: OpenSSL's */
    const char *tls_version; /* "tlsv1.3", "tlsv1.2" (Mosquitto's names): the minimum;
                              * NULL: 1.2 and 1.3, 1.3 preferred */
    const char *max_version; /* the maximum, same names; NULL: none. Not a Mosquitto
                              * option: the tests use it to play a TLS 1.2-only peer */
    bool require_certificate; /* server: a client certificate signed by cafile/capath is
                               * mandatory (without it one is asked for but optional) */
    bool insecure;           /* client: do not check the server's host name */
} tls_opts_t;

typedef struct tls_ctx tls_ctx_t;

/* Load a context. NULL on error with err naming the file and OpenSSL's reason, e.g.
 * "certfile /x/server.crt: No such file or directory". */
tls_ctx_t *tls_ctx_new_server(const tls_opts_t *o, char *err, size_t errlen);
tls_ctx_t *tls_ctx_new_client(const tls_opts_t *o, char *err, size_t errlen);
tls_ctx_t *tls_ctx_ref(tls_ctx_t *c);
void tls_ctx_unref(tls_ctx_t *c);

/* A layer for one connection. server_name (client role only): SNI and the host name the
 * server's certificate must match (unless insecure). NULL when out of memory.
 * After the handshake, a server layer with a client certificate sets l->identity (CN)
 * and l->subject. Handshake failures give input() -1 with l->error like
 * "TLS handshake: certificate verify failed (certificate has expired)". */
xlayer_t *tls_layer_new(tls_ctx_t *c, const char *server_name);
/* The protocol a layer's handshake settled on, "TLSv1.3" or "TLSv1.2"; NULL before. */
const char *tls_layer_version(const xlayer_t *l);

#endif
