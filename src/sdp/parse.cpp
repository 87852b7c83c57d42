// SDP parsing (RFC 8866 line syntax) of the attributes a WebRTC data-channel stack needs.
#include <algorithm>
#include <cctype>
#include <charconv>

#include "sdp/sdp.hpp"

namespace rtcpeer::sdp {

namespace {

constexpr std::size_t kMaxSdpSize = 1 << 20;
constexpr std::size_t kMaxQuoted = 60;

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

std::vector<std::string_view> tokens(std::string_view s) {
  std::vector<std::string_view> out;
  std::size_t i = 0;
  while (i < s.size()) {
    while (i < s.size() && (s[i] == ' ' || s[i] == '\t')) ++i;
    std::size_t start = i;
    while (i < s.size() && s[i] != ' ' && s[i] != '\t') ++i;
    if (i > start) out.push_back(s.substr(start, i - start));
  }
  return out;
}

template <class T>
bool toNumber(std::string_view s, T& out) {
  if (s.empty()) return false;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  return ec == std::errc() && end == s.data() + s.size();
}

bool isIceChar(char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '+' || c == '/'; }

std::string lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(), [](unsigned char c) { return std::tolower(c); });
  return out;
}

// Parses "AB:cd:01" into upper-case "AB:CD:01"; false unless it is 1+ pairs of hex digits separated by ':'.
bool normalizeFingerprint(std::string_view hex, std::string& out) {
  if (hex.empty() || (hex.size() + 1) % 3 != 0) return false;
  out.clear();
  for (std::size_t i = 0; i < hex.size(); ++i) {
    char c = hex[i];
    if (i % 3 == 2) {
      if (c != ':') return false;
    } else if (!std::isxdigit(static_cast<unsigned char>(c))) {
      return false;
    }
    out.push_back(static_cast<char>(std::toupper(static_cast<unsigned char>(c))));
  }
  return true;
}

// ICE, DTLS and setup attributes that may appear at session level and be overridden per section.
struct TransportAttrs {
  std::string iceUfrag;
  std::string icePwd;
  std::vector<std::string> iceOptions;
  std::vector<Fingerprint> fingerprints;
  Setup setup = Setup::None;
};

class Parser {
 public:
  Result<SessionDescription> run(std::string_view text);

 private:
  Status line(std::string_view l);
  Status attribute(std::string_view name, std::string_view value, bool hasValue);
  Status media(std::string_view value);
  Failure error(std::string why) const {
    std::string shown(current_.substr(0, kMaxQuoted));
    if (current_.size() > kMaxQuoted) shown += "...";
    return fail("line " + std::to_string(lineNo_) + ": " + why + " (in '" + shown + "')");
  }
  TransportAttrs& transport() { return sd_.media.empty() ? session_ : sectionAttrs_.back(); }
  void resolve();

  SessionDescription sd_;
  TransportAttrs session_;
  std::vector<TransportAttrs> sectionAttrs_;  // parallel to sd_.media
  bool bundleSeen_ = false;
  std::size_t lineNo_ = 0;
  std::string_view current_;
};

Result<SessionDescription> Parser::run(std::string_view text) {
  if (text.size() > kMaxSdpSize) return fail("SDP of " + std::to_string(text.size()) + " bytes is larger than 1 MiB");
  bool first = true;
  while (!text.empty()) {
    auto nl = text.find('\n');
    std::string_view l = text.substr(0, nl);
    text = nl == std::string_view::npos ? std::string_view{} : text.substr(nl + 1);
    ++lineNo_;
    if (!l.empty() && l.back() == '\r') l.remove_suffix(1);
    current_ = l;
    if (trim(l).empty()) continue;  // tolerated: blank lines, e.g. a trailing one
    if (first) {
      if (l != "v=0") return error("an SDP must start with v=0");
      first = false;
      continue;
    }
    if (Status s = line(l); !s) return s.failure();
  }
  if (first) return fail("empty SDP (no v=0 line)");
  resolve();
  return std::move(sd_);
}

Status Parser::line(std::string_view l) {
  if (l.size() < 2 || l[1] != '=' || l[0] < 'a' || l[0] > 'z') return error("expected '<letter>=<value>'");
  std::string_view value = l.substr(2);
  switch (l[0]) {
    case 'v':
      return error("repeated v= line");
    case 'o': {
      auto t = tokens(value);
      if (t.size() != 6) return error("o= needs 6 fields: username sess-id sess-version nettype addrtype address");
      if (!toNumber(t[1], sd_.sessionId) || !toNumber(t[2], sd_.sessionVersion))
        return error("o= session id and version must be decimal numbers");
      sd_.originUsername = std::string(t[0]);
      return {};
    }
    case 'm':
      return media(value);
    case 'a': {
      auto colon = value.find(':');
      std::string_view name = value.substr(0, colon);
      if (name.empty()) return error("empty attribute name");
      bool hasValue = colon != std::string_view::npos;
      return attribute(name, hasValue ? value.substr(colon + 1) : std::string_view{}, hasValue);
    }
    default:
      return {};  // s=, t=, c=, b=, i=, u=, e=, p=, z=, k=, r=: nothing rtcpeer needs
  }
}

