/* http.c - the strict HTTP/1.1 head parser (see http.h). One pass over the lines each time
 * it is called: the caller hands it everything received so far, and a head is at most
 * HTTP_MAX_HEAD bytes, so re-parsing a growing head stays cheap and the parser keeps no
 * state between calls.
 */
#include "http.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static int fail(http_error_t *e, int status, int line, const char *fmt, ...)
{
    e->status = status;
    int k = line ? snprintf(e->msg, sizeof(e->msg), "line %d: ", line) : 0;
    if (k < 0 || (size_t)k >= sizeof(e->msg))
        k = 0;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->msg + k, sizeof(e->msg) - (size_t)k, fmt, ap);
    va_end(ap);
    return -1;
}

/* RFC 9110 5.6.2: tchar = "!" / "#" / "$" / "%" / "&" / "'" / "*" / "+" / "-" / "." /
 * "^" / "_" / "`" / "|" / "~" / DIGIT / ALPHA */
static bool is_tchar(unsigned char c)
{
    if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'))
        return true;
    return c != 0 && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

static bool is_vchar(unsigned char c)
{
    return c > 0x20 && c < 0x7f;
}

static char lower(char c)
{
    return c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
}

/* Length of the token at the start of s[0..n). */
static size_t token_len(const char *s, size_t n)
{
    size_t i = 0;
    while (i < n && is_tchar((unsigned char)s[i]))
        i++;
    return i;
}

/* "HTTP/1.0" or "HTTP/1.1" -> minor; -1 malformed; -2 well formed but another version. */
static int parse_version(const char *s, size_t n)
{
    if (n != 8 || memcmp(s, "HTTP/", 5) != 0 || s[6] != '.' || s[5] < '0' || s[5] > '9' ||
        s[7] < '0' || s[7] > '9')
        return -1;
    if (s[5] != '1' || (s[7] != '0' && s[7] != '1'))
        return -2;
    return s[7] - '0';
}

static int version_error(http_error_t *e, int v, const char *s, size_t n)
{
    if (v == -2)
        return fail(e, 505, 1, "HTTP version %.*s not supported (HTTP/1.0 or HTTP/1.1)", (int)n, s);
    return fail(e, 400, 1, "malformed HTTP version \"%.*s\"", (int)(n > 16 ? 16 : n), s);
}

/* request-line = method SP request-target SP HTTP-version (RFC 9112 3) */
static int parse_request_line(const char *s, size_t n, http_head_t *h, http_error_t *e)
{
    if (n == 0)
        return fail(e, 400, 1, "empty line before the request line");
    size_t m = token_len(s, n);
    if (m == 0)
        return fail(e, 400, 1, "method is not a token (byte 0x%02x at column 1)",
                    (unsigned char)s[0]);
    if (m == n || s[m] != ' ')
        return fail(e, 400, 1, "expected one space after the method, found %s",
                    m == n ? "end of line" : "another character");
    h->method = (http_view_t){s, m};
    size_t t = m + 1, i = t;
    while (i < n && is_vchar((unsigned char)s[i]))
        i++;
    if (i == t)
        return fail(e, 400, 1, "empty request target (or more than one space) at column %zu",
                    t + 1);
    if (i == n || s[i] != ' ')
        return fail(e, 400, 1, "%s in the request target at column %zu",
                    i == n ? "no HTTP version" : "control character or non-ASCII byte", i + 1);
    h->target = (http_view_t){s + t, i - t};
    const char *v = s + i + 1;
    size_t vn = n - i - 1;
    int minor = parse_version(v, vn);
    if (minor < 0)
        return version_error(e, minor, v, vn);
    h->minor = minor;
    return 0;
}

/* status-line = HTTP-version SP status-code SP [ reason-phrase ] (RFC 9112 4); a missing
 * SP after the code is tolerated, as RFC 9112 asks of clients. */
static int parse_status_line(const char *s, size_t n, http_head_t *h, http_error_t *e)
{
    int minor = parse_version(s, n < 8 ? n : 8);
    if (minor < 0)
        return version_error(e, minor, s, n < 8 ? n : 8);
    h->minor = minor;
    if (n < 12 || s[8] != ' ')
        return fail(e, 400, 1, "status line too short: expected \"HTTP/1.1 NNN reason\"");
    int code = 0;
    for (int i = 9; i < 12; i++) {
        if (s[i] < '0' || s[i] > '9')
            return fail(e, 400, 1, "status code is not three digits at column %d", i + 1);
        code = code * 10 + (s[i] - '0');
    }
    if (code < 100)
        return fail(e, 400, 1, "status code %03d out of range", code);
    h->status = code;
    if (n == 12)
        return 0;
    if (s[12] != ' ')
        return fail(e, 400, 1, "expected a space after the status code");
    for (size_t i = 13; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c != '\t' && c < 0x20)
            return fail(e, 400, 1, "control character 0x%02x in the reason phrase", c);
        if (c == 0x7f)
            return fail(e, 400, 1, "control character 0x7f in the reason phrase");
    }
    h->reason = (http_view_t){s + 13, n - 13};
    return 0;
}

