#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>

namespace rtcpeer {

/// One end of the selected ICE candidate pair (W3C RTCIceCandidateStats, reduced to what a data-channel
/// application uses).
struct CandidateStats {
  std::string type;     ///< "host", "srflx", "prflx" or "relay"; empty when there is no selected pair
  std::string address;  ///< IP literal (for a local relay candidate: the relayed address on the TURN server)
  int port = 0;
  std::string relayProtocol;  ///< local relay candidates only: "udp", "tcp" or "tls" to the TURN server
};

/// A snapshot of one connection, for diagnostics and monitoring (PeerConnection::stats()). Godot has no
/// equivalent; the fields follow the W3C getStats() names where one exists. All counters start at zero for each
/// initialize().
struct ConnectionStats {
  // ICE: the pair carrying the traffic.
  bool hasSelectedPair = false;
  CandidateStats local;
  CandidateStats remote;
  std::uint64_t iceChecksSent = 0;      ///< connectivity and consent checks, retransmissions included
  std::uint64_t iceChecksReceived = 0;  ///< authenticated checks from the peer

  // DTLS.
  std::string dtlsRole;    ///< "client" or "server"; empty before the role is known
  std::string dtlsCipher;  ///< OpenSSL's name of the negotiated suite; empty before the handshake completes

  // SCTP: the transport of every data channel.
  std::chrono::microseconds roundTripTime{0};  ///< smoothed RTT (RFC 6298 SRTT), 0 until measured
  std::size_t congestionWindow = 0;            ///< bytes
  std::size_t peerReceiveWindow = 0;           ///< bytes, the peer's last a_rwnd
  std::size_t bytesInFlight = 0;
  std::uint64_t packetsSent = 0, packetsReceived = 0;
  std::uint64_t retransmissions = 0;  ///< DATA chunks sent again (timer and fast retransmit)
  std::uint64_t messagesSent = 0, messagesReceived = 0;
  std::uint64_t bytesSent = 0, bytesReceived = 0;  ///< message payload bytes
  bool interleaving = false;   ///< RFC 8260 I-DATA negotiated
  bool zeroChecksum = false;   ///< RFC 9653: the peer accepts zero checksums, so ours carry no CRC32c
  std::size_t remoteMaxMessageSize = 0;  ///< the peer's a=max-message-size (what putPacket() accepts)

  // One UDP port shared by many connections (Configuration::udpMux); zeros otherwise, after close(), and when
  // read from another thread than the port's. With one shared socket per local address (e.g. IPv4 and IPv6), the
  // drop counts are summed over them. Drops here are lost datagrams ICE, DTLS and SCTP recover from (consent
  // checks and SCTP retransmit); a count that keeps growing means the server's loop does not keep up.
  bool udpMux = false;  ///< this connection's UDP traffic goes through the process's shared port
  std::size_t udpMuxConnections = 0;  ///< connections registered on the shared port (all of the process's)
  /// Datagrams for this connection that the shared port dropped because its queue (256 datagrams, filled while
  /// other connections' polls read the port) or the port's buffer pool was full: this connection is not polled
  /// often enough for its traffic.
  std::uint64_t udpMuxDroppedFull = 0;
  /// Datagrams the shared port dropped because no live connection claims them (a STUN request for an unknown ICE
  /// ufrag, anything from an address no connection talks to, or for a connection that has ended): for the whole
  /// port, not this connection.
  std::uint64_t udpMuxDroppedUnknown = 0;
};

}  // namespace rtcpeer
