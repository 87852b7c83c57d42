// End-to-end PeerConnection tests: two connections in one process over loopback UDP.
#include <gtest/gtest.h>

#include <algorithm>
#include <numeric>
#include <sstream>
#include <string>

#include "dtls/certificate.hpp"
#include "net/udp.hpp"
#include "unit/net/netns.hpp"
#include "unit/peer/harness.hpp"

namespace rtcpeer::test {
namespace {

using Bytes = std::vector<std::uint8_t>;

std::string text(const Bytes& b) { return std::string(b.begin(), b.end()); }

TEST(PeerConnection, InBandChannelOpensOnBothSides) {
  PeerPair p;
  auto ch = p.a.createDataChannel("chat");
  ASSERT_NE(ch, nullptr) << p.a.lastError();
  EXPECT_EQ(ch->readyState(), ReadyState::Connecting);
  EXPECT_EQ(ch->id(), DataChannel::kUnset);
  ASSERT_TRUE(p.connect()) << "a=" << static_cast<int>(p.a.connectionState())
                           << " b=" << static_cast<int>(p.b.connectionState());
  ASSERT_TRUE(p.runUntil([&] { return p.receivedByB.size() == 1 && ch->readyState() == ReadyState::Open; }));
  EXPECT_TRUE(p.errors.empty()) << p.errors.front();
  auto& remote = p.receivedByB[0];
  EXPECT_EQ(remote->label(), "chat");
  EXPECT_EQ(remote->readyState(), ReadyState::Open);
  EXPECT_EQ(remote->id(), ch->id());
  EXPECT_NE(ch->id(), DataChannel::kUnset);
  EXPECT_TRUE(p.receivedByA.empty());
  EXPECT_EQ(p.a.signalingState(), SignalingState::Stable);
  EXPECT_EQ(p.b.signalingState(), SignalingState::Stable);
  EXPECT_EQ(p.a.gatheringState(), GatheringState::Complete);
  EXPECT_EQ(p.b.gatheringState(), GatheringState::Complete);
  EXPECT_EQ(p.signalsOutsidePoll, 0);
}

TEST(PeerConnection, CandidatesCarryTheDataSectionMidAndIndex) {
  PeerPair p;
  std::vector<std::pair<std::string, int>> seen;
  p.b.onIceCandidateCreated([&](const std::string& mid, int index, const std::string& name) {
    seen.emplace_back(mid, index);
    EXPECT_EQ(p.a.addIceCandidate(mid, index, name), Error::Ok) << p.a.lastError();
  });
  auto ch = p.a.createDataChannel("x");
  ASSERT_TRUE(p.connect());
  ASSERT_FALSE(seen.empty());
  for (auto& [mid, index] : seen) {
    EXPECT_EQ(mid, "0");
    EXPECT_EQ(index, 0);
  }
}

struct Connected : ::testing::Test {
  PeerPair p;
  std::shared_ptr<DataChannel> local, remote;

