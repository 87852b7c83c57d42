// Lifecycle and threads through the public API (issue 17 item 7): a PeerConnection destroyed inside one of its
// own callbacks, and the last reference to a DataChannel dropped on another thread while the connection is
// being polled. Both run under ASan in CI: a use after free or a double close fails them.
#include <gtest/gtest.h>

#include <atomic>
#include <memory>
#include <thread>

#include "unit/peer/harness.hpp"

namespace rtcpeer::test {
namespace {

TEST(Lifecycle, DestroyedInsideItsOwnDescriptionCallback) {
  auto pc = std::make_unique<PeerConnection>();
  ASSERT_EQ(pc->initialize(loopbackConfig()), Error::Ok);
  auto channel = pc->createDataChannel("x");
  ASSERT_NE(channel, nullptr);
  int descriptions = 0, candidates = 0;
  pc->onSessionDescriptionCreated([&](const std::string&, const std::string&) {
    ++descriptions;
    pc.reset();  // the object whose poll() is running
  });
  pc->onIceCandidateCreated([&](const std::string&, int, const std::string&) { ++candidates; });
  ASSERT_EQ(pc->createOffer(), Error::Ok);
  PeerConnection* raw = pc.get();
  EXPECT_EQ(raw->poll(), Error::Ok);  // returns normally; nothing touches the destroyed object
  EXPECT_EQ(pc, nullptr);
  EXPECT_EQ(descriptions, 1);
  EXPECT_EQ(candidates, 0);
  EXPECT_EQ(channel->readyState(), ReadyState::Closed);  // the channel outlives its connection
  EXPECT_EQ(channel->putPacket(std::string_view("late")), Error::Unconfigured);
}

// A connected answerer destroyed when the peer's channel arrives, with more signals of the same batch queued and
// a poll() nested inside the callback: none fires after the destruction, and the other side sees the close.
TEST(Lifecycle, DestroyedInsideACallbackOfAConnectedPeer) {
  auto a = std::make_unique<PeerConnection>();
  auto b = std::make_unique<PeerConnection>();
  ASSERT_EQ(a->initialize(loopbackConfig()), Error::Ok);
  ASSERT_EQ(b->initialize(loopbackConfig()), Error::Ok);
  a->onSessionDescriptionCreated([&](const std::string& type, const std::string& sdp) {
    a->setLocalDescription(type, sdp);
    if (b) b->setRemoteDescription(type, sdp);
  });
  b->onSessionDescriptionCreated([&](const std::string& type, const std::string& sdp) {
    b->setLocalDescription(type, sdp);
    a->setRemoteDescription(type, sdp);
  });
  a->onIceCandidateCreated([&](const std::string& m, int i, const std::string& n) {
    if (b) b->addIceCandidate(m, i, n);
  });
  b->onIceCandidateCreated([&](const std::string& m, int i, const std::string& n) { a->addIceCandidate(m, i, n); });
  int afterDestruction = 0;
  bool destroyed = false;
  std::shared_ptr<DataChannel> kept;
  b->onDataChannelReceived([&](std::shared_ptr<DataChannel> c) {
    if (destroyed) {
      ++afterDestruction;
      return;
    }
    kept = std::move(c);
    EXPECT_EQ(b->poll(), Error::Ok);  // nested: allowed
    b.reset();
    destroyed = true;
  });
  auto first = a->createDataChannel("first");
  auto second = a->createDataChannel("second");  // its signal is in the same batch as the first's
  ASSERT_EQ(a->createOffer(), Error::Ok);
  for (int i = 0; i < 20000 && !destroyed; ++i) {
    a->poll();
    if (b) b->poll();
    if (b) b->wait(std::chrono::milliseconds(1));
  }
  ASSERT_TRUE(destroyed);
  EXPECT_EQ(afterDestruction, 0);
  EXPECT_EQ(kept->readyState(), ReadyState::Closed);
  // The destroyed side said goodbye (an SCTP ABORT): the offerer's channels close, no timeout needed.
  for (int i = 0; i < 20000 && first->readyState() != ReadyState::Closed; ++i) {
    a->poll();
    a->wait(std::chrono::milliseconds(1));
  }
  EXPECT_EQ(first->readyState(), ReadyState::Closed);
  EXPECT_EQ(second->readyState(), ReadyState::Closed);
}

// The last reference to a channel dropped on another thread while this one keeps polling the connection: the
// channel closes (the peer sees it Closed through the stream reset), its unread messages stop holding the receive
// window, and the other channel keeps working.
TEST(Lifecycle, LastChannelReferenceDroppedOnAnotherThread) {
  PeerPair p;
  auto doomed = p.a.createDataChannel("doomed");
  auto other = p.a.createDataChannel("other");
  ASSERT_TRUE(p.connect());
  ASSERT_TRUE(p.runUntil([&] {
    return p.receivedByB.size() == 2 && doomed->readyState() == ReadyState::Open &&
           other->readyState() == ReadyState::Open;
  }));
  auto remoteDoomed = p.receivedByB[0]->label() == "doomed" ? p.receivedByB[0] : p.receivedByB[1];
  auto remoteOther = p.receivedByB[0]->label() == "doomed" ? p.receivedByB[1] : p.receivedByB[0];
  // Unread messages on the doomed channel, at A.
  for (int i = 0; i < 50; ++i) ASSERT_EQ(remoteDoomed->putPacket(std::vector<std::uint8_t>(10000, 1)), Error::Ok);
  ASSERT_TRUE(p.runUntil([&] { return doomed->availablePacketCount() == 50; }));
  const std::size_t windowWhileUnread = p.b.stats().peerReceiveWindow;

  std::atomic<bool> dropped{false};
  std::thread dropper([&dropped, c = std::move(doomed)]() mutable {
    c.reset();
    dropped.store(true);
  });
  while (!dropped.load()) p.pollBoth();  // polling concurrently with the drop
  dropper.join();

  ASSERT_TRUE(p.runUntil([&] { return remoteDoomed->readyState() == ReadyState::Closed; }));
  // The window the unread messages held is open again (B learns it from A's next SACK).
  ASSERT_EQ(remoteOther->putPacket(std::string_view("ping")), Error::Ok);
  ASSERT_TRUE(p.runUntil([&] { return other->availablePacketCount() == 1; }));
  ASSERT_TRUE(p.runUntil([&] { return p.b.stats().peerReceiveWindow >= windowWhileUnread + 50 * 10000; }))
      << p.b.stats().peerReceiveWindow << " vs " << windowWhileUnread;
  EXPECT_EQ(other->readyState(), ReadyState::Open);
  EXPECT_EQ(p.a.connectionState(), ConnectionState::Connected);

  // Dropped on another thread between two polls: the close is due at once, so an application sleeping until
  // nextDeadline() wakes for it.
  for (int i = 0; i < 5; ++i) p.pollBoth();
  std::thread([c = std::move(other)]() mutable { c.reset(); }).join();
  const auto deadline = p.a.nextDeadline();  // read before the clock: argument order is unspecified
  EXPECT_LE(deadline, std::chrono::steady_clock::now());
  ASSERT_TRUE(p.runUntil([&] { return remoteOther->readyState() == ReadyState::Closed; }));
}

}  // namespace
}  // namespace rtcpeer::test
