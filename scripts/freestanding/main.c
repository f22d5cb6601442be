/* main.c - the "firmware" of the freestanding proof: a CONNECT and a PUBLISH encoded and
 * decoded again with the codec of src/mqtt, with buffers on the stack only.
 *
 * scripts/check-freestanding.sh links it with every src/mqtt object (ld -r, no libc) and
 * lists what is still undefined; it is never run. It exists so that the proof covers a
 * caller that really reaches encode and decode, not only objects that sit side by side.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mqtt/codec.h"

int freestanding_main(void);

int freestanding_main(void)
{
    static const uint8_t topic[] = "sensors/esp32/reading";
    static const uint8_t payload[] = "{\"t\":21.5}";
    uint8_t buf[256];
    mqtt_connect_t c, c2;
    mqtt_publish_t p, p2;
    mqtt_frame_t f;
    mqtt_error_t err;
    size_t n;

    mqtt_props_init(&c.props);
    c.version = 5;
    c.clean_start = true;
    c.keep_alive = 30;
    c.client_id = (mqtt_str_t){(const uint8_t *)"esp32", 5};
    c.has_will = false;
    c.has_username = false;
    c.has_password = false;
    n = mqtt_connect_encode(buf, sizeof buf, &c);
    if (n == 0 || mqtt_frame_decode(buf, n, &f, &err) != MQTT_OK)
        return 1;
    if (mqtt_connect_decode(buf + f.header_len, f.remaining, &c2, &err) != MQTT_OK)
        return 2;

    mqtt_props_init(&p.props);
    p.qos = 1;
    p.dup = false;
    p.retain = false;
    p.topic = (mqtt_str_t){topic, sizeof topic - 1};
    p.packet_id = 1;
    p.payload = (mqtt_bin_t){payload, sizeof payload - 1};
    n = mqtt_publish_encode(buf, sizeof buf, 5, &p);
    if (n == 0 || mqtt_frame_decode(buf, n, &f, &err) != MQTT_OK)
        return 3;
    if (mqtt_publish_decode(5, f.flags, buf + f.header_len, f.remaining, &p2, &err) != MQTT_OK)
        return 4;
    if (!mqtt_topic_match((const uint8_t *)"sensors/+/reading", 17, p2.topic.p, p2.topic.n))
        return 5;
    return 0;
}
