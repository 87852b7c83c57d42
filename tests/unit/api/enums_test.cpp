// The public enums carry Godot's numeric values, so code and bindings written against Godot port directly.
#include <gtest/gtest.h>

#include <type_traits>

#include "rtcpeer/rtcpeer.hpp"

namespace rtcpeer {
namespace {

template <class E>
constexpr int v(E e) {
  return static_cast<int>(e);
}

static_assert(v(Error::Ok) == 0 && v(Error::Failed) == 1 && v(Error::Unavailable) == 2 && v(Error::Unconfigured) == 3 &&
              v(Error::Unauthorized) == 4 && v(Error::OutOfMemory) == 6 && v(Error::AlreadyInUse) == 22 &&
              v(Error::InvalidParameter) == 31 && v(Error::Bug) == 47);
static_assert(v(WriteMode::Text) == 0 && v(WriteMode::Binary) == 1);
static_assert(v(ReadyState::Connecting) == 0 && v(ReadyState::Open) == 1 && v(ReadyState::Closing) == 2 &&
              v(ReadyState::Closed) == 3);
static_assert(v(ConnectionState::New) == 0 && v(ConnectionState::Connecting) == 1 &&
              v(ConnectionState::Connected) == 2 && v(ConnectionState::Disconnected) == 3 &&
              v(ConnectionState::Failed) == 4 && v(ConnectionState::Closed) == 5);
static_assert(v(GatheringState::New) == 0 && v(GatheringState::Gathering) == 1 && v(GatheringState::Complete) == 2);
static_assert(v(SignalingState::Stable) == 0 && v(SignalingState::HaveLocalOffer) == 1 &&
              v(SignalingState::HaveRemoteOffer) == 2 && v(SignalingState::HaveLocalPranswer) == 3 &&
              v(SignalingState::HaveRemotePranswer) == 4 && v(SignalingState::Closed) == 5);

// The shape of the API: default-constructible, non-copyable PeerConnection; DataChannel only through the library.
static_assert(std::is_default_constructible_v<PeerConnection>);
static_assert(!std::is_copy_constructible_v<PeerConnection> && !std::is_copy_assignable_v<PeerConnection>);
static_assert(!std::is_default_constructible_v<DataChannel>);
static_assert(!std::is_copy_constructible_v<DataChannel>);
static_assert(
    std::is_same_v<decltype(std::declval<PeerConnection&>().createDataChannel("x")), std::shared_ptr<DataChannel>>);
static_assert(std::is_same_v<
              decltype(std::declval<DataChannel&>().getPacket(std::declval<std::vector<std::uint8_t>&>())), Error>);

TEST(PublicApi, ErrorNames) {
  EXPECT_STREQ(errorName(Error::Ok), "Ok");
  EXPECT_STREQ(errorName(Error::InvalidParameter), "InvalidParameter");
  EXPECT_STREQ(errorName(Error::Bug), "Bug");
  EXPECT_STREQ(errorName(static_cast<Error>(5)), "Unknown");
}

TEST(PublicApi, Defaults) {
  DataChannelInit init;
  EXPECT_FALSE(init.negotiated);
  EXPECT_TRUE(init.ordered);
  EXPECT_FALSE(init.id || init.maxPacketLifeTime || init.maxRetransmits);
  Configuration config;
  EXPECT_EQ(config.validate(), Error::Ok);
  EXPECT_EQ(DataChannel::kUnset, 65535);
}

}  // namespace
}  // namespace rtcpeer
