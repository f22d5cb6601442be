/* topic_tree.h - the subscription tree: which sessions want a topic.
 *
 * A tree of topic levels; each node holds the plain subscriptions of its filter and its
 * shared-subscription groups ($share/GROUP/FILTER). Matching walks '+' and '#' branches,
 * never letting a leading wildcard match a topic that starts with '$' (MQTT-4.7.2-1).
 * Thread-safe: a read/write lock lets every I/O thread match at once; subscribe and
 * unsubscribe take it for writing. Subscribers are opaque `owner` pointers (sessions).
 */
#ifndef MIDGE_TOPIC_TREE_H
#define MIDGE_TOPIC_TREE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct sub_opts {
    uint8_t qos;             /* maximum QoS granted */
    bool no_local;           /* 5.0: not to the session that published it */
    bool retain_as_published;
    uint8_t retain_handling; /* 0, 1, 2 (used by the caller on subscribe) */
    uint32_t sub_id;         /* 5.0 subscription identifier, 0 for none */
} sub_opts_t;

typedef struct topic_tree topic_tree_t;

/* is_online tells whether an owner has a live connection: shared-group members that are
 * online are preferred (round-robin); when none is, an offline member with a session is
 * chosen so that its session queues the message. */
topic_tree_t *topic_tree_new(bool (*is_online)(void *owner));
void topic_tree_free(topic_tree_t *t);

/* Add owner's subscription to filter, or replace its options if it has one already.
 * group/group_len name the share group of a $share subscription (filter is then the part
 * after the group), or are NULL/0. Returns 1 when added, 0 when replaced, -1 when out of
 * memory. The filter must already be valid (mqtt_topic_filter_check). */
int topic_tree_subscribe(topic_tree_t *t, const uint8_t *filter, size_t filter_len,
                         const uint8_t *group, size_t group_len, void *owner,
                         const sub_opts_t *opts);

/* Remove owner's subscription. Returns 1 when removed, 0 when there was none. */
int topic_tree_unsubscribe(topic_tree_t *t, const uint8_t *filter, size_t filter_len,
                           const uint8_t *group, size_t group_len, void *owner);

/* Call fn once per matching plain subscription and once per matching shared group (with
 * the member chosen for this message), holding the read lock: fn must not call back into
 * the tree. The same owner may be reported more than once when several of its filters
 * match; merging is the caller's choice. */
typedef void (*topic_tree_match_fn)(void *ctx, void *owner, const sub_opts_t *opts,
                                    bool shared);
void topic_tree_match(topic_tree_t *t, const uint8_t *topic, size_t topic_len,
                      topic_tree_match_fn fn, void *ctx);

/* Number of subscriptions (plain and shared members) in the tree. */
size_t topic_tree_count(topic_tree_t *t);

/* Number of topic-level nodes in the tree, for memory statistics (and to check pruning). */
size_t topic_tree_node_count(topic_tree_t *t);

#endif
