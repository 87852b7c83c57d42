// The browser demo (web/) against the rtcpeer tool, in headless Chromium driven by playwright-core:
// a file sent from the page arrives intact at `rtcpeer recv`, a file from `rtcpeer send` arrives intact in the page,
// and a chat line crosses both ways.
//   node browser_test.mjs --tool <rtcpeer> --web <web dir> --chromium <path> [--loopback-filter]
import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';

const arg = (name, fallback) => {
  const i = process.argv.indexOf(name);
  return i > 0 ? process.argv[i + 1] : fallback;
};
const tool = arg('--tool');
const webDir = arg('--web');
const chromiumPath = arg('--chromium', '/usr/bin/chromium');
const loopbackFilter = process.argv.includes('--loopback-filter');
const dir = mkdtempSync(join(tmpdir(), 'rtcpeer-browser-'));
const children = [];
const sha256 = (buf) => createHash('sha256').update(buf).digest('hex');

function run(args, { cwd } = {}) {
  const child = spawn(tool, args, { cwd, stdio: ['pipe', 'pipe', 'pipe'] });
  children.push(child);
  child.out = '';
  child.err = '';
  child.stdout.on('data', (d) => { child.out += d; });
  child.stderr.on('data', (d) => { child.err += d; });
  child.done = new Promise((resolve) => child.on('exit', (code) => resolve(code)));
  return child;
}
async function waitFor(what, predicate, ms = 30000) {
  const end = Date.now() + ms;
  for (;;) {
    const v = await predicate();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

let browser;
try {
  const server = run(['serve', '--port', '0', '--web', webDir]);
  const port = await waitFor('the server', () => server.out.match(/signaling server on ws:\/\/127\.0\.0\.1:(\d+)/)?.[1]);
  const cli = ['--server', `ws://127.0.0.1:${port}`, '--interfaces', '127.0.0.1', '--timeout', '30'];
  browser = await chromium.launch({
    executablePath: chromiumPath,
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync', '--allow-loopback-in-peer-connection',
      // Host candidates as IP addresses, not mDNS names (rtcpeer does not resolve .local names).
      '--disable-features=WebRtcHideLocalIpsWithMdns'],
  });
  const page = await browser.newPage();
  page.on('console', (m) => console.log('[page]', m.text()));
  page.on('pageerror', (e) => console.log('[page error]', e.message));
  const pageUrl = (lobby) =>
    `http://127.0.0.1:${port}/?lobby=${lobby}${loopbackFilter ? '&loopback=1' : ''}`;

  // 1. Page -> rtcpeer recv. The page creates the lobby; recv joins it.
  await page.goto(pageUrl(''));
  const lobby1 = await waitFor('the page to create a lobby', () => page.evaluate(() => window.rtcpeerDemo.lobby));
  const recv = run(['recv', '--lobby', lobby1, '-o', join(dir, 'from-page.bin'), ...cli]);
  await waitFor('the page to connect to recv', () =>
    page.evaluate(() => [...window.rtcpeerDemo.peers.values()].some((p) => p.dc.readyState === 'open')));
  const payload = randomBytes(1_500_000);
  await page.evaluate(async (b64) => {
    const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
    await window.rtcpeerDemo.sendFile('from-page.bin', bytes);
  }, payload.toString('base64'));
  const recvCode = await Promise.race([recv.done, waitFor('recv to exit', () => false, 30000)]);
  if (recvCode !== 0) throw new Error(`rtcpeer recv exited ${recvCode}: ${recv.err}`);
  const got = readFileSync(join(dir, 'from-page.bin'));
  if (sha256(got) !== sha256(payload)) throw new Error('the file from the page arrived corrupted');
  const sent = await page.evaluate(() => window.rtcpeerDemo.sent.map(({ ok, sha256 }) => ({ ok, sha256 })));
  if (!sent[0]?.ok || sent[0].sha256 !== sha256(payload)) throw new Error('the page did not get a good ack');
  console.log(`page -> rtcpeer recv: ${got.length} bytes, SHA-256 ok`);

  // 2. rtcpeer send -> page, after a chat line each way with rtcpeer chat.
  const file = join(dir, 'to-page.bin');
  const payload2 = randomBytes(2_000_000);
  writeFileSync(file, payload2);
  await page.goto(pageUrl(''));
  const lobby2 = await waitFor('a second lobby', () => page.evaluate(() => window.rtcpeerDemo.lobby));
  const chat = run(['chat', '--lobby', lobby2, ...cli]);
  await waitFor('the page to connect to chat', () =>
    page.evaluate(() => [...window.rtcpeerDemo.peers.values()].some((p) => p.dc.readyState === 'open')));
  await waitFor('chat to connect', () => chat.err.includes('connected to peer 1'));
  chat.stdin.write('hello from the terminal\n');
  await waitFor('the chat line in the page', () =>
    page.evaluate(() => window.rtcpeerDemo.log.some((l) => l.endsWith('hello from the terminal'))));
  await page.evaluate(() => window.rtcpeerDemo.sendChat('hello from the browser'));
  await waitFor('the chat line in the terminal', () => chat.out.includes('[1] hello from the browser'));
  chat.stdin.end();
  if ((await chat.done) !== 0) throw new Error(`rtcpeer chat failed: ${chat.err}`);
  console.log('chat both ways ok');

  await page.goto(pageUrl(''));
  const lobby3 = await waitFor('a third lobby', () => page.evaluate(() => window.rtcpeerDemo.lobby));
  const send = run(['send', file, '--lobby', lobby3, ...cli]);
  const sendCode = await Promise.race([send.done, waitFor('send to exit', () => false, 60000)]);
  if (sendCode !== 0) throw new Error(`rtcpeer send exited ${sendCode}: ${send.err}`);
  const received = await page.evaluate(async () => {
    const r = window.rtcpeerDemo.received[0];
    const bytes = new Uint8Array(await r.blob.arrayBuffer());
    let s = '';
    for (let i = 0; i < bytes.length; i += 0x8000) s += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
    return { name: r.name, ok: r.ok, sha256: r.sha256, b64: btoa(s) };
  });
  if (!received.ok || received.name !== 'to-page.bin') throw new Error(`page reports ${JSON.stringify(received.ok)}`);
  if (sha256(Buffer.from(received.b64, 'base64')) !== sha256(payload2)) throw new Error('the page got corrupted bytes');
  console.log(`rtcpeer send -> page: ${payload2.length} bytes, SHA-256 ok`);
  const errors = await page.evaluate(() => window.rtcpeerDemo.errors);
  if (errors.length) throw new Error(`page errors: ${errors.join('; ')}`);
  console.log('browser test passed');
  process.exitCode = 0;
} catch (e) {
  console.error('FAILED:', e.message);
  for (const c of children) if (c.err) console.error(`--- ${c.spawnargs.slice(1, 2)} stderr:\n${c.err}`);
  process.exitCode = 1;
} finally {
  if (browser) await browser.close().catch(() => {});
  for (const c of children) c.kill();
  rmSync(dir, { recursive: true, force: true });
}
