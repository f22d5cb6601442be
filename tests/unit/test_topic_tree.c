/* test_topic_tree.c - unit tests of the subscription tree: wildcard matching against a
 * reference matcher, the '$' rule, shared groups, option replacement, counts and pruning,
 * topics thousands of levels deep, and concurrent matching while subscriptions change.
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

#include "broker/topic_tree.h"

typedef struct owner {
    int id;
    bool online;
} owner_t;

static bool owner_online(void *o)
{
    return ((owner_t *)o)->online;
}

#define MAX_HITS 64

typedef struct hits {
    size_t n;
    void *owner[MAX_HITS];
    sub_opts_t opts[MAX_HITS];
    bool shared[MAX_HITS];
} hits_t;

static void collect(void *ctx, void *owner, const sub_opts_t *opts, bool shared)
{
    hits_t *h = ctx;
    assert_true(h->n < MAX_HITS);
    h->owner[h->n] = owner;
    h->opts[h->n] = *opts;
    h->shared[h->n] = shared;
    h->n++;
}

static hits_t match(topic_tree_t *t, const char *topic)
{
    hits_t h = {0};
    topic_tree_match(t, (const uint8_t *)topic, strlen(topic), collect, &h);
    return h;
}

static size_t hits_of(const hits_t *h, const void *owner)
{
    size_t c = 0;
    for (size_t i = 0; i < h->n; i++)
        c += h->owner[i] == owner;
    return c;
}

static const sub_opts_t QOS0 = {.qos = 0};
static const sub_opts_t QOS1 = {.qos = 1};
static const sub_opts_t QOS2 = {.qos = 2, .sub_id = 7};

static int sub(topic_tree_t *t, const char *filter, void *owner, const sub_opts_t *o)
{
    return topic_tree_subscribe(t, (const uint8_t *)filter, strlen(filter), NULL, 0, owner, o);
}

static int unsub(topic_tree_t *t, const char *filter, void *owner)
{
    return topic_tree_unsubscribe(t, (const uint8_t *)filter, strlen(filter), NULL, 0, owner);
}

static int sub_shared(topic_tree_t *t, const char *group, const char *filter, void *owner)
{
    return topic_tree_subscribe(t, (const uint8_t *)filter, strlen(filter), (const uint8_t *)group,
                                strlen(group), owner, &QOS1);
}

static int unsub_shared(topic_tree_t *t, const char *group, const char *filter, void *owner)
{
    return topic_tree_unsubscribe(t, (const uint8_t *)filter, strlen(filter),
                                  (const uint8_t *)group, strlen(group), owner);
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
            return fe && strcmp(fe + 1, "#") == 0; /* MQTT-4.7.1-2: "a/#" matches "a" */
        if (!fe)
            return false;
        f = fe + 1;
        t = te + 1;
    }
}

static const struct {
    const char *filter, *topic;
    bool match;
} TABLE[] = {
    {"a/b", "a/b", true},
    {"a/b", "a/c", false},
    {"a/b", "a/b/c", false},
    {"a/b", "a", false},
    {"a/b/", "a/b", false},
    {"a/b", "a/b/", false},
    {"a/+", "a/b", true},
    {"a/+", "a", false},
    {"a/+", "a/", true},
    {"a/+", "a/b/c", false},
    {"+/b", "a/b", true},
    {"+/+", "a/b", true},
    {"+/+", "/a", true},
    {"+", "/a", false},
    {"/+", "/a", true},
    {"+", "a", true},
    {"a/+/c", "a//c", true},
    {"a//c", "a//c", true},
    {"a//c", "a/b/c", false},
    {"/", "/", true},
    {"+/+", "/", true},
    {"#", "/", true},
    {"#", "a", true},
    {"#", "a/b/c", true},
    {"a/#", "a", true}, /* MQTT-4.7.1-2 */
    {"a/#", "a/", true},
    {"a/#", "a/b/c", true},
    {"a/#", "ab", false},
    {"a/b/#", "a", false},
    {"+/#", "a", true},
    {"a/+/#", "a", false},
    {"a/+/#", "a/b", true},
    {"sport/tennis/player1/#", "sport/tennis/player1", true},
    {"sport/tennis/player1/#", "sport/tennis/player1/ranking", true},
    {"sport/tennis/player1/#", "sport/tennis/player1/score/wimbledon", true},
    {"sport/+", "sport", false},
    {"sport/+", "sport/", true},
    {"+/tennis/#", "sport/tennis/player1", true},
    /* MQTT-4.7.2-1: a leading wildcard does not match '$' topics, only at the first level. */
    {"#", "$SYS/uptime", false},
    {"+/uptime", "$SYS/uptime", false},
    {"+", "$SYS", false},
    {"$SYS/#", "$SYS/uptime", true},
    {"$SYS/+", "$SYS/uptime", true},
    {"$SYS/#", "$SYS", true},
    {"a/+", "a/$x", true},
    {"a/#", "a/$x", true},
    {"#", "/$x", true},
    {"+/$x", "/$x", true},
    {"+", "$", false},
};

