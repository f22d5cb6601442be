/* topic_levels.h - stepping over the '/'-separated levels of a topic name or filter in place.
 *
 * The subscription tree and the retained store both walk a topic one level at a time, forwards
 * while descending and backwards while backtracking, without copying or splitting it. A
 * position `pos` is the offset of a level's first byte; a topic of n bytes has its levels end
 * at each '/' and at n, so "one past the last level" is n + 1. Empty levels ("a//b", "/a")
 * are ordinary levels of length 0.
 */
#ifndef MIDGE_TOPIC_LEVELS_H
#define MIDGE_TOPIC_LEVELS_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* Offset of the '/' ending the level that starts at pos, or len for the last level. */
static inline size_t topic_level_end(const uint8_t *s, size_t len, size_t pos)
{
    if (pos >= len)
        return len;
    const uint8_t *slash = memchr(s + pos, '/', len - pos);
    return slash ? (size_t)(slash - s) : len;
}

/* Offset of the first byte of the level that ends at end (a '/' or the topic's length). */
static inline size_t topic_level_start(const uint8_t *s, size_t end)
{
    while (end > 0 && s[end - 1] != '/')
        end--;
    return end;
}

/* Whether the level [p, p + n) is exactly the one-byte wildcard c ('+' or '#'). */
static inline int topic_level_is(const uint8_t *p, size_t n, uint8_t c)
{
    return n == 1 && p[0] == c;
}

#endif
