/* tls.c - TLS (OpenSSL 3) as a transport layer on memory BIOs (see tls.h, xport.h).
 *
 * Each layer owns an SSL whose two BIOs are memory buffers: input() writes the bytes
 * that came from the socket into the read BIO, drives the handshake or SSL_read until
 * OpenSSL wants more, and hands plaintext up; everything OpenSSL wrote (handshake
 * records, alerts, tickets, ciphertext) is drained from the write BIO into *down. The
 * socket stays with the event loop, so a handshake never blocks an I/O thread.
 */
#include "tls.h"

#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

struct tls_ctx {
    SSL_CTX *ssl;
    atomic_int refs; /* layers on any I/O thread hold references */
    bool server;
    bool insecure;
};

typedef struct tls_layer {
    xlayer_t base;
    tls_ctx_t *ctx; /* a reference: the context outlives a listener's reload */
    SSL *ssl;       /* owns rbio and wbio */
    BIO *rbio;      /* bytes from the peer, waiting for OpenSSL */
    BIO *wbio;      /* bytes OpenSSL wrote for the peer */
    bool handshake_done;
    bool failed; /* a fatal error: OpenSSL forbids SSL_shutdown after one */
} tls_layer_t;

/* ---- errors ------------------------------------------------------------------------- */

/* The reason of the oldest error in this thread's OpenSSL queue (the root cause; later
 * entries only say which call gave up), then the queue is cleared. */
static const char *ossl_reason(char *buf, size_t len)
{
    unsigned long e = ERR_get_error();
    const char *reason = e ? ERR_reason_error_string(e) : NULL;
    if (reason)
        snprintf(buf, len, "%s", reason);
    else if (e)
        ERR_error_string_n(e, buf, len);
    else
        snprintf(buf, len, "unknown error");
    ERR_clear_error();
    return buf;
}

/* err = "WHAT PATH: OpenSSL's reason". Returns -1 for `return file_error(...)`. */
static int file_error(char *err, size_t errlen, const char *what, const char *path)
{
    char reason[160];
    snprintf(err, errlen, "%s %s: %s", what, path, ossl_reason(reason, sizeof(reason)));
    return -1;
}

/* OpenSSL's own message for a missing file ("system library") says less than errno:
 * look first, so the error reads "certfile /x/server.crt: No such file or directory". */
static int check_file(char *err, size_t errlen, const char *what, const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        snprintf(err, errlen, "%s %s: %s", what, path, strerror(errno));
        return -1;
    }
    fclose(f);
    return 0;
}

/* ---- contexts ----------------------------------------------------------------------- */

/* A PEM key with a passphrase would make OpenSSL prompt on the terminal; refuse instead,
 * noting in *u (a bool) that one was asked for. */
static int no_passphrase(char *buf, int size, int rwflag, void *u)
{
    (void)buf, (void)size, (void)rwflag;
    if (u)
        *(bool *)u = true;
    return -1;
}

static int parse_version(const char *s, int *out)
{
    if (!strcmp(s, "tlsv1.2"))
        *out = TLS1_2_VERSION;
    else if (!strcmp(s, "tlsv1.3"))
        *out = TLS1_3_VERSION;
    else
        return -1;
    return 0;
}

static int set_versions(SSL_CTX *ssl, const tls_opts_t *o, char *err, size_t errlen)
{
    int min = TLS1_2_VERSION, max = 0; /* 0: the highest OpenSSL knows */
    if (o->tls_version && parse_version(o->tls_version, &min) < 0) {
        snprintf(err, errlen, "tls_version %s: not tlsv1.2 or tlsv1.3", o->tls_version);
        return -1;
    }
    if (o->max_version && parse_version(o->max_version, &max) < 0) {
        snprintf(err, errlen, "max_version %s: not tlsv1.2 or tlsv1.3", o->max_version);
        return -1;
    }
    if (!SSL_CTX_set_min_proto_version(ssl, min) || !SSL_CTX_set_max_proto_version(ssl, max)) {
        char reason[160];
        snprintf(err, errlen, "tls_version: %s", ossl_reason(reason, sizeof(reason)));
        return -1;
    }
    return 0;
}

