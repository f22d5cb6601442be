/* retain.c - the retained message store (see retain.h).
 *
 * A PUBLISH with the retain flag sets or deletes its topic's message under the write lock; a
 * new subscription walks its filter through the same tree of levels under the read lock to
 * find the messages to send. Walks use parent pointers rather than recursion, so topics
 * thousands of levels deep cost no stack and matching allocates nothing.
 */
#include "retain.h"

#include <assert.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "rwlock.h"
#include "topic_levels.h"

/* A failed allocation inside uthash must fail retain_set, not exit the broker: the add is
 * then rolled back and leaves the element's hh.tbl NULL, which the caller checks. */
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

/* One topic level. A topic name has no wildcards, so every level, "+" included, is literal. */
typedef struct rt_node {
    UT_hash_handle hh; /* in parent->children, keyed by level */
    struct rt_node *parent;
    struct rt_node *children; /* uthash head */
    message_t *msg;           /* the retained message of this topic (a reference), or NULL */
    size_t level_len;
    uint8_t level[];
} rt_node_t;

struct retain_store {
    pthread_rwlock_t lock;
    rt_node_t *root;     /* the level before the first; never holds a message */
    atomic_size_t count; /* messages; written under the lock */
    atomic_size_t nodes; /* nodes besides the root */
};

static rt_node_t *node_alloc(const uint8_t *level, size_t level_len)
{
    rt_node_t *n = calloc(1, sizeof(*n) + level_len);
    if (n && level_len)
        memcpy(n->level, level, level_len);
    if (n)
        n->level_len = level_len;
    return n;
}

/* Remove n and its ancestors while they hold nothing; the root stays. */
static void prune(retain_store_t *rs, rt_node_t *n)
{
    while (n != rs->root && !n->msg && !n->children) {
        rt_node_t *parent = n->parent;
        HASH_DEL(parent->children, n);
        free(n);
        atomic_fetch_sub_explicit(&rs->nodes, 1, memory_order_relaxed);
        n = parent;
    }
}

static rt_node_t *child_find(const rt_node_t *n, const uint8_t *level, size_t len)
{
    rt_node_t *c = NULL;
    if (n->children)
        HASH_FIND(hh, n->children, len ? level : n->level, len, c);
    return c;
}

/**
 * Create an empty store, or return NULL when out of memory.
 */
retain_store_t *retain_new(void)
{
    retain_store_t *rs = calloc(1, sizeof(*rs));
    if (!rs)
        return NULL;
    rs->root = node_alloc(NULL, 0);
    if (!rs->root)
        goto fail;
    /* Subscriptions arrive all the time on a busy broker; a reader-preferring lock (glibc's
     * default) could starve retained PUBLISHes. */
    if (rwlock_init_writer_preferring(&rs->lock) != 0)
        goto fail;
    atomic_init(&rs->count, 0);
    atomic_init(&rs->nodes, 0);
    return rs;
fail:
    free(rs->root);
    free(rs);
    return NULL;
}

/**
 * Free the store, dropping its reference to every message. Iterative, so deep topics cannot
 * overflow the stack. NULL is allowed.
 */
void retain_free(retain_store_t *rs)
{
    if (!rs)
        return;
    rt_node_t *n = rs->root;
    while (n) {
        if (n->children) {
            n = n->children;
            continue;
        }
        rt_node_t *parent = n->parent;
        if (parent)
            HASH_DEL(parent->children, n);
        message_unref(n->msg);
        free(n);
        n = parent;
    }
    pthread_rwlock_destroy(&rs->lock);
    free(rs);
}

/**
 * Set or delete the retained message of msg's topic (see retain.h). The old message, if any,
 * loses the store's reference. Deleting a topic that has none is not an error.
 */
int retain_set(retain_store_t *rs, message_t *msg)
{
    assert(rs && msg);
    const uint8_t *topic = msg->topic;
    const size_t len = msg->topic_len;
    /* MQTT-3.3.1-6, -7: an empty payload removes the retained message; nothing is stored. */
    const bool del = msg->payload_len == 0;
    int rc = 0;
    pthread_rwlock_wrlock(&rs->lock);
    rt_node_t *n = rs->root;
    size_t pos = 0;
    for (;;) {
        size_t end = topic_level_end(topic, len, pos);
        rt_node_t *c = child_find(n, topic + pos, end - pos);
        if (!c && del)
            goto out; /* nothing retained there */
        if (!c) {
            c = node_alloc(topic + pos, end - pos);
            if (!c)
                goto oom;
            c->parent = n;
            HASH_ADD_KEYPTR(hh, n->children, c->level, c->level_len, c);
            if (!c->hh.tbl) {
                free(c);
                goto oom;
            }
            atomic_fetch_add_explicit(&rs->nodes, 1, memory_order_relaxed);
        }
        n = c;
        if (end >= len)
            break;
        pos = end + 1;
    }
    if (del) {
        if (n->msg) {
            message_unref(n->msg);
            n->msg = NULL;
            atomic_fetch_sub_explicit(&rs->count, 1, memory_order_relaxed);
            prune(rs, n);
        }
    } else {
        if (n->msg)
            message_unref(n->msg);
        else
            atomic_fetch_add_explicit(&rs->count, 1, memory_order_relaxed);
        n->msg = message_ref(msg);
    }
out:
    pthread_rwlock_unlock(&rs->lock);
    return rc;
oom:
    prune(rs, n); /* the nodes created for this topic */
    rc = -1;
    goto out;
}

