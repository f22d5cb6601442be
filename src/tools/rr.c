/* rr.c - midge-rr: send one MQTT 5.0 request and print its response, as mosquitto_rr does.
 *
 * Subscribes to the response topic (-e) first, so that no answer can be missed, then
 * publishes the request (-t) with Response Topic and Correlation Data properties, waits for
 * one message on the response topic and prints it with midge-sub's formatter (src/client/).
 * Same flags and exit statuses as mosquitto_rr 2.0 (27 when -W runs out).
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "client/cli.h"

#define EXIT_TIMED_OUT 27

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
    (void)sig;
    stop = 1;
}

static long long elapsed_ms(const struct timespec *start)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (now.tv_sec - start->tv_sec) * 1000LL + (now.tv_nsec - start->tv_nsec) / 1000000;
}

/* Wait for the response: the first message on the response topic (-R skips retained
 * ones). Returns the exit status. */
static int await_response(const cli_t *c, midge_client_t *cl, const struct timespec *start)
{
    while (!stop) {
        int slice = 200;
        if (c->timeout) {
            long long left = c->timeout * 1000LL - elapsed_ms(start);
            if (left <= 0) {
                if (!c->quiet)
                    fprintf(stderr, "Timed out\n");
                return EXIT_TIMED_OUT;
            }
            if (left < slice)
                slice = (int)left;
        }
        midge_message_t *m = NULL;
        int r = midge_client_receive(cl, slice, &m);
        if (r == MIDGE_ETIMEOUT)
            continue;
        if (r) {
            cli_error(c, "The connection was lost: %s", midge_strerror(r));
            return 1;
        }
        if (c->no_retained && m->retain) {
            midge_message_free(m);
            continue;
        }
        bool ok = cli_print_message(c, m);
        midge_message_free(m);
        return ok ? 0 : 1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    cli_t c;
    char *data = NULL;
    size_t len = 0;
    char corr[64];
    int rc = cli_parse(&c, CLI_RR, argc, argv);
    if (rc >= 0)
        return rc;
    if (c.format && c.format[0] == 0)
        c.format = NULL;
    if (c.format && !cli_format_ok(&c)) {
        rc = 1;
        goto out;
    }
    /* The Response Topic is -e's; mosquitto_rr refuses a second one from -D. */
    if (c.publish_props.response_topic) {
        if (!c.quiet)
            fputs("Error in PUBLISH properties: Duplicate response topic.\n", stderr);
        rc = 1;
        goto out;
    }
    c.publish_props.response_topic = c.response_topic;
    /* Correlation Data lets the requester match the answer (MQTT 5.0, 4.10); -D publish
     * correlation-data chooses it, else one unique to this process is made up. */
    if (!c.publish_props.correlation) {
        struct timespec now;
        clock_gettime(CLOCK_REALTIME, &now);
        int n = snprintf(corr, sizeof corr, "midge-rr-%ld-%lld%09ld", (long)getpid(),
                         (long long)now.tv_sec, now.tv_nsec);
        c.publish_props.correlation = (const uint8_t *)corr;
        c.publish_props.correlation_len = (size_t)n;
    }
    if (c.msg_mode == CLI_MSG_M) {
        len = strlen(c.message);
    } else if (c.msg_mode == CLI_MSG_FILE || c.msg_mode == CLI_MSG_STDIN) {
        FILE *f = c.msg_mode == CLI_MSG_FILE ? fopen(c.file, "rb") : stdin;
        data = f ? cli_read_all(f, &len) : NULL;
        if (f && f != stdin)
            fclose(f);
        if (!data) {
            if (c.msg_mode == CLI_MSG_FILE)
                cli_error(&c, "Unable to read file \"%s\".", c.file);
            else
                cli_error(&c, "Unable to read from stdin.");
            rc = 1;
            goto out;
        }
    }
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    signal(SIGPIPE, SIG_IGN);

    /* -W counts from the start, connecting included, as mosquitto_rr's alarm() does. */
    struct timespec start;
    clock_gettime(CLOCK_MONOTONIC, &start);
    midge_client_t *cl;
    rc = cli_connect(&c, &cl);
    if (rc)
        goto out;
    midge_subscription_t sub;
    memset(&sub, 0, sizeof sub);
    sub.filter = c.response_topic;
    sub.qos = c.qos;
    uint8_t code = 0;
    int r = midge_client_subscribe_wait(cl, &sub, 1, 0, 10000, &code);
    if (r) {
        cli_error(&c, "subscribe failed: %s", midge_strerror(r));
        rc = 1;
        goto done;
    }
    if (c.debug)
        printf("Subscribed (mid: 0): %u\n", code);
    if (code >= 0x80) {
        /* mosquitto_rr prints the reason alone and ends with status 0 */
        if (!c.quiet)
            fprintf(stderr, "%s\n", midge_reason_name(code));
        goto done;
    }
    const void *payload = c.msg_mode == CLI_MSG_M ? (const void *)c.message : data;
    if (c.msg_mode == CLI_MSG_NULL)
        payload = NULL, len = 0;
    uint8_t reason = 0;
    r = midge_client_publish_wait(cl, c.topics[0], payload, len, c.qos, false, &c.publish_props,
                                  10000, &reason);
    if (r == MIDGE_EREFUSED) {
        cli_error(&c, "Publish to '%s' refused: %s", c.topics[0], midge_reason_name(reason));
        rc = 1;
        goto done;
    }
    if (r) {
        cli_error(&c, "Publish failed: %s", midge_strerror(r));
        rc = 1;
        goto done;
    }
    if (c.debug)
        printf("Client %s sending PUBLISH (q%d, r0, '%s', ... (%zu bytes))\n", c.o.client_id, c.qos,
               c.topics[0], len);
    rc = await_response(&c, cl, &start);
done:
    midge_client_disconnect_wait(cl, 0, 5000);
    midge_client_free(cl);
out:
    free(data);
    cli_free(&c);
    return rc;
}
