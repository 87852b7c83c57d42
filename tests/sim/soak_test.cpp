// Soak (issue 17 item 8): 30 virtual minutes of mixed data-channel traffic between two SCTP associations, each with
// its data-channel manager (DCEP, stream resets), over the simulator while the link keeps changing: loss, burst
// loss, reordering, duplication, jitter, delay steps, a bandwidth bottleneck and a short outage. Both sides keep
// opening channels of every kind (reliable ordered and unordered, maxRetransmits and maxPacketLifeTime, ordered
// and not), send on them and close them again.
//
// Checked throughout: every reliable message arrives exactly once, intact, and in order on ordered channels, before
// its channel's close completes at the receiver; every partially reliable message arrives intact at most once (in
// order if ordered) or is abandoned within its limit: its first fragment is sent at most maxRetransmits + 1 times,
// and never retransmitted after its lifetime (a first transmission may come later: a message is always offered
// once, see DataChannelInit). The association survives the whole run; at the end nothing stays queued.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "common/random.hpp"
#include "datachannel/channel_manager.hpp"
#include "sctp/association.hpp"
#include "sctp/packet/chunks.hpp"
#include "sim/network.hpp"

namespace rtcpeer::sim {
namespace {

using datachannel::ChannelKey;
using datachannel::ChannelManager;

constexpr Duration kSoak = std::chrono::minutes(30);
constexpr Duration kTick = std::chrono::milliseconds(100);  // each side acts this often
constexpr Duration kPhase = std::chrono::seconds(75);       // the link changes this often

enum class Kind { ReliableOrdered, ReliableUnordered, RexmitOrdered, RexmitUnordered, LifetimeOrdered, LifetimeUnordered };
constexpr int kKinds = 6;

std::uint8_t fill(std::uint32_t serial, std::uint32_t index, std::size_t at) {
  return static_cast<std::uint8_t>((serial * 131u + index * 31u + at * 7u) ^ (at >> 8));
}

// One channel's life, shared by the test's two sides (the creator sends, the peer receives and checks).
struct Channel {
  Kind kind;
  bool ordered = true;
  std::optional<int> maxRetransmits, lifetimeMs;
  bool reliable() const { return !maxRetransmits && !lifetimeMs; }
  struct Sent {
    std::size_t size;
    Timestamp at;
    int transmissions = 0;  // of its first fragment, seen leaving the sender
    Timestamp firstTx{};
  };
  std::vector<Sent> sent;
  std::vector<bool> delivered;
  std::int64_t lastDelivered = -1;
  std::size_t deliveredCount = 0;
  bool closeRequested = false, closedAtReceiver = false, closedAtSender = false;
};

struct Totals {
  std::uint64_t reliableSent = 0, reliableDelivered = 0, partialSent = 0, partialDelivered = 0, channels = 0,
                closes = 0, bytes = 0;
};

class SoakPeer;

struct Soak {
  explicit Soak(std::uint64_t seed) : net(seed), rng(seed * 7 + 1) {}
  Network net;
  SeededRandom rng;
  std::map<std::uint32_t, Channel> channels;  // by serial (the label is "c<serial>")
  std::uint32_t nextSerial = 1;
  Totals totals;
};

class SoakPeer final : public Endpoint {
 public:
  SoakPeer(Soak& soak, SocketAddress local, SocketAddress remote, datachannel::DtlsRole role, sctp::Options o,
           std::uint64_t seed)
      : soak_(soak), local_(local), remote_(remote), role_(role), rng_(seed), coreRng_(seed + 1), assoc(o, coreRng_),
        mgr(o.maxMessageSize) {
    soak_.net.bind(*this, local_);
  }
  ~SoakPeer() override { soak_.net.unbind(local_); }

  void onDatagram(const SocketAddress&, const SocketAddress&, ByteView data, Timestamp now) override {
    assoc.handleInput(data, now);
    service(now);
  }
  void onTimeout(Timestamp now) override {
    if (assoc.nextDeadline() <= now) assoc.handleTimeout(now);
    if (nextAction_ <= now) {
      nextAction_ = acting ? now + kTick : kNever;
      if (acting && mgr.started()) act(now);
    }
    service(now);
  }
  Timestamp nextDeadline() const override { return earliest(assoc.nextDeadline(), nextAction_); }

