// STUN codec tests: RFC 5769 vectors parsed and rebuilt byte for byte, the RFC 8489 B.1 vector (errata-corrected),
// round trips of every attribute, and malformed input.
#include "stun/stun.hpp"

#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <string>
#include <vector>

namespace rtcpeer::stun {
namespace {

Bytes hex(std::string_view text) {
  Bytes out;
  int nibble = -1;
  for (char c : text) {
    int v;
    if (c >= '0' && c <= '9') v = c - '0';
    else if (c >= 'a' && c <= 'f') v = c - 'a' + 10;
    else if (c >= 'A' && c <= 'F') v = c - 'A' + 10;
    else continue;
    if (nibble < 0) {
      nibble = v;
    } else {
      out.push_back(static_cast<std::uint8_t>(nibble << 4 | v));
      nibble = -1;
    }
  }
  return out;
}

template <std::size_t N>
std::array<std::uint8_t, N> arr(std::string_view text) {
  Bytes b = hex(text);
  std::array<std::uint8_t, N> a{};
  EXPECT_EQ(b.size(), N);
  std::copy_n(b.begin(), std::min(N, b.size()), a.begin());
  return a;
}

// ---- RFC 5769 (section 2.1-2.4) ----
const TransactionId kRfcId = arr<12>("b7e7a701 bc34d686 fa87dfae");
constexpr std::string_view kShortTermPassword = "VOkJxbRl1RmTxUk/WvJxBt";

const Bytes kSampleRequest = hex(
    "00 01 00 58 21 12 a4 42 b7 e7 a7 01 bc 34 d6 86 fa 87 df ae"
    "80 22 00 10 53 54 55 4e 20 74 65 73 74 20 63 6c 69 65 6e 74"  // SOFTWARE "STUN test client"
    "00 24 00 04 6e 00 01 ff"                                      // PRIORITY
    "80 29 00 08 93 2f f9 b1 51 26 3b 36"                          // ICE-CONTROLLED
    "00 06 00 09 65 76 74 6a 3a 68 36 76 59 20 20 20"              // USERNAME "evtj:h6vY", 0x20 padding
    "00 08 00 14 9a ea a7 0c bf d8 cb 56 78 1e f2 b5 b2 d3 f2 49 c1 b5 71 a2"
    "80 28 00 04 e5 7a 3b cf");

const Bytes kIpv4Response = hex(
    "01 01 00 3c 21 12 a4 42 b7 e7 a7 01 bc 34 d6 86 fa 87 df ae"
    "80 22 00 0b 74 65 73 74 20 76 65 63 74 6f 72 20"  // SOFTWARE "test vector", 0x20 padding
    "00 20 00 08 00 01 a1 47 e1 12 a6 43"              // XOR-MAPPED-ADDRESS 192.0.2.1:32853
    "00 08 00 14 2b 91 f5 99 fd 9e 90 c3 8c 74 89 f9 2a f9 ba 53 f0 6b e7 d7"
    "80 28 00 04 c0 7d 4c 96");

const Bytes kIpv6Response = hex(
    "01 01 00 48 21 12 a4 42 b7 e7 a7 01 bc 34 d6 86 fa 87 df ae"
    "80 22 00 0b 74 65 73 74 20 76 65 63 74 6f 72 20"
    "00 20 00 14 00 02 a1 47 01 13 a9 fa a5 d3 f1 79 bc 25 f4 b5 be d2 b9 d9"
    "00 08 00 14 a3 82 95 4e 4b e6 7b f1 17 84 c9 7c 82 92 c2 75 bf e3 ed 41"
    "80 28 00 04 c8 fb 0b 4c");

// Long-term credentials: username "マトリックス", password "TheMatrIX" (the RFC's SASLprep output of
// "The\u00ADM\u00AAtr\u2168"; rtcpeer uses passwords as given), zero padding, no FINGERPRINT.
const TransactionId kLongTermId = arr<12>("78ad3433 c6ad72c0 29da412e");
constexpr std::string_view kLtUser = "\xE3\x83\x9E\xE3\x83\x88\xE3\x83\xAA\xE3\x83\x83\xE3\x82\xAF\xE3\x82\xB9";
constexpr std::string_view kLtRealm = "example.org";
constexpr std::string_view kLtPassword = "TheMatrIX";
const Bytes kLongTermRequest = hex(
    "00 01 00 60 21 12 a4 42 78 ad 34 33 c6 ad 72 c0 29 da 41 2e"
    "00 06 00 12 e3 83 9e e3 83 88 e3 83 aa e3 83 83 e3 82 af e3 82 b9 00 00"
    "00 15 00 1c 66 2f 2f 34 39 39 6b 39 35 34 64 36 4f 4c 33 34 6f 4c 39 46 53 54 76 79 36 34 73 41"
    "00 14 00 0b 65 78 61 6d 70 6c 65 2e 6f 72 67 00"
    "00 08 00 14 f6 70 24 65 6d d6 4a 3e 02 b8 e0 71 2e 85 c9 a2 8c a8 96 66");

// RFC 8489 B.1 in its errata-corrected form (erratum 6268). The published bytes are self-inconsistent: the header
// says length 0x9c for 0x88 bytes of attributes (its MAC is HMAC-SHA256 under the SHA-256 key over the printed
// attributes with that 0x9c header, checked offline), so no conforming parser accepts it. The corrected message adds
// PASSWORD-ALGORITHM SHA-256 and the right length: USERHASH, NONCE with the "obMatJos2" cookie, REALM,
// PASSWORD-ALGORITHM, MESSAGE-INTEGRITY-SHA256 keyed with SHA-256(username:realm:password).
const Bytes kB1Request = hex(
    "00 01 00 90 21 12 a4 42 78 ad 34 33 c6 ad 72 c0 29 da 41 2e"
    "00 1e 00 20 4a 3c f3 8f ef 69 92 bd a9 52 c6 78 04 17 da 0f 24 81 94 15 56 9e 60 b2 05 c4 6e 41 40 7f 17 04"
    "00 15 00 29 6f 62 4d 61 74 4a 6f 73 32 41 41 41 43 66 2f 2f 34 39 39 6b 39 35 34 64 36"
    "4f 4c 33 34 6f 4c 39 46 53 54 76 79 36 34 73 41 00 00 00"
    "00 14 00 0b 65 78 61 6d 70 6c 65 2e 6f 72 67 00"
    "00 1d 00 04 00 02 00 00"
    "00 1c 00 20 b5 c7 bf 00 5b 6c 52 a2 1c 51 c5 e8 92 f8 19 24 13 62 96 cb 92 7c 43 14 93 09 27 8c c6 51 8e 65");

Message parsed(const Bytes& b) {
  auto r = parse(b);
  EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.reason());
  return r.ok() ? *r : Message{};
}

TEST(StunRfc5769, SampleRequestParses) {
  ASSERT_EQ(kSampleRequest.size(), 108u);
  EXPECT_TRUE(looksLikeStun(kSampleRequest));
  Message m = parsed(kSampleRequest);
  EXPECT_TRUE(m.is(Method::Binding, Class::Request));
  EXPECT_EQ(m.transactionId(), kRfcId);
  EXPECT_EQ(m.software(), "STUN test client");
  EXPECT_EQ(m.priority(), 0x6e0001ffu);
  EXPECT_EQ(m.iceControlled(), 0x932ff9b151263b36u);
  EXPECT_FALSE(m.iceControlling());
  EXPECT_EQ(m.username(), "evtj:h6vY");
  EXPECT_TRUE(m.unknownComprehensionRequired().empty());
  EXPECT_TRUE(m.checkIntegrity(shortTermKey(kShortTermPassword)));
  EXPECT_FALSE(m.checkIntegrity(shortTermKey("VOkJxbRl1RmTxUk/WvJxBT")));
  EXPECT_TRUE(m.hasFingerprint());
  EXPECT_TRUE(m.fingerprintValid());
}

TEST(StunRfc5769, SampleRequestBuildsByteForByte) {
  Bytes out;
  MessageBuilder b(out, Method::Binding, Class::Request, kRfcId);
  b.setPaddingByte(0x20)
      .addString(attr::Software, "STUN test client")
      .addU32(attr::Priority, 0x6e0001ff)
      .addU64(attr::IceControlled, 0x932ff9b151263b36)
      .addString(attr::Username, "evtj:h6vY")
      .addIntegrity(shortTermKey(kShortTermPassword))
      .addFingerprint();
  EXPECT_EQ(Bytes(b.finish().begin(), b.finish().end()), kSampleRequest);
}

TEST(StunRfc5769, Ipv4ResponseParsesAndBuilds) {
  Message m = parsed(kIpv4Response);
  EXPECT_TRUE(m.is(Method::Binding, Class::SuccessResponse));
  EXPECT_EQ(m.software(), "test vector");
  EXPECT_EQ(m.xorMappedAddress(), SocketAddress::v4({192, 0, 2, 1}, 32853));
  EXPECT_TRUE(m.checkIntegrity(shortTermKey(kShortTermPassword)));
  EXPECT_TRUE(m.fingerprintValid());

  Bytes out;
  MessageBuilder b(out, Method::Binding, Class::SuccessResponse, kRfcId);
  b.setPaddingByte(0x20)
      .addString(attr::Software, "test vector")
      .addXorAddress(attr::XorMappedAddress, SocketAddress::v4({192, 0, 2, 1}, 32853))
      .addIntegrity(shortTermKey(kShortTermPassword))
      .addFingerprint();
  EXPECT_EQ(out, kIpv4Response);
}

TEST(StunRfc5769, Ipv6ResponseParsesAndBuilds) {
  const auto addr = *SocketAddress::parse("2001:db8:1234:5678:11:2233:4455:6677", 32853);
  Message m = parsed(kIpv6Response);
  EXPECT_EQ(m.xorMappedAddress(), addr);
  EXPECT_TRUE(m.checkIntegrity(shortTermKey(kShortTermPassword)));
  EXPECT_TRUE(m.fingerprintValid());

  Bytes out;
  MessageBuilder(out, Method::Binding, Class::SuccessResponse, kRfcId)
      .setPaddingByte(0x20)
      .addString(attr::Software, "test vector")
      .addXorAddress(attr::XorMappedAddress, addr)
      .addIntegrity(shortTermKey(kShortTermPassword))
      .addFingerprint();
  EXPECT_EQ(out, kIpv6Response);
}

TEST(StunRfc5769, LongTermRequestParsesAndBuilds) {
  Message m = parsed(kLongTermRequest);
  EXPECT_EQ(m.username(), kLtUser);
  EXPECT_EQ(m.nonce(), "f//499k954d6OL34oL9FSTvy64sA");
  EXPECT_EQ(m.realm(), kLtRealm);
  EXPECT_FALSE(m.hasFingerprint());
  EXPECT_FALSE(m.fingerprintValid());
  const auto key = longTermKey(kLtUser, kLtRealm, kLtPassword);
  EXPECT_TRUE(m.checkIntegrity(key));
  EXPECT_FALSE(m.checkIntegrity(longTermKey(kLtUser, kLtRealm, "TheMatrix")));

  Bytes out;
  MessageBuilder(out, Method::Binding, Class::Request, kLongTermId)
      .addString(attr::Username, kLtUser)
      .addString(attr::Nonce, "f//499k954d6OL34oL9FSTvy64sA")
      .addString(attr::Realm, kLtRealm)
      .addIntegrity(key);
  EXPECT_EQ(out, kLongTermRequest);
}

TEST(StunRfc8489, B1Sha256WithUserhash) {
  const auto hash = userhash(kLtUser, kLtRealm);
  EXPECT_EQ(hash, (arr<32>("4a3cf38fef6992bda952c6780417da0f24819415569e60b205c46e41407f1704")));
  const auto key = longTermKeySha256(kLtUser, kLtRealm, kLtPassword);
  Message m = parsed(kB1Request);
  EXPECT_TRUE(m.hasIntegritySha256());
  EXPECT_FALSE(m.hasIntegrity());
  EXPECT_TRUE(m.checkIntegritySha256(key));
  EXPECT_FALSE(m.checkIntegritySha256(longTermKeySha256(kLtUser, kLtRealm, "wrong")));
  EXPECT_FALSE(m.checkIntegrity(key));
  EXPECT_EQ(m.u32(attr::PasswordAlgorithm), 0x00020000u);

  // The published (uncorrected) form: its length field does not match its size, so it must not parse.
  Bytes published(kB1Request.begin(), kB1Request.begin() + 120);  // header, USERHASH, NONCE, REALM
  published[3] = 0x9c;
  const Bytes publishedMac = hex(
      "00 1c 00 20 e4 68 6c 8f 0e de b5 90 13 e0 70 90 01 0a 93 ef cc bc cc 54 4c 0a 45 d9 f8 30 aa 6d 6f 73 5a 01");
  published.insert(published.end(), publishedMac.begin(), publishedMac.end());
  const auto bad = parse(published);
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.reason().find("does not match"), std::string::npos);

