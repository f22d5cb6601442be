/* topic_tree.c - the subscription tree: which sessions want a topic (see topic_tree.h).
 *
 * SUBSCRIBE and UNSUBSCRIBE edit it under the write lock; every PUBLISH matches its topic
 * against it under the read lock, so many I/O threads match at once. A match allocates
 * nothing and uses constant stack however deep the topic: it walks the tree with parent
 * pointers instead of recursion (a topic may have 32768 levels).
 */
#include "topic_tree.h"

#include <assert.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "rwlock.h"
#include "topic_levels.h"

/* A failed allocation inside uthash must fail the subscribe, not exit the broker: the add is
 * then rolled back and leaves the element's hh.tbl NULL, which the callers check. */
#define HASH_NONFATAL_OOM 1
#include <uthash.h>

/* uthash starts every table at 32 buckets (about 600 bytes). Most nodes have a handful of
 * children or subscribers, so that made a plain subscription cost over 2 KB; start small and
 * split buckets sooner instead. (Redefined after the include: the macros read them on use.) */
#undef HASH_INITIAL_NUM_BUCKETS
#undef HASH_INITIAL_NUM_BUCKETS_LOG2
#undef HASH_BKT_CAPACITY_THRESH
#define HASH_INITIAL_NUM_BUCKETS 4U
#define HASH_INITIAL_NUM_BUCKETS_LOG2 2U
#define HASH_BKT_CAPACITY_THRESH 4U

typedef struct tt_sub {
    void *owner; /* the key: an owner subscribes at most once per filter */
    sub_opts_t opts;
    UT_hash_handle hh;
} tt_sub_t;

typedef struct tt_member {
    void *owner;
    sub_opts_t opts;
} tt_member_t;

/* A shared-subscription group ($share/NAME/filter). Members are an array so that a match can
 * pick "the next one" by index; the cursor is advanced by matchers under the read lock, hence
 * atomic. Invariant: n >= 1 (an emptied group is freed). */
typedef struct tt_group {
    UT_hash_handle hh; /* in node->groups, keyed by name */
    tt_member_t *members;
    size_t n, cap;
    atomic_size_t cursor;
    size_t name_len;
    uint8_t name[];
} tt_group_t;

/* One topic level. '+' and '#' children are kept out of the children hash so that a match
 * never has to hash them, and so that a topic level spelled "+" cannot reach them. */
typedef struct tt_node {
    UT_hash_handle hh; /* in parent->children, keyed by level */
    struct tt_node *parent;
    struct tt_node *children; /* uthash head of literal levels */
    struct tt_node *plus;
    struct tt_node *hash;
    tt_sub_t *subs;     /* uthash head, keyed by owner */
    tt_group_t *groups; /* uthash head, keyed by group name */
    size_t level_len;
    uint8_t level[];
} tt_node_t;

struct topic_tree {
    pthread_rwlock_t lock;
    tt_node_t *root; /* the level before the first; holds no subscription itself */
    bool (*is_online)(void *owner);
    atomic_size_t count; /* plain subscriptions + shared members; written under the lock */
    atomic_size_t nodes; /* nodes besides the root */
};

static tt_node_t *node_alloc(const uint8_t *level, size_t level_len)
{
    tt_node_t *n = calloc(1, sizeof(*n) + level_len);
    if (n && level_len)
        memcpy(n->level, level, level_len);
    if (n)
        n->level_len = level_len;
    return n;
}

static bool node_is_empty(const tt_node_t *n)
{
    return !n->subs && !n->groups && !n->children && !n->plus && !n->hash;
}

static void group_free(tt_group_t *g)
{
    free(g->members);
    free(g);
}

/* Frees n and what it holds, but not its children (the caller has removed them). */
static void node_free(tt_node_t *n)
{
    tt_sub_t *s, *stmp;
    HASH_ITER(hh, n->subs, s, stmp)
    {
        HASH_DEL(n->subs, s);
        free(s);
    }
    tt_group_t *g, *gtmp;
    HASH_ITER(hh, n->groups, g, gtmp)
    {
        HASH_DEL(n->groups, g);
        group_free(g);
    }
    free(n);
}

static void node_detach(tt_node_t *parent, tt_node_t *child)
{
    if (parent->plus == child)
        parent->plus = NULL;
    else if (parent->hash == child)
        parent->hash = NULL;
    else
        HASH_DEL(parent->children, child);
}

