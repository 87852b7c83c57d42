// The core's offer/answer (JSEP): local and remote descriptions, the ICE agent's creation from the configuration,
// ICE servers by IP literal or by name (Resolve requests, answered by handleResolved), the local addresses and the
// start of gathering, remote candidates, and ICE restart.
#include <algorithm>

#include "common/log.hpp"
#include "ice/candidate.hpp"
#include "peer/connection.hpp"

namespace rtcpeer::peer {

namespace {

std::string_view trimLine(std::string_view s) {
  while (!s.empty() && (s.back() == '\r' || s.back() == '\n' || s.back() == ' ')) s.remove_suffix(1);
  while (!s.empty() && s.front() == ' ') s.remove_prefix(1);
  if (s.starts_with("a=")) s.remove_prefix(2);
  return s;
}

}  // namespace

sdp::LocalParams Connection::localParams(sdp::Setup setup) const {
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

Outcome Connection::createOffer() {
  if (channels_.channelCount() == 0)
    return failure(Error::Unconfigured, "createOffer needs at least one data channel (createDataChannel first)");
  if (signaling_ != SignalingState::Stable)
    return failure(Error::Failed, "createOffer is only allowed in the stable signaling state");
  ++sessionVersion_;
  createdType_ = "offer";
  createdSdp_ = sdp::generateOffer(localParams(sdp::Setup::ActPass));
  push(out::Description{createdType_, createdSdp_});
  return Outcome::ok();
}

Outcome Connection::setLocalDescription(std::string_view type, std::string_view text, Timestamp now) {
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
    signaling_ = SignalingState::HaveLocalOffer;
    if (!agent_) createAgent(ice::Role::Controlling);
  } else {
    signaling_ = type == "pranswer" ? SignalingState::HaveLocalPranswer : SignalingState::Stable;
  }
  haveLocal_ = true;
  restartPending_ = false;  // the new credentials are out: candidates of the restarted gathering may follow
  if (!heldCandidates_.empty()) {
    for (auto& c : heldCandidates_) push(std::move(c));
    heldCandidates_.clear();
  }
  return startTransport(now);
}

Outcome Connection::setRemoteDescription(std::string_view type, std::string_view text, Timestamp now) {
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

  // A remote offer with new ICE credentials restarts ICE (RFC 8445 9.2): we answer with new credentials too.
  if (offer && remote_ && agent_ && remote_->media[remoteSection_].iceUfrag != parsed->media[*section].iceUfrag &&
      !restartPending_)
    restartIce(now);
  if (offer) {
    // The answer mirrors the offer's m-lines, so our candidates belong to the offer's data section.
    ++sessionVersion_;
    const auto setup = sdp::answerSetup(parsed->media[*section].setup);
    auto generated = sdp::generateAnswer(*parsed, localParams(setup));
    if (!generated) return failure(Error::InvalidParameter, "cannot answer this offer: " + generated.reason());
    if (auto o = applyRemote(*parsed, *section, true, now); o.code != Error::Ok) return o;
    createdType_ = "answer";
    createdSdp_ = std::move(*generated);
    signaling_ = SignalingState::HaveRemoteOffer;
    push(out::Description{createdType_, createdSdp_});
    return Outcome::ok();
  }
  if (auto o = applyRemote(*parsed, *section, false, now); o.code != Error::Ok) return o;
  signaling_ = type == "pranswer" ? SignalingState::HaveRemotePranswer : SignalingState::Stable;
  return startTransport(now);
}

Outcome Connection::applyRemote(const sdp::SessionDescription& remote, std::size_t section, bool isOffer,
                                Timestamp now) {
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
  const bool restarted = remote_ && remote_->media[remoteSection_].iceUfrag != m.iceUfrag;
  const bool first = !remote_;
  dirty_ = true;
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
  if (restarted) {
    RTCPEER_LOG(Info, "peer", "ICE restart: the peer's new credentials");
    agent_->setRemoteCredentials(m.iceUfrag, m.icePwd, now);
  }
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
      dtlsStartedAt_ = now;
    }
  }
  for (const auto& c : candidates)
    if (auto s = agent_->addRemoteCandidate(c, now); !s) RTCPEER_LOG(Info, "peer", s.reason());
  if (m.endOfCandidates) agent_->addRemoteEndOfCandidates(now);
  return Outcome::ok();
}

