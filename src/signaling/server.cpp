#include "signaling/server.hpp"

#include <utility>  // before Asio: Boost 1.74 uses std::exchange without including it (GCC 12)

#include <boost/asio.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <boost/beast/websocket.hpp>
#include <boost/beast/websocket/ssl.hpp>
#include <cctype>
#include <chrono>
#include <deque>
#include <filesystem>
#include <fstream>
#include <optional>
#include <unordered_map>

#include "common/log.hpp"
#include "signaling/line_protocol.hpp"
#if RTCPEER_HAVE_REDIS
#include "signaling/redis_cluster.hpp"
#endif

namespace rtcpeer::signaling {
namespace {

namespace beast = boost::beast;
namespace http = beast::http;
namespace websocket = beast::websocket;
namespace net = boost::asio;
namespace ssl = net::ssl;
using tcp = net::ip::tcp;
using PlainStream = beast::tcp_stream;
using TlsStream = beast::ssl_stream<beast::tcp_stream>;

constexpr auto kHttpTimeout = std::chrono::seconds(10);
constexpr std::uintmax_t kMaxFileSize = 16 << 20;

struct SessionBase {
  virtual ~SessionBase() = default;
  virtual void send(std::string text) = 0;
  virtual void close(int code, const std::string& reason) = 0;
  virtual void abort() = 0;
};

std::string_view mimeType(const std::filesystem::path& p) {
  const auto ext = p.extension().string();
  if (ext == ".html") return "text/html; charset=utf-8";
  if (ext == ".js" || ext == ".mjs") return "text/javascript; charset=utf-8";
  if (ext == ".css") return "text/css; charset=utf-8";
  if (ext == ".json") return "application/json";
  if (ext == ".svg") return "image/svg+xml";
  if (ext == ".png") return "image/png";
  if (ext == ".ico") return "image/x-icon";
  return "application/octet-stream";
}

// Only plain relative paths inside the web root: no "..", no hidden files, no symlink escapes.
std::optional<std::filesystem::path> resolveFile(const std::filesystem::path& root, std::string_view target) {
  target = target.substr(0, target.find_first_of("?#"));
  if (target.empty() || target[0] != '/') return std::nullopt;
  std::string rel(target.substr(1));
  if (rel.empty() || rel.back() == '/') rel += "index.html";
  for (char c : rel)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '/' || c == '.' || c == '-' || c == '_'))
      return std::nullopt;
  if (rel.find("..") != std::string::npos || rel.find("/.") != std::string::npos || rel[0] == '.')
    return std::nullopt;
  std::error_code ec;
  auto full = std::filesystem::canonical(root / rel, ec);
  if (ec || !std::filesystem::is_regular_file(full, ec)) return std::nullopt;
  const auto rootStr = root.string() + "/";
  if (full.string().compare(0, rootStr.size(), rootStr) != 0) return std::nullopt;
  if (std::filesystem::file_size(full, ec) > kMaxFileSize || ec) return std::nullopt;
  return full;
}

}  // namespace

class Server::Impl : public std::enable_shared_from_this<Server::Impl>
#if RTCPEER_HAVE_REDIS
    , public ClusterHost
