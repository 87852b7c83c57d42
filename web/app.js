// rtcpeer browser demo: Godot's webrtc_signaling protocol over a WebSocket, one negotiated data channel (id 1)
// per peer, and the wire format of `rtcpeer send/recv/chat` (tools/transfer.cpp):
//   text {"kind":"chat","text":...}
//   text {"kind":"file","name":...,"size":N}, binary 16 KiB chunks, text {"kind":"done","sha256":hex}
//   text {"kind":"ack","ok":bool,"sha256":hex}
// Query parameters: ?lobby=NAME (join at once; "?lobby=" creates), ?server=ws://host:port,
// ?loopback=1 (use and accept only 127.0.0.1 candidates: for tests on machines with other interfaces),
// ?ice=URL (repeatable; the syntax of rtcpeer's --ice-server), ?ice-username=U&ice-credential=C (for turn: URLs
// without USER:PASSWORD@), ?relay=1 (iceTransportPolicy 'relay'). They fill the page's fields; joining writes the
// fields back into the address bar, so the link reproduces the page.
'use strict';

const MSG = { JOIN: 0, ID: 1, PEER_CONNECT: 2, PEER_DISCONNECT: 3, OFFER: 4, ANSWER: 5, CANDIDATE: 6, SEAL: 7 };
const CHUNK = 16384;
const HIGH_WATER = 1 << 20;

const params = new URLSearchParams(location.search);
const loopbackOnly = params.get('loopback') === '1';
const $ = (id) => document.getElementById(id);

// State readable by tests (tests/browser) and the console.
const demo = window.rtcpeerDemo = {
  state: 'idle', lobby: '', id: 0, peers: new Map(), log: [], received: [], sent: [], errors: [],
  rtcConfig: { iceServers: [] }, iceError: '',
};

function log(line) {
  demo.log.push(line);
  const el = $('log');
  el.textContent += line + '\n';
  el.scrollTop = el.scrollHeight;
}
function setStatus(s) {
  demo.state = s;
  $('status').textContent = s + (demo.lobby ? ` (lobby ${demo.lobby}, you are peer ${demo.id})` : '');
}
function fail(what) {
  demo.errors.push(what);
  log('error: ' + what);
}

async function sha256Hex(buffer) {
  if (!crypto.subtle) return null;  // only in secure contexts (https, or http://127.0.0.1 / localhost)
  const digest = await crypto.subtle.digest('SHA-256', buffer);
  return Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, '0')).join('');
}

// ICE servers as rtcpeer's --ice-server takes them (tools/common.cpp, README "Other networks"): stun:HOST[:PORT],
// turn:[USER:PASSWORD@]HOST[:PORT][?transport=udp|tcp], turns:[USER:PASSWORD@]HOST[:PORT][?transport=tcp], USER and
// PASSWORD percent-encoded; IPv6 hosts in brackets. Returns { config } for RTCPeerConnection, or { error } with a
// message for the page that never repeats the credentials.
function iceConfiguration(urls, username, credential, relayOnly) {
  const iceServers = [];
  for (const text of urls) {
    const m = /^([^:/?@]*):(?:([^?]*)@)?([^?]*)(?:\?(.*))?$/.exec(text);
    const bad = (why) => ({ error: `ICE server ${m ? `${m[1]}:${m[3]}${m[4] === undefined ? '' : '?' + m[4]}` : text}: ${why}` });
    if (!m || !m[1]) return bad('missing scheme (expected stun:, turn: or turns:)');
    const scheme = m[1].toLowerCase();
    if (!['stun', 'turn', 'turns'].includes(scheme)) return bad(`unsupported scheme "${m[1]}:" (expected stun:, turn: or turns:)`);
    if (m[3].startsWith('//')) return bad(`no "//" after the scheme: ${scheme}:HOST[:PORT]`);
    const hostPort = /^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9._-]+)(?::(\d{1,5}))?$/.exec(m[3]);
    if (!hostPort) return bad(m[3] ? 'expected HOST[:PORT] (IPv6 hosts in brackets, e.g. [::1])' : 'missing host');
    if (hostPort[2] !== undefined && (+hostPort[2] < 1 || +hostPort[2] > 65535)) return bad(`invalid port ${hostPort[2]} (expected 1..65535)`);
    if (m[4] !== undefined) {
      const transport = /^transport=(udp|tcp)$/i.exec(m[4])?.[1].toLowerCase();
      if (scheme === 'stun') return bad('stun: URLs take no query (transport= is for turn: and turns:)');
      if (!transport) return bad('the only query is ?transport=udp or ?transport=tcp');
      if (scheme === 'turns' && transport === 'udp') return bad('turns: runs over TLS/TCP, transport=udp is not possible');
    }
    const server = { urls: `${scheme}:${m[3]}${m[4] === undefined ? '' : '?' + m[4].toLowerCase()}` };
    if (scheme !== 'stun') {
      let user = username, password = credential;
      if (m[2] !== undefined) {
        const sep = m[2].indexOf(':');
        try {
          [user, password] = [decodeURIComponent(m[2].slice(0, sep)), decodeURIComponent(m[2].slice(sep + 1))];
        } catch { user = ''; }
        if (sep < 0 || !user) return bad('credentials in the URL must be USER:PASSWORD@ (percent-encoded)');
      }
      if (!user || !password) {
        return bad('a TURN server needs credentials: turn:USER:PASSWORD@HOST, or the TURN username and password fields');
      }
      Object.assign(server, { username: user, credential: password });
    }
    iceServers.push(server);
  }
  if (relayOnly && !iceServers.some((s) => !s.urls.startsWith('stun:'))) return { error: 'relay only needs a turn: or turns: server' };
  const config = { iceServers, iceTransportPolicy: relayOnly ? 'relay' : 'all' };
  try {
    new RTCPeerConnection(config).close();  // what the browser itself refuses, as a message too
  } catch (e) {
    return { error: `the browser refuses these ICE servers: ${e.message}` };
  }
  return { config };
}

