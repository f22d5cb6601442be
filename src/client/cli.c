/* cli.c - option parsing, connecting and printing for midge-pub, midge-sub and midge-rr.
 *
 * The flags follow mosquitto_pub(1) and mosquitto_sub(1) (version 2.0): same letters, same
 * defaults (MQTT 3.1.1, port 1883, keepalive 60), same exit statuses (1 for a usage or
 * connection error, the CONNACK code when the broker refuses). Errors are one line.
 */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
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

bool cli_parse_long(const char *s, long lo, long hi, long *out)
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
    if (c->tool == CLI_RR)
        printf("Usage: %s {[-h host] [-p port] [-u username] [-P password] -t topic | -L URL} "
               "-e response-topic\n"
               "                 {-f file | -n | -m message | -s}\n"
               "                 [-c] [-k keepalive] [-q qos] [-R] [-x session-expiry-interval]\n"
               "                 [-F format] [--pretty] [-W timeout_secs]\n"
               "                 [-i id] [-I id_prefix] [-d] [-N] [--quiet] [-v]\n"
               "                 [-D command identifier value]\n"
               "                 [--will-topic [--will-payload payload] [--will-qos qos] "
               "[--will-retain]]\n",
               c->name);
    else if (c->tool == CLI_PUB)
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
    printf("                 [--unix socket-path] [--ws-path path]\n"
           "                 [{--cafile file | --capath dir | --tls-use-os-certs} [--cert file] "
           "[--key file]\n"
           "                  [--ciphers ciphers] [--tls-version version] [--insecure]]\n"
           " -L URL : scheme://[username[:password]@]host[:port]/topic, where scheme is\n"
           "          mqtt (port 1883), mqtts (TLS, port 8883), ws (WebSocket, port 80) or\n"
           "          wss (WebSocket over TLS, port 443); the WebSocket path is /mqtt unless\n"
           "          --ws-path says otherwise.\n"
           " --cafile, --capath or --tls-use-os-certs turn TLS on (port 8883 when -p is not "
           "given),\n"
           "          and so do -L mqtts://, wss:// and -p 8883; with no CA given the "
           "system's CAs are used.\n"
           " --unix : connect to a unix domain socket instead of -h/-p.\n");
    printf("See mosquitto_pub(1) / mosquitto_sub(1) / mosquitto_rr(1): the flags mean the "
           "same.\n");
}

/* -L URL schemes: whether each turns TLS and WebSocket on, and its default port. */
static const struct url_scheme {
    const char *prefix;
    bool tls, ws;
    uint16_t port;
} url_schemes[] = {
    {"mqtt://", false, false, 1883},
    {"mqtts://", true, false, 8883},
    {"ws://", false, true, 80},
    {"wss://", true, true, 443},
};