/* Remove n and its ancestors while they hold nothing; the root stays. */
static void prune(topic_tree_t *t, tt_node_t *n)
{
    while (n != t->root && node_is_empty(n)) {
        tt_node_t *parent = n->parent;
        node_detach(parent, n);
        node_free(n);
        atomic_fetch_sub_explicit(&t->nodes, 1, memory_order_relaxed);
        n = parent;
    }
}

static tt_node_t *child_find(const tt_node_t *n, const uint8_t *level, size_t len)
{
    if (topic_level_is(level, len, '+'))
        return n->plus;
    if (topic_level_is(level, len, '#'))
        return n->hash;
    tt_node_t *c = NULL;
    if (n->children)
        HASH_FIND(hh, n->children, len ? level : n->level, len, c);
    return c;
}

static tt_node_t *child_get(topic_tree_t *t, tt_node_t *n, const uint8_t *level, size_t len)
{
    tt_node_t *c = child_find(n, level, len);
    if (c)
        return c;
    c = node_alloc(level, len);
    if (!c)
        return NULL;
    c->parent = n;
    if (topic_level_is(level, len, '+')) {
        n->plus = c;
    } else if (topic_level_is(level, len, '#')) {
        n->hash = c;
    } else {
        HASH_ADD_KEYPTR(hh, n->children, c->level, c->level_len, c);
        if (!c->hh.tbl) {
            free(c);
            return NULL;
        }
    }
    atomic_fetch_add_explicit(&t->nodes, 1, memory_order_relaxed);
    return c;
}

/* The node of filter, or NULL when it has none. */
static tt_node_t *node_lookup(topic_tree_t *t, const uint8_t *filter, size_t filter_len)
{
    tt_node_t *n = t->root;
    size_t pos = 0;
    for (;;) {
        size_t end = topic_level_end(filter, filter_len, pos);
        n = child_find(n, filter + pos, end - pos);
        if (!n || end >= filter_len)
            return n;
        pos = end + 1;
    }
}

/**
 * Create a tree. is_online may be NULL, in which case every shared-group member counts as
 * online. Returns NULL when out of memory.
 */
topic_tree_t *topic_tree_new(bool (*is_online)(void *owner))
{
    topic_tree_t *t = calloc(1, sizeof(*t));
    if (!t)
        return NULL;
    t->root = node_alloc(NULL, 0);
    if (!t->root)
        goto fail;
    /* Matching never stops on a busy broker; a reader-preferring lock (glibc's default)
     * would starve SUBSCRIBE forever. */
    if (rwlock_init_writer_preferring(&t->lock) != 0)
        goto fail;
    t->is_online = is_online;
    atomic_init(&t->count, 0);
    atomic_init(&t->nodes, 0);
    return t;
fail:
    free(t->root);
    free(t);
    return NULL;
}

/**
 * Free the tree and every subscription in it (the owners are not touched). Iterative, so a
 * tree thousands of levels deep cannot overflow the stack. NULL is allowed.
 */
void topic_tree_free(topic_tree_t *t)
{
    if (!t)
        return;
    tt_node_t *n = t->root;
    while (n) {
        tt_node_t *child = n->children ? n->children : n->plus ? n->plus : n->hash;
        if (child) {
            n = child;
            continue;
        }
        tt_node_t *parent = n->parent;
        if (parent)
            node_detach(parent, n);
        node_free(n);
        n = parent;
    }
    pthread_rwlock_destroy(&t->lock);
    free(t);
}

static int group_add(tt_node_t *n, const uint8_t *group, size_t group_len, void *owner,
                     const sub_opts_t *opts)
{
    tt_group_t *g = NULL;
    HASH_FIND(hh, n->groups, group, group_len, g);
    if (g) {
        for (size_t i = 0; i < g->n; i++) {
            if (g->members[i].owner == owner) {
                g->members[i].opts = *opts;
                return 0;
            }
        }
    } else {
        g = calloc(1, sizeof(*g) + group_len);
        if (!g)
            return -1;
        memcpy(g->name, group, group_len);
        g->name_len = group_len;
        atomic_init(&g->cursor, 0);
        HASH_ADD_KEYPTR(hh, n->groups, g->name, g->name_len, g);
        if (!g->hh.tbl) {
            free(g);
            return -1;
        }
    }
    if (g->n == g->cap) {
        size_t cap = g->cap ? g->cap * 2 : 4;
        tt_member_t *m = realloc(g->members, cap * sizeof(*m));
        if (!m) {
            if (g->n == 0) {
                HASH_DEL(n->groups, g);
                group_free(g);
            }
            return -1;
        }
        g->members = m;
        g->cap = cap;
    }
    g->members[g->n].owner = owner;
    g->members[g->n].opts = *opts;
    g->n++;
    return 1;
}

