// A crowd on one port (issue 19): N client PeerConnections (default configuration: ordinary sockets, fresh
// certificates, full ICE) and N server PeerConnections sharing one UDP port (default configuration plus udpMux
// and the port), all created and started at the same instant in one process, signaled in memory. Every client
// sends one message and must get it back byte-exact; no connection may reach Failed. Two drivers, the ways an
// application drives them:
//   Naive: every turn polls every connection, no waits (a busy loop over thousands of mostly idle connections).
//   Server: one epoll set over every connection's fileDescriptor() plus a heap of nextDeadline()s, so poll() runs
//           only for connections that have work.
// Bounded by loop turns and by state (a connection that cannot connect reaches Failed at its connectTimeout and
// fails the test), never by wall-clock time. RTCPEER_CROWD_N overrides N for runs by hand (e.g. 5000 in release).
// Runs in a private loopback-only network namespace.
#include <dirent.h>
#include <sys/epoll.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <queue>
#include <string>
#include <vector>

#include "rtcpeer/rtcpeer.hpp"
#include "unit/net/netns.hpp"

namespace rtcpeer::test {
namespace {

constexpr std::uint16_t kPort = 40200;
using Clock = std::chrono::steady_clock;

int crowdSize() {
  if (const char* n = std::getenv("RTCPEER_CROWD_N")) return std::atoi(n);
  return 2000;  // both tests in about 20 s under ASan on two shared cores
}

// The message client i sends: its index and every byte value, so a mix-up or a corruption shows.
std::string messageFor(std::size_t i) {
  std::string m = "crowd " + std::to_string(i) + " ";
  for (int b = 0; b < 256; ++b) m.push_back(static_cast<char>((b + i) & 0xff));
  return m;
}

struct Link {
  std::size_t index;
  PeerConnection client, server;
  std::shared_ptr<DataChannel> channel;  // the client's
  std::shared_ptr<DataChannel> served;   // the server's end of it
  std::string echo;
  int clientCandidates = 0;
  bool sent = false, echoed = false, counted = false;
  std::vector<std::string> errors;

  explicit Link(std::size_t i) : index(i) {
    Configuration serverConfig;
    serverConfig.udpMux = true;
    serverConfig.portRangeBegin = serverConfig.portRangeEnd = kPort;
    check(client.initialize(), client, "client initialize");
    check(server.initialize(serverConfig), server, "server initialize");
    client.onSessionDescriptionCreated([this](const std::string& type, const std::string& sdp) {
      check(client.setLocalDescription(type, sdp), client, "client setLocalDescription");
      check(server.setRemoteDescription(type, sdp), server, "server setRemoteDescription");
    });
    server.onSessionDescriptionCreated([this](const std::string& type, const std::string& sdp) {
      check(server.setLocalDescription(type, sdp), server, "server setLocalDescription");
      check(client.setRemoteDescription(type, sdp), client, "client setRemoteDescription");
    });
    client.onIceCandidateCreated([this](const std::string& mid, int line, const std::string& name) {
      if (!name.empty()) ++clientCandidates;
      check(server.addIceCandidate(mid, line, name), server, "server addIceCandidate");
    });
    server.onIceCandidateCreated([this](const std::string& mid, int line, const std::string& name) {
      check(client.addIceCandidate(mid, line, name), client, "client addIceCandidate");
    });
    server.onDataChannelReceived([this](std::shared_ptr<DataChannel> c) { served = std::move(c); });
  }
  void start() {
    channel = client.createDataChannel("crowd");
    if (!channel) errors.push_back("createDataChannel: " + client.lastError());
    check(client.createOffer(), client, "createOffer");
  }
  void check(Error e, PeerConnection& pc, const char* what) {
    if (e != Error::Ok) errors.push_back(std::string(what) + ": " + errorName(e) + ": " + pc.lastError());
  }
  // Application work between polls: the client sends once its channel is open, the server echoes, the client
  // keeps the echo. True if it queued anything (so the connection has work: its nextDeadline() is now).
  bool service() {
    bool queued = false;
    if (!sent && channel && channel->readyState() == ReadyState::Open) {
      check(channel->putPacket(messageFor(index)), client, "client putPacket");
      sent = queued = true;
    }
    std::vector<std::uint8_t> buffer;
    while (served && served->availablePacketCount() > 0 && served->getPacket(buffer) == Error::Ok) {
      check(served->putPacket(buffer), server, "server putPacket");
      queued = true;
    }
    while (channel && channel->availablePacketCount() > 0 && channel->getPacket(buffer) == Error::Ok) {
      echo.assign(buffer.begin(), buffer.end());
      echoed = true;
    }
    return queued;
  }
  const char* failed() const {
    if (client.connectionState() == ConnectionState::Failed) return "client";
    if (server.connectionState() == ConnectionState::Failed) return "server";
    return nullptr;
  }
};

class Crowd : public ::testing::Test {
 protected:
  void SetUp() override {
    RTCPEER_REQUIRE_LOOPBACK_NAMESPACE();
    n = static_cast<std::size_t>(crowdSize());
    const auto begin = Clock::now();
    for (std::size_t i = 0; i < n; ++i) links.push_back(std::make_unique<Link>(i));
    for (auto& l : links) l->start();
    for (auto& l : links) ASSERT_TRUE(l->errors.empty()) << l->errors.front();
    std::printf("[crowd] %zu clients + %zu servers created in %.2f s\n", n, n, seconds(Clock::now() - begin));
  }

