// SCTP benchmarks (figures in docs/BENCHMARKS.md "## SCTP"):
//   inmem-64k / inmem-100: two associations wired in memory (no DTLS, no sockets), one core, wall-clock rate.
//   sim-*: 100 Mbit/s, 50 ms RTT in the simulator (virtual time): link utilization / goodput.
//   idle-memory: heap + object bytes of one established, idle association.
// Usage: bench_sctp [inmem|sim|memory|all]
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <new>
#include <string_view>
#include <ctime>

#include "common/random.hpp"
#include "sctp/association.hpp"
#include "sim/network.hpp"

namespace {

std::atomic<std::int64_t> g_live{0};
bool g_counting = false;

}  // namespace

void* operator new(std::size_t n) {
  auto* p = static_cast<std::size_t*>(std::malloc(n + 16));
  if (!p) throw std::bad_alloc();
  *p = n;
  if (g_counting) g_live += static_cast<std::int64_t>(n);
  return p + 2;
}
namespace {
void release(void* p) noexcept {
  if (!p) return;
  auto* b = static_cast<std::size_t*>(p) - 2;
  if (g_counting) g_live -= static_cast<std::int64_t>(*b);
  std::free(b);
}
}  // namespace
void operator delete(void* p) noexcept { release(p); }
void operator delete(void* p, std::size_t) noexcept { release(p); }

namespace rtcpeer::sctp {
namespace {

using Clock = std::chrono::steady_clock;

// The machine is shared: rates are per second of this thread's CPU time, not wall time.
double cpuSeconds() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) / 1e9;
}

Timestamp wallNow() {
  return fromMicros(std::chrono::duration_cast<std::chrono::microseconds>(Clock::now().time_since_epoch()).count());
}

void pump(Association& from, Association& to, Timestamp now) {
  while (auto p = from.pollTransmit(now)) to.handleInput(*p, now);
}

// `recycle`: hand each received message's buffer back to the association (Association::recycle, what the
// PeerConnection's getPacket() does); without it every 64 KiB message is freed by the application.
void inMemory(std::size_t msgSize, double seconds, bool zeroChecksum = false, bool recycle = true) {
  SeededRandom ra(1), rb(2);
  Options o;
  o.heartbeatInterval = Duration(0);
  o.enableZeroChecksum = zeroChecksum;
  Association a(o, ra), b(o, rb);
  Timestamp now = wallNow();
  a.connect(now);
  for (int i = 0; i < 4; ++i) {
    pump(a, b, now);
    pump(b, a, now);
  }
  Bytes msg(msgSize, 0x42);
  std::uint64_t bytes = 0, msgs = 0;
  double cpuStart = cpuSeconds();
  std::uint64_t iter = 0;
  while (true) {
    if ((++iter & 15) == 0) {
      if (cpuSeconds() - cpuStart >= seconds) break;
      now = wallNow();
      a.handleTimeout(now);
      b.handleTimeout(now);
    }
    while (a.totalBufferedAmount() < 256 * 1024)
      if (!a.send(static_cast<std::uint16_t>(msgs % 4), 53, msg, {}, now).ok()) std::abort();
    pump(a, b, now);
    while (auto m = b.pollMessage()) {
      bytes += m->payload.size();
      ++msgs;
      if (recycle) b.recycle(std::move(m->payload));
    }
    pump(b, a, now);
  }
  double secs = cpuSeconds() - cpuStart;
  auto m = a.metrics();
  std::printf("inmem msg=%zu B%s%s: %.2f GB/s (per CPU second), %.2f M msg/s (retransmissions %llu, cwnd %zu)\n",
              msgSize, zeroChecksum ? " zero-checksum" : "", recycle ? "" : " (received buffers freed, not recycled)",
              static_cast<double>(bytes) / secs / 1e9, static_cast<double>(msgs) / secs / 1e6,
              static_cast<unsigned long long>(m.retransmissions), m.cwnd);
}

class Peer : public sim::Endpoint {
 public:
  Peer(sim::Network& net, SocketAddress local, SocketAddress remote, Options o, std::uint64_t seed)
      : net_(net), local_(local), remote_(remote), rng_(seed), assoc(o, rng_) {
    net_.bind(*this, local_);
  }
  void onDatagram(const SocketAddress&, const SocketAddress&, ByteView d, Timestamp now) override {
    assoc.handleInput(d, now);
    flush(now);
  }
  void onTimeout(Timestamp now) override {
    assoc.handleTimeout(now);
    flush(now);
  }
  Timestamp nextDeadline() const override { return assoc.nextDeadline(); }
  void flush(Timestamp now) {
    if (source) {
      static const Bytes msg(64 * 1024, 0x17);
      while (assoc.state() == State::Established && assoc.totalBufferedAmount() < 4 * 1024 * 1024)
        (void)assoc.send(0, 53, msg, {}, now);
    }
    while (auto p = assoc.pollTransmit(now)) net_.send(local_, remote_, *p);
    while (auto m = assoc.pollMessage()) received += m->payload.size();
  }
  sim::Network& net_;
  SocketAddress local_, remote_;
  SeededRandom rng_;
  Association assoc;
  bool source = false;
  std::uint64_t received = 0;
};

