// history.js - a device's recent readings, kept directly in uPlot's column format
// ([x in seconds, temperature, humidity], sorted by x) so that a chart draws them as they are,
// with no copy per reading.

/** How far back the charts go, and how much history a device keeps. */
export const HISTORY_SECONDS = 3600;

/** An empty history: uPlot's three columns. */
export function emptyHistory() {
    return [[], [], []];
}

/**
 * Adds a reading at its place by time (a late, buffered reading goes where its timestamp says).
 * Returns false, leaving `cols` as they were, for the same reading again (the retained copy after
 * a resubscribe). A reading already older than the window ending at `nowMs` is new but not kept
 * (the charts would not show it): true, `cols` unchanged.
 */
export function addPoint(cols, ms, temperature, humidity, nowMs) {
    const [xs, ts, hs] = cols;
    const x = ms / 1000;
    if (x < nowMs / 1000 - HISTORY_SECONDS)
        return true;
    let i = xs.length;
    while (i > 0 && xs[i - 1] > x)
        i--;
    if (i > 0 && xs[i - 1] === x)
        return false;
    if (i === xs.length) { // the usual case: the newest reading
        xs.push(x);
        ts.push(temperature);
        hs.push(humidity);
    } else {
        xs.splice(i, 0, x);
        ts.splice(i, 0, temperature);
        hs.splice(i, 0, humidity);
    }
    return true;
}

/** Drops the points older than the window ending at `nowMs`; returns how many went. */
export function trimHistory(cols, nowMs) {
    const [xs, ts, hs] = cols;
    const cutoff = nowMs / 1000 - HISTORY_SECONDS;
    let n = 0;
    while (n < xs.length && xs[n] < cutoff)
        n++;
    if (n) {
        xs.splice(0, n);
        ts.splice(0, n);
        hs.splice(0, n);
    }
    return n;
}

/** The typical gap in ms between the last few points (their median), or null with fewer than two. */
export function typicalGap(cols, last = 6) {
    const xs = cols[0].slice(-last);
    const gaps = xs.slice(1).map((x, i) => Math.round((x - xs[i]) * 1000)).sort((a, b) => a - b);
    return gaps.length ? gaps[Math.floor(gaps.length / 2)] : null;
}
