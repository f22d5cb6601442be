/* vbi_utf8.c - the two primitive encodings under every MQTT packet: the variable byte
 * integer (remaining length, property lengths, subscription identifiers) and the UTF-8
 * rules for every string field (MQTT section 1.5.4, 1.5.5). Everything else in the codec
 * is built on these.
 */
#include "mqtt/codec.h"

/* Decode a variable byte integer. A value carried in more bytes than needed is refused
 * (MQTT-1.5.5-1): a multi-byte encoding is minimal exactly when its last byte is not 0. */
int mqtt_vbi_decode(const uint8_t *p, size_t n, uint32_t *v)
{
    uint32_t value = 0;
    for (size_t i = 0; i < 4; i++) {
        if (i >= n)
            return 0;
        value |= (uint32_t)(p[i] & 0x7F) << (7 * i);
        if ((p[i] & 0x80) == 0) {
            if (i > 0 && p[i] == 0)
                return -1;
            *v = value;
            return (int)i + 1;
        }
    }
    return -1; /* a fifth byte would be needed */
}

/* Encode v (at most MQTT_VBI_MAX; higher bits are dropped) at out. */
size_t mqtt_vbi_encode(uint8_t *out, uint32_t v)
{
    size_t i = 0;
    v &= MQTT_VBI_MAX;
    do {
        uint8_t b = v & 0x7F;
        v >>= 7;
        if (v)
            b |= 0x80;
        out[i++] = b;
    } while (v);
    return i;
}

/* Well-formed UTF-8 per Unicode table 3-7, minus U+0000 (MQTT-1.5.4-2). The second byte
 * ranges below are what rules out overlong forms, surrogates (MQTT-1.5.4-1) and code
 * points above U+10FFFF; U+FEFF is an ordinary character here (MQTT-1.5.4-3). */
int mqtt_utf8_check(const uint8_t *p, size_t n)
{
    size_t i = 0;
    while (i < n) {
        uint8_t c = p[i];
        if (c < 0x80) {
            if (c == 0)
                return -1;
            i++;
            continue;
        }
        size_t len;
        uint8_t lo = 0x80, hi = 0xBF;
        if (c >= 0xC2 && c <= 0xDF) {
            len = 2;
        } else if (c >= 0xE0 && c <= 0xEF) {
            len = 3;
            if (c == 0xE0)
                lo = 0xA0; /* overlong */
            else if (c == 0xED)
                hi = 0x9F; /* surrogates */
        } else if (c >= 0xF0 && c <= 0xF4) {
            len = 4;
            if (c == 0xF0)
                lo = 0x90; /* overlong */
            else if (c == 0xF4)
                hi = 0x8F; /* above U+10FFFF */
        } else {
            return -1; /* continuation byte, C0/C1 overlong lead, F5..FF */
        }
        if (n - i < len)
            return -1;
        if (p[i + 1] < lo || p[i + 1] > hi)
            return -1;
        for (size_t k = 2; k < len; k++)
            if ((p[i + k] & 0xC0) != 0x80)
                return -1;
        i += len;
    }
    return 0;
}
