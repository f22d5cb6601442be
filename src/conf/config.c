/* config.c - the configuration file (Mosquitto's mosquitto.conf syntax) and the command
 * line, turned into a config_t (see config.h). Runs in the main thread (at start-up, and
 * again on SIGHUP): no I/O beyond reading the files (include_dir's too), checking that the
 * files it names exist, and printing help; no global state.
 *
 * Every refusal names the file, the line, the option and the value, because a config
 * error is read by a person who has the file open in an editor.
 */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#ifndef MIDGE_VERSION
#define MIDGE_VERSION "0.0.0"
#endif

/* The largest MQTT packet: a 268435455-byte remaining length plus a 5-byte header. */
#define CONFIG_PROTOCOL_MAX_PACKET 268435460u
#define CONFIG_LINE_MAX 1024

void config_init(config_t *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->listener_count = 0;
    cfg->threads = 0;
    cfg->allow_anonymous = true;
    cfg->max_packet_size = CONFIG_PROTOCOL_MAX_PACKET;
    cfg->message_size_limit = 0;
    cfg->max_inflight_messages = 20;
    cfg->max_queued_messages = 1000;
    cfg->max_queued_bytes = 0;
    cfg->max_keepalive = 65535;
    cfg->sys_interval = 10;
    cfg->thread_backlog_limit = 65536;
    cfg->connect_timeout = 10;
    cfg->max_topic_alias = 10;
    cfg->receive_maximum = 100;
    cfg->log_types = CONFIG_LOG_DEFAULT;
    cfg->log_dest = CONFIG_LOG_DEST_STDERR;
    cfg->log_timestamp = true;
    cfg->connection_messages = true;
    cfg->persistence = false;
    snprintf(cfg->persistence_file, sizeof(cfg->persistence_file), "midge.db");
    cfg->autosave_interval = 1800;
    cfg->persistence_mode = CONFIG_PERSIST_DURABLE;
    cfg->persistence_sync = CONFIG_SYNC_NORMAL;
    cfg->default_listener = -1;
    cfg->verbose = 0;
    cfg->daemon = false;
    cfg->config_file[0] = '\0';
}

/* State of one load: the main file and the files include_dir brings in. Listener-scoped
 * options before the first `listener` line of a file belong to Mosquitto's "default
 * listener" (here: the `port`/`bind_address` listener, the -p listeners and the implicit
 * one); they are kept in `deflt` and copied into those listeners at the end, because the
 * -p listeners only exist once the whole file is read. */
typedef struct loader {
    config_t *cfg;
    config_listener_t deflt;          /* the default listener's options */
    bool deflt_used;                  /* a listener option was given for it */
    bool deflt_anon_set;              /* allow_anonymous given for it */
    char deflt_file[CONFIG_PATH_MAX]; /* where its first option was given */
    int deflt_line;
    bool from_line[CONFIG_MAX_LISTENERS]; /* listener i comes from a `listener` line */
    bool anon_set[CONFIG_MAX_LISTENERS];  /* allow_anonymous given in its section */
    char where_file[CONFIG_MAX_LISTENERS][CONFIG_PATH_MAX]; /* its `listener` line */
    int where_line[CONFIG_MAX_LISTENERS];
    bool global_anon_set; /* allow_anonymous given anywhere */
    bool global_anon;     /* the last such value */
    bool file_listeners;  /* listener, port or bind_address seen */
    bool log_types_seen;  /* the first log_type line replaces the default */
    bool log_dest_seen;
} loader_t;

/* Where a message is being reported: "FILE:LINE: " for a file, "" for the command line. */
typedef struct parse_ctx {
    const char *path;
    int line;
    char *err;
    size_t errlen;
    loader_t *ld;
    int cur;   /* the listener of this file's last `listener` line; -1: the default one */
    int depth; /* 0 for the main file, 1 for a file of include_dir */
} parse_ctx_t;