#endif
{
 public:
  Impl(net::io_context& io, ServerOptions options)
      : io_(io), options_(std::move(options)), acceptor_(io), timer_(io), core_(random_, options_.limits) {}

  Status start();
  void stop();
  std::uint16_t port() const { return port_; }
  const Lobbies& lobbies() const { return core_; }
  const ServerOptions& options() const { return options_; }
  const std::filesystem::path& webRoot() const { return webRoot_; }

  Timestamp now() const
#if RTCPEER_HAVE_REDIS
      override
#endif
  {
    return fromMicros(std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() - epoch_)
                          .count());
  }

  // Core entry points used by the sessions; each drains the resulting actions.
  ConnId opened(std::shared_ptr<SessionBase> session) {
    const ConnId id = nextConn_++;
    sessions_.emplace(id, std::move(session));
    core_.open(id, now());
    drain();
    return id;
  }
  // Each connection speaks the protocol of its first frame: JSON (Godot 4.x demo) or lines (3.x demo), which
  // are translated to and from JSON around the core (line_protocol.hpp).
  void textFrame(ConnId id, std::string_view frame) {
    Dialect& dialect = dialects_[id];
    if (dialect == Dialect::Unknown) dialect = detectDialect(frame);
    std::string translated;
    if (dialect == Dialect::Lines) {
      auto m = parseLine(frame);
      if (!m) {
        if (auto it = sessions_.find(id); it != sessions_.end()) it->second->close(kCloseProtocolError, m.reason());
        return drain();
      }
      translated = serialize(*m);
      frame = translated;
    }
#if RTCPEER_HAVE_REDIS
    if (cluster_ && cluster_->textFrame(id, frame)) return drain();
#endif
    core_.text(id, frame, now());
    drain();
  }
  void binaryFrame(ConnId id) {
#if RTCPEER_HAVE_REDIS
    if (cluster_ && cluster_->binaryFrame(id)) return drain();
#endif
    core_.binary(id, now());
    drain();
  }
  void tooLarge(ConnId id) {
#if RTCPEER_HAVE_REDIS
    if (cluster_ && cluster_->tooLarge(id)) return drain();
#endif
    core_.tooLarge(id, now());
    drain();
  }
  void ended(ConnId id) {
    sessions_.erase(id);
    dialects_.erase(id);
#if RTCPEER_HAVE_REDIS
    if (cluster_ && cluster_->ended(id)) return drain();
#endif
    core_.closed(id, now());
    drain();
  }

  void whenReady(std::function<void(Status)> callback) {
    if (!readyStatus_) {
      readyCallback_ = std::move(callback);
      return;
    }
    net::post(io_, [callback = std::move(callback), status = *readyStatus_] { callback(status); });
  }
  std::string serverId() const {
#if RTCPEER_HAVE_REDIS
    if (cluster_) return cluster_->serverId();
#endif
    return {};
  }

#if RTCPEER_HAVE_REDIS
  // ClusterHost
  Lobbies& core() override { return core_; }
  ConnId newConnId() override { return nextConn_++; }
  void deliver(Action action) override;
  void drain() override;
#else
  void deliver(Action action);
  void drain();
#endif

 private:
  template <class Stream>
  friend class HttpSession;

  void accept();
  void arm();
  void becomeReady(Status status);

  net::io_context& io_;
  ServerOptions options_;
  tcp::acceptor acceptor_;
  net::steady_timer timer_;
  std::optional<ssl::context> tls_;
  std::filesystem::path webRoot_;
  CryptoRandom random_;
  Lobbies core_;
  std::unordered_map<ConnId, std::shared_ptr<SessionBase>> sessions_;
  std::unordered_map<ConnId, Dialect> dialects_;
  ConnId nextConn_ = 1;
  std::uint16_t port_ = 0;
  bool stopped_ = false;
  Timestamp armedFor_ = kNever;
  std::optional<Status> readyStatus_;
  std::function<void(Status)> readyCallback_;
#if RTCPEER_HAVE_REDIS
  std::unique_ptr<Cluster> cluster_;
#endif
  const std::chrono::steady_clock::time_point epoch_ = std::chrono::steady_clock::now();

 public:
  ssl::context* tls() { return tls_ ? &*tls_ : nullptr; }
  bool stopped() const { return stopped_; }
};

namespace {

// One WebSocket after the upgrade. Writes are queued (Beast allows one at a time); a close waits for the queue.
template <class Stream>
class WsSession : public SessionBase, public std::enable_shared_from_this<WsSession<Stream>> {
 public:
  WsSession(std::shared_ptr<Server::Impl> server, Stream&& stream) : server_(std::move(server)), ws_(std::move(stream)) {}

