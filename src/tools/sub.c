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

/* raw: %J, the payload unquoted (it must itself be JSON; not checked here). */
static void put_json(const cli_t *c, const midge_message_t *m, const struct timespec *ts, bool raw)
{
    /* {"tst":"2020-05-06T22:12:00.000000Z+0100",...} as mosquitto_sub 2.0 prints it */
    fputs("{\"tst\":\"", stdout);
    put_time(ts, "%Y-%m-%dT%H:%M:%S");
    printf(".%06ldZ", ts->tv_nsec / 1000);
    put_time(ts, "%z");
    fputs("\",\"topic\":", stdout);
    put_json_str(m->topic, m->topic_len);
    printf(",\"qos\":%d,\"retain\":%d,\"payloadlen\":%zu", m->qos, m->retain, m->payload_len);
    if (m->qos)
        printf(",\"mid\":%u", m->packet_id);
    const midge_props_t *p = &m->props;
    if (p->user_count || p->content_type || p->response_topic || p->correlation ||
        p->has_message_expiry || p->payload_format >= 0 || p->sub_id_count) {
        fputs(",\"properties\":{", stdout);
        bool first = true;
#define SEP() (first ? (void)(first = false) : (void)putchar(','))
        if (p->user_count) {
            SEP();
            fputs("\"user-properties\":{", stdout);
            for (size_t i = 0; i < p->user_count; i++) {
                if (i)
                    putchar(',');
                put_json_str(p->user[i].name, strlen(p->user[i].name));
                putchar(':');
                put_json_str(p->user[i].value, strlen(p->user[i].value));
            }
            putchar('}');
        }
        if (p->payload_format >= 0) {
            SEP();
            printf("\"payload-format-indicator\":%d", p->payload_format);
        }
        if (p->has_message_expiry) {
            SEP();
            printf("\"message-expiry-interval\":%u", p->message_expiry);
        }
        if (p->content_type) {
            SEP();
            fputs("\"content-type\":", stdout);
            put_json_str(p->content_type, strlen(p->content_type));
        }
        if (p->response_topic) {
            SEP();
            fputs("\"response-topic\":", stdout);
            put_json_str(p->response_topic, strlen(p->response_topic));
        }
        if (p->correlation) {
            SEP();
            fputs("\"correlation-data\":", stdout);
            put_json_str((const char *)p->correlation, p->correlation_len);
        }
        if (p->sub_id_count) {
            SEP();
            printf("\"subscription-identifier\":%u", p->sub_ids[0]);
        }
#undef SEP
        putchar('}');
    }
    fputs(",\"payload\":", stdout);
    if (m->payload_len && raw)
        fwrite(m->payload, 1, m->payload_len, stdout);
    else if (m->payload_len)
        put_json_str((const char *)m->payload, m->payload_len);
    else
        fputs("null", stdout);
    putchar('}');
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

/* Check -F before connecting, as mosquitto_sub does: the % conversions must be known. */
static bool format_ok(const cli_t *c)
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

static bool print_message(const cli_t *c, const midge_message_t *m)
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
    if (c.format && !format_ok(&c))
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
            bool ok = print_message(&c, m);
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
    free(c.url_buf);
    return rc;
}
