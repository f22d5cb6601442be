// ws_roundtrip.js - MQTT.js (npm "mqtt") over WebSocket against a running broker.
//
//   node ws_roundtrip.js URL VERSION TOPIC [CAFILE]
//
// Two MQTT.js clients on URL (ws://127.0.0.1:PORT/mqtt, or wss://localhost:PORT/mqtt with
// the server's certificate checked against CAFILE) with protocol VERSION (4 or 5):
// one subscribes to TOPIC at QoS 2, the other publishes a text payload, a binary payload of
// all 256 byte values and a 100 KB payload at QoS 0, 1 and 2. Prints one JSON line with
// what arrived ({"ok": true, ...} when every payload arrived intact, in order, at its QoS)
// and exits 0 then; exits 1 on any error before that or after 10 s.
'use strict';
const fs = require('fs');
const mqtt = require('mqtt');

const [url, version, topic, cafile] = process.argv.slice(2);
const protocolVersion = Number(version || 4);
const big = Buffer.alloc(100000, 0).map((_, i) => (i * 31) & 0xff);
const payloads = [Buffer.from('hello from MQTT.js'), Buffer.from([...Array(256).keys()]), big];
let done = false;

function finish(result) {
    if (done)
        return; // what happens while the clients go away does not change the result
    done = true;
    console.log(JSON.stringify(result));
    process.exit(result.ok ? 0 : 1);
}
const fail = (msg) => finish({ ok: false, error: String(msg) });
setTimeout(() => fail('timed out after 10 s'), 10000).unref();

const opts = { protocolVersion, reconnectPeriod: 0, connectTimeout: 5000, clean: true };
if (cafile) {
    opts.ca = fs.readFileSync(cafile);
    opts.rejectUnauthorized = true;
}
const sub = mqtt.connect(url, { ...opts, clientId: `js-sub-${process.pid}` });
sub.on('error', fail);
const got = [];
sub.on('message', (t, payload, packet) => {
    got.push({ topic: t, qos: packet.qos, len: payload.length, same: payload.equals(payloads[got.length]) });
    if (got.length === payloads.length)
        finish({ ok: got.every((g, i) => g.same && g.topic === topic && g.qos === i), protocolVersion, got });
});
sub.on('connect', () => {
    sub.subscribe(topic, { qos: 2 }, (err, granted) => {
        if (err || granted[0].qos !== 2)
            return fail(err || `granted ${JSON.stringify(granted)}`);
        const pub = mqtt.connect(url, { ...opts, clientId: `js-pub-${process.pid}` });
        pub.on('error', fail);
        pub.on('connect', async () => {
            try {
                for (let i = 0; i < payloads.length; i++)
                    await pub.publishAsync(topic, payloads[i], { qos: i });
            } catch (e) {
                fail(e);
            }
        });
    });
});
