// The browser demo (web/) against the rtcpeer tool, in headless Chromium driven by playwright-core:
// a file sent from the page arrives intact at `rtcpeer recv`, a file from `rtcpeer send` arrives intact in the page,
// a chat line crosses both ways, and the page is a client of `rtcpeer echo-server` (everything comes back).
// --relay TURN-URL (next to a TURN server, run_browser_test.sh --relay): the page's ICE options instead. Malformed
// ?ice= values show their error in the page and join nothing; then both transfers run with the page opened with
// ?ice=TURN-URL&relay=1 and the tools with --ice-server TURN-URL --relay-only, and the page's getStats() must show
// relay candidates on both ends of the selected pair (turn.sh checks that the server relayed the bytes).
//   node browser_test.mjs --tool <rtcpeer> --web <web dir> --chromium <path> [--loopback-filter] [--relay URL]
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
const relayUrl = arg('--relay');
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
  const cli = ['--server', `ws://127.0.0.1:${port}`, '--interfaces', '127.0.0.1', '--timeout', '30',
    ...(relayUrl ? ['--ice-server', relayUrl, '--relay-only'] : [])];
  browser = await chromium.launch({
    executablePath: chromiumPath,
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync', '--allow-loopback-in-peer-connection',
      // Host candidates as IP addresses, not mDNS names (rtcpeer does not resolve .local names).
      '--disable-features=WebRtcHideLocalIpsWithMdns'],
  });
  const page = await browser.newPage();
  const pageErrors = [];
  page.on('console', (m) => console.log('[page]', m.text()));
  page.on('pageerror', (e) => { pageErrors.push(e.message); console.log('[page error]', e.message); });
  const pageUrl = (lobby, query = '') =>
    `http://127.0.0.1:${port}/?lobby=${lobby}${loopbackFilter ? '&loopback=1' : ''}${query}`;
  const iceQuery = relayUrl ? `&ice=${encodeURIComponent(relayUrl)}&relay=1` : '';
  const openPeer = () => waitFor('the page to connect', () =>
    page.evaluate(() => [...window.rtcpeerDemo.peers.values()].some((p) => p.dc.readyState === 'open')));
  // Under --relay, both ends of the path the page uses must be relay candidates: the page logs the selected
  // candidate pair from its getStats() once connected ("peer N: path relay 127.0.0.1:P <-> relay ... (udp)").
  const checkRelayPath = async () => {
    if (!relayUrl) return;
    const line = await waitFor('the page to log its path', () =>
      page.evaluate(() => window.rtcpeerDemo.log.find((l) => / path /.test(l))));
    if (!/ path relay \S+ <-> relay \S+ /.test(line)) throw new Error(`not relay <-> relay: ${line}`);
    console.log(`the page's selected candidate pair: ${line}`);
  };

  if (relayUrl) {
    // Malformed ICE options: the error in the page, no lobby joined, no exception.
    const bad = [
      [`&ice=${encodeURIComponent('http://127.0.0.1:3478')}`, 'unsupported scheme "http:" (expected stun:, turn: or turns:)'],
      ['&ice=turn:127.0.0.1:3478', 'a TURN server needs credentials'],
      ['&ice=turn:test:hunter2@127.0.0.1:70000', 'invalid port 70000'],
      ['&ice=turn:hunter2@127.0.0.1', 'credentials in the URL must be USER:PASSWORD@'],
      ['&ice=stun:127.0.0.1&relay=1', 'relay only needs a turn: or turns: server'],
    ];
    for (const [query, expected] of bad) {
      await page.goto(pageUrl('', query));
      const shown = await page.textContent('#iceError');
      const state = await page.evaluate(() => [window.rtcpeerDemo.state, window.rtcpeerDemo.lobby]);
      if (!shown.includes(expected)) throw new Error(`${query}: the page shows "${shown}", expected "${expected}"`);
      if (shown.includes('hunter2')) throw new Error(`${query}: the error shows the credential: ${shown}`);
      if (state[0] !== 'idle' || state[1] !== '') throw new Error(`${query}: the page went on to ${state}`);
      if (!(await page.isVisible('#iceError')) || await page.isDisabled('#join')) throw new Error(`${query}: no visible error or no Join`);
    }
    if (pageErrors.length) throw new Error(`exceptions in the page: ${pageErrors.join('; ')}`);
    console.log(`${bad.length} malformed ICE options shown as errors in the page`);
  }

  // 1. Page -> rtcpeer recv. The page creates the lobby; recv joins it.
  await page.goto(pageUrl('', iceQuery));
  const lobby1 = await waitFor('the page to create a lobby', () => page.evaluate(() => window.rtcpeerDemo.lobby));
  if (relayUrl) {
    const q = new URL(page.url()).searchParams;
    if (q.getAll('ice').join() !== relayUrl || q.get('relay') !== '1') throw new Error(`the link lost the ICE options: ${page.url()}`);
  }
  const recv = run(['recv', '--lobby', lobby1, '-o', join(dir, 'from-page.bin'), ...cli]);
  await openPeer();
  await checkRelayPath();
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

  // 2. rtcpeer send -> page, after a chat line each way with rtcpeer chat (not under --relay: chat is no ICE matter).
  const file = join(dir, 'to-page.bin');
  const payload2 = randomBytes(2_000_000);
  writeFileSync(file, payload2);
  if (!relayUrl) {
    await page.goto(pageUrl(''));
    const lobby2 = await waitFor('a second lobby', () => page.evaluate(() => window.rtcpeerDemo.lobby));
    const chat = run(['chat', '--lobby', lobby2, ...cli]);
    await openPeer();
    await waitFor('chat to connect', () => chat.err.includes('connected to peer 1'));
    chat.stdin.write('hello from the terminal\n');
    await waitFor('the chat line in the page', () =>
      page.evaluate(() => window.rtcpeerDemo.log.some((l) => l.endsWith('hello from the terminal'))));
    await page.evaluate(() => window.rtcpeerDemo.sendChat('hello from the browser'));
    await waitFor('the chat line in the terminal', () => chat.out.includes('[1] hello from the browser'));
    chat.stdin.end();
    if ((await chat.done) !== 0) throw new Error(`rtcpeer chat failed: ${chat.err}`);
    console.log('chat both ways ok');
  }

  if (relayUrl) {
    // This time through the page's fields, the credentials in their own fields: a typo first, shown at once.
    const url = new URL(relayUrl.replace(/^turn:/, 'turn://'));
    const [username, password] = [decodeURIComponent(url.username), decodeURIComponent(url.password)];
    await page.goto(`http://127.0.0.1:${port}/${loopbackFilter ? '?loopback=1' : ''}`);
    await page.fill('#iceServers', relayUrl.replace(/^turn:[^@]*@/, 'trun:'));
    await waitFor('the typo to show', async () => (await page.textContent('#iceError')).includes('unsupported scheme "trun:"'));
    await page.fill('#iceServers', relayUrl.replace(/^turn:[^@]*@/, 'turn:'));
    await page.fill('#iceUsername', username);
    await page.fill('#iceCredential', password);
    await page.check('#relayOnly');
    if (await page.textContent('#iceError')) throw new Error(`the page still shows "${await page.textContent('#iceError')}"`);
    await page.click('#join');
    const q = new URL(await waitFor('the link', () => page.evaluate(() => window.rtcpeerDemo.lobby && location.href))).searchParams;
    if (q.get('ice-username') !== username || q.get('ice-credential') !== password || q.get('relay') !== '1')
      throw new Error(`the link lost the ICE fields: ${page.url()}`);
    console.log('ICE options set through the page\'s fields, carried by its link');
  } else {
    await page.goto(pageUrl(''));
  }
  const lobby3 = await waitFor('a third lobby', () => page.evaluate(() => window.rtcpeerDemo.lobby));
  const send = run(['send', file, '--lobby', lobby3, ...cli]);
  await openPeer();
  await checkRelayPath();
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

  // 3. The page as a client of `rtcpeer echo-server` (examples/echo_server.cpp), all clients on one UDP port: a
  //    chat line comes back from peer 1, and a file sent to it comes back whole (the page checks the echoed file's
  //    SHA-256 and acknowledges it; the echoed acknowledgement completes the send).
  if (!relayUrl) {
    const udpPort = String(40000 + Math.floor(Math.random() * 10000));
    const echo = run(['echo-server', '--server', `ws://127.0.0.1:${port}`, '--interfaces', '127.0.0.1', '--port', udpPort]);
    const echoLobby = await waitFor('the echo server\'s lobby', () => echo.out.match(/^lobby (\S+)$/m)?.[1]);
    await page.goto(pageUrl(echoLobby));
    await openPeer();
    await page.evaluate(() => window.rtcpeerDemo.sendChat('echo this'));
    await waitFor('the echoed chat line', () =>
      page.evaluate(() => window.rtcpeerDemo.log.some((l) => l === '[1] echo this')));
    const payload3 = randomBytes(300_000);
    const before = await page.evaluate(() => window.rtcpeerDemo.received.length);
    await page.evaluate(async (b64) => {
      const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
      await window.rtcpeerDemo.sendFile('echoed.bin', bytes);
    }, payload3.toString('base64'));
    const back = await page.evaluate((i) => window.rtcpeerDemo.received.slice(i).map(({ name, ok, sha256, size }) =>
      ({ name, ok, sha256, size })), before);
    if (back.length !== 1 || !back[0].ok || back[0].sha256 !== sha256(payload3) || back[0].size !== payload3.length)
      throw new Error(`the echoed file: ${JSON.stringify(back)}`);
    const path = await waitFor('the page to log its path', () =>
      page.evaluate(() => window.rtcpeerDemo.log.find((l) => / path /.test(l))));
    if (!path.includes(`<-> host 127.0.0.1:${udpPort} `)) throw new Error(`not the echo server's port ${udpPort}: ${path}`);
    console.log(`page -> rtcpeer echo-server -> page: a chat line and ${payload3.length} bytes, on UDP port ${udpPort}`);
  }
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