  static double seconds(Clock::duration d) { return std::chrono::duration<double>(d).count(); }

  // After a link's work: stop at the first error or Failed connection; count echoes.
  bool inspect(Link& l) {
    if (!l.errors.empty()) {
      ADD_FAILURE() << "link " << l.index << ": " << l.errors.front();
      return false;
    }
    if (const char* side = l.failed()) {
      const PeerConnection& pc = side[0] == 'c' ? l.client : l.server;
      ADD_FAILURE() << "link " << l.index << ": the " << side << " failed: " << pc.lastError() << " (" << echoed
                    << " of " << n << " echoed)";
      return false;
    }
    if (l.echoed && !l.counted) {
      l.counted = true;
      ++echoed;
      EXPECT_EQ(l.echo, messageFor(l.index)) << "link " << l.index;
    }
    return true;
  }

  static int openDescriptors() {
    DIR* d = opendir("/proc/self/fd");
    if (d == nullptr) return -1;
    int count = 0;
    while (const dirent* e = readdir(d))
      if (e->d_name[0] != '.') ++count;
    closedir(d);
    return count - 1;  // the directory's own descriptor
  }

  void report(const char* driver, Clock::time_point begin, std::size_t turns, std::size_t polls) {
    std::printf("[crowd] %s: %zu of %zu echoed in %.2f s, %zu turns, %zu poll() calls, %d descriptors open\n",
                driver, echoed, n, seconds(Clock::now() - begin), turns, polls, openDescriptors());
  }

