#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "rtcpeer/error.hpp"

namespace rtcpeer {

/// How putPacket() sends (Godot WebRTCDataChannel.WriteMode).
enum class WriteMode : int { Text = 0, Binary = 1 };

/// Godot WebRTCDataChannel.ChannelState / W3C RTCDataChannelState.
enum class ReadyState : int { Connecting = 0, Open = 1, Closing = 2, Closed = 3 };

namespace detail {
struct DataChannelAccess;  // defined by the implementation (src/peer); creates DataChannels
}

/// One WebRTC data channel: a message pipe inside a PeerConnection (Godot WebRTCDataChannel).
///
/// Created only by the library: PeerConnection::createDataChannel() or the dataChannelReceived signal. Not
/// copyable; shared through std::shared_ptr. Destroying the last reference closes the channel, as in Godot, so
/// keep a reference as long as you use it.
///
/// Threads: every method must be called from the thread that polls the channel's PeerConnection (one thread at
/// a time, see PeerConnection), never concurrently with its poll(). Only the destructor is free-threaded: the
/// last reference may be dropped on any thread, at any time, even during poll() on another thread.
class DataChannel {
 public:
  /// The value id(), maxPacketLifeTime() and maxRetransmits() report when unset (Godot's documented value).
  static constexpr int kUnset = 65535;

  /// Closes the channel (through a stream reset, as close() does) at the connection's next poll(), on the
  /// polling thread; its unread messages are discarded and stop holding the receive window. Safe on any thread.
  ~DataChannel();
  DataChannel(const DataChannel&) = delete;
  DataChannel& operator=(const DataChannel&) = delete;

  /// Sends one message: as text (PPID 51) in WriteMode::Text, else binary (PPID 53). Empty messages are sent
  /// too (PPIDs 56/57). Errors: Unconfigured if the channel is not Open; InvalidParameter if the message is
  /// larger than the peer's max-message-size; Unavailable if the connection's send buffer (16 MiB shared by
  /// its channels) has no room for it, or the transport is closing: nothing was queued, so poll() and retry
  /// once bufferedAmount() has dropped. Godot's implementations have no value of their own for a full buffer
  /// (webrtc-native queues without bound); Unavailable is Godot's "try again later", as in getPacket().
  /// The bytes are copied; the call never blocks.
  Error putPacket(std::span<const std::uint8_t> message);
  /// Sends `message` as text or binary according to writeMode(), exactly like the span overload.
  Error putPacket(std::string_view message);

  /// Pops the oldest received message into `out` (replacing its contents). Unavailable when none is queued.
  /// Messages received before close() stay readable after it.
  Error getPacket(std::vector<std::uint8_t>& out);
  /// Number of received messages not yet read.
  int availablePacketCount() const;
  /// True if the message last returned by getPacket() was sent as text.
  bool wasStringPacket() const;

  void setWriteMode(WriteMode mode);
  WriteMode writeMode() const;  ///< default Binary

  ReadyState readyState() const;
  const std::string& label() const;
  const std::string& protocol() const;
  /// The SCTP stream id, or kUnset until assigned (in-band channels get it when the DTLS role is known).
  int id() const;
  bool isOrdered() const;
  int maxPacketLifeTime() const;  ///< milliseconds, or kUnset
  int maxRetransmits() const;     ///< or kUnset
  bool isNegotiated() const;
  /// Bytes handed to putPacket() and not yet sent (acknowledged by the transport's send queue).
  std::size_t bufferedAmount() const;
  /// The largest message putPacket() accepts: the peer's a=max-message-size (65536 if absent; SIZE_MAX if 0).
  std::size_t maxMessageSize() const;

  /// Why the last failing call on this channel failed (e.g. "message of 70000 bytes exceeds the peer's
  /// max-message-size of 65536"); cleared by a call that succeeds.
  const std::string& lastError() const;

  /// Closes the channel through an SCTP stream reset (RFC 8831 §6.7): Closing until the peer has reset its
  /// side too, then Closed. Queued outgoing messages are sent first. Idempotent.
  void close();

  class Impl;

 private:
  friend struct detail::DataChannelAccess;
  explicit DataChannel(std::shared_ptr<Impl> impl);
  std::shared_ptr<Impl> impl_;
};

}  // namespace rtcpeer
