#include <gtest/gtest.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "dtls/certificate.hpp"
#include "dtls/demux.hpp"

namespace rtcpeer::dtls {
namespace {

TEST(Fingerprint, ParsesCaseInsensitively) {
  std::string digest;
  for (int i = 0; i < 32; ++i) digest += (i ? ":" : "") + std::string(i % 2 ? "aF" : "0c");
  auto fp = Fingerprint::parse("SHA-256 " + digest);
  ASSERT_TRUE(fp) << fp.reason();
  EXPECT_EQ(fp->alg, HashAlg::Sha256);
  ASSERT_EQ(fp->digest.size(), 32u);
  EXPECT_EQ(fp->digest[0], 0x0c);
  EXPECT_EQ(fp->digest[1], 0xaf);
  EXPECT_EQ(fp->toSdp().substr(0, 14), "sha-256 0C:AF:");
  auto again = Fingerprint::parse(fp->toSdp());
  ASSERT_TRUE(again);
  EXPECT_EQ(*again, *fp);
}

TEST(Fingerprint, AcceptsEveryRfc8122HashWithItsLength) {
  for (auto [name, len] : {std::pair{"sha-1", 20}, {"sha-224", 28}, {"sha-256", 32}, {"sha-384", 48}, {"sha-512", 64}}) {
    std::string v = std::string(name) + " ";
    for (int i = 0; i < len; ++i) v += (i ? ":" : "") + std::string("7E");
    auto fp = Fingerprint::parse(v);
    ASSERT_TRUE(fp) << name << ": " << fp.reason();
    EXPECT_EQ(hashName(fp->alg), name);
    EXPECT_EQ(fp->digest.size(), static_cast<std::size_t>(len));
  }
}

TEST(Fingerprint, RejectsMalformedValues) {
  std::string ok32;
  for (int i = 0; i < 32; ++i) ok32 += (i ? ":" : "") + std::string("01");
  for (const std::string& bad : {std::string(""), std::string("sha-256"), "md5 " + ok32, "sha-256 " + ok32 + ":",
                                "sha-256 " + ok32.substr(3), "sha-1 " + ok32, "sha-256 " + ok32.substr(0, 93) + "zz",
                                "sha-256 " + ok32.substr(0, 94) + "g", std::string("sha-256 01-02")}) {
    EXPECT_FALSE(Fingerprint::parse(bad)) << bad;
  }
}

TEST(Certificate, GeneratesSelfSignedP256WithSdpFingerprint) {
  auto a = Certificate::generate();
  auto b = Certificate::generate();
  ASSERT_TRUE(a && b);
  const std::string sdp = (*a)->sdpFingerprint();
  EXPECT_EQ(sdp.substr(0, 8), "sha-256 ");
  EXPECT_EQ(sdp.size(), 8u + 32 * 3 - 1);
  auto parsed = Fingerprint::parse(sdp);
  ASSERT_TRUE(parsed);
  EXPECT_EQ(*parsed, (*a)->sha256());
  EXPECT_EQ((*a)->fingerprint(HashAlg::Sha1).size(), 20u * 3 - 1);
  EXPECT_NE((*a)->sdpFingerprint(), (*b)->sdpFingerprint());

  X509* x = (*a)->x509();
  EXPECT_EQ(X509_check_issued(x, x), X509_V_OK);  // self-signed
  EXPECT_EQ(X509_verify(x, (*a)->privateKey()), 1);
  EXPECT_LT(X509_cmp_current_time(X509_get0_notBefore(x)), 0);
  EXPECT_GT(X509_cmp_current_time(X509_get0_notAfter(x)), 0);
  EXPECT_NE(ASN1_INTEGER_cmp(X509_get0_serialNumber(x), X509_get0_serialNumber((*b)->x509())), 0);
}

TEST(Certificate, PemRoundTripKeepsTheFingerprint) {
  auto a = Certificate::generate();
  ASSERT_TRUE(a);
  auto pem = (*a)->toPem();
  ASSERT_TRUE(pem) << pem.reason();
  EXPECT_TRUE(pem->first.starts_with("-----BEGIN CERTIFICATE-----"));
  EXPECT_TRUE(pem->second.starts_with("-----BEGIN PRIVATE KEY-----"));
  auto loaded = Certificate::fromPem(pem->first, pem->second);
  ASSERT_TRUE(loaded) << loaded.reason();
  EXPECT_EQ((*loaded)->sdpFingerprint(), (*a)->sdpFingerprint());
  EXPECT_EQ(X509_verify((*loaded)->x509(), (*loaded)->privateKey()), 1);
}

TEST(Certificate, PemLoadingRefusesGarbageAndForeignKeys) {
  auto a = Certificate::generate();
  auto b = Certificate::generate();
  ASSERT_TRUE(a && b);
  auto pa = (*a)->toPem();
  auto pb = (*b)->toPem();
  ASSERT_TRUE(pa && pb);
  auto mismatched = Certificate::fromPem(pa->first, pb->second);
  ASSERT_FALSE(mismatched);
  EXPECT_NE(mismatched.reason().find("does not belong"), std::string::npos) << mismatched.reason();
  auto garbage = Certificate::fromPem("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n", pa->second);
  ASSERT_FALSE(garbage);
  EXPECT_NE(garbage.reason().find("certificate could be read"), std::string::npos) << garbage.reason();
  EXPECT_FALSE(Certificate::fromPem(pa->first, "not a key"));
  EXPECT_FALSE(Certificate::fromPem(pa->first.substr(0, pa->first.size() / 2), pa->second));  // truncated
}

TEST(Demux, ClassifiesByRfc7983FirstByte) {
  auto kind = [](int b) {
    const std::uint8_t byte = static_cast<std::uint8_t>(b);
    return classify(ByteView(&byte, 1));
  };
  EXPECT_EQ(classify({}), PacketKind::Unknown);
  for (int b = 0; b < 256; ++b) {
    const PacketKind want = b <= 3 ? PacketKind::Stun
                            : b >= 20 && b <= 63 ? PacketKind::Dtls
                            : b >= 64 && b <= 79 ? PacketKind::ChannelData
                            : b >= 128 && b <= 191 ? PacketKind::Rtp
                                                   : PacketKind::Unknown;
    EXPECT_EQ(kind(b), want) << b;
  }
}

}  // namespace
}  // namespace rtcpeer::dtls