void simulated(const char* name, double loss, CongestionControl cc, std::uint64_t seed) {
  sim::Network net(seed);
  sim::LinkConfig link;
  link.delay = Duration(25'000);
  link.bandwidthBps = 100'000'000;
  link.loss = loss;
  link.queueBytes = 256 * 1024;
  net.setDefaultLink(link);
  Options o;
  o.congestionControl = cc;
  o.heartbeatInterval = Duration(0);
  auto a1 = *SocketAddress::parse("10.0.0.1", 1), a2 = *SocketAddress::parse("10.0.0.2", 1);
  Peer a(net, a1, a2, o, seed), b(net, a2, a1, o, seed + 1);
  a.source = true;
  a.assoc.connect(net.now());
  a.flush(net.now());
  net.runUntil([&] { return a.assoc.state() == State::Established; }, Duration(5'000'000));
  a.flush(net.now());
  net.runFor(Duration(5'000'000));  // warm-up
  std::uint64_t before = b.received;
  const Duration measure(20'000'000);
  auto wall = Clock::now();
  net.runFor(measure);
  double mbps = static_cast<double>(b.received - before) * 8 / toSeconds(measure) / 1e6;
  auto m = a.assoc.metrics();
  std::printf("%s: goodput %.1f Mbit/s (%.0f %% of 100), retransmissions %llu (spurious %llu), t3 %llu, "
              "srtt %.1f ms, cwnd %zu [%.1f s wall]\n",
              name, mbps, mbps, static_cast<unsigned long long>(m.retransmissions),
              static_cast<unsigned long long>(b.assoc.metrics().duplicateTsns),
              static_cast<unsigned long long>(m.t3Expirations), toSeconds(m.srtt) * 1e3, m.cwnd,
              std::chrono::duration<double>(Clock::now() - wall).count());
}

void idleMemory() {
  SeededRandom ra(1), rb(2);
  Options o;
  g_live = 0;
  g_counting = true;
  auto* a = new Association(o, ra);
  auto* b = new Association(o, rb);
  Timestamp now = fromMicros(1'000'000);
  a->connect(now);
  for (int i = 0; i < 4; ++i) {
    pump(*a, *b, now);
    pump(*b, *a, now);
  }
  // Exchange a few messages, then let it idle.
  for (std::uint32_t i = 0; i < 10; ++i) (void)a->send(static_cast<std::uint16_t>(i % 2), 51, Bytes(1000, 1), {}, now);
  for (int i = 0; i < 4; ++i) {
    pump(*a, *b, now);
    pump(*b, *a, now);
  }
  while (b->pollMessage()) {
  }
  while (a->pollEvent()) {
  }
  while (b->pollEvent()) {
  }
  std::int64_t live = g_live.load();
  g_counting = false;
  std::printf("idle association (established, 2 streams used): %.1f KiB each (sizeof %zu B)\n",
              static_cast<double>(live) / 2 / 1024, sizeof(Association));
  delete a;
  delete b;
}

}  // namespace
}  // namespace rtcpeer::sctp

int main(int argc, char** argv) {
  using namespace rtcpeer::sctp;
  std::string_view what = argc > 1 ? argv[1] : "all";
  if (what == "all" || what == "memory") idleMemory();
  if (what == "all" || what.starts_with("inmem")) {
    inMemory(64 * 1024, 3);
    inMemory(64 * 1024, 3, true);
    inMemory(64 * 1024, 3, false, false);
    if (what != "inmem64") inMemory(100, 3);
  }
  if (what == "all" || what == "sim") {
    simulated("sim 100M/50ms loss 0   reno", 0, CongestionControl::Reno, 1);
    simulated("sim 100M/50ms loss 1%  reno", 0.01, CongestionControl::Reno, 1);
    simulated("sim 100M/50ms loss 0   bbr ", 0, CongestionControl::Bbr, 1);
    simulated("sim 100M/50ms loss 1%  bbr ", 0.01, CongestionControl::Bbr, 1);
    simulated("sim 100M/50ms loss 5%  bbr ", 0.05, CongestionControl::Bbr, 1);
  }
  return 0;
}
