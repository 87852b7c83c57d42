// Two full PeerConnection cores (peer::Connection) on the deterministic simulator, with a STUN server and a TURN
// server (tests/unit/ice/fake_turn.hpp) on the simulated internet and each peer optionally behind a NAT. Signaling
// is a mailbox with a fixed delay: each side sets its own descriptions as soon as they are created, as Godot
// applications do, and trickles candidates. Messages carry (index, length, pattern) so the receiver checks each one
// byte for byte. Everything runs in virtual time: DTLS's OpenSSL timer too (dtls_virtual_clock).
#pragma once

#include <gtest/gtest.h>

#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/bytes.hpp"
#include "peer/connection.hpp"
#include "sim/network.hpp"
#include "sim/stun_server.hpp"
#include "stun/stun.hpp"
#include "unit/dtls/virtual_time.hpp"
#include "unit/ice/fake_turn.hpp"

namespace rtcpeer::sim::peertest {

inline SocketAddress ip(const char* text, std::uint16_t port = 0) { return *SocketAddress::parse(text, port); }

inline const SocketAddress kStun = ip("100.64.0.2", 3478);
inline const SocketAddress kTurn = ip("100.64.0.1", 3478);

/// The STUN server of the simulated network, bound at kStun.
class StunServer : public sim::StunServer {
 public:
  explicit StunServer(Network& net) : sim::StunServer(net) { net.bind(*this, kStun); }
};

/// The fake TURN server, bound to its address and the relayed addresses it hands out (10.99.0.1:50001...).
class TurnServer : public Endpoint {
 public:
  explicit TurnServer(Network& net)
      : server([&net] { return net.now(); },
               [&net](const SocketAddress& from, const SocketAddress& to, ByteView d) { net.send(from, to, d); },
               net.random(), kTurn) {
    net.bind(*this, kTurn);
    for (std::uint16_t i = 1; i <= 8; ++i) net.bind(*this, ip("10.99.0.1", static_cast<std::uint16_t>(50000 + i)));
  }
  void onDatagram(const SocketAddress& local, const SocketAddress& remote, ByteView data, Timestamp now) override {
    server.onWire({now, remote, local, Bytes(data.begin(), data.end())});
  }
  void onTimeout(Timestamp) override {}
  Timestamp nextDeadline() const override { return kNever; }

  ice::test::FakeTurn server;
};

/// A message of `size` bytes: its index (u32 BE), its size (u32 BE), then bytes derived from both.
inline Bytes makeMessage(std::uint32_t index, std::size_t size) {
  Bytes b(std::max<std::size_t>(size, 8));
  storeBe32(b.data(), index);
  storeBe32(b.data() + 4, static_cast<std::uint32_t>(b.size()));
  for (std::size_t i = 8; i < b.size(); ++i) b[i] = static_cast<std::uint8_t>(index * 31 + i * 7);
  return b;
}
/// The index of an intact message, or nullopt if any byte is wrong.
inline std::optional<std::uint32_t> checkMessage(const Bytes& b) {
  if (b.size() < 8 || loadBe32(b.data() + 4) != b.size()) return std::nullopt;
  const std::uint32_t index = loadBe32(b.data());
  for (std::size_t i = 8; i < b.size(); ++i)
    if (b[i] != static_cast<std::uint8_t>(index * 31 + i * 7)) return std::nullopt;
  return index;
}

class SimPeer : public Endpoint {
 public:
  struct Channel {
    peer::ChannelKey key = 0;
    std::vector<Bytes> received;
    std::string closeReason;
    bool opened = false, closed = false;
    // Sending side of a transfer (topUp).
    std::uint32_t toSend = 0, sent = 0;
    std::size_t size = 0;
    Bytes fixed;  // when set, sent instead of makeMessage() (no allocation per message on the sending side)
    // Receiving side with keep == false: messages are counted and their buffers recycled, not kept.
    bool keep = true;
    std::uint64_t count = 0, bytes = 0;
  };

  SimPeer(Network& net, std::string peerName, const Configuration& config, SocketAddress local, RealmId realm,
          std::uint64_t seed)
      : name(std::move(peerName)), net_(net), random_(seed), local_(local), realm_(realm) {
    auto c = peer::Connection::create(config, random_);
    EXPECT_TRUE(c) << c.reason();
    core = std::move(*c);
    net.bind(*this, local, realm);
  }
  ~SimPeer() override { net_.unbind(local_, realm_); }

  std::string name;
  std::unique_ptr<peer::Connection> core;
  SimPeer* other = nullptr;
  Duration signalingDelay = std::chrono::milliseconds(20);
  std::vector<ConnectionState> states;
  std::vector<std::string> reasons;
  std::map<std::string, Channel> channels;  // by label
  int candidatesSent = 0;
  /// A busy application's poll loop: when set, the core is serviced only once per `pollEvery` of virtual time
  /// (datagrams wait in the socket until then, as they do for a process polling thousands of connections in
  /// turn), receive first, then timers, as the shell's poll() does.
  Duration pollEvery{0};

