#include "sim/network.hpp"

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <deque>
#include <optional>
#include <stdexcept>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

namespace rtcpeer::sim {
namespace {

constexpr Timestamp kStart = fromMicros(1'000'000);
// An endpoint whose deadline stays <= now after onTimeout, with nothing delivered to it in between, would spin
// forever at one instant; after this many consecutive firings the run fails with a message instead of hanging.
constexpr int kMaxFiringsPerInstant = 1000;
constexpr std::uint16_t kFirstNatPort = 20000;
// Recycled payload buffers kept for reuse; bounded so a burst does not pin memory forever.
constexpr std::size_t kMaxPooledBuffers = 4096;

SocketAddress ipOnly(SocketAddress a) {
  a.setPort(0);
  return a;
}

struct AddrPair {
  SocketAddress a, b;
  bool operator==(const AddrPair&) const = default;
};
struct AddrPairHash {
  std::size_t operator()(const AddrPair& p) const noexcept { return p.a.hash() * 0x9e3779b97f4a7c15ULL ^ p.b.hash(); }
};

// Hash maps below are only ever looked up, never iterated, so their (unspecified) order cannot leak into a run.

struct Mapping {
  SocketAddress internal;
  SocketAddress remote;  // Symmetric NAT only: the one destination this mapping serves
  Timestamp lastOutbound;
  // Destinations the internal host sent to, by address:port and by address, with the time of the last send: the
  // filtering state (RFC 4787 section 5).
  std::unordered_map<SocketAddress, Timestamp> sentTo;
  std::unordered_map<SocketAddress, Timestamp> sentToIp;
};

struct Nat {
  Nat(NatType t, const SocketAddress& ip, RealmId p) : type(t), publicIp(ip), parent(p) {}

  NatType type;
  SocketAddress publicIp;
  RealmId parent;
  Duration timeout = Network::kDefaultNatTimeout;
  std::uint16_t nextPort = kFirstNatPort;
  std::unordered_map<std::uint16_t, Mapping> byPort;
  std::unordered_map<AddrPair, std::uint16_t, AddrPairHash> byKey;  // (internal, remote or none) -> public port

  bool live(Timestamp t, Timestamp now) const { return now - t < timeout; }

  AddrPair keyOf(const SocketAddress& internal, const SocketAddress& remote) const {
    // RFC 4787 4.1: endpoint-independent mapping reuses one public port for every destination; the symmetric
    // NAT's address-and-port-dependent mapping allocates one per destination address:port.
    return {internal, type == NatType::Symmetric ? remote : SocketAddress{}};
  }

  void erase(std::uint16_t port) {
    auto it = byPort.find(port);
    byKey.erase(keyOf(it->second.internal, it->second.remote));
    byPort.erase(it);
  }

  std::uint16_t allocatePort(Timestamp now) {
    for (int tries = 0; tries < 65536; ++tries) {
      const std::uint16_t port = nextPort;
      nextPort = nextPort == 65535 ? kFirstNatPort : static_cast<std::uint16_t>(nextPort + 1);
      auto it = byPort.find(port);
      if (it == byPort.end()) return port;
      if (!live(it->second.lastOutbound, now)) {
        erase(port);
        return port;
      }
    }
    throw std::runtime_error("sim: NAT " + publicIp.ipString() + " ran out of ports");
  }

  SocketAddress outbound(const SocketAddress& internal, const SocketAddress& remote, Timestamp now) {
    const AddrPair key = keyOf(internal, remote);
    std::uint16_t port = 0;
    if (auto it = byKey.find(key); it != byKey.end()) {
      port = it->second;
      if (!live(byPort.at(port).lastOutbound, now)) {
        erase(port);
        port = 0;
      }
    }
    if (port == 0) {
      port = allocatePort(now);
      byKey.emplace(key, port);
      byPort.emplace(port, Mapping{internal, key.b, now, {}, {}});
    }
    Mapping& m = byPort.at(port);
    // RFC 4787 REQ-6: outbound packets refresh the mapping (inbound refresh is optional; we do not do it).
    m.lastOutbound = now;
    m.sentTo[remote] = now;
    m.sentToIp[ipOnly(remote)] = now;
    SocketAddress pub = publicIp;
    pub.setPort(port);
    return pub;
  }

