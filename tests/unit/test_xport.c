/* test_xport.c - the transport layer stack, with two small test layers of its own: a
 * "frame" layer that wraps each output in [len]bytes and needs a handshake byte before it
 * is ready, and an "xor" layer that scrambles bytes both ways. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "net/xport.h"

/* ---- xor: every byte ^ 0x5a, ready at once ------------------------------------ */

static int xor_in(xlayer_t *l, const uint8_t *p, size_t n, xbuf_t *up, xbuf_t *down)
{
    (void)l;
    (void)down;
    for (size_t i = 0; i < n; i++) {
        uint8_t b = p[i] ^ 0x5a;
        if (xbuf_append(up, &b, 1) < 0)
            return -1;
    }
    return 0;
}
static int xor_out(xlayer_t *l, const uint8_t *p, size_t n, xbuf_t *down)
{
    return xor_in(l, p, n, down, NULL);
}
static bool always(const xlayer_t *l)
{
    (void)l;
    return true;
}
static void xor_shutdown(xlayer_t *l, int code, xbuf_t *down)
{
    (void)l;
    uint8_t b = (uint8_t)('Z' ^ code);
    xbuf_append(down, &b, 1);
}
static void destroy(xlayer_t *l)
{
    free(l);
}
static const xlayer_ops_t xor_ops = {"xor", xor_in, xor_out, always, xor_shutdown, destroy};

/* ---- frame: waits for 'H' (answers 'A'), then [len] framing; 'Q' frame = finished --- */

typedef struct {
    xlayer_t l;
    bool ready;
    xbuf_t in;
} frame_t;

static int frame_in(xlayer_t *l, const uint8_t *p, size_t n, xbuf_t *up, xbuf_t *down)
{
    frame_t *f = (frame_t *)l;
    xbuf_append(&f->in, p, n);
    if (!f->ready) {
        if (xbuf_size(&f->in) == 0)
            return 0;
        if (xbuf_data(&f->in)[0] != 'H') {
            strcpy(l->error, "frame: no hello");
            return -1;
        }
        xbuf_consume(&f->in, 1);
        xbuf_append(down, "A", 1);
        f->ready = true;
    }
    while (xbuf_size(&f->in) >= 1 && xbuf_size(&f->in) >= 1u + xbuf_data(&f->in)[0]) {
        size_t len = xbuf_data(&f->in)[0];
        if (len == 1 && xbuf_data(&f->in)[1] == 'Q')
            l->finished = true;
        else
            xbuf_append(up, xbuf_data(&f->in) + 1, len);
        xbuf_consume(&f->in, 1 + len);
    }
    return 0;
}
static int frame_out(xlayer_t *l, const uint8_t *p, size_t n, xbuf_t *down)
{
    (void)l;
    while (n) {
        uint8_t len = n > 255 ? 255 : (uint8_t)n;
        xbuf_append(down, &len, 1);
        xbuf_append(down, p, len);
        p += len;
        n -= len;
    }
    return 0;
}
static bool frame_ready(const xlayer_t *l)
{
    return ((const frame_t *)l)->ready;
}
static void frame_shutdown(xlayer_t *l, int code, xbuf_t *down)
{
    (void)l;
    uint8_t b[2] = {1, (uint8_t)code};
    xbuf_append(down, b, 2);
}
static void frame_destroy(xlayer_t *l)
{
    xbuf_free(&((frame_t *)l)->in);
    free(l);
}
static const xlayer_ops_t frame_ops = {"frame", frame_in, frame_out, frame_ready, frame_shutdown,
                                       frame_destroy};

static xlayer_t *new_xor(void)
{
    xlayer_t *l = calloc(1, sizeof(*l));
    l->ops = &xor_ops;
    return l;
}
static xlayer_t *new_frame(void)
{
    frame_t *f = calloc(1, sizeof(*f));
    f->l.ops = &frame_ops;
    return &f->l;
}

static void scramble(uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        p[i] ^= 0x5a;
}

/* Output given before the stack is ready is held, then sent once the handshake is done,
 * through both layers and in order. */
static void test_held_until_ready(void **state)
{
    (void)state;
    xport_t x;
    xport_init(&x);
    xport_push(&x, new_xor());
    xport_push(&x, new_frame());
    assert_false(xport_ready(&x));
    assert_int_equal(xport_output(&x, (const uint8_t *)"early", 5), 0);
    assert_int_equal(xport_pending(&x), 0);

    uint8_t hello = 'H' ^ 0x5a;
    xbuf_t app = {0};
    assert_int_equal(xport_input(&x, &hello, 1, &app), 0);
    assert_true(xport_ready(&x));
    assert_int_equal(xbuf_size(&app), 0);
    /* 'A' (the frame layer's answer) then [5]early, all scrambled by the xor layer. */
    uint8_t want[] = {'A', 5, 'e', 'a', 'r', 'l', 'y'};
    scramble(want, sizeof(want));
    assert_int_equal(xport_pending(&x), sizeof(want));
    assert_memory_equal(xbuf_data(&x.wire), want, sizeof(want));
    xbuf_free(&app);
    xport_cleanup(&x);
}

