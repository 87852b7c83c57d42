// STUN message codec (RFC 8489) with the ICE (RFC 8445) and TURN (RFC 8656) attributes, plus TURN ChannelData
// framing. Pure codec: no state, no I/O.
//
// Parsing: `parse(bytes)` validates the whole message once (header, every attribute's length and padding, the
// placement of MESSAGE-INTEGRITY / MESSAGE-INTEGRITY-SHA256 / FINGERPRINT) and returns a `Message`, a small value
// that holds *views into the input*: the caller must keep the input bytes alive while using it. Nothing is
// allocated; getters rescan the (short) attribute list, returning the first occurrence of a type. Attributes after
// MESSAGE-INTEGRITY(-SHA256), other than the integrity/fingerprint attributes themselves, are ignored
// (RFC 8489 14.5, 14.6). Unknown comprehension-required attributes (type < 0x8000) do not fail the parse; they are
// listed by `unknownComprehensionRequired()` so a server can answer 420 with UNKNOWN-ATTRIBUTES (RFC 8489 6.3.1).
// Integrity and fingerprint are checked on demand (`checkIntegrity(key)`, `fingerprintValid()`), never implicitly.
//
// Building: `MessageBuilder` writes into a caller-owned `Bytes` (cleared first; reusing one buffer makes steady
// state allocation-free). The header length is kept current after every attribute, so `addIntegrity()` /
// `addFingerprint()` hash exactly what RFC 8489 14.5/14.7 specify, and they must be added last, in the order
// MESSAGE-INTEGRITY, MESSAGE-INTEGRITY-SHA256, FINGERPRINT.
//
// Keys: short-term credentials use the password bytes as the key (`shortTermKey`); long-term credentials use
// MD5(username ":" realm ":" password) (`longTermKey`). SASLprep/OpaqueString is NOT applied: passwords are used
// exactly as given (WebRTC ICE passwords are ASCII; TURN users should configure ASCII/NFC passwords).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string_view>

#include "common/address.hpp"
#include "common/bytes.hpp"
#include "common/random.hpp"
#include "common/result.hpp"

