/* test_outq.c - the output segment queue: merging, references, partial writes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "net/outq.h"

static int released;
static void release(void *ref)
{
    (void)ref;
    released++;
}

static void push_owned(outq_t *q, const char *s)
{
    size_t n = strlen(s);
    uint8_t *p = outq_reserve(q, n);
    assert_non_null(p);
    memcpy(p, s, n);
    assert_int_equal(outq_commit(q, n), 0);
}

static size_t drain(int fd, char *buf, size_t cap)
{
    size_t got = 0;
    for (;;) {
        ssize_t r = read(fd, buf + got, cap - got);
        if (r <= 0)
            break;
        got += (size_t)r;
    }
    return got;
}

static void test_owned_bytes_merge_into_one_segment(void **state)
{
    (void)state;
    outq_t q;
    outq_init(&q, release);
    push_owned(&q, "abc");
    push_owned(&q, "def");
    assert_int_equal(q.count, 1);
    assert_int_equal(q.bytes, 6);
    outq_cleanup(&q);
}

static void test_refs_released_after_write(void **state)
{
    (void)state;
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv), 0);
    outq_t q;
    outq_init(&q, release);
    released = 0;
    static const uint8_t ext[] = "EXTERNAL";
    push_owned(&q, "head-");
    assert_int_equal(outq_push_ref(&q, ext, 8, (void *)ext), 0);
    push_owned(&q, "-tail");
    assert_int_equal(q.count, 3);
    assert_int_equal(outq_flush(&q, sv[0]), 18);
    assert_int_equal(released, 1);
    assert_int_equal(q.count, 0);
    assert_int_equal(q.bytes, 0);
    char buf[64];
    assert_int_equal(drain(sv[1], buf, sizeof(buf)), 18);
    assert_memory_equal(buf, "head-EXTERNAL-tail", 18);
    outq_cleanup(&q);
    close(sv[0]);
    close(sv[1]);
}

/* A socket that takes only part of the queue: the rest stays, in order, and a later
 * flush sends it; references are released only when their bytes are all gone. */
static void test_partial_writes_keep_order(void **state)
{
    (void)state;
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv), 0);
    int small = 4096;
    setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &small, sizeof(small));
    outq_t q;
    outq_init(&q, release);
    released = 0;
    static uint8_t big[300000];
    for (size_t i = 0; i < sizeof(big); i++)
        big[i] = (uint8_t)(i * 7);
    push_owned(&q, "<");
    assert_int_equal(outq_push_ref(&q, big, sizeof(big), big), 0);
    push_owned(&q, ">");
    static uint8_t out[300002];
    size_t got = 0;
    for (int rounds = 0; rounds < 100000 && (q.count || got < sizeof(out)); rounds++) {
        long w = outq_flush(&q, sv[0]);
        assert_true(w >= 0);
        if (q.count)
            assert_int_equal(released, 0);
        got += drain(sv[1], (char *)out + got, sizeof(out) - got);
    }
    assert_int_equal(got, sizeof(out));
    assert_int_equal(released, 1);
    assert_int_equal(out[0], '<');
    assert_memory_equal(out + 1, big, sizeof(big));
    assert_int_equal(out[sizeof(out) - 1], '>');
    outq_cleanup(&q);
    close(sv[0]);
    close(sv[1]);
}

static void test_cleanup_releases_unsent(void **state)
{
    (void)state;
    outq_t q;
    outq_init(&q, release);
    released = 0;
    static const uint8_t a[] = "a", b[] = "b";
    outq_push_ref(&q, a, 1, (void *)a);
    outq_push_ref(&q, b, 1, (void *)b);
    outq_cleanup(&q);
    assert_int_equal(released, 2);
}

static void test_write_error_reported(void **state)
{
    (void)state;
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv), 0);
    close(sv[1]);
    outq_t q;
    outq_init(&q, release);
    push_owned(&q, "x");
    signal(SIGPIPE, SIG_IGN);
    assert_int_equal(outq_flush(&q, sv[0]), -1);
    assert_int_equal(errno, EPIPE);
    outq_cleanup(&q);
    close(sv[0]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_owned_bytes_merge_into_one_segment),
        cmocka_unit_test(test_refs_released_after_write),
        cmocka_unit_test(test_partial_writes_keep_order),
        cmocka_unit_test(test_cleanup_releases_unsent),
        cmocka_unit_test(test_write_error_reported),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
