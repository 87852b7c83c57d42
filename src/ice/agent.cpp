// The ICE agent (agent.hpp): state, connectivity checks, nomination and selection, consent, timers. Gathering
// and TURN live in agent_gather.cpp, the check list (pairs, priorities, frozen states) in agent_pairs.cpp.
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

// ---- checks ----------------------------------------------------------------------------------------------------

void Agent::startChecksIfReady(Timestamp now) {
  if (checking_ || remoteStale_ || remote_.ufrag.empty() || pairs_.empty() || state_ == State::Closed ||
      state_ == State::Failed)  // only restart() leaves failed
    return;
  checking_ = true;
  checksStarted_ = now;
  if (state_ == State::New) setState(State::Checking);
}

void Agent::sendCheck(std::size_t pi, TxKind kind, bool useCandidate, Timestamp now) {
  Pair& p = pairs_[pi];
  Transaction t;
  t.id = stun::randomTransactionId(random_);
  t.kind = kind;
  t.index = pi;
  t.local = sockets_[p.socket].address;
  t.remote = remotes_[p.remote].candidate.address;
  t.key = remote_.pwd;
  t.useCandidate = useCandidate;
  t.controlling = role_ == Role::Controlling;
  t.rto = config_.checkRto;
  t.maxTransmits = config_.checkMaxTransmits;
  t.giveUp = kNever;
  const std::string username = remote_.ufrag + ":" + local_.ufrag;
  stun::MessageBuilder b(t.packet, stun::Method::Binding, stun::Class::Request, t.id);
  b.addString(stun::attr::Username, username).addU32(stun::attr::Priority, prflxPriority(p.socket));
  if (role_ == Role::Controlling) b.addU64(stun::attr::IceControlling, tieBreaker_);
  else b.addU64(stun::attr::IceControlled, tieBreaker_);
  if (useCandidate) b.addFlag(stun::attr::UseCandidate);
  b.addIntegrity(stun::shortTermKey(remote_.pwd)).addFingerprint();
  if (kind == TxKind::Check) {
    p.current = t.id;
    if (p.state != PairState::Succeeded) p.state = PairState::InProgress;
  }
  transmit(t, now);
  transactions_.push_back(std::move(t));
}

void Agent::transmit(Transaction& t, Timestamp now) {
  queue(t.local, t.remote, t.packet, now);
  if (t.kind != TxKind::Gather) ++stats_.checksSent;
  ++t.transmits;
  t.next = now + t.rto;
  t.rto = std::min(t.rto * 2, t.kind == TxKind::Gather ? config_.stunRtoMax : config_.checkRtoMax);
}

void Agent::pace(Timestamp now) {
  if (config_.lite) return;  // RFC 8445 2.5: a lite agent only answers checks
  if (!checking_ || remoteStale_ || state_ == State::Failed || state_ == State::Closed || now < nextPace_) return;
  std::optional<std::size_t> next;
  while (!triggered_.empty() && !next) {
    const std::size_t i = triggered_.front();
    triggered_.pop_front();
    pairs_[i].triggered = false;
    if (pairs_[i].state == PairState::Waiting) next = i;
  }
  // Ordinary checks stop once a pair is selected (RFC 8445 8.1.2), except while an ICE restart runs.
  if (!next && (!selected_ || restarting_)) {
    if (std::none_of(pairs_.begin(), pairs_.end(), [](const Pair& p) { return p.state == PairState::Waiting; }))
      unfreeze();
    for (std::size_t i = 0; i < pairs_.size(); ++i)
      if (pairs_[i].state == PairState::Waiting && (!next || pairs_[i].priority > pairs_[*next].priority)) next = i;
  }
  if (!next) return;
  sendCheck(*next, TxKind::Check, false, now);
  nextPace_ = now + config_.ta;
}