const iceLines = () => $('iceServers').value.split('\n').map((l) => l.trim()).filter((l) => l);
function readIce() {
  const r = iceConfiguration(iceLines(), $('iceUsername').value, $('iceCredential').value, $('relayOnly').checked);
  demo.iceError = r.error || '';
  $('iceError').textContent = demo.iceError;
  return r.config;
}
// The link that reproduces this page: server, loopback and the ICE fields, plus the lobby.
function pageQuery(lobby) {
  const q = new URLSearchParams(params);
  for (const k of ['lobby', 'ice', 'ice-username', 'ice-credential', 'relay']) q.delete(k);
  q.set('lobby', lobby);
  for (const url of iceLines()) q.append('ice', url);
  if ($('iceUsername').value) q.set('ice-username', $('iceUsername').value);
  if ($('iceCredential').value) q.set('ice-credential', $('iceCredential').value);
  if ($('relayOnly').checked) q.set('relay', '1');
  return `?${q}`;
}

// "relay 127.0.0.1:50001 <-> host 127.0.0.1:40000 (udp)": the selected candidate pair, from getStats.
async function candidatePath(pc) {
  const stats = await pc.getStats();
  let pair = null;
  stats.forEach((s) => { if (s.type === 'transport' && s.selectedCandidatePairId) pair = stats.get(s.selectedCandidatePairId); });
  const side = (c) => (c ? `${c.candidateType} ${c.address}:${c.port}` : '?');
  return pair ? `${side(stats.get(pair.localCandidateId))} <-> ${side(stats.get(pair.remoteCandidateId))} (${stats.get(pair.localCandidateId)?.protocol})` : 'unknown';
}

let ws = null;
function send(type, id, data = '') {
  ws.send(JSON.stringify({ type, id, data }));
}

function join(lobby) {
  const config = readIce();
  if (!config) {
    $('join').disabled = false;
    return;
  }
  demo.rtcConfig = config;
  for (const id of ['iceServers', 'iceUsername', 'iceCredential', 'relayOnly']) $(id).disabled = true;
  const url = params.get('server') || `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/`;
  ws = new WebSocket(url);
  setStatus('connecting');
  ws.onopen = () => send(MSG.JOIN, 0, lobby);  // id 0: a mesh lobby
  ws.onclose = (e) => {
    if (demo.state !== 'sealed') setStatus(`signaling closed (${e.code}${e.reason ? ': ' + e.reason : ''})`);
    if (e.code !== 1000 && e.code !== 1005) fail(`signaling server closed the connection: ${e.code} ${e.reason}`);
  };
  ws.onmessage = (e) => {
    if (typeof e.data !== 'string') return;
    let m;
    try { m = JSON.parse(e.data); } catch { return fail('bad signaling message'); }
    onSignal(m).catch((err) => fail(String(err)));
  };
}