  void start(Timestamp now) {
    assoc.connect(now);
    nextAction_ = now + kTick;
    service(now);
  }

  /// Closes every channel this side created.
  void closeAll(Timestamp now) {
    for (auto& [key, serial] : mine_) requestClose(key, serial);
    service(now);
  }

  bool acting = true;
  bool aborted = false;
  SeededRandom& random() { return rng_; }

 private:
  void act(Timestamp now) {
    // Open a channel now and then (more while few are open), close one now and then, send on a few.
    const std::size_t open = mine_.size();
    if (open < 2 || (open < 8 && rng_.below(40) == 0)) openChannel();
    if (open > 0 && rng_.below(60) == 0) {
      auto it = mine_.begin();
      std::advance(it, static_cast<std::ptrdiff_t>(rng_.below(mine_.size())));
      requestClose(it->first, it->second);
    }
    service(now);  // OPENs (and resets) go before user data on their streams
    for (int i = 0, n = 1 + static_cast<int>(rng_.below(3)); i < n && !mine_.empty(); ++i) {
      auto it = mine_.begin();
      std::advance(it, static_cast<std::ptrdiff_t>(rng_.below(mine_.size())));
      sendOn(it->first, it->second, now);
    }
  }

  void openChannel() {
    const std::uint32_t serial = soak_.nextSerial++;
    Channel c;
    c.kind = static_cast<Kind>(rng_.below(kKinds));
    DataChannelInit init;
    switch (c.kind) {
      case Kind::ReliableOrdered: break;
      case Kind::ReliableUnordered: c.ordered = false; break;
      case Kind::RexmitOrdered: c.maxRetransmits = static_cast<int>(rng_.below(4)); break;
      case Kind::RexmitUnordered:
        c.ordered = false;
        c.maxRetransmits = static_cast<int>(rng_.below(4));
        break;
      case Kind::LifetimeOrdered: c.lifetimeMs = 20 + static_cast<int>(rng_.below(500)); break;
      case Kind::LifetimeUnordered:
        c.ordered = false;
        c.lifetimeMs = 20 + static_cast<int>(rng_.below(500));
        break;
    }
    init.ordered = c.ordered;
    init.maxRetransmits = c.maxRetransmits;
    init.maxPacketLifeTime = c.lifetimeMs;
    auto key = mgr.create("c" + std::to_string(serial), init);
    ASSERT_TRUE(key.ok()) << key.reason();
    soak_.channels.emplace(serial, std::move(c));
    mine_.emplace(*key, serial);
    ++soak_.totals.channels;
  }

  void requestClose(ChannelKey key, std::uint32_t serial) {
    Channel& c = soak_.channels.at(serial);
    if (c.closeRequested) return;
    c.closeRequested = true;
    ++soak_.totals.closes;
    mgr.close(key);
  }

  void sendOn(ChannelKey key, std::uint32_t serial, Timestamp now) {
    Channel& c = soak_.channels.at(serial);
    if (c.closeRequested) return;
    // Reliable: 8 bytes to 32 KiB (log-uniform); partially reliable: mostly one packet, some a few.
    const double maxLog = c.reliable() ? 15 : (rng_.below(8) == 0 ? 13 : 10);
    const std::size_t size = std::max<std::size_t>(8, static_cast<std::size_t>(std::exp2(rng_.unit() * maxLog)));
    auto params = mgr.prepareSend(key, false, size);
    if (!params) return;  // not open yet
    const auto index = static_cast<std::uint32_t>(c.sent.size());
    buf_.resize(size);
    storeBe32(buf_.data(), serial);
    storeBe32(buf_.data() + 4, index);
    for (std::size_t i = 8; i < size; ++i) buf_[i] = fill(serial, index, i);
    sctp::SendOptions o;
    o.unordered = !params->ordered;
    if (params->maxRetransmits) o.maxRetransmits = *params->maxRetransmits;
    if (params->maxPacketLifeTime) o.lifetime = std::chrono::milliseconds(*params->maxPacketLifeTime);
    if (!assoc.send(params->stream, params->ppid, params->payload(buf_), o, now).ok()) return;  // buffer full
    c.sent.push_back({size, now});
    c.delivered.push_back(false);
    (c.reliable() ? soak_.totals.reliableSent : soak_.totals.partialSent) += 1;
    soak_.totals.bytes += size;
  }

