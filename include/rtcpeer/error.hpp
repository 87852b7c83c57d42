#pragma once

namespace rtcpeer {

/// Result of every fallible call, with Godot's numeric values (core/error/error_list.h) so code and bindings
/// written against Godot's WebRTC API port directly. Only codes Godot's WebRTC classes use are listed; any new
/// one must take Godot's number. When a call fails, PeerConnection::lastError() says why.
enum class Error : int {
  Ok = 0,
  Failed = 1,
  Unavailable = 2,
  Unconfigured = 3,
  Unauthorized = 4,
  OutOfMemory = 6,
  AlreadyInUse = 22,
  InvalidParameter = 31,
  Bug = 47,
};

/// "Ok", "InvalidParameter", ... (for logs and messages).
const char* errorName(Error error) noexcept;

}  // namespace rtcpeer
