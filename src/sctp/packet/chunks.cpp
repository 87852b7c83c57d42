#include "sctp/packet/chunks.hpp"

namespace rtcpeer::sctp {

Result<DataChunk> DataChunk::parse(const RawChunk& c) {
  bool idata = c.type == ChunkType::kIData;
  ByteReader r(c.value);
  DataChunk d;
  d.flags = c.flags & 0x0F;
  d.tsn = r.u32();
  d.stream = r.u16();
  if (idata) {
    r.skip(2);  // reserved
    d.mid = r.u32();
    std::uint32_t v = r.u32();
    if (d.beginning()) d.ppid = v;
    else d.fsn = v;
  } else {
    d.mid = r.u16();
    d.ppid = r.u32();
  }
  if (!r.ok()) return fail("sctp: DATA chunk too short");
  d.payload = r.rest();
  // RFC 9260 6.2: a DATA chunk with no user data is a protocol violation ("No User Data" cause).
  if (d.payload.empty()) return fail("sctp: DATA chunk without user data", 9);
  return d;
}

void DataChunk::write(SpanWriter& w, bool idata) const noexcept {
  std::size_t at = beginChunk(w, idata ? ChunkType::kIData : ChunkType::kData, flags);
  w.u32(tsn);
  w.u16(stream);
  if (idata) {
    w.u16(0);
    w.u32(mid);
    w.u32(beginning() ? ppid : fsn);
  } else {
    w.u16(static_cast<std::uint16_t>(mid));
    w.u32(ppid);
  }
  w.bytes(payload);
  endChunk(w, at);
}

Result<InitChunk> InitChunk::parse(const RawChunk& c) {
  ByteReader r(c.value);
  InitChunk i;
  i.initiateTag = r.u32();
  i.arwnd = r.u32();
  i.outStreams = r.u16();
  i.inStreams = r.u16();
  i.initialTsn = r.u32();
  if (!r.ok()) return fail("sctp: INIT chunk too short");
  // RFC 9260 3.3.2: a zero tag, zero streams or a window below 1500 bytes are invalid.
  if (i.initiateTag == 0) return fail("sctp: INIT with zero initiate tag");
  if (i.outStreams == 0 || i.inStreams == 0) return fail("sctp: INIT with zero streams");
  if (i.arwnd < 1500) return fail("sctp: INIT with a_rwnd below 1500");
  i.params = r.rest();
  return i;
}

std::size_t InitChunk::writeBegin(SpanWriter& w, bool ack) const noexcept {
  std::size_t at = beginChunk(w, ack ? ChunkType::kInitAck : ChunkType::kInit, 0);
  w.u32(initiateTag);
  w.u32(arwnd);
  w.u16(outStreams);
  w.u16(inStreams);
  w.u32(initialTsn);
  return at;
}

Result<SackChunk> SackChunk::parse(const RawChunk& c) {
  ByteReader r(c.value);
  SackChunk s;
  s.cumTsnAck = r.u32();
  s.arwnd = r.u32();
  std::uint16_t gaps = r.u16();
  std::uint16_t dups = r.u16();
  s.gapBytes = r.bytes(std::size_t{gaps} * 4);
  s.dupBytes = r.bytes(std::size_t{dups} * 4);
  if (!r.ok()) return fail("sctp: SACK chunk truncated");
  for (std::size_t i = 0; i < s.gapCount(); ++i) {
    GapBlock g = s.gap(i);
    if (g.start == 0 || g.end < g.start) return fail("sctp: SACK with an invalid gap block");
  }
  return s;
}

void SackChunk::write(SpanWriter& w, std::uint32_t cumTsnAck, std::uint32_t arwnd, std::span<const GapBlock> gaps,
                      std::span<const std::uint32_t> dups) noexcept {
  std::size_t at = beginChunk(w, ChunkType::kSack, 0);
  w.u32(cumTsnAck);
  w.u32(arwnd);
  w.u16(static_cast<std::uint16_t>(gaps.size()));
  w.u16(static_cast<std::uint16_t>(dups.size()));
  for (const auto& g : gaps) {
    w.u16(g.start);
    w.u16(g.end);
  }
  for (auto d : dups) w.u32(d);
  endChunk(w, at);
}

Result<HeartbeatChunk> HeartbeatChunk::parse(const RawChunk& c) {
  TlvIterator it(c.value);
  Tlv t;
  if (!it.next(t) || t.type != 1) return fail("sctp: HEARTBEAT without Heartbeat Info");
  return HeartbeatChunk{t.value};
}

void HeartbeatChunk::write(SpanWriter& w, bool ack, ByteView info) noexcept {
  std::size_t at = beginChunk(w, ack ? ChunkType::kHeartbeatAck : ChunkType::kHeartbeat, 0);
  writeTlv(w, 1, info);
  endChunk(w, at);
}

Result<CauseChunk> CauseChunk::parse(const RawChunk& c) {
  return CauseChunk{(c.flags & kTBit) != 0, c.value};
}

Result<ShutdownChunk> ShutdownChunk::parse(const RawChunk& c) {
  ByteReader r(c.value);
  ShutdownChunk s{r.u32()};
  if (!r.ok()) return fail("sctp: SHUTDOWN chunk too short");
  return s;
}

void ShutdownChunk::write(SpanWriter& w) const noexcept {
  std::size_t at = beginChunk(w, ChunkType::kShutdown, 0);
  w.u32(cumTsnAck);
  endChunk(w, at);
}

void writeEmptyChunk(SpanWriter& w, std::uint8_t type, std::uint8_t flags) noexcept {
  endChunk(w, beginChunk(w, type, flags));
}

void writeCookieEcho(SpanWriter& w, ByteView cookie) noexcept {
  std::size_t at = beginChunk(w, ChunkType::kCookieEcho, 0);
  w.bytes(cookie);
  endChunk(w, at);
}

ForwardTsnChunk::Skip ForwardTsnChunk::entry(std::size_t i) const noexcept {
  const std::uint8_t* p = entries.data() + i * (idata ? 8 : 4);
  if (!idata) return {loadBe16(p), false, loadBe16(p + 2)};
  return {loadBe16(p), (p[3] & 1) != 0, loadBe32(p + 4)};
}

Result<ForwardTsnChunk> ForwardTsnChunk::parse(const RawChunk& c) {
  ByteReader r(c.value);
  ForwardTsnChunk f;
  f.idata = c.type == ChunkType::kIForwardTsn;
  f.newCumTsn = r.u32();
  if (!r.ok()) return fail("sctp: FORWARD-TSN chunk too short");
  f.entries = r.rest();
  if (f.entries.size() % (f.idata ? 8 : 4) != 0) return fail("sctp: FORWARD-TSN entries truncated");
  return f;
}

void ForwardTsnChunk::write(SpanWriter& w, bool idata, std::uint32_t newCumTsn, std::span<const Skip> skips) noexcept {
  std::size_t at = beginChunk(w, idata ? ChunkType::kIForwardTsn : ChunkType::kForwardTsn, 0);
  w.u32(newCumTsn);
  for (const auto& s : skips) {
    w.u16(s.stream);
    if (idata) {
      w.u16(s.unordered ? 1 : 0);
      w.u32(s.mid);
    } else {
      w.u16(static_cast<std::uint16_t>(s.mid));
    }
  }
  endChunk(w, at);
}

Result<ReConfigChunk> ReConfigChunk::parse(const RawChunk& c) {
  if (c.value.size() < 4) return fail("sctp: RE-CONFIG without parameters");
  return ReConfigChunk{c.value};
}

}  // namespace rtcpeer::sctp