/* At the first level a wildcard does not reach topics starting with '$' (MQTT-4.7.2-1). */
static bool skipped(const rt_node_t *c, bool no_dollar)
{
    return no_dollar && c->level_len > 0 && c->level[0] == '$';
}

static rt_node_t *first_child(const rt_node_t *n, bool no_dollar)
{
    rt_node_t *c = n->children;
    while (c && skipped(c, no_dollar))
        c = c->hh.next;
    return c;
}

static rt_node_t *next_sibling(const rt_node_t *c, bool no_dollar)
{
    rt_node_t *s = c->hh.next;
    while (s && skipped(s, no_dollar))
        s = s->hh.next;
    return s;
}

static void report(const rt_node_t *n, int64_t now_ms, retain_match_fn fn, void *ctx)
{
    message_t *m = n->msg;
    if (m && !(m->has_expiry && m->expire_at_ms <= now_ms))
        fn(ctx, m);
}

/* '#': n's own message (the parent level, MQTT-4.7.1-2) and every one below it, in a
 * pre-order walk that climbs back through parent pointers. */
static void report_subtree(const rt_node_t *top, bool no_dollar, int64_t now_ms, retain_match_fn fn,
                           void *ctx)
{
    report(top, now_ms, fn, ctx);
    const rt_node_t *n = first_child(top, no_dollar);
    while (n) {
        report(n, now_ms, fn, ctx);
        if (n->children) {
            n = n->children;
            continue;
        }
        const rt_node_t *next = NULL;
        while (n != top && !next) {
            next = next_sibling(n, no_dollar && n->parent == top);
            n = n->parent;
        }
        n = next;
    }
}

/**
 * Report every unexpired retained message whose topic matches filter (see retain.h). fn runs
 * under the read lock: it must not call any retain_ function. Allocates nothing.
 */
void retain_match(retain_store_t *rs, const uint8_t *filter, size_t filter_len, int64_t now_ms,
                  retain_match_fn fn, void *ctx)
{
    assert(rs && (filter || !filter_len) && fn);
    pthread_rwlock_rdlock(&rs->lock);
    rt_node_t *const root = rs->root;
    /* A depth-first walk of the pairs (node, filter level): node at depth d has matched the
     * filter levels before pos (filter_len + 1 once all are matched). An exact level has one
     * candidate child, '+' iterates the children, '#' reports the whole subtree. Going back up,
     * the parent's level is found by scanning the filter backwards, so no stack is needed: if
     * it is '+', the walk moves on to the next sibling at the same pos. */
    rt_node_t *n = root;
    size_t pos = 0;
    bool down = true;
    for (;;) {
        if (down) {
            down = false;
            if (pos > filter_len) {
                report(n, now_ms, fn, ctx);
                continue;
            }
            size_t end = topic_level_end(filter, filter_len, pos);
            const uint8_t *level = filter + pos;
            rt_node_t *c;
            if (topic_level_is(level, end - pos, '#')) {
                report_subtree(n, n == root, now_ms, fn, ctx);
                continue;
            } else if (topic_level_is(level, end - pos, '+')) {
                c = first_child(n, n == root);
            } else {
                c = child_find(n, level, end - pos);
            }
            if (c) {
                n = c;
                pos = end + 1;
                down = true;
            }
            continue;
        }
        if (n == root)
            break;
        size_t end = pos - 1;
        size_t ppos = topic_level_start(filter, end);
        if (topic_level_is(filter + ppos, end - ppos, '+')) {
            rt_node_t *s = next_sibling(n, n->parent == root);
            if (s) {
                n = s;
                down = true;
                continue;
            }
        }
        n = n->parent;
        pos = ppos;
    }
    pthread_rwlock_unlock(&rs->lock);
}

/** Number of retained messages (expired ones included until replaced or deleted). */
size_t retain_count(retain_store_t *rs)
{
    return atomic_load_explicit(&rs->count, memory_order_relaxed);
}

/** Number of topic-level nodes in the store (for memory statistics and tests). Lock-free. */
size_t retain_node_count(retain_store_t *rs)
{
    return atomic_load_explicit(&rs->nodes, memory_order_relaxed);
}