  void run(http::request<http::string_body> req) {
    beast::get_lowest_layer(ws_).expires_never();
    websocket::stream_base::timeout t{};
    t.handshake_timeout = std::chrono::seconds(5);
    t.idle_timeout = std::chrono::seconds(30);
    t.keep_alive_pings = true;
    ws_.set_option(t);
    // No Beast limit: Beast would refuse an oversized message itself with close code 1009, while the protocol
    // answers every bad input with 4000 and a reason. read() enforces Limits::maxMessageSize instead.
    ws_.read_message_max(0);
    ws_.async_accept(req, [self = this->shared_from_this()](beast::error_code ec) {
      if (ec) return;
      self->id_ = self->server_->opened(self);
      self->read();  // also when the core closed it at once: reading completes the close handshake
    });
  }

  void send(std::string text) override {
    if (closing_) return;
    queuedBytes_ += text.size();
    if (queuedBytes_ > server_->options().maxQueuedBytes) {
      RTCPEER_LOG(Warning, "signaling", "peer " << id_ << " reads too slowly; dropping it");
      return abort();
    }
    queue_.push_back(std::move(text));
    if (queue_.size() == 1) writeNext();
  }

  void close(int code, const std::string& reason) override {
    if (closing_) return;
    closing_ = true;
    // A WebSocket close reason is at most 123 bytes (RFC 6455 §5.5: control frame payloads are <= 125).
    closeReason_.code = static_cast<std::uint16_t>(code);
    closeReason_.reason = reason.substr(0, 123);
    if (queue_.empty()) closeNow();
  }

  void abort() override {
    closing_ = true;
    queue_.clear();
    beast::error_code ec;
    beast::get_lowest_layer(ws_).socket().close(ec);
  }

 private:
  // Reads message pieces, never buffering more than one byte past the size limit: that byte is enough to know a
  // message is too large, however much more of it (or of a binary one) is still on its way. Reading goes on
  // after a close, discarding, because it is what completes the close handshake and reports the end.
  void read() {
    const std::size_t room = server_->options().limits.maxMessageSize + 1 - buffer_.size();
    ws_.async_read_some(buffer_, room, [self = this->shared_from_this()](beast::error_code ec, std::size_t) {
      if (ec) return self->server_->ended(self->id_);
      self->received();
      self->read();
    });
  }

  void received() {
    if (closing_) return buffer_.clear();
    if (!ws_.got_text()) {
      buffer_.clear();
      return server_->binaryFrame(id_);
    }
    if (buffer_.size() > server_->options().limits.maxMessageSize) {
      buffer_.clear();
      return server_->tooLarge(id_);
    }
    if (!ws_.is_message_done()) return;
    const auto data = buffer_.cdata();
    server_->textFrame(id_, std::string_view(static_cast<const char*>(data.data()), data.size()));
    buffer_.clear();
  }

  void writeNext() {
    ws_.text(true);
    ws_.async_write(net::buffer(queue_.front()), [self = this->shared_from_this()](beast::error_code ec, std::size_t) {
      if (self->queue_.empty()) return;  // aborted
      self->queuedBytes_ -= self->queue_.front().size();
      self->queue_.pop_front();
      if (ec) return self->abort();
      if (!self->queue_.empty()) return self->writeNext();
      if (self->closing_) self->closeNow();
    });
  }

  void closeNow() {
    ws_.async_close(closeReason_, [self = this->shared_from_this()](beast::error_code) {});
  }

  std::shared_ptr<Server::Impl> server_;
  websocket::stream<Stream> ws_;
  beast::flat_buffer buffer_;
  std::deque<std::string> queue_;
  std::size_t queuedBytes_ = 0;
  ConnId id_ = 0;
  bool closing_ = false;
  websocket::close_reason closeReason_;
};

}  // namespace

// Reads HTTP requests: a WebSocket upgrade becomes a WsSession, anything else is a static file (or 404).
template <class Stream>
class HttpSession : public std::enable_shared_from_this<HttpSession<Stream>> {
 public:
  HttpSession(std::shared_ptr<Server::Impl> server, Stream&& stream)
      : server_(std::move(server)), stream_(std::move(stream)) {}

