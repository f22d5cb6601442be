/* cli.c - option parsing and connecting for midge-pub and midge-sub.
 *
 * The flags follow mosquitto_pub(1) and mosquitto_sub(1) (version 2.0): same letters, same
 * defaults (MQTT 3.1.1, port 1883, keepalive 60), same exit statuses (1 for a usage or
 * connection error, the CONNACK code when the broker refuses). Errors are one line.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "client/cli.h"

void cli_error(const cli_t *c, const char *fmt, ...)
{
    if (c->quiet)
        return;
    va_list ap;
    va_start(ap, fmt);
    fputs("Error: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

static bool parse_long(const char *s, long lo, long hi, long *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi)
        return false;
    *out = v;
    return true;
}

static void usage(const cli_t *c)
{
    if (c->tool == CLI_PUB)
        printf("Usage: %s {[-h host] [-p port] [-u username] [-P password] -t topic | -L URL}\n"
               "                 {-f file | -l | -n | -m message | -s}\n"
               "                 [-c] [-k keepalive] [-q qos] [-r] [--repeat N] "
               "[--repeat-delay time]\n"
               "                 [-x session-expiry] [-i id] [-I id_prefix] [-d] [--quiet]\n"
               "                 [-V mqttv5|mqttv311]\n"
               "                 [--will-topic [--will-payload payload] [--will-qos qos] "
               "[--will-retain]]\n",
               c->name);
    else
        printf("Usage: %s {[-h host] [-p port] [-u username] [-P password] -t topic | -L URL "
               "[-t topic]}\n"
               "                 [-c] [-k keepalive] [-q qos] [-x session-expiry-interval]\n"
               "                 [-C msg_count] [-E] [-R] [--retained-only] "
               "[--remove-retained]\n"
               "                 [-T filter_out] [-U topic] [-F format] [-W timeout_secs]\n"
               "                 [-i id] [-I id_prefix] [-d] [-N] [--quiet] [-v]\n"
               "                 [-V mqttv5|mqttv311]\n"
               "                 [--will-topic [--will-payload payload] [--will-qos qos] "
               "[--will-retain]]\n",
               c->name);
    printf("See mosquitto_pub(1) / mosquitto_sub(1): the flags mean the same.\n");
}

/* -L mqtt://[username[:password]@]host[:port]/topic */
static int parse_url(cli_t *c, const char *url)
{
    const char *rest;
    if (!strncmp(url, "mqtt://", 7)) {
        rest = url + 7;
    } else if (!strncmp(url, "mqtts://", 8) || !strncmp(url, "ws://", 5) ||
               !strncmp(url, "wss://", 6)) {
        cli_error(c, "URL scheme of '%s' is not supported yet (only mqtt://).", url);
        return 1;
    } else {
        cli_error(c, "Unsupported URL scheme in '%s'.", url);
        return 1;
    }
    free(c->url_buf);
    c->url_buf = strdup(rest);
    if (!c->url_buf)
        return 1;
    char *s = c->url_buf;
    char *slash = strchr(s, '/');
    if (!slash || !slash[1]) {
        cli_error(c, "Invalid URL for -L argument specified - topic missing.");
        return 1;
    }
    *slash = 0;
    if (c->ntopics < CLI_MAX_TOPICS)
        c->topics[c->ntopics++] = slash + 1;
    char *at = strrchr(s, '@');
    if (at) {
        *at = 0;
        char *colon = strchr(s, ':');
        if (colon) {
            *colon = 0;
            c->o.password = colon + 1;
        }
        c->o.username = s;
        s = at + 1;
    }
    char *colon = strrchr(s, ':');
    if (colon) {
        *colon = 0;
        long port;
        if (!parse_long(colon + 1, 1, 65535, &port)) {
            cli_error(c, "Invalid port given: %s", colon + 1);
            return 1;
        }
        c->o.port = (uint16_t)port;
    }
    c->o.host = s;
    return 0;
}

