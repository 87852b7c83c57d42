#include <gtest/gtest.h>

#include "sdp/sdp.hpp"
#include "sdp_test_util.hpp"

namespace rtcpeer::sdp {
namespace {

SessionDescription parseFile(const std::string& name) {
  std::string text = readCorpus(name);
  EXPECT_FALSE(text.empty()) << name;
  auto r = parse(text);
  EXPECT_TRUE(r.ok()) << name << ": " << (r.ok() ? "" : r.reason());
  return r.ok() ? std::move(r).value() : SessionDescription{};
}

TEST(SdpParse, ChromeDataOnlyOffer) {
  auto sd = parseFile("chrome_offer_data.sdp");
  EXPECT_EQ(sd.sessionId, 4215775240449105457u);
  EXPECT_EQ(sd.sessionVersion, 2u);
  ASSERT_EQ(sd.media.size(), 1u);
  const auto& m = sd.media[0];
  EXPECT_EQ(m.kind, "application");
  EXPECT_EQ(m.port, 9);
  EXPECT_EQ(m.proto, "UDP/DTLS/SCTP");
  EXPECT_TRUE(m.isDataChannel());
  EXPECT_FALSE(m.isLegacySctp());
  EXPECT_EQ(m.mid, "0");
  EXPECT_EQ(m.iceUfrag, "cWRz");
  EXPECT_EQ(m.icePwd, "SPVcUEyYVHdcnUtzLmPcGS8p");
  EXPECT_EQ(m.iceOptions, std::vector<std::string>{"trickle"});
  ASSERT_EQ(m.fingerprints.size(), 1u);
  EXPECT_EQ(m.fingerprints[0].algorithm, "sha-256");
  EXPECT_EQ(m.fingerprints[0].value.size(), 95u);
  EXPECT_EQ(m.setup, Setup::ActPass);
  EXPECT_EQ(m.sctpPort, 5000);
  EXPECT_EQ(m.maxMessageSize, 262144u);
  ASSERT_EQ(m.candidates.size(), 4u);
  EXPECT_EQ(m.candidates[0],
            "candidate:1467250027 1 udp 2122260223 192.168.0.196 46243 typ host generation 0 network-id 1 "
            "network-cost 10");
  EXPECT_NE(m.candidates[1].find(".local 54400"), std::string::npos);
  EXPECT_FALSE(m.endOfCandidates);
  EXPECT_EQ(sd.bundleMids, std::vector<std::string>{"0"});
  EXPECT_EQ(sd.dataChannelIndex(), 0u);
  EXPECT_EQ(checkRemote(sd, true).value(), 0u);
}

TEST(SdpParse, ChromeAudioVideoDataOffer) {
  auto sd = parseFile("chrome_offer_av_data.sdp");
  ASSERT_EQ(sd.media.size(), 3u);
  EXPECT_EQ(sd.media[0].kind, "audio");
  EXPECT_EQ(sd.media[0].formats.size(), 8u);
  EXPECT_FALSE(sd.media[0].isDataChannel());
  EXPECT_EQ(sd.media[1].kind, "video");
  EXPECT_EQ(sd.media[1].proto, "UDP/TLS/RTP/SAVPF");
  EXPECT_EQ(sd.bundleMids, (std::vector<std::string>{"0", "1", "2"}));
  EXPECT_EQ(sd.dataChannelIndex(), 2u);
  EXPECT_EQ(sd.media[2].mid, "2");
  EXPECT_EQ(checkRemote(sd, true).value(), 2u);
}

TEST(SdpParse, FirefoxSessionLevelAttributesAreInherited) {
  auto sd = parseFile("firefox_offer.sdp");
  ASSERT_EQ(sd.media.size(), 1u);
  const auto& m = sd.media[0];
  EXPECT_EQ(sd.originUsername, "mozilla...THIS_IS_SDPARTA-99.0");
  ASSERT_EQ(m.fingerprints.size(), 1u);  // session level in Firefox
  EXPECT_EQ(m.iceOptions, std::vector<std::string>{"trickle"});
  EXPECT_EQ(m.iceUfrag, "4c2b1a0f");
  EXPECT_EQ(m.maxMessageSize, 1073741823u);
  EXPECT_EQ(m.candidates.size(), 2u);
  EXPECT_TRUE(m.endOfCandidates);

  auto answer = parseFile("firefox_answer.sdp");
  EXPECT_EQ(answer.media[0].setup, Setup::Active);
  EXPECT_TRUE(checkRemote(answer, false).ok());
}

TEST(SdpParse, LegacySctpmapForm) {
  auto sd = parseFile("legacy_sctpmap_offer.sdp");  // LF line ends
  ASSERT_EQ(sd.media.size(), 1u);
  const auto& m = sd.media[0];
  EXPECT_TRUE(m.isDataChannel());
  EXPECT_TRUE(m.isLegacySctp());
  EXPECT_EQ(m.sctpPort, 5000);
  EXPECT_FALSE(m.maxMessageSize.has_value());
  EXPECT_EQ(m.mid, "data");
}

TEST(SdpParse, LibdatachannelOffer) {
  auto sd = parseFile("libdatachannel_offer.sdp");
  const auto& m = sd.media[0];
  EXPECT_EQ(m.port, 50124);
  EXPECT_EQ(m.iceOptions, (std::vector<std::string>{"ice2,trickle"}));
  EXPECT_EQ(m.fingerprints[0].algorithm, "sha-384");
  EXPECT_EQ(m.candidates.size(), 2u);
  EXPECT_TRUE(m.endOfCandidates);
  EXPECT_EQ(sd.bundleMids, std::vector<std::string>{"0"});  // the first BUNDLE group, not LS
}

TEST(SdpParse, CrlfAndLfGiveTheSameResult) {
  std::string lf = readCorpus("chrome_offer_data.sdp");
  std::string crlf = lf;
  lf.erase(std::remove(lf.begin(), lf.end(), '\r'), lf.end());
  auto a = parse(lf), b = parse(crlf);
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(a->media[0].icePwd, b->media[0].icePwd);
  EXPECT_EQ(a->media[0].candidates, b->media[0].candidates);
}

TEST(SdpParse, FingerprintIsNormalizedToUpperCase) {
  auto r = parse("v=0\na=fingerprint:SHA-256 ab:cd:0e\nm=application 9 UDP/DTLS/SCTP webrtc-datachannel\n");
  ASSERT_TRUE(r.ok()) << r.reason();
  EXPECT_EQ(r->media[0].fingerprints[0], (Fingerprint{"sha-256", "AB:CD:0E"}));
}

TEST(SdpParse, MediaLevelOverridesSessionLevel) {
  auto r = parse(
      "v=0\na=ice-ufrag:sessU\na=ice-pwd:sessionpasswordsession1\na=setup:actpass\n"
      "m=application 9 UDP/DTLS/SCTP webrtc-datachannel\na=ice-ufrag:medU\na=setup:passive\n");
  ASSERT_TRUE(r.ok()) << r.reason();
  EXPECT_EQ(r->media[0].iceUfrag, "medU");
  EXPECT_EQ(r->media[0].icePwd, "sessionpasswordsession1");
  EXPECT_EQ(r->media[0].setup, Setup::Passive);
}

TEST(SdpParse, BundleOnlySectionInheritsFromItsBundleTag) {
  auto r = parse(
      "v=0\na=group:BUNDLE a d\n"
      "m=audio 9 UDP/TLS/RTP/SAVPF 111\na=mid:a\na=ice-ufrag:tagU\na=ice-pwd:tagpasswordtagpassword1\n"
      "a=fingerprint:sha-256 AA:BB\na=setup:actpass\n"
      "m=application 0 UDP/DTLS/SCTP webrtc-datachannel\na=bundle-only\na=mid:d\n");
  ASSERT_TRUE(r.ok()) << r.reason();
  const auto& d = r->media[1];
  EXPECT_TRUE(d.bundleOnly);
  EXPECT_FALSE(d.rejected());
  EXPECT_EQ(d.iceUfrag, "tagU");
  EXPECT_EQ(d.setup, Setup::ActPass);
  EXPECT_EQ(r->dataChannelIndex(), 1u);
}

TEST(SdpParse, RejectedDataSectionIsSkipped) {
  auto r = parse(
      "v=0\nm=application 0 UDP/DTLS/SCTP webrtc-datachannel\na=mid:0\n"
      "m=application 9 UDP/DTLS/SCTP webrtc-datachannel\na=mid:1\n");
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->media[0].rejected());
  EXPECT_EQ(r->dataChannelIndex(), 1u);
}

TEST(SdpParse, MaxMessageSizeZeroMeansUnlimitedAndIsKept) {
  auto r = parse("v=0\nm=application 9 UDP/DTLS/SCTP webrtc-datachannel\na=max-message-size:0\n");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->media[0].maxMessageSize, 0u);
}

