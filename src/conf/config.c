/* config.c - the configuration file (Mosquitto's mosquitto.conf syntax) and the command
 * line, turned into a config_t (see config.h). Runs once at start-up, before any thread:
 * no I/O beyond reading the file and printing help, no global state.
 *
 * Every refusal names the file, the line, the option and the value, because a config
 * error is read by a person who has the file open in an editor.
 */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
    cfg->max_connections = 0;
    cfg->max_packet_size = CONFIG_PROTOCOL_MAX_PACKET;
    cfg->message_size_limit = 0;
    cfg->max_inflight_messages = 20;
    cfg->max_queued_messages = 1000;
    cfg->max_queued_bytes = 0;
    cfg->max_keepalive = 65535;
    cfg->sys_interval = 10;
    cfg->connect_timeout = 10;
    cfg->max_topic_alias = 10;
    cfg->receive_maximum = 100;
    cfg->log_types = CONFIG_LOG_DEFAULT;
    cfg->log_dest = CONFIG_LOG_DEST_STDERR;
    cfg->log_timestamp = true;
    cfg->connection_messages = true;
    cfg->persistence = false;
    cfg->default_listener = -1;
    cfg->verbose = 0;
    cfg->daemon = false;
    cfg->config_file[0] = '\0';
}

/* Where a message is being reported: "FILE:LINE: " for the file, "" for the command line. */
typedef struct parse_ctx {
    const char *path;
    int line;
    char *err;
    size_t errlen;
    bool log_types_seen; /* the first log_type line replaces the default set */
    bool log_dest_seen;
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

static int parse_bool(parse_ctx_t *ctx, const char *opt, const char *s, bool *out)
{
    if (strcmp(s, "true") == 0)
        *out = true;
    else if (strcmp(s, "false") == 0)
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

/* Append a listener; refuses a duplicate (same port and address) and a 17th. */
static int add_listener(config_t *cfg, parse_ctx_t *ctx, const char *opt, uint16_t port,
                        const char *addr)
{
    for (int i = 0; i < cfg->listener_count; i++) {
        if (cfg->listeners[i].port == port && strcmp(cfg->listeners[i].bind_address, addr) == 0)
            return fail(ctx, "option '%s': listener %u %s is defined twice", opt, port,
                        addr[0] ? addr : "(all addresses)");
    }
    if (cfg->listener_count >= CONFIG_MAX_LISTENERS)
        return fail(ctx, "option '%s': too many listeners (at most %d)", opt, CONFIG_MAX_LISTENERS);
    config_listener_t *l = &cfg->listeners[cfg->listener_count];
    memset(l, 0, sizeof(*l));
    l->port = port;
    if (copy_address(ctx, opt, addr, l->bind_address, sizeof(l->bind_address)) < 0)
        return -1;
    cfg->listener_count++;
    return 0;
}

/* The listener that the legacy `port` and `bind_address` options describe; created on the
 * first of them, with Mosquitto's defaults (port 1883, all addresses). */
static int default_listener(config_t *cfg, parse_ctx_t *ctx, const char *opt,
                            config_listener_t **out)
{
    if (cfg->default_listener < 0) {
        if (add_listener(cfg, ctx, opt, 1883, "") < 0)
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
    /* -1 is Mosquitto's "unlimited"; stored as 0 (see below) */
    NUM(max_connections, NUM_U32, -1, INT32_MAX),
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
};
#undef NUM

static void store_num(config_t *cfg, const num_option_t *o, int64_t v)
{
    char *p = (char *)cfg + o->offset;
    if (strcmp(o->name, "max_connections") == 0 && v < 0)
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

/* Apply one option line, already split: words[0] is the option. */
static int apply_option(config_t *cfg, parse_ctx_t *ctx, char **w, int nw)
{
    const char *opt = w[0];
    /* Values each option takes: minimum and maximum count. */
    int min_values = 1, max_values = 1;
    if (strcmp(opt, "listener") == 0)
        max_values = 2;

    bool known = strcmp(opt, "listener") == 0 || strcmp(opt, "port") == 0 ||
                 strcmp(opt, "bind_address") == 0 || strcmp(opt, "allow_anonymous") == 0 ||
                 strcmp(opt, "log_type") == 0 || strcmp(opt, "log_dest") == 0 ||
                 strcmp(opt, "log_timestamp") == 0 || strcmp(opt, "connection_messages") == 0 ||
                 strcmp(opt, "persistence") == 0;
    const num_option_t *num = NULL;
    for (size_t i = 0; i < sizeof(num_options) / sizeof(num_options[0]); i++) {
        if (strcmp(opt, num_options[i].name) == 0)
            num = &num_options[i];
    }
    if (!known && !num)
        return fail(ctx, "unknown option '%s'", opt);
    if (nw - 1 < min_values)
        return fail(ctx, "option '%s' needs a value", opt);
    if (nw - 1 > max_values)
        return fail(ctx, "option '%s': unexpected extra value '%s'", opt, w[max_values + 1]);
    const char *val = w[1];

    if (num) {
        int64_t v;
        if (parse_int(ctx, opt, val, num->min, num->max, &v) < 0)
            return -1;
        store_num(cfg, num, v);
        return 0;
    }
    if (strcmp(opt, "listener") == 0) {
        uint16_t port;
        if (parse_port(ctx, opt, val, &port) < 0)
            return -1;
        return add_listener(cfg, ctx, opt, port, nw > 2 ? w[2] : "");
    }
    if (strcmp(opt, "port") == 0) {
        uint16_t port;
        config_listener_t *l;
        if (parse_port(ctx, opt, val, &port) < 0 || default_listener(cfg, ctx, opt, &l) < 0)
            return -1;
        l->port = port;
        return 0;
    }
    if (strcmp(opt, "bind_address") == 0) {
        config_listener_t *l;
        if (default_listener(cfg, ctx, opt, &l) < 0)
            return -1;
        return copy_address(ctx, opt, val, l->bind_address, sizeof(l->bind_address));
    }
    if (strcmp(opt, "allow_anonymous") == 0)
        return parse_bool(ctx, opt, val, &cfg->allow_anonymous);
    if (strcmp(opt, "log_timestamp") == 0)
        return parse_bool(ctx, opt, val, &cfg->log_timestamp);
    if (strcmp(opt, "connection_messages") == 0)
        return parse_bool(ctx, opt, val, &cfg->connection_messages);
    if (strcmp(opt, "persistence") == 0) {
        bool on = false;
        if (parse_bool(ctx, opt, val, &on) < 0)
            return -1;
        if (on)
            return fail(ctx, "option 'persistence': '%s': persistence is not implemented yet", val);
        cfg->persistence = false;
        return 0;
    }
    if (strcmp(opt, "log_type") == 0) {
        for (size_t i = 0; i < sizeof(log_type_names) / sizeof(log_type_names[0]); i++) {
            if (strcmp(val, log_type_names[i].name) == 0) {
                if (!ctx->log_types_seen)
                    cfg->log_types = 0;
                ctx->log_types_seen = true;
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
    /* log_dest: Mosquitto also has syslog, topic, file and dlt; Midge not yet. */
    unsigned dest;
    if (strcmp(val, "stdout") == 0)
        dest = CONFIG_LOG_DEST_STDOUT;
    else if (strcmp(val, "stderr") == 0)
        dest = CONFIG_LOG_DEST_STDERR;
    else
        return fail(ctx, "option 'log_dest': '%s' is not supported (stdout or stderr)", val);
    if (!ctx->log_dest_seen)
        cfg->log_dest = 0;
    ctx->log_dest_seen = true;
    cfg->log_dest |= dest;
    return 0;
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

int config_load_file(config_t *cfg, const char *path, char *err, size_t errlen)
{
    parse_ctx_t ctx = {.path = path, .line = 0, .err = err, .errlen = errlen};
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
        /* No option takes more than two values: eight words are enough to name the
         * first extra one. */
        char *words[8];
        int nw = split_words(s, words, 8);
        if (apply_option(cfg, &ctx, words, nw) < 0) {
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
            "  -h, --help show this help and exit\n"
            "  --version  print the version and exit\n"
            "\n"
            "Without -c and -p, Midge listens on 127.0.0.1:1883.\n",
            MIDGE_VERSION, prog, CONFIG_MAX_LISTENERS);
}

int config_parse_args(config_t *cfg, int argc, char **argv, char *err, size_t errlen)
{
    parse_ctx_t ctx = {.path = NULL, .err = err, .errlen = errlen};
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

    if (file) {
        snprintf(cfg->config_file, sizeof(cfg->config_file), "%s", file);
        if (config_load_file(cfg, file, err, errlen) < 0)
            return -1;
    }
    for (int i = 0; i < nports; i++) {
        bool dup = false;
        for (int j = 0; j < cfg->listener_count; j++) {
            if (cfg->listeners[j].port == ports[i] &&
                strcmp(cfg->listeners[j].bind_address, "127.0.0.1") == 0)
                dup = true;
        }
        if (!dup && add_listener(cfg, &ctx, "-p", ports[i], "127.0.0.1") < 0)
            return -1;
    }
    if (cfg->listener_count == 0 && add_listener(cfg, &ctx, "default", 1883, "127.0.0.1") < 0)
        return -1;
    return 0;
}
