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
#define CONFIG_PATH_MAX 512
#define CONFIG_MAX_ORIGINS 8
#define CONFIG_MAX_TRUSTED 8

/* accept_protocol_versions bits. */
enum { CONFIG_PROTO_V31 = 1 << 3, CONFIG_PROTO_V311 = 1 << 4, CONFIG_PROTO_V5 = 1 << 5,
       CONFIG_PROTO_ALL = CONFIG_PROTO_V31 | CONFIG_PROTO_V311 | CONFIG_PROTO_V5 };

/* One listener. Options that Mosquitto scopes to a listener apply to the last `listener`
 * line above them in the same file; above the first one of a file, they are the "default
 * listener"'s (Mosquitto's rule): the listener of `port`/`bind_address`, the -p ones and the
 * implicit 127.0.0.1:1883 get them (and if a file has none of these but does have such
 * options, Mosquitto's default listener on port 1883, all addresses, is created).
 * Security options (allow_anonymous, password_file, acl_file) are global unless
 * per_listener_settings is true, wherever per_listener_settings stands; either way loading
 * copies the values that apply into every listener, so the broker reads them here only.
 * allow_anonymous defaults to false on every listener when the file defines a listener
 * (listener, port or bind_address: Mosquitto 2), true otherwise (no file, or -p only). */
