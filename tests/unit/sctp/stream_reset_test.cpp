// Stream reset (RFC 6525) as data channels use it: close = reset the outgoing stream, the peer resets its side,
// and the stream id can be reused with sequence numbers starting over.
#include <gtest/gtest.h>

#include "harness.hpp"
#include "sctp/packet/chunks.hpp"
#include "sctp/packet/parameters.hpp"

namespace rtcpeer::sctp {
namespace {

using testing::DirectPair;
using testing::forEachChunk;
using testing::payloadFor;
using testing::testOptions;

const StreamReset* find(const std::vector<StreamReset>& rs, bool incoming) {
  for (const auto& r : rs)
    if (r.incoming == incoming) return &r;
  return nullptr;
}

TEST(StreamReset, ResetAfterQueuedDataThenReuse) {
  for (std::uint64_t seed : {1, 2, 3, 4}) {
    DirectPair p(testOptions(), testOptions(), seed);
    ASSERT_TRUE(p.connect());
    SeededRandom loss(seed);
    p.drop = [&](bool, ByteView) { return loss.unit() < 0.2; };
    // Ordered messages on stream 3, then reset it while they are still queued.
    for (std::uint32_t i = 0; i < 20; ++i) ASSERT_TRUE(p.a.send(3, i, payloadFor(i, 3000), {}, p.now).ok());
    std::uint16_t s3 = 3;
    ASSERT_TRUE(p.a.resetStreams(std::span(&s3, 1), p.now).ok());
    EXPECT_FALSE(p.a.send(3, 99, asBytes("x"), {}, p.now).ok());  // closing: no new data
    ASSERT_TRUE(p.runUntil([&] { return find(p.resetsA, false) && find(p.resetsB, true); },
                           Duration(60'000'000)))
        << "seed " << seed;
    // Every message sent before the reset arrived, in order, before the peer saw the reset.
    ASSERT_EQ(p.messagesB.size(), 20u);
    for (std::uint32_t i = 0; i < 20; ++i) EXPECT_EQ(p.messagesB[i].ppid, i);
    auto* in = find(p.resetsB, true);
    ASSERT_EQ(in->streams.size(), 1u);
    EXPECT_EQ(in->streams[0], 3);
    EXPECT_FALSE(find(p.resetsA, false)->refused);
    EXPECT_FALSE(find(p.resetsB, false));
    // The peer closes its side too (RFC 8831 6.7), then the stream is reused: SSNs start at 0 again.
    ASSERT_TRUE(p.b.resetStreams(std::span(&s3, 1), p.now).ok());
    ASSERT_TRUE(p.runUntil([&] { return find(p.resetsA, true) != nullptr; },
                           Duration(60'000'000)));
    for (std::uint32_t i = 100; i < 110; ++i) ASSERT_TRUE(p.a.send(3, i, payloadFor(i, 500), {}, p.now).ok());
    ASSERT_TRUE(p.runUntil([&] { return p.messagesB.size() == 30; }, Duration(60'000'000)));
    for (std::uint32_t i = 0; i < 10; ++i) EXPECT_EQ(p.messagesB[20 + i].ppid, 100 + i);
    EXPECT_EQ(p.a.state(), State::Established);
  }
}

TEST(StreamReset, RejectedWithoutEstablishedAssociation) {
  DirectPair p;
  std::uint16_t s = 1;
  EXPECT_FALSE(p.a.resetStreams(std::span(&s, 1), p.now).ok());
  ASSERT_TRUE(p.connect());
  EXPECT_FALSE(p.a.resetStreams({}, p.now).ok());
  EXPECT_TRUE(p.a.resetStreams(std::span(&s, 1), p.now).ok());
}

// A refused request has no effect: a stream listed before the bad id is not left "being reset" (with no request
// ever sent for it, so send() on it failed for good). Found by fuzz_peer_connection.
TEST(StreamReset, RefusedRequestLeavesNoStreamResetting) {
  DirectPair p;
  ASSERT_TRUE(p.connect());
  // 0xFFFF is never a stream id: at most 65535 streams, ids 0..65534.
  const std::uint16_t streams[] = {1, 0xFFFF};
  EXPECT_FALSE(p.a.resetStreams(streams, p.now).ok());
  EXPECT_TRUE(p.a.send(1, 53, asBytes("still open"), {}, p.now).ok());
  ASSERT_TRUE(p.runUntil([&] { return p.messagesB.size() == 1; }, Duration(10'000'000)));
  EXPECT_TRUE(p.resetsB.empty());
}

TEST(StreamReset, ManyStreamsAndSeveralRequestsInSequence) {
  DirectPair p;
  ASSERT_TRUE(p.connect());
  std::vector<std::uint16_t> first = {1, 2, 3}, second = {4, 5};
  for (auto s : first) ASSERT_TRUE(p.a.send(s, s, asBytes("a"), {}, p.now).ok());
  ASSERT_TRUE(p.a.resetStreams(first, p.now).ok());
  p.flush();  // the first request goes out once the queued data is sent
  ASSERT_TRUE(p.a.resetStreams(second, p.now).ok());  // waits for, or joins, the outstanding request
  std::set<std::uint16_t> reset;
  ASSERT_TRUE(p.runUntil(
      [&] {
        reset.clear();
        for (auto& r : p.resetsB)
          if (r.incoming) reset.insert(r.streams.begin(), r.streams.end());
        return reset.size() == 5;
      },
      Duration(10'000'000)));
  EXPECT_EQ(p.messagesB.size(), 3u);
}


// --- Incoming SSN Reset Requests (RFC 6525 4.2, 5.2.3) --------------------------------------------------------
// rtcpeer never sends one, so the tests forge them as if from B: A's verification tag and B's request sequence
// number (B's initial TSN, 4.1) are read off B's packets.

struct ReconfigSeen {
  std::vector<std::pair<std::uint32_t, std::uint32_t>> responses;  // (response seq, result)
  struct Request {
    std::uint32_t requestSeq, responseSeq;
    std::vector<std::uint16_t> streams;
  };
  std::vector<Request> outgoingRequests;
};

void recordReconfig(ByteView packet, ReconfigSeen& seen) {
  forEachChunk(packet, [&](const RawChunk& c) {
    if (c.type != ChunkType::kReConfig) return;
    auto rc = ReConfigChunk::parse(c);
    ASSERT_TRUE(rc.ok());
    TlvIterator it(rc->params);
    Tlv t;
    while (it.next(t)) {
      if (t.type == ParamType::kReconfigResponse) {
        auto r = ReconfigResponse::parse(t.value);
        ASSERT_TRUE(r.ok());
        seen.responses.emplace_back(r->responseSeq, r->result);
      } else if (t.type == ParamType::kOutgoingResetRequest) {
        auto r = OutgoingResetRequest::parse(t.value);
        ASSERT_TRUE(r.ok());
        ReconfigSeen::Request q{r->requestSeq, r->responseSeq, {}};
        for (std::size_t i = 0; i < r->streamCount(); ++i) q.streams.push_back(r->stream(i));
        seen.outgoingRequests.push_back(std::move(q));
      }
    }
  });
}

class IncomingRequest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(p.connect());
    p.drop = [&](bool aToB, ByteView pkt) {
      if (aToB) {
        recordReconfig(pkt, fromA);
        return false;
      }
      CommonHeader h;
      if (parseCommonHeader(pkt, h, false).ok()) tagOfA = h.verificationTag;
      forEachChunk(pkt, [&](const RawChunk& c) {
        if (c.type != ChunkType::kData || bInitialTsn) return;
        if (auto d = DataChunk::parse(c)) bInitialTsn = d->tsn;
      });
      return false;
    };
    // A uses streams 1 and 2 (their SSNs move on); B sends once so its first TSN shows.
    for (std::uint32_t i = 0; i < 3; ++i) {
      ASSERT_TRUE(p.a.send(1, i, payloadFor(i, 100), {}, p.now).ok());
      ASSERT_TRUE(p.a.send(2, 10 + i, payloadFor(10 + i, 100), {}, p.now).ok());
    }
    ASSERT_TRUE(p.b.send(7, 500, asBytes("b"), {}, p.now).ok());
    ASSERT_TRUE(p.runUntil([&] { return p.messagesB.size() == 6 && p.messagesA.size() == 1; }, Duration(5'000'000)));
    ASSERT_TRUE(bInitialTsn.has_value());
  }