TEST(SdpParse, UnknownLinesAndAttributesAreIgnored) {
  auto r = parse(
      "v=0\ni=info\nu=http://x\nb=AS:30\nz=0 0\na=x-google-flag:conference\na=weird\n"
      "m=application 9 UDP/DTLS/SCTP webrtc-datachannel\nb=AS:30\na=sendrecv\na=x-custom:1 2 3\n\n");
  ASSERT_TRUE(r.ok()) << r.reason();
  EXPECT_EQ(r->media.size(), 1u);
}

TEST(SdpSetup, DtlsRoles) {
  EXPECT_EQ(answerSetup(Setup::ActPass), Setup::Active);
  EXPECT_EQ(answerSetup(Setup::Active), Setup::Passive);
  EXPECT_EQ(answerSetup(Setup::Passive), Setup::Active);
  EXPECT_EQ(answerSetup(Setup::None), Setup::Passive);  // RFC 4145: absent in an offer means active
  EXPECT_TRUE(localIsDtlsClient(Setup::ActPass, true));
  EXPECT_FALSE(localIsDtlsClient(Setup::Active, true));
  EXPECT_FALSE(localIsDtlsClient(Setup::Active, false));
  EXPECT_TRUE(localIsDtlsClient(Setup::Passive, false));
  EXPECT_TRUE(localIsDtlsClient(Setup::None, false));  // absent in an answer means passive
}

}  // namespace
}  // namespace rtcpeer::sdp