  Bytes out;
  MessageBuilder(out, Method::Binding, Class::Request, kLongTermId)
      .addBytes(attr::Userhash, hash)
      .addString(attr::Nonce, "obMatJos2AAACf//499k954d6OL34oL9FSTvy64sA")
      .addString(attr::Realm, kLtRealm)
      .addU32(attr::PasswordAlgorithm, 0x00020000)  // algorithm 2 (SHA-256), no parameters
      .addIntegritySha256(key);
  EXPECT_EQ(out, kB1Request);
}

TEST(StunCrc, PublishedCheckValue) {
  EXPECT_EQ(crc32(asBytes("123456789")), 0xCBF43926u);
  EXPECT_EQ(crc32({}), 0u);
}

TEST(StunType, MethodClassEncoding) {
  EXPECT_EQ(messageType(Method::Binding, Class::Request), 0x0001);
  EXPECT_EQ(messageType(Method::Binding, Class::Indication), 0x0011);
  EXPECT_EQ(messageType(Method::Binding, Class::SuccessResponse), 0x0101);
  EXPECT_EQ(messageType(Method::Binding, Class::ErrorResponse), 0x0111);
  EXPECT_EQ(messageType(Method::Allocate, Class::Request), 0x0003);
  EXPECT_EQ(messageType(Method::Allocate, Class::ErrorResponse), 0x0113);
  EXPECT_EQ(messageType(Method::Refresh, Class::SuccessResponse), 0x0104);
  EXPECT_EQ(messageType(Method::Send, Class::Indication), 0x0016);
  EXPECT_EQ(messageType(Method::Data, Class::Indication), 0x0017);
  EXPECT_EQ(messageType(Method::CreatePermission, Class::Request), 0x0008);
  EXPECT_EQ(messageType(Method::ChannelBind, Class::SuccessResponse), 0x0109);
  // All 12 method bits survive the interleaving with the class bits.
  for (std::uint16_t mv : {0x001, 0x009, 0x0FF, 0xABC, 0xFFF}) {
    for (auto c : {Class::Request, Class::Indication, Class::SuccessResponse, Class::ErrorResponse}) {
      const auto t = messageType(static_cast<Method>(mv), c);
      EXPECT_EQ(static_cast<std::uint16_t>(methodOf(t)), mv);
      EXPECT_EQ(classOf(t), c);
      EXPECT_EQ(t & 0xC000, 0);
    }
  }
}

