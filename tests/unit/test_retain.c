/* test_retain.c - unit tests of the retained message store: set, replace, delete (empty
 * payload), matching filters with '+' and '#' against a reference matcher, the '$' rule,
 * expiry, reference counts, deep topics and concurrent use.
 */
#include <pthread.h>
#include <sched.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "broker/retain.h"

static message_t *msg(const char *topic, const char *payload)
{
    message_t *m = message_new((const uint8_t *)topic, strlen(topic), NULL, 0,
                               (const uint8_t *)payload, strlen(payload));
    assert_non_null(m);
    m->retain = true;
    return m;
}

/* Set and drop the caller's reference: the store keeps its own. */
static void set(retain_store_t *rs, const char *topic, const char *payload)
{
    message_t *m = msg(topic, payload);
    assert_int_equal(retain_set(rs, m), 0);
    message_unref(m);
}

#define MAX_FOUND 128

typedef struct found {
    size_t n;
    message_t *m[MAX_FOUND];
} found_t;

static void collect(void *ctx, message_t *m)
{
    found_t *f = ctx;
    assert_true(f->n < MAX_FOUND);
    f->m[f->n++] = m;
}

static found_t match_at(retain_store_t *rs, const char *filter, int64_t now)
{
    found_t f = {0};
    retain_match(rs, (const uint8_t *)filter, strlen(filter), now, collect, &f);
    return f;
}

static found_t match(retain_store_t *rs, const char *filter)
{
    return match_at(rs, filter, 1000);
}

static bool found_topic(const found_t *f, const char *topic)
{
    size_t n = 0;
    for (size_t i = 0; i < f->n; i++)
        n += f->m[i]->topic_len == strlen(topic) &&
             memcmp(f->m[i]->topic, topic, f->m[i]->topic_len) == 0;
    assert_true(n <= 1); /* never twice */
    return n == 1;
}

/* Reference matcher, straight from the specification (4.7), for comparison. */
static bool ref_match(const char *f, const char *t)
{
    if ((f[0] == '+' || f[0] == '#') && t[0] == '$')
        return false; /* MQTT-4.7.2-1 */
    for (;;) {
        const char *fe = strchr(f, '/'), *te = strchr(t, '/');
        size_t fl = fe ? (size_t)(fe - f) : strlen(f), tl = te ? (size_t)(te - t) : strlen(t);
        if (fl == 1 && f[0] == '#')
            return true;
        if (!(fl == 1 && f[0] == '+') && (fl != tl || memcmp(f, t, fl) != 0))
            return false;
        if (!fe && !te)
            return true;
        if (!te)
            return fe && strcmp(fe + 1, "#") == 0; /* MQTT-4.7.1-2 */
        if (!fe)
            return false;
        f = fe + 1;
        t = te + 1;
    }
}

static void test_set_replace_delete(void **state)
{
    (void)state;
    retain_store_t *rs = retain_new();
    assert_non_null(rs);
    message_t *m1 = msg("a/b", "one");
    assert_int_equal(retain_set(rs, m1), 0);
    assert_int_equal(atomic_load(&m1->refs), 2); /* the store's own reference */
    assert_int_equal(retain_count(rs), 1);
    assert_int_equal(retain_node_count(rs), 2);

    /* Replace: the old message loses the store's reference. */
    message_t *m2 = msg("a/b", "two");
    assert_int_equal(retain_set(rs, m2), 0);
    assert_int_equal(atomic_load(&m1->refs), 1);
    assert_int_equal(atomic_load(&m2->refs), 2);
    assert_int_equal(retain_count(rs), 1);
    found_t f = match(rs, "a/b");
    assert_int_equal(f.n, 1);
    assert_ptr_equal(f.m[0], m2);

    /* MQTT-3.3.1-6, -7: an empty payload deletes, and is not stored itself. */
    message_t *del = msg("a/b", "");
    assert_int_equal(retain_set(rs, del), 0);
    assert_int_equal(atomic_load(&del->refs), 1);
    assert_int_equal(atomic_load(&m2->refs), 1);
    assert_int_equal(retain_count(rs), 0);
    assert_int_equal(retain_node_count(rs), 0); /* pruned */
    assert_int_equal(match(rs, "#").n, 0);

    /* Deleting what is not there is a no-op, and creates nothing. */
    assert_int_equal(retain_set(rs, del), 0);
    set(rs, "a", "x");
    message_t *del2 = msg("a/b/c", "");
    assert_int_equal(retain_set(rs, del2), 0);
    assert_int_equal(retain_count(rs), 1);
    assert_int_equal(retain_node_count(rs), 1);

    message_unref(m1);
    message_unref(m2);
    message_unref(del);
    message_unref(del2);
    retain_free(rs);
    retain_free(NULL);
}

