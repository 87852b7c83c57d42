// What the application observes around poll(): state changes in order with their signals, events that meet in
// one receive batch, and driving many connections from one epoll loop through fileDescriptor().
#include <gtest/gtest.h>
#include <sys/epoll.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <functional>

#include "unit/peer/harness.hpp"

namespace rtcpeer::test {
namespace {

using Clock = std::chrono::steady_clock;
using Bytes = std::vector<std::uint8_t>;

// The W3C order: candidates arrive while the state reads Gathering, and Complete becomes visible with the
// end-of-candidates signal, never while candidates are still waiting to be emitted.
TEST(PeerConnectionPoll, GatheringStateChangesWithItsSignals) {
  PeerPair p;
  int candidates = 0;
  bool ended = false;
  p.a.onIceCandidateCreated([&](const std::string& mid, int index, const std::string& name) {
    if (name.empty()) {
      ended = true;
      EXPECT_EQ(p.a.gatheringState(), GatheringState::Complete);
    } else {
      ++candidates;
      EXPECT_FALSE(ended);
      EXPECT_EQ(p.a.gatheringState(), GatheringState::Gathering);
    }
    p.b.addIceCandidate(mid, index, name);
  });
  auto ch = p.a.createDataChannel("x");
  ASSERT_EQ(p.a.createOffer(), Error::Ok);
  EXPECT_EQ(p.a.gatheringState(), GatheringState::New);
  // This poll emits the offer; its callback sets the local description, which binds and gathers host candidates
  // at once. Their signals (and the state change) belong to the next poll.
  ASSERT_EQ(p.a.poll(), Error::Ok);
  EXPECT_EQ(candidates, 0);
  EXPECT_EQ(p.a.gatheringState(), GatheringState::New);
  ASSERT_EQ(p.a.poll(), Error::Ok);
  EXPECT_GT(candidates, 0);
  EXPECT_TRUE(ended);
  EXPECT_EQ(p.a.gatheringState(), GatheringState::Complete);

  // A description set outside poll() does not change the state either until poll() emits the signals.
  PeerPair q;
  std::string offer;
  q.a.onSessionDescriptionCreated([&](const std::string&, const std::string& sdp) { offer = sdp; });
  auto qc = q.a.createDataChannel("y");
  ASSERT_EQ(q.a.createOffer(), Error::Ok);
  ASSERT_EQ(q.a.poll(), Error::Ok);
  ASSERT_EQ(q.a.setLocalDescription("offer", offer), Error::Ok) << q.a.lastError();
  EXPECT_EQ(q.a.gatheringState(), GatheringState::New);
  ASSERT_EQ(q.a.poll(), Error::Ok);
  EXPECT_EQ(q.a.gatheringState(), GatheringState::Complete);
  ASSERT_EQ(q.a.initialize(loopbackConfig()), Error::Ok);
  EXPECT_EQ(q.a.gatheringState(), GatheringState::New);
}

// The remote closes a channel and at once opens a new one that reuses its stream id. Its answer to our stream
// reset (which completes our side of the close) and the new channel's DCEP OPEN then reach us in one receive
// batch, and the association hands out the OPEN before the reset completion: the OPEN met the old, still
// Closing channel on that stream and was refused, so the new channel never appeared on our side.
TEST(PeerConnectionPoll, ReopenOnTheSameStreamInTheBatchThatCompletesTheClose) {
  PeerPair p;
  auto offerChannel = p.a.createDataChannel("offer");
  ASSERT_TRUE(p.connect());
  // New in-band channels take fresh ids (ChannelManager::allocateStream), so the id is made b's first in-band one
  // by closing a negotiated channel on it: b (the answerer, DTLS client) allocates even ids from 0.
  DataChannelInit negotiated;
  negotiated.negotiated = true;
  negotiated.id = 0;
  auto first = p.b.createDataChannel("first", negotiated);
  auto mirror = p.a.createDataChannel("first", negotiated);
  ASSERT_NE(first, nullptr);
  ASSERT_NE(mirror, nullptr);
  ASSERT_TRUE(p.runUntil([&] { return first->readyState() == ReadyState::Open && mirror->readyState() == ReadyState::Open; }));
  const int id = first->id();

  first->close();
  // b's side closes in the b.poll() that sends its answer to a's reset request; a has not read that answer yet.
  for (int i = 0; i < 200 && first->readyState() != ReadyState::Closed; ++i) {
    p.a.poll();
    p.b.poll();
  }
  ASSERT_EQ(first->readyState(), ReadyState::Closed);
  ASSERT_EQ(mirror->readyState(), ReadyState::Closing);  // waiting for that answer
  auto second = p.b.createDataChannel("second");
  ASSERT_NE(second, nullptr);
  ASSERT_EQ(second->putPacket("hello"), Error::Ok);
  p.b.poll();  // the OPEN and the message leave; a's socket now holds the reset answer, the OPEN and the message
  ASSERT_EQ(second->id(), id);
  p.a.poll();  // one receive batch
  EXPECT_EQ(mirror->readyState(), ReadyState::Closed);
  ASSERT_TRUE(p.runUntil([&] { return p.receivedByA.size() == 1 && p.receivedByA[0]->availablePacketCount() == 1; }))
      << "the new channel's OPEN was lost";
  auto reopened = p.receivedByA[0];
  EXPECT_EQ(reopened->label(), "second");
  EXPECT_EQ(reopened->id(), id);
  EXPECT_EQ(reopened->readyState(), ReadyState::Open);
  Bytes got;
  ASSERT_EQ(reopened->getPacket(got), Error::Ok);
  EXPECT_EQ(std::string(got.begin(), got.end()), "hello");
  EXPECT_EQ(mirror->availablePacketCount(), 0);
  ASSERT_EQ(reopened->putPacket("back"), Error::Ok);
  ASSERT_TRUE(p.runUntil([&] { return second->availablePacketCount() == 1; }));
}

TEST(PeerConnectionPoll, FileDescriptorIsStableAcrossInitialize) {
  PeerConnection pc;
  const int fd = pc.fileDescriptor();
  ASSERT_GE(fd, 0);
  ASSERT_EQ(pc.initialize(loopbackConfig()), Error::Ok);
  EXPECT_EQ(pc.fileDescriptor(), fd);
  pc.close();
  EXPECT_EQ(pc.fileDescriptor(), fd);
}

// Two connections (four PeerConnections) and nothing else in one epoll set: each is polled only when its
// descriptor is readable or its nextDeadline() has passed.
TEST(PeerConnectionPoll, OneEpollLoopDrivesTwoConnections) {
  PeerPair one, two;
  std::array<PeerConnection*, 4> pcs = {&one.a, &one.b, &two.a, &two.b};
  const int ep = ::epoll_create1(EPOLL_CLOEXEC);
  ASSERT_GE(ep, 0);
  for (std::size_t i = 0; i < pcs.size(); ++i) {
    epoll_event e{};
    e.events = EPOLLIN;
    e.data.u64 = i;
    ASSERT_EQ(::epoll_ctl(ep, EPOLL_CTL_ADD, pcs[i]->fileDescriptor(), &e), 0);
  }
  std::array<int, 4> readableWakeups{};
  // One turn of the loop: sleep until a descriptor is readable or the earliest deadline (at most `limit`).
  auto turn = [&](std::chrono::milliseconds limit) {
    Clock::time_point due = Clock::now() + limit;
    for (auto* pc : pcs) due = std::min(due, pc->nextDeadline());
    const auto left = std::chrono::ceil<std::chrono::milliseconds>(due - Clock::now());
    std::array<epoll_event, 4> ready{};
    const int n = ::epoll_wait(ep, ready.data(), 4, static_cast<int>(std::max<std::int64_t>(left.count(), 0)));
    std::array<bool, 4> pollIt{};
    for (int i = 0; i < n; ++i) {
      pollIt[ready[i].data.u64] = true;
      ++readableWakeups[ready[i].data.u64];
    }
    for (std::size_t i = 0; i < pcs.size(); ++i) {
      if (pcs[i]->nextDeadline() <= Clock::now()) pollIt[i] = true;
      if (pollIt[i]) {
        one.inPoll = two.inPoll = true;
        pcs[i]->poll();
        one.inPoll = two.inPoll = false;
      }
    }
    return n;
  };
  auto runUntil = [&](const std::function<bool()>& done) {
    const auto end = Clock::now() + std::chrono::seconds(10);
    while (!done() && Clock::now() < end) turn(std::chrono::milliseconds(100));
    return done();
  };

  auto c1 = one.a.createDataChannel("one");
  auto c2 = two.a.createDataChannel("two");
  ASSERT_EQ(one.a.createOffer(), Error::Ok);
  ASSERT_EQ(two.a.createOffer(), Error::Ok);
  ASSERT_TRUE(runUntil([&] {
    return c1->readyState() == ReadyState::Open && c2->readyState() == ReadyState::Open &&
           one.receivedByB.size() == 1 && two.receivedByB.size() == 1;
  }));
  EXPECT_TRUE(one.errors.empty() && two.errors.empty());
  for (int wakeups : readableWakeups) EXPECT_GT(wakeups, 0);

  // Idle, then one message: its arrival alone must wake the loop, long before any timer.
  while (turn(std::chrono::milliseconds(0)) > 0) {
  }
  ASSERT_EQ(c2->putPacket("ping"), Error::Ok);
  two.a.poll();
  std::array<epoll_event, 4> ready{};
  const auto start = Clock::now();
  const int n = ::epoll_wait(ep, ready.data(), 4, 2000);
  ASSERT_GE(n, 1);
  EXPECT_LT(Clock::now() - start, std::chrono::milliseconds(500));
  EXPECT_TRUE(std::any_of(ready.begin(), ready.begin() + n, [](const epoll_event& e) { return e.data.u64 == 3; }));
  ASSERT_EQ(two.b.poll(), Error::Ok);
  EXPECT_EQ(two.receivedByB[0]->availablePacketCount(), 1);
  EXPECT_EQ(one.receivedByB[0]->availablePacketCount(), 0);
  ::close(ep);
}

}  // namespace
}  // namespace rtcpeer::test
