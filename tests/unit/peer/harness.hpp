// Two PeerConnections in one process, signalled through their callbacks and driven by a bounded poll loop over
// real loopback UDP sockets.
#pragma once

#include <gtest/gtest.h>

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "rtcpeer/rtcpeer.hpp"

namespace rtcpeer::test {

inline Configuration loopbackConfig() {
  Configuration c;
  c.interfaces = {"127.0.0.1"};
  return c;
}

struct PeerPair {
  PeerConnection a, b;
  std::vector<std::shared_ptr<DataChannel>> receivedByA, receivedByB;
  std::vector<std::string> errors;  // signalling calls that failed inside callbacks
  bool inPoll = false;
  int signalsOutsidePoll = 0;

  explicit PeerPair(const Configuration& ca = loopbackConfig(), const Configuration& cb = loopbackConfig()) {
    EXPECT_EQ(a.initialize(ca), Error::Ok) << a.lastError();
    EXPECT_EQ(b.initialize(cb), Error::Ok) << b.lastError();
    wire(a, b, receivedByA);
    wire(b, a, receivedByB);
  }

  void wire(PeerConnection& self, PeerConnection& other, std::vector<std::shared_ptr<DataChannel>>& received) {
    self.onSessionDescriptionCreated([this, &self, &other](const std::string& type, const std::string& sdp) {
      noteSignal();
      check(self.setLocalDescription(type, sdp), self, "setLocalDescription");
      check(other.setRemoteDescription(type, sdp), other, "setRemoteDescription");
    });
    self.onIceCandidateCreated([this, &other](const std::string& mid, int index, const std::string& name) {
      noteSignal();
      check(other.addIceCandidate(mid, index, name), other, "addIceCandidate");
    });
    self.onDataChannelReceived([this, &received](std::shared_ptr<DataChannel> channel) {
      noteSignal();
      received.push_back(std::move(channel));
    });
  }

  void noteSignal() {
    if (!inPoll) ++signalsOutsidePoll;
  }
  void check(Error e, PeerConnection& pc, const char* what) {
    if (e != Error::Ok) errors.push_back(std::string(what) + ": " + errorName(e) + ": " + pc.lastError());
  }

  void pollBoth() {
    inPoll = true;
    a.poll();
    b.poll();
    inPoll = false;
  }

  /// Polls both sides until `done` holds or `limit` passes; false on timeout.
  bool runUntil(const std::function<bool()>& done, std::chrono::milliseconds limit = std::chrono::seconds(10)) {
    const auto end = std::chrono::steady_clock::now() + limit;
    for (int i = 0; std::chrono::steady_clock::now() < end; ++i) {
      pollBoth();
      if (done()) return true;
      (i % 2 ? a : b).wait(std::chrono::milliseconds(1));
    }
    return false;
  }

  /// Offer from `a` (which must have a channel) and run until both sides are Connected.
  bool connect() {
    if (a.createOffer() != Error::Ok) return false;
    return runUntil([&] {
      return a.connectionState() == ConnectionState::Connected && b.connectionState() == ConnectionState::Connected;
    });
  }
};

}  // namespace rtcpeer::test