namespace rtcpeer::sdp {
namespace {

TEST(SdpCandidates, SectionByMidOrIndex) {
  auto sd = parse(
      "v=0\nm=audio 0 UDP/TLS/RTP/SAVPF 111\na=mid:a\n"
      "m=application 9 UDP/DTLS/SCTP webrtc-datachannel\na=mid:d\n");
  ASSERT_TRUE(sd.ok());
  EXPECT_EQ(candidateSection(*sd, "d", 0).value(), 1u);  // the mid wins over the index
  EXPECT_EQ(candidateSection(*sd, "", 1).value(), 1u);
  EXPECT_NE(candidateSection(*sd, "x", 1).reason().find("unknown mid 'x'"), std::string::npos);
  EXPECT_NE(candidateSection(*sd, "", 2).reason().find("m-line index 2"), std::string::npos);
  EXPECT_FALSE(candidateSection(*sd, "", -1).ok());
  EXPECT_NE(candidateSection(*sd, "a", 0).reason().find("rejected"), std::string::npos);
}

TEST(SdpCandidates, CandidateValue) {
  EXPECT_EQ(candidateValue("candidate:1 1 udp 1 1.2.3.4 5 typ host"), "candidate:1 1 udp 1 1.2.3.4 5 typ host");
  EXPECT_EQ(candidateValue("a=candidate:1 1 udp 1 1.2.3.4 5 typ host\r\n"), "candidate:1 1 udp 1 1.2.3.4 5 typ host");
  EXPECT_EQ(candidateValue("  "), "");
  EXPECT_EQ(candidateValue("a=end-of-candidates"), "");
}

}  // namespace
}  // namespace rtcpeer::sdp