static int fail(parse_ctx_t *ctx, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int fail(parse_ctx_t *ctx, const char *fmt, ...)
{
    if (!ctx->err || ctx->errlen == 0)
        return -1;
    int n = 0;
    if (ctx->path)
        n = snprintf(ctx->err, ctx->errlen, "%s:%d: ", ctx->path, ctx->line);
    if (n < 0 || (size_t)n >= ctx->errlen)
        return -1;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(ctx->err + n, ctx->errlen - (size_t)n, fmt, ap);
    va_end(ap);
    return -1;
}

/* A decimal integer in [min, max], the whole word: no sign other than a leading '-',
 * no trailing junk, no overflow. */
static int parse_int(parse_ctx_t *ctx, const char *opt, const char *s, int64_t min, int64_t max,
                     int64_t *out)
{
    const char *p = s;
    bool neg = false;
    if (*p == '-') {
        neg = true;
        p++;
    }
    if (*p < '0' || *p > '9')
        return fail(ctx, "option '%s': '%s' is not a number", opt, s);
    uint64_t v = 0;
    bool overflow = false;
    for (; *p >= '0' && *p <= '9'; p++) {
        if (v > (UINT64_MAX - 9) / 10)
            overflow = true;
        else
            v = v * 10 + (uint64_t)(*p - '0');
    }
    if (*p != '\0')
        return fail(ctx, "option '%s': '%s' is not a number (junk after the digits)", opt, s);
    if (overflow || v > (uint64_t)INT64_MAX)
        return fail(ctx, "option '%s': %s is out of range (%" PRId64 "..%" PRId64 ")", opt, s, min,
                    max);
    int64_t sv = neg ? -(int64_t)v : (int64_t)v;
    if (sv < min || sv > max)
        return fail(ctx, "option '%s': %s is out of range (%" PRId64 "..%" PRId64 ")", opt, s, min,
                    max);
    *out = sv;
    return 0;
}

/* Mosquitto's booleans: true/false, and 1/0 as its parser also takes them. */
static int parse_bool(parse_ctx_t *ctx, const char *opt, const char *s, bool *out)
{
    if (strcmp(s, "true") == 0 || strcmp(s, "1") == 0)
        *out = true;
    else if (strcmp(s, "false") == 0 || strcmp(s, "0") == 0)
        *out = false;
    else
        return fail(ctx, "option '%s': '%s' is not a boolean (true or false)", opt, s);
    return 0;
}

static int parse_port(parse_ctx_t *ctx, const char *opt, const char *s, uint16_t *out)
{
    int64_t v;
    if (parse_int(ctx, opt, s, 1, 65535, &v) < 0)
        return -1;
    *out = (uint16_t)v;
    return 0;
}

static int copy_address(parse_ctx_t *ctx, const char *opt, const char *addr, char *dst,
                        size_t dstlen)
{
    size_t n = strlen(addr);
    if (n >= dstlen)
        return fail(ctx, "option '%s': address '%s' is too long (at most %zu characters)", opt,
                    addr, dstlen - 1);
    memcpy(dst, addr, n + 1);
    return 0;
}

static int copy_string(parse_ctx_t *ctx, const char *opt, const char *val, char *dst, size_t dstlen)
{
    size_t n = strlen(val);
    if (n >= dstlen)
        return fail(ctx, "option '%s': '%s' is too long (at most %zu characters)", opt, val,
                    dstlen - 1);
    memcpy(dst, val, n + 1);
    return 0;
}

/* How a listener is named in messages: its own line's words. */
static void describe_listener(const config_listener_t *l, char *out, size_t outlen)
{
    if (l->unix_path[0])
        snprintf(out, outlen, "listener 0 %s", l->unix_path);
    else if (l->bind_address[0])
        snprintf(out, outlen, "listener %u %s", l->port, l->bind_address);
    else
        snprintf(out, outlen, "listener %u", l->port);
}

/* Append a listener with the defaults of a new one; refuses a duplicate (same port and
 * address, or same unix path) and a 17th. */
static int add_listener(config_t *cfg, parse_ctx_t *ctx, const char *opt, uint16_t port,
                        const char *addr, const char *unix_path)
{
    for (int i = 0; i < cfg->listener_count; i++) {
        const config_listener_t *o = &cfg->listeners[i];
        bool same = unix_path[0]
                        ? strcmp(o->unix_path, unix_path) == 0
                        : o->port == port && !o->unix_path[0] && strcmp(o->bind_address, addr) == 0;
        if (same) {
            if (unix_path[0])
                return fail(ctx, "option '%s': listener 0 %s is defined twice", opt, unix_path);
            return fail(ctx, "option '%s': listener %u %s is defined twice", opt, port,
                        addr[0] ? addr : "(all addresses)");
        }
    }
    if (cfg->listener_count >= CONFIG_MAX_LISTENERS)
        return fail(ctx, "option '%s': too many listeners (at most %d)", opt, CONFIG_MAX_LISTENERS);
    config_listener_t *l = &cfg->listeners[cfg->listener_count];
    memset(l, 0, sizeof(*l));
    l->port = port;
    l->accept_versions = CONFIG_PROTO_ALL;
    l->allow_anonymous = cfg->allow_anonymous;
    if (copy_address(ctx, opt, addr, l->bind_address, sizeof(l->bind_address)) < 0)
        return -1;
    if (strlen(unix_path) >= sizeof(l->unix_path))
        return fail(ctx, "option '%s': unix socket path '%s' is too long (at most %zu characters)",
                    opt, unix_path, sizeof(l->unix_path) - 1);
    memcpy(l->unix_path, unix_path, strlen(unix_path) + 1);
    cfg->listener_count++;
    return 0;
}

/* The listener that the legacy `port` and `bind_address` options describe; created on the
 * first of them, with Mosquitto's defaults (port 1883, all addresses). */
static int default_listener(config_t *cfg, parse_ctx_t *ctx, const char *opt,
                            config_listener_t **out)
{
    if (cfg->default_listener < 0) {
        if (add_listener(cfg, ctx, opt, 1883, "", "") < 0)
            return -1;
        cfg->default_listener = cfg->listener_count - 1;
    }
    *out = &cfg->listeners[cfg->default_listener];
    return 0;
}

static const struct {
    const char *name;
    unsigned bits;
} log_type_names[] = {
    {"debug", CONFIG_LOG_DEBUG},
    {"error", CONFIG_LOG_ERROR},
    {"warning", CONFIG_LOG_WARNING},
    {"notice", CONFIG_LOG_NOTICE},
    {"information", CONFIG_LOG_INFORMATION},
    {"subscribe", CONFIG_LOG_SUBSCRIBE},
    {"unsubscribe", CONFIG_LOG_UNSUBSCRIBE},
    {"websockets", CONFIG_LOG_WEBSOCKETS},
    {"all", CONFIG_LOG_ALL},
    {"none", 0},
};

/* Numeric options: the option, where the value goes, and its range. */
enum num_kind { NUM_INT, NUM_U16, NUM_U32, NUM_U64 };
typedef struct num_option {
    const char *name;
    size_t offset;
    enum num_kind kind;
    int64_t min, max;
} num_option_t;

#define NUM(name, kind, min, max)                                                                  \
    {                                                                                              \
#name, offsetof(config_t, name), kind, min, max                                            \
    }
static const num_option_t num_options[] = {
    NUM(threads, NUM_INT, 0, 1024),
    /* 0 is Mosquitto's "no limit": the protocol's own limit */
    NUM(max_packet_size, NUM_U32, 0, CONFIG_PROTOCOL_MAX_PACKET),
    NUM(message_size_limit, NUM_U32, 0, 268435455),
    NUM(max_inflight_messages, NUM_U16, 0, 65535),
    NUM(max_queued_messages, NUM_U32, 0, UINT32_MAX),
    NUM(max_queued_bytes, NUM_U64, 0, INT64_MAX),
    NUM(max_keepalive, NUM_U16, 0, 65535),
    NUM(sys_interval, NUM_U32, 0, INT32_MAX),
    NUM(connect_timeout, NUM_U32, 1, 86400),
    NUM(max_topic_alias, NUM_U16, 0, 65535),
    /* MQTT-3.2.2.3.3: a Receive Maximum of 0 is a protocol error */
    NUM(receive_maximum, NUM_U16, 1, 65535),
    /* -1 is Mosquitto's "unlimited"; stored as 0 (see below) */
    NUM(global_max_connections, NUM_U32, -1, INT32_MAX),
    NUM(autosave_interval, NUM_U32, 0, INT32_MAX),
    NUM(thread_backlog_limit, NUM_U32, 16, INT32_MAX),
};
#undef NUM

static void store_num(config_t *cfg, const num_option_t *o, int64_t v)
{
    char *p = (char *)cfg + o->offset;
    if (strcmp(o->name, "global_max_connections") == 0 && v < 0)
        v = 0;
    if (strcmp(o->name, "max_packet_size") == 0 && v == 0)
        v = CONFIG_PROTOCOL_MAX_PACKET;
    switch (o->kind) {
    case NUM_INT: {
        int x = (int)v;
        memcpy(p, &x, sizeof(x));
        break;
    }
    case NUM_U16: {
        uint16_t x = (uint16_t)v;
        memcpy(p, &x, sizeof(x));
        break;
    }
    case NUM_U32: {
        uint32_t x = (uint32_t)v;
        memcpy(p, &x, sizeof(x));
        break;
    }
    case NUM_U64: {
        uint64_t x = (uint64_t)v;
        memcpy(p, &x, sizeof(x));
        break;
    }
    }
}

/* Listener-scoped string options. A path is checked at the line that names it (exists and
 * is readable; a directory for capath and http_dir) so that a typo is reported where it is;
 * reading the file's content is for TLS and auth at start-up. */
enum str_check { STR_PLAIN, STR_FILE, STR_DIR };
typedef struct str_option {
    const char *name;
    size_t offset, size;
    enum str_check check;
    bool tls; /* needs certfile on the same listener */
} str_option_t;

#define LSTR(name, field, check, tls)                                                              \
    {                                                                                              \
        name, offsetof(config_listener_t, field), sizeof(((config_listener_t *)0)->field), check,  \
            tls                                                                                    \
    }
static const str_option_t listener_strings[] = {
    LSTR("bind_interface", bind_interface, STR_PLAIN, false),
    LSTR("cafile", cafile, STR_FILE, true),
    LSTR("capath", capath, STR_DIR, true),
    LSTR("certfile", certfile, STR_FILE, false),
    LSTR("keyfile", keyfile, STR_FILE, false),
    LSTR("crlfile", crlfile, STR_FILE, true),
    LSTR("ciphers", ciphers, STR_PLAIN, true),
    LSTR("ciphers_tls1.3", ciphers13, STR_PLAIN, true),
    LSTR("http_dir", http_dir, STR_DIR, false),
};
#undef LSTR

/* Listener-scoped booleans (all TLS options). */
typedef struct bool_option {
    const char *name;
    size_t offset;
} bool_option_t;

static const bool_option_t listener_bools[] = {
    {"require_certificate", offsetof(config_listener_t, require_certificate)},
    {"use_identity_as_username", offsetof(config_listener_t, use_identity_as_username)},
    {"use_subject_as_username", offsetof(config_listener_t, use_subject_as_username)},
};

/* Every option that is not numeric (num_options), and whether its value is one word or the
 * rest of the line (paths may hold spaces: Mosquitto's string options take the rest of the
 * line). Knowing the option first lets an unknown one be reported as unknown. */
static const struct {
    const char *name;
    bool rest_of_line;
} known_options[] = {
    {"listener", false},
    {"port", false},
    {"bind_address", false},
    {"socket_domain", false},
    {"bind_interface", true},
    {"protocol", false},
    {"max_connections", false},
    {"accept_protocol_versions", true},
    {"enable_proxy_protocol", false},
    {"cafile", true},
    {"capath", true},
    {"certfile", true},
    {"keyfile", true},
    {"crlfile", true},
    {"ciphers", true},
    {"ciphers_tls1.3", true},
    {"tls_version", false},
    {"require_certificate", false},
    {"use_identity_as_username", false},
    {"use_subject_as_username", false},
    {"http_dir", true},
    {"websockets_origin", true},
    {"websockets_trusted_proxy", false},
    {"per_listener_settings", false},
    {"allow_anonymous", false},
    {"password_file", true},
    {"acl_file", true},
    {"log_type", false},
    {"log_dest", false},
    {"log_timestamp", false},
    {"connection_messages", false},
    {"persistence", false},
    {"persistence_location", true},
    {"persistence_file", true},
    {"persistence_mode", false},
    {"persistence_sync", false},
    {"pid_file", true},
    {"user", false},
    {"include_dir", true},
};

/* 0 unknown, 1 one word, 2 rest of line. */
static int option_kind(const char *opt)
{
    for (size_t i = 0; i < sizeof(known_options) / sizeof(known_options[0]); i++) {
        if (strcmp(opt, known_options[i].name) == 0)
            return known_options[i].rest_of_line ? 2 : 1;
    }
    for (size_t i = 0; i < sizeof(num_options) / sizeof(num_options[0]); i++) {
        if (strcmp(opt, num_options[i].name) == 0)
            return 1;
    }
    return 0;
}

/* The listener a listener-scoped option applies to: the current one, or the default
 * listener's options before the first `listener` line of this file. */
static config_listener_t *target_listener(parse_ctx_t *ctx)
{
    loader_t *ld = ctx->ld;
    if (ctx->cur >= 0)
        return &ld->cfg->listeners[ctx->cur];
    if (!ld->deflt_used) {
        ld->deflt_used = true;
        snprintf(ld->deflt_file, sizeof(ld->deflt_file), "%s", ctx->path ? ctx->path : "");
        ld->deflt_line = ctx->line;
    }
    return &ld->deflt;
}

static int check_path(parse_ctx_t *ctx, const char *opt, const char *path, enum str_check check)
{
    if (check == STR_PLAIN)
        return 0;
    struct stat st;
    if (stat(path, &st) < 0)
        return fail(ctx, "option '%s': cannot use '%s': %s", opt, path, strerror(errno));
    if (check == STR_DIR && !S_ISDIR(st.st_mode))
        return fail(ctx, "option '%s': '%s' is not a directory", opt, path);
    if (check == STR_FILE && S_ISDIR(st.st_mode))
        return fail(ctx, "option '%s': '%s' is a directory, not a file", opt, path);
    if (access(path, check == STR_DIR ? R_OK | X_OK : R_OK) < 0)
        return fail(ctx, "option '%s': cannot read '%s': %s", opt, path, strerror(errno));
    return 0;
}

/* accept_protocol_versions 3,4,5: any non-empty subset; 3 is MQTT 3.1, 4 is 3.1.1, 5 is 5.0. */
static int parse_versions(parse_ctx_t *ctx, const char *opt, const char *val, unsigned *out)
{
    unsigned bits = 0;
    const char *p = val;
    for (;;) {
        while (*p == ' ' || *p == '\t')
            p++;
        const char *start = p;
        while (*p && *p != ',' && *p != ' ' && *p != '\t')
            p++;
        size_t n = (size_t)(p - start);
        while (*p == ' ' || *p == '\t')
            p++;
        if (n != 1 || start[0] < '3' || start[0] > '5')
            return fail(ctx,
                        "option '%s': '%s': each version must be 3, 4 or 5, separated by commas",
                        opt, val);
        bits |= 1u << (start[0] - '0');
        if (*p == '\0')
            break;
        if (*p != ',')
            return fail(ctx, "option '%s': '%s': versions are separated by commas", opt, val);
        p++;
    }
    *out = bits;
    return 0;
}

/* A listener-scoped option (returns 1 when opt is not one). */
static int apply_listener_option(parse_ctx_t *ctx, const char *opt, const char *val)
{
    for (size_t i = 0; i < sizeof(listener_strings) / sizeof(listener_strings[0]); i++) {
        const str_option_t *o = &listener_strings[i];
        if (strcmp(opt, o->name) != 0)
            continue;
        if (check_path(ctx, opt, val, o->check) < 0)
            return -1;
        /* SO_BINDTODEVICE takes an interface name shorter than IFNAMSIZ (16) */
        if (strcmp(opt, "bind_interface") == 0 && strlen(val) >= 16)
            return fail(ctx, "option '%s': interface name '%s' is too long (at most 15 characters)",
                        opt, val);
        config_listener_t *l = target_listener(ctx);
        return copy_string(ctx, opt, val, (char *)l + o->offset, o->size);
    }
    for (size_t i = 0; i < sizeof(listener_bools) / sizeof(listener_bools[0]); i++) {
        if (strcmp(opt, listener_bools[i].name) != 0)
            continue;
        bool b;
        if (parse_bool(ctx, opt, val, &b) < 0)
            return -1;
        config_listener_t *l = target_listener(ctx);
        memcpy((char *)l + listener_bools[i].offset, &b, sizeof(b));
        return 0;
    }
    if (strcmp(opt, "max_connections") == 0) {
        int64_t v;
        if (parse_int(ctx, opt, val, -1, INT32_MAX, &v) < 0)
            return -1;
        uint32_t n = v < 0 ? 0 : (uint32_t)v; /* -1: Mosquitto's "unlimited" */
        /* Before any `listener` line: the default listener's (the -p and `port` ones). */
        target_listener(ctx)->max_connections = n;
        return 0;
    }
    if (strcmp(opt, "socket_domain") == 0) {
        int d;
        if (strcmp(val, "ipv4") == 0)
            d = 4;
        else if (strcmp(val, "ipv6") == 0)
            d = 6;
        else
            return fail(ctx, "option '%s': '%s' is not ipv4 or ipv6", opt, val);
        target_listener(ctx)->socket_domain = d;
        return 0;
    }
    if (strcmp(opt, "protocol") == 0) {
        bool ws;
        if (strcmp(val, "mqtt") == 0)
            ws = false;
        else if (strcmp(val, "websockets") == 0)
            ws = true;
        else
            return fail(ctx, "option '%s': '%s' is not mqtt or websockets", opt, val);
        target_listener(ctx)->websockets = ws;
        return 0;
    }
    if (strcmp(opt, "tls_version") == 0) {
        if (strcmp(val, "tlsv1.2") != 0 && strcmp(val, "tlsv1.3") != 0)
            return fail(ctx, "option '%s': '%s' is not supported (tlsv1.2 or tlsv1.3)", opt, val);
        config_listener_t *l = target_listener(ctx);
        return copy_string(ctx, opt, val, l->tls_version, sizeof(l->tls_version));
    }
    if (strcmp(opt, "enable_proxy_protocol") == 0) {
        if (strcmp(val, "1") != 0 && strcmp(val, "2") != 0)
            return fail(ctx, "option '%s': '%s' is not a PROXY protocol version (1 or 2)", opt,
                        val);
        target_listener(ctx)->proxy_protocol = val[0] - '0';
        return 0;
    }
    if (strcmp(opt, "accept_protocol_versions") == 0) {
        unsigned bits = 0;
        if (parse_versions(ctx, opt, val, &bits) < 0)
            return -1;
        target_listener(ctx)->accept_versions = bits;
        return 0;
    }
    if (strcmp(opt, "websockets_origin") == 0) {
        config_listener_t *l = target_listener(ctx);
        if (l->norigins >= CONFIG_MAX_ORIGINS)
            return fail(ctx, "option '%s': too many origins on one listener (at most %d)", opt,
                        CONFIG_MAX_ORIGINS);
        if (copy_string(ctx, opt, val, l->origins[l->norigins], sizeof(l->origins[0])) < 0)
            return -1;
        l->norigins++;
        return 0;
    }
    if (strcmp(opt, "websockets_trusted_proxy") == 0) {
        config_listener_t *l = target_listener(ctx);
        if (l->ntrusted >= CONFIG_MAX_TRUSTED)
            return fail(ctx, "option '%s': too many trusted proxies on one listener (at most %d)",
                        opt, CONFIG_MAX_TRUSTED);
        if (copy_address(ctx, opt, val, l->trusted_proxies[l->ntrusted],
                         sizeof(l->trusted_proxies[0])) < 0)
            return -1;
        l->ntrusted++;
        return 0;
    }
    return 1;
}

/* allow_anonymous, password_file, acl_file: each value is kept both as the global one and
 * as its section's (listener or default), and per_listener_settings decides at the end
 * which applies. So the result does not depend on where per_listener_settings stands. */
static int apply_security_option(parse_ctx_t *ctx, const char *opt, const char *val)
{
    loader_t *ld = ctx->ld;
    config_t *cfg = ld->cfg;
    config_listener_t *l = ctx->cur >= 0 ? &cfg->listeners[ctx->cur] : &ld->deflt;
    if (strcmp(opt, "allow_anonymous") == 0) {
        bool b;
        if (parse_bool(ctx, opt, val, &b) < 0)
            return -1;
        ld->global_anon_set = true;
        ld->global_anon = b;
        l->allow_anonymous = b;
        if (ctx->cur >= 0)
            ld->anon_set[ctx->cur] = true;
        else
            ld->deflt_anon_set = true;
        return 0;
    }
    bool pw = strcmp(opt, "password_file") == 0;
    if (!pw && strcmp(opt, "acl_file") != 0)
        return 1;
    if (check_path(ctx, opt, val, STR_FILE) < 0)
        return -1;
    if (copy_string(ctx, opt, val, pw ? cfg->password_file : cfg->acl_file,
                    sizeof(cfg->password_file)) < 0)
        return -1;
    return copy_string(ctx, opt, val, pw ? l->password_file : l->acl_file,
                       sizeof(l->password_file));
}

/* `listener PORT [ADDRESS]`, or `listener 0 PATH` for a unix socket. */
static int apply_listener_line(parse_ctx_t *ctx, char **w, int nw)
{
    loader_t *ld = ctx->ld;
    config_t *cfg = ld->cfg;
    int64_t port;
    if (parse_int(ctx, "listener", w[1], 0, 65535, &port) < 0)
        return -1;
    const char *addr = nw > 2 ? w[2] : "";
    if (port == 0 && !addr[0])
        return fail(ctx, "option 'listener': port 0 needs a unix socket path (listener 0 PATH)");
    if (port == 0 && strlen(addr) >= sizeof(cfg->listeners[0].unix_path))
        return fail(ctx,
                    "option 'listener': unix socket path '%s' is too long (at most %zu "
                    "characters)",
                    addr, sizeof(cfg->listeners[0].unix_path) - 1);
    if (add_listener(cfg, ctx, "listener", (uint16_t)port, port ? addr : "", port ? "" : addr) < 0)
        return -1;
    int i = cfg->listener_count - 1;
    ld->from_line[i] = true;
    ld->file_listeners = true;
    snprintf(ld->where_file[i], sizeof(ld->where_file[i]), "%s", ctx->path ? ctx->path : "");
    ld->where_line[i] = ctx->line;
    ctx->cur = i;
    return 0;
}

/* log_dest stdout|stderr|file PATH|none; syslog, topic and dlt are Mosquitto's too but
 * Midge cannot honour them: refused, not ignored. */
static int apply_log_dest(parse_ctx_t *ctx, char **w, int nw, const char *rest)
{
    loader_t *ld = ctx->ld;
    config_t *cfg = ld->cfg;
    const char *val = w[1];
    unsigned dest = 0;
    if (strcmp(val, "file") == 0) {
        const char *path = rest + strlen("file");
        while (*path == ' ' || *path == '\t')
            path++;
        if (!*path)
            return fail(ctx, "option 'log_dest': 'file' needs a path (log_dest file PATH)");
        if (copy_string(ctx, "log_dest", path, cfg->log_file, sizeof(cfg->log_file)) < 0)
            return -1;
        dest = CONFIG_LOG_DEST_FILE;
    } else if (nw > 2) {
        return fail(ctx, "option 'log_dest': unexpected extra value '%s'", w[2]);
    } else if (strcmp(val, "stdout") == 0) {
        dest = CONFIG_LOG_DEST_STDOUT;
    } else if (strcmp(val, "stderr") == 0) {
        dest = CONFIG_LOG_DEST_STDERR;
    } else if (strcmp(val, "none") == 0) {
        dest = 0;
    } else if (strcmp(val, "syslog") == 0 || strcmp(val, "topic") == 0 || strcmp(val, "dlt") == 0) {
        return fail(ctx,
                    "option 'log_dest': '%s' is not supported by Midge (stdout, stderr, "
                    "file PATH or none)",
                    val);
    } else {
        return fail(ctx,
                    "option 'log_dest': unknown destination '%s' (stdout, stderr, file PATH "
                    "or none)",
                    val);
    }
    if (!ld->log_dest_seen || dest == 0)
        cfg->log_dest = 0;
    ld->log_dest_seen = true;
    cfg->log_dest |= dest;
    return 0;
}

static int apply_log_type(parse_ctx_t *ctx, const char *val)
{
    loader_t *ld = ctx->ld;
    config_t *cfg = ld->cfg;
    for (size_t i = 0; i < sizeof(log_type_names) / sizeof(log_type_names[0]); i++) {
        if (strcmp(val, log_type_names[i].name) == 0) {
            if (!ld->log_types_seen)
                cfg->log_types = 0;
            ld->log_types_seen = true;
            if (log_type_names[i].bits == 0)
                cfg->log_types = 0;
            else
                cfg->log_types |= log_type_names[i].bits;
            return 0;
        }
    }
    return fail(ctx,
                "option 'log_type': unknown type '%s' (debug, error, warning, notice, "
                "information, subscribe, unsubscribe, websockets, all, none)",
                val);
}

static int load_file(loader_t *ld, const char *path, int depth, char *err, size_t errlen);

static int compare_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* include_dir DIR: every regular file whose name ends in ".conf", in strcmp order (capitals
 * first, as Mosquitto sorts them). Only the main file may include, so there is no cycle. */
static int apply_include_dir(parse_ctx_t *ctx, const char *dir)
{
    if (ctx->depth > 0)
        return fail(ctx, "option 'include_dir': only the main configuration file may use it");
    DIR *d = opendir(dir);
    if (!d)
        return fail(ctx, "option 'include_dir': cannot open directory '%s': %s", dir,
                    strerror(errno));
    char **names = NULL;
    size_t n = 0, cap = 0;
    int rc = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        size_t len = strlen(e->d_name);
        if (len < 5 || strcmp(e->d_name + len - 5, ".conf") != 0)
            continue;
        if (n == cap) {
            size_t ncap = cap ? cap * 2 : 16;
            char **nn = realloc(names, ncap * sizeof(*nn));
            if (!nn) {
                rc = fail(ctx, "option 'include_dir': out of memory");
                goto out;
            }
            names = nn;
            cap = ncap;
        }
        names[n] = malloc(strlen(dir) + len + 2);
        if (!names[n]) {
            rc = fail(ctx, "option 'include_dir': out of memory");
            goto out;
        }
        sprintf(names[n], "%s/%s", dir, e->d_name);
        n++;
    }
    if (n)
        qsort(names, n, sizeof(*names), compare_names);
    for (size_t i = 0; i < n; i++) {
        struct stat st;
        if (stat(names[i], &st) < 0 || !S_ISREG(st.st_mode))
            continue;
        if (load_file(ctx->ld, names[i], ctx->depth + 1, ctx->err, ctx->errlen) < 0) {
            rc = -1;
            goto out;
        }
    }
out:
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
    closedir(d);
    return rc;
}

