// The core's SCTP and data-channel glue: association events and stream resets, DCEP and channel events, messages
// held back for a reused stream id, delivery to the channels (Message outputs), and the channels' API calls.
#include <algorithm>

#include "common/log.hpp"
#include "peer/connection.hpp"

namespace rtcpeer::peer {

namespace {

// Messages held back for a stream id the peer reused before our close of it completed (see Connection::holdBack).
constexpr std::size_t kMaxHeldMessages = 256;

}  // namespace

void Connection::handleSctpEvent(const sctp::Event& e, Timestamp now) {
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
      sctp_->abort("restart refused: the data channels did not survive it", now);
      failConnection("the peer restarted the SCTP association: its data channels and unacknowledged "
                     "messages are lost",
                     now);
      break;
    case sctp::Event::Type::Closed:
      channels_.closeAll("the SCTP association was shut down");
      setConnection(ConnectionState::Closed, "the peer shut the SCTP association down");
      break;
    case sctp::Event::Type::Aborted:
      if (e.peerUserAbort) {  // the remote application closed its connection (what browsers send on close())
        RTCPEER_LOG(Info, "peer", "the peer closed the connection (SCTP ABORT: " << e.reason << ")");
        channels_.closeAll("the peer closed the connection");
        setConnection(ConnectionState::Closed, "the peer closed the connection (SCTP ABORT: " + e.reason + ")");
      } else {
        failConnection("SCTP association aborted: " + e.reason, now);
      }
      break;
  }
}

void Connection::handleStreamReset(const sctp::StreamReset& r) {
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

void Connection::handleMessage(std::uint16_t stream, std::uint32_t ppid, Bytes& payload) {
  auto in = channels_.handleMessage(stream, ppid, payload);
  // An OPEN creates the channel that the next messages (often in the same packet) are delivered to.
  while (auto e = channels_.pollEvent()) handleChannelEvent(*e);
  if (!in) RTCPEER_LOG(Info, "peer", "data channel: " << in.reason());
  else if (*in) deliverMessage((*in)->channel, (*in)->text, (*in)->data, &payload);
}

// The peer may reuse a stream id as soon as it has seen both directions of the stream reset (RFC 8831 §6.7), which
// is when it receives our answer to its reset request; our own request may still await the peer's answer. So the
// new channel's OPEN can arrive while the old channel is still Closing here: in the same receive batch as that
// answer (the association hands out messages before reset completions), or ahead of it when the answer was lost
// and our request is retransmitted. Refusing that OPEN would lose the channel, so it and everything after it on
// its stream wait until the old channel is Closed (releaseHeld). Returns whether the message was taken.
bool Connection::holdBack(std::uint16_t stream, std::uint32_t ppid, Bytes& payload) {
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
void Connection::releaseHeld() {
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
void Connection::closeLocallyOnly(std::uint16_t stream) {
  auto key = channels_.channelOnStream(stream);
  if (!key) return;
  closedLocally_.insert(*key);
  push(out::ChannelChanged{*key, {}});
}

void Connection::handleChannelEvent(const datachannel::Event& e) {
  using K = datachannel::Event::Kind;
  const auto* info = channels_.info(e.channel);
  RTCPEER_LOG(Debug, "peer", "channel " << e.channel << " '" << (info ? info->label : std::string("?")) << "' stream "
                                        << (info && info->stream ? int(*info->stream) : -1) << " event "
                                        << static_cast<int>(e.kind) << (e.reason.empty() ? "" : ": ") << e.reason);
  if (e.kind == K::Closed && orphans_.erase(e.channel)) {
    channels_.forget(e.channel);  // its public object is gone: nobody is told
    return;
  }
  if (e.kind == K::Received) push(out::ChannelReceived{e.channel});
  else push(out::ChannelChanged{e.channel, e.kind == K::Closed ? e.reason : std::string()});
}

ReadyState Connection::readyState(ChannelKey key) const {
  const auto* info = channels_.info(key);
  if (!info || closed_ || closedLocally_.contains(key)) return ReadyState::Closed;
  switch (info->state) {
    case datachannel::ChannelState::Connecting: return ReadyState::Connecting;
    case datachannel::ChannelState::Open: return ReadyState::Open;
    case datachannel::ChannelState::Closing: return ReadyState::Closing;
    case datachannel::ChannelState::Closed: return ReadyState::Closed;
  }
  return ReadyState::Closed;
}

void Connection::deliverMessage(ChannelKey key, bool text, ByteView data, Bytes* owned) {
  // As in the W3C API, a message arriving once close() was called (sent before the peer learned) is discarded.
  if (readyState(key) != ReadyState::Open) return;
  out::Message m;
  m.key = key;
  m.text = text;
  // Usually the message is the association's own buffer: take it instead of copying.
  if (owned && data.data() == owned->data() && data.size() == owned->size()) m.data = std::move(*owned);
  else m.data.assign(data.begin(), data.end());
  // Unread messages hold the receive window shut (back-pressure on the sender) until the application reads them.
  m.cost = readCost(m.data);
  if (sctp_) sctp_->holdUnread(m.cost);
  push(std::move(m));
}

Result<ChannelKey> Connection::createDataChannel(std::string_view label, const DataChannelInit& init,
                                                 Timestamp now) {
  auto key = channels_.create(label, init);
  if (!key) return key.failure();
  pumpChannels(now);
  dirty_ = true;  // an in-band channel on a live association opens (and sends its OPEN) now
  return *key;
}

Outcome Connection::send(ChannelKey key, ByteView message, bool text, Timestamp now) {
  pumpChannels(now);  // an OPEN still queued must go first on its stream
  auto params = channels_.prepareSend(key, text, message.size());
  if (!params) return failure(static_cast<Error>(params.failure().code), params.reason());
  if (!sctp_) return failure(Error::Unconfigured, "the connection is not established");
  sctp::SendOptions o;
  o.unordered = !params->ordered;
  if (params->maxRetransmits) o.maxRetransmits = *params->maxRetransmits;
  if (params->maxPacketLifeTime) o.lifetime = std::chrono::milliseconds(*params->maxPacketLifeTime);
  if (auto s = sctp_->send(params->stream, params->ppid, params->payload(message), o, now); !s)
    return failure(Error::Unavailable, s.reason());
  dirty_ = true;
  return Outcome::ok();
}

void Connection::closeChannel(ChannelKey key, Timestamp now) {
  dirty_ = true;
  channels_.close(key);
  pumpChannels(now);
}

void Connection::releaseChannel(ChannelKey key, Timestamp now) {
  dirty_ = true;
  channels_.close(key);
  pumpChannels(now);
  const auto* info = channels_.info(key);
  // A channel closed locally only stays in the manager (its stream id reserved) until the connection closes.
  if (!info) return;
  if (info->state == datachannel::ChannelState::Closed) channels_.forget(key);
  else orphans_.insert(key);  // forgotten when it closes
}

void Connection::released(std::size_t cost) {
  if (!sctp_ || closed_) return;
  sctp_->releaseUnread(cost);
  dirty_ = true;  // a window update may be due
}

std::size_t Connection::bufferedAmount(ChannelKey key) const {
  const auto* info = channels_.info(key);
  if (!sctp_ || !info || !info->stream) return 0;
  return sctp_->bufferedAmount(*info->stream);
}

}  // namespace rtcpeer::peer