TEST(StunTransactionId, FromInjectedRandom) {
  SeededRandom a(7), b(7);
  const auto x = randomTransactionId(a);
  EXPECT_EQ(x, randomTransactionId(b));
  EXPECT_NE(x, randomTransactionId(a));
}

TEST(StunRoundTrip, EveryAttribute) {
  SeededRandom rnd(1);
  const auto id = randomTransactionId(rnd);
  const auto v4 = SocketAddress::v4({203, 0, 113, 9}, 3478);
  const auto v6 = *SocketAddress::parse("2001:db8::42", 61000);
  const std::uint8_t payload[] = {1, 2, 3, 4, 5};
  const std::uint16_t unknown[] = {0x0003, 0x7F00, 0x1234};
  Bytes out;
  MessageBuilder(out, Method::Allocate, Class::ErrorResponse, id)
      .addAddress(attr::MappedAddress, v4)
      .addXorAddress(attr::XorMappedAddress, v6)
      .addXorAddress(attr::XorRelayedAddress, v4)
      .addXorAddress(attr::XorPeerAddress, v6)
      .addString(attr::Username, "alice:bob")
      .addString(attr::Realm, "realm")
      .addString(attr::Nonce, "nonce-1")
      .addString(attr::Software, "rtcpeer")
      .addErrorCode(error::RoleConflict, "Role Conflict")
      .addUnknownAttributes(unknown)
      .addU32(attr::Priority, 0x7E7F00FF)
      .addFlag(attr::UseCandidate)
      .addU64(attr::IceControlling, 0x0123456789ABCDEF)
      .addU64(attr::IceControlled, 0xFEDCBA9876543210)
      .addU32(attr::Lifetime, 600)
      .addBytes(attr::Data, payload)
      .addRequestedTransport()
      .addChannelNumber(0x4001)
      .addFlag(attr::DontFragment)
      .addIntegrity(shortTermKey("pw"))
      .addIntegritySha256(shortTermKey("pw"))
      .addFingerprint();
  ASSERT_TRUE(looksLikeStun(out));
  Message m = parsed(out);
  EXPECT_TRUE(m.is(Method::Allocate, Class::ErrorResponse));
  EXPECT_EQ(m.method(), Method::Allocate);
  EXPECT_EQ(m.cls(), Class::ErrorResponse);
  EXPECT_EQ(m.transactionId(), id);
  EXPECT_EQ(m.mappedAddress(), v4);
  EXPECT_EQ(m.xorMappedAddress(), v6);
  EXPECT_EQ(m.xorRelayedAddress(), v4);
  EXPECT_EQ(m.xorPeerAddress(), v6);
  EXPECT_EQ(m.username(), "alice:bob");
  EXPECT_EQ(m.realm(), "realm");
  EXPECT_EQ(m.nonce(), "nonce-1");
  EXPECT_EQ(m.software(), "rtcpeer");
  ASSERT_TRUE(m.errorCode());
  EXPECT_EQ(m.errorCode()->code, 487);
  EXPECT_EQ(m.errorCode()->reason, "Role Conflict");
  std::array<std::uint16_t, 32> storage{};
  auto ua = m.unknownAttributes(storage);
  ASSERT_TRUE(ua);
  EXPECT_EQ(std::vector<std::uint16_t>(ua->begin(), ua->end()), std::vector<std::uint16_t>(unknown, unknown + 3));
  EXPECT_EQ(m.priority(), 0x7E7F00FFu);
  EXPECT_TRUE(m.useCandidate());
  EXPECT_EQ(m.iceControlling(), 0x0123456789ABCDEFu);
  EXPECT_EQ(m.iceControlled(), 0xFEDCBA9876543210u);
  EXPECT_EQ(m.lifetime(), 600u);
  ASSERT_TRUE(m.data());
  EXPECT_EQ(Bytes(m.data()->begin(), m.data()->end()), Bytes(payload, payload + 5));
  EXPECT_EQ(m.requestedTransport(), kTransportUdp);
  EXPECT_EQ(m.channelNumber(), 0x4001);
  EXPECT_TRUE(m.dontFragment());
  EXPECT_TRUE(m.unknownComprehensionRequired().empty());
  EXPECT_TRUE(m.checkIntegrity(shortTermKey("pw")));
  EXPECT_TRUE(m.checkIntegritySha256(shortTermKey("pw")));
  EXPECT_TRUE(m.fingerprintValid());

  // forEach visits the 19 attributes before MESSAGE-INTEGRITY; re-emitting them rebuilds the same message.
  Bytes again;
  MessageBuilder rebuild(again, m.type(), m.transactionId());
  int count = 0;
  m.forEach([&](std::uint16_t t, ByteView v) {
    ++count;
    rebuild.addBytes(t, v);
  });
  EXPECT_EQ(count, 19);
  rebuild.addIntegrity(shortTermKey("pw")).addIntegritySha256(shortTermKey("pw")).addFingerprint();
  EXPECT_EQ(again, out);
}