  /// Delivers a RE-CONFIG chunk with the given parameters to A as if B had sent it.
  void inject(const std::function<void(SpanWriter&)>& params) {
    Bytes buf(1200);
    PacketBuilder b(buf, 5000, 5000, tagOfA);
    std::size_t at = beginChunk(b.writer(), ChunkType::kReConfig, 0);
    params(b.writer());
    endChunk(b.writer(), at);
    ByteView pkt = b.finish(true);
    Bytes copy(pkt.begin(), pkt.end());
    p.a.handleInput(copy, p.now);
  }
  void injectIncoming(std::uint32_t seq, std::vector<std::uint16_t> streams) {
    inject([&](SpanWriter& w) { IncomingResetRequest::write(w, seq, streams); });
  }
  std::optional<std::uint32_t> resultFor(std::uint32_t seq) const {
    for (auto [s, r] : fromA.responses)
      if (s == seq) return r;
    return std::nullopt;
  }

  DirectPair p;
  std::uint32_t tagOfA = 0;
  std::optional<std::uint32_t> bInitialTsn;
  ReconfigSeen fromA;
};

TEST_F(IncomingRequest, AnsweredByResettingOurOutgoingStreams) {
  const std::uint32_t seq = *bInitialTsn;  // B's first request
  injectIncoming(seq, {1, 2});
  EXPECT_FALSE(p.a.send(1, 99, asBytes("x"), {}, p.now).ok());  // being reset at the peer's request
  ASSERT_TRUE(p.runUntil([&] { return find(p.resetsA, false) && find(p.resetsB, true); }, Duration(5'000'000)));
  // A's Outgoing SSN Reset Request is the response: its response sequence number is the incoming request's.
  ASSERT_EQ(fromA.outgoingRequests.size(), 1u);
  EXPECT_EQ(fromA.outgoingRequests[0].responseSeq, seq);
  EXPECT_EQ(fromA.outgoingRequests[0].streams, (std::vector<std::uint16_t>{1, 2}));
  EXPECT_FALSE(resultFor(seq).has_value());  // no separate Re-configuration Response
  EXPECT_EQ(find(p.resetsA, false)->streams, (std::vector<std::uint16_t>{1, 2}));
  EXPECT_FALSE(find(p.resetsA, false)->refused);
  EXPECT_EQ(find(p.resetsB, true)->streams, (std::vector<std::uint16_t>{1, 2}));
  // A retransmission of the request is not answered again (the request of A already answered it).
  injectIncoming(seq, {1, 2});
  p.flush();
  EXPECT_EQ(fromA.outgoingRequests.size(), 1u);
  EXPECT_FALSE(resultFor(seq).has_value());
  // The streams start over at SSN 0: B delivers the new messages (it would hold SSN 3 forever otherwise).
  for (std::uint32_t i = 20; i < 23; ++i) ASSERT_TRUE(p.a.send(1, i, payloadFor(i, 100), {}, p.now).ok());
  ASSERT_TRUE(p.runUntil([&] { return p.messagesB.size() == 9; }, Duration(5'000'000)));
  for (std::uint32_t i = 0; i < 3; ++i) EXPECT_EQ(p.messagesB[6 + i].ppid, 20 + i);
  EXPECT_EQ(p.a.state(), State::Established);
}

