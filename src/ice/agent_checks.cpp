// The ICE agent's connectivity checks (RFC 8445 7.2): sending Binding requests on the check list's pairs, paced
// (Ta) and retransmitted, triggered checks, and answering the peer's Binding requests (7.3): authentication, role
// conflicts (7.3.1.1), peer-reflexive candidates (7.3.1.3); the responses' outcome (7.2.5).
#include <algorithm>

#include "common/log.hpp"
#include "ice/agent.hpp"

namespace rtcpeer::ice {

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

}  // namespace rtcpeer::ice
