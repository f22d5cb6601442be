/* test_config.c - unit tests of src/conf/config.c: every option of the configuration file,
 * every kind of error (with its exact "FILE:LINE: " prefix) and the command line. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "conf/config.h"

static char tmpdir[256];
static int file_counter;

static int setup_dir(void **state)
{
    (void)state;
    snprintf(tmpdir, sizeof(tmpdir), "/tmp/midge-test-config-XXXXXX");
    return mkdtemp(tmpdir) ? 0 : -1;
}

static int remove_dir(void **state)
{
    (void)state;
    char cmd[300];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
    return system(cmd) == 0 ? 0 : -1;
}

/* Write text to a new file in tmpdir; returns its path (static buffer per call site). */
static const char *write_conf(const char *text, char *path, size_t pathlen)
{
    snprintf(path, pathlen, "%s/c%d.conf", tmpdir, ++file_counter);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
    return path;
}

/* Load text as a file; on success returns 0 with *cfg filled from defaults + text. */
static int load(const char *text, config_t *cfg, char *err, size_t errlen)
{
    char path[300];
    write_conf(text, path, sizeof(path));
    config_init(cfg);
    err[0] = '\0';
    return config_load_file(cfg, path, err, errlen);
}

static void load_ok(const char *text, config_t *cfg)
{
    char err[512];
    int rc = load(text, cfg, err, sizeof(err));
    if (rc != 0)
        fail_msg("unexpected error for \"%s\": %s", text, err);
}

/* The error must be "PATH:LINE: " followed by a message that contains each of the
 * NULL-terminated fragments. */
static void load_err(const char *text, int line, ...)
{
    char path[300], err[512], prefix[340];
    config_t cfg;
    write_conf(text, path, sizeof(path));
    config_init(&cfg);
    err[0] = '\0';
    int rc = config_load_file(&cfg, path, err, sizeof(err));
    if (rc != -1)
        fail_msg("expected an error for \"%s\"", text);
    snprintf(prefix, sizeof(prefix), "%s:%d: ", path, line);
    if (strncmp(err, prefix, strlen(prefix)) != 0)
        fail_msg("error \"%s\" does not start with \"%s\"", err, prefix);
    va_list ap;
    va_start(ap, line);
    for (const char *frag = va_arg(ap, const char *); frag; frag = va_arg(ap, const char *)) {
        if (!strstr(err, frag))
            fail_msg("error \"%s\" does not mention \"%s\"", err, frag);
    }
    va_end(ap);
}

/* ---- defaults ---- */

static void test_defaults(void **state)
{
    (void)state;
    config_t c;
    config_init(&c);
    assert_int_equal(c.listener_count, 0);
    assert_int_equal(c.threads, 0);
    assert_true(c.allow_anonymous);
    assert_int_equal(c.max_packet_size, 268435460u);
    assert_int_equal(c.message_size_limit, 0);
    assert_int_equal(c.max_inflight_messages, 20);
    assert_int_equal(c.max_queued_messages, 1000);
    assert_int_equal(c.max_queued_bytes, 0);
    assert_int_equal(c.max_keepalive, 65535);
    assert_int_equal(c.sys_interval, 10);
    assert_int_equal(c.connect_timeout, 10);
    assert_int_equal(c.max_topic_alias, 10);
    assert_int_equal(c.receive_maximum, 100);
    assert_int_equal(c.thread_backlog_limit, 65536);
    assert_int_equal(c.log_types, CONFIG_LOG_DEFAULT);
    assert_int_equal(c.log_dest, CONFIG_LOG_DEST_STDERR);
    assert_true(c.log_timestamp);
    assert_true(c.connection_messages);
    assert_false(c.persistence);
    assert_int_equal(c.default_listener, -1);
    assert_int_equal(c.verbose, 0);
    assert_false(c.daemon);
    assert_string_equal(c.config_file, "");
}

/* ---- syntax ---- */

static void test_comments_blank_whitespace(void **state)
{
    (void)state;
    config_t c;
    load_ok("# a comment\n"
            "\n"
            "   \t  \n"
            "   # an indented comment\n"
            "  threads   3  \t\n"
            "\tsys_interval\t7\r\n"
            "max_keepalive 60", /* last line without a newline */
            &c);
    assert_int_equal(c.threads, 3);
    assert_int_equal(c.sys_interval, 7);
    assert_int_equal(c.max_keepalive, 60);
}

static void test_empty_file(void **state)
{
    (void)state;
    config_t c;
    load_ok("", &c);
    assert_int_equal(c.listener_count, 0);
}

static void test_missing_file(void **state)
{
    (void)state;
    config_t c;
    char err[512];
    char path[300];
    snprintf(path, sizeof(path), "%s/does-not-exist.conf", tmpdir);
    config_init(&c);
    assert_int_equal(config_load_file(&c, path, err, sizeof(err)), -1);
    assert_non_null(strstr(err, path));
    assert_non_null(strstr(err, "cannot open"));
}

/* ---- listeners ---- */

static void test_listener(void **state)
{
    (void)state;
    config_t c;
    load_ok("listener 1883\nlistener 8883 192.168.1.2\nlistener 9001 ::1\n", &c);
    assert_int_equal(c.listener_count, 3);
    assert_int_equal(c.listeners[0].port, 1883);
    assert_string_equal(c.listeners[0].bind_address, "");
    assert_int_equal(c.listeners[1].port, 8883);
    assert_string_equal(c.listeners[1].bind_address, "192.168.1.2");
    assert_int_equal(c.listeners[2].port, 9001);
    assert_string_equal(c.listeners[2].bind_address, "::1");
    assert_int_equal(c.default_listener, -1);
}

static void test_listener_errors(void **state)
{
    (void)state;
    load_err("listener\n", 1, "'listener'", "needs a value", NULL);
    load_err("listener 0\n", 1, "'listener'", "port 0 needs a unix socket path", NULL);
    load_err("listener -1\n", 1, "'listener'", "-1", "out of range", NULL);
    load_err("listener 65536\n", 1, "'listener'", "65536", "out of range", NULL);
    load_err("listener abc\n", 1, "'listener'", "'abc'", "not a number", NULL);
    load_err("listener 1883 127.0.0.1 extra\n", 1, "'listener'", "'extra'", NULL);
    load_err("listener 1883 127.0.0.1\nlistener 1883 127.0.0.1\n", 2, "'listener'",
             "1883 127.0.0.1", "twice", NULL);
    char big[200];
    snprintf(big, sizeof(big), "listener 1883 %070d\n", 1);
    load_err(big, 1, "'listener'", "too long", NULL);

    /* 16 listeners fit, a 17th does not */
    char text[1024] = "";
    for (int i = 0; i < CONFIG_MAX_LISTENERS; i++) {
        char line[40];
        snprintf(line, sizeof(line), "listener %d\n", 2000 + i);
        strcat(text, line);
    }
    config_t c;
    load_ok(text, &c);
    assert_int_equal(c.listener_count, CONFIG_MAX_LISTENERS);
    strcat(text, "listener 3000\n");
    load_err(text, CONFIG_MAX_LISTENERS + 1, "too many listeners", NULL);
}

static void test_port_and_bind_address(void **state)
{
    (void)state;
    config_t c;
    load_ok("port 1884\n", &c);
    assert_int_equal(c.listener_count, 1);
    assert_int_equal(c.listeners[0].port, 1884);
    assert_string_equal(c.listeners[0].bind_address, "");
    assert_int_equal(c.default_listener, 0);

    load_ok("bind_address 127.0.0.1\n", &c);
    assert_int_equal(c.listener_count, 1);
    assert_int_equal(c.listeners[0].port, 1883);
    assert_string_equal(c.listeners[0].bind_address, "127.0.0.1");

    /* both describe the same default listener, in any order, beside explicit ones */
    load_ok("listener 9001\nbind_address 10.0.0.1\nport 1999\n", &c);
    assert_int_equal(c.listener_count, 2);
    assert_int_equal(c.default_listener, 1);
    assert_int_equal(c.listeners[1].port, 1999);
    assert_string_equal(c.listeners[1].bind_address, "10.0.0.1");

    load_err("port\n", 1, "'port'", "needs a value", NULL);
    load_err("port 1883 1884\n", 1, "'port'", "extra value '1884'", NULL);
    load_err("port 70000\n", 1, "'port'", "70000", "out of range", NULL);
    load_err("port -1\n", 1, "'port'", "-1", "out of range", NULL);
    load_err("bind_address\n", 1, "'bind_address'", "needs a value", NULL);
    load_err("bind_address a b\n", 1, "'bind_address'", "extra value 'b'", NULL);
}

