// The SCTP packet frame (RFC 9260 section 3): the common header, the chunk sequence and TLV parameters, plus a
// builder that writes chunks into a caller-owned buffer and stamps the CRC32c. Chunk bodies are decoded by the
// codecs in chunks.hpp.
#pragma once

#include <cstdint>

#include "common/bytes.hpp"
#include "common/result.hpp"

namespace rtcpeer::sctp {

inline constexpr std::size_t kCommonHeaderSize = 12;
inline constexpr std::size_t kChunkHeaderSize = 4;

namespace ChunkType {
inline constexpr std::uint8_t kData = 0, kInit = 1, kInitAck = 2, kSack = 3, kHeartbeat = 4, kHeartbeatAck = 5,
                              kAbort = 6, kShutdown = 7, kShutdownAck = 8, kError = 9, kCookieEcho = 10,
                              kCookieAck = 11, kShutdownComplete = 14, kIData = 0x40, kReConfig = 0x82,
                              kForwardTsn = 0xC0, kIForwardTsn = 0xC2;
}  // namespace ChunkType

struct CommonHeader {
  std::uint16_t srcPort = 0;
  std::uint16_t dstPort = 0;
  std::uint32_t verificationTag = 0;
  std::uint32_t checksum = 0;
};

/// One chunk as framed on the wire; `value` excludes the 4-byte chunk header and the padding.
struct RawChunk {
  std::uint8_t type = 0;
  std::uint8_t flags = 0;
  ByteView value;
};

/// A type-length-value item (a parameter or an error cause: same framing, RFC 9260 3.2.1 / 3.3.10).
struct Tlv {
  std::uint16_t type = 0;
  ByteView value;
};

/// Parses and, if `verifyChecksum`, checks the common header (the checksum is stored little-endian, as the CRC
/// register's first byte goes first on the wire: RFC 9260 appendix A).
Status parseCommonHeader(ByteView packet, CommonHeader& out, bool verifyChecksum);

/// Iterates the chunks after the common header. next() returns false at the end or on malformed framing
/// (then malformed() is true); a zero-length or overlong chunk ends the packet (RFC 9260 3.2).
class ChunkIterator {
 public:
  explicit ChunkIterator(ByteView packet) noexcept : r_(packet.size() >= kCommonHeaderSize
                                                             ? packet.subspan(kCommonHeaderSize)
                                                             : ByteView{}) {}
  bool next(RawChunk& out) noexcept;
  [[nodiscard]] bool malformed() const noexcept { return malformed_; }

 private:
  ByteReader r_;
  bool malformed_ = false;
};

/// Iterates TLVs (parameters or error causes); same end/malformed rules as ChunkIterator.
class TlvIterator {
 public:
  explicit TlvIterator(ByteView data) noexcept : r_(data) {}
  bool next(Tlv& out) noexcept;
  [[nodiscard]] bool malformed() const noexcept { return malformed_; }
  /// The bytes of the item last returned, header and value, without padding (for echoing it back).
  [[nodiscard]] ByteView lastRaw() const noexcept { return lastRaw_; }

 private:
  ByteReader r_;
  ByteView lastRaw_;
  bool malformed_ = false;
};

/// Chunk framing helpers for writers: begin writes the header with a placeholder length, end patches it and pads.
std::size_t beginChunk(SpanWriter& w, std::uint8_t type, std::uint8_t flags) noexcept;
void endChunk(SpanWriter& w, std::size_t start) noexcept;
std::size_t beginTlv(SpanWriter& w, std::uint16_t type) noexcept;
void endTlv(SpanWriter& w, std::size_t start) noexcept;
void writeTlv(SpanWriter& w, std::uint16_t type, ByteView value) noexcept;

/// Writes a packet into a caller-owned buffer: the common header first, then chunks via writer(), then finish()
/// computes the checksum (or leaves it zero when the peer accepted zero checksum, RFC 9653).
class PacketBuilder {
 public:
  PacketBuilder(MutableByteView buf, std::uint16_t srcPort, std::uint16_t dstPort, std::uint32_t vtag) noexcept;
  SpanWriter& writer() noexcept { return w_; }
  [[nodiscard]] bool empty() const noexcept { return w_.size() == kCommonHeaderSize; }
  [[nodiscard]] std::size_t remaining() const noexcept { return w_.remaining(); }
  ByteView finish(bool withChecksum = true) noexcept;

 private:
  SpanWriter w_;
};

/// Fills the checksum field of a complete packet in place.
void stampChecksum(MutableByteView packet) noexcept;

/// Serial number arithmetic (RFC 1982) for TSNs (32 bit) and SSNs (16 bit).
inline bool tsnLess(std::uint32_t a, std::uint32_t b) noexcept { return static_cast<std::int32_t>(a - b) < 0; }
inline bool tsnLessEq(std::uint32_t a, std::uint32_t b) noexcept { return static_cast<std::int32_t>(a - b) <= 0; }
inline bool ssnLess(std::uint16_t a, std::uint16_t b) noexcept {
  return static_cast<std::int16_t>(static_cast<std::uint16_t>(a - b)) < 0;
}

}  // namespace rtcpeer::sctp
