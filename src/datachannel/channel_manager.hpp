// Data-channel bookkeeping over one SCTP association, sans-IO and independent of the SCTP implementation:
// stream-id allocation by DTLS role, the DCEP handshake, the PPIDs of user messages, the max-message-size
// check and closing through stream resets. The composition layer (src/peer) wires it to the association:
//
//   SCTP up          -> start(role, streams)        SCTP message   -> handleMessage(stream, ppid, bytes)
//   peer reset       -> handleIncomingReset(stream) our reset done -> handleOutgoingResetDone(stream)
//   pollCommand()    -> send / reset on the association, in order; always drain it before sending user data
//                       (an OPEN must precede the first message of its channel on the same ordered stream)
//   pollEvent()      -> Opened / Received / Closing / Closed for the public DataChannel objects
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

#include "common/bytes.hpp"
#include "common/result.hpp"
#include "datachannel/dcep.hpp"
#include "rtcpeer/configuration.hpp"
#include "rtcpeer/error.hpp"

namespace rtcpeer::datachannel {

/// RFC 8832 §6: the DTLS client uses even stream ids, the DTLS server odd ones.
enum class DtlsRole { Client, Server };

enum class ChannelState { Connecting, Open, Closing, Closed };

/// A stable local handle for a channel (never reused within one manager).
using ChannelKey = std::uint32_t;

struct ChannelInfo {
  std::string label;
  std::string protocol;
  dcep::Reliability reliability;
  std::uint16_t priority = dcep::kPriorityNormal;
  bool negotiated = false;
  bool remote = false;  ///< created by the peer's OPEN
  std::optional<std::uint16_t> stream;
  ChannelState state = ChannelState::Connecting;
};

/// How to hand one message to the SCTP association.
struct SendParams {
  std::uint16_t stream = 0;
  std::uint32_t ppid = 0;
  bool ordered = true;
  std::optional<std::uint16_t> maxRetransmits;
  std::optional<std::uint16_t> maxPacketLifeTime;  ///< milliseconds
  bool emptyMessage = false;

  /// The SCTP payload for `message`: itself, or one 0x00 byte for an empty message (RFC 8831 §6.6).
  [[nodiscard]] ByteView payload(ByteView message) const noexcept;
};

/// Work for the SCTP association, drained with pollCommand().
struct Command {
  enum class Kind { Send, ResetStream };
  Kind kind = Kind::Send;
  SendParams params;  ///< Send: a DCEP message (PPID 50, ordered, reliable); ResetStream: params.stream only
  Bytes data;
};

struct Event {
  enum class Kind {
    Opened,    ///< a local channel is Open
    Received,  ///< the peer opened a channel (already Open): dataChannelReceived
    Closing,   ///< the peer started closing the channel
    Closed,    ///< the channel is Closed; `reason` is set if it failed rather than closed
  };
  Kind kind = Kind::Opened;
  ChannelKey channel = 0;
  std::string reason;
};

/// A user message received on a channel. `data` stays valid until the next call into the manager.
struct Inbound {
  ChannelKey channel = 0;
  bool text = false;
  ByteView data;
};

class ChannelManager {
 public:
  /// `localMaxMessageSize` bounds reassembly of the deprecated partial PPIDs 52/54.
  explicit ChannelManager(std::size_t localMaxMessageSize = 262144);

  /// The peer's a=max-message-size (RFC 8841 §6: absent means 65536, 0 means no limit).
  void setRemoteMaxMessageSize(std::optional<std::uint64_t> sdpValue);
  [[nodiscard]] std::size_t remoteMaxMessageSize() const noexcept { return remoteMax_; }

  /// A new local channel. Validates `init` (DataChannelInit::validate) and the label; a negotiated id must be
  /// free. Before start() the channel waits in Connecting; after it, it opens at once (in-band: OPEN queued).
  /// Failure codes are rtcpeer::Error values (Failure::code).
  Result<ChannelKey> create(std::string_view label, const DataChannelInit& init);

  /// The association is up: assign stream ids (< streamCount) to waiting in-band channels, send their OPENs
  /// and open every waiting channel. Calling it again does nothing.
  void start(DtlsRole role, std::uint16_t streamCount = 65535);
  [[nodiscard]] bool started() const noexcept { return started_; }

