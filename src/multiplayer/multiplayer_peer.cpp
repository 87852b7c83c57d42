// MultiplayerPeer: the peer map, Godot's poll algorithm (with its bugs fixed, docs/GODOT_DIFFERENCES.md), packet
// routing by target / transfer mode / channel, and server relay with SceneMultiplayer's system commands.
//
// Received packets are moved out of the channels into one queue during poll(), so a relay frame or a peer
// announcement from the server is handled (and its signal fired) inside poll(), and packetPeer() is the real
// sender of a relayed packet. Buffers circulate between that queue, the application's vector and the channels,
// so a steady game loop does not allocate per packet.
#include "rtcpeer/multiplayer_peer.hpp"

#include <algorithm>
#include <chrono>
#include <cstring>
#include <deque>
#include <set>
#include <utility>

#include "common/log.hpp"
#include "multiplayer/protocol.hpp"

namespace rtcpeer {

using multiplayer::SysCommand;

namespace {
constexpr int kMaxId = 0x7FFFFFFF;
constexpr std::size_t kPoolCap = 64;
// A client whose server connection is not up this long after addPeer() fails (the PeerConnection's own
// connectTimeout counts only from the start of ICE checks, so a lost answer would otherwise wait forever).
constexpr auto kClientConnectTimeout = std::chrono::seconds(30);

enum class Mode { None, Server, Client, Mesh };

bool validMode(TransferMode m) {
  const int v = static_cast<int>(m);
  return v >= 0 && v <= 2;
}
}  // namespace

class MultiplayerPeer::Impl {
 public:
  struct Peer {
    std::shared_ptr<PeerConnection> connection;
    std::vector<std::shared_ptr<DataChannel>> channels;
    bool connected = false;
  };
  struct Inbound {
    int peer = 0;
    int channel = 0;  // internal index
    Bytes data;
  };

  Error fail(Error code, std::string reason) {
    RTCPEER_LOG(Debug, "multiplayer", reason);
    lastError = std::move(reason);
    return code;
  }
  Error ok() {
    lastError.clear();
    return Error::Ok;
  }

  Error initialize(int id, Mode m, const std::vector<TransferMode>& config) {
    if (id < 1 || id > kMaxId) return fail(Error::InvalidParameter, "peer id must be in 1..2147483647");
    if (m == Mode::Client && id == 1) return fail(Error::InvalidParameter, "clients cannot have id 1");
    for (TransferMode t : config)
      if (!validMode(t))
        return fail(Error::InvalidParameter, "channelsConfig must contain only TransferMode values");
    extras = config;
    uniqueId = id;
    mode = m;
    status = m == Mode::Client ? ConnectionStatus::Connecting : ConnectionStatus::Connected;
    return ok();
  }

  TransferMode modeOf(int index) const {
    if (index < multiplayer::kReservedChannels) {
      static constexpr TransferMode reserved[] = {TransferMode::Reliable, TransferMode::UnreliableOrdered,
                                                  TransferMode::Unreliable};
      return reserved[index];
    }
    const auto extra = static_cast<std::size_t>(index - multiplayer::kReservedChannels);
    return extra < extras.size() ? extras[extra] : TransferMode::Reliable;
  }

  Error addPeer(std::shared_ptr<PeerConnection> pc, int id, int lifetime) {
    if (mode == Mode::None) return fail(Error::Unconfigured, "call createServer/createClient/createMesh first");
    if (mode == Mode::Client && id != 1) return fail(Error::InvalidParameter, "a client's only peer is id 1");
    if (mode == Mode::Server && id == 1) return fail(Error::InvalidParameter, "a server's peers cannot have id 1");
    if (id < 1 || id > kMaxId) return fail(Error::InvalidParameter, "peer id must be in 1..2147483647");
    if (lifetime < 0 || lifetime > 65535)
      return fail(Error::InvalidParameter, "unreliableLifetime must be in 0..65535 ms");
    if (refuse) return fail(Error::Unauthorized, "refusing new connections");
    if (!pc) return fail(Error::InvalidParameter, "null PeerConnection");
    if (pc->connectionState() != ConnectionState::New)
      return fail(Error::InvalidParameter, "the PeerConnection must be in ConnectionState::New");
    Peer peer;
    peer.connection = std::move(pc);
    for (auto& spec : multiplayer::channelLayout(extras, lifetime)) {
      auto ch = peer.connection->createDataChannel(spec.label, spec.init);
      if (!ch)
        return fail(Error::Failed, "cannot create channel \"" + spec.label + "\": " + peer.connection->lastError());
      peer.channels.push_back(std::move(ch));
    }
    if (peers.count(id)) dropPeer(id, "replaced by addPeer");
    peers.emplace(id, std::move(peer));
    if (mode == Mode::Client) clientDeadline = std::chrono::steady_clock::now() + kClientConnectTimeout;
    return ok();
  }

