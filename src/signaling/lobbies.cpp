#include "signaling/lobbies.hpp"

#include <algorithm>
#include <vector>

namespace rtcpeer::signaling {

Lobbies::Lobbies(Random& random, Limits limits) : random_(random), limits_(limits) {}

void Lobbies::open(ConnId conn, Timestamp now) {
  if (peers_.count(conn)) return;
  if (peers_.size() >= limits_.maxPeers) {
    actions_.push_back({Action::Kind::Close, conn, "Too many peers", kCloseProtocolError});
    return;
  }
  Peer& p = peers_[conn];
  p.joinDeadline = now + limits_.joinTimeout;
  p.tokens = limits_.messageBurst;
  p.lastRefill = now;
  joinTimers_.emplace(p.joinDeadline, conn);
}

void Lobbies::text(ConnId conn, std::string_view frame, Timestamp now) {
  auto it = peers_.find(conn);
  if (it == peers_.end()) return;
  Peer& peer = it->second;
  // Token bucket: a flood from one socket must not starve the single-threaded server.
  const double elapsed = toSeconds(now - peer.lastRefill);
  peer.lastRefill = now;
  peer.tokens = std::min(limits_.messageBurst, peer.tokens + std::max(0.0, elapsed) * limits_.messagesPerSecond);
  if (peer.tokens < 1) return closeConn(conn, kCloseProtocolError, "Too many messages");
  peer.tokens -= 1;
  if (frame.size() > limits_.maxMessageSize) return closeConn(conn, kCloseProtocolError, "Message too large");
  auto message = parseMessage(frame);
  if (!message) return closeConn(conn, kCloseProtocolError, message.reason());
  handle(conn, peer, std::move(*message), now);
}

void Lobbies::tooLarge(ConnId conn, Timestamp) {
  if (peers_.count(conn)) closeConn(conn, kCloseProtocolError, "Message too large");
}

void Lobbies::binary(ConnId conn, Timestamp) {
  if (peers_.count(conn)) closeConn(conn, kCloseProtocolError, "Invalid transfer mode, must be text");
}

void Lobbies::closed(ConnId conn, Timestamp) {
  if (peers_.count(conn)) remove(conn);
}

void Lobbies::handle(ConnId conn, Peer& peer, Message m, Timestamp now) {
  if (peer.lobby.empty()) {
    if (m.type != MessageType::Join) return closeConn(conn, kCloseProtocolError, "Invalid message when not in a lobby");
    return join(conn, peer, m);
  }
  switch (m.type) {
    case MessageType::Join:
      return closeConn(conn, kCloseProtocolError, "Already in a lobby");
    case MessageType::Offer:
    case MessageType::Answer:
    case MessageType::Candidate:
      return relay(conn, peer, std::move(m));
    case MessageType::Seal:
      return seal(conn, peer, now);
    default:  // Id, PeerConnect, PeerDisconnect only travel from the server
      return closeConn(conn, kCloseProtocolError, "Invalid command");
  }
}

void Lobbies::join(ConnId conn, Peer& peer, const Message& m) {
  std::string name = m.data;
  if (name.empty()) {
    if (lobbies_.size() >= limits_.maxLobbies) return closeConn(conn, kCloseProtocolError, "Too many lobbies");
    name = freshLobbyName();
    Lobby& created = lobbies_[name];
    if (trackLobbies_) lobbyEvents_.push_back({true, name});
    created.mesh = m.id == 0;
    created.host = conn;
    peer.id = kHostId;
  } else {
    auto it = lobbies_.find(name);
    if (it == lobbies_.end()) return closeConn(conn, kCloseProtocolError, "Lobby does not exists");
    if (it->second.sealed) return closeConn(conn, kCloseProtocolError, "Lobby is sealed");
    if (it->second.members.size() >= limits_.maxLobbyMembers)
      return closeConn(conn, kCloseProtocolError, "Lobby is full");
    peer.id = freshId();
  }
  joinTimers_.erase({peer.joinDeadline, conn});
  peer.joinDeadline = kNever;
  peer.lobby = name;
  Lobby& lobby = lobbies_[name];
  // The demo's join sequence: ID, then PEER_CONNECT both ways with each member, then JOIN. In a client/server
  // lobby only the host is exchanged (the GDScript server's rule): a Godot client may add_peer() the host only.
  send(conn, MessageType::Id, peer.id, lobby.mesh ? "true" : "");
  for (const auto& [memberId, memberConn] : lobby.members) {
    if (!lobby.mesh && memberId != kHostId) continue;
    send(memberConn, MessageType::PeerConnect, peer.id);
    send(conn, MessageType::PeerConnect, memberId);
  }
  lobby.members.emplace(peer.id, conn);
  send(conn, MessageType::Join, 0, name);
}

void Lobbies::relay(ConnId conn, Peer& peer, Message m) {
  const Lobby& lobby = lobbies_.at(peer.lobby);
  auto dest = lobby.members.find(m.id);
  const bool visible = lobby.mesh || peer.id == kHostId || m.id == kHostId;
  if (dest == lobby.members.end() || dest->second == conn || !visible)
    return closeConn(conn, kCloseProtocolError, "Invalid destination");
  send(dest->second, m.type, peer.id, std::move(m.data));
}

void Lobbies::seal(ConnId conn, Peer& peer, Timestamp now) {
  if (peer.id != kHostId) return closeConn(conn, kCloseProtocolError, "Only host can seal the lobby");
  Lobby& lobby = lobbies_.at(peer.lobby);
  if (lobby.sealed) return;
  lobby.sealed = true;
  lobby.sealDeadline = now + limits_.sealCloseDelay;
  sealTimers_.emplace(lobby.sealDeadline, peer.lobby);
  for (const auto& member : lobby.members) send(member.second, MessageType::Seal, 0);
}

void Lobbies::remove(ConnId conn) {
  auto it = peers_.find(conn);
  Peer peer = std::move(it->second);
  peers_.erase(it);
  joinTimers_.erase({peer.joinDeadline, conn});
  if (peer.id != kHostId) usedIds_.erase(peer.id);
  auto lit = lobbies_.find(peer.lobby);
  if (lit == lobbies_.end()) return;
  Lobby& lobby = lit->second;
  lobby.members.erase(peer.id);
  if (lobby.host == conn) {
    // The host is the hub of every client/server lobby and the owner of every lobby: the lobby ends with it.
    // After a seal the members' meshes stand on their own, so they get the seal's normal close instead.
    const bool sealed = lobby.sealed;
    std::vector<ConnId> members;
    for (const auto& member : lobby.members) members.push_back(member.second);
    sealTimers_.erase({lobby.sealDeadline, peer.lobby});
    if (trackLobbies_) lobbyEvents_.push_back({false, peer.lobby});
    lobbies_.erase(lit);
    for (ConnId member : members) {
      peers_.at(member).lobby.clear();
      if (sealed) closeConn(member, kCloseNormal, "Seal complete");
      else closeConn(member, kCloseProtocolError, "Room host has disconnected");
    }
    return;
  }
  // A sealed lobby sends no PEER_DISCONNECT: its members may drop the WebSocket early while their WebRTC links
  // stay up, and a Godot client would tear the link down on that message.
  if (lobby.sealed) return;
  for (const auto& [memberId, memberConn] : lobby.members)
    if (lobby.mesh || memberId == kHostId) send(memberConn, MessageType::PeerDisconnect, peer.id);
}

void Lobbies::closeConn(ConnId conn, int code, std::string reason) {
  actions_.push_back({Action::Kind::Close, conn, std::move(reason), code});
  remove(conn);
}

void Lobbies::send(ConnId conn, MessageType type, std::int64_t id, std::string data) {
  actions_.push_back({Action::Kind::Send, conn, serialize(Message{type, id, std::move(data)}), 0});
}

std::optional<Action> Lobbies::pollAction() {
  if (actions_.empty()) return std::nullopt;
  Action a = std::move(actions_.front());
  actions_.pop_front();
  return a;
}

Timestamp Lobbies::nextDeadline() const {
  Timestamp t = kNever;
  if (!joinTimers_.empty()) t = earliest(t, joinTimers_.begin()->first);
  if (!sealTimers_.empty()) t = earliest(t, sealTimers_.begin()->first);
  return t;
}

void Lobbies::handleTimeout(Timestamp now) {
  while (!joinTimers_.empty() && joinTimers_.begin()->first <= now)
    closeConn(joinTimers_.begin()->second, kCloseProtocolError, "Have not joined lobby yet");
  while (!sealTimers_.empty() && sealTimers_.begin()->first <= now) {
    const std::string name = sealTimers_.begin()->second;
    sealTimers_.erase(sealTimers_.begin());
    // Closing the host ends the lobby and closes everyone else with "Seal complete" (see remove()).
    const Lobby& lobby = lobbies_.at(name);
    closeConn(lobby.host, kCloseNormal, "Seal complete");
  }
}

std::int64_t Lobbies::peerId(ConnId conn) const {
  auto it = peers_.find(conn);
  return it == peers_.end() ? 0 : it->second.id;
}

bool Lobbies::release(ConnId conn) {
  auto it = peers_.find(conn);
  if (it == peers_.end() || !it->second.lobby.empty()) return false;
  joinTimers_.erase({it->second.joinDeadline, conn});
  peers_.erase(it);
  return true;
}

void Lobbies::setIdSpace(std::uint32_t slot, std::uint32_t stride) {
  idSlot_ = slot;
  idStride_ = stride;
}

std::optional<Lobbies::LobbyEvent> Lobbies::pollLobbyEvent() {
  if (lobbyEvents_.empty()) return std::nullopt;
  LobbyEvent e = std::move(lobbyEvents_.front());
  lobbyEvents_.pop_front();
  return e;
}

std::int64_t Lobbies::freshId() {
  // Unique among connected peers and never 0 (the server) or 1 (the host): the demo servers check neither.
  for (;;) {
    const std::int64_t id =
        idStride_ ? idSlot_ + std::int64_t{idStride_} * random_.between(1, (kMaxPeerId - idSlot_) / idStride_)
                  : random_.between(2, kMaxPeerId);
    if (usedIds_.insert(id).second) return id;
  }
}

std::string Lobbies::freshLobbyName() {
  static constexpr std::string_view kAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
  for (;;) {
    std::string name(16, ' ');
    for (char& c : name) c = kAlphabet[random_.below(kAlphabet.size())];
    if (!lobbies_.count(name)) return name;
  }
}

}  // namespace rtcpeer::signaling
