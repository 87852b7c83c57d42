// Godot's channel layout and the SceneMultiplayer system-command frames used for relay (see protocol.hpp).
#include "multiplayer/protocol.hpp"

#include <cstring>

namespace rtcpeer::multiplayer {

namespace {
DataChannelInit negotiated(std::uint16_t id, bool ordered, std::optional<int> lifetime) {
  DataChannelInit init;
  init.negotiated = true;
  init.id = id;
  init.ordered = ordered;
  init.maxPacketLifeTime = lifetime;
  return init;
}
}  // namespace

std::vector<ChannelSpec> channelLayout(std::span<const TransferMode> extras, int unreliableLifetime) {
  std::vector<ChannelSpec> out;
  out.reserve(kReservedChannels + extras.size());
  out.push_back({"reliable", negotiated(1, true, std::nullopt), TransferMode::Reliable});
  out.push_back({"ordered", negotiated(2, true, unreliableLifetime), TransferMode::UnreliableOrdered});
  out.push_back({"unreliable", negotiated(3, false, unreliableLifetime), TransferMode::Unreliable});
  for (std::size_t i = 0; i < extras.size(); ++i) {
    const auto id = static_cast<std::uint16_t>(kReservedChannels + 1 + i);
    const TransferMode mode = extras[i];
    const bool ordered = mode != TransferMode::Unreliable;
    std::optional<int> lifetime;
    if (mode != TransferMode::Reliable) lifetime = unreliableLifetime;
    out.push_back({std::to_string(id), negotiated(id, ordered, lifetime), mode});
  }
  return out;
}

int channelIndexFor(int transferChannel, TransferMode mode) noexcept {
  if (transferChannel > 0) return kReservedChannels + transferChannel - 1;
  switch (mode) {
    case TransferMode::Reliable: return 0;
    case TransferMode::UnreliableOrdered: return 1;
    case TransferMode::Unreliable: return 2;
  }
  return 0;
}

int publicChannel(int index) noexcept { return index < kReservedChannels ? 0 : index - kReservedChannels + 1; }

std::optional<SysMessage> parseSystem(ByteView packet, std::string* reason) {
  auto fail = [&](const char* why) -> std::optional<SysMessage> {
    if (reason) *reason = why;
    return std::nullopt;
  };
  if (!isSystemPacket(packet)) return fail("not a system command");
  if (packet.size() < kSysHeaderSize) return fail("system command shorter than its 6-byte header");
  SysMessage m;
  const std::uint8_t sys = packet[1];
  if (sys > static_cast<std::uint8_t>(SysCommand::Relay)) return fail("unknown system command");
  m.command = static_cast<SysCommand>(sys);
  // Godot's encode_uint32 / StreamPeerBuffer::put_32: little-endian.
  const std::uint32_t raw = std::uint32_t{packet[2]} | (std::uint32_t{packet[3]} << 8) |
                            (std::uint32_t{packet[4]} << 16) | (std::uint32_t{packet[5]} << 24);
  m.peer = static_cast<std::int32_t>(raw);
  m.payload = packet.subspan(kSysHeaderSize);
  if (m.command == SysCommand::Relay && m.payload.empty()) return fail("relay command without payload");
  return m;
}

void writeSystem(Bytes& out, SysCommand command, std::int32_t peer, ByteView payload) {
  out.resize(kSysHeaderSize + payload.size());
  out[0] = kCommandSys;
  out[1] = static_cast<std::uint8_t>(command);
  const auto raw = static_cast<std::uint32_t>(peer);
  for (int i = 0; i < 4; ++i) out[2 + static_cast<std::size_t>(i)] = static_cast<std::uint8_t>(raw >> (8 * i));
  if (!payload.empty()) std::memcpy(out.data() + kSysHeaderSize, payload.data(), payload.size());
}

}  // namespace rtcpeer::multiplayer
