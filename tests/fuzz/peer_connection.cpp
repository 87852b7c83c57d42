// Stateful fuzz target: the whole sans-IO PeerConnection core (src/peer/connection.hpp) fed by a hostile peer.
// Per input, our Connection and a scripted peer (tests/fuzz/hostile_peer.hpp) run a real handshake in memory and
// in virtual time (ICE, DTLS, SCTP, the DCEP OPEN of one channel); then the input drives the established
// association. The input is:
//   [config u8] then records [op u8][len u16][body]
// config: bit 0 the peer offers I-DATA, bit 1 it accepts zero checksums, bit 2 our maxMessageSize is 16 KiB
// (limits are reached with less input), bit 3 the peer answers DCEP OPENs with an ACK, bit 4 the peer is the DTLS
// server (a=setup:passive; we are the client and open channels on even stream ids).
// Ops (op % 12): raw SCTP packet (chunks behind a valid header, optionally TSN-relative and repeated), a message
// from the peer's association (any PPID, any size), a DCEP OPEN from the peer, time passing, and our API calls
// (createDataChannel, send, close, read, release), peer stream resets, raw datagrams, shutdown/abort/close.
//
// After every op the target checks what a user relies on: no crash or hang (bounded outputs, no timer that fires
// without moving its deadline), bounded memory (unread messages within the receive window; the heap within a fixed
// budget), and consistent states (connection states only move forward, a channel's readyState never goes back, no
// message for an unknown channel or after the connection ended, no message above our max-message-size, no more
// peer-opened channels than the limit). After an input a legitimate peer could have sent (no raw packets or
// datagrams, no abort, nothing above our max-message-size), the connection must still be up and a new channel must
// carry a message each way.
// Debugging a seed: PEER_FUZZ_VERBOSE=1 (a summary), PEER_FUZZ_LOG=1 (the library's log), PEER_FUZZ_TRACE=1 (every
// SCTP packet's chunks, both ways).
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <map>
#include <memory>
#include <string>
#include <vector>

// The heap check needs AddressSanitizer's allocator statistics (the fuzz build, and the asan replay build).
#if defined(__SANITIZE_ADDRESS__)
#define RTCPEER_FUZZ_HEAP 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define RTCPEER_FUZZ_HEAP 1
#endif
#endif
#ifdef RTCPEER_FUZZ_HEAP
extern "C" std::size_t __sanitizer_get_current_allocated_bytes();
#endif

#include "common/log.hpp"
#include "datachannel/channel_manager.hpp"
#include "datachannel/dcep.hpp"
#include "fuzz/hostile_peer.hpp"
#include "peer/connection.hpp"
#include "rtcpeer/log.hpp"
#include "sdp/sdp.hpp"

using namespace rtcpeer;