  void open(const DataChannelInit& init = {}) {
    local = p.a.createDataChannel("data", init);
    ASSERT_NE(local, nullptr) << p.a.lastError();
    ASSERT_TRUE(p.connect());
    ASSERT_TRUE(p.runUntil([&] { return !p.receivedByB.empty() && local->readyState() == ReadyState::Open; }));
    remote = p.receivedByB[0];
  }
  bool receive(DataChannel& ch, int count) {
    return p.runUntil([&] { return ch.availablePacketCount() >= count; });
  }
};

TEST_F(Connected, TextAndBinaryMessagesBothWays) {
  open();
  local->setWriteMode(WriteMode::Text);
  ASSERT_EQ(local->putPacket("hello"), Error::Ok) << local->lastError();
  local->setWriteMode(WriteMode::Binary);
  const Bytes bin{0, 1, 2, 255};
  ASSERT_EQ(local->putPacket(bin), Error::Ok);
  ASSERT_EQ(remote->putPacket("back"), Error::Ok);
  ASSERT_TRUE(receive(*remote, 2));
  ASSERT_TRUE(receive(*local, 1));
  Bytes got;
  ASSERT_EQ(remote->getPacket(got), Error::Ok);
  EXPECT_EQ(text(got), "hello");
  EXPECT_TRUE(remote->wasStringPacket());
  ASSERT_EQ(remote->getPacket(got), Error::Ok);
  EXPECT_EQ(got, bin);
  EXPECT_FALSE(remote->wasStringPacket());
  ASSERT_EQ(local->getPacket(got), Error::Ok);
  EXPECT_EQ(text(got), "back");
  EXPECT_FALSE(local->wasStringPacket());  // remote's default write mode is Binary
  EXPECT_EQ(remote->getPacket(got), Error::Unavailable);
  EXPECT_FALSE(remote->lastError().empty());
}

TEST_F(Connected, StatsDescribeTheConnection) {
  EXPECT_FALSE(p.a.stats().hasSelectedPair);  // nothing yet
  open();
  ASSERT_EQ(local->putPacket(std::string_view("one")), Error::Ok);
  ASSERT_EQ(local->putPacket(std::string_view("two")), Error::Ok);
  ASSERT_TRUE(receive(*remote, 2));
  // The counters move with every SACK: give the last one time to arrive.
  ASSERT_TRUE(p.runUntil([&] { return p.a.stats().bytesInFlight == 0; }));

  const ConnectionStats a = p.a.stats(), b = p.b.stats();
  ASSERT_TRUE(a.hasSelectedPair);
  ASSERT_TRUE(b.hasSelectedPair);
  EXPECT_EQ(a.local.type, "host");
  EXPECT_EQ(a.local.address, "127.0.0.1");
  EXPECT_GT(a.local.port, 0);
  EXPECT_TRUE(a.local.relayProtocol.empty());
  // Each side's pair is the other's, mirrored.
  EXPECT_EQ(a.local.port, b.remote.port);
  EXPECT_EQ(a.remote.port, b.local.port);
  EXPECT_EQ(b.remote.address, "127.0.0.1");
  EXPECT_GT(a.iceChecksSent, 0u);
  EXPECT_GT(b.iceChecksReceived, 0u);
  EXPECT_NE(a.dtlsRole, b.dtlsRole);
  EXPECT_TRUE(a.dtlsRole == "client" || a.dtlsRole == "server") << a.dtlsRole;
  EXPECT_FALSE(a.dtlsCipher.empty());
  EXPECT_EQ(a.dtlsCipher, b.dtlsCipher);
  // DCEP's OPEN/ACK are messages too; the two user messages carried 6 bytes.
  EXPECT_GE(a.messagesSent, 2u);
  EXPECT_GE(b.messagesReceived, 2u);
  EXPECT_GE(a.bytesSent, 6u);
  EXPECT_GE(b.bytesReceived, 6u);
  EXPECT_GT(a.packetsSent, 0u);
  EXPECT_GT(a.roundTripTime.count(), 0);
  EXPECT_GT(a.congestionWindow, 0u);
  EXPECT_GT(a.peerReceiveWindow, 0u);
  // Two rtcpeer peers settle on every extension.
  EXPECT_TRUE(a.interleaving);
  EXPECT_TRUE(b.interleaving);
  EXPECT_TRUE(a.zeroChecksum);
  EXPECT_EQ(a.remoteMaxMessageSize, 262144u);

  p.a.close();
  EXPECT_FALSE(p.a.stats().hasSelectedPair);
}

TEST_F(Connected, EmptyMessages) {
  open();
  local->setWriteMode(WriteMode::Text);
  ASSERT_EQ(local->putPacket(std::string_view{}), Error::Ok) << local->lastError();
  local->setWriteMode(WriteMode::Binary);
  ASSERT_EQ(local->putPacket(std::span<const std::uint8_t>{}), Error::Ok);
  ASSERT_TRUE(receive(*remote, 2));
  Bytes got{1, 2, 3};
  ASSERT_EQ(remote->getPacket(got), Error::Ok);
  EXPECT_TRUE(got.empty());
  EXPECT_TRUE(remote->wasStringPacket());
  ASSERT_EQ(remote->getPacket(got), Error::Ok);
  EXPECT_TRUE(got.empty());
  EXPECT_FALSE(remote->wasStringPacket());
}

TEST_F(Connected, LargeMessagesArriveIntact) {
  open();
  Bytes big(256 * 1024);
  std::iota(big.begin(), big.end(), std::uint8_t{7});
  for (int i = 0; i < 3; ++i) ASSERT_EQ(local->putPacket(big), Error::Ok) << local->lastError();
  EXPECT_GT(local->bufferedAmount(), 0u);
  ASSERT_TRUE(receive(*remote, 3));
  for (int i = 0; i < 3; ++i) {
    Bytes got;
    ASSERT_EQ(remote->getPacket(got), Error::Ok);
    EXPECT_EQ(got, big);
  }
  ASSERT_TRUE(p.runUntil([&] { return local->bufferedAmount() == 0; }));
}

TEST_F(Connected, ReliabilityOptionsReachTheRemoteSide) {
  DataChannelInit unordered;
  unordered.ordered = false;
  open(unordered);
  EXPECT_FALSE(remote->isOrdered());
  EXPECT_EQ(remote->maxRetransmits(), DataChannel::kUnset);

  DataChannelInit rexmit;
  rexmit.maxRetransmits = 3;
  rexmit.protocol = "proto";
  auto c2 = p.a.createDataChannel("rexmit", rexmit);
  DataChannelInit timed;
  timed.maxPacketLifeTime = 150;
  timed.ordered = false;
  auto c3 = p.a.createDataChannel("timed", timed);
  ASSERT_TRUE(c2 && c3);
  ASSERT_TRUE(p.runUntil([&] { return p.receivedByB.size() == 3; }));
  auto& r2 = p.receivedByB[1];
  auto& r3 = p.receivedByB[2];
  EXPECT_EQ(r2->label(), "rexmit");
  EXPECT_EQ(r2->protocol(), "proto");
  EXPECT_TRUE(r2->isOrdered());
  EXPECT_EQ(r2->maxRetransmits(), 3);
  EXPECT_EQ(r2->maxPacketLifeTime(), DataChannel::kUnset);
  EXPECT_EQ(r3->label(), "timed");
  EXPECT_FALSE(r3->isOrdered());
  EXPECT_EQ(r3->maxPacketLifeTime(), 150);
  EXPECT_EQ(r3->maxRetransmits(), DataChannel::kUnset);
  // Partially reliable channels still deliver on a lossless path.
  ASSERT_EQ(c3->putPacket("t"), Error::Ok);
  ASSERT_EQ(local->putPacket("u"), Error::Ok);
  ASSERT_TRUE(receive(*r3, 1));
  ASSERT_TRUE(receive(*remote, 1));
}

TEST(PeerConnection, NegotiatedChannelsNeedNoAnnouncement) {
  PeerPair p;
  DataChannelInit init;
  init.negotiated = true;
  init.id = 7;
  auto ca = p.a.createDataChannel("neg", init);
  auto cb = p.b.createDataChannel("neg", init);
  ASSERT_TRUE(ca && cb);
  ASSERT_TRUE(p.connect());
  ASSERT_TRUE(p.runUntil([&] { return ca->readyState() == ReadyState::Open && cb->readyState() == ReadyState::Open; }));
  EXPECT_EQ(ca->id(), 7);
  EXPECT_TRUE(cb->isNegotiated());
  ASSERT_EQ(ca->putPacket("ping"), Error::Ok);
  ASSERT_TRUE(p.runUntil([&] { return cb->availablePacketCount() == 1; }));
  ASSERT_EQ(cb->putPacket("pong"), Error::Ok);
  ASSERT_TRUE(p.runUntil([&] { return ca->availablePacketCount() == 1; }));
  EXPECT_TRUE(p.receivedByA.empty());
  EXPECT_TRUE(p.receivedByB.empty());
}

TEST(PeerConnection, HundredChannelsAtOnce) {
  PeerPair p;
  std::vector<std::shared_ptr<DataChannel>> mine;
  for (int i = 0; i < 100; ++i) mine.push_back(p.a.createDataChannel("c" + std::to_string(i)));
  ASSERT_TRUE(p.connect());
  ASSERT_TRUE(p.runUntil([&] { return p.receivedByB.size() == 100; }));
  for (int i = 0; i < 100; ++i) {
    ASSERT_EQ(mine[i]->readyState(), ReadyState::Open);
    EXPECT_EQ(p.receivedByB[i]->label(), "c" + std::to_string(i));
    ASSERT_EQ(mine[i]->putPacket(std::to_string(i)), Error::Ok);
  }
  ASSERT_TRUE(p.runUntil([&] {
    return std::all_of(p.receivedByB.begin(), p.receivedByB.end(),
                       [](auto& c) { return c->availablePacketCount() == 1; });
  }));
  for (int i = 0; i < 100; ++i) {
    Bytes got;
    ASSERT_EQ(p.receivedByB[i]->getPacket(got), Error::Ok);
    EXPECT_EQ(text(got), std::to_string(i));
  }
}

TEST(PeerConnection, MessageAboveRemoteMaxMessageSizeIsRefused) {
  Configuration small = loopbackConfig();
  small.maxMessageSize = 4096;
  PeerPair p(loopbackConfig(), small);
  auto ch = p.a.createDataChannel("x");
  ASSERT_TRUE(p.connect());
  ASSERT_TRUE(p.runUntil([&] { return ch->readyState() == ReadyState::Open; }));
  EXPECT_EQ(ch->maxMessageSize(), 4096u);
  EXPECT_EQ(ch->putPacket(Bytes(4097)), Error::InvalidParameter);
  EXPECT_NE(ch->lastError().find("4096"), std::string::npos) << ch->lastError();
  EXPECT_EQ(ch->putPacket(Bytes(4096)), Error::Ok);
  EXPECT_TRUE(ch->lastError().empty());
}

TEST(PeerConnection, SendingBeforeOpenIsUnconfigured) {
  PeerPair p;
  auto ch = p.a.createDataChannel("x");
  EXPECT_EQ(ch->putPacket("early"), Error::Unconfigured);
  EXPECT_FALSE(ch->lastError().empty());
}

TEST_F(Connected, MessagesRightAfterTheOpenArrive) {
  open();
  // The OPEN and the first messages leave in the same poll, usually in one SCTP packet.
  auto fresh = p.a.createDataChannel("fresh");
  ASSERT_EQ(fresh->putPacket("first"), Error::Ok) << fresh->lastError();
  ASSERT_EQ(fresh->putPacket("second"), Error::Ok);
  ASSERT_TRUE(p.runUntil([&] { return p.receivedByB.size() == 2 && p.receivedByB[1]->availablePacketCount() == 2; }));
  Bytes got;
  ASSERT_EQ(p.receivedByB[1]->getPacket(got), Error::Ok);
  EXPECT_EQ(text(got), "first");
}

bool closedOnBothSides(PeerPair& p, DataChannel& x, DataChannel& y) {
  return p.runUntil([&] { return x.readyState() == ReadyState::Closed && y.readyState() == ReadyState::Closed; });
}

TEST_F(Connected, CloseReachesThePeerThroughAStreamReset) {
  open();
  local->close();
  EXPECT_EQ(local->readyState(), ReadyState::Closing);  // until both directions of the stream are reset
  EXPECT_EQ(local->putPacket("x"), Error::Unconfigured);
  local->close();  // idempotent
  ASSERT_TRUE(closedOnBothSides(p, *local, *remote));
  EXPECT_EQ(remote->putPacket("x"), Error::Unconfigured);
  EXPECT_EQ(p.a.connectionState(), ConnectionState::Connected);
  EXPECT_EQ(p.b.connectionState(), ConnectionState::Connected);
}

TEST_F(Connected, ThePeerCanCloseToo) {
  open();
  remote->close();
  ASSERT_TRUE(closedOnBothSides(p, *local, *remote));
  EXPECT_EQ(local->putPacket("x"), Error::Unconfigured);
}

TEST_F(Connected, BothSidesClosingAtOnce) {
  open();
  local->close();
  remote->close();
  ASSERT_TRUE(closedOnBothSides(p, *local, *remote));
  EXPECT_EQ(p.a.connectionState(), ConnectionState::Connected);
}

TEST_F(Connected, MessagesSentRightBeforeCloseArrive) {
  open();
  const Bytes big(200000, 0x5a);  // several round trips of congestion window: still queued at close()
  for (int i = 0; i < 5; ++i) ASSERT_EQ(local->putPacket(big), Error::Ok) << local->lastError();
  ASSERT_EQ(local->putPacket("last"), Error::Ok);
  local->close();
  ASSERT_TRUE(closedOnBothSides(p, *local, *remote));
  ASSERT_EQ(remote->availablePacketCount(), 6);  // readable after the close
  Bytes got;
  for (int i = 0; i < 5; ++i) {
    ASSERT_EQ(remote->getPacket(got), Error::Ok);
    EXPECT_EQ(got, big);
  }
  ASSERT_EQ(remote->getPacket(got), Error::Ok);
  EXPECT_EQ(text(got), "last");
}

TEST_F(Connected, StreamIdIsReusedOnceBothDirectionsAreReset) {
  open();
  const int oldId = local->id();
  local->close();
  ASSERT_TRUE(closedOnBothSides(p, *local, *remote));
  // A new in-band channel takes a fresh id (the old one may still be closing at a slower peer)...
  auto fresh = p.a.createDataChannel("fresh");
  ASSERT_NE(fresh, nullptr);
  ASSERT_TRUE(p.runUntil([&] { return fresh->readyState() == ReadyState::Open && p.receivedByB.size() == 2; }));
  EXPECT_NE(fresh->id(), oldId);
  // ...and the old id is usable again: negotiated channels on it, one per side.
  DataChannelInit init;
  init.negotiated = true;
  init.id = static_cast<std::uint16_t>(oldId);
  auto againA = p.a.createDataChannel("again", init);
  auto againB = p.b.createDataChannel("again", init);
  ASSERT_NE(againA, nullptr) << p.a.lastError();
  ASSERT_NE(againB, nullptr) << p.b.lastError();
  ASSERT_TRUE(p.runUntil([&] { return againA->readyState() == ReadyState::Open; }));
  ASSERT_EQ(againA->putPacket("new"), Error::Ok);
  ASSERT_TRUE(receive(*againB, 1));
  EXPECT_EQ(remote->availablePacketCount(), 0);  // nothing leaked to the old channel object
}

TEST(PeerConnection, ClosingSomeOfManyChannelsLeavesTheOthersWorking) {
  PeerPair p;
  std::vector<std::shared_ptr<DataChannel>> mine;
  for (int i = 0; i < 64; ++i) mine.push_back(p.a.createDataChannel("c" + std::to_string(i)));
  ASSERT_TRUE(p.connect());
  ASSERT_TRUE(p.runUntil([&] { return p.receivedByB.size() == 64; }));
  auto& theirs = p.receivedByB;
  const int firstId = mine[0]->id();
  // Every third channel closes, alternately from either side; one goes by dropping its last reference.
  for (int i = 0; i < 64; i += 3) (i % 2 ? theirs[i] : mine[i])->close();
  mine[1].reset();
  auto closed = [](int i) { return i % 3 == 0 || i == 1; };
  ASSERT_TRUE(p.runUntil([&] {
    for (int i = 0; i < 64; ++i)
      if (closed(i) && (theirs[i]->readyState() != ReadyState::Closed ||
                        (mine[i] && mine[i]->readyState() != ReadyState::Closed)))
        return false;
    return true;
  }));
  for (int i = 0; i < 64; ++i) {
    if (closed(i)) continue;
    ASSERT_EQ(mine[i]->readyState(), ReadyState::Open) << i;
    ASSERT_EQ(mine[i]->putPacket(std::to_string(i)), Error::Ok);
    ASSERT_EQ(theirs[i]->putPacket("r" + std::to_string(i)), Error::Ok);
  }
  ASSERT_TRUE(p.runUntil([&] {
    for (int i = 0; i < 64; ++i)
      if (!closed(i) && (theirs[i]->availablePacketCount() != 1 || mine[i]->availablePacketCount() != 1)) return false;
    return true;
  }));
  for (int i = 0; i < 64; ++i) {
    if (closed(i)) continue;
    Bytes got;
    ASSERT_EQ(theirs[i]->getPacket(got), Error::Ok);
    EXPECT_EQ(text(got), std::to_string(i));
    ASSERT_EQ(mine[i]->getPacket(got), Error::Ok);
    EXPECT_EQ(text(got), "r" + std::to_string(i));
  }
  // The next channel takes a fresh id, not a just-freed one (it may still be closing at a slower peer).
  auto fresh = p.a.createDataChannel("fresh");
  ASSERT_TRUE(p.runUntil([&] { return fresh->readyState() == ReadyState::Open && p.receivedByB.size() == 65; }));
  EXPECT_NE(fresh->id(), firstId);
  EXPECT_EQ(p.receivedByB[64]->id(), fresh->id());
}

TEST_F(Connected, ReceivedMessagesStayReadableAfterClose) {
  open();
  ASSERT_EQ(local->putPacket("kept"), Error::Ok);
  ASSERT_TRUE(receive(*remote, 1));
  p.b.close();
  EXPECT_EQ(remote->readyState(), ReadyState::Closed);
  Bytes got;
  ASSERT_EQ(remote->getPacket(got), Error::Ok);
  EXPECT_EQ(text(got), "kept");
}

// "Last words, then close()": the message, the ABORT and the close_notify reach the peer in one batch of one poll();
// the message is delivered to its channel before the channel closes (it was on the wire first).
TEST_F(Connected, AMessageSentJustBeforeTheConnectionClosesArrives) {
  open();
  ASSERT_EQ(local->putPacket("last words"), Error::Ok);
  ASSERT_EQ(p.a.poll(), Error::Ok);  // transmitted; the peer has not polled since
  p.a.close();
  ASSERT_TRUE(p.runUntil([&] { return remote->readyState() == ReadyState::Closed; }));
  EXPECT_EQ(p.b.connectionState(), ConnectionState::Closed);
  Bytes got;
  ASSERT_EQ(remote->getPacket(got), Error::Ok);
  EXPECT_EQ(text(got), "last words");
}

TEST_F(Connected, WholeConnectionCloseReachesThePeer) {
  open();
  p.a.close();
  EXPECT_EQ(p.a.connectionState(), ConnectionState::Closed);
  EXPECT_EQ(p.a.signalingState(), SignalingState::Closed);
  EXPECT_EQ(local->readyState(), ReadyState::Closed);
  EXPECT_EQ(p.a.poll(), Error::Unconfigured);
  EXPECT_FALSE(p.a.lastError().empty());
  EXPECT_EQ(p.a.createOffer(), Error::Unconfigured);
  EXPECT_EQ(local->putPacket("x"), Error::Unconfigured);
  ASSERT_TRUE(p.runUntil([&] { return remote->readyState() == ReadyState::Closed; }));
  EXPECT_TRUE(p.b.connectionState() == ConnectionState::Closed || p.b.connectionState() == ConnectionState::Failed);
}

// close() sends what browsers send: an SCTP ABORT (User-Initiated Abort), then the DTLS close_notify. aiortc
// closes its channels on the ABORT only; the close_notify alone left them open.
TEST_F(Connected, CloseSendsAUserInitiatedAbortFirst) {
  open();
  std::vector<std::string> logged;
  const LogLevel level = logLevel();
  setLogLevel(LogLevel::Info);
  setLogSink([&](LogLevel, std::string_view component, std::string_view message) {
    if (component == "peer") logged.emplace_back(message);
  });
  p.a.close();
  const bool closed = p.runUntil([&] { return remote->readyState() == ReadyState::Closed; });
  setLogSink(nullptr);
  setLogLevel(level);
  ASSERT_TRUE(closed);
  EXPECT_EQ(p.b.connectionState(), ConnectionState::Closed);
  const auto abort = std::find_if(logged.begin(), logged.end(), [](const std::string& m) {
    return m.find("the peer closed the connection (SCTP ABORT: peer aborted: User-Initiated Abort") == 0;
  });
  EXPECT_NE(abort, logged.end()) << "B never saw the ABORT";
}

TEST_F(Connected, ChannelOutlivesItsConnection) {
  open();
  ASSERT_EQ(local->putPacket("last"), Error::Ok);
  ASSERT_TRUE(receive(*remote, 1));
  p.b.initialize(loopbackConfig());  // destroys b's previous session under the channel
  EXPECT_EQ(remote->readyState(), ReadyState::Closed);
  EXPECT_EQ(remote->putPacket("x"), Error::Unconfigured);
  EXPECT_EQ(remote->availablePacketCount(), 1);
  EXPECT_EQ(remote->bufferedAmount(), 0u);
}

TEST(PeerConnection, DroppingTheLastReferenceClosesTheChannel) {
  PeerPair p;
  auto keep = p.a.createDataChannel("keep");
  p.a.createDataChannel("dropped");  // the result is discarded at once
  ASSERT_TRUE(p.connect());
  ASSERT_TRUE(p.runUntil([&] { return keep->readyState() == ReadyState::Open && !p.receivedByB.empty(); }));
  p.pollBoth();
  ASSERT_EQ(p.receivedByB.size(), 1u);
  EXPECT_EQ(p.receivedByB[0]->label(), "keep");
}

TEST(PeerConnection, ReinitializeAndReconnect) {
  PeerPair p;
  auto first = p.a.createDataChannel("one");
  ASSERT_TRUE(p.connect());
  ASSERT_TRUE(p.runUntil([&] { return p.receivedByB.size() == 1; }));
  p.receivedByB.clear();

  p.a.close();
  EXPECT_EQ(p.a.poll(), Error::Unconfigured);
  ASSERT_EQ(p.a.initialize(loopbackConfig()), Error::Ok);
  ASSERT_EQ(p.b.initialize(loopbackConfig()), Error::Ok);  // without close(): initialize() closes the old one
  EXPECT_EQ(first->readyState(), ReadyState::Closed);
  EXPECT_EQ(p.a.connectionState(), ConnectionState::New);
  EXPECT_EQ(p.a.signalingState(), SignalingState::Stable);
  auto second = p.a.createDataChannel("two");
  ASSERT_TRUE(p.connect());
  ASSERT_TRUE(p.runUntil([&] { return p.receivedByB.size() == 1 && second->readyState() == ReadyState::Open; }));
  EXPECT_EQ(p.receivedByB[0]->label(), "two");
  ASSERT_EQ(second->putPacket("again"), Error::Ok);
  ASSERT_TRUE(p.runUntil([&] { return p.receivedByB[0]->availablePacketCount() == 1; }));
}

TEST(PeerConnection, ConnectTimeoutFailsWithoutCandidates) {
  Configuration c = loopbackConfig();
  c.connectTimeout = std::chrono::milliseconds(300);
  PeerPair p(c, c);
  auto ch = p.a.createDataChannel("x");
  // Candidates are never relayed, so ICE has nothing to check.
  p.a.onIceCandidateCreated([](const std::string&, int, const std::string&) {});
  p.b.onIceCandidateCreated([](const std::string&, int, const std::string&) {});
  ASSERT_EQ(p.a.createOffer(), Error::Ok);
  ASSERT_TRUE(p.runUntil([&] { return p.a.connectionState() == ConnectionState::Connecting; }));
  EXPECT_NE(p.a.nextDeadline(), std::chrono::steady_clock::time_point::max());
  ASSERT_TRUE(p.runUntil([&] { return p.a.connectionState() == ConnectionState::Failed; }, std::chrono::seconds(5)));
  EXPECT_EQ(ch->readyState(), ReadyState::Closed);
  EXPECT_FALSE(ch->lastError().empty());
  EXPECT_EQ(p.a.poll(), Error::Ok);  // a failed connection still polls; only close() makes it Unconfigured
}

// The fingerprint a fresh PeerConnection with `config` offers.
std::string offeredFingerprint(const Configuration& config) {
  PeerConnection pc;
  EXPECT_EQ(pc.initialize(config), Error::Ok) << pc.lastError();
  std::string sdp;
  pc.onSessionDescriptionCreated([&](const std::string&, const std::string& s) { sdp = s; });
  auto channel = pc.createDataChannel("x");
  EXPECT_EQ(pc.createOffer(), Error::Ok) << pc.lastError();
  for (int i = 0; i < 100 && sdp.empty(); ++i) pc.poll();
  const auto at = sdp.find("a=fingerprint:");
  return at == std::string::npos ? std::string() : sdp.substr(at + 14, sdp.find_first_of("\r\n", at) - at - 14);
}

TEST(PeerConnection, PemCertificateGivesAStableFingerprint) {
  auto cert = dtls::Certificate::generate();
  ASSERT_TRUE(cert);
  auto pem = (*cert)->toPem();
  ASSERT_TRUE(pem);
  Configuration c = loopbackConfig();
  c.certificatePem = pem->first;
  c.privateKeyPem = pem->second;
  EXPECT_EQ(offeredFingerprint(c), (*cert)->sdpFingerprint());
  EXPECT_EQ(offeredFingerprint(c), (*cert)->sdpFingerprint());
  EXPECT_NE(offeredFingerprint(loopbackConfig()), (*cert)->sdpFingerprint());
  // Both ends on the same loaded identity still complete DTLS and open a channel.
  PeerPair p(c, c);
  auto ch = p.a.createDataChannel("x");
  ASSERT_TRUE(p.connect());
  ASSERT_TRUE(p.runUntil([&] { return ch->readyState() == ReadyState::Open && !p.receivedByB.empty(); }));
}

TEST(PeerConnection, BadPemIsInvalidParameter) {
  auto a = dtls::Certificate::generate();
  auto b = dtls::Certificate::generate();
  ASSERT_TRUE(a && b);
  Configuration c = loopbackConfig();
  c.certificatePem = (*a)->toPem()->first;
  c.privateKeyPem = (*b)->toPem()->second;
  PeerConnection pc;
  EXPECT_EQ(pc.initialize(c), Error::InvalidParameter);
  EXPECT_NE(pc.lastError().find("does not belong"), std::string::npos) << pc.lastError();
}

TEST(PeerConnection, FingerprintMismatchFails) {
  PeerPair p;
  auto ch = p.a.createDataChannel("x");
  p.a.onSessionDescriptionCreated([&](const std::string& type, const std::string& sdp) {
    EXPECT_EQ(p.a.setLocalDescription(type, sdp), Error::Ok);
    // Flip one hex digit of the fingerprint: ICE still connects, DTLS must refuse the certificate.
    std::string forged = sdp;
    auto at = forged.find("a=fingerprint:sha-256 ") + 22;
    forged[at] = forged[at] == 'A' ? 'B' : 'A';
    EXPECT_EQ(p.b.setRemoteDescription(type, forged), Error::Ok) << p.b.lastError();
  });
  ASSERT_EQ(p.a.createOffer(), Error::Ok);
  ASSERT_TRUE(p.runUntil([&] { return p.b.connectionState() == ConnectionState::Failed; }));
  EXPECT_NE(p.a.connectionState(), ConnectionState::Connected);
  EXPECT_TRUE(p.receivedByB.empty());
}

// No wall-clock bounds (they fail on a loaded machine): a wait() that slept through due work or a datagram would
// sleep for an hour, and the ctest timeout fails the test.
TEST(PeerConnection, WaitSleepsUntilTrafficOrTimeout) {
  PeerPair p;
  auto ch = p.a.createDataChannel("x");
  ASSERT_TRUE(p.connect());
  ASSERT_TRUE(p.runUntil([&] { return !p.receivedByB.empty(); }));
  auto remote = p.receivedByB[0];
  p.pollBoth();
  ASSERT_EQ(p.b.wait(std::chrono::milliseconds(30)), Error::Ok);  // returns by its timeout or a deadline
  ASSERT_EQ(ch->putPacket("wake"), Error::Ok);
  // The message waits in `a` for its next poll(): `a` must not sleep on it.
  const auto due = p.a.nextDeadline();
  EXPECT_LE(due, std::chrono::steady_clock::now());
  ASSERT_EQ(p.a.wait(std::chrono::hours(1)), Error::Ok);
  p.a.poll();
  // `b` wakes for the datagram (or an earlier timer of its own) and then has the message.
  while (remote->availablePacketCount() == 0) {
    ASSERT_EQ(p.b.wait(std::chrono::hours(1)), Error::Ok);
    p.b.poll();
  }
  p.b.close();
  EXPECT_EQ(p.b.wait(std::chrono::milliseconds(1)), Error::Unconfigured);
  EXPECT_EQ(p.b.nextDeadline(), std::chrono::steady_clock::time_point::max());
}

// Any timeout is accepted: milliseconds::max() used to overflow the conversion to a microsecond deadline.
TEST(PeerConnection, WaitAcceptsAnyTimeout) {
  PeerConnection pc;
  ASSERT_EQ(pc.initialize(loopbackConfig()), Error::Ok) << pc.lastError();
  auto ch = pc.createDataChannel("x");
  ASSERT_EQ(pc.createOffer(), Error::Ok) << pc.lastError();  // its signal is due: wait() returns at once
  EXPECT_EQ(pc.wait(std::chrono::milliseconds::max()), Error::Ok);
  EXPECT_EQ(pc.wait(std::chrono::milliseconds::min()), Error::Ok);
}

TEST(PeerConnection, SilenceIsDisconnectedThenRecovers) {
  Configuration c = loopbackConfig();
  // Long enough that a loaded machine's scheduling gaps between polls do not look like silence.
  c.disconnectedTimeout = std::chrono::milliseconds(1500);
  PeerPair p(c, c);
  auto ch = p.a.createDataChannel("x");
  ASSERT_TRUE(p.connect());
  // An idle but healthy connection stays Connected: consent checks keep the pair alive.
  p.runUntil([] { return false; }, std::chrono::milliseconds(2500));
  EXPECT_EQ(p.a.connectionState(), ConnectionState::Connected);
  EXPECT_EQ(p.b.connectionState(), ConnectionState::Connected);
  // `a` stops polling: `b` hears nothing.
  const auto end = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (p.b.connectionState() != ConnectionState::Disconnected && std::chrono::steady_clock::now() < end) {
    p.b.poll();
    p.b.wait(std::chrono::milliseconds(5));
  }
  ASSERT_EQ(p.b.connectionState(), ConnectionState::Disconnected);
  ASSERT_TRUE(p.runUntil([&] {
    return p.a.connectionState() == ConnectionState::Connected && p.b.connectionState() == ConnectionState::Connected;
  }));
  ASSERT_EQ(ch->putPacket("still here"), Error::Ok);
  ASSERT_TRUE(p.runUntil([&] { return p.receivedByB.size() == 1 && p.receivedByB[0]->availablePacketCount() == 1; }));
}

TEST(PeerConnection, ConnectsOverIpv6Loopback) {
  Configuration c;
  c.interfaces = {"::1"};
  PeerPair p(c, c);
  auto ch = p.a.createDataChannel("v6");
  if (!p.connect() && !p.errors.empty() && p.errors.front().find("bind") != std::string::npos)
    GTEST_SKIP() << "no IPv6 loopback: " << p.errors.front();
  ASSERT_EQ(p.a.connectionState(), ConnectionState::Connected) << (p.errors.empty() ? "" : p.errors.front());
  ASSERT_TRUE(p.runUntil([&] { return p.receivedByB.size() == 1; }));
}

TEST(PeerConnection, StrayDatagramsAreIgnored) {
  PeerPair p;
  std::vector<std::string> bCandidates;
  p.b.onIceCandidateCreated([&](const std::string& mid, int index, const std::string& name) {
    if (!name.empty()) bCandidates.push_back(name);
    p.a.addIceCandidate(mid, index, name);
  });
  auto ch = p.a.createDataChannel("x");
  ASSERT_TRUE(p.connect());
  ASSERT_TRUE(p.runUntil([&] { return p.receivedByB.size() == 1; }));
  ASSERT_FALSE(bCandidates.empty());
  // "candidate:<foundation> 1 udp <priority> 127.0.0.1 <port> typ host"
  std::istringstream fields(bCandidates[0]);
  std::string skip, ip;
  int port = 0;
  fields >> skip >> skip >> skip >> skip >> ip >> port;
  auto target = SocketAddress::parse(ip, static_cast<std::uint16_t>(port));
  ASSERT_TRUE(target);
  auto intruder = net::UdpSocket::bind(*SocketAddress::parse("127.0.0.1", 0));
  ASSERT_TRUE(intruder);
  // DTLS application data, a DTLS alert, STUN garbage, a binding request without credentials, and junk, all
  // from an address ICE never validated.
  std::vector<Bytes> junk = {{23, 0xfe, 0xfd, 0, 1, 0, 0, 0, 0, 0, 9, 0, 4, 1, 2, 3, 4},
                             {21, 0xfe, 0xfd, 0, 0, 0, 0, 0, 0, 0, 1, 0, 2, 2, 40},
                             {0, 1, 0, 0, 0x21, 0x12, 0xa4, 0x42, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12},
                             {0, 1, 0, 4, 0x21, 0x12},
                             {200, 1, 2, 3},
                             {}};
  for (int round = 0; round < 20; ++round)
    for (const auto& j : junk) intruder->sendTo(*target, j);
  p.runUntil([] { return false; }, std::chrono::milliseconds(200));
  EXPECT_EQ(p.b.connectionState(), ConnectionState::Connected);
  ASSERT_EQ(ch->putPacket("fine"), Error::Ok);
  ASSERT_TRUE(p.runUntil([&] { return p.receivedByB[0]->availablePacketCount() == 1; }));
}

// Where the sole interface is loopback (this test's own loopback-only namespace; elsewhere the default configuration
// would gather on real interfaces, which tests must not use), a default configuration gathers on loopback.
TEST(PeerConnection, DefaultConfigurationFallsBackToLoopback) {
  RTCPEER_REQUIRE_LOOPBACK_NAMESPACE();
  ASSERT_TRUE(net::enumerateInterfaces(false).empty());
  PeerPair p(Configuration{}, Configuration{});
  auto ch = p.a.createDataChannel("lo");
  ASSERT_TRUE(p.connect()) << (p.errors.empty() ? "" : p.errors.front());
}

TEST(PeerConnection, CandidatesUseTheRealMlineIndex) {
  // An offer whose data section is the second m-line (a rejected audio section first): the answerer's candidates
  // must name index 1, not Godot's constant 0.
  PeerConnection offerer, answerer;
  ASSERT_EQ(offerer.initialize(loopbackConfig()), Error::Ok);
  ASSERT_EQ(answerer.initialize(loopbackConfig()), Error::Ok);
  std::string offer, answer;
  std::vector<std::pair<std::string, int>> seen;
  offerer.onSessionDescriptionCreated([&](const std::string&, const std::string& sdp) { offer = sdp; });
  answerer.onSessionDescriptionCreated([&](const std::string&, const std::string& sdp) { answer = sdp; });
  answerer.onIceCandidateCreated([&](const std::string& mid, int index, const std::string&) {
    seen.emplace_back(mid, index);
  });
  auto ch = offerer.createDataChannel("x");
  ASSERT_EQ(offerer.createOffer(), Error::Ok);
  offerer.poll();
  auto at = offer.find("m=application");
  ASSERT_NE(at, std::string::npos);
  offer.insert(at, "m=audio 0 UDP/TLS/RTP/SAVPF 111\r\nc=IN IP4 0.0.0.0\r\na=mid:audio\r\n");
  ASSERT_EQ(answerer.setRemoteDescription("offer", offer), Error::Ok) << answerer.lastError();
  answerer.poll();
  ASSERT_FALSE(answer.empty());
  EXPECT_LT(answer.find("m=audio 0"), answer.find("m=application"));
  ASSERT_EQ(answerer.setLocalDescription("answer", answer), Error::Ok) << answerer.lastError();
  for (int i = 0; i < 100 && answerer.gatheringState() != GatheringState::Complete; ++i) answerer.poll();
  answerer.poll();
  ASSERT_GE(seen.size(), 2u);  // a host candidate and the end-of-candidates
  for (auto& [mid, index] : seen) {
    EXPECT_EQ(mid, "0");
    EXPECT_EQ(index, 1);
  }
  EXPECT_EQ(answerer.addIceCandidate("", 1, "candidate:1 1 udp 2130706431 127.0.0.1 9 typ host"), Error::Ok)
      << answerer.lastError();
  EXPECT_EQ(answerer.addIceCandidate("", 0, "candidate:1 1 udp 2130706431 127.0.0.1 9 typ host"),
            Error::InvalidParameter);
}

TEST(PeerConnectionMisuse, CreateOfferWithoutChannels) {
  PeerConnection pc;
  EXPECT_EQ(pc.createOffer(), Error::Unconfigured);
  EXPECT_FALSE(pc.lastError().empty());
}

TEST(PeerConnectionMisuse, SetLocalDescriptionRefusesGarbageAndForeignDescriptions) {
  PeerConnection pc, other;
  ASSERT_EQ(pc.initialize(loopbackConfig()), Error::Ok);
  ASSERT_EQ(other.initialize(loopbackConfig()), Error::Ok);
  EXPECT_EQ(pc.setLocalDescription("offer", "garbage"), Error::Failed);  // nothing was created yet
  EXPECT_FALSE(pc.lastError().empty());

  std::string offer, otherOffer;
  pc.onSessionDescriptionCreated([&](const std::string&, const std::string& sdp) { offer = sdp; });
  other.onSessionDescriptionCreated([&](const std::string&, const std::string& sdp) { otherOffer = sdp; });
  auto c1 = pc.createDataChannel("x");
  auto c2 = other.createDataChannel("x");
  ASSERT_EQ(pc.createOffer(), Error::Ok);
  ASSERT_EQ(other.createOffer(), Error::Ok);
  EXPECT_TRUE(offer.empty()) << "signals fire only inside poll()";
  pc.poll();
  other.poll();
  ASSERT_FALSE(offer.empty());
  EXPECT_EQ(pc.setLocalDescription("offer", "v=0\r\nm=garbage"), Error::InvalidParameter);
  EXPECT_FALSE(pc.lastError().empty());
  EXPECT_EQ(pc.setLocalDescription("offer", otherOffer), Error::InvalidParameter);
  EXPECT_EQ(pc.setLocalDescription("answer", offer), Error::Failed);
  EXPECT_EQ(pc.setLocalDescription("rollback", offer), Error::InvalidParameter);
  EXPECT_EQ(pc.signalingState(), SignalingState::Stable);
  EXPECT_EQ(pc.setLocalDescription("offer", offer), Error::Ok) << pc.lastError();
  EXPECT_TRUE(pc.lastError().empty());
  EXPECT_EQ(pc.signalingState(), SignalingState::HaveLocalOffer);
  EXPECT_EQ(pc.gatheringState(), GatheringState::New);  // changes with the candidate signals, inside poll()
  pc.poll();
  EXPECT_NE(pc.gatheringState(), GatheringState::New);  // host-only gathering may complete at once
  EXPECT_EQ(pc.createOffer(), Error::Failed);
  EXPECT_FALSE(pc.lastError().empty());
}

TEST(PeerConnectionMisuse, AddIceCandidateNeedsARemoteDescriptionAndAValidLine) {
  PeerPair p;
  const std::string line = "candidate:1 1 udp 2130706431 127.0.0.1 5000 typ host";
  EXPECT_EQ(p.b.addIceCandidate("0", 0, line), Error::Unconfigured);
  EXPECT_FALSE(p.b.lastError().empty());
  auto ch = p.a.createDataChannel("x");
  // Stop before b answers, so the calls below run in a known state.
  p.a.onSessionDescriptionCreated([&](const std::string& type, const std::string& sdp) {
    EXPECT_EQ(p.a.setLocalDescription(type, sdp), Error::Ok);
    EXPECT_EQ(p.b.setRemoteDescription(type, sdp), Error::Ok);
  });
  ASSERT_EQ(p.a.createOffer(), Error::Ok);
  p.a.poll();
  EXPECT_EQ(p.b.signalingState(), SignalingState::HaveRemoteOffer);
  EXPECT_EQ(p.b.addIceCandidate("0", 0, "a=" + line), Error::Ok) << p.b.lastError();
  EXPECT_EQ(p.b.addIceCandidate("0", 0, "candidate:garbage"), Error::InvalidParameter);
  EXPECT_FALSE(p.b.lastError().empty());
  EXPECT_EQ(p.b.addIceCandidate("nope", 0, line), Error::InvalidParameter);
  EXPECT_EQ(p.b.addIceCandidate("", 0, line), Error::Ok);
  EXPECT_EQ(p.b.addIceCandidate("0", 0, ""), Error::Ok);  // end-of-candidates
}

TEST(PeerConnectionMisuse, SetRemoteDescriptionMalformed) {
  PeerConnection pc;
  EXPECT_EQ(pc.setRemoteDescription("offer", "v=0\r\no=broken\r\n"), Error::InvalidParameter);
  EXPECT_FALSE(pc.lastError().empty());
  EXPECT_EQ(pc.setRemoteDescription("offer", "v=0\r\ns=-\r\nt=0 0\r\n"), Error::InvalidParameter);
  EXPECT_NE(pc.lastError().find("data-channel"), std::string::npos) << pc.lastError();
  EXPECT_EQ(pc.setRemoteDescription("answer", "v=0\r\n"), Error::Failed);  // no local offer
  EXPECT_EQ(pc.setRemoteDescription("bogus", "v=0\r\n"), Error::InvalidParameter);
  EXPECT_EQ(pc.signalingState(), SignalingState::Stable);
}

TEST(PeerConnectionMisuse, InvalidConfigurationAndChannelInit) {
  PeerConnection pc;
  Configuration bad;
  bad.iceServers.push_back({{"http://example.com"}, "", ""});
  EXPECT_EQ(pc.initialize(bad), Error::InvalidParameter);
  EXPECT_FALSE(pc.lastError().empty());
  EXPECT_EQ(pc.poll(), Error::Unconfigured);
  ASSERT_EQ(pc.initialize(loopbackConfig()), Error::Ok);
  DataChannelInit init;
  init.id = 3;  // id without negotiated
  EXPECT_EQ(pc.createDataChannel("x", init), nullptr);
  EXPECT_FALSE(pc.lastError().empty());
  EXPECT_EQ(pc.poll(), Error::Ok);
}

TEST(PeerConnection, CallbacksMayCloseTheConnection) {
  PeerPair p;
  auto ch = p.a.createDataChannel("x");
  int candidates = 0;
  p.a.onIceCandidateCreated([&](const std::string&, int, const std::string&) {
    ++candidates;
    p.a.close();  // drops the rest of this batch
  });
  ASSERT_EQ(p.a.createOffer(), Error::Ok);
  for (int i = 0; i < 50 && p.a.connectionState() != ConnectionState::Closed; ++i) p.pollBoth();
  EXPECT_EQ(candidates, 1);
  EXPECT_EQ(p.a.poll(), Error::Unconfigured);
}

}  // namespace
}  // namespace rtcpeer::test