/* -D COMMAND IDENTIFIER VALUE [VALUE]: argv[*i] is "-D". Supported: user-property on
 * connect, publish and will; content-type, response-topic, correlation-data,
 * message-expiry-interval and payload-format-indicator on publish and will. */
static int parse_property(cli_t *c, int argc, char **argv, int *i)
{
    if (*i + 3 >= argc) {
        cli_error(c, "-D argument given but not enough values (-D command identifier value).");
        return 1;
    }
    const char *cmd = argv[*i + 1], *id = argv[*i + 2], *v = argv[*i + 3];
    midge_props_t *p;
    int which;
    if (!strcmp(cmd, "connect"))
        p = &c->connect_props, which = 0;
    else if (!strcmp(cmd, "publish") && c->tool == CLI_PUB)
        p = &c->publish_props, which = 1;
    else if (!strcmp(cmd, "will"))
        p = &c->will_props, which = 2;
    else {
        cli_error(c, "-D command '%s' is not supported by %s.", cmd, c->name);
        return 1;
    }
    *i += 3;
    long n;
    if (!strcmp(id, "user-property")) {
        if (*i + 1 >= argc) {
            cli_error(c, "-D %s user-property needs a name and a value.", cmd);
            return 1;
        }
        if (p->user_count == CLI_MAX_TOPICS) {
            cli_error(c, "too many user properties");
            return 1;
        }
        c->user[which][p->user_count].name = v;
        c->user[which][p->user_count].value = argv[++*i];
        p->user = c->user[which];
        p->user_count++;
    } else if (which && !strcmp(id, "content-type")) {
        p->content_type = v;
    } else if (which && !strcmp(id, "response-topic")) {
        p->response_topic = v;
    } else if (which && !strcmp(id, "correlation-data")) {
        p->correlation = (const uint8_t *)v;
        p->correlation_len = strlen(v);
    } else if (which && !strcmp(id, "message-expiry-interval") &&
               parse_long(v, 0, 4294967295L, &n)) {
        p->has_message_expiry = true;
        p->message_expiry = (uint32_t)n;
    } else if (which && !strcmp(id, "payload-format-indicator") && parse_long(v, 0, 1, &n)) {
        p->payload_format = (int)n;
    } else {
        cli_error(c, "-D %s %s %s: property or value not supported by %s.", cmd, id, v, c->name);
        return 1;
    }
    c->has_props = true;
    return 0;
}

