/* test_store.c - the SQLite store: events committed by its thread come back at restore, in
 * queue order; acknowledgements follow the commit; files that are not Midge's are refused
 * and left as they were. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "broker/log.h"
#include "store/store.h"

static char dir[64];
static char path[128];

static int setup(void **state)
{
    (void)state;
    log_configure(0, false, false, false);
    snprintf(dir, sizeof(dir), "/tmp/midge-test-store-XXXXXX");
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof(path), "%s/midge.db", dir);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    char p[160];
    static const char *const suffix[] = {"", "-wal", "-shm"};
    for (int i = 0; i < 3; i++) {
        snprintf(p, sizeof(p), "%s%s", path, suffix[i]);
        unlink(p);
    }
    rmdir(dir);
    return 0;
}

static store_t *open_ok(void)
{
    store_options_t o = {.path = path};
    store_t *st = NULL;
    char err[512] = "";
    assert_int_equal(store_open(&o, &st, err, sizeof(err)), 0);
    assert_non_null(st);
    return st;
}

/* ---- what restore reads back ---- */

typedef struct seen {
    char log[2048];
    size_t len;
} seen_t;

static void note(seen_t *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void note(seen_t *s, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    s->len += (size_t)vsnprintf(s->log + s->len, sizeof(s->log) - s->len, fmt, ap);
    va_end(ap);
}

static int on_msg(void *ctx, const store_msg_row_t *r)
{
    note(ctx, "msg %llu %.*s=%.*s q%u r%d;", (unsigned long long)r->id, (int)r->topic_len,
         (const char *)r->topic, (int)r->payload_len, (const char *)r->payload, r->qos,
         r->retain);
    return 0;
}

static int on_retained(void *ctx, uint64_t id)
{
    note(ctx, "retained %llu;", (unsigned long long)id);
    return 0;
}

static int on_session(void *ctx, const store_session_row_t *r)
{
    note(ctx, "session %.*s v%u e%u l%u will %llu d%u;", (int)r->client_id_len, r->client_id,
         r->version, r->expiry, r->listener, (unsigned long long)r->will_msg, r->will_delay);
    return 0;
}

static int on_sub(void *ctx, const store_sub_row_t *r)
{
    note(ctx, "sub %.*s %.*s q%u nl%d rap%d rh%u id%u;", (int)r->client_id_len, r->client_id,
         (int)r->filter_len, (const char *)r->filter, r->qos, r->no_local,
         r->retain_as_published, r->retain_handling, r->sub_id);
    return 0;
}

static int on_delivery(void *ctx, const store_delivery_row_t *r)
{
    note(ctx, "dlv %llu %.*s msg %llu q%u s%u p%u ids", (unsigned long long)r->id,
         (int)r->client_id_len, r->client_id, (unsigned long long)r->msg_id, r->qos, r->state,
         r->pid);
    for (uint8_t i = 0; i < r->nsub; i++)
        note(ctx, " %u", r->sub_ids[i]);
    note(ctx, ";");
    return 0;
}

static int on_rx(void *ctx, const char *cid, size_t n, uint16_t pid)
{
    note(ctx, "rx %.*s %u;", (int)n, cid, pid);
    return 0;
}

static const store_restore_ops_t ops = {on_msg, on_retained, on_session, on_sub, on_delivery,
                                        on_rx};

static void restore_into(seen_t *s)
{
    store_t *st = open_ok();
    int64_t alive = 0;
    memset(s, 0, sizeof(*s));
    assert_int_equal(store_restore(st, &ops, s, &alive), 0);
    store_close(st);
}

/* ---- acknowledgements ---- */

static pthread_mutex_t done_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t done_cond = PTHREAD_COND_INITIALIZER;
static int done_tokens[8];
static int done_count;

static void on_done(void *arg, void *const *tokens, size_t n, int status)
{
    (void)arg;
    pthread_mutex_lock(&done_lock);
    for (size_t i = 0; i < n && done_count < 8; i++)
        done_tokens[done_count++] = status == 0 ? *(int *)tokens[i] : -1;
    pthread_cond_signal(&done_cond);
    pthread_mutex_unlock(&done_lock);
}

static void wait_done(int n)
{
    pthread_mutex_lock(&done_lock);
    while (done_count < n)
        pthread_cond_wait(&done_cond, &done_lock);
    pthread_mutex_unlock(&done_lock);
}

static void put_msg(store_t *st, uint64_t id, const char *topic, const char *payload)
{
    store_msg_row_t m = {.id = id,
                         .topic = (const uint8_t *)topic,
                         .topic_len = strlen(topic),
                         .payload = (const uint8_t *)payload,
                         .payload_len = strlen(payload),
                         .qos = 1,
                         .retain = true};
    assert_int_equal(store_msg_put(st, &m), 0);
}

static void test_events_come_back_in_order(void **state)
{
    (void)state;
    store_t *st = open_ok();
    done_count = 0;
    assert_int_equal(store_start(st, on_done, NULL), 0);
    uint64_t m1 = store_new_id(st), m2 = store_new_id(st), m3 = store_new_id(st);
    put_msg(st, m1, "a/b", "one");
    put_msg(st, m2, "w", "will");
    put_msg(st, m3, "a/c", "three");
    assert_int_equal(store_retain_set(st, (const uint8_t *)"a/b", 3, m1), 0);
    store_session_row_t s = {.client_id = "c1", .client_id_len = 2, .version = 5,
                             .expiry = 60, .listener = 3, .will_msg = m2, .will_qos = 1,
                             .will_delay = 5};
    assert_int_equal(store_session_put(st, &s), 0);
    store_sub_row_t sub = {.client_id = "c1", .client_id_len = 2,
                           .filter = (const uint8_t *)"$share/g/a/#", .filter_len = 12,
                           .qos = 2, .retain_as_published = true, .retain_handling = 1,
                           .sub_id = 9};
    assert_int_equal(store_sub_put(st, &sub), 0);
    uint64_t d1 = store_new_id(st), d2 = store_new_id(st);
    store_delivery_row_t d = {.id = d2, .client_id = "c1", .client_id_len = 2, .msg_id = m3,
                              .qos = 2, .nsub = 2, .sub_ids = {9, 11}};
    assert_int_equal(store_delivery_put(st, &d), 0);
    d.id = d1;
    d.msg_id = m1;
    d.qos = 1;
    d.nsub = 0;
    assert_int_equal(store_delivery_put(st, &d), 0);
    assert_int_equal(store_delivery_state(st, d2, 3, 17), 0);
    assert_int_equal(store_rx_qos2_put(st, "c1", 2, 42), 0);
    static int tok1 = 1, tok2 = 2;
    assert_int_equal(store_ack(st, &tok1), 0);
    assert_int_equal(store_ack(st, &tok2), 0);
    store_flush(st);
    wait_done(2);
    assert_int_equal(done_tokens[0], 1);
    assert_int_equal(done_tokens[1], 2);
    store_close(st);

    seen_t seen;
    restore_into(&seen);
    char want[1024];
    snprintf(want, sizeof(want),
             "msg 1 a/b=one q1 r1;msg 2 w=will q1 r1;msg 3 a/c=three q1 r1;"
             "retained 1;session c1 v5 e60 l3 will 2 d5;"
             "sub c1 $share/g/a/# q2 nl0 rap1 rh1 id9;"
             "dlv 4 c1 msg 1 q1 s0 p0 ids;dlv 5 c1 msg 3 q2 s3 p17 ids 9 11;rx c1 42;");
    assert_string_equal(seen.log, want);
}

static void test_deletions_collect_messages(void **state)
{
    (void)state;
    store_t *st = open_ok();
    uint64_t m1 = store_new_id(st), m2 = store_new_id(st);
    put_msg(st, m1, "t", "x");
    put_msg(st, m2, "r", "y");
    store_session_row_t s = {.client_id = "c", .client_id_len = 1, .version = 4, .expiry = 9};
    store_session_put(st, &s);
    store_delivery_row_t d = {.id = store_new_id(st), .client_id = "c", .client_id_len = 1,
                              .msg_id = m1, .qos = 1};
    store_delivery_put(st, &d);
    store_retain_set(st, (const uint8_t *)"r", 1, m2);
    store_close(st); /* commits what is queued */

    st = open_ok();
    store_delivery_del(st, d.id, m1);            /* m1: nothing refers to it any more */
    store_retain_del(st, (const uint8_t *)"r", 1); /* m2 likewise */
    store_rx_qos2_put(st, "c", 1, 7);
    store_rx_qos2_del(st, "c", 1, 7);
    store_close(st);

    seen_t seen;
    restore_into(&seen);
    assert_string_equal(seen.log, "session c v4 e9 l0 will 0 d0;");

    st = open_ok();
    store_session_del(st, "c", 1);
    store_close(st);
    restore_into(&seen);
    assert_string_equal(seen.log, "");
}

static void test_delivery_done_within_a_batch_folds_away(void **state)
{
    (void)state;
    store_t *st = open_ok();
    store_session_row_t s = {.client_id = "c", .client_id_len = 1, .version = 4, .expiry = 9};
    store_session_put(st, &s);
    uint64_t m1 = store_new_id(st), m2 = store_new_id(st);
    put_msg(st, m1, "t", "x");
    put_msg(st, m2, "r", "y");
    store_delivery_row_t d = {.id = store_new_id(st), .client_id = "c", .client_id_len = 1,
                              .msg_id = m1, .qos = 2};
    store_delivery_put(st, &d);
    store_delivery_state(st, d.id, 2, 5);
    store_delivery_del(st, d.id, m1); /* m1: its only delivery completed: never written */
    d.id = store_new_id(st);
    d.msg_id = m2;
    store_delivery_put(st, &d);
    store_retain_set(st, (const uint8_t *)"r", 1, m2);
    store_delivery_del(st, d.id, m2); /* m2 stays: it is retained */
    store_close(st);                  /* one batch */
    seen_t seen;
    restore_into(&seen);
    assert_string_equal(seen.log, "msg 2 r=y q1 r1;retained 2;session c v4 e9 l0 will 0 d0;");
}

/* ---- refusals ---- */

static void write_file(const char *data, size_t n)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(data, 1, n, f), n);
    fclose(f);
}

