/* test_session.c - session state: packet ids, the in-flight window, the queue, inbound
 * QoS 2 ids, and reset dropping subscriptions from the tree. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "broker/session.h"

static message_t *msg(const char *payload)
{
    message_t *m = message_new((const uint8_t *)"t", 1, NULL, 0, (const uint8_t *)payload,
                               strlen(payload));
    assert_non_null(m);
    return m;
}

static delivery_t *dlv(const char *payload, uint8_t qos)
{
    delivery_t *d = calloc(1, sizeof(*d));
    assert_non_null(d);
    d->msg = msg(payload);
    d->qos = qos;
    return d;
}

static void test_pids_skip_zero_and_ids_in_flight(void **state)
{
    (void)state;
    session_t *s = session_new("c", 1, 0);
    assert_non_null(s);
    s->next_pid = 65535;
    delivery_t *d = dlv("a", 1);
    d->pid = session_next_pid(s);
    assert_int_equal(d->pid, 65535);
    d->state = DLV_WAIT_PUBACK;
    session_inflight_append(s, d);
    /* wraps past 0 to 1 */
    assert_int_equal(session_next_pid(s), 1);
    /* an id still in flight is never handed out twice */
    s->next_pid = 65535;
    assert_int_equal(session_next_pid(s), 1);
    session_unref(s);
}

static void test_inflight_take_matches_id_and_state(void **state)
{
    (void)state;
    session_t *s = session_new("c", 1, 0);
    delivery_t *a = dlv("a", 1), *b = dlv("b", 2), *c = dlv("c", 1);
    a->pid = 1, a->state = DLV_WAIT_PUBACK;
    b->pid = 2, b->state = DLV_WAIT_PUBREC;
    c->pid = 3, c->state = DLV_WAIT_PUBACK;
    session_inflight_append(s, a);
    session_inflight_append(s, b);
    session_inflight_append(s, c);
    assert_int_equal(s->inflight_count, 3);
    /* a PUBACK for a QoS 2 id does not complete it */
    assert_null(session_inflight_take(s, 2, DLV_WAIT_PUBACK));
    delivery_t *got = session_inflight_take(s, 2, DLV_WAIT_PUBREC);
    assert_ptr_equal(got, b);
    delivery_free(got);
    got = session_inflight_take(s, 3, DLV_WAIT_PUBACK);
    assert_ptr_equal(got, c);
    delivery_free(got);
    /* the tail moved back: a new one goes after a */
    delivery_t *d = dlv("d", 1);
    d->pid = 4, d->state = DLV_WAIT_PUBACK;
    session_inflight_append(s, d);
    assert_ptr_equal(s->inflight_head, a);
    assert_ptr_equal(a->next, d);
    assert_int_equal(s->inflight_count, 2);
    session_unref(s);
}

static void test_queue_is_fifo_and_counts_bytes(void **state)
{
    (void)state;
    session_t *s = session_new("c", 1, 0);
    session_queue_append(s, dlv("one", 1));
    session_queue_append(s, dlv("three", 1));
    assert_int_equal(s->queued_count, 2);
    assert_int_equal(s->queued_bytes, 8);
    delivery_t *d = session_queue_pop(s);
    assert_memory_equal(d->msg->payload, "one", 3);
    delivery_free(d);
    assert_int_equal(s->queued_bytes, 5);
    d = session_queue_pop(s);
    assert_memory_equal(d->msg->payload, "three", 5);
    delivery_free(d);
    assert_null(session_queue_pop(s));
    assert_int_equal(s->queued_count, 0);
    assert_int_equal(s->queued_bytes, 0);
    session_unref(s);
}

static void test_rx_qos2_ids(void **state)
{
    (void)state;
    session_t *s = session_new("c", 1, 0);
    for (uint16_t i = 1; i <= 100; i++)
        assert_int_equal(session_rx_qos2_add(s, i), 0);
    assert_true(session_rx_qos2_has(s, 50));
    assert_true(session_rx_qos2_remove(s, 50));
    assert_false(session_rx_qos2_has(s, 50));
    assert_false(session_rx_qos2_remove(s, 50));
    assert_int_equal(s->rx_qos2_count, 99);
    session_unref(s);
}

static bool online(void *owner)
{
    (void)owner;
    return true;
}

static void count_match(void *ctx, void *owner, const sub_opts_t *o, bool shared)
{
    (void)owner, (void)o, (void)shared;
    (*(int *)ctx)++;
}

static void test_reset_removes_subscriptions_from_tree(void **state)
{
    (void)state;
    topic_tree_t *t = topic_tree_new(online);
    session_t *s = session_new("c", 1, 0);
    sub_opts_t o = {.qos = 1};
    const char *keys[] = {"a/+", "$share/g/a/b"};
    assert_int_equal(topic_tree_subscribe(t, (const uint8_t *)"a/+", 3, NULL, 0, s, &o), 1);
    assert_int_equal(topic_tree_subscribe(t, (const uint8_t *)"a/b", 3, (const uint8_t *)"g", 1,
                                          s, &o),
                     1);
    for (int i = 0; i < 2; i++) {
        size_t n = strlen(keys[i]);
        subscription_t *sub = calloc(1, sizeof(*sub) + n + 1);
        memcpy(sub->key, keys[i], n);
        sub->key_len = n;
        sub->opts = o;
        if (i == 1) {
            sub->group_len = 1;
            sub->filter_len = 3;
        }
        HASH_ADD_KEYPTR(hh, s->subs, sub->key, sub->key_len, sub);
        s->sub_count++;
    }
    int hits = 0;
    topic_tree_match(t, (const uint8_t *)"a/b", 3, count_match, &hits);
    assert_int_equal(hits, 2);
    session_queue_append(s, dlv("q", 1));
    session_reset(s, t);
    hits = 0;
    topic_tree_match(t, (const uint8_t *)"a/b", 3, count_match, &hits);
    assert_int_equal(hits, 0);
    assert_int_equal(topic_tree_count(t), 0);
    assert_int_equal(s->sub_count, 0);
    assert_int_equal(s->queued_count, 0);
    session_unref(s);
    topic_tree_free(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pids_skip_zero_and_ids_in_flight),
        cmocka_unit_test(test_inflight_take_matches_id_and_state),
        cmocka_unit_test(test_queue_is_fifo_and_counts_bytes),
        cmocka_unit_test(test_rx_qos2_ids),
        cmocka_unit_test(test_reset_removes_subscriptions_from_tree),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