  // Forgets a peer, closes its connection and, if it was announced, queues onPeerDisconnected (and tells the
  // other clients when we are the server).
  void dropPeer(int id, const char* why, bool signal = true) {
    auto it = peers.find(id);
    if (it == peers.end()) return;
    Peer p = std::move(it->second);
    peers.erase(it);
    RTCPEER_LOG(Info, "multiplayer", "peer " << id << " removed: " << why);
    p.connection->close();
    if (p.connected && mode == Mode::Server) {
      writeFrame(SysCommand::DelPeer, id, {});
      for (auto& [other, q] : peers)
        if (q.connected) sendOn(other, 0, frame);
    }
    if (mode == Mode::Client && id == kTargetPeerServer) {
      if (!p.connected) lastError = std::string("the connection to the server failed: ") + why;
      for (int r : relayed)
        if (signal) signals.emplace_back(false, r);
      relayed.clear();
      status = ConnectionStatus::Disconnected;
    }
    if (p.connected && signal) signals.emplace_back(false, id);
  }

  void announce(int id) {
    if (mode == Mode::Client) {
      status = ConnectionStatus::Connected;
    } else if (mode == Mode::Server) {
      // SceneMultiplayer::_admit_peer: tell the others about the newcomer and the newcomer about the others.
      for (auto& [other, q] : peers) {
        if (other == id || !q.connected) continue;
        writeFrame(SysCommand::AddPeer, id, {});
        sendOn(other, 0, frame);
        writeFrame(SysCommand::AddPeer, other, {});
        sendOn(id, 0, frame);
      }
    }
    signals.emplace_back(true, id);
  }

  void poll() {
    toRemove.clear();
    toAnnounce.clear();
    const auto now = std::chrono::steady_clock::now();
    for (auto& [id, p] : peers) {
      p.connection->poll();
      const ConnectionState state = p.connection->connectionState();
      if (state == ConnectionState::Failed || state == ConnectionState::Closed) {
        if (p.connected) drainChannels(id, p);  // what arrived with the close still reaches getPacket()
        toRemove.emplace_back(id, state == ConnectionState::Failed ? "connection failed" : "connection closed");
        continue;
      }
      if (!p.connected && mode == Mode::Client && now >= clientDeadline) {
        toRemove.emplace_back(id, "not connected within 30 s of addPeer()");
        continue;
      }
      // Disconnected is transient (consent freshness, RFC 7675): keep the peer until Failed or Closed.
      if (state != ConnectionState::Connected && state != ConnectionState::Disconnected) continue;
      int open = 0;
      bool closed = false;
      for (auto& ch : p.channels) {
        const ReadyState rs = ch->readyState();
        if (rs == ReadyState::Open) ++open;
        else if (rs != ReadyState::Connecting) closed = true;
      }
      if (closed) {
        if (p.connected) drainChannels(id, p);
        toRemove.emplace_back(id, "a channel closed");
      } else if (!p.connected && open == static_cast<int>(p.channels.size())) {
        p.connected = true;
        toAnnounce.push_back(id);
      }
    }
    for (auto& [id, why] : toRemove) dropPeer(id, why);
    for (int id : toAnnounce) announce(id);
    for (auto& [id, p] : peers)
      if (p.connected) drainChannels(id, p);
    emitSignals();
  }