/* -L scheme://[username[:password]@]host[:port]/topic, scheme in url_schemes */
static int parse_url(cli_t *c, const char *url)
{
    const struct url_scheme *sc = NULL;
    for (size_t i = 0; i < sizeof url_schemes / sizeof url_schemes[0]; i++)
        if (!strncasecmp(url, url_schemes[i].prefix, strlen(url_schemes[i].prefix)))
            sc = &url_schemes[i];
    if (!sc) {
        cli_error(c, "Unsupported URL scheme in '%s' (mqtt://, mqtts://, ws:// or wss://).", url);
        return 1;
    }
    const char *rest = url + strlen(sc->prefix);
    c->tls_on |= sc->tls;
    c->ws = sc->ws;
    c->o.port = sc->port;
    c->port_given = true;
    c->url_given = true; /* its scheme says whether TLS is on */
    free(c->url_buf);
    c->url_buf = strdup(rest);
    if (!c->url_buf)
        return 1;
    char *s = c->url_buf;
    char *slash = strchr(s, '/');
    if ((!slash || !slash[1]) && c->tool != CLI_SENSOR) {
        cli_error(c, "Invalid URL for -L argument specified - topic missing.");
        return 1;
    }
    /* midge-sensor: the path, when there is one, is the topic prefix */
    if (slash)
        *slash = 0;
    if (slash && slash[1] && c->ntopics < CLI_MAX_TOPICS)
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
        if (!cli_parse_long(colon + 1, 1, 65535, &port)) {
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
    else if (!strcmp(cmd, "publish") && c->tool != CLI_SUB)
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
               cli_parse_long(v, 0, 4294967295L, &n)) {
        p->has_message_expiry = true;
        p->message_expiry = (uint32_t)n;
    } else if (which && !strcmp(id, "payload-format-indicator") && cli_parse_long(v, 0, 1, &n)) {
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
    return cli_parse_with(c, tool, NULL, argc, argv);
}

/* Whether option a is one of the tool's own that take a value. */
static bool extra_takes_value(const cli_extra_t *extra, const char *a)
{
    for (int k = 0; extra && extra->with_value[k]; k++)
        if (!strcmp(a, extra->with_value[k]))
            return true;
    return false;
}

int cli_parse_with(cli_t *c, int tool, const cli_extra_t *extra, int argc, char **argv)
{
    memset(c, 0, sizeof *c);
    c->tool = tool;
    c->name = tool == CLI_PUB   ? "midge-pub"
              : tool == CLI_SUB ? "midge-sub"
              : tool == CLI_RR  ? "midge-rr"
                                : "midge-sensor";
    midge_options_init(&c->o);
    /* mosquitto_rr defaults to MQTT 5.0: request/response needs its properties */
    c->o.version = tool == CLI_RR ? MIDGE_MQTT_V5 : MIDGE_MQTT_V311;
    c->o.host = "localhost";
    c->session_expiry = -1;
    c->repeat = 1;
    midge_props_init(&c->connect_props);
    midge_props_init(&c->publish_props);
    midge_props_init(&c->will_props);
    const char *id_prefix = NULL;
    bool clean = true;
    bool sub = tool == CLI_SUB;
    bool pub = tool == CLI_PUB, rr = tool == CLI_RR, sensor = tool == CLI_SENSOR;
    c->qos = sensor ? 1 : 0; /* a sensor's readings should arrive: QoS 1 unless -q */

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
                                           "--ws-path",
                                           "--proxy",
                                           "--ciphers",
                                           "-M",
                                           "-e",
                                           NULL};
        const char *v = NULL;
        if (extra_takes_value(extra, a)) {
            if (i + 1 >= argc) {
                cli_error(c, "%s argument given but no value specified.", a);
                return 1;
            }
            v = argv[++i];
        }
        if (extra) {
            int r = extra->option(c, a, v, extra->ud);
            if (r >= 0)
                return r;
            if (r == CLI_EXTRA_HANDLED)
                continue;
        }
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
            if (!cli_parse_long(v, 1, 65535, &n)) {
                cli_error(c, "Invalid port given: %s", v);
                return 1;
            }
            c->o.port = (uint16_t)n;
            c->port_given = true;
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
            if (!cli_parse_long(v, 0, 65535, &n)) {
                cli_error(c, "Invalid keepalive given, it must be between 5 and 65535 "
                             "inclusive.");
                return 1;
            }
            c->o.keepalive = (uint16_t)n;
        } else if (!strcmp(a, "-q")) {
            if (!cli_parse_long(v, 0, 2, &n)) {
                cli_error(c, "Invalid QoS given: %s", v);
                return 1;
            }
            c->qos = (int)n;
        } else if (!strcmp(a, "-V")) {
            if (!strcmp(v, "mqttv5") || !strcmp(v, "5"))
                c->o.version = MIDGE_MQTT_V5;
            else if (!strcmp(v, "mqttv311") || !strcmp(v, "311"))
                c->o.version = MIDGE_MQTT_V311;
            else if (!strcmp(v, "mqttv31") || !strcmp(v, "31"))
                c->o.version = MIDGE_MQTT_V31;
            else {
                cli_error(c, "Invalid protocol version argument given.");
                return 1;
            }
        } else if (!strcmp(a, "-x")) {
            if (!strcmp(v, "-1") || !strcmp(v, "\xe2\x88\x9e"))
                c->session_expiry = 4294967295L;
            else if (!cli_parse_long(v, 0, 4294967295L, &c->session_expiry)) {
                cli_error(c, "session-expiry-interval not a valid value: %s", v);
                return 1;
            }
        } else if (!strcmp(a, "-c")) {
            clean = false;
        } else if (!strcmp(a, "-d")) {
            c->debug = true;
        } else if (!strcmp(a, "--quiet")) {
            c->quiet = true;
        } else if (!sensor && !strcmp(a, "-t")) {
            if (c->ntopics == CLI_MAX_TOPICS) {
                cli_error(c, "too many topics");
                return 1;
            }
            c->topics[c->ntopics++] = v;
        } else if (!sensor && !strcmp(a, "--will-topic")) {
            if (!*v || strpbrk(v, "+#")) {
                cli_error(c, "Invalid will topic '%s', does it contain '+' or '#'?", v);
                return 1;
            }
            c->o.will_topic = v;
        } else if (!sensor && !strcmp(a, "--will-payload")) {
            c->o.will_payload = (const uint8_t *)v;
            c->o.will_payload_len = strlen(v);
        } else if (!sensor && !strcmp(a, "--will-qos")) {
            if (!cli_parse_long(v, 0, 2, &n)) {
                cli_error(c, "Invalid will QoS %s.", v);
                return 1;
            }
            c->o.will_qos = (int)n;
        } else if (!sensor && !strcmp(a, "--will-retain")) {
            c->o.will_retain = true;
        } else if (!strcmp(a, "--nodelay")) {
            /* TCP_NODELAY is always on */
        } else if (!strcmp(a, "-A") || !strcmp(a, "-M")) {
            /* -A bind address, -M max inflight: accepted, not used */
        } else if (!strcmp(a, "--cafile")) {
            c->tls.cafile = v;
            c->tls_on = true;
        } else if (!strcmp(a, "--capath")) {
            c->tls.capath = v;
            c->tls_on = true;
        } else if (!strcmp(a, "--tls-use-os-certs")) {
            c->tls_on = true; /* no cafile/capath: the TLS layer loads the system's CAs */
        } else if (!strcmp(a, "--cert")) {
            c->tls.certfile = v;
        } else if (!strcmp(a, "--key")) {
            c->tls.keyfile = v;
        } else if (!strcmp(a, "--ciphers")) {
            c->tls.ciphers = v;
        } else if (!strcmp(a, "--tls-version")) {
            if (strcmp(v, "tlsv1.3") && strcmp(v, "tlsv1.2")) {
                cli_error(c, "Invalid TLS version '%s' (tlsv1.3 or tlsv1.2).", v);
                return 1;
            }
            c->tls.tls_version = v;
        } else if (!strcmp(a, "--insecure")) {
            c->tls.insecure = 1;
        } else if (!strcmp(a, "--unix")) {
            c->unix_path = v;
        } else if (!strcmp(a, "--ws-path")) {
            c->ws_path = v;
        } else if (!strcmp(a, "--proxy")) {
            cli_error(c, "--proxy (SOCKS) is not supported by %s.", c->name);
            return 1;
        } else if ((pub || rr) && !strcmp(a, "-m")) {
            c->msg_mode = c->msg_mode ? -1 : CLI_MSG_M;
            c->message = v;
        } else if ((pub || rr) && !strcmp(a, "-f")) {
            c->msg_mode = c->msg_mode ? -1 : CLI_MSG_FILE;
            c->file = v;
        } else if ((pub || rr) && !strcmp(a, "-s")) {
            c->msg_mode = c->msg_mode ? -1 : CLI_MSG_STDIN;
        } else if (pub && !strcmp(a, "-l")) {
            c->msg_mode = c->msg_mode ? -1 : CLI_MSG_LINES;
        } else if ((pub || rr) && !strcmp(a, "-n")) {
            c->msg_mode = c->msg_mode ? -1 : CLI_MSG_NULL;
        } else if ((pub || sensor) && !strcmp(a, "-r")) {
            c->retain = true;
        } else if (pub && !strcmp(a, "--repeat")) {
            if (!cli_parse_long(v, 1, 1000000000L, &c->repeat)) {
                cli_error(c, "--repeat argument must be >0.");
                return 1;
            }
        } else if (pub && !strcmp(a, "--repeat-delay")) {
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
        } else if ((sub || sensor) && !strcmp(a, "-C")) {
            if (!cli_parse_long(v, 1, 2147483647L, &c->count)) {
                cli_error(c, "Invalid message count \"%s\".", v);
                return 1;
            }
        } else if ((sub || rr) && !strcmp(a, "-W")) {
            if (!cli_parse_long(v, 1, 3600L * 24 * 365, &c->timeout)) {
                cli_error(c, "Invalid timeout \"%s\".", v);
                return 1;
            }
        } else if ((sub || rr) && !strcmp(a, "-F")) {
            c->format = v;
        } else if ((sub || rr) && !strcmp(a, "-v")) {
            c->verbose = true;
        } else if ((sub || rr) && !strcmp(a, "-N")) {
            c->no_eol = true;
        } else if ((sub || rr) && !strcmp(a, "-R")) {
            c->no_retained = true;
        } else if (sub && !strcmp(a, "-E")) {
            c->exit_after_sub = true;
        } else if (sub && !strcmp(a, "--retained-only")) {
            c->retained_only = true;
        } else if (sub && !strcmp(a, "--remove-retained")) {
            c->remove_retained = true;
        } else if ((sub || rr) && !strcmp(a, "--pretty")) {
            c->pretty = true;
        } else if (rr && !strcmp(a, "-e")) {
            c->response_topic = v;
        } else {
            cli_error(c, "Unknown option '%s'.", a);
            return 1;
        }
    }

    if ((c->tls.certfile == NULL) != (c->tls.keyfile == NULL)) {
        cli_error(c, "Both certfile and keyfile must be provided if one of them is set.");
        return 1;
    }
    if (c->tls_on && !c->port_given)
        c->o.port = 8883; /* as mosquitto's clients: TLS without -p means 8883 */
    /* mosquitto_pub(1), --tls-use-os-certs: on by default for port 8883 when no other
     * certificate option is given. */
    if (c->o.port == 8883 && !c->tls_on && !c->url_given && !c->unix_path && !c->tls.certfile)
        c->tls_on = true;
    if (c->msg_mode < 0) {
        cli_error(c, "Only one type of message can be sent at once.");
        return 1;
    }
    if (rr && (c->ntopics != 1 || c->msg_mode == CLI_MSG_NONE || !c->response_topic)) {
        cli_error(c, "All of topic, message, and response topic must be supplied.");
        return 1;
    }
    if (rr && !midge_topic_name_valid(c->response_topic)) {
        cli_error(c, "Invalid response topic '%s', does it contain '+' or '#'?", c->response_topic);
        return 1;
    }
    if (rr && c->o.version != MIDGE_MQTT_V5) {
        cli_error(c, "%s speaks MQTT v5 only (request/response uses its properties).", c->name);
        return 1;
    }
    if (pub && (c->ntopics != 1 || c->msg_mode == CLI_MSG_NONE)) {
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
    } else if (!c->o.client_id && !sensor) { /* midge-sensor names its devices itself */
        snprintf(c->id_buf, sizeof c->id_buf, "%s_%ld",
                 sub   ? "midge_sub"
                 : pub ? "midge_pub"
                       : "midge_rr",
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

/* The transport that -L, --cafile... and --unix ask for; plain TCP when none. */
static int make_transport(cli_t *c)
{
    if (c->unix_path) {
        c->o.transport = midge_transport_unix();
        c->o.host = c->unix_path;
        return 0;
    }
    if (!c->tls_on && !c->ws)
        return 0;
    char err[256];
    const midge_tls_options_t *tls = c->tls_on ? &c->tls : NULL;
    c->transport = c->ws ? midge_transport_ws_new(c->ws_path, tls, err, sizeof err)
                         : midge_transport_tls_new(tls, err, sizeof err);
    if (!c->transport) {
        cli_error(c, "Problem setting %s options: %s.", c->tls_on ? "TLS" : "WebSocket", err);
        return 1;
    }
    c->o.transport = c->transport;
    return 0;
}

void cli_free(cli_t *c)
{
    free(c->url_buf);
    c->url_buf = NULL;
    midge_transport_free(c->transport);
    c->transport = NULL;
}

int cli_connect(cli_t *c, midge_client_t **out)
{
    return cli_connect_with(c, &c->o, out);
}

int cli_connect_with(cli_t *c, const midge_options_t *opts, midge_client_t **out)
{
    midge_client_t *cl;
    *out = NULL;
    if (!c->o.transport && make_transport(c)) /* once: it sets c->o.transport, or none */
        return 1;
    midge_options_t o = *opts;
    o.host = c->o.host; /* --unix puts the socket's path there */
    o.transport = c->o.transport;
    if (midge_client_new(&o, &cl)) {
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
    const char *why = midge_transport_error(c->o.transport);
    if (rc && why[0]) {
        /* The TLS or WebSocket layer refused: its reason says more than errno. */
        cli_error(c, "Unable to connect (%s).", why);
        midge_client_free(cl);
        return 1;
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
        printf("Client %s received CONNACK (%u)\n", o.client_id, reason);
    *out = cl;
    return 0;
}

/* ---- printing received messages (midge-sub's -F formatter, shared with midge-rr) ----
 *
 * What mosquitto_sub 2.0 prints, byte for byte. %j and %J are the JSON that mosquitto builds
 * with cJSON: cJSON_PrintUnformatted, or cJSON_Print with --pretty (a tab after each ':',
 * one member a line indented with tabs, array elements on one line after ", "). %J embeds
 * the payload as parsed JSON, so it is re-printed here the way cJSON prints it.
 */
/* Write s padded to width (left-aligned with '-'), cut to maxw when maxw >= 0. */
static void put_field(const char *s, size_t n, int width, int maxw, bool left, bool zero)
{
    if (maxw >= 0 && n > (size_t)maxw)
        n = (size_t)maxw;
    int pad = width > (int)n ? width - (int)n : 0;
    if (!left)
        for (int i = 0; i < pad; i++)
            putchar(zero ? '0' : ' ');
    fwrite(s, 1, n, stdout);
    if (left)
        for (int i = 0; i < pad; i++)
            putchar(' ');
}

static void put_num(long long v, int width, bool left, bool zero)
{
    char b[32];
    int n = snprintf(b, sizeof b, "%lld", v);
    put_field(b, (size_t)n, width, -1, left, zero && !left);
}

/* JSON string as cJSON prints it: quotes, backslash and control characters escaped. */
static void put_json_str(const char *s, size_t n)
{
    putchar('"');
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];
        switch (ch) {
        case '"':
            fputs("\\\"", stdout);
            break;
        case '\\':
            fputs("\\\\", stdout);
            break;
        case '\b':
            fputs("\\b", stdout);
            break;
        case '\f':
            fputs("\\f", stdout);
            break;
        case '\n':
            fputs("\\n", stdout);
            break;
        case '\r':
            fputs("\\r", stdout);
            break;
        case '\t':
            fputs("\\t", stdout);
            break;
        default:
            if (ch < 32)
                printf("\\u%04x", ch);
            else
                putchar(ch);
        }
    }
    putchar('"');
}

static void put_time(const struct timespec *ts, const char *fmt)
{
    struct tm tm;
    char b[128];
    localtime_r(&ts->tv_sec, &tm);
    size_t n = strftime(b, sizeof b, fmt, &tm);
    fwrite(b, 1, n, stdout);
}

/* A JSON writer with cJSON's layout. depth counts open objects and arrays, as cJSON's
 * print buffer does (an object inside an array is indented one tab deeper). */
#define JW_MAX_DEPTH 64

typedef struct json_writer {
    bool pretty;
    int depth;
    bool first[JW_MAX_DEPTH + 1]; /* no member or element written yet at this depth */
    bool in_array[JW_MAX_DEPTH + 1];
} json_writer_t;

static void jw_tabs(int n)
{
    for (int i = 0; i < n; i++)
        putchar('\t');
}

/* Before a value: in an array, the separator from the previous element. */
static void jw_value(json_writer_t *w)
{
    if (!w->in_array[w->depth])
        return;
    if (!w->first[w->depth])
        fputs(w->pretty ? ", " : ",", stdout);
    w->first[w->depth] = false;
}

static void jw_open(json_writer_t *w, bool array)
{
    jw_value(w);
    putchar(array ? '[' : '{');
    if (w->pretty && !array)
        putchar('\n');
    w->depth++;
    w->first[w->depth] = true;
    w->in_array[w->depth] = array;
}

static void jw_close(json_writer_t *w)
{
    bool array = w->in_array[w->depth];
    if (w->pretty && !array) {
        if (!w->first[w->depth])
            putchar('\n');
        jw_tabs(w->depth - 1);
    }
    putchar(array ? ']' : '}');
    w->depth--;
}

static void jw_key(json_writer_t *w, const char *k, size_t n)
{
    if (!w->first[w->depth]) {
        putchar(',');
        if (w->pretty)
            putchar('\n');
    }
    w->first[w->depth] = false;
    if (w->pretty)
        jw_tabs(w->depth);
    put_json_str(k, n);
    putchar(':');
    if (w->pretty)
        putchar('\t');
}

/* A JSON payload (%J), parsed and printed as cJSON would print what it parsed. */
typedef struct json_in {
    const char *p, *end;
    json_writer_t *w; /* NULL: only validate */
} json_in_t;

static void ji_space(json_in_t *in)
{
    while (in->p < in->end && (unsigned char)*in->p <= ' ')
        in->p++;
}

static bool ji_lit(json_in_t *in, const char *lit)
{
    size_t n = strlen(lit);
    if ((size_t)(in->end - in->p) < n || memcmp(in->p, lit, n))
        return false;
    in->p += n;
    return true;
}

static int hex4(const char *p)
{
    int v = 0;
    for (int i = 0; i < 4; i++) {
        char ch = p[i];
        v <<= 4;
        if (ch >= '0' && ch <= '9')
            v |= ch - '0';
        else if (ch >= 'a' && ch <= 'f')
            v |= ch - 'a' + 10;
        else if (ch >= 'A' && ch <= 'F')
            v |= ch - 'A' + 10;
        else
            return -1;
    }
    return v;
}

/* A string at in->p (on its '"'): decoded into *out (malloc'd, caller frees). */
static bool ji_string(json_in_t *in, char **out, size_t *outn)
{
    const char *q = ++in->p;
    while (q < in->end && *q != '"')
        q += *q == '\\' ? 2 : 1;
    if (q >= in->end)
        return false;
    char *b = malloc((size_t)(q - in->p) + 1); /* decoding never grows the text */
    if (!b)
        return false;
    size_t n = 0;
    while (in->p < q) {
        char ch = *in->p++;
        if (ch != '\\') {
            b[n++] = ch;
            continue;
        }
        ch = *in->p++;
        char simple = ch == '"' || ch == '\\' || ch == '/' ? ch
                      : ch == 'b'                          ? '\b'
                      : ch == 'f'                          ? '\f'
                      : ch == 'n'                          ? '\n'
                      : ch == 'r'                          ? '\r'
                      : ch == 't'                          ? '\t'
                                                           : 0;
        if (simple) {
            b[n++] = simple;
            continue;
        }
        long cp = ch == 'u' && q - in->p >= 4 ? hex4(in->p) : -1;
        if (cp < 0)
            goto fail;
        in->p += 4;
        if (cp >= 0xDC00 && cp <= 0xDFFF)
            goto fail;
        if (cp >= 0xD800 && cp <= 0xDBFF) { /* a surrogate pair: \uD8xx\uDCxx */
            int lo = q - in->p >= 6 && in->p[0] == '\\' && in->p[1] == 'u' ? hex4(in->p + 2) : -1;
            if (lo < 0xDC00 || lo > 0xDFFF)
                goto fail;
            in->p += 6;
            cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
        }
        if (cp < 0x80) {
            b[n++] = (char)cp;
        } else if (cp < 0x800) {
            b[n++] = (char)(0xC0 | (cp >> 6));
            b[n++] = (char)(0x80 | (cp & 0x3F));
        } else if (cp < 0x10000) {
            b[n++] = (char)(0xE0 | (cp >> 12));
            b[n++] = (char)(0x80 | ((cp >> 6) & 0x3F));
            b[n++] = (char)(0x80 | (cp & 0x3F));
        } else {
            b[n++] = (char)(0xF0 | (cp >> 18));
            b[n++] = (char)(0x80 | ((cp >> 12) & 0x3F));
            b[n++] = (char)(0x80 | ((cp >> 6) & 0x3F));
            b[n++] = (char)(0x80 | (cp & 0x3F));
        }
    }
    in->p = q + 1;
    *out = b;
    *outn = n;
    return true;
fail:
    free(b);
    return false;
}

/* A number as cJSON prints it: an int when it is one, else %1.15g (or %1.17g when that
 * does not read back as the same double). */
static void put_json_number(double d)
{
    int i = d >= 2147483647.0 ? 2147483647 : d <= -2147483648.0 ? (-2147483647 - 1) : (int)d;
    char b[32];
    if (isnan(d) || isinf(d)) {
        fputs("null", stdout);
    } else if (d == (double)i) {
        printf("%d", i);
    } else {
        snprintf(b, sizeof b, "%1.15g", d);
        if (strtod(b, NULL) != d)
            snprintf(b, sizeof b, "%1.17g", d);
        fputs(b, stdout);
    }
}

static bool ji_value(json_in_t *in, int depth)
{
    json_writer_t *w = in->w;
    ji_space(in);
    if (in->p >= in->end || depth >= JW_MAX_DEPTH - 2)
        return false;
    char ch = *in->p;
    if (ch == '{' || ch == '[') {
        bool array = ch == '[';
        in->p++;
        if (w)
            jw_open(w, array);
        ji_space(in);
        if (in->p < in->end && *in->p == (array ? ']' : '}')) {
            in->p++;
        } else {
            for (;;) {
                if (!array) {
                    char *k;
                    size_t kn;
                    ji_space(in);
                    if (in->p >= in->end || *in->p != '"' || !ji_string(in, &k, &kn))
                        return false;
                    if (w)
                        jw_key(w, k, kn);
                    free(k);
                    ji_space(in);
                    if (in->p >= in->end || *in->p++ != ':')
                        return false;
                }
                if (!ji_value(in, depth + 1))
                    return false;
                ji_space(in);
                if (in->p >= in->end)
                    return false;
                ch = *in->p++;
                if (ch == (array ? ']' : '}'))
                    break;
                if (ch != ',')
                    return false;
            }
        }
        if (w)
            jw_close(w);
        return true;
    }
    if (w)
        jw_value(w);
    if (ch == '"') {
        char *s;
        size_t n;
        if (!ji_string(in, &s, &n))
            return false;
        if (w)
            put_json_str(s, n);
        free(s);
        return true;
    }
    if (ch == '-' || (ch >= '0' && ch <= '9')) {
        char b[64];
        size_t n = 0;
        while (in->p + n < in->end && n < sizeof b - 1 && strchr("0123456789+-.eE", in->p[n]))
            n++;
        memcpy(b, in->p, n);
        b[n] = 0;
        char *e;
        double d = strtod(b, &e);
        if (e == b)
            return false;
        in->p += e - b;
        if (w)
            put_json_number(d);
        return true;
    }
    static const char *lits[] = {"null", "true", "false"};
    for (int i = 0; i < 3; i++)
        if (ji_lit(in, lits[i])) {
            if (w)
                fputs(lits[i], stdout);
            return true;
        }
    return false;
}

/* One property of a PUBLISH in %j (user properties: all of them, as one object). */
static void put_json_prop(json_writer_t *w, const midge_props_t *p, uint8_t id)
{
    switch (id) {
    case MIDGE_PROP_USER_PROPERTY:
        jw_key(w, "user-properties", 15);
        jw_open(w, false);
        for (size_t i = 0; i < p->user_count; i++) {
            jw_key(w, p->user[i].name, strlen(p->user[i].name));
            put_json_str(p->user[i].value, strlen(p->user[i].value));
        }
        jw_close(w);
        break;
    case MIDGE_PROP_PAYLOAD_FORMAT:
        jw_key(w, "payload-format-indicator", 24);
        printf("%d", p->payload_format);
        break;
    case MIDGE_PROP_MESSAGE_EXPIRY:
        jw_key(w, "message-expiry-interval", 23);
        printf("%u", p->message_expiry);
        break;
    case MIDGE_PROP_CONTENT_TYPE:
        jw_key(w, "content-type", 12);
        put_json_str(p->content_type, strlen(p->content_type));
        break;
    case MIDGE_PROP_RESPONSE_TOPIC:
        jw_key(w, "response-topic", 14);
        put_json_str(p->response_topic, strlen(p->response_topic));
        break;
    case MIDGE_PROP_CORRELATION_DATA:
        jw_key(w, "correlation-data", 16);
        put_json_str((const char *)p->correlation, p->correlation_len);
        break;
    case MIDGE_PROP_SUBSCRIPTION_ID:
        jw_key(w, "subscription-identifier", 23);
        printf("%u", p->sub_ids[0]);
        break;
    default:
        break;
    }
}

/* %j, or %J (raw: the payload as JSON rather than as a string). */
static void put_json(const cli_t *c, const midge_message_t *m, const struct timespec *ts, bool raw)
{
    json_writer_t w = {.pretty = c->pretty};
    json_in_t in = {(const char *)m->payload, (const char *)m->payload + m->payload_len, NULL};
    /* cJSON_Parse fails the whole %J on a payload that is not JSON: print nothing for it */
    bool valid = !raw || !m->payload_len || ji_value(&in, 0);
    if (valid && raw && m->payload_len) {
        ji_space(&in);
        valid = in.p == in.end; /* as mosquitto: nothing but JSON in the payload */
    }
    if (!valid) {
        cli_error(c, "Message payload is not valid JSON on topic %.*s.", (int)m->topic_len,
                  m->topic);
        return;
    }
    char b[64];
    jw_open(&w, false);
    /* "tst":"2020-05-06T22:12:00.000000Z+0100" as mosquitto_sub 2.0 prints it */
    jw_key(&w, "tst", 3);
    struct tm tm;
    localtime_r(&ts->tv_sec, &tm);
    size_t n = strftime(b, sizeof b, "%Y-%m-%dT%H:%M:%S", &tm);
    n += (size_t)snprintf(b + n, sizeof b - n, ".%06ldZ", ts->tv_nsec / 1000);
    n += strftime(b + n, sizeof b - n, "%z", &tm);
    put_json_str(b, n);
    jw_key(&w, "topic", 5);
    put_json_str(m->topic, m->topic_len);
    jw_key(&w, "qos", 3);
    printf("%d", m->qos);
    jw_key(&w, "retain", 6);
    printf("%d", m->retain);
    jw_key(&w, "payloadlen", 10);
    printf("%zu", m->payload_len);
    if (m->qos) {
        jw_key(&w, "mid", 3);
        printf("%u", m->packet_id);
    }
    const midge_props_t *p = &m->props;
    if (p->user_count || p->content_type || p->response_topic || p->correlation ||
        p->has_message_expiry || p->payload_format >= 0 || p->sub_id_count) {
        jw_key(&w, "properties", 10);
        jw_open(&w, false);
        for (size_t k = 0; k < p->order_count; k++)
            put_json_prop(&w, p, p->order[k]);
        jw_close(&w);
    }
    jw_key(&w, "payload", 7);
    if (m->payload_len && raw) {
        in.p = (const char *)m->payload;
        in.w = &w;
        ji_value(&in, 1);
    } else if (m->payload_len) {
        put_json_str((const char *)m->payload, m->payload_len);
    } else {
        fputs("null", stdout);
    }
    jw_close(&w);
}

/* -F: print one message as the format says. Returns false on an invalid sequence. */
static bool put_formatted(const cli_t *c, const midge_message_t *m)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    for (const char *f = c->format; *f; f++) {
        if (*f == '\\') {
            f++;
            switch (*f) {
            case '\\':
                putchar('\\');
                break;
            case '0':
                putchar('\0');
                break;
            case 'a':
                putchar('\a');
                break;
            case 'e':
                putchar('\033');
                break;
            case 'n':
                putchar('\n');
                break;
            case 'r':
                putchar('\r');
                break;
            case 't':
                putchar('\t');
                break;
            case 'v':
                putchar('\v');
                break;
            case '\0':
                f--;
                putchar('\\');
                break;
            default:
                putchar('\\');
                putchar(*f);
            }
            continue;
        }
        if (*f == '@') {
            f++;
            if (*f == '@') {
                putchar('@');
            } else if (*f == 'N') {
                printf("%09ld", ts.tv_nsec);
            } else if (*f) {
                char fmt[3] = {'%', *f, 0};
                put_time(&ts, fmt);
            } else {
                f--;
            }
            continue;
        }
        if (*f != '%') {
            putchar(*f);
            continue;
        }
        f++;
        bool left = false, zero = false;
        for (; *f == '-' || *f == '0'; f++) {
            if (*f == '-')
                left = true;
            else
                zero = true;
        }
        int width = 0, maxw = -1;
        for (; *f >= '0' && *f <= '9'; f++)
            width = width * 10 + (*f - '0');
        if (*f == '.') {
            maxw = 0;
            for (f++; *f >= '0' && *f <= '9'; f++)
                maxw = maxw * 10 + (*f - '0');
        }
        const midge_props_t *p = &m->props;
        switch (*f) {
        case '%':
            putchar('%');
            break;
        case 't':
            put_field(m->topic, m->topic_len, width, maxw, left, false);
            break;
        case 'p':
            put_field((const char *)m->payload, m->payload_len, width, -1, left, false);
            break;
        case 'q':
            putchar('0' + m->qos);
            break;
        case 'r':
            putchar(m->retain ? '1' : '0');
            break;
        case 'l':
            put_num((long long)m->payload_len, width, left, zero);
            break;
        case 'm':
        case 'i': /* the message id, also as %i (Midge; mosquitto 2.0 rejects %i) */
            put_num(m->packet_id, width, left, zero);
            break;
        case 'x':
        case 'X':
            for (size_t i = 0; i < m->payload_len; i++)
                printf(*f == 'x' ? "%02x" : "%02X", m->payload[i]);
            break;
        case 'C':
            if (p->content_type)
                put_field(p->content_type, strlen(p->content_type), width, maxw, left, false);
            break;
        case 'R':
            if (p->response_topic)
                put_field(p->response_topic, strlen(p->response_topic), width, maxw, left, false);
            break;
        case 'D':
            if (p->correlation)
                fwrite(p->correlation, 1, p->correlation_len, stdout);
            break;
        case 'E':
            if (p->has_message_expiry)
                put_num(p->message_expiry, width, left, zero);
            break;
        case 'F':
            if (p->payload_format >= 0)
                put_num(p->payload_format, width, left, zero);
            break;
        case 'S':
            if (p->sub_id_count)
                put_num(p->sub_ids[0], width, left, zero);
            break;
        case 'P':
            for (size_t i = 0; i < p->user_count; i++) {
                if (i)
                    putchar(' ');
                printf("%s:%s", p->user[i].name, p->user[i].value);
            }
            break;
        case 'I':
            put_time(&ts, "%Y-%m-%dT%H:%M:%S%z");
            break;
        case 'U':
            printf("%lld.%09ld", (long long)ts.tv_sec, ts.tv_nsec);
            break;
        case 'j':
        case 'J':
            put_json(c, m, &ts, *f == 'J');
            break;
        default:
            cli_error(c, "Invalid format specifier '%c'.", *f ? *f : ' ');
            return false;
        }
        if (!*f)
            break;
    }
    return true;
}

bool cli_format_ok(const cli_t *c)
{
    for (const char *f = c->format; *f; f++) {
        if (*f == '\\' || *f == '@') {
            if (f[1])
                f++;
            continue;
        }
        if (*f != '%')
            continue;
        f++;
        while (*f == '-' || *f == '0' || *f == '.' || (*f >= '0' && *f <= '9'))
            f++;
        if (!*f || !strchr("%tpqrlmixXCRDEFSPIUjJ", *f)) {
            cli_error(c, "Invalid format specifier '%c'.", *f ? *f : ' ');
            return false;
        }
    }
    return true;
}

bool cli_print_message(const cli_t *c, const midge_message_t *m)
{
    if (c->format) {
        if (!put_formatted(c, m))
            return false;
        if (!c->no_eol)
            putchar('\n');
    } else if (c->verbose) {
        /* As mosquitto_sub: an empty payload shows as "(null)", and not at all with -N. */
        if (m->payload_len) {
            fwrite(m->topic, 1, m->topic_len, stdout);
            putchar(' ');
            fwrite(m->payload, 1, m->payload_len, stdout);
            if (!c->no_eol)
                putchar('\n');
        } else if (!c->no_eol) {
            fwrite(m->topic, 1, m->topic_len, stdout);
            fputs(" (null)\n", stdout);
        }
    } else if (m->payload_len) {
        /* payload only: an empty payload prints nothing, not even the newline */
        fwrite(m->payload, 1, m->payload_len, stdout);
        if (!c->no_eol)
            putchar('\n');
    }
    fflush(stdout);
    return true;
}

/* See cli.h. */
char *cli_read_all(FILE *f, size_t *n)
{
    size_t cap = 4096, len = 0;
    char *b = malloc(cap);
    while (b) {
        size_t r = fread(b + len, 1, cap - len, f);
        len += r;
        if (r == 0)
            break;
        if (len == cap) {
            char *nb = realloc(b, cap * 2);
            if (!nb) {
                free(b);
                return NULL;
            }
            b = nb;
            cap *= 2;
        }
    }
    if (b && ferror(f)) {
        free(b);
        return NULL;
    }
    *n = len;
    return b;
}
