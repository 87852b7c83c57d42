// Feature matrix driver for the stdio peer protocol (docs/INTEROP.md): pairs two peer programs in both roles and
// checks the data-channel features through the protocol's feature messages (`channel`, `send`, `close-channel`,
// `channel-open`, `channel-closed`): in-band and negotiated channels, ordered and unordered, maxRetransmits and
// maxPacketLifeTime as the other side sees them, text and binary, empty, 1 B, 64 KiB and largest-advertised
// messages, 64 channels at once, a channel closed by either side, and the whole connection closed by one side.
// Echo round trips and throughput are driver.mjs's part.
//
//   node features.mjs --a "<command>" [--a-name N] --b "<command>" [--b-name N] [--roles both|ab|ba]
//                     [--closer offerer|answerer] [--hide a|b] [--mdns a|b] [--only LIST] [--timeout S]
//                     [--json FILE] [--verbose]
//
// A peer may declare known defects of its own stack in its `ready` message, as
// "limits": [{"feature": F, "when": "opener"|"receiver"|"closer"|"any", "why": TEXT}]: feature F is then skipped
// (reported as `skip`, not as a pass) where that peer has that part (opens the channel, receives it, closes the
// connection, or either). Only for defects that show against Chromium too (docs/INTEROP.md lists them).
//
// --hide X relays X's descriptions without any candidate, --mdns X with its host addresses replaced by random
// .local names (as Chromium shows them to pages without media permission): the other side then has to connect
// through the peer-reflexive candidates it learns from X's checks. --only runs just the named features and those
// whose channel they use (comma-separated; "connect" alone checks only the connection). Only 127.0.0.1 UDP candidates (and the .local
// ones made by --mdns) are relayed. Exit status: 0 if every check passed, 1 if any failed, 2 on a usage error.
import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { basename } from 'node:path';
import readline from 'node:readline';

const STEP_TIMEOUT_MS = 20000;
const CLOSE_SEEN_TIMEOUT_MS = 15000;
const EXIT_TIMEOUT_MS = 5000;
const DEFAULT_MAX_MESSAGE_SIZE = 65536;  // RFC 8841 §6: an absent a=max-message-size means 64 KiB
const FEATURES = ['inband', 'negotiated', 'unordered', 'max-retransmits', 'max-packet-lifetime', 'text-binary',
  'empty', 'sizes', 'max-size', '64-channels', 'close-channel', 'close-connection'];
// Features that use another one's channel; --only runs what they need too.
const NEEDS = { 'text-binary': 'inband', empty: 'inband', sizes: 'inband', 'max-size': 'inband', 'close-channel': 'negotiated' };

function usage(message) {
  if (message) console.error(`features: ${message}`);
  console.error('usage: node features.mjs --a "<command>" [--a-name N] --b "<command>" [--b-name N] [--roles both|ab|ba] ' +
    '[--closer offerer|answerer] [--hide a|b] [--mdns a|b] [--only LIST] [--timeout S] [--json FILE] [--verbose]');
  process.exit(2);
}

