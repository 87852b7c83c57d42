// Drives an ICE agent with TURN over real sockets (loopback only): UDP sockets plus one net::StreamClient per
// TCP/TLS TURN server, opened on the agent's first transmit to it. What the PeerConnection's poll loop does,
// reduced to ICE + TURN; application datagrams that come out of the agent are collected in `received`.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "ice/agent.hpp"
#include "net/stream.hpp"
#include "net/udp.hpp"

namespace rtcpeer::ice::test {

class TurnAgent {
 public:
  TurnAgent(AgentConfig config, Random& random, net::StreamOptions tls = {})
      : agent(std::move(config), random), tls_(std::move(tls)) {}

  Status bind(const SocketAddress& address) {
    auto s = net::UdpSocket::bind(address);
    if (!s) return s.status();
    sockets.push_back(std::move(*s));
    return okStatus();
  }
  void start(Timestamp now) {
    now_ = now;
    std::vector<SocketAddress> locals;
    for (const auto& s : sockets) locals.push_back(s.localAddress());
    agent.startGathering(locals, now);
    flush();
  }
  void send(ByteView payload, Timestamp now) {
    now_ = now;
    if (auto w = agent.wrapForSelectedPair(payload, now)) out(w->transport, w->local, w->remote, w->data);
    flush();
  }
  void flush() {
    while (auto t = agent.pollTransmit()) out(t->transport, t->local, t->remote, t->data);
  }
  void service(Timestamp now) {
    now_ = now;
    for (auto& s : sockets)
      for (const auto& rx : s.recvBatch())
        if (auto app = agent.handleDatagram(s.localAddress(), rx.remote, rx.data, now))
          if (agent.isRemoteValid(app->local, app->remote)) received.emplace_back(app->data.begin(), app->data.end());
    for (auto& [key, stream] : streams_) {
      if (!stream) continue;
      auto bytes = stream->service();
      if (!bytes) {
        agent.handleStreamClosed(key.first, stream->server(), bytes.reason(), now);
        stream.reset();
        continue;
      }
      if (!bytes->empty()) agent.handleStreamInput(key.first, stream->server(), *bytes, now);
    }
    while (auto d = agent.pollStreamData())
      if (agent.isRemoteValid(d->local, d->remote)) received.push_back(std::move(d->data));
    if (agent.nextDeadline() <= now) agent.handleTimeout(now);
    flush();
  }
  void readFds(std::vector<int>& fds) const {
    for (const auto& s : sockets) fds.push_back(s.fd());
    for (const auto& [key, stream] : streams_)
      if (stream) fds.push_back(stream->fd());
  }
  void writeFds(std::vector<int>& fds) const {
    for (const auto& [key, stream] : streams_)
      if (stream && stream->wantsWrite()) fds.push_back(stream->fd());
  }

  Agent agent;
  std::vector<net::UdpSocket> sockets;
  std::vector<Bytes> received;

 private:
  void out(TurnTransport transport, const SocketAddress& local, const SocketAddress& remote, ByteView data) {
    if (transport == TurnTransport::Udp) {
      for (auto& s : sockets)
        if (s.localAddress() == local) s.sendTo(remote, data);
      return;
    }
    auto key = std::make_pair(transport, remote.toString());
    auto it = streams_.find(key);
    if (it == streams_.end()) {
      net::StreamOptions o = tls_;
      o.tls = transport == TurnTransport::Tls;
      auto c = net::StreamClient::connect(remote, o);
      if (!c) {
        agent.handleStreamClosed(transport, remote, c.reason(), now_);
        return;
      }
      it = streams_.emplace(key, std::make_unique<net::StreamClient>(std::move(*c))).first;
    }
    if (it->second) it->second->write(data);
  }

  net::StreamOptions tls_;
  Timestamp now_{};
  std::map<std::pair<TurnTransport, std::string>, std::unique_ptr<net::StreamClient>> streams_;
};

/// Services all agents until done() or the limit; true if done() became true.
inline bool runTurn(std::vector<TurnAgent*> agents, const std::function<bool()>& done, Duration limit) {
  const Timestamp end = net::now() + limit;
  while (!done()) {
    Timestamp now = net::now();
    if (now >= end) return false;
    Timestamp deadline = end;
    std::vector<int> fds, wfds;
    for (auto* a : agents) {
      deadline = earliest(deadline, a->agent.nextDeadline());
      a->readFds(fds);
      a->writeFds(wfds);
    }
    if (!net::wait(fds, wfds, deadline)) return false;
    now = net::now();
    for (auto* a : agents) a->service(now);
  }
  return true;
}

}  // namespace rtcpeer::ice::test
