/* http_serve.c - static files and error answers for plain HTTP requests (see http_serve.h).
 *
 * Path safety does not rely on string rules alone: the decoded path is screened for "..",
 * encoded separators, backslashes and NULs (so a traversal attempt is refused loudly, 400),
 * and then the real path of the file, symlinks resolved, must still lie inside the real
 * path of http_dir, so a symlink placed in the directory cannot lead out of it.
 */
#include "http_serve.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

const char *http_reason(int status)
{
    switch (status) {
    case 101:
        return "Switching Protocols";
    case 200:
        return "OK";
    case 301:
        return "Moved Permanently";
    case 400:
        return "Bad Request";
    case 403:
        return "Forbidden";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 413:
        return "Content Too Large";
    case 414:
        return "URI Too Long";
    case 426:
        return "Upgrade Required";
    case 431:
        return "Request Header Fields Too Large";
    case 500:
        return "Internal Server Error";
    case 505:
        return "HTTP Version Not Supported";
    default:
        return "Unknown";
    }
}

static const struct {
    const char *ext;
    const char *type;
} content_types[] = {
    {"html", "text/html; charset=utf-8"},
    {"htm", "text/html; charset=utf-8"},
    {"js", "text/javascript; charset=utf-8"},
    {"mjs", "text/javascript; charset=utf-8"},
    {"css", "text/css; charset=utf-8"},
    {"json", "application/json"},
    {"map", "application/json"},
    {"svg", "image/svg+xml"},
    {"png", "image/png"},
    {"ico", "image/x-icon"},
    {"txt", "text/plain; charset=utf-8"},
    {"wasm", "application/wasm"},
    {"woff2", "font/woff2"},
};

const char *http_content_type(const char *name)
{
    const char *slash = strrchr(name, '/');
    const char *dot = strrchr(slash ? slash : name, '.');
    if (dot)
        for (size_t i = 0; i < sizeof(content_types) / sizeof(content_types[0]); i++)
            if (strcasecmp(dot + 1, content_types[i].ext) == 0)
                return content_types[i].type;
    return "application/octet-stream";
}

static int append_str(xbuf_t *out, const char *s)
{
    return xbuf_append(out, s, strlen(s));
}

/* Status line and the headers every answer has; the caller adds its own and the CRLF. */
static int append_head(xbuf_t *out, int status, const char *type, size_t length)
{
    char line[256];
    int k = snprintf(line, sizeof(line),
                     "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
                     "X-Content-Type-Options: nosniff\r\nConnection: close\r\n",
                     status, http_reason(status), type, length);
    return xbuf_append(out, line, (size_t)k);
}

int http_serve_error(xbuf_t *out, int status, const char *extra, const char *body, bool head_only)
{
    size_t mark = out->len;
    size_t n = strlen(body);
    if (append_head(out, status, "text/plain; charset=utf-8", n + 1) < 0 ||
        (extra && append_str(out, extra) < 0) || append_str(out, "\r\n") < 0 ||
        (!head_only && (xbuf_append(out, body, n) < 0 || append_str(out, "\n") < 0))) {
        out->len = mark;
        return -1;
    }
    return 0;
}

