/* pub.c - midge-pub: publish one message, a file, stdin or stdin line by line, as
 * mosquitto_pub does.
 *
 * Same flags and exit statuses as mosquitto_pub 2.0. Each PUBLISH waits for its
 * acknowledgement (QoS 1/2) through libmidge's blocking API before the clean DISCONNECT.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "client/cli.h"

static int publish(const cli_t *c, midge_client_t *cl, const void *p, size_t n)
{
    uint8_t reason = 0;
    int r = midge_client_publish_wait(cl, c->topics[0], p, n, c->qos, c->retain, &c->publish_props,
                                      10000, &reason);
    if (c->debug && !r)
        printf("Client %s sending PUBLISH (q%d, r%d, '%s', ... (%zu bytes))\n", c->o.client_id,
               c->qos, c->retain, c->topics[0], n);
    if (r == MIDGE_EREFUSED) {
        cli_error(c, "Publish to '%s' refused: %s", c->topics[0], midge_reason_name(reason));
        return 1;
    }
    if (r) {
        cli_error(c, "Publish failed: %s", midge_strerror(r));
        return 1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    cli_t c;
    int rc = cli_parse(&c, CLI_PUB, argc, argv);
    if (rc >= 0)
        return rc;
    char *data = NULL;
    size_t len = 0;
    if (c.msg_mode == CLI_MSG_M) {
        len = strlen(c.message);
    } else if (c.msg_mode == CLI_MSG_FILE) {
        FILE *f = fopen(c.file, "rb");
        data = f ? cli_read_all(f, &len) : NULL;
        if (f)
            fclose(f);
        if (!data) {
            cli_error(&c, "Unable to read file \"%s\".", c.file);
            rc = 1;
            goto out;
        }
    } else if (c.msg_mode == CLI_MSG_STDIN) {
        data = cli_read_all(stdin, &len);
        if (!data) {
            cli_error(&c, "Unable to read from stdin.");
            rc = 1;
            goto out;
        }
    }

    midge_client_t *cl;
    rc = cli_connect(&c, &cl);
    if (rc)
        goto out;
    if (c.msg_mode == CLI_MSG_LINES) {
        char *line = NULL;
        size_t cap = 0;
        ssize_t n;
        while (!rc && (n = getline(&line, &cap, stdin)) >= 0) {
            if (n > 0 && line[n - 1] == '\n')
                n--;
            rc = publish(&c, cl, line, (size_t)n);
        }
        free(line);
    } else {
        const void *p = c.msg_mode == CLI_MSG_M ? c.message : data;
        for (long i = 0; i < c.repeat && !rc; i++) {
            if (i && c.repeat_delay > 0) {
                struct timespec d = {(time_t)c.repeat_delay,
                                     (long)((c.repeat_delay - (time_t)c.repeat_delay) * 1e9)};
                nanosleep(&d, NULL);
            }
            rc = publish(&c, cl, c.msg_mode == CLI_MSG_NULL ? NULL : p,
                         c.msg_mode == CLI_MSG_NULL ? 0 : len);
        }
    }
    midge_client_disconnect_wait(cl, 0, 5000);
    midge_client_free(cl);
out:
    free(data);
    cli_free(&c);
    return rc;
}