void Agent::onTransactionTimeout(const Transaction& t, Timestamp now) {
  if (t.kind != TxKind::Check) return;  // gathering results stay empty; consent is judged by consentTimeout
  Pair& p = pairs_[t.index];
  if (p.current != t.id) return;
  if (nominating_ == t.index && p.state == PairState::Succeeded) {
    // Only the nomination went unanswered on a pair that worked: nominate again (bounded by failureTimeout;
    // a dead path is caught by consent once selected).
    nominating_.reset();
    maybeNominate(now);
    return;
  }
  p.state = PairState::Failed;
  if (nominating_ == t.index) {
    nominating_.reset();
    maybeNominate(now);
  }
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

void Agent::handleStun(std::size_t si, const SocketAddress& remote, ByteView data, Timestamp now) {
  // Relay-only: nothing is accepted on a host socket (the peer can only have learned it out of policy).
  if (!pairable(si)) return;
  auto m = stun::parse(data);
  if (!m || (m->hasFingerprint() && !m->fingerprintValid())) {
    ++stats_.malformed;
    return;
  }
  if (m->method() != stun::Method::Binding) return;
  switch (m->cls()) {
    case stun::Class::Request: handleRequest(si, remote, *m, now); break;
    case stun::Class::SuccessResponse:
    case stun::Class::ErrorResponse: handleResponse(si, remote, *m, now); break;
    case stun::Class::Indication: break;  // keepalives carry no authentication: nothing to learn
  }
  afterInput(now);
}

void Agent::respondError(std::size_t socket, const SocketAddress& remote, const stun::Message& m, int code,
                         std::string_view reason, std::string_view key, Timestamp now) {
  stun::MessageBuilder b(scratch_, stun::Method::Binding, stun::Class::ErrorResponse, m.transactionId());
  b.addErrorCode(code, reason);
  if (!key.empty()) b.addIntegrity(stun::shortTermKey(key));
  b.addFingerprint();
  queue(sockets_[socket].address, remote, b.finish(), now);
}

void Agent::handleRequest(std::size_t si, const SocketAddress& from, const stun::Message& m, Timestamp now) {
  // RFC 8489 9.1.3: no USERNAME/MESSAGE-INTEGRITY → 400; unknown USERNAME or bad MESSAGE-INTEGRITY → 401.
  auto username = m.username();
  if (!username || !m.hasIntegrity()) {
    ++stats_.malformed;
    respondError(si, from, m, stun::error::BadRequest, "Bad Request", {}, now);
    return;
  }
  const auto colon = username->find(':');
  const auto target = username->substr(0, colon);
  std::string key;
  bool previous = false;
  if (colon != std::string_view::npos && target == local_.ufrag) {
    key = local_.pwd;
  } else if (colon != std::string_view::npos && !previousLocal_.ufrag.empty() && target == previousLocal_.ufrag) {
    key = previousLocal_.pwd;
    previous = true;
  }
  if (key.empty() || !m.checkIntegrity(stun::shortTermKey(key))) {
    ++stats_.authFailures;
    respondError(si, from, m, stun::error::Unauthorized, "Unauthorized", {}, now);
    return;
  }
  auto priority = m.priority();
  if (!priority) {  // RFC 8445 7.3: a check without PRIORITY is malformed
    ++stats_.malformed;
    respondError(si, from, m, stun::error::BadRequest, "Bad Request", key, now);
    return;
  }
  ++stats_.checksReceived;

  // Role conflict, RFC 8445 7.3.1.1: the larger tie-breaker keeps (or takes) the controlling role. A lite agent
  // is controlled whatever the tie-breakers say (6.1.1): a full peer that thinks it is controlled gets a 487 and
  // takes the controlling role.
  if (config_.lite && m.iceControlled()) {
    ++stats_.roleConflicts;
    respondError(si, from, m, stun::error::RoleConflict, "Role Conflict", key, now);
    return;
  }
  if (role_ == Role::Controlling && m.iceControlling()) {
    ++stats_.roleConflicts;
    if (tieBreaker_ >= *m.iceControlling()) {
      respondError(si, from, m, stun::error::RoleConflict, "Role Conflict", key, now);
      return;
    }
    switchRole(Role::Controlled);
  } else if (role_ == Role::Controlled && m.iceControlled()) {
    ++stats_.roleConflicts;
    if (tieBreaker_ >= *m.iceControlled()) {
      switchRole(Role::Controlling);
    } else {
      respondError(si, from, m, stun::error::RoleConflict, "Role Conflict", key, now);
      return;
    }
  }

  stun::MessageBuilder(scratch_, stun::Method::Binding, stun::Class::SuccessResponse, m.transactionId())
      .addXorAddress(stun::attr::XorMappedAddress, from)
      .addIntegrity(stun::shortTermKey(key))
      .addFingerprint();
  queue(sockets_[si].address, from, scratch_, now);

  // RFC 8445 7.3.1.3: an unknown source is a peer-reflexive remote candidate, paired with the receiving base only.
  auto ri = findRemote(from);
  if (!ri) {
    if (pairs_.size() >= config_.maxPairs) return;  // answered, but no room to track another source
    Candidate c;
    c.foundation = "prflx" + std::to_string(remotes_.size());
    c.priority = *priority;
    c.address = from;
    c.type = CandidateType::PeerReflexive;
    remotes_.push_back({c, false});
    ri = remotes_.size() - 1;
  }
  remotes_[*ri].authenticated = true;
  auto pi = findPair(si, *ri);
  if (!pi) {
    if (pairs_.size() >= config_.maxPairs) return;
    pi = addPair(si, *ri);
  }
  noteTraffic(*pi, now);
  if (previous) return;  // a check for the pre-restart generation only keeps the old pair alive

  Pair& p = pairs_[*pi];
  if (config_.lite) {
    // RFC 8445 7.3.1.5 (lite): the pair of the check is valid as soon as it arrives; USE-CANDIDATE nominates
    // it, and the highest-priority nominated pair is selected. The peer's checks on the selected pair are its
    // consent checks: an authenticated one is our consent (we send none of our own).
    p.state = PairState::Succeeded;
    if (m.useCandidate()) p.nominated = true;
    if (selected_ == *pi) lastConsent_ = now;
    updateSelection(now);
    return;
  }
  // RFC 8445 7.3.1.5: the controlled side nominates on USE-CANDIDATE once its own check on the pair succeeded:
  // the nominated flag goes to the valid pair that check produced.
  if (m.useCandidate() && role_ == Role::Controlled) {
    if (p.state == PairState::Succeeded) {
      const std::size_t vi = p.valid.value_or(*pi);
      pairs_[vi].nominated = true;
      if (selected_ == vi) restarting_ = false;
      updateSelection(now);
    } else {
      p.nominateOnSuccess = true;
    }
  }
  // RFC 8445 7.3.1.4: a triggered check (it unfreezes a Frozen pair), or for an in-progress pair an immediate
  // retransmission (it speeds up completion when both sides are behind NATs and the first checks were filtered).
  if ((p.state == PairState::Waiting || p.state == PairState::Frozen || p.state == PairState::Failed) &&
      !p.triggered) {
    p.state = PairState::Waiting;
    p.triggered = true;
    triggered_.push_back(*pi);
  } else if (p.state == PairState::InProgress) {
    auto t = std::find_if(transactions_.begin(), transactions_.end(),
                          [&](const Transaction& x) { return x.id == p.current; });
    if (t != transactions_.end() && t->transmits < t->maxTransmits) transmit(*t, now);
  }
}

void Agent::handleResponse(std::size_t si, const SocketAddress& from, const stun::Message& m, Timestamp now) {
  const auto id = m.transactionId();
  auto it = std::find_if(transactions_.begin(), transactions_.end(), [&](const Transaction& t) { return t.id == id; });
  if (it == transactions_.end()) {
    ++stats_.unmatchedResponses;
    return;
  }
  if (it->kind == TxKind::Gather) {
    // Plain STUN to a server: no credentials exist, so the response is trusted only to come from the server.
    if (from != it->remote) return;
    Transaction t = std::move(*it);
    transactions_.erase(it);
    handleGatherResponse(t, m);
    return;
  }
  if (!m.hasIntegrity() || !m.checkIntegrity(stun::shortTermKey(it->key))) {
    ++stats_.authFailures;  // e.g. a forged or unauthenticated 401: the transaction keeps running
    return;
  }
  Transaction t = std::move(*it);
  transactions_.erase(it);
  ++stats_.responsesReceived;
  Pair& p = pairs_[t.index];
  const bool current = p.current == t.id;
  // RFC 8445 7.2.5.2.1: a response must come back on the same addresses (non-symmetric → the check failed).
  if (from != t.remote || sockets_[si].address != t.local) {
    if (current && t.kind == TxKind::Check && p.state != PairState::Succeeded) p.state = PairState::Failed;
    return;
  }
  if (m.cls() == stun::Class::ErrorResponse) {
    auto code = m.errorCode();
    if (code && code->code == stun::error::RoleConflict) {
      // RFC 8445 7.2.5.1: take the role opposite to the one the request claimed, then retry the pair.
      ++stats_.roleConflicts;
      const Role wanted = t.controlling ? Role::Controlled : Role::Controlling;
      if (role_ != wanted) switchRole(wanted);
      if (t.kind == TxKind::Check && !p.triggered) {
        if (p.state != PairState::Succeeded) p.state = PairState::Waiting;
        p.triggered = true;
        triggered_.push_back(t.index);
      }
    } else if (current && t.kind == TxKind::Check && p.state != PairState::Succeeded) {
      p.state = PairState::Failed;
    }
    return;
  }
  if (t.kind == TxKind::Consent) {
    if (selected_ == t.index) lastConsent_ = now;
    noteTraffic(t.index, now);
    return;
  }
  onPairSucceeded(t.index, t.useCandidate, m.xorMappedAddress(), now);
}

void Agent::onPairSucceeded(std::size_t pi, bool useCandidate, const std::optional<SocketAddress>& mapped,
                            Timestamp now) {
  pairs_[pi].state = PairState::Succeeded;
  // RFC 8445 7.2.5.3.3: a success unfreezes the pairs that share its foundation.
  for (auto& q : pairs_)
    if (q.state == PairState::Frozen && sameFoundation(q, pairs_[pi])) q.state = PairState::Waiting;
  const std::size_t vi = validPairFor(pi, mapped);
  Pair& v = pairs_[vi];
  // RFC 8445 7.2.5.3.4 / 7.3.1.5: nomination sets the flag on the valid pair, not on the pair checked.
  if (useCandidate && role_ == Role::Controlling) v.nominated = true;
  if (pairs_[pi].nominateOnSuccess && role_ == Role::Controlled) v.nominated = true;
  if (nominating_ == pi) nominating_.reset();
  if (v.nominated && selected_ == vi) {
    restarting_ = false;
    previousLocal_ = {};
    lastConsent_ = now;
  }
  noteTraffic(vi, now);
  updateSelection(now);
  maybeNominate(now);
}

void Agent::maybeNominate(Timestamp now) {
  if (role_ != Role::Controlling || (selected_ && !restarting_) || nominating_) return;
  // Only valid pairs are nominated (RFC 8445 8.1.1): a checked pair whose success produced another valid pair
  // (7.2.5.3.2) is not one.
  std::optional<std::size_t> best;
  for (std::size_t i = 0; i < pairs_.size(); ++i)
    if (pairs_[i].state == PairState::Succeeded && !pairs_[i].valid &&
        (!best || pairs_[i].priority > pairs_[*best].priority))
      best = i;
  if (!best) return;
  // Regular nomination (RFC 8445 8.1.1): wait briefly while a better pair may still succeed.
  const bool betterPending = std::any_of(pairs_.begin(), pairs_.end(), [&](const Pair& p) {
    return p.priority > pairs_[*best].priority && (p.state == PairState::Waiting ||
                                                  p.state == PairState::InProgress || p.state == PairState::Frozen);
  });
  if (betterPending && now < nominateAt_) {
    if (nominateAt_ == kNever) nominateAt_ = now + config_.nominationDelay;
    return;
  }
  nominateAt_ = kNever;
  nominating_ = best;
  sendCheck(*best, TxKind::Check, true, now);
}

void Agent::updateSelection(Timestamp now) {
  std::optional<std::size_t> best;
  for (std::size_t i = 0; i < pairs_.size(); ++i) {
    const Pair& p = pairs_[i];
    if (p.nominated && p.state == PairState::Succeeded && (!best || p.priority > pairs_[*best].priority)) best = i;
  }
  if (best && best != selected_) select(best, now);
}

void Agent::select(std::optional<std::size_t> pi, Timestamp now) {
  selected_ = pi;
  Event e{Event::Kind::SelectedPairChanged};
  e.selected = selectedPair();
  emit(std::move(e));
  if (!pi) return;
  RTCPEER_LOG(Info, "ice", "selected " << e.selected->local.toString() << " -> " << e.selected->remote.toString());
  restarting_ = false;
  previousLocal_ = {};
  lastReceived_ = lastConsent_ = now;
  // RFC 8656 12: a channel for the selected relayed pair, so application data goes as 4-byte-header ChannelData.
  const Pair& p = pairs_[*pi];
  if (auto ri = sockets_[p.socket].relay) {
    relays_[*ri].client.bindChannel(remotes_[p.remote].candidate.address, now);
    drainRelay(relays_[*ri]);
  }
  scheduleConsent(now);
  if (state_ != State::Completed) setState(State::Connected);
}

void Agent::scheduleConsent(Timestamp now) {
  if (config_.lite) {  // consent checks are the full peer's job (RFC 7675 4); we answer them
    nextConsent_ = kNever;
    return;
  }
  // RFC 7675 5.1: randomized in [0.8, 1.2] × the interval so that checks of many flows do not synchronize.
  const auto base = config_.consentInterval.count();
  nextConsent_ = now + Duration(random_.between(base * 8 / 10, base * 12 / 10));
}

void Agent::noteTraffic(std::size_t pi, Timestamp now) {
  // Any pair on the selected pair's path counts: a reflexive valid pair shares it with the pair it was checked as.
  if (!selected_ || pairs_[*selected_].socket != pairs_[pi].socket || pairs_[*selected_].remote != pairs_[pi].remote)
    return;
  lastReceived_ = now;
  if (state_ == State::Disconnected) setState(State::Connected);
}

void Agent::noteReceived(const SocketAddress& local, const SocketAddress& remote, Timestamp now) {
  auto si = socketIndex(local);
  auto ri = findRemote(remote);
  if (!si || !ri) return;
  if (auto pi = findPair(*si, *ri)) noteTraffic(*pi, now);
}

void Agent::switchRole(Role r) {
  RTCPEER_LOG(Info, "ice", "role conflict: switching to " << (r == Role::Controlling ? "controlling" : "controlled"));
  role_ = r;
  recomputePriorities();
  nominating_.reset();
  nominateAt_ = kNever;
  Event e{Event::Kind::RoleChanged};
  e.role = r;
  emit(std::move(e));
}

void Agent::updateChecklistOutcome(Timestamp now) {
  if (state_ == State::Closed || state_ == State::Failed) return;
  if (selected_) {
    if (state_ == State::Disconnected) return;
    const bool done = gathering_ == GatheringState::Complete && remoteEndOfCandidates_ && !restarting_;
    setState(done ? State::Completed : State::Connected);
    return;
  }
  if (!checking_) {
    // Relay-only with every allocation failed: nothing can ever be paired, so fail now rather than at a timeout.
    const bool anyPairable = std::any_of(sockets_.begin(), sockets_.end(), [&](const Socket& x) {
      return !config_.relayOnly || (x.relay && relays_[*x.relay].client.state() != TurnClient::State::Failed);
    });
    if (gathering_ == GatheringState::Complete && !anyPairable && (!relays_.empty() || !unresolved_.empty())) {
      failureReason_ = "relay-only and no TURN allocation succeeded";
      for (const auto& why : unresolved_) failureReason_ += "; " + why;
      for (const auto& r : relays_) failureReason_ += "; " + r.client.failureReason();
      setState(State::Failed);
    }
    return;
  }
  // Every pair failed, no candidate can still arrive on either side and the peer never reached us: fail now
  // instead of at the timeout. (If its checks do arrive, they trigger new checks of ours until the timeout.)
  const bool allFailed =
      !pairs_.empty() &&
      std::all_of(pairs_.begin(), pairs_.end(), [](const Pair& p) { return p.state == PairState::Failed; }) &&
      std::none_of(remotes_.begin(), remotes_.end(), [](const Remote& r) { return r.authenticated; });
  if ((allFailed && remoteEndOfCandidates_ && gathering_ == GatheringState::Complete) ||
      now >= checksStarted_ + config_.failureTimeout) {
    failureReason_ = allFailed ? "every candidate pair failed" : "no candidate pair succeeded within failureTimeout";
    setState(State::Failed);
    std::erase_if(transactions_, [](const Transaction& t) { return t.kind != TxKind::Gather; });
    triggered_.clear();
    checking_ = false;
  }
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
