// Measures the interop matrix's figures in one run: for each pairing X:Y, driver.mjs (echo round trips and
// throughput, both role assignments) and features.mjs --only connect (setup: start to `ctl` open on both sides),
// one after the other, then prints one Markdown table (docs/INTEROP.md). Run it through run.sh, so the peers are
// in a loopback-only namespace:
//   run.sh figures.mjs --peer NAME=COMMAND... --pair X:Y... [--seconds 2] [--json FILE]
// e.g. --peer "rtcpeer=build/release/tools/rtcpeer peer --interfaces 127.0.0.1" --peer "werift=node werift_peer.mjs"
//      --pair rtcpeer:werift --pair werift:werift
// Exit status: 0 if every driver run passed, 1 otherwise (the table still shows what was measured).
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const peers = new Map();
const pairs = [];
let seconds = 2;
let jsonOut = null;
const argv = process.argv.slice(2);
for (let i = 0; i < argv.length; ++i) {
  const value = () => {
    if (i + 1 >= argv.length) throw new Error(`${argv[i]} needs a value`);
    return argv[++i];
  };
  const arg = argv[i];
  if (arg === '--peer') {
    const v = value();
    const at = v.indexOf('=');
    if (at <= 0) throw new Error(`--peer wants NAME=COMMAND, not ${v}`);
    peers.set(v.slice(0, at), v.slice(at + 1));
  } else if (arg === '--pair') {
    const [x, y] = value().split(':');
    pairs.push([x, y]);
  } else if (arg === '--seconds') {
    seconds = Number(value());
  } else if (arg === '--json') {
    jsonOut = value();
  } else {
    throw new Error(`unknown argument ${arg}`);
  }
}
for (const [x, y] of pairs) {
  for (const n of [x, y]) if (!peers.has(n)) throw new Error(`pair ${x}:${y}: no --peer ${n}`);
}

function run(script, args) {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [join(here, script), ...args], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (d) => { out += d; });
    child.on('exit', (code) => resolve({ code, out }));
  });
}

const dir = mkdtempSync(join(tmpdir(), 'rtcpeer-figures-'));
const rows = [];
const all = [];
let failed = false;
for (const [x, y] of pairs) {
  // The second instance of a self-pairing gets its own name, so the two directions stay apart.
  const yName = x === y ? `${y}2` : y;
  const common = ['--a', peers.get(x), '--a-name', x, '--b', peers.get(y), '--b-name', yName, '--roles', 'both'];
  const driverJson = join(dir, `${x}-${y}-driver.json`);
  const featuresJson = join(dir, `${x}-${y}-features.json`);
  const d = await run('../driver.mjs', [...common, '--seconds', String(seconds), '--timeout', '150', '--json', driverJson]);
  const f = await run('features.mjs', [...common, '--only', 'connect', '--timeout', '90', '--json', featuresJson]);
  if (d.code !== 0 || f.code !== 0) {
    failed = true;
    process.stdout.write(`figures: ${x}:${y} failed\n${d.out}${f.out}`);
  }
  const read = (file) => { try { return JSON.parse(readFileSync(file, 'utf8')); } catch { return { results: [], figures: [] }; } };
  const dr = read(driverJson);
  const fr = read(featuresJson);
  all.push({ pair: `${x}:${y}`, driver: dr, features: fr });
  // One row per (pairing, direction). Pairing labels look like "A:x(offerer) <-> B:y(answerer)".
  for (const pairing of [...new Set(dr.figures.map((g) => g.pairing))]) {
    const offerer = pairing.match(/:([^\s]+)\(offerer\)/)?.[1];
    const answerer = pairing.match(/:([^\s]+)\(answerer\)/)?.[1];
    const setup = fr.figures.find((g) => g.test === 'setup' && g.pairing.includes(`${offerer}(offerer)`) &&
      g.pairing.includes(`${answerer}(answerer)`));
    for (const [from, to] of [[`${offerer}(offerer)`, `${answerer}(answerer)`], [`${answerer}(answerer)`, `${offerer}(offerer)`]]) {
      const echo = (size) => {
        const g = dr.figures.find((e) => e.pairing === pairing && e.test === 'echo' && e.from === from && e.size === size);
        return g ? `${g.median.toFixed(2)} / ${g.p90.toFixed(1)} ms` : '—';
      };
      const t = dr.figures.find((e) => e.pairing === pairing && e.test === 'throughput' && e.from === from);
      rows.push([from === `${offerer}(offerer)` ? `${offerer} offers, ${answerer} answers` : '',
        `${from.replace(/\(.*/, '')} → ${to.replace(/\(.*/, '')}`,
        from === `${offerer}(offerer)` && setup ? `${setup.ms.toFixed(0)} ms` : '',
        echo(1), echo(1024), echo(65536), t ? `${t.mbit_per_s.toFixed(1)} Mbit/s` : '—']);
    }
  }
}
rmSync(dir, { recursive: true, force: true });
console.log('| pairing | direction | setup | echo 1 B | echo 1 KiB | echo 64 KiB | throughput |');
console.log('|---|---|---|---|---|---|---|');
for (const r of rows) console.log(`| ${r.join(' | ')} |`);
if (jsonOut) writeFileSync(jsonOut, `${JSON.stringify(all, null, 2)}\n`);
process.exit(failed ? 1 : 0);
