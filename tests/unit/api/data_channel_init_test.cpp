#include <gtest/gtest.h>

#include "rtcpeer/configuration.hpp"

namespace rtcpeer {
namespace {

// g++ 12 warns about designated initializers that omit members (-Wmissing-field-initializers).
template <class F>
DataChannelInit with(F set) {
  DataChannelInit d;
  set(d);
  return d;
}

DataChannelInit parseOk(const char* json) {
  DataChannelInit d;
  std::string why;
  EXPECT_EQ(DataChannelInit::fromJson(json, d, &why), Error::Ok) << json << ": " << why;
  return d;
}

TEST(DataChannelInit, GodotRules) {
  std::string why;
  EXPECT_EQ((DataChannelInit{}).validate(&why), Error::Ok);
  EXPECT_EQ(with([](DataChannelInit& d) { d.negotiated = true; }).validate(&why), Error::InvalidParameter);
  EXPECT_NE(why.find("negotiated channel needs an id"), std::string::npos);
  EXPECT_EQ(with([](DataChannelInit& d) { d.id = 3; }).validate(&why), Error::InvalidParameter);
  EXPECT_NE(why.find("id is only allowed with negotiated"), std::string::npos);
  EXPECT_EQ(with([](DataChannelInit& d) {
              d.negotiated = true;
              d.id = 65535;
            }).validate(&why),
            Error::InvalidParameter);
  EXPECT_NE(why.find("id 65535 is outside 0..65534"), std::string::npos);
  EXPECT_EQ(with([](DataChannelInit& d) {
              d.negotiated = true;
              d.id = 65534;
            }).validate(),
            Error::Ok);
  EXPECT_EQ(with([](DataChannelInit& d) {
              d.maxPacketLifeTime = 1;
              d.maxRetransmits = 1;
            }).validate(&why),
            Error::InvalidParameter);
  EXPECT_NE(why.find("cannot both be set"), std::string::npos);
  EXPECT_EQ(with([](DataChannelInit& d) { d.maxRetransmits = -1; }).validate(&why), Error::InvalidParameter);
  EXPECT_EQ(with([](DataChannelInit& d) { d.maxPacketLifeTime = 70000; }).validate(&why), Error::InvalidParameter);
  EXPECT_EQ(with([](DataChannelInit& d) { d.protocol = std::string(65536, 'p'); }).validate(&why),
            Error::InvalidParameter);
}

TEST(DataChannelInit, FromJson) {
  auto d = parseOk(R"({"negotiated":true,"id":1,"ordered":false,"maxRetransmits":0,"protocol":"game"})");
  EXPECT_TRUE(d.negotiated);
  EXPECT_EQ(d.id, 1);
  EXPECT_FALSE(d.ordered);
  EXPECT_EQ(d.maxRetransmits, 0);
  EXPECT_FALSE(d.maxPacketLifeTime);
  EXPECT_EQ(d.protocol, "game");

  EXPECT_EQ(parseOk(R"({"maxPacketLifeTime":500})").maxPacketLifeTime, 500);
  // Godot's WebRTCMultiplayerPeer writes "maxPacketLifetime"; webrtc-native ignores it, we accept it.
  EXPECT_EQ(parseOk(R"({"negotiated":true,"id":2,"maxPacketLifetime":1})").maxPacketLifeTime, 1);
  // Godot's JSON numbers are floats.
  EXPECT_EQ(parseOk(R"({"negotiated":true,"id":3.0})").id, 3);
  EXPECT_TRUE(parseOk(R"({"unknown":1,"priority":"high"})").ordered);
}

TEST(DataChannelInit, FromJsonErrors) {
  const std::pair<const char*, const char*> cases[] = {
      {"nope", "invalid JSON"},
      {"1", "expected a JSON object"},
      {R"({"negotiated":1})", "negotiated: expected true or false"},
      {R"({"ordered":"yes"})", "ordered: expected true or false"},
      {R"({"negotiated":true,"id":65535})", "id: expected an integer in 0..65534"},
      {R"({"negotiated":true,"id":-1})", "id: expected an integer in 0..65534"},
      {R"({"negotiated":true,"id":1.5})", "id: expected an integer"},
      {R"({"negotiated":true,"id":"1"})", "id: expected an integer"},
      {R"({"negotiated":true})", "negotiated channel needs an id"},
      {R"({"id":1})", "id is only allowed with negotiated"},
      {R"({"maxRetransmits":-2})", "maxRetransmits: expected an integer in 0..65535"},
      {R"({"maxPacketLifetime":70000})", "maxPacketLifetime: expected an integer in 0..65535"},
      {R"({"maxPacketLifeTime":1,"maxPacketLifetime":1})", "same option"},
      {R"({"maxPacketLifeTime":1,"maxRetransmits":1})", "cannot both be set"},
      {R"({"protocol":5})", "protocol: expected a string"},
  };
  for (const auto& [json, error] : cases) {
    DataChannelInit d;
    d.protocol = "untouched";
    std::string why;
    ASSERT_EQ(DataChannelInit::fromJson(json, d, &why), Error::InvalidParameter) << json;
    EXPECT_NE(why.find(error), std::string::npos) << json << ": " << why;
    EXPECT_EQ(d.protocol, "untouched");
  }
}

}  // namespace
}  // namespace rtcpeer
