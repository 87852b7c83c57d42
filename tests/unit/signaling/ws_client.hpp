// A bare WebSocket client for tests, on the same io_context as the server under test: it records every frame
// received and how the server closed it.
#pragma once

#include <utility>  // before Asio (Boost 1.74 + GCC 12)

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/websocket.hpp>
#include <chrono>
#include <deque>
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

 private:
  void read() {
    ws_.async_read(buffer_, [self = shared_from_this()](beast::error_code ec, std::size_t) {
      if (ec) return self->finish(self->ws_.reason().code, std::string(self->ws_.reason().reason.c_str()));
      auto data = self->buffer_.cdata();
      auto m = parseMessage(std::string_view(static_cast<const char*>(data.data()), data.size()));
      self->buffer_.consume(self->buffer_.size());
      if (m) {
        if (self->onMessage) self->onMessage(*m);
        else self->received.push_back(std::move(*m));
      }
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
  void finish(int code, std::string reason) {
    closed = true;
    open = false;
    closeCode = code;
    closeReason = std::move(reason);
  }

  websocket::stream<beast::tcp_stream> ws_;
  beast::flat_buffer buffer_;
  std::deque<std::pair<std::string, bool>> queue_;
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