namespace rtcpeer::stun {

inline constexpr std::uint32_t kMagicCookie = 0x2112A442;
inline constexpr std::size_t kHeaderSize = 20;
/// XOR of the CRC-32 in FINGERPRINT (RFC 8489 14.7).
inline constexpr std::uint32_t kFingerprintXor = 0x5354554E;

using TransactionId = std::array<std::uint8_t, 12>;
TransactionId randomTransactionId(Random& random);

enum class Class : std::uint8_t { Request = 0, Indication = 1, SuccessResponse = 2, ErrorResponse = 3 };

enum class Method : std::uint16_t {
  Binding = 0x001,
  Allocate = 0x003,  // RFC 8656
  Refresh = 0x004,
  Send = 0x006,
  Data = 0x007,
  CreatePermission = 0x008,
  ChannelBind = 0x009,
};

/// The 14-bit message type: method bits interleaved with the two class bits C1 (bit 8) and C0 (bit 4), RFC 8489 5.
constexpr std::uint16_t messageType(Method m, Class c) noexcept {
  const auto mv = static_cast<std::uint16_t>(m);
  const auto cv = static_cast<std::uint16_t>(c);
  return static_cast<std::uint16_t>((mv & 0x000F) | ((mv & 0x0070) << 1) | ((mv & 0x0F80) << 2) |
                                    ((cv & 1) << 4) | ((cv & 2) << 7));
}
constexpr Method methodOf(std::uint16_t type) noexcept {
  return static_cast<Method>((type & 0x000F) | ((type & 0x00E0) >> 1) | ((type & 0x3E00) >> 2));
}
constexpr Class classOf(std::uint16_t type) noexcept {
  return static_cast<Class>(((type >> 4) & 1) | ((type >> 7) & 2));
}

/// Attribute types. Plain integers (not an enum) because unknown types flow through the API too.
namespace attr {
inline constexpr std::uint16_t MappedAddress = 0x0001;
inline constexpr std::uint16_t Username = 0x0006;
inline constexpr std::uint16_t MessageIntegrity = 0x0008;
inline constexpr std::uint16_t ErrorCode = 0x0009;
inline constexpr std::uint16_t UnknownAttributes = 0x000A;
inline constexpr std::uint16_t ChannelNumber = 0x000C;      // TURN
inline constexpr std::uint16_t Lifetime = 0x000D;           // TURN, seconds
inline constexpr std::uint16_t XorPeerAddress = 0x0012;     // TURN
inline constexpr std::uint16_t Data = 0x0013;               // TURN
inline constexpr std::uint16_t Realm = 0x0014;
inline constexpr std::uint16_t Nonce = 0x0015;
inline constexpr std::uint16_t XorRelayedAddress = 0x0016;  // TURN
inline constexpr std::uint16_t RequestedAddressFamily = 0x0017;  // TURN
inline constexpr std::uint16_t EvenPort = 0x0018;           // TURN
inline constexpr std::uint16_t RequestedTransport = 0x0019;  // TURN
inline constexpr std::uint16_t DontFragment = 0x001A;       // TURN, empty
inline constexpr std::uint16_t MessageIntegritySha256 = 0x001C;
inline constexpr std::uint16_t PasswordAlgorithm = 0x001D;
inline constexpr std::uint16_t Userhash = 0x001E;
inline constexpr std::uint16_t XorMappedAddress = 0x0020;
inline constexpr std::uint16_t ReservationToken = 0x0022;   // TURN
inline constexpr std::uint16_t Priority = 0x0024;           // ICE
inline constexpr std::uint16_t UseCandidate = 0x0025;       // ICE, empty
inline constexpr std::uint16_t PasswordAlgorithms = 0x8002;
inline constexpr std::uint16_t AlternateDomain = 0x8003;
inline constexpr std::uint16_t Software = 0x8022;
inline constexpr std::uint16_t AlternateServer = 0x8023;
inline constexpr std::uint16_t Fingerprint = 0x8028;
inline constexpr std::uint16_t IceControlled = 0x8029;      // ICE, 64-bit tie-breaker
inline constexpr std::uint16_t IceControlling = 0x802A;     // ICE, 64-bit tie-breaker
inline constexpr std::uint16_t GoogNetworkInfo = 0xC057;    // libwebrtc, optional: ignored
/// Comprehension-required range (RFC 8489 14).
constexpr bool comprehensionRequired(std::uint16_t type) noexcept { return type < 0x8000; }
}  // namespace attr

/// Error codes used by ICE and TURN (RFC 8489 14.8, RFC 8445 7.3.1.1, RFC 8656 19).
namespace error {
inline constexpr int TryAlternate = 300;
inline constexpr int BadRequest = 400;
inline constexpr int Unauthorized = 401;
inline constexpr int Forbidden = 403;
inline constexpr int UnknownAttribute = 420;
inline constexpr int AllocationMismatch = 437;
inline constexpr int StaleNonce = 438;
inline constexpr int AddressFamilyNotSupported = 440;
inline constexpr int WrongCredentials = 441;
inline constexpr int UnsupportedTransportProtocol = 442;
inline constexpr int PeerAddressFamilyMismatch = 443;
inline constexpr int AllocationQuotaReached = 486;
inline constexpr int RoleConflict = 487;
inline constexpr int ServerError = 500;
inline constexpr int InsufficientCapacity = 508;
}  // namespace error

/// REQUESTED-TRANSPORT protocol number for UDP (RFC 8656 14.7).
inline constexpr std::uint8_t kTransportUdp = 17;

struct ErrorCode {
  int code = 0;                 // 300..699
  std::string_view reason;      // UTF-8, view into the message
};

/// RFC 7983 demultiplexing test plus cheap structural checks: first byte 0..3 (top two bits zero), magic cookie,
/// length a multiple of 4 that matches the datagram size exactly.
bool looksLikeStun(ByteView datagram) noexcept;

/// A parsed STUN message: views into the bytes given to parse(), which must outlive it. Cheap to copy.
class Message {
 public:
  [[nodiscard]] std::uint16_t type() const noexcept { return type_; }
  [[nodiscard]] Method method() const noexcept { return methodOf(type_); }
  [[nodiscard]] Class cls() const noexcept { return classOf(type_); }
  [[nodiscard]] bool is(Method m, Class c) const noexcept { return type_ == messageType(m, c); }
  [[nodiscard]] TransactionId transactionId() const noexcept;
  /// The whole message as parsed.
  [[nodiscard]] ByteView bytes() const noexcept { return data_; }

