/* fuzz_http.c - libFuzzer target for the HTTP/1.1 head parser (src/net/http.c) and the
 * path decoding of static files (src/net/http_serve.c). The first byte picks request or
 * response; the rest is the head. Whatever parses must hold views inside the input, within
 * the limits; whatever is refused must say why with a status a server can send.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "net/http.h"
#include "net/http_serve.h"

#include "fuzz_check.h"

static void check_view(http_view_t v, const uint8_t *p, long len)
{
    if (v.n == 0)
        return;
    CHECK((const uint8_t *)v.p >= p && (const uint8_t *)v.p + v.n <= p + len);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    bool response = data[0] & 1;
    const uint8_t *p = data + 1;
    size_t n = size - 1;
    http_head_t h;
    http_error_t e;
    long r = response ? http_parse_response(p, n, &h, &e) : http_parse_request(p, n, &h, &e);
    if (r < 0) {
        CHECK(r == -1);
        CHECK(e.status == 400 || e.status == 431 || e.status == 505);
        CHECK(e.msg[0] != '\0');
        return 0;
    }
    if (r == 0) {
        CHECK(n < HTTP_MAX_HEAD);
        return 0;
    }
    CHECK((size_t)r <= n && r <= HTTP_MAX_HEAD);
    CHECK(r >= 4 && memcmp(p + r - 4, "\r\n\r\n", 4) == 0);
    CHECK(h.nheaders >= 0 && h.nheaders <= HTTP_MAX_HEADERS);
    CHECK(h.minor == 0 || h.minor == 1);
    for (int i = 0; i < h.nheaders; i++) {
        CHECK(h.header[i].name.n > 0);
        check_view(h.header[i].name, p, r);
        check_view(h.header[i].value, p, r);
        CHECK(http_header_get(&h, "x") == NULL || http_header_count(&h, "x") > 0);
        http_view_t rest = h.header[i].value, elem;
        while (http_list_next(&rest, &elem))
            check_view(elem, p, r);
    }
    if (response) {
        CHECK(h.status >= 100 && h.status <= 999);
        check_view(h.reason, p, r);
        return 0;
    }
    check_view(h.method, p, r);
    check_view(h.target, p, r);
    CHECK(h.method.n > 0 && h.target.n > 0);
    /* The path rules run before any file is looked up; the directory does not exist. */
    xbuf_t out = {0};
    char why[96];
    int st = http_serve_file("/nonexistent/midge-fuzz", h.target, false, &out, why, sizeof(why));
    CHECK(st == 400 || st == 404 || st == 414);
    CHECK(xbuf_size(&out) > 12 && memcmp(xbuf_data(&out), "HTTP/1.1 4", 10) == 0);
    xbuf_free(&out);
    return 0;
}
