// Session's SCTP and data-channel glue: association events and stream resets, DCEP and channel events, messages
// held back for a reused stream id, delivery to the channels, and the channels' send/close/release calls.
#include <algorithm>

#include "common/log.hpp"
#include "peer/session.hpp"

namespace rtcpeer {

namespace {

// Messages held back for a stream id the peer reused before our close of it completed (see Session::holdBack).
constexpr std::size_t kMaxHeldMessages = 256;

}  // namespace

void Session::handleSctpEvent(const sctp::Event& e) {
  switch (e.type) {
    case sctp::Event::Type::Connected:
      channels_.start(dtlsClient_ ? datachannel::DtlsRole::Client : datachannel::DtlsRole::Server,
                      std::min(sctp_->outboundStreams(), sctp_->inboundStreams()));
      RTCPEER_LOG(Info, "peer", "SCTP up: " << sctp_->outboundStreams() << "/" << sctp_->inboundStreams()
                                              << " streams, I-DATA " << (sctp_->interleaving() ? "yes" : "no")
                                              << ", zero checksum " << (sctp_->sendsZeroChecksum() ? "yes" : "no"));
      if (connection_ == ConnectionState::Connecting) setConnection(ConnectionState::Connected);
      break;
    case sctp::Event::Type::Restarted:
      // RFC 9260 5.2.4 A: the peer lost its association state, so its channels and every message not yet
      // acknowledged are gone; a browser never restarts SCTP inside a live DTLS session. Nothing can be
      // resumed under the channels' backs: they close and the connection fails (the application reconnects).
      // The new association is aborted too, so the peer's application learns the same.
      sctp_->abort("restart refused: the data channels did not survive it", net::now());
      failConnection("the peer restarted the SCTP association: its data channels and unacknowledged "
                     "messages are lost");
      break;
    case sctp::Event::Type::Closed:
      channels_.closeAll("the SCTP association was shut down");
      setConnection(ConnectionState::Closed);
      break;
    case sctp::Event::Type::Aborted:
      if (e.peerUserAbort) {  // the remote application closed its connection (what browsers send on close())
        RTCPEER_LOG(Info, "peer", "the peer closed the connection (SCTP ABORT: " << e.reason << ")");
        channels_.closeAll("the peer closed the connection");
        setConnection(ConnectionState::Closed);
      } else {
        failConnection("SCTP association aborted: " + e.reason);
      }
      break;
  }
}

void Session::handleStreamReset(const sctp::StreamReset& r) {
  auto apply = [&](std::uint16_t stream) {
    if (r.incoming) channels_.handleIncomingReset(stream);
    else if (r.refused) closeLocallyOnly(stream);
    else channels_.handleOutgoingResetDone(stream);
  };
  if (!r.streams.empty()) {
    for (auto stream : r.streams) apply(stream);
    return;
  }
  // An empty list means every stream (RFC 6525 §4.1); only mapped ones matter.
  const std::uint16_t count = std::min(sctp_->outboundStreams(), sctp_->inboundStreams());
  for (std::uint32_t stream = 0; stream < count; ++stream)
    if (channels_.channelOnStream(static_cast<std::uint16_t>(stream))) apply(static_cast<std::uint16_t>(stream));
}

void Session::handleMessage(std::uint16_t stream, std::uint32_t ppid, Bytes& payload) {
  auto in = channels_.handleMessage(stream, ppid, payload);
  // An OPEN creates the channel that the next messages (often in the same packet) are delivered to.
  while (auto e = channels_.pollEvent()) handleChannelEvent(*e);
  if (!in) RTCPEER_LOG(Info, "peer", "data channel: " << in.reason());
  else if (*in) deliver((*in)->channel, (*in)->text, (*in)->data, &payload);
}

// The peer may reuse a stream id as soon as it has seen both directions of the stream reset (RFC 8831 §6.7), which
// is when it receives our answer to its reset request; our own request may still await the peer's answer. So the
// new channel's OPEN can arrive while the old channel is still Closing here: in the same receive batch as that
// answer (the association hands out messages before reset completions), or ahead of it when the answer was lost
// and our request is retransmitted. Refusing that OPEN would lose the channel, so it and everything after it on
// its stream wait until the old channel is Closed (releaseHeld). Returns whether the message was taken.
bool Session::holdBack(std::uint16_t stream, std::uint32_t ppid, Bytes& payload) {
  const bool streamHeld =
      std::any_of(held_.begin(), held_.end(), [&](const HeldMessage& h) { return h.stream == stream; });
  if (!streamHeld) {
    if (ppid != static_cast<std::uint32_t>(dcep::Ppid::Control) || payload.empty() ||
        payload[0] != dcep::kMessageOpen)
      return false;
    const auto key = channels_.channelOnStream(stream);
    const auto* info = key ? channels_.info(*key) : nullptr;
    if (!info || info->state != datachannel::ChannelState::Closing) return false;
  }
  if (held_.size() >= kMaxHeldMessages) {
    RTCPEER_LOG(Warning, "peer", "dropping a message on stream " << stream << ": more than " << kMaxHeldMessages
                                  << " wait for closing channels");
    return true;
  }
  // Held bytes count against the receive window like unread ones, so they are bounded by it too.
  if (sctp_) sctp_->holdUnread(readCost(payload));
  held_.push_back({stream, ppid, std::move(payload)});
  return true;
}

// Hands held messages over, in arrival order, for every stream whose old channel has closed.
void Session::releaseHeld() {
  auto held = std::exchange(held_, {});
  if (connection_ == ConnectionState::Failed || connection_ == ConnectionState::Closed) {
    for (const auto& h : held) sctp_->releaseUnread(readCost(h.payload));
    return;
  }
  std::vector<std::uint16_t> released, waiting;
  auto contains = [](const std::vector<std::uint16_t>& v, std::uint16_t x) {
    return std::find(v.begin(), v.end(), x) != v.end();
  };
  for (auto& h : held) {
    // A stream's held sequence starts with the OPEN: decide for the whole stream when meeting it.
    if (!contains(released, h.stream) && !contains(waiting, h.stream))
      (channels_.channelOnStream(h.stream) ? waiting : released).push_back(h.stream);
    if (contains(waiting, h.stream)) {
      held_.push_back(std::move(h));
    } else {
      sctp_->releaseUnread(readCost(h.payload));  // deliver() charges it again if it goes to an inbox
      handleMessage(h.stream, h.ppid, h.payload);
    }
  }
}

// Without a stream reset (the peer lacks RFC 6525 or refused it) the peer cannot be told. The channel is Closed
// for the application but stays Closing in the manager, which keeps its stream id reserved: handing it to a new
// channel would fail, since the peer still maps the old one (it refuses the OPEN). What the peer still sends on
// it is dropped.
void Session::closeLocallyOnly(std::uint16_t stream) {
  auto key = channels_.channelOnStream(stream);
  if (!key) return;
  closedLocally_.insert(*key);
  auto it = channelImpls_.find(*key);
  if (auto impl = it == channelImpls_.end() ? nullptr : it->second.lock()) impl->state = ReadyState::Closed;
}

void Session::handleChannelEvent(const datachannel::Event& e) {
  using K = datachannel::Event::Kind;
  const auto* info = channels_.info(e.channel);
  RTCPEER_LOG(Debug, "peer", "channel " << e.channel << " '" << (info ? info->label : std::string("?")) << "' stream "
                                        << (info && info->stream ? int(*info->stream) : -1) << " event "
                                        << static_cast<int>(e.kind) << (e.reason.empty() ? "" : ": ") << e.reason);
  if (e.kind == K::Received) {
    auto impl = std::make_shared<DataChannel::Impl>();
    impl->session = weak_from_this();
    impl->releases = releases_;
    impl->key = e.channel;
    if (info) syncChannel(*impl, *info);
    channelImpls_[e.channel] = impl;
    signals_.push_back({detail::DataChannelAccess::make(std::move(impl))});
    return;
  }
  auto it = channelImpls_.find(e.channel);
  auto impl = it == channelImpls_.end() ? nullptr : it->second.lock();
  if (impl && info) syncChannel(*impl, *info);
  if (e.kind == K::Closed) {
    if (impl && !e.reason.empty()) impl->lastError = e.reason;
    if (!impl) {  // its last public reference is gone: forget it
      channels_.forget(e.channel);
      if (it != channelImpls_.end()) channelImpls_.erase(it);
    }
  }
}

void Session::syncChannel(DataChannel::Impl& impl, const datachannel::ChannelInfo& info) {
  impl.label = info.label;
  impl.protocol = info.protocol;
  impl.id = info.stream ? *info.stream : DataChannel::kUnset;
  impl.ordered = info.reliability.ordered;
  impl.maxRetransmits = info.reliability.maxRetransmits ? *info.reliability.maxRetransmits : DataChannel::kUnset;
  impl.maxPacketLifeTime =
      info.reliability.maxPacketLifeTime ? *info.reliability.maxPacketLifeTime : DataChannel::kUnset;
  impl.negotiated = info.negotiated;
  switch (info.state) {
    case datachannel::ChannelState::Connecting: impl.state = ReadyState::Connecting; break;
    case datachannel::ChannelState::Open: impl.state = ReadyState::Open; break;
    case datachannel::ChannelState::Closing: impl.state = ReadyState::Closing; break;
    case datachannel::ChannelState::Closed: impl.state = ReadyState::Closed; break;
  }
  if (closedLocally_.contains(impl.key)) impl.state = ReadyState::Closed;
}

void Session::deliver(datachannel::ChannelKey key, bool text, ByteView data, Bytes* owned) {
  auto it = channelImpls_.find(key);
  auto impl = it == channelImpls_.end() ? nullptr : it->second.lock();
  // As in the W3C API, a message arriving once close() was called (sent before the peer learned) is discarded.
  if (!impl || impl->state != ReadyState::Open) return;
  DataChannel::Impl::Packet p;
  p.text = text;
  // Usually the message is the association's own buffer: take it instead of copying.
  if (owned && data.data() == owned->data() && data.size() == owned->size()) p.data = std::move(*owned);
  else p.data.assign(data.begin(), data.end());
  // Unread messages hold the receive window shut (back-pressure on the sender) until getPacket() takes them.
  const std::size_t cost = readCost(p.data);
  impl->inbox.push_back(std::move(p));
  impl->unreadCost += cost;
  if (sctp_) sctp_->holdUnread(cost);
}

Error Session::send(DataChannel::Impl& channel, ByteView message, bool text) {
  const Timestamp now = net::now();
  pumpChannels(now);  // an OPEN still queued must go first on its stream
  auto params = channels_.prepareSend(channel.key, text, message.size());
  if (!params) return channel.failWith(static_cast<Error>(params.failure().code), params.reason());
  if (!sctp_) return channel.failWith(Error::Unconfigured, "the connection is not established");
  sctp::SendOptions o;
  o.unordered = !params->ordered;
  if (params->maxRetransmits) o.maxRetransmits = *params->maxRetransmits;
  if (params->maxPacketLifeTime) o.lifetime = std::chrono::milliseconds(*params->maxPacketLifeTime);
  if (auto s = sctp_->send(params->stream, params->ppid, params->payload(message), o, now); !s)
    return channel.failWith(Error::Unavailable, s.reason());
  channel.lastError.clear();
  pending_ = true;
  return Error::Ok;
}

void Session::closeChannel(DataChannel::Impl& channel) {
  pending_ = true;
  channels_.close(channel.key);
  pumpChannels(net::now());
  if (const auto* info = channels_.info(channel.key)) syncChannel(channel, *info);
  else channel.state = ReadyState::Closed;
}

void Session::releaseChannel(datachannel::ChannelKey key) {
  pending_ = true;
  channels_.close(key);
  pumpChannels(net::now());
  const auto* info = channels_.info(key);
  if (!info || info->state == datachannel::ChannelState::Closed) {
    channels_.forget(key);
    channelImpls_.erase(key);
  } else if (closedLocally_.contains(key)) {
    channelImpls_.erase(key);  // the manager keeps it (and its stream id) until the connection closes
  }
}

void Session::closeReleased() {
  if (!releases_->any.load(std::memory_order_acquire)) return;
  std::vector<std::shared_ptr<DataChannel::Impl>> list;
  {
    std::lock_guard lock(releases_->mutex);
    list.swap(releases_->released);
    releases_->any.store(false, std::memory_order_relaxed);
  }
  for (const auto& impl : list) {
    released(impl->unreadCost);  // its unread messages go with it: they no longer hold the window
    releaseChannel(impl->key);
  }
}

void Session::released(std::size_t cost) {
  if (!sctp_ || closed_) return;
  sctp_->releaseUnread(cost);
  pending_ = true;  // a window update may be due: poll() sends it
}

std::size_t Session::bufferedAmount(const DataChannel::Impl& channel) const {
  if (!sctp_ || channel.id == DataChannel::kUnset) return 0;
  return sctp_->bufferedAmount(static_cast<std::uint16_t>(channel.id));
}

}  // namespace rtcpeer
