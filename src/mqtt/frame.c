/* frame.c - the fixed header: packet type, flags and remaining length (MQTT section 2.1).
 * The broker's reader calls mqtt_frame_decode on the bytes received so far to learn how
 * long the packet is, before it hands the body to the decoder of that packet type.
 */
#include "mqtt/codec.h"

static int fail(mqtt_error_t *err, uint8_t reason, const char *rule)
{
    if (err) {
        err->reason = reason;
        err->rule = rule;
    }
    return MQTT_FAIL;
}

/* The first byte is judged as soon as it is there, so a bad packet is refused before
 * the caller waits for (or allocates) its body. */
int mqtt_frame_decode(const uint8_t *buf, size_t n, mqtt_frame_t *f, mqtt_error_t *err)
{
    if (n < 1)
        return MQTT_INCOMPLETE;
    uint8_t type = buf[0] >> 4, flags = buf[0] & 0x0F;
    switch (type) {
    case 0:
        return fail(err, MQTT_RC_MALFORMED, "MQTT-2.1.3-1: packet type 0 is reserved");
    case MQTT_PUBLISH: {
        uint8_t qos = (flags >> 1) & 3;
        if (qos == 3)
            return fail(err, MQTT_RC_MALFORMED, "MQTT-3.3.1-4: PUBLISH with QoS 3");
        if (qos == 0 && (flags & 0x08))
            return fail(err, MQTT_RC_MALFORMED, "MQTT-3.3.1-2: PUBLISH with DUP set at QoS 0");
        break;
    }
    case MQTT_PUBREL:
        if (flags != 2)
            return fail(err, MQTT_RC_MALFORMED, "MQTT-3.6.1-1: PUBREL fixed header flags not 0010");
        break;
    case MQTT_SUBSCRIBE:
        if (flags != 2)
            return fail(err, MQTT_RC_MALFORMED,
                        "MQTT-3.8.1-1: SUBSCRIBE fixed header flags not 0010");
        break;
    case MQTT_UNSUBSCRIBE:
        if (flags != 2)
            return fail(err, MQTT_RC_MALFORMED,
                        "MQTT-3.10.1-1: UNSUBSCRIBE fixed header flags not 0010");
        break;
    default:
        if (flags != 0)
            return fail(err, MQTT_RC_MALFORMED,
                        "MQTT-2.1.3-1: reserved fixed header flags not 0000");
        break;
    }
    uint32_t remaining;
    int k = mqtt_vbi_decode(buf + 1, n - 1, &remaining);
    if (k == 0)
        return MQTT_INCOMPLETE;
    if (k < 0) {
        if (n >= 5 && (buf[1] & buf[2] & buf[3] & buf[4] & 0x80))
            return fail(err, MQTT_RC_MALFORMED, "remaining length longer than 4 bytes");
        return fail(err, MQTT_RC_MALFORMED,
                    "MQTT-1.5.5-1: remaining length not in its shortest form");
    }
    f->type = type;
    f->flags = flags;
    f->header_len = (uint8_t)(1 + k);
    f->remaining = remaining;
    return MQTT_OK;
}
