#include <gtest/gtest.h>

#include <array>

#include "common/random.hpp"
#include "sctp/packet/chunks.hpp"
#include "sctp/packet/crc32c.hpp"
#include "sctp/packet/parameters.hpp"
#include "sctp/state_cookie.hpp"

namespace rtcpeer::sctp {
namespace {

// RFC 3720 appendix B.4 test vectors.
TEST(Crc32c, Rfc3720Vectors) {
  std::array<std::uint8_t, 32> buf{};
  EXPECT_EQ(crc32c(buf), 0x8A9136AAu);
  EXPECT_EQ(crc32cPortable(buf), 0x8A9136AAu);
  buf.fill(0xFF);
  EXPECT_EQ(crc32c(buf), 0x62A8AB43u);
  for (int i = 0; i < 32; ++i) buf[i] = static_cast<std::uint8_t>(i);
  EXPECT_EQ(crc32c(buf), 0x46DD794Eu);
  for (int i = 0; i < 32; ++i) buf[i] = static_cast<std::uint8_t>(31 - i);
  EXPECT_EQ(crc32c(buf), 0x113FDB5Cu);
  const std::uint8_t iscsi[48] = {0x01, 0xc0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x14, 0, 0, 0, 0, 0, 0x04, 0,
                                  0, 0, 0, 0x14, 0, 0, 0, 0x18, 0x28, 0, 0, 0, 0, 0, 0, 0, 0x02, 0, 0, 0, 0, 0, 0, 0};
  EXPECT_EQ(crc32c(ByteView(iscsi, 48)), 0xD9963A56u);
  EXPECT_EQ(crc32cPortable(ByteView(iscsi, 48)), 0xD9963A56u);
  EXPECT_EQ(crc32c(asBytes("123456789")), 0xE3069283u);
}

TEST(Crc32c, HardwareMatchesPortableAndExtendComposes) {
  SeededRandom rng(7);
  Bytes data(3008);
  rng.fill(data);
  // Lengths around the hardware path's 3 x 128-byte interleaving.
  for (std::size_t len : {0u, 1u, 7u, 8u, 9u, 63u, 383u, 384u, 385u, 392u, 767u, 768u, 1000u, 1160u, 2999u, 3000u}) {
    ByteView v(data.data() + (len % 5), len);  // odd offsets: unaligned loads
    EXPECT_EQ(crc32c(v), crc32cPortable(v)) << len;
    std::size_t cut = v.size() / 3;
    EXPECT_EQ(crc32cExtend(crc32c(v.first(cut)), v.subspan(cut)), crc32c(v)) << len;
  }
}

Bytes buildPacket(std::uint32_t vtag, auto&& writeChunks) {
  Bytes buf(1200);
  PacketBuilder b(buf, 5000, 5001, vtag);
  writeChunks(b.writer());
  ByteView p = b.finish();
  return Bytes(p.begin(), p.end());
}

TEST(Packet, HeaderChecksumAndChunkIteration) {
  Bytes payload = {1, 2, 3, 4, 5};
  Bytes pkt = buildPacket(0xAABBCCDD, [&](SpanWriter& w) {
    DataChunk{100, 7, 3, 0, 51, DataChunk::kBeginning | DataChunk::kEnding, payload}.write(w, false);
    writeEmptyChunk(w, ChunkType::kCookieAck);
  });
  EXPECT_EQ(pkt.size() % 4, 0u);
  CommonHeader h;
  ASSERT_TRUE(parseCommonHeader(pkt, h, true).ok());
  EXPECT_EQ(h.srcPort, 5000);
  EXPECT_EQ(h.dstPort, 5001);
  EXPECT_EQ(h.verificationTag, 0xAABBCCDDu);
  ChunkIterator it(pkt);
  RawChunk c;
  ASSERT_TRUE(it.next(c));
  auto d = DataChunk::parse(c);
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(d->tsn, 100u);
  EXPECT_EQ(d->stream, 7);
  EXPECT_EQ(d->mid, 3u);
  EXPECT_EQ(d->ppid, 51u);
  EXPECT_TRUE(d->beginning() && d->ending() && !d->unordered());
  EXPECT_EQ(Bytes(d->payload.begin(), d->payload.end()), payload);
  ASSERT_TRUE(it.next(c));
  EXPECT_EQ(c.type, ChunkType::kCookieAck);
  EXPECT_FALSE(it.next(c));
  EXPECT_FALSE(it.malformed());

  pkt[20] ^= 1;
  EXPECT_FALSE(parseCommonHeader(pkt, h, true).ok());
  EXPECT_TRUE(parseCommonHeader(pkt, h, false).ok());
}

TEST(Packet, MalformedFramingIsReported) {
  Bytes pkt = buildPacket(1, [](SpanWriter& w) { writeEmptyChunk(w, ChunkType::kCookieAck); });
  storeBe16(pkt.data() + 14, 200);  // chunk length beyond the packet
  ChunkIterator it(pkt);
  RawChunk c;
  EXPECT_FALSE(it.next(c));
  EXPECT_TRUE(it.malformed());
  storeBe16(pkt.data() + 14, 2);  // shorter than a chunk header
  ChunkIterator it2(pkt);
  EXPECT_FALSE(it2.next(c));
  EXPECT_TRUE(it2.malformed());
  CommonHeader h;
  EXPECT_FALSE(parseCommonHeader(ByteView(pkt.data(), 11), h, false).ok());
}

TEST(Packet, IDataRoundTrip) {
  Bytes payload(100, 0x5A);
  for (bool first : {true, false}) {
    Bytes pkt = buildPacket(1, [&](SpanWriter& w) {
      DataChunk{9, 2, 77, 5, 99, static_cast<std::uint8_t>(first ? DataChunk::kBeginning : DataChunk::kEnding),
                payload}
          .write(w, true);
    });
    ChunkIterator it(pkt);
    RawChunk c;
    ASSERT_TRUE(it.next(c));
    EXPECT_EQ(c.type, ChunkType::kIData);
    auto d = DataChunk::parse(c);
    ASSERT_TRUE(d.ok());
    EXPECT_EQ(d->mid, 77u);
    if (first) EXPECT_EQ(d->ppid, 99u);
    else EXPECT_EQ(d->fsn, 5u);
    EXPECT_EQ(d->payload.size(), 100u);
  }
}

TEST(Packet, DataWithoutPayloadIsRejected) {
  Bytes pkt = buildPacket(1, [](SpanWriter& w) {
    std::size_t at = beginChunk(w, ChunkType::kData, 3);
    w.zeros(12);
    endChunk(w, at);
  });
  ChunkIterator it(pkt);
  RawChunk c;
  ASSERT_TRUE(it.next(c));
  auto d = DataChunk::parse(c);
  ASSERT_FALSE(d.ok());
  EXPECT_EQ(d.failure().code, CauseCode::kNoUserData);
}

TEST(Packet, SackRoundTrip) {
  std::vector<GapBlock> gaps = {{2, 3}, {5, 9}};
  std::vector<std::uint32_t> dups = {10, 11, 12};
  Bytes pkt = buildPacket(1, [&](SpanWriter& w) { SackChunk::write(w, 1000, 65536, gaps, dups); });
  ChunkIterator it(pkt);
  RawChunk c;
  ASSERT_TRUE(it.next(c));
  auto s = SackChunk::parse(c);
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s->cumTsnAck, 1000u);
  EXPECT_EQ(s->arwnd, 65536u);
  ASSERT_EQ(s->gapCount(), 2u);
  EXPECT_EQ(s->gap(1).start, 5);
  EXPECT_EQ(s->gap(1).end, 9);
  ASSERT_EQ(s->dupCount(), 3u);
  EXPECT_EQ(s->dup(2), 12u);
  // A gap count larger than the chunk is a truncation error, not an overread.
  storeBe16(pkt.data() + 12 + 12, 50);
  ChunkIterator it2(pkt);
  ASSERT_TRUE(it2.next(c));
  EXPECT_FALSE(SackChunk::parse(c).ok());
}

TEST(Packet, InitParamsAndUnknownParameterRules) {
  Bytes pkt = buildPacket(0, [](SpanWriter& w) {
    InitChunk init{0x1234, 1 << 20, 100, 200, 42, {}};
    std::size_t at = init.writeBegin(w, false);
    writeCapabilityParams(w, true, true);
    writeTlv(w, 0xC123, asBytes("skip+report"));  // 11: skip and report
    writeTlv(w, 0x8123, asBytes("skip"));         // 10: skip silently
    writeTlv(w, 0x4123, asBytes("stop+report"));  // 01: stop and report
    writeTlv(w, ParamType::kForwardTsnSupported, {});
    endChunk(w, at);
  });
  ChunkIterator it(pkt);
  RawChunk c;
  ASSERT_TRUE(it.next(c));
  auto init = InitChunk::parse(c);
  ASSERT_TRUE(init.ok());
  EXPECT_EQ(init->initiateTag, 0x1234u);
  EXPECT_EQ(init->outStreams, 100);
  EXPECT_EQ(init->inStreams, 200);
  Bytes report;
  auto p = parseInitParams(init->params, &report);
  ASSERT_TRUE(p.ok());
  EXPECT_TRUE(p->idata);
  EXPECT_TRUE(p->reconfig);
  EXPECT_TRUE(p->forwardTsn);
  EXPECT_EQ(p->zeroChecksumEdmid, kEdmidDtls);
  EXPECT_EQ(p->unrecognizedToReport, 2u);  // 0xC123 and 0x4123; processing stopped after 0x4123
  TlvIterator rit(report);
  Tlv t;
  ASSERT_TRUE(rit.next(t));
  EXPECT_EQ(t.type, ParamType::kUnrecognizedParameter);
  EXPECT_EQ(loadBe16(t.value.data()), 0xC123);
}

TEST(Packet, InvalidInitIsRejected) {
  for (auto mutate : {0, 1, 2}) {
    Bytes pkt = buildPacket(0, [&](SpanWriter& w) {
      InitChunk init{mutate == 0 ? 0u : 5u, mutate == 1 ? 100u : 5000u, static_cast<std::uint16_t>(mutate == 2 ? 0 : 1),
                     1, 1, {}};
      endChunk(w, init.writeBegin(w, false));
    });
    ChunkIterator it(pkt);
    RawChunk c;
    ASSERT_TRUE(it.next(c));
    EXPECT_FALSE(InitChunk::parse(c).ok()) << mutate;
  }
}

TEST(Packet, ForwardTsnRoundTrip) {
  std::vector<ForwardTsnChunk::Skip> skips = {{1, false, 5}, {3, true, 70000}};
  for (bool idata : {false, true}) {
    Bytes pkt = buildPacket(1, [&](SpanWriter& w) { ForwardTsnChunk::write(w, idata, 555, skips); });
    ChunkIterator it(pkt);
    RawChunk c;
    ASSERT_TRUE(it.next(c));
    auto f = ForwardTsnChunk::parse(c);
    ASSERT_TRUE(f.ok());
    EXPECT_EQ(f->newCumTsn, 555u);
    ASSERT_EQ(f->count(), 2u);
    EXPECT_EQ(f->entry(1).stream, 3);
    EXPECT_EQ(f->entry(1).mid, idata ? 70000u : (70000u & 0xFFFF));
    EXPECT_EQ(f->entry(1).unordered, idata);
  }
}

TEST(Packet, ReconfigParameters) {
  Bytes buf(200);
  SpanWriter w(buf);
  std::vector<std::uint16_t> streams = {1, 4, 9};
  OutgoingResetRequest::write(w, 10, 20, 30, streams);
  ReconfigResponse::write(w, 10, ReconfigResponse::kSuccessPerformed);
  TlvIterator it(w.written());
  Tlv t;
  ASSERT_TRUE(it.next(t));
  auto o = OutgoingResetRequest::parse(t.value);
  ASSERT_TRUE(o.ok());
  EXPECT_EQ(o->senderLastTsn, 30u);
  ASSERT_EQ(o->streamCount(), 3u);
  EXPECT_EQ(o->stream(2), 9);
  ASSERT_TRUE(it.next(t));
  auto r = ReconfigResponse::parse(t.value);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->result, ReconfigResponse::kSuccessPerformed);
  EXPECT_FALSE(r->senderNextTsn);
}

