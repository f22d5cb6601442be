/* test_http.c - the strict HTTP/1.1 head parser (src/net/http.c): what it accepts, what it
 * refuses with which status and message, limits, incremental input, list helpers.
 */
/* cmocka.h needs the four headers before it. */
/* clang-format off */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
/* clang-format on */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "net/http.h"

static long parse(const char *s, http_head_t *h, http_error_t *e)
{
    return http_parse_request((const uint8_t *)s, strlen(s), h, e);
}

static bool view_is(http_view_t v, const char *s)
{
    return v.n == strlen(s) && memcmp(v.p, s, v.n) == 0;
}

static void test_valid_request(void **state)
{
    (void)state;
    const char *req = "GET /mqtt?x=1 HTTP/1.1\r\n"
                      "Host: example.com:9001\r\n"
                      "Upgrade:websocket\r\n"
                      "Connection: keep-alive, Upgrade\r\n"
                      "X-Empty:\r\n"
                      "X-Spaces: \t a b \t \r\n"
                      "\r\n"
                      "trailing bytes";
    http_head_t h;
    http_error_t e;
    long n = parse(req, &h, &e);
    assert_int_equal(n, (long)(strstr(req, "trailing") - req));
    assert_true(view_is(h.method, "GET"));
    assert_true(view_is(h.target, "/mqtt?x=1"));
    assert_int_equal(h.minor, 1);
    assert_int_equal(h.nheaders, 5);
    assert_true(view_is(*http_header_get(&h, "host"), "example.com:9001"));
    assert_true(view_is(*http_header_get(&h, "UPGRADE"), "websocket"));
    assert_true(view_is(*http_header_get(&h, "X-Empty"), ""));
    assert_true(view_is(*http_header_get(&h, "x-spaces"), "a b"));
    assert_null(http_header_get(&h, "Origin"));
    assert_true(http_header_has_token(&h, "Connection", "upgrade"));
    assert_true(http_header_has_token(&h, "Connection", "KEEP-ALIVE"));
    assert_false(http_header_has_token(&h, "Connection", "close"));
    assert_int_equal(http_header_count(&h, "Host"), 1);
}

static void test_http10_and_obs_text(void **state)
{
    (void)state;
    http_head_t h;
    http_error_t e;
    assert_true(parse("HEAD / HTTP/1.0\r\nX-Latin: caf\xe9\r\n\r\n", &h, &e) > 0);
    assert_int_equal(h.minor, 0);
    assert_true(view_is(h.method, "HEAD"));
}

static void test_incomplete_needs_more(void **state)
{
    (void)state;
    const char *req = "GET / HTTP/1.1\r\nHost: a\r\n\r\n";
    http_head_t h;
    http_error_t e;
    size_t n = strlen(req);
    for (size_t i = 0; i < n; i++)
        assert_int_equal(http_parse_request((const uint8_t *)req, i, &h, &e), 0);
    assert_int_equal(http_parse_request((const uint8_t *)req, n, &h, &e), (long)n);
}

static const struct refusal {
    const char *req;
    int status;
    const char *msg; /* a part of the message */
} refusals[] = {
    {"\r\nGET / HTTP/1.1\r\n\r\n", 400, "line 1: empty line before the request line"},
    {"GET / HTTP/1.1\n\n", 400, "line 1: line ends with a bare LF"},
    {"GET / HTTP/1.1\r\nHost: a\n\r\n", 400, "line 2: line ends with a bare LF"},
    {"GET / HTTP/1.1\r\nHost: a\rb\r\n\r\n", 400, "line 2: control character 0x0d"},
    {"GET / HTTP/1.1\r\nHost: a\x01\r\n\r\n", 400,
     "line 2: control character 0x01 in the value of Host"},
    {"GET / HTTP/1.1\r\nX-A: 1\r\n  folded\r\n\r\n", 400, "line 3: line folding (obs-fold)"},
    {"GET / HTTP/1.1\r\nHost : a\r\n\r\n", 400, "line 2: whitespace between header name and ':'"},
    {"GET / HTTP/1.1\r\nHo(st: a\r\n\r\n", 400, "line 2: byte 0x28 in header name at column 3"},
    {"GET / HTTP/1.1\r\n: a\r\n\r\n", 400, "line 2: empty header name"},
    {"GET / HTTP/1.1\r\nNoColon\r\n\r\n", 400, "line 2: header field without ':'"},
    {"G(T / HTTP/1.1\r\n\r\n", 400, "line 1: expected one space after the method"},
    {" GET / HTTP/1.1\r\n\r\n", 400, "line 1: method is not a token"},
    {"GET  / HTTP/1.1\r\n\r\n", 400, "line 1: empty request target"},
    {"GET /a\x7f HTTP/1.1\r\n\r\n", 400,
     "line 1: control character or non-ASCII byte in the request target at column 7"},
    {"GET /\xc3\xa9 HTTP/1.1\r\n\r\n", 400, "non-ASCII byte in the request target"},
    {"GET /\r\n\r\n", 400, "line 1: no HTTP version"},
    {"GET / HTTP/1.1 \r\n\r\n", 400, "line 1: malformed HTTP version"},
    {"GET / http/1.1\r\n\r\n", 400, "line 1: malformed HTTP version"},
    {"GET / HTTP/2.0\r\n\r\n", 505, "line 1: HTTP version HTTP/2.0 not supported"},
    {"GET / HTTP/1.2\r\n\r\n", 505, "not supported"},
};

