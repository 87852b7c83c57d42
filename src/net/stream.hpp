// A non-blocking TCP client connection with optional TLS (OpenSSL on memory BIOs), for TURN over TCP and TLS
// (RFC 8656 `turn:...?transport=tcp` and `turns:`). No threads and no blocking call: the owner polls `fd()` for
// reading (and for writing while `wantsWrite()`), then calls `service()`, which does all the I/O that is possible
// without blocking and returns the plaintext that arrived. Bytes written before the connection (and the TLS
// handshake) completes are queued and sent afterwards.
#pragma once

#include <memory>
#include <string>

#include "common/address.hpp"
#include "common/bytes.hpp"
#include "common/result.hpp"

namespace rtcpeer::net {

struct StreamOptions {
  bool tls = false;
  /// TLS: verify the server certificate chain and name (on by default; off only for testing).
  bool verifyPeer = true;
  /// TLS: a PEM file of trusted CAs (e.g. a test's self-signed certificate); empty = the system's default paths.
  std::string caFile;
  /// TLS: the name to verify and send as SNI; empty = the certificate must be issued for the server's IP address.
  std::string serverName;
};

class StreamClient {
 public:
  /// Starts a non-blocking connect to `server`; fails only if no socket could be made or the connect was refused
  /// at once. TLS setup (CA file, verification) errors are reported here too.
  static Result<StreamClient> connect(const SocketAddress& server, const StreamOptions& options);

  StreamClient(StreamClient&&) noexcept;
  StreamClient& operator=(StreamClient&&) noexcept;
  ~StreamClient();

  [[nodiscard]] int fd() const noexcept;
  [[nodiscard]] const SocketAddress& server() const noexcept;
  /// True while the connect is pending or bytes wait for send space: poll fd() for POLLOUT too.
  [[nodiscard]] bool wantsWrite() const noexcept;
  /// TCP connected and, with TLS, the handshake (and verification) done.
  [[nodiscard]] bool established() const noexcept;

  /// Queues plaintext; sent as soon as the connection allows (no partial-write bookkeeping for the caller).
  void write(ByteView data);
  /// Finishes the connect/handshake, sends what is queued, reads what arrived. Returns the received plaintext
  /// (valid until the next call), or a failure: refused connect, failed verification, reset, or end of stream.
  Result<ByteView> service();

 private:
  struct Impl;
  explicit StreamClient(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace rtcpeer::net