static int set_ciphers(SSL_CTX *ssl, const tls_opts_t *o, char *err, size_t errlen)
{
    char reason[160];
    if (o->ciphers && !SSL_CTX_set_cipher_list(ssl, o->ciphers)) {
        snprintf(err, errlen, "ciphers %s: %s", o->ciphers, ossl_reason(reason, sizeof(reason)));
        return -1;
    }
    if (o->ciphers13 && !SSL_CTX_set_ciphersuites(ssl, o->ciphers13)) {
        snprintf(err, errlen, "ciphers_tls1.3 %s: %s", o->ciphers13,
                 ossl_reason(reason, sizeof(reason)));
        return -1;
    }
    return 0;
}

/* Our certificate chain and its private key (from keyfile, else from certfile too). */
static int load_identity(SSL_CTX *ssl, const tls_opts_t *o, char *err, size_t errlen)
{
    if (check_file(err, errlen, "certfile", o->certfile) < 0)
        return -1;
    if (SSL_CTX_use_certificate_chain_file(ssl, o->certfile) != 1)
        return file_error(err, errlen, "certfile", o->certfile);
    const char *keyfile = o->keyfile ? o->keyfile : o->certfile;
    if (check_file(err, errlen, "keyfile", keyfile) < 0)
        return -1;
    bool asked = false;
    SSL_CTX_set_default_passwd_cb_userdata(ssl, &asked);
    int ok = SSL_CTX_use_PrivateKey_file(ssl, keyfile, SSL_FILETYPE_PEM);
    SSL_CTX_set_default_passwd_cb_userdata(ssl, NULL);
    if (ok != 1) {
        /* OpenSSL 3's own words for these two ("interrupted or cancelled", "unsupported")
         * do not tell a user what to fix. */
        if (asked)
            snprintf(err, errlen,
                     "keyfile %s: the key is encrypted (Midge cannot ask for a "
                     "passphrase)",
                     keyfile);
        else if (ERR_GET_LIB(ERR_peek_error()) == ERR_LIB_OSSL_DECODER)
            snprintf(err, errlen, "keyfile %s: no PEM private key in the file", keyfile);
        else
            return file_error(err, errlen, "keyfile", keyfile);
        ERR_clear_error();
        return -1;
    }
    if (SSL_CTX_check_private_key(ssl) != 1) {
        char reason[160];
        snprintf(err, errlen, "keyfile %s does not match certfile %s: %s", keyfile, o->certfile,
                 ossl_reason(reason, sizeof(reason)));
        return -1;
    }
    return 0;
}

static int load_cas(SSL_CTX *ssl, const tls_opts_t *o, char *err, size_t errlen)
{
    if (o->cafile) {
        if (check_file(err, errlen, "cafile", o->cafile) < 0)
            return -1;
        if (SSL_CTX_load_verify_file(ssl, o->cafile) != 1)
            return file_error(err, errlen, "cafile", o->cafile);
    }
    if (o->capath) {
        /* OpenSSL only remembers the directory and looks in it during handshakes. */
        struct stat st;
        if (stat(o->capath, &st) < 0) {
            snprintf(err, errlen, "capath %s: %s", o->capath, strerror(errno));
            return -1;
        }
        if (!S_ISDIR(st.st_mode)) {
            snprintf(err, errlen, "capath %s: %s", o->capath, strerror(ENOTDIR));
            return -1;
        }
        if (SSL_CTX_load_verify_dir(ssl, o->capath) != 1)
            return file_error(err, errlen, "capath", o->capath);
    }
    return 0;
}