/* ---- numeric options ---- */

static void test_numeric_options(void **state)
{
    (void)state;
    config_t c;
    load_ok("threads 4\n"
            "max_packet_size 1048576\n"
            "message_size_limit 65536\n"
            "max_inflight_messages 5\n"
            "max_queued_messages 50\n"
            "max_queued_bytes 10000000000\n"
            "max_keepalive 120\n"
            "sys_interval 0\n"
            "connect_timeout 3\n"
            "max_topic_alias 0\n"
            "receive_maximum 65535\n",
            &c);
    assert_int_equal(c.threads, 4);
    assert_int_equal(c.max_packet_size, 1048576);
    assert_int_equal(c.message_size_limit, 65536);
    assert_int_equal(c.max_inflight_messages, 5);
    assert_int_equal(c.max_queued_messages, 50);
    assert_true(c.max_queued_bytes == 10000000000ull);
    assert_int_equal(c.max_keepalive, 120);
    assert_int_equal(c.sys_interval, 0);
    assert_int_equal(c.connect_timeout, 3);
    assert_int_equal(c.max_topic_alias, 0);
    assert_int_equal(c.receive_maximum, 65535);
}

static void test_numeric_special_values(void **state)
{
    (void)state;
    config_t c;
    load_ok("threads 0\n", &c);
    assert_int_equal(c.threads, 0);
    load_ok("max_connections -1\nport 1999\n", &c);
    assert_int_equal(c.listeners[0].max_connections, 0);
    load_ok("max_packet_size 0\n", &c);
    assert_int_equal(c.max_packet_size, 268435460u);
    load_ok("max_packet_size 268435460\n", &c);
    assert_int_equal(c.max_packet_size, 268435460u);
    load_ok("max_keepalive 65535\n", &c);
    assert_int_equal(c.max_keepalive, 65535);
    load_ok("max_queued_messages 4294967295\n", &c);
    assert_int_equal(c.max_queued_messages, 4294967295u);
    /* the last of repeated lines wins */
    load_ok("threads 2\nthreads 1\n", &c);
    assert_int_equal(c.threads, 1);
}

static void test_numeric_errors(void **state)
{
    (void)state;
    static const char *const opts[] = {
        "threads",
        "max_connections",
        "max_packet_size",
        "message_size_limit",
        "max_inflight_messages",
        "max_queued_messages",
        "max_queued_bytes",
        "max_keepalive",
        "sys_interval",
        "connect_timeout",
        "max_topic_alias",
        "receive_maximum",
    };
    for (size_t i = 0; i < sizeof(opts) / sizeof(opts[0]); i++) {
        char text[200], name[64];
        snprintf(name, sizeof(name), "'%s'", opts[i]);
        /* missing value, on line 2 after a comment */
        snprintf(text, sizeof(text), "# x\n%s\n", opts[i]);
        load_err(text, 2, name, "needs a value", NULL);
        /* extra value */
        snprintf(text, sizeof(text), "%s 1 2\n", opts[i]);
        load_err(text, 1, name, "extra value '2'", NULL);
        /* not a number */
        snprintf(text, sizeof(text), "\n\n%s many\n", opts[i]);
        load_err(text, 3, name, "'many'", "not a number", NULL);
        snprintf(text, sizeof(text), "%s -\n", opts[i]);
        load_err(text, 1, name, "'-'", "not a number", NULL);
        snprintf(text, sizeof(text), "%s +5\n", opts[i]);
        load_err(text, 1, name, "'+5'", "not a number", NULL);
        snprintf(text, sizeof(text), "%s 0x10\n", opts[i]);
        load_err(text, 1, name, "'0x10'", "junk", NULL);
        /* trailing junk */
        snprintf(text, sizeof(text), "%s 12abc\n", opts[i]);
        load_err(text, 1, name, "'12abc'", "junk", NULL);
        snprintf(text, sizeof(text), "%s 1.5\n", opts[i]);
        load_err(text, 1, name, "'1.5'", "junk", NULL);
        /* out of range: huge, and overflow of 64 bits */
        snprintf(text, sizeof(text), "%s 99999999999999999999999\n", opts[i]);
        load_err(text, 1, name, "99999999999999999999999", "out of range", NULL);
        snprintf(text, sizeof(text), "%s -2\n", opts[i]);
        load_err(text, 1, name, "-2", "out of range", NULL);
    }
}

static void test_numeric_ranges(void **state)
{
    (void)state;
    load_err("threads 1025\n", 1, "'threads'", "1025", "out of range", NULL);
    load_err("threads -1\n", 1, "'threads'", "-1", "out of range", NULL);
    load_err("max_connections 2147483648\n", 1, "'max_connections'", "out of range", NULL);
    load_err("max_packet_size 268435461\n", 1, "'max_packet_size'", "268435461", "out of range",
             NULL);
    load_err("message_size_limit 268435456\n", 1, "'message_size_limit'", "out of range", NULL);
    load_err("max_inflight_messages 65536\n", 1, "'max_inflight_messages'", "out of range", NULL);
    load_err("max_queued_messages 4294967296\n", 1, "'max_queued_messages'", "out of range", NULL);
    load_err("max_queued_bytes 9223372036854775808\n", 1, "'max_queued_bytes'", "out of range",
             NULL);
    load_err("max_keepalive 65536\n", 1, "'max_keepalive'", "65536", "out of range", NULL);
    load_err("sys_interval 2147483648\n", 1, "'sys_interval'", "out of range", NULL);
    load_err("connect_timeout 0\n", 1, "'connect_timeout'", "out of range", NULL);
    load_err("thread_backlog_limit 15\n", 1, "'thread_backlog_limit'", "out of range", NULL);
    load_err("connect_timeout 86401\n", 1, "'connect_timeout'", "out of range", NULL);
    load_err("max_topic_alias 65536\n", 1, "'max_topic_alias'", "out of range", NULL);
    load_err("receive_maximum 0\n", 1, "'receive_maximum'", "out of range", NULL);
    load_err("receive_maximum 65536\n", 1, "'receive_maximum'", "out of range", NULL);
}

/* ---- booleans ---- */

static void test_bool_options(void **state)
{
    (void)state;
    config_t c;
    load_ok("allow_anonymous false\nlog_timestamp false\nconnection_messages false\n", &c);
    assert_false(c.allow_anonymous);
    assert_false(c.log_timestamp);
    assert_false(c.connection_messages);
    load_ok("allow_anonymous true\nlog_timestamp true\nconnection_messages true\n", &c);
    assert_true(c.allow_anonymous);
    assert_true(c.log_timestamp);
    assert_true(c.connection_messages);
    /* Mosquitto's parser takes 1 and 0 as well */
    load_ok("allow_anonymous 0\nlog_timestamp 0\nconnection_messages 1\n", &c);
    assert_false(c.allow_anonymous);
    assert_false(c.log_timestamp);
    assert_true(c.connection_messages);

    static const char *const opts[] = {"allow_anonymous", "log_timestamp", "connection_messages",
                                       "persistence"};
    for (size_t i = 0; i < sizeof(opts) / sizeof(opts[0]); i++) {
        char text[200], name[64];
        snprintf(name, sizeof(name), "'%s'", opts[i]);
        snprintf(text, sizeof(text), "%s yes\n", opts[i]);
        load_err(text, 1, name, "'yes'", "not a boolean", NULL);
        snprintf(text, sizeof(text), "%s TRUE\n", opts[i]);
        load_err(text, 1, name, "'TRUE'", "not a boolean", NULL);
        snprintf(text, sizeof(text), "%s on\n", opts[i]);
        load_err(text, 1, name, "'on'", "not a boolean", NULL);
        snprintf(text, sizeof(text), "%s 2\n", opts[i]);
        load_err(text, 1, name, "'2'", "not a boolean", NULL);
        snprintf(text, sizeof(text), "%s\n", opts[i]);
        load_err(text, 1, name, "needs a value", NULL);
        snprintf(text, sizeof(text), "%s true false\n", opts[i]);
        load_err(text, 1, name, "extra value 'false'", NULL);
    }
}

