#include "signaling/client.hpp"

#include <algorithm>
#include <utility>  // before Asio: Boost 1.74 uses std::exchange without including it (GCC 12)

#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <boost/asio.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/ssl.hpp>
#include <boost/beast/websocket.hpp>
#include <boost/beast/websocket/ssl.hpp>
#include <deque>
#include <map>
#include <optional>
#include <thread>
#include <type_traits>

#include "signaling/protocol.hpp"

namespace rtcpeer::signaling {
namespace {
namespace beast = boost::beast;
namespace websocket = beast::websocket;
namespace net = boost::asio;
namespace ssl = net::ssl;
using tcp = net::ip::tcp;
using PlainWs = websocket::stream<beast::tcp_stream>;
using TlsWs = websocket::stream<beast::ssl_stream<beast::tcp_stream>>;

constexpr int kCloseAbnormal = 1006;  // RFC 6455 §7.4.1: closed without a close frame
constexpr auto kConnectTimeout = std::chrono::seconds(10);  // TCP connect plus TLS handshake
}  // namespace

class SignalingClient::Impl {
 public:
  explicit Impl(ClientOptions options) : options_(std::move(options)) { connect(); }

  ~Impl() {
    // PeerConnections close before the socket goes; those a MultiplayerPeer shares live on there, without our
    // callbacks (they point at this object).
    for (auto& [id, pc] : peers_) {
      pc->onSessionDescriptionCreated(nullptr);
      pc->onIceCandidateCreated(nullptr);
    }
    peers_.clear();
  }

  void connect() {
    if (auto why = parseUrl(); !why.empty()) return failed(why);
    if (secure_) {
      if (auto why = setUpTls(); !why.empty()) return failed(why);
      wss_.emplace(io_, tls_);
    } else {
      ws_.emplace(io_);
    }
    resolver_.async_resolve(host_, port_, [this](beast::error_code ec, tcp::resolver::results_type results) {
      if (ec) return failed("cannot resolve " + host_ + ": " + ec.message());
      withWs([&](auto& ws) { connectTo(ws, results); });
    });
  }

  // ws[s]://host[:port][/path]; an IPv6 host in brackets.
  std::string parseUrl() {
    std::string_view rest = options_.url;
    const std::string bad = "signaling URL must be ws://host[:port][/path] or wss://...: " + options_.url;
    if (rest.substr(0, 6) == "wss://") {
      secure_ = true;
      rest.remove_prefix(6);
    } else if (rest.substr(0, 5) == "ws://") {
      rest.remove_prefix(5);
    } else {
      return bad;
    }
    const auto slash = rest.find('/');
    path_ = slash == std::string_view::npos ? "/" : std::string(rest.substr(slash));
    rest = rest.substr(0, slash);
    hostHeader_ = rest;
    std::string_view port = secure_ ? "443" : "80";
    if (!rest.empty() && rest.front() == '[') {
      const auto close = rest.find(']');
      if (close == std::string_view::npos) return bad;
      host_ = rest.substr(1, close - 1);
      rest.remove_prefix(close + 1);
      if (!rest.empty() && rest.front() != ':') return bad;
      if (!rest.empty()) port = rest.substr(1);
    } else {
      const auto colon = rest.find(':');
      host_ = rest.substr(0, colon);
      if (colon != std::string_view::npos) port = rest.substr(colon + 1);
    }
    port_ = port;
    if (host_.empty() || port_.empty()) return bad;
    return {};
  }

  std::string setUpTls() {
    tls_.set_options(ssl::context::default_workarounds | ssl::context::no_tlsv1 | ssl::context::no_tlsv1_1);
    if (!options_.verifyCertificate) {
      tls_.set_verify_mode(ssl::verify_none);
      return {};
    }
    tls_.set_verify_mode(ssl::verify_peer);
    beast::error_code ec;
    if (options_.caFile.empty()) tls_.set_default_verify_paths(ec);
    else tls_.load_verify_file(options_.caFile, ec);
    if (ec) return "cannot load CA certificates " + options_.caFile + ": " + ec.message();
    return {};
  }

  // Runs `f` on the WebSocket stream the URL's scheme chose.
  template <class F>
  void withWs(F&& f) {
    if (wss_) f(*wss_);
    else f(*ws_);
  }