  // Moves every packet waiting in the peer's channels into the inbox (or the relay).
  void drainChannels(int id, Peer& p) {
    for (std::size_t i = 0; i < p.channels.size(); ++i) {
      auto& ch = *p.channels[i];
      while (ch.availablePacketCount() > 0) {
        Bytes buf = takeBuffer();
        if (ch.getPacket(buf) != Error::Ok) break;
        receive(id, static_cast<int>(i), std::move(buf));
      }
    }
  }

  // One packet from a connected peer: queued for the application, or handled as a relay system command.
  void receive(int from, int index, Bytes buf) {
    if (mode == Mode::Mesh || !multiplayer::isSystemPacket(buf)) {
      inbox.push_back({from, index, std::move(buf)});
      return;
    }
    std::string why;
    auto m = multiplayer::parseSystem(buf, &why);
    if (!m) {
      RTCPEER_LOG(Warning, "multiplayer", "dropped a system packet from peer " << from << ": " << why);
      return recycle(std::move(buf));
    }
    if (mode == Mode::Client) {
      if (from != kTargetPeerServer) return recycle(std::move(buf));
      switch (m->command) {
        case SysCommand::Relay:
          return deliverPayload(m->peer, index, std::move(buf));
        case SysCommand::AddPeer:
          if (m->peer > 1 && m->peer != uniqueId && relayed.insert(m->peer).second) signals.emplace_back(true, m->peer);
          break;
        case SysCommand::DelPeer:
          if (relayed.erase(m->peer)) signals.emplace_back(false, m->peer);
          break;
        case SysCommand::Auth:
          break;
      }
      return recycle(std::move(buf));
    }
    // Server (SceneMultiplayer::_process_sys, SYS_COMMAND_RELAY): forward with the source in place of the
    // destination, on the channel it came in on.
    if (m->command != SysCommand::Relay) {
      RTCPEER_LOG(Warning, "multiplayer", "dropped a system command a client may not send, from peer " << from);
      return recycle(std::move(buf));
    }
    const int dest = m->peer;
    if (dest == kTargetPeerServer) return deliverPayload(from, index, std::move(buf));
    writeFrame(SysCommand::Relay, from, m->payload);
    if (dest > 0) {
      auto it = peers.find(dest);
      if (it != peers.end() && it->second.connected) sendOn(dest, index, frame);
      return recycle(std::move(buf));
    }
    for (auto& [id, p] : peers)
      if (p.connected && id != from && id != -dest) sendOn(id, index, frame);
    if (dest != -kTargetPeerServer) return deliverPayload(from, index, std::move(buf));
    recycle(std::move(buf));
  }

  // Queues the payload of a relay frame (strips the 6-byte header in place) as a packet from `from`.
  void deliverPayload(int from, int index, Bytes buf) {
    buf.erase(buf.begin(), buf.begin() + static_cast<std::ptrdiff_t>(multiplayer::kSysHeaderSize));
    inbox.push_back({from, index, std::move(buf)});
  }

  void writeFrame(SysCommand command, int peer, ByteView payload) {
    multiplayer::writeSystem(frame, command, peer, payload);
  }

  Error sendOn(int id, int index, ByteView data) {
    auto it = peers.find(id);
    if (it == peers.end()) return fail(Error::InvalidParameter, "invalid target peer: " + std::to_string(id));
    auto& channels = it->second.channels;
    if (index < 0 || static_cast<std::size_t>(index) >= channels.size())
      return fail(Error::InvalidParameter, "no channel " + std::to_string(index) + " for peer " + std::to_string(id));
    auto& ch = *channels[static_cast<std::size_t>(index)];
    const Error e = ch.putPacket(data);
    if (e != Error::Ok) return fail(e, "peer " + std::to_string(id) + ": " + ch.lastError());
    // No flush here: a lifetime-limited message (1 ms by default) is still offered to the network once in the
    // connection's next poll(), however late (sctp SendQueue::markOffered).
    return ok();
  }

