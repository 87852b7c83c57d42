#include "net/stream.hpp"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstring>

#include "net/sockaddr.hpp"

namespace rtcpeer::net {
namespace {

std::string sslErrorText() {
  unsigned long e = 0, last = 0;
  while ((e = ERR_get_error()) != 0) last = e;
  if (!last) return "TLS error";
  char buf[256];
  ERR_error_string_n(last, buf, sizeof buf);
  return buf;
}

}  // namespace

struct StreamClient::Impl {
  enum class Phase { Connecting, Handshaking, Open, Failed };
  int fd = -1;
  SocketAddress server;
  Phase phase = Phase::Connecting;
  bool tls = false;
  SSL_CTX* ctx = nullptr;
  SSL* ssl = nullptr;
  BIO* network = nullptr;  // our end of the BIO pair: ciphertext to send / received ciphertext to feed
  Bytes out;                // bytes for the socket (plaintext over TCP, ciphertext over TLS)
  std::size_t outPos = 0;
  Bytes pending;            // plaintext written before the TLS handshake finished
  Bytes in;                 // plaintext received, returned by service()
  std::string failure;

  ~Impl() {
    if (ssl) SSL_free(ssl);  // frees its half of the pair
    if (network) BIO_free(network);
    if (ctx) SSL_CTX_free(ctx);
    if (fd >= 0) ::close(fd);
  }

  void setFailed(std::string why) {
    if (phase != Phase::Failed) failure = std::move(why);
    phase = Phase::Failed;
  }
  Result<ByteView> failed(std::string why) {
    setFailed(std::move(why));
    return fail(failure);
  }

  // Moves ciphertext OpenSSL produced into `out`.
  void pullCiphertext() {
    if (!tls) return;
    std::array<std::uint8_t, 16384> buf;
    int n;
    while ((n = BIO_read(network, buf.data(), static_cast<int>(buf.size()))) > 0)
      out.insert(out.end(), buf.begin(), buf.begin() + n);
  }

  void writePlain(ByteView data) {
    if (!tls) {
      out.insert(out.end(), data.begin(), data.end());
      return;
    }
    if (phase != Phase::Open) {
      pending.insert(pending.end(), data.begin(), data.end());
      return;
    }
    // A BIO pair accepts at most its buffer size per write; loop, draining ciphertext in between.
    std::size_t at = 0;
    while (at < data.size()) {
      const int n = SSL_write(ssl, data.data() + at, static_cast<int>(std::min<std::size_t>(data.size() - at, 16384)));
      pullCiphertext();
      if (n <= 0) break;
      at += static_cast<std::size_t>(n);
    }
  }

  bool flush() {
    pullCiphertext();
    while (outPos < out.size()) {
      const ssize_t n = ::send(fd, out.data() + outPos, out.size() - outPos, MSG_NOSIGNAL);
      if (n < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) break;
        setFailed(detail::errnoText("send to " + server.toString()));
        return false;
      }
      outPos += static_cast<std::size_t>(n);
    }
    if (outPos == out.size()) {
      out.clear();
      outPos = 0;
    }
    return true;
  }

  // Drives the handshake; true once Open.
  bool handshake() {
    const int r = SSL_do_handshake(ssl);
    pullCiphertext();
    if (r == 1) {
      phase = Phase::Open;
      Bytes early = std::move(pending);
      pending.clear();
      writePlain(early);
      return true;
    }
    const int e = SSL_get_error(ssl, r);
    if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) return false;
    std::string why = "TLS handshake with " + server.toString() + " failed: " + sslErrorText();
    if (const long v = SSL_get_verify_result(ssl); v != X509_V_OK)
      why += " (certificate: " + std::string(X509_verify_cert_error_string(v)) + ")";
    setFailed(std::move(why));
    return false;
  }
};

