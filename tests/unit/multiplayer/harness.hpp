// MultiplayerPeers in one process: each pair of nodes gets two PeerConnections over real loopback UDP (the
// tests/unit/peer pattern: host candidates on 127.0.0.1 only), signalled directly through their callbacks.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <functional>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "rtcpeer/rtcpeer.hpp"

namespace rtcpeer::test {

inline Configuration loopback() {
  Configuration c;
  c.interfaces = {"127.0.0.1"};
  return c;
}

struct Received {
  int peer = 0;
  int channel = 0;
  TransferMode mode = TransferMode::Reliable;
  std::string data;
};

struct Node {
  explicit Node(int id_) : id(id_) {
    mp.onPeerConnected([this](int p) {
      connected.insert(p);
      joined.push_back(p);
    });
    mp.onPeerDisconnected([this](int p) {
      connected.erase(p);
      left.push_back(p);
    });
  }
  /// Moves every queued packet into `inbox`, checking packetPeer/Channel/Mode describe it.
  void drain() {
    std::vector<std::uint8_t> buf;
    while (mp.availablePacketCount() > 0) {
      Received r{mp.packetPeer(), mp.packetChannel(), mp.packetMode(), {}};
      ASSERT_EQ(mp.getPacket(buf), Error::Ok);
      r.data.assign(buf.begin(), buf.end());
      inbox.push_back(std::move(r));
    }
  }
  bool got(const std::string& data) const {
    return std::any_of(inbox.begin(), inbox.end(), [&](const Received& r) { return r.data == data; });
  }
  const Received* find(const std::string& data) const {
    for (const auto& r : inbox)
      if (r.data == data) return &r;
    return nullptr;
  }

  int id;
  MultiplayerPeer mp;
  std::set<int> connected;
  std::vector<int> joined, left;
  std::vector<Received> inbox;
};

struct Cluster {
  static constexpr int kLifetime = 1000;
  std::vector<std::unique_ptr<Node>> nodes;
  std::vector<std::shared_ptr<PeerConnection>> pcs;  // every connection, kept alive for the callbacks' pointers
  std::vector<std::string> errors;

  Node& add(int id) {
    nodes.push_back(std::make_unique<Node>(id));
    return *nodes.back();
  }

  /// Two PeerConnections, one in each node's MultiplayerPeer (a as peer b.id, b as peer a.id), offer from a.
  /// The unreliable channels' lifetime is 1 s rather than Godot's 1 ms default: the tests check that every mode
  /// delivers on a lossless loopback, and a test process descheduled for a millisecond between putPacket() and
  /// the transmission (2 shared cores under ASan) would otherwise drop a packet by design.
  void link(Node& a, Node& b, const Configuration& ca = loopback(), const Configuration& cb = loopback(),
            int lifetime = kLifetime) {
    auto pa = std::make_shared<PeerConnection>();
    auto pb = std::make_shared<PeerConnection>();
    EXPECT_EQ(pa->initialize(ca), Error::Ok);
    EXPECT_EQ(pb->initialize(cb), Error::Ok);
    wire(*pa, *pb);
    wire(*pb, *pa);
    ASSERT_EQ(a.mp.addPeer(pa, b.id, lifetime), Error::Ok) << a.mp.lastError();
    ASSERT_EQ(b.mp.addPeer(pb, a.id, lifetime), Error::Ok) << b.mp.lastError();
    ASSERT_EQ(pa->createOffer(), Error::Ok) << pa->lastError();
    pcs.push_back(pa);
    pcs.push_back(pb);
  }

  void wire(PeerConnection& self, PeerConnection& other) {
    self.onSessionDescriptionCreated([this, &self, &other](const std::string& type, const std::string& sdp) {
      check(self.setLocalDescription(type, sdp), self, "setLocalDescription");
      check(other.setRemoteDescription(type, sdp), other, "setRemoteDescription");
    });
    self.onIceCandidateCreated([this, &other](const std::string& mid, int index, const std::string& name) {
      if (other.connectionState() != ConnectionState::Closed)
        check(other.addIceCandidate(mid, index, name), other, "addIceCandidate");
    });
  }
  void check(Error e, PeerConnection& pc, const char* what) {
    if (e != Error::Ok) errors.push_back(std::string(what) + ": " + errorName(e) + ": " + pc.lastError());
  }

  void pollAll() {
    for (auto& n : nodes) {
      n->mp.poll();
      n->drain();
    }
  }

  /// Polls every node until `done` holds; false if `limit` passes first (a hang guard, not a timing bound).
  bool runUntil(const std::function<bool()>& done, std::chrono::milliseconds limit = std::chrono::seconds(30)) {
    const auto end = std::chrono::steady_clock::now() + limit;
    for (std::size_t i = 0; std::chrono::steady_clock::now() < end; ++i) {
      pollAll();
      if (done()) return true;
      if (!pcs.empty()) pcs[i % pcs.size()]->wait(std::chrono::milliseconds(1));
    }
    return false;
  }

  /// Every node's connected set equals `ids` minus itself.
  bool allConnected(const std::vector<int>& ids) {
    for (auto& n : nodes) {
      if (std::find(ids.begin(), ids.end(), n->id) == ids.end()) continue;
      std::set<int> want(ids.begin(), ids.end());
      want.erase(n->id);
      if (n->connected != want) return false;
    }
    return true;
  }
};

}  // namespace rtcpeer::test
