// dashboard_check.js - the dashboard (web/) in a real Chromium, driven with playwright-core.
//
//   node dashboard_check.js URL DEVICES SENSOR_PID OUT_DIR
//
// Loads URL (the page as the broker serves it) and waits until the page is connected and
// each device of DEVICES (comma-separated ids) has a card with a reading, then saves
// OUT_DIR/dashboard.png; sends SIGKILL to SENSOR_PID (the midge-sensor process publishing
// for those devices) and waits until every card says offline (the sensor's will), then
// saves OUT_DIR/dashboard-offline.png, and reads the cards again 1.5 s later (their ages
// keep counting with no new reading); reloads the page (the cards come back from the retained
// readings and statuses alone) and saves OUT_DIR/dashboard-phone.png (a phone's viewport);
// then checks the settings form (a bad value refused, a new topic prefix kept over a reload).
// Prints one JSON line with what the page showed ({"ok": true, ...}) and exits 0; on any
// failure prints {"ok": false, "error": ...} and exits 1. Everything is over within 40 s.
//
// CHROMIUM names the browser (default: Debian's /usr/bin/chromium; no browser download).
'use strict';
const path = require('path');
const { chromium } = require('playwright-core');

const [url, deviceList, sensorPid, outDir] = process.argv.slice(2);
const devices = (deviceList || '').split(',').filter(Boolean);
const STEP_MS = 10000; // bound of each wait below
let browser = null;
let done = false;

async function finish(result) {
    if (done)
        return;
    done = true;
    console.log(JSON.stringify(result));
    if (browser)
        await browser.close().catch(() => {});
    process.exit(result.ok ? 0 : 1);
}
setTimeout(() => finish({ ok: false, error: 'timed out after 40 s' }), 40000).unref();

/** What each device's card shows now: {id: {temperature, humidity, status, age, error, charts}}. */
function readCards(page) {
    return page.$$eval('.card', (cards) => Object.fromEntries(cards.map((c) => [c.dataset.device, {
        temperature: c.querySelector('.temperature').textContent,
        humidity: c.querySelector('.humidity').textContent,
        status: c.querySelector('.status').dataset.status,
        age: c.querySelector('.age').textContent,
        error: c.querySelector('.device-error').hidden ? null : c.querySelector('.device-error').textContent,
        charts: c.querySelectorAll('.chart canvas').length, // uPlot draws into one canvas
    }])));
}

/** Waits until every device's card has a numeric reading and says `status`. */
function waitCards(page, ids, status) {
    return page.waitForFunction(([ids, status]) => ids.every((id) => {
        const card = document.querySelector(`.card[data-device="${CSS.escape(id)}"]`);
        return card && /^-?\d+\.\d$/.test(card.querySelector('.temperature').textContent) &&
            card.querySelector('.status').dataset.status === status;
    }), [ids, status], { timeout: STEP_MS });
}

/**
 * The settings form: a bad port is refused with a message naming the field; a new topic
 * prefix is saved, empties the board (no device under it), and is still there after a reload.
 */
async function checkSettings(page) {
    await page.click('#settings summary');
    await page.fill('#settings-form input[name="port"]', '70000');
    await page.click('#settings-form button[type="submit"]');
    const portError = await page.textContent('#settings-error');
    await page.fill('#settings-form input[name="port"]', String(new URL(url).port));
    await page.fill('#settings-form input[name="prefix"]', 'elsewhere');
    await page.click('#settings-form button[type="submit"]');
    await page.waitForSelector('#conn[data-state="connected"]', { timeout: STEP_MS });
    const cardsAfterSave = await page.$$eval('.card', (cards) => cards.length);
    await page.reload({ timeout: STEP_MS });
    await page.waitForSelector('#conn[data-state="connected"]', { timeout: STEP_MS });
    return {
        portError,
        cardsAfterSave,
        prefixAfterReload: await page.inputValue('#settings-form input[name="prefix"]'),
        prefixShown: await page.textContent('#prefix-shown'),
    };
}

async function main() {
    if (!url || !devices.length || !Number(sensorPid) || !outDir)
        throw new Error('usage: node dashboard_check.js URL DEVICES SENSOR_PID OUT_DIR');
    browser = await chromium.launch({
        executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
        // --no-sandbox: CI runs as root, where Chromium's sandbox refuses to start.
        args: ['--no-sandbox'],
        timeout: STEP_MS,
    });
    const page = await browser.newPage({ viewport: { width: 1280, height: 820 } });
    const problems = []; // anything the page complained about: the test wants none
    page.on('console', (m) => m.type() === 'error' && problems.push(`console: ${m.text()}`));
    page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
    page.on('requestfailed', (r) => problems.push(`request failed: ${r.url()} ${r.failure()?.errorText}`));

    const started = Date.now();
    const response = await page.goto(url, { timeout: STEP_MS });
    if (!response || response.status() !== 200)
        throw new Error(`GET ${url}: ${response ? response.status() : 'no response'}`);
    await page.waitForSelector('#conn[data-state="connected"]', { timeout: STEP_MS });

    await waitCards(page, devices, 'online');
    const readingMs = Date.now() - started;
    // The broker panel fills from retained $SYS messages as soon as the page subscribes.
    await page.waitForFunction(() => /^\d+$/.test(document.getElementById('sys-clients').textContent),
        null, { timeout: STEP_MS });
    // A few more readings so that the charts have lines, not single points.
    await page.waitForTimeout(3000);
    // The message rates: numbers (as broker.js formats them), one above zero with the
    // sensor publishing; measured from two $SYS counters, sys_interval apart.
    await page.waitForFunction(() => {
        const rates = ['sys-rate-in', 'sys-rate-out'].map((id) => document.getElementById(id).textContent);
        return rates.every((r) => /^\d+(\.\d+)?$/.test(r)) && rates.some((r) => Number(r) > 0);
    }, null, { timeout: STEP_MS });
    const online = await readCards(page);
    const broker = await page.$eval('.broker', (b) => ({
        clients: b.querySelector('#sys-clients').textContent,
        rateIn: b.querySelector('#sys-rate-in').textContent,
        rateOut: b.querySelector('#sys-rate-out').textContent,
        uptime: b.querySelector('#sys-uptime').textContent,
        version: b.querySelector('#sys-version').textContent,
    }));
    await page.screenshot({ path: path.join(outDir, 'dashboard.png'), fullPage: true });

    process.kill(Number(sensorPid), 'SIGKILL');
    const killed = Date.now();
    await waitCards(page, devices, 'offline');
    const offlineMs = Date.now() - killed;
    const offline = await readCards(page);
    await page.screenshot({ path: path.join(outDir, 'dashboard-offline.png'), fullPage: true });
    // No reading comes any more: the ages shown keep counting, once a second.
    await page.waitForTimeout(1500);
    const offlineLater = await readCards(page);

    // With no sensor left, a new page can only fill its cards from the retained messages.
    await page.reload({ timeout: STEP_MS });
    await waitCards(page, devices, 'offline');
    const reloaded = await readCards(page);

    await page.setViewportSize({ width: 390, height: 844 });
    await page.waitForTimeout(300); // the charts follow their cards' new width
    const phoneOverflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    await page.screenshot({ path: path.join(outDir, 'dashboard-phone.png'), fullPage: true });

    const settings = await checkSettings(page);

    await finish({ ok: true, readingMs, offlineMs, online, offline, offlineLater,
        reloaded, broker, phoneOverflow, settings, problems });
}

main().catch((e) => finish({ ok: false, error: String(e && e.stack || e) }));