static void test_persistence(void **state)
{
    (void)state;
    config_t c;
    load_ok("persistence false\n", &c);
    assert_false(c.persistence);
    assert_int_equal(c.persistence_mode, CONFIG_PERSIST_DURABLE);
    assert_int_equal(c.persistence_sync, CONFIG_SYNC_NORMAL);
    load_ok("persistence true\npersistence_mode periodic\npersistence_sync full\n", &c);
    assert_true(c.persistence);
    assert_int_equal(c.persistence_mode, CONFIG_PERSIST_PERIODIC);
    assert_int_equal(c.persistence_sync, CONFIG_SYNC_FULL);
    load_ok("persistence 1\npersistence_mode durable\npersistence_sync normal\n", &c);
    assert_true(c.persistence);
    assert_int_equal(c.persistence_mode, CONFIG_PERSIST_DURABLE);
    load_err("\npersistence_mode fast\n", 2,
             "option 'persistence_mode': 'fast' is not durable or periodic", NULL);
    load_err("persistence_sync off\n", 1,
             "option 'persistence_sync': 'off' is not normal or full", NULL);
}

/* ---- logging ---- */

static void test_log_type(void **state)
{
    (void)state;
    config_t c;
    /* the first line replaces the default set, later ones add */
    load_ok("log_type error\n", &c);
    assert_int_equal(c.log_types, CONFIG_LOG_ERROR);
    load_ok("log_type debug\nlog_type subscribe\nlog_type unsubscribe\n", &c);
    assert_int_equal(c.log_types, CONFIG_LOG_DEBUG | CONFIG_LOG_SUBSCRIBE | CONFIG_LOG_UNSUBSCRIBE);
    load_ok("log_type all\n", &c);
    assert_int_equal(c.log_types, CONFIG_LOG_ALL);
    load_ok("log_type all\nlog_type none\n", &c);
    assert_int_equal(c.log_types, 0);
    load_ok("log_type warning\nlog_type notice\nlog_type information\nlog_type websockets\n", &c);
    assert_int_equal(c.log_types, CONFIG_LOG_WARNING | CONFIG_LOG_NOTICE | CONFIG_LOG_INFORMATION |
                                      CONFIG_LOG_WEBSOCKETS);
    load_err("log_type chatty\n", 1, "'log_type'", "'chatty'", NULL);
    load_err("log_type\n", 1, "'log_type'", "needs a value", NULL);
    load_err("log_type error warning\n", 1, "'log_type'", "extra value 'warning'", NULL);
}

static void test_log_dest(void **state)
{
    (void)state;
    config_t c;
    load_ok("log_dest stdout\n", &c);
    assert_int_equal(c.log_dest, CONFIG_LOG_DEST_STDOUT);
    load_ok("log_dest stderr\n", &c);
    assert_int_equal(c.log_dest, CONFIG_LOG_DEST_STDERR);
    load_ok("log_dest stdout\nlog_dest stderr\n", &c);
    assert_int_equal(c.log_dest, CONFIG_LOG_DEST_STDOUT | CONFIG_LOG_DEST_STDERR);
    load_err("log_dest syslog\n", 1, "'log_dest'", "'syslog'", "not supported", NULL);
    load_err("log_dest\n", 1, "'log_dest'", "needs a value", NULL);
    load_err("log_dest stdout stderr\n", 1, "'log_dest'", "extra value 'stderr'", NULL);
}

/* ---- files the options name ---- */

/* Paths of real files and directories in tmpdir, for options whose file must exist. */
static char f_cert[300], f_key[300], f_ca[300], f_crl[300], f_pw[300], f_acl[300], d_www[300],
    d_capath[300];

static void touch(char *path, size_t len, const char *name)
{
    snprintf(path, len, "%s/%s", tmpdir, name);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs("x\n", f);
    fclose(f);
}

static void make_files(void)
{
    if (f_cert[0])
        return;
    touch(f_cert, sizeof(f_cert), "server.crt");
    touch(f_key, sizeof(f_key), "server.key");
    touch(f_ca, sizeof(f_ca), "ca.crt");
    touch(f_crl, sizeof(f_crl), "ca.crl");
    touch(f_pw, sizeof(f_pw), "passwd");
    touch(f_acl, sizeof(f_acl), "acl");
    snprintf(d_www, sizeof(d_www), "%s/www", tmpdir);
    assert_int_equal(mkdir(d_www, 0755), 0);
    snprintf(d_capath, sizeof(d_capath), "%s/certs", tmpdir);
    assert_int_equal(mkdir(d_capath, 0755), 0);
}

/* snprintf into a static buffer, for building config texts with paths. */
static const char *fmt(const char *f, ...) __attribute__((format(printf, 1, 2)));
static const char *fmt(const char *f, ...)
{
    static char buf[8192];
    va_list ap;
    va_start(ap, f);
    vsnprintf(buf, sizeof(buf), f, ap);
    va_end(ap);
    return buf;
}

/* ---- listener-scoped options ---- */

static void test_listener_unix_socket(void **state)
{
    (void)state;
    config_t c;
    load_ok("listener 0 /run/midge/midge.sock\nlistener 1883\n", &c);
    assert_int_equal(c.listener_count, 2);
    assert_int_equal(c.listeners[0].port, 0);
    assert_string_equal(c.listeners[0].unix_path, "/run/midge/midge.sock");
    assert_string_equal(c.listeners[0].bind_address, "");
    assert_string_equal(c.listeners[1].unix_path, "");
    char text[400];
    snprintf(text, sizeof(text), "listener 0 /%0107d\n", 7); /* 108 characters: one too many */
    load_err(text, 1, "'listener'", "unix socket path", "too long (at most 107 characters)", NULL);
    snprintf(text, sizeof(text), "listener 0 /%0106d\n", 7); /* 107: fits */
    load_ok(text, &c);
    assert_int_equal(strlen(c.listeners[0].unix_path), 107);
    load_err("listener 0 /a.sock\nlistener 0 /a.sock\n", 2, "listener 0 /a.sock is defined twice",
             NULL);
}

static void test_listener_defaults(void **state)
{
    (void)state;
    config_t c;
    load_ok("listener 1883\n", &c);
    const config_listener_t *l = &c.listeners[0];
    assert_int_equal(l->socket_domain, 0);
    assert_false(l->websockets);
    assert_int_equal(l->max_connections, 0);
    assert_int_equal(l->accept_versions, CONFIG_PROTO_ALL);
    assert_int_equal(l->proxy_protocol, 0);
    assert_string_equal(l->certfile, "");
    assert_string_equal(l->tls_version, "");
    assert_int_equal(l->norigins, 0);
    assert_int_equal(l->ntrusted, 0);
    assert_string_equal(l->password_file, "");
    assert_string_equal(l->acl_file, "");
}

static void test_socket_domain_interface_protocol(void **state)
{
    (void)state;
    config_t c;
    load_ok("listener 1883\nsocket_domain ipv4\nbind_interface eth0\n"
            "listener 1884 ::1\nsocket_domain ipv6\nprotocol mqtt\n"
            "listener 9001\nprotocol websockets\n",
            &c);
    assert_int_equal(c.listeners[0].socket_domain, 4);
    assert_string_equal(c.listeners[0].bind_interface, "eth0");
    assert_false(c.listeners[0].websockets);
    assert_int_equal(c.listeners[1].socket_domain, 6);
    assert_string_equal(c.listeners[1].bind_interface, "");
    assert_false(c.listeners[1].websockets);
    assert_true(c.listeners[2].websockets);
    assert_int_equal(c.listeners[2].socket_domain, 0);
    load_err("listener 1883\nsocket_domain ipv5\n", 2, "'socket_domain'", "'ipv5'",
             "not ipv4 or ipv6", NULL);
    load_err("listener 1883\nprotocol http\n", 2, "'protocol'", "'http'", "not mqtt or websockets",
             NULL);
    load_err("listener 1883\nprotocol\n", 2, "'protocol'", "needs a value", NULL);
    load_err("listener 1883\nprotocol mqtt websockets\n", 2, "'protocol'",
             "extra value 'websockets'", NULL);
    char text[200];
    snprintf(text, sizeof(text), "listener 1883\nbind_interface %016d\n", 1);
    load_err(text, 2, "'bind_interface'", "interface name", "too long (at most 15 characters)",
             NULL);
    snprintf(text, sizeof(text), "listener 1883\nbind_interface %015d\n", 1);
    load_ok(text, &c);
    assert_int_equal(strlen(c.listeners[0].bind_interface), 15);
}