TEST(StunRoundTrip, BuilderReusesBuffer) {
  Bytes out;
  out.reserve(256);
  const auto* p = out.data();
  for (int i = 0; i < 3; ++i) {
    MessageBuilder(out, Method::Binding, Class::Request, TransactionId{})
        .addString(attr::Username, "a:b")
        .addIntegrity(shortTermKey("k"))
        .addFingerprint();
    EXPECT_EQ(out.data(), p);
    EXPECT_EQ(out.size(), 20u + 8 + 24 + 8);
  }
}

TEST(StunIntegrity, WrongKeyAndTamperingFail) {
  Bytes msg = kSampleRequest;
  ASSERT_TRUE(parsed(msg).checkIntegrity(shortTermKey(kShortTermPassword)));
  EXPECT_FALSE(parsed(msg).checkIntegrity(shortTermKey("")));
  EXPECT_FALSE(parsed(msg).checkIntegritySha256(shortTermKey(kShortTermPassword)));  // absent
  for (std::size_t i : {std::size_t{0} + 1, std::size_t{9}, std::size_t{30}, std::size_t{70}, std::size_t{80}}) {
    Bytes t = msg;
    t[i] ^= 0x01;
    auto r = parse(t);
    ASSERT_TRUE(r.ok()) << i;
    EXPECT_FALSE(r->checkIntegrity(shortTermKey(kShortTermPassword))) << i;
    EXPECT_FALSE(r->fingerprintValid()) << i;
  }
  // Flipping a bit of the FINGERPRINT value itself only breaks the fingerprint.
  Bytes t = msg;
  t.back() ^= 0x80;
  EXPECT_TRUE(parsed(t).checkIntegrity(shortTermKey(kShortTermPassword)));
  EXPECT_FALSE(parsed(t).fingerprintValid());
  // Padding bytes are covered by the MAC as sent (the vector pads USERNAME with 0x20).
  t = msg;
  t[73] = 0;
  EXPECT_FALSE(parsed(t).checkIntegrity(shortTermKey(kShortTermPassword)));
}

