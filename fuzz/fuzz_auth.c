/* fuzz_auth.c - libFuzzer target for the password file and ACL file parsers (src/auth).
 *
 * An input is "PASSWORD FILE \xff ACL FILE" (without a \xff byte, the whole input is given
 * to both parsers). Each parser must accept its text or refuse it with a "NAME:LINE: "
 * message, never crash or leak; a loaded ACL then answers decisions for a few clients and
 * for topics and filters taken from the input. Passwords are not checked: a $7$ line may
 * ask for two billion PBKDF2 iterations, which is slow by design, not a parser bug.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "auth/auth.h"

/* A refusal must start with "NAME:" followed by a line number. */
static void check_error(const char *err)
{
    const char *names[] = {"pw:", "acl:"};
    for (size_t i = 0; i < 2; i++) {
        size_t n = strlen(names[i]);
        if (strncmp(err, names[i], n) == 0 && err[n] >= '1' && err[n] <= '9')
            return;
    }
    __builtin_trap();
}

/* Decisions on the bytes of the input after the last '\n', as a topic and as a filter. */
static void decide(const auth_t *a, const char *text, size_t len)
{
    static const char *topics[] = {"a/b", "$SYS/x", "p/u/in", "p/c/out", "/", "a", "#", "+/+"};
    static const char *users[] = {NULL, "u", "alice", "+", "a/b"};
    const char *nl = memrchr(text, '\n', len);
    const char *tail = nl ? nl + 1 : text;
    size_t tail_len = len - (size_t)(tail - text);
    if (tail_len > 256 || memchr(tail, '\0', tail_len))
        tail_len = 0;
    for (size_t u = 0; u < sizeof(users) / sizeof(users[0]); u++) {
        for (size_t t = 0; t < sizeof(topics) / sizeof(topics[0]); t++)
            for (int access = AUTH_READ; access <= AUTH_SUBSCRIBE; access <<= 1)
                (void)auth_acl_check(a, users[u], "c", topics[t], strlen(topics[t]), access);
        for (int access = AUTH_READ; access <= AUTH_SUBSCRIBE; access <<= 1)
            (void)auth_acl_check(a, users[u], "c/1", tail, tail_len, access);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *text = (const char *)data;
    const char *sep = memchr(text, 0xff, size);
    size_t pw_len = sep ? (size_t)(sep - text) : size;
    const char *acl = sep ? sep + 1 : text;
    size_t acl_len = sep ? size - pw_len - 1 : size;
    char err[512];

    err[0] = '\0';
    auth_t *a = auth_load_mem("pw", text, pw_len, NULL, NULL, 0, err, sizeof(err));
    if (!a)
        check_error(err);
    auth_free(a);

    err[0] = '\0';
    a = auth_load_mem(NULL, NULL, 0, "acl", acl, acl_len, err, sizeof(err));
    if (!a) {
        check_error(err);
        return 0;
    }
    decide(a, acl, acl_len);
    auth_free(a);
    return 0;
}
