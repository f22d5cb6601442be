/* proxy.c - the PROXY protocol header (HAProxy's proxy-protocol.txt, versions 1 and 2) that a
 * load balancer sends before anything else on a connection, naming the real client.
 *
 * The broker calls proxy_parse on the first bytes of a connection accepted by a listener with
 * enable_proxy_protocol, before any TLS or MQTT byte is looked at. The parser keeps no state:
 * each call reparses from the start (a header is at most a few hundred bytes), and answers
 * "need more" only while the bytes seen so far are a prefix of some valid header, so a client
 * that sends anything else ("GET / HTTP/1.1", an MQTT CONNECT, a TLS ClientHello) is refused
 * at its first wrong byte instead of at a timeout.
 */
#include "proxy.h"

#include <arpa/inet.h>
#include <stdbool.h>
#include <string.h>
#include <sys/socket.h>

/* Section 2.1: "PROXY UNKNOWN ffff:f...f:ffff ffff:f...f:ffff 65535 65535\r\n" is the
 * longest line a receiver must take; a line with no CRLF in its first 107 bytes is invalid. */
#define PROXY_V1_MAX 107
#define PROXY_V1_FIELDS 6 /* PROXY, protocol, source, destination, source port, dest. port */

/* Section 2.2: the 12-byte signature, then version/command, family/protocol, length. */
static const uint8_t v2_signature[12] = {0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D,
                                         0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A};
#define PROXY_V2_FIXED 16

static const char v1_prefix[] = "PROXY ";
#define V1_PREFIX_LEN (sizeof v1_prefix - 1)

/* Sets the error and returns -1, so that a refusal is one line. */
static long fail(proxy_result_t *r, const char *why)
{
    r->error = why;
    return -1;
}

static size_t min_size(size_t a, size_t b)
{
    return a < b ? a : b;
}

/* p[0..n) agrees with the first n bytes of want[0..wn) (n may be shorter than wn). */
static bool prefix_matches(const uint8_t *p, size_t n, const void *want, size_t wn)
{
    return memcmp(p, want, min_size(n, wn)) == 0;
}

static bool is_digit(uint8_t c)
{
    return c >= '0' && c <= '9';
}

static bool is_hex(uint8_t c)
{
    return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

/* ---- version 1: field checks. A "complete" check sees the whole field (it was followed by
 * a space or CR); a "prefix" check sees what has arrived of the last field and says whether
 * more bytes could still make it valid. */

typedef enum { V1_TCP4, V1_TCP6, V1_UNKNOWN } v1_proto_t;

static const char *const v1_proto_names[] = {"TCP4", "TCP6", "UNKNOWN"};

/* The protocol field: the v1_proto_t it names (complete), or of the first protocol it could
 * still become (prefix); -1 when there is none. */
static int v1_proto_match(const uint8_t *s, size_t n, bool complete)
{
    for (int i = 0; i < 3; i++) {
        size_t len = strlen(v1_proto_names[i]);
        if (complete ? n == len && memcmp(s, v1_proto_names[i], n) == 0
                     : n <= len && memcmp(s, v1_proto_names[i], n) == 0)
            return i;
    }
    return -1;
}

/* Section 2.1: a port is a decimal number 0..65535 without leading zeroes (nor sign). */
static bool v1_port_prefix_ok(const uint8_t *s, size_t n)
{
    unsigned long v = 0;
    if (n > 5 || (n > 1 && s[0] == '0'))
        return false;
    for (size_t i = 0; i < n; i++) {
        if (!is_digit(s[i]))
            return false;
        v = v * 10 + (unsigned long)(s[i] - '0');
    }
    return v <= 65535;
}

static bool v1_port_parse(const uint8_t *s, size_t n, uint16_t *port)
{
    if (n == 0 || !v1_port_prefix_ok(s, n))
        return false;
    unsigned long v = 0;
    for (size_t i = 0; i < n; i++)
        v = v * 10 + (unsigned long)(s[i] - '0');
    *port = (uint16_t)v;
    return true;
}

/* A prefix of a dotted quad: at most four parts of 1..3 digits, each 0..255 without leading
 * zeroes (section 2.1, and what inet_pton accepts). */
static bool ipv4_prefix_ok(const uint8_t *s, size_t n)
{
    int parts = 1, digits = 0, value = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '.') {
            if (digits == 0 || ++parts > 4)
                return false;
            digits = value = 0;
        } else if (is_digit(s[i])) {
            if (digits == 1 && value == 0)
                return false; /* leading zero */
            value = value * 10 + (s[i] - '0');
            if (++digits > 3 || value > 255)
                return false;
        } else {
            return false;
        }
    }
    return true;
}