void Connection::createAgent(ice::Role role) {
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
      if (auto literal = SocketAddress::parse(u.host, u.port)) {
        addServer(u, *literal, server.username, server.credential, &ac, nullptr);
        continue;
      }
      // A name ("localhost" too): resolved by the shell while gathering runs (handleResolved feeds the answer
      // to the agent).
      names_.push_back({nextNameId_++, url, u, server.username, server.credential});
      push(out::Resolve{names_.back().id, u.host, u.port});
      ++ac.pendingNames;
      turnByName |= u.scheme != IceServerUrl::Scheme::Stun;
    }
  }
  ac.relayOnly = config_.relayOnly;
  if (ac.relayOnly && ac.turnServers.empty() && !turnByName)
    RTCPEER_LOG(Warning, "peer", "relay-only policy without a turn:/turns: server: no candidate can be gathered");
  agent_.emplace(std::move(ac), random_);
}

// One server address: a STUN server, or a TURN server (with its stream, for TCP/TLS), into the agent's
// configuration before it exists or into a resolved answer after.
void Connection::addServer(const IceServerUrl& u, const SocketAddress& address, const std::string& username,
                           const std::string& credential, ice::AgentConfig* config, ice::Agent::Resolved* resolved) {
  if (u.scheme == IceServerUrl::Scheme::Stun) {
    (config ? config->stunServers : resolved->stun).push_back(address);
    return;
  }
  const auto transport = u.scheme == IceServerUrl::Scheme::Turns        ? ice::TurnTransport::Tls
                         : u.transport == IceServerUrl::Transport::Tcp ? ice::TurnTransport::Tcp
                                                                       : ice::TurnTransport::Udp;
  (config ? config->turnServers : resolved->turn).push_back({address, transport, username, credential});
  if (transport != ice::TurnTransport::Udp) streams_.push_back({transport, address, u.host});
}

// Answers become servers of the agent: one per address family (the first address of each, as browsers use one
// address per server and family); a name that did not resolve is reported with its reason.
void Connection::handleResolved(std::uint64_t id, std::span<const SocketAddress> addresses, std::string_view error,
                                Timestamp now) {
  auto it = std::find_if(names_.begin(), names_.end(), [&](const PendingName& n) { return n.id == id; });
  if (it == names_.end()) return;
  const PendingName name = std::move(*it);
  names_.erase(it);
  if (!agent_ || closed_) return;
  dirty_ = true;
  ice::Agent::Resolved r;
  r.url = name.url;
  r.error = std::string(error);
  bool v4 = false, v6 = false;
  for (auto address : addresses) {
    if (std::exchange(address.isV4() ? v4 : v6, true)) continue;
    address.setPort(name.parsed.port);
    RTCPEER_LOG(Info, "peer", "ICE server " << name.url << " is " << address.toString());
    addServer(name.parsed, address, name.username, name.credential, nullptr, &r);
  }
  agent_->handleResolved(r, now);
}

// Starts gathering once we have a local description and the shell's sockets, and arms the connect timeout once
// both descriptions are in (that is when connectivity checks can start).
Outcome Connection::startTransport(Timestamp now) {
  dirty_ = true;
  if (haveLocal_ && remote_ && connection_ == ConnectionState::New && addressesGiven_) {
    setConnection(ConnectionState::Connecting);
    connectDeadline_ = now + std::chrono::duration_cast<Duration>(config_.connectTimeout);
  }
  return Outcome::ok();
}

void Connection::setLocalAddresses(std::span<const SocketAddress> locals, Timestamp now) {
  if (!wantsLocalAddresses() || !agent_) return;
  addressesGiven_ = true;
  push(out::Gathering{GatheringState::Gathering});
  agent_->startGathering(locals, now);
  startTransport(now);
}

void Connection::restartIce(Timestamp now) {
  if (!agent_ || closed_) return;
  agent_->restart(now);
  localCredentials_ = agent_->localCredentials();
  restartPending_ = true;  // the restarted gathering's candidates wait for the new local description
  dirty_ = true;
}

Outcome Connection::addIceCandidate(std::string_view media, int index, std::string_view name, Timestamp now) {
  if (!remote_) return failure(Error::Unconfigured, "addIceCandidate needs a remote description first");
  const auto& m = remote_->media[remoteSection_];
  if (!media.empty() ? media != m.mid : index != static_cast<int>(remoteSection_))
    return failure(Error::InvalidParameter,
                   "the candidate's media (mid '" + std::string(media) + "', index " + std::to_string(index) +
                       ") is not the data-channel section (mid '" + m.mid + "', index " +
                       std::to_string(remoteSection_) + ")");
  dirty_ = true;
  std::string_view line = trimLine(name);
  if (line.empty() || line == "end-of-candidates") {
    agent_->addRemoteEndOfCandidates(now);
    return Outcome::ok();
  }
  auto c = ice::parseCandidate(line);
  if (!c) return failure(Error::InvalidParameter, "malformed candidate: " + c.reason());
  if (auto s = agent_->addRemoteCandidate(*c, now); !s) return failure(Error::InvalidParameter, s.reason());
  return Outcome::ok();
}

}  // namespace rtcpeer::peer