  /// Value of the first attribute of `type` (outside the ignored region after MESSAGE-INTEGRITY), without padding.
  [[nodiscard]] std::optional<ByteView> find(std::uint16_t type) const noexcept;
  [[nodiscard]] bool has(std::uint16_t type) const noexcept { return find(type).has_value(); }
  /// Calls fn(type, value) for every attribute before the first MESSAGE-INTEGRITY(-SHA256)/FINGERPRINT, in order.
  template <class F>
  void forEach(F&& fn) const {
    for (std::size_t at = kHeaderSize; at < end_;) {
      const auto t = loadBe16(data_.data() + at);
      const auto n = loadBe16(data_.data() + at + 2);
      fn(t, data_.subspan(at + 4, n));
      at += 4 + ((n + 3u) & ~3u);
    }
  }

  // Typed getters: nullopt if absent or malformed (wrong length, bad family, ...).
  /// Any XOR-*-ADDRESS attribute (XOR-MAPPED-ADDRESS, XOR-RELAYED-ADDRESS, XOR-PEER-ADDRESS).
  [[nodiscard]] std::optional<SocketAddress> xorAddress(std::uint16_t type) const noexcept;
  [[nodiscard]] std::optional<SocketAddress> xorMappedAddress() const noexcept {
    return xorAddress(attr::XorMappedAddress);
  }
  [[nodiscard]] std::optional<SocketAddress> xorRelayedAddress() const noexcept {
    return xorAddress(attr::XorRelayedAddress);
  }
  [[nodiscard]] std::optional<SocketAddress> xorPeerAddress() const noexcept {
    return xorAddress(attr::XorPeerAddress);
  }
  /// A plain (non-XOR) address attribute such as MAPPED-ADDRESS or ALTERNATE-SERVER.
  [[nodiscard]] std::optional<SocketAddress> address(std::uint16_t type) const noexcept;
  [[nodiscard]] std::optional<SocketAddress> mappedAddress() const noexcept {
    return address(attr::MappedAddress);
  }
  [[nodiscard]] std::optional<std::string_view> string(std::uint16_t type) const noexcept;
  [[nodiscard]] std::optional<std::string_view> username() const noexcept { return string(attr::Username); }
  [[nodiscard]] std::optional<std::string_view> realm() const noexcept { return string(attr::Realm); }
  [[nodiscard]] std::optional<std::string_view> nonce() const noexcept { return string(attr::Nonce); }
  [[nodiscard]] std::optional<std::string_view> software() const noexcept { return string(attr::Software); }
  /// 4-byte attribute value (PRIORITY, LIFETIME, ...).
  [[nodiscard]] std::optional<std::uint32_t> u32(std::uint16_t type) const noexcept;
  /// 8-byte attribute value (ICE-CONTROLLING, ICE-CONTROLLED, ...).
  [[nodiscard]] std::optional<std::uint64_t> u64(std::uint16_t type) const noexcept;
  [[nodiscard]] std::optional<std::uint32_t> priority() const noexcept { return u32(attr::Priority); }
  [[nodiscard]] bool useCandidate() const noexcept { return has(attr::UseCandidate); }
  [[nodiscard]] std::optional<std::uint64_t> iceControlling() const noexcept { return u64(attr::IceControlling); }
  [[nodiscard]] std::optional<std::uint64_t> iceControlled() const noexcept { return u64(attr::IceControlled); }
  [[nodiscard]] std::optional<ErrorCode> errorCode() const noexcept;
  /// UNKNOWN-ATTRIBUTES list as received (in a 420 response); at most 32 entries are returned.
  [[nodiscard]] std::optional<std::span<const std::uint16_t>> unknownAttributes(
      std::array<std::uint16_t, 32>& storage) const noexcept;
  [[nodiscard]] std::optional<std::uint32_t> lifetime() const noexcept { return u32(attr::Lifetime); }
  [[nodiscard]] std::optional<ByteView> data() const noexcept { return find(attr::Data); }
  /// Protocol number from REQUESTED-TRANSPORT (17 = UDP).
  [[nodiscard]] std::optional<std::uint8_t> requestedTransport() const noexcept;
  /// Channel number from CHANNEL-NUMBER (RFC 8656 14.1: 16-bit number + 16 RFFU bits).
  [[nodiscard]] std::optional<std::uint16_t> channelNumber() const noexcept;
  [[nodiscard]] bool dontFragment() const noexcept { return has(attr::DontFragment); }

