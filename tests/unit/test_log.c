/* test_log.c - unit tests of the log file of src/broker/log.c (log_dest file): lines are
 * appended whole, a reopen after rotation goes to the new file, and a file that cannot be
 * opened leaves the one in use. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "broker/log.h"

static char tmpdir[256];

static int setup(void **state)
{
    (void)state;
    snprintf(tmpdir, sizeof(tmpdir), "/tmp/midge-test-log-XXXXXX");
    if (!mkdtemp(tmpdir))
        return -1;
    /* every level, to the file only, no timestamps: the file's content is exact */
    log_configure(0x1f, false, false, false);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    log_set_file(NULL);
    char cmd[300];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
    return system(cmd) == 0 ? 0 : -1;
}

static void read_file(const char *path, char *out, size_t outlen)
{
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    size_t n = fread(out, 1, outlen - 1, f);
    out[n] = '\0';
    fclose(f);
}

static void test_lines_appended(void **state)
{
    (void)state;
    char path[300], text[1024];
    snprintf(path, sizeof(path), "%s/append.log", tmpdir);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs("before\n", f);
    fclose(f);
    assert_int_equal(log_set_file(path), 0);
    log_msg(LOG_NOTICE, "one %d", 1);
    log_msg(LOG_ERR, "two");
    read_file(path, text, sizeof(text));
    assert_string_equal(text, "before\none 1\ntwo\n");
    assert_int_equal(log_set_file(NULL), 0);
    log_msg(LOG_ERR, "not in the file");
    read_file(path, text, sizeof(text));
    assert_string_equal(text, "before\none 1\ntwo\n");
}

static void test_reopen_after_rotation(void **state)
{
    (void)state;
    char path[300], rotated[300], text[1024];
    snprintf(path, sizeof(path), "%s/rot.log", tmpdir);
    snprintf(rotated, sizeof(rotated), "%s/rot.log.1", tmpdir);
    assert_int_equal(log_set_file(path), 0);
    log_msg(LOG_NOTICE, "old");
    assert_int_equal(rename(path, rotated), 0);
    log_msg(LOG_NOTICE, "still old"); /* until the reopen, the renamed file */
    assert_int_equal(log_reopen(), 0);
    log_msg(LOG_NOTICE, "new");
    read_file(rotated, text, sizeof(text));
    assert_string_equal(text, "old\nstill old\n");
    read_file(path, text, sizeof(text));
    assert_string_equal(text, "new\n");
    log_set_file(NULL);
    assert_int_equal(log_reopen(), 0); /* no file: nothing to do */
}

static void test_unopenable_keeps_current(void **state)
{
    (void)state;
    char path[300], bad[300], text[1024];
    snprintf(path, sizeof(path), "%s/keep.log", tmpdir);
    snprintf(bad, sizeof(bad), "%s/no/such/dir.log", tmpdir);
    assert_int_equal(log_set_file(path), 0);
    errno = 0;
    assert_int_equal(log_set_file(bad), -1);
    assert_int_equal(errno, ENOENT);
    log_msg(LOG_NOTICE, "kept");
    read_file(path, text, sizeof(text));
    assert_string_equal(text, "kept\n");
    log_set_file(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lines_appended),
        cmocka_unit_test(test_reopen_after_rotation),
        cmocka_unit_test(test_unopenable_keeps_current),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
