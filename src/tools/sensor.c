/* sensor.c - midge-sensor: a temperature and humidity device that publishes its readings.
 *
 * Each device (one, or --devices N in one process) has its own MQTT connection and samples
 * on schedule: the simulated DHT22 (src/device/sim.c) or a Linux IIO directory (--iio). A
 * sample goes into the device's ring buffer (src/device/ring.c) and from there to libmidge
 * while connected, so readings taken while the broker is away are sent later, in order,
 * with their original timestamps. Birth ("online", retained) after every accepted
 * connection, will and clean exit "offline". One thread drives every connection with one
 * poll(); connection and TLS/WebSocket flags are src/client/cli.c's, shared with midge-pub.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "client/cli.h"
#include "client/sock.h"
#include "device/iio.h"
#include "device/presence.h"
#include "device/ring.h"
#include "device/sample.h"
#include "device/sim.h"

#define MAX_DEVICES 1000
#define TOPIC_MAX 512
#define INFLIGHT_WINDOW 64         /* samples handed to libmidge per device and not yet acked */
#define DRAIN_AFTER_COUNT_MS 30000 /* -C done: how long buffered samples may still wait */
#define SHUTDOWN_WAIT_MS 3000      /* clean exit: wait for the "offline" PUBACK this long */

static volatile sig_atomic_t stop_requested;

static void on_signal(int sig)
{
    stop_requested = 1;
}

/* midge-sensor's own flags; the connection flags live in cli_t. */
typedef struct sensor_opts {
    long devices;
    double interval_s;
    const char *prefix; /* NULL: "sensors" (or -L's path) */
    bool simulate;
    bool seeded;
    uint64_t seed;
    const char *iio_dir;
    long buffer;
} sensor_opts_t;

typedef struct device {
    char id[SENSOR_ID_MAX];
    char topic_reading[TOPIC_MAX], topic_error[TOPIC_MAX], topic_status[TOPIC_MAX];
    midge_client_t *cl;
    sensor_sim_t sim;
    sensor_ring_t ring;
    sensor_sample_t *slots; /* the ring's storage */
    uint32_t seq;           /* samples taken */
    bool refused;           /* a reconnect was refused: libmidge gives up, and so do we */
    const cli_t *cli;
} device_t;

typedef struct sensor {
    cli_t cli;
    sensor_opts_t o;
    device_t *dev;
    size_t ndev;
    int64_t start_mono_ms;
    struct pollfd *pfd; /* one per connected device */
    long *slot;         /* per device: its index in pfd, -1 when it has no socket */
} sensor_t;

/* ---- time ------------------------------------------------------------------------- */

static int64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Seconds since local midnight at Unix time ms: the room follows the local day. */
static float local_time_of_day(int64_t ms)
{
    time_t secs = (time_t)(ms / 1000);
    struct tm tm;
    localtime_r(&secs, &tm);
    return (float)(tm.tm_hour * 3600 + tm.tm_min * 60 + tm.tm_sec) + (float)(ms % 1000) / 1000;
}

/* ---- options ---------------------------------------------------------------------- */

static void usage(void)
{
    printf(
        "Usage: midge-sensor [-h host] [-p port] [-L URL] [-u username [-P password]]\n"
        "                    [-i id] [--devices N] [--interval seconds] [--topic-prefix P]\n"
        "                    [-q qos] [-r] [--simulate [--seed N] | --iio DIR] [-C count]\n"
        "                    [--buffer N] [-V 311|5] [-k keepalive] [-d] [--quiet]\n"
        "                    [--cafile file | --capath dir] [--cert file --key file]\n"
        "                    [--tls-version version] [--insecure] [--ws-path path]\n"
        " Publishes temperature and humidity readings as JSON on P/<id>/reading, failed\n"
        " reads on P/<id>/error, and online/offline (retained, and the will) on P/<id>/status.\n"
        " -i id            device id (default sim-<host name>); with --devices N: id-1 .. id-N\n"
        " --devices N      N devices in one process, each its own connection (default 1)\n"
        " --interval S     seconds between readings, fractions allowed (default 5)\n"
        " --topic-prefix P topic prefix (default sensors; also the path of -L URL)\n"
        " -q qos, -r       QoS of the readings (default 1); retain them (default not)\n"
        " --simulate       a simulated DHT22 (default); --seed N makes it repeatable\n"
        " --iio DIR        read DIR/in_temp_input and DIR/in_humidityrelative_input (Linux IIO)\n"
        " -C count         stop after count samples per device (default: until SIGINT/SIGTERM)\n"
        " --buffer N       samples kept while offline (default 1000; the oldest are dropped)\n"
        " Connection and TLS/WebSocket flags as midge-pub (see midge-pub --help).\n");
}

