// The UDP mux alone (src/net/udp_mux.*), at 10 .. 10,000 members on one loopback port: memory per member, and the
// cost per datagram of routing (read by the watcher's receive, queued, woken through its epoll set, read by its
// member), by ICE ufrag (Binding requests) and by remote address (other datagrams). The figures should not grow
// with the number of members: each round sends to 256 members spread over the whole set. Plain program; raises
// RLIMIT_NOFILE (a member holds one descriptor, its epoll set, as a PeerConnection on a mux does).
//   bench_udp_mux [max members] [datagrams per round]
#include <malloc.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <unistd.h>

#include <chrono>
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "net/udp_mux.hpp"

using namespace rtcpeer;
using namespace rtcpeer::net;

namespace {

// Heap bytes in use (glibc); a member's kernel objects (its epoll set, which is the connection's anyway) are not
// counted.
std::size_t heapBytes() { return mallinfo2().uordblks; }

Bytes bindingRequest(const std::string& ufrag, std::uint32_t n) {
  Bytes b = {0x00, 0x01, 0, 0, 0x21, 0x12, 0xA4, 0x42};
  for (int i = 0; i < 12; ++i) b.push_back(static_cast<std::uint8_t>(n >> (8 * (i % 4))));
  std::string user = ufrag;
  user += ":client";
  b.insert(b.end(), {0x00, 0x06, 0, static_cast<std::uint8_t>(user.size())});
  b.insert(b.end(), user.begin(), user.end());
  while (b.size() % 4) b.push_back(0);
  b.resize(b.size() + 60, 0);  // room for the other attributes of a real check, as padding of an unknown one
  b[b.size() - 60] = 0x80;
  b[b.size() - 59] = 0x99;
  b[b.size() - 57] = 56;
  b[3] = static_cast<std::uint8_t>(b.size() - 20);
  return b;
}

// Built by appending: gcc 12's -Wrestrict misfires on `"literal" + std::string` at -O2 (GCC bug 105329).
std::string ufragOf(std::size_t i) {
  std::string u = "u";
  u += std::to_string(i);
  return u;
}

}  // namespace

