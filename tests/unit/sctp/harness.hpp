// Test helpers for the SCTP association: a deterministic workload with a checker (byte-exact, no duplicates,
// in order on ordered streams), a direct in-memory pair of associations, and a simulator endpoint adapter.
#pragma once

#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <map>
#include <set>
#include <vector>

#include "common/random.hpp"
#include "sctp/association.hpp"
#include "sim/network.hpp"

namespace rtcpeer::sctp::testing {

inline Bytes payloadFor(std::uint32_t id, std::size_t size) {
  Bytes b(size);
  std::uint64_t x = 0x9E3779B97F4A7C15ull * (id + 1);
  for (std::size_t i = 0; i < size; ++i) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    b[i] = static_cast<std::uint8_t>(x);
  }
  return b;
}

/// Random messages (the PPID carries the message id) and the receiving-side checks.
class Workload {
 public:
  struct Msg {
    std::uint16_t stream;
    bool unordered;
    std::uint32_t id;
    std::size_t size;
  };

  Workload(std::uint64_t seed, int count, std::size_t maxSize, int streams) {
    SeededRandom r(seed);
    for (int i = 0; i < count; ++i) {
      // Sizes spread log-uniformly from 1 byte to maxSize.
      double e = r.unit() * std::log2(static_cast<double>(maxSize));
      std::size_t size = std::max<std::size_t>(1, static_cast<std::size_t>(std::exp2(e)));
      msgs.push_back({static_cast<std::uint16_t>(r.below(static_cast<std::uint64_t>(streams))), r.below(4) == 0,
                      static_cast<std::uint32_t>(i), size});
      totalBytes += size;
    }
  }

  /// Queues everything on `a`.
  void sendAll(Association& a, Timestamp now) {
    for (const auto& m : msgs) {
      auto s = a.send(m.stream, m.id, payloadFor(m.id, m.size), SendOptions{m.unordered, {}, {}}, now);
      ASSERT_TRUE(s.ok()) << s.reason();
    }
  }

  void onReceived(const Message& m) {
    ASSERT_LT(m.ppid, msgs.size());
    const Msg& want = msgs[m.ppid];
    EXPECT_EQ(m.stream, want.stream);
    EXPECT_EQ(m.unordered, want.unordered);
    EXPECT_TRUE(seen.insert(m.ppid).second) << "duplicate message " << m.ppid;
    EXPECT_EQ(m.payload.size(), want.size) << "message " << m.ppid;
    EXPECT_TRUE(m.payload == payloadFor(m.ppid, want.size)) << "payload mismatch in message " << m.ppid;
    if (!want.unordered) {
      auto [it, first] = lastOrdered.try_emplace(m.stream, m.ppid);
      EXPECT_TRUE(first || m.ppid > it->second)
          << "out of order on stream " << m.stream << ": " << m.ppid << " after " << it->second;
      it->second = m.ppid;
    }
    receivedBytes += m.payload.size();
  }

  [[nodiscard]] bool complete() const { return seen.size() == msgs.size(); }

  std::vector<Msg> msgs;
  std::size_t totalBytes = 0;
  std::size_t receivedBytes = 0;
  std::set<std::uint32_t> seen;
  std::map<std::uint16_t, std::uint32_t> lastOrdered;
};

inline Options testOptions() {
  Options o;
  o.rtoMax = Duration(2'000'000);
  o.heartbeatInterval = Duration(0);
  return o;
}

/// Two associations wired back to back in memory; `drop` decides per packet (true = lose it).
class DirectPair {
 public:
  explicit DirectPair(Options oa = testOptions(), Options ob = testOptions(), std::uint64_t seed = 1)
      : rngA(seed), rngB(seed + 1000), a(oa, rngA), b(ob, rngB) {}
  /// With the caller's random sources (e.g. to choose initial TSNs).
  DirectPair(Options oa, Options ob, Random& ra, Random& rb) : rngA(1), rngB(2), a(oa, ra), b(ob, rb) {}

