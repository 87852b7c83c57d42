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
// Messages held back for a stream id the peer reused before our close of it completed (see Session::holdBack).
constexpr std::size_t kMaxHeldMessages = 256;
// A connection with no DTLS traffic for this long frees OpenSSL's record buffers (most of an idle connection's memory).
constexpr Duration kIdleRelease = std::chrono::seconds(1);

Outcome failure(Error code, std::string reason) { return {code, std::move(reason)}; }

bool isLoopbackLiteral(const std::string& s) {
  auto a = SocketAddress::parse(s, 0);
  return a && a->isLoopback();
}

// SCTP packets must fit one DTLS record in one datagram: AES-GCM costs 13 (header) + 8 (nonce) + 16 (tag).
std::size_t sctpPacketSize(std::size_t mtu, std::size_t dtlsPayload) {
  std::size_t size = mtu > 37 ? mtu - 37 : mtu;
  if (dtlsPayload) size = std::min(size, dtlsPayload);
  return size & ~std::size_t{3};
}

std::string_view trimLine(std::string_view s) {
  while (!s.empty() && (s.back() == '\r' || s.back() == '\n' || s.back() == ' ')) s.remove_suffix(1);
  while (!s.empty() && s.front() == ' ') s.remove_prefix(1);
  if (s.starts_with("a=")) s.remove_prefix(2);
  return s;
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
// Offer/answer

sdp::LocalParams Session::localParams(sdp::Setup setup) const {
  sdp::LocalParams p;
  p.sessionId = sessionId_;
  p.sessionVersion = sessionVersion_;
  p.iceUfrag = localCredentials_.ufrag;
  p.icePwd = localCredentials_.pwd;
  p.fingerprint = {"sha-256", certificate_->fingerprint(dtls::HashAlg::Sha256)};
  p.setup = setup;
  p.maxMessageSize = config_.maxMessageSize;
  p.iceLite = config_.iceLite;
  return p;
}

Result<std::shared_ptr<DataChannel>> Session::createDataChannel(std::string_view label,
                                                                 const DataChannelInit& init) {
  auto key = channels_.create(label, init);
  if (!key) return key.failure();
  auto impl = std::make_shared<DataChannel::Impl>();
  impl->session = weak_from_this();
  impl->key = *key;
  syncChannel(*impl, *channels_.info(*key));
  channelImpls_[*key] = impl;
  auto channel = detail::DataChannelAccess::make(impl);
  pumpChannels(net::now());
  pending_ = true;  // an in-band channel on a live association opens (and sends its OPEN) now
  return channel;
}

Outcome Session::createOffer() {
  if (channels_.channelCount() == 0)
    return failure(Error::Unconfigured, "createOffer needs at least one data channel (createDataChannel first)");
  if (signaling_ != SignalingState::Stable)
    return failure(Error::Failed, "createOffer is only allowed in the stable signaling state");
  ++sessionVersion_;
  createdType_ = "offer";
  createdSdp_ = sdp::generateOffer(localParams(sdp::Setup::ActPass));
  signals_.push_back({Signal::Description{createdType_, createdSdp_}});
  return Outcome::ok();
}

Outcome Session::setLocalDescription(std::string_view type, std::string_view text) {
  const bool offer = type == "offer";
  const bool answer = type == "answer" || type == "pranswer";
  if (!offer && !answer)
    return failure(Error::InvalidParameter, "unknown description type '" + std::string(type) +
                                                "' (expected offer, answer or pranswer)");
  if (offer && signaling_ != SignalingState::Stable)
    return failure(Error::Failed, "a local offer is only allowed in the stable signaling state");
  if (answer && signaling_ != SignalingState::HaveRemoteOffer && signaling_ != SignalingState::HaveLocalPranswer)
    return failure(Error::Failed, "a local answer needs a remote offer first");
  const bool createdType = createdType_ == (offer ? "offer" : "answer");
  if (!createdType)
    return failure(Error::Failed, "no " + std::string(offer ? "offer" : "answer") + " was created to set");
  if (text != createdSdp_) {
    // JSEP allows the application to touch the SDP; we accept an edited description only if it still carries
    // our own identity, since that is what the peer will check (ICE credentials and the DTLS fingerprint).
    auto parsed = sdp::parse(text);
    if (!parsed) return failure(Error::InvalidParameter, "the local description does not parse: " + parsed.reason());
    auto index = parsed->dataChannelIndex();
    const auto params = localParams(sdp::Setup::None);
    if (!index || parsed->media[*index].iceUfrag != params.iceUfrag || parsed->media[*index].icePwd != params.icePwd ||
        parsed->media[*index].fingerprints.empty() || parsed->media[*index].fingerprints[0] != params.fingerprint)
      return failure(Error::InvalidParameter,
                     "the local description is not the one this connection created (its ICE credentials or "
                     "fingerprint differ)");
  }
  if (offer) {
    isOfferer_ = true;
    signaling_ = SignalingState::HaveLocalOffer;
    if (!agent_) createAgent(ice::Role::Controlling);
  } else {
    signaling_ = type == "pranswer" ? SignalingState::HaveLocalPranswer : SignalingState::Stable;
  }
  haveLocal_ = true;
  return startTransport();
}

Outcome Session::setRemoteDescription(std::string_view type, std::string_view text) {
  const bool offer = type == "offer";
  const bool answer = type == "answer" || type == "pranswer";
  if (!offer && !answer)
    return failure(Error::InvalidParameter, "unknown description type '" + std::string(type) +
                                                "' (expected offer, answer or pranswer)");
  if (offer && signaling_ != SignalingState::Stable)
    return failure(Error::Failed, "a remote offer is only allowed in the stable signaling state");
  if (answer && signaling_ != SignalingState::HaveLocalOffer && signaling_ != SignalingState::HaveRemotePranswer)
    return failure(Error::Failed, "a remote answer needs a local offer first");
  auto parsed = sdp::parse(text);
  if (!parsed) return failure(Error::InvalidParameter, "malformed SDP: " + parsed.reason());
  auto section = sdp::checkRemote(*parsed, offer);
  if (!section) return failure(Error::InvalidParameter, "unusable SDP: " + section.reason());
  // RFC 8445 6.1.1 gives lite-lite a controlling side, but neither would check or nominate a pair: refuse it
  // with the reason rather than fail at the connect timeout.
  if (parsed->iceLite && config_.iceLite)
    return failure(Error::InvalidParameter,
                   "both peers are ICE lite (a=ice-lite on each side): one of them must run full ICE");

  if (offer) {
    // The answer mirrors the offer's m-lines, so our candidates belong to the offer's data section.
    ++sessionVersion_;
    const auto setup = sdp::answerSetup(parsed->media[*section].setup);
    auto generated = sdp::generateAnswer(*parsed, localParams(setup));
    if (!generated) return failure(Error::InvalidParameter, "cannot answer this offer: " + generated.reason());
    if (auto o = applyRemote(*parsed, *section, true); o.code != Error::Ok) return o;
    createdType_ = "answer";
    createdSdp_ = std::move(*generated);
    signaling_ = SignalingState::HaveRemoteOffer;
    signals_.push_back({Signal::Description{createdType_, createdSdp_}});
    return Outcome::ok();
  }
  if (auto o = applyRemote(*parsed, *section, false); o.code != Error::Ok) return o;
  signaling_ = type == "pranswer" ? SignalingState::HaveRemotePranswer : SignalingState::Stable;
  return startTransport();
}

Outcome Session::applyRemote(const sdp::SessionDescription& remote, std::size_t section, bool isOffer) {
  const sdp::MediaSection& m = remote.media[section];
  std::vector<dtls::Fingerprint> fingerprints;
  for (const auto& f : m.fingerprints)
    if (auto parsed = dtls::Fingerprint::parse(f.algorithm + " " + f.value)) fingerprints.push_back(*parsed);
  if (fingerprints.empty())
    return failure(Error::InvalidParameter, "no usable a=fingerprint in the remote description");
  std::vector<ice::Candidate> candidates;
  for (const auto& line : m.candidates) {
    auto c = ice::parseCandidate(line);
    if (!c) return failure(Error::InvalidParameter, "remote description: " + c.reason() + ": " + line);
    candidates.push_back(std::move(*c));
  }
  if (remote_ && remote_->media[remoteSection_].iceUfrag != m.iceUfrag)
    RTCPEER_LOG(Warning, "peer", "the peer changed its ICE credentials (ICE restart is not supported yet)");

  const Timestamp now = net::now();
  const bool first = !remote_;
  remote_ = remote;
  remoteSection_ = section;
  if (isOffer) {
    mid_ = m.mid;
    mlineIndex_ = static_cast<int>(section);
  }
  remoteSctpPort_ = m.sctpPort.value_or(5000);
  channels_.setRemoteMaxMessageSize(m.maxMessageSize);
  // RFC 8445 6.1.1: facing a lite peer we are controlling (and nominate), whichever side offered.
  if (!agent_) createAgent(isOffer && !remote.iceLite ? ice::Role::Controlled : ice::Role::Controlling);
  if (first) {
    agent_->setRemoteCredentials(m.iceUfrag, m.icePwd, now);
    dtlsClient_ = sdp::localIsDtlsClient(m.setup, isOffer);
    dtls::Config dc;
    dc.certificate = certificate_;
    dc.role = dtlsClient_ ? dtls::Role::Client : dtls::Role::Server;
    dc.remoteFingerprints = std::move(fingerprints);
    dc.mtu = config_.mtu;
    dtls_.emplace(std::move(dc));
    // A lite agent selects the pair the peer nominates, which can come before the peer's answer does.
    if (selected_ && !dtlsStarted_) {
      dtlsStarted_ = true;
      dtls_->start(now);
    }
  }
  for (const auto& c : candidates)
    if (auto s = agent_->addRemoteCandidate(c, now); !s) RTCPEER_LOG(Info, "peer", s.reason());
  if (m.endOfCandidates) agent_->addRemoteEndOfCandidates(now);
  return Outcome::ok();
}

void Session::createAgent(ice::Role role) {
  ice::AgentConfig ac;
  ac.role = role;
  ac.local = localCredentials_;
  ac.disconnectedTimeout = std::chrono::duration_cast<Duration>(config_.disconnectedTimeout);
  // Consent checks (RFC 7675) are what an idle pair receives: keep them well inside the disconnected timeout.
  ac.consentInterval = std::min(ac.consentInterval, ac.disconnectedTimeout / 2);
  ac.consentTimeout = std::chrono::duration_cast<Duration>(config_.failedTimeout);
  // ICE keeps looking for a working pair as long as the connection may take to connect (not its own 15 s).
  ac.failureTimeout = std::chrono::duration_cast<Duration>(config_.connectTimeout);
  ac.lite = config_.iceLite;
  bool turnByName = false;
  for (const auto& server : config_.iceServers) {
    if (config_.iceLite) break;  // host candidates only
    for (const auto& url : server.urls) {
      IceServerUrl u;
      if (IceServerUrl::parse(url, u) != Error::Ok) continue;  // validate() already refused bad URLs
      if (!net::isAddressLiteral(u.host) && u.host != "localhost") {
        // A name: resolved asynchronously while gathering runs (poll() feeds the answer to the agent).
        if (!resolver_) {
          auto r = net::Resolver::create(poller_);
          if (!r) {
            RTCPEER_LOG(Warning, "peer", "ignoring ICE server " << url << ": " << r.reason());
            continue;
          }
          resolver_ = std::move(*r);
        }
        names_.push_back({resolver_->resolve(u.host, u.port), url, u, server.username, server.credential});
        ++ac.pendingNames;
        turnByName |= u.scheme != IceServerUrl::Scheme::Stun;
        continue;
      }
      auto address = net::resolve(u.host, u.port);
      if (!address) {
        RTCPEER_LOG(Warning, "peer", "ignoring ICE server " << url << ": " << address.reason());
        continue;
      }
      if (u.scheme == IceServerUrl::Scheme::Stun) {
        ac.stunServers.push_back(*address);
        continue;
      }
      const auto transport = u.scheme == IceServerUrl::Scheme::Turns        ? ice::TurnTransport::Tls
                             : u.transport == IceServerUrl::Transport::Tcp ? ice::TurnTransport::Tcp
                                                                           : ice::TurnTransport::Udp;
      ac.turnServers.push_back({*address, transport, server.username, server.credential});
      if (transport != ice::TurnTransport::Udp) streams_.push_back({transport, *address, u.host, std::nullopt});
    }
  }
  ac.relayOnly = config_.relayOnly;
  if (ac.relayOnly && ac.turnServers.empty() && !turnByName)
    RTCPEER_LOG(Warning, "peer", "relay-only policy without a turn:/turns: server: no candidate can be gathered");
  agent_.emplace(std::move(ac), random_);
}

// Answers of the resolver become servers of the agent: one per address family (the first address of each, as
// browsers use one address per server and family); a name that did not resolve is reported with its reason.
void Session::serviceResolver(Timestamp now) {
  if (!resolver_) return;
  resolver_->process();
  while (auto answer = resolver_->poll()) {
    auto it = std::find_if(names_.begin(), names_.end(), [&](const PendingName& n) { return n.id == answer->id; });
    if (it == names_.end()) continue;
    const PendingName name = std::move(*it);
    names_.erase(it);
    if (!agent_) continue;
    ice::Agent::Resolved r;
    r.url = name.url;
    r.error = answer->error;
    const IceServerUrl& u = name.parsed;
    bool v4 = false, v6 = false;
    for (const auto& address : answer->addresses) {
      if (std::exchange(address.isV4() ? v4 : v6, true)) continue;
      RTCPEER_LOG(Info, "peer", "ICE server " << name.url << " is " << address.toString());
      if (u.scheme == IceServerUrl::Scheme::Stun) {
        r.stun.push_back(address);
        continue;
      }
      const auto transport = u.scheme == IceServerUrl::Scheme::Turns        ? ice::TurnTransport::Tls
                             : u.transport == IceServerUrl::Transport::Tcp ? ice::TurnTransport::Tcp
                                                                           : ice::TurnTransport::Udp;
      r.turn.push_back({address, transport, name.username, name.credential});
      if (transport != ice::TurnTransport::Udp) streams_.push_back({transport, address, u.host, std::nullopt});
    }
    agent_->handleResolved(r, now);
  }
}

// Binds the sockets and starts gathering once we have a local description, and arms the connect timeout once
// both descriptions are in (that is when connectivity checks can start).
Outcome Session::startTransport() {
  const Timestamp now = net::now();
  if (haveLocal_ && sockets_.empty()) {
    // Names and IP literals are separate filters in net::BindOptions (both must match), so bind them apart.
    net::BindOptions names, addresses;
    for (const auto& entry : config_.interfaces) {
      if (auto a = SocketAddress::parse(entry, 0)) addresses.addresses.push_back(*a);
      else names.interfaces.push_back(entry);
    }
    for (net::BindOptions* o : {&names, &addresses}) {
      o->portMin = config_.portRangeBegin;
      o->portMax = config_.portRangeEnd;
      o->includeLoopback = std::any_of(config_.interfaces.begin(), config_.interfaces.end(), isLoopbackLiteral);
    }
    std::string why;
    auto bindInto = [&](const net::BindOptions& o) {
      auto bound = net::bindInterfaces(o);
      if (!bound) {
        why = bound.reason();
        return;
      }
      for (auto& s : *bound) sockets_.push_back(std::move(s));
    };
    if (config_.interfaces.empty()) {
      bindInto(names);
      if (sockets_.empty()) {  // e.g. a network namespace with only `lo`
        RTCPEER_LOG(Info, "peer", "no usable non-loopback interface (" << why << "); falling back to loopback");
        names.includeLoopback = true;
        bindInto(names);
      }
    } else {
      if (!names.interfaces.empty()) bindInto(names);
      if (!addresses.addresses.empty()) bindInto(addresses);
    }
    if (sockets_.empty()) {
      failConnection("cannot bind any UDP socket: " + why);
      return failure(Error::Unavailable, "cannot bind any UDP socket: " + why);
    }
    std::vector<SocketAddress> locals;
    for (const auto& s : sockets_) {
      locals.push_back(s.localAddress());
      if (auto w = poller_->watch(s.fd()); !w) {
        failConnection("cannot watch the UDP sockets: " + w.reason());
        return failure(Error::Unavailable, "cannot watch the UDP sockets: " + w.reason());
      }
    }
    signals_.push_back({GatheringState::Gathering});
    agent_->startGathering(locals, now);
  }
  if (haveLocal_ && remote_ && connection_ == ConnectionState::New) {
    setConnection(ConnectionState::Connecting);
    connectDeadline_ = now + std::chrono::duration_cast<Duration>(config_.connectTimeout);
  }
  pump(now);
  return Outcome::ok();
}

Outcome Session::addIceCandidate(std::string_view media, int index, std::string_view name) {
  if (!remote_) return failure(Error::Unconfigured, "addIceCandidate needs a remote description first");
  const auto& m = remote_->media[remoteSection_];
  if (!media.empty() ? media != m.mid : index != static_cast<int>(remoteSection_))
    return failure(Error::InvalidParameter,
                   "the candidate's media (mid '" + std::string(media) + "', index " + std::to_string(index) +
                       ") is not the data-channel section (mid '" + m.mid + "', index " +
                       std::to_string(remoteSection_) + ")");
  const Timestamp now = net::now();
  std::string_view line = trimLine(name);
  if (line.empty() || line == "end-of-candidates") {
    agent_->addRemoteEndOfCandidates(now);
    return Outcome::ok();
  }
  auto c = ice::parseCandidate(line);
  if (!c) return failure(Error::InvalidParameter, "malformed candidate: " + c.reason());
  if (auto s = agent_->addRemoteCandidate(*c, now); !s) return failure(Error::InvalidParameter, s.reason());
  pump(now);
  return Outcome::ok();
}

// ---------------------------------------------------------------------------------------------------------------
// The loop

void Session::poll() {
  if (closed_) return;
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

void Session::handleSctpEvent(const sctp::Event& e) {
  switch (e.type) {
    case sctp::Event::Type::Connected:
      channels_.start(dtlsClient_ ? datachannel::DtlsRole::Client : datachannel::DtlsRole::Server,
                      std::min(sctp_->outboundStreams(), sctp_->inboundStreams()));
      RTCPEER_LOG(Info, "peer", "SCTP up: " << sctp_->outboundStreams() << "/" << sctp_->inboundStreams()
                                              << " streams, I-DATA " << (sctp_->interleaving() ? "yes" : "no")
                                              << ", zero checksum " << (sctp_->sendsZeroChecksum() ? "yes" : "no"));
      if (connection_ == ConnectionState::Connecting) setConnection(ConnectionState::Connected);
      break;
    case sctp::Event::Type::Restarted:
      // RFC 9260 5.2.4 A: the peer lost its association state, so its channels and every message not yet
      // acknowledged are gone; a browser never restarts SCTP inside a live DTLS session. Nothing can be
      // resumed under the channels' backs: they close and the connection fails (the application reconnects).
      // The new association is aborted too, so the peer's application learns the same.
      sctp_->abort("restart refused: the data channels did not survive it", net::now());
      failConnection("the peer restarted the SCTP association: its data channels and unacknowledged "
                     "messages are lost");
      break;
    case sctp::Event::Type::Closed:
      channels_.closeAll("the SCTP association was shut down");
      setConnection(ConnectionState::Closed);
      break;
    case sctp::Event::Type::Aborted:
      if (e.peerUserAbort) {  // the remote application closed its connection (what browsers send on close())
        RTCPEER_LOG(Info, "peer", "the peer closed the connection (SCTP ABORT: " << e.reason << ")");
        channels_.closeAll("the peer closed the connection");
        setConnection(ConnectionState::Closed);
      } else {
        failConnection("SCTP association aborted: " + e.reason);
      }
      break;
  }
}

void Session::handleStreamReset(const sctp::StreamReset& r) {
  auto apply = [&](std::uint16_t stream) {
    if (r.incoming) channels_.handleIncomingReset(stream);
    else if (r.refused) closeLocallyOnly(stream);
    else channels_.handleOutgoingResetDone(stream);
  };
  if (!r.streams.empty()) {
    for (auto stream : r.streams) apply(stream);
    return;
  }
  // An empty list means every stream (RFC 6525 §4.1); only mapped ones matter.
  const std::uint16_t count = std::min(sctp_->outboundStreams(), sctp_->inboundStreams());
  for (std::uint32_t stream = 0; stream < count; ++stream)
    if (channels_.channelOnStream(static_cast<std::uint16_t>(stream))) apply(static_cast<std::uint16_t>(stream));
}

void Session::handleMessage(std::uint16_t stream, std::uint32_t ppid, Bytes& payload) {
  auto in = channels_.handleMessage(stream, ppid, payload);
  // An OPEN creates the channel that the next messages (often in the same packet) are delivered to.
  while (auto e = channels_.pollEvent()) handleChannelEvent(*e);
  if (!in) RTCPEER_LOG(Info, "peer", "data channel: " << in.reason());
  else if (*in) deliver((*in)->channel, (*in)->text, (*in)->data, &payload);
}

// The peer may reuse a stream id as soon as it has seen both directions of the stream reset (RFC 8831 §6.7), which
// is when it receives our answer to its reset request; our own request may still await the peer's answer. So the
// new channel's OPEN can arrive while the old channel is still Closing here: in the same receive batch as that
// answer (the association hands out messages before reset completions), or ahead of it when the answer was lost
// and our request is retransmitted. Refusing that OPEN would lose the channel, so it and everything after it on
// its stream wait until the old channel is Closed (releaseHeld). Returns whether the message was taken.
bool Session::holdBack(std::uint16_t stream, std::uint32_t ppid, Bytes& payload) {
  const bool streamHeld =
      std::any_of(held_.begin(), held_.end(), [&](const HeldMessage& h) { return h.stream == stream; });
  if (!streamHeld) {
    if (ppid != static_cast<std::uint32_t>(dcep::Ppid::Control) || payload.empty() ||
        payload[0] != dcep::kMessageOpen)
      return false;
    const auto key = channels_.channelOnStream(stream);
    const auto* info = key ? channels_.info(*key) : nullptr;
    if (!info || info->state != datachannel::ChannelState::Closing) return false;
  }
  if (held_.size() >= kMaxHeldMessages) {
    RTCPEER_LOG(Warning, "peer", "dropping a message on stream " << stream << ": more than " << kMaxHeldMessages
                                  << " wait for closing channels");
    return true;
  }
  // Held bytes count against the receive window like unread ones, so they are bounded by it too.
  if (sctp_) sctp_->holdUnread(readCost(payload));
  held_.push_back({stream, ppid, std::move(payload)});
  return true;
}

// Hands held messages over, in arrival order, for every stream whose old channel has closed.
void Session::releaseHeld() {
  auto held = std::exchange(held_, {});
  if (connection_ == ConnectionState::Failed || connection_ == ConnectionState::Closed) {
    for (const auto& h : held) sctp_->releaseUnread(readCost(h.payload));
    return;
  }
  std::vector<std::uint16_t> released, waiting;
  auto contains = [](const std::vector<std::uint16_t>& v, std::uint16_t x) {
    return std::find(v.begin(), v.end(), x) != v.end();
  };
  for (auto& h : held) {
    // A stream's held sequence starts with the OPEN: decide for the whole stream when meeting it.
    if (!contains(released, h.stream) && !contains(waiting, h.stream))
      (channels_.channelOnStream(h.stream) ? waiting : released).push_back(h.stream);
    if (contains(waiting, h.stream)) {
      held_.push_back(std::move(h));
    } else {
      sctp_->releaseUnread(readCost(h.payload));  // deliver() charges it again if it goes to an inbox
      handleMessage(h.stream, h.ppid, h.payload);
    }
  }
}

// Without a stream reset (the peer lacks RFC 6525 or refused it) the peer cannot be told. The channel is Closed
// for the application but stays Closing in the manager, which keeps its stream id reserved: handing it to a new
// channel would fail, since the peer still maps the old one (it refuses the OPEN). What the peer still sends on
// it is dropped.
void Session::closeLocallyOnly(std::uint16_t stream) {
  auto key = channels_.channelOnStream(stream);
  if (!key) return;
  closedLocally_.insert(*key);
  auto it = channelImpls_.find(*key);
  if (auto impl = it == channelImpls_.end() ? nullptr : it->second.lock()) impl->state = ReadyState::Closed;
}

void Session::handleChannelEvent(const datachannel::Event& e) {
  using K = datachannel::Event::Kind;
  const auto* info = channels_.info(e.channel);
  RTCPEER_LOG(Debug, "peer", "channel " << e.channel << " '" << (info ? info->label : std::string("?")) << "' stream "
                                        << (info && info->stream ? int(*info->stream) : -1) << " event "
                                        << static_cast<int>(e.kind) << (e.reason.empty() ? "" : ": ") << e.reason);
  if (e.kind == K::Received) {
    auto impl = std::make_shared<DataChannel::Impl>();
    impl->session = weak_from_this();
    impl->key = e.channel;
    if (info) syncChannel(*impl, *info);
    channelImpls_[e.channel] = impl;
    signals_.push_back({detail::DataChannelAccess::make(std::move(impl))});
    return;
  }
  auto it = channelImpls_.find(e.channel);
  auto impl = it == channelImpls_.end() ? nullptr : it->second.lock();
  if (impl && info) syncChannel(*impl, *info);
  if (e.kind == K::Closed) {
    if (impl && !e.reason.empty()) impl->lastError = e.reason;
    if (!impl) {  // its last public reference is gone: forget it
      channels_.forget(e.channel);
      if (it != channelImpls_.end()) channelImpls_.erase(it);
    }
  }
}

void Session::syncChannel(DataChannel::Impl& impl, const datachannel::ChannelInfo& info) {
  impl.label = info.label;
  impl.protocol = info.protocol;
  impl.id = info.stream ? *info.stream : DataChannel::kUnset;
  impl.ordered = info.reliability.ordered;
  impl.maxRetransmits = info.reliability.maxRetransmits ? *info.reliability.maxRetransmits : DataChannel::kUnset;
  impl.maxPacketLifeTime =
      info.reliability.maxPacketLifeTime ? *info.reliability.maxPacketLifeTime : DataChannel::kUnset;
  impl.negotiated = info.negotiated;
  switch (info.state) {
    case datachannel::ChannelState::Connecting: impl.state = ReadyState::Connecting; break;
    case datachannel::ChannelState::Open: impl.state = ReadyState::Open; break;
    case datachannel::ChannelState::Closing: impl.state = ReadyState::Closing; break;
    case datachannel::ChannelState::Closed: impl.state = ReadyState::Closed; break;
  }
  if (closedLocally_.contains(impl.key)) impl.state = ReadyState::Closed;
}

void Session::deliver(datachannel::ChannelKey key, bool text, ByteView data, Bytes* owned) {
  auto it = channelImpls_.find(key);
  auto impl = it == channelImpls_.end() ? nullptr : it->second.lock();
  // As in the W3C API, a message arriving once close() was called (sent before the peer learned) is discarded.
  if (!impl || impl->state != ReadyState::Open) return;
  DataChannel::Impl::Packet p;
  p.text = text;
  // Usually the message is the association's own buffer: take it instead of copying.
  if (owned && data.data() == owned->data() && data.size() == owned->size()) p.data = std::move(*owned);
  else p.data.assign(data.begin(), data.end());
  // Unread messages hold the receive window shut (back-pressure on the sender) until getPacket() takes them.
  const std::size_t cost = readCost(p.data);
  impl->inbox.push_back(std::move(p));
  impl->unreadCost += cost;
  if (sctp_) sctp_->holdUnread(cost);
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

Error Session::send(DataChannel::Impl& channel, ByteView message, bool text) {
  const Timestamp now = net::now();
  pumpChannels(now);  // an OPEN still queued must go first on its stream
  auto params = channels_.prepareSend(channel.key, text, message.size());
  if (!params) return channel.failWith(static_cast<Error>(params.failure().code), params.reason());
  if (!sctp_) return channel.failWith(Error::Unconfigured, "the connection is not established");
  sctp::SendOptions o;
  o.unordered = !params->ordered;
  if (params->maxRetransmits) o.maxRetransmits = *params->maxRetransmits;
  if (params->maxPacketLifeTime) o.lifetime = std::chrono::milliseconds(*params->maxPacketLifeTime);
  if (auto s = sctp_->send(params->stream, params->ppid, params->payload(message), o, now); !s)
    return channel.failWith(Error::Unavailable, s.reason());
  channel.lastError.clear();
  pending_ = true;
  return Error::Ok;
}

void Session::closeChannel(DataChannel::Impl& channel) {
  pending_ = true;
  channels_.close(channel.key);
  pumpChannels(net::now());
  if (const auto* info = channels_.info(channel.key)) syncChannel(channel, *info);
  else channel.state = ReadyState::Closed;
}

void Session::releaseChannel(datachannel::ChannelKey key) {
  pending_ = true;
  channels_.close(key);
  pumpChannels(net::now());
  const auto* info = channels_.info(key);
  if (!info || info->state == datachannel::ChannelState::Closed) {
    channels_.forget(key);
    channelImpls_.erase(key);
  } else if (closedLocally_.contains(key)) {
    channelImpls_.erase(key);  // the manager keeps it (and its stream id) until the connection closes
  }
}

void Session::released(std::size_t cost) {
  if (!sctp_ || closed_) return;
  sctp_->releaseUnread(cost);
  pending_ = true;  // a window update may be due: poll() sends it
}

std::size_t Session::bufferedAmount(const DataChannel::Impl& channel) const {
  if (!sctp_ || channel.id == DataChannel::kUnset) return 0;
  return sctp_->bufferedAmount(static_cast<std::uint16_t>(channel.id));
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
