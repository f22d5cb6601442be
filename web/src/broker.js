// broker.js - the broker panel: what the broker says of itself under $SYS (src/broker/sys.c,
// retained, republished every sys_interval seconds, 10 by default).

/** The $SYS topics the panel needs; each is retained, so the panel fills as soon as it subscribes. */
export const SYS_TOPICS = [
    '$SYS/broker/version',
    '$SYS/broker/uptime',
    '$SYS/broker/clients/connected',
    '$SYS/broker/messages/received',
    '$SYS/broker/messages/sent',
    '$SYS/broker/load/messages/received/1min',
    '$SYS/broker/load/messages/sent/1min',
];

/** "3 d 04 h", "2 h 05 min", "42 s" from a number of seconds. */
export function formatUptime(s) {
    const d = Math.floor(s / 86400), h = Math.floor(s / 3600) % 24, m = Math.floor(s / 60) % 60;
    if (d)
        return `${d} d ${String(h).padStart(2, '0')} h`;
    if (h)
        return `${h} h ${String(m).padStart(2, '0')} min`;
    if (m)
        return `${m} min ${String(s % 60).padStart(2, '0')} s`;
    return `${s} s`;
}

const decoder = new TextDecoder();

/** The element each direction's rate is shown in. */
const RATE_FIELD = { in: 'rateIn', out: 'rateOut' };

function formatRate(perSecond) {
    return perSecond < 10 ? perSecond.toFixed(1) : Math.round(perSecond).toString();
}

export class BrokerPanel {
    /** `fields` maps a name (version, uptime, clients, rateIn, rateOut) to its element. */
    constructor(fields) {
        this.fields = fields;
        this.reset();
    }

    /** Forgets what an earlier broker said. */
    reset() {
        this.uptime = null;
        // Per direction: the counter and the broker's uptime when it was read, for a rate
        // measured on the broker's own clock rather than on when messages happen to arrive.
        this.counters = { in: null, out: null };
        for (const e of Object.values(this.fields))
            e.textContent = '–';
    }

    /** Handles a $SYS message; returns false when it is not one of SYS_TOPICS. */
    handle(topic, payload) {
        const text = decoder.decode(payload).trim();
        const n = Number.parseFloat(text);
        switch (topic) {
        case '$SYS/broker/version':
            this.fields.version.textContent = text;
            return true;
        case '$SYS/broker/uptime':
            if (Number.isFinite(n)) { // "N seconds"
                this.uptime = n;
                this.fields.uptime.textContent = formatUptime(n);
            }
            return true;
        case '$SYS/broker/clients/connected':
            this.fields.clients.textContent = Number.isFinite(n) ? String(n) : text;
            return true;
        case '$SYS/broker/messages/received':
            this.count('in', n);
            return true;
        case '$SYS/broker/messages/sent':
            this.count('out', n);
            return true;
        case '$SYS/broker/load/messages/received/1min':
            this.load('in', n);
            return true;
        case '$SYS/broker/load/messages/sent/1min':
            this.load('out', n);
            return true;
        default:
            return false;
        }
    }

    /** A new total: the rate is the increase over the broker's uptime since the last one. */
    count(dir, total) {
        if (!Number.isFinite(total) || this.uptime === null)
            return;
        const last = this.counters[dir];
        this.counters[dir] = { total, uptime: this.uptime, rated: last?.rated || false };
        if (last && this.uptime > last.uptime && total >= last.total) {
            const rate = (total - last.total) / (this.uptime - last.uptime);
            this.fields[RATE_FIELD[dir]].textContent = formatRate(rate);
            this.counters[dir].rated = true;
        }
    }

    /** The broker's one-minute average (per minute), shown until two totals give a rate. */
    load(dir, perMinute) {
        if (Number.isFinite(perMinute) && !this.counters[dir]?.rated)
            this.fields[RATE_FIELD[dir]].textContent = formatRate(perMinute / 60);
    }
}
