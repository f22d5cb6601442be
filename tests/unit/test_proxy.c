/* test_proxy.c - unit tests of src/net/proxy.c: PROXY protocol v1 lines and v2 binary
 * headers, valid ones cut at every byte, and every kind of bad header with its exact error
 * and the byte at which it is refused. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "net/proxy.h"

static const uint8_t SIG[12] = {0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D,
                                0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A};

/* What follows the header on the wire: the start of an MQTT CONNECT. */
static const uint8_t AFTER[] = {0x10, 0x0d, 0x00, 0x04, 'M', 'Q', 'T', 'T'};

typedef struct hdr {
    uint8_t b[4096];
    size_t n;
} hdr_t;

static void put(hdr_t *h, const void *p, size_t n)
{
    assert_true(h->n + n <= sizeof h->b);
    memcpy(h->b + h->n, p, n);
    h->n += n;
}

static void put_str(hdr_t *h, const char *s)
{
    put(h, s, strlen(s));
}

static void put_u16(hdr_t *h, unsigned v)
{
    uint8_t b[2] = {(uint8_t)(v >> 8), (uint8_t)v};
    put(h, b, 2);
}

/* A v2 header: signature, ver/cmd, fam, length, then `body` (addresses and TLVs). The
 * length field says `len`, which a lying header sets apart from body_n. */
static void v2(hdr_t *h, uint8_t ver_cmd, uint8_t fam, size_t len, const void *body, size_t body_n)
{
    h->n = 0;
    put(h, SIG, sizeof SIG);
    uint8_t vf[2] = {ver_cmd, fam};
    put(h, vf, 2);
    put_u16(h, (unsigned)len);
    if (body_n)
        put(h, body, body_n);
}

/* The IPv4 block: 192.0.2.1:56324 -> 198.51.100.2:1883. */
static size_t ipv4_block(uint8_t *b)
{
    static const uint8_t blk[12] = {192, 0, 2, 1, 198, 51, 100, 2, 0xDC, 0x04, 0x07, 0x5B};
    memcpy(b, blk, 12);
    return 12;
}

/* The IPv6 block: [2001:db8::1]:443 -> [2001:db8::2]:8883. */
static size_t ipv6_block(uint8_t *b)
{
    memset(b, 0, 36);
    inet_pton(AF_INET6, "2001:db8::1", b);
    inet_pton(AF_INET6, "2001:db8::2", b + 16);
    b[32] = 443 >> 8;
    b[33] = 443 & 0xFF;
    b[34] = 8883 >> 8;
    b[35] = 8883 & 0xFF;
    return 36;
}

/* A valid header h (without what follows it) parses, for `version`, to its full length; cut
 * at any byte before its end it needs more; bytes after it are not part of it. Returns the
 * result of the complete parse. */
static proxy_result_t expect_valid(const hdr_t *h, int version)
{
    proxy_result_t r;
    uint8_t buf[sizeof h->b + sizeof AFTER];
    memcpy(buf, h->b, h->n);
    memcpy(buf + h->n, AFTER, sizeof AFTER);
    for (size_t k = 0; k < h->n; k++) {
        long got = proxy_parse(buf, k, version, &r);
        if (got != 0)
            fail_msg("cut at %zu of %zu: returned %ld (%s)", k, h->n, got,
                     r.error ? r.error : "no error");
    }
    for (size_t extra = 0; extra <= sizeof AFTER; extra++) {
        long got = proxy_parse(buf, h->n + extra, version, &r);
        if (got != (long)h->n)
            fail_msg("with %zu bytes after it: returned %ld, expected %zu (%s)", extra, got, h->n,
                     r.error ? r.error : "no error");
        assert_null(r.error);
    }
    return r;
}

/* The first byte count at which p[0..n) is refused (n + 1 if never), checking that a
 * refusal, once given, stays for every longer input (its error may change: "bad source port"
 * at 33 bytes can become "line longer than 107 bytes" at 107). */
static size_t refused_at(const void *p, size_t n, int version, const char **error)
{
    proxy_result_t r;
    size_t at = n + 1;
    *error = NULL;
    for (size_t k = 0; k <= n; k++) {
        long got = proxy_parse(p, k, version, &r);
        if (at > n && got == -1) {
            at = k;
            *error = r.error;
            assert_non_null(r.error);
        } else if (at <= n) {
            assert_int_equal(got, -1);
            assert_non_null(r.error);
        } else {
            assert_int_equal(got, 0);
        }
    }
    return at;
}

