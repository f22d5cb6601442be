// chart.js - a device's last hour as a uPlot chart: temperature (left axis) and humidity
// (right axis) against time, sliding so that "now" stays at the right edge.

import uPlot from 'uplot';
import { HISTORY_SECONDS } from './history.js';

const TEMP_COLOUR = '#d9480f';
const HUM_COLOUR = '#1c7ed6';

export class DeviceChart {
    /**
     * Draws into `container` (sized by CSS) the points of `history`: uPlot's columns
     * ([x in seconds, temperature, humidity], see history.js), used as they are, not copied.
     */
    constructor(container, history) {
        this.history = history;
        this.frame = 0; // the pending redraw's requestAnimationFrame id, 0 when none
        const opts = {
            width: Math.max(container.clientWidth, 200),
            height: 150,
            legend: { show: false },
            cursor: { drag: { x: false, y: false } },
            scales: {
                x: { time: true, range: timeWindow },
                t: { auto: true, range: (u, min, max) => padRange(min, max, 1) },
                h: { auto: true, range: (u, min, max) => padRange(min, max, 2) },
            },
            series: [
                {},
                { label: 'temperature °C', scale: 't', stroke: TEMP_COLOUR, width: 2 },
                { label: 'humidity %', scale: 'h', stroke: HUM_COLOUR, width: 2 },
            ],
            axes: [
                { stroke: '#666', grid: { stroke: '#eee' }, values: timeLabels, size: 30 },
                { scale: 't', stroke: TEMP_COLOUR, size: 52, grid: { stroke: '#eee' },
                  values: (u, ticks) => ticks.map((v) => `${v}°`) },
                { scale: 'h', side: 1, stroke: HUM_COLOUR, size: 52, grid: { show: false },
                  values: (u, ticks) => ticks.map((v) => `${v}%`) },
            ],
        };
        this.plot = new uPlot(opts, history, container);
        // Cards change width with the window (one column on a phone): follow them.
        this.resizer = new ResizeObserver(() => {
            const w = container.clientWidth;
            if (w > 0 && w !== this.plot.width)
                this.plot.setSize({ width: w, height: 150 });
        });
        this.resizer.observe(container);
    }

    /**
     * Redraws after the history changed (in place): once at the next animation frame however
     * many readings came before it, and not at all while the page is hidden.
     */
    redraw() {
        if (this.frame)
            return;
        this.frame = requestAnimationFrame(() => {
            this.frame = 0;
            this.plot.setData(this.history);
        });
    }

    destroy() {
        if (this.frame)
            cancelAnimationFrame(this.frame);
        this.frame = 0;
        this.resizer.disconnect();
        this.plot.destroy();
    }
}

/**
 * The x range: it always ends now, whatever the data, so a silent device shows as a gap. It
 * starts an hour ago, or at the first reading (at least 20 s ago) while the page
 * has seen less than an hour: a fresh page shows its few minutes across the whole width.
 */
function timeWindow(u) {
    const now = Date.now() / 1000;
    const xs = u.data && u.data[0];
    const first = xs && xs.length ? xs[0] : -Infinity;
    return [Math.min(Math.max(now - HISTORY_SECONDS, first), now - 20), now];
}

/** Clock times on the x axis: hours and minutes, and seconds while the window is short. */
function timeLabels(u, ticks) {
    const x = u.scales.x;
    const format = x.max - x.min < 600 ? { timeStyle: 'medium' } : { timeStyle: 'short' };
    return ticks.map((t) => new Date(t * 1000).toLocaleTimeString([], { ...format, hour12: false }));
}

/** A y range around [min, max] at least `span` wide, so that a flat line is not drawn on an edge. */
function padRange(min, max, span) {
    if (min == null || max == null)
        return [0, span];
    const pad = Math.max(span - (max - min), 0) / 2 + (max - min) * 0.1;
    return [Math.floor((min - pad) * 10) / 10, Math.ceil((max + pad) * 10) / 10];
}