Status Parser::media(std::string_view value) {
  auto t = tokens(value);
  if (t.size() < 4) return error("m= needs '<media> <port> <proto> <fmt> ...'");
  MediaSection m;
  m.kind = std::string(t[0]);
  std::string_view port = t[1].substr(0, t[1].find('/'));  // "<port>/<number of ports>"
  if (!toNumber(port, m.port)) return error("m= port must be a number in 0..65535");
  m.proto = std::string(t[2]);
  for (std::size_t i = 3; i < t.size(); ++i) m.formats.emplace_back(t[i]);
  sd_.media.push_back(std::move(m));
  sectionAttrs_.emplace_back();
  return {};
}

Status Parser::attribute(std::string_view name, std::string_view value, bool hasValue) {
  bool session = sd_.media.empty();
  MediaSection* m = session ? nullptr : &sd_.media.back();
  auto needValue = [&]() -> Status {
    if (!hasValue || trim(value).empty()) return error("a=" + std::string(name) + " needs a value");
    return {};
  };
  value = trim(value);

  if (name == "ice-ufrag" || name == "ice-pwd") {
    if (Status s = needValue(); !s) return s;
    bool ufrag = name == "ice-ufrag";
    std::size_t min = ufrag ? 4 : 22;  // RFC 8839 §5.4
    if (value.size() < min || value.size() > 256 || !std::all_of(value.begin(), value.end(), isIceChar))
      return error("a=" + std::string(name) + " must be " + std::to_string(min) + "..256 characters of [A-Za-z0-9+/]");
    (ufrag ? transport().iceUfrag : transport().icePwd) = std::string(value);
  } else if (name == "ice-options") {
    if (Status s = needValue(); !s) return s;
    for (auto o : tokens(value)) transport().iceOptions.emplace_back(o);
  } else if (name == "fingerprint") {
    if (Status s = needValue(); !s) return s;
    auto t = tokens(value);
    Fingerprint f;
    if (t.size() != 2 || !normalizeFingerprint(t[1], f.value))
      return error("a=fingerprint must be '<hash function> <hex bytes separated by :>'");
    f.algorithm = lower(t[0]);
    transport().fingerprints.push_back(std::move(f));
  } else if (name == "setup") {
    if (Status s = needValue(); !s) return s;
    std::string v = lower(value);
    Setup& setup = transport().setup;
    if (v == "actpass")
      setup = Setup::ActPass;
    else if (v == "active")
      setup = Setup::Active;
    else if (v == "passive")
      setup = Setup::Passive;
    else if (v == "holdconn")
      setup = Setup::HoldConn;
    else
      return error("a=setup must be actpass, active, passive or holdconn");
  } else if (name == "ice-lite") {
    if (session) sd_.iceLite = true;
  } else if (name == "group") {
    if (Status s = needValue(); !s) return s;
    auto t = tokens(value);
    if (t[0] == "BUNDLE" && !bundleSeen_) {
      bundleSeen_ = true;
      for (std::size_t i = 1; i < t.size(); ++i) sd_.bundleMids.emplace_back(t[i]);
    }
  } else if (!m) {
    return {};  // other session-level attributes (msid-semantic, extmap-allow-mixed, ...)
  } else if (name == "mid") {
    if (Status s = needValue(); !s) return s;
    if (tokens(value).size() != 1) return error("a=mid must be a single token");
    for (const auto& other : sd_.media)
      if (&other != m && other.mid == value) return error("duplicate a=mid:" + std::string(value));
    m->mid = std::string(value);
  } else if (name == "sctp-port") {
    std::uint16_t port = 0;
    if (!toNumber(value, port)) return error("a=sctp-port must be a number in 0..65535");
    m->sctpPort = port;
  } else if (name == "sctpmap") {
    // Legacy (draft-ietf-mmusic-sctp-sdp-05): a=sctpmap:<port> webrtc-datachannel [<streams>]
    auto t = tokens(value);
    std::uint16_t port = 0;
    if (t.size() < 2 || !toNumber(t[0], port)) return error("a=sctpmap must be '<port> <protocol> [<streams>]'");
    if (!m->sctpPort) m->sctpPort = port;
  } else if (name == "max-message-size") {
    std::uint64_t size = 0;
    if (!toNumber(value, size)) return error("a=max-message-size must be a decimal number");
    m->maxMessageSize = size;
  } else if (name == "candidate") {
    if (Status s = needValue(); !s) return s;
    m->candidates.push_back("candidate:" + std::string(value));
  } else if (name == "end-of-candidates") {
    m->endOfCandidates = true;
  } else if (name == "bundle-only") {
    m->bundleOnly = true;
  }
  return {};
}

