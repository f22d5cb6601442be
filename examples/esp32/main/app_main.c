/* app_main.c - ESP-IDF entry point of the Midge sensor example.
 *
 * Brings the network up (ESP-IDF's example_connect: Wi-Fi or Ethernet as configured in
 * menuconfig), sets the clock by SNTP (the readings carry their time) and runs the device
 * (device.c) on its own task, over the lwIP socket transport (transport_sockets.c). All
 * MQTT goes through libmidge's transport interface; this file only starts things.
 */
#include <stdio.h>
#include <string.h>
#include <sys/time.h>

#include "esp_event.h"
#include "esp_log.h"
#include "esp_mac.h"
#include "esp_netif.h"
#include "esp_netif_sntp.h"
#include "esp_random.h"
#include "freertos/FreeRTOS.h"
#include "freertos/task.h"
#include "nvs_flash.h"
#include "protocol_examples_common.h"

#include "device.h"
#include "transport_sockets.h"

static const char *TAG = "midge-sensor";

static void log_event(void *ud, const char *event, uint32_t value)
{
    ESP_LOGI(TAG, "%s %lu", event, (unsigned long)value);
}

/* Unix time in milliseconds, as SNTP set it. */
static int64_t wall_clock_ms(void *ud)
{
    struct timeval tv;
    gettimeofday(&tv, NULL);
    return (int64_t)tv.tv_sec * 1000 + tv.tv_usec / 1000;
}

/* The device loop: device_loop_step() waits at most 100 ms for the broker, so the task
 * yields to the scheduler between steps. */
static void device_task(void *arg)
{
    /* static: keeps the task's stack small (device_t holds the offline buffer) */
    static device_t dev;
    static char id[DEVICE_ID_MAX];
    device_config_t cfg;

    if (CONFIG_MIDGE_DEVICE_ID[0]) {
        snprintf(id, sizeof id, "%s", CONFIG_MIDGE_DEVICE_ID);
    } else {
        uint8_t mac[6];
        esp_read_mac(mac, ESP_MAC_WIFI_STA);
        snprintf(id, sizeof id, "esp32-%02x%02x%02x%02x%02x%02x", mac[0], mac[1], mac[2], mac[3],
                 mac[4], mac[5]);
    }
    memset(&cfg, 0, sizeof cfg);
    cfg.host = CONFIG_MIDGE_BROKER_HOST;
    cfg.port = CONFIG_MIDGE_BROKER_PORT;
    cfg.id = id;
    cfg.interval_ms = CONFIG_MIDGE_READING_INTERVAL_MS;
    cfg.max_readings = 0; /* forever */
    cfg.seed = ((uint64_t)esp_random() << 32) | esp_random();
    cfg.transport = transport_sockets();
    cfg.clock_ms = wall_clock_ms;
    cfg.log = log_event;
    int rc = device_init(&dev, &cfg);
    if (rc) {
        ESP_LOGE(TAG, "device_init: %s", midge_strerror(rc));
        vTaskDelete(NULL);
        return;
    }
    ESP_LOGI(TAG, "publishing to sensors/%s/reading via %s:%d", id, cfg.host, cfg.port);
    for (;;) {
        rc = device_loop_step(&dev, 100);
        if (rc)
            ESP_LOGW(TAG, "device_loop_step: %s", midge_strerror(rc));
    }
}

void app_main(void)
{
    esp_err_t err = nvs_flash_init();
    if (err == ESP_ERR_NVS_NO_FREE_PAGES || err == ESP_ERR_NVS_NEW_VERSION_FOUND) {
        ESP_ERROR_CHECK(nvs_flash_erase());
        err = nvs_flash_init();
    }
    ESP_ERROR_CHECK(err);
    ESP_ERROR_CHECK(esp_netif_init());
    ESP_ERROR_CHECK(esp_event_loop_create_default());
    ESP_ERROR_CHECK(example_connect());
    /* Readings carry their time: wait (bounded) for SNTP before the first one. */
    esp_sntp_config_t sntp = ESP_NETIF_SNTP_DEFAULT_CONFIG(CONFIG_MIDGE_SNTP_SERVER);
    esp_netif_sntp_init(&sntp);
    if (esp_netif_sntp_sync_wait(pdMS_TO_TICKS(15000)) != ESP_OK)
        ESP_LOGW(TAG, "no SNTP answer yet: timestamps start at 1970 until it comes");
    xTaskCreate(device_task, "midge_device", 6144, NULL, 5, NULL);
}