static int hex_value(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

static int refuse(char *why, size_t whylen, int status, const char *reason)
{
    if (why)
        snprintf(why, whylen, "%s", reason);
    return status;
}

/* The target's path (query dropped), percent-decoded once into out (NUL-terminated) and
 * screened. Returns 0, or the status to refuse it with. */
static int decode_path(http_view_t target, char *out, size_t cap, char *why, size_t whylen)
{
    if (target.n == 0 || target.p[0] != '/')
        return refuse(why, whylen, 400, "request target is not an absolute path");
    size_t k = 0;
    for (size_t i = 0; i < target.n && target.p[i] != '?' && target.p[i] != '#'; i++) {
        char c = target.p[i];
        if (c == '%') {
            int hi = i + 2 < target.n ? hex_value(target.p[i + 1]) : -1;
            int lo = i + 2 < target.n ? hex_value(target.p[i + 2]) : -1;
            if (hi < 0 || lo < 0)
                return refuse(why, whylen, 400, "bad percent-encoding in path");
            c = (char)(hi * 16 + lo);
            i += 2;
            if (c == '\0')
                return refuse(why, whylen, 400, "NUL in path");
            if (c == '/')
                return refuse(why, whylen, 400, "encoded '/' in path");
        }
        if (c == '\\')
            return refuse(why, whylen, 400, "backslash in path");
        if (k + 1 >= cap)
            return refuse(why, whylen, 414, "path too long");
        out[k++] = c;
    }
    out[k] = '\0';
    /* ".." as a whole segment, whether it came encoded or not. */
    for (const char *seg = out; seg; seg = strchr(seg, '/')) {
        seg++;
        if (seg[0] == '.' && seg[1] == '.' && (seg[2] == '/' || seg[2] == '\0'))
            return refuse(why, whylen, 400, "'..' in path");
    }
    return 0;
}

/* realpath of path, and whether it lies inside root (itself a real path). */
static bool resolve_inside(const char *root, const char *path, char *real)
{
    if (!realpath(path, real))
        return false;
    size_t n = strlen(root);
    if (strcmp(root, "/") == 0)
        return true;
    return strncmp(real, root, n) == 0 && (real[n] == '/' || real[n] == '\0');
}

static int read_file(const char *path, const char *type, bool head_only, xbuf_t *out, int *status,
                     char *why, size_t whylen)
{
    /* path is a real path: a symlink found here now was put there since it was resolved. */
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NOFOLLOW);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
        *status = refuse(why, whylen, 404, "not a readable regular file");
        goto done;
    }
    if ((unsigned long long)st.st_size > HTTP_SERVE_MAX_FILE) {
        *status = refuse(why, whylen, 500, "file too large to serve");
        goto done;
    }
    size_t size = (size_t)st.st_size, mark = out->len;
    if (append_head(out, 200, type, size) < 0 || append_str(out, "\r\n") < 0)
        goto oom;
    if (!head_only && size) {
        uint8_t *dst = xbuf_reserve(out, size);
        if (!dst)
            goto oom;
        size_t got = 0;
        while (got < size) {
            ssize_t r = read(fd, dst + got, size - got);
            if (r < 0 && errno == EINTR)
                continue;
            if (r <= 0)
                break;
            got += (size_t)r;
        }
        if (got != size) { /* shrank or failed under us: answer 500, not a short body */
            out->len = mark;
            *status = refuse(why, whylen, 500, "file changed or could not be read");
            goto done;
        }
        xbuf_added(out, size);
    }
    *status = 200;
done:
    if (fd >= 0)
        close(fd);
    return 0;
oom:
    out->len = mark;
    close(fd);
    return -1;
}

int http_serve_file(const char *dir, http_view_t target, bool head_only, xbuf_t *out, char *why,
                    size_t whylen)
{
    if (why && whylen)
        why[0] = '\0';
    char path[HTTP_SERVE_MAX_PATH + 1];
    char root[PATH_MAX], full[PATH_MAX + HTTP_SERVE_MAX_PATH + 16], real[PATH_MAX];
    int status = dir ? decode_path(target, path, sizeof(path), why, whylen)
                     : refuse(why, whylen, 404, "no http_dir configured");
    if (status)
        goto answer;
    if (!realpath(dir, root)) {
        status = refuse(why, whylen, 404, "http_dir does not exist");
        goto answer;
    }
    snprintf(full, sizeof(full), "%s%s", root, path);
    if (!resolve_inside(root, full, real)) {
        status = refuse(why, whylen, 404, "no such file inside http_dir");
        goto answer;
    }
    struct stat st;
    bool index = stat(real, &st) == 0 && S_ISDIR(st.st_mode);
    if (index) {
        size_t n = strlen(path);
        if (path[n - 1] != '/') {
            /* The Location is the target as sent (up to the query), plus '/'. */
            size_t raw = 0;
            while (raw < target.n && target.p[raw] != '?' && target.p[raw] != '#')
                raw++;
            char loc[HTTP_SERVE_MAX_PATH * 3 + 32];
            snprintf(loc, sizeof(loc), "Location: %.*s/\r\n", (int)raw, target.p);
            return http_serve_error(out, 301, loc, "moved", head_only) < 0 ? -1 : 301;
        }
        snprintf(full, sizeof(full), "%s/index.html", real);
        if (!resolve_inside(root, full, real)) {
            status = refuse(why, whylen, 404, "directory without index.html");
            goto answer;
        }
    }
    /* The type follows the name asked for, as a symlink's target may be named otherwise. */
    const char *type = http_content_type(index ? "index.html" : path);
    if (read_file(real, type, head_only, out, &status, why, whylen) < 0)
        return -1;
    if (status == 200)
        return 200;
answer:
    if (http_serve_error(out, status, NULL, why && why[0] ? why : http_reason(status), head_only) <
        0)
        return -1;
    return status;
}
