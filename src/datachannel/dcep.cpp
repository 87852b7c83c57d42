#include "datachannel/dcep.hpp"

#include <algorithm>

namespace rtcpeer::dcep {

namespace {
constexpr std::uint8_t kUnorderedBit = 0x80;
constexpr std::uint8_t kReliabilityMask = 0x7f;
constexpr std::size_t kOpenHeaderSize = 12;  // type, channel type, priority, reliability, 2 lengths
}  // namespace

ChannelType channelType(const Reliability& r) noexcept {
  std::uint8_t t = r.maxRetransmits ? 0x01 : r.maxPacketLifeTime ? 0x02 : 0x00;
  if (!r.ordered) t |= kUnorderedBit;
  return static_cast<ChannelType>(t);
}

std::uint32_t reliabilityParameter(const Reliability& r) noexcept {
  if (r.maxRetransmits) return *r.maxRetransmits;
  if (r.maxPacketLifeTime) return *r.maxPacketLifeTime;
  return 0;
}

Result<Reliability> reliabilityFrom(std::uint8_t type, std::uint32_t parameter) {
  Reliability r;
  r.ordered = (type & kUnorderedBit) == 0;
  auto value = static_cast<std::uint16_t>(std::min<std::uint32_t>(parameter, 0xffff));
  switch (type & kReliabilityMask) {
    case 0x00:
      break;  // RFC 8832 §5.1: the parameter is ignored for reliable channels
    case 0x01:
      r.maxRetransmits = value;
      break;
    case 0x02:
      r.maxPacketLifeTime = value;
      break;
    default:
      return fail("DCEP: unknown channel type 0x" + toHex(ByteView(&type, 1)));
  }
  return r;
}

Status encodeOpen(const Open& open, Bytes& out) {
  if (open.label.size() > 0xffff) return fail("DCEP: label longer than 65535 bytes");
  if (open.protocol.size() > 0xffff) return fail("DCEP: protocol longer than 65535 bytes");
  if (open.reliability.maxRetransmits && open.reliability.maxPacketLifeTime)
    return fail("DCEP: maxRetransmits and maxPacketLifeTime are exclusive");
  ByteWriter w(out);
  w.u8(kMessageOpen);
  w.u8(static_cast<std::uint8_t>(channelType(open.reliability)));
  w.u16(open.priority);
  w.u32(reliabilityParameter(open.reliability));
  w.u16(static_cast<std::uint16_t>(open.label.size()));
  w.u16(static_cast<std::uint16_t>(open.protocol.size()));
  w.bytes(open.label);
  w.bytes(open.protocol);
  return {};
}

void encodeAck(Bytes& out) { out.push_back(kMessageAck); }

Result<Message> decode(ByteView payload) {
  ByteReader r(payload);
  std::uint8_t type = r.u8();
  if (!r.ok()) return fail("DCEP: empty message");
  if (type == kMessageAck) return Message{Ack{}};
  if (type != kMessageOpen) return fail("DCEP: unknown message type " + std::to_string(type));
  if (payload.size() < kOpenHeaderSize)
    return fail("DCEP: OPEN of " + std::to_string(payload.size()) + " bytes is shorter than its 12-byte header");
  std::uint8_t channel = r.u8();
  std::uint16_t priority = r.u16();
  std::uint32_t parameter = r.u32();
  std::uint16_t labelLength = r.u16();
  std::uint16_t protocolLength = r.u16();
  ByteView label = r.bytes(labelLength);
  ByteView protocol = r.bytes(protocolLength);
  if (!r.ok())
    return fail("DCEP: OPEN label/protocol lengths (" + std::to_string(labelLength) + "+" +
                std::to_string(protocolLength) + ") exceed the message");
  auto reliability = reliabilityFrom(channel, parameter);
  if (!reliability) return reliability.failure();
  Open open;
  open.reliability = *reliability;
  open.priority = priority;
  open.label.assign(asString(label));
  open.protocol.assign(asString(protocol));
  return Message{std::move(open)};
}

bool isUserData(std::uint32_t ppid) noexcept {
  switch (static_cast<Ppid>(ppid)) {
    case Ppid::String:
    case Ppid::BinaryPartial:
    case Ppid::Binary:
    case Ppid::StringPartial:
    case Ppid::StringEmpty:
    case Ppid::BinaryEmpty:
      return true;
    case Ppid::Control:
      return false;
  }
  return false;
}

bool isText(std::uint32_t ppid) noexcept {
  auto p = static_cast<Ppid>(ppid);
  return p == Ppid::String || p == Ppid::StringPartial || p == Ppid::StringEmpty;
}

bool isEmpty(std::uint32_t ppid) noexcept {
  auto p = static_cast<Ppid>(ppid);
  return p == Ppid::StringEmpty || p == Ppid::BinaryEmpty;
}

Ppid ppidFor(bool text, std::size_t size) noexcept {
  if (size == 0) return text ? Ppid::StringEmpty : Ppid::BinaryEmpty;
  return text ? Ppid::String : Ppid::Binary;
}

}  // namespace rtcpeer::dcep
