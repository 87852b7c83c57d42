// Configuration, DataChannelInit and ICE server URLs: validation and JSON parsing for the public API.
#include <algorithm>
#include <cctype>
#include <charconv>
#include <cmath>
#include <limits>
#include <nlohmann/json.hpp>

#include "common/address.hpp"
#include "rtcpeer/configuration.hpp"

namespace rtcpeer {

const char* errorName(Error error) noexcept {
  switch (error) {
    case Error::Ok:
      return "Ok";
    case Error::Failed:
      return "Failed";
    case Error::Unavailable:
      return "Unavailable";
    case Error::Unconfigured:
      return "Unconfigured";
    case Error::Unauthorized:
      return "Unauthorized";
    case Error::OutOfMemory:
      return "OutOfMemory";
    case Error::AlreadyInUse:
      return "AlreadyInUse";
    case Error::InvalidParameter:
      return "InvalidParameter";
    case Error::Bug:
      return "Bug";
  }
  return "Unknown";
}

namespace {

using Json = nlohmann::json;

Error invalid(std::string* reason, std::string why) {
  if (reason) *reason = std::move(why);
  return Error::InvalidParameter;
}

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) == std::tolower(static_cast<unsigned char>(y));
         });
}

// RFC 3986 reg-name characters we accept in a host name (no percent-encoding, no userinfo).
bool isHostChar(char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '.' || c == '_'; }

std::string quoteText(std::string_view s) {
  constexpr std::size_t kMax = 80;
  std::string out = "'";
  out.append(s.substr(0, kMax));
  if (s.size() > kMax) out += "...";
  out += "'";
  return out;
}

// Reads an integer from a JSON number (Godot's JSON gives integral floats like 1.0) within [lo, hi].
bool readInt(const Json& v, std::int64_t lo, std::int64_t hi, std::int64_t& out) {
  if (v.is_number_integer()) {
    if (v.is_number_unsigned()) {
      auto u = v.get<std::uint64_t>();
      if (u > static_cast<std::uint64_t>(hi)) return false;
      out = static_cast<std::int64_t>(u);
    } else {
      out = v.get<std::int64_t>();
    }
  } else if (v.is_number_float()) {
    double d = v.get<double>();
    if (!std::isfinite(d) || d != std::floor(d) || d < static_cast<double>(lo) || d > static_cast<double>(hi))
      return false;
    out = static_cast<std::int64_t>(d);
  } else {
    return false;
  }
  return out >= lo && out <= hi;
}

Error parseJsonObject(std::string_view text, Json& out, std::string* reason) {
  try {
    out = Json::parse(text.begin(), text.end());
  } catch (const Json::exception& e) {
    return invalid(reason, std::string("invalid JSON: ") + e.what());
  }
  if (!out.is_object()) return invalid(reason, "expected a JSON object at the top level");
  return Error::Ok;
}

std::string rangeText(std::int64_t lo, std::int64_t hi) {
  return "an integer in " + std::to_string(lo) + ".." + std::to_string(hi);
}

}  // namespace