/* p is refused with exactly `error`, at byte count `at` (0: wherever). */
static void expect_refused(const void *p, size_t n, int version, size_t at, const char *error)
{
    const char *got;
    size_t k = refused_at(p, n, version, &got);
    if (k > n)
        fail_msg("not refused: \"%.*s\"", (int)n, (const char *)p);
    if (error != NULL && strcmp(got, error) != 0)
        fail_msg("\"%.*s\": error \"%s\", expected \"%s\"", (int)n, (const char *)p, got, error);
    if (at != 0 && k != at)
        fail_msg("\"%.*s\": refused at byte count %zu, expected %zu (%s)", (int)n, (const char *)p,
                 k, at, got);
}

static void expect_line_refused(const char *line, int version, size_t at, const char *error)
{
    expect_refused(line, strlen(line), version, at, error);
}

static proxy_result_t expect_line_valid(const char *line, int version)
{
    hdr_t h = {.n = 0};
    put_str(&h, line);
    return expect_valid(&h, version);
}

/* ---- version 1 */

static void test_v1_tcp4(void **state)
{
    (void)state;
    for (int version = 0; version <= 1; version++) {
        proxy_result_t r =
            expect_line_valid("PROXY TCP4 192.0.2.1 198.51.100.2 56324 1883\r\n", version);
        assert_int_equal(r.version, 1);
        assert_int_equal(r.local, 0);
        assert_string_equal(r.addr, "192.0.2.1");
        assert_int_equal(r.port, 56324);
    }
    proxy_result_t r = expect_line_valid("PROXY TCP4 255.255.255.255 0.0.0.0 0 65535\r\n", 1);
    assert_string_equal(r.addr, "255.255.255.255");
    assert_int_equal(r.port, 0);
}

static void test_v1_tcp6(void **state)
{
    (void)state;
    /* The address comes back in inet_ntop's canonical form. */
    proxy_result_t r = expect_line_valid("PROXY TCP6 2001:DB8:0:0::1 2001:db8::2 443 8883\r\n", 0);
    assert_int_equal(r.version, 1);
    assert_int_equal(r.local, 0);
    assert_string_equal(r.addr, "2001:db8::1");
    assert_int_equal(r.port, 443);
    r = expect_line_valid("PROXY TCP6 ::ffff:192.0.2.7 :: 1 2\r\n", 1);
    assert_string_equal(r.addr, "::ffff:192.0.2.7");
    assert_int_equal(r.port, 1);
    /* The longest TCP6 line of section 2.1: 104 bytes. */
    const char *longest = "PROXY TCP6 ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff "
                          "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff 65535 65535\r\n";
    assert_int_equal(strlen(longest), 104);
    r = expect_line_valid(longest, 1);
    assert_string_equal(r.addr, "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff");
}

/* Every prefix of a TCP6 line needs more, for addresses of every shape inet_ntop writes and
 * a few it does not (full groups, upper case, embedded IPv4). */
static void test_v1_tcp6_every_shape(void **state)
{
    (void)state;
    static const char *const written[] = {
        "0:0:0:0:0:0:0:0",
        "0000:0000:0000:0000:0000:0000:0000:0001",
        "1::",
        "::1",
        "1:2:3:4:5:6:7::",
        "::2:3:4:5:6:7:8",
        "1:2:3:4:5:6:1.2.3.4",
        "::1.2.3.4",
        "1::2:3:4:5:6:7",
        "FE80::A:b:C",
        "1:2:3:4:5::255.255.255.255",
        "::ffff:0.0.0.0",
    };
    char line[160];
    for (size_t i = 0; i < sizeof written / sizeof written[0]; i++) {
        snprintf(line, sizeof line, "PROXY TCP6 %s ::1 1 2\r\n", written[i]);
        expect_line_valid(line, 1);
    }
    srand(5);
    for (int i = 0; i < 2000; i++) {
        uint8_t a[16];
        for (int k = 0; k < 16; k++)
            a[k] = rand() % 3 == 0 ? (uint8_t)rand() : 0; /* runs of zero groups */
        char text[INET6_ADDRSTRLEN];
        assert_non_null(inet_ntop(AF_INET6, a, text, sizeof text));
        snprintf(line, sizeof line, "PROXY TCP6 %s %s 65535 1\r\n", text, text);
        proxy_result_t r = expect_line_valid(line, 0);
        assert_string_equal(r.addr, text);
    }
}

