/* loop.h - a minimal epoll event loop: one per I/O thread.
 *
 * Each registered file descriptor carries a handler pointer that the loop hands back on
 * readiness; the loop never interprets it. Level-triggered, so a handler that reads only
 * part of what is waiting (its fair share) is called again on the next turn.
 */
#ifndef MIDGE_LOOP_H
#define MIDGE_LOOP_H

#include <stdint.h>

/* LOOP_EDGE: report readiness only when it changes (edge-triggered), for a wake-up
 * eventfd that is then never read (worker.c). */
enum { LOOP_READ = 1, LOOP_WRITE = 2, LOOP_EDGE = 4 };

typedef struct loop_event {
    void *handler;   /* what was registered with the fd */
    unsigned events; /* LOOP_READ | LOOP_WRITE, plus LOOP_READ on hang-up/error */
} loop_event_t;

typedef struct loop {
    int epfd;
} loop_t;

int loop_init(loop_t *l);
void loop_cleanup(loop_t *l);
/* Register fd for the given events (LOOP_READ | LOOP_WRITE). 0 or -1 with errno. */
int loop_add(loop_t *l, int fd, unsigned events, void *handler);
int loop_modify(loop_t *l, int fd, unsigned events, void *handler);
int loop_remove(loop_t *l, int fd);
/* Wait up to timeout_ms (-1: forever) and fill at most max events; returns the count. */
int loop_wait(loop_t *l, loop_event_t *out, int max, int timeout_ms);

/* Milliseconds of CLOCK_MONOTONIC and of the wall clock (epoch). */
int64_t loop_now_ms(void);
int64_t loop_wall_ms(void);

#endif
