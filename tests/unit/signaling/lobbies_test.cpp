// Conformance of the server core with the demo protocol (godot_api.md §9), on a virtual clock.
#include "signaling/lobbies.hpp"

#include <gtest/gtest.h>

#include <map>
#include <set>
#include <vector>

namespace rtcpeer::signaling {
namespace {

using T = MessageType;

struct Closed {
  int code = 0;
  std::string reason;
};

struct Harness {
  SeededRandom random{7};
  Lobbies core;
  Timestamp now = fromMicros(5'000'000);
  std::map<ConnId, std::vector<Message>> inbox;
  std::map<ConnId, Closed> closed;

  explicit Harness(Limits limits = {}) : core(random, limits) {}

  void drain() {
    while (auto a = core.pollAction()) {
      EXPECT_FALSE(closed.count(a->conn)) << "action for connection " << a->conn << " after its close";
      if (a->kind == Action::Kind::Send) {
        auto m = parseMessage(a->text);
        ASSERT_TRUE(m.ok()) << a->text;
        inbox[a->conn].push_back(*m);
      } else {
        closed[a->conn] = {a->code, a->text};
      }
    }
  }
  void open(ConnId c) {
    core.open(c, now);
    drain();
  }
  void raw(ConnId c, std::string_view text) {
    core.text(c, text, now);
    drain();
  }
  void say(ConnId c, T type, std::int64_t id, std::string data = {}) { raw(c, serialize(Message{type, id, data})); }
  void advance(Duration d) {
    now += d;
    if (core.nextDeadline() <= now) core.handleTimeout(now);
    drain();
  }
  std::vector<Message> take(ConnId c) {
    auto v = std::move(inbox[c]);
    inbox[c].clear();
    return v;
  }
  /// Opens `c`, creates a lobby and returns its name.
  std::string create(ConnId c, bool mesh = true) {
    open(c);
    say(c, T::Join, mesh ? 0 : 1, "");
    auto msgs = take(c);
    EXPECT_EQ(msgs.size(), 2u);
    return msgs.size() == 2 ? msgs[1].data : "";
  }
  /// Opens `c`, joins `lobby` and returns the assigned id.
  std::int64_t join(ConnId c, const std::string& lobby) {
    open(c);
    say(c, T::Join, 0, lobby);
    const auto msgs = take(c);
    EXPECT_FALSE(msgs.empty());
    return msgs.empty() ? 0 : msgs[0].id;
  }
  void expectClosed(ConnId c, int code, const std::string& reason) {
    ASSERT_TRUE(closed.count(c)) << "connection " << c << " is still open";
    EXPECT_EQ(closed[c].code, code);
    EXPECT_EQ(closed[c].reason, reason);
  }
};

bool same(const Message& m, T type, std::int64_t id, const std::string& data = "") {
  return m.type == type && m.id == id && m.data == data;
}

TEST(SignalingLobbies, EmptyJoinCreatesALobbyWithTheCreatorAsHost) {
  Harness h;
  h.open(1);
  h.say(1, T::Join, 0, "");
  auto msgs = h.take(1);
  ASSERT_EQ(msgs.size(), 2u);
  EXPECT_TRUE(same(msgs[0], T::Id, 1, "true"));
  EXPECT_EQ(msgs[1].type, T::Join);
  EXPECT_EQ(msgs[1].id, 0);
  ASSERT_EQ(msgs[1].data.size(), 16u);
  for (char c : msgs[1].data) EXPECT_TRUE(std::isalnum(static_cast<unsigned char>(c)));
  EXPECT_EQ(h.core.lobbyCount(), 1u);
  const std::string first = msgs[1].data;

  h.open(2);
  h.say(2, T::Join, 1, "");  // non-zero id: client/server lobby, ID data is empty
  msgs = h.take(2);
  ASSERT_EQ(msgs.size(), 2u);
  EXPECT_TRUE(same(msgs[0], T::Id, 1, ""));
  EXPECT_NE(msgs[1].data, first);
  EXPECT_EQ(h.core.lobbyCount(), 2u);
}

TEST(SignalingLobbies, MeshJoinSequenceIsIdThenPeerConnectsThenJoin) {
  Harness h;
  const auto lobby = h.create(1);
  h.open(2);
  h.say(2, T::Join, 0, lobby);
  auto m2 = h.take(2);
  ASSERT_EQ(m2.size(), 3u);
  const auto id2 = m2[0].id;
  EXPECT_TRUE(same(m2[0], T::Id, id2, "true"));
  EXPECT_GE(id2, 2);
  EXPECT_TRUE(same(m2[1], T::PeerConnect, 1));
  EXPECT_TRUE(same(m2[2], T::Join, 0, lobby));
  auto m1 = h.take(1);
  ASSERT_EQ(m1.size(), 1u);
  EXPECT_TRUE(same(m1[0], T::PeerConnect, id2));

  h.open(3);
  h.say(3, T::Join, 0, lobby);
  auto m3 = h.take(3);
  ASSERT_EQ(m3.size(), 4u);
  const auto id3 = m3[0].id;
  EXPECT_NE(id3, id2);
  std::set<std::int64_t> connects{m3[1].id, m3[2].id};
  EXPECT_EQ(connects, (std::set<std::int64_t>{1, id2}));
  EXPECT_EQ(m3[1].type, T::PeerConnect);
  EXPECT_TRUE(same(m3[3], T::Join, 0, lobby));
  ASSERT_EQ(h.take(1).size(), 1u);
  auto m2b = h.take(2);
  ASSERT_EQ(m2b.size(), 1u);
  EXPECT_TRUE(same(m2b[0], T::PeerConnect, id3));
}

TEST(SignalingLobbies, ClientServerClientsSeeOnlyTheHost) {
  Harness h;
  const auto lobby = h.create(1, false);
  const auto a = h.join(2, lobby);
  h.take(1);
  h.open(3);
  h.say(3, T::Join, 1, lobby);
  auto m3 = h.take(3);
  ASSERT_EQ(m3.size(), 3u);
  EXPECT_TRUE(same(m3[0], T::Id, m3[0].id, ""));
  EXPECT_TRUE(same(m3[1], T::PeerConnect, 1));
  const auto b = m3[0].id;
  EXPECT_TRUE(h.take(2).empty()) << "a client learns nothing of another client";
  auto m1 = h.take(1);
  ASSERT_EQ(m1.size(), 1u);
  EXPECT_TRUE(same(m1[0], T::PeerConnect, b));

  // The host reaches both; clients reach only the host.
  h.say(1, T::Offer, a, "to a");
  ASSERT_EQ(h.inbox[2].size(), 1u);
  EXPECT_TRUE(same(h.take(2)[0], T::Offer, 1, "to a"));
  h.say(2, T::Answer, 1, "to host");
  EXPECT_TRUE(same(h.take(1)[0], T::Answer, a, "to host"));

  // Client ids are not addressable by other clients even when guessed.
  h.join(4, lobby);
  h.say(4, T::Offer, b, "to another client");
  h.expectClosed(4, 4000, "Invalid destination");
  EXPECT_TRUE(h.take(3).empty());
  h.take(1);

  // A client leaving is reported to the host only.
  h.core.closed(3, h.now);
  h.drain();
  auto left = h.take(1);
  ASSERT_EQ(left.size(), 1u);
  EXPECT_TRUE(same(left[0], T::PeerDisconnect, b));
  EXPECT_TRUE(h.take(2).empty());
}

TEST(SignalingLobbies, RelayCarriesTheSendersIdAndThePayloadUnchanged) {
  Harness h;
  const auto lobby = h.create(1);
  const auto a = h.join(2, lobby);
  const auto b = h.join(3, lobby);
  for (auto c : {1, 2, 3}) h.take(c);
  const std::string sdp = "v=0\r\ns=-\r\n";
  const std::string cand = "\n0\n0\ncandidate:1 1 UDP 1 127.0.0.1 9 typ host";
  h.say(2, T::Offer, b, sdp);
  h.say(3, T::Answer, a, sdp);
  h.say(2, T::Candidate, 1, cand);
  h.say(1, T::Candidate, b, cand);
  auto m3 = h.take(3);
  ASSERT_EQ(m3.size(), 2u);
  EXPECT_TRUE(same(m3[0], T::Offer, a, sdp));
  EXPECT_TRUE(same(m3[1], T::Candidate, 1, cand));
  auto m2 = h.take(2);
  ASSERT_EQ(m2.size(), 1u);
  EXPECT_TRUE(same(m2[0], T::Answer, b, sdp));
  auto m1 = h.take(1);
  ASSERT_EQ(m1.size(), 1u);
  EXPECT_TRUE(same(m1[0], T::Candidate, a, cand));
  EXPECT_TRUE(h.closed.empty());
}

TEST(SignalingLobbies, RelayOutsideTheLobbyClosesOnlyTheSender) {
  Harness h;
  const auto one = h.create(1);
  const auto a = h.join(2, one);
  const auto two = h.create(3);
  const auto b = h.join(4, two);
  h.say(2, T::Offer, b, "x");  // b exists, but in another lobby
  h.expectClosed(2, 4000, "Invalid destination");
  h.say(4, T::Offer, 999, "x");  // nobody
  h.expectClosed(4, 4000, "Invalid destination");
  h.open(5);
  h.say(5, T::Join, 0, one);
  const auto self = h.take(5)[0].id;
  h.say(5, T::Offer, self, "x");  // itself
  h.expectClosed(5, 4000, "Invalid destination");
  EXPECT_FALSE(h.closed.count(1));
  EXPECT_FALSE(h.closed.count(3));
  (void)a;
}

TEST(SignalingLobbies, JoinErrors) {
  Harness h;
  const auto lobby = h.create(1);
  h.open(2);
  h.say(2, T::Join, 0, "nosuchlobby");
  h.expectClosed(2, 4000, "Lobby does not exists");
  h.join(3, lobby);
  h.say(3, T::Join, 0, "");
  h.expectClosed(3, 4000, "Already in a lobby");
  h.open(4);
  h.say(4, T::Offer, 1, "x");
  h.expectClosed(4, 4000, "Invalid message when not in a lobby");
  for (T t : {T::Id, T::PeerConnect, T::PeerDisconnect}) {
    const ConnId c = 10 + static_cast<ConnId>(t);
    h.join(c, lobby);
    h.say(c, t, 1);
    h.expectClosed(c, 4000, "Invalid command");
  }
  h.join(20, lobby);
  h.raw(20, R"({"type":9,"id":0,"data":""})");
  h.expectClosed(20, 4000, "Invalid command");
  EXPECT_FALSE(h.closed.count(1));
}

TEST(SignalingLobbies, BadInputClosesThatSocketWith4000AndAReason) {
  Harness h;
  const auto lobby = h.create(1);
  const char* bad[] = {"hello", "[]", R"({"type":"4","id":1})", R"({"type":4,"id":1,"data":[]})", "{\"type\":4}"};
  ConnId c = 100;
  for (const char* text : bad) {
    h.join(c, lobby);
    h.raw(c, text);
    ASSERT_TRUE(h.closed.count(c)) << text;
    EXPECT_EQ(h.closed[c].code, 4000);
    EXPECT_EQ(h.closed[c].reason.rfind("Invalid message format", 0), 0u) << h.closed[c].reason;
    ++c;
  }
  h.join(c, lobby);
  h.core.binary(c, h.now);
  h.drain();
  h.expectClosed(c, 4000, "Invalid transfer mode, must be text");
  // Not joined yet: same treatment.
  h.open(200);
  h.raw(200, "garbage");
  EXPECT_EQ(h.closed[200].code, 4000);
  // The host and its lobby carry on; closed sockets' frames are ignored.
  EXPECT_FALSE(h.closed.count(1));
  h.raw(100, R"({"type":0,"id":0,"data":""})");
  EXPECT_EQ(h.core.lobbyCount(), 1u);
  const auto fresh = h.join(300, lobby);
  EXPECT_GE(fresh, 2);
}

TEST(SignalingLobbies, JoinTimeoutIsOneSecond) {
  Harness h;
  h.open(1);
  h.open(2);
  EXPECT_EQ(h.core.nextDeadline(), h.now + std::chrono::seconds(1));
  h.advance(std::chrono::milliseconds(500));
  h.say(2, T::Join, 0, "");
  h.advance(std::chrono::milliseconds(499));
  EXPECT_TRUE(h.closed.empty());
  h.advance(std::chrono::milliseconds(1));
  h.expectClosed(1, 4000, "Have not joined lobby yet");
  EXPECT_FALSE(h.closed.count(2));
  EXPECT_EQ(h.core.nextDeadline(), kNever);
  EXPECT_EQ(h.core.peerCount(), 1u);
}

TEST(SignalingLobbies, SealBroadcastsRefusesJoinsAndClosesEveryoneAfterTenSeconds) {
  Harness h;
  const auto lobby = h.create(1);
  const auto a = h.join(2, lobby);
  h.join(3, lobby);
  for (auto c : {1, 2, 3}) h.take(c);
  h.say(2, T::Seal, 0);
  h.expectClosed(2, 4000, "Only host can seal the lobby");
  h.take(1);
  h.take(3);
  h.say(1, T::Seal, 0);
  for (auto c : {1, 3}) {
    auto m = h.take(c);
    ASSERT_EQ(m.size(), 1u);
    EXPECT_TRUE(same(m[0], T::Seal, 0));
  }
  h.open(4);
  h.say(4, T::Join, 0, lobby);
  h.expectClosed(4, 4000, "Lobby is sealed");
  // Relay still works while sealed (late candidates), and nobody hears of a member leaving.
  h.join(5, "");  // unrelated lobby creation to keep the server busy
  h.say(1, T::Seal, 0);  // sealing twice is harmless
  EXPECT_TRUE(h.take(3).empty());
  h.advance(std::chrono::milliseconds(9999));
  EXPECT_FALSE(h.closed.count(1));
  EXPECT_FALSE(h.closed.count(3));
  h.advance(std::chrono::milliseconds(1));
  h.expectClosed(1, 1000, "Seal complete");
  h.expectClosed(3, 1000, "Seal complete");
  EXPECT_EQ(h.core.lobbyCount(), 1u) << "the sealed lobby is gone, the other one stays";
  (void)a;
}

TEST(SignalingLobbies, SealedLobbySendsNoDisconnectsAndHostLeavingClosesNormally) {
  Harness h;
  const auto lobby = h.create(1);
  h.join(2, lobby);
  h.join(3, lobby);
  h.say(1, T::Seal, 0);
  for (auto c : {1, 2, 3}) h.take(c);
  h.core.closed(2, h.now);
  h.drain();
  EXPECT_TRUE(h.take(1).empty());
  EXPECT_TRUE(h.take(3).empty());
  h.core.closed(1, h.now);
  h.drain();
  h.expectClosed(3, 1000, "Seal complete");
  EXPECT_EQ(h.core.lobbyCount(), 0u);
  EXPECT_EQ(h.core.nextDeadline(), kNever);
}

TEST(SignalingLobbies, HostLeavingClosesTheLobby) {
  Harness h;
  const auto lobby = h.create(1);
  h.join(2, lobby);
  h.join(3, lobby);
  h.core.closed(1, h.now);
  h.drain();
  h.expectClosed(2, 4000, "Room host has disconnected");
  h.expectClosed(3, 4000, "Room host has disconnected");
  EXPECT_EQ(h.core.lobbyCount(), 0u);
  EXPECT_EQ(h.core.peerCount(), 0u);
  h.open(4);
  h.say(4, T::Join, 0, lobby);
  h.expectClosed(4, 4000, "Lobby does not exists");
}

TEST(SignalingLobbies, MemberLeavingIsAnnouncedToTheMesh) {
  Harness h;
  const auto lobby = h.create(1);
  const auto a = h.join(2, lobby);
  h.join(3, lobby);
  for (auto c : {1, 2, 3}) h.take(c);
  h.core.closed(2, h.now);
  h.drain();
  for (auto c : {1, 3}) {
    auto m = h.take(c);
    ASSERT_EQ(m.size(), 1u);
    EXPECT_TRUE(same(m[0], T::PeerDisconnect, a));
  }
  EXPECT_EQ(h.core.peerCount(), 2u);
}

// Returns every value twice, so the id allocator must notice collisions.
class RepeatingRandom final : public Random {
 public:
  void fill(std::span<std::uint8_t> out) override {
    for (auto& b : out) b = static_cast<std::uint8_t>(counter_ / 2);
    ++counter_;
  }

