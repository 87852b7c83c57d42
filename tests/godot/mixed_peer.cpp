// One C++ peer of the mixed Godot/C++ mesh test (mixed.sh): a rtcpeer::MultiplayerPeer handed a lobby of
// `rtcpeer serve` by signaling::SignalingClient (JSON protocol), meshing with Godot peers that joined the same lobby
// with the 3.x line protocol and Godot's own WebRTCMultiplayer (project/test_mixed.gd speaks the same packets).
//   mixed_peer <ws-url> <lobby, or "" to create one> <peers in the mesh, us included> [--silent]
// Once every other peer is connected, it sends each of them, by peer id, "R <our id>" on the reliable channel,
// "U <our id>" on the unreliable one, then "E <our id>" (end of data) on the reliable one. It passes when every other
// peer's R, U and E arrived, each from the peer id its text names and in the expected transfer mode; an E before its
// R (the reliable channel is ordered) or a peer leaving before its packets arrived is a failure, reported at once.
// Then "D <our id>" (done) to everyone, and it exits once every other peer said done or left, so nobody closes a
// connection whose packets someone still waits for. --silent sends only E and D (the test must then fail).
// Output (stdout, line by line): "lobby NAME id N", "connected N", "got R from N"..., then "PASS id=N peers=a,b,c"
// or "FAIL: why"; exit status 0 only after PASS.
#include <rtcpeer/rtcpeer.hpp>

#include <cstdio>
#include <cstdlib>
#include <map>
#include <set>
#include <string>

#include "signaling/client.hpp"

using namespace rtcpeer;

namespace {

struct Heard {
  bool r = false, u = false, e = false, done = false, left = false;
};

void say(const std::string& line) {
  std::printf("%s\n", line.c_str());
  std::fflush(stdout);
}

int fail(const std::string& why) {
  say("FAIL: " + why);
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 4) {
    std::fprintf(stderr, "usage: mixed_peer <ws-url> <lobby|\"\"> <peers> [--silent]\n");
    return 2;
  }
  const int total = std::atoi(argv[3]);
  const bool silent = argc > 4 && std::string(argv[4]) == "--silent";
  signaling::ClientOptions options;
  options.url = argv[1];
  options.lobby = argv[2];
  options.mesh = true;
  options.rtc.interfaces = {"127.0.0.1"};
  signaling::SignalingClient client(options);
  MultiplayerPeer mp;
  client.setMultiplayerPeer(&mp);

  std::map<int, Heard> heard;  // every peer that ever connected
  std::set<int> connected;
  std::string failure;
  bool sent = false, passed = false;
  client.onJoined([&](const std::string& lobby, int id) { say("lobby " + lobby + " id " + std::to_string(id)); });
  client.onClosed([&](int code, const std::string& reason) {
    if (mp.connectionStatus() == ConnectionStatus::Disconnected)
      failure = "signaling closed (" + std::to_string(code) + "): " + reason + " " + client.lastError();
  });
  mp.onPeerConnected([&](int id) {
    connected.insert(id);
    heard[id];
    say("connected " + std::to_string(id));
  });
  mp.onPeerDisconnected([&](int id) {
    connected.erase(id);
    Heard& h = heard[id];
    h.left = true;
    say("left " + std::to_string(id));
    if (!passed && !(h.r && h.u && h.e)) failure = "peer " + std::to_string(id) + " left before its packets arrived";
  });

  std::vector<std::uint8_t> packet;
  for (;;) {
    client.poll();
    mp.poll();
    while (failure.empty() && mp.availablePacketCount() > 0) {
      const int from = mp.packetPeer();
      const TransferMode mode = mp.packetMode();
      mp.getPacket(packet);
      const std::string text(packet.begin(), packet.end());
      const std::string expected = " " + std::to_string(from);
      if (text.size() < 2 || text.substr(1) != expected) {
        failure = "packet \"" + text + "\" came from peer id " + std::to_string(from);
        break;
      }
      Heard& h = heard[from];
      const char kind = text[0];
      const TransferMode want = kind == 'U' ? TransferMode::Unreliable : TransferMode::Reliable;
      if (mode != want) {
        failure = "\"" + text + "\" arrived in transfer mode " + std::to_string(static_cast<int>(mode));
        break;
      }
      if (kind == 'R') h.r = true;
      else if (kind == 'U') h.u = true;
      else if (kind == 'E') {
        if (!h.r) failure = "peer " + std::to_string(from) + " ended its data but its reliable packet never arrived";
        h.e = true;
      } else if (kind == 'D') h.done = true;
      else failure = "unknown packet \"" + text + "\"";
      if (kind != 'D') say(std::string("got ") + kind + " from " + std::to_string(from));
    }
    if (!failure.empty()) return fail(failure);

    if (!sent && static_cast<int>(connected.size()) == total - 1) {
      sent = true;
      const std::string me = " " + std::to_string(mp.uniqueId());
      for (int id : connected) {
        mp.setTargetPeer(id);
        mp.setTransferMode(TransferMode::Reliable);
        if (!silent && mp.putPacket("R" + me) != Error::Ok) return fail("put R: " + mp.lastError());
        mp.setTransferMode(TransferMode::Unreliable);
        if (!silent && mp.putPacket("U" + me) != Error::Ok) return fail("put U: " + mp.lastError());
        mp.setTransferMode(TransferMode::Reliable);
        if (mp.putPacket("E" + me) != Error::Ok) return fail("put E: " + mp.lastError());
      }
      say("sent to " + std::to_string(connected.size()) + " peers");
    }
    if (sent && !passed) {
      bool all = static_cast<int>(heard.size()) == total - 1;
      for (auto& [id, h] : heard) all = all && h.r && h.u && h.e;
      if (all) {
        passed = true;
        std::string ids;
        for (auto& [id, h] : heard) ids += (ids.empty() ? "" : ",") + std::to_string(id);
        say("PASS id=" + std::to_string(mp.uniqueId()) + " peers=" + ids);
        mp.setTargetPeer(MultiplayerPeer::kTargetPeerBroadcast);
        mp.setTransferMode(TransferMode::Reliable);
        mp.putPacket("D " + std::to_string(mp.uniqueId()));
      }
    }
    if (passed) {
      bool finished = true;
      for (auto& [id, h] : heard) finished = finished && (h.done || h.left);
      if (finished) {
        mp.close();
        return 0;
      }
    }
    client.wait(std::chrono::milliseconds(5));
  }
}