/* Input split at every byte comes out whole and in order. */
static void test_input_split_anywhere(void **state)
{
    (void)state;
    uint8_t wire[] = {'H', 3, 'a', 'b', 'c', 2, 'd', 'e', 1, 'Q'};
    scramble(wire, sizeof(wire));
    for (size_t cut = 0; cut <= sizeof(wire); cut++) {
        xport_t x;
        xport_init(&x);
        xport_push(&x, new_xor());
        xport_push(&x, new_frame());
        xbuf_t app = {0};
        assert_int_equal(xport_input(&x, wire, cut, &app), 0);
        assert_int_equal(xport_input(&x, wire + cut, sizeof(wire) - cut, &app), 0);
        assert_int_equal(xbuf_size(&app), 5);
        assert_memory_equal(xbuf_data(&app), "abcde", 5);
        assert_true(xport_finished(&x));
        xbuf_free(&app);
        xport_cleanup(&x);
    }
}

/* A layer's error reaches the stack's error; shutdown runs top first through the layers
 * below. */
static void test_error_and_shutdown(void **state)
{
    (void)state;
    xport_t x;
    xport_init(&x);
    xport_push(&x, new_xor());
    xport_push(&x, new_frame());
    uint8_t junk = 'X' ^ 0x5a;
    xbuf_t app = {0};
    assert_int_equal(xport_input(&x, &junk, 1, &app), -1);
    assert_string_equal(x.error, "frame: no hello");
    xport_shutdown(&x, 7);
    /* frame's goodbye [1][7] through xor, then xor's own 'Z'^7 */
    uint8_t want[] = {1 ^ 0x5a, 7 ^ 0x5a, 'Z' ^ 7};
    assert_int_equal(xport_pending(&x), 3);
    assert_memory_equal(xbuf_data(&x.wire), want, 3);
    xbuf_free(&app);
    xport_cleanup(&x);
}

/* xport_flush writes to a socket and keeps what it could not write. */
static void test_flush_to_socket(void **state)
{
    (void)state;
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    xport_t x;
    xport_init(&x);
    xport_push(&x, new_xor());
    assert_int_equal(xport_output(&x, (const uint8_t *)"hello", 5), 0);
    assert_int_equal(xport_flush(&x, sv[0]), 5);
    assert_int_equal(xport_pending(&x), 0);
    uint8_t got[5];
    assert_int_equal(read(sv[1], got, 5), 5);
    scramble(got, 5);
    assert_memory_equal(got, "hello", 5);
    xport_cleanup(&x);
    close(sv[0]);
    close(sv[1]);
}

/* A layer that speaks first (a client): it gets an empty input once the layer below is
 * ready, even when no bytes came up through it. */
typedef struct {
    xlayer_t l;
    int kicked;
} first_t;
static int first_in(xlayer_t *l, const uint8_t *p, size_t n, xbuf_t *up, xbuf_t *down)
{
    (void)p;
    (void)up;
    first_t *f = (first_t *)l;
    if (n == 0 && !f->kicked++)
        xbuf_append(down, "HI", 2);
    return 0;
}
static bool first_ready(const xlayer_t *l)
{
    return ((const first_t *)l)->kicked > 0;
}
static const xlayer_ops_t first_ops = {"first", first_in, frame_out, first_ready, frame_shutdown,
                                       destroy};

static void test_upper_layer_speaks_first(void **state)
{
    (void)state;
    xport_t x;
    xport_init(&x);
    xport_push(&x, new_frame());
    first_t *f = calloc(1, sizeof(*f));
    f->l.ops = &first_ops;
    xport_push(&x, &f->l);
    xbuf_t app = {0};
    /* The frame layer is not ready: the upper one must wait. */
    assert_int_equal(xport_input(&x, NULL, 0, &app), 0);
    assert_int_equal(f->kicked, 0);
    /* The hello makes the frame layer ready (it answers 'A'); in the same call the upper
     * layer gets its turn and its "HI" goes down framed. */
    assert_int_equal(xport_input(&x, (const uint8_t *)"H", 1, &app), 0);
    assert_int_equal(f->kicked, 1);
    uint8_t want[] = {'A', 2, 'H', 'I'};
    assert_int_equal(xport_pending(&x), sizeof(want));
    assert_memory_equal(xbuf_data(&x.wire), want, sizeof(want));
    xbuf_free(&app);
    xport_cleanup(&x);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_held_until_ready),
        cmocka_unit_test(test_input_split_anywhere),
        cmocka_unit_test(test_error_and_shutdown),
        cmocka_unit_test(test_flush_to_socket),
        cmocka_unit_test(test_upper_layer_speaks_first),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
