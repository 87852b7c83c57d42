// PeerConnection end to end over loopback UDP, two connections in one thread (so every figure includes both
// sides' CPU): setup time, throughput, message rate, echo round trip, memory per connection.
//   bench_peer [--quick] [setup|throughput|rate|echo|memory]...   (default: all)
#include <malloc.h>
#include <time.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <functional>
#include <memory>
#include <string>
#include <vector>

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
    wire(*a, *b);
    wire(*b, *a);
    b->onDataChannelReceived([this](std::shared_ptr<DataChannel> c) { remote = std::move(c); });
  }
  static void wire(PeerConnection& self, PeerConnection& other) {
    self.onSessionDescriptionCreated([&self, &other](const std::string& type, const std::string& sdp) {
      self.setLocalDescription(type, sdp);
      other.setRemoteDescription(type, sdp);
    });
    self.onIceCandidateCreated([&other](const std::string& mid, int index, const std::string& name) {
      other.addIceCandidate(mid, index, name);
    });
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

std::size_t heapInUse() { return mallinfo2().uordblks; }

void memory(int n) {
  std::size_t before = heapInUse();
  std::vector<std::unique_ptr<PeerConnection>> fresh;
  for (int i = 0; i < n; ++i) fresh.push_back(std::make_unique<PeerConnection>());
  std::size_t idle = (heapInUse() - before) / n;
  fresh.clear();

  before = heapInUse();
  std::vector<std::unique_ptr<Pair>> pairs;
  for (int i = 0; i < n; ++i) {
    pairs.push_back(std::make_unique<Pair>());
    if (!pairs.back()->connect()) return;
  }
  std::size_t connected = (heapInUse() - before) / (2 * n);
  std::printf("heap per PeerConnection: %.1f KiB fresh (initialized, idle), %.1f KiB connected with one channel\n",
              static_cast<double>(idle) / 1024, static_cast<double>(connected) / 1024);
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
  if (want("memory")) memory(quick ? 10 : 50);
}