TEST_F(IncomingRequest, AllStreamsWaitsForQueuedData) {
  // Queued data on stream 1 is sent before the reset (the request names A's last TSN).
  for (std::uint32_t i = 30; i < 40; ++i) ASSERT_TRUE(p.a.send(1, i, payloadFor(i, 2000), {}, p.now).ok());
  injectIncoming(*bInitialTsn, {});  // every stream
  ASSERT_TRUE(p.runUntil([&] { return find(p.resetsB, true) != nullptr; }, Duration(5'000'000)));
  ASSERT_EQ(p.messagesB.size(), 16u);
  for (std::uint32_t i = 0; i < 10; ++i) EXPECT_EQ(p.messagesB[6 + i].ppid, 30 + i);
  ASSERT_EQ(fromA.outgoingRequests.size(), 1u);
  std::set<std::uint16_t> named(fromA.outgoingRequests[0].streams.begin(), fromA.outgoingRequests[0].streams.end());
  EXPECT_EQ(named, (std::set<std::uint16_t>{1, 2}));  // the streams A has sequence numbers on
  EXPECT_EQ(fromA.outgoingRequests[0].responseSeq, *bInitialTsn);
}

TEST_F(IncomingRequest, ResultCodes) {
  std::uint32_t seq = *bInitialTsn;
  injectIncoming(seq + 5, {1});  // not the next sequence number
  p.flush();
  EXPECT_EQ(resultFor(seq + 5), ReconfigResponse::kErrorBadSeq);
  ASSERT_EQ(p.a.outboundStreams(), 65535);
  injectIncoming(seq, {1, 65535});  // 65535 is beyond A's streams (ids 0..65534)
  p.flush();
  EXPECT_EQ(resultFor(seq), ReconfigResponse::kDenied);
  // A request type we do not perform is denied and consumes its sequence number: the next one is accepted.
  inject([&](SpanWriter& w) {
    std::size_t at = beginTlv(w, ParamType::kSsnTsnResetRequest);
    w.u32(seq + 1);
    endTlv(w, at);
  });
  p.flush();
  EXPECT_EQ(resultFor(seq + 1), ReconfigResponse::kDenied);
  injectIncoming(seq + 2, {5});  // a stream A never used: nothing to reset is still a reset of it
  ASSERT_TRUE(p.runUntil([&] { return find(p.resetsA, false) != nullptr; }, Duration(5'000'000)));
  ASSERT_EQ(fromA.outgoingRequests.size(), 1u);
  EXPECT_EQ(fromA.outgoingRequests[0].responseSeq, seq + 2);
  // While A's own request for stream 2 is in flight (B's answers are dropped), a request for stream 2 is "in
  // progress" (result 4); the reset completes once B answers.
  bool holdB = true;
  auto record = p.drop;
  p.drop = [&](bool aToB, ByteView pkt) { return record(aToB, pkt) || (!aToB && holdB); };
  std::uint16_t s2 = 2;
  ASSERT_TRUE(p.a.resetStreams(std::span(&s2, 1), p.now).ok());
  p.flush();
  injectIncoming(seq + 3, {2});
  p.flush();
  EXPECT_EQ(resultFor(seq + 3), ReconfigResponse::kErrorInProgress);
  holdB = false;
  ASSERT_TRUE(p.runUntil([&] { return p.resetsA.size() == 2; }, Duration(5'000'000)));
  EXPECT_EQ(p.resetsA[1].streams, std::vector<std::uint16_t>{2});
  EXPECT_EQ(p.a.state(), State::Established);
}

