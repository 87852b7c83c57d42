#include "datachannel/dcep.hpp"

#include <gtest/gtest.h>

namespace rtcpeer::dcep {
namespace {

TEST(Dcep, OpenWireFormat) {
  Open open;
  open.reliability.ordered = false;
  open.reliability.maxRetransmits = 3;
  open.priority = kPriorityHigh;
  open.label = "chat";
  open.protocol = "p";
  Bytes out;
  ASSERT_TRUE(encodeOpen(open, out).ok());
  // RFC 8832 §5.1: type, channel type, priority, reliability parameter, label length, protocol length.
  const Bytes expected = {0x03, 0x81, 0x02, 0x00, 0x00, 0x00, 0x00, 0x03, 0x00,
                          0x04, 0x00, 0x01, 'c',  'h',  'a',  't',  'p'};
  EXPECT_EQ(out, expected);
  auto decoded = decode(out);
  ASSERT_TRUE(decoded.ok()) << decoded.reason();
  const auto& o = std::get<Open>(*decoded);
  EXPECT_EQ(o.reliability, open.reliability);
  EXPECT_EQ(o.priority, kPriorityHigh);
  EXPECT_EQ(o.label, "chat");
  EXPECT_EQ(o.protocol, "p");
}

TEST(Dcep, Ack) {
  Bytes out;
  encodeAck(out);
  EXPECT_EQ(out, Bytes{0x02});
  auto decoded = decode(out);
  ASSERT_TRUE(decoded.ok());
  EXPECT_TRUE(std::holds_alternative<Ack>(*decoded));
}

TEST(Dcep, ChannelTypesFromReliability) {
  struct Case {
    Reliability r;
    ChannelType type;
    std::uint32_t parameter;
  };
  const Case cases[] = {
      {{true, {}, {}}, ChannelType::Reliable, 0},
      {{false, {}, {}}, ChannelType::ReliableUnordered, 0},
      {{true, 5, {}}, ChannelType::PartialReliableRexmit, 5},
      {{false, 0, {}}, ChannelType::PartialReliableRexmitUnordered, 0},
      {{true, {}, 1500}, ChannelType::PartialReliableTimed, 1500},
      {{false, {}, 1}, ChannelType::PartialReliableTimedUnordered, 1},
  };
  for (const auto& c : cases) {
    EXPECT_EQ(channelType(c.r), c.type);
    EXPECT_EQ(reliabilityParameter(c.r), c.parameter);
    auto back = reliabilityFrom(static_cast<std::uint8_t>(c.type), c.parameter);
    ASSERT_TRUE(back.ok());
    EXPECT_EQ(*back, c.r);
  }
}

TEST(Dcep, ReliableIgnoresParameterAndLargeParametersClamp) {
  auto r = reliabilityFrom(0x00, 77);
  ASSERT_TRUE(r.ok());
  EXPECT_FALSE(r->maxRetransmits || r->maxPacketLifeTime);
  auto big = reliabilityFrom(0x01, 1'000'000);
  ASSERT_TRUE(big.ok());
  EXPECT_EQ(big->maxRetransmits, 65535);
}

TEST(Dcep, MalformedMessages) {
  struct Case {
    Bytes bytes;
    const char* error;
  };
  const Case cases[] = {
      {{}, "empty message"},
      {{0x07}, "unknown message type 7"},
      {{0x03, 0x00, 0x01}, "shorter than its 12-byte header"},
      {{0x03, 0x00, 0x01, 0x00, 0, 0, 0, 0, 0x00, 0x05, 0x00, 0x00, 'a'}, "exceed the message"},
      {{0x03, 0x00, 0x01, 0x00, 0, 0, 0, 0, 0x00, 0x00, 0xff, 0xff}, "exceed the message"},
      {{0x03, 0x03, 0x01, 0x00, 0, 0, 0, 0, 0x00, 0x00, 0x00, 0x00}, "unknown channel type 0x03"},
  };
  for (const auto& c : cases) {
    auto r = decode(c.bytes);
    ASSERT_FALSE(r.ok()) << c.error;
    EXPECT_NE(r.reason().find(c.error), std::string::npos) << r.reason();
  }
}

TEST(Dcep, OpenWithMaximalLabelAndTrailingBytes) {
  Open open;
  open.label.assign(65535, 'x');
  Bytes out;
  ASSERT_TRUE(encodeOpen(open, out).ok());
  out.push_back(0xee);  // ignored
  auto decoded = decode(out);
  ASSERT_TRUE(decoded.ok());
  EXPECT_EQ(std::get<Open>(*decoded).label.size(), 65535u);

  open.label.push_back('x');
  Bytes tooLong;
  EXPECT_FALSE(encodeOpen(open, tooLong).ok());
}

TEST(Dcep, Ppids) {
  EXPECT_EQ(ppidFor(true, 3), Ppid::String);
  EXPECT_EQ(ppidFor(false, 3), Ppid::Binary);
  EXPECT_EQ(ppidFor(true, 0), Ppid::StringEmpty);
  EXPECT_EQ(ppidFor(false, 0), Ppid::BinaryEmpty);
  for (std::uint32_t p : {51u, 52u, 53u, 54u, 56u, 57u}) EXPECT_TRUE(isUserData(p)) << p;
  for (std::uint32_t p : {0u, 50u, 55u, 58u}) EXPECT_FALSE(isUserData(p)) << p;
  EXPECT_TRUE(isText(51) && isText(54) && isText(56));
  EXPECT_FALSE(isText(53) || isText(57) || isText(52));
  EXPECT_TRUE(isEmpty(56) && isEmpty(57));
  EXPECT_FALSE(isEmpty(51));
}

}  // namespace
}  // namespace rtcpeer::dcep