/* An IPv6 address in one of the many texts inet_pton reads: groups with or without leading
 * zeroes, in either case, any run of zero groups (not only the longest) written "::", the
 * last 32 bits as a dotted quad. */
static void random_ipv6_text(char *out, size_t cap)
{
    unsigned g[8];
    for (int i = 0; i < 8; i++)
        g[i] = rand() % 2 ? 0 : (unsigned)rand() % (rand() % 2 ? 16 : 65536);
    int from = -1, to = -1; /* groups [from, to) become "::" when all zero */
    if (rand() % 3) {
        from = rand() % 8;
        to = from + 1 + rand() % (8 - from);
        for (int i = from; i < to; i++)
            g[i] = 0;
    }
    bool quad = rand() % 4 == 0 && to < 7;
    size_t n = 0;
    int last = quad ? 6 : 8;
    for (int i = 0; i < last; i++) {
        if (i == from) {
            n += (size_t)snprintf(out + n, cap - n, "%s", i == 0 ? "::" : ":");
            i = to - 1;
            continue;
        }
        int width = 1 + rand() % 4;
        n += (size_t)snprintf(out + n, cap - n, rand() % 2 ? "%0*x" : "%0*X", width, g[i]);
        if (i + 1 < last || quad)
            n += (size_t)snprintf(out + n, cap - n, ":");
    }
    if (quad)
        snprintf(out + n, cap - n, "%u.%u.%u.%u", g[6] >> 8, g[6] & 0xFF, g[7] >> 8, g[7] & 0xFF);
}

/* No valid address is ever refused while it arrives. */
static void test_v1_tcp6_any_text_inet_pton_reads(void **state)
{
    (void)state;
    srand(55);
    int tried = 0;
    for (int i = 0; i < 20000; i++) {
        char text[128], line[300];
        uint8_t bin[16];
        random_ipv6_text(text, sizeof text);
        if (strlen(text) > 45 || inet_pton(AF_INET6, text, bin) != 1)
            continue; /* e.g. "::" standing for nothing, or leading zeroes longer than 4 */
        tried++;
        snprintf(line, sizeof line, "PROXY TCP6 %s ::1 1 2\r\n", text);
        if (strlen(line) <= 107)
            expect_line_valid(line, 1);
    }
    assert_true(tried > 5000);
}

static void test_v1_unknown(void **state)
{
    (void)state;
    proxy_result_t r = expect_line_valid("PROXY UNKNOWN\r\n", 0);
    assert_int_equal(r.version, 1);
    assert_int_equal(r.local, 1);
    assert_string_equal(r.addr, "");
    assert_int_equal(r.port, 0);
    /* Section 2.1: the receiver ignores whatever follows UNKNOWN before the CRLF. */
    r = expect_line_valid("PROXY UNKNOWN 192.0.2.1 whatever 1 2\r\n", 1);
    assert_int_equal(r.local, 1);
    assert_string_equal(r.addr, "");
    /* The worst case of section 2.1 is exactly 107 bytes, and accepted. */
    const char *worst = "PROXY UNKNOWN ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff "
                        "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff 65535 65535\r\n";
    assert_int_equal(strlen(worst), 107);
    expect_line_valid(worst, 1);
}

static void test_v1_longer_than_107_bytes(void **state)
{
    (void)state;
    char line[200];
    /* 108 bytes with the CRLF: the CR is the 107th byte, refused as soon as it is seen. */
    snprintf(line, sizeof line, "PROXY UNKNOWN %0*d\r\n", 108 - 16, 0);
    assert_int_equal(strlen(line), 108);
    expect_line_refused(line, 1, 107, "PROXY v1: line longer than 107 bytes");
    /* No CRLF at all: refused at 107 bytes, not later. */
    memset(line, 'x', sizeof line);
    memcpy(line, "PROXY UNKNOWN ", 14);
    expect_refused(line, sizeof line, 0, 107, "PROXY v1: line longer than 107 bytes");
    /* A TCP4 line whose fields cannot fit any more: refused before 107 bytes arrive. */
    snprintf(line, sizeof line, "PROXY TCP6 ::%0*d", 80, 0);
    expect_line_refused(line, 1, 0, NULL);
    /* Two of the longest IPv6 texts (45 bytes) leave no room for the ports and CRLF. */
    snprintf(line, sizeof line, "PROXY TCP6 %s %s 1 1\r\n",
             "ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255",
             "ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255");
    assert_int_equal(strlen(line), 108);
    expect_line_refused(line, 1, 102, "PROXY v1: line longer than 107 bytes");
    snprintf(line, sizeof line, "PROXY TCP4 1.2.3.4 5.6.7.8 1 %0*d", 80, 0);
    expect_line_refused(line, 1, 0, "PROXY v1: bad destination port");
}

