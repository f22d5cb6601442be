/* http.h - a strict HTTP/1.1 message head parser (RFC 9112): the request heads that open a
 * WebSocket listener's connections (upgrade or static file) and the response head that
 * answers a client's upgrade. Pure functions over bytes: no I/O, no allocation; the parsed
 * head is a set of views into the caller's buffer.
 */
#ifndef MIDGE_HTTP_H
#define MIDGE_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define HTTP_MAX_HEAD 8192 /* bytes, request/status line and final empty line included */
#define HTTP_MAX_HEADERS 64

/* A view into the parsed buffer (not NUL-terminated). */
typedef struct http_view {
    const char *p;
    size_t n;
} http_view_t;

typedef struct http_header {
    http_view_t name;  /* a token, as sent (compare case-insensitively) */
    http_view_t value; /* leading and trailing spaces/tabs removed */
} http_header_t;

typedef struct http_head {
    /* Request line: METHOD SP TARGET SP HTTP/1.x */
    http_view_t method;
    http_view_t target;
    /* Status line: HTTP/1.x SP STATUS SP REASON */
    int status;
    http_view_t reason;
    int minor; /* HTTP/1.minor: 0 or 1 */
    http_header_t header[HTTP_MAX_HEADERS];
    int nheaders;
} http_head_t;

typedef struct http_error {
    int status;    /* the answer a server owes: 400, 431 (head too large), 505 (version) */
    char msg[128]; /* what was wrong and where: "line 3: space before ':' in header name" */
} http_error_t;

/* Parse a request head from the start of p[0..n). Returns the head's length (through the
 * empty line) when it is complete and valid, 0 when more bytes are needed, -1 when it is
 * invalid (e filled). Rules: CRLF line ends only, no obs-fold, token method and header
 * names, no whitespace before ':', no control characters in values, request target of
 * visible ASCII, version HTTP/1.0 or HTTP/1.1, at most HTTP_MAX_HEAD bytes and
 * HTTP_MAX_HEADERS headers. Errors are reported as soon as a complete line is bad. */
long http_parse_request(const uint8_t *p, size_t n, http_head_t *h, http_error_t *e);
/* The same for a response head (status line "HTTP/1.1 101 Switching Protocols"). */
long http_parse_response(const uint8_t *p, size_t n, http_head_t *h, http_error_t *e);

/* The value of the first header of that name (case-insensitive), NULL if absent. */
const http_view_t *http_header_get(const http_head_t *h, const char *name);
/* How many headers carry that name. */
int http_header_count(const http_head_t *h, const char *name);
/* True when v equals s, ASCII case-insensitively. */
bool http_view_eq_nocase(http_view_t v, const char *s);
/* True when a comma-separated list (Connection, Upgrade, Sec-WebSocket-Protocol) holds the
 * token, case-insensitively; empty elements and spaces around them are allowed (RFC 9110
 * 5.6.1). Looks through every header of that name. */
bool http_header_has_token(const http_head_t *h, const char *name, const char *token);
/* Iterate a comma-separated list: the next non-empty element (spaces around it removed) is
 * put in *elem and *rest advances past it; false when no element is left. */
bool http_list_next(http_view_t *rest, http_view_t *elem);

#endif