Error IceServerUrl::parse(std::string_view url, IceServerUrl& out, std::string* reason) {
  auto bad = [&](std::string why) { return invalid(reason, "ICE server URL " + quoteText(url) + ": " + why); };
  auto colon = url.find(':');
  if (colon == std::string_view::npos) return bad("missing scheme (expected stun:, turn: or turns:)");
  std::string_view scheme = url.substr(0, colon);
  IceServerUrl u;
  if (iequals(scheme, "stun"))
    u.scheme = Scheme::Stun;
  else if (iequals(scheme, "turn"))
    u.scheme = Scheme::Turn;
  else if (iequals(scheme, "turns"))
    u.scheme = Scheme::Turns;
  else
    return bad("unsupported scheme " + quoteText(scheme) + " (expected stun:, turn: or turns:)");
  u.port = u.scheme == Scheme::Turns ? 5349 : 3478;
  u.transport = u.scheme == Scheme::Turns ? Transport::Tcp : Transport::Udp;

  std::string_view rest = url.substr(colon + 1);
  if (rest.starts_with("//")) return bad("URI must not contain '//' (RFC 7064/7065 form is scheme:host[:port])");
  std::string_view query;
  if (auto q = rest.find('?'); q != std::string_view::npos) {
    query = rest.substr(q + 1);
    rest = rest.substr(0, q);
  }
  if (rest.find('@') != std::string_view::npos) return bad("credentials belong in username/credential, not the URL");

  std::string_view host, port;
  if (rest.starts_with('[')) {
    auto close = rest.find(']');
    if (close == std::string_view::npos) return bad("unterminated '[' in IPv6 host");
    host = rest.substr(1, close - 1);
    std::string_view after = rest.substr(close + 1);
    if (!after.empty()) {
      if (after[0] != ':') return bad("unexpected characters after ']'");
      port = after.substr(1);
      if (port.empty()) return bad("empty port");
    }
    if (auto addr = SocketAddress::parse(host, 0); !addr || !addr->isV6())
      return bad("invalid IPv6 address " + quoteText(host));
  } else {
    auto c = rest.find(':');
    host = rest.substr(0, c);
    if (c != std::string_view::npos) {
      port = rest.substr(c + 1);
      if (port.empty()) return bad("empty port");
      if (port.find(':') != std::string_view::npos) return bad("IPv6 hosts must be in brackets, e.g. [::1]");
    }
    if (host.empty()) return bad("missing host");
    if (!std::all_of(host.begin(), host.end(), isHostChar)) return bad("invalid character in host " + quoteText(host));
  }
  if (host.empty()) return bad("missing host");
  if (!port.empty()) {
    unsigned p = 0;
    auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), p);
    if (ec != std::errc() || end != port.data() + port.size() || p == 0 || p > 65535)
      return bad("invalid port " + quoteText(port) + " (expected 1..65535)");
    u.port = static_cast<std::uint16_t>(p);
  }
  if (!query.empty()) {
    if (u.scheme == Scheme::Stun) return bad("stun: URLs take no query (transport= is for turn:/turns:)");
    constexpr std::string_view kKey = "transport=";
    if (!query.starts_with(kKey)) return bad("unknown query " + quoteText(query) + " (only transport= is allowed)");
    std::string_view t = query.substr(kKey.size());
    if (iequals(t, "udp")) {
      if (u.scheme == Scheme::Turns) return bad("turns: runs over TLS/TCP; transport=udp is not possible");
      u.transport = Transport::Udp;
    } else if (iequals(t, "tcp")) {
      u.transport = Transport::Tcp;
    } else {
      return bad("invalid transport " + quoteText(t) + " (expected udp or tcp)");
    }
  }
  u.host = std::string(host);
  out = std::move(u);
  return Error::Ok;
}

Error Configuration::validate(std::string* reason) const {
  for (std::size_t i = 0; i < iceServers.size(); ++i) {
    const IceServer& s = iceServers[i];
    std::string where = "iceServers[" + std::to_string(i) + "]";
    if (s.urls.empty()) return invalid(reason, where + ".urls: at least one URL is required");
    for (const std::string& url : s.urls) {
      IceServerUrl parsed;
      std::string why;
      if (IceServerUrl::parse(url, parsed, &why) != Error::Ok) return invalid(reason, where + ": " + why);
      if (parsed.scheme != IceServerUrl::Scheme::Stun && (s.username.empty() || s.credential.empty()))
        return invalid(reason, where + ": " + quoteText(url) + " is a TURN server and needs username and credential");
    }
  }
  for (const std::string& itf : interfaces)
    if (itf.empty()) return invalid(reason, "interfaces: empty interface name");
  if ((portRangeBegin == 0) != (portRangeEnd == 0))
    return invalid(reason, "portRangeBegin and portRangeEnd must both be 0 (any port) or both be set");
  if (portRangeBegin > portRangeEnd)
    return invalid(reason, "portRangeBegin " + std::to_string(portRangeBegin) + " is above portRangeEnd " +
                               std::to_string(portRangeEnd));
  if (udpMux && (portRangeBegin == 0 || portRangeBegin != portRangeEnd))
    return invalid(reason, "udpMux shares one UDP port between connections: set portRangeBegin and portRangeEnd to "
                           "that one port (both equal, not 0)");
  if (connectTimeout.count() <= 0 || disconnectedTimeout.count() <= 0 || failedTimeout.count() <= 0)
    return invalid(reason, "timeouts must be positive");
  // Longer would overflow microsecond deadlines long before it meant anything; a day is beyond any use.
  constexpr std::chrono::milliseconds kMaxTimeout{86'400'000};  // also fromJson's limit
  if (std::max({connectTimeout, disconnectedTimeout, failedTimeout}) > kMaxTimeout)
    return invalid(reason, "timeouts must not exceed 86400000 ms (one day)");
  if (disconnectedTimeout > failedTimeout) return invalid(reason, "disconnectedTimeout must not exceed failedTimeout");
  if (maxMessageSize < 1024 || maxMessageSize > (64u << 20))
    return invalid(reason, "maxMessageSize " + std::to_string(maxMessageSize) + " is outside 1024..67108864");
  // The receive path holds datagrams of up to 2048 bytes (net::UdpSocket::kBufferSize): a larger mtu would have
  // both peers send datagrams that get truncated and dropped.
  if (mtu < 576 || mtu > 2048) return invalid(reason, "mtu " + std::to_string(mtu) + " is outside 576..2048");
  if (certificatePem.empty() != privateKeyPem.empty())
    return invalid(reason, "certificatePem and privateKeyPem must be given together");
  return Error::Ok;
}

