#include "sctp/rx/reassembly.hpp"

#include <algorithm>

#include "sctp/packet/packet.hpp"

namespace rtcpeer::sctp {

Status Reassembly::add(const DataChunk& c, std::uint64_t tsn64, bool idata) {
  return idata ? addIData(c) : addData(c, tsn64);
}

Status Reassembly::addData(const DataChunk& c, std::uint64_t tsn64) {
  buffered_ += c.payload.size();
  if (c.beginning() && c.ending()) {
    buffered_ += kOverhead;
    deliver(c.stream, c.mid, false, Message{c.stream, c.ppid, c.unordered(), copyOut(c.payload)});
    return {};
  }
  auto next = runs_.lower_bound(tsn64);
  auto it = runs_.end();
  // Append to the run ending just before, if this chunk continues its message.
  if (next != runs_.begin()) {
    auto prev = std::prev(next);
    Run& p = prev->second;
    if (p.last + 1 == tsn64 && !p.ends && !c.beginning() && p.stream == c.stream && p.unordered == c.unordered()) {
      p.data.insert(p.data.end(), c.payload.begin(), c.payload.end());
      p.last = tsn64;
      p.ends = c.ending();
      it = prev;
    }
  }
  if (it == runs_.end()) {
    Run r;
    r.last = tsn64;
    r.stream = c.stream;
    r.ssn = static_cast<std::uint16_t>(c.mid);
    r.ppid = c.ppid;
    r.begins = c.beginning();
    r.ends = c.ending();
    r.unordered = c.unordered();
    // A first fragment announces a multi-packet message of unknown size: start with room for several
    // fragments so growth copies stay few (the vector then doubles).
    if (r.begins) r.data = takeSpare(kLargeSpare);
    if (r.begins) r.data.reserve(std::min(maxMessageSize_, 16 * c.payload.size()));
    r.data.assign(c.payload.begin(), c.payload.end());
    it = runs_.emplace(tsn64, std::move(r)).first;
    buffered_ += kOverhead;
  }
  // Merge with the run starting just after.
  next = std::next(it);
  Run& cur = it->second;
  if (next != runs_.end() && next->first == cur.last + 1 && !cur.ends && !next->second.begins &&
      next->second.stream == cur.stream && next->second.unordered == cur.unordered) {
    cur.data.insert(cur.data.end(), next->second.data.begin(), next->second.data.end());
    cur.last = next->second.last;
    cur.ends = next->second.ends;
    runs_.erase(next);
    buffered_ -= kOverhead;
  }
  if (cur.data.size() > maxMessageSize_) return fail("sctp: received message exceeds the maximum message size");
  if (cur.begins && cur.ends) {
    Run r = std::move(cur);
    runs_.erase(it);
    deliver(r.stream, r.ssn, false, Message{r.stream, r.ppid, r.unordered, std::move(r.data)});
  }
  return {};
}

Status Reassembly::addIData(const DataChunk& c) {
  buffered_ += c.payload.size();
  if (c.beginning() && c.ending()) {
    buffered_ += kOverhead;
    deliver(c.stream, c.mid, true, Message{c.stream, c.ppid, c.unordered(), copyOut(c.payload)});
    return {};
  }
  auto key = std::make_tuple(c.stream, c.unordered(), c.mid);
  auto [entry, fresh] = partials_.try_emplace(key);
  Partial& p = entry->second;
  if (fresh) buffered_ += kOverhead;
  if (fresh) {  // in-order fragments append to one buffer, as DATA runs do
    p.data = takeSpare(kLargeSpare);
    p.data.clear();
  }
  const std::uint32_t fsn = c.beginning() ? 0 : c.fsn;
  // The same FSN under a different TSN (RFC 8260 2.1 leaves FSN unique per message): keep the first copy.
  const bool duplicate = fsn < p.nextFsn || (fsn > p.nextFsn && p.ahead.contains(fsn)) ||
                         (p.lastFsn && fsn > *p.lastFsn);
  if (duplicate) {
    buffered_ -= c.payload.size();
    return {};
  }
  if (c.beginning()) p.ppid = c.ppid;
  if (c.ending()) p.lastFsn = fsn;
  p.bytes += c.payload.size();
  if (p.bytes > maxMessageSize_) return fail("sctp: received message exceeds the maximum message size");
  if (fsn > p.nextFsn) {
    p.ahead.try_emplace(fsn, c.payload.begin(), c.payload.end());
    buffered_ += kOverhead;
    return {};
  }
  if (p.data.empty()) p.data.reserve(std::min(maxMessageSize_, 16 * c.payload.size()));
  p.data.insert(p.data.end(), c.payload.begin(), c.payload.end());
  ++p.nextFsn;
  for (auto it = p.ahead.begin(); it != p.ahead.end() && it->first == p.nextFsn; it = p.ahead.erase(it)) {
    p.data.insert(p.data.end(), it->second.begin(), it->second.end());
    ++p.nextFsn;
    buffered_ -= kOverhead;
  }
  if (!p.lastFsn || p.nextFsn != *p.lastFsn + 1) return {};
  for (const auto& [f, stray] : p.ahead) buffered_ -= stray.size() + kOverhead;  // FSNs past the last: a peer's error
  Message m{c.stream, p.ppid, c.unordered(), std::move(p.data)};
  partials_.erase(entry);
  deliver(c.stream, c.mid, true, std::move(m));
  return {};
}

void Reassembly::deliver(std::uint16_t stream, std::uint32_t mid, bool idata, Message m) {
  if (m.unordered) {
    ready_.push_back(std::move(m));
    return;
  }
  StreamIn& s = streams_[stream];
  std::int64_t diff = idata ? static_cast<std::int32_t>(mid - static_cast<std::uint32_t>(s.expected))
                            : static_cast<std::int16_t>(static_cast<std::uint16_t>(mid - s.expected));
  if (diff < 0) {  // an old sequence number the TSN check did not catch (peer bug): drop
    buffered_ -= m.payload.size() + kOverhead;
    return;
  }
  if (diff > 0) {
    std::size_t size = m.payload.size() + kOverhead;
    if (!s.waiting.emplace(s.expected + static_cast<std::uint64_t>(diff), std::move(m)).second) buffered_ -= size;
    return;
  }
  ready_.push_back(std::move(m));
  ++s.expected;
  drainInOrder(s);
}

void Reassembly::drainInOrder(StreamIn& s) {
  while (!s.waiting.empty() && s.waiting.begin()->first <= s.expected) {
    if (s.waiting.begin()->first == s.expected) {
      ready_.push_back(std::move(s.waiting.begin()->second));
      ++s.expected;
    } else {
      buffered_ -= s.waiting.begin()->second.payload.size() + kOverhead;  // skipped by a FORWARD-TSN
    }
    s.waiting.erase(s.waiting.begin());
  }
}

void Reassembly::skip(std::uint64_t newCum64, const ForwardTsnChunk& f) {
  while (!runs_.empty() && runs_.begin()->first <= newCum64) {
    buffered_ -= runs_.begin()->second.data.size() + kOverhead;
    runs_.erase(runs_.begin());
  }
  for (std::size_t i = 0; i < f.count(); ++i) {
    ForwardTsnChunk::Skip e = f.entry(i);
    if (f.idata) {
      for (auto it = partials_.lower_bound({e.stream, e.unordered, 0}); it != partials_.end();) {
        auto [stream, unordered, mid] = it->first;
        if (stream != e.stream || unordered != e.unordered) break;
        if (tsnLessEq(mid, e.mid)) {
          buffered_ -= it->second.bytes + kOverhead * (1 + it->second.ahead.size());
          it = partials_.erase(it);
        } else {
          ++it;
        }
      }
    }
    if (e.unordered) continue;
    StreamIn& s = streams_[e.stream];
    std::int64_t diff = f.idata ? static_cast<std::int32_t>(e.mid - static_cast<std::uint32_t>(s.expected))
                                : static_cast<std::int16_t>(static_cast<std::uint16_t>(e.mid - s.expected));
    if (diff < 0) continue;
    // Complete messages up to the skipped one are still delivered, in order (RFC 3758 3.6).
    std::uint64_t last = s.expected + static_cast<std::uint64_t>(diff);
    while (!s.waiting.empty() && s.waiting.begin()->first <= last) {
      ready_.push_back(std::move(s.waiting.begin()->second));
      s.waiting.erase(s.waiting.begin());
    }
    s.expected = last + 1;
    drainInOrder(s);
  }
}

void Reassembly::resetStreams(std::span<const std::uint16_t> streams) {
  auto drop = [&](auto it) {
    for (auto& [k, m] : it->second.waiting) buffered_ -= m.payload.size() + kOverhead;
    return streams_.erase(it);
  };
  if (streams.empty()) {
    for (auto it = streams_.begin(); it != streams_.end();) it = drop(it);
    return;
  }
  for (auto id : streams)
    if (auto it = streams_.find(id); it != streams_.end()) drop(it);
}

void Reassembly::recycle(Bytes buffer) {
  constexpr std::size_t kSpares = 16;
  if (spares_.size() < kSpares && buffer.capacity() > 0 && buffer.capacity() <= maxMessageSize_ + kLargeSpare)
    spares_.push_back(std::move(buffer));
}

Bytes Reassembly::takeSpare(std::size_t minCapacity) {
  // At most kSpares entries: a scan from the newest is cheaper than keeping them sorted.
  for (auto it = spares_.rbegin(); it != spares_.rend(); ++it) {
    if (it->capacity() < minCapacity) continue;
    Bytes b = std::move(*it);
    spares_.erase(std::next(it).base());
    return b;
  }
  return {};
}

Bytes Reassembly::copyOut(ByteView payload) {
  Bytes b = takeSpare(std::max<std::size_t>(payload.size(), 1));
  b.assign(payload.begin(), payload.end());
  return b;
}

std::optional<Message> Reassembly::pop() {
  if (ready_.empty()) return std::nullopt;
  Message m = std::move(ready_.front());
  ready_.pop_front();
  buffered_ -= m.payload.size() + kOverhead;
  return m;
}

void Reassembly::clear() {
  runs_.clear();
  partials_.clear();
  streams_.clear();
  ready_.clear();
  buffered_ = 0;
}

}  // namespace rtcpeer::sctp
