// The check list's rules alone (check_list.hpp): pair priorities (RFC 8445 6.1.2.3) and the Frozen/Waiting states
// of pairs grouped by foundation (6.1.2.6, 6.1.4.2), with pairs arriving one by one as trickle ICE adds them.
#include <gtest/gtest.h>

#include <cstdint>
#include <string>
#include <vector>

#include "ice/check_list.hpp"

namespace rtcpeer::ice {
namespace {

struct P {
  PairState state = PairState::Waiting;
  std::uint64_t priority = 0;
  bool triggered = false;
  char foundation = 'a';
};

const auto same = [](const P& a, const P& b) { return a.foundation == b.foundation; };

class CheckList : public ::testing::Test {
 protected:
  std::size_t add(char foundation, std::uint64_t priority) {
    pairs.push_back(P{PairState::Waiting, priority, false, foundation});
    checklist::setInitialState(pairs, pairs.size() - 1, same);
    return pairs.size() - 1;
  }
  // The states as letters: F(rozen), W(aiting), I(n progress), S(ucceeded), X (failed).
  std::string states() const {
    std::string s;
    for (const auto& p : pairs) s += "FWISX"[static_cast<int>(p.state)];
    return s;
  }
  std::vector<P> pairs;
};

TEST(CheckListPriority, FormulaAndBothSidesAgree) {
  // 2^32*MIN(G,D) + 2*MAX(G,D) + (G>D?1:0)
  EXPECT_EQ(checklist::pairPriority(100, 100), (100ull << 32) + 200);
  EXPECT_EQ(checklist::pairPriority(200, 100), (100ull << 32) + 400 + 1);
  EXPECT_EQ(checklist::pairPriority(100, 200), (100ull << 32) + 400);
  // Which side is controlling matters (the last term breaks ties), so each agent passes the controlling side's
  // candidate first and both compute the same number for a pair.
  const std::uint64_t controlling = 2130706431, controlled = 1694498815;
  EXPECT_EQ(checklist::pairPriority(controlling, controlled), checklist::pairPriority(controlled, controlling) + 1);
  // The lower candidate priority dominates: a host-host pair outranks a host-relay one.
  EXPECT_GT(checklist::pairPriority(2130706431, 2130706431), checklist::pairPriority(2130706431, 16777215));
  EXPECT_GT(checklist::pairPriority(126, 126), checklist::pairPriority(0x7FFFFFFF, 125));  // priorities < 2^31
}

TEST_F(CheckList, OnlyTheBestPairOfAFoundationStartsWaiting) {
  add('a', 30);
  add('a', 20);
  add('a', 10);
  EXPECT_EQ(states(), "WFF");
}

TEST_F(CheckList, EveryFoundationHasItsOwnLeader) {
  add('a', 30);
  add('b', 20);
  add('a', 10);
  add('c', 5);
  EXPECT_EQ(states(), "WWFW");
}

TEST_F(CheckList, ABetterPairArrivingLaterTakesTheLead) {
  add('a', 10);
  add('a', 30);
  EXPECT_EQ(states(), "FW");
  add('a', 20);
  EXPECT_EQ(states(), "FWF");
}

TEST_F(CheckList, NewPairWaitsBehindACheckInProgress) {
  add('a', 10);
  pairs[0].state = PairState::InProgress;
  add('a', 30);  // better, but the foundation is being checked
  EXPECT_EQ(states(), "IF");
}

TEST_F(CheckList, NewPairOfASucceededFoundationIsWaitingAtOnce) {
  add('a', 30);
  add('a', 20);
  pairs[0].state = PairState::Succeeded;
  add('a', 10);
  EXPECT_EQ(states(), "SFW");
}

TEST_F(CheckList, TriggeredPairKeepsTheLead) {
  add('a', 10);
  pairs[0].triggered = true;  // queued for a triggered check: it will be checked next, whatever its priority
  add('a', 30);
  EXPECT_EQ(states(), "WF");
}

TEST_F(CheckList, UnfreezeWakesTheBestFrozenPairOfEachIdleFoundation) {
  add('a', 30);
  add('a', 20);
  add('a', 10);
  add('b', 25);
  add('b', 15);
  add('c', 40);
  add('c', 35);
  EXPECT_EQ(states(), "WFFWFWF");
  pairs[0].state = PairState::Failed;      // foundation a: its leader failed
  pairs[3].state = PairState::InProgress;  // foundation b: still being checked
  pairs[5].state = PairState::Succeeded;   // foundation c: done
  checklist::unfreeze(pairs, same);
  // a: the next best pair only; b: blocked by the check in progress; c: its next pair too.
  EXPECT_EQ(states(), "XWFIFSW");
  // Unfreezing again changes nothing while those are Waiting.
  checklist::unfreeze(pairs, same);
  EXPECT_EQ(states(), "XWFIFSW");
}

TEST_F(CheckList, CheckablePairs) {
  EXPECT_FALSE(checklist::hasCheckablePair(pairs, same));
  add('a', 30);
  add('a', 20);
  EXPECT_TRUE(checklist::hasCheckablePair(pairs, same));  // a Waiting pair
  pairs[0].state = PairState::InProgress;
  // Only a Frozen pair whose foundation is being checked: nothing to check now.
  EXPECT_FALSE(checklist::hasCheckablePair(pairs, same));
  EXPECT_TRUE(checklist::blockedFoundation(pairs, pairs[1], same));
  pairs[0].state = PairState::Failed;
  // The Frozen pair can be unfrozen.
  EXPECT_FALSE(checklist::blockedFoundation(pairs, pairs[1], same));
  EXPECT_TRUE(checklist::hasCheckablePair(pairs, same));
  pairs[1].state = PairState::Failed;
  EXPECT_FALSE(checklist::hasCheckablePair(pairs, same));
}

}  // namespace
}  // namespace rtcpeer::ice
