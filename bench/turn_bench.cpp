// TURN through Debian's coturn on loopback, for UDP, TCP and TLS to the server (both agents relay-only):
//  - setup: from startGathering on both agents (Allocate with its 401 round trip, candidate exchange, permission,
//    checks through the relay) to both CONNECTED;
//  - throughput: 1000-byte datagrams A → B through the relay for 2 s (ChannelData once bound) with at most 64 in
//    flight; delivered Mbit/s and loss.
//  - PeerConnection (ICE + DTLS + SCTP + data channel, relay-only): offer to channel open on both sides, and
//    64 KiB reliable messages for 3 s with 4 MiB buffered, as bench_peer measures over direct loopback.
//   bench_turn [setup-iterations]
// Runs coturn as a child (see tests/unit/ice/coturn.hpp), in a private loopback-only namespace when root.
#include <algorithm>
#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <cstdio>
#include <cstdlib>
#include <vector>

#include "direct_signaling.hpp"
#include "rtcpeer/rtcpeer.hpp"
#include "unit/ice/coturn.hpp"
#include "unit/ice/turn_driver.hpp"

using namespace rtcpeer;
using namespace rtcpeer::ice;

namespace {

bool connected(const Agent& x) { return x.state() == State::Connected || x.state() == State::Completed; }

struct Pair {
  CryptoRandom random;
  test::TurnAgent a, b;
  Pair(const test::Coturn& server, TurnTransport t, const net::StreamOptions& tls)
      : a(config(server, t, Role::Controlling), random, tls), b(config(server, t, Role::Controlled), random, tls) {}
  static AgentConfig config(const test::Coturn& server, TurnTransport t, Role role) {
    AgentConfig c;
    c.role = role;
    c.relayOnly = true;
    c.turnServers = {{server.address(t), t, test::Coturn::kUser, test::Coturn::kPassword}};
    return c;
  }
  bool connect() {
    const SocketAddress lo = *SocketAddress::parse("127.0.0.1", 0);
    if (!a.bind(lo) || !b.bind(lo)) return false;
    a.start(net::now());
    b.start(net::now());
    const bool gathered = test::runTurn({&a, &b}, [&] {
      return a.agent.gatheringState() == ice::GatheringState::Complete && b.agent.gatheringState() == ice::GatheringState::Complete;
    }, 10s);
    if (!gathered) return false;
    const Timestamp now = net::now();
    b.agent.setRemoteCredentials(a.agent.localCredentials().ufrag, a.agent.localCredentials().pwd, now);
    a.agent.setRemoteCredentials(b.agent.localCredentials().ufrag, b.agent.localCredentials().pwd, now);
    for (const auto& c : a.agent.localCandidates()) (void)b.agent.addRemoteCandidate(c, now);
    for (const auto& c : b.agent.localCandidates()) (void)a.agent.addRemoteCandidate(c, now);
    a.flush();
    b.flush();
    return test::runTurn({&a, &b}, [&] { return connected(a.agent) && connected(b.agent); }, 10s);
  }
  void close() {
    a.agent.close();
    b.agent.close();
    a.flush();
    b.flush();
    test::runTurn({&a, &b}, [] { return false; }, 20ms);
  }
};

using Clock = std::chrono::steady_clock;

struct PeerPair {
  std::unique_ptr<PeerConnection> a = std::make_unique<PeerConnection>();
  std::unique_ptr<PeerConnection> b = std::make_unique<PeerConnection>();
  std::shared_ptr<DataChannel> local, remote;

