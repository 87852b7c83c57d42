// Cluster (redis_cluster.hpp): the Redis link's life (resolve, connect two connections, SELECT, SUBSCRIBE, claim
// a peer-id slot, heartbeat, reconnect), the lobby directory, proxying clients to their lobby's home server, and
// reaping servers whose heartbeat expired.
#include "signaling/redis_cluster.hpp"

#include <utility>  // before Asio: Boost 1.74 uses std::exchange without including it (GCC 12)

#include <hiredis/hiredis.h>

#include <boost/asio.hpp>

#include "common/log.hpp"

namespace rtcpeer::signaling {

namespace net = boost::asio;

namespace {

constexpr std::size_t kMaxQueuedDuringLookup = 64;
constexpr std::chrono::milliseconds kMaxBackoff{8000};
constexpr std::string_view kBackendLost = "Signaling backend unavailable";

bool isString(const redisReply* r) { return r && r->type == REDIS_REPLY_STRING; }
bool isError(const redisReply* r) { return !r || r->type == REDIS_REPLY_ERROR; }
// Removes `conn` from the set under `key`, and the set once empty.
void forget(std::map<std::string, std::set<ConnId>>& sets, const std::string& key, ConnId conn) {
  auto it = sets.find(key);
  if (it == sets.end()) return;
  it->second.erase(conn);
  if (it->second.empty()) sets.erase(it);
}

std::string describe(const redisReply* r) {
  if (!r) return "no reply (connection lost)";
  if (r->type == REDIS_REPLY_ERROR) return std::string(r->str, r->len);
  return "unexpected reply";
}

}  // namespace

struct Cluster::Timers {
  explicit Timers(net::io_context& io) : tick(io), retry(io) {}
  net::steady_timer tick, retry;
};

Cluster::Cluster(net::io_context& io, ClusterHost& host, ClusterOptions options)
    : io_(io),
      host_(host),
      options_(std::move(options)),
      names_(options_.url.db),
      cmd_(io),
      sub_(io),
      resolver_(io),
      timers_(std::make_unique<Timers>(io)) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::uint8_t bytes[kServerIdLength / 2];
  random_.fill(bytes);
  for (auto b : bytes) {
    id_ += kHex[b >> 4];
    id_ += kHex[b & 15];
  }
  if (options_.ttl < std::chrono::milliseconds(300)) options_.ttl = std::chrono::milliseconds(300);
}

Cluster::~Cluster() { stop(); }

void Cluster::start(std::function<void(Status)> ready) {
  ready_ = std::move(ready);
  connect();
}

void Cluster::stop() {
  *alive_ = false;
  alive_ = std::make_shared<bool>(true);
  timers_->tick.cancel();
  timers_->retry.cancel();
  resolver_.cancel();
  // The keys are left to expire: the connection closes at once, so the others reap this server within the TTL
  // as after a crash (its channel has no subscriber any more, so a relay towards it tells them sooner).
  cmd_.close();
  sub_.close();
  state_ = State::Down;
  ready_ = nullptr;
}

// ---- the link

void Cluster::connect() {
  state_ = State::Connecting;
  resolver_.resolve(options_.url.host, [this, alive = alive_](Result<std::string> ip) {
    if (!*alive) return;
    if (!ip.ok()) return down(ip.reason());
    pendingConnects_ = 2;
    auto onConnected = [this, alive](Status s) {
      if (!*alive || state_ != State::Connecting) return;
      if (!s.ok()) return down("cannot connect: " + s.reason());
      if (--pendingConnects_ == 0) connected();
    };
    auto onDown = [this, alive](std::string reason) {
      if (*alive) down("connection lost: " + reason);
    };
    cmd_.connect(*ip, options_.url.port, onConnected, onDown);
    sub_.connect(*ip, options_.url.port, onConnected, onDown);
  });
}

void Cluster::connected() {
  const std::string db = std::to_string(options_.url.db);
  auto alive = alive_;
  cmd_.command({"SELECT", db}, [this, alive](const redisReply* r) {
    if (!*alive || state_ != State::Connecting) return;
    if (isError(r)) return down("SELECT: " + describe(r));
    claimSlot(0);
  });
}

