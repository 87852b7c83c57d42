// Fuzz target: arbitrary bytes as an SCTP packet; every chunk, parameter and cause codec must reject or accept
// them without crashing, overreading or allocating without bound.
#include <cstddef>
#include <cstdint>

#include "sctp/packet/chunks.hpp"
#include "sctp/packet/parameters.hpp"

using namespace rtcpeer;
using namespace rtcpeer::sctp;

namespace {

void walkTlvs(ByteView data) {
  TlvIterator it(data);
  Tlv t;
  while (it.next(t)) {
    switch (t.type) {
      case ParamType::kOutgoingResetRequest:
        if (auto r = OutgoingResetRequest::parse(t.value))
          for (std::size_t i = 0; i < r->streamCount(); ++i) (void)r->stream(i);
        break;
      case ParamType::kIncomingResetRequest:
        (void)IncomingResetRequest::parse(t.value);
        break;
      case ParamType::kReconfigResponse:
        (void)ReconfigResponse::parse(t.value);
        break;
      case ParamType::kSsnTsnResetRequest:
      case ParamType::kAddOutgoingStreams:
      case ParamType::kAddIncomingStreams:
        (void)SimpleReconfigRequest::parse(t.value);
        break;
      default:
        break;
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  ByteView packet(data, size);
  CommonHeader h;
  if (!parseCommonHeader(packet, h, false)) return 0;
  (void)parseCommonHeader(packet, h, true);
  ChunkIterator it(packet);
  RawChunk c;
  while (it.next(c)) {
    switch (c.type) {
      case ChunkType::kData:
      case ChunkType::kIData:
        (void)DataChunk::parse(c);
        break;
      case ChunkType::kInit:
      case ChunkType::kInitAck:
        if (auto i = InitChunk::parse(c)) {
          Bytes report;
          (void)parseInitParams(i->params, &report);
        }
        break;
      case ChunkType::kSack:
        if (auto s = SackChunk::parse(c)) {
          for (std::size_t i = 0; i < s->gapCount(); ++i) (void)s->gap(i);
          for (std::size_t i = 0; i < s->dupCount(); ++i) (void)s->dup(i);
        }
        break;
      case ChunkType::kHeartbeat:
      case ChunkType::kHeartbeatAck:
        (void)HeartbeatChunk::parse(c);
        break;
      case ChunkType::kAbort:
      case ChunkType::kError:
        if (auto a = CauseChunk::parse(c)) (void)describeCauses(a->causes);
        break;
      case ChunkType::kShutdown:
        (void)ShutdownChunk::parse(c);
        break;
      case ChunkType::kForwardTsn:
      case ChunkType::kIForwardTsn:
        if (auto f = ForwardTsnChunk::parse(c))
          for (std::size_t i = 0; i < f->count(); ++i) (void)f->entry(i);
        break;
      case ChunkType::kReConfig:
        if (auto r = ReConfigChunk::parse(c)) walkTlvs(r->params);
        break;
      default:
        (void)unknownChunkAction(c.type);
    }
  }
  return 0;
}
