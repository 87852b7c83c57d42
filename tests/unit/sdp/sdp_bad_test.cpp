// A corpus of malformed or unusable SDP, each with the error it must produce (the line number included).
#include <gtest/gtest.h>

#include "sdp/sdp.hpp"

namespace rtcpeer::sdp {
namespace {

constexpr const char* kM = "m=application 9 UDP/DTLS/SCTP webrtc-datachannel\n";

struct BadCase {
  std::string name;
  std::string sdp;
  std::string error;  // substring of the parse error
};

std::vector<BadCase> badCases() {
  std::string m = kM;
  return {
      {"empty", "", "empty SDP"},
      {"only_blank_lines", "\r\n\n", "empty SDP"},
      {"no_version", "o=- 1 1 IN IP4 0.0.0.0\n", "line 1: an SDP must start with v=0"},
      {"version_1", "v=1\n", "line 1: an SDP must start with v=0"},
      {"repeated_version", "v=0\nv=0\n", "line 2: repeated v= line"},
      {"not_type_value", "v=0\nhello\n", "line 2: expected '<letter>=<value>'"},
      {"upper_case_type", "v=0\nM=application 9 x y\n", "line 2: expected '<letter>=<value>'"},
      {"space_before_equals", "v=0\nm =x\n", "line 2: expected '<letter>=<value>'"},
      {"short_origin", "v=0\no=- 1 1\n", "line 2: o= needs 6 fields"},
      {"origin_not_numeric", "v=0\no=- abc 1 IN IP4 0.0.0.0\n", "line 2: o= session id and version"},
      {"media_too_short", "v=0\nm=application 9\n", "line 2: m= needs"},
      {"media_port_text", "v=0\nm=application nine UDP/DTLS/SCTP webrtc-datachannel\n", "line 2: m= port"},
      {"media_port_too_big", "v=0\nm=application 70000 UDP/DTLS/SCTP webrtc-datachannel\n", "line 2: m= port"},
      {"empty_attribute", "v=0\na=\n", "line 2: empty attribute name"},
      {"ufrag_empty", "v=0\n" + m + "a=ice-ufrag:\n", "line 3: a=ice-ufrag needs a value"},
      {"ufrag_short", "v=0\n" + m + "a=ice-ufrag:abc\n", "line 3: a=ice-ufrag must be 4..256"},
      {"ufrag_bad_char", "v=0\n" + m + "a=ice-ufrag:ab;cd\n", "line 3: a=ice-ufrag must be"},
      {"pwd_short", "v=0\n" + m + "a=ice-pwd:tooshort\n", "line 3: a=ice-pwd must be 22..256"},
      {"pwd_too_long", "v=0\n" + m + "a=ice-pwd:" + std::string(257, 'a') + "\n", "line 3: a=ice-pwd must be"},
      {"fingerprint_no_hash", "v=0\n" + m + "a=fingerprint:sha-256\n", "line 3: a=fingerprint must be"},
      {"fingerprint_odd_hex", "v=0\n" + m + "a=fingerprint:sha-256 AB:C\n", "line 3: a=fingerprint must be"},
      {"fingerprint_not_hex", "v=0\n" + m + "a=fingerprint:sha-256 AB:ZZ\n", "line 3: a=fingerprint must be"},
      {"fingerprint_no_colons", "v=0\n" + m + "a=fingerprint:sha-256 ABCD\n", "line 3: a=fingerprint must be"},
      {"setup_unknown", "v=0\n" + m + "a=setup:server\n", "line 3: a=setup must be"},
      {"mid_empty", "v=0\n" + m + "a=mid:\n", "line 3: a=mid needs a value"},
      {"mid_two_tokens", "v=0\n" + m + "a=mid:a b\n", "line 3: a=mid must be a single token"},
      {"mid_duplicate", "v=0\n" + m + "a=mid:x\n" + m + "a=mid:x\n", "line 5: duplicate a=mid:x"},
      {"sctp_port_text", "v=0\n" + m + "a=sctp-port:five\n", "line 3: a=sctp-port must be"},
      {"sctp_port_negative", "v=0\n" + m + "a=sctp-port:-1\n", "line 3: a=sctp-port must be"},
      {"sctpmap_short", "v=0\nm=application 9 DTLS/SCTP 5000\na=sctpmap:5000\n", "line 3: a=sctpmap must be"},
      {"max_message_size_text", "v=0\n" + m + "a=max-message-size:big\n", "line 3: a=max-message-size must be"},
      {"max_message_size_overflow", "v=0\n" + m + "a=max-message-size:99999999999999999999999\n",
       "line 3: a=max-message-size"},
      {"candidate_empty", "v=0\n" + m + "a=candidate:\n", "line 3: a=candidate needs a value"},
      {"crlf_line_numbers", "v=0\r\n" + std::string("s=-\r\nt=0 0\r\n") + "a=setup:x\r\n", "line 4: a=setup"},
      {"too_large", "v=0\n" + std::string(1 << 20, 'a'), "larger than 1 MiB"},
  };
}

TEST(SdpBad, EachMalformedSdpGivesItsError) {
  for (const auto& c : badCases()) {
    auto r = parse(c.sdp);
    ASSERT_FALSE(r.ok()) << c.name << " parsed";
    EXPECT_NE(r.reason().find(c.error), std::string::npos)
        << c.name << ": expected '" << c.error << "' in '" << r.reason() << "'";
  }
}

TEST(SdpBad, ErrorQuotesTheLineTruncated) {
  auto r = parse("v=0\na=setup:" + std::string(200, 'x') + "\n");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.reason().find("(in 'a=setup:xxx"), std::string::npos) << r.reason();
  EXPECT_LT(r.reason().size(), 160u);
}

struct UnusableCase {
  std::string name;
  std::string sdp;
  bool isOffer;
  std::string error;  // substring of the checkRemote error
};

TEST(SdpBad, UnusableRemoteDescriptions) {
  const std::string creds = "a=ice-ufrag:abcd\na=ice-pwd:abcdefghijklmnopqrstuv\n";
  const std::string fp = "a=fingerprint:sha-256 AB:CD\n";
  std::vector<UnusableCase> cases = {
      {"audio_only", "v=0\nm=audio 9 UDP/TLS/RTP/SAVPF 111\n", true, "no data-channel section"},
      {"rejected_data", "v=0\nm=application 0 UDP/DTLS/SCTP webrtc-datachannel\n", true, "no data-channel section"},
      {"wrong_format", "v=0\nm=application 9 UDP/DTLS/SCTP bfcp\n", true, "no data-channel section"},
      {"no_credentials", std::string("v=0\n") + kM + fp, true, "has no a=ice-ufrag/a=ice-pwd"},
      {"no_fingerprint", std::string("v=0\n") + kM + creds, true, "has no a=fingerprint"},
      {"holdconn", std::string("v=0\n") + kM + creds + fp + "a=setup:holdconn\n", true, "holdconn"},
      {"answer_actpass", std::string("v=0\n") + kM + creds + fp + "a=setup:actpass\n", false,
       "must not use a=setup:actpass"},
  };
  for (const auto& c : cases) {
    auto parsed = parse(c.sdp);
    ASSERT_TRUE(parsed.ok()) << c.name << ": " << parsed.reason();
    auto r = checkRemote(*parsed, c.isOffer);
    ASSERT_FALSE(r.ok()) << c.name;
    EXPECT_NE(r.reason().find(c.error), std::string::npos) << c.name << ": " << r.reason();
  }
}

}  // namespace
}  // namespace rtcpeer::sdp
