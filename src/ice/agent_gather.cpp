// The ICE agent's gathering: host candidates, server-reflexive queries to STUN servers, ICE server names resolved
// late, and when gathering is complete. TURN allocations are in agent_turn.cpp.
#include <algorithm>

#include "common/log.hpp"
#include "ice/agent.hpp"
#include "ice/foundation.hpp"

namespace rtcpeer::ice {

using detail::foundationFor;

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
