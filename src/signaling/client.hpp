// A C++ client of the signaling server: joins (or creates) a lobby and keeps one PeerConnection per lobby peer,
// wired to OFFER/ANSWER/CANDIDATE as the demo's multiplayer_client.gd does (the larger id makes the offer).
// Single-threaded and driven by the application's loop: call poll() often, or wait() then poll().
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "rtcpeer/rtcpeer.hpp"

namespace rtcpeer::signaling {

struct ClientOptions {
  /// ws://host[:port][/path] or wss://host[:port][/path] (default ports 80 and 443); IPv6 hosts in brackets.
  std::string url = "ws://127.0.0.1:9080";
  /// wss://: PEM file of the CA certificates to trust instead of the system store (/etc/ssl/certs).
  std::string caFile;
  /// wss://: check the server's certificate chain and that it names the URL's host (name or IP address).
  /// false accepts any certificate: the connection is encrypted but not authenticated (tests, self-signed).
  bool verifyCertificate = true;
  std::string lobby;                        ///< empty: create a lobby (this client becomes host, id 1)
  bool mesh = true;                         ///< when creating: mesh (true) or client/server lobby
  Configuration rtc;                        ///< for every PeerConnection
};

class SignalingClient {
 public:
  enum class State { Connecting, Joined, Closed };
  /// A new peer: create its data channels here (the offer, if ours, is made right after this returns).
  using PeerCallback = std::function<void(int id, PeerConnection& pc)>;

  explicit SignalingClient(ClientOptions options);
  ~SignalingClient();
  SignalingClient(const SignalingClient&) = delete;
  SignalingClient& operator=(const SignalingClient&) = delete;

  void onJoined(std::function<void(const std::string& lobby, int id)> callback);
  void onPeerConnected(PeerCallback callback);
  /// After this the PeerConnection is closed and forgotten.
  void onPeerDisconnected(std::function<void(int id)> callback);
  void onSealed(std::function<void()> callback);
  /// The WebSocket closed: `code` 1000 after a seal, 4000 with the server's reason for protocol errors, 1006 if
  /// the connection failed (lastError() says why: unreachable, TLS certificate not trusted...). Peer connections are kept (after a seal they are the point).
  void onClosed(std::function<void(int code, const std::string& reason)> callback);

  /// Signaling I/O, then every PeerConnection's poll(). Callbacks fire only in here.
  void poll();
  /// Sleeps until signaling or peer traffic arrives, or `timeout` passes.
  void wait(std::chrono::milliseconds timeout);

  /// Host only: seal the lobby (no more joins; the server closes everyone's socket 10 s later).
  void seal();
  /// Closes the WebSocket (the peer connections stay).
  void close();

  State state() const;
  int id() const;                   ///< 0 until the server assigned one
  const std::string& lobby() const;  ///< empty until joined
  bool mesh() const;
  bool sealed() const;
  /// Hands the lobby's connections to `peer` (Godot's `multiplayer.multiplayer_peer = peer` after signaling): when
  /// the server assigns our id, peer->createMesh(id) in a mesh lobby, else createServer() for the host and createClient(id) for the
  /// others; each new lobby peer's connection goes to peer->addPeer() before the offer, and is closed when the
  /// lobby peer leaves (the MultiplayerPeer then drops it). Called after that, it initializes `peer` at once and
  /// adds the connections still in ConnectionState::New. The MultiplayerPeer keeps the connections it was given;
  /// it must outlive this client or be detached with nullptr. Keep polling both (this for signaling).
  void setMultiplayerPeer(MultiplayerPeer* peer, std::vector<TransferMode> channelsConfig = {});
  /// The peer connection to `id`, nullptr if none.
  PeerConnection* peer(int id);
  std::vector<int> peerIds() const;
  /// Why the last thing failed (a signaling message that could not be applied, a failed connection...).
  const std::string& lastError() const;

  class Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace rtcpeer::signaling