/* Each row on its own tree. */
static void test_match_table(void **state)
{
    (void)state;
    owner_t a = {1, true};
    for (size_t i = 0; i < sizeof(TABLE) / sizeof(TABLE[0]); i++) {
        topic_tree_t *t = topic_tree_new(owner_online);
        assert_non_null(t);
        assert_int_equal(sub(t, TABLE[i].filter, &a, &QOS1), 1);
        hits_t h = match(t, TABLE[i].topic);
        if (h.n != (TABLE[i].match ? 1u : 0u))
            fail_msg("filter '%s' topic '%s': %zu hits", TABLE[i].filter, TABLE[i].topic, h.n);
        assert_int_equal(ref_match(TABLE[i].filter, TABLE[i].topic), TABLE[i].match);
        topic_tree_free(t);
    }
}

/* All filters of the table in one tree: every topic must find exactly its filters, which
 * exercises the backtracking between exact, '+' and '#' branches. */
static void test_match_table_combined(void **state)
{
    (void)state;
    enum { N = sizeof(TABLE) / sizeof(TABLE[0]) };
    owner_t o[N];
    topic_tree_t *t = topic_tree_new(owner_online);
    size_t distinct = 0;
    for (size_t i = 0; i < N; i++) {
        o[i] = (owner_t){(int)i, true};
        distinct += sub(t, TABLE[i].filter, &o[i], &QOS0) == 1;
    }
    assert_int_equal(topic_tree_count(t), distinct);
    for (size_t i = 0; i < N; i++) {
        hits_t h = match(t, TABLE[i].topic);
        for (size_t j = 0; j < N; j++) {
            bool want = ref_match(TABLE[j].filter, TABLE[i].topic);
            if (hits_of(&h, &o[j]) != (want ? 1u : 0u))
                fail_msg("topic '%s' filter '%s': want %d", TABLE[i].topic, TABLE[j].filter, want);
        }
    }
    for (size_t i = 0; i < N; i++)
        unsub(t, TABLE[i].filter, &o[i]);
    assert_int_equal(topic_tree_count(t), 0);
    assert_int_equal(topic_tree_node_count(t), 0);
    topic_tree_free(t);
}

/* Random filters and topics over a small alphabet, compared with the reference matcher. */
static void random_level(char *buf, size_t *n, bool filter, bool first)
{
    static const char *const L[] = {"a", "b", "", "$s", "+", "#"};
    size_t k = (size_t)rand() % (filter ? 6 : 4);
    (void)first;
    size_t l = strlen(L[k]);
    memcpy(buf + *n, L[k], l);
    *n += l;
}

static void random_topic(char *buf, bool filter)
{
    size_t n = 0, levels = 1 + (size_t)rand() % 4;
    for (size_t i = 0; i < levels; i++) {
        if (i)
            buf[n++] = '/';
        random_level(buf, &n, filter, i == 0);
        if (filter && n && buf[n - 1] == '#')
            break; /* '#' only last */
    }
    buf[n] = 0;
}

static void test_match_random(void **state)
{
    (void)state;
    enum { NF = 40 };
    srand(12345);
    for (int round = 0; round < 50; round++) {
        topic_tree_t *t = topic_tree_new(NULL);
        char filters[NF][32];
        owner_t o[NF];
        for (int i = 0; i < NF; i++) {
            random_topic(filters[i], true);
            o[i] = (owner_t){i, true};
            assert_true(sub(t, filters[i], &o[i], &QOS0) >= 0);
        }
        for (int k = 0; k < 100; k++) {
            char topic[32];
            random_topic(topic, false);
            hits_t h = match(t, topic);
            for (int i = 0; i < NF; i++) {
                if (hits_of(&h, &o[i]) != (ref_match(filters[i], topic) ? 1u : 0u))
                    fail_msg("topic '%s' filter '%s'", topic, filters[i]);
            }
        }
        for (int i = 0; i < NF; i++)
            unsub(t, filters[i], &o[i]);
        assert_int_equal(topic_tree_count(t), 0);
        assert_int_equal(topic_tree_node_count(t), 0);
        topic_tree_free(t);
    }
}

