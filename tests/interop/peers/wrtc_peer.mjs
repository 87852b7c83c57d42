// A stdio peer protocol peer (docs/INTEROP.md) on Google's libwebrtc, through @roamhq/wrtc's RTCPeerConnection.
//   node wrtc_peer.mjs [--ice-server URL]... [--ice-username U --ice-credential C] [--relay-only]
// (the ICE options as in peer_core.js iceConfiguration(): TURN through a server, iceTransportPolicy 'relay')
// One JSON object per line on stdin and stdout; diagnostics on stderr.
import { createRequire } from 'node:module';
import readline from 'node:readline';
import { createPeer, iceConfiguration } from './peer_core.js';

const startedAt = Date.now();
const require = createRequire(import.meta.url);
const wrtc = require('@roamhq/wrtc');
const { version } = require('@roamhq/wrtc/package.json');

// Exits once stdout is flushed, so the last message (`closed`) is not lost.
function exit(code) {
  process.stdout.write('', () => process.exit(code));
}

let configuration;
try {
  const { configuration: c, rest } = iceConfiguration(process.argv.slice(2));
  if (rest.length > 0) throw new Error(`unknown argument ${rest[0]}`);
  configuration = c;
} catch (e) {
  console.error(`wrtc_peer: ${e.message}`);
  process.exit(2);
}

const peer = createPeer({
  configuration,
  log: (line) => console.error(`wrtc_peer: ${line}`),
  RTCPeerConnection: wrtc.RTCPeerConnection,
  emit: (message) => process.stdout.write(`${JSON.stringify(message)}\n`),
  exit: () => exit(0),
  name: 'libwebrtc (@roamhq/wrtc)',
  version,
  startedAt,
});

readline.createInterface({ input: process.stdin })
  .on('line', (line) => {
    if (!line.trim()) return;
    let message;
    try {
      message = JSON.parse(line);
    } catch {
      process.stdout.write(`${JSON.stringify({ type: 'error', message: `not a JSON object: ${line}` })}\n`);
      return;
    }
    peer.handle(message);
  })
  .on('close', () => {
    console.error('wrtc_peer: stdin closed, exiting');
    exit(0);
  });
