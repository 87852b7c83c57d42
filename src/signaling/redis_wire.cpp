// The redis:// URL and the relay envelope (redis_wire.hpp): strict, bounded parsers.
#include "signaling/redis_wire.hpp"

#include <cctype>
#include <charconv>

namespace rtcpeer::signaling {
namespace {

template <class T>
bool parseDecimal(std::string_view s, T& out) {
  if (s.empty() || s.size() > 19) return false;
  for (char c : s)
    if (c < '0' || c > '9') return false;
  if (s.size() > 1 && s[0] == '0') return false;
  const auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  return ec == std::errc() && ptr == s.data() + s.size();
}

bool isKind(char c) {
  switch (static_cast<RelayKind>(c)) {
    case RelayKind::Open:
    case RelayKind::Text:
    case RelayKind::Binary:
    case RelayKind::TooLarge:
    case RelayKind::Closed:
    case RelayKind::Send:
    case RelayKind::Close:
      return true;
  }
  return false;
}

}  // namespace

Result<RedisUrl> parseRedisUrl(std::string_view url) {
  constexpr std::string_view kScheme = "redis://";
  if (url.substr(0, kScheme.size()) != kScheme) return fail("the Redis URL must start with redis:// (got \"" + std::string(url) + "\")");
  std::string_view rest = url.substr(kScheme.size());
  RedisUrl out;
  std::string_view hostPort = rest.substr(0, rest.find('/'));
  if (rest.size() > hostPort.size()) {
    const std::string_view db = rest.substr(hostPort.size() + 1);
    if (!db.empty() && (!parseDecimal(db, out.db) || out.db > 15))
      return fail("the Redis database must be a number from 0 to 15 (got \"" + std::string(db) + "\")");
  }
  if (hostPort.find('@') != std::string_view::npos) return fail("Redis URLs with a user or password are not supported");
  std::string_view portText;
  bool hasPort = false;
  if (!hostPort.empty() && hostPort[0] == '[') {
    const auto close = hostPort.find(']');
    if (close == std::string_view::npos) return fail("unclosed [ in the Redis URL's host");
    out.host = std::string(hostPort.substr(1, close - 1));
    std::string_view after = hostPort.substr(close + 1);
    if (!after.empty()) {
      if (after[0] != ':') return fail("junk after the Redis URL's host");
      portText = after.substr(1);
      hasPort = true;
    }
  } else {
    const auto colon = hostPort.find(':');
    out.host = std::string(hostPort.substr(0, colon));
    if (colon != std::string_view::npos) {
      portText = hostPort.substr(colon + 1);
      hasPort = true;
    }
  }
  if (out.host.empty() || out.host.size() > 253) return fail("the Redis URL has no host");
  for (char c : out.host)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '-' || c == ':' || c == '_'))
      return fail("invalid character in the Redis host \"" + out.host + "\"");
  if (hasPort) {
    unsigned port = 0;
    if (!parseDecimal(portText, port) || port == 0 || port > 65535)
      return fail("the Redis port must be a number from 1 to 65535 (got \"" + std::string(portText) + "\")");
    out.port = static_cast<std::uint16_t>(port);
  }
  return out;
}

bool isServerId(std::string_view id) {
  if (id.size() != kServerIdLength) return false;
  for (char c : id)
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  return true;
}

Result<RelayMessage> parseRelay(std::string_view text, std::size_t maxPayload) {
  const auto newline = text.find('\n');
  if (newline == std::string_view::npos || newline > 64) return fail("no header line");
  const std::string_view header = text.substr(0, newline);
  RelayMessage m;
  // "K <16 hex> <conn> <code>"
  if (header.size() < 2 + kServerIdLength + 4 || !isKind(header[0]) || header[1] != ' ') return fail("bad kind");
  m.kind = static_cast<RelayKind>(header[0]);
  const std::string_view from = header.substr(2, kServerIdLength);
  if (!isServerId(from) || header[2 + kServerIdLength] != ' ') return fail("bad server id");
  m.from = std::string(from);
  const std::string_view numbers = header.substr(3 + kServerIdLength);
  const auto space = numbers.find(' ');
  if (space == std::string_view::npos) return fail("no close code");
  if (!parseDecimal(numbers.substr(0, space), m.conn) || m.conn == 0 || m.conn > (std::uint64_t{1} << 63) - 1)
    return fail("bad connection id");
  if (!parseDecimal(numbers.substr(space + 1), m.code) || (m.code != 0 && (m.code < 1000 || m.code > 4999)))
    return fail("bad close code");
  if ((m.kind == RelayKind::Close) != (m.code != 0)) return fail("a close code belongs to Close only");
  const std::string_view payload = text.substr(newline + 1);
  if (payload.size() > maxPayload) return fail("payload too large");
  m.payload = std::string(payload);
  return m;
}

std::string serializeRelay(const RelayMessage& m) {
  std::string out;
  out.reserve(48 + m.payload.size());
  out += static_cast<char>(m.kind);
  out += ' ';
  out += m.from;
  out += ' ';
  out += std::to_string(m.conn);
  out += ' ';
  out += std::to_string(m.code);
  out += '\n';
  out += m.payload;
  return out;
}

}  // namespace rtcpeer::signaling
