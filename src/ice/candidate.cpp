// ICE candidates (candidate.hpp): the RFC 8839 `candidate:` line parsed and written, and candidate priorities
// (RFC 8445 5.1.2).
#include "ice/candidate.hpp"


namespace rtcpeer::ice {
namespace {

bool iequals(std::string_view a, std::string_view b) noexcept {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    char x = a[i], y = b[i];
    if (x >= 'A' && x <= 'Z') x = static_cast<char>(x - 'A' + 'a');
    if (y >= 'A' && y <= 'Z') y = static_cast<char>(y - 'A' + 'a');
    if (x != y) return false;
  }
  return true;
}

bool isIceChar(char c) noexcept {  // RFC 8839 ice-char = ALPHA / DIGIT / "+" / "/"
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '+' || c == '/';
}

template <class T>
bool parseNumber(std::string_view s, T max, T& out) noexcept {
  if (s.empty() || s.size() > 10) return false;
  std::uint64_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
    v = v * 10 + static_cast<std::uint64_t>(c - '0');
  }
  if (v > max) return false;
  out = static_cast<T>(v);
  return true;
}

// Splits on runs of spaces/tabs; the token view stays within the input.
class Tokens {
 public:
  explicit Tokens(std::string_view s) : s_(s) {}
  std::string_view next() noexcept {
    while (pos_ < s_.size() && (s_[pos_] == ' ' || s_[pos_] == '\t')) ++pos_;
    std::size_t start = pos_;
    while (pos_ < s_.size() && s_[pos_] != ' ' && s_[pos_] != '\t') ++pos_;
    return s_.substr(start, pos_ - start);
  }

 private:
  std::string_view s_;
  std::size_t pos_ = 0;
};

// A connection-address is an IP literal or (RFC 8839 §5.1, browsers' mDNS obfuscation) a FQDN.
bool parseAddress(std::string_view text, std::uint16_t port, SocketAddress& addr, std::string& hostname) {
  if (auto a = SocketAddress::parse(text, port)) {
    addr = *a;
    return true;
  }
  if (text.empty() || text.size() > 253) return false;
  for (char c : text) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '.';
    if (!ok) return false;
  }
  hostname = std::string(text);
  addr = SocketAddress();
  return true;
}

Failure bad(std::string_view what, std::string_view got) {
  return fail("ICE candidate: bad " + std::string(what) + " '" + std::string(got.substr(0, 64)) + "'");
}

}  // namespace

std::string_view toString(CandidateType type) noexcept {
  switch (type) {
    case CandidateType::Host: return "host";
    case CandidateType::ServerReflexive: return "srflx";
    case CandidateType::PeerReflexive: return "prflx";
    case CandidateType::Relay: return "relay";
  }
  return "host";
}

std::uint8_t Candidate::typePreference(CandidateType type) noexcept {
  switch (type) {
    case CandidateType::Host: return 126;
    case CandidateType::PeerReflexive: return 110;
    case CandidateType::ServerReflexive: return 100;
    case CandidateType::Relay: return 0;
  }
  return 0;
}

std::uint32_t Candidate::computePriority(CandidateType type, std::uint16_t localPreference,
                                         std::uint16_t component) noexcept {
  return (std::uint32_t{typePreference(type)} << 24) | (std::uint32_t{localPreference} << 8) |
         static_cast<std::uint32_t>((256 - component) & 0xFF);
}

std::string_view Candidate::extension(std::string_view name) const noexcept {
  for (const auto& [k, v] : extensions)
    if (k == name) return v;
  return {};
}

std::string Candidate::toSdp() const {
  std::string s = "candidate:";
  s += foundation;
  s += ' ';
  s += std::to_string(component);
  s += transport == Transport::Udp ? " udp " : " tcp ";
  s += std::to_string(priority);
  s += ' ';
  s += isMdns() ? hostname : address.ipString();
  s += ' ';
  s += std::to_string(address.port());
  s += " typ ";
  s += toString(type);
  if (related.valid()) {
    s += " raddr " + related.ipString() + " rport " + std::to_string(related.port());
  }
  if (!tcpType.empty()) s += " tcptype " + tcpType;
  for (const auto& [k, v] : extensions) s += ' ' + k + ' ' + v;
  return s;
}

Result<Candidate> parseCandidate(std::string_view line) {
  while (!line.empty() && (line.back() == '\r' || line.back() == '\n' || line.back() == ' ')) line.remove_suffix(1);
  if (line.starts_with("a=")) line.remove_prefix(2);
  if (!line.starts_with("candidate:")) return fail("ICE candidate: line does not start with 'candidate:'");
  line.remove_prefix(10);

  // RFC 8839 byte-string: no NUL, CR or LF inside the attribute (only a line ending, stripped above).
  if (line.find_first_of(std::string_view("\0\r\n", 3)) != std::string_view::npos)
    return fail("ICE candidate: NUL, CR or LF inside the line");

  Candidate c;
  Tokens t(line);
  auto foundation = t.next();
  if (foundation.empty() || foundation.size() > 32) return bad("foundation", foundation);
  for (char ch : foundation)
    if (!isIceChar(ch)) return bad("foundation", foundation);
  c.foundation = std::string(foundation);

  auto component = t.next();
  if (!parseNumber<std::uint16_t>(component, 256, c.component) || c.component == 0 || component.size() > 3)
    return bad("component id", component);

  auto transport = t.next();
  if (iequals(transport, "udp")) c.transport = Transport::Udp;
  else if (iequals(transport, "tcp")) c.transport = Transport::Tcp;
  else return bad("transport", transport);

  auto priority = t.next();
  if (!parseNumber<std::uint32_t>(priority, 0xFFFFFFFFu, c.priority)) return bad("priority", priority);

  auto addrText = t.next();
  auto portText = t.next();
  std::uint16_t port = 0;
  if (!parseNumber<std::uint16_t>(portText, 65535, port)) return bad("port", portText);
  if (!parseAddress(addrText, port, c.address, c.hostname)) return bad("connection address", addrText);
  if (c.isMdns()) c.address.setPort(port);  // keep the port even without an IP (address stays invalid)

  auto typ = t.next();
  if (typ != "typ") return bad("'typ' keyword", typ);
  auto type = t.next();
  if (type == "host") c.type = CandidateType::Host;
  else if (type == "srflx") c.type = CandidateType::ServerReflexive;
  else if (type == "prflx") c.type = CandidateType::PeerReflexive;
  else if (type == "relay") c.type = CandidateType::Relay;
  else return bad("candidate type", type);

  std::string_view raddr, rport;
  for (auto name = t.next(); !name.empty(); name = t.next()) {
    auto value = t.next();
    if (value.empty()) return bad("extension attribute without value", name);
    if (name == "raddr") raddr = value;
    else if (name == "rport") rport = value;
    else if (name == "tcptype") c.tcpType = std::string(value);
    else c.extensions.emplace_back(std::string(name), std::string(value));
  }
  if (raddr.empty() != rport.empty()) return bad("raddr/rport (one without the other)", raddr.empty() ? rport : raddr);
  if (!raddr.empty()) {
    std::uint16_t rp = 0;
    if (!parseNumber<std::uint16_t>(rport, 65535, rp)) return bad("rport", rport);
    // Browsers send "raddr 0.0.0.0 rport 0" (or an mDNS name) to hide the base; keep only a usable IP.
    if (auto a = SocketAddress::parse(raddr, rp)) c.related = *a;
    else {
      SocketAddress ignored;
      std::string name;
      if (!parseAddress(raddr, rp, ignored, name)) return bad("raddr", raddr);
    }
  }
  return c;
}

}  // namespace rtcpeer::ice
