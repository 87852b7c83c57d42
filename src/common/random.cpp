#include "common/random.hpp"

#include <openssl/rand.h>

#include <cstring>
#include <stdexcept>

namespace rtcpeer {

std::uint32_t Random::u32() {
  std::uint8_t b[4];
  fill(b);
  std::uint32_t v;
  std::memcpy(&v, b, 4);
  return v;
}

std::uint64_t Random::u64() {
  std::uint8_t b[8];
  fill(b);
  std::uint64_t v;
  std::memcpy(&v, b, 8);
  return v;
}

std::uint64_t Random::below(std::uint64_t bound) {
  if (bound <= 1) return 0;
  // Rejection sampling: discard the top partial range so every residue is equally likely.
  const std::uint64_t limit = UINT64_MAX - (UINT64_MAX % bound);
  std::uint64_t v;
  do {
    v = u64();
  } while (v >= limit);
  return v % bound;
}

std::int64_t Random::between(std::int64_t lo, std::int64_t hi) {
  if (hi <= lo) return lo;
  return lo + static_cast<std::int64_t>(below(static_cast<std::uint64_t>(hi - lo) + 1));
}

double Random::unit() { return static_cast<double>(u64() >> 11) * 0x1.0p-53; }

std::string Random::iceChars(std::size_t n) {
  static constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  // One draw for the whole string (a byte's low 6 bits pick one of exactly 64 letters, so no bias): a draw per
  // letter cost each new connection 64 calls into OpenSSL's DRBG for its ICE credentials.
  std::string s(n, '\0');
  fill(std::span(reinterpret_cast<std::uint8_t*>(s.data()), n));
  for (auto& c : s) c = kAlphabet[static_cast<std::uint8_t>(c) & 63];
  return s;
}

void CryptoRandom::fill(std::span<std::uint8_t> out) {
  if (out.empty()) return;
  if (RAND_bytes(out.data(), static_cast<int>(out.size())) != 1) {
    // OpenSSL's DRBG only fails if the OS entropy source is gone; continuing with predictable values would be
    // a silent security failure, so stop here.
    std::abort();
  }
}

namespace {
std::uint64_t splitmix64(std::uint64_t& x) {
  std::uint64_t z = (x += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}
std::uint64_t rotl(std::uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }
}  // namespace

SeededRandom::SeededRandom(std::uint64_t seed) {
  for (auto& s : s_) s = splitmix64(seed);
}

std::uint64_t SeededRandom::next() {
  const std::uint64_t result = rotl(s_[1] * 5, 7) * 9;
  const std::uint64_t t = s_[1] << 17;
  s_[2] ^= s_[0];
  s_[3] ^= s_[1];
  s_[1] ^= s_[2];
  s_[0] ^= s_[3];
  s_[2] ^= t;
  s_[3] = rotl(s_[3], 45);
  return result;
}

void SeededRandom::fill(std::span<std::uint8_t> out) {
  std::size_t i = 0;
  while (i < out.size()) {
    std::uint64_t v = next();
    for (int k = 0; k < 8 && i < out.size(); ++k, ++i) {
      out[i] = static_cast<std::uint8_t>(v);
      v >>= 8;
    }
  }
}

Random& defaultRandom() {
  static CryptoRandom r;
  return r;
}

}  // namespace rtcpeer