StreamClient::StreamClient(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
StreamClient::StreamClient(StreamClient&&) noexcept = default;
StreamClient& StreamClient::operator=(StreamClient&&) noexcept = default;
StreamClient::~StreamClient() = default;

int StreamClient::fd() const noexcept { return impl_->fd; }
const SocketAddress& StreamClient::server() const noexcept { return impl_->server; }
bool StreamClient::wantsWrite() const noexcept {
  return impl_->phase == Impl::Phase::Connecting || impl_->outPos < impl_->out.size();
}
bool StreamClient::established() const noexcept { return impl_->phase == Impl::Phase::Open; }

Result<StreamClient> StreamClient::connect(const SocketAddress& server, const StreamOptions& options) {
  auto impl = std::make_unique<Impl>();
  impl->server = server;
  impl->tls = options.tls;
  if (options.tls) {
    impl->ctx = SSL_CTX_new(TLS_client_method());
    if (!impl->ctx) return fail("TLS: " + sslErrorText());
    SSL_CTX_set_min_proto_version(impl->ctx, TLS1_2_VERSION);
    if (options.verifyPeer) {
      SSL_CTX_set_verify(impl->ctx, SSL_VERIFY_PEER, nullptr);
      const int ok = options.caFile.empty() ? SSL_CTX_set_default_verify_paths(impl->ctx)
                                            : SSL_CTX_load_verify_locations(impl->ctx, options.caFile.c_str(), nullptr);
      if (ok != 1) return fail("TLS: cannot load trusted CAs '" + options.caFile + "': " + sslErrorText());
    }
    impl->ssl = SSL_new(impl->ctx);
    BIO* inner = nullptr;
    if (!impl->ssl || BIO_new_bio_pair(&inner, 0, &impl->network, 0) != 1) return fail("TLS: " + sslErrorText());
    SSL_set_bio(impl->ssl, inner, inner);
    SSL_set_connect_state(impl->ssl);
    if (!options.serverName.empty()) {
      SSL_set_tlsext_host_name(impl->ssl, options.serverName.c_str());
      if (options.verifyPeer) SSL_set1_host(impl->ssl, options.serverName.c_str());
    } else if (options.verifyPeer) {
      X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(impl->ssl), server.ipString().c_str());
    }
  }
  impl->fd = detail::newDescriptor(
      [&] { return ::socket(server.isV6() ? AF_INET6 : AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0); });
  if (impl->fd < 0) return fail(detail::errnoText("net: socket"));
  const int one = 1;
  // TURN frames are small and latency-bound (checks, DTLS records): no Nagle delay.
  setsockopt(impl->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  sockaddr_storage ss;
  const socklen_t len = detail::toSockaddr(server, ss);
  if (::connect(impl->fd, reinterpret_cast<sockaddr*>(&ss), len) != 0 && errno != EINPROGRESS)
    return fail(detail::errnoText("net: connect to " + server.toString()));
  return StreamClient(std::move(impl));
}

void StreamClient::write(ByteView data) {
  Impl& s = *impl_;
  if (s.phase == Impl::Phase::Failed) return;
  s.writePlain(data);
  if (s.phase == Impl::Phase::Open) s.flush();
}

Result<ByteView> StreamClient::service() {
  Impl& s = *impl_;
  s.in.clear();
  if (s.phase == Impl::Phase::Failed) return fail(s.failure);
  if (s.phase == Impl::Phase::Connecting) {
    pollfd p{s.fd, POLLOUT, 0};
    if (::poll(&p, 1, 0) <= 0) return ByteView{};
    int err = 0;
    socklen_t len = sizeof err;
    getsockopt(s.fd, SOL_SOCKET, SO_ERROR, &err, &len);
    if (err != 0) return s.failed("connect to " + s.server.toString() + ": " + std::strerror(err));
    s.phase = s.tls ? Impl::Phase::Handshaking : Impl::Phase::Open;
    if (s.tls) s.handshake();
  }
  // Read everything available.
  std::array<std::uint8_t, 16384> buf;
  for (;;) {
    const ssize_t n = ::recv(s.fd, buf.data(), buf.size(), 0);
    if (n == 0) return s.failed("connection to " + s.server.toString() + " closed by the server");
    if (n < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) break;
      return s.failed(detail::errnoText("recv from " + s.server.toString()));
    }
    if (!s.tls) {
      s.in.insert(s.in.end(), buf.begin(), buf.begin() + n);
      continue;
    }
    // Feed the ciphertext in pieces the BIO pair accepts, reading plaintext in between.
    bool stalled = false;
    for (std::size_t at = 0; at < static_cast<std::size_t>(n);) {
      const int w = BIO_write(s.network, buf.data() + at, static_cast<int>(static_cast<std::size_t>(n) - at));
      if (w > 0) at += static_cast<std::size_t>(w);
      if (s.phase == Impl::Phase::Handshaking && !s.handshake() && s.phase == Impl::Phase::Failed)
        return fail(s.failure);
      if (s.phase == Impl::Phase::Open) {
        std::array<std::uint8_t, 16384> plain;
        int r;
        while ((r = SSL_read(s.ssl, plain.data(), static_cast<int>(plain.size()))) > 0)
          s.in.insert(s.in.end(), plain.begin(), plain.begin() + r);
        const int e = SSL_get_error(s.ssl, r);
        if (e == SSL_ERROR_ZERO_RETURN) return s.failed("TLS connection to " + s.server.toString() + " closed");
        if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE)
          return s.failed("TLS read from " + s.server.toString() + ": " + sslErrorText());
        s.pullCiphertext();
      }
      if (w <= 0 && stalled) return s.failed("TLS: OpenSSL consumes no more input");
      stalled = w <= 0;
    }
  }
  if (!s.flush()) return fail(s.failure);
  return ByteView(s.in);
}

}  // namespace rtcpeer::net
