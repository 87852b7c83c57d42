// The UDP mux alone (src/net/udp_mux.*): real loopback sockets in a private network namespace, clients with
// ordinary sockets, members driven the way Session drives them (recvBatch/sendBatch, their epoll sets).
#include "net/udp_mux.hpp"

#include <gtest/gtest.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <unistd.h>

#include <filesystem>
#include <string>
#include <thread>

#include "unit/net/netns.hpp"

namespace rtcpeer::net {
namespace {

constexpr std::uint16_t kPort = 40000;

SocketAddress at(std::uint16_t port) { return *SocketAddress::parse("127.0.0.1", port); }

// A STUN message (RFC 5389 6) of `type` with transaction id byte `tx` and, if given, a USERNAME attribute.
Bytes stun(std::uint16_t type, std::uint8_t tx, std::string_view username = {}) {
  Bytes b = {static_cast<std::uint8_t>(type >> 8), static_cast<std::uint8_t>(type), 0, 0, 0x21, 0x12, 0xA4, 0x42};
  for (int i = 0; i < 12; ++i) b.push_back(tx);
  if (!username.empty()) {
    b.insert(b.end(), {0x00, 0x06, 0, static_cast<std::uint8_t>(username.size())});
    b.insert(b.end(), username.begin(), username.end());
    while (b.size() % 4) b.push_back(0);
  }
  b[3] = static_cast<std::uint8_t>(b.size() - 20);
  return b;
}
Bytes bindingRequest(std::string_view username, std::uint8_t tx = 1) { return stun(0x0001, tx, username); }
Bytes text(std::string_view s) { return Bytes(s.begin(), s.end()); }

std::shared_ptr<Poller> makePoller() {
  auto p = Poller::create();
  EXPECT_TRUE(p) << p.reason();
  return std::make_shared<Poller>(std::move(*p));
}

bool readable(int fd) {
  auto r = wait(std::span(&fd, 1), Timestamp{});  // a deadline in the past: no waiting
  return r && *r > 0;
}
// Loopback delivers synchronously, so what was sent is already there: nothing here waits.
std::vector<std::pair<SocketAddress, std::string>> drain(LocalSocket& s) {
  std::vector<std::pair<SocketAddress, std::string>> out;
  for (auto batch = s.recvBatch(); !batch.empty(); batch = s.recvBatch())
    for (const auto& d : batch) out.emplace_back(d.remote, std::string(d.data.begin(), d.data.end()));
  return out;
}
std::string received(UdpSocket& s) {
  auto batch = s.recvBatch();
  return batch.empty() ? std::string() : std::string(batch[0].data.begin(), batch[0].data.end());
}

struct Member {
  std::shared_ptr<Poller> poller = makePoller();
  LocalSocket socket;
  explicit Member(const std::string& ufrag, std::uint16_t port = kPort)
      : socket(LocalSocket::join(at(port), MuxJoin{ufrag, poller}).value()) {
    EXPECT_EQ(socket.fd(), -1);  // nothing for Session to watch: the mux registered itself in the epoll set
  }
  void send(const SocketAddress& to, const Bytes& data) {
    Outgoing o{to, data};
    EXPECT_EQ(socket.sendBatch(std::span(&o, 1)), 1u);
  }
};

class UdpMuxTest : public ::testing::Test {
 protected:
  void SetUp() override { RTCPEER_REQUIRE_LOOPBACK_NAMESPACE(); }
  UdpSocket client() {
    auto s = UdpSocket::bind(at(0));
    EXPECT_TRUE(s) << s.reason();
    return std::move(*s);
  }
};

TEST(UdpMuxInspect, ReadsTheUfragOfBindingRequestsOnly) {
  const Bytes request = bindingRequest("ours:theirs"), noColon = bindingRequest("nocolon");
  auto r = mux::inspect(request);
  EXPECT_EQ(r.kind, mux::Inspection::Kind::Request);
  EXPECT_TRUE(r.binding);
  EXPECT_EQ(r.ufrag, "ours");
  EXPECT_EQ(mux::inspect(noColon).ufrag, "nocolon");
  EXPECT_EQ(mux::inspect(stun(0x0101, 1)).kind, mux::Inspection::Kind::Response);
  EXPECT_EQ(mux::inspect(stun(0x0011, 1)).kind, mux::Inspection::Kind::Indication);
  EXPECT_EQ(mux::inspect(stun(0x0003, 1)).kind, mux::Inspection::Kind::Turn);  // Allocate
  EXPECT_EQ(mux::inspect(Bytes{0x40, 0x00, 0x00, 0x00}).kind, mux::Inspection::Kind::Turn);  // ChannelData
  EXPECT_EQ(mux::inspect(text("\x16\xfe\xfd")).kind, mux::Inspection::Kind::Other);  // DTLS
  // Malformed: a length that does not match, a USERNAME running past the end, a truncated header.
  Bytes bad = bindingRequest("abc:def");
  bad[3] += 4;
  EXPECT_EQ(mux::inspect(bad).kind, mux::Inspection::Kind::Other);
  Bytes overrun = bindingRequest("abc:def");
  overrun[23] = 200;
  EXPECT_TRUE(mux::inspect(overrun).ufrag.empty());
  EXPECT_EQ(mux::inspect(Bytes(10, 0)).kind, mux::Inspection::Kind::Other);
}

TEST_F(UdpMuxTest, RoutesRequestsByUfragThenByRemoteAddress) {
  Member a("aaaa"), b("bbbb");
  EXPECT_EQ(a.socket.localAddress(), at(kPort));
  EXPECT_EQ(b.socket.localAddress(), at(kPort));
  auto c = client();
  // A request for b read during a's receive lands in b's queue and makes b's epoll set readable.
  EXPECT_FALSE(readable(b.poller->fd()));
  ASSERT_TRUE(c.sendTo(at(kPort), bindingRequest("bbbb:cccc")));
  EXPECT_TRUE(readable(a.poller->fd()));  // a watches the shared socket
  EXPECT_TRUE(drain(a.socket).empty());
  EXPECT_EQ(a.socket.muxStats().queued, 1u);
  EXPECT_TRUE(readable(b.poller->fd()));
  auto got = drain(b.socket);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].first, c.localAddress());
  EXPECT_FALSE(readable(b.poller->fd())) << "the wake-up is disarmed once the queue is empty";

