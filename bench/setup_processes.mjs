// Setup time between two peer processes (docs/BENCHMARKS.md, "Setup between processes"): spawns two programs that
// speak the stdio peer protocol, runs init/start/offer/answer as tests/interop/driver.mjs does (non-trickle,
// 127.0.0.1 candidates only), and times each phase on this script's clock until both `ctl` channels report open.
// Repeats and prints medians. Run it inside a loopback-only namespace:
//   sh tests/interop/peers/netns.sh node bench/setup_processes.mjs --a "build/release/tools/rtcpeer peer \
//      --interfaces 127.0.0.1" [--b "<command>"] [--runs 20]
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';

const opts = { runs: 20 };
for (let i = 2; i < process.argv.length; ++i) {
  const arg = process.argv[i];
  const value = () => process.argv[++i];
  if (arg === '--a') opts.a = value();
  else if (arg === '--b') opts.b = value();
  else if (arg === '--runs') opts.runs = Number(value());
  else throw new Error(`unknown argument ${arg}`);
}
if (!opts.a) throw new Error('--a "<command>" is required');
opts.b ??= opts.a;

class Peer {
  constructor(command) {
    const [file, ...args] = command.split(/\s+/).filter(Boolean);
    this.proc = spawn(file, args, { stdio: ['pipe', 'pipe', 'inherit'] });
    this.waiters = [];
    this.queue = [];
    createInterface({ input: this.proc.stdout }).on('line', (line) => {
      let m;
      try { m = JSON.parse(line); } catch { return; }
      m.at = performance.now();
      const w = this.waiters.findIndex((x) => x.match(m));
      if (w >= 0) this.waiters.splice(w, 1)[0].resolve(m);
      else this.queue.push(m);
    });
  }
  send(m) { this.proc.stdin.write(`${JSON.stringify(m)}\n`); }
  expect(match) {
    const i = this.queue.findIndex(match);
    if (i >= 0) return Promise.resolve(this.queue.splice(i, 1)[0]);
    return new Promise((resolve, reject) => {
      this.waiters.push({ match, resolve });
      setTimeout(() => reject(new Error('timeout')), 20000);
    });
  }
  close() { this.send({ type: 'close' }); this.proc.stdin.end(); }
}

const loopbackOnly = (sdp) => sdp.split(/\r?\n/).filter((l) => !l.startsWith('a=candidate:') ||
  (/ udp /i.test(l) && / 127\.0\.0\.1 /.test(l))).join('\r\n');

async function once() {
  const offerer = new Peer(opts.a), answerer = new Peer(opts.b);
  for (const p of [offerer, answerer]) p.send({ type: 'init', role: p === offerer ? 'offerer' : 'answerer' });
  for (const p of [offerer, answerer]) await p.expect((m) => m.type === 'ready');
  const t0 = performance.now();
  offerer.send({ type: 'start' });
  const offer = await offerer.expect((m) => m.type === 'offer');
  answerer.send({ type: 'offer', sdp: loopbackOnly(offer.sdp) });
  const answer = await answerer.expect((m) => m.type === 'answer');
  offerer.send({ type: 'answer', sdp: loopbackOnly(answer.sdp) });
  const opens = await Promise.all([offerer, answerer].map((p) => p.expect((m) => m.type === 'open')));
  const open = Math.max(...opens.map((m) => m.at));
  for (const p of [offerer, answerer]) p.close();
  await Promise.all([offerer, answerer].map((p) => new Promise((r) => p.proc.on('exit', r))));
  return { offer: offer.at - t0, answer: answer.at - offer.at, open: open - answer.at, total: open - t0 };
}

const results = [];
for (let i = 0; i < opts.runs; ++i) results.push(await once());
const median = (k) => {
  const v = results.map((r) => r[k]).sort((x, y) => x - y);
  return v[Math.floor(v.length / 2)];
};
const p90 = (k) => {
  const v = results.map((r) => r[k]).sort((x, y) => x - y);
  return v[Math.min(v.length - 1, Math.floor(v.length * 0.9))];
};
console.log(`runs ${results.length}: median (p90) ms`);
for (const k of ['offer', 'answer', 'open', 'total'])
  console.log(`  ${k.padEnd(6)} ${median(k).toFixed(1)} (${p90(k).toFixed(1)})`);
console.log('  offer: start -> offer out; answer: offer relayed -> answer out; open: answer relayed -> both ctl open');
