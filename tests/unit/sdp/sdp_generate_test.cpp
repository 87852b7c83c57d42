#include <gtest/gtest.h>

#include "sdp/sdp.hpp"
#include "sdp_test_util.hpp"

namespace rtcpeer::sdp {
namespace {

LocalParams params() {
  LocalParams p;
  p.sessionId = 1234567890123;
  p.sessionVersion = 2;
  p.iceUfrag = "Ab3/";
  p.icePwd = "0123456789abcdefghij+/";
  p.fingerprint = {"sha-256", "AB:CD:EF"};
  return p;
}

TEST(SdpGenerate, OfferHasEverythingAndParsesBack) {
  LocalParams p = params();
  p.candidates = {"candidate:1 1 udp 2130706431 127.0.0.1 40000 typ host"};
  p.endOfCandidates = true;
  std::string offer = generateOffer(p);
  EXPECT_EQ(offer.rfind("v=0\r\n", 0), 0u);
  for (const char* line : {"a=group:BUNDLE 0\r\n", "m=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\n",
                           "a=mid:0\r\n", "a=ice-options:trickle\r\n", "a=fingerprint:sha-256 AB:CD:EF\r\n",
                           "a=setup:actpass\r\n", "a=sctp-port:5000\r\n", "a=max-message-size:262144\r\n",
                           "a=candidate:1 1 udp 2130706431 127.0.0.1 40000 typ host\r\n", "a=end-of-candidates\r\n",
                           "o=- 1234567890123 2 IN IP4 0.0.0.0\r\n"})
    EXPECT_NE(offer.find(line), std::string::npos) << line;
  // Every line ends in CRLF and there is no bare LF.
  for (std::size_t i = 0; i < offer.size(); ++i) {
    if (offer[i] == '\n') {
      ASSERT_TRUE(i > 0 && offer[i - 1] == '\r');
    }
  }

  auto parsed = parse(offer);
  ASSERT_TRUE(parsed.ok()) << parsed.reason();
  const auto& m = parsed->media.at(0);
  EXPECT_EQ(m.iceUfrag, p.iceUfrag);
  EXPECT_EQ(m.icePwd, p.icePwd);
  EXPECT_EQ(m.fingerprints.at(0), p.fingerprint);
  EXPECT_EQ(m.candidates, p.candidates);
  EXPECT_TRUE(m.endOfCandidates);
  EXPECT_EQ(parsed->sessionId, p.sessionId);
  EXPECT_TRUE(checkRemote(*parsed, true).ok());
}

TEST(SdpGenerate, OfferWithoutTrickleOrCandidates) {
  LocalParams p = params();
  p.trickle = false;
  std::string offer = generateOffer(p);
  EXPECT_EQ(offer.find("ice-options"), std::string::npos);
  EXPECT_EQ(offer.find("a=candidate"), std::string::npos);
  EXPECT_EQ(offer.find("end-of-candidates"), std::string::npos);
}

TEST(SdpGenerate, AnswerToChromeAudioVideoDataRejectsMedia) {
  auto offer = parse(readCorpus("chrome_offer_av_data.sdp"));
  ASSERT_TRUE(offer.ok());
  LocalParams p = params();
  p.setup = answerSetup(offer->media[2].setup);
  auto answer = generateAnswer(*offer, p);
  ASSERT_TRUE(answer.ok()) << answer.reason();
  auto parsed = parse(*answer);
  ASSERT_TRUE(parsed.ok()) << parsed.reason();
  ASSERT_EQ(parsed->media.size(), 3u);  // RFC 3264: same m-lines, same order
  EXPECT_EQ(parsed->media[0].kind, "audio");
  EXPECT_EQ(parsed->media[0].port, 0);
  EXPECT_EQ(parsed->media[0].mid, "0");
  EXPECT_EQ(parsed->media[0].formats.size(), 8u);
  EXPECT_EQ(parsed->media[1].port, 0);
  EXPECT_EQ(parsed->media[1].mid, "1");
  const auto& d = parsed->media[2];
  EXPECT_EQ(d.port, 9);
  EXPECT_EQ(d.mid, "2");
  EXPECT_EQ(d.setup, Setup::Active);
  EXPECT_EQ(parsed->bundleMids, std::vector<std::string>{"2"});
  EXPECT_EQ(parsed->dataChannelIndex(), 2u);
  EXPECT_TRUE(checkRemote(*parsed, false).ok());
}

TEST(SdpGenerate, AnswerMirrorsLegacySctpmapOffer) {
  auto offer = parse(readCorpus("legacy_sctpmap_offer.sdp"));
  ASSERT_TRUE(offer.ok());
  auto answer = generateAnswer(*offer, params());
  ASSERT_TRUE(answer.ok());
  EXPECT_NE(answer->find("m=application 9 DTLS/SCTP 5000\r\n"), std::string::npos);
  EXPECT_NE(answer->find("a=sctpmap:5000 webrtc-datachannel 65535\r\n"), std::string::npos);
  EXPECT_NE(answer->find("a=group:BUNDLE data\r\n"), std::string::npos);
  EXPECT_NE(answer->find("a=mid:data\r\n"), std::string::npos);
  auto parsed = parse(*answer);
  ASSERT_TRUE(parsed.ok());
  EXPECT_TRUE(parsed->media[0].isLegacySctp());
}

TEST(SdpGenerate, AnswerWithoutBundleInOfferHasNoGroup) {
  auto offer = parse(
      "v=0\nm=application 9 UDP/DTLS/SCTP webrtc-datachannel\na=mid:dc\n"
      "a=ice-ufrag:abcd\na=ice-pwd:abcdefghijklmnopqrstuv\na=fingerprint:sha-256 AB:CD\na=setup:actpass\n");
  ASSERT_TRUE(offer.ok());
  auto answer = generateAnswer(*offer, params());
  ASSERT_TRUE(answer.ok());
  EXPECT_EQ(answer->find("a=group"), std::string::npos);
  EXPECT_NE(answer->find("a=mid:dc\r\n"), std::string::npos);
}

TEST(SdpGenerate, AnswerRefusesOfferWithoutDataChannel) {
  auto offer = parse("v=0\nm=audio 9 UDP/TLS/RTP/SAVPF 111\na=mid:0\n");
  ASSERT_TRUE(offer.ok());
  auto answer = generateAnswer(*offer, params());
  ASSERT_FALSE(answer.ok());
  EXPECT_NE(answer.reason().find("no data-channel section"), std::string::npos);
}

}  // namespace
}  // namespace rtcpeer::sdp