static void test_refusals(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(refusals) / sizeof(refusals[0]); i++) {
        http_head_t h;
        http_error_t e;
        long r = parse(refusals[i].req, &h, &e);
        if (r != -1 || e.status != refusals[i].status || !strstr(e.msg, refusals[i].msg))
            fail_msg("case %zu: got %ld status %d \"%s\", want %d \"%s\"", i, r, e.status, e.msg,
                     refusals[i].status, refusals[i].msg);
    }
}

/* A bad line is reported as soon as it is complete, not when the head ends. */
static void test_error_before_head_end(void **state)
{
    (void)state;
    http_head_t h;
    http_error_t e;
    assert_int_equal(parse("GET / HTTP/1.1\r\nBad Header: x\r\n", &h, &e), -1);
    assert_int_equal(e.status, 400);
}

static void test_head_size_limit(void **state)
{
    (void)state;
    http_head_t h;
    http_error_t e;
    /* exactly HTTP_MAX_HEAD bytes: accepted */
    char *buf = malloc(HTTP_MAX_HEAD + 100);
    const char *start = "GET / HTTP/1.1\r\nX-Pad: ";
    size_t k = strlen(start);
    memcpy(buf, start, k);
    size_t pad = HTTP_MAX_HEAD - k - 4;
    memset(buf + k, 'a', pad);
    memcpy(buf + k + pad, "\r\n\r\n", 4);
    assert_int_equal(http_parse_request((uint8_t *)buf, HTTP_MAX_HEAD, &h, &e), HTTP_MAX_HEAD);
    /* one byte more: 431 */
    memset(buf + k, 'a', pad + 1);
    memcpy(buf + k + pad + 1, "\r\n\r\n", 4);
    assert_int_equal(http_parse_request((uint8_t *)buf, HTTP_MAX_HEAD + 1, &h, &e), 0 - 1);
    assert_int_equal(e.status, 431);
    assert_non_null(strstr(e.msg, "head larger than 8192 bytes"));
    /* a long head that has not ended yet: need more until the limit */
    assert_int_equal(http_parse_request((uint8_t *)buf, HTTP_MAX_HEAD - 1, &h, &e), 0);
    free(buf);
}

static void test_header_count_limit(void **state)
{
    (void)state;
    char buf[4096];
    size_t k = (size_t)snprintf(buf, sizeof(buf), "GET / HTTP/1.1\r\n");
    for (int i = 0; i < HTTP_MAX_HEADERS; i++)
        k += (size_t)snprintf(buf + k, sizeof(buf) - k, "H%d: v\r\n", i);
    snprintf(buf + k, sizeof(buf) - k, "\r\n");
    http_head_t h;
    http_error_t e;
    assert_true(parse(buf, &h, &e) > 0);
    assert_int_equal(h.nheaders, HTTP_MAX_HEADERS);
    snprintf(buf + k, sizeof(buf) - k, "One-More: v\r\n\r\n");
    assert_int_equal(parse(buf, &h, &e), -1);
    assert_int_equal(e.status, 431);
    assert_string_equal(e.msg, "line 66: more than 64 header fields");
}

static void test_response(void **state)
{
    (void)state;
    const char *resp = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n";
    http_head_t h;
    http_error_t e;
    assert_int_equal(http_parse_response((const uint8_t *)resp, strlen(resp), &h, &e),
                     (long)strlen(resp));
    assert_int_equal(h.status, 101);
    assert_true(view_is(h.reason, "Switching Protocols"));
    const char *noreason = "HTTP/1.1 404\r\n\r\n";
    assert_true(http_parse_response((const uint8_t *)noreason, strlen(noreason), &h, &e) > 0);
    assert_int_equal(h.status, 404);
    const char *bad = "HTTP/1.1 1x1 Oops\r\n\r\n";
    assert_int_equal(http_parse_response((const uint8_t *)bad, strlen(bad), &h, &e), -1);
    assert_string_equal(e.msg, "line 1: status code is not three digits at column 11");
    const char *v2 = "HTTP/2 200 OK\r\n\r\n";
    assert_int_equal(http_parse_response((const uint8_t *)v2, strlen(v2), &h, &e), -1);
}

static void test_list_next(void **state)
{
    (void)state;
    const char *s = " , mqtt ,,\tmqttv3.1 , ";
    http_view_t rest = {s, strlen(s)}, elem;
    assert_true(http_list_next(&rest, &elem));
    assert_true(view_is(elem, "mqtt"));
    assert_true(http_list_next(&rest, &elem));
    assert_true(view_is(elem, "mqttv3.1"));
    assert_false(http_list_next(&rest, &elem));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid_request),
        cmocka_unit_test(test_http10_and_obs_text),
        cmocka_unit_test(test_incomplete_needs_more),
        cmocka_unit_test(test_refusals),
        cmocka_unit_test(test_error_before_head_end),
        cmocka_unit_test(test_head_size_limit),
        cmocka_unit_test(test_header_count_limit),
        cmocka_unit_test(test_response),
        cmocka_unit_test(test_list_next),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
