// Codecs for every chunk type rtcpeer speaks (RFC 9260 section 3.3, RFC 3758 FORWARD-TSN, RFC 8260 I-DATA and
// I-FORWARD-TSN, RFC 6525 RE-CONFIG). parse() takes a framed RawChunk and returns views into the packet (no
// copies, no allocation); write() appends one complete, padded chunk to a SpanWriter.
#pragma once

#include <cstdint>
#include <span>

#include "sctp/packet/packet.hpp"

namespace rtcpeer::sctp {

/// DATA (RFC 9260 3.3.1) and I-DATA (RFC 8260 2.1) in one shape. For DATA `mid` holds the 16-bit SSN and `fsn`
/// is unused; for I-DATA the first fragment carries the PPID and the others the FSN.
struct DataChunk {
  static constexpr std::uint8_t kEnding = 1, kBeginning = 2, kUnordered = 4, kImmediate = 8;
  static constexpr std::size_t kDataHeader = 16, kIDataHeader = 20;

  std::uint32_t tsn = 0;
  std::uint16_t stream = 0;
  std::uint32_t mid = 0;
  std::uint32_t fsn = 0;
  std::uint32_t ppid = 0;
  std::uint8_t flags = 0;  // kEnding | kBeginning | kUnordered | kImmediate
  ByteView payload;

  [[nodiscard]] bool beginning() const noexcept { return flags & kBeginning; }
  [[nodiscard]] bool ending() const noexcept { return flags & kEnding; }
  [[nodiscard]] bool unordered() const noexcept { return flags & kUnordered; }

  static Result<DataChunk> parse(const RawChunk& c);
  void write(SpanWriter& w, bool idata) const noexcept;
};

/// INIT (3.3.2) and INIT-ACK (3.3.3): the fixed part plus the raw parameter block (see parameters.hpp).
struct InitChunk {
  std::uint32_t initiateTag = 0;
  std::uint32_t arwnd = 0;
  std::uint16_t outStreams = 0;
  std::uint16_t inStreams = 0;
  std::uint32_t initialTsn = 0;
  ByteView params;

  static Result<InitChunk> parse(const RawChunk& c);
  /// Writes the chunk header and fixed part; the caller appends parameters, then calls endChunk(w, start).
  std::size_t writeBegin(SpanWriter& w, bool ack) const noexcept;
};

struct GapBlock {
  std::uint16_t start = 0;  // offsets from the cumulative TSN ack
  std::uint16_t end = 0;
};

/// SACK (3.3.4). Gap blocks and duplicate TSNs stay views into the packet.
struct SackChunk {
  std::uint32_t cumTsnAck = 0;
  std::uint32_t arwnd = 0;
  ByteView gapBytes;
  ByteView dupBytes;

  [[nodiscard]] std::size_t gapCount() const noexcept { return gapBytes.size() / 4; }
  [[nodiscard]] GapBlock gap(std::size_t i) const noexcept {
    return {loadBe16(gapBytes.data() + 4 * i), loadBe16(gapBytes.data() + 4 * i + 2)};
  }
  [[nodiscard]] std::size_t dupCount() const noexcept { return dupBytes.size() / 4; }
  [[nodiscard]] std::uint32_t dup(std::size_t i) const noexcept { return loadBe32(dupBytes.data() + 4 * i); }

  static Result<SackChunk> parse(const RawChunk& c);
  static void write(SpanWriter& w, std::uint32_t cumTsnAck, std::uint32_t arwnd, std::span<const GapBlock> gaps,
                    std::span<const std::uint32_t> dups) noexcept;
};

/// HEARTBEAT / HEARTBEAT-ACK (3.3.5/3.3.6): `info` is the opaque Heartbeat Info parameter value.
struct HeartbeatChunk {
  ByteView info;
  static Result<HeartbeatChunk> parse(const RawChunk& c);
  static void write(SpanWriter& w, bool ack, ByteView info) noexcept;
};

/// ABORT (3.3.7) and ERROR (3.3.10): a list of error causes (iterate with TlvIterator). `tBit`: the
/// verification tag is the sender's own (reflected) tag.
struct CauseChunk {
  static constexpr std::uint8_t kTBit = 1;
  bool tBit = false;
  ByteView causes;
  static Result<CauseChunk> parse(const RawChunk& c);
};

/// SHUTDOWN (3.3.8).
struct ShutdownChunk {
  std::uint32_t cumTsnAck = 0;
  static Result<ShutdownChunk> parse(const RawChunk& c);
  void write(SpanWriter& w) const noexcept;
};

/// Chunks with no body beyond flags: SHUTDOWN-ACK, COOKIE-ACK, SHUTDOWN-COMPLETE (T bit).
void writeEmptyChunk(SpanWriter& w, std::uint8_t type, std::uint8_t flags = 0) noexcept;
/// COOKIE-ECHO (3.3.11): the body is the cookie itself.
void writeCookieEcho(SpanWriter& w, ByteView cookie) noexcept;

/// FORWARD-TSN (RFC 3758 3.2) and I-FORWARD-TSN (RFC 8260 2.3). Entries stay a view.
struct ForwardTsnChunk {
  struct Skip {
    std::uint16_t stream = 0;
    bool unordered = false;  // I-FORWARD-TSN only
    std::uint32_t mid = 0;   // SSN for FORWARD-TSN
  };
  bool idata = false;
  std::uint32_t newCumTsn = 0;
  ByteView entries;

  [[nodiscard]] std::size_t count() const noexcept { return entries.size() / (idata ? 8 : 4); }
  [[nodiscard]] Skip entry(std::size_t i) const noexcept;
  static Result<ForwardTsnChunk> parse(const RawChunk& c);
  static void write(SpanWriter& w, bool idata, std::uint32_t newCumTsn, std::span<const Skip> skips) noexcept;
};

/// RE-CONFIG (RFC 6525 3.1): one or two parameters (see parameters.hpp).
struct ReConfigChunk {
  ByteView params;
  static Result<ReConfigChunk> parse(const RawChunk& c);
};

/// Unknown chunk handling by the two high bits of the type (RFC 9260 3.2): 00 stop and discard the packet,
/// 01 stop, discard and report, 10 skip and continue, 11 skip, continue and report.
struct UnknownChunkAction {
  bool stop;
  bool report;
};
inline UnknownChunkAction unknownChunkAction(std::uint8_t type) noexcept {
  return {(type & 0x80) == 0, (type & 0x40) != 0};
}

}  // namespace rtcpeer::sctp