/* Subscribing again to the same filter replaces the options (MQTT-3.8.4-3). */
static void test_replace_options(void **state)
{
    (void)state;
    owner_t a = {1, true}, b = {2, true};
    topic_tree_t *t = topic_tree_new(owner_online);
    assert_int_equal(sub(t, "x/+", &a, &QOS0), 1);
    assert_int_equal(sub(t, "x/+", &a, &QOS2), 0);
    assert_int_equal(sub(t, "x/+", &b, &QOS1), 1);
    assert_int_equal(topic_tree_count(t), 2);
    hits_t h = match(t, "x/y");
    assert_int_equal(h.n, 2);
    for (size_t i = 0; i < h.n; i++) {
        assert_false(h.shared[i]);
        if (h.owner[i] == &a) {
            assert_int_equal(h.opts[i].qos, 2);
            assert_int_equal(h.opts[i].sub_id, 7);
        } else {
            assert_ptr_equal(h.owner[i], &b);
            assert_int_equal(h.opts[i].qos, 1);
        }
    }
    /* A shared member's options are replaced the same way. */
    assert_int_equal(sub_shared(t, "g", "x/+", &a), 1);
    assert_int_equal(
        topic_tree_subscribe(t, (const uint8_t *)"x/+", 3, (const uint8_t *)"g", 1, &a, &QOS2), 0);
    assert_int_equal(topic_tree_count(t), 3);
    h = match(t, "x/y");
    assert_int_equal(h.n, 3);
    for (size_t i = 0; i < h.n; i++)
        if (h.shared[i])
            assert_int_equal(h.opts[i].qos, 2);
    topic_tree_free(t);
}

/* One owner with overlapping filters is reported once per filter. */
static void test_overlapping_filters(void **state)
{
    (void)state;
    owner_t a = {1, true};
    topic_tree_t *t = topic_tree_new(owner_online);
    sub(t, "a/b", &a, &QOS0);
    sub(t, "a/+", &a, &QOS1);
    sub(t, "#", &a, &QOS2);
    sub(t, "a/#", &a, &QOS0);
    assert_int_equal(topic_tree_count(t), 4);
    assert_int_equal(match(t, "a/b").n, 4);
    assert_int_equal(match(t, "a/c").n, 3);
    assert_int_equal(match(t, "a").n, 2);
    assert_int_equal(match(t, "b").n, 1);
    topic_tree_free(t);
}

static void test_counts_and_pruning(void **state)
{
    (void)state;
    owner_t a = {1, true}, b = {2, true};
    topic_tree_t *t = topic_tree_new(owner_online);
    assert_int_equal(topic_tree_count(t), 0);
    assert_int_equal(sub(t, "a/b/c", &a, &QOS0), 1);
    assert_int_equal(topic_tree_node_count(t), 3);
    assert_int_equal(sub(t, "a/b", &b, &QOS0), 1);
    assert_int_equal(sub(t, "a/+/#", &b, &QOS0), 1);
    assert_int_equal(sub_shared(t, "g", "a/b", &a), 1);
    assert_int_equal(sub_shared(t, "g", "a/b", &b), 1);
    assert_int_equal(sub_shared(t, "h", "a/b", &b), 1);
    assert_int_equal(topic_tree_count(t), 6);
    assert_int_equal(topic_tree_node_count(t), 5);

    assert_int_equal(unsub(t, "a/b/c", &b), 0); /* not b's */
    assert_int_equal(unsub(t, "a/x", &a), 0);   /* no such node */
    assert_int_equal(unsub(t, "a/b/c/d", &a), 0);
    assert_int_equal(unsub_shared(t, "g", "a/b/c", &a), 0);
    assert_int_equal(unsub_shared(t, "zz", "a/b", &a), 0);
    assert_int_equal(unsub(t, "a/b/c", &a), 1);
    assert_int_equal(unsub(t, "a/b/c", &a), 0);
    assert_int_equal(topic_tree_count(t), 5);
    assert_int_equal(topic_tree_node_count(t), 4); /* a, a/b, a/+, a/+/# */
    assert_int_equal(unsub(t, "a/+/#", &b), 1);
    assert_int_equal(topic_tree_node_count(t), 2);
    assert_int_equal(unsub(t, "a/b", &b), 1);
    assert_int_equal(topic_tree_node_count(t), 2); /* groups still hold a/b */
    assert_int_equal(unsub_shared(t, "g", "a/b", &a), 1);
    assert_int_equal(unsub_shared(t, "g", "a/b", &b), 1);
    assert_int_equal(unsub_shared(t, "h", "a/b", &b), 1);
    assert_int_equal(topic_tree_count(t), 0);
    assert_int_equal(topic_tree_node_count(t), 0);
    assert_int_equal(match(t, "a/b").n, 0);

    /* The tree works again after being emptied; free with subscriptions left in it. */
    assert_int_equal(sub(t, "+/#", &a, &QOS0), 1);
    assert_int_equal(sub_shared(t, "g", "x", &a), 1);
    assert_int_equal(match(t, "x").n, 2);
    topic_tree_free(t);
    topic_tree_free(NULL);
}