  std::size_t n = 0, echoed = 0;
  std::vector<std::unique_ptr<Link>> links;
};


// A bound on loop turns that only a hang reaches: a connection that cannot connect reaches Failed (and fails the
// test) well before.
constexpr std::size_t kMaxTurns = 50'000'000;

TEST_F(Crowd, NaiveLoopPollsEveryConnectionAndEveryClientEchoes) {
  const auto begin = Clock::now();
  std::size_t turns = 0, polls = 0;
  Clock::duration longest{};
  for (; echoed < n && turns < kMaxTurns; ++turns) {
    const auto turn = Clock::now();
    struct Longest {  // the longest turn, for the report: how long every connection waited for its next poll
      Clock::duration& longest;
      Clock::time_point turn;
      ~Longest() { longest = std::max(longest, Clock::now() - turn); }
    } measure{longest, turn};
    for (auto& l : links) {
      for (PeerConnection* pc : {&l->client, &l->server}) {
        l->check(pc->poll(), *pc, "poll");
        ++polls;
      }
      l->service();
      if (!inspect(*l)) return report("naive", begin, turns, polls);
    }
  }
  report("naive", begin, turns, polls);
  // A default client in a namespace holding only `lo` gathers one loopback address (two sockets per client would
  // put 5,000 clients and their servers past this machine's 20,000 descriptors).
  EXPECT_EQ(links[0]->clientCandidates, 1);
  std::printf("[crowd] naive: the longest turn took %.2f s\n", seconds(longest));
  EXPECT_EQ(echoed, n);
  // What a naive loop pays for the idle crowd (printed, not bounded: timings are not a test's business).
  const auto idle = Clock::now();
  constexpr int kIdleTurns = 50;
  for (int t = 0; t < kIdleTurns; ++t)
    for (auto& l : links)
      for (PeerConnection* pc : {&l->client, &l->server}) l->check(pc->poll(), *pc, "idle poll");
  std::printf("[crowd] idle: %.2f us per poll() of a connected, idle connection\n",
              seconds(Clock::now() - idle) * 1e6 / (kIdleTurns * 2.0 * static_cast<double>(n)));
  for (auto& l : links) EXPECT_EQ(l->server.stats().local.port, kPort) << "link " << l->index;
}

TEST_F(Crowd, ServerLoopPollsOnlyConnectionsWithWork) {
  const int ep = epoll_create1(EPOLL_CLOEXEC);
  ASSERT_GE(ep, 0);
  // Connection id: 2 * link (client) or 2 * link + 1 (server).
  auto connection = [&](std::size_t id) -> PeerConnection& {
    return id % 2 ? links[id / 2]->server : links[id / 2]->client;
  };
  // A heap of (deadline, connection) with lazy deletion: an entry counts only while it is the connection's
  // earliest scheduled deadline.
  using Entry = std::pair<Clock::time_point, std::size_t>;
  std::priority_queue<Entry, std::vector<Entry>, std::greater<>> deadlines;
  std::vector<Clock::time_point> scheduled(2 * n, Clock::time_point::max());
  for (std::size_t id = 0; id < 2 * n; ++id) {
    epoll_event e{};
    e.events = EPOLLIN;
    e.data.u64 = id;
    ASSERT_GE(connection(id).fileDescriptor(), 0);
    ASSERT_EQ(epoll_ctl(ep, EPOLL_CTL_ADD, connection(id).fileDescriptor(), &e), 0) << "connection " << id;
    deadlines.push({scheduled[id] = Clock::now(), id});
  }
  auto schedule = [&](std::size_t id) {
    const auto t = connection(id).nextDeadline();
    if (t < scheduled[id]) deadlines.push({scheduled[id] = t, id});
  };

  const auto begin = Clock::now();
  std::size_t turns = 0, polls = 0;
  std::vector<epoll_event> events(1024);
  std::vector<std::size_t> ready;
  for (; echoed < n && turns < kMaxTurns; ++turns) {
    int timeout = -1;
    if (!deadlines.empty()) {
      const auto wait = deadlines.top().first - Clock::now();
      timeout = wait <= Clock::duration::zero()
                    ? 0
                    : static_cast<int>(std::chrono::ceil<std::chrono::milliseconds>(wait).count());
    }
    const int count = epoll_wait(ep, events.data(), static_cast<int>(events.size()), timeout);
    ASSERT_GE(count, 0);
    ready.clear();
    for (int i = 0; i < count; ++i) ready.push_back(static_cast<std::size_t>(events[i].data.u64));
    const auto now = Clock::now();
    while (!deadlines.empty() && deadlines.top().first <= now) {
      const auto [t, id] = deadlines.top();
      deadlines.pop();
      if (scheduled[id] != t) continue;  // superseded by an earlier one, already polled
      scheduled[id] = Clock::time_point::max();
      ready.push_back(id);
    }
    for (std::size_t id : ready) {
      Link& l = *links[id / 2];
      PeerConnection& pc = connection(id);
      l.check(pc.poll(), pc, "poll");
      ++polls;
      l.service();
      // Callbacks and the application's sends may have given either end of the link work.
      schedule(2 * l.index);
      schedule(2 * l.index + 1);
      if (!inspect(l)) {
        ::close(ep);
        return report("server", begin, turns, polls);
      }
    }
  }
  ::close(ep);
  report("server", begin, turns, polls);
  EXPECT_EQ(echoed, n);
  for (auto& l : links) EXPECT_EQ(l->server.stats().local.port, kPort) << "link " << l->index;
}

}  // namespace
}  // namespace rtcpeer::test
