// Bounds-checked big-endian readers and writers over byte spans. Every wire parser in rtcpeer reads through
// ByteReader: a read past the end never touches memory outside the span; it returns zero/empty and latches a
// failure flag the caller checks once (`ok()`), so parsers stay linear and free of undefined behaviour.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <string_view>
#include <vector>

namespace rtcpeer {

using Bytes = std::vector<std::uint8_t>;
using ByteView = std::span<const std::uint8_t>;
using MutableByteView = std::span<std::uint8_t>;

inline ByteView asBytes(std::string_view s) noexcept {
  return {reinterpret_cast<const std::uint8_t*>(s.data()), s.size()};
}
inline std::string_view asString(ByteView b) noexcept {
  return {reinterpret_cast<const char*>(b.data()), b.size()};
}

// Unchecked loads/stores for code that has already validated lengths (e.g. patching a header in place).
inline std::uint16_t loadBe16(const std::uint8_t* p) noexcept {
  return static_cast<std::uint16_t>((p[0] << 8) | p[1]);
}
inline std::uint32_t loadBe32(const std::uint8_t* p) noexcept {
  return (std::uint32_t{p[0]} << 24) | (std::uint32_t{p[1]} << 16) | (std::uint32_t{p[2]} << 8) | p[3];
}
inline void storeBe16(std::uint8_t* p, std::uint16_t v) noexcept {
  p[0] = static_cast<std::uint8_t>(v >> 8);
  p[1] = static_cast<std::uint8_t>(v);
}
inline void storeBe32(std::uint8_t* p, std::uint32_t v) noexcept {
  p[0] = static_cast<std::uint8_t>(v >> 24);
  p[1] = static_cast<std::uint8_t>(v >> 16);
  p[2] = static_cast<std::uint8_t>(v >> 8);
  p[3] = static_cast<std::uint8_t>(v);
}
/// The low 48 bits, as in DTLS record sequence numbers.
inline std::uint64_t loadBe48(const std::uint8_t* p) noexcept {
  return (std::uint64_t{loadBe16(p)} << 32) | loadBe32(p + 2);
}
inline std::uint64_t loadBe64(const std::uint8_t* p) noexcept {
  return (std::uint64_t{loadBe32(p)} << 32) | loadBe32(p + 4);
}
inline void storeBe64(std::uint8_t* p, std::uint64_t v) noexcept {
  storeBe32(p, static_cast<std::uint32_t>(v >> 32));
  storeBe32(p + 4, static_cast<std::uint32_t>(v));
}

class ByteReader {
 public:
  constexpr ByteReader() noexcept = default;
  constexpr explicit ByteReader(ByteView data) noexcept : data_(data) {}

  /// False once any read went past the end (sticky).
  [[nodiscard]] constexpr bool ok() const noexcept { return ok_; }
  [[nodiscard]] constexpr std::size_t remaining() const noexcept { return data_.size() - pos_; }
  [[nodiscard]] constexpr std::size_t offset() const noexcept { return pos_; }
  [[nodiscard]] constexpr bool empty() const noexcept { return remaining() == 0; }
  [[nodiscard]] constexpr ByteView whole() const noexcept { return data_; }
  [[nodiscard]] constexpr ByteView rest() const noexcept { return data_.subspan(pos_); }

  std::uint8_t u8() noexcept {
    if (!need(1)) return 0;
    return data_[pos_++];
  }
  std::uint16_t u16() noexcept {
    if (!need(2)) return 0;
    auto v = loadBe16(data_.data() + pos_);
    pos_ += 2;
    return v;
  }
  std::uint32_t u24() noexcept {
    if (!need(3)) return 0;
    const auto* p = data_.data() + pos_;
    pos_ += 3;
    return (std::uint32_t{p[0]} << 16) | (std::uint32_t{p[1]} << 8) | p[2];
  }
  std::uint32_t u32() noexcept {
    if (!need(4)) return 0;
    auto v = loadBe32(data_.data() + pos_);
    pos_ += 4;
    return v;
  }
  std::uint64_t u64() noexcept {
    std::uint64_t hi = u32();
    return (hi << 32) | u32();
  }
  /// The next n bytes (empty span and failure if fewer remain).
  ByteView bytes(std::size_t n) noexcept {
    if (!need(n)) return {};
    auto v = data_.subspan(pos_, n);
    pos_ += n;
    return v;
  }
  /// A reader over the next n bytes, consuming them here (a failed reader if fewer remain).
  ByteReader sub(std::size_t n) noexcept {
    if (!need(n)) {
      ByteReader r;
      r.ok_ = false;
      return r;
    }
    return ByteReader(bytes(n));
  }
  void skip(std::size_t n) noexcept {
    if (need(n)) pos_ += n;
  }
  /// Copies n bytes into dst (zero-fills dst and fails if fewer remain).
  void copyTo(std::span<std::uint8_t> dst) noexcept {
    if (!need(dst.size())) {
      std::memset(dst.data(), 0, dst.size());
      return;
    }
    if (!dst.empty()) std::memcpy(dst.data(), data_.data() + pos_, dst.size());
    pos_ += dst.size();
  }
  /// Peeks a byte at offset from the current position without consuming (0 if out of range; no failure).
  [[nodiscard]] std::uint8_t peek(std::size_t off = 0) const noexcept {
    return off < remaining() ? data_[pos_ + off] : 0;
  }
  /// Marks the reader failed (e.g. a semantic length check failed).
  void fail() noexcept { ok_ = false; }