/* Every CRL of a PEM file goes into the verify store, and the leaf certificate of every
 * peer is checked against them (X509_V_FLAG_CRL_CHECK: a CA without a CRL here makes its
 * certificates fail with "unable to get certificate CRL", as in Mosquitto). */
static int load_crls(SSL_CTX *ssl, const char *path, char *err, size_t errlen)
{
    if (check_file(err, errlen, "crlfile", path) < 0)
        return -1;
    BIO *in = BIO_new_file(path, "r");
    if (!in)
        return file_error(err, errlen, "crlfile", path);
    X509_STORE *store = SSL_CTX_get_cert_store(ssl);
    int count = 0, rc = -1;
    X509_CRL *crl;
    while ((crl = PEM_read_bio_X509_CRL(in, NULL, NULL, NULL))) {
        int ok = X509_STORE_add_crl(store, crl);
        X509_CRL_free(crl);
        if (!ok) {
            file_error(err, errlen, "crlfile", path);
            goto out;
        }
        count++;
    }
    /* The loop ends with "no start line" at the end of the file; any other error is a
     * broken CRL. */
    unsigned long e = ERR_peek_last_error();
    if (ERR_GET_LIB(e) != ERR_LIB_PEM || ERR_GET_REASON(e) != PEM_R_NO_START_LINE) {
        char reason[160];
        snprintf(err, errlen, "crlfile %s: CRL %d is invalid (%s)", path, count + 1,
                 ossl_reason(reason, sizeof(reason)));
        goto out;
    }
    ERR_clear_error();
    if (count == 0) {
        snprintf(err, errlen, "crlfile %s: no PEM CRL in the file", path);
        goto out;
    }
    X509_STORE_set_flags(store, X509_V_FLAG_CRL_CHECK);
    rc = 0;
out:
    BIO_free(in);
    return rc;
}

#define SERVER_SUITES_TLS13                                                                  \
    "TLS_AES_128_GCM_SHA256:TLS_CHACHA20_POLY1305_SHA256:TLS_AES_256_GCM_SHA384"

