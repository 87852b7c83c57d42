// The stdio peer protocol (docs/INTEROP.md) over the standard WebRTC API. An ES module with no imports: the
// same file runs under Node with @roamhq/wrtc (wrtc_peer.mjs) and inside a Chromium page (chromium_peer.mjs),
// so both peers behave alike and differ only in the stack below RTCPeerConnection.
//
// createPeer({RTCPeerConnection, emit, exit, name, version, startedAt, configuration, log, limits}) returns
// {handle(message)}: `emit` gets every message for the driver, `exit` is called after `close`. startedAt is
// Date.now() when the program started. `configuration` is the RTCConfiguration (default: no ICE servers; see
// iceConfiguration()); `log` writes a diagnostic line (stderr). `limits` (optional) goes into the `ready` message:
// the known defects of the stack below, for features.mjs to skip (see its header).
//
// With iceTransportPolicy 'relay' the peer checks, once connected, that the selected candidate pair is relay on
// both ends (getStats) and reports an `error` otherwise, so a relay test cannot pass over a direct path.

const OPEN_TIMEOUT_MS = 30000;
const ECHO_TIMEOUT_MS = 30000;
const REPLY_GRACE_MS = 30000;
const GATHER_TIMEOUT_MS = 10000;
const SEND_TIMEOUT_MS = 30000;

const now = () => performance.now();

// Test message k of a `send` (each differs from the others, so a stale or misplaced echo cannot pass).
function makeMessage(k, binary, size) {
  if (!binary) {
    let s = '';
    for (let i = 0; i < size; ++i) s += String.fromCharCode(97 + ((i + k) % 26));
    return s;
  }
  const bytes = new Uint8Array(size);
  for (let i = 0; i < size; ++i) bytes[i] = (i * 31 + k * 7 + 1) & 255;
  return bytes.buffer;
}

// The same pattern as rtcpeer's echo test: message `seq` of `size` bytes.
function echoMessage(seq, size) {
  const bytes = new Uint8Array(size);
  for (let i = 0; i < size; ++i) bytes[i] = (i * 31 + seq * 7 + 1) & 255;
  return bytes.buffer;
}

function toBytes(data) {
  if (data instanceof ArrayBuffer) return new Uint8Array(data);
  if (ArrayBuffer.isView(data)) return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  return null;
}

// A short fingerprint of a message: kind, length and FNV-1a over its content.
function messageKey(data) {
  const bytes = typeof data === 'string' ? null : toBytes(data);
  let h = 0x811c9dc5;
  const n = bytes ? bytes.length : data.length;
  for (let i = 0; i < n; ++i) {
    h ^= bytes ? bytes[i] : data.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return `${bytes ? 'binary' : 'text'}/${n}/${h.toString(16)}`;
}

// Received messages of one channel, read in order by `next`.
class Inbox {
  constructor(channel) {
    this.items = [];
    this.waiter = null;
    channel.addEventListener('message', (e) => {
      this.items.push(e.data);
      if (this.waiter) this.waiter();
    });
  }

  async next(timeoutMs) {
    const deadline = now() + timeoutMs;
    while (this.items.length === 0) {
      const left = deadline - now();
      if (left <= 0) return undefined;
      await new Promise((resolve) => {
        const timer = setTimeout(resolve, left);
        this.waiter = () => { clearTimeout(timer); this.waiter = null; resolve(); };
      });
    }
    return this.items.shift();
  }
}

function waitOpen(channel, timeoutMs) {
  if (channel.readyState === 'open') return Promise.resolve();
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`channel ${channel.label} did not open within ${timeoutMs / 1000} s`)), timeoutMs);
    channel.addEventListener('open', () => { clearTimeout(timer); resolve(); });
    channel.addEventListener('close', () => { clearTimeout(timer); reject(new Error(`channel ${channel.label} closed before it opened`)); });
  });
}

// @roamhq/wrtc reports an unset maxRetransmits/maxPacketLifeTime as 65535 (libwebrtc's -1 as an unsigned short)
// instead of null.
const unset = (value) => (value === undefined || value === null || value === 65535 ? null : value);

function channelOptions(ch) {
  return {
    ordered: ch.ordered,
    maxRetransmits: unset(ch.maxRetransmits),
    maxPacketLifeTime: unset(ch.maxPacketLifeTime ?? ch.maxRetransmitTime),
    protocol: ch.protocol,
    negotiated: ch.negotiated,
    id: ch.id,
  };
}