  Channel& create(const std::string& label, const DataChannelInit& init = {}) {
    auto key = core->createDataChannel(label, init, net_.now());
    EXPECT_TRUE(key) << key.reason();
    Channel& c = channels[label];
    c.key = key ? *key : 0;
    return c;
  }
  void offer() {
    EXPECT_EQ(core->createOffer().code, Error::Ok);
    drain();
  }
  /// Queues `count` messages of `size` bytes on `label`, handed to the core as the send buffer drains.
  void transfer(const std::string& label, std::uint32_t count, std::size_t size) {
    Channel& c = channels.at(label);
    c.toSend += count;
    c.size = size;
  }
  bool allSent() const {
    for (const auto& [label, c] : channels)
      if (c.sent < c.toSend) return false;
    return true;
  }
  ConnectionState state() const { return core->connectionState(); }
  ReadyState readyState(const std::string& label) const {
    auto it = channels.find(label);
    return it == channels.end() ? ReadyState::Closed : core->readyState(it->second.key);
  }
  std::string selectedType() const { return core->stats().local.type; }

  // --- Endpoint
  // Datagrams arriving at the same instant are one receive batch, as recvmmsg hands them to the shell: the
  // simulator runs arrivals before endpoints, and the core's pending work makes nextDeadline() now.
  void onDatagram(const SocketAddress& local, const SocketAddress& remote, ByteView data, Timestamp now) override {
    if (pollEvery.count() > 0) {
      socket_.push_back({local, remote, Bytes(data.begin(), data.end())});
      return;
    }
    core->handleDatagram(local, remote, data, now);
  }
  void onTimeout(Timestamp now) override {
    if (pollEvery.count() > 0) {
      nextPoll_ = now + pollEvery;
      for (auto& d : socket_) core->handleDatagram(d.local, d.remote, d.data, now);
      socket_.clear();
      drain();
    }
    while (!mail_.empty() && mail_.front().first <= now) {
      auto f = std::move(mail_.front().second);
      mail_.pop_front();
      f();
    }
    topUp();
    core->handleTimeout(now);
    drain();
  }
  Timestamp nextDeadline() const override {
    Timestamp t = core->nextDeadline();
    if (core->hasWork() || wantsTopUp() || !socket_.empty()) t = net_.now();
    if (!mail_.empty()) t = earliest(t, mail_.front().first);
    return t == kNever || pollEvery.count() == 0 ? t : std::max(t, nextPoll_);
  }

  void drain() {
    for (;;) {
      std::vector<std::function<void()>> after;  // inputs that react to an output wait for the drain to end
      for (;;) {
        auto o = core->pollOutput(net_.now());
        if (std::holds_alternative<peer::out::Timeout>(o)) break;
        handle(o, after);
      }
      if (after.empty()) return;
      for (auto& f : after) f();
    }
  }

 private:
  bool wantsTopUp() const {
    for (const auto& [label, c] : channels)
      if (c.sent < c.toSend && core->readyState(c.key) == ReadyState::Open &&
          core->bufferedAmount(c.key) < kSendBuffer)
        return true;
    return false;
  }
  void topUp() {
    for (auto& [label, c] : channels) {
      while (c.sent < c.toSend && core->readyState(c.key) == ReadyState::Open &&
             core->bufferedAmount(c.key) < kSendBuffer) {
        auto o = c.fixed.empty() ? core->send(c.key, makeMessage(c.sent, c.size), false, net_.now())
                                 : core->send(c.key, c.fixed, false, net_.now());
        ASSERT_EQ(o.code, Error::Ok) << o.reason;
        ++c.sent;
      }
    }
  }
  void mail(std::function<void()> f) {
    SimPeer* to = other;
    to->mail_.emplace_back(net_.now() + signalingDelay, std::move(f));
  }
  Channel* byKey(peer::ChannelKey key) {
    for (auto& [label, c] : channels)
      if (c.key == key) return &c;
    return nullptr;
  }