/* Global options that are not numbers. Returns 1 when opt is not one. */
static int apply_global_option(parse_ctx_t *ctx, const char *opt, const char *val)
{
    config_t *cfg = ctx->ld->cfg;
    if (strcmp(opt, "log_timestamp") == 0)
        return parse_bool(ctx, opt, val, &cfg->log_timestamp);
    if (strcmp(opt, "connection_messages") == 0)
        return parse_bool(ctx, opt, val, &cfg->connection_messages);
    if (strcmp(opt, "per_listener_settings") == 0)
        return parse_bool(ctx, opt, val, &cfg->per_listener_settings);
    if (strcmp(opt, "persistence") == 0) {
        return parse_bool(ctx, opt, val, &cfg->persistence);
    }
    if (strcmp(opt, "persistence_mode") == 0) {
        if (strcmp(val, "durable") == 0)
            cfg->persistence_mode = CONFIG_PERSIST_DURABLE;
        else if (strcmp(val, "periodic") == 0)
            cfg->persistence_mode = CONFIG_PERSIST_PERIODIC;
        else
            return fail(ctx, "option 'persistence_mode': '%s' is not durable or periodic", val);
        return 0;
    }
    if (strcmp(opt, "persistence_sync") == 0) {
        if (strcmp(val, "normal") == 0)
            cfg->persistence_sync = CONFIG_SYNC_NORMAL;
        else if (strcmp(val, "full") == 0)
            cfg->persistence_sync = CONFIG_SYNC_FULL;
        else
            return fail(ctx, "option 'persistence_sync': '%s' is not normal or full", val);
        return 0;
    }
    if (strcmp(opt, "persistence_location") == 0)
        return copy_string(ctx, opt, val, cfg->persistence_location,
                           sizeof(cfg->persistence_location));
    if (strcmp(opt, "persistence_file") == 0)
        return copy_string(ctx, opt, val, cfg->persistence_file, sizeof(cfg->persistence_file));
    if (strcmp(opt, "pid_file") == 0)
        return copy_string(ctx, opt, val, cfg->pid_file, sizeof(cfg->pid_file));
    if (strcmp(opt, "user") == 0)
        return copy_string(ctx, opt, val, cfg->user, sizeof(cfg->user));
    if (strcmp(opt, "log_type") == 0)
        return apply_log_type(ctx, val);
    if (strcmp(opt, "include_dir") == 0)
        return apply_include_dir(ctx, val);
    return 1;
}

