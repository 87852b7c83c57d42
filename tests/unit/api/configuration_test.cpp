#include "rtcpeer/configuration.hpp"

#include <gtest/gtest.h>

namespace rtcpeer {
namespace {

TEST(IceServerUrl, ValidForms) {
  struct Case {
    const char* url;
    IceServerUrl::Scheme scheme;
    const char* host;
    int port;
    IceServerUrl::Transport transport;
  };
  using S = IceServerUrl::Scheme;
  using T = IceServerUrl::Transport;
  const Case cases[] = {
      {"stun:stun.l.google.com:19302", S::Stun, "stun.l.google.com", 19302, T::Udp},
      {"stun:example.org", S::Stun, "example.org", 3478, T::Udp},
      {"STUN:Example.org", S::Stun, "Example.org", 3478, T::Udp},
      {"turn:turn.example.org", S::Turn, "turn.example.org", 3478, T::Udp},
      {"turn:turn.example.org:443?transport=tcp", S::Turn, "turn.example.org", 443, T::Tcp},
      {"turn:192.0.2.1?transport=udp", S::Turn, "192.0.2.1", 3478, T::Udp},
      {"turns:turn.example.org", S::Turns, "turn.example.org", 5349, T::Tcp},
      {"turns:turn.example.org:5350?transport=tcp", S::Turns, "turn.example.org", 5350, T::Tcp},
      {"stun:[2001:db8::1]:3479", S::Stun, "2001:db8::1", 3479, T::Udp},
      {"turn:[::1]", S::Turn, "::1", 3478, T::Udp},
  };
  for (const auto& c : cases) {
    IceServerUrl u;
    std::string why;
    ASSERT_EQ(IceServerUrl::parse(c.url, u, &why), Error::Ok) << c.url << ": " << why;
    EXPECT_EQ(u.scheme, c.scheme) << c.url;
    EXPECT_EQ(u.host, c.host) << c.url;
    EXPECT_EQ(u.port, c.port) << c.url;
    EXPECT_EQ(u.transport, c.transport) << c.url;
  }
}

TEST(IceServerUrl, InvalidFormsHaveClearErrors) {
  const std::pair<const char*, const char*> cases[] = {
      {"stun.example.org", "missing scheme"},
      {"http://example.org", "unsupported scheme 'http'"},
      {"stun://example.org", "must not contain '//'"},
      {"stun:", "missing host"},
      {"stun::3478", "missing host"},
      {"stun:example.org:", "empty port"},
      {"stun:example.org:0", "invalid port '0'"},
      {"stun:example.org:65536", "invalid port '65536'"},
      {"stun:example.org:12ab", "invalid port"},
      {"stun:exa mple.org", "invalid character in host"},
      {"stun:2001:db8::1", "IPv6 hosts must be in brackets"},
      {"stun:[2001:db8::1", "unterminated '['"},
      {"stun:[not-ipv6]:1", "invalid IPv6 address"},
      {"stun:[::1]x", "unexpected characters after ']'"},
      {"stun:example.org?transport=udp", "stun: URLs take no query"},
      {"turn:example.org?transport=sctp", "invalid transport 'sctp'"},
      {"turn:example.org?foo=bar", "unknown query"},
      {"turns:example.org?transport=udp", "transport=udp is not possible"},
      {"turn:user:pass@example.org", "credentials belong in username/credential"},
  };
  for (const auto& [url, error] : cases) {
    IceServerUrl u;
    std::string why;
    ASSERT_EQ(IceServerUrl::parse(url, u, &why), Error::InvalidParameter) << url;
    EXPECT_NE(why.find(error), std::string::npos) << url << ": " << why;
    EXPECT_NE(why.find(url), std::string::npos) << "the reason names the URL: " << why;
  }
}

TEST(Configuration, ValidateChecksTurnCredentialsAndRanges) {
  std::string why;
  Configuration c;
  c.iceServers.push_back({{"turn:turn.example.org"}, "", ""});
  EXPECT_EQ(c.validate(&why), Error::InvalidParameter);
  EXPECT_NE(why.find("iceServers[0]: 'turn:turn.example.org' is a TURN server and needs username and credential"),
            std::string::npos)
      << why;
  c.iceServers[0].username = "u";
  c.iceServers[0].credential = "p";
  EXPECT_EQ(c.validate(&why), Error::Ok) << why;

  auto bad = [&](auto mutate, const char* error) {
    Configuration x;
    mutate(x);
    std::string reason;
    EXPECT_EQ(x.validate(&reason), Error::InvalidParameter) << error;
    EXPECT_NE(reason.find(error), std::string::npos) << reason;
  };
  bad([](Configuration& x) { x.iceServers.push_back({}); }, "iceServers[0].urls: at least one URL");
  bad([](Configuration& x) { x.portRangeBegin = 5000; }, "must both be 0");
  bad([](Configuration& x) { x.portRangeBegin = 6000, x.portRangeEnd = 5000; }, "is above portRangeEnd");
  bad([](Configuration& x) { x.maxMessageSize = 10; }, "maxMessageSize 10 is outside");
  bad([](Configuration& x) { x.mtu = 100; }, "mtu 100 is outside");
  // Datagrams above the 2048-byte receive buffers would be truncated: such an mtu is refused, not accepted.
  bad([](Configuration& x) { x.mtu = 2049; }, "mtu 2049 is outside 576..2048");
  bad([](Configuration& x) { x.mtu = 9216; }, "mtu 9216 is outside 576..2048");
  // Timeouts are bounded so deadlines cannot overflow.
  bad([](Configuration& x) { x.connectTimeout = std::chrono::milliseconds::max(); }, "must not exceed 86400000");
  bad([](Configuration& x) {
    x.disconnectedTimeout = std::chrono::hours(48);
    x.failedTimeout = std::chrono::hours(49);
  }, "must not exceed 86400000");
  bad([](Configuration& x) { x.connectTimeout = std::chrono::milliseconds(0); }, "timeouts must be positive");
  bad([](Configuration& x) { x.disconnectedTimeout = std::chrono::milliseconds(60000); },
      "disconnectedTimeout must not exceed failedTimeout");
  bad([](Configuration& x) { x.certificatePem = "-----BEGIN CERTIFICATE-----"; }, "must be given together");
  bad([](Configuration& x) { x.interfaces = {""}; }, "empty interface name");
}

TEST(Configuration, FromJsonGodotShape) {
  Configuration c;
  std::string why;
  ASSERT_EQ(Configuration::fromJson(R"({"iceServers":[{"urls":["stun:stun.l.google.com:19302"]},
      {"urls":"turn:turn.example.org?transport=tcp","username":"u","credential":"p"}]})",
                                    c, &why),
            Error::Ok)
      << why;
  ASSERT_EQ(c.iceServers.size(), 2u);
  EXPECT_EQ(c.iceServers[0].urls, std::vector<std::string>{"stun:stun.l.google.com:19302"});
  EXPECT_EQ(c.iceServers[1].urls, std::vector<std::string>{"turn:turn.example.org?transport=tcp"});
  EXPECT_EQ(c.iceServers[1].username, "u");
  EXPECT_EQ(c.iceServers[1].credential, "p");
}

