// RedisConnection and HostResolver (redis_link.hpp): hiredis' event hooks mapped onto Asio async_wait, and
// c-ares through net::Resolver with its epoll descriptor watched by Asio.
#include "signaling/redis_link.hpp"

#include <utility>  // before Asio: Boost 1.74 uses std::exchange without including it (GCC 12)

#include <hiredis/async.h>
#include <hiredis/hiredis.h>

#include <boost/asio.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>

#include "common/log.hpp"
#include "net/resolver.hpp"
#include "net/udp.hpp"

namespace rtcpeer::signaling {

namespace net = boost::asio;

namespace {
// The context's own error text (the async context's errstr is only copied when it is freed).
std::string errorOf(const redisAsyncContext* ac) {
  return ac->c.errstr[0] ? std::string(ac->c.errstr) : std::string("unknown error");
}
}  // namespace

// The hiredis event hooks: add/del read/write are interest changes, served by one outstanding async_wait per
// direction. hiredis owns and closes the socket, so the descriptor is released (not closed) at cleanup.
struct RedisConnection::Watcher : std::enable_shared_from_this<RedisConnection::Watcher> {
  explicit Watcher(net::io_context& io) : sd(io) {}
  net::posix::stream_descriptor sd;
  redisAsyncContext* ac = nullptr;
  std::shared_ptr<Watcher> keep;  ///< hiredis holds a raw pointer until cleanup (a free may be deferred)
  bool wantRead = false, wantWrite = false, readArmed = false, writeArmed = false;

