// A device's history in uPlot's columns (src/history.js): order, repeats, the hour it keeps.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { HISTORY_SECONDS, addPoint, emptyHistory, trimHistory, typicalGap } from '../src/history.js';

const NOW = Date.UTC(2026, 10, 26, 12, 0, 0);

test('readings go in by time, x in seconds; a repeat is refused', () => {
    const h = emptyHistory();
    assert.equal(addPoint(h, NOW - 2000, 20.5, 40, NOW), true);
    assert.equal(addPoint(h, NOW, 21, 41, NOW), true);
    // A late, buffered reading goes where its timestamp says.
    assert.equal(addPoint(h, NOW - 1000, 20.75, 40.5, NOW), true);
    assert.deepEqual(h, [[NOW / 1000 - 2, NOW / 1000 - 1, NOW / 1000], [20.5, 20.75, 21], [40, 40.5, 41]]);
    // The same reading again (the retained copy after a resubscribe): nothing changes.
    assert.equal(addPoint(h, NOW - 1000, 99, 99, NOW), false);
    assert.equal(addPoint(h, NOW, 99, 99, NOW), false);
    assert.deepEqual(h, [[NOW / 1000 - 2, NOW / 1000 - 1, NOW / 1000], [20.5, 20.75, 21], [40, 40.5, 41]]);
});

test('the columns are the same arrays after adding and trimming (uPlot holds them)', () => {
    const h = emptyHistory();
    const [xs, ts, hs] = h;
    addPoint(h, NOW - 1000, 1, 2, NOW);
    addPoint(h, NOW - 3000, 1, 2, NOW);
    trimHistory(h, NOW + HISTORY_SECONDS * 1000 - 2000);
    assert.ok(h[0] === xs && h[1] === ts && h[2] === hs);
    assert.deepEqual(h, [[NOW / 1000 - 1], [1], [2]]);
});

test('trimming drops what is over the window old, and only that', () => {
    const h = emptyHistory();
    const start = NOW - HISTORY_SECONDS * 1000;
    for (const ms of [start - 20000, start - 10000, start, start + 10000, NOW])
        addPoint(h, ms, ms % 7, ms % 11, start - 20000);
    assert.equal(h[0].length, 5);
    assert.equal(trimHistory(h, NOW), 2);
    assert.deepEqual(h[0], [start / 1000, start / 1000 + 10, NOW / 1000]);
    assert.deepEqual(h[1], [start % 7, (start + 10000) % 7, NOW % 7]);
    assert.deepEqual(h[2], [start % 11, (start + 10000) % 11, NOW % 11]);
    assert.equal(trimHistory(h, NOW), 0); // nothing more to drop
    assert.equal(trimHistory(h, NOW + 2 * HISTORY_SECONDS * 1000), 3);
    assert.deepEqual(h, [[], [], []]);
});

test('a reading already older than the window is new, but not kept', () => {
    const h = emptyHistory();
    assert.equal(addPoint(h, NOW - HISTORY_SECONDS * 1000 - 1, 20, 40, NOW), true);
    assert.deepEqual(h, [[], [], []]);
    assert.equal(addPoint(h, NOW - HISTORY_SECONDS * 1000, 20, 40, NOW), true);
    assert.equal(h[0].length, 1);
});

test('the typical gap between readings: the median of the last few, in ms', () => {
    const h = emptyHistory();
    assert.equal(typicalGap(h), null);
    addPoint(h, NOW - 60000, 1, 1, NOW);
    assert.equal(typicalGap(h), null);
    // Gaps of 250 ms with one long pause; times that are not exact in binary seconds.
    for (const ms of [NOW - 1003, NOW - 753, NOW - 503, NOW - 253, NOW - 3])
        addPoint(h, ms, 1, 1, NOW);
    assert.equal(typicalGap(h), 250);
});