static void test_accept_protocol_versions(void **state)
{
    (void)state;
    config_t c;
    load_ok("listener 1883\naccept_protocol_versions 5\n"
            "listener 1884\naccept_protocol_versions 3,4\n"
            "listener 1885\naccept_protocol_versions 4, 5\n"
            "listener 1886\naccept_protocol_versions 5,3,4,5\n"
            "listener 1887\n",
            &c);
    assert_int_equal(c.listeners[0].accept_versions, CONFIG_PROTO_V5);
    assert_int_equal(c.listeners[1].accept_versions, CONFIG_PROTO_V31 | CONFIG_PROTO_V311);
    assert_int_equal(c.listeners[2].accept_versions, CONFIG_PROTO_V311 | CONFIG_PROTO_V5);
    assert_int_equal(c.listeners[3].accept_versions, CONFIG_PROTO_ALL);
    assert_int_equal(c.listeners[4].accept_versions, CONFIG_PROTO_ALL);
    static const char *const bad[] = {"6", "2", "3,,4", ",3", "3,", "3;4", "34", "v5", "3 4"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        load_err(fmt("listener 1883\naccept_protocol_versions %s\n", bad[i]), 2,
                 "'accept_protocol_versions'", bad[i], NULL);
    load_err("listener 1883\naccept_protocol_versions 6\n", 2, "must be 3, 4 or 5", NULL);
}

static void test_enable_proxy_protocol(void **state)
{
    (void)state;
    config_t c;
    load_ok("listener 1883\nenable_proxy_protocol 1\nlistener 1884\nenable_proxy_protocol 2\n", &c);
    assert_int_equal(c.listeners[0].proxy_protocol, 1);
    assert_int_equal(c.listeners[1].proxy_protocol, 2);
    load_err("listener 1883\nenable_proxy_protocol 0\n", 2, "'enable_proxy_protocol'", "'0'",
             "(1 or 2)", NULL);
    load_err("listener 1883\nenable_proxy_protocol 3\n", 2, "'enable_proxy_protocol'", "'3'", NULL);
    load_err("listener 1883\nenable_proxy_protocol v2\n", 2, "'v2'", NULL);
}

static void test_max_connections_scope(void **state)
{
    (void)state;
    config_t c;
    /* after a listener line: that listener's only */
    load_ok("listener 1883\nmax_connections 10\nlistener 1884\n", &c);
    assert_int_equal(c.listeners[0].max_connections, 10);
    assert_int_equal(c.listeners[1].max_connections, 0);
    load_ok("listener 1883\nmax_connections -1\n", &c);
    assert_int_equal(c.listeners[0].max_connections, 0);
    /* before any listener: the default listener's (`port`) */
    load_ok("max_connections 7\nport 1999\nlistener 2000\n", &c);
    assert_int_equal(c.listeners[0].port, 1999);
    assert_int_equal(c.listeners[0].max_connections, 7);
    assert_int_equal(c.listeners[1].max_connections, 0);
    /* and the -p listeners' */
    config_t a;
    char err[512], path[300];
    write_conf("max_connections 3\n", path, sizeof(path));
    config_init(&a);
    char *argv[] = {"midge", "-c", path, "-p", "1999", NULL};
    assert_int_equal(config_parse_args(&a, 5, argv, err, sizeof(err)), 0);
    assert_int_equal(a.listener_count, 1);
    assert_int_equal(a.listeners[0].max_connections, 3);
}

static void test_global_max_connections(void **state)
{
    (void)state;
    config_t c;
    config_init(&c);
    assert_int_equal(c.global_max_connections, 0);
    load_ok("global_max_connections 100\n", &c);
    assert_int_equal(c.global_max_connections, 100);
    load_ok("global_max_connections -1\n", &c);
    assert_int_equal(c.global_max_connections, 0);
    load_err("global_max_connections -2\n", 1, "'global_max_connections'", "out of range", NULL);
    load_err("global_max_connections lots\n", 1, "'global_max_connections'", "not a number", NULL);
}

static void test_tls_options(void **state)
{
    (void)state;
    make_files();
    config_t c;
    load_ok(fmt("listener 8883\n"
                "cafile %s\ncapath %s\ncertfile %s\nkeyfile %s\ncrlfile %s\n"
                "ciphers ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-AES128-GCM-SHA256\n"
                "ciphers_tls1.3 TLS_AES_256_GCM_SHA384\n"
                "tls_version tlsv1.3\nrequire_certificate true\nuse_identity_as_username true\n"
                "listener 8884\ncertfile %s\nkeyfile %s\ntls_version tlsv1.2\n"
                "use_subject_as_username true\n",
                f_ca, d_capath, f_cert, f_key, f_crl, f_cert, f_key),
            &c);
    const config_listener_t *l = &c.listeners[0];
    assert_string_equal(l->cafile, f_ca);
    assert_string_equal(l->capath, d_capath);
    assert_string_equal(l->certfile, f_cert);
    assert_string_equal(l->keyfile, f_key);
    assert_string_equal(l->crlfile, f_crl);
    assert_string_equal(l->ciphers, "ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-AES128-GCM-SHA256");
    assert_string_equal(l->ciphers13, "TLS_AES_256_GCM_SHA384");
    assert_string_equal(l->tls_version, "tlsv1.3");
    assert_true(l->require_certificate);
    assert_true(l->use_identity_as_username);
    assert_false(l->use_subject_as_username);
    l = &c.listeners[1];
    assert_string_equal(l->certfile, f_cert);
    assert_string_equal(l->cafile, "");
    assert_string_equal(l->tls_version, "tlsv1.2");
    assert_false(l->require_certificate);
    assert_true(l->use_subject_as_username);
}

static void test_tls_path_with_spaces(void **state)
{
    (void)state;
    char cert[300], key[300];
    touch(cert, sizeof(cert), "my server.crt");
    touch(key, sizeof(key), "my server.key");
    config_t c;
    load_ok(fmt("listener 8883\ncertfile %s\nkeyfile   %s  \n", cert, key), &c);
    assert_string_equal(c.listeners[0].certfile, cert);
    assert_string_equal(c.listeners[0].keyfile, key);
}

static void test_tls_errors(void **state)
{
    (void)state;
    make_files();
    /* a combination that does not fit is reported at the listener line */
    load_err(fmt("threads 1\nlistener 8883\ncertfile %s\n", f_cert), 2,
             "listener 8883: certfile is set but keyfile is not", NULL);
    load_err(fmt("listener 8883 127.0.0.1\nkeyfile %s\n", f_key), 1,
             "listener 8883 127.0.0.1: keyfile is set but certfile is not", NULL);
    load_err(
        fmt("listener 1883\nlistener 8883\ncertfile %s\nkeyfile %s\nrequire_certificate true\n",
            f_cert, f_key),
        2, "listener 8883: require_certificate needs cafile or capath", NULL);
    load_err(fmt("listener 1883\ncafile %s\n", f_ca), 1,
             "listener 1883: 'cafile' is a TLS option but the listener has no certfile", NULL);
    load_err(fmt("listener 1883\ncrlfile %s\n", f_crl), 1, "'crlfile' is a TLS option", NULL);
    load_err("listener 1883\nciphers HIGH\n", 1, "'ciphers' is a TLS option", NULL);
    load_err("listener 1883\nciphers_tls1.3 TLS_AES_128_GCM_SHA256\n", 1,
             "'ciphers_tls1.3' is a TLS option", NULL);
    load_err("listener 1883\ntls_version tlsv1.3\n", 1, "'tls_version' is a TLS option", NULL);
    load_err("listener 1883\nrequire_certificate true\n", 1,
             "'require_certificate' is a TLS option", NULL);
    load_err("listener 1883\nuse_identity_as_username true\n", 1,
             "'use_identity_as_username' is a TLS option", NULL);
    load_err(fmt("listener 8883\ncertfile %s\nkeyfile %s\ncafile %s\n"
                 "use_identity_as_username true\nuse_subject_as_username true\n",
                 f_cert, f_key, f_ca),
             1, "use_identity_as_username and use_subject_as_username are both set", NULL);
    /* a bad value is reported at its own line */
    load_err("listener 8883\ntls_version tlsv1.1\n", 2, "'tls_version'", "'tlsv1.1'",
             "(tlsv1.2 or tlsv1.3)", NULL);
    load_err("listener 8883\ntls_version tlsv1\n", 2, "'tlsv1'", NULL);
    load_err("listener 8883\nrequire_certificate maybe\n", 2, "'require_certificate'", "'maybe'",
             "not a boolean", NULL);
}

static void test_files_must_exist(void **state)
{
    (void)state;
    make_files();
    static const char *const file_opts[] = {"certfile", "keyfile",       "cafile",
                                            "crlfile",  "password_file", "acl_file"};
    char missing[300];
    snprintf(missing, sizeof(missing), "%s/no-such-file", tmpdir);
    for (size_t i = 0; i < sizeof(file_opts) / sizeof(file_opts[0]); i++) {
        char name[64];
        snprintf(name, sizeof(name), "option '%s'", file_opts[i]);
        load_err(fmt("listener 8883\n\n%s %s\n", file_opts[i], missing), 3, name, missing,
                 "No such file or directory", NULL);
        /* a directory is not a file */
        load_err(fmt("listener 8883\n%s %s\n", file_opts[i], d_www), 2, name, d_www,
                 "is a directory, not a file", NULL);
    }
    load_err(fmt("listener 9001\nprotocol websockets\nhttp_dir %s\n", missing), 3,
             "option 'http_dir'", "No such file or directory", NULL);
    load_err(fmt("listener 9001\nprotocol websockets\nhttp_dir %s\n", f_cert), 3,
             "option 'http_dir'", "is not a directory", NULL);
    load_err(fmt("listener 8883\ncapath %s\n", f_ca), 2, "option 'capath'", "is not a directory",
             NULL);
    if (geteuid() != 0) {
        char unreadable[300];
        touch(unreadable, sizeof(unreadable), "unreadable.key");
        chmod(unreadable, 0);
        load_err(fmt("listener 8883\nkeyfile %s\n", unreadable), 2, "option 'keyfile'",
                 "cannot read", "Permission denied", NULL);
    }
}

static void test_websockets_options(void **state)
{
    (void)state;
    make_files();
    config_t c;
    load_ok(fmt("listener 9001\nprotocol websockets\nhttp_dir %s\n"
                "websockets_origin https://example.com\nwebsockets_origin http://localhost:8080\n"
                "websockets_trusted_proxy 10.0.0.1\nwebsockets_trusted_proxy ::1\n",
                d_www),
            &c);
    const config_listener_t *l = &c.listeners[0];
    assert_true(l->websockets);
    assert_string_equal(l->http_dir, d_www);
    assert_int_equal(l->norigins, 2);
    assert_string_equal(l->origins[0], "https://example.com");
    assert_string_equal(l->origins[1], "http://localhost:8080");
    assert_int_equal(l->ntrusted, 2);
    assert_string_equal(l->trusted_proxies[0], "10.0.0.1");
    assert_string_equal(l->trusted_proxies[1], "::1");

    /* at most CONFIG_MAX_ORIGINS / CONFIG_MAX_TRUSTED */
    char text[2048] = "listener 9001\nprotocol websockets\n";
    for (int i = 0; i < CONFIG_MAX_ORIGINS; i++)
        snprintf(text + strlen(text), sizeof(text) - strlen(text), "websockets_origin http://h%d\n",
                 i);
    load_ok(text, &c);
    assert_int_equal(c.listeners[0].norigins, CONFIG_MAX_ORIGINS);
    strcat(text, "websockets_origin http://one-too-many\n");
    load_err(text, CONFIG_MAX_ORIGINS + 3, "'websockets_origin'", "too many origins", NULL);
    strcpy(text, "listener 9001\nprotocol websockets\n");
    for (int i = 0; i < CONFIG_MAX_TRUSTED + 1; i++)
        snprintf(text + strlen(text), sizeof(text) - strlen(text),
                 "websockets_trusted_proxy 10.0.0.%d\n", i);
    load_err(text, CONFIG_MAX_TRUSTED + 3, "'websockets_trusted_proxy'", "too many", NULL);

    /* only on a websockets listener, reported at the listener line */
    load_err(fmt("listener 1883\nlistener 1884\nhttp_dir %s\n", d_www), 2,
             "listener 1884: http_dir needs 'protocol websockets'", NULL);
    load_err("listener 1883\nwebsockets_origin https://example.com\n", 1,
             "listener 1883: websockets_origin needs 'protocol websockets'", NULL);
    load_err("listener 1883\nwebsockets_trusted_proxy 10.0.0.1\n", 1,
             "listener 1883: websockets_trusted_proxy needs 'protocol websockets'", NULL);
}

static void test_default_listener_options(void **state)
{
    (void)state;
    config_t c;
    char err[512], path[300];
    /* options before any listener line go to the default listener: here the -p one */
    write_conf("protocol websockets\nwebsockets_origin http://a\naccept_protocol_versions 5\n",
               path, sizeof(path));
    config_init(&c);
    char *argv[] = {"midge", "-c", path, "-p", "1999", NULL};
    assert_int_equal(config_parse_args(&c, 5, argv, err, sizeof(err)), 0);
    assert_int_equal(c.listener_count, 1);
    assert_int_equal(c.listeners[0].port, 1999);
    assert_string_equal(c.listeners[0].bind_address, "127.0.0.1");
    assert_true(c.listeners[0].websockets);
    assert_int_equal(c.listeners[0].norigins, 1);
    assert_int_equal(c.listeners[0].accept_versions, CONFIG_PROTO_V5);
    /* ... or the `port` one, in the file's order or not */
    load_ok("protocol websockets\nport 9001\nlistener 1883\n", &c);
    assert_int_equal(c.listener_count, 2);
    assert_int_equal(c.listeners[0].port, 9001);
    assert_true(c.listeners[0].websockets);
    assert_false(c.listeners[1].websockets);
    /* ... and with only listener lines, Mosquitto's default listener on 1883 appears */
    load_ok("accept_protocol_versions 4\nlistener 8000\n", &c);
    assert_int_equal(c.listener_count, 2);
    assert_int_equal(c.listeners[0].port, 8000);
    assert_int_equal(c.listeners[0].accept_versions, CONFIG_PROTO_ALL);
    assert_int_equal(c.listeners[1].port, 1883);
    assert_string_equal(c.listeners[1].bind_address, "");
    assert_int_equal(c.listeners[1].accept_versions, CONFIG_PROTO_V311);
    /* a misfit there is reported at its first option */
    load_err("threads 1\nwebsockets_origin http://a\nlistener 1884\n", 2,
             "listener 1883: websockets_origin needs 'protocol websockets'", NULL);
    /* Mosquitto would try to listen twice on 1883; Midge says why */
    load_err("threads 1\nprotocol websockets\nlistener 1883\n", 2, "default listener (port 1883",
             "move it below a listener line", NULL);
}

/* ---- security options ---- */

static void test_allow_anonymous_default(void **state)
{
    (void)state;
    config_t c;
    char err[512], path[300];
    /* no file: local-only, anonymous allowed */
    char *none[] = {"midge", NULL};
    config_init(&c);
    assert_int_equal(config_parse_args(&c, 1, none, err, sizeof(err)), 0);
    assert_true(c.allow_anonymous);
    assert_true(c.listeners[0].allow_anonymous);
    /* a file without listeners and -p: still allowed */
    write_conf("threads 1\n", path, sizeof(path));
    char *p_only[] = {"midge", "-c", path, "-p", "1999", NULL};
    config_init(&c);
    assert_int_equal(config_parse_args(&c, 5, p_only, err, sizeof(err)), 0);
    assert_true(c.allow_anonymous);
    assert_true(c.listeners[0].allow_anonymous);
    /* a file that defines a listener (listener, port or bind_address): refused (Mosquitto 2) */
    static const char *const defining[] = {"listener 1883\n", "port 1884\n",
                                           "bind_address 127.0.0.1\n", "listener 0 /tmp/m.sock\n"};
    for (size_t i = 0; i < sizeof(defining) / sizeof(defining[0]); i++) {
        load_ok(defining[i], &c);
        assert_false(c.allow_anonymous);
        assert_false(c.listeners[0].allow_anonymous);
    }
    /* ... the -p listener beside them too */
    write_conf("listener 1883\n", path, sizeof(path));
    config_init(&c);
    assert_int_equal(config_parse_args(&c, 5, p_only, err, sizeof(err)), 0);
    assert_int_equal(c.listener_count, 2);
    assert_false(c.listeners[1].allow_anonymous);
    /* unless the file says so, before or after the listener */
    load_ok("listener 1883\nallow_anonymous true\n", &c);
    assert_true(c.allow_anonymous);
    assert_true(c.listeners[0].allow_anonymous);
    load_ok("allow_anonymous true\nlistener 1883\n", &c);
    assert_true(c.listeners[0].allow_anonymous);
    load_ok("allow_anonymous false\n", &c);
    assert_false(c.allow_anonymous);
}

static void test_security_global(void **state)
{
    (void)state;
    make_files();
    config_t c;
    /* per_listener_settings false (the default): wherever they stand, they apply to all */
    load_ok(fmt("listener 1883\nallow_anonymous true\npassword_file %s\n"
                "listener 1884\nacl_file %s\nlistener 1885\nallow_anonymous false\n",
                f_pw, f_acl),
            &c);
    assert_false(c.per_listener_settings);
    assert_string_equal(c.password_file, f_pw);
    assert_string_equal(c.acl_file, f_acl);
    assert_false(c.allow_anonymous);
    for (int i = 0; i < 3; i++) {
        assert_false(c.listeners[i].allow_anonymous);
        assert_string_equal(c.listeners[i].password_file, f_pw);
        assert_string_equal(c.listeners[i].acl_file, f_acl);
    }
}

static void test_security_per_listener(void **state)
{
    (void)state;
    make_files();
    config_t c;
    load_ok(fmt("per_listener_settings true\n"
                "listener 1883\nallow_anonymous true\n"
                "listener 1884\npassword_file %s\nacl_file %s\n"
                "listener 1885\n",
                f_pw, f_acl),
            &c);
    assert_true(c.per_listener_settings);
    assert_true(c.listeners[0].allow_anonymous);
    assert_string_equal(c.listeners[0].password_file, "");
    assert_false(c.listeners[1].allow_anonymous); /* the Mosquitto 2 default */
    assert_string_equal(c.listeners[1].password_file, f_pw);
    assert_string_equal(c.listeners[1].acl_file, f_acl);
    assert_false(c.listeners[2].allow_anonymous);
    assert_string_equal(c.listeners[2].password_file, "");
    assert_string_equal(c.listeners[2].acl_file, "");
    /* the same, per_listener_settings last: the result does not depend on its place */
    load_ok(fmt("listener 1883\nallow_anonymous true\nlistener 1884\npassword_file %s\n"
                "per_listener_settings true\n",
                f_pw),
            &c);
    assert_true(c.listeners[0].allow_anonymous);
    assert_string_equal(c.listeners[0].password_file, "");
    assert_false(c.listeners[1].allow_anonymous);
    assert_string_equal(c.listeners[1].password_file, f_pw);
    /* before any listener line: the default listener's */
    char err[512], path[300];
    write_conf(fmt("per_listener_settings true\nallow_anonymous true\npassword_file %s\n"
                   "listener 1883\n",
                   f_pw),
               path, sizeof(path));
    config_init(&c);
    char *argv[] = {"midge", "-c", path, "-p", "1999", NULL};
    assert_int_equal(config_parse_args(&c, 5, argv, err, sizeof(err)), 0);
    assert_int_equal(c.listener_count, 2);
    assert_false(c.listeners[0].allow_anonymous);
    assert_string_equal(c.listeners[0].password_file, "");
    assert_true(c.listeners[1].allow_anonymous);
    assert_string_equal(c.listeners[1].password_file, f_pw);
    load_err("per_listener_settings sometimes\n", 1, "'per_listener_settings'", "not a boolean",
             NULL);
}

/* ---- global options of issue 5 ---- */

static void test_persistence_options(void **state)
{
    (void)state;
    config_t c;
    config_init(&c);
    assert_string_equal(c.persistence_location, "");
    assert_string_equal(c.persistence_file, "midge.db");
    assert_int_equal(c.autosave_interval, 1800);
    load_ok("persistence false\npersistence_location /var/lib/midge/\n"
            "persistence_file broker state.db\nautosave_interval 60\n",
            &c);
    assert_false(c.persistence);
    assert_string_equal(c.persistence_location, "/var/lib/midge/");
    assert_string_equal(c.persistence_file, "broker state.db");
    assert_int_equal(c.autosave_interval, 60);
    load_err("autosave_interval soon\n", 1, "'autosave_interval'", "not a number", NULL);
    load_err("persistence_file\n", 1, "'persistence_file'", "needs a value", NULL);
    char text[400];
    snprintf(text, sizeof(text), "persistence_file %0256d\n", 1);
    load_err(text, 1, "'persistence_file'", "too long (at most 255 characters)", NULL);
}

static void test_pid_file_and_user(void **state)
{
    (void)state;
    config_t c;
    load_ok("pid_file /run/midge.pid\nuser midge\n", &c);
    assert_string_equal(c.pid_file, "/run/midge.pid");
    assert_string_equal(c.user, "midge");
    load_err("user\n", 1, "'user'", "needs a value", NULL);
    load_err("user a b\n", 1, "'user'", "extra value 'b'", NULL);
    char text[200];
    snprintf(text, sizeof(text), "user %064d\n", 1);
    load_err(text, 1, "'user'", "too long (at most 63 characters)", NULL);
}

static void test_log_dest_file(void **state)
{
    (void)state;
    config_t c;
    load_ok("log_dest file /var/log/midge/midge.log\n", &c);
    assert_int_equal(c.log_dest, CONFIG_LOG_DEST_FILE);
    assert_string_equal(c.log_file, "/var/log/midge/midge.log");
    load_ok("log_dest stdout\nlog_dest file  /tmp/my log.txt \n", &c);
    assert_int_equal(c.log_dest, CONFIG_LOG_DEST_STDOUT | CONFIG_LOG_DEST_FILE);
    assert_string_equal(c.log_file, "/tmp/my log.txt");
    /* none clears, later lines add again */
    load_ok("log_dest none\n", &c);
    assert_int_equal(c.log_dest, 0);
    load_ok("log_dest stdout\nlog_dest none\nlog_dest stderr\n", &c);
    assert_int_equal(c.log_dest, CONFIG_LOG_DEST_STDERR);
    load_err("log_dest file\n", 1, "'log_dest'", "'file' needs a path", NULL);
    static const char *const refused[] = {"syslog", "topic", "dlt"};
    for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
        char msg[100];
        snprintf(msg, sizeof(msg), "option 'log_dest': '%s' is not supported by Midge", refused[i]);
        load_err(fmt("\nlog_dest %s\n", refused[i]), 2, msg, NULL);
    }
    load_err("log_dest printer\n", 1, "'log_dest'", "unknown destination 'printer'", NULL);
}