  void armRead() {
    if (readArmed || !ac) return;
    readArmed = true;
    sd.async_wait(net::posix::stream_descriptor::wait_read, [w = shared_from_this()](boost::system::error_code ec) {
      w->readArmed = false;
      if (ec || !w->ac || !w->wantRead) return;
      redisAsyncHandleRead(w->ac);  // may free the context: cleanup() clears `ac`
      if (w->ac && w->wantRead) w->armRead();
    });
  }
  void armWrite() {
    if (writeArmed || !ac) return;
    writeArmed = true;
    sd.async_wait(net::posix::stream_descriptor::wait_write, [w = shared_from_this()](boost::system::error_code ec) {
      w->writeArmed = false;
      if (ec || !w->ac || !w->wantWrite) return;
      redisAsyncHandleWrite(w->ac);
      if (w->ac && w->wantWrite) w->armWrite();
    });
  }
  static void addRead(void* p) {
    auto* w = static_cast<Watcher*>(p);
    w->wantRead = true;
    w->armRead();
  }
  static void delRead(void* p) { static_cast<Watcher*>(p)->wantRead = false; }
  static void addWrite(void* p) {
    auto* w = static_cast<Watcher*>(p);
    w->wantWrite = true;
    w->armWrite();
  }
  static void delWrite(void* p) { static_cast<Watcher*>(p)->wantWrite = false; }
  static void cleanup(void* p) {
    auto* w = static_cast<Watcher*>(p);
    const auto keep = std::move(w->keep);
    w->ac = nullptr;
    w->wantRead = w->wantWrite = false;
    if (w->sd.is_open()) {
      boost::system::error_code ec;
      w->sd.cancel(ec);
      (void)w->sd.release();
    }
  }
};

// A command's callback with the liveness flag of the connection attempt it belongs to.
struct RedisConnection::Pending {
  std::shared_ptr<bool> alive;
  Callback callback;
};

RedisConnection::RedisConnection(net::io_context& io) : io_(io) {}
RedisConnection::~RedisConnection() { close(); }

void RedisConnection::connect(const std::string& ip, std::uint16_t port, std::function<void(Status)> onConnected,
                              std::function<void(std::string)> onDown) {
  close();
  onConnected_ = std::move(onConnected);
  onDown_ = std::move(onDown);
  alive_ = std::make_shared<bool>(true);
  redisAsyncContext* ac = redisAsyncConnect(ip.c_str(), port);
  if (!ac || ac->err) {
    const std::string reason = ac ? errorOf(ac) : "out of memory";
    if (ac) redisAsyncFree(ac);
    net::post(io_, [alive = alive_, this, reason] {
      if (*alive) onConnected_(fail(reason));
    });
    return;
  }
  ac_ = ac;
  ac->data = this;
  watcher_ = std::make_shared<Watcher>(io_);
  watcher_->ac = ac;
  watcher_->keep = watcher_;
  watcher_->sd.assign(ac->c.fd);
  ac->ev.data = watcher_.get();
  ac->ev.addRead = &Watcher::addRead;
  ac->ev.delRead = &Watcher::delRead;
  ac->ev.addWrite = &Watcher::addWrite;
  ac->ev.delWrite = &Watcher::delWrite;
  ac->ev.cleanup = &Watcher::cleanup;
  redisAsyncSetConnectCallback(ac, &RedisConnection::onConnect);
  redisAsyncSetDisconnectCallback(ac, &RedisConnection::onDisconnect);
  // A non-blocking connect completes when the socket becomes writable.
  Watcher::addWrite(watcher_.get());
}

void RedisConnection::onConnect(const redisAsyncContext* ac, int status) {
  auto* self = static_cast<RedisConnection*>(ac->data);
  if (!self) return;
  const bool ok = status == REDIS_OK;
  const std::string reason = ok ? std::string() : errorOf(ac);
  if (ok) self->connected_ = true;
  else self->ac_ = nullptr;  // hiredis frees the context after this callback
  // User code runs from the loop, outside hiredis (it may close or destroy this connection).
  net::post(self->io_, [alive = self->alive_, self, ok, reason] {
    if (*alive) self->onConnected_(ok ? okStatus() : fail(reason));
  });
}

void RedisConnection::onDisconnect(const redisAsyncContext* ac, int status) {
  auto* self = static_cast<RedisConnection*>(ac->data);
  if (!self) return;
  self->ac_ = nullptr;
  self->connected_ = false;
  const std::string reason = status == REDIS_OK ? std::string("connection closed") : errorOf(ac);
  net::post(self->io_, [alive = self->alive_, self, reason] {
    if (*alive) self->onDown_(reason.empty() ? "connection lost" : reason);
  });
}

void RedisConnection::onReply(redisAsyncContext*, void* reply, void* privdata) {
  std::unique_ptr<Pending> pending(static_cast<Pending*>(privdata));
  if (*pending->alive && pending->callback) pending->callback(static_cast<const redisReply*>(reply));
}

bool RedisConnection::command(std::initializer_list<std::string_view> argv, Callback callback) {
  if (!ac_ || !connected_) return false;
  const char* args[8];
  std::size_t lens[8];
  int n = 0;
  for (auto a : argv) {
    if (n == 8) return false;
    args[n] = a.data();
    lens[n++] = a.size();
  }
  auto* pending = new Pending{alive_, std::move(callback)};
  if (redisAsyncCommandArgv(ac_, &RedisConnection::onReply, pending, n, args, lens) != REDIS_OK) {
    delete pending;
    return false;
  }
  return true;
}

void RedisConnection::onSubscribed(redisAsyncContext* ac, void* reply, void*) {
  auto* self = static_cast<RedisConnection*>(ac->data);
  const auto* r = static_cast<const redisReply*>(reply);
  // ["message", channel, payload]; the ["subscribe", channel, count] confirmation is ignored.
  if (!self || !r || r->type != REDIS_REPLY_ARRAY || r->elements != 3) return;
  const redisReply* kind = r->element[0];
  const redisReply* payload = r->element[2];
  if (kind->type != REDIS_REPLY_STRING) return;
  if (std::string_view(kind->str, kind->len) == "subscribe") {
    if (auto confirmed = std::move(self->onConfirmed_)) {
      self->onConfirmed_ = nullptr;
      net::post(self->io_, [alive = self->alive_, confirmed = std::move(confirmed)] {
        if (*alive) confirmed();
      });
    }
    return;
  }
  if (std::string_view(kind->str, kind->len) != "message") return;
  if (payload->type != REDIS_REPLY_STRING) return;
  if (self->onMessage_) self->onMessage_(std::string_view(payload->str, payload->len));
}

bool RedisConnection::subscribe(const std::string& channel, std::function<void()> onConfirmed,
                                std::function<void(std::string_view)> onMessage) {
  if (!ac_ || !connected_) return false;
  onConfirmed_ = std::move(onConfirmed);
  onMessage_ = std::move(onMessage);
  const char* args[] = {"SUBSCRIBE", channel.c_str()};
  const std::size_t lens[] = {9, channel.size()};
  return redisAsyncCommandArgv(ac_, &RedisConnection::onSubscribed, nullptr, 2, args, lens) == REDIS_OK;
}

void RedisConnection::close() {
  if (alive_) *alive_ = false;
  connected_ = false;
  if (ac_) {
    redisAsyncContext* ac = std::exchange(ac_, nullptr);
    ac->data = nullptr;
    // Inside one of its reply callbacks hiredis defers the free until the callback returns; the watcher lives
    // until hiredis' cleanup hook either way. Pending callbacks run with no reply and see `alive` false.
    redisAsyncFree(ac);
  }
  watcher_.reset();
}

// ---- HostResolver

struct HostResolver::Impl : std::enable_shared_from_this<HostResolver::Impl> {
  explicit Impl(net::io_context& context) : io(context), sd(context), timer(context) {}
  net::io_context& io;
  net::posix::stream_descriptor sd;
  net::steady_timer timer;
  std::shared_ptr<rtcpeer::net::Poller> poller;
  std::unique_ptr<rtcpeer::net::Resolver> resolver;
  std::function<void(Result<std::string>)> done;
  std::uint64_t query = 0;