Error Configuration::fromJson(std::string_view json, Configuration& out, std::string* reason) {
  Json root;
  if (Error e = parseJsonObject(json, root, reason); e != Error::Ok) return e;
  Configuration c;

  if (auto it = root.find("iceServers"); it != root.end()) {
    if (!it->is_array()) return invalid(reason, "iceServers: expected an array");
    for (std::size_t i = 0; i < it->size(); ++i) {
      const Json& entry = (*it)[i];
      std::string where = "iceServers[" + std::to_string(i) + "]";
      if (!entry.is_object()) return invalid(reason, where + ": expected an object");
      IceServer server;
      auto urls = entry.find("urls");
      if (urls == entry.end()) return invalid(reason, where + ".urls: missing");
      if (urls->is_string()) {
        server.urls.push_back(urls->get<std::string>());
      } else if (urls->is_array()) {
        for (std::size_t k = 0; k < urls->size(); ++k) {
          if (!(*urls)[k].is_string())
            return invalid(reason, where + ".urls[" + std::to_string(k) + "]: expected a string");
          server.urls.push_back((*urls)[k].get<std::string>());
        }
      } else {
        return invalid(reason, where + ".urls: expected a string or an array of strings");
      }
      for (auto [key, field] : {std::pair{"username", &server.username}, std::pair{"credential", &server.credential}}) {
        if (auto f = entry.find(key); f != entry.end()) {
          if (!f->is_string()) return invalid(reason, where + "." + key + ": expected a string");
          *field = f->get<std::string>();
        }
      }
      c.iceServers.push_back(std::move(server));
    }
  }

  if (auto it = root.find("iceTransportPolicy"); it != root.end()) {
    const bool isString = it->is_string();
    const std::string policy = isString ? it->get<std::string>() : std::string();
    if (policy != "relay" && policy != "all")
      return invalid(reason, "iceTransportPolicy: expected \"relay\" or \"all\"");
    c.relayOnly = policy == "relay";
  }
  if (auto it = root.find("iceLite"); it != root.end()) {
    if (!it->is_boolean()) return invalid(reason, "iceLite: expected true or false");
    c.iceLite = it->get<bool>();
  }
  if (auto it = root.find("udpMux"); it != root.end()) {
    if (!it->is_boolean()) return invalid(reason, "udpMux: expected true or false");
    c.udpMux = it->get<bool>();
  }

  if (auto it = root.find("interfaces"); it != root.end()) {
    if (!it->is_array()) return invalid(reason, "interfaces: expected an array of strings");
    for (const Json& v : *it) {
      if (!v.is_string()) return invalid(reason, "interfaces: expected an array of strings");
      c.interfaces.push_back(v.get<std::string>());
    }
  }

  // Integer keys, at the top level and (for webrtc-native parity) inside "libdatachannel".
  auto readKey = [&](const Json& obj, const std::string& prefix, const char* key, std::int64_t lo, std::int64_t hi,
                     auto apply) -> Error {
    auto f = obj.find(key);
    if (f == obj.end()) return Error::Ok;
    std::int64_t v = 0;
    if (!readInt(*f, lo, hi, v)) return invalid(reason, prefix + key + ": expected " + rangeText(lo, hi));
    apply(v);
    return Error::Ok;
  };
  auto readCommon = [&](const Json& obj, const std::string& prefix) -> Error {
    if (Error e = readKey(obj, prefix, "portRangeBegin", 0, 65535,
                          [&](std::int64_t v) { c.portRangeBegin = static_cast<std::uint16_t>(v); });
        e != Error::Ok)
      return e;
    if (Error e = readKey(obj, prefix, "portRangeEnd", 0, 65535,
                          [&](std::int64_t v) { c.portRangeEnd = static_cast<std::uint16_t>(v); });
        e != Error::Ok)
      return e;
    return readKey(obj, prefix, "mtu", 576, 2048, [&](std::int64_t v) { c.mtu = static_cast<std::size_t>(v); });
  };
  if (Error e = readCommon(root, ""); e != Error::Ok) return e;
  if (auto ldc = root.find("libdatachannel"); ldc != root.end()) {
    if (!ldc->is_object()) return invalid(reason, "libdatachannel: expected an object");
    if (Error e = readCommon(*ldc, "libdatachannel."); e != Error::Ok) return e;
  }
  constexpr std::int64_t kDay = 86'400'000;
  using Ms = std::chrono::milliseconds;
  for (auto [key, field] :
       {std::pair{"connectTimeoutMs", &c.connectTimeout}, std::pair{"disconnectedTimeoutMs", &c.disconnectedTimeout},
        std::pair{"failedTimeoutMs", &c.failedTimeout}}) {
    if (Error e = readKey(root, "", key, 1, kDay, [field = field](std::int64_t v) { *field = Ms(v); }); e != Error::Ok)
      return e;
  }
  if (Error e = readKey(root, "", "maxMessageSize", 1024, 64 << 20,
                        [&](std::int64_t v) { c.maxMessageSize = static_cast<std::size_t>(v); });
      e != Error::Ok)
    return e;
  for (auto [key, field] :
       {std::pair{"certificatePem", &c.certificatePem}, std::pair{"privateKeyPem", &c.privateKeyPem}}) {
    if (auto f = root.find(key); f != root.end()) {
      if (!f->is_string()) return invalid(reason, std::string(key) + ": expected a string");
      *field = f->get<std::string>();
    }
  }

  if (Error e = c.validate(reason); e != Error::Ok) return e;
  out = std::move(c);
  return Error::Ok;
}

