/* test_auth.c - unit tests of src/auth/: the password file (hashes written by Debian's
 * mosquitto_passwd 2.0.11, both types), the ACL file (every line kind, every error with its
 * exact "FILE:LINE: " text) and the ACL decisions (every rule kind, %c/%u, the anonymous
 * section, deny over grant, subscriptions with wildcards), plus auth_load from real files. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "auth/auth.h"

/* Written by `mosquitto_passwd` (mosquitto 2.0.11): alice/"secret" with the default 101
 * iterations, bob/"bob pw" with -H sha512, carol/"ünïcode" with -I 5, "dave smith"/"p:w". */
#define PW_ALICE                                                                                   \
    "alice:$7$101$PGipsOnPrz25vLoz$FCb3L1aVDV9rigt1Xz8NIigu1sJypGn6tsn+M49BbMB9izWNOCaXB0HN4dS1"   \
    "MQAuy3z8bRpqwOq1VzMqZkWSbw=="
#define PW_BOB                                                                                     \
    "bob:$6$mOzLRCNHHiHqdCNj$PV2kbpJm1NDjeW7k0qPISux3icmulMF89WBz2MwGdSzMzNq2sf51v+SvucpXrH1Qss"   \
    "Pj0Cmd6Jo/1DQgrxk/2Q=="
#define PW_CAROL                                                                                   \
    "carol:$7$5$iz6belFDKP4TRs+s$5v5e+qOKVslB/LL//ybMagxLmG3CJ/6oUMgugk1GK+jKc4O8sI4MClBlS0+t4U"   \
    "DXjdZX+/85BIf4QzxyUTjjGg=="
#define PW_DAVE                                                                                    \
    "dave smith:$7$101$t4H3cSt8ZYTVQKBL$l6PmOJu813t+jz4ONeqHwesfuPzh4UBhhDNk7O5LaqYeqz/UtAYgaXK"   \
    "ZqFnig8fP2ZVIR4DumwfbuXBbZ78pPA=="
#define SALT "PGipsOnPrz25vLoz"
#define HASH                                                                                       \
    "FCb3L1aVDV9rigt1Xz8NIigu1sJypGn6tsn+M49BbMB9izWNOCaXB0HN4dS1MQAuy3z8bRpqwOq1VzMqZkWSbw=="

static char err[512];

static auth_t *load_pw(const char *text)
{
    err[0] = '\0';
    return auth_load_mem("pw", text, strlen(text), NULL, NULL, 0, err, sizeof(err));
}

static auth_t *load_acl(const char *text)
{
    err[0] = '\0';
    return auth_load_mem(NULL, NULL, 0, "acl", text, strlen(text), err, sizeof(err));
}

static bool pw_ok(const auth_t *a, const char *user, const char *password)
{
    return auth_check_password(a, user, strlen(user), (const uint8_t *)password, strlen(password));
}

/* ---- password file ------------------------------------------------------------------ */

static void test_passwords_from_mosquitto_passwd(void **state)
{
    (void)state;
    auth_t *a = load_pw("# made by mosquitto_passwd\n\n" PW_ALICE "\n" PW_BOB "\r\n   \n" PW_CAROL
                        "\n  # indented comment\n" PW_DAVE);
    assert_non_null(a);
    assert_true(auth_has_passwords(a));
    assert_false(auth_has_acl(a));
    assert_true(pw_ok(a, "alice", "secret"));
    assert_false(pw_ok(a, "alice", "Secret"));
    assert_false(pw_ok(a, "alice", "secret "));
    assert_false(pw_ok(a, "alice", ""));
    assert_true(pw_ok(a, "bob", "bob pw"));
    assert_false(pw_ok(a, "bob", "bob"));
    assert_true(pw_ok(a, "carol", "ünïcode"));
    assert_false(pw_ok(a, "carol", "unicode"));
    assert_true(pw_ok(a, "dave smith", "p:w"));
    assert_false(pw_ok(a, "dave", "p:w"));
    assert_false(pw_ok(a, "nobody", "secret"));
    assert_false(pw_ok(a, "Alice", "secret"));
    /* The username is length-delimited wire data, not a C string. */
    assert_true(auth_check_password(a, "alicex", 5, (const uint8_t *)"secret", 6));
    assert_false(auth_check_password(a, "alice", 4, (const uint8_t *)"secret", 6));
    assert_false(auth_check_password(a, NULL, 0, (const uint8_t *)"secret", 6));
    assert_false(auth_check_password(NULL, "alice", 5, (const uint8_t *)"secret", 6));
    auth_free(a);
}