/* Split a trimmed line into at most max words at runs of spaces and tabs (in place).
 * Returns the number of words, or max + 1 when there are more. */
static int split_words(char *s, char **words, int max)
{
    int n = 0;
    while (*s) {
        while (*s == ' ' || *s == '\t')
            *s++ = '\0';
        if (!*s)
            break;
        if (n == max)
            return max + 1;
        words[n++] = s;
        while (*s && *s != ' ' && *s != '\t')
            s++;
    }
    return n;
}

/* Apply one option line (trimmed, not empty, not a comment). */
static int apply_line(parse_ctx_t *ctx, char *s)
{
    /* The option name, then its value: the next word, or for string options the rest of
     * the line. */
    char *opt = s;
    while (*s && *s != ' ' && *s != '\t')
        s++;
    if (*s)
        *s++ = '\0';
    while (*s == ' ' || *s == '\t')
        s++;
    char *rest = s;
    int kind = option_kind(opt);
    if (kind == 0)
        return fail(ctx, "unknown option '%s'", opt);
    if (!*rest)
        return fail(ctx, "option '%s' needs a value", opt);
    if (kind == 2) {
        int r = apply_listener_option(ctx, opt, rest);
        if (r == 1)
            r = apply_security_option(ctx, opt, rest);
        if (r == 1)
            r = apply_global_option(ctx, opt, rest);
        if (r == 1)
            return fail(ctx, "option '%s' is not handled (internal error)", opt);
        return r;
    }
    char restcopy[CONFIG_LINE_MAX + 2];
    snprintf(restcopy, sizeof(restcopy), "%s", rest);
    /* No option takes more than two words: eight are enough to name the first extra one. */
    char *w[8];
    w[0] = opt;
    int nw = 1 + split_words(rest, w + 1, 7);
    if (strcmp(opt, "log_dest") == 0)
        return apply_log_dest(ctx, w, nw, restcopy);
    int max_values = strcmp(opt, "listener") == 0 ? 2 : 1;
    if (nw - 1 > max_values)
        return fail(ctx, "option '%s': unexpected extra value '%s'", opt, w[max_values + 1]);
    const char *val = w[1];
    if (strcmp(opt, "listener") == 0)
        return apply_listener_line(ctx, w, nw);
    for (size_t i = 0; i < sizeof(num_options) / sizeof(num_options[0]); i++) {
        if (strcmp(opt, num_options[i].name) == 0) {
            int64_t v;
            if (parse_int(ctx, opt, val, num_options[i].min, num_options[i].max, &v) < 0)
                return -1;
            store_num(ctx->ld->cfg, &num_options[i], v);
            return 0;
        }
    }
    if (strcmp(opt, "port") == 0 || strcmp(opt, "bind_address") == 0) {
        config_listener_t *l;
        uint16_t port = 0;
        if (opt[0] == 'p' && parse_port(ctx, opt, val, &port) < 0)
            return -1;
        if (default_listener(ctx->ld->cfg, ctx, opt, &l) < 0)
            return -1;
        ctx->ld->file_listeners = true;
        if (opt[0] == 'p') {
            l->port = port;
            return 0;
        }
        return copy_address(ctx, opt, val, l->bind_address, sizeof(l->bind_address));
    }
    int r = apply_listener_option(ctx, opt, val);
    if (r == 1)
        r = apply_security_option(ctx, opt, val);
    if (r == 1)
        r = apply_global_option(ctx, opt, val);
    if (r == 1) /* option_kind and the apply_ functions disagree: a bug, not a silent skip */
        return fail(ctx, "option '%s' is not handled (internal error)", opt);
    return r;
}

