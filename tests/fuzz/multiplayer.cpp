// Fuzzes the SceneMultiplayer system-command parser MultiplayerPeer uses for relay: parse -> write -> parse must
// round-trip, and a parsed payload always lies inside the input.
#include <cstddef>
#include <cstdint>
#include <cstdlib>

#include "multiplayer/protocol.hpp"

using namespace rtcpeer;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const ByteView in(data, size);
  std::string reason;
  auto m = multiplayer::parseSystem(in, &reason);
  if (!m) return 0;
  if (m->payload.size() + multiplayer::kSysHeaderSize != size) std::abort();
  if (!m->payload.empty() && m->payload.data() != data + multiplayer::kSysHeaderSize) std::abort();
  Bytes again;
  multiplayer::writeSystem(again, m->command, m->peer, m->payload);
  auto back = multiplayer::parseSystem(again);
  if (!back || back->command != m->command || back->peer != m->peer || back->payload.size() != m->payload.size())
    std::abort();
  return 0;
}
