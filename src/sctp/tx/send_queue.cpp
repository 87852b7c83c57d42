#include "sctp/tx/send_queue.hpp"

#include <algorithm>

#include "sctp/packet/chunks.hpp"

namespace rtcpeer::sctp {

void SendQueue::add(std::uint16_t stream, std::uint32_t ppid, ByteView payload, bool unordered, Limits limits) {
  Stream& s = streams_[stream];
  if (s.queue.empty()) active_.push_back(stream);
  s.queue.push_back(Message{Payload::copyOf(payload), ppid, 0, 0, 0, unordered, limits, generation_});
  s.buffered += payload.size();
  total_ += payload.size();
}

std::size_t SendQueue::nextFragmentSize(std::size_t maxPayload) const noexcept {
  if (active_.empty()) return 0;
  const Message& m = streams_.find(active_[cursor_])->second.queue.front();
  return std::min<std::size_t>(maxPayload, m.data.size() - m.offset);
}

std::optional<Fragment> SendQueue::produce(std::size_t maxPayload, bool idata, Timestamp now, bool abandonPartial) {
  while (!active_.empty()) {
    std::uint16_t id = active_[cursor_];
    Stream& s = streams_.find(id)->second;
    Message& m = s.queue.front();
    bool first = m.offset == 0;
    if (m.limits.expiry <= now && (first ? m.generation < offeredBelow_ : abandonPartial)) {
      // Expired before any byte left, though offered before: dropped without consuming a sequence number (no
      // FORWARD-TSN needed).
      // Expired part-way: the rest is not sent either, or it would arrive long after the lifetime (a large message
      // behind a small window); the caller abandons the sent fragments.
      if (!first) expiredPartial_.emplace_back(id, m.data.view().data());
      std::size_t rest = m.data.size() - m.offset;
      s.buffered -= rest;
      total_ -= rest;
      ++expired_;
      s.queue.pop_front();
      if (s.queue.empty()) {
        active_.erase(active_.begin() + static_cast<std::ptrdiff_t>(cursor_));
        if (cursor_ >= active_.size()) cursor_ = 0;
      }
      continue;
    }
    if (first) m.mid = m.unordered ? (idata ? s.nextUnordered++ : 0) : s.nextOrdered++;
    std::uint32_t len = static_cast<std::uint32_t>(std::min<std::size_t>(maxPayload, m.data.size() - m.offset));
    Fragment f;
    f.data = m.data;
    f.offset = m.offset;
    f.length = len;
    f.stream = id;
    f.mid = idata ? m.mid : (m.mid & 0xFFFF);
    f.fsn = m.nextFsn++;
    f.ppid = m.ppid;
    f.maxRetransmits = m.limits.maxRetransmits;
    f.expiry = m.limits.expiry;
    f.flags = static_cast<std::uint8_t>((first ? DataChunk::kBeginning : 0) | (m.unordered ? DataChunk::kUnordered : 0));
    m.offset += len;
    s.buffered -= len;
    total_ -= len;
    bool done = m.offset == m.data.size();
    if (done) {
      f.flags |= DataChunk::kEnding;
      s.queue.pop_front();
    }
    if (done && s.queue.empty()) {
      active_.erase(active_.begin() + static_cast<std::ptrdiff_t>(cursor_));
      if (cursor_ >= active_.size()) cursor_ = 0;
    } else if (done || idata) {
      cursor_ = (cursor_ + 1) % active_.size();
    }
    return f;
  }
  return std::nullopt;
}

void SendQueue::finishFront(Stream& s, std::uint16_t id, bool rotate) {
  s.queue.pop_front();
  auto pos = std::find(active_.begin(), active_.end(), id);
  std::size_t idx = static_cast<std::size_t>(pos - active_.begin());
  if (s.queue.empty()) {
    active_.erase(pos);
    if (idx < cursor_) --cursor_;
    if (cursor_ >= active_.size()) cursor_ = 0;
  } else if (rotate && idx == cursor_) {
    cursor_ = (cursor_ + 1) % active_.size();
  }
}

void SendQueue::discardPartial(std::uint16_t stream, const std::uint8_t* payloadId) {
  auto it = streams_.find(stream);
  if (it == streams_.end() || it->second.queue.empty()) return;
  Stream& s = it->second;
  Message& m = s.queue.front();
  if (m.offset == 0 || m.data.view().data() != payloadId) return;
  std::size_t rest = m.data.size() - m.offset;
  s.buffered -= rest;
  total_ -= rest;
  finishFront(s, stream, true);
}

void SendQueue::resetStreams(std::span<const std::uint16_t> streams) {
  auto reset = [&](std::unordered_map<std::uint16_t, Stream>::iterator it) {
    if (it->second.queue.empty()) return streams_.erase(it);  // nothing left: free the state
    it->second.nextOrdered = it->second.nextUnordered = 0;
    return std::next(it);
  };
  if (streams.empty()) {
    for (auto it = streams_.begin(); it != streams_.end();) it = reset(it);
    return;
  }
  for (auto id : streams)
    if (auto it = streams_.find(id); it != streams_.end()) reset(it);
}

std::vector<std::uint16_t> SendQueue::streamIds() const {
  std::vector<std::uint16_t> ids;
  ids.reserve(streams_.size());
  for (const auto& [id, s] : streams_) ids.push_back(id);
  std::sort(ids.begin(), ids.end());  // the hash map's order is no order
  return ids;
}

std::size_t SendQueue::bufferedAmount(std::uint16_t stream) const noexcept {
  auto it = streams_.find(stream);
  return it == streams_.end() ? 0 : it->second.buffered;
}

void SendQueue::clear() {
  streams_.clear();
  active_.clear();
  cursor_ = 0;
  total_ = 0;
}

}  // namespace rtcpeer::sctp