/* Strip leading and trailing white space (including a CR of a CRLF file) in place. */
static char *trim(char *s)
{
    while (*s == ' ' || *s == '\t')
        s++;
    size_t n = strlen(s);
    while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\r' || s[n - 1] == '\n'))
        s[--n] = '\0';
    return s;
}

/* Read one file into ld. Each file starts in the default listener's section (Mosquitto's
 * rule for included files too). */
static int load_file(loader_t *ld, const char *path, int depth, char *err, size_t errlen)
{
    parse_ctx_t ctx = {
        .path = path, .line = 0, .err = err, .errlen = errlen, .ld = ld, .cur = -1, .depth = depth};
    struct stat st;
    if (stat(path, &st) == 0 && S_ISDIR(st.st_mode)) {
        snprintf(err, errlen, "%s: cannot open: it is a directory", path);
        return -1;
    }
    FILE *f = fopen(path, "r");
    if (!f) {
        snprintf(err, errlen, "%s: cannot open: %s", path, strerror(errno));
        return -1;
    }
    int rc = 0;
    char buf[CONFIG_LINE_MAX + 2];
    while (fgets(buf, sizeof(buf), f)) {
        ctx.line++;
        size_t n = strlen(buf);
        if (n == sizeof(buf) - 1 && buf[n - 1] != '\n') {
            rc = fail(&ctx, "line too long (at most %d characters)", CONFIG_LINE_MAX);
            goto out;
        }
        char *s = trim(buf);
        if (*s == '\0' || *s == '#')
            continue;
        if (apply_line(&ctx, s) < 0) {
            rc = -1;
            goto out;
        }
    }
    if (ferror(f)) {
        snprintf(err, errlen, "%s: read error: %s", path, strerror(errno));
        rc = -1;
    }
out:
    fclose(f);
    return rc;
}