  void service(Timestamp now) {
    for (bool progress = true; progress;) {
      progress = false;
      while (auto e = assoc.pollEvent()) {
        progress = true;
        if (e->type == sctp::Event::Type::Connected) {
          mgr.start(role_, std::min(assoc.outboundStreams(), assoc.inboundStreams()));
        } else {
          aborted = true;
          ADD_FAILURE() << "association event " << static_cast<int>(e->type) << ": " << e->reason << " at "
                        << toMicros(now) / 1'000'000 << " s";
        }
      }
      while (auto m = assoc.pollMessage()) {
        progress = true;
        receive(*m);
        assoc.recycle(std::move(m->payload));
      }
      while (auto r = assoc.pollStreamReset()) {
        progress = true;
        EXPECT_FALSE(r->refused) << "stream reset refused";
        for (auto stream : r->streams) {
          if (r->incoming) mgr.handleIncomingReset(stream);
          else mgr.handleOutgoingResetDone(stream);
        }
      }
      while (auto cmd = mgr.pollCommand()) {
        progress = true;
        const std::uint16_t stream = cmd->params.stream;
        if (cmd->kind == datachannel::Command::Kind::ResetStream) {
          auto s = assoc.resetStreams(std::span(&stream, 1), now);
          EXPECT_TRUE(s.ok()) << s.reason();
          continue;
        }
        sctp::SendOptions o;
        o.unordered = !cmd->params.ordered;
        auto s = assoc.send(stream, cmd->params.ppid, cmd->params.payload(cmd->data), o, now);
        EXPECT_TRUE(s.ok()) << "DCEP send: " << s.reason();
      }
      while (auto e = mgr.pollEvent()) {
        progress = true;
        onChannelEvent(*e);
      }
    }
    while (auto p = assoc.pollTransmit(now)) {
      observe(*p, now);
      soak_.net.send(local_, remote_, *p);
    }
  }

  // The receiving side's checks.
  void receive(sctp::Message& m) {
    auto in = mgr.handleMessage(m.stream, m.ppid, m.payload);
    ASSERT_TRUE(in.ok()) << in.reason();
    if (!*in) return;  // DCEP
    const auto* info = mgr.info((*in)->channel);
    ASSERT_NE(info, nullptr);
    const auto serial = static_cast<std::uint32_t>(std::stoul(info->label.substr(1)));
    theirs_[(*in)->channel] = serial;
    Channel& c = soak_.channels.at(serial);
    ByteView d = (*in)->data;
    ASSERT_GE(d.size(), 8u);
    ASSERT_EQ(loadBe32(d.data()), serial) << "a message on the wrong channel";
    const std::uint32_t index = loadBe32(d.data() + 4);
    ASSERT_LT(index, c.sent.size()) << "channel " << serial << ": a message that was never sent";
    ASSERT_EQ(d.size(), c.sent[index].size) << "channel " << serial << " message " << index;
    for (std::size_t i = 8; i < d.size(); ++i)
      if (d[i] != fill(serial, index, i)) FAIL() << "channel " << serial << " message " << index << " corrupt at " << i;
    ASSERT_FALSE(c.delivered[index]) << "channel " << serial << " message " << index << " delivered twice";
    c.delivered[index] = true;
    ++c.deliveredCount;
    if (c.ordered) {
      ASSERT_GT(static_cast<std::int64_t>(index), c.lastDelivered)
          << "channel " << serial << ": message " << index << " after " << c.lastDelivered;
      if (c.reliable()) {
        ASSERT_EQ(static_cast<std::int64_t>(index), c.lastDelivered + 1) << "channel " << serial;
      }
    }
    c.lastDelivered = std::max<std::int64_t>(c.lastDelivered, index);
    (c.reliable() ? soak_.totals.reliableDelivered : soak_.totals.partialDelivered) += 1;
  }