  /// Moves packets until neither side has anything to send.
  void flush() {
    bool moved = true;
    while (moved) {
      moved = false;
      while (auto p = a.pollTransmit(now)) {
        moved = true;
        ++packetsAtoB;
        if (!drop || !drop(true, *p)) {
          Bytes copy(p->begin(), p->end());
          b.handleInput(copy, now);
        }
      }
      while (auto p = b.pollTransmit(now)) {
        moved = true;
        if (!drop || !drop(false, *p)) {
          Bytes copy(p->begin(), p->end());
          a.handleInput(copy, now);
        }
      }
      drain();
    }
  }

  void drain() {
    while (auto e = a.pollEvent()) eventsA.push_back(*e);
    while (auto e = b.pollEvent()) eventsB.push_back(*e);
    while (auto r = a.pollStreamReset()) resetsA.push_back(*r);
    while (auto r = b.pollStreamReset()) resetsB.push_back(*r);
    while (auto m = b.pollMessage()) {
      if (onMessageB) onMessageB(*m);
      messagesB.push_back(std::move(*m));
    }
    while (auto m = a.pollMessage()) messagesA.push_back(std::move(*m));
  }

  /// Flushes, then jumps virtual time to the next deadline, until done() or `limit` passes.
  bool runUntil(const std::function<bool()>& done, Duration limit) {
    Timestamp end = now + limit;
    for (;;) {
      flush();
      if (done()) return true;
      Timestamp next = earliest(a.nextDeadline(), b.nextDeadline());
      if (next == kNever || next > end) return false;
      if (next > now) now = next;
      a.handleTimeout(now);
      b.handleTimeout(now);
    }
  }

  bool connect() {
    a.connect(now);
    b.connect(now);
    return runUntil([&] { return a.state() == State::Established && b.state() == State::Established; },
                    Duration(5'000'000));
  }

  static bool has(const std::vector<Event>& ev, Event::Type t) {
    for (const auto& e : ev)
      if (e.type == t) return true;
    return false;
  }

  SeededRandom rngA, rngB;
  Association a, b;
  Timestamp now = fromMicros(1'000'000);
  std::function<bool(bool aToB, ByteView packet)> drop;
  std::function<void(const Message&)> onMessageB;
  std::vector<Event> eventsA, eventsB;
  std::vector<StreamReset> resetsA, resetsB;
  std::vector<Message> messagesA, messagesB;
  std::size_t packetsAtoB = 0;
};

/// An association bound to a simulator address.
class SimPeer : public sim::Endpoint {
 public:
  SimPeer(sim::Network& net, SocketAddress local, SocketAddress remote, Options opts, std::uint64_t seed)
      : net_(net), local_(local), remote_(remote), rng_(seed), assoc(opts, rng_) {
    net_.bind(*this, local_);
  }
  ~SimPeer() override { net_.unbind(local_); }

  void onDatagram(const SocketAddress&, const SocketAddress&, ByteView data, Timestamp now) override {
    assoc.handleInput(data, now);
    flush(now);
  }
  void onTimeout(Timestamp now) override {
    assoc.handleTimeout(now);
    flush(now);
  }
  Timestamp nextDeadline() const override { return assoc.nextDeadline(); }

  void flush(Timestamp now) {
    while (auto p = assoc.pollTransmit(now)) {
      if (!filter) {
        net_.send(local_, remote_, *p);
        continue;
      }
      Bytes packet(p->begin(), p->end());
      if (filter(packet, now)) net_.send(local_, remote_, packet);
    }
    while (auto e = assoc.pollEvent()) events.push_back(*e);
    while (auto m = assoc.pollMessage()) {
      lastProgress = now;
      if (onMessage) onMessage(*m);
    }
  }

  sim::Network& net_;
  SocketAddress local_, remote_;
  SeededRandom rng_;
  Association assoc;
  std::vector<Event> events;
  std::function<void(const Message&)> onMessage;
  /// Sees (and may rewrite) every outgoing packet before the network does; false drops it.
  std::function<bool(Bytes& packet, Timestamp now)> filter;
  Timestamp lastProgress{};
};

/// Calls `f(chunk)` for every chunk of an SCTP packet.
template <typename F>
void forEachChunk(ByteView packet, F&& f) {
  ChunkIterator it(packet);
  RawChunk c;
  while (it.next(c)) f(c);
}

}  // namespace rtcpeer::sctp::testing