  template <class Ws>
  void connectTo(Ws& ws, const tcp::resolver::results_type& endpoints) {
    beast::get_lowest_layer(ws).expires_after(kConnectTimeout);
    beast::get_lowest_layer(ws).async_connect(endpoints, [this, &ws](beast::error_code ec, const tcp::endpoint&) {
      if (ec) return failed("cannot connect to " + options_.url + ": " + ec.message());
      if constexpr (std::is_same_v<Ws, TlsWs>) {
        SSL* tls = ws.next_layer().native_handle();
        beast::error_code notIp;
        net::ip::make_address(host_, notIp);
        // SNI carries names only (RFC 6066 §3). The peer name check makes the handshake fail on a certificate
        // for another host, with a verify result that says so.
        if (notIp) SSL_ctrl(tls, SSL_CTRL_SET_TLSEXT_HOSTNAME, TLSEXT_NAMETYPE_host_name, host_.data());
        X509_VERIFY_PARAM* param = SSL_get0_param(tls);
        if (options_.verifyCertificate &&
            !(notIp ? X509_VERIFY_PARAM_set1_host(param, host_.c_str(), 0)
                    : X509_VERIFY_PARAM_set1_ip_asc(param, host_.c_str())))
          return failed("cannot set the TLS peer name " + host_);
        ws.next_layer().async_handshake(ssl::stream_base::client, [this, &ws](beast::error_code ec2) {
          if (ec2) return failed(tlsFailure(ws, ec2));
          handshake(ws);
        });
      } else {
        handshake(ws);
      }
    });
  }

  std::string tlsFailure(TlsWs& ws, const beast::error_code& ec) {
    const long verify = SSL_get_verify_result(ws.next_layer().native_handle());
    if (verify == X509_V_OK) return "TLS handshake with " + options_.url + " failed: " + ec.message();
    return "the TLS certificate of " + hostHeader_ + " is not trusted: " + X509_verify_cert_error_string(verify) +
           (options_.caFile.empty() ? " (checked against the system's CA certificates)"
                                    : " (checked against " + options_.caFile + ")");
  }

  template <class Ws>
  void handshake(Ws& ws) {
    beast::get_lowest_layer(ws).expires_never();
    ws.set_option(websocket::stream_base::timeout::suggested(beast::role_type::client));
    ws.async_handshake(hostHeader_, path_, [this](beast::error_code ec) {
      if (ec) return failed("WebSocket handshake with " + options_.url + " failed: " + ec.message());
      send(MessageType::Join, options_.mesh ? 0 : 1, options_.lobby);
      read();
    });
  }

  void read() {
    withWs([this](auto& ws) {
      ws.async_read(buffer_, [this, &ws](beast::error_code ec, std::size_t) {
        if (ec) {
          const auto& reason = ws.reason();
          if (ec == websocket::error::closed) return closed(reason.code, std::string(reason.reason.c_str()));
          return failed("signaling connection lost: " + ec.message());
        }
        const auto data = buffer_.cdata();
        handle(std::string_view(static_cast<const char*>(data.data()), data.size()));
        buffer_.consume(buffer_.size());
        read();
      });
    });
  }

  void handle(std::string_view frame) {
    auto parsed = parseMessage(frame);
    if (!parsed) {
      lastError_ = "server sent an invalid message: " + parsed.reason();
      return;
    }
    Message& m = *parsed;
    const int from = static_cast<int>(m.id);
    switch (m.type) {
      case MessageType::Id:
        id_ = from;
        mesh_ = m.data == "true";
        initMultiplayer();  // as the demo's client does on its ID message: the lobby's peers come before JOIN
        break;
      case MessageType::Join:
        state_ = State::Joined;
        lobby_ = m.data;
        if (onJoined_) onJoined_(lobby_, id_);
        break;
      case MessageType::PeerConnect:
        addPeer(from);
        break;
      case MessageType::PeerDisconnect:
        if (auto it = peers_.find(from); it != peers_.end()) {
          it->second->close();  // a MultiplayerPeer holding it drops the peer in its next poll()
          peers_.erase(it);
          if (onPeerDisconnected_) onPeerDisconnected_(from);
        }
        break;
      case MessageType::Offer:
      case MessageType::Answer:
        if (auto* pc = peer(from)) {
          const char* type = m.type == MessageType::Offer ? "offer" : "answer";
          if (pc->setRemoteDescription(type, m.data) != Error::Ok)
            lastError_ = std::string("cannot apply the ") + type + " of peer " + std::to_string(from) + ": " +
                         pc->lastError();
        }
        break;
      case MessageType::Candidate:
        if (auto* pc = peer(from)) {
          auto c = decodeCandidate(m.data);
          if (!c) lastError_ = "bad candidate from peer " + std::to_string(from) + ": " + c.reason();
          else if (pc->addIceCandidate(c->mid, c->index, c->candidate) != Error::Ok)
            lastError_ = "cannot add a candidate of peer " + std::to_string(from) + ": " + pc->lastError();
        }
        break;
      case MessageType::Seal:
        sealed_ = true;
        if (onSealed_) onSealed_();
        break;
    }
  }