  // Before b answers, c's other traffic belongs to nobody; once b has sent to c, it is b's.
  ASSERT_TRUE(c.sendTo(at(kPort), text("early")));
  EXPECT_TRUE(drain(a.socket).empty());
  EXPECT_TRUE(drain(b.socket).empty());
  EXPECT_EQ(a.socket.muxStats().droppedUnknown, 1u);
  b.send(c.localAddress(), text("answer"));
  EXPECT_EQ(received(c), "answer");
  ASSERT_TRUE(c.sendTo(at(kPort), text("dtls")));
  got = drain(b.socket);  // b reads the shared socket itself too
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].second, "dtls");
  EXPECT_TRUE(drain(a.socket).empty());
}

// A datagram wakes the watcher and then its own connection, never the others (poll cost follows the traffic).
TEST_F(UdpMuxTest, OnlyTheWatcherAndTheAddresseeWakeUp) {
  Member a("aaaa"), b("bbbb"), c("cccc");
  auto client = this->client();
  c.send(client.localAddress(), text("route"));
  ASSERT_TRUE(client.sendTo(at(kPort), text("for c")));
  EXPECT_TRUE(readable(a.poller->fd()));
  EXPECT_FALSE(readable(b.poller->fd()));
  EXPECT_FALSE(readable(c.poller->fd()));
  EXPECT_TRUE(drain(a.socket).empty());
  EXPECT_FALSE(readable(a.poller->fd()));
  EXPECT_FALSE(readable(b.poller->fd()));
  EXPECT_TRUE(readable(c.poller->fd()));
  // A member's receive returns its queue and what is on the shared socket for it in one batch.
  ASSERT_TRUE(client.sendTo(at(kPort), text("also for c")));
  auto batch = c.socket.recvBatch();
  ASSERT_EQ(batch.size(), 2u);
  EXPECT_EQ(std::string(batch[0].data.begin(), batch[0].data.end()), "for c");
  EXPECT_EQ(std::string(batch[1].data.begin(), batch[1].data.end()), "also for c");
  EXPECT_FALSE(readable(c.poller->fd()));
  EXPECT_TRUE(drain(c.socket).empty());
}

