/* main.c - the `midge` broker program: configuration, signals, start and stop.
 *
 * SIGINT and SIGTERM stop the broker cleanly: the I/O threads finish their turn, every
 * connection is closed and every structure freed. Signals are taken synchronously by the
 * main thread (sigwait), so no handler runs inside an I/O thread.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "broker/broker.h"
#include "broker/log.h"
#include "conf/config.h"

int main(int argc, char **argv)
{
    static config_t cfg;
    static broker_t broker;
    char err[512];
    config_init(&cfg);
    int r = config_parse_args(&cfg, argc, argv, err, sizeof(err));
    if (r == 1)
        return 0;
    if (r < 0) {
        fprintf(stderr, "midge: %s\n", err);
        return 1;
    }
    /* Mosquitto's log types onto the log's levels; -v is `log_type all`. */
    unsigned types = cfg.verbose ? CONFIG_LOG_ALL : cfg.log_types;
    unsigned mask = ((types & CONFIG_LOG_ERROR) ? 1u << LOG_ERR : 0) |
                    ((types & CONFIG_LOG_WARNING) ? 1u << LOG_WARN : 0) |
                    ((types & CONFIG_LOG_NOTICE) ? 1u << LOG_NOTICE : 0) |
                    ((types & (CONFIG_LOG_INFORMATION | CONFIG_LOG_SUBSCRIBE |
                               CONFIG_LOG_UNSUBSCRIBE)) ? 1u << LOG_INFO : 0) |
                    ((types & CONFIG_LOG_DEBUG) ? 1u << LOG_DEBUG : 0);
    log_configure(mask, cfg.log_dest & CONFIG_LOG_DEST_STDOUT,
                  cfg.log_dest & CONFIG_LOG_DEST_STDERR, cfg.log_timestamp);

    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);

    if (broker_init(&broker, &cfg) < 0) {
        fprintf(stderr, "midge: start-up failed (see the log above)\n");
        broker_cleanup(&broker);
        return 1;
    }
    if (cfg.daemon && daemon(0, 0) < 0) {
        perror("midge: daemon");
        broker_cleanup(&broker);
        return 1;
    }
    if (broker_start(&broker) < 0) {
        broker_cleanup(&broker);
        return 1;
    }
    for (;;) {
        int sig = 0;
        if (sigwait(&set, &sig) != 0)
            continue;
        if (sig == SIGHUP) {
            log_msg(LOG_NOTICE, "SIGHUP: reloading certificates, password and ACL files");
            listeners_reload(&broker);
            continue;
        }
        log_msg(LOG_NOTICE, "midge version %s terminating (signal %d)", MIDGE_VERSION, sig);
        break;
    }
    broker_stop(&broker);
    broker_join(&broker);
    broker_cleanup(&broker);
    return 0;
}
