/* test_tls.c - the TLS layer (src/net/tls.c): a client layer and a server layer talk
 * through memory, with the certificates of scripts/gen-certs.sh.
 *
 * The group setup runs scripts/gen-certs.sh into a fresh temporary directory. The script
 * is found through $MIDGE_SOURCE_DIR/scripts, else ../scripts (ctest runs the test in the
 * build directory, which sits at the top of the source tree), else ./scripts.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "net/tls.h"

static char certdir[256];

/* DIR/name in one of 32 rotating buffers: enough for the options of the contexts that
 * one expression builds. */
static const char *F(const char *name)
{
    static char bufs[32][320];
    static int next;
    char *b = bufs[next++ % 32];
    snprintf(b, sizeof(bufs[0]), "%s/%s", certdir, name);
    return b;
}

static int find_script(char *out, size_t len)
{
    const char *src = getenv("MIDGE_SOURCE_DIR");
    const char *candidates[] = {src ? src : "", "..", "."};
    for (size_t i = 0; i < sizeof(candidates) / sizeof(candidates[0]); i++) {
        if (!candidates[i][0])
            continue;
        snprintf(out, len, "%s/scripts/gen-certs.sh", candidates[i]);
        if (access(out, X_OK) == 0)
            return 0;
    }
    return -1;
}

