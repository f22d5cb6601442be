/* outq.c - segment queue with writev (see outq.h). */
#include "outq.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>

#define OUTQ_FIRST_BLOCK 256
#define OUTQ_BLOCK 16384
#define OUTQ_IOV 128

struct outq_block {
    outq_block_t *next;
    size_t cap, used, sent;
    uint8_t data[];
};

void outq_init(outq_t *q, outq_release_fn release)
{
    memset(q, 0, sizeof(*q));
    q->release = release;
}

void outq_cleanup(outq_t *q)
{
    for (size_t i = 0; i < q->count; i++) {
        outq_seg_t *s = &q->segs[(q->head + i) % q->cap];
        if (s->ref && q->release)
            q->release(s->ref);
    }
    free(q->segs);
    outq_block_t *b = q->first;
    while (b) {
        outq_block_t *next = b->next;
        free(b);
        b = next;
    }
    memset(q, 0, sizeof(*q));
}

static int push_seg(outq_t *q, outq_seg_t seg)
{
    if (q->count == q->cap) {
        size_t ncap = q->cap ? q->cap * 2 : 16;
        outq_seg_t *n = malloc(ncap * sizeof(*n));
        if (!n)
            return -1;
        for (size_t i = 0; i < q->count; i++)
            n[i] = q->segs[(q->head + i) % q->cap];
        free(q->segs);
        q->segs = n;
        q->head = 0;
        q->cap = ncap;
    }
    q->segs[(q->head + q->count) % q->cap] = seg;
    q->count++;
    q->bytes += seg.n;
    return 0;
}

uint8_t *outq_reserve(outq_t *q, size_t n)
{
    outq_block_t *b = q->last;
    if (b && b->cap - b->used >= n)
        return b->data + b->used;
    /* Blocks start small and double up to OUTQ_BLOCK: an idle connection that has only
     * ever had a CONNACK and a few acknowledgements holds a few hundred bytes. */
    size_t cap = b ? b->cap * 2 : OUTQ_FIRST_BLOCK;
    if (cap > OUTQ_BLOCK)
        cap = OUTQ_BLOCK;
    if (cap < n)
        cap = n;
    outq_block_t *nb = malloc(sizeof(*nb) + cap);
    if (!nb)
        return NULL;
    nb->next = NULL;
    nb->cap = cap;
    nb->used = nb->sent = 0;
    if (b)
        b->next = nb;
    else
        q->first = nb;
    q->last = nb;
    return nb->data;
}

int outq_commit(outq_t *q, size_t used)
{
    outq_block_t *b = q->last;
    if (used == 0)
        return 0;
    uint8_t *p = b->data + b->used;
    b->used += used;
    /* Consecutive owned bytes in one block become one segment: fewer iovecs. */
    if (q->count) {
        outq_seg_t *tail = &q->segs[(q->head + q->count - 1) % q->cap];
        if (tail->owned && tail->p + tail->n == p) {
            tail->n += used;
            q->bytes += used;
            return 0;
        }
    }
    outq_seg_t seg = {.p = p, .n = used, .ref = NULL, .owned = 1};
    if (push_seg(q, seg) < 0) {
        b->used -= used;
        return -1;
    }
    return 0;
}

int outq_push_ref(outq_t *q, const uint8_t *p, size_t n, void *ref)
{
    outq_seg_t seg = {.p = p, .n = n, .ref = ref, .owned = 0};
    return push_seg(q, seg);
}

/* Owned bytes are consumed in the order they were reserved: account them to the oldest
 * block, and free blocks (or reset the last one) once everything in them has been sent. */
static void consume_owned(outq_t *q, size_t n)
{
    outq_block_t *b = q->first;
    b->sent += n;
    while (b && b->sent == b->used) {
        if (b == q->last) {
            b->used = b->sent = 0;
            break;
        }
        q->first = b->next;
        free(b);
        b = q->first;
    }
}

void outq_consume(outq_t *q, size_t n)
{
    q->bytes -= n;
    while (n) {
        outq_seg_t *s = &q->segs[q->head];
        size_t take = n < s->n ? n : s->n;
        if (s->owned)
            consume_owned(q, take);
        s->p += take;
        s->n -= take;
        n -= take;
        if (s->n == 0) {
            if (s->ref && q->release)
                q->release(s->ref);
            q->head = (q->head + 1) % q->cap;
            q->count--;
        }
    }
    /* Zero-length segments (an empty payload) are done without writing. */
    while (q->count && q->segs[q->head].n == 0) {
        outq_seg_t *s = &q->segs[q->head];
        if (s->ref && q->release)
            q->release(s->ref);
        q->head = (q->head + 1) % q->cap;
        q->count--;
    }
}

int outq_peek(const outq_t *q, struct iovec *iov, int max, size_t *bytes)
{
    int n = 0;
    size_t asked = 0;
    for (size_t i = 0; i < q->count && n < max; i++, n++) {
        const outq_seg_t *s = &q->segs[(q->head + i) % q->cap];
        iov[n].iov_base = (void *)s->p;
        iov[n].iov_len = s->n;
        asked += s->n;
    }
    *bytes = asked;
    return n;
}

long outq_flush(outq_t *q, int fd)
{
    long total = 0;
    while (q->count) {
        struct iovec iov[OUTQ_IOV];
        size_t asked;
        int n = outq_peek(q, iov, OUTQ_IOV, &asked);
        ssize_t w = writev(fd, iov, n);
        if (w < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                return total;
            if (errno == EINTR)
                continue;
            return -1;
        }
        total += w;
        outq_consume(q, (size_t)w);
        if ((size_t)w < asked)
            return total; /* the socket is full: wait for writability */
    }
    return total;
}
