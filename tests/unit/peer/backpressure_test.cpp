// Flow control through the public API (issue 17 items 1 and 2): a reader that stops reading closes the receive
// window, so the sender stalls and its putPacket() reports Unavailable once its send buffer is full; reading
// reopens the window and every message arrives, in order and byte-exact. Waits for events only (the poll loop's
// wall-clock limit is a failure cap, not a timing assumption). Issue 17 item 8's flood (10 s of sending as fast as
// possible at a reader that never reads) runs in virtual time: tests/sim/flood_test.cpp.
#include <gtest/gtest.h>

#include <cstdio>
#include <cstring>

#include "unit/peer/harness.hpp"

namespace rtcpeer::test {
namespace {

using Bytes = std::vector<std::uint8_t>;

constexpr std::size_t kMessage = 16 * 1024;

Bytes message(std::uint32_t i) {
  Bytes m(kMessage, static_cast<std::uint8_t>(i * 7 + 1));
  std::memcpy(m.data(), &i, sizeof i);
  return m;
}

TEST(FlowControl, AStoppedReaderStallsTheSenderAndReadingResumesIt) {
  PeerPair p;
  auto local = p.a.createDataChannel("bulk");
  ASSERT_NE(local, nullptr);
  ASSERT_TRUE(p.connect());
  ASSERT_TRUE(p.runUntil([&] { return !p.receivedByB.empty() && local->readyState() == ReadyState::Open; }));
  auto remote = p.receivedByB[0];

  // Fill the send buffer: putPacket() refuses with Unavailable once it is full, and queues nothing then.
  std::uint32_t sent = 0;
  Error e = Error::Ok;
  while ((e = local->putPacket(message(sent))) == Error::Ok) ++sent;
  ASSERT_EQ(e, Error::Unavailable) << local->lastError();
  EXPECT_FALSE(local->lastError().empty());
  const std::size_t full = local->bufferedAmount();
  EXPECT_GE(full + kMessage, std::size_t{16} << 20);

  // The reader does not read: the receive window closes and the sender stalls.
  ASSERT_TRUE(p.runUntil([&] { return p.a.stats().peerReceiveWindow == 0 && remote->availablePacketCount() > 0; },
                         std::chrono::seconds(60)));
  const int stalledAt = remote->availablePacketCount();
  // More polling changes nothing: the sender only probes the closed window (a probe may be taken).
  for (int i = 0; i < 200; ++i) p.pollBoth();
  const std::size_t unread = static_cast<std::size_t>(remote->availablePacketCount()) * kMessage;
  EXPECT_LE(remote->availablePacketCount(), stalledAt + 2);
  // Bounded by the receive window (4 MiB) plus one maximum-size message still being reassembled.
  EXPECT_LE(unread, (std::size_t{4} << 20) + 256 * 1024 + kMessage);
  // What little the sender got out while stalling, it can refill; then it is full again and stays so.
  while (local->putPacket(message(sent)) == Error::Ok) ++sent;
  for (int i = 0; i < 50; ++i) p.pollBoth();
  EXPECT_GE(local->bufferedAmount() + 2 * kMessage, std::size_t{16} << 20);
  std::printf("flow control: stalled with %d unread messages (%zu KiB) at the reader, %zu KiB queued at the sender\n",
              remote->availablePacketCount(), unread / 1024, local->bufferedAmount() / 1024);

  // Reading resumes the transfer; the sender refills its buffer as it drains.
  std::uint32_t received = 0;
  Bytes got;
  const std::uint32_t total = sent + 300;
  ASSERT_TRUE(p.runUntil(
      [&] {
        while (remote->getPacket(got) == Error::Ok) {
          if (got != message(received)) {
            ADD_FAILURE() << "message " << received << " differs or is out of order";
            return true;
          }
          ++received;
        }
        while (sent < total && local->putPacket(message(sent)) == Error::Ok) ++sent;
        return received == total;
      },
      std::chrono::seconds(120)))
      << received << " of " << total;
  EXPECT_EQ(received, total);
  ASSERT_TRUE(p.runUntil([&] { return local->bufferedAmount() == 0; }));
  EXPECT_EQ(p.a.connectionState(), ConnectionState::Connected);
}

}  // namespace
}  // namespace rtcpeer::test