static int make_certs(void **state)
{
    (void)state;
    char script[512], cmd[1024];
    if (find_script(script, sizeof(script)) < 0) {
        fprintf(stderr, "test_tls: scripts/gen-certs.sh not found: set MIDGE_SOURCE_DIR\n");
        return -1;
    }
    snprintf(certdir, sizeof(certdir), "%s/midge-tls-XXXXXX",
             getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    if (!mkdtemp(certdir))
        return -1;
    snprintf(cmd, sizeof(cmd), "'%s' '%s'", script, certdir);
    if (system(cmd) != 0)
        return -1;
    snprintf(
        cmd, sizeof(cmd),
        "openssl pkey -in '%s/server.key' -aes256 -passout pass:secret -out '%s/encrypted.key'",
        certdir, certdir);
    if (system(cmd) != 0)
        return -1;
    /* Files that are not what their name promises, for the error tests. */
    FILE *f = fopen(F("garbage.pem"), "w");
    if (!f)
        return -1;
    fputs("this is not PEM\n", f);
    fclose(f);
    f = fopen(F("broken-crl.pem"), "w");
    if (!f)
        return -1;
    fputs("-----BEGIN X509 CRL-----\nMIIBAAAA\n-----END X509 CRL-----\n", f);
    fclose(f);
    return 0;
}

static int remove_certs(void **state)
{
    (void)state;
    char cmd[512];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", certdir);
    return system(cmd) == 0 ? 0 : -1;
}

/* ---- two ends connected through memory ---------------------------------------------- */

typedef struct end {
    xlayer_t *l;
    xbuf_t app;   /* plaintext this end received */
    xbuf_t inbox; /* wire bytes on their way to this end */
    int rc;       /* the last input()'s result */
} end_t;

typedef struct pair {
    end_t c, s;
} pair_t;

static tls_ctx_t *server_ctx(tls_opts_t o)
{
    char err[256] = "";
    if (!o.certfile) {
        o.certfile = F("server.crt");
        o.keyfile = F("server.key");
    }
    tls_ctx_t *c = tls_ctx_new_server(&o, err, sizeof(err));
    if (!c)
        fail_msg("server context: %s", err);
    return c;
}

static tls_ctx_t *client_ctx(tls_opts_t o)
{
    char err[256] = "";
    if (!o.cafile)
        o.cafile = F("ca.crt");
    tls_ctx_t *c = tls_ctx_new_client(&o, err, sizeof(err));
    if (!c)
        fail_msg("client context: %s", err);
    return c;
}

/* xbuf_data() of a buffer that never held anything is NULL + 0, which UBSan reports. */
static const uint8_t *bytes_of(const xbuf_t *b)
{
    return xbuf_size(b) ? xbuf_data(b) : NULL;
}

/* Feed e its inbox; what it sends goes to the other end's inbox. */
static void feed(end_t *e, end_t *other)
{
    xbuf_t down = {0};
    if (e->rc < 0) { /* a failed end reads nothing more, like a closed socket */
        xbuf_consume(&e->inbox, xbuf_size(&e->inbox));
        return;
    }
    e->rc = e->l->ops->input(e->l, bytes_of(&e->inbox), xbuf_size(&e->inbox), &e->app, &down);
    xbuf_consume(&e->inbox, xbuf_size(&e->inbox));
    assert_int_equal(xbuf_append(&other->inbox, bytes_of(&down), xbuf_size(&down)), 0);
    xbuf_free(&down);
}

/* Move bytes both ways until neither end has anything to say. */
static void shuttle(pair_t *p)
{
    for (int round = 0; round < 100; round++) {
        if (!xbuf_size(&p->c.inbox) && !xbuf_size(&p->s.inbox))
            return;
        if (xbuf_size(&p->s.inbox))
            feed(&p->s, &p->c);
        if (xbuf_size(&p->c.inbox))
            feed(&p->c, &p->s);
    }
    fail_msg("the two ends never went quiet");
}

/* Layers from the two contexts, whose references the pair takes over (the layers keep
 * the contexts alive), and the handshake run to its end. */
static void pair_start(pair_t *p, tls_ctx_t *sc, tls_ctx_t *cc, const char *server_name)
{
    memset(p, 0, sizeof(*p));
    p->s.l = tls_layer_new(sc, NULL);
    p->c.l = tls_layer_new(cc, server_name);
    assert_non_null(p->s.l);
    assert_non_null(p->c.l);
    tls_ctx_unref(sc);
    tls_ctx_unref(cc);
    feed(&p->c, &p->s); /* nothing in: the ClientHello out */
    shuttle(p);
}

static void pair_free(pair_t *p)
{
    end_t *ends[] = {&p->c, &p->s};
    for (int i = 0; i < 2; i++) {
        ends[i]->l->ops->destroy(ends[i]->l);
        xbuf_free(&ends[i]->app);
        xbuf_free(&ends[i]->inbox);
    }
}

static void assert_connected(pair_t *p)
{
    if (p->c.rc < 0 || p->s.rc < 0)
        fail_msg("handshake failed: client \"%s\", server \"%s\"", p->c.l->error, p->s.l->error);
    assert_true(p->c.l->ops->ready(p->c.l));
    assert_true(p->s.l->ops->ready(p->s.l));
}

/* Send n bytes from one end in pieces of `piece`, then shuttle. */
static void send_bytes(pair_t *p, end_t *from, const uint8_t *data, size_t n, size_t piece)
{
    end_t *to = from == &p->c ? &p->s : &p->c;
    for (size_t off = 0; off < n; off += piece) {
        size_t k = n - off < piece ? n - off : piece;
        assert_int_equal(from->l->ops->output(from->l, data + off, k, &to->inbox), 0);
    }
    shuttle(p);
}

static void assert_app(end_t *e, const uint8_t *data, size_t n)
{
    assert_int_equal(xbuf_size(&e->app), n);
    assert_memory_equal(xbuf_data(&e->app), data, n);
    xbuf_consume(&e->app, n);
}

/* A handshake that must fail on `side`'s end with exactly `error`. */
static void expect_refused(tls_ctx_t *sc, tls_ctx_t *cc, const char *name, end_t *(*side)(pair_t *),
                           const char *error)
{
    pair_t p;
    pair_start(&p, sc, cc, name);
    end_t *e = side(&p);
    if (e->rc != -1)
        fail_msg("expected \"%s\", the handshake went through", error);
    assert_string_equal(e->l->error, error);
    /* A TLS 1.3 client is done with its half before the server refuses its certificate. */
    if (e == &p.s)
        assert_false(e->l->ops->ready(e->l));
    pair_free(&p);
}

static end_t *server_side(pair_t *p)
{
    return &p->s;
}

static end_t *client_side(pair_t *p)
{
    return &p->c;
}

/* ---- tests -------------------------------------------------------------------------- */

static void test_handshake_then_100k_each_way(void **state)
{
    (void)state;
    pair_t p;
    pair_start(&p, server_ctx((tls_opts_t){0}), client_ctx((tls_opts_t){0}), "localhost");
    assert_connected(&p);
    /* TLS 1.3 unless a side caps it. */
    assert_string_equal(tls_layer_version(p.c.l), "TLSv1.3");
    assert_string_equal(tls_layer_version(p.s.l), "TLSv1.3");
    assert_null(p.s.l->identity); /* no CA on the server: no client certificate asked */
    assert_null(p.s.l->subject);

    size_t n = 100 * 1024;
    uint8_t *data = malloc(n);
    assert_non_null(data);
    for (size_t i = 0; i < n; i++)
        data[i] = (uint8_t)(i * 7 + i / 251);
    send_bytes(&p, &p.c, data, n, 7000); /* records of several sizes, many per shuttle */
    assert_app(&p.s, data, n);
    send_bytes(&p, &p.s, data, n, n); /* one write: split into 16 KiB records */
    assert_app(&p.c, data, n);
    send_bytes(&p, &p.c, (const uint8_t *)"x", 1, 1);
    assert_app(&p.s, (const uint8_t *)"x", 1);
    free(data);
    pair_free(&p);
}

/* The server's input arrives one byte at a time: every record boundary is crossed. */
static void test_handshake_byte_by_byte(void **state)
{
    (void)state;
    pair_t p;
    memset(&p, 0, sizeof(p));
    tls_ctx_t *sc = server_ctx((tls_opts_t){0}), *cc = client_ctx((tls_opts_t){0});
    p.s.l = tls_layer_new(sc, NULL);
    p.c.l = tls_layer_new(cc, "localhost");
    tls_ctx_unref(sc);
    tls_ctx_unref(cc);
    feed(&p.c, &p.s);
    for (int round = 0; round < 20 && xbuf_size(&p.s.inbox); round++) {
        xbuf_t whole = p.s.inbox;
        memset(&p.s.inbox, 0, sizeof(p.s.inbox));
        for (size_t i = 0; i < xbuf_size(&whole); i++) {
            xbuf_t down = {0};
            p.s.rc = p.s.l->ops->input(p.s.l, xbuf_data(&whole) + i, 1, &p.s.app, &down);
            assert_int_equal(p.s.rc, 0);
            assert_int_equal(xbuf_append(&p.c.inbox, bytes_of(&down), xbuf_size(&down)), 0);
            xbuf_free(&down);
        }
        xbuf_free(&whole);
        feed(&p.c, &p.s);
    }
    assert_connected(&p);
    send_bytes(&p, &p.s, (const uint8_t *)"hello", 5, 5);
    assert_app(&p.c, (const uint8_t *)"hello", 5);
    pair_free(&p);
}

static void test_client_certificate_gives_identity_and_subject(void **state)
{
    (void)state;
    pair_t p;
    pair_start(&p, server_ctx((tls_opts_t){.cafile = F("ca.crt")}),
               client_ctx((tls_opts_t){.certfile = F("client.crt"), .keyfile = F("client.key")}),
               "localhost");
    assert_connected(&p);
    assert_string_equal(p.s.l->identity, "client1");
    assert_string_equal(p.s.l->subject, "CN=client1");
    assert_null(p.c.l->identity); /* only the server role names its peer */
    pair_free(&p);
}

/* With a cafile but without require_certificate, a certificate is optional. */
static void test_client_certificate_optional_without_require(void **state)
{
    (void)state;
    pair_t p;
    pair_start(&p, server_ctx((tls_opts_t){.cafile = F("ca.crt")}), client_ctx((tls_opts_t){0}),
               "localhost");
    assert_connected(&p);
    assert_null(p.s.l->identity);
    assert_null(p.s.l->subject);
    pair_free(&p);
}

static void test_require_certificate_refuses_client_without_one(void **state)
{
    (void)state;
    tls_opts_t so = {.cafile = F("ca.crt"), .require_certificate = true};
    expect_refused(server_ctx(so), client_ctx((tls_opts_t){0}), "localhost", server_side,
                   "TLS handshake: peer did not return a certificate");
    /* The client learns it from the server's alert, after its own half of the handshake. */
    expect_refused(server_ctx(so), client_ctx((tls_opts_t){0}), "localhost", client_side,
                   "TLS: tlsv13 alert certificate required");
    /* With a certificate the same server lets it in. */
    pair_t p;
    pair_start(&p, server_ctx(so),
               client_ctx((tls_opts_t){.certfile = F("client.crt"), .keyfile = F("client.key")}),
               "localhost");
    assert_connected(&p);
    assert_string_equal(p.s.l->identity, "client1");
    pair_free(&p);
}

static void test_expired_client_certificate_refused(void **state)
{
    (void)state;
    expect_refused(server_ctx((tls_opts_t){.cafile = F("ca.crt")}),
                   client_ctx((tls_opts_t){.certfile = F("client-expired.crt"),
                                           .keyfile = F("client-expired.key")}),
                   "localhost", server_side,
                   "TLS handshake: certificate verify failed (certificate has expired)");
}

static void test_revoked_client_certificate_refused_with_crl(void **state)
{
    (void)state;
    tls_opts_t so = {.cafile = F("ca.crt"), .crlfile = F("crl.pem")};
    tls_opts_t revoked = {.certfile = F("client-revoked.crt"), .keyfile = F("client-revoked.key")};
    expect_refused(server_ctx(so), client_ctx(revoked), "localhost", server_side,
                   "TLS handshake: certificate verify failed (certificate revoked)");
    /* The CRL is what refuses it: without one it passes. */
    pair_t p;
    pair_start(&p, server_ctx((tls_opts_t){.cafile = F("ca.crt")}), client_ctx(revoked),
               "localhost");
    assert_connected(&p);
    assert_string_equal(p.s.l->identity, "client-revoked");
    pair_free(&p);
    /* A certificate the CRL does not list passes the CRL check. */
    pair_start(&p, server_ctx(so),
               client_ctx((tls_opts_t){.certfile = F("client.crt"), .keyfile = F("client.key")}),
               "localhost");
    assert_connected(&p);
    pair_free(&p);
}

static void test_wrong_ca_refused(void **state)
{
    (void)state;
    const char *why = "TLS handshake: certificate verify failed (unable to get local issuer "
                      "certificate)";
    /* The client trusts another CA than the one that signed the server. */
    expect_refused(server_ctx((tls_opts_t){0}),
                   client_ctx((tls_opts_t){.cafile = F("other-ca.crt")}), "localhost", client_side,
                   why);
    /* The server shows a certificate of the other CA. */
    expect_refused(server_ctx((tls_opts_t){.certfile = F("other-server.crt"),
                                           .keyfile = F("other-server.key")}),
                   client_ctx((tls_opts_t){0}), "localhost", client_side, why);
    /* The client's certificate comes from a CA the server does not trust. */
    expect_refused(server_ctx((tls_opts_t){.cafile = F("ca.crt")}),
                   client_ctx((tls_opts_t){.certfile = F("other-client.crt"),
                                           .keyfile = F("other-client.key")}),
                   "localhost", server_side, why);
}

static void test_host_name_checked_by_client(void **state)
{
    (void)state;
    expect_refused(server_ctx((tls_opts_t){0}), client_ctx((tls_opts_t){0}), "example.com",
                   client_side, "TLS handshake: certificate verify failed (hostname mismatch)");
    expect_refused(server_ctx((tls_opts_t){0}), client_ctx((tls_opts_t){0}), "10.1.2.3",
                   client_side, "TLS handshake: certificate verify failed (IP address mismatch)");
    const char *good[] = {"localhost", "127.0.0.1", "::1"};
    for (size_t i = 0; i < 3; i++) {
        pair_t p;
        pair_start(&p, server_ctx((tls_opts_t){0}), client_ctx((tls_opts_t){0}), good[i]);
        assert_connected(&p);
        pair_free(&p);
    }
    /* insecure skips the name, not the chain. */
    pair_t p;
    pair_start(&p, server_ctx((tls_opts_t){0}), client_ctx((tls_opts_t){.insecure = true}),
               "example.com");
    assert_connected(&p);
    pair_free(&p);
    expect_refused(server_ctx((tls_opts_t){0}),
                   client_ctx((tls_opts_t){.cafile = F("other-ca.crt"), .insecure = true}),
                   "example.com", client_side,
                   "TLS handshake: certificate verify failed (unable to get local issuer "
                   "certificate)");
}

static void test_tls_version_minimum(void **state)
{
    (void)state;
    tls_opts_t old_client = {.max_version = "tlsv1.2"};
    expect_refused(server_ctx((tls_opts_t){.tls_version = "tlsv1.3"}), client_ctx(old_client),
                   "localhost", server_side, "TLS handshake: unsupported protocol");
    expect_refused(server_ctx((tls_opts_t){.tls_version = "tlsv1.3"}), client_ctx(old_client),
                   "localhost", client_side, "TLS handshake: tlsv1 alert protocol version");
    /* The default, and tlsv1.2, let a TLS 1.2 client in. */
    const char *mins[] = {NULL, "tlsv1.2"};
    for (int i = 0; i < 2; i++) {
        pair_t p;
        pair_start(&p, server_ctx((tls_opts_t){.tls_version = mins[i]}), client_ctx(old_client),
                   "localhost");
        assert_connected(&p);
        assert_string_equal(tls_layer_version(p.s.l), "TLSv1.2");
        send_bytes(&p, &p.c, (const uint8_t *)"over 1.2", 8, 8);
        assert_app(&p.s, (const uint8_t *)"over 1.2", 8);
        pair_free(&p);
    }
}

static void test_ciphers_are_honoured(void **state)
{
    (void)state;
    pair_t p;
    pair_start(&p, server_ctx((tls_opts_t){.ciphers = "ECDHE-ECDSA-AES128-GCM-SHA256"}),
               client_ctx((tls_opts_t){.max_version = "tlsv1.2"}), "localhost");
    assert_connected(&p);
    pair_free(&p);
    expect_refused(server_ctx((tls_opts_t){.ciphers = "ECDHE-ECDSA-AES128-GCM-SHA256"}),
                   client_ctx((tls_opts_t){.max_version = "tlsv1.2",
                                           .ciphers = "ECDHE-ECDSA-AES256-GCM-SHA384"}),
                   "localhost", server_side, "TLS handshake: no shared cipher");
    expect_refused(server_ctx((tls_opts_t){.ciphers13 = "TLS_AES_128_GCM_SHA256"}),
                   client_ctx((tls_opts_t){.ciphers13 = "TLS_CHACHA20_POLY1305_SHA256"}),
                   "localhost", server_side, "TLS handshake: no shared cipher");
}

static void test_close_notify_finishes_both_ends(void **state)
{
    (void)state;
    pair_t p;
    pair_start(&p, server_ctx((tls_opts_t){0}), client_ctx((tls_opts_t){0}), "localhost");
    assert_connected(&p);
    p.c.l->ops->shutdown(p.c.l, 1000, &p.s.inbox);
    assert_true(xbuf_size(&p.s.inbox) > 0);
    /* After our close_notify, more output is dropped, not an error. */
    size_t before = xbuf_size(&p.s.inbox);
    assert_int_equal(p.c.l->ops->output(p.c.l, (const uint8_t *)"late", 4, &p.s.inbox), 0);
    assert_int_equal(xbuf_size(&p.s.inbox), before);
    shuttle(&p);
    assert_int_equal(p.s.rc, 0);
    assert_true(p.s.l->finished); /* and it answered with its own close_notify */
    assert_int_equal(p.c.rc, 0);
    assert_true(p.c.l->finished);
    assert_int_equal(xbuf_size(&p.s.app), 0);
    pair_free(&p);
}

static void test_shutdown_before_handshake_sends_nothing(void **state)
{
    (void)state;
    tls_ctx_t *sc = server_ctx((tls_opts_t){0});
    xlayer_t *l = tls_layer_new(sc, NULL);
    tls_ctx_unref(sc);
    xbuf_t down = {0};
    l->ops->shutdown(l, 1000, &down);
    assert_int_equal(xbuf_size(&down), 0);
    assert_null(tls_layer_version(l));
    l->ops->destroy(l);
}

/* A plain MQTT client on the TLS port: refused, with the reason. */
static void test_plain_mqtt_on_tls_refused(void **state)
{
    (void)state;
    static const uint8_t connect[] = {0x10, 0x10, 0x00, 0x04, 'M',  'Q', 'T', 'T', 0x04,
                                      0x02, 0x00, 0x3c, 0x00, 0x04, 'a', 'b', 'c', 'd'};
    tls_ctx_t *sc = server_ctx((tls_opts_t){0});
    xlayer_t *l = tls_layer_new(sc, NULL);
    tls_ctx_unref(sc);
    xbuf_t up = {0}, down = {0};
    assert_int_equal(l->ops->input(l, connect, sizeof(connect), &up, &down), -1);
    assert_int_equal(strncmp(l->error, "TLS handshake: ", 15), 0);
    assert_int_equal(xbuf_size(&up), 0);
    /* Once failed, it stays failed. */
    assert_int_equal(l->ops->input(l, connect, sizeof(connect), &up, &down), -1);
    xbuf_free(&up);
    xbuf_free(&down);
    l->ops->destroy(l);
}

static void expect_ctx_error(bool server, tls_opts_t o, const char *error)
{
    char err[512] = "";
    tls_ctx_t *c = server ? tls_ctx_new_server(&o, err, sizeof(err))
                          : tls_ctx_new_client(&o, err, sizeof(err));
    if (c) {
        tls_ctx_unref(c);
        fail_msg("expected \"%s\", the context loaded", error);
    }
    assert_string_equal(err, error);
}

static void test_bad_files_and_options_name_what_is_wrong(void **state)
{
    (void)state;
    char want[768];
    const char *crt = F("server.crt"), *key = F("server.key");
    const char *missing = F("missing.pem"), *garbage = F("garbage.pem");

    snprintf(want, sizeof(want), "certfile %s: No such file or directory", missing);
    expect_ctx_error(true, (tls_opts_t){.certfile = missing, .keyfile = key}, want);
    snprintf(want, sizeof(want), "certfile %s: no start line", garbage);
    expect_ctx_error(true, (tls_opts_t){.certfile = garbage, .keyfile = key}, want);
    snprintf(want, sizeof(want), "keyfile %s: No such file or directory", missing);
    expect_ctx_error(true, (tls_opts_t){.certfile = crt, .keyfile = missing}, want);
    snprintf(want, sizeof(want), "keyfile %s: no PEM private key in the file", garbage);
    expect_ctx_error(true, (tls_opts_t){.certfile = crt, .keyfile = garbage}, want);
    const char *client_key = F("client.key");
    snprintf(want, sizeof(want), "keyfile %s: key values mismatch", client_key);
    expect_ctx_error(true, (tls_opts_t){.certfile = crt, .keyfile = client_key}, want);
    const char *encrypted = F("encrypted.key");
    snprintf(want, sizeof(want),
             "keyfile %s: the key is encrypted (Midge cannot ask for a passphrase)", encrypted);
    expect_ctx_error(true, (tls_opts_t){.certfile = crt, .keyfile = encrypted}, want);
    /* A certificate without its key in the same file, and no keyfile. */
    snprintf(want, sizeof(want), "keyfile %s: no PEM private key in the file", crt);
    expect_ctx_error(true, (tls_opts_t){.certfile = crt}, want);

    snprintf(want, sizeof(want), "cafile %s: No such file or directory", missing);
    expect_ctx_error(true, (tls_opts_t){.certfile = crt, .keyfile = key, .cafile = missing}, want);
    snprintf(want, sizeof(want), "cafile %s: no certificate or crl found", garbage);
    expect_ctx_error(true, (tls_opts_t){.certfile = crt, .keyfile = key, .cafile = garbage}, want);
    snprintf(want, sizeof(want), "capath %s: Not a directory", crt);
    expect_ctx_error(true, (tls_opts_t){.certfile = crt, .keyfile = key, .capath = crt}, want);
    snprintf(want, sizeof(want), "capath %s: No such file or directory", missing);
    expect_ctx_error(true, (tls_opts_t){.certfile = crt, .keyfile = key, .capath = missing}, want);

    const char *ca = F("ca.crt");
    snprintf(want, sizeof(want), "crlfile %s: No such file or directory", missing);
    expect_ctx_error(
        true, (tls_opts_t){.certfile = crt, .keyfile = key, .cafile = ca, .crlfile = missing},
        want);
    const char *broken_crl = F("broken-crl.pem");
    snprintf(want, sizeof(want), "crlfile %s: CRL 1 is invalid (too long)", broken_crl);
    expect_ctx_error(true,
                     (tls_opts_t){.certfile = crt, .keyfile = key, .cafile = ca,
                                  .crlfile = broken_crl},
                     want);
    snprintf(want, sizeof(want), "crlfile %s: no PEM CRL in the file", crt);
    expect_ctx_error(
        true, (tls_opts_t){.certfile = crt, .keyfile = key, .cafile = ca, .crlfile = crt}, want);

    expect_ctx_error(true, (tls_opts_t){.certfile = crt, .keyfile = key, .tls_version = "tlsv1.1"},
                     "tls_version tlsv1.1: not tlsv1.2 or tlsv1.3");
    expect_ctx_error(true, (tls_opts_t){.certfile = crt, .keyfile = key, .ciphers = "NOPE"},
                     "ciphers NOPE: no cipher match");
    expect_ctx_error(true, (tls_opts_t){.certfile = crt, .keyfile = key, .ciphers13 = "NOPE"},
                     "ciphers_tls1.3 NOPE: no cipher match");
    expect_ctx_error(true,
                     (tls_opts_t){.certfile = crt, .keyfile = key, .require_certificate = true},
                     "require_certificate needs a cafile or capath");
    expect_ctx_error(true, (tls_opts_t){.keyfile = key}, "a TLS listener needs a certfile");
    snprintf(want, sizeof(want), "keyfile %s without a certfile", key);
    expect_ctx_error(false, (tls_opts_t){.keyfile = key}, want);
    snprintf(want, sizeof(want), "cafile %s: No such file or directory", missing);
    expect_ctx_error(false, (tls_opts_t){.cafile = missing}, want);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_handshake_then_100k_each_way),
        cmocka_unit_test(test_handshake_byte_by_byte),
        cmocka_unit_test(test_client_certificate_gives_identity_and_subject),
        cmocka_unit_test(test_client_certificate_optional_without_require),
        cmocka_unit_test(test_require_certificate_refuses_client_without_one),
        cmocka_unit_test(test_expired_client_certificate_refused),
        cmocka_unit_test(test_revoked_client_certificate_refused_with_crl),
        cmocka_unit_test(test_wrong_ca_refused),
        cmocka_unit_test(test_host_name_checked_by_client),
        cmocka_unit_test(test_tls_version_minimum),
        cmocka_unit_test(test_ciphers_are_honoured),
        cmocka_unit_test(test_close_notify_finishes_both_ends),
        cmocka_unit_test(test_shutdown_before_handshake_sends_nothing),
        cmocka_unit_test(test_plain_mqtt_on_tls_refused),
        cmocka_unit_test(test_bad_files_and_options_name_what_is_wrong),
    };
    return cmocka_run_group_tests(tests, make_certs, remove_certs);
}
