// Our offers and answers (JSEP, RFC 8829 §5.2 and §5.3), one data-channel section, CRLF line ends.
#include <algorithm>

#include "sdp/sdp.hpp"

namespace rtcpeer::sdp {

namespace {

class Writer {
 public:
  Writer& line(std::string_view l) {
    out_.append(l);
    out_.append("\r\n");
    return *this;
  }
  template <class... T>
  Writer& parts(const T&... p) {
    (out_.append(p), ...);
    out_.append("\r\n");
    return *this;
  }
  std::string take() { return std::move(out_); }

 private:
  std::string out_;
};

void sessionHeader(Writer& w, const LocalParams& p) {
  w.line("v=0");
  // JSEP §5.2.1: "-" user name, a random session id, and an unspecified address.
  w.parts("o=- ", std::to_string(p.sessionId), " ", std::to_string(p.sessionVersion), " IN IP4 0.0.0.0");
  w.line("s=-");
  w.line("t=0 0");
}

// The transport and SCTP attributes of our data-channel section.
void dataSection(Writer& w, const LocalParams& p, std::string_view mid, std::string_view proto, bool legacy) {
  if (legacy)
    w.parts("m=application 9 DTLS/SCTP ", std::to_string(p.sctpPort));
  else
    w.parts("m=application 9 ", proto, " webrtc-datachannel");
  w.line("c=IN IP4 0.0.0.0");
  if (!mid.empty()) w.parts("a=mid:", mid);  // an offer without mids gets an answer without them
  w.parts("a=ice-ufrag:", p.iceUfrag);
  w.parts("a=ice-pwd:", p.icePwd);
  if (p.trickle) w.line("a=ice-options:trickle");
  w.parts("a=fingerprint:", p.fingerprint.algorithm, " ", p.fingerprint.value);
  w.parts("a=setup:", setupName(p.setup));
  if (legacy)
    w.parts("a=sctpmap:", std::to_string(p.sctpPort), " webrtc-datachannel 65535");
  else
    w.parts("a=sctp-port:", std::to_string(p.sctpPort));
  w.parts("a=max-message-size:", std::to_string(p.maxMessageSize));
  for (const std::string& c : p.candidates) w.parts("a=", c);
  if (p.endOfCandidates) w.line("a=end-of-candidates");
}

}  // namespace

std::string generateOffer(const LocalParams& params) {
  Writer w;
  sessionHeader(w, params);
  w.line("a=group:BUNDLE 0");
  if (params.iceLite) w.line("a=ice-lite");
  dataSection(w, params, "0", "UDP/DTLS/SCTP", false);
  return w.take();
}

Result<std::string> generateAnswer(const SessionDescription& offer, const LocalParams& params) {
  auto accepted = offer.dataChannelIndex();
  if (!accepted) return fail("the offer has no data-channel section (m=application ... webrtc-datachannel) to answer");
  const MediaSection& data = offer.media[*accepted];
  const auto& bundle = offer.bundleMids;
  bool bundled = !data.mid.empty() && std::find(bundle.begin(), bundle.end(), data.mid) != bundle.end();

  Writer w;
  sessionHeader(w, params);
  // RFC 8843 §7.3.1: the answer's BUNDLE group holds the accepted mids only.
  if (bundled) w.parts("a=group:BUNDLE ", data.mid);
  if (params.iceLite) w.line("a=ice-lite");
  for (std::size_t i = 0; i < offer.media.size(); ++i) {
    const MediaSection& m = offer.media[i];
    if (i == *accepted) {
      dataSection(w, params, m.mid, m.proto, m.isLegacySctp());
      continue;
    }
    // Rejected (RFC 3264 §6, RFC 8829 §5.3.1): port 0, the offered proto and formats, and the mid.
    std::string formats;
    for (const std::string& f : m.formats) formats += " " + f;
    w.parts("m=", m.kind, " 0 ", m.proto, formats);
    w.line("c=IN IP4 0.0.0.0");
    if (!m.mid.empty()) w.parts("a=mid:", m.mid);
  }
  return w.take();
}

}  // namespace rtcpeer::sdp