  /// Parameters for sending a message of `size` bytes. Failure (code Unconfigured) unless Open; failure
  /// (code InvalidParameter) above the peer's max-message-size.
  Result<SendParams> prepareSend(ChannelKey channel, bool text, std::size_t size) const;

  /// A message from the association. DCEP is handled here (nullopt); user data comes back as Inbound.
  /// Failure for protocol errors (the caller logs them; the manager stays consistent).
  Result<std::optional<Inbound>> handleMessage(std::uint16_t stream, std::uint32_t ppid, ByteView data);
  /// The peer reset its outgoing stream: the channel closes (we reset ours in turn, RFC 8831 §6.7).
  void handleIncomingReset(std::uint16_t stream);
  /// Our outgoing reset of `stream` completed.
  void handleOutgoingResetDone(std::uint16_t stream);

  /// Starts closing a channel (Closing, then Closed once both directions are reset). Idempotent.
  void close(ChannelKey channel);
  /// The association is gone or the PeerConnection closes: every channel becomes Closed now.
  void closeAll(std::string_view reason = {});
  /// Forgets a Closed channel (its public object was destroyed).
  void forget(ChannelKey channel);

  std::optional<Command> pollCommand();
  std::optional<Event> pollEvent();

  [[nodiscard]] const ChannelInfo* info(ChannelKey channel) const;
  /// Bytes of deprecated PPID 52/54 pieces waiting for their final piece, over all channels (at most
  /// localMaxMessageSize: they sit outside the SCTP receive window).
  [[nodiscard]] std::size_t partialBytes() const noexcept { return partialTotal_; }
  [[nodiscard]] std::optional<ChannelKey> channelOnStream(std::uint16_t stream) const;
  [[nodiscard]] std::size_t channelCount() const noexcept { return channels_.size(); }

 private:
  struct Channel {
    ChannelInfo info;
    bool awaitingAck = false;     // our OPEN is unacknowledged: send ordered (RFC 8832 §6)
    bool outgoingReset = false;   // our side of the stream is reset
    bool incomingReset = false;   // the peer's side is reset
    bool resetRequested = false;  // ResetStream already queued
    Bytes partial;                // reassembly of the deprecated PPIDs 52/54
  };

  Channel* find(ChannelKey key);
  std::optional<std::uint16_t> allocateStream();
  void openLocal(ChannelKey key, Channel& c);
  void requestReset(Channel& c);
  void dropPartial(Channel& c) noexcept;
  void finishIfClosed(ChannelKey key, Channel& c);
  void markClosed(ChannelKey key, Channel& c, std::string reason);
  Status handleControl(std::uint16_t stream, ByteView data);
  /// Why a peer's OPEN on `stream` is refused (a limit or the stream's parity), or empty to accept it.
  std::string refuseOpen(std::uint16_t stream, const dcep::Open& open) const;

 public:
  /// What a peer may hold open at once through DCEP (channels it opened and their label + protocol bytes): a
  /// hostile peer cannot grow our memory past this. Browsers' own channels are far below it.
  static constexpr std::size_t kMaxRemoteChannels = 2048;
  static constexpr std::size_t kMaxRemoteNameBytes = 1 << 20;

 private:

  std::size_t localMax_;
  std::size_t remoteMax_ = 65536;
  bool started_ = false;
  DtlsRole role_ = DtlsRole::Client;
  std::uint16_t streamCount_ = 65535;
  std::uint32_t nextStream_ = 0;  // where allocateStream() looks first (offset within our parity's ids)
  ChannelKey nextKey_ = 1;
  std::map<ChannelKey, Channel> channels_;  // ordered: waiting channels open in creation order
  std::unordered_map<std::uint16_t, ChannelKey> byStream_;
  std::deque<Command> commands_;
  std::deque<Event> events_;
  std::size_t partialTotal_ = 0;  // sum of every channel's `partial`
  Bytes assembled_;  // the last reassembled partial message (Inbound::data may point here)
};

}  // namespace rtcpeer::datachannel