// A client that reconnects from the same address to a new connection: the new one's answer to its check moves
// the address; the old one, still sending checks and data there until it times out, does not pull it back.
TEST_F(UdpMuxTest, ProofOfAPeerMovesAnAddressPlainSendingDoesNot) {
  Member old("oooo"), fresh("ffff");
  auto c = client();
  old.send(c.localAddress(), text("old data"));
  fresh.send(c.localAddress(), text("fresh data"));  // c is taken: no effect
  (void)c.recvBatch();
  ASSERT_TRUE(c.sendTo(at(kPort), text("1")));
  EXPECT_EQ(drain(old.socket).size(), 1u);
  fresh.send(c.localAddress(), stun(0x0101, 7));  // a Binding success response: fresh checked c's integrity
  old.send(c.localAddress(), bindingRequest("cccc:oooo", 8));
  old.send(c.localAddress(), text("old data"));
  (void)c.recvBatch();
  ASSERT_TRUE(c.sendTo(at(kPort), text("2")));
  EXPECT_TRUE(drain(old.socket).empty());
  auto got = drain(fresh.socket);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].second, "2");
  // c answering one of old's checks is proof too (its transaction id is unguessable).
  ASSERT_TRUE(c.sendTo(at(kPort), stun(0x0101, 8)));
  ASSERT_TRUE(c.sendTo(at(kPort), text("3")));
  got = drain(old.socket);
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[1].second, "3");
}

TEST_F(UdpMuxTest, IceRestartReplacesTheUfragKeepingThePreviousOne) {
  Member a("aaaa"), b("bbbb");
  auto c = client();
  EXPECT_FALSE(a.socket.setUfrag("bbbb")) << "taken";
  ASSERT_TRUE(a.socket.setUfrag("a2a2"));
  ASSERT_TRUE(a.socket.setUfrag("a3a3"));
  for (const char* user : {"aaaa:c", "a2a2:c", "a3a3:c"}) ASSERT_TRUE(c.sendTo(at(kPort), bindingRequest(user)));
  EXPECT_EQ(drain(a.socket).size(), 2u);  // the first ufrag is gone after two restarts
  EXPECT_EQ(a.socket.muxStats().droppedUnknown, 1u);
  EXPECT_TRUE(b.socket.setUfrag("aaaa")) << "free again";
}

// A connection that ended (Failed, Closed) may never be polled again: the watch goes to a live one.
TEST_F(UdpMuxTest, AnEndedConnectionHandsTheWatchOn) {
  Member a("aaaa"), b("bbbb");
  auto c = client();
  b.send(c.localAddress(), text("route"));
  a.socket.retire();
  ASSERT_TRUE(c.sendTo(at(kPort), text("for b")));
  EXPECT_FALSE(readable(a.poller->fd()));
  EXPECT_TRUE(readable(b.poller->fd()));
  EXPECT_EQ(drain(b.socket).size(), 1u);
  b.socket.retire();  // no live member left: b keeps the watch
  ASSERT_TRUE(c.sendTo(at(kPort), text("for b again")));
  EXPECT_TRUE(readable(b.poller->fd()));
  EXPECT_FALSE(readable(a.poller->fd()));
  Member d("dddd");  // a live newcomer takes it
  EXPECT_FALSE(readable(b.poller->fd()));
  EXPECT_TRUE(readable(d.poller->fd()));
  EXPECT_EQ(drain(b.socket).size(), 1u);
}

std::size_t openDescriptors() {
  std::size_t n = 0;
  for ([[maybe_unused]] const auto& e : std::filesystem::directory_iterator("/proc/self/fd")) ++n;
  return n;
}

