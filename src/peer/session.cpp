// Session's loop and lifetime: creation, poll() (receive, TURN streams, timers, the inter-layer pump), the ICE and
// DTLS events that bring the transport up, sending (one sendmmsg per socket and batch) and the connection state.
// Offer/answer and gathering are in negotiation.cpp, the SCTP and data-channel glue in channels.cpp.
#include "peer/session.hpp"

#include <algorithm>
#include <span>

#include "common/log.hpp"
#include "dtls/demux.hpp"
#include "ice/candidate.hpp"

namespace rtcpeer {

namespace {

// Bounds that keep one poll() finite however much traffic arrives: receive rounds per socket (each up to
// UdpSocket::kBatch datagrams) and passes of the inter-layer pump.
constexpr int kMaxReceiveRounds = 16;
constexpr int kMaxPumpPasses = 256;
// A connection with no DTLS traffic for this long frees OpenSSL's record buffers (most of an idle connection's memory).
constexpr Duration kIdleRelease = std::chrono::seconds(1);

// SCTP packets must fit one DTLS record in one datagram: AES-GCM costs 13 (header) + 8 (nonce) + 16 (tag).
std::size_t sctpPacketSize(std::size_t mtu, std::size_t dtlsPayload) {
  std::size_t size = mtu > 37 ? mtu - 37 : mtu;
  if (dtlsPayload) size = std::min(size, dtlsPayload);
  return size & ~std::size_t{3};
}

}  // namespace

Result<std::shared_ptr<Session>> Session::create(const Configuration& config, std::shared_ptr<net::Poller> poller) {
  std::string why;
  if (config.validate(&why) != Error::Ok) return rtcpeer::fail(why, static_cast<int>(Error::InvalidParameter));
  if (config.iceLite && config.relayOnly)
    return rtcpeer::fail("iceLite gathers host candidates only and cannot be combined with relayOnly",
                         static_cast<int>(Error::InvalidParameter));
  const bool pem = !config.certificatePem.empty() || !config.privateKeyPem.empty();
  auto certificate = pem ? dtls::Certificate::fromPem(config.certificatePem, config.privateKeyPem)
                         : dtls::Certificate::generate();
  if (!certificate && pem) return rtcpeer::fail(certificate.reason(), static_cast<int>(Error::InvalidParameter));
  if (!certificate) return rtcpeer::fail("cannot create the DTLS certificate: " + certificate.reason(),
                                static_cast<int>(Error::Failed));
  return std::shared_ptr<Session>(new Session(config, std::move(*certificate), std::move(poller)));
}

Session::Session(const Configuration& config, std::shared_ptr<const dtls::Certificate> certificate,
                 std::shared_ptr<net::Poller> poller)
    : config_(config),
      random_(defaultRandom()),
      certificate_(std::move(certificate)),
      poller_(std::move(poller)),
      channels_(config.maxMessageSize) {
  localCredentials_.ufrag = random_.iceChars(8);
  localCredentials_.pwd = random_.iceChars(24);
  sessionId_ = random_.u64() >> 1;  // < 2^63 (JSEP §5.2.1)
}

Session::~Session() { close(); }

// ---------------------------------------------------------------------------------------------------------------
// The loop

Outcome Session::poll() {
  if (closed_) return Outcome::ok();
  for (const auto& s : sockets_)
    if (auto t = s.checkThread(); !t) return failure(Error::Failed, t.reason());
  pending_ = false;
  const Timestamp now = net::now();
  for (std::size_t i = 0; i < sockets_.size(); ++i) {
    for (int round = 0; round < kMaxReceiveRounds; ++round) {
      auto batch = sockets_[i].recvBatch();
      if (batch.empty()) break;
      for (const auto& d : batch) receive(i, d, now);
      pump(now);  // the batch's views die at the next recvBatch; the cores have copied what they keep
      if (batch.size() < net::UdpSocket::kBatch) break;  // drained: spare the syscall that would say so
    }
  }
  serviceStreams(now);
  serviceResolver(now);
  fireTimers(now);
  pump(now);
  if (std::exchange(dtlsTraffic_, false)) lastDtlsTraffic_ = now;
  else if (dtls_ && now - lastDtlsTraffic_ >= kIdleRelease) {
    dtls_->releaseBuffers();
    if (sctp_) sctp_->releaseBuffers();
    txPool_ = {};
  }
  return Outcome::ok();
}

void Session::receive(std::size_t socket, const net::Received& d, Timestamp now) {
  if (!agent_) return;
  // The agent consumes STUN and TURN traffic; what remains (unwrapped if it came through a relay) is for DTLS.
  if (auto app = agent_->handleDatagram(sockets_[socket].localAddress(), d.remote, d.data, now))
    deliver(app->local, app->remote, app->data, now);
}

void Session::deliver(const SocketAddress& local, const SocketAddress& remote, ByteView data, Timestamp now) {
  // Only from an address ICE has validated: anything else could be an off-path injection (RFC 8445 §11). For a
  // relayed pair `local` is the relayed address. RTP and garbage are dropped.
  if (dtls::classify(data) != dtls::PacketKind::Dtls || !dtls_ || !agent_->isRemoteValid(local, remote)) return;
  agent_->noteReceived(local, remote, now);
  dtls_->handleInput(data, now);
  dtlsTraffic_ = true;
}

// TCP/TLS TURN streams: finish connects and handshakes, send what is queued, feed what arrived to the agent.
void Session::serviceStreams(Timestamp now) {
  if (!agent_) return;
  for (auto& s : streams_) {
    if (!s.client) continue;
    auto bytes = s.client->service();
    if (!bytes) {
      agent_->handleStreamClosed(s.transport, s.server, bytes.reason(), now);
      poller_->unwatch(s.client->fd());
      s.client.reset();
      s.watched = false;
      s.failed = true;
      continue;
    }
    if (!bytes->empty()) agent_->handleStreamInput(s.transport, s.server, *bytes, now);
  }
  while (auto d = agent_->pollStreamData()) deliver(d->local, d->remote, d->data, now);
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

void Session::fireTimers(Timestamp now) {
  if (agent_ && agent_->nextDeadline() <= now) agent_->handleTimeout(now);
  if (dtls_ && dtls_->nextDeadline() <= now) dtls_->handleTimeout(now);
  if (sctp_ && sctp_->nextDeadline() <= now) sctp_->handleTimeout(now);
  if (connectDeadline_ <= now && connection_ == ConnectionState::Connecting) {
    connectDeadline_ = kNever;
    failConnection("not connected within connectTimeout (" + std::to_string(config_.connectTimeout.count()) + " ms)");
  }
}

Timestamp Session::nextDeadline() const {
  if (closed_) return kNever;
  // Work queued by API calls between polls (a message to send, a signal to emit) is due now, so that an
  // application sleeping in wait() until nextDeadline() does not sit on it.
  if (pending_ || !signals_.empty()) return net::now();
  Timestamp t = connection_ == ConnectionState::Connecting ? connectDeadline_ : kNever;
  if (agent_) t = earliest(t, agent_->nextDeadline());
  if (resolver_) t = earliest(t, resolver_->nextDeadline());
  if (dtls_) t = earliest(t, dtls_->nextDeadline());
  if (sctp_) t = earliest(t, sctp_->nextDeadline());
  return t;
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

// Moves data and events between the layers until none has anything left, then sends what accumulated.
void Session::pump(Timestamp now) {
  for (int pass = 0; pass < kMaxPumpPasses && !closed_; ++pass) {
    bool progress = false;
    if (agent_) {
      while (auto e = agent_->pollEvent()) {
        progress = true;
        handleIceEvent(*e, now);
      }
    }
    if (dtls_) {
      while (auto e = dtls_->pollEvent()) {
        progress = true;
        // A close_notify ends the records before it: what they carried reaches the channels before they close
        // (a peer's last messages and its close() arrive in one batch; a close also ends the pass).
        if (e->type == dtls::Event::Type::Closed) {
          while (auto record = dtls_->pollApplicationData())
            if (sctp_) sctp_->handleInput(*record, now);
          pumpSctp();
        }
        handleDtlsEvent(*e, now);
      }
      while (auto record = dtls_->pollApplicationData()) {
        progress = true;
        if (sctp_) sctp_->handleInput(*record, now);
      }
    }
    progress |= pumpSctp();
    progress |= pumpChannels(now);
    if (sctp_ && dtls_ && dtls_->state() == dtls::State::Connected) {
      while (auto packet = sctp_->pollTransmit(now)) {
        progress = true;
        if (auto s = dtls_->send(*packet, now); !s) RTCPEER_LOG(Warning, "peer", s.reason());
      }
    }
    if (dtls_) {
      // A datagram for a direct pair goes out as the endpoint's own buffer, which stays valid until the endpoint
      // writes again: hence the flush at the end of every pass, before the next pass can call into DTLS.
      while (auto datagram = dtls_->pollTransmit()) {
        progress = dtlsTraffic_ = true;
        if (auto w = agent_ ? agent_->wrapForSelectedPair(*datagram, now) : std::nullopt)
          sendVia(w->transport, w->local, w->remote, w->data, w->data.data() == datagram->data());
      }
    }
    if (agent_) {
      while (auto t = agent_->pollTransmit()) {
        progress = true;
        sendVia(t->transport, t->local, t->remote, t->data);
      }
    }
    flush();
    if (!progress) break;
  }
  if (!streams_.empty()) watchStreams();
}

// SCTP's events, received messages and stream resets, in the order they happened on the wire.
bool Session::pumpSctp() {
  if (!sctp_) return false;
  bool progress = false;
  auto messages = [&] {
    while (auto m = sctp_->pollMessage()) {
      progress = true;
      if (!holdBack(m->stream, m->ppid, m->payload)) handleMessage(m->stream, m->ppid, m->payload);
    }
  };
  while (auto e = sctp_->pollEvent()) {
    progress = true;
    // An ABORT or SHUTDOWN ends the association after the messages received before it, which stay readable
    // (Association::terminate): they go to their channels before the channels close.
    if (e->type == sctp::Event::Type::Aborted || e->type == sctp::Event::Type::Closed) messages();
    handleSctpEvent(*e);
  }
  messages();
  // After the messages: those sent before a reset precede it (the reset waits for their TSNs, RFC 6525 §5.2.2).
  while (auto r = sctp_->pollStreamReset()) {
    progress = true;
    handleStreamReset(*r);
  }
  if (!held_.empty()) releaseHeld();
  return progress;
}

bool Session::pumpChannels(Timestamp now) {
  bool progress = false;
  while (auto cmd = channels_.pollCommand()) {
    progress = true;
    if (cmd->kind == datachannel::Command::Kind::ResetStream) {
      // RFC 8831 §6.7: closing resets our outgoing stream; the association sends what is queued on it first.
      const std::uint16_t stream = cmd->params.stream;
      if (!sctp_) continue;
      if (auto s = sctp_->resetStreams(std::span(&stream, 1), now); !s) {
        RTCPEER_LOG(Info, "peer", "stream " << stream << " closes locally only: " << s.reason());
        closeLocallyOnly(stream);
      }
      continue;
    }
    if (!sctp_) continue;
    sctp::SendOptions o;
    o.unordered = !cmd->params.ordered;
    if (auto s = sctp_->send(cmd->params.stream, cmd->params.ppid, cmd->params.payload(cmd->data), o, now); !s)
      RTCPEER_LOG(Warning, "peer", "DCEP send on stream " << cmd->params.stream << ": " << s.reason());
  }
  while (auto e = channels_.pollEvent()) {
    progress = true;
    handleChannelEvent(*e);
  }
  return progress;
}

void Session::handleIceEvent(const ice::Event& e, Timestamp now) {
  using K = ice::Event::Kind;
  switch (e.kind) {
    case K::CandidateGathered:
      signals_.push_back({Signal::Candidate{mid_, mlineIndex_, e.candidate.toSdp()}});
      break;
    case K::GatheringComplete:
      // As in the W3C API, the state reads Complete from the end-of-candidates signal on, never before the
      // last candidate was handed out.
      signals_.push_back({GatheringState::Complete});
      signals_.push_back({Signal::Candidate{mid_, mlineIndex_, ""}});  // end-of-candidates (RFC 8838 §4.4)
      break;
    case K::SelectedPairChanged:
      selected_ = e.selected;
      if (selected_ && dtls_ && !dtlsStarted_) {
        dtlsStarted_ = true;
        dtls_->start(now);
      }
      break;
    case K::StateChanged:
      if (e.state == ice::State::Failed)
        failConnection("ICE failed: " + (agent_->failureReason().empty() ? std::string("no working candidate pair")
                                                                          : agent_->failureReason()));
      else if (e.state == ice::State::Disconnected && connection_ == ConnectionState::Connected)
        setConnection(ConnectionState::Disconnected);
      else if ((e.state == ice::State::Connected || e.state == ice::State::Completed) &&
               connection_ == ConnectionState::Disconnected)
        setConnection(ConnectionState::Connected);
      break;
    case K::RoleChanged:
      break;
  }
}

void Session::handleDtlsEvent(const dtls::Event& e, Timestamp now) {
  switch (e.type) {
    case dtls::Event::Type::Connected: {
      sctp::Options o;
      o.localPort = 5000;  // we always offer and answer a=sctp-port:5000
      o.remotePort = remoteSctpPort_;
      o.mtu = sctpPacketSize(config_.mtu, dtls_->maxApplicationPayload());
      o.maxMessageSize = config_.maxMessageSize;
      o.enableZeroChecksum = true;  // RFC 9653: DTLS already authenticates every packet
      o.enableIData = true;  // RFC 8260, used when the peer offers it too: a large message no longer blocks others
      // Fail fast: both sides start SCTP the moment their DTLS is up (RFC 8841 9.3), so a live peer answers our INIT
      // within a round trip. 5 s covers INITs at 0, 0.2, 0.6, 1.4 and 3 s (T1 backoff) and a peer whose DTLS ends
      // up to ~3 s after ours (our last flight lost twice: DTLS retransmits after 1 s, then 2 s). A peer that
      // rejects DTLS without an alert (Pion without use_srtp) or never starts SCTP fails here with a reason,
      // instead of at connectTimeout (docs/INTEROP.md).
      o.handshakeTimeout = std::chrono::seconds(5);
      sctp_.emplace(o, random_);
      sctp_->connect(now);  // both sides: SCTP simultaneous open (RFC 8841 §9.3 leaves it to both)
      break;
    }
    case dtls::Event::Type::Closed:
      RTCPEER_LOG(Info, "peer", "DTLS closed by the peer: " << e.reason);
      channels_.closeAll("the peer closed the connection");
      setConnection(ConnectionState::Closed);
      break;
    case dtls::Event::Type::Failed:
      failConnection("DTLS failed: " + e.reason);
      break;
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Sending

std::optional<std::size_t> Session::socketFor(const SocketAddress& local) const {
  for (std::size_t i = 0; i < sockets_.size(); ++i)
    if (sockets_[i].localAddress() == local) return i;
  return std::nullopt;
}

// `borrowed`: `data` stays valid until the next flush(), so it need not be copied.
void Session::sendVia(ice::TurnTransport transport, const SocketAddress& local, const SocketAddress& remote,
                      ByteView data, bool borrowed) {
  if (transport == ice::TurnTransport::Udp) {
    if (auto socket = socketFor(local)) stage(*socket, remote, data, borrowed);
    return;
  }
  for (auto& s : streams_) {
    if (s.transport != transport || s.server != remote || s.failed) continue;
    if (!s.client) {
      // TLS verifies the certificate against the system store (OpenSSL honours SSL_CERT_FILE/SSL_CERT_DIR) and
      // the URL's host name, or the server's IP address when the URL gave an IP literal.
      net::StreamOptions o;
      o.tls = transport == ice::TurnTransport::Tls;
      if (!SocketAddress::parse(s.host, 0)) o.serverName = s.host;
      auto c = net::StreamClient::connect(s.server, o);
      if (!c) {
        s.failed = true;
        agent_->handleStreamClosed(transport, remote, c.reason(), net::now());
        return;
      }
      s.client.emplace(std::move(*c));
    }
    s.client->write(data);
    return;
  }
}

void Session::stage(std::size_t socket, const SocketAddress& remote, ByteView data, bool borrowed) {
  if (!borrowed) {
    if (txPoolUsed_ == txPool_.size()) txPool_.emplace_back();
    Bytes& copy = txPool_[txPoolUsed_++];  // a slot's storage survives txPool_ growing (Bytes move)
    copy.assign(data.begin(), data.end());
    data = copy;
  }
  staged_.push_back({socket, remote, data});
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
  txPoolUsed_ = 0;
}

// ---------------------------------------------------------------------------------------------------------------
// State

void Session::setConnection(ConnectionState s) {
  if (connection_ == s) return;
  RTCPEER_LOG(Debug, "peer", "connection state " << static_cast<int>(connection_) << " -> " << static_cast<int>(s));
  connection_ = s;
}

void Session::failConnection(std::string reason) {
  if (connection_ == ConnectionState::Failed || connection_ == ConnectionState::Closed) return;
  RTCPEER_LOG(Warning, "peer", "connection failed: " << reason);
  setConnection(ConnectionState::Failed);
  channels_.closeAll(reason);
  pumpChannels(net::now());
}

void Session::close() {
  if (closed_) return;
  const Timestamp now = net::now();
  // Tell the peer (best effort: neither is retransmitted) so it sees Closed rather than a timeout, as browsers
  // do: an SCTP ABORT with a User-Initiated Abort cause (libwebrtc: "Close called"), then the DTLS close_notify.
  // Some stacks close their channels only on the ABORT (aiortc ignores the close_notify; docs/INTEROP.md).
  if (dtls_ && dtls_->state() == dtls::State::Connected) {
    if (sctp_ && sctp_->state() == sctp::State::Established) {
      sctp_->abort("Close called", now);
      while (auto packet = sctp_->pollTransmit(now)) (void)dtls_->send(*packet, now);
    }
    dtls_->close(now);
    while (auto datagram = dtls_->pollTransmit())
      if (auto w = agent_ ? agent_->wrapForSelectedPair(*datagram, now) : std::nullopt)
        sendVia(w->transport, w->local, w->remote, w->data);
    flush();
  }
  channels_.closeAll("the connection was closed");
  pumpChannels(now);
  for (auto& [key, weak] : channelImpls_)
    if (auto impl = weak.lock()) impl->state = ReadyState::Closed;
  closed_ = true;
  signals_.clear();
  if (agent_) {
    agent_->close();  // TURN deallocations (best effort, sent once)
    while (auto t = agent_->pollTransmit()) sendVia(t->transport, t->local, t->remote, t->data);
    flush();
    for (auto& s : streams_)
      if (s.client) (void)s.client->service();
  }
  for (auto& s : streams_)
    if (s.client) poller_->unwatch(s.client->fd());
  for (auto& s : sockets_) poller_->unwatch(s.fd());
  streams_.clear();
  resolver_.reset();  // cancels outstanding queries and unwatches its sockets
  names_.clear();
  sctp_.reset();
  dtls_.reset();
  agent_.reset();
  sockets_.clear();
  connection_ = ConnectionState::Closed;
  signaling_ = SignalingState::Closed;
}

}  // namespace rtcpeer