  void onChannelEvent(const datachannel::Event& e) {
    if (e.kind == datachannel::Event::Kind::Received) {  // the peer opened it
      const auto* info = mgr.info(e.channel);
      ASSERT_NE(info, nullptr);
      theirs_[e.channel] = static_cast<std::uint32_t>(std::stoul(info->label.substr(1)));
      return;
    }
    if (e.kind != datachannel::Event::Kind::Closed) return;
    EXPECT_TRUE(e.reason.empty()) << "channel failed: " << e.reason;
    if (auto it = mine_.find(e.channel); it != mine_.end()) {
      soak_.channels.at(it->second).closedAtSender = true;
      mine_.erase(it);
    } else if (auto t = theirs_.find(e.channel); t != theirs_.end()) {
      Channel& c = soak_.channels.at(t->second);
      c.closedAtReceiver = true;
      // The peer's reset follows its last message (RFC 6525 5.2.2): every reliable one is here by now.
      if (c.reliable()) {
        std::size_t firstMissing = 0;
        while (firstMissing < c.delivered.size() && c.delivered[firstMissing]) ++firstMissing;
        EXPECT_EQ(c.deliveredCount, c.sent.size())
            << "channel " << t->second << " (kind " << static_cast<int>(c.kind) << ") closed with messages missing: "
            << "first " << firstMissing << " sent at " << (firstMissing < c.sent.size() ? toMicros(c.sent[firstMissing].at) / 1000 : 0) << " ms, now "
            << toMicros(soak_.net.now()) / 1000 << " ms";
      }
      theirs_.erase(t);
    }
    mgr.forget(e.channel);
  }

  // The sender's limits, seen on the wire: transmissions of each partially reliable message's first fragment.
  void observe(ByteView packet, Timestamp now) {
    sctp::ChunkIterator it(packet);
    sctp::RawChunk raw;
    while (it.next(raw)) {
      if (raw.type != sctp::ChunkType::kData && raw.type != sctp::ChunkType::kIData) continue;
      auto d = sctp::DataChunk::parse(raw);
      if (!d || !d->beginning() || d->payload.size() < 8 || d->ppid == 50) continue;
      const std::uint32_t serial = loadBe32(d->payload.data());
      auto ch = soak_.channels.find(serial);
      if (ch == soak_.channels.end() || ch->second.reliable()) continue;
      Channel& c = ch->second;
      const std::uint32_t index = loadBe32(d->payload.data() + 4);
      ASSERT_LT(index, c.sent.size());
      Channel::Sent& s = c.sent[index];
      if (++s.transmissions == 1) {
        s.firstTx = now;
        continue;
      }
      if (c.maxRetransmits) {
        EXPECT_LE(s.transmissions, *c.maxRetransmits + 1) << "channel " << serial << " message " << index;
      }
      if (c.lifetimeMs) {
        EXPECT_LT(now, s.at + std::chrono::milliseconds(*c.lifetimeMs))
            << "channel " << serial << " message " << index << " retransmitted after its lifetime";
      }
    }
  }

  Soak& soak_;
  SocketAddress local_, remote_;
  datachannel::DtlsRole role_;
  SeededRandom rng_, coreRng_;

 public:
  sctp::Association assoc;
  ChannelManager mgr;