static void test_include_dir(void **state)
{
    (void)state;
    char dir[300], path[400];
    snprintf(dir, sizeof(dir), "%s/conf.d", tmpdir);
    assert_int_equal(mkdir(dir, 0755), 0);
    /* Sorted by strcmp: capitals first ("B" < "a"); the last value wins, so the order
     * shows in threads; other files are skipped. */
    static const struct {
        const char *name, *text;
    } files[] = {
        {"b.conf", "threads 3\nlistener 2003\n"},
        {"B.conf", "threads 2\nlistener 2002\n"},
        {"a.conf", "threads 1\nlistener 2001\n"},
        {"c.conf.disabled", "threads 99\n"},
        {"notes.txt", "bogus\n"},
    };
    for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
        snprintf(path, sizeof(path), "%s/%s", dir, files[i].name);
        FILE *f = fopen(path, "w");
        assert_non_null(f);
        fputs(files[i].text, f);
        fclose(f);
    }
    snprintf(path, sizeof(path), "%s/sub.conf", dir); /* a directory named *.conf */
    assert_int_equal(mkdir(path, 0755), 0);
    config_t c;
    load_ok(fmt("threads 9\ninclude_dir %s\n", dir), &c);
    assert_int_equal(c.threads, 3);
    assert_int_equal(c.listener_count, 3);
    assert_int_equal(c.listeners[0].port, 2002);
    assert_int_equal(c.listeners[1].port, 2001);
    assert_int_equal(c.listeners[2].port, 2003);
    /* options after include_dir still apply, and each file starts at the default listener */
    load_ok(fmt("listener 1883\ninclude_dir %s\nmax_connections 5\n", dir), &c);
    assert_int_equal(c.listeners[0].max_connections, 5);
    assert_int_equal(c.listeners[3].max_connections, 0);

    /* an error in an included file names that file and its line */
    char bad[300];
    snprintf(bad, sizeof(bad), "%s/conf.bad", tmpdir);
    assert_int_equal(mkdir(bad, 0755), 0);
    snprintf(path, sizeof(path), "%s/x.conf", bad);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs("# x\nthreads many\n", f);
    fclose(f);
    char main_path[300], err[512], prefix[500];
    write_conf(fmt("include_dir %s\n", bad), main_path, sizeof(main_path));
    config_init(&c);
    assert_int_equal(config_load_file(&c, main_path, err, sizeof(err)), -1);
    snprintf(prefix, sizeof(prefix), "%s:2: option 'threads'", path);
    if (strncmp(err, prefix, strlen(prefix)) != 0)
        fail_msg("error \"%s\" does not start with \"%s\"", err, prefix);

    /* only the main file may include (so no loop), and the directory must exist */
    f = fopen(path, "w");
    assert_non_null(f);
    fprintf(f, "include_dir %s\n", bad);
    fclose(f);
    config_init(&c);
    assert_int_equal(config_load_file(&c, main_path, err, sizeof(err)), -1);
    snprintf(prefix, sizeof(prefix), "%s:1: option 'include_dir': only the main", path);
    if (strncmp(err, prefix, strlen(prefix)) != 0)
        fail_msg("error \"%s\" does not start with \"%s\"", err, prefix);
    load_err(fmt("\ninclude_dir %s/none\n", tmpdir), 2, "'include_dir'", "cannot open directory",
             "No such file or directory", NULL);
    /* an empty directory is fine */
    snprintf(path, sizeof(path), "%s/empty.d", tmpdir);
    assert_int_equal(mkdir(path, 0755), 0);
    load_ok(fmt("include_dir %s\nthreads 4\n", path), &c);
    assert_int_equal(c.threads, 4);
}

