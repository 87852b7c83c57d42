#!/usr/bin/env node
// Interop driver: pairs two peer programs that speak the stdio peer protocol (docs/INTEROP.md) as offerer and
// answerer, relays their signaling, runs echo and throughput tests in both directions and checks every result.
// A peer is just a command line; nothing here knows which WebRTC stack is behind it. Plain Node (>= 18), no
// packages.
//
//   node driver.mjs --a "<command>" [--a-name NAME] --b "<command>" [--b-name NAME]
//                   [--roles both|ab|ba] [--seconds 2] [--timeout 120] [--all-candidates | --relay] [--json FILE]
//                   [--verbose]
//
// Commands are split on whitespace. --roles ab makes A the offerer, ba makes B the offerer, both runs the two
// pairings one after the other with fresh processes. Unless --all-candidates is given, the driver keeps only
// 127.0.0.1 UDP candidates in what it relays, so the peers talk over loopback only. --relay (both peers given a
// TURN server and the relay policy) keeps only UDP `typ relay` candidates and checks that each description
// offers nothing else.
// Exit status: 0 if every check passed, 1 if any failed, 2 on a usage error.
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { basename } from 'node:path';
import readline from 'node:readline';

const ECHO_SIZES = [1, 1024, 65536];
const ECHO_COUNT = 20;
const THROUGHPUT = { size: 16384, high: 1 << 20, low: 256 << 10 };
const SIGNALING_TIMEOUT_MS = 20000;
const EXIT_TIMEOUT_MS = 5000;

function usage(message) {
  if (message) console.error(`driver: ${message}`);
  console.error('usage: node driver.mjs --a "<command>" [--a-name N] --b "<command>" [--b-name N] ' +
    '[--roles both|ab|ba] [--seconds S] [--timeout S] [--all-candidates | --relay] [--json FILE] [--verbose]');
  process.exit(2);
}

