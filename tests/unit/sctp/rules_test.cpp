// SCTP rules that a reordering, lossy or misbehaving peer exercises (issue 17 item 3): stale SACKs, "In progress"
// RE-CONFIG responses, DATA deferred behind a pending stream reset (RFC 6525 5.2.2 E2), refused FORWARD-TSNs,
// I-DATA flight accounting, and TSN / SSN / MID wrap-around. Packets from a "peer" are crafted with the peer's
// real verification tag, so each rule is hit exactly and deterministically.
#include <gtest/gtest.h>

#include <cstdio>
#include <cstring>

#include "harness.hpp"
#include "sctp/packet/chunks.hpp"
#include "sctp/packet/parameters.hpp"

namespace rtcpeer::sctp {
namespace {

using testing::DirectPair;
using testing::forEachChunk;
using testing::testOptions;
using testing::Workload;

std::uint32_t vtagOf(ByteView packet) { return loadBe32(packet.data() + 4); }

/// A packet from the peer (ports 5000/5000) carrying what `body` writes, with a valid checksum.
template <typename F>
Bytes craft(std::uint32_t vtag, F&& body) {
  Bytes buf(1200);
  PacketBuilder b(buf, 5000, 5000, vtag);
  body(b.writer());
  ByteView v = b.finish(true);
  return Bytes(v.begin(), v.end());
}

std::optional<DataChunk> dataWithPayload(ByteView packet, std::string_view payload) {
  std::optional<DataChunk> found;
  forEachChunk(packet, [&](const RawChunk& c) {
    if (c.type != ChunkType::kData && c.type != ChunkType::kIData) return;
    auto d = DataChunk::parse(c);
    if (d && asString(d->payload) == payload) found = *d;
  });
  return found;
}

bool has(ByteView packet, std::uint8_t type) {
  bool found = false;
  forEachChunk(packet, [&](const RawChunk& c) { found = found || c.type == type; });
  return found;
}

// RFC 9260 6.2.1 D.i: a SACK whose cumulative TSN ack is below the one already seen arrived out of order; it is
// dropped, so its older a_rwnd must not replace the newer one and the congestion controller must not see it.
// One with the same cumulative TSN ack is not stale (D.ii applies: its a_rwnd is taken).
TEST(SctpRules, StaleSackChangesNeitherRwndNorCongestionControl) {
  DirectPair p;
  ASSERT_TRUE(p.connect());
  std::vector<Bytes> sacks;
  p.drop = [&](bool aToB, ByteView pk) {
    if (!aToB && has(pk, ChunkType::kSack)) sacks.emplace_back(pk.begin(), pk.end());
    return false;
  };
  ASSERT_TRUE(p.a.send(0, 1, asBytes("one"), {}, p.now).ok());
  ASSERT_TRUE(p.runUntil([&] { return p.a.metrics().bytesInFlight == 0; }, Duration(1'000'000)));
  ASSERT_FALSE(sacks.empty());
  Bytes older = sacks.back();
  ASSERT_TRUE(p.a.send(0, 1, asBytes("two"), {}, p.now).ok());
  ASSERT_TRUE(p.runUntil([&] { return p.a.metrics().bytesInFlight == 0 && p.messagesB.size() == 2; },
                         Duration(1'000'000)));
  Bytes newer = sacks.back();
  // The older SACK comes late, claiming a window of 1000 bytes.
  auto withArwnd = [](Bytes pk, std::uint32_t arwnd) {
    storeBe32(pk.data() + kCommonHeaderSize + 4 + 4, arwnd);
    stampChecksum(pk);
    return pk;
  };
  const Metrics before = p.a.metrics();
  p.a.handleInput(withArwnd(older, 1000), p.now);
  Metrics after = p.a.metrics();
  EXPECT_EQ(after.peerRwnd, before.peerRwnd);
  EXPECT_EQ(after.cwnd, before.cwnd);
  EXPECT_EQ(after.ssthresh, before.ssthresh);
  // The current one, with the same cumulative TSN ack, does update the window.
  p.a.handleInput(withArwnd(newer, 5000), p.now);
  EXPECT_EQ(p.a.metrics().peerRwnd, 5000u);
}

// RFC 6525 5.2.7: "In progress" restarts the request's timer and that wait is not a failure; before, each expiry
// counted and eleven of them ABORTed the association while the peer was merely waiting for a lost DATA chunk.
TEST(SctpRules, InProgressResponseRestartsTheReconfigTimerAndNeverAborts) {
  DirectPair p;
  ASSERT_TRUE(p.connect());
  std::uint32_t vtagA = 0;
  std::vector<std::pair<Timestamp, std::uint32_t>> requests;  // when a sent each request, its sequence number
  p.drop = [&](bool aToB, ByteView pk) {
    if (!aToB) vtagA = vtagOf(pk);
    if (!aToB || !has(pk, ChunkType::kReConfig)) return false;
    forEachChunk(pk, [&](const RawChunk& c) {
      if (c.type != ChunkType::kReConfig) return;
      TlvIterator it(ReConfigChunk::parse(c)->params);
      Tlv t;
      while (it.next(t))
        if (auto r = OutgoingResetRequest::parse(t.value)) requests.emplace_back(p.now, r->requestSeq);
    });
    return true;  // the peer never sees it; the test answers
  };
  ASSERT_TRUE(p.a.send(1, 1, asBytes("x"), {}, p.now).ok());
  p.flush();
  ASSERT_NE(vtagA, 0u);
  ASSERT_TRUE(p.a.resetStreams(std::vector<std::uint16_t>{1}, p.now).ok());
  const Duration answerDelay(40'000);
  for (std::size_t round = 1; round <= 30; ++round) {
    p.flush();
    ASSERT_EQ(requests.size(), round);
    p.now += answerDelay;
    Timestamp answeredAt = p.now;
    p.a.handleInput(craft(vtagA, [&](SpanWriter& w) {
                      std::size_t at = beginChunk(w, ChunkType::kReConfig, 0);
                      ReconfigResponse::write(w, requests.back().second, ReconfigResponse::kInProgress);
                      endChunk(w, at);
                    }),
                    p.now);
    p.now = p.a.nextDeadline();
    ASSERT_NE(p.now, kNever);
    // Restarted at the answer, not left at the request's original deadline.
    ASSERT_GE(p.now - answeredAt, testOptions().rtoMin) << "round " << round;
    p.a.handleTimeout(p.now);
    p.b.handleTimeout(p.now);
    ASSERT_EQ(p.a.state(), State::Established) << "round " << round;
  }
  EXPECT_FALSE(DirectPair::has(p.eventsA, Event::Type::Aborted));
}

// RFC 6525 5.2.2 E2: the peer (like usrsctp) sends on a stream right after requesting its reset, with sequence
// numbers from 0 again, while an earlier DATA chunk of the stream is still missing. That DATA waits for the reset
// instead of being matched against the old sequence numbers and dropped.
TEST(SctpRules, DataAfterAPendingResetWaitsForIt) {
  DirectPair p;
  ASSERT_TRUE(p.connect());
  std::uint32_t vtagB = 0, lostTsn = 0;
  bool dropM1 = false;
  p.drop = [&](bool aToB, ByteView pk) {
    if (!aToB) return false;
    vtagB = vtagOf(pk);
    if (auto d = dataWithPayload(pk, "m1"); d && dropM1) {
      dropM1 = false;
      lostTsn = d->tsn;
      return true;
    }
    return false;
  };
  ASSERT_TRUE(p.a.send(1, 51, asBytes("m0"), {}, p.now).ok());
  p.flush();
  dropM1 = true;
  ASSERT_TRUE(p.a.send(1, 51, asBytes("m1"), {}, p.now).ok());
  p.flush();
  ASSERT_NE(lostTsn, 0u);
  ASSERT_TRUE(p.a.resetStreams(std::vector<std::uint16_t>{1}, p.now).ok());
  p.flush();  // b answers "in progress": TSN lostTsn is missing
  ASSERT_TRUE(p.resetsB.empty());
  p.b.handleInput(craft(vtagB, [&](SpanWriter& w) {
                    DataChunk{lostTsn + 1, 1, 0, 0, 51, DataChunk::kBeginning | DataChunk::kEnding,
                              asBytes("after")}
                        .write(w, false);
                  }),
                  p.now);
  p.drain();
  ASSERT_EQ(p.messagesB.size(), 1u);
  // The retransmission of m1 completes the TSNs the reset waited for.
  ASSERT_TRUE(p.runUntil([&] { return p.messagesB.size() == 3; }, Duration(3'000'000)));
  EXPECT_EQ(asString(p.messagesB[0].payload), "m0");
  EXPECT_EQ(asString(p.messagesB[1].payload), "m1");
  EXPECT_EQ(asString(p.messagesB[2].payload), "after");
  ASSERT_FALSE(p.resetsB.empty());
  EXPECT_TRUE(p.resetsB.front().incoming);
}

// A FORWARD-TSN too far ahead for the tracker is refused; it must not skip anything in reassembly either (before,
// the ordered stream moved past SSN 0 and the retransmitted message was dropped as old).
TEST(SctpRules, RefusedForwardTsnSkipsNothing) {
  DirectPair p;
  ASSERT_TRUE(p.connect());
  std::uint32_t vtagB = 0, lostTsn = 0;
  bool dropIt = true;
  p.drop = [&](bool aToB, ByteView pk) {
    if (!aToB) return false;
    vtagB = vtagOf(pk);
    if (auto d = dataWithPayload(pk, "m0"); d && dropIt) {
      dropIt = false;
      lostTsn = d->tsn;
      return true;
    }
    return false;
  };
  ASSERT_TRUE(p.a.send(1, 51, asBytes("m0"), {}, p.now).ok());
  p.flush();
  ASSERT_NE(lostTsn, 0u);
  const ForwardTsnChunk::Skip skip{1, false, 0};
  p.b.handleInput(craft(vtagB, [&](SpanWriter& w) {
                    ForwardTsnChunk::write(w, false, lostTsn + (1u << 20) + 10, std::span(&skip, 1));
                  }),
                  p.now);
  ASSERT_TRUE(p.runUntil([&] { return p.messagesB.size() == 1; }, Duration(3'000'000)));
  EXPECT_EQ(asString(p.messagesB[0].payload), "m0");
}

// RFC 8260: an I-DATA chunk header is 20 bytes, and the flight (what cwnd limits) counts it.
TEST(SctpRules, IDataFlightCountsTheTwentyByteHeader) {
  Options o = testOptions();
  o.enableIData = true;
  DirectPair p(o, o);
  ASSERT_TRUE(p.connect());
  ASSERT_TRUE(p.a.interleaving());
  ASSERT_TRUE(p.a.send(0, 1, Bytes(100, 7), {}, p.now).ok());
  ASSERT_TRUE(p.a.pollTransmit(p.now));
  EXPECT_EQ(p.a.metrics().bytesInFlight, 100u + DataChunk::kIDataHeader);
}

/// Hands out consecutive 32-bit values from `start` (verification tags, initial TSNs), so TSNs begin near 2^32.
class CountingRandom : public Random {
 public:
  explicit CountingRandom(std::uint32_t start) : next_(start) {}
  void fill(std::span<std::uint8_t> out) override {
    if (out.size() == 4) {
      std::uint32_t v = next_++;
      std::memcpy(out.data(), &v, 4);
      return;
    }
    for (auto& b : out) b = static_cast<std::uint8_t>(next_++);
  }

 private:
  std::uint32_t next_;
};

class Wrap : public ::testing::TestWithParam<bool> {};  // parameter: I-DATA

// TSNs (and RE-CONFIG request sequence numbers, which start at the initial TSN) cross 2^32 during a lossy
// transfer of fragmented messages; a stream reset straddles the wrap too.
TEST_P(Wrap, TsnWrapUnderLoss) {
  Options o = testOptions();
  o.enableIData = GetParam();
  CountingRandom ra(0xFFFFFF00u), rb(0xFFFFFE00u);
  DirectPair p(o, o, ra, rb);
  ASSERT_TRUE(p.connect());
  std::size_t packets = 0;
  p.drop = [&](bool, ByteView) { return ++packets % 9 == 4; };
  Workload w(17, 800, 20'000, 4);
  p.onMessageB = [&](const Message& m) { w.onReceived(m); };
  w.sendAll(p.a, p.now);
  ASSERT_TRUE(p.runUntil([&] { return w.complete(); }, Duration(120'000'000)));
  ASSERT_TRUE(p.a.resetStreams(std::vector<std::uint16_t>{0, 1}, p.now).ok());
  ASSERT_TRUE(p.runUntil([&] { return !p.resetsA.empty() && !p.resetsB.empty(); }, Duration(30'000'000)));
  EXPECT_FALSE(p.resetsA.front().refused);
  EXPECT_EQ(p.a.state(), State::Established);
  EXPECT_EQ(p.b.metrics().receiveBuffered, 0u);  // the window accounting returns to empty
}

// 70000 ordered messages on one stream: the 16-bit SSN wraps past 65535 (DATA); with I-DATA the 32-bit MID goes
// past it without wrapping. Loss makes messages wait for order across the wrap.
TEST_P(Wrap, SequenceNumbersPast65535StayInOrder) {
  Options o = testOptions();
  o.enableIData = GetParam();
  DirectPair p(o, o);
  ASSERT_TRUE(p.connect());
  std::size_t packets = 0;
  p.drop = [&](bool aToB, ByteView) { return aToB && ++packets % 13 == 6; };
  constexpr std::uint32_t kCount = 70'000;
  std::uint32_t expected = 0;
  bool inOrder = true;
  p.onMessageB = [&](const Message& m) {
    std::uint32_t v = loadBe32(m.payload.data());
    if (inOrder && v != expected) ADD_FAILURE() << "got " << v << " expecting " << expected;
    inOrder = inOrder && v == expected;
    ++expected;
  };
  for (std::uint32_t i = 0; i < kCount; ++i) {
    std::uint8_t b[4];
    storeBe32(b, i);
    ASSERT_TRUE(p.a.send(3, 51, ByteView(b, 4), {}, p.now).ok());
    if (i % 5000 == 4999) p.flush();
  }
  ASSERT_TRUE(p.runUntil([&] { return expected == kCount; }, Duration(120'000'000)))
      << expected << " delivered, in order " << inOrder << ", state " << toString(p.a.state()) << "/"
      << toString(p.b.state()) << ", a in flight " << p.a.metrics().bytesInFlight << ", buffered "
      << p.a.totalBufferedAmount();
  EXPECT_TRUE(inOrder);
  EXPECT_EQ(p.b.metrics().receiveBuffered, 0u);
}

INSTANTIATE_TEST_SUITE_P(DataAndIData, Wrap, ::testing::Bool());

// Receive back-pressure (issue 17 item 1): messages the application took but has not read count against a_rwnd.
// A reader that stops closes the window, the sender stalls (zero window probes only, and those never ABORT the
// association while the receiver answers them), and reading reopens the window at once with a window update.
TEST(ReceiveBackPressure, UnreadMessagesCloseTheWindowAndReadingReopensIt) {
  Options o = testOptions();
  o.receiveWindow = 64 * 1024;
  DirectPair p(o, o);
  ASSERT_TRUE(p.connect());
  std::size_t held = 0, peakHeld = 0;
  p.onMessageB = [&](const Message& m) {
    p.b.holdUnread(m.payload.size());
    held += m.payload.size();
    peakHeld = std::max(peakHeld, p.b.unreadBytes());
  };
  constexpr std::uint32_t kCount = 1000;
  for (std::uint32_t i = 0; i < kCount; ++i) {
    Bytes m(1000, static_cast<std::uint8_t>(i));
    storeBe32(m.data(), i);
    ASSERT_TRUE(p.a.send(2, 51, m, {}, p.now).ok());
  }
  ASSERT_TRUE(p.runUntil([&] { return p.a.metrics().peerRwnd == 0 && held >= o.receiveWindow; },
                         Duration(10'000'000)));
  // A minute of a reader that does not read: the sender only probes, memory stays bounded, nothing aborts.
  p.runUntil([] { return false; }, Duration(60'000'000));
  EXPECT_EQ(p.a.state(), State::Established);
  EXPECT_LE(peakHeld, o.receiveWindow + o.maxMessageSize + o.mtu);
  EXPECT_LT(p.messagesB.size(), kCount / 2);
  // Reading reopens the window: the window update goes out with the next packet, without waiting for a probe.
  p.onMessageB = nullptr;  // from now on the reader keeps up
  p.b.releaseUnread(p.b.unreadBytes());
  p.flush();
  EXPECT_GT(p.a.metrics().peerRwnd, 0u);
  ASSERT_TRUE(p.runUntil([&] { return p.messagesB.size() == kCount; }, Duration(60'000'000)));
  for (std::uint32_t i = 0; i < kCount; ++i) {
    ASSERT_EQ(loadBe32(p.messagesB[i].payload.data()), i);
    ASSERT_EQ(p.messagesB[i].payload.back(), static_cast<std::uint8_t>(i));
  }
  EXPECT_EQ(p.a.state(), State::Established);
  EXPECT_EQ(p.b.metrics().receiveBuffered, 0u);
}

// A peer that floods 1-byte fragments of messages it never completes (each its own run) is bounded by the
// window too: every held piece costs Reassembly::kOverhead, so at most (receiveWindow + maxMessageSize) / 65 of
// them are kept (the cumulative-TSN chunk is taken up to that hard cap).
TEST(ReceiveBackPressure, TinyFragmentFloodIsBoundedByTheWindow) {
  Options o = testOptions();
  o.receiveWindow = 64 * 1024;
  o.maxMessageSize = 64 * 1024;
  DirectPair p(o, o);
  ASSERT_TRUE(p.connect());
  std::uint32_t vtagB = 0, tsn = 0;
  p.drop = [&](bool aToB, ByteView pk) {
    if (aToB) {
      vtagB = vtagOf(pk);
      forEachChunk(pk, [&](const RawChunk& c) {
        if (c.type != ChunkType::kData) return;
        if (auto d = DataChunk::parse(c)) tsn = d->tsn;
      });
    }
    return false;
  };
  ASSERT_TRUE(p.a.send(0, 51, asBytes("x"), {}, p.now).ok());
  p.flush();
  // Consecutive TSNs, each the first fragment of a message on a different stream: all advance the cumulative TSN.
  std::size_t accepted = 0;
  for (std::uint32_t i = 1; i <= 5000; ++i) {
    p.b.handleInput(craft(vtagB, [&](SpanWriter& w) {
                      DataChunk{tsn + i, static_cast<std::uint16_t>(i % 1000), 0, 0, 51, DataChunk::kBeginning,
                                asBytes("y")}
                          .write(w, false);
                    }),
                    p.now);
    p.flush();
    accepted = p.b.metrics().dataChunksReceived - 1;
  }
  std::printf("tiny fragment flood: %zu of 5000 accepted, %zu bytes held\n", accepted, p.b.metrics().receiveBuffered);
  EXPECT_LE(accepted, 2100u);  // (64 KiB + 64 KiB) / (1 byte + 64); all 5000 were taken before
  EXPECT_LE(p.b.metrics().receiveBuffered, o.receiveWindow + o.maxMessageSize + o.mtu);
  EXPECT_EQ(p.b.state(), State::Established);
}

}  // namespace
}  // namespace rtcpeer::sctp