static int parse(config_t *c, char *err, size_t errlen, int argc, ...);

static void test_args_test_config(void **state)
{
    (void)state;
    config_t c;
    char err[512], path[300];
    write_conf("threads 1\n", path, sizeof(path));
    assert_int_equal(parse(&c, err, sizeof(err), 4, "midge", "--test-config", "-c", path), 0);
    assert_true(c.test_config);
    assert_int_equal(parse(&c, err, sizeof(err), 3, "midge", "-c", path), 0);
    assert_false(c.test_config);
    assert_int_equal(parse(&c, err, sizeof(err), 2, "midge", "--test-config"), -1);
    assert_string_equal(err, "option '--test-config' needs a configuration file (-c FILE)");
}

/* ---- unknown options, line numbers, long lines ---- */

static void test_unknown_option(void **state)
{
    (void)state;
    load_err("bogus 1\n", 1, "unknown option 'bogus'", NULL);
    load_err("bogus\n", 1, "unknown option 'bogus'", NULL);
    load_err("bogus 1 2 3\n", 1, "unknown option 'bogus'", NULL);
    load_err("bridge_cafile /etc/ssl/ca.crt\n", 1, "unknown option 'bridge_cafile'", NULL);
    load_err("threads 1\n\n# c\nThreads 2\n", 4, "unknown option 'Threads'", NULL);
    /* Mosquitto options Midge does not support yet are refused, not ignored */
    load_err("connection bridge1\n", 1, "unknown option 'connection'", NULL);
    load_err("autosave_on_changes true\n", 1, "unknown option 'autosave_on_changes'", NULL);
    /* a '#' after an option is not a comment (as in Mosquitto) */
    load_err("threads 1 # one\n", 1, "'threads'", "extra value '#'", NULL);
}

