// The echo server with a crowd: `rtcpeer serve` and `rtcpeer echo-server --port P` as child processes, then 200
// SignalingClients in this process join its client/server lobby at the same instant (each its own WebSocket and
// PeerConnection, the channel `rtcpeer chat` uses: negotiated, id 1). Every client sends one line once its channel
// is open and must get exactly that line back from peer 1; no client may fail or lose its signaling socket
// abnormally, and the echo server must keep running. Runs in a private loopback-only network namespace; bounded by
// loop turns and by state, never by time.
#include <gtest/gtest.h>

#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "process.hpp"
#include "signaling/client.hpp"
#include "unit/net/netns.hpp"

namespace rtcpeer::signaling::test {
namespace {

// RTCPEER_ECHO_CLIENTS overrides the count for runs by hand.
const int kClients = std::getenv("RTCPEER_ECHO_CLIENTS") ? std::atoi(std::getenv("RTCPEER_ECHO_CLIENTS")) : 200;
constexpr int kMaxTurns = 2'000'000;  // only a hang gets here: a client that cannot connect fails first

struct Client {
  std::unique_ptr<SignalingClient> signaling;
  std::shared_ptr<DataChannel> channel;
  int remote = 0;
  int closeCode = 0;
  bool sent = false;
  std::string echo;
};

TEST(EchoServerCrowd, TwoHundredClientsJoinAtOnceAndEveryOneGetsItsEcho) {
  RTCPEER_REQUIRE_LOOPBACK_NAMESPACE();
  boost::asio::io_context io;
  // The host of a client/server lobby sends ~3 messages per client that joins: 200 at once need a higher rate.
  ChildProcess serve(io, {RTCPEER_CLI, "serve", "--port", "19080", "--max-lobby-size", "256", "--message-rate",
                          "5000"});
  ASSERT_TRUE(serve.started());
  int turns = 0;
  for (; !serve.printed("19080") && !serve.eof() && turns < kMaxTurns; ++turns) io.run_one();
  ASSERT_TRUE(serve.printed("19080")) << serve.output();
  ChildProcess echo(io, {RTCPEER_CLI, "echo-server", "--server", "ws://127.0.0.1:19080", "--interfaces", "127.0.0.1",
                         "--port", "40300", "--quiet"});
  ASSERT_TRUE(echo.started());
  for (turns = 0; !echo.printed("\n") && !echo.eof() && turns < kMaxTurns; ++turns) io.run_one();
  const std::string& out = echo.output();
  ASSERT_EQ(out.rfind("lobby ", 0), 0u) << out;
  const std::string lobby = out.substr(6, out.find('\n') - 6);

  std::vector<Client> clients(kClients);
  for (auto& c : clients) {
    ClientOptions o;
    o.url = "ws://127.0.0.1:19080";
    o.lobby = lobby;
    o.rtc.interfaces = {"127.0.0.1"};
    c.signaling = std::make_unique<SignalingClient>(o);
    c.signaling->onPeerConnected([&c](int id, PeerConnection& pc) {
      c.remote = id;
      DataChannelInit init;
      init.negotiated = true;
      init.id = 1;
      c.channel = pc.createDataChannel("chat", init);
    });
    c.signaling->onClosed([&c](int code, const std::string&) { c.closeCode = code; });
  }

  std::size_t echoed = 0;
  std::vector<std::uint8_t> buffer;
  for (turns = 0; echoed < clients.size() && turns < kMaxTurns; ++turns) {
    io.poll();
    ASSERT_FALSE(echo.eof()) << "the echo server exited: " << echo.output();
    for (std::size_t i = 0; i < clients.size(); ++i) {
      Client& c = clients[i];
      c.signaling->poll();
      ASSERT_TRUE(c.closeCode == 0 || c.closeCode == 1000)
          << "client " << i << ": signaling closed " << c.closeCode << ": " << c.signaling->lastError();
      if (c.remote == 0) continue;
      ASSERT_EQ(c.remote, 1) << "client " << i << " was wired to another client";
      PeerConnection* pc = c.signaling->peer(1);
      ASSERT_NE(pc, nullptr);
      ASSERT_NE(pc->connectionState(), ConnectionState::Failed) << "client " << i << ": " << c.signaling->lastError();
      if (!c.sent && c.channel && c.channel->readyState() == ReadyState::Open) {
        ASSERT_EQ(c.channel->putPacket(std::string_view("hello from client " + std::to_string(i))), Error::Ok);
        c.sent = true;
      }
      if (c.echo.empty() && c.channel && c.channel->getPacket(buffer) == Error::Ok) {
        c.echo.assign(buffer.begin(), buffer.end());
        EXPECT_EQ(c.echo, "hello from client " + std::to_string(i));
        ++echoed;
      }
    }
    // Sleep on one client until anything happens to it (or 1 ms): the others are polled next turn regardless.
    clients[static_cast<std::size_t>(turns) % clients.size()].signaling->wait(std::chrono::milliseconds(1));
  }
  EXPECT_EQ(echoed, clients.size()) << "after " << turns << " turns";
  std::printf("[echo crowd] %zu of %d clients echoed in %d turns\n", echoed, kClients, turns);
}

}  // namespace
}  // namespace rtcpeer::signaling::test
