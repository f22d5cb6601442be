// Where the dashboard connects by default, and which settings it refuses (src/settings.js).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { brokerUrl, pageDefaults, settingsError } from '../src/settings.js';

test('the broker that served the page, ws or wss as the page came', () => {
    const http = pageDefaults({ protocol: 'http:', hostname: 'pi.local', port: '9001' });
    assert.deepEqual(http, { host: 'pi.local', port: 9001, path: '/mqtt', tls: false, username: '',
        password: '', prefix: 'sensors' });
    assert.equal(brokerUrl(http), 'ws://pi.local:9001/mqtt');
    const https = pageDefaults({ protocol: 'https:', hostname: 'localhost', port: '9443' });
    assert.equal(brokerUrl(https), 'wss://localhost:9443/mqtt');
    assert.equal(brokerUrl(pageDefaults({ protocol: 'https:', hostname: 'example.org', port: '' })),
        'wss://example.org:443/mqtt');
    // Opened as a file: the demo's WebSocket listener.
    assert.equal(brokerUrl(pageDefaults({ protocol: 'file:', hostname: '', port: '' })),
        'ws://localhost:9001/mqtt');
    assert.equal(brokerUrl({ ...http, host: '::1' }), 'ws://[::1]:9001/mqtt');
});

test('settings refused with the field named', () => {
    const ok = pageDefaults({ protocol: 'http:', hostname: 'localhost', port: '9001' });
    assert.equal(settingsError(ok), null);
    assert.match(settingsError({ ...ok, host: '' }), /^Host:/);
    assert.match(settingsError({ ...ok, host: 'a b' }), /^Host:/);
    assert.match(settingsError({ ...ok, port: 0 }), /^Port:/);
    assert.match(settingsError({ ...ok, port: 65536 }), /^Port:/);
    assert.match(settingsError({ ...ok, port: 1.5 }), /^Port:/);
    assert.match(settingsError({ ...ok, path: 'mqtt' }), /^Path:/);
    for (const prefix of ['', 'a/+', '#', 'a//b', '/a', 'a/'])
        assert.match(settingsError({ ...ok, prefix }), /^Topic prefix:/, prefix);
    assert.equal(settingsError({ ...ok, prefix: 'home/floor1' }), null);
});
