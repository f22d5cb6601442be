/* text.h - a bounded text builder for the device module (src/device/): appends strings and
 * integers into a caller's buffer without snprintf, so the module stays freestanding.
 *
 * Writes never pass cap - 1 bytes; an overflow cuts the text and is remembered (ok = false),
 * so the caller checks once at the end instead of after every append. Internal to src/device/.
 */
#ifndef MIDGE_DEVICE_TEXT_H
#define MIDGE_DEVICE_TEXT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

typedef struct text {
    char *buf;
    size_t cap; /* bytes of buf, the terminating NUL included */
    size_t len;
    bool ok; /* false once something did not fit */
} text_t;

static inline void text_init(text_t *t, char *buf, size_t cap)
{
    t->buf = buf;
    t->cap = cap;
    t->len = 0;
    t->ok = cap > 0;
    if (cap)
        buf[0] = 0;
}

/* Append s[0..n); what does not fit is cut off (the text keeps its beginning). */
static inline void text_put(text_t *t, const char *s, size_t n)
{
    if (!t->cap)
        return;
    size_t room = t->cap - 1 - t->len;
    if (n > room) {
        n = room;
        t->ok = false;
    }
    memcpy(t->buf + t->len, s, n);
    t->len += n;
    t->buf[t->len] = 0;
}

static inline void text_puts(text_t *t, const char *s)
{
    text_put(t, s, strlen(s));
}

static inline void text_putc(text_t *t, char ch)
{
    text_put(t, &ch, 1);
}

/* v in decimal, at least `width` digits (zero-padded). */
static inline void text_uint(text_t *t, uint64_t v, int width)
{
    char d[24];
    int n = 0;
    do {
        d[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v && n < (int)sizeof d);
    while (n < width && n < (int)sizeof d)
        d[n++] = '0';
    while (n)
        text_putc(t, d[--n]);
}

static inline void text_int(text_t *t, int64_t v)
{
    if (v < 0) {
        text_putc(t, '-');
        text_uint(t, (uint64_t)0 - (uint64_t)v, 1);
    } else {
        text_uint(t, (uint64_t)v, 1);
    }
}

/* A value in tenths as a decimal with one digit after the point: -5 -> "-0.5". */
static inline void text_tenths(text_t *t, int32_t tenths)
{
    uint32_t a = tenths < 0 ? (uint32_t)0 - (uint32_t)tenths : (uint32_t)tenths;
    if (tenths < 0)
        text_putc(t, '-');
    text_uint(t, a / 10, 1);
    text_putc(t, '.');
    text_putc(t, (char)('0' + a % 10));
}

/* s[0..n) as the inside of a JSON string: quote, backslash and control characters escaped
 * (RFC 8259, section 7); other bytes, UTF-8 included, go through as they are. */
static inline void text_json_str(text_t *t, const char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (ch == '"' || ch == '\\') {
            text_putc(t, '\\');
            text_putc(t, (char)ch);
        } else if (ch < 0x20) {
            char e[6] = {'\\', 'u', '0', '0', hex[ch >> 4], hex[ch & 15]};
            text_put(t, e, sizeof e);
        } else {
            text_putc(t, (char)ch);
        }
    }
}

#endif
