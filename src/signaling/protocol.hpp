// Godot's webrtc_signaling demo protocol (src/signaling/README.md): one JSON object
// {"type": int, "id": int, "data": string} per WebSocket text frame. Parsing is strict and bounded: a flat object
// of scalars only, so a hostile frame costs at most its own size.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "common/result.hpp"

namespace rtcpeer::signaling {

enum class MessageType : int {
  Join = 0,            ///< C->S: id 0 mesh / non-zero client-server, data lobby ("" creates). S->C: data lobby
  Id = 1,              ///< S->C: the joiner's id (1 = host), data "true" for a mesh lobby
  PeerConnect = 2,     ///< S->C: id of a peer to connect to
  PeerDisconnect = 3,  ///< S->C: id of a peer that left
  Offer = 4,           ///< relayed: C->S destination id, S->C sender id; data SDP
  Answer = 5,
  Candidate = 6,       ///< data "\n" mid "\n" index "\n" candidate
  Seal = 7,            ///< C->S from the host, S->C broadcast
};

/// Peer ids are Godot's positive int32 ids.
inline constexpr std::int64_t kMaxPeerId = 2147483647;
inline constexpr std::int64_t kHostId = 1;

struct Message {
  MessageType type = MessageType::Join;
  std::int64_t id = 0;
  std::string data;
};

/// Close codes: 1000 after a seal, 4000 for every protocol error (as the demo's Node server does).
inline constexpr int kCloseNormal = 1000;
inline constexpr int kCloseProtocolError = 4000;

/// Parses one text frame. Requires an object with integral "type" (0..7) and "id" (0..kMaxPeerId) numbers
/// (Godot sends them as floats such as 1.0, which are accepted when integral) and an optional string "data";
/// unknown scalar keys are ignored; nested values are refused. The failure reason is fit for a close frame.
Result<Message> parseMessage(std::string_view text);

/// The frame for `m`: {"type":T,"id":I,"data":"..."}.
std::string serialize(const Message& m);

/// CANDIDATE payload: "\n" + mid + "\n" + index + "\n" + candidate.
struct CandidateData {
  std::string mid;
  int index = 0;
  std::string candidate;
};
std::string encodeCandidate(std::string_view mid, int index, std::string_view candidate);
/// Godot's client rule: split on '\n', skip empty parts, exactly three must remain, the middle an integer.
Result<CandidateData> decodeCandidate(std::string_view data);

}  // namespace rtcpeer::signaling