// Closing a channel the peer closed (RFC 8831 6.7): our response to its reset and our own reset request for the
// same stream leave in one RE-CONFIG chunk, Response first (RFC 6525 3.1), so a peer that frees the stream id on
// our response cannot reuse it before our request arrives (werift closed its new channel on that late request).
TEST(StreamReset, ResponseAndOurRequestShareOneChunk) {
  DirectPair p;
  ASSERT_TRUE(p.connect());
  const std::uint16_t s1 = 1;
  ASSERT_TRUE(p.a.send(1, 1, asBytes("a"), {}, p.now).ok());
  ASSERT_TRUE(p.b.send(1, 2, asBytes("b"), {}, p.now).ok());
  p.flush();
  ASSERT_TRUE(p.b.resetStreams(std::span(&s1, 1), p.now).ok());
  while (auto pkt = p.b.pollTransmit(p.now)) {
    Bytes copy(pkt->begin(), pkt->end());
    p.a.handleInput(copy, p.now);
  }
  auto incoming = p.a.pollStreamReset();
  ASSERT_TRUE(incoming && incoming->incoming);
  ASSERT_TRUE(p.a.resetStreams(std::span(&s1, 1), p.now).ok());  // what the data channel layer does
  std::vector<std::vector<std::uint16_t>> reconfigs;  // parameter types of each RE-CONFIG chunk
  while (auto pkt = p.a.pollTransmit(p.now)) {
    forEachChunk(*pkt, [&](const RawChunk& c) {
      if (c.type != ChunkType::kReConfig) return;
      auto rc = ReConfigChunk::parse(c);
      ASSERT_TRUE(rc.ok());
      std::vector<std::uint16_t> types;
      TlvIterator it(rc->params);
      for (Tlv t; it.next(t);) types.push_back(t.type);
      reconfigs.push_back(types);
    });
    Bytes copy(pkt->begin(), pkt->end());
    p.b.handleInput(copy, p.now);
  }
  ASSERT_EQ(reconfigs.size(), 1u);
  EXPECT_EQ(reconfigs[0], (std::vector<std::uint16_t>{ParamType::kReconfigResponse, ParamType::kOutgoingResetRequest}));
  // Both directions complete, and the stream carries data again from sequence number 0.
  p.drain();
  ASSERT_TRUE(p.runUntil([&] { return find(p.resetsA, false) && find(p.resetsB, false) && find(p.resetsB, true); },
                         Duration(10'000'000)));
  EXPECT_FALSE(find(p.resetsA, false)->refused);
  EXPECT_FALSE(find(p.resetsB, false)->refused);
  ASSERT_TRUE(p.b.send(1, 3, asBytes("again"), {}, p.now).ok());
  ASSERT_TRUE(p.runUntil([&] { return !p.messagesA.empty() && p.messagesA.back().ppid == 3; }, Duration(10'000'000)));
  EXPECT_EQ(p.a.state(), State::Established);
}

}  // namespace
}  // namespace rtcpeer::sctp