  void watch() {
    sd.async_wait(net::posix::stream_descriptor::wait_read, [self = shared_from_this()](boost::system::error_code ec) {
      if (ec || !self->resolver) return;
      self->step();
    });
    const Timestamp deadline = resolver->nextDeadline();
    if (deadline == kNever) return;
    const auto wait = std::chrono::duration_cast<std::chrono::microseconds>(deadline - rtcpeer::net::now());
    timer.expires_after(std::max(wait, std::chrono::microseconds(0)));
    timer.async_wait([self = shared_from_this()](boost::system::error_code ec) {
      if (ec || !self->resolver) return;
      self->step();
    });
  }
  void step() {
    resolver->process();
    while (auto answer = resolver->poll()) {
      if (answer->id != query || !done) continue;
      auto cb = std::move(done);
      done = nullptr;
      if (answer->addresses.empty()) cb(fail("cannot resolve " + answer->host + ": " + answer->error));
      else cb(answer->addresses.front().ipString());
      if (!resolver) return;
    }
    if (!done) return;
    boost::system::error_code ec;
    sd.cancel(ec);
    timer.cancel();
    // The cancelled waits complete with an error and do nothing; fresh waits follow the resolver's state.
    watch();
  }
  void stop() {
    done = nullptr;
    timer.cancel();
    if (sd.is_open()) {
      boost::system::error_code ec;
      sd.cancel(ec);
      (void)sd.release();  // the Poller owns the epoll descriptor
    }
    resolver.reset();
    poller.reset();
  }
};

HostResolver::HostResolver(net::io_context& io) : impl_(std::make_shared<Impl>(io)) {}
HostResolver::~HostResolver() { impl_->stop(); }

void HostResolver::cancel() { impl_->stop(); }

void HostResolver::resolve(const std::string& host, std::function<void(Result<std::string>)> done) {
  impl_->stop();
  if (rtcpeer::net::isAddressLiteral(host)) {
    std::string literal = host;
    if (literal.size() > 2 && literal.front() == '[') literal = literal.substr(1, literal.size() - 2);
    net::post(impl_->io, [done = std::move(done), literal] { done(literal); });
    return;
  }
  auto poller = rtcpeer::net::Poller::create();
  if (!poller.ok()) {
    net::post(impl_->io, [done = std::move(done), r = poller.reason()] { done(fail("resolver: " + r)); });
    return;
  }
  impl_->poller = std::make_shared<rtcpeer::net::Poller>(std::move(*poller));
  auto resolver = rtcpeer::net::Resolver::create(impl_->poller);
  if (!resolver.ok()) {
    const std::string reason = resolver.reason();
    impl_->poller.reset();
    net::post(impl_->io, [done = std::move(done), reason] { done(fail("resolver: " + reason)); });
    return;
  }
  impl_->resolver = std::move(*resolver);
  impl_->sd.assign(impl_->poller->fd());
  impl_->done = std::move(done);
  impl_->query = impl_->resolver->resolve(host, 0);
  // The answer may already be queued (a name from /etc/hosts): step from the loop, not inside resolve().
  net::post(impl_->io, [self = impl_] {
    if (self->resolver) self->step();
  });
}

}  // namespace rtcpeer::signaling
