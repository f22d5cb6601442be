/* topic.c - topic names and topic filters (MQTT section 4.7): validity checks, the
 * "$share/GROUP/FILTER" split (section 4.8.2) and wildcard matching. The broker checks
 * names and filters with these after decoding, and its topic tree matches with the same
 * rules.
 */
#include <string.h>

#include "mqtt/codec.h"

int mqtt_topic_name_check(const uint8_t *p, size_t n)
{
    /* MQTT-4.7.3-1: at least one character; MQTT-3.3.2-2: no wildcards. */
    if (n == 0)
        return MQTT_RC_TOPIC_NAME_INVALID;
    for (size_t i = 0; i < n; i++)
        if (p[i] == '+' || p[i] == '#')
            return MQTT_RC_TOPIC_NAME_INVALID;
    return 0;
}

/* Wildcard placement in a filter that is not a shared one. */
static int filter_levels_check(const uint8_t *p, size_t n)
{
    if (n == 0)
        return MQTT_RC_TOPIC_FILTER_INVALID; /* MQTT-4.7.3-1 */
    size_t start = 0;
    for (size_t i = 0; i <= n; i++) {
        if (i < n && p[i] != '/')
            continue;
        size_t len = i - start;
        for (size_t k = start; k < i; k++) {
            if (p[k] == '#') {
                /* MQTT-4.7.1-1: '#' alone, as the last level. */
                if (len != 1 || i != n)
                    return MQTT_RC_TOPIC_FILTER_INVALID;
            } else if (p[k] == '+') {
                /* MQTT-4.7.1-2: '+' occupies a whole level. */
                if (len != 1)
                    return MQTT_RC_TOPIC_FILTER_INVALID;
            }
        }
        start = i + 1;
    }
    return 0;
}

int mqtt_topic_filter_check(const uint8_t *p, size_t n)
{
    mqtt_str_t group, filter;
    int shared = mqtt_share_split(p, n, &group, &filter);
    if (shared < 0)
        return MQTT_RC_TOPIC_FILTER_INVALID;
    if (shared > 0)
        return filter_levels_check(filter.p, filter.n);
    return filter_levels_check(p, n);
}

int mqtt_share_split(const uint8_t *p, size_t n, mqtt_str_t *group, mqtt_str_t *filter)
{
    static const char prefix[] = "$share/";
    const size_t plen = sizeof prefix - 1;
    if (n < plen || memcmp(p, prefix, plen) != 0)
        return 0;
    size_t g = plen, i = plen;
    /* MQTT-4.8.2-1: ShareName at least one character; MQTT-4.8.2-2: no '/', '+' or '#'. */
    while (i < n && p[i] != '/') {
        if (p[i] == '+' || p[i] == '#')
            return -1;
        i++;
    }
    if (i == g || i == n || i + 1 == n)
        return -1; /* empty group, no filter, or an empty filter */
    group->p = p + g;
    group->n = (uint32_t)(i - g);
    filter->p = p + i + 1;
    filter->n = (uint32_t)(n - i - 1);
    return 1;
}

/* Level by level. '+' matches one whole level (an empty one too), '#' the rest including
 * the parent level ("sport/#" matches "sport", section 4.7.1.2). */
bool mqtt_topic_match(const uint8_t *filter, size_t fn, const uint8_t *topic, size_t tn)
{
    /* MQTT-4.7.2-1: a leading wildcard does not match a topic starting with '$'. */
    if (tn > 0 && topic[0] == '$' && fn > 0 && (filter[0] == '+' || filter[0] == '#'))
        return false;
    size_t i = 0, j = 0;
    for (;;) {
        size_t fe = i, te = j;
        while (fe < fn && filter[fe] != '/')
            fe++;
        while (te < tn && topic[te] != '/')
            te++;
        if (fe - i == 1 && filter[i] == '#')
            return true;
        bool plus = fe - i == 1 && filter[i] == '+';
        if (!plus && (fe - i != te - j || memcmp(filter + i, topic + j, fe - i) != 0))
            return false;
        bool fend = fe == fn, tend = te == tn;
        if (fend && tend)
            return true;
        if (tend)
            return fn - fe == 2 && filter[fe + 1] == '#';
        if (fend)
            return false;
        i = fe + 1;
        j = te + 1;
    }
}