TEST(StunIntegrity, AttributesAfterIntegrityAreIgnored) {
  Bytes out;
  MessageBuilder(out, Method::Binding, Class::Request, TransactionId{})
      .addString(attr::Username, "u:v")
      .addIntegrity(shortTermKey("pw"))
      .addString(attr::Software, "smuggled")
      .addU32(0x0003, 1)  // unknown comprehension-required, but after MESSAGE-INTEGRITY
      .addFingerprint();
  Message m = parsed(out);
  EXPECT_EQ(m.username(), "u:v");
  EXPECT_FALSE(m.software());
  EXPECT_TRUE(m.unknownComprehensionRequired().empty());
  // The MAC stays valid because it covers only what precedes it with the length adjusted (RFC 8489 14.5).
  EXPECT_TRUE(m.checkIntegrity(shortTermKey("pw")));
  EXPECT_TRUE(m.fingerprintValid());
}

TEST(StunIntegrity, TruncatedSha256Verifies) {
  // A peer may send MESSAGE-INTEGRITY-SHA256 truncated to 16..28 bytes (RFC 8489 14.6); build one by hand.
  for (std::size_t len : {16u, 20u, 28u}) {
    Bytes out;
    MessageBuilder(out, Method::Binding, Class::Request, TransactionId{1}).addString(attr::Username, "user");
    const std::size_t at = out.size();
    storeBe16(out.data() + 2, static_cast<std::uint16_t>(at + 4 + len - kHeaderSize));
    std::uint8_t mac[32];
    unsigned n = 0;
    ASSERT_TRUE(HMAC(EVP_sha256(), "key", 3, out.data(), at, mac, &n));
    ByteWriter w(out);
    w.u16(attr::MessageIntegritySha256);
    w.u16(static_cast<std::uint16_t>(len));
    w.bytes(ByteView(mac, len));
    Message m = parsed(out);
    EXPECT_TRUE(m.checkIntegritySha256(shortTermKey("key"))) << len;
    EXPECT_FALSE(m.checkIntegritySha256(shortTermKey("kez"))) << len;
  }
}

