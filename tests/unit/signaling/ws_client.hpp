// A bare WebSocket client for tests, on the same io_context as the server under test: it records every frame
// received and how the server closed it.
#pragma once

#include <utility>  // before Asio (Boost 1.74 + GCC 12)

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/websocket.hpp>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <deque>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>

#include "signaling/protocol.hpp"

namespace rtcpeer::signaling::test {

namespace beast = boost::beast;
namespace websocket = beast::websocket;
namespace net = boost::asio;
using tcp = net::ip::tcp;

class WsClient : public std::enable_shared_from_this<WsClient> {
 public:
  explicit WsClient(net::io_context& io) : ws_(io) {}

  std::deque<Message> received;
  std::deque<std::string> receivedRaw;  ///< frames that are not JSON messages (the 3.x line protocol)
  bool open = false;
  bool closed = false;
  int closeCode = 0;
  std::string closeReason;
  std::function<void(const Message&)> onMessage;

  void connect(std::uint16_t port, std::function<void()> onOpen = {}) {
    auto self = shared_from_this();
    beast::get_lowest_layer(ws_).async_connect(
        tcp::endpoint(net::ip::make_address("127.0.0.1"), port), [self, onOpen](beast::error_code ec) {
          if (ec) return self->finish(-1, ec.message());
          self->ws_.async_handshake("127.0.0.1", "/", [self, onOpen](beast::error_code ec2) {
            if (ec2) return self->finish(-1, ec2.message());
            self->open = true;
            if (onOpen) onOpen();
            self->read();
          });
        });
  }

  void send(const Message& m) { sendText(serialize(m)); }
  void sendText(std::string text, bool binary = false) {
    queue_.push_back({std::move(text), binary});
    if (queue_.size() == 1) writeNext();
  }
  void close() {
    ws_.async_close(websocket::close_code::normal, [self = shared_from_this()](beast::error_code) {});
  }
  /// Writes one message of `total` bytes as fragments of `piece` bytes from a single buffer, counting what got
  /// written in `streamed`, until done or a write fails (the server closed).
  void stream(std::size_t total, std::size_t piece, bool binary = false) {
    piece_.assign(piece, 'x');
    ws_.binary(binary);
    streamNext(total);
  }
  std::size_t streamed = 0;

 private:
  void read() {
    ws_.async_read(buffer_, [self = shared_from_this()](beast::error_code ec, std::size_t) {
      if (ec) return self->finish(self->ws_.reason().code, std::string(self->ws_.reason().reason.c_str()));
      auto data = self->buffer_.cdata();
      auto m = parseMessage(std::string_view(static_cast<const char*>(data.data()), data.size()));
      if (m) {
        if (self->onMessage) self->onMessage(*m);
        else self->received.push_back(std::move(*m));
      } else {
        self->receivedRaw.emplace_back(static_cast<const char*>(data.data()), data.size());
      }
      self->buffer_.consume(self->buffer_.size());
      self->read();
    });
  }
  void writeNext() {
    ws_.binary(queue_.front().second);
    ws_.async_write(net::buffer(queue_.front().first), [self = shared_from_this()](beast::error_code ec, std::size_t) {
      self->queue_.pop_front();
      if (!ec && !self->queue_.empty()) self->writeNext();
    });
  }
  void streamNext(std::size_t total) {
    const std::size_t n = std::min(piece_.size(), total - streamed);
    ws_.async_write_some(streamed + n == total, net::buffer(piece_.data(), n),
                         [self = shared_from_this(), total](beast::error_code ec, std::size_t written) {
                           self->streamed += written;
                           if (!ec && self->streamed < total) self->streamNext(total);
                         });
  }
  void finish(int code, std::string reason) {
    closed = true;
    open = false;
    closeCode = code;
    closeReason = std::move(reason);
  }

  websocket::stream<beast::tcp_stream> ws_;
  beast::flat_buffer buffer_;
  std::deque<std::pair<std::string, bool>> queue_;
  std::string piece_;
};

/// A throw-away self-signed certificate made with the openssl CLI, valid for the given subjectAltName.
struct TestCertificate {
  std::filesystem::path dir;
  std::string cert, key;
  bool ok = false;

  explicit TestCertificate(const std::string& altName = "IP:127.0.0.1") {
    static int serial = 0;
    dir = std::filesystem::temp_directory_path() /
          ("rtcpeer-sig-tls-" + std::to_string(::getpid()) + "-" + std::to_string(++serial));
    std::filesystem::create_directories(dir);
    cert = (dir / "cert.pem").string();
    key = (dir / "key.pem").string();
    const std::string cmd = "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 1 "
                            "-subj /CN=rtcpeer-test -addext subjectAltName=" + altName + " -keyout " + key +
                            " -out " + cert + " >/dev/null 2>&1";
    ok = std::system(cmd.c_str()) == 0;
  }
  ~TestCertificate() {
    std::error_code ec;
    std::filesystem::remove_all(dir, ec);
  }
  TestCertificate(const TestCertificate&) = delete;
  TestCertificate& operator=(const TestCertificate&) = delete;
};

/// Runs `io` until `done()` or `limit` passes; false on timeout.
inline bool runUntil(net::io_context& io, const std::function<bool()>& done,
                     std::chrono::milliseconds limit = std::chrono::seconds(10)) {
  const auto end = std::chrono::steady_clock::now() + limit;
  while (!done()) {
    if (std::chrono::steady_clock::now() > end) return false;
    io.restart();
    io.run_one_for(std::chrono::milliseconds(10));
  }
  return true;
}

}  // namespace rtcpeer::signaling::test