static void test_v1_bad_addresses(void **state)
{
    (void)state;
    static const char *const src = "PROXY v1: bad source address";
    static const char *const dst = "PROXY v1: bad destination address";
    /* Refused at the byte that breaks the syntax. */
    expect_line_refused("PROXY TCP4 01.2.3.4 1.2.3.4 1 2\r\n", 1, 13, src);
    expect_line_refused("PROXY TCP4 256.1.1.1 1.2.3.4 1 2\r\n", 1, 14, src);
    expect_line_refused("PROXY TCP4 1.2.3.4.5 1.2.3.4 1 2\r\n", 1, 19, src);
    expect_line_refused("PROXY TCP4 1.2.3.4x 1.2.3.4 1 2\r\n", 1, 19, src);
    expect_line_refused("PROXY TCP4 1..2.3 1.2.3.4 1 2\r\n", 1, 14, src);
    expect_line_refused("PROXY TCP4 -1.2.3.4 1.2.3.4 1 2\r\n", 1, 12, src);
    /* Refused at the space that ends an incomplete address. */
    expect_line_refused("PROXY TCP4 1.2.3 1.2.3.4 1 2\r\n", 1, 17, src);
    expect_line_refused("PROXY TCP4 1.2.3.4 1.2.3 1 2\r\n", 1, 25, dst);
    /* The family must match the protocol. */
    expect_line_refused("PROXY TCP4 ::1 1.2.3.4 1 2\r\n", 1, 12, src);
    expect_line_refused("PROXY TCP6 1.2.3.4 ::1 1 2\r\n", 1, 13, src);
    expect_line_refused("PROXY TCP6 ::1 1.2.3.4 1 2\r\n", 1, 17, dst);
    /* IPv6 syntax. */
    expect_line_refused("PROXY TCP6 1:::2 ::1 1 2\r\n", 1, 15, src);
    expect_line_refused("PROXY TCP6 1::2::3 ::1 1 2\r\n", 1, 17, src);
    expect_line_refused("PROXY TCP6 :1 ::1 1 2\r\n", 1, 13, src);
    expect_line_refused("PROXY TCP6 12345:: ::1 1 2\r\n", 1, 16, src);
    expect_line_refused("PROXY TCP6 1:2:3:4:5:6:7:8:9 ::1 1 2\r\n", 1, 27, src);
    expect_line_refused("PROXY TCP6 1:2:3:4::5:6:7:8 ::1 1 2\r\n", 1, 0, src);
    expect_line_refused("PROXY TCP6 1:2:3:4:5:6:7 ::1 1 2\r\n", 1, 25, src);
    expect_line_refused("PROXY TCP6 ::g ::1 1 2\r\n", 1, 14, src);
    expect_line_refused("PROXY TCP6 1:2:3:4:5:6:7::8 ::1 1 2\r\n", 1, 27, src);
    expect_line_refused("PROXY TCP6 1::2:3:4:5:6:1.2.3.4 ::1 1 2\r\n", 1, 26, src);
    expect_line_refused("PROXY TCP6 1:2:3:4:5:1.2.3.4 ::1 1 2\r\n", 1, 23, src);
    expect_line_refused("PROXY TCP6 1.2.3.4 ::1 1 2\r\n", 1, 0, src);
    /* "::ffff:01" could still become "::ffff:0123": the '.' is the wrong byte. */
    expect_line_refused("PROXY TCP6 ::ffff:01.2.3.4 ::1 1 2\r\n", 1, 21, src);
}

