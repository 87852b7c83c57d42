// Benchmarks pair two PeerConnections in one process: what a signaling server would carry is handed across
// directly (descriptions applied on both sides, candidates trickled).
#pragma once

#include <string>

#include "rtcpeer/rtcpeer.hpp"

namespace rtcpeer::bench {

inline void wireDirect(PeerConnection& self, PeerConnection& other) {
  self.onSessionDescriptionCreated([&self, &other](const std::string& type, const std::string& sdp) {
    self.setLocalDescription(type, sdp);
    other.setRemoteDescription(type, sdp);
  });
  self.onIceCandidateCreated([&other](const std::string& mid, int index, const std::string& name) {
    other.addIceCandidate(mid, index, name);
  });
}

}  // namespace rtcpeer::bench
