// Test helpers: a dtls::Endpoint bound into the simulator, and a client/server pair on a virtual-time network
// whose clock OpenSSL's DTLS timer also follows (virtual_time.hpp).
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "dtls/endpoint.hpp"
#include "sim/network.hpp"
#include "unit/dtls/virtual_time.hpp"

namespace rtcpeer::dtls::test {

class SimDtls final : public sim::Endpoint {
 public:
  SimDtls(sim::Network& net, SocketAddress local, SocketAddress remote, Config cfg)
      : ep(std::move(cfg)), net_(net), local_(local), remote_(remote) {
    net_.bind(*this, local_);
  }
  ~SimDtls() override { net_.unbind(local_); }

  void onDatagram(const SocketAddress&, const SocketAddress&, ByteView data, Timestamp now) override {
    ep.handleInput(data, now);
    drain();
  }
  void onTimeout(Timestamp now) override {
    ep.handleTimeout(now);
    drain();
  }
  Timestamp nextDeadline() const override { return ep.nextDeadline(); }

  void drain() {
    const bool drop = dropOutgoing || (dropOnceConnected && ep.state() == State::Connected);
    while (auto d = ep.pollTransmit()) {
      ++datagramsSent;
      if (logSent) sentLog.emplace_back(d->begin(), d->end());
      if (!drop) net_.send(local_, remote_, *d);
    }
    while (auto a = ep.pollApplicationData()) received.emplace_back(a->begin(), a->end());
    while (auto e = ep.pollEvent()) events.push_back(*e);
  }
  void start() {
    ep.start(net_.now());
    drain();
  }

  dtls::Endpoint ep;
  std::vector<Bytes> received;
  std::vector<Event> events;
  int datagramsSent = 0;
  bool dropOutgoing = false;
  bool dropOnceConnected = false;  // e.g. lose a server's final flight
  bool logSent = false;            // keep a copy of every datagram sent in sentLog
  std::vector<Bytes> sentLog;

 private:
  sim::Network& net_;
  SocketAddress local_, remote_;
};

inline const std::shared_ptr<const Certificate>& testCert(int i) {
  static const std::shared_ptr<const Certificate> certs[3] = {*Certificate::generate(), *Certificate::generate(),
                                                              *Certificate::generate()};
  return certs[i];
}

/// Endpoint A (certificate 0) at 10.0.0.1:5000 and B (certificate 1) at 10.0.0.2:5000, each expecting the
/// other's real fingerprint unless a test changes the configs before make().
struct PairSetup {
  explicit PairSetup(std::uint64_t seed) : net(seed), clock([this] { return net.now(); }) {
    a.certificate = testCert(0);
    b.certificate = testCert(1);
    a.role = Role::Client;
    b.role = Role::Server;
    a.remoteFingerprints = {testCert(1)->sha256()};
    b.remoteFingerprints = {testCert(0)->sha256()};
  }
  void make() {
    A = std::make_unique<SimDtls>(net, addrA, addrB, a);
    B = std::make_unique<SimDtls>(net, addrB, addrA, b);
  }
  void startBoth() {
    A->start();
    B->start();
  }
  bool bothConnected() const {
    return A->ep.state() == State::Connected && B->ep.state() == State::Connected;
  }
  static bool terminal(State s) { return s == State::Closed || s == State::Failed; }

  sim::Network net;
  VirtualClock clock;
  Config a, b;
  SocketAddress addrA = *SocketAddress::parse("10.0.0.1", 5000);
  SocketAddress addrB = *SocketAddress::parse("10.0.0.2", 5000);
  std::unique_ptr<SimDtls> A, B;
};

}  // namespace rtcpeer::dtls::test
