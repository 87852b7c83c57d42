// Churn (issue 17 item 8): 1000 connect / exchange / close cycles of two PeerConnections in one process over
// loopback (in a private network namespace holding only `lo` when the test may create one). After a warm-up that
// fills the process-wide caches (OpenSSL's, the per-thread payload pool), every cycle must give back what it took:
// file descriptors return exactly to the baseline and the heap grows by less than kMaxGrowth in total. Under ASan
// the heap is measured by the sanitizer's allocator (bytes currently allocated); otherwise by mallinfo2().
// Waits for events only (the poll loop's limits are failure caps).
#include <dirent.h>
#include <malloc.h>
#include <net/if.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <cstring>

#include "unit/peer/harness.hpp"

#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#define RTCPEER_CHURN_ASAN 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__)
#define RTCPEER_CHURN_ASAN 1
#endif
#ifdef RTCPEER_CHURN_ASAN
// The sanitizer runtime's own count of bytes the program holds (g++ ships no sanitizer headers).
extern "C" std::size_t __sanitizer_get_current_allocated_bytes();
#endif

namespace rtcpeer::test {
namespace {

constexpr int kCycles = 1000;
constexpr int kWarmup = 30;
// Total heap growth allowed over the measured cycles: 256 bytes per cycle. A leak of any per-connection object
// (a socket's buffers, a DTLS session, an SCTP association, a channel) costs kilobytes a cycle and fails this.
constexpr std::size_t kMaxGrowth = 256 * (kCycles - kWarmup);

bool enterLoopbackNamespace() {
  if (geteuid() != 0 || unshare(CLONE_NEWNET) != 0) return false;
  const int fd = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  ifreq ifr{};
  std::strncpy(ifr.ifr_name, "lo", IFNAMSIZ - 1);
  const bool up = fd >= 0 && ioctl(fd, SIOCGIFFLAGS, &ifr) == 0 &&
                  (ifr.ifr_flags |= IFF_UP, ioctl(fd, SIOCSIFFLAGS, &ifr) == 0);
  if (fd >= 0) ::close(fd);
  return up;
}

int openDescriptors() {
  DIR* d = opendir("/proc/self/fd");
  if (d == nullptr) return -1;
  int n = 0;
  while (const dirent* e = readdir(d))
    if (e->d_name[0] != '.') ++n;
  closedir(d);
  return n - 1;  // the directory's own descriptor
}

std::size_t heapInUse() {
#ifdef RTCPEER_CHURN_ASAN
  return __sanitizer_get_current_allocated_bytes();
#else
  const struct mallinfo2 m = mallinfo2();
  return m.uordblks + m.hblkhd;
#endif
}

// One cycle: connect, open a channel, exchange messages both ways, close from one side, see the other notice.
void cycle(int i) {
  PeerPair p;
  auto local = p.a.createDataChannel("churn");
  ASSERT_NE(local, nullptr);
  ASSERT_TRUE(p.connect()) << "cycle " << i;
  ASSERT_TRUE(p.runUntil([&] { return !p.receivedByB.empty() && local->readyState() == ReadyState::Open; }))
      << "cycle " << i;
  auto remote = p.receivedByB[0];
  const std::vector<std::uint8_t> ping(1000 + static_cast<std::size_t>(i), static_cast<std::uint8_t>(i));
  ASSERT_EQ(local->putPacket(ping), Error::Ok);
  std::vector<std::uint8_t> got;
  ASSERT_TRUE(p.runUntil([&] { return remote->getPacket(got) == Error::Ok; })) << "cycle " << i;
  ASSERT_EQ(got, ping);
  ASSERT_EQ(remote->putPacket(got), Error::Ok);  // echo
  ASSERT_TRUE(p.runUntil([&] { return local->getPacket(got) == Error::Ok; })) << "cycle " << i;
  ASSERT_EQ(got, ping);
  // Alternate who closes, and how: the channel first, or the whole connection.
  if (i % 2 == 0) {
    local->close();
    ASSERT_TRUE(p.runUntil([&] { return remote->readyState() == ReadyState::Closed; })) << "cycle " << i;
    p.a.close();
  } else {
    p.b.close();
  }
  ASSERT_TRUE(p.runUntil([&] { return p.a.connectionState() == ConnectionState::Closed &&
                                      p.b.connectionState() == ConnectionState::Closed; },
                         std::chrono::seconds(30)))
      << "cycle " << i << ": " << static_cast<int>(p.a.connectionState()) << "/"
      << static_cast<int>(p.b.connectionState());
  EXPECT_TRUE(p.errors.empty()) << p.errors.front();
}

TEST(Churn, ThousandConnectExchangeCloseCyclesGiveBackDescriptorsAndMemory) {
  const bool isolated = enterLoopbackNamespace();
  std::printf("[ info     ] %s\n", isolated ? "in a private network namespace (lo only)"
                                            : "not root: 127.0.0.1 of the host's namespace");
  for (int i = 0; i < kWarmup; ++i) {
    cycle(i);
    ASSERT_FALSE(HasFatalFailure());
  }
  const int fds = openDescriptors();
  ASSERT_GT(fds, 0);
  const std::size_t heap = heapInUse();
  const auto start = std::chrono::steady_clock::now();
  std::size_t peak = heap;
  for (int i = kWarmup; i < kCycles; ++i) {
    cycle(i);
    ASSERT_FALSE(HasFatalFailure());
    ASSERT_EQ(openDescriptors(), fds) << "descriptors leaked by cycle " << i;
    peak = std::max(peak, heapInUse());
  }
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  const std::size_t end = heapInUse();
  const long long growth = static_cast<long long>(end) - static_cast<long long>(heap);
  std::printf("churn: %d cycles after %d warm-up, %.1f ms each; descriptors %d -> %d; heap in use %zu -> %zu bytes "
              "(%+lld, %.1f bytes/cycle; peak between cycles %zu; bound %zu)\n",
              kCycles - kWarmup, kWarmup, 1000 * seconds / (kCycles - kWarmup), fds, openDescriptors(), heap, end,
              growth, static_cast<double>(growth) / (kCycles - kWarmup), peak, kMaxGrowth);
  EXPECT_EQ(openDescriptors(), fds);
  EXPECT_LE(growth, static_cast<long long>(kMaxGrowth));
}

}  // namespace
}  // namespace rtcpeer::test
