// Several `rtcpeer serve --redis` processes in front of one real redis-server (both started here, on loopback, in
// the test's own network namespace): the protocol's conformance with a lobby's clients spread over the servers
// (both protocols), peer ids unique across servers, a SIGKILLed server's clients leaving within the stated time,
// Redis unreachable or restarting, hostile Redis input, and (the "slow" case) 1,000 clients over 3 servers.
#include <gtest/gtest.h>
#include <sys/resource.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <set>

#include "process.hpp"
#include "signaling/redis_wire.hpp"
#include "ws_client.hpp"

#ifndef RTCPEER_CLI_PATH
#error "RTCPEER_CLI_PATH: the rtcpeer binary"
#endif

namespace rtcpeer::signaling::test {
namespace {

using T = MessageType;
using namespace std::chrono_literals;

// The heartbeat TTL the servers run with here, and the time the docs state for a dead server's clients to leave
// (ttl + ttl/3 + a Redis round trip), plus scheduling slack for ASan on a loaded 2-core machine.
constexpr auto kTtl = 1000ms;
constexpr auto kStatedLeave = kTtl + kTtl / 3;
constexpr auto kLeaveBound = kStatedLeave + 1000ms;
constexpr auto kHang = 120s;  // only guards against a hang; every wait is for an event

std::uint16_t freePort(net::io_context& io) {
  tcp::acceptor a(io, tcp::endpoint(net::ip::make_address("127.0.0.1"), 0));
  return a.local_endpoint().port();
}

bool haveRedisServer() { return std::system("command -v redis-server >/dev/null 2>&1") == 0; }

// One command over RESP with a blocking socket (the test's own Redis client, independent of the server's).
std::string redisCommand(net::io_context& io, std::uint16_t port, const std::vector<std::string>& args) {
  tcp::socket s(io);
  s.connect(tcp::endpoint(net::ip::make_address("127.0.0.1"), port));
  std::string req = "*" + std::to_string(args.size()) + "\r\n";
  for (const auto& a : args) req += "$" + std::to_string(a.size()) + "\r\n" + a + "\r\n";
  net::write(s, net::buffer(req));
  std::string reply;
  net::read_until(s, net::dynamic_buffer(reply), "\r\n");
  return reply.substr(0, reply.find("\r\n"));
}

struct RedisCluster : ::testing::Test {
  net::io_context io;
  std::unique_ptr<ChildProcess> redis;
  std::uint16_t redisPort = 0;
  std::vector<std::unique_ptr<ChildProcess>> servers;
  std::vector<std::uint16_t> ports;
  std::vector<std::string> ids;