/* field-line = field-name ":" OWS field-value OWS (RFC 9112 5) */
static int parse_header_line(const char *s, size_t n, int line, http_head_t *h, http_error_t *e)
{
    if (s[0] == ' ' || s[0] == '\t')
        return fail(e, 400, line, "line folding (obs-fold) is not accepted");
    size_t m = token_len(s, n);
    if (m == n)
        return fail(e, 400, line, "header field without ':'");
    if (s[m] != ':') {
        unsigned char c = (unsigned char)s[m];
        if (c == ' ' || c == '\t')
            return fail(e, 400, line, "whitespace between header name and ':'");
        return fail(e, 400, line, "byte 0x%02x in header name at column %zu", c, m + 1);
    }
    if (m == 0)
        return fail(e, 400, line, "empty header name");
    if (h->nheaders == HTTP_MAX_HEADERS)
        return fail(e, 431, line, "more than %d header fields", HTTP_MAX_HEADERS);
    size_t b = m + 1, end = n;
    while (b < end && (s[b] == ' ' || s[b] == '\t'))
        b++;
    while (end > b && (s[end - 1] == ' ' || s[end - 1] == '\t'))
        end--;
    for (size_t i = b; i < end; i++) {
        unsigned char c = (unsigned char)s[i];
        /* field-vchar = VCHAR / obs-text; SP and HTAB inside. A CR here is a bare CR. */
        if ((c < 0x20 && c != '\t') || c == 0x7f)
            return fail(e, 400, line, "control character 0x%02x in the value of %.*s", c,
                        (int)(m > 40 ? 40 : m), s);
    }
    h->header[h->nheaders].name = (http_view_t){s, m};
    h->header[h->nheaders].value = (http_view_t){s + b, end - b};
    h->nheaders++;
    return 0;
}

static long parse_head(const uint8_t *p, size_t n, http_head_t *h, http_error_t *e, bool response)
{
    memset(h, 0, sizeof(*h));
    e->status = 0;
    e->msg[0] = '\0';
    size_t lim = n < HTTP_MAX_HEAD ? n : HTTP_MAX_HEAD;
    size_t off = 0;
    for (int line = 1;; line++) {
        const uint8_t *lf = memchr(p + off, '\n', lim - off);
        if (!lf) {
            if (n >= HTTP_MAX_HEAD)
                return fail(e, 431, 0, "head larger than %d bytes", HTTP_MAX_HEAD);
            return 0;
        }
        size_t end = (size_t)(lf - p);
        if (end == off || p[end - 1] != '\r')
            return fail(e, 400, line, "line ends with a bare LF (CRLF required)");
        const char *s = (const char *)p + off;
        size_t len = end - 1 - off;
        int r;
        if (line == 1)
            r = response ? parse_status_line(s, len, h, e) : parse_request_line(s, len, h, e);
        else if (len == 0)
            return (long)(end + 1);
        else
            r = parse_header_line(s, len, line, h, e);
        if (r < 0)
            return -1;
        off = end + 1;
    }
}

long http_parse_request(const uint8_t *p, size_t n, http_head_t *h, http_error_t *e)
{
    return parse_head(p, n, h, e, false);
}

long http_parse_response(const uint8_t *p, size_t n, http_head_t *h, http_error_t *e)
{
    return parse_head(p, n, h, e, true);
}

bool http_view_eq_nocase(http_view_t v, const char *s)
{
    size_t n = strlen(s);
    if (v.n != n)
        return false;
    for (size_t i = 0; i < n; i++)
        if (lower(v.p[i]) != lower(s[i]))
            return false;
    return true;
}

const http_view_t *http_header_get(const http_head_t *h, const char *name)
{
    for (int i = 0; i < h->nheaders; i++)
        if (http_view_eq_nocase(h->header[i].name, name))
            return &h->header[i].value;
    return NULL;
}

int http_header_count(const http_head_t *h, const char *name)
{
    int k = 0;
    for (int i = 0; i < h->nheaders; i++)
        if (http_view_eq_nocase(h->header[i].name, name))
            k++;
    return k;
}

bool http_list_next(http_view_t *rest, http_view_t *elem)
{
    while (rest->n) {
        size_t j = 0;
        while (j < rest->n && rest->p[j] != ',')
            j++;
        size_t b = 0, end = j;
        while (b < end && (rest->p[b] == ' ' || rest->p[b] == '\t'))
            b++;
        while (end > b && (rest->p[end - 1] == ' ' || rest->p[end - 1] == '\t'))
            end--;
        *elem = (http_view_t){rest->p + b, end - b};
        size_t skip = j < rest->n ? j + 1 : j;
        rest->p += skip;
        rest->n -= skip;
        if (elem->n)
            return true;
    }
    return false;
}

static bool list_has_token(http_view_t v, const char *token)
{
    http_view_t elem;
    while (http_list_next(&v, &elem))
        if (http_view_eq_nocase(elem, token))
            return true;
    return false;
}

bool http_header_has_token(const http_head_t *h, const char *name, const char *token)
{
    for (int i = 0; i < h->nheaders; i++)
        if (http_view_eq_nocase(h->header[i].name, name) &&
            list_has_token(h->header[i].value, token))
            return true;
    return false;
}
