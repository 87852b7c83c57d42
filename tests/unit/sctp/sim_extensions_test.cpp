// The extensions in the simulator under loss: partial reliability (RFC 3758 / RFC 8260), stream reset (RFC 6525)
// with its own packets lost and from both sides at once, a peer that supports none of the extensions, and the
// head-of-line blocking interleaving (I-DATA) removes, measured on a bandwidth-limited link.
#include <gtest/gtest.h>

#include <cstdio>

#include "harness.hpp"
#include "sctp/packet/chunks.hpp"
#include "sctp/packet/parameters.hpp"

namespace rtcpeer::sctp {
namespace {

using testing::forEachChunk;
using testing::payloadFor;
using testing::SimPeer;
using testing::testOptions;

SocketAddress addr(const char* ip) { return *SocketAddress::parse(ip, 4000); }

/// Two associations on a simulated link, connected.
struct SimPair {
  SimPair(std::uint64_t seed, const sim::LinkConfig& link, Options oa = testOptions(), Options ob = testOptions())
      : net(seed),
        a((net.setDefaultLink(link), net), addr("10.0.0.1"), addr("10.0.0.2"), oa, seed * 2),
        b(net, addr("10.0.0.2"), addr("10.0.0.1"), ob, seed * 2 + 1) {
    a.onMessage = [this](const Message& m) { atA.push_back(m); };
    b.onMessage = [this](const Message& m) {
      atB.push_back(m);
      arrivalAtB.push_back(net.now());
    };
  }
  bool connect() {
    a.assoc.connect(net.now());
    b.assoc.connect(net.now());
    flush();
    return net.runUntil([&] { return established(); }, Duration(30'000'000));
  }
  bool established() const {
    return a.assoc.state() == State::Established && b.assoc.state() == State::Established;
  }
  void flush() {
    a.flush(net.now());
    b.flush(net.now());
  }
  void drainResets() {
    while (auto r = a.assoc.pollStreamReset()) resetsA.push_back(*r);
    while (auto r = b.assoc.pollStreamReset()) resetsB.push_back(*r);
  }
  bool run(const std::function<bool()>& done, Duration limit = Duration(60'000'000)) {
    return net.runUntil(
        [&] {
          drainResets();
          return done();
        },
        limit);
  }

