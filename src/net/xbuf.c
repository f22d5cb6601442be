/* xbuf.c - growable byte buffer (see xbuf.h). */
#include "xbuf.h"

#include <stdlib.h>
#include <string.h>

uint8_t *xbuf_reserve(xbuf_t *b, size_t n)
{
    if (b->off && b->off == b->len) {
        b->off = b->len = 0;
    }
    if (b->cap - b->len >= n)
        return b->p + b->len;
    if (b->off) { /* compact before growing */
        memmove(b->p, b->p + b->off, b->len - b->off);
        b->len -= b->off;
        b->off = 0;
        if (b->cap - b->len >= n)
            return b->p + b->len;
    }
    size_t cap = b->cap ? b->cap : 256;
    while (cap - b->len < n) {
        if (cap > SIZE_MAX / 2)
            return NULL;
        cap *= 2;
    }
    uint8_t *p = realloc(b->p, cap);
    if (!p)
        return NULL;
    b->p = p;
    b->cap = cap;
    return b->p + b->len;
}

int xbuf_append(xbuf_t *b, const void *p, size_t n)
{
    if (n == 0)
        return 0;
    uint8_t *dst = xbuf_reserve(b, n);
    if (!dst)
        return -1;
    memcpy(dst, p, n);
    b->len += n;
    return 0;
}

void xbuf_consume(xbuf_t *b, size_t n)
{
    b->off += n;
    if (b->off >= b->len) {
        b->off = b->len = 0;
        if (b->cap > 65536) { /* a burst is over: give the memory back */
            free(b->p);
            b->p = NULL;
            b->cap = 0;
        }
    }
}

void xbuf_free(xbuf_t *b)
{
    free(b->p);
    b->p = NULL;
    b->off = b->len = b->cap = 0;
}