function parseArgs(argv) {
  const opts = { roles: 'both', seconds: 2, timeout: 120, allCandidates: false, relay: false, verbose: false, json: null };
  for (let i = 0; i < argv.length; ++i) {
    const arg = argv[i];
    const value = () => (i + 1 < argv.length ? argv[++i] : usage(`${arg} needs a value`));
    switch (arg) {
      case '--a': opts.a = value(); break;
      case '--b': opts.b = value(); break;
      case '--a-name': opts.aName = value(); break;
      case '--b-name': opts.bName = value(); break;
      case '--roles': opts.roles = value(); break;
      case '--seconds': opts.seconds = Number(value()); break;
      case '--timeout': opts.timeout = Number(value()); break;
      case '--json': opts.json = value(); break;
      case '--all-candidates': opts.allCandidates = true; break;
      case '--relay': opts.relay = true; break;
      case '--verbose': opts.verbose = true; break;
      case '--help': usage(); break;
      default: usage(`unknown argument ${arg}`);
    }
  }
  if (!opts.a || !opts.b) usage('both --a and --b are required');
  if (!['both', 'ab', 'ba'].includes(opts.roles)) usage('--roles must be both, ab or ba');
  if (opts.relay && opts.allCandidates) usage('--relay and --all-candidates exclude each other');
  if (!(opts.seconds > 0) || !(opts.timeout > 0)) usage('--seconds and --timeout must be positive');
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

class Abort extends Error {}

const livePeers = new Set();  // killed on the overall timeout

// ---- one peer process ---------------------------------------------------------------------------------------

class Peer {
  constructor(name, command, role, verbose) {
    this.name = name;
    this.role = role;
    this.queue = [];
    this.stderrTail = [];
    this.onCandidate = null;
    this.exit = null;
    this.wakeUp = () => {};
    const [file, ...args] = command.trim().split(/\s+/);
    this.proc = spawn(file, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    livePeers.add(this);
    this.exited = new Promise((resolve) => {
      this.proc.on('exit', (code, signal) => { livePeers.delete(this); this.exit = { code, signal }; this.wakeUp(); resolve(this.exit); });
      this.proc.on('error', (e) => { this.exit = { code: null, signal: null, error: e.message }; this.wakeUp(); resolve(this.exit); });
    });
    this.proc.stdin.on('error', () => {});  // a peer that died shows up through `exit`
    readline.createInterface({ input: this.proc.stdout }).on('line', (line) => this.onLine(line));
    readline.createInterface({ input: this.proc.stderr }).on('line', (line) => {
      this.stderrTail.push(line);
      if (this.stderrTail.length > 40) this.stderrTail.shift();
      if (verbose) console.error(`  [${this.label}] ${line}`);
    });
  }

  get label() { return `${this.name}(${this.role})`; }

  send(message) {
    if (!this.exit) this.proc.stdin.write(`${JSON.stringify(message)}\n`);
  }

  onLine(line) {
    let message;
    try {
      message = JSON.parse(line);
    } catch {
      message = { type: '(not JSON)', line };
    }
    if (message?.type === 'candidate' && this.onCandidate) {
      this.onCandidate(message);
      return;
    }
    this.queue.push(message);
    this.wakeUp();
  }

  // Resolves with the first message of `type` that satisfies `match`. An error report, a line that is not
  // protocol, the process exiting or the timeout rejects, so a broken peer fails the step it broke.
  async expect(type, timeoutMs, match = () => true) {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const bad = this.queue.findIndex((m) => m?.type === 'error' || m?.type === '(not JSON)' || typeof m?.type !== 'string');
      if (bad >= 0) {
        const [m] = this.queue.splice(bad, 1);
        throw new Abort(m.type === 'error' ? `${this.label} reported: ${m.message}`
          : `${this.label} wrote a line that is not a protocol message: ${m.line ?? JSON.stringify(m)}`);
      }
      const found = this.queue.findIndex((m) => m.type === type && match(m));
      if (found >= 0) return this.queue.splice(found, 1)[0];
      if (this.exit) throw new Abort(`${this.label} exited (${describeExit(this.exit)}) while the driver waited for "${type}"`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Abort(`${this.label}: no "${type}" within ${timeoutMs / 1000} s`);
      await new Promise((resolve) => {
        const timer = setTimeout(resolve, left);
        this.wakeUp = () => { clearTimeout(timer); resolve(); };
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

// ---- SDP and candidates -------------------------------------------------------------------------------------

// "candidate:<foundation> <component> <transport> <priority> <address> <port> typ <type> ..."
function isLoopbackUdp(candidate) {
  const fields = candidate.replace(/^a=/, '').split(/\s+/);
  return fields.length >= 8 && fields[2].toLowerCase() === 'udp' && fields[4] === '127.0.0.1';
}

function isRelayUdp(candidate) {
  const fields = candidate.replace(/^a=/, '').split(/\s+/);
  return fields.length >= 8 && fields[2].toLowerCase() === 'udp' && fields[6] === 'typ' && fields[7] === 'relay';
}

// The candidates the driver passes on: all, relayed ones (--relay) or 127.0.0.1 UDP ones.
function usable(candidate, opts) {
  return opts.allCandidates || (opts.relay ? isRelayUdp(candidate) : isLoopbackUdp(candidate));
}

function filterSdp(sdp, opts) {
  const lines = sdp.split(/\r?\n/).filter((l) => l.length > 0);
  const kept = lines.filter((l) => !l.startsWith('a=candidate:') || usable(l, opts));
  return { sdp: `${kept.join('\r\n')}\r\n`, candidates: kept.filter((l) => l.startsWith('a=candidate:')).length };
}

// ---- statistics ---------------------------------------------------------------------------------------------

function percentile(sorted, p) {
  return sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))];
}

function rttSummary(rtts) {
  const sorted = [...rtts].sort((x, y) => x - y);
  return { median: percentile(sorted, 0.5), p90: percentile(sorted, 0.9), max: sorted[sorted.length - 1] };
}

const fmt = (x, digits = 3) => Number(x).toFixed(digits);

// ---- one pairing --------------------------------------------------------------------------------------------

async function runPairing(opts, offererSpec, answererSpec, figures) {
  const offerer = new Peer(offererSpec.name, offererSpec.command, 'offerer', opts.verbose);
  const answerer = new Peer(answererSpec.name, answererSpec.command, 'answerer', opts.verbose);
  const peers = [offerer, answerer];
  const pairing = `${offererSpec.key}:${offerer.label} <-> ${answererSpec.key}:${answerer.label}`;

  // Trickled candidates (a peer may send them besides the SDP) are relayed through the same filter.
  for (const [from, to] of [[offerer, answerer], [answerer, offerer]]) {
    from.onCandidate = (m) => {
      if (!m.candidate || usable(m.candidate, opts)) to.send(m);
    };
  }

  try {
    for (const peer of peers) peer.send({ type: 'init', role: peer.role });
    for (const peer of peers) {
      const ready = await peer.expect('ready', SIGNALING_TIMEOUT_MS);
      check(ready.role === peer.role && typeof ready.name === 'string', pairing, `${peer.label} ready`,
        `${ready.name} ${ready.version ?? ''}`.trim());
    }

    offerer.send({ type: 'start' });
    const relay = async (from, to, type) => {
      const message = await from.expect(type, SIGNALING_TIMEOUT_MS);
      const original = (message.sdp.match(/^a=candidate:/gm) ?? []).length;
      check(original > 0, pairing, `${from.label} ${type} carries its candidates (non-trickle)`, `${original} candidates`);
      const { sdp, candidates } = filterSdp(message.sdp, opts);
      if (!check(candidates > 0, pairing, `${from.label} ${type} has a usable candidate`,
        opts.allCandidates ? `${candidates}` : `${candidates} ${opts.relay ? 'relay/udp' : 'on 127.0.0.1/udp'}`)) {
        throw new Abort('nothing to connect to');
      }
      // The relay policy: a peer under it must not reveal any other address (W3C iceTransportPolicy 'relay').
      if (opts.relay) check(candidates === original, pairing, `${from.label} ${type} offers only relay candidates`,
        `${original - candidates} others`);
      to.send({ type, sdp });
    };
    await relay(offerer, answerer, 'offer');
    await relay(answerer, offerer, 'answer');

    for (const peer of peers) {
      const open = await peer.expect('open', SIGNALING_TIMEOUT_MS, (m) => m.label === 'ctl');
      check(typeof open.t_ms === 'number' && open.t_ms >= 0, pairing, `${peer.label} ctl channel open`,
        `t=${fmt(open.t_ms, 1)} ms`);
    }

    for (const [from, to] of [[offerer, answerer], [answerer, offerer]]) {
      for (const size of ECHO_SIZES) {
        const id = `${from.role}-${size}`;
        from.send({ type: 'echo', id, count: ECHO_COUNT, size });
        const r = await from.expect('result', SIGNALING_TIMEOUT_MS, (m) => m.test === 'echo' && m.id === id);
        const rtts = Array.isArray(r.rtt_ms) ? r.rtt_ms : [];
        const valid = r.count === ECHO_COUNT && r.size === size && rtts.length === ECHO_COUNT &&
          rtts.every((x) => Number.isFinite(x) && x >= 0);
        const s = valid ? rttSummary(rtts) : null;
        check(valid, pairing, `echo ${size} B x${ECHO_COUNT} ${from.label} -> ${to.label}`,
          s ? `rtt median ${fmt(s.median)} ms, p90 ${fmt(s.p90)} ms, max ${fmt(s.max)} ms` : JSON.stringify(r));
        if (s) figures.push({ pairing, test: 'echo', from: from.label, to: to.label, size, ...s });
      }
    }

    for (const [from, to] of [[offerer, answerer], [answerer, offerer]]) {
      const id = `${from.role}-bulk`;
      from.send({ type: 'throughput', id, seconds: opts.seconds, ...THROUGHPUT });
      const r = await from.expect('result', SIGNALING_TIMEOUT_MS + opts.seconds * 1000,
        (m) => m.test === 'throughput' && m.id === id);
      const remote = r.remote ?? {};
      const valid = r.bytes > 0 && r.messages > 0 && r.bytes === r.messages * THROUGHPUT.size &&
        remote.bytes === r.bytes && remote.messages === r.messages && r.mbit_per_s > 0 &&
        r.send_seconds >= opts.seconds * 0.9;
      check(valid, pairing, `throughput ${opts.seconds} s ${from.label} -> ${to.label}`,
        valid ? `${fmt(r.mbit_per_s, 1)} Mbit/s (${r.bytes} bytes in ${fmt(r.seconds, 2)} s, ${r.waits} waits)`
          : JSON.stringify(r));
      if (valid) figures.push({ pairing, test: 'throughput', from: from.label, to: to.label, mbit_per_s: r.mbit_per_s });
    }

    for (const peer of peers) peer.send({ type: 'close' });
    for (const peer of peers) {
      await peer.expect('closed', EXIT_TIMEOUT_MS);
      const exit = await Promise.race([peer.exited, new Promise((r) => setTimeout(r, EXIT_TIMEOUT_MS, null))]);
      check(exit && exit.code === 0, pairing, `${peer.label} closed and exited`, exit ? describeExit(exit) : 'still running');
    }
  } catch (e) {
    if (!(e instanceof Abort)) throw e;
    check(false, pairing, 'pairing aborted', e.message);
    for (const peer of peers) {
      if (peer.stderrTail.length > 0) {
        console.log(`  --- last stderr lines of ${peer.label} ---`);
        for (const line of peer.stderrTail) console.log(`  ${line}`);
      }
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
  check(false, 'driver', `overall timeout of ${opts.timeout} s`);
  livePeers.forEach((p) => p.kill());
  process.exit(1);
}, opts.timeout * 1000);

const figures = [];
for (const [offerer, answerer] of pairings) await runPairing(opts, offerer, answerer, figures);
clearTimeout(overall);

const failed = results.filter((r) => !r.ok).length;
console.log(`interop: ${results.length} checks, ${failed} failed`);
if (opts.json) writeFileSync(opts.json, `${JSON.stringify({ results, figures }, null, 2)}\n`);
process.exit(failed > 0 ? 1 : 0);
