// Drives ICE agents over real UDP sockets with the net shell (loopback only): what the PeerConnection's poll loop
// does, reduced to ICE. Used by the real-socket tests and the connect benchmark.
#pragma once

#include <functional>
#include <vector>

#include "ice/agent.hpp"
#include "net/udp.hpp"

namespace rtcpeer::ice::test {

class UdpAgent {
 public:
  UdpAgent(AgentConfig config, Random& random) : agent(std::move(config), random) {}

  /// Binds one socket per address (port 0 = ephemeral); false (with the reason) if one fails.
  Status bind(const std::vector<SocketAddress>& addresses) {
    for (const auto& a : addresses) {
      auto s = net::UdpSocket::bind(a);
      if (!s) return s.status();
      sockets.push_back(std::move(*s));
    }
    return okStatus();
  }
  std::vector<SocketAddress> localAddresses() const {
    std::vector<SocketAddress> out;
    for (const auto& s : sockets) out.push_back(s.localAddress());
    return out;
  }
  void flush() {
    while (auto t = agent.pollTransmit()) {
      for (auto& s : sockets)
        if (s.localAddress() == t->local) s.sendTo(t->remote, t->data);
    }
  }
  void service(Timestamp now) {
    for (auto& s : sockets)
      for (const auto& rx : s.recvBatch()) agent.handleInput(s.localAddress(), rx.remote, rx.data, now);
    if (agent.nextDeadline() <= now) agent.handleTimeout(now);
    flush();
  }

  Agent agent;
  std::vector<net::UdpSocket> sockets;
};

/// Polls all agents' sockets until done() or the limit; true if done() became true.
inline bool runUdp(std::vector<UdpAgent*> agents, const std::function<bool()>& done, Duration limit) {
  const Timestamp end = net::now() + limit;
  std::vector<int> fds;
  for (auto* a : agents)
    for (const auto& s : a->sockets) fds.push_back(s.fd());
  for (auto* a : agents) a->flush();
  while (!done()) {
    Timestamp now = net::now();
    if (now >= end) return false;
    Timestamp deadline = end;
    for (auto* a : agents) deadline = earliest(deadline, a->agent.nextDeadline());
    if (!net::wait(fds, deadline)) return false;
    now = net::now();
    for (auto* a : agents) a->service(now);
  }
  return true;
}

}  // namespace rtcpeer::ice::test