typedef struct config_listener {
    uint16_t port;
    /* "" means the default: 127.0.0.1 when no file defines listeners. config_parse_args
     * fills in "127.0.0.1" itself for -p and for the implicit default listener, so an ""
     * that reaches the broker comes from a file's `listener PORT` or `port PORT` without
     * an address: listen on all interfaces, as Mosquitto does. */
    char bind_address[64];
    char unix_path[108];          /* `listener 0 /path/to/socket`: a unix socket; "" otherwise */
    char bind_interface[32];      /* bind_interface IFNAME (SO_BINDTODEVICE); "" */
    int socket_domain;            /* 0 both, 4 ipv4, 6 ipv6 (socket_domain ipv4|ipv6) */
    bool websockets;              /* protocol websockets (default mqtt) */
    uint32_t max_connections;     /* per listener; 0: unlimited (-1 in the file) */
    unsigned accept_versions;     /* CONFIG_PROTO_* bits; default CONFIG_PROTO_ALL */
    int proxy_protocol;           /* enable_proxy_protocol 1|2; 0 off */
    /* TLS: a listener with a certfile is a TLS listener (needs keyfile). */
    char cafile[CONFIG_PATH_MAX], capath[CONFIG_PATH_MAX];
    char certfile[CONFIG_PATH_MAX], keyfile[CONFIG_PATH_MAX], crlfile[CONFIG_PATH_MAX];
    char ciphers[256], ciphers13[256];
    char tls_version[16];         /* "" (1.2 and 1.3), "tlsv1.2", "tlsv1.3" */
    bool require_certificate;
    bool use_identity_as_username; /* the client certificate's CN is the username */
    bool use_subject_as_username;  /* its subject (RFC 2253) is the username */
    /* WebSockets */
    char http_dir[CONFIG_PATH_MAX]; /* static files on the WebSocket port; "" none */
    char origins[CONFIG_MAX_ORIGINS][128]; /* websockets_origin (repeatable); none: any */
    int norigins;
    /* websockets_trusted_proxy ADDRESS (Midge's own, repeatable): X-Forwarded-For from
     * these peers names the client. */
    char trusted_proxies[CONFIG_MAX_TRUSTED][64];
    int ntrusted;
    /* Security, as it applies to this listener (see above). */
    bool allow_anonymous;
    char password_file[CONFIG_PATH_MAX]; /* "" none */
    char acl_file[CONFIG_PATH_MAX];      /* "" none */
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
/* persistence_mode: durable acknowledges a QoS 1/2 PUBLISH, a SUBSCRIBE, ... only once
 * committed; periodic commits every autosave_interval seconds and acknowledges at once. */
enum { CONFIG_PERSIST_DURABLE = 0, CONFIG_PERSIST_PERIODIC = 1 };
/* persistence_sync: PRAGMA synchronous NORMAL (survives a killed process) or FULL (also a
 * power loss). */
enum { CONFIG_SYNC_NORMAL = 0, CONFIG_SYNC_FULL = 1 };
enum { CONFIG_LOG_DEST_STDOUT = 1 << 0, CONFIG_LOG_DEST_STDERR = 1 << 1,
       CONFIG_LOG_DEST_FILE = 1 << 2 /* log_file */ };

typedef struct config {
    config_listener_t listeners[CONFIG_MAX_LISTENERS];
    int listener_count;
    int threads;                  /* 0: one per core */
    bool allow_anonymous;         /* after loading: the default listener's value (the global
                                   * one unless per_listener_settings); read the listener's */
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
    /* Cross-thread deliveries waiting for one I/O thread beyond which the others stop reading
     * flooding connections, until all are under a quarter of it; default 65536 */
    uint32_t thread_backlog_limit;
    /* Logging. The first log_type / log_dest line of a file replaces the default set;
     * further lines add to it (Mosquitto's rule). */
    unsigned log_types;           /* CONFIG_LOG_* bits; default CONFIG_LOG_DEFAULT */
    unsigned log_dest;            /* CONFIG_LOG_DEST_* bits; default CONFIG_LOG_DEST_STDERR */
    bool log_timestamp;           /* prefix log lines with the time; default true */
    bool connection_messages;     /* log connects and disconnects; default true */
    bool persistence;             /* keep state in an SQLite database (src/store); default false */
    char persistence_location[CONFIG_PATH_MAX]; /* directory; "" the working directory */
    char persistence_file[256];   /* default "midge.db" */
    uint32_t autosave_interval;   /* seconds between commits in periodic mode; default 1800 */
    uint8_t persistence_mode;     /* CONFIG_PERSIST_*; default durable */
    uint8_t persistence_sync;     /* CONFIG_SYNC_*: PRAGMA synchronous; default normal */
    bool per_listener_settings;   /* security options per listener (see config_listener) */
    /* The global password_file and acl_file (per_listener_settings false); after loading,
     * every listener holds its own copy of what applies to it. "" none. */
    char password_file[CONFIG_PATH_MAX];
    char acl_file[CONFIG_PATH_MAX];
    uint32_t global_max_connections; /* over all listeners; 0 unlimited (-1 in the file) */
    char log_file[CONFIG_PATH_MAX]; /* log_dest file PATH; "" none */
    char pid_file[CONFIG_PATH_MAX]; /* written at start, removed at exit; "" none */
    char user[64];                /* when started as root, switch to this user after the
                                   * sockets and files are open; "" stays root */
    bool test_config;             /* --test-config: check the file and exit */
    int default_listener;         /* index in listeners of the one `port` / `bind_address`
                                   * define, -1 when the file has neither */
    int verbose;                  /* -v: log every connection and refusal */
    bool daemon;                  /* -d */
    char config_file[512];        /* -c, "" when none */
} config_t;

/* Fill *cfg with the defaults: no listeners yet (config_parse_args adds 127.0.0.1:1883
 * when neither the file nor -p gives one), threads 0, allow_anonymous true (Midge is
 * local-only by default; loading a file that defines listeners makes it false),
 * max_packet_size 268435460, message_size_limit 0,
 * max_inflight_messages 20, max_queued_messages 1000, max_queued_bytes 0,
 * max_keepalive 65535, sys_interval 10, connect_timeout 10, max_topic_alias 10,
 * receive_maximum 100, the logging defaults above, persistence_file "midge.db",
 * autosave_interval 1800, global_max_connections 0. */
void config_init(config_t *cfg);

/* Read a configuration file (and the files its include_dir names) into *cfg, then give
 * every listener what applies to it and check each listener's options fit together. On
 * error returns -1 with a message of the form "FILE:LINE: what was wrong" in err (naming the
 * option and the value; FILE may be a file of include_dir), or "FILE: cannot open: reason".
 * *cfg may be partly updated on error.
 *
 * Options, with Mosquitto's names, syntax and meaning (booleans: true/false or 1/0; a path
 * or other string takes the rest of the line):
 *  - listeners: listener PORT [ADDRESS], listener 0 UNIX_PATH, port PORT, bind_address
 *    ADDRESS; per listener: socket_domain ipv4|ipv6, bind_interface IFNAME, protocol
 *    mqtt|websockets, max_connections N (-1 unlimited), accept_protocol_versions LIST (3, 4,
 *    5, comma separated), enable_proxy_protocol 1|2, cafile, capath, certfile, keyfile,
 *    crlfile, ciphers, ciphers_tls1.3, tls_version tlsv1.2|tlsv1.3, require_certificate,
 *    use_identity_as_username, use_subject_as_username, http_dir, websockets_origin
 *    (repeatable), websockets_trusted_proxy (Midge's own, repeatable);
 *  - security: per_listener_settings, allow_anonymous, password_file, acl_file;
 *  - limits: global_max_connections N, max_packet_size N (0: the protocol's limit),
 *    message_size_limit N, max_inflight_messages N, max_queued_messages N,
 *    max_queued_bytes N, max_keepalive N, sys_interval N, max_topic_alias N,
 *    thread_backlog_limit N (Midge's own);
 *  - logging: log_type TYPE, log_dest stdout|stderr|file PATH|none, log_timestamp,
 *    connection_messages;
 *  - process: persistence BOOL, persistence_location DIR, persistence_file NAME,
 *    persistence_mode durable|periodic, persistence_sync normal|full, autosave_interval N, pid_file PATH, user NAME, include_dir DIR (main file only);
 *  - Midge's own: threads N (0: one per core), connect_timeout N (seconds),
 *    receive_maximum N (1..65535).
 * Files named by certfile, keyfile, cafile, crlfile, password_file, acl_file (and the
 * directories capath, http_dir) must exist and be readable at load time. */
int config_load_file(config_t *cfg, const char *path, char *err, size_t errlen);

/* Parse the command line (-p PORT, -c FILE, -v, -d, --test-config, -h, --version). Loads
 * -c's file (as config_load_file, the -p listeners included).
 * Returns 0 to run, 1 when the program should exit 0 (help or version was printed),
 * -1 on error with the message in err. Listeners: those of the file, plus one on
 * 127.0.0.1:PORT for a -p; with neither, one on 127.0.0.1:1883. */
int config_parse_args(config_t *cfg, int argc, char **argv, char *err, size_t errlen);

#endif
