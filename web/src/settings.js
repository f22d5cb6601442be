// settings.js - where the dashboard connects, and what it watches, remembered per browser.
//
// By default the page talks to the broker that served it: same host and port, wss:// when
// the page came over https:// (9443) and ws:// otherwise (9001). Whatever the user saves in
// the settings form is kept in localStorage and wins over those defaults until reset.

const STORAGE_KEY = 'midge-dashboard-settings';

/** The defaults for a page loaded from `loc` (window.location). */
export function pageDefaults(loc = window.location) {
    const tls = loc.protocol === 'https:';
    const served = tls || loc.protocol === 'http:';
    return {
        host: served ? loc.hostname : 'localhost',
        port: served ? Number(loc.port) || (tls ? 443 : 80) : 9001,
        path: '/mqtt',
        tls,
        username: '',
        password: '',
        prefix: 'sensors',
    };
}

/** What is wrong with `s`, as one sentence naming the field, or null when it is usable. */
export function settingsError(s) {
    if (!s.host || /[\s/]/.test(s.host))
        return 'Host: a host name or address, without spaces or slashes.';
    if (!Number.isInteger(s.port) || s.port < 1 || s.port > 65535)
        return 'Port: a whole number from 1 to 65535.';
    if (!s.path.startsWith('/'))
        return 'Path: must start with "/" (the broker answers on any path; /mqtt is usual).';
    // The prefix is the first levels of a topic filter: no wildcards, no empty level.
    if (!s.prefix || /[+#]/.test(s.prefix) || s.prefix.split('/').some((level) => level === ''))
        return 'Topic prefix: topic levels without "+", "#" or empty levels (e.g. "sensors").';
    return null;
}

/** The saved settings over the page's defaults; a damaged entry is ignored. */
export function loadSettings() {
    const defaults = pageDefaults();
    let saved = {};
    try {
        saved = JSON.parse(localStorage.getItem(STORAGE_KEY) || '{}') || {};
    } catch {
        saved = {}; // not JSON (edited by hand?): start from the defaults
    }
    const merged = { ...defaults };
    // Take only known fields of the right type, so an old or edited entry cannot break the page.
    for (const [key, value] of Object.entries(defaults))
        if (typeof saved[key] === typeof value)
            merged[key] = saved[key];
    return settingsError(merged) ? defaults : merged;
}

/** Remembers `s` in this browser (the password too: it is a development dashboard). */
export function saveSettings(s) {
    localStorage.setItem(STORAGE_KEY, JSON.stringify(s));
}

/** Forgets the saved settings: the page's defaults apply again. */
export function clearSettings() {
    localStorage.removeItem(STORAGE_KEY);
}

/** The WebSocket URL of the broker: ws://host:port/path, with [brackets] around IPv6. */
export function brokerUrl(s) {
    const host = s.host.includes(':') && !s.host.startsWith('[') ? `[${s.host}]` : s.host;
    return `${s.tls ? 'wss' : 'ws'}://${host}:${s.port}${s.path}`;
}