// The descriptor limit bounds connections per process: a member costs one descriptor, its epoll set (which is the
// connection's fileDescriptor()), and 1/64 of a wake-up eventfd; the mux itself holds the shared socket.
TEST_F(UdpMuxTest, OneDescriptorPerMember) {
  const std::size_t before = openDescriptors();
  {
    std::vector<std::unique_ptr<Member>> members;
    constexpr std::size_t kMembers = 640;
    for (std::size_t i = 0; i < kMembers; ++i) members.push_back(std::make_unique<Member>("m" + std::to_string(i)));
    EXPECT_EQ(openDescriptors(), before + 1 + kMembers / 64 + kMembers);
    // Still so once they have all been woken and have drained.
    auto c = client();
    std::size_t own = 0;
    for (std::size_t i = 0; i < kMembers; ++i) {
      ASSERT_TRUE(c.sendTo(at(kPort), bindingRequest("m" + std::to_string(i) + ":c", static_cast<std::uint8_t>(i))));
      if (i % 50 == 49) own += drain(members[0]->socket).size();  // the watcher queues the others'
    }
    own += drain(members[0]->socket).size();
    EXPECT_EQ(own, 1u);
    for (std::size_t i = 1; i < kMembers; ++i) ASSERT_EQ(drain(members[i]->socket).size(), 1u) << i;
    EXPECT_EQ(openDescriptors(), before + 2 + kMembers / 64 + kMembers);  // and the client's socket
    members.resize(kMembers - 64);  // a whole group leaves: its eventfd closes
    EXPECT_EQ(openDescriptors(), before + 2 + kMembers / 64 - 1 + kMembers - 64);
  }
  EXPECT_EQ(openDescriptors(), before) << "the last member closes the shared socket and the wake-ups";
}

// A server's loop: every connection's epoll set inside the application's own (nested epoll). The kernel bounds
// how many nested sets one file may wake (500 through two levels), so one wake-up eventfd for thousands of
// members would be refused; groups of 64 are not, at any count.
TEST_F(UdpMuxTest, MembersWhoseEpollSetsAreNestedInOneLoop) {
  constexpr std::size_t kMembers = 1500;
  const int loop = epoll_create1(EPOLL_CLOEXEC);
  ASSERT_GE(loop, 0);
  std::vector<std::shared_ptr<Poller>> pollers;
  std::vector<LocalSocket> members;
  for (std::size_t i = 0; i < kMembers; ++i) {
    pollers.push_back(makePoller());
    epoll_event e{};
    e.events = EPOLLIN;
    e.data.u64 = i;
    ASSERT_EQ(epoll_ctl(loop, EPOLL_CTL_ADD, pollers.back()->fd(), &e), 0);
    auto s = LocalSocket::join(at(kPort), MuxJoin{"m" + std::to_string(i), pollers.back()});
    ASSERT_TRUE(s) << i << ": " << s.reason();
    members.push_back(std::move(*s));
  }
  auto c = client();
  ASSERT_TRUE(c.sendTo(at(kPort), bindingRequest("m1499:c")));
  epoll_event ready[4];
  ASSERT_EQ(epoll_wait(loop, ready, 4, 0), 1);
  EXPECT_EQ(ready[0].data.u64, 0u) << "the watcher";
  EXPECT_TRUE(members[0].recvBatch().empty());
  ASSERT_EQ(epoll_wait(loop, ready, 4, 0), 1);
  EXPECT_EQ(ready[0].data.u64, kMembers - 1) << "the addressee, woken through the loop";
  EXPECT_EQ(members.back().recvBatch().size(), 1u);
  EXPECT_EQ(epoll_wait(loop, ready, 4, 0), 0);
  members.clear();
  ::close(loop);
}

// The wake-up: a member's epoll set (its fileDescriptor()) is readable exactly while its queue holds datagrams,
// whichever member's receive queued them, over and over; the other members' sets stay quiet although the wake-up
// descriptor is the same in all of them.
TEST_F(UdpMuxTest, AQueuedDatagramMakesOnlyItsMemberReadableUntilDrained) {
  Member a("aaaa"), b("bbbb"), c("cccc");
  auto client = this->client();
  for (int round = 0; round < 3; ++round) {
    for (int i = 0; i < 100; ++i)  // more than a batch: b stays readable until its last batch is taken
      ASSERT_TRUE(client.sendTo(at(kPort), bindingRequest("bbbb:x", static_cast<std::uint8_t>(i))));
    EXPECT_FALSE(readable(b.poller->fd()));
    EXPECT_TRUE(drain(a.socket).empty());  // the watcher's receive queues them for b
    EXPECT_TRUE(readable(b.poller->fd()));
    EXPECT_FALSE(readable(c.poller->fd()));
    EXPECT_FALSE(readable(a.poller->fd()));
    EXPECT_EQ(b.socket.recvBatch().size(), UdpSocket::kBatch);
    EXPECT_TRUE(readable(b.poller->fd())) << "36 still queued";
    EXPECT_EQ(b.socket.recvBatch().size(), 100 - UdpSocket::kBatch);
    EXPECT_FALSE(readable(b.poller->fd())) << "drained: no busy loop for a caller waiting on it";
    EXPECT_TRUE(b.socket.recvBatch().empty());
  }
  // c's receive (not the watcher's) can queue for b too: c reads the shared socket when its queue is empty.
  ASSERT_TRUE(client.sendTo(at(kPort), bindingRequest("bbbb:x", 200)));
  EXPECT_TRUE(drain(c.socket).empty());
  EXPECT_TRUE(readable(b.poller->fd()));
  EXPECT_EQ(drain(b.socket).size(), 1u);
  EXPECT_FALSE(readable(b.poller->fd()));
}