/* Every option is handled: whatever the value, the answer is never the parser's internal
 * "not handled". */
static void test_every_option_handled(void **state)
{
    (void)state;
    static const char *const opts[] = {"listener",
                                       "port",
                                       "bind_address",
                                       "socket_domain",
                                       "bind_interface",
                                       "protocol",
                                       "max_connections",
                                       "accept_protocol_versions",
                                       "enable_proxy_protocol",
                                       "cafile",
                                       "capath",
                                       "certfile",
                                       "keyfile",
                                       "crlfile",
                                       "ciphers",
                                       "ciphers_tls1.3",
                                       "tls_version",
                                       "require_certificate",
                                       "use_identity_as_username",
                                       "use_subject_as_username",
                                       "http_dir",
                                       "websockets_origin",
                                       "websockets_trusted_proxy",
                                       "per_listener_settings",
                                       "allow_anonymous",
                                       "password_file",
                                       "acl_file",
                                       "log_type",
                                       "log_dest",
                                       "log_timestamp",
                                       "connection_messages",
                                       "persistence",
                                       "persistence_location",
                                       "persistence_file",
                                       "pid_file",
                                       "user",
                                       "include_dir",
                                       "threads",
                                       "max_packet_size",
                                       "message_size_limit",
                                       "max_inflight_messages",
                                       "max_queued_messages",
                                       "max_queued_bytes",
                                       "max_keepalive",
                                       "sys_interval",
                                       "connect_timeout",
                                       "max_topic_alias",
                                       "receive_maximum",
                                       "global_max_connections",
                                       "autosave_interval"};
    for (size_t i = 0; i < sizeof(opts) / sizeof(opts[0]); i++) {
        char path[300], err[512];
        config_t c;
        write_conf(fmt("listener 1\n%s zz\n", opts[i]), path, sizeof(path));
        config_init(&c);
        err[0] = '\0';
        config_load_file(&c, path, err, sizeof(err));
        if (strstr(err, "internal") || strstr(err, "unknown option"))
            fail_msg("option %s: %s", opts[i], err);
    }
}

static void test_error_stops_at_first_bad_line(void **state)
{
    (void)state;
    load_err("threads 2\nmax_keepalive x\nbogus\n", 2, "'max_keepalive'", "'x'", NULL);
}

static void test_long_line(void **state)
{
    (void)state;
    char text[3000];
    memset(text, '#', 2000);
    strcpy(text + 2000, "\nthreads 1\n");
    load_err(text, 1, "line too long", NULL);
}

/* ---- command line ---- */

static int parse(config_t *c, char *err, size_t errlen, int argc, ...)
{
    char *argv[32];
    va_list ap;
    va_start(ap, argc);
    for (int i = 0; i < argc; i++)
        argv[i] = va_arg(ap, char *);
    va_end(ap);
    argv[argc] = NULL;
    config_init(c);
    err[0] = '\0';
    return config_parse_args(c, argc, argv, err, errlen);
}

static void test_args_none(void **state)
{
    (void)state;
    config_t c;
    char err[512];
    assert_int_equal(parse(&c, err, sizeof(err), 1, "midge"), 0);
    assert_int_equal(c.listener_count, 1);
    assert_int_equal(c.listeners[0].port, 1883);
    assert_string_equal(c.listeners[0].bind_address, "127.0.0.1");
    assert_int_equal(c.verbose, 0);
    assert_false(c.daemon);
}

static void test_args_port_verbose_daemon(void **state)
{
    (void)state;
    config_t c;
    char err[512];
    assert_int_equal(parse(&c, err, sizeof(err), 5, "midge", "-p", "1999", "-v", "-d"), 0);
    assert_int_equal(c.listener_count, 1);
    assert_int_equal(c.listeners[0].port, 1999);
    assert_string_equal(c.listeners[0].bind_address, "127.0.0.1");
    assert_int_equal(c.verbose, 1);
    assert_true(c.daemon);

    assert_int_equal(parse(&c, err, sizeof(err), 6, "midge", "-v", "-p", "1", "-p", "2"), 0);
    assert_int_equal(c.listener_count, 2);
    assert_int_equal(c.listeners[0].port, 1);
    assert_int_equal(c.listeners[1].port, 2);
    assert_int_equal(parse(&c, err, sizeof(err), 3, "midge", "-v", "-v"), 0);
    assert_int_equal(c.verbose, 2);
}