/* A prefix of an IPv6 address as inet_pton reads it: groups of 1..4 hex digits separated by
 * ':', one "::" standing for at least one zero group, at most eight groups, and optionally a
 * dotted quad in place of the last two. It errs only towards "could still be valid"; the
 * complete field is checked by inet_pton itself. */
static bool ipv6_prefix_ok(const uint8_t *s, size_t n)
{
    int groups = 0;      /* groups ended by a ':' */
    int digits = 0;      /* hex digits of the group being read */
    bool decimal = true; /* the group being read could be the first part of a dotted quad */
    bool dcolon = false; /* "::" seen */
    size_t colons = 0;   /* ':' just before this position */
    if (n > 45)          /* INET6_ADDRSTRLEN - 1 */
        return false;
    for (size_t i = 0; i < n; i++) {
        uint8_t c = s[i];
        if (c == '.') {
            /* The rest is a dotted quad, worth two groups, and nothing may follow it. */
            if (digits == 0 || !decimal || groups + 2 > (dcolon ? 7 : 8))
                return false;
            if (!dcolon && groups != 6)
                return false;
            return ipv4_prefix_ok(s + i - (size_t)digits, n - i + (size_t)digits);
        }
        if (c == ':') {
            if (colons == 2 || (colons == 1 && dcolon))
                return false; /* ":::" or a second "::" */
            if (colons == 1) {
                dcolon = true; /* the ':' before it left room for the group it stands for */
            } else if (digits > 0) {
                groups++;
                /* A ':' promises another group. */
                if (groups + 1 > (dcolon ? 7 : 8))
                    return false;
            } /* else: a leading ':', which must be followed by another (below) */
            colons++;
            digits = 0;
            decimal = true;
            continue;
        }
        if (!is_hex(c))
            return false;
        if (colons == 1 && i == 1)
            return false; /* a leading ':' must be the start of "::" */
        colons = 0;
        if (++digits > 4)
            return false;
        if (!is_digit(c))
            decimal = false;
        if (groups + 1 > (dcolon ? 7 : 8))
            return false;
    }
    /* A lone leading ':' is fine for now: "::" may follow. */
    return true;
}

/* A complete address field of `family`, checked and converted to canonical text. */
static bool v1_addr_parse(const uint8_t *s, size_t n, int family, char *text, size_t cap)
{
    char field[46];
    uint8_t bin[16];
    if (n == 0 || n >= sizeof field)
        return false;
    memcpy(field, s, n);
    field[n] = '\0';
    if (memchr(field, '\0', n) != NULL || inet_pton(family, field, bin) != 1)
        return false;
    if (family == AF_INET && !ipv4_prefix_ok(s, n))
        return false; /* inet_pton accepts what section 2.1 forbids on some libcs */
    return text == NULL || inet_ntop(family, bin, text, (socklen_t)cap) != NULL;
}

static bool v1_addr_prefix_ok(const uint8_t *s, size_t n, int family)
{
    return family == AF_INET ? ipv4_prefix_ok(s, n) : ipv6_prefix_ok(s, n);
}

static const char *const v1_field_errors[PROXY_V1_FIELDS] = {
    "PROXY v1: header does not start with \"PROXY \"",
    "PROXY v1: unknown protocol (expected TCP4, TCP6 or UNKNOWN)",
    "PROXY v1: bad source address",
    "PROXY v1: bad destination address",
    "PROXY v1: bad source port",
    "PROXY v1: bad destination port",
};

/* Field i (1..5) of a TCP4/TCP6 line, s[0..n): complete or a prefix. */
static bool v1_field_ok(int i, const uint8_t *s, size_t n, bool complete, int family,
                        proxy_result_t *r)
{
    uint16_t port;
    switch (i) {
    case 2:
        return complete ? v1_addr_parse(s, n, family, r->addr, sizeof r->addr)
                        : v1_addr_prefix_ok(s, n, family);
    case 3:
        return complete ? v1_addr_parse(s, n, family, NULL, 0) : v1_addr_prefix_ok(s, n, family);
    case 4:
        if (!complete)
            return v1_port_prefix_ok(s, n);
        if (!v1_port_parse(s, n, &port))
            return false;
        r->port = port;
        return true;
    default:
        return complete ? v1_port_parse(s, n, &port) : v1_port_prefix_ok(s, n);
    }
}

/* The CR at p[cr]: the line's length once its LF is there (section 2.1: a lone CR or LF
 * does not end the line). */
static long v1_line_end(const uint8_t *p, size_t n, size_t cr, proxy_result_t *r)
{
    if (cr + 2 > PROXY_V1_MAX)
        return fail(r, "PROXY v1: line longer than 107 bytes");
    if (cr + 1 >= n)
        return 0;
    if (p[cr + 1] != '\n')
        return fail(r, "PROXY v1: CR not followed by LF");
    return (long)(cr + 2);
}