static void test_v1_bad_ports(void **state)
{
    (void)state;
    static const char *const sport = "PROXY v1: bad source port";
    static const char *const dport = "PROXY v1: bad destination port";
    expect_line_refused("PROXY TCP4 1.2.3.4 5.6.7.8 +80 1883\r\n", 1, 28, sport);
    expect_line_refused("PROXY TCP4 1.2.3.4 5.6.7.8 080 1883\r\n", 1, 29, sport);
    expect_line_refused("PROXY TCP4 1.2.3.4 5.6.7.8 65536 1883\r\n", 1, 32, sport);
    expect_line_refused("PROXY TCP4 1.2.3.4 5.6.7.8 655350 1883\r\n", 1, 33, sport);
    expect_line_refused("PROXY TCP4 1.2.3.4 5.6.7.8 -1 1883\r\n", 1, 28, sport);
    expect_line_refused("PROXY TCP4 1.2.3.4 5.6.7.8 80x 1883\r\n", 1, 30, sport);
    expect_line_refused("PROXY TCP4 1.2.3.4 5.6.7.8 80 1883x\r\n", 1, 35, dport);
    expect_line_refused("PROXY TCP4 1.2.3.4 5.6.7.8 80 00\r\n", 1, 32, dport);
    expect_line_refused("PROXY TCP4 1.2.3.4 5.6.7.8 80 0x50\r\n", 1, 32, dport);
}

static void test_v1_bad_syntax(void **state)
{
    (void)state;
    expect_line_refused("proxy TCP4 1.2.3.4 5.6.7.8 1 2\r\n", 1, 1,
                        "PROXY v1: header does not start with \"PROXY \"");
    expect_line_refused("PROXYTCP4 1.2.3.4 5.6.7.8 1 2\r\n", 1, 6,
                        "PROXY v1: header does not start with \"PROXY \"");
    expect_line_refused("PROXY TCP5 1.2.3.4 5.6.7.8 1 2\r\n", 0, 10,
                        "PROXY v1: unknown protocol (expected TCP4, TCP6 or UNKNOWN)");
    expect_line_refused("PROXY TCP 1.2.3.4 5.6.7.8 1 2\r\n", 0, 10,
                        "PROXY v1: unknown protocol (expected TCP4, TCP6 or UNKNOWN)");
    expect_line_refused("PROXY UDP4 1.2.3.4 5.6.7.8 1 2\r\n", 0, 8,
                        "PROXY v1: unknown protocol (expected TCP4, TCP6 or UNKNOWN)");
    expect_line_refused("PROXY TCP4  1.2.3.4 5.6.7.8 1 2\r\n", 1, 12,
                        "PROXY v1: empty field (two spaces)");
    expect_line_refused("PROXY TCP4 1.2.3.4 5.6.7.8 1 2 3\r\n", 1, 31,
                        "PROXY v1: more than 6 fields");
    expect_line_refused("PROXY TCP4 1.2.3.4 5.6.7.8 1\r\n", 1, 29,
                        "PROXY v1: line ends before the destination port");
    expect_line_refused("PROXY TCP4 1.2.3.4 5.6.7.8 1 2 \r\n", 1, 31,
                        "PROXY v1: more than 6 fields");
    /* Section 2.1: a lone CR or LF does not end the line. */
    expect_line_refused("PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n", 1, 31,
                        "PROXY v1: line ends with LF without CR");
    expect_line_refused("PROXY TCP4 1.2.3.4 5.6.7.8 1 2\rX", 1, 32,
                        "PROXY v1: CR not followed by LF");
    expect_line_refused("PROXY UNKNOWN\n", 1, 14, "PROXY v1: line ends with LF without CR");
    expect_line_refused("PROXY UNKNOWN x\n", 1, 16, "PROXY v1: line ends with LF without CR");
    expect_line_refused("PROXY UNKNOWN x\ry\r\n", 1, 17, "PROXY v1: CR not followed by LF");
    /* A NUL inside a field is not the end of it. */
    static const char nul[] = "PROXY TCP4 1.2.3.4\0 5.6.7.8 1 2\r\n";
    expect_refused(nul, sizeof nul - 1, 1, 19, "PROXY v1: bad source address");
}

/* ---- version 2 */

static void test_v2_proxy_ipv4(void **state)
{
    (void)state;
    uint8_t blk[12];
    hdr_t h;
    v2(&h, 0x21, 0x11, 12, blk, ipv4_block(blk));
    assert_int_equal(h.n, 28);
    for (int version = 0; version <= 2; version += 2) {
        proxy_result_t r = expect_valid(&h, version);
        assert_int_equal(r.version, 2);
        assert_int_equal(r.local, 0);
        assert_string_equal(r.addr, "192.0.2.1");
        assert_int_equal(r.port, 56324);
    }
}