// The RTCConfiguration from the peer programs' command-line options: --ice-server URL (repeatable),
// --ice-username U, --ice-credential C (for every turn:/turns: URL), --relay-only. Returns {configuration, rest}
// with the arguments it did not take, or throws on a bad one.
export function iceConfiguration(args) {
  const urls = [];
  let username;
  let credential;
  let relayOnly = false;
  const rest = [];
  for (let i = 0; i < args.length; ++i) {
    const value = () => {
      if (i + 1 >= args.length) throw new Error(`${args[i]} needs a value`);
      return args[++i];
    };
    switch (args[i]) {
      case '--ice-server': urls.push(value()); break;
      case '--ice-username': username = value(); break;
      case '--ice-credential': credential = value(); break;
      case '--relay-only': relayOnly = true; break;
      default: rest.push(args[i]);
    }
  }
  const iceServers = urls.map((url) => (/^turns?:/.test(url) ? { urls: url, username, credential } : { urls: url }));
  return { configuration: { iceServers, iceTransportPolicy: relayOnly ? 'relay' : 'all' }, rest };
}

// The selected candidate pair's two candidates from getStats, as {local, remote} stats objects (or null).
async function selectedPair(pc) {
  const stats = await pc.getStats();
  let pair = null;
  stats.forEach((s) => {
    if (s.type === 'transport' && s.selectedCandidatePairId) pair = stats.get(s.selectedCandidatePairId);
  });
  if (!pair) stats.forEach((s) => { if (!pair && s.type === 'candidate-pair' && s.nominated && s.state === 'succeeded') pair = s; });
  return pair ? { local: stats.get(pair.localCandidateId), remote: stats.get(pair.remoteCandidateId) } : null;
}

