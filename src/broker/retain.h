/* retain.h - the retained message store: the last retained message of each topic.
 *
 * A tree of topic levels keyed like the subscription tree, so that a new subscription's
 * filter (with '+' and '#') finds its retained messages without scanning every topic.
 * Thread-safe with a read/write lock. Messages are shared (message_ref) with the store.
 */
#ifndef MIDGE_RETAIN_H
#define MIDGE_RETAIN_H

#include <stddef.h>
#include <stdint.h>

#include "message.h"

typedef struct retain_store retain_store_t;

retain_store_t *retain_new(void);
void retain_free(retain_store_t *rs);

/* Store msg as the retained message of its topic, replacing any; a message with an empty
 * payload deletes the topic's retained message instead (MQTT-3.3.1-6, -7). The store takes
 * its own reference. Returns 0, or -1 when out of memory. */
int retain_set(retain_store_t *rs, message_t *msg);

/* Call fn for each retained message whose topic matches filter (not a $share filter; a
 * leading wildcard does not match '$' topics), holding the read lock: fn takes its own
 * reference (message_ref) to keep a message. Expired messages (now_ms) are skipped. */
typedef void (*retain_match_fn)(void *ctx, message_t *msg);
void retain_match(retain_store_t *rs, const uint8_t *filter, size_t filter_len, int64_t now_ms,
                  retain_match_fn fn, void *ctx);

/* Number of retained messages. */
size_t retain_count(retain_store_t *rs);

/* Number of topic-level nodes in the store, for memory statistics (and to check pruning). */
size_t retain_node_count(retain_store_t *rs);

#endif