static const char *const sensor_with_value[] = {
    "--devices", "--interval", "--topic-prefix", "--seed", "--iio", "--buffer", NULL};

static int sensor_option(cli_t *c, const char *a, const char *v, void *ud)
{
    sensor_opts_t *o = ud;
    if (!strcmp(a, "--help")) {
        usage();
        return 0;
    } else if (!strcmp(a, "--devices")) {
        if (!cli_parse_long(v, 1, MAX_DEVICES, &o->devices)) {
            cli_error(c, "--devices '%s': a number of devices from 1 to %d expected.", v,
                      MAX_DEVICES);
            return 1;
        }
    } else if (!strcmp(a, "--interval")) {
        char *end;
        errno = 0;
        double d = strtod(v, &end);
        if (errno || end == v || *end || !(d >= 0.001 && d <= 86400)) {
            cli_error(c, "--interval '%s': seconds from 0.001 to 86400 expected.", v);
            return 1;
        }
        o->interval_s = d;
    } else if (!strcmp(a, "--topic-prefix")) {
        if (!midge_topic_name_valid(v)) {
            cli_error(c, "--topic-prefix '%s': not a valid topic (empty, or '+' or '#' in it).", v);
            return 1;
        }
        o->prefix = v;
    } else if (!strcmp(a, "--simulate")) {
        o->simulate = true;
    } else if (!strcmp(a, "--seed")) {
        char *end;
        errno = 0;
        unsigned long long s = strtoull(v, &end, 10);
        if (errno || end == v || *end || v[0] == '-') {
            cli_error(c, "--seed '%s': a non-negative integer expected.", v);
            return 1;
        }
        o->seed = (uint64_t)s;
        o->seeded = true;
    } else if (!strcmp(a, "--iio")) {
        if (!*v) {
            cli_error(c, "--iio: an empty directory name.");
            return 1;
        }
        o->iio_dir = v;
    } else if (!strcmp(a, "--buffer")) {
        if (!cli_parse_long(v, 1, 1000000, &o->buffer)) {
            cli_error(c, "--buffer '%s': a number of readings from 1 to 1000000 expected.", v);
            return 1;
        }
    } else {
        return CLI_EXTRA_NOT_MINE;
    }
    return CLI_EXTRA_HANDLED;
}

/* Checks across flags, once all are read. Returns 0 or 1 (error printed). */
static int check_options(sensor_t *s)
{
    cli_t *c = &s->cli;
    sensor_opts_t *o = &s->o;
    if (o->iio_dir && o->simulate) {
        cli_error(c, "--simulate and --iio exclude each other: one source per process.");
        return 1;
    }
    if (o->iio_dir && o->devices > 1) {
        cli_error(c, "--iio reads one sensor: --devices must be 1.");
        return 1;
    }
    if (o->iio_dir && o->seeded) {
        cli_error(c, "--seed applies to --simulate, not to --iio.");
        return 1;
    }
    if (!o->prefix)
        o->prefix = c->ntopics ? c->topics[0] : "sensors";
    return 0;
}