static void test_delete_prunes_only_empty(void **state)
{
    (void)state;
    retain_store_t *rs = retain_new();
    set(rs, "a", "1");
    set(rs, "a/b/c", "2");
    set(rs, "a/b/d", "3");
    assert_int_equal(retain_node_count(rs), 4);
    set(rs, "a/b/c", "");
    assert_int_equal(retain_node_count(rs), 3);
    set(rs, "a", "");
    assert_int_equal(retain_node_count(rs), 3); /* a still leads to a/b/d */
    found_t f = match(rs, "#");
    assert_int_equal(f.n, 1);
    assert_true(found_topic(&f, "a/b/d"));
    set(rs, "a/b/d", "");
    assert_int_equal(retain_node_count(rs), 0);
    assert_int_equal(retain_count(rs), 0);
    retain_free(rs);
}

static const char *const TOPICS[] = {
    "a",
    "a/b",
    "a/b/c",
    "a/c",
    "a//c",
    "/a",
    "/",
    "b",
    "a/",
    "$SYS",
    "$SYS/up",
    "a/$x",
    "$SYS/a/b",
    "sport/tennis/p1",
    "sport",
    "sport/",
    "sport/tennis/p1/ranking",
};

static const char *const FILTERS[] = {
    "#",     "+",       "+/+",     "+/#",   "a/#", "a/+",     "a/+/c",      "a/b/#",
    "/+",    "/#",      "a//c",    "a/b",   "a",   "$SYS/#",  "$SYS/+",     "$SYS",
    "+/b",   "sport/+", "sport/#", "+/+/+", "x/#", "a/b/c/d", "+/tennis/#", "sport/tennis/p1/#",
    "a/+/#", "+/$x",
};

/* Every filter against a store holding every topic, compared with the reference matcher:
 * covers '+', '#' as the parent level, empty levels and the '$' rule. */
static void test_match_table(void **state)
{
    (void)state;
    enum { NT = sizeof(TOPICS) / sizeof(TOPICS[0]) };
    retain_store_t *rs = retain_new();
    for (size_t i = 0; i < NT; i++)
        set(rs, TOPICS[i], "p");
    assert_int_equal(retain_count(rs), NT);
    for (size_t j = 0; j < sizeof(FILTERS) / sizeof(FILTERS[0]); j++) {
        found_t f = match(rs, FILTERS[j]);
        size_t want = 0;
        for (size_t i = 0; i < NT; i++) {
            bool w = ref_match(FILTERS[j], TOPICS[i]);
            want += w;
            if (found_topic(&f, TOPICS[i]) != w)
                fail_msg("filter '%s' topic '%s': want %d", FILTERS[j], TOPICS[i], w);
        }
        assert_int_equal(f.n, want);
    }
    retain_free(rs);
}

/* MQTT-4.7.2-1: "#" and "+/..." leave $SYS alone; "$SYS/#" finds it. */
static void test_dollar_topics(void **state)
{
    (void)state;
    retain_store_t *rs = retain_new();
    set(rs, "$SYS/broker/uptime", "1");
    set(rs, "$SYS", "2");
    set(rs, "s/$SYS", "3");
    found_t f = match(rs, "#");
    assert_int_equal(f.n, 1);
    assert_true(found_topic(&f, "s/$SYS"));
    assert_int_equal(match(rs, "+/broker/uptime").n, 0);
    assert_int_equal(match(rs, "+").n, 0);
    assert_int_equal(match(rs, "+/+").n, 1);
    assert_int_equal(match(rs, "$SYS/#").n, 2);
    assert_int_equal(match(rs, "$SYS/+/uptime").n, 1);
    assert_int_equal(match(rs, "s/+").n, 1);
    retain_free(rs);
}

