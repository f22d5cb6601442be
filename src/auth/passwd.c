/* passwd.c - the password file in Mosquitto's format: parsing it, checking a CONNECT's
 * username and password against it, and hashing new passwords for midge-passwd.
 *
 * A line is "USER:HASH" where HASH is "$7$ITERATIONS$SALT$HASH" (PBKDF2-HMAC-SHA512, what
 * mosquitto_passwd writes since 2.0) or "$6$SALT$HASH" (SHA-512 of the password followed
 * by the salt, Mosquitto 1.6 and earlier); SALT and HASH are standard base64 and HASH is
 * 64 bytes. Mosquitto drops a line it cannot read with a log message; Midge refuses the
 * whole file, naming the line, because a user silently missing is worse than a broker
 * that does not start.
 */
#include "auth_int.h"

#include <limits.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static bool is_base64_char(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' ||
           c == '/';
}

/* Strict standard base64 (padding required, nothing else) into out[0..max). Returns the
 * number of bytes, or -1 for bad text or more than max bytes. */
static int base64_decode(const char *s, size_t n, uint8_t *out, size_t max)
{
    if (n == 0 || n % 4 != 0 || n / 4 * 3 > max + 2)
        return -1;
    size_t pad = 0;
    if (s[n - 1] == '=')
        pad = s[n - 2] == '=' ? 2 : 1;
    for (size_t i = 0; i < n - pad; i++)
        if (!is_base64_char(s[i]))
            return -1;
    if (n / 4 * 3 - pad > max)
        return -1;
    uint8_t tmp[(AUTH_SALT_MAX > AUTH_HASH_LEN ? AUTH_SALT_MAX : AUTH_HASH_LEN) + 3];
    if (n / 4 * 3 > sizeof(tmp))
        return -1;
    /* EVP_DecodeBlock decodes padding as zero bytes: drop them. */
    int got = EVP_DecodeBlock(tmp, (const unsigned char *)s, (int)n);
    if (got < 0 || (size_t)got < pad)
        return -1;
    memcpy(out, tmp, (size_t)got - pad);
    return got - (int)pad;
}

/* One "$"-separated field of a hash: [*p, end) up to the next '$' or the end. */
static void next_field(const char **p, const char *end, const char **field, size_t *len)
{
    const char *d = memchr(*p, '$', (size_t)(end - *p));
    const char *stop = d ? d : end;
    *field = *p;
    *len = (size_t)(stop - *p);
    *p = d ? d + 1 : end;
}

/* "$6$SALT$HASH" or "$7$ITER$SALT$HASH" into u. On error a message (without "FILE:LINE: ")
 * in why. */
static int parse_hash(auth_user_t *u, const char *h, size_t n, char *why, size_t whylen)
{
    if (n < 3 || h[0] != '$' || h[2] != '$' || (h[1] != '6' && h[1] != '7')) {
        if (n > 0 && h[0] == '$') {
            const char *d = memchr(h + 1, '$', n - 1);
            int tl = d ? (int)(d - h + 1) : (int)(n > 16 ? 16 : n);
            snprintf(why, whylen,
                     "user '%s': unknown password hash type '%.*s' (Midge reads $6$ and $7$)",
                     u->name, tl, h);
        } else {
            snprintf(why, whylen,
                     "user '%s': the password is not a hash ($6$... or $7$...); a file of "
                     "plain-text passwords must be hashed first (midge-passwd -U FILE)",
                     u->name);
        }
        return -1;
    }
    u->kind = h[1] == '7' ? AUTH_HASH_SHA512_PBKDF2 : AUTH_HASH_SHA512;
    const char *p = h + 3, *end = h + n, *f;
    size_t fl;
    if (u->kind == AUTH_HASH_SHA512_PBKDF2) {
        next_field(&p, end, &f, &fl);
        long iter = 0;
        bool ok = fl > 0 && fl <= 10;
        for (size_t i = 0; ok && i < fl; i++) {
            ok = f[i] >= '0' && f[i] <= '9';
            iter = iter * 10 + (f[i] - '0');
        }
        if (!ok || iter < 1 || iter > INT_MAX) {
            snprintf(why, whylen, "user '%s': $7$ iteration count '%.*s' is not a number >= 1",
                     u->name, (int)(fl > 16 ? 16 : fl), f);
            return -1;
        }
        u->iterations = (int)iter;
    }
    next_field(&p, end, &f, &fl);
    bool hash_follows = f + fl < end; /* a '$' after the salt */
    int salt = base64_decode(f, fl, u->salt, sizeof(u->salt));
    if (salt <= 0) {
        snprintf(why, whylen, "user '%s': the salt '%.*s' is not base64 of 1 to %d bytes", u->name,
                 (int)(fl > 24 ? 24 : fl), f, AUTH_SALT_MAX);
        return -1;
    }
    u->salt_len = (size_t)salt;
    if (!hash_follows) {
        snprintf(why, whylen, "user '%s': no '$' and password hash after the salt", u->name);
        return -1;
    }
    next_field(&p, end, &f, &fl);
    if (f + fl != end) {
        snprintf(why, whylen, "user '%s': junk after the password hash", u->name);
        return -1;
    }
    if (base64_decode(f, fl, u->hash, sizeof(u->hash)) != AUTH_HASH_LEN) {
        snprintf(why, whylen, "user '%s': the password hash is not base64 of %d bytes", u->name,
                 AUTH_HASH_LEN);
        return -1;
    }
    return 0;
}