  explicit PeerPair(const Configuration& c) {
    a->initialize(c);
    b->initialize(c);
    bench::wireDirect(*a, *b);
    bench::wireDirect(*b, *a);
    b->onDataChannelReceived([this](std::shared_ptr<DataChannel> ch) { remote = std::move(ch); });
  }
  bool runUntil(const std::function<bool()>& done, std::chrono::seconds limit = std::chrono::seconds(10)) {
    const auto end = Clock::now() + limit;
    while (Clock::now() < end) {
      a->poll();
      b->poll();
      if (done()) return true;
    }
    return false;
  }
  bool connect() {
    local = a->createDataChannel("bench");
    a->createOffer();
    return runUntil([&] { return remote && local->readyState() == ReadyState::Open; });
  }
};

bool peerBench(const std::string& url, const char* name, int iterations) {
  Configuration c;
  c.interfaces = {"127.0.0.1"};
  c.iceServers = {{{url}, test::Coturn::kUser, test::Coturn::kPassword}};
  c.relayOnly = true;
  std::vector<double> ms;
  for (int i = 0; i < iterations; ++i) {
    PeerPair p(c);
    const auto start = Clock::now();
    if (!p.connect()) return false;
    ms.push_back(std::chrono::duration<double, std::milli>(Clock::now() - start).count());
  }
  std::sort(ms.begin(), ms.end());
  std::printf("peer %-3s setup (offer -> channel open both sides), %d runs: min %.2f ms, median %.2f ms, max %.2f ms\n",
              name, iterations, ms.front(), ms[ms.size() / 2], ms.back());
  PeerPair p(c);
  if (!p.connect()) return false;
  std::vector<std::uint8_t> msg(64 * 1024, 0x5a), got;
  std::uint64_t bytes = 0;
  const auto start = Clock::now();
  while (Clock::now() - start < std::chrono::seconds(3)) {
    while (p.local->bufferedAmount() < (4u << 20) && p.local->putPacket(msg) == Error::Ok) {
    }
    p.a->poll();
    p.b->poll();
    while (p.remote->getPacket(got) == Error::Ok) bytes += got.size();
  }
  const double s = std::chrono::duration<double>(Clock::now() - start).count();
  std::printf("peer %-3s throughput, 64 KiB reliable messages: %.1f MB/s\n", name, static_cast<double>(bytes) / s / 1e6);
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  const int iterations = argc > 1 ? std::atoi(argv[1]) : 20;
  const bool isolated = test::enterLoopbackNamespace();
  test::Coturn server;
  if (!server.error().empty()) {
    std::fprintf(stderr, "%s\n", server.error().c_str());
    return 1;
  }
  net::StreamOptions tls;
  tls.caFile = server.caFile();
  tls.serverName = test::Coturn::kServerName;
  std::printf("coturn on 127.0.0.1%s\n", isolated ? " (private loopback-only namespace)" : "");
  for (TurnTransport t : {TurnTransport::Udp, TurnTransport::Tcp, TurnTransport::Tls}) {
    std::vector<double> ms;
    for (int i = 0; i < iterations; ++i) {
      Pair p(server, t, tls);
      const Timestamp start = net::now();
      if (!p.connect()) {
        std::fprintf(stderr, "%s: iteration %d did not connect\n", std::string(toString(t)).c_str(), i);
        return 1;
      }
      ms.push_back(static_cast<double>((net::now() - start).count()) / 1000.0);
      p.close();
    }
    std::sort(ms.begin(), ms.end());
    std::printf("turn %-3s setup, %d runs: min %.2f ms, median %.2f ms, max %.2f ms\n",
                std::string(toString(t)).c_str(), iterations, ms.front(), ms[ms.size() / 2], ms.back());

    Pair p(server, t, tls);
    if (!p.connect()) return 1;
    test::runTurn({&p.a, &p.b}, [] { return false; }, 200ms);  // the channel binding completes
    Bytes data(1000, 0x5A);
    data[0] = 23;
    std::size_t sent = 0, got = 0;
    p.b.received.clear();
    const Timestamp start = net::now();
    Timestamp lastArrival = start;
    auto count = [&] {
      if (!p.b.received.empty()) lastArrival = net::now();
      got += p.b.received.size();
      p.b.received.clear();
    };
    // A window of 64 datagrams in flight (what a congestion-controlled sender such as SCTP keeps): send while the
    // window is open, otherwise wait for arrivals; after 20 ms without any, what is missing counts as lost.
    std::size_t written_off = 0;
    while (net::now() - start < 2s) {
      while (sent - got - written_off < 64) {
        p.a.send(data, net::now());
        ++sent;
      }
      const std::size_t before = got;
      test::runTurn({&p.a, &p.b}, [&] { return !p.b.received.empty(); }, 20ms);
      count();
      if (got == before) written_off = sent - got;
    }
    const Timestamp drainEnd = net::now() + 300ms;  // what is still in flight
    while (net::now() < drainEnd) {
      test::runTurn({&p.a, &p.b}, [&] { return !p.b.received.empty(); }, drainEnd - net::now());
      count();
    }
    const double seconds = toSeconds(lastArrival - start);
    std::printf("turn %-3s throughput A->B, 1000-byte datagrams: %.1f Mbit/s delivered, %zu sent, %.2f %% lost\n",
                std::string(toString(t)).c_str(), static_cast<double>(got) * 8000.0 / seconds / 1e6, sent,
                100.0 * static_cast<double>(sent - got) / static_cast<double>(sent));
    p.close();
  }
  setenv("SSL_CERT_FILE", server.caFile().c_str(), 1);  // turns: verifies against the default store
  const std::string port = std::to_string(server.port), tlsPort = std::to_string(server.tlsPort);
  if (!peerBench("turn:127.0.0.1:" + port, "udp", iterations) ||
      !peerBench("turn:127.0.0.1:" + port + "?transport=tcp", "tcp", iterations) ||
      !peerBench("turns:127.0.0.1:" + tlsPort, "tls", iterations)) {
    std::fprintf(stderr, "a PeerConnection did not connect through coturn\n");
    return 1;
  }
  return 0;
}