// A peer-id slot: SET NX on a random free one. A server keeps its slot across reconnections when it can.
void Cluster::claimSlot(int attempt) {
  if (attempt == 32) return down("no free peer-id slot among " + std::to_string(kIdSlots));
  const std::uint32_t slot = haveSlot_ && attempt == 0 ? slot_ : static_cast<std::uint32_t>(random_.below(kIdSlots));
  auto alive = alive_;
  cmd_.command({"SET", names_.slot(slot), id_, "PX", ms(), "NX"}, [this, alive, slot, attempt](const redisReply* r) {
    if (!*alive || state_ != State::Connecting) return;
    if (isError(r)) return down("SET: " + describe(r));
    if (r->type == REDIS_REPLY_NIL) return claimSlot(attempt + 1);
    if (haveSlot_ && slot != slot_)
      RTCPEER_LOG(Warning, "redis", "peer-id slot " << slot_ << " was taken while disconnected; now " << slot);
    slot_ = slot;
    haveSlot_ = true;
    host_.core().setIdSpace(slot_, kIdSlots);
    // The subscriber: SELECT does not scope pub/sub, but keeps the connection's state the same as the other's.
    sub_.subscribe(
        names_.channel(id_), [this, alive] {
          if (*alive && state_ == State::Connecting) becomeUp();
        },
        [this, alive](std::string_view payload) {
          if (*alive && state_ == State::Up) onRelay(payload);
        });
  });
}

void Cluster::becomeUp() {
  state_ = State::Up;
  backoff_ = std::chrono::milliseconds(250);
  heartbeat();  // the heartbeat and every lobby homed here (again, after a Redis restart lost them)
  if (everUp_) {
    // Said once Redis has answered everything heartbeat() queued (one connection answers in order): from then on a
    // client of another server finds this server's lobbies again. Said at once, a join racing the registration was
    // refused with "Lobby does not exists" (seen in CI).
    cmd_.command({"PING"}, [this, alive = alive_](const redisReply*) {
      if (*alive && state_ == State::Up)
        RTCPEER_LOG(Warning, "redis", "reconnected to " << options_.url.host << ":" << options_.url.port
                                                        << "; " << lobbies_.size() << " lobbies registered again");
    });
  }
  everUp_ = true;
  tick();
  if (auto ready = std::move(ready_)) {
    ready_ = nullptr;
    ready(okStatus());
  }
}

void Cluster::down(const std::string& reason) {
  const bool wasUp = state_ == State::Up;
  state_ = State::Down;
  cmd_.close();
  sub_.close();
  resolver_.cancel();
  timers_->tick.cancel();
  const std::string where = "Redis " + options_.url.host + ":" + std::to_string(options_.url.port);
  if (!everUp_) {
    // The first connection failed: the server does not start (a clear error beats a server that cannot share).
    if (auto ready = std::move(ready_)) {
      ready_ = nullptr;
      ready(fail(where + ": " + reason));
    }
    return;
  }
  RTCPEER_LOG(Error, "redis", where << ": " << reason << "; retrying in " << backoff_.count() << " ms");
  if (wasUp) {
    // Relay messages may have been lost: every link through Redis ends. Lobbies homed here go on locally.
    std::vector<std::string> homes, servers;
    for (const auto& [home, conns] : byHome_) homes.push_back(home);
    for (const auto& [server, conns] : byServer_) servers.push_back(server);
    for (const auto& home : homes) reapHome(home, kCloseProtocolError, std::string(kBackendLost));
    for (const auto& server : servers) reapServer(server);
    // Clients still waiting for their lobby's lookup.
    std::vector<ConnId> waiting;
    for (const auto& [conn, proxy] : proxies_) waiting.push_back(conn);
    for (ConnId conn : waiting) closeLocal(conn, kCloseProtocolError, std::string(kBackendLost));
    host_.drain();
  }
  timers_->retry.expires_after(backoff_);
  backoff_ = std::min(backoff_ * 2, kMaxBackoff);
  timers_->retry.async_wait([this, alive = alive_](boost::system::error_code ec) {
    if (!ec && *alive && state_ == State::Down) connect();
  });
}

void Cluster::tick() {
  timers_->tick.expires_after(options_.ttl / 3);
  timers_->tick.async_wait([this, alive = alive_](boost::system::error_code ec) {
    if (ec || !*alive || state_ != State::Up) return;
    heartbeat();
    tick();
  });
}

void Cluster::heartbeat() {
  cmd_.command({"SET", names_.server(id_), "1", "PX", ms()});
  cmd_.command({"SET", names_.slot(slot_), id_, "PX", ms()});
  for (const auto& name : lobbies_) cmd_.command({"SET", names_.lobby(name), id_, "PX", ms()});
  // The reaper: every server this one relays with must still have its heartbeat key.
  std::set<std::string> peers;
  for (const auto& [home, conns] : byHome_) peers.insert(home);
  for (const auto& [server, conns] : byServer_) peers.insert(server);
  for (const auto& peer : peers) {
    cmd_.command({"EXISTS", names_.server(peer)}, [this, alive = alive_, peer](const redisReply* r) {
      if (!*alive || !r || r->type != REDIS_REPLY_INTEGER || r->integer != 0) return;
      RTCPEER_LOG(Warning, "redis", "server " << peer << " stopped its heartbeat; its clients leave");
      reapHome(peer, kCloseProtocolError, "Room host has disconnected");
      reapServer(peer);
      host_.drain();
    });
  }
}