function parseArgs(argv) {
  const opts = { roles: 'both', closer: 'offerer', timeout: 240, verbose: false, json: null, hide: null, mdns: null, only: null };
  for (let i = 0; i < argv.length; ++i) {
    const arg = argv[i];
    const value = () => (i + 1 < argv.length ? argv[++i] : usage(`${arg} needs a value`));
    switch (arg) {
      case '--a': opts.a = value(); break;
      case '--b': opts.b = value(); break;
      case '--a-name': opts.aName = value(); break;
      case '--b-name': opts.bName = value(); break;
      case '--roles': opts.roles = value(); break;
      case '--closer': opts.closer = value(); break;
      case '--hide': opts.hide = value().toUpperCase(); break;
      case '--mdns': opts.mdns = value().toUpperCase(); break;
      case '--only': opts.only = value().split(','); break;
      case '--timeout': opts.timeout = Number(value()); break;
      case '--json': opts.json = value(); break;
      case '--verbose': opts.verbose = true; break;
      case '--help': usage(); break;
      default: usage(`unknown argument ${arg}`);
    }
  }
  if (!opts.a || !opts.b) usage('both --a and --b are required');
  if (!['both', 'ab', 'ba'].includes(opts.roles)) usage('--roles must be both, ab or ba');
  if (!['offerer', 'answerer'].includes(opts.closer)) usage('--closer must be offerer or answerer');
  for (const side of [opts.hide, opts.mdns]) if (side !== null && !['A', 'B'].includes(side)) usage('--hide/--mdns take a or b');
  for (const f of opts.only ?? []) if (f !== 'connect' && !FEATURES.includes(f)) usage(`unknown feature ${f}`);
  if (!(opts.timeout > 0)) usage('--timeout must be positive');
  opts.aName ??= basename(opts.a.trim().split(/\s+/)[0]);
  opts.bName ??= basename(opts.b.trim().split(/\s+/)[0]);
  return opts;
}

// ---- checks -------------------------------------------------------------------------------------------------

const results = [];

function check(ok, pairing, what, detail = '') {
  results.push({ ok: Boolean(ok), pairing, what, detail });
  console.log(`${ok ? 'ok  ' : 'FAIL'} [${pairing}] ${what}${detail ? `: ${detail}` : ''}`);
  return Boolean(ok);
}

function skip(pairing, what, detail) {
  results.push({ ok: true, skipped: true, pairing, what, detail });
  console.log(`skip [${pairing}] ${what}: ${detail}`);
}

// The declared limit of `peer` (see the header) that rules out `feature` when it plays `part`, or null.
function limitOf(peer, feature, part) {
  const limits = Array.isArray(peer.ready?.limits) ? peer.ready.limits : [];
  return limits.find((l) => l.feature === feature && (l.when === 'any' || l.when === part)) ?? null;
}

function skipReason(feature, parts) {
  for (const [peer, part] of parts) {
    const limit = limitOf(peer, feature, part);
    if (limit) return `known ${peer.name} defect as ${part}: ${limit.why}`;
  }
  return null;
}

class Failure extends Error {}

const livePeers = new Set();

// ---- one peer process ---------------------------------------------------------------------------------------