  /// Comprehension-required attribute types this codec does not know (the first 8 distinct ones).
  [[nodiscard]] std::span<const std::uint16_t> unknownComprehensionRequired() const noexcept {
    return std::span<const std::uint16_t>(unknown_.data(), unknownCount_);
  }

  [[nodiscard]] bool hasIntegrity() const noexcept { return mi_ != 0; }
  [[nodiscard]] bool hasIntegritySha256() const noexcept { return mi256_ != 0; }
  [[nodiscard]] bool hasFingerprint() const noexcept { return fp_ != 0; }
  /// HMAC-SHA1 over the message up to MESSAGE-INTEGRITY with the length adjusted (RFC 8489 14.5). False if absent.
  [[nodiscard]] bool checkIntegrity(ByteView key) const noexcept;
  /// HMAC-SHA256 (possibly truncated to the attribute's 16..32 bytes), RFC 8489 14.6. False if absent.
  [[nodiscard]] bool checkIntegritySha256(ByteView key) const noexcept;
  /// CRC-32 check of FINGERPRINT (RFC 8489 14.7). False if absent.
  [[nodiscard]] bool fingerprintValid() const noexcept;

 private:
  friend Result<Message> parse(ByteView);
  ByteView data_{};
  std::size_t end_ = kHeaderSize;  // offset of the first integrity/fingerprint attribute, or the message size
  std::size_t mi_ = 0, mi256_ = 0, fp_ = 0;  // offsets of those attribute headers, 0 = absent
  std::uint16_t type_ = 0;
  std::array<std::uint16_t, 8> unknown_{};
  std::size_t unknownCount_ = 0;
};

/// Parses and validates one STUN message occupying exactly `datagram` (e.g. one UDP payload).
Result<Message> parse(ByteView datagram);

/// Writes one STUN message into `out` (cleared first). Attributes are padded to 4 bytes with the padding byte
/// (zero by default; RFC 8489 says receivers ignore it). Integrity/fingerprint must come last (see file comment).
/// The caller keeps the message under the 64 KiB the 16-bit length allows (asserted); the builder never fails.
class MessageBuilder {
 public:
  MessageBuilder(Bytes& out, Method method, Class cls, const TransactionId& id);
  MessageBuilder(Bytes& out, std::uint16_t type, const TransactionId& id);

