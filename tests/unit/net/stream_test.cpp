// net::StreamClient over plain TCP on 127.0.0.1: bytes written before the connect completes are sent after it,
// both directions work with the poll-based wait, end of stream and a refused connect are reported as failures.
// (TLS is exercised against coturn in tests/unit/ice/coturn_test.cpp.)
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include "net/stream.hpp"
#include "net/udp.hpp"

namespace rtcpeer::net {
namespace {

struct Listener {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  std::uint16_t port = 0;
  Listener() {
    sockaddr_in sin{};
    sin.sin_family = AF_INET;
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof sin;
    if (::bind(fd, reinterpret_cast<sockaddr*>(&sin), len) == 0 && ::listen(fd, 4) == 0 &&
        getsockname(fd, reinterpret_cast<sockaddr*>(&sin), &len) == 0)
      port = ntohs(sin.sin_port);
  }
  ~Listener() { ::close(fd); }
};

/// Services the client until `done` or 2 s; collects what it received.
bool run(StreamClient& c, Bytes& got, const std::function<bool()>& done, Status* failure = nullptr) {
  const Timestamp end = now() + 2s;
  while (!done() && now() < end) {
    std::vector<int> r = {c.fd()}, w;
    if (c.wantsWrite()) w.push_back(c.fd());
    (void)wait(r, w, now() + 20ms);
    auto bytes = c.service();
    if (!bytes) {
      if (failure) *failure = bytes.status();
      return false;
    }
    got.insert(got.end(), bytes->begin(), bytes->end());
  }
  return done();
}

TEST(StreamClient, QueuesUntilConnectedThenExchangesBothWays) {
  Listener l;
  ASSERT_NE(l.port, 0);
  auto c = StreamClient::connect(*SocketAddress::parse("127.0.0.1", l.port), {});
  ASSERT_TRUE(c) << c.reason();
  const Bytes hello = {1, 2, 3, 4, 5};
  c->write(hello);  // before the connect completed
  EXPECT_TRUE(c->wantsWrite());
  Bytes got;
  ASSERT_TRUE(run(*c, got, [&] { return c->established(); }));
  const int peer = ::accept(l.fd, nullptr, nullptr);
  ASSERT_GE(peer, 0);
  Bytes buf(16);
  std::size_t n = 0;
  const Timestamp end = now() + 2s;
  while (n < hello.size() && now() < end) {
    ASSERT_TRUE(c->service());
    const ssize_t r = ::recv(peer, buf.data() + n, buf.size() - n, MSG_DONTWAIT);
    if (r > 0) n += static_cast<std::size_t>(r);
  }
  ASSERT_EQ(n, hello.size());
  EXPECT_TRUE(std::equal(hello.begin(), hello.end(), buf.begin()));

  const Bytes reply(100'000, 0x77);  // larger than one read
  std::size_t at = 0;
  while (at < reply.size()) {
    const ssize_t r = ::send(peer, reply.data() + at, reply.size() - at, MSG_DONTWAIT);
    if (r > 0) at += static_cast<std::size_t>(r);
    auto bytes = c->service();
    ASSERT_TRUE(bytes) << bytes.reason();
    got.insert(got.end(), bytes->begin(), bytes->end());
  }
  ASSERT_TRUE(run(*c, got, [&] { return got.size() >= reply.size(); }));
  EXPECT_EQ(got.size(), reply.size());

  ::close(peer);
  Status failure;
  EXPECT_FALSE(run(*c, got, [] { return false; }, &failure));
  EXPECT_NE(failure.reason().find("closed by the server"), std::string::npos) << failure.reason();
}

TEST(StreamClient, RefusedConnectIsAFailureWithAReason) {
  std::uint16_t port;
  {
    Listener l;  // bound then closed: nobody listens on this port any more
    port = l.port;
  }
  auto c = StreamClient::connect(*SocketAddress::parse("127.0.0.1", port), {});
  ASSERT_TRUE(c) << c.reason();
  Bytes got;
  Status failure;
  EXPECT_FALSE(run(*c, got, [] { return false; }, &failure));
  EXPECT_NE(failure.reason().find("refused"), std::string::npos) << failure.reason();
}

TEST(StreamClient, TlsSetupErrorsAreReported) {
  StreamOptions o;
  o.tls = true;
  o.caFile = "/nonexistent/ca.pem";
  auto c = StreamClient::connect(*SocketAddress::parse("127.0.0.1", 1), o);
  ASSERT_FALSE(c);
  EXPECT_NE(c.reason().find("cannot load trusted CAs"), std::string::npos) << c.reason();
}

}  // namespace
}  // namespace rtcpeer::net