TEST(StunParse, UnknownComprehensionRequiredReported) {
  Bytes out;
  MessageBuilder(out, Method::Binding, Class::Request, TransactionId{})
      .addU32(0x0003, 0)      // CHANGE-REQUEST (RFC 5780): not understood here
      .addString(0x7F01, "x")
      .addU32(0x0003, 0)      // duplicates are reported once
      .addString(attr::GoogNetworkInfo, "ignored")  // comprehension-optional: never reported
      .addString(0xFFFF, "ignored")
      .addU32(attr::Priority, 1);
  Message m = parsed(out);
  const auto u = m.unknownComprehensionRequired();
  EXPECT_EQ(std::vector<std::uint16_t>(u.begin(), u.end()), (std::vector<std::uint16_t>{0x0003, 0x7F01}));
  EXPECT_EQ(m.priority(), 1u);
  EXPECT_EQ(m.find(attr::GoogNetworkInfo).value().size(), 7u);

  // The 420 answer a server builds from it.
  Bytes resp;
  MessageBuilder(resp, Method::Binding, Class::ErrorResponse, m.transactionId())
      .addErrorCode(error::UnknownAttribute, "Unknown Attribute")
      .addUnknownAttributes(u);
  Message r = parsed(resp);
  EXPECT_EQ(r.errorCode()->code, 420);
  std::array<std::uint16_t, 32> storage{};
  EXPECT_EQ(r.unknownAttributes(storage)->size(), 2u);
}

