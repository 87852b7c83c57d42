// PeerConnection end to end over loopback UDP, two connections in one thread (so every figure includes both
// sides' CPU): setup time, throughput, message rate, echo round trip, memory per connection.
//   bench_peer [--quick] [setup|throughput|rate|echo|memory]...   (default: all)
#include <malloc.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "direct_signaling.hpp"
#include "rtcpeer/rtcpeer.hpp"

using namespace rtcpeer;
using Clock = std::chrono::steady_clock;

namespace {

Configuration loopback() {
  Configuration c;
  c.interfaces = {"127.0.0.1"};
  return c;
}

struct Pair {
  std::unique_ptr<PeerConnection> a = std::make_unique<PeerConnection>();
  std::unique_ptr<PeerConnection> b = std::make_unique<PeerConnection>();
  std::shared_ptr<DataChannel> local, remote;

  Pair() {
    a->initialize(loopback());
    b->initialize(loopback());
    bench::wireDirect(*a, *b);
    bench::wireDirect(*b, *a);
    b->onDataChannelReceived([this](std::shared_ptr<DataChannel> c) { remote = std::move(c); });
  }
  void poll() {
    a->poll();
    b->poll();
  }
  bool runUntil(const std::function<bool()>& done, std::chrono::seconds limit = std::chrono::seconds(10)) {
    auto end = Clock::now() + limit;
    while (Clock::now() < end) {
      poll();
      if (done()) return true;
    }
    return false;
  }
  /// Offer to "channel open on both sides"; returns false on timeout.
  bool connect() {
    local = a->createDataChannel("bench");
    a->createOffer();
    return runUntil([&] { return remote && local->readyState() == ReadyState::Open; });
  }
};

// CPU time of this process: the machine is shared, so wall-clock rates understate what the code does per core.
double cpuSeconds() {
  timespec ts{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) / 1e9;
}

double micros(Clock::duration d) { return std::chrono::duration<double, std::micro>(d).count(); }

double percentile(std::vector<double> v, double p) {
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, static_cast<std::size_t>(p * static_cast<double>(v.size())))];
}

void setupTime(int n) {
  std::vector<double> t;
  for (int i = 0; i < n; ++i) {
    Pair p;
    auto start = Clock::now();
    if (!p.connect()) {
      std::printf("setup: connection %d timed out\n", i);
      return;
    }
    t.push_back(micros(Clock::now() - start) / 1000.0);
  }
  std::printf("setup (offer -> channel open both sides), %d connections: median %.2f ms, p99 %.2f ms\n", n,
              percentile(t, 0.5), percentile(t, 0.99));
}

void throughput(std::size_t size, double seconds, std::size_t window) {
  Pair p;
  if (!p.connect()) return;
  std::vector<std::uint8_t> msg(size, 0x5a), got;
  std::uint64_t bytes = 0, messages = 0;
  const double cpuStart = cpuSeconds();
  const auto start = Clock::now();
  const auto end = start + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(seconds));
  while (Clock::now() < end) {
    while (p.local->bufferedAmount() < window && p.local->putPacket(msg) == Error::Ok) {
    }
    p.poll();
    while (p.remote->getPacket(got) == Error::Ok) {
      bytes += got.size();
      ++messages;
    }
  }
  const double s = std::chrono::duration<double>(Clock::now() - start).count();
  const double cpu = cpuSeconds() - cpuStart;
  std::printf("%zu-byte messages: %.1f MB/s, %.0f messages/s (per CPU second: %.1f MB/s, %.0f messages/s)\n", size,
              static_cast<double>(bytes) / s / 1e6, static_cast<double>(messages) / s,
              static_cast<double>(bytes) / cpu / 1e6, static_cast<double>(messages) / cpu);
}

