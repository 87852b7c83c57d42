// The ICE agent's gathering (host candidates, server-reflexive queries, ICE servers resolved late) and its TURN
// allocations (relay candidates, streams to TCP/TLS servers, relayed data).
#include <algorithm>

#include "common/log.hpp"
#include "ice/agent.hpp"
#include "ice/foundation.hpp"

namespace rtcpeer::ice {

using detail::foundationFor;

// ---- TURN ------------------------------------------------------------------------------------------------------

void Agent::startRelay(std::optional<std::size_t> base, const TurnServer& server, Timestamp now) {
  TurnClientConfig c = config_.turn;
  c.server = server;
  // The relayed address has the server's family: an IPv6-only TURN server gives an IPv6 relay candidate, which
  // pairs with the peer's IPv6 candidates.
  c.relayFamily = server.address.family();
  relays_.push_back({TurnClient(std::move(c), random_), base, std::nullopt});
  relays_.back().client.start(now);
  drainRelay(relays_.back());
}

void Agent::drainRelay(Relay& r) {
  while (auto b = r.client.pollTransmit())
    transmits_.push_back({r.base ? sockets_[*r.base].address : SocketAddress{}, r.client.server().address,
                          std::move(*b), r.client.server().transport});
}

void Agent::syncRelays(Timestamp now) {
  for (std::size_t ri = 0; ri < relays_.size(); ++ri) {
    Relay& r = relays_[ri];
    drainRelay(r);
    if (r.client.state() == TurnClient::State::Allocated && !r.socket) {
      // The relayed address becomes a local socket and a relay candidate (RFC 8445 5.1.1.2), raddr/rport = the
      // mapped address the server saw. UDP servers are preferred over TCP over TLS (RFC 8445 5.1.2.1 leaves
      // local preference to us; libwebrtc ranks relay protocols the same way).
      const auto rank = static_cast<std::uint16_t>(r.client.server().transport);
      Socket s;
      s.address = r.client.relayedAddress();
      s.localPreference = static_cast<std::uint16_t>(65535 - rank * 4096 - std::min<std::size_t>(ri, 4095));
      s.hostPriority = Candidate::computePriority(CandidateType::Relay, s.localPreference, 1);
      s.relay = ri;
      s.foundation = foundationFor("relay", r.client.server().address, r.client.server().address);
      sockets_.push_back(s);
      r.socket = sockets_.size() - 1;
      gatherOn(*r.socket, now);
      for (std::size_t rem = 0; rem < remotes_.size(); ++rem) formPairs(rem);
    }
    if (r.client.state() == TurnClient::State::Failed && !r.failureSeen) {
      r.failureSeen = true;
      // A relay lost after allocation (refresh failed, stream closed): its pairs cannot carry anything any more.
      // The selected pair, if it was one of them, is left to consent freshness to fail.
      if (r.socket)
        for (std::size_t pi = 0; pi < pairs_.size(); ++pi)
          if (pairs_[pi].socket == *r.socket && selected_ != pi) pairs_[pi].state = PairState::Failed;
    }
  }
}

Agent::Relay* Agent::findStreamRelay(TurnTransport transport, const SocketAddress& server) {
  for (auto& r : relays_)
    if (!r.base && r.client.server().transport == transport && r.client.server().address == server) return &r;
  return nullptr;
}

std::optional<AppDatagram> Agent::deliverRelayed(Relay& r, const TurnInbound& in, Timestamp now) {
  if (!r.socket) return std::nullopt;
  if (stun::looksLikeStun(in.data)) {
    handleStun(*r.socket, in.peer, in.data, now);
    return std::nullopt;
  }
  return AppDatagram{sockets_[*r.socket].address, in.peer, in.data};
}

void Agent::handleStreamInput(TurnTransport transport, const SocketAddress& server, ByteView bytes, Timestamp now) {
  Relay* r = findStreamRelay(transport, server);
  if (state_ == State::Closed || !r) return;
  r->client.appendStream(bytes);
  while (auto frame = r->client.nextFrame()) {
    auto in = r->client.handleMessage(*frame, now);
    if (!in) continue;
    if (auto app = deliverRelayed(*r, *in, now))
      streamData_.push_back({app->local, app->remote, Bytes(app->data.begin(), app->data.end())});
  }
  syncRelays(now);
  afterInput(now);
}

void Agent::handleStreamClosed(TurnTransport transport, const SocketAddress& server, std::string_view reason,
                               Timestamp now) {
  if (Relay* r = findStreamRelay(transport, server)) r->client.handleTransportError(reason);
  syncRelays(now);
  afterInput(now);
}

std::optional<StreamDatagram> Agent::pollStreamData() {
  if (streamData_.empty()) return std::nullopt;
  StreamDatagram d = std::move(streamData_.front());
  streamData_.pop_front();
  return d;
}

std::optional<WrappedDatagram> Agent::wrapForSelectedPair(ByteView payload, Timestamp now) {
  if (!selected_ || state_ == State::Failed || state_ == State::Closed) return std::nullopt;
  const Pair& p = pairs_[*selected_];
  const Socket& s = sockets_[p.socket];
  const SocketAddress& remote = remotes_[p.remote].candidate.address;
  if (!s.relay) return WrappedDatagram{s.address, remote, TurnTransport::Udp, payload};
  Relay& r = relays_[*s.relay];
  auto framed = r.client.wrap(remote, payload, now);
  drainRelay(r);
  if (!framed) return std::nullopt;
  return WrappedDatagram{r.base ? sockets_[*r.base].address : SocketAddress{}, r.client.server().address,
                         r.client.server().transport, *framed};
}

std::vector<RelayResult> Agent::relayResults() const {
  std::vector<RelayResult> out;
  for (const auto& r : relays_) {
    RelayResult x;
    x.server = r.client.server().address;
    x.transport = r.client.server().transport;
    if (r.base) x.local = sockets_[*r.base].address;
    if (r.socket) x.relayed = sockets_[*r.socket].address;
    x.error = r.client.failureReason();
    out.push_back(std::move(x));
  }
  return out;
}

bool Agent::pairable(std::size_t socket) const { return !config_.relayOnly || sockets_[socket].relay.has_value(); }

// ---- gathering -------------------------------------------------------------------------------------------------

void Agent::startGathering(std::span<const SocketAddress> sockets, Timestamp now) {
  if (state_ == State::Closed) return;
  gathering_ = GatheringState::Gathering;
  for (const auto& address : sockets) {
    if (!address.valid() || socketIndex(address)) continue;
    Socket s;
    s.address = address;
    // Earlier sockets (the shell lists the preferred interfaces first) get the higher local preference.
    s.localPreference = static_cast<std::uint16_t>(65535 - std::min<std::size_t>(sockets_.size(), 65535));
    s.hostPriority = Candidate::computePriority(CandidateType::Host, s.localPreference, 1);
    s.foundation = foundationFor("host", address, {});
    sockets_.push_back(s);
    gatherOn(sockets_.size() - 1, now);
    for (const auto& server : config_.turnServers)
      if (server.transport == TurnTransport::Udp && server.address.family() == address.family())
        startRelay(sockets_.size() - 1, server, now);
    for (std::size_t r = 0; r < remotes_.size(); ++r) formPairs(r);
  }
  for (const auto& server : config_.turnServers)  // one stream per TCP/TLS server, whatever the sockets
    if (server.transport != TurnTransport::Udp && !findStreamRelay(server.transport, server.address))
      startRelay(std::nullopt, server, now);
  syncRelays(now);
  afterInput(now);
}

void Agent::gatherOn(std::size_t si, Timestamp now) {
  const Socket& s = sockets_[si];  // a reference into sockets_: queryStun does not grow it
  if (s.relay) {
    const TurnClient& client = relays_[*s.relay].client;
    Candidate c;
    c.foundation = s.foundation;
    c.priority = s.hostPriority;
    c.address = s.address;
    c.type = CandidateType::Relay;
    c.related = client.mappedAddress();
    emitCandidate(c);
    return;
  }
  if (config_.relayOnly) return;  // the host socket only carries the TURN traffic
  Candidate host;
  host.foundation = s.foundation;
  host.priority = s.hostPriority;
  host.address = s.address;
  host.type = CandidateType::Host;
  emitCandidate(host);
  for (const auto& server : config_.stunServers) queryStun(si, server, now);
}

void Agent::queryStun(std::size_t si, const SocketAddress& server, Timestamp now) {
  const Socket& s = sockets_[si];
  if (s.relay || server.family() != s.address.family()) return;
  srflxResults_.push_back({s.address, server, std::nullopt});
  Transaction t;
  t.id = stun::randomTransactionId(random_);
  t.kind = TxKind::Gather;
  t.index = srflxResults_.size() - 1;
  t.local = s.address;
  t.remote = server;
  t.rto = config_.stunRto;
  t.maxTransmits = config_.stunMaxTransmits;
  t.giveUp = now + config_.gatheringTimeout;
  stun::MessageBuilder(t.packet, stun::Method::Binding, stun::Class::Request, t.id).addFingerprint();
  transmit(t, now);
  transactions_.push_back(std::move(t));
}

void Agent::handleResolved(const Resolved& resolved, Timestamp now) {
  if (state_ == State::Closed || config_.lite) return;
  if (config_.pendingNames > 0) --config_.pendingNames;
  if (!resolved.error.empty()) {
    RTCPEER_LOG(Warning, "ice", "ICE server " << resolved.url << " not used: " << resolved.error);
    unresolved_.push_back(resolved.url + ": " + resolved.error);
  }
  // Only sockets gathering already knows get queries here; later ones get them in startGathering (config_).
  const std::size_t hostSockets = sockets_.size();
  for (const auto& server : resolved.stun) {
    config_.stunServers.push_back(server);
    if (config_.relayOnly || gathering_ == GatheringState::New) continue;
    for (std::size_t si = 0; si < hostSockets; ++si) queryStun(si, server, now);
  }
  for (const auto& server : resolved.turn) {
    config_.turnServers.push_back(server);
    if (gathering_ == GatheringState::New) continue;
    if (server.transport != TurnTransport::Udp) {
      if (!findStreamRelay(server.transport, server.address)) startRelay(std::nullopt, server, now);
      continue;
    }
    for (std::size_t si = 0; si < hostSockets; ++si)
      if (!sockets_[si].relay && sockets_[si].address.family() == server.address.family()) startRelay(si, server, now);
  }
  syncRelays(now);
  afterInput(now);
}

void Agent::handleGatherResponse(const Transaction& t, const stun::Message& m) {
  auto& result = srflxResults_[t.index];
  if (m.cls() != stun::Class::SuccessResponse) return;
  auto mapped = m.xorMappedAddress();
  if (!mapped) mapped = m.mappedAddress();
  if (!mapped) return;
  result.mapped = mapped;
  // RFC 8445 5.1.3: a server-reflexive candidate equal to an existing candidate (e.g. on loopback or without NAT,
  // where it equals the host candidate) is redundant and not signalled.
  for (const auto& c : localCandidates_)
    if (c.address == *mapped) return;
  auto si = socketIndex(t.local);
  if (!si) return;
  Candidate c;
  c.foundation = foundationFor("srflx", t.local, t.remote);
  c.priority = Candidate::computePriority(CandidateType::ServerReflexive, sockets_[*si].localPreference, 1);
  c.address = *mapped;
  c.type = CandidateType::ServerReflexive;
  c.related = t.local;
  emitCandidate(c);
}

void Agent::checkGatheringDone() {
  if (gathering_ != GatheringState::Gathering || config_.pendingNames > 0) return;
  for (const auto& t : transactions_)
    if (t.kind == TxKind::Gather) return;
  for (const auto& r : relays_)
    if (r.client.state() == TurnClient::State::Allocating) return;
  gathering_ = GatheringState::Complete;
  emit(Event{Event::Kind::GatheringComplete});
}

}  // namespace rtcpeer::ice
