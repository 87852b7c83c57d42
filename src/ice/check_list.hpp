// The ICE check list's rules that need nothing but the pairs themselves (RFC 8445 6.1.2): a pair's priority from its
// two candidates' priorities, and the Frozen/Waiting states of pairs that share a foundation, as pairs arrive one by
// one with trickle ICE (RFC 8838) and when the agent looks for the next pair to check. The agent (agent_pairs.cpp)
// keeps the pairs and says which share a foundation; these functions decide, so they can be tested alone.
//
// `Pairs` is a random-access container of pairs with members `state` (PairState), `priority` (std::uint64_t) and
// `triggered` (bool: queued for a triggered check); `same(a, b)` is true when two pairs share a foundation.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>

namespace rtcpeer::ice {

// RFC 8445 6.1.2.6: a pair starts Frozen unless it leads its foundation (see unfreeze()).
enum class PairState : std::uint8_t { Frozen, Waiting, InProgress, Succeeded, Failed };

namespace checklist {

/// RFC 8445 6.1.2.3: 2^32*MIN(G,D) + 2*MAX(G,D) + (G>D?1:0), G the controlling side's candidate priority and D the
/// controlled side's.
constexpr std::uint64_t pairPriority(std::uint64_t g, std::uint64_t d) noexcept {
  return (std::min(g, d) << 32) + 2 * std::max(g, d) + (g > d ? 1 : 0);
}

/// True if a pair of p's foundation is Waiting or In-Progress (p then stays Frozen).
template <class Pairs, class Pair, class Same>
bool blockedFoundation(const Pairs& pairs, const Pair& p, Same same) {
  return std::any_of(pairs.begin(), pairs.end(), [&](const Pair& q) {
    return (q.state == PairState::Waiting || q.state == PairState::InProgress) && same(p, q);
  });
}

/// The state of the newly added pair `pi`, and of the pairs it takes the lead from.
template <class Pairs, class Same>
void setInitialState(Pairs& pairs, std::size_t pi, Same same) {
  // RFC 8445 6.1.2.6: only the highest-priority pair of each foundation starts Waiting, the rest Frozen: pairs of
  // one foundation tend to succeed or fail together, so checking one first saves the others' checks. With
  // trickle (RFC 8838) pairs arrive one by one: a new pair is Frozen behind a same-foundation pair that is
  // being checked or leads it, takes the lead from a lower-priority one not yet checked, and is Waiting at once
  // if its foundation already succeeded (RFC 8445 7.2.5.3.3 unfroze that foundation).
  auto& p = pairs[pi];
  p.state = PairState::Waiting;
  for (std::size_t i = 0; i < pairs.size(); ++i) {
    const auto& q = pairs[i];
    if (i == pi || !same(p, q)) continue;
    if (q.state == PairState::Succeeded) {
      p.state = PairState::Waiting;
      return;
    }
    const bool leads = q.state == PairState::Waiting && (q.triggered || q.priority >= p.priority);
    if (q.state == PairState::InProgress || leads) p.state = PairState::Frozen;
  }
  if (p.state != PairState::Waiting) return;
  for (std::size_t i = 0; i < pairs.size(); ++i)
    if (i != pi && pairs[i].state == PairState::Waiting && !pairs[i].triggered && same(p, pairs[i]))
      pairs[i].state = PairState::Frozen;
}

/// RFC 8445 6.1.4.2 step 2: with nothing Waiting, each foundation that has no pair Waiting or In-Progress gets
/// its highest-priority Frozen pair unfrozen. Unfreezing one blocks the rest of its foundation.
template <class Pairs, class Same>
void unfreeze(Pairs& pairs, Same same) {
  for (std::size_t i = 0; i < pairs.size(); ++i) {
    const auto& p = pairs[i];
    if (p.state != PairState::Frozen || blockedFoundation(pairs, p, same)) continue;
    const bool best = std::none_of(pairs.begin(), pairs.end(), [&](const auto& q) {
      return q.state == PairState::Frozen && q.priority > p.priority && same(p, q);
    });
    if (best) pairs[i].state = PairState::Waiting;
  }
}

/// A pair is Waiting, or Frozen in a foundation that unfreeze() would unblock.
template <class Pairs, class Same>
bool hasCheckablePair(const Pairs& pairs, Same same) {
  using Pair = typename Pairs::value_type;
  return std::any_of(pairs.begin(), pairs.end(), [](const Pair& p) { return p.state == PairState::Waiting; }) ||
         std::any_of(pairs.begin(), pairs.end(),
                     [&](const Pair& p) { return p.state == PairState::Frozen && !blockedFoundation(pairs, p, same); });
}

}  // namespace checklist
}  // namespace rtcpeer::ice
