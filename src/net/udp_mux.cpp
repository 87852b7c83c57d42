// The shared sockets of Configuration::udpMux: registry, routing, member queues (see udp_mux.hpp).
#include "net/udp_mux.hpp"

#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <mutex>
#include <thread>
#include <unordered_map>

#include "common/log.hpp"
#include "net/sockaddr.hpp"

namespace rtcpeer::net {

namespace {

constexpr std::uint32_t kNone = 0xFFFFFFFF;
constexpr std::size_t kMaxRemotes = 16;       // routes per member; the oldest goes first
constexpr std::size_t kTransactions = 4096;   // outstanding STUN requests remembered per shared socket
constexpr int kMaxReadRounds = 16;            // shared-socket batches read by one recvBatch()
constexpr std::size_t kKeepSlots = 256;       // queue buffers kept when an idle pool is trimmed
constexpr std::uint32_t kTrimAfter = 1024;    // receives without the pool growing before an idle pool is trimmed
constexpr std::size_t kPoolPerMember = 4;     // the pool's bound per member (beyond kMinPool)
constexpr std::uint32_t kWakeGroup = 64;      // members per wake-up eventfd (see UdpMux::wakes)

using Txid = std::array<std::uint8_t, 12>;

std::size_t txidHash(const Txid& t) noexcept {
  std::uint64_t h = 0;
  std::memcpy(&h, t.data(), 8);
  std::uint32_t l = 0;
  std::memcpy(&l, t.data() + 8, 4);
  h ^= std::uint64_t{l} * 0x9E3779B97F4A7C15ull;
  return static_cast<std::size_t>(h ^ (h >> 29));
}

struct StringHash {
  using is_transparent = void;
  std::size_t operator()(std::string_view s) const noexcept { return std::hash<std::string_view>{}(s); }
};

}  // namespace

struct MuxMember {
  std::string ufrag;
  std::string previousUfrag;  // after an ICE restart, until the next one: the peer's checks in flight still use it
  int wakeFd = -1;            // its wake group's (not owned), registered in `poller` with no interest until armed
  std::uint32_t wakeGroup = 0;
  std::shared_ptr<Poller> poller;
  std::uint32_t head = kNone, tail = kNone;  // queue
  std::size_t queued = 0;
  bool armed = false;                   // wakeFd's read interest is on in `poller`: its fd() is readable
  std::uint64_t droppedFull = 0;        // its datagrams dropped because its queue or the pool was full
  bool retired = false;                 // its connection ended: never the watcher while a live member exists
  std::vector<SocketAddress> remotes;   // routes that pointed here when added, oldest first
  SocketAddress lastSent;               // skip the route lookup for a run of datagrams to one remote
  std::optional<UdpSocket> turn;        // private socket for TURN servers
  std::vector<SocketAddress> turnServers;

  ~MuxMember() {
    if (wakeFd >= 0 && poller) poller->unwatch(wakeFd);
    if (turn && poller) poller->unwatch(turn->fd());
  }
};

class UdpMux {
 public:
  explicit UdpMux(UdpSocket s) : socket(std::move(s)), owner(std::this_thread::get_id()) {}
  ~UdpMux() {
    if (watcher && watcher->poller) watcher->poller->unwatch(socket.fd());
    orphans.clear();  // their destructors unregister their wake-up, which must still be open
    for (const auto& g : wakes)
      if (g.fd >= 0) ::close(g.fd);
  }

  UdpSocket socket;
  const std::thread::id owner;

  // Wake-ups: eventfds that are always readable (created with a count of 1, never read). A member's epoll set
  // holds its group's with no interest, and turning the interest on (one epoll_ctl) wakes exactly that member, so
  // a connection costs its epoll set and 1/kWakeGroup of an eventfd instead of an eventfd of its own. Why groups
  // and not one for the whole mux: the kernel bounds the wake-up paths from one file through nested epoll sets
  // (fs/eventpoll.c reverse_path_check: at most 500 of length 2, 100 of length 3), and a server puts every
  // connection's epoll set in its own epoll set, so one eventfd in thousands of them is refused (EINVAL).
  struct WakeGroup {
    int fd = -1;
    std::uint32_t members = 0;
  };
  std::vector<WakeGroup> wakes;
  std::size_t wakeHint = 0;  // a group that may have room