static void test_v2_proxy_ipv6(void **state)
{
    (void)state;
    uint8_t blk[36];
    hdr_t h;
    v2(&h, 0x21, 0x21, 36, blk, ipv6_block(blk));
    proxy_result_t r = expect_valid(&h, 2);
    assert_int_equal(r.local, 0);
    assert_string_equal(r.addr, "2001:db8::1");
    assert_int_equal(r.port, 443);
}

/* TLVs after the address block: ALPN "mqtt", NOOP padding, an empty AUTHORITY, a unique ID. */
static size_t some_tlvs(uint8_t *b)
{
    static const uint8_t tlvs[] = {0x01, 0x00, 0x04, 'm',  'q',  't',  't',  0x04, 0x00,
                                   0x03, 0x00, 0x00, 0x00, 0x02, 0x00, 0x00, 0x05, 0x00,
                                   0x08, 1,    2,    3,    4,    5,    6,    7,    8};
    memcpy(b, tlvs, sizeof tlvs);
    return sizeof tlvs;
}

static void test_v2_with_tlvs(void **state)
{
    (void)state;
    uint8_t body[256];
    size_t n = ipv4_block(body);
    n += some_tlvs(body + n);
    hdr_t h;
    v2(&h, 0x21, 0x11, n, body, n);
    proxy_result_t r = expect_valid(&h, 0);
    assert_string_equal(r.addr, "192.0.2.1");
    assert_int_equal(r.port, 56324);
    n = ipv6_block(body);
    n += some_tlvs(body + n);
    v2(&h, 0x21, 0x21, n, body, n);
    r = expect_valid(&h, 2);
    assert_string_equal(r.addr, "2001:db8::1");
    /* The largest accepted length, made of one big NOOP TLV. */
    uint8_t big[PROXY_V2_MAX_LEN];
    memset(big, 0, sizeof big);
    ipv4_block(big);
    big[12] = 0x04;
    big[13] = (PROXY_V2_MAX_LEN - 15) >> 8;
    big[14] = (PROXY_V2_MAX_LEN - 15) & 0xFF;
    v2(&h, 0x21, 0x11, sizeof big, big, sizeof big);
    assert_int_equal(expect_valid(&h, 2).port, 56324);
}

static void test_v2_local(void **state)
{
    (void)state;
    hdr_t h;
    v2(&h, 0x20, 0x00, 0, NULL, 0);
    proxy_result_t r = expect_valid(&h, 2);
    assert_int_equal(r.version, 2);
    assert_int_equal(r.local, 1);
    assert_string_equal(r.addr, "");
    /* Section 2.2: LOCAL skips whatever block the length announces, family and all. */
    uint8_t blk[40];
    v2(&h, 0x20, 0x11, 12, blk, ipv4_block(blk));
    r = expect_valid(&h, 0);
    assert_int_equal(r.local, 1);
    assert_string_equal(r.addr, "");
    memset(blk, 0xEE, sizeof blk);
    v2(&h, 0x20, 0x21, 5, blk, 5);
    assert_int_equal(expect_valid(&h, 2).local, 1);
}

/* What Midge does not take an address from falls back to the socket's own (see proxy.h). */
static void test_v2_unsupported_families_are_local(void **state)
{
    (void)state;
    uint8_t body[300];
    memset(body, 0, sizeof body);
    hdr_t h;
    static const struct {
        uint8_t fam;
        size_t len;
    } cases[] = {
        {0x00, 0},   /* PROXY over AF_UNSPEC */
        {0x00, 7},   /* ... with bytes the receiver ignores */
        {0x12, 12},  /* UDP over IPv4 */
        {0x22, 36},  /* UDP over IPv6 */
        {0x31, 216}, /* unix stream */
        {0x32, 220}, /* unix datagram, with a 4-byte TLV */
        {0x10, 0},   /* IPv4 with an unspecified transport */
        {0x01, 3},   /* unspecified family over a stream */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        memset(body, 0, sizeof body);
        if (cases[i].len == 220) {
            body[216] = 0x04; /* NOOP, 1 byte */
            body[218] = 1;
        }
        v2(&h, 0x21, cases[i].fam, cases[i].len, body, cases[i].len);
        proxy_result_t r = expect_valid(&h, 0);
        assert_int_equal(r.local, 1);
        assert_string_equal(r.addr, "");
        assert_int_equal(r.port, 0);
    }
}

