// What travels through Redis between signaling servers (docs/SIGNALING.md "Several servers on Redis"): the
// redis:// URL, the relay envelope published on a server's channel, and the key and channel names. Pure code
// without hiredis, so the parsers are fuzzed (tests/fuzz/signaling_redis.cpp) and unit-tested on any build.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "common/result.hpp"

namespace rtcpeer::signaling {

/// redis://HOST[:PORT][/DB]: HOST a name, an IPv4 literal or a bracketed IPv6 literal; PORT 6379 by default;
/// DB 0..15 (Redis' default database count), 0 by default. No user, password, query or TLS (rediss://).
struct RedisUrl {
  std::string host;
  std::uint16_t port = 6379;
  int db = 0;
};
Result<RedisUrl> parseRedisUrl(std::string_view url);

/// One relay envelope. A server that proxies a client to the lobby's home server sends Open, Text, Binary,
/// TooLarge and Closed about it; the home server answers with Send and Close. `conn` is always the connection
/// id on the proxying server, `from` the sender's server id.
enum class RelayKind : char {
  Open = 'O',      ///< proxy -> home: a client joins through the proxy (a Text with its JOIN follows)
  Text = 'T',      ///< proxy -> home: a client frame, JSON (line-protocol frames are translated first)
  Binary = 'B',    ///< proxy -> home: the client sent a binary frame
  TooLarge = 'L',  ///< proxy -> home: the client sent a frame over the size limit
  Closed = 'X',    ///< proxy -> home: the client's socket is gone
  Send = 'S',      ///< home -> proxy: deliver this JSON frame to the client
  Close = 'C',     ///< home -> proxy: close the client with `code` and the reason in the payload
};

/// Server ids are 16 lowercase hex digits (64 random bits), made at start.
inline constexpr std::size_t kServerIdLength = 16;

struct RelayMessage {
  RelayKind kind = RelayKind::Text;
  std::string from;
  std::uint64_t conn = 0;
  int code = 0;  ///< Close: the WebSocket close code (1000..4999); 0 otherwise
  std::string payload;
};

/// "<kind> <from> <conn> <code>\n<payload>". Strict: a known kind, a well-formed server id, a decimal conn
/// (1..2^63-1), a code of 0 or 1000..4999, a payload of at most `maxPayload` bytes. Anything else fails with a
/// reason for the log (the message is dropped).
Result<RelayMessage> parseRelay(std::string_view text, std::size_t maxPayload);
std::string serializeRelay(const RelayMessage& m);

/// True for 16 lowercase hex digits.
bool isServerId(std::string_view id);

/// Key and channel names. Pub/sub channels are global to a Redis server, not per database, so every name carries
/// the database number: servers using different databases never hear each other.
struct RedisNames {
  explicit RedisNames(int db) : prefix("rtcpeer:" + std::to_string(db) + ":") {}
  std::string server(std::string_view id) const { return prefix + "server:" + std::string(id); }  ///< heartbeat
  std::string channel(std::string_view id) const { return prefix + "relay:" + std::string(id); }
  std::string lobby(std::string_view name) const { return prefix + "lobby:" + std::string(name); }
  std::string slot(unsigned slot) const { return prefix + "slot:" + std::to_string(slot); }
  std::string prefix;
};

}  // namespace rtcpeer::signaling