 private:
  bool need(std::size_t n) noexcept {
    if (!ok_ || n > remaining()) {
      ok_ = false;
      return false;
    }
    return true;
  }
  ByteView data_{};
  std::size_t pos_ = 0;
  bool ok_ = true;
};

/// Writes big-endian values into a caller-owned fixed buffer. Overflow latches a failure flag and writes nothing
/// further; no allocation ever happens (the data path writes into reused buffers).
class SpanWriter {
 public:
  explicit SpanWriter(MutableByteView buf) noexcept : buf_(buf) {}

  [[nodiscard]] bool ok() const noexcept { return ok_; }
  [[nodiscard]] std::size_t size() const noexcept { return pos_; }
  [[nodiscard]] std::size_t capacity() const noexcept { return buf_.size(); }
  [[nodiscard]] std::size_t remaining() const noexcept { return buf_.size() - pos_; }
  [[nodiscard]] ByteView written() const noexcept { return buf_.first(pos_); }
  [[nodiscard]] std::uint8_t* data() noexcept { return buf_.data(); }

  void u8(std::uint8_t v) noexcept {
    if (need(1)) buf_[pos_++] = v;
  }
  void u16(std::uint16_t v) noexcept {
    if (need(2)) {
      storeBe16(buf_.data() + pos_, v);
      pos_ += 2;
    }
  }
  void u24(std::uint32_t v) noexcept {
    if (need(3)) {
      buf_[pos_] = static_cast<std::uint8_t>(v >> 16);
      buf_[pos_ + 1] = static_cast<std::uint8_t>(v >> 8);
      buf_[pos_ + 2] = static_cast<std::uint8_t>(v);
      pos_ += 3;
    }
  }
  void u32(std::uint32_t v) noexcept {
    if (need(4)) {
      storeBe32(buf_.data() + pos_, v);
      pos_ += 4;
    }
  }
  void u64(std::uint64_t v) noexcept {
    u32(static_cast<std::uint32_t>(v >> 32));
    u32(static_cast<std::uint32_t>(v));
  }
  void bytes(ByteView b) noexcept {
    if (need(b.size()) && !b.empty()) {
      std::memcpy(buf_.data() + pos_, b.data(), b.size());
      pos_ += b.size();
    }
  }
  void zeros(std::size_t n) noexcept {
    if (need(n) && n) {
      std::memset(buf_.data() + pos_, 0, n);
      pos_ += n;
    }
  }
  /// Reserves n bytes to be filled later; returns their offset (or the current size on failure).
  std::size_t reserve(std::size_t n) noexcept {
    std::size_t at = pos_;
    zeros(n);
    return at;
  }
  void patchU16(std::size_t at, std::uint16_t v) noexcept {
    if (at + 2 <= pos_) storeBe16(buf_.data() + at, v);
    else ok_ = false;
  }
  void patchU32(std::size_t at, std::uint32_t v) noexcept {
    if (at + 4 <= pos_) storeBe32(buf_.data() + at, v);
    else ok_ = false;
  }

 private:
  bool need(std::size_t n) noexcept {
    if (!ok_ || n > remaining()) {
      ok_ = false;
      return false;
    }
    return true;
  }
  MutableByteView buf_;
  std::size_t pos_ = 0;
  bool ok_ = true;
};

/// Appends big-endian values to a std::vector. Reusing one vector (clear() keeps capacity) makes steady-state
/// writes allocation-free; use it for control messages and SpanWriter on the hottest paths.
class ByteWriter {
 public:
  explicit ByteWriter(Bytes& out) noexcept : out_(out) {}

  [[nodiscard]] std::size_t size() const noexcept { return out_.size(); }
  [[nodiscard]] Bytes& buffer() noexcept { return out_; }

  void u8(std::uint8_t v) { out_.push_back(v); }
  void u16(std::uint16_t v) {
    std::uint8_t b[2];
    storeBe16(b, v);
    out_.insert(out_.end(), b, b + 2);
  }
  void u24(std::uint32_t v) {
    out_.push_back(static_cast<std::uint8_t>(v >> 16));
    out_.push_back(static_cast<std::uint8_t>(v >> 8));
    out_.push_back(static_cast<std::uint8_t>(v));
  }
  void u32(std::uint32_t v) {
    std::uint8_t b[4];
    storeBe32(b, v);
    out_.insert(out_.end(), b, b + 4);
  }
  void u64(std::uint64_t v) {
    u32(static_cast<std::uint32_t>(v >> 32));
    u32(static_cast<std::uint32_t>(v));
  }
  void bytes(ByteView b) { out_.insert(out_.end(), b.begin(), b.end()); }
  void bytes(std::string_view s) { bytes(asBytes(s)); }
  void zeros(std::size_t n) { out_.resize(out_.size() + n, 0); }
  /// Pads with zeros to a multiple of `align` bytes.
  void pad(std::size_t align) {
    while (out_.size() % align) out_.push_back(0);
  }
  std::size_t reserve(std::size_t n) {
    std::size_t at = out_.size();
    zeros(n);
    return at;
  }
  void patchU16(std::size_t at, std::uint16_t v) noexcept { storeBe16(out_.data() + at, v); }
  void patchU32(std::size_t at, std::uint32_t v) noexcept { storeBe32(out_.data() + at, v); }

 private:
  Bytes& out_;
};

/// Upper-case hex with an optional separator, e.g. "AB:CD" (SDP fingerprints) or "abcd" (logs).
std::string toHex(ByteView b, char sep = '\0', bool upper = true);

}  // namespace rtcpeer
