// An injectable random source. Cores take a `Random&` so production code uses OpenSSL's CSPRNG while tests and the
// simulator use a seeded generator and get bit-identical runs.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>

namespace rtcpeer {

class Random {
 public:
  virtual ~Random() = default;
  virtual void fill(std::span<std::uint8_t> out) = 0;

  std::uint32_t u32();
  std::uint64_t u64();
  /// Uniform in [0, bound) without modulo bias (bound > 0).
  std::uint64_t below(std::uint64_t bound);
  /// Uniform in [lo, hi] inclusive.
  std::int64_t between(std::int64_t lo, std::int64_t hi);
  /// Uniform in [0, 1).
  double unit();
  /// `n` characters from the ICE alphabet [A-Za-z0-9+/] (RFC 8839 ice-char), e.g. for ufrag/pwd.
  std::string iceChars(std::size_t n);
};

/// Cryptographically strong (OpenSSL RAND_bytes). The default for every production object.
class CryptoRandom final : public Random {
 public:
  void fill(std::span<std::uint8_t> out) override;
};

/// Deterministic xoshiro256** seeded through splitmix64. For tests and the simulator only.
class SeededRandom final : public Random {
 public:
  explicit SeededRandom(std::uint64_t seed);
  void fill(std::span<std::uint8_t> out) override;
  std::uint64_t next();

 private:
  std::uint64_t s_[4];
};

/// A process-wide CryptoRandom for objects that are not given a source.
Random& defaultRandom();

}  // namespace rtcpeer