static void test_args_config_file(void **state)
{
    (void)state;
    config_t c;
    char err[512], path[300];
    write_conf("listener 8883 0.0.0.0\nthreads 2\n", path, sizeof(path));
    assert_int_equal(parse(&c, err, sizeof(err), 3, "midge", "-c", path), 0);
    assert_string_equal(c.config_file, path);
    assert_int_equal(c.threads, 2);
    /* the file's listener only: no default one */
    assert_int_equal(c.listener_count, 1);
    assert_int_equal(c.listeners[0].port, 8883);
    assert_string_equal(c.listeners[0].bind_address, "0.0.0.0");

    /* -p adds to the file's listeners, wherever it stands */
    assert_int_equal(parse(&c, err, sizeof(err), 5, "midge", "-p", "1884", "-c", path), 0);
    assert_int_equal(c.listener_count, 2);
    assert_int_equal(c.listeners[1].port, 1884);
    assert_string_equal(c.listeners[1].bind_address, "127.0.0.1");

    /* a file without listeners gets the default one */
    write_conf("threads 1\n", path, sizeof(path));
    assert_int_equal(parse(&c, err, sizeof(err), 3, "midge", "-c", path), 0);
    assert_int_equal(c.listener_count, 1);
    assert_int_equal(c.listeners[0].port, 1883);
    assert_string_equal(c.listeners[0].bind_address, "127.0.0.1");

    /* -p that repeats a file's listener on 127.0.0.1 is not a second listener */
    write_conf("listener 1885 127.0.0.1\n", path, sizeof(path));
    assert_int_equal(parse(&c, err, sizeof(err), 5, "midge", "-c", path, "-p", "1885"), 0);
    assert_int_equal(c.listener_count, 1);

    /* a bad file: the file's error, with its prefix */
    char prefix[340];
    write_conf("threads 1\nthreads x\n", path, sizeof(path));
    assert_int_equal(parse(&c, err, sizeof(err), 3, "midge", "-c", path), -1);
    snprintf(prefix, sizeof(prefix), "%s:2: ", path);
    assert_memory_equal(err, prefix, strlen(prefix));
    assert_non_null(strstr(err, "'threads'"));
}

static void test_args_errors(void **state)
{
    (void)state;
    config_t c;
    char err[512];
    assert_int_equal(parse(&c, err, sizeof(err), 2, "midge", "-x"), -1);
    assert_non_null(strstr(err, "'-x'"));
    assert_int_equal(parse(&c, err, sizeof(err), 2, "midge", "--verbose"), -1);
    assert_non_null(strstr(err, "'--verbose'"));
    assert_int_equal(parse(&c, err, sizeof(err), 2, "midge", "stray"), -1);
    assert_non_null(strstr(err, "'stray'"));
    assert_int_equal(parse(&c, err, sizeof(err), 2, "midge", "-p"), -1);
    assert_non_null(strstr(err, "'-p'"));
    assert_int_equal(parse(&c, err, sizeof(err), 3, "midge", "-p", "http"), -1);
    assert_non_null(strstr(err, "'http'"));
    assert_int_equal(parse(&c, err, sizeof(err), 3, "midge", "-p", "0"), -1);
    assert_non_null(strstr(err, "out of range"));
    assert_int_equal(parse(&c, err, sizeof(err), 3, "midge", "-p", "65536"), -1);
    assert_non_null(strstr(err, "65536"));
    assert_int_equal(parse(&c, err, sizeof(err), 2, "midge", "-c"), -1);
    assert_non_null(strstr(err, "'-c'"));
    char missing[300];
    snprintf(missing, sizeof(missing), "%s/nope.conf", tmpdir);
    assert_int_equal(parse(&c, err, sizeof(err), 3, "midge", "-c", missing), -1);
    assert_non_null(strstr(err, missing));
    /* a bad flag is reported even when the file is bad too */
    assert_int_equal(parse(&c, err, sizeof(err), 4, "midge", "-c", missing, "-q"), -1);
    assert_non_null(strstr(err, "'-q'"));
}

/* Run config_parse_args with stdout captured into out. */
static int parse_captured(char *out, size_t outlen, int argc, char **argv)
{
    char path[300];
    snprintf(path, sizeof(path), "%s/stdout%d", tmpdir, ++file_counter);
    fflush(stdout);
    int saved = dup(1);
    FILE *f = fopen(path, "w+");
    assert_non_null(f);
    dup2(fileno(f), 1);
    config_t c;
    char err[256];
    config_init(&c);
    int rc = config_parse_args(&c, argc, argv, err, sizeof(err));
    fflush(stdout);
    dup2(saved, 1);
    close(saved);
    rewind(f);
    size_t n = fread(out, 1, outlen - 1, f);
    out[n] = '\0';
    fclose(f);
    return rc;
}

static void test_args_help_version(void **state)
{
    (void)state;
    char out[4096];
    char *help[] = {"midge", "-h", NULL};
    assert_int_equal(parse_captured(out, sizeof(out), 2, help), 1);
    assert_non_null(strstr(out, "Usage:"));
    assert_non_null(strstr(out, "-p PORT"));
    assert_non_null(strstr(out, "-c FILE"));
    char *help2[] = {"midge", "-v", "--help", NULL};
    assert_int_equal(parse_captured(out, sizeof(out), 3, help2), 1);
    assert_non_null(strstr(out, "Usage:"));
    char *version[] = {"midge", "--version", NULL};
    assert_int_equal(parse_captured(out, sizeof(out), 2, version), 1);
    assert_string_equal(out, "midge " MIDGE_VERSION "\n");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_comments_blank_whitespace),
        cmocka_unit_test(test_empty_file),
        cmocka_unit_test(test_missing_file),
        cmocka_unit_test(test_listener),
        cmocka_unit_test(test_listener_errors),
        cmocka_unit_test(test_port_and_bind_address),
        cmocka_unit_test(test_numeric_options),
        cmocka_unit_test(test_numeric_special_values),
        cmocka_unit_test(test_numeric_errors),
        cmocka_unit_test(test_numeric_ranges),
        cmocka_unit_test(test_bool_options),
        cmocka_unit_test(test_persistence),
        cmocka_unit_test(test_log_type),
        cmocka_unit_test(test_log_dest),
        cmocka_unit_test(test_listener_unix_socket),
        cmocka_unit_test(test_listener_defaults),
        cmocka_unit_test(test_socket_domain_interface_protocol),
        cmocka_unit_test(test_accept_protocol_versions),
        cmocka_unit_test(test_enable_proxy_protocol),
        cmocka_unit_test(test_max_connections_scope),
        cmocka_unit_test(test_global_max_connections),
        cmocka_unit_test(test_tls_options),
        cmocka_unit_test(test_tls_path_with_spaces),
        cmocka_unit_test(test_tls_errors),
        cmocka_unit_test(test_files_must_exist),
        cmocka_unit_test(test_websockets_options),
        cmocka_unit_test(test_default_listener_options),
        cmocka_unit_test(test_allow_anonymous_default),
        cmocka_unit_test(test_security_global),
        cmocka_unit_test(test_security_per_listener),
        cmocka_unit_test(test_persistence_options),
        cmocka_unit_test(test_pid_file_and_user),
        cmocka_unit_test(test_log_dest_file),
        cmocka_unit_test(test_include_dir),
        cmocka_unit_test(test_args_test_config),
        cmocka_unit_test(test_unknown_option),
        cmocka_unit_test(test_every_option_handled),
        cmocka_unit_test(test_error_stops_at_first_bad_line),
        cmocka_unit_test(test_long_line),
        cmocka_unit_test(test_args_none),
        cmocka_unit_test(test_args_port_verbose_daemon),
        cmocka_unit_test(test_args_config_file),
        cmocka_unit_test(test_args_errors),
        cmocka_unit_test(test_args_help_version),
    };
    return cmocka_run_group_tests(tests, setup_dir, remove_dir);
}