int cli_parse(cli_t *c, int tool, int argc, char **argv)
{
    memset(c, 0, sizeof *c);
    c->tool = tool;
    c->name = tool == CLI_PUB ? "midge-pub" : "midge-sub";
    midge_options_init(&c->o);
    c->o.version = MIDGE_MQTT_V311;
    c->o.host = "localhost";
    c->session_expiry = -1;
    c->repeat = 1;
    midge_props_init(&c->connect_props);
    midge_props_init(&c->publish_props);
    midge_props_init(&c->will_props);
    const char *id_prefix = NULL;
    bool clean = true;
    bool sub = tool == CLI_SUB;

    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-D")) {
            if (parse_property(c, argc, argv, &i))
                return 1;
            continue;
        }
        /* Options that take a value: the value must be there. */
        static const char *with_value[] = {"-h",
                                           "-p",
                                           "-L",
                                           "-u",
                                           "-P",
                                           "-i",
                                           "-I",
                                           "-k",
                                           "-q",
                                           "-V",
                                           "-x",
                                           "-t",
                                           "-T",
                                           "-U",
                                           "-m",
                                           "-f",
                                           "-C",
                                           "-W",
                                           "-F",
                                           "-A",
                                           "-D",
                                           "--will-topic",
                                           "--will-payload",
                                           "--will-qos",
                                           "--repeat",
                                           "--repeat-delay",
                                           "--cafile",
                                           "--capath",
                                           "--cert",
                                           "--key",
                                           "--tls-version",
                                           "--unix",
                                           "--proxy",
                                           "--ciphers",
                                           "-M",
                                           NULL};
        const char *v = NULL;
        for (int k = 0; with_value[k]; k++)
            if (!strcmp(a, with_value[k])) {
                if (i + 1 >= argc) {
                    cli_error(c, "%s argument given but no value specified.", a);
                    return 1;
                }
                v = argv[++i];
                break;
            }
        long n;
        if (!strcmp(a, "--help")) {
            usage(c);
            return 0;
        } else if (!strcmp(a, "-h")) {
            c->o.host = v;
        } else if (!strcmp(a, "-p")) {
            if (!parse_long(v, 1, 65535, &n)) {
                cli_error(c, "Invalid port given: %s", v);
                return 1;
            }
            c->o.port = (uint16_t)n;
        } else if (!strcmp(a, "-L")) {
            if (parse_url(c, v))
                return 1;
        } else if (!strcmp(a, "-u")) {
            c->o.username = v;
        } else if (!strcmp(a, "-P")) {
            c->o.password = v;
        } else if (!strcmp(a, "-i")) {
            c->o.client_id = v;
        } else if (!strcmp(a, "-I")) {
            id_prefix = v;
        } else if (!strcmp(a, "-k")) {
            if (!parse_long(v, 0, 65535, &n)) {
                cli_error(c, "Invalid keepalive given, it must be between 5 and 65535 "
                             "inclusive.");
                return 1;
            }
            c->o.keepalive = (uint16_t)n;
        } else if (!strcmp(a, "-q")) {
            if (!parse_long(v, 0, 2, &n)) {
                cli_error(c, "Invalid QoS given: %s", v);
                return 1;
            }
            c->qos = (int)n;
        } else if (!strcmp(a, "-V")) {
            if (!strcmp(v, "mqttv5") || !strcmp(v, "5"))
                c->o.version = MIDGE_MQTT_V5;
            else if (!strcmp(v, "mqttv311") || !strcmp(v, "311"))
                c->o.version = MIDGE_MQTT_V311;
            else if (!strcmp(v, "mqttv31") || !strcmp(v, "31")) {
                cli_error(c, "MQTT 3.1 is not supported by %s; use mqttv311 or mqttv5.", c->name);
                return 1;
            } else {
                cli_error(c, "Invalid protocol version argument given.");
                return 1;
            }
        } else if (!strcmp(a, "-x")) {
            if (!strcmp(v, "-1") || !strcmp(v, "\xe2\x88\x9e"))
                c->session_expiry = 4294967295L;
            else if (!parse_long(v, 0, 4294967295L, &c->session_expiry)) {
                cli_error(c, "session-expiry-interval not a valid value: %s", v);
                return 1;
            }
        } else if (!strcmp(a, "-c")) {
            clean = false;
        } else if (!strcmp(a, "-d")) {
            c->debug = true;
        } else if (!strcmp(a, "--quiet")) {
            c->quiet = true;
        } else if (!strcmp(a, "-t")) {
            if (c->ntopics == CLI_MAX_TOPICS) {
                cli_error(c, "too many topics");
                return 1;
            }
            c->topics[c->ntopics++] = v;
        } else if (!strcmp(a, "--will-topic")) {
            if (!*v || strpbrk(v, "+#")) {
                cli_error(c, "Invalid will topic '%s', does it contain '+' or '#'?", v);
                return 1;
            }
            c->o.will_topic = v;
        } else if (!strcmp(a, "--will-payload")) {
            c->o.will_payload = (const uint8_t *)v;
            c->o.will_payload_len = strlen(v);
        } else if (!strcmp(a, "--will-qos")) {
            if (!parse_long(v, 0, 2, &n)) {
                cli_error(c, "Invalid will QoS %s.", v);
                return 1;
            }
            c->o.will_qos = (int)n;
        } else if (!strcmp(a, "--will-retain")) {
            c->o.will_retain = true;
        } else if (!strcmp(a, "--nodelay")) {
            /* TCP_NODELAY is always on */
        } else if (!strcmp(a, "-A") || !strcmp(a, "-M")) {
            /* -A bind address, -M max inflight: accepted, not used */
        } else if (!strcmp(a, "--cafile") || !strcmp(a, "--capath") || !strcmp(a, "--cert") ||
                   !strcmp(a, "--key") || !strcmp(a, "--tls-version") || !strcmp(a, "--insecure") ||
                   !strcmp(a, "--unix") || !strcmp(a, "--proxy") || !strcmp(a, "--ciphers")) {
            cli_error(c,
                      "%s is not supported yet by %s (TLS, unix sockets and proxies come "
                      "with the transports of issue 5).",
                      a, c->name);
            return 1;
        } else if (!sub && !strcmp(a, "-m")) {
            c->msg_mode = c->msg_mode ? -1 : CLI_MSG_M;
            c->message = v;
        } else if (!sub && !strcmp(a, "-f")) {
            c->msg_mode = c->msg_mode ? -1 : CLI_MSG_FILE;
            c->file = v;
        } else if (!sub && !strcmp(a, "-s")) {
            c->msg_mode = c->msg_mode ? -1 : CLI_MSG_STDIN;
        } else if (!sub && !strcmp(a, "-l")) {
            c->msg_mode = c->msg_mode ? -1 : CLI_MSG_LINES;
        } else if (!sub && !strcmp(a, "-n")) {
            c->msg_mode = c->msg_mode ? -1 : CLI_MSG_NULL;
        } else if (!sub && !strcmp(a, "-r")) {
            c->retain = true;
        } else if (!sub && !strcmp(a, "--repeat")) {
            if (!parse_long(v, 1, 1000000000L, &c->repeat)) {
                cli_error(c, "--repeat argument must be >0.");
                return 1;
            }
        } else if (!sub && !strcmp(a, "--repeat-delay")) {
            char *end;
            c->repeat_delay = strtod(v, &end);
            if (*end || c->repeat_delay < 0) {
                cli_error(c, "--repeat-delay argument must be >=0.0.");
                return 1;
            }
        } else if (sub && !strcmp(a, "-T")) {
            if (c->nfilter_out < CLI_MAX_TOPICS)
                c->filter_out[c->nfilter_out++] = v;
        } else if (sub && !strcmp(a, "-U")) {
            if (c->nunsub < CLI_MAX_TOPICS)
                c->unsub[c->nunsub++] = v;
        } else if (sub && !strcmp(a, "-C")) {
            if (!parse_long(v, 1, 2147483647L, &c->count)) {
                cli_error(c, "Invalid message count \"%s\".", v);
                return 1;
            }
        } else if (sub && !strcmp(a, "-W")) {
            if (!parse_long(v, 1, 3600L * 24 * 365, &c->timeout)) {
                cli_error(c, "Invalid timeout \"%s\".", v);
                return 1;
            }
        } else if (sub && !strcmp(a, "-F")) {
            c->format = v;
        } else if (sub && !strcmp(a, "-v")) {
            c->verbose = true;
        } else if (sub && !strcmp(a, "-N")) {
            c->no_eol = true;
        } else if (sub && !strcmp(a, "-R")) {
            c->no_retained = true;
        } else if (sub && !strcmp(a, "-E")) {
            c->exit_after_sub = true;
        } else if (sub && !strcmp(a, "--retained-only")) {
            c->retained_only = true;
        } else if (sub && !strcmp(a, "--remove-retained")) {
            c->remove_retained = true;
        } else if (sub && !strcmp(a, "--pretty")) {
            c->pretty = true;
        } else {
            cli_error(c, "Unknown option '%s'.", a);
            return 1;
        }
    }

    if (c->msg_mode < 0) {
        cli_error(c, "Only one type of message can be sent at once.");
        return 1;
    }
    if (!sub && (c->ntopics != 1 || c->msg_mode == CLI_MSG_NONE)) {
        cli_error(c, c->ntopics > 1 ? "Only one topic may be given."
                                    : "Both topic and message must be supplied.");
        return 1;
    }
    if (sub && c->ntopics == 0) {
        cli_error(c, "You must specify a topic to subscribe to.");
        return 1;
    }
    for (size_t i = 0; i < c->ntopics; i++) {
        const char *t = c->topics[i];
        bool ok = sub ? midge_topic_filter_valid(t) : midge_topic_name_valid(t);
        if (!ok) {
            if (sub)
                cli_error(c,
                          "Invalid subscription topic '%s', are all '+' and '#' wildcards "
                          "correct?",
                          t);
            else
                cli_error(c, "Invalid publish topic '%s', does it contain '+' or '#'?", t);
            return 1;
        }
    }
    if (c->o.will_topic == NULL && (c->o.will_payload || c->o.will_qos || c->o.will_retain)) {
        cli_error(c, "Will payload, QoS or retain given, but no will topic given.");
        return 1;
    }
    if (c->o.password && !c->o.username) {
        cli_error(c, "-P given without -u (a password needs a username).");
        return 1;
    }
    if (c->o.keepalive && c->o.keepalive < 5) {
        cli_error(c, "Invalid keepalive given, it must be between 5 and 65535 inclusive.");
        return 1;
    }
    if (!clean && !c->o.client_id && !id_prefix) {
        cli_error(c, "You must provide a client id if you are using the -c option.");
        return 1;
    }
    if (id_prefix) {
        snprintf(c->id_buf, sizeof c->id_buf, "%s%ld", id_prefix, (long)getpid());
        c->o.client_id = c->id_buf;
    } else if (!c->o.client_id) {
        snprintf(c->id_buf, sizeof c->id_buf, "%s_%ld", sub ? "midge_sub" : "midge_pub",
                 (long)getpid());
        c->o.client_id = c->id_buf;
    }
    if (c->has_props && c->o.version != MIDGE_MQTT_V5) {
        cli_error(c, "-D given but the protocol is not MQTT v5 (add -V mqttv5).");
        return 1;
    }
    if (c->connect_props.user_count)
        c->o.connect_props = &c->connect_props;
    if (c->o.will_topic)
        c->o.will_props = &c->will_props;
    c->o.clean_start = clean;
    /* -c without -x: the session never expires, as mosquitto does. */
    if (c->o.version == MIDGE_MQTT_V5)
        c->o.session_expiry = c->session_expiry >= 0 ? (uint32_t)c->session_expiry
                              : clean                ? 0
                                                     : 4294967295u;
    return -1;
}