 private:
  unsigned counter_ = 0;
};

TEST(SignalingLobbies, IdsAreUniqueAndNeverZeroOrOne) {
  RepeatingRandom random;
  Lobbies core(random);
  core.open(1, Timestamp{});
  core.text(1, R"({"type":0,"id":0,"data":""})", Timestamp{});
  std::string lobby;
  while (auto a = core.pollAction())
    if (auto m = parseMessage(a->text); m && m->type == T::Join) lobby = m->data;
  std::set<std::int64_t> ids;
  for (ConnId c = 2; c < 200; ++c) {
    core.open(c, Timestamp{});
    core.text(c, serialize(Message{T::Join, 0, lobby}), Timestamp{});
    const auto id = core.peerId(c);
    EXPECT_GE(id, 2);
    EXPECT_TRUE(ids.insert(id).second) << "duplicate id " << id;
    while (core.pollAction()) {
    }
  }
}

TEST(SignalingLobbies, LimitsOnLobbiesPeersMembersSizeAndRate) {
  Limits limits;
  limits.maxLobbies = 2;
  limits.maxPeers = 6;
  limits.maxLobbyMembers = 3;
  limits.maxMessageSize = 1000;
  limits.messagesPerSecond = 10;
  limits.messageBurst = 20;
  Harness h(limits);
  const auto lobby = h.create(1);
  h.create(2);
  h.open(3);
  h.say(3, T::Join, 0, "");
  h.expectClosed(3, 4000, "Too many lobbies");
  h.join(4, lobby);
  h.join(5, lobby);
  h.open(6);
  h.say(6, T::Join, 0, lobby);
  h.expectClosed(6, 4000, "Lobby is full");
  for (ConnId c = 7; c <= 9; ++c) h.open(c);  // 4 open + 7, 8 = 6, so 9 is one too many
  EXPECT_FALSE(h.closed.count(8));
  h.expectClosed(9, 4000, "Too many peers");
  h.core.tooLarge(9, h.now);  // already closed: ignored
  h.drain();

  h.say(4, T::Offer, 1, std::string(2000, 'x'));
  h.expectClosed(4, 4000, "Message too large");
  h.core.tooLarge(7, h.now);  // the shell's report of a message it stopped buffering at the limit
  h.drain();
  h.expectClosed(7, 4000, "Message too large");

  // Burst of 20 passes (the JOIN took one token), then the bucket is empty...
  for (int i = 0; i < 19; ++i) h.say(5, T::Candidate, 1, "\n0\n0\nc");
  EXPECT_FALSE(h.closed.count(5));
  h.advance(std::chrono::milliseconds(100));  // ...refills one token per 100 ms
  h.say(5, T::Candidate, 1, "\n0\n0\nc");
  EXPECT_FALSE(h.closed.count(5));
  h.say(5, T::Candidate, 1, "\n0\n0\nc");
  h.expectClosed(5, 4000, "Too many messages");
}

}  // namespace
}  // namespace rtcpeer::signaling
