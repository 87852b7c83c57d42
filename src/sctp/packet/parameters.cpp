#include "sctp/packet/parameters.hpp"

#include <cstring>

#include "sctp/packet/chunks.hpp"

namespace rtcpeer::sctp {

Result<InitParams> parseInitParams(ByteView params, Bytes* report) {
  InitParams p;
  TlvIterator it(params);
  Tlv t;
  while (it.next(t)) {
    switch (t.type) {
      case ParamType::kStateCookie:
        p.stateCookie = t.value;
        break;
      case ParamType::kForwardTsnSupported:
        p.forwardTsn = true;
        break;
      case ParamType::kSupportedExtensions:
        for (auto type : t.value) {
          if (type == ChunkType::kIData) p.idata = true;
          if (type == ChunkType::kReConfig) p.reconfig = true;
          if (type == ChunkType::kForwardTsn) p.forwardTsn = true;
        }
        break;
      case ParamType::kZeroChecksumAcceptable: {
        ByteReader r(t.value);
        std::uint32_t edmid = r.u32();
        if (r.ok()) p.zeroChecksumEdmid = edmid;
        break;
      }
      case ParamType::kIpv4:
      case ParamType::kIpv6:
      case ParamType::kCookiePreservative:
      case ParamType::kHostName:
      case ParamType::kSupportedAddressTypes:
        break;  // meaningless over DTLS (RFC 8261 5): accepted and ignored
      default: {
        // RFC 9260 3.2.1: the two high bits say whether to stop processing and whether to report.
        bool skip = (t.type & 0x8000) != 0;
        bool reportIt = (t.type & 0x4000) != 0;
        if (reportIt) {
          ++p.unrecognizedToReport;
          if (report) {
            std::size_t at = report->size();
            report->resize(at + 4 + ((it.lastRaw().size() + 3) & ~std::size_t{3}), 0);
            storeBe16(report->data() + at, ParamType::kUnrecognizedParameter);
            storeBe16(report->data() + at + 2, static_cast<std::uint16_t>(4 + it.lastRaw().size()));
            std::memcpy(report->data() + at + 4, it.lastRaw().data(), it.lastRaw().size());
          }
        }
        if (!skip) return p;
        break;
      }
    }
  }
  if (it.malformed()) return fail("sctp: malformed INIT parameters");
  return p;
}

void writeCapabilityParams(SpanWriter& w, bool idata, bool zeroChecksum) noexcept {
  std::size_t at = beginTlv(w, ParamType::kSupportedExtensions);
  w.u8(ChunkType::kReConfig);
  w.u8(ChunkType::kForwardTsn);
  if (idata) {
    w.u8(ChunkType::kIData);
    w.u8(ChunkType::kIForwardTsn);
  }
  endTlv(w, at);
  writeTlv(w, ParamType::kForwardTsnSupported, {});
  if (zeroChecksum) {
    std::size_t z = beginTlv(w, ParamType::kZeroChecksumAcceptable);
    w.u32(kEdmidDtls);
    endTlv(w, z);
  }
}

namespace {
const char* causeName(std::uint16_t code) {
  switch (code) {
    case CauseCode::kInvalidStream: return "Invalid Stream Identifier";
    case CauseCode::kMissingMandatoryParameter: return "Missing Mandatory Parameter";
    case CauseCode::kStaleCookie: return "Stale Cookie Error";
    case CauseCode::kOutOfResource: return "Out of Resource";
    case CauseCode::kUnrecognizedChunkType: return "Unrecognized Chunk Type";
    case CauseCode::kInvalidMandatoryParameter: return "Invalid Mandatory Parameter";
    case CauseCode::kUnrecognizedParameters: return "Unrecognized Parameters";
    case CauseCode::kNoUserData: return "No User Data";
    case CauseCode::kCookieWhileShuttingDown: return "Cookie Received While Shutting Down";
    case CauseCode::kRestartWithNewAddresses: return "Restart of an Association with New Addresses";
    case CauseCode::kUserInitiatedAbort: return "User-Initiated Abort";
    case CauseCode::kProtocolViolation: return "Protocol Violation";
    default: return "Unknown cause";
  }
}

bool printable(ByteView b) {
  for (auto c : b)
    if (c < 0x20 || c > 0x7E) return false;
  return !b.empty();
}
}  // namespace

std::string describeCauses(ByteView causes) {
  std::string out;
  TlvIterator it(causes);
  Tlv t;
  while (it.next(t)) {
    if (!out.empty()) out += "; ";
    out += causeName(t.type);
    if ((t.type == CauseCode::kUserInitiatedAbort || t.type == CauseCode::kProtocolViolation) &&
        printable(t.value)) {
      out += ": ";
      out += asString(t.value);
    }
  }
  if (out.empty()) out = "no cause given";
  return out;
}

void writeCause(SpanWriter& w, std::uint16_t code, ByteView info) noexcept { writeTlv(w, code, info); }

Result<OutgoingResetRequest> OutgoingResetRequest::parse(ByteView value) {
  ByteReader r(value);
  OutgoingResetRequest o;
  o.requestSeq = r.u32();
  o.responseSeq = r.u32();
  o.senderLastTsn = r.u32();
  if (!r.ok() || r.remaining() % 2) return fail("sctp: malformed Outgoing SSN Reset Request");
  o.streams = r.rest();
  return o;
}

void OutgoingResetRequest::write(SpanWriter& w, std::uint32_t reqSeq, std::uint32_t respSeq, std::uint32_t lastTsn,
                                 std::span<const std::uint16_t> streams) noexcept {
  std::size_t at = beginTlv(w, ParamType::kOutgoingResetRequest);
  w.u32(reqSeq);
  w.u32(respSeq);
  w.u32(lastTsn);
  for (auto s : streams) w.u16(s);
  endTlv(w, at);
}

void IncomingResetRequest::write(SpanWriter& w, std::uint32_t reqSeq, std::span<const std::uint16_t> streams) noexcept {
  std::size_t at = beginTlv(w, ParamType::kIncomingResetRequest);
  w.u32(reqSeq);
  for (auto s : streams) w.u16(s);
  endTlv(w, at);
}

Result<IncomingResetRequest> IncomingResetRequest::parse(ByteView value) {
  ByteReader r(value);
  IncomingResetRequest o;
  o.requestSeq = r.u32();
  if (!r.ok() || r.remaining() % 2) return fail("sctp: malformed Incoming SSN Reset Request");
  o.streams = r.rest();
  return o;
}

::rtcpeer::Result<ReconfigResponse> ReconfigResponse::parse(ByteView value) {
  ByteReader r(value);
  ReconfigResponse o;
  o.responseSeq = r.u32();
  o.result = r.u32();
  if (!r.ok()) return fail("sctp: malformed Re-configuration Response");
  if (r.remaining() >= 8) {
    o.senderNextTsn = r.u32();
    o.receiverNextTsn = r.u32();
  }
  return o;
}

void ReconfigResponse::write(SpanWriter& w, std::uint32_t respSeq, std::uint32_t result) noexcept {
  std::size_t at = beginTlv(w, ParamType::kReconfigResponse);
  w.u32(respSeq);
  w.u32(result);
  endTlv(w, at);
}

Result<SimpleReconfigRequest> SimpleReconfigRequest::parse(ByteView value) {
  ByteReader r(value);
  SimpleReconfigRequest o;
  o.requestSeq = r.u32();
  if (r.remaining() >= 2) o.newStreams = r.u16();
  if (!r.ok()) return fail("sctp: malformed re-configuration request");
  return o;
}

}  // namespace rtcpeer::sctp
