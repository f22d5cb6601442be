/* fuzz_tls.c - libFuzzer target for the TLS layer (src/net/tls.c): hostile bytes from the
 * network into a server layer (what a listener gets) or a client layer (what libmidge gets
 * from a server), cut into pieces at fuzzer-chosen places.
 *
 * Input: byte 0 picks the role (bit 0: client) and seeds the piece sizes; the rest is the
 * peer's bytes. The layer must never crash or leak, must fail with an error message that
 * says TLS, and must stay failed once failed. The certificate (EC P-256, self-signed) is
 * made in memory at start-up and written to a temporary directory for tls_ctx_new_*.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "net/tls.h"

#include "fuzz_check.h"

static tls_ctx_t *server_ctx, *client_ctx;

/* A self-signed certificate for CN=localhost with its key, as PEM files in dir. */
static void write_identity(const char *dir, char *crt, char *key, size_t len)
{
    EVP_PKEY *pkey = EVP_EC_gen("P-256");
    X509 *x = X509_new();
    CHECK(pkey && x);
    ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
    X509_gmtime_adj(X509_getm_notBefore(x), 0);
    X509_gmtime_adj(X509_getm_notAfter(x), 3600L * 24 * 365);
    X509_NAME *name = X509_get_subject_name(x);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)"localhost", -1, -1,
                               0);
    X509_set_issuer_name(x, name);
    X509_set_pubkey(x, pkey);
    CHECK(X509_sign(x, pkey, EVP_sha256()) > 0);
    snprintf(crt, len, "%s/fuzz.crt", dir);
    snprintf(key, len, "%s/fuzz.key", dir);
    FILE *f = fopen(crt, "w");
    CHECK(f && PEM_write_X509(f, x));
    fclose(f);
    f = fopen(key, "w");
    CHECK(f && PEM_write_PrivateKey(f, pkey, NULL, NULL, 0, NULL, NULL));
    fclose(f);
    X509_free(x);
    EVP_PKEY_free(pkey);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    char dir[] = "/tmp/midge-fuzz-tls-XXXXXX", crt[128], key[128], err[256];
    CHECK(mkdtemp(dir));
    write_identity(dir, crt, key, sizeof(crt));
    /* cafile on the server: it asks for a client certificate, so that path is reachable. */
    tls_opts_t so = {.certfile = crt, .keyfile = key, .cafile = crt};
    tls_opts_t co = {.cafile = crt};
    server_ctx = tls_ctx_new_server(&so, err, sizeof(err));
    if (!server_ctx)
        fprintf(stderr, "fuzz_tls: %s\n", err);
    client_ctx = tls_ctx_new_client(&co, err, sizeof(err));
    if (!client_ctx)
        fprintf(stderr, "fuzz_tls: %s\n", err);
    CHECK(server_ctx && client_ctx);
    unlink(crt);
    unlink(key);
    rmdir(dir);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    bool client = data[0] & 1;
    unsigned seed = data[0] >> 1;
    data++, size--;
    xlayer_t *l = tls_layer_new(client ? client_ctx : server_ctx, client ? "localhost" : NULL);
    CHECK(l);
    xbuf_t up = {0}, down = {0};
    int rc = 0;
    if (client) /* the ClientHello goes out before anything comes in */
        rc = l->ops->input(l, NULL, 0, &up, &down);
    size_t off = 0;
    while (off < size) {
        size_t piece = 1 + (seed * 31 + off) % 700;
        if (piece > size - off)
            piece = size - off;
        int r = l->ops->input(l, data + off, piece, &up, &down);
        if (rc < 0)
            CHECK(r == -1); /* once failed, always failed */
        rc = r;
        if (rc < 0)
            CHECK(strstr(l->error, "TLS") == l->error);
        off += piece;
    }
    if (rc == 0 && l->ops->ready(l)) {
        static const uint8_t msg[] = "\x10\x00"; /* any application bytes */
        CHECK(l->ops->output(l, msg, 2, &down) == 0 || l->error[0]);
    }
    l->ops->shutdown(l, 1000, &down);
    l->ops->destroy(l);
    xbuf_free(&up);
    xbuf_free(&down);
    return 0;
}
