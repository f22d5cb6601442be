/* presence.h - how a device says it is there: "online", retained on <prefix>/<id>/status
 * once connected, and "offline" there as its will (QoS 1, retained), which the broker
 * publishes when the device vanishes. Shared by midge-sensor (src/tools/sensor.c) and the
 * ESP32 example (examples/esp32/main/device.c); libmidge's public types only.
 */
#ifndef MIDGE_DEVICE_PRESENCE_H
#define MIDGE_DEVICE_PRESENCE_H

#include "midge/midge.h"

#define SENSOR_STATUS_ONLINE "online"
#define SENSOR_STATUS_OFFLINE "offline"

/* The will of a device whose status topic is status_topic (which must outlive o). */
static inline void sensor_presence_will(midge_options_t *o, const char *status_topic)
{
    o->will_topic = status_topic;
    o->will_payload = (const uint8_t *)SENSOR_STATUS_OFFLINE;
    o->will_payload_len = sizeof SENSOR_STATUS_OFFLINE - 1;
    o->will_qos = 1;
    o->will_retain = true;
}

#endif