static void test_password_empty_file(void **state)
{
    (void)state;
    auth_t *a = load_pw("");
    assert_non_null(a);
    assert_true(auth_has_passwords(a));
    assert_false(pw_ok(a, "alice", "secret"));
    auth_free(a);
    assert_false(auth_has_passwords(NULL));
}

static void test_hash_password_roundtrip(void **state)
{
    (void)state;
    char h7[256], h6[256], line[300];
    assert_int_equal(auth_hash_password("hunter2", 101, h7, sizeof(h7)), 0);
    assert_int_equal(strncmp(h7, "$7$101$", 7), 0);
    /* 12-byte salt (16 base64 characters) and a 64-byte hash (88), as mosquitto_passwd. */
    assert_int_equal(strlen(h7), 7 + 16 + 1 + 88);
    assert_int_equal(auth_hash_password_sha512("hunter2", h6, sizeof(h6)), 0);
    assert_int_equal(strncmp(h6, "$6$", 3), 0);
    assert_int_equal(strlen(h6), 3 + 16 + 1 + 88);

    snprintf(line, sizeof(line), "u7:%s\nu6:%s\n", h7, h6);
    auth_t *a = load_pw(line);
    assert_non_null(a);
    assert_true(pw_ok(a, "u7", "hunter2"));
    assert_false(pw_ok(a, "u7", "hunter3"));
    assert_true(pw_ok(a, "u6", "hunter2"));
    assert_false(pw_ok(a, "u6", "hunter"));
    auth_free(a);

    /* Two hashes of one password differ: the salt is random. */
    char again[256];
    assert_int_equal(auth_hash_password("hunter2", 101, again, sizeof(again)), 0);
    assert_string_not_equal(h7, again);
    /* Refusals: no room, bad iteration count. */
    assert_int_equal(auth_hash_password("x", 101, h7, 40), -1);
    assert_int_equal(auth_hash_password("x", 0, h7, sizeof(h7)), -1);
    assert_int_equal(auth_hash_password_sha512("x", h6, 20), -1);
}

struct bad_case {
    const char *text;
    const char *error;
};