/* The rest of an UNKNOWN line: anything, which the receiver ignores, up to the CRLF. */
static long v1_parse_unknown(const uint8_t *p, size_t n, size_t from, proxy_result_t *r)
{
    size_t end = min_size(n, PROXY_V1_MAX);
    for (size_t i = from; i < end; i++) {
        if (p[i] == '\n')
            return fail(r, "PROXY v1: line ends with LF without CR");
        if (p[i] != '\r')
            continue;
        r->local = 1;
        return v1_line_end(p, n, i, r);
    }
    return n >= PROXY_V1_MAX ? fail(r, "PROXY v1: line longer than 107 bytes") : 0;
}

/* The shortest text of field i (2..5) of a TCP4/TCP6 line: "0.0.0.0", "::", "0". */
static size_t v1_min_field(int i, int family)
{
    return i >= 4 ? 1 : family == AF_INET ? 7 : 2;
}

/* Version 1, p[0..n) starting with (a prefix of) "PROXY ". Each field is checked as soon as
 * its end is seen; the last, unfinished one must be a prefix of a valid value. */
static long v1_parse(const uint8_t *p, size_t n, proxy_result_t *r)
{
    r->version = 1;
    if (!prefix_matches(p, n, v1_prefix, V1_PREFIX_LEN))
        return fail(r, v1_field_errors[0]);
    if (n <= V1_PREFIX_LEN)
        return 0;
    size_t end = min_size(n, PROXY_V1_MAX);
    size_t start = V1_PREFIX_LEN; /* of the field being read */
    int field = 1, family = AF_INET;
    for (size_t i = start; i < end; i++) {
        uint8_t c = p[i];
        if (c == '\n')
            return fail(r, "PROXY v1: line ends with LF without CR");
        if (c != ' ' && c != '\r')
            continue;
        if (i == start)
            return fail(r, c == ' ' ? "PROXY v1: empty field (two spaces)"
                                    : "PROXY v1: line ends before the destination port");
        if (field == 1) {
            int proto = v1_proto_match(p + start, i - start, true);
            if (proto < 0)
                return fail(r, v1_field_errors[1]);
            if (proto == V1_UNKNOWN)
                return v1_parse_unknown(p, n, i, r);
            family = proto == V1_TCP4 ? AF_INET : AF_INET6;
        } else if (!v1_field_ok(field, p + start, i - start, true, family, r)) {
            return fail(r, v1_field_errors[field]);
        }
        if (c == ' ' && field == PROXY_V1_FIELDS - 1)
            return fail(r, "PROXY v1: more than 6 fields");
        if (c == '\r') {
            if (field != PROXY_V1_FIELDS - 1)
                return fail(r, "PROXY v1: line ends before the destination port");
            return v1_line_end(p, n, i, r);
        }
        field++;
        start = i + 1;
    }
    /* The field being read has no end yet. It must be the start of a valid value, and the
     * shortest line it can still become (its own shortest value, a space and the shortest
     * value of each field left, the CRLF; only the CRLF while the protocol is unknown) must
     * fit in 107 bytes. */
    size_t rest = 2;
    if (field > 1) {
        size_t have = end - start, need = v1_min_field(field, family);
        rest += have < need ? need - have : 0;
        for (int f = field + 1; f < PROXY_V1_FIELDS; f++)
            rest += 1 + v1_min_field(f, family);
    }
    bool ok = field == 1 ? v1_proto_match(p + start, end - start, false) >= 0
                         : v1_field_ok(field, p + start, end - start, false, family, r);
    if (!ok)
        return fail(r, v1_field_errors[field]);
    if (n >= PROXY_V1_MAX || end + rest > PROXY_V1_MAX)
        return fail(r, "PROXY v1: line longer than 107 bytes");
    return 0;
}

/* ---- version 2 */

enum { V2_LOCAL = 0x0, V2_PROXY = 0x1 };
enum { V2_AF_UNSPEC = 0x0, V2_AF_INET = 0x1, V2_AF_INET6 = 0x2, V2_AF_UNIX = 0x3 };
enum { V2_UNSPEC = 0x0, V2_STREAM = 0x1, V2_DGRAM = 0x2 };

/* The address block's size for a family, 0 for AF_UNSPEC (section 2.2). */
static size_t v2_block_size(int family)
{
    static const size_t sizes[] = {0, 12, 36, 216};
    return sizes[family];
}

/* TLVs after the address block, from `from` in a header ending at `end`, of which
 * p[0..have) has arrived: each must fit inside the length the header announced (1 or 2 bytes
 * left over cannot even hold a TLV's type and length). Their contents are skipped. */
