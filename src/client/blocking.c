/* blocking.c - libmidge's background thread and blocking calls.
 *
 * Both sit on the non-blocking engine of client.c: the thread calls its step in a loop,
 * a blocking call either drives the steps itself or, when the thread runs, waits on a
 * condition variable that the thread broadcasts after every step.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "client/client_int.h"

void client_lock(midge_client_t *c)
{
    pthread_mutex_lock(&c->lock);
}

void client_unlock(midge_client_t *c)
{
    pthread_mutex_unlock(&c->lock);
}

void client_wake(midge_client_t *c)
{
    if (c->thread_running) {
        char b = 1;
        ssize_t r = write(c->wake[1], &b, 1);
        (void)r; /* a full pipe already wakes the thread */
    }
}

static void *thread_main(void *arg)
{
    midge_client_t *c = arg;
    client_lock(c);
    while (!c->thread_stop) {
        client_step_locked(c, 1000);
        pthread_cond_broadcast(&c->cond);
    }
    client_unlock(c);
    return NULL;
}

int midge_client_start(midge_client_t *c)
{
    client_lock(c);
    int rc = 0;
    if (c->thread_running) {
        rc = MIDGE_ESTATE;
        goto out;
    }
    if (c->wake[0] < 0 && pipe2(c->wake, O_NONBLOCK | O_CLOEXEC) < 0) {
        rc = MIDGE_ESYS;
        goto out;
    }
    c->thread_stop = false;
    c->thread_running = true;
    if (pthread_create(&c->thread, NULL, thread_main, c) != 0) {
        c->thread_running = false;
        rc = MIDGE_ESYS;
    }
out:
    client_unlock(c);
    return rc;
}

int midge_client_stop(midge_client_t *c)
{
    client_lock(c);
    if (!c->thread_running) {
        client_unlock(c);
        return 0;
    }
    c->thread_stop = true;
    client_wake(c);
    client_unlock(c);
    pthread_join(c->thread, NULL);
    client_lock(c);
    c->thread_running = false;
    close(c->wake[0]);
    close(c->wake[1]);
    c->wake[0] = c->wake[1] = -1;
    client_unlock(c);
    return 0;
}

/* Drive the client, or wait for the thread, until done(c, arg) or the deadline. */
static int wait_until(midge_client_t *c, bool (*done)(midge_client_t *, void *), void *arg,
                      int timeout_ms)
{
    int64_t deadline = client_now(c) + (timeout_ms < 0 ? 0 : timeout_ms);
    while (!done(c, arg)) {
        int64_t left = deadline - client_now(c);
        if (left <= 0)
            return MIDGE_ETIMEOUT;
        if (c->thread_running) {
            struct timespec ts;
            clock_gettime(CLOCK_MONOTONIC, &ts);
            int64_t step = left > 100 ? 100 : left; /* also bounds a clock of the transport */
            ts.tv_sec += step / 1000;
            ts.tv_nsec += (long)(step % 1000) * 1000000;
            if (ts.tv_nsec >= 1000000000) {
                ts.tv_sec++;
                ts.tv_nsec -= 1000000000;
            }
            pthread_cond_timedwait(&c->cond, &c->lock, &ts);
        } else {
            int rc = client_step_locked(c, (int)left);
            /* A lost connection ends the wait only through done(): a waiter failed. */
            if (rc && rc != MIDGE_ECONN && rc != MIDGE_EREFUSED)
                return rc;
            if (rc && !done(c, arg))
                return rc;
        }
    }
    return 0;
}

static bool connect_done(midge_client_t *c, void *arg)
{
    return c->connect_result != 0;
}

int midge_client_connect_wait(midge_client_t *c, int timeout_ms, uint8_t *reason)
{
    client_lock(c);
    int rc = client_connect_locked(c);
    if (!rc)
        rc = wait_until(c, connect_done, NULL, timeout_ms);
    if (!rc)
        rc = c->connect_result == 1 ? 0 : c->connect_result;
    if (reason)
        *reason = c->connack_code;
    client_unlock(c);
    return rc;
}

static bool waiter_done(midge_client_t *c, void *arg)
{
    return ((waiter_t *)arg)->done;
}

/* Register w, wait for it, unlink it. */
static int wait_for(midge_client_t *c, waiter_t *w, int timeout_ms)
{
    w->next = c->waiters;
    c->waiters = w;
    int rc = wait_until(c, waiter_done, w, timeout_ms);
    for (waiter_t **pp = &c->waiters; *pp; pp = &(*pp)->next)
        if (*pp == w) {
            *pp = w->next;
            break;
        }
    if (!rc && w->done)
        rc = w->status;
    return rc;
}

int midge_client_publish_wait(midge_client_t *c, const char *topic, const void *payload, size_t len,
                              int qos, bool retain, const midge_props_t *props, int timeout_ms,
                              uint8_t *reason)
{
    client_lock(c);
    waiter_t w;
    memset(&w, 0, sizeof w);
    w.kind = qos ? W_PUB : W_PUB0;
    int rc = client_publish_locked(c, topic, payload, len, qos, retain, props, &w.mid);
    if (!rc)
        rc = wait_for(c, &w, timeout_ms);
    if (reason)
        *reason = w.reason;
    client_unlock(c);
    return rc;
}

int midge_client_subscribe_wait(midge_client_t *c, const midge_subscription_t *subs, size_t n,
                                uint32_t sub_id, int timeout_ms, uint8_t *codes)
{
    client_lock(c);
    waiter_t w;
    memset(&w, 0, sizeof w);
    w.kind = W_SUB;
    w.codes = codes;
    w.ncodes = codes ? n : 0;
    int rc = client_subscribe_locked(c, subs, n, sub_id, &w.mid);
    if (!rc)
        rc = wait_for(c, &w, timeout_ms);
    client_unlock(c);
    return rc;
}

int midge_client_unsubscribe_wait(midge_client_t *c, const char *const *filters, size_t n,
                                  int timeout_ms, uint8_t *codes)
{
    client_lock(c);
    waiter_t w;
    memset(&w, 0, sizeof w);
    w.kind = W_UNSUB;
    w.codes = codes;
    w.ncodes = codes ? n : 0;
    int rc = client_unsubscribe_locked(c, filters, n, &w.mid);
    if (!rc)
        rc = wait_for(c, &w, timeout_ms);
    client_unlock(c);
    return rc;
}

static bool rx_ready(midge_client_t *c, void *arg)
{
    return c->rx_head != NULL;
}

int midge_client_receive(midge_client_t *c, int timeout_ms, midge_message_t **out)
{
    client_lock(c);
    *out = NULL;
    int rc = c->cb.on_message ? MIDGE_ESTATE : wait_until(c, rx_ready, NULL, timeout_ms);
    if (!rc) {
        rx_msg_t *r = c->rx_head;
        c->rx_head = r->next;
        if (!c->rx_head)
            c->rx_tail = NULL;
        c->rx_count--;
        *out = r->m;
        free(r);
    }
    client_unlock(c);
    return rc;
}

static bool closed(midge_client_t *c, void *arg)
{
    return c->conn == NULL;
}

int midge_client_disconnect_wait(midge_client_t *c, uint8_t reason, int timeout_ms)
{
    client_lock(c);
    int rc = client_disconnect_locked(c, reason);
    if (!rc)
        rc = wait_until(c, closed, NULL, timeout_ms);
    if (rc == MIDGE_ETIMEOUT) {
        client_close(c);
        c->state = ST_IDLE;
    }
    client_unlock(c);
    return rc;
}

void midge_message_free(midge_message_t *m)
{
    free(m);
}