  // A group with room for one more member (a new eventfd if none has), or kNone.
  std::uint32_t joinWakeGroup() {
    for (std::size_t n = 0; n < wakes.size(); ++n) {
      const std::size_t i = (wakeHint + n) % wakes.size();
      if (wakes[i].fd >= 0 && wakes[i].members < kWakeGroup) {
        wakeHint = i;
        ++wakes[i].members;
        return static_cast<std::uint32_t>(i);
      }
    }
    const int fd = detail::newDescriptor([] { return ::eventfd(1, EFD_NONBLOCK | EFD_CLOEXEC); });
    if (fd < 0) return kNone;
    auto slot = std::find_if(wakes.begin(), wakes.end(), [](const WakeGroup& g) { return g.fd < 0; });
    if (slot == wakes.end()) slot = wakes.insert(wakes.end(), WakeGroup{});
    *slot = {fd, 1};
    wakeHint = static_cast<std::size_t>(slot - wakes.begin());
    return static_cast<std::uint32_t>(wakeHint);
  }

  // m's epoll set leaves its wake-up, which closes when its last member has left.
  void leaveWakeGroup(MuxMember* m) {
    if (m->wakeFd < 0) return;
    m->poller->unwatch(m->wakeFd);
    m->wakeFd = -1;
    WakeGroup& g = wakes[m->wakeGroup];
    if (--g.members == 0) {
      ::close(g.fd);
      g.fd = -1;
    }
  }

  std::unordered_map<std::string, MuxMember*, StringHash, std::equal_to<>> byUfrag;
  std::unordered_map<SocketAddress, MuxMember*> byRemote;
  struct Transaction {
    Txid id{};
    MuxMember* member = nullptr;
  };
  std::vector<Transaction> transactions = std::vector<Transaction>(kTransactions);

  struct Slot {
    std::unique_ptr<std::uint8_t[]> data;
    SocketAddress remote;
    std::size_t size = 0;
    std::uint32_t next = kNone;
  };
  std::vector<Slot> slots;
  std::uint32_t freeSlots = kNone;
  std::uint32_t lent = kNone;  // slots handed out by the last batch (valid until the next recvBatch on the thread)
  std::size_t queuedTotal = 0;
  std::size_t members = 0;
  std::uint32_t receivesSinceGrowth = 0;

  MuxMember* watcher = nullptr;
  std::array<Received, UdpSocket::kBatch> out;
  std::vector<Outgoing> sharedOut, turnOut;
  std::uint64_t droppedUnknown = 0, droppedFull = 0;

  std::mutex orphanMutex;
  std::vector<std::unique_ptr<MuxMember>> orphans;
  std::atomic<bool> hasOrphans{false};

  bool onOwner() const noexcept { return std::this_thread::get_id() == owner; }

  void watchBy(MuxMember* m) {
    watcher = m;
    if (!m) return;
    if (auto w = m->poller->watch(socket.fd()); !w) RTCPEER_LOG(Error, "net", "udp mux: " << w.reason());
  }

  // Moves the watch off `from` to a live member; if there is none, to any other when `from` leaves, while a retired
  // `from` keeps it (one retired watcher is as good as another). The scan stops at the first live member.
  void handOff(MuxMember* from, bool leaving) {
    if (watcher != from) return;
    MuxMember* next = nullptr;
    for (const auto& [ufrag, m] : byUfrag) {
      if (m == from) continue;
      if (!m->retired) {
        next = m;
        break;
      }
      if (!next) next = m;
    }
    if (!next || (next->retired && !leaving)) return;
    from->poller->unwatch(socket.fd());
    watchBy(next);
  }

  void reapOrphans() {
    if (!hasOrphans.load(std::memory_order_acquire)) return;
    std::vector<std::unique_ptr<MuxMember>> dead;
    {
      std::lock_guard lock(orphanMutex);
      dead.swap(orphans);
      hasOrphans.store(false, std::memory_order_release);
    }
    for (auto& m : dead) leave(m.get());
  }

  void freeChain(std::uint32_t& head) {
    while (head != kNone) {
      const std::uint32_t next = slots[head].next;
      slots[head].next = freeSlots;
      freeSlots = head;
      head = next;
    }
  }

  void forget(MuxMember* m, const std::string& ufrag) {
    if (auto it = byUfrag.find(ufrag); it != byUfrag.end() && it->second == m) byUfrag.erase(it);
  }

