/* main.c - the `midge` broker program: configuration, signals, start and stop.
 *
 * Start-up order: configuration (--test-config stops there), log file, listeners (as root
 * when started as root, for ports below 1024), background, pid_file, then the switch to
 * `user`, then the I/O threads.
 *
 * SIGINT and SIGTERM stop the broker cleanly: the I/O threads finish their turn, every
 * connection is closed and every structure freed. Signals are taken synchronously by the
 * main thread (sigwait), so no handler runs inside an I/O thread.
 */
#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "broker/broker.h"
#include "broker/log.h"
#include "conf/config.h"

/* The directory midge started in: relative pid_file and log_dest file paths name files
 * there, also after -d has moved the process to "/" (removing the pid file, reopening the
 * log on SIGHUP). */
static char start_dir[CONFIG_PATH_MAX];

/* path made absolute against start_dir; -1 with errno set when that fails. */
static int absolute_path(const char *path, char *out, size_t outlen)
{
    int n;
    if (path[0] == '/')
        n = snprintf(out, outlen, "%s", path);
    else if (start_dir[0])
        n = snprintf(out, outlen, "%s/%s", start_dir, path);
    else {
        errno = ENOENT; /* getcwd failed at start-up: no directory to be relative to */
        return -1;
    }
    if (n < 0 || (size_t)n >= outlen) {
        errno = ENAMETOOLONG;
        return -1;
    }
    return 0;
}

static int write_pid_file(const char *path)
{
    FILE *f = fopen(path, "w");
    if (!f) {
        log_msg(LOG_ERR, "Error: cannot write pid_file %s: %s", path, strerror(errno));
        return -1;
    }
    fprintf(f, "%ld\n", (long)getpid());
    if (fclose(f) != 0) {
        log_msg(LOG_ERR, "Error: cannot write pid_file %s: %s", path, strerror(errno));
        return -1;
    }
    return 0;
}

/* `user`: when started as root, become that user once the listeners and files are open
 * (Mosquitto's rule); group first, while there is still the right to change it. */
static int drop_privileges(const char *user)
{
    if (!user[0] || geteuid() != 0)
        return 0;
    errno = 0;
    struct passwd *pw = getpwnam(user);
    if (!pw) {
        log_msg(LOG_ERR, "Error: user '%s' (option 'user') does not exist%s%s", user,
                errno ? ": " : "", errno ? strerror(errno) : "");
        return -1;
    }
    if (setgid(pw->pw_gid) < 0 || initgroups(user, pw->pw_gid) < 0 || setuid(pw->pw_uid) < 0) {
        log_msg(LOG_ERR, "Error: cannot become user '%s': %s", user, strerror(errno));
        return -1;
    }
    return 0;
}

/* Logging as the configuration says: Mosquitto's log types onto the log's levels (-v is
 * `log_type all`), destinations, timestamps, the log file. */
static int apply_logging(const config_t *cfg)
{
    unsigned types = cfg->verbose ? CONFIG_LOG_ALL : cfg->log_types;
    unsigned mask = ((types & CONFIG_LOG_ERROR) ? 1u << LOG_ERR : 0) |
                    ((types & CONFIG_LOG_WARNING) ? 1u << LOG_WARN : 0) |
                    ((types & CONFIG_LOG_NOTICE) ? 1u << LOG_NOTICE : 0) |
                    ((types & (CONFIG_LOG_INFORMATION | CONFIG_LOG_SUBSCRIBE |
                               CONFIG_LOG_UNSUBSCRIBE)) ? 1u << LOG_INFO : 0) |
                    ((types & CONFIG_LOG_DEBUG) ? 1u << LOG_DEBUG : 0);
    log_configure(mask, cfg->log_dest & CONFIG_LOG_DEST_STDOUT,
                  cfg->log_dest & CONFIG_LOG_DEST_STDERR, cfg->log_timestamp);
    char path[CONFIG_PATH_MAX + 512] = "";
    if (((cfg->log_dest & CONFIG_LOG_DEST_FILE) &&
         absolute_path(cfg->log_file, path, sizeof(path)) < 0) ||
        log_set_file(path[0] ? path : NULL) < 0) {
        fprintf(stderr, "midge: log_dest file %s: cannot open: %s\n", cfg->log_file,
                strerror(errno));
        return -1;
    }
    return 0;
}

/* SIGHUP: what can change without restarting. Certificates, password and ACL files are
 * read again from the same paths; logging follows the file as it is now (a file that no
 * longer parses keeps the old logging, and says why). The log file is reopened, for
 * rotation. */
static void reload(broker_t *b, int argc, char **argv)
{
    static config_t fresh;
    char err[512];
    config_init(&fresh);
    if (config_parse_args(&fresh, argc, argv, err, sizeof(err)) < 0)
        log_msg(LOG_ERR, "SIGHUP: %s; logging unchanged", err);
    else
        apply_logging(&fresh);
    listeners_reload(b);
}

int main(int argc, char **argv)
{
    static config_t cfg;
    static broker_t broker;
    char err[512];
    config_init(&cfg);
    if (!getcwd(start_dir, sizeof(start_dir)))
        start_dir[0] = '\0';
    int r = config_parse_args(&cfg, argc, argv, err, sizeof(err));
    if (r == 1)
        return 0;
    if (r < 0) {
        fprintf(stderr, "midge: %s\n", err);
        return 1;
    }
    if (cfg.test_config) {
        /* Certificates, keys, password and ACL files are loaded too: a file that parses
         * but names a broken certificate is not OK. */
        log_configure(1u << LOG_ERR, false, true, false);
        if (listeners_check(&cfg) < 0) {
            fprintf(stderr, "%s: configuration has errors (see above)\n", cfg.config_file);
            return 1;
        }
        printf("%s: configuration OK\n", cfg.config_file);
        return 0;
    }
    if (apply_logging(&cfg) < 0)
        return 1;
    char pid_path[CONFIG_PATH_MAX + 512] = "";
    if (cfg.pid_file[0] && absolute_path(cfg.pid_file, pid_path, sizeof(pid_path)) < 0) {
        fprintf(stderr, "midge: pid_file %s: path too long\n", cfg.pid_file);
        return 1;
    }

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
    /* nochdir: relative paths in the file (certificates, password and ACL files, http_dir)
     * must still name the same files when SIGHUP reloads them. */
    if (cfg.daemon && daemon(1, 0) < 0) {
        perror("midge: daemon");
        broker_cleanup(&broker);
        return 1;
    }
    if ((pid_path[0] && write_pid_file(pid_path) < 0) || drop_privileges(cfg.user) < 0) {
        if (pid_path[0])
            unlink(pid_path);
        broker_cleanup(&broker);
        return 1;
    }
    if (broker_start(&broker) < 0) {
        if (pid_path[0])
            unlink(pid_path);
        broker_cleanup(&broker);
        return 1;
    }
    for (;;) {
        int sig = 0;
        if (sigwait(&set, &sig) != 0)
            continue;
        if (sig == SIGHUP) {
            log_msg(LOG_NOTICE, "SIGHUP: reloading certificates, password and ACL files");
            reload(&broker, argc, argv);
            continue;
        }
        log_msg(LOG_NOTICE, "midge version %s terminating (signal %d)", MIDGE_VERSION, sig);
        break;
    }
    broker_stop(&broker);
    broker_join(&broker);
    broker_cleanup(&broker);
    if (pid_path[0] && unlink(pid_path) < 0)
        log_msg(LOG_WARN, "Warning: cannot remove pid_file %s: %s", pid_path, strerror(errno));
    log_set_file(NULL);
    return 0;
}
