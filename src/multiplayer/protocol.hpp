// The wire-level pieces of MultiplayerPeer, sans-IO: Godot's channel layout (which negotiated data channels a
// peer gets, with which options) and Godot 4's system commands for server relay (SceneMultiplayer's
// NETWORK_COMMAND_SYS frames: ADD_PEER, DEL_PEER, RELAY), with a bounds-checked parser.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "common/bytes.hpp"
#include "rtcpeer/configuration.hpp"
#include "rtcpeer/multiplayer_peer.hpp"

namespace rtcpeer::multiplayer {

/// The three channels every peer has before the configured extras (Godot's CH_RESERVED_MAX).
inline constexpr int kReservedChannels = 3;

struct ChannelSpec {
  std::string label;
  DataChannelInit init;
  TransferMode mode = TransferMode::Reliable;
};

/// Godot's layout: "reliable" id 1, "ordered" id 2, "unreliable" id 3, then "4", "5"... for `extras`. The
/// unreliable ones really get maxPacketLifeTime = `unreliableLifetime` (Godot misspells the key and gets
/// reliable channels); extras use the same lifetime (Godot hard-codes 1 for them).
std::vector<ChannelSpec> channelLayout(std::span<const TransferMode> extras, int unreliableLifetime);

/// Internal channel index for a send: transferChannel 0 picks the reserved channel of `mode`, n >= 1 maps to
/// kReservedChannels + n - 1.
int channelIndexFor(int transferChannel, TransferMode mode) noexcept;
/// The public channel number of an internal index: 0 for the reserved ones, else index - 2.
int publicChannel(int index) noexcept;

// SceneMultiplayer (modules/multiplayer/scene_multiplayer.{h,cpp}, Godot 4): a packet whose first byte has the
// low three bits (CMD_MASK) equal to NETWORK_COMMAND_SYS is a system command: [cmd][sys][int32 LE peer][payload].
inline constexpr std::uint8_t kCommandMask = 0x07;
inline constexpr std::uint8_t kCommandSys = 7;
enum class SysCommand : std::uint8_t { Auth = 0, AddPeer = 1, DelPeer = 2, Relay = 3 };
inline constexpr std::size_t kSysHeaderSize = 6;  // SYS_CMD_SIZE

/// True if `packet` is in the system-command namespace (non-empty, first byte & 7 == 7).
inline bool isSystemPacket(ByteView packet) noexcept {
  return !packet.empty() && (packet[0] & kCommandMask) == kCommandSys;
}

struct SysMessage {
  SysCommand command = SysCommand::Relay;
  std::int32_t peer = 0;  ///< RELAY: destination (client to server) or source (server to client)
  ByteView payload;       ///< RELAY only; points into the parsed packet
};

/// Parses a system packet. nullopt (with `reason`) if it is too short, not a system packet, an unknown command,
/// or a RELAY without payload (Godot requires at least one byte).
std::optional<SysMessage> parseSystem(ByteView packet, std::string* reason = nullptr);

/// Writes the 6-byte header into `out` (resized to 6 + payload.size()) followed by `payload`; `out` keeps its
/// capacity, so a reused buffer does not allocate.
void writeSystem(Bytes& out, SysCommand command, std::int32_t peer, ByteView payload = {});

}  // namespace rtcpeer::multiplayer