void echo(int n) {
  Pair p;
  if (!p.connect()) return;
  std::vector<std::uint8_t> msg(100, 1), got;
  std::vector<double> t;
  for (int i = 0; i < n; ++i) {
    auto start = Clock::now();
    p.local->putPacket(msg);
    for (;;) {
      p.a->poll();
      p.b->poll();
      if (p.remote->getPacket(got) == Error::Ok) p.remote->putPacket(got);
      if (p.local->getPacket(got) == Error::Ok) break;
    }
    t.push_back(micros(Clock::now() - start));
  }
  std::printf("echo round trip (100 bytes, %d samples): median %.1f us, p99 %.1f us\n", n, percentile(t, 0.5),
              percentile(t, 0.99));
}

// Heap in use, including chunks glibc served with mmap (mallinfo2's uordblks alone misses those).
std::size_t heapInUse() {
  const auto m = mallinfo2();
  return m.uordblks + m.hblkhd;
}

// Resident set size from /proc/self/statm (pages).
std::size_t residentBytes() {
  std::FILE* f = std::fopen("/proc/self/statm", "r");
  if (!f) return 0;
  unsigned long size = 0, resident = 0;
  const int got = std::fscanf(f, "%lu %lu", &size, &resident);
  std::fclose(f);
  return got == 2 ? resident * static_cast<std::size_t>(sysconf(_SC_PAGESIZE)) : 0;
}

double kib(std::size_t total, int count) { return static_cast<double>(total) / count / 1024; }

// Growth per PeerConnection over `n` pairs (2n connections). One connection is made and closed first so that
// what is allocated once per thread or process (OpenSSL's providers and shared context, the socket batch buffers)
// is not charged to the measured ones.
void memory(int n) {
  {
    Pair warm;
    if (!warm.connect()) return;
  }
  malloc_trim(0);
  std::size_t heap = heapInUse(), rss = residentBytes();
  std::vector<std::unique_ptr<PeerConnection>> fresh;
  for (int i = 0; i < 2 * n; ++i) fresh.push_back(std::make_unique<PeerConnection>());
  std::printf("per PeerConnection, %d initialized and idle: heap %.1f KiB, RSS %.1f KiB\n", 2 * n,
              kib(heapInUse() - heap, 2 * n), kib(residentBytes() - rss, 2 * n));
  fresh.clear();
  malloc_trim(0);

  heap = heapInUse();
  rss = residentBytes();
  std::vector<std::unique_ptr<Pair>> pairs;
  for (int i = 0; i < n; ++i) {
    pairs.push_back(std::make_unique<Pair>());
    if (!pairs.back()->connect()) return;
  }
  // Idle for 1.5 s, polled as an application would: acknowledgements settle, and a connection without traffic for
  // a second releases its DTLS record buffers.
  const auto idleEnd = Clock::now() + std::chrono::milliseconds(1500);
  while (Clock::now() < idleEnd) {
    for (auto& p : pairs) p->poll();
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  const std::size_t connectedRss = residentBytes();
  malloc_trim(0);  // what of the RSS is free heap memory glibc has not returned (freed record buffers, holes)
  std::printf("per PeerConnection, %d connected with one open channel, idle: heap %.1f KiB, RSS %.1f KiB (%.1f KiB "
              "after malloc_trim)\n",
              2 * n, kib(heapInUse() - heap, 2 * n), kib(connectedRss - rss, 2 * n), kib(residentBytes() - rss, 2 * n));
}

}  // namespace

int main(int argc, char** argv) {
  bool quick = false;
  std::vector<std::string> only;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--quick") == 0) quick = true;
    else only.emplace_back(argv[i]);
  }
  auto want = [&](const char* name) { return only.empty() || std::find(only.begin(), only.end(), name) != only.end(); };
  if (want("setup")) setupTime(quick ? 10 : 100);
  if (want("throughput")) throughput(64 * 1024, quick ? 1 : 3, 4 << 20);
  if (want("rate")) throughput(100, quick ? 1 : 3, 1 << 20);
  if (want("echo")) echo(quick ? 1000 : 10000);
  if (want("memory")) memory(quick ? 10 : 50);  // 100 connections by default
}