  // The internal address for a packet from `remote` to our public `port`, or nothing if filtered.
  std::optional<SocketAddress> inbound(std::uint16_t port, const SocketAddress& remote, Timestamp now) {
    auto it = byPort.find(port);
    if (it == byPort.end()) return std::nullopt;
    Mapping& m = it->second;
    if (!live(m.lastOutbound, now)) {
      erase(port);
      return std::nullopt;
    }
    auto allowed = [&](const std::unordered_map<SocketAddress, Timestamp>& sent, const SocketAddress& key) {
      auto s = sent.find(key);
      return s != sent.end() && live(s->second, now);
    };
    switch (type) {
      case NatType::FullCone: return m.internal;  // endpoint-independent filtering
      case NatType::AddressRestricted:
        if (allowed(m.sentToIp, ipOnly(remote))) return m.internal;
        return std::nullopt;
      case NatType::PortRestricted:
      case NatType::Symmetric:
        if (allowed(m.sentTo, remote)) return m.internal;
        return std::nullopt;
    }
    return std::nullopt;
  }
};

struct Realm {
  std::unordered_map<SocketAddress, Endpoint*> bound;
  std::unordered_map<SocketAddress, int> boundIps;      // ip -> number of bindings on it
  std::unordered_map<SocketAddress, RealmId> childNats; // public ip of a NAT in this realm -> its private realm
  std::optional<Nat> nat;                               // the NAT in front of this realm (none for the internet)

  bool reaches(const SocketAddress& to) const {
    const SocketAddress ip = ipOnly(to);
    return boundIps.contains(ip) || childNats.contains(ip);
  }
};

struct LinkState {
  bool bad = false;                  // Gilbert-Elliott state
  std::int64_t busyUntilNs = 0;      // when the transmitter finishes the last accepted datagram
  std::deque<std::pair<std::int64_t, std::size_t>> queue;  // (serialization end ns, bytes), FIFO
  std::size_t queued = 0;
};

struct Link {
  std::optional<LinkConfig> config;  // set by setLink; otherwise the default applies
  LinkState state;
};

struct Packet {
  Timestamp at;
  std::uint64_t seq;
  RealmId realm;  // where it travels: the first realm from which the destination is reachable
  SocketAddress from, to;
  Bytes data;
};

// Min-heap order on (time, sequence number): simultaneous arrivals keep the order they were scheduled in.
bool later(const Packet& x, const Packet& y) { return x.at != y.at ? x.at > y.at : x.seq > y.seq; }

}  // namespace

struct Network::Impl {
  explicit Impl(std::uint64_t seed) : linkRng(seed), coreRng(seed ^ 0x5851f42d4c957f2dULL) {}

  Timestamp now = kStart;
  SeededRandom linkRng;
  SeededRandom coreRng;
  std::deque<Realm> realms{Realm{}};  // deque: references stay valid as NATs are added
  std::vector<std::pair<Endpoint*, int>> endpoints;  // in first-bind order (deadline ties), with binding counts
  LinkConfig defaultLink;
  std::unordered_map<AddrPair, Link, AddrPairHash> links;
  std::vector<Packet> heap;
  std::vector<Bytes> pool;
  std::vector<AddrPair> hops;  // scratch: the (src ip, dst ip) views of the datagram being sent
  std::uint64_t seq = 0;
  Stats stats;
  std::uint64_t hash = 0xcbf29ce484222325ULL;
  Endpoint* spinning = nullptr;  // the endpoint fired last, and how many times in a row at this instant
  Timestamp spinningAt;
  int spinCount = 0;

  Realm& realm(RealmId id) {
    if (id < 0 || static_cast<std::size_t>(id) >= realms.size())
      throw std::out_of_range("sim: no realm " + std::to_string(id));
    return realms[static_cast<std::size_t>(id)];
  }

