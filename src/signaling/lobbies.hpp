// The signaling server's protocol core: every lobby and peer, driven sans-IO. The I/O shell (server.cpp) reports
// socket events with the time; the core answers with actions (send this frame to connection X, close X with a
// code and reason) drained through pollAction(), and with one deadline (join timeouts, seal cleanup).
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <utility>

#include "common/random.hpp"
#include "common/time.hpp"
#include "signaling/protocol.hpp"

namespace rtcpeer::signaling {

/// The shell's handle of one WebSocket; never reused while the core knows it.
using ConnId = std::uint64_t;

struct Limits {
  std::size_t maxLobbies = 1024;       ///< the demo's Node server limits
  std::size_t maxPeers = 4096;         ///< open WebSockets, joined or not
  std::size_t maxLobbyMembers = 256;   ///< a full mesh of more is not practical anyway
  std::size_t maxMessageSize = 65536;  ///< bytes per text frame (an SDP is a few KiB)
  double messagesPerSecond = 200;      ///< sustained per socket (trickled candidates come in bursts)...
  double messageBurst = 1000;          ///< ...and the bucket that absorbs a burst
  Duration joinTimeout = std::chrono::seconds(1);
  Duration sealCloseDelay = std::chrono::seconds(10);
};

struct Action {
  enum class Kind { Send, Close };
  Kind kind = Kind::Send;
  ConnId conn = 0;
  std::string text;  ///< Send: the frame; Close: the reason
  int code = 0;      ///< Close: the WebSocket close code
};

class Lobbies {
 public:
  explicit Lobbies(Random& random, Limits limits = {});

  /// A WebSocket finished its handshake. Over Limits::maxPeers it is closed at once.
  void open(ConnId conn, Timestamp now);
  /// A complete text frame arrived.
  void text(ConnId conn, std::string_view frame, Timestamp now);
  /// A text message grew past Limits::maxMessageSize before it was complete: the shell stops buffering it at
  /// the limit and reports it here (closed with 4000 "Message too large").
  void tooLarge(ConnId conn, Timestamp now);
  /// A binary frame arrived: the protocol is text only.
  void binary(ConnId conn, Timestamp now);
  /// The socket is gone (peer closed, error, or after a Close action). Unknown connections are ignored.
  void closed(ConnId conn, Timestamp now);

  std::optional<Action> pollAction();
  Timestamp nextDeadline() const;
  void handleTimeout(Timestamp now);

  /// For a server sharing lobbies with others (redis_cluster.hpp). Whether `name` is one of this core's lobbies.
  bool hasLobby(std::string_view name) const { return lobbies_.count(std::string(name)) != 0; }
  /// Forgets a connection that has not joined, without any action (it joins a lobby on another server); false
  /// if the connection is unknown or joined.
  bool release(ConnId conn);
  /// Non-host peer ids become `slot` + `stride` * n (n >= 1), so servers with distinct slots never give the
  /// same id. Default: any id.
  void setIdSpace(std::uint32_t slot, std::uint32_t stride);
  /// Makes the core report lobby creation and end through pollLobbyEvent() (off by default).
  void trackLobbies(bool on) { trackLobbies_ = on; }
  struct LobbyEvent {
    bool created = false;  ///< false: the lobby ended
    std::string name;
  };
  std::optional<LobbyEvent> pollLobbyEvent();

  std::size_t peerCount() const { return peers_.size(); }
  std::size_t lobbyCount() const { return lobbies_.size(); }
  /// The id a connection was given when it joined, 0 before.
  std::int64_t peerId(ConnId conn) const;
  const Limits& limits() const { return limits_; }

 private:
  struct Peer {
    std::int64_t id = 0;  ///< 0 until joined
    std::string lobby;    ///< empty until joined
    Timestamp joinDeadline = kNever;
    double tokens = 0;
    Timestamp lastRefill{};
  };
  struct Lobby {
    bool mesh = true;
    bool sealed = false;
    ConnId host = 0;
    std::map<std::int64_t, ConnId> members;  ///< by peer id, host included (id 1)
    Timestamp sealDeadline = kNever;
  };

  void handle(ConnId conn, Peer& peer, Message m, Timestamp now);
  void join(ConnId conn, Peer& peer, const Message& m);
  void relay(ConnId conn, Peer& peer, Message m);
  void seal(ConnId conn, Peer& peer, Timestamp now);
  /// Removes the peer from its lobby (and the lobby if the host left) and forgets it.
  void remove(ConnId conn);
  /// Queues a close and forgets the peer, so nothing more is sent to or accepted from it.
  void closeConn(ConnId conn, int code, std::string reason);
  void send(ConnId conn, MessageType type, std::int64_t id, std::string data = {});
  std::int64_t freshId();
  std::string freshLobbyName();

  Random& random_;
  Limits limits_;
  std::unordered_map<ConnId, Peer> peers_;
  std::unordered_map<std::string, Lobby> lobbies_;
  std::unordered_set<std::int64_t> usedIds_;  ///< non-host ids in use, unique server-wide
  std::set<std::pair<Timestamp, ConnId>> joinTimers_;
  std::set<std::pair<Timestamp, std::string>> sealTimers_;
  std::deque<Action> actions_;
  std::deque<LobbyEvent> lobbyEvents_;
  bool trackLobbies_ = false;
  std::uint32_t idSlot_ = 0, idStride_ = 0;
};

}  // namespace rtcpeer::signaling
