// The ICE agent's check list: forming pairs, their priorities and frozen states (RFC 8445 6.1.2; the rules
// themselves are in check_list.hpp, tested alone), valid pairs with local reflexive candidates (7.2.5.3).
#include <algorithm>

#include "common/log.hpp"
#include "ice/agent.hpp"
#include "ice/foundation.hpp"

namespace rtcpeer::ice {

using detail::foundationFor;

// ---- pairs -----------------------------------------------------------------------------------------------------

std::optional<std::size_t> Agent::socketIndex(const SocketAddress& local) const {
  for (std::size_t i = 0; i < sockets_.size(); ++i)
    if (sockets_[i].address == local) return i;
  return std::nullopt;
}

std::optional<std::size_t> Agent::findRemote(const SocketAddress& address) const {
  for (std::size_t i = 0; i < remotes_.size(); ++i)
    if (remotes_[i].candidate.address == address) return i;
  return std::nullopt;
}

std::optional<std::size_t> Agent::findPair(std::size_t socket, std::size_t remote) const {
  for (std::size_t i = 0; i < pairs_.size(); ++i)
    if (pairs_[i].socket == socket && pairs_[i].remote == remote && !pairs_[i].reflexive) return i;
  return std::nullopt;
}

std::uint64_t Agent::pairPriority(const Pair& p) const {
  // RFC 8445 6.1.2.3, G = the controlling side's candidate priority.
  const std::uint64_t l = p.reflexive ? reflexive_[*p.reflexive].priority : sockets_[p.socket].hostPriority;
  const std::uint64_t r = remotes_[p.remote].candidate.priority;
  return role_ == Role::Controlling ? checklist::pairPriority(l, r) : checklist::pairPriority(r, l);
}

void Agent::recomputePriorities() {
  for (auto& p : pairs_) p.priority = pairPriority(p);
}

std::uint32_t Agent::prflxPriority(std::size_t socket) const {
  return Candidate::computePriority(CandidateType::PeerReflexive, sockets_[socket].localPreference, 1);
}

std::size_t Agent::addPair(std::size_t socket, std::size_t remote, std::optional<std::size_t> reflexive) {
  Pair p;
  p.socket = socket;
  p.remote = remote;
  p.reflexive = reflexive;
  p.priority = pairPriority(p);
  pairs_.push_back(p);
  if (!reflexive) setInitialState(pairs_.size() - 1);
  return pairs_.size() - 1;
}

bool Agent::sameFoundation(const Pair& a, const Pair& b) const {
  // RFC 8445 6.1.2.6: a pair's foundation is its local and remote candidates' foundations together.
  auto local = [&](const Pair& p) -> const std::string& {
    return p.reflexive ? reflexive_[*p.reflexive].foundation : sockets_[p.socket].foundation;
  };
  return local(a) == local(b) && remotes_[a.remote].candidate.foundation == remotes_[b.remote].candidate.foundation;
}

bool Agent::blockedFoundation(const Pair& p) const {
  return checklist::blockedFoundation(pairs_, p, [this](const Pair& a, const Pair& b) { return sameFoundation(a, b); });
}

void Agent::setInitialState(std::size_t pi) {
  checklist::setInitialState(pairs_, pi, [this](const Pair& a, const Pair& b) { return sameFoundation(a, b); });
}

void Agent::unfreeze() {
  checklist::unfreeze(pairs_, [this](const Pair& a, const Pair& b) { return sameFoundation(a, b); });
}

std::size_t Agent::validPairFor(std::size_t pi, const std::optional<SocketAddress>& mapped) {
  // RFC 8445 7.2.5.3.1: the XOR-MAPPED-ADDRESS of a successful check is the local candidate the peer saw. When
  // it is not the checked pair's local candidate (a NAT mapped this path differently from what the STUN server
  // saw, e.g. a symmetric NAT), it is a known server-reflexive candidate of the same base or else a new
  // peer-reflexive one, with the PRIORITY the check carried. It is not signalled to the peer (RFC 8838 does not
  // trickle peer-reflexive candidates).
  const Pair p = pairs_[pi];  // a copy: pairs_ may grow below
  const SocketAddress& base = sockets_[p.socket].address;
  const SocketAddress& checked = p.reflexive ? reflexive_[*p.reflexive].address : base;
  // Past the bound (a peer answering with ever new mappings) the checked pair stands in for its valid pair.
  if (!mapped || *mapped == checked || reflexive_.size() >= config_.maxPairs) {
    pairs_[pi].valid.reset();
    return pi;
  }
  std::optional<std::size_t> ri;
  if (*mapped != base) {
    for (std::size_t i = 0; i < reflexive_.size() && !ri; ++i)
      if (reflexive_[i].socket == p.socket && reflexive_[i].address == *mapped) ri = i;
    if (!ri) {
      Reflexive r{p.socket, *mapped, CandidateType::PeerReflexive, prflxPriority(p.socket),
                  foundationFor("prflx", base, {})};
      for (const auto& c : localCandidates_)
        if (c.type == CandidateType::ServerReflexive && c.address == *mapped && c.related == base) {
          r.type = c.type;
          r.priority = c.priority;
          r.foundation = c.foundation;
        }
      RTCPEER_LOG(Debug, "ice", "local " << toString(r.type) << " candidate " << mapped->toString() << " (base "
                                         << base.toString() << ")");
      reflexive_.push_back(std::move(r));
      ri = reflexive_.size() - 1;
    }
  }
  // RFC 8445 7.2.5.3.2: the valid pair is (that local candidate, the remote candidate checked).
  std::optional<std::size_t> vi;
  for (std::size_t i = 0; i < pairs_.size() && !vi; ++i)
    if (pairs_[i].socket == p.socket && pairs_[i].remote == p.remote && pairs_[i].reflexive == ri) vi = i;
  if (!vi) vi = addPair(p.socket, p.remote, ri);
  pairs_[*vi].state = PairState::Succeeded;
  if (*vi == pi) pairs_[pi].valid.reset();
  else pairs_[pi].valid = vi;
  return *vi;
}

void Agent::formPairs(std::size_t remote) {
  // Pairs are formed with the bases only: a server-reflexive local candidate would give the same pair as its base
  // and is pruned anyway (RFC 8445 6.1.2.4). Loopback pairs only with loopback.
  const auto& ra = remotes_[remote].candidate.address;
  for (std::size_t s = 0; s < sockets_.size(); ++s) {
    const auto& la = sockets_[s].address;
    if (!pairable(s)) continue;
    if (la.family() != ra.family() || la.isLoopback() != ra.isLoopback() || findPair(s, remote)) continue;
    if (pairs_.size() >= config_.maxPairs) {
      RTCPEER_LOG(Debug, "ice", "check list full; pair " << la.toString() << " -> " << ra.toString() << " pruned");
      continue;
    }
    addPair(s, remote);
  }
}

bool Agent::hasCheckablePair() const {
  return checklist::hasCheckablePair(pairs_, [this](const Pair& a, const Pair& b) { return sameFoundation(a, b); });
}

}  // namespace rtcpeer::ice