TEST(Configuration, FromJsonOwnKeysAndLibdatachannelParity) {
  Configuration c;
  std::string why;
  ASSERT_EQ(Configuration::fromJson(R"({"interfaces":["lo","127.0.0.1"],"connectTimeoutMs":5000,
      "disconnectedTimeoutMs":1000.0,"failedTimeoutMs":8000,"maxMessageSize":1048576,"unknownKey":[1,2],
      "iceTransportPolicy":"all","libdatachannel":{"portRangeBegin":40000,"portRangeEnd":40100,"mtu":1400,
      "enableIceTcp":true}})",
                                    c, &why),
            Error::Ok)
      << why;
  EXPECT_EQ(c.interfaces, (std::vector<std::string>{"lo", "127.0.0.1"}));
  EXPECT_EQ(c.connectTimeout.count(), 5000);
  EXPECT_EQ(c.disconnectedTimeout.count(), 1000);
  EXPECT_EQ(c.failedTimeout.count(), 8000);
  EXPECT_EQ(c.maxMessageSize, 1048576u);
  EXPECT_EQ(c.portRangeBegin, 40000);
  EXPECT_EQ(c.portRangeEnd, 40100);
  EXPECT_EQ(c.mtu, 1400u);
}

TEST(Configuration, FromJsonErrorsNameTheKey) {
  const std::pair<const char*, const char*> cases[] = {
      {"", "invalid JSON"},
      {"{", "invalid JSON"},
      {"[]", "expected a JSON object"},
      {R"({"iceServers":{}})", "iceServers: expected an array"},
      {R"({"iceServers":["stun:x"]})", "iceServers[0]: expected an object"},
      {R"({"iceServers":[{}]})", "iceServers[0].urls: missing"},
      {R"({"iceServers":[{"urls":5}]})", "iceServers[0].urls: expected a string or an array of strings"},
      {R"({"iceServers":[{"urls":["stun:a",7]}]})", "iceServers[0].urls[1]: expected a string"},
      {R"({"iceServers":[{"urls":"stun:a","username":1}]})", "iceServers[0].username: expected a string"},
      {R"({"iceServers":[{"urls":"stun:a","credential":true}]})", "iceServers[0].credential: expected a string"},
      {R"({"iceServers":[{"urls":"turn:a"}]})", "needs username and credential"},
      {R"({"iceServers":[{"urls":"bogus"}]})", "iceServers[0]: ICE server URL 'bogus': missing scheme"},
      {R"({"interfaces":"eth0"})", "interfaces: expected an array of strings"},
      {R"({"portRangeBegin":-1})", "portRangeBegin: expected an integer in 0..65535"},
      {R"({"portRangeBegin":1.5})", "portRangeBegin: expected an integer"},
      {R"({"libdatachannel":{"mtu":"big"}})", "libdatachannel.mtu: expected an integer in 576..2048"},
      {R"({"libdatachannel":3})", "libdatachannel: expected an object"},
      {R"({"connectTimeoutMs":0})", "connectTimeoutMs: expected an integer in 1.."},
      {R"({"maxMessageSize":"1"})", "maxMessageSize: expected an integer"},
      {R"({"certificatePem":1})", "certificatePem: expected a string"},
  };
  for (const auto& [json, error] : cases) {
    Configuration c;
    c.mtu = 1300;  // untouched on failure
    std::string why;
    ASSERT_EQ(Configuration::fromJson(json, c, &why), Error::InvalidParameter) << json;
    EXPECT_NE(why.find(error), std::string::npos) << json << ": " << why;
    EXPECT_EQ(c.mtu, 1300u);
  }
}

}  // namespace
}  // namespace rtcpeer

namespace rtcpeer {
namespace {

TEST(Configuration, HostileJsonIsRefusedWithoutCrashing) {
  Configuration c;
  std::string why;
  std::string deep(100000, '[');
  EXPECT_EQ(Configuration::fromJson(deep, c, &why), Error::InvalidParameter);
  std::string nested = R"({"x":)" + std::string(20000, '[') + std::string(20000, ']') + "}";
  EXPECT_EQ(Configuration::fromJson(nested, c, &why), Error::Ok) << why;  // unknown key, ignored
  EXPECT_EQ(Configuration::fromJson(std::string("{\"iceServers\":[{\"urls\":\"stun:\xff\"}]}"), c, &why),
            Error::InvalidParameter);
  DataChannelInit d;  // a raw control character inside a JSON string is invalid JSON
  EXPECT_EQ(DataChannelInit::fromJson(std::string("{\"protocol\":\"a\0b\"}", 18), d, &why), Error::InvalidParameter);
  EXPECT_NE(why.find("invalid JSON"), std::string::npos) << why;
}

}  // namespace
}  // namespace rtcpeer
