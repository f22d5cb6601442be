/* auth_int.h - the inside of an auth_t, shared by the files of src/auth/: auth.c (loading,
 * the snapshot), passwd.c (password file, hashes) and acl.c (ACL file, decisions).
 *
 * Everything here is built once by the parsers and read-only afterwards, so that any
 * number of threads can look it up without a lock.
 */
#ifndef MIDGE_AUTH_INT_H
#define MIDGE_AUTH_INT_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* A failed allocation inside uthash must fail the load, not exit the broker; the add is
 * then rolled back and leaves the element's hh.tbl NULL, which the parsers check. */
#define HASH_NONFATAL_OOM 1
#include <uthash.h>

#include "auth.h"

#define AUTH_HASH_LEN 64 /* SHA-512 output, and the PBKDF2 length Mosquitto uses */
#define AUTH_SALT_MAX 64 /* bytes of salt accepted in a file; mosquitto_passwd writes 12 */
#define AUTH_SALT_LEN 12 /* what auth_hash_password writes, as mosquitto_passwd does */

enum auth_hash_kind {
    AUTH_HASH_SHA512 = 6,        /* "$6$SALT$HASH": SHA-512(password || salt) */
    AUTH_HASH_SHA512_PBKDF2 = 7, /* "$7$ITER$SALT$HASH": PBKDF2-HMAC-SHA512 */
};

/* One line of the password file. */
typedef struct auth_user {
    UT_hash_handle hh; /* in auth->users, keyed by the name's bytes */
    char *name;        /* NUL-terminated, owned */
    size_t name_len;
    int line; /* where it was defined, for the duplicate error */
    enum auth_hash_kind kind;
    int iterations; /* $7$ only */
    uint8_t salt[AUTH_SALT_MAX];
    size_t salt_len;
    uint8_t hash[AUTH_HASH_LEN];
} auth_user_t;

/* One topic or pattern line of the ACL file. */
typedef struct acl_rule {
    char *filter; /* NUL-terminated, owned; a valid subscription filter */
    size_t len;
    unsigned access; /* AUTH_READ | AUTH_WRITE bits it grants; 0 for deny */
    bool deny;
    bool pattern;   /* %c / %u are substituted (pattern lines only) */
    bool uses_user; /* pattern contains %u: never matches an anonymous client */
} acl_rule_t;

typedef struct acl_list {
    acl_rule_t *rules; /* owned */
    size_t count, cap;
} acl_list_t;

/* The rules of one "user NAME" section (sections of the same name are merged). */
typedef struct acl_user {
    UT_hash_handle hh; /* in auth->acl_users, keyed by name */
    char *name;        /* owned */
    acl_list_t rules;
} acl_user_t;

struct auth {
    bool has_passwords;
    auth_user_t *users; /* uthash head */
    bool has_acl;
    acl_list_t anonymous;  /* topic lines before the first user line */
    acl_list_t patterns;   /* pattern lines, wherever they are: apply to everyone */
    acl_user_t *acl_users; /* uthash head */
};

/* Parse a whole password file / ACL file held in memory into a. name is the file's name
 * in errors. 0, or -1 with "NAME:LINE: what was wrong" in err. On error a may hold part
 * of the file: the caller frees it. */
int passwd_parse(auth_t *a, const char *name, const char *text, size_t len, char *err,
                 size_t errlen);
int acl_parse(auth_t *a, const char *name, const char *text, size_t len, char *err, size_t errlen);
void passwd_cleanup(auth_t *a);
void acl_cleanup(auth_t *a);

/* Line reader shared by both parsers: the next line of [*pos, end) without its "\n",
 * "\r\n" and trailing spaces or tabs; false at the end of the text. */
bool auth_next_line(const char **pos, const char *end, const char **line, size_t *len);

/* Write "NAME:LINE: " and the formatted message into err; returns -1. */
int auth_fail(char *err, size_t errlen, const char *name, int line, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

#endif
