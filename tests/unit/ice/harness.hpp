// A minimal in-memory wire for ICE agent unit tests: fixed delay, optional loss and a drop filter, virtual time.
// (NAT behaviour is tested on the full simulator in sim_test.cpp.)
#pragma once

#include <functional>
#include <map>
#include <vector>

#include "ice/agent.hpp"

namespace rtcpeer::ice::test {

struct Wire {
  Timestamp at;
  SocketAddress from, to;
  Bytes data;
};

class Harness {
 public:
  Timestamp now = fromMicros(1'000'000);
  SeededRandom rnd{7};
  Duration delay = 1ms;
  double loss = 0;
  /// Return false to drop a datagram.
  std::function<bool(const Wire&)> filter;
  /// Datagrams to addresses no agent owns (e.g. a fake STUN server) go here; may reply via inject().
  std::function<void(const Wire&)> unowned;
  std::map<Agent*, std::vector<Event>> events;
  /// Application datagrams (non-STUN, unwrapped from TURN) each agent's handleDatagram returned.
  std::function<void(Agent&, const AppDatagram&)> onApp;

  void add(Agent& a, std::vector<SocketAddress> sockets) {
    for (const auto& s : sockets) owner_[s] = &a;
    agents_.push_back(&a);
    a.startGathering(sockets, now);
    drain(a);
  }
  void inject(const SocketAddress& from, const SocketAddress& to, ByteView data) {
    inflight_.push_back({now + delay, from, to, Bytes(data.begin(), data.end())});
  }
  void drain(Agent& a) {
    while (auto t = a.pollTransmit()) {
      Wire w{now + delay, t->local, t->remote, std::move(t->data)};
      if (filter && !filter(w)) continue;
      if (loss > 0 && rnd.unit() < loss) continue;
      inflight_.push_back(std::move(w));
    }
    while (auto e = a.pollEvent()) events[&a].push_back(std::move(*e));
  }
  void drainAll() {
    for (auto* a : agents_) drain(*a);
  }
  bool step() {
    Timestamp next = kNever;
    for (const auto& w : inflight_) next = earliest(next, w.at);
    for (auto* a : agents_) next = earliest(next, a->nextDeadline());
    if (next == kNever) return false;
    if (next > now) now = next;
    for (std::size_t i = 0; i < inflight_.size(); ++i) {
      if (inflight_[i].at > now) continue;
      Wire w = std::move(inflight_[i]);
      inflight_.erase(inflight_.begin() + static_cast<std::ptrdiff_t>(i));
      auto it = owner_.find(w.to);
      if (it != owner_.end()) {
        auto app = it->second->handleDatagram(w.to, w.from, w.data, now);
        if (app && onApp) onApp(*it->second, *app);
        drain(*it->second);
      } else if (unowned) {
        unowned(w);
      }
      return true;
    }
    for (auto* a : agents_) {
      if (a->nextDeadline() <= now) {
        a->handleTimeout(now);
        drain(*a);
      }
    }
    return true;
  }
  bool runUntil(const std::function<bool()>& done, Duration limit) {
    const Timestamp end = now + limit;
    while (!done()) {
      if (now > end || !step()) return done();
    }
    return true;
  }
  void runFor(Duration d) {
    const Timestamp end = now + d;
    while (now < end) {
      Timestamp next = kNever;
      for (const auto& w : inflight_) next = earliest(next, w.at);
      for (auto* a : agents_) next = earliest(next, a->nextDeadline());
      if (next > end) {
        now = end;
        return;
      }
      step();
    }
  }
  /// Signals each agent's gathered candidates and credentials to the other (what SDP/trickle would carry).
  static void exchange(Agent& a, Agent& b, Timestamp now) {
    b.setRemoteCredentials(a.localCredentials().ufrag, a.localCredentials().pwd, now);
    a.setRemoteCredentials(b.localCredentials().ufrag, b.localCredentials().pwd, now);
    for (const auto& c : a.localCandidates()) (void)b.addRemoteCandidate(c, now);
    for (const auto& c : b.localCandidates()) (void)a.addRemoteCandidate(c, now);
  }

 private:
  std::map<SocketAddress, Agent*, bool (*)(const SocketAddress&, const SocketAddress&)> owner_{
      [](const SocketAddress& x, const SocketAddress& y) { return x.toString() < y.toString(); }};
  std::vector<Agent*> agents_;
  std::vector<Wire> inflight_;
};

inline bool connected(const Agent& a) {
  return a.state() == State::Connected || a.state() == State::Completed;
}

}  // namespace rtcpeer::ice::test