async function onSignal(m) {
  switch (m.type) {
    case MSG.ID: demo.id = m.id; break;
    case MSG.JOIN:
      demo.lobby = m.data;
      $('lobby').value = m.data;
      history.replaceState(null, '', pageQuery(m.data));
      setStatus('joined');
      log(`joined lobby ${m.data} as peer ${demo.id}; others join with: rtcpeer recv --lobby ${m.data}`);
      break;
    case MSG.PEER_CONNECT: addPeer(m.id); break;
    case MSG.PEER_DISCONNECT: removePeer(m.id); break;
    case MSG.OFFER: {
      const pc = demo.peers.get(m.id)?.pc;
      if (!pc) return;
      await pc.setRemoteDescription({ type: 'offer', sdp: m.data });
      await pc.setLocalDescription(await pc.createAnswer());
      send(MSG.ANSWER, m.id, pc.localDescription.sdp);
      break;
    }
    case MSG.ANSWER: await demo.peers.get(m.id)?.pc.setRemoteDescription({ type: 'answer', sdp: m.data }); break;
    case MSG.CANDIDATE: {
      const parts = m.data.split('\n').filter((p) => p.length);  // "\n" mid "\n" index "\n" candidate
      const peer = demo.peers.get(m.id);
      if (!peer || parts.length !== 3 || !/^-?\d+$/.test(parts[1])) return;
      if (loopbackOnly && !/ 127\.0\.0\.1 /.test(parts[2])) return;
      await peer.pc.addIceCandidate({ sdpMid: parts[0], sdpMLineIndex: Number(parts[1]), candidate: parts[2] });
      break;
    }
    case MSG.SEAL: setStatus('sealed'); break;
  }
}

function addPeer(id) {
  const pc = new RTCPeerConnection(demo.rtcConfig);
  const dc = pc.createDataChannel('rtcpeer', { negotiated: true, id: 1 });
  dc.binaryType = 'arraybuffer';
  dc.bufferedAmountLowThreshold = HIGH_WATER / 2;
  const peer = { pc, dc, incoming: null, acks: [] };
  demo.peers.set(id, peer);
  pc.onicecandidate = (e) => {
    if (!e.candidate || !e.candidate.candidate) return;
    if (loopbackOnly && !/ 127\.0\.0\.1 /.test(e.candidate.candidate)) return;
    send(MSG.CANDIDATE, id, `\n${e.candidate.sdpMid}\n${e.candidate.sdpMLineIndex}\n${e.candidate.candidate}`);
  };
  pc.onconnectionstatechange = async () => {
    log(`peer ${id}: ${pc.connectionState}`);
    if (pc.connectionState === 'connected') log(`peer ${id}: path ${await candidatePath(pc).catch(() => 'unknown')}`);
  };
  dc.onopen = () => { log(`peer ${id}: channel open`); updateControls(); };
  dc.onclose = () => updateControls();
  dc.onmessage = (e) => onData(id, peer, e.data).catch((err) => fail(String(err)));
  log(`peer ${id} joined`);
  // multiplayer_client.gd's rule: the larger id makes the offer.
  if (id < demo.id) {
    pc.createOffer()
      .then((offer) => pc.setLocalDescription(offer))
      .then(() => send(MSG.OFFER, id, pc.localDescription.sdp))
      .catch((err) => fail(String(err)));
  }
}

function removePeer(id) {
  const peer = demo.peers.get(id);
  if (!peer) return;
  peer.pc.close();
  demo.peers.delete(id);
  log(`peer ${id} left`);
  updateControls();
}

