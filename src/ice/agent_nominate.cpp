// The ICE agent's nomination and selection (RFC 8445 8.1: regular nomination by the controlling agent, the
// selected pair), consent freshness on the selected pair (RFC 7675), role switching on a conflict, and the check
// list's overall outcome (connected, completed, failed).
#include <algorithm>

#include "common/log.hpp"
#include "ice/agent.hpp"

namespace rtcpeer::ice {


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

}  // namespace rtcpeer::ice