static void test_expired_skipped(void **state)
{
    (void)state;
    retain_store_t *rs = retain_new();
    message_t *m = msg("e/1", "x");
    m->has_expiry = true;
    m->expire_at_ms = 5000;
    assert_int_equal(retain_set(rs, m), 0);
    message_unref(m);
    set(rs, "e/2", "y");
    assert_int_equal(match_at(rs, "e/#", 4999).n, 2);
    found_t f = match_at(rs, "e/+", 5000); /* expires at exactly expire_at_ms */
    assert_int_equal(f.n, 1);
    assert_true(found_topic(&f, "e/2"));
    assert_int_equal(match_at(rs, "e/1", 6000).n, 0);
    assert_int_equal(match_at(rs, "#", 6000).n, 1);
    assert_int_equal(retain_count(rs), 2); /* still held until replaced or deleted */
    retain_free(rs);
}

/* Random topics and filters over a small alphabet, compared with the reference matcher. */
static void random_topic(char *buf, bool filter)
{
    static const char *const L[] = {"a", "b", "", "$s", "+", "#"};
    size_t n = 0, levels = 1 + (size_t)rand() % 4;
    for (size_t i = 0; i < levels; i++) {
        if (i)
            buf[n++] = '/';
        const char *l = L[(size_t)rand() % (filter ? 6 : 4)];
        strcpy(buf + n, l);
        n += strlen(l);
        if (filter && strcmp(l, "#") == 0)
            break;
    }
    buf[n] = 0;
}

static void test_match_random(void **state)
{
    (void)state;
    enum { NT = 30 };
    srand(4242);
    for (int round = 0; round < 50; round++) {
        retain_store_t *rs = retain_new();
        char topics[NT][32];
        for (int i = 0; i < NT; i++) {
            random_topic(topics[i], false);
            set(rs, topics[i], "p");
        }
        for (int k = 0; k < 100; k++) {
            char filter[32];
            random_topic(filter, true);
            found_t f = match(rs, filter);
            size_t want = 0;
            for (int i = 0; i < NT; i++) {
                bool dup = false;
                for (int j = 0; j < i; j++)
                    dup |= strcmp(topics[i], topics[j]) == 0;
                if (dup)
                    continue;
                bool w = ref_match(filter, topics[i]);
                want += w;
                if (found_topic(&f, topics[i]) != w)
                    fail_msg("filter '%s' topic '%s'", filter, topics[i]);
            }
            assert_int_equal(f.n, want);
        }
        for (int i = 0; i < NT; i++)
            set(rs, topics[i], "");
        assert_int_equal(retain_count(rs), 0);
        assert_int_equal(retain_node_count(rs), 0);
        retain_free(rs);
    }
}

static char *repeat_levels(const char *level, size_t levels, const char *last)
{
    size_t ll = strlen(level), n = 0;
    char *s = malloc(levels * (ll + 1) + strlen(last) + 1);
    assert_non_null(s);
    for (size_t i = 0; i < levels; i++) {
        memcpy(s + n, level, ll);
        n += ll;
        if (i + 1 < levels || *last)
            s[n++] = '/';
    }
    strcpy(s + n, last);
    return s;
}

