// Real sockets, loopback only.
#include "net/udp.hpp"

#include <gtest/gtest.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <thread>

#include "unit/net/netns.hpp"

namespace rtcpeer::net {
namespace {

TEST(Net, ClockIsMonotonic) {
  auto a = now();
  auto b = now();
  EXPECT_LE(a, b);
  EXPECT_GT(toMicros(a), 0);
}

TEST(Net, BatchedLoopbackRoundTripV4) {
  auto a = UdpSocket::bind(*SocketAddress::parse("127.0.0.1", 0));
  auto b = UdpSocket::bind(*SocketAddress::parse("127.0.0.1", 0));
  ASSERT_TRUE(a && b);
  ASSERT_NE(a->localAddress().port(), 0);
  std::vector<Bytes> payloads;
  std::vector<Outgoing> out;
  for (int i = 0; i < 100; ++i) payloads.push_back(Bytes(static_cast<std::size_t>(i + 1), static_cast<std::uint8_t>(i)));
  for (auto& p : payloads) out.push_back({b->localAddress(), p});
  EXPECT_EQ(a->sendBatch(out), 100u);

  std::size_t got = 0;
  Timestamp deadline = now() + 2s;
  while (got < 100 && now() < deadline) {
    int fd = b->fd();
    ASSERT_TRUE(wait({&fd, 1}, deadline));
    auto batch = b->recvBatch();
    EXPECT_LE(batch.size(), UdpSocket::kBatch);
    for (const auto& r : batch) {
      EXPECT_EQ(r.remote, a->localAddress());
      ASSERT_EQ(r.data.size(), got + 1);
      EXPECT_EQ(r.data[0], static_cast<std::uint8_t>(got));
      ++got;
    }
  }
  EXPECT_EQ(got, 100u);
  EXPECT_TRUE(b->recvBatch().empty());
}

TEST(Net, LoopbackV6WhenAvailable) {
  auto a = UdpSocket::bind(*SocketAddress::parse("::1", 0));
  if (!a) GTEST_SKIP() << "no IPv6 loopback: " << a.reason();
  auto b = UdpSocket::bind(*SocketAddress::parse("::1", 0));
  ASSERT_TRUE(b);
  const std::uint8_t msg[] = {1, 2, 3};
  ASSERT_TRUE(a->sendTo(b->localAddress(), msg));
  int fd = b->fd();
  ASSERT_TRUE(wait({&fd, 1}, now() + 2s));
  auto batch = b->recvBatch();
  ASSERT_EQ(batch.size(), 1u);
  EXPECT_EQ(batch[0].remote, a->localAddress());
}

TEST(Net, WaitHonoursDeadline) {
  auto a = UdpSocket::bind(*SocketAddress::parse("127.0.0.1", 0));
  ASSERT_TRUE(a);
  int fd = a->fd();
  auto start = now();
  auto r = wait({&fd, 1}, start + 20ms);
  ASSERT_TRUE(r);
  EXPECT_EQ(*r, 0);
  EXPECT_GE(now() - start, 20ms);
}

TEST(Net, InterfacesAndLoopbackOnlyBinding) {
  auto all = enumerateInterfaces(true);
  bool hasLoopback = false;
  for (const auto& i : all) hasLoopback |= i.loopback;
  EXPECT_TRUE(hasLoopback);
  for (const auto& i : enumerateInterfaces(false)) EXPECT_FALSE(i.loopback);

  BindOptions o;
  o.addresses = {*SocketAddress::parse("127.0.0.1", 0)};
  auto socks = bindInterfaces(o);
  ASSERT_TRUE(socks) << socks.reason();
  ASSERT_EQ(socks->size(), 1u);
  EXPECT_EQ((*socks)[0].localAddress().ipString(), "127.0.0.1");

  o.addresses = {*SocketAddress::parse("192.0.2.1", 0)};  // not an interface here
  EXPECT_FALSE(bindInterfaces(o));
}

// The interface list is kept for a second (a server creating thousands of connections reads it once), but per
// network namespace: a thread that moved into another one sees that namespace's interfaces at once.
TEST(Net, InterfaceListFollowsTheNetworkNamespace) {
  const auto before = enumerateInterfaces(true);  // read and kept in this (the outer) namespace
  RTCPEER_REQUIRE_LOOPBACK_NAMESPACE();
  const auto inside = enumerateInterfaces(true);
  ASSERT_FALSE(inside.empty());
  for (const auto& i : inside) EXPECT_TRUE(i.loopback) << i.name;
  EXPECT_TRUE(enumerateInterfaces(false).empty());
  (void)before;
}

TEST(Net, PortRange) {
  auto a = UdpSocket::bind(*SocketAddress::parse("127.0.0.1", 0));
  ASSERT_TRUE(a);
  auto p = a->localAddress().port();
  // The first port is taken, so the range skips to the next free one (or fails cleanly at the top).
  auto b = UdpSocket::bindInRange(*SocketAddress::parse("127.0.0.1", 0), p, static_cast<std::uint16_t>(p == 65535 ? p : p + 20));
  if (b) {
    EXPECT_NE(b->localAddress().port(), p);
  }
  EXPECT_FALSE(UdpSocket::bindInRange(*SocketAddress::parse("127.0.0.1", 0), p, p));
}

TEST(Net, Resolve) {
  EXPECT_EQ(*resolve("127.0.0.1", 5), *SocketAddress::parse("127.0.0.1", 5));
  auto l = resolve("localhost", 7);
  ASSERT_TRUE(l);
  EXPECT_TRUE(l->isLoopback());
  EXPECT_EQ(l->port(), 7);
  EXPECT_FALSE(resolve("example.com", 1));
}

// The UDP mux's wake-up: one always-readable eventfd in several epoll sets, reported by exactly the sets whose
// read interest is on, and waking a poll(2) already blocked on such a set.
TEST(Poller, ADescriptorWatchedForNothingWakesOnlyTheSetsThatTurnItsInterestOn) {
  const int wake = eventfd(1, EFD_NONBLOCK | EFD_CLOEXEC);
  ASSERT_GE(wake, 0);
  auto a = Poller::create(), b = Poller::create();
  ASSERT_TRUE(a && b);
  EXPECT_FALSE(a->setReadInterest(wake, true)) << "only for a descriptor added with watchNothing";
  ASSERT_TRUE(a->watchNothing(wake));
  ASSERT_TRUE(b->watchNothing(wake));
  const int fa = a->fd(), fb = b->fd();
  EXPECT_EQ(*wait({&fa, 1}, now()), 0);
  EXPECT_EQ(*wait({&fb, 1}, now()), 0);
  for (int round = 0; round < 3; ++round) {
    Result<int> woke = 0;
    std::thread waiter([&] { woke = wait({&fa, 1}, kNever); });  // blocked (or not yet) on a's set
    ASSERT_TRUE(a->setReadInterest(wake, true));
    waiter.join();
    ASSERT_TRUE(woke);
    EXPECT_EQ(*woke, 1);
    EXPECT_EQ(*wait({&fb, 1}, now()), 0) << "b's interest is still off";
    ASSERT_TRUE(a->setReadInterest(wake, false));
    EXPECT_EQ(*wait({&fa, 1}, now()), 0);
  }
  ::close(wake);
}

TEST(Poller, ReadableWhileAWatchedSocketIs) {
  auto poller = Poller::create();
  ASSERT_TRUE(poller) << poller.reason();
  auto a = UdpSocket::bind(*SocketAddress::parse("127.0.0.1", 0));
  auto b = UdpSocket::bind(*SocketAddress::parse("127.0.0.1", 0));
  auto c = UdpSocket::bind(*SocketAddress::parse("127.0.0.1", 0));
  ASSERT_TRUE(a && b && c);
  ASSERT_TRUE(poller->watch(b->fd()));
  ASSERT_TRUE(poller->watch(c->fd()));
  const int fd = poller->fd();
  EXPECT_EQ(*wait({&fd, 1}, now() + 20ms), 0);  // nothing pending
  const std::uint8_t msg[] = {7};
  ASSERT_TRUE(a->sendTo(c->localAddress(), msg));
  auto r = wait({&fd, 1}, now() + 2s);  // the epoll descriptor itself, as an application's loop would see it
  ASSERT_TRUE(r);
  EXPECT_EQ(*r, 1);
  EXPECT_EQ(*wait({&fd, 1}, now()), 1);  // level-triggered: still readable until drained
  EXPECT_EQ(c->recvBatch().size(), 1u);
  EXPECT_EQ(*wait({&fd, 1}, now() + 20ms), 0);
  // Unwatched sockets no longer wake it; watching for writing does (a UDP socket is always writable).
  poller->unwatch(c->fd());
  ASSERT_TRUE(a->sendTo(c->localAddress(), msg));
  EXPECT_EQ(*wait({&fd, 1}, now() + 20ms), 0);
  ASSERT_TRUE(poller->watch(b->fd(), true));
  EXPECT_EQ(*wait({&fd, 1}, now() + 2s), 1);
  EXPECT_FALSE(poller->watch(-1));
}

TEST(UdpSocket, SocketsOfOneThreadShareTheBatchBuffers) {
  // Documented contract: a batch's views live until the next recvBatch() on any socket of the thread.
  auto a = UdpSocket::bind(*SocketAddress::parse("127.0.0.1", 0));
  auto b = UdpSocket::bind(*SocketAddress::parse("127.0.0.1", 0));
  auto c = UdpSocket::bind(*SocketAddress::parse("127.0.0.1", 0));
  ASSERT_TRUE(a && b && c);
  const std::uint8_t one[] = {1}, two[] = {2};
  ASSERT_TRUE(a->sendTo(b->localAddress(), one));
  ASSERT_TRUE(a->sendTo(c->localAddress(), two));
  int fds[] = {b->fd(), c->fd()};
  for (int fd : fds) ASSERT_TRUE(wait({&fd, 1}, now() + 2s));
  auto first = b->recvBatch();
  ASSERT_EQ(first.size(), 1u);
  EXPECT_EQ(first[0].data[0], 1);
  auto second = c->recvBatch();
  ASSERT_EQ(second.size(), 1u);
  EXPECT_EQ(second[0].data[0], 2);
  EXPECT_EQ(first.data(), second.data());
}

TEST(UdpSocket, AsksForLargeBuffers) {
  // A burst of SCTP datagrams must not overflow the kernel's receive buffer (the default is ~208 KiB).
  auto s = UdpSocket::bind(*SocketAddress::parse("127.0.0.1", 0));
  ASSERT_TRUE(s) << s.reason();
  int rcv = 0;
  socklen_t len = sizeof rcv;
  ASSERT_EQ(::getsockopt(s->fd(), SOL_SOCKET, SO_RCVBUF, &rcv, &len), 0);
  if (::geteuid() != 0) GTEST_SKIP() << "unprivileged: capped at net.core.rmem_max (" << rcv << " bytes)";
  EXPECT_GE(rcv, 4 * 1024 * 1024);
}

}  // namespace
}  // namespace rtcpeer::net
