// RecordProtection on its own, with fixed keys: framing, every AEAD, the replay window, and what it refuses.
// (That its key derivation and records match other implementations is checked against OpenSSL, GnuTLS,
// BoringSSL in the interop tests, and against OpenSSL's own record layer in handover_test.cpp.)
#include <gtest/gtest.h>

#include <algorithm>

#include "dtls/record_protection.hpp"

namespace rtcpeer::dtls {
namespace {

struct Pair {
  RecordProtection a, b;
};

// Sequence numbers start at 1: the window counts everything up to RecordSequence::newestRead (0) as seen.
Pair makePair(Aead aead, RecordSequence seqA = {1, 1, 0, 0}, RecordSequence seqB = {1, 1, 0, 0}) {
  const std::size_t keySize = aead == Aead::Aes128Gcm ? 16 : 32, ivSize = aead == Aead::ChaCha20Poly1305 ? 12 : 4;
  const Bytes k1(keySize, 0x11), k2(keySize, 0x22), iv1(ivSize, 0x33), iv2(ivSize, 0x44);
  auto a = RecordProtection::create({aead, k1, iv1, k2, iv2}, seqA);
  auto b = RecordProtection::create({aead, k2, iv2, k1, iv1}, seqB);
  EXPECT_TRUE(a.ok() && b.ok());
  return {std::move(*a), std::move(*b)};
}

std::optional<Bytes> openAll(RecordProtection& r, const Bytes& record) {
  Bytes out(record.size());
  auto o = r.open(record, out.data());
  if (!o) return std::nullopt;
  out.resize(o->length);
  return out;
}

Bytes sealed(RecordProtection& r, std::string_view text, std::uint8_t type = 23) {
  Bytes out;
  EXPECT_TRUE(r.seal(type, asBytes(text), out));
  return out;
}

class EveryAead : public ::testing::TestWithParam<Aead> {};

TEST_P(EveryAead, RoundTripsEverySizeAndType) {
  Pair p = makePair(GetParam());
  for (std::size_t size : {0u, 1u, 15u, 16u, 17u, 1163u, 16384u}) {
    Bytes plain(size);
    for (std::size_t i = 0; i < size; ++i) plain[i] = static_cast<std::uint8_t>(i * 31 + size);
    for (std::uint8_t type : {21, 22, 23}) {
      Bytes record;
      ASSERT_TRUE(p.a.seal(type, plain, record));
      ASSERT_EQ(record.size(), plain.size() + p.a.overhead());
      EXPECT_EQ(record[0], type);
      EXPECT_EQ(loadBe16(record.data() + 11), record.size() - kRecordHeaderSize);
      if (size >= 16) {  // no plaintext in the clear
        EXPECT_EQ(std::search(record.begin(), record.end(), plain.begin(), plain.end()), record.end());
      }
      Bytes out(record.size());
      auto o = p.b.open(record, out.data());
      ASSERT_TRUE(o) << "size " << size;
      EXPECT_EQ(o->type, type);
      EXPECT_EQ(Bytes(out.begin(), out.begin() + static_cast<std::ptrdiff_t>(o->length)), plain);
    }
  }
  Bytes tooBig(16385), record;
  EXPECT_FALSE(p.a.seal(23, tooBig, record));
  EXPECT_TRUE(record.empty());
}

TEST_P(EveryAead, ContinuesFromTheGivenSequence) {
  Pair p = makePair(GetParam(), RecordSequence{1, 1000, 77, 0}, RecordSequence{1, 0, 0, 999});
  const Bytes r = sealed(p.a, "x");
  EXPECT_EQ(loadBe16(r.data() + 3), 1);
  EXPECT_EQ(loadBe48(r.data() + 5), 1000u);
  if (GetParam() != Aead::ChaCha20Poly1305) {
    EXPECT_EQ(loadBe64(r.data() + kRecordHeaderSize), 77u);
  }
  EXPECT_TRUE(openAll(p.b, r));
  // The peer already accepted everything up to 999: a record numbered below is a replay.
  Pair q = makePair(GetParam(), RecordSequence{1, 999, 0, 0}, RecordSequence{1, 0, 0, 999});
  EXPECT_FALSE(openAll(q.b, sealed(q.a, "old")));
}

TEST_P(EveryAead, ReplayWindowAcceptsReorderingOnceAndRefusesTheRest) {
  Pair p = makePair(GetParam());
  std::vector<Bytes> records;
  for (int i = 0; i < 200; ++i) records.push_back(sealed(p.a, "m" + std::to_string(i)));
  EXPECT_TRUE(openAll(p.b, records[100]));
  EXPECT_FALSE(openAll(p.b, records[100]));  // replay
  EXPECT_TRUE(openAll(p.b, records[99]));    // reordered, inside the window
  EXPECT_TRUE(openAll(p.b, records[37]));    // 63 behind: the window's oldest slot
  EXPECT_FALSE(openAll(p.b, records[36]));   // 64 behind: too old
  EXPECT_FALSE(openAll(p.b, records[99]));
  EXPECT_TRUE(openAll(p.b, records[199]));   // a jump past the whole window
  EXPECT_FALSE(openAll(p.b, records[100]));
  EXPECT_TRUE(openAll(p.b, records[150]));
}

TEST_P(EveryAead, RefusesDamagedRecordsWithoutMovingTheWindow) {
  Pair p = makePair(GetParam());
  const Bytes good = sealed(p.a, "hello, world"), later = sealed(p.a, "later");
  for (std::size_t i = 0; i < good.size(); ++i) {
    Bytes bad = good;
    bad[i] ^= 0x80;
    EXPECT_FALSE(openAll(p.b, bad)) << "byte " << i;
  }
  EXPECT_FALSE(openAll(p.b, Bytes(good.begin(), good.end() - 1)));  // truncated
  Bytes longer = good;
  longer.push_back(0);
  EXPECT_FALSE(openAll(p.b, longer));
  EXPECT_FALSE(openAll(p.b, Bytes(good.begin(), good.begin() + 5)));
  EXPECT_FALSE(openAll(p.b, {}));
  // A forged record numbered far ahead must not push genuine ones out of the window.
  Bytes ahead = later;
  storeBe16(ahead.data() + 5, 0x7FFF);
  EXPECT_FALSE(openAll(p.b, ahead));
  auto got = openAll(p.b, good);
  ASSERT_TRUE(got);
  EXPECT_EQ(asString(*got), "hello, world");
  EXPECT_TRUE(openAll(p.b, later));
}

TEST_P(EveryAead, OtherEpochsAreRefused) {
  Pair p = makePair(GetParam(), RecordSequence{2, 0, 0, 0}, RecordSequence{1, 0, 0, 0});
  EXPECT_FALSE(openAll(p.b, sealed(p.a, "epoch 2")));
}

INSTANTIATE_TEST_SUITE_P(Aeads, EveryAead,
                         ::testing::Values(Aead::Aes128Gcm, Aead::Aes256Gcm, Aead::ChaCha20Poly1305),
                         [](const auto& p) {
                           switch (p.param) {
                             case Aead::Aes128Gcm: return "Aes128Gcm";
                             case Aead::Aes256Gcm: return "Aes256Gcm";
                             default: return "ChaCha20Poly1305";
                           }
                         });

TEST(RecordProtection, RejectsWrongKeySizes) {
  const Bytes k16(16), k32(32), iv4(4), iv12(12);
  EXPECT_FALSE(RecordProtection::create({Aead::Aes128Gcm, k32, iv4, k16, iv4}, {}).ok());
  EXPECT_FALSE(RecordProtection::create({Aead::Aes256Gcm, k32, iv12, k32, iv4}, {}).ok());
  EXPECT_FALSE(RecordProtection::create({Aead::ChaCha20Poly1305, k32, iv4, k32, iv4}, {}).ok());
  EXPECT_FALSE(RecordProtection::create({Aead::Aes128Gcm, k16, iv4, k16, iv4}, {1, std::uint64_t{1} << 48, 0, 0}).ok());
  EXPECT_TRUE(RecordProtection::create({Aead::ChaCha20Poly1305, k32, iv12, k32, iv12}, {}).ok());
}

TEST(RecordProtection, StopsBeforeTheSequenceNumberWraps) {
  const Bytes k(16), iv(4);
  auto r = RecordProtection::create({Aead::Aes128Gcm, k, iv, k, iv}, {1, (std::uint64_t{1} << 48) - 1, 0, 0});
  ASSERT_TRUE(r.ok());
  Bytes out;
  EXPECT_TRUE(r->seal(23, asBytes("last"), out));
  EXPECT_FALSE(r->seal(23, asBytes("one too many"), out));
}

}  // namespace
}  // namespace rtcpeer::dtls