  void run() {
    if constexpr (std::is_same_v<Stream, TlsStream>) {
      beast::get_lowest_layer(stream_).expires_after(kHttpTimeout);
      stream_.async_handshake(ssl::stream_base::server, [self = this->shared_from_this()](beast::error_code ec) {
        if (!ec) self->read();
      });
    } else {
      read();
    }
  }

 private:
  void read() {
    req_ = {};
    beast::get_lowest_layer(stream_).expires_after(kHttpTimeout);
    http::async_read(stream_, buffer_, req_, [self = this->shared_from_this()](beast::error_code ec, std::size_t) {
      if (ec || self->server_->stopped()) return;
      if (websocket::is_upgrade(self->req_)) {
        std::make_shared<WsSession<Stream>>(self->server_, std::move(self->stream_))->run(std::move(self->req_));
        return;
      }
      self->respond();
    });
  }

  void respond() {
    auto res = std::make_shared<http::response<http::string_body>>();
    res->version(req_.version());
    res->keep_alive(req_.keep_alive());
    res->set(http::field::server, "rtcpeer");
    res->set(http::field::cache_control, "no-store");
    std::optional<std::filesystem::path> file;
    if (!server_->webRoot().empty() && (req_.method() == http::verb::get || req_.method() == http::verb::head))
      file = resolveFile(server_->webRoot(), req_.target());
    if (file) {
      std::ifstream in(*file, std::ios::binary);
      res->body().assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
      res->result(http::status::ok);
      res->set(http::field::content_type, mimeType(*file));
    } else {
      res->result(http::status::not_found);
      res->set(http::field::content_type, "text/plain");
      res->body() = "not found\n";
    }
    res->prepare_payload();
    if (req_.method() == http::verb::head) res->body().clear();
    http::async_write(stream_, *res, [self = this->shared_from_this(), res](beast::error_code ec, std::size_t) {
      if (ec || !res->keep_alive()) {
        beast::error_code ignored;
        beast::get_lowest_layer(self->stream_).socket().shutdown(tcp::socket::shutdown_send, ignored);
        return;
      }
      self->read();
    });
  }

  std::shared_ptr<Server::Impl> server_;
  Stream stream_;
  beast::flat_buffer buffer_;
  http::request<http::string_body> req_;
};

Status Server::Impl::start() {
  if (!options_.webRoot.empty()) {
    std::error_code ec;
    webRoot_ = std::filesystem::canonical(options_.webRoot, ec);
    if (ec || !std::filesystem::is_directory(webRoot_)) return fail("web root " + options_.webRoot + " is not a directory");
  }
  if (!options_.certificateFile.empty() || !options_.privateKeyFile.empty()) {
    tls_.emplace(ssl::context::tls_server);
    beast::error_code ec;
    tls_->use_certificate_chain_file(options_.certificateFile, ec);
    if (ec) return fail("cannot load certificate " + options_.certificateFile + ": " + ec.message());
    tls_->use_private_key_file(options_.privateKeyFile, ssl::context::pem, ec);
    if (ec) return fail("cannot load private key " + options_.privateKeyFile + ": " + ec.message());
  }
  beast::error_code ec;
  const auto address = net::ip::make_address(options_.address, ec);
  if (ec) return fail("invalid listen address " + options_.address);
  const tcp::endpoint endpoint(address, options_.port);
  acceptor_.open(endpoint.protocol(), ec);
  if (!ec) acceptor_.set_option(net::socket_base::reuse_address(true), ec);
  if (!ec) acceptor_.bind(endpoint, ec);
  if (!ec) acceptor_.listen(net::socket_base::max_listen_connections, ec);
  if (ec) return fail("cannot listen on " + options_.address + ":" + std::to_string(options_.port) + ": " + ec.message());
  port_ = acceptor_.local_endpoint().port();
  if (options_.redisUrl.empty()) {
    accept();
    becomeReady(okStatus());
    return okStatus();
  }
#if RTCPEER_HAVE_REDIS
  auto url = parseRedisUrl(options_.redisUrl);
  if (!url) return fail(url.reason());
  core_.trackLobbies(true);
  cluster_ = std::make_unique<Cluster>(io_, *this, ClusterOptions{*url, options_.redisTtl});
  cluster_->start([self = weak_from_this()](Status status) {
    auto server = self.lock();
    if (!server || server->stopped_) return;
    if (status.ok()) server->accept();
    else server->stop();
    server->becomeReady(status);
  });
  return okStatus();
#else
  return fail("--redis needs a build with Redis support: hiredis was not found when rtcpeer was configured "
              "(install libhiredis-dev and configure with -DRTCPEER_REDIS=ON)");
#endif
}