int cli_connect(cli_t *c, midge_client_t **out)
{
    midge_client_t *cl;
    *out = NULL;
    if (midge_client_new(&c->o, &cl)) {
        cli_error(c, "could not create the client (bad will or options).");
        return 1;
    }
    uint8_t reason = 0;
    errno = 0;
    int rc = midge_client_connect_wait(cl, (int)c->o.connect_timeout_ms + 1000, &reason);
    int saved = errno;
    if (rc == MIDGE_EREFUSED) {
        if (!c->quiet)
            fprintf(stderr, "Connection error: %s\n",
                    c->o.version == MIDGE_MQTT_V5 ? midge_reason_name(reason)
                                                  : midge_connack_v3_name(reason));
        midge_client_free(cl);
        return reason;
    }
    if (rc) {
        if (saved == ECONNREFUSED)
            cli_error(c, "Connection refused");
        else if (rc == MIDGE_ECONN && saved)
            cli_error(c, "could not connect to %s:%u: %s", c->o.host, c->o.port,
                      saved == EHOSTUNREACH ? "host not found or unreachable" : strerror(saved));
        else
            cli_error(c, "could not connect to %s:%u: %s", c->o.host, c->o.port,
                      midge_strerror(rc));
        midge_client_free(cl);
        return 1;
    }
    if (c->debug)
        printf("Client %s received CONNACK (%u)\n", c->o.client_id, reason);
    *out = cl;
    return 0;
}