static void test_password_file_errors(void **state)
{
    (void)state;
    static const struct bad_case cases[] = {
        {"alice\n", "pw:1: no ':' between the username and the password hash"},
        {"# ok\n:$7$101$" SALT "$" HASH "\n", "pw:2: empty username before ':'"},
        {"carol:plain\n",
         "pw:1: user 'carol': the password is not a hash ($6$... or $7$...); a file of "
         "plain-text passwords must be hashed first (midge-passwd -U FILE)"},
        {"carol:\n", "pw:1: user 'carol': the password is not a hash ($6$... or $7$...); a file of "
                     "plain-text passwords must be hashed first (midge-passwd -U FILE)"},
        {"frank:$5$abc$def\n",
         "pw:1: user 'frank': unknown password hash type '$5$' (Midge reads $6$ and $7$)"},
        {"frank:$2y$10$abcdefgh\n",
         "pw:1: user 'frank': unknown password hash type '$2y$' (Midge reads $6$ and $7$)"},
        {"u:$7$0$" SALT "$" HASH, "pw:1: user 'u': $7$ iteration count '0' is not a number >= 1"},
        {"u:$7$x1$" SALT "$" HASH, "pw:1: user 'u': $7$ iteration count 'x1' is not a number >= 1"},
        {"u:$7$99999999999$" SALT "$" HASH,
         "pw:1: user 'u': $7$ iteration count '99999999999' is not a number >= 1"},
        {"u:$7$101$$" HASH, "pw:1: user 'u': the salt '' is not base64 of 1 to 64 bytes"},
        {"u:$7$101$PGi*sOnPrz25vLoz$" HASH,
         "pw:1: user 'u': the salt 'PGi*sOnPrz25vLoz' is not base64 of 1 to 64 bytes"},
        {"u:$7$101$PGipsOnPrz25vLo$" HASH,
         "pw:1: user 'u': the salt 'PGipsOnPrz25vLo' is not base64 of 1 to 64 bytes"},
        {"u:$7$101$" SALT, "pw:1: user 'u': no '$' and password hash after the salt"},
        {"u:$6$" SALT, "pw:1: user 'u': no '$' and password hash after the salt"},
        {"u:$7$101$" SALT "$" HASH "$x", "pw:1: user 'u': junk after the password hash"},
        {"u:$7$101$" SALT "$AAAA", "pw:1: user 'u': the password hash is not base64 of 64 bytes"},
        {"u:$6$" SALT "$" HASH "AAAA",
         "pw:1: user 'u': the password hash is not base64 of 64 bytes"},
        {"u:$7$101$" SALT "$" HASH "\nv:x\n" PW_ALICE "\n" PW_ALICE "\n",
         "pw:2: user 'v': the password is not a hash ($6$... or $7$...); a file of plain-text "
         "passwords must be hashed first (midge-passwd -U FILE)"},
        {PW_ALICE "\n\n" PW_ALICE "\n", "pw:3: user 'alice' is already defined on line 1"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        auth_t *a = load_pw(cases[i].text);
        if (a || strcmp(err, cases[i].error) != 0)
            fail_msg("case %zu: %s\n  got:      %s\n  expected: %s", i, cases[i].text,
                     a ? "(loaded)" : err, cases[i].error);
    }
    /* A NUL byte in the file. */
    static const char nul[] = "alice:x\0y\n";
    assert_null(auth_load_mem("pw", nul, sizeof(nul) - 1, NULL, NULL, 0, err, sizeof(err)));
    assert_string_equal(err, "pw:1: NUL byte in the line");
}

/* ---- ACL file: parsing -------------------------------------------------------------- */

static void test_acl_file_errors(void **state)
{
    (void)state;
    static const struct bad_case cases[] = {
        {"topic foo bar\n", "acl:1: topic: invalid access type 'foo' (read, write, readwrite "
                            "or deny; a filter with spaces needs one)"},
        {"topic READ x\n", "acl:1: topic: invalid access type 'READ' (read, write, readwrite "
                           "or deny; a filter with spaces needs one)"},
        {"# c\ntopic\n", "acl:2: 'topic' without a topic filter"},
        {"pattern   \n", "acl:1: 'pattern' without a topic filter"},
        {"user\n", "acl:1: 'user' without a username"},
        {"user  \t\n", "acl:1: 'user' without a username"},
        {"bogus x\n", "acl:1: unknown keyword 'bogus' (user, topic or pattern)"},
        {"TOPIC x\n", "acl:1: unknown keyword 'TOPIC' (user, topic or pattern)"},
        {"topic read a/#/b\n", "acl:1: topic: the topic filter 'a/#/b' has '#' that is not the "
                               "whole last level"},
        {"topic read a#\n",
         "acl:1: topic: the topic filter 'a#' has '#' that is not the whole last level"},
        {"topic read a+/b\n",
         "acl:1: topic: the topic filter 'a+/b' has '+' that is not a whole level"},
        {"user u\npattern write p/%c+\n",
         "acl:2: pattern: the topic filter 'p/%c+' has '+' that is not a whole level"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        auth_t *a = load_acl(cases[i].text);
        if (a || strcmp(err, cases[i].error) != 0)
            fail_msg("case %zu: %s\n  got:      %s\n  expected: %s", i, cases[i].text,
                     a ? "(loaded)" : err, cases[i].error);
    }
    static const char nul[] = "topic a\0b\n";
    assert_null(auth_load_mem(NULL, NULL, 0, "acl", nul, sizeof(nul) - 1, err, sizeof(err)));
    assert_string_equal(err, "acl:1: NUL byte in the line");
}

/* Lines Mosquitto accepts that look odd: one word after topic is the filter even when it
 * is an access word; a filter with spaces after the access word; blanks around words. */
static void test_acl_file_odd_but_valid(void **state)
{
    (void)state;
    auth_t *a = load_acl("topic read\n"
                         "topic deny\n"
                         "  topic  read   sp ace/x  \r\n"
                         "\ttopic write\tw\n"
                         "user  bob smith\n"
                         "topic readwrite b/#\n");
    assert_non_null(a);
    assert_true(auth_has_acl(a));
    assert_false(auth_has_passwords(a));
    assert_true(auth_acl_check(a, NULL, "c", "read", 4, AUTH_WRITE));
    assert_true(auth_acl_check(a, NULL, "c", "deny", 4, AUTH_READ));
    assert_true(auth_acl_check(a, NULL, "c", "sp ace/x", 8, AUTH_READ));
    assert_false(auth_acl_check(a, NULL, "c", "sp ace/x", 8, AUTH_WRITE));
    assert_true(auth_acl_check(a, NULL, "c", "w", 1, AUTH_WRITE));
    assert_true(auth_acl_check(a, "bob smith", "c", "b/x", 3, AUTH_WRITE));
    assert_false(auth_acl_check(a, "bob", "c", "b/x", 3, AUTH_WRITE));
    auth_free(a);
}

/* ---- ACL decisions ------------------------------------------------------------------ */

static const char ACL[] = "# anonymous section\n"
                          "topic read anon/r\n"
                          "topic write anon/w\n"
                          "topic anon/rw\n"
                          "\n"
                          "user alice\n"
                          "topic read a/#\n"
                          "topic write w/+\n"
                          "topic readwrite rw/x\n"
                          "topic deny a/secret/#\n"
                          "topic readwrite all/#\n"
                          "topic deny all/no\n"
                          "topic read $SYS/broker/#\n"
                          "user bob\n"
                          "topic #\n"
                          "pattern read p/%u/in\n"
                          "pattern write p/%c/out\n"
                          "pattern readwrite both/%u/%c\n"
                          "pattern read mixed/x%u\n"
                          "pattern deny p/+/out/%c\n"
                          "user alice\n"
                          "topic write alice2\n";

enum { R = AUTH_READ, W = AUTH_WRITE, S = AUTH_SUBSCRIBE, RW = AUTH_READ | AUTH_WRITE };

struct acl_case {
    const char *user, *cid, *topic;
    int access;
    bool allowed;
};

static void run_acl_cases(const char *acl, const struct acl_case *cases, size_t n)
{
    auth_t *a = load_acl(acl);
    if (!a)
        fail_msg("ACL did not load: %s", err);
    for (size_t i = 0; i < n; i++) {
        const struct acl_case *c = &cases[i];
        bool got = auth_acl_check(a, c->user, c->cid, c->topic, strlen(c->topic), c->access);
        if (got != c->allowed)
            fail_msg("case %zu: user=%s cid=%s topic='%s' access=%d: %s, expected %s", i,
                     c->user ? c->user : "(anonymous)", c->cid, c->topic, c->access,
                     got ? "allowed" : "refused", c->allowed ? "allowed" : "refused");
    }
    auth_free(a);
}

static void test_acl_topic_rules(void **state)
{
    (void)state;
    static const struct acl_case cases[] = {
        /* read, write, readwrite (explicit and by default) */
        {"alice", "c1", "a/b", R, true},
        {"alice", "c1", "a/b", W, false},
        {"alice", "c1", "a", R, true}, /* a/# matches a */
        {"alice", "c1", "ab", R, false},
        {"alice", "c1", "w/x", W, true},
        {"alice", "c1", "w/x", R, false},
        {"alice", "c1", "w/x/y", W, false},
        {"alice", "c1", "w", W, false},
        {"alice", "c1", "w/", W, true}, /* + matches an empty level */
        {"alice", "c1", "rw/x", RW, true},
        {"alice", "c1", "rw/y", R, false},
        {"bob", "c1", "any/thing", RW, true},
        /* deny beats grant, whatever the order of the lines */
        {"alice", "c1", "a/secret", R, false},
        {"alice", "c1", "a/secret/x/y", R, false},
        {"alice", "c1", "a/secretive", R, true},
        {"alice", "c1", "all/no", R, false},
        {"alice", "c1", "all/no", W, false},
        {"alice", "c1", "all/yes", RW, true},
        {"alice", "c1", "all/no/more", RW, true},
        /* two "user alice" sections are one */
        {"alice", "c1", "alice2", W, true},
        /* '#' and '+' do not match $ topics (MQTT-4.7.2-1), a literal $ level does */
        {"bob", "c1", "$SYS/broker/uptime", R, false},
        {"alice", "c1", "$SYS/broker/uptime", R, true},
        {"alice", "c1", "$SYS/other", R, false},
        /* the anonymous section is for clients without a username only */
        {NULL, "c1", "anon/r", R, true},
        {NULL, "c1", "anon/r", W, false},
        {NULL, "c1", "anon/w", W, true},
        {NULL, "c1", "anon/w", R, false},
        {NULL, "c1", "anon/rw", RW, true},
        {NULL, "c1", "a/b", R, false},
        {"alice", "c1", "anon/r", R, false},
        /* a user without a section gets the patterns only */
        {"carol", "c1", "anon/r", R, false},
        {"carol", "c1", "a/b", R, false},
        /* an empty topic or no access asked: refused */
        {"bob", "c1", "", R, false},
        {"bob", "c1", "x", 0, false},
    };
    run_acl_cases(ACL, cases, sizeof(cases) / sizeof(cases[0]));
}

static void test_acl_patterns(void **state)
{
    (void)state;
    static const struct acl_case cases[] = {
        {"carol", "c1", "p/carol/in", R, true},
        {"carol", "c1", "p/carol/in", W, false},
        {"carol", "c1", "p/dave/in", R, false},
        {"carol", "c1", "p/caro/in", R, false},
        {"carol", "c1", "p/carolx/in", R, false},
        {"carol", "c1", "p/c1/out", W, true},
        {"carol", "c1", "p/c2/out", W, false},
        {"carol", "c1", "both/carol/c1", RW, true},
        {"carol", "c1", "both/c1/carol", R, false},
        /* patterns apply to users with a section too, and to anonymous clients (%c only) */
        {"alice", "cx", "p/alice/in", R, true},
        {"alice", "cx", "p/cx/out", W, true},
        {NULL, "c1", "p/c1/out", W, true},
        {NULL, "c1", "p//in", R, false},
        {NULL, "c1", "both//c1", R, false},
        /* a client id with '/' spans levels, as Mosquitto's substituted string does */
        {"carol", "c/1", "p/c/1/out", W, true},
        {"carol", "c/1", "p/c/out", W, false},
        /* %u inside a level */
        {"carol", "c1", "mixed/xcarol", R, true},
        {"carol", "c1", "mixed/carol", R, false},
        /* a client id or username with a wildcard gets no pattern at all (CVE-2017-7650) */
        {"carol", "+", "p/x/out", W, false},
        {"carol", "#", "p/x/out", W, false},
        {"ca+rol", "c1", "p/x/in", R, false},
        {"#", "c1", "p/x/in", R, false},
        {"#", "c1", "p/c1/out", W, false},
        {"carol", "c+", "p/carol/in", R, false},
        /* a deny pattern */
        {"carol", "c1", "p/x/out/c1", W, false},
        {"bob", "c1", "p/x/out/c1", W, false},
        {"bob", "c1", "p/x/out/c2", W, true},
        {"carol", "c1", "p/x/out/c1", S, false},
        /* no client id (the broker always has one; refuse what needs it) */
        {"carol", NULL, "p/c1/out", W, false},
        {"carol", NULL, "p/carol/in", R, true},
    };
    run_acl_cases(ACL, cases, sizeof(cases) / sizeof(cases[0]));
}

/* AUTH_SUBSCRIBE: granted when one line with read access covers the whole filter and no
 * deny line covers it; a filter partly denied is granted, and delivery (AUTH_READ per
 * message) keeps the denied topics out. */
static void test_acl_subscribe(void **state)
{
    (void)state;
    static const struct acl_case cases[] = {
        {"alice", "c1", "a/#", S, true},
        {"alice", "c1", "a/+", S, true},
        {"alice", "c1", "a/+/x", S, true},
        {"alice", "c1", "a", S, true},
        {"alice", "c1", "a/b", S, true},
        {"alice", "c1", "#", S, false},
        {"alice", "c1", "+/b", S, false},
        {"alice", "c1", "+", S, false},
        {"alice", "c1", "w/x", S, false}, /* write only */
        {"alice", "c1", "w/+", S, false},
        {"alice", "c1", "rw/x", S, true},
        {"alice", "c1", "rw/+", S, false},
        {"alice", "c1", "a/secret/x", S, false},
        {"alice", "c1", "a/secret/#", S, false},
        {"alice", "c1", "a/secret", S, false},
        {"alice", "c1", "all/#", S, true}, /* partly denied: granted */
        {"alice", "c1", "all/+", S, true},
        {"alice", "c1", "all/no", S, false},
        {"alice", "c1", "$SYS/broker/#", S, true},
        {"alice", "c1", "$SYS/#", S, false},
        {"bob", "c1", "#", S, true},
        {"bob", "c1", "+/x", S, true},
        {"bob", "c1", "$SYS/#", S, false}, /* '#' does not cover $ topics */
        {"bob", "c1", "$SYS/x", S, false},
        {"bob", "c1", "+", S, true},
        {NULL, "c1", "anon/r", S, true},
        {NULL, "c1", "anon/w", S, false},
        {NULL, "c1", "anon/+", S, false},
        {NULL, "c1", "#", S, false},
        {"carol", "c1", "p/carol/in", S, true},
        {"carol", "c1", "p/+/in", S, false},
        {"carol", "c1", "p/#", S, false},
        {"carol", "c1", "both/carol/c1", S, true},
        {"carol", "c1", "both/carol/+", S, false},
        {"carol", "c/1", "both/carol/c/1", S, true},
        {"+", "c1", "p/+/in", S, false},
    };
    run_acl_cases(ACL, cases, sizeof(cases) / sizeof(cases[0]));
}

static void test_acl_empty_file_refuses_all(void **state)
{
    (void)state;
    static const struct acl_case cases[] = {
        {NULL, "c", "x", R, false},
        {"u", "c", "x", W, false},
        {"u", "c", "#", S, false},
    };
    run_acl_cases("# nothing\n\n", cases, sizeof(cases) / sizeof(cases[0]));
    /* Without an ACL file (or without an auth_t) everything is allowed. */
    auth_t *a = load_pw(PW_ALICE);
    assert_non_null(a);
    assert_true(auth_acl_check(a, "alice", "c", "x", 1, W));
    assert_true(auth_acl_check(NULL, "alice", "c", "x", 1, W));
    auth_free(a);
}

/* Topic filters with a '/' at either end and empty levels. */
static void test_acl_empty_levels(void **state)
{
    (void)state;
    static const struct acl_case cases[] = {
        {"u", "c", "/a", R, true},   {"u", "c", "a", R, false},  {"u", "c", "//", R, true},
        {"u", "c", "/", R, false},   {"u", "c", "x/", R, true},  {"u", "c", "x", R, false},
        {"u", "c", "x//", R, true},  {"u", "c", "/+", S, false}, {"u", "c", "+/+/+", S, true},
        {"u", "c", "x/#", S, false},
    };
    run_acl_cases("user u\ntopic /a\ntopic +/+/+\ntopic x/\n", cases,
                  sizeof(cases) / sizeof(cases[0]));
}

/* ---- auth_load from files ----------------------------------------------------------- */

static void test_load_files(void **state)
{
    (void)state;
    char dir[] = "/tmp/midge-test-auth-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char pw[300], acl[300], missing[300];
    snprintf(pw, sizeof(pw), "%s/passwd", dir);
    snprintf(acl, sizeof(acl), "%s/acl", dir);
    snprintf(missing, sizeof(missing), "%s/missing", dir);
    FILE *f = fopen(pw, "w");
    assert_non_null(f);
    fputs(PW_ALICE "\n" PW_BOB "\n", f);
    fclose(f);
    f = fopen(acl, "w");
    assert_non_null(f);
    fputs("user alice\ntopic read a/#\n", f);
    fclose(f);

    auth_t *a = auth_load(pw, acl, err, sizeof(err));
    assert_non_null(a);
    assert_true(auth_has_passwords(a));
    assert_true(auth_has_acl(a));
    assert_true(pw_ok(a, "bob", "bob pw"));
    assert_true(auth_acl_check(a, "alice", "c", "a/b", 3, AUTH_READ));
    assert_false(auth_acl_check(a, "bob", "c", "a/b", 3, AUTH_READ));
    auth_free(a);

    a = auth_load(NULL, acl, err, sizeof(err));
    assert_non_null(a);
    assert_false(auth_has_passwords(a));
    auth_free(a);

    char expected[600];
    assert_null(auth_load(missing, acl, err, sizeof(err)));
    snprintf(expected, sizeof(expected), "%s: cannot open: No such file or directory", missing);
    assert_string_equal(err, expected);
    assert_null(auth_load(pw, missing, err, sizeof(err)));
    assert_string_equal(err, expected);

    f = fopen(acl, "w");
    assert_non_null(f);
    fputs("user alice\n\ntopic rread a b\n", f);
    fclose(f);
    assert_null(auth_load(pw, acl, err, sizeof(err)));
    snprintf(expected, sizeof(expected),
             "%s:3: topic: invalid access type 'rread' (read, write, readwrite or deny; a "
             "filter with spaces needs one)",
             acl);
    assert_string_equal(err, expected);

    unlink(pw);
    unlink(acl);
    rmdir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_passwords_from_mosquitto_passwd),
        cmocka_unit_test(test_password_empty_file),
        cmocka_unit_test(test_hash_password_roundtrip),
        cmocka_unit_test(test_password_file_errors),
        cmocka_unit_test(test_acl_file_errors),
        cmocka_unit_test(test_acl_file_odd_but_valid),
        cmocka_unit_test(test_acl_topic_rules),
        cmocka_unit_test(test_acl_patterns),
        cmocka_unit_test(test_acl_subscribe),
        cmocka_unit_test(test_acl_empty_file_refuses_all),
        cmocka_unit_test(test_acl_empty_levels),
        cmocka_unit_test(test_load_files),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