  void leave(MuxMember* m) {
    --members;
    leaveWakeGroup(m);
    forget(m, m->ufrag);
    forget(m, m->previousUfrag);
    for (const auto& r : m->remotes)
      if (auto it = byRemote.find(r); it != byRemote.end() && it->second == m) byRemote.erase(it);
    for (auto& t : transactions)
      if (t.member == m) t.member = nullptr;
    queuedTotal -= m->queued;
    m->queued = 0;
    freeChain(m->head);
    m->tail = kNone;
    if (watcher == m) {
      handOff(m, true);
      if (watcher == m) {  // the last member
        m->poller->unwatch(socket.fd());
        watcher = nullptr;
      }
    }
  }

  MuxMember* byAddress(const SocketAddress& remote) {
    auto it = byRemote.find(remote);
    return it == byRemote.end() ? nullptr : it->second;
  }

  MuxMember* route(const Received& d) {
    const auto i = mux::inspect(d.data);
    if (i.kind == mux::Inspection::Kind::Request && i.binding) {
      auto it = byUfrag.find(i.ufrag);
      return it == byUfrag.end() ? nullptr : it->second;
    }
    if (i.kind == mux::Inspection::Kind::Response) {
      auto& t = transactions[txidHash(i.transaction) % kTransactions];
      if (t.member && t.id == i.transaction) {
        // The remote answered this member's check (an unguessable 96-bit id): proof that it is its peer.
        learn(t.member, d.remote, true);
        return std::exchange(t.member, nullptr);
      }
    }
    return byAddress(d.remote);
  }

  // The pool's bound grows with the membership: a burst of one datagram for every member at once (all clients'
  // consent checks in one instant) fits four times over, an echo on every connection (data and SACKs both ways,
  // read while the server is still polling the others) too. Memory only while it is used (trimIfIdle).
  std::size_t poolBound() const noexcept { return std::max(LocalSocket::kMinPool, kPoolPerMember * members); }

  // An idle pool (nothing queued or lent) that has not grown for kTrimAfter receives goes back to kKeepSlots
  // buffers, so a past burst does not stay as memory of every idle connection; a pool that keeps growing and
  // draining is trimmed at most once per kTrimAfter receives, never per datagram.
  void trimIfIdle() {
    if (slots.size() <= kKeepSlots || queuedTotal != 0 || lent != kNone) return;
    if (++receivesSinceGrowth < kTrimAfter) return;
    slots.resize(kKeepSlots);
    slots.shrink_to_fit();
    freeSlots = kNone;
    for (std::size_t i = kKeepSlots; i-- > 0;) {
      slots[i].next = freeSlots;
      freeSlots = static_cast<std::uint32_t>(i);
    }
    receivesSinceGrowth = 0;
  }

  void enqueue(MuxMember* m, const Received& d) {
    if (m->retired) {  // its connection ended: nobody will read it, and it must not pin pool slots
      ++droppedUnknown;
      return;
    }
    if (m->queued >= LocalSocket::kMaxQueued || (freeSlots == kNone && slots.size() >= poolBound())) {
      ++m->droppedFull;
      ++droppedFull;
      return;
    }
    if (freeSlots == kNone) {
      receivesSinceGrowth = 0;
      slots.emplace_back();
      slots.back().data = std::make_unique<std::uint8_t[]>(UdpSocket::kBufferSize);
      freeSlots = static_cast<std::uint32_t>(slots.size() - 1);
      slots.back().next = kNone;
    }
    const std::uint32_t index = freeSlots;
    Slot& s = slots[index];
    freeSlots = s.next;
    std::memcpy(s.data.get(), d.data.data(), d.data.size());
    s.size = d.data.size();
    s.remote = d.remote;
    s.next = kNone;
    if (m->tail == kNone) m->head = index;
    else slots[m->tail].next = index;
    m->tail = index;
    ++m->queued;
    ++queuedTotal;
    if (!m->armed) {
      if (auto a = m->poller->setReadInterest(m->wakeFd, true); a) m->armed = true;
      else RTCPEER_LOG(Error, "net", "udp mux: " << a.reason());
    }
  }

