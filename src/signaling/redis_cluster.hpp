// Lobbies shared by several signaling servers through Redis (docs/SIGNALING.md "Several servers on Redis").
// Each lobby lives on one server, its home: the server its host created it on, which runs it in its own Lobbies
// core exactly as a lone server would (join order, seal, limits, disconnects). Redis holds the directory
// (lobby name -> home server, keys with a TTL), each server's heartbeat key, the peer-id slots that keep ids
// unique across servers, and the relay: a client that joins a lobby homed elsewhere is proxied, its frames
// published on the home server's channel and the home's answers on the proxy's. A server whose heartbeat key
// expires is reaped by the others: its clients leave their lobbies (PEER_DISCONNECT), its lobbies' members are
// closed as if their host had left. Compiled only with hiredis (RTCPEER_REDIS).
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "common/random.hpp"
#include "signaling/lobbies.hpp"
#include "signaling/redis_link.hpp"
#include "signaling/redis_wire.hpp"

namespace boost::asio {
class io_context;
}

namespace rtcpeer::signaling {

/// What the cluster needs from the server shell that owns it.
class ClusterHost {
 public:
  virtual ~ClusterHost() = default;
  virtual Lobbies& core() = 0;
  virtual Timestamp now() const = 0;
  /// A connection id for a client proxied here from another server (never one of the shell's own).
  virtual ConnId newConnId() = 0;
  /// Delivers a Send or Close to a local socket (in its dialect); unknown connections are ignored.
  virtual void deliver(Action action) = 0;
  /// Drains the core's actions after the cluster fed it.
  virtual void drain() = 0;
};

struct ClusterOptions {
  RedisUrl url;
  /// The heartbeat TTL: a server refreshes its keys every ttl/3, so one that died is reaped by the others within
  /// ttl + ttl/3 (plus a round trip to Redis).
  std::chrono::milliseconds ttl{3000};
};

class Cluster {
 public:
  /// Peer-id slots: ids are slot + kIdSlots * n, so up to kIdSlots servers share one Redis.
  static constexpr std::uint32_t kIdSlots = 1024;

  Cluster(boost::asio::io_context& io, ClusterHost& host, ClusterOptions options);
  ~Cluster();
  Cluster(const Cluster&) = delete;
  Cluster& operator=(const Cluster&) = delete;

  /// Connects; `ready` runs once: ok once subscribed with a peer-id slot, or the first failure (after which the
  /// cluster does nothing). Later outages are logged and retried.
  void start(std::function<void(Status)> ready);
  void stop();

  // The shell's events, before its core sees them: true when the cluster took the event (a proxied client, or a
  // JOIN for a lobby this server does not have). Frames are JSON (line-protocol ones translated already).
  bool textFrame(ConnId conn, std::string_view json);
  bool binaryFrame(ConnId conn);
  bool tooLarge(ConnId conn);
  bool ended(ConnId conn);
  /// An action of the core: true when its connection is a client proxied from another server (sent there).
  bool route(Action& action);
  void lobbyEvent(const Lobbies::LobbyEvent& event);

  const std::string& serverId() const { return id_; }
  bool up() const { return state_ == State::Up; }

 private:
  enum class State { Down, Connecting, Up };
  struct Proxy {  // a local client in a lobby homed elsewhere
    std::string home;                  ///< empty while the lobby is looked up
    std::vector<RelayMessage> queued;  ///< frames that arrived during the lookup
    bool sealed = false;               ///< the home sent SEAL: a lost home means "Seal complete"
  };
  struct Remote {  // a client of another server in one of this server's lobbies
    std::string server;
    ConnId conn = 0;
  };

  void connect();
  void connected();
  void claimSlot(int attempt);
  void becomeUp();
  void down(const std::string& reason);
  void tick();
  void heartbeat();
  void onRelay(std::string_view payload);
  void forward(ConnId conn, RelayKind kind, std::string payload);
  void publish(const std::string& server, RelayMessage m);
  void proxyFrame(ConnId conn, RelayKind kind, std::string payload);
  void lookedUp(ConnId conn, const redisReply* reply);
  /// A home server is gone: its proxied clients are closed as if their host had left.
  void reapHome(const std::string& home, int code, const std::string& reason);
  /// A proxying server is gone: its clients leave their lobbies here.
  void reapServer(const std::string& server);
  void closeLocal(ConnId conn, int code, std::string reason);
  std::string ms() const { return std::to_string(options_.ttl.count()); }

  boost::asio::io_context& io_;
  ClusterHost& host_;
  ClusterOptions options_;
  RedisNames names_;
  CryptoRandom random_;
  std::string id_;
  RedisConnection cmd_, sub_;
  HostResolver resolver_;
  struct Timers;
  std::unique_ptr<Timers> timers_;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
  State state_ = State::Down;
  bool everUp_ = false;
  int pendingConnects_ = 0;
  std::chrono::milliseconds backoff_{250};
  std::function<void(Status)> ready_;
  std::uint32_t slot_ = 0;
  bool haveSlot_ = false;

  std::set<std::string> lobbies_;                             ///< homed here
  std::unordered_map<ConnId, Proxy> proxies_;                 ///< local conn -> its home
  std::map<std::string, std::set<ConnId>> byHome_;            ///< home server -> proxied local conns
  std::unordered_map<ConnId, Remote> remotes_;                ///< virtual conn -> proxy server and its conn
  std::map<std::pair<std::string, ConnId>, ConnId> byRemote_;  ///< (proxy server, its conn) -> virtual conn
  std::map<std::string, std::set<ConnId>> byServer_;          ///< proxy server -> virtual conns
};

}  // namespace rtcpeer::signaling