static void user_free(auth_user_t *u)
{
    if (!u)
        return;
    free(u->name);
    OPENSSL_cleanse(u->hash, sizeof(u->hash));
    free(u);
}

/* One non-comment line "USER:HASH". */
static int parse_line(auth_t *a, const char *name, int lineno, const char *s, size_t n, char *err,
                      size_t errlen)
{
    const char *colon = memchr(s, ':', n);
    if (!colon)
        return auth_fail(err, errlen, name, lineno,
                         "no ':' between the username and the password hash");
    size_t ulen = (size_t)(colon - s);
    if (ulen == 0)
        return auth_fail(err, errlen, name, lineno, "empty username before ':'");
    auth_user_t *dup = NULL;
    HASH_FIND(hh, a->users, s, ulen, dup);
    if (dup)
        return auth_fail(err, errlen, name, lineno, "user '%s' is already defined on line %d",
                         dup->name, dup->line);
    auth_user_t *u = calloc(1, sizeof(*u));
    if (!u || !(u->name = strndup(s, ulen))) {
        user_free(u);
        return auth_fail(err, errlen, name, lineno, "out of memory");
    }
    u->name_len = ulen;
    u->line = lineno;
    char why[256];
    if (parse_hash(u, colon + 1, n - ulen - 1, why, sizeof(why)) < 0) {
        user_free(u);
        return auth_fail(err, errlen, name, lineno, "%s", why);
    }
    HASH_ADD_KEYPTR(hh, a->users, u->name, u->name_len, u);
    if (!u->hh.tbl) {
        user_free(u);
        return auth_fail(err, errlen, name, lineno, "out of memory");
    }
    return 0;
}

/* Parse the password file (see auth_int.h). Blank lines and lines whose first non-blank
 * character is '#' are skipped. */
int passwd_parse(auth_t *a, const char *name, const char *text, size_t len, char *err,
                 size_t errlen)
{
    const char *pos = text, *end = text + len, *line;
    size_t n;
    int lineno = 0;
    while (auth_next_line(&pos, end, &line, &n)) {
        lineno++;
        if (memchr(line, '\0', n))
            return auth_fail(err, errlen, name, lineno, "NUL byte in the line");
        size_t i = 0;
        while (i < n && (line[i] == ' ' || line[i] == '\t'))
            i++;
        if (i == n || line[i] == '#')
            continue;
        if (parse_line(a, name, lineno, line, n, err, errlen) < 0)
            return -1;
    }
    return 0;
}

void passwd_cleanup(auth_t *a)
{
    auth_user_t *u, *tmp;
    HASH_ITER(hh, a->users, u, tmp)
    {
        HASH_DEL(a->users, u);
        user_free(u);
    }
}