static void test_v2_bad_signature(void **state)
{
    (void)state;
    uint8_t blk[12];
    hdr_t h;
    v2(&h, 0x21, 0x11, 12, blk, ipv4_block(blk));
    /* A wrong byte anywhere in the signature is refused as soon as it arrives. */
    for (size_t i = 1; i < 12; i++) {
        hdr_t bad = h;
        bad.b[i] ^= 0x20;
        expect_refused(bad.b, bad.n, 2, i + 1, "PROXY v2: bad signature");
        expect_refused(bad.b, bad.n, 0, i + 1, "PROXY v2: bad signature");
    }
    hdr_t bad = h;
    bad.b[0] = 'X';
    expect_refused(bad.b, bad.n, 2, 1, "PROXY v2: bad signature");
    expect_refused(bad.b, bad.n, 0, 1,
                   "PROXY: no PROXY protocol header (neither \"PROXY \" nor the v2 signature)");
}

static void test_v2_bad_fields(void **state)
{
    (void)state;
    uint8_t blk[12];
    hdr_t h;
    v2(&h, 0x11, 0x11, 12, blk, ipv4_block(blk));
    expect_refused(h.b, h.n, 2, 13, "PROXY v2: version is not 2");
    v2(&h, 0x31, 0x11, 12, blk, ipv4_block(blk));
    expect_refused(h.b, h.n, 0, 13, "PROXY v2: version is not 2");
    v2(&h, 0x22, 0x11, 12, blk, ipv4_block(blk));
    expect_refused(h.b, h.n, 2, 13, "PROXY v2: unknown command (neither LOCAL nor PROXY)");
    v2(&h, 0x21, 0x41, 12, blk, ipv4_block(blk));
    expect_refused(h.b, h.n, 2, 14, "PROXY v2: unknown address family");
    v2(&h, 0x21, 0x13, 12, blk, ipv4_block(blk));
    expect_refused(h.b, h.n, 2, 14, "PROXY v2: unknown transport protocol");
    /* Section 2.2: invalid values are refused whatever the command. */
    v2(&h, 0x20, 0x51, 0, NULL, 0);
    expect_refused(h.b, h.n, 2, 14, "PROXY v2: unknown address family");
    v2(&h, 0x21, 0x11, PROXY_V2_MAX_LEN + 1, blk, ipv4_block(blk));
    expect_refused(h.b, h.n, 2, 16, "PROXY v2: length over 2048 bytes");
}

static void test_v2_lying_lengths(void **state)
{
    (void)state;
    uint8_t body[128];
    hdr_t h;
    /* Shorter than the address block: refused as soon as the length is read. */
    v2(&h, 0x21, 0x11, 8, body, ipv4_block(body));
    expect_refused(h.b, h.n, 2, 16,
                   "PROXY v2: length shorter than the IPv4 address block (12 bytes)");
    v2(&h, 0x21, 0x21, 12, body, ipv6_block(body));
    expect_refused(h.b, h.n, 2, 16,
                   "PROXY v2: length shorter than the IPv6 address block (36 bytes)");
    v2(&h, 0x21, 0x31, 108, body, 0);
    expect_refused(h.b, h.n, 2, 16,
                   "PROXY v2: length shorter than the unix address block (216 bytes)");
    /* Longer than what is sent: it waits for the rest, whatever the bytes that follow. */
    size_t n = ipv4_block(body);
    v2(&h, 0x21, 0x11, 12 + 1000, body, n);
    proxy_result_t r;
    for (size_t k = 0; k <= h.n; k++)
        assert_int_equal(proxy_parse(h.b, k, 2, &r), 0);
    /* ... unless they are TLVs that cannot fit: an MQTT CONNECT read as a TLV claims 0x0d00
     * bytes, more than the 10 left. */
    v2(&h, 0x21, 0x11, 12 + 10, body, n);
    put(&h, AFTER, sizeof AFTER);
    expect_refused(h.b, h.n, 2, 31, "PROXY v2: TLV runs past the header length");
    /* A TLV longer than the block, and stray bytes too short for a TLV. */
    n = ipv4_block(body);
    memcpy(body + n,
           "\x01\x00\x05"
           "abcd",
           7);
    v2(&h, 0x21, 0x11, n + 7, body, n + 7);
    expect_refused(h.b, h.n, 2, 31, "PROXY v2: TLV runs past the header length");
    n = ipv4_block(body);
    memcpy(body + n,
           "\x04\x00\x00"
           "\x04\x00",
           5);
    v2(&h, 0x21, 0x11, n + 5, body, n + 5);
    expect_refused(h.b, h.n, 2, 31, "PROXY v2: TLV runs past the header length");
}

