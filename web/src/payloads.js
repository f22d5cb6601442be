// payloads.js - what midge-sensor publishes, read defensively: topics, reading and error
// payloads (JSON from the network: anything may arrive), and ages as people read them.
// Pure functions, no DOM: web/tests/ runs them under node.

/** {id, kind} of PREFIX/<id>/<kind>, or null when `topic` is not a device topic under `prefix`. */
export function parseTopic(prefix, topic) {
    if (!topic.startsWith(prefix + '/'))
        return null;
    const rest = topic.slice(prefix.length + 1).split('/');
    if (rest.length !== 2 || rest[0] === '' || rest[1] === '')
        return null;
    return { id: rest[0], kind: rest[1] };
}

/** A reading payload as numbers, or an Error saying what is wrong with it. */
export function parseReading(text) {
    let r;
    try {
        r = JSON.parse(text);
    } catch {
        return new Error('reading is not JSON');
    }
    if (typeof r !== 'object' || r === null)
        return new Error('reading is not a JSON object');
    const ms = typeof r.ts === 'string' ? Date.parse(r.ts) : NaN;
    if (Number.isNaN(ms))
        return new Error('reading has no valid "ts"');
    if (!Number.isFinite(r.temperature_c) || !Number.isFinite(r.humidity_pct))
        return new Error('reading lacks numeric "temperature_c" and "humidity_pct"');
    return { ms, temperature: r.temperature_c, humidity: r.humidity_pct,
        seq: Number.isInteger(r.seq) ? r.seq : undefined };
}

/** An error payload as {ms, text}; a payload that is not the expected JSON is shown as is. */
export function parseError(text) {
    try {
        const e = JSON.parse(text);
        const ms = Date.parse(e.ts);
        if (typeof e.error === 'string')
            return { ms: Number.isNaN(ms) ? Date.now() : ms, text: e.error };
    } catch {
        // fall through: show the raw text
    }
    return { ms: Date.now(), text: text.slice(0, 200) };
}

/** "4 s", "3 min", "2 h 05 min": how long ago `ms` was. */
export function formatAge(ms, now = Date.now()) {
    const s = Math.max(0, Math.round((now - ms) / 1000));
    if (s < 60)
        return `${s} s`;
    if (s < 3600)
        return `${Math.floor(s / 60)} min`;
    const m = Math.floor(s / 60) % 60;
    return `${Math.floor(s / 3600)} h ${String(m).padStart(2, '0')} min`;
}