  // Moves up to a batch of m's queue into `out`; the slots return to the pool at the next recvBatch on the mux.
  std::size_t takeQueued(MuxMember* m) {
    std::size_t n = 0;
    std::uint32_t lentTail = kNone;  // lent is empty: every recvBatch frees it first
    while (m->head != kNone && n < out.size()) {
      const std::uint32_t index = m->head;
      Slot& s = slots[index];
      m->head = s.next;
      out[n++] = {s.remote, ByteView(s.data.get(), s.size)};
      s.next = kNone;
      if (lentTail == kNone) lent = index;
      else slots[lentTail].next = index;
      lentTail = index;
    }
    m->queued -= n;
    queuedTotal -= n;
    if (m->head == kNone) {
      m->tail = kNone;
      // Drained: its epoll set must stop being readable, or an application waiting on fileDescriptor() spins.
      if (m->armed && m->poller->setReadInterest(m->wakeFd, false)) m->armed = false;
    }
    return n;
  }

  // Routes `remote` to m. A claim (m answered a check from it that passed MESSAGE-INTEGRITY, or it answered one of
  // m's checks) takes the address over from another member; anything else m sends there only takes a free address,
  // so a stale connection still sending to a client that has since reconnected from the same address does not
  // pull its traffic back.
  void learn(MuxMember* m, const SocketAddress& remote, bool claim) {
    if (!claim && remote == m->lastSent) return;
    auto [it, inserted] = byRemote.try_emplace(remote, m);
    if (!inserted) {
      if (it->second == m) {
        m->lastSent = remote;
        return;
      }
      if (!claim) return;
      it->second->lastSent = {};
      it->second = m;
    }
    m->lastSent = remote;
    // Invariant: an address routed to m is in m->remotes (once), so leave() finds every route of m.
    if (std::find(m->remotes.begin(), m->remotes.end(), remote) != m->remotes.end()) return;
    if (m->remotes.size() >= kMaxRemotes) {
      const SocketAddress old = m->remotes.front();
      m->remotes.erase(m->remotes.begin());
      if (auto f = byRemote.find(old); f != byRemote.end() && f->second == m) byRemote.erase(f);
    }
    m->remotes.push_back(remote);
  }
};

namespace {

struct Registry {
  std::mutex mutex;
  std::unordered_map<SocketAddress, std::weak_ptr<UdpMux>> muxes;
};

Registry& registry() {
  static auto* r = new Registry;  // never destroyed: LocalSockets in static objects may outlive a static Registry
  return *r;
}

std::string threadError(const SocketAddress& local) {
  return "udpMux: the shared socket on " + local.toString() +
         " belongs to another thread (connections sharing a port must all be used from the thread that first "
         "bound it)";
}

}  // namespace

LocalSocket::LocalSocket(UdpSocket own) : own_(std::move(own)) {}

Result<LocalSocket> LocalSocket::join(const SocketAddress& local, const MuxJoin& join) {
  if (join.ufrag.empty() || !join.poller) return fail("udpMux: a member needs a ufrag and an epoll set");
  std::shared_ptr<UdpMux> mux;
  {
    auto& r = registry();
    std::lock_guard lock(r.mutex);
    std::erase_if(r.muxes, [](const auto& e) { return e.second.expired(); });
    auto& slot = r.muxes[local];
    mux = slot.lock();
    if (!mux) {
      auto s = UdpSocket::bind(local);
      if (!s) {
        r.muxes.erase(local);
        return fail("udpMux: " + s.reason());
      }
      mux = std::make_shared<UdpMux>(std::move(*s));
      slot = mux;
    }
  }
  if (!mux->onOwner()) return fail(threadError(local));
  mux->reapOrphans();
  if (mux->byUfrag.contains(join.ufrag)) return fail("udpMux: ICE ufrag '" + join.ufrag + "' is already registered");
  auto member = std::make_unique<MuxMember>();
  member->ufrag = join.ufrag;
  member->poller = join.poller;
  const std::uint32_t group = mux->joinWakeGroup();
  if (group == kNone) return fail(detail::errnoText("udpMux: eventfd"));
  if (auto w = join.poller->watchNothing(mux->wakes[group].fd); !w) {
    if (--mux->wakes[group].members == 0) {
      ::close(mux->wakes[group].fd);
      mux->wakes[group].fd = -1;
    }
    return fail("udpMux: " + w.reason());
  }
  member->wakeFd = mux->wakes[group].fd;
  member->wakeGroup = group;
  mux->byUfrag.emplace(member->ufrag, member.get());
  ++mux->members;
  if (!mux->watcher) {
    mux->watchBy(member.get());
  } else if (mux->watcher->retired) {
    mux->watcher->poller->unwatch(mux->socket.fd());
    mux->watchBy(member.get());
  }
  LocalSocket s;
  s.mux_ = std::move(mux);
  s.member_ = std::move(member);
  return s;
}

LocalSocket::LocalSocket(LocalSocket&& other) noexcept
    : own_(std::move(other.own_)), mux_(std::move(other.mux_)), member_(std::move(other.member_)) {
  other.own_.reset();
}

LocalSocket& LocalSocket::operator=(LocalSocket&& other) noexcept {
  if (this != &other) {
    leave();
    own_ = std::move(other.own_);
    other.own_.reset();
    mux_ = std::move(other.mux_);
    member_ = std::move(other.member_);
  }
  return *this;
}

LocalSocket::~LocalSocket() { leave(); }

void LocalSocket::leave() noexcept {
  own_.reset();
  if (!mux_) return;
  if (mux_->onOwner()) {
    mux_->reapOrphans();
    mux_->leave(member_.get());
    member_.reset();
  } else {
    // Not our thread's socket: the owner thread removes the member at its next use (see udp_mux.hpp); if this was
    // the last member, the socket and the member go now, as nobody else can be using them.
    RTCPEER_LOG(Error, "net", threadError(mux_->socket.localAddress()) << "; this connection leaves it later");
    // Its epoll set leaves the wake-up now (epoll_ctl is thread-safe; arming is a MOD, which cannot re-add it).
    member_->poller->unwatch(member_->wakeFd);
    std::lock_guard lock(mux_->orphanMutex);
    mux_->orphans.push_back(std::move(member_));
    mux_->hasOrphans.store(true, std::memory_order_release);
  }
  mux_.reset();
}

int LocalSocket::fd() const noexcept { return own_ ? own_->fd() : -1; }

const SocketAddress& LocalSocket::localAddress() const noexcept {
  static const SocketAddress none;
  if (own_) return own_->localAddress();
  return mux_ ? mux_->socket.localAddress() : none;
}

Status LocalSocket::checkThread() const {
  if (!mux_ || mux_->onOwner()) return okStatus();
  return fail(threadError(mux_->socket.localAddress()));
}

std::span<const Received> LocalSocket::recvBatch() {
  if (own_) return own_->recvBatch();
  if (!mux_ || !mux_->onOwner()) return {};
  UdpMux& mux = *mux_;
  MuxMember* self = member_.get();
  mux.reapOrphans();
  mux.freeChain(mux.lent);  // the views of the previous batch die now, whichever member took it
  mux.trimIfIdle();
  // What others' receives queued for us, then (in the same batch) what waits on the shared socket: one read of
  // it at most per batch, since each read reuses the thread's receive buffers.
  std::size_t n = self->head == kNone ? 0 : mux.takeQueued(self);
  if (n == mux.out.size()) return {mux.out.data(), n};
  if (n == 0 && self->turn) {
    auto batch = self->turn->recvBatch();
    if (!batch.empty()) return batch;
  }
  for (int round = 0; round < kMaxReadRounds; ++round) {
    auto batch = mux.socket.recvBatch();
    for (const auto& d : batch) {
      MuxMember* m = mux.route(d);
      if (!m) ++mux.droppedUnknown;
      else if (m == self && n < mux.out.size()) mux.out[n++] = d;
      else mux.enqueue(m, d);  // another member's, or ours beyond this batch (our armed wake-up says so)
    }
    if (n || batch.size() < UdpSocket::kBatch) break;
  }
  return {mux.out.data(), n};
}

std::size_t LocalSocket::sendBatch(std::span<const Outgoing> batch) {
  if (own_) return own_->sendBatch(batch);
  if (!mux_) return 0;
  if (!mux_->onOwner()) {
    RTCPEER_LOG(Error, "net", threadError(mux_->socket.localAddress()) << ": datagrams dropped");
    return 0;
  }
  UdpMux& mux = *mux_;
  MuxMember* self = member_.get();
  mux.reapOrphans();
  bool anyTurn = false;
  for (const auto& o : batch) {
    const auto i = mux::inspect(o.data);
    const bool turn = i.kind == mux::Inspection::Kind::Turn ||
                      std::find(self->turnServers.begin(), self->turnServers.end(), o.remote) !=
                          self->turnServers.end();
    if (turn) {
      if (std::find(self->turnServers.begin(), self->turnServers.end(), o.remote) == self->turnServers.end())
        self->turnServers.push_back(o.remote);
      anyTurn = true;
      continue;
    }
    mux.learn(self, o.remote, i.kind == mux::Inspection::Kind::Response && i.binding && i.success);
    if (i.kind == mux::Inspection::Kind::Request) mux.transactions[txidHash(i.transaction) % kTransactions] =
        {i.transaction, self};
  }
  if (!anyTurn) return mux.socket.sendBatch(batch);
  if (!self->turn) {
    SocketAddress local = mux.socket.localAddress();
    local.setPort(0);
    auto s = UdpSocket::bind(local);
    if (!s) {
      RTCPEER_LOG(Warning, "net", "udp mux: no private TURN socket: " << s.reason());
    } else if (auto w = self->poller->watch(s->fd()); !w) {
      RTCPEER_LOG(Warning, "net", "udp mux: " << w.reason());
    } else {
      self->turn.emplace(std::move(*s));
    }
  }
  mux.sharedOut.clear();
  mux.turnOut.clear();
  for (const auto& o : batch) {
    const bool turn = std::find(self->turnServers.begin(), self->turnServers.end(), o.remote) !=
                      self->turnServers.end();
    (turn ? mux.turnOut : mux.sharedOut).push_back(o);
  }
  std::size_t sent = mux.sharedOut.empty() ? 0 : mux.socket.sendBatch(mux.sharedOut);
  if (self->turn && !mux.turnOut.empty()) sent += self->turn->sendBatch(mux.turnOut);
  return sent;
}

void LocalSocket::retire() {
  if (!mux_ || !mux_->onOwner() || member_->retired) return;
  member_->retired = true;
  mux_->handOff(member_.get(), false);
}

Status LocalSocket::setUfrag(std::string_view ufrag) {
  if (!mux_) return okStatus();
  if (auto t = checkThread(); !t) return t;
  UdpMux& mux = *mux_;
  MuxMember* self = member_.get();
  if (ufrag == self->ufrag) return okStatus();
  if (ufrag.empty()) return fail("udpMux: empty ICE ufrag");
  if (auto it = mux.byUfrag.find(ufrag); it != mux.byUfrag.end() && it->second != self)
    return fail("udpMux: ICE ufrag '" + std::string(ufrag) + "' is already registered");
  mux.forget(self, self->previousUfrag);
  self->previousUfrag = std::exchange(self->ufrag, std::string(ufrag));
  mux.byUfrag.emplace(self->ufrag, self);
  return okStatus();
}

MuxStats LocalSocket::muxStats() const {
  MuxStats s;
  if (!mux_ || !mux_->onOwner()) return s;
  s.members = mux_->members;
  s.remoteRoutes = mux_->byRemote.size();
  s.queued = mux_->queuedTotal;
  s.poolSlots = mux_->slots.size();
  s.droppedUnknown = mux_->droppedUnknown;
  s.droppedFull = mux_->droppedFull;
  s.poolBound = mux_->poolBound();
  s.memberDroppedFull = member_->droppedFull;
  return s;
}

Result<std::vector<LocalSocket>> bindLocal(const BindOptions& options, const MuxJoin* mux) {
  std::vector<LocalSocket> out;
  if (!mux) {
    auto bound = bindInterfaces(options);
    if (!bound) return fail(bound.reason());
    for (auto& s : *bound) out.emplace_back(std::move(s));
    return out;
  }
  if (options.portMin == 0 || options.portMin != options.portMax)
    return fail("udpMux needs one port (portRangeBegin == portRangeEnd != 0)");
  auto addresses = interfaceAddresses(options);
  std::string lastError = noInterfaceReason();
  for (SocketAddress address : addresses) {
    address.setPort(options.portMin);
    auto s = LocalSocket::join(address, *mux);
    if (!s) {
      RTCPEER_LOG(Warning, "net", s.reason());
      lastError = s.reason();
      continue;
    }
    out.push_back(std::move(*s));
  }
  if (out.empty()) return fail(lastError);
  return out;
}

}  // namespace rtcpeer::net
