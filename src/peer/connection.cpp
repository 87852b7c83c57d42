// The core's driving loop: the I/O inputs (datagrams, TURN stream bytes, timeouts), pollOutput() and the
// inter-layer pump behind it, the ICE and DTLS events that bring the transport up, staging of transmits, the
// connection state and close. Offer/answer is in connection_negotiation.cpp, the SCTP and channel glue in
// connection_channels.cpp, stats() in stats.cpp. Nothing here does I/O or reads a clock (connection.hpp).
#include "peer/connection.hpp"

#include <algorithm>

#include "common/log.hpp"
#include "dtls/demux.hpp"

namespace rtcpeer::peer {

namespace {

// Pump passes between two Timeouts: bounds one drain however much traffic arrives.
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

Result<std::unique_ptr<Connection>> Connection::create(const Configuration& config, Random& random) {
  std::string why;
  if (config.validate(&why) != Error::Ok) return rtcpeer::fail(why, static_cast<int>(Error::InvalidParameter));
  if (config.iceLite && config.relayOnly)
    return rtcpeer::fail("iceLite gathers host candidates only and cannot be combined with relayOnly",
                         static_cast<int>(Error::InvalidParameter));
  const bool pem = !config.certificatePem.empty() || !config.privateKeyPem.empty();
  auto certificate = pem ? dtls::Certificate::fromPem(config.certificatePem, config.privateKeyPem)
                         : dtls::Certificate::generate();
  if (!certificate && pem) return rtcpeer::fail(certificate.reason(), static_cast<int>(Error::InvalidParameter));
  if (!certificate)
    return rtcpeer::fail("cannot create the DTLS certificate: " + certificate.reason(), static_cast<int>(Error::Failed));
  return std::make_unique<Connection>(config, std::move(*certificate), random);
}

Connection::Connection(const Configuration& config, std::shared_ptr<const dtls::Certificate> certificate,
                       Random& random)
    : config_(config), random_(random), certificate_(std::move(certificate)), channels_(config.maxMessageSize) {
  localCredentials_.ufrag = random_.iceChars(8);
  localCredentials_.pwd = random_.iceChars(24);
  sessionId_ = random_.u64() >> 1;  // < 2^63 (JSEP §5.2.1)
}

// ---------------------------------------------------------------------------------------------------------------
// Inputs

void Connection::handleDatagram(const SocketAddress& local, const SocketAddress& remote, ByteView data,
                                Timestamp now) {
  if (!agent_ || closed_) return;
  dirty_ = true;
  // The agent consumes STUN and TURN traffic; what remains (unwrapped if it came through a relay) is for DTLS.
  if (auto app = agent_->handleDatagram(local, remote, data, now)) deliver(app->local, app->remote, app->data, now);
}

void Connection::deliver(const SocketAddress& local, const SocketAddress& remote, ByteView data, Timestamp now) {
  // Only from an address ICE has validated: anything else could be an off-path injection (RFC 8445 §11). For a
  // relayed pair `local` is the relayed address. RTP and garbage are dropped.
  if (dtls::classify(data) != dtls::PacketKind::Dtls || !dtls_ || !agent_->isRemoteValid(local, remote)) return;
  agent_->noteReceived(local, remote, now);
  dtls_->handleInput(data, now);
  dtlsTraffic_ = true;
  // The peer is alive (e.g. still retransmitting its last DTLS flight while ours is done): SCTP's fail-fast
  // handshake bound is for a silent peer.
  if (sctp_) sctp_->notePeerAlive(now);
}

void Connection::handleStreamInput(ice::TurnTransport transport, const SocketAddress& server, ByteView bytes,
                                   Timestamp now) {
  if (!agent_ || closed_) return;
  dirty_ = true;
  agent_->handleStreamInput(transport, server, bytes, now);
  while (auto d = agent_->pollStreamData()) deliver(d->local, d->remote, d->data, now);
}

void Connection::handleStreamClosed(ice::TurnTransport transport, const SocketAddress& server,
                                    std::string_view reason, Timestamp now) {
  for (auto& s : streams_)
    if (s.transport == transport && s.server == server) s.failed = true;
  if (!agent_ || closed_) return;
  dirty_ = true;
  agent_->handleStreamClosed(transport, server, reason, now);
}

void Connection::handleTimeout(Timestamp now) {
  if (closed_) return;
  // The deadline of the last Timeout holds while no input came since: a busy-polling shell costs no timer scan.
  if (dirty_ || !deadlineValid_ || deadline_ <= now) {
    dirty_ = true;
    if (agent_ && agent_->nextDeadline() <= now) agent_->handleTimeout(now);
    if (dtls_ && dtls_->nextDeadline() <= now) dtls_->handleTimeout(now);
    if (sctp_ && sctp_->nextDeadline() <= now) sctp_->handleTimeout(now);
    if (connectDeadline_ <= now && connection_ == ConnectionState::Connecting) {
      connectDeadline_ = kNever;
      const char* stage = !dtlsStarted_ ? "ICE checks" : sctp_ ? "the SCTP handshake" : "the DTLS handshake";
      failConnection("not connected within connectTimeout (" + std::to_string(config_.connectTimeout.count()) +
                         " ms) of the start of " + stage,
                     now);
    }
  }
  // Idle release: the shell calls handleTimeout at least once per poll, so this sees every quiet second.
  // Once per quiet spell: an idle connection polled in a busy loop pays nothing more for it.
  if (std::exchange(dtlsTraffic_, false)) {
    lastDtlsTraffic_ = now;
    idleReleased_ = false;
  } else if (dtls_ && !idleReleased_ && now - lastDtlsTraffic_ >= kIdleRelease) {
    dtls_->releaseBuffers();
    if (sctp_) sctp_->releaseBuffers();
    idleReleased_ = true;
    if (staged_.empty()) {
      txPool_ = {};
      staged_ = {};
    } else {
      idleReleased_ = false;  // again at the next poll
    }
    if (head_ == queue_.size()) {
      queue_ = {};
      head_ = 0;
    } else {
      idleReleased_ = false;
    }
  }
}

Timestamp Connection::nextDeadline() const {
  if (closed_) return kNever;
  Timestamp t = connection_ == ConnectionState::Connecting ? connectDeadline_ : kNever;
  if (agent_) t = earliest(t, agent_->nextDeadline());
  if (dtls_) t = earliest(t, dtls_->nextDeadline());
  if (sctp_) t = earliest(t, sctp_->nextDeadline());
  return t;
}

// ---------------------------------------------------------------------------------------------------------------
// Output

Output Connection::pollOutputSlow(Timestamp now) {
  for (;;) {
    // 1. The current pass's transmits, then the batch boundary (after which the pass's buffers may be reused).
    if (cursor_ < staged_.size()) {
      const Staged& s = staged_[cursor_++];
      if (s.open) {
        for (const auto& stream : streams_)
          if (stream.transport == s.transport && stream.server == s.remote)
            return out::OpenStream{s.transport, s.remote, stream.host};
        continue;
      }
      return out::Transmit{s.transport, s.local, s.remote, s.data};
    }
    if (!staged_.empty()) {
      staged_.clear();
      cursor_ = 0;
      txPoolUsed_ = 0;
      return out::Flush{};
    }
    // 2. Signals, channel changes and messages, in the order they happened.
    if (head_ < queue_.size()) {
      Output o = std::move(queue_[head_++]);
      if (head_ == queue_.size()) {
        queue_.clear();
        head_ = 0;
      }
      return o;
    }
    // 3. Move data and events between the layers; a pass that moved something may enable another.
    if (dirty_ && !closed_ && passes_ < kMaxPumpPasses) {
      ++passes_;
      dirty_ = pumpPass(now);
      continue;
    }
    if (dirty_ && passes_ >= kMaxPumpPasses) RTCPEER_LOG(Debug, "peer", "pump pass bound reached; resuming later");
    // Every input marks the core dirty, so the deadline can only have moved if a pass ran since the last Timeout.
    if (std::exchange(passes_, 0) > 0 || !deadlineValid_) {
      deadline_ = nextDeadline();
      deadlineValid_ = true;
    }
    // Work left over by the pass bound is due at once.
    return out::Timeout{dirty_ && !closed_ ? now : deadline_};
  }
}

// One pass of the pump: every layer hands on what it has, in wire order. Returns whether anything moved.
bool Connection::pumpPass(Timestamp now) {
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
        pumpSctp(now);
      }
      handleDtlsEvent(*e, now);
      if (closed_ || !dtls_) return false;
    }
    while (auto record = dtls_->pollApplicationData()) {
      progress = true;
      if (sctp_) sctp_->handleInput(*record, now);
    }
  }
  progress |= pumpSctp(now);
  progress |= pumpChannels(now);
  if (sctp_ && dtls_ && dtls_->state() == dtls::State::Connected) {
    while (auto packet = sctp_->pollTransmit(now)) {
      progress = true;
      if (auto s = dtls_->send(*packet, now); !s) RTCPEER_LOG(Warning, "peer", s.reason());
    }
  }
  // A datagram for a direct pair goes out as the endpoint's own buffer, which stays valid until the endpoint
  // writes again: hence one Flush per pass, before the next pass can call into DTLS.
  if (dtls_) {
    const std::size_t before = staged_.size();
    sendDtlsDatagrams(now);
    progress |= staged_.size() != before;
  }
  if (agent_) {
    while (auto t = agent_->pollTransmit()) {
      progress = true;
      sendVia(t->transport, t->local, t->remote, t->data, false);
    }
  }
  return progress;
}