static tls_ctx_t *ctx_new(const tls_opts_t *o, bool server, char *err, size_t errlen)
{
    ERR_clear_error();
    tls_ctx_t *c = calloc(1, sizeof(*c));
    SSL_CTX *ssl = SSL_CTX_new(server ? TLS_server_method() : TLS_client_method());
    if (!c || !ssl) {
        snprintf(err, errlen, "cannot create a TLS context: out of memory");
        goto fail;
    }
    SSL_CTX_set_default_passwd_cb(ssl, no_passphrase);
    /* Idle connections give their 34 KiB of record buffers back. */
    SSL_CTX_set_mode(ssl, SSL_MODE_RELEASE_BUFFERS);
    if (set_versions(ssl, o, err, errlen) < 0 || set_ciphers(ssl, o, err, errlen) < 0)
        goto fail;
    if (server && !o->certfile) {
        snprintf(err, errlen, "a TLS listener needs a certfile");
        goto fail;
    }
    if (!o->certfile && o->keyfile) {
        snprintf(err, errlen, "keyfile %s without a certfile", o->keyfile);
        goto fail;
    }
    if (o->certfile && load_identity(ssl, o, err, errlen) < 0)
        goto fail;
    if (load_cas(ssl, o, err, errlen) < 0)
        goto fail;
    if (o->crlfile && load_crls(ssl, o->crlfile, err, errlen) < 0)
        goto fail;
    bool have_cas = o->cafile || o->capath;
    if (server) {
        if (o->require_certificate && !have_cas) {
            snprintf(err, errlen, "require_certificate needs a cafile or capath");
            goto fail;
        }
        /* Without require_certificate a certificate is asked for (when there is a CA to
         * check it with) and checked if sent, but a client without one is let in. */
        int mode = !have_cas                ? SSL_VERIFY_NONE
                   : o->require_certificate ? SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT
                                            : SSL_VERIFY_PEER;
        SSL_CTX_set_verify(ssl, mode, NULL);
        /* Resumed sessions with client certificates need a context id, or OpenSSL
         * refuses them ("session id context uninitialized"). */
        static const unsigned char sid[] = "midge";
        SSL_CTX_set_session_id_context(ssl, sid, sizeof(sid) - 1);
        /* Client-initiated renegotiation only costs the server CPU. PRIORITIZE_CHACHA: a
         * client that lists ChaCha20 first (no AES instructions: a Raspberry Pi, many
         * microcontrollers) gets it despite our order. */
        SSL_CTX_set_options(ssl, SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE |
                                     SSL_OP_PRIORITIZE_CHACHA);
        SSL_CTX_set_dh_auto(ssl, 1);
        /* TLS 1.3 suites in our order unless ciphers_tls1.3 says otherwise: AES-128-GCM
         * first, as Go and BoringSSL do. OpenSSL's default puts AES-256-GCM first, whose
         * SHA-384 key schedule costs about 3% more instructions per handshake, for no
         * security an MQTT link needs. */
        if (!o->ciphers13 && !SSL_CTX_set_ciphersuites(ssl, SERVER_SUITES_TLS13)) {
            snprintf(err, errlen, "cannot set the TLS 1.3 cipher suites");
            goto fail;
        }
        /* One session ticket per handshake, not OpenSSL's two: an MQTT client keeps one
         * connection and needs one ticket to resume it. Each ticket costs an encryption
         * and a serialised session: 6% of a handshake's instructions (callgrind). */
        SSL_CTX_set_num_tickets(ssl, 1);
    } else {
        /* A client always checks the server's chain: against cafile/capath, or else the
         * system's CAs. `insecure` only skips the host name (see tls_layer_new). */
        if (!have_cas && SSL_CTX_set_default_verify_paths(ssl) != 1) {
            char reason[160];
            snprintf(err, errlen, "system CA certificates: %s",
                     ossl_reason(reason, sizeof(reason)));
            goto fail;
        }
        SSL_CTX_set_verify(ssl, SSL_VERIFY_PEER, NULL);
    }
    c->ssl = ssl;
    c->server = server;
    c->insecure = o->insecure;
    atomic_init(&c->refs, 1);
    return c;
fail:
    ERR_clear_error();
    SSL_CTX_free(ssl);
    free(c);
    return NULL;
}

/* Load a server (listener) context from o. NULL on error, with err naming the option,
 * the file and OpenSSL's reason. The caller owns the one reference. */
tls_ctx_t *tls_ctx_new_server(const tls_opts_t *o, char *err, size_t errlen)
{
    return ctx_new(o, true, err, errlen);
}

/* Load a client context from o (certfile/keyfile optional: a client certificate). */
tls_ctx_t *tls_ctx_new_client(const tls_opts_t *o, char *err, size_t errlen)
{
    return ctx_new(o, false, err, errlen);
}

/* Take one more reference; any thread. */
tls_ctx_t *tls_ctx_ref(tls_ctx_t *c)
{
    atomic_fetch_add_explicit(&c->refs, 1, memory_order_relaxed);
    return c;
}

/* Drop a reference; the last one frees the context. NULL is allowed. */
void tls_ctx_unref(tls_ctx_t *c)
{
    if (!c || atomic_fetch_sub_explicit(&c->refs, 1, memory_order_acq_rel) != 1)
        return;
    SSL_CTX_free(c->ssl);
    free(c);
}

/* ---- the layer ---------------------------------------------------------------------- */

/* Move everything OpenSSL wrote into *down. -1 when out of memory. BIO_read, not
 * BIO_get_mem_data + BIO_reset: a reset clears the BIO's whole allocation with memset,
 * which after one large burst would cost that much on every small write. */
