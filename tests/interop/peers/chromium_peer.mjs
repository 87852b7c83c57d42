// A stdio peer protocol peer (docs/INTEROP.md) on headless Chromium, driven with playwright-core. The page,
// served on 127.0.0.1 by this program, runs peer_core.js over Chromium's RTCPeerConnection; protocol lines are
// handed to it with page.evaluate and its messages come back through page.exposeFunction.
//
//   node chromium_peer.mjs [--chromium PATH] [--ice-server URL]... [--ice-username U --ice-credential C]
//                          [--relay-only]
// (the ICE options as in peer_core.js iceConfiguration(): TURN through a server, iceTransportPolicy 'relay')
//
// Chromium gathers loopback candidates only when started with --allow-loopback-in-peer-connection AND the page
// has media (camera/microphone) permission, so this program grants it and Chromium's host candidates are plain
// 127.0.0.1 addresses. Without the permission (most pages) Chromium hides host addresses behind random .local
// mDNS names and gathers no loopback at all: in a loopback-only namespace it then has no socket and cannot
// connect to anything. The driver reproduces what the other side sees in that case instead: features.mjs
// --mdns renames Chromium's candidates to .local names, --hide drops them.
import { mkdtempSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import readline from 'node:readline';
import { servePeerPage } from './page_server.mjs';
import { iceConfiguration } from './peer_core.js';

const startedAt = Date.now();
const require = createRequire(import.meta.url);
const { chromium } = require('playwright-core');

const opts = { executable: '/usr/bin/chromium' };
try {
  const { configuration, rest } = iceConfiguration(process.argv.slice(2));
  opts.configuration = configuration;
  for (let i = 0; i < rest.length; ++i) {
    if (rest[i] === '--chromium' && i + 1 < rest.length) opts.executable = rest[++i];
    else throw new Error(`unknown argument ${rest[i]}`);
  }
} catch (e) {
  console.error(`chromium_peer: ${e.message}`);
  process.exit(2);
}

const send = (message) => process.stdout.write(`${JSON.stringify(message)}\n`);

let browserVersion = 'unknown';  // filled in once Chromium runs, before the page is loaded
const page = () => `<!doctype html><meta charset="utf-8"><link rel="icon" href="data:,"><title>rtcpeer interop</title>
<script type="module">
import { createPeer } from './peer_core.js';
window.peer = createPeer({
  RTCPeerConnection,
  emit: (message) => window.peerEmit(message),
  exit: () => window.peerExit(),
  name: 'chromium',
  version: '${browserVersion}',
  startedAt: ${startedAt},
  configuration: ${JSON.stringify(opts.configuration)},
  log: (line) => console.info(line),
});
window.peerReady();
</script>`;

const server = await servePeerPage(page);

const userDataDir = mkdtempSync(join(tmpdir(), 'rtcpeer-chromium-'));
let context = null;
let exiting = false;

async function exit(code) {
  if (exiting) return;
  exiting = true;
  try {
    await context?.close();
  } catch { /* already gone */ }
  server.close();
  rmSync(userDataDir, { recursive: true, force: true });
  process.stdout.write('', () => process.exit(code));
}

// playwright adds --headless itself (headless: true) and drops it from `args`.
const args = [
  '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync',
  '--allow-loopback-in-peer-connection',
];

// Lines that arrive before the page is ready wait here.
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
    console.error('chromium_peer: stdin closed, exiting');
    exit(0);
  });

try {
  // A persistent context is how playwright takes a user data directory of our own (a fresh one per run).
  context = await chromium.launchPersistentContext(userDataDir, {
    executablePath: opts.executable, headless: true, args,
  });
  const p = context.pages()[0] ?? await context.newPage();
  const cdp = await context.newCDPSession(p);
  browserVersion = (await cdp.send('Browser.getVersion')).product.replace(/^\D*\//, '');
  await cdp.detach();
  p.on('console', (m) => console.error(`chromium_peer: console.${m.type()}: ${m.text()}`));
  p.on('pageerror', (e) => send({ type: 'error', message: `page error: ${e.message}` }));
  await p.exposeFunction('peerEmit', (message) => send(message));
  await p.exposeFunction('peerExit', () => exit(0));
  let pageReady;
  const ready = new Promise((resolve) => { pageReady = resolve; });
  await p.exposeFunction('peerReady', () => pageReady());
  const origin = `http://127.0.0.1:${server.address().port}`;
  await context.grantPermissions(['camera', 'microphone'], { origin });
  await p.goto(`${origin}/`);
  await ready;
  livePage = p;
  pending.splice(0).forEach(deliver);
} catch (e) {
  send({ type: 'error', message: `could not start Chromium: ${e.message}` });
  await exit(1);
}