  void handle(peer::Output& o, std::vector<std::function<void()>>& after) {
    namespace out = peer::out;
    if (auto* t = std::get_if<out::Transmit>(&o)) {
      ASSERT_EQ(t->transport, ice::TurnTransport::Udp);
      net_.send(t->local, t->remote, t->data, realm_);
    } else if (auto* d = std::get_if<out::Description>(&o)) {
      const std::string type = d->type, sdp = d->sdp;
      after.push_back([this, type, sdp] {
        auto r = core->setLocalDescription(type, sdp, net_.now());
        ASSERT_EQ(r.code, Error::Ok) << r.reason;
        if (core->wantsLocalAddresses()) core->setLocalAddresses(std::span(&local_, 1), net_.now());
        SimPeer* peer = other;
        mail([peer, type, sdp] {
          auto s = peer->core->setRemoteDescription(type, sdp, peer->net_.now());
          ASSERT_EQ(s.code, Error::Ok) << s.reason;
        });
      });
    } else if (auto* c = std::get_if<out::Candidate>(&o)) {
      ++candidatesSent;
      SimPeer* peer = other;
      mail([peer, mid = c->mid, index = c->index, line = c->line] {
        auto s = peer->core->addIceCandidate(mid, index, line, peer->net_.now());
        EXPECT_EQ(s.code, Error::Ok) << s.reason << ": " << line;
      });
    } else if (auto* s = std::get_if<out::StateChange>(&o)) {
      states.push_back(s->state);
      reasons.push_back(s->reason);
    } else if (auto* r = std::get_if<out::ChannelReceived>(&o)) {
      const auto* info = core->channelInfo(r->key);
      ASSERT_NE(info, nullptr);
      Channel& ch = channels[info->label];
      ch.key = r->key;
      ch.opened = true;
    } else if (auto* ch = std::get_if<out::ChannelChanged>(&o)) {
      if (Channel* c2 = byKey(ch->key)) {
        const ReadyState rs = core->readyState(ch->key);
        c2->opened |= rs == ReadyState::Open;
        if (rs == ReadyState::Closed) {
          c2->closed = true;
          c2->closeReason = ch->reason;
        }
      }
    } else if (auto* m = std::get_if<out::Message>(&o)) {
      core->released(m->cost);  // read at once
      if (Channel* c3 = byKey(m->key)) {
        ++c3->count;
        c3->bytes += m->data.size();
        if (c3->keep) c3->received.push_back(std::move(m->data));
        else core->recycle(std::move(m->data));
      }
    }
    // Flush: nothing is batched here. Gathering, OpenStream, Resolve: not used on the simulator.
  }

  static constexpr std::size_t kSendBuffer = 256 * 1024;
  Network& net_;
  SeededRandom random_;
  SocketAddress local_;
  RealmId realm_;
  std::deque<std::pair<Timestamp, std::function<void()>>> mail_;
  struct Waiting {  // a datagram in the socket, with pollEvery
    SocketAddress local, remote;
    Bytes data;
  };
  std::vector<Waiting> socket_;
  Timestamp nextPoll_{};
};

/// The network, the servers, and two peers: `a` offers, `b` answers. NATs are optional per side.
struct World {
  explicit World(std::uint64_t worldSeed) : net(worldSeed), clock([this] { return net.now(); }), stun(net), turn(net) {}

  Configuration config(bool withServers = true) const {
    Configuration c;
    if (withServers) {
      c.iceServers.push_back({{"stun:" + kStun.toString()}, "", ""});
      c.iceServers.push_back({{"turn:" + kTurn.toString()}, turn.server.user, turn.server.password});
    }
    return c;
  }
  /// Peer `name` at `privateIp` behind a NAT of `type` with public IP `publicIp`, or on the internet (no NAT).
  std::unique_ptr<SimPeer> makePeer(const std::string& name, const Configuration& c, const char* address,
                                    std::optional<NatType> nat = std::nullopt, const char* publicIp = nullptr) {
    RealmId realm = Network::kInternet;
    if (nat) realm = net.addNat(*nat, ip(publicIp), Network::kInternet);
    return std::make_unique<SimPeer>(net, name, c, ip(address, 5000), realm, net.random().u64());
  }
  void pair(SimPeer& x, SimPeer& y) {
    a = &x;
    b = &y;
    x.other = &y;
    y.other = &x;
  }
  /// Steps the network until `done`, or `limit` of virtual time passed (false).
  bool runUntil(const std::function<bool()>& done, Duration limit) {
    const Timestamp end = net.now() + limit;
    while (!done()) {
      if (net.nextTime() > end || !net.step()) return done();
    }
    return true;
  }
  bool connected() const {
    return a->state() == ConnectionState::Connected && b->state() == ConnectionState::Connected;
  }
  /// Offer, answer, trickle until both sides are Connected and channel `label` is open on both.
  bool connect(const std::string& label = "data", const DataChannelInit& init = {}) {
    a->create(label, init);
    if (init.negotiated) b->create(label, init);
    a->offer();
    return runUntil([&] { return connected() && a->channels[label].opened && b->channels[label].opened; },
                    std::chrono::seconds(30));
  }

  Network net;
  dtls::test::VirtualClock clock;
  StunServer stun;
  TurnServer turn;
  SimPeer* a = nullptr;
  SimPeer* b = nullptr;
};

}  // namespace rtcpeer::sim::peertest
