// Time from both agents having each other's candidates to both CONNECTED, over real UDP on 127.0.0.1.
//   bench_ice_connect [iterations]
// Loopback only: both agents bind 127.0.0.1 and nothing is sent anywhere else.
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <vector>

#include "unit/ice/udp_driver.hpp"

using namespace rtcpeer;
using namespace rtcpeer::ice;

int main(int argc, char** argv) {
  const int iterations = argc > 1 ? std::atoi(argv[1]) : 500;
  CryptoRandom random;
  const SocketAddress loopback = *SocketAddress::parse("127.0.0.1", 0);
  std::vector<double> ms;
  for (int i = 0; i < iterations; ++i) {
    AgentConfig ca, cb;
    ca.role = Role::Controlling;
    cb.role = Role::Controlled;
    test::UdpAgent a(ca, random), b(cb, random);
    if (!a.bind({loopback}) || !b.bind({loopback})) {
      std::fprintf(stderr, "cannot bind 127.0.0.1\n");
      return 1;
    }
    a.agent.startGathering(a.localAddresses(), net::now());
    b.agent.startGathering(b.localAddresses(), net::now());

    const Timestamp start = net::now();
    b.agent.setRemoteCredentials(a.agent.localCredentials().ufrag, a.agent.localCredentials().pwd, start);
    a.agent.setRemoteCredentials(b.agent.localCredentials().ufrag, b.agent.localCredentials().pwd, start);
    for (const auto& c : a.agent.localCandidates()) (void)b.agent.addRemoteCandidate(c, start);
    for (const auto& c : b.agent.localCandidates()) (void)a.agent.addRemoteCandidate(c, start);
    auto connected = [](const Agent& x) { return x.state() == State::Connected || x.state() == State::Completed; };
    if (!test::runUdp({&a, &b}, [&] { return connected(a.agent) && connected(b.agent); }, 5s)) {
      std::fprintf(stderr, "iteration %d did not connect\n", i);
      return 1;
    }
    ms.push_back(static_cast<double>((net::now() - start).count()) / 1000.0);
  }
  std::sort(ms.begin(), ms.end());
  auto pct = [&](double p) { return ms[static_cast<std::size_t>(p * static_cast<double>(ms.size() - 1))]; };
  std::printf("ice connect on 127.0.0.1, %d runs: min %.3f ms, median %.3f ms, p90 %.3f ms, p99 %.3f ms, max %.3f ms\n",
              iterations, ms.front(), pct(0.5), pct(0.9), pct(0.99), ms.back());
  return 0;
}