/* Shared subscriptions: one member per group per message, round-robin over online ones. */
static void test_shared_round_robin(void **state)
{
    (void)state;
    owner_t m[3] = {{0, true}, {1, true}, {2, true}};
    topic_tree_t *t = topic_tree_new(owner_online);
    for (int i = 0; i < 3; i++)
        assert_int_equal(sub_shared(t, "g", "s/+", &m[i]), 1);
    assert_int_equal(topic_tree_count(t), 3);
    int got[3] = {0};
    void *prev = NULL;
    for (int k = 0; k < 9; k++) {
        hits_t h = match(t, "s/x");
        assert_int_equal(h.n, 1);
        assert_true(h.shared[0]);
        assert_ptr_not_equal(h.owner[0], prev);
        prev = h.owner[0];
        got[((owner_t *)h.owner[0])->id]++;
    }
    assert_int_equal(got[0], 3);
    assert_int_equal(got[1], 3);
    assert_int_equal(got[2], 3);
    topic_tree_free(t);
}

static void test_shared_prefers_online(void **state)
{
    (void)state;
    owner_t m[4] = {{0, true}, {1, false}, {2, false}, {3, true}};
    topic_tree_t *t = topic_tree_new(owner_online);
    for (int i = 0; i < 4; i++)
        assert_int_equal(sub_shared(t, "g", "s", &m[i]), 1);
    int got[4] = {0};
    for (int k = 0; k < 10; k++) {
        hits_t h = match(t, "s");
        assert_int_equal(h.n, 1);
        got[((owner_t *)h.owner[0])->id]++;
    }
    /* Strict alternation between the two online members. */
    assert_int_equal(got[0], 5);
    assert_int_equal(got[3], 5);
    assert_int_equal(got[1] + got[2], 0);

    /* None online: still delivered, round-robin over all (their sessions queue it). */
    m[0].online = m[3].online = false;
    int off[4] = {0};
    for (int k = 0; k < 8; k++) {
        hits_t h = match(t, "s");
        assert_int_equal(h.n, 1);
        assert_true(h.shared[0]);
        off[((owner_t *)h.owner[0])->id]++;
    }
    for (int i = 0; i < 4; i++)
        assert_int_equal(off[i], 2);
    topic_tree_free(t);
}

static void test_shared_unsubscribe_members(void **state)
{
    (void)state;
    owner_t m[3] = {{0, true}, {1, true}, {2, true}};
    owner_t p = {9, true};
    topic_tree_t *t = topic_tree_new(owner_online);
    for (int i = 0; i < 3; i++)
        sub_shared(t, "g", "s/#", &m[i]);
    sub_shared(t, "other", "s/#", &m[0]);
    sub(t, "s/#", &p, &QOS0); /* a plain subscription on the same filter */
    assert_int_equal(topic_tree_count(t), 5);

    hits_t h = match(t, "s/t");
    assert_int_equal(h.n, 3); /* p, one of g, one of other */
    assert_int_equal(hits_of(&h, &p), 1);

    assert_int_equal(unsub_shared(t, "g", "s/#", &m[1]), 1);
    assert_int_equal(unsub_shared(t, "g", "s/#", &m[1]), 0);
    for (int k = 0; k < 6; k++) {
        h = match(t, "s");
        assert_int_equal(h.n, 3);
        for (size_t i = 0; i < h.n; i++)
            assert_ptr_not_equal(h.owner[i], &m[1]);
    }
    assert_int_equal(unsub_shared(t, "g", "s/#", &m[0]), 1);
    assert_int_equal(unsub_shared(t, "g", "s/#", &m[2]), 1);
    h = match(t, "s/t");
    assert_int_equal(h.n, 2);
    assert_int_equal(hits_of(&h, &m[0]), 1); /* via "other" */
    assert_int_equal(hits_of(&h, &p), 1);
    assert_int_equal(topic_tree_count(t), 2);
    topic_tree_free(t);
}