/* The device ids: -i ID or sim-<short host name>; ID-1 .. ID-N with --devices N > 1. */
static int make_ids(sensor_t *s)
{
    cli_t *c = &s->cli;
    char base[SENSOR_ID_MAX];
    if (c->o.client_id) {
        snprintf(base, sizeof base, "%s", c->o.client_id);
        if (strlen(c->o.client_id) >= sizeof base || !sensor_id_valid(base)) {
            cli_error(c,
                      "-i '%s': a device id is 1 to %d bytes without '/', '+', '#' or "
                      "control characters.",
                      c->o.client_id, SENSOR_ID_MAX - 1);
            return 1;
        }
    } else {
        char host[256] = "";
        if (gethostname(host, sizeof host) != 0 || !host[0])
            snprintf(host, sizeof host, "localhost");
        host[sizeof host - 1] = 0;
        host[strcspn(host, ".")] = 0;
        snprintf(base, sizeof base, "sim-%.40s", host);
        if (!sensor_id_valid(base))
            snprintf(base, sizeof base, "sim-%ld", (long)getpid());
    }
    for (size_t i = 0; i < s->ndev; i++) {
        device_t *d = &s->dev[i];
        int n = s->ndev > 1 ? snprintf(d->id, sizeof d->id, "%s-%zu", base, i + 1)
                            : snprintf(d->id, sizeof d->id, "%s", base);
        if (n < 0 || (size_t)n >= sizeof d->id) {
            cli_error(c, "-i '%s': too long for %zu devices.", base, s->ndev);
            return 1;
        }
        if (!sensor_topic(d->topic_reading, TOPIC_MAX, s->o.prefix, d->id, "reading") ||
            !sensor_topic(d->topic_error, TOPIC_MAX, s->o.prefix, d->id, "error") ||
            !sensor_topic(d->topic_status, TOPIC_MAX, s->o.prefix, d->id, "status")) {
            cli_error(c, "--topic-prefix '%s': too long.", s->o.prefix);
            return 1;
        }
    }
    return 0;
}

/* ---- sampling --------------------------------------------------------------------- */

/* Read a whole small sysfs file into buf. Returns its length, or -1 with err set to
 * "<path>: <reason>". */
static long read_small_file(const char *path, char *buf, size_t cap, char *err, size_t errcap)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    size_t n = 0;
    if (fd >= 0) {
        while (n < cap) {
            ssize_t r = read(fd, buf + n, cap - n);
            if (r < 0 && errno == EINTR)
                continue;
            if (r <= 0) {
                if (r < 0)
                    n = (size_t)-1;
                break;
            }
            n += (size_t)r;
        }
    }
    if (fd < 0 || n == (size_t)-1) {
        int e = errno;
        size_t pn = strlen(path);
        /* keep the end of a long path: the file's name is what tells */
        snprintf(err, errcap, "%s%s: %s", pn > 150 ? "..." : "", pn > 150 ? path + pn - 147 : path,
                 strerror(e));
        if (fd >= 0)
            close(fd);
        return -1;
    }
    close(fd);
    return (long)n;
}

static void sample_iio(const sensor_t *s, int64_t ts, uint32_t seq, sensor_sample_t *out)
{
    char tpath[4096], hpath[4096], tbuf[64], hbuf[64], err[SENSOR_ERROR_MAX];
    snprintf(tpath, sizeof tpath, "%s/%s", s->o.iio_dir, SENSOR_IIO_TEMP_FILE);
    snprintf(hpath, sizeof hpath, "%s/%s", s->o.iio_dir, SENSOR_IIO_HUM_FILE);
    long tn = read_small_file(tpath, tbuf, sizeof tbuf, err, sizeof err);
    long hn = tn < 0 ? -1 : read_small_file(hpath, hbuf, sizeof hbuf, err, sizeof err);
    if (tn < 0 || hn < 0) {
        sensor_sample_set_error(out, ts, seq, err);
        return;
    }
    sensor_iio_sample(tpath, tbuf, (size_t)tn, hpath, hbuf, (size_t)hn, ts, seq, out);
}

