/* session.c - session state kept across connections (see session.h). Only the owning
 * worker calls these, except session_ref/unref. */
#include "session.h"

#include <stdlib.h>
#include <string.h>

session_t *session_new(const char *client_id, size_t len, int owner)
{
    session_t *s = calloc(1, sizeof(*s) + len + 1);
    if (!s)
        return NULL;
    atomic_init(&s->refs, 1);
    atomic_init(&s->owner, owner);
    atomic_init(&s->online, false);
    atomic_init(&s->stored, false);
    memcpy(s->client_id, client_id, len);
    s->client_id[len] = 0;
    s->client_id_len = len;
    s->next_pid = 1;
    return s;
}

void delivery_free(delivery_t *d)
{
    message_unref(d->msg);
    free(d);
}

static void free_list(delivery_t *d)
{
    while (d) {
        delivery_t *next = d->next;
        delivery_free(d);
        d = next;
    }
}

void session_sub_untree(session_t *s, const subscription_t *sub, topic_tree_t *tree)
{
    /* key is "$share/GROUP/FILTER" for a shared subscription, else the filter itself. */
    const uint8_t *key = (const uint8_t *)sub->key;
    if (sub->group_len)
        topic_tree_unsubscribe(tree, key + 7 + sub->group_len + 1, sub->filter_len, key + 7,
                               sub->group_len, s);
    else
        topic_tree_unsubscribe(tree, key, sub->key_len, NULL, 0, s);
}

void session_reset(session_t *s, topic_tree_t *tree)
{
    subscription_t *sub, *tmp;
    HASH_ITER(hh, s->subs, sub, tmp)
    {
        HASH_DEL(s->subs, sub);
        if (tree)
            session_sub_untree(s, sub, tree);
        free(sub);
    }
    s->sub_count = 0;
    free_list(s->inflight_head);
    free_list(s->queue_head);
    s->inflight_head = s->inflight_tail = s->queue_head = s->queue_tail = NULL;
    s->inflight_count = s->queued_count = 0;
    s->queued_bytes = 0;
    s->rx_qos2_count = 0;
}

void session_unref(session_t *s)
{
    if (!s || atomic_fetch_sub_explicit(&s->refs, 1, memory_order_acq_rel) != 1)
        return;
    session_reset(s, NULL);
    free(s->rx_qos2);
    free(s->username);
    message_unref(s->will);
    free(s);
}

bool session_rx_qos2_has(const session_t *s, uint16_t pid)
{
    for (uint32_t i = 0; i < s->rx_qos2_count; i++)
        if (s->rx_qos2[i] == pid)
            return true;
    return false;
}

int session_rx_qos2_add(session_t *s, uint16_t pid)
{
    if (s->rx_qos2_count == s->rx_qos2_cap) {
        uint32_t ncap = s->rx_qos2_cap ? s->rx_qos2_cap * 2 : 8;
        uint16_t *n = realloc(s->rx_qos2, ncap * sizeof(*n));
        if (!n)
            return -1;
        s->rx_qos2 = n;
        s->rx_qos2_cap = ncap;
    }
    s->rx_qos2[s->rx_qos2_count++] = pid;
    return 0;
}

bool session_rx_qos2_remove(session_t *s, uint16_t pid)
{
    for (uint32_t i = 0; i < s->rx_qos2_count; i++) {
        if (s->rx_qos2[i] == pid) {
            s->rx_qos2[i] = s->rx_qos2[--s->rx_qos2_count];
            return true;
        }
    }
    return false;
}

delivery_t *session_inflight_find(session_t *s, uint16_t pid)
{
    for (delivery_t *d = s->inflight_head; d; d = d->next)
        if (d->pid == pid)
            return d;
    return NULL;
}

uint16_t session_next_pid(session_t *s)
{
    /* The window is small (receive maximum), so a linear check of in-flight ids is cheap
     * and the loop ends: at most inflight_count ids are taken. */
    for (;;) {
        uint16_t pid = s->next_pid++;
        if (s->next_pid == 0)
            s->next_pid = 1;
        if (pid && !session_inflight_find(s, pid))
            return pid;
    }
}

delivery_t *session_inflight_take(session_t *s, uint16_t pid, uint8_t state)
{
    delivery_t *prev = NULL;
    for (delivery_t *d = s->inflight_head; d; prev = d, d = d->next) {
        if (d->pid != pid || d->state != state)
            continue;
        if (prev)
            prev->next = d->next;
        else
            s->inflight_head = d->next;
        if (s->inflight_tail == d)
            s->inflight_tail = prev;
        d->next = NULL;
        s->inflight_count--;
        return d;
    }
    return NULL;
}

void session_inflight_append(session_t *s, delivery_t *d)
{
    d->next = NULL;
    if (s->inflight_tail)
        s->inflight_tail->next = d;
    else
        s->inflight_head = d;
    s->inflight_tail = d;
    s->inflight_count++;
}

void session_queue_append(session_t *s, delivery_t *d)
{
    d->next = NULL;
    if (s->queue_tail)
        s->queue_tail->next = d;
    else
        s->queue_head = d;
    s->queue_tail = d;
    s->queued_count++;
    s->queued_bytes += d->msg->payload_len;
}

delivery_t *session_queue_pop(session_t *s)
{
    delivery_t *d = s->queue_head;
    if (!d)
        return NULL;
    s->queue_head = d->next;
    if (!s->queue_head)
        s->queue_tail = NULL;
    d->next = NULL;
    s->queued_count--;
    s->queued_bytes -= d->msg->payload_len;
    return d;
}

subscription_t *session_sub_find(session_t *s, const uint8_t *key, size_t n)
{
    subscription_t *sub = NULL;
    HASH_FIND(hh, s->subs, key, n, sub);
    return sub;
}