static int drain(tls_layer_t *t, xbuf_t *down)
{
    size_t n = BIO_ctrl_pending(t->wbio);
    if (n == 0)
        return 0;
    uint8_t *dst = n <= INT_MAX ? xbuf_reserve(down, n) : NULL;
    if (!dst) {
        snprintf(t->base.error, sizeof(t->base.error), "TLS: out of memory");
        return -1;
    }
    int got = BIO_read(t->wbio, dst, (int)n);
    if (got > 0)
        xbuf_added(down, (size_t)got);
    return 0;
}

/* A memory BIO keeps the largest allocation it ever needed. Once a burst is over (the BIO
 * is empty) and it left more than TRIM_ABOVE, the BIO is swapped for a fresh one, so an
 * idle connection holds no more than a record's worth. */
#define TRIM_ABOVE (32 * 1024)

static BIO *new_mem_bio(void)
{
    BIO *b = BIO_new(BIO_s_mem());
    if (b) /* an empty BIO means "wait for more", never end of file */
        BIO_set_mem_eof_return(b, -1);
    return b;
}

static bool oversized_and_empty(BIO *b)
{
    BUF_MEM *bm = NULL;
    if (BIO_ctrl_pending(b) != 0)
        return false;
    BIO_get_mem_ptr(b, &bm);
    return bm && bm->max > TRIM_ABOVE;
}

static void trim_bios(tls_layer_t *t)
{
    BIO *fresh;
    if (oversized_and_empty(t->rbio) && (fresh = new_mem_bio())) {
        SSL_set0_rbio(t->ssl, fresh); /* frees the old one */
        t->rbio = fresh;
    }
    if (oversized_and_empty(t->wbio) && (fresh = new_mem_bio())) {
        SSL_set0_wbio(t->ssl, fresh);
        t->wbio = fresh;
    }
}

/* l->error = "PREFIX: reason" for a fatal SSL error, with the certificate verification
 * result when that is what failed: "TLS handshake: certificate verify failed (certificate
 * has expired)". Clears the thread's error queue. */
static int fatal(tls_layer_t *t, const char *prefix, int ssl_err)
{
    char reason[96]; /* leaves room in l->error for the prefix and the verify result */
    unsigned long e = ERR_peek_error();
    if (ssl_err == SSL_ERROR_SSL || e)
        ossl_reason(reason, sizeof(reason));
    else
        snprintf(reason, sizeof(reason), "SSL error %d", ssl_err);
    long v = SSL_get_verify_result(t->ssl);
    if (ERR_GET_REASON(e) == SSL_R_CERTIFICATE_VERIFY_FAILED && v != X509_V_OK)
        snprintf(t->base.error, sizeof(t->base.error), "%s: %s (%s)", prefix, reason,
                 X509_verify_cert_error_string(v));
    else
        snprintf(t->base.error, sizeof(t->base.error), "%s: %s", prefix, reason);
    ERR_clear_error();
    t->failed = true;
    return -1;
}

/* The UTF-8 common name of a certificate subject; NULL when it has none, or one with a
 * NUL inside (a CN like "admin\0.evil" must not pass for "admin"). */
static char *subject_cn(X509_NAME *name)
{
    int i = X509_NAME_get_index_by_NID(name, NID_commonName, -1);
    if (i < 0)
        return NULL;
    unsigned char *utf8 = NULL;
    int n = ASN1_STRING_to_UTF8(&utf8, X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, i)));
    if (n < 0)
        return NULL;
    char *cn = NULL;
    if (strlen((char *)utf8) == (size_t)n)
        cn = strdup((char *)utf8);
    OPENSSL_free(utf8);
    return cn;
}

static char *subject_rfc2253(X509_NAME *name)
{
    BIO *b = BIO_new(BIO_s_mem());
    if (!b)
        return NULL;
    char *s = NULL;
    if (X509_NAME_print_ex(b, name, 0, XN_FLAG_RFC2253) >= 0) {
        char *p;
        long n = BIO_get_mem_data(b, &p);
        s = malloc((size_t)n + 1);
        if (s) {
            memcpy(s, p, (size_t)n);
            s[n] = '\0';
        }
    }
    BIO_free(b);
    return s;
}

