// hiredis (Debian's libhiredis 0.14, the field-standard C client) driven from the signaling server's Asio loop:
// one RedisConnection is one redisAsyncContext whose socket is watched with async_wait on a
// posix::stream_descriptor (hiredis' own adapters target libev/libevent/libuv, not Asio), and HostResolver turns
// the URL's host name into an address with net::Resolver (c-ares on an epoll set Asio watches), so neither
// connecting nor resolving blocks the loop and no thread is started. Compiled only with hiredis (RTCPEER_REDIS).
#pragma once

#include <cstdint>
#include <functional>
#include <initializer_list>
#include <memory>
#include <string>
#include <string_view>

#include "common/result.hpp"

namespace boost::asio {
class io_context;
}
struct redisAsyncContext;
struct redisReply;

namespace rtcpeer::signaling {

class RedisConnection {
 public:
  /// A command's reply, valid during the call only; nullptr when the connection went away before it came.
  using Callback = std::function<void(const redisReply*)>;

  explicit RedisConnection(boost::asio::io_context& io);
  ~RedisConnection();  ///< close()
  RedisConnection(const RedisConnection&) = delete;
  RedisConnection& operator=(const RedisConnection&) = delete;

  /// Connects to an address literal. `onConnected` runs once (from the loop, never inside this call) with the
  /// outcome; after a success `onDown` runs once with a reason when the connection drops. Both never run after
  /// close().
  void connect(const std::string& ip, std::uint16_t port, std::function<void(Status)> onConnected,
               std::function<void(std::string)> onDown);
  /// Queues a command (pipelined with the others); false when not connected. The callback may be empty.
  bool command(std::initializer_list<std::string_view> argv, Callback callback = {});
  /// SUBSCRIBE: `onConfirmed` runs once Redis confirmed it, `onMessage` gets each message's payload on
  /// `channel`. The connection can do nothing else after.
  bool subscribe(const std::string& channel, std::function<void()> onConfirmed,
                 std::function<void(std::string_view)> onMessage);
  /// Drops the connection; pending callbacks are forgotten (never called).
  void close();
  bool connected() const { return connected_; }

 private:
  struct Watcher;
  struct Pending;
  static void onConnect(const redisAsyncContext* ac, int status);
  static void onDisconnect(const redisAsyncContext* ac, int status);
  static void onReply(redisAsyncContext* ac, void* reply, void* privdata);
  static void onSubscribed(redisAsyncContext* ac, void* reply, void* privdata);

  boost::asio::io_context& io_;
  redisAsyncContext* ac_ = nullptr;
  std::shared_ptr<Watcher> watcher_;
  std::shared_ptr<bool> alive_;
  bool connected_ = false;
  std::function<void(Status)> onConnected_;
  std::function<void(std::string)> onDown_;
  std::function<void()> onConfirmed_;
  std::function<void(std::string_view)> onMessage_;
};

/// Resolves one host name at a time to an address literal (the first answer, IPv4 first); literals are
/// answered without a query. The answer comes from the loop, never inside resolve().
class HostResolver {
 public:
  explicit HostResolver(boost::asio::io_context& io);
  ~HostResolver();
  HostResolver(const HostResolver&) = delete;
  HostResolver& operator=(const HostResolver&) = delete;
  void resolve(const std::string& host, std::function<void(Result<std::string>)> done);
  void cancel();

 private:
  struct Impl;
  std::shared_ptr<Impl> impl_;
};

}  // namespace rtcpeer::signaling
