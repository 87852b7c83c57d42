// The smallest complete rtcpeer program: two PeerConnections in one process, signalled by direct calls instead
// of a signaling server, open a data channel over 127.0.0.1 and exchange one message each way.
// Build: see examples/CMakeLists.txt (find_package(rtcpeer) + target_link_libraries(app rtcpeer::rtcpeer)).
#include <rtcpeer/rtcpeer.hpp>

#include <chrono>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

using namespace rtcpeer;
using namespace std::chrono_literals;

int main() {
  Configuration config;
  config.interfaces = {"127.0.0.1"};  // stay on loopback; leave empty to gather on every interface
  PeerConnection alice, bob;
  if (alice.initialize(config) != Error::Ok || bob.initialize(config) != Error::Ok) return 1;

  // Signaling: what an application would send through its server, here handed straight to the other peer.
  alice.onSessionDescriptionCreated([&](const std::string& type, const std::string& sdp) {
    alice.setLocalDescription(type, sdp);
    bob.setRemoteDescription(type, sdp);  // an offer: bob answers through his own signal
  });
  bob.onSessionDescriptionCreated([&](const std::string& type, const std::string& sdp) {
    bob.setLocalDescription(type, sdp);
    alice.setRemoteDescription(type, sdp);
  });
  alice.onIceCandidateCreated([&](const std::string& mid, int index, const std::string& candidate) {
    bob.addIceCandidate(mid, index, candidate);
  });
  bob.onIceCandidateCreated([&](const std::string& mid, int index, const std::string& candidate) {
    alice.addIceCandidate(mid, index, candidate);
  });
  std::shared_ptr<DataChannel> bobChannel;
  bob.onDataChannelReceived([&](std::shared_ptr<DataChannel> channel) { bobChannel = std::move(channel); });

  std::shared_ptr<DataChannel> aliceChannel = alice.createDataChannel("chat");
  aliceChannel->setWriteMode(WriteMode::Text);
  if (alice.createOffer() != Error::Ok) {
    std::fprintf(stderr, "createOffer: %s\n", alice.lastError().c_str());
    return 1;
  }

  // The event loop: poll both (signals fire only inside poll()), then sleep until either has work.
  bool sent = false, answered = false;
  std::vector<std::uint8_t> message;
  const auto giveUp = std::chrono::steady_clock::now() + 10s;
  while (std::chrono::steady_clock::now() < giveUp) {
    alice.poll();
    bob.poll();
    if (!sent && aliceChannel->readyState() == ReadyState::Open) {
      aliceChannel->putPacket(std::string_view("hello, bob"));
      sent = true;
    }
    if (bobChannel && bobChannel->getPacket(message) == Error::Ok) {
      std::printf("bob got \"%.*s\" on channel \"%s\"\n", static_cast<int>(message.size()),
                  reinterpret_cast<const char*>(message.data()), bobChannel->label().c_str());
      bobChannel->putPacket(std::string_view("hello, alice"));
    }
    if (aliceChannel->getPacket(message) == Error::Ok) {
      std::printf("alice got \"%.*s\" (%s)\n", static_cast<int>(message.size()),
                  reinterpret_cast<const char*>(message.data()), aliceChannel->wasStringPacket() ? "text" : "binary");
      answered = true;
      break;
    }
    alice.wait(1ms);  // a single-connection app would wait(longer); here two connections share the loop
    bob.wait(1ms);
  }
  alice.close();
  bob.close();
  if (!answered) std::fprintf(stderr, "no answer within 10 s (alice: %s)\n", alice.lastError().c_str());
  return answered ? 0 : 1;
}