// ---- relaying

void Cluster::publish(const std::string& server, RelayMessage m) {
  m.from = id_;
  const bool sent = cmd_.command({"PUBLISH", names_.channel(server), serializeRelay(m)},
                                 [this, alive = alive_, server](const redisReply* r) {
    // Nobody subscribed: that server is gone (or lost Redis, and then it dropped these links itself).
    if (!*alive || !r || r->type != REDIS_REPLY_INTEGER || r->integer != 0) return;
    reapHome(server, kCloseProtocolError, "Room host has disconnected");
    reapServer(server);
    host_.drain();
  });
  (void)sent;  // not connected: down() ends these links
}

void Cluster::forward(ConnId conn, RelayKind kind, std::string payload) {
  auto it = proxies_.find(conn);
  if (it == proxies_.end()) return;
  if (it->second.home.empty()) {
    if (it->second.queued.size() >= kMaxQueuedDuringLookup) return closeLocal(conn, kCloseProtocolError, "Too many messages");
    it->second.queued.push_back({kind, {}, conn, 0, std::move(payload)});
    return;
  }
  publish(it->second.home, {kind, {}, conn, 0, std::move(payload)});
}

bool Cluster::textFrame(ConnId conn, std::string_view json) {
  if (proxies_.count(conn)) {
    forward(conn, RelayKind::Text, std::string(json));
    return true;
  }
  auto m = parseMessage(json);
  if (!m || m->type != MessageType::Join || m->data.empty() || host_.core().hasLobby(m->data)) return false;
  if (!host_.core().release(conn)) return false;  // joined already: the core refuses it
  // Proxied clients leave the core but still hold a socket here: they count against Limits::maxPeers too.
  if (proxies_.size() + host_.core().peerCount() >= host_.core().limits().maxPeers) {
    closeLocal(conn, kCloseProtocolError, "Too many peers");
    return true;
  }
  if (state_ != State::Up) {
    closeLocal(conn, kCloseProtocolError, std::string(kBackendLost));
    return true;
  }
  Proxy& proxy = proxies_[conn];
  proxy.queued.push_back({RelayKind::Text, {}, conn, 0, std::string(json)});
  cmd_.command({"GET", names_.lobby(m->data)},
               [this, alive = alive_, conn](const redisReply* r) {
                 if (*alive) lookedUp(conn, r);
               });
  return true;
}

void Cluster::lookedUp(ConnId conn, const redisReply* reply) {
  auto it = proxies_.find(conn);
  if (it == proxies_.end() || !it->second.home.empty()) return;  // gone meanwhile
  if (!reply) return;  // the link went down: down() closes it
  const std::string home = isString(reply) ? std::string(reply->str, reply->len) : std::string();
  if (!isServerId(home) || home == id_) {
    if (reply->type != REDIS_REPLY_NIL && home != id_)
      RTCPEER_LOG(Warning, "redis", "malformed lobby directory entry dropped: " << describe(reply));
    closeLocal(conn, kCloseProtocolError, "Lobby does not exists");
    return host_.drain();
  }
  it->second.home = home;
  byHome_[home].insert(conn);
  auto queued = std::move(it->second.queued);
  publish(home, {RelayKind::Open, {}, conn, 0, {}});
  for (auto& m : queued) publish(home, std::move(m));
}

bool Cluster::binaryFrame(ConnId conn) {
  if (!proxies_.count(conn)) return false;
  forward(conn, RelayKind::Binary, {});
  return true;
}

bool Cluster::tooLarge(ConnId conn) {
  if (!proxies_.count(conn)) return false;
  forward(conn, RelayKind::TooLarge, {});
  return true;
}

bool Cluster::ended(ConnId conn) {
  auto it = proxies_.find(conn);
  if (it == proxies_.end()) return false;
  const std::string home = it->second.home;
  proxies_.erase(it);
  if (!home.empty()) {
    byHome_[home].erase(conn);
    if (byHome_[home].empty()) byHome_.erase(home);
    publish(home, {RelayKind::Closed, {}, conn, 0, {}});
  }
  return true;
}

bool Cluster::route(Action& action) {
  auto it = remotes_.find(action.conn);
  if (it == remotes_.end()) return false;
  const Remote remote = it->second;
  if (action.kind == Action::Kind::Send) {
    publish(remote.server, {RelayKind::Send, {}, remote.conn, 0, std::move(action.text)});
    return true;
  }
  // A close: the core has forgotten the connection already.
  publish(remote.server, {RelayKind::Close, {}, remote.conn, action.code, std::move(action.text)});
  remotes_.erase(it);
  byRemote_.erase({remote.server, remote.conn});
  forget(byServer_, remote.server, action.conn);
  return true;
}

