// A stdio peer protocol peer (docs/INTEROP.md) on headless Firefox (Debian firefox-esr), driven with
// puppeteer-core over WebDriver BiDi. The page, served on 127.0.0.1 by this program, runs peer_core.js over
// Firefox's RTCPeerConnection; protocol lines are handed to it with page.evaluate and its messages come back
// through page.exposeFunction.
//
//   node firefox_peer.mjs [--firefox PATH] [--ice-server URL]... [--ice-username U --ice-credential C]
//                         [--relay-only]
// (the ICE options as in peer_core.js iceConfiguration())
//
// In a namespace that has only `lo`, Firefox gathers nothing by default. The preferences below change that:
// media.peerconnection.ice.loopback lets it keep loopback candidates; it gathers host addresses at all only
// while the page captures media, so the page first takes a fake microphone (getUserMedia with fake streams and
// no permission prompt) and holds it; obfuscate_host_addresses=false gives plain 127.0.0.1 instead of .local
// mDNS names.
import { mkdtempSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import readline from 'node:readline';
import { servePeerPage } from './page_server.mjs';
import { iceConfiguration } from './peer_core.js';

const startedAt = Date.now();
const require = createRequire(import.meta.url);
const puppeteer = require('puppeteer-core');

const opts = { executable: '/usr/bin/firefox-esr' };
try {
  const { configuration, rest } = iceConfiguration(process.argv.slice(2));
  opts.configuration = configuration;
  for (let i = 0; i < rest.length; ++i) {
    if (rest[i] === '--firefox' && i + 1 < rest.length) opts.executable = rest[++i];
    else throw new Error(`unknown argument ${rest[i]}`);
  }
} catch (e) {
  console.error(`firefox_peer: ${e.message}`);
  process.exit(2);
}

const send = (message) => process.stdout.write(`${JSON.stringify(message)}\n`);

const prefs = {
  'media.peerconnection.ice.loopback': true,
  'media.peerconnection.ice.obfuscate_host_addresses': false,
  'media.navigator.streams.fake': true,
  'media.navigator.permission.disabled': true,
  'media.navigator.permission.fake': true,
  // performance.now() to the microsecond, not rounded to 1 ms: the echo round trips are timed with it.
  'privacy.reduceTimerPrecision': false,
  // Nothing but the test page: no update checks, telemetry or captive portal probes.
  'app.update.enabled': false,
  'network.captive-portal-service.enabled': false,
  'datareporting.policy.dataSubmissionEnabled': false,
  'toolkit.telemetry.enabled': false,
};

let browserVersion = 'unknown';  // filled in once Firefox runs, before the page is loaded
const page = () => `<!doctype html><meta charset="utf-8"><link rel="icon" href="data:,"><title>rtcpeer interop</title>
<script type="module">
import { createPeer } from './peer_core.js';
// Held for the page's lifetime: Firefox gathers host candidates only while the page captures media.
window.microphone = await navigator.mediaDevices.getUserMedia({ audio: true });
// peerExit waits for the last peerEmit: exposed functions' calls may otherwise overtake each other, and the
// browser would close before the driver got \`closed\`.
let lastEmit = Promise.resolve();
window.peer = createPeer({
  RTCPeerConnection,
  emit: (message) => { lastEmit = window.peerEmit(message); },
  exit: () => lastEmit.finally(() => window.peerExit()),
  name: 'firefox',
  version: '${browserVersion}',
  startedAt: ${startedAt},
  configuration: ${JSON.stringify(opts.configuration)},
  log: (line) => console.info(line),
});
window.peerReady();
</script>`;

const server = await servePeerPage(page);

const userDataDir = mkdtempSync(join(tmpdir(), 'rtcpeer-firefox-'));
let browser = null;
let exiting = false;

async function exit(code) {
  if (exiting) return;
  exiting = true;
  try {
    await browser?.close();
  } catch { /* already gone */ }
  server.close();
  rmSync(userDataDir, { recursive: true, force: true });
  process.stdout.write('', () => process.exit(code));
}

const pending = [];
let livePage = null;

function deliver(message) {
  livePage.evaluate((m) => window.peer.handle(m), message).catch((e) => {
    if (!exiting) send({ type: 'error', message: `page: ${e.message}` });
  });
}

readline.createInterface({ input: process.stdin })
  .on('line', (line) => {
    if (!line.trim()) return;
    let message;
    try {
      message = JSON.parse(line);
    } catch {
      send({ type: 'error', message: `not a JSON object: ${line}` });
      return;
    }
    if (livePage) deliver(message);
    else pending.push(message);
  })
  .on('close', () => {
    console.error('firefox_peer: stdin closed, exiting');
    exit(0);
  });

try {
  browser = await puppeteer.launch({
    browser: 'firefox',
    executablePath: opts.executable,
    headless: true,
    userDataDir,
    extraPrefsFirefox: prefs,
    handleSIGINT: false,
    handleSIGTERM: false,
    handleSIGHUP: false,
  });
  browserVersion = (await browser.version()).replace(/^\D*\//, '');
  const p = (await browser.pages())[0] ?? await browser.newPage();
  p.on('console', (m) => console.error(`firefox_peer: console.${m.type()}: ${m.text()}`));
  p.on('pageerror', (e) => send({ type: 'error', message: `page error: ${e.message}` }));
  await p.exposeFunction('peerEmit', (message) => send(message));
  await p.exposeFunction('peerExit', () => exit(0));
  let pageReady;
  const ready = new Promise((resolve) => { pageReady = resolve; });
  await p.exposeFunction('peerReady', () => pageReady());
  await p.goto(`http://127.0.0.1:${server.address().port}/`);
  await ready;
  livePage = p;
  pending.splice(0).forEach(deliver);
} catch (e) {
  send({ type: 'error', message: `could not start Firefox: ${e.message}` });
  await exit(1);
}
