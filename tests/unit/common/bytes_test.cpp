#include "common/bytes.hpp"

#include <gtest/gtest.h>

using namespace rtcpeer;

TEST(ByteReader, ReadsBigEndianValues) {
  const std::uint8_t data[] = {0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0a,
                               0x0b, 0x0c, 0x0d, 0x0e, 0x0f, 0x10, 0x11, 0x12};
  ByteReader r(data);
  EXPECT_EQ(r.u8(), 0x01);
  EXPECT_EQ(r.u16(), 0x0203);
  EXPECT_EQ(r.u24(), 0x040506u);
  EXPECT_EQ(r.u32(), 0x0708090au);
  EXPECT_EQ(r.u64(), 0x0b0c0d0e0f101112ull);
  EXPECT_TRUE(r.ok());
  EXPECT_TRUE(r.empty());
}

TEST(ByteReader, ReadPastEndFailsAndSticks) {
  const std::uint8_t data[] = {0xaa, 0xbb, 0xcc};
  ByteReader r(data);
  EXPECT_EQ(r.u16(), 0xaabb);
  EXPECT_EQ(r.u16(), 0);  // only one byte left
  EXPECT_FALSE(r.ok());
  EXPECT_EQ(r.u8(), 0);  // sticky: even a read that would fit now fails
  EXPECT_FALSE(r.ok());
  EXPECT_EQ(r.offset(), 2u);
}

TEST(ByteReader, BytesAndSubReaderAreBounded) {
  const std::uint8_t data[] = {1, 2, 3, 4, 5};
  ByteReader r(data);
  auto b = r.bytes(2);
  ASSERT_EQ(b.size(), 2u);
  EXPECT_EQ(b[1], 2);
  ByteReader s = r.sub(2);
  EXPECT_EQ(s.u16(), 0x0304);
  EXPECT_EQ(s.u8(), 0);
  EXPECT_FALSE(s.ok());
  EXPECT_TRUE(r.ok());  // the parent is unaffected by the child's failure
  EXPECT_TRUE(r.bytes(5).empty());
  EXPECT_FALSE(r.ok());
  ByteReader r2(data);
  ByteReader bad = r2.sub(9);
  EXPECT_FALSE(bad.ok());
  EXPECT_FALSE(r2.ok());
}

TEST(ByteReader, HugeLengthDoesNotOverflow) {
  const std::uint8_t data[] = {1, 2, 3};
  ByteReader r(data);
  r.u8();
  EXPECT_TRUE(r.bytes(SIZE_MAX).empty());
  EXPECT_FALSE(r.ok());
}

TEST(ByteReader, CopyToZeroFillsOnFailure) {
  const std::uint8_t data[] = {9, 9};
  ByteReader r(data);
  std::uint8_t out[4] = {1, 1, 1, 1};
  r.copyTo(out);
  EXPECT_FALSE(r.ok());
  for (auto b : out) EXPECT_EQ(b, 0);
}

TEST(SpanWriter, WritesAndPatches) {
  std::uint8_t buf[12];
  SpanWriter w(buf);
  w.u16(0xbeef);
  auto at = w.reserve(2);
  w.u32(0x01020304);
  w.u24(0x0a0b0c);
  w.patchU16(at, 0x1234);
  ASSERT_TRUE(w.ok());
  ASSERT_EQ(w.size(), 11u);
  const std::uint8_t want[] = {0xbe, 0xef, 0x12, 0x34, 1, 2, 3, 4, 0x0a, 0x0b, 0x0c};
  EXPECT_TRUE(std::equal(w.written().begin(), w.written().end(), want));
}

TEST(SpanWriter, OverflowFailsWithoutWriting) {
  std::uint8_t buf[3] = {0, 0, 0};
  SpanWriter w(buf);
  w.u16(0xffff);
  w.u16(0xeeee);
  EXPECT_FALSE(w.ok());
  EXPECT_EQ(w.size(), 2u);
  EXPECT_EQ(buf[2], 0);
  w.patchU16(2, 1);  // beyond what was written
  EXPECT_FALSE(w.ok());
}

TEST(ByteWriter, AppendsAndPads) {
  Bytes out;
  ByteWriter w(out);
  w.u8(1);
  w.bytes(std::string_view("ab"));
  w.pad(4);
  w.u32(0xdeadbeef);
  auto at = w.reserve(2);
  w.patchU16(at, 0x0102);
  const Bytes want = {1, 'a', 'b', 0, 0xde, 0xad, 0xbe, 0xef, 1, 2};
  EXPECT_EQ(out, want);
}

TEST(Hex, FormatsWithSeparator) {
  const std::uint8_t d[] = {0xab, 0x01, 0xff};
  EXPECT_EQ(toHex(d, ':'), "AB:01:FF");
  EXPECT_EQ(toHex(d, '\0', false), "ab01ff");
  EXPECT_EQ(toHex({}), "");
}