void Server::Impl::becomeReady(Status status) {
  readyStatus_ = status;
  if (auto callback = std::move(readyCallback_)) {
    readyCallback_ = nullptr;
    net::post(io_, [callback = std::move(callback), status] { callback(status); });
  }
}

void Server::Impl::accept() {
  acceptor_.async_accept([self = shared_from_this()](beast::error_code ec, tcp::socket socket) {
    if (self->stopped_) return;
    if (!ec) {
      if (self->tls_)
        std::make_shared<HttpSession<TlsStream>>(self, TlsStream(PlainStream(std::move(socket)), *self->tls_))->run();
      else
        std::make_shared<HttpSession<PlainStream>>(self, PlainStream(std::move(socket)))->run();
    }
    self->accept();
  });
}

void Server::Impl::stop() {
  if (stopped_) return;
  stopped_ = true;
  beast::error_code ec;
  acceptor_.close(ec);
  timer_.cancel();
#if RTCPEER_HAVE_REDIS
  if (cluster_) cluster_->stop();
#endif
  // Sessions hold the Impl and the map holds the sessions: break the cycle here, the pending handlers still end
  // each session (and tell the core) if the io_context runs on.
  auto sessions = std::move(sessions_);
  sessions_.clear();
  for (auto& [id, s] : sessions) s->abort();
}

void Server::Impl::deliver(Action action) {
  auto it = sessions_.find(action.conn);
  if (it == sessions_.end()) return;
  if (action.kind != Action::Kind::Send) {
    it->second->close(action.code, action.text);
  } else if (auto d = dialects_.find(action.conn); d != dialects_.end() && d->second == Dialect::Lines) {
    auto m = parseMessage(action.text);
    it->second->send(m ? serializeLine(*m) : std::move(action.text));
  } else {
    it->second->send(std::move(action.text));
  }
}

void Server::Impl::drain() {
  while (auto action = core_.pollAction()) {
#if RTCPEER_HAVE_REDIS
    if (cluster_ && cluster_->route(*action)) continue;
#endif
    deliver(std::move(*action));
  }
#if RTCPEER_HAVE_REDIS
  if (cluster_)
    while (auto event = core_.pollLobbyEvent()) cluster_->lobbyEvent(*event);
#endif
  arm();
}

void Server::Impl::arm() {
  const Timestamp deadline = core_.nextDeadline();
  if (deadline == armedFor_ || stopped_) return;
  armedFor_ = deadline;
  if (deadline == kNever) {
    timer_.cancel();
    return;
  }
  timer_.expires_at(epoch_ + std::chrono::microseconds(toMicros(deadline)));
  timer_.async_wait([self = weak_from_this()](beast::error_code ec) {
    auto server = self.lock();
    if (ec || !server) return;
    server->armedFor_ = kNever;
    server->core_.handleTimeout(server->now());
    server->drain();
  });
}

Server::Server(net::io_context& io, ServerOptions options)
    : impl_(std::make_shared<Impl>(io, std::move(options))) {}
Server::~Server() { stop(); }
Status Server::start() { return impl_->start(); }
void Server::stop() { impl_->stop(); }
std::uint16_t Server::port() const { return impl_->port(); }
void Server::whenReady(std::function<void(Status)> callback) { impl_->whenReady(std::move(callback)); }
std::string Server::serverId() const { return impl_->serverId(); }
bool serverHasRedis() { return RTCPEER_HAVE_REDIS != 0; }
const Lobbies& Server::lobbies() const { return impl_->lobbies(); }

}  // namespace rtcpeer::signaling