/* The handshake verified the client's certificate (if any was sent): note who it is. */
static int note_peer(tls_layer_t *t)
{
    X509 *cert = SSL_get0_peer_certificate(t->ssl);
    if (!cert)
        return 0;
    X509_NAME *name = X509_get_subject_name(cert);
    t->base.identity = subject_cn(name);
    t->base.subject = subject_rfc2253(name);
    if (!t->base.subject) {
        snprintf(t->base.error, sizeof(t->base.error), "TLS: out of memory");
        return -1;
    }
    return 0;
}

/* The peer's close_notify: answer with ours (TLS closes both ways) and finish. */
static void peer_closed(tls_layer_t *t)
{
    if (!(SSL_get_shutdown(t->ssl) & SSL_SENT_SHUTDOWN))
        SSL_shutdown(t->ssl);
    ERR_clear_error();
    t->base.finished = true;
}

/* Decrypt what the read BIO holds into *up until OpenSSL needs more bytes. */
static int read_records(tls_layer_t *t, xbuf_t *up)
{
    for (;;) {
        uint8_t *dst = xbuf_reserve(up, 16384);
        if (!dst) {
            snprintf(t->base.error, sizeof(t->base.error), "TLS: out of memory");
            return -1;
        }
        size_t got = 0;
        int r = SSL_read_ex(t->ssl, dst, 16384, &got);
        if (r == 1) {
            xbuf_added(up, got);
            continue;
        }
        int e = SSL_get_error(t->ssl, r);
        if (e == SSL_ERROR_WANT_READ)
            return 0;
        if (e == SSL_ERROR_ZERO_RETURN) {
            peer_closed(t);
            return 0;
        }
        return fatal(t, "TLS", e);
    }
}

static int handshake(tls_layer_t *t)
{
    int r = SSL_do_handshake(t->ssl);
    if (r == 1) {
        t->handshake_done = true;
        return SSL_is_server(t->ssl) ? note_peer(t) : 0;
    }
    int e = SSL_get_error(t->ssl, r);
    if (e == SSL_ERROR_WANT_READ)
        return 0;
    return fatal(t, "TLS handshake", e);
}

static int tls_input(xlayer_t *l, const uint8_t *p, size_t n, xbuf_t *up, xbuf_t *down)
{
    tls_layer_t *t = (tls_layer_t *)l;
    if (t->failed)
        return -1;
    if (l->finished)
        return 0; /* after close_notify nothing more counts */
    while (n) {
        int chunk = n > INT_MAX ? INT_MAX : (int)n;
        if (BIO_write(t->rbio, p, chunk) != chunk) {
            snprintf(l->error, sizeof(l->error), "TLS: out of memory");
            return -1;
        }
        p += chunk;
        n -= (size_t)chunk;
    }
    ERR_clear_error(); /* stale errors of this thread would confuse SSL_get_error */
    int rc = 0;
    if (!t->handshake_done)
        rc = handshake(t);
    if (rc == 0 && t->handshake_done)
        rc = read_records(t, up);
    /* Even after a failure: the alert that tells the peer why is worth sending. */
    if (drain(t, down) < 0)
        rc = -1;
    if (rc == 0)
        trim_bios(t);
    return rc;
}

static int tls_output(xlayer_t *l, const uint8_t *p, size_t n, xbuf_t *down)
{
    tls_layer_t *t = (tls_layer_t *)l;
    if (t->failed)
        return -1;
    /* After our close_notify the peer reads nothing more: what is left is dropped, as a
     * closed socket would drop it. */
    if (SSL_get_shutdown(t->ssl) & SSL_SENT_SHUTDOWN)
        return 0;
    ERR_clear_error();
    while (n) {
        size_t done = 0;
        /* The write BIO grows as needed, so SSL_write_ex takes everything or fails. */
        int r = SSL_write_ex(t->ssl, p, n, &done);
        if (r != 1)
            return fatal(t, "TLS", SSL_get_error(t->ssl, r));
        p += done;
        n -= done;
    }
    if (drain(t, down) < 0)
        return -1;
    trim_bios(t);
    return 0;
}

