// Many concurrent WebSocket clients on loopback: every relayed message arrives, in order, and the server's memory
// stays bounded. SIGNALING_CLIENTS is set per binary (200 in the quick suite, 1000 in the "slow" one).
#include <gtest/gtest.h>
#include <sys/resource.h>
#include <unistd.h>

#include <fstream>
#include <map>

#include "signaling/server.hpp"
#include "ws_client.hpp"

#ifndef SIGNALING_CLIENTS
#define SIGNALING_CLIENTS 200
#endif
#if SIGNALING_CLIENTS >= 1000
#define SIGNALING_LOAD_TEST ThousandClientsLoseNoRelayMessage
#else
#define SIGNALING_LOAD_TEST ConcurrentClientsLoseNoRelayMessage
#endif

namespace rtcpeer::signaling::test {
namespace {

using T = MessageType;

long residentKiB() {
  std::ifstream statm("/proc/self/statm");
  long pages = 0, resident = 0;
  statm >> pages >> resident;
  return resident * (sysconf(_SC_PAGESIZE) / 1024);
}

TEST(SignalingLoad, SIGNALING_LOAD_TEST) {
  constexpr int kClients = SIGNALING_CLIENTS;
  constexpr int kLobbySize = 10;
  constexpr int kLobbies = kClients / kLobbySize;
  constexpr int kRounds = 5;  // messages each member sends to each other member

  rlimit files{};
  getrlimit(RLIMIT_NOFILE, &files);
  if (files.rlim_cur < 2 * kClients + 64) {
    files.rlim_cur = std::min<rlim_t>(files.rlim_max, 2 * kClients + 256);
    setrlimit(RLIMIT_NOFILE, &files);
  }
  if (files.rlim_cur < 2 * kClients + 64) GTEST_SKIP() << "not enough file descriptors";

  net::io_context io;
  ServerOptions options;
  options.port = 0;
  options.limits.joinTimeout = std::chrono::seconds(60);  // joins queue up behind 1000 handshakes under ASan
  Server server(io, options);
  ASSERT_TRUE(server.start().ok());
  const long rssBefore = residentKiB();
  const auto started = std::chrono::steady_clock::now();

  struct Member {
    std::shared_ptr<WsClient> ws;
    std::int64_t id = 0;
    std::map<std::int64_t, int> nextSeq;  // per sender: the sequence number expected next
    int received = 0;
    int outOfOrder = 0;
  };
  std::vector<Member> members(kClients);
  std::vector<std::string> lobbyNames(kLobbies);
  int joined = 0;

  auto attach = [&](int i) {
    Member& m = members[i];
    m.ws = std::make_shared<WsClient>(io);
    m.ws->onMessage = [&, i](const Message& msg) {
      Member& self = members[i];
      if (msg.type == T::Id) self.id = msg.id;
      if (msg.type == T::Join) {
        ++joined;
        if (i % kLobbySize == 0) lobbyNames[i / kLobbySize] = msg.data;
      }
      if (msg.type == T::Candidate) {
        ++self.received;
        int& expect = self.nextSeq[msg.id];
        if (msg.data != "\n0\n0\ncandidate:" + std::to_string(expect)) ++self.outOfOrder;
        ++expect;
      }
    };
  };
  // Hosts first (they create the lobbies), then everyone else joins.
  for (int l = 0; l < kLobbies; ++l) {
    const int i = l * kLobbySize;
    attach(i);
    members[i].ws->connect(server.port(), [&, i] { members[i].ws->send({T::Join, 0, ""}); });
  }
  ASSERT_TRUE(runUntil(io, [&] { return joined == kLobbies; }, std::chrono::seconds(60)));
  for (int i = 0; i < kClients; ++i) {
    if (i % kLobbySize == 0) continue;
    attach(i);
    members[i].ws->connect(server.port(), [&, i] { members[i].ws->send({T::Join, 0, lobbyNames[i / kLobbySize]}); });
  }
  ASSERT_TRUE(runUntil(io, [&] { return joined == kClients; }, std::chrono::seconds(120)))
      << joined << " of " << kClients << " joined";
  EXPECT_EQ(server.lobbies().peerCount(), static_cast<std::size_t>(kClients));
  EXPECT_EQ(server.lobbies().lobbyCount(), static_cast<std::size_t>(kLobbies));

  for (int round = 0; round < kRounds; ++round)
    for (int i = 0; i < kClients; ++i) {
      const int base = i / kLobbySize * kLobbySize;
      for (int j = base; j < base + kLobbySize; ++j)
        if (j != i) members[i].ws->send({T::Candidate, members[j].id, "\n0\n0\ncandidate:" + std::to_string(round)});
    }
  constexpr int kPerMember = (kLobbySize - 1) * kRounds;
  auto allReceived = [&] {
    for (const auto& m : members)
      if (m.received < kPerMember) return false;
    return true;
  };
  EXPECT_TRUE(runUntil(io, allReceived, std::chrono::seconds(120)));
  int total = 0, disorder = 0, closedCount = 0;
  for (const auto& m : members) {
    total += m.received;
    disorder += m.outOfOrder;
    closedCount += m.ws->closed;
  }
  EXPECT_EQ(total, kClients * kPerMember);
  EXPECT_EQ(disorder, 0);
  EXPECT_EQ(closedCount, 0);

  // Both ends of every socket live in this process, so this bounds server and clients together.
  const long grownKiB = residentKiB() - rssBefore;
  RecordProperty("rss_growth_kib", static_cast<int>(grownKiB));
  // Measured with ASan (whose quarantine alone keeps up to 256 MiB of freed memory): +115 MiB for 200 clients,
  // +465 MiB for 1000, i.e. about 230 KiB per client pair; far less without ASan.
  EXPECT_LT(grownKiB, 256L * 1024 + kClients * 512L) << "resident memory grew by " << grownKiB << " KiB";
  std::printf("%d clients, %d relayed messages in %.1f s, RSS +%ld KiB\n", kClients, total,
              std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count(), grownKiB);

  for (auto& m : members) m.ws->close();
  server.stop();
  EXPECT_TRUE(runUntil(io, [&] { return server.lobbies().peerCount() == 0; }, std::chrono::seconds(60)));
}

}  // namespace
}  // namespace rtcpeer::signaling::test