namespace {

[[noreturn]] void violated(const char* what, long long a = 0, long long b = 0) {
  std::fprintf(stderr, "peer_connection fuzz: invariant violated: %s (%lld, %lld)\n", what, a, b);
  std::abort();
}
Bytes bytesOf(std::string_view s) { return Bytes(s.begin(), s.end()); }

#define CHECK(cond, ...)                         \
  do {                                           \
    if (!(cond)) violated(#cond, ##__VA_ARGS__); \
  } while (0)

// The heap the whole connection (both sides, the harness's inbox) may hold above its state after the handshake:
// the 4 MiB receive window (unread messages count against it), a message in reassembly beyond it, the held-back
// messages of a reused stream, send queues filled by at most a few MiB of input, and slack for the allocator.
constexpr std::size_t kHeapBudget = 48u << 20;
constexpr std::size_t kReceiveWindow = 4u << 20;  // sctp::Options' default, what Connection uses

const std::shared_ptr<const dtls::Certificate>& certificate(int which) {
  static const std::shared_ptr<const dtls::Certificate> certs[2] = {*dtls::Certificate::generate(),
                                                                    *dtls::Certificate::generate()};
  return certs[which];
}

struct Channel {
  peer::ChannelKey key = 0;
  ReadyState state = ReadyState::Connecting;
  bool remote = false;    // opened by the peer
  bool released = false;  // we dropped the public object (releaseChannel)
};

class Harness {
 public:
  Harness(std::uint8_t config, SeededRandom& ours, SeededRandom& theirs)
      : ourAddr_(*SocketAddress::parse("127.0.0.1", 50000)), peerAddr_(*SocketAddress::parse("127.0.0.1", 40000)) {
    Configuration c;
    maxMessage_ = config & 4 ? 16 * 1024 : c.maxMessageSize;
    c.maxMessageSize = maxMessage_;
    conn_ = std::make_unique<peer::Connection>(c, certificate(0), ours);

    fuzz::HostilePeer::Setup s;
    s.certificate = certificate(1);
    s.remoteFingerprint = certificate(0)->sha256();
    s.ufrag = "hostilepeer0";
    s.pwd = "hostilepeerpassword01234";
    s.address = peerAddr_;
    s.ours = ourAddr_;
    s.iData = config & 1;
    s.zeroChecksum = config & 2;
    s.autoAck = config & 8;
    s.dtlsServer = config & 16;
    peer_ = std::make_unique<fuzz::HostilePeer>(s, theirs);
    setup_ = s;
  }

  // The handshake: our offer (one channel), the peer's answer, ICE/DTLS/SCTP until both sides are up.
  void connect() {
    auto key = conn_->createDataChannel("c0", DataChannelInit{}, now_);
    if (!key) violated("createDataChannel before the offer failed");
    channels_.push_back({*key});
    CHECK(conn_->createOffer().code == Error::Ok);
    drain();
    CHECK(!offer_.empty());
    CHECK(conn_->setLocalDescription("offer", offer_, now_).code == Error::Ok);
    CHECK(conn_->wantsLocalAddresses());
    conn_->setLocalAddresses(std::span<const SocketAddress>(&ourAddr_, 1), now_);
    auto parsed = sdp::parse(offer_);
    CHECK(parsed.ok());
    sdp::LocalParams p;
    p.sessionId = 42;
    p.sessionVersion = 1;
    p.iceUfrag = setup_.ufrag;
    p.icePwd = setup_.pwd;
    auto fp = sdp::Fingerprint{"sha-256", certificate(1)->fingerprint()};
    p.fingerprint = fp;
    p.setup = setup_.dtlsServer ? sdp::Setup::Passive : sdp::Setup::Active;
    p.maxMessageSize = 256 * 1024;
    p.candidates = {"candidate:1 1 udp 2130706431 127.0.0.1 40000 typ host"};
    p.endOfCandidates = true;
    auto answer = sdp::generateAnswer(*parsed, p);
    CHECK(answer.ok());
    CHECK(conn_->setRemoteDescription("answer", *answer, now_).code == Error::Ok);
    for (int step = 0; step < 400 && !(connected_ && peer_->established()); ++step) advance(Duration(10'000));
    if (!connected_ || !peer_->established()) violated("the handshake did not complete", static_cast<int>(state_));
#ifdef RTCPEER_FUZZ_HEAP
    heapBase_ = __sanitizer_get_current_allocated_bytes();
#endif
  }

  void run(ByteReader& r) {
    int ops = 0;
    while (r.remaining() >= 3 && ++ops <= 256) {
      const std::uint8_t op = r.u8();
      const std::uint16_t len = r.u16() & 0x0FFF;
      const ByteView body = r.bytes(std::min<std::size_t>(len, r.remaining()));
      apply(op, body);
      pump();
      check();
    }
    // Whatever the input did, time passing and a close end cleanly.
    for (int i = 0; i < 20; ++i) advance(Duration(500'000));
    check();
    readAll();
    if (!hostile_) probe();
    if (std::getenv("PEER_FUZZ_VERBOSE")) report();
    conn_->close(now_);
    drain();
    CHECK(conn_->closed());
  }

  // Liveness after an input that only used the API, time and what a peer may legitimately send (messages,
  // OPENs, stream resets, however malformed at the DCEP level): the connection is still up and a new channel
  // carries a message each way. (Raw SCTP packets, raw datagrams and aborts may end the association.)
  void probe() {
    advance(Duration(1'000'000));
    CHECK(state_ == ConnectionState::Connected, static_cast<int>(state_));
    auto key = conn_->createDataChannel("probe", DataChannelInit{}, now_);
    if (!key) return;  // every stream id taken: a legitimate refusal
    channels_.push_back({*key});
    advance(Duration(100'000));
    // A stream reset the peer requested earlier may still be queued behind its data and close the new channel
    // legitimately (the streams it named may include the probe's).
    if (resets_ && conn_->readyState(*key) != ReadyState::Open) return;
    CHECK(conn_->readyState(*key) == ReadyState::Open, static_cast<int>(conn_->readyState(*key)));
    const auto* info = conn_->channelInfo(*key);
    CHECK(info && info->stream);
    CHECK(conn_->send(*key, asBytes("probe-out"), false, now_).code == Error::Ok);
    advance(Duration(1'000'000));
    if (resets_ && conn_->readyState(*key) != ReadyState::Open) return;
    const auto& got = peer_->lastMessage();
    CHECK(got.stream == *info->stream && got.ppid == 53 && got.payload == bytesOf("probe-out"), got.stream,
          static_cast<long long>(got.ppid));
    auto sent = peer_->association().send(*info->stream, 53, asBytes("probe-in"), {}, now_);
    if (!sent.ok())
      std::fprintf(stderr, "peer send: %s, state %s\n", sent.reason().c_str(),
                   sctp::toString(peer_->association().state()));
    CHECK(sent.ok());
    readAll();
    advance(Duration(1'000'000));
    if (resets_ && conn_->readyState(*key) != ReadyState::Open) return;
    bool found = false;
    for (auto& m : inbox_) found |= m.key == *key && m.data == bytesOf("probe-in");
    CHECK(found, static_cast<long long>(inbox_.size()));
  }

  // What the input did, for whoever writes seeds (PEER_FUZZ_VERBOSE=1).
  void report() {
    const ConnectionStats st = conn_->stats();
    std::fprintf(stderr, "state %d, %zu channels (", static_cast<int>(state_), channels_.size());
    for (auto& c : channels_) std::fprintf(stderr, " %s%d", c.remote ? "r" : "", static_cast<int>(c.state));
    std::fprintf(stderr,
                 " ), messages in %llu (%llu bytes) out %llu, packets in %llu out %llu, i-data %d zero %d, "
                 "received %zu, peak heap +%zu KiB\n",
                 static_cast<unsigned long long>(st.messagesReceived),
                 static_cast<unsigned long long>(st.bytesReceived), static_cast<unsigned long long>(st.messagesSent),
                 static_cast<unsigned long long>(st.packetsReceived), static_cast<unsigned long long>(st.packetsSent),
                 st.interleaving, st.zeroChecksum, received_, peakHeap_ / 1024);
  }

 private:
  void apply(std::uint8_t op, ByteView body) {
    ByteReader b(body);
    if (op % 12 == 0 || op % 12 == 9 || op % 12 == 11) hostile_ = true;
    switch (op % 12) {
      case 0: {  // a raw SCTP packet, `repeat` copies
        const std::uint8_t flags = b.u8();
        peer_->writeRaw(b.bytes(b.remaining()), flags & 7, 1 + (flags >> 3), now_);
        break;
      }
      case 1: {  // a message from the peer's association
        static constexpr std::uint32_t kPpids[8] = {50, 51, 52, 53, 54, 56, 57, 0};
        const std::uint16_t stream = b.u16();
        const std::uint8_t sel = b.u8(), opts = b.u8(), size = b.u8();
        const std::uint32_t ppid = kPpids[sel % 8] ? kPpids[sel % 8] : sel;
        ByteView payload = b.bytes(b.remaining());
        if (size) payload = fill(payload, std::size_t{size} * 1200);  // up to ~300 KiB: above any max-message-size
        if (payload.size() > maxMessage_) hostile_ = true;  // we abort the association (our a=max-message-size)
        sctp::SendOptions o;
        o.unordered = opts & 1;
        if (opts & 2)
          o.maxRetransmits = opts >> 4;
        else if (opts & 4)
          o.lifetime = Duration((opts >> 4) * 10'000);
        (void)peer_->association().send(stream, ppid, payload.empty() ? asBytes("x") : payload, o, now_);
        break;
      }
      case 2: {  // a DCEP OPEN from the peer: [stream][type][priority][reliability][label length][label...]
        const std::uint16_t stream = b.u16();
        const std::uint8_t type = b.u8();
        const std::uint16_t priority = b.u16();
        const std::uint32_t reliability = b.u32();
        const std::uint16_t labelLen = b.u16();
        ByteView rest = b.bytes(b.remaining());
        const ByteView label = fill(rest, labelLen);
        Bytes open{dcep::kMessageOpen, type};
        open.resize(12);
        storeBe16(open.data() + 2, priority);
        storeBe32(open.data() + 4, reliability);
        storeBe16(open.data() + 8, labelLen);
        storeBe16(open.data() + 10, static_cast<std::uint16_t>(rest.size() / 2));
        open.insert(open.end(), label.begin(), label.end());
        open.insert(open.end(), rest.begin(), rest.begin() + static_cast<long>(rest.size() / 2));
        if (open.size() > maxMessage_) hostile_ = true;  // above our a=max-message-size too
        (void)peer_->association().send(stream, 50, open, {}, now_);
        break;
      }
      case 3:  // time passes: up to ~65 s, in steps
        advance(Duration(std::int64_t{body.empty() ? 1 : b.u16()} * 1000));
        break;
      case 4: {  // createDataChannel: [flags][id u16][limit u16][label...]
        const std::uint8_t flags = b.u8();
        const std::uint16_t id = b.u16(), limit = b.u16();
        DataChannelInit init;
        init.ordered = !(flags & 1);
        if (flags & 2) init.maxRetransmits = limit;
        if (flags & 4) init.maxPacketLifeTime = limit;
        if (flags & 8) {
          init.negotiated = true;
          init.id = id;
        }
        const ByteView label = b.bytes(b.remaining());
        auto key = conn_->createDataChannel(std::string_view(reinterpret_cast<const char*>(label.data()), label.size()),
                                            init, now_);
        if (key) channels_.push_back({*key});
        break;
      }
      case 5: {  // send on a channel: [index][text][size][payload...]
        const std::uint8_t index = b.u8(), text = b.u8(), size = b.u8();
        ByteView payload = b.bytes(b.remaining());
        if (size) payload = fill(payload, std::size_t{size} * 1200);
        if (Channel* c = pick(index)) (void)conn_->send(c->key, payload, text & 1, now_);
        break;
      }
      case 6:  // close a channel
        if (Channel* c = pick(b.u8())) conn_->closeChannel(c->key, now_);
        break;
      case 7: {  // the application reads n messages (0: all)
        const std::uint8_t n = b.u8();
        for (int i = 0; (n == 0 || i < n) && !inbox_.empty(); ++i) readOne();
        break;
      }
      case 8: {  // the peer resets streams
        resets_ = true;
        std::vector<std::uint16_t> streams;
        while (b.remaining() >= 2 && streams.size() < 64) streams.push_back(b.u16());
        (void)peer_->association().resetStreams(streams, now_);
        break;
      }
      case 9:  // a datagram of any kind from the peer's address
        peer_->sendDatagram(body);
        break;
      case 10:  // the application drops a channel object
        if (Channel* c = pick(b.u8()); c && !c->released) {
          c->released = true;
          conn_->releaseChannel(c->key, now_);
        }
        break;
      case 11:
        switch (b.u8() % 4) {
          case 0: peer_->association().shutdown(now_); break;
          case 1: peer_->association().abort("fuzz", now_); break;
          case 2: peer_->dtls().close(now_); break;
          default: break;  // no-op
        }
        break;
    }
  }

  // Repeats `seed` (or 'x') to `size` bytes, in a reused buffer.
  ByteView fill(ByteView seed, std::size_t size) {
    fill_.resize(size);
    for (std::size_t i = 0; i < size; ++i) fill_[i] = seed.empty() ? 'x' : seed[i % seed.size()];
    return fill_;
  }

  Channel* pick(std::uint8_t index) {
    if (channels_.empty()) return nullptr;
    return &channels_[index % channels_.size()];
  }
  Channel* find(peer::ChannelKey key) {
    for (auto& c : channels_)
      if (c.key == key) return &c;
    return nullptr;
  }

  void readOne() {
    auto m = std::move(inbox_.front());
    inbox_.pop_front();
    unread_ -= m.cost;
    conn_->released(m.cost);
    conn_->recycle(std::move(m.data));
  }
  void readAll() {
    while (!inbox_.empty()) readOne();
  }

  // Drains our side's outputs until its Timeout, handing transmits to the peer.
  void drain() {
    for (long n = 0;; ++n) {
      CHECK(n < 1'000'000, n);  // pollOutput must reach its Timeout
      auto o = conn_->pollOutput(now_);
      if (auto* t = std::get_if<peer::out::Transmit>(&o)) {
        CHECK(t->remote == peerAddr_);
        peer_->receive(t->data, now_);
        moved_ = true;
      } else if (auto* d = std::get_if<peer::out::Description>(&o)) {
        offer_ = d->sdp;
      } else if (auto* s = std::get_if<peer::out::StateChange>(&o)) {
        onState(s->state);
      } else if (auto* c = std::get_if<peer::out::ChannelReceived>(&o)) {
        CHECK(find(c->key) == nullptr, static_cast<long long>(c->key));  // a new key each time
        channels_.push_back({c->key, ReadyState::Connecting, true});
      } else if (auto* m = std::get_if<peer::out::Message>(&o)) {
        CHECK(state_ != ConnectionState::Closed && state_ != ConnectionState::Failed, static_cast<int>(state_));
        CHECK(find(m->key) != nullptr, static_cast<long long>(m->key));
        CHECK(m->data.size() <= maxMessage_, static_cast<long long>(m->data.size()));
        unread_ += m->cost;
        ++received_;
        inbox_.push_back(std::move(*m));
      } else if (auto* timeout = std::get_if<peer::out::Timeout>(&o)) {
        deadline_ = timeout->at;
        return;
      }
    }
  }

  void onState(ConnectionState s) {
    // Forward only: Closed is final, Failed may only become Closed (our close()), Connected/Disconnected alternate.
    CHECK(state_ != ConnectionState::Closed, static_cast<int>(s));
    CHECK(state_ != ConnectionState::Failed || s == ConnectionState::Closed, static_cast<int>(s));
    CHECK((s != ConnectionState::New && s != ConnectionState::Connecting) || state_ == ConnectionState::New ||
              state_ == ConnectionState::Connecting,
          static_cast<int>(state_), static_cast<int>(s));
    state_ = s;
    if (s == ConnectionState::Connected) connected_ = true;
  }

  // Moves datagrams both ways until nothing moves (bounded).
  void pump() {
    for (int round = 0; round < 64; ++round) {
      moved_ = false;
      drain();
      moved_ |= peer_->flush(now_);
      while (!peer_->outbox().empty()) {
        Bytes d = std::move(peer_->outbox().front());
        peer_->outbox().pop_front();
        conn_->handleDatagram(ourAddr_, peerAddr_, d, now_);
        moved_ = true;
      }
      if (!moved_) return;
    }
    drain();
  }

  // Virtual time passes by `d`, stopping at every deadline on the way.
  void advance(Duration d) {
    const Timestamp end = now_ + d;
    int sameInstant = 0;
    for (int steps = 0; steps < 2000; ++steps) {
      Timestamp next = earliest(earliest(deadline_, peer_->nextDeadline()), end);
      if (next < now_) next = now_;
      sameInstant = next == now_ ? sameInstant + 1 : 0;
      // A timer that fires without moving its deadline would spin a real event loop at 100% CPU.
      CHECK(sameInstant < 64, sameInstant);
      now_ = next;
      conn_->handleTimeout(now_);
      peer_->handleTimeout(now_);
      pump();
      if (now_ >= end) return;
    }
  }

  void check() {
    CHECK(unread_ <= kReceiveWindow + maxMessage_ + 64 * 1024, static_cast<long long>(unread_));
    std::size_t remoteLive = 0;
    for (auto& c : channels_) {
      const ReadyState s = conn_->readyState(c.key);
      CHECK(static_cast<int>(s) >= static_cast<int>(c.state), static_cast<long long>(c.key), static_cast<int>(s));
      c.state = s;
      if (c.remote && s != ReadyState::Closed) ++remoteLive;
    }
    CHECK(remoteLive <= datachannel::ChannelManager::kMaxRemoteChannels, static_cast<long long>(remoteLive));
#ifdef RTCPEER_FUZZ_HEAP
    const std::size_t heap = __sanitizer_get_current_allocated_bytes();
    CHECK(heap <= heapBase_ + kHeapBudget, static_cast<long long>(heap - heapBase_));
    if (heap > heapBase_) peakHeap_ = std::max(peakHeap_, heap - heapBase_);
#endif
  }

  SocketAddress ourAddr_, peerAddr_;
  std::unique_ptr<peer::Connection> conn_;
  std::unique_ptr<fuzz::HostilePeer> peer_;
  fuzz::HostilePeer::Setup setup_;
  std::size_t maxMessage_ = 0;
  Timestamp now_ = fromMicros(1'000'000);
  Timestamp deadline_ = kNever;
  std::string offer_;
  ConnectionState state_ = ConnectionState::New;
  bool connected_ = false;
  bool moved_ = false;
  bool resets_ = false;   // the peer requested stream resets (which may close the probe's channel)
  bool hostile_ = false;  // the input used raw packets, raw datagrams or ended the association
  std::vector<Channel> channels_;
  std::deque<peer::out::Message> inbox_;
  std::size_t unread_ = 0;
  std::size_t received_ = 0;
  Bytes fill_;
  std::size_t heapBase_ = 0, peakHeap_ = 0;
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  // Hostile input makes every layer log; PEER_FUZZ_LOG=1 keeps the log (debugging a seed).
  static const bool quiet = (setLogLevel(std::getenv("PEER_FUZZ_LOG") ? LogLevel::Debug : LogLevel::None), true);
  (void)quiet;
  if (size < 1) return 0;
  SeededRandom ours(1), theirs(2);
  Harness h(data[0], ours, theirs);
  h.connect();
  ByteReader r(ByteView(data + 1, size - 1));
  h.run(r);
  return 0;
}
