// Session's offer/answer (JSEP): local and remote descriptions, the ICE agent's creation from the configuration,
// ICE servers resolved by name, binding the sockets and starting gathering, and remote candidates.
#include <algorithm>

#include "common/log.hpp"
#include "ice/candidate.hpp"
#include "peer/session.hpp"

namespace rtcpeer {

namespace {

bool isLoopbackLiteral(const std::string& s) {
  auto a = SocketAddress::parse(s, 0);
  return a && a->isLoopback();
}

std::string_view trimLine(std::string_view s) {
  while (!s.empty() && (s.back() == '\r' || s.back() == '\n' || s.back() == ' ')) s.remove_suffix(1);
  while (!s.empty() && s.front() == ' ') s.remove_prefix(1);
  if (s.starts_with("a=")) s.remove_prefix(2);
  return s;
}

}  // namespace

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
    const net::MuxJoin join{localCredentials_.ufrag, poller_};
    auto bindInto = [&](const net::BindOptions& o) {
      auto bound = net::bindLocal(o, config_.udpMux ? &join : nullptr);
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

}  // namespace rtcpeer
