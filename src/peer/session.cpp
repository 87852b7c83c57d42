// Session, the I/O shell around the sans-IO core (peer::Connection): poll() reads the clock and the sockets, the
// TURN streams and the resolver, feeds the core and carries out its outputs (drive()); the API calls forward to
// the core with the time; the public DataChannel objects are kept in step with the core's channel outputs. The
// socket code is in four functions of its own (bindSockets, receiveAll, stage, flush).
#include "peer/session.hpp"

#include <algorithm>
#include <span>

#include "common/log.hpp"

namespace rtcpeer {

namespace {

// Receive rounds per socket in one poll() (each up to UdpSocket::kBatch datagrams): keeps one poll() finite.
constexpr int kMaxReceiveRounds = 16;

bool isLoopbackLiteral(const std::string& s) {
  auto a = SocketAddress::parse(s, 0);
  return a && a->isLoopback();
}

}  // namespace

Result<std::shared_ptr<Session>> Session::create(const Configuration& config, std::shared_ptr<net::Poller> poller) {
  auto core = peer::Connection::create(config, defaultRandom());
  if (!core) return core.failure();
  return std::shared_ptr<Session>(new Session(std::move(*core), std::move(poller)));
}

Session::Session(std::unique_ptr<peer::Connection> core, std::shared_ptr<net::Poller> poller)
    : core_(std::move(core)), poller_(std::move(poller)) {}

Session::~Session() { close(); }

// ---------------------------------------------------------------------------------------------------------------
// API calls: the core decides, the shell supplies the time (and the sockets once there is a local description).

Result<std::shared_ptr<DataChannel>> Session::createDataChannel(std::string_view label, const DataChannelInit& init) {
  auto key = core_->createDataChannel(label, init, net::now());
  if (!key) return key.failure();
  auto impl = std::make_shared<DataChannel::Impl>();
  impl->session = weak_from_this();
  impl->releases = releases_;
  impl->key = *key;
  syncChannel(*impl);
  channelImpls_[*key] = impl;
  return detail::DataChannelAccess::make(impl);
}

Outcome Session::createOffer() {
  auto o = core_->createOffer();
  drive(net::now());  // hands the description to signals_
  return o;
}

Outcome Session::setLocalDescription(std::string_view type, std::string_view sdp) {
  const Timestamp now = net::now();
  auto o = core_->setLocalDescription(type, sdp, now);
  if (o.code == Error::Ok && core_->wantsLocalAddresses()) o = bindSockets(now);
  followUfrag();
  drive(now);
  return o;
}

Outcome Session::setRemoteDescription(std::string_view type, std::string_view sdp) {
  const Timestamp now = net::now();
  auto o = core_->setRemoteDescription(type, sdp, now);
  followUfrag();
  drive(now);
  return o;
}

// A remote offer with new ICE credentials restarts ICE, and our ufrag changes with it: a shared port (udpMux)
// must route the peer's checks for the new ufrag here (and the old one's until the next restart).
void Session::followUfrag() {
  const std::string& ufrag = core_->localCredentials().ufrag;
  if (sockets_.empty() || ufrag == boundUfrag_) return;
  for (auto& socket : sockets_)
    if (auto st = socket.setUfrag(ufrag); !st) RTCPEER_LOG(Warning, "peer", "udp mux: " << st.reason());
  boundUfrag_ = ufrag;
}

Outcome Session::addIceCandidate(std::string_view media, int index, std::string_view name) {
  const Timestamp now = net::now();
  auto o = core_->addIceCandidate(media, index, name, now);
  if (o.code == Error::Ok) drive(now);
  return o;
}

Error Session::send(DataChannel::Impl& channel, ByteView message, bool text) {
  // Not driven here: poll() sends what several calls queued in as few packets as possible.
  auto o = core_->send(channel.key, message, text, net::now());
  if (o.code != Error::Ok) return channel.failWith(o.code, std::move(o.reason));
  channel.lastError.clear();
  return Error::Ok;
}

void Session::closeChannel(DataChannel::Impl& channel) {
  core_->closeChannel(channel.key, net::now());
  syncChannel(channel);
}

void Session::releaseChannel(datachannel::ChannelKey key) {
  core_->releaseChannel(key, net::now());
  channelImpls_.erase(key);
}

void Session::closeReleased() {
  if (!releases_->any.load(std::memory_order_acquire)) return;
  std::vector<std::shared_ptr<DataChannel::Impl>> list;
  {
    std::lock_guard lock(releases_->mutex);
    list.swap(releases_->released);
    releases_->any.store(false, std::memory_order_relaxed);
  }
  for (const auto& impl : list) {
    released(impl->unreadCost);  // its unread messages go with it: they no longer hold the window
    releaseChannel(impl->key);
  }
}

// ---------------------------------------------------------------------------------------------------------------
// The loop

Outcome Session::poll() {
  if (closed_) return Outcome::ok();
  for (const auto& s : sockets_)
    if (auto t = s.checkThread(); !t) return failure(Error::Failed, t.reason());
  closeReleased();
  const Timestamp now = net::now();
  receiveAll(now);
  serviceStreams(now);
  serviceResolver(now);
  core_->handleTimeout(now);
  drive(now);
  return Outcome::ok();
}

Timestamp Session::nextDeadline() const {
  if (closed_) return kNever;
  // Work queued by API calls between polls (a message to send, a signal to emit) is due now, so that an
  // application sleeping in wait() until nextDeadline() does not sit on it.
  if (core_->hasWork() || !signals_.empty() || releases_->any.load(std::memory_order_relaxed)) return net::now();
  Timestamp t = core_->nextDeadline();
  if (resolver_) t = earliest(t, resolver_->nextDeadline());
  return t;
}

ConnectionStats Session::stats() const {
  ConnectionStats s = core_->stats();
  for (const auto& socket : sockets_) {
    if (!socket.shared()) continue;
    const auto m = socket.muxStats();  // zeros on another thread than the port's
    s.udpMux = true;
    s.udpMuxConnections = std::max(s.udpMuxConnections, m.members);
    s.udpMuxDroppedFull += m.memberDroppedFull;
    s.udpMuxDroppedUnknown += m.droppedUnknown;
  }
  return s;
}

Outcome Session::wait(std::chrono::milliseconds timeout) {
  // Clamped before the conversion to microseconds, which milliseconds::max() would overflow; waking up after a
  // day to find nothing changed is harmless.
  timeout = std::clamp(timeout, std::chrono::milliseconds(0), std::chrono::milliseconds(std::chrono::hours(24)));
  const Timestamp deadline = earliest(nextDeadline(), net::now() + std::chrono::duration_cast<Duration>(timeout));
  const int fd = poller_->fd();  // every socket and stream of this session is in it
  auto r = net::wait(std::span(&fd, 1), deadline);
  if (!r) return failure(Error::Failed, r.reason());
  return Outcome::ok();
}

// Carries out the core's outputs until it has nothing left before its next deadline.
void Session::drive(Timestamp now) {
  for (;;) {
    auto o = core_->pollOutput(now);
    if (auto* t = std::get_if<peer::out::Transmit>(&o)) {  // the data path: checked first
      if (t->transport == ice::TurnTransport::Udp) stage(t->local, t->remote, t->data);
      else writeStream(t->transport, t->remote, t->data);
      continue;
    }
    if (std::holds_alternative<peer::out::Timeout>(o)) break;
    handleOutput(o);
  }
  flush();
  if (!streams_.empty()) watchStreams();
}

// Every output but Transmit (drive() takes those first) and Timeout.
void Session::handleOutput(peer::Output& o) {
  namespace out = peer::out;
  if (std::holds_alternative<out::Flush>(o)) {
    flush();
  } else if (auto* m = std::get_if<out::Message>(&o)) {
    auto it = channelImpls_.find(m->key);
    auto impl = it == channelImpls_.end() ? nullptr : it->second.lock();
    if (!impl) {
      core_->released(m->cost);
      return;
    }
    impl->inbox.push_back({std::move(m->data), m->text});
    impl->unreadCost += m->cost;
  } else if (auto* c = std::get_if<out::ChannelChanged>(&o)) {
    handleChannelOutput(c->key, c->reason, false);
  } else if (auto* r = std::get_if<out::ChannelReceived>(&o)) {
    handleChannelOutput(r->key, {}, true);
  } else if (auto* d = std::get_if<out::Description>(&o)) {
    signals_.push_back({Signal::Description{std::move(d->type), std::move(d->sdp)}});
  } else if (auto* c2 = std::get_if<out::Candidate>(&o)) {
    signals_.push_back({Signal::Candidate{std::move(c2->mid), c2->index, std::move(c2->line)}});
  } else if (auto* g = std::get_if<out::Gathering>(&o)) {
    signals_.push_back({g->state});
  } else if (auto* s = std::get_if<out::OpenStream>(&o)) {
    openStream(*s);
  } else if (auto* n = std::get_if<out::Resolve>(&o)) {
    resolve(*n);
  }
  else if (auto* st = std::get_if<out::StateChange>(&o)) {
    // connectionState() reads the core. An ended connection may sit unpolled in the application: it no longer
    // watches a shared port (udpMux) for the others.
    if (st->state == ConnectionState::Failed || st->state == ConnectionState::Closed)
      for (auto& socket : sockets_) socket.retire();
  }
}

void Session::handleChannelOutput(peer::ChannelKey key, const std::string& reason, bool received) {
  if (received) {
    auto impl = std::make_shared<DataChannel::Impl>();
    impl->session = weak_from_this();
    impl->releases = releases_;
    impl->key = key;
    syncChannel(*impl);
    channelImpls_[key] = impl;
    signals_.push_back({detail::DataChannelAccess::make(std::move(impl))});
    return;
  }
  auto it = channelImpls_.find(key);
  auto impl = it == channelImpls_.end() ? nullptr : it->second.lock();
  if (!impl) return;
  syncChannel(*impl);
  if (!reason.empty()) impl->lastError = reason;
}

void Session::syncChannel(DataChannel::Impl& impl) {
  const auto* info = core_->channelInfo(impl.key);
  if (!info) {
    impl.state = ReadyState::Closed;
    return;
  }
  impl.label = info->label;
  impl.protocol = info->protocol;
  impl.id = info->stream ? *info->stream : DataChannel::kUnset;
  impl.ordered = info->reliability.ordered;
  impl.maxRetransmits = info->reliability.maxRetransmits ? *info->reliability.maxRetransmits : DataChannel::kUnset;
  impl.maxPacketLifeTime =
      info->reliability.maxPacketLifeTime ? *info->reliability.maxPacketLifeTime : DataChannel::kUnset;
  impl.negotiated = info->negotiated;
  impl.state = core_->readyState(impl.key);
}

void Session::close() {
  if (closed_) return;
  core_->close(net::now());
  // The goodbye (ABORT, close_notify, TURN deallocations) is all the core yields now.
  for (;;) {
    auto o = core_->pollOutput(net::now());
    if (std::holds_alternative<peer::out::Timeout>(o)) break;
    if (auto* t = std::get_if<peer::out::Transmit>(&o)) {
      if (t->transport == ice::TurnTransport::Udp) stage(t->local, t->remote, t->data);
      else writeStream(t->transport, t->remote, t->data);
    } else if (std::holds_alternative<peer::out::Flush>(o)) {
      flush();
    }
  }
  flush();
  for (auto& s : streams_)
    if (s.client) (void)s.client->service();
  for (auto& [key, weak] : channelImpls_)
    if (auto impl = weak.lock()) impl->state = ReadyState::Closed;
  std::vector<std::shared_ptr<DataChannel::Impl>> dropped;  // channels dropped since the last poll(): nothing to close
  {
    std::lock_guard lock(releases_->mutex);
    releases_->closed = true;
    releases_->any.store(false, std::memory_order_relaxed);
    dropped.swap(releases_->released);
  }
  closed_ = true;
  signals_.clear();
  for (auto& s : streams_)
    if (s.client) poller_->unwatch(s.client->fd());
  for (auto& s : sockets_)
    if (s.fd() >= 0) poller_->unwatch(s.fd());
  streams_.clear();
  resolver_.reset();  // cancels outstanding queries and unwatches its sockets
  names_.clear();
  sockets_.clear();
}

// ---------------------------------------------------------------------------------------------------------------
// Sockets

// Binds the UDP sockets once the core has a local description, and gives their addresses to the core.
Outcome Session::bindSockets(Timestamp now) {
  const Configuration& config = core_->configuration();
  // Names and IP literals are separate filters in net::BindOptions (both must match), so bind them apart.
  net::BindOptions names, addresses;
  for (const auto& entry : config.interfaces) {
    if (auto a = SocketAddress::parse(entry, 0)) addresses.addresses.push_back(*a);
    else names.interfaces.push_back(entry);
  }
  for (net::BindOptions* o : {&names, &addresses}) {
    o->portMin = config.portRangeBegin;
    o->portMax = config.portRangeEnd;
    o->includeLoopback = std::any_of(config.interfaces.begin(), config.interfaces.end(), isLoopbackLiteral);
  }
  std::string why;
  boundUfrag_ = core_->localCredentials().ufrag;
  const net::MuxJoin join{boundUfrag_, poller_};
  auto bindInto = [&](const net::BindOptions& o) {
    auto bound = net::bindLocal(o, config.udpMux ? &join : nullptr);
    if (!bound) {
      why = bound.reason();
      return;
    }
    for (auto& s : *bound) sockets_.push_back(std::move(s));
  };
  if (config.interfaces.empty()) {
    bindInto(names);
    if (sockets_.empty()) {  // e.g. a network namespace with only `lo`
      RTCPEER_LOG(Info, "peer", "no usable non-loopback interface (" << why << "); falling back to loopback");
      // One loopback address, IPv4's (else IPv6's): a peer on this host reaches either, and a crowd of local
      // connections then holds half the sockets, candidates and checks.
      names.includeLoopback = true;
      names.ipv6 = false;
      bindInto(names);
      if (sockets_.empty()) {
        names.ipv4 = false;
        names.ipv6 = true;
        bindInto(names);
      }
    }
  } else {
    if (!names.interfaces.empty()) bindInto(names);
    if (!addresses.addresses.empty()) bindInto(addresses);
  }
  if (sockets_.empty()) {
    core_->failTransport("cannot bind any UDP socket: " + why, now);
    return failure(Error::Unavailable, "cannot bind any UDP socket: " + why);
  }
  anyShared_ = std::any_of(sockets_.begin(), sockets_.end(), [](const net::LocalSocket& s) { return s.shared(); });
  std::vector<SocketAddress> locals;
  for (const auto& s : sockets_) {
    locals.push_back(s.localAddress());
    if (s.fd() < 0) continue;  // a registration on a shared socket: the mux put itself in poller_ at join
    if (auto w = poller_->watch(s.fd()); !w) {
      core_->failTransport("cannot watch the UDP sockets: " + w.reason(), now);
      return failure(Error::Unavailable, "cannot watch the UDP sockets: " + w.reason());
    }
  }
  core_->setLocalAddresses(locals, now);
  return Outcome::ok();
}

// Everything the sockets hold, a batch at a time; the core's outputs are carried out after each batch (its
// views die at the next recvBatch; the core has copied what it keeps).
void Session::receiveAll(Timestamp now) {
  // Several sockets of its own (an IPv4 and an IPv6 address, say): one look at the connection's epoll set tells
  // whether any holds data, so an idle poll() costs one system call rather than one per socket. A shared socket
  // (udpMux) is read on every poll regardless: each member's poll helps drain the port in a burst.
  if (sockets_.size() > 1 && !anyShared_) {
    const int fd = poller_->fd();
    if (auto ready = net::wait(std::span(&fd, 1), Timestamp{}); ready && *ready == 0) return;
  }
  for (std::size_t i = 0; i < sockets_.size(); ++i) {
    for (int round = 0; round < kMaxReceiveRounds; ++round) {
      auto batch = sockets_[i].recvBatch();
      if (batch.empty()) break;
      for (const auto& d : batch) core_->handleDatagram(sockets_[i].localAddress(), d.remote, d.data, now);
      drive(now);
      if (batch.size() < net::UdpSocket::kBatch) break;  // drained: spare the syscall that would say so
    }
  }
}

std::optional<std::size_t> Session::socketFor(const SocketAddress& local) const {
  for (std::size_t i = 0; i < sockets_.size(); ++i)
    if (sockets_[i].localAddress() == local) return i;
  return std::nullopt;
}

// `data` stays valid until the core's next Flush, which flushes here first.
void Session::stage(const SocketAddress& local, const SocketAddress& remote, ByteView data) {
  auto socket = socketFor(local);
  if (!socket) return;
  staged_.push_back({*socket, remote, data});
  if (staged_.size() >= net::UdpSocket::kBatch) flush();
}

// One sendmmsg per socket for everything staged (a pump pass, or a batch of kBatch datagrams).
void Session::flush() {
  if (staged_.empty()) return;
  for (std::size_t s = 0; s < sockets_.size(); ++s) {
    outgoing_.clear();
    for (const auto& st : staged_)
      if (st.socket == s) outgoing_.push_back({st.remote, st.data});
    if (!outgoing_.empty()) sockets_[s].sendBatch(outgoing_);
  }
  staged_.clear();
}

// ---------------------------------------------------------------------------------------------------------------
// TURN TCP/TLS streams and ICE server names

void Session::openStream(const peer::out::OpenStream& o) {
  // TLS verifies the certificate against the system store (OpenSSL honours SSL_CERT_FILE/SSL_CERT_DIR) and the
  // URL's host name, or the server's IP address when the URL gave an IP literal.
  net::StreamOptions options;
  options.tls = o.transport == ice::TurnTransport::Tls;
  if (!SocketAddress::parse(o.host, 0)) options.serverName = o.host;
  auto c = net::StreamClient::connect(o.server, options);
  if (!c) {
    core_->handleStreamClosed(o.transport, o.server, c.reason(), net::now());
    return;
  }
  streams_.push_back({o.transport, o.server, std::move(*c)});
}

void Session::writeStream(ice::TurnTransport transport, const SocketAddress& server, ByteView data) {
  for (auto& s : streams_)
    if (s.transport == transport && s.server == server && s.client) return s.client->write(data);
}

// Finish connects and handshakes, send what is queued, feed what arrived to the core.
void Session::serviceStreams(Timestamp now) {
  for (auto& s : streams_) {
    if (!s.client) continue;
    auto bytes = s.client->service();
    if (!bytes) {
      poller_->unwatch(s.client->fd());
      s.client.reset();
      s.watched = false;
      core_->handleStreamClosed(s.transport, s.server, bytes.reason(), now);
      continue;
    }
    if (!bytes->empty()) core_->handleStreamInput(s.transport, s.server, *bytes, now);
  }
}

// TURN streams are watched for reading, and for writing while a connect is pending or bytes wait for space.
void Session::watchStreams() {
  for (auto& s : streams_) {
    if (!s.client) continue;
    const bool write = s.client->wantsWrite();
    if (s.watched && s.watchedWrite == write) continue;
    if (auto w = poller_->watch(s.client->fd(), write); !w) RTCPEER_LOG(Warning, "peer", w.reason());
    s.watched = true;
    s.watchedWrite = write;
  }
}

// "localhost" is answered at once (the system's resolver); other names go to c-ares, answered in poll().
void Session::resolve(const peer::out::Resolve& r) {
  const Timestamp now = net::now();
  if (r.host == "localhost") {
    auto address = net::resolve(r.host, r.port);
    if (address) core_->handleResolved(r.id, std::span(&*address, 1), {}, now);
    else core_->handleResolved(r.id, {}, address.reason(), now);
    return;
  }
  if (!resolver_) {
    auto created = net::Resolver::create(poller_);
    if (!created) {
      core_->handleResolved(r.id, {}, created.reason(), now);
      return;
    }
    resolver_ = std::move(*created);
  }
  names_.emplace_back(resolver_->resolve(r.host, r.port), r.id);
}

void Session::serviceResolver(Timestamp now) {
  if (!resolver_) return;
  resolver_->process();
  while (auto answer = resolver_->poll()) {
    auto it = std::find_if(names_.begin(), names_.end(), [&](const auto& n) { return n.first == answer->id; });
    if (it == names_.end()) continue;
    const std::uint64_t id = it->second;
    names_.erase(it);
    core_->handleResolved(id, answer->addresses, answer->error, now);
  }
}

}  // namespace rtcpeer