static int plain_add(tt_node_t *n, void *owner, const sub_opts_t *opts)
{
    tt_sub_t *s = NULL;
    HASH_FIND_PTR(n->subs, &owner, s);
    if (s) {
        s->opts = *opts;
        return 0;
    }
    s = calloc(1, sizeof(*s));
    if (!s)
        return -1;
    s->owner = owner;
    s->opts = *opts;
    HASH_ADD_PTR(n->subs, owner, s);
    if (!s->hh.tbl) {
        free(s);
        return -1;
    }
    return 1;
}

/**
 * Add or replace owner's subscription (see topic_tree.h). A subscription is shared when
 * group_len > 0 (MQTT-4.8.2-1: a share name is at least one character). The same owner may
 * hold a plain subscription and memberships of several groups on one filter; each is separate.
 * Runs in O(levels) plus O(group size) for a shared one.
 */
int topic_tree_subscribe(topic_tree_t *t, const uint8_t *filter, size_t filter_len,
                         const uint8_t *group, size_t group_len, void *owner,
                         const sub_opts_t *opts)
{
    assert(t && (filter || !filter_len) && (group || !group_len) && opts);
    int rc = -1;
    pthread_rwlock_wrlock(&t->lock);
    tt_node_t *n = t->root;
    size_t pos = 0;
    for (;;) {
        size_t end = topic_level_end(filter, filter_len, pos);
        tt_node_t *c = child_get(t, n, filter + pos, end - pos);
        if (!c)
            goto out;
        n = c;
        if (end >= filter_len)
            break;
        pos = end + 1;
    }
    rc = group_len ? group_add(n, group, group_len, owner, opts) : plain_add(n, owner, opts);
    if (rc == 1)
        atomic_fetch_add_explicit(&t->count, 1, memory_order_relaxed);
out:
    if (rc < 0)
        prune(t, n); /* the nodes created for a subscription that failed */
    pthread_rwlock_unlock(&t->lock);
    return rc;
}

static int group_remove(tt_node_t *n, const uint8_t *group, size_t group_len, void *owner)
{
    tt_group_t *g = NULL;
    HASH_FIND(hh, n->groups, group, group_len, g);
    if (!g)
        return 0;
    for (size_t i = 0; i < g->n; i++) {
        if (g->members[i].owner != owner)
            continue;
        /* Keep the order: the round-robin goes on from where it was for the others. */
        memmove(&g->members[i], &g->members[i + 1], (g->n - i - 1) * sizeof(g->members[0]));
        g->n--;
        if (g->n == 0) {
            HASH_DEL(n->groups, g);
            group_free(g);
        }
        return 1;
    }
    return 0;
}

/**
 * Remove owner's subscription to filter (in group when group_len > 0), and the nodes left
 * empty by it. Returns 1 when removed, 0 when there was none.
 */
int topic_tree_unsubscribe(topic_tree_t *t, const uint8_t *filter, size_t filter_len,
                           const uint8_t *group, size_t group_len, void *owner)
{
    assert(t && (filter || !filter_len) && (group || !group_len));
    int rc = 0;
    pthread_rwlock_wrlock(&t->lock);
    tt_node_t *n = node_lookup(t, filter, filter_len);
    if (n) {
        if (group_len) {
            rc = group_remove(n, group, group_len, owner);
        } else {
            tt_sub_t *s = NULL;
            HASH_FIND_PTR(n->subs, &owner, s);
            if (s) {
                HASH_DEL(n->subs, s);
                free(s);
                rc = 1;
            }
        }
        if (rc)
            atomic_fetch_sub_explicit(&t->count, 1, memory_order_relaxed);
        prune(t, n);
    }
    pthread_rwlock_unlock(&t->lock);
    return rc;
}

