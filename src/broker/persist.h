/* persist.h - the broker's side of persistence: what goes to the store (src/store) and
 * when, restoring the broker's state at start-up, and completing the acknowledgements that
 * wait for a commit.
 *
 * Every hook is called only when broker.store is set (persistence true), so the in-memory
 * broker pays one pointer test. Hooks run on the I/O threads and only queue events; the
 * store thread does the SQLite work.
 */
#ifndef MIDGE_PERSIST_H
#define MIDGE_PERSIST_H

#include <stdbool.h>
#include <stdint.h>

#include "message.h"
#include "session.h"

struct broker;
struct conn;
struct stored_ack;

/* Open the database, check it, and restore retained messages, sessions (with their
 * subscriptions, into the tree too), queued and in-flight messages and QoS 2 ids. Before
 * the I/O threads start. Returns 0, or -1 (logged). */
int persist_open(struct broker *b);
int persist_start(struct broker *b);
/* Commit what is queued and close (after the connections are closed). */
void persist_close(struct broker *b);

/* This thread's changes go to the store thread (an I/O thread: every loop turn, before
 * it pushes items to other threads). */
void persist_flush(struct broker *b);

/* Durable mode: acknowledgements wait for the commit. */
bool persist_durable(const struct broker *b);

/* Did this thread queue anything since persist_touch_reset? (an acknowledgement that
 * follows must then wait for the commit) */
void persist_touch_reset(void);
bool persist_touched(void);

/* The message's row id, storing it first if needed. */
uint64_t persist_msg(struct broker *b, message_t *m);
/* Routing: m goes to s at qos. Stores the delivery when s is stored and qos > 0 and
 * returns its id (for the delivery), else 0. */
uint64_t persist_route_target(struct broker *b, message_t *m, session_t *s, uint8_t qos,
                              bool retain, const uint32_t *sub_ids, uint8_t nsub);
/* A retained message set (or deleted by an empty payload). */
void persist_retain(struct broker *b, message_t *m);

/* The session's row after a change (connect, disconnect, will sent): written while its
 * expiry is > 0, deleted otherwise. fresh: a clean start wiped its state first. */
void persist_session(struct broker *b, session_t *s, bool fresh);
/* The session ended: its row and everything of it goes. */
void persist_session_end(struct broker *b, session_t *s);

void persist_sub_put(struct broker *b, session_t *s, const subscription_t *sub);
void persist_sub_del(struct broker *b, session_t *s, const uint8_t *key, size_t len);

/* Owner thread: d is kept by s (queued or in flight). Stores it when the routing thread
 * did not (a will, a retained message for a new subscription, a session stored meanwhile). */
void persist_delivery_kept(struct broker *b, session_t *s, delivery_t *d);
/* d (QoS 2) changed state: the packet id and state are recorded. */
void persist_delivery_state(struct broker *b, const delivery_t *d);
/* The delivery with row id (of message m) is complete or dropped. */
void persist_delivery_drop(struct broker *b, uint64_t id, message_t *m);

void persist_rx_qos2(struct broker *b, session_t *s, uint16_t pid, bool add);

/* Queue an acknowledgement behind everything queued so far: it comes back through the
 * connection's worker (INBOX_STORED) after the commit. -1: out of memory, send it now. */
int persist_ack(struct broker *b, struct stored_ack *a);

#endif
