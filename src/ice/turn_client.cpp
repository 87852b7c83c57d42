// The sans-IO TURN client (turn_client.hpp, RFC 8656): Allocate with the long-term credential, refreshes,
// permissions and channel bindings, Send/Data indications and ChannelData, framing over TCP/TLS streams.
#include "ice/turn_client.hpp"

#include <algorithm>

#include "common/log.hpp"

namespace rtcpeer::ice {
namespace {

// REQUESTED-ADDRESS-FAMILY values (RFC 8656 18.1).
constexpr std::uint8_t kFamilyV6 = 0x02;

SocketAddress ipOnly(SocketAddress a) {
  a.setPort(0);
  return a;
}

std::string describeError(const stun::Message& m) {
  auto e = m.errorCode();
  if (!e) return "an error response without ERROR-CODE";
  std::string s = std::to_string(e->code);
  if (!e->reason.empty()) s += " " + std::string(e->reason);
  return s;
}

}  // namespace

std::string_view toString(TurnTransport t) noexcept {
  switch (t) {
    case TurnTransport::Udp: return "udp";
    case TurnTransport::Tcp: return "tcp";
    case TurnTransport::Tls: return "tls";
  }
  return "udp";
}

TurnClient::TurnClient(TurnClientConfig config, Random& random) : config_(std::move(config)), random_(random) {}

void TurnClient::start(Timestamp now) {
  if (state_ != State::Idle) return;
  state_ = State::Allocating;
  send(Kind::Allocate, now);
}

void TurnClient::fail(std::string reason) {
  if (state_ == State::Failed || state_ == State::Closed) return;
  failure_ = "TURN " + config_.server.address.toString() + " (" + std::string(toString(config_.server.transport)) +
             "): " + std::move(reason);
  RTCPEER_LOG(Warning, "turn", failure_);
  state_ = State::Failed;
  transactions_.clear();
  permissions_.clear();
  channels_.clear();
}

void TurnClient::handleTransportError(std::string_view reason) { fail(std::string(reason)); }

void TurnClient::close() {
  if (state_ == State::Allocated) {
    // RFC 8656 7: a Refresh with LIFETIME 0 deletes the allocation. Sent once: we are going away either way, and
    // the server reclaims an allocation whose deallocation was lost when its lifetime ends.
    Transaction t;
    t.id = stun::randomTransactionId(random_);
    t.kind = Kind::Refresh;
    t.lifetime = 0;
    build(t);
    transmits_.push_back(std::move(t.packet));
  }
  state_ = State::Closed;
  transactions_.clear();
  permissions_.clear();
  channels_.clear();
}

// ---- requests --------------------------------------------------------------------------------------------------

void TurnClient::send(Kind kind, Timestamp now, const SocketAddress& peer, std::uint16_t channel,
                      std::uint32_t lifetime, bool retriedNonce) {
  Transaction t;
  t.id = stun::randomTransactionId(random_);
  t.kind = kind;
  t.peer = peer;
  t.channel = channel;
  t.lifetime = lifetime;
  t.retriedNonce = retriedNonce;
  t.rto = config_.rto;
  t.giveUp = kNever;
  build(t);
  transmit(t, now);
  transactions_.push_back(std::move(t));
}

void TurnClient::build(Transaction& t) {
  static constexpr stun::Method kMethods[] = {stun::Method::Allocate, stun::Method::Refresh,
                                              stun::Method::CreatePermission, stun::Method::ChannelBind};
  stun::MessageBuilder b(t.packet, kMethods[static_cast<int>(t.kind)], stun::Class::Request, t.id);
  switch (t.kind) {
    case Kind::Allocate:
      b.addRequestedTransport().addU32(stun::attr::Lifetime, config_.lifetimeSeconds);
      // RFC 8656 7.1 / 18.1: without REQUESTED-ADDRESS-FAMILY the server relays IPv4. It is sent only for IPv6,
      // so requests for IPv4 stay what RFC 5766-only servers (which would answer 420 to it) understand.
      if (config_.relayFamily == SocketAddress::Family::V6)
        b.addU32(stun::attr::RequestedAddressFamily, std::uint32_t{kFamilyV6} << 24);
      break;
    case Kind::Refresh: b.addU32(stun::attr::Lifetime, t.lifetime); break;
    case Kind::Permission: b.addXorAddress(stun::attr::XorPeerAddress, t.peer); break;
    case Kind::ChannelBind:
      b.addChannelNumber(t.channel).addXorAddress(stun::attr::XorPeerAddress, t.peer);
      break;
  }
  t.authenticated = haveKey_;
  if (haveKey_) {
    // Long-term credentials (RFC 8489 9.2.4): USERNAME, REALM, NONCE and MESSAGE-INTEGRITY with MD5(u:realm:p).
    b.addString(stun::attr::Username, config_.server.username)
        .addString(stun::attr::Realm, realm_)
        .addString(stun::attr::Nonce, nonce_)
        .addIntegrity(key_);
  }
  b.addFingerprint();
}

void TurnClient::transmit(Transaction& t, Timestamp now) {
  transmits_.push_back(t.packet);
  ++t.transmits;
  if (stream()) {
    // A reliable transport retransmits for us (RFC 8489 6.2.2): one send and a single timeout.
    t.next = t.giveUp = now + config_.streamTimeout;
  } else {
    t.next = now + t.rto;
    t.rto *= 2;
  }
}

void TurnClient::addPermission(const SocketAddress& peer, Timestamp now) {
  if (state_ != State::Allocating && state_ != State::Allocated) return;
  Permission* p = findPermission(peer);
  if (!p) {
    permissions_.emplace_back();
    permissions_.back().ip = ipOnly(peer);
    p = &permissions_.back();
  }
  if (state_ == State::Allocated && !p->installed && !p->pending) {
    p->pending = true;
    send(Kind::Permission, now, p->ip);
  }
}

void TurnClient::bindChannel(const SocketAddress& peer, Timestamp now) {
  if (state_ != State::Allocated) return;
  Channel* c = findChannel(peer);
  if (!c) {
    if (nextChannel_ > stun::kMaxChannel) return;  // 4096 peers: the rest keep using Send indications
    channels_.emplace_back();
    channels_.back().peer = peer;
    channels_.back().number = nextChannel_++;
    c = &channels_.back();
  }
  if (!c->bound && !c->pending) {
    c->pending = true;
    send(Kind::ChannelBind, now, c->peer, c->number);
  }
}

bool TurnClient::hasChannel(const SocketAddress& peer) const {
  return std::any_of(channels_.begin(), channels_.end(),
                     [&](const Channel& c) { return c.bound && c.peer == peer; });
}

TurnClient::Permission* TurnClient::findPermission(const SocketAddress& peer) {
  const SocketAddress ip = ipOnly(peer);
  for (auto& p : permissions_)
    if (p.ip == ip) return &p;
  return nullptr;
}

TurnClient::Channel* TurnClient::findChannel(const SocketAddress& peer) {
  for (auto& c : channels_)
    if (c.peer == peer) return &c;
  return nullptr;
}

std::optional<ByteView> TurnClient::wrap(const SocketAddress& peer, ByteView payload, Timestamp now) {
  if (state_ != State::Allocated) return std::nullopt;
  if (const Channel* c = findChannel(peer); c && c->bound)
    return stun::writeChannelData(scratch_, c->number, payload, stream());
  Permission* p = findPermission(peer);
  if (!p || !p->installed) {
    addPermission(peer, now);
    p = findPermission(peer);
    if (p && p->held.size() < config_.maxHeld) {
      // Held as the Send indication it will become (the peer address is inside).
      stun::MessageBuilder(scratch_, stun::Method::Send, stun::Class::Indication, stun::randomTransactionId(random_))
          .addXorAddress(stun::attr::XorPeerAddress, peer)
          .addBytes(stun::attr::Data, payload);
      p->held.emplace_back(scratch_.begin(), scratch_.end());
    }
    return std::nullopt;
  }
  stun::MessageBuilder(scratch_, stun::Method::Send, stun::Class::Indication, stun::randomTransactionId(random_))
      .addXorAddress(stun::attr::XorPeerAddress, peer)
      .addBytes(stun::attr::Data, payload);
  return ByteView(scratch_);
}

// ---- input -----------------------------------------------------------------------------------------------------

std::optional<TurnInbound> TurnClient::handleMessage(ByteView message, Timestamp now) {
  if (state_ == State::Idle || state_ == State::Closed) return std::nullopt;
  if (stun::looksLikeChannelData(message)) {
    auto cd = stun::parseChannelData(message);
    if (!cd) return std::nullopt;
    for (const auto& c : channels_)
      if (c.bound && c.number == cd->channel) return TurnInbound{c.peer, cd->data};
    return std::nullopt;
  }
  if (!stun::looksLikeStun(message)) return std::nullopt;
  auto m = stun::parse(message);
  if (!m || (m->hasFingerprint() && !m->fingerprintValid())) return std::nullopt;
  if (m->is(stun::Method::Data, stun::Class::Indication)) {
    // RFC 8656 11.6: only from peers we hold a permission for.
    auto peer = m->xorPeerAddress();
    auto data = m->data();
    const Permission* p = peer ? findPermission(*peer) : nullptr;
    if (!peer || !data || !p || !p->installed) return std::nullopt;
    return TurnInbound{*peer, *data};
  }
  if (m->cls() != stun::Class::SuccessResponse && m->cls() != stun::Class::ErrorResponse) return std::nullopt;
  const auto id = m->transactionId();
  auto it = std::find_if(transactions_.begin(), transactions_.end(), [&](const Transaction& t) { return t.id == id; });
  if (it == transactions_.end()) return std::nullopt;
  // Responses to authenticated requests must be signed with our key (RFC 8489 9.2.5); an unsigned 401/438 is
  // still read because those are how the server hands out a realm and fresh nonces.
  if (it->authenticated && m->hasIntegrity() && !m->checkIntegrity(key_)) return std::nullopt;
  if (it->authenticated && !m->hasIntegrity() && m->cls() == stun::Class::SuccessResponse) return std::nullopt;
  Transaction t = std::move(*it);
  transactions_.erase(it);
  if (m->cls() == stun::Class::SuccessResponse) onResponse(std::move(t), *m, now);
  else onError(t, *m, now);
  return std::nullopt;
}

void TurnClient::onResponse(Transaction t, const stun::Message& m, Timestamp now) {
  // Refresh at 3/4 of what the server granted: well before expiry even after a few retransmissions.
  auto refreshIn = [](std::uint32_t seconds) { return Duration(std::int64_t{seconds} * 750'000); };
  switch (t.kind) {
    case Kind::Allocate: {
      if (state_ != State::Allocating) return;
      auto relayed = m.xorRelayedAddress();
      if (!relayed) return fail("Allocate success without XOR-RELAYED-ADDRESS");
      if (relayed->family() != config_.relayFamily)
        return fail("asked for an IPv" + std::to_string(static_cast<int>(config_.relayFamily)) +
                    " relayed address, got " + relayed->toString());
      relayed_ = *relayed;
      mapped_ = m.xorMappedAddress().value_or(SocketAddress{});
      refreshAt_ = now + refreshIn(m.lifetime().value_or(config_.lifetimeSeconds));
      state_ = State::Allocated;
      RTCPEER_LOG(Info, "turn", "allocated " << relayed_.toString() << " on " << config_.server.address.toString());
      for (auto& p : permissions_) {  // asked for while allocating
        p.pending = true;
        send(Kind::Permission, now, p.ip);
      }
      break;
    }
    case Kind::Refresh:
      if (t.lifetime > 0 && state_ == State::Allocated)
        refreshAt_ = now + refreshIn(m.lifetime().value_or(t.lifetime));
      break;
    case Kind::Permission:
      if (Permission* p = findPermission(t.peer)) {
        p->installed = true;
        p->pending = false;
        p->refreshAt = now + config_.permissionRefresh;
        for (auto& packet : p->held) transmits_.push_back(std::move(packet));
        p->held.clear();
      }
      break;
    case Kind::ChannelBind:
      if (Channel* c = findChannel(t.peer)) {
        c->bound = true;
        c->pending = false;
        c->refreshAt = now + config_.channelRefresh;
      }
      // A channel binding also installs or refreshes the permission for its IP (RFC 8656 12).
      if (Permission* p = findPermission(t.peer); p && p->installed) p->refreshAt = now + config_.permissionRefresh;
      break;
  }
}

void TurnClient::onError(Transaction& t, const stun::Message& m, Timestamp now) {
  const int code = m.errorCode() ? m.errorCode()->code : 0;
  const bool retryable = code == stun::error::Unauthorized ? !t.authenticated : code == stun::error::StaleNonce;
  if (retryable && !t.retriedNonce) {
    auto realm = m.realm();
    auto nonce = m.nonce();
    if (nonce && (realm || !realm_.empty())) {
      if (realm) realm_ = *realm;
      nonce_ = *nonce;
      key_ = stun::longTermKey(config_.server.username, realm_, config_.server.password);
      haveKey_ = true;
      // The first 401 is the normal challenge; a 438 may come again after that, but only once per request.
      send(t.kind, now, t.peer, t.channel, t.lifetime, code == stun::error::StaleNonce);
      return;
    }
  }
  switch (t.kind) {
    case Kind::Allocate:
      if (code == stun::error::Unauthorized)
        return fail("the server rejected the username/credential (" + describeError(m) + ")");
      if (code == stun::error::AllocationQuotaReached) return fail("allocation quota reached (" + describeError(m) + ")");
      if (code == stun::error::AddressFamilyNotSupported)
        return fail("the server cannot relay IPv" + std::to_string(static_cast<int>(config_.relayFamily)) + " (" +
                    describeError(m) + ")");
      return fail("Allocate failed: " + describeError(m));
    case Kind::Refresh:
      if (t.lifetime > 0) fail("refresh failed: " + describeError(m));
      return;
    case Kind::Permission:
      // Not fatal: this peer (e.g. a forbidden address) is unreachable through the relay, others are fine.
      RTCPEER_LOG(Info, "turn", "CreatePermission " << t.peer.ipString() << ": " << describeError(m));
      std::erase_if(permissions_, [&](const Permission& p) { return p.ip == t.peer; });
      return;
    case Kind::ChannelBind:
      RTCPEER_LOG(Info, "turn", "ChannelBind " << t.peer.toString() << ": " << describeError(m));
      std::erase_if(channels_, [&](const Channel& c) { return c.peer == t.peer; });  // Send indications go on
      return;
  }
}

void TurnClient::onTimeout(const Transaction& t) {
  switch (t.kind) {
    case Kind::Allocate: return fail("no answer to Allocate (server unreachable?)");
    case Kind::Refresh:
      if (t.lifetime > 0) fail("no answer to Refresh");
      return;
    case Kind::Permission:
      std::erase_if(permissions_, [&](const Permission& p) { return p.ip == t.peer; });
      return;
    case Kind::ChannelBind:
      std::erase_if(channels_, [&](const Channel& c) { return c.peer == t.peer; });
      return;
  }
}

void TurnClient::appendStream(ByteView bytes) {
  if (state_ == State::Failed || state_ == State::Closed) return;
  if (streamPos_ > 0) {
    stream_.erase(stream_.begin(), stream_.begin() + static_cast<std::ptrdiff_t>(streamPos_));
    streamPos_ = 0;
  }
  stream_.insert(stream_.end(), bytes.begin(), bytes.end());
}

std::optional<ByteView> TurnClient::nextFrame() {
  ByteReader r(ByteView(stream_).subspan(streamPos_));
  if (r.remaining() < 4 || state_ == State::Failed || state_ == State::Closed) return std::nullopt;
  const std::uint8_t first = r.peek();
  std::size_t size = 0;
  r.skip(2);
  const std::uint16_t length = r.u16();
  if (first < 0x04) size = stun::kHeaderSize + length;                       // STUN: 20-byte header + body
  else if (stun::looksLikeChannelData(r.whole())) size = stun::channelDataFrameSize(length, true);
  else {
    // RFC 8656 12.5: nothing else may appear on the stream; we cannot find the next frame boundary.
    fail("the stream from the server is out of sync (first byte " + std::to_string(first) + ")");
    stream_.clear();
    streamPos_ = 0;
    return std::nullopt;
  }
  if (r.whole().size() < size) return std::nullopt;
  auto frame = ByteView(stream_).subspan(streamPos_, size);
  streamPos_ += size;
  return frame;
}

// ---- time and output -------------------------------------------------------------------------------------------

void TurnClient::handleTimeout(Timestamp now) {
  if (state_ != State::Allocating && state_ != State::Allocated) return;
  for (std::size_t i = 0; i < transactions_.size();) {
    Transaction& t = transactions_[i];
    if (now >= t.giveUp || (t.next <= now && t.transmits >= config_.maxTransmits)) {
      Transaction dead = std::move(t);
      transactions_.erase(transactions_.begin() + static_cast<std::ptrdiff_t>(i));
      onTimeout(dead);
      if (state_ == State::Failed) return;
      continue;
    }
    if (t.next <= now) transmit(t, now);
    ++i;
  }
  if (state_ != State::Allocated) return;
  if (now >= refreshAt_) {
    refreshAt_ = kNever;  // re-armed by the response
    send(Kind::Refresh, now, {}, 0, config_.lifetimeSeconds);
  }
  for (auto& p : permissions_) {
    if (p.installed && !p.pending && now >= p.refreshAt) {
      p.pending = true;
      p.refreshAt = kNever;
      send(Kind::Permission, now, p.ip);
    }
  }
  for (auto& c : channels_) {
    if (c.bound && !c.pending && now >= c.refreshAt) {
      c.pending = true;
      c.refreshAt = kNever;
      send(Kind::ChannelBind, now, c.peer, c.number);
    }
  }
}

Timestamp TurnClient::nextDeadline() const {
  if (state_ != State::Allocating && state_ != State::Allocated) return kNever;
  Timestamp d = state_ == State::Allocated ? refreshAt_ : kNever;
  for (const auto& t : transactions_) d = earliest(d, earliest(t.next, t.giveUp));
  for (const auto& p : permissions_)
    if (p.installed && !p.pending) d = earliest(d, p.refreshAt);
  for (const auto& c : channels_)
    if (c.bound && !c.pending) d = earliest(d, c.refreshAt);
  return d;
}

std::optional<Bytes> TurnClient::pollTransmit() {
  if (transmits_.empty()) return std::nullopt;
  Bytes b = std::move(transmits_.front());
  transmits_.pop_front();
  return b;
}

}  // namespace rtcpeer::ice
