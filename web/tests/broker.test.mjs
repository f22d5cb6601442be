// The broker panel's reading of $SYS (src/broker.js): rates on the broker's own clock.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { BrokerPanel, formatUptime } from '../src/broker.js';

const text = (s) => new TextEncoder().encode(s);

function panel() {
    const fields = {};
    for (const name of ['version', 'uptime', 'clients', 'rateIn', 'rateOut'])
        fields[name] = { textContent: '' };
    return { p: new BrokerPanel(fields), fields };
}

test('uptime as people read it', () => {
    assert.equal(formatUptime(42), '42 s');
    assert.equal(formatUptime(125), '2 min 05 s');
    assert.equal(formatUptime(7500), '2 h 05 min');
    assert.equal(formatUptime(3 * 86400 + 4 * 3600 + 59), '3 d 04 h');
});

test('figures from $SYS; the rate from two counters over the broker uptime between them', () => {
    const { p, fields } = panel();
    assert.equal(fields.clients.textContent, '–');
    assert.equal(p.handle('$SYS/broker/clients/connected', text('4')), true);
    assert.equal(p.handle('$SYS/broker/uptime', text('100 seconds')), true);
    assert.equal(p.handle('$SYS/broker/messages/received', text('1000')), true);
    // One counter gives no rate: the one-minute average (per minute) stands in.
    p.handle('$SYS/broker/load/messages/received/1min', text('120.00'));
    assert.equal(fields.rateIn.textContent, '2.0');
    p.handle('$SYS/broker/uptime', text('110 seconds'));
    p.handle('$SYS/broker/messages/received', text('1250'));
    assert.equal(fields.rateIn.textContent, '25');
    // Once there is a measured rate, the average no longer overwrites it.
    p.handle('$SYS/broker/load/messages/received/1min', text('60.00'));
    assert.equal(fields.rateIn.textContent, '25');
    assert.equal(fields.clients.textContent, '4');
    assert.equal(fields.uptime.textContent, '1 min 50 s');
    assert.equal(p.handle('$SYS/broker/bytes/sent', text('1')), false);
});

test('a restarted broker (counter going down) gives no negative rate', () => {
    const { p, fields } = panel();
    p.handle('$SYS/broker/uptime', text('500 seconds'));
    p.handle('$SYS/broker/messages/sent', text('9000'));
    p.handle('$SYS/broker/uptime', text('5 seconds'));
    p.handle('$SYS/broker/messages/sent', text('10'));
    assert.equal(fields.rateOut.textContent, '–');
});
