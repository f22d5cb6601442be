// main.js - the dashboard's entry point: the settings form, one MQTT.js connection over
// WebSocket, and the messages it brings routed to the device cards and the broker panel.

import mqtt from 'mqtt';
import 'uplot/dist/uPlot.min.css';
import './style.css';
import { BrokerPanel, SYS_TOPICS } from './broker.js';
import { DeviceBoard } from './devices.js';
import { brokerUrl, clearSettings, loadSettings, pageDefaults, saveSettings, settingsError } from './settings.js';

const $ = (id) => document.getElementById(id);

const board = new DeviceBoard($('devices'), $('no-devices'));
const panel = new BrokerPanel({
    version: $('sys-version'),
    uptime: $('sys-uptime'),
    clients: $('sys-clients'),
    rateIn: $('sys-rate-in'),
    rateOut: $('sys-rate-out'),
});

let settings = loadSettings();
let client = null;

/** Shows the connection's state in the header (state is also a CSS hook) and its URL. */
function showConnection(state, url) {
    const c = $('conn');
    c.dataset.state = state;
    c.textContent = state;
    $('conn-url').textContent = url;
}

/** Shows a problem in the banner under the header (or hides it with null). */
function showProblem(text) {
    $('problem').hidden = !text;
    $('problem').textContent = text || '';
}

/** The topic filters for the current settings: the devices' three topics and the $SYS ones. */
function topicFilters(s) {
    return [`${s.prefix}/+/reading`, `${s.prefix}/+/status`, `${s.prefix}/+/error`, ...SYS_TOPICS];
}

/** (Re)connects with the current settings, dropping what the previous connection showed. */
function connect() {
    if (client)
        client.end(true);
    board.clear();
    panel.reset();
    showProblem(null);
    $('prefix-shown').textContent = settings.prefix;
    const url = brokerUrl(settings);
    showConnection('connecting', url);

    const c = mqtt.connect(url, {
        clientId: `midge-dashboard-${Math.random().toString(16).slice(2, 10)}`,
        protocolVersion: 4,
        clean: true,
        keepalive: 30,
        connectTimeout: 5000,
        reconnectPeriod: 3000, // retry for as long as the page is open
        username: settings.username || undefined,
        password: settings.password || undefined,
    });
    client = c;
    // What the page says while there is no connection: why, when it knows (a refused login
    // comes as an 'error'; an unreachable broker only as a 'close' in a browser).
    let wasConnected = false;
    let failures = 0;
    let lastError = null;

    c.on('connect', () => {
        if (c !== client)
            return; // a connection replaced by a newer one
        wasConnected = true;
        failures = 0;
        lastError = null;
        showConnection('connected', url);
        showProblem(null);
        c.subscribe(topicFilters(settings), { qos: 0 }, (err, granted) => {
            if (err)
                return showProblem(`Subscribe failed: ${err.message}`);
            const refused = (granted || []).filter((g) => g.qos === 128).map((g) => g.topic);
            if (refused.length)
                showProblem(`The broker refused these subscriptions (ACL?): ${refused.join(', ')}`);
        });
    });
    c.on('message', (topic, payload) => {
        if (c !== client)
            return;
        if (!board.handle(settings.prefix, topic, payload))
            panel.handle(topic, payload);
    });
    c.on('error', (err) => {
        if (c !== client)
            return;
        lastError = err.message || String(err);
        showProblem(`Connection error: ${lastError}`);
        showConnection('error', url);
    });
    c.on('close', () => {
        if (c !== client)
            return;
        if (wasConnected) {
            wasConnected = false;
            showProblem(`Lost the connection to ${url}; trying again every 3 s.`);
        } else {
            failures++;
            const tries = `${failures} ${failures === 1 ? 'try' : 'tries'}`;
            showProblem(lastError
                ? `Cannot connect to ${url} (${tries}): ${lastError}. Check user and password below.`
                : `Cannot connect to ${url} (${tries}). Is the broker running? Check the settings below.`);
        }
        showConnection('offline', url);
    });
    c.on('reconnect', () => c === client && showConnection('reconnecting', url));
}

/** Fills the settings form from `s`. */
function fillForm(s) {
    const f = $('settings-form');
    for (const key of ['host', 'port', 'path', 'username', 'password', 'prefix'])
        f.elements[key].value = s[key];
    f.elements.tls.checked = s.tls;
    $('settings-error').textContent = '';
}

/** The settings the form holds now. */
function readForm() {
    const f = $('settings-form');
    return {
        host: f.elements.host.value.trim(),
        port: Number(f.elements.port.value),
        path: f.elements.path.value.trim(),
        tls: f.elements.tls.checked,
        username: f.elements.username.value,
        password: f.elements.password.value,
        prefix: f.elements.prefix.value.trim(),
    };
}

$('settings-form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    const s = readForm();
    const problem = settingsError(s);
    $('settings-error').textContent = problem || '';
    if (problem)
        return;
    settings = s;
    saveSettings(s);
    $('settings').open = false;
    connect();
});
$('settings-reset').addEventListener('click', () => {
    clearSettings();
    settings = pageDefaults();
    fillForm(settings);
    $('settings').open = false;
    connect();
});

// Ages tick every second; every 10 s the charts slide and forget what is over an hour old.
let ticks = 0;
setInterval(() => board.tick(Date.now(), ++ticks % 10 === 0), 1000);

fillForm(settings);
connect();
