// The Data Channel Establishment Protocol (RFC 8832) wire format and the SCTP payload protocol identifiers of
// WebRTC data channels (RFC 8831 §8, RFC 8832 §8.1).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <variant>

#include "common/bytes.hpp"
#include "common/result.hpp"

namespace rtcpeer::dcep {

/// SCTP payload protocol identifiers (IANA "SCTP Payload Protocol Identifiers").
enum class Ppid : std::uint32_t {
  Control = 50,        ///< DCEP message
  String = 51,         ///< UTF-8 text message
  BinaryPartial = 52,  ///< deprecated: a fragment of a binary message (never sent)
  Binary = 53,         ///< binary message
  StringPartial = 54,  ///< deprecated: a fragment of a text message (never sent)
  StringEmpty = 56,    ///< empty text message; the SCTP payload is one 0x00 byte (RFC 8831 §6.6)
  BinaryEmpty = 57,    ///< empty binary message; same
};

/// RFC 8832 §5.1 channel types: bit 7 = unordered, low bits = reliability.
enum class ChannelType : std::uint8_t {
  Reliable = 0x00,
  ReliableUnordered = 0x80,
  PartialReliableRexmit = 0x01,
  PartialReliableRexmitUnordered = 0x81,
  PartialReliableTimed = 0x02,
  PartialReliableTimedUnordered = 0x82,
};

/// RFC 8832 §5.1 priorities (the W3C "priority" values).
inline constexpr std::uint16_t kPriorityBelowNormal = 128;
inline constexpr std::uint16_t kPriorityNormal = 256;
inline constexpr std::uint16_t kPriorityHigh = 512;
inline constexpr std::uint16_t kPriorityExtraHigh = 1024;

/// How a channel delivers: what DataChannelInit says and what an OPEN message carries.
struct Reliability {
  bool ordered = true;
  std::optional<std::uint16_t> maxRetransmits;     ///< at most one of these two
  std::optional<std::uint16_t> maxPacketLifeTime;  ///< milliseconds

  friend bool operator==(const Reliability&, const Reliability&) = default;
};

ChannelType channelType(const Reliability& r) noexcept;
std::uint32_t reliabilityParameter(const Reliability& r) noexcept;
/// The inverse; Failure for an unknown channel type. The parameter is clamped to 65535 (W3C's range).
Result<Reliability> reliabilityFrom(std::uint8_t channelType, std::uint32_t parameter);

struct Open {
  Reliability reliability;
  std::uint16_t priority = kPriorityNormal;
  std::string label;     ///< at most 65535 bytes (a 16-bit length on the wire)
  std::string protocol;  ///< at most 65535 bytes
};

struct Ack {};

using Message = std::variant<Open, Ack>;

inline constexpr std::uint8_t kMessageAck = 0x02;
inline constexpr std::uint8_t kMessageOpen = 0x03;

/// Appends the encoded OPEN to `out`. Failure if label or protocol exceed 65535 bytes or limits conflict.
Status encodeOpen(const Open& open, Bytes& out);
/// Appends the one-byte ACK.
void encodeAck(Bytes& out);
/// Decodes a DCEP message (the payload of a PPID 50 message). Trailing bytes after an OPEN are ignored.
Result<Message> decode(ByteView payload);

/// True for PPIDs that carry user data (51, 52, 53, 54, 56, 57).
bool isUserData(std::uint32_t ppid) noexcept;
/// True for the text PPIDs (51, 54, 56).
bool isText(std::uint32_t ppid) noexcept;
/// True for the empty-message PPIDs (56, 57), whose one-byte payload is not part of the message.
bool isEmpty(std::uint32_t ppid) noexcept;
/// The PPID for sending a message of `size` bytes.
Ppid ppidFor(bool text, std::size_t size) noexcept;

}  // namespace rtcpeer::dcep
