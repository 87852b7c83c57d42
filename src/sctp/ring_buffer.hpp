// A growable FIFO over a power-of-two array: push_back/pop_front and indexed access without the per-block
// allocations std::deque makes in steady state (the in-flight queue and the send path run through it).
#pragma once

#include <cstddef>
#include <memory>
#include <utility>

namespace rtcpeer::sctp {

template <class T>
class RingBuffer {
 public:
  [[nodiscard]] std::size_t size() const noexcept { return size_; }
  [[nodiscard]] bool empty() const noexcept { return size_ == 0; }
  T& operator[](std::size_t i) noexcept { return data_[(head_ + i) & (cap_ - 1)]; }
  const T& operator[](std::size_t i) const noexcept { return data_[(head_ + i) & (cap_ - 1)]; }
  T& front() noexcept { return (*this)[0]; }
  T& back() noexcept { return (*this)[size_ - 1]; }

  void push_back(T v) {
    if (size_ == cap_) grow();
    data_[(head_ + size_) & (cap_ - 1)] = std::move(v);
    ++size_;
  }
  void pop_front() noexcept {
    data_[head_] = T{};  // release what the slot holds (payload references)
    head_ = (head_ + 1) & (cap_ - 1);
    --size_;
  }
  void clear() noexcept {
    while (!empty()) pop_front();
  }
  /// Frees the storage when empty (an idle association keeps no buffers).
  void shrink() noexcept {
    if (size_ == 0) {
      data_.reset();
      cap_ = 0;
      head_ = 0;
    }
  }

 private:
  void grow() {
    std::size_t cap = cap_ ? cap_ * 2 : 16;
    auto d = std::make_unique<T[]>(cap);
    for (std::size_t i = 0; i < size_; ++i) d[i] = std::move((*this)[i]);
    data_ = std::move(d);
    cap_ = cap;
    head_ = 0;
  }
  std::unique_ptr<T[]> data_;
  std::size_t cap_ = 0, head_ = 0, size_ = 0;
};

}  // namespace rtcpeer::sctp
