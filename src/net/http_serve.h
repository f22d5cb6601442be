/* http_serve.h - the answers a WebSocket listener gives to plain HTTP requests: static files
 * from http_dir (the dashboard) and short error responses. Every answer carries
 * Connection: close; the caller closes the connection once it is written.
 */
#ifndef MIDGE_HTTP_SERVE_H
#define MIDGE_HTTP_SERVE_H

#include <stdbool.h>

#include "http.h"
#include "xbuf.h"

#define HTTP_SERVE_MAX_PATH 1024        /* decoded path bytes; longer: 414 */
#define HTTP_SERVE_MAX_FILE (64u << 20) /* larger files are refused with 500 */

/* Append a complete response for a GET (head_only false) or HEAD of target, served from
 * dir (NULL: nothing is served, 404). The path is percent-decoded once; "..", an encoded
 * '/', a backslash or a NUL in it is refused (400), and the resolved file must lie inside
 * realpath(dir) (a symlink that leads out answers 404). A directory serves its index.html
 * (without a trailing '/' it is redirected, 301, as browsers resolve relative links from
 * the '/'). Returns the status sent, or -1 when out of memory (nothing appended).
 * why, when not NULL, receives a short reason for a refusal. */
int http_serve_file(const char *dir, http_view_t target, bool head_only, xbuf_t *out, char *why,
                    size_t whylen);

/* Append an error response: status line, extra header lines (each ending in CRLF, or
 * NULL), a text/plain body (omitted for HEAD), Connection: close. 0, or -1 when out of
 * memory. */
int http_serve_error(xbuf_t *out, int status, const char *extra, const char *body, bool head_only);

/* Standard reason phrase of a status code ("Not Found"); "Unknown" when not known here. */
const char *http_reason(int status);

/* Content-Type of a file name by its extension; application/octet-stream by default. */
const char *http_content_type(const char *name);

#endif