/* A topic may be 65535 bytes: thousands of levels must neither overflow the stack nor be slow. */
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

static void test_deep_topics(void **state)
{
    (void)state;
    enum { LEVELS = 30000 };
    owner_t a = {1, true}, b = {2, true}, c = {3, true}, d = {4, true}, e = {5, true};
    topic_tree_t *t = topic_tree_new(owner_online);
    char *topic = repeat_levels("a", LEVELS, "");
    char *plus = repeat_levels("+", LEVELS, "");
    char *hash = repeat_levels("a", LEVELS / 2, "#");
    char *mixed = repeat_levels("+", LEVELS - 1, "#");
    char *empty = repeat_levels("", LEVELS, ""); /* 29999 slashes */
    assert_int_equal(strlen(topic), 2 * LEVELS - 1);
    assert_int_equal(strlen(empty), LEVELS - 1);
    assert_int_equal(sub(t, topic, &a, &QOS0), 1);
    assert_int_equal(sub(t, plus, &b, &QOS0), 1);
    assert_int_equal(sub(t, hash, &c, &QOS0), 1);
    assert_int_equal(sub(t, mixed, &d, &QOS0), 1);
    assert_int_equal(sub(t, empty, &e, &QOS0), 1);

    hits_t h = match(t, topic);
    assert_int_equal(h.n, 4);
    assert_int_equal(hits_of(&h, &e), 0);
    h = match(t, empty);
    assert_int_equal(h.n, 3); /* empty, plus, mixed */
    assert_int_equal(hits_of(&h, &e), 1);
    assert_int_equal(hits_of(&h, &b), 1);
    assert_int_equal(hits_of(&h, &d), 1);

    assert_int_equal(unsub(t, topic, &a), 1);
    assert_int_equal(unsub(t, plus, &b), 1);
    assert_int_equal(unsub(t, hash, &c), 1);
    assert_int_equal(unsub(t, mixed, &d), 1);
    assert_int_equal(unsub(t, empty, &e), 1);
    assert_int_equal(topic_tree_node_count(t), 0);
    /* Freed while deep: the teardown is iterative too. */
    assert_int_equal(sub(t, topic, &a, &QOS0), 1);
    assert_int_equal(sub_shared(t, "g", plus, &a), 1);
    topic_tree_free(t);
    free(topic);
    free(plus);
    free(hash);
    free(mixed);
    free(empty);
}

/* Several threads match while one subscribes and unsubscribes: run this under
 * -fsanitize=thread. A permanent subscription must be seen by every match. */
typedef struct mt {
    topic_tree_t *t;
    owner_t *fixed;
    atomic_int stop;
    atomic_long matches;
} mt_t;

static void count_fixed(void *ctx, void *owner, const sub_opts_t *opts, bool shared)
{
    size_t *n = ctx;
    (void)opts;
    (void)shared;
    if (((owner_t *)owner)->id == 1000)
        (*n)++;
}

static void *matcher(void *arg)
{
    mt_t *m = arg;
    static const char *const topics[] = {"a/b/c", "a/x/c", "a/b", "$SYS/a", "z"};
    for (unsigned k = 0; !atomic_load(&m->stop); k++) {
        const char *tp = topics[k % 5];
        size_t fixed = 0;
        topic_tree_match(m->t, (const uint8_t *)tp, strlen(tp), count_fixed, &fixed);
        if (k % 5 < 3 && fixed != 1) {
            fprintf(stderr, "fixed subscription missed on %s\n", tp);
            abort();
        }
        atomic_fetch_add(&m->matches, 1);
    }
    return NULL;
}