  sim::Network net;
  SimPeer a, b;
  std::vector<Message> atA, atB;
  std::vector<Timestamp> arrivalAtB;
  std::vector<StreamReset> resetsA, resetsB;
};

bool hasReset(const std::vector<StreamReset>& rs, bool incoming, std::uint16_t stream) {
  for (const auto& r : rs)
    if (r.incoming == incoming && !r.refused && std::find(r.streams.begin(), r.streams.end(), stream) != r.streams.end())
      return true;
  return false;
}

// --- Partial reliability -----------------------------------------------------------------------------------------

struct PrCase {
  bool idata, unordered;
};

class PrMaxRetransmitsZero : public ::testing::TestWithParam<PrCase> {};

// A maxRetransmits=0 message whose only transmission is lost is never sent again; the peer skips it (FORWARD-TSN)
// and the stream, and a reliable ordered stream beside it, keep moving.
TEST_P(PrMaxRetransmitsZero, LostMessageIsNeverRetransmittedAndStreamsMoveOn) {
  const PrCase k = GetParam();
  for (std::uint64_t seed : {1, 2, 3}) {
    sim::LinkConfig link;
    link.delay = Duration(20'000);
    link.jitter = Duration(k.unordered ? 10'000 : 0);
    link.loss = 0.02;  // SACKs and the rest may be lost too
    Options o = testOptions();
    o.enableIData = k.idata;
    SimPair p(seed, link, o, o);
    ASSERT_TRUE(p.connect());
    const std::set<std::uint32_t> victims = {5, 17, 18};
    std::map<std::uint32_t, int> transmissions;  // unreliable PPID -> DATA chunks carrying it
    bool sawForwardTsn = false;
    p.a.filter = [&](Bytes& pkt, Timestamp) {
      bool drop = false;
      forEachChunk(pkt, [&](const RawChunk& c) {
        sawForwardTsn |= c.type == ChunkType::kForwardTsn || c.type == ChunkType::kIForwardTsn;
        if (c.type != ChunkType::kData && c.type != ChunkType::kIData) return;
        auto d = DataChunk::parse(c);
        if (!d || d->stream != 1) return;
        drop |= victims.count(d->ppid) && transmissions[d->ppid] == 0;
        ++transmissions[d->ppid];
      });
      return !drop;
    };
    const std::uint32_t n = 30;
    for (std::uint32_t i = 0; i < n; ++i) {
      ASSERT_TRUE(p.a.assoc.send(1, i, payloadFor(i, 200), SendOptions{k.unordered, 0, {}}, p.net.now()).ok());
      ASSERT_TRUE(p.a.assoc.send(2, 1000 + i, payloadFor(1000 + i, 300), {}, p.net.now()).ok());
    }
    p.flush();
    auto count = [&](std::uint16_t stream) {
      return std::count_if(p.atB.begin(), p.atB.end(), [&](const Message& m) { return m.stream == stream; });
    };
    ASSERT_TRUE(p.run([&] { return count(2) == n && p.a.assoc.metrics().bytesInFlight == 0; })) << "seed " << seed;
    // A message sent after the losses still arrives on the unreliable stream.
    ASSERT_TRUE(p.a.assoc.send(1, 99, asBytes("tail"), SendOptions{k.unordered, 0, {}}, p.net.now()).ok());
    p.flush();
    ASSERT_TRUE(p.run([&] { return count(1) >= 1 && p.atB.back().ppid == 99; }));
    for (auto v : victims) EXPECT_EQ(transmissions[v], 1) << "message " << v << " was retransmitted";
    std::int64_t last1 = -1, last2 = 999;
    std::set<std::uint32_t> seen;
    for (const auto& m : p.atB) {
      EXPECT_TRUE(seen.insert(m.ppid).second) << "duplicate " << m.ppid;
      EXPECT_FALSE(victims.count(m.ppid)) << "abandoned message " << m.ppid << " delivered";
      if (m.stream == 2) {
        EXPECT_EQ(m.ppid, last2 + 1);
        last2 = m.ppid;
        EXPECT_TRUE(m.payload == payloadFor(m.ppid, 300));
      } else if (!k.unordered) {
        EXPECT_GT(static_cast<std::int64_t>(m.ppid), last1);
        last1 = m.ppid;
      }
    }
    EXPECT_TRUE(sawForwardTsn);
    EXPECT_EQ(p.a.assoc.state(), State::Established);
  }
}

INSTANTIATE_TEST_SUITE_P(Kinds, PrMaxRetransmitsZero,
                         ::testing::Values(PrCase{false, false}, PrCase{false, true}, PrCase{true, false},
                                           PrCase{true, true}),
                         [](const auto& i) {
                           return std::string(i.param.idata ? "IData" : "Data") +
                                  (i.param.unordered ? "Unordered" : "Ordered");
                         });

/// Removes the chunks `drop` selects from a packet (recomputing the checksum); false if none is left.
bool removeChunks(Bytes& pkt, const std::function<bool(const RawChunk&)>& drop) {
  CommonHeader h;
  if (!parseCommonHeader(pkt, h, false).ok()) return true;
  Bytes out(pkt.size());
  PacketBuilder b(out, h.srcPort, h.dstPort, h.verificationTag);
  forEachChunk(pkt, [&](const RawChunk& c) {
    if (drop(c)) return;
    std::size_t at = beginChunk(b.writer(), c.type, c.flags);
    b.writer().bytes(c.value);
    endChunk(b.writer(), at);
  });
  if (b.empty()) return false;
  ByteView v = b.finish(true);
  pkt.assign(v.begin(), v.end());
  return true;
}

// Messages with a 60 ms lifetime on stream 1 (ordered and unordered, some spanning several packets), every
// transmission of some of them lost, beside a reliable ordered stream: a lost one is never delivered, and what is
// delivered arrives within lifetime + one RTT of send(); a lost message is abandoned when its lifetime ends (not
// when its loss is detected), so the ordered messages behind it are not held longer. The reliable stream delivers
// everything in order.
TEST(PrLifetime, NeverDeliveredAfterLifetimePlusOneRtt) {
  for (bool idata : {false, true}) {
    for (std::uint64_t seed : {1, 2, 3}) {
      sim::LinkConfig link;
      link.delay = Duration(20'000);  // RTT 40 ms
      Options o = testOptions();
      o.enableIData = idata;
      SimPair p(seed, link, o, o);
      ASSERT_TRUE(p.connect());
      const Duration lifetime(60'000), rtt(40'000);
      auto victim = [](std::uint32_t ppid) { return ppid < 100000 && ppid % 7 == 3; };
      p.a.filter = [&](Bytes& pkt, Timestamp) {
        return removeChunks(pkt, [&](const RawChunk& c) {
          if (c.type != ChunkType::kData && c.type != ChunkType::kIData) return false;
          auto d = DataChunk::parse(c);
          return d && d->stream == 1 && d->beginning() && victim(d->ppid);
        });
      };
      std::map<std::uint32_t, Timestamp> sentAt;
      SeededRandom sizes(seed);
      std::uint32_t id = 0, reliable = 0;
      for (int burst = 0; burst < 40; ++burst) {
        for (int i = 0; i < 4; ++i, ++id) {
          std::size_t size = 1 + sizes.below(i == 0 ? 3000 : 600);  // some span several packets
          sentAt[id] = p.net.now();
          ASSERT_TRUE(p.a.assoc.send(1, id, payloadFor(id, size), SendOptions{idata && i % 2, {}, lifetime},
                                     p.net.now()).ok());
        }
        ASSERT_TRUE(p.a.assoc.send(2, 100000 + reliable, payloadFor(reliable, 200), {}, p.net.now()).ok());
        ++reliable;
        p.flush();
        p.net.runFor(Duration(25'000));
      }
      ASSERT_TRUE(p.run([&] {
        return std::count_if(p.atB.begin(), p.atB.end(), [](const Message& m) { return m.stream == 2; }) ==
                   static_cast<std::ptrdiff_t>(reliable) &&
               p.a.assoc.metrics().bytesInFlight == 0;
      }));
      p.net.runFor(lifetime + rtt);  // the last victim's expiry releases the messages behind it
      int delivered = 0;
      std::uint32_t nextReliable = 100000;
      for (std::size_t i = 0; i < p.atB.size(); ++i) {
        const Message& m = p.atB[i];
        if (m.stream == 2) {
          EXPECT_EQ(m.ppid, nextReliable++);
          continue;
        }
        ++delivered;
        EXPECT_FALSE(victim(m.ppid)) << "lost message " << m.ppid << " delivered";
        EXPECT_LE(p.arrivalAtB[i] - sentAt.at(m.ppid), lifetime + rtt)
            << "message " << m.ppid << " seed " << seed << (idata ? " I-DATA" : " DATA");
      }
      EXPECT_EQ(delivered, static_cast<int>(id - (id + 3) / 7));  // all but the victims
    }
  }
}

// --- Stream reset under loss ---------------------------------------------------------------------------------

bool hasReconfig(ByteView pkt) {
  bool r = false;
  forEachChunk(pkt, [&](const RawChunk& c) { r |= c.type == ChunkType::kReConfig; });
  return r;
}

// The first RE-CONFIG each side sends (A's request, B's response, then B's request and A's response) is lost:
// retransmission completes the resets and the stream is reused with sequence numbers from 0.
TEST(SimStreamReset, RequestAndResponseLostThenStreamReused) {
  for (std::uint64_t seed : {1, 2, 3}) {
    sim::LinkConfig link;
    link.delay = Duration(15'000);
    link.loss = 0.03;
    SimPair p(seed, link);
    ASSERT_TRUE(p.connect());
    int reconfigA = 0, reconfigB = 0;
    p.a.filter = [&](Bytes& pkt, Timestamp) { return !(hasReconfig(pkt) && reconfigA++ % 2 == 0 && reconfigA < 4); };
    p.b.filter = [&](Bytes& pkt, Timestamp) { return !(hasReconfig(pkt) && reconfigB++ % 2 == 0 && reconfigB < 4); };
    for (std::uint32_t i = 0; i < 10; ++i) {
      ASSERT_TRUE(p.a.assoc.send(3, i, payloadFor(i, 1500), {}, p.net.now()).ok());
      ASSERT_TRUE(p.b.assoc.send(3, 50 + i, payloadFor(50 + i, 700), {}, p.net.now()).ok());
    }
    std::uint16_t s3 = 3;
    ASSERT_TRUE(p.a.assoc.resetStreams(std::span(&s3, 1), p.net.now()).ok());
    p.flush();
    ASSERT_TRUE(p.run([&] { return hasReset(p.resetsA, false, 3) && hasReset(p.resetsB, true, 3); }))
        << "seed " << seed;
    ASSERT_TRUE(p.b.assoc.resetStreams(std::span(&s3, 1), p.net.now()).ok());  // the peer closes its side too
    p.flush();
    ASSERT_TRUE(p.run([&] { return hasReset(p.resetsB, false, 3) && hasReset(p.resetsA, true, 3); }));
    EXPECT_GE(reconfigA, 3);  // lost ones were sent again
    EXPECT_GE(reconfigB, 3);
    // Reuse in both directions: the receivers expect SSN 0 again.
    for (std::uint32_t i = 0; i < 5; ++i) {
      ASSERT_TRUE(p.a.assoc.send(3, 200 + i, payloadFor(200 + i, 900), {}, p.net.now()).ok());
      ASSERT_TRUE(p.b.assoc.send(3, 300 + i, payloadFor(300 + i, 900), {}, p.net.now()).ok());
    }
    p.flush();
    ASSERT_TRUE(p.run([&] { return p.atB.size() == 15 && p.atA.size() == 15; }));
    for (std::uint32_t i = 0; i < 10; ++i) EXPECT_EQ(p.atB[i].ppid, i);
    for (std::uint32_t i = 0; i < 5; ++i) {
      EXPECT_EQ(p.atB[10 + i].ppid, 200 + i);
      EXPECT_EQ(p.atA[10 + i].ppid, 300 + i);
    }
    EXPECT_TRUE(p.established());
  }
}

// Both sides reset the same stream at the same instant (data channel closed on both ends at once), with loss.
TEST(SimStreamReset, BothSidesResetTheSameStreamAtOnce) {
  for (std::uint64_t seed : {1, 2, 3, 4}) {
    sim::LinkConfig link;
    link.delay = Duration(20'000);
    link.jitter = Duration(5'000);
    link.loss = 0.05;
    SimPair p(seed, link);
    ASSERT_TRUE(p.connect());
    for (std::uint32_t i = 0; i < 8; ++i) {
      ASSERT_TRUE(p.a.assoc.send(4, i, payloadFor(i, 2500), {}, p.net.now()).ok());
      ASSERT_TRUE(p.b.assoc.send(4, 50 + i, payloadFor(50 + i, 2500), {}, p.net.now()).ok());
    }
    std::uint16_t s4 = 4;
    ASSERT_TRUE(p.a.assoc.resetStreams(std::span(&s4, 1), p.net.now()).ok());
    ASSERT_TRUE(p.b.assoc.resetStreams(std::span(&s4, 1), p.net.now()).ok());
    p.flush();
    ASSERT_TRUE(p.run([&] {
      return hasReset(p.resetsA, false, 4) && hasReset(p.resetsA, true, 4) && hasReset(p.resetsB, false, 4) &&
             hasReset(p.resetsB, true, 4);
    })) << "seed " << seed;
    ASSERT_EQ(p.atB.size(), 8u);
    ASSERT_EQ(p.atA.size(), 8u);
    for (std::uint32_t i = 0; i < 5; ++i) {
      ASSERT_TRUE(p.a.assoc.send(4, 100 + i, payloadFor(100 + i, 500), {}, p.net.now()).ok());
      ASSERT_TRUE(p.b.assoc.send(4, 150 + i, payloadFor(150 + i, 500), {}, p.net.now()).ok());
    }
    p.flush();
    ASSERT_TRUE(p.run([&] { return p.atB.size() == 13 && p.atA.size() == 13; }));
    for (std::uint32_t i = 0; i < 5; ++i) {
      EXPECT_EQ(p.atB[8 + i].ppid, 100 + i);
      EXPECT_EQ(p.atA[8 + i].ppid, 150 + i);
    }
    EXPECT_TRUE(p.established());
  }
}

// --- A peer without extensions ------------------------------------------------------------------------------------

/// Rewrites an INIT or INIT-ACK without the capability parameters (Supported Extensions, Forward-TSN-Supported,
/// Zero Checksum Acceptable): what a plain RFC 9260 peer sends.
bool stripExtensions(Bytes& pkt) {
  CommonHeader h;
  if (!parseCommonHeader(pkt, h, false).ok()) return true;
  Bytes out(pkt.size());
  PacketBuilder b(out, h.srcPort, h.dstPort, h.verificationTag);
  forEachChunk(pkt, [&](const RawChunk& c) {
    std::size_t at = beginChunk(b.writer(), c.type, c.flags);
    if (c.type != ChunkType::kInit && c.type != ChunkType::kInitAck) {
      b.writer().bytes(c.value);
      endChunk(b.writer(), at);
      return;
    }
    b.writer().bytes(c.value.first(16));  // the fixed part
    TlvIterator it(c.value.subspan(16));
    Tlv t;
    while (it.next(t))
      if (t.type != ParamType::kSupportedExtensions && t.type != ParamType::kForwardTsnSupported &&
          t.type != ParamType::kZeroChecksumAcceptable)
        writeTlv(b.writer(), t.type, t.value);
    endChunk(b.writer(), at);
  });
  ByteView v = b.finish(true);
  pkt.assign(v.begin(), v.end());
  return true;
}

TEST(SimNegotiation, PeerWithoutAnyExtensionGetsPlainData) {
  for (std::uint64_t seed : {1, 2}) {
    sim::LinkConfig link;
    link.delay = Duration(15'000);
    link.loss = 0.05;
    Options full = testOptions();
    full.enableIData = true;
    full.enableZeroChecksum = true;
    SimPair p(seed, link, full, testOptions());
    p.b.filter = [](Bytes& pkt, Timestamp) { return stripExtensions(pkt); };
    bool aSentExtensionChunk = false, aSentZeroChecksum = false;
    p.a.filter = [&](Bytes& pkt, Timestamp) {
      CommonHeader h;
      if (parseCommonHeader(pkt, h, false).ok()) aSentZeroChecksum |= h.checksum == 0;
      forEachChunk(pkt, [&](const RawChunk& c) {
        aSentExtensionChunk |= c.type == ChunkType::kIData || c.type == ChunkType::kForwardTsn ||
                               c.type == ChunkType::kIForwardTsn || c.type == ChunkType::kReConfig;
      });
      return true;
    };
    ASSERT_TRUE(p.connect());
    // Partial reliability needs FORWARD-TSN: without it the limits cannot be honoured and messages stay reliable.
    const std::uint32_t n = 40;
    for (std::uint32_t i = 0; i < n; ++i) {
      SendOptions so{i % 3 == 0, i % 2 ? std::optional<int>(0) : std::nullopt, {}};
      ASSERT_TRUE(p.a.assoc.send(static_cast<std::uint16_t>(i % 4), i, payloadFor(i, 1 + i * 97), so,
                                 p.net.now()).ok());
    }
    p.flush();
    ASSERT_TRUE(p.run([&] { return p.atB.size() == n; })) << "seed " << seed;
    std::set<std::uint32_t> seen;
    for (const auto& m : p.atB) {
      EXPECT_TRUE(seen.insert(m.ppid).second);
      EXPECT_TRUE(m.payload == payloadFor(m.ppid, 1 + m.ppid * 97));
    }
    std::uint16_t s = 1;
    EXPECT_FALSE(p.a.assoc.resetStreams(std::span(&s, 1), p.net.now()).ok());  // no RE-CONFIG support
    EXPECT_FALSE(aSentExtensionChunk);
    EXPECT_FALSE(aSentZeroChecksum);
    EXPECT_TRUE(p.established());
  }
}

// --- Interleaving: head-of-line blocking --------------------------------------------------------------------------

struct HolResult {
  int packetsAhead = 0;   // packets A sent after the small message was queued and before the one carrying it
  Duration latency{0};    // small message: send() -> delivered at B
};

/// A 1 MiB message on stream 1 over a 10 Mbit/s, 20 ms RTT link; 300 ms in, a 100-byte message on stream 2.
HolResult measureHeadOfLine(bool idata, bool withBigMessage) {
  sim::LinkConfig link;
  link.delay = Duration(10'000);
  link.bandwidthBps = 10'000'000;
  Options o = testOptions();
  o.enableIData = idata;
  o.maxMessageSize = 2 * 1024 * 1024;
  SimPair p(1, link, o, o);
  EXPECT_TRUE(p.connect());
  Timestamp queuedAt = kNever;
  int ahead = 0;
  bool carried = false;
  p.a.filter = [&](Bytes& pkt, Timestamp now) {
    if (now < queuedAt || carried) return true;
    forEachChunk(pkt, [&](const RawChunk& c) {
      if (c.type != ChunkType::kData && c.type != ChunkType::kIData) return;
      auto d = DataChunk::parse(c);
      carried |= d && d->stream == 2;
    });
    if (!carried) ++ahead;
    return true;
  };
  if (withBigMessage) {
    EXPECT_TRUE(p.a.assoc.send(1, 1, payloadFor(1, 1024 * 1024), {}, p.net.now()).ok());
    p.flush();
  }
  p.net.runFor(Duration(300'000));
  queuedAt = p.net.now();
  EXPECT_TRUE(p.a.assoc.send(2, 2, payloadFor(2, 100), {}, queuedAt).ok());
  p.flush();
  EXPECT_TRUE(p.run([&] {
    return std::any_of(p.atB.begin(), p.atB.end(), [](const Message& m) { return m.stream == 2; });
  }));
  HolResult r;
  r.packetsAhead = ahead;
  for (std::size_t i = 0; i < p.atB.size(); ++i)
    if (p.atB[i].stream == 2) r.latency = p.arrivalAtB[i] - queuedAt;
  return r;
}

// RFC 8260's point: with I-DATA a small message is not stuck behind a large one on another stream. The scheduler
// puts it in the next packet but one (the packet being filled with the large message's next fragment goes first),
// so the delay it adds is at most one packet's serialization time (1200 B at 10 Mbit/s = 0.96 ms). With DATA it
// waits for the rest of the 1 MiB message. The end-to-end latency also includes the link's standing queue, which
// the congestion controller, not the scheduler, decides (printed for docs/BENCHMARKS.md).
TEST(SimInterleaving, SmallMessageNotBlockedByLargeOneWithIData) {
  HolResult idle = measureHeadOfLine(true, false);
  HolResult idata = measureHeadOfLine(true, true);
  HolResult data = measureHeadOfLine(false, true);
  const double packetMs = 1200.0 * 8 / 10e6 * 1e3;
  std::printf("head-of-line, 10 Mbit/s, 20 ms RTT: idle link %.2f ms; behind 1 MiB: I-DATA %d packet(s) ahead "
              "(%.2f ms), latency %.2f ms; DATA %d packets ahead (%.1f ms), latency %.1f ms\n",
              toSeconds(idle.latency) * 1e3, idata.packetsAhead, idata.packetsAhead * packetMs,
              toSeconds(idata.latency) * 1e3, data.packetsAhead, data.packetsAhead * packetMs,
              toSeconds(data.latency) * 1e3);
  EXPECT_EQ(idle.packetsAhead, 0);
  EXPECT_LE(idata.packetsAhead, 1);
  EXPECT_GT(data.packetsAhead, 100);  // DATA: the rest of the large message first
  EXPECT_GT(data.latency, idata.latency * 5);
}

}  // namespace
}  // namespace rtcpeer::sctp
