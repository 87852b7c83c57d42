// Turns received DATA / I-DATA chunks into messages and delivers them in order per stream (RFC 9260 6.5, 6.6,
// 6.9; RFC 8260 for MID/FSN). DATA fragments of one message have consecutive TSNs, so they are kept as runs of
// contiguous TSNs that grow in place (in-order arrival appends to one buffer; no per-fragment allocation).
// I-DATA fragments are keyed by (stream, unordered, MID) and ordered by FSN. Per-stream state is created lazily.
#pragma once

#include <cstdint>
#include <deque>
#include <map>
#include <optional>
#include <span>
#include <tuple>
#include <unordered_map>

#include "common/result.hpp"
#include "sctp/packet/chunks.hpp"

namespace rtcpeer::sctp {

/// A received message.
struct Message {
  std::uint16_t stream = 0;
  std::uint32_t ppid = 0;
  bool unordered = false;
  Bytes payload;
};

class Reassembly {
 public:
  explicit Reassembly(std::size_t maxMessageSize) : maxMessageSize_(maxMessageSize) {}

  /// Adds a chunk whose TSN was new (`tsn64`: its unwrapped TSN). Fails if a message would exceed the maximum
  /// message size (the association aborts: the peer ignored our limit).
  Status add(const DataChunk& c, std::uint64_t tsn64, bool idata);
  std::optional<Message> pop();
  /// FORWARD-TSN / I-FORWARD-TSN (RFC 3758 3.6, RFC 8260 2.3): drops fragments up to the new cumulative TSN
  /// (`newCum64`, unwrapped) and of the listed messages, and moves ordered streams past the skipped sequence numbers.
  void skip(std::uint64_t newCum64, const ForwardTsnChunk& f);
  /// Stream reset (RFC 6525): the listed streams (all if empty) start again at sequence number 0.
  void resetStreams(std::span<const std::uint16_t> streams);
  /// A message buffer the application is done with: its capacity serves a later message (one that fits it, or a
  /// multi-fragment one, which then grows no vector), so a reader that hands buffers back receives without
  /// allocating (at most 16 are kept; the rest are freed).
  void recycle(Bytes buffer);
  /// Frees the recycled buffers.
  void releaseSpares() { std::vector<Bytes>().swap(spares_); }
  [[nodiscard]] bool hasMessages() const noexcept { return !ready_.empty(); }
  /// Bytes held here (partial, waiting for order, or delivered but not yet popped): what a_rwnd subtracts.
  /// Each message, run of fragments and out-of-order I-DATA fragment also costs kOverhead, so the window bounds
  /// how many a peer can make us hold (a flood of 1-byte fragments would otherwise cost ~100 times its bytes).
  [[nodiscard]] std::size_t bufferedBytes() const noexcept { return buffered_; }
  static constexpr std::size_t kOverhead = 64;
  void clear();

 private:
  struct Run {  // DATA fragments with TSNs [first, last] (map key is first)
    std::uint64_t last = 0;
    std::uint16_t stream = 0;
    std::uint16_t ssn = 0;
    std::uint32_t ppid = 0;
    bool begins = false, ends = false, unordered = false;
    Bytes data;
  };
  struct Partial {  // I-DATA fragments of one message
    std::uint32_t ppid = 0;
    std::optional<std::uint32_t> lastFsn;
    std::uint32_t nextFsn = 0;  // fragments [0, nextFsn) are in `data`, in order
    Bytes data;
    std::map<std::uint32_t, Bytes> ahead;  // fragments past a gap (loss or reordering) until it fills
    std::size_t bytes = 0;                 // in `data` and `ahead`
  };
  struct StreamIn {
    std::uint64_t expected = 1ull << 32;  // unwrapped next SSN / MID in order
    std::map<std::uint64_t, Message> waiting;
  };

  static constexpr std::size_t kLargeSpare = 4096;  // a spare worth starting a multi-fragment message in
  /// A recycled buffer with at least `minCapacity`, or an empty one.
  Bytes takeSpare(std::size_t minCapacity);
  /// A single-chunk message's bytes, in a recycled buffer when one fits.
  Bytes copyOut(ByteView payload);
  Status addData(const DataChunk& c, std::uint64_t tsn64);
  Status addIData(const DataChunk& c);
  void deliver(std::uint16_t stream, std::uint32_t mid, bool idata, Message m);
  void drainInOrder(StreamIn& s);

  std::size_t maxMessageSize_;
  std::size_t buffered_ = 0;
  std::map<std::uint64_t, Run> runs_;
  std::map<std::tuple<std::uint16_t, bool, std::uint32_t>, Partial> partials_;
  std::unordered_map<std::uint16_t, StreamIn> streams_;
  std::deque<Message> ready_;
  std::vector<Bytes> spares_;
};

}  // namespace rtcpeer::sctp
