#include "sctp/packet/packet.hpp"

#include <cstring>

#include "sctp/packet/crc32c.hpp"

namespace rtcpeer::sctp {
namespace {

std::uint32_t loadLe32(const std::uint8_t* p) noexcept {
  return std::uint32_t{p[0]} | (std::uint32_t{p[1]} << 8) | (std::uint32_t{p[2]} << 16) |
         (std::uint32_t{p[3]} << 24);
}

}  // namespace

Status parseCommonHeader(ByteView packet, CommonHeader& out, bool verifyChecksum) {
  if (packet.size() < kCommonHeaderSize) return fail("sctp: packet shorter than the common header");
  ByteReader r(packet);
  out.srcPort = r.u16();
  out.dstPort = r.u16();
  out.verificationTag = r.u32();
  out.checksum = loadLe32(packet.data() + 8);
  if (verifyChecksum) {
    // The checksum covers the packet with its own field zeroed: extend over the three parts, no copy.
    static constexpr std::uint8_t kZero[4] = {};
    std::uint32_t c = crc32cExtend(0, packet.first(8));
    c = crc32cExtend(c, ByteView(kZero, 4));
    c = crc32cExtend(c, packet.subspan(kCommonHeaderSize));
    if (c != out.checksum) return fail("sctp: bad checksum");
  }
  return {};
}

bool ChunkIterator::next(RawChunk& out) noexcept {
  if (malformed_ || r_.empty()) return false;
  if (r_.remaining() < kChunkHeaderSize) {
    malformed_ = true;
    return false;
  }
  out.type = r_.u8();
  out.flags = r_.u8();
  std::uint16_t len = r_.u16();
  if (len < kChunkHeaderSize || len - kChunkHeaderSize > r_.remaining()) {
    malformed_ = true;
    return false;
  }
  out.value = r_.bytes(len - kChunkHeaderSize);
  std::size_t pad = (4 - len % 4) % 4;
  r_.skip(pad < r_.remaining() ? pad : r_.remaining());  // the last chunk's padding may be missing
  return true;
}

bool TlvIterator::next(Tlv& out) noexcept {
  if (malformed_ || r_.empty()) return false;
  if (r_.remaining() < 4) {
    malformed_ = true;
    return false;
  }
  const std::uint8_t* start = r_.rest().data();
  out.type = r_.u16();
  std::uint16_t len = r_.u16();
  if (len < 4 || len - 4u > r_.remaining()) {
    malformed_ = true;
    return false;
  }
  out.value = r_.bytes(len - 4u);
  lastRaw_ = ByteView(start, len);
  std::size_t pad = (4 - len % 4) % 4;
  r_.skip(pad < r_.remaining() ? pad : r_.remaining());
  return true;
}

std::size_t beginChunk(SpanWriter& w, std::uint8_t type, std::uint8_t flags) noexcept {
  std::size_t at = w.size();
  w.u8(type);
  w.u8(flags);
  w.u16(0);
  return at;
}

void endChunk(SpanWriter& w, std::size_t start) noexcept {
  w.patchU16(start + 2, static_cast<std::uint16_t>(w.size() - start));
  w.zeros((4 - w.size() % 4) % 4);
}

std::size_t beginTlv(SpanWriter& w, std::uint16_t type) noexcept {
  std::size_t at = w.size();
  w.u16(type);
  w.u16(0);
  return at;
}

void endTlv(SpanWriter& w, std::size_t start) noexcept { endChunk(w, start); }

void writeTlv(SpanWriter& w, std::uint16_t type, ByteView value) noexcept {
  std::size_t at = beginTlv(w, type);
  w.bytes(value);
  endTlv(w, at);
}

PacketBuilder::PacketBuilder(MutableByteView buf, std::uint16_t srcPort, std::uint16_t dstPort,
                             std::uint32_t vtag) noexcept
    : w_(buf) {
  w_.u16(srcPort);
  w_.u16(dstPort);
  w_.u32(vtag);
  w_.u32(0);
}

ByteView PacketBuilder::finish(bool withChecksum) noexcept {
  MutableByteView p(w_.data(), w_.size());
  if (withChecksum) stampChecksum(p);
  return p;
}

void stampChecksum(MutableByteView packet) noexcept {
  std::memset(packet.data() + 8, 0, 4);
  std::uint32_t c = crc32c(packet);
  packet[8] = static_cast<std::uint8_t>(c);
  packet[9] = static_cast<std::uint8_t>(c >> 8);
  packet[10] = static_cast<std::uint8_t>(c >> 16);
  packet[11] = static_cast<std::uint8_t>(c >> 24);
}

}  // namespace rtcpeer::sctp
