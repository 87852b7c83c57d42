#include "datachannel/channel_manager.hpp"

#include <limits>

#include "common/log.hpp"

namespace rtcpeer::datachannel {

namespace {

constexpr std::uint8_t kZeroByte[1] = {0};

Failure failWith(Error code, std::string reason) { return fail(std::move(reason), static_cast<int>(code)); }

const char* stateName(ChannelState s) {
  switch (s) {
    case ChannelState::Connecting:
      return "connecting";
    case ChannelState::Open:
      return "open";
    case ChannelState::Closing:
      return "closing";
    case ChannelState::Closed:
      return "closed";
  }
  return "?";
}

SendParams controlParams(std::uint16_t stream) {
  SendParams p;
  p.stream = stream;
  p.ppid = static_cast<std::uint32_t>(dcep::Ppid::Control);
  return p;  // DCEP messages are always ordered and reliable (RFC 8832 §6)
}

}  // namespace

ByteView SendParams::payload(ByteView message) const noexcept { return emptyMessage ? ByteView(kZeroByte) : message; }

ChannelManager::ChannelManager(std::size_t localMaxMessageSize) : localMax_(localMaxMessageSize) {}

void ChannelManager::setRemoteMaxMessageSize(std::optional<std::uint64_t> sdpValue) {
  if (!sdpValue)
    remoteMax_ = 65536;  // RFC 8841 §6
  else if (*sdpValue == 0 || *sdpValue > std::numeric_limits<std::size_t>::max())
    remoteMax_ = std::numeric_limits<std::size_t>::max();  // 0: the peer accepts any size
  else
    remoteMax_ = static_cast<std::size_t>(*sdpValue);
}

ChannelManager::Channel* ChannelManager::find(ChannelKey key) {
  auto it = channels_.find(key);
  return it == channels_.end() ? nullptr : &it->second;
}

const ChannelInfo* ChannelManager::info(ChannelKey key) const {
  auto it = channels_.find(key);
  return it == channels_.end() ? nullptr : &it->second.info;
}

std::optional<ChannelKey> ChannelManager::channelOnStream(std::uint16_t stream) const {
  auto it = byStream_.find(stream);
  if (it == byStream_.end()) return std::nullopt;
  return it->second;
}

Result<ChannelKey> ChannelManager::create(std::string_view label, const DataChannelInit& init) {
  std::string why;
  if (init.validate(&why) != Error::Ok) return failWith(Error::InvalidParameter, why);
  if (label.size() > 0xffff) return failWith(Error::InvalidParameter, "label is longer than 65535 bytes");
  if (init.negotiated) {
    if (byStream_.contains(*init.id))
      return failWith(Error::AlreadyInUse, "stream id " + std::to_string(*init.id) + " is already in use");
    if (started_ && *init.id >= streamCount_)
      return failWith(Error::InvalidParameter, "stream id " + std::to_string(*init.id) +
                                                   " is beyond the association's " + std::to_string(streamCount_) +
                                                   " streams");
  }
  Channel c;
  c.info.label.assign(label);
  c.info.protocol = init.protocol;
  c.info.reliability.ordered = init.ordered;
  if (init.maxRetransmits) c.info.reliability.maxRetransmits = static_cast<std::uint16_t>(*init.maxRetransmits);
  if (init.maxPacketLifeTime)
    c.info.reliability.maxPacketLifeTime = static_cast<std::uint16_t>(*init.maxPacketLifeTime);
  c.info.negotiated = init.negotiated;
  if (init.negotiated) c.info.stream = *init.id;

  if (started_ && !init.negotiated) {
    auto stream = allocateStream();
    if (!stream) return failWith(Error::Unavailable, "no free SCTP stream id left for a new channel");
    c.info.stream = *stream;
  }
  ChannelKey key = nextKey_++;
  if (c.info.stream) byStream_[*c.info.stream] = key;
  auto& stored = channels_.emplace(key, std::move(c)).first->second;
  if (started_) openLocal(key, stored);
  return key;
}

std::optional<std::uint16_t> ChannelManager::allocateStream() {
  // Our parity only (RFC 8832 §6), so both sides can allocate at the same time without collisions. Ids go round
  // from the last one given out instead of taking the lowest free one: a stream whose close has just completed
  // here may still be closing at the peer (its reset answer in flight, or a browser finishing the close on another
  // thread), and an OPEN on it then would be lost. An id comes back only after all the others were used.
  const std::uint32_t first = role_ == DtlsRole::Client ? 0 : 1;
  const std::uint32_t end = std::min<std::uint32_t>(streamCount_, 65535);
  if (end <= first) return std::nullopt;
  const std::uint32_t slots = (end - first + 1) / 2;
  for (std::uint32_t i = 0; i < slots; ++i) {
    const std::uint32_t slot = (nextStream_ + i) % slots;
    const auto id = static_cast<std::uint16_t>(first + 2 * slot);
    if (!byStream_.contains(id)) {
      nextStream_ = (slot + 1) % slots;
      return id;
    }
  }
  return std::nullopt;
}

void ChannelManager::openLocal(ChannelKey key, Channel& c) {
  if (!c.info.negotiated) {
    dcep::Open open;
    open.reliability = c.info.reliability;
    open.priority = c.info.priority;
    open.label = c.info.label;
    open.protocol = c.info.protocol;
    Command cmd;
    cmd.params = controlParams(*c.info.stream);
    (void)dcep::encodeOpen(open, cmd.data);  // lengths were checked in create()
    commands_.push_back(std::move(cmd));
    c.awaitingAck = true;
  }
  // Like browsers, the opener may send right after its OPEN (RFC 8832 §6); those messages go out ordered on
  // the same stream until the ACK arrives, so they cannot overtake the OPEN.
  c.info.state = ChannelState::Open;
  events_.push_back({Event::Kind::Opened, key, {}});
}

void ChannelManager::start(DtlsRole role, std::uint16_t streamCount) {
  if (started_) return;
  started_ = true;
  role_ = role;
  streamCount_ = streamCount;
  for (auto& [key, c] : channels_) {
    if (c.info.state != ChannelState::Connecting) continue;
    if (c.info.negotiated) {
      if (*c.info.stream >= streamCount_) {
        markClosed(key, c,
                   "stream id " + std::to_string(*c.info.stream) + " is beyond the association's " +
                       std::to_string(streamCount_) + " streams");
        continue;
      }
    } else {
      auto stream = allocateStream();
      if (!stream) {
        markClosed(key, c, "no free SCTP stream id left");
        continue;
      }
      c.info.stream = *stream;
      byStream_[*stream] = key;
    }
    openLocal(key, c);
  }
}

Result<SendParams> ChannelManager::prepareSend(ChannelKey key, bool text, std::size_t size) const {
  auto it = channels_.find(key);
  if (it == channels_.end()) return failWith(Error::Unconfigured, "the channel is closed");
  const Channel& c = it->second;
  if (c.info.state != ChannelState::Open)
    return failWith(Error::Unconfigured,
                    std::string("the channel is not open (it is ") + stateName(c.info.state) + ")");
  if (size > remoteMax_)
    return failWith(Error::InvalidParameter, "message of " + std::to_string(size) +
                                                 " bytes exceeds the peer's max-message-size of " +
                                                 std::to_string(remoteMax_));
  SendParams p;
  p.stream = *c.info.stream;
  p.ppid = static_cast<std::uint32_t>(dcep::ppidFor(text, size));
  p.ordered = c.info.reliability.ordered || c.awaitingAck;
  p.maxRetransmits = c.info.reliability.maxRetransmits;
  p.maxPacketLifeTime = c.info.reliability.maxPacketLifeTime;
  p.emptyMessage = size == 0;
  return p;
}

Status ChannelManager::handleControl(std::uint16_t stream, ByteView data) {
  auto message = dcep::decode(data);
  if (!message) return message.failure();
  auto existing = byStream_.find(stream);
  if (std::holds_alternative<dcep::Ack>(*message)) {
    Channel* c = existing == byStream_.end() ? nullptr : find(existing->second);
    if (!c || !c->awaitingAck) return fail("DCEP: unexpected ACK on stream " + std::to_string(stream));
    c->awaitingAck = false;
    return {};
  }
  if (existing != byStream_.end())
    return fail("DCEP: OPEN on stream " + std::to_string(stream) + ", which already carries a channel");
  auto& open = std::get<dcep::Open>(*message);
  if (std::string why = refuseOpen(stream, open); !why.empty()) {
    Command reset;  // the peer's channel closes; no channel exists here
    reset.kind = Command::Kind::ResetStream;
    reset.params.stream = stream;
    commands_.push_back(std::move(reset));
    RTCPEER_LOG(Warning, "datachannel", "refusing the peer's OPEN on stream " << stream << ": " << why);
    return fail("DCEP: OPEN on stream " + std::to_string(stream) + " refused: " + why);
  }
  Channel c;
  c.info.label = std::move(open.label);
  c.info.protocol = std::move(open.protocol);
  c.info.reliability = open.reliability;
  c.info.priority = open.priority;
  c.info.remote = true;
  c.info.stream = stream;
  c.info.state = ChannelState::Open;
  ChannelKey key = nextKey_++;
  channels_.emplace(key, std::move(c));
  byStream_[stream] = key;
  Command ack;
  ack.params = controlParams(stream);
  dcep::encodeAck(ack.data);
  commands_.push_back(std::move(ack));
  events_.push_back({Event::Kind::Received, key, {}});
  return {};
}

std::string ChannelManager::refuseOpen(std::uint16_t stream, const dcep::Open& open) const {
  // RFC 8832 §6: the DTLS client opens on even ids, the server on odd ones. An OPEN on ours could collide with a
  // channel we open at the same time.
  if (started_ && (stream % 2 == 0) == (role_ == DtlsRole::Client))
    return std::string("the peer must open on ") + (role_ == DtlsRole::Client ? "odd" : "even") + " stream ids";
  std::size_t count = 0, names = open.label.size() + open.protocol.size();
  for (const auto& [key, c] : channels_) {
    if (!c.info.remote || c.info.state == ChannelState::Closed) continue;
    ++count;
    names += c.info.label.size() + c.info.protocol.size();
  }
  if (count >= kMaxRemoteChannels)
    return "the peer already has " + std::to_string(count) + " channels open (the limit)";
  if (names > kMaxRemoteNameBytes)
    return "labels and protocols of the peer's open channels would exceed " + std::to_string(kMaxRemoteNameBytes) +
           " bytes";
  return {};
}

Result<std::optional<Inbound>> ChannelManager::handleMessage(std::uint16_t stream, std::uint32_t ppid, ByteView data) {
  if (ppid == static_cast<std::uint32_t>(dcep::Ppid::Control)) {
    if (Status s = handleControl(stream, data); !s) return s.failure();
    return std::optional<Inbound>{};
  }
  if (!dcep::isUserData(ppid))
    return fail("unknown PPID " + std::to_string(ppid) + " on stream " + std::to_string(stream));
  auto it = byStream_.find(stream);
  Channel* c = it == byStream_.end() ? nullptr : find(it->second);
  if (!c || c->info.state == ChannelState::Closed)
    return fail("message on stream " + std::to_string(stream) + ", which has no open channel");
  // Data from the peer means it has processed our OPEN: an implicit ACK, as browsers treat it.
  c->awaitingAck = false;

  auto p = static_cast<dcep::Ppid>(ppid);
  // The deprecated PPIDs 52/54 (RFC 8831 6.6): pieces are kept until a piece with another user PPID ends the
  // message. The whole message stays within our max-message-size, and so does the total held over all channels:
  // these bytes left the SCTP receive window, so nothing else would bound them.
  if (p == dcep::Ppid::StringPartial || p == dcep::Ppid::BinaryPartial) {
    if (c->partial.size() + data.size() > localMax_ || partialTotal_ + data.size() > localMax_) {
      dropPartial(*c);
      return fail("partial message on stream " + std::to_string(stream) + " exceeds our max-message-size" +
                  (c->partial.size() + data.size() > localMax_ ? "" : " (with the other channels' partial messages)"));
    }
    c->partial.insert(c->partial.end(), data.begin(), data.end());
    partialTotal_ += data.size();
    return std::optional<Inbound>{};
  }
  Inbound in{it->second, dcep::isText(ppid), dcep::isEmpty(ppid) ? ByteView{} : data};
  if (!c->partial.empty()) {  // the final piece of a deprecated PPID 52/54 sequence
    if (c->partial.size() + in.data.size() > localMax_) {
      dropPartial(*c);
      return fail("partial message on stream " + std::to_string(stream) + " exceeds our max-message-size");
    }
    c->partial.insert(c->partial.end(), in.data.begin(), in.data.end());
    partialTotal_ -= c->partial.size() - in.data.size();
    assembled_.swap(c->partial);
    c->partial.clear();
    in.data = assembled_;
  }
  return std::optional<Inbound>{in};
}

void ChannelManager::dropPartial(Channel& c) noexcept {
  partialTotal_ -= c.partial.size();
  c.partial.clear();
}

void ChannelManager::requestReset(Channel& c) {
  if (c.resetRequested || !c.info.stream) return;
  c.resetRequested = true;
  Command cmd;
  cmd.kind = Command::Kind::ResetStream;
  cmd.params.stream = *c.info.stream;
  commands_.push_back(std::move(cmd));
}

void ChannelManager::markClosed(ChannelKey key, Channel& c, std::string reason) {
  if (c.info.state == ChannelState::Closed) return;
  c.info.state = ChannelState::Closed;
  c.awaitingAck = false;
  dropPartial(c);
  if (c.info.stream) {
    auto it = byStream_.find(*c.info.stream);
    if (it != byStream_.end() && it->second == key) byStream_.erase(it);
  }
  events_.push_back({Event::Kind::Closed, key, std::move(reason)});
}

void ChannelManager::finishIfClosed(ChannelKey key, Channel& c) {
  if (c.outgoingReset && c.incomingReset) markClosed(key, c, {});
}

void ChannelManager::close(ChannelKey key) {
  Channel* c = find(key);
  if (!c || c->info.state == ChannelState::Closing || c->info.state == ChannelState::Closed) return;
  if (!started_ || !c->info.stream) {  // nothing on the wire yet
    markClosed(key, *c, {});
    return;
  }
  c->info.state = ChannelState::Closing;
  requestReset(*c);
}

void ChannelManager::handleIncomingReset(std::uint16_t stream) {
  auto it = byStream_.find(stream);
  if (it == byStream_.end()) return;
  ChannelKey key = it->second;
  Channel& c = *find(key);
  c.incomingReset = true;
  if (c.info.state == ChannelState::Open || c.info.state == ChannelState::Connecting) {
    c.info.state = ChannelState::Closing;
    events_.push_back({Event::Kind::Closing, key, {}});
  }
  requestReset(c);  // RFC 8831 §6.7: answer a reset of the peer's outgoing stream with ours
  finishIfClosed(key, c);
}

void ChannelManager::handleOutgoingResetDone(std::uint16_t stream) {
  auto it = byStream_.find(stream);
  if (it == byStream_.end()) return;
  ChannelKey key = it->second;
  Channel& c = *find(key);
  // Only a reset we asked for closes our half. One the peer asked for (an Incoming SSN Reset Request, RFC 6525
  // 5.2.3, which the association performs on its own) just restarted the stream's sequence numbers; the channel
  // stays open until one side closes it.
  if (c.info.state != ChannelState::Closing) return;
  c.outgoingReset = true;
  finishIfClosed(key, c);
}

void ChannelManager::closeAll(std::string_view reason) {
  commands_.clear();
  for (auto& [key, c] : channels_) markClosed(key, c, std::string(reason));
}

void ChannelManager::forget(ChannelKey key) {
  auto it = channels_.find(key);
  if (it != channels_.end() && it->second.info.state == ChannelState::Closed) channels_.erase(it);
}

std::optional<Command> ChannelManager::pollCommand() {
  if (commands_.empty()) return std::nullopt;
  Command c = std::move(commands_.front());
  commands_.pop_front();
  return c;
}

std::optional<Event> ChannelManager::pollEvent() {
  if (events_.empty()) return std::nullopt;
  Event e = std::move(events_.front());
  events_.pop_front();
  return e;
}

}  // namespace rtcpeer::datachannel