static void loader_init(loader_t *ld, config_t *cfg)
{
    memset(ld, 0, sizeof(*ld));
    ld->cfg = cfg;
    ld->deflt.accept_versions = CONFIG_PROTO_ALL;
}

/* A listener's options that do not fit together; reported at its `listener` line (or at
 * the first option of the default listener). */
static int check_listener(parse_ctx_t *ctx, const config_listener_t *l)
{
    char name[160];
    describe_listener(l, name, sizeof(name));
    bool tls = l->certfile[0] != '\0';
    if (tls && !l->keyfile[0])
        return fail(ctx, "%s: certfile is set but keyfile is not", name);
    if (l->keyfile[0] && !tls)
        return fail(ctx, "%s: keyfile is set but certfile is not", name);
    if (!tls) {
        for (size_t i = 0; i < sizeof(listener_strings) / sizeof(listener_strings[0]); i++) {
            const str_option_t *o = &listener_strings[i];
            if (o->tls && ((const char *)l + o->offset)[0])
                return fail(ctx, "%s: '%s' is a TLS option but the listener has no certfile", name,
                            o->name);
        }
        for (size_t i = 0; i < sizeof(listener_bools) / sizeof(listener_bools[0]); i++) {
            bool b;
            memcpy(&b, (const char *)l + listener_bools[i].offset, sizeof(b));
            if (b)
                return fail(ctx, "%s: '%s' is a TLS option but the listener has no certfile", name,
                            listener_bools[i].name);
        }
        if (l->tls_version[0])
            return fail(ctx, "%s: 'tls_version' is a TLS option but the listener has no certfile",
                        name);
    }
    if (l->require_certificate && !l->cafile[0] && !l->capath[0])
        return fail(ctx, "%s: require_certificate needs cafile or capath", name);
    if (l->use_identity_as_username && l->use_subject_as_username)
        return fail(ctx, "%s: use_identity_as_username and use_subject_as_username are both set",
                    name);
    if (!l->websockets) {
        if (l->http_dir[0])
            return fail(ctx, "%s: http_dir needs 'protocol websockets'", name);
        if (l->norigins)
            return fail(ctx, "%s: websockets_origin needs 'protocol websockets'", name);
        if (l->ntrusted)
            return fail(ctx, "%s: websockets_trusted_proxy needs 'protocol websockets'", name);
    }
    return 0;
}