TEST(StunParse, MalformedInputFailsWithReason) {
  auto fails = [](const Bytes& b, std::string_view why) {
    auto r = parse(b);
    EXPECT_FALSE(r.ok()) << why;
    if (!r.ok()) {
      EXPECT_NE(r.reason().find(why), std::string::npos) << r.reason();
    }
  };
  fails({}, "shorter than the header");
  for (std::size_t n = 0; n < kSampleRequest.size(); ++n) {
    auto r = parse(ByteView(kSampleRequest).first(n));  // every truncation
    EXPECT_FALSE(r.ok()) << n;
  }
  Bytes b = kSampleRequest;
  b.push_back(0);
  fails(b, "does not match");  // oversized
  b = kSampleRequest;
  b[0] |= 0x80;
  fails(b, "top two bits");
  b = kSampleRequest;
  b[5] = 0;
  fails(b, "magic cookie");
  b = kSampleRequest;
  b[3] = 0x57;
  fails(b, "multiple of 4");
  b = hex("0001 0008 2112a442 000000000000000000000000  8022 0010 41414141");
  fails(b, "overruns");
  b = hex("0001 0004 2112a442 000000000000000000000000  0006 0005");
  fails(b, "overruns");
  b = hex("0001 000c 2112a442 000000000000000000000000  8028 0004 00000000 8022 0000");
  fails(b, "after FINGERPRINT");
  b = hex("0001 0010 2112a442 000000000000000000000000  0008 000c 000000000000000000000000");
  fails(b, "MESSAGE-INTEGRITY length");
  b = hex("0001 0010 2112a442 000000000000000000000000  001c 000c 000000000000000000000000");
  fails(b, "MESSAGE-INTEGRITY-SHA256 length");
  b = hex("0001 0008 2112a442 000000000000000000000000  8028 0000 00000000");
  fails(b, "FINGERPRINT length");
}

