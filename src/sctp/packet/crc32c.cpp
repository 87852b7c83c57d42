#include "sctp/packet/crc32c.hpp"

#include <array>
#include <cstring>

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#include <nmmintrin.h>
#define RTCPEER_CRC32C_X86 1
#endif

namespace rtcpeer::sctp {
namespace {

constexpr std::uint32_t kPoly = 0x82F63B78u;  // reflected Castagnoli polynomial

using Tables = std::array<std::array<std::uint32_t, 256>, 8>;

constexpr Tables makeTables() {
  Tables t{};
  for (std::uint32_t i = 0; i < 256; ++i) {
    std::uint32_t c = i;
    for (int k = 0; k < 8; ++k) c = (c & 1) ? (c >> 1) ^ kPoly : c >> 1;
    t[0][i] = c;
  }
  for (std::uint32_t i = 0; i < 256; ++i)
    for (std::size_t s = 1; s < 8; ++s) t[s][i] = (t[s - 1][i] >> 8) ^ t[0][t[s - 1][i] & 0xFF];
  return t;
}

constexpr Tables kTables = makeTables();

std::uint32_t updatePortable(std::uint32_t crc, const std::uint8_t* p, std::size_t n) noexcept {
  while (n >= 8) {
    std::uint32_t lo, hi;
    std::memcpy(&lo, p, 4);
    std::memcpy(&hi, p + 4, 4);
#if __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    lo = __builtin_bswap32(lo);
    hi = __builtin_bswap32(hi);
#endif
    lo ^= crc;
    crc = kTables[7][lo & 0xFF] ^ kTables[6][(lo >> 8) & 0xFF] ^ kTables[5][(lo >> 16) & 0xFF] ^
          kTables[4][lo >> 24] ^ kTables[3][hi & 0xFF] ^ kTables[2][(hi >> 8) & 0xFF] ^
          kTables[1][(hi >> 16) & 0xFF] ^ kTables[0][hi >> 24];
    p += 8;
    n -= 8;
  }
  while (n--) crc = (crc >> 8) ^ kTables[0][(crc ^ *p++) & 0xFF];
  return crc;
}

#ifdef RTCPEER_CRC32C_X86
#if defined(__x86_64__)
// The crc32 instruction has a latency of 3 cycles and a throughput of 1, so one dependency chain runs at a third of
// its speed. Three chains over adjacent blocks of kBlock bytes run in parallel and are joined with the linearity
// of the CRC: crc(c, A|B) = shift(crc(c, A), |B|) ^ crc(0, B), where shift() (advancing the register over kBlock
// zero bytes) is a linear map on 32 bits, tabulated per byte.
constexpr std::size_t kBlock = 128;
using ShiftTables = std::array<std::array<std::uint32_t, 256>, 4>;

constexpr std::uint32_t shiftSlow(std::uint32_t c) {
  for (std::size_t i = 0; i < kBlock; ++i) c = (c >> 8) ^ kTables[0][c & 0xFF];
  return c;
}

constexpr ShiftTables makeShiftTables() {
  std::array<std::uint32_t, 32> basis{};
  for (int b = 0; b < 32; ++b) basis[b] = shiftSlow(1u << b);
  ShiftTables t{};
  for (int k = 0; k < 4; ++k)
    for (std::uint32_t v = 0; v < 256; ++v) {
      std::uint32_t r = 0;
      for (int b = 0; b < 8; ++b)
        if (v & (1u << b)) r ^= basis[8 * k + b];
      t[k][v] = r;
    }
  return t;
}

constexpr ShiftTables kShift = makeShiftTables();

inline std::uint32_t shiftBlock(std::uint32_t c) noexcept {
  return kShift[0][c & 0xFF] ^ kShift[1][(c >> 8) & 0xFF] ^ kShift[2][(c >> 16) & 0xFF] ^ kShift[3][c >> 24];
}

__attribute__((target("sse4.2"))) inline std::uint64_t load64(const std::uint8_t* p) noexcept {
  std::uint64_t v;
  std::memcpy(&v, p, 8);
  return v;
}
#endif

__attribute__((target("sse4.2"))) std::uint32_t updateHardware(std::uint32_t crc, const std::uint8_t* p,
                                                                std::size_t n) noexcept {
#if defined(__x86_64__)
  std::uint64_t c = crc;
  while (n >= 3 * kBlock) {
    std::uint64_t c1 = 0, c2 = 0;
    for (std::size_t i = 0; i < kBlock; i += 8) {
      c = _mm_crc32_u64(c, load64(p + i));
      c1 = _mm_crc32_u64(c1, load64(p + kBlock + i));
      c2 = _mm_crc32_u64(c2, load64(p + 2 * kBlock + i));
    }
    c = shiftBlock(shiftBlock(static_cast<std::uint32_t>(c)) ^ static_cast<std::uint32_t>(c1)) ^
        static_cast<std::uint32_t>(c2);
    p += 3 * kBlock;
    n -= 3 * kBlock;
  }
  while (n >= 8) {
    c = _mm_crc32_u64(c, load64(p));
    p += 8;
    n -= 8;
  }
  crc = static_cast<std::uint32_t>(c);
#endif
  while (n--) crc = _mm_crc32_u8(crc, *p++);
  return crc;
}

bool detectSse42() noexcept {
  unsigned a = 0, b = 0, c = 0, d = 0;
  if (!__get_cpuid(1, &a, &b, &c, &d)) return false;
  return (c & bit_SSE4_2) != 0;
}
const bool kHardware = detectSse42();
#else
const bool kHardware = false;
#endif

}  // namespace

bool crc32cHardware() noexcept { return kHardware; }

std::uint32_t crc32cPortable(ByteView data) noexcept {
  return ~updatePortable(~0u, data.data(), data.size());
}

std::uint32_t crc32cExtend(std::uint32_t crc, ByteView data) noexcept {
#ifdef RTCPEER_CRC32C_X86
  if (kHardware) return ~updateHardware(~crc, data.data(), data.size());
#endif
  return ~updatePortable(~crc, data.data(), data.size());
}

std::uint32_t crc32c(ByteView data) noexcept { return crc32cExtend(0, data); }

}  // namespace rtcpeer::sctp
