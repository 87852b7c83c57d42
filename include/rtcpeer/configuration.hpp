// Configuration of a PeerConnection and of a DataChannel, with validation and parsing from the JSON dictionary
// shape Godot and browsers use (RTCConfiguration / RTCDataChannelInit). Every check returns an Error plus a
// reason naming the offending key; nothing throws.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "rtcpeer/error.hpp"

namespace rtcpeer {

/// One entry of Configuration::iceServers (W3C RTCIceServer).
struct IceServer {
  /// "stun:host[:port]", "turn:host[:port][?transport=udp|tcp]", "turns:host[:port][?transport=tcp]";
  /// IPv6 hosts in brackets ("stun:[2001:db8::1]:3478").
  std::vector<std::string> urls;
  std::string username;    ///< required for turn:/turns:
  std::string credential;  ///< required for turn:/turns:
};

/// An ICE server URL taken apart (RFC 7064 stun/stuns, RFC 7065 turn/turns).
struct IceServerUrl {
  enum class Scheme { Stun, Turn, Turns };
  enum class Transport { Udp, Tcp };

  Scheme scheme = Scheme::Stun;
  std::string host;                      ///< a name or an IP literal, without brackets
  std::uint16_t port = 3478;             ///< default 3478, 5349 for turns:
  Transport transport = Transport::Udp;  ///< turns: is always Tcp (TLS over TCP)

  /// Parses and validates one URL. On failure returns InvalidParameter and, if `reason` is given, why.
  static Error parse(std::string_view url, IceServerUrl& out, std::string* reason = nullptr);
};

/// PeerConnection configuration: the W3C/Godot `iceServers` plus rtcpeer's own settings.
struct Configuration {
  std::vector<IceServer> iceServers;

  /// Where to gather host candidates: interface names ("eth0") or local IP literals ("127.0.0.1", "::1").
  /// Empty: every non-loopback interface that is up; if there is none, one loopback address (127.0.0.1, else ::1).
  std::vector<std::string> interfaces;
  /// Local UDP port range for host candidates, inclusive; both 0 lets the OS choose.
  std::uint16_t portRangeBegin = 0;
  std::uint16_t portRangeEnd = 0;

  /// How long each stage of the setup may take, else Failed: ICE from the start of checks until a working candidate
  /// pair (how long ICE looks for one), then the DTLS handshake, then SCTP and the channels until Connected; each
  /// stage's clock starts when it does, so a peer that stops answering fails within this time of where it stopped,
  /// and one that is only slow (thousands of connections starting at once) still connects.
  /// Each timeout: 1 ms .. one day (86400000 ms).
  std::chrono::milliseconds connectTimeout{30000};
  /// Without any packet from the peer for this long the connection reports Disconnected (it may recover)...
  std::chrono::milliseconds disconnectedTimeout{5000};
  /// ...and after this long it is Failed (RFC 7675 consent expiry is 30 s).
  std::chrono::milliseconds failedTimeout{30000};

  /// The largest message we accept, advertised as a=max-message-size (RFC 8841). 1024 .. 64 MiB.
  std::size_t maxMessageSize = 262144;
  /// Largest UDP payload the stack emits (SCTP packet size derives from it). 576 .. 2048 (the receive buffers'
  /// size: a larger datagram would be truncated).
  std::size_t mtu = 1200;

  /// DTLS identity to reuse across connections (so the fingerprint stays stable), PEM encoded. Both empty:
  /// a fresh ECDSA P-256 certificate is generated per PeerConnection.
  std::string certificatePem;
  std::string privateKeyPem;

  /// The W3C iceTransportPolicy "relay" equivalent (JSON "iceTransportPolicy": "relay" | "all"): only relay
  /// candidates from the turn:/turns: servers in iceServers are gathered and used, so the peer never learns a
  /// local or server-reflexive address. Without a working TURN server nothing connects.
  bool relayOnly = false;

