/* xbuf.h - a growable byte buffer read from the front: the memory between transport
 * layers (TLS records, WebSocket frames, HTTP heads) on their way to or from a socket.
 */
#ifndef MIDGE_XBUF_H
#define MIDGE_XBUF_H

#include <stddef.h>
#include <stdint.h>

typedef struct xbuf {
    uint8_t *p;
    size_t off; /* bytes before off have been consumed */
    size_t len; /* bytes in use, consumed ones included: the data is p[off..len) */
    size_t cap;
} xbuf_t;

/* The bytes not yet consumed. */
/* (A buffer that never held anything has p NULL: no arithmetic on it.) */
static inline const uint8_t *xbuf_data(const xbuf_t *b) { return b->p ? b->p + b->off : b->p; }
static inline size_t xbuf_size(const xbuf_t *b) { return b->len - b->off; }

/* Append n bytes; 0, or -1 when out of memory (nothing appended). */
int xbuf_append(xbuf_t *b, const void *p, size_t n);
/* Room for at least n more bytes at b->p + b->len (grow, compacting first); NULL when out
 * of memory. Fill it, then xbuf_added(b, used). */
uint8_t *xbuf_reserve(xbuf_t *b, size_t n);
static inline void xbuf_added(xbuf_t *b, size_t n) { b->len += n; }
/* Drop n bytes from the front (n <= xbuf_size). */
void xbuf_consume(xbuf_t *b, size_t n);
void xbuf_free(xbuf_t *b);

#endif
