#include "ice/agent.hpp"

#include <algorithm>

#include "common/log.hpp"

namespace rtcpeer::ice {
namespace {

// Foundations (RFC 8445 5.1.1.3): equal for the same type, base IP and STUN server. A short hash keeps them
// within the 32 ice-char limit.
std::string foundationFor(std::string_view type, const SocketAddress& base, const SocketAddress& server) {
  std::uint32_t h = 2166136261u;
  auto mix = [&h](std::string_view s) {
    for (char c : s) h = (h ^ static_cast<std::uint8_t>(c)) * 16777619u;
  };
  mix(type);
  mix(base.ipString());
  if (server.valid()) mix(server.toString());
  return std::to_string(h);
}

}  // namespace

std::string_view toString(State s) noexcept {
  switch (s) {
    case State::New: return "new";
    case State::Checking: return "checking";
    case State::Connected: return "connected";
    case State::Completed: return "completed";
    case State::Disconnected: return "disconnected";
    case State::Failed: return "failed";
    case State::Closed: return "closed";
  }
  return "new";
}

Agent::Agent(AgentConfig config, Random& random)
    : config_(std::move(config)), random_(random), role_(config_.role), tieBreaker_(random.u64()) {
  if (config_.lite) {
    // RFC 8445 2.5 / 5.1.1.1: a lite agent has host candidates only; 6.1.1: it is always controlled (a lite peer
    // of a lite agent is refused by the caller).
    config_.stunServers.clear();
    config_.turnServers.clear();
    config_.pendingNames = 0;
    config_.relayOnly = false;
    role_ = Role::Controlled;
  }
  local_ = config_.local;
  if (local_.ufrag.empty() || local_.pwd.empty()) generateCredentials();
}

void Agent::generateCredentials() {
  // RFC 8445 5.3: ufrag >= 24 bits and pwd >= 128 bits of randomness; 8 and 24 ice-chars give 48 and 144 bits.
  local_.ufrag = random_.iceChars(8);
  local_.pwd = random_.iceChars(24);
}

void Agent::emit(Event e) { events_.push_back(std::move(e)); }

void Agent::setState(State s) {
  if (s == state_) return;
  RTCPEER_LOG(Debug, "ice", "state " << toString(state_) << " -> " << toString(s));
  state_ = s;
  Event e{Event::Kind::StateChanged};
  e.state = s;
  emit(std::move(e));
}

void Agent::emitCandidate(const Candidate& c) {
  localCandidates_.push_back(c);
  Event e{Event::Kind::CandidateGathered};
  e.candidate = c;
  emit(std::move(e));
}

void Agent::queue(const SocketAddress& local, const SocketAddress& remote, ByteView data, Timestamp now) {
  auto si = socketIndex(local);
  if (si && sockets_[*si].relay) {
    // From a relayed address: through the TURN server (ChannelData, or a Send indication; held by the client
    // until the permission for `remote` exists).
    Relay& r = relays_[*sockets_[*si].relay];
    if (auto framed = r.client.wrap(remote, data, now)) {
      transmits_.push_back({r.base ? sockets_[*r.base].address : SocketAddress{}, r.client.server().address,
                            Bytes(framed->begin(), framed->end()), r.client.server().transport});
    }
    drainRelay(r);
    return;
  }
  transmits_.push_back({local, remote, Bytes(data.begin(), data.end())});
}

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

// ---- remote side -----------------------------------------------------------------------------------------------

void Agent::setRemoteCredentials(std::string ufrag, std::string pwd, Timestamp now) {
  if (state_ == State::Closed) return;
  if (remoteStale_ || (!remote_.ufrag.empty() && ufrag != remote_.ufrag)) {
    // The peer restarted (RFC 8445 9): forget its old candidates and pairs, but keep the selected pair (moved to
    // index 0) so data keeps flowing until the new checks select a pair.
    std::vector<Remote> keptRemotes;
    std::vector<Pair> keptPairs;
    std::vector<Reflexive> keptReflexive;
    if (selected_) {
      Pair p = pairs_[*selected_];
      keptRemotes.push_back(remotes_[p.remote]);
      keptRemotes.back().authenticated = false;
      p.remote = 0;
      p.valid.reset();
      if (p.reflexive) {
        keptReflexive.push_back(reflexive_[*p.reflexive]);
        p.reflexive = 0;
      }
      p.state = PairState::Waiting;  // re-checked with the new credentials
      p.nominated = p.nominateOnSuccess = p.triggered = false;
      keptPairs.push_back(p);
      selected_ = 0;
      restarting_ = true;
    }
    remotes_ = std::move(keptRemotes);
    pairs_ = std::move(keptPairs);
    reflexive_ = std::move(keptReflexive);
    triggered_.clear();
    std::erase_if(transactions_, [](const Transaction& t) { return t.kind == TxKind::Check; });
    nominating_.reset();
    nominateAt_ = kNever;
    remoteEndOfCandidates_ = false;
    checking_ = false;
    remoteStale_ = false;
  }
  remote_ = {std::move(ufrag), std::move(pwd)};
  afterInput(now);
}

Status Agent::addRemoteCandidate(const Candidate& c, Timestamp now) {
  if (state_ == State::Closed) return okStatus();
  // Ignored, never errors: TCP (not supported yet), other components (rtcp-mux is mandatory in WebRTC), mDNS
  // names (not resolved: the peer's checks reveal its address as peer-reflexive), stale generations.
  if (c.transport != Transport::Udp || c.component != 1 || c.isMdns()) return okStatus();
  if (auto u = c.extension("ufrag"); !u.empty() && !remote_.ufrag.empty() && u != remote_.ufrag) return okStatus();
  if (!c.address.valid()) return fail("ICE: remote candidate without an address");
  if (auto r = findRemote(c.address)) {
    // Already learned as peer-reflexive from its checks: adopt the signalled type, priority and foundation.
    auto& known = remotes_[*r].candidate;
    if (known.type == CandidateType::PeerReflexive && c.type != CandidateType::PeerReflexive) {
      known = c;
      recomputePriorities();
    }
    return okStatus();
  }
  remotes_.push_back({c, false});
  formPairs(remotes_.size() - 1);
  afterInput(now);
  return okStatus();
}

void Agent::addRemoteEndOfCandidates(Timestamp now) {
  remoteEndOfCandidates_ = true;
  afterInput(now);
}

// ---- pairs -----------------------------------------------------------------------------------------------------

std::optional<std::size_t> Agent::socketIndex(const SocketAddress& local) const {
  for (std::size_t i = 0; i < sockets_.size(); ++i)
    if (sockets_[i].address == local) return i;
  return std::nullopt;
}

std::optional<std::size_t> Agent::findRemote(const SocketAddress& address) const {
  for (std::size_t i = 0; i < remotes_.size(); ++i)
    if (remotes_[i].candidate.address == address) return i;
  return std::nullopt;
}

std::optional<std::size_t> Agent::findPair(std::size_t socket, std::size_t remote) const {
  for (std::size_t i = 0; i < pairs_.size(); ++i)
    if (pairs_[i].socket == socket && pairs_[i].remote == remote && !pairs_[i].reflexive) return i;
  return std::nullopt;
}

std::uint64_t Agent::pairPriority(const Pair& p) const {
  // RFC 8445 6.1.2.3: 2^32*MIN(G,D) + 2*MAX(G,D) + (G>D?1:0), G = controlling side's candidate priority.
  const std::uint64_t l = p.reflexive ? reflexive_[*p.reflexive].priority : sockets_[p.socket].hostPriority;
  const std::uint64_t r = remotes_[p.remote].candidate.priority;
  const std::uint64_t g = role_ == Role::Controlling ? l : r, d = role_ == Role::Controlling ? r : l;
  return (std::min(g, d) << 32) + 2 * std::max(g, d) + (g > d ? 1 : 0);
}

void Agent::recomputePriorities() {
  for (auto& p : pairs_) p.priority = pairPriority(p);
}

std::uint32_t Agent::prflxPriority(std::size_t socket) const {
  return Candidate::computePriority(CandidateType::PeerReflexive, sockets_[socket].localPreference, 1);
}

std::size_t Agent::addPair(std::size_t socket, std::size_t remote, std::optional<std::size_t> reflexive) {
  Pair p;
  p.socket = socket;
  p.remote = remote;
  p.reflexive = reflexive;
  p.priority = pairPriority(p);
  pairs_.push_back(p);
  if (!reflexive) setInitialState(pairs_.size() - 1);
  return pairs_.size() - 1;
}

bool Agent::sameFoundation(const Pair& a, const Pair& b) const {
  // RFC 8445 6.1.2.6: a pair's foundation is its local and remote candidates' foundations together.
  auto local = [&](const Pair& p) -> const std::string& {
    return p.reflexive ? reflexive_[*p.reflexive].foundation : sockets_[p.socket].foundation;
  };
  return local(a) == local(b) && remotes_[a.remote].candidate.foundation == remotes_[b.remote].candidate.foundation;
}

bool Agent::blockedFoundation(const Pair& p) const {
  return std::any_of(pairs_.begin(), pairs_.end(), [&](const Pair& q) {
    return (q.state == PairState::Waiting || q.state == PairState::InProgress) && sameFoundation(p, q);
  });
}

void Agent::setInitialState(std::size_t pi) {
  // RFC 8445 6.1.2.6: only the highest-priority pair of each foundation starts Waiting, the rest Frozen: pairs of
  // one foundation tend to succeed or fail together, so checking one first saves the others' checks. With
  // trickle (RFC 8838) pairs arrive one by one: a new pair is Frozen behind a same-foundation pair that is
  // being checked or leads it, takes the lead from a lower-priority one not yet checked, and is Waiting at once
  // if its foundation already succeeded (RFC 8445 7.2.5.3.3 unfroze that foundation).
  Pair& p = pairs_[pi];
  p.state = PairState::Waiting;
  for (std::size_t i = 0; i < pairs_.size(); ++i) {
    const Pair& q = pairs_[i];
    if (i == pi || !sameFoundation(p, q)) continue;
    if (q.state == PairState::Succeeded) {
      p.state = PairState::Waiting;
      return;
    }
    const bool leads = q.state == PairState::Waiting && (q.triggered || q.priority >= p.priority);
    if (q.state == PairState::InProgress || leads) p.state = PairState::Frozen;
  }
  if (p.state != PairState::Waiting) return;
  for (std::size_t i = 0; i < pairs_.size(); ++i)
    if (i != pi && pairs_[i].state == PairState::Waiting && !pairs_[i].triggered && sameFoundation(p, pairs_[i]))
      pairs_[i].state = PairState::Frozen;
}

void Agent::unfreeze() {
  // RFC 8445 6.1.4.2 step 2: with nothing Waiting, each foundation that has no pair Waiting or In-Progress gets
  // its highest-priority Frozen pair unfrozen. Unfreezing one blocks the rest of its foundation.
  for (std::size_t i = 0; i < pairs_.size(); ++i) {
    const Pair& p = pairs_[i];
    if (p.state != PairState::Frozen || blockedFoundation(p)) continue;
    const bool best = std::none_of(pairs_.begin(), pairs_.end(), [&](const Pair& q) {
      return q.state == PairState::Frozen && q.priority > p.priority && sameFoundation(p, q);
    });
    if (best) pairs_[i].state = PairState::Waiting;
  }
}

std::size_t Agent::validPairFor(std::size_t pi, const std::optional<SocketAddress>& mapped) {
  // RFC 8445 7.2.5.3.1: the XOR-MAPPED-ADDRESS of a successful check is the local candidate the peer saw. When
  // it is not the checked pair's local candidate (a NAT mapped this path differently from what the STUN server
  // saw, e.g. a symmetric NAT), it is a known server-reflexive candidate of the same base or else a new
  // peer-reflexive one, with the PRIORITY the check carried. It is not signalled to the peer (RFC 8838 does not
  // trickle peer-reflexive candidates).
  const Pair p = pairs_[pi];  // a copy: pairs_ may grow below
  const SocketAddress& base = sockets_[p.socket].address;
  const SocketAddress& checked = p.reflexive ? reflexive_[*p.reflexive].address : base;
  // Past the bound (a peer answering with ever new mappings) the checked pair stands in for its valid pair.
  if (!mapped || *mapped == checked || reflexive_.size() >= config_.maxPairs) {
    pairs_[pi].valid.reset();
    return pi;
  }
  std::optional<std::size_t> ri;
  if (*mapped != base) {
    for (std::size_t i = 0; i < reflexive_.size() && !ri; ++i)
      if (reflexive_[i].socket == p.socket && reflexive_[i].address == *mapped) ri = i;
    if (!ri) {
      Reflexive r{p.socket, *mapped, CandidateType::PeerReflexive, prflxPriority(p.socket),
                  foundationFor("prflx", base, {})};
      for (const auto& c : localCandidates_)
        if (c.type == CandidateType::ServerReflexive && c.address == *mapped && c.related == base) {
          r.type = c.type;
          r.priority = c.priority;
          r.foundation = c.foundation;
        }
      RTCPEER_LOG(Debug, "ice", "local " << toString(r.type) << " candidate " << mapped->toString() << " (base "
                                         << base.toString() << ")");
      reflexive_.push_back(std::move(r));
      ri = reflexive_.size() - 1;
    }
  }
  // RFC 8445 7.2.5.3.2: the valid pair is (that local candidate, the remote candidate checked).
  std::optional<std::size_t> vi;
  for (std::size_t i = 0; i < pairs_.size() && !vi; ++i)
    if (pairs_[i].socket == p.socket && pairs_[i].remote == p.remote && pairs_[i].reflexive == ri) vi = i;
  if (!vi) vi = addPair(p.socket, p.remote, ri);
  pairs_[*vi].state = PairState::Succeeded;
  if (*vi == pi) pairs_[pi].valid.reset();
  else pairs_[pi].valid = vi;
  return *vi;
}

void Agent::formPairs(std::size_t remote) {
  // Pairs are formed with the bases only: a server-reflexive local candidate would give the same pair as its base
  // and is pruned anyway (RFC 8445 6.1.2.4). Loopback pairs only with loopback.
  const auto& ra = remotes_[remote].candidate.address;
  for (std::size_t s = 0; s < sockets_.size(); ++s) {
    const auto& la = sockets_[s].address;
    if (!pairable(s)) continue;
    if (la.family() != ra.family() || la.isLoopback() != ra.isLoopback() || findPair(s, remote)) continue;
    if (pairs_.size() >= config_.maxPairs) {
      RTCPEER_LOG(Debug, "ice", "check list full; pair " << la.toString() << " -> " << ra.toString() << " pruned");
      continue;
    }
    addPair(s, remote);
  }
}

bool Agent::hasCheckablePair() const {
  return std::any_of(pairs_.begin(), pairs_.end(), [](const Pair& p) { return p.state == PairState::Waiting; }) ||
         std::any_of(pairs_.begin(), pairs_.end(),
                     [&](const Pair& p) { return p.state == PairState::Frozen && !blockedFoundation(p); });
}

// ---- checks ----------------------------------------------------------------------------------------------------

void Agent::startChecksIfReady(Timestamp now) {
  if (checking_ || remoteStale_ || remote_.ufrag.empty() || pairs_.empty() || state_ == State::Closed ||
      state_ == State::Failed)  // only restart() leaves failed
    return;
  checking_ = true;
  checksStarted_ = now;
  if (state_ == State::New) setState(State::Checking);
}

void Agent::sendCheck(std::size_t pi, TxKind kind, bool useCandidate, Timestamp now) {
  Pair& p = pairs_[pi];
  Transaction t;
  t.id = stun::randomTransactionId(random_);
  t.kind = kind;
  t.index = pi;
  t.local = sockets_[p.socket].address;
  t.remote = remotes_[p.remote].candidate.address;
  t.key = remote_.pwd;
  t.useCandidate = useCandidate;
  t.controlling = role_ == Role::Controlling;
  t.rto = config_.checkRto;
  t.maxTransmits = config_.checkMaxTransmits;
  t.giveUp = kNever;
  const std::string username = remote_.ufrag + ":" + local_.ufrag;
  stun::MessageBuilder b(t.packet, stun::Method::Binding, stun::Class::Request, t.id);
  b.addString(stun::attr::Username, username).addU32(stun::attr::Priority, prflxPriority(p.socket));
  if (role_ == Role::Controlling) b.addU64(stun::attr::IceControlling, tieBreaker_);
  else b.addU64(stun::attr::IceControlled, tieBreaker_);
  if (useCandidate) b.addFlag(stun::attr::UseCandidate);
  b.addIntegrity(stun::shortTermKey(remote_.pwd)).addFingerprint();
  if (kind == TxKind::Check) {
    p.current = t.id;
    if (p.state != PairState::Succeeded) p.state = PairState::InProgress;
  }
  transmit(t, now);
  transactions_.push_back(std::move(t));
}

void Agent::transmit(Transaction& t, Timestamp now) {
  queue(t.local, t.remote, t.packet, now);
  if (t.kind != TxKind::Gather) ++stats_.checksSent;
  ++t.transmits;
  t.next = now + t.rto;
  t.rto = std::min(t.rto * 2, t.kind == TxKind::Gather ? config_.stunRtoMax : config_.checkRtoMax);
}

void Agent::pace(Timestamp now) {
  if (config_.lite) return;  // RFC 8445 2.5: a lite agent only answers checks
  if (!checking_ || remoteStale_ || state_ == State::Failed || state_ == State::Closed || now < nextPace_) return;
  std::optional<std::size_t> next;
  while (!triggered_.empty() && !next) {
    const std::size_t i = triggered_.front();
    triggered_.pop_front();
    pairs_[i].triggered = false;
    if (pairs_[i].state == PairState::Waiting) next = i;
  }
  // Ordinary checks stop once a pair is selected (RFC 8445 8.1.2), except while an ICE restart runs.
  if (!next && (!selected_ || restarting_)) {
    if (std::none_of(pairs_.begin(), pairs_.end(), [](const Pair& p) { return p.state == PairState::Waiting; }))
      unfreeze();
    for (std::size_t i = 0; i < pairs_.size(); ++i)
      if (pairs_[i].state == PairState::Waiting && (!next || pairs_[i].priority > pairs_[*next].priority)) next = i;
  }
  if (!next) return;
  sendCheck(*next, TxKind::Check, false, now);
  nextPace_ = now + config_.ta;
}

void Agent::onTransactionTimeout(const Transaction& t, Timestamp now) {
  if (t.kind != TxKind::Check) return;  // gathering results stay empty; consent is judged by consentTimeout
  Pair& p = pairs_[t.index];
  if (p.current != t.id) return;
  if (nominating_ == t.index && p.state == PairState::Succeeded) {
    // Only the nomination went unanswered on a pair that worked: nominate again (bounded by failureTimeout;
    // a dead path is caught by consent once selected).
    nominating_.reset();
    maybeNominate(now);
    return;
  }
  p.state = PairState::Failed;
  if (nominating_ == t.index) {
    nominating_.reset();
    maybeNominate(now);
  }
}

// ---- input -----------------------------------------------------------------------------------------------------

std::optional<AppDatagram> Agent::handleDatagram(const SocketAddress& local, const SocketAddress& remote,
                                                ByteView data, Timestamp now) {
  auto si = socketIndex(local);
  if (state_ == State::Closed || !si) return std::nullopt;
  // TURN server traffic first: responses, Data indications and ChannelData all come from the server's address.
  // Binding is never TURN: the same server often answers our server-reflexive queries too.
  const bool binding = stun::looksLikeStun(data) && stun::methodOf(loadBe16(data.data())) == stun::Method::Binding;
  for (auto& r : relays_) {
    if (binding || r.base != si || r.client.server().address != remote) continue;
    auto in = r.client.handleMessage(data, now);
    auto app = in ? deliverRelayed(r, *in, now) : std::nullopt;
    syncRelays(now);
    afterInput(now);
    return app;
  }
  if (!stun::looksLikeStun(data)) return AppDatagram{local, remote, data};
  handleStun(*si, remote, data, now);
  return std::nullopt;
}

void Agent::handleStun(std::size_t si, const SocketAddress& remote, ByteView data, Timestamp now) {
  // Relay-only: nothing is accepted on a host socket (the peer can only have learned it out of policy).
  if (!pairable(si)) return;
  auto m = stun::parse(data);
  if (!m || (m->hasFingerprint() && !m->fingerprintValid())) {
    ++stats_.malformed;
    return;
  }
  if (m->method() != stun::Method::Binding) return;
  switch (m->cls()) {
    case stun::Class::Request: handleRequest(si, remote, *m, now); break;
    case stun::Class::SuccessResponse:
    case stun::Class::ErrorResponse: handleResponse(si, remote, *m, now); break;
    case stun::Class::Indication: break;  // keepalives carry no authentication: nothing to learn
  }
  afterInput(now);
}

void Agent::respondError(std::size_t socket, const SocketAddress& remote, const stun::Message& m, int code,
                         std::string_view reason, std::string_view key, Timestamp now) {
  stun::MessageBuilder b(scratch_, stun::Method::Binding, stun::Class::ErrorResponse, m.transactionId());
  b.addErrorCode(code, reason);
  if (!key.empty()) b.addIntegrity(stun::shortTermKey(key));
  b.addFingerprint();
  queue(sockets_[socket].address, remote, b.finish(), now);
}

void Agent::handleRequest(std::size_t si, const SocketAddress& from, const stun::Message& m, Timestamp now) {
  // RFC 8489 9.1.3: no USERNAME/MESSAGE-INTEGRITY → 400; unknown USERNAME or bad MESSAGE-INTEGRITY → 401.
  auto username = m.username();
  if (!username || !m.hasIntegrity()) {
    ++stats_.malformed;
    respondError(si, from, m, stun::error::BadRequest, "Bad Request", {}, now);
    return;
  }
  const auto colon = username->find(':');
  const auto target = username->substr(0, colon);
  std::string key;
  bool previous = false;
  if (colon != std::string_view::npos && target == local_.ufrag) {
    key = local_.pwd;
  } else if (colon != std::string_view::npos && !previousLocal_.ufrag.empty() && target == previousLocal_.ufrag) {
    key = previousLocal_.pwd;
    previous = true;
  }
  if (key.empty() || !m.checkIntegrity(stun::shortTermKey(key))) {
    ++stats_.authFailures;
    respondError(si, from, m, stun::error::Unauthorized, "Unauthorized", {}, now);
    return;
  }
  auto priority = m.priority();
  if (!priority) {  // RFC 8445 7.3: a check without PRIORITY is malformed
    ++stats_.malformed;
    respondError(si, from, m, stun::error::BadRequest, "Bad Request", key, now);
    return;
  }
  ++stats_.checksReceived;

  // Role conflict, RFC 8445 7.3.1.1: the larger tie-breaker keeps (or takes) the controlling role. A lite agent
  // is controlled whatever the tie-breakers say (6.1.1): a full peer that thinks it is controlled gets a 487 and
  // takes the controlling role.
  if (config_.lite && m.iceControlled()) {
    ++stats_.roleConflicts;
    respondError(si, from, m, stun::error::RoleConflict, "Role Conflict", key, now);
    return;
  }
  if (role_ == Role::Controlling && m.iceControlling()) {
    ++stats_.roleConflicts;
    if (tieBreaker_ >= *m.iceControlling()) {
      respondError(si, from, m, stun::error::RoleConflict, "Role Conflict", key, now);
      return;
    }
    switchRole(Role::Controlled);
  } else if (role_ == Role::Controlled && m.iceControlled()) {
    ++stats_.roleConflicts;
    if (tieBreaker_ >= *m.iceControlled()) {
      switchRole(Role::Controlling);
    } else {
      respondError(si, from, m, stun::error::RoleConflict, "Role Conflict", key, now);
      return;
    }
  }

  stun::MessageBuilder(scratch_, stun::Method::Binding, stun::Class::SuccessResponse, m.transactionId())
      .addXorAddress(stun::attr::XorMappedAddress, from)
      .addIntegrity(stun::shortTermKey(key))
      .addFingerprint();
  queue(sockets_[si].address, from, scratch_, now);

  // RFC 8445 7.3.1.3: an unknown source is a peer-reflexive remote candidate, paired with the receiving base only.
  auto ri = findRemote(from);
  if (!ri) {
    if (pairs_.size() >= config_.maxPairs) return;  // answered, but no room to track another source
    Candidate c;
    c.foundation = "prflx" + std::to_string(remotes_.size());
    c.priority = *priority;
    c.address = from;
    c.type = CandidateType::PeerReflexive;
    remotes_.push_back({c, false});
    ri = remotes_.size() - 1;
  }
  remotes_[*ri].authenticated = true;
  auto pi = findPair(si, *ri);
  if (!pi) {
    if (pairs_.size() >= config_.maxPairs) return;
    pi = addPair(si, *ri);
  }
  noteTraffic(*pi, now);
  if (previous) return;  // a check for the pre-restart generation only keeps the old pair alive

  Pair& p = pairs_[*pi];
  if (config_.lite) {
    // RFC 8445 7.3.1.5 (lite): the pair of the check is valid as soon as it arrives; USE-CANDIDATE nominates
    // it, and the highest-priority nominated pair is selected. The peer's checks on the selected pair are its
    // consent checks: an authenticated one is our consent (we send none of our own).
    p.state = PairState::Succeeded;
    if (m.useCandidate()) p.nominated = true;
    if (selected_ == *pi) lastConsent_ = now;
    updateSelection(now);
    return;
  }
  // RFC 8445 7.3.1.5: the controlled side nominates on USE-CANDIDATE once its own check on the pair succeeded:
  // the nominated flag goes to the valid pair that check produced.
  if (m.useCandidate() && role_ == Role::Controlled) {
    if (p.state == PairState::Succeeded) {
      const std::size_t vi = p.valid.value_or(*pi);
      pairs_[vi].nominated = true;
      if (selected_ == vi) restarting_ = false;
      updateSelection(now);
    } else {
      p.nominateOnSuccess = true;
    }
  }
  // RFC 8445 7.3.1.4: a triggered check (it unfreezes a Frozen pair), or for an in-progress pair an immediate
  // retransmission (it speeds up completion when both sides are behind NATs and the first checks were filtered).
  if ((p.state == PairState::Waiting || p.state == PairState::Frozen || p.state == PairState::Failed) &&
      !p.triggered) {
    p.state = PairState::Waiting;
    p.triggered = true;
    triggered_.push_back(*pi);
  } else if (p.state == PairState::InProgress) {
    auto t = std::find_if(transactions_.begin(), transactions_.end(),
                          [&](const Transaction& x) { return x.id == p.current; });
    if (t != transactions_.end() && t->transmits < t->maxTransmits) transmit(*t, now);
  }
}

void Agent::handleResponse(std::size_t si, const SocketAddress& from, const stun::Message& m, Timestamp now) {
  const auto id = m.transactionId();
  auto it = std::find_if(transactions_.begin(), transactions_.end(), [&](const Transaction& t) { return t.id == id; });
  if (it == transactions_.end()) {
    ++stats_.unmatchedResponses;
    return;
  }
  if (it->kind == TxKind::Gather) {
    // Plain STUN to a server: no credentials exist, so the response is trusted only to come from the server.
    if (from != it->remote) return;
    Transaction t = std::move(*it);
    transactions_.erase(it);
    handleGatherResponse(t, m);
    return;
  }
  if (!m.hasIntegrity() || !m.checkIntegrity(stun::shortTermKey(it->key))) {
    ++stats_.authFailures;  // e.g. a forged or unauthenticated 401: the transaction keeps running
    return;
  }
  Transaction t = std::move(*it);
  transactions_.erase(it);
  ++stats_.responsesReceived;
  Pair& p = pairs_[t.index];
  const bool current = p.current == t.id;
  // RFC 8445 7.2.5.2.1: a response must come back on the same addresses (non-symmetric → the check failed).
  if (from != t.remote || sockets_[si].address != t.local) {
    if (current && t.kind == TxKind::Check && p.state != PairState::Succeeded) p.state = PairState::Failed;
    return;
  }
  if (m.cls() == stun::Class::ErrorResponse) {
    auto code = m.errorCode();
    if (code && code->code == stun::error::RoleConflict) {
      // RFC 8445 7.2.5.1: take the role opposite to the one the request claimed, then retry the pair.
      ++stats_.roleConflicts;
      const Role wanted = t.controlling ? Role::Controlled : Role::Controlling;
      if (role_ != wanted) switchRole(wanted);
      if (t.kind == TxKind::Check && !p.triggered) {
        if (p.state != PairState::Succeeded) p.state = PairState::Waiting;
        p.triggered = true;
        triggered_.push_back(t.index);
      }
    } else if (current && t.kind == TxKind::Check && p.state != PairState::Succeeded) {
      p.state = PairState::Failed;
    }
    return;
  }
  if (t.kind == TxKind::Consent) {
    if (selected_ == t.index) lastConsent_ = now;
    noteTraffic(t.index, now);
    return;
  }
  onPairSucceeded(t.index, t.useCandidate, m.xorMappedAddress(), now);
}

void Agent::onPairSucceeded(std::size_t pi, bool useCandidate, const std::optional<SocketAddress>& mapped,
                            Timestamp now) {
  pairs_[pi].state = PairState::Succeeded;
  // RFC 8445 7.2.5.3.3: a success unfreezes the pairs that share its foundation.
  for (auto& q : pairs_)
    if (q.state == PairState::Frozen && sameFoundation(q, pairs_[pi])) q.state = PairState::Waiting;
  const std::size_t vi = validPairFor(pi, mapped);
  Pair& v = pairs_[vi];
  // RFC 8445 7.2.5.3.4 / 7.3.1.5: nomination sets the flag on the valid pair, not on the pair checked.
  if (useCandidate && role_ == Role::Controlling) v.nominated = true;
  if (pairs_[pi].nominateOnSuccess && role_ == Role::Controlled) v.nominated = true;
  if (nominating_ == pi) nominating_.reset();
  if (v.nominated && selected_ == vi) {
    restarting_ = false;
    previousLocal_ = {};
    lastConsent_ = now;
  }
  noteTraffic(vi, now);
  updateSelection(now);
  maybeNominate(now);
}

void Agent::maybeNominate(Timestamp now) {
  if (role_ != Role::Controlling || (selected_ && !restarting_) || nominating_) return;
  // Only valid pairs are nominated (RFC 8445 8.1.1): a checked pair whose success produced another valid pair
  // (7.2.5.3.2) is not one.
  std::optional<std::size_t> best;
  for (std::size_t i = 0; i < pairs_.size(); ++i)
    if (pairs_[i].state == PairState::Succeeded && !pairs_[i].valid &&
        (!best || pairs_[i].priority > pairs_[*best].priority))
      best = i;
  if (!best) return;
  // Regular nomination (RFC 8445 8.1.1): wait briefly while a better pair may still succeed.
  const bool betterPending = std::any_of(pairs_.begin(), pairs_.end(), [&](const Pair& p) {
    return p.priority > pairs_[*best].priority && (p.state == PairState::Waiting ||
                                                  p.state == PairState::InProgress || p.state == PairState::Frozen);
  });
  if (betterPending && now < nominateAt_) {
    if (nominateAt_ == kNever) nominateAt_ = now + config_.nominationDelay;
    return;
  }
  nominateAt_ = kNever;
  nominating_ = best;
  sendCheck(*best, TxKind::Check, true, now);
}

void Agent::updateSelection(Timestamp now) {
  std::optional<std::size_t> best;
  for (std::size_t i = 0; i < pairs_.size(); ++i) {
    const Pair& p = pairs_[i];
    if (p.nominated && p.state == PairState::Succeeded && (!best || p.priority > pairs_[*best].priority)) best = i;
  }
  if (best && best != selected_) select(best, now);
}

void Agent::select(std::optional<std::size_t> pi, Timestamp now) {
  selected_ = pi;
  Event e{Event::Kind::SelectedPairChanged};
  e.selected = selectedPair();
  emit(std::move(e));
  if (!pi) return;
  RTCPEER_LOG(Info, "ice", "selected " << e.selected->local.toString() << " -> " << e.selected->remote.toString());
  restarting_ = false;
  previousLocal_ = {};
  lastReceived_ = lastConsent_ = now;
  // RFC 8656 12: a channel for the selected relayed pair, so application data goes as 4-byte-header ChannelData.
  const Pair& p = pairs_[*pi];
  if (auto ri = sockets_[p.socket].relay) {
    relays_[*ri].client.bindChannel(remotes_[p.remote].candidate.address, now);
    drainRelay(relays_[*ri]);
  }
  scheduleConsent(now);
  if (state_ != State::Completed) setState(State::Connected);
}

void Agent::scheduleConsent(Timestamp now) {
  if (config_.lite) {  // consent checks are the full peer's job (RFC 7675 4); we answer them
    nextConsent_ = kNever;
    return;
  }
  // RFC 7675 5.1: randomized in [0.8, 1.2] × the interval so that checks of many flows do not synchronize.
  const auto base = config_.consentInterval.count();
  nextConsent_ = now + Duration(random_.between(base * 8 / 10, base * 12 / 10));
}

void Agent::noteTraffic(std::size_t pi, Timestamp now) {
  // Any pair on the selected pair's path counts: a reflexive valid pair shares it with the pair it was checked as.
  if (!selected_ || pairs_[*selected_].socket != pairs_[pi].socket || pairs_[*selected_].remote != pairs_[pi].remote)
    return;
  lastReceived_ = now;
  if (state_ == State::Disconnected) setState(State::Connected);
}

void Agent::noteReceived(const SocketAddress& local, const SocketAddress& remote, Timestamp now) {
  auto si = socketIndex(local);
  auto ri = findRemote(remote);
  if (!si || !ri) return;
  if (auto pi = findPair(*si, *ri)) noteTraffic(*pi, now);
}

void Agent::switchRole(Role r) {
  RTCPEER_LOG(Info, "ice", "role conflict: switching to " << (r == Role::Controlling ? "controlling" : "controlled"));
  role_ = r;
  recomputePriorities();
  nominating_.reset();
  nominateAt_ = kNever;
  Event e{Event::Kind::RoleChanged};
  e.role = r;
  emit(std::move(e));
}

void Agent::updateChecklistOutcome(Timestamp now) {
  if (state_ == State::Closed || state_ == State::Failed) return;
  if (selected_) {
    if (state_ == State::Disconnected) return;
    const bool done = gathering_ == GatheringState::Complete && remoteEndOfCandidates_ && !restarting_;
    setState(done ? State::Completed : State::Connected);
    return;
  }
  if (!checking_) {
    // Relay-only with every allocation failed: nothing can ever be paired, so fail now rather than at a timeout.
    const bool anyPairable = std::any_of(sockets_.begin(), sockets_.end(), [&](const Socket& x) {
      return !config_.relayOnly || (x.relay && relays_[*x.relay].client.state() != TurnClient::State::Failed);
    });
    if (gathering_ == GatheringState::Complete && !anyPairable && (!relays_.empty() || !unresolved_.empty())) {
      failureReason_ = "relay-only and no TURN allocation succeeded";
      for (const auto& why : unresolved_) failureReason_ += "; " + why;
      for (const auto& r : relays_) failureReason_ += "; " + r.client.failureReason();
      setState(State::Failed);
    }
    return;
  }
  // Every pair failed, no candidate can still arrive on either side and the peer never reached us: fail now
  // instead of at the timeout. (If its checks do arrive, they trigger new checks of ours until the timeout.)
  const bool allFailed =
      !pairs_.empty() &&
      std::all_of(pairs_.begin(), pairs_.end(), [](const Pair& p) { return p.state == PairState::Failed; }) &&
      std::none_of(remotes_.begin(), remotes_.end(), [](const Remote& r) { return r.authenticated; });
  if ((allFailed && remoteEndOfCandidates_ && gathering_ == GatheringState::Complete) ||
      now >= checksStarted_ + config_.failureTimeout) {
    failureReason_ = allFailed ? "every candidate pair failed" : "no candidate pair succeeded within failureTimeout";
    setState(State::Failed);
    std::erase_if(transactions_, [](const Transaction& t) { return t.kind != TxKind::Gather; });
    triggered_.clear();
    checking_ = false;
  }
}

void Agent::afterInput(Timestamp now) {
  checkGatheringDone();
  startChecksIfReady(now);
  updateChecklistOutcome(now);
  pace(now);
}

// ---- time ------------------------------------------------------------------------------------------------------

void Agent::handleTimeout(Timestamp now) {
  if (state_ == State::Closed) return;
  for (auto& r : relays_)
    if (r.client.nextDeadline() <= now) r.client.handleTimeout(now);
  syncRelays(now);
  for (std::size_t i = 0; i < transactions_.size();) {
    Transaction& t = transactions_[i];
    if (now >= t.giveUp || (t.next <= now && t.transmits >= t.maxTransmits)) {
      Transaction dead = std::move(t);
      transactions_.erase(transactions_.begin() + static_cast<std::ptrdiff_t>(i));
      onTransactionTimeout(dead, now);
      continue;
    }
    if (t.next <= now) transmit(t, now);
    ++i;
  }
  if (now >= nominateAt_) {
    nominateAt_ = now;  // forces maybeNominate past the wait
    maybeNominate(now);
  }
  if (selected_ && state_ != State::Failed) {
    if (now >= lastConsent_ + config_.consentTimeout) {
      RTCPEER_LOG(Info, "ice", "consent expired");
      failureReason_ = "consent expired: no authenticated response on the selected pair (RFC 7675)";
      setState(State::Failed);
      select(std::nullopt, now);
      transactions_.clear();
      triggered_.clear();
      checking_ = false;
      nextConsent_ = kNever;
    } else {
      if (state_ != State::Disconnected && now >= lastReceived_ + config_.disconnectedTimeout)
        setState(State::Disconnected);
      if (now >= nextConsent_) {
        sendCheck(*selected_, TxKind::Consent, false, now);
        scheduleConsent(now);
      }
    }
  }
  afterInput(now);
}

Timestamp Agent::nextDeadline() const {
  if (state_ == State::Closed) return kNever;
  Timestamp d = kNever;
  for (const auto& r : relays_) d = earliest(d, r.client.nextDeadline());
  for (const auto& t : transactions_) d = earliest(d, earliest(t.next, t.giveUp));
  if (checking_ && !config_.lite && !remoteStale_ && state_ != State::Failed &&
      (!triggered_.empty() || ((!selected_ || restarting_) && hasCheckablePair())))
    d = earliest(d, nextPace_);
  d = earliest(d, nominateAt_);
  if (selected_ && state_ != State::Failed) {
    d = earliest(d, nextConsent_);
    d = earliest(d, lastConsent_ + config_.consentTimeout);
    if (state_ != State::Disconnected) d = earliest(d, lastReceived_ + config_.disconnectedTimeout);
  }
  if (checking_ && !selected_ && state_ != State::Failed) d = earliest(d, checksStarted_ + config_.failureTimeout);
  return d;
}

// ---- commands and output ---------------------------------------------------------------------------------------

void Agent::restart(Timestamp now) {
  if (state_ == State::Closed) return;
  previousLocal_ = local_;
  generateCredentials();
  restarting_ = selected_.has_value();
  remoteStale_ = true;  // new checks wait for the peer's new credentials
  // Fresh candidates for the new generation on the same sockets.
  localCandidates_.clear();
  srflxResults_.clear();
  std::erase_if(transactions_, [](const Transaction& t) { return t.kind == TxKind::Gather; });
  gathering_ = GatheringState::Gathering;
  for (std::size_t s = 0; s < sockets_.size(); ++s) gatherOn(s, now);
  if (state_ == State::Failed) {
    checking_ = false;
    failureReason_.clear();
    setState(State::New);
  }
  afterInput(now);
}

void Agent::close() {
  if (state_ == State::Closed) return;
  for (auto& r : relays_) {  // deallocate (RFC 8656 7)
    r.client.close();
    drainRelay(r);
  }
  transactions_.clear();
  triggered_.clear();
  checking_ = false;
  if (selected_) {
    selected_.reset();
    Event e{Event::Kind::SelectedPairChanged};
    emit(std::move(e));
  }
  setState(State::Closed);
}

std::optional<Transmit> Agent::pollTransmit() {
  if (transmits_.empty()) return std::nullopt;
  Transmit t = std::move(transmits_.front());
  transmits_.pop_front();
  return t;
}

std::optional<Event> Agent::pollEvent() {
  if (events_.empty()) return std::nullopt;
  Event e = std::move(events_.front());
  events_.pop_front();
  return e;
}

std::optional<SelectedPair> Agent::selectedPair() const {
  if (!selected_ || state_ == State::Failed || state_ == State::Closed) return std::nullopt;
  const Pair& p = pairs_[*selected_];
  const Socket& s = sockets_[p.socket];
  SelectedPair out{s.address, s.address, remotes_[p.remote].candidate.address,
                   s.relay ? CandidateType::Relay : CandidateType::Host, remotes_[p.remote].candidate.type};
  if (p.reflexive) {
    out.local = reflexive_[*p.reflexive].address;
    out.localType = reflexive_[*p.reflexive].type;
  }
  return out;
}

bool Agent::isRemoteValid(const SocketAddress& local, const SocketAddress& remote) const {
  auto si = socketIndex(local);
  auto ri = findRemote(remote);
  if (!si || !ri) return false;
  if (remotes_[*ri].authenticated) return true;
  return std::any_of(pairs_.begin(), pairs_.end(), [&](const Pair& p) {
    return p.socket == *si && p.remote == *ri && p.state == PairState::Succeeded;
  });
}

}  // namespace rtcpeer::ice