TEST(Packet, UnknownChunkActions) {
  EXPECT_TRUE(unknownChunkAction(0x3F).stop);
  EXPECT_FALSE(unknownChunkAction(0x3F).report);
  EXPECT_TRUE(unknownChunkAction(0x7F).stop);
  EXPECT_TRUE(unknownChunkAction(0x7F).report);
  EXPECT_FALSE(unknownChunkAction(0xBF).stop);
  EXPECT_FALSE(unknownChunkAction(0xBF).report);
  EXPECT_FALSE(unknownChunkAction(0xFF).stop);
  EXPECT_TRUE(unknownChunkAction(0xFF).report);
}

TEST(Packet, CausesAreDescribed) {
  Bytes buf(100);
  SpanWriter w(buf);
  writeCause(w, CauseCode::kUserInitiatedAbort, asBytes("bye"));
  writeCause(w, CauseCode::kStaleCookie, Bytes(4));
  EXPECT_EQ(describeCauses(w.written()), "User-Initiated Abort: bye; Stale Cookie Error");
}

TEST(StateCookie, RoundTripTamperAndLifetime) {
  std::uint8_t key[32] = {1, 2, 3};
  CookieState s;
  s.localTag = 1;
  s.peerTag = 2;
  s.peerArwnd = 3000;
  s.peerIData = true;
  s.createdUs = 1'000'000;
  Bytes buf(kCookieSize);
  SpanWriter w(buf);
  encodeCookie(s, key, w);
  ASSERT_EQ(w.size(), kCookieSize);
  auto d = decodeCookie(buf, key, fromMicros(2'000'000), Duration(60'000'000));
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(d->peerTag, 2u);
  EXPECT_TRUE(d->peerIData);
  EXPECT_FALSE(d->peerForwardTsn);
  auto stale = decodeCookie(buf, key, fromMicros(100'000'000), Duration(60'000'000));
  ASSERT_FALSE(stale.ok());
  EXPECT_EQ(stale.failure().code, CauseCode::kStaleCookie);
  buf[4] ^= 1;
  EXPECT_FALSE(decodeCookie(buf, key, fromMicros(2'000'000), Duration(60'000'000)).ok());
}

}  // namespace
}  // namespace rtcpeer::sctp