Error DataChannelInit::validate(std::string* reason) const {
  if (negotiated && !id) return invalid(reason, "a negotiated channel needs an id");
  if (!negotiated && id)
    return invalid(reason,
                   "id is only allowed with negotiated: true (in-band channels get their id from the "
                   "DTLS role)");
  if (id && *id > 65534) return invalid(reason, "id " + std::to_string(*id) + " is outside 0..65534");
  if (maxPacketLifeTime && maxRetransmits)
    return invalid(reason, "maxPacketLifeTime and maxRetransmits cannot both be set");
  if (maxPacketLifeTime && (*maxPacketLifeTime < 0 || *maxPacketLifeTime > 65535))
    return invalid(reason, "maxPacketLifeTime " + std::to_string(*maxPacketLifeTime) + " is outside 0..65535");
  if (maxRetransmits && (*maxRetransmits < 0 || *maxRetransmits > 65535))
    return invalid(reason, "maxRetransmits " + std::to_string(*maxRetransmits) + " is outside 0..65535");
  if (protocol.size() > 65535) return invalid(reason, "protocol is longer than 65535 bytes");
  return Error::Ok;
}

Error DataChannelInit::fromJson(std::string_view json, DataChannelInit& out, std::string* reason) {
  Json root;
  if (Error e = parseJsonObject(json, root, reason); e != Error::Ok) return e;
  DataChannelInit d;
  for (auto [key, field] : {std::pair{"negotiated", &d.negotiated}, std::pair{"ordered", &d.ordered}}) {
    if (auto f = root.find(key); f != root.end()) {
      if (!f->is_boolean()) return invalid(reason, std::string(key) + ": expected true or false");
      *field = f->get<bool>();
    }
  }
  std::int64_t v = 0;
  if (auto f = root.find("id"); f != root.end()) {
    if (!readInt(*f, 0, 65534, v)) return invalid(reason, "id: expected " + rangeText(0, 65534));
    d.id = static_cast<std::uint16_t>(v);
  }
  if (auto f = root.find("maxRetransmits"); f != root.end()) {
    if (!readInt(*f, 0, 65535, v)) return invalid(reason, "maxRetransmits: expected " + rangeText(0, 65535));
    d.maxRetransmits = static_cast<int>(v);
  }
  for (const char* key : {"maxPacketLifeTime", "maxPacketLifetime"}) {
    auto f = root.find(key);
    if (f == root.end()) continue;
    if (d.maxPacketLifeTime)
      return invalid(reason, "maxPacketLifeTime and maxPacketLifetime are the same option; give only one");
    if (!readInt(*f, 0, 65535, v)) return invalid(reason, std::string(key) + ": expected " + rangeText(0, 65535));
    d.maxPacketLifeTime = static_cast<int>(v);
  }
  if (auto f = root.find("protocol"); f != root.end()) {
    if (!f->is_string()) return invalid(reason, "protocol: expected a string");
    d.protocol = f->get<std::string>();
  }
  if (Error e = d.validate(reason); e != Error::Ok) return e;
  out = std::move(d);
  return Error::Ok;
}

}  // namespace rtcpeer