  void addPeer(int remote) {
    if (remote == id_ || peers_.count(remote)) return;
    auto pc = std::make_shared<PeerConnection>();
    if (pc->initialize(options_.rtc) != Error::Ok) {
      lastError_ = "cannot create a peer connection: " + pc->lastError();
      return;
    }
    pc->onSessionDescriptionCreated([this, remote](const std::string& type, const std::string& sdp) {
      PeerConnection* self = peer(remote);
      if (!self) return;
      if (self->setLocalDescription(type, sdp) != Error::Ok) {
        lastError_ = "setLocalDescription failed: " + self->lastError();
        return;
      }
      send(type == "offer" ? MessageType::Offer : MessageType::Answer, remote, sdp);
    });
    pc->onIceCandidateCreated([this, remote](const std::string& mid, int index, const std::string& name) {
      send(MessageType::Candidate, remote, encodeCandidate(mid, index, name));
    });
    PeerConnection& ref = *pc;
    peers_.emplace(remote, pc);
    // A MultiplayerPeer creates its negotiated channels now, before the offer below.
    if (multiplayer_ && multiplayer_->addPeer(pc, remote) != Error::Ok)
      lastError_ = "MultiplayerPeer::addPeer(" + std::to_string(remote) + ") failed: " + multiplayer_->lastError();
    if (onPeerConnected_) onPeerConnected_(remote, ref);
    // multiplayer_client.gd: `if id < own_id: create_offer()`; the larger id offers, so the host never does.
    if (remote < id_ && ref.createOffer() != Error::Ok)
      lastError_ = "createOffer failed (create a data channel in onPeerConnected): " + ref.lastError();
  }

  void send(MessageType type, std::int64_t id, std::string data) {
    if (state_ == State::Closed || closing_) return;
    queue_.push_back(serialize(Message{type, id, std::move(data)}));
    if (queue_.size() == 1) writeNext();
  }

  void writeNext() {
    withWs([this](auto& ws) {
      ws.text(true);
      ws.async_write(net::buffer(queue_.front()), [this](beast::error_code ec, std::size_t) {
        if (queue_.empty()) return;
        queue_.pop_front();
        if (ec) return failed("signaling write failed: " + ec.message());
        if (!queue_.empty()) writeNext();
        else if (closing_) closeNow();
      });
    });
  }

  void close() {
    if (state_ == State::Closed || closing_) return;
    closing_ = true;
    if (queue_.empty()) closeNow();
  }
  void closeNow() {
    withWs([](auto& ws) { ws.async_close(websocket::close_code::normal, [](beast::error_code) {}); });
  }

  void failed(std::string why) {
    lastError_ = std::move(why);
    closed(kCloseAbnormal, lastError_);
  }
  void closed(int code, const std::string& reason) {
    if (state_ == State::Closed) return;
    state_ = State::Closed;
    queue_.clear();
    beast::error_code ignored;
    if (ws_ || wss_) withWs([&](auto& ws) { beast::get_lowest_layer(ws).socket().close(ignored); });
    if (code != websocket::close_code::normal && code != 0 && lastError_.empty())
      lastError_ = "signaling server closed the connection: " + std::to_string(code) + " " + reason;
    if (onClosed_) onClosed_(code, reason);
  }

  void poll() {
    io_.restart();
    io_.poll();
    for (auto& [id, pc] : peers_) pc->poll();
  }

  void wait(std::chrono::milliseconds timeout) {
    io_.restart();
    if (io_.poll_one()) return;
    if (!peers_.empty()) {
      // Peer traffic is the data path: sleep on it, in short slices so signaling is not delayed for long.
      peers_.begin()->second->wait(std::min(timeout, std::chrono::milliseconds(5)));
      return;
    }
    io_.restart();
    if (!io_.run_one_for(timeout) && state_ == State::Closed) std::this_thread::sleep_for(timeout);
  }