static void test_refuses_a_file_that_is_not_a_database(void **state)
{
    (void)state;
    char junk[8192];
    memset(junk, 'z', sizeof(junk));
    write_file(junk, sizeof(junk));
    store_options_t o = {.path = path};
    store_t *st = NULL;
    char err[512] = "";
    assert_int_equal(store_open(&o, &st, err, sizeof(err)), -1);
    assert_null(st);
    assert_non_null(strstr(err, "is not a Midge database"));
    assert_non_null(strstr(err, path));
    char back[8192];
    FILE *f = fopen(path, "rb");
    assert_int_equal(fread(back, 1, sizeof(back), f), sizeof(back));
    fclose(f);
    assert_memory_equal(back, junk, sizeof(junk));
    char wal[160];
    snprintf(wal, sizeof(wal), "%s-wal", path);
    assert_int_equal(access(wal, F_OK), -1);
}

static void test_new_ids_continue_after_reopen(void **state)
{
    (void)state;
    store_t *st = open_ok();
    uint64_t id = store_new_id(st);
    put_msg(st, id, "t", "x");
    store_session_row_t s = {.client_id = "c", .client_id_len = 1, .version = 4, .expiry = 9};
    store_session_put(st, &s);
    store_delivery_row_t d = {.id = store_new_id(st), .client_id = "c", .client_id_len = 1,
                              .msg_id = id, .qos = 1};
    store_delivery_put(st, &d);
    store_close(st);
    st = open_ok();
    assert_true(store_new_id(st) > d.id); /* queue order holds across restarts */
    store_close(st);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_events_come_back_in_order, setup, teardown),
        cmocka_unit_test_setup_teardown(test_deletions_collect_messages, setup, teardown),
        cmocka_unit_test_setup_teardown(test_delivery_done_within_a_batch_folds_away, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_refuses_a_file_that_is_not_a_database, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_new_ids_continue_after_reopen, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
