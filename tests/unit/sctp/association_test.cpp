#include <gtest/gtest.h>

#include "harness.hpp"
#include "sctp/packet/chunks.hpp"
#include "sctp/packet/parameters.hpp"
#include "sctp/rx/reassembly.hpp"
#include "sctp/tx/payload.hpp"

namespace rtcpeer::sctp {
namespace {

using testing::DirectPair;
using testing::payloadFor;
using testing::testOptions;
using testing::Workload;

bool hasChunk(ByteView packet, std::uint8_t type) {
  ChunkIterator it(packet);
  RawChunk c;
  while (it.next(c))
    if (c.type == type) return true;
  return false;
}

TEST(Association, HandshakeActivePassive) {
  DirectPair p;
  p.a.connect(p.now);
  ASSERT_TRUE(p.runUntil([&] { return p.a.state() == State::Established && p.b.state() == State::Established; },
                         Duration(1'000'000)));
  EXPECT_TRUE(DirectPair::has(p.eventsA, Event::Type::Connected));
  EXPECT_TRUE(DirectPair::has(p.eventsB, Event::Type::Connected));
  EXPECT_EQ(p.a.outboundStreams(), 65535);
  EXPECT_EQ(p.b.inboundStreams(), 65535);
}

TEST(Association, SimultaneousOpen) {
  DirectPair p;
  ASSERT_TRUE(p.connect());
  EXPECT_EQ(p.eventsA.size(), 1u);
  EXPECT_EQ(p.eventsB.size(), 1u);
  ASSERT_TRUE(p.a.send(1, 51, asBytes("hello"), {}, p.now).ok());
  p.flush();
  ASSERT_EQ(p.messagesB.size(), 1u);
  EXPECT_EQ(asString(p.messagesB[0].payload), "hello");
}

TEST(Association, SimultaneousOpenWithCrossingLosses) {
  for (int seed = 1; seed <= 6; ++seed) {
    DirectPair p(testOptions(), testOptions(), seed);
    SeededRandom loss(seed);
    p.drop = [&](bool, ByteView) { return loss.unit() < 0.3; };
    ASSERT_TRUE(p.connect()) << "seed " << seed;
    p.drop = nullptr;
    ASSERT_TRUE(p.a.send(0, 1, asBytes("x"), {}, p.now).ok());
    ASSERT_TRUE(p.runUntil([&] { return p.messagesB.size() == 1; }, Duration(5'000'000)));
  }
}

TEST(Association, InitRetransmittedAfterLoss) {
  DirectPair p;
  int inits = 0;
  p.drop = [&](bool aToB, ByteView pkt) { return aToB && hasChunk(pkt, ChunkType::kInit) && ++inits <= 2; };
  p.a.connect(p.now);
  Timestamp start = p.now;
  ASSERT_TRUE(p.runUntil([&] { return p.a.state() == State::Established; }, Duration(5'000'000)));
  EXPECT_EQ(inits, 3);
  // 200 ms + 400 ms of T1-init backoff.
  EXPECT_EQ(p.now - start, Duration(600'000));
}

TEST(Association, HandshakeFailsWithReason) {
  Options o = testOptions();
  o.maxInitRetransmits = 3;
  DirectPair p(o);
  p.drop = [](bool, ByteView) { return true; };
  p.a.connect(p.now);
  ASSERT_TRUE(p.runUntil([&] { return !p.eventsA.empty(); }, Duration(60'000'000)));
  EXPECT_EQ(p.eventsA[0].type, Event::Type::Aborted);
  EXPECT_NE(p.eventsA[0].reason.find("INIT-ACK"), std::string::npos);
  EXPECT_EQ(p.a.nextDeadline(), kNever);
}

// A peer whose SCTP never answers (Pion after a DTLS handshake it rejects without an alert) ends the handshake
// at Options::handshakeTimeout, long before maxInitRetransmits would (0.2 s RTO doubling to 8 s: ~36 s).
TEST(Association, HandshakeTimeoutBoundsASilentPeer) {
  Options o = testOptions();
  o.handshakeTimeout = Duration(5'000'000);
  DirectPair p(o);
  p.drop = [](bool aToB, ByteView) { return aToB; };
  const Timestamp start = p.now;
  p.a.connect(p.now);
  EXPECT_LE(p.a.nextDeadline(), start + Duration(5'000'000));
  ASSERT_TRUE(p.runUntil([&] { return !p.eventsA.empty(); }, Duration(60'000'000)));
  EXPECT_EQ(p.now - start, Duration(5'000'000));
  EXPECT_EQ(p.eventsA[0].type, Event::Type::Aborted);
  EXPECT_NE(p.eventsA[0].reason.find("within 5000 ms (no INIT-ACK)"), std::string::npos) << p.eventsA[0].reason;
  EXPECT_EQ(p.a.nextDeadline(), kNever);
}

// The bound is for silence: news of the peer from the layer below (a DTLS record) restarts it, so a live peer that
// is merely slow (a process setting up thousands of connections at once) is not failed by it.
TEST(Association, HandshakeTimeoutRestartsWhenThePeerIsHeardFrom) {
  Options o = testOptions();
  o.handshakeTimeout = Duration(5'000'000);
  DirectPair p(o);
  p.drop = [](bool aToB, ByteView) { return aToB; };
  const Timestamp start = p.now;
  p.a.connect(p.now);
  p.runUntil([] { return false; }, Duration(4'000'000));
  ASSERT_TRUE(p.eventsA.empty());
  const Timestamp heard = p.now;  // the last INIT retransmission before 4 s (3 s in)
  ASSERT_GT(heard - start, Duration(2'000'000));
  p.a.notePeerAlive(heard);
  ASSERT_TRUE(p.runUntil([&] { return !p.eventsA.empty(); }, Duration(60'000'000)));
  EXPECT_EQ(p.now, heard + Duration(5'000'000));
  EXPECT_EQ(p.eventsA[0].type, Event::Type::Aborted);
}

// The bound is for the handshake only: an association that came up lives on past it.
TEST(Association, HandshakeTimeoutEndsWithTheHandshake) {
  Options o = testOptions();
  o.handshakeTimeout = Duration(5'000'000);
  DirectPair p(o, o);
  ASSERT_TRUE(p.connect());
  p.runUntil([] { return false; }, Duration(10'000'000));
  EXPECT_EQ(p.a.state(), State::Established);
  EXPECT_EQ(p.eventsA.size(), 1u);
}

TEST(Association, CookieEchoLossRecovered) {
  DirectPair p;
  int echoes = 0;
  p.drop = [&](bool, ByteView pkt) { return hasChunk(pkt, ChunkType::kCookieEcho) && ++echoes == 1; };
  p.a.connect(p.now);
  ASSERT_TRUE(p.runUntil([&] { return p.a.state() == State::Established && p.b.state() == State::Established; },
                         Duration(5'000'000)));
  EXPECT_EQ(echoes, 2);
}

TEST(Association, CookieAckLossGivesDuplicateCookieHandling) {
  DirectPair p;
  int acks = 0;
  p.drop = [&](bool, ByteView pkt) { return hasChunk(pkt, ChunkType::kCookieAck) && ++acks == 1; };
  p.a.connect(p.now);
  ASSERT_TRUE(p.runUntil([&] { return p.a.state() == State::Established; }, Duration(5'000'000)));
  EXPECT_EQ(p.eventsB.size(), 1u);  // case D: no second Connected
}

TEST(Association, OrderedAndUnorderedTransferManyStreams) {
  DirectPair p;
  ASSERT_TRUE(p.connect());
  Workload w(3, 300, 256 * 1024, 20);
  p.onMessageB = [&](const Message& m) { w.onReceived(m); };
  w.sendAll(p.a, p.now);
  ASSERT_TRUE(p.runUntil([&] { return w.complete(); }, Duration(30'000'000)));
  EXPECT_EQ(p.a.totalBufferedAmount(), 0u);
  EXPECT_EQ(p.a.metrics().retransmissions, 0u);
}

// An idle association may drop its scratch and recycled buffers at any time between calls; traffic then
// resumes exactly as before, in both directions.
TEST(Association, ReleasedBuffersComeBackWithTraffic) {
  DirectPair p;
  ASSERT_TRUE(p.connect());
  for (int round = 0; round < 3; ++round) {
    if (round != 1) {  // round 1 reassembles into the buffers recycled after round 0
      p.a.releaseBuffers();
      p.b.releaseBuffers();
    }
    Workload w(2, 40, 64 * 1024, 100 + round);
    p.onMessageB = [&](const Message& m) { w.onReceived(m); };
    w.sendAll(p.a, p.now);
    const Bytes reply = payloadFor(7, 5000);
    ASSERT_TRUE(p.b.send(1, 53, reply, {}, p.now).ok());
    const std::size_t before = p.messagesA.size();
    ASSERT_TRUE(p.runUntil([&] { return w.complete() && p.messagesA.size() == before + 1; }, Duration(30'000'000)));
    EXPECT_TRUE(p.messagesA.back().payload == reply);
    for (Message& m : p.messagesB) p.b.recycle(std::move(m.payload));  // what the PeerConnection does
    p.messagesB.clear();
  }
}

TEST(Association, LargeMessagesCanBeConfiguredHigher) {
  Options o = testOptions();
  o.maxMessageSize = 4 * 1024 * 1024;
  DirectPair p(o, o);
  ASSERT_TRUE(p.connect());
  Bytes big = payloadFor(1, 3 * 1024 * 1024 + 17);
  ASSERT_TRUE(p.a.send(9, 53, big, {}, p.now).ok());
  ASSERT_TRUE(p.runUntil([&] { return p.messagesB.size() == 1; }, Duration(10'000'000)));
  EXPECT_TRUE(p.messagesB[0].payload == big);
}

TEST(Association, SendValidation) {
  DirectPair p;
  EXPECT_FALSE(p.a.send(0, 1, {}, {}, p.now).ok());
  Bytes tooBig(256 * 1024 + 1);
  EXPECT_FALSE(p.a.send(0, 1, tooBig, {}, p.now).ok());
  Options small = testOptions();
  small.streams = 4;
  DirectPair q(small, testOptions());
  ASSERT_TRUE(q.connect());
  EXPECT_EQ(q.a.outboundStreams(), 4);
  EXPECT_EQ(q.b.outboundStreams(), 4);
  EXPECT_FALSE(q.a.send(4, 1, asBytes("x"), {}, q.now).ok());
  EXPECT_TRUE(q.a.send(3, 1, asBytes("x"), {}, q.now).ok());
  q.a.shutdown(q.now);
  EXPECT_FALSE(q.a.send(3, 1, asBytes("x"), {}, q.now).ok());
}

TEST(Association, MessagesQueuedBeforeConnectAreSent) {
  DirectPair p;
  ASSERT_TRUE(p.a.send(2, 51, asBytes("early"), {}, p.now).ok());
  EXPECT_EQ(p.a.bufferedAmount(2), 5u);
  ASSERT_TRUE(p.connect());
  ASSERT_EQ(p.messagesB.size(), 1u);
  EXPECT_EQ(p.a.bufferedAmount(2), 0u);
}

TEST(Association, LossRecoveredByFastRetransmitBothControllers) {
  for (auto cc : {CongestionControl::Reno, CongestionControl::Bbr}) {
    Options o = testOptions();
    o.congestionControl = cc;
    DirectPair p(o, o);
    ASSERT_TRUE(p.connect());
    int n = 0;
    p.drop = [&](bool aToB, ByteView pkt) { return aToB && hasChunk(pkt, ChunkType::kData) && (++n % 7 == 3); };
    Workload w(5, 200, 64 * 1024, 8);
    p.onMessageB = [&](const Message& m) { w.onReceived(m); };
    w.sendAll(p.a, p.now);
    ASSERT_TRUE(p.runUntil([&] { return w.complete(); }, Duration(60'000'000)));
    EXPECT_GT(p.a.metrics().retransmissions, 0u);
    EXPECT_GT(p.a.metrics().fastRetransmits, 0u);
  }
}

TEST(Association, ShutdownBeforeEstablishedCloses) {
  for (int when = 0; when < 3; ++when) {
    DirectPair p;
    if (when >= 1) p.a.connect(p.now);
    if (when >= 2) {  // COOKIE-ECHOED
      auto init = p.a.pollTransmit(p.now);
      p.b.handleInput(Bytes(init->begin(), init->end()), p.now);
      auto ack = p.b.pollTransmit(p.now);
      p.a.handleInput(Bytes(ack->begin(), ack->end()), p.now);
      ASSERT_EQ(p.a.state(), State::CookieEchoed);
    }
    p.a.shutdown(p.now);
    p.drain();
    EXPECT_EQ(p.a.state(), State::Closed);
    ASSERT_FALSE(p.eventsA.empty());
    EXPECT_EQ(p.eventsA.back().type, Event::Type::Closed);
    EXPECT_EQ(p.a.nextDeadline(), kNever);
    EXPECT_FALSE(p.a.send(0, 1, asBytes("x"), {}, p.now).ok());
  }
}

TEST(Association, ReceiverWindowBlocksUntilApplicationReads) {
  Options ob = testOptions();
  ob.receiveWindow = 64 * 1024;
  ob.maxMessageSize = 16 * 1024;
  Options oa = testOptions();
  oa.maxMessageSize = 16 * 1024;
  DirectPair p(oa, ob);
  ASSERT_TRUE(p.connect());
  for (std::uint32_t i = 0; i < 40; ++i)
    ASSERT_TRUE(p.a.send(0, i, payloadFor(i, 16 * 1024), {}, p.now).ok());
  // Nobody reads on b: flush without draining its messages.
  for (int i = 0; i < 50; ++i) {
    while (auto pk = p.a.pollTransmit(p.now)) p.b.handleInput(Bytes(pk->begin(), pk->end()), p.now);
    while (auto pk = p.b.pollTransmit(p.now)) p.a.handleInput(Bytes(pk->begin(), pk->end()), p.now);
    p.now += Duration(300'000);
    p.a.handleTimeout(p.now);
    p.b.handleTimeout(p.now);
  }
  EXPECT_GT(p.a.totalBufferedAmount(), 300u * 1024);  // most is still queued
  EXPECT_LT(p.b.metrics().bytesReceived, 64u * 1024 + 20000);
  std::uint32_t next = 0;
  p.onMessageB = [&](const Message& m) {
    EXPECT_EQ(m.ppid, next++);
    EXPECT_TRUE(m.payload == payloadFor(m.ppid, 16 * 1024));
  };
  ASSERT_TRUE(p.runUntil([&] { return next == 40; }, Duration(30'000'000)));
  EXPECT_EQ(p.a.state(), State::Established);
}

TEST(Association, ShutdownFromEitherSideDeliversQueuedData) {
  for (bool fromA : {true, false}) {
    DirectPair p;
    ASSERT_TRUE(p.connect());
    Workload w(11, 50, 100000, 4);
    p.onMessageB = [&](const Message& m) { w.onReceived(m); };
    w.sendAll(p.a, p.now);
    if (fromA) p.a.shutdown(p.now);
    else p.b.shutdown(p.now);
    ASSERT_TRUE(p.runUntil([&] { return p.a.state() == State::Closed && p.b.state() == State::Closed; },
                           Duration(30'000'000)));
    EXPECT_TRUE(w.complete()) << fromA;
    EXPECT_TRUE(DirectPair::has(p.eventsA, Event::Type::Closed));
    EXPECT_TRUE(DirectPair::has(p.eventsB, Event::Type::Closed));
    EXPECT_EQ(p.a.nextDeadline(), kNever);
  }
}

TEST(Association, SimultaneousShutdown) {
  DirectPair p;
  ASSERT_TRUE(p.connect());
  p.a.shutdown(p.now);
  p.b.shutdown(p.now);
  ASSERT_TRUE(p.runUntil([&] { return p.a.state() == State::Closed && p.b.state() == State::Closed; },
                         Duration(10'000'000)));
  EXPECT_TRUE(DirectPair::has(p.eventsA, Event::Type::Closed));
  EXPECT_TRUE(DirectPair::has(p.eventsB, Event::Type::Closed));
}

TEST(Association, ShutdownSurvivesLoss) {
  for (int seed = 1; seed <= 5; ++seed) {
    DirectPair p(testOptions(), testOptions(), seed);
    ASSERT_TRUE(p.connect());
    SeededRandom loss(seed);
    p.drop = [&](bool, ByteView) { return loss.unit() < 0.3; };
    ASSERT_TRUE(p.a.send(0, 1, payloadFor(1, 5000), {}, p.now).ok());
    p.a.shutdown(p.now);
    // Either a clean close or, if the final SHUTDOWN-COMPLETE is lost, b times out its T2 and aborts.
    ASSERT_TRUE(p.runUntil([&] { return p.a.state() == State::Closed && p.b.state() == State::Closed; },
                           Duration(120'000'000)))
        << "seed " << seed;
    ASSERT_EQ(p.messagesB.size(), 1u);
  }
}

TEST(Association, AbortFromEitherSideInEveryState) {
  // Abort at each point of the life cycle; the peer learns it (once it exists) with the reason.
  for (int when = 0; when < 5; ++when) {
    for (bool fromA : {true, false}) {
      DirectPair p;
      p.a.connect(p.now);
      if (when >= 1) {  // after INIT went out (a in COOKIE-WAIT, b stateless)
        auto pkt = p.a.pollTransmit(p.now);
        ASSERT_TRUE(pkt);
        p.b.handleInput(Bytes(pkt->begin(), pkt->end()), p.now);
      }
      if (when >= 2) {  // a in COOKIE-ECHOED
        auto pkt = p.b.pollTransmit(p.now);
        ASSERT_TRUE(pkt);
        p.a.handleInput(Bytes(pkt->begin(), pkt->end()), p.now);
      }
      if (when >= 3) p.flush();  // established
      if (when >= 4) {           // shutting down with data in flight
        ASSERT_TRUE(p.a.send(0, 1, payloadFor(1, 50000), {}, p.now).ok());
        p.a.pollTransmit(p.now);
        p.a.shutdown(p.now);
      }
      Association& x = fromA ? p.a : p.b;
      x.abort("test abort", p.now);
      EXPECT_EQ(x.state(), State::Closed);
      p.flush();
      auto& mine = fromA ? p.eventsA : p.eventsB;
      auto& theirs = fromA ? p.eventsB : p.eventsA;
      ASSERT_FALSE(mine.empty());
      EXPECT_EQ(mine.back().type, Event::Type::Aborted);
      if (when >= 3) {
        ASSERT_FALSE(theirs.empty()) << when << fromA;
        EXPECT_EQ(theirs.back().type, Event::Type::Aborted);
        EXPECT_NE(theirs.back().reason.find("test abort"), std::string::npos) << theirs.back().reason;
        EXPECT_TRUE(theirs.back().peerUserAbort);  // abort() sends a User-Initiated Abort cause
        EXPECT_FALSE(mine.back().peerUserAbort);
      }
      EXPECT_FALSE(x.send(0, 1, asBytes("x"), {}, p.now).ok());
    }
  }
}

TEST(Association, PeerRestartIsDetected) {
  DirectPair p;
  ASSERT_TRUE(p.connect());
  ASSERT_TRUE(p.a.send(0, 1, asBytes("before"), {}, p.now).ok());
  p.flush();
  ASSERT_EQ(p.messagesB.size(), 1u);
  // b's process restarts: a fresh association with the same ports connects again.
  SeededRandom r2(99);
  Association b2(testOptions(), r2);
  b2.connect(p.now);
  std::vector<Event> eventsB2;
  for (int round = 0; round < 10; ++round) {
    while (auto pk = b2.pollTransmit(p.now)) p.a.handleInput(Bytes(pk->begin(), pk->end()), p.now);
    while (auto pk = p.a.pollTransmit(p.now)) b2.handleInput(Bytes(pk->begin(), pk->end()), p.now);
    while (auto e = b2.pollEvent()) eventsB2.push_back(*e);
  }
  p.drain();
  EXPECT_EQ(b2.state(), State::Established);
  EXPECT_TRUE(DirectPair::has(p.eventsA, Event::Type::Restarted));
  ASSERT_TRUE(p.a.send(0, 1, asBytes("after"), {}, p.now).ok());
  while (auto pk = p.a.pollTransmit(p.now)) b2.handleInput(Bytes(pk->begin(), pk->end()), p.now);
  auto m = b2.pollMessage();
  ASSERT_TRUE(m);
  EXPECT_EQ(asString(m->payload), "after");
}

TEST(Association, UnreachablePeerFailsAfterMaxRetransmits) {
  Options o = testOptions();
  o.maxRetransmits = 4;
  DirectPair p(o, o);
  ASSERT_TRUE(p.connect());
  p.drop = [](bool, ByteView) { return true; };
  ASSERT_TRUE(p.a.send(0, 1, asBytes("lost"), {}, p.now).ok());
  ASSERT_TRUE(p.runUntil([&] { return p.a.state() == State::Closed; }, Duration(60'000'000)));
  EXPECT_EQ(p.eventsA.back().type, Event::Type::Aborted);
  EXPECT_NE(p.eventsA.back().reason.find("retransmissions"), std::string::npos);
  EXPECT_EQ(p.a.metrics().t3Expirations, 5u);
}

TEST(Association, HeartbeatsDetectDeadPeer) {
  Options o = testOptions();
  o.heartbeatInterval = Duration(1'000'000);
  o.maxRetransmits = 2;
  DirectPair p(o, o);
  ASSERT_TRUE(p.connect());
  ASSERT_TRUE(p.runUntil([] { return false; }, Duration(5'000'000)) == false);
  EXPECT_EQ(p.a.state(), State::Established);  // heartbeats answered
  p.drop = [](bool, ByteView) { return true; };
  ASSERT_TRUE(p.runUntil([&] { return p.a.state() == State::Closed; }, Duration(60'000'000)));
  EXPECT_NE(p.eventsA.back().reason.find("heartbeat"), std::string::npos);
}

TEST(Association, IDataWhenBothSidesEnableIt) {
  Options o = testOptions();
  o.enableIData = true;
  DirectPair p(o, o);
  ASSERT_TRUE(p.connect());
  bool sawIData = false;
  p.drop = [&](bool, ByteView pkt) {
    sawIData |= hasChunk(pkt, ChunkType::kIData);
    EXPECT_FALSE(hasChunk(pkt, ChunkType::kData));
    return false;
  };
  Workload w(21, 100, 200000, 5);
  p.onMessageB = [&](const Message& m) { w.onReceived(m); };
  w.sendAll(p.a, p.now);
  ASSERT_TRUE(p.runUntil([&] { return w.complete(); }, Duration(30'000'000)));
  EXPECT_TRUE(sawIData);
}

TEST(Association, IDataWithLoss) {
  Options o = testOptions();
  o.enableIData = true;
  DirectPair p(o, o);
  ASSERT_TRUE(p.connect());
  SeededRandom loss(3);
  p.drop = [&](bool, ByteView) { return loss.unit() < 0.05; };
  Workload w(22, 100, 100000, 5);
  p.onMessageB = [&](const Message& m) { w.onReceived(m); };
  w.sendAll(p.a, p.now);
  ASSERT_TRUE(p.runUntil([&] { return w.complete(); }, Duration(60'000'000)));
}

TEST(Association, ZeroChecksumWhenNegotiated) {
  Options o = testOptions();
  o.enableZeroChecksum = true;
  DirectPair p(o, o);
  ASSERT_TRUE(p.connect());
  bool zero = false;
  p.drop = [&](bool, ByteView pkt) {
    zero |= hasChunk(pkt, ChunkType::kData) && loadBe32(pkt.data() + 8) == 0;
    return false;
  };
  ASSERT_TRUE(p.a.send(0, 1, asBytes("z"), {}, p.now).ok());
  p.flush();
  EXPECT_TRUE(zero);
  EXPECT_EQ(p.messagesB.size(), 1u);
}

// aiortc closes its association with an ABORT that carries no cause: the peer closing, not a failure.
TEST(Association, CauselessAbortIsThePeerClosing) {
  DirectPair p;
  ASSERT_TRUE(p.connect());
  std::uint32_t tagForA = 0;  // the verification tag A expects: the one B's packets carry
  p.drop = [&](bool aToB, ByteView pkt) {
    if (!aToB) tagForA = loadBe32(pkt.data() + 4);
    return false;
  };
  ASSERT_TRUE(p.b.send(0, 1, asBytes("x"), {}, p.now).ok());
  p.flush();
  ASSERT_NE(tagForA, 0u);
  Bytes buf(16);
  PacketBuilder b(MutableByteView(buf.data(), buf.size()), 5000, 5000, tagForA);
  b.writer().u8(ChunkType::kAbort);
  b.writer().u8(0);
  b.writer().u16(4);
  const ByteView abort = b.finish(true);
  p.a.handleInput(abort, p.now);
  p.drain();
  ASSERT_FALSE(p.eventsA.empty());
  EXPECT_EQ(p.eventsA.back().type, Event::Type::Aborted);
  EXPECT_TRUE(p.eventsA.back().peerUserAbort) << p.eventsA.back().reason;
}

// Which zero-checksum EDMID the INIT (or INIT-ACK) in `pkt` declares (0: none), or nullopt if it holds none.
std::optional<std::uint32_t> declaredZeroChecksum(ByteView pkt, std::uint8_t type) {
  ChunkIterator it(pkt);
  RawChunk c;
  while (it.next(c)) {
    if (c.type != type) continue;
    auto init = InitChunk::parse(c);
    if (!init) return 0xffffffffu;
    auto params = parseInitParams(init->params);
    return params ? params->zeroChecksumEdmid : 0xffffffffu;
  }
  return std::nullopt;
}

// Pion's SCTP drops an INIT-ACK carrying Zero Checksum Acceptable (it fails on parameters it does not know): the
// INIT-ACK declares it only when the peer's INIT did, so the peer's own INIT completes the handshake.
TEST(Association, InitAckDeclaresZeroChecksumOnlyToAPeerThatDid) {
  for (bool peerDeclares : {false, true}) {
    Options ours = testOptions(), theirs = testOptions();
    ours.enableZeroChecksum = true;
    theirs.enableZeroChecksum = peerDeclares;
    DirectPair p(ours, theirs);
    std::optional<std::uint32_t> declared;
    p.drop = [&](bool aToB, ByteView pkt) {
      if (aToB && !declared) declared = declaredZeroChecksum(pkt, ChunkType::kInitAck);
      return false;
    };
    p.b.connect(p.now);  // the peer's INIT, answered by ours
    ASSERT_TRUE(p.runUntil([&] { return p.a.state() == State::Established && p.b.state() == State::Established; },
                           Duration(1'000'000)));
    ASSERT_TRUE(declared.has_value());
    EXPECT_EQ(*declared, peerDeclares ? kEdmidDtls : 0u) << "peer declares: " << peerDeclares;
  }
}

// A passive peer that drops every INIT holding a parameter it does not know (Pion's SCTP with Zero Checksum
// Acceptable) still connects: the INIT declares zero checksums in its first two tries only.
TEST(Association, InitLeavesZeroChecksumOutAfterTwoUnansweredTries) {
  Options ours = testOptions();
  ours.enableZeroChecksum = true;
  DirectPair p(ours, testOptions());
  int dropped = 0;
  p.drop = [&](bool aToB, ByteView pkt) {
    const auto declared = aToB ? declaredZeroChecksum(pkt, ChunkType::kInit) : std::nullopt;
    if (!declared || *declared == 0) return false;
    ++dropped;
    return true;
  };
  const Timestamp start = p.now;
  p.a.connect(p.now);  // B stays passive
  ASSERT_TRUE(p.runUntil([&] { return p.a.state() == State::Established && p.b.state() == State::Established; },
                         Duration(5'000'000)));
  EXPECT_EQ(dropped, 2);
  EXPECT_EQ(p.now - start, Duration(600'000));  // INITs at 0 and 0.2 s dropped, the one at 0.6 s answered
  EXPECT_FALSE(p.a.sendsZeroChecksum());
}

TEST(Association, UnknownChunksFollowTheHighBitRules) {
  DirectPair p;
  ASSERT_TRUE(p.connect());
  auto inject = [&](std::uint8_t type) {
    Bytes buf(200);
    // Send from b to a with a's tag: reuse a real packet's header for the tag.
    ASSERT_TRUE(p.b.send(0, 1, asBytes("x"), {}, p.now).ok());
    auto real = p.b.pollTransmit(p.now);
    ASSERT_TRUE(real);
    std::uint32_t tag = loadBe32(real->data() + 4);
    PacketBuilder b(buf, 5000, 5000, tag);
    writeEmptyChunk(b.writer(), type);
    HeartbeatChunk::write(b.writer(), false, asBytes("hb-info"));
    ByteView pkt = b.finish();
    p.a.handleInput(Bytes(pkt.begin(), pkt.end()), p.now);
  };
  auto collect = [&] {
    std::vector<std::uint8_t> types;
    while (auto pk = p.a.pollTransmit(p.now)) {
      ChunkIterator it(*pk);
      RawChunk c;
      while (it.next(c)) types.push_back(c.type);
    }
    return types;
  };
  auto contains = [](const std::vector<std::uint8_t>& v, std::uint8_t t) {
    return std::find(v.begin(), v.end(), t) != v.end();
  };
  inject(0x3E);  // 00: stop, discard silently
  auto t = collect();
  EXPECT_FALSE(contains(t, ChunkType::kHeartbeatAck));
  EXPECT_FALSE(contains(t, ChunkType::kError));
  inject(0x7E);  // 01: stop, report
  t = collect();
  EXPECT_FALSE(contains(t, ChunkType::kHeartbeatAck));
  EXPECT_TRUE(contains(t, ChunkType::kError));
  inject(0xBE);  // 10: skip silently
  t = collect();
  EXPECT_TRUE(contains(t, ChunkType::kHeartbeatAck));
  EXPECT_FALSE(contains(t, ChunkType::kError));
  inject(0xFE);  // 11: skip, report
  t = collect();
  EXPECT_TRUE(contains(t, ChunkType::kHeartbeatAck));
  EXPECT_TRUE(contains(t, ChunkType::kError));
}

TEST(Association, WrongTagAndBadChecksumAreIgnored) {
  DirectPair p;
  ASSERT_TRUE(p.connect());
  ASSERT_TRUE(p.a.send(0, 1, asBytes("data"), {}, p.now).ok());
  auto pkt = p.a.pollTransmit(p.now);
  ASSERT_TRUE(pkt);
  Bytes bad(pkt->begin(), pkt->end());
  bad[bad.size() - 1] ^= 0xFF;  // checksum mismatch
  p.b.handleInput(bad, p.now);
  Bytes wrongTag(pkt->begin(), pkt->end());
  storeBe32(wrongTag.data() + 4, loadBe32(wrongTag.data() + 4) + 1);
  stampChecksum(wrongTag);
  p.b.handleInput(wrongTag, p.now);
  p.drain();
  EXPECT_TRUE(p.messagesB.empty());
  p.b.handleInput(Bytes(pkt->begin(), pkt->end()), p.now);
  p.drain();
  EXPECT_EQ(p.messagesB.size(), 1u);
}

TEST(Association, OneSackPerBatch) {
  Options o = testOptions();
  o.maxBurst = 0;  // all 8 packets in one batch
  DirectPair p(o, o);
  ASSERT_TRUE(p.connect());
  for (std::uint32_t i = 0; i < 8; ++i) ASSERT_TRUE(p.a.send(0, i, payloadFor(i, 1000), {}, p.now).ok());
  std::vector<Bytes> pkts;
  while (auto pk = p.a.pollTransmit(p.now)) pkts.emplace_back(pk->begin(), pk->end());
  ASSERT_EQ(pkts.size(), 8u);
  for (auto& pk : pkts) p.b.handleInput(pk, p.now);
  int sacks = 0;
  while (auto pk = p.b.pollTransmit(p.now)) sacks += hasChunk(*pk, ChunkType::kSack);
  EXPECT_EQ(sacks, 1);
  // A single packet is acknowledged by the delayed-ack timer.
  ASSERT_TRUE(p.a.send(0, 9, asBytes("one"), {}, p.now).ok());
  auto one = p.a.pollTransmit(p.now);
  p.b.handleInput(Bytes(one->begin(), one->end()), p.now);
  EXPECT_FALSE(p.b.pollTransmit(p.now));
  EXPECT_EQ(p.b.nextDeadline(), p.now + testOptions().delayedAckTimeout);
  p.now = p.b.nextDeadline();
  p.b.handleTimeout(p.now);
  auto sack = p.b.pollTransmit(p.now);
  ASSERT_TRUE(sack);
  EXPECT_TRUE(hasChunk(*sack, ChunkType::kSack));
}

// Large message buffers are reused instead of freed and reallocated (glibc trimmed the heap under 64 KiB
// messages, so each one paid page faults).
TEST(Buffers, RecycledBufferHoldsTheNextFragmentedMessage) {
  Reassembly r(262144);
  Bytes spare;
  spare.reserve(100000);
  const std::uint8_t* storage = spare.data();
  r.recycle(std::move(spare));
  const Bytes part(1000, 7);
  ASSERT_TRUE(r.add(DataChunk{1, 0, 0, 0, 53, DataChunk::kBeginning, part}, 1, false));
  ASSERT_TRUE(r.add(DataChunk{2, 0, 0, 0, 53, 0, part}, 2, false));
  ASSERT_TRUE(r.add(DataChunk{3, 0, 0, 0, 53, DataChunk::kEnding, part}, 3, false));
  auto m = r.pop();
  ASSERT_TRUE(m);
  EXPECT_EQ(m->payload, Bytes(3000, 7));
  EXPECT_EQ(m->payload.data(), storage);
  Bytes tiny;
  tiny.reserve(16);
  r.recycle(std::move(tiny));  // too small to be worth keeping: the next message allocates as before
  ASSERT_TRUE(r.add(DataChunk{4, 0, 1, 0, 53, DataChunk::kBeginning, part}, 4, false));
  ASSERT_TRUE(r.add(DataChunk{5, 0, 1, 0, 53, DataChunk::kEnding, part}, 5, false));
  m = r.pop();
  ASSERT_TRUE(m);
  EXPECT_GE(m->payload.capacity(), 2000u);
}

TEST(Buffers, FreedLargePayloadIsReusedForASimilarMessage) {
  const Bytes big(65536, 1), smaller(60000, 2), small(100, 3);
  const std::uint8_t* first = nullptr;
  {
    Payload p = Payload::copyOf(big);
    first = p.view().data();
  }
  Payload again = Payload::copyOf(smaller);
  EXPECT_EQ(again.view().data(), first);
  EXPECT_TRUE(std::equal(smaller.begin(), smaller.end(), again.view().begin()));
  EXPECT_EQ(again.size(), smaller.size());
  Payload other = Payload::copyOf(big);  // the pooled block is in use: a fresh one
  EXPECT_NE(other.view().data(), first);
  Payload tiny = Payload::copyOf(small);  // not from the pool
  EXPECT_EQ(tiny.size(), 100u);
}

// Issue 17 item 6: the thread's pool of freed send payloads is bounded in bytes (blocks above kPooledMax are
// freed, not kept) and an idle association's releaseBuffers() empties it.
TEST(Buffers, SendPayloadPoolIsBoundedAndTrimmedWhenIdle) {
  Payload::trimPool();
  Options o = testOptions();
  o.maxMessageSize = 4 * 1024 * 1024;
  DirectPair p(o, o);
  ASSERT_TRUE(p.connect());
  // A burst of large messages, every size class: each payload is freed once acknowledged.
  std::size_t sent = 0;
  for (std::size_t size : {std::size_t{5000}, std::size_t{64 * 1024}, std::size_t{200 * 1024},
                           std::size_t{1024 * 1024}, std::size_t{3 * 1024 * 1024}}) {
    const std::size_t count = std::min<std::size_t>(24, (12u << 20) / size);  // within the 16 MiB send buffer
    for (std::size_t i = 0; i < count; ++i, ++sent) {
      ASSERT_TRUE(p.a.send(1, 53, payloadFor(static_cast<std::uint32_t>(sent), size), {}, p.now).ok());
    }
    ASSERT_TRUE(p.runUntil([&] { return p.messagesB.size() == count && p.a.totalBufferedAmount() == 0; },
                           Duration(120'000'000)));
    p.messagesB.clear();
    EXPECT_LE(Payload::pooledBytes(), Payload::kMaxPooledBytes) << "after messages of " << size;
  }
  EXPECT_GT(Payload::pooledBytes(), 0u);  // the pool did its job during the burst
  p.a.releaseBuffers();
  EXPECT_EQ(Payload::pooledBytes(), 0u);
  // Traffic resumes as before.
  ASSERT_TRUE(p.a.send(1, 53, payloadFor(1, 70000), {}, p.now).ok());
  ASSERT_TRUE(p.runUntil([&] { return p.messagesB.size() == 1; }, Duration(10'000'000)));
  EXPECT_TRUE(p.messagesB[0].payload == payloadFor(1, 70000));
}

TEST(Buffers, PayloadsAboveThePooledMaximumAreFreed) {
  Payload::trimPool();
  { Payload big = Payload::copyOf(Bytes(Payload::kPooledMax + 1, 1)); }
  EXPECT_EQ(Payload::pooledBytes(), 0u);
  { Payload fits = Payload::copyOf(Bytes(Payload::kPooledMax, 1)); }
  EXPECT_EQ(Payload::pooledBytes(), Payload::kPooledMax);
  Payload::trimPool();
  EXPECT_EQ(Payload::pooledBytes(), 0u);
}

// A steady sender of small messages allocates nothing per message: a freed payload's block serves the next message
// of its size class; the classes are bounded and trimmed with the rest of the pool.
TEST(Buffers, SmallPayloadsReuseTheirSizeClass) {
  Payload::trimPool();
  const std::uint8_t* first = nullptr;
  {
    Payload a = Payload::copyOf(Bytes(100, 1));
    first = a.view().data();
  }
  EXPECT_EQ(Payload::pooledBytes(), 128u);  // 100 bytes round up to the 128-byte class
  Payload b = Payload::copyOf(Bytes(120, 2));
  EXPECT_EQ(b.view().data(), first);
  EXPECT_EQ(b.size(), 120u);
  EXPECT_EQ(b.view()[119], 2);
  Payload c = Payload::copyOf(Bytes(60, 3));  // another class: a block of its own
  EXPECT_NE(c.view().data(), first);
  // Each class keeps at most kSmallSlots blocks.
  {
    std::vector<Payload> many;
    for (std::size_t i = 0; i < 3 * Payload::kSmallSlots; ++i) many.push_back(Payload::copyOf(Bytes(2000, 4)));
  }
  EXPECT_LE(Payload::pooledBytes(), Payload::kSmallSlots * Payload::kSmallMax + 128);
  Payload::trimPool();
  EXPECT_EQ(Payload::pooledBytes(), 0u);
}

}  // namespace
}  // namespace rtcpeer::sctp