  // FNV-1a style, eight bytes per round: cheap enough for ~10^5 full-size datagrams.
  void mix(std::uint64_t v) {
    hash ^= v;
    hash *= 0x100000001b3ULL;
    hash ^= hash >> 29;
  }
  void mix(const SocketAddress& a) {
    std::uint64_t w[2];
    std::memcpy(w, a.bytes().data(), sizeof w);
    mix(static_cast<std::uint64_t>(a.family()) << 16 | a.port());
    mix(w[0]);
    mix(w[1]);
  }
  void mix(ByteView data) {
    mix(data.size());
    std::size_t i = 0;
    for (; i + 8 <= data.size(); i += 8) {
      std::uint64_t w;
      std::memcpy(&w, data.data() + i, 8);
      mix(w);
    }
    if (i < data.size()) {
      std::uint64_t tail = 0;
      std::memcpy(&tail, data.data() + i, data.size() - i);
      mix(tail);
    }
  }

  Bytes buffer(ByteView data) {
    if (pool.empty()) return Bytes(data.begin(), data.end());
    Bytes b = std::move(pool.back());
    pool.pop_back();
    b.assign(data.begin(), data.end());
    return b;
  }

  void schedule(Timestamp at, RealmId r, const SocketAddress& from, const SocketAddress& to, ByteView data) {
    heap.push_back(Packet{at, seq++, r, from, to, buffer(data)});
    std::push_heap(heap.begin(), heap.end(), later);
  }

  Link& linkFor() {
    // The first explicitly configured link among the views of the path wins (the sender's own addresses first,
    // then each NAT-translated view); otherwise the default config, with state per wire-level address pair.
    for (const AddrPair& h : hops)
      if (auto it = links.find(h); it != links.end() && it->second.config) return it->second;
    return links[hops.back()];
  }