  void SetUp() override {
    if (!haveRedisServer()) GTEST_SKIP() << "redis-server is not installed (Debian: redis-server)";
    redisPort = freePort(io);
    startRedis();
  }
  void TearDown() override {
    servers.clear();
    redis.reset();
  }
  void startRedis() {
    redis = std::make_unique<ChildProcess>(io, std::vector<std::string>{
        "redis-server", "--port", std::to_string(redisPort), "--bind", "127.0.0.1", "--save", "", "--appendonly",
        "no"});
    ASSERT_TRUE(redis->started());
    ASSERT_TRUE(until([&] { return redis->printed("Ready to accept connections") || redis->eof(); }));
    ASSERT_TRUE(redis->printed("Ready to accept connections")) << redis->output();
  }
  void stopRedis() {
    redis->kill(SIGTERM);
    redis->wait();
  }
  std::string url(const std::string& host = "127.0.0.1") const {
    return "redis://" + host + ":" + std::to_string(redisPort);
  }
  /// Starts `rtcpeer serve --redis` and waits for its address.
  std::size_t startServer(const std::string& redisUrl = {}, std::vector<std::string> extra = {}) {
    std::vector<std::string> argv{RTCPEER_CLI_PATH, "serve", "--port", "0", "--redis",
                                  redisUrl.empty() ? url() : redisUrl, "--redis-ttl",
                                  std::to_string(kTtl.count() / 1000.0)};
    argv.insert(argv.end(), extra.begin(), extra.end());
    servers.push_back(std::make_unique<ChildProcess>(io, argv));
    auto& p = *servers.back();
    EXPECT_TRUE(until([&] { return p.printed("as server ") || p.eof(); })) << p.output();
    const auto& out = p.output();
    const auto at = out.find("ws://127.0.0.1:");
    const auto idAt = out.find("as server ");
    EXPECT_NE(idAt, std::string::npos) << out;
    ports.push_back(at == std::string::npos ? 0 : static_cast<std::uint16_t>(std::atoi(out.c_str() + at + 15)));
    ids.push_back(idAt == std::string::npos ? "" : out.substr(idAt + 10, kServerIdLength));
    return servers.size() - 1;
  }
  bool until(const std::function<bool()>& done, std::chrono::milliseconds limit = kHang) {
    return runUntil(io, done, limit);
  }
  std::shared_ptr<WsClient> client(std::size_t server) {
    auto c = std::make_shared<WsClient>(io);
    c->connect(ports.at(server));
    EXPECT_TRUE(until([&] { return c->open || c->closed; }));
    return c;
  }
  bool waitFor(const std::shared_ptr<WsClient>& c, std::size_t n) {
    return until([&] { return c->received.size() >= n || c->closed; }) && c->received.size() >= n;
  }
  bool waitClosed(const std::shared_ptr<WsClient>& c, std::chrono::milliseconds limit = kHang) {
    return until([&] { return c->closed; }, limit);
  }
  /// Creates a lobby (mesh unless `clientServer`) from a client of `server`; returns the host and the name.
  std::pair<std::shared_ptr<WsClient>, std::string> createLobby(std::size_t server, bool clientServer = false) {
    auto host = client(server);
    host->send({T::Join, clientServer ? 1 : 0, ""});
    EXPECT_TRUE(waitFor(host, 2));
    if (host->received.size() < 2) return {host, ""};
    EXPECT_EQ(host->received[0].type, T::Id);
    EXPECT_EQ(host->received[0].id, 1);
    const std::string name = host->received[1].data;
    host->received.clear();
    return {host, name};
  }
  /// Joins `lobby` from a client of `server`: its ID and the PEER_CONNECTs up to JOIN; returns the client and id.
  std::pair<std::shared_ptr<WsClient>, std::int64_t> join(std::size_t server, const std::string& lobby,
                                                          std::size_t expectConnects) {
    auto c = client(server);
    c->send({T::Join, 0, lobby});
    EXPECT_TRUE(waitFor(c, 2 + expectConnects)) << c->closeReason;
    if (c->received.size() < 2 + expectConnects) return {c, 0};
    EXPECT_EQ(c->received[0].type, T::Id);
    for (std::size_t i = 0; i < expectConnects; ++i) EXPECT_EQ(c->received[1 + i].type, T::PeerConnect);
    EXPECT_EQ(c->received[1 + expectConnects].type, T::Join);
    EXPECT_EQ(c->received[1 + expectConnects].data, lobby);
    const auto id = c->received[0].id;
    c->received.clear();
    return {c, id};
  }
  /// The next message `c` gets must be `type` from `id` with `data`.
  void expectNext(const std::shared_ptr<WsClient>& c, T type, std::int64_t id, const std::string& data = {}) {
    ASSERT_TRUE(waitFor(c, 1)) << "closed: " << c->closeCode << " " << c->closeReason;
    EXPECT_EQ(c->received[0].type, type);
    EXPECT_EQ(c->received[0].id, id);
    EXPECT_EQ(c->received[0].data, data);
    c->received.pop_front();
  }
  void expectClosed(const std::shared_ptr<WsClient>& c, int code, const std::string& reason) {
    ASSERT_TRUE(waitClosed(c));
    EXPECT_EQ(c->closeCode, code);
    EXPECT_EQ(c->closeReason, reason);
  }
};

// The conformance cases with the members of each lobby on different servers: 2 and 3 servers.
struct RedisConformance : RedisCluster, ::testing::WithParamInterface<int> {
  void SetUp() override {
    RedisCluster::SetUp();
    if (IsSkipped()) return;
    // One server reaches Redis by name: resolved without blocking (c-ares via /etc/hosts).
    for (int i = 0; i < GetParam(); ++i) startServer(i == 1 ? url("localhost") : std::string());
  }
  std::size_t on(std::size_t i) const { return i % servers.size(); }
};

TEST_P(RedisConformance, MeshLobbyJoinRelayAndLeaveAcrossServers) {
  auto [host, lobby] = createLobby(on(0));
  ASSERT_FALSE(lobby.empty());
  auto [a, aId] = join(on(1), lobby, 1);
  expectNext(host, T::PeerConnect, aId);
  auto [b, bId] = join(on(2), lobby, 2);
  EXPECT_NE(aId, bId);
  EXPECT_GE(aId, 2);
  expectNext(host, T::PeerConnect, bId);
  expectNext(a, T::PeerConnect, bId);

  // Offers, answers and candidates between every pair, whichever servers they are on.
  a->send({T::Offer, 1, "v=0 offer from a"});
  expectNext(host, T::Offer, aId, "v=0 offer from a");
  host->send({T::Answer, aId, "v=0 answer to a"});
  expectNext(a, T::Answer, 1, "v=0 answer to a");
  const std::string cand = encodeCandidate("0", 0, "candidate:1 1 udp 2122260223 127.0.0.1 50000 typ host");
  b->send({T::Candidate, aId, cand});
  expectNext(a, T::Candidate, bId, cand);
  a->send({T::Offer, bId, "v=0 offer a->b"});
  expectNext(b, T::Offer, aId, "v=0 offer a->b");
  host->send({T::Candidate, bId, cand});
  expectNext(b, T::Candidate, 1, cand);

  // A member leaving: PEER_DISCONNECT on every server.
  a->close();
  expectNext(host, T::PeerDisconnect, aId);
  expectNext(b, T::PeerDisconnect, aId);

  // Bad input from a member on another server closes it, with the lone server's code and reason.
  b->send({T::Offer, 424242, "x"});
  expectClosed(b, kCloseProtocolError, "Invalid destination");
  expectNext(host, T::PeerDisconnect, bId);
  auto [c, cId] = join(on(1), lobby, 1);
  expectNext(host, T::PeerConnect, cId);
  c->send({T::Join, 0, lobby});
  expectClosed(c, kCloseProtocolError, "Already in a lobby");
  expectNext(host, T::PeerDisconnect, cId);
  auto [d, dId] = join(on(1), lobby, 1);
  expectNext(host, T::PeerConnect, dId);
  d->sendText(serialize({T::Offer, 1, "x"}), true);
  expectClosed(d, kCloseProtocolError, "Invalid transfer mode, must be text");
  expectNext(host, T::PeerDisconnect, dId);

  // No such lobby anywhere.
  auto lost = client(on(1));
  lost->send({T::Join, 0, "NoSuchLobby0000x"});
  expectClosed(lost, kCloseProtocolError, "Lobby does not exists");

  // The host leaving ends the lobby for the members on the other servers.
  auto [e, eId] = join(on(1), lobby, 1);
  expectNext(host, T::PeerConnect, eId);
  host->close();
  expectClosed(e, kCloseProtocolError, "Room host has disconnected");
  auto late = client(on(1));
  late->send({T::Join, 0, lobby});
  expectClosed(late, kCloseProtocolError, "Lobby does not exists");
}

TEST_P(RedisConformance, ClientServerLobbyAndSealAcrossServers) {
  auto [host, lobby] = createLobby(on(0), true);
  ASSERT_FALSE(lobby.empty());
  // Client/server: members see the host only.
  auto [a, aId] = join(on(1), lobby, 1);
  expectNext(host, T::PeerConnect, aId);
  auto [b, bId] = join(on(2), lobby, 1);
  expectNext(host, T::PeerConnect, bId);
  EXPECT_TRUE(a->received.empty());
  a->send({T::Offer, 1, "to host"});
  expectNext(host, T::Offer, aId, "to host");
  a->send({T::Offer, bId, "to b"});
  expectClosed(a, kCloseProtocolError, "Invalid destination");
  expectNext(host, T::PeerDisconnect, aId);

  // Only the host seals; SEAL reaches every member; nobody joins after.
  b->send({T::Seal, 0, ""});
  expectClosed(b, kCloseProtocolError, "Only host can seal the lobby");
  expectNext(host, T::PeerDisconnect, bId);
  auto [c, cId] = join(on(1), lobby, 1);
  expectNext(host, T::PeerConnect, cId);
  host->send({T::Seal, 0, ""});
  expectNext(host, T::Seal, 0);
  expectNext(c, T::Seal, 0);
  auto late = client(on(2));
  late->send({T::Join, 0, lobby});
  expectClosed(late, kCloseProtocolError, "Lobby is sealed");
  // After a seal the host's end closes the members normally.
  host->close();
  expectClosed(c, kCloseNormal, "Seal complete");
}

TEST_P(RedisConformance, LineProtocolClientsAcrossServers) {
  // A 4.x JSON host with a 3.x line-protocol member on another server, and the other way round.
  auto [host, lobby] = createLobby(on(0));
  ASSERT_FALSE(lobby.empty());
  auto old = client(on(1));
  old->sendText("J: " + lobby + "\n");
  ASSERT_TRUE(until([&] { return old->receivedRaw.size() >= 3 || old->closed; }));
  ASSERT_EQ(old->receivedRaw.size(), 3u) << old->closeReason;
  ASSERT_EQ(old->receivedRaw[0].substr(0, 3), "I: ");
  const std::int64_t oldId = std::atoll(old->receivedRaw[0].c_str() + 3);
  EXPECT_EQ(old->receivedRaw[1], "N: 1\n");
  EXPECT_EQ(old->receivedRaw[2], "J: " + lobby + "\n");
  old->receivedRaw.clear();
  expectNext(host, T::PeerConnect, oldId);
  old->sendText("O: 1\nv=0 line offer");
  expectNext(host, T::Offer, oldId, "v=0 line offer");
  host->send({T::Answer, oldId, "v=0 json answer"});
  ASSERT_TRUE(until([&] { return !old->receivedRaw.empty() || old->closed; }));
  EXPECT_EQ(old->receivedRaw.front(), "A: 1\nv=0 json answer");
  old->sendText("C: 1\n0\n0\ncandidate:1 1 udp 1 127.0.0.1 9 typ host");
  expectNext(host, T::Candidate, oldId, "\n0\n0\ncandidate:1 1 udp 1 127.0.0.1 9 typ host");

  auto oldHost = client(on(1));
  oldHost->sendText("J: \n");
  ASSERT_TRUE(until([&] { return oldHost->receivedRaw.size() >= 2 || oldHost->closed; }));
  ASSERT_EQ(oldHost->receivedRaw.size(), 2u);
  EXPECT_EQ(oldHost->receivedRaw[0], "I: 1\n");
  const std::string lineLobby = oldHost->receivedRaw[1].substr(3, oldHost->receivedRaw[1].size() - 4);
  oldHost->receivedRaw.clear();
  auto [j, jId] = join(on(2), lineLobby, 1);
  ASSERT_TRUE(until([&] { return !oldHost->receivedRaw.empty() || oldHost->closed; }));
  EXPECT_EQ(oldHost->receivedRaw.front(), "N: " + std::to_string(jId) + "\n");
}

INSTANTIATE_TEST_SUITE_P(Servers, RedisConformance, ::testing::Values(2, 3),
                         [](const auto& p) { return std::to_string(p.param) + "servers"; });

TEST_F(RedisCluster, KilledServersClientsLeaveWithinTheStatedTime) {
  for (int i = 0; i < 3; ++i) startServer();
  // Lobby 1 homed on server 0 with a member on server 1 (to be killed) and one on server 2; lobby 2 homed on
  // server 1 with members on servers 0 and 2.
  auto [host1, lobby1] = createLobby(0);
  auto [a, aId] = join(1, lobby1, 1);
  expectNext(host1, T::PeerConnect, aId);
  auto [b, bId] = join(2, lobby1, 2);
  expectNext(host1, T::PeerConnect, bId);
  expectNext(a, T::PeerConnect, bId);
  auto [host2, lobby2] = createLobby(1);
  auto [c, cId] = join(0, lobby2, 1);
  auto [d, dId] = join(2, lobby2, 2);

  const auto killed = std::chrono::steady_clock::now();
  servers[1]->kill(SIGKILL);
  EXPECT_TRUE(until([&] { return host1->received.size() >= 1 && b->received.size() >= 1 && c->closed && d->closed; },
                    kLeaveBound))
      << "not all left within " << kLeaveBound.count() << " ms";
  const auto took = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - killed);
  std::printf("a SIGKILLed server's clients left the other servers' lobbies after %lld ms (stated: %lld ms)\n",
              static_cast<long long>(took.count()), static_cast<long long>(kStatedLeave.count()));
  expectNext(host1, T::PeerDisconnect, aId);
  expectNext(b, T::PeerDisconnect, aId);
  expectClosed(c, kCloseProtocolError, "Room host has disconnected");
  expectClosed(d, kCloseProtocolError, "Room host has disconnected");
  // The survivors still relay.
  b->send({T::Offer, 1, "still here"});
  expectNext(host1, T::Offer, bId, "still here");
}

TEST_F(RedisCluster, UnreachableRedisOrBadUrlIsAClearError) {
  const auto nobody = freePort(io);
  ChildProcess p(io, {RTCPEER_CLI_PATH, "serve", "--port", "0", "--redis", "redis://127.0.0.1:" + std::to_string(nobody)});
  ASSERT_TRUE(until([&] { return p.eof(); }));
  EXPECT_EQ(p.wait(), 1);
  EXPECT_TRUE(p.printed("rtcpeer: error: Redis 127.0.0.1:" + std::to_string(nobody) + ": cannot connect")) << p.output();
  ChildProcess bad(io, {RTCPEER_CLI_PATH, "serve", "--port", "0", "--redis", "http://127.0.0.1/"});
  ASSERT_TRUE(until([&] { return bad.eof(); }));
  EXPECT_EQ(bad.wait(), 1);
  EXPECT_TRUE(bad.printed("rtcpeer: error: the Redis URL must start with redis://")) << bad.output();
  ChildProcess badDb(io, {RTCPEER_CLI_PATH, "serve", "--port", "0", "--redis", url() + "/99"});
  ASSERT_TRUE(until([&] { return badDb.eof(); }));
  EXPECT_EQ(badDb.wait(), 1);
  EXPECT_TRUE(badDb.printed("database must be a number from 0 to 15")) << badDb.output();
}

TEST_F(RedisCluster, RedisRestartEndsCrossServerLinksThenServersRejoin) {
  startServer();
  startServer();
  auto [host, lobby] = createLobby(0);
  auto [a, aId] = join(1, lobby, 1);
  expectNext(host, T::PeerConnect, aId);

  stopRedis();
  // Relay through Redis may have lost messages: cross-server members are closed, their peers see them leave.
  expectClosed(a, kCloseProtocolError, "Signaling backend unavailable");
  expectNext(host, T::PeerDisconnect, aId);
  ASSERT_TRUE(until([&] { return servers[0]->printed("connection lost") && servers[1]->printed("connection lost"); }));
  // Each server goes on alone: a lobby made now works locally, and a remote join is refused clearly.
  auto [host2, lobby2] = createLobby(1);
  auto [b, bId] = join(1, lobby2, 1);
  expectNext(host2, T::PeerConnect, bId);
  auto refused = client(0);
  refused->send({T::Join, 0, lobby2});
  expectClosed(refused, kCloseProtocolError, "Signaling backend unavailable");

  startRedis();
  ASSERT_TRUE(until([&] { return servers[0]->printed("reconnected") && servers[1]->printed("reconnected"); }));
  // The lobby made during the outage was registered again: a client of the other server joins it.
  auto [c, cId] = join(0, lobby2, 2);
  expectNext(host2, T::PeerConnect, cId);
  c->send({T::Offer, 1, "after the restart"});
  expectNext(host2, T::Offer, cId, "after the restart");
  EXPECT_FALSE(servers[0]->eof());
  EXPECT_FALSE(servers[1]->eof());
}

TEST_F(RedisCluster, HostileRedisInputIsDroppedWithALogLine) {
  startServer();
  startServer();
  // Garbage on a server's relay channel, and a forged message from an unknown server.
  const std::string channel = "rtcpeer:0:relay:" + ids[0];
  EXPECT_EQ(redisCommand(io, redisPort, {"PUBLISH", channel, "garbage"}), ":1");
  EXPECT_EQ(redisCommand(io, redisPort, {"PUBLISH", channel, std::string(200000, 'x')}), ":1");
  EXPECT_EQ(redisCommand(io, redisPort, {"PUBLISH", channel, "S 0123456789abcdef 1 0\n{\"type\":1}"}), ":1");
  ASSERT_TRUE(until([&] { return servers[0]->printed("malformed relay message dropped (7 bytes)"); }));
  ASSERT_TRUE(until([&] { return servers[0]->printed("malformed relay message dropped (200000 bytes)"); }));
  // A directory entry that is not a server id: the lobby does not exist, and the server says why in its log.
  EXPECT_EQ(redisCommand(io, redisPort, {"SET", "rtcpeer:0:lobby:Forged", "not a server"}), "+OK");
  auto c = client(1);
  c->send({T::Join, 0, "Forged"});
  expectClosed(c, kCloseProtocolError, "Lobby does not exists");
  EXPECT_TRUE(until([&] { return servers[1]->printed("malformed lobby directory entry dropped"); }));
  // Both still serve lobbies across each other.
  auto [host, lobby] = createLobby(0);
  auto [a, aId] = join(1, lobby, 1);
  expectNext(host, T::PeerConnect, aId);
}

TEST_F(RedisCluster, ProxiedClientsCountAgainstThePeerLimit) {
  startServer();
  startServer({}, {"--max-peers", "2"});
  auto [host, lobby] = createLobby(0);
  auto [a, aId] = join(1, lobby, 1);
  expectNext(host, T::PeerConnect, aId);
  auto [b, bId] = join(1, lobby, 2);
  expectNext(host, T::PeerConnect, bId);
  auto c = client(1);
  c->send({T::Join, 0, lobby});
  expectClosed(c, kCloseProtocolError, "Too many peers");
  a->close();
  expectNext(host, T::PeerDisconnect, aId);
  auto [d, dId] = join(1, lobby, 2);
  expectNext(host, T::PeerConnect, dId);
}

// 1,000 clients over 3 servers: 200 lobbies of 5, every member on another server than its host; every offer,
// answer and candidate arrives, in order, from the right sender; every peer id is unique across the servers.
TEST_F(RedisCluster, ThousandClientsOverThreeServersLoseNoRelayMessage) {
  constexpr int kLobbies = 200, kMembers = 4, kCandidates = 4;
  rlimit files{};
  getrlimit(RLIMIT_NOFILE, &files);
  if (files.rlim_cur < 1400) {
    files.rlim_cur = std::min<rlim_t>(files.rlim_max, 1400);
    setrlimit(RLIMIT_NOFILE, &files);
  }
  if (files.rlim_cur < 1400) GTEST_SKIP() << "not enough file descriptors";
  for (int i = 0; i < 3; ++i) startServer({}, {"--join-timeout", "120"});
  const auto started = std::chrono::steady_clock::now();

  struct Lobby {
    std::shared_ptr<WsClient> host;
    std::string name;
    std::vector<std::shared_ptr<WsClient>> members;
    std::vector<std::int64_t> ids;
  };
  std::vector<Lobby> lobbies(kLobbies);
  int created = 0;
  for (int l = 0; l < kLobbies; ++l) {
    auto& lobby = lobbies[l];
    lobby.host = std::make_shared<WsClient>(io);
    auto host = lobby.host;
    host->onMessage = [&, l](const Message& m) {
      if (m.type == T::Join) {
        lobbies[l].name = m.data;
        ++created;
      }
    };
    host->connect(ports[l % 3], [host] { host->send({T::Join, 0, ""}); });
  }
  ASSERT_TRUE(until([&] { return created == kLobbies; }));

  // Members join (each on another server than its host), then each sends its offer and candidates to the host,
  // which answers with its own; every message is counted by its receiver.
  std::map<std::pair<int, std::int64_t>, std::vector<std::string>> toHost;  // (lobby, sender) -> data in order
  std::map<std::pair<int, int>, std::vector<std::string>> toMember;         // (lobby, member) -> data in order
  std::set<std::int64_t> allIds;
  int joined = 0, closed = 0;
  for (int l = 0; l < kLobbies; ++l) {
    auto& lobby = lobbies[l];
    lobby.ids.assign(kMembers, 0);
    lobby.host->onMessage = [&, l](const Message& m) {
      if (m.type == T::Offer || m.type == T::Candidate) {
        toHost[{l, m.id}].push_back(m.data);
        // The host answers each offer, then trickles its candidates.
        if (m.type == T::Offer) {
          lobbies[l].host->send({T::Answer, m.id, "answer " + std::to_string(m.id)});
          for (int k = 0; k < kCandidates; ++k)
            lobbies[l].host->send({T::Candidate, m.id, encodeCandidate("0", 0, "host cand " + std::to_string(k))});
        }
      }
    };
    for (int k = 0; k < kMembers; ++k) {
      auto member = std::make_shared<WsClient>(io);
      lobby.members.push_back(member);
      const std::string name = lobby.name;
      WsClient* self = member.get();  // not the shared_ptr: the client owns this handler
      member->onMessage = [&, l, k, self](const Message& m) {
        if (m.type == T::Id) {
          lobbies[l].ids[k] = m.id;
          allIds.insert(m.id);
        } else if (m.type == T::Join) {
          ++joined;
          self->send({T::Offer, 1, "offer " + std::to_string(lobbies[l].ids[k])});
          for (int c = 0; c < kCandidates; ++c)
            self->send({T::Candidate, 1, encodeCandidate("0", 0, "member cand " + std::to_string(c))});
        } else if (m.type == T::Answer || m.type == T::Candidate) {
          EXPECT_EQ(m.id, 1);
          toMember[{l, k}].push_back(m.data);
        }
      };
      member->connect(ports[(l + 1 + k % 2) % 3], [member, name] { member->send({T::Join, 0, name}); });
    }
  }
  const std::size_t expectedPerMember = 1 + kCandidates;
  auto done = [&] {
    if (joined < kLobbies * kMembers) return false;
    std::size_t atHost = 0, atMembers = 0;
    for (const auto& [key, v] : toHost) atHost += v.size();
    for (const auto& [key, v] : toMember) atMembers += v.size();
    return atHost == static_cast<std::size_t>(kLobbies * kMembers) * (1 + kCandidates) &&
           atMembers == static_cast<std::size_t>(kLobbies * kMembers) * expectedPerMember;
  };
  ASSERT_TRUE(until([&] {
    closed = 0;
    for (const auto& lobby : lobbies)
      for (const auto& m : lobby.members) closed += m->closed;
    return done() || closed > 0;
  }));
  EXPECT_EQ(closed, 0);
  EXPECT_EQ(allIds.size(), static_cast<std::size_t>(kLobbies * kMembers)) << "peer ids collided across servers";
  for (int l = 0; l < kLobbies; ++l) {
    for (int k = 0; k < kMembers; ++k) {
      const auto id = lobbies[l].ids[k];
      const auto& h = toHost[{l, id}];
      ASSERT_EQ(h.size(), 1u + kCandidates);
      EXPECT_EQ(h[0], "offer " + std::to_string(id));
      for (int c = 0; c < kCandidates; ++c)
        EXPECT_EQ(h[1 + c], encodeCandidate("0", 0, "member cand " + std::to_string(c)));
      const auto& m = toMember[{l, k}];
      ASSERT_EQ(m.size(), expectedPerMember);
      EXPECT_EQ(m[0], "answer " + std::to_string(id));
      for (int c = 0; c < kCandidates; ++c)
        EXPECT_EQ(m[1 + c], encodeCandidate("0", 0, "host cand " + std::to_string(c)));
    }
  }
  const auto took = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - started);
  std::printf("1000 clients over 3 servers: %d joins and %d relayed messages in %lld ms\n", kLobbies * kMembers,
              kLobbies * kMembers * 2 * (1 + kCandidates), static_cast<long long>(took.count()));
}

}  // namespace
}  // namespace rtcpeer::signaling::test
