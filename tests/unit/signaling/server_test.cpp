// The Beast shell over real loopback sockets: the protocol end to end, bad input, timeouts, static files, wss://.
#include "signaling/server.hpp"

#include <gtest/gtest.h>

#include <boost/asio/ssl.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <boost/beast/websocket/ssl.hpp>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <thread>

#include "ws_client.hpp"

namespace rtcpeer::signaling::test {
namespace {

namespace http = beast::http;
using T = MessageType;

struct ServerFixture : ::testing::Test {
  net::io_context io;
  std::unique_ptr<Server> server;

  void start(ServerOptions options = {}) {
    options.port = 0;
    server = std::make_unique<Server>(io, options);
    auto status = server->start();
    ASSERT_TRUE(status.ok()) << status.reason();
  }
  std::shared_ptr<WsClient> client() {
    auto c = std::make_shared<WsClient>(io);
    c->connect(server->port());
    EXPECT_TRUE(runUntil(io, [&] { return c->open || c->closed; }));
    return c;
  }
  bool waitFor(const std::shared_ptr<WsClient>& c, std::size_t n) {
    return runUntil(io, [&] { return c->received.size() >= n || c->closed; }) && c->received.size() >= n;
  }
};

TEST_F(ServerFixture, LobbyJoinRelayAndBadInputOverRealSockets) {
  start();
  auto host = client();
  host->send({T::Join, 0, ""});
  ASSERT_TRUE(waitFor(host, 2));
  EXPECT_EQ(host->received[0].type, T::Id);
  EXPECT_EQ(host->received[0].id, 1);
  const std::string lobby = host->received[1].data;
  host->received.clear();

  auto peer = client();
  peer->send({T::Join, 0, lobby});
  ASSERT_TRUE(waitFor(peer, 3));
  const auto peerId = peer->received[0].id;
  EXPECT_EQ(peer->received[1].type, T::PeerConnect);
  EXPECT_EQ(peer->received[2].data, lobby);
  ASSERT_TRUE(waitFor(host, 1));
  EXPECT_EQ(host->received[0].id, peerId);
  host->received.clear();

  peer->send({T::Offer, 1, "v=0\r\n"});
  ASSERT_TRUE(waitFor(host, 1));
  EXPECT_EQ(host->received[0].type, T::Offer);
  EXPECT_EQ(host->received[0].id, peerId);
  EXPECT_EQ(host->received[0].data, "v=0\r\n");
  host->received.clear();

  // Each kind of bad input closes only its own socket, with 4000 and a reason.
  struct Case {
    std::string text;
    bool binary;
    std::string reason;
  };
  const Case cases[] = {{"{\"type\":0,\"id\":0,\"data\":\"\"}", true, "Invalid transfer mode, must be text"},
                        {"not json", false, "Invalid message format: not valid JSON"},
                        {R"({"type":"0","id":0})", false, "Invalid message format: \"type\" must be a number"},
                        {R"({"type":4,"id":424242,"data":""})", false, "Invalid message when not in a lobby"}};
  for (const auto& c : cases) {
    auto bad = client();
    bad->sendText(c.text, c.binary);
    ASSERT_TRUE(runUntil(io, [&] { return bad->closed; })) << c.text;
    EXPECT_EQ(bad->closeCode, 4000);
    EXPECT_EQ(bad->closeReason, c.reason);
  }
  peer->send({T::Offer, 424242, "x"});  // unknown destination
  ASSERT_TRUE(runUntil(io, [&] { return peer->closed; }));
  EXPECT_EQ(peer->closeCode, 4000);
  EXPECT_EQ(peer->closeReason, "Invalid destination");
  ASSERT_TRUE(waitFor(host, 1));
  EXPECT_EQ(host->received[0].type, T::PeerDisconnect);
  EXPECT_FALSE(host->closed);

  // A frame above the size limit (64 KiB) gets the protocol's close too, not the WebSocket layer's 1009.
  auto big = client();
  big->sendText(std::string(70000, 'x'));
  ASSERT_TRUE(runUntil(io, [&] { return big->closed; }));
  EXPECT_EQ(big->closeCode, 4000);
  EXPECT_EQ(big->closeReason, "Message too large");
  EXPECT_FALSE(host->closed);
}

TEST_F(ServerFixture, OversizedMessagesCloseWith4000WithoutBeingBuffered) {
  ServerOptions options;
  options.limits.maxMessageSize = 1000;
  start(options);
  auto host = client();
  host->send({T::Join, 0, ""});
  ASSERT_TRUE(waitFor(host, 2));
  const std::string lobby = host->received[1].data;
  auto peer = client();
  peer->send({T::Join, 0, lobby});
  ASSERT_TRUE(waitFor(peer, 3));
  ASSERT_TRUE(waitFor(host, 3));  // ID, JOIN, PEER_CONNECT
  host->received.clear();

  // Exactly at the limit passes.
  std::string sdp(1000 - serialize({T::Offer, 1, ""}).size(), 'v');
  ASSERT_EQ(serialize({T::Offer, 1, sdp}).size(), 1000u);
  peer->send({T::Offer, 1, sdp});
  ASSERT_TRUE(waitFor(host, 1));
  EXPECT_EQ(host->received[0].data, sdp);
  host->received.clear();

  struct Case {
    std::size_t total, piece;
    bool binary;
    std::string reason;
  };
  // One byte over in one frame; over in fragments; 64 MiB of text and of binary in 64 KiB fragments, which
  // must be closed long before the sender is done: the server buffers at most one byte past the limit.
  const Case cases[] = {{1001, 1001, false, "Message too large"},
                        {1200, 400, false, "Message too large"},
                        {64u << 20, 64u << 10, false, "Message too large"},
                        {64u << 20, 64u << 10, true, "Invalid transfer mode, must be text"}};
  for (const auto& c : cases) {
    auto bad = client();
    bad->stream(c.total, c.piece, c.binary);
    ASSERT_TRUE(runUntil(io, [&] { return bad->closed; }, std::chrono::seconds(30))) << c.total;
    EXPECT_EQ(bad->closeCode, 4000) << c.total;
    EXPECT_EQ(bad->closeReason, c.reason) << c.total;
    if (c.total > (1u << 20)) {
      EXPECT_LT(bad->streamed, c.total / 2);
    }
  }

  // A WebSocket-level violation (invalid UTF-8 in a text frame) is failed by the WebSocket layer as RFC 6455
  // §8.1 requires (1007, as the demo's Node server does); it too ends only that socket.
  auto utf8 = client();
  utf8->sendText("{\"type\":0,\"id\":0,\"data\":\"\xff\xfe\"}");
  ASSERT_TRUE(runUntil(io, [&] { return utf8->closed; }));
  EXPECT_EQ(utf8->closeCode, 1007);

  // Everyone else is still served.
  peer->send({T::Candidate, 1, "\n0\n0\ncandidate:1"});
  ASSERT_TRUE(waitFor(host, 1));
  EXPECT_EQ(host->received[0].type, T::Candidate);
  EXPECT_FALSE(host->closed);
  EXPECT_FALSE(peer->closed);
  EXPECT_EQ(server->lobbies().peerCount(), 2u);
}

TEST_F(ServerFixture, SilentSocketIsClosedAfterOneSecond) {
  start();
  auto idle = client();
  const auto t0 = std::chrono::steady_clock::now();
  ASSERT_TRUE(runUntil(io, [&] { return idle->closed; }, std::chrono::seconds(5)));
  const auto elapsed = std::chrono::steady_clock::now() - t0;
  EXPECT_EQ(idle->closeCode, 4000);
  EXPECT_EQ(idle->closeReason, "Have not joined lobby yet");
  EXPECT_GE(elapsed, std::chrono::milliseconds(900));  // (no upper bound: a loaded machine may poll late)
}

TEST_F(ServerFixture, ServesTheWebRootAndNothingOutsideIt) {
  const auto root = std::filesystem::temp_directory_path() / ("rtcpeer-sig-web-" + std::to_string(::getpid()));
  std::filesystem::create_directories(root);
  std::ofstream(root / "index.html") << "<!doctype html><p>hi</p>";
  ServerOptions options;
  options.webRoot = root.string();
  start(options);

  auto get = [&](const std::string& target) {
    tcp::socket socket(io);
    socket.connect(tcp::endpoint(net::ip::make_address("127.0.0.1"), server->port()));
    http::request<http::empty_body> req(http::verb::get, target, 11);
    req.set(http::field::host, "127.0.0.1");
    req.keep_alive(false);
    // The server runs on this io_context, so write/read asynchronously and drive it.
    auto res = std::make_shared<http::response<http::string_body>>();
    beast::flat_buffer buffer;
    bool done = false;
    http::async_write(socket, req, [&](beast::error_code ec, std::size_t) {
      if (ec) {
        done = true;
        return;
      }
      http::async_read(socket, buffer, *res, [&](beast::error_code, std::size_t) { done = true; });
    });
    EXPECT_TRUE(runUntil(io, [&] { return done; }));
    return std::make_pair(res->result_int(), res->body());
  };
  auto [code, body] = get("/");
  EXPECT_EQ(code, 200u);
  EXPECT_EQ(body, "<!doctype html><p>hi</p>");
  EXPECT_EQ(get("/index.html?x=1").first, 200u);
  EXPECT_EQ(get("/../../etc/passwd").first, 404u);
  EXPECT_EQ(get("/%2e%2e/etc/passwd").first, 404u);
  EXPECT_EQ(get("/missing.js").first, 404u);
  std::filesystem::remove_all(root);
}

TEST_F(ServerFixture, SecureWebSocketsWithACertificate) {
  TestCertificate tls;
  if (!tls.ok) GTEST_SKIP() << "openssl command not available";
  ServerOptions options;
  options.certificateFile = tls.cert;
  options.privateKeyFile = tls.key;
  start(options);

  net::ssl::context ctx(net::ssl::context::tls_client);
  ctx.set_verify_mode(net::ssl::verify_none);  // self-signed test certificate
  websocket::stream<beast::ssl_stream<beast::tcp_stream>> ws(io, ctx);
  beast::flat_buffer buffer;
  std::string reply;
  bool done = false;
  beast::get_lowest_layer(ws).async_connect(
      tcp::endpoint(net::ip::make_address("127.0.0.1"), server->port()), [&](beast::error_code ec) {
        if (ec) return void(done = true);
        ws.next_layer().async_handshake(net::ssl::stream_base::client, [&](beast::error_code ec2) {
          if (ec2) return void(done = true);
          ws.async_handshake("localhost", "/", [&](beast::error_code ec3) {
            if (ec3) return void(done = true);
            ws.text(true);
            static const std::string join = serialize({T::Join, 0, ""});
            ws.async_write(net::buffer(join), [&](beast::error_code, std::size_t) {
              ws.async_read(buffer, [&](beast::error_code, std::size_t) {
                reply = beast::buffers_to_string(buffer.cdata());
                done = true;
              });
            });
          });
        });
      });
  ASSERT_TRUE(runUntil(io, [&] { return done; }));
  auto m = parseMessage(reply);
  ASSERT_TRUE(m.ok()) << reply;
  EXPECT_EQ(m->type, T::Id);
  EXPECT_EQ(m->id, 1);
}

TEST(SignalingServer, RefusesABadConfiguration) {
  net::io_context io;
  ServerOptions options;
  options.port = 0;
  options.webRoot = "/nonexistent/rtcpeer";
  EXPECT_FALSE(Server(io, options).start().ok());
  options.webRoot.clear();
  options.certificateFile = "/nonexistent/cert.pem";
  options.privateKeyFile = "/nonexistent/key.pem";
  EXPECT_FALSE(Server(io, options).start().ok());
  options = {};
  options.address = "not an address";
  EXPECT_FALSE(Server(io, options).start().ok());
}

}  // namespace
}  // namespace rtcpeer::signaling::test
