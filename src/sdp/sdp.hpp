// SDP for WebRTC data channels: a model of the parts rtcpeer uses (RFC 8866 syntax, RFC 8839 ICE, RFC 8842
// DTLS, RFC 8841 SCTP, RFC 8843 BUNDLE), a tolerant parser for what browsers and other stacks send, and the
// generator for our offers and answers (JSEP, RFC 8829).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.hpp"

namespace rtcpeer::sdp {

/// a=setup (RFC 4145 §4, RFC 8842 §5).
enum class Setup { None, ActPass, Active, Passive, HoldConn };
const char* setupName(Setup s) noexcept;

/// a=fingerprint:<algorithm> <hex> (RFC 8122 §5). `algorithm` lower-case, `value` upper-case hex with colons.
struct Fingerprint {
  std::string algorithm;
  std::string value;
  friend bool operator==(const Fingerprint&, const Fingerprint&) = default;
};

/// One m= section. ICE credentials, options, fingerprints and setup are the *effective* values: a section
/// without its own inherits the session-level ones (RFC 8839 §5.4, RFC 8122 §5).
struct MediaSection {
  std::string kind;  ///< "application", "audio", "video", ...
  std::uint16_t port = 0;
  std::string proto;  ///< "UDP/DTLS/SCTP", "DTLS/SCTP", "UDP/TLS/RTP/SAVPF", ...
  std::vector<std::string> formats;
  std::string mid;
  std::string iceUfrag;
  std::string icePwd;
  std::vector<std::string> iceOptions;
  std::vector<Fingerprint> fingerprints;
  Setup setup = Setup::None;
  std::optional<std::uint16_t> sctpPort;        ///< a=sctp-port, or the legacy a=sctpmap port
  std::optional<std::uint64_t> maxMessageSize;  ///< a=max-message-size as sent (absent: 65536; 0: unlimited)
  std::vector<std::string> candidates;          ///< "candidate:..." values as sent, without "a="
  bool endOfCandidates = false;
  bool bundleOnly = false;

  /// An SCTP-over-DTLS data-channel section: "UDP/DTLS/SCTP" or "TCP/DTLS/SCTP" with webrtc-datachannel
  /// (RFC 8841), or the legacy "DTLS/SCTP <port>" form with a=sctpmap.
  [[nodiscard]] bool isDataChannel() const;
  [[nodiscard]] bool isLegacySctp() const { return proto == "DTLS/SCTP"; }
  [[nodiscard]] bool rejected() const { return port == 0 && !bundleOnly; }
};

struct SessionDescription {
  std::string originUsername = "-";
  std::uint64_t sessionId = 0;
  std::uint64_t sessionVersion = 0;
  bool iceLite = false;
  std::vector<std::string> bundleMids;  ///< the first a=group:BUNDLE, if any
  std::vector<MediaSection> media;

  /// Index of the first data-channel section that is not rejected.
  [[nodiscard]] std::optional<std::size_t> dataChannelIndex() const;
};

/// Parses an SDP (CRLF or LF line ends). Unknown lines and attributes are ignored; malformed lines of the
/// kinds rtcpeer uses give a Failure naming the line: "line 7: a=fingerprint: ...".
Result<SessionDescription> parse(std::string_view text);

/// Checks that a remote description can carry our data channels: a usable data-channel section with ICE
/// credentials, a fingerprint and a setup role that fits `isOffer`. Returns the section's index.
Result<std::size_t> checkRemote(const SessionDescription& sdp, bool isOffer);

/// The section a signalled candidate belongs to (addIceCandidate's media and index): the section with mid
/// `mid`, or, when `mid` is empty, the m-line `index` (RFC 8839 §4.2.1 / W3C RTCIceCandidateInit). Failure for
/// an unknown mid, an index out of range, or a rejected section.
Result<std::size_t> candidateSection(const SessionDescription& sdp, std::string_view mid, int index);

/// A signalled candidate line as the ICE candidate parser wants it: an "a=" prefix and surrounding whitespace
/// or CR/LF removed. Empty for an end-of-candidates indication ("" or "end-of-candidates").
std::string_view candidateValue(std::string_view name) noexcept;

/// The a=setup of our answer to an offer's setup (RFC 8842 §5.3: we prefer active, as browsers do).
Setup answerSetup(Setup offered) noexcept;

/// Whether we are the DTLS client, from the peer's a=setup (RFC 8842 §5). When the remote description is the
/// offer, we answer with answerSetup(); when it is the answer, an absent a=setup means passive (RFC 4145 §4).
bool localIsDtlsClient(Setup remoteSetup, bool remoteIsOffer) noexcept;

/// What we put in our own offer or answer.
struct LocalParams {
  std::uint64_t sessionId = 0;       ///< random, < 2^63 (RFC 8829 §5.2.1)
  std::uint64_t sessionVersion = 0;  ///< incremented for each new description of the session
  std::string iceUfrag;
  std::string icePwd;
  bool trickle = true;  ///< a=ice-options:trickle
  bool iceLite = false;
  Fingerprint fingerprint;
  Setup setup = Setup::ActPass;
  std::uint16_t sctpPort = 5000;
  std::uint64_t maxMessageSize = 262144;
  std::vector<std::string> candidates;  ///< "candidate:..." values
  bool endOfCandidates = false;         ///< gathering is complete
};

/// Our offer: one m=application section (mid "0") in a BUNDLE group.
std::string generateOffer(const LocalParams& params);

/// Our answer to `offer`: the same m-lines in the same order (RFC 3264 §6); the first data-channel section
/// is accepted with its mid (and its legacy form, if the offer used it); every other section is rejected with
/// port 0. Failure if the offer has no usable data-channel section.
Result<std::string> generateAnswer(const SessionDescription& offer, const LocalParams& params);

}  // namespace rtcpeer::sdp
