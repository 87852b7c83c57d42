// Reassembly alone: DATA (RFC 9260 6.5, 6.6, 6.9) and I-DATA (RFC 8260) fragments into messages, in order per
// stream or unordered, fragments and messages arriving out of order, SSN/MID wrap-around, messages abandoned by
// FORWARD-TSN / I-FORWARD-TSN (RFC 3758 3.6, RFC 8260 2.3), stream resets, the message size limit and the bytes
// held (what a_rwnd subtracts).
#include <gtest/gtest.h>

#include <cstdint>
#include <string>
#include <vector>

#include "sctp/packet/chunks.hpp"
#include "sctp/packet/packet.hpp"
#include "sctp/rx/reassembly.hpp"

namespace rtcpeer::sctp {
namespace {

constexpr std::uint8_t B = DataChunk::kBeginning, E = DataChunk::kEnding, U = DataChunk::kUnordered;
constexpr std::uint8_t BE = B | E;

struct Chunk {
  std::uint32_t tsn = 0;
  std::uint16_t stream = 0;
  std::uint32_t mid = 0;  // SSN for DATA
  std::uint32_t fsn = 0;  // I-DATA only
  std::uint8_t flags = BE;
  std::string payload;
  std::uint32_t ppid = 51;
};

// Feeds chunks as the association does: unwrapped TSN, DATA or I-DATA.
class Rx {
 public:
  explicit Rx(bool idata, std::size_t maxMessageSize = 1 << 16) : idata_(idata), r_(maxMessageSize) {}

  Status add(const Chunk& c) {
    DataChunk d;
    d.tsn = c.tsn;
    d.stream = c.stream;
    d.mid = c.mid;
    d.fsn = c.fsn;
    d.ppid = c.ppid;
    d.flags = c.flags;
    d.payload = asBytes(c.payload);
    return r_.add(d, (1ull << 32) + c.tsn, idata_);
  }
  void addAll(const std::vector<Chunk>& cs) {
    for (const auto& c : cs) ASSERT_TRUE(add(c).ok());
  }
  // The payloads delivered so far, "stream:payload" each.
  std::vector<std::string> drain() {
    std::vector<std::string> out;
    while (auto m = r_.pop()) out.push_back(std::to_string(m->stream) + ":" + std::string(asString(m->payload)));
    return out;
  }
  void forward(std::uint32_t newCum, std::vector<ForwardTsnChunk::Skip> skips) {
    Bytes buf(1024);
    SpanWriter w(buf);
    ForwardTsnChunk::write(w, idata_, newCum, skips);
    ASSERT_TRUE(w.ok());
    const ByteView out = w.written();
    auto f = ForwardTsnChunk::parse(RawChunk{out[0], out[1], out.subspan(4)});
    ASSERT_TRUE(f.ok());
    r_.skip((1ull << 32) + newCum, *f);
  }
  Reassembly& r() { return r_; }

