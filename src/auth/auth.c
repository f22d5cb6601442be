/* auth.c - loading an auth_t snapshot: read the password file and the ACL file into
 * memory and hand them to their parsers (passwd.c, acl.c).
 *
 * Runs at start-up and on SIGHUP, never on the hot path; the lookups are in passwd.c and
 * acl.c.
 */
#include "auth_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A password or ACL file larger than this is surely not one (and would be slow to parse
 * on every SIGHUP). */
#define AUTH_FILE_MAX (64u * 1024 * 1024)

int auth_fail(char *err, size_t errlen, const char *name, int line, const char *fmt, ...)
{
    if (!err || errlen == 0)
        return -1;
    int n = snprintf(err, errlen, "%s:%d: ", name, line);
    if (n < 0 || (size_t)n >= errlen)
        return -1;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err + n, errlen - (size_t)n, fmt, ap);
    va_end(ap);
    return -1;
}

bool auth_next_line(const char **pos, const char *end, const char **line, size_t *len)
{
    const char *p = *pos;
    if (p >= end)
        return false;
    const char *nl = memchr(p, '\n', (size_t)(end - p));
    const char *stop = nl ? nl : end;
    *pos = nl ? nl + 1 : end;
    while (stop > p && (stop[-1] == '\r' || stop[-1] == ' ' || stop[-1] == '\t'))
        stop--;
    *line = p;
    *len = (size_t)(stop - p);
    return true;
}

/* The whole file at path, NUL-terminated for convenience (the parsers use the length). */
static char *read_file(const char *path, size_t *len, char *err, size_t errlen)
{
    char *buf = NULL;
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(err, errlen, "%s: cannot open: %s", path, strerror(errno));
        return NULL;
    }
    size_t cap = 4096, n = 0;
    buf = malloc(cap);
    if (!buf)
        goto oom;
    for (;;) {
        size_t got = fread(buf + n, 1, cap - n - 1, f);
        n += got;
        if (got == 0)
            break;
        if (n + 1 == cap) {
            if (cap >= AUTH_FILE_MAX) {
                snprintf(err, errlen, "%s: larger than %u bytes", path, AUTH_FILE_MAX);
                goto fail;
            }
            char *nb = realloc(buf, cap * 2);
            if (!nb)
                goto oom;
            buf = nb;
            cap *= 2;
        }
    }
    if (ferror(f)) {
        snprintf(err, errlen, "%s: cannot read: %s", path, strerror(errno));
        goto fail;
    }
    fclose(f);
    buf[n] = '\0';
    *len = n;
    return buf;
oom:
    snprintf(err, errlen, "%s: out of memory", path);
fail:
    free(buf);
    fclose(f);
    return NULL;
}

/* Load both files from memory (see auth.h). */
auth_t *auth_load_mem(const char *pw_name, const char *pw_text, size_t pw_len, const char *acl_name,
                      const char *acl_text, size_t acl_len, char *err, size_t errlen)
{
    auth_t *a = calloc(1, sizeof(*a));
    if (!a) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    if (pw_text) {
        a->has_passwords = true;
        if (passwd_parse(a, pw_name, pw_text, pw_len, err, errlen) < 0)
            goto fail;
    }
    if (acl_text) {
        a->has_acl = true;
        if (acl_parse(a, acl_name, acl_text, acl_len, err, errlen) < 0)
            goto fail;
    }
    return a;
fail:
    auth_free(a);
    return NULL;
}

/* Load the password file and the ACL file (see auth.h). */
auth_t *auth_load(const char *password_file, const char *acl_file, char *err, size_t errlen)
{
    auth_t *a = NULL;
    char *pw = NULL, *acl = NULL;
    size_t pw_len = 0, acl_len = 0;
    if (password_file && !(pw = read_file(password_file, &pw_len, err, errlen)))
        goto out;
    if (acl_file && !(acl = read_file(acl_file, &acl_len, err, errlen)))
        goto out;
    a = auth_load_mem(password_file, pw, pw_len, acl_file, acl, acl_len, err, errlen);
out:
    free(pw);
    free(acl);
    return a;
}

void auth_free(auth_t *a)
{
    if (!a)
        return;
    passwd_cleanup(a);
    acl_cleanup(a);
    free(a);
}

bool auth_has_passwords(const auth_t *a)
{
    return a && a->has_passwords;
}

bool auth_has_acl(const auth_t *a)
{
    return a && a->has_acl;
}
