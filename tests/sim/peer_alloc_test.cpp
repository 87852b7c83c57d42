// The core's data path allocates nothing per datagram: a steady transfer between two cores on the simulator,
// counted with a replaced operator new (this file replaces it for the whole test binary; it only counts). What the
// SCTP association allocates per message is the floor (traced once with backtrace(): the send copy of a message
// under 4 KiB (Payload::copyOf; larger ones come from its pool), the received copy of a single-chunk message, the
// reassembly map node of a multi-chunk one, and the chunks its deques grow by); the core, DTLS, ICE and the
// simulator add nothing, so a regression of one allocation per datagram or per message shows up at once.
#include <gtest/gtest.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <new>

#include "sim/peer_world.hpp"

// The replacement operators pair malloc with free; g++ sees the inlined free() of an operator-new pointer and
// warns, wrongly.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
#endif
namespace {
std::atomic<long> g_allocations{0};
}
void* operator new(std::size_t n) {
  g_allocations.fetch_add(1, std::memory_order_relaxed);
  if (void* p = std::malloc(n ? n : 1)) return p;
  throw std::bad_alloc();
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }

namespace rtcpeer::sim::peertest {
namespace {

using namespace std::chrono_literals;

// Small messages (many per packet) and large ones (fragmented, reassembled into recycled buffers).
struct Case {
  std::size_t size;
  std::uint32_t warmUp, count;
  double perMessage;  // the association's own allocations per message, plus a margin below one more
};

class SteadyState : public ::testing::TestWithParam<Case> {};

TEST_P(SteadyState, TransferAllocatesNothingPerDatagram) {
  const std::size_t size = GetParam().size;
  World w(21);
  LinkConfig link;
  link.delay = 5ms;
  w.net.setDefaultLink(link);
  auto a = w.makePeer("a", w.config(false), "100.70.0.1");
  auto b = w.makePeer("b", w.config(false), "100.70.0.2");
  w.pair(*a, *b);
  ASSERT_TRUE(w.connect());
  a->channels["data"].fixed = makeMessage(0, size);
  b->channels["data"].keep = false;
  // Warm up: pools, rings and queues reach their working size.
  const std::uint32_t warmUp = GetParam().warmUp, n = GetParam().count;
  a->transfer("data", warmUp, size);
  ASSERT_TRUE(w.runUntil([&] { return b->channels["data"].count == warmUp; }, 60s));
  const long before = g_allocations.load();
  a->transfer("data", n, size);
  ASSERT_TRUE(w.runUntil([&] { return b->channels["data"].count == warmUp + n; }, 120s));
  const long allocations = g_allocations.load() - before;
  EXPECT_EQ(b->channels["data"].bytes, (warmUp + n) * size);
  // Measured: 2.2 per 100-byte message (send copy, received copy, deque chunks), 1.2-1.45 per 16 KiB message
  // (reassembly node, deque chunks; reassembled into recycled buffers), which spans 14 datagrams.
  std::printf("%ld allocations for %u messages of %zu bytes\n", allocations, n, size);
  EXPECT_LT(static_cast<double>(allocations), GetParam().perMessage * n)
      << allocations << " allocations for " << n << " messages of " << size << " bytes";
}

// Its own test binary: the association's per-thread payload pool remembers earlier tests' message sizes.
INSTANTIATE_TEST_SUITE_P(Sim, SteadyState, ::testing::Values(Case{100, 2000, 5000, 2.7}, Case{16384, 300, 1000, 1.9}));

}  // namespace
}  // namespace rtcpeer::sim::peertest