 private:
  bool idata_;
  Reassembly r_;
};

using Out = std::vector<std::string>;

// ---- DATA --------------------------------------------------------------------------------------------------------

TEST(ReassemblyData, OrderedMessagesWaitForTheirPredecessor) {
  Rx rx(false);
  rx.addAll({{.tsn = 1, .stream = 1, .mid = 0, .payload = "a"}});
  EXPECT_EQ(rx.drain(), (Out{"1:a"}));
  // SSN 2 overtook SSN 1 (it was sent later, under a later TSN, but SSN 1 was lost once).
  rx.addAll({{.tsn = 3, .stream = 1, .mid = 2, .payload = "c"}});
  EXPECT_FALSE(rx.r().hasMessages());
  EXPECT_EQ(rx.r().bufferedBytes(), 1u + Reassembly::kOverhead);  // the payload plus one held message's cost
  rx.addAll({{.tsn = 2, .stream = 1, .mid = 1, .payload = "b"}});
  EXPECT_EQ(rx.drain(), (Out{"1:b", "1:c"}));
  EXPECT_EQ(rx.r().bufferedBytes(), 0u);
}

TEST(ReassemblyData, StreamsAreIndependent) {
  Rx rx(false);
  rx.addAll({{.tsn = 2, .stream = 1, .mid = 1, .payload = "s1m1"},
             {.tsn = 3, .stream = 2, .mid = 0, .payload = "s2m0"}});
  // Stream 1 waits for its SSN 0; stream 2 does not wait for stream 1.
  EXPECT_EQ(rx.drain(), (Out{"2:s2m0"}));
  rx.addAll({{.tsn = 1, .stream = 1, .mid = 0, .payload = "s1m0"}});
  EXPECT_EQ(rx.drain(), (Out{"1:s1m0", "1:s1m1"}));
}

TEST(ReassemblyData, UnorderedMessagesSkipTheQueue) {
  Rx rx(false);
  rx.addAll({{.tsn = 2, .stream = 0, .mid = 1, .payload = "ordered"},
             {.tsn = 3, .stream = 0, .mid = 0, .flags = BE | U, .payload = "unordered"}});
  EXPECT_EQ(rx.drain(), (Out{"0:unordered"}));
  rx.addAll({{.tsn = 1, .stream = 0, .mid = 0, .payload = "first"}});
  EXPECT_EQ(rx.drain(), (Out{"0:first", "0:ordered"}));
}

TEST(ReassemblyData, FragmentsInAnyOrder) {
  for (const auto& order : {std::vector<int>{0, 1, 2, 3}, {3, 2, 1, 0}, {2, 0, 3, 1}, {1, 3, 0, 2}}) {
    Rx rx(false);
    const std::vector<Chunk> frags = {{.tsn = 10, .stream = 4, .mid = 0, .flags = B, .payload = "he"},
                                      {.tsn = 11, .stream = 4, .mid = 0, .flags = 0, .payload = "ll"},
                                      {.tsn = 12, .stream = 4, .mid = 0, .flags = 0, .payload = "o "},
                                      {.tsn = 13, .stream = 4, .mid = 0, .flags = E, .payload = "world"}};
    for (std::size_t i = 0; i < order.size(); ++i) {
      ASSERT_TRUE(rx.add(frags[static_cast<std::size_t>(order[i])]).ok());
      if (i + 1 < order.size()) {
        EXPECT_FALSE(rx.r().hasMessages());
      }
    }
    EXPECT_EQ(rx.drain(), (Out{"4:hello world"})) << order[0] << order[1] << order[2] << order[3];
    EXPECT_EQ(rx.r().bufferedBytes(), 0u);
  }
}

TEST(ReassemblyData, AdjacentMessagesAreNotJoined) {
  Rx rx(false);
  // Two two-fragment messages with consecutive TSNs, the first's end and the second's start arriving first.
  rx.addAll({{.tsn = 2, .stream = 1, .mid = 0, .flags = E, .payload = "A2"},
             {.tsn = 3, .stream = 1, .mid = 1, .flags = B, .payload = "B1"},
             {.tsn = 1, .stream = 1, .mid = 0, .flags = B, .payload = "A1"}});
  EXPECT_EQ(rx.drain(), (Out{"1:A1A2"}));
  rx.addAll({{.tsn = 4, .stream = 1, .mid = 1, .flags = E, .payload = "B2"}});
  EXPECT_EQ(rx.drain(), (Out{"1:B1B2"}));
}

TEST(ReassemblyData, SsnWrapsAround) {
  Rx rx(false);
  // Move stream 7 to SSN 65534 the way FORWARD-TSNs do (each skip less than half the SSN space ahead; one
  // further ahead reads as an old SSN and is ignored).
  rx.forward(0, {{.stream = 7, .mid = 65533}});
  rx.addAll({{.tsn = 1, .stream = 7, .mid = 0, .payload = "0"}});
  EXPECT_EQ(rx.drain(), (Out{"7:0"}));
  for (std::uint32_t ssn : {30000u, 60000u, 65533u}) rx.forward(0, {{.stream = 7, .mid = ssn}});
  rx.addAll({{.tsn = 2, .stream = 7, .mid = 65534, .payload = "a"},
             {.tsn = 5, .stream = 7, .mid = 1, .payload = "d"},
             {.tsn = 3, .stream = 7, .mid = 65535, .payload = "b"}});
  EXPECT_EQ(rx.drain(), (Out{"7:a", "7:b"}));
  rx.addAll({{.tsn = 4, .stream = 7, .mid = 0, .payload = "c"}});
  EXPECT_EQ(rx.drain(), (Out{"7:c", "7:d"}));
}

TEST(ReassemblyData, ForwardTsnDropsAbandonedFragmentsAndReleasesLaterMessages) {
  Rx rx(false);
  // SSN 0 lost its last fragment and was abandoned by the sender; SSN 1 is complete and waits behind it.
  rx.addAll({{.tsn = 1, .stream = 2, .mid = 0, .flags = B, .payload = "lost-"},
             {.tsn = 3, .stream = 2, .mid = 1, .payload = "kept"}});
  EXPECT_FALSE(rx.r().hasMessages());
  EXPECT_EQ(rx.r().bufferedBytes(), 9u + 2 * Reassembly::kOverhead);  // two held pieces
  rx.forward(2, {{.stream = 2, .mid = 0}});
  EXPECT_EQ(rx.drain(), (Out{"2:kept"}));
  EXPECT_EQ(rx.r().bufferedBytes(), 0u);
  // The stream goes on at SSN 2.
  rx.addAll({{.tsn = 4, .stream = 2, .mid = 2, .payload = "next"}});
  EXPECT_EQ(rx.drain(), (Out{"2:next"}));
}

TEST(ReassemblyData, ForwardTsnDeliversCompleteMessagesBeforeTheSkippedOne) {
  Rx rx(false);
  // SSN 1 and 3 arrived, SSN 0 was lost and 2 was abandoned too: 1 is still delivered, then 3 (RFC 3758 3.6).
  rx.addAll({{.tsn = 2, .stream = 0, .mid = 1, .payload = "one"},
             {.tsn = 4, .stream = 0, .mid = 3, .payload = "three"}});
  rx.forward(3, {{.stream = 0, .mid = 2}});
  EXPECT_EQ(rx.drain(), (Out{"0:one", "0:three"}));
  EXPECT_EQ(rx.r().bufferedBytes(), 0u);
}

TEST(ReassemblyData, MessageOverTheLimitFails) {
  Rx rx(false, 8);
  ASSERT_TRUE(rx.add({.tsn = 1, .stream = 0, .mid = 0, .flags = B, .payload = "12345"}).ok());
  EXPECT_FALSE(rx.add({.tsn = 2, .stream = 0, .mid = 0, .flags = 0, .payload = "67890"}).ok());
}

TEST(ReassemblyData, StreamResetRestartsAtSsnZero) {
  Rx rx(false);
  rx.addAll({{.tsn = 1, .stream = 3, .mid = 0, .payload = "a"}, {.tsn = 2, .stream = 5, .mid = 0, .payload = "x"}});
  EXPECT_EQ(rx.drain(), (Out{"3:a", "5:x"}));
  const std::uint16_t streams[] = {3};
  rx.r().resetStreams(streams);
  rx.addAll({{.tsn = 3, .stream = 3, .mid = 0, .payload = "b"}, {.tsn = 4, .stream = 5, .mid = 1, .payload = "y"}});
  EXPECT_EQ(rx.drain(), (Out{"3:b", "5:y"}));
}

TEST(ReassemblyData, MessageFieldsArePreserved) {
  Rx rx(false);
  rx.addAll({{.tsn = 1, .stream = 9, .mid = 0, .flags = BE | U, .payload = "p", .ppid = 53}});
  auto m = rx.r().pop();
  ASSERT_TRUE(m);
  EXPECT_EQ(m->stream, 9);
  EXPECT_EQ(m->ppid, 53u);
  EXPECT_TRUE(m->unordered);
  EXPECT_EQ(asString(m->payload), "p");
}

// ---- I-DATA ------------------------------------------------------------------------------------------------------

TEST(ReassemblyIData, FragmentsOrderedByFsnInAnyOrder) {
  for (const auto& order : {std::vector<int>{0, 1, 2}, {2, 1, 0}, {1, 2, 0}, {2, 0, 1}}) {
    Rx rx(true);
    // The first fragment carries the PPID, the others an FSN (RFC 8260 2.1).
    const std::vector<Chunk> frags = {{.tsn = 5, .stream = 1, .mid = 0, .fsn = 0, .flags = B, .payload = "ab"},
                                      {.tsn = 6, .stream = 1, .mid = 0, .fsn = 1, .flags = 0, .payload = "cd"},
                                      {.tsn = 7, .stream = 1, .mid = 0, .fsn = 2, .flags = E, .payload = "ef"}};
    for (int i : order) ASSERT_TRUE(rx.add(frags[static_cast<std::size_t>(i)]).ok());
    EXPECT_EQ(rx.drain(), (Out{"1:abcdef"}));
    EXPECT_EQ(rx.r().bufferedBytes(), 0u);
  }
}

TEST(ReassemblyIData, MessagesInterleave) {
  Rx rx(true);
  // I-DATA lets a sender interleave fragments of messages on different streams, and of an unordered and an
  // ordered message on the same stream.
  rx.addAll({{.tsn = 1, .stream = 1, .mid = 0, .fsn = 0, .flags = B, .payload = "a1"},
             {.tsn = 2, .stream = 2, .mid = 0, .fsn = 0, .flags = B, .payload = "b1"},
             {.tsn = 3, .stream = 1, .mid = 0, .fsn = 0, .flags = B | U, .payload = "u1"},
             {.tsn = 4, .stream = 2, .mid = 0, .fsn = 1, .flags = E, .payload = "b2"},
             {.tsn = 5, .stream = 1, .mid = 0, .fsn = 1, .flags = E | U, .payload = "u2"}});
  EXPECT_EQ(rx.drain(), (Out{"2:b1b2", "1:u1u2"}));
  rx.addAll({{.tsn = 6, .stream = 1, .mid = 0, .fsn = 1, .flags = E, .payload = "a2"}});
  EXPECT_EQ(rx.drain(), (Out{"1:a1a2"}));
}

TEST(ReassemblyIData, OrderedByMid) {
  Rx rx(true);
  rx.addAll({{.tsn = 1, .stream = 0, .mid = 1, .payload = "m1"},
             {.tsn = 2, .stream = 0, .mid = 2, .fsn = 0, .flags = B, .payload = "m2a"}});
  EXPECT_FALSE(rx.r().hasMessages());
  rx.addAll({{.tsn = 3, .stream = 0, .mid = 0, .payload = "m0"}});
  EXPECT_EQ(rx.drain(), (Out{"0:m0", "0:m1"}));
  rx.addAll({{.tsn = 4, .stream = 0, .mid = 2, .fsn = 1, .flags = E, .payload = "m2b"}});
  EXPECT_EQ(rx.drain(), (Out{"0:m2am2b"}));
}

TEST(ReassemblyIData, DuplicateFragmentIsIgnored) {
  Rx rx(true);
  // The same FSN again under a new TSN (a retransmission whose first copy arrived after all).
  rx.addAll({{.tsn = 1, .stream = 0, .mid = 0, .fsn = 0, .flags = B, .payload = "ab"},
             {.tsn = 2, .stream = 0, .mid = 0, .fsn = 2, .flags = E, .payload = "ef"},
             {.tsn = 3, .stream = 0, .mid = 0, .fsn = 0, .flags = B, .payload = "XX"},
             {.tsn = 4, .stream = 0, .mid = 0, .fsn = 2, .flags = E, .payload = "YY"}});
  EXPECT_EQ(rx.r().bufferedBytes(), 4u + 2 * Reassembly::kOverhead);  // two out-of-order fragments held
  rx.addAll({{.tsn = 5, .stream = 0, .mid = 0, .fsn = 1, .flags = 0, .payload = "cd"}});
  EXPECT_EQ(rx.drain(), (Out{"0:abcdef"}));
  EXPECT_EQ(rx.r().bufferedBytes(), 0u);
}

TEST(ReassemblyIData, MidWrapsAround) {
  Rx rx(true);
  for (std::uint32_t mid : {0x70000000u, 0xE0000000u, 0xFFFFFFFDu})
    rx.forward(0, {{.stream = 3, .unordered = false, .mid = mid}});
  rx.addAll({{.tsn = 1, .stream = 3, .mid = 0xFFFFFFFEu, .payload = "a"},
             {.tsn = 3, .stream = 3, .mid = 0, .payload = "c"},
             {.tsn = 4, .stream = 3, .mid = 1, .payload = "d"}});
  EXPECT_EQ(rx.drain(), (Out{"3:a"}));
  rx.addAll({{.tsn = 2, .stream = 3, .mid = 0xFFFFFFFFu, .payload = "b"}});
  EXPECT_EQ(rx.drain(), (Out{"3:b", "3:c", "3:d"}));
}

TEST(ReassemblyIData, IForwardTsnAbandonsOrderedAndUnorderedMessages) {
  Rx rx(true);
  rx.addAll({{.tsn = 1, .stream = 4, .mid = 0, .fsn = 0, .flags = B, .payload = "gone"},
             {.tsn = 2, .stream = 4, .mid = 0, .fsn = 0, .flags = B | U, .payload = "gone too"},
             {.tsn = 4, .stream = 4, .mid = 1, .payload = "kept"},
             {.tsn = 5, .stream = 4, .mid = 1, .fsn = 0, .flags = B | U, .payload = "u-kept-"}});
  EXPECT_FALSE(rx.r().hasMessages());
  rx.forward(3, {{.stream = 4, .unordered = false, .mid = 0}, {.stream = 4, .unordered = true, .mid = 0}});
  EXPECT_EQ(rx.drain(), (Out{"4:kept"}));
  EXPECT_EQ(rx.r().bufferedBytes(), 7u + Reassembly::kOverhead);  // the unordered MID 1 fragment only
  rx.addAll({{.tsn = 6, .stream = 4, .mid = 1, .fsn = 1, .flags = E | U, .payload = "done"}});
  EXPECT_EQ(rx.drain(), (Out{"4:u-kept-done"}));
  EXPECT_EQ(rx.r().bufferedBytes(), 0u);
}

TEST(ReassemblyIData, MessageOverTheLimitFailsEvenOutOfOrder) {
  Rx rx(true, 8);
  ASSERT_TRUE(rx.add({.tsn = 2, .stream = 0, .mid = 0, .fsn = 1, .flags = 0, .payload = "12345"}).ok());
  EXPECT_FALSE(rx.add({.tsn = 3, .stream = 0, .mid = 0, .fsn = 2, .flags = E, .payload = "67890"}).ok());
}

TEST(ReassemblyIData, ClearForgetsEverything) {
  Rx rx(true);
  rx.addAll({{.tsn = 1, .stream = 0, .mid = 0, .fsn = 0, .flags = B, .payload = "part"},
             {.tsn = 2, .stream = 0, .mid = 2, .payload = "waiting"},
             {.tsn = 3, .stream = 1, .mid = 0, .payload = "ready"}});
  EXPECT_TRUE(rx.r().hasMessages());
  rx.r().clear();
  EXPECT_FALSE(rx.r().hasMessages());
  EXPECT_EQ(rx.r().bufferedBytes(), 0u);
  rx.addAll({{.tsn = 4, .stream = 0, .mid = 0, .payload = "fresh"}});
  EXPECT_EQ(rx.drain(), (Out{"0:fresh"}));
}

// A reader that hands each message's buffer back (getPacket() swapping into one vector) receives small messages
// without allocating: a single-chunk message is copied into a recycled buffer that fits it.
TEST(ReassemblySpares, SingleChunkMessagesReuseRecycledBuffers) {
  for (bool idata : {false, true}) {
    Rx rx(idata);
    ASSERT_TRUE(rx.add({.tsn = 1, .stream = 0, .mid = 0, .payload = "first message"}).ok());
    auto m = rx.r().pop();
    ASSERT_TRUE(m.has_value());
    const std::uint8_t* storage = m->payload.data();
    rx.r().recycle(std::move(m->payload));
    ASSERT_TRUE(rx.add({.tsn = 2, .stream = 0, .mid = 1, .payload = "second"}).ok());
    auto n = rx.r().pop();
    ASSERT_TRUE(n.has_value());
    EXPECT_EQ(n->payload.data(), storage) << "idata=" << idata;
    EXPECT_EQ(asString(n->payload), "second");
    // A spare too small for the next message is left for a later one; the message gets its own buffer.
    rx.r().recycle(std::move(n->payload));
    const std::string big(200, 'x');
    ASSERT_TRUE(rx.add({.tsn = 3, .stream = 0, .mid = 2, .payload = big}).ok());
    auto o = rx.r().pop();
    ASSERT_TRUE(o.has_value());
    EXPECT_NE(o->payload.data(), storage);
    EXPECT_EQ(asString(o->payload), big);
    ASSERT_TRUE(rx.add({.tsn = 4, .stream = 0, .mid = 3, .payload = "fits"}).ok());
    auto q = rx.r().pop();
    ASSERT_TRUE(q.has_value());
    EXPECT_EQ(q->payload.data(), storage);
  }
}

}  // namespace
}  // namespace rtcpeer::sctp