void Cluster::onRelay(std::string_view payload) {
  auto parsed = parseRelay(payload, host_.core().limits().maxMessageSize);
  if (!parsed) {
    RTCPEER_LOG(Warning, "redis", "malformed relay message dropped (" << payload.size() << " bytes): " << parsed.reason());
    return;
  }
  RelayMessage& m = *parsed;
  Lobbies& core = host_.core();
  const Timestamp now = host_.now();
  switch (m.kind) {
    case RelayKind::Open: {
      if (m.from == id_ || byRemote_.count({m.from, m.conn})) return;
      const ConnId v = host_.newConnId();
      remotes_[v] = {m.from, m.conn};
      byRemote_[{m.from, m.conn}] = v;
      byServer_[m.from].insert(v);
      core.open(v, now);
      break;
    }
    case RelayKind::Text:
    case RelayKind::Binary:
    case RelayKind::TooLarge:
    case RelayKind::Closed: {
      auto it = byRemote_.find({m.from, m.conn});
      if (it == byRemote_.end()) return;  // closed here already
      const ConnId v = it->second;
      if (m.kind == RelayKind::Text) core.text(v, m.payload, now);
      else if (m.kind == RelayKind::Binary) core.binary(v, now);
      else if (m.kind == RelayKind::TooLarge) core.tooLarge(v, now);
      else {
        byRemote_.erase(it);
        remotes_.erase(v);
        forget(byServer_, m.from, v);
        core.closed(v, now);
      }
      break;
    }
    case RelayKind::Send:
    case RelayKind::Close: {
      auto it = proxies_.find(static_cast<ConnId>(m.conn));
      if (it == proxies_.end() || it->second.home != m.from) return;
      if (m.kind == RelayKind::Send) {
        if (m.payload.rfind("{\"type\":7,", 0) == 0) it->second.sealed = true;
        host_.deliver({Action::Kind::Send, m.conn, std::move(m.payload), 0});
        return;
      }
      // The home forgot the client: close it here without telling the home again.
      const std::string home = it->second.home;
      proxies_.erase(it);
      byHome_[home].erase(m.conn);
      if (byHome_[home].empty()) byHome_.erase(home);
      host_.deliver({Action::Kind::Close, m.conn, std::move(m.payload), m.code});
      return;
    }
  }
  host_.drain();
}

void Cluster::reapHome(const std::string& home, int code, const std::string& reason) {
  auto it = byHome_.find(home);
  if (it == byHome_.end()) return;
  const std::set<ConnId> conns = std::move(it->second);
  byHome_.erase(it);
  for (ConnId conn : conns) {
    auto p = proxies_.find(conn);
    if (p == proxies_.end()) continue;
    // After a seal the members' meshes stand on their own: the normal close (as Lobbies::remove does).
    const bool sealed = p->second.sealed && code == kCloseProtocolError && reason != kBackendLost;
    proxies_.erase(p);
    host_.deliver({Action::Kind::Close, conn, sealed ? "Seal complete" : reason, sealed ? kCloseNormal : code});
  }
}

void Cluster::reapServer(const std::string& server) {
  auto it = byServer_.find(server);
  if (it == byServer_.end()) return;
  const std::set<ConnId> conns = std::move(it->second);
  byServer_.erase(it);
  for (ConnId v : conns) {
    auto r = remotes_.find(v);
    if (r == remotes_.end()) continue;
    byRemote_.erase({r->second.server, r->second.conn});
    remotes_.erase(r);
    host_.core().closed(v, host_.now());
  }
}

void Cluster::closeLocal(ConnId conn, int code, std::string reason) {
  auto it = proxies_.find(conn);
  if (it != proxies_.end()) {
    if (!it->second.home.empty()) {
      byHome_[it->second.home].erase(conn);
      if (byHome_[it->second.home].empty()) byHome_.erase(it->second.home);
      publish(it->second.home, {RelayKind::Closed, {}, conn, 0, {}});
    }
    proxies_.erase(it);
  }
  host_.deliver({Action::Kind::Close, conn, std::move(reason), code});
}

void Cluster::lobbyEvent(const Lobbies::LobbyEvent& event) {
  if (event.created) {
    lobbies_.insert(event.name);
    if (state_ == State::Up) cmd_.command({"SET", names_.lobby(event.name), id_, "PX", ms()});
  } else {
    lobbies_.erase(event.name);
    if (state_ == State::Up) cmd_.command({"DEL", names_.lobby(event.name)});
  }
}

}  // namespace rtcpeer::signaling
