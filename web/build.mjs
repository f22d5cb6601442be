// build.mjs - `npm run build`: the dashboard into dist/ (what the broker's http_dir serves):
// index.html, main.js (our modules with MQTT.js and uPlot, bundled and minified) and
// main.css (ours with uPlot's, from main.js's CSS import), each with a source map.
import { copyFile, mkdir, rm } from 'node:fs/promises';
import * as esbuild from 'esbuild';

const here = new URL('.', import.meta.url).pathname;
const dist = `${here}dist`;

await rm(dist, { recursive: true, force: true });
await mkdir(dist);
await esbuild.build({
    entryPoints: { main: `${here}src/main.js` },
    bundle: true,
    minify: true,
    sourcemap: true,
    format: 'iife',
    platform: 'browser',
    target: ['es2020'],
    outdir: dist,
    logLevel: 'warning',
});
await copyFile(`${here}src/index.html`, `${dist}/index.html`);
console.log(`dashboard built in ${dist}`);
