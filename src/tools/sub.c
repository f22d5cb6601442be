/* sub.c - midge-sub: subscribe to topics and print the messages, as mosquitto_sub does.
 *
 * Same flags, output formats (-v, -N, -F with %, @ and \ sequences, %j JSON) and exit
 * statuses as mosquitto_sub 2.0 (27 when -W runs out). Protocol work is libmidge's blocking
 * API; this file only chooses what to print.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "client/cli.h"

#define EXIT_TIMED_OUT 27

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
    stop = 1;
}

/* Write s padded to width (left-aligned with '-'), cut to maxw when maxw >= 0. */
static bool filtered_out(const cli_t *c, const char *topic)
{
    for (size_t i = 0; i < c->nfilter_out; i++)
        if (midge_topic_matches(c->filter_out[i], topic))
            return true;
    return false;
}

int main(int argc, char **argv)
{
    cli_t c;
    int rc = cli_parse(&c, CLI_SUB, argc, argv);
    if (rc >= 0)
        return rc;
    if (c.format && c.format[0] == 0)
        c.format = NULL;
    if (c.format && !cli_format_ok(&c))
        return 1;
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    signal(SIGPIPE, SIG_IGN);

    midge_client_t *cl;
    rc = cli_connect(&c, &cl);
    if (rc)
        goto out;
    midge_subscription_t subs[CLI_MAX_TOPICS];
    for (size_t i = 0; i < c.ntopics; i++) {
        memset(&subs[i], 0, sizeof subs[i]);
        subs[i].filter = c.topics[i];
        subs[i].qos = c.qos;
    }
    uint8_t codes[CLI_MAX_TOPICS];
    int r = midge_client_subscribe_wait(cl, subs, c.ntopics, 0, 10000, codes);
    if (r) {
        cli_error(&c, "subscribe failed: %s", midge_strerror(r));
        rc = 1;
        goto done;
    }
    for (size_t i = 0; i < c.ntopics; i++) {
        if (c.debug)
            printf("Subscribed (mid: 0): %u\n", codes[i]);
        if (codes[i] >= 0x80 && !c.quiet)
            fprintf(stderr, "Error: Subscribe to '%s' refused: %s\n", c.topics[i],
                    c.o.version == MIDGE_MQTT_V5 ? midge_reason_name(codes[i]) : "Failure");
    }
    if (c.nunsub)
        midge_client_unsubscribe_wait(cl, c.unsub, c.nunsub, 10000, NULL);
    if (c.exit_after_sub)
        goto done;

    struct timespec start;
    clock_gettime(CLOCK_MONOTONIC, &start);
    long printed = 0;
    while (!stop) {
        int slice = 200;
        if (c.timeout) {
            struct timespec now;
            clock_gettime(CLOCK_MONOTONIC, &now);
            long long left = c.timeout * 1000LL - ((now.tv_sec - start.tv_sec) * 1000LL +
                                                   (now.tv_nsec - start.tv_nsec) / 1000000);
            if (left <= 0) {
                if (!c.quiet)
                    fprintf(stderr, "Timed out\n");
                rc = EXIT_TIMED_OUT;
                break;
            }
            if (left < slice)
                slice = (int)left;
        }
        midge_message_t *m = NULL;
        r = midge_client_receive(cl, slice, &m);
        if (r == MIDGE_ETIMEOUT)
            continue;
        if (r) {
            cli_error(&c, "The connection was lost: %s", midge_strerror(r));
            rc = 1;
            break;
        }
        bool skip = filtered_out(&c, m->topic);
        if (!skip && c.remove_retained && m->retain)
            midge_client_publish(cl, m->topic, NULL, 0, 1, true, NULL, NULL);
        if (c.retained_only && !m->retain) {
            midge_message_free(m);
            break;
        }
        if (!skip && !(c.no_retained && m->retain)) {
            bool ok = cli_print_message(&c, m);
            if (!ok) {
                midge_message_free(m);
                rc = 1;
                break;
            }
            printed++;
        }
        midge_message_free(m);
        if (c.count && printed >= c.count)
            break;
    }
done:
    midge_client_disconnect_wait(cl, 0, 5000);
    midge_client_free(cl);
out:
    cli_free(&c);
    return rc;
}
