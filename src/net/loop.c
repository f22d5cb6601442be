/* loop.c - the epoll backend of loop.h. */
#include "loop.h"

#include <errno.h>
#include <sys/epoll.h>
#include <time.h>
#include <unistd.h>

int loop_init(loop_t *l)
{
    l->epfd = epoll_create1(EPOLL_CLOEXEC);
    return l->epfd < 0 ? -1 : 0;
}

void loop_cleanup(loop_t *l)
{
    if (l->epfd >= 0)
        close(l->epfd);
    l->epfd = -1;
}

static uint32_t to_epoll(unsigned events)
{
    return (events & LOOP_READ ? EPOLLIN | EPOLLRDHUP : 0) | (events & LOOP_WRITE ? EPOLLOUT : 0) |
           (events & LOOP_EDGE ? EPOLLET : 0);
}

int loop_add(loop_t *l, int fd, unsigned events, void *handler)
{
    struct epoll_event ev = {.events = to_epoll(events), .data.ptr = handler};
    return epoll_ctl(l->epfd, EPOLL_CTL_ADD, fd, &ev);
}

int loop_modify(loop_t *l, int fd, unsigned events, void *handler)
{
    struct epoll_event ev = {.events = to_epoll(events), .data.ptr = handler};
    return epoll_ctl(l->epfd, EPOLL_CTL_MOD, fd, &ev);
}

int loop_remove(loop_t *l, int fd)
{
    return epoll_ctl(l->epfd, EPOLL_CTL_DEL, fd, NULL);
}

int loop_wait(loop_t *l, loop_event_t *out, int max, int timeout_ms)
{
    struct epoll_event evs[256];
    if (max > 256)
        max = 256;
    int n = epoll_wait(l->epfd, evs, max, timeout_ms);
    if (n < 0)
        return errno == EINTR ? 0 : -1;
    for (int i = 0; i < n; i++) {
        unsigned e = 0;
        /* Hang-up and errors are reported as readable: the read that follows sees the
         * EOF or the error and closes the connection through the one usual path. */
        if (evs[i].events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR))
            e |= LOOP_READ;
        if (evs[i].events & EPOLLOUT)
            e |= LOOP_WRITE;
        out[i].handler = evs[i].data.ptr;
        out[i].events = e;
    }
    return n;
}

int64_t loop_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t loop_wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}