TEST(StunParse, MalformedAttributeValuesGiveNullopt) {
  Bytes out;
  const std::uint8_t badFamily[] = {0, 3, 0, 1, 1, 2, 3, 4};
  const std::uint8_t shortV6[] = {0, 2, 0, 1, 1, 2, 3, 4};
  const std::uint8_t badClass[] = {0, 0, 7, 1, 'x'};
  MessageBuilder(out, Method::Binding, Class::SuccessResponse, TransactionId{})
      .addBytes(attr::XorMappedAddress, badFamily)
      .addBytes(attr::MappedAddress, shortV6)
      .addBytes(attr::ErrorCode, badClass)
      .addBytes(attr::Priority, shortV6)  // 8 bytes, not 4
      .addU32(attr::IceControlling, 1)    // 4 bytes, not 8
      .addBytes(attr::UnknownAttributes, ByteView(badClass, 3))
      .addU64(attr::RequestedTransport, 1)
      .addFlag(attr::ChannelNumber);
  Message m = parsed(out);
  EXPECT_FALSE(m.xorMappedAddress());
  EXPECT_FALSE(m.mappedAddress());
  EXPECT_FALSE(m.errorCode());
  EXPECT_FALSE(m.priority());
  EXPECT_FALSE(m.iceControlling());
  std::array<std::uint16_t, 32> storage{};
  EXPECT_FALSE(m.unknownAttributes(storage));
  EXPECT_FALSE(m.requestedTransport());
  EXPECT_FALSE(m.channelNumber());
  EXPECT_FALSE(m.username());
  EXPECT_FALSE(m.hasIntegrity());
  EXPECT_FALSE(m.checkIntegrity(shortTermKey("x")));
  EXPECT_FALSE(m.fingerprintValid());
}

TEST(StunDemux, LooksLikeStun) {
  EXPECT_TRUE(looksLikeStun(kIpv4Response));
  EXPECT_TRUE(looksLikeStun(kLongTermRequest));
  EXPECT_FALSE(looksLikeStun(hex("16 fe fd 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00")));  // DTLS
  EXPECT_FALSE(looksLikeStun(hex("40 00 00 10 21 12 a4 42 00 00 00 00 00 00 00 00 00 00 00 00")));  // ChannelData
  EXPECT_FALSE(looksLikeStun(ByteView(kIpv4Response).first(40)));
}

TEST(StunChannelData, RoundTripAndErrors) {
  const std::uint8_t payload[] = {9, 8, 7, 6, 5};
  Bytes out;
  ByteView frame = writeChannelData(out, 0x4ABC, payload);
  EXPECT_EQ(Bytes(frame.begin(), frame.end()), hex("4abc 0005 0908070605"));
  EXPECT_TRUE(looksLikeChannelData(frame));
  EXPECT_FALSE(looksLikeStun(frame));
  auto cd = parseChannelData(frame);
  ASSERT_TRUE(cd.ok()) << cd.reason();
  EXPECT_EQ(cd->channel, 0x4ABC);
  EXPECT_EQ(Bytes(cd->data.begin(), cd->data.end()), Bytes(payload, payload + 5));

  frame = writeChannelData(out, 0x4000, payload, /*stream=*/true);
  EXPECT_EQ(frame.size(), channelDataFrameSize(5, true));
  EXPECT_EQ(frame.size(), 12u);
  cd = parseChannelData(frame);  // padding after the data is allowed
  ASSERT_TRUE(cd.ok());
  EXPECT_EQ(cd->data.size(), 5u);
  EXPECT_EQ(channelDataFrameSize(5, false), 9u);

  const auto empty = parseChannelData(hex("4fff 0000"));
  ASSERT_TRUE(empty.ok());
  EXPECT_TRUE(empty->data.empty());

  EXPECT_FALSE(parseChannelData(hex("40 00 00")).ok());
  EXPECT_FALSE(parseChannelData(hex("5000 0000")).ok());
  EXPECT_FALSE(parseChannelData(hex("3fff 0000")).ok());
  const auto over = parseChannelData(hex("4001 0006 0102030405"));
  ASSERT_FALSE(over.ok());
  EXPECT_NE(over.reason().find("exceeds"), std::string::npos);
  EXPECT_FALSE(looksLikeChannelData(kSampleRequest));
}

}  // namespace
}  // namespace rtcpeer::stun