class Peer {
  constructor(spec, role, verbose) {
    this.key = spec.key;
    this.name = spec.name;
    this.role = role;
    this.queue = [];
    this.stderrTail = [];
    this.exit = null;
    this.waiters = new Set();  // several expects may wait at once (Promise.all over channels)
    this.tolerant = false;     // errors are only shown (after the other side closed the connection)
    const [file, ...args] = spec.command.trim().split(/\s+/);
    this.proc = spawn(file, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    livePeers.add(this);
    this.exited = new Promise((resolve) => {
      this.proc.on('exit', (code, signal) => { livePeers.delete(this); this.exit = { code, signal }; this.wakeUp(); resolve(this.exit); });
      this.proc.on('error', (e) => { this.exit = { error: e.message }; this.wakeUp(); resolve(this.exit); });
    });
    this.proc.stdin.on('error', () => {});
    readline.createInterface({ input: this.proc.stdout }).on('line', (line) => {
      let message;
      try { message = JSON.parse(line); } catch { message = { type: '(not JSON)', line }; }
      if (verbose) console.error(`  [${this.label} ->] ${line.slice(0, 300)}`);
      this.queue.push(message);
      this.wakeUp();
    });
    readline.createInterface({ input: this.proc.stderr }).on('line', (line) => {
      this.stderrTail.push(line);
      if (this.stderrTail.length > 40) this.stderrTail.shift();
      if (verbose) console.error(`  [${this.label}] ${line}`);
    });
  }

  get label() { return `${this.name}(${this.role})`; }

  wakeUp() {
    for (const waiter of this.waiters) waiter();
  }

  send(message) {
    if (!this.exit) this.proc.stdin.write(`${JSON.stringify(message)}\n`);
  }

  // The first message of `type` satisfying `match`. An error report, a line that is not protocol, the peer
  // exiting or the timeout fails the step; an error naming another test channel than `label` is only shown.
  async expect(type, match = () => true, timeoutMs = STEP_TIMEOUT_MS, label = undefined) {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      for (const m of this.queue.filter((e) => e?.type === 'error' && (this.tolerant || (e.label !== undefined && e.label !== label)))) {
        console.log(`note [${this.label}] error${m.label ? ` on ${m.label}` : ''}: ${m.message}`);
        this.queue.splice(this.queue.indexOf(m), 1);
      }
      const bad = this.queue.findIndex((m) => m?.type === 'error' || m?.type === '(not JSON)' || typeof m?.type !== 'string');
      if (bad >= 0) {
        const [m] = this.queue.splice(bad, 1);
        throw new Failure(m.type === 'error' ? `${this.label} reported: ${m.message}` : `${this.label} wrote a non-protocol line: ${m.line ?? JSON.stringify(m)}`);
      }
      const found = this.queue.findIndex((m) => m.type === type && match(m));
      if (found >= 0) return this.queue.splice(found, 1)[0];
      if (this.exit) throw new Failure(`${this.label} exited (${describeExit(this.exit)}) while waiting for "${type}"`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Failure(`${this.label}: no "${type}" within ${timeoutMs / 1000} s`);
      await new Promise((resolve) => {
        const waiter = () => { clearTimeout(timer); this.waiters.delete(waiter); resolve(); };
        const timer = setTimeout(waiter, left);
        this.waiters.add(waiter);
      });
    }
  }

  kill() {
    if (!this.exit) this.proc.kill('SIGKILL');
  }
}

function describeExit(exit) {
  if (exit.error) return `could not start: ${exit.error}`;
  return exit.signal ? `signal ${exit.signal}` : `status ${exit.code}`;
}

// ---- SDP ----------------------------------------------------------------------------------------------------

function candidateFields(line) {
  return line.replace(/^a=/, '').split(/\s+/);
}

// Keeps 127.0.0.1 UDP candidates only; `hide` drops every candidate, `mdns` renames host addresses to .local.
function relaySdp(sdp, { hide, mdns }) {
  const names = new Map();
  const out = [];
  for (const line of sdp.split(/\r?\n/)) {
    if (!line) continue;
    if (!line.startsWith('a=candidate:')) {
      out.push(line);
      continue;
    }
    const f = candidateFields(line);
    if (hide || f.length < 8 || f[2].toLowerCase() !== 'udp' || f[4] !== '127.0.0.1') continue;
    if (mdns && f[7] === 'host') {
      if (!names.has(f[4])) names.set(f[4], `${randomUUID()}.local`);
      f[4] = names.get(f[4]);
      out.push(`a=${f.join(' ')}`);
    } else {
      out.push(line);
    }
  }
  return `${out.join('\r\n')}\r\n`;
}

function maxMessageSize(sdp) {
  const m = sdp.match(/^a=max-message-size:(\d+)/m);
  if (!m) return DEFAULT_MAX_MESSAGE_SIZE;
  const n = Number(m[1]);
  return n === 0 ? Infinity : n;  // 0: no limit (RFC 8841 §6)
}

// ---- features -----------------------------------------------------------------------------------------------

const OPTION_KEYS = ['ordered', 'maxRetransmits', 'maxPacketLifeTime', 'protocol', 'negotiated', 'id'];

function describeOptions(o) {
  return OPTION_KEYS.map((k) => `${k}=${o[k]}`).join(' ');
}

// Both ends of test channel `label` report channel-open; the options each sees must match what was asked.
async function opened(from, to, label, wanted) {
  const [mine, theirs] = await Promise.all([
    from.expect('channel-open', (m) => m.label === label, STEP_TIMEOUT_MS, label),
    to.expect('channel-open', (m) => m.label === label, STEP_TIMEOUT_MS, label),
  ]);
  const expected = {
    ordered: wanted.ordered ?? true,
    maxRetransmits: wanted.maxRetransmits ?? null,
    maxPacketLifeTime: wanted.maxPacketLifeTime ?? null,
    protocol: wanted.protocol ?? '',
    negotiated: wanted.negotiated ?? false,
  };
  for (const [side, seen] of [[from, mine], [to, theirs]]) {
    const wrong = Object.keys(expected).filter((k) => seen[k] !== expected[k]);
    if (wanted.id !== undefined && seen.id !== wanted.id) wrong.push('id');
    if (wrong.length > 0) {
      throw new Failure(`${side.label} sees ${label} with ${describeOptions(seen)}; expected ${describeOptions({ ...expected, id: wanted.id ?? seen.id })}`);
    }
  }
  if (mine.id !== theirs.id) throw new Failure(`${label}: stream id ${mine.id} on ${from.label}, ${theirs.id} on ${to.label}`);
  return { mine, theirs };
}

async function openChannel(from, to, label, options = {}) {
  from.send({ type: 'channel', label, options });
  if (options.negotiated) to.send({ type: 'channel', label, options, echo: true });
  return opened(from, to, label, options);
}

async function exchange(from, label, messages) {
  from.send({ type: 'send', label, messages });
  const r = await from.expect('result', (m) => m.test === 'send' && m.label === label, STEP_TIMEOUT_MS, label);
  if (r.count !== messages.length) throw new Failure(`${label}: result counts ${r.count} messages, ${messages.length} were sent`);
  return r;
}

const bin = (size) => ({ binary: true, size });
const txt = (size) => ({ binary: false, size });

// Each feature: async (ctx) => detail string; throws Failure. ctx: {from, to, tag, maxSize, state}.
const featureTests = {
  async inband({ from, to, tag, state }) {
    const label = `t-inband-${tag}`;
    const { mine } = await openChannel(from, to, label, { protocol: 'chat' });
    await exchange(from, label, [txt(5), bin(5)]);
    state.inband = label;
    return `stream ${mine.id}, protocol "chat" seen on both sides`;
  },
  async negotiated({ from, to, tag, state }) {
    const label = `t-neg-${tag}`;
    const id = tag === 'o' ? 300 : 301;  // above the ids the in-band channels of this run take
    await openChannel(from, to, label, { negotiated: true, id });
    await exchange(from, label, [txt(10), bin(10)]);
    state.negotiated = label;
    return `id ${id} on both sides`;
  },
  async unordered({ from, to, tag }) {
    const label = `t-unordered-${tag}`;
    await openChannel(from, to, label, { ordered: false });
    await exchange(from, label, Array.from({ length: 40 }, (_, k) => (k % 2 ? txt(700) : bin(1200))));
    return '40 messages back (compared as a set)';
  },
  async 'max-retransmits'({ from, to, tag }) {
    const label = `t-rexmit-${tag}`;
    await openChannel(from, to, label, { ordered: false, maxRetransmits: 2 });
    await exchange(from, label, [bin(100), txt(100), bin(20000)]);
    return 'unordered, maxRetransmits=2 seen on both sides';
  },
  async 'max-packet-lifetime'({ from, to, tag }) {
    const label = `t-lifetime-${tag}`;
    await openChannel(from, to, label, { maxPacketLifeTime: 1500 });
    await exchange(from, label, [bin(100), txt(100), bin(20000)]);
    return 'maxPacketLifeTime=1500 seen on both sides';
  },
  async 'text-binary'({ from, state }) {
    await exchange(from, need(state, 'inband'), [txt(1), bin(1), txt(1000), bin(1000), txt(3), bin(3)]);
    return 'interleaved text and binary come back as sent';
  },
  async empty({ from, state }) {
    await exchange(from, need(state, 'inband'), [txt(0), bin(0), txt(1), txt(0)]);
    return 'empty text and binary messages';
  },
  async sizes({ from, state }) {
    await exchange(from, need(state, 'inband'), [bin(1), txt(1), bin(65536), txt(65536)]);
    return '1 B and 64 KiB, text and binary';
  },
  async 'max-size'({ from, state, maxSize }) {
    if (!Number.isFinite(maxSize)) throw new Failure('both sides advertise no limit; nothing to test against');
    const r = await exchange(from, need(state, 'inband'), [bin(maxSize), txt(maxSize)]);
    return `${maxSize} B (min of both a=max-message-size), ${r.ms.toFixed(1)} ms`;
  },
  async '64-channels'({ from, to, tag }) {
    const labels = Array.from({ length: 64 }, (_, i) => `t-many-${tag}-${i}`);
    for (const label of labels) from.send({ type: 'channel', label, options: {} });
    const opens = await Promise.all(labels.map((label) => opened(from, to, label, {})));
    const ids = new Set(opens.map((o) => o.mine.id));
    if (ids.size !== 64) throw new Failure(`only ${ids.size} distinct stream ids among 64 channels`);
    for (const label of labels) from.send({ type: 'send', label, messages: [txt(20), bin(2000)] });
    await Promise.all(labels.map((label) => from.expect('result', (m) => m.test === 'send' && m.label === label, STEP_TIMEOUT_MS, label)));
    return '64 open on both sides, each echoed';
  },
  async 'close-channel'({ from, to, tag, state }) {
    // Closed by the side that opened it, then one closed by the side that received it; every time both ends
    // must see CLOSED and another channel must still work.
    const other = need(state, 'negotiated');
    const details = [];
    for (const [closer, which] of [[from, 'opener'], [to, 'receiver']]) {
      const label = `t-close-${which}-${tag}`;
      await openChannel(from, to, label, {});
      await exchange(from, label, [txt(4)]);
      closer.send({ type: 'close-channel', label });
      await Promise.all([from, to].map((p) => p.expect('channel-closed', (m) => m.label === label, CLOSE_SEEN_TIMEOUT_MS, label)));
      await exchange(from, other, [txt(4), bin(4)]);
      details.push(`closed by the ${which} (${closer.label})`);
    }
    return `${details.join(', ')}: both saw CLOSED, ${other} still works`;
  },
};

function need(state, key) {
  if (!state[key]) throw new Failure(`needs the ${key} feature's channel, which did not open`);
  return state[key];
}

// ---- one pairing --------------------------------------------------------------------------------------------

async function runPairing(opts, offererSpec, answererSpec, figures) {
  const offerer = new Peer(offererSpec, 'offerer', opts.verbose);
  const answerer = new Peer(answererSpec, 'answerer', opts.verbose);
  const peers = [offerer, answerer];
  const pairing = `${offerer.key}:${offerer.label} <-> ${answerer.key}:${answerer.label}`;
  const wanted = (f) => !opts.only || opts.only.some((o) => o === f || NEEDS[o] === f);
  const transform = (peer) => ({ hide: opts.hide === peer.key, mdns: opts.mdns === peer.key });
  let connected = false;
  try {
    for (const peer of peers) peer.send({ type: 'init', role: peer.role });
    for (const peer of peers) peer.ready = await peer.expect('ready');

    const t0 = performance.now();
    offerer.send({ type: 'start' });
    const offer = await offerer.expect('offer');
    answerer.send({ type: 'offer', sdp: relaySdp(offer.sdp, transform(offerer)) });
    const answer = await answerer.expect('answer');
    offerer.send({ type: 'answer', sdp: relaySdp(answer.sdp, transform(answerer)) });
    await Promise.all(peers.map((p) => p.expect('open', (m) => m.label === 'ctl')));
    const setupMs = performance.now() - t0;
    connected = true;
    const how = [opts.hide && `${opts.hide} hidden`, opts.mdns && `${opts.mdns} as mDNS`].filter(Boolean).join(', ');
    check(true, pairing, `connect${how ? ` (${how}: through peer-reflexive candidates)` : ''}`,
      `setup ${setupMs.toFixed(0)} ms from start to ctl open on both`);
    figures.push({ pairing, test: 'setup', ms: setupMs });

    const maxSize = Math.min(maxMessageSize(offer.sdp), maxMessageSize(answer.sdp));
    for (const [from, to, tag] of [[offerer, answerer, 'o'], [answerer, offerer, 'a']]) {
      const state = {};
      for (const name of FEATURES) {
        if (name === 'close-connection' || !wanted(name)) continue;
        const why = skipReason(name, [[from, 'opener'], [to, 'receiver']]);
        if (why) {
          skip(pairing, `${name} ${from.label} -> ${to.label}`, why);
          continue;
        }
        try {
          const detail = await featureTests[name]({ from, to, tag, maxSize, state });
          check(true, pairing, `${name} ${from.label} -> ${to.label}`, detail);
        } catch (e) {
          if (!(e instanceof Failure)) throw e;
          check(false, pairing, `${name} ${from.label} -> ${to.label}`, e.message);
          if (peers.some((p) => p.exit)) throw new Failure('a peer exited');
        }
      }
    }

    if (wanted('close-connection')) {
      // The closer closes the whole connection; the other side must see its open test channels close.
      const [closer, other] = opts.closer === 'offerer' ? [offerer, answerer] : [answerer, offerer];
      const label = 't-last';
      await openChannel(closer, other, label, {});
      const why = skipReason('close-connection', [[closer, 'closer'], [other, 'receiver']]);
      if (why) skip(pairing, `close-connection by ${closer.label}`, why);
      closer.send({ type: 'close' });
      other.tolerant = true;  // it may report the connection's end as an error; what counts is that it sees it
      await closer.expect('closed', () => true, EXIT_TIMEOUT_MS);
      try {
        if (!why) {
          await other.expect('channel-closed', (m) => m.label === label, CLOSE_SEEN_TIMEOUT_MS);
          check(true, pairing, `close-connection by ${closer.label}`, `${other.label} saw ${label} close`);
        }
      } catch (e) {
        if (!(e instanceof Failure)) throw e;
        check(false, pairing, `close-connection by ${closer.label}`, e.message);
      }
    }
    for (const peer of peers) peer.send({ type: 'close' });
    for (const peer of peers) {
      const exit = await Promise.race([peer.exited, new Promise((r) => setTimeout(r, EXIT_TIMEOUT_MS, null))]);
      check(exit && exit.code === 0, pairing, `${peer.label} exited`, exit ? describeExit(exit) : 'still running');
    }
  } catch (e) {
    if (!(e instanceof Failure)) throw e;
    check(false, pairing, connected ? 'pairing aborted' : 'connect', e.message);
    for (const peer of peers) {
      if (peer.stderrTail.length === 0) continue;
      console.log(`  --- last stderr lines of ${peer.label} ---`);
      for (const line of peer.stderrTail) console.log(`  ${line}`);
    }
  } finally {
    peers.forEach((p) => p.kill());
  }
}

// ---- main ---------------------------------------------------------------------------------------------------

const opts = parseArgs(process.argv.slice(2));
const a = { key: 'A', name: opts.aName, command: opts.a };
const b = { key: 'B', name: opts.bName, command: opts.b };
const pairings = { ab: [[a, b]], ba: [[b, a]], both: [[a, b], [b, a]] }[opts.roles];

const overall = setTimeout(() => {
  check(false, 'features', `overall timeout of ${opts.timeout} s`);
  livePeers.forEach((p) => p.kill());
  process.exit(1);
}, opts.timeout * 1000);

const figures = [];
for (const [offerer, answerer] of pairings) await runPairing(opts, offerer, answerer, figures);
clearTimeout(overall);

const failed = results.filter((r) => !r.ok).length;
const skipped = results.filter((r) => r.skipped).length;
console.log(`features: ${results.length} checks, ${failed} failed${skipped ? `, ${skipped} skipped (known defects of the other stack)` : ''}`);
if (opts.json) writeFileSync(opts.json, `${JSON.stringify({ results, figures }, null, 2)}\n`);
process.exit(failed > 0 ? 1 : 0);
