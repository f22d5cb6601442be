// devices.js - what the page knows of each device, built from its three topics
// (PREFIX/<id>/reading, PREFIX/<id>/status, PREFIX/<id>/error; see README, midge-sensor),
// and the card that shows it. Payloads are checked by payloads.js and only ever put in the
// page as text.

import { DeviceChart } from './chart.js';
import { addPoint, emptyHistory, trimHistory, typicalGap } from './history.js';
import { formatAge, parseError, parseReading, parseTopic } from './payloads.js';

const decoder = new TextDecoder();

/** A small element with a class and optional text. */
function el(tag, className, text) {
    const e = document.createElement(tag);
    if (className)
        e.className = className;
    if (text !== undefined)
        e.textContent = text;
    return e;
}

/** One device: its latest values, its last hour, and its card in the page. */
class Device {
    constructor(id) {
        this.id = id;
        this.latest = null; // {ms, temperature, humidity, seq}
        this.error = null; // {ms, text}
        this.history = emptyHistory(); // uPlot's columns, the chart's data as they are
        this.card = this.buildCard();
        this.chart = null; // made once the card is in the page (it needs a width)
    }

    buildCard() {
        const card = el('article', 'card');
        card.dataset.device = this.id;
        const head = el('header', 'card-head');
        head.append(el('h3', 'device-id', this.id));
        this.statusEl = el('span', 'badge status', 'unknown');
        this.statusEl.dataset.status = 'unknown';
        head.append(this.statusEl);

        const values = el('div', 'values');
        this.tempEl = el('span', 'value temperature', '–');
        this.humEl = el('span', 'value humidity', '–');
        const t = el('div', 'value-box');
        t.append(this.tempEl, el('span', 'unit', '°C'));
        const h = el('div', 'value-box');
        h.append(this.humEl, el('span', 'unit', '% RH'));
        values.append(t, h);

        this.ageEl = el('p', 'age', 'no reading yet');
        this.errorEl = el('p', 'device-error');
        this.errorEl.hidden = true;
        this.chartEl = el('div', 'chart');
        card.append(head, values, this.ageEl, this.errorEl, this.chartEl);
        return card;
    }

    /**
     * Adds a reading to the history (kept sorted by time; what is over an hour old goes in
     * DeviceBoard.tick) and shows it if it is the latest. The chart redraws at the next frame.
     */
    addReading(r) {
        const now = Date.now();
        if (!addPoint(this.history, r.ms, r.temperature, r.humidity, now))
            return; // the same reading again (the retained copy after a resubscribe)
        if (!this.latest || r.ms >= this.latest.ms)
            this.latest = r;
        this.tempEl.textContent = this.latest.temperature.toFixed(1);
        this.humEl.textContent = this.latest.humidity.toFixed(1);
        this.chart?.redraw();
        this.tick(now);
    }

    setStatus(text) {
        this.statusEl.textContent = text || 'unknown';
        this.statusEl.dataset.status = text === 'online' || text === 'offline' ? text : 'other';
        this.card.classList.toggle('offline', text === 'offline');
    }

    setError(e) {
        this.error = e;
        this.errorEl.hidden = false;
        this.tick(Date.now());
    }

    /** The typical gap between readings (median of the last few), for telling stale data. */
    readingInterval() {
        return typicalGap(this.history);
    }

    /** Refreshes what changes with time alone: ages, staleness. */
    tick(now) {
        if (this.latest) {
            this.ageEl.textContent = `reading ${formatAge(this.latest.ms, now)} ago`;
            if (this.latest.seq !== undefined)
                this.ageEl.textContent += ` · #${this.latest.seq}`;
            const gap = this.readingInterval();
            // Late by three intervals (at least 30 s): the values shown may no longer be true.
            this.ageEl.classList.toggle('stale', now - this.latest.ms > Math.max(3 * (gap || 0), 30000));
        }
        if (this.error)
            this.errorEl.textContent = `last error ${formatAge(this.error.ms, now)} ago: ${this.error.text}`;
    }
}

/** All devices seen under one topic prefix, and the grid of their cards. */
export class DeviceBoard {
    constructor(grid, emptyEl) {
        this.grid = grid;
        this.emptyEl = emptyEl;
        this.devices = new Map();
    }

    /** Forgets every device (the prefix or the broker changed). */
    clear() {
        for (const d of this.devices.values())
            d.chart?.destroy();
        this.devices.clear();
        this.grid.replaceChildren();
        this.emptyEl.hidden = false;
    }

    /** The device `id`, its card added in order of id when it is new. */
    device(id) {
        let d = this.devices.get(id);
        if (d)
            return d;
        d = new Device(id);
        this.devices.set(id, d);
        const next = [...this.devices.keys()].sort().find((other) => other > id);
        this.grid.insertBefore(d.card, next ? this.devices.get(next).card : null);
        this.emptyEl.hidden = true;
        d.chart = new DeviceChart(d.chartEl, d.history);
        return d;
    }

    /** Handles a message on PREFIX/<id>/<kind>; returns false when the topic is not one of ours. */
    handle(prefix, topic, payload) {
        const t = parseTopic(prefix, topic);
        if (!t)
            return false;
        const { id, kind } = t;
        const text = decoder.decode(payload);
        if (kind === 'reading') {
            const r = parseReading(text);
            if (r instanceof Error)
                this.device(id).setError({ ms: Date.now(), text: r.message });
            else
                this.device(id).addReading(r);
        } else if (kind === 'status') {
            // An empty retained payload is a status being deleted: nothing to show.
            if (text !== '' || this.devices.has(id))
                this.device(id).setStatus(text.trim());
        } else if (kind === 'error') {
            this.device(id).setError(parseError(text));
        } else {
            return false;
        }
        return true;
    }

    /** Once a second: ages; now and then the charts slide and old points go. */
    tick(now, slide) {
        for (const d of this.devices.values()) {
            d.tick(now);
            if (slide) {
                trimHistory(d.history, now);
                d.chart?.redraw();
            }
        }
    }
}