 private:
  std::map<ChannelKey, std::uint32_t> mine_;    // channels this side created and has not seen Closed
  std::map<ChannelKey, std::uint32_t> theirs_;  // the peer's channels, by our key
  Timestamp nextAction_ = kNever;
  Bytes buf_;
};

LinkConfig phaseLink(int phase) {
  LinkConfig l;
  l.delay = std::chrono::milliseconds(20);
  switch (phase % 8) {
    case 0: break;  // clean
    case 1:
      l.loss = 0.02;
      l.reorder = 0.05;
      l.reorderDelay = std::chrono::milliseconds(15);
      break;
    case 2:
      l.loss = 0.05;
      l.duplicate = 0.03;
      l.jitter = std::chrono::milliseconds(15);
      break;
    case 3:  // a delay step
      l.delay = std::chrono::milliseconds(180);
      l.jitter = std::chrono::milliseconds(30);
      l.loss = 0.01;
      break;
    case 4:  // burst loss
      l.burstEnter = 0.01;
      l.burstExit = 0.25;
      l.duplicate = 0.01;
      break;
    case 5:  // a 2 Mbit/s bottleneck with a short queue
      l.bandwidthBps = 2'000'000;
      l.queueBytes = 48 * 1024;
      l.loss = 0.005;
      break;
    case 6:  // everything at once
      l.delay = std::chrono::milliseconds(60);
      l.jitter = std::chrono::milliseconds(40);
      l.loss = 0.03;
      l.reorder = 0.1;
      l.reorderDelay = std::chrono::milliseconds(30);
      l.duplicate = 0.05;
      break;
    case 7: break;  // clean again (the outage is applied separately)
  }
  return l;
}

TEST(Soak, ThirtyVirtualMinutesOfMixedChannelsOverAChangingLink) {
  for (const bool idata : {false, true}) {
    SCOPED_TRACE(idata ? "I-DATA" : "DATA");
    Soak soak(idata ? 17 : 5);
    sctp::Options o;
    o.enableIData = idata;
    o.heartbeatInterval = std::chrono::seconds(5);
    const auto a = *SocketAddress::parse("10.0.0.1", 5000), b = *SocketAddress::parse("10.0.0.2", 5000);
    SoakPeer pa(soak, a, b, datachannel::DtlsRole::Client, o, 100);
    SoakPeer pb(soak, b, a, datachannel::DtlsRole::Server, o, 200);
    soak.net.setDefaultLink(phaseLink(0));
    const Timestamp start = soak.net.now();
    pa.start(start);
    pb.start(start);
    int phase = 0;
    for (Timestamp t = start + kPhase; t <= start + kSoak; t += kPhase) {
      soak.net.runFor(t - soak.net.now());
      ASSERT_FALSE(pa.aborted || pb.aborted);
      ASSERT_FALSE(::testing::Test::HasFatalFailure());
      ++phase;
      if (phase % 8 == 7) {  // a 2 s outage in both directions, then the clean link
        LinkConfig down;
        down.loss = 1.0;
        soak.net.setDefaultLink(down);
        soak.net.runFor(std::chrono::seconds(2));
      }
      soak.net.setDefaultLink(phaseLink(phase));
    }
    // Traffic stops; every channel closes over a clean link; everything drains.
    pa.acting = pb.acting = false;
    soak.net.setDefaultLink(phaseLink(0));
    pa.closeAll(soak.net.now());
    pb.closeAll(soak.net.now());
    const bool drained = soak.net.runUntil(
        [&] {
          for (const auto& [serial, c] : soak.channels)
            if (!c.closedAtSender || !c.closedAtReceiver) return false;
          return pa.assoc.totalBufferedAmount() == 0 && pb.assoc.totalBufferedAmount() == 0;
        },
        std::chrono::minutes(2));
    EXPECT_TRUE(drained);
    EXPECT_EQ(pa.assoc.state(), sctp::State::Established);
    EXPECT_EQ(pb.assoc.state(), sctp::State::Established);
    const Totals& t = soak.totals;
    EXPECT_EQ(t.reliableDelivered, t.reliableSent);
    EXPECT_GT(t.partialDelivered, 0u);
    EXPECT_EQ(pa.mgr.channelCount(), 0u);
    EXPECT_EQ(pb.mgr.channelCount(), 0u);
    const auto ma = pa.assoc.metrics(), mb = pb.assoc.metrics();
    std::printf("soak %s: %.0f virtual s, %llu channels (%llu closed), reliable %llu/%llu, partial %llu/%llu "
                "delivered, %.1f MB, retransmissions %llu+%llu, T3 %llu+%llu, network: %llu sent, %llu lost, %llu "
                "duplicated\n",
                idata ? "I-DATA" : "DATA", std::chrono::duration<double>(soak.net.now() - start).count(),
                static_cast<unsigned long long>(t.channels), static_cast<unsigned long long>(t.closes),
                static_cast<unsigned long long>(t.reliableDelivered), static_cast<unsigned long long>(t.reliableSent),
                static_cast<unsigned long long>(t.partialDelivered), static_cast<unsigned long long>(t.partialSent),
                static_cast<double>(t.bytes) / 1e6, static_cast<unsigned long long>(ma.retransmissions),
                static_cast<unsigned long long>(mb.retransmissions), static_cast<unsigned long long>(ma.t3Expirations),
                static_cast<unsigned long long>(mb.t3Expirations),
                static_cast<unsigned long long>(soak.net.stats().sent),
                static_cast<unsigned long long>(soak.net.stats().lost),
                static_cast<unsigned long long>(soak.net.stats().duplicated));
  }
}

}  // namespace
}  // namespace rtcpeer::sim
