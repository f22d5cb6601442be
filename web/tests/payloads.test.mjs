// The dashboard's reading of midge-sensor's topics and payloads (src/payloads.js).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { formatAge, parseError, parseReading, parseTopic } from '../src/payloads.js';

test('device topics under the prefix, and nothing else', () => {
    assert.deepEqual(parseTopic('sensors', 'sensors/pi-1/reading'), { id: 'pi-1', kind: 'reading' });
    assert.deepEqual(parseTopic('home/sensors', 'home/sensors/a/status'), { id: 'a', kind: 'status' });
    assert.equal(parseTopic('sensors', 'sensorsX/a/reading'), null);
    assert.equal(parseTopic('sensors', 'sensors/a/b/reading'), null);
    assert.equal(parseTopic('sensors', 'sensors//reading'), null);
    assert.equal(parseTopic('sensors', 'sensors/a/'), null);
    assert.equal(parseTopic('sensors', '$SYS/broker/uptime'), null);
});

test('a reading as the sensor contract writes it', () => {
    const r = parseReading('{"device":"d","ts":"2026-11-26T03:40:12.345Z","temperature_c":23.4,' +
        '"humidity_pct":41.2,"seq":17}');
    assert.deepEqual(r, { ms: Date.UTC(2026, 10, 26, 3, 40, 12, 345), temperature: 23.4, humidity: 41.2,
        seq: 17 });
});

test('bad readings are errors that say what is wrong', () => {
    const cases = [
        ['{"ts":', 'reading is not JSON'],
        ['[1,2]', 'reading has no valid "ts"'],
        ['null', 'reading is not a JSON object'],
        ['{"ts":"yesterday","temperature_c":1,"humidity_pct":2}', 'reading has no valid "ts"'],
        ['{"ts":"2026-11-26T03:40:12Z","temperature_c":"21","humidity_pct":2}',
            'reading lacks numeric "temperature_c" and "humidity_pct"'],
        ['{"ts":"2026-11-26T03:40:12Z","temperature_c":21}',
            'reading lacks numeric "temperature_c" and "humidity_pct"'],
    ];
    for (const [text, message] of cases) {
        const r = parseReading(text);
        assert.ok(r instanceof Error, text);
        assert.equal(r.message, message, text);
    }
    assert.equal(parseReading('{"ts":"2026-11-26T03:40:12Z","temperature_c":1,"humidity_pct":2,' +
        '"seq":"x"}').seq, undefined);
});

test('error payloads: the contract\'s JSON, or the raw text when it is not', () => {
    assert.deepEqual(parseError('{"device":"d","ts":"2026-11-26T03:40:12.000Z","error":"checksum mismatch",' +
        '"seq":3}'), { ms: Date.UTC(2026, 10, 26, 3, 40, 12), text: 'checksum mismatch' });
    assert.equal(parseError('sensor on fire').text, 'sensor on fire');
    assert.equal(parseError('null').text, 'null');
    assert.equal(parseError('x'.repeat(500)).text.length, 200);
});

test('ages', () => {
    const now = 1_000_000_000;
    assert.equal(formatAge(now, now), '0 s');
    assert.equal(formatAge(now + 5000, now), '0 s'); // a device clock ahead of ours
    assert.equal(formatAge(now - 59_400, now), '59 s');
    assert.equal(formatAge(now - 61_000, now), '1 min');
    assert.equal(formatAge(now - 3_600_000 - 5 * 60_000, now), '1 h 05 min');
});
