// Message bytes shared between the send queue and every in-flight fragment that points into them: one
// allocation per message (header and bytes together), a plain (single-threaded) reference count, immutable.
#pragma once

#include <cstdint>
#include <cstring>
#include <new>
#include <utility>

#include "common/bytes.hpp"

namespace rtcpeer::sctp {

class Payload {
 public:
  Payload() noexcept = default;
  static Payload copyOf(ByteView data) {
    auto* b = static_cast<Block*>(::operator new(sizeof(Block) + data.size()));
    b->refs = 1;
    b->size = data.size();
    if (!data.empty()) std::memcpy(b + 1, data.data(), data.size());
    return Payload(b);
  }
  Payload(const Payload& o) noexcept : b_(o.b_) {
    if (b_) ++b_->refs;
  }
  Payload(Payload&& o) noexcept : b_(std::exchange(o.b_, nullptr)) {}
  Payload& operator=(Payload o) noexcept {
    std::swap(b_, o.b_);
    return *this;
  }
  ~Payload() {
    if (b_ && --b_->refs == 0) ::operator delete(b_);
  }
  [[nodiscard]] ByteView view() const noexcept {
    return b_ ? ByteView(reinterpret_cast<const std::uint8_t*>(b_ + 1), b_->size) : ByteView{};
  }
  [[nodiscard]] std::size_t size() const noexcept { return b_ ? b_->size : 0; }

 private:
  struct Block {
    std::size_t refs;
    std::size_t size;
  };
  explicit Payload(Block* b) noexcept : b_(b) {}
  Block* b_ = nullptr;
};

}  // namespace rtcpeer::sctp
