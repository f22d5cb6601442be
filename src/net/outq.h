/* outq.h - a connection's pending output: a queue of byte segments written with writev.
 *
 * Small packets (headers, acknowledgements) are encoded straight into the queue's own
 * blocks, where consecutive ones merge into a single segment. Large shared data (a
 * message's payload) is referenced, not copied: the segment holds a reference that is
 * released once its bytes have gone to the socket. Output is flushed once per loop turn.
 */
#ifndef MIDGE_OUTQ_H
#define MIDGE_OUTQ_H

#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

typedef void (*outq_release_fn)(void *ref);

typedef struct outq_seg {
    const uint8_t *p;
    size_t n;
    void *ref;     /* released when done (external data), or NULL */
    uint8_t owned; /* 1: bytes in the queue's own blocks */
} outq_seg_t;

typedef struct outq_block outq_block_t;

typedef struct outq {
    outq_seg_t *segs; /* ring of cap entries */
    size_t head, count, cap;
    size_t bytes; /* bytes not yet written */
    outq_block_t *first, *last;
    outq_release_fn release;
} outq_t;

void outq_init(outq_t *q, outq_release_fn release);
/* Release every reference and free every block. */
void outq_cleanup(outq_t *q);

/* Room for n bytes in the queue's own memory, to be followed by outq_commit(q, used)
 * with used <= n. NULL when out of memory. */
uint8_t *outq_reserve(outq_t *q, size_t n);
int outq_commit(outq_t *q, size_t used);

/* Queue n bytes at p that stay valid until ref is released (ref may be NULL when a later
 * segment's reference keeps p alive). -1 when out of memory (ref is then not taken). */
int outq_push_ref(outq_t *q, const uint8_t *p, size_t n, void *ref);

/* The first segments as iovecs (at most max; their total in *bytes), and dropping n
 * bytes from the front once they have been sent: for a connection whose bytes go through
 * a transport stack (TLS, WebSocket) instead of straight to the socket. */
int outq_peek(const outq_t *q, struct iovec *iov, int max, size_t *bytes);
void outq_consume(outq_t *q, size_t n);

/* Write as much as the socket takes. Returns the bytes written (0 when it would block),
 * or -1 on a socket error (errno set). */
long outq_flush(outq_t *q, int fd);

#endif