static bool v2_tlvs_fit(const uint8_t *p, size_t from, size_t have, size_t end)
{
    size_t i = from;
    while (i < end) {
        if (end - i < 3)
            return false;
        if (i + 3 > have)
            return true; /* the rest has not arrived yet */
        size_t len = (size_t)p[i + 1] << 8 | p[i + 2];
        if (len > end - i - 3)
            return false;
        i += 3 + len;
    }
    return true;
}

/* Version 2, p[0..n) starting with (a prefix of) the signature. */
static long v2_parse(const uint8_t *p, size_t n, proxy_result_t *r)
{
    r->version = 2;
    if (!prefix_matches(p, n, v2_signature, sizeof v2_signature))
        return fail(r, "PROXY v2: bad signature");
    if (n > 12 && p[12] >> 4 != 2)
        return fail(r, "PROXY v2: version is not 2");
    if (n > 12 && (p[12] & 0x0F) > V2_PROXY)
        return fail(r, "PROXY v2: unknown command (neither LOCAL nor PROXY)");
    if (n > 13 && p[13] >> 4 > V2_AF_UNIX)
        return fail(r, "PROXY v2: unknown address family");
    if (n > 13 && (p[13] & 0x0F) > V2_DGRAM)
        return fail(r, "PROXY v2: unknown transport protocol");
    if (n < PROXY_V2_FIXED)
        return 0;
    int command = p[12] & 0x0F, family = p[13] >> 4, transport = p[13] & 0x0F;
    size_t len = (size_t)p[14] << 8 | p[15];
    size_t end = PROXY_V2_FIXED + len;
    if (len > PROXY_V2_MAX_LEN)
        return fail(r, "PROXY v2: length over 2048 bytes");
    /* Section 2.2: LOCAL keeps the socket's own endpoints and skips the block whatever the
     * family says. A PROXY over AF_UNSPEC, an unspecified transport, UDP (an MQTT connection
     * is a stream; a datagram flow cannot be its origin) or AF_UNIX (no address worth
     * logging) falls back to the same, as the spec lets a receiver do for what it does not
     * support. Only TCP over IPv4 and IPv6 name the client. */
    bool named = command == V2_PROXY && transport == V2_STREAM &&
                 (family == V2_AF_INET || family == V2_AF_INET6);
    size_t block = command == V2_PROXY && transport != V2_UNSPEC ? v2_block_size(family) : 0;
    if (len < block)
        return fail(r, family == V2_AF_INET    ? "PROXY v2: length shorter than the IPv4 "
                                                 "address block (12 bytes)"
                       : family == V2_AF_INET6 ? "PROXY v2: length shorter than the IPv6 "
                                                 "address block (36 bytes)"
                                               : "PROXY v2: length shorter than the unix "
                                                 "address block (216 bytes)");
    if (block > 0 && !v2_tlvs_fit(p, PROXY_V2_FIXED + block, n, end))
        return fail(r, "PROXY v2: TLV runs past the header length");
    if (n < end)
        return 0;
    if (!named) {
        r->local = 1;
        return (long)end;
    }
    const uint8_t *a = p + PROXY_V2_FIXED;
    size_t alen = family == V2_AF_INET ? 4 : 16;
    if (inet_ntop(family == V2_AF_INET ? AF_INET : AF_INET6, a, r->addr, sizeof r->addr) == NULL)
        return fail(r, "PROXY v2: source address cannot be printed");
    r->port = (uint16_t)(a[2 * alen] << 8 | a[2 * alen + 1]);
    return (long)end;
}

/* ---- both */

long proxy_parse(const uint8_t *p, size_t n, int version, proxy_result_t *r)
{
    memset(r, 0, sizeof *r);
    if (version < 0 || version > 2)
        return fail(r, "PROXY: the listener's version must be 0, 1 or 2");
    if (n == 0)
        return 0;
    /* The two formats differ from the first byte ('P' against CR), so one byte decides. */
    bool looks_v1 = prefix_matches(p, n, v1_prefix, V1_PREFIX_LEN);
    bool looks_v2 = prefix_matches(p, n, v2_signature, sizeof v2_signature);
    if (version == 1 && looks_v2)
        return fail(r, "PROXY: a v2 header on a listener that expects v1");
    if (version == 2 && looks_v1)
        return fail(r, "PROXY: a v1 header on a listener that expects v2");
    if (version == 1 || (version == 0 && p[0] == 'P'))
        return v1_parse(p, n, r);
    if (version == 2 || p[0] == v2_signature[0])
        return v2_parse(p, n, r);
    return fail(r, "PROXY: no PROXY protocol header (neither \"PROXY \" nor the v2 signature)");
}
