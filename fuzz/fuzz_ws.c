/* fuzz_ws.c - libFuzzer target for the WebSocket layer (src/net/ws.c, wslay underneath) in
 * an xport stack. The first byte picks the mode: bit 0 set, the server layer first gets a
 * valid upgrade request, so the rest is frames; clear, the rest starts at the HTTP head.
 * Bit 1 runs the client role instead (the rest is the server's answer). Bits 2-4 cut the
 * input into reads of 1, 2, 3, 7, 64, 500, 4096 bytes or whole. Whatever comes out must be
 * consistent: after -1 or finished nothing more is read, and a shutdown never fails.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "net/ws.h"
#include "net/xport.h"

#include "fuzz_check.h"

static const char UPGRADE[] = "GET /mqtt HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\n"
                              "Connection: Upgrade\r\n"
                              "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                              "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: mqtt\r\n"
                              "X-Forwarded-For: 192.0.2.1\r\n\r\n";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const trusted[] = {"127.0.0.1"};
    static const size_t cuts[8] = {1, 2, 3, 7, 64, 500, 4096, (size_t)-1};
    if (size < 1)
        return 0;
    ws_opts_t o = {.http_dir = "/nonexistent/midge-fuzz",
                   .trusted_proxies = trusted,
                   .ntrusted = 1,
                   .max_message = 1024};
    bool prefix = data[0] & 1, client = data[0] & 2;
    size_t cut = cuts[(data[0] >> 2) & 7];
    xport_t x;
    xbuf_t app = {0};
    xport_init(&x);
    xlayer_t *l =
        client ? ws_layer_new_client("h", 1883, "/mqtt") : ws_layer_new_server(&o, "127.0.0.1");
    CHECK(l);
    xport_push(&x, l);
    int rc = 0;
    if (client)
        rc = xport_input(&x, NULL, 0, &app);
    else if (prefix)
        rc = xport_input(&x, (const uint8_t *)UPGRADE, sizeof(UPGRADE) - 1, &app);
    CHECK(rc == 0);
    CHECK(client || !prefix || xport_ready(&x));
    const uint8_t *p = data + 1;
    size_t n = size - 1;
    while (n && rc == 0 && !xport_finished(&x)) {
        size_t k = n < cut ? n : cut;
        rc = xport_input(&x, p, k, &app);
        p += k;
        n -= k;
        CHECK(rc == 0 || x.error[0]);
        if (rc == 0 && xport_ready(&x) && xbuf_size(&app) & 1)
            CHECK(xport_output(&x, xbuf_data(&app), xbuf_size(&app)) == 0);
    }
    CHECK(xbuf_size(&app) <= size);
    xport_shutdown(&x, 1000);
    xport_cleanup(&x);
    xbuf_free(&app);
    return 0;
}