/* The default listener's options into a listener that is not from a `listener` line,
 * keeping where it listens. */
static void apply_default_section(const loader_t *ld, config_listener_t *l)
{
    config_listener_t keep = *l;
    *l = ld->deflt;
    l->port = keep.port;
    memcpy(l->bind_address, keep.bind_address, sizeof(l->bind_address));
    memcpy(l->unix_path, keep.unix_path, sizeof(l->unix_path));
}

/* After every file is read and every listener exists: give each listener what applies to
 * it, then check each one. add_default: create Mosquitto's default listener (1883, all
 * addresses) when options were given for it and no listener takes them. */
static int loader_finish(loader_t *ld, bool add_default, char *err, size_t errlen)
{
    config_t *cfg = ld->cfg;
    parse_ctx_t ctx = {.path = NULL, .err = err, .errlen = errlen, .ld = ld, .cur = -1};
    bool has_default = false;
    for (int i = 0; i < cfg->listener_count; i++)
        has_default |= !ld->from_line[i];
    if (add_default && ld->deflt_used && !has_default) {
        ctx.path = ld->deflt_file;
        ctx.line = ld->deflt_line;
        for (int i = 0; i < cfg->listener_count; i++) {
            const config_listener_t *o = &cfg->listeners[i];
            if (o->port == 1883 && !o->unix_path[0] && !o->bind_address[0])
                return fail(&ctx, "this option is for the default listener (port 1883, all "
                                  "addresses, as options before any 'listener' line are), but "
                                  "'listener 1883' is defined too: move it below a listener line");
        }
        config_listener_t *unused;
        if (default_listener(cfg, &ctx, "listener", &unused) < 0)
            return -1;
    }
    /* Mosquitto 2: no anonymous access once a file defines listeners; Midge's local-only
     * default (no file, or only -p) keeps it. */
    bool anon_default = !ld->file_listeners;
    bool global_anon = ld->global_anon_set ? ld->global_anon : anon_default;
    for (int i = 0; i < cfg->listener_count; i++) {
        config_listener_t *l = &cfg->listeners[i];
        bool section_anon_set = ld->from_line[i] ? ld->anon_set[i] : ld->deflt_anon_set;
        if (!ld->from_line[i])
            apply_default_section(ld, l);
        if (cfg->per_listener_settings) {
            if (!section_anon_set)
                l->allow_anonymous = anon_default;
        } else {
            l->allow_anonymous = global_anon;
            memcpy(l->password_file, cfg->password_file, sizeof(l->password_file));
            memcpy(l->acl_file, cfg->acl_file, sizeof(l->acl_file));
        }
        if (ld->from_line[i]) {
            ctx.path = ld->where_file[i];
            ctx.line = ld->where_line[i];
        } else {
            ctx.path = ld->deflt_file;
            ctx.line = ld->deflt_line;
        }
        if (check_listener(&ctx, l) < 0)
            return -1;
    }
    /* The broker's old global switch: the value for the default listener. */
    cfg->allow_anonymous = cfg->per_listener_settings
                               ? (ld->deflt_anon_set ? ld->deflt.allow_anonymous : anon_default)
                               : global_anon;
    return 0;
}

