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
__attribute__((target("sse4.2"))) std::uint32_t updateHardware(std::uint32_t crc, const std::uint8_t* p,
                                                                std::size_t n) noexcept {
#if defined(__x86_64__)
  std::uint64_t c = crc;
  while (n >= 8) {
    std::uint64_t v;
    std::memcpy(&v, p, 8);
    c = _mm_crc32_u64(c, v);
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
