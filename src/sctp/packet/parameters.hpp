// Parameters carried by INIT/INIT-ACK (RFC 9260 3.3.2.1, RFC 3758, RFC 5061 supported extensions, RFC 9653 zero
// checksum), RE-CONFIG request/response parameters (RFC 6525 4) and the error causes of ABORT/ERROR (3.3.10).
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>

#include "sctp/packet/packet.hpp"

namespace rtcpeer::sctp {

namespace ParamType {
inline constexpr std::uint16_t kHeartbeatInfo = 1, kIpv4 = 5, kIpv6 = 6, kStateCookie = 7,
                               kUnrecognizedParameter = 8, kCookiePreservative = 9, kHostName = 11,
                               kSupportedAddressTypes = 12, kOutgoingResetRequest = 13,
                               kIncomingResetRequest = 14, kSsnTsnResetRequest = 15, kReconfigResponse = 16,
                               kAddOutgoingStreams = 17, kAddIncomingStreams = 18, kZeroChecksumAcceptable = 0x8001,
                               kSupportedExtensions = 0x8008, kForwardTsnSupported = 0xC000;
}  // namespace ParamType

namespace CauseCode {
inline constexpr std::uint16_t kInvalidStream = 1, kMissingMandatoryParameter = 2, kStaleCookie = 3,
                               kOutOfResource = 4, kUnrecognizedChunkType = 6, kInvalidMandatoryParameter = 7,
                               kUnrecognizedParameters = 8, kNoUserData = 9, kCookieWhileShuttingDown = 10,
                               kRestartWithNewAddresses = 11, kUserInitiatedAbort = 12, kProtocolViolation = 13;
}  // namespace CauseCode

/// Zero checksum EDMID for "DTLS below SCTP" (RFC 9653 section 6).
inline constexpr std::uint32_t kEdmidDtls = 1;

/// What an INIT or INIT-ACK says beyond its fixed part.
struct InitParams {
  ByteView stateCookie;            // INIT-ACK only; empty if absent
  bool forwardTsn = false;         // RFC 3758
  bool idata = false;              // RFC 8260 (I-DATA listed in Supported Extensions)
  bool reconfig = false;           // RFC 6525
  std::uint32_t zeroChecksumEdmid = 0;  // RFC 9653; 0 if not offered
  /// How many unknown parameters asked to be reported (RFC 9260 3.2.1, high bit pattern x1).
  std::size_t unrecognizedToReport = 0;
};

/// Parses an INIT/INIT-ACK parameter block following the RFC 9260 3.2.1 rules for unknown parameters; unknown
/// parameters marked "report" are appended raw to `report` when it is given.
Result<InitParams> parseInitParams(ByteView params, Bytes* report = nullptr);

/// The capabilities rtcpeer announces: Supported Extensions (RE-CONFIG, FORWARD-TSN, I-DATA if enabled),
/// Forward-TSN-Supported, optionally Zero Checksum Acceptable.
void writeCapabilityParams(SpanWriter& w, bool idata, bool zeroChecksum) noexcept;

/// Human-readable summary of ABORT/ERROR causes, e.g. "User-Initiated Abort: bye".
std::string describeCauses(ByteView causes);

/// Writes one error cause with an opaque body.
void writeCause(SpanWriter& w, std::uint16_t code, ByteView info) noexcept;

/// RFC 6525 request/response parameters.
struct OutgoingResetRequest {  // type 13
  std::uint32_t requestSeq = 0, responseSeq = 0, senderLastTsn = 0;
  ByteView streams;  // 16-bit stream numbers; empty = all streams
  [[nodiscard]] std::size_t streamCount() const noexcept { return streams.size() / 2; }
  [[nodiscard]] std::uint16_t stream(std::size_t i) const noexcept { return loadBe16(streams.data() + 2 * i); }
  static Result<OutgoingResetRequest> parse(ByteView value);
  static void write(SpanWriter& w, std::uint32_t reqSeq, std::uint32_t respSeq, std::uint32_t lastTsn,
                    std::span<const std::uint16_t> streams) noexcept;
};

struct IncomingResetRequest {  // type 14
  std::uint32_t requestSeq = 0;
  ByteView streams;
  [[nodiscard]] std::size_t streamCount() const noexcept { return streams.size() / 2; }
  [[nodiscard]] std::uint16_t stream(std::size_t i) const noexcept { return loadBe16(streams.data() + 2 * i); }
  static Result<IncomingResetRequest> parse(ByteView value);
  static void write(SpanWriter& w, std::uint32_t reqSeq, std::span<const std::uint16_t> streams) noexcept;
};

struct ReconfigResponse {  // type 16
  enum Result : std::uint32_t { kSuccessNothing = 0, kSuccessPerformed = 1, kDenied = 2, kErrorWrongSsn = 3,
                                kErrorInProgress = 4, kErrorBadSeq = 5, kInProgress = 6 };
  std::uint32_t responseSeq = 0;
  std::uint32_t result = 0;
  std::optional<std::uint32_t> senderNextTsn, receiverNextTsn;
  static ::rtcpeer::Result<ReconfigResponse> parse(ByteView value);
  static void write(SpanWriter& w, std::uint32_t respSeq, std::uint32_t result) noexcept;
};

/// SSN/TSN Reset (15), Add Outgoing/Incoming Streams (17/18): a request sequence and a count.
struct SimpleReconfigRequest {
  std::uint32_t requestSeq = 0;
  std::uint16_t newStreams = 0;
  static Result<SimpleReconfigRequest> parse(ByteView value);
};

}  // namespace rtcpeer::sctp