async function onData(id, peer, data) {
  if (typeof data !== 'string') {
    if (!peer.incoming) return fail(`peer ${id} sent data before a file header`);
    peer.incoming.chunks.push(data);
    peer.incoming.got += data.byteLength;
    $('progress').value = peer.incoming.size ? peer.incoming.got / peer.incoming.size : 1;
    return;
  }
  let m;
  try { m = JSON.parse(data); } catch { return; }
  if (m.kind === 'chat') log(`[${id}] ${m.text}`);
  else if (m.kind === 'file') peer.incoming = { name: String(m.name), size: Number(m.size), got: 0, chunks: [] };
  else if (m.kind === 'done' && peer.incoming) {
    const f = peer.incoming;
    peer.incoming = null;
    const blob = new Blob(f.chunks);
    const digest = await sha256Hex(await blob.arrayBuffer());
    const ok = f.got === f.size && (digest === null || digest === m.sha256);
    peer.dc.send(JSON.stringify({ kind: 'ack', ok, sha256: digest || m.sha256 }));
    demo.received.push({ from: id, name: f.name, size: f.got, sha256: digest, ok, blob });
    const li = document.createElement('li');
    const a = document.createElement('a');
    a.href = URL.createObjectURL(blob);
    a.download = f.name;
    a.textContent = f.name;
    li.append(a, ` from peer ${id}: ${f.got} bytes, SHA-256 ${digest ?? 'not checked (insecure context)'} ${ok ? 'OK' : 'MISMATCH'}`);
    $('files').append(li);
  } else if (m.kind === 'ack') {
    peer.acks.push(m);
  }
}

function openPeers() {
  return [...demo.peers.entries()].filter(([, p]) => p.dc.readyState === 'open');
}

function sendChat(text) {
  for (const [, p] of openPeers()) p.dc.send(JSON.stringify({ kind: 'chat', text }));
  log(`[me] ${text}`);
}

// Sends `bytes` (ArrayBuffer or typed array) as a file to every connected peer; resolves once each acknowledged.
async function sendFile(name, bytes) {
  const buffer = bytes instanceof ArrayBuffer ? bytes : bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength);
  const digest = await sha256Hex(buffer);
  const targets = openPeers();
  if (!targets.length) throw new Error('no connected peer');
  await Promise.all(targets.map(async ([id, p]) => {
    const acksBefore = p.acks.length;
    p.dc.send(JSON.stringify({ kind: 'file', name, size: buffer.byteLength }));
    for (let off = 0; off < buffer.byteLength; off += CHUNK) {
      if (p.dc.bufferedAmount > HIGH_WATER)
        await new Promise((resolve) => { p.dc.onbufferedamountlow = () => { p.dc.onbufferedamountlow = null; resolve(); }; });
      p.dc.send(buffer.slice(off, Math.min(off + CHUNK, buffer.byteLength)));
      $('progress').value = off / buffer.byteLength;
    }
    p.dc.send(JSON.stringify({ kind: 'done', sha256: digest }));
    while (p.acks.length === acksBefore) {
      if (p.dc.readyState !== 'open') throw new Error(`peer ${id} closed the channel`);
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    const ack = p.acks[p.acks.length - 1];
    demo.sent.push({ to: id, name, size: buffer.byteLength, sha256: digest, ok: ack.ok });
    log(`sent ${name} to peer ${id}: ${ack.ok ? 'verified' : 'SHA-256 MISMATCH'}`);
  }));
  $('progress').value = 1;
}

function updateControls() {
  const any = openPeers().length > 0;
  for (const id of ['chatText', 'chatSend', 'file', 'fileSend']) $(id).disabled = !any;
}

demo.join = join;
demo.sendChat = sendChat;
demo.sendFile = sendFile;

$('iceServers').value = params.getAll('ice').join('\n');
$('iceUsername').value = params.get('ice-username') ?? '';
$('iceCredential').value = params.get('ice-credential') ?? '';
$('relayOnly').checked = params.get('relay') === '1';
for (const id of ['iceServers', 'iceUsername', 'iceCredential', 'relayOnly']) $(id).oninput = readIce;
readIce();
$('join').onclick = () => { $('join').disabled = true; join($('lobby').value.trim()); };
$('chatForm').onsubmit = (e) => {
  e.preventDefault();
  if ($('chatText').value) sendChat($('chatText').value);
  $('chatText').value = '';
};
$('fileSend').onclick = async () => {
  const f = $('file').files[0];
  if (f) sendFile(f.name, await f.arrayBuffer()).catch((err) => fail(String(err)));
};
if (params.has('lobby')) {
  $('lobby').value = params.get('lobby');
  $('join').disabled = true;
  join(params.get('lobby'));
}
