/* fuzz_proxy.c - libFuzzer target for the PROXY protocol header parser (src/net/proxy.c).
 * The first input byte picks the listener's version (0 either, 1, 2), the rest is what the
 * connection sent. Besides surviving the sanitizers, the parser must keep its promises:
 * a header's length never exceeds the input nor PROXY_MAX_HEADER; every cut before its end
 * needs more and every longer input gives the same length; a refusal has an error and stays
 * a refusal whatever follows; a named address is one inet_pton reads back; a version-specific
 * listener agrees with one accepting either.
 */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "net/proxy.h"

#include "fuzz_check.h"

static void check_result(const proxy_result_t *r, long got, size_t n)
{
    CHECK(got >= -1 && got <= (long)n);
    CHECK(got <= PROXY_MAX_HEADER);
    CHECK((got == -1) == (r->error != NULL));
    if (got == -1)
        CHECK(strncmp(r->error, "PROXY", 5) == 0);
    CHECK(memchr(r->addr, '\0', sizeof r->addr) != NULL);
    if (got <= 0)
        return;
    CHECK(r->version == 1 || r->version == 2);
    if (r->local) {
        CHECK(r->addr[0] == '\0' && r->port == 0);
    } else {
        unsigned char bin[16];
        int family = strchr(r->addr, ':') ? AF_INET6 : AF_INET;
        CHECK(inet_pton(family, r->addr, bin) == 1);
    }
}

/* The byte counts worth cutting at below `limit`: all of the first 256 (every v1 line and
 * v2 fixed part), then a few, so that a long v2 header does not make a run quadratic. */
static size_t next_cut(size_t k, size_t limit)
{
    if (k < 256 || k + 1 >= limit)
        return k + 1;
    return k + 1 + (limit - k) / 2 < limit - 1 ? k + 1 + (limit - k) / 2 : limit - 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    int version = data[0] % 3;
    const uint8_t *p = data + 1;
    size_t n = size - 1;
    proxy_result_t r, r2;
    long got = proxy_parse(p, n, version, &r);
    check_result(&r, got, n);
    if (got > 0) {
        /* Cut anywhere before its end, the header needs more; whole, it is complete. */
        for (size_t k = 0; k < (size_t)got; k = next_cut(k, (size_t)got))
            CHECK(proxy_parse(p, k, version, &r2) == 0);
        CHECK(proxy_parse(p, (size_t)got, version, &r2) == got);
        CHECK(memcmp(&r, &r2, sizeof r) == 0);
        if (version != 0) {
            CHECK(proxy_parse(p, n, 0, &r2) == got);
            CHECK(memcmp(&r, &r2, sizeof r) == 0);
        }
        CHECK(r.version == 1 ? got <= 107 : got >= 16);
    } else {
        /* The first refusal stays a refusal for every longer input; before it, more is needed. */
        size_t first = n + 1;
        for (size_t k = 0; k <= n; k = next_cut(k, n + 1)) {
            long g = proxy_parse(p, k, version, &r2);
            check_result(&r2, g, k);
            CHECK(g <= 0);
            if (g == -1 && first > n)
                first = k;
            CHECK(g == (first <= k ? -1 : 0));
        }
        CHECK((got == -1) == (first <= n));
        if (got == 0 && n > 0 && p[0] == 'P')
            CHECK(n < 107);
    }
    return 0;
}
