#!/usr/bin/python3
"""A stdio peer protocol peer (docs/INTEROP.md: the protocol and its feature messages, as peer_core.js speaks them) on
aiortc, Debian's python3-aiortc: run it with /usr/bin/python3 (the system Python that has aiortc).
    /usr/bin/python3 aiortc_peer.py [--verbose]
One JSON object per line on stdin and stdout; diagnostics on stderr. aioice leaves 127.0.0.1 out of its host
candidates; the tests run in a namespace holding only lo, so this peer gathers 127.0.0.1 instead.
--verbose logs aiortc's SCTP transport (every chunk sent and received) on stderr.
"""
import asyncio
import json
import logging
import sys
import time

import aioice.ice
import aiortc
from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from aiortc.sdp import candidate_from_sdp

OPEN_TIMEOUT = 30.0
ECHO_TIMEOUT = 30.0
REPLY_GRACE = 30.0
SEND_TIMEOUT = 30.0

started_at = time.monotonic()

aioice.ice.get_host_addresses = lambda use_ipv4, use_ipv6: ['127.0.0.1'] if use_ipv4 else []


def emit(message):
    sys.stdout.write(json.dumps(message) + '\n')
    sys.stdout.flush()


def log(text):
    print(f'aiortc_peer: {text}', file=sys.stderr, flush=True)


def pattern(seq, size):
    return bytes((i * 31 + seq * 7 + 1) & 255 for i in range(size))


def make_message(k, binary, size):
    if not binary:
        return ''.join(chr(97 + (i + k) % 26) for i in range(size))
    return pattern(k, size)


def key(data):
    raw = data.encode() if isinstance(data, str) else data
    h = 0x811c9dc5
    for b in raw:
        h = ((h ^ b) * 0x01000193) & 0xffffffff
    return f"{'text' if isinstance(data, str) else 'binary'}/{len(raw)}/{h:x}"


class Inbox:
    def __init__(self, channel):
        self.queue = asyncio.Queue()
        channel.on('message', self.queue.put_nowait)

    async def next(self, timeout):
        try:
            return await asyncio.wait_for(self.queue.get(), max(timeout, 0))
        except asyncio.TimeoutError:
            return None


async def wait_open(channel, timeout):
    if channel.readyState == 'open':
        return
    loop = asyncio.get_running_loop()
    opened = loop.create_future()
    channel.on('open', lambda: opened.done() or opened.set_result(None))
    channel.on('close', lambda: opened.done() or opened.set_exception(
        RuntimeError(f'channel {channel.label} closed before it opened')))
    try:
        await asyncio.wait_for(opened, timeout)
    except asyncio.TimeoutError:
        raise RuntimeError(f'channel {channel.label} did not open within {timeout:.0f} s') from None


def channel_options(ch):
    return {'ordered': ch.ordered, 'maxRetransmits': ch.maxRetransmits, 'maxPacketLifeTime': ch.maxPacketLifeTime,
            'protocol': ch.protocol, 'negotiated': ch.negotiated, 'id': ch.id}


def id_string(i):
    return i if isinstance(i, str) else json.dumps(i)


