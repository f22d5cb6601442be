/* auth.h - who may connect (password file) and what they may do (ACL file), in
 * Mosquitto's file formats.
 *
 * An auth_t is an immutable snapshot of both files, loaded on start-up and again on
 * SIGHUP; the broker swaps snapshots and frees an old one only when no thread can still
 * be using it, so lookups take no lock. Lookups never block and never allocate.
 */
#ifndef MIDGE_AUTH_H
#define MIDGE_AUTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct auth auth_t;

/* Load the files (either path may be NULL: no password file / no ACL file). NULL on error
 * with err of the form "FILE:LINE: what was wrong" or "FILE: cannot open: reason".
 *
 * Password file: lines "user:$7$ITERATIONS$SALT_BASE64$HASH_BASE64" (PBKDF2-SHA512, what
 * mosquitto_passwd writes) or "user:$6$SALT_BASE64$HASH_BASE64" (salted SHA-512, older
 * Mosquitto); blank lines and '#' comments are skipped.
 * ACL file: "user NAME", "topic [read|write|readwrite|deny] FILTER" (no access word:
 * readwrite), "pattern [access] FILTER" with %c (client id) and %u (username) substituted;
 * topic lines before any "user" line apply to anonymous clients; patterns apply to
 * everyone; '#' comments. */
auth_t *auth_load(const char *password_file, const char *acl_file, char *err, size_t errlen);
/* The same from text in memory (for the fuzzer and the unit tests): pw_text NULL means no
 * password file, acl_text NULL no ACL file; pw_name and acl_name stand for the file names
 * in errors. The text may contain any bytes (a NUL byte is an error). */
auth_t *auth_load_mem(const char *pw_name, const char *pw_text, size_t pw_len, const char *acl_name,
                      const char *acl_text, size_t acl_len, char *err, size_t errlen);
void auth_free(auth_t *a);

bool auth_has_passwords(const auth_t *a);
bool auth_has_acl(const auth_t *a);

/* The password check. Returns true when the file has user and the password matches. */
bool auth_check_password(const auth_t *a, const char *user, size_t user_len,
                         const uint8_t *password, size_t password_len);

enum auth_access {
    AUTH_READ = 1,      /* a message on topic may be delivered to the client */
    AUTH_WRITE = 2,     /* the client may publish on topic */
    AUTH_SUBSCRIBE = 4, /* the client may subscribe to the filter in topic */
};

/* May this client do this? username NULL for an anonymous client. Without an ACL file
 * everything is allowed. With one, Mosquitto's rules: access is granted when a matching
 * topic/pattern line of the client's section (or the anonymous section, or a pattern)
 * grants it, and no matching "deny" line forbids it; everything else is refused. For
 * AUTH_SUBSCRIBE, topic is the filter; it is allowed when a line with read access
 * matches it as Mosquitto does (the line's filter must cover the whole subscription). */
bool auth_acl_check(const auth_t *a, const char *username, const char *client_id, const char *topic,
                    size_t topic_len, int access);

/* PBKDF2-SHA512 hashing in the "$7$" format, for midge-passwd: writes
 * "$7$ITERATIONS$SALT$HASH" (NUL-terminated) into out. 0, or -1 (out too small or no
 * randomness). */
int auth_hash_password(const char *password, int iterations, char *out, size_t outlen);
/* The older "$6$SALT$HASH" format (salted SHA-512, Mosquitto 1.6 and earlier), for
 * midge-passwd -H sha512. Same results as auth_hash_password. */
int auth_hash_password_sha512(const char *password, char *out, size_t outlen);

#endif
