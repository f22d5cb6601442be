/* cli.h - the command line shared by midge-pub, midge-sub, midge-rr and midge-sensor
 * (src/tools/).
 *
 * Parses mosquitto_pub/mosquitto_sub/mosquitto_rr's options (same letters, meanings and error
 * exits) into a midge_options_t plus what each tool needs, and connects with the blocking API,
 * reporting failures as mosquitto's clients do. Internal: not part of the installed API.
 */
#ifndef MIDGE_CLI_H
#define MIDGE_CLI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "midge/midge.h"

#define CLI_MAX_TOPICS 128

enum { CLI_PUB, CLI_SUB, CLI_RR, CLI_SENSOR };
enum { CLI_MSG_NONE, CLI_MSG_M, CLI_MSG_FILE, CLI_MSG_STDIN, CLI_MSG_LINES, CLI_MSG_NULL };

typedef struct cli {
    int tool;          /* CLI_PUB, CLI_SUB, CLI_RR or CLI_SENSOR */
    const char *name;  /* "midge-pub" */
    midge_options_t o; /* host, port, version, ids, will... */
    char id_buf[128];
    bool debug, quiet;
    int qos;
    long session_expiry; /* -x; -1: not given */
    const char *topics[CLI_MAX_TOPICS];
    size_t ntopics;
    char *url_buf; /* -L: the parsed copy that topics/host point into */
    /* transport: --cafile... turn TLS on, -L ws:// and wss:// WebSocket, --unix a socket */
    midge_tls_options_t tls;
    bool tls_on, ws, port_given, url_given;
    const char *unix_path;
    const char *ws_path;          /* --ws-path; NULL: /mqtt */
    midge_transport_t *transport; /* made by cli_connect; freed by cli_free */
    /* -D: MQTT 5.0 properties of CONNECT, PUBLISH and the will */
    bool has_props;
    midge_props_t connect_props, publish_props, will_props;
    midge_user_prop_t user[3][CLI_MAX_TOPICS];
    /* pub */
    int msg_mode;
    const char *message;
    const char *file;
    bool retain; /* pub, sensor: -r */
    long repeat;
    double repeat_delay;
    /* sub */
    const char *filter_out[CLI_MAX_TOPICS];
    size_t nfilter_out;
    const char *unsub[CLI_MAX_TOPICS];
    size_t nunsub;
    long count;   /* -C (sub, sensor), 0: unlimited */
    long timeout; /* -W seconds, 0: none */
    bool verbose, no_eol, no_retained, exit_after_sub, retained_only, remove_retained;
    bool pretty; /* --pretty: %j/%J as cJSON_Print lays it out (tabs, one member a line) */
    const char *format;
    /* rr */
    const char *response_topic; /* -e */
} cli_t;

/* Parse argv into *c. Returns -1 when the tool should go on, else the exit status (0 after
 * --help, 1 after an error, which is printed as one line on stderr). */
int cli_parse(cli_t *c, int tool, int argc, char **argv);

/* A tool's own options (midge-sensor's), offered to it before the shared ones. */
enum { CLI_EXTRA_HANDLED = -1, CLI_EXTRA_NOT_MINE = -2 };
typedef struct cli_extra {
    const char *const *with_value; /* its options that take a value; NULL-terminated */
    /* Option a with its value v (NULL for a flag): returns CLI_EXTRA_HANDLED,
     * CLI_EXTRA_NOT_MINE, or an exit status (0 after its --help, 1 after an error it
     * printed with cli_error). */
    int (*option)(struct cli *c, const char *a, const char *v, void *ud);
    void *ud;
} cli_extra_t;

/* cli_parse with a tool's own options (extra may be NULL). With CLI_SENSOR: -r and -C are
 * allowed, -q defaults to 1, -L needs no topic (a path is the topic prefix, in topics[0]),
 * -t and the --will options are refused (the tool sets the will), and no client id is
 * made up (o.client_id stays NULL without -i). */
int cli_parse_with(cli_t *c, int tool, const cli_extra_t *extra, int argc, char **argv);

/* Create the client and connect (blocking). Returns 0 with *out set, or the exit status
 * after printing one line: the CONNACK code when refused, 1 when unreachable. */
int cli_connect(cli_t *c, midge_client_t **out);

/* cli_connect with other options than c->o (another client id, a will), for a tool that
 * opens several connections; host and transport still come from c (one transport, made
 * on the first call, shared by all). */
int cli_connect_with(cli_t *c, const midge_options_t *opts, midge_client_t **out);

/* Free what cli_parse and cli_connect allocated (after midge_client_free). */
void cli_free(cli_t *c);

/* -F given: check its % conversions before connecting, as mosquitto_sub does. Prints the
 * error and returns false on an unknown one. */
bool cli_format_ok(const cli_t *c);

/* Print one received message on stdout as mosquitto_sub/mosquitto_rr would: -F format
 * (with --pretty for %j and %J), else -v, else the payload; -N drops the newline. Returns
 * false when the format holds an invalid sequence (already reported). */
bool cli_print_message(const cli_t *c, const midge_message_t *m);

/* Read all of f (a -f file, stdin for -s) into a new buffer the caller frees; *n gets its
 * length. NULL on a read error or when out of memory. */
char *cli_read_all(FILE *f, size_t *n);

/* Print an error line "Error: ..." unless --quiet. */
void cli_error(const cli_t *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* s as a whole decimal number in [lo, hi] into *out; false (and *out untouched) if not. */
bool cli_parse_long(const char *s, long lo, long hi, long *out);

#endif