/* A topic may be 65535 bytes: 30000 levels must not overflow the stack. */
static void test_deep_topics(void **state)
{
    (void)state;
    enum { LEVELS = 30000 };
    retain_store_t *rs = retain_new();
    char *topic = repeat_levels("a", LEVELS, "");
    char *empty = repeat_levels("", LEVELS, "");
    char *plus = repeat_levels("+", LEVELS, "");
    char *half = repeat_levels("a", LEVELS / 2, "#");
    char *mid = repeat_levels("a", LEVELS / 2, "");
    set(rs, topic, "deep");
    set(rs, empty, "slashes");
    set(rs, mid, "mid");
    assert_int_equal(retain_count(rs), 3);
    assert_int_equal(match(rs, "#").n, 3);
    assert_int_equal(match(rs, topic).n, 1);
    assert_int_equal(match(rs, plus).n, 2);
    assert_int_equal(match(rs, half).n, 2); /* mid (parent level) and topic */
    set(rs, topic, "");
    set(rs, empty, "");
    assert_int_equal(retain_node_count(rs), (size_t)LEVELS / 2);
    set(rs, topic, "again");
    retain_free(rs); /* iterative teardown of a deep tree */
    free(topic);
    free(empty);
    free(plus);
    free(half);
    free(mid);
}

/* Matchers run while a writer sets and deletes: run under -fsanitize=thread. */
typedef struct mt {
    retain_store_t *rs;
    atomic_int stop;
    atomic_long found;
} mt_t;

static void take_ref(void *ctx, message_t *m)
{
    /* As a subscriber would: keep it past the lock, read it, drop it. */
    message_t **out = ctx;
    *out = message_ref(m);
}

static void *matcher(void *arg)
{
    mt_t *m = arg;
    static const char *const filters[] = {"#", "t/+", "t/fixed", "+/+/+", "t/#"};
    for (unsigned k = 0; !atomic_load(&m->stop); k++) {
        message_t *got = NULL;
        const char *f = filters[k % 5];
        if (k % 5 == 2) {
            retain_match(m->rs, (const uint8_t *)f, strlen(f), 0, take_ref, &got);
            if (!got || got->payload[0] != 'F') {
                fprintf(stderr, "fixed retained message missed\n");
                abort();
            }
            message_unref(got);
            atomic_fetch_add(&m->found, 1);
        } else {
            found_t fd = {0};
            retain_match(m->rs, (const uint8_t *)f, strlen(f), 0, collect, &fd);
            atomic_fetch_add(&m->found, (long)fd.n);
        }
    }
    return NULL;
}

static void test_concurrent(void **state)
{
    (void)state;
    mt_t m = {.rs = retain_new()};
    atomic_init(&m.stop, 0);
    atomic_init(&m.found, 0);
    set(m.rs, "t/fixed", "F");
    pthread_t th[4];
    for (int i = 0; i < 4; i++)
        assert_int_equal(pthread_create(&th[i], NULL, matcher, &m), 0);
    while (atomic_load(&m.found) < 100)
        sched_yield(); /* let the matchers start before the writes */
    char topic[32];
    for (int round = 0; round < 3000; round++) {
        if (round % 64 == 0)
            sched_yield();
        snprintf(topic, sizeof(topic), "t/%d/x", round % 13);
        set(m.rs, topic, "v");
        snprintf(topic, sizeof(topic), "t/%d", round % 7);
        set(m.rs, topic, round % 3 ? "w" : "");
        snprintf(topic, sizeof(topic), "t/%d/x", (round + 5) % 13);
        set(m.rs, topic, "");
    }
    atomic_store(&m.stop, 1);
    for (int i = 0; i < 4; i++)
        pthread_join(th[i], NULL);
    assert_true(atomic_load(&m.found) > 0);
    for (int i = 0; i < 13; i++) {
        snprintf(topic, sizeof(topic), "t/%d/x", i);
        set(m.rs, topic, "");
    }
    for (int i = 0; i < 7; i++) {
        snprintf(topic, sizeof(topic), "t/%d", i);
        set(m.rs, topic, "");
    }
    assert_int_equal(retain_count(m.rs), 1);
    assert_int_equal(retain_node_count(m.rs), 2);
    retain_free(m.rs);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_set_replace_delete), cmocka_unit_test(test_delete_prunes_only_empty),
        cmocka_unit_test(test_match_table),        cmocka_unit_test(test_dollar_topics),
        cmocka_unit_test(test_expired_skipped),    cmocka_unit_test(test_match_random),
        cmocka_unit_test(test_deep_topics),        cmocka_unit_test(test_concurrent),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
