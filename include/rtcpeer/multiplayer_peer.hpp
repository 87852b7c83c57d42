// MultiplayerPeer: Godot 4's WebRTCMultiplayerPeer for C++ programs. Many PeerConnections become one packet peer
// with peer ids, transfer modes and channels, in mesh, server or client mode (server and client relay packets
// between clients with Godot 4's wire format). src/multiplayer/README.md and
// docs/GODOT_DIFFERENCES.md describe where it differs from Godot.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "rtcpeer/data_channel.hpp"
#include "rtcpeer/error.hpp"
#include "rtcpeer/peer_connection.hpp"

namespace rtcpeer {

/// Godot MultiplayerPeer.TransferMode (the same numbers).
enum class TransferMode : int { Unreliable = 0, UnreliableOrdered = 1, Reliable = 2 };

/// Godot MultiplayerPeer.ConnectionStatus (the same numbers).
enum class ConnectionStatus : int { Disconnected = 0, Connecting = 1, Connected = 2 };

/// A set of PeerConnections seen as one packet peer (Godot WebRTCMultiplayerPeer).
///
/// Each peer added with addPeer() gets Godot's negotiated channels: id 1 "reliable" (ordered, reliable), id 2
/// "ordered" (ordered, maxPacketLifeTime = unreliableLifetime), id 3 "unreliable" (unordered, same lifetime) and
/// id 3 + n for the n-th entry of channelsConfig, so a Godot peer and this class share one mesh. Both sides must
/// use the same channelsConfig and unreliableLifetime (negotiated channels are configured locally).
///
/// Single-threaded like PeerConnection: call poll() often; it polls every connection (do not poll them yourself,
/// though doing so is harmless), updates peers and fires onPeerConnected / onPeerDisconnected. Signals fire only
/// inside poll().
class MultiplayerPeer {
 public:
  static constexpr int kTargetPeerBroadcast = 0;
  static constexpr int kTargetPeerServer = 1;

  /// What peers() reports for one peer (Godot get_peer()'s dictionary).
  struct PeerInfo {
    std::shared_ptr<PeerConnection> connection;
    std::vector<std::shared_ptr<DataChannel>> channels;  ///< the 3 reserved channels, then the extra ones
    bool connected = false;                              ///< every channel open and onPeerConnected fired
  };
  using PeerCallback = std::function<void(int peerId)>;

  MultiplayerPeer();
  ~MultiplayerPeer();  ///< close()
  MultiplayerPeer(const MultiplayerPeer&) = delete;
  MultiplayerPeer& operator=(const MultiplayerPeer&) = delete;

  /// Server mode: own id 1, Connected at once; peers are clients (ids >= 2); packets between clients are relayed.
  Error createServer(const std::vector<TransferMode>& channelsConfig = {});
  /// Client mode: own id `peerId` (2 .. 2^31-1); addPeer() once, with id 1. Connecting until the server's
  /// channels are open, then Connected; Disconnected again if the server connection is lost or fails before it
  /// was ever established (connectionStatus() going Connecting -> Disconnected is the failure).
  Error createClient(int peerId, const std::vector<TransferMode>& channelsConfig = {});
  /// Mesh mode: own id `peerId` (1 .. 2^31-1), Connected at once; every peer is connected to every other.
  Error createMesh(int peerId, const std::vector<TransferMode>& channelsConfig = {});

  /// Adds a connection in ConnectionState::New and creates its channels; the application then does the
  /// offer/answer exchange. Errors as Godot's add_peer: Unconfigured before create*(); InvalidParameter for a
  /// bad id for the mode, a negative lifetime, a null or non-New connection; Unauthorized when refusing new
  /// connections; Failed if a channel cannot be created. The same id again replaces the earlier peer.
  Error addPeer(std::shared_ptr<PeerConnection> peer, int peerId, int unreliableLifetime = 1);
  /// Forgets the peer and closes its connection; onPeerDisconnected fires in the next poll() if it was connected.
  void removePeer(int peerId);
  /// True if the peer was added and not removed, connected or not.
  bool hasPeer(int peerId) const;
  /// Every peer added and not removed (client mode: only the server; relayed peers have no connection).
  std::map<int, PeerInfo> peers() const;

  /// Polls every connection, drops peers whose connection is Failed or Closed or whose channel closed, announces
  /// peers whose channels are all open, handles relay traffic, and fires the signals.
  void poll();
  /// Closes every connection (remote peers notice at once) and forgets everything; Disconnected, no signals.
  void close();
  /// force == false: closes the connection; the peer goes (with onPeerDisconnected) in the next poll().
  /// force == true: forgets the peer at once, without the signal.
  void disconnectPeer(int peerId, bool force = false);

  /// Sends to the target peer(s) on the channel chosen by transferChannel() / transferMode(). Unconfigured when
  /// Disconnected; InvalidParameter for an unknown target or channel (or, in server/client mode, a payload whose
  /// first byte has the low three bits 111: that is Godot's system-command namespace). A broadcast skips peers
  /// whose channel refuses the packet and returns Ok.
  Error putPacket(std::span<const std::uint8_t> packet);
  Error putPacket(std::string_view packet);
  /// Pops the next packet into `out`. Unavailable if none.
  Error getPacket(std::vector<std::uint8_t>& out);
  int availablePacketCount() const;
  /// The sender, channel and mode of the packet the next getPacket() returns (0 / 0 / Reliable if none).
  int packetPeer() const;
  int packetChannel() const;
  TransferMode packetMode() const;

  /// 0 broadcast, 1 the server, n > 0 that peer, n < 0 everyone but peer -n.
  void setTargetPeer(int peerId);
  int targetPeer() const;
  /// Which reserved channel transferChannel() 0 uses (default Reliable). Extra channels keep their own mode.
  void setTransferMode(TransferMode mode);
  TransferMode transferMode() const;
  /// 0: the reserved channel of transferMode(); n >= 1: the n-th entry of channelsConfig.
  void setTransferChannel(int channel);
  int transferChannel() const;

  /// Our id (from create*), 0 before create*() and after close().
  int uniqueId() const;
  ConnectionStatus connectionStatus() const;
  bool isServer() const;  ///< uniqueId() == 1 (a mesh peer with id 1 too, as in Godot)
  bool isServerRelaySupported() const;  ///< server or client mode
  /// While true, addPeer() returns Unauthorized.
  void setRefuseNewConnections(bool refuse);
  bool isRefusingNewConnections() const;
  /// Why the last failing call failed.
  const std::string& lastError() const;

  void onPeerConnected(PeerCallback callback);
  void onPeerDisconnected(PeerCallback callback);

  class Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace rtcpeer