/* ---- both */

static void test_version_mismatch(void **state)
{
    (void)state;
    uint8_t blk[12];
    hdr_t h;
    v2(&h, 0x21, 0x11, 12, blk, ipv4_block(blk));
    expect_refused(h.b, h.n, 1, 1, "PROXY: a v2 header on a listener that expects v1");
    expect_line_refused("PROXY TCP4 192.0.2.1 198.51.100.2 56324 1883\r\n", 2, 1,
                        "PROXY: a v1 header on a listener that expects v2");
    expect_line_refused("PROXY UNKNOWN\r\n", 3, 0,
                        "PROXY: the listener's version must be 0, 1 "
                        "or 2");
}

/* What a client that does not know it talks to a PROXY listener sends is refused at its
 * first byte, not after a timeout. */
static void test_other_protocols_refused_at_once(void **state)
{
    (void)state;
    static const char *const none =
        "PROXY: no PROXY protocol header (neither \"PROXY \" nor the v2 signature)";
    expect_line_refused("GET / HTTP/1.1\r\nHost: x\r\n\r\n", 0, 1, none);
    expect_line_refused("GET / HTTP/1.1\r\nHost: x\r\n\r\n", 1, 1,
                        "PROXY v1: header does not start with \"PROXY \"");
    expect_line_refused("GET / HTTP/1.1\r\nHost: x\r\n\r\n", 2, 1, "PROXY v2: bad signature");
    expect_refused(AFTER, sizeof AFTER, 0, 1, none);
    static const uint8_t client_hello[] = {0x16, 0x03, 0x01, 0x02, 0x00, 0x01};
    expect_refused(client_hello, sizeof client_hello, 0, 1, none);
    /* "\r\n" then something else: an HTTP client's stray empty line. */
    expect_line_refused("\r\nGET / HTTP/1.1\r\n", 0, 3, "PROXY v2: bad signature");
    /* "PRO" is still a possible v1 header; "PROB" is not. */
    expect_line_refused("PROBE", 0, 4, "PROXY v1: header does not start with \"PROXY \"");
}

static void test_result_cleared_each_call(void **state)
{
    (void)state;
    proxy_result_t r;
    memset(&r, 0x55, sizeof r);
    assert_int_equal(proxy_parse((const uint8_t *)"PRO", 3, 0, &r), 0);
    assert_null(r.error);
    assert_string_equal(r.addr, "");
    assert_int_equal(proxy_parse((const uint8_t *)"X", 1, 0, &r), -1);
    assert_non_null(r.error);
    assert_int_equal(proxy_parse((const uint8_t *)"", 0, 0, &r), 0);
    assert_null(r.error);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_v1_tcp4),
        cmocka_unit_test(test_v1_tcp6),
        cmocka_unit_test(test_v1_tcp6_every_shape),
        cmocka_unit_test(test_v1_tcp6_any_text_inet_pton_reads),
        cmocka_unit_test(test_v1_unknown),
        cmocka_unit_test(test_v1_longer_than_107_bytes),
        cmocka_unit_test(test_v1_bad_addresses),
        cmocka_unit_test(test_v1_bad_ports),
        cmocka_unit_test(test_v1_bad_syntax),
        cmocka_unit_test(test_v2_proxy_ipv4),
        cmocka_unit_test(test_v2_proxy_ipv6),
        cmocka_unit_test(test_v2_with_tlvs),
        cmocka_unit_test(test_v2_local),
        cmocka_unit_test(test_v2_unsupported_families_are_local),
        cmocka_unit_test(test_v2_bad_signature),
        cmocka_unit_test(test_v2_bad_fields),
        cmocka_unit_test(test_v2_lying_lengths),
        cmocka_unit_test(test_version_mismatch),
        cmocka_unit_test(test_other_protocols_refused_at_once),
        cmocka_unit_test(test_result_cleared_each_call),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