  /// Padding value for subsequent attributes (tests reproducing RFC 5769 vectors use 0x20).
  MessageBuilder& setPaddingByte(std::uint8_t b) noexcept {
    pad_ = b;
    return *this;
  }
  MessageBuilder& addBytes(std::uint16_t type, ByteView value);
  MessageBuilder& addString(std::uint16_t type, std::string_view value) { return addBytes(type, asBytes(value)); }
  /// Zero-length attribute (USE-CANDIDATE, DONT-FRAGMENT).
  MessageBuilder& addFlag(std::uint16_t type) { return addBytes(type, {}); }
  MessageBuilder& addU32(std::uint16_t type, std::uint32_t value);
  MessageBuilder& addU64(std::uint16_t type, std::uint64_t value);
  MessageBuilder& addAddress(std::uint16_t type, const SocketAddress& address);
  MessageBuilder& addXorAddress(std::uint16_t type, const SocketAddress& address);
  MessageBuilder& addErrorCode(int code, std::string_view reason);
  MessageBuilder& addUnknownAttributes(std::span<const std::uint16_t> types);
  MessageBuilder& addRequestedTransport(std::uint8_t protocol = kTransportUdp);
  MessageBuilder& addChannelNumber(std::uint16_t channel);
  MessageBuilder& addIntegrity(ByteView key) { return addMac(false, key); }
  /// Full 32-byte HMAC-SHA256.
  MessageBuilder& addIntegritySha256(ByteView key) { return addMac(true, key); }
  MessageBuilder& addFingerprint();
  /// The finished message (a view of `out`).
  [[nodiscard]] ByteView finish() const noexcept { return out_; }

 private:
  std::size_t beginAttribute(std::uint16_t type, std::size_t length);
  void endAttribute();
  MessageBuilder& addMac(bool sha256, ByteView key);
  Bytes& out_;
  std::uint8_t pad_ = 0;
};

/// Short-term credential key: the password bytes (RFC 8489 9.1.1). ICE uses the remote/local ice-pwd.
inline ByteView shortTermKey(std::string_view password) noexcept { return asBytes(password); }
/// Long-term credential key: MD5(username ":" realm ":" password) (RFC 8489 9.2.2), no SASLprep.
std::array<std::uint8_t, 16> longTermKey(std::string_view username, std::string_view realm,
                                          std::string_view password);
/// Long-term key with PASSWORD-ALGORITHM SHA-256: SHA-256(username ":" realm ":" password).
std::array<std::uint8_t, 32> longTermKeySha256(std::string_view username, std::string_view realm,
                                                std::string_view password);
/// USERHASH value: SHA-256(username ":" realm) (RFC 8489 14.4).
std::array<std::uint8_t, 32> userhash(std::string_view username, std::string_view realm);

/// CRC-32 (ISO-HDLC, as zlib/ethernet) used by FINGERPRINT.
std::uint32_t crc32(ByteView data) noexcept;

// ---- TURN ChannelData (RFC 8656 12.4) ----
inline constexpr std::uint16_t kMinChannel = 0x4000;
inline constexpr std::uint16_t kMaxChannel = 0x4FFF;
inline constexpr std::size_t kChannelDataHeaderSize = 4;

struct ChannelData {
  std::uint16_t channel = 0;
  ByteView data;  // view into the input
};

/// RFC 7983 demux: first byte 64..79 (channel numbers 0x4000-0x4FFF).
constexpr bool looksLikeChannelData(ByteView b) noexcept { return b.size() >= 4 && b[0] >= 0x40 && b[0] <= 0x4F; }
/// Parses one ChannelData message at the start of `frame`. Trailing bytes beyond the declared length (padding
/// over UDP, or the next frame over a stream) are allowed; use channelDataFrameSize() to step over a stream.
Result<ChannelData> parseChannelData(ByteView frame);
/// Bytes one ChannelData message with `dataLength` payload occupies: over streams it is padded to 4 (RFC 8656 12.5).
constexpr std::size_t channelDataFrameSize(std::size_t dataLength, bool stream) noexcept {
  const std::size_t n = kChannelDataHeaderSize + dataLength;
  return stream ? (n + 3) & ~std::size_t{3} : n;
}
/// Writes header + data (+ zero padding to 4 if `stream`) into `out` (cleared first). Returns the written view.
ByteView writeChannelData(Bytes& out, std::uint16_t channel, ByteView data, bool stream = false);

}  // namespace rtcpeer::stun