class Peer:
    def __init__(self):
        self.role = None
        self.pc = None
        self.ctl_reported = False
        self.tests = {}
        self.done = asyncio.get_running_loop().create_future()

    def report_ctl(self, channel):
        def report():
            if not self.ctl_reported:
                self.ctl_reported = True
                emit({'type': 'open', 'label': 'ctl', 't_ms': round((time.monotonic() - started_at) * 1000)})
        if channel.readyState == 'open':
            report()
        else:
            channel.on('open', report)

    def add_test(self, channel, origin, echo):
        self.tests[channel.label] = {'channel': channel, 'inbox': None if echo else Inbox(channel)}
        if echo:
            channel.on('message', channel.send)
        report = lambda: emit({'type': 'channel-open', 'label': channel.label, 'origin': origin,
                               **channel_options(channel)})
        if channel.readyState == 'open':
            report()
        else:
            channel.on('open', report)
        channel.on('close', lambda: emit({'type': 'channel-closed', 'label': channel.label}))

    def serve_remote(self, channel):
        label = channel.label
        if label == 'ctl':
            self.report_ctl(channel)
        elif label.startswith('echo'):
            channel.on('message', channel.send)
        elif label.startswith('t-'):
            self.add_test(channel, 'remote', True)
        elif label.startswith('sink'):
            sink = {'bytes': 0, 'messages': 0, 'first': 0.0, 'last': 0.0}

            def on_message(data):
                if isinstance(data, str):
                    if data == 'fin':
                        seconds = sink['last'] - sink['first'] if sink['messages'] else 0
                        channel.send(json.dumps({'bytes': sink['bytes'], 'messages': sink['messages'],
                                                 'recv_seconds': seconds}))
                    return
                t = time.monotonic()
                if sink['messages'] == 0:
                    sink['first'] = t
                sink['last'] = t
                sink['bytes'] += len(data)
                sink['messages'] += 1
            channel.on('message', on_message)

    def create_connection(self):
        if self.pc:
            raise RuntimeError('the peer connection exists already')
        self.pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        self.pc.on('datachannel', self.serve_remote)

        @self.pc.on('connectionstatechange')
        def on_state():
            emit({'type': 'connection', 'state': self.pc.connectionState})

    async def echo_test(self, m):
        channel = self.pc.createDataChannel(f"echo-{id_string(m['id'])}")
        inbox = Inbox(channel)
        await wait_open(channel, OPEN_TIMEOUT)
        rtts = []
        started = time.monotonic()
        for seq in range(m['count']):
            out = pattern(seq, m['size'])
            sent_at = time.monotonic()
            channel.send(out)
            back = await inbox.next(ECHO_TIMEOUT - (time.monotonic() - started))
            if back is None:
                raise RuntimeError(f"echo {m['id']}: no echo of message {seq} within {ECHO_TIMEOUT:.0f} s")
            rtts.append((time.monotonic() - sent_at) * 1000)
            if isinstance(back, str) or key(back) != key(out):
                raise RuntimeError(f"echo {m['id']}: message {seq} came back altered")
        channel.close()
        emit({'type': 'result', 'test': 'echo', 'id': m['id'], 'size': m['size'], 'count': m['count'],
              'rtt_ms': rtts})

    async def throughput_test(self, m):
        size, high, low = m['size'], m['high'], m['low']
        if size <= 0 or low > high:
            raise RuntimeError('throughput: size must be positive and low <= high')
        channel = self.pc.createDataChannel(f"sink-{id_string(m['id'])}")
        inbox = Inbox(channel)
        await wait_open(channel, OPEN_TIMEOUT)
        channel.bufferedAmountLowThreshold = low
        low_event = asyncio.Event()
        channel.on('bufferedamountlow', low_event.set)
        payload = pattern(0, size)
        sent = messages = waits = 0
        start = time.monotonic()
        end = start + m['seconds']
        while time.monotonic() < end:
            while channel.bufferedAmount < high:
                channel.send(payload)
                sent += size
                messages += 1
            waits += 1
            while channel.bufferedAmount > low:
                low_event.clear()
                try:
                    await asyncio.wait_for(low_event.wait(), 0.02)
                except asyncio.TimeoutError:
                    pass
        send_end = time.monotonic()
        channel.send('fin')
        while True:
            message = await inbox.next(REPLY_GRACE - (time.monotonic() - send_end))
            if message is None:
                raise RuntimeError(f"throughput {m['id']}: no reply to fin within {REPLY_GRACE:.0f} s")
            if isinstance(message, str):
                break
        seconds = time.monotonic() - start
        channel.close()
        emit({'type': 'result', 'test': 'throughput', 'id': m['id'], 'size': size, 'bytes': sent,
              'messages': messages, 'seconds': seconds, 'send_seconds': send_end - start,
              'mbit_per_s': sent * 8 / seconds / 1e6, 'waits': waits, 'remote': json.loads(message)})

    async def send_test(self, m):
        test = self.tests.get(m['label'])
        if not test or not test['inbox']:
            raise RuntimeError(f"send: no local test channel {m['label']}")
        await wait_open(test['channel'], OPEN_TIMEOUT)
        out = [make_message(k, bool(s.get('binary')), s['size']) for k, s in enumerate(m['messages'])]
        started = time.monotonic()
        for message in out:
            test['channel'].send(message)
        back = []
        while len(back) < len(out):
            message = await test['inbox'].next(SEND_TIMEOUT - (time.monotonic() - started))
            if message is None:
                raise RuntimeError(f"send {m['label']}: {len(back)} of {len(out)} messages came back within "
                                   f"{SEND_TIMEOUT:.0f} s")
            back.append(message)
        sent = [key(x) for x in out]
        got = [key(x) for x in back]
        if not test['channel'].ordered:
            sent.sort()
            got.sort()
        for i, (a, b) in enumerate(zip(sent, got)):
            if a != b:
                raise RuntimeError(f"send {m['label']}: message {i} sent as {a} came back as {b}")
        emit({'type': 'result', 'test': 'send', 'label': m['label'], 'count': len(out),
              'ms': (time.monotonic() - started) * 1000})

    def require_role(self, wanted, what):
        if self.role != wanted:
            raise RuntimeError(f'{what} is for the {wanted}, this peer is {self.role}')

    def require_connection(self, what):
        if not self.pc:
            raise RuntimeError(f'{what} before the peer connection exists')

    async def handle(self, m):
        t = m.get('type')
        if t == 'init':
            if m.get('role') not in ('offerer', 'answerer'):
                raise RuntimeError(f"role must be offerer or answerer, not {m.get('role')}")
            self.role = m['role']
            emit({'type': 'ready', 'role': self.role, 'name': 'aiortc', 'version': aiortc.__version__})
        elif t == 'start':
            self.require_role('offerer', t)
            self.create_connection()
            self.serve_remote(self.pc.createDataChannel('ctl'))
            await self.pc.setLocalDescription(await self.pc.createOffer())
            emit({'type': 'offer', 'sdp': self.pc.localDescription.sdp})
        elif t == 'offer':
            self.require_role('answerer', t)
            self.create_connection()
            await self.pc.setRemoteDescription(RTCSessionDescription(sdp=m['sdp'], type='offer'))
            await self.pc.setLocalDescription(await self.pc.createAnswer())
            emit({'type': 'answer', 'sdp': self.pc.localDescription.sdp})
        elif t == 'answer':
            self.require_role('offerer', t)
            self.require_connection(t)
            await self.pc.setRemoteDescription(RTCSessionDescription(sdp=m['sdp'], type='answer'))
        elif t == 'candidate':
            self.require_connection(t)
            text = (m.get('candidate') or '').removeprefix('candidate:')
            if text:
                c = candidate_from_sdp(text)
                c.sdpMid = m.get('sdpMid')
                c.sdpMLineIndex = m.get('sdpMLineIndex')
                await self.pc.addIceCandidate(c)
        elif t == 'echo':
            self.require_connection(t)
            await self.echo_test(m)
        elif t == 'throughput':
            self.require_connection(t)
            await self.throughput_test(m)
        elif t == 'channel':
            self.require_connection(t)
            label = m.get('label')
            if not isinstance(label, str) or not label.startswith('t-'):
                raise RuntimeError('channel: the label must start with t-')
            if label in self.tests:
                raise RuntimeError(f'channel: {label} exists already')
            o = m.get('options') or {}
            channel = self.pc.createDataChannel(
                label, ordered=o.get('ordered', True), maxRetransmits=o.get('maxRetransmits'),
                maxPacketLifeTime=o.get('maxPacketLifeTime'), protocol=o.get('protocol', ''),
                negotiated=o.get('negotiated', False), id=o.get('id'))
            self.add_test(channel, 'local', bool(m.get('echo')))
        elif t == 'send':
            self.require_connection(t)
            await self.send_test(m)
        elif t == 'close-channel':
            test = self.tests.get(m.get('label'))
            if not test:
                raise RuntimeError(f"close-channel: no test channel {m.get('label')}")
            test['channel'].close()
        elif t == 'close':
            if self.pc:
                await self.pc.close()
            emit({'type': 'closed'})
            self.done.set_result(0)
        else:
            raise RuntimeError(f'unknown message type {t}')