/* The hash of password under u's scheme and salt into out. 0, or -1 (OpenSSL failed). */
static int compute_hash(enum auth_hash_kind kind, int iterations, const uint8_t *salt,
                        size_t salt_len, const uint8_t *password, size_t password_len,
                        uint8_t out[AUTH_HASH_LEN])
{
    if (kind == AUTH_HASH_SHA512_PBKDF2) {
        return PKCS5_PBKDF2_HMAC((const char *)password, (int)password_len, salt, (int)salt_len,
                                 iterations, EVP_sha512(), AUTH_HASH_LEN, out) == 1
                   ? 0
                   : -1;
    }
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    unsigned int outlen = 0;
    int ok = ctx && EVP_DigestInit_ex(ctx, EVP_sha512(), NULL) == 1 &&
             EVP_DigestUpdate(ctx, password, password_len) == 1 &&
             EVP_DigestUpdate(ctx, salt, salt_len) == 1 &&
             EVP_DigestFinal_ex(ctx, out, &outlen) == 1 && outlen == AUTH_HASH_LEN;
    EVP_MD_CTX_free(ctx);
    return ok ? 0 : -1;
}

/* The password check (see auth.h). Takes as long as the user's hash takes (a $7$ user
 * with many iterations is slow by design); the comparison itself is constant-time. */
bool auth_check_password(const auth_t *a, const char *user, size_t user_len,
                         const uint8_t *password, size_t password_len)
{
    if (!a || !user || password_len > INT_MAX)
        return false;
    auth_user_t *u = NULL;
    HASH_FIND(hh, a->users, user, user_len, u);
    uint8_t got[AUTH_HASH_LEN];
    static const uint8_t empty[1];
    if (!u) {
        /* Hash anyway, with the file's first user's parameters, so that the time taken
         * does not tell whether a user name exists. */
        const auth_user_t *any = a->users;
        if (any)
            compute_hash(any->kind, any->iterations, any->salt, any->salt_len,
                         password ? password : empty, password_len, got);
        OPENSSL_cleanse(got, sizeof(got));
        return false;
    }
    if (compute_hash(u->kind, u->iterations, u->salt, u->salt_len, password ? password : empty,
                     password_len, got) < 0)
        return false;
    bool match = CRYPTO_memcmp(got, u->hash, AUTH_HASH_LEN) == 0;
    OPENSSL_cleanse(got, sizeof(got));
    return match;
}

/* "$K$[ITER$]SALT$HASH" of password with a new random salt into out. */
static int hash_password(enum auth_hash_kind kind, const char *password, int iterations, char *out,
                         size_t outlen)
{
    uint8_t salt[AUTH_SALT_LEN], hash[AUTH_HASH_LEN];
    char salt64[4 * ((AUTH_SALT_LEN + 2) / 3) + 1], hash64[4 * ((AUTH_HASH_LEN + 2) / 3) + 1];
    int rc = -1;
    if (!password || (kind == AUTH_HASH_SHA512_PBKDF2 && iterations < 1))
        return -1;
    if (RAND_bytes(salt, sizeof(salt)) != 1)
        return -1;
    if (compute_hash(kind, iterations, salt, sizeof(salt), (const uint8_t *)password,
                     strlen(password), hash) < 0)
        goto out;
    EVP_EncodeBlock((unsigned char *)salt64, salt, sizeof(salt));
    EVP_EncodeBlock((unsigned char *)hash64, hash, sizeof(hash));
    int n = kind == AUTH_HASH_SHA512_PBKDF2
                ? snprintf(out, outlen, "$7$%d$%s$%s", iterations, salt64, hash64)
                : snprintf(out, outlen, "$6$%s$%s", salt64, hash64);
    rc = n < 0 || (size_t)n >= outlen ? -1 : 0;
out:
    OPENSSL_cleanse(hash, sizeof(hash));
    return rc;
}

/* PBKDF2-SHA512 "$7$" hash of password (see auth.h). */
int auth_hash_password(const char *password, int iterations, char *out, size_t outlen)
{
    return hash_password(AUTH_HASH_SHA512_PBKDF2, password, iterations, out, outlen);
}

/* Salted SHA-512 "$6$" hash of password (see auth.h). */
int auth_hash_password_sha512(const char *password, char *out, size_t outlen)
{
    return hash_password(AUTH_HASH_SHA512, password, 0, out, outlen);
}