/* Take the device's next sample into its ring. */
static void take_sample(sensor_t *s, device_t *d)
{
    sensor_sample_t smp;
    int64_t ts = wall_ms();
    uint32_t seq = ++d->seq;
    if (s->o.iio_dir) {
        sample_iio(s, ts, seq, &smp);
    } else {
        /* Model time: nominal, from the schedule, so a seed repeats exactly; the day
         * is the local one, or starts at midnight with --seed. */
        double elapsed = (double)(seq - 1) * s->o.interval_s;
        float tod = s->o.seeded ? (float)fmod(elapsed, 86400.0) /* from midnight */
                                : local_time_of_day(ts);
        sensor_sim_read(&d->sim, tod, seq > 1 ? (float)s->o.interval_s : 0.0f, ts, seq, &smp);
    }
    sensor_ring_push(&d->ring, &smp);
    if (s->cli.debug)
        printf("%s: sample %" PRIu32 "%s%s\n", d->id, seq, smp.error[0] ? ": " : "", smp.error);
}

/* Hand buffered samples to libmidge, oldest first, while connected and the window has
 * room. A sample leaves the ring only once libmidge has taken it. */
static void drain(sensor_t *s, device_t *d)
{
    const cli_t *c = &s->cli;
    const sensor_sample_t *smp;
    while (midge_client_is_connected(d->cl) && midge_client_pending(d->cl) < INFLIGHT_WINDOW &&
           (smp = sensor_ring_peek(&d->ring))) {
        char payload[SENSOR_JSON_MAX];
        size_t n = sensor_sample_json(payload, sizeof payload, d->id, smp);
        const char *topic = smp->error[0] ? d->topic_error : d->topic_reading;
        int rc = n ? midge_client_publish(d->cl, topic, payload, n, c->qos, c->retain,
                                          c->has_props ? &c->publish_props : NULL, NULL)
                   : MIDGE_EINVAL;
        if (rc == MIDGE_EFULL)
            break;
        if (rc) /* cannot happen with our own topics and JSON; say it and move on */
            cli_error(c, "%s: sample %" PRIu32 " not published: %s", d->id, smp->seq,
                      midge_strerror(rc));
        sensor_ring_pop(&d->ring);
    }
}

/* ---- connections ------------------------------------------------------------------ */

/* Every accepted connection announces the device again: after a lost connection the
 * broker has published the will, so "offline" is what the retained status says. */
static void on_connect(midge_client_t *cl, void *ud, uint8_t reason, bool session_present,
                       const midge_props_t *props)
{
    device_t *d = ud;
    if (reason != 0) {
        d->refused = true;
        cli_error(d->cli, "%s: connection refused: %s", d->id,
                  d->cli->o.version == MIDGE_MQTT_V5 ? midge_reason_name(reason)
                                                     : midge_connack_v3_name(reason));
        return;
    }
    if (d->cli->debug)
        printf("%s: connected\n", d->id);
    int rc = midge_client_publish(cl, d->topic_status, SENSOR_STATUS_ONLINE,
                                  sizeof SENSOR_STATUS_ONLINE - 1, 1, true, NULL, NULL);
    if (rc)
        cli_error(d->cli, "%s: could not publish its status: %s", d->id, midge_strerror(rc));
}

static void on_disconnect(midge_client_t *cl, void *ud, int reason)
{
    device_t *d = ud;
    if (d->cli->debug)
        printf("%s: disconnected (%d)\n", d->id, reason);
}

static int connect_device(sensor_t *s, device_t *d)
{
    midge_options_t o = s->cli.o;
    o.client_id = d->id;
    sensor_presence_will(&o, d->topic_status);
    o.will_props = &s->cli.will_props; /* -D will */
    o.reconnect = true;
    o.reconnect_min_ms = 500;
    o.reconnect_max_ms = 10000;
    /* the window, the status messages and what a lost connection puts back */
    o.max_queued = INFLIGHT_WINDOW + 16;
    d->cli = &s->cli;
    midge_client_t *cl;
    int rc = cli_connect_with(&s->cli, &o, &cl);
    if (rc)
        return rc;
    /* connect_wait ran without our callbacks: announce this first connection here */
    d->cl = cl;
    midge_callbacks_t cb = {.on_connect = on_connect, .on_disconnect = on_disconnect};
    midge_client_set_callbacks(cl, &cb, d);
    on_connect(cl, d, 0, false, NULL);
    return 0;
}

