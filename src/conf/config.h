/* config.h - the broker's configuration: defaults, the configuration file and the
 * command line.
 *
 * The file uses Mosquitto's mosquitto.conf syntax ("option value", '#' comments) for the
 * options Midge supports; an option Midge does not know, or a bad value, is an error that
 * names the file and line. Command-line options override the file.
 */
#ifndef MIDGE_CONFIG_H
#define MIDGE_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CONFIG_MAX_LISTENERS 16

typedef struct config_listener {
    uint16_t port;
    /* "" means the default: 127.0.0.1 when no file defines listeners. config_parse_args
     * fills in "127.0.0.1" itself for -p and for the implicit default listener, so an ""
     * that reaches the broker comes from a file's `listener PORT` or `port PORT` without
     * an address: listen on all interfaces, as Mosquitto does. */
    char bind_address[64];
} config_listener_t;

/* log_type bits (Mosquitto's names; "all" sets every bit, "none" none). */
enum {
    CONFIG_LOG_ERROR = 1 << 0,
    CONFIG_LOG_WARNING = 1 << 1,
    CONFIG_LOG_NOTICE = 1 << 2,
    CONFIG_LOG_INFORMATION = 1 << 3,
    CONFIG_LOG_SUBSCRIBE = 1 << 4,
    CONFIG_LOG_UNSUBSCRIBE = 1 << 5,
    CONFIG_LOG_WEBSOCKETS = 1 << 6,
    CONFIG_LOG_DEBUG = 1 << 7,
    CONFIG_LOG_ALL = (1 << 8) - 1,
    /* Mosquitto's default when no log_type line is given. */
    CONFIG_LOG_DEFAULT = CONFIG_LOG_ERROR | CONFIG_LOG_WARNING | CONFIG_LOG_NOTICE |
                         CONFIG_LOG_INFORMATION,
};

/* log_dest bits. */
enum { CONFIG_LOG_DEST_STDOUT = 1 << 0, CONFIG_LOG_DEST_STDERR = 1 << 1 };

typedef struct config {
    config_listener_t listeners[CONFIG_MAX_LISTENERS];
    int listener_count;
    int threads;                  /* 0: one per core */
    bool allow_anonymous;
    uint32_t max_connections;     /* 0: unlimited (-1 in the file also means unlimited) */
    uint32_t max_packet_size;     /* bytes, the largest packet accepted; default 268435460 */
    uint32_t message_size_limit;  /* bytes of PUBLISH payload; 0: no limit beyond packet */
    uint16_t max_inflight_messages; /* per client outbound QoS 1/2 window; default 20 */
    uint32_t max_queued_messages; /* per offline/slow session; default 1000 */
    uint64_t max_queued_bytes;    /* 0: no byte limit */
    uint16_t max_keepalive;       /* seconds; default 65535 (5.0 server keepalive caps) */
    uint32_t sys_interval;        /* seconds between $SYS updates; 0 disables; default 10 */
    uint32_t connect_timeout;     /* seconds a socket may take to send CONNECT; default 10 */
    uint16_t max_topic_alias;     /* topic alias maximum offered to 5.0 clients; default 10 */
    uint16_t receive_maximum;     /* inbound QoS 1/2 window offered to 5.0 clients; default 100 */
    /* Logging. The first log_type / log_dest line of a file replaces the default set;
     * further lines add to it (Mosquitto's rule). */
    unsigned log_types;           /* CONFIG_LOG_* bits; default CONFIG_LOG_DEFAULT */
    unsigned log_dest;            /* CONFIG_LOG_DEST_* bits; default CONFIG_LOG_DEST_STDERR */
    bool log_timestamp;           /* prefix log lines with the time; default true */
    bool connection_messages;     /* log connects and disconnects; default true */
    bool persistence;             /* always false until the store exists ("true" is an error) */
    int default_listener;         /* index in listeners of the one `port` / `bind_address`
                                   * define, -1 when the file has neither */
    int verbose;                  /* -v: log every connection and refusal */
    bool daemon;                  /* -d */
    char config_file[512];        /* -c, "" when none */
} config_t;

/* Fill *cfg with the defaults: no listeners yet (config_parse_args adds 127.0.0.1:1883
 * when neither the file nor -p gives one), threads 0, allow_anonymous true (Midge is
 * local-only by default), max_connections 0, max_packet_size 268435460,
 * message_size_limit 0, max_inflight_messages 20, max_queued_messages 1000,
 * max_queued_bytes 0, max_keepalive 65535, sys_interval 10, connect_timeout 10,
 * max_topic_alias 10, receive_maximum 100, the logging defaults above. */
void config_init(config_t *cfg);

/* Read a configuration file into *cfg. On error returns -1 with a message of the form
 * "FILE:LINE: what was wrong" in err (naming the option and the value), or
 * "FILE: cannot open: reason". *cfg may be partly updated on error.
 *
 * Options (Mosquitto's names and meaning; the last four are Midge's own, Mosquitto
 * has no equivalent): listener PORT [ADDRESS], port PORT, bind_address ADDRESS,
 * allow_anonymous BOOL, max_connections N (-1 unlimited), max_packet_size N (0: the
 * protocol's limit), message_size_limit N, max_inflight_messages N,
 * max_queued_messages N, max_queued_bytes N, max_keepalive N, sys_interval N,
 * max_topic_alias N, log_type TYPE, log_dest stdout|stderr, log_timestamp BOOL,
 * connection_messages BOOL, persistence false; and threads N (0: one per core),
 * connect_timeout N (seconds), receive_maximum N (1..65535). */
int config_load_file(config_t *cfg, const char *path, char *err, size_t errlen);

/* Parse the command line (-p PORT, -c FILE, -v, -d, -h, --version). Loads -c's file.
 * Returns 0 to run, 1 when the program should exit 0 (help or version was printed),
 * -1 on error with the message in err. Listeners: those of the file, plus one on
 * 127.0.0.1:PORT for a -p; with neither, one on 127.0.0.1:1883. */
int config_parse_args(config_t *cfg, int argc, char **argv, char *err, size_t errlen);

#endif
