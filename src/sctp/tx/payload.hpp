// Message bytes shared between the send queue and every in-flight fragment that points into them: one
// allocation per message (header and bytes together), a plain (single-threaded) reference count, immutable.
// Blocks are recycled through small per-thread free lists, so a steady sender allocates nothing per message:
// messages up to kSmallMax bytes get blocks of power-of-two size classes (64 B .. 2 KiB, at most kSmallSlots
// each), larger ones a list of any size (allocating and freeing a 64 KiB message per send made glibc trim and regrow
// the heap, so every message paid page faults). The lists are bounded by count and by bytes, never keep a block
// above kPooledMax, and are emptied by trimPool() (Association::releaseBuffers(), which an idle connection calls),
// so a burst of messages does not pin memory for the thread's life.
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
    Block* b = nullptr;
    std::size_t capacity = data.size();
    if (data.size() <= kSmallMax) {
      const std::size_t cls = smallClass(data.size());
      capacity = kSmallMin << cls;
      b = Pool::takeSmall(cls);
    } else if (data.size() >= kPooledMin) {
      b = Pool::take(data.size());
    }
    if (b == nullptr) {
      b = static_cast<Block*>(::operator new(sizeof(Block) + capacity));
      b->capacity = capacity;
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
    return p ? p->bytes_ + p->smallBytes_ : 0;
  }

  /// Small messages: size classes kSmallMin << 0 .. kSmallMin << (kSmallClasses - 1) = kSmallMax.
  static constexpr std::size_t kSmallMin = 64;
  static constexpr std::size_t kSmallClasses = 6;
  static constexpr std::size_t kSmallMax = kSmallMin << (kSmallClasses - 1);
  /// Per class: a sender's messages in flight on a typical path (at most 64 x 4 KiB in all, 252 KiB).
  static constexpr std::size_t kSmallSlots = 64;

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
    static Block* takeSmall(std::size_t cls) noexcept {
      Pool* p = instance();
      if (p == nullptr || p->smallCount_[cls] == 0) return nullptr;
      Block* b = p->small_[cls][--p->smallCount_[cls]];
      p->smallBytes_ -= b->capacity;
      return b;
    }
    static void give(Block* b) noexcept {
      Pool* p = instance();
      if (b->capacity <= kSmallMax) {  // always a size class: copyOf rounds small messages up
        const std::size_t cls = smallClass(b->capacity);
        if (p != nullptr && p->smallCount_[cls] < kSmallSlots) {
          p->small_[cls][p->smallCount_[cls]++] = b;
          p->smallBytes_ += b->capacity;
        } else {
          ::operator delete(b);
        }
        return;
      }
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
      for (std::size_t c = 0; c < kSmallClasses; ++c) {
        for (std::size_t i = 0; i < smallCount_[c]; ++i) ::operator delete(small_[c][i]);
        smallCount_[c] = 0;
      }
      smallBytes_ = 0;
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
    Block* small_[kSmallClasses][kSmallSlots] = {};
    std::size_t smallCount_[kSmallClasses] = {};
    std::size_t smallBytes_ = 0;
  };
  /// The size class of a small message (0 for up to kSmallMin bytes, ...).
  static constexpr std::size_t smallClass(std::size_t size) noexcept {
    std::size_t cls = 0;
    while ((kSmallMin << cls) < size) ++cls;
    return cls;
  }
  explicit Payload(Block* b) noexcept : b_(b) {}
  Block* b_ = nullptr;
};

}  // namespace rtcpeer::sctp