static bool tls_ready(const xlayer_t *l)
{
    return ((const tls_layer_t *)l)->handshake_done;
}

static void tls_shutdown(xlayer_t *l, int code, xbuf_t *down)
{
    (void)code;
    tls_layer_t *t = (tls_layer_t *)l;
    if (!t->handshake_done || t->failed || (SSL_get_shutdown(t->ssl) & SSL_SENT_SHUTDOWN))
        return;
    ERR_clear_error();
    SSL_shutdown(t->ssl); /* 0: our close_notify is written; the answer is not awaited */
    ERR_clear_error();
    drain(t, down);
}

static void tls_destroy(xlayer_t *l)
{
    tls_layer_t *t = (tls_layer_t *)l;
    SSL_free(t->ssl);
    tls_ctx_unref(t->ctx);
    free(l->identity);
    free(l->subject);
    free(t);
}

static const xlayer_ops_t tls_ops = {
    .name = "tls",
    .input = tls_input,
    .output = tls_output,
    .ready = tls_ready,
    .shutdown = tls_shutdown,
    .destroy = tls_destroy,
};

/* Client role: SNI and the name the server's certificate must carry. An IP address is
 * matched against the certificate's IP SANs and is not sent as SNI (RFC 6066 3). */
static int set_server_name(tls_layer_t *t, const char *name)
{
    unsigned char addr[16];
    bool is_ip = inet_pton(AF_INET, name, addr) == 1 || inet_pton(AF_INET6, name, addr) == 1;
    if (!is_ip && SSL_set_tlsext_host_name(t->ssl, name) != 1)
        return -1;
    if (t->ctx->insecure)
        return 0;
    X509_VERIFY_PARAM *vp = SSL_get0_param(t->ssl);
    if (is_ip)
        return X509_VERIFY_PARAM_set1_ip_asc(vp, name) == 1 ? 0 : -1;
    X509_VERIFY_PARAM_set_hostflags(vp, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
    return X509_VERIFY_PARAM_set1_host(vp, name, 0) == 1 ? 0 : -1;
}

/* A layer for one connection, holding a reference to c. server_name: see tls.h; a client
 * layer without one checks the chain only. NULL when out of memory. */
xlayer_t *tls_layer_new(tls_ctx_t *c, const char *server_name)
{
    tls_layer_t *t = calloc(1, sizeof(*t));
    if (!t)
        return NULL;
    t->base.ops = &tls_ops;
    t->ctx = tls_ctx_ref(c);
    t->ssl = SSL_new(c->ssl);
    t->rbio = new_mem_bio();
    t->wbio = new_mem_bio();
    if (!t->ssl || !t->rbio || !t->wbio) {
        BIO_free(t->rbio);
        BIO_free(t->wbio);
        goto fail;
    }
    SSL_set_bio(t->ssl, t->rbio, t->wbio); /* the SSL owns them from here: SSL_free */
    if (c->server) {
        SSL_set_accept_state(t->ssl);
    } else {
        SSL_set_connect_state(t->ssl);
        if (server_name && set_server_name(t, server_name) < 0)
            goto fail;
    }
    return &t->base;
fail:
    ERR_clear_error();
    SSL_free(t->ssl);
    tls_ctx_unref(t->ctx);
    free(t);
    return NULL;
}

/* "TLSv1.3" or "TLSv1.2" once the handshake is done; NULL before. */
const char *tls_layer_version(const xlayer_t *l)
{
    const tls_layer_t *t = (const tls_layer_t *)l;
    return t->handshake_done ? SSL_get_version(t->ssl) : NULL;
}