  void send(const SocketAddress& from, const SocketAddress& to, ByteView data, RealmId r) {
    ++stats.sent;
    // Sender-side NATs translate at send time: they sit at the sender's edge, with no delay before them.
    hops.clear();
    hops.push_back({ipOnly(from), ipOnly(to)});
    SocketAddress src = from;
    while (!realm(r).reaches(to)) {
      Realm& inside = realm(r);
      if (!inside.nat) {
        ++stats.unroutable;
        return;
      }
      src = inside.nat->outbound(src, to, now);
      r = inside.nat->parent;
      hops.push_back({ipOnly(src), ipOnly(to)});
    }
    Link& link = linkFor();
    const LinkConfig& cfg = link.config ? *link.config : defaultLink;
    LinkState& st = link.state;
    const std::size_t size = data.size();
    if (cfg.mtu != 0 && size > cfg.mtu) {
      ++stats.mtuDrops;
      return;
    }
    Timestamp depart = now;
    if (cfg.bandwidthBps != 0) {
      const std::int64_t nowNs = toMicros(now) * 1000;
      while (!st.queue.empty() && st.queue.front().first <= nowNs) {
        st.queued -= st.queue.front().second;
        st.queue.pop_front();
      }
      if (st.queued + size > cfg.queueBytes) {
        ++stats.queueDrops;
        return;
      }
      const auto bps = static_cast<std::int64_t>(cfg.bandwidthBps);
      const std::int64_t serializeNs = (static_cast<std::int64_t>(size) * 8 * 1'000'000'000 + bps - 1) / bps;
      st.busyUntilNs = std::max(nowNs, st.busyUntilNs) + serializeNs;
      st.queue.emplace_back(st.busyUntilNs, size);
      st.queued += size;
      depart = fromMicros((st.busyUntilNs + 999) / 1000);
    }
    // Losses happen on the wire, after the bottleneck: a lost datagram has still used its share of bandwidth.
    // Random draws are made only for enabled features, so enabling one does not reshuffle the others' pattern.
    if (st.bad) st.bad = !(linkRng.unit() < cfg.burstExit);
    else if (cfg.burstEnter > 0) st.bad = linkRng.unit() < cfg.burstEnter;
    if (st.bad || (cfg.loss > 0 && linkRng.unit() < cfg.loss)) {
      ++stats.lost;
      return;
    }
    const int copies = cfg.duplicate > 0 && linkRng.unit() < cfg.duplicate ? 2 : 1;
    stats.duplicated += static_cast<std::uint64_t>(copies - 1);
    for (int c = 0; c < copies; ++c) {
      Timestamp at = depart + cfg.delay;
      if (cfg.jitter.count() > 0) at += Duration(linkRng.between(0, cfg.jitter.count()));
      if (cfg.reorder > 0 && linkRng.unit() < cfg.reorder) at += cfg.reorderDelay;
      schedule(at, r, src, to, data);
    }
  }

  // Receiver-side NATs filter and translate on arrival, so a hole punched while the datagram was in flight counts.
  void deliver(Packet& p) {
    RealmId r = p.realm;
    SocketAddress dst = p.to;
    for (;;) {
      Realm& here = realm(r);
      if (auto b = here.bound.find(dst); b != here.bound.end()) {
        Endpoint* ep = b->second;
        ++stats.delivered;
        stats.deliveredBytes += p.data.size();
        mix(static_cast<std::uint64_t>(toMicros(now)));
        mix(p.from);
        mix(dst);
        mix(p.data);
        if (ep == spinning) spinCount = 0;
        ep->onDatagram(dst, p.from, p.data, now);
        return;
      }
      auto n = here.childNats.find(ipOnly(dst));
      if (n == here.childNats.end()) {
        ++stats.unroutable;
        return;
      }
      const RealmId inner = n->second;
      std::optional<SocketAddress> internal = realm(inner).nat->inbound(dst.port(), p.from, now);
      if (!internal) {
        ++stats.natDrops;
        return;
      }
      dst = *internal;
      r = inner;
    }
  }

  // The next thing to do: the earliest endpoint deadline (clamped to now; the first-bound endpoint wins ties) or
  // the next arrival, arrivals first at equal times. `due` is null when the next thing is an arrival.
  Timestamp next(Endpoint*& due) const {
    due = nullptr;
    Timestamp deadline = kNever;
    for (const auto& [ep, count] : endpoints) {
      const Timestamp d = ep->nextDeadline();
      if (d < deadline) {
        deadline = d;
        due = ep;
      }
    }
    if (due != nullptr) deadline = std::max(deadline, now);
    if (!heap.empty() && heap.front().at <= deadline) {
      due = nullptr;
      return heap.front().at;
    }
    return deadline;
  }

  void perform(Endpoint* due, Timestamp at) {
    now = at;
    if (due == nullptr) {
      std::pop_heap(heap.begin(), heap.end(), later);
      Packet p = std::move(heap.back());
      heap.pop_back();
      deliver(p);
      if (pool.size() < kMaxPooledBuffers) pool.push_back(std::move(p.data));
      return;
    }
    if (due == spinning && spinningAt == at) {
      if (++spinCount > kMaxFiringsPerInstant) {
        const auto index = std::find_if(endpoints.begin(), endpoints.end(),
                                        [&](const auto& e) { return e.first == due; }) - endpoints.begin();
        const std::string msg = "sim: endpoint #" + std::to_string(index) + " (in bind order) fired " +
                                std::to_string(kMaxFiringsPerInstant) + " timeouts at t=" +
                                std::to_string(toMicros(at)) + "us without progress: its nextDeadline() stays <= now";
        std::fprintf(stderr, "%s\n", msg.c_str());
        throw std::logic_error(msg);
      }
    } else {
      spinning = due;
      spinningAt = at;
      spinCount = 1;
    }
    due->onTimeout(now);
  }

  Timestamp deadlineAfter(Duration d) const { return d >= kNever - now ? kNever : now + d; }
};

Network::Network(std::uint64_t seed) : impl_(std::make_unique<Impl>(seed)) {}
Network::~Network() = default;

Timestamp Network::now() const { return impl_->now; }
Random& Network::random() { return impl_->coreRng; }

RealmId Network::addNat(NatType type, const SocketAddress& publicIp, RealmId parent) {
  const SocketAddress ip = ipOnly(publicIp);
  Realm& outside = impl_->realm(parent);
  if (outside.childNats.contains(ip)) throw std::logic_error("sim: a NAT already has public ip " + ip.ipString());
  const auto id = static_cast<RealmId>(impl_->realms.size());
  Realm& inside = impl_->realms.emplace_back();
  inside.nat.emplace(type, ip, parent);
  outside.childNats.emplace(ip, id);
  return id;
}

void Network::setNatTimeout(RealmId nat, Duration timeout) {
  Realm& r = impl_->realm(nat);
  if (!r.nat) throw std::logic_error("sim: realm " + std::to_string(nat) + " is not behind a NAT");
  r.nat->timeout = timeout;
}

void Network::bind(Endpoint& ep, const SocketAddress& local, RealmId realm) {
  Realm& r = impl_->realm(realm);
  if (!r.bound.emplace(local, &ep).second) throw std::logic_error("sim: " + local.toString() + " is already bound");
  ++r.boundIps[ipOnly(local)];
  auto& eps = impl_->endpoints;
  auto it = std::find_if(eps.begin(), eps.end(), [&](const auto& e) { return e.first == &ep; });
  if (it == eps.end()) eps.emplace_back(&ep, 1);
  else ++it->second;
}

void Network::unbind(const SocketAddress& local, RealmId realm) {
  Realm& r = impl_->realm(realm);
  auto b = r.bound.find(local);
  if (b == r.bound.end()) return;
  Endpoint* ep = b->second;
  r.bound.erase(b);
  // bind() recorded both, so neither lookup can miss.
  if (auto ip = r.boundIps.find(ipOnly(local)); ip != r.boundIps.end() && --ip->second == 0) r.boundIps.erase(ip);
  auto& eps = impl_->endpoints;
  auto it = std::find_if(eps.begin(), eps.end(), [&](const auto& e) { return e.first == ep; });
  if (it != eps.end() && --it->second == 0) {
    eps.erase(it);
    if (impl_->spinning == ep) impl_->spinning = nullptr;
  }
}

void Network::send(const SocketAddress& from, const SocketAddress& to, ByteView data, RealmId realm) {
  impl_->send(from, to, data, realm);
}

void Network::setDefaultLink(const LinkConfig& cfg) { impl_->defaultLink = cfg; }

void Network::setLink(const SocketAddress& fromIp, const SocketAddress& toIp, const LinkConfig& cfg) {
  impl_->links[{ipOnly(fromIp), ipOnly(toIp)}].config = cfg;
}

std::size_t Network::queuedBytes(const SocketAddress& fromIp, const SocketAddress& toIp) const {
  auto it = impl_->links.find({ipOnly(fromIp), ipOnly(toIp)});
  if (it == impl_->links.end()) return 0;
  const std::int64_t nowNs = toMicros(impl_->now) * 1000;
  std::size_t bytes = 0;
  for (const auto& [end, size] : it->second.state.queue)
    if (end > nowNs) bytes += size;
  return bytes;
}

bool Network::step() {
  Endpoint* due = nullptr;
  const Timestamp at = impl_->next(due);
  if (at == kNever) return false;
  impl_->perform(due, at);
  return true;
}

bool Network::runUntil(const std::function<bool()>& done, Duration limit) {
  const Timestamp end = impl_->deadlineAfter(limit);
  while (!done()) {
    Endpoint* due = nullptr;
    const Timestamp at = impl_->next(due);
    if (at > end || at == kNever) {
      if (end != kNever) impl_->now = std::max(impl_->now, end);
      return false;
    }
    impl_->perform(due, at);
  }
  return true;
}

void Network::runFor(Duration d) {
  const Timestamp end = impl_->deadlineAfter(d);
  for (;;) {
    Endpoint* due = nullptr;
    const Timestamp at = impl_->next(due);
    if (at > end || at == kNever) break;
    impl_->perform(due, at);
  }
  if (end != kNever) impl_->now = std::max(impl_->now, end);
}

Timestamp Network::nextTime() const {
  Endpoint* due = nullptr;
  return impl_->next(due);
}

std::size_t Network::pending() const { return impl_->heap.size(); }
const Network::Stats& Network::stats() const { return impl_->stats; }
std::uint64_t Network::traceHash() const { return impl_->hash; }

}  // namespace rtcpeer::sim