// Fills each section's effective transport attributes: its own, else the session's, else (for a bundled
// section such as a bundle-only one) those of the first section of its BUNDLE group that has them.
void Parser::resolve() {
  auto inherit = [](TransportAttrs& to, const TransportAttrs& from) {
    if (to.iceUfrag.empty()) to.iceUfrag = from.iceUfrag;
    if (to.icePwd.empty()) to.icePwd = from.icePwd;
    if (to.iceOptions.empty()) to.iceOptions = from.iceOptions;
    if (to.fingerprints.empty()) to.fingerprints = from.fingerprints;
    if (to.setup == Setup::None) to.setup = from.setup;
  };
  for (auto& a : sectionAttrs_) inherit(a, session_);
  auto inBundle = [&](const std::string& mid) {
    return !mid.empty() && std::find(sd_.bundleMids.begin(), sd_.bundleMids.end(), mid) != sd_.bundleMids.end();
  };
  for (std::size_t i = 0; i < sd_.media.size(); ++i) {
    if (!inBundle(sd_.media[i].mid)) continue;
    for (std::size_t j = 0; j < sd_.media.size(); ++j)
      if (j != i && inBundle(sd_.media[j].mid) && !sectionAttrs_[j].iceUfrag.empty()) {
        inherit(sectionAttrs_[i], sectionAttrs_[j]);
        break;
      }
  }
  for (std::size_t i = 0; i < sd_.media.size(); ++i) {
    MediaSection& m = sd_.media[i];
    TransportAttrs& a = sectionAttrs_[i];
    m.iceUfrag = std::move(a.iceUfrag);
    m.icePwd = std::move(a.icePwd);
    m.iceOptions = std::move(a.iceOptions);
    m.fingerprints = std::move(a.fingerprints);
    m.setup = a.setup;
  }
}

}  // namespace

const char* setupName(Setup s) noexcept {
  switch (s) {
    case Setup::None:
      return "";
    case Setup::ActPass:
      return "actpass";
    case Setup::Active:
      return "active";
    case Setup::Passive:
      return "passive";
    case Setup::HoldConn:
      return "holdconn";
  }
  return "";
}

bool MediaSection::isDataChannel() const {
  if (kind != "application") return false;
  if (proto == "UDP/DTLS/SCTP" || proto == "TCP/DTLS/SCTP")
    return std::find(formats.begin(), formats.end(), "webrtc-datachannel") != formats.end();
  return isLegacySctp();
}

std::optional<std::size_t> SessionDescription::dataChannelIndex() const {
  for (std::size_t i = 0; i < media.size(); ++i)
    if (media[i].isDataChannel() && !media[i].rejected()) return i;
  return std::nullopt;
}

Result<SessionDescription> parse(std::string_view text) { return Parser().run(text); }

Result<std::size_t> checkRemote(const SessionDescription& sdp, bool isOffer) {
  auto index = sdp.dataChannelIndex();
  if (!index) return fail("no data-channel section (m=application ... UDP/DTLS/SCTP webrtc-datachannel)");
  const MediaSection& m = sdp.media[*index];
  std::string where = "data-channel section" + (m.mid.empty() ? std::string() : " (mid " + m.mid + ")");
  if (m.iceUfrag.empty() || m.icePwd.empty()) return fail(where + " has no a=ice-ufrag/a=ice-pwd");
  if (m.fingerprints.empty()) return fail(where + " has no a=fingerprint");
  if (m.setup == Setup::HoldConn) return fail(where + ": a=setup:holdconn is not supported");
  if (!isOffer && m.setup == Setup::ActPass) return fail(where + ": an answer must not use a=setup:actpass");
  return *index;
}

Setup answerSetup(Setup offered) noexcept {
  // RFC 4145 §4: an absent a=setup in an offer means active.
  return offered == Setup::Active || offered == Setup::None ? Setup::Passive : Setup::Active;
}

Result<std::size_t> candidateSection(const SessionDescription& sdp, std::string_view mid, int index) {
  std::size_t i = 0;
  if (!mid.empty()) {
    while (i < sdp.media.size() && sdp.media[i].mid != mid) ++i;
    if (i == sdp.media.size()) return fail("candidate for unknown mid '" + std::string(mid.substr(0, 64)) + "'");
  } else {
    if (index < 0 || static_cast<std::size_t>(index) >= sdp.media.size())
      return fail("candidate for m-line index " + std::to_string(index) + ", but the description has " +
                  std::to_string(sdp.media.size()));
    i = static_cast<std::size_t>(index);
  }
  if (sdp.media[i].rejected()) return fail("candidate for a rejected section (m-line " + std::to_string(i) + ")");
  return i;
}

std::string_view candidateValue(std::string_view name) noexcept {
  while (!name.empty() && std::isspace(static_cast<unsigned char>(name.front()))) name.remove_prefix(1);
  while (!name.empty() && std::isspace(static_cast<unsigned char>(name.back()))) name.remove_suffix(1);
  if (name.starts_with("a=")) name.remove_prefix(2);
  if (name == "end-of-candidates") return {};
  return name;
}

bool localIsDtlsClient(Setup remoteSetup, bool remoteIsOffer) noexcept {
  if (remoteIsOffer) return answerSetup(remoteSetup) == Setup::Active;
  return remoteSetup != Setup::Active;
}

}  // namespace rtcpeer::sdp
