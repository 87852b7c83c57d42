// The line protocol of Godot 3.x's webrtc_signaling demo (godot-demo-projects, 3.x branch: client/ws_webrtc_client.gd,
// server/ws_webrtc_server.gd, server_node/server.js), spoken by the server next to the JSON protocol of the 4.x demo
// (protocol.hpp) and chosen per connection from its first frame. Each text frame is "<T>: <arg>\n<payload>":
//   client -> server: "J: <lobby>\n" (empty creates), "S: \n" (host seals), "O|A: <dest>\n<sdp>",
//                     "C: <dest>\n<mid>\n<index>\n<candidate>"
//   server -> client: "I: <id>\n", "J: <lobby>\n", "N: <peer>\n", "D: <peer>\n", "S: \n", and O/A/C with the
//                     sender's id (1 for the lobby host) in place of the destination.
// The translation is to and from protocol.hpp's Message, so the lobby core is the same for both generations and a
// lobby may mix them. 3.x lobbies are meshes (every member is announced to every other), so "J:" joins as mesh.
#pragma once

#include <string>
#include <string_view>

#include "common/result.hpp"
#include "signaling/protocol.hpp"

namespace rtcpeer::signaling {

enum class Dialect { Unknown, Json, Lines };

/// The dialect a connection speaks, from its first text frame: lines if it starts with a 3.x client command
/// ("J: ", "S: ", "O: ", "A: ", "C: "), JSON otherwise.
Dialect detectDialect(std::string_view firstFrame);

/// Parses one client frame of the line protocol; the failure reason is fit for a close frame.
Result<Message> parseLine(std::string_view frame);

/// The line-protocol frame for a server message.
std::string serializeLine(const Message& m);

}  // namespace rtcpeer::signaling
