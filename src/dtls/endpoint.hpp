// A sans-IO DTLS 1.2 endpoint (RFC 6347) on OpenSSL, as WebRTC uses it (RFC 8827, RFC 8261 section 6):
// self-signed certificates authenticated by SDP fingerprints, client or server role chosen by `a=setup`.
//
// The endpoint owns no socket and reads no clock. Feed it datagrams and time; drain datagrams to send, decrypted
// application data and events. Views returned by the poll functions point into reused internal buffers and stay
// valid until the next call on the endpoint, so the steady-state data path allocates nothing per record.
//
// Retransmission deadlines come from OpenSSL's DTLS timer, whose durations we choose (DTLS_set_timer_cb: the
// initial timeout is configurable, then doubles up to a cap). See src/dtls/README.md for how this
// works with the simulator's virtual clock.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/bytes.hpp"
#include "common/result.hpp"
#include "common/time.hpp"
#include "dtls/certificate.hpp"

namespace rtcpeer::dtls {

/// RFC 5763 section 5: `a=setup:active` is the DTLS client, `a=setup:passive` the server.
enum class Role : std::uint8_t { Client, Server };

enum class State : std::uint8_t {
  New,         ///< constructed, start() not called yet (early datagrams are held)
  Connecting,  ///< handshake running, or done but waiting for the remote fingerprints
  Connected,   ///< handshake done and the peer certificate matched a remote fingerprint
  Closed,      ///< close_notify sent or received
  Failed,      ///< fatal alert, fingerprint mismatch, timeout or protocol error; see failureReason()
};

struct Event {
  enum class Type : std::uint8_t { Connected, Closed, Failed };
  Type type;
  std::string reason;  ///< empty for Connected
};

struct Config {
  /// Our identity; shareable across endpoints. Required.
  std::shared_ptr<const Certificate> certificate;
  Role role = Role::Client;
  /// The peer's `a=fingerprint` values; may be left empty and set later with setRemoteFingerprints().
  std::vector<Fingerprint> remoteFingerprints;
  /// First handshake retransmission timeout; doubles per retransmission up to maxRetransmit. OpenSSL's default
  /// (1 s, fixed) makes one lost first flight cost a one-second stall.
  Duration initialRetransmit = std::chrono::milliseconds(100);
  Duration maxRetransmit = std::chrono::seconds(4);
  /// The handshake fails if it has not completed this long after start().
  Duration handshakeTimeout = std::chrono::seconds(30);
  /// Largest datagram the endpoint emits during the handshake (UDP payload bytes). Application records are as
  /// large as what send() is given plus the record overhead; see maxApplicationPayload().
  std::size_t mtu = 1200;
  /// Once the handshake is over and the peer has sent protected application data (so it has finished too and
  /// will never need our last flight again), protect records with the negotiated keys directly
  /// (RecordProtection) and free OpenSSL's SSL object: ~40 KiB less per connection and a shorter record path.
  /// Off: OpenSSL's record layer for the whole connection.
  bool releaseSslAfterHandshake = true;
};

class Endpoint {
 public:
  explicit Endpoint(Config config);
  ~Endpoint();
  Endpoint(Endpoint&&) noexcept;
  Endpoint& operator=(Endpoint&&) noexcept;

  /// Changes the role; only before start() (returns a failure afterwards).
  Status setRole(Role role);
  /// Sets the acceptable peer fingerprints. Allowed until the peer is verified; if the handshake already finished
  /// waiting for them, the check runs now (and held application data is released or the endpoint fails).
  void setRemoteFingerprints(std::vector<Fingerprint> fingerprints, Timestamp now);

  /// Begins the handshake (a client queues its ClientHello). Datagrams received before start() are held and
  /// processed here, so an early ClientHello is not lost.
  void start(Timestamp now);
  /// One received UDP datagram (of kind PacketKind::Dtls; anything else is ignored).
  void handleInput(ByteView datagram, Timestamp now);
  /// Fires the retransmission/handshake timer if `now >= nextDeadline()`.
  void handleTimeout(Timestamp now);
  [[nodiscard]] Timestamp nextDeadline() const noexcept;

  /// Encrypts one record of application data (at most 16384 bytes, normally <= maxApplicationPayload()).
  Status send(ByteView appData, Timestamp now);
  /// Sends close_notify and moves to Closed.
  void close(Timestamp now);

  [[nodiscard]] State state() const noexcept;
  [[nodiscard]] Role role() const noexcept;
  /// Why the endpoint is Failed or Closed (empty otherwise).
  [[nodiscard]] const std::string& failureReason() const noexcept;
  /// Application bytes that fit one datagram of `mtu` bytes with the negotiated cipher (0 before Connected).
  [[nodiscard]] std::size_t maxApplicationPayload() const noexcept;
  /// The negotiated cipher suite (IANA-less OpenSSL name, e.g. "ECDHE-ECDSA-AES128-GCM-SHA256"), or empty.
  [[nodiscard]] std::string cipherName() const;
  /// The SRTP protection profile the use_srtp extension settled on (OpenSSL name, e.g. "SRTP_AES128_CM_SHA1_80"),
  /// empty if the peer did not take part. Nothing uses SRTP; it is negotiated because some peers require it.
  [[nodiscard]] const std::string& srtpProfile() const noexcept;
  /// Whether records are now protected by RecordProtection and the SSL object is gone (see Config).
  [[nodiscard]] bool sslReleased() const noexcept;

  /// Frees OpenSSL's record buffers (~35 KiB; none once sslReleased()) and the endpoint's drained queues until the
  /// next record is sent or received, which allocates them again: for a connection that has gone idle. Only once
  /// Connected; OpenSSL's buffers stay while a record is pending in them.
  void releaseBuffers();

  /// The next datagram to send, if any.
  std::optional<ByteView> pollTransmit();
  /// The next record of decrypted, authenticated application data, if any.
  std::optional<ByteView> pollApplicationData();
  std::optional<Event> pollEvent();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace rtcpeer::dtls
