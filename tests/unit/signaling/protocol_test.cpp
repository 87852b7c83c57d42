#include "signaling/protocol.hpp"

#include <gtest/gtest.h>

namespace rtcpeer::signaling {
namespace {

TEST(SignalingProtocol, ParsesEveryTypeAndGodotFloats) {
  for (int t = 0; t <= 7; ++t) {
    auto m = parseMessage("{\"type\":" + std::to_string(t) + ",\"id\":5,\"data\":\"x\"}");
    ASSERT_TRUE(m.ok()) << m.reason();
    EXPECT_EQ(static_cast<int>(m->type), t);
    EXPECT_EQ(m->id, 5);
    EXPECT_EQ(m->data, "x");
  }
  // Godot's JSON.stringify writes floats: {"data":"","id":1.0,"type":4.0}.
  auto g = parseMessage(R"({"data":"sdp","id":1.0,"type":4.0})");
  ASSERT_TRUE(g.ok()) << g.reason();
  EXPECT_EQ(g->type, MessageType::Offer);
  EXPECT_EQ(g->id, 1);
  auto noData = parseMessage(R"({"type":0,"id":0,"extra":[]})");
  EXPECT_FALSE(noData.ok()) << "nested values are refused even under unknown keys";
  auto extra = parseMessage(R"( {"type":0,"id":0,"extra":true,"more":null} )");
  ASSERT_TRUE(extra.ok()) << extra.reason();
  EXPECT_EQ(extra->data, "");
  EXPECT_TRUE(parseMessage(R"({"type":0,"id":2147483647})").ok());
}

TEST(SignalingProtocol, RefusesMalformedFramesWithAReason) {
  const char* bad[] = {
      "",
      "not json",
      "[1,2,3]",
      "5",
      "\"text\"",
      "{}",
      R"({"type":0})",
      R"({"id":0})",
      R"({"type":"0","id":0})",
      R"({"type":0,"id":"1"})",
      R"({"type":0,"id":0,"data":5})",
      R"({"type":0,"id":0,"data":null})",
      R"({"type":0,"id":-1})",
      R"({"type":0,"id":1.5})",
      R"({"type":0,"id":2147483648})",
      R"({"type":0,"id":1e300})",
      R"({"type":0,"id":0,"data":{"a":1}})",
      R"({"type":0,"id":0} trailing)",
      R"({"type":0,"id":0)",
      R"({"type":8,"id":0})",
  };
  for (const char* text : bad) {
    auto m = parseMessage(text);
    EXPECT_FALSE(m.ok()) << text;
    if (!m.ok()) {
      EXPECT_FALSE(m.reason().empty()) << text;
    }
  }
  EXPECT_EQ(parseMessage(R"({"type":8,"id":0})").reason(), "Invalid command");
  EXPECT_EQ(parseMessage("nope").reason(), "Invalid message format: not valid JSON");
}

TEST(SignalingProtocol, DeepNestingIsRefusedWithoutRecursion) {
  const std::string deep = "{\"a\":" + std::string(100000, '[') + std::string(100000, ']') + "}";
  EXPECT_FALSE(parseMessage(deep).ok());
}

TEST(SignalingProtocol, SerializeRoundTripsAnyData) {
  const std::string data = "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\n\"quoted\" \\ \x01 é";
  const Message m{MessageType::Answer, 123456, data};
  const std::string text = serialize(m);
  EXPECT_EQ(text.rfind("{\"type\":5,\"id\":123456,\"data\":", 0), 0u) << text;
  auto back = parseMessage(text);
  ASSERT_TRUE(back.ok()) << back.reason();
  EXPECT_EQ(back->data, data);
  EXPECT_EQ(back->id, 123456);
}

TEST(SignalingProtocol, CandidatePayloadFollowsGodot) {
  const std::string c = "candidate:1 1 UDP 2122252543 127.0.0.1 5000 typ host";
  EXPECT_EQ(encodeCandidate("0", 0, c), "\n0\n0\n" + c);
  auto d = decodeCandidate("\n\ndata\n\n1\n" + c + "\n");  // empty parts are skipped
  ASSERT_TRUE(d.ok()) << d.reason();
  EXPECT_EQ(d->mid, "data");
  EXPECT_EQ(d->index, 1);
  EXPECT_EQ(d->candidate, c);
  EXPECT_FALSE(decodeCandidate("\n0\n" + c).ok());
  EXPECT_FALSE(decodeCandidate("\n0\nx\n" + c).ok());
  EXPECT_FALSE(decodeCandidate("\n0\n1\n" + c + "\nextra").ok());
  EXPECT_FALSE(decodeCandidate("").ok());
}

}  // namespace
}  // namespace rtcpeer::signaling