  Error putPacket(ByteView data) {
    if (status == ConnectionStatus::Disconnected) return fail(Error::Unconfigured, "not connected");
    const int index = multiplayer::channelIndexFor(transferChannel, transferMode);
    if (index >= multiplayer::kReservedChannels + static_cast<int>(extras.size()))
      return fail(Error::InvalidParameter, "no transfer channel " + std::to_string(transferChannel) + " (" +
                                               std::to_string(extras.size()) + " configured)");
    if ((mode == Mode::Server || mode == Mode::Client) && multiplayer::isSystemPacket(data))
      return fail(Error::InvalidParameter,
                  "in server/client mode a first byte with the low three bits 111 is Godot's system command");
    if (mode == Mode::Client && target != kTargetPeerServer) {
      if (target > 0 && !relayed.count(target))
        return fail(Error::InvalidParameter, "invalid target peer: " + std::to_string(target));
      writeFrame(SysCommand::Relay, target, data);
      return sendOn(kTargetPeerServer, index, frame);
    }
    if (target > 0) return sendOn(target, index, data);
    for (auto& [id, p] : peers) {
      if (!p.connected || (target != 0 && id == -target)) continue;
      sendOn(id, index, data);  // per-peer failures are skipped, as in Godot
    }
    return ok();
  }

  Error getPacket(Bytes& out) {
    if (inbox.empty()) return fail(Error::Unavailable, "no packet available");
    out.swap(inbox.front().data);
    recycle(std::move(inbox.front().data));
    inbox.pop_front();
    return ok();
  }

  Bytes takeBuffer() {
    if (pool.empty()) return {};
    Bytes b = std::move(pool.back());
    pool.pop_back();
    return b;
  }
  void recycle(Bytes b) {
    if (pool.size() >= kPoolCap || b.capacity() == 0) return;
    b.clear();
    pool.push_back(std::move(b));
  }

  void emitSignals() {
    if (signals.empty()) return;
    std::vector<std::pair<bool, int>> fired;
    fired.swap(signals);  // a callback may queue more (removePeer): those fire in the next poll()
    for (auto [connected, id] : fired) {
      const auto& cb = connected ? onConnected : onDisconnected;
      if (cb) cb(id);
    }
  }

  void close() {
    for (auto& [id, p] : peers) p.connection->close();
    peers.clear();
    relayed.clear();
    inbox.clear();
    signals.clear();
    extras.clear();
    uniqueId = 0;
    target = 0;
    transferChannel = 0;
    transferMode = TransferMode::Reliable;
    mode = Mode::None;
    status = ConnectionStatus::Disconnected;
  }