async def main():
    if '--verbose' in sys.argv[1:]:
        logging.basicConfig(level=logging.DEBUG, stream=sys.stderr)
        for name in ('aioice', 'aiortc.rtcdtlstransport', 'aiortc.rtcpeerconnection'):
            logging.getLogger(name).setLevel(logging.WARNING)
    elif len(sys.argv) > 1:
        log(f'unknown argument {sys.argv[1]}')
        sys.exit(2)
    peer = Peer()
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=1 << 22)
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    serial = {'init', 'start', 'offer', 'answer', 'candidate', 'close', 'channel', 'close-channel'}
    pending = set()

    async def run(m):
        try:
            await peer.handle(m)
        except Exception as e:  # every failure is reported to the driver
            error = {'type': 'error', 'message': str(e) or type(e).__name__}
            if isinstance(m, dict) and m.get('label'):
                error['label'] = m['label']
            emit(error)

    async def read():
        while True:
            line = await reader.readline()
            if not line:
                log('stdin closed, exiting')
                if not peer.done.done():
                    peer.done.set_result(0)
                return
            if not line.strip():
                continue
            try:
                m = json.loads(line)
            except ValueError:
                emit({'type': 'error', 'message': f'not a JSON object: {line.decode().strip()}'})
                continue
            if m.get('type') in serial:
                await run(m)
            else:
                task = asyncio.ensure_future(run(m))
                pending.add(task)
                task.add_done_callback(pending.discard)

    reading = asyncio.ensure_future(read())
    code = await peer.done
    reading.cancel()
    return code


if __name__ == '__main__':
    sys.exit(asyncio.run(main()))
