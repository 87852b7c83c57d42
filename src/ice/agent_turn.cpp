// The ICE agent's TURN glue (RFC 8656): one allocation per TURN server and socket, relay candidates as extra
// local sockets, streams to TCP/TLS servers, relayed data in and out, and the relay-only policy.
#include <algorithm>

#include "ice/agent.hpp"
#include "ice/foundation.hpp"

namespace rtcpeer::ice {

using detail::foundationFor;

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

}  // namespace rtcpeer::ice