static void test_concurrent(void **state)
{
    (void)state;
    static const char *const filters[] = {"a/b/c", "a/+/c", "a/#", "+/b/+", "#", "a/b"};
    owner_t fixed = {1000, true};
    owner_t o[8];
    mt_t m = {.t = topic_tree_new(owner_online), .fixed = &fixed};
    atomic_init(&m.stop, 0);
    atomic_init(&m.matches, 0);
    for (int i = 0; i < 8; i++)
        o[i] = (owner_t){i, i % 2 == 0};
    assert_int_equal(sub(m.t, "a/#", &fixed, &QOS0), 1);
    pthread_t th[4];
    for (int i = 0; i < 4; i++)
        assert_int_equal(pthread_create(&th[i], NULL, matcher, &m), 0);
    while (atomic_load(&m.matches) < 100)
        sched_yield(); /* let the matchers start before the writes */
    for (int round = 0; round < 2000; round++) {
        if (round % 64 == 0)
            sched_yield();
        for (int i = 0; i < 6; i++) {
            owner_t *w = &o[(round + i) % 8];
            if (i % 2)
                sub_shared(m.t, "g", filters[i], w);
            else
                sub(m.t, filters[i], w, &QOS1);
        }
        for (int i = 0; i < 6; i++) {
            owner_t *w = &o[(round + i) % 8];
            if (i % 2)
                assert_int_equal(unsub_shared(m.t, "g", filters[i], w), 1);
            else
                assert_int_equal(unsub(m.t, filters[i], w), 1);
        }
    }
    atomic_store(&m.stop, 1);
    for (int i = 0; i < 4; i++)
        pthread_join(th[i], NULL);
    assert_true(atomic_load(&m.matches) > 0);
    assert_int_equal(topic_tree_count(m.t), 1);
    assert_int_equal(topic_tree_node_count(m.t), 2);
    topic_tree_free(m.t);
}

/* Concurrent matchers on a shared group spread over its members. */
typedef struct spread {
    topic_tree_t *t;
    atomic_int got[4];
} spread_t;

static void count_member(void *ctx, void *owner, const sub_opts_t *opts, bool shared)
{
    spread_t *s = ctx;
    (void)opts;
    assert_true(shared);
    atomic_fetch_add(&s->got[((owner_t *)owner)->id], 1);
}

static void *spread_matcher(void *arg)
{
    spread_t *s = arg;
    for (int k = 0; k < 4000; k++)
        topic_tree_match(s->t, (const uint8_t *)"q", 1, count_member, s);
    return NULL;
}

static void test_concurrent_shared_spread(void **state)
{
    (void)state;
    owner_t m[4] = {{0, true}, {1, true}, {2, false}, {3, true}};
    spread_t s = {.t = topic_tree_new(owner_online)};
    for (int i = 0; i < 4; i++) {
        atomic_init(&s.got[i], 0);
        sub_shared(s.t, "g", "q", &m[i]);
    }
    pthread_t th[4];
    for (int i = 0; i < 4; i++)
        assert_int_equal(pthread_create(&th[i], NULL, spread_matcher, &s), 0);
    for (int i = 0; i < 4; i++)
        pthread_join(th[i], NULL);
    /* The CAS on the cursor makes it exact: 16000 messages over 3 online members. */
    assert_int_equal(atomic_load(&s.got[2]), 0);
    int total = atomic_load(&s.got[0]) + atomic_load(&s.got[1]) + atomic_load(&s.got[3]);
    assert_int_equal(total, 16000);
    for (int i = 0; i < 4; i++)
        if (i != 2)
            assert_in_range(atomic_load(&s.got[i]), 5333, 5334);
    topic_tree_free(s.t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_match_table),
        cmocka_unit_test(test_match_table_combined),
        cmocka_unit_test(test_match_random),
        cmocka_unit_test(test_replace_options),
        cmocka_unit_test(test_overlapping_filters),
        cmocka_unit_test(test_counts_and_pruning),
        cmocka_unit_test(test_shared_round_robin),
        cmocka_unit_test(test_shared_prefers_online),
        cmocka_unit_test(test_shared_unsubscribe_members),
        cmocka_unit_test(test_deep_topics),
        cmocka_unit_test(test_concurrent),
        cmocka_unit_test(test_concurrent_shared_spread),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