// Nobody reads an ended connection's queue, so its datagrams are not queued (they would pin pool slots).
TEST_F(UdpMuxTest, AnEndedConnectionQueuesNothing) {
  Member a("aaaa"), b("bbbb");
  auto c = client();
  a.send(c.localAddress(), text("route"));
  a.socket.retire();  // b watches now
  ASSERT_TRUE(c.sendTo(at(kPort), text("for a")));
  EXPECT_TRUE(drain(b.socket).empty());
  EXPECT_EQ(b.socket.muxStats().queued, 0u);
  EXPECT_EQ(b.socket.muxStats().droppedUnknown, 1u);
  EXPECT_FALSE(readable(a.poller->fd()));
}

TEST_F(UdpMuxTest, UnknownSendersAreDroppedWithoutState) {
  Member a("aaaa");
  auto c = client();
  for (int i = 0; i < 2000; ++i) {
    ASSERT_TRUE(c.sendTo(at(kPort), bindingRequest("u" + std::to_string(i) + ":x")));
    ASSERT_TRUE(c.sendTo(at(kPort), text("garbage")));
    if (i % 100 == 99) {
      EXPECT_TRUE(drain(a.socket).empty());
    }
  }
  auto stats = a.socket.muxStats();
  EXPECT_EQ(stats.droppedUnknown, 4000u);
  EXPECT_EQ(stats.remoteRoutes, 0u);
  EXPECT_EQ(stats.queued, 0u);
  EXPECT_EQ(stats.poolSlots, 0u);
}

TEST_F(UdpMuxTest, RoutesPerMemberAreBoundedOldestFirst) {
  Member a("aaaa");
  std::vector<UdpSocket> clients;
  for (int i = 0; i < 20; ++i) {
    clients.push_back(client());
    a.send(clients.back().localAddress(), text("hi"));
  }
  a.send(clients[19].localAddress(), text("again"));  // a known route: nothing moves
  EXPECT_EQ(a.socket.muxStats().remoteRoutes, 16u);
  for (auto& c : clients) ASSERT_TRUE(c.sendTo(at(kPort), text("x")));
  EXPECT_EQ(drain(a.socket).size(), 16u);
  EXPECT_EQ(a.socket.muxStats().droppedUnknown, 4u);  // the first four were evicted
}

TEST_F(UdpMuxTest, QueuesAreBounded) {
  Member a("aaaa"), b("bbbb");
  auto c = client();
  b.send(c.localAddress(), text("hi"));
  for (std::size_t i = 0; i < LocalSocket::kMaxQueued + 50; ++i) {
    ASSERT_TRUE(c.sendTo(at(kPort), text("m" + std::to_string(i))));
    if (i % 32 == 31) {
      EXPECT_TRUE(drain(a.socket).empty());
    }
  }
  EXPECT_TRUE(drain(a.socket).empty());
  EXPECT_EQ(a.socket.muxStats().queued, LocalSocket::kMaxQueued);
  EXPECT_EQ(a.socket.muxStats().droppedFull, 50u);
  EXPECT_EQ(a.socket.muxStats().memberDroppedFull, 0u) << "the drops were b's";
  EXPECT_EQ(b.socket.muxStats().memberDroppedFull, 50u);
  auto got = drain(b.socket);
  ASSERT_EQ(got.size(), LocalSocket::kMaxQueued);
  EXPECT_EQ(got.front().second, "m0");  // in order
  EXPECT_EQ(got.back().second, "m" + std::to_string(LocalSocket::kMaxQueued - 1));
}