  Mode mode = Mode::None;
  int uniqueId = 0;
  ConnectionStatus status = ConnectionStatus::Disconnected;
  std::vector<TransferMode> extras;
  std::map<int, Peer> peers;
  std::set<int> relayed;  // client mode: the other clients the server announced
  std::deque<Inbound> inbox;
  std::vector<Bytes> pool;
  Bytes frame;  // scratch for system frames (keeps its capacity)
  std::vector<std::pair<bool, int>> signals;  // (connected, id), fired at the end of poll()
  std::vector<std::pair<int, const char*>> toRemove;
  std::vector<int> toAnnounce;
  std::chrono::steady_clock::time_point clientDeadline{};
  int target = 0;
  TransferMode transferMode = TransferMode::Reliable;
  int transferChannel = 0;
  bool refuse = false;
  std::string lastError;
  PeerCallback onConnected, onDisconnected;
};

MultiplayerPeer::MultiplayerPeer() : impl_(std::make_unique<Impl>()) {}
MultiplayerPeer::~MultiplayerPeer() { impl_->close(); }

Error MultiplayerPeer::createServer(const std::vector<TransferMode>& channelsConfig) {
  return impl_->initialize(1, Mode::Server, channelsConfig);
}
Error MultiplayerPeer::createClient(int peerId, const std::vector<TransferMode>& channelsConfig) {
  return impl_->initialize(peerId, Mode::Client, channelsConfig);
}
Error MultiplayerPeer::createMesh(int peerId, const std::vector<TransferMode>& channelsConfig) {
  return impl_->initialize(peerId, Mode::Mesh, channelsConfig);
}
Error MultiplayerPeer::addPeer(std::shared_ptr<PeerConnection> peer, int peerId, int unreliableLifetime) {
  return impl_->addPeer(std::move(peer), peerId, unreliableLifetime);
}
void MultiplayerPeer::removePeer(int peerId) {
  if (!impl_->peers.count(peerId)) {
    impl_->fail(Error::InvalidParameter, "no peer " + std::to_string(peerId));
    return;
  }
  impl_->dropPeer(peerId, "removePeer()");
}
bool MultiplayerPeer::hasPeer(int peerId) const { return impl_->peers.count(peerId) != 0; }
std::map<int, MultiplayerPeer::PeerInfo> MultiplayerPeer::peers() const {
  std::map<int, PeerInfo> out;
  for (const auto& [id, p] : impl_->peers) out.emplace(id, PeerInfo{p.connection, p.channels, p.connected});
  return out;
}
void MultiplayerPeer::poll() { impl_->poll(); }
void MultiplayerPeer::close() { impl_->close(); }
void MultiplayerPeer::disconnectPeer(int peerId, bool force) {
  auto it = impl_->peers.find(peerId);
  if (it == impl_->peers.end()) {
    impl_->fail(Error::InvalidParameter, "no peer " + std::to_string(peerId));
    return;
  }
  if (force) impl_->dropPeer(peerId, "disconnectPeer(force)", /*signal=*/false);
  else it->second.connection->close();  // dropped, with its signal, in the next poll()
}
Error MultiplayerPeer::putPacket(std::span<const std::uint8_t> packet) { return impl_->putPacket(packet); }
Error MultiplayerPeer::putPacket(std::string_view packet) { return impl_->putPacket(asBytes(packet)); }
Error MultiplayerPeer::getPacket(std::vector<std::uint8_t>& out) { return impl_->getPacket(out); }
int MultiplayerPeer::availablePacketCount() const { return static_cast<int>(impl_->inbox.size()); }
int MultiplayerPeer::packetPeer() const { return impl_->inbox.empty() ? 0 : impl_->inbox.front().peer; }
int MultiplayerPeer::packetChannel() const {
  return impl_->inbox.empty() ? 0 : multiplayer::publicChannel(impl_->inbox.front().channel);
}
TransferMode MultiplayerPeer::packetMode() const {
  return impl_->inbox.empty() ? TransferMode::Reliable : impl_->modeOf(impl_->inbox.front().channel);
}
void MultiplayerPeer::setTargetPeer(int peerId) { impl_->target = peerId; }
int MultiplayerPeer::targetPeer() const { return impl_->target; }
void MultiplayerPeer::setTransferMode(TransferMode mode) {
  if (validMode(mode)) impl_->transferMode = mode;
}
TransferMode MultiplayerPeer::transferMode() const { return impl_->transferMode; }
void MultiplayerPeer::setTransferChannel(int channel) { impl_->transferChannel = std::max(channel, 0); }
int MultiplayerPeer::transferChannel() const { return impl_->transferChannel; }
int MultiplayerPeer::uniqueId() const { return impl_->uniqueId; }
ConnectionStatus MultiplayerPeer::connectionStatus() const { return impl_->status; }
bool MultiplayerPeer::isServer() const { return impl_->uniqueId == kTargetPeerServer; }
bool MultiplayerPeer::isServerRelaySupported() const {
  return impl_->mode == Mode::Server || impl_->mode == Mode::Client;
}
void MultiplayerPeer::setRefuseNewConnections(bool refuse) { impl_->refuse = refuse; }
bool MultiplayerPeer::isRefusingNewConnections() const { return impl_->refuse; }
const std::string& MultiplayerPeer::lastError() const { return impl_->lastError; }
void MultiplayerPeer::onPeerConnected(PeerCallback callback) { impl_->onConnected = std::move(callback); }
void MultiplayerPeer::onPeerDisconnected(PeerCallback callback) { impl_->onDisconnected = std::move(callback); }

}  // namespace rtcpeer