  /// ICE lite (RFC 8445 2.5; JSON "iceLite": true), for a server with a public address: only host candidates
  /// are gathered (iceServers are not used), the descriptions carry a=ice-lite, and the connection runs no
  /// connectivity checks of its own: it answers the peer's checks and uses the pair the peer (which must run
  /// full ICE, as browsers do) nominates. Two lite peers cannot connect: setRemoteDescription refuses that.
  /// Not combinable with relayOnly.
  bool iceLite = false;

  /// One UDP port for many connections (JSON "udpMux": true), for a server that accepts many clients on one
  /// public port. Needs portRangeBegin == portRangeEnd == P (validate() refuses anything else). Every
  /// PeerConnection of the process that sets it shares one socket per local address bound on port P; incoming
  /// datagrams reach their connection by the ICE username fragment of STUN binding requests, then by the remote
  /// address the connection talks to (see src/net/udp_mux.hpp). Each connection keeps its own
  /// fileDescriptor()/wait()/nextDeadline(), and poll() only does that connection's work plus whatever is waiting
  /// on the shared socket. Such a connection holds one descriptor (its fileDescriptor(); see there for what happens
  /// at the descriptor limit), and stats() reports the shared port and its drops (ConnectionStats::udpMux*).
  /// Threading rule: all connections sharing a port must be created, polled, used and closed from one thread
  /// (the thread that first bound the port; it is free again when the last of them closes). A connection that
  /// binds the port, or polls, from another thread gets an error (lastError says why) rather than a race.
  bool udpMux = false;

  /// Checks every field (ICE URLs, TURN credentials, ranges). Ok, or InvalidParameter with a reason.
  Error validate(std::string* reason = nullptr) const;

  /// Parses a JSON object such as {"iceServers":[{"urls":["stun:stun.l.google.com:19302"]}]} and validates
  /// it. Accepted keys: iceServers[].urls (string or array of strings), .username, .credential; rtcpeer's own
  /// keys with the field names above ("udpMux", timeouts in milliseconds as "connectTimeoutMs", "disconnectedTimeoutMs",
  /// "failedTimeoutMs"); webrtc-native's "libdatachannel" sub-object (portRangeBegin, portRangeEnd, mtu).
  /// Unknown keys are ignored, as browsers do; a known key of the wrong type is InvalidParameter.
  static Error fromJson(std::string_view json, Configuration& out, std::string* reason = nullptr);
};

/// Options of createDataChannel (W3C RTCDataChannelInit, Godot's option dictionary).
struct DataChannelInit {
  /// Negotiated out of band: both sides create the channel with the same id; no DCEP, no dataChannelReceived.
  bool negotiated = false;
  /// The SCTP stream id, 0..65534. Required when negotiated, refused otherwise (see validate()).
  std::optional<std::uint16_t> id;
  bool ordered = true;
  /// Partial reliability (RFC 3758): give up after this many milliseconds, or after this many retransmissions.
  /// At most one of the two; 0..65535. The lifetime counts from the putPacket() call, but a message is always
  /// offered to the network once, in the next poll(), however long after: a lifetime shorter than the poll
  /// interval does not make the channel drop everything.
  std::optional<int> maxPacketLifeTime;
  std::optional<int> maxRetransmits;
  /// Sub-protocol name, at most 65535 bytes.
  std::string protocol;

  /// Godot's rules: negotiated requires id, id requires negotiated (webrtc-native's rule; browsers silently
  /// ignore such an id, we refuse it so the mistake is visible), never both limits, ranges as above.
  Error validate(std::string* reason = nullptr) const;

  /// Parses {"negotiated":true,"id":1,"ordered":false,"maxPacketLifeTime":500,"protocol":"x"} and validates
  /// it. "maxPacketLifetime" (Godot's WebRTCMultiplayerPeer spelling) is accepted as well; both at once is an
  /// error. Unknown keys are ignored; a known key of the wrong type or out of range is InvalidParameter.
  static Error fromJson(std::string_view json, DataChannelInit& out, std::string* reason = nullptr);
};

}  // namespace rtcpeer