int main(int argc, char** argv) {
  const std::size_t maxMembers = argc > 1 ? std::strtoul(argv[1], nullptr, 10) : 10000;
  const std::size_t perRound = argc > 2 ? std::strtoul(argv[2], nullptr, 10) : 4096;
  rlimit limit{};
  getrlimit(RLIMIT_NOFILE, &limit);
  const rlim_t want = maxMembers + 1024;
  if (limit.rlim_max < want) limit.rlim_max = want;  // root may raise the hard limit too
  limit.rlim_cur = limit.rlim_max;
  if (setrlimit(RLIMIT_NOFILE, &limit) != 0) {
    getrlimit(RLIMIT_NOFILE, &limit);
    limit.rlim_cur = limit.rlim_max;
    setrlimit(RLIMIT_NOFILE, &limit);
  }

  const auto loopback = *SocketAddress::parse("127.0.0.1", 0);
  auto probe = UdpSocket::bind(loopback);
  if (!probe) return std::printf("bind: %s\n", probe.reason().c_str()), 1;
  const SocketAddress shared = probe->localAddress();
  probe = UdpSocket::bind(loopback);  // frees the port for the mux
  constexpr std::size_t kClients = 256;  // remote addresses, one per member for the by-address figure
  std::vector<UdpSocket> clients;
  for (std::size_t i = 0; i < kClients; ++i) clients.push_back(UdpSocket::bind(loopback).value());

  // Baseline: the same datagrams read from a socket of one's own (recvmmsg only, no routing).
  {
    auto own = UdpSocket::bind(loopback).value();
    const Bytes dtls(200, 0x17);
    double ns = 0;
    constexpr int kRounds = 20;
    for (int r = 0; r < kRounds; ++r) {
      for (std::size_t i = 0; i < perRound; ++i) clients[i % kClients].sendTo(own.localAddress(), dtls);
      const auto t0 = std::chrono::steady_clock::now();
      std::size_t got = 0;
      for (auto b = own.recvBatch(); !b.empty(); b = own.recvBatch()) got += b.size();
      ns += std::chrono::duration<double, std::nano>(std::chrono::steady_clock::now() - t0).count() /
            static_cast<double>(got) / kRounds;
    }
    std::printf("own socket, no mux: %.1f ns/datagram\n", ns);
  }
  std::printf("%8s %14s %16s %16s %10s\n", "members", "heap B/member", "ns/dgram ufrag", "ns/dgram addr", "dropped");
  // From 256 members up, so that each addressee owns one client address (a member keeps 16 routes).
  std::vector<std::size_t> sizes;
  for (std::size_t n : {256, 1000, 3000, 10000})
    if (n <= maxMembers) sizes.push_back(n);
  if (maxMembers > 10000) sizes.push_back(maxMembers);
  for (std::size_t n : sizes) {
    std::vector<LocalSocket> members;
    members.reserve(n);
    // Each member has its epoll set, as each PeerConnection has (its fileDescriptor()); the application's loop is
    // one epoll set holding all of them (the member's index as its data).
    const int loop = epoll_create1(EPOLL_CLOEXEC);
    if (loop < 0) return std::printf("epoll_create1 failed\n"), 1;
    std::vector<std::shared_ptr<Poller>> pollers;
    pollers.reserve(n);
    const std::size_t before = heapBytes();
    for (std::size_t i = 0; i < n; ++i) {
      auto p = Poller::create();
      if (!p) return std::printf("member %zu: %s\n", i, p.reason().c_str()), 1;
      pollers.push_back(std::make_shared<Poller>(std::move(*p)));
      auto s = LocalSocket::join(shared, MuxJoin{ufragOf(i), pollers.back()});
      if (!s) return std::printf("join %zu: %s\n", i, s.reason().c_str()), 1;
      epoll_event e{};
      e.events = EPOLLIN;
      e.data.u64 = i;
      if (epoll_ctl(loop, EPOLL_CTL_ADD, pollers.back()->fd(), &e) != 0) return std::printf("epoll_ctl failed\n"), 1;
      members.push_back(std::move(*s));
    }
    // kClients members spread over the whole set are the addressees; each owns one client address (it sent there
    // first, as after an ICE check).
    auto addressee = [&](std::size_t c) { return c * n / kClients; };
    const Bytes hello = {1};
    for (std::size_t c = 0; c < kClients; ++c) {
      Outgoing o{clients[c].localAddress(), hello};
      members[addressee(c)].sendBatch(std::span(&o, 1));
      (void)clients[c].recvBatch();
    }
    const double bytes = static_cast<double>(heapBytes() - before) / static_cast<double>(n);

    const std::size_t count = std::min(perRound, 200 * std::min(n, kClients));  // under the queue bound
    std::vector<Bytes> requests;
    for (std::size_t i = 0; i < count; ++i)
      requests.push_back(bindingRequest(ufragOf(addressee(i % kClients)), static_cast<std::uint32_t>(i)));
    const Bytes dtls(200, 0x17);
    // One round: the datagrams are sent (not timed), then an epoll loop receives on the members whose descriptor
    // is readable (the watcher first, which routes, then the addressees), as a server's loop would.
    std::vector<epoll_event> events(1024);
    auto round = [&](bool byUfrag) {
      std::size_t sent = 0;
      for (std::size_t i = 0; i < count; ++i) {
        const std::size_t c = byUfrag ? 0 : i % kClients;
        sent += clients[c].sendTo(shared, byUfrag ? ByteView(requests[i]) : ByteView(dtls)) ? 1 : 0;
      }
      const auto t0 = std::chrono::steady_clock::now();
      std::size_t got = 0;
      // As Session::poll: receive until a batch is not full.
      for (int ready; (ready = epoll_wait(loop, events.data(), static_cast<int>(events.size()), 0)) > 0;)
        for (int e = 0; e < ready; ++e) {
          auto& m = members[events[static_cast<std::size_t>(e)].data.u64];
          for (int r = 0; r < 16; ++r) {
            auto b = m.recvBatch();
            got += b.size();
            if (b.size() < UdpSocket::kBatch) break;
          }
        }
      const double ns = std::chrono::duration<double, std::nano>(std::chrono::steady_clock::now() - t0).count();
      return std::pair{ns / static_cast<double>(sent), sent - got};
    };
    double ufragNs = 0, addrNs = 0;
    std::size_t dropped = 0;
    constexpr int kRounds = 20;
    for (int r = 0; r < kRounds; ++r) {
      auto [a, da] = round(true);
      auto [b, db] = round(false);
      ufragNs += a / kRounds;
      addrNs += b / kRounds;
      dropped += da + db;
    }
    const auto stats = members[0].muxStats();
    std::printf("%8zu %14.0f %16.1f %16.1f %10zu  (mux: unknown %llu, full %llu, pool %zu)\n", n, bytes, ufragNs,
                addrNs, dropped, static_cast<unsigned long long>(stats.droppedUnknown),
                static_cast<unsigned long long>(stats.droppedFull), stats.poolSlots);
    members.clear();
    pollers.clear();
    ::close(loop);
  }
  return 0;
}