  // Mesh lobby -> createMesh(id); client/server lobby -> createServer() for the host, createClient(id) otherwise.
  void initMultiplayer() {
    if (!multiplayer_ || id_ == 0) return;
    const Error e = mesh_      ? multiplayer_->createMesh(id_, multiplayerConfig_)
                    : id_ == 1 ? multiplayer_->createServer(multiplayerConfig_)
                               : multiplayer_->createClient(id_, multiplayerConfig_);
    if (e != Error::Ok) lastError_ = "MultiplayerPeer initialization failed: " + multiplayer_->lastError();
  }

  void setMultiplayer(MultiplayerPeer* peer, std::vector<TransferMode> config) {
    multiplayer_ = peer;
    multiplayerConfig_ = std::move(config);
    if (!multiplayer_ || id_ == 0) return;
    initMultiplayer();
    for (auto& [id, pc] : peers_)
      if (pc->connectionState() == ConnectionState::New && multiplayer_->addPeer(pc, id) != Error::Ok)
        lastError_ = "MultiplayerPeer::addPeer(" + std::to_string(id) + ") failed: " + multiplayer_->lastError();
  }

  PeerConnection* peer(int id) {
    auto it = peers_.find(id);
    return it == peers_.end() ? nullptr : it->second.get();
  }

  ClientOptions options_;
  net::io_context io_;
  tcp::resolver resolver_{io_};
  ssl::context tls_{ssl::context::tls_client};
  bool secure_ = false;          ///< wss://
  std::optional<PlainWs> ws_;    ///< ws://
  std::optional<TlsWs> wss_;     ///< wss://, on tls_
  beast::flat_buffer buffer_;
  std::deque<std::string> queue_;
  std::string host_, port_, path_, hostHeader_;
  bool closing_ = false;
  State state_ = State::Connecting;
  int id_ = 0;
  std::string lobby_;
  bool mesh_ = false;
  bool sealed_ = false;
  std::string lastError_;
  std::map<int, std::shared_ptr<PeerConnection>> peers_;
  MultiplayerPeer* multiplayer_ = nullptr;
  std::vector<TransferMode> multiplayerConfig_;

  std::function<void(const std::string&, int)> onJoined_;
  PeerCallback onPeerConnected_;
  std::function<void(int)> onPeerDisconnected_;
  std::function<void()> onSealed_;
  std::function<void(int, const std::string&)> onClosed_;
};

SignalingClient::SignalingClient(ClientOptions options) : impl_(std::make_unique<Impl>(std::move(options))) {}
SignalingClient::~SignalingClient() = default;
void SignalingClient::onJoined(std::function<void(const std::string&, int)> cb) { impl_->onJoined_ = std::move(cb); }
void SignalingClient::onPeerConnected(PeerCallback cb) { impl_->onPeerConnected_ = std::move(cb); }
void SignalingClient::onPeerDisconnected(std::function<void(int)> cb) { impl_->onPeerDisconnected_ = std::move(cb); }
void SignalingClient::onSealed(std::function<void()> cb) { impl_->onSealed_ = std::move(cb); }
void SignalingClient::onClosed(std::function<void(int, const std::string&)> cb) { impl_->onClosed_ = std::move(cb); }
void SignalingClient::poll() { impl_->poll(); }
void SignalingClient::wait(std::chrono::milliseconds timeout) { impl_->wait(timeout); }
void SignalingClient::seal() { impl_->send(MessageType::Seal, 0, {}); }
void SignalingClient::close() { impl_->close(); }
SignalingClient::State SignalingClient::state() const { return impl_->state_; }
int SignalingClient::id() const { return impl_->id_; }
const std::string& SignalingClient::lobby() const { return impl_->lobby_; }
bool SignalingClient::mesh() const { return impl_->mesh_; }
bool SignalingClient::sealed() const { return impl_->sealed_; }
PeerConnection* SignalingClient::peer(int id) { return impl_->peer(id); }
void SignalingClient::setMultiplayerPeer(MultiplayerPeer* peer, std::vector<TransferMode> channelsConfig) {
  impl_->setMultiplayer(peer, std::move(channelsConfig));
}
std::vector<int> SignalingClient::peerIds() const {
  std::vector<int> ids;
  for (const auto& entry : impl_->peers_) ids.push_back(entry.first);
  return ids;
}
const std::string& SignalingClient::lastError() const { return impl_->lastError_; }

}  // namespace rtcpeer::signaling