/* Clean exit of one device: what is buffered, then retained "offline", then DISCONNECT
 * (so the broker drops the will). Bounded by SHUTDOWN_WAIT_MS. */
static void shutdown_device(sensor_t *s, device_t *d)
{
    if (!d->cl || !midge_client_is_connected(d->cl))
        return;
    int64_t until = sock_now_ms() + SHUTDOWN_WAIT_MS;
    while (sensor_ring_peek(&d->ring) && midge_client_is_connected(d->cl) &&
           sock_now_ms() < until) {
        drain(s, d);
        midge_client_step(d->cl, 50);
    }
    int left = (int)(until - sock_now_ms());
    int rc = midge_client_publish_wait(d->cl, d->topic_status, SENSOR_STATUS_OFFLINE,
                                       sizeof SENSOR_STATUS_OFFLINE - 1, 1, true, NULL,
                                       left > 100 ? left : 100, NULL);
    if (rc)
        cli_error(&s->cli, "%s: could not publish its status: %s", d->id, midge_strerror(rc));
    midge_client_disconnect_wait(d->cl, 0, 1000);
}

/* ---- the loop --------------------------------------------------------------------- */

/* Monotonic time at which the device's next sample is due (the schedule does not drift:
 * sample k is due at start + k * interval). */
static int64_t due_ms(const sensor_t *s, const device_t *d)
{
    return s->start_mono_ms + (int64_t)((double)d->seq * s->o.interval_s * 1000.0);
}

static bool sampling_done(const sensor_t *s, const device_t *d)
{
    return s->cli.count && d->seq >= (uint64_t)s->cli.count;
}

/* One poll over every connection, then the reads and writes of those that are ready and
 * every client's timers (keepalive, reconnect, input a TLS or WebSocket layer holds). */
static int poll_devices(sensor_t *s, int timeout_ms)
{
    nfds_t n = 0;
    for (size_t i = 0; i < s->ndev; i++) {
        device_t *d = &s->dev[i];
        int fd = midge_client_fd(d->cl);
        int t = midge_client_next_timeout_ms(d->cl);
        if (t >= 0 && t < timeout_ms)
            timeout_ms = t;
        s->slot[i] = fd < 0 ? -1 : (long)n;
        if (fd < 0)
            continue;
        s->pfd[n].fd = fd;
        s->pfd[n].events = (short)(POLLIN | (midge_client_want_write(d->cl) ? POLLOUT : 0));
        s->pfd[n].revents = 0;
        n++;
    }
    if (poll(s->pfd, n, timeout_ms) < 0 && errno != EINTR) {
        cli_error(&s->cli, "poll: %s", strerror(errno));
        return 1;
    }
    for (size_t i = 0; i < s->ndev; i++) {
        midge_client_t *cl = s->dev[i].cl;
        short ev = s->slot[i] >= 0 ? s->pfd[s->slot[i]].revents : 0;
        /* A lost connection is not an error here: libmidge reconnects with backoff. */
        int rc = 0;
        if (ev & (POLLIN | POLLERR | POLLHUP))
            rc = midge_client_read(cl);
        if (!rc && midge_client_want_write(cl))
            rc = midge_client_write(cl);
        if (!rc)
            rc = midge_client_misc(cl);
        if (rc && s->cli.debug)
            printf("%s: %s\n", s->dev[i].id, midge_strerror(rc));
    }
    return 0;
}

/* Sample on schedule and publish until a signal, or until -C samples of every device are
 * delivered. Returns the exit status. */