export function createPeer({ RTCPeerConnection, emit, exit, name, version, startedAt,
  configuration = { iceServers: [] }, log = () => {}, limits = undefined }) {
  let role = null;
  let pc = null;
  let ctlReported = false;
  const tests = new Map();  // label -> {channel, inbox} of test channels (`t-` labels)

  const error = (message, extra = {}) => emit({ type: 'error', message, ...extra });

  function reportCtl(channel) {
    const report = () => {
      if (ctlReported) return;
      ctlReported = true;
      emit({ type: 'open', label: 'ctl', t_ms: Date.now() - startedAt });
    };
    if (channel.readyState === 'open') report();
    else channel.addEventListener('open', report);
  }

  // A test channel: reports its options once open and its closing; echoes if `echo`, else feeds its inbox.
  function addTest(channel, origin, echo) {
    channel.binaryType = 'arraybuffer';
    const test = { channel, inbox: echo ? null : new Inbox(channel) };
    tests.set(channel.label, test);
    if (echo) channel.addEventListener('message', (e) => channel.send(e.data));
    const report = () => emit({ type: 'channel-open', label: channel.label, origin, ...channelOptions(channel) });
    if (channel.readyState === 'open') report();
    else channel.addEventListener('open', report);
    channel.addEventListener('close', () => emit({ type: 'channel-closed', label: channel.label }));
  }

  // Channels the remote side opens: ctl, echo*, sink*, t-* (test channels, echoed).
  function serveRemote(channel) {
    channel.binaryType = 'arraybuffer';
    const label = channel.label;
    if (label === 'ctl') {
      reportCtl(channel);
    } else if (label.startsWith('echo')) {
      channel.addEventListener('message', (e) => channel.send(e.data));
    } else if (label.startsWith('t-')) {
      addTest(channel, 'remote', true);
    } else if (label.startsWith('sink')) {
      let bytes = 0;
      let messages = 0;
      let first = 0;
      let last = 0;
      channel.addEventListener('message', (e) => {
        if (typeof e.data === 'string') {
          if (e.data === 'fin') {
            channel.send(JSON.stringify({ bytes, messages, recv_seconds: messages ? (last - first) / 1000 : 0 }));
          }
          return;
        }
        const t = now();
        if (messages === 0) first = t;
        last = t;
        bytes += toBytes(e.data).length;
        ++messages;
      });
    }
  }

  function createConnection() {
    if (pc) throw new Error('the peer connection exists already');
    pc = new RTCPeerConnection(configuration);
    pc.addEventListener('datachannel', (e) => serveRemote(e.channel));
    pc.addEventListener('connectionstatechange', () => {
      emit({ type: 'connection', state: pc.connectionState });
      if (pc.connectionState === 'connected') checkPath(pc);
    });
  }

  // Logs the path in use; under the relay policy anything but relay <-> relay is an error.
  async function checkPath(current) {
    let path;
    try {
      path = await selectedPair(current);
    } catch (e) {
      log(`getStats: ${e.message}`);
    }
    const describe = (c) => (c ? `${c.candidateType} ${c.protocol ?? ''} ${c.address ?? c.ip}:${c.port}` : 'unknown');
    const text = path ? `${describe(path.local)} <-> ${describe(path.remote)}` : 'no selected pair in getStats';
    log(`selected candidate pair: ${text}`);
    if (configuration.iceTransportPolicy !== 'relay') return;
    if (path?.local?.candidateType !== 'relay' || path?.remote?.candidateType !== 'relay') {
      error(`relay-only, but the selected candidate pair is ${text}`);
    }
  }

  async function gathered() {
    if (pc.iceGatheringState !== 'complete') {
      await new Promise((resolve) => {
        const timer = setTimeout(resolve, GATHER_TIMEOUT_MS);
        const check = () => {
          if (pc.iceGatheringState === 'complete') { clearTimeout(timer); resolve(); }
        };
        pc.addEventListener('icegatheringstatechange', check);
        pc.addEventListener('icecandidate', (e) => { if (!e.candidate) { clearTimeout(timer); resolve(); } });
      });
    }
    return pc.localDescription.sdp;
  }

  function requireRole(wanted, type) {
    if (role === wanted) return;
    throw new Error(`${type} is for the ${wanted}${role ? `, this peer is the ${role}` : ', and no init came first'}`);
  }

  function requireConnection(type) {
    if (!pc) throw new Error(`${type} before the peer connection exists`);
  }

  async function echoTest(m) {
    const channel = pc.createDataChannel(`echo-${typeof m.id === 'string' ? m.id : JSON.stringify(m.id)}`);
    channel.binaryType = 'arraybuffer';
    const inbox = new Inbox(channel);
    await waitOpen(channel, OPEN_TIMEOUT_MS);
    const rtts = [];
    const started = now();
    for (let seq = 0; seq < m.count; ++seq) {
      const out = echoMessage(seq, m.size);
      const sentAt = now();
      channel.send(out);
      const back = await inbox.next(ECHO_TIMEOUT_MS - (now() - started));
      if (back === undefined) throw new Error(`echo ${m.id}: no echo of message ${seq} within ${ECHO_TIMEOUT_MS / 1000} s`);
      rtts.push(now() - sentAt);
      if (typeof back === 'string' || messageKey(back) !== messageKey(out)) {
        throw new Error(`echo ${m.id}: message ${seq} came back altered (${typeof back === 'string' ? 'text' : toBytes(back).length + ' bytes'})`);
      }
    }
    channel.close();
    emit({ type: 'result', test: 'echo', id: m.id, size: m.size, count: m.count, rtt_ms: rtts });
  }

  async function throughputTest(m) {
    if (!(m.size > 0) || m.low > m.high) throw new Error('throughput: size must be positive and low <= high');
    const channel = pc.createDataChannel(`sink-${typeof m.id === 'string' ? m.id : JSON.stringify(m.id)}`);
    channel.binaryType = 'arraybuffer';
    const inbox = new Inbox(channel);
    await waitOpen(channel, OPEN_TIMEOUT_MS);
    channel.bufferedAmountLowThreshold = m.low;
    const payload = echoMessage(0, m.size);
    let bytes = 0;
    let messages = 0;
    let waits = 0;
    const start = now();
    const end = start + m.seconds * 1000;
    while (now() < end) {
      // At most `high` bytes per turn: some stacks (wrtc) update bufferedAmount only between event loop turns.
      for (let budget = m.high - channel.bufferedAmount; budget > 0; budget -= m.size) {
        channel.send(payload);
        bytes += m.size;
        ++messages;
      }
      ++waits;
      // Resumes at the low watermark; the timer re-checks in case the event is missed or bufferedAmount lags.
      await new Promise((resolve) => {
        if (channel.bufferedAmount <= m.low) { setTimeout(resolve, 0); return; }
        const timer = setTimeout(done, 20);
        function done() { clearTimeout(timer); channel.removeEventListener('bufferedamountlow', done); resolve(); }
        channel.addEventListener('bufferedamountlow', done);
      });
    }
    const sendEnd = now();
    channel.send('fin');
    let reply;
    for (;;) {
      const message = await inbox.next(REPLY_GRACE_MS - (now() - sendEnd));
      if (message === undefined) throw new Error(`throughput ${m.id}: no reply to fin within ${REPLY_GRACE_MS / 1000} s`);
      if (typeof message === 'string') { reply = message; break; }
    }
    const seconds = (now() - start) / 1000;
    channel.close();
    let remote;
    try { remote = JSON.parse(reply); } catch { throw new Error(`throughput ${m.id}: the sink's reply is not JSON`); }
    emit({
      type: 'result', test: 'throughput', id: m.id, size: m.size, bytes, messages, seconds,
      send_seconds: (sendEnd - start) / 1000, mbit_per_s: bytes * 8 / seconds / 1e6, waits, remote,
    });
  }

  // Feature extension: sends every message on test channel `label` back to back and checks that all come back.
  async function sendTest(m) {
    const test = tests.get(m.label);
    if (!test || !test.inbox) throw new Error(`send: no local test channel ${m.label}`);
    await waitOpen(test.channel, OPEN_TIMEOUT_MS);
    const out = m.messages.map((spec, k) => makeMessage(k, Boolean(spec.binary), spec.size));
    const started = now();
    for (const message of out) test.channel.send(message);
    const back = [];
    while (back.length < out.length) {
      const message = await test.inbox.next(SEND_TIMEOUT_MS - (now() - started));
      if (message === undefined) throw new Error(`send ${m.label}: ${back.length} of ${out.length} messages came back within ${SEND_TIMEOUT_MS / 1000} s`);
      back.push(message);
    }
    const sent = out.map(messageKey);
    const got = back.map(messageKey);
    if (!test.channel.ordered) { sent.sort(); got.sort(); }
    const bad = sent.findIndex((key, i) => key !== got[i]);
    if (bad >= 0) throw new Error(`send ${m.label}: message ${bad} sent as ${sent[bad]} came back as ${got[bad]}`);
    emit({ type: 'result', test: 'send', label: m.label, count: out.length, ms: now() - started });
  }

  async function handle(m) {
    switch (m.type) {
      case 'init':
        if (m.role !== 'offerer' && m.role !== 'answerer') throw new Error(`role must be offerer or answerer, not ${m.role}`);
        role = m.role;
        emit({ type: 'ready', role, name, version, ...(limits ? { limits } : {}) });
        break;
      case 'start': {
        requireRole('offerer', m.type);
        createConnection();
        serveRemote(pc.createDataChannel('ctl'));
        await pc.setLocalDescription(await pc.createOffer());
        emit({ type: 'offer', sdp: await gathered() });
        break;
      }
      case 'offer':
        requireRole('answerer', m.type);
        createConnection();
        await pc.setRemoteDescription({ type: 'offer', sdp: m.sdp });
        await pc.setLocalDescription(await pc.createAnswer());
        emit({ type: 'answer', sdp: await gathered() });
        break;
      case 'answer':
        requireRole('offerer', m.type);
        requireConnection(m.type);
        await pc.setRemoteDescription({ type: 'answer', sdp: m.sdp });
        break;
      case 'candidate':
        requireConnection(m.type);
        await pc.addIceCandidate({ candidate: m.candidate ?? '', sdpMid: m.sdpMid ?? null, sdpMLineIndex: m.sdpMLineIndex ?? null });
        break;
      case 'echo':
        requireConnection(m.type);
        await echoTest(m);
        break;
      case 'throughput':
        requireConnection(m.type);
        await throughputTest(m);
        break;
      case 'channel': {
        requireConnection(m.type);
        if (typeof m.label !== 'string' || !m.label.startsWith('t-')) throw new Error('channel: the label must start with t-');
        if (tests.has(m.label)) throw new Error(`channel: ${m.label} exists already`);
        addTest(pc.createDataChannel(m.label, m.options ?? {}), 'local', Boolean(m.echo));
        break;
      }
      case 'send':
        requireConnection(m.type);
        await sendTest(m);
        break;
      case 'close-channel': {
        const test = tests.get(m.label);
        if (!test) throw new Error(`close-channel: no test channel ${m.label}`);
        test.channel.close();
        break;
      }
      case 'close':
        if (pc) pc.close();
        emit({ type: 'closed' });
        exit();
        break;
      default:
        throw new Error(`unknown message type ${m.type}`);
    }
  }

  return {
    // Messages are handled concurrently (an echo test may run while a throughput test does); a failure is
    // reported as an error naming the message's label, if it has one.
    handle(m) {
      handle(m).catch((e) => error(String(e?.message ?? e), m?.label ? { label: m.label } : {}));
    },
  };
}