// Every client's consent check arriving in the same instant, for more members than the pool's minimum: the pool
// grows with the membership (max(kMinPool, 4 x members)), loses nothing, and shrinks back once idle.
TEST_F(UdpMuxTest, ABurstForEveryMemberBeyondTheMinimumPoolLosesNothing) {
  constexpr std::size_t kMembers = LocalSocket::kMinPool + 808;
  rlimit limit{};
  ASSERT_EQ(getrlimit(RLIMIT_NOFILE, &limit), 0);
  if (limit.rlim_max < kMembers + 200) GTEST_SKIP() << "RLIMIT_NOFILE hard limit " << limit.rlim_max;
  limit.rlim_cur = limit.rlim_max;
  ASSERT_EQ(setrlimit(RLIMIT_NOFILE, &limit), 0);
  std::vector<std::unique_ptr<Member>> members;
  for (std::size_t i = 0; i < kMembers; ++i) members.push_back(std::make_unique<Member>("m" + std::to_string(i)));
  auto& watcher = members[0]->socket;
  auto c = client();
  for (int burst = 0; burst < 2; ++burst) {
    std::size_t own = 0;
    // The watcher's receives route the burst as it arrives (a kernel socket buffer holds a few hundred).
    for (std::size_t i = 0; i < kMembers; ++i) {
      ASSERT_TRUE(c.sendTo(at(kPort), bindingRequest("m" + std::to_string(i) + ":c", static_cast<std::uint8_t>(i))));
      if (i % 64 == 63) own += drain(watcher).size();
    }
    own += drain(watcher).size();
    EXPECT_EQ(own, 1u);
    auto stats = watcher.muxStats();
    EXPECT_EQ(stats.droppedFull, 0u);
    EXPECT_EQ(stats.queued, kMembers - 1);
    EXPECT_EQ(stats.poolBound, 4 * kMembers);
    EXPECT_GT(stats.poolSlots, LocalSocket::kMinPool);
    for (std::size_t i = 1; i < kMembers; ++i) ASSERT_EQ(drain(members[i]->socket).size(), 1u) << i;
    EXPECT_EQ(watcher.muxStats().queued, 0u);
    // Idle: after a thousand receives without growth the pool is back to a few hundred buffers (512 KiB).
    for (int i = 0; i < 1100; ++i) EXPECT_TRUE(watcher.recvBatch().empty());
    EXPECT_LE(watcher.muxStats().poolSlots, 256u);
  }
}

TEST_F(UdpMuxTest, ResponsesFollowTheirTransaction) {
  Member a("aaaa"), b("bbbb");
  auto server = client();  // a STUN server both use
  a.send(server.localAddress(), bindingRequest("", 0xA));
  b.send(server.localAddress(), bindingRequest("", 0xB));  // the server's address is now b's route
  ASSERT_TRUE(server.sendTo(at(kPort), stun(0x0101, 0xA)));
  ASSERT_TRUE(server.sendTo(at(kPort), stun(0x0101, 0xB)));
  auto got = drain(a.socket);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(mux::inspect(Bytes(got[0].second.begin(), got[0].second.end())).transaction[0], 0xA);
  got = drain(b.socket);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(mux::inspect(Bytes(got[0].second.begin(), got[0].second.end())).transaction[0], 0xB);
}

TEST_F(UdpMuxTest, TurnTrafficUsesAPrivateSocket) {
  Member a("aaaa"), b("bbbb");
  auto turn = client();
  a.send(turn.localAddress(), stun(0x0003, 1));  // Allocate
  b.send(turn.localAddress(), stun(0x0003, 2));
  auto fromA = turn.recvBatch();
  ASSERT_EQ(fromA.size(), 2u);
  const SocketAddress aTurn = fromA[0].remote, bTurn = fromA[1].remote;
  EXPECT_NE(aTurn.port(), kPort);  // two allocations need two 5-tuples (RFC 8656 2.2)
  EXPECT_NE(aTurn, bTurn);
  ASSERT_TRUE(turn.sendTo(aTurn, stun(0x0103, 1)));
  EXPECT_TRUE(readable(a.poller->fd()));  // the private socket is in a's epoll set
  auto got = drain(a.socket);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].first, turn.localAddress());
  EXPECT_EQ(a.socket.localAddress(), at(kPort));  // the agent still sees one host base
  // Later traffic to that server, a Send indication or a plain datagram, takes the same private socket.
  a.send(turn.localAddress(), text("after"));
  auto again = turn.recvBatch();
  ASSERT_EQ(again.size(), 1u);
  EXPECT_EQ(again[0].remote, aTurn);
}