int config_load_file(config_t *cfg, const char *path, char *err, size_t errlen)
{
    loader_t *ld = malloc(sizeof(*ld));
    if (!ld) {
        snprintf(err, errlen, "%s: out of memory", path);
        return -1;
    }
    loader_init(ld, cfg);
    int rc = load_file(ld, path, 0, err, errlen);
    if (rc == 0)
        rc = loader_finish(ld, true, err, errlen);
    free(ld);
    return rc;
}

static void usage(FILE *out, const char *prog)
{
    fprintf(out,
            "midge %s - an MQTT broker\n"
            "\n"
            "Usage: %s [-c FILE] [-p PORT] [-v] [-d]\n"
            "\n"
            "  -c FILE    read the configuration file FILE (mosquitto.conf syntax)\n"
            "  -p PORT    listen on 127.0.0.1:PORT as well as the file's listeners\n"
            "             (may be given up to %d times)\n"
            "  -v         verbose: log every connection and refusal\n"
            "  -d         run in the background (daemon)\n"
            "  --test-config  check the configuration (with -c FILE) and exit\n"
            "  -h, --help show this help and exit\n"
            "  --version  print the version and exit\n"
            "\n"
            "Without -c and -p, Midge listens on 127.0.0.1:1883.\n",
            MIDGE_VERSION, prog, CONFIG_MAX_LISTENERS);
}

int config_parse_args(config_t *cfg, int argc, char **argv, char *err, size_t errlen)
{
    parse_ctx_t ctx = {.path = NULL, .err = err, .errlen = errlen, .cur = -1};
    const char *prog = argc > 0 && argv[0] ? argv[0] : "midge";
    uint16_t ports[CONFIG_MAX_LISTENERS];
    int nports = 0;
    const char *file = NULL;

    /* First the whole command line, so that a bad flag is reported before a bad file
     * and -p/-v apply over whatever the file says. */
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            usage(stdout, prog);
            return 1;
        } else if (strcmp(a, "--version") == 0) {
            printf("midge %s\n", MIDGE_VERSION);
            return 1;
        } else if (strcmp(a, "-v") == 0) {
            cfg->verbose++;
        } else if (strcmp(a, "-d") == 0) {
            cfg->daemon = true;
        } else if (strcmp(a, "--test-config") == 0) {
            cfg->test_config = true;
        } else if (strcmp(a, "-c") == 0) {
            if (i + 1 >= argc)
                return fail(&ctx, "option '-c' needs a file name");
            file = argv[++i];
            if (strlen(file) >= sizeof(cfg->config_file))
                return fail(&ctx, "option '-c': file name '%s' is too long", file);
        } else if (strcmp(a, "-p") == 0) {
            if (i + 1 >= argc)
                return fail(&ctx, "option '-p' needs a port");
            if (nports == CONFIG_MAX_LISTENERS)
                return fail(&ctx, "option '-p': too many ports (at most %d)", CONFIG_MAX_LISTENERS);
            if (parse_port(&ctx, "-p", argv[++i], &ports[nports]) < 0)
                return -1;
            nports++;
        } else {
            return fail(&ctx, "unknown option '%s' (try --help)", a);
        }
    }

    if (cfg->test_config && !file)
        return fail(&ctx, "option '--test-config' needs a configuration file (-c FILE)");
    loader_t *ld = malloc(sizeof(*ld));
    if (!ld)
        return fail(&ctx, "out of memory");
    loader_init(ld, cfg);
    ctx.ld = ld;
    int rc = -1;
    if (file) {
        snprintf(cfg->config_file, sizeof(cfg->config_file), "%s", file);
        if (load_file(ld, file, 0, err, errlen) < 0)
            goto out;
    }
    for (int i = 0; i < nports; i++) {
        bool dup = false;
        for (int j = 0; j < cfg->listener_count; j++) {
            if (cfg->listeners[j].port == ports[i] && !cfg->listeners[j].unix_path[0] &&
                strcmp(cfg->listeners[j].bind_address, "127.0.0.1") == 0)
                dup = true;
        }
        if (!dup && add_listener(cfg, &ctx, "-p", ports[i], "127.0.0.1", "") < 0)
            goto out;
    }
    if (cfg->listener_count == 0 && add_listener(cfg, &ctx, "default", 1883, "127.0.0.1", "") < 0)
        goto out;
    rc = loader_finish(ld, true, err, errlen);
out:
    free(ld);
    return rc;
}
