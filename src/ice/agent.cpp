// The ICE agent (agent.hpp): its state and events, the remote description (credentials, candidates), input
// dispatch, timers, restart and close. The other concerns live in their own files: gathering (agent_gather.cpp),
// TURN (agent_turn.cpp), the check list: pairs, priorities, frozen states, valid pairs (agent_pairs.cpp),
// connectivity checks: sending and answering Binding requests (agent_checks.cpp), nomination, selection and
// consent (agent_nominate.cpp).
#include "ice/agent.hpp"

#include <algorithm>

#include "common/log.hpp"

namespace rtcpeer::ice {

std::string_view toString(State s) noexcept {
  switch (s) {
    case State::New: return "new";
    case State::Checking: return "checking";
    case State::Connected: return "connected";
    case State::Completed: return "completed";
    case State::Disconnected: return "disconnected";
    case State::Failed: return "failed";
    case State::Closed: return "closed";
  }
  return "new";
}

Agent::Agent(AgentConfig config, Random& random)
    : config_(std::move(config)), random_(random), role_(config_.role), tieBreaker_(random.u64()) {
  if (config_.lite) {
    // RFC 8445 2.5 / 5.1.1.1: a lite agent has host candidates only; 6.1.1: it is always controlled (a lite peer
    // of a lite agent is refused by the caller).
    config_.stunServers.clear();
    config_.turnServers.clear();
    config_.pendingNames = 0;
    config_.relayOnly = false;
    role_ = Role::Controlled;
  }
  local_ = config_.local;
  if (local_.ufrag.empty() || local_.pwd.empty()) generateCredentials();
}

void Agent::generateCredentials() {
  // RFC 8445 5.3: ufrag >= 24 bits and pwd >= 128 bits of randomness; 8 and 24 ice-chars give 48 and 144 bits.
  local_.ufrag = random_.iceChars(8);
  local_.pwd = random_.iceChars(24);
}

void Agent::emit(Event e) { events_.push_back(std::move(e)); }

void Agent::setState(State s) {
  if (s == state_) return;
  RTCPEER_LOG(Debug, "ice", "state " << toString(state_) << " -> " << toString(s));
  state_ = s;
  Event e{Event::Kind::StateChanged};
  e.state = s;
  emit(std::move(e));
}

void Agent::emitCandidate(const Candidate& c) {
  localCandidates_.push_back(c);
  Event e{Event::Kind::CandidateGathered};
  e.candidate = c;
  emit(std::move(e));
}

void Agent::queue(const SocketAddress& local, const SocketAddress& remote, ByteView data, Timestamp now) {
  auto si = socketIndex(local);
  if (si && sockets_[*si].relay) {
    // From a relayed address: through the TURN server (ChannelData, or a Send indication; held by the client
    // until the permission for `remote` exists).
    Relay& r = relays_[*sockets_[*si].relay];
    if (auto framed = r.client.wrap(remote, data, now)) {
      transmits_.push_back({r.base ? sockets_[*r.base].address : SocketAddress{}, r.client.server().address,
                            Bytes(framed->begin(), framed->end()), r.client.server().transport});
    }
    drainRelay(r);
    return;
  }
  transmits_.push_back({local, remote, Bytes(data.begin(), data.end())});
}

// ---- remote side -----------------------------------------------------------------------------------------------

void Agent::setRemoteCredentials(std::string ufrag, std::string pwd, Timestamp now) {
  if (state_ == State::Closed) return;
  if (remoteStale_ || (!remote_.ufrag.empty() && ufrag != remote_.ufrag)) {
    // The peer restarted (RFC 8445 9): forget its old candidates and pairs, but keep the selected pair (moved to
    // index 0) so data keeps flowing until the new checks select a pair.
    std::vector<Remote> keptRemotes;
    std::vector<Pair> keptPairs;
    std::vector<Reflexive> keptReflexive;
    if (selected_) {
      Pair p = pairs_[*selected_];
      keptRemotes.push_back(remotes_[p.remote]);
      keptRemotes.back().authenticated = false;
      p.remote = 0;
      p.valid.reset();
      if (p.reflexive) {
        keptReflexive.push_back(reflexive_[*p.reflexive]);
        p.reflexive = 0;
      }
      p.state = PairState::Waiting;  // re-checked with the new credentials
      p.nominated = p.nominateOnSuccess = p.triggered = false;
      keptPairs.push_back(p);
      selected_ = 0;
      restarting_ = true;
    }
    remotes_ = std::move(keptRemotes);
    pairs_ = std::move(keptPairs);
    reflexive_ = std::move(keptReflexive);
    triggered_.clear();
    std::erase_if(transactions_, [](const Transaction& t) { return t.kind == TxKind::Check; });
    nominating_.reset();
    nominateAt_ = kNever;
    remoteEndOfCandidates_ = false;
    checking_ = false;
    remoteStale_ = false;
  }
  remote_ = {std::move(ufrag), std::move(pwd)};
  afterInput(now);
}

Status Agent::addRemoteCandidate(const Candidate& c, Timestamp now) {
  if (state_ == State::Closed) return okStatus();
  // Ignored, never errors: TCP (not supported yet), other components (rtcp-mux is mandatory in WebRTC), mDNS
  // names (not resolved: the peer's checks reveal its address as peer-reflexive), stale generations.
  if (c.transport != Transport::Udp || c.component != 1 || c.isMdns()) return okStatus();
  if (auto u = c.extension("ufrag"); !u.empty() && !remote_.ufrag.empty() && u != remote_.ufrag) return okStatus();
  if (!c.address.valid()) return fail("ICE: remote candidate without an address");
  if (auto r = findRemote(c.address)) {
    // Already learned as peer-reflexive from its checks: adopt the signalled type, priority and foundation.
    auto& known = remotes_[*r].candidate;
    if (known.type == CandidateType::PeerReflexive && c.type != CandidateType::PeerReflexive) {
      known = c;
      recomputePriorities();
    }
    return okStatus();
  }
  remotes_.push_back({c, false});
  formPairs(remotes_.size() - 1);
  afterInput(now);
  return okStatus();
}

void Agent::addRemoteEndOfCandidates(Timestamp now) {
  remoteEndOfCandidates_ = true;
  afterInput(now);
}

// ---- input -----------------------------------------------------------------------------------------------------

std::optional<AppDatagram> Agent::handleDatagram(const SocketAddress& local, const SocketAddress& remote,
                                                ByteView data, Timestamp now) {
  auto si = socketIndex(local);
  if (state_ == State::Closed || !si) return std::nullopt;
  // TURN server traffic first: responses, Data indications and ChannelData all come from the server's address.
  // Binding is never TURN: the same server often answers our server-reflexive queries too.
  const bool binding = stun::looksLikeStun(data) && stun::methodOf(loadBe16(data.data())) == stun::Method::Binding;
  for (auto& r : relays_) {
    if (binding || r.base != si || r.client.server().address != remote) continue;
    auto in = r.client.handleMessage(data, now);
    auto app = in ? deliverRelayed(r, *in, now) : std::nullopt;
    syncRelays(now);
    afterInput(now);
    return app;
  }
  if (!stun::looksLikeStun(data)) return AppDatagram{local, remote, data};
  handleStun(*si, remote, data, now);
  return std::nullopt;
}

void Agent::afterInput(Timestamp now) {
  checkGatheringDone();
  startChecksIfReady(now);
  updateChecklistOutcome(now);
  pace(now);
}

// ---- time ------------------------------------------------------------------------------------------------------

void Agent::handleTimeout(Timestamp now) {
  if (state_ == State::Closed) return;
  for (auto& r : relays_)
    if (r.client.nextDeadline() <= now) r.client.handleTimeout(now);
  syncRelays(now);
  for (std::size_t i = 0; i < transactions_.size();) {
    Transaction& t = transactions_[i];
    if (now >= t.giveUp || (t.next <= now && t.transmits >= t.maxTransmits)) {
      Transaction dead = std::move(t);
      transactions_.erase(transactions_.begin() + static_cast<std::ptrdiff_t>(i));
      onTransactionTimeout(dead, now);
      continue;
    }
    if (t.next <= now) transmit(t, now);
    ++i;
  }
  if (now >= nominateAt_) {
    nominateAt_ = now;  // forces maybeNominate past the wait
    maybeNominate(now);
  }
  if (selected_ && state_ != State::Failed) {
    if (now >= lastConsent_ + config_.consentTimeout) {
      RTCPEER_LOG(Info, "ice", "consent expired");
      failureReason_ = "consent expired: no authenticated response on the selected pair (RFC 7675)";
      setState(State::Failed);
      select(std::nullopt, now);
      transactions_.clear();
      triggered_.clear();
      checking_ = false;
      nextConsent_ = kNever;
    } else {
      if (state_ != State::Disconnected && now >= lastReceived_ + config_.disconnectedTimeout)
        setState(State::Disconnected);
      if (now >= nextConsent_) {
        sendCheck(*selected_, TxKind::Consent, false, now);
        scheduleConsent(now);
      }
    }
  }
  afterInput(now);
}

Timestamp Agent::nextDeadline() const {
  if (state_ == State::Closed) return kNever;
  Timestamp d = kNever;
  for (const auto& r : relays_) d = earliest(d, r.client.nextDeadline());
  for (const auto& t : transactions_) d = earliest(d, earliest(t.next, t.giveUp));
  if (checking_ && !config_.lite && !remoteStale_ && state_ != State::Failed &&
      (!triggered_.empty() || ((!selected_ || restarting_) && hasCheckablePair())))
    d = earliest(d, nextPace_);
  d = earliest(d, nominateAt_);
  if (selected_ && state_ != State::Failed) {
    d = earliest(d, nextConsent_);
    d = earliest(d, lastConsent_ + config_.consentTimeout);
    if (state_ != State::Disconnected) d = earliest(d, lastReceived_ + config_.disconnectedTimeout);
  }
  if (checking_ && !selected_ && state_ != State::Failed) d = earliest(d, checksStarted_ + config_.failureTimeout);
  return d;
}

// ---- commands and output ---------------------------------------------------------------------------------------

void Agent::restart(Timestamp now) {
  if (state_ == State::Closed) return;
  previousLocal_ = local_;
  generateCredentials();
  restarting_ = selected_.has_value();
  remoteStale_ = true;  // new checks wait for the peer's new credentials
  // Fresh candidates for the new generation on the same sockets.
  localCandidates_.clear();
  srflxResults_.clear();
  std::erase_if(transactions_, [](const Transaction& t) { return t.kind == TxKind::Gather; });
  gathering_ = GatheringState::Gathering;
  for (std::size_t s = 0; s < sockets_.size(); ++s) gatherOn(s, now);
  if (state_ == State::Failed) {
    checking_ = false;
    failureReason_.clear();
    setState(State::New);
  }
  afterInput(now);
}

void Agent::close() {
  if (state_ == State::Closed) return;
  for (auto& r : relays_) {  // deallocate (RFC 8656 7)
    r.client.close();
    drainRelay(r);
  }
  transactions_.clear();
  triggered_.clear();
  checking_ = false;
  if (selected_) {
    selected_.reset();
    Event e{Event::Kind::SelectedPairChanged};
    emit(std::move(e));
  }
  setState(State::Closed);
}

std::optional<Transmit> Agent::pollTransmit() {
  if (transmits_.empty()) return std::nullopt;
  Transmit t = std::move(transmits_.front());
  transmits_.pop_front();
  return t;
}

std::optional<Event> Agent::pollEvent() {
  if (events_.empty()) return std::nullopt;
  Event e = std::move(events_.front());
  events_.pop_front();
  return e;
}

std::optional<SelectedPair> Agent::selectedPair() const {
  if (!selected_ || state_ == State::Failed || state_ == State::Closed) return std::nullopt;
  const Pair& p = pairs_[*selected_];
  const Socket& s = sockets_[p.socket];
  SelectedPair out{s.address, s.address, remotes_[p.remote].candidate.address,
                   s.relay ? CandidateType::Relay : CandidateType::Host, remotes_[p.remote].candidate.type};
  if (p.reflexive) {
    out.local = reflexive_[*p.reflexive].address;
    out.localType = reflexive_[*p.reflexive].type;
  }
  return out;
}

bool Agent::isRemoteValid(const SocketAddress& local, const SocketAddress& remote) const {
  auto si = socketIndex(local);
  auto ri = findRemote(remote);
  if (!si || !ri) return false;
  if (remotes_[*ri].authenticated) return true;
  return std::any_of(pairs_.begin(), pairs_.end(), [&](const Pair& p) {
    return p.socket == *si && p.remote == *ri && p.state == PairState::Succeeded;
  });
}

}  // namespace rtcpeer::ice