TEST_F(UdpMuxTest, TheLastMemberToLeaveClosesTheSocketAndTheWatcherIsHandedOn) {
  auto c = client();
  {
    std::optional<Member> a(std::in_place, "aaaa");
    Member b("bbbb");
    EXPECT_FALSE(UdpSocket::bind(at(kPort))) << "the port is the mux's";
    EXPECT_FALSE(LocalSocket::join(at(kPort), MuxJoin{"bbbb", makePoller()})) << "a ufrag registers once";
    b.send(c.localAddress(), text("route"));
    a.reset();  // the watcher leaves: b's epoll set now watches the shared socket
    ASSERT_TRUE(c.sendTo(at(kPort), text("to b")));
    EXPECT_TRUE(readable(b.poller->fd()));
    auto got = drain(b.socket);
    ASSERT_EQ(got.size(), 1u);
    EXPECT_EQ(got[0].second, "to b");
    EXPECT_EQ(b.socket.muxStats().members, 1u);
  }
  auto again = UdpSocket::bind(at(kPort));
  EXPECT_TRUE(again) << "closed with its last member: " << again.reason();
}

TEST_F(UdpMuxTest, AnotherThreadIsRefused) {
  Member a("aaaa");
  std::string joinError, recvError;
  std::size_t sent = 1;
  std::thread([&] {
    auto j = LocalSocket::join(at(kPort), MuxJoin{"bbbb", makePoller()});
    if (!j) joinError = j.reason();
    if (auto t = a.socket.checkThread(); !t) recvError = t.reason();
    const Bytes data = text("x");
    Outgoing o{at(1), data};
    sent = a.socket.sendBatch(std::span(&o, 1));
  }).join();
  EXPECT_NE(joinError.find("another thread"), std::string::npos) << joinError;
  EXPECT_NE(recvError.find("another thread"), std::string::npos) << recvError;
  EXPECT_EQ(sent, 0u);
  EXPECT_TRUE(a.socket.checkThread());
  // A member destroyed on another thread is removed by the owner thread at its next use.
  auto b = std::make_unique<Member>("bbbb");
  std::thread([&] { b.reset(); }).join();
  EXPECT_TRUE(drain(a.socket).empty());
  EXPECT_EQ(a.socket.muxStats().members, 1u);
}

TEST_F(UdpMuxTest, Ipv6) {
  const auto v6 = [](std::uint16_t port) { return *SocketAddress::parse("::1", port); };
  if (!UdpSocket::bind(v6(0))) GTEST_SKIP() << "no ::1";
  auto p = makePoller();
  auto a = LocalSocket::join(v6(kPort), MuxJoin{"aaaa", p});
  ASSERT_TRUE(a) << a.reason();
  Member b("bbbb");  // 127.0.0.1 and ::1 are two shared sockets
  EXPECT_EQ(b.socket.muxStats().members, 1u);
  auto c = UdpSocket::bind(v6(0)).value();
  ASSERT_TRUE(c.sendTo(v6(kPort), bindingRequest("aaaa:cccc")));
  auto got = drain(*a);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].first, c.localAddress());
}

TEST_F(UdpMuxTest, OwnSocketsPassThrough) {
  BindOptions o;
  o.addresses = {at(0)};
  auto own = bindLocal(o, nullptr);
  ASSERT_TRUE(own) << own.reason();
  ASSERT_EQ(own->size(), 1u);
  EXPECT_FALSE((*own)[0].shared());
  o.portMin = o.portMax = kPort;
  MuxJoin join{"zzzz", makePoller()};
  auto shared = bindLocal(o, &join);
  ASSERT_TRUE(shared) << shared.reason();
  EXPECT_TRUE((*shared)[0].shared());
  EXPECT_EQ((*shared)[0].localAddress(), at(kPort));
  o.portMax = kPort + 1;
  EXPECT_FALSE(bindLocal(o, &join));
}

}  // namespace
}  // namespace rtcpeer::net
