// A stdio peer protocol peer (docs/INTEROP.md) on werift (npm `werift`, a TypeScript WebRTC stack of its own:
// ICE, DTLS, SCTP and DCEP written from scratch, nothing shared with libwebrtc or Firefox), through werift's
// RTCPeerConnection and the same peer_core.js as the Chromium and libwebrtc peers.
//   node werift_peer.mjs [--ice-server URL]... [--ice-username U --ice-credential C] [--relay-only]
// (the ICE options as in peer_core.js iceConfiguration())
// One JSON object per line on stdin and stdout; diagnostics on stderr.
//
// werift gathers no loopback address (it skips `internal` interfaces), so 127.0.0.1 is given as an additional
// host address; IPv6 is off (the namespace's ::1 is not relayed by the drivers anyway). werift's
// RTCDataChannel.send takes a Buffer or a string, not an ArrayBuffer: binary messages are wrapped without copying.
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import readline from 'node:readline';
import { createPeer, iceConfiguration } from './peer_core.js';

const startedAt = Date.now();
const require = createRequire(import.meta.url);
const werift = require('werift');
// werift's package.json is not among its exports: read it next to the resolved entry point's package folder.
const { version } = JSON.parse(readFileSync(new URL('./node_modules/werift/package.json', import.meta.url)));

function exit(code) {
  process.stdout.write('', () => process.exit(code));
}

let configuration;
try {
  const { configuration: c, rest } = iceConfiguration(process.argv.slice(2));
  if (rest.length > 0) throw new Error(`unknown argument ${rest[0]}`);
  configuration = c;
} catch (e) {
  console.error(`werift_peer: ${e.message}`);
  process.exit(2);
}

const send = werift.RTCDataChannel.prototype.send;
werift.RTCDataChannel.prototype.send = function sendArrayBuffer(data) {
  if (data instanceof ArrayBuffer) return send.call(this, Buffer.from(data));
  if (ArrayBuffer.isView(data) && !Buffer.isBuffer(data)) {
    return send.call(this, Buffer.from(data.buffer, data.byteOffset, data.byteLength));
  }
  return send.call(this, data);
};

class WeriftPeerConnection extends werift.RTCPeerConnection {
  constructor(config) {
    super({ ...config, iceAdditionalHostAddresses: ['127.0.0.1'], iceUseIpv6: false });
  }
}

// werift 0.24.4's own defects, which show against Chromium as much as against rtcpeer (features.mjs skips these
// cells and says why; docs/INTEROP.md):
const limits = [
  // RTCSctpTransport sends an empty message as zero DATA chunks but still uses up its stream sequence number, so
  // an ordered channel stalls at the receiver (waiting for a message that never comes) after werift sends one;
  // the echo of an empty message is such a send too.
  { feature: 'empty', when: 'any', why: 'sends an empty message as no DATA chunk at all but consumes its SSN, stalling the ordered channel' },
  // Its DATA_CHANNEL_OPEN sets the channel type to 0x01 (PARTIAL_RELIABLE_REXMIT) over 0x80 (unordered).
  { feature: 'max-retransmits', when: 'opener', why: 'opens an unordered maxRetransmits channel as an ordered one (DCEP channel type 0x01, not 0x81)' },
  // RTCPeerConnection.close() stops ICE before it sends the SCTP ABORT, and sends no DTLS close_notify ("todo impl
  // send alert"): the other side learns of it only when consent freshness fails (30 s).
  { feature: 'close-connection', when: 'closer', why: 'close() sends nothing (no SCTP ABORT, no DTLS close_notify); the other side sees it only when ICE consent fails' },
];

const peer = createPeer({
  configuration,
  limits,
  log: (line) => console.error(`werift_peer: ${line}`),
  RTCPeerConnection: WeriftPeerConnection,
  emit: (message) => process.stdout.write(`${JSON.stringify(message)}\n`),
  exit: () => exit(0),
  name: 'werift',
  version,
  startedAt,
});

process.on('uncaughtException', (e) => {
  process.stdout.write(`${JSON.stringify({ type: 'error', message: `werift: uncaught ${e?.stack ?? e}` })}\n`);
});
process.on('unhandledRejection', (e) => {
  process.stdout.write(`${JSON.stringify({ type: 'error', message: `werift: unhandled rejection ${e?.stack ?? e}` })}\n`);
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
    console.error('werift_peer: stdin closed, exiting');
    exit(0);
  });