// SCTP's events, received messages and stream resets, in the order they happened on the wire.
bool Connection::pumpSctp(Timestamp now) {
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
    handleSctpEvent(*e, now);
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

bool Connection::pumpChannels(Timestamp now) {
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

void Connection::sendDtlsDatagrams(Timestamp now) {
  while (auto datagram = dtls_->pollTransmit()) {
    dtlsTraffic_ = true;
    if (auto w = agent_ ? agent_->wrapForSelectedPair(*datagram, now) : std::nullopt)
      sendVia(w->transport, w->local, w->remote, w->data, w->data.data() == datagram->data());
  }
}

void Connection::handleIceEvent(const ice::Event& e, Timestamp now) {
  using K = ice::Event::Kind;
  switch (e.kind) {
    case K::CandidateGathered:
      // After restartIce() the candidates belong to the description not set yet: JSEP hands them out after it.
      (restartPending_ ? heldCandidates_ : queue_).push_back(out::Candidate{mid_, mlineIndex_, e.candidate.toSdp()});
      break;
    case K::GatheringComplete:
      // As in the W3C API, the state reads Complete from the end-of-candidates signal on, never before the
      // last candidate was handed out.
      (restartPending_ ? heldCandidates_ : queue_).push_back(out::Gathering{GatheringState::Complete});
      // end-of-candidates (RFC 8838 §4.4)
      (restartPending_ ? heldCandidates_ : queue_).push_back(out::Candidate{mid_, mlineIndex_, ""});
      break;
    case K::SelectedPairChanged:
      selected_ = e.selected;
      if (selected_ && dtls_ && !dtlsStarted_) {
        dtlsStarted_ = true;
        dtls_->start(now);
        dtlsStartedAt_ = now;
        rearmConnectDeadline(now);
      }
      break;
    case K::StateChanged:
      if (e.state == ice::State::Failed)
        failConnection("ICE failed: " + (agent_->failureReason().empty() ? std::string("no working candidate pair")
                                                                          : agent_->failureReason()),
                       now);
      else if (e.state == ice::State::Disconnected && connection_ == ConnectionState::Connected)
        setConnection(ConnectionState::Disconnected, "no traffic from the peer on the selected pair");
      else if ((e.state == ice::State::Connected || e.state == ice::State::Completed) &&
               connection_ == ConnectionState::Disconnected)
        setConnection(ConnectionState::Connected);
      break;
    case K::RoleChanged:
      break;
  }
}

void Connection::handleDtlsEvent(const dtls::Event& e, Timestamp now) {
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
      // instead of at connectTimeout (docs/INTEROP.md). The bound is for silence (it restarts whenever the peer is
      // heard from), and it scales with the pace the peer kept during the DTLS handshake: a process setting up
      // thousands of connections at once answers each of them only every few seconds, and the SCTP handshake (two
      // round trips, like DTLS's) may then take twice as long as DTLS took, however alive the peer is.
      o.handshakeTimeout = std::max<Duration>(std::chrono::seconds(5), 2 * (now - dtlsStartedAt_));
      sctp_.emplace(o, random_);
      sctp_->connect(now);  // both sides: SCTP simultaneous open (RFC 8841 §9.3 leaves it to both)
      rearmConnectDeadline(now);
      break;
    }
    case dtls::Event::Type::Closed:
      RTCPEER_LOG(Info, "peer", "DTLS closed by the peer: " << e.reason);
      channels_.closeAll("the peer closed the connection");
      setConnection(ConnectionState::Closed, "the peer closed the connection (DTLS close_notify)");
      break;
    case dtls::Event::Type::Failed:
      failConnection("DTLS failed: " + e.reason, now);
      break;
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Staging

// `borrowed`: `data` stays valid until the next pump pass, so it need not be copied.
void Connection::sendVia(ice::TurnTransport transport, const SocketAddress& local, const SocketAddress& remote,
                         ByteView data, bool borrowed) {
  if (transport != ice::TurnTransport::Udp) {
    auto it = std::find_if(streams_.begin(), streams_.end(),
                           [&](const TurnStream& s) { return s.transport == transport && s.server == remote; });
    if (it == streams_.end() || it->failed) return;
    if (!std::exchange(it->opened, true)) staged_.push_back({transport, {}, remote, {}, true});
  }
  if (!borrowed) {
    if (txPoolUsed_ == txPool_.size()) txPool_.emplace_back();
    Bytes& copy = txPool_[txPoolUsed_++];  // a slot's storage survives txPool_ growing (Bytes move)
    copy.assign(data.begin(), data.end());
    data = copy;
  }
  staged_.push_back({transport, local, remote, data, false});
}

// ---------------------------------------------------------------------------------------------------------------
// State

void Connection::setConnection(ConnectionState s, std::string reason) {
  if (connection_ == s) return;
  RTCPEER_LOG(Debug, "peer", "connection state " << static_cast<int>(connection_) << " -> " << static_cast<int>(s));
  connection_ = s;
  if (s == ConnectionState::Failed || s == ConnectionState::Closed) failureReason_ = reason;
  push(out::StateChange{s, std::move(reason)});
}

// connectTimeout bounds each stage of the setup (ICE finding a pair, the DTLS handshake, the SCTP handshake and
// DCEP) from its start: a peer that stops answering fails within connectTimeout of where it stopped, while one that
// keeps making progress, only slowly (thousands of connections set up at once by one busy process), connects.
void Connection::rearmConnectDeadline(Timestamp now) {
  if (connection_ == ConnectionState::Connecting)
    connectDeadline_ = now + std::chrono::duration_cast<Duration>(config_.connectTimeout);
}

void Connection::failConnection(std::string reason, Timestamp now) {
  if (connection_ == ConnectionState::Failed || connection_ == ConnectionState::Closed) return;
  RTCPEER_LOG(Warning, "peer", "connection failed: " << reason);
  setConnection(ConnectionState::Failed, reason);
  channels_.closeAll(reason);
  pumpChannels(now);
}

void Connection::failTransport(std::string reason, Timestamp now) {
  dirty_ = true;
  failConnection(std::move(reason), now);
}

void Connection::close(Timestamp now) {
  if (closed_) return;
  // Tell the peer (best effort: neither is retransmitted) so it sees Closed rather than a timeout, as browsers
  // do: an SCTP ABORT with a User-Initiated Abort cause (libwebrtc: "Close called"), then the DTLS close_notify.
  // Some stacks close their channels only on the ABORT (aiortc ignores the close_notify; docs/INTEROP.md).
  // Whatever the last drain left staged was flushed by the shell; what follows is the goodbye batch.
  staged_.clear();
  cursor_ = 0;
  txPoolUsed_ = 0;
  if (dtls_ && dtls_->state() == dtls::State::Connected) {
    if (sctp_ && sctp_->state() == sctp::State::Established) {
      sctp_->abort("Close called", now);
      while (auto packet = sctp_->pollTransmit(now)) (void)dtls_->send(*packet, now);
    }
    dtls_->close(now);
    // Copied: the agent's close below may write into buffers the wrapped datagrams point to.
    while (auto datagram = dtls_->pollTransmit())
      if (auto w = agent_ ? agent_->wrapForSelectedPair(*datagram, now) : std::nullopt)
        sendVia(w->transport, w->local, w->remote, w->data, false);
  }
  channels_.closeAll("the connection was closed");
  pumpChannels(now);
  closed_ = true;
  dirty_ = false;
  deadlineValid_ = false;
  queue_.clear();
  head_ = 0;
  if (agent_) {
    agent_->close();  // TURN deallocations (best effort, sent once)
    while (auto t = agent_->pollTransmit()) sendVia(t->transport, t->local, t->remote, t->data, false);
  }
  held_.clear();
  sctp_.reset();
  dtls_.reset();
  agent_.reset();
  connection_ = ConnectionState::Closed;
  signaling_ = SignalingState::Closed;
}

}  // namespace rtcpeer::peer