/* The member of g that receives this message: round-robin over the online members, starting
 * at the cursor; when none is online, the next member anyway (its session queues the message).
 * The cursor moves past the chosen member with a CAS, so concurrent matchers under the read
 * lock each take a different member rather than all landing on the same one. */
static const tt_member_t *group_pick(const topic_tree_t *t, tt_group_t *g)
{
    const size_t n = g->n;
    assert(n >= 1);
    size_t cur = atomic_load_explicit(&g->cursor, memory_order_relaxed);
    for (;;) {
        size_t start = cur % n, k = 0;
        if (t->is_online && n > 1) {
            while (k < n && !t->is_online(g->members[(start + k) % n].owner))
                k++;
            if (k == n)
                k = 0;
        }
        if (atomic_compare_exchange_weak_explicit(&g->cursor, &cur, cur + k + 1,
                                                  memory_order_relaxed, memory_order_relaxed))
            return &g->members[(start + k) % n];
    }
}

static void report(const topic_tree_t *t, const tt_node_t *n, topic_tree_match_fn fn, void *ctx)
{
    for (const tt_sub_t *s = n->subs; s; s = s->hh.next)
        fn(ctx, s->owner, &s->opts, false);
    for (tt_group_t *g = n->groups; g; g = g->hh.next) {
        const tt_member_t *m = group_pick(t, g);
        fn(ctx, m->owner, &m->opts, true);
    }
}

/**
 * Report every subscription whose filter matches topic (see topic_tree.h). The topic must be
 * a valid topic name (no wildcards). fn is called under the read lock: it must not call any
 * topic_tree function, and opts is valid only during the call. Allocates nothing.
 */
void topic_tree_match(topic_tree_t *t, const uint8_t *topic, size_t topic_len,
                      topic_tree_match_fn fn, void *ctx)
{
    assert(t && (topic || !topic_len) && fn);
    /* MQTT-4.7.2-1: '+' or '#' as the first level does not match a topic starting with '$'. */
    const bool dollar = topic_len > 0 && topic[0] == '$';
    pthread_rwlock_rdlock(&t->lock);
    tt_node_t *const root = t->root;
    /* A depth-first walk of the pairs (node, level): node at depth d has matched the levels
     * before pos, the offset of level d (topic_len + 1 once all are matched). At each level,
     * '#' is reported on the spot, then the exact child is visited, then '+'. Going back up,
     * the parent's pos is found by scanning the topic backwards, so no stack is needed; a
     * node left for its parent was the exact child unless it is the parent's '+'. */
    tt_node_t *n = root;
    size_t pos = 0;
    bool down = true;
    for (;;) {
        if (down) {
            if (pos > topic_len) {
                report(t, n, fn, ctx);
                if (n->hash)
                    report(t, n->hash, fn, ctx); /* MQTT-4.7.1-2: "a/#" matches "a" */
                down = false;
                continue;
            }
            const bool wild = !(dollar && n == root);
            if (wild && n->hash)
                report(t, n->hash, fn, ctx);
            size_t end = topic_level_end(topic, topic_len, pos);
            tt_node_t *c = NULL;
            if (n->children)
                HASH_FIND(hh, n->children, end > pos ? topic + pos : n->level, end - pos, c);
            if (!c && wild)
                c = n->plus;
            if (c) {
                n = c;
                pos = end + 1;
            } else {
                down = false;
            }
            continue;
        }
        if (n == root)
            break;
        tt_node_t *from = n;
        n = n->parent;
        size_t end = pos - 1;
        pos = topic_level_start(topic, end);
        if (from != n->plus && n->plus && !(dollar && n == root)) {
            n = n->plus;
            pos = end + 1;
            down = true;
        }
    }
    pthread_rwlock_unlock(&t->lock);
}

/** Number of subscriptions (plain and shared members). Lock-free. */
size_t topic_tree_count(topic_tree_t *t)
{
    return atomic_load_explicit(&t->count, memory_order_relaxed);
}

/** Number of topic-level nodes in the tree (for memory statistics and tests). Lock-free. */
size_t topic_tree_node_count(topic_tree_t *t)
{
    return atomic_load_explicit(&t->nodes, memory_order_relaxed);
}