static int run(sensor_t *s)
{
    int64_t drain_until = -1;
    s->start_mono_ms = sock_now_ms();
    while (!stop_requested) {
        int64_t now = sock_now_ms(), next = now + 1000;
        bool all_sampled = true, all_sent = true;
        for (size_t i = 0; i < s->ndev; i++) {
            device_t *d = &s->dev[i];
            if (!sampling_done(s, d)) {
                if (now >= due_ms(s, d))
                    take_sample(s, d);
                if (!sampling_done(s, d)) {
                    all_sampled = false;
                    if (due_ms(s, d) < next)
                        next = due_ms(s, d);
                }
            }
            if (d->refused)
                return 1; /* said by on_connect */
            drain(s, d);
            if (sensor_ring_peek(&d->ring) || midge_client_pending(d->cl))
                all_sent = false;
        }
        if (all_sampled && all_sent)
            return 0;
        if (all_sampled && drain_until < 0)
            drain_until = now + DRAIN_AFTER_COUNT_MS;
        if (drain_until >= 0 && now >= drain_until) {
            size_t left = 0;
            for (size_t i = 0; i < s->ndev; i++)
                left += s->dev[i].ring.count + midge_client_pending(s->dev[i].cl);
            cli_error(&s->cli, "%zu samples not delivered within %d s of the last one.", left,
                      DRAIN_AFTER_COUNT_MS / 1000);
            return 1;
        }
        int timeout = next <= now ? 0 : (int)(next - now);
        if (poll_devices(s, timeout))
            return 1;
    }
    return 0;
}

static void report_dropped(const sensor_t *s)
{
    for (size_t i = 0; i < s->ndev; i++)
        if (s->dev[i].ring.dropped && !s->cli.quiet)
            fprintf(stderr,
                    "midge-sensor: %s: %" PRIu64 " samples dropped while offline (--buffer %ld)\n",
                    s->dev[i].id, s->dev[i].ring.dropped, s->o.buffer);
}

static uint64_t random_seed(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return ((uint64_t)ts.tv_sec * 1000000007ULL) ^ (uint64_t)ts.tv_nsec ^
           ((uint64_t)getpid() << 32);
}

int main(int argc, char **argv)
{
    static sensor_t s; /* large (cli_t): not on the stack */
    s.o = (sensor_opts_t){.devices = 1, .interval_s = 5.0, .buffer = 1000};
    cli_extra_t extra = {sensor_with_value, sensor_option, &s.o};
    int rc = cli_parse_with(&s.cli, CLI_SENSOR, &extra, argc, argv);
    if (rc >= 0)
        return rc;
    rc = 1;
    if (check_options(&s))
        goto out;
    s.ndev = (size_t)s.o.devices;
    s.dev = calloc(s.ndev, sizeof *s.dev);
    s.pfd = calloc(s.ndev, sizeof *s.pfd);
    s.slot = calloc(s.ndev, sizeof *s.slot);
    if (!s.dev || !s.pfd || !s.slot) {
        cli_error(&s.cli, "out of memory for %zu devices.", s.ndev);
        goto out;
    }
    if (make_ids(&s))
        goto out;
    uint64_t seed = s.o.seeded ? s.o.seed : random_seed();
    for (size_t i = 0; i < s.ndev; i++) {
        device_t *d = &s.dev[i];
        d->slots = calloc((size_t)s.o.buffer, sizeof *d->slots);
        if (!d->slots) {
            cli_error(&s.cli, "out of memory for --buffer %ld.", s.o.buffer);
            goto out;
        }
        sensor_ring_init(&d->ring, d->slots, (size_t)s.o.buffer);
        /* device i's own stream: seeds N and N+1 must not share devices */
        sensor_sim_init(&d->sim, seed ^ ((uint64_t)i * 0x9E3779B97F4A7C15ULL));
    }
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    signal(SIGPIPE, SIG_IGN);
    for (size_t i = 0; i < s.ndev; i++) {
        rc = connect_device(&s, &s.dev[i]);
        if (rc)
            goto out;
    }
    rc = run(&s);
    for (size_t i = 0; i < s.ndev; i++)
        shutdown_device(&s, &s.dev[i]);
    report_dropped(&s);
out:
    for (size_t i = 0; s.dev && i < s.ndev; i++) {
        midge_client_free(s.dev[i].cl);
        free(s.dev[i].slots);
    }
    free(s.dev);
    free(s.pfd);
    free(s.slot);
    cli_free(&s.cli);
    return rc;
}
