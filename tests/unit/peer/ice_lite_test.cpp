// Configuration::iceLite over real loopback sockets: a lite PeerConnection (a=ice-lite, host candidates only, no
// checks of its own) connects with a full one whichever side offers, the full side taking the controlling role
// (RFC 8445 6.1.1); two lite peers are refused with a reason.
#include <gtest/gtest.h>

#include "unit/peer/harness.hpp"

namespace rtcpeer {
namespace {

Configuration liteConfig() {
  Configuration c = test::loopbackConfig();
  c.iceLite = true;
  c.iceServers = {{{"stun:127.0.0.1:9"}, "", ""}};  // ignored: a lite peer gathers host candidates only
  return c;
}

// Connects with `a` offering, then checks what each side signalled and that data flows both ways.
void connectAndExchange(test::PeerPair& p, bool aIsLite) {
  std::string offer, answer;
  std::vector<std::string> liteCandidates;
  p.a.onSessionDescriptionCreated([&](const std::string& type, const std::string& sdp) {
    offer = sdp;
    p.check(p.a.setLocalDescription(type, sdp), p.a, "setLocalDescription");
    p.check(p.b.setRemoteDescription(type, sdp), p.b, "setRemoteDescription");
  });
  p.b.onSessionDescriptionCreated([&](const std::string& type, const std::string& sdp) {
    answer = sdp;
    p.check(p.b.setLocalDescription(type, sdp), p.b, "setLocalDescription");
    p.check(p.a.setRemoteDescription(type, sdp), p.a, "setRemoteDescription");
  });
  PeerConnection& lite = aIsLite ? p.a : p.b;
  PeerConnection& full = aIsLite ? p.b : p.a;
  lite.onIceCandidateCreated([&](const std::string& mid, int index, const std::string& line) {
    if (!line.empty()) liteCandidates.push_back(line);
    p.check(full.addIceCandidate(mid, index, line), full, "addIceCandidate");
  });
  auto channel = p.a.createDataChannel("lite");
  ASSERT_NE(channel, nullptr);
  ASSERT_TRUE(p.connect()) << p.a.lastError() << " / " << p.b.lastError();
  ASSERT_TRUE(p.errors.empty()) << p.errors.front();
  const std::string& liteSdp = aIsLite ? offer : answer;
  const std::string& fullSdp = aIsLite ? answer : offer;
  EXPECT_NE(liteSdp.find("a=ice-lite\r\n"), std::string::npos) << liteSdp;
  EXPECT_EQ(fullSdp.find("a=ice-lite"), std::string::npos) << fullSdp;
  ASSERT_FALSE(liteCandidates.empty());
  for (const auto& line : liteCandidates) EXPECT_NE(line.find(" typ host"), std::string::npos) << line;

  ASSERT_TRUE(p.runUntil([&] { return !p.receivedByB.empty() && channel->readyState() == ReadyState::Open; }));
  const std::uint8_t ping[] = {'p', 'i', 'n', 'g'};
  ASSERT_EQ(channel->putPacket(ping), Error::Ok);
  ASSERT_TRUE(p.runUntil([&] { return p.receivedByB[0]->availablePacketCount() == 1; }));
  ASSERT_EQ(p.receivedByB[0]->putPacket(ping), Error::Ok);
  ASSERT_TRUE(p.runUntil([&] { return channel->availablePacketCount() == 1; }));
  // Only the full side checked; the lite side answered.
  EXPECT_EQ(lite.stats().iceChecksSent, 0u);
  EXPECT_GT(lite.stats().iceChecksReceived, 0u);
  EXPECT_GT(full.stats().iceChecksSent, 0u);
}

TEST(IceLite, FullOffererLiteAnswerer) {
  test::PeerPair p(test::loopbackConfig(), liteConfig());
  connectAndExchange(p, false);
}

TEST(IceLite, LiteOffererFullAnswerer) {
  // RFC 8445 6.1.1: the full answerer takes the controlling role because the offer says a=ice-lite (were it
  // controlled, the lite side's 487 answers would still hand it the role; Agent tests cover that fallback).
  test::PeerPair p(liteConfig(), test::loopbackConfig());
  connectAndExchange(p, true);
}

TEST(IceLite, LiteOffererNominatedBeforeItHasTheAnswer) {
  // The full answerer checks and nominates as soon as it has the offer; the lite offerer answers and selects the
  // pair before the answer (and the DTLS parameters in it) reaches it. DTLS must still start once it does.
  test::PeerPair p(liteConfig(), test::loopbackConfig());
  std::string answer;
  p.b.onSessionDescriptionCreated([&](const std::string& type, const std::string& sdp) {
    answer = sdp;
    p.check(p.b.setLocalDescription(type, sdp), p.b, "setLocalDescription");
  });
  // The full side's trickled candidates would need the answer first; the lite side learns its address from the
  // checks (peer-reflexive) anyway.
  p.b.onIceCandidateCreated([](const std::string&, int, const std::string&) {});
  auto channel = p.a.createDataChannel("early");
  ASSERT_NE(channel, nullptr);
  ASSERT_EQ(p.a.createOffer(), Error::Ok);
  ASSERT_TRUE(p.runUntil([&] { return !answer.empty() && p.a.stats().hasSelectedPair; }));
  ASSERT_EQ(p.a.setRemoteDescription("answer", answer), Error::Ok) << p.a.lastError();
  ASSERT_TRUE(p.runUntil([&] { return channel->readyState() == ReadyState::Open && !p.receivedByB.empty(); }));
  EXPECT_TRUE(p.errors.empty()) << p.errors.front();
}

TEST(IceLite, TwoLitePeersAreRefused) {
  test::PeerPair p(liteConfig(), liteConfig());
  std::string offer;
  p.a.onSessionDescriptionCreated([&](const std::string&, const std::string& sdp) { offer = sdp; });
  auto channel = p.a.createDataChannel("x");
  ASSERT_NE(channel, nullptr);
  ASSERT_EQ(p.a.createOffer(), Error::Ok) << p.a.lastError();
  ASSERT_TRUE(p.runUntil([&] { return !offer.empty(); }));
  EXPECT_EQ(p.b.setRemoteDescription("offer", offer), Error::InvalidParameter);
  EXPECT_NE(p.b.lastError().find("both peers are ICE lite"), std::string::npos) << p.b.lastError();
}

TEST(IceLite, JsonKeyAndRelayOnlyConflict) {
  Configuration c;
  std::string why;
  ASSERT_EQ(Configuration::fromJson(R"({"iceLite":true})", c, &why), Error::Ok) << why;
  EXPECT_TRUE(c.iceLite);
  EXPECT_EQ(Configuration::fromJson(R"({"iceLite":"yes"})", c, &why), Error::InvalidParameter);
  EXPECT_NE(why.find("iceLite"), std::string::npos) << why;
  Configuration both = liteConfig();
  both.relayOnly = true;
  PeerConnection pc;
  EXPECT_EQ(pc.initialize(both), Error::InvalidParameter);
  EXPECT_NE(pc.lastError().find("iceLite"), std::string::npos) << pc.lastError();
}

}  // namespace
}  // namespace rtcpeer
