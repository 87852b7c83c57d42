// Message bytes shared between the send queue and every in-flight fragment that points into them: one
// allocation per message (header and bytes together), a plain (single-threaded) reference count, immutable.
// Large blocks are recycled through a small per-thread free list: allocating and freeing a 64 KiB message per
// send made glibc trim and regrow the heap, so every message paid page faults. The list is bounded by count and
// by bytes, never keeps a block above kPooledMax, and is emptied by trimPool() (Association::releaseBuffers(),
// which an idle connection calls), so a burst of large messages does not pin memory for the thread's life.
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
    Block* b = data.size() >= kPooledMin ? Pool::take(data.size()) : nullptr;
    if (b == nullptr) {
      b = static_cast<Block*>(::operator new(sizeof(Block) + data.size()));
      b->capacity = data.size();
    }
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
    if (b_ && --b_->refs == 0) Pool::give(b_);
  }
  [[nodiscard]] ByteView view() const noexcept {
    return b_ ? ByteView(reinterpret_cast<const std::uint8_t*>(b_ + 1), b_->size) : ByteView{};
  }
  [[nodiscard]] std::size_t size() const noexcept { return b_ ? b_->size : 0; }

  /// Frees every block the calling thread's pool holds (other threads' pools are theirs to trim).
  static void trimPool() noexcept {
    if (Pool* p = Pool::instance()) p->trim();
  }
  /// Bytes (block capacities) the calling thread's pool holds.
  [[nodiscard]] static std::size_t pooledBytes() noexcept {
    Pool* p = Pool::instance();
    return p ? p->bytes_ : 0;
  }

  static constexpr std::size_t kPooledMin = 4096;
  /// Larger blocks are freed, not pooled: the default maximum message size (256 KiB) is the largest kept.
  static constexpr std::size_t kPooledMax = 256 * 1024;
  /// What one thread's pool may hold: 32 messages of 64 KiB, a bulk sender's working set (bench_peer).
  static constexpr std::size_t kMaxPooledBytes = 2 * 1024 * 1024;

 private:
  struct Block {
    std::size_t refs;
    std::size_t size;
    std::size_t capacity;
  };
  // Up to kSlots freed large blocks per thread; a block is reused for a message of up to its capacity but not
  // under a quarter of it, so a few huge messages do not pin memory for small ones.
  class Pool {
   public:
    static Block* take(std::size_t size) noexcept {
      Pool* pool = instance();
      if (pool == nullptr) return nullptr;
      Pool& p = *pool;
      for (std::size_t i = p.count_; i-- > 0;) {  // the most recently freed first: still in cache
        Block* b = p.slots_[i];
        if (b->capacity >= size && b->capacity / 4 <= size) {
          p.slots_[i] = p.slots_[--p.count_];
          p.bytes_ -= b->capacity;
          return b;
        }
      }
      return nullptr;
    }
    static void give(Block* b) noexcept {
      Pool* p = instance();
      if (p != nullptr && b->capacity >= kPooledMin && b->capacity <= kPooledMax && p->count_ < kSlots &&
          p->bytes_ + b->capacity <= kMaxPooledBytes) {
        p->slots_[p->count_++] = b;
        p->bytes_ += b->capacity;
      } else {
        ::operator delete(b);
      }
    }
    void trim() noexcept {
      for (std::size_t i = 0; i < count_; ++i) ::operator delete(slots_[i]);
      count_ = 0;
      bytes_ = 0;
    }
    ~Pool() {
      trim();
      gone() = true;  // payloads freed later in this thread's teardown (static objects) bypass the pool
    }

    static constexpr std::size_t kSlots = 32;
    static bool& gone() noexcept {
      thread_local bool flag = false;  // trivially destructible: readable after the pool is destroyed
      return flag;
    }
    static Pool* instance() noexcept {
      if (gone()) return nullptr;
      thread_local Pool pool;
      return &pool;
    }
    Block* slots_[kSlots] = {};
    std::size_t count_ = 0;
    std::size_t bytes_ = 0;  // sum of the pooled blocks' capacities, at most kMaxPooledBytes
  };
  explicit Payload(Block* b) noexcept : b_(b) {}
  Block* b_ = nullptr;
};

}  // namespace rtcpeer::sctp
